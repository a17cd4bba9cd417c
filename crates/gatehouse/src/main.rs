//! The `gatehouse` command.

// mimalloc: the statement analysis and Cedar decision allocate heavily; in the
// multi-threaded gateway glibc malloc made them about 20% slower (measured under
// pgbench -M simple, see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use gatehouse::access::AccessCommand;
use gatehouse::admin::AdminClient;
use gatehouse::approvals::ApprovalsCommand;
use gatehouse::config::RawConfig;
use gatehouse::evidence::cli::{AuditCommand, PackArgs};
use gatehouse::identity::IdentityCommand;
use gatehouse::masking::MaskingCommand;
use gatehouse::policy_cli::PolicyCommand;
use gatehouse::{demo, output, serve};
use gatehouse_api::CreateTokenRequest;
use gatehouse_core::{SessionFilter, Timestamp};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The exit statuses, for `--help` and the manual page (docs/cli.md too).
const EXIT_CODES: &str = "Exit status: 0 success; 1 an error (the message says what to do), or a \
negative verdict: `audit verify` found tampering, `audit verify-proof` failed, `policy test` had a \
failing case; 2 an invalid configuration or policy (`serve`, `check-config`, `policy validate`, \
`policy explain`, `policy test`). Commands that print a table or a verdict take --json; \
docs/cli.md describes each shape.";

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "A Layer 7 access gateway for machine identities",
    after_long_help = EXIT_CODES
)]
struct Cli {
    /// Configuration file [default: ./gatehouse.toml].
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG")]
    config: Option<PathBuf>,
    /// The gateway's REST API for admin commands: host:port or an http(s) URL (default: [server] api_listen of the configuration).
    #[arg(long, global = true, env = "GATEHOUSE_SERVER")]
    server: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum SshCommand {
    /// Print the gateway's SSH host key (made in the data directory if there is none yet),
    /// its SHA256 fingerprint and a known_hosts line for callers to pin.
    HostKey {
        /// JSON output: {"public_key", "fingerprint", "known_hosts"}.
        #[arg(long)]
        json: bool,
    },
    /// Exchange your token for a short-lived SSH certificate: writes a fresh key, its .pub and
    /// its -cert.pub, so that `ssh -i KEY -p PORT <connection>@gateway` logs in with no password.
    Login {
        /// The environment variable holding your token (a service token or an OIDC token).
        #[arg(long, default_value = "GATEHOUSE_TOKEN", conflicts_with = "token_file")]
        token_env: String,
        /// A file holding your token (a projected OIDC token, say).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Where to write the key (replaced; KEY.pub and KEY-cert.pub beside it).
        #[arg(long, default_value = "gatehouse_ed25519")]
        key: PathBuf,
        /// JSON output: {"key", "certificate_file", "principal", "serial", "valid_before"}.
        #[arg(long)]
        json: bool,
    },
    /// Register an SSH public key to a service identity, for hosts that cannot fetch tokens
    /// (admin). It is listed and revoked with `gatehouse token list|revoke`.
    RegisterKey {
        /// The identity the key logs in as.
        #[arg(long)]
        identity: String,
        /// A group of the identity (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// How long the registration lasts, e.g. 90d (at most 366d).
        #[arg(long, default_value = "90d")]
        ttl: String,
        /// The public key file (`ssh-ed25519 AAAA… comment`).
        #[arg(long)]
        key: PathBuf,
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve,
    /// Validate a configuration file; prints every problem and exits 2 if any.
    CheckConfig {
        /// JSON output: {"ok": true, "file", "postgres_listen", "http_listen", "ssh_listen", "mysql_listen", "api_listen", "node_id", "store", "connections", "warnings"} or {"ok": false, "file", "problems"}.
        #[arg(long)]
        json: bool,
    },
    /// Manage service tokens (through the running gateway's API).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Inspect recorded sessions (through the running gateway's API).
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// The gateway nodes sharing the store (through the running gateway's API).
    #[command(subcommand)]
    Nodes(gatehouse::fleet_cli::NodesCommand),
    /// Migrate or check a shared PostgreSQL store (reads the configuration).
    #[command(subcommand)]
    Store(gatehouse::fleet_cli::StoreCommand),
    /// Validate, explain, test and reload Cedar policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// List, read, approve and deny approval requests (through the running gateway's API).
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Review who can reach what, and sign the review off (through the running gateway's API).
    #[command(subcommand)]
    Access(AccessCommand),
    /// Columns the masking detectors found sensitive: list, remove, discover (through the running gateway's API).
    #[command(subcommand)]
    Masking(MaskingCommand),
    /// Verify, prove and export the evidence log (reads the log file directly).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write the SOC 2 evidence pack for a period: tables, signed checkpoint, proofs (reads the log file; asks the running gateway to sign a checkpoint first).
    Evidence(PackArgs),
    /// Debug workload identity: what the gateway makes of an OIDC token (reads the configuration).
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Print a kubeconfig that points kubectl at a kubernetes connection through the gateway
    /// (reads the configuration); kubectl gets the caller's token from `gatehouse kube-credential`.
    Kubeconfig {
        /// The `kind = "kubernetes"` connection.
        #[arg(long)]
        connection: String,
        /// The gateway's URL as callers reach it, e.g. https://gatehouse.internal:18080 (default: listeners.http).
        #[arg(long)]
        server: Option<String>,
        /// The CA certificate callers verify the gateway with (default: the gateway's certificate).
        #[arg(long)]
        ca: Option<PathBuf>,
        /// The environment variable kube-credential reads the caller's token from (default GATEHOUSE_TOKEN).
        #[arg(long, conflicts_with = "token_file")]
        token_env: Option<String>,
        /// A file kube-credential reads the caller's token from (a projected OIDC token, say).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Write it to this file (mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The SSH listener: its host key.
    #[command(subcommand)]
    Ssh(SshCommand),
    /// kubectl's exec credential plugin: prints an ExecCredential with the caller's token
    /// (a Gatehouse service token or the platform's OIDC token).
    KubeCredential {
        /// The environment variable that holds the token (default GATEHOUSE_TOKEN).
        #[arg(long, conflicts_with = "token_file")]
        token_env: Option<String>,
        /// A file that holds the token.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Start a throwaway PostgreSQL with sample data and a gateway in front of it.
    Demo,
    /// Print the version.
    Version {
        /// JSON output: {"version"}.
        #[arg(long)]
        json: bool,
    },
    /// Print the manual page (roff) generated from this command line: `gatehouse man | man -l -`;
    /// with --out, write gatehouse.1 and one page per subcommand into a folder.
    Man {
        /// A folder to write every page into (gatehouse.1, gatehouse-audit-verify.1, …).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print a shell completion script: `gatehouse completions bash >
    /// /etc/bash_completion.d/gatehouse` (zsh: into a directory of `$fpath`
    /// as `_gatehouse`; fish: `~/.config/fish/completions/gatehouse.fish`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; prints it once, alone on stdout.
    Create {
        /// The identity the token authenticates as.
        #[arg(long)]
        identity: String,
        /// A group of the identity (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Lifetime, e.g. 30d, 12h, 15m (at most 366d).
        #[arg(long, default_value = "30d")]
        ttl: String,
        /// Print the whole record as JSON (including the token) instead.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets).
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id; new connections with it are refused at once.
    Revoke {
        /// The token id (from `token list`).
        id: String,
        /// JSON output: the token record as revoked.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// List sessions, newest first.
    List(ListArgs),
    /// Replay one session: its statements on a timeline.
    Show {
        /// Session id, or a unique prefix of it (at least 4 characters).
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Replay a Kubernetes exec or attach recording: what the terminal showed
    /// (checked against the hash in the evidence log), or the asciicast v2 file
    /// with --out for any asciicast player.
    Replay {
        /// Session id, or a unique prefix of it (at least 4 characters).
        id: String,
        /// The action's number in the session (`sessions show` lists them).
        seq: u64,
        /// Write the recording (asciicast v2) to this file instead.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replay at the recorded pace (default: at once).
        #[arg(long)]
        realtime: bool,
    },
}

#[derive(Args)]
struct ListArgs {
    /// Only this identity.
    #[arg(long)]
    identity: Option<String>,
    /// Only this connection.
    #[arg(long)]
    connection: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve);
    // The log format is the configuration's; a configuration that does not
    // parse is reported by `serve` itself, in the default format.
    let json = serving
        && gatehouse::config::RawConfig::parse(&config_path(&cli)).is_ok_and(|c| c.log_json());
    init_logging(serving, json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr: text, coloured only on a terminal and without `NO_COLOR`,
/// or JSON lines for log shippers.
fn init_logging(serving: bool, json: bool) {
    use std::io::IsTerminal;
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        builder
            .with_ansi(std::io::stderr().is_terminal() && !no_color)
            .init();
    }
}

fn config_path(cli: &Cli) -> PathBuf {
    cli.config
        .clone()
        .unwrap_or_else(|| PathBuf::from("gatehouse.toml"))
}

/// The configuration for admin commands: `--config`, else ./gatehouse.toml if it exists.
fn admin_config(cli: &Cli) -> Option<PathBuf> {
    cli.config.clone().or_else(|| {
        let p = Path::new("gatehouse.toml");
        p.exists().then(|| p.to_path_buf())
    })
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Serve => {
            let path = config_path(&cli);
            let config = match RawConfig::parse(&path).and_then(|r| r.resolve()) {
                Ok(c) => {
                    for w in &c.warnings {
                        tracing::warn!("{w}");
                    }
                    c
                }
                Err(problems) => {
                    eprintln!("{problems}");
                    eprintln!(
                        "gatehouse: not started: {} problem(s) in the configuration",
                        problems.0.len()
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            serve::run(&config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { json } => {
            let path = config_path(&cli);
            let report = match RawConfig::parse(&path).and_then(|r| r.resolve()) {
                Ok(c) => {
                    if !json {
                        for w in &c.warnings {
                            eprintln!("warning: {w}");
                        }
                        let http = c
                            .http_listen
                            .map(|a| format!(", http listener {a}"))
                            .unwrap_or_default();
                        let ssh = c
                            .ssh_listen
                            .map(|a| format!(", ssh listener {a}"))
                            .unwrap_or_default();
                        let mysql = c
                            .mysql_listen
                            .map(|a| format!(", mysql listener {a}"))
                            .unwrap_or_default();
                        let store = match &c.store {
                            gatehouse::config::StoreSpec::Embedded => "embedded store".to_string(),
                            gatehouse::config::StoreSpec::Shared(s) => {
                                format!("shared store {}", s.url)
                            }
                        };
                        println!(
                            "{}: ok (node {}, {store}, postgres listener {}{http}{ssh}{mysql}, API {}, {} connection(s))",
                            path.display(),
                            match c.node.generate_into {
                                Some(_) => "id generated at the first start".to_string(),
                                None => c.node.id.clone(),
                            },
                            c.postgres_listen,
                            c.api_listen,
                            c.connections.len()
                                + c.http_connections.len()
                                + c.ssh_connections.len()
                                + c.mysql_connections.len()
                        );
                        return Ok(ExitCode::SUCCESS);
                    }
                    serde_json::json!({
                        "ok": true,
                        "file": path.display().to_string(),
                        "postgres_listen": c.postgres_listen.to_string(),
                        "http_listen": c.http_listen.map(|a| a.to_string()),
                        "ssh_listen": c.ssh_listen.map(|a| a.to_string()),
                        "mysql_listen": c.mysql_listen.map(|a| a.to_string()),
                        "api_listen": c.api_listen.to_string(),
                        "node_id": c.node.generate_into.is_none().then(|| c.node.id.clone()),
                        "store": match &c.store {
                            gatehouse::config::StoreSpec::Embedded => None,
                            gatehouse::config::StoreSpec::Shared(s) => Some(s.url.clone()),
                        },
                        "connections": c.connections.len() + c.http_connections.len() + c.ssh_connections.len() + c.mysql_connections.len(),
                        "warnings": c.warnings,
                    })
                }
                Err(problems) => {
                    if !json {
                        eprintln!("{problems}");
                        eprintln!("{} problem(s) found", problems.0.len());
                        return Ok(ExitCode::from(2));
                    }
                    let list: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
                    serde_json::json!({
                        "ok": false,
                        "file": path.display().to_string(),
                        "problems": list,
                    })
                }
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report["ok"] == true {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Token(cmd) => {
            let client = AdminClient::new(admin_config(&cli).as_deref(), cli.server.as_deref())?;
            token(cmd, &client).await
        }
        Command::Sessions(cmd) => {
            let client = AdminClient::new(admin_config(&cli).as_deref(), cli.server.as_deref())?;
            sessions(cmd, &client).await
        }
        Command::Nodes(cmd) => {
            let client = AdminClient::new(admin_config(&cli).as_deref(), cli.server.as_deref())?;
            gatehouse::fleet_cli::nodes(cmd, &client).await
        }
        Command::Store(cmd) => gatehouse::fleet_cli::store(cmd, &config_path(&cli)).await,
        Command::Approvals(cmd) => {
            gatehouse::approvals::run(cmd, admin_config(&cli).as_deref(), cli.server.as_deref())
                .await
        }
        Command::Access(cmd) => {
            let client = AdminClient::new(admin_config(&cli).as_deref(), cli.server.as_deref())?;
            gatehouse::access::run(cmd, &client).await
        }
        Command::Masking(cmd) => {
            let client = AdminClient::new(admin_config(&cli).as_deref(), cli.server.as_deref())?;
            gatehouse::masking::run(cmd, &client).await
        }
        Command::Policy(cmd) => {
            gatehouse::policy_cli::run(
                cmd,
                &config_path(&cli),
                admin_config(&cli).as_deref(),
                cli.server.as_deref(),
            )
            .await
        }
        Command::Audit(cmd) => gatehouse::evidence::cli::run(cmd, &config_path(&cli)).await,
        Command::Evidence(args) => {
            gatehouse::evidence::cli::run_pack(args, &config_path(&cli), cli.server.as_deref())
                .await
        }
        Command::Identity(cmd) => gatehouse::identity::run(cmd, &config_path(&cli)).await,
        Command::Kubeconfig {
            connection,
            server,
            ca,
            token_env,
            token_file,
            out,
        } => {
            let yaml = gatehouse::kubeconfig::kubeconfig(
                &config_path(&cli),
                &gatehouse::kubeconfig::KubeconfigArgs {
                    connection,
                    server: server.as_deref(),
                    ca: ca.as_deref(),
                    token_env: token_env.as_deref(),
                    token_file: token_file.as_deref(),
                },
            )?;
            match out {
                Some(f) => gatehouse::certs::write_private(f, yaml.as_bytes())?,
                None => print!("{yaml}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ssh(SshCommand::HostKey { json }) => {
            print!(
                "{}",
                gatehouse::ssh_cli::host_key(&config_path(&cli), *json)?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ssh(SshCommand::Login {
            token_env,
            token_file,
            key,
            json,
        }) => {
            let env = token_file.is_none().then_some(token_env.as_str());
            let token = gatehouse::kubeconfig::read_token(env, token_file.as_deref())?;
            let client =
                AdminClient::with_token(cli.config.as_deref(), cli.server.as_deref(), &token)?;
            print!("{}", gatehouse::ssh_cli::login(&client, key, *json).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Ssh(SshCommand::RegisterKey {
            identity,
            groups,
            ttl,
            key,
            json,
        }) => {
            let client = AdminClient::new(cli.config.as_deref(), cli.server.as_deref())?;
            let ttl = humantime::parse_duration(ttl).map_err(|e| {
                anyhow!("--ttl {ttl:?} is not a duration such as 90d, 12h or 15m: {e}")
            })?;
            let public_key = std::fs::read_to_string(key)
                .with_context(|| format!("reading the public key {}", key.display()))?;
            let record = client
                .register_ssh_key(&gatehouse_api::RegisterKeyRequest {
                    identity: identity.clone(),
                    groups: groups.clone(),
                    ttl_seconds: ttl.as_secs(),
                    public_key,
                })
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                println!(
                    "registered {} to {} (groups: {}) as record {}, until {}; revoke it with `gatehouse token revoke {}`",
                    record.ssh_key.as_deref().unwrap_or(""),
                    record.identity,
                    if record.groups.is_empty() {
                        "none".into()
                    } else {
                        record.groups.join(", ")
                    },
                    record.id,
                    record.expires_at,
                    record.id
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::KubeCredential {
            token_env,
            token_file,
        } => {
            println!(
                "{}",
                gatehouse::kubeconfig::exec_credential(
                    token_env.as_deref(),
                    token_file.as_deref()
                )?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => {
            demo::run().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Version { json } => {
            let version = env!("CARGO_PKG_VERSION");
            if *json {
                println!("{}", serde_json::json!({ "version": version }));
            } else {
                println!("gatehouse {version}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out } => {
            use clap::CommandFactory;
            gatehouse::manpage::run(Cli::command(), out.as_deref())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            // Into a buffer first: the generator panics on a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "gatehouse", &mut script);
            match std::io::stdout().lock().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(anyhow::anyhow!("writing the completion script: {e}"))
                }
                _ => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

async fn token(cmd: &TokenCommand, client: &AdminClient) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Create {
            identity,
            groups,
            ttl,
            json,
        } => {
            let ttl = humantime::parse_duration(ttl).map_err(|e| {
                anyhow!("--ttl {ttl:?} is not a duration such as 30d, 12h or 15m: {e}")
            })?;
            if ttl.as_secs() == 0 {
                bail!("--ttl must be at least 1s");
            }
            let created = client
                .create_token(&CreateTokenRequest {
                    identity: identity.clone(),
                    groups: groups.clone(),
                    ttl_seconds: ttl.as_secs(),
                })
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                eprintln!(
                    "created token {} for {} (groups: {}), expires {}; it is shown only once",
                    created.record.id,
                    created.record.identity,
                    if created.record.groups.is_empty() {
                        "none".into()
                    } else {
                        created.record.groups.join(", ")
                    },
                    created.record.expires_at
                );
                println!("{}", created.token);
            }
        }
        TokenCommand::List { json } => {
            let list = client.list_tokens().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", output::tokens(&list, Timestamp::now()));
            }
        }
        TokenCommand::Revoke { id, json } => {
            let t = client.revoke_token(id).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&t)?);
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "revoked token {} of {} at {}; new connections with it are refused",
                t.id,
                t.identity,
                t.revoked_at.map(|r| r.rfc3339()).unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn sessions(cmd: &SessionsCommand, client: &AdminClient) -> Result<ExitCode> {
    match cmd {
        SessionsCommand::List(a) => {
            let filter = SessionFilter {
                identity: a.identity.clone(),
                connection: a.connection.clone(),
                limit: Some(a.limit),
                ..Default::default()
            };
            let list = client.list_sessions(&filter).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", output::sessions(&list));
            }
        }
        SessionsCommand::Replay {
            id,
            seq,
            out,
            realtime,
        } => {
            let cast = client.recording(id, *seq).await?;
            match out {
                Some(f) => std::fs::write(f, &cast)
                    .map_err(|e| anyhow::anyhow!("writing {}: {e}", f.display()))?,
                None => output::replay_cast(&cast, *realtime)?,
            }
        }
        SessionsCommand::Show { id, json } => {
            let d = client.session(id).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                print!("{}", output::session_replay(&d));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
