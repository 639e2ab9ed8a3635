//! Zone files that are rejected: the error names the file, the line and the reason; and
//! damaged input never panics.

use std::path::Path;

use hickory_proto::rr::Name;

use super::Zone;

const EXAMPLE: &str = include_str!("../../zones/example.internal.zone");

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The error of parsing `text` as `bad.test.`, as text.
fn parse_error(text: &str) -> String {
    match Zone::parse(Path::new("/zones/bad.test.zone"), &name("bad.test."), text) {
        Ok(_) => "parsed".into(),
        Err(e) => e.to_string(),
    }
}

const HEAD: &str = "$TTL 60\n@ SOA ns hostmaster ( 1 2\n 3 4 5 )\n@ NS ns\n";

/// A rejected file's error is `FILE:LINE: reason`. Reasons of our own are checked whole;
/// where the reason is hickory's parser's (its words are its own and change with its
/// versions), the file, the line, and that a reason follows.
#[test]
fn errors_name_file_line_and_reason() {
    let f = "/zones/bad.test.zone";
    let ours = [
        (
            format!("{HEAD}; note\n\nwww.example.com. A 192.0.2.1\n"),
            format!("{f}:7: www.example.com. is outside the zone bad.test."),
        ),
        (
            format!("{HEAD}sub SOA ns hostmaster 1 2 3 4 5\n"),
            format!("{f}:5: SOA at sub.bad.test.: only the apex bad.test. has one"),
        ),
        (
            format!("{HEAD}a A 192.0.2.1\na CNAME ns\n"),
            format!("{f}:6: a.bad.test. has a CNAME and other records"),
        ),
        (
            format!("{HEAD}a CH A 192.0.2.1\n"),
            format!("{f}:5: a.bad.test. A has class CH; only IN is served"),
        ),
        (
            format!("{HEAD}$INCLUDE /etc/hosts\n"),
            format!("{f}:5: $INCLUDE is not supported: a zone is one file"),
        ),
        (
            "$TTL 60\n@ NS ns\n".to_string(),
            format!("{f}: no SOA record at the apex bad.test."),
        ),
        (
            "$TTL 60\n@ SOA ns hostmaster 1 2 3 4 5\n".to_string(),
            format!("{f}: no NS record at the apex bad.test."),
        ),
    ];
    for (text, want) in ours {
        assert_eq!(parse_error(&text), want, "{text:?}");
    }
    // The parser's own reasons: a bad address, an unknown type, a second SOA, an unclosed
    // quote, a record with no TTL to take.
    let parsers = [
        (format!("{HEAD}ns A 192.0.2.1\nx A 999.1.1.1\n"), 6),
        (format!("{HEAD}x BOGUS 1\n"), 5),
        (format!("{HEAD}@ SOA ns hostmaster 2 2 3 4 5\n"), 5),
        (format!("{HEAD}t TXT \"unclosed\n"), 5),
        ("@ SOA ns hostmaster 1 2 3 4 5\n".to_string(), 1),
    ];
    for (text, line) in parsers {
        let e = parse_error(&text);
        let reason = e
            .strip_prefix(&format!("{f}:{line}: "))
            .unwrap_or_else(|| panic!("{e:?} names {f}:{line}: ({text:?})"));
        assert!(
            reason.len() > 3 && !reason.contains('\n'),
            "a reason on the line: {e:?}"
        );
    }
}

#[test]
fn damaged_files_never_panic() {
    // Every prefix of the example, and every line replaced by noise: each parses or is an
    // error naming the file.
    let mut texts: Vec<String> = EXAMPLE
        .char_indices()
        .map(|(i, _)| EXAMPLE[..i].to_string())
        .collect();
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    for i in 0..lines.len() {
        for noise in [
            "(",
            ")",
            "\"",
            "@ A",
            "x 1 IN",
            "$ORIGIN .",
            "\\",
            "* CNAME *",
            "a.b SRV 1",
        ] {
            let mut l = lines.clone();
            l[i] = noise;
            texts.push(l.join("\n"));
        }
    }
    for text in texts {
        if let Err(e) = Zone::parse(Path::new("x.zone"), &name("example.internal."), &text) {
            assert!(e.to_string().starts_with("x.zone"), "{e}");
        }
    }
}
