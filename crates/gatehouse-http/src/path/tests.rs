//! Path normalisation: unit and property tests.
use super::*;

fn ok(raw: &str) -> NormalPath {
    match NormalPath::parse(raw) {
        Ok(path) => path,
        Err(e) => panic!("{raw:?} was refused: {e}"),
    }
}

fn decoded(raw: &str) -> String {
    ok(raw).decoded().to_owned()
}

fn err(raw: &str) -> PathError {
    match NormalPath::parse(raw) {
        Ok(path) => panic!("{raw:?} was accepted as {:?}", path.decoded()),
        Err(e) => e,
    }
}

#[test]
fn the_root_is_a_single_slash() {
    let root = ok("/");
    assert_eq!(root.decoded(), "/");
    assert_eq!(root.forward(), "/");
    assert_eq!(ok("//"), root);
    assert_eq!(ok("/."), root);
    assert_eq!(ok("/a/.."), root);
    assert_eq!(ok("/a/../"), root);
}

#[test]
fn a_plain_path_passes_through_unchanged() {
    let path = ok("/v1/invoices/42");
    assert_eq!(path.decoded(), "/v1/invoices/42");
    assert_eq!(path.forward(), "/v1/invoices/42");
}

#[test]
fn empty_segments_are_collapsed() {
    assert_eq!(decoded("//admin"), "/admin");
    assert_eq!(decoded("/a//b///c"), "/a/b/c");
    assert_eq!(decoded("///a"), "/a");
}

#[test]
fn single_dot_segments_are_dropped() {
    assert_eq!(decoded("/./admin"), "/admin");
    assert_eq!(decoded("/a/./b/."), "/a/b/");
    assert_eq!(decoded("/%2e/admin"), "/admin");
    assert_eq!(decoded("/%2E/admin"), "/admin");
}

#[test]
fn double_dot_segments_remove_the_previous_segment() {
    assert_eq!(decoded("/v1/../admin"), "/admin");
    assert_eq!(decoded("/a/b/c/./../../g"), "/a/g");
    assert_eq!(decoded("/a//../b"), "/b");
    assert_eq!(decoded("/a/b/../../c"), "/c");
}

#[test]
fn percent_encoded_dot_segments_are_dot_segments() {
    assert_eq!(decoded("/v1/%2e%2E/admin"), "/admin");
    assert_eq!(decoded("/v1/.%2e/admin"), "/admin");
    assert_eq!(decoded("/v1/%2E./admin"), "/admin");
}

#[test]
fn dot_segments_cannot_climb_out_of_the_root() {
    for raw in [
        "/..",
        "/../",
        "/../admin",
        "/a/../../b",
        "//..",
        "/./..",
        "/%2e%2e/admin",
        "/a/%2E%2E/%2e%2e",
    ] {
        assert_eq!(err(raw), PathError::AboveRoot, "{raw:?}");
    }
}

#[test]
fn names_that_merely_contain_dots_are_ordinary_segments() {
    assert_eq!(decoded("/a/.../b"), "/a/.../b");
    assert_eq!(decoded("/a/..b/.c/d."), "/a/..b/.c/d.");
    assert_eq!(ok("/.well-known/x").forward(), "/.well-known/x");
}

#[test]
fn percent_encoded_letters_are_decoded_and_forwarded_plainly() {
    let path = ok("/%61dmin");
    assert_eq!(path.decoded(), "/admin");
    assert_eq!(path.forward(), "/admin");
    assert_eq!(ok("/%7e%41").forward(), "/~A");
}

#[test]
fn encoded_slashes_are_refused() {
    assert_eq!(err("/a%2Fb"), PathError::EncodedSlash);
    assert_eq!(err("/a%2fb"), PathError::EncodedSlash);
    assert_eq!(err("/%2F"), PathError::EncodedSlash);
}

#[test]
fn backslashes_are_refused_raw_or_encoded() {
    assert_eq!(err("/a\\b"), PathError::Backslash);
    assert_eq!(err("/..\\admin"), PathError::Backslash);
    assert_eq!(err("/a%5Cb"), PathError::EncodedBackslash);
    assert_eq!(err("/a%5cb"), PathError::EncodedBackslash);
}

#[test]
fn nul_and_control_characters_are_refused_raw_or_encoded() {
    assert_eq!(err("/a%00"), PathError::NulByte);
    assert_eq!(err("/a\0"), PathError::NulByte);
    assert_eq!(err("/a%0A"), PathError::ControlCharacter { byte: 0x0A });
    assert_eq!(err("/a\nb"), PathError::ControlCharacter { byte: 0x0A });
    assert_eq!(err("/a%0d"), PathError::ControlCharacter { byte: 0x0D });
    assert_eq!(err("/a%09"), PathError::ControlCharacter { byte: 0x09 });
    assert_eq!(err("/a\t"), PathError::ControlCharacter { byte: 0x09 });
    assert_eq!(err("/a%1F"), PathError::ControlCharacter { byte: 0x1F });
    assert_eq!(err("/a%7f"), PathError::ControlCharacter { byte: 0x7F });
    assert_eq!(err("/a\x7f"), PathError::ControlCharacter { byte: 0x7F });
}

#[test]
fn malformed_percent_escapes_are_refused_with_their_offset() {
    assert_eq!(err("/%G1"), PathError::InvalidPercentEncoding { offset: 1 });
    assert_eq!(
        err("/a/%4"),
        PathError::InvalidPercentEncoding { offset: 3 }
    );
    assert_eq!(err("/ab%"), PathError::InvalidPercentEncoding { offset: 3 });
    assert_eq!(
        err("/a/b%%41"),
        PathError::InvalidPercentEncoding { offset: 4 }
    );
    assert_eq!(
        err("/a/%4/b"),
        PathError::InvalidPercentEncoding { offset: 3 }
    );
    assert_eq!(
        err("//x/%1g"),
        PathError::InvalidPercentEncoding { offset: 4 }
    );
}

#[test]
fn decoded_bytes_must_be_valid_utf8() {
    assert_eq!(err("/%FF"), PathError::InvalidUtf8);
    assert_eq!(err("/%C3"), PathError::InvalidUtf8);
    assert_eq!(err("/%C3x"), PathError::InvalidUtf8);
    // Overlong encoding of '/', which lenient decoders turn into a slash.
    assert_eq!(err("/%C0%AF"), PathError::InvalidUtf8);
    // A lead byte and its continuation in different segments.
    assert_eq!(err("/%C3/%A9"), PathError::InvalidUtf8);
    let path = ok("/caf%c3%a9");
    assert_eq!(path.decoded(), "/café");
    assert_eq!(path.forward(), "/caf%C3%A9");
}

#[test]
fn raw_characters_outside_the_segment_set_are_encoded_for_forwarding() {
    let path = ok("/café/a b/\"q\"/<x>");
    assert_eq!(path.decoded(), "/café/a b/\"q\"/<x>");
    assert_eq!(path.forward(), "/caf%C3%A9/a%20b/%22q%22/%3Cx%3E");
}

#[test]
fn paths_must_start_with_a_slash() {
    for raw in ["", "admin", "http://host/p", "./admin", "%2Fadmin"] {
        assert_eq!(err(raw), PathError::NotOriginForm, "{raw:?}");
    }
}

#[test]
fn the_asterisk_form_is_refused() {
    assert_eq!(err("*"), PathError::AsteriskForm);
    // '*' is an ordinary character inside a segment.
    assert_eq!(ok("/*").forward(), "/*");
}

#[test]
fn paths_over_the_length_limit_are_refused() {
    let longest = format!("/{}", "a".repeat(MAX_PATH_LEN - 1));
    assert_eq!(ok(&longest).decoded(), longest);
    let too_long = format!("/{}", "a".repeat(MAX_PATH_LEN));
    assert_eq!(
        err(&too_long),
        PathError::TooLong {
            len: MAX_PATH_LEN + 1
        }
    );
    // The limit is on the raw path, before any collapsing.
    let many_slashes = "/".repeat(MAX_PATH_LEN + 1);
    assert_eq!(
        err(&many_slashes),
        PathError::TooLong {
            len: MAX_PATH_LEN + 1
        }
    );
}

#[test]
fn a_trailing_slash_is_preserved() {
    let path = ok("/v1/items/");
    assert_eq!(path.decoded(), "/v1/items/");
    assert_eq!(path.forward(), "/v1/items/");
    assert_ne!(path, ok("/v1/items"));
    assert_eq!(decoded("/v1/items//"), "/v1/items/");
    assert_eq!(decoded("/v1/items/."), "/v1/items/");
    assert_eq!(decoded("/v1/items/x/.."), "/v1/items/");
    assert_eq!(decoded("/v1/items/./x"), "/v1/items/x");
}

#[test]
fn semicolon_parameters_are_kept_as_they_are() {
    let path = ok("/a;b=c/d;e");
    assert_eq!(path.decoded(), "/a;b=c/d;e");
    assert_eq!(path.forward(), "/a;b=c/d;e");
    assert_eq!(decoded("/a%3Bb"), "/a;b");
    assert_eq!(decoded("/...;x"), "/...;x");
    assert_eq!(decoded("/..a;x"), "/..a;x");
}

#[test]
fn dot_segments_hidden_behind_parameters_are_refused() {
    for raw in [
        "/v1/..;/admin",
        "/v1/..;x=1/admin",
        "/.;/admin",
        "/%2e%2e;/admin",
        "/..%3B/admin",
        "/..%3b",
        "/;x/admin",
        "/v1/;/admin",
    ] {
        assert_eq!(err(raw), PathError::ParameterOnDotSegment, "{raw:?}");
    }
}

#[test]
fn query_and_fragment_delimiters_must_be_split_off() {
    assert_eq!(err("/a?b"), PathError::UnsplitQuery);
    assert_eq!(err("/a?"), PathError::UnsplitQuery);
    assert_eq!(err("/a#b"), PathError::RawFragment);
    // Encoded, they are ordinary characters, and stay encoded upstream.
    let path = ok("/a%3Fb/c%23d");
    assert_eq!(path.decoded(), "/a?b/c#d");
    assert_eq!(path.forward(), "/a%3Fb/c%23d");
}

#[test]
fn a_literal_percent_is_forwarded_encoded_so_it_is_decoded_only_once() {
    let path = ok("/100%25");
    assert_eq!(path.decoded(), "/100%");
    assert_eq!(path.forward(), "/100%25");
    // Double encoding is not a dot segment to the gateway, and the
    // upstream is sent the same single level of encoding.
    let path = ok("/v1/%252e%252e/admin");
    assert_eq!(path.decoded(), "/v1/%2e%2e/admin");
    assert_eq!(path.forward(), "/v1/%252e%252e/admin");
}

#[test]
fn unreserved_characters_and_sub_delims_are_forwarded_literally() {
    let segment = "AZaz09-._~!$&'()*+,;=:@";
    let path = ok(&format!("/{segment}"));
    assert_eq!(path.forward(), format!("/{segment}"));
    let path = ok("/%41%2D%5F%7E%21%24%26%27%28%29%2A%2B%2C%3D%3A%40");
    assert_eq!(path.forward(), "/A-_~!$&'()*+,=:@");
}

#[test]
fn everything_else_is_forwarded_percent_encoded_in_upper_case() {
    let path = ok("/%20%22%3c%3E%5b%5D%5e%60%7b%7c%7d%7e%ef%bf%bd");
    assert_eq!(path.decoded(), "/ \"<>[]^`{|}~\u{FFFD}");
    assert_eq!(
        path.forward(),
        "/%20%22%3C%3E%5B%5D%5E%60%7B%7C%7D~%EF%BF%BD"
    );
}

#[test]
fn split_first_takes_off_the_connection_name() {
    let path = ok("/billing/v1/invoices");
    let Some((name, rest)) = path.split_first() else {
        panic!("no first segment");
    };
    assert_eq!(name, "billing");
    assert_eq!(rest, ok("/v1/invoices"));

    let path = ok("/billing/v1/");
    let Some((name, rest)) = path.split_first() else {
        panic!("no first segment");
    };
    assert_eq!(name, "billing");
    assert_eq!(rest.decoded(), "/v1/");
    assert_eq!(rest.forward(), "/v1/");
}

#[test]
fn split_first_leaves_the_root_when_nothing_follows_the_name() {
    for raw in ["/billing", "/billing/", "//billing//"] {
        let path = ok(raw);
        let Some((name, rest)) = path.split_first() else {
            panic!("no first segment in {raw:?}");
        };
        assert_eq!(name, "billing");
        assert_eq!(rest, ok("/"), "{raw:?}");
    }
}

#[test]
fn split_first_of_the_root_is_none() {
    assert_eq!(ok("/").split_first(), None);
    assert_eq!(ok("/a/..").split_first(), None);
}

#[test]
fn split_first_sees_the_decoded_normalised_name() {
    let path = ok("/x/../bill%69ng/a%20b");
    let Some((name, rest)) = path.split_first() else {
        panic!("no first segment");
    };
    assert_eq!(name, "billing");
    assert_eq!(rest.decoded(), "/a b");
    assert_eq!(rest.forward(), "/a%20b");
}

#[test]
fn errors_say_what_was_wrong() {
    let cases = [
        (PathError::TooLong { len: 9000 }, "9000 bytes"),
        (PathError::AsteriskForm, "'*'"),
        (PathError::NotOriginForm, "start with '/'"),
        (PathError::UnsplitQuery, "query"),
        (PathError::RawFragment, "'#'"),
        (PathError::InvalidPercentEncoding { offset: 7 }, "byte 7"),
        (PathError::InvalidUtf8, "UTF-8"),
        (PathError::EncodedSlash, "encoded slash (%2F)"),
        (PathError::Backslash, "backslash"),
        (PathError::EncodedBackslash, "%5C"),
        (PathError::NulByte, "NUL"),
        (PathError::ControlCharacter { byte: 0x0A }, "0x0A"),
        (PathError::AboveRoot, "rather than clamping"),
        (PathError::ParameterOnDotSegment, "';'"),
    ];
    for (error, expected) in cases {
        let message = error.to_string();
        assert!(message.starts_with("the "), "{error:?} gives {message:?}");
        assert!(
            message.contains(expected),
            "{error:?} gives {message:?}, which does not mention {expected:?}"
        );
    }
}

/// A small xorshift64 generator, so the randomized test needs no crates
/// and is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        // The slight modulo bias does not matter for this test.
        (self.next() % n as u64) as usize
    }
}

/// Fragments that exercise every rule, often combined in ways no
/// hand-written case covers.
const PIECES: &[&str] = &[
    "/", "/", "/", "//", ".", "..", "./", "../", "%2e", "%2E", "%2e%2e", ".%2E", "%2f", "%2F",
    "%5c", "\\", "%", "%4", "%41", "%61", "%G1", "%zz", "%25", "%252e", "%00", "\0", "%0a", "\n",
    "\x7f", "%7F", ";", "..;", ";x=1", "%3b", "%3B", "?", "#", "%3F", "%23", "a", "b", "admin",
    "v1", "é", "%C3%A9", "%C3", "%A9", "%FF", "%C0%AF", " ", "%20", "~", "*", "+", "@", ":", "\"",
    "<", "[", "{", "|", "^", "`", "\u{FF0E}", "\u{2215}",
];

fn random_path(rng: &mut XorShift) -> String {
    let mut raw = String::new();
    // Mostly origin-form, sometimes not, to exercise the first checks.
    if rng.below(10) != 0 {
        raw.push('/');
    }
    for _ in 0..rng.below(12) {
        if rng.below(8) == 0 {
            // An arbitrary character, including ones no piece has.
            let c = char::from_u32(rng.below(0x300) as u32).unwrap_or('x');
            raw.push(c);
        } else {
            raw.push_str(PIECES[rng.below(PIECES.len())]);
        }
    }
    raw
}

#[test]
fn parse_never_panics_and_forwarding_reproduces_the_decision() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for _ in 0..50_000 {
        let raw = random_path(&mut rng);
        let Ok(path) = NormalPath::parse(&raw) else {
            continue;
        };
        accepted += 1;
        let decoded = path.decoded();
        assert!(decoded.starts_with('/'), "{raw:?} -> {decoded:?}");
        for bad in ["//", "/./", "/../"] {
            assert!(!decoded.contains(bad), "{raw:?} -> {decoded:?}");
        }
        assert!(!decoded.ends_with("/.."), "{raw:?} -> {decoded:?}");
        assert!(!decoded.ends_with("/."), "{raw:?} -> {decoded:?}");
        assert!(
            path.forward()
                .bytes()
                .all(|b| b == b'/' || b == b'%' || is_literal_in_segment(b)),
            "{raw:?} -> forward {:?}",
            path.forward()
        );

        // The upstream decodes the forwarded path once; it must arrive
        // at exactly what the policy saw, and forwarding is stable.
        let again = match NormalPath::parse(path.forward()) {
            Ok(again) => again,
            Err(e) => panic!("{raw:?} -> forward {:?} refused: {e}", path.forward()),
        };
        assert_eq!(again.decoded(), decoded, "{raw:?}");
        assert_eq!(again, path, "{raw:?}");

        // Splitting off the name loses nothing but the name.
        match path.split_first() {
            None => assert_eq!(decoded, "/", "{raw:?}"),
            Some((name, rest)) => {
                assert!(!name.is_empty() && !name.contains('/'), "{raw:?}");
                let rejoined = if rest.decoded() == "/" {
                    format!("/{name}")
                } else {
                    format!("/{name}{}", rest.decoded())
                };
                assert_eq!(
                    decoded.trim_end_matches('/'),
                    rejoined.trim_end_matches('/'),
                    "{raw:?}"
                );
                if rest.decoded() != "/" {
                    assert_eq!(decoded, rejoined, "{raw:?}");
                }
            }
        }
    }
    // Guard against a generator that only ever produces refusals.
    assert!(accepted > 5_000, "only {accepted} paths were accepted");
}
