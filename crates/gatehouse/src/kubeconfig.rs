//! `gatehouse kubeconfig` and `gatehouse kube-credential`: what a caller
//! needs to run kubectl through the gateway unmodified.
//!
//! The kubeconfig points kubectl at `https://<gateway>/<connection>` with
//! the gateway's CA, and gets its credential from `gatehouse
//! kube-credential`, an exec credential plugin that hands kubectl the
//! caller's own token (a service token or the platform's OIDC token) from
//! an environment variable or a file. The token is never written into the
//! kubeconfig.

use anyhow::{bail, Context, Result};
use base64::Engine;
use std::path::{Path, PathBuf};

/// What `gatehouse kubeconfig` was asked for.
pub struct KubeconfigArgs<'a> {
    /// The `kind = "kubernetes"` connection.
    pub connection: &'a str,
    /// The gateway's URL as callers reach it (default: its HTTP listener).
    pub server: Option<&'a str>,
    /// The CA callers verify the gateway with (default: its certificate).
    pub ca: Option<&'a Path>,
    /// Where kube-credential finds the caller's token.
    pub token_env: Option<&'a str>,
    /// … or this file.
    pub token_file: Option<&'a Path>,
}

/// The kubeconfig for `args`, as YAML.
pub fn kubeconfig(config_file: &Path, args: &KubeconfigArgs<'_>) -> Result<String> {
    // Only what the kubeconfig needs is read: no backend secret has to be
    // at hand where it is written.
    let config =
        crate::config::RawConfig::parse(config_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let kinds = config.connection_kinds();
    let kube_names = || {
        let n: Vec<&str> = kinds
            .iter()
            .filter(|(_, k)| k == "kubernetes")
            .map(|(n, _)| n.as_str())
            .collect();
        if n.is_empty() {
            "(none)".to_string()
        } else {
            n.join(", ")
        }
    };
    match kinds.iter().find(|(n, _)| n == args.connection) {
        None => bail!(
            "{}: no connection {:?}; the kubernetes connections are: {}",
            config_file.display(),
            args.connection,
            kube_names()
        ),
        Some((_, kind)) if kind != "kubernetes" => bail!(
            "{}: connection {:?} is kind = {kind:?}, not \"kubernetes\"; the kubernetes connections are: {}",
            config_file.display(),
            args.connection,
            kube_names()
        ),
        Some(_) => {}
    }
    let server = match (args.server, config.http_listen()) {
        (Some(s), _) => s.trim_end_matches('/').to_string(),
        (None, Some(addr)) => {
            let addr: std::net::SocketAddr = addr.parse().map_err(|e| {
                anyhow::anyhow!("{}: listeners.http: {addr:?}: {e}", config_file.display())
            })?;
            if addr.ip().is_unspecified() {
                format!("https://localhost:{}", addr.port())
            } else {
                format!("https://{addr}")
            }
        }
        (None, None) => bail!(
            "{}: listeners.http is not set, so callers cannot reach kubernetes connections",
            config_file.display()
        ),
    };
    let ca_path: PathBuf = match args.ca {
        Some(p) => p.to_path_buf(),
        None => config.tls_cert(),
    };
    let ca = std::fs::read(&ca_path).with_context(|| {
        format!(
            "reading the gateway's CA {} (start the gateway once, or pass --ca)",
            ca_path.display()
        )
    })?;
    let exe = std::env::current_exe().context("finding the gatehouse binary")?;
    let mut plugin_args = vec!["kube-credential".to_string()];
    match (args.token_env, args.token_file) {
        (_, Some(f)) => {
            plugin_args.push("--token-file".into());
            plugin_args.push(f.display().to_string());
        }
        (env, None) => {
            plugin_args.push("--token-env".into());
            plugin_args.push(env.unwrap_or("GATEHOUSE_TOKEN").to_string());
        }
    }
    let name = args.connection;
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = String::new();
    out.push_str(
        "# Written by `gatehouse kubeconfig`: kubectl reaches the cluster through Gatehouse.\n",
    );
    out.push_str("apiVersion: v1\nkind: Config\n");
    out.push_str(&format!(
        "clusters:\n- name: {n}\n  cluster:\n    server: {s}\n    certificate-authority-data: {ca}\n",
        n = quoted(name),
        s = quoted(&format!("{server}/{name}")),
        ca = base64::engine::general_purpose::STANDARD.encode(&ca),
    ));
    out.push_str(&format!(
        "users:\n- name: {n}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {c}\n      args: [{a}]\n      interactiveMode: Never\n      provideClusterInfo: false\n",
        n = quoted(&format!("gatehouse-{name}")),
        c = quoted(&exe.display().to_string()),
        a = plugin_args.iter().map(|a| quoted(a)).collect::<Vec<_>>().join(", "),
    ));
    out.push_str(&format!(
        "contexts:\n- name: {n}\n  context:\n    cluster: {n}\n    user: {u}\ncurrent-context: {n}\n",
        n = quoted(name),
        u = quoted(&format!("gatehouse-{name}")),
    ));
    Ok(out)
}

/// The ExecCredential kubectl reads from `gatehouse kube-credential`.
pub fn exec_credential(token_env: Option<&str>, token_file: Option<&Path>) -> Result<String> {
    let token = read_token(token_env, token_file)?;
    Ok(serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token},
    })
    .to_string())
}

/// The caller's token from `token_file`, or the environment variable
/// `token_env` (default `GATEHOUSE_TOKEN`), trimmed.
pub fn read_token(token_env: Option<&str>, token_file: Option<&Path>) -> Result<String> {
    let token = match (token_env, token_file) {
        (Some(_), Some(_)) => bail!("give --token-env or --token-file, not both"),
        (_, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading the token file {}", f.display()))?,
        (env, None) => {
            let var = env.unwrap_or("GATEHOUSE_TOKEN");
            std::env::var(var).with_context(|| {
                format!("the environment variable {var} holds no token: set it to your Gatehouse service token or your platform's OIDC token")
            })?
        }
    };
    let token = token.trim();
    if token.is_empty() {
        bail!("the token is empty: set it to your Gatehouse service token or your platform's OIDC token");
    }
    Ok(token.to_string())
}
