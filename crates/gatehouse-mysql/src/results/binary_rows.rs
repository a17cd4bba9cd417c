//! Masking binary result rows (prepared statements' answers): the NULL
//! bitmap, then each value in its type's encoding.

use super::{mask_value, Col, Plan};
use crate::codec::binary;
use crate::codec::wire::{put_lenenc_bytes, Cursor};
use gatehouse_mask::{MaskTally, Masked, MaskingEngine, Scratch};

/// A binary row as [`super::text_row`] gives a text row. A
/// value masked to NULL sets its bit in the NULL bitmap; a number or
/// date masked to text is written as a string (its column was retyped).
pub(super) fn binary_row(
    engine: &MaskingEngine,
    tally: &mut MaskTally,
    scratch: &mut Scratch,
    payload: &[u8],
    cols: &[Col],
) -> Option<Option<Vec<u8>>> {
    // Header byte, then the NULL bitmap (its first two bits unused).
    let bitmap_len = (cols.len() + 2).div_ceil(8);
    let bitmap = payload.get(1..1 + bitmap_len)?;
    let mut rest = payload.get(1 + bitmap_len..)?;
    let mut new_bitmap = bitmap.to_vec();
    let mut values: Vec<u8> = Vec::with_capacity(payload.len());
    let mut changed = false;
    let mut value_buf = Vec::new();
    for (i, col) in cols.iter().enumerate() {
        let bit = i + 2;
        if bitmap[bit / 8] & (1 << (bit % 8)) != 0 {
            continue;
        }
        let n = binary::value_len(col.column_type, rest)?;
        let (raw, tail) = (rest.get(..n)?, rest.get(n..)?);
        rest = tail;
        if col.plan == Plan::Clear {
            values.extend_from_slice(raw);
            continue;
        }
        // Strings are length-encoded; numbers and dates are masked as
        // the text the text protocol would have sent.
        let text;
        let v: &[u8] = if col.plan == Plan::Detect {
            Cursor::new(raw).lenenc_bytes()?
        } else {
            let mut c = Cursor::new(raw);
            match c.lenenc_bytes() {
                Some(b) if !is_fixed_or_temporal(col.column_type) => b,
                _ => {
                    text = binary::as_text(
                        col.column_type,
                        col.unsigned,
                        payload_value(col.column_type, raw),
                    );
                    text.as_bytes()
                }
            }
        };
        match mask_value(engine, col.plan, v, &mut value_buf, scratch, tally) {
            None if matches!(col.plan, Plan::Rule(_)) && is_fixed_or_temporal(col.column_type) => {
                // Retyped as text: the clear value goes as text too.
                changed = true;
                put_lenenc_bytes(&mut values, v);
            }
            None => values.extend_from_slice(raw),
            Some(Masked::Null) => {
                changed = true;
                new_bitmap[bit / 8] |= 1 << (bit % 8);
            }
            Some(_) => {
                changed = true;
                put_lenenc_bytes(&mut values, &value_buf);
            }
        }
    }
    if !rest.is_empty() {
        return None;
    }
    if !changed {
        return Some(None);
    }
    let mut out = Vec::with_capacity(1 + bitmap_len + values.len());
    out.push(0);
    out.extend_from_slice(&new_bitmap);
    out.extend_from_slice(&values);
    Some(Some(out))
}

/// Whether a binary value of this type is a number or a date (not a
/// length-encoded string).
fn is_fixed_or_temporal(t: u8) -> bool {
    matches!(t, 0x01..=0x0E) && t != 0x0F
}

/// A fixed-size or temporal binary value without its length byte.
fn payload_value(t: u8, raw: &[u8]) -> &[u8] {
    match t {
        0x07 | 0x0A | 0x0B | 0x0C | 0x0E => raw.get(1..).unwrap_or_default(),
        _ => raw,
    }
}
