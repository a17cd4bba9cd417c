//! Verdicts a session remembers by statement text, so a repeated text costs a
//! hash lookup instead of an analysis and a policy decision.

use super::Verdict;
use gatehouse_sql::StatementAnalysis;
use std::collections::HashMap;
use std::sync::Arc;

/// Estimated bytes one session's cache holds at most, per protocol. Every
/// session has its own, so this bounds what many sessions sending distinct
/// texts (`-M simple` with inlined literals) hold between them: 64 sessions
/// at 1,024 entries each had held about 50 MB (measured with heaptrack).
const BUDGET: usize = 256 * 1024;
/// Longer texts are decided every time (the shared analysis cache still
/// spares them the parse up to its own limit).
const MAX_TEXT: usize = 16 * 1024;
/// Estimated cost of an entry besides its texts: the verdict, the analysis's
/// vectors, the map slot.
const ENTRY_OVERHEAD: usize = 1024;

/// One protocol's verdicts, with the estimated bytes they hold.
#[derive(Default)]
pub(super) struct VerdictCache {
    entries: HashMap<Box<str>, Cached>,
    bytes: usize,
}

/// A verdict, the policy generation it was made under, and the analysis of a
/// single-statement text.
struct Cached {
    generation: u64,
    verdict: Verdict,
    analysis: Option<Arc<StatementAnalysis>>,
}

impl VerdictCache {
    /// The verdict for `sql` made under `generation`, if remembered.
    pub(super) fn get(
        &self,
        sql: &str,
        generation: u64,
    ) -> Option<(Verdict, Option<Arc<StatementAnalysis>>)> {
        let hit = self.entries.get(sql)?;
        (hit.generation == generation).then(|| (hit.verdict.clone(), hit.analysis.clone()))
    }

    /// Remembers a verdict; when the budget is spent the cache starts over
    /// (cheaper than tracking recency, and a session's working set refills it).
    pub(super) fn insert(
        &mut self,
        sql: &str,
        generation: u64,
        verdict: Verdict,
        analysis: Option<Arc<StatementAnalysis>>,
    ) {
        if sql.len() > MAX_TEXT {
            return;
        }
        // The key, and the analysis's own copy of the text.
        let cost = 2 * sql.len() + ENTRY_OVERHEAD;
        if self.bytes + cost > BUDGET {
            self.entries.clear();
            self.bytes = 0;
        }
        let cached = Cached {
            generation,
            verdict,
            analysis,
        };
        if self.entries.insert(sql.into(), cached).is_none() {
            self.bytes += cost;
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow() -> Verdict {
        Verdict::allowed(vec!["p".into()], gatehouse_core::DecidedIn::Enforce)
    }

    #[test]
    fn remembers_by_text_and_generation() {
        let mut c = VerdictCache::default();
        c.insert("select 1", 7, allow(), None);
        assert!(c.get("select 1", 7).is_some());
        assert!(c.get("select 1", 8).is_none(), "policy reloaded since");
        assert!(c.get("select 2", 7).is_none());
        // A long text is not kept.
        let long = format!("select '{}'", "x".repeat(MAX_TEXT));
        c.insert(&long, 7, allow(), None);
        assert!(c.get(&long, 7).is_none());
    }

    #[test]
    fn distinct_texts_stay_within_the_budget() {
        let mut c = VerdictCache::default();
        let mut most = 0;
        for i in 0..10_000 {
            let sql = format!("select abalance from pgbench_accounts where aid = {i}");
            c.insert(&sql, 1, allow(), None);
            assert!(c.bytes <= BUDGET);
            most = most.max(c.len());
            assert!(c.get(&sql, 1).is_some(), "the newest is always there");
        }
        // About BUDGET / (1 KiB + twice a 50-byte text) entries at most.
        assert!((200..=256).contains(&most), "{most}");
        // The same text twice counts once.
        let mut c = VerdictCache::default();
        c.insert("select 1", 1, allow(), None);
        c.insert("select 1", 2, allow(), None);
        assert_eq!((c.len(), c.bytes), (1, 2 * 8 + ENTRY_OVERHEAD));
        assert!(c.get("select 1", 2).is_some());
    }
}
