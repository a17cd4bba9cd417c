//! Signed checkpoints: a tree head (origin, size, root hash) in the C2SP
//! `tlog-checkpoint` format, signed as a C2SP `signed-note` with Ed25519.
//! Keys use the note key encodings (`<name>+<id>+<key>` verifier keys,
//! `PRIVATE+KEY+…` signer keys), so standard note tooling reads them.

use crate::merkle::Hash;
use crate::EvidenceError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, Verifier};
use sha2::{Digest, Sha256};

/// The signature algorithm byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;
/// The line that starts a signature: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// A tree head: the log `origin`, its `size` and `root` hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name (a schema-less URL-like string, unique per log).
    pub origin: String,
    /// Entries covered.
    pub size: u64,
    /// The tree's root over those entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: three lines, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    fn parse(text: &str) -> Result<Self, EvidenceError> {
        let bad = |why: &str| EvidenceError::Checkpoint(why.to_string());
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines
            .next()
            .and_then(|s| (!s.starts_with('+') && !s.starts_with('0') || s == "0").then_some(s))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("the size line is not a decimal number"))?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| <Hash>::try_from(r).ok())
            .ok_or_else(|| bad("the root hash line is not 32 bytes in base64"))?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A node's checkpoint signing key.
pub struct SigningKey {
    name: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .finish()
    }
}

impl SigningKey {
    /// A new random key named `name` (the log origin).
    pub fn generate(name: &str) -> Result<Self, EvidenceError> {
        if !valid_name(name) {
            return Err(EvidenceError::Key(format!(
                "{name:?} is not a key name: it must be non-empty, without spaces or '+'"
            )));
        }
        Ok(Self {
            name: name.to_string(),
            key: ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
        })
    }

    /// Reads a signer key in the note encoding
    /// (`PRIVATE+KEY+<name>+<id hex>+<base64(0x01 || seed)>`).
    pub fn parse(text: &str) -> Result<Self, EvidenceError> {
        let bad = || EvidenceError::Key("not a PRIVATE+KEY+name+id+key Ed25519 signer key".into());
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or_else(bad)?;
        // Names hold no '+'; the base64 key may.
        let mut parts = rest.splitn(3, '+');
        let (name, id, key) = (parts.next(), parts.next(), parts.next());
        let (Some(key), Some(id), Some(name)) = (key, id, name) else {
            return Err(bad());
        };
        let raw = B64.decode(key).map_err(|_| bad())?;
        // An empty key decodes to no bytes: split, never index.
        let Some((&ALG_ED25519, rest)) = raw.split_first() else {
            return Err(bad());
        };
        let Ok(seed) = <[u8; 32]>::try_from(rest) else {
            return Err(bad());
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        if !valid_name(name) || hex::encode(key_id(name, key.verifying_key().as_bytes())) != id {
            return Err(EvidenceError::Key(
                "the signer key's id does not match its name and key".into(),
            ));
        }
        Ok(Self {
            name: name.to_string(),
            key,
        })
    }

    /// The signer key in the note encoding (secret: store it 0600).
    pub fn encode(&self) -> String {
        let public = self.key.verifying_key().to_bytes();
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(key_id(&self.name, &public)),
            B64.encode(raw)
        )
    }

    /// The key's name (the log origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its public half.
    pub fn verifier(&self) -> VerifierKey {
        let key = self.key.verifying_key();
        VerifierKey {
            name: self.name.clone(),
            id: key_id(&self.name, key.as_bytes()),
            key,
        }
    }

    /// Signs `checkpoint` into a signed note.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        let sig = self.key.sign(body.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&key_id(&self.name, self.key.verifying_key().as_bytes()));
        blob.extend_from_slice(&sig.to_bytes());
        format!("{body}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }
}

/// A verifier key: what an auditor needs to check checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: [u8; 4],
    key: ed25519_dalek::VerifyingKey,
}

impl VerifierKey {
    /// Reads `<name>+<id hex>+<base64(0x01 || public key)>`.
    pub fn parse(text: &str) -> Result<Self, EvidenceError> {
        let bad = || EvidenceError::Key("not a name+id+key Ed25519 verifier key".into());
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let raw = B64.decode(key).map_err(|_| bad())?;
        // An empty key decodes to no bytes: split, never index.
        let Some((&ALG_ED25519, rest)) = raw.split_first() else {
            return Err(bad());
        };
        let Ok(public) = <[u8; 32]>::try_from(rest) else {
            return Err(bad());
        };
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public).map_err(|_| bad())?;
        let want = key_id(name, &public);
        if !valid_name(name) || hex::encode(want) != id {
            return Err(EvidenceError::Key(
                "the verifier key's id does not match its name and key".into(),
            ));
        }
        Ok(Self {
            name: name.to_string(),
            id: want,
            key,
        })
    }

    /// The key's name (the log origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key as a PEM SubjectPublicKeyInfo, for tools such as
    /// `openssl pkeyutl -verify`.
    pub fn pem(&self) -> String {
        // DER of SEQUENCE { SEQUENCE { OID 1.3.101.112 (Ed25519) }, BIT STRING key }.
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(self.key.as_bytes());
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            B64.encode(der)
        )
    }

    /// A note's signed text and this key's signature over it, checked: what
    /// a verifier needs who checks the signature with other tools.
    pub fn detached(&self, note: &str) -> Result<(String, [u8; 64]), EvidenceError> {
        let (body, sigs) = self.our_signatures(note)?;
        let sig = sigs.first().ok_or_else(|| {
            EvidenceError::Checkpoint(format!("no signature by key {}", self.name))
        })?;
        self.key
            .verify(body.as_bytes(), sig)
            .map_err(|_| EvidenceError::Signature(self.name.clone()))?;
        Ok((body.to_string(), sig.to_bytes()))
    }

    /// Splits a note into its text and the signatures by this key.
    fn our_signatures<'n>(
        &self,
        note: &'n str,
    ) -> Result<(&'n str, Vec<Signature>), EvidenceError> {
        let bad = |why: &str| EvidenceError::Checkpoint(why.to_string());
        let split = note
            .find("\n\n")
            .ok_or_else(|| bad("no blank line between the text and its signatures"))?;
        let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
        let mut ours = Vec::new();
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
                return Err(bad("a signature line does not start with an em dash"));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(bad("a signature line has no signature"));
            };
            let Ok(blob) = B64.decode(blob) else {
                return Err(bad("a signature is not base64"));
            };
            if name != self.name || blob.len() != 68 || blob[..4] != self.id {
                // Another key's signature (a witness cosignature, say).
                continue;
            }
            ours.push(Signature::from_slice(&blob[4..]).map_err(|_| bad("malformed signature"))?);
        }
        Ok((body, ours))
    }

    /// Checks a signed note's signature by this key and returns its checkpoint.
    pub fn open(&self, note: &str) -> Result<Checkpoint, EvidenceError> {
        let bad = |why: &str| EvidenceError::Checkpoint(why.to_string());
        let cp = self.witnessed(note)?;
        if cp.origin != self.name {
            return Err(bad(&format!(
                "signed by {} but for the log {}",
                self.name, cp.origin
            )));
        }
        Ok(cp)
    }
}

impl VerifierKey {
    /// Checks a signed note's signature by this key, whatever log the
    /// checkpoint is of: how a witness's cosignature of another node's
    /// checkpoint is checked (the witness signs the same text with its own
    /// key).
    pub fn witnessed(&self, note: &str) -> Result<Checkpoint, EvidenceError> {
        let (body, sigs) = self.our_signatures(note)?;
        if sigs.is_empty() {
            return Err(EvidenceError::Checkpoint(format!(
                "no signature by key {}",
                self.name
            )));
        }
        for sig in &sigs {
            self.key
                .verify(body.as_bytes(), sig)
                .map_err(|_| EvidenceError::Signature(self.name.clone()))?;
        }
        Checkpoint::parse(body)
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.id),
            B64.encode(raw)
        )
    }
}

/// Where the whole notes of a witness file's `text` end: after the last
/// complete signature line (and the blank line after it). Bytes after that
/// (other than blank lines) are a torn write: a note cut short by a crash
/// while it was appended.
pub fn whole_notes_end(text: &str) -> usize {
    let mut end = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        at += line.len();
        if line.starts_with(SIG_PREFIX) && line.ends_with('\n') {
            end = at;
        }
    }
    // The blank line that separates notes belongs to the note before it.
    let rest = &text[end..];
    if rest.trim().is_empty() {
        return text.len();
    }
    end + rest.len() - rest.trim_start_matches('\n').len()
}

/// Splits a file of signed notes written one after another (a witness file,
/// with or without blank lines between notes) into the notes.
pub fn split_notes(text: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let mut current = String::new();
    let mut in_signatures = false;
    for line in text.split_inclusive('\n') {
        let is_sig = line.starts_with(SIG_PREFIX);
        if in_signatures && !is_sig {
            notes.push(std::mem::take(&mut current));
            in_signatures = false;
        }
        if current.is_empty() && line.trim().is_empty() {
            continue;
        }
        in_signatures |= is_sig;
        current.push_str(line);
    }
    if !current.trim().is_empty() {
        notes.push(current);
    }
    notes
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_with_nothing_after_their_id_are_refused_not_a_panic() {
        // Found by the signed_note fuzz target.
        assert!(super::VerifierKey::parse("gatehouse.example/fuzz+1d1eDe0ed+").is_err());
        assert!(super::SigningKey::parse("PRIVATE+KEY+a+00000000+").is_err());
        assert!(super::VerifierKey::parse("a+00000000+AQ==").is_err());
    }

    use super::*;

    #[test]
    fn notes_split_from_a_witness_file() {
        let key = SigningKey::generate("w.example/log").unwrap();
        let a = key.sign(&Checkpoint {
            origin: "w.example/log".into(),
            size: 1,
            root: [1; 32],
        });
        let b = key.sign(&Checkpoint {
            origin: "w.example/log".into(),
            size: 2,
            root: [2; 32],
        });
        for joined in [
            format!("{a}{b}"),
            format!("{a}\n{b}\n"),
            format!("\n{a}\n\n{b}"),
        ] {
            let notes = split_notes(&joined);
            assert_eq!(notes, vec![a.clone(), b.clone()], "{joined:?}");
            assert_eq!(key.verifier().open(&notes[1]).unwrap().size, 2);
        }
    }

    #[test]
    fn sign_open_and_tamper() {
        let k = SigningKey::generate("gatehouse.example/node-1").unwrap();
        let cp = Checkpoint {
            origin: "gatehouse.example/node-1".into(),
            size: 42,
            root: [7; 32],
        };
        let note = k.sign(&cp);
        assert!(
            note.starts_with("gatehouse.example/node-1\n42\nBwcH"),
            "{note}"
        );
        assert!(
            note.contains("\n\n\u{2014} gatehouse.example/node-1 "),
            "{note}"
        );
        let v = VerifierKey::parse(&k.verifier().to_string()).unwrap();
        assert_eq!(v.open(&note).unwrap(), cp);
        // Another size under the same signature.
        let forged = note.replacen("\n42\n", "\n41\n", 1);
        assert!(matches!(v.open(&forged), Err(EvidenceError::Signature(_))));
        // Another key.
        let other = SigningKey::generate("gatehouse.example/node-1").unwrap();
        assert!(other.verifier().open(&note).is_err());
        // The signer key round-trips.
        let again = SigningKey::parse(&k.encode()).unwrap();
        assert_eq!(again.verifier(), k.verifier());
        assert!(!format!("{k:?}").contains(&k.encode()[20..40]));
        assert!(SigningKey::generate("has space").is_err());
        assert!(VerifierKey::parse("name+00000000+AQ==").is_err());
    }

    #[test]
    fn a_witness_cosigns_another_logs_checkpoint() {
        let node = SigningKey::generate("gatehouse/gw-1").unwrap();
        let witness = SigningKey::generate("gatehouse/gw-2").unwrap();
        let cp = Checkpoint {
            origin: "gatehouse/gw-1".into(),
            size: 9,
            root: [3; 32],
        };
        let cosigned = witness.sign(&cp);
        // The witness's own key opens it as a witness, not as its own log.
        assert_eq!(witness.verifier().witnessed(&cosigned).unwrap(), cp);
        assert!(witness.verifier().open(&cosigned).is_err());
        // Nobody else's key does, and an edited size fails.
        assert!(node.verifier().witnessed(&cosigned).is_err());
        let forged = cosigned.replacen("\n9\n", "\n10\n", 1);
        assert!(matches!(
            witness.verifier().witnessed(&forged),
            Err(EvidenceError::Signature(_))
        ));
    }
}
