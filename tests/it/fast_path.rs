//! The fast path (`server::fast::answer`, bytes in, bytes out) against the general path
//! (hickory's decoder, `DnsHandler`, hickory's encoder) on the example cluster: for every name
//! of every shape in `examples/cluster`, many query types, spellings, flags and EDNS options,
//! over UDP and TCP, both paths answer the same message — same header, question, records
//! (spelling included) and OPT. And the queries the fast path must leave alone it leaves alone.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use clusterdns::cluster::{ALL_KINDS, Cluster, Delta};
use clusterdns::metrics::Metrics;
use clusterdns::server::fast::{self, Options};
use clusterdns::server::{DnsHandler, answer_general};
use clusterdns::source::manifests::ManifestSource;
use clusterdns::zone::{PodsMode, Snapshot, ZoneConfig};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_server::net::xfer::Protocol;

fn snapshot(pods: PodsMode, ttl: u32, synced: bool) -> Arc<Snapshot> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster");
    let config = Arc::new(ZoneConfig::new("cluster.local", ttl, pods).unwrap());
    let mut cluster = Cluster::new(config, &ALL_KINDS);
    let scan = ManifestSource::new(&dir).scan(true).unwrap();
    assert!(scan.errors.is_empty(), "{:?}", scan.errors);
    let mut deltas = scan.deltas;
    if synced {
        deltas.extend(ALL_KINDS.map(Delta::Synced));
    }
    cluster.apply(deltas);
    cluster.snapshot()
}

fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa."
        }
    }
}

/// Every name of the example cluster's shapes, and negatives around them.
fn names(snap: &Snapshot) -> Vec<String> {
    let mut names: Vec<String> = [
        "cluster.local.",
        "dns-version.cluster.local.",
        "dns.cluster.local.",
        "ns.dns.cluster.local.",
        "svc.cluster.local.",
        "pod.cluster.local.",
        "shop.svc.cluster.local.",
        "nosuchns.svc.cluster.local.",
        "shop.pod.cluster.local.",
        "10-244-1-30.data.pod.cluster.local.",
        "fd00-1--5.data.pod.cluster.local.",
        "10-244-1-30.nosuchns.pod.cluster.local.",
        "1-2-3.data.pod.cluster.local.",
        "nope.shop.svc.cluster.local.",
        "foo.cluster.local.",
        "a.b.c.d.e.f.g.cluster.local.",
        "_x._tcp.nope.shop.svc.cluster.local.",
        "99.99.96.10.in-addr.arpa.",
        "96.10.in-addr.arpa.",
        "10.in-addr.arpa.",
        "1.0.0.127.in-addr.arpa.",
        "example.com.",
    ]
    .map(str::to_owned)
    .to_vec();
    for svc in snap.services.iter() {
        let base = format!("{}.{}.svc.cluster.local.", svc.name, svc.namespace);
        for e in svc.endpoints.iter() {
            names.push(format!("{}.{base}", e.label_str()));
        }
        for p in svc.ports.iter() {
            names.push(format!("_{}._{}.{base}", p.name(), p.protocol().label()));
            names.push(format!("_{}.{base}", p.protocol().label()));
            names.push(format!("_{}._sctp.{base}", p.name()));
        }
        names.push(format!("nosuchendpoint.{base}"));
        names.push(base);
    }
    for ip in snap.reverse.addresses() {
        names.push(reverse_name(ip));
    }
    names
}

/// `name` with every other letter upper case.
fn mixed_case(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

const TYPES: [RecordType; 12] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::PTR,
    RecordType::ANY,
    RecordType::SOA,
    RecordType::NS,
    RecordType::TXT,
    RecordType::MX,
    RecordType::CNAME,
    RecordType::HTTPS,
    RecordType::CAA,
];

#[derive(Clone, Copy, Debug)]
struct Variant {
    edns: Option<(u16, bool)>,
    rd: bool,
    cd: bool,
    mixed: bool,
}

const VARIANTS: [Variant; 6] = [
    Variant {
        edns: None,
        rd: true,
        cd: false,
        mixed: false,
    },
    Variant {
        edns: Some((1232, false)),
        rd: true,
        cd: false,
        mixed: false,
    },
    Variant {
        edns: Some((4096, true)),
        rd: false,
        cd: true,
        mixed: true,
    },
    Variant {
        edns: Some((512, false)),
        rd: true,
        cd: false,
        mixed: true,
    },
    Variant {
        edns: Some((100, true)),
        rd: false,
        cd: false,
        mixed: false,
    },
    Variant {
        edns: None,
        rd: false,
        cd: true,
        mixed: true,
    },
];

fn query_bytes(id: u16, name: &str, qtype: RecordType, v: Variant) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = v.rd;
    m.metadata.checking_disabled = v.cd;
    let spelled = if v.mixed {
        mixed_case(name)
    } else {
        name.to_owned()
    };
    m.add_query(Query::query(Name::from_ascii(&spelled).unwrap(), qtype));
    if let Some((payload, dnssec_ok)) = v.edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_dnssec_ok(dnssec_ok);
        m.edns = Some(e);
    }
    m.to_vec().unwrap()
}

/// A response as comparable text: header, question, every record as zone-file text (the
/// spelling of names included), and the OPT.
fn describe(bytes: &[u8]) -> String {
    let m = Message::from_vec(bytes).unwrap();
    let h = &m.metadata;
    let mut s = format!(
        "id={} qr={:?} op={:?} aa={} tc={} rd={} ra={} ad={} cd={} rcode={:?} counts={}/{}/{}/{}\n",
        h.id,
        h.message_type,
        h.op_code,
        h.authoritative,
        h.truncation,
        h.recursion_desired,
        h.recursion_available,
        h.authentic_data,
        h.checking_disabled,
        h.response_code,
        m.queries.len(),
        m.answers.len(),
        m.authorities.len(),
        m.additionals.len() + usize::from(m.edns.is_some()),
    );
    for q in &m.queries {
        s.push_str(&format!(
            "? {} {} {}\n",
            q.name(),
            q.query_class(),
            q.query_type()
        ));
    }
    for (section, records) in [
        ("an", &m.answers),
        ("ns", &m.authorities),
        ("ad", &m.additionals),
    ] {
        for r in records {
            s.push_str(&format!("{section} {r}\n"));
        }
    }
    if let Some(e) = &m.edns {
        s.push_str(&format!(
            "opt payload={} version={} do={} options={:?}\n",
            e.max_payload(),
            e.version(),
            e.flags().dnssec_ok,
            e.options()
        ));
    }
    s
}

struct Compared {
    fast: usize,
    total: usize,
}

async fn compare(snap: Arc<Snapshot>, label: &str) -> Compared {
    let handler = DnsHandler::new(
        Arc::new(ArcSwap::new(Arc::clone(&snap))),
        Metrics::new().server,
    );
    let src = SocketAddr::from(([127, 0, 0, 1], 40000));
    let mut out = vec![0u8; 65535];
    let mut counts = Compared { fast: 0, total: 0 };
    let mut failures = Vec::new();
    let mut id = 1u16;
    for name in names(&snap) {
        for qtype in TYPES {
            for v in VARIANTS {
                for udp in [true, false] {
                    id = id.wrapping_add(1);
                    let query = query_bytes(id, &name, qtype, v);
                    counts.total += 1;
                    let options = Options {
                        udp,
                        recursion_available: false,
                        shuffle: false,
                    };
                    let Some(fast) = fast::answer(&snap, &query, options, &mut out) else {
                        continue;
                    };
                    counts.fast += 1;
                    let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
                    let general = answer_general(&handler, query.clone(), src, protocol)
                        .await
                        .expect("the general path answers");
                    let (f, g) = (describe(&out[..fast.len]), describe(&general));
                    if f != g {
                        failures.push(format!(
                            "{label} {name} {qtype} {v:?} udp={udp}:\nfast:\n{f}general:\n{g}"
                        ));
                    }
                    let g = Message::from_vec(&general).unwrap();
                    assert_eq!(fast.qtype, u16::from(qtype));
                    assert_eq!(u16::from(fast.rcode), u16::from(g.metadata.response_code));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        counts.fast,
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    counts
}

#[tokio::test]
async fn fast_and_general_paths_agree() {
    let c = compare(snapshot(PodsMode::Insecure, 30, true), "insecure").await;
    // Most of the matrix is cluster-zone data or negatives the fast path takes.
    assert!(c.fast * 10 > c.total * 7, "{} of {}", c.fast, c.total);
    let c = compare(snapshot(PodsMode::Verified, 600, true), "verified").await;
    assert!(c.fast * 10 > c.total * 7, "{} of {}", c.fast, c.total);
    // Before the first sync: SERVFAIL instead of NXDOMAIN, on both paths.
    let c = compare(snapshot(PodsMode::Insecure, 30, false), "unsynced").await;
    assert!(c.fast * 10 > c.total * 7, "{} of {}", c.fast, c.total);
}

#[test]
fn fast_path_takes_the_common_queries() {
    let snap = snapshot(PodsMode::Insecure, 30, true);
    let mut out = vec![0u8; 65535];
    let udp = Options {
        udp: true,
        recursion_available: true,
        shuffle: false,
    };
    for (name, qtype, rcode, answers) in [
        ("web.shop.svc.cluster.local.", RecordType::A, 0, 1),
        ("web.shop.svc.cluster.local.", RecordType::AAAA, 0, 0),
        ("db.data.svc.cluster.local.", RecordType::A, 0, 2),
        ("db-1.db.data.svc.cluster.local.", RecordType::A, 0, 1),
        (
            "_postgres._tcp.db.data.svc.cluster.local.",
            RecordType::SRV,
            0,
            2,
        ),
        ("10.0.96.10.in-addr.arpa.", RecordType::PTR, 0, 1),
        ("nope.shop.svc.cluster.local.", RecordType::A, 3, 0),
        ("cluster.local.", RecordType::SOA, 0, 1),
    ] {
        let q = query_bytes(7, name, qtype, VARIANTS[1]);
        let a = fast::answer(&snap, &q, udp, &mut out)
            .unwrap_or_else(|| panic!("{name} {qtype} not on the fast path"));
        assert_eq!(a.rcode, rcode, "{name} {qtype}");
        let m = Message::from_vec(&out[..a.len]).unwrap();
        assert_eq!(m.answers.len(), answers, "{name} {qtype}");
        assert!(m.metadata.recursion_available, "RA as the options say");
        assert_eq!(m.metadata.id, 7);
    }
}

#[test]
fn fast_path_leaves_the_rest_to_the_general_path() {
    let snap = snapshot(PodsMode::Insecure, 30, true);
    let mut out = vec![0u8; 65535];
    let udp = Options {
        udp: true,
        recursion_available: false,
        shuffle: false,
    };
    let a = |name: &str, qtype| query_bytes(9, name, qtype, VARIANTS[1]);
    let web = a("web.shop.svc.cluster.local.", RecordType::A);
    assert!(fast::answer(&snap, &web, udp, &mut out).is_some());
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("outside the zone", a("example.com.", RecordType::A)),
        (
            "ExternalName",
            a("payments.shop.svc.cluster.local.", RecordType::A),
        ),
        (
            "dns-version",
            a("dns-version.cluster.local.", RecordType::TXT),
        ),
        ("apex NS", a("cluster.local.", RecordType::NS)),
        ("zone transfer", a("cluster.local.", RecordType::AXFR)),
        (
            "uncommon type",
            a("web.shop.svc.cluster.local.", RecordType::CAA),
        ),
        ("short", web[..11].to_vec()),
        ("trailing byte", [&web[..], &[0]].concat()),
    ];
    let mut response = web.clone();
    response[2] |= 0x80;
    cases.push(("a response", response));
    let mut notify = web.clone();
    notify[2] |= 4 << 3;
    cases.push(("opcode NOTIFY", notify));
    let mut two = Message::from_vec(&web).unwrap();
    two.add_query(Query::query(
        Name::from_ascii("api.shop.svc.cluster.local.").unwrap(),
        RecordType::A,
    ));
    cases.push(("two questions", two.to_vec().unwrap()));
    let mut chaos = Message::from_vec(&web).unwrap();
    let mut q = Query::query(
        Name::from_ascii("web.shop.svc.cluster.local.").unwrap(),
        RecordType::A,
    );
    q.set_query_class(DNSClass::CH);
    chaos.queries = vec![q];
    cases.push(("class CH", chaos.to_vec().unwrap()));
    let mut v1 = Message::from_vec(&web).unwrap();
    if let Some(e) = v1.edns.as_mut() {
        e.set_version(1);
    }
    cases.push(("EDNS version 1", v1.to_vec().unwrap()));
    // Client subnet: 8 = ECS, family 1, source /24, scope 0, 3 address bytes.
    let mut ecs = web.clone();
    let opt_rdlen = ecs.len() - 2;
    ecs[opt_rdlen..].copy_from_slice(&11u16.to_be_bytes());
    ecs.extend_from_slice(&[0, 8, 0, 7, 0, 1, 24, 0, 10, 0, 0]);
    cases.push(("client subnet option", ecs));
    // A name written with a compression pointer into itself.
    let mut pointer = web[..12].to_vec();
    pointer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    pointer[11] = 0;
    cases.push(("compression pointer", pointer));
    // A label with a byte the general path spells escaped.
    let mut odd = web.clone();
    odd[13] = b'.';
    cases.push(("dot in a label", odd));
    for (what, q) in cases {
        assert_eq!(fast::answer(&snap, &q, udp, &mut out), None, "{what}");
    }
    // A cookie is kept as opaque bytes: the fast path takes it.
    let mut cookie = web.clone();
    let opt_rdlen = cookie.len() - 2;
    cookie[opt_rdlen..].copy_from_slice(&12u16.to_be_bytes());
    cookie.extend_from_slice(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(fast::answer(&snap, &cookie, udp, &mut out).is_some());
    // An answer larger than the client allows goes the general way (which truncates).
    assert!(fast::answer(&snap, &web, udp, &mut out[..40]).is_none());
}
