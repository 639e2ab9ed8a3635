//! The rules through `iptables` and `ip6tables` (either backend, legacy or nf_tables): node-cache's
//! rules, each inserted at the top of its chain with the comment `clusterdns <interface>`,
//! by which teardown finds and deletes exactly them (also those of an earlier run on other
//! addresses).

use super::SetupError;
use super::exec::{check, failed, run};
use super::rules::{End, Rule};

/// The comment every rule of interface `name` carries.
pub fn comment(name: &str) -> String {
    format!("clusterdns {name}")
}

/// `iptables` or `ip6tables`.
fn program(v6: bool) -> &'static str {
    if v6 { "ip6tables" } else { "iptables" }
}

/// The families to act on: IPv4, and IPv6 when `v6`.
fn families(v6: bool) -> &'static [bool] {
    if v6 { &[false, true] } else { &[false] }
}

/// Whether `iptables` (and `ip6tables` when `v6`) can read the raw table here.
pub async fn works(v6: bool) -> Result<(), SetupError> {
    for &family in families(v6) {
        check(program(family), &["-w", "-t", "raw", "-S"], None).await?;
    }
    Ok(())
}

/// The rule's match and target, after `-t TABLE -X CHAIN`.
fn spec(rule: &Rule, comment: &str) -> Vec<String> {
    let (addr, port) = match rule.end {
        End::To => ("-d", "--dport"),
        End::From => ("-s", "--sport"),
    };
    let target = if rule.place.notrack() {
        "NOTRACK"
    } else {
        "ACCEPT"
    };
    [
        "-p",
        rule.proto,
        addr,
        &rule.ip().to_string(),
        port,
        &rule.addr.port().to_string(),
        "-m",
        "comment",
        "--comment",
        comment,
        "-j",
        target,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Runs `-w -t TABLE <op> CHAIN [1] <rule>` for the rule's family.
async fn on(rule: &Rule, op: &str, comment: &str) -> Result<super::exec::Ran, SetupError> {
    let mut args = vec!["-w", "-t", rule.place.table(), op, rule.place.chain()];
    if op == "-I" {
        args.push("1");
    }
    let spec = spec(rule, comment);
    args.extend(spec.iter().map(String::as_str));
    let ran = run(program(rule.v6()), &args, None).await?;
    // `-C` exits 1 for a rule that is not there; anything else non-zero is a failure.
    if ran.ok() || (op == "-C" && ran.code == Some(1)) {
        Ok(ran)
    } else {
        Err(failed(program(rule.v6()), &args, &ran))
    }
}

/// Inserts each rule at the top of its chain, after deleting those an earlier run left.
pub async fn install(comment: &str, rules: &[Rule]) -> Result<(), SetupError> {
    remove(comment, rules.iter().any(Rule::v6)).await?;
    for r in rules {
        on(r, "-I", comment).await?;
    }
    Ok(())
}

/// The rules that are not in their chain.
pub async fn missing(comment: &str, rules: &[Rule]) -> Result<Vec<Rule>, SetupError> {
    let mut out = Vec::new();
    for r in rules {
        if !on(r, "-C", comment).await?.ok() {
            out.push(*r);
        }
    }
    Ok(out)
}

/// Inserts `rules` (the missing ones).
pub async fn insert(comment: &str, rules: &[Rule]) -> Result<(), SetupError> {
    for r in rules {
        on(r, "-I", comment).await?;
    }
    Ok(())
}

/// Deletes every rule carrying `comment`, in the raw and filter tables, IPv4 (and IPv6 when
/// `v6`), as `iptables-save` lists them.
pub async fn remove(comment: &str, v6: bool) -> Result<(), SetupError> {
    let needle = format!("--comment \"{comment}\"");
    for &family in families(v6) {
        let p = program(family);
        let save = format!("{p}-save");
        for table in ["raw", "filter"] {
            let listed = check(&save, &["-t", table], None).await?;
            for line in listed.lines().filter(|l| l.starts_with("-A ")) {
                if !line.contains(&needle) {
                    continue;
                }
                let mut args = vec!["-w".to_owned(), "-t".to_owned(), table.to_owned()];
                args.extend(words(line));
                args[3] = "-D".to_owned();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                check(p, &args, None).await?;
            }
        }
    }
    Ok(())
}

/// A line of `iptables-save` split into arguments: words, or double-quoted strings (with `\`
/// escapes) as one.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut word, mut quoted, mut escaped, mut any) = (String::new(), false, false, false);
    for c in line.chars() {
        match c {
            _ if escaped => {
                word.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_lines_split_into_arguments() {
        let line = "-A PREROUTING -d 169.254.20.10/32 -p udp -m udp --dport 53 \
                    -m comment --comment \"clusterdns node local\" -j NOTRACK";
        let w = words(line);
        assert_eq!(w[0], "-A");
        assert_eq!(w.len(), 16);
        assert!(w.contains(&"clusterdns node local".to_owned()));
        assert_eq!(words(r#"a "b \"c\"" """#), ["a", "b \"c\"", ""]);
    }
}
