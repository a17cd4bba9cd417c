//! A shared PostgreSQL store for several gateway nodes: its own cluster
//! from initdb (apart from the target database), TLS on with a test CA, a
//! `gatehouse` role whose password is in a file, and the `[store]` section
//! pointing the nodes at it.

use gatehouse::certs::TestCa;
use gatehouse::pgcluster::{random_hex, ClusterOptions, TempCluster};
use std::path::PathBuf;

pub struct StoreCluster {
    pub cluster: TempCluster,
    pub dir: tempfile::TempDir,
    /// The store CA's certificate (PEM file).
    pub ca_file: PathBuf,
    /// The `gatehouse` role's password (file).
    pub password_file: PathBuf,
}

impl StoreCluster {
    pub fn start() -> Self {
        let ca = TestCa::new("gatehouse store CA").unwrap();
        let cert = ca.leaf(&["localhost", "127.0.0.1"]).unwrap();
        let cluster = TempCluster::start(&ClusterOptions {
            tls: Some((cert.cert_pem, cert.key_pem)),
            // The store is reached over TLS only: proves `tls` really encrypts.
            hba_prepend: vec!["hostnossl all gatehouse 127.0.0.1/32 reject".into()],
        })
        .unwrap();
        let password = random_hex(16);
        cluster
            .sql(
                "postgres",
                &format!("CREATE ROLE gatehouse LOGIN PASSWORD '{password}'"),
            )
            .unwrap();
        cluster
            .sql("postgres", "CREATE DATABASE gatehouse OWNER gatehouse")
            .unwrap();
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-store-")
            .tempdir()
            .unwrap();
        let ca_file = dir.path().join("store-ca.pem");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let password_file = dir.path().join("store.password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        Self {
            cluster,
            dir,
            ca_file,
            password_file,
        }
    }

    /// The `[store]` section for the nodes.
    pub fn section(&self, lost_after: &str) -> String {
        format!(
            "\n[store]\nurl = \"postgres://gatehouse@localhost:{}/gatehouse\"\npassword_file = \"{}\"\ntls = \"verify-full\"\nca_file = \"{}\"\nlost_after = \"{lost_after}\"\n",
            self.cluster.port(),
            self.password_file.display(),
            self.ca_file.display()
        )
    }

    /// Runs SQL in the store as its superuser.
    pub fn sql(&self, sql: &str) -> String {
        self.cluster.sql("gatehouse", sql).unwrap()
    }
}
