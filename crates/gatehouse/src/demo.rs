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
/// The demo's own addition to the starter policies: the cancel walkthrough sleeps.
const DEMO_POLICY: &str = r#"
// Demo only: let the demo group call pg_sleep, to try cancelling a query.
@id("demo-may-sleep")
permit (
  principal in Gatehouse::Group::"demo",
  action == Gatehouse::Action::"function",
  resource in Gatehouse::Connection::"app-db"
)
when { context.opaque_functions == ["pg_sleep"] };
"#;

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

[[connection]]
name = "app-db"
kind = "postgres"
host = "127.0.0.1"
port = {db_port}
database = "app"
user = "app_owner"
password_file = "app-db.password"
backend_tls = "disable"
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
    let cfg = config_path.display();
    println!(
        r#"
Gatehouse demo is running.

  PostgreSQL (throwaway)  127.0.0.1:{db_port}, database "app" (its password stays inside the gateway)
  Gateway                 PostgreSQL clients on 127.0.0.1:{pg_port}, REST API on http://{api}
  Configuration           {cfg}

Connect through the gateway. The password is your token; dbname picks the connection:

  PGPASSWORD='{token}' psql "host=127.0.0.1 port={pg_port} dbname=app-db user=demo-agent sslmode=require"

Then try:
  SELECT full_name, email, country FROM customers LIMIT 5;
  SELECT status, count(*), sum(total_cents) / 100.0 AS total FROM orders GROUP BY status;
  SELECT pg_sleep(30);     -- press Ctrl-C in psql: the gateway forwards the cancel
  DELETE FROM customers;   -- refused: the token's group "agents" is read-only

The policies are in {policies}; ask why something is refused with:
  gatehouse --config {cfg} policy explain --identity demo-agent --group demo --group agents \
      --connection app-db --sql "DELETE FROM customers"

See the session recorded, statement by statement (in another terminal):
  gatehouse --config {cfg} sessions list
  gatehouse --config {cfg} sessions show <ID>

Press Ctrl-C here to stop and delete everything."#,
        db_port = cluster.port(),
        api = gateway.api_addr,
        token = token.token,
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
