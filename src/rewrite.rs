//! `--rewrite`: question names rewritten before the lookup, and the answer's names back to the
//! client's own, the core of CoreDNS's `rewrite name … answer auto`.
//!
//! A rule is `name exact|prefix|suffix|regex FROM TO` (`name FROM TO` is `exact`). Names are
//! matched in lower case, fully qualified (`db.example.com.`), as CoreDNS matches them:
//! - `exact`: the name is FROM; it becomes TO;
//! - `prefix`: the name starts with FROM; FROM is replaced by TO;
//! - `suffix`: the name ends with FROM; FROM is replaced by TO;
//! - `regex`: the name matches the regular expression FROM (Rust's `regex` syntax, unanchored
//!   unless `^`/`$` say so); it becomes TO with `{0}`, `{1}`… replaced by the groups.
//!
//! FROM and TO of `exact`, `prefix` and `suffix`, and TO of `regex` once its groups are in,
//! are lower-cased and given a final dot when they lack one, as CoreDNS's `Normalize` does:
//! a suffix `.example.com` matches `db.example.com.`; a prefix `foo` is `foo.` (whole first
//! label). Rules are tried in order and the first that matches applies, once: the rewritten
//! name is not matched again, so rules cannot loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use regex::Regex;

/// The longest regular expression accepted (CoreDNS's limit).
const MAX_REGEX_LEN: usize = 10_000;

/// How a rule matches a name.
#[derive(Clone, Debug)]
enum Match {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Regex(Regex),
}

/// One `--rewrite` rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The rule as given.
    text: String,
    how: Match,
    to: String,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Lower case with a final dot (CoreDNS's `plugin.Name.Normalize`).
fn normalize(text: &str) -> String {
    let mut s = text.to_ascii_lowercase();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// Parses `name exact|prefix|suffix|regex FROM TO` (or `name FROM TO`, exact); a trailing
/// `answer auto` is accepted, and is what every rule does anyway.
pub fn parse_rule(text: &str) -> Result<Rule, String> {
    let bad = |why: &str| {
        format!(
            "{text:?}: {why} (e.g. 'name exact db.example.com. postgres.data.svc.cluster.local.')"
        )
    };
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if words.ends_with(&["answer", "auto"]) {
        words.truncate(words.len() - 2);
    }
    let (kind, from, to) = match words.as_slice() {
        ["name", from, to] => ("exact", *from, *to),
        ["name", kind, from, to] => (*kind, *from, *to),
        [first, ..] if *first != "name" => {
            return Err(bad(
                "only name rules are supported: it must start with `name`",
            ));
        }
        _ => return Err(bad("expected `name exact|prefix|suffix|regex FROM TO`")),
    };
    let how = match kind.to_ascii_lowercase().as_str() {
        "exact" => Match::Exact(normalize(from)),
        "prefix" => Match::Prefix(normalize(from)),
        "suffix" => Match::Suffix(normalize(from)),
        "regex" => Match::Regex(regex(from, to).map_err(|e| bad(&e))?),
        other => {
            return Err(bad(&format!(
                "unknown match {other:?}: exact, prefix, suffix or regex"
            )));
        }
    };
    if matches!(how, Match::Exact(_)) && Name::from_ascii(normalize(to)).is_err() {
        return Err(bad(&format!("{to:?} is not a domain name")));
    }
    let to = if matches!(how, Match::Regex(_)) {
        to.to_string()
    } else {
        normalize(to)
    };
    Ok(Rule {
        text: words.join(" "),
        how,
        to,
    })
}

/// The regular expression FROM, checked against the groups TO uses.
fn regex(from: &str, to: &str) -> Result<Regex, String> {
    if from.len() > MAX_REGEX_LEN {
        return Err(format!(
            "the regex is longer than {MAX_REGEX_LEN} characters"
        ));
    }
    let re = Regex::new(from).map_err(|e| format!("bad regex {from:?}: {e}"))?;
    let groups = re.captures_len();
    let mut rest = to;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('}') else { break };
        if let Ok(n) = rest[..close].parse::<usize>()
            && n >= groups
        {
            return Err(format!(
                "{to:?} uses group {{{n}}} but {from:?} has {} group(s)",
                groups - 1
            ));
        }
    }
    Ok(re)
}

impl Rule {
    /// Whether the rule applies to `name` (lower case, final dot).
    pub fn matches(&self, name: &str) -> bool {
        match &self.how {
            Match::Exact(from) => name == from,
            Match::Prefix(from) => name.starts_with(from.as_str()),
            Match::Suffix(from) => name.ends_with(from.as_str()),
            Match::Regex(re) => re.is_match(name),
        }
    }

    /// The rewritten name for `name` (lower case, final dot), `None` when the rule does not
    /// apply.
    pub fn apply(&self, name: &str) -> Option<String> {
        match &self.how {
            Match::Exact(from) => (name == from).then(|| self.to.clone()),
            Match::Prefix(from) => name
                .strip_prefix(from.as_str())
                .map(|rest| format!("{}{rest}", self.to)),
            Match::Suffix(from) => name
                .strip_suffix(from.as_str())
                .map(|rest| format!("{rest}{}", self.to)),
            Match::Regex(re) => {
                let caps = re.captures(name)?;
                let mut out = self.to.clone();
                for (i, group) in caps.iter().enumerate() {
                    out = out.replace(&format!("{{{i}}}"), group.map_or("", |m| m.as_str()));
                }
                Some(normalize(&out))
            }
        }
    }
}

/// The rules in force, swapped whole by a reload.
#[derive(Debug, Default)]
pub struct Rewriter {
    /// Whether there is any rule: read before the rules, so a server without rules pays one
    /// relaxed load per query.
    any: AtomicBool,
    rules: ArcSwap<Vec<Rule>>,
}

/// What a rewrite did to a question.
#[derive(Debug, Clone, PartialEq)]
pub enum Rewritten {
    /// The name asked in place of the question's.
    Name(Name),
    /// A rule matched but its result is not a domain name (SERVFAIL, as CoreDNS).
    Invalid(String),
}

impl Rewriter {
    /// A rewriter with `rules`.
    pub fn new(rules: Vec<Rule>) -> Arc<Self> {
        let r = Arc::new(Self::default());
        r.set(rules);
        r
    }

    /// Puts `rules` in force.
    pub fn set(&self, rules: Vec<Rule>) {
        let any = !rules.is_empty();
        self.rules.store(Arc::new(rules));
        self.any.store(any, Ordering::Release);
    }

    /// Whether a rule matches `name` (lower case, final dot); false at once without rules.
    pub fn matches(&self, name: &str) -> bool {
        self.any.load(Ordering::Acquire) && self.rules.load().iter().any(|r| r.matches(name))
    }

    /// Whether there is any rule.
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The first matching rule's rewrite of `name`; `None` when no rule matches.
    pub fn rewrite(&self, name: &Name) -> Option<Rewritten> {
        if !self.any() {
            return None;
        }
        let text = name.to_lowercase().to_ascii();
        let text = if text.ends_with('.') {
            text
        } else {
            format!("{text}.")
        };
        let rules = self.rules.load();
        let out = rules.iter().find_map(|r| r.apply(&text))?;
        Some(match Name::from_ascii(&out) {
            Ok(n) => Rewritten::Name(n),
            Err(_) => Rewritten::Invalid(out),
        })
    }
}

/// `name` spelled back: `original` when it is `rewritten`, `<labels>.<original>` when it is
/// below it; `None` otherwise.
pub fn revert(name: &Name, rewritten: &Name, original: &Name) -> Option<Name> {
    if name == rewritten {
        return Some(original.clone());
    }
    if !rewritten.zone_of(name) {
        return None;
    }
    let keep = usize::from(name.num_labels() - rewritten.num_labels());
    Name::from_labels(name.iter().take(keep))
        .ok()?
        .append_name(original)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(rule: &str, name: &str) -> Option<String> {
        parse_rule(rule).ok()?.apply(name)
    }

    #[test]
    fn kinds() {
        let exact = "name exact db.example.com postgres.data.svc.cluster.local";
        assert_eq!(
            rewrite(exact, "db.example.com.").as_deref(),
            Some("postgres.data.svc.cluster.local.")
        );
        assert_eq!(rewrite(exact, "x.db.example.com."), None);
        let suffix = "name suffix .corp.example .svc.cluster.local";
        assert_eq!(
            rewrite(suffix, "api.team.corp.example.").as_deref(),
            Some("api.team.svc.cluster.local.")
        );
        let prefix = "name prefix www api";
        assert_eq!(
            rewrite(prefix, "www.example.com.").as_deref(),
            Some("api.example.com.")
        );
        assert_eq!(rewrite(prefix, "wwwx.example.com."), None);
        let re = r"name regex ^(\w+)\.(\w+)\.example\.com\.$ {1}.{2}.svc.cluster.local";
        assert_eq!(
            rewrite(re, "web.prod.example.com.").as_deref(),
            Some("web.prod.svc.cluster.local.")
        );
        assert_eq!(rewrite(re, "a.b.c.example.com."), None);
    }

    #[test]
    fn bad_rules() {
        for bad in [
            "name regex ([a-z] x",
            r"name regex ^(\w+)\.example\.com\.$ {2}.svc",
            "name glob a b",
            "type A AAAA",
            "name a",
            "name exact a.example. b..c",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad}");
        }
        assert!(parse_rule("name exact a b answer auto").is_ok());
    }

    #[test]
    fn reverts_names() {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let (rw, orig) = (n("pg.data.svc.cluster.local."), n("DB.example.com."));
        assert_eq!(revert(&rw, &rw, &orig), Some(orig.clone()));
        assert_eq!(
            revert(&n("x.pg.data.svc.cluster.local."), &rw, &orig),
            Some(n("x.DB.example.com."))
        );
        assert_eq!(revert(&n("other.example."), &rw, &orig), None);
    }
}
