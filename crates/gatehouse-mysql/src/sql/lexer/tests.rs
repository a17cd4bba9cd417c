use super::*;
use proptest::prelude::*;
use sqlparser::ast::{Expr, SelectItem, SetExpr, Statement, Value};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

const MYSQL: Dialect = Dialect {
    version: 80040,
    mariadb: false,
    ansi_quotes: false,
    no_backslash_escapes: false,
};
const MYSQL_84: Dialect = Dialect {
    version: 80400,
    ..MYSQL
};
const MARIADB: Dialect = Dialect {
    version: 101109,
    mariadb: true,
    ..MYSQL
};
const ANSI: Dialect = Dialect {
    ansi_quotes: true,
    ..MYSQL
};
const NO_BACKSLASH: Dialect = Dialect {
    no_backslash_escapes: true,
    ..MYSQL
};

fn lex(sql: &str) -> String {
    lex_on(sql, &MYSQL)
}

fn lex_on(sql: &str, dialect: &Dialect) -> String {
    match canonical(sql, dialect) {
        Ok(out) => out,
        Err(e) => panic!("{sql:?} on {dialect:?}: {e}"),
    }
}

fn refused(sql: &str) -> LexError {
    refused_on(sql, &MYSQL)
}

fn refused_on(sql: &str, dialect: &Dialect) -> LexError {
    match canonical(sql, dialect) {
        Ok(out) => panic!("{sql:?} on {dialect:?} lexed to {out:?}"),
        Err(e) => e,
    }
}

/// The value sqlparser reads from `SELECT <literal>`.
fn parsed_literal(sql: &str) -> Value {
    let statements = Parser::parse_sql(&MySqlDialect {}, sql).unwrap();
    let Statement::Query(query) = &statements[0] else {
        panic!("{sql:?} is not a query");
    };
    let SetExpr::Select(select) = &*query.body else {
        panic!("{sql:?} is not a select");
    };
    match &select.projection[0] {
        SelectItem::UnnamedExpr(Expr::Value(v)) => v.value.clone(),
        other => panic!("{sql:?} selects {other:?}"),
    }
}

fn parsed_string(sql: &str) -> String {
    match parsed_literal(sql) {
        Value::SingleQuotedString(s) => s,
        other => panic!("{sql:?} selects {other:?}"),
    }
}

/// The canonical text with string literals and quoted identifiers taken out.
fn outside_quotes(canonical: &str) -> String {
    let mut outside = String::new();
    let mut chars = canonical.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '\'' => break,
                        _ => {}
                    }
                }
                outside.push(' ');
            }
            '`' => {
                while let Some(c) = chars.next() {
                    if c == '`' {
                        if chars.peek() == Some(&'`') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                outside.push(' ');
            }
            c => outside.push(c),
        }
    }
    outside
}

// Comments.

#[test]
fn a_hash_comment_hides_the_rest_of_its_line_only() {
    assert_eq!(lex("SELECT 1#comment\n, 2"), "SELECT 1 \n, 2");
    assert_eq!(lex("SELECT 1 # , (DELETE FROM t)"), "SELECT 1  ");
}

#[test]
fn two_dashes_before_whitespace_or_a_control_character_or_the_end_are_a_comment() {
    assert_eq!(lex("SELECT 1-- x"), "SELECT 1 ");
    assert_eq!(lex("SELECT 1--\tx\n, 2"), "SELECT 1 \n, 2");
    assert_eq!(lex("SELECT 1--\n, 2"), "SELECT 1 \n, 2");
    assert_eq!(lex("SELECT 1--\u{1}x"), "SELECT 1 ");
    assert_eq!(lex("SELECT 1--"), "SELECT 1 ");
}

#[test]
fn two_dashes_before_anything_else_are_two_minus_signs() {
    let out = lex("SELECT 1--1");
    assert_eq!(out, "SELECT 1- -1");
    let statements = Parser::parse_sql(&MySqlDialect {}, &out).unwrap();
    assert_eq!(statements[0].to_string(), "SELECT 1 - -1");
    assert_eq!(lex("SELECT 1---1"), "SELECT 1- - -1");
    assert_eq!(lex("SELECT x-->1"), "SELECT x- ->1");
}

#[test]
fn a_third_dash_can_start_a_comment_after_a_minus_sign() {
    assert_eq!(lex("SELECT 1--- x\n, 2"), "SELECT 1- \n, 2");
}

#[test]
fn a_block_comment_becomes_one_space() {
    assert_eq!(lex("DELETE/**/FROM t"), "DELETE FROM t");
    assert_eq!(
        lex("SELECT * FROM t INTO/**/OUTFILE '/tmp/x'"),
        "SELECT * FROM t INTO OUTFILE '/tmp/x'"
    );
    assert_eq!(lex("SELECT 1/**/2"), "SELECT 1 2");
    assert_eq!(lex("SELECT 1-/**/-1"), "SELECT 1- -1");
}

#[test]
fn block_comments_do_not_nest() {
    assert_eq!(lex("SELECT 1 /* a /* b */ , 2"), "SELECT 1   , 2");
    assert_eq!(lex("SELECT 1 /*/ x */ , 2"), "SELECT 1   , 2");
}

#[test]
fn an_unterminated_block_comment_is_refused() {
    assert_eq!(refused("SELECT 1 /* x"), LexError::UnterminatedComment(9));
    assert_eq!(refused("SELECT 1 /*/"), LexError::UnterminatedComment(9));
    assert_eq!(refused("SELECT 1 /*+ x"), LexError::UnterminatedComment(9));
}

#[test]
fn an_optimizer_hint_is_a_comment() {
    assert_eq!(lex("SELECT /*+ BKA(t1) */ 1"), "SELECT   1");
    assert_eq!(lex("SELECT /*+ QB_NAME(`q1`) */ 1"), "SELECT   1");
}

#[test]
fn a_hint_with_an_end_marker_inside_a_quoted_name_is_refused() {
    assert_eq!(
        refused("SELECT /*+ QB_NAME(`*/ , 2 `) */ 1"),
        LexError::AmbiguousComment(7)
    );
    assert_eq!(
        refused("SELECT /*+ QB_NAME('a\\'b') */ 1"),
        LexError::AmbiguousComment(7)
    );
}

#[test]
fn the_mariadb_marker_is_an_ordinary_comment_on_mysql_and_lowercase_everywhere() {
    assert_eq!(lex("SELECT 1 /*M!100100 , 2*/"), "SELECT 1  ");
    assert_eq!(lex_on("SELECT 1 /*m!100100 , 2*/", &MARIADB), "SELECT 1  ");
}

// Executable comments.

#[test]
fn an_executable_comment_runs_when_the_server_is_at_least_its_version() {
    assert_eq!(
        lex("SELECT 1 /*!50000 , (DELETE FROM t)*/"),
        "SELECT 1   , (DELETE FROM t) "
    );
    assert_eq!(lex("SELECT 1 /*!80040 , 2*/"), "SELECT 1   , 2 ");
}

#[test]
fn an_executable_comment_for_a_newer_server_is_a_comment() {
    let old = Dialect {
        version: 40000,
        ..MYSQL
    };
    assert_eq!(
        lex_on("SELECT 1 /*!50000 , (DELETE FROM t)*/", &old),
        "SELECT 1  "
    );
    assert_eq!(lex("SELECT 1 /*!80041 , 2*/"), "SELECT 1  ");
}

#[test]
fn an_executable_comment_without_a_version_always_runs() {
    assert_eq!(
        lex("SELECT /*! STRAIGHT_JOIN */ 1"),
        "SELECT   STRAIGHT_JOIN   1"
    );
    assert_eq!(lex("SELECT 1/*!+2*/"), "SELECT 1 +2 ");
    assert_eq!(lex("SELECT 1 /*!*/"), "SELECT 1   ");
}

#[test]
fn a_mariadb_comment_runs_on_mariadb_only() {
    assert_eq!(
        lex_on("SELECT 1 /*M!100100 , (DELETE FROM t) */", &MARIADB),
        "SELECT 1   , (DELETE FROM t)  "
    );
    assert_eq!(lex_on("SELECT 1 /*M! , 2 */", &MARIADB), "SELECT 1   , 2  ");
    assert_eq!(lex_on("SELECT 1 /*M!110000 , 2 */", &MARIADB), "SELECT 1  ");
    assert_eq!(
        lex("SELECT 1 /*M!100100 , (DELETE FROM t) */"),
        "SELECT 1  "
    );
}

#[test]
fn mariadb_skips_mysql_comments_for_mysql_5_7_and_later() {
    assert_eq!(lex_on("SELECT 1 /*!50700 , 2 */", &MARIADB), "SELECT 1  ");
    assert_eq!(lex_on("SELECT 1 /*!80000 , 2 */", &MARIADB), "SELECT 1  ");
    assert_eq!(
        lex_on("SELECT 1 /*!50699 , 2 */", &MARIADB),
        "SELECT 1   , 2  "
    );
    assert_eq!(
        lex_on("SELECT 1 /*M!50700 , 2 */", &MARIADB),
        "SELECT 1   , 2  "
    );
    assert_eq!(
        lex_on("SELECT 1 /*!100100 , 2 */", &MARIADB),
        "SELECT 1   , 2  "
    );
}

#[test]
fn six_digit_versions_are_read_as_each_server_reads_them() {
    // MySQL 8.0 would read five digits and run the sixth: refused.
    assert_eq!(
        refused("SELECT 1 /*!100000 , 2 */"),
        LexError::MalformedVersion(9)
    );
    // MySQL 8.1 and later read six digits before whitespace.
    assert_eq!(
        lex_on("SELECT 1 /*!080000 , 2 */", &MYSQL_84),
        "SELECT 1   , 2  "
    );
    assert_eq!(lex_on("SELECT 1 /*!100000 , 2 */", &MYSQL_84), "SELECT 1  ");
    assert_eq!(
        refused_on("SELECT 1 /*!080000, 2 */", &MYSQL_84),
        LexError::MalformedVersion(9)
    );
    // MariaDB always reads six.
    assert_eq!(
        lex_on("SELECT 1 /*!100100, 2 */", &MARIADB),
        "SELECT 1  , 2  "
    );
}

#[test]
fn a_version_of_another_length_is_refused() {
    for sql in [
        "SELECT 1 /*!1234 , 2*/",
        "SELECT 1 /*!1 , 2*/",
        "SELECT 1 /*!1234567 , 2*/",
    ] {
        assert_eq!(refused(sql), LexError::MalformedVersion(9));
        assert_eq!(refused_on(sql, &MARIADB), LexError::MalformedVersion(9));
    }
    assert_eq!(
        refused_on("SELECT 1 /*M!1234 , 2*/", &MARIADB),
        LexError::MalformedVersion(9)
    );
}

#[test]
fn the_galera_consistency_version_is_refused() {
    assert_eq!(
        refused_on("/*!99997 DELETE FROM t */", &MARIADB),
        LexError::WsrepVersion(0)
    );
    assert_eq!(
        refused("/*!99997 DELETE FROM t */"),
        LexError::WsrepVersion(0)
    );
}

#[test]
fn an_end_marker_inside_a_string_does_not_end_a_running_comment() {
    assert_eq!(lex("SELECT 1 /*!50000 , '*/' */"), "SELECT 1   , '*/'  ");
    assert_eq!(lex("SELECT 1 /*!50000 , `*/` */"), "SELECT 1   , `*/`  ");
}

#[test]
fn a_comment_for_a_newer_server_ends_at_the_first_end_marker_even_in_quotes() {
    assert_eq!(lex("SELECT 1 /*!99999 '*/ , 2"), "SELECT 1   , 2");
}

#[test]
fn a_comment_inside_an_executable_comment_is_refused() {
    assert_eq!(
        refused("SELECT 1 /*!50000 , 2 /* x */ */"),
        LexError::NestedComment(22)
    );
    assert_eq!(
        refused("SELECT 1 /*!99999 , 2 /* x */ */"),
        LexError::NestedComment(22)
    );
    assert_eq!(
        refused("SELECT 1 /*! /*!50000 , 2 */ */"),
        LexError::NestedComment(13)
    );
}

#[test]
fn a_line_comment_hiding_the_end_marker_of_an_executable_comment_is_refused() {
    assert_eq!(
        refused("SELECT 1 /*! , 2 # */\n , 3 */"),
        LexError::AmbiguousComment(17)
    );
    assert_eq!(
        refused("SELECT 1 /*! , 2 -- */\n , 3 */"),
        LexError::AmbiguousComment(17)
    );
    assert_eq!(lex("SELECT 1 /*! , 2 # two\n */"), "SELECT 1   , 2  \n  ");
}

#[test]
fn an_unterminated_executable_comment_is_refused() {
    assert_eq!(
        refused("SELECT 1 /*!50000 , 2"),
        LexError::UnterminatedExecutableComment(9)
    );
    assert_eq!(
        refused("SELECT 1 /*!99999 , 2"),
        LexError::UnterminatedComment(9)
    );
    assert_eq!(
        refused("SELECT 1 /*!50000 , '*/"),
        LexError::UnterminatedString(20)
    );
}

#[test]
fn an_end_marker_outside_an_executable_comment_is_two_operators() {
    assert_eq!(lex("SELECT 2*/3"), "SELECT 2*/3");
    assert_eq!(lex("SELECT 2 */*x*/3"), "SELECT 2 * 3");
}

// Strings.

#[test]
fn a_backslash_escaped_quote_stays_in_the_string() {
    let out = lex("SELECT 'it\\'s'");
    assert_eq!(out, "SELECT 'it\\'s'");
    assert_eq!(parsed_string(&out), "it's");
}

#[test]
fn every_mysql_escape_decodes_as_the_server_decodes_it() {
    let out = lex(r#"SELECT '\0\b\n\r\t\Z\\\'\"\%\_\a\f\q\é'"#);
    let expected = "\0\u{8}\n\r\t\u{1a}\\'\"\\%\\_afqé";
    assert_eq!(parsed_string(&out), expected);
    assert_eq!(out, "SELECT '\0\u{8}\n\r\t\u{1a}\\\\\\'\"\\\\%\\\\_afqé'");
}

#[test]
fn a_doubled_quote_is_one_quote() {
    assert_eq!(lex("SELECT 'it''s'"), "SELECT 'it\\'s'");
    assert_eq!(lex(r#"SELECT "say ""hi""""#), r#"SELECT 'say "hi"'"#);
    assert_eq!(lex(r#"SELECT "it's""#), "SELECT 'it\\'s'");
}

#[test]
fn without_backslash_escapes_a_backslash_is_an_ordinary_character() {
    assert_eq!(lex_on("SELECT 'a\\'", &NO_BACKSLASH), "SELECT 'a\\\\'");
    assert_eq!(
        refused_on("SELECT 'it\\'s'", &NO_BACKSLASH),
        LexError::UnterminatedString(13)
    );
    let out = lex_on(r"SELECT 'a\n', 'b''\'", &NO_BACKSLASH);
    assert_eq!(out, r"SELECT 'a\\n', 'b\'\\'");
    assert_eq!(parsed_string(&out), "a\\n");
}

#[test]
fn adjacent_string_literals_are_one_literal() {
    assert_eq!(lex("SELECT 'a' 'b'"), "SELECT 'ab'");
    assert_eq!(
        lex("SELECT 'a'/* x */\"b\"\n 'c', 'd'"),
        "SELECT 'abc', 'd'"
    );
    assert_eq!(lex("SELECT 'a' /*!50000 'b' */ 'c'"), "SELECT 'abc'");
    assert_eq!(lex("SELECT N'a' 'b'"), "SELECT N'ab'");
    assert_eq!(lex("SELECT _utf8mb4'a' 'b'"), "SELECT _utf8mb4'ab'");
    assert_eq!(lex("SELECT 'a' N'b'"), "SELECT 'a' N'b'");
    assert_eq!(parsed_string("SELECT 'a\\'' 'b'"), "a'b");
    assert_eq!(lex("SELECT 'a\\'' 'b'"), "SELECT 'a\\'b'");
}

#[test]
fn a_literal_naming_a_variable_or_host_is_not_concatenated() {
    assert_eq!(lex("SET @'a' 'b'"), "SET @'a' 'b'");
    assert_eq!(
        lex("GRANT ALL ON *.* TO 'u'@'h' 'x'"),
        "GRANT ALL ON *.* TO 'u'@'h' 'x'"
    );
}

#[test]
fn string_prefixes_are_kept_before_the_canonical_literal() {
    assert_eq!(lex("SELECT N'it''s'"), "SELECT N'it\\'s'");
    assert_eq!(lex("SELECT n'x'"), "SELECT n'x'");
    assert_eq!(lex("SELECT _utf8mb4'x'"), "SELECT _utf8mb4'x'");
    assert_eq!(lex("SELECT _binary\"x\\0\""), "SELECT _binary'x\0'");
    assert_eq!(lex("SELECT _UTF8MB4 'x'"), "SELECT _UTF8MB4 'x'");
    assert_eq!(lex_on("SELECT _gb18030'x'", &MYSQL), "SELECT _gb18030'x'");
}

#[test]
fn an_underscore_word_that_is_no_character_set_before_a_literal_is_refused() {
    assert_eq!(refused("SELECT _foo 'x'"), LexError::UnknownIntroducer(7));
    assert_eq!(
        refused("SELECT _foo/**/\"x\""),
        LexError::UnknownIntroducer(7)
    );
    assert_eq!(refused("SELECT _foo X'41'"), LexError::UnknownIntroducer(7));
    assert_eq!(refused("SELECT _foo 0x41"), LexError::UnknownIntroducer(7));
    assert_eq!(
        refused_on("SELECT _gb18030'x'", &MARIADB),
        LexError::UnknownIntroducer(7)
    );
    assert_eq!(lex("SELECT _foo, 'x'"), "SELECT _foo, 'x'");
    assert_eq!(lex("SELECT _foo(1)"), "SELECT _foo(1)");
}

#[test]
fn hex_and_bit_literals_are_copied_when_well_formed() {
    assert_eq!(
        lex("SELECT X'4A', x'', B'0101', b'', 0x4a, 0b01"),
        "SELECT X'4A', x'', B'0101', b'', 0x4a, 0b01"
    );
    assert_eq!(refused("SELECT X'4G'"), LexError::MalformedHexLiteral(7));
    assert_eq!(refused("SELECT X'123'"), LexError::MalformedHexLiteral(7));
    assert_eq!(refused("SELECT B'012'"), LexError::MalformedBitLiteral(7));
    assert_eq!(refused("SELECT X'41"), LexError::UnterminatedString(7));
}

#[test]
fn a_word_before_a_quote_is_kept_apart_from_it() {
    assert_eq!(lex("SELECT x\"41\""), "SELECT x '41'");
    assert_eq!(lex("SELECT b\"01\""), "SELECT b '01'");
    assert_eq!(lex("SELECT N\"x\""), "SELECT N 'x'");
    assert_eq!(lex("SELECT abc'x'"), "SELECT abc 'x'");
    assert_eq!(lex("SELECT DATE'2024-01-01'"), "SELECT DATE '2024-01-01'");
    assert_eq!(lex("SELECT a`b`"), "SELECT a `b`");
}

#[test]
fn two_quoted_tokens_in_a_row_are_kept_apart() {
    assert_eq!(lex("SELECT @\"\"''"), "SELECT @'' ''");
    assert_eq!(lex("SELECT X'41'\"b\""), "SELECT X'41' 'b'");
    assert_eq!(lex("SELECT 'a'`b`"), "SELECT 'a' `b`");
    assert_eq!(lex_on("SELECT `a`\"b\"", &ANSI), "SELECT `a` `b`");
    assert_eq!(
        lex("SELECT @@`version`, 1 AS `x/*`"),
        "SELECT @@ `version`, 1 AS `x/*`"
    );
}

#[test]
fn an_unterminated_string_is_refused() {
    assert_eq!(refused("SELECT 'abc"), LexError::UnterminatedString(7));
    assert_eq!(refused("SELECT \"abc"), LexError::UnterminatedString(7));
    assert_eq!(refused("SELECT 'abc\\'"), LexError::UnterminatedString(7));
    assert_eq!(refused("SELECT 'abc\\"), LexError::UnterminatedString(7));
    assert_eq!(refused("SELECT N'abc"), LexError::UnterminatedString(7));
}

#[test]
fn a_nul_byte_inside_a_string_is_kept() {
    let out = lex("SELECT 'a\0b'");
    assert_eq!(out, "SELECT 'a\0b'");
    assert_eq!(parsed_string(&out), "a\0b");
}

#[test]
fn comment_characters_inside_quotes_are_data() {
    assert_eq!(
        lex("SELECT '#x', '-- y', '/* z */', `#a`, `-- b`"),
        "SELECT '#x', '-- y', '/* z */', `#a`, `-- b`"
    );
}

// Identifiers.

#[test]
fn a_backtick_identifier_keeps_its_doubled_backticks() {
    let out = lex("SELECT `a``b` FROM `t`");
    assert_eq!(out, "SELECT `a``b` FROM `t`");
    let statements = Parser::parse_sql(&MySqlDialect {}, &out).unwrap();
    assert_eq!(statements[0].to_string(), "SELECT `a``b` FROM `t`");
}

#[test]
fn under_ansi_quotes_a_double_quoted_name_is_an_identifier() {
    assert_eq!(lex_on("SELECT \"x\" FROM t", &ANSI), "SELECT `x` FROM t");
    assert_eq!(lex_on("SELECT \"a\"\"b\"", &ANSI), "SELECT `a\"b`");
    assert_eq!(lex_on("SELECT \"a`b\"", &ANSI), "SELECT `a``b`");
    assert_eq!(lex_on("SELECT 'a' \"b\"", &ANSI), "SELECT 'a' `b`");
    assert_eq!(lex_on("SELECT x\"y\"", &ANSI), "SELECT x `y`");
}

#[test]
fn an_unterminated_quoted_identifier_is_refused() {
    assert_eq!(refused("SELECT `abc"), LexError::UnterminatedIdentifier(7));
    assert_eq!(refused("SELECT `a``"), LexError::UnterminatedIdentifier(7));
    assert_eq!(
        refused_on("SELECT \"abc", &ANSI),
        LexError::UnterminatedIdentifier(7)
    );
}

// Everything else.

#[test]
fn a_nul_byte_outside_a_string_is_refused() {
    assert_eq!(refused("SELECT 1\0"), LexError::NulByte(8));
    assert_eq!(refused("SELECT 1 # \0\n"), LexError::NulByte(11));
    assert_eq!(refused("SELECT 1 /* \0 */"), LexError::NulByte(12));
    assert_eq!(refused("SELECT `a\0`"), LexError::NulByte(9));
}

#[test]
fn keywords_numbers_operators_and_placeholders_are_copied() {
    let sql = "SELECT ?, @v, @@session.sql_mode, t.c, 1.5e-3, a<=>b, j->>'$.x' FROM t WHERE x := 1; SELECT 2";
    assert_eq!(lex(sql), sql);
    assert_eq!(lex("SELECT é, ünï FROM tä"), "SELECT é, ünï FROM tä");
}

#[test]
fn dollar_quoted_text_is_refused() {
    assert_eq!(refused("SELECT $$ FROM t $$"), LexError::DollarQuote(7));
    assert_eq!(refused("SELECT $a$ x $a$"), LexError::DollarQuote(7));
    assert_eq!(refused("SELECT 1e5$a$ x $a$"), LexError::DollarQuote(7));
    assert_eq!(refused("SELECT 1e+5$a$ x $a$"), LexError::DollarQuote(10));
    assert_eq!(refused("SELECT a$b$"), LexError::DollarQuote(7));
    assert_eq!(refused("SELECT .5$a$ x $a$"), LexError::DollarQuote(8));
    assert_eq!(lex("SELECT $a, a$b FROM t.$x"), "SELECT $a, a$b FROM t.$x");
}

#[test]
fn a_hex_looking_word_that_mysql_reads_as_a_name_is_quoted() {
    assert_eq!(lex("SELECT 0x1g, 0x FROM t"), "SELECT `0x1g`, `0x` FROM t");
    assert_eq!(lex("SELECT 0x1F, 0X1g"), "SELECT 0x1F, 0X1g");
}

#[test]
fn a_word_after_a_dot_or_at_sign_is_a_name_not_a_prefix() {
    assert_eq!(lex("SELECT t.x'41'"), "SELECT t.x '41'");
    assert_eq!(lex("SELECT @x'zz'"), "SELECT @x 'zz'");
    assert_eq!(lex("SELECT t._foo 'a'"), "SELECT t._foo 'a'");
}

#[test]
fn a_long_input_lexes_in_linear_time() {
    let line = "SELECT 'a''b' 'c', `x`, 1--1 /*!50000 , \"d\" */ # note\n";
    let sql = line.repeat(4 << 20 >> 6);
    let started = std::time::Instant::now();
    let out = lex(&sql);
    assert!(out.len() > 2 << 20);
    let many = "'x' ".repeat(1 << 20);
    assert_eq!(lex(&many).len(), (1 << 20) + 3);
    let open = "/* ".repeat(1 << 20);
    assert_eq!(refused(&open), LexError::UnterminatedComment(0));
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

// Properties.

fn dialects() -> impl Strategy<Value = Dialect> {
    (
        prop_oneof![Just(80040u32), Just(80400), Just(101109)],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(version, ansi_quotes, no_backslash_escapes)| Dialect {
            version,
            mariadb: version > 100_000,
            ansi_quotes,
            no_backslash_escapes,
        })
}

/// Text built from the pieces the lexer cares about.
fn sql_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("'"),
        Just("\""),
        Just("`"),
        Just("\\"),
        Just("/*"),
        Just("*/"),
        Just("/*!"),
        Just("/*M!"),
        Just("/*+"),
        Just("50000"),
        Just("100100"),
        Just("99999"),
        Just("#"),
        Just("-"),
        Just("--"),
        Just(" "),
        Just("\n"),
        Just("\t"),
        Just("x"),
        Just("N"),
        Just("b"),
        Just("_utf8mb4"),
        Just("_foo"),
        Just("SELECT"),
        Just("a"),
        Just("1"),
        Just("41"),
        Just("@"),
        Just("."),
        Just("$"),
        Just(","),
        Just("*"),
        Just("%"),
        Just("é"),
        Just("\0"),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

fn check_canonical(sql: &str, dialect: &Dialect) -> Result<(), TestCaseError> {
    let Ok(out) = canonical(sql, dialect) else {
        return Ok(());
    };
    let outside = outside_quotes(&out);
    prop_assert!(!outside.contains("/*"), "{sql:?} -> {out:?}");
    prop_assert!(!outside.contains('#'), "{sql:?} -> {out:?}");
    prop_assert!(!outside.contains("--"), "{sql:?} -> {out:?}");
    prop_assert!(!outside.contains('"'), "{sql:?} -> {out:?}");
    prop_assert!(!outside.contains('\0'), "{sql:?} -> {out:?}");
    // sqlparser reads no comment in it either, and finds every quote closed
    // (it may refuse other things, such as `._`).
    let tokens = Tokenizer::new(&MySqlDialect {}, &out).tokenize();
    if let Err(e) = &tokens {
        prop_assert!(
            !e.message.contains("nterminated"),
            "{sql:?} -> {out:?}: {e}"
        );
        prop_assert!(!e.message.contains("delimiter"), "{sql:?} -> {out:?}: {e}");
    }
    let comment = tokens.iter().flatten().find(|t| {
        matches!(
            t,
            Token::Whitespace(
                Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)
            )
        )
    });
    prop_assert!(comment.is_none(), "{sql:?} -> {out:?}: {comment:?}");
    // The canonical form always uses backslash escapes, as sqlparser does.
    let again = Dialect {
        no_backslash_escapes: false,
        ..*dialect
    };
    prop_assert_eq!(canonical(&out, &again), Ok(out.clone()), "{:?}", sql);
    Ok(())
}

/// Writes `value` as a MySQL literal, choosing among the spellings the
/// server accepts by the bits of `choices`.
fn mysql_literal(value: &str, dialect: &Dialect, mut choices: u64) -> String {
    let mut next = || {
        choices = choices.rotate_right(1);
        choices & 1 == 1
    };
    let quote = if !dialect.ansi_quotes && next() {
        '"'
    } else {
        '\''
    };
    let mut lit = String::from(quote);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote {
            lit.push_str(if dialect.no_backslash_escapes || next() {
                if quote == '"' {
                    "\"\""
                } else {
                    "''"
                }
            } else if quote == '"' {
                "\\\""
            } else {
                "\\'"
            });
            continue;
        }
        if dialect.no_backslash_escapes {
            lit.push(c);
            continue;
        }
        let escaped = match c {
            '\\' if matches!(chars.peek(), Some('%' | '_')) && next() => {
                lit.push('\\');
                continue;
            }
            '\\' => Some("\\\\"),
            '\0' => Some("\\0"),
            '\u{8}' => Some("\\b"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{1a}' => Some("\\Z"),
            '\'' => Some("\\'"),
            '"' => Some("\\\""),
            'a' => Some("\\a"),
            'f' => Some("\\f"),
            _ => None,
        };
        match escaped {
            Some(e) if c == '\\' || next() => lit.push_str(e),
            _ => lit.push(c),
        }
    }
    lit.push(quote);
    lit
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_text_never_panics(sql in any::<String>()) {
        for version in [80040, 80400, 101109] {
            for (ansi_quotes, no_backslash_escapes) in [(false, false), (false, true), (true, false), (true, true)] {
                let dialect = Dialect { version, mariadb: version > 100_000, ansi_quotes, no_backslash_escapes };
                let _ = canonical(&sql, &dialect);
            }
        }
    }

    #[test]
    fn sql_soup_lexes_to_a_canonical_text_without_comments(sql in sql_soup(), dialect in dialects()) {
        check_canonical(&sql, &dialect)?;
    }

    #[test]
    fn printable_text_lexes_to_a_canonical_text_without_comments(sql in "[ -~\n\tée]{0,60}", dialect in dialects()) {
        check_canonical(&sql, &dialect)?;
    }

    #[test]
    fn a_generated_literal_round_trips_through_sqlparser(
        value in prop_oneof!["\\PC{0,24}", "[a-f'\"\\\\%_\0\n\r\t\u{8}\u{1a} #/*-]{0,24}"],
        dialect in dialects(),
        choices in any::<u64>(),
    ) {
        let literal = mysql_literal(&value, &dialect, choices);
        let out = canonical(&format!("SELECT {literal}"), &dialect);
        let mut expected = String::from("SELECT '");
        push_escaped(&mut expected, &value);
        expected.push('\'');
        prop_assert_eq!(out.as_deref(), Ok(expected.as_str()), "{}", literal);
        prop_assert_eq!(parsed_string(&expected), value);
    }

    #[test]
    fn adjacent_generated_literals_read_as_their_concatenation(
        a in "\\PC{0,12}",
        b in "\\PC{0,12}",
        dialect in dialects(),
        choices in any::<u64>(),
    ) {
        let sql = format!(
            "SELECT {} /* gap */ {}",
            mysql_literal(&a, &dialect, choices),
            mysql_literal(&b, &dialect, !choices),
        );
        let out = canonical(&sql, &dialect).unwrap();
        prop_assert_eq!(parsed_string(&out), format!("{a}{b}"));
    }
}
