//! Reads one zone file: hickory's RFC 1035 parser, the rules a served zone must meet, and the
//! line an error is on.
//!
//! hickory's parser reports what is wrong but not where. The file is cut into entries (a line,
//! or the lines a `( … )` group spans) and, when the whole file is rejected, the shortest
//! failing prefix of whole entries is found by bisection: its last entry is the culprit. Only a
//! rejected file pays for this, once per change.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use hickory_proto::rr::{DNSClass, LowerName, Name, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::Parser;

/// A zone file that cannot be served, named by file, line (when known) and reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {reason}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ZoneFileError {
    /// The file (or the directory, when it cannot be read).
    pub file: PathBuf,
    /// The 1-based line the problem is on, when one is to blame.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl ZoneFileError {
    /// An error about `file` as a whole.
    pub fn new(file: &Path, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            reason: reason.into(),
        }
    }
}

/// The records of a parsed file, as hickory returns them.
pub(super) type Records = BTreeMap<RrKey, RecordSet>;

/// Where each entry of `text` starts: (byte offset, 1-based line). Follows hickory's lexer:
/// `;` comments to the end of the line, `"` quotes a token that starts with it, `(` … `)`
/// groups lines; anything else ends at a newline.
fn entries(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut line, mut at_start, mut token_start) = (1, true, true);
    let (mut list, mut quote, mut escape, mut comment) = (false, false, false, false);
    for (i, ch) in text.char_indices() {
        if at_start {
            out.push((i, line));
            at_start = false;
        }
        if ch == '\n' {
            line += 1;
        }
        if comment {
            if ch == '\n' {
                comment = false;
                at_start = !list;
                token_start = true;
            }
            continue;
        }
        if quote {
            if escape {
                escape = false;
            } else if ch == '\\' {
                escape = true;
            } else if ch == '"' {
                quote = false;
                token_start = true;
            }
            continue;
        }
        match ch {
            ';' => comment = true,
            '(' if !list && token_start => list = true,
            ')' if list => list = false,
            '"' if !list && token_start => quote = true,
            '\n' if !list => at_start = true,
            _ => {}
        }
        token_start = ch.is_whitespace() || ch == '(' || ch == ')';
    }
    out
}

/// The rules each record must meet on its own or with its neighbours. Adding records never
/// cures a violation, so the first failing prefix finds the line.
fn check_records(origin: &Name, records: &Records) -> Result<(), String> {
    let mut cname_and_other: HashMap<&LowerName, (bool, usize)> = HashMap::new();
    for (key, set) in records {
        let name = set.name();
        if !origin.zone_of(name) {
            return Err(format!("{name} is outside the zone {origin}"));
        }
        if let Some(r) = set
            .records_without_rrsigs()
            .find(|r| r.dns_class != DNSClass::IN)
        {
            return Err(format!(
                "{name} {} has class {}; only IN is served",
                r.record_type(),
                r.dns_class
            ));
        }
        if set.record_type() == RecordType::SOA && name != origin {
            return Err(format!("SOA at {name}: only the apex {origin} has one"));
        }
        let seen = cname_and_other.entry(key.name()).or_default();
        seen.0 |= set.record_type() == RecordType::CNAME;
        seen.1 += 1;
        if seen.0 && seen.1 > 1 {
            // RFC 1034 §3.6.2: a CNAME is the only data at its name.
            return Err(format!("{name} has a CNAME and other records"));
        }
    }
    Ok(())
}

/// Parses `text` and applies the per-record rules.
fn parse_checked(origin: &Name, text: &str) -> Result<Records, String> {
    let (_, records) = Parser::new(text, None, Some(origin.clone()))
        .parse()
        .map_err(|e| e.to_string())?;
    check_records(origin, &records)?;
    Ok(records)
}

/// Parses one zone file for `origin`, naming the line of the first problem.
pub(super) fn parse_file(file: &Path, origin: &Name, text: &str) -> Result<Records, ZoneFileError> {
    let starts = entries(text);
    let error = |line: Option<usize>, reason: String| ZoneFileError {
        file: file.to_owned(),
        line,
        reason,
    };
    // $INCLUDE would make a zone depend on files the directory scan does not see change.
    if let Some((_, line)) = starts
        .iter()
        .find(|(at, _)| text[*at..].starts_with("$INCLUDE"))
    {
        return Err(error(
            Some(*line),
            "$INCLUDE is not supported: a zone is one file".into(),
        ));
    }
    let whole = match parse_checked(origin, text) {
        Ok(records) => return Ok(records),
        Err(reason) => reason,
    };
    // The end of the first `k` entries; the whole text when `k` is all of them.
    let end = |k: usize| starts.get(k).map_or(text.len(), |(at, _)| *at);
    let (mut lo, mut hi) = (1, starts.len());
    let mut first: Option<(usize, String)> = None;
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        match parse_checked(origin, &text[..end(mid)]) {
            Ok(_) => lo = mid + 1,
            Err(reason) => {
                first = Some((mid, reason));
                hi = mid - 1;
            }
        }
    }
    Err(match first {
        Some((k, reason)) => error(starts.get(k - 1).map(|(_, line)| *line), reason),
        None => error(None, whole),
    })
}

#[cfg(test)]
mod tests {
    use super::entries;

    fn lines(text: &str) -> Vec<usize> {
        entries(text).into_iter().map(|(_, l)| l).collect()
    }

    #[test]
    fn entries_follow_groups_quotes_and_comments() {
        assert_eq!(lines("a\nb\n\nc"), [1, 2, 3, 4]);
        assert_eq!(
            lines("@ SOA ( ns\n 1 ; serial (\n 2 )\nx A 1.2.3.4\n"),
            [1, 4]
        );
        assert_eq!(lines("t TXT \"a\nb\"\nu A 1.2.3.4\n"), [1, 3]);
        assert_eq!(lines("t TXT a\"(\nu A 1.2.3.4\n"), [1, 2]);
        assert_eq!(lines("; (\nu A 1.2.3.4\n"), [1, 2]);
    }
}
