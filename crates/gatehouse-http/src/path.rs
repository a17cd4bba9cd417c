//! Normalisation of a request target's path, so that a policy decision on a
//! path cannot be sidestepped by spelling the same resource differently
//! (`/v1/../admin`, `//admin`, `/%61dmin`, `/./admin`, `/..;/admin`), and so
//! that the upstream is sent exactly the path the policy saw.

use std::fmt;

/// The longest raw path the gateway normalises. Longer targets are refused
/// before any work is done, so a hostile client cannot make the gateway
/// decode and copy arbitrarily large paths.
pub const MAX_PATH_LEN: usize = 8192;

/// A request path as the gateway decides and forwards it.
///
/// It holds decoded segments with no empty, `.` or `..` segment among them,
/// and whether the path ended with a slash. Both views of it, what policies
/// see ([`decoded`](Self::decoded)) and what goes upstream
/// ([`forward`](Self::forward)), are built from those same segments, so they
/// cannot disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalPath {
    /// Percent-decoded segments; none is empty, `.` or `..`, and none
    /// contains '/'.
    segments: Vec<String>,
    /// Whether the path ends with '/' after its last segment. Always false
    /// for the root, whose one slash is not a trailing one.
    trailing_slash: bool,
    /// `segments` joined for policies, e.g. "/v1/invoices/42".
    decoded: String,
    /// `segments` re-encoded for the upstream.
    forward: String,
}

impl NormalPath {
    /// Normalises the path part of a request target (no query; the caller
    /// splits at the first '?').
    ///
    /// Each segment between literal slashes is percent-decoded; empty and `.`
    /// segments are dropped, and `..` removes the segment before it. Anything
    /// an upstream might read differently from the gateway is refused rather
    /// than guessed at: encoded slashes, backslashes, control characters,
    /// malformed escapes, bytes that are not UTF-8, `..` above the root, and
    /// dot segments hidden behind a `;` parameter.
    ///
    /// # Errors
    ///
    /// A [`PathError`] naming the first problem found; its `Display` text is
    /// meant for the client.
    pub fn parse(raw: &str) -> Result<NormalPath, PathError> {
        if raw.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong { len: raw.len() });
        }
        if raw == "*" {
            return Err(PathError::AsteriskForm);
        }
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(PathError::NotOriginForm);
        };
        // Raw bytes are checked once over the whole path; the decoder below
        // only has to check what percent-escapes produce.
        for byte in raw.bytes() {
            check_raw_byte(byte)?;
        }

        let mut segments: Vec<String> = Vec::new();
        let mut trailing_slash = false;
        // Byte offset of the current segment in `raw`, for error messages.
        let mut offset = 1;
        for raw_segment in rest.split('/') {
            let segment = decode_segment(raw_segment, offset)?;
            offset += raw_segment.len() + 1;
            // Only the last segment decides the trailing slash; it is reset
            // on every iteration. As in RFC 3986 section 5.2.4, a path that
            // ends in an empty, `.` or `..` segment names a directory
            // ("/a/b/.." is "/a/"), so it keeps a trailing slash.
            match classify(&segment)? {
                Segment::Empty | Segment::Current => trailing_slash = true,
                Segment::Parent => {
                    // Clamping "/../admin" to "/admin" would be what most
                    // servers do, but a client sending it is either confused
                    // or probing, and some upstreams resolve it differently
                    // (relative to a mount point), so it is refused.
                    if segments.pop().is_none() {
                        return Err(PathError::AboveRoot);
                    }
                    trailing_slash = true;
                }
                Segment::Normal => {
                    segments.push(segment);
                    trailing_slash = false;
                }
            }
        }
        Ok(NormalPath::from_segments(segments, trailing_slash))
    }

    /// The decoded, normalised path, e.g. "/v1/invoices/42": what policies
    /// see. Always starts with '/'.
    pub fn decoded(&self) -> &str {
        &self.decoded
    }

    /// The path to forward upstream: the same segments, each re-encoded so
    /// the upstream decodes exactly [`decoded`](Self::decoded)'s segments.
    ///
    /// Everything outside RFC 3986's unreserved characters, sub-delims, ':'
    /// and '@' is percent-encoded (with upper-case hex), which always
    /// includes '%', '?' and '#'. A '/' inside a segment never occurs,
    /// because encoded slashes are refused by [`parse`](Self::parse).
    pub fn forward(&self) -> &str {
        &self.forward
    }

    /// The decoded segments: none is empty, `.` or `..`, and none holds '/'.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Splits off the first segment (the gateway's connection name) and
    /// returns (name, rest), where rest is a `NormalPath` for the remainder
    /// ("/" when nothing is left). `None` when the path is just "/".
    pub fn split_first(&self) -> Option<(&str, NormalPath)> {
        let (first, rest) = self.segments.split_first()?;
        Some((
            first.as_str(),
            NormalPath::from_segments(rest.to_vec(), self.trailing_slash),
        ))
    }

    /// Builds both views from already-normalised segments.
    fn from_segments(segments: Vec<String>, trailing_slash: bool) -> NormalPath {
        // The root has no trailing slash of its own; keeping the flag would
        // make two equal-looking roots compare unequal.
        let trailing_slash = trailing_slash && !segments.is_empty();
        let mut decoded =
            String::with_capacity(segments.iter().map(|s| s.len() + 1).sum::<usize>() + 1);
        let mut forward = String::with_capacity(decoded.capacity());
        for segment in &segments {
            decoded.push('/');
            decoded.push_str(segment);
            forward.push('/');
            encode_segment_into(&mut forward, segment);
        }
        if trailing_slash || segments.is_empty() {
            decoded.push('/');
            forward.push('/');
        }
        NormalPath {
            segments,
            trailing_slash,
            decoded,
            forward,
        }
    }
}

/// Why a request path was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    /// The raw path is longer than [`MAX_PATH_LEN`] bytes.
    TooLong {
        /// The raw path's length in bytes.
        len: usize,
    },
    /// The target is `*` (asterisk-form, used by `OPTIONS *`).
    AsteriskForm,
    /// The path does not start with '/' (including the empty path).
    NotOriginForm,
    /// A '?' is in the path: the query was not split off before parsing.
    UnsplitQuery,
    /// A raw '#' is in the path; fragments are never part of a request.
    RawFragment,
    /// A '%' not followed by two hexadecimal digits.
    InvalidPercentEncoding {
        /// Byte offset of the '%' in the raw path.
        offset: usize,
    },
    /// A segment's percent-decoded bytes are not valid UTF-8.
    InvalidUtf8,
    /// `%2F` inside a segment: a slash that is not a separator to the
    /// gateway but may be one to the upstream.
    EncodedSlash,
    /// A literal '\\', which some upstreams treat as a separator.
    Backslash,
    /// `%5C`, which an upstream that decodes first may treat as a separator.
    EncodedBackslash,
    /// A NUL byte, raw or as `%00`.
    NulByte,
    /// An ASCII control character other than NUL, raw or percent-encoded.
    ControlCharacter {
        /// The character's byte value.
        byte: u8,
    },
    /// A `..` segment with no segment left to remove.
    AboveRoot,
    /// A segment that, cut at its first ';', is empty, `.` or `..` (such as
    /// `..;x`), which servers that strip path parameters resolve as a dot
    /// or empty segment.
    ParameterOnDotSegment,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::TooLong { len } => write!(
                f,
                "the path is {len} bytes long, over the gateway's limit of {MAX_PATH_LEN} bytes"
            ),
            PathError::AsteriskForm => f.write_str(
                "the request target is '*', which names no path the gateway can decide on",
            ),
            PathError::NotOriginForm => f.write_str("the path does not start with '/'"),
            PathError::UnsplitQuery => f.write_str(
                "the path contains '?', which starts a query; the query must be split off before the path is normalised",
            ),
            PathError::RawFragment => f.write_str(
                "the path contains a raw '#', which is not allowed in a request target (encode it as %23)",
            ),
            PathError::InvalidPercentEncoding { offset } => write!(
                f,
                "the path has a malformed percent escape at byte {offset}: '%' must be followed by two hexadecimal digits"
            ),
            PathError::InvalidUtf8 => {
                f.write_str("the path's percent-decoded bytes are not valid UTF-8")
            }
            PathError::EncodedSlash => f.write_str(
                "the path contains an encoded slash (%2F), which the gateway cannot decide unambiguously",
            ),
            PathError::Backslash => f.write_str(
                "the path contains a backslash, which some upstreams treat as a path separator",
            ),
            PathError::EncodedBackslash => f.write_str(
                "the path contains an encoded backslash (%5C), which some upstreams treat as a path separator",
            ),
            PathError::NulByte => f.write_str("the path contains a NUL byte (raw or as %00)"),
            PathError::ControlCharacter { byte } => write!(
                f,
                "the path contains the control character 0x{byte:02X} (raw or percent-encoded)"
            ),
            PathError::AboveRoot => f.write_str(
                "the path climbs above the root with '..'; the gateway refuses such paths rather than clamping them to '/'",
            ),
            PathError::ParameterOnDotSegment => f.write_str(
                "the path has a segment that is empty, '.' or '..' before a ';' parameter (such as '..;'), which some upstreams resolve as a dot segment",
            ),
        }
    }
}

impl std::error::Error for PathError {}

/// What a decoded segment means for normalisation.
enum Segment {
    /// From "//" or a trailing '/': collapsed.
    Empty,
    /// `.`: dropped.
    Current,
    /// `..`: removes the previous segment.
    Parent,
    /// Anything else: kept.
    Normal,
}

/// Classifies a decoded segment. Classifying after decoding makes `%2e%2E`
/// a dot segment too, since an upstream that decodes before resolving dot
/// segments would treat it as one.
fn classify(segment: &str) -> Result<Segment, PathError> {
    match segment {
        "" => Ok(Segment::Empty),
        "." => Ok(Segment::Current),
        ".." => Ok(Segment::Parent),
        _ => {
            // Servlet containers (Tomcat and friends) strip `;parameters`
            // from each segment before resolving dot segments, so `..;x`
            // climbs a level and `;x` is an empty segment there. Keeping
            // those would let `/v1/..;/admin` reach `/admin` while policies
            // saw `/v1/..;/admin`, so they are refused. Other segments with
            // ';' are kept as they are.
            match segment.split_once(';') {
                Some(("" | "." | "..", _)) => Err(PathError::ParameterOnDotSegment),
                _ => Ok(Segment::Normal),
            }
        }
    }
}

/// Refuses a raw byte of the path that must not be there, whatever segment
/// it is in.
fn check_raw_byte(byte: u8) -> Result<(), PathError> {
    match byte {
        b'\\' => Err(PathError::Backslash),
        // A '?' means the caller did not split off the query; guessing where
        // the path ends would be deciding on something else than the
        // upstream receives.
        b'?' => Err(PathError::UnsplitQuery),
        b'#' => Err(PathError::RawFragment),
        _ => check_control(byte),
    }
}

/// Refuses a byte produced by a percent escape that must not be in a
/// decoded segment.
fn check_decoded_byte(byte: u8) -> Result<(), PathError> {
    match byte {
        // The gateway splits on literal slashes only; an upstream that
        // decodes before splitting would see one more segment than the
        // policy did.
        b'/' => Err(PathError::EncodedSlash),
        b'\\' => Err(PathError::EncodedBackslash),
        _ => check_control(byte),
    }
}

/// Refuses NUL and the other ASCII control characters, which upstreams
/// truncate at, log unsafely or treat as separators.
fn check_control(byte: u8) -> Result<(), PathError> {
    match byte {
        0 => Err(PathError::NulByte),
        0x01..=0x1F | 0x7F => Err(PathError::ControlCharacter { byte }),
        _ => Ok(()),
    }
}

/// Percent-decodes one raw segment that starts at byte `offset` of the raw
/// path. Raw bytes were checked by the caller; this checks decoded ones.
fn decode_segment(raw: &str, offset: usize) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    if !bytes.contains(&b'%') {
        return Ok(raw.to_owned());
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte != b'%' {
            out.push(byte);
            i += 1;
            continue;
        }
        let high = bytes.get(i + 1).copied().and_then(hex_value);
        let low = bytes.get(i + 2).copied().and_then(hex_value);
        let (Some(high), Some(low)) = (high, low) else {
            return Err(PathError::InvalidPercentEncoding { offset: offset + i });
        };
        let decoded = (high << 4) | low;
        check_decoded_byte(decoded)?;
        out.push(decoded);
        i += 3;
    }
    // Policies compare text; bytes that are not UTF-8 have no one reading
    // that both the gateway and every upstream would agree on.
    String::from_utf8(out).map_err(|_| PathError::InvalidUtf8)
}

/// The value of one hexadecimal digit.
fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Appends `segment` to `out`, percent-encoding every byte that is not
/// safe to send literally in a path segment.
fn encode_segment_into(out: &mut String, segment: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in segment.as_bytes() {
        if is_literal_in_segment(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
}

/// RFC 3986 `pchar` minus percent-encoded octets: unreserved, sub-delims,
/// ':' and '@'. These mean the same to every upstream, so they are sent as
/// they are; everything else (including '%', '?', '#', spaces and non-ASCII)
/// is encoded so the upstream's single decoding yields the decoded segment.
fn is_literal_in_segment(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

#[cfg(test)]
mod tests;
