//! The masking part of the configuration: `[masking]` (gateway-wide: hash
//! key, custom detectors) and `[connection.masking]` (per connection:
//! detectors, strategies, column rules, exempt groups).

use gatehouse_mask::{
    builtin, group, ColumnRule, ColumnTarget, DetectorSpec, HashKey, JsonPath, MaskingEngine,
    Strategy, Validator,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct MaskingSection {
    hash_key_file: Option<String>,
    #[serde(default)]
    detector: Vec<CustomDetectorSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomDetectorSection {
    name: String,
    pattern: String,
    validator: Option<String>,
    strategy: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectionMaskingSection {
    detectors: Option<Vec<String>>,
    #[serde(default)]
    strategies: BTreeMap<String, String>,
    #[serde(default)]
    exempt_groups: Vec<String>,
    #[serde(default)]
    trusted_functions: Vec<String>,
    #[serde(default)]
    rule: Vec<RuleSection>,
    /// JSON paths masked with the default strategy (http and mcp connections).
    #[serde(default)]
    json_paths: Vec<String>,
    /// Columns the detectors find sensitive are protected like ruled ones
    /// (database connections; on by default when detectors are).
    discover_columns: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    column: Option<String>,
    column_pattern: Option<String>,
    json_path: Option<String>,
    strategy: Option<String>,
}

/// One connection's masking, checked.
#[derive(Debug, Clone)]
pub struct MaskingSpec {
    /// Detectors in priority order.
    pub detectors: Vec<DetectorSpec>,
    /// Column rules in file order (the first match applies).
    pub rules: Vec<ColumnRule>,
    /// Groups whose members see clear values.
    pub exempt_groups: Vec<String>,
    /// Functions (name patterns) masked sessions may call under column rules
    /// although the gateway cannot see into them.
    pub trusted_functions: Vec<String>,
    /// Columns a detector finds sensitive become covered like ruled ones.
    pub discover_columns: bool,
}

impl MaskingSpec {
    /// Compiles the engine with the hash key.
    pub fn engine(&self, key: HashKey) -> Result<MaskingEngine, gatehouse_mask::MaskError> {
        MaskingEngine::new(self.detectors.clone(), self.rules.clone(), key)
    }
}

/// Gateway-wide masking settings, checked.
#[derive(Debug, Clone, Default)]
pub struct MaskingGlobal {
    /// The hash key file named in the configuration (else one is generated
    /// into the data directory).
    pub hash_key_file: Option<PathBuf>,
    custom: Vec<DetectorSpec>,
}

type Report<'a> = dyn FnMut(String, String) + 'a;

/// Checks `[masking]`.
pub(super) fn resolve_global(
    m: Option<&MaskingSection>,
    path: impl Fn(&str) -> PathBuf,
    problem: &mut Report<'_>,
) -> MaskingGlobal {
    let Some(m) = m else {
        return MaskingGlobal::default();
    };
    let hash_key_file = m.hash_key_file.as_deref().map(&path);
    if let Some(f) = &hash_key_file {
        if let Err(reason) = read_hash_key(f) {
            problem("masking.hash_key_file".into(), reason);
        }
    }
    let mut custom = Vec::new();
    for (i, d) in m.detector.iter().enumerate() {
        let k = |f: &str| format!("masking.detector[{i}].{f}");
        let mut ok = true;
        if d.name.is_empty()
            || !d
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            problem(
                k("name"),
                format!(
                    "{:?} is not a detector name: use lower-case letters, digits and _",
                    d.name
                ),
            );
            ok = false;
        } else if builtin(&d.name).is_some() || group(&d.name).is_some() {
            problem(
                k("name"),
                format!(
                    "{:?} is a built-in detector or group; choose another name",
                    d.name
                ),
            );
            ok = false;
        } else if custom.iter().any(|c: &DetectorSpec| c.name == d.name) {
            problem(k("name"), format!("{:?} is defined twice", d.name));
            ok = false;
        }
        let validator = match d.validator.as_deref().map(Validator::parse) {
            None => Validator::None,
            Some(Some(v)) => v,
            Some(None) => {
                problem(
                    k("validator"),
                    "unknown validator: use none, luhn, card, iban, ssn, phone, ipv4 or ipv6"
                        .into(),
                );
                ok = false;
                Validator::None
            }
        };
        let strategy = match d.strategy.as_deref().map(Strategy::parse) {
            None => Strategy::Redact,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                problem(k("strategy"), e.to_string());
                ok = false;
                Strategy::Redact
            }
        };
        let spec = DetectorSpec {
            name: d.name.clone(),
            pattern: d.pattern.clone(),
            validator,
            strategy,
        };
        match MaskingEngine::new(vec![spec.clone()], Vec::new(), HashKey::new([0; 32])) {
            Err(gatehouse_mask::MaskError::Pattern { reason, .. }) => {
                problem(k("pattern"), format!("does not compile: {reason}"));
                ok = false;
            }
            Err(e) => {
                problem(k("pattern"), e.to_string());
                ok = false;
            }
            Ok(engine) if engine.may_contain(b"") => {
                problem(
                    k("pattern"),
                    "matches the empty string, so it would mask everywhere".into(),
                );
                ok = false;
            }
            Ok(_) => {}
        }
        if ok {
            custom.push(spec);
        }
    }
    MaskingGlobal {
        hash_key_file,
        custom,
    }
}

/// Checks one `[connection.masking]`; `prefix` is `connection[i].masking`.
pub(super) fn resolve_connection(
    m: &ConnectionMaskingSection,
    global: &MaskingGlobal,
    prefix: &str,
    kind: &str,
    problem: &mut Report<'_>,
) -> Option<MaskingSpec> {
    // http and mcp answers are documents: JSON path rules, not column rules.
    let documents = !matches!(kind, "postgres" | "mysql");
    let ok = std::cell::Cell::new(true);
    let mut fail = |key: String, reason: String| {
        ok.set(false);
        problem(key, reason);
    };
    // SSH output is a terminal's text: detectors mask it; there are no
    // columns or documents to rule, and no exemption is applied yet.
    if kind == "ssh" {
        for (key, set) in [
            ("rule", !m.rule.is_empty()),
            ("json_paths", !m.json_paths.is_empty()),
            ("exempt_groups", !m.exempt_groups.is_empty()),
            ("trusted_functions", !m.trusted_functions.is_empty()),
            ("discover_columns", m.discover_columns.is_some()),
        ] {
            if set {
                fail(
                    format!("{prefix}.{key}"),
                    "not used by ssh connections: their output is text, masked by detectors (and always by the secret detectors)".into(),
                );
            }
        }
    }
    // MySQL results are masked by column origin and detectors; functions
    // and column discovery are PostgreSQL's so far.
    if kind == "mysql" {
        for (key, set) in [
            ("trusted_functions", !m.trusted_functions.is_empty()),
            ("discover_columns", m.discover_columns.is_some()),
        ] {
            if set {
                fail(
                    format!("{prefix}.{key}"),
                    "not supported on mysql connections yet (column rules, detectors and exempt_groups are)".into(),
                );
            }
        }
    }
    // Which detectors, in built-in priority order then custom ones.
    let wanted: Vec<String> = m.detectors.clone().unwrap_or_else(|| vec!["all".into()]);
    let mut names: Vec<String> = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        if w == "all" {
            names.extend(gatehouse_mask::BUILTIN.iter().map(|d| d.name.to_string()));
            names.extend(global.custom.iter().map(|d| d.name.clone()));
        } else if let Some(g) = group(w) {
            names.extend(g.into_iter().map(String::from));
        } else if builtin(w).is_some() || global.custom.iter().any(|d| &d.name == w) {
            names.push(w.clone());
        } else {
            fail(
                format!("{prefix}.detectors[{i}]"),
                format!(
                    "unknown detector {w:?}: use all, pii, secrets, ip, a built-in detector ({}) or one defined in [[masking.detector]]",
                    gatehouse_mask::BUILTIN.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    let mut strategies = BTreeMap::new();
    for (name, s) in &m.strategies {
        let key = format!("{prefix}.strategies.{name}");
        if !names.contains(name) {
            fail(
                key,
                format!("{name:?} is not one of this connection's detectors"),
            );
            continue;
        }
        match Strategy::parse(s) {
            Ok(s) => {
                strategies.insert(name.clone(), s);
            }
            Err(e) => fail(key, e.to_string()),
        }
    }
    let mut detectors = Vec::new();
    let builtin_order = gatehouse_mask::BUILTIN
        .iter()
        .filter(|d| names.iter().any(|n| n == d.name));
    for d in builtin_order {
        detectors.push(DetectorSpec::builtin(d, strategies.get(d.name).copied()));
    }
    for d in global.custom.iter().filter(|d| names.contains(&d.name)) {
        let mut d = d.clone();
        if let Some(s) = strategies.get(&d.name) {
            d.strategy = *s;
        }
        detectors.push(d);
    }
    let mut rules = Vec::new();
    for (i, r) in m.rule.iter().enumerate() {
        let k = |f: &str| format!("{prefix}.rule[{i}].{f}");
        let target = match (&r.column, &r.column_pattern, &r.json_path) {
            (Some(c), None, None) => ColumnTarget::exact(c).map(|t| (t, c.clone())),
            (None, Some(p), None) => ColumnTarget::pattern(p).map(|t| (t, p.clone())),
            (None, None, Some(j)) if !documents => {
                fail(k("json_path"), format!("{j:?}: JSON path rules apply to http and mcp connections; on a {kind} connection use column or column_pattern"));
                continue;
            }
            (None, None, Some(j)) => {
                JsonPath::parse(j).map(|p| (ColumnTarget::JsonPath(p), j.clone()))
            }
            (None, None, None) => {
                fail(
                    k("column"),
                    if documents {
                        "missing: name a JSON path (json_path = \"$..ssn\")".into()
                    } else {
                        "missing: name the column (column = \"public.customers.card\") or a name pattern (column_pattern = \"*ssn*\")".into()
                    },
                );
                continue;
            }
            (Some(_), Some(_), None) => {
                fail(
                    k("column"),
                    "set either column or column_pattern, not both".into(),
                );
                continue;
            }
            _ => {
                fail(
                    k("column"),
                    "set one of column, column_pattern or json_path".into(),
                );
                continue;
            }
        };
        let (target, label) = match target {
            Ok(t) => t,
            Err(e) => {
                let key = if r.column.is_some() {
                    "column"
                } else if r.column_pattern.is_some() {
                    "column_pattern"
                } else {
                    "json_path"
                };
                fail(k(key), e.to_string());
                continue;
            }
        };
        if documents && !matches!(target, ColumnTarget::JsonPath(_)) {
            fail(
                k("column"),
                format!("column rules apply to SQL results; on a {kind} connection use json_path"),
            );
            continue;
        }
        let strategy = match r.strategy.as_deref().map(Strategy::parse) {
            None => Strategy::Redact,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                fail(k("strategy"), e.to_string());
                continue;
            }
        };
        rules.push(ColumnRule {
            target,
            strategy,
            label,
        });
    }
    for (i, j) in m.json_paths.iter().enumerate() {
        let key = format!("{prefix}.json_paths[{i}]");
        if !documents {
            fail(
                key,
                format!("JSON paths apply to http and mcp connections, not to a {kind} connection"),
            );
            continue;
        }
        match JsonPath::parse(j) {
            Ok(p) => rules.push(ColumnRule {
                target: ColumnTarget::JsonPath(p),
                strategy: Strategy::Redact,
                label: j.clone(),
            }),
            Err(e) => fail(key, e.to_string()),
        }
    }
    for (i, g) in m.exempt_groups.iter().enumerate() {
        if gatehouse_identity::validate_name("group", g).is_err() {
            fail(
                format!("{prefix}.exempt_groups[{i}]"),
                format!("{g:?} is not a valid group name"),
            );
        }
    }
    for (i, f) in m.trusted_functions.iter().enumerate() {
        let valid = !f.is_empty()
            && f.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '*' | '?' | '$'));
        if !valid {
            fail(
                format!("{prefix}.trusted_functions[{i}]"),
                format!("{f:?} is not a function name or pattern (`schema.name`, `name`, `app.*`)"),
            );
        }
    }
    let discover_columns = match (m.discover_columns, documents) {
        (Some(true), true) => {
            fail(
                format!("{prefix}.discover_columns"),
                format!("finds sensitive table columns; a {kind} connection has none (mask its answers with detectors and json_paths)"),
            );
            false
        }
        (Some(true), false) if detectors.is_empty() => {
            fail(
                format!("{prefix}.discover_columns"),
                "columns are found sensitive by detectors: name some in detectors".into(),
            );
            false
        }
        (Some(on), _) => on,
        (None, documents) => !documents && !detectors.is_empty(),
    };
    if !m.trusted_functions.is_empty() && m.rule.is_empty() && !discover_columns {
        fail(
            format!("{prefix}.trusted_functions"),
            "only column rules and found sensitive columns restrict function calls; without a [[connection.masking.rule]] or discover_columns this has no effect".into(),
        );
    }
    if detectors.is_empty() && rules.is_empty() {
        fail(
            prefix.to_string(),
            "masks nothing: name detectors or add a [[connection.masking.rule]], or remove the section".into(),
        );
    }
    let spec = MaskingSpec {
        detectors,
        rules,
        exempt_groups: m.exempt_groups.clone(),
        trusted_functions: m
            .trusted_functions
            .iter()
            .map(|f| f.to_ascii_lowercase())
            .collect(),
        discover_columns,
    };
    // Detectors compile together too (the combined prefilter has its own limits).
    if ok.get() {
        if let Err(e) = spec.engine(HashKey::new([0; 32])) {
            fail(prefix.to_string(), e.to_string());
        }
    }
    ok.get().then_some(spec)
}

/// Reads a hash key file: 64 hex digits.
pub fn read_hash_key(path: &Path) -> Result<HashKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    HashKey::from_hex(&text).map_err(|e| format!("{}: {e}", path.display()))
}
