//! Reverse names: the address an `in-addr.arpa` or `ip6.arpa` name spells, and the answer
//! for it from the snapshot's reverse table.

use std::net::IpAddr;

use hickory_proto::rr::{Name, RecordType};

use super::Snapshot;
use super::lookup::{Answer, AnswerData, AnswerZone, Rcode};
use super::name::{MAX_LABELS, name_labels};

/// The answer for a reverse name (`in-addr.arpa`, `ip6.arpa`): PTR for an address a Service or
/// an endpoint has, NXDOMAIN for others inside `--reverse-cidr`, NODATA for shorter names
/// inside one, and REFUSED (not ours: forwarded) for everything else.
pub(super) fn reverse_lookup<'s>(
    snap: &'s Snapshot,
    name: &[&[u8]],
    qtype: RecordType,
) -> Answer<'s> {
    let cidrs = &snap.config.reverse_cidrs;
    let Some(ip) = reverse_address_labels(name) else {
        // A shorter reverse name inside a configured CIDR: an empty non-terminal as far as
        // anyone may know (NODATA never denies the names below it).
        return match reverse_prefix(name) {
            Some(net) if cidrs.iter().any(|c| c.contains(&net)) => Answer {
                rcode: Rcode::NoError,
                data: AnswerData::Empty,
                zone: reverse_zone(net.addr()),
            },
            _ => Answer::refused(),
        };
    };
    let Some(targets) = snap.reverse.get(&ip) else {
        return if cidrs.iter().any(|c| c.contains(&ip)) {
            Answer {
                rcode: Rcode::NxDomain,
                data: AnswerData::Empty,
                zone: reverse_zone(ip),
            }
        } else {
            Answer::refused()
        };
    };
    let data = match qtype {
        RecordType::PTR | RecordType::ANY => AnswerData::Ptr {
            ip,
            targets: targets.answer(),
        },
        _ => AnswerData::Empty,
    };
    Answer {
        rcode: Rcode::NoError,
        data,
        zone: reverse_zone(ip),
    }
}

fn reverse_zone(ip: IpAddr) -> AnswerZone {
    if ip.is_ipv4() {
        AnswerZone::ReverseV4
    } else {
        AnswerZone::ReverseV6
    }
}

/// The network a partial reverse name spells: `96.10.in-addr.arpa.` is 10.96.0.0/16,
/// `d.f.ip6.arpa.` is fd00::/8. `None` for full names and anything else.
fn reverse_prefix(name: &[&[u8]]) -> Option<ipnet::IpNet> {
    let mut labels = name.iter().copied().rev();
    if !labels.next()?.eq_ignore_ascii_case(b"arpa") {
        return None;
    }
    let family = labels.next()?;
    if family.eq_ignore_ascii_case(b"in-addr") {
        let mut octets = [0u8; 4];
        let mut n = 0;
        for l in labels {
            if n >= 3 {
                return None;
            }
            octets[n] = octet(l)?;
            n += 1;
        }
        ipnet::Ipv4Net::new(octets.into(), (n * 8) as u8)
            .ok()
            .map(ipnet::IpNet::V4)
    } else if family.eq_ignore_ascii_case(b"ip6") {
        let mut bits: u128 = 0;
        let mut n = 0u32;
        for l in labels {
            let [c] = l else { return None };
            if n >= 31 {
                return None;
            }
            bits |= u128::from((*c as char).to_digit(16)?) << (124 - 4 * n);
            n += 1;
        }
        ipnet::Ipv6Net::new(bits.into(), (n * 4) as u8)
            .ok()
            .map(ipnet::IpNet::V6)
    } else {
        None
    }
}

/// One decimal octet of an `in-addr.arpa` name: digits only (no sign), no leading zero.
fn octet(label: &[u8]) -> Option<u8> {
    if label.is_empty()
        || !label.iter().all(u8::is_ascii_digit)
        || (label.len() > 1 && label[0] == b'0')
    {
        return None;
    }
    std::str::from_utf8(label).ok()?.parse().ok()
}

/// The address a full `in-addr.arpa.` (4 labels) or `ip6.arpa.` (32 nibbles) name spells.
pub fn reverse_address(name: &Name) -> Option<IpAddr> {
    let mut buf: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
    reverse_address_labels(name_labels(name, &mut buf)?)
}

pub(super) fn reverse_address_labels(name: &[&[u8]]) -> Option<IpAddr> {
    let mut labels = name.iter().copied().rev();
    let arpa = labels.next()?;
    let family = labels.next()?;
    if !arpa.eq_ignore_ascii_case(b"arpa") {
        return None;
    }
    if family.eq_ignore_ascii_case(b"in-addr") {
        if labels.len() != 4 {
            return None;
        }
        let mut octets = [0u8; 4];
        for (o, l) in octets.iter_mut().zip(labels) {
            *o = octet(l)?;
        }
        Some(IpAddr::from(octets))
    } else if family.eq_ignore_ascii_case(b"ip6") {
        if labels.len() != 32 {
            return None;
        }
        let mut bits: u128 = 0;
        for l in labels {
            let [c] = l else { return None };
            let nibble = (*c as char).to_digit(16)?;
            bits = (bits << 4) | u128::from(nibble);
        }
        Some(IpAddr::from(bits.to_be_bytes()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        let ok = |s: &str, ip: &str| {
            let n = Name::from_ascii(s).unwrap();
            assert_eq!(reverse_address(&n), Some(ip.parse().unwrap()), "{s}");
        };
        ok("10.0.96.10.in-addr.arpa.", "10.96.0.10");
        ok("10.0.96.10.IN-ADDR.ARPA.", "10.96.0.10");
        ok(
            "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.7.7.0.0.0.0.d.f.ip6.arpa.",
            "fd00:77:30::a",
        );
        for bad in [
            "0.96.10.in-addr.arpa.",
            "256.0.96.10.in-addr.arpa.",
            "01.0.96.10.in-addr.arpa.",
            // Found by the `name` fuzz target: `str::parse` accepts a sign.
            "+1.0.96.10.in-addr.arpa.",
            "+01.0.96.10.in-addr.arpa.",
            "1.0.96.10.in-addr.example.",
            "x.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.7.7.0.0.0.0.d.f.ip6.arpa.",
        ] {
            // Raw labels: `+1` is no hostname label, but a packet can carry it.
            let labels = bad.trim_end_matches('.').split('.').map(str::as_bytes);
            let mut name = Name::from_labels(labels).unwrap();
            name.set_fqdn(true);
            assert_eq!(reverse_address(&name), None, "{bad}");
        }
    }

    #[test]
    fn reverse_prefixes() {
        let net = |s: &str| {
            let name = Name::from_ascii(s).unwrap();
            let labels: Vec<&[u8]> = name.iter().collect();
            reverse_prefix(&labels).map(|n| n.to_string())
        };
        assert_eq!(net("96.10.in-addr.arpa."), Some("10.96.0.0/16".into()));
        assert_eq!(net("10.in-addr.arpa."), Some("10.0.0.0/8".into()));
        assert_eq!(net("in-addr.arpa."), Some("0.0.0.0/0".into()));
        assert_eq!(net("d.f.ip6.arpa."), Some("fd00::/8".into()));
        assert_eq!(
            net("10.0.96.10.in-addr.arpa."),
            None,
            "a full name is an address"
        );
        assert_eq!(net("x.10.in-addr.arpa."), None);
        assert_eq!(net("96.10.example."), None);
    }
}
