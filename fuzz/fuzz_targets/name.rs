//! Arbitrary names through the name classifier and the zone lookup (whose reverse-name parser,
//! `zone::lookup::reverse_address`, is private to `zone` and reached through `lookup`).
//!
//! Input: one control byte, then the name. Control bits 0-1 pick how the name is built
//! (0 wire format, 1 `Name::from_ascii`, 2 `Name::from_utf8`, 3 raw labels split at `.`),
//! bits 2-3 the zone origin, bits 4-7 the query type.
//!
//! Checked: never a panic; `classify` matches exactly when the origin is a suffix, counts the
//! origin's labels, and its result spells the name back; `lookup` answers from the cluster zone
//! for cluster names and from a reverse zone only for a well-formed reverse name of an address
//! the zone knows; every rendered answer is owned by the query name.

#![no_main]

use std::net::IpAddr;

use clusterdns::zone::{ClusterName, Rcode, classify, lookup, render};
use clusterdns_fuzz::{EXAMPLE, ZONE};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use libfuzzer_sys::fuzz_target;

const ORIGINS: [&str; 4] = ["cluster.local.", "cluster.local.", "local.", "a.b-c.d.e."];

const TYPES: [RecordType; 16] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::PTR,
    RecordType::TXT,
    RecordType::SOA,
    RecordType::NS,
    RecordType::ANY,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::PTR,
    RecordType::ANY,
    RecordType::Unknown(65280),
];

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let Some(mut name) = build_name(control & 3, rest) else {
        return;
    };
    // Names from the wire are fully qualified; the text and label forms may not be.
    name.set_fqdn(true);
    let origin = Name::from_ascii(ORIGINS[usize::from(control >> 2 & 3)]).expect("origin");
    check_classify(&name, &origin);
    if origin.to_ascii() == format!("{ZONE}.") {
        check_lookup(&name, TYPES[usize::from(control >> 4)]);
    }
});

fn build_name(mode: u8, bytes: &[u8]) -> Option<Name> {
    match mode {
        0 => Name::read(&mut BinDecoder::new(bytes)).ok(),
        1 => Name::from_ascii(std::str::from_utf8(bytes).ok()?).ok(),
        2 => Name::from_utf8(std::str::from_utf8(bytes).ok()?).ok(),
        _ => Name::from_labels(bytes.split(|b| *b == b'.')).ok(),
    }
}

fn labels(name: &Name) -> Vec<&[u8]> {
    name.iter().collect()
}

fn check_classify(name: &Name, origin: &Name) {
    let all = labels(name);
    let zone = labels(origin);
    let suffix = all.len() >= zone.len()
        && all[all.len() - zone.len()..]
            .iter()
            .zip(&zone)
            .all(|(a, b)| a.eq_ignore_ascii_case(b));
    let Some((class, n)) = classify(name, origin) else {
        assert!(!suffix, "{name} is under {origin} but classified outside");
        return;
    };
    assert!(
        suffix,
        "{name} is not under {origin} but classified {class:?}"
    );
    assert_eq!(n, zone.len(), "zone label count");
    assert!(n <= all.len(), "more zone labels than name labels");
    let left = &all[..all.len() - n];
    let Some(spelled) = spell(class) else {
        return;
    };
    assert_eq!(
        spelled.len(),
        left.len(),
        "{name}: {class:?} spells {} labels",
        spelled.len()
    );
    for (want, got) in spelled.iter().zip(left) {
        let ok = match want {
            Spelled::Keyword(k) => got.eq_ignore_ascii_case(k.as_bytes()),
            Spelled::OneOf(ks) => ks.iter().any(|k| got.eq_ignore_ascii_case(k.as_bytes())),
            Spelled::Exact(e) => got == e,
        };
        assert!(ok, "{name}: {class:?} does not spell it back");
    }
}

enum Spelled {
    Keyword(&'static str),
    OneOf(&'static [&'static str]),
    Exact(Vec<u8>),
}

/// The labels left of the zone that `class` stands for, left to right (`None` for `Nothing`).
fn spell(class: ClusterName<'_>) -> Option<Vec<Spelled>> {
    use Spelled::{Exact, Keyword, OneOf};
    let e = |l: &[u8]| Exact(l.to_vec());
    let u = |l: &[u8]| Exact([b"_", l].concat());
    Some(match class {
        ClusterName::Apex => vec![],
        ClusterName::DnsVersion => vec![Keyword("dns-version")],
        ClusterName::DnsParent => vec![Keyword("dns")],
        ClusterName::Nameserver => vec![Keyword("ns"), Keyword("dns")],
        ClusterName::SvcRoot => vec![Keyword("svc")],
        ClusterName::PodRoot => vec![Keyword("pod")],
        ClusterName::Namespace(ns) => vec![e(ns), OneOf(&["svc", "pod"])],
        ClusterName::Service { ns, svc } => vec![e(svc), e(ns), Keyword("svc")],
        ClusterName::ServiceChild { ns, svc, label } => {
            vec![e(label), e(svc), e(ns), Keyword("svc")]
        }
        ClusterName::Srv {
            ns,
            svc,
            port,
            proto,
        } => vec![u(port), u(proto), e(svc), e(ns), Keyword("svc")],
        ClusterName::Pod { ns, label } => vec![e(label), e(ns), Keyword("pod")],
        ClusterName::Nothing => return None,
    })
}

fn check_lookup(name: &Name, qtype: RecordType) {
    let snapshot = &**EXAMPLE;
    let answer = lookup(snapshot, name, qtype);
    let rendered = render(snapshot, &answer, name);
    for record in &rendered.answers {
        assert!(
            record.name == *name,
            "answer owner {} for {name}",
            record.name
        );
    }
    let classified = classify(name, &snapshot.config.origin);
    let known = reverse_name(name).filter(|ip| snapshot.reverse.get(ip).is_some());
    // `zone::AnswerZone` is not exported; its `Debug` form names the variant.
    let zone = format!("{:?}", answer.zone);
    if let Some(labels) = zone
        .strip_prefix("Cluster { labels: ")
        .and_then(|l| l.strip_suffix(" }"))
    {
        let labels: usize = labels.parse().expect("label count");
        assert_eq!(
            classified.map(|(_, n)| n),
            Some(labels),
            "{name}: cluster zone"
        );
    } else if let Some(family) = zone.strip_prefix("Reverse") {
        assert!(
            classified.is_none(),
            "{name}: reverse answer for a cluster name"
        );
        assert_eq!(answer.rcode, Rcode::NoError);
        match known {
            Some(ip) => assert_eq!(ip.is_ipv4(), family == "V4", "{name}: {zone}"),
            None => panic!("{name}: reverse answer for a name that spells no known address"),
        }
    } else {
        assert_eq!(zone, "None");
        assert!(classified.is_none(), "{name}: cluster name refused");
        assert_eq!(answer.rcode, Rcode::Refused);
        assert!(known.is_none(), "{name}: known address {known:?} refused");
    }
}

/// A well-formed reverse name (RFC 1035 §3.5, RFC 3596 §2.5): four decimal octets without
/// sign or leading zeros under `in-addr.arpa.`, or 32 hex nibbles under `ip6.arpa.`.
fn reverse_name(name: &Name) -> Option<IpAddr> {
    let all = labels(name);
    let (arpa, rest) = all.split_last()?;
    let (family, spelled) = rest.split_last()?;
    if !arpa.eq_ignore_ascii_case(b"arpa") {
        return None;
    }
    if family.eq_ignore_ascii_case(b"in-addr") && spelled.len() == 4 {
        let mut octets = [0u8; 4];
        for (o, l) in octets.iter_mut().zip(spelled.iter().rev()) {
            let digits = l.len() <= 3 && !l.is_empty() && l.iter().all(u8::is_ascii_digit);
            if !digits || (l.len() > 1 && l[0] == b'0') {
                return None;
            }
            *o = std::str::from_utf8(l).ok()?.parse().ok()?;
        }
        return Some(IpAddr::from(octets));
    }
    if family.eq_ignore_ascii_case(b"ip6") && spelled.len() == 32 {
        let mut bits = 0u128;
        for l in spelled.iter().rev() {
            let [c] = l else { return None };
            bits = bits << 4 | u128::from((*c as char).to_digit(16)?);
        }
        return Some(IpAddr::from(bits.to_be_bytes()));
    }
    None
}
