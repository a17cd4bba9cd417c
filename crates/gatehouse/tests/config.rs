//! `gatehouse check-config` and `serve` on good and bad configurations.

use gatehouse::certs::TestCa;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

fn check(config: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(["check-config", "--config"])
        .arg(config)
        .env_remove("APP_DB_PASSWORD");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The shipped example in a folder of its own, with the SSH key it names
/// made (no private key is shipped).
fn example_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        shipped.join("gatehouse.toml"),
        dir.path().join("gatehouse.toml"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    for f in std::fs::read_dir(shipped.join("policies")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join("policies").join(f.file_name())).unwrap();
    }
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.path().join("secrets/deploy-host.key"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let file = dir.path().join("gatehouse.toml");
    (dir, file)
}

#[test]
fn the_shipped_example_is_valid() {
    let (_dir, example) = example_copy();
    let out = check(
        &example,
        &[
            ("APP_DB_PASSWORD", "s3cret"),
            ("BILLING_API_TOKEN", "billing-s3cret"),
            ("CLUSTER_TOKEN", "cluster-s3cret-token"),
            ("SHOP_DB_PASSWORD", "shop-s3cret"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(
        "ok (node gw-1, embedded store, postgres listener 127.0.0.1:15432, http listener 127.0.0.1:18080, ssh listener 127.0.0.1:2222, mysql listener 127.0.0.1:13306, API 127.0.0.1:8089, 6 connection(s))"
    ));
    // And says exactly what is missing without the secret.
    let out = check(&example, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains(
            "connection[0].password_env: environment variable APP_DB_PASSWORD is not set"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn the_issue_shape_with_tls_files_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    let leaf = TestCa::new("ca").unwrap().leaf(&["localhost"]).unwrap();
    std::fs::write(dir.path().join("certs/gateway.pem"), leaf.cert_pem).unwrap();
    std::fs::write(dir.path().join("certs/gateway.key"), leaf.key_pem).unwrap();
    let cfg = dir.path().join("gatehouse.toml");
    std::fs::write(
        &cfg,
        r#"[server]
data_dir = "./gatehouse-data"
api_listen = "127.0.0.1:8089"          # REST API (used by the CLI and later the web console)

[listeners]
postgres = "127.0.0.1:15432"

[tls]                                   # optional: without it a self-signed certificate is generated into data_dir
cert = "certs/gateway.pem"
key  = "certs/gateway.key"

[[connection]]
name = "app-db"                         # what callers put in dbname
kind = "postgres"
host = "127.0.0.1"
port = 5432
database = "app"
user = "app_owner"
password_env = "APP_DB_PASSWORD"
backend_tls = "prefer"                  # disable | prefer | require | verify-full
"#,
    )
    .unwrap();
    let out = check(&cfg, &[("APP_DB_PASSWORD", "x")]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn every_problem_is_reported_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        r#"[server]
data_dir = "d"
colour = "blue"

[listeners]
postgres = "localhost"

[tls]
cert = "missing.pem"
key = "missing.key"

[[connection]]
name = "a"
kind = "oracle"
host = "h"
database = "x"
user = "u"
password_env = "E"
password_file = "f"

[[connection]]
name = "a"
kind = "postgres"
host = "h"
database = "x"
user = "u"
password_file = "nope.txt"
backend_tls = "verify-full"

[[connection]]
name = "b"
kind = "postgres"
host = "h"
database = "x"
user = "u"
password = "inline secrets are not allowed"
"#,
    )
    .unwrap();
    let out = check(&cfg, &[]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    let file = cfg.display().to_string();
    // Structural problems first (unknown keys), all at once.
    for expected in [
        format!("{file}: server: unknown field `colour`"),
        format!("{file}: connection[2]: unknown field `password`"),
    ] {
        assert!(t.contains(&expected), "missing {expected:?} in:\n{t}");
    }
    // Fix the structure; then every semantic problem is listed.
    let fixed = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("colour = \"blue\"\n", "")
        .replace(
            "password = \"inline secrets are not allowed\"",
            "password_env = \"B_PASSWORD\"",
        );
    std::fs::write(&cfg, fixed).unwrap();
    let out = check(&cfg, &[]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    for expected in [
        "listeners.postgres: \"localhost\" is not an address of the form IP:PORT",
        "tls.cert: cannot read",
        "tls.key: cannot read",
        "connection[0].kind: \"oracle\" is not supported",
        "connection[0].password_env: set either password_env or password_file, not both",
        "connection[1].name: \"a\" is used by another connection",
        "connection[1].password_file: cannot read",
        "connection[1].backend_ca: backend_tls = \"verify-full\" needs backend_ca",
        "connection[2].password_env: environment variable B_PASSWORD is not set",
    ] {
        assert!(
            t.contains(&format!("{file}: {expected}")),
            "missing {expected:?} in:\n{t}"
        );
    }
    assert!(t.contains("9 problem(s) found"), "{t}");

    // serve refuses to start on the same file, listing the same problems.
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("not started: 9 problem(s)"),
        "{}",
        text(&out)
    );
}

#[test]
fn syntax_errors_and_missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("broken.toml");
    std::fs::write(&cfg, "[server\ndata_dir = 1\n").unwrap();
    let out = check(&cfg, &[]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(t.contains("not valid TOML") && t.contains("line 1"), "{t}");
    let out = check(&dir.path().join("absent.toml"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("absent.toml: cannot read the file"),
        "{}",
        text(&out)
    );
    std::fs::write(&cfg, "[listeners]\npostgres = \"127.0.0.1:1\"\n[typo]\n").unwrap();
    let t = text(&check(&cfg, &[]));
    assert!(t.contains("typo: unknown section"), "{t}");
}

/// `gatehouse serve` on `cfg`, with the backend password its connection names.
fn serve(cfg: &Path) -> Output {
    Command::new(BIN)
        .args(["serve", "--config"])
        .arg(cfg)
        .env("P", "x")
        .output()
        .unwrap()
}

#[test]
fn an_invalid_policy_stops_start_up_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.cedar"),
        "@id(\"ok\")\npermit (principal, action, resource);\n\npermit (principal, action == Gatehouse::Action::\"nuke\", resource);\n",
    )
    .unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(
        &cfg,
        "[listeners]\npostgres = \"127.0.0.1:1\"\n[policy]\nfiles = [\"bad.cedar\", \"missing.cedar\"]\n\
         [[connection]]\nname = \"a\"\nkind = \"postgres\"\nhost = \"h\"\ndatabase = \"d\"\nuser = \"u\"\npassword_env = \"P\"\n",
    )
    .unwrap();
    let out = serve(&cfg);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(
        t.contains("policy.files:") && t.contains("missing.cedar: cannot read the file"),
        "{t}"
    );
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace(", \"missing.cedar\"", ""),
    )
    .unwrap();
    let out = serve(&cfg);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(t.contains("bad.cedar:4:"), "{t}");
    assert!(t.contains("nuke"), "{t}");
    // Without [policy] the configuration is valid, with a warning.
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("[policy]\nfiles = [\"bad.cedar\"]\n", ""),
    )
    .unwrap();
    let out = check(&cfg, &[("P", "x")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("warning:") && text(&out).contains("every connection"),
        "{}",
        text(&out)
    );
}

/// A minimal backend for configurations that test other sections.
const APP_CONNECTION: &str = r#"
[[connection]]
name = "app-db"
kind = "postgres"
host = "127.0.0.1"
database = "app"
user = "app_owner"
password_env = "APP_DB_PASSWORD"
"#;

/// Checks `config` and asserts that it is refused naming each of `expected`.
fn assert_problems(config: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gatehouse.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = check(&cfg, &[("APP_DB_PASSWORD", "x")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    for e in expected {
        assert!(t.contains(e), "missing {e:?} in:\n{t}");
    }
}

#[test]
fn masking_mistakes_are_named() {
    assert_problems(
        &[
            r#"[listeners]
postgres = "127.0.0.1:15432"

[masking]
hash_key_file = "missing.key"

[[masking.detector]]
name = "badge"
pattern = "BADGE-[0-9"

[[masking.detector]]
name = "anything"
pattern = "x*"

"#,
            APP_CONNECTION,
            r#"
[connection.masking]
detectors = ["card", "creditcard"]
strategies = { card = "scramble", email = "hash" }
trusted_functions = ["app.lookup", "drop table x"]

[[connection.masking.rule]]
column = "customers"

[[connection.masking.rule]]
column = "public.customers.ssn"
column_pattern = "*ssn*"
"#,
        ]
        .concat(),
        &[
        "masking.hash_key_file: cannot read",
        "masking.detector[0].pattern: does not compile",
        "masking.detector[1].pattern: matches the empty string",
        "connection[0].masking.detectors[1]: unknown detector \"creditcard\"",
        "connection[0].masking.strategies.card: unknown strategy \"scramble\"",
        "connection[0].masking.strategies.email: \"email\" is not one of this connection's detectors",
        "connection[0].masking.rule[0].column: \"customers\" is not schema.table.column or table.column",
        "connection[0].masking.rule[1].column: set either column or column_pattern, not both",
        "connection[0].masking.trusted_functions[1]: \"drop table x\" is not a function name or pattern",
        ],
    );
    // Unknown keys are errors here too.
    assert_problems(
        "[listeners]\npostgres = \"127.0.0.1:1\"\n[masking]\nhash_key = \"00\"\n",
        &["masking: unknown field `hash_key`"],
    );
}

#[test]
fn evidence_mistakes_are_named() {
    assert_problems(
        &[
            r#"[server]
data_dir = "data"

[listeners]
postgres = "127.0.0.1:15432"

[evidence]
node = "gw 1"
origin = "a+b"
signing_key_file = "missing.key"
checkpoint_every = 0
checkpoint_interval = "soon"
durability = "paper"
witness_files = ["data/witness.notes", "nowhere/witness.notes"]
witness_urls = ["ftp://witness.example"]

[[evidence.sinks]]
name = "siem one"
type = "http"
url = "siem.example"
format = "xml"
batch_max = 0

[[evidence.sinks]]
name = "syslog"
type = "syslog"
address = "siem.example"

[[evidence.sinks]]
name = "syslog"
type = "syslog"
address = "siem.example:514"

[[evidence.sinks]]
name = "kafka"
type = "kafka"

"#,
            APP_CONNECTION,
        ]
        .concat(),
        &[
            "evidence.node: \"gw 1\" cannot name a node",
            "evidence.origin: \"a+b\" cannot be a log origin",
            "evidence.signing_key_file: ",
            "missing.key does not exist",
            "evidence.checkpoint_every: must be at least 1",
            "evidence.checkpoint_interval: \"soon\" is not a duration",
            "evidence.durability: \"paper\" is not a durability",
            "evidence.witness_files[0]: ",
            "is inside data_dir",
            "evidence.witness_files[1]: the folder ",
            "evidence.witness_urls[0]: \"ftp://witness.example\" is not an http:// or https:// URL",
            "evidence.sinks[0].name: \"siem one\" cannot name a sink",
            "evidence.sinks[0].url: \"siem.example\" is not an http:// or https:// URL",
            "evidence.sinks[0].format: unknown format \"xml\": expected jsonl, ocsf or cef",
            "evidence.sinks[0].batch_max: 0 is not between 1 and 10000",
            "evidence.sinks[1].address: \"siem.example\" is not host:port",
            "evidence.sinks[2].name: \"syslog\" names another sink too",
            "evidence.sinks[3].type: \"kafka\" is not a sink type: use \"http\" or \"syslog\"",
        ],
    );
    // Unknown keys are errors here too.
    assert_problems(
        "[listeners]\npostgres = \"127.0.0.1:1\"\n[evidence]\nwitness = \"x\"\n",
        &["evidence: unknown field `witness`"],
    );
    assert_problems(
        "[listeners]\npostgres = \"127.0.0.1:1\"\n[[evidence.sinks]]\nname = \"a\"\ntype = \"http\"\nurl = \"http://x\"\nretries = 3\n",
        &["unknown field `retries`"],
    );
    // Segments: sizes, archives and commands.
    let seg = |body: &str| {
        format!("[listeners]\npostgres = \"127.0.0.1:1\"\n[evidence.segments]\n{body}")
    };
    assert_problems(
        &seg("entries = 10\narchive_dir = \"/nonexistent-archive\"\narchive_command = \"cp {file} /a\"\n"),
        &[
            "evidence.segments.entries: 10 is too small: at least 100 entries, or 0 to keep the log whole",
            "evidence.segments.archive_dir: give archive_dir or archive_command, not both",
        ],
    );
    assert_problems(
        &seg("archive_command = \"aws s3 cp {file} s3://b/\"\n"),
        &[
            "evidence.segments.archive_command: \"aws s3 cp {file} s3://b/\" must use {file}",
            "evidence.segments.fetch_command: archive_command needs a fetch_command too",
        ],
    );
    assert_problems(
        &seg("archive_dir = \"/nonexistent-archive\"\nfetch_command = \"get {name}\"\n"),
        &[
            "evidence.segments.archive_dir: /nonexistent-archive is not a directory",
            "evidence.segments.fetch_command: \"get {name}\" must use {file}",
        ],
    );
    assert_problems(&seg("size = 5\n"), &["unknown field `size`"]);
}

#[test]
fn approval_route_mistakes_are_named() {
    assert_problems(
        &[
            r#"[listeners]
postgres = "127.0.0.1:15432"

[[approval.route]]
name = "dba team"
approvals_needed = 0
mode = "later"
request_ttl = "5m"
hold_timeout = "10m"

[[approval.route]]
name = "ops"
approvers = ["ops"]
mode = "hold"
hold_timeout = "10m"
request_ttl = "5m"

[[approval.route]]
name = "ops"
approvers = ["ops"]
valid_for = "soon"

[[approval.webhook]]
url = "hooks.example"
format = "teams"

"#,
            APP_CONNECTION,
        ]
        .concat(),
        &[
            "approval.route[0].name: \"dba team\" cannot name a route",
            "approval.route[0].approvers: missing",
            "approval.route[0].approvals_needed: must be at least 1",
            "approval.route[0].mode: \"later\" is not a mode",
            "approval.route[0].hold_timeout: is longer than request_ttl",
            "approval.route[1].hold_timeout: is longer than request_ttl",
            "approval.route[2].name: route \"ops\" is defined twice",
            "approval.route[2].valid_for: \"soon\" is not a duration",
            "approval.webhook[0].url: \"hooks.example\" is not an http:// or https:// URL",
            "approval.webhook[0].format: \"teams\" is not a webhook format: use \"json\" or \"slack\"",
        ],
    );
}

#[test]
fn a_policy_naming_an_undefined_approval_route_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.cedar"),
        "@id(\"held\") @approval(\"dba\") forbid (principal, action == Gatehouse::Action::\"delete\", resource);\n",
    )
    .unwrap();
    let cfg = dir.path().join("gatehouse.toml");
    std::fs::write(
        &cfg,
        [
            "[listeners]\npostgres = \"127.0.0.1:15432\"\n[policy]\nfiles = [\"p.cedar\"]\n",
            APP_CONNECTION,
        ]
        .concat(),
    )
    .unwrap();
    let out = check(&cfg, &[("APP_DB_PASSWORD", "x")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("policy held sends statements to approval route \"dba\", which no [[approval.route]] defines"),
        "{}",
        text(&out)
    );
}

#[test]
fn oidc_issuer_mistakes_are_named() {
    assert_problems(
        &[
            r#"[listeners]
postgres = "127.0.0.1:15432"

[[identity.oidc]]
name = "gh"
preset = "github"
audience = "https://github.com/octo-org"
algorithms = ["RS256", "HS256"]

[[identity.oidc]]
name = "gh"
issuer = "http://idp.example.com"
audience = "gatehouse"

[[identity.oidc]]
name = "azure"
preset = "entra"
audience = "api://gatehouse"

[[identity.oidc]]
name = "typo"
issuer = "https://idp.example.com"
audiences = ["gatehouse"]

"#,
            APP_CONNECTION,
        ]
        .concat(),
        &[
            "identity.oidc[0].algorithms: \"HS256\" is an HMAC (shared secret) algorithm",
            "identity.oidc[1].issuer: \"http://idp.example.com\" uses plain http",
            "identity.oidc[2].tenant: missing",
            "identity.oidc[3]: unknown field `audiences`",
        ],
    );
    // Names prefix subjects and groups, and a token's iss must pick one issuer.
    assert_problems(
        &[
            "[listeners]\npostgres = \"127.0.0.1:15432\"\n",
            "[[identity.oidc]]\nname = \"ci\"\npreset = \"gitlab\"\naudience = \"a\"\n",
            "[[identity.oidc]]\nname = \"ci\"\npreset = \"google\"\naudience = \"a\"\n",
            "[[identity.oidc]]\nname = \"k8s\"\npreset = \"kubernetes\"\naudience = \"a\"\nissuer = \"https://gitlab.com\"\n",
            APP_CONNECTION,
        ]
        .concat(),
        &[
            "identity.oidc[1].name: \"ci\" is also the name of identity.oidc[0]",
            "identity.oidc[2].issuer: \"https://gitlab.com\" is also accepted by identity.oidc[0]",
        ],
    );
}

#[test]
fn limit_mistakes_are_named() {
    let with =
        |limits: &str| format!("[listeners]\npostgres = \"127.0.0.1:1\"\n[limits]\n{limits}\n");
    assert_problems(
        &with("max_message_size = \"8 parsecs\""),
        &["limits.max_message_size: unknown unit \"parsecs\""],
    );
    assert_problems(
        &with("max_statement_size = \"16MiB\""),
        &[
            "limits.max_statement_size:",
            "may not exceed max_message_size",
        ],
    );
    assert_problems(
        &with("max_sessions_per_identity = 0"),
        &["limits.max_sessions_per_identity: must be at least 1"],
    );
    assert_problems(&with("max_rows = 5"), &["limits: unknown field `max_rows`"]);
}

#[test]
fn console_mistakes_are_named() {
    let with = |console: &str| {
        format!(
            "[listeners]\npostgres = \"127.0.0.1:1\"\n{APP_CONNECTION}\n\
             [[identity.oidc]]\nname = \"corp\"\nissuer = \"https://login.example.com\"\naudience = \"gatehouse-console\"\n\
             {console}\n"
        )
    };
    assert_problems(
        &with("[console]\nauditors = [\" spaced \"]\nidle_timeout = \"9h\""),
        &[
            "console.auditors[0]: \" spaced \" is not a group name",
            "console.idle_timeout: is longer than session_timeout",
        ],
    );
    assert_problems(
        &with("[console]\nadmins = []"),
        &["console: unknown field `admins`"],
    );
    assert_problems(
        &with("[console.oidc]\nissuer = \"other\"\nredirect_url = \"https://g.example.com/ui/api/oidc/callback\""),
        &["console.oidc.issuer: no [[identity.oidc]] is named \"other\" (configured: corp)"],
    );
    assert_problems(
        &with("[console.oidc]\nissuer = \"corp\"\nclient_id = \"another-app\"\nredirect_url = \"https://g.example.com/ui/api/oidc/callback\""),
        &["console.oidc.client_id: \"another-app\" is not an audience of issuer \"corp\""],
    );
    assert_problems(
        &with(
            "[console.oidc]\nissuer = \"corp\"\nredirect_url = \"https://g.example.com/callback\"",
        ),
        &[
            "console.oidc.redirect_url:",
            "must be this gateway's console address ending in /ui/api/oidc/callback",
        ],
    );
    assert_problems(
        &with("[console.oidc]\nissuer = \"corp\"\nredirect_url = \"https://g.example.com/ui/api/oidc/callback\"\nscopes = [\"profile\"]\nclient_secret_env = \"NOT_SET_ANYWHERE\""),
        &[
            "console.oidc.client_secret_env: environment variable NOT_SET_ANYWHERE is not set",
        ],
    );
    assert_problems(
        &with("[console.oidc]\nissuer = \"corp\"\nredirect_url = \"https://g.example.com/ui/api/oidc/callback\"\nscopes = [\"profile\"]"),
        &["console.oidc.scopes: must include \"openid\""],
    );
}

#[test]
fn an_unknown_log_format_is_named() {
    assert_problems(
        "[server]\nlog_format = \"xml\"\n[listeners]\npostgres = \"127.0.0.1:1\"\n",
        &["server.log_format: \"xml\" is not a log format"],
    );
}

#[test]
fn http_connection_mistakes_are_named() {
    assert_problems(
        &[
            r#"[listeners]
postgres = "127.0.0.1:15432"
http = "127.0.0.1:notaport"

[[connection]]
name = "api-a"
kind = "http"
host = "127.0.0.1"

[[connection]]
name = "api-b"
kind = "http"
url = "ftp://files.example"
auth = "bearer"
token_env = "NO_SUCH_TOKEN_VAR"

[[connection]]
name = "api-c"
kind = "http"
url = "http://127.0.0.1:9000/?x=1"
auth = "header"
token_env = "APP_DB_PASSWORD"

[[connection]]
name = "api-d"
kind = "http"
url = "http://127.0.0.1:9000"
auth = "magic"
hosts = ["billing.local:8443"]
record_body_size = "2GiB"
backend_ca = "missing-ca.pem"

[connection.masking]
json_paths = ["customers.ssn"]

[[connection.masking.rule]]
column = "public.customers.ssn"

[[connection]]
name = "api-e"
kind = "soap"
"#,
            APP_CONNECTION,
            r#"
[connection.masking]
json_paths = ["$..ssn"]
"#,
        ]
        .concat(),
        &[
            "listeners.http: ",
            "connection[0].host: not used by http connections",
            "connection[0].url: missing: the upstream's base URL",
            "connection[1].url: use an http:// or https:// URL with a host",
            "connection[1].token_env: environment variable NO_SUCH_TOKEN_VAR is not set",
            "connection[2].url: the base URL takes no query",
            "connection[2].header_name: missing: the header that carries the key",
            "connection[3].backend_ca: only used with an https:// url",
            "connection[3].auth: \"magic\" is not an upstream authentication",
            "connection[3].hosts[0]: \"billing.local:8443\" is not a host name",
            "connection[3].record_body_size: at most 1MiB",
            "connection[3].masking.json_paths[0]: \"customers.ssn\" is not a JSON path: a JSON path starts with $",
            "connection[3].masking.rule[0].column: column rules apply to SQL results; on a http connection use json_path",
            "connection[4].kind: \"soap\" is not supported; the supported kinds are \"postgres\", \"mysql\", \"http\", \"mcp\", \"kubernetes\" and \"ssh\"",
            "connection[5].masking.json_paths[0]: JSON paths apply to http and mcp connections, not to a postgres connection",
        ],
    );
}

#[test]
fn kubernetes_connection_mistakes_are_named() {
    assert_problems(
        &[
            r#"[listeners]
postgres = "127.0.0.1:15432"
http = "127.0.0.1:18080"

[[connection]]
name = "cluster-a"
kind = "kubernetes"
url = "https://127.0.0.1:6443"

[[connection]]
name = "cluster-b"
kind = "kubernetes"
url = "https://127.0.0.1:6443"
auth = "basic"
user = "admin"

[[connection]]
name = "cluster-c"
kind = "kubernetes"
url = "https://127.0.0.1:6443"
auth = "client_cert"
token_file = "cluster.token"
recording_limit = "2GiB"

[[connection]]
name = "api-x"
kind = "http"
url = "http://127.0.0.1:9000"
impersonate = true
recording_limit = "8MiB"
"#,
            APP_CONNECTION,
        ]
        .concat(),
        &[
            "connection[0].auth: missing: the gateway's own credential for the API server",
            "connection[1].auth: \"basic\" is not a kubernetes credential: use bearer (token_file or token_env) or client_cert",
            "connection[1].user: not used by kubernetes connections",
            "connection[2].token_file: not used with auth = \"client_cert\"",
            "connection[2].client_cert: auth = \"client_cert\" needs client_cert and client_key",
            "connection[3].impersonate: only used by kubernetes connections",
            "connection[2].recording_limit: between 1MiB and 1GiB",
            "connection[3].recording_limit: only used by kubernetes connections",
        ],
    );
}

#[test]
fn ssh_connection_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("gw.key");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let public = dir.path().join("gw.key.pub");
    let pinned = std::fs::read_to_string(&public).unwrap();
    let config = format!(
        r#"[listeners]
postgres = "127.0.0.1:15432"
ssh = "127.0.0.1:nope"

[[connection]]
name = "no-pin"
kind = "ssh"
host = "10.0.0.5"
user = "deploy"
private_key_file = "{key}"

[[connection]]
name = "bad-pin"
kind = "ssh"
host = "10.0.0.5"
user = "deploy"
private_key_file = "{key}"
password_env = "APP_DB_PASSWORD"
host_key = "ssh-ed25519 AAAAnotakey"
users = ["two words"]
url = "https://x"

[[connection]]
name = "no-key"
kind = "ssh"
host = "10.0.0.5"
user = "deploy"
host_key = "{pin}"
recording_limit = "2GiB"

[connection.masking]
detectors = ["email"]
json_paths = ["$.x"]
exempt_groups = ["sre"]

[[connection]]
name = "unreadable"
kind = "ssh"
host = "10.0.0.5"
user = "deploy"
private_key_file = "{pubkey}"
host_key_file = "missing_known_hosts"

[[connection]]
name = "db"
kind = "postgres"
host = "127.0.0.1"
database = "app"
user = "app"
password_env = "APP_DB_PASSWORD"
host_key = "{pin}"
"#,
        key = key.display(),
        pubkey = public.display(),
        pin = pinned.trim(),
    );
    assert_problems(
        &config,
        &[
            "listeners.ssh: \"127.0.0.1:nope\" is not an address",
            "connection[0].host_key: missing: the host's key, pinned (`ssh-keyscan -p 22 10.0.0.5` prints it)",
            "connection[1].private_key_file: set either private_key_file or a password",
            "connection[1].host_key: line 1: not a public key, known_hosts line or SHA256 fingerprint",
            "connection[1].users[0]: \"two words\" is not an account name",
            "connection[1].url: not used by ssh connections",
            "connection[2].private_key_file: missing: the gateway's own private key for the host",
            "connection[2].recording_limit: between 1MiB and 1GiB",
            "connection[2].masking.json_paths: not used by ssh connections",
            "connection[2].masking.exempt_groups: not used by ssh connections",
            "not an unencrypted SSH private key the gateway can read",
            "connection[3].host_key_file: cannot read",
            "connection[4].host_key: only used by ssh connections",
        ],
    );
    // An ssh connection without an SSH listener is named.
    let config = format!(
        r#"[listeners]
postgres = "127.0.0.1:15432"

[[connection]]
name = "web-1"
kind = "ssh"
host = "10.0.0.5"
user = "deploy"
private_key_file = "{key}"
host_key = "{pin}"
"#,
        key = key.display(),
        pin = pinned.trim(),
    );
    assert_problems(
        &config,
        &["connection[0].kind: ssh connections need an SSH listener: add ssh = \"127.0.0.1:2222\" to [listeners]"],
    );
}

#[test]
fn mysql_connection_mistakes_are_named() {
    assert_problems(
        r#"[listeners]
postgres = "127.0.0.1:15432"

[[connection]]
name = "ok-db"
kind = "mysql"
host = "127.0.0.1"
database = "shop"
user = "shop_owner"
password_env = "APP_DB_PASSWORD"

[[connection]]
name = "shop-db"
kind = "mysql"
host = "127.0.0.1"
database = "shop"
user = "shop_owner"
password_env = "NO_SUCH_MYSQL_PASSWORD"
backend_tls = "verify-full"
backend_public_key_file = "missing-public-key.pem"

[connection.masking]
trusted_functions = ["app.total"]
json_paths = ["$..ssn"]
"#,
        &[
            "connection[0].kind: mysql connections need a MySQL listener: add mysql = \"127.0.0.1:13306\" to [listeners]",
            "connection[1].password_env: environment variable NO_SUCH_MYSQL_PASSWORD is not set",
            "connection[1].backend_ca: backend_tls = \"verify-full\" needs backend_ca",
            "connection[1].masking.trusted_functions: not supported on mysql connections yet",
            "connection[1].backend_public_key_file: cannot read",
            "connection[1].masking.json_paths[0]: JSON paths apply to http and mcp connections, not to a mysql connection",
        ],
    );
}
