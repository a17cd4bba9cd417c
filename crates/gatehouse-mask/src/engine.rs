//! The compiled masking engine: finds sensitive values in bytes and writes
//! their masked form.

use crate::detectors::BuiltinDetector;
use crate::json::JsonWriter;
use crate::rules::{self, ColumnRule, SourceColumn};
use crate::strategy::{self, HashKey, Replacement, Strategy};
use crate::unescape::{self, Crossings, Escape, RawMap};
use crate::validate::{self, Validator};
use crate::{work, MaskError};
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
///
/// Whatever the kind, the detectors scan the value both as it is and with
/// its backslash escapes undone (`\u0034`, `\/`, `\ `: see `unescape`), so
/// an escape a client decodes hides nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Plain text: replacements go in place.
    Plain,
    /// JSON text: a hit inside a string is replaced by the mask escaped for
    /// a JSON string; a hit in a bare number becomes a quoted string, so the
    /// document stays valid.
    Json,
    /// Text in which a backslash escapes the byte after it, in an unknown
    /// syntax (a COPY text row whose delimiter is not known): a replacement
    /// for a hit that covers an escape is written with every byte but
    /// letters, digits and `*` escaped too, so it decodes to the mask and
    /// cannot end a field.
    Escaped,
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
    /// The detector counted last (see [`MaskTally::take_last_detector`]).
    last_detector: Option<usize>,
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
        self.last_detector = None;
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
        self.last_detector = Some(i);
    }

    /// The detector counted last since the previous call: which detector
    /// masked (part of) a value, when a caller wants to know.
    pub fn take_last_detector(&mut self) -> Option<usize> {
        self.last_detector.take()
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

/// A hit: a span of the text it was found in, and the detector that found
/// it. The mask is made from `start..own_end`, the detector's own match;
/// `end` may lie further when later hits overlapping it were joined to it.
#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    own_end: usize,
    detector: usize,
}

/// A part of the value to replace: `start..end` of the value; the mask is
/// made from `source` (of the value, or of its unescaped view).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    detector: usize,
    source: (usize, usize),
    in_view: bool,
}

/// Reusable buffers for one stream of values (one per session direction).
#[derive(Debug, Default)]
pub struct Scratch {
    hits: Vec<Hit>,
    view_hits: Vec<Hit>,
    spans: Vec<Span>,
    which: Vec<bool>,
    view: Vec<u8>,
    escapes: Vec<Escape>,
    mask: Vec<u8>,
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
            last_detector: None,
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
        work::charge(value.len());
        self.set.as_ref().is_some_and(|s| s.is_match(value))
    }

    /// Whether masking `value` may change it: a detector could match it, or
    /// it holds a backslash (its unescaped view may hold what it hides).
    #[inline]
    pub fn may_mask(&self, value: &[u8]) -> bool {
        self.may_contain(value) || memchr::memchr(b'\\', value).is_some()
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
        self.mask(value, kind, false, out, scratch, tally)
    }

    /// Masks hits inside `value`, writing the masked value to `out`; returns
    /// whether anything was masked. Where the `null` strategy applies, the
    /// hit gets its fixed mask instead: for text where NULL cannot stand
    /// (COPY rows, error messages, statement texts kept in records).
    pub fn mask_inline(
        &self,
        value: &[u8],
        kind: TextKind,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) -> bool {
        self.mask(value, kind, true, out, scratch, tally) != Masked::Clean
    }

    /// [`mask_inline`](Self::mask_inline) for a string.
    pub fn mask_str<'a>(
        &self,
        s: &'a str,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) -> Cow<'a, str> {
        let mut out = Vec::new();
        if self.mask_inline(s.as_bytes(), TextKind::Plain, &mut out, scratch, tally) {
            Cow::Owned(String::from_utf8_lossy(&out).into_owned())
        } else {
            Cow::Borrowed(s)
        }
    }

    /// Finds the hits of `value` and of its unescaped view, and writes the
    /// masked value. `inline`: the `null` strategy writes its fixed mask
    /// instead of making the whole value NULL.
    fn mask(
        &self,
        value: &[u8],
        kind: TextKind,
        inline: bool,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) -> Masked {
        let Scratch {
            hits,
            view_hits,
            spans,
            which,
            view,
            escapes,
            mask,
        } = scratch;
        hits.clear();
        view_hits.clear();
        if self.may_contain(value) {
            self.find(value, hits, which);
        }
        let unescaped = unescape::build(value, kind == TextKind::Json, view, escapes);
        if unescaped && self.may_contain(view) {
            self.find(view, view_hits, which);
        }
        if hits.is_empty() && view_hits.is_empty() {
            return Masked::Clean;
        }
        merge(hits, view_hits, escapes, spans);
        for s in spans.iter() {
            tally.bump_detector(s.detector);
        }
        let mark = out.len();
        let mut crossings = Crossings::new(escapes);
        let mut json = (kind == TextKind::Json).then(|| JsonWriter::new(value));
        let mut at = 0;
        for s in spans.iter() {
            let d = &self.detectors[s.detector];
            let text: &[u8] = if s.in_view { view } else { value };
            let part = &text[s.source.0..s.source.1];
            mask.clear();
            if inline && d.strategy == Strategy::Null {
                strategy::redact(&d.name, mask);
            } else if let Replacement::Null =
                strategy::apply(d.strategy, &d.name, part, &self.key, mask)
            {
                out.truncate(mark);
                return Masked::Null;
            }
            if let Some(w) = json.as_mut() {
                w.hit(s.start, s.end, mask, out);
                continue;
            }
            out.extend_from_slice(&value[at..s.start]);
            if kind == TextKind::Escaped && crossings.crosses(s.start, s.end) {
                for &b in mask.iter() {
                    if !(b.is_ascii_alphanumeric() || b == b'*' || b >= 0x80) {
                        out.push(b'\\');
                    }
                    out.push(b);
                }
            } else {
                out.extend_from_slice(mask);
            }
            at = s.end;
        }
        match json {
            Some(w) => w.finish(out),
            None => out.extend_from_slice(&value[at..]),
        }
        Masked::Rewritten
    }

    /// Collects validated hits of `text` into `hits`, in order and not
    /// overlapping: where hits overlap, the earliest (at the same start, the
    /// higher-priority detector) makes the mask and its span grows to cover
    /// the others, so no part of any hit is left in clear.
    fn find(&self, text: &[u8], hits: &mut Vec<Hit>, which: &mut Vec<bool>) {
        hits.clear();
        let Some(set) = &self.set else { return };
        which.clear();
        which.resize(self.detectors.len(), false);
        set.matches_read_at(which, text, 0);
        for (i, d) in self.detectors.iter().enumerate() {
            if !which[i] {
                continue;
            }
            // Each search below is one pass over the text.
            work::charge(text.len());
            if d.groups {
                for c in d.regex.captures_iter(text) {
                    let Some(whole) = c.get(0) else { continue };
                    if !d.validator.check(text, whole.range()) {
                        continue;
                    }
                    let part = c.iter().skip(1).flatten().next().unwrap_or(whole);
                    if part.start() < part.end() && !is_mask(&text[part.start()..]) {
                        hits.push(Hit {
                            start: part.start(),
                            end: part.end(),
                            own_end: part.end(),
                            detector: i,
                        });
                    }
                }
            } else if d.validator == Validator::Card {
                for m in d.regex.find_iter(text) {
                    validate::card_windows(text, m.range(), |r| {
                        hits.push(Hit {
                            start: r.start,
                            end: r.end,
                            own_end: r.end,
                            detector: i,
                        })
                    });
                }
            } else {
                for m in d.regex.find_iter(text) {
                    if d.validator.check(text, m.range()) {
                        hits.push(Hit {
                            start: m.start(),
                            end: m.end(),
                            own_end: m.end(),
                            detector: i,
                        });
                    }
                }
            }
        }
        if hits.len() > 1 {
            hits.sort_unstable_by_key(|h| (h.start, h.detector));
            let mut kept = 0;
            for k in 1..hits.len() {
                let h = hits[k];
                if h.start < hits[kept].end {
                    hits[kept].end = hits[kept].end.max(h.end);
                } else {
                    kept += 1;
                    hits[kept] = h;
                }
            }
            hits.truncate(kept + 1);
        }
    }
}

/// Joins the hits of a value and of its unescaped view (`view_hits`, mapped
/// back through `escapes`) into spans of the value to replace, in order and
/// not overlapping, as [`MaskingEngine::find`] joins hits. Spans hold
/// whole escapes.
fn merge(hits: &[Hit], view_hits: &[Hit], escapes: &[Escape], spans: &mut Vec<Span>) {
    spans.clear();
    let mut map = RawMap::new(escapes);
    let mut mapped = view_hits.iter().map(|h| Span {
        start: map.start(h.start),
        end: map.end(h.end),
        detector: h.detector,
        source: (h.start, h.own_end),
        in_view: true,
    });
    let mut whole = Crossings::new(escapes);
    let mut own = hits.iter().map(|h| {
        let (start, end) = whole.widen(h.start, h.end);
        Span {
            start,
            end,
            detector: h.detector,
            source: (h.start, h.own_end),
            in_view: false,
        }
    });
    let (mut a, mut b) = (own.next(), mapped.next());
    loop {
        let next = match (a, b) {
            (Some(x), Some(y)) if (x.start, x.detector) <= (y.start, y.detector) => {
                a = own.next();
                x
            }
            (_, Some(y)) => {
                b = mapped.next();
                y
            }
            (Some(x), None) => {
                a = own.next();
                x
            }
            (None, None) => break,
        };
        match spans.last_mut() {
            Some(last) if next.start < last.end => last.end = last.end.max(next.end),
            _ => spans.push(next),
        }
    }
}

/// Whether a value part is already one of the gateway's masks (masking
/// twice must change nothing).
fn is_mask(part: &[u8]) -> bool {
    part.starts_with(b"[masked:") || part.starts_with(b"[hash:")
}

#[cfg(test)]
mod tests;
