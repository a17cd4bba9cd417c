//! The pack's `README.md` (the period mapped to the Trust Services
//! Criteria) and `VERIFY.md` (how to check it with standard tools).

use super::tables::{Table, Tables};
use gatehouse_evidence::EventKind;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What the texts are written from.
pub struct Facts<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub origin: &'a str,
    pub key: &'a str,
    pub tree_size: u64,
    pub first: usize,
    pub last: usize,
    pub first_time: &'a str,
    pub last_time: &'a str,
    /// Whether an entry after the period is covered (so the end is proven).
    pub after: bool,
    /// Up to when nothing is missing: `to`, or the last signed entry's time.
    pub complete_until: &'a str,
    /// The period's entries: how many.
    pub events: usize,
    /// The period's entries by kind.
    pub kinds: &'a BTreeMap<&'static str, usize>,
    pub tables: &'a Tables,
    pub identities: &'a Table,
    /// Whether the configured policy files are the last loaded (None: no policy given).
    pub policy_match: Option<bool>,
    pub proofs: usize,
}

impl Facts<'_> {
    fn count(&self, kinds: &[EventKind]) -> usize {
        kinds
            .iter()
            .filter_map(|k| self.kinds.get(k.as_str()))
            .sum()
    }
}

fn link(t: &Table) -> String {
    format!("[{0}.csv]({0}.csv)", t.name)
}

/// `README.md`.
pub fn readme(f: &Facts<'_>) -> String {
    let t = f.tables;
    let mut o = String::new();
    let _ = writeln!(o, "# Gatehouse evidence pack: {} to {}\n", f.from, f.to);
    let _ = writeln!(
        o,
        "Log `{}`, signed with key `{}`.\n\nThis pack holds every event the gateway recorded \
         from {} up to {}: entries {} to {} ({} events, {} to {}), all inside \
         the signed checkpoint of {} entries in `checkpoint.txt`, with {} inclusion proofs in \
         `proofs/`.",
        f.origin,
        f.key,
        f.from,
        if f.after {
            format!("(not including) {}", f.to)
        } else {
            format!("{} (the last signed entry)", f.complete_until)
        },
        f.first,
        f.last,
        f.events,
        f.first_time,
        f.last_time,
        f.tree_size,
        f.proofs
    );
    if !f.after {
        let _ = writeln!(
            o,
            "\n**Complete up to {0}, not up to {1}.** The signed checkpoint covers no entry \
             after the period, so what is proven is that nothing from {2} up to {0} (the last \
             entry it covers) is missing; events after {0} were not yet signed when the pack \
             was made and belong to a later pack.",
            f.complete_until, f.to, f.from
        );
    }
    o.push_str(
        "\n**Check it** without Gatehouse: run `python3 verify_pack.py` here (Python 3 and \
         OpenSSL), or follow [VERIFY.md](VERIFY.md). Compare `public-key.txt` with the key the \
         gateway's operator published (`gatehouse audit public-key`): that key is what the \
         whole pack's trust rests on.\n\n",
    );
    o.push_str("## Trust Services Criteria\n\n");
    o.push_str("| Criterion | What this pack shows | Count | Files |\n|---|---|---|---|\n");
    let rows = [
        (
            "CC6.1 Logical access",
            "Logins accepted and refused (with stage and reason); sessions with identity, connection and source address; what each identity may reach",
            format!(
                "{} logins, {} refused, {} sessions",
                f.count(&[EventKind::AuthSuccess]),
                f.count(&[EventKind::AuthFailure]),
                t.sessions.len()
            ),
            format!(
                "{}, {}, {}",
                link(&t.sessions),
                link(&t.denials),
                link(f.identities)
            ),
        ),
        (
            "CC6.2 / CC6.3 Access granted and removed",
            "Credentials created and revoked; access reviews signed off",
            format!(
                "{} created, {} revoked, {} reviews",
                f.count(&[EventKind::TokenCreated]),
                f.count(&[EventKind::TokenRevoked]),
                t.access_reviews.len()
            ),
            format!(
                "{}, {}, {}",
                link(&t.tokens),
                link(&t.access_reviews),
                link(f.identities)
            ),
        ),
        (
            "CC6.6 / CC6.7 Boundary and data protection",
            "Statements refused or held by policy (and would-be refusals in audit mode); results with sensitive values masked",
            format!(
                "{} refusals, {} masked results",
                t.denials.len(),
                t.masking.len()
            ),
            format!("{}, {}", link(&t.denials), link(&t.masking)),
        ),
        (
            "CC7.2 / CC7.3 Monitoring",
            "Every security event, hash-linked and signed; gateway starts and stops",
            format!(
                "{} events, {} starts, {} stops",
                f.events,
                f.count(&[EventKind::GatewayStarted]),
                f.count(&[EventKind::GatewayStopped])
            ),
            "[events.jsonl](events.jsonl), [checkpoint.txt](checkpoint.txt)".to_string(),
        ),
        (
            "CC8.1 Change management",
            "Policy and configuration loads with each file's SHA-256; statements approved by a human",
            format!(
                "{} policy loads, {} configuration loads, {} approval events",
                f.count(&[EventKind::PolicyLoaded]),
                f.count(&[EventKind::ConfigLoaded]),
                t.approvals.len()
            ),
            format!("{}, {}", link(&t.policy_changes), link(&t.approvals)),
        ),
    ];
    for (c, what, n, files) in rows {
        let _ = writeln!(o, "| {c} | {what} | {n} | {files} |");
    }
    o.push_str("\n## Events by kind\n\n| Kind | Count |\n|---|---|\n");
    for (k, n) in f.kinds {
        let _ = writeln!(o, "| {k} | {n} |");
    }
    o.push_str("\n## Files\n\n");
    let files = [
        ("events.jsonl", "every entry of the period, one per line, exactly as hashed into the log (canonical JSON)"),
        ("sessions.csv", "one row per session: who, where from, to which connection, when it ended and why"),
        ("denials.csv", "refused logins and statements refused, held for approval or (audit mode) that would have been refused, with the policies that decided"),
        ("approvals.csv", "approval requests and their outcomes, with the approver"),
        ("masking.csv", "results in which values were masked: how many, by which rules and detectors"),
        ("policy-changes.csv", "policy files loaded or reloaded and configuration loaded, with SHA-256"),
        ("tokens.csv", "service tokens created and revoked"),
        ("access-reviews.csv", "access reviews signed off: reviewer, digest of what they reviewed, notes"),
        ("identities.csv", "identities holding a usable service token during the period, and OIDC workload identities that logged in during it, and what the policy lets each do, per connection, table and statement kind"),
        ("checkpoint.txt", "the signed checkpoint (C2SP signed note); checkpoint.body and checkpoint.sig are its signed text and signature, for openssl"),
        ("public-key.txt / public-key.pem", "the log's Ed25519 public key, as a note verifier key and as PEM"),
        ("proofs/SEQ.json", "inclusion proofs: every entry a table names, the period's first and last, and the entries just outside it"),
        ("pack.json", "the period and the entry numbers bounding it, for verify_pack.py"),
    ];
    for (name, what) in files {
        let _ = writeln!(o, "- `{name}`: {what}.");
    }
    o.push_str(
        "\nEvery table row starts with `seq`, the entry it was read from; \
         `proofs/SEQ.json` proves that entry is in the signed log. Each table is also given as JSON.\n",
    );
    o.push_str("\n## Identities\n\n");
    match f.policy_match {
        None => o.push_str(
            "No policy was available when the pack was made, so `identities.csv` lists the \
             identities and their tokens without what they may reach.\n",
        ),
        Some(matches) => {
            let _ = writeln!(
                o,
                "`identities.csv` lists each identity (subject and groups) that held a usable \
                 service token during the period, from the token events, and each OIDC workload \
                 identity that logged in during it, from the login events (its `tokens` column \
                 reads `oidc:<issuer>` with the claims it presented, which policies may use), \
                 and asks the gateway's policy \
                 files what it may do as of {}, for a caller at 127.0.0.1; policies that depend \
                 on the address or the time may answer otherwise for other callers. {}",
                f.to,
                if matches {
                    "The policy files used are the ones the log last records as loaded (same SHA-256)."
                } else {
                    "**The policy files used differ from the ones the log last records as loaded** \
                     (see policy-changes.csv): the listing shows the files as they are now."
                }
            );
        }
    }
    o
}

/// `VERIFY.md`.
pub fn verify(f: &Facts<'_>) -> String {
    format!(
        r#"# How to verify this pack

Everything here can be checked with Python 3 and OpenSSL, without Gatehouse and
without trusting whoever handed you the pack. The one thing to get from somewhere
else is the log's public key: compare `public-key.txt` with the key the gateway's
operator published (`gatehouse audit public-key` prints it):

    {key}

## All at once

    python3 verify_pack.py

It prints each check and ends with `OK: the pack is complete and unaltered for its
period` (or, when the signed log ended before the period did, `OK: the pack is
unaltered and complete up to <time>`), or stops at the first failure with
`FAILED:` and what is wrong.

## Step by step

1. **The checkpoint is signed by the log's key.**

       openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin \
           -in checkpoint.body -sigfile checkpoint.sig

   prints `Signature Verified Successfully`. `checkpoint.body` is the text of
   `checkpoint.txt` above its blank line: the origin, the tree size ({size}) and
   the root hash (base64).

2. **An entry is in the signed log.** With Gatehouse:

       gatehouse audit verify-proof proofs/SEQ.json --key public-key.txt

   By hand: the leaf hash is SHA-256 of a zero byte followed by the entry's line:

       {{ printf '\000'; sed -n 'Np' events.jsonl | tr -d '\n'; }} | sha256sum

   (N = SEQ - {first} + 1) equals `leaf_hash` in `proofs/SEQ.json`, and its
   `proof` hashes lead to the root in `checkpoint.body` (RFC 9162, section
   2.1.3.2; `verify_pack.py` does this in 20 lines).

3. **Nothing in the period is missing.** `events.jsonl` holds entries {first} to
   {last} with consecutive `seq`; each entry's `prev` is the leaf hash of the line
   before it, so the chain ties every line to the proven last entry (and to
   the proven entry after the period, when there is one). The entries just
   before and after (`proofs/`, named in `pack.json`) carry times outside the
   period, so nothing at its edges was left out. When there is no entry after
   the period, the last entry must be the checkpoint's last ({last} = tree size
   {size} - 1): the pack is then complete up to that entry's time
   ({complete_until}), and no further.

4. **Each table row is an entry.** Every CSV row starts with `seq`; that line
   of `events.jsonl` holds the event it was read from, and `proofs/SEQ.json`
   proves it.

## What a failure means

- The signature fails: the checkpoint was altered, or this is not the key of
  this log.
- A proof fails: that entry (or the proof) was altered after signing.
- A gap or a broken `prev` link: entries were removed, inserted or reordered.
- The pack is fine but the public key differs from the operator's: the pack
  was produced for another log. Ask the operator.
"#,
        key = f.key,
        size = f.tree_size,
        first = f.first,
        last = f.last,
        complete_until = f.complete_until,
    )
}
