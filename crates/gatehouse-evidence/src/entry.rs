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
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let field = |k: &str| v.get(k).ok_or_else(|| bad(format!("no {k:?}")));
        let seq = field("seq")?
            .as_u64()
            .ok_or_else(|| bad("seq is not a number".into()))?;
        let node = field("node")?
            .as_str()
            .ok_or_else(|| bad("node is not a string".into()))?
            .to_string();
        let prev = field("prev")?
            .as_str()
            .and_then(|p| hex::decode(p).ok())
            .and_then(|p| Hash::try_from(p).ok())
            .ok_or_else(|| bad("prev is not a hash".into()))?;
        let kind: EventKind = serde_json::from_value(field("kind")?.clone())
            .map_err(|_| bad("unknown kind".into()))?;
        let time = field("time")?
            .as_str()
            .ok_or_else(|| bad("time is not a string".into()))?
            .to_string();
        let payload = field("payload")?.clone();
        if v.as_object().map_or(0, |m| m.len()) != 6 {
            return Err(bad("unexpected fields".into()));
        }
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

    /// This entry's leaf hash.
    pub fn leaf(bytes: &[u8]) -> Hash {
        leaf_hash(bytes)
    }
}
