//! The fast answer: a cluster-zone query answered straight from packet bytes to packet bytes,
//! without hickory's decoder or encoder, without a heap allocation and without a lock.
//!
//! It takes the common case only: a standard QUERY with one question of class IN, no answer
//! or authority records and at most one OPT record (version 0), whose name is in the cluster
//! zone or its reverse zones and whose answer is addresses, SRV, PTR, the apex SOA or a
//! negative (NXDOMAIN, NODATA, SERVFAIL before the first sync), and whose response fits the
//! size the client allows. Everything else gets `None`, and the caller answers it through the
//! hickory path, so behaviour is the same either way (`tests/it/fast_path.rs` compares the two).
//!
//! The response is what the hickory path sends, record for record: the question echoed as the
//! client spelled it, AA set, RA when a forwarder is configured, RD and CD copied, the answer
//! section, the zone's SOA in authority for negatives, glue for SRV targets, then an OPT
//! (payload min(client's, 1232), at least 512, DO echoed) when the query had one. Owner names
//! point at the question (offset 12) and the zone part of SOA names at the question's spelling
//! of the zone; SRV and PTR targets are written whole (RFC 2782: no compression in SRV).

use std::net::IpAddr;

use hickory_proto::rr::RecordType;

use crate::wire::clamp_payload;
use crate::zone::{
    AnswerData, AnswerZone, MAX_LABELS, Rcode, ServiceRecords, Snapshot, Srv, lookup_labels,
    ptr_names,
};

/// Most SRV records the fast path writes; larger sets (a big headless Service over TCP) take
/// the hickory path.
const MAX_SRV: usize = 64;

/// SOA timers, as the hickory path renders them (CoreDNS's: refresh 7200, retry 1800,
/// expire 86400).
const SOA_TIMERS: [u32; 3] = [7200, 1800, 86400];

const TYPE_A: u16 = 1;
const TYPE_SOA: u16 = 6;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;

/// How the response travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Over UDP: the response must fit the client's payload size (512 without EDNS).
    /// Over TCP: up to 65535 bytes.
    pub udp: bool,
    /// Whether the server forwards other names (the RA bit).
    pub recursion_available: bool,
    /// `--shuffle`: address records start at a random one of them (a rotation, as round
    /// robin; the general path permutes them).
    pub shuffle: bool,
}

/// What the fast path wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answered {
    /// Length of the response at the start of the output buffer.
    pub len: usize,
    /// The query type, as on the wire.
    pub qtype: u16,
    /// The response code (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN).
    pub rcode: u8,
}

/// Answers `query` from `snapshot` into `out`, returning what it wrote; `None` when the query
/// is not one the fast path takes (the caller then answers it the general way). Never
/// allocates and never locks. `out` should hold 65535 bytes for TCP; a response that does not
/// fit `out` also gives `None`.
pub fn answer(
    snapshot: &Snapshot,
    query: &[u8],
    options: Options,
    out: &mut [u8],
) -> Option<Answered> {
    let q = Query::parse(query)?;
    let mut labels: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
    let mut offsets = [0u16; MAX_LABELS];
    let n = question_labels(query, &mut labels, &mut offsets);
    let labels = labels.get(..n)?;
    let qtype = RecordType::from(q.qtype);
    let found = lookup_labels(snapshot, labels, qtype);
    let zone_labels = match found.zone {
        // The external zone (its own SOA and NS) takes the general path.
        AnswerZone::None | AnswerZone::External { .. } => return None,
        AnswerZone::Cluster { labels } => labels,
        AnswerZone::ReverseV4 | AnswerZone::ReverseV6 => 2,
    };
    let rcode: u8 = match found.rcode {
        Rcode::NoError => 0,
        Rcode::ServFail => 2,
        Rcode::NxDomain => 3,
        Rcode::Refused => return None,
    };
    // The zone as the question spells it: the offset of its first label.
    let zone = *offsets.get(n.checked_sub(zone_labels)?)?;
    let limit = match (options.udp, q.edns) {
        (false, _) => usize::from(u16::MAX),
        (true, None) => 512,
        (true, Some(e)) => usize::from(e.payload),
    };
    let mut w = Writer {
        buf: out.get_mut(..limit.min(out.len()))?,
        pos: 0,
    };
    let ttl = snapshot.config.ttl;

    // Header: ID, QR, opcode 0, AA, RD copied; RA, CD copied, rcode.
    w.put(query.get(..2)?)?;
    w.put(&[
        0x80 | 0x04 | (q.flags[0] & 0x01),
        (if options.recursion_available { 0x80 } else { 0 }) | (q.flags[1] & 0x10) | rcode,
    ])?;
    w.put(&[0, 1, 0, 0, 0, 0, 0, 0])?;
    w.put(query.get(12..q.question_end)?)?;

    let mut answers: u16 = 0;
    let mut additionals: u16 = 0;
    match found.data {
        AnswerData::Empty => {}
        AnswerData::Addresses { addrs, v6 } => {
            let family = || addrs.iter().filter(|a| a.is_ipv6() == v6);
            let start = if options.shuffle {
                let n = family().count();
                if n > 1 { rand::random_range(0..n) } else { 0 }
            } else {
                0
            };
            for ip in family().skip(start).chain(family().take(start)) {
                w.address(12, ttl, *ip)?;
                answers += 1;
            }
        }
        AnswerData::PodAddress(ip) => {
            w.address(12, ttl, ip)?;
            answers += 1;
        }
        AnswerData::Soa => {
            w.soa(snapshot, zone)?;
            answers += 1;
        }
        AnswerData::Srv { service, srv } => {
            if srv.len() > MAX_SRV {
                return None;
            }
            // Where each SRV record's target name starts, for the glue's owner names.
            let mut targets = [0u16; MAX_SRV];
            for (s, at) in srv.iter().zip(targets.iter_mut()) {
                w.put(&[0xc0, 12])?;
                w.put(&TYPE_SRV.to_be_bytes())?;
                let rdlen = w.record_head(ttl)?;
                w.put(&[0, 0])?;
                w.put(&s.weight.to_be_bytes())?;
                w.put(&s.port.to_be_bytes())?;
                *at = w.pos as u16;
                w.service_target(
                    service,
                    s.target(),
                    query.get(usize::from(zone)..q.name_end)?,
                )?;
                w.finish_rdata(rdlen)?;
                answers += 1;
            }
            for (i, s) in srv.iter().enumerate() {
                if srv.get(..i)?.iter().any(|p| p.target() == s.target()) {
                    continue;
                }
                for ip in target_addresses(service, s) {
                    w.address(*targets.get(i)?, ttl, *ip)?;
                    additionals += 1;
                }
            }
        }
        AnswerData::Ptr { ip, targets } => {
            // Targets are spelled under the zone's own name (the question is a reverse name):
            // its wire form, in a buffer on the stack.
            let mut origin = [0u8; 255];
            let origin = wire_name(&snapshot.config.origin, &mut origin)?;
            for (service, endpoint) in ptr_names(snapshot, ip, targets) {
                w.put(&[0xc0, 12])?;
                w.put(&TYPE_PTR.to_be_bytes())?;
                let rdlen = w.record_head(ttl)?;
                w.service_target(service, endpoint, origin)?;
                w.finish_rdata(rdlen)?;
                answers += 1;
            }
        }
        // NS with glue, the dns-version TXT and ExternalName CNAMEs (which may need chasing)
        // take the general path.
        AnswerData::Ns
        | AnswerData::DnsVersion
        | AnswerData::Cname(_)
        | AnswerData::ExternalNs
        | AnswerData::ExternalSrv(_) => return None,
    }
    let mut authorities: u16 = 0;
    if rcode != 0 || answers == 0 {
        w.soa(snapshot, zone)?;
        authorities = 1;
    }
    if let Some(e) = q.edns {
        let do_bit = if e.dnssec_ok { 0x80 } else { 0 };
        w.put(&[0, 0, 41])?;
        w.put(&e.payload.to_be_bytes())?;
        w.put(&[0, 0, do_bit, 0, 0, 0])?;
        additionals += 1;
    }
    let len = w.pos;
    let buf = w.buf;
    buf.get_mut(6..8)?.copy_from_slice(&answers.to_be_bytes());
    buf.get_mut(8..10)?
        .copy_from_slice(&authorities.to_be_bytes());
    buf.get_mut(10..12)?
        .copy_from_slice(&additionals.to_be_bytes());
    Some(Answered {
        len,
        qtype: q.qtype,
        rcode,
    })
}

/// The client's OPT record, as far as the response needs it.
#[derive(Clone, Copy)]
struct ClientEdns {
    /// The payload size the response offers: min(client's, 1232), at least 512.
    payload: u16,
    dnssec_ok: bool,
}

/// A query the fast path takes, read from its header, question and OPT.
struct Query {
    /// Flag bytes of the header.
    flags: [u8; 2],
    /// End of the question name (after its root label).
    name_end: usize,
    /// End of the question (after type and class).
    question_end: usize,
    qtype: u16,
    edns: Option<ClientEdns>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Reads the question name of `query` (plain labels from offset 12, no compression) into
/// `labels`, with the offset where each starts in `offsets`, as far as it reads; the number of
/// labels.
pub(super) fn question_labels<'q>(
    query: &'q [u8],
    labels: &mut [&'q [u8]; MAX_LABELS],
    offsets: &mut [u16; MAX_LABELS],
) -> usize {
    let (mut n, mut pos) = (0, 12);
    while let Some(&len) = query.get(pos) {
        let len = usize::from(len);
        if len == 0 || len > 63 || n == MAX_LABELS {
            break;
        }
        let Some(label) = query.get(pos + 1..pos + 1 + len) else {
            break;
        };
        labels[n] = label;
        offsets[n] = u16::try_from(pos).unwrap_or(u16::MAX);
        n += 1;
        pos += 1 + len;
    }
    n
}

impl Query {
    fn parse(query: &[u8]) -> Option<Self> {
        let flags = [*query.get(2)?, *query.get(3)?];
        // QR clear, opcode QUERY; exactly one question, no answers or authorities.
        if flags[0] & 0xf8 != 0 || u16_at(query, 4)? != 1 || u16_at(query, 6)? != 0 {
            return None;
        }
        if u16_at(query, 8)? != 0 {
            return None;
        }
        let additionals = u16_at(query, 10)?;
        // The name: plain labels of letters, digits, `-` and `_` (no compression pointer).
        let mut pos = 12;
        loop {
            let len = usize::from(*query.get(pos)?);
            if len == 0 {
                pos += 1;
                break;
            }
            if len > 63 {
                return None;
            }
            let label = query.get(pos + 1..pos + 1 + len)?;
            if !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            {
                return None;
            }
            pos += 1 + len;
        }
        if pos - 12 > 255 {
            return None;
        }
        let name_end = pos;
        let qtype = u16_at(query, pos)?;
        if u16_at(query, pos + 2)? != CLASS_IN || !fast_type(qtype) {
            return None;
        }
        pos += 4;
        let question_end = pos;
        let edns = match additionals {
            0 => None,
            1 => {
                // OPT: root owner, type 41, class = payload size, TTL = extended rcode,
                // version and flags, then options.
                if *query.get(pos)? != 0 || u16_at(query, pos + 1)? != TYPE_OPT {
                    return None;
                }
                let payload = u16_at(query, pos + 3)?;
                let (ext_rcode, version) = (*query.get(pos + 5)?, *query.get(pos + 6)?);
                if ext_rcode != 0 || version != 0 {
                    return None;
                }
                let dnssec_ok = *query.get(pos + 7)? & 0x80 != 0;
                let rdlen = usize::from(u16_at(query, pos + 9)?);
                pos += 11;
                let options = query.get(pos..pos + rdlen)?;
                if !plain_options(options) {
                    return None;
                }
                pos += rdlen;
                Some(ClientEdns {
                    payload: clamp_payload(payload),
                    dnssec_ok,
                })
            }
            _ => return None,
        };
        // Nothing after the last record.
        if pos != query.len() {
            return None;
        }
        Some(Self {
            flags,
            name_end,
            question_end,
            qtype,
            edns,
        })
    }
}

/// Query types the fast path takes (others, and zone transfers, go the general way).
fn fast_type(t: u16) -> bool {
    matches!(
        RecordType::from(t),
        RecordType::A
            | RecordType::AAAA
            | RecordType::SRV
            | RecordType::PTR
            | RecordType::SOA
            | RecordType::NS
            | RecordType::CNAME
            | RecordType::TXT
            | RecordType::MX
            | RecordType::ANY
            | RecordType::HTTPS
            | RecordType::SVCB
    )
}

/// Whether the OPT options are well formed and of kinds kept as opaque bytes (cookies,
/// padding, unassigned codes); anything the general decoder reads field by field (client
/// subnet, NSID, algorithm lists…) takes the general path.
fn plain_options(mut rdata: &[u8]) -> bool {
    while !rdata.is_empty() {
        let (Some(code), Some(len)) = (u16_at(rdata, 0), u16_at(rdata, 2)) else {
            return false;
        };
        if !(code == 10 || code == 12 || code >= 14) {
            return false;
        }
        match rdata.get(4 + usize::from(len)..) {
            Some(rest) => rdata = rest,
            None => return false,
        }
    }
    true
}

fn target_addresses<'a>(svc: &'a ServiceRecords, srv: &Srv) -> &'a [IpAddr] {
    match srv.target() {
        None => &svc.addresses,
        Some(i) => svc
            .endpoints
            .get(i as usize)
            .map(|e| &*e.addresses)
            .unwrap_or_default(),
    }
}

/// `name` in wire form (labels, then the root label) in `buf`; `None` if it does not fit.
fn wire_name<'b>(name: &hickory_proto::rr::Name, buf: &'b mut [u8; 255]) -> Option<&'b [u8]> {
    let mut pos = 0;
    for label in name.iter() {
        let len = u8::try_from(label.len()).ok()?;
        *buf.get_mut(pos)? = len;
        buf.get_mut(pos + 1..pos + 1 + label.len())?
            .copy_from_slice(label);
        pos += 1 + label.len();
    }
    *buf.get_mut(pos)? = 0;
    buf.get(..=pos)
}

/// A cursor over the output buffer; every write fails (`None`) past its end.
struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.pos + bytes.len();
        self.buf.get_mut(self.pos..end)?.copy_from_slice(bytes);
        self.pos = end;
        Some(())
    }

    /// Class IN, `ttl`, and a placeholder RDLENGTH whose offset is returned.
    fn record_head(&mut self, ttl: u32) -> Option<usize> {
        self.put(&CLASS_IN.to_be_bytes())?;
        self.put(&ttl.to_be_bytes())?;
        let at = self.pos;
        self.put(&[0, 0])?;
        Some(at)
    }

    fn finish_rdata(&mut self, rdlen_at: usize) -> Option<()> {
        let len = u16::try_from(self.pos - rdlen_at - 2).ok()?;
        self.buf
            .get_mut(rdlen_at..rdlen_at + 2)?
            .copy_from_slice(&len.to_be_bytes());
        Some(())
    }

    /// A compression pointer to `at`.
    fn pointer(&mut self, at: u16) -> Option<()> {
        if at >= 0x4000 {
            return None;
        }
        self.put(&(0xc000 | at).to_be_bytes())
    }

    /// One label: letters, digits, `-` and `_` only (what the general path's text parser
    /// reads the same way).
    fn label(&mut self, label: &[u8]) -> Option<()> {
        if label.is_empty()
            || label.len() > 63
            || !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return None;
        }
        self.put(&[label.len() as u8])?;
        self.put(label)
    }

    /// An A or AAAA record of `ip` owned by the name at `owner`.
    fn address(&mut self, owner: u16, ttl: u32, ip: IpAddr) -> Option<()> {
        self.pointer(owner)?;
        match ip {
            IpAddr::V4(v4) => {
                self.put(&TYPE_A.to_be_bytes())?;
                self.record_head(ttl)?;
                self.buf
                    .get_mut(self.pos - 2..self.pos)?
                    .copy_from_slice(&[0, 4]);
                self.put(&v4.octets())
            }
            IpAddr::V6(v6) => {
                self.put(&TYPE_AAAA.to_be_bytes())?;
                self.record_head(ttl)?;
                self.buf
                    .get_mut(self.pos - 2..self.pos)?
                    .copy_from_slice(&[0, 16]);
                self.put(&v6.octets())
            }
        }
    }

    /// The zone's SOA, owned by the zone name at `zone`.
    fn soa(&mut self, snap: &Snapshot, zone: u16) -> Option<()> {
        self.pointer(zone)?;
        self.put(&TYPE_SOA.to_be_bytes())?;
        let rdlen = self.record_head(snap.soa_ttl())?;
        self.put(b"\x02ns\x03dns")?;
        self.pointer(zone)?;
        self.put(b"\x0ahostmaster")?;
        self.pointer(zone)?;
        self.put(&snap.serial.to_be_bytes())?;
        for t in SOA_TIMERS {
            self.put(&t.to_be_bytes())?;
        }
        self.put(&snap.config.ttl.to_be_bytes())?;
        self.finish_rdata(rdlen)
    }

    /// `[<endpoint>.]<service>.<namespace>.svc.<zone>`, the zone as the question spells it
    /// (`zone` is its wire form, root label included).
    fn service_target(
        &mut self,
        svc: &ServiceRecords,
        endpoint: Option<u32>,
        zone: &[u8],
    ) -> Option<()> {
        let start = self.pos;
        if let Some(i) = endpoint {
            self.label(svc.endpoints.get(i as usize)?.label.as_bytes())?;
        }
        self.label(svc.name.as_bytes())?;
        self.label(svc.namespace.as_bytes())?;
        self.put(b"\x03svc")?;
        self.put(zone)?;
        (self.pos - start <= 255).then_some(())
    }
}
