//! What a server answers a command with: OK, ERR and EOF packets, and the
//! column definitions and rows of a result set.

use super::wire::{put_lenenc, Cursor};
use bytes::BufMut;

/// The first byte of an OK packet.
pub(crate) const OK: u8 = 0x00;
/// The first byte of an ERR packet.
pub(crate) const ERR: u8 = 0xFF;
/// The first byte of an EOF packet (shorter than 9 bytes).
pub(crate) const EOF: u8 = 0xFE;
/// The first byte of a LOCAL INFILE request.
pub(crate) const LOCAL_INFILE: u8 = 0xFB;

/// Whether `payload` is an EOF packet (a row may also start with 0xFE, but
/// is then at least 9 bytes long).
pub(crate) fn is_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&EOF) && payload.len() < 9
}

/// Whether `payload` is an ERR packet.
pub(crate) fn is_err(payload: &[u8]) -> bool {
    payload.first() == Some(&ERR)
}

/// An OK packet's fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ok {
    pub(crate) affected_rows: u64,
    pub(crate) last_insert_id: u64,
    pub(crate) status: u16,
    pub(crate) warnings: u16,
}

impl Ok {
    pub(crate) fn parse(payload: &[u8]) -> Option<Self> {
        let mut c = Cursor::new(payload);
        (c.u8()? == OK).then_some(())?;
        Some(Self {
            affected_rows: c.lenenc()?,
            last_insert_id: c.lenenc()?,
            status: c.u16()?,
            warnings: c.u16().unwrap_or(0),
        })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.put_u8(OK);
        put_lenenc(&mut out, self.affected_rows);
        put_lenenc(&mut out, self.last_insert_id);
        out.put_u16_le(self.status);
        out.put_u16_le(self.warnings);
        out
    }
}

/// An ERR packet's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Err {
    pub(crate) code: u16,
    pub(crate) sqlstate: String,
    pub(crate) message: String,
}

impl Err {
    pub(crate) fn parse(payload: &[u8]) -> Option<Self> {
        let mut c = Cursor::new(payload);
        (c.u8()? == ERR).then_some(())?;
        let code = c.u16()?;
        let sqlstate = if c.rest().first() == Some(&b'#') {
            c.take(1)?;
            String::from_utf8_lossy(c.take(5)?).into_owned()
        } else {
            "HY000".into()
        };
        Some(Self {
            code,
            sqlstate,
            message: String::from_utf8_lossy(c.rest()).into_owned(),
        })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.message.len());
        out.put_u8(ERR);
        out.put_u16_le(self.code);
        out.put_u8(b'#');
        let state = self.sqlstate.as_bytes();
        let mut fixed = [b'0'; 5];
        for (d, s) in fixed.iter_mut().zip(state) {
            *d = *s;
        }
        out.put_slice(&fixed);
        out.put_slice(self.message.as_bytes());
        out
    }
}

/// The status flags of an EOF packet.
pub(crate) fn eof_status(payload: &[u8]) -> Option<u16> {
    let mut c = Cursor::new(payload);
    (c.u8()? == EOF).then_some(())?;
    c.u16()?;
    c.u16()
}

/// An EOF packet.
#[cfg(test)]
pub(crate) fn eof(status: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(5);
    out.put_u8(EOF);
    out.put_u16_le(0);
    out.put_u16_le(status);
    out
}

/// A column definition (ColumnDefinition41): where a result column comes
/// from, what it is called and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    /// The database of the table it comes from (empty for an expression).
    pub(crate) schema: String,
    /// The table's alias in the query.
    pub(crate) table: String,
    /// The table it comes from (empty for an expression).
    pub(crate) org_table: String,
    /// The column's label in the result.
    pub(crate) name: String,
    /// The table column it comes from (empty for an expression).
    pub(crate) org_name: String,
    /// Its type (`MYSQL_TYPE_*`).
    pub(crate) column_type: u8,
    /// Its character set (63: binary).
    pub(crate) charset: u16,
    /// Its flags (`UNSIGNED_FLAG`…).
    pub(crate) flags: u16,
    /// Where its fixed fields (character set, length, type, flags,
    /// decimals) start in the payload.
    pub(crate) fixed_at: usize,
}

impl Column {
    pub(crate) fn parse(payload: &[u8]) -> Option<Self> {
        let mut c = Cursor::new(payload);
        let mut s =
            || -> Option<String> { Some(String::from_utf8_lossy(c.lenenc_bytes()?).into_owned()) };
        let _catalog = s()?;
        let schema = s()?;
        let table = s()?;
        let org_table = s()?;
        let name = s()?;
        let org_name = s()?;
        c.lenenc()?;
        let fixed_at = payload.len() - c.rest().len();
        let charset = c.u16()?;
        let _length = c.u32()?;
        let column_type = c.u8()?;
        let flags = c.u16()?;
        Some(Self {
            schema,
            table,
            org_table,
            name,
            org_name,
            column_type,
            charset,
            flags,
            fixed_at,
        })
    }

    /// Whether its values are text a detector can read (not numbers,
    /// dates or bits, whose text form a client parses).
    pub(crate) fn is_textual(&self) -> bool {
        matches!(
            self.column_type,
            types::VARCHAR | types::JSON | types::ENUM..=types::STRING
        )
    }

    /// Rewrites its definition in `payload` as a text column, for values
    /// masked into text a client must not parse as a number or a date.
    pub(crate) fn retype_as_text(&self, payload: &mut [u8]) {
        let Some(fixed) = payload.get_mut(self.fixed_at..self.fixed_at + 10) else {
            return;
        };
        fixed[0..2].copy_from_slice(&45u16.to_le_bytes());
        fixed[6] = types::VAR_STRING;
        fixed[7..9].copy_from_slice(&0u16.to_le_bytes());
        fixed[9] = 0;
    }
}

/// Column types (`MYSQL_TYPE_*`) the gateway tells apart.
pub(crate) mod types {
    pub(crate) const VARCHAR: u8 = 0x0F;
    pub(crate) const JSON: u8 = 0xF5;
    pub(crate) const ENUM: u8 = 0xF7;
    pub(crate) const VAR_STRING: u8 = 0xFD;
    pub(crate) const STRING: u8 = 0xFE;
}
