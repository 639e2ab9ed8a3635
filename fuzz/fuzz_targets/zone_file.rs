//! Arbitrary text as a zone file (`--zones`, `static_zones::Zone::parse`): an error naming
//! the file, or a zone that parses the same twice and answers: its apex SOA authoritatively,
//! and for every owner name the file spells, NOERROR or NXDOMAIN, with the apex SOA in every
//! authoritative negative answer.
//!
//! Input: one control byte (bits 0-1 pick the origin), then the file's text.

#![no_main]

use std::path::Path;
use std::sync::Arc;

use clusterdns::static_zones::{Zone, ZoneSet};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;

const ORIGINS: [&str; 4] = [
    "example.internal.",
    "cluster.local.",
    "Corp.Example.",
    "a.b.c.d.example.",
];

const TYPES: [RecordType; 8] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::ANY,
    RecordType::CNAME,
    RecordType::NS,
    RecordType::MX,
    RecordType::TXT,
    RecordType::SRV,
];

fuzz_target!(|data: &[u8]| {
    let Some((&control, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let origin = Name::from_ascii(ORIGINS[usize::from(control & 3)]).expect("origin");
    let file = Path::new("zones/fuzz.zone");
    let zone = match Zone::parse(file, &origin, text) {
        Ok(z) => z,
        Err(e) => {
            assert_eq!(e.file, file, "error names the file");
            assert!(e.to_string().starts_with("zones/fuzz.zone"), "{e}");
            if let Some(line) = e.line {
                assert!(
                    line >= 1 && line <= text.lines().count().max(1) + 1,
                    "line {line} of a {}-line file",
                    text.lines().count()
                );
            }
            return;
        }
    };
    let again = Zone::parse(file, &origin, text).expect("parses the second time");
    assert!(zone.same_as(&again), "two parses of one file differ");
    assert!(zone.record_count() > 0, "a zone without records");
    let apex = zone.origin().clone();
    assert_eq!(apex, origin, "origin");
    let set = ZoneSet::new([Arc::new(zone)]);
    let soa = set
        .lookup(&origin, RecordType::SOA)
        .expect("the zone answers its apex");
    assert_eq!(soa.rcode, ResponseCode::NoError, "apex SOA");
    assert!(soa.authoritative, "apex SOA not authoritative");
    assert!(
        soa.answers.len() == 1 && soa.answers[0].record_type() == RecordType::SOA,
        "apex SOA answer: {:?}",
        soa.answers
    );
    for (i, line) in text.lines().enumerate().take(64) {
        let Some(owner) = line.split_whitespace().next() else {
            continue;
        };
        let Ok(name) = Name::parse(owner, Some(&origin)) else {
            continue;
        };
        let qtype = TYPES[i % TYPES.len()];
        let Some(answer) = set.lookup(&name, qtype) else {
            assert!(!origin.zone_of(&name), "{name} in the zone not answered");
            continue;
        };
        assert!(
            matches!(answer.rcode, ResponseCode::NoError | ResponseCode::NXDomain),
            "{name} {qtype}: {}",
            answer.rcode
        );
        if answer.authoritative && answer.answers.is_empty() {
            let soa = answer
                .authorities
                .iter()
                .find(|r| r.record_type() == RecordType::SOA);
            assert!(
                soa.is_some_and(|r| r.name == origin),
                "negative answer for {name} {qtype} without the apex SOA: {answer:?}"
            );
        }
    }
});
