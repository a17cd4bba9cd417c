//! `gatehouse demo`: a throwaway PostgreSQL with sample data, a gateway in
//! front of it, a token, and the exact psql command to try. Ctrl-C cleans up.

use crate::admin::AdminClient;
use crate::config::RawConfig;
use crate::pgcluster::{free_port, random_hex, ClusterOptions, TempCluster};
use crate::serve;
use anyhow::{anyhow, Context, Result};
use gatehouse_api::CreateTokenRequest;

const SAMPLE_SQL: &str = include_str!("demo/sample.sql");
const STARTER_POLICY: &str = include_str!("../../../examples/policies/starter.cedar");
/// The demo's own additions to the starter policies: the cancel walkthrough
/// sleeps, and the approval walkthrough updates orders.
const DEMO_POLICY: &str = r#"
// Demo only: let the demo group call pg_sleep, to try cancelling a query.
@id("demo-may-sleep")
permit (
  principal in Gatehouse::Group::"demo",
  action == Gatehouse::Action::"function",
  resource in Gatehouse::Connection::"app-db"
)
when { context.opaque_functions == ["pg_sleep"] };

// Demo only: the demo group may update orders; an UPDATE without WHERE is
// held for the "dba" route by unbounded-write-needs-approval above.
@id("demo-may-update-orders")
permit (
  principal in Gatehouse::Group::"demo",
  action == Gatehouse::Action::"update",
  resource == Gatehouse::Table::"app-db/public.orders"
);
"#;

/// How to call this binary in the printed commands: `gatehouse` when that
/// name on the PATH is this binary, else its full path, so every printed
/// command runs as printed.
fn self_command() -> String {
    let Ok(exe) = std::env::current_exe().and_then(std::fs::canonicalize) else {
        return "gatehouse".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .any(|dir| std::fs::canonicalize(dir.join("gatehouse")).is_ok_and(|found| found == exe))
    });
    if on_path {
        "gatehouse".into()
    } else {
        shell_quote(&exe.display().to_string())
    }
}

/// `s` as one shell word.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn port_or_free(preferred: u16) -> Result<u16> {
    match std::net::TcpListener::bind(("127.0.0.1", preferred)) {
        Ok(_) => Ok(preferred),
        Err(_) => free_port(),
    }
}

/// Runs the demo until Ctrl-C.
pub async fn run() -> Result<()> {
    crate::pgcluster::find_bin_dir()?;
    eprintln!("Starting a throwaway PostgreSQL (initdb into a temporary directory)…");
    let cluster = tokio::task::spawn_blocking(|| TempCluster::start(&ClusterOptions::default()))
        .await
        .map_err(|e| anyhow!("cluster start panicked: {e}"))??;
    let backend_password = random_hex(16);
    cluster.sql(
        "postgres",
        &format!("CREATE ROLE app_owner LOGIN PASSWORD '{backend_password}'"),
    )?;
    cluster.sql("postgres", "CREATE DATABASE app OWNER app_owner")?;
    let work = tempfile::Builder::new()
        .prefix("gatehouse-demo-")
        .tempdir()?;
    let sample = work.path().join("sample.sql");
    std::fs::write(&sample, SAMPLE_SQL)?;
    cluster.sql_file("app", &sample)?;
    eprintln!("Loaded the sample schema: customers (60 rows), orders (400 rows).");

    std::fs::write(
        work.path().join("policies.cedar"),
        format!("{STARTER_POLICY}{DEMO_POLICY}"),
    )?;
    let pw_file = work.path().join("app-db.password");
    crate::certs::write_private(&pw_file, backend_password.as_bytes())?;
    let pg_port = port_or_free(15432)?;
    let api_port = port_or_free(8089)?;
    let config_path = work.path().join("gatehouse.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"# Written by `gatehouse demo`.
[server]
data_dir = "./gatehouse-data"
api_listen = "127.0.0.1:{api_port}"

[listeners]
postgres = "127.0.0.1:{pg_port}"

[policy]
files = ["policies.cedar"]

[[approval.route]]
name = "dba"
approvers = ["dba-leads"]
mode = "hold"
hold_timeout = "10m"

[[connection]]
name = "app-db"
kind = "postgres"
host = "127.0.0.1"
port = {db_port}
database = "app"
user = "app_owner"
password_file = "app-db.password"
backend_tls = "disable"

# Values are masked inside the gateway as rows stream back: personal data
# by detectors (emails and phones redacted, cards and SSNs partly shown)…
[connection.masking]
detectors = ["pii"]
# Under column rules, functions the gateway cannot see into are refused;
# pg_sleep (the cancel walkthrough) returns nothing of a column.
trusted_functions = ["pg_sleep"]

# …and a column by name, whatever its content: SSNs hashed (stable, joinable).
[[connection.masking.rule]]
column = "public.customers.ssn"
strategy = "hash"
"#,
            db_port = cluster.port()
        ),
    )?;
    let config = RawConfig::parse(&config_path)
        .and_then(|r| r.resolve())
        .map_err(|p| anyhow!("demo configuration is invalid (a bug): {p}"))?;
    let gateway = serve::start(&config).await?;
    let admin = AdminClient::new(Some(&config_path), None)?;
    let token = admin
        .create_token(&CreateTokenRequest {
            identity: "demo-agent".into(),
            groups: vec!["demo".into(), "agents".into()],
            ttl_seconds: 24 * 3600,
        })
        .await
        .context("creating the demo token")?;
    let approver = admin
        .create_token(&CreateTokenRequest {
            identity: "demo-approver".into(),
            groups: vec!["dba-leads".into()],
            ttl_seconds: 24 * 3600,
        })
        .await
        .context("creating the demo approver's token")?;
    let gh = format!(
        "{} --config {}",
        self_command(),
        shell_quote(&config_path.display().to_string())
    );
    let today = &humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10];
    let pack = shell_quote(&work.path().join("evidence-pack").display().to_string());
    println!(
        r#"
Gatehouse demo is running.

  PostgreSQL (throwaway)  127.0.0.1:{db_port}, database "app" (its password stays inside the gateway)
  Gateway                 PostgreSQL clients on 127.0.0.1:{pg_port}, REST API on http://{api}
  Configuration           {cfg}

Two identities, each with its own token:
  agent     demo-agent     groups demo, agents: reads; UPDATE orders needs approval without WHERE
            {agent}
  approver  demo-approver  group dba-leads: decides approval requests
            {approver_token}

1. Connect as the agent through the gateway (the token is the password; dbname picks the connection):

  PGPASSWORD='{agent}' psql "host=127.0.0.1 port={pg_port} dbname=app-db user=demo-agent sslmode=require"

2. Try, in psql:
  SELECT full_name, email, phone, card_number, ssn FROM customers LIMIT 3;   -- masked in the gateway
  DELETE FROM customers;                  -- refused: the group "agents" is read-only
  SELECT pg_sleep(30);                    -- press Ctrl-C in psql: the gateway forwards the cancel
  UPDATE orders SET status = 'shipped';   -- held: no WHERE, so it waits for an approver

3. While it waits, approve it as the approver (another terminal):
  GATEHOUSE_TOKEN='{approver_token}' {gh} approvals list --pending
  GATEHOUSE_TOKEN='{approver_token}' {gh} approvals approve <ID>

4. Replay the session, verify the evidence log, write and check an evidence pack:
  {gh} sessions list
  {gh} sessions show <ID>
  {gh} audit verify
  {gh} evidence --from {today} --to {today} --out {pack}
  python3 {pack}/verify_pack.py

Why is something refused? The policies are in {policies}:
  {gh} policy explain --identity demo-agent --group demo --group agents --connection app-db --sql "DELETE FROM customers"

Press Ctrl-C here to stop and delete everything."#,
        db_port = cluster.port(),
        api = gateway.api_addr,
        cfg = config_path.display(),
        agent = token.token,
        approver_token = approver.token,
        policies = work.path().join("policies.cedar").display(),
    );
    serve::wait_for_signal().await?;
    eprintln!("\nStopping the gateway and the throwaway PostgreSQL…");
    gateway.stop().await;
    tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        cluster.stop()
    })
    .await
    .map_err(|e| anyhow!("cluster stop panicked: {e}"))??;
    work.close()?;
    eprintln!("Cleaned up.");
    Ok(())
}
