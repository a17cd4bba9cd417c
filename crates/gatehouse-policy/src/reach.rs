//! What an identity may reach: the access review's question. It is answered
//! by asking the engine the questions the gateway asks: may it connect to
//! each connection, and would a probe statement of each kind be allowed on
//! each table the policies name, and on a table none names.

use crate::{ConnectRequest, Decision, PolicyEngine, StatementRequest};
use gatehouse_core::{Identity, Timestamp};
use gatehouse_sql::{analyze_uncached, ParseMode};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The statement kinds a review asks about, each with a probe statement on
/// the table `{t}`.
const PROBES: &[(&str, &str)] = &[
    ("select", "SELECT * FROM {t}"),
    ("insert", "INSERT INTO {t} DEFAULT VALUES"),
    ("update", "UPDATE {t} SET c = c WHERE c = 0"),
    ("delete", "DELETE FROM {t} WHERE c = 0"),
    ("truncate", "TRUNCATE {t}"),
    ("ddl", "ALTER TABLE {t} ADD COLUMN gatehouse_review int"),
    ("copy_out", "COPY {t} TO STDOUT"),
];

/// The table that stands for every table no policy names.
pub const OTHER_TABLES: &str = "(tables no policy names)";
/// A probe table name no policy is likely to name.
const PROBE_TABLE: &str = "public.gatehouse_access_review_probe";

/// One answer of the review.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReachRow {
    /// The connection.
    pub connection: String,
    /// `schema.name`, [`OTHER_TABLES`], or empty for `connect`.
    pub table: String,
    /// `connect` or a statement kind (`select`, `delete`…).
    pub action: String,
    /// `allow`, `deny` or `review`.
    pub decision: String,
    /// The policies that determined it.
    pub policies: Vec<String>,
}

impl PolicyEngine {
    /// The tables policies name as `Gatehouse::Table` entities on
    /// `connection`, as `schema.name`.
    pub fn named_tables(&self, connection: &str) -> BTreeSet<String> {
        let prefix = format!("{connection}/");
        self.all
            .policies()
            .flat_map(|p| p.entity_literals())
            .filter(|uid| uid.type_name() == &self.names.table)
            .filter_map(|uid| {
                uid.id()
                    .unescaped()
                    .strip_prefix(&prefix)
                    .map(str::to_string)
            })
            .collect()
    }

    /// What `identity`, calling from `client_ip` at `now`, may do on each
    /// of `connections` (name and kind: `postgres`, `http`, `mcp`). Where it
    /// may not connect, nothing else is asked.
    pub fn reach(
        &self,
        identity: &Identity,
        connections: &[(String, String)],
        client_ip: IpAddr,
        now: Timestamp,
    ) -> Vec<ReachRow> {
        let mut rows = Vec::new();
        for (connection, kind) in connections {
            let connect = self.decide_connect(&ConnectRequest {
                identity,
                connection,
                kind,
                client_ip,
                now,
            });
            let refused = matches!(connect, Decision::Deny { .. });
            rows.push(row(connection, "", "connect", &connect));
            if refused {
                continue;
            }
            if kind != "postgres" {
                let probe = crate::reach_api::Probe {
                    identity,
                    connection,
                    kind,
                    client_ip,
                    now,
                };
                rows.extend(
                    self.reach_api(&probe)
                        .into_iter()
                        .map(|(what, action, d)| row(connection, &what, &action, &d)),
                );
                continue;
            }
            let mut tables: Vec<(String, String)> = self
                .named_tables(connection)
                .into_iter()
                .map(|t| (t.clone(), t))
                .collect();
            tables.push((OTHER_TABLES.into(), PROBE_TABLE.into()));
            for (shown, probe) in &tables {
                for (action, sql) in PROBES {
                    let decision = match analyze_uncached(
                        &sql.replace("{t}", &quoted(probe)),
                        ParseMode::default(),
                    ) {
                        Ok(a) => {
                            let statements: Vec<_> = a.statements.iter().collect();
                            self.decide_statements(&StatementRequest {
                                identity,
                                connection,
                                client_ip,
                                now,
                                protocol: "simple",
                                approved: false,
                                statements: &statements,
                                search_path: &[],
                            })
                        }
                        // The probes are fixed statements; a failure here is a bug,
                        // and answering "deny" keeps the review on the safe side.
                        Err(e) => Decision::Deny {
                            policies: Vec::new(),
                            reason: e.to_string(),
                        },
                    };
                    rows.push(row(connection, shown, action, &decision));
                }
            }
        }
        rows
    }
}

/// `schema.name` as a quoted SQL name.
fn quoted(qualified: &str) -> String {
    let (schema, name) = qualified.split_once('.').unwrap_or(("public", qualified));
    format!(
        "\"{}\".\"{}\"",
        schema.replace('"', "\"\""),
        name.replace('"', "\"\"")
    )
}

fn row(connection: &str, table: &str, action: &str, d: &Decision) -> ReachRow {
    ReachRow {
        connection: connection.into(),
        table: table.into(),
        action: action.into(),
        decision: d.name().into(),
        policies: d.policies().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_probe_is_a_statement_of_its_kind_on_the_probe_table() {
        for (action, sql) in PROBES {
            let sql = sql.replace("{t}", &quoted("vault.secrets"));
            let a = analyze_uncached(&sql, ParseMode::default()).unwrap();
            let st = &a.statements[0];
            assert!(
                st.actions.iter().any(|x| x.kind.as_str() == *action
                    && x.table.as_ref().map(|t| t.qualified("public")).as_deref()
                        == Some("vault.secrets")),
                "{sql}: {:?}",
                st.actions
            );
        }
    }
}
