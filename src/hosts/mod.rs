//! Host entries, CoreDNS's `hosts` plugin: `/etc/hosts`-format text (`ADDR NAME [ALIAS...]`,
//! `#` comments, IPv4 and IPv6) from `--hosts FILE` (watched, `watch`) or a ConfigMap key
//! (`--hosts-configmap`, k3s's `NodeHosts`), parsed into an immutable [`HostsTable`].
//!
//! A name with entries is answered here: its A and AAAA records, and NODATA (NOERROR, no
//! records) for any other type or for a family it has no address of, as CoreDNS answers; a
//! name without entries goes on down the chain. Every address also gets PTR records to its
//! names (reverse names), unless `--hosts-no-reverse`. A line that does not parse is reported
//! with its line number and skipped; the other lines are served.

mod watch;

pub use watch::{HostsFile, watch};

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// A line that was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostsError {
    /// Its line number, from 1.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// How entries are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostsOptions {
    /// The TTL of every record (`--hosts-ttl`).
    pub ttl: u32,
    /// Whether addresses get PTR records (not `--hosts-no-reverse`).
    pub reverse: bool,
}

impl Default for HostsOptions {
    fn default() -> Self {
        Self {
            ttl: 3600,
            reverse: true,
        }
    }
}

/// Parsed host entries, ready to answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostsTable {
    ttl: u32,
    /// Addresses by name (lower case, final dot), in file order.
    names: HashMap<String, Vec<IpAddr>>,
    /// Names by reverse name (lower case, final dot), in file order.
    reverse: HashMap<String, Vec<Name>>,
}

/// `name` in lower case with a final dot, the tables' key.
fn key(name: &Name) -> String {
    let mut text = name.to_lowercase().to_ascii();
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

/// Parses one line's names: each a domain name, fully qualified.
fn names(words: &[&str]) -> Result<Vec<Name>, String> {
    if words.is_empty() {
        return Err("an address without a name".to_string());
    }
    words
        .iter()
        .map(|w| {
            let mut n = Name::from_ascii(w).map_err(|e| format!("{w:?} is not a name: {e}"))?;
            n.set_fqdn(true);
            Ok(n)
        })
        .collect()
}

impl HostsTable {
    /// Parses `text`: the table of the lines that parse, and why each other one did not.
    pub fn parse(text: &str, options: HostsOptions) -> (Self, Vec<HostsError>) {
        let mut table = Self {
            ttl: options.ttl,
            ..Self::default()
        };
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default();
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some((addr, rest)) = words.split_first() else {
                continue;
            };
            let parsed = addr
                .parse::<IpAddr>()
                .map_err(|_| format!("{addr:?} is not an IP address"))
                .and_then(|a| Ok((a, names(rest)?)));
            match parsed {
                Ok((addr, names)) => table.add(addr, &names, options.reverse),
                Err(reason) => errors.push(HostsError {
                    line: i + 1,
                    reason,
                }),
            }
        }
        (table, errors)
    }

    /// Adds one line's entries.
    fn add(&mut self, addr: IpAddr, names: &[Name], reverse: bool) {
        let addr = addr.to_canonical();
        for name in names {
            let addrs = self.names.entry(key(name)).or_default();
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if reverse {
            let targets = self.reverse.entry(key(&Name::from(addr))).or_default();
            for name in names {
                if !targets.contains(name) {
                    targets.push(name.clone());
                }
            }
        }
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.reverse.is_empty()
    }

    /// How many names have entries.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether `name` (lower case, final dot) has entries, forward or reverse.
    pub fn covers(&self, name: &str) -> bool {
        self.names.contains_key(name) || self.reverse.contains_key(name)
    }

    /// The records answering `name`/`qtype`, owned by `name` as asked: empty for NODATA;
    /// `None` when `name` has no entries.
    pub fn lookup(&self, name: &Name, qtype: RecordType) -> Option<Vec<Record>> {
        if self.is_empty() {
            return None;
        }
        let k = key(name);
        let rdata: Vec<RData> = if let Some(addrs) = self.names.get(&k) {
            addrs
                .iter()
                .filter_map(|a| match (a, qtype) {
                    (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(*v4))),
                    (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(*v6))),
                    _ => None,
                })
                .collect()
        } else {
            let targets = self.reverse.get(&k)?;
            match qtype {
                RecordType::PTR => targets.iter().map(|t| RData::PTR(PTR(t.clone()))).collect(),
                _ => Vec::new(),
            }
        };
        Some(
            rdata
                .into_iter()
                .map(|d| Record::from_rdata(name.clone(), self.ttl, d))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    const TEXT: &str = "# k3s NodeHosts\n\
        10.0.0.5 node-a node-a.local # trailing comment\n\
        fd00::5 node-a\n\
        not-an-address node-b\n\
        10.0.0.6\n\
        \n\
        10.0.0.7 node-c\n";

    #[test]
    fn parses_and_answers() {
        let (t, errors) = HostsTable::parse(TEXT, HostsOptions::default());
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(t.len(), 3);
        let a = t.lookup(&n("Node-A."), RecordType::A).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].name, n("Node-A."));
        assert_eq!(a[0].ttl, 3600);
        assert_eq!(t.lookup(&n("node-a"), RecordType::AAAA).unwrap().len(), 1);
        assert_eq!(t.lookup(&n("node-c"), RecordType::AAAA), Some(Vec::new()));
        assert_eq!(t.lookup(&n("node-c"), RecordType::MX), Some(Vec::new()));
        assert_eq!(t.lookup(&n("node-b"), RecordType::A), None);
        let ptr = t
            .lookup(&n("5.0.0.10.in-addr.arpa."), RecordType::PTR)
            .unwrap();
        assert_eq!(ptr.len(), 2);
        assert!(t.covers("node-a.local."));
        assert!(t.covers("5.0.0.10.in-addr.arpa."));
    }

    #[test]
    fn no_reverse() {
        let options = HostsOptions {
            ttl: 60,
            reverse: false,
        };
        let (t, _) = HostsTable::parse(TEXT, options);
        assert_eq!(
            t.lookup(&n("5.0.0.10.in-addr.arpa."), RecordType::PTR),
            None
        );
        assert_eq!(t.lookup(&n("node-c"), RecordType::A).unwrap()[0].ttl, 60);
    }
}
