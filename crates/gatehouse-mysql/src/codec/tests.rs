use super::handshake::{parse_auth_switch, ssl_request, Greeting, HandshakeResponse};
use super::result::{eof_status, Column, Err, Ok};
use super::wire::Cursor;
use super::*;
use proptest::prelude::*;

#[test]
fn nothing_the_gateway_refuses_is_ever_offered() {
    assert_eq!(caps::OFFERED & caps::NEVER, 0);
    assert_eq!(caps::NEVER & caps::LOCAL_FILES, caps::LOCAL_FILES);
    assert_eq!(caps::NEVER & caps::MULTI_STATEMENTS, caps::MULTI_STATEMENTS);
}

#[test]
fn a_greeting_reads_back_as_written() {
    let g = Greeting {
        server_version: "8.0.40-gatehouse".into(),
        connection_id: 7,
        scramble: (1..=20).collect(),
        capabilities: caps::OFFERED | caps::SSL,
        collation: 45,
        status: 2,
        plugin: "mysql_native_password".into(),
    };
    assert_eq!(Greeting::parse(&g.encode()), Some(g));
}

#[test]
fn a_handshake_response_reads_back_as_written_and_its_ssl_request_is_recognised() {
    let r = HandshakeResponse {
        capabilities: caps::OFFERED | caps::SSL,
        max_packet: 1 << 24,
        collation: 45,
        user: b"job".to_vec(),
        auth: b"token\0".to_vec(),
        database: Some(b"shop-db".to_vec()),
        plugin: Some("mysql_clear_password".into()),
    };
    assert_eq!(HandshakeResponse::parse(&r.encode()), Some(r.clone()));
    assert_eq!(ssl_request(&r.ssl_request()), Some(r.capabilities));
    assert_eq!(ssl_request(&r.encode()), None);
}

#[test]
fn ok_err_and_eof_packets_read_back_as_written() {
    let ok = Ok {
        affected_rows: 300,
        last_insert_id: 70_000,
        status: 2,
        warnings: 1,
    };
    assert_eq!(Ok::parse(&ok.encode()), Some(ok));
    let err = Err {
        code: 1227,
        sqlstate: "42000".into(),
        message: "permission denied".into(),
    };
    assert_eq!(Err::parse(&err.encode()), Some(err));
    assert_eq!(eof_status(&result::eof(0x0008)), Some(0x0008));
    assert!(result::is_eof(&result::eof(0)));
}

#[test]
fn a_long_message_is_split_into_full_packets_and_joined_again() {
    let payload = vec![7u8; MAX_PAYLOAD + 10];
    let mut out = BytesMut::new();
    assert_eq!(put_message(&mut out, 3, &payload), 5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (seq, joined) = rt
        .block_on(PacketReader::new(1 << 26).message(&mut &out[..]))
        .unwrap();
    assert_eq!(
        (seq, joined.len()),
        (4, payload.len()),
        "the last packet's number"
    );
    let too_small = rt.block_on(PacketReader::new(1 << 20).message(&mut &out[..]));
    assert!(matches!(too_small, Err(FrameError::TooLong(_))));
}

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Greeting::parse(&bytes);
        let _ = HandshakeResponse::parse(&bytes);
        let _ = ssl_request(&bytes);
        let _ = parse_auth_switch(&bytes);
        let _ = Ok::parse(&bytes);
        let _ = Err::parse(&bytes);
        let _ = eof_status(&bytes);
        let _ = Column::parse(&bytes);
        let mut c = Cursor::new(&bytes);
        while let Some(Some(_)) = c.row_value() {}
    }

    #[test]
    fn framing_any_chunks_gives_the_same_message(payload in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut out = BytesMut::new();
        put_message(&mut out, 0, &payload);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (_, joined) = rt.block_on(PacketReader::new(1 << 20).message(&mut &out[..])).unwrap();
        prop_assert_eq!(&joined[..], &payload[..]);
    }
}
