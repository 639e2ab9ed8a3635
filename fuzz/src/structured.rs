//! A structure-aware query for the `request_structured` target: an `arbitrary`-built DNS
//! message (header bits, opcode, questions, EDNS, extra records) whose names come mostly from
//! the example cluster's zone, encoded to wire bytes. Random bytes rarely spell
//! `_https._tcp.kubernetes.default.svc.cluster.local`; this reaches the answer logic instead
//! of stopping in the parser.

use arbitrary::{Arbitrary, Unstructured};

/// Names the example cluster answers (`examples/cluster/EXPECTED.md`), and some it does not.
pub const NAMES: &[&str] = &[
    "web.shop.svc.cluster.local",
    "api.shop.svc.cluster.local",
    "lb.shop.svc.cluster.local",
    "legacy.shop.svc.cluster.local",
    "nope.shop.svc.cluster.local",
    "payments.shop.svc.cluster.local",
    "search.shop.svc.cluster.local",
    "v6only.shop.svc.cluster.local",
    "kubernetes.default.svc.cluster.local",
    "grafana.default.svc.cluster.local",
    "kube-dns.kube-system.svc.cluster.local",
    "db.data.svc.cluster.local",
    "db-0.db.data.svc.cluster.local",
    "db-1.db.data.svc.cluster.local",
    "db-2.db.data.svc.cluster.local",
    "cache.data.svc.cluster.local",
    "cache-0.cache.data.svc.cluster.local",
    "cache-1.cache.data.svc.cluster.local",
    "queue.data.svc.cluster.local",
    "queue-0.queue.data.svc.cluster.local",
    "empty.data.svc.cluster.local",
    "_https._tcp.kubernetes.default.svc.cluster.local",
    "_https._tcp.web.shop.svc.cluster.local",
    "_http._tcp.search.shop.svc.cluster.local",
    "_postgres._tcp.db.data.svc.cluster.local",
    "_redis._tcp.cache.data.svc.cluster.local",
    "_amqp._tcp.queue.data.svc.cluster.local",
    "10-244-1-30.data.pod.cluster.local",
    "fd00-10-96--30.shop.pod.cluster.local",
    "dns-version.cluster.local",
    "ns.dns.cluster.local",
    "dns.cluster.local",
    "cluster.local",
    "svc.cluster.local",
    "pod.cluster.local",
    "shop.svc.cluster.local",
    "data.pod.cluster.local",
    "10.0.96.10.in-addr.arpa",
    "30.1.244.10.in-addr.arpa",
    "32.3.244.10.in-addr.arpa",
    "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa",
    "in-addr.arpa",
    "ip6.arpa",
    "example.com",
    "",
];

/// Labels of the zone, for names built label by label.
pub const LABELS: &[&str] = &[
    "web",
    "shop",
    "svc",
    "cluster",
    "local",
    "pod",
    "data",
    "default",
    "kubernetes",
    "db",
    "db-0",
    "_https",
    "_tcp",
    "_udp",
    "_http",
    "dns",
    "ns",
    "dns-version",
    "in-addr",
    "ip6",
    "arpa",
    "10",
    "244",
    "96",
    "*",
    "10-244-1-30",
    "WEB",
    "Shop",
];

/// A query, as the target builds it.
#[derive(Arbitrary, Debug)]
pub struct Query {
    /// Which fixture answers (`Fixture::handler_for_id`'s low two bits).
    pub fixture: u8,
    /// Served over TCP.
    pub tcp: bool,
    /// Query ID.
    pub id: u16,
    /// Header bits.
    pub flags: Flags,
    /// Questions: usually one.
    pub questions: Questions,
    /// The OPT record.
    pub edns: Option<Edns>,
    /// Records in the answer, authority and additional sections (after the OPT or before).
    pub extra: Vec<Extra>,
    /// Whether the OPT goes after the extra additional records.
    pub opt_last: bool,
}

/// Header flags.
#[derive(Arbitrary, Debug)]
pub struct Flags {
    /// QR (a response is dropped).
    pub qr: bool,
    /// Opcode: mostly QUERY.
    pub opcode: Opcode,
    /// AA, TC, RD, RA, Z, AD, CD.
    pub bits: [bool; 7],
}

/// An opcode.
#[derive(Arbitrary, Debug)]
pub enum Opcode {
    /// QUERY.
    Query,
    /// IQUERY, STATUS, NOTIFY, UPDATE, DSO.
    Known(#[arbitrary(with = |u: &mut Unstructured| u.choose(&[1u8, 2, 4, 5, 6]).copied())] u8),
    /// Any.
    Any(u8),
}

/// The question section.
#[derive(Arbitrary, Debug)]
pub enum Questions {
    /// One question (the common case).
    One(Question),
    /// A question, then a second written as a compression pointer to the first name or not.
    Two(Question, Question, bool),
    /// None (QDCOUNT 0).
    None,
}

/// One question.
#[derive(Arbitrary, Debug)]
pub struct Question {
    /// The name.
    pub name: QName,
    /// Case flips, one bit per byte of the name's text.
    pub case: u64,
    /// The type.
    pub qtype: QType,
    /// The class: mostly IN.
    pub qclass: QClass,
}

/// A question name.
#[derive(Arbitrary, Debug)]
pub enum QName {
    /// A name of the example zone.
    Known(u8),
    /// Labels (of the zone or random) before a name of the zone.
    Under(Vec<Label>, u8),
    /// A pod-style name: an address with dashes under a namespace's `pod`.
    Pod([u8; 4], u8),
    /// An `in-addr.arpa` name of an address (mostly in the example's ranges).
    Reverse4([u8; 4], bool),
    /// An `ip6.arpa` name of an address, nibble by nibble.
    Reverse6([u8; 16]),
    /// Labels only.
    Labels(Vec<Label>),
}

/// A label.
#[derive(Arbitrary, Debug)]
pub enum Label {
    /// One of the zone's.
    Known(u8),
    /// Any bytes (cut to 63).
    Raw(Vec<u8>),
    /// A number.
    Number(u16),
}

/// A query type.
#[derive(Arbitrary, Debug)]
pub enum QType {
    /// One the server answers.
    Known(
        #[arbitrary(with = |u: &mut Unstructured| u.choose(&[1u16, 28, 33, 12, 16, 6, 2, 5, 255, 252, 251, 15, 65, 64, 43, 46, 99]).copied())]
         u16,
    ),
    /// Any.
    Any(u16),
}

/// A query class.
#[derive(Arbitrary, Debug)]
pub enum QClass {
    /// IN.
    In,
    /// CH, HS, NONE, ANY.
    Other(#[arbitrary(with = |u: &mut Unstructured| u.choose(&[3u16, 4, 254, 255]).copied())] u16),
    /// Any.
    Any(u16),
}

/// The OPT record.
#[derive(Arbitrary, Debug)]
pub struct Edns {
    /// Payload size.
    pub payload: Payload,
    /// Extended rcode bits.
    pub ext_rcode: u8,
    /// Version: mostly 0.
    pub version: Option<u8>,
    /// DO.
    pub dnssec_ok: bool,
    /// The other flag bits.
    pub z: u16,
    /// Options.
    pub options: Vec<EdnsOption>,
    /// The owner is not the root (FORMERR material).
    pub bad_owner: bool,
}

/// An EDNS payload size.
#[derive(Arbitrary, Debug)]
pub enum Payload {
    /// A common size.
    Common(
        #[arbitrary(with = |u: &mut Unstructured| u.choose(&[0u16, 1, 511, 512, 1232, 1400, 4096, 65535]).copied())]
         u16,
    ),
    /// Any.
    Any(u16),
}

/// An EDNS option.
#[derive(Arbitrary, Debug)]
pub enum EdnsOption {
    /// A client cookie (8 bytes) or client and server cookie.
    Cookie(Vec<u8>),
    /// Client subnet: family, source and scope prefix lengths, address bytes.
    Subnet(u16, u8, u8, Vec<u8>),
    /// NSID, empty.
    Nsid,
    /// Padding.
    Padding(u8),
    /// Any code and data.
    Other(u16, Vec<u8>),
}

/// A record in a section a query should leave empty (or the additional section).
#[derive(Arbitrary, Debug)]
pub struct Extra {
    /// 0 answer, 1 authority, else additional.
    pub section: u8,
    /// Owner: a pointer to the question name, or a name.
    pub owner: Option<QName>,
    /// Type, class, TTL.
    pub rtype: QType,
    /// Class.
    pub class: QClass,
    /// TTL.
    pub ttl: u32,
    /// Data.
    pub data: Vec<u8>,
}

fn known_name(i: u8) -> &'static str {
    NAMES[usize::from(i) % NAMES.len()]
}

impl Label {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Known(i) => LABELS[usize::from(*i) % LABELS.len()].as_bytes().to_vec(),
            Self::Raw(b) => b.iter().take(63).copied().collect(),
            Self::Number(n) => n.to_string().into_bytes(),
        }
    }
}

impl QName {
    /// The labels, left to right.
    pub fn labels(&self) -> Vec<Vec<u8>> {
        let text = |s: &str| -> Vec<Vec<u8>> {
            s.split('.')
                .filter(|l| !l.is_empty())
                .map(|l| l.as_bytes().to_vec())
                .collect()
        };
        match self {
            Self::Known(i) => text(known_name(*i)),
            Self::Under(labels, i) => {
                let mut all: Vec<Vec<u8>> = labels.iter().take(8).map(Label::bytes).collect();
                all.extend(text(known_name(*i)));
                all
            }
            Self::Pod([a, b, c, d], ns) => {
                let ns = ["data", "shop", "default", "kube-system"][usize::from(*ns & 3)];
                let label = if *a & 7 == 7 {
                    // One in eight: the IPv6 form.
                    format!("fd00-10-96--{b:x}")
                } else {
                    format!("{}-{b}-{c}-{d}", 10u8.wrapping_add(*a & 1))
                };
                text(&format!("{label}.{ns}.pod.cluster.local"))
            }
            Self::Reverse4([a, b, c, d], ours) => {
                let (a, b) = if *ours {
                    (10, [244, 96][usize::from(*b & 1)])
                } else {
                    (*a, *b)
                };
                text(&format!("{d}.{c}.{b}.{a}.in-addr.arpa"))
            }
            Self::Reverse6(bytes) => {
                let mut s = String::new();
                for b in bytes.iter().rev() {
                    s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
                }
                text(&(s + "ip6.arpa"))
            }
            Self::Labels(labels) => labels.iter().take(12).map(Label::bytes).collect(),
        }
    }
}

impl QType {
    fn value(&self) -> u16 {
        match self {
            Self::Known(t) | Self::Any(t) => *t,
        }
    }
}

impl QClass {
    fn value(&self) -> u16 {
        match self {
            Self::In => 1,
            Self::Other(c) | Self::Any(c) => *c,
        }
    }
}

/// Writes `labels` as an uncompressed wire name, flipping the case of letters by `case`;
/// labels that would make the name longer than 255 bytes are left out.
fn write_name(out: &mut Vec<u8>, labels: &[Vec<u8>], case: u64) {
    let mut len = 1;
    let mut bit = 0;
    for label in labels.iter().filter(|l| !l.is_empty()) {
        if len + 1 + label.len() > 255 {
            break;
        }
        len += 1 + label.len();
        out.push(label.len() as u8);
        for b in label {
            let flip = case >> (bit % 64) & 1 == 1;
            bit += 1;
            out.push(if flip && b.is_ascii_alphabetic() {
                b ^ 0x20
            } else {
                *b
            });
        }
    }
    out.push(0);
}

impl Query {
    /// The handler selection bits for `Fixture::handler_for_id`.
    pub fn fixture_id(&self) -> u16 {
        u16::from(self.fixture & 3)
    }

    /// The query's wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&self.id.to_be_bytes());
        let opcode = match self.flags.opcode {
            Opcode::Query => 0,
            Opcode::Known(o) | Opcode::Any(o) => o & 0x0f,
        };
        let [aa, tc, rd, ra, z, ad, cd] = self.flags.bits;
        out.push(
            u8::from(self.flags.qr) << 7
                | opcode << 3
                | u8::from(aa) << 2
                | u8::from(tc) << 1
                | u8::from(rd),
        );
        out.push(u8::from(ra) << 7 | u8::from(z) << 6 | u8::from(ad) << 5 | u8::from(cd) << 4);
        let extra: Vec<&Extra> = self.extra.iter().take(6).collect();
        let count = |s: u8| extra.iter().filter(|e| e.section.min(2) == s).count() as u16;
        let qdcount: u16 = match self.questions {
            Questions::One(_) => 1,
            Questions::Two(..) => 2,
            Questions::None => 0,
        };
        let arcount = count(2) + u16::from(self.edns.is_some());
        for c in [qdcount, count(0), count(1), arcount] {
            out.extend_from_slice(&c.to_be_bytes());
        }
        let question = |out: &mut Vec<u8>, q: &Question| {
            write_name(out, &q.name.labels(), q.case);
            out.extend_from_slice(&q.qtype.value().to_be_bytes());
            out.extend_from_slice(&q.qclass.value().to_be_bytes());
        };
        match &self.questions {
            Questions::One(q) => question(&mut out, q),
            Questions::Two(a, b, pointer) => {
                question(&mut out, a);
                if *pointer {
                    out.extend_from_slice(&[0xC0, 0x0C]);
                    out.extend_from_slice(&b.qtype.value().to_be_bytes());
                    out.extend_from_slice(&b.qclass.value().to_be_bytes());
                } else {
                    question(&mut out, b);
                }
            }
            Questions::None => {}
        }
        for section in 0..3 {
            if section == 2 && !self.opt_last {
                self.write_opt(&mut out);
            }
            for e in extra.iter().filter(|e| e.section.min(2) == section) {
                match &e.owner {
                    None if qdcount > 0 => out.extend_from_slice(&[0xC0, 0x0C]),
                    None => out.push(0),
                    Some(name) => write_name(&mut out, &name.labels(), 0),
                }
                out.extend_from_slice(&e.rtype.value().to_be_bytes());
                out.extend_from_slice(&e.class.value().to_be_bytes());
                out.extend_from_slice(&e.ttl.to_be_bytes());
                let data: Vec<u8> = e.data.iter().take(300).copied().collect();
                out.extend_from_slice(&(data.len() as u16).to_be_bytes());
                out.extend_from_slice(&data);
            }
            if section == 2 && self.opt_last {
                self.write_opt(&mut out);
            }
        }
        out
    }

    fn write_opt(&self, out: &mut Vec<u8>) {
        let Some(e) = &self.edns else { return };
        if e.bad_owner {
            out.extend_from_slice(&[1, b'x', 0]);
        } else {
            out.push(0);
        }
        out.extend_from_slice(&41u16.to_be_bytes());
        let payload = match e.payload {
            Payload::Common(p) | Payload::Any(p) => p,
        };
        out.extend_from_slice(&payload.to_be_bytes());
        out.push(e.ext_rcode);
        out.push(e.version.unwrap_or(0));
        let flags = u16::from(e.dnssec_ok) << 15 | (e.z & 0x7fff);
        out.extend_from_slice(&flags.to_be_bytes());
        let mut rdata = Vec::new();
        for option in e.options.iter().take(4) {
            let (code, data): (u16, Vec<u8>) = match option {
                EdnsOption::Cookie(c) => (10, c.iter().take(40).copied().collect()),
                EdnsOption::Subnet(family, source, scope, addr) => {
                    let mut d = family.to_be_bytes().to_vec();
                    d.extend_from_slice(&[*source, *scope]);
                    d.extend(addr.iter().take(16));
                    (8, d)
                }
                EdnsOption::Nsid => (3, Vec::new()),
                EdnsOption::Padding(n) => (12, vec![0; usize::from(*n)]),
                EdnsOption::Other(code, data) => (*code, data.iter().take(64).copied().collect()),
            };
            rdata.extend_from_slice(&code.to_be_bytes());
            rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
            rdata.extend_from_slice(&data);
        }
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
}
