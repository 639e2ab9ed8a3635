//! `--labels`: a Kubernetes label selector (`a=b,c!=d,e in (x,y),f notin (z),!g,h`), parsed
//! with the API server's grammar into kube's `Selector`, which both sources use: the API
//! filters list/watch by it, the manifests source applies it to each Service it reads.
//!
//! kube has the selector type, its matching and its wire form, but no parser from text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use kube::core::{Expression, Selector, SelectorExt};

/// A parsed label selector, with the text it was given as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelFilter {
    selector: Selector,
}

impl LabelFilter {
    /// The selector as the API's `labelSelector` parameter spells it.
    pub fn to_query(&self) -> String {
        self.selector.to_string()
    }

    /// Whether labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.matches(labels)
    }
}

impl fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.selector.fmt(f)
    }
}

/// Parses a label selector; the error names the requirement at fault and why.
pub fn parse_label_selector(text: &str) -> Result<LabelFilter, String> {
    if text.trim().is_empty() {
        return Err("empty selector (e.g. app=web,tier!=cache)".into());
    }
    let mut expressions = Vec::new();
    for part in split_top_level(text)? {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("{text:?}: empty requirement (stray comma?)"));
        }
        expressions.push(requirement(part).map_err(|why| format!("{part:?}: {why}"))?);
    }
    Ok(LabelFilter {
        selector: expressions.into_iter().collect(),
    })
}

/// Splits at commas outside parentheses.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            '(' => return Err(format!("{text:?}: nested \"(\"")),
            ')' if depth == 1 => depth = 0,
            ')' => return Err(format!("{text:?}: \")\" without \"(\"")),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("{text:?}: \"(\" without \")\""));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn requirement(part: &str) -> Result<Expression, String> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Expression::DoesNotExist(key.into()));
    }
    let end = part
        .find(|c: char| c.is_whitespace() || c == '=' || c == '!' || c == '(')
        .unwrap_or(part.len());
    let (key, rest) = part.split_at(end);
    check_key(key)?;
    let rest = rest.trim_start();
    let key = key.to_owned();
    if rest.is_empty() {
        return Ok(Expression::Exists(key));
    }
    if let Some(v) = rest.strip_prefix("!=") {
        return Ok(Expression::NotEqual(key, value(v.trim())?));
    }
    if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
        return Ok(Expression::Equal(key, value(v.trim())?));
    }
    if let Some(set) = word(rest, "notin") {
        return Ok(Expression::NotIn(key, values(set)?));
    }
    if let Some(set) = word(rest, "in") {
        return Ok(Expression::In(key, values(set)?));
    }
    Err(format!(
        "expected =, ==, !=, in or notin after the key, found {rest:?}"
    ))
}

/// `rest` without the operator `op`, when `op` is followed by a space or `(`.
fn word<'a>(rest: &'a str, op: &str) -> Option<&'a str> {
    let after = rest.strip_prefix(op)?;
    after
        .starts_with(|c: char| c.is_whitespace() || c == '(')
        .then(|| after.trim())
}

fn values(set: &str) -> Result<BTreeSet<String>, String> {
    let inner = set
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised list of values, found {set:?}"))?;
    if inner.trim().is_empty() {
        return Err("the list of values is empty".into());
    }
    let set: BTreeSet<String> = inner
        .split(',')
        .map(|v| value(v.trim()))
        .collect::<Result<_, _>>()?;
    // `(,)` is the set of the empty value alone, which the query form cannot spell: it
    // writes `in ()`, an empty list the API rejects.
    if set.iter().all(String::is_empty) {
        return Err("the list of values holds only empty values".into());
    }
    Ok(set)
}

/// A label name: at most 63 characters, alphanumeric at both ends, `-`, `_`, `.` inside.
fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A label key: `[prefix/]name`, the prefix a DNS subdomain.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if key.is_empty() {
        return Err("missing label key".into());
    }
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                let b = l.as_bytes();
                !b.is_empty()
                    && b.len() <= 63
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            });
        if !ok {
            return Err(format!("key {key:?}: prefix {p:?} is not a DNS subdomain"));
        }
    }
    if !is_name(name) {
        return Err(format!(
            "key {key:?}: a label name is 1-63 characters, alphanumeric at both ends, with -, _ or . inside"
        ));
    }
    Ok(())
}

fn value(v: &str) -> Result<String, String> {
    if v.is_empty() || is_name(v) {
        Ok(v.to_owned())
    } else {
        Err(format!(
            "value {v:?}: a label value is at most 63 characters, alphanumeric at both ends, with -, _ or . inside"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn parses_the_api_grammar() {
        let table = [
            ("app=web", "app=web"),
            ("app==web", "app=web"),
            ("app = web , tier!=cache", "app=web,tier!=cache"),
            ("env in (prod, staging)", "env in (prod,staging)"),
            ("env notin (dev)", "env notin (dev)"),
            ("!legacy", "!legacy"),
            ("example.com/dns", "example.com/dns"),
            ("a=b,c!=d,e in (x,y),!f,g", "a=b,c!=d,e in (x,y),!f,g"),
            ("a=", "a="),
        ];
        for (text, want) in table {
            let got = parse_label_selector(text).map(|f| f.to_query());
            assert_eq!(got.as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_syntax_says_why() {
        let table = [
            ("", "empty selector"),
            ("a=b,", "empty requirement"),
            ("a in x", "parenthesised"),
            ("a in ()", "empty"),
            // Its query form would be `a in ()` (found by fuzz/fuzz_targets/label_selector.rs).
            ("a in (,)", "only empty values"),
            ("a notin ( , ,)", "only empty values"),
            ("a in (x", "without"),
            ("-a=b", "label name"),
            ("a=b c", "label value"),
            ("a > 3", "expected =, ==, !=, in or notin"),
            ("bad_/x", "DNS subdomain"),
        ];
        for (text, want) in table {
            let err = parse_label_selector(text).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn an_empty_value_beside_others_keeps_its_query_form() {
        let f = parse_label_selector("a in (x,)").unwrap();
        assert_eq!(f.to_query(), "a in (,x)");
        assert_eq!(parse_label_selector(&f.to_query()).unwrap(), f);
    }

    #[test]
    fn matches_labels() {
        let f = parse_label_selector("a=b,c!=d,e in (x,y),!f,g").unwrap();
        let base = [("a", "b"), ("e", "x"), ("g", "")];
        assert!(f.matches(&labels(&base)));
        assert!(f.matches(&labels(&[("a", "b"), ("c", "z"), ("e", "y"), ("g", "1")])));
        assert!(!f.matches(&labels(&[("a", "b"), ("e", "x")])), "g missing");
        assert!(!f.matches(&labels(&[("a", "b"), ("e", "x"), ("g", ""), ("f", "")])));
        assert!(!f.matches(&labels(&[("a", "b"), ("c", "d"), ("e", "x"), ("g", "")])));
        assert!(!f.matches(&labels(&[("a", "b"), ("e", "z"), ("g", "")])));
    }
}
