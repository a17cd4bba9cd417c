//! Masking engine throughput over realistic rows, with and without hits.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gatehouse_mask::{DetectorSpec, HashKey, MaskingEngine, Scratch, TextKind, BUILTIN};

fn rows(hits: bool) -> Vec<Vec<u8>> {
    (0..1000)
        .map(|i| {
            let note = if hits && i % 4 == 0 {
                format!("customer alice{i}@example.com paid with 4111 1111 1111 1111")
            } else {
                format!(
                    "order shipped to warehouse {} in bin {}-{}",
                    i % 17,
                    i % 5,
                    i
                )
            };
            format!(
                "{i}\t{}\tWidget model {} (blue)\t{}.{:02}\t2024-01-{:02} 12:34:56+00\t{note}",
                1_000_000 + i,
                i % 97,
                i % 500,
                i % 100,
                1 + i % 28
            )
            .into_bytes()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let detectors = BUILTIN
        .iter()
        .map(|d| DetectorSpec::builtin(d, None))
        .collect();
    let engine = MaskingEngine::new(detectors, Vec::new(), HashKey::new([1; 32])).unwrap();
    let mut g = c.benchmark_group("mask_text");
    for hits in [false, true] {
        let rows = rows(hits);
        let bytes: usize = rows.iter().map(Vec::len).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        let mut scratch = Scratch::default();
        let mut tally = engine.tally();
        let mut out = Vec::with_capacity(4096);
        g.bench_with_input(
            BenchmarkId::from_parameter(if hits {
                "25%_rows_with_hits"
            } else {
                "no_hits"
            }),
            &rows,
            |b, rows| {
                b.iter(|| {
                    for r in rows {
                        out.clear();
                        criterion::black_box(engine.mask_text(
                            r,
                            TextKind::Plain,
                            &mut out,
                            &mut scratch,
                            &mut tally,
                        ));
                    }
                })
            },
        );
    }
    g.finish();

    // One large value with a hit every few bytes (the review's
    // `to_jsonb(repeat('a@b.co ', 80000))`, and the same with \u escapes):
    // the cost per byte must not grow with the value.
    let mut g = c.benchmark_group("mask_large_value");
    g.sample_size(10);
    let cases = [
        ("json_80000_emails", "a@b.co ", TextKind::Json),
        (
            "json_20000_escaped_cards",
            "\\u0034111111111111111 ",
            TextKind::Json,
        ),
        ("text_80000_emails", "a@b.co ", TextKind::Plain),
    ];
    for (name, unit, kind) in cases {
        let n = if name.contains("20000") {
            20_000
        } else {
            80_000
        };
        let mut value = unit.repeat(n).into_bytes();
        if kind == TextKind::Json {
            value.insert(0, b'"');
            value.push(b'"');
        }
        g.throughput(Throughput::Bytes(value.len() as u64));
        let mut scratch = Scratch::default();
        let mut tally = engine.tally();
        let mut out = Vec::with_capacity(value.len() * 2);
        g.bench_with_input(BenchmarkId::from_parameter(name), &value, |b, value| {
            b.iter(|| {
                out.clear();
                criterion::black_box(engine.mask_text(
                    value,
                    kind,
                    &mut out,
                    &mut scratch,
                    &mut tally,
                ));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
