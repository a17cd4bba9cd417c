//! The SFTP wire (version 3, as OpenSSH speaks it, with its extensions):
//! packets cut from a byte stream, the caller's requests read for their
//! operation and paths, the host's replies read for their request id and
//! status, and the status replies the gateway sends itself.

/// The largest packet relayed (OpenSSH's own limit is 256 KiB).
pub(crate) const MAX_PACKET: usize = 1 << 20;

/// Status codes (draft-ietf-secsh-filexfer-02 §7).
pub(crate) const FX_PERMISSION_DENIED: u32 = 3;
pub(crate) const FX_FAILURE: u32 = 4;
pub(crate) const FX_OP_UNSUPPORTED: u32 = 8;

/// Cuts a byte stream into whole packets.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    /// Takes `data`, appending each packet it completes (its length
    /// prefix included) to `out`. `Err` when a packet claims more than
    /// [`MAX_PACKET`] bytes.
    pub(crate) fn push(&mut self, data: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), String> {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while self.buf.len() - start >= 4 {
            let len = u32::from_be_bytes([
                self.buf[start],
                self.buf[start + 1],
                self.buf[start + 2],
                self.buf[start + 3],
            ]) as usize;
            if len > MAX_PACKET {
                return Err(format!(
                    "an sftp packet of {len} bytes, more than the {MAX_PACKET} the gateway relays"
                ));
            }
            if self.buf.len() - start < 4 + len {
                break;
            }
            out.push(self.buf[start..start + 4 + len].to_vec());
            start += 4 + len;
        }
        self.buf.drain(..start);
        Ok(())
    }
}

/// Reads the fields of one packet.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(*b)
    }

    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.rest.split_first_chunk::<4>()?;
        self.rest = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        if self.rest.len() < len {
            return None;
        }
        let (s, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(s)
    }

    fn path(&mut self) -> Result<String, String> {
        let b = self.bytes().ok_or("a truncated path")?;
        String::from_utf8(b.to_vec())
            .map_err(|_| "a path that is not UTF-8 (the gateway decides paths as text)".to_string())
    }
}

/// What a request on an open handle does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnHandle {
    Close,
    Read,
    /// A write of this many bytes.
    Write(u64),
    /// fsetstat: changes the file's attributes, decided as `setstat` on
    /// the path it was opened with.
    SetStat,
    /// fstat, readdir, fsync, fstatvfs: decided with the open.
    Other,
}

/// A caller's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// `SSH_FXP_INIT`: the version exchange.
    Init,
    /// An operation on paths, decided on its own.
    Paths {
        id: u32,
        /// `open-read`, `open-write`, `list`, `stat`, `remove`, …
        operation: &'static str,
        paths: Vec<String>,
    },
    /// An operation on a handle the gateway saw opened.
    Handle {
        id: u32,
        handle: Vec<u8>,
        what: OnHandle,
    },
    /// An extension that touches no file (`limits@openssh.com`).
    Harmless { id: u32 },
    /// Something the gateway does not relay: refused with its reason.
    Refused { id: u32, why: String },
}

impl Request {
    /// The request's id (`None` for the version exchange).
    pub(crate) fn id(&self) -> Option<u32> {
        match self {
            Self::Init => None,
            Self::Paths { id, .. }
            | Self::Handle { id, .. }
            | Self::Harmless { id }
            | Self::Refused { id, .. } => Some(*id),
        }
    }
}

/// `SSH_FXF_WRITE | APPEND | CREAT | TRUNC`: an open that changes the file.
const WRITING_FLAGS: u32 = 0x02 | 0x04 | 0x08 | 0x10;

/// Reads a caller's packet (with its length prefix). `Err` when it is
/// malformed (the channel is then cut).
pub(crate) fn request(packet: &[u8]) -> Result<Request, String> {
    let mut r = Reader {
        rest: packet.get(4..).ok_or("a packet without its length")?,
    };
    let kind = r.u8().ok_or("an empty sftp packet")?;
    if kind == 1 {
        return Ok(Request::Init);
    }
    let id = r.u32().ok_or("an sftp request without its id")?;
    let paths = |r: &mut Reader<'_>, n: usize| -> Result<Vec<String>, String> {
        (0..n).map(|_| r.path()).collect()
    };
    let on_path = |operation: &'static str, r: &mut Reader<'_>, n: usize| {
        Ok(match paths(r, n) {
            Ok(paths) => Request::Paths {
                id,
                operation,
                paths,
            },
            Err(why) => Request::Refused { id, why },
        })
    };
    let handle = |r: &mut Reader<'_>| -> Result<Vec<u8>, String> {
        Ok(r.bytes().ok_or("a truncated handle")?.to_vec())
    };
    match kind {
        3 => {
            let path = match r.path() {
                Ok(p) => p,
                Err(why) => return Ok(Request::Refused { id, why }),
            };
            let flags = r.u32().ok_or("an open without its flags")?;
            let operation = if flags & WRITING_FLAGS != 0 {
                "open-write"
            } else {
                "open-read"
            };
            Ok(Request::Paths {
                id,
                operation,
                paths: vec![path],
            })
        }
        4 => Ok(Request::Handle {
            id,
            handle: handle(&mut r)?,
            what: OnHandle::Close,
        }),
        5 => Ok(Request::Handle {
            id,
            handle: handle(&mut r)?,
            what: OnHandle::Read,
        }),
        6 => {
            let h = handle(&mut r)?;
            r.rest = r.rest.get(8..).ok_or("a write without its offset")?;
            let data = r.bytes().ok_or("a truncated write")?;
            Ok(Request::Handle {
                id,
                handle: h,
                what: OnHandle::Write(data.len() as u64),
            })
        }
        10 => Ok(Request::Handle {
            id,
            handle: handle(&mut r)?,
            what: OnHandle::SetStat,
        }),
        8 | 12 => Ok(Request::Handle {
            id,
            handle: handle(&mut r)?,
            what: OnHandle::Other,
        }),
        7 | 17 => on_path("stat", &mut r, 1),
        9 => on_path("setstat", &mut r, 1),
        11 => on_path("list", &mut r, 1),
        13 => on_path("remove", &mut r, 1),
        14 => on_path("mkdir", &mut r, 1),
        15 => on_path("rmdir", &mut r, 1),
        16 => on_path("realpath", &mut r, 1),
        18 => on_path("rename", &mut r, 2),
        19 => on_path("readlink", &mut r, 1),
        20 => on_path("symlink", &mut r, 2),
        200 => {
            let name = r.bytes().ok_or("an extended request without its name")?;
            match name {
                b"posix-rename@openssh.com" => on_path("rename", &mut r, 2),
                b"hardlink@openssh.com" => on_path("link", &mut r, 2),
                b"statvfs@openssh.com" => on_path("stat", &mut r, 1),
                b"lsetstat@openssh.com" => on_path("setstat", &mut r, 1),
                b"expand-path@openssh.com" => on_path("realpath", &mut r, 1),
                b"fstatvfs@openssh.com" | b"fsync@openssh.com" => Ok(Request::Handle {
                    id,
                    handle: handle(&mut r)?,
                    what: OnHandle::Other,
                }),
                b"limits@openssh.com" | b"home-directory" | b"users-groups-by-id@openssh.com" => {
                    Ok(Request::Harmless { id })
                }
                other => Ok(Request::Refused {
                    id,
                    why: format!(
                        "the sftp extension {:?} is not relayed",
                        String::from_utf8_lossy(other)
                    ),
                }),
            }
        }
        other => Ok(Request::Refused {
            id,
            why: format!("sftp request type {other} is not relayed"),
        }),
    }
}

/// A host's reply, as far as the gateway reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `SSH_FXP_VERSION`.
    Version,
    /// `SSH_FXP_STATUS`.
    Status { id: u32, code: u32, message: String },
    /// `SSH_FXP_HANDLE`: a file or folder opened.
    Handle { id: u32, handle: Vec<u8> },
    /// `SSH_FXP_DATA`: bytes read.
    Data { id: u32, bytes: u64 },
    /// Anything else answering request `id`.
    Other { id: u32 },
}

/// Reads a host's packet (with its length prefix).
pub(crate) fn reply(packet: &[u8]) -> Result<Reply, String> {
    let mut r = Reader {
        rest: packet.get(4..).ok_or("a packet without its length")?,
    };
    let kind = r.u8().ok_or("an empty sftp packet")?;
    if kind == 2 {
        return Ok(Reply::Version);
    }
    let id = r.u32().ok_or("an sftp reply without its id")?;
    Ok(match kind {
        101 => {
            let code = r.u32().ok_or("a status without its code")?;
            let message = r
                .bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Reply::Status { id, code, message }
        }
        102 => Reply::Handle {
            id,
            handle: r.bytes().ok_or("a truncated handle")?.to_vec(),
        },
        103 => Reply::Data {
            id,
            bytes: r.bytes().ok_or("a truncated data reply")?.len() as u64,
        },
        _ => Reply::Other { id },
    })
}

/// An `SSH_FXP_STATUS` reply to request `id`.
pub(crate) fn status(id: u32, code: u32, message: &str) -> Vec<u8> {
    let body_len = 1 + 4 + 4 + 4 + message.len() + 4 + 2;
    let mut p = Vec::with_capacity(4 + body_len);
    p.extend_from_slice(&(body_len as u32).to_be_bytes());
    p.push(101);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(&(message.len() as u32).to_be_bytes());
    p.extend_from_slice(message.as_bytes());
    p.extend_from_slice(&2u32.to_be_bytes());
    p.extend_from_slice(b"en");
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet(kind: u8, id: Option<u32>, fields: &[&[u8]], tail: &[u8]) -> Vec<u8> {
        let mut body = vec![kind];
        if let Some(id) = id {
            body.extend_from_slice(&id.to_be_bytes());
        }
        for f in fields {
            body.extend_from_slice(&(f.len() as u32).to_be_bytes());
            body.extend_from_slice(f);
        }
        body.extend_from_slice(tail);
        let mut p = (body.len() as u32).to_be_bytes().to_vec();
        p.extend(body);
        p
    }

    #[test]
    fn requests_name_their_operation_and_paths() {
        let open = |flags: u32| {
            packet(
                3,
                Some(7),
                &[b"/srv/a.txt"],
                &[&flags.to_be_bytes()[..], &[0, 0, 0, 0]].concat(),
            )
        };
        assert_eq!(
            request(&open(1)).unwrap(),
            Request::Paths {
                id: 7,
                operation: "open-read",
                paths: vec!["/srv/a.txt".into()]
            }
        );
        assert!(matches!(
            request(&open(0x1a)).unwrap(),
            Request::Paths {
                operation: "open-write",
                ..
            }
        ));
        assert_eq!(
            request(&packet(18, Some(2), &[b"/a", b"/b"], &[])).unwrap(),
            Request::Paths {
                id: 2,
                operation: "rename",
                paths: vec!["/a".into(), "/b".into()]
            }
        );
        assert_eq!(
            request(&packet(
                200,
                Some(3),
                &[b"posix-rename@openssh.com", b"/a", b"/b"],
                &[]
            ))
            .unwrap(),
            Request::Paths {
                id: 3,
                operation: "rename",
                paths: vec!["/a".into(), "/b".into()]
            }
        );
        let write = packet(
            6,
            Some(9),
            &[b"h1"],
            &[&[0u8; 8][..], &5u32.to_be_bytes(), b"hello"].concat(),
        );
        assert_eq!(
            request(&write).unwrap(),
            Request::Handle {
                id: 9,
                handle: b"h1".to_vec(),
                what: OnHandle::Write(5)
            }
        );
        assert!(matches!(
            request(&packet(13, Some(4), &[b"\xff\xfe"], &[])).unwrap(),
            Request::Refused { id: 4, .. }
        ));
        assert!(matches!(
            request(&packet(200, Some(5), &[b"copy-data"], &[])).unwrap(),
            Request::Refused { id: 5, .. }
        ));
        assert!(matches!(
            request(&packet(99, Some(6), &[], &[])).unwrap(),
            Request::Refused { id: 6, .. }
        ));
        assert_eq!(
            request(&packet(1, None, &[], &3u32.to_be_bytes())).unwrap(),
            Request::Init
        );
        assert!(
            request(&packet(3, Some(1), &[], &[])).is_err()
                || matches!(
                    request(&packet(3, Some(1), &[], &[])),
                    Ok(Request::Refused { .. })
                )
        );
    }

    #[test]
    fn replies_and_statuses_read_back() {
        let s = status(11, FX_PERMISSION_DENIED, "gatehouse: no");
        assert_eq!(
            reply(&s).unwrap(),
            Reply::Status {
                id: 11,
                code: FX_PERMISSION_DENIED,
                message: "gatehouse: no".into()
            }
        );
        assert_eq!(
            reply(&packet(102, Some(3), &[b"hh"], &[])).unwrap(),
            Reply::Handle {
                id: 3,
                handle: b"hh".to_vec()
            }
        );
        assert_eq!(
            reply(&packet(103, Some(4), &[b"abcdef"], &[])).unwrap(),
            Reply::Data { id: 4, bytes: 6 }
        );
    }

    #[test]
    fn a_packet_over_the_limit_is_refused() {
        let mut f = Frames::default();
        let mut out = Vec::new();
        let e = f
            .push(&((MAX_PACKET as u32) + 1).to_be_bytes(), &mut out)
            .unwrap_err();
        assert!(e.contains("more than"), "{e}");
    }

    proptest! {
        /// Any bytes are read or refused (never a panic), and packets come
        /// out whole and alike however the stream is cut.
        #[test]
        fn any_bytes_frame_alike_in_any_pieces(data in proptest::collection::vec(any::<u8>(), 0..600), cut in 1usize..64) {
            let mut whole = Frames::default();
            let mut a = Vec::new();
            let ra = whole.push(&data, &mut a);
            let mut pieces = Frames::default();
            let mut b = Vec::new();
            let mut rb = Ok(());
            for chunk in data.chunks(cut) {
                rb = pieces.push(chunk, &mut b);
                if rb.is_err() { break; }
            }
            prop_assert_eq!(ra.is_ok(), rb.is_ok());
            if ra.is_ok() {
                prop_assert_eq!(&a, &b);
            }
            for p in &a {
                let _ = request(p);
                let _ = reply(p);
            }
        }
    }
}
