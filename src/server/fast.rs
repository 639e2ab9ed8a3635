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

use crate::model::Ips;
use hickory_proto::rr::RecordType;

use crate::wire::{
    CLASS_IN, Question, TYPE_A, TYPE_AAAA, TYPE_PTR, TYPE_SOA, TYPE_SRV, opt_record,
};
use crate::zone::{
    AnswerData, AnswerZone, Rcode, SOA_TIMERS, ServiceRecords, Snapshot, Srv, lookup_labels,
    ptr_names, target_addresses,
};

/// Most SRV records the fast path writes; larger sets (a big headless Service over TCP) take
/// the hickory path.
const MAX_SRV: usize = 64;

/// `zone::CLUSTER_MNAME` and `zone::HOSTMASTER` in wire form, without the zone.
const MNAME_WIRE: &[u8] = b"\x02ns\x03dns";
const HOSTMASTER_WIRE: &[u8] = b"\x0ahostmaster";

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
    answer_question(snapshot, &Question::parse(query)?, options, out)
}

/// [`answer`] for a question already read from its packet.
pub fn answer_question(
    snapshot: &Snapshot,
    q: &Question<'_>,
    options: Options,
    out: &mut [u8],
) -> Option<Answered> {
    if !takes(q) {
        return None;
    }
    let query = q.packet();
    let labels = q.labels();
    let offsets = q.offsets();
    let n = labels.len();
    let qtype = RecordType::from(q.qtype());
    let found = lookup_labels(snapshot, labels, qtype);
    let zone_labels = match found.zone {
        // The external and clusterset zones take the general path.
        AnswerZone::None | AnswerZone::External { .. } | AnswerZone::Clusterset { .. } => {
            return None;
        }
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
    let limit = q.limit(!options.udp);
    let mut w = Writer {
        buf: out.get_mut(..limit.min(out.len()))?,
        pos: 0,
    };
    let ttl = snapshot.config.ttl;

    w.header(q, options.recursion_available, rcode)?;

    let mut answers: u16 = 0;
    let mut additionals: u16 = 0;
    match found.data {
        AnswerData::Empty => {}
        AnswerData::Addresses { addrs, v6 } => {
            answers = w.addresses(addrs, v6, ttl, options.shuffle)?;
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
            let zone_name = query.get(usize::from(zone)..q.name_end())?;
            (answers, additionals) = w.srv_set(service, srv, ttl, zone_name)?;
        }
        AnswerData::Ptr { ip, targets } => {
            // Targets are spelled under the zone's own name (the question is a reverse name):
            // its wire form, in a buffer on the stack.
            let mut origin = [0u8; 255];
            let origin = wire_name(&snapshot.config.origin, &mut origin)?;
            for (service, endpoint) in ptr_names(snapshot, ip, targets) {
                w.ptr(service, endpoint, ttl, origin)?;
                answers += 1;
            }
        }
        // NS with glue, the dns-version TXT and ExternalName CNAMEs (which may need chasing)
        // take the general path.
        AnswerData::Ns
        | AnswerData::DnsVersion
        | AnswerData::ClustersetVersion
        | AnswerData::Cname(_)
        | AnswerData::ExternalNs
        | AnswerData::ExternalSrv(_) => return None,
    }
    let mut authorities: u16 = 0;
    if rcode != 0 || answers == 0 {
        w.soa(snapshot, zone)?;
        authorities = 1;
    }
    if let Some(e) = q.edns() {
        w.put(&opt_record(e.response_payload(), e.dnssec_ok))?;
        additionals += 1;
    }
    let len = w.pos;
    w.counts([answers, authorities, additionals])?;
    Some(Answered {
        len,
        qtype: q.qtype(),
        rcode,
    })
}

/// Whether the fast path takes `q`: labels of letters, digits, `-` and `_` only, a type it
/// answers, and an OPT record (if any) of version 0 with options kept as opaque bytes.
fn takes(q: &Question<'_>) -> bool {
    q.plain_labels()
        && fast_type(q.qtype())
        && q.edns()
            .is_none_or(|e| e.version == 0 && e.ext_rcode == 0 && e.plain_options)
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

    /// The header (ID, QR, opcode 0, AA, RD copied; RA, CD copied, `rcode`; one question,
    /// counts to follow) and the question as the client spelled it.
    fn header(&mut self, q: &Question<'_>, recursion_available: bool, rcode: u8) -> Option<()> {
        let flags = q.flags();
        self.put(q.packet().get(..2)?)?;
        self.put(&[
            0x80 | 0x04 | (flags[0] & 0x01),
            (if recursion_available { 0x80 } else { 0 }) | (flags[1] & 0x10) | rcode,
        ])?;
        self.put(&[0, 1, 0, 0, 0, 0, 0, 0])?;
        self.put(q.question())
    }

    /// Sets the header's answer, authority and additional counts.
    fn counts(&mut self, counts: [u16; 3]) -> Option<()> {
        for (i, c) in counts.iter().enumerate() {
            self.buf
                .get_mut(6 + 2 * i..8 + 2 * i)?
                .copy_from_slice(&c.to_be_bytes());
        }
        Some(())
    }

    /// The addresses of one family (`v6`) of `addrs`, owned by the question name: the number
    /// written. With `shuffle` they start at a random one (a rotation).
    fn addresses(&mut self, addrs: Ips<'_>, v6: bool, ttl: u32, shuffle: bool) -> Option<u16> {
        let family = || addrs.family(v6);
        let start = if shuffle {
            let n = family().count();
            if n > 1 { rand::random_range(0..n) } else { 0 }
        } else {
            0
        };
        let mut written = 0;
        for ip in family().skip(start).chain(family().take(start)) {
            self.address(12, ttl, ip)?;
            written += 1;
        }
        Some(written)
    }

    /// The SRV records of `service` owned by the question name, their targets under `zone`
    /// (wire form), then each distinct target's addresses as glue: the numbers of answer and
    /// additional records written. `None` beyond `MAX_SRV` records.
    fn srv_set(
        &mut self,
        service: &ServiceRecords,
        srv: &[Srv],
        ttl: u32,
        zone: &[u8],
    ) -> Option<(u16, u16)> {
        if srv.len() > MAX_SRV {
            return None;
        }
        // Where each SRV record's target name starts, for the glue's owner names.
        let mut targets = [0u16; MAX_SRV];
        for (s, at) in srv.iter().zip(targets.iter_mut()) {
            self.put(&[0xc0, 12])?;
            self.put(&TYPE_SRV.to_be_bytes())?;
            let rdlen = self.record_head(ttl)?;
            self.put(&[0, 0])?;
            self.put(&s.weight.to_be_bytes())?;
            self.put(&s.port.to_be_bytes())?;
            *at = u16::try_from(self.pos).ok()?;
            self.service_target(service, s.target(), zone)?;
            self.finish_rdata(rdlen)?;
        }
        let mut additionals = 0;
        for (i, s) in srv.iter().enumerate() {
            if srv.get(..i)?.iter().any(|p| p.target() == s.target()) {
                continue;
            }
            for ip in target_addresses(service, s) {
                self.address(*targets.get(i)?, ttl, ip)?;
                additionals += 1;
            }
        }
        Some((u16::try_from(srv.len()).ok()?, additionals))
    }

    /// A PTR record owned by the question name, its target `[<endpoint>.]<service>` under
    /// `origin` (wire form).
    fn ptr(
        &mut self,
        service: &ServiceRecords,
        endpoint: Option<u32>,
        ttl: u32,
        origin: &[u8],
    ) -> Option<()> {
        self.put(&[0xc0, 12])?;
        self.put(&TYPE_PTR.to_be_bytes())?;
        let rdlen = self.record_head(ttl)?;
        self.service_target(service, endpoint, origin)?;
        self.finish_rdata(rdlen)
    }

    /// The zone's SOA, owned by the zone name at `zone`.
    fn soa(&mut self, snap: &Snapshot, zone: u16) -> Option<()> {
        self.pointer(zone)?;
        self.put(&TYPE_SOA.to_be_bytes())?;
        let rdlen = self.record_head(snap.soa_ttl())?;
        self.put(MNAME_WIRE)?;
        self.pointer(zone)?;
        self.put(HOSTMASTER_WIRE)?;
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
            self.label(svc.endpoints.get(i as usize)?.label)?;
        }
        self.label(svc.name.as_bytes())?;
        self.label(svc.namespace.as_bytes())?;
        self.put(b"\x03svc")?;
        self.put(zone)?;
        (self.pos - start <= 255).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The labels of a relative dotted name in wire form.
    fn wire(dotted: &str) -> Vec<u8> {
        dotted
            .split('.')
            .flat_map(|l| std::iter::once(l.len() as u8).chain(l.bytes()))
            .collect()
    }

    #[test]
    fn soa_names_are_the_zone_modules() {
        assert_eq!(MNAME_WIRE, wire(crate::zone::CLUSTER_MNAME));
        assert_eq!(HOSTMASTER_WIRE, wire(crate::zone::HOSTMASTER));
    }
}
