//! The gateway's own queries on a logged-in backend connection (the
//! session's search path, the connection's functions, the masking
//! catalog's lookups): rows read as text, bounded, never a caller's.

use super::{next_login_message, send};
use crate::codec::backend::parse_error_fields;
use crate::stream::PgStream;
use bytes::BytesMut;

/// Most rows the gateway reads from one query of its own (the function list
/// is a few thousand): a backend that sends more is refused, not buffered.
const MAX_OWN_QUERY_ROWS: usize = 1_000_000;

/// Runs `sql`, a simple query of the gateway's own, on a logged-in
/// connection, handing each row's `N` text values to `row`, up to
/// ReadyForQuery. An error the backend reports, a malformed row or a row
/// `row` rejects fails it (the rest is still read, so the connection stays in step).
pub(crate) async fn own_query<const N: usize>(
    stream: &mut PgStream,
    buf: &mut BytesMut,
    sql: &str,
    mut row: impl FnMut([&str; N]) -> Result<(), String>,
) -> Result<(), String> {
    own_query_rows(stream, buf, sql, |body| {
        row_text::<N>(body)
            .ok_or_else(|| "a malformed row".to_string())
            .and_then(&mut row)
    })
    .await
}

/// [`own_query`] handing each DataRow's body to `row` as it is.
pub(crate) async fn own_query_rows(
    stream: &mut PgStream,
    buf: &mut BytesMut,
    sql: &str,
    mut row: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut out = BytesMut::with_capacity(sql.len() + 8);
    crate::codec::write::query(&mut out, sql);
    send(stream, &mut out).await?;
    let mut error = None;
    let mut rows = 0usize;
    loop {
        let (ty, body) = next_login_message(stream, buf).await?;
        match ty {
            b'D' if error.is_none() => {
                rows += 1;
                let result = if rows > MAX_OWN_QUERY_ROWS {
                    Err(format!("more than {MAX_OWN_QUERY_ROWS} rows"))
                } else {
                    row(&body)
                };
                error = result.err();
            }
            b'E' if error.is_none() => {
                error = Some(
                    parse_error_fields(&body)
                        .map(|f| format!("{} ({})", f.message, f.code))
                        .unwrap_or_else(|e| e.to_string()),
                )
            }
            b'Z' => break,
            _ => {}
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs `sql` (a simple query returning one text column) and returns its values.
pub(crate) async fn first_column(
    stream: &mut PgStream,
    buf: &mut BytesMut,
    sql: &str,
) -> Result<Vec<String>, String> {
    let mut values = Vec::new();
    own_query::<1>(stream, buf, sql, |[v]| {
        values.push(v.to_string());
        Ok(())
    })
    .await?;
    Ok(values)
}

/// A DataRow of exactly `N` non-null text values.
pub(crate) fn row_text<const N: usize>(body: &[u8]) -> Option<[&str; N]> {
    let mut c = crate::codec::Cursor::new(body);
    if usize::try_from(c.i16("column count").ok()?).ok()? != N {
        return None;
    }
    let mut v = [""; N];
    for slot in &mut v {
        let len = usize::try_from(c.i32("length").ok()?).ok()?;
        *slot = std::str::from_utf8(c.bytes(len, "value").ok()?).ok()?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::row_text;
    use proptest::prelude::*;

    proptest! {
        /// Rows come from the backend: any bytes are answered, never a panic.
        #[test]
        fn any_bytes_are_a_row_or_not(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = row_text::<1>(&body);
            let _ = row_text::<6>(&body);
        }
    }

    #[test]
    fn a_row_is_its_text_values() {
        let mut body = vec![0, 2];
        for v in ["ab", ""] {
            body.extend_from_slice(&(v.len() as i32).to_be_bytes());
            body.extend_from_slice(v.as_bytes());
        }
        assert_eq!(row_text::<2>(&body), Some(["ab", ""]));
        assert_eq!(row_text::<1>(&body), None, "column count must match");
        assert_eq!(
            row_text::<2>(&[0, 2, 255, 255, 255, 255]),
            None,
            "NULL is not text"
        );
    }
}
