//! The wire codec on the hot path: framing and decoding what a pgbench
//! `-M prepared` client sends (Bind, Execute, Sync per statement), and
//! passing a large result's DataRows through without inspecting them.

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gatehouse_postgres::codec::frontend::{parse_bind, parse_execute};
use gatehouse_postgres::codec::{Flow, FrameScanner};
use std::convert::Infallible;

fn message(out: &mut BytesMut, ty: u8, body: &[u8]) {
    out.put_u8(ty);
    out.put_u32(body.len() as u32 + 4);
    out.put_slice(body);
}

/// One pgbench -S -M prepared statement as the client sends it.
fn prepared_statement(out: &mut BytesMut) {
    let mut bind = BytesMut::new();
    bind.put_slice(b"\0P0_1\0"); // unnamed portal, statement P0_1
    bind.put_u16(0); // parameter formats: all text
    bind.put_u16(1);
    bind.put_u32(5);
    bind.put_slice(b"73312");
    bind.put_u16(0); // result formats: all text
    message(out, b'B', &bind);
    message(out, b'E', b"\0\0\0\0\0");
    message(out, b'S', b"");
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    let mut one = BytesMut::new();
    prepared_statement(&mut one);
    g.throughput(Throughput::Elements(1));
    g.bench_function("frontend_prepared_statement_scan_and_decode", |b| {
        b.iter(|| {
            let mut scanner = FrameScanner::new(1 << 20);
            let r = scanner.scan(
                &one,
                |ty| matches!(ty, b'B' | b'E' | b'P' | b'Q'),
                |ty, body| {
                    match ty {
                        b'B' => {
                            let bind = parse_bind(body).expect("bind");
                            std::hint::black_box(bind.params.len());
                        }
                        b'E' => {
                            std::hint::black_box(parse_execute(body).expect("execute"));
                        }
                        _ => {}
                    }
                    Ok::<_, Infallible>(Flow::<()>::Forward)
                },
            );
            std::hint::black_box(r.expect("no error").expect("framed").forward)
        })
    });

    // 1,000 DataRows of about 120 bytes, passed through (only C/Z/E inspected).
    let mut rows = BytesMut::new();
    for i in 0..1000u32 {
        let mut body = BytesMut::new();
        body.put_u16(3);
        for v in [
            format!("{i}"),
            format!("Customer {i}"),
            format!("order shipped to warehouse {} in bin {}-{i}", i % 17, i % 5),
        ] {
            body.put_u32(v.len() as u32);
            body.put_slice(v.as_bytes());
        }
        message(&mut rows, b'D', &body);
    }
    g.throughput(Throughput::Bytes(rows.len() as u64));
    g.bench_function("backend_1000_datarows_pass_through", |b| {
        b.iter(|| {
            let mut scanner = FrameScanner::new(1 << 20);
            let r = scanner.scan(
                &rows,
                |ty| matches!(ty, b'C' | b'Z' | b'E'),
                |_, _| Ok::<_, Infallible>(Flow::<()>::Forward),
            );
            std::hint::black_box(r.expect("no error").expect("framed").forward)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
