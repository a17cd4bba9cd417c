//! The binary protocol of prepared statements: `COM_STMT_PREPARE`'s answer,
//! `COM_STMT_EXECUTE`'s parameters, and binary result rows (a NULL bitmap,
//! then each value in its type's own encoding).

use super::wire::Cursor;

/// `COM_STMT_PREPARE_OK`: the statement's id and shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PrepareOk {
    pub(crate) statement_id: u32,
    pub(crate) columns: u16,
    pub(crate) params: u16,
}

impl PrepareOk {
    pub(crate) fn parse(payload: &[u8]) -> Option<Self> {
        let mut c = Cursor::new(payload);
        (c.u8()? == 0).then_some(())?;
        let statement_id = c.u32()?;
        let columns = c.u16()?;
        let params = c.u16()?;
        Some(Self {
            statement_id,
            columns,
            params,
        })
    }
}

/// The column-definition flag of unsigned numbers.
pub(crate) const UNSIGNED_FLAG: u16 = 0x20;
/// The parameter-type flag of unsigned numbers (`COM_STMT_EXECUTE`).
const UNSIGNED_PARAM: u8 = 0x80;

/// A `COM_STMT_EXECUTE`'s head: which statement, and its cursor flags.
pub(crate) fn execute_head(payload: &[u8]) -> Option<(u32, u8)> {
    let mut c = Cursor::new(payload.get(1..)?);
    Some((c.u32()?, c.u8()?))
}

/// A parameter's type as `COM_STMT_EXECUTE` binds it: the type byte and
/// whether it is unsigned.
pub(crate) type ParamType = (u8, bool);

/// Parameter values as sent (`None`: NULL).
pub(crate) type ParamValues = Vec<Option<Vec<u8>>>;

/// What `COM_STMT_SEND_LONG_DATA` sent, by parameter number.
pub(crate) type LongData = std::collections::HashMap<u16, Vec<u8>>;

/// Reads an execute's parameters: their types (the ones sent, else
/// `previous`) and values as the server will take them: a parameter sent
/// with `COM_STMT_SEND_LONG_DATA` is that data whatever its NULL bit says
/// (both MySQL and MariaDB use long data first), else NULL when its bit is
/// set, else its value in the message.
pub(crate) fn execute_params(
    payload: &[u8],
    count: usize,
    previous: &[ParamType],
    long_data: &LongData,
) -> Option<(Vec<ParamType>, ParamValues)> {
    if count == 0 {
        return Some((Vec::new(), Vec::new()));
    }
    // Command byte, statement id, flags, iteration count.
    let mut c = Cursor::new(payload.get(10..)?);
    let bitmap = c.take(count.div_ceil(8))?;
    // Any non-zero flag means the types follow, as the servers read it.
    let bound = c.u8()?;
    let types: Vec<ParamType> = if bound != 0 {
        (0..count)
            .map(|_| {
                let t = c.u8()?;
                let f = c.u8()?;
                Some((t, f & UNSIGNED_PARAM != 0))
            })
            .collect::<Option<_>>()?
    } else if previous.len() == count {
        previous.to_vec()
    } else {
        return None;
    };
    let mut values = Vec::with_capacity(count);
    for (i, (t, _)) in types.iter().enumerate() {
        if let Some(long) = u16::try_from(i).ok().and_then(|i| long_data.get(&i)) {
            values.push(Some(long.clone()));
            continue;
        }
        if bitmap[i / 8] & (1 << (i % 8)) != 0 {
            values.push(None);
            continue;
        }
        let v = param_value(*t, &mut c)?;
        values.push(Some(v.to_vec()));
    }
    Some((types, values))
}

/// A parameter's value (without its length prefix), read as both MySQL
/// and MariaDB read it; `None` for a type they read differently (YEAR,
/// INT24, NEWDATE and NULL not marked NULL: MariaDB reads them as strings,
/// MySQL not) or one that does not fit.
fn param_value<'a>(t: u8, c: &mut Cursor<'a>) -> Option<&'a [u8]> {
    match t {
        types::TINY => c.take(1),
        types::SHORT => c.take(2),
        types::LONG | types::FLOAT => c.take(4),
        types::LONGLONG | types::DOUBLE => c.take(8),
        // Length-encoded, as the servers read temporal parameters.
        types::DATE | types::TIME | types::DATETIME | types::TIMESTAMP => c.lenenc_bytes(),
        types::YEAR | types::INT24 | types::NEWDATE | types::NULL => None,
        // Decimals, strings, blobs, JSON, bits, enums, sets, geometry.
        0x00 | 0x0F | 0x10 | 0xF5..=0xFF => c.lenenc_bytes(),
        _ => None,
    }
}

/// The bytes a binary value of `column_type` takes at the start of `rest`
/// (its length prefix included).
pub(crate) fn value_len(column_type: u8, rest: &[u8]) -> Option<usize> {
    let n = declared_len(column_type, rest)?;
    (rest.len() >= n).then_some(n)
}

fn declared_len(column_type: u8, rest: &[u8]) -> Option<usize> {
    Some(match column_type {
        types::NULL => 0,
        types::TINY => 1,
        types::SHORT | types::YEAR => 2,
        types::LONG | types::INT24 | types::FLOAT => 4,
        types::LONGLONG | types::DOUBLE => 8,
        types::TIMESTAMP | types::DATE | types::TIME | types::DATETIME | types::NEWDATE => {
            1 + usize::from(*rest.first()?)
        }
        // Strings, decimals, JSON, blobs, bits, enums, sets, geometry.
        _ => {
            let mut c = Cursor::new(rest);
            let n = usize::try_from(c.lenenc()?).ok()?;
            let head = rest.len() - c.rest().len();
            if c.rest().len() < n {
                return None;
            }
            head + n
        }
    })
}

/// A binary value (without its length prefix) as text, as the text
/// protocol would send it: what records keep and masking strategies read.
pub(crate) fn as_text(column_type: u8, unsigned: bool, v: &[u8]) -> String {
    let int = |n: usize| -> Option<i128> {
        let b = v.get(..n)?;
        let raw = b
            .iter()
            .rev()
            .fold(0u128, |acc, &x| acc << 8 | u128::from(x));
        Some(if unsigned || raw >> (n * 8 - 1) == 0 {
            raw as i128
        } else {
            raw as i128 - (1i128 << (n * 8))
        })
    };
    let text = match column_type {
        types::TINY => int(1).map(|n| n.to_string()),
        types::SHORT | types::YEAR => int(2).map(|n| n.to_string()),
        types::LONG | types::INT24 => int(4).map(|n| n.to_string()),
        types::LONGLONG => int(8).map(|n| n.to_string()),
        types::FLOAT => v
            .get(..4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string()),
        types::DOUBLE => v.get(..8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            f64::from_le_bytes(a).to_string()
        }),
        types::DATE | types::DATETIME | types::TIMESTAMP | types::NEWDATE => Some(datetime(v)),
        types::TIME => Some(time(v)),
        _ => None,
    };
    text.unwrap_or_else(|| String::from_utf8_lossy(v).into_owned())
}

fn datetime(v: &[u8]) -> String {
    let mut c = Cursor::new(v);
    let y = c.u16().unwrap_or(0);
    let mo = c.u8().unwrap_or(0);
    let d = c.u8().unwrap_or(0);
    if v.len() <= 4 {
        return format!("{y:04}-{mo:02}-{d:02}");
    }
    let (h, mi, s) = (
        c.u8().unwrap_or(0),
        c.u8().unwrap_or(0),
        c.u8().unwrap_or(0),
    );
    match c.u32() {
        Some(us) => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"),
        None => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
    }
}

fn time(v: &[u8]) -> String {
    let mut c = Cursor::new(v);
    let neg = c.u8().unwrap_or(0) == 1;
    let days = c.u32().unwrap_or(0);
    let (h, mi, s) = (
        c.u8().unwrap_or(0),
        c.u8().unwrap_or(0),
        c.u8().unwrap_or(0),
    );
    let sign = if neg { "-" } else { "" };
    let hours = u64::from(days) * 24 + u64::from(h);
    match c.u32() {
        Some(us) => format!("{sign}{hours:02}:{mi:02}:{s:02}.{us:06}"),
        None => format!("{sign}{hours:02}:{mi:02}:{s:02}"),
    }
}

/// Column and parameter types (`MYSQL_TYPE_*`).
pub(crate) mod types {
    pub(crate) const TINY: u8 = 0x01;
    pub(crate) const SHORT: u8 = 0x02;
    pub(crate) const LONG: u8 = 0x03;
    pub(crate) const FLOAT: u8 = 0x04;
    pub(crate) const DOUBLE: u8 = 0x05;
    pub(crate) const NULL: u8 = 0x06;
    pub(crate) const TIMESTAMP: u8 = 0x07;
    pub(crate) const LONGLONG: u8 = 0x08;
    pub(crate) const INT24: u8 = 0x09;
    pub(crate) const DATE: u8 = 0x0A;
    pub(crate) const TIME: u8 = 0x0B;
    pub(crate) const DATETIME: u8 = 0x0C;
    pub(crate) const YEAR: u8 = 0x0D;
    pub(crate) const NEWDATE: u8 = 0x0E;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn execute_parameters_read_with_their_types_nulls_and_long_data() {
        // COM_STMT_EXECUTE, id 7, no cursor, 1 iteration; 3 params: LONGLONG 42,
        // NULL, VAR_STRING "hi" (sent as long data instead).
        let mut p = vec![0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0];
        p.push(0b010); // the second is NULL
        p.push(1);
        p.extend_from_slice(&[types::LONGLONG, 0, types::NULL, 0, 0xFD, 0]);
        p.extend_from_slice(&42i64.to_le_bytes());
        let long = LongData::from([(2, b"hi".to_vec())]);
        let (t, v) = execute_params(&p, 3, &[], &long).unwrap();
        assert_eq!(t[0], (types::LONGLONG, false));
        assert_eq!(
            v,
            vec![
                Some(42i64.to_le_bytes().to_vec()),
                None,
                Some(b"hi".to_vec())
            ]
        );
        assert_eq!(
            as_text(types::LONGLONG, false, &v[0].clone().unwrap()),
            "42"
        );
        assert_eq!(execute_head(&p), Some((7, 0)));
    }

    #[test]
    fn parameter_types_the_servers_read_differently_are_not_read() {
        // One YEAR parameter, not NULL: MariaDB reads a string, MySQL two bytes.
        let mut p = vec![0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, types::YEAR, 0];
        p.extend_from_slice(&[3, b'A', 1]);
        assert_eq!(execute_params(&p, 1, &[], &LongData::new()), None);
        // Any non-zero flag sends types; a date's length is length-encoded.
        let mut p = vec![0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, types::DATE, 0];
        p.extend_from_slice(&[4, 0xE8, 0x07, 11, 30]);
        let (_, v) = execute_params(&p, 1, &[], &LongData::new()).unwrap();
        assert_eq!(v, vec![Some(vec![0xE8, 0x07, 11, 30])]);
    }

    #[test]
    fn long_data_is_the_value_even_when_the_null_bit_is_set() {
        let mut p = vec![0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0];
        p.push(0b1);
        p.push(1);
        p.extend_from_slice(&[0xFD, 0]);
        let long = LongData::from([(0, b"admin".to_vec())]);
        let (_, v) = execute_params(&p, 1, &[], &long).unwrap();
        assert_eq!(v, vec![Some(b"admin".to_vec())]);
    }

    #[test]
    fn binary_values_read_as_the_text_protocol_writes_them() {
        assert_eq!(as_text(types::TINY, false, &[0xFF]), "-1");
        assert_eq!(as_text(types::TINY, true, &[0xFF]), "255");
        assert_eq!(
            as_text(types::DATE, false, &[0xE8, 0x07, 11, 30]),
            "2024-11-30"
        );
        assert_eq!(
            as_text(types::DATETIME, false, &[0xE8, 0x07, 11, 30, 23, 5, 9]),
            "2024-11-30 23:05:09"
        );
        assert_eq!(
            as_text(types::TIME, false, &[1, 1, 0, 0, 0, 2, 3, 4]),
            "-26:03:04"
        );
        assert_eq!(value_len(types::DATE, &[4, 0xE8, 0x07, 11, 30]), Some(5));
        assert_eq!(value_len(0xFD, &[2, b'h', b'i']), Some(3));
        assert_eq!(value_len(0xFD, &[5, b'h']), None);
        assert_eq!(value_len(types::LONGLONG, &[1, 2, 3]), None);
    }

    proptest! {
        #[test]
        fn binary_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), t in any::<u8>(), n in 0usize..20) {
            let _ = value_len(t, &bytes);
            let _ = as_text(t, false, &bytes);
            let _ = PrepareOk::parse(&bytes);
            let _ = execute_head(&bytes);
            let _ = execute_params(&bytes, n, &[], &LongData::new());
        }
    }
}
