//! Wire bytes as kubectl and the API server write them, for the stream
//! readers' tests.

use flate2::{Compress, Compression, FlushCompress};

/// A WebSocket frame; masked with `mask` as a client sends it.
pub(crate) fn ws_frame(opcode: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n < 65536 => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// One side's SPDY/3 header compressor (the dictionary set).
pub(crate) fn compressor() -> Compress {
    let mut z = Compress::new(Compression::default(), true);
    z.set_dictionary(super::spdy::spdy3_dictionary()).unwrap();
    z
}

/// A header block as a SPDY/3 sender writes it: one zlib stream for the
/// connection, flushed per block (`Sync`) unless told otherwise.
pub(crate) fn block(z: &mut Compress, headers: &[(&str, &str)], flush: FlushCompress) -> Vec<u8> {
    let mut raw = (headers.len() as u32).to_be_bytes().to_vec();
    for (n, v) in headers {
        for s in [n, v] {
            raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
            raw.extend_from_slice(s.as_bytes());
        }
    }
    let mut out = Vec::with_capacity(raw.len() + 256);
    z.compress_vec(&raw, &mut out, flush).unwrap();
    out
}

/// A SYN_STREAM opening stream `id` with the header block `hb`.
pub(crate) fn syn_stream(id: u32, hb: &[u8]) -> Vec<u8> {
    let len = 10 + hb.len();
    let mut f = vec![
        0x80,
        3,
        0,
        1,
        0,
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
    ];
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(hb);
    f
}

/// A data frame on stream `id`.
pub(crate) fn spdy_data(id: u32, fin: bool, bytes: &[u8]) -> Vec<u8> {
    let len = bytes.len();
    let mut f = id.to_be_bytes().to_vec();
    f.extend_from_slice(&[
        u8::from(fin),
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
    ]);
    f.extend_from_slice(bytes);
    f
}
