//! Fuzz targets: each takes any bytes and must return without panicking,
//! hanging or growing without bound, whatever the bytes are. They are
//! plain functions so that two runners share them: cargo-fuzz's libFuzzer
//! binaries in `fuzz/` (coverage-guided, for long runs) and the smoke test
//! in `tests/smoke.rs` (the seed corpora and random mutations of them, on
//! every `cargo test`).

use gatehouse_mask::{
    BuiltinDetector, DetectorSpec, HashKey, JsonStream, MaskTally, MaskingEngine, Scratch,
    Strategy, TextKind, BUILTIN,
};
use gatehouse_postgres::codec::{backend, frontend, startup};
use std::sync::OnceLock;

/// A target: its name (the corpus folder and the cargo-fuzz binary) and
/// its function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("pg_frontend", pg_frontend),
    ("pg_backend", pg_backend),
    ("pg_startup", pg_startup),
    ("sql_analysis", sql_analysis),
    ("masking_text", masking_text),
    ("masking_json", masking_json),
    ("evidence_entry", evidence_entry),
    ("signed_note", signed_note),
    ("jwt", jwt),
    ("mysql_statement", mysql_statement),
    ("mysql_handshake", mysql_handshake),
    ("mysql_execute", mysql_execute),
];

/// A PostgreSQL frontend message body, by its type byte (the first byte).
pub fn pg_frontend(data: &[u8]) {
    let Some((&ty, body)) = data.split_first() else {
        return;
    };
    match ty % 8 {
        0 => drop(frontend::parse_query(body)),
        1 => drop(frontend::parse_parse(body)),
        2 => drop(frontend::parse_bind(body)),
        3 => drop(frontend::parse_describe(body)),
        4 => drop(frontend::parse_execute(body)),
        5 => drop(frontend::parse_close(body)),
        6 => drop(frontend::parse_function_call(body)),
        _ => drop(frontend::parse_password(body)),
    }
}

/// A PostgreSQL backend message body the gateway reads.
pub fn pg_backend(data: &[u8]) {
    let Some((&ty, body)) = data.split_first() else {
        return;
    };
    match ty % 4 {
        0 => drop(backend::parse_authentication(body)),
        1 => drop(backend::parse_error_fields(body)),
        2 => drop(backend::parse_backend_key_data(body)),
        _ => {
            if let Ok(tag) = backend::parse_command_tag(body) {
                let _ = backend::rows_from_tag(tag);
            }
        }
    }
}

/// A startup packet's body (after its length).
pub fn pg_startup(data: &[u8]) {
    let _ = startup::parse_startup_packet(data);
}

/// Statement analysis of any text, in both of PostgreSQL's lexing modes,
/// and the redaction of secrets that runs before a text is recorded.
pub fn sql_analysis(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for backslash_escapes in [false, true] {
        let _ =
            gatehouse_sql::analyze_uncached(&text, gatehouse_sql::ParseMode { backslash_escapes });
    }
    let _ = gatehouse_sql::redact_secrets(&text);
}

/// Every built-in detector, masking by its default strategy (hashes need
/// the key: a fixed one here).
fn engine() -> &'static MaskingEngine {
    static ENGINE: OnceLock<MaskingEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let detectors: Vec<DetectorSpec> = BUILTIN
            .iter()
            .map(|d: &BuiltinDetector| DetectorSpec::builtin(d, Some(Strategy::Redact)))
            .collect();
        MaskingEngine::new(detectors, Vec::new(), HashKey::new([7; 32]))
            .unwrap_or_else(|e| unreachable!("the built-in detectors compile: {e}"))
    })
}

/// The masking engine over any value, read as each kind of text.
pub fn masking_text(data: &[u8]) {
    let (mut out, mut scratch, mut tally) = (Vec::new(), Scratch::default(), MaskTally::default());
    for kind in [TextKind::Plain, TextKind::Json, TextKind::Escaped] {
        out.clear();
        let _ = engine().mask_text(data, kind, &mut out, &mut scratch, &mut tally);
        out.clear();
        let _ = engine().mask_inline(data, kind, &mut out, &mut scratch, &mut tally);
    }
}

/// A JSON document masked as it streams, cut into chunks where the first
/// byte says: the same output whatever the cuts.
pub fn masking_json(data: &[u8]) {
    let Some((&cut, doc)) = data.split_first() else {
        return;
    };
    let run = |chunk: usize| {
        let (mut out, mut scratch, mut tally) =
            (Vec::new(), Scratch::default(), MaskTally::default());
        let mut stream = JsonStream::new(1 << 20);
        for piece in doc.chunks(chunk.max(1)) {
            if stream
                .feed(engine(), piece, &mut out, &mut scratch, &mut tally)
                .is_err()
            {
                return None;
            }
        }
        stream
            .finish(engine(), &mut out, &mut scratch, &mut tally)
            .ok()
            .map(|()| out)
    };
    let whole = run(doc.len());
    let cut_up = run(usize::from(cut % 16) + 1);
    assert_eq!(
        whole, cut_up,
        "masking depends on where the document was cut"
    );
}

/// An evidence log entry as stored (what `audit verify` decodes).
pub fn evidence_entry(data: &[u8]) {
    let _ = gatehouse_evidence::Entry::decode(data);
    let _ = gatehouse_evidence::Entry::decode_head(data);
}

/// Signed notes and keys as witness files and the shared store hold them.
pub fn signed_note(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = gatehouse_evidence::split_notes(&text);
    let _ = gatehouse_evidence::whole_notes_end(&text);
    let _ = gatehouse_evidence::VerifierKey::parse(&text);
    let _ = gatehouse_evidence::SigningKey::parse(&text);
    let _ = verifier().open(&text);
}

/// A real key, so that opening a note gets as far as its signature.
fn verifier() -> &'static gatehouse_evidence::VerifierKey {
    static KEY: OnceLock<gatehouse_evidence::VerifierKey> = OnceLock::new();
    KEY.get_or_init(|| {
        gatehouse_evidence::SigningKey::generate("gatehouse.example/fuzz")
            .unwrap_or_else(|e| unreachable!("a fixed valid name: {e}"))
            .verifier()
    })
}

/// A JWT's structure, before any key is looked up (what a login with an
/// OIDC token parses first).
pub fn jwt(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = gatehouse_identity::oidc::inspect_unverified(&text);
}

/// A MySQL or MariaDB statement's text through the lexer (executable
/// comments, quoting modes) and the analysis.
pub fn mysql_statement(data: &[u8]) {
    gatehouse_mysql::fuzz::statement(&String::from_utf8_lossy(data));
}

/// A MySQL handshake packet: a server's greeting, a caller's response or
/// SSL request, an auth switch.
pub fn mysql_handshake(data: &[u8]) {
    gatehouse_mysql::fuzz::handshake(data);
}

/// A `COM_STMT_EXECUTE` with its binary parameters.
pub fn mysql_execute(data: &[u8]) {
    gatehouse_mysql::fuzz::execute(data);
}
