//! The analysis costs work in proportion to its input: doubling a statement
//! doubles what analyzing it allocates (a deterministic stand-in for
//! instructions: every parse node, tree node and walk step allocates).
//! A quadratic step (rescanning, copying a growing list per element) would
//! show as a ratio near four.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocated(sql: &str) -> u64 {
    let before = BYTES.load(Ordering::Relaxed);
    let a = gatehouse_sql::analyze_uncached(sql, Default::default());
    assert!(a.is_ok(), "{a:?}");
    drop(a);
    BYTES.load(Ordering::Relaxed) - before
}

/// A statement of some shape, `n` elements long.
type Shape = fn(usize) -> String;

#[test]
fn doubling_a_statement_doubles_the_work_of_analyzing_it() {
    let shapes: [(&str, Shape); 5] = [
        ("qualified columns", |n| {
            let cols: Vec<String> = (0..n).map(|i| format!("t.c{i}")).collect();
            format!("SELECT {} FROM t", cols.join(", "))
        }),
        ("a long select list", |n| {
            format!("SELECT {}", vec!["1"; n].join(","))
        }),
        ("a multi-row insert", |n| {
            let rows: Vec<String> = (0..n)
                .map(|i| format!("({i}, 'name {i}', {i}.5)"))
                .collect();
            format!("INSERT INTO t (a, b, c) VALUES {}", rows.join(", "))
        }),
        ("a long boolean expression", |n| {
            let terms: Vec<String> = (0..n).map(|i| format!("c{} = {i}", i % 7)).collect();
            format!("SELECT * FROM t WHERE {}", terms.join(" OR "))
        }),
        ("many statements", |n| {
            "SELECT a, lower(b) FROM s.t WHERE id = 1;".repeat(n)
        }),
    ];
    for (what, make) in shapes {
        // Warm up once (lazy statics in libpg_query and the walkers).
        allocated(&make(10));
        let small = allocated(&make(2_000));
        let large = allocated(&make(4_000));
        let ratio = large as f64 / small as f64;
        assert!(
            (1.6..=2.4).contains(&ratio),
            "{what}: analyzing twice the text allocated {ratio:.2} times as much ({small} -> {large} bytes)"
        );
    }
}
