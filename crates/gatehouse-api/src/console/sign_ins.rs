//! Who is signed in to the console: a random cookie value names a sign-in
//! kept in this process's memory, by the SHA-256 of the value (a memory dump
//! or a log line never holds a usable cookie). A sign-in keeps the
//! credential it was made with, and every request re-checks it, so a token
//! revoked or expired ends its console sign-ins at once.

use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Sign-ins kept at most; past it the oldest are forgotten first.
const MAX_SIGN_INS: usize = 10_000;
/// Sign-ins one subject keeps at most: past it that subject's oldest is
/// forgotten, so one credential's holder cannot push out everyone else's.
const MAX_PER_SUBJECT: usize = 20;

/// Text that never prints.
#[derive(Clone)]
pub(crate) struct SecretText(String);

impl SecretText {
    pub(crate) fn new(s: String) -> Self {
        Self(s)
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// One signed-in browser.
#[derive(Clone)]
pub(crate) struct SignIn {
    /// What it was made with (a token or the admin key), re-checked on
    /// every request.
    pub(crate) credential: SecretText,
    /// Who signed in, as shown (the admin key shows as `admin`).
    pub(crate) subject: String,
    /// The value every state-changing request must carry in
    /// `X-Gatehouse-CSRF`: a page of another site cannot read it.
    pub(crate) csrf: String,
    started: Instant,
    last_seen: Instant,
}

/// How long sign-ins last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignInLifetime {
    /// From sign-in, whatever happens.
    pub absolute: Duration,
    /// Without a request.
    pub idle: Duration,
}

impl Default for SignInLifetime {
    fn default() -> Self {
        Self {
            absolute: Duration::from_secs(8 * 3600),
            idle: Duration::from_secs(30 * 60),
        }
    }
}

/// The console's sign-ins.
pub(crate) struct SignIns {
    lifetime: SignInLifetime,
    by_hash: Mutex<HashMap<[u8; 32], SignIn>>,
}

/// 32 random bytes as hex.
fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn hash(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

impl SignIns {
    pub(crate) fn new(lifetime: SignInLifetime) -> Self {
        Self {
            lifetime,
            by_hash: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn lifetime(&self) -> SignInLifetime {
        self.lifetime
    }

    /// Starts a sign-in; answers the cookie value and the CSRF value.
    pub(crate) fn start(&self, credential: SecretText, subject: String) -> (String, String) {
        let cookie = random_hex();
        let csrf = random_hex();
        let now = Instant::now();
        let sign_in = SignIn {
            credential,
            subject,
            csrf: csrf.clone(),
            started: now,
            last_seen: now,
        };
        let mut map = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| self.alive(s, now));
        let own = map
            .values()
            .filter(|s| s.subject == sign_in.subject)
            .count();
        if own >= MAX_PER_SUBJECT {
            if let Some(oldest) = map
                .iter()
                .filter(|(_, s)| s.subject == sign_in.subject)
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        if map.len() >= MAX_SIGN_INS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(hash(&cookie), sign_in);
        (cookie, csrf)
    }

    fn alive(&self, s: &SignIn, now: Instant) -> bool {
        now.duration_since(s.started) < self.lifetime.absolute
            && now.duration_since(s.last_seen) < self.lifetime.idle
    }

    /// The live sign-in the cookie names; `activity` (a person's request,
    /// not a page's background poll) restarts its idle clock.
    pub(crate) fn find(&self, cookie: &str, activity: bool) -> Option<SignIn> {
        let key = hash(cookie);
        let now = Instant::now();
        let mut map = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        let alive = map.get(&key).map(|s| self.alive(s, now))?;
        if !alive {
            map.remove(&key);
            return None;
        }
        let s = map.get_mut(&key)?;
        if activity {
            s.last_seen = now;
        }
        Some(s.clone())
    }

    /// Ends the sign-in the cookie names, if any.
    pub(crate) fn end(&self, cookie: &str) {
        let mut map = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&hash(cookie));
    }
}

impl SignIn {
    /// Whether `presented` is this sign-in's CSRF value.
    pub(crate) fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_is_found_by_its_cookie_only_while_it_lives() {
        let s = SignIns::new(SignInLifetime {
            absolute: Duration::from_secs(60),
            idle: Duration::from_millis(50),
        });
        let (cookie, csrf) = s.start(SecretText::new("k".into()), "admin".into());
        let found = s.find(&cookie, true).expect("live");
        assert!(found.csrf_matches(&csrf));
        assert!(!found.csrf_matches("nope"));
        assert!(s.find("another", true).is_none());
        std::thread::sleep(Duration::from_millis(30));
        assert!(s.find(&cookie, false).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            s.find(&cookie, true).is_none(),
            "background polls do not keep a sign-in alive"
        );
        let (cookie, _) = s.start(SecretText::new("k".into()), "admin".into());
        s.end(&cookie);
        assert!(s.find(&cookie, true).is_none(), "signed out");
    }

    #[test]
    fn one_subject_cannot_push_out_the_others() {
        let s = SignIns::new(SignInLifetime::default());
        let (admin, _) = s.start(SecretText::new("k".into()), "admin".into());
        let mut mine = Vec::new();
        for _ in 0..(MAX_PER_SUBJECT + 5) {
            mine.push(s.start(SecretText::new("t".into()), "ci".into()).0);
        }
        assert!(s.find(&admin, true).is_some());
        assert!(s.find(&mine[0], true).is_none(), "its own oldest went");
        assert!(s.find(mine.last().unwrap(), true).is_some());
    }

    #[test]
    fn secrets_never_print() {
        let c = SecretText::new("gh_secret".into());
        assert_eq!(format!("{c:?}"), "<secret>");
    }
}
