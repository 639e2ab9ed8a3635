//! The rules through nftables: one table of clusterdns's own, `inet clusterdns-<interface>`,
//! with a `prerouting` and an `output` chain at the raw priority (-300, before conntrack),
//! each rule commented with its description. Installing replaces the table in one
//! transaction, checking lists it, tearing down deletes it.
//!
//! Only node-cache's NOTRACK rules: its filter-table ACCEPT rules have no nftables
//! equivalent, as an `accept` in this table does not stop another table's base chain on the
//! same hook from dropping the packet. A node whose firewall drops untracked packets needs
//! its own accept rule for the listen addresses (or the iptables path, `--node-firewall
//! iptables`, which inserts them in the filter table).

use serde_json::Value;

use super::SetupError;
use super::exec::{check, failed, run};
use super::rules::{End, Place, Rule};

/// The table of interface `name`'s rules.
pub fn table(name: &str) -> String {
    format!("clusterdns-{name}")
}

/// Whether `nft` runs and can read the ruleset here.
pub async fn works() -> Result<(), SetupError> {
    check("nft", &["list", "tables"], None).await.map(|_| ())
}

/// One rule in nft's syntax.
fn render(rule: &Rule) -> String {
    let (family, proto) = (if rule.v6() { "ip6" } else { "ip" }, rule.proto);
    let (addr, port) = match rule.end {
        End::To => ("daddr", "dport"),
        End::From => ("saddr", "sport"),
    };
    format!(
        "{family} {addr} {} {proto} {port} {} notrack comment \"{}\"",
        rule.ip(),
        rule.addr.port(),
        rule.describe()
    )
}

/// The transaction that replaces the table with one holding `rules` (the empty `table`
/// first, so the `delete` succeeds when there was none).
fn script(table: &str, rules: &[Rule]) -> String {
    let mut s =
        format!("table inet {table} {{}}\ndelete table inet {table}\ntable inet {table} {{\n");
    for (chain, place) in [
        ("prerouting", Place::RawPrerouting),
        ("output", Place::RawOutput),
    ] {
        s.push_str(&format!(
            "  chain {chain} {{\n    type filter hook {chain} priority raw; policy accept;\n"
        ));
        for r in rules.iter().filter(|r| r.place == place) {
            s.push_str(&format!("    {}\n", render(r)));
        }
        s.push_str("  }\n");
    }
    s.push_str("}\n");
    s
}

/// Installs `rules` (NOTRACK ones only; see the module's note), replacing the table.
pub async fn install(table: &str, rules: &[Rule]) -> Result<(), SetupError> {
    let notrack: Vec<Rule> = rules
        .iter()
        .copied()
        .filter(|r| r.place.notrack())
        .collect();
    check("nft", &["-f", "-"], Some(&script(table, &notrack)))
        .await
        .map(|_| ())
}

/// The descriptions of `rules` missing from the table (all of them when the table is gone).
pub async fn missing(table: &str, rules: &[Rule]) -> Result<Vec<String>, SetupError> {
    let args = ["-j", "list", "table", "inet", table];
    let ran = run("nft", &args, None).await?;
    let found: Vec<String> = if ran.ok() {
        let v: Value = serde_json::from_str(&ran.stdout).map_err(|e| SetupError::Output {
            command: "nft -j list table".to_owned(),
            reason: e.to_string(),
        })?;
        v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["rule"]["comment"].as_str().map(str::to_owned))
            .collect()
    } else if ran.stderr.contains("No such file or directory") {
        Vec::new()
    } else {
        return Err(failed("nft", &args, &ran));
    };
    Ok(rules
        .iter()
        .filter(|r| r.place.notrack())
        .map(Rule::describe)
        .filter(|d| !found.contains(d))
        .collect())
}

/// Deletes the table; nothing when it is already gone.
pub async fn remove(table: &str) -> Result<(), SetupError> {
    let args = ["delete", "table", "inet", table];
    let ran = run("nft", &args, None).await?;
    if ran.ok() || ran.stderr.contains("No such file or directory") {
        Ok(())
    } else {
        Err(failed("nft", &args, &ran))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_setup::rules::rules;

    #[test]
    fn one_table_two_raw_chains() {
        let listen = ["169.254.20.10:53".parse().unwrap()];
        let s = script("clusterdns-nodelocaldns", &rules(&listen, false));
        assert!(s.starts_with("table inet clusterdns-nodelocaldns {}\ndelete table"));
        assert!(s.contains("type filter hook prerouting priority raw;"));
        assert!(s.contains(
            "ip daddr 169.254.20.10 udp dport 53 notrack comment \
             \"raw prerouting udp to 169.254.20.10:53 notrack\""
        ));
        assert!(s.contains("ip saddr 169.254.20.10 tcp sport 53 notrack"));
        assert_eq!(s.matches("notrack comment").count(), 6);
    }
}
