//! The relay's reading of both upgrade protocols, and what a hostile
//! caller could try against the recording.

use super::fixtures::{block, compressor, spdy_data, syn_stream, ws_frame};
use super::*;
use flate2::FlushCompress;
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

#[test]
fn exit_statuses_are_read() {
    assert_eq!(
        exit_status(br#"{"metadata":{},"status":"Success"}"#),
        (Some(0), None)
    );
    let failure = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
    assert_eq!(exit_status(failure), (Some(3), None));
    let other = br#"{"status":"Failure","message":"container not found"}"#;
    assert_eq!(
        exit_status(other),
        (None, Some("container not found".into()))
    );
}

#[test]
fn wires_from_the_answer() {
    assert_eq!(
        Wire::of("websocket", "v5.channel.k8s.io"),
        Some(Wire::WebSocket { v5: true })
    );
    assert_eq!(
        Wire::of("WebSocket", "v4.channel.k8s.io"),
        Some(Wire::WebSocket { v5: false })
    );
    assert_eq!(
        Wire::of("websocket", "SPDY/3.1+portforward.k8s.io"),
        Some(Wire::SpdyInWebSocket)
    );
    assert_eq!(Wire::of("SPDY/3.1", "v4.channel.k8s.io"), Some(Wire::Spdy));
    assert_eq!(Wire::of("h2c", ""), None);
}

/// An exec's relay settings, its recording kept in memory.
fn settings(wire: Wire, stdin: bool, limit: usize) -> RelaySettings {
    RelaySettings {
        wire,
        port_forward: false,
        stdin,
        engine: Arc::new(MaskingEngine::secrets_only()),
        limit,
        header: header(),
        sink: None,
        port_check: None,
    }
}

fn header() -> Header {
    Header {
        title: "t".into(),
        command: "c".into(),
        started_unix: 0,
    }
}

/// A channel message from the caller (masked) and from the API server.
fn from_caller(ch: u8, data: &[u8]) -> Vec<u8> {
    ws_frame(2, true, &[&[ch][..], data].concat(), Some([1, 2, 3, 4]))
}
fn from_server(ch: u8, data: &[u8]) -> Vec<u8> {
    ws_frame(2, true, &[&[ch][..], data].concat(), None)
}

/// Relays `client` and `server` bytes through `relay`; what it found and
/// the recording's text.
async fn run(wire: Wire, limit: usize, client: Vec<u8>, server: Vec<u8>) -> (Relayed, String) {
    let (gw_c, mut peer_c) = duplex(1 << 20);
    let (gw_u, mut peer_u) = duplex(1 << 20);
    let h = tokio::spawn(relay(gw_c, gw_u, settings(wire, true, limit)));
    peer_c.write_all(&client).await.unwrap();
    peer_c.shutdown().await.unwrap();
    // The API server answers what reached it (a stream it was told of).
    let mut sink = Vec::new();
    let _ = peer_u.read_to_end(&mut sink).await;
    peer_u.write_all(&server).await.unwrap();
    peer_u.shutdown().await.unwrap();
    let _ = peer_c.read_to_end(&mut sink).await;
    let (r, cast) = h.await.unwrap();
    let text = cast
        .map(|c| String::from_utf8(c.finish()).unwrap())
        .unwrap_or_default();
    (r, text)
}

#[test]
fn protocols_the_gateway_cannot_read_are_not_relayed() {
    for p in [
        "base64.channel.k8s.io",
        "v4.base64.channel.k8s.io",
        "v6.channel.k8s.io",
        "",
    ] {
        assert_eq!(Wire::of("websocket", p), None, "{p}");
    }
}

#[tokio::test]
async fn each_frame_carries_its_own_channel() {
    // The API server reads a continuation frame as a message of its own:
    // its first byte is its channel (here 0, stdin).
    let first = ws_frame(2, false, &[5u8], Some([1, 2, 3, 4]));
    let cont = ws_frame(0, true, b"\x00rm -rf /data\n", Some([4, 3, 2, 1]));
    let (r, cast) = run(
        Wire::WebSocket { v5: true },
        1 << 20,
        [first, cont].concat(),
        Vec::new(),
    )
    .await;
    assert!(cast.contains("rm -rf /data"), "{cast}");
    assert_eq!(r.stdio_bytes[0], 13);
}

#[tokio::test]
async fn a_caller_cannot_write_the_output_or_the_status() {
    let mut client = from_caller(1, b"everything is fine\n");
    client.extend(from_caller(3, br#"{"status":"Success"}"#));
    let mut server = from_server(1, b"real output\n");
    server.extend(from_server(3, br#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"2"}]}}"#));
    let (r, cast) = run(Wire::WebSocket { v5: true }, 1 << 20, client, server).await;
    assert!(
        !cast.contains("everything is fine") && cast.contains("real output"),
        "{cast}"
    );
    assert_eq!(r.exit_code, Some(2));
}

#[tokio::test]
async fn a_full_recording_cuts_the_stream() {
    let mut client = Vec::new();
    for _ in 0..64 {
        client.extend(from_caller(0, &[b'.'; 100]));
    }
    client.extend(from_caller(0, b"rm -rf /data\n"));
    let (r, cast) = run(Wire::WebSocket { v5: true }, 4096, client, Vec::new()).await;
    let cut = r.cut.unwrap_or_default();
    assert!(cut.contains("recording_limit"), "{cut}");
    assert!(cast.contains("reached its limit"), "{cast}");
}

#[tokio::test]
async fn a_header_value_is_read_up_to_its_first_nul_as_spdystream_does() {
    let mut z = compressor();
    let mut client = syn_stream(
        1,
        &block(&mut z, &[("streamtype", "stdin\0x")], FlushCompress::Sync),
    );
    client.extend(syn_stream(
        3,
        &block(&mut z, &[("streamtype", "stdout\0x")], FlushCompress::Sync),
    ));
    client.extend(spdy_data(1, false, b"cat /secret\n"));
    let (r, cast) = run(
        Wire::Spdy,
        1 << 20,
        client,
        spdy_data(3, false, b"hunter2\n"),
    )
    .await;
    assert_eq!(r.stdio_bytes, [12, 8, 0], "{cast}");
}

#[test]
fn a_header_stream_that_ends_is_refused_at_once() {
    let mut z = compressor();
    let mut wire = syn_stream(
        1,
        &block(&mut z, &[("streamtype", "stdin")], FlushCompress::Finish),
    );
    wire.extend(syn_stream(3, b"\x00\x00\x00\x00junk"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = spdy::SpdyFrames::new();
        let _ = tx.send(r.feed(&wire, &mut |_| {}).is_err());
    });
    assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)), Ok(true));
}

#[test]
fn a_length_with_its_top_bit_set_is_refused() {
    let mut f = vec![0x82, 0xFF];
    f.extend_from_slice(&0x8000_0000_0000_0001u64.to_be_bytes());
    f.extend_from_slice(&[1, 2, 3, 4, 9]);
    let mut r = websocket::WsFrames::new(true);
    assert!(r.feed(&f, &mut |_| {}).is_err());
}

#[test]
fn spdy_frames_other_readers_would_read_otherwise_are_refused() {
    // A PING longer than its 4 bytes would hide a frame inside it.
    let mut ping = vec![0x80, 3, 0, 6, 0, 0, 0, 12, 0, 0, 0, 1];
    ping.extend(spdy_data(1, false, b"rm"));
    assert!(spdy::SpdyFrames::new().feed(&ping, &mut |_| {}).is_err());
    // An unknown control frame.
    let odd = [0x80, 3, 0, 5, 0, 0, 0, 0];
    assert!(spdy::SpdyFrames::new().feed(&odd, &mut |_| {}).is_err());
    // A stream id used again.
    let mut z = compressor();
    let mut wire = syn_stream(
        3,
        &block(&mut z, &[("streamtype", "stdin")], FlushCompress::Sync),
    );
    wire.extend(syn_stream(
        3,
        &block(&mut z, &[("streamtype", "resize")], FlushCompress::Sync),
    ));
    assert!(spdy::SpdyFrames::new().feed(&wire, &mut |_| {}).is_err());
    // Bytes left after a header block's pairs.
    let mut z = compressor();
    let mut raw = 1u32.to_be_bytes().to_vec();
    for s in ["streamtype", "stdin"] {
        raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
        raw.extend_from_slice(s.as_bytes());
    }
    raw.extend_from_slice(b"extra");
    let mut hb = Vec::with_capacity(raw.len() + 64);
    z.compress_vec(&raw, &mut hb, FlushCompress::Sync).unwrap();
    assert!(spdy::SpdyFrames::new()
        .feed(&syn_stream(1, &hb), &mut |_| {})
        .is_err());
}

#[tokio::test]
async fn without_stdin_the_caller_cannot_write_input_into_the_record() {
    let (gw_c, mut peer_c) = duplex(1 << 20);
    let (gw_u, mut peer_u) = duplex(1 << 20);
    let settings = settings(Wire::WebSocket { v5: true }, false, 1 << 20);
    let h = tokio::spawn(relay(gw_c, gw_u, settings));
    peer_c
        .write_all(&from_caller(0, b"fake input\n"))
        .await
        .unwrap();
    peer_c.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let _ = peer_u.read_to_end(&mut sink).await;
    peer_u.shutdown().await.unwrap();
    let _ = peer_c.read_to_end(&mut sink).await;
    let (r, cast) = h.await.unwrap();
    assert_eq!(r.stdio_bytes[0], 0);
    assert!(!cast.unwrap().finish().windows(4).any(|w| w == b"fake"));
}

#[tokio::test]
async fn a_silent_caller_does_not_hold_the_record_open() {
    let (gw_c, _peer_c) = duplex(1 << 20);
    let (gw_u, mut peer_u) = duplex(1 << 20);
    let settings = settings(Wire::WebSocket { v5: true }, true, 1 << 20);
    let h = tokio::spawn(relay(gw_c, gw_u, settings));
    peer_u
        .write_all(&from_server(3, br#"{"status":"Success"}"#))
        .await
        .unwrap();
    peer_u.shutdown().await.unwrap();
    // The caller's side stays open and silent; the relay ends anyway.
    let (r, _) = tokio::time::timeout(Duration::from_secs(60), h)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.exit_code, Some(0));
}

mod properties {
    //! Bytes from a caller or an API server, whatever they are and however
    //! they are cut: the readers never panic or hang, and read the same
    //! in any pieces.
    use super::*;
    use proptest::prelude::*;

    /// The data events of `wire` read in `cut`-byte pieces (merged per
    /// frame start), and whether reading failed.
    fn ws_read(from_client: bool, wire: &[u8], cut: usize) -> (Vec<(bool, Vec<u8>)>, bool) {
        let mut r = websocket::WsFrames::new(from_client);
        let mut got: Vec<(bool, Vec<u8>)> = Vec::new();
        let mut failed = false;
        for piece in wire.chunks(cut.max(1)) {
            let res = r.feed(piece, &mut |e| {
                if let websocket::WsEvent::Data { first, bytes } = e {
                    match got.last_mut() {
                        Some(last) if !first => last.1.extend_from_slice(bytes),
                        _ => got.push((first, bytes.to_vec())),
                    }
                }
            });
            if res.is_err() {
                failed = true;
                break;
            }
        }
        (got, failed)
    }

    /// What `wire` read in `cut`-byte pieces holds: each event as text,
    /// a stream's consecutive data merged (it may come in more pieces).
    fn spdy_read(wire: &[u8], cut: usize) -> (Vec<String>, bool) {
        let mut r = spdy::SpdyFrames::new();
        let mut got: Vec<(Option<u32>, String, Vec<u8>)> = Vec::new();
        let mut failed = false;
        for piece in wire.chunks(cut.max(1)) {
            let res = r.feed(piece, &mut |e| match e {
                spdy::SpdyEvent::Data { stream, bytes } => match got.last_mut() {
                    Some((Some(s), _, data)) if *s == stream => data.extend_from_slice(bytes),
                    _ => got.push((Some(stream), String::new(), bytes.to_vec())),
                },
                other => got.push((None, format!("{other:?}"), Vec::new())),
            });
            if res.is_err() {
                failed = true;
                break;
            }
        }
        let text = got
            .into_iter()
            .map(|(stream, event, data)| match stream {
                Some(s) => format!("data {s} {data:?}"),
                None => event,
            })
            .collect();
        (text, failed)
    }

    proptest! {
        #[test]
        fn any_websocket_bytes_read_alike_in_any_pieces(
            wire in proptest::collection::vec(any::<u8>(), 0..600),
            cut in 1usize..40,
            from_client in any::<bool>(),
        ) {
            let (whole, whole_failed) = ws_read(from_client, &wire, wire.len().max(1));
            let (pieces, pieces_failed) = ws_read(from_client, &wire, cut);
            prop_assert_eq!(whole_failed, pieces_failed);
            if !whole_failed {
                prop_assert_eq!(whole, pieces);
            }
        }

        #[test]
        fn well_formed_websocket_messages_are_read_whole(
            messages in proptest::collection::vec((0u8..5, proptest::collection::vec(any::<u8>(), 0..300)), 1..6),
            cut in 1usize..50,
        ) {
            let mut wire = Vec::new();
            for (ch, data) in &messages {
                wire.extend(from_caller(*ch, data));
            }
            let (got, failed) = ws_read(true, &wire, cut);
            prop_assert!(!failed);
            let want: Vec<(bool, Vec<u8>)> = messages
                .iter()
                .map(|(ch, data)| (true, [&[*ch][..], data].concat()))
                .collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn any_spdy_bytes_are_read_or_refused(
            wire in proptest::collection::vec(any::<u8>(), 0..600),
            cut in 1usize..40,
        ) {
            let (whole, whole_failed) = spdy_read(&wire, wire.len().max(1));
            let (pieces, pieces_failed) = spdy_read(&wire, cut);
            prop_assert_eq!(whole_failed, pieces_failed);
            if !whole_failed {
                prop_assert_eq!(whole, pieces);
            }
        }

        #[test]
        fn well_formed_spdy_streams_are_read_alike_in_any_pieces(
            streams in proptest::collection::vec(
                (prop_oneof![Just("stdin"), Just("stdout"), Just("stderr"), Just("error"), Just("resize")],
                 proptest::collection::vec(any::<u8>(), 0..200)),
                1..6),
            cut in 1usize..50,
        ) {
            let mut z = compressor();
            let mut wire = Vec::new();
            for (i, (kind, data)) in streams.iter().enumerate() {
                let id = 2 * i as u32 + 1;
                wire.extend(syn_stream(id, &block(&mut z, &[("streamtype", kind)], FlushCompress::Sync)));
                wire.extend(spdy_data(id, true, data));
            }
            let (whole, whole_failed) = spdy_read(&wire, wire.len());
            let (pieces, pieces_failed) = spdy_read(&wire, cut);
            prop_assert!(!whole_failed && !pieces_failed);
            prop_assert_eq!(&whole, &pieces);
            let opens = whole.iter().filter(|e| e.starts_with("Open")).count();
            prop_assert_eq!(opens, streams.len());
        }

        #[test]
        fn any_output_makes_a_valid_recording(
            chunks in proptest::collection::vec((0usize..3, proptest::collection::vec(any::<u8>(), 0..300)), 0..20),
        ) {
            let mut c = gatehouse_session::recording::Cast::new(Arc::new(MaskingEngine::secrets_only()), 1 << 20, header());
            let mut out = Vec::new();
            let mut totals = [0u64; 3];
            for (which, bytes) in &chunks {
                let stdio = [gatehouse_session::recording::Stdio::Stdin, gatehouse_session::recording::Stdio::Stdout, gatehouse_session::recording::Stdio::Stderr][*which];
                c.data(stdio, bytes);
                totals[*which] += bytes.len() as u64;
                out.extend(c.ready());
            }
            prop_assert_eq!(c.bytes, totals);
            out.extend(c.finish());
            let text = String::from_utf8(out).unwrap();
            let mut lines = text.lines();
            let head: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
            prop_assert_eq!(&head["version"], 2);
            for l in lines {
                let e: serde_json::Value = serde_json::from_str(l).unwrap();
                prop_assert!(e[0].is_f64() && e[1].is_string() && e[2].is_string(), "{}", l);
            }
        }
    }
}
