//! The compiled masking engine: finds sensitive values in bytes and writes
//! their masked form.

use crate::detectors::BuiltinDetector;
use crate::rules::{self, ColumnRule, SourceColumn};
use crate::strategy::{self, HashKey, Replacement, Strategy};
use crate::validate::Validator;
use crate::MaskError;
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use std::borrow::Cow;

/// Compiled regular expressions stay below this size (user patterns included).
const REGEX_SIZE_LIMIT: usize = 8 << 20;
/// Lazy DFA cache of the combined prefilter: large enough that it is not
/// thrown away (and the search degraded to the NFA) on varied input.
const DFA_CACHE: usize = 64 << 20;

/// One detector to compile.
#[derive(Debug, Clone)]
pub struct DetectorSpec {
    /// Name in masks and records.
    pub name: String,
    /// Candidate pattern (regex crate syntax, matched on bytes).
    pub pattern: String,
    /// Check a candidate must pass.
    pub validator: Validator,
    /// How hits are masked.
    pub strategy: Strategy,
}

impl DetectorSpec {
    /// A built-in detector, with an optional strategy override.
    pub fn builtin(d: &BuiltinDetector, strategy: Option<Strategy>) -> Self {
        Self {
            name: d.name.to_string(),
            pattern: d.pattern.to_string(),
            validator: d.validator,
            strategy: strategy.unwrap_or(d.strategy),
        }
    }
}

struct Detector {
    name: String,
    regex: Regex,
    validator: Validator,
    strategy: Strategy,
    groups: bool,
}

/// A masking configuration compiled for use: detectors, column rules and the
/// hash key. Shared by every session of a connection.
pub struct MaskingEngine {
    detectors: Vec<Detector>,
    set: Option<RegexSet>,
    rules: Vec<ColumnRule>,
    key: HashKey,
    ip: Option<usize>,
}

impl std::fmt::Debug for MaskingEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskingEngine")
            .field("detectors", &self.detector_names().collect::<Vec<_>>())
            .field("rules", &self.rules)
            .finish()
    }
}

/// Where a text value sits, which decides how a replacement is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Plain text: replacements go in place.
    Plain,
    /// JSON text: a hit outside a JSON string (a bare number) is replaced by
    /// a quoted string, so the document stays valid.
    Json,
}

/// What masking did to a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masked {
    /// Nothing sensitive: the value goes out unchanged.
    Clean,
    /// The masked value was written to the output buffer.
    Rewritten,
    /// The value must be sent as NULL.
    Null,
}

/// Counts of masked values by detector and by rule (never the values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskTally {
    detectors: Vec<u64>,
    rules: Vec<u64>,
}

impl MaskTally {
    /// Whether anything was masked.
    pub fn is_empty(&self) -> bool {
        self.detectors.iter().chain(&self.rules).all(|&n| n == 0)
    }

    /// Total values (or parts of values) masked.
    pub fn total(&self) -> u64 {
        self.detectors.iter().chain(&self.rules).sum()
    }

    /// Clears the counts, keeping the allocation.
    pub fn clear(&mut self) {
        self.detectors.iter_mut().for_each(|n| *n = 0);
        self.rules.iter_mut().for_each(|n| *n = 0);
    }

    /// Adds another tally's counts.
    pub fn add(&mut self, other: &MaskTally) {
        grow_add(&mut self.detectors, &other.detectors);
        grow_add(&mut self.rules, &other.rules);
    }

    /// Counts one value masked by detector `i` outside the text scanners
    /// (for example, a whole `inet` value).
    pub fn bump_detector(&mut self, i: usize) {
        bump(&mut self.detectors, i);
    }

    /// Counts one value masked by column rule `i`.
    pub fn bump_rule(&mut self, i: usize) {
        bump(&mut self.rules, i);
    }

    /// `(name, count)` pairs of the detectors and of the rules that fired.
    pub fn named(&self, engine: &MaskingEngine) -> (NamedCounts, NamedCounts) {
        let d = self
            .detectors
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (engine.detectors[i].name.clone(), n))
            .collect();
        let r = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (engine.rules[i].label.clone(), n))
            .collect();
        (d, r)
    }
}

fn bump(v: &mut Vec<u64>, i: usize) {
    if v.len() <= i {
        v.resize(i + 1, 0);
    }
    v[i] += 1;
}

fn grow_add(v: &mut Vec<u64>, o: &[u64]) {
    if v.len() < o.len() {
        v.resize(o.len(), 0);
    }
    for (a, b) in v.iter_mut().zip(o) {
        *a += b;
    }
}

/// `(name, count)` pairs.
pub type NamedCounts = Vec<(String, u64)>;

/// A hit: a span of the value, and the detector that found it.
#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    detector: usize,
}

/// Reusable buffers for one stream of values (one per session direction).
#[derive(Debug, Default)]
pub struct Scratch {
    hits: Vec<Hit>,
    which: Vec<bool>,
}

impl MaskingEngine {
    /// Compiles detectors and rules. A pattern that does not compile is an
    /// error naming the detector.
    pub fn new(
        detectors: Vec<DetectorSpec>,
        rules: Vec<ColumnRule>,
        key: HashKey,
    ) -> Result<Self, MaskError> {
        let mut compiled = Vec::with_capacity(detectors.len());
        for d in &detectors {
            let regex = RegexBuilder::new(&d.pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| MaskError::Pattern {
                    detector: d.name.clone(),
                    reason: e.to_string(),
                })?;
            compiled.push(Detector {
                name: d.name.clone(),
                groups: regex.captures_len() > 1,
                regex,
                validator: d.validator,
                strategy: d.strategy,
            });
        }
        let set = if detectors.is_empty() {
            None
        } else {
            Some(
                RegexSetBuilder::new(detectors.iter().map(|d| d.pattern.as_str()))
                    .size_limit(REGEX_SIZE_LIMIT * 4)
                    .dfa_size_limit(DFA_CACHE)
                    .build()
                    .map_err(|e| MaskError::Pattern {
                        detector: "(all detectors together)".into(),
                        reason: e.to_string(),
                    })?,
            )
        };
        let find = |n: &str| compiled.iter().position(|d| d.name == n);
        let ip = find("ipv4").or_else(|| find("ipv6"));
        Ok(Self {
            ip,
            detectors: compiled,
            set,
            rules,
            key,
        })
    }

    /// The secret detectors alone (private keys, tokens, API keys,
    /// passwords), all redacted: what recordings of connections without
    /// masking still get.
    pub fn secrets_only() -> Self {
        let detectors = crate::BUILTIN
            .iter()
            .filter(|d| d.secret)
            .map(|d| DetectorSpec::builtin(d, Some(Strategy::Redact)))
            .collect();
        // Redact needs no key; the built-in patterns always compile.
        Self::new(detectors, Vec::new(), HashKey::new([0; 32]))
            .unwrap_or_else(|e| unreachable!("built-in detectors compile: {e}"))
    }

    /// Names of the compiled detectors, in priority order.
    pub fn detector_names(&self) -> impl Iterator<Item = &str> {
        self.detectors.iter().map(|d| d.name.as_str())
    }

    /// The IP address detector (ipv4, else ipv6), if one is enabled: whole
    /// values of IP address types are counted under it.
    pub fn ip_detector(&self) -> Option<usize> {
        self.ip
    }

    /// The column rules.
    pub fn rules(&self) -> &[ColumnRule] {
        &self.rules
    }

    /// A new tally sized for this engine.
    pub fn tally(&self) -> MaskTally {
        MaskTally {
            detectors: vec![0; self.detectors.len()],
            rules: vec![0; self.rules.len()],
        }
    }

    /// The first rule covering a result column that comes from `source`
    /// (when known) and is labelled `label`.
    pub fn rule_for(&self, source: Option<&SourceColumn<'_>>, label: &str) -> Option<usize> {
        rules::find(&self.rules, source, label)
    }

    /// Writes the masked form of a whole value under column rule `rule`.
    pub fn mask_by_rule(
        &self,
        rule: usize,
        value: &[u8],
        out: &mut Vec<u8>,
        tally: &mut MaskTally,
    ) -> Masked {
        let r = &self.rules[rule];
        tally.bump_rule(rule);
        match strategy::apply(r.strategy, &r.label, value, &self.key, out) {
            Replacement::Written => Masked::Rewritten,
            Replacement::Null => Masked::Null,
        }
    }

    /// Whether any detector could match `value` (one pass, no allocation).
    #[inline]
    pub fn may_contain(&self, value: &[u8]) -> bool {
        self.set.as_ref().is_some_and(|s| s.is_match(value))
    }

    /// Finds sensitive parts of `value`; when there are some, writes the
    /// masked value to `out` (appending) and counts the hits in `tally`.
    pub fn mask_text(
        &self,
        value: &[u8],
        kind: TextKind,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) -> Masked {
        if !self.may_contain(value) {
            return Masked::Clean;
        }
        self.find(value, scratch);
        if scratch.hits.is_empty() {
            return Masked::Clean;
        }
        let mark = out.len();
        let mut at = 0;
        for h in &scratch.hits {
            out.extend_from_slice(&value[at..h.start]);
            let d = &self.detectors[h.detector];
            tally.bump_detector(h.detector);
            let quote = kind == TextKind::Json && !inside_json_string(value, h.start);
            if quote {
                out.push(b'"');
            }
            if let Replacement::Null =
                strategy::apply(d.strategy, &d.name, &value[h.start..h.end], &self.key, out)
            {
                out.truncate(mark);
                return Masked::Null;
            }
            if quote {
                out.push(b'"');
            }
            at = h.end;
        }
        out.extend_from_slice(&value[at..]);
        Masked::Rewritten
    }

    /// Masks hits inside `value`, writing the masked value to `out`; returns
    /// whether anything was masked. Where the `null` strategy applies, the
    /// hit gets its fixed mask instead: for text where NULL cannot stand
    /// (COPY rows, error messages, statement texts kept in records).
    pub fn mask_inline(
        &self,
        value: &[u8],
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) -> bool {
        let mark = out.len();
        match self.mask_text(value, TextKind::Plain, out, scratch, tally) {
            Masked::Clean => false,
            Masked::Rewritten => true,
            Masked::Null => {
                // `find` left the hits in `scratch`.
                out.truncate(mark);
                let mut at = 0;
                for h in &scratch.hits {
                    out.extend_from_slice(&value[at..h.start]);
                    strategy::redact(&self.detectors[h.detector].name, out);
                    at = h.end;
                }
                out.extend_from_slice(&value[at..]);
                true
            }
        }
    }

    /// [`mask_inline`](Self::mask_inline) for a string.
    pub fn mask_str<'a>(
        &self,
        s: &'a str,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) -> Cow<'a, str> {
        let mut out = Vec::new();
        if self.mask_inline(s.as_bytes(), &mut out, scratch, tally) {
            Cow::Owned(String::from_utf8_lossy(&out).into_owned())
        } else {
            Cow::Borrowed(s)
        }
    }

    /// Collects validated, non-overlapping hits into `scratch.hits`, sorted.
    fn find(&self, value: &[u8], scratch: &mut Scratch) {
        scratch.hits.clear();
        let Some(set) = &self.set else { return };
        scratch.which.clear();
        scratch.which.resize(self.detectors.len(), false);
        set.matches_read_at(&mut scratch.which, value, 0);
        for (i, d) in self.detectors.iter().enumerate() {
            if !scratch.which[i] {
                continue;
            }
            if d.groups {
                for c in d.regex.captures_iter(value) {
                    let Some(whole) = c.get(0) else { continue };
                    if !d.validator.check(value, whole.range()) {
                        continue;
                    }
                    let part = c.iter().skip(1).flatten().next().unwrap_or(whole);
                    if part.start() < part.end() && !is_mask(&value[part.start()..]) {
                        scratch.hits.push(Hit {
                            start: part.start(),
                            end: part.end(),
                            detector: i,
                        });
                    }
                }
            } else {
                for m in d.regex.find_iter(value) {
                    if d.validator.check(value, m.range()) {
                        scratch.hits.push(Hit {
                            start: m.start(),
                            end: m.end(),
                            detector: i,
                        });
                    }
                }
            }
        }
        if scratch.hits.len() > 1 {
            // Earliest first; at the same start, the higher-priority detector.
            scratch.hits.sort_unstable_by_key(|h| (h.start, h.detector));
            let mut end = 0;
            scratch.hits.retain(|h| {
                let keep = h.start >= end;
                if keep {
                    end = h.end;
                }
                keep
            });
        }
    }
}

/// Whether a value part is already one of the gateway's masks (masking
/// twice must change nothing).
fn is_mask(part: &[u8]) -> bool {
    part.starts_with(b"[masked:") || part.starts_with(b"[hash:")
}

/// Whether byte `at` of a JSON text lies inside a string literal.
fn inside_json_string(json: &[u8], at: usize) -> bool {
    let mut inside = false;
    let mut i = 0;
    while i < at {
        match json[i] {
            b'\\' if inside => i += 1,
            b'"' => inside = !inside,
            _ => {}
        }
        i += 1;
    }
    inside
}
