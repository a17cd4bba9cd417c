//! Log entries: one event, numbered per node and linked to the entry before
//! it, in canonical JSON.

use crate::canonical;
use crate::merkle::{leaf_hash, Hash};
use crate::EvidenceError;
pub use gatehouse_core::EventKind;
use serde_json::Value;

/// The canonical encoding of an entry's members, written in their sorted
/// order (kind, node, payload, prev, seq, time) straight from borrowed
/// parts: the writer encodes each event once, without building (and
/// copying the payload into) an intermediate JSON object.
pub(crate) fn encode_fields(
    seq: u64,
    node: &str,
    prev: &Hash,
    kind: EventKind,
    time: &str,
    payload: &Value,
) -> Result<Vec<u8>, EvidenceError> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"kind\":");
    canonical::write_str(kind.as_str(), &mut out);
    out.extend_from_slice(b",\"node\":");
    canonical::write_str(node, &mut out);
    out.extend_from_slice(b",\"payload\":");
    canonical::write(payload, &mut out)?;
    out.extend_from_slice(b",\"prev\":\"");
    let mut hex_prev = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(prev, &mut hex_prev);
    out.extend_from_slice(&hex_prev);
    out.extend_from_slice(b"\",\"seq\":");
    canonical::write_u64(seq, &mut out);
    out.extend_from_slice(b",\"time\":");
    canonical::write_str(time, &mut out);
    out.push(b'}');
    Ok(out)
}

/// An event to append.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// The details (a JSON object; integers only, no secrets).
    pub payload: Value,
}

/// What verification reads of an entry: its number, its link, its kind
/// and time (not its payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Position in this node's log, from 0.
    pub seq: u64,
    /// The leaf hash of the entry before it.
    pub prev: Hash,
    /// What happened.
    pub kind: EventKind,
    /// When (RFC 3339, UTC).
    pub time: String,
}

/// A decoded entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Position in this node's log, from 0.
    pub seq: u64,
    /// The node that wrote it.
    pub node: String,
    /// The leaf hash of the entry before it (zeros for the first).
    pub prev: Hash,
    /// The event.
    pub event: Event,
}

impl Entry {
    /// The canonical bytes: what the leaf hash covers.
    pub fn encode(&self) -> Result<Vec<u8>, EvidenceError> {
        encode_fields(
            self.seq,
            &self.node,
            &self.prev,
            self.event.kind,
            &self.event.time,
            &self.event.payload,
        )
    }

    /// Decodes stored bytes, which must be exactly the canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, EvidenceError> {
        let bad = |why: String| EvidenceError::Entry(why);
        // Borrowed where it can be; exactly the six members, each once (the
        // canonical comparison below also rules out anything else).
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Members<'a> {
            seq: Value,
            #[serde(borrow)]
            node: std::borrow::Cow<'a, str>,
            prev: Value,
            kind: Value,
            #[serde(borrow)]
            time: std::borrow::Cow<'a, str>,
            payload: Value,
        }
        let m: Members<'_> = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                // Missing, unknown or repeated members.
                bad(e.to_string())
            } else {
                bad(format!("not JSON: {e}"))
            }
        })?;
        let seq = m
            .seq
            .as_u64()
            .ok_or_else(|| bad("seq is not a number".into()))?;
        let prev = m
            .prev
            .as_str()
            .and_then(|p| {
                let mut h = [0u8; 32];
                hex::decode_to_slice(p, &mut h).ok().map(|()| h)
            })
            .ok_or_else(|| bad("prev is not a hash".into()))?;
        let kind: EventKind = m
            .kind
            .as_str()
            .and_then(|k| serde_json::from_value(Value::String(k.to_string())).ok())
            .ok_or_else(|| bad("unknown kind".into()))?;
        let (node, time, payload) = (m.node.into_owned(), m.time.into_owned(), m.payload);
        let entry = Entry {
            seq,
            node,
            prev,
            event: Event {
                kind,
                time,
                payload,
            },
        };
        if entry.encode()? != bytes {
            return Err(bad("not in canonical form".into()));
        }
        Ok(entry)
    }

    /// Checks that `bytes` are exactly a canonical entry, as
    /// [`Entry::decode`] does, and reads its head, without building the
    /// payload: the canonical form is checked in one pass over the bytes
    /// (what verification of a whole log does for every entry).
    pub fn decode_head(bytes: &[u8]) -> Result<Head, EvidenceError> {
        let bad = |why: String| EvidenceError::Entry(why);
        crate::canonical_check::check(bytes).map_err(|why| {
            if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
                bad(format!("not in canonical form: {why}"))
            } else {
                bad(format!("not JSON: {why}"))
            }
        })?;
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Members<'a> {
            seq: u64,
            #[serde(borrow, rename = "node")]
            _node: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            prev: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            kind: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            time: std::borrow::Cow<'a, str>,
            #[serde(rename = "payload")]
            _payload: serde::de::IgnoredAny,
        }
        let m: Members<'_> = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        // As the writer encodes it: 64 lower-case hex digits.
        let mut prev = [0u8; 32];
        let lower = m
            .prev
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !lower || hex::decode_to_slice(m.prev.as_bytes(), &mut prev).is_err() {
            return Err(bad("prev is not a hash".into()));
        }
        let kind: EventKind = serde_json::from_value(Value::String(m.kind.into_owned()))
            .map_err(|_| bad("unknown kind".into()))?;
        Ok(Head {
            seq: m.seq,
            prev,
            kind,
            time: m.time.into_owned(),
        })
    }

    /// This entry's leaf hash.
    pub fn leaf(bytes: &[u8]) -> Hash {
        leaf_hash(bytes)
    }
}
