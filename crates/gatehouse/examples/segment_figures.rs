//! A log of N entries kept in sealed segments of a million, each archived
//! (compressed with zstd) through an archive command and brought back with
//! a fetch command, as a node with `[evidence.segments]` and an object
//! store would: the figures for logs larger than the disk would hold
//! whole (docs/performance.md).
//!
//! ```text
//! cargo run --release -p gatehouse --example segment_figures -- write 100000000 DIR
//! cargo run --release -p gatehouse --example segment_figures -- reopen DIR
//! cargo run --release -p gatehouse --example segment_figures -- verify DIR
//! ```
//!
//! One step per run: peak memory is the process's.

use gatehouse::config::{Archive, SegmentSpec};
use gatehouse::evidence::log_file::LogFile;
use gatehouse::evidence::segments::{archive_pending, seal_next, SegmentPlaces};
use gatehouse_core::AuditTrail;
use gatehouse_evidence::{EvidenceLog, SigningKey};
use gatehouse_store::{Durability, SqliteEvidenceStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[path = "../../gatehouse-evidence/examples/common/sample.rs"]
mod sample;
use sample::{peak_mib, sample_chunk, settings};

fn spec(dir: &Path) -> SegmentSpec {
    let archive = dir.join("archive");
    SegmentSpec {
        entries: 1_000_000,
        dir: dir.join("evidence-segments"),
        archive: Some(Archive::Command(format!(
            "zstd -q -1 -f {{file}} -o {}/{{name}}.zst",
            archive.display()
        ))),
        fetch_command: Some(format!(
            "zstd -q -d -f {}/{{name}}.zst -o {{file}}",
            archive.display()
        )),
    }
}

fn du(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>()
        })
        .unwrap_or(0)
        >> 20
}

async fn write(n: usize, dir: &Path) {
    std::fs::create_dir_all(dir.join("archive")).expect("the archive folder");
    let key = SigningKey::generate("gatehouse.test/figures").expect("a key");
    std::fs::write(dir.join("key"), key.encode()).expect("the key");
    std::fs::write(dir.join("key.pub"), key.verifier().to_string()).expect("the public key");
    let verifier = key.verifier();
    let db = dir.join("evidence.db");
    let store = SqliteEvidenceStore::open(&db, Durability::Os)
        .await
        .unwrap();
    let (log, task) = EvidenceLog::open(Arc::new(store.clone()), key, settings())
        .await
        .unwrap();
    let spec = spec(dir);
    let t = Instant::now();
    for chunk in 0..n.div_ceil(1000) {
        let events = sample_chunk(chunk, n);
        log.append(events).await.unwrap();
        if chunk % 1000 == 999 {
            while seal_next(&store, &verifier, &spec, u64::MAX)
                .await
                .unwrap()
                .is_some()
            {}
            archive_pending(&store, &spec).await.unwrap();
            eprintln!(
                "{} entries in {:.0} s; live log {} MiB, archive {} MiB",
                (chunk + 1) * 1000,
                t.elapsed().as_secs_f64(),
                std::fs::metadata(&db).map_or(0, |m| m.len() >> 20),
                du(&dir.join("archive"))
            );
        }
    }
    log.close().await;
    task.await.unwrap();
    while seal_next(&store, &verifier, &spec, u64::MAX)
        .await
        .unwrap()
        .is_some()
    {}
    archive_pending(&store, &spec).await.unwrap();
    println!(
        "wrote {n} entries in {:.0} s: {} segments archived ({} MiB compressed), live log {} MiB",
        t.elapsed().as_secs_f64(),
        store.segments().await.unwrap().len(),
        du(&dir.join("archive")),
        std::fs::metadata(&db).map_or(0, |m| m.len() >> 20),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "segment_figures write N DIR | reopen DIR | verify DIR";
    match args.get(1).map(String::as_str) {
        Some("write") => {
            let n: usize = args.get(2).and_then(|a| a.parse().ok()).expect(usage);
            write(n, &PathBuf::from(args.get(3).expect(usage))).await;
        }
        Some("reopen") => {
            let dir = PathBuf::from(args.get(2).expect(usage));
            let key =
                SigningKey::parse(&std::fs::read_to_string(dir.join("key")).unwrap()).unwrap();
            let store = SqliteEvidenceStore::open(&dir.join("evidence.db"), Durability::Os)
                .await
                .unwrap();
            let before = peak_mib();
            let t = Instant::now();
            let (log, task) = EvidenceLog::open(Arc::new(store), key, settings())
                .await
                .unwrap();
            println!(
                "reopened in {:.3} s, peak {} MiB (before opening: {before} MiB)",
                t.elapsed().as_secs_f64(),
                peak_mib()
            );
            log.close().await;
            task.await.unwrap();
        }
        Some("verify") => {
            let dir = PathBuf::from(args.get(2).expect(usage));
            let key = SigningKey::parse(&std::fs::read_to_string(dir.join("key")).unwrap())
                .unwrap()
                .verifier();
            let places = SegmentPlaces::configured(&spec(&dir));
            let log = LogFile::open(&dir.join("evidence.db"), &[], &places)
                .await
                .unwrap();
            let pass = log.verify(&key, |_| ()).await.unwrap();
            println!(
                "verified {} entries ({}) in {:.1} s, {:.0} entries/s, peak {} MiB",
                pass.report.entries,
                if pass.report.is_clean() {
                    "clean"
                } else {
                    "NOT clean"
                },
                pass.took.as_secs_f64(),
                pass.rate(),
                peak_mib()
            );
        }
        _ => eprintln!("{usage}"),
    }
}
