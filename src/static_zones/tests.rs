//! Lookups: tables of (question) → answer as zone-file text.

use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use super::{Zone, ZoneAnswer, ZoneSet};

const EXAMPLE: &str = include_str!("../../zones/example.internal.zone");

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn zone(origin: &str, text: &str) -> Arc<Zone> {
    let file = format!("{origin}zone");
    match Zone::parse(Path::new(&file), &name(origin), text) {
        Ok(zone) => Arc::new(zone),
        Err(e) => panic!("{e}"),
    }
}

fn example() -> ZoneSet {
    ZoneSet::new([zone("example.internal.", EXAMPLE)])
}

/// The answer as text: the rcode (and `aa`), then one record a line, authority records
/// prefixed `auth:` and additional ones `add:`.
fn show(a: &ZoneAnswer) -> String {
    let rcode = match a.rcode {
        ResponseCode::NoError => "NOERROR".to_string(),
        ResponseCode::NXDomain => "NXDOMAIN".to_string(),
        other => format!("{other:?}"),
    };
    let mut out = format!("{rcode}{}\n", if a.authoritative { " aa" } else { "" });
    for r in &a.answers {
        out += &format!("{r}\n");
    }
    for r in &a.authorities {
        out += &format!("auth: {r}\n");
    }
    for r in &a.additionals {
        out += &format!("add: {r}\n");
    }
    out
}

fn ask(set: &ZoneSet, qname: &str, qtype: RecordType) -> String {
    match set.lookup(&name(qname), qtype) {
        Some(a) => show(&a),
        None => "none\n".into(),
    }
}

/// Checks a table of (name, type, expected answer text).
fn check(set: &ZoneSet, table: &[(&str, RecordType, &str)]) {
    for (qname, qtype, want) in table {
        let got = ask(set, qname, *qtype);
        let want = want
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .fold(String::new(), |s, l| s + l + "\n");
        assert_eq!(got, want, "{qname} {qtype}");
    }
}

const NEG: &str = "auth: example.internal. 60 IN SOA ns1.example.internal. hostmaster.example.internal. 2024060101 3600 600 604800 60";

#[test]
fn example_file_parses() {
    let set = example();
    assert_eq!(set.origins(), [name("example.internal.")]);
    let zone = set
        .get(&name("example.internal."))
        .map(|z| z.record_count());
    assert_eq!(zone, Some(17));
}

#[test]
fn positive_negative_and_case() {
    use RecordType::*;
    let nodata = format!("NOERROR aa\n{NEG}");
    let nxdomain = format!("NXDOMAIN aa\n{NEG}");
    check(
        &example(),
        &[
            (
                "www.example.internal.",
                A,
                "NOERROR aa\nwww.example.internal. 300 IN A 10.0.0.80",
            ),
            (
                "www.example.internal.",
                AAAA,
                "NOERROR aa\nwww.example.internal. 300 IN AAAA fd00::80",
            ),
            // The owner is spelled as asked (resolvers that randomise case compare it).
            (
                "WwW.Example.INTERNAL.",
                A,
                "NOERROR aa\nWwW.Example.INTERNAL. 300 IN A 10.0.0.80",
            ),
            (
                "example.internal.",
                MX,
                "NOERROR aa\nexample.internal. 300 IN MX 10 mail.example.internal.",
            ),
            (
                "example.internal.",
                TXT,
                "NOERROR aa\nexample.internal. 300 IN TXT v=spf1 mx -all",
            ),
            (
                "_http._tcp.www.example.internal.",
                SRV,
                "NOERROR aa\n_http._tcp.www.example.internal. 300 IN SRV 0 5 80 www.example.internal.",
            ),
            // NODATA: the name exists with other types.
            ("www.example.internal.", MX, &nodata),
            ("ns1.example.internal.", TXT, &nodata),
            // NXDOMAIN, also below a name that does not exist (RFC 8020).
            ("nope.example.internal.", A, &nxdomain),
            ("a.nope.example.internal.", A, &nxdomain),
            ("a.www.example.internal.", A, &nxdomain),
            // Outside every zone served.
            ("example.com.", A, "none"),
            ("internal.", SOA, "none"),
            (".", NS, "none"),
        ],
    );
}

#[test]
fn apex_soa_ns_and_any() {
    use RecordType::*;
    check(
        &example(),
        &[
            (
                "example.internal.",
                SOA,
                "NOERROR aa
                 example.internal. 3600 IN SOA ns1.example.internal. hostmaster.example.internal. 2024060101 3600 600 604800 60",
            ),
            (
                "Example.Internal.",
                NS,
                "NOERROR aa
                 Example.Internal. 300 IN NS ns1.example.internal.
                 Example.Internal. 300 IN NS ns2.example.net.
                 add: ns1.example.internal. 300 IN A 10.0.0.53
                 add: ns1.example.internal. 300 IN AAAA fd00::53",
            ),
            (
                "example.internal.",
                ANY,
                "NOERROR aa
                 example.internal. 300 IN A 10.0.0.10
                 example.internal. 300 IN NS ns1.example.internal.
                 example.internal. 300 IN NS ns2.example.net.
                 example.internal. 3600 IN SOA ns1.example.internal. hostmaster.example.internal. 2024060101 3600 600 604800 60
                 example.internal. 300 IN MX 10 mail.example.internal.
                 example.internal. 300 IN TXT v=spf1 mx -all",
            ),
            (
                "www.example.internal.",
                ANY,
                "NOERROR aa
                 www.example.internal. 300 IN A 10.0.0.80
                 www.example.internal. 300 IN AAAA fd00::80",
            ),
            ("apps.example.internal.", ANY, &format!("NOERROR aa\n{NEG}")),
        ],
    );
}

#[test]
fn cnames_are_followed_in_the_zone() {
    use RecordType::*;
    check(
        &example(),
        &[
            (
                "Web.example.internal.",
                AAAA,
                "NOERROR aa
                 Web.example.internal. 300 IN CNAME www.example.internal.
                 www.example.internal. 300 IN AAAA fd00::80",
            ),
            // The CNAME itself, and ANY, are not followed.
            (
                "web.example.internal.",
                CNAME,
                "NOERROR aa\nweb.example.internal. 300 IN CNAME www.example.internal.",
            ),
            (
                "web.example.internal.",
                ANY,
                "NOERROR aa\nweb.example.internal. 300 IN CNAME www.example.internal.",
            ),
            // NODATA at the target carries the SOA.
            (
                "web.example.internal.",
                MX,
                &format!(
                    "NOERROR aa\nweb.example.internal. 300 IN CNAME www.example.internal.\n{NEG}"
                ),
            ),
            // A target outside the zone is left to the client.
            (
                "shop.example.internal.",
                A,
                "NOERROR aa\nshop.example.internal. 300 IN CNAME shop.example.com.",
            ),
        ],
    );
}

const CHAINS: &str = "$TTL 60
@ SOA ns hostmaster 1 2 3 4 5
@ NS ns
ns A 192.0.2.1
loop1 CNAME loop2
loop2 CNAME Loop1
c1 CNAME c2
c2 CNAME c3
c3 CNAME c4
c4 CNAME c5
c5 CNAME c6
c6 CNAME c7
c7 CNAME c8
c8 CNAME c9
c9 CNAME c10
c10 A 192.0.2.10
dangling CNAME missing
tosub CNAME host.sub
sub NS ns.sub
ns.sub A 192.0.2.53
towild CNAME x.wild
*.wild CNAME ns
";

#[test]
fn cname_chains_loops_and_limits() {
    use RecordType::*;
    let set = ZoneSet::new([zone("chain.test.", CHAINS)]);
    check(
        &set,
        &[
            // The loop is noticed whatever the spelling.
            (
                "LOOP1.chain.test.",
                A,
                "NOERROR aa
                 LOOP1.chain.test. 60 IN CNAME loop2.chain.test.
                 loop2.chain.test. 60 IN CNAME loop1.chain.test.",
            ),
            // RFC 6604: the rcode is the last name's.
            (
                "dangling.chain.test.",
                A,
                "NXDOMAIN aa
                 dangling.chain.test. 60 IN CNAME missing.chain.test.
                 auth: chain.test. 5 IN SOA ns.chain.test. hostmaster.chain.test. 1 2 3 4 5",
            ),
            // Into a delegation: the CNAME, then the referral.
            (
                "tosub.chain.test.",
                A,
                "NOERROR aa
                 tosub.chain.test. 60 IN CNAME host.sub.chain.test.
                 auth: sub.chain.test. 60 IN NS ns.sub.chain.test.
                 add: ns.sub.chain.test. 60 IN A 192.0.2.53",
            ),
            // Into a wildcard, itself a CNAME.
            (
                "towild.chain.test.",
                A,
                "NOERROR aa
                 towild.chain.test. 60 IN CNAME x.wild.chain.test.
                 x.wild.chain.test. 60 IN CNAME ns.chain.test.
                 ns.chain.test. 60 IN A 192.0.2.1",
            ),
        ],
    );
    let long = set
        .lookup(&name("c1.chain.test."), A)
        .map(|a| a.answers.len());
    assert_eq!(long, Some(super::MAX_CNAME_CHAIN));
    let short = set
        .lookup(&name("c3.chain.test."), A)
        .map(|a| a.answers.len());
    assert_eq!(short, Some(8), "7 CNAMEs and the address");
}

#[test]
fn wildcards_and_empty_non_terminals() {
    use RecordType::*;
    let nodata = format!("NOERROR aa\n{NEG}");
    check(
        &example(),
        &[
            (
                "a.apps.example.internal.",
                A,
                "NOERROR aa\na.apps.example.internal. 300 IN A 10.0.1.1",
            ),
            (
                "X.Y.apps.example.internal.",
                A,
                "NOERROR aa\nX.Y.apps.example.internal. 300 IN A 10.0.1.1",
            ),
            (
                "*.apps.example.internal.",
                A,
                "NOERROR aa\n*.apps.example.internal. 300 IN A 10.0.1.1",
            ),
            // The wildcard has no AAAA: NODATA.
            ("a.apps.example.internal.", AAAA, &nodata),
            // Empty non-terminals exist: NODATA, not NXDOMAIN.
            ("apps.example.internal.", A, &nodata),
            ("_tcp.www.example.internal.", SRV, &nodata),
            // A wildcard covers only names below its parent.
            ("a.www.example.internal.", A, &format!("NXDOMAIN aa\n{NEG}")),
        ],
    );
}

#[test]
fn delegations_refer() {
    use RecordType::*;
    let referral = |owner: &str| {
        format!(
            "NOERROR
             auth: {owner} 300 IN NS ns.team.example.internal.
             add: ns.team.example.internal. 300 IN A 10.0.2.53"
        )
    };
    check(
        &example(),
        &[
            (
                "team.example.internal.",
                A,
                &referral("team.example.internal."),
            ),
            (
                "team.example.internal.",
                NS,
                &referral("team.example.internal."),
            ),
            (
                "host.Team.example.internal.",
                AAAA,
                &referral("Team.example.internal."),
            ),
            // Glue is not authoritative data: the referral again.
            (
                "ns.team.example.internal.",
                A,
                &referral("team.example.internal."),
            ),
            // DS lives on the parent side of the cut.
            ("team.example.internal.", DS, &format!("NOERROR aa\n{NEG}")),
        ],
    );
}

#[test]
fn the_longest_origin_answers() {
    let child =
        "$TTL 30\n@ SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns A 192.0.2.9\nhost A 192.0.2.10\n";
    let set = ZoneSet::new([
        zone("example.internal.", EXAMPLE),
        zone("team.example.internal.", child),
    ]);
    check(
        &set,
        &[
            (
                "host.team.example.internal.",
                RecordType::A,
                "NOERROR aa\nhost.team.example.internal. 30 IN A 192.0.2.10",
            ),
            (
                "www.example.internal.",
                RecordType::A,
                "NOERROR aa\nwww.example.internal. 300 IN A 10.0.0.80",
            ),
        ],
    );
    assert_eq!(set.len(), 2);
}

#[test]
fn strange_questions_are_answered() {
    let set = example();
    let long = format!("{}example.internal.", "a.".repeat(100));
    for q in [
        long.as_str(),
        "*.example.internal.",
        "\\..example.internal.",
        "example.internal",
    ] {
        assert!(set.lookup(&name(q), RecordType::A).is_some(), "{q}");
    }
}

#[test]
fn covers_wire_matches_whole_labels_of_a_served_origin() {
    let set = ZoneSet::new([zone("example.internal.", EXAMPLE)]);
    let wire = |name: &str| {
        let mut w = Vec::new();
        for label in name.split('.').filter(|l| !l.is_empty()) {
            w.push(u8::try_from(label.len()).unwrap());
            w.extend(label.bytes());
        }
        w.push(0);
        w
    };
    assert!(set.covers_wire(&wire("example.internal.")));
    assert!(set.covers_wire(&wire("a.b.example.internal.")));
    assert!(!set.covers_wire(&wire("notexample.internal.")));
    assert!(!set.covers_wire(&wire("internal.")));
    assert!(!set.covers_wire(&wire(".")));
    assert!(!ZoneSet::empty().covers_wire(&wire("example.internal.")));
}
