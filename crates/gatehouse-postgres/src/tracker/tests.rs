use super::*;
use bytes::{BufMut, BytesMut};

fn cstr(b: &mut BytesMut, s: &str) {
    b.put_slice(s.as_bytes());
    b.put_u8(0);
}

fn query(q: &str) -> BytesMut {
    let mut b = BytesMut::new();
    cstr(&mut b, q);
    b
}

fn parse(name: &str, q: &str) -> BytesMut {
    let mut b = BytesMut::new();
    cstr(&mut b, name);
    cstr(&mut b, q);
    b.put_i16(0);
    b
}

fn bind(portal: &str, stmt: &str, params: &[&str]) -> BytesMut {
    let mut b = BytesMut::new();
    cstr(&mut b, portal);
    cstr(&mut b, stmt);
    b.put_i16(0);
    b.put_i16(params.len() as i16);
    for p in params {
        b.put_i32(p.len() as i32);
        b.put_slice(p.as_bytes());
    }
    b.put_i16(0);
    b
}

fn execute(portal: &str) -> BytesMut {
    let mut b = BytesMut::new();
    cstr(&mut b, portal);
    b.put_i32(0);
    b
}

fn error(code: &str, msg: &str) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(b'C');
    cstr(&mut b, code);
    b.put_u8(b'M');
    cstr(&mut b, msg);
    b.put_u8(0);
    b
}

/// A tracker with what the relay keeps for it: the write-ahead batch its
/// decisions go to, and the records it finished.
struct Harness {
    t: Tracker,
    w: WriteAhead,
    done: Vec<ActionRecord>,
}

impl Harness {
    fn on_frontend(&mut self, ty: u8, body: &[u8]) -> Result<Flow, CodecError> {
        self.t.on_frontend(ty, body, &mut self.w)
    }

    fn on_backend(&mut self, ty: u8, body: &[u8]) -> Result<Flow, CodecError> {
        let mut answered = Answered::default();
        let flow = self.t.on_backend(ty, body, &mut answered);
        self.done.append(&mut answered.finished);
        flow
    }

    fn drain_incomplete(&mut self) {
        let left = self.t.drain_incomplete();
        self.done.extend(left);
    }
}

impl std::ops::Deref for Harness {
    type Target = Tracker;
    fn deref(&self) -> &Tracker {
        &self.t
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut Tracker {
        &mut self.t
    }
}

fn tracker() -> Harness {
    tracker_with("permit (principal, action, resource);")
}

fn tracker_with(policy: &str) -> Harness {
    let engine = gatehouse_policy::PolicyEngine::from_sources(&[(
        std::path::PathBuf::from("policy.cedar"),
        policy.to_string(),
    )])
    .unwrap();
    let policy = std::sync::Arc::new(gatehouse_policy::PolicyHandle::new(
        engine,
        Vec::new(),
        gatehouse_policy::PolicyMode::Enforce,
    ));
    let settings = crate::gate::GateSettings {
        analyzer: std::sync::Arc::new(gatehouse_sql::Analyzer::new(64)),
        policy,
        functions: Default::default(),
    };
    let identity = gatehouse_core::Identity::with_service_token("t", vec![], "x");
    let gate = Gate::new(
        settings,
        identity,
        "app-db".into(),
        "127.0.0.1".parse().unwrap(),
    );
    let masking = crate::mask::SessionMasking::new(
        None,
        std::sync::Arc::new(gatehouse_mask::MaskingEngine::secrets_only()),
        &[],
    );
    let id = SessionId::new();
    Harness {
        t: Tracker::new(id, gate, masking),
        w: WriteAhead::new(id, "t", "app-db"),
        done: Vec::new(),
    }
}

#[test]
fn simple_multi_statement_query_collects_tags_until_ready() {
    let mut t = tracker();
    t.on_frontend(b'Q', &query("insert into t values (1); select 1"))
        .unwrap();
    t.on_backend(b'C', &query("INSERT 0 1")).unwrap();
    t.on_backend(b'C', &query("SELECT 1")).unwrap();
    assert!(t.done.is_empty());
    t.on_backend(b'Z', b"I").unwrap();
    assert_eq!(t.done.len(), 1);
    let r = &t.done[0];
    assert_eq!(r.protocol, "simple");
    assert_eq!(r.seq, 1);
    assert_eq!(
        r.outcome,
        ActionOutcome::Ok {
            summary: "INSERT 0 1; SELECT 1".into(),
            count: Some(2)
        }
    );
}

#[test]
fn pipelined_extended_statements_complete_in_order_with_params() {
    let mut t = tracker();
    t.on_frontend(b'P', &parse("s1", "select $1")).unwrap();
    t.on_frontend(b'B', &bind("", "s1", &["7"])).unwrap();
    t.on_frontend(b'E', &execute("")).unwrap();
    t.on_frontend(b'B', &bind("", "s1", &["8"])).unwrap();
    t.on_frontend(b'E', &execute("")).unwrap();
    t.on_frontend(b'S', b"").unwrap();
    // ParseComplete, BindComplete, CommandComplete; BindComplete, CommandComplete.
    t.on_backend(b'1', b"").unwrap();
    t.on_backend(b'2', b"").unwrap();
    t.on_backend(b'C', &query("SELECT 1")).unwrap();
    t.on_backend(b'2', b"").unwrap();
    t.on_backend(b'C', &query("SELECT 1")).unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    let params: Vec<_> = t.done.iter().map(|r| r.params.clone()).collect();
    assert_eq!(
        params,
        vec![vec![Some("7".to_string())], vec![Some("8".to_string())]]
    );
    assert!(t
        .done
        .iter()
        .all(|r| r.text == "select $1" && r.protocol == "extended"));
}

#[test]
fn error_skips_rest_of_batch_until_sync() {
    let mut t = tracker();
    t.on_frontend(b'P', &parse("", "select 1/0")).unwrap();
    t.on_frontend(b'B', &bind("", "", &[])).unwrap();
    t.on_frontend(b'E', &execute("")).unwrap();
    t.on_frontend(b'P', &parse("", "select 2")).unwrap();
    t.on_frontend(b'B', &bind("", "", &[])).unwrap();
    t.on_frontend(b'E', &execute("")).unwrap();
    t.on_frontend(b'S', b"").unwrap();
    t.on_frontend(b'Q', &query("select 3")).unwrap();
    t.on_backend(b'E', &error("22012", "division by zero"))
        .unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    t.on_backend(b'C', &query("SELECT 1")).unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    assert_eq!(t.done.len(), 2);
    assert_eq!(
        t.done[0].outcome,
        ActionOutcome::Error {
            code: "22012".into(),
            message: "division by zero".into()
        }
    );
    assert_eq!(t.done[1].text, "select 3");
}

#[test]
fn parse_error_without_execute_is_recorded_with_its_text() {
    let mut t = tracker();
    t.on_frontend(b'P', &parse("bad", "selec 1")).unwrap();
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(b'E', &error("42601", "syntax error")).unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    assert_eq!(t.done.len(), 1);
    assert_eq!(t.done[0].text, "selec 1");
    t.done.clear();
    // The next batch is tracked normally.
    t.on_frontend(b'Q', &query("select 1")).unwrap();
    t.on_backend(b'C', &query("SELECT 1")).unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    assert_eq!(t.done.len(), 1);
}

#[test]
fn unanswered_statements_are_recorded_incomplete() {
    let mut t = tracker();
    t.on_frontend(b'Q', &query("select pg_sleep(100)")).unwrap();
    t.drain_incomplete();
    assert_eq!(t.done[0].outcome, ActionOutcome::Incomplete);
}

#[test]
fn binary_and_long_params_are_rendered_safely() {
    assert_eq!(
        param_text(&BindValue::Binary(&[0, 255])),
        Some("\\x00ff".into())
    );
    assert_eq!(param_text(&BindValue::Null), None);
    let long = vec![b'a'; MAX_PARAM + 10];
    let s = param_text(&BindValue::Text(&long)).unwrap();
    assert!(s.ends_with(&format!("({} bytes in all)", MAX_PARAM + 10)));
}

#[test]
fn a_name_holds_what_the_server_holds_not_what_was_last_sent() {
    let mut t = tracker_with(
        "permit (principal, action, resource);\n\
         forbid (principal, action == Gatehouse::Action::\"delete\", resource);",
    );
    // s1 = delete is refused: its poison fails, and the server has no s1.
    assert!(matches!(
        t.on_frontend(b'P', &parse("s1", "delete from t")).unwrap(),
        Flow::Replace(_)
    ));
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(b'E', &error("42601", "syntax error")).unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    // s1 = select 1 is allowed, but the server refuses it (say the name is
    // taken): the gateway must not take it as s1.
    t.on_frontend(b'P', &parse("s1", "select 1")).unwrap();
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(
        b'E',
        &error("42P05", "prepared statement \"s1\" already exists"),
    )
    .unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    t.on_frontend(b'B', &bind("", "s1", &[])).unwrap();
    match t.on_frontend(b'E', &execute("")).unwrap() {
        Flow::Replace(poison) => {
            // A Close of the poison portal, then an Execute of it.
            assert_eq!(poison[0], b'C');
            let close = u32::from_be_bytes(poison[1..5].try_into().unwrap()) as usize;
            assert_eq!(
                poison[1 + close],
                b'E',
                "an Execute of a portal that does not exist"
            );
        }
        other => {
            panic!("an Execute of a statement the gateway never saw confirmed went out: {other:?}")
        }
    }
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(b'2', b"").unwrap();
    // The poison's Close is answered to the gateway, not the client.
    match t.on_backend(b'3', b"").unwrap() {
        Flow::Replace(none) => assert!(none.is_empty()),
        other => panic!("the gateway's CloseComplete went out: {other:?}"),
    }
    t.on_backend(b'E', &error("34000", "portal does not exist"))
        .unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    // Confirmed by ParseComplete, it is s1 from then on.
    t.on_frontend(b'P', &parse("s2", "select 2")).unwrap();
    t.on_frontend(b'B', &bind("", "s2", &[])).unwrap();
    assert!(matches!(
        t.on_frontend(b'E', &execute("")).unwrap(),
        Flow::Forward
    ));
}

#[test]
fn a_refused_reparse_of_a_name_leaves_the_older_statement_decided_as_itself() {
    let mut t = tracker_with(
        "permit (principal, action, resource);\n\
         forbid (principal, action == Gatehouse::Action::\"delete\", resource);",
    );
    t.on_frontend(b'P', &parse("s1", "select 1")).unwrap();
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(b'1', b"").unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    // Re-parsing the name with a refused statement: the server keeps s1 = select 1.
    assert!(matches!(
        t.on_frontend(b'P', &parse("s1", "delete from t")).unwrap(),
        Flow::Replace(_)
    ));
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(b'E', &error("42601", "syntax error")).unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    t.on_frontend(b'B', &bind("", "s1", &[])).unwrap();
    assert!(matches!(
        t.on_frontend(b'E', &execute("")).unwrap(),
        Flow::Forward
    ));
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(b'2', b"").unwrap();
    t.on_backend(b'C', &query("SELECT 1")).unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    let last = t.done.last().unwrap();
    assert_eq!(
        &*last.text, "select 1",
        "the record names what the server ran"
    );
}

fn masked_tracker() -> Harness {
    let mut t = tracker();
    let engine = gatehouse_mask::MaskingEngine::new(
        vec![gatehouse_mask::DetectorSpec::builtin(
            gatehouse_mask::builtin("card").unwrap(),
            None,
        )],
        Vec::new(),
        gatehouse_mask::HashKey::new([0; 32]),
    )
    .unwrap();
    let target = std::sync::Arc::new(crate::BackendTarget {
        name: "db".into(),
        host: "127.0.0.1".into(),
        port: 1,
        database: "db".into(),
        user: "u".into(),
        password: crate::BackendPassword::new("p".into()),
        tls: crate::BackendTls::Disable,
        connect_timeout: std::time::Duration::from_secs(1),
    });
    t.masking = crate::mask::SessionMasking::new(
        Some(std::sync::Arc::new(crate::mask::ConnectionMasking::new(
            std::sync::Arc::new(engine),
            Vec::new(),
            Vec::new(),
            target,
        ))),
        std::sync::Arc::new(gatehouse_mask::MaskingEngine::secrets_only()),
        &[],
    );
    assert!(t.masking.active);
    t
}

fn describe(kind: u8, name: &str) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(kind);
    cstr(&mut b, name);
    b
}

fn row_description(cols: &[(&str, i32)]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i16(cols.len() as i16);
    for (name, oid) in cols {
        cstr(&mut b, name);
        b.put_i32(0);
        b.put_i16(0);
        b.put_i32(*oid);
        b.put_i16(-1);
        b.put_i32(-1);
        b.put_i16(0);
    }
    b
}

fn data_row(values: &[&str]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i16(values.len() as i16);
    for v in values {
        b.put_i32(v.len() as i32);
        b.put_slice(v.as_bytes());
    }
    b
}

#[test]
fn a_portal_described_before_its_execute_arrives_is_masked() {
    let mut t = masked_tracker();
    t.on_frontend(b'P', &parse("", "select card from t"))
        .unwrap();
    t.on_frontend(b'B', &bind("", "", &[])).unwrap();
    t.on_frontend(b'D', &describe(b'P', "")).unwrap();
    // The backend answers the Describe before the client's Execute arrives.
    t.on_backend(b'1', b"").unwrap();
    t.on_backend(b'2', b"").unwrap();
    t.on_backend(b'T', &row_description(&[("card", 25)]))
        .unwrap();
    t.on_frontend(b'E', &execute("")).unwrap();
    t.on_frontend(b'S', b"").unwrap();
    match t
        .on_backend(b'D', &data_row(&["4111111111111111"]))
        .unwrap()
    {
        Flow::Replace(m) => {
            let text = String::from_utf8_lossy(&m);
            assert!(text.contains("************1111"), "{text}");
        }
        other => panic!("the row was not masked: {other:?}"),
    }
}

#[test]
fn a_row_without_a_description_is_withheld() {
    let mut t = masked_tracker();
    t.on_frontend(b'P', &parse("s", "select card from t"))
        .unwrap();
    t.on_frontend(b'B', &bind("", "s", &[])).unwrap();
    t.on_frontend(b'E', &execute("")).unwrap();
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(b'1', b"").unwrap();
    t.on_backend(b'2', b"").unwrap();
    match t
        .on_backend(b'D', &data_row(&["4111111111111111"]))
        .unwrap()
    {
        Flow::Replace(m) => {
            assert_eq!(m[0], b'E');
            assert!(!String::from_utf8_lossy(&m).contains("4111111111111111"));
        }
        other => panic!("a row of an undescribed result went out: {other:?}"),
    }
    // Everything else up to ReadyForQuery is withheld too.
    let Flow::Replace(m) = t.on_backend(b'C', &query("SELECT 1")).unwrap() else {
        panic!("CommandComplete after a withheld row went out");
    };
    assert!(m.is_empty());
    assert!(matches!(t.on_backend(b'Z', b"I").unwrap(), Flow::Forward));
    match &t.done[0].outcome {
        ActionOutcome::Error {
            code: sqlstate,
            message,
        } => {
            assert_eq!(sqlstate, "58000");
            assert!(message.contains("withheld"), "{message}");
        }
        other => panic!("recorded as {other:?}"),
    }
}

fn close_statement(name: &str) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(b'S');
    cstr(&mut b, name);
    b
}

#[test]
fn names_are_keyed_as_the_server_keys_them_and_share_one_namespace() {
    let mut t = tracker();
    // Longer than 63 bytes: the server keeps the first 63, so these are one name.
    let long1 = format!("{}1", "a".repeat(63));
    let long2 = format!("{}2", "a".repeat(63));
    t.on_frontend(b'P', &parse(&long1, "select 1")).unwrap();
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(b'1', b"").unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    t.on_frontend(b'C', &close_statement(&long2)).unwrap();
    t.on_frontend(b'B', &bind("", &long1, &[])).unwrap();
    assert!(
        matches!(t.on_frontend(b'E', &execute("")).unwrap(), Flow::Replace(_)),
        "a statement closed under its truncated name ran"
    );
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(b'E', &error("26000", "prepared statement does not exist"))
        .unwrap();
    t.on_backend(b'Z', b"I").unwrap();

    // SQL PREPARE and a protocol-level Close share the namespace.
    t.on_frontend(b'Q', &query("PREPARE p AS SELECT 1"))
        .unwrap();
    t.on_backend(b'C', &query("PREPARE")).unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    t.on_frontend(b'C', &close_statement("p")).unwrap();
    assert!(
        matches!(
            t.on_frontend(b'Q', &query("EXECUTE p")).unwrap(),
            Flow::Replace(_)
        ),
        "EXECUTE of a closed name was decided as what it had been"
    );
}

#[test]
fn portals_end_with_their_transaction() {
    let mut t = tracker();
    t.on_frontend(b'P', &parse("s", "select 1")).unwrap();
    t.on_frontend(b'B', &bind("c", "s", &[])).unwrap();
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(b'1', b"").unwrap();
    t.on_backend(b'2', b"").unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    // The implicit transaction ended at Sync: portal c is gone on the server.
    assert!(matches!(
        t.on_frontend(b'E', &execute("c")).unwrap(),
        Flow::Replace(_)
    ));
}

/// Not a test: a fixed workload for counting instructions per statement
/// under callgrind (docs/performance.md): `n` executions of a prepared
/// statement, as a driver pipelines them, with the relay's draining.
#[test]
#[ignore]
fn statement_cycles() {
    let n: usize = std::env::var("GATEHOUSE_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut t = tracker();
    t.on_frontend(b'P', &parse("s1", "select $1")).unwrap();
    t.on_frontend(b'S', b"").unwrap();
    t.on_backend(b'1', b"").unwrap();
    t.on_backend(b'Z', b"I").unwrap();
    let (b, e, c) = (bind("", "s1", &["7"]), execute(""), query("SELECT 1"));
    for _ in 0..n {
        t.on_frontend(b'B', &b).unwrap();
        t.on_frontend(b'E', &e).unwrap();
        t.on_frontend(b'S', b"").unwrap();
        std::hint::black_box(t.w.drain());
        t.on_backend(b'2', b"").unwrap();
        t.on_backend(b'C', &c).unwrap();
        t.on_backend(b'Z', b"I").unwrap();
        std::hint::black_box(std::mem::take(&mut t.done));
    }
}
