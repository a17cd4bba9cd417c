//! Human-readable output of admin commands (`--json` prints the API's JSON).

use gatehouse_core::{
    ActionOutcome, ActionRecord, IdentitySource, SessionDetail, SessionSummary, Timestamp,
    TokenRecord,
};
use std::fmt::Write as _;

/// A table of tokens.
pub fn tokens(list: &[TokenRecord], now: Timestamp) -> String {
    let mut out = format!(
        "{:<18} {:<24} {:<28} {:<25} {}\n",
        "ID", "IDENTITY", "GROUPS", "EXPIRES", "STATE"
    );
    for t in list {
        let state = if t.revoked_at.is_some() {
            "revoked"
        } else if now >= t.expires_at {
            "expired"
        } else {
            "active"
        };
        // A registered SSH key says so, with its fingerprint.
        let state = match &t.ssh_key {
            Some(k) => format!("{state} (ssh key {k})"),
            None => state.to_string(),
        };
        let _ = writeln!(
            out,
            "{:<18} {:<24} {:<28} {:<25} {}",
            t.id.0,
            t.identity,
            t.groups.join(","),
            t.expires_at.rfc3339(),
            state
        );
    }
    out
}

/// A table of sessions.
pub fn sessions(list: &[SessionSummary]) -> String {
    let mut out = format!(
        "{:<36}  {:<24}  {:<20}  {:<14}  {:<21}  {:>5}  {}\n",
        "ID", "STARTED", "IDENTITY", "CONNECTION", "CLIENT", "STMTS", "ENDED"
    );
    for s in list {
        let ended = match &s.end {
            Some(e) => format!("{} ({})", e.ended_at.rfc3339(), e.reason.as_str()),
            None => "open".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<36}  {:<24}  {:<20}  {:<14}  {:<21}  {:>5}  {}",
            s.start.id.to_string(),
            s.start.started_at.rfc3339(),
            s.start.identity.subject,
            s.start.connection,
            s.start.client_addr,
            s.statement_count,
            ended
        );
    }
    out
}

/// One line on an OIDC identity's origin: issuer, client, delegation.
pub fn oidc_source(o: &gatehouse_core::OidcSource) -> String {
    let mut out = format!("OIDC issuer {} ({}), sub {}", o.issuer, o.iss, o.sub);
    if let Some(c) = &o.client_id {
        let _ = write!(out, ", client {c}");
    }
    if let Some(d) = &o.delegation {
        if !d.actors.is_empty() {
            let _ = write!(out, ", acted on by {}", d.actor_chain());
        }
        if let Some(obo) = &d.on_behalf_of {
            let _ = write!(out, ", on behalf of {obo}");
        }
    }
    out
}

/// The replay of one session: header, then its statements on a timeline.
pub fn session_replay(d: &SessionDetail) -> String {
    let s = &d.summary.start;
    let mut out = String::new();
    let source = match &s.identity.source {
        IdentitySource::ServiceToken { token_id } => format!("service token {token_id}"),
        IdentitySource::Oidc(o) => oidc_source(o),
    };
    let _ = writeln!(out, "Session {}", s.id);
    let _ = writeln!(
        out,
        "  identity    {} (groups: {}; {})",
        s.identity.subject,
        if s.identity.groups.is_empty() {
            "none".to_string()
        } else {
            s.identity.groups.join(", ")
        },
        source
    );
    let _ = writeln!(out, "  connection  {} ({})", s.connection, s.protocol);
    let _ = writeln!(
        out,
        "  client      {} user={} application={}",
        s.client_addr,
        s.client_user,
        s.application_name.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "  started     {}", s.started_at);
    match &d.summary.end {
        Some(e) => {
            let secs = (e.ended_at.unix_millis() - s.started_at.unix_millis()) as f64 / 1000.0;
            let _ = writeln!(
                out,
                "  ended       {} ({}) after {secs:.3}s",
                e.ended_at,
                e.reason.as_str()
            );
            if let Some(detail) = &e.detail {
                let _ = writeln!(out, "  detail      {detail}");
            }
            let _ = writeln!(
                out,
                "  traffic     {} bytes from client, {} bytes to client",
                e.bytes_from_client, e.bytes_to_client
            );
        }
        None => {
            let _ = writeln!(out, "  ended       (still open)");
        }
    }
    // A SQL session is a series of statements; an HTTP one of requests, an
    // MCP one of messages.
    let unit = match s.protocol.as_str() {
        "http" | "kubernetes" => "request(s)",
        "mcp" => "message(s)",
        _ => "statement(s)",
    };
    let _ = writeln!(out, "\n  {} {unit}:", d.statements.len());
    for st in &d.statements {
        out.push_str(&statement_line(st, s.started_at));
    }
    out
}

fn statement_line(st: &ActionRecord, session_start: Timestamp) -> String {
    let offset = (st.started_at.unix_millis() - session_start.unix_millis()) as f64 / 1000.0;
    let mut line = format!(
        "  +{offset:>9.3}s  #{:<4} {:<13} {}\n",
        st.seq,
        st.protocol,
        one_line(&st.text, 200)
    );
    if !st.params.is_empty() {
        let params: Vec<String> = st
            .params
            .iter()
            .map(|p| match p {
                Some(v) => format!("'{}'", one_line(v, 60)),
                None => "NULL".into(),
            })
            .collect();
        let _ = writeln!(line, "{:>30}params: {}", "", params.join(", "));
    }
    let took = format_duration_us(st.duration_us);
    let result = match &st.outcome {
        ActionOutcome::Ok {
            summary: command_tag,
            count: rows,
        } => match rows {
            Some(n) => format!(
                "ok  {command_tag} ({n} row{})",
                if *n == 1 { "" } else { "s" }
            ),
            None => format!("ok  {command_tag}"),
        },
        ActionOutcome::Error {
            code: sqlstate,
            message,
        } => {
            format!("error {sqlstate}: {}", one_line(message, 160))
        }
        ActionOutcome::Incomplete => "incomplete (session ended before an answer)".into(),
    };
    let _ = writeln!(line, "{:>30}-> {result} in {took}", "");
    if let Some(m) = &st.masking {
        let named = |v: &[(String, u64)]| {
            v.iter()
                .map(|(n, c)| format!("{n} {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = vec![format!("{} value(s) masked", m.values_masked)];
        if !m.detectors.is_empty() {
            parts.push(format!("detectors: {}", named(&m.detectors)));
        }
        if !m.rules.is_empty() {
            parts.push(format!("rules: {}", named(&m.rules)));
        }
        if let Some(g) = &m.exempt_group {
            parts.push(format!("sent in clear to the exempt group {g}"));
        }
        let _ = writeln!(line, "{:>30}masking: {}", "", parts.join("; "));
    }
    if let Some(x) = &st.exchange {
        let ctype = x
            .response_headers
            .iter()
            .find(|(n, _)| n == "content-type")
            .map(|(_, v)| format!(", {v}"))
            .unwrap_or_default();
        let _ = writeln!(
            line,
            "{:>30}http: request {} bytes; response {}, {} bytes{ctype}",
            "", x.request_bytes, x.status, x.response_bytes
        );
        if let Some(b) = &x.response_body {
            let _ = writeln!(line, "{:>30}body: {}", "", one_line(b, 160));
        }
        if let Some(s) = &x.stream {
            let mut parts = vec![format!("{}", s.protocol)];
            if let Some(c) = s.exit_code {
                parts.push(format!("exit {c}"));
            }
            parts.push(format!(
                "stdin {} B, stdout {} B, stderr {} B",
                s.stdin_bytes, s.stdout_bytes, s.stderr_bytes
            ));
            for (port, n) in &s.forwarded {
                parts.push(format!("port {port}: {n} connection(s)"));
            }
            if let (Some(name), Some(sha)) = (&s.recording, &s.recording_sha256) {
                parts.push(format!(
                    "recording {name} ({} bytes, sha256 {}; `gatehouse sessions replay <session> {}`)",
                    s.recording_bytes,
                    &sha[..16.min(sha.len())],
                    st.seq
                ));
            }
            let _ = writeln!(line, "{:>30}stream: {}", "", parts.join("; "));
        }
    }
    if let Some(d) = &st.decision {
        let by = if d.policies.is_empty() {
            String::new()
        } else {
            format!(" by {}", d.policies.join(", "))
        };
        let why = d
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let _ = writeln!(
            line,
            "{:>30}policy: {}{by} ({} mode){why}",
            "", d.decision, d.mode
        );
    }
    line
}

fn one_line(s: &str, max: usize) -> String {
    let mut flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        flat = flat.chars().take(max).collect::<String>() + "…";
    }
    flat
}

fn format_duration_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{:.2} s", us as f64 / 1_000_000.0)
    }
}

/// Writes what an asciicast v2 recording's terminal showed to standard
/// output: its output events in order (at the recorded pace with
/// `realtime`), its markers (the exit status) on standard error.
pub fn replay_cast(cast: &[u8], realtime: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let text =
        std::str::from_utf8(cast).map_err(|_| anyhow::anyhow!("the recording is not UTF-8"))?;
    let mut lines = text.lines();
    let header: serde_json::Value = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| anyhow::anyhow!("the recording has no asciicast header"))?;
    if header["version"] != 2 {
        anyhow::bail!("the recording is not asciicast v2");
    }
    let mut out = std::io::stdout().lock();
    let mut at = 0.0f64;
    for line in lines {
        let Ok(serde_json::Value::Array(e)) = serde_json::from_str::<serde_json::Value>(line)
        else {
            anyhow::bail!("the recording has an unreadable event: {line}");
        };
        let (Some(t), Some(code), Some(data)) = (
            e.first().and_then(|v| v.as_f64()),
            e.get(1).and_then(|v| v.as_str()),
            e.get(2).and_then(|v| v.as_str()),
        ) else {
            anyhow::bail!("the recording has an unreadable event: {line}");
        };
        if realtime && t > at {
            out.flush()?;
            std::thread::sleep(std::time::Duration::from_secs_f64((t - at).min(5.0)));
        }
        at = t;
        match code {
            "o" => out.write_all(data.as_bytes())?,
            "m" => {
                out.flush()?;
                eprintln!("[{data}]");
            }
            _ => {}
        }
    }
    out.flush()?;
    Ok(())
}
