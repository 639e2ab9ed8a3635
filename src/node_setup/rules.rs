//! The rules the node set-up installs, whichever firewall renders them: node-cache's set
//! (`cmd/node-cache/app/cache_app.go`, `initIptables`) for each listen address and port, over
//! UDP and TCP.

use std::net::{IpAddr, SocketAddr};

/// Where a rule sits: the netfilter hook and the table kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Raw table, PREROUTING: queries arriving for the address.
    RawPrerouting,
    /// Raw table, OUTPUT: answers leaving from the address, and queries sent to it from the
    /// node itself (hostNetwork pods).
    RawOutput,
    /// Filter table, INPUT: accepts the untracked queries (a filter chain that accepts only
    /// established flows would drop them).
    FilterInput,
    /// Filter table, OUTPUT: accepts the untracked answers.
    FilterOutput,
}

impl Place {
    /// The chain's name, as iptables spells it.
    pub fn chain(self) -> &'static str {
        match self {
            Place::RawPrerouting => "PREROUTING",
            Place::RawOutput | Place::FilterOutput => "OUTPUT",
            Place::FilterInput => "INPUT",
        }
    }

    /// The table's name, as iptables spells it.
    pub fn table(self) -> &'static str {
        match self {
            Place::RawPrerouting | Place::RawOutput => "raw",
            Place::FilterInput | Place::FilterOutput => "filter",
        }
    }

    /// Whether the rule is a NOTRACK (raw table), else an ACCEPT (filter table).
    pub fn notrack(self) -> bool {
        matches!(self, Place::RawPrerouting | Place::RawOutput)
    }
}

/// Which end of the packet the rule matches: the address and port it is sent to, or from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Destination address and port: a query.
    To,
    /// Source address and port: an answer.
    From,
}

/// One rule: a place, a protocol, and the address and port matched at one end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Where it sits.
    pub place: Place,
    /// `udp` or `tcp`.
    pub proto: &'static str,
    /// Which end is matched.
    pub end: End,
    /// The listen address and port.
    pub addr: SocketAddr,
}

impl Rule {
    /// The address family's: IPv6 or not.
    pub fn v6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// The address, without the port.
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    /// A one-line description, also the nft rule's comment: `prerouting udp to
    /// 169.254.20.10:53 notrack`.
    pub fn describe(&self) -> String {
        let end = match self.end {
            End::To => "to",
            End::From => "from",
        };
        let verdict = if self.place.notrack() {
            "notrack"
        } else {
            "accept"
        };
        format!(
            "{} {} {} {end} {} {verdict}",
            self.place.table(),
            self.place.chain().to_lowercase(),
            self.proto,
            self.addr
        )
    }
}

/// node-cache's rules for each listen address: NOTRACK for queries to it (PREROUTING and, for
/// the node's own queries, OUTPUT) and its answers (OUTPUT); ACCEPT for both in the filter
/// table when `accept` (iptables only: see `nft.rs`). node-cache's two NOTRACK rules for its
/// health port are left out: the side port is not on the listen address.
pub fn rules(listen: &[SocketAddr], accept: bool) -> Vec<Rule> {
    let mut out = Vec::new();
    for &addr in listen {
        for proto in ["udp", "tcp"] {
            let mut add = |place, end| {
                out.push(Rule {
                    place,
                    proto,
                    end,
                    addr,
                });
            };
            add(Place::RawPrerouting, End::To);
            add(Place::RawOutput, End::From);
            add(Place::RawOutput, End::To);
            if accept {
                add(Place::FilterInput, End::To);
                add(Place::FilterOutput, End::From);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_cache_set_per_address_and_protocol() {
        let listen: Vec<SocketAddr> = vec![
            "169.254.20.10:53".parse().unwrap(),
            "[fd00::a]:53".parse().unwrap(),
        ];
        assert_eq!(rules(&listen, true).len(), 2 * 2 * 5);
        let nft = rules(&listen, false);
        assert_eq!(nft.len(), 2 * 2 * 3);
        assert!(nft.iter().all(|r| r.place.notrack()));
        assert_eq!(
            nft[0].describe(),
            "raw prerouting udp to 169.254.20.10:53 notrack"
        );
        assert_eq!(
            nft.last().unwrap().describe(),
            "raw output tcp to [fd00::a]:53 notrack"
        );
    }
}
