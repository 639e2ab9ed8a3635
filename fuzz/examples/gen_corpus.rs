//! Writes the seed corpora under `fuzz/corpus/<target>/` from the example cluster's names
//! (`examples/cluster/EXPECTED.md`) and the example manifests. Deterministic but for the SOA
//! serials in the server's answers, which follow the clock: run it again after changing it and
//! commit the result.
//!
//! `cargo run --example gen_corpus` (from `fuzz/`).

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use clusterdns::source::manifests::list_files;
use clusterdns_fuzz::{FIXTURE, Served, UPSTREAM_ID, example_dir, serve, upstream_queries};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::xfer::Protocol;

/// Names of the example cluster and the type each is usually asked for.
const NAMES: &[(&str, RecordType)] = &[
    ("cluster.local.", RecordType::SOA),
    ("cluster.local.", RecordType::NS),
    ("ns.dns.cluster.local.", RecordType::A),
    ("dns-version.cluster.local.", RecordType::TXT),
    ("kubernetes.default.svc.cluster.local.", RecordType::A),
    (
        "_https._tcp.kubernetes.default.svc.cluster.local.",
        RecordType::SRV,
    ),
    ("10.0.96.10.in-addr.arpa.", RecordType::PTR),
    ("web.shop.svc.cluster.local.", RecordType::A),
    ("web.shop.svc.cluster.local.", RecordType::AAAA),
    ("_https._tcp.web.shop.svc.cluster.local.", RecordType::SRV),
    ("api.shop.svc.cluster.local.", RecordType::AAAA),
    (
        "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.",
        RecordType::PTR,
    ),
    ("v6only.shop.svc.cluster.local.", RecordType::AAAA),
    ("search.shop.svc.cluster.local.", RecordType::A),
    ("_http._tcp.search.shop.svc.cluster.local.", RecordType::SRV),
    ("payments.shop.svc.cluster.local.", RecordType::CNAME),
    ("payments.shop.svc.cluster.local.", RecordType::A),
    ("legacy.shop.svc.cluster.local.", RecordType::A),
    ("lb.shop.svc.cluster.local.", RecordType::A),
    ("grafana.default.svc.cluster.local.", RecordType::A),
    ("db.data.svc.cluster.local.", RecordType::A),
    ("db.data.svc.cluster.local.", RecordType::SRV),
    ("db-1.db.data.svc.cluster.local.", RecordType::A),
    ("db-2.db.data.svc.cluster.local.", RecordType::A),
    ("_postgres._tcp.db.data.svc.cluster.local.", RecordType::SRV),
    ("_tcp.db.data.svc.cluster.local.", RecordType::A),
    ("30.1.244.10.in-addr.arpa.", RecordType::PTR),
    ("32.3.244.10.in-addr.arpa.", RecordType::PTR),
    ("cache.data.svc.cluster.local.", RecordType::A),
    ("_redis._tcp.cache.data.svc.cluster.local.", RecordType::SRV),
    ("queue.data.svc.cluster.local.", RecordType::A),
    ("_amqp._tcp.queue.data.svc.cluster.local.", RecordType::SRV),
    ("empty.data.svc.cluster.local.", RecordType::A),
    ("nope.shop.svc.cluster.local.", RecordType::A),
    ("shop.svc.cluster.local.", RecordType::A),
    ("data.pod.cluster.local.", RecordType::A),
    ("10-244-1-30.data.pod.cluster.local.", RecordType::A),
    ("fd00-10-96--30.shop.pod.cluster.local.", RecordType::AAAA),
    ("WeB.ShOp.SvC.cLuStEr.LoCaL.", RecordType::A),
    ("example.com.", RecordType::A),
    (".", RecordType::NS),
];

/// Types asked of every name, besides its usual one.
const ALSO: &[RecordType] = &[RecordType::ANY, RecordType::AXFR];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// A file name from a description: `[a-z0-9.-]` only, `-mixed-case` when it had capitals.
fn file_name(description: &str) -> String {
    let s: String = description
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '-') => c,
            _ => '-',
        })
        .collect();
    let mut s = s.trim_matches(['-', '.']).to_owned();
    // Long reverse names: keep the type prefix and the end, which tells them apart.
    if s.len() > 60 {
        let prefix = s.split('-').next().unwrap_or_default().to_owned();
        s = format!("{prefix}-{}", &s[s.len() - 48..]);
    }
    if description.contains(|c: char| c.is_ascii_uppercase()) {
        s += "-mixed-case";
    }
    s
}

/// A record type as a file name spells it.
fn lower(t: RecordType) -> String {
    t.to_string().to_ascii_lowercase()
}

struct Corpus {
    dir: PathBuf,
    count: usize,
}

impl Corpus {
    fn new(target: &str) -> Self {
        let dir = fuzz_dir().join("corpus").join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("clear corpus");
        }
        fs::create_dir_all(&dir).expect("corpus dir");
        Self { dir, count: 0 }
    }

    fn add(&mut self, description: &str, bytes: &[u8]) {
        let path = self.dir.join(file_name(description));
        assert!(!path.exists(), "two seeds named {}", path.display());
        fs::write(&path, bytes).expect("write seed");
        self.count += 1;
    }
}

fn query(id: u16, name: &str, qtype: RecordType) -> Message {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).expect(name), qtype));
    m
}

fn edns(payload: u16, dnssec_ok: bool) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(payload);
    e.set_dnssec_ok(dnssec_ok);
    e
}

fn bytes(m: &Message) -> Vec<u8> {
    m.to_bytes().expect("encode")
}

/// Query packets: every name with its type and the extra types, and the EDNS variants, header
/// oddities and hand-made wire forms.
fn requests() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut id: u16 = 0x1000;
    let mut next_id = || {
        id += 4;
        id
    };
    for (name, qtype) in NAMES {
        out.push((
            format!("{}-{name}", lower(*qtype)),
            bytes(&query(next_id(), name, *qtype)),
        ));
    }
    for qtype in ALSO {
        for (name, _) in NAMES.iter().step_by(4) {
            out.push((
                format!("{}-{name}", lower(*qtype)),
                bytes(&query(next_id(), name, *qtype)),
            ));
        }
    }
    let web = "web.shop.svc.cluster.local.";
    let db = "_postgres._tcp.db.data.svc.cluster.local.";

    // EDNS: payload sizes, DO, cookie, client subnet, NSID, unknown option, version 1.
    for payload in [0u16, 512, 1232, 4096, 65535] {
        let mut m = query(next_id(), db, RecordType::SRV);
        m.set_edns(edns(payload, false));
        out.push((format!("edns-{payload}-srv"), bytes(&m)));
    }
    let mut m = query(next_id(), web, RecordType::A);
    m.set_edns(edns(1232, true));
    out.push(("edns-do".into(), bytes(&m)));
    let mut e = edns(1232, false);
    e.options_mut().insert(EdnsOption::Unknown(
        10,
        vec![0x24, 0xa5, 0xac, 0x1b, 0x8e, 0x97, 0x3f, 0x41],
    ));
    let mut m = query(next_id(), web, RecordType::A);
    m.set_edns(e);
    out.push(("edns-cookie".into(), bytes(&m)));
    let mut e = edns(4096, true);
    e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)),
        24,
        0,
    )));
    e.options_mut().insert(EdnsOption::Unknown(3, Vec::new()));
    e.options_mut()
        .insert(EdnsOption::Unknown(65001, vec![1, 2, 3]));
    let mut m = query(next_id(), "db.data.svc.cluster.local.", RecordType::A);
    m.set_edns(e);
    out.push(("edns-subnet-nsid-unknown".into(), bytes(&m)));
    let mut e = edns(1232, false);
    e.set_version(1);
    let mut m = query(next_id(), web, RecordType::A);
    m.set_edns(e);
    out.push(("edns-version-1".into(), bytes(&m)));

    // Header variants: opcode, class, QDCOUNT 0 and 2, a response, TCP selection by ID.
    let mut m = query(next_id(), web, RecordType::A);
    m.metadata.op_code = OpCode::Notify;
    out.push(("opcode-notify".into(), bytes(&m)));
    let mut m = Message::new(next_id(), MessageType::Query, OpCode::Query);
    m.add_query({
        let mut q = Query::query(Name::from_ascii(web).expect("name"), RecordType::A);
        q.set_query_class(DNSClass::CH);
        q
    });
    out.push(("class-ch".into(), bytes(&m)));
    let m = Message::new(next_id(), MessageType::Query, OpCode::Query);
    out.push(("qdcount-0".into(), bytes(&m)));
    let mut m = query(next_id(), web, RecordType::A);
    m.add_query(Query::query(
        Name::from_ascii("api.shop.svc.cluster.local.").expect("name"),
        RecordType::AAAA,
    ));
    // The second name compresses against the first: a pointer into the question section.
    out.push(("qdcount-2-compressed".into(), bytes(&m)));
    let mut m = query(next_id(), web, RecordType::A);
    m.metadata.message_type = MessageType::Response;
    out.push(("qr-response".into(), bytes(&m)));
    let mut m = query(0xF001, db, RecordType::SRV);
    m.set_edns(edns(65535, false));
    out.push(("tcp-id-srv".into(), bytes(&m)));

    // Hand-made wire forms: the question name as a pointer into the header, an overlong label,
    // truncated packets.
    let header = |id: u16, qd: u16| -> Vec<u8> {
        let mut h = id.to_be_bytes().to_vec();
        h.extend([0x01, 0x00]);
        h.extend(qd.to_be_bytes());
        h.extend([0, 0, 0, 0, 0, 0]);
        h
    };
    let mut p = header(next_id(), 1);
    p.extend([0xC0, 0x03, 0x00, 0x01, 0x00, 0x01]);
    out.push(("pointer-into-header".into(), p));
    let mut p = header(next_id(), 1);
    p.extend([0x03, b'w', b'e', b'b', 0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01]);
    out.push(("pointer-loop".into(), p));
    let mut p = header(next_id(), 1);
    p.push(64);
    p.extend([b'a'; 64]);
    p.extend([0, 0x00, 0x01, 0x00, 0x01]);
    out.push(("label-64".into(), p));
    let signed =
        Name::from_labels("+1.0.96.10.in-addr.arpa".split('.').map(str::as_bytes)).expect("name");
    let mut m = Message::new(next_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(signed, RecordType::PTR));
    out.push(("ptr-plus-octet".into(), bytes(&m)));
    let full = bytes(&query(next_id(), web, RecordType::A));
    for cut in [0, 5, 11, 12, 20, full.len() - 2] {
        out.push((format!("truncated-{cut}"), full[..cut].to_vec()));
    }
    out
}

/// The server's own answers (and the queries) as round-trip seeds.
fn messages(requests: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (description, packet) in requests {
        out.push((format!("q-{description}"), packet.clone()));
        let id = packet
            .get(..2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        if let Served::Handled { sent, .. } | Served::FormErr { sent, .. } =
            serve(FIXTURE.handler_for_id(id), packet, Protocol::Udp)
        {
            for (i, answer) in sent.into_iter().enumerate() {
                out.push((format!("r{i}-{description}"), answer));
            }
        }
    }
    out
}

/// Name seeds: control byte (mode, origin, type) then the name, in wire and text form.
fn names() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let type_index = |t: RecordType| match t {
        RecordType::A => 0,
        RecordType::AAAA => 1,
        RecordType::SRV => 2,
        RecordType::PTR => 3,
        RecordType::TXT => 4,
        RecordType::SOA => 5,
        RecordType::NS => 6,
        RecordType::ANY => 7,
        RecordType::CNAME => 8,
        _ => 9,
    };
    for (name, qtype) in NAMES {
        let n = Name::from_ascii(name).expect(name);
        let t = type_index(*qtype) << 4;
        let mut wire = Vec::new();
        n.emit(&mut BinEncoder::new(&mut wire)).expect("emit name");
        out.push((
            format!("wire-{}-{name}", lower(*qtype)),
            [&[t][..], &wire].concat(),
        ));
        out.push((
            format!("text-{}-{name}", lower(*qtype)),
            [&[t | 1][..], name.as_bytes()].concat(),
        ));
    }
    // Other origins, raw labels, a non-canonical reverse name.
    out.push((
        "origin-local".into(),
        b"\x09web.shop.svc.cluster.local.".to_vec(),
    ));
    out.push(("origin-abcde".into(), b"\x0dfoo.svc.a.b-c.d.e.".to_vec()));
    out.push((
        "labels-raw".into(),
        b"\x03web.shop.svc.cluster.local".to_vec(),
    ));
    out.push((
        "labels-binary".into(),
        b"\x03w\x00b.s\xffop.svc.cluster.local".to_vec(),
    ));
    out.push((
        "labels-ptr-plus-octet".into(),
        b"\x33+10.0.96.10.in-addr.arpa".to_vec(),
    ));
    out
}

/// Manifests seeds: the example files and broken ones; control byte 1 marks JSON.
fn manifests() -> Vec<(String, Vec<u8>)> {
    let dir = example_dir();
    let mut out = Vec::new();
    for path in list_files(&dir).expect("example manifests") {
        let text = fs::read(&path).expect("read manifest");
        let json = path.extension().is_some_and(|e| e == "json");
        let rel = path
            .strip_prefix(&dir)
            .expect("under dir")
            .display()
            .to_string();
        out.push((
            format!("example-{rel}"),
            [&[u8::from(json)][..], &text].concat(),
        ));
    }
    let broken: &[(&str, u8, &str)] = &[
        (
            "yaml-syntax",
            0,
            "apiVersion: v1\nkind: Service\nmetadata: {name: x\n",
        ),
        ("yaml-tab-indent", 0, "apiVersion: v1\n\tkind: Service\n"),
        ("not-an-object", 0, "- 1\n- 2\n"),
        ("no-kind", 0, "apiVersion: v1\nmetadata: {name: x}\n"),
        (
            "service-bad-ip",
            0,
            "apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: shop}\nspec:\n  clusterIP: 10.96.0.300\n  ports: [{port: 80}]\n",
        ),
        (
            "service-bad-port",
            0,
            "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  clusterIP: 10.96.0.5\n  ports: [{name: http, port: 70000, protocol: QUIC}]\n",
        ),
        (
            "service-wrong-type",
            0,
            "apiVersion: v1\nkind: Service\nmetadata: {name: 5}\nspec: {ports: \"80\"}\n",
        ),
        (
            "headless-long-names",
            2,
            "apiVersion: v1\nkind: Service\nmetadata: {name: a-very-long-service-name-that-is-well-over-sixty-three-characters-long, namespace: N}\nspec: {clusterIP: None, ports: [{name: P, port: 1}]}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s, namespace: N, labels: {kubernetes.io/service-name: a-very-long-service-name-that-is-well-over-sixty-three-characters-long}}\naddressType: IPv6\nendpoints: [{addresses: ['fd00::1'], hostname: h.x}]\nports: [{name: P, port: 1}]\n",
        ),
        (
            "list-nested",
            0,
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: n}\n- apiVersion: v1\n  kind: List\n  items: []\n- 7\n",
        ),
        (
            "anchors",
            0,
            "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b, *b]\napiVersion: v1\nkind: Namespace\nmetadata: {name: anchors}\n",
        ),
        (
            "multi-doc-bad-second",
            0,
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\n: :\n",
        ),
        (
            "json-truncated",
            1,
            "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {",
        ),
        (
            "json-deep",
            1,
            &format!("{}{}", "[".repeat(200), "]".repeat(200)),
        ),
        (
            "json-as-yaml",
            0,
            "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"j\"}}",
        ),
        ("empty", 0, ""),
        (
            "externalname-ip",
            0,
            "apiVersion: v1\nkind: Service\nmetadata: {name: e}\nspec: {type: ExternalName, externalName: 10.0.0.1}\n",
        ),
    ];
    for (description, control, text) in broken {
        out.push((
            format!("broken-{description}"),
            [&[*control][..], text.as_bytes()].concat(),
        ));
    }
    out
}

fn write(target: &str, seeds: &[(String, Vec<u8>)]) {
    let mut corpus = Corpus::new(target);
    for (description, bytes) in seeds {
        corpus.add(description, bytes);
    }
    println!(
        "{target}: {} seeds in {}",
        corpus.count,
        corpus.dir.display()
    );
}

/// A record from its presentation form (`name ttl class type rdata`).
fn rr(text: &str) -> Record {
    let mut parts = text.splitn(4, ' ');
    let (Some(name), Some(ttl), Some(rtype), Some(rdata)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("record {text:?}: want name ttl type rdata");
    };
    let name = Name::from_ascii(name).expect(name);
    let rtype: RecordType = rtype.parse().expect(rtype);
    let tokens: Vec<&str> = rdata.split(' ').collect();
    let rdata = RData::try_from_str(rtype, &tokens.join(" ")).expect(text);
    Record::from_rdata(name, ttl.parse().expect(ttl), rdata)
}

/// Upstream replies, each prefixed by the index of the query it answers
/// (`clusterdns_fuzz::upstream_queries`): answers, CNAME chains, negatives with and without an
/// SOA, SERVFAIL, truncation, DNSSEC records, and replies the forwarder must refuse.
fn upstream_replies() -> Vec<(String, Vec<u8>)> {
    let queries = upstream_queries();
    let soa = "example.com. 900 SOA ns1.example.com. hostmaster.example.com. 2026112401 7200 900 1209600 300";
    /// Description, query index, rcode, then the answer, authority and additional records.
    type Case<'a> = (
        &'a str,
        usize,
        ResponseCode,
        &'a [&'a str],
        &'a [&'a str],
        &'a [&'a str],
    );
    let cases: &[Case] = &[
        (
            "a-two",
            0,
            ResponseCode::NoError,
            &[
                "example.com. 300 A 192.0.2.1",
                "example.com. 300 A 192.0.2.2",
            ],
            &[],
            &[],
        ),
        (
            "a-ttl-0",
            0,
            ResponseCode::NoError,
            &["example.com. 0 A 192.0.2.1"],
            &[],
            &[],
        ),
        (
            "a-ttl-huge",
            0,
            ResponseCode::NoError,
            &["example.com. 2147483647 A 192.0.2.1"],
            &[],
            &[],
        ),
        (
            "a-with-ns-glue",
            0,
            ResponseCode::NoError,
            &["example.com. 60 A 192.0.2.1"],
            &["example.com. 86400 NS ns1.example.com."],
            &["ns1.example.com. 86400 A 192.0.2.53"],
        ),
        (
            "aaaa-cname-chain",
            1,
            ResponseCode::NoError,
            &[
                "www.Example.com. 60 CNAME web.example.net.",
                "web.example.net. 30 CNAME edge.example.org.",
                "edge.example.org. 20 AAAA 2001:db8::1",
            ],
            &[],
            &[],
        ),
        ("aaaa-nodata", 1, ResponseCode::NoError, &[], &[soa], &[]),
        ("aaaa-nxdomain", 1, ResponseCode::NXDomain, &[], &[soa], &[]),
        (
            "aaaa-nxdomain-no-soa",
            1,
            ResponseCode::NXDomain,
            &[],
            &[],
            &[],
        ),
        (
            "txt-long",
            2,
            ResponseCode::NoError,
            &[
                "example.com. 120 TXT v=spf1 include:_spf.example.com ~all",
                "example.com. 120 TXT a b c d e f g h i j",
            ],
            &[],
            &[],
        ),
        ("txt-servfail", 2, ResponseCode::ServFail, &[], &[], &[]),
        ("txt-refused", 2, ResponseCode::Refused, &[], &[], &[]),
        (
            "srv-two",
            3,
            ResponseCode::NoError,
            &[
                "_sip._udp.example.com. 300 SRV 10 60 5060 sip1.example.com.",
                "_sip._udp.example.com. 300 SRV 20 40 5060 sip2.example.com.",
            ],
            &[],
            &["sip1.example.com. 300 A 192.0.2.10"],
        ),
    ];
    let mut out = Vec::new();
    for (description, pick, rcode, answers, authorities, additionals) in cases {
        let mut m = Message::new(UPSTREAM_ID, MessageType::Response, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.metadata.recursion_available = true;
        m.metadata.response_code = *rcode;
        let q = &queries[*pick];
        m.add_query(Query::query(q.name.clone(), q.qtype));
        m.answers = answers.iter().map(|t| rr(t)).collect();
        m.authorities = authorities.iter().map(|t| rr(t)).collect();
        m.additionals = additionals.iter().map(|t| rr(t)).collect();
        if let Some((payload, dnssec_ok)) = q.edns {
            m.set_edns(edns(payload, dnssec_ok));
        }
        let pick = u8::try_from(*pick).expect("query index");
        out.push((description.to_string(), [&[pick][..], &bytes(&m)].concat()));
        if *description == "a-two" {
            // The same reply truncated, with another ID, as a query, and cut short.
            let mut tc = m.clone();
            tc.metadata.truncation = true;
            tc.answers.clear();
            out.push(("a-truncated".into(), [&[pick][..], &bytes(&tc)].concat()));
            let mut other = m.clone();
            other.metadata.id = UPSTREAM_ID ^ 1;
            out.push(("a-wrong-id".into(), [&[pick][..], &bytes(&other)].concat()));
            let mut asked = m.clone();
            asked.metadata.message_type = MessageType::Query;
            out.push(("a-qr-0".into(), [&[pick][..], &bytes(&asked)].concat()));
            let full = bytes(&m);
            out.push((
                "a-cut".into(),
                [&[pick][..], &full[..full.len() - 3]].concat(),
            ));
        }
    }
    out
}

fn main() {
    // With target names as arguments, only those corpora are rewritten.
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |target: &str| only.is_empty() || only.iter().any(|t| t == target);
    let requests = requests();
    if wanted("request") {
        write("request", &requests);
    }
    // The differential target reads the same queries.
    if wanted("fast_general") {
        write("fast_general", &requests);
    }
    if wanted("message_roundtrip") {
        write("message_roundtrip", &messages(&requests));
    }
    if wanted("name") {
        write("name", &names());
    }
    if wanted("manifests") {
        write("manifests", &manifests());
    }
    if wanted("upstream_reply") {
        write("upstream_reply", &upstream_replies());
    }
}
