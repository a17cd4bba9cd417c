//! Validators: checks a regular-expression candidate must pass before it is
//! masked, so ordinary numbers that merely look like a card or an IBAN are
//! left alone.

use std::ops::Range;

/// A check run on a candidate match; it sees the whole value for context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// Every candidate is a hit.
    None,
    /// Luhn checksum over the digits (any length).
    Luhn,
    /// Payment card: 13-19 digits, Luhn, and an issuer prefix and length
    /// that exist (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay,
    /// Maestro, Mir).
    Card,
    /// US SSN: area not 000, 666 or 9xx; group not 00; serial not 0000;
    /// one kind of separator.
    Ssn,
    /// IBAN: country length and ISO 7064 mod-97.
    Iban,
    /// Phone: 8-15 digits for international numbers, a valid NANP area and
    /// exchange, or 10-12 digits for trunk-0 national numbers.
    Phone,
    /// IPv4 not inside a longer dotted number (a version string `1.2.3.4.5`).
    Ipv4,
    /// A string the standard library parses as an IPv6 address.
    Ipv6,
}

impl Validator {
    /// Parses a validator name as written in the configuration.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Validator::None,
            "luhn" => Validator::Luhn,
            "card" => Validator::Card,
            "ssn" => Validator::Ssn,
            "iban" | "mod97" => Validator::Iban,
            "phone" => Validator::Phone,
            "ipv4" => Validator::Ipv4,
            "ipv6" => Validator::Ipv6,
            _ => return None,
        })
    }

    /// Whether the candidate `m` of `hay` is a real hit.
    pub fn check(self, hay: &[u8], m: Range<usize>) -> bool {
        let s = &hay[m.clone()];
        match self {
            Validator::None => true,
            Validator::Luhn => {
                let (d, n) = digits(s);
                n >= 2 && luhn(&d[..n])
            }
            Validator::Card => card(s),
            Validator::Ssn => ssn(s),
            Validator::Iban => iban(s),
            Validator::Phone => phone(s),
            Validator::Ipv4 => ipv4_context(hay, m),
            Validator::Ipv6 => ipv6(hay, m),
        }
    }
}

/// The digits of `s` (at most 40), and how many.
fn digits(s: &[u8]) -> ([u8; 40], usize) {
    let mut d = [0u8; 40];
    let mut n = 0;
    for &b in s {
        if b.is_ascii_digit() {
            if n == d.len() {
                return (d, n + 1);
            }
            d[n] = b - b'0';
            n += 1;
        }
    }
    (d, n)
}

fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &x) in d.iter().rev().enumerate() {
        let mut v = x as u32;
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn prefix(d: &[u8], n: usize) -> u32 {
    d[..n].iter().fold(0, |a, &x| a * 10 + x as u32)
}

fn card(s: &[u8]) -> bool {
    // Separators, if any, must all be the same character.
    let mut sep = None;
    for &b in s {
        if !b.is_ascii_digit() {
            match sep {
                None => sep = Some(b),
                Some(x) if x != b => return false,
                _ => {}
            }
        }
    }
    let (d, n) = digits(s);
    n <= d.len() && card_digits(&d[..n])
}

/// Whether digits are a card number: 13 to 19 of them, Luhn, and an issuer
/// prefix that exists with this length.
fn card_digits(d: &[u8]) -> bool {
    let n = d.len();
    if !(13..=19).contains(&n) || !luhn(d) {
        return false;
    }
    let (p1, p2, p3, p4) = (d[0] as u32, prefix(d, 2), prefix(d, 3), prefix(d, 4));
    let p6 = prefix(d, 6);
    match p1 {
        4 => matches!(n, 13 | 16 | 19),
        2 => (2221..=2720).contains(&p4) && n == 16 || (2200..=2204).contains(&p4) && n >= 16,
        5 => {
            (51..=55).contains(&p2) && n == 16 || matches!(p4, 5018 | 5020 | 5038 | 5893) && n >= 13
        }
        3 => {
            (p2 == 34 || p2 == 37) && n == 15
                || ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 || p4 == 3095)
                    && n >= 14
                || (3528..=3589).contains(&p4) && n >= 16
        }
        6 => {
            (p4 == 6011
                || p2 == 65
                || (644..=649).contains(&p3)
                || (622126..=622925).contains(&p6)
                || p2 == 62)
                && n >= 16
                || matches!(p4, 6304 | 6759 | 6761..=6763) && n >= 13
        }
        _ => false,
    }
}

/// Longest separator between two digit groups of a card.
const MAX_SEPARATOR: usize = 3;

/// Finds the cards in a run of digit groups (`hay[m]`), calling `hit` with
/// each one's range, in order.
///
/// A card is a window of whole groups (it starts and ends at a group
/// boundary, so no card is read out of the middle of a longer number) with
/// one separator throughout, at most three bytes long (`4111 1111 …`,
/// `4111.1111.…`, `4111 - 1111 - …`). The run's first group starts a
/// window of any grouping; a later group starts one only in the layouts
/// cards are written in (one group, groups of four, 4-6-5, 4-6-4; and 4-12,
/// a UUID's last groups), so a card
/// behind another group (`qty 2 4111 1111 1111 1111`, a card padded into a
/// UUID) is found, while a list of small numbers (`1 2 3 … 13`) is not read
/// as one. At each start the longest window that is a card wins, and the
/// search goes on after it. A window holds at most 19 digits, so the work
/// is linear in the run.
pub(crate) fn card_windows(hay: &[u8], m: Range<usize>, mut hit: impl FnMut(Range<usize>)) {
    let s = &hay[m.clone()];
    let mut first = true;
    let mut i = 0;
    while i < s.len() {
        if !s[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        match longest_card(s, i, first) {
            Some(end) => {
                hit(m.start + i..m.start + end);
                i = end;
            }
            None => {
                // The next group.
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
        first = false;
    }
}

/// The end of the longest card window starting at group `start` of `s`;
/// `any_layout`: whatever its groups.
fn longest_card(s: &[u8], start: usize, any_layout: bool) -> Option<usize> {
    let mut d = [0u8; 19];
    let mut n = 0;
    // Digits per group, in order.
    let mut groups = [0u8; 19];
    let mut g = 0;
    let mut sep: Option<&[u8]> = None;
    let mut best = None;
    let mut j = start;
    loop {
        let group_start = n;
        while j < s.len() && s[j].is_ascii_digit() {
            if n == d.len() {
                crate::work::charge(j - start);
                return best;
            }
            d[n] = s[j] - b'0';
            n += 1;
            j += 1;
        }
        groups[g] = (n - group_start) as u8;
        g += 1;
        if (any_layout || card_layout(&groups[..g])) && card_digits(&d[..n]) {
            best = Some(j);
        }
        let from = j;
        while j < s.len() && !s[j].is_ascii_digit() && j - from <= MAX_SEPARATOR {
            j += 1;
        }
        let this = &s[from..j];
        let same = sep.is_none_or(|x| x == this);
        if j >= s.len() || this.len() > MAX_SEPARATOR || !same {
            crate::work::charge(j - start);
            return best;
        }
        sep = Some(this);
    }
}

/// Whether digit groups are laid out as cards are written: one group,
/// groups of four (the last may be shorter), 4-6-5 and 4-6-4 (American
/// Express, Diners), or 4-12 (a card padded into a UUID's last two groups).
fn card_layout(groups: &[u8]) -> bool {
    match groups {
        [_] | [4, 6, 5] | [4, 6, 4] | [4, 12] => true,
        [init @ .., last] => init.iter().all(|&x| x == 4) && (1..=4).contains(last),
        [] => false,
    }
}

fn ssn(s: &[u8]) -> bool {
    if s.len() != 11 || s[3] != s[6] {
        return false;
    }
    let (d, n) = digits(s);
    if n != 9 {
        return false;
    }
    let area = prefix(&d, 3);
    let group = d[3] as u32 * 10 + d[4] as u32;
    let serial = prefix(&d[5..], 4);
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// IBAN lengths by country (the SWIFT registry's common members).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VG", 24),
    (b"XK", 20),
];

fn iban(s: &[u8]) -> bool {
    let mut buf = [0u8; 34];
    let mut n = 0;
    for &b in s {
        if b == b' ' {
            continue;
        }
        if n == buf.len() || !b.is_ascii_alphanumeric() {
            return false;
        }
        buf[n] = b.to_ascii_uppercase();
        n += 1;
    }
    let v = &buf[..n];
    if n < 15
        || !v[..2].iter().all(u8::is_ascii_uppercase)
        || !v[2..4].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    match IBAN_LENGTHS.iter().find(|(c, _)| c[..] == v[..2]) {
        Some((_, len)) if *len != n => return false,
        _ => {}
    }
    // Move the first four characters to the end; letters count as 10..35.
    let mut rem = 0u32;
    for &b in v[4..].iter().chain(&v[..4]) {
        let x = if b.is_ascii_digit() {
            (b - b'0') as u32
        } else {
            (b - b'A') as u32 + 10
        };
        rem = if x >= 10 {
            (rem * 100 + x) % 97
        } else {
            (rem * 10 + x) % 97
        };
    }
    rem == 1
}

fn phone(s: &[u8]) -> bool {
    let (d, n) = digits(s);
    if s.first() == Some(&b'+') {
        return (8..=15).contains(&n);
    }
    if d[0] == 0 {
        return (10..=12).contains(&n);
    }
    // NANP: NXX-NXX-XXXX with one kind of separator.
    if n != 10 || d[0] < 2 || d[3] < 2 {
        return false;
    }
    let seps: Vec<u8> = s
        .iter()
        .copied()
        .filter(|b| matches!(b, b'-' | b'.' | b' '))
        .collect();
    s.first() == Some(&b'(') || seps.windows(2).all(|w| w[0] == w[1])
}

fn ipv4_context(hay: &[u8], m: Range<usize>) -> bool {
    let before_dot = m.start >= 2 && hay[m.start - 1] == b'.' && hay[m.start - 2].is_ascii_digit();
    let after_dot = hay.len() > m.end + 1 && hay[m.end] == b'.' && hay[m.end + 1].is_ascii_digit();
    !before_dot && !after_dot
}

fn ipv6(hay: &[u8], m: Range<usize>) -> bool {
    let s = &hay[m.clone()];
    let hex_digits = s.iter().filter(|b| b.is_ascii_hexdigit()).count();
    let edge_ok =
        |b: Option<&u8>| b.is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b':' || *b == b'.'));
    if hex_digits < 2
        || !edge_ok(m.start.checked_sub(1).map(|i| &hay[i]))
        || !edge_ok(hay.get(m.end))
    {
        return false;
    }
    std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse::<std::net::Ipv6Addr>().ok())
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: Validator, s: &str) -> bool {
        v.check(s.as_bytes(), 0..s.len())
    }

    #[test]
    fn cards() {
        for good in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5500005555555559",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
            "2223003122003222",
            "36227206271667",
        ] {
            assert!(ok(Validator::Card, good), "{good}");
        }
        for bad in [
            "4111111111111112",    // Luhn fails
            "4111 1111-1111 1111", // mixed separators
            "1234567812345670",    // no issuer starts with 1
            "20240115123456784",   // a timestamp
            "411111111111",        // too short
        ] {
            assert!(!ok(Validator::Card, bad), "{bad}");
        }
    }

    fn windows(s: &str) -> Vec<&str> {
        let mut found = Vec::new();
        card_windows(s.as_bytes(), 0..s.len(), |r| found.push(&s[r]));
        found
    }

    #[test]
    fn cards_inside_runs_of_groups() {
        assert_eq!(windows("2 4111111111111111"), ["4111111111111111"]);
        assert_eq!(windows("4111111111111111 1"), ["4111111111111111"]);
        assert_eq!(windows("1 4111 1111 1111 1111 22"), ["4111 1111 1111 1111"]);
        assert_eq!(windows("4111.1111.1111.1111"), ["4111.1111.1111.1111"]);
        assert_eq!(
            windows("4111 - 1111 - 1111 - 1111"),
            ["4111 - 1111 - 1111 - 1111"]
        );
        assert_eq!(
            windows("4111 1111 1111 1111 5500 0055 5555 5559"),
            ["4111 1111 1111 1111", "5500 0055 5555 5559"]
        );
        // A card padded into a UUID's groups.
        assert_eq!(
            windows("00000000-0000-0000-4111-111111111111"),
            ["4111-111111111111"]
        );
        // Not at a group boundary, mixed separators, or too long a separator: no card.
        assert!(windows("94111111111111111").is_empty());
        assert!(windows("4111-1111 1111 1111").is_empty());
        assert!(windows("4111    1111    1111    1111").is_empty());
        assert!(windows("1 2 3 4 5 6 7 8 9 10 11 12 13").is_empty());
        // Any grouping from the first group, as before; cards' layouts after it.
        assert_eq!(
            windows("4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"),
            ["4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"]
        );
        assert!(windows("7 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1").is_empty());
        assert_eq!(windows("7 3782 822463 10005"), ["3782 822463 10005"]);
    }

    #[test]
    fn others() {
        assert!(ok(Validator::Ssn, "123-45-6789"));
        assert!(!ok(Validator::Ssn, "000-45-6789"));
        assert!(!ok(Validator::Ssn, "666-45-6789"));
        assert!(!ok(Validator::Ssn, "900-45-6789"));
        assert!(!ok(Validator::Ssn, "123-45 6789"));
        assert!(ok(Validator::Iban, "GB82 WEST 1234 5698 7654 32"));
        assert!(ok(Validator::Iban, "DE89370400440532013000"));
        assert!(!ok(Validator::Iban, "DE89370400440532013001"));
        assert!(!ok(Validator::Iban, "DE8937040044053201300"));
        assert!(ok(Validator::Phone, "+14155550123"));
        assert!(ok(Validator::Phone, "(415) 555-0123"));
        assert!(ok(Validator::Phone, "415-555-0123"));
        assert!(!ok(Validator::Phone, "415-555.0123"));
        assert!(!ok(Validator::Phone, "115-555-0123"));
        assert!(ok(Validator::Ipv6, "2001:db8::1"));
        assert!(!ok(Validator::Ipv6, "12:30:45"));
        let v = "version 1.2.3.4.5";
        assert!(!Validator::Ipv4.check(v.as_bytes(), 8..15));
        assert!(Validator::Luhn.check(b"79927398713", 0..11));
    }
}
