//! psql's describe commands through the gateway for a read-only agent under
//! the starter policies: the catalog functions they call are known
//! side-effect-free, and the catalog names they use resolve as the server
//! resolves them (psql of this machine's PostgreSQL).

mod common;

use common::*;

const STARTER: &str = include_str!("../../../examples/policies/starter.cedar");
const ROUTE: &str = "[[approval.route]]\nname = \"dba\"\napprovers = [\"dba-leads\"]\n";

#[test]
fn psql_describe_commands_work_for_a_read_only_agent() {
    let h = Harness::with(Options {
        policy: Some(STARTER.into()),
        extra_config: ROUTE,
        ..Options::default()
    });
    h.cluster
        .sql(
            "app",
            "SET ROLE app_owner;
             CREATE TABLE customers (id int PRIMARY KEY, name text);
             CREATE VIEW recent AS SELECT id FROM customers;
             CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42';
             CREATE TABLE p (id int) PARTITION BY RANGE (id);
             CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);",
        )
        .unwrap();
    let agent = h.token("agent-7", &["agents"], "1h");
    for cmd in [
        "\\d",
        "\\d+",
        "\\d customers",
        "\\d+ customers",
        "\\dt",
        "\\dt+",
        "\\df",
        "\\df+",
        "\\dn",
        "\\dn+",
        "\\di",
        "\\di+",
        "\\dv",
        "\\dv+",
        "\\d p",
        "\\d+ p",
        "\\d p1",
        "\\dT",
        "\\dx",
        "\\l",
        "\\du",
        "\\dp",
    ] {
        let out = h
            .psql_cmd(&agent, "app-db")
            .args(["-c", cmd])
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd}: {}", stderr(&out));
    }
    let out = h
        .psql_cmd(&agent, "app-db")
        .args(["-c", "\\d customers"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("customers_pkey"), "{}", stdout(&out));
}
