//! Reading a text as the server will: analysis (large texts off the
//! runtime's worker), and whether its meaning would change under the
//! settings the gateway pins (`settings.rs`).

use super::{settings, Gate};
use gatehouse_sql::{Analysis, ParseMode};

impl Gate {
    /// Why `sql` (analyzed as `analysis`) would mean something else to a
    /// server whose pinned settings had been changed unreported: read with
    /// backslash escapes (`standard_conforming_strings` off) it is other
    /// statements, or a backslash follows a non-ASCII byte. Only texts with
    /// a backslash are looked at twice.
    /// Analyzes `sql` read in `mode`. Parsing a large text takes long: the
    /// runtime's other tasks move to other threads meanwhile.
    pub(super) fn analyze(&self, sql: &str, mode: ParseMode) -> gatehouse_sql::CachedAnalysis {
        let analyzer = &self.settings.analyzer;
        if sql.len() > gatehouse_sql::LARGE_TEXT && on_multi_thread_runtime() {
            tokio::task::block_in_place(|| analyzer.analyze(sql, mode))
        } else {
            analyzer.analyze(sql, mode)
        }
    }

    pub(super) fn reading_depends_on_settings(
        &self,
        sql: &str,
        analysis: &Analysis,
    ) -> Option<String> {
        if !sql.contains('\\') {
            return None;
        }
        if let Some(reason) = settings::encoding_sensitive(sql) {
            return Some(reason);
        }
        let escaped = ParseMode {
            backslash_escapes: true,
        };
        let other = self.analyze(sql, escaped);
        let same = match other.as_ref() {
            Ok(o) => {
                o.statements.len() == analysis.statements.len()
                    && o.statements.iter().zip(&analysis.statements).all(|(a, b)| {
                        a.text == b.text
                            && a.kind == b.kind
                            && a.actions == b.actions
                            && a.functions == b.functions
                            && a.flags == b.flags
                            && a.attributes == b.attributes
                    })
            }
            Err(_) => false,
        };
        (!same).then(|| {
            "with standard_conforming_strings off (which code in a function could set without the \
             gateway seeing it) this text would be other statements: a backslash in a '…' literal \
             changes where it ends; use E'…' for escapes, or a parameter"
                .into()
        })
    }
}

/// `block_in_place` needs the multi-threaded runtime (the gateway's); unit
/// tests decide outside any runtime.
fn on_multi_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}
