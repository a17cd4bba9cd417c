use super::backend::*;
use super::frontend::*;
use super::startup::*;
use super::*;
use bytes::{BufMut, BytesMut};
use proptest::prelude::*;

fn bind_body(params: &[Option<&[u8]>], formats: &[i16]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_slice(b"p1\0s1\0");
    b.put_i16(formats.len() as i16);
    for f in formats {
        b.put_i16(*f);
    }
    b.put_i16(params.len() as i16);
    for p in params {
        match p {
            None => b.put_i32(-1),
            Some(v) => {
                b.put_i32(v.len() as i32);
                b.put_slice(v);
            }
        }
    }
    b.put_i16(0);
    b
}

#[test]
fn bind_resolves_formats() {
    let body = bind_body(&[Some(b"42"), None, Some(&[1, 2])], &[0, 0, 1]);
    let b = parse_bind(&body).unwrap();
    assert_eq!(b.portal, "p1");
    assert_eq!(b.statement, "s1");
    assert_eq!(
        b.params,
        vec![
            BindValue::Text(b"42"),
            BindValue::Null,
            BindValue::Binary(&[1, 2])
        ]
    );
    let one = bind_body(&[Some(b"x"), Some(b"y")], &[1]);
    assert!(parse_bind(&one)
        .unwrap()
        .params
        .iter()
        .all(|p| matches!(p, BindValue::Binary(_))));
    let mismatch = bind_body(&[Some(b"x")], &[0, 0]);
    assert_eq!(
        parse_bind(&mismatch),
        Err(CodecError::Invalid("parameter format count"))
    );
}

#[test]
fn startup_message_round_trips() {
    let mut out = BytesMut::new();
    startup_message(&mut out, [("user", "u"), ("database", "app-db")]);
    let len = u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
    assert_eq!(len, out.len());
    assert_eq!(
        parse_startup_packet(&out[4..]).unwrap(),
        StartupPacket::Startup {
            minor: 0,
            params: vec![
                ("user".into(), "u".into()),
                ("database".into(), "app-db".into())
            ]
        }
    );
    let mut c = BytesMut::new();
    cancel_request(&mut c, 7, -9);
    assert_eq!(
        parse_startup_packet(&c[4..]).unwrap(),
        StartupPacket::Cancel { pid: 7, secret: -9 }
    );
    assert!(parse_startup_packet(&2i32.to_be_bytes()).is_err());
}

#[test]
fn error_response_round_trips() {
    let mut out = BytesMut::new();
    error_response(
        &mut out,
        &ErrorNotice {
            severity: "FATAL",
            code: "28P01",
            message: "token expired",
            detail: None,
            hint: Some("ask for a new token"),
        },
    );
    assert_eq!(out[0], b'E');
    let f = parse_error_fields(&out[5..]).unwrap();
    assert_eq!(f.code, "28P01");
    assert_eq!(f.severity, "FATAL");
    assert_eq!(f.message, "token expired");
}

#[test]
fn rows_from_tags() {
    assert_eq!(rows_from_tag("INSERT 0 5"), Some(5));
    assert_eq!(rows_from_tag("SELECT 3"), Some(3));
    assert_eq!(rows_from_tag("COPY 1000000"), Some(1_000_000));
    assert_eq!(rows_from_tag("CREATE TABLE"), None);
    assert_eq!(rows_from_tag(""), None);
}

fn frames(msgs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for (t, b) in msgs {
        raw(&mut out, *t, b);
    }
    out.to_vec()
}

/// Feeds `stream` to a scanner in chunks, as a relay would, and returns the
/// inspected messages and the total forwarded.
fn scan_in_chunks(stream: &[u8], chunk: usize) -> (Vec<(u8, Vec<u8>)>, usize) {
    let mut sc = FrameScanner::new(1 << 20);
    let mut pending: Vec<u8> = Vec::new();
    let mut seen = Vec::new();
    let mut forwarded = 0;
    for piece in stream.chunks(chunk.max(1)) {
        pending.extend_from_slice(piece);
        let n = sc
            .scan::<(), ()>(
                &pending,
                |t| t != b'D',
                |t, b| {
                    seen.push((t, b.to_vec()));
                    Ok(Flow::Forward)
                },
            )
            .unwrap()
            .unwrap()
            .forward;
        forwarded += n;
        pending.drain(..n);
    }
    (seen, forwarded)
}

proptest! {
    #[test]
    fn scanner_sees_every_inspected_message_in_any_chunking(
        msgs in prop::collection::vec((prop::sample::select(vec![b'C', b'D', b'Z', b'E']), prop::collection::vec(any::<u8>(), 0..300)), 0..20),
        chunk in 1usize..64,
    ) {
        let stream = frames(&msgs);
        let (seen, forwarded) = scan_in_chunks(&stream, chunk);
        let expected: Vec<_> = msgs.iter().filter(|(t, _)| *t != b'D').cloned().collect();
        prop_assert_eq!(seen, expected);
        prop_assert_eq!(forwarded, stream.len());
    }

    #[test]
    fn scanner_never_panics_on_garbage(data in prop::collection::vec(any::<u8>(), 0..512), chunk in 1usize..64) {
        let mut sc = FrameScanner::new(1024);
        let mut pending = Vec::new();
        for piece in data.chunks(chunk) {
            pending.extend_from_slice(piece);
            match sc.scan::<(), ()>(&pending, |t| t % 2 == 0, |_, _| Ok(Flow::Forward)).unwrap() {
                Ok(n) => { pending.drain(..n.forward); }
                Err(_) => break,
            }
        }
    }

    #[test]
    fn decoders_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_startup_packet(&data);
        let _ = parse_authentication(&data);
        let _ = parse_error_fields(&data);
        let _ = parse_backend_key_data(&data);
        let _ = parse_command_tag(&data);
        let _ = parse_password(&data);
        let _ = parse_query(&data);
        let _ = parse_parse(&data);
        let _ = parse_bind(&data);
        let _ = parse_execute(&data);
        let _ = parse_close(&data);
        let _ = parse_function_call(&data);
    }

    #[test]
    fn bind_round_trips(values in prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..40)), 0..10)) {
        let refs: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
        let body = bind_body(&refs, &[0]);
        let b = parse_bind(&body).unwrap();
        prop_assert_eq!(b.params.len(), values.len());
        for (p, v) in b.params.iter().zip(&values) {
            match (p, v) {
                (BindValue::Null, None) => {}
                (BindValue::Text(t), Some(v)) => prop_assert_eq!(*t, v.as_slice()),
                _ => prop_assert!(false, "mismatch"),
            }
        }
    }
}

#[test]
fn scanner_stops_at_a_replaced_message() {
    let stream = frames(&[
        (b'Q', b"a\0".to_vec()),
        (b'Q', b"b\0".to_vec()),
        (b'Q', b"c\0".to_vec()),
    ]);
    let mut sc = FrameScanner::new(1024);
    let r = sc
        .scan::<(), ()>(
            &stream,
            |_| true,
            |_, body| {
                Ok(if body == b"b\0" {
                    Flow::Replace(BytesMut::from(&b"X"[..]))
                } else {
                    Flow::Forward
                })
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(r.forward, 7, "the first message is forwarded");
    let (with, skip) = r.replace.unwrap();
    assert_eq!(&with[..], b"X");
    assert_eq!(skip, 7, "the second is replaced whole");
}
