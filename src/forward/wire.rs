//! Cache hits answered from packet bytes to packet bytes.
//!
//! Every cacheable entry keeps its sections encoded once, as they follow a question of the
//! same name at offset 12 (compressed against it), with the offset and upstream TTL of every
//! record. A later query for the same key, read straight from its packet, is answered by
//! writing the header, copying the client's question as spelled, copying the sections, setting
//! each TTL to what `Entry::reply` would give, and appending the OPT record the server would
//! send. The client's question is as long as the stored one (the same name up to case, without
//! compression), so the stored pointers land where they did.
//!
//! Only the common case takes this path: a standard query, one question of class IN, no
//! answer or authority records, at most one OPT record (version 0), a fresh entry outside the
//! prefetch window whose response fits the size the client allows. Everything else gets `None`
//! and goes through the general path, which answers the same (`tests/it/forward.rs` compares).

use hickory_proto::op::{Message, MessageType, OpCode, Query};

use super::cache::{Entry, KEY_CD, KEY_DO};
use crate::wire::{
    OPT_LEN, Question, TYPE_AXFR, TYPE_IXFR, opt_record, record_at, reply_limit, skip_name,
};

/// Longest key: a 255-byte wire name, type, class and the flags byte.
const KEY_MAX: usize = 255 + 5;

/// The sections of a cached answer, encoded.
#[derive(Debug)]
pub(crate) struct WireAnswer {
    /// Answer, authority and additional records as encoded after the question.
    body: Box<[u8]>,
    /// Where each record's TTL field starts in `body`, and the TTL the upstream gave.
    ttls: Box<[(u16, u32)]>,
    /// Answer, authority and additional counts.
    counts: [u16; 3],
}

impl WireAnswer {
    /// Encodes the sections of the upstream reply `m` after its question, lower-cased; `None`
    /// when it has no question or does not encode whole.
    pub(crate) fn build(m: &Message) -> Option<Self> {
        let q = m.queries.first()?;
        let mut out = Message::new(0, MessageType::Response, OpCode::Query);
        let mut question = Query::query(q.name().to_lowercase(), q.query_type());
        question.set_query_class(q.query_class());
        out.add_query(question);
        out.answers = m.answers.clone();
        out.authorities = m.authorities.clone();
        out.additionals = m.additionals.clone();
        let bytes = out.to_vec().ok()?;
        let count = |at: usize| Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
        let counts = [count(6)?, count(8)?, count(10)?];
        let want = [m.answers.len(), m.authorities.len(), m.additionals.len()];
        if counts.iter().zip(want).any(|(c, w)| usize::from(*c) != w) {
            return None;
        }
        let start = skip_name(&bytes, 12)? + 4;
        let mut ttls = Vec::with_capacity(want.iter().sum());
        let mut pos = start;
        for _ in 0..want.iter().sum::<usize>() {
            let record = record_at(&bytes, pos)?;
            let at = record.ttl_at;
            let ttl = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
            ttls.push((u16::try_from(at - start).ok()?, ttl));
            pos = record.end;
        }
        if pos != bytes.len() {
            return None;
        }
        Some(Self {
            body: bytes.get(start..)?.into(),
            ttls: ttls.into(),
            counts,
        })
    }
}

/// A query as the cache path reads it: the question (`wire::Question`, read once per packet)
/// and the cache key made from it.
pub struct CacheQuery<'a> {
    packet: &'a [u8],
    /// End of the question (after QCLASS).
    question_end: usize,
    /// The cache key: lower-case wire name, type, class, flags (see `cache::Key`).
    key: [u8; KEY_MAX],
    key_len: usize,
    /// The client's EDNS payload size and DO bit.
    edns: Option<(u16, bool)>,
}

impl<'a> CacheQuery<'a> {
    /// The cache path's reading of `q`, when it takes it: not a zone transfer, EDNS version 0.
    pub fn new(q: &Question<'a>) -> Option<Self> {
        let qtype = q.qtype();
        if qtype == TYPE_AXFR || qtype == TYPE_IXFR || q.edns().is_some_and(|e| e.version != 0) {
            return None;
        }
        let mut key = [0u8; KEY_MAX];
        let name = q.name();
        let key_len = name.len();
        let lowered = key.get_mut(..key_len)?;
        lowered.copy_from_slice(name);
        // One pass the compiler vectorizes. The label lengths, lowered with the rest, are
        // below 64: unchanged.
        lowered.make_ascii_lowercase();
        let packet = q.packet();
        let fixed = packet.get(q.name_end()..q.question_end())?;
        key.get_mut(key_len..key_len + 4)?.copy_from_slice(fixed);
        let edns = q.edns().map(|e| (e.payload, e.dnssec_ok));
        let dnssec_ok = edns.is_some_and(|(_, d)| d);
        let cd = q.flags()[1] & 0x10 != 0;
        *key.get_mut(key_len + 4)? =
            if dnssec_ok { KEY_DO } else { 0 } | if cd { KEY_CD } else { 0 };
        Some(Self {
            packet,
            question_end: q.question_end(),
            key,
            key_len: key_len + 5,
            edns,
        })
    }

    /// Reads `packet` when it is a query this path takes (`wire::Question`, then [`Self::new`]).
    #[cfg(test)]
    fn parse(packet: &'a [u8]) -> Option<Self> {
        Self::new(&Question::parse(packet)?)
    }

    /// The cache key's bytes.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }

    /// The query name, lower case, in wire form.
    pub fn name(&self) -> &[u8] {
        &self.key[..self.key_len - 5]
    }

    /// The query type, as on the wire.
    pub fn qtype(&self) -> u16 {
        u16::from_be_bytes([self.key[self.key_len - 5], self.key[self.key_len - 4]])
    }

    /// The most bytes the response may take: 512 over UDP without EDNS, the client's payload
    /// size capped at 1232 (at least 512) with it, 65535 over TCP.
    pub fn limit(&self, tcp: bool) -> usize {
        reply_limit(tcp, self.edns.map(|(payload, _)| payload))
    }

    /// Writes the response from `entry` into `out` as of `age` seconds after it was stored:
    /// the length written, or `None` when the entry has no wire form or the response does not
    /// fit `limit` or `out`.
    pub(crate) fn respond(
        &self,
        entry: &Entry,
        age: u32,
        limit: usize,
        out: &mut [u8],
    ) -> Option<usize> {
        let wire = entry.wire.as_ref()?;
        let question = self.packet.get(12..self.question_end)?;
        let body_at = 12 + question.len();
        let opt = if self.edns.is_some() { OPT_LEN } else { 0 };
        let len = body_at + wire.body.len() + opt;
        if len > limit {
            return None;
        }
        let out = out.get_mut(..len)?;
        let rcode = u8::try_from(u16::from(entry.rcode))
            .ok()
            .filter(|r| *r < 16)?;
        out[0] = self.packet[0];
        out[1] = self.packet[1];
        // QR, opcode QUERY, RD copied; RA, AD from the upstream, CD copied, the rcode.
        out[2] = 0x80 | (self.packet[2] & 0x01);
        out[3] =
            0x80 | if entry.authentic_data { 0x20 } else { 0 } | (self.packet[3] & 0x10) | rcode;
        let additional = wire.counts[2] + u16::from(self.edns.is_some());
        out[4..6].copy_from_slice(&1u16.to_be_bytes());
        out[6..8].copy_from_slice(&wire.counts[0].to_be_bytes());
        out[8..10].copy_from_slice(&wire.counts[1].to_be_bytes());
        out[10..12].copy_from_slice(&additional.to_be_bytes());
        out[12..body_at].copy_from_slice(question);
        let body = &mut out[body_at..body_at + wire.body.len()];
        body.copy_from_slice(&wire.body);
        for &(at, ttl) in wire.ttls.iter() {
            let at = usize::from(at);
            let served = ttl.min(entry.ttl).saturating_sub(age);
            body.get_mut(at..at + 4)?
                .copy_from_slice(&served.to_be_bytes());
        }
        if let Some((payload, dnssec_ok)) = self.edns {
            out[len - OPT_LEN..]
                .copy_from_slice(&opt_record(crate::wire::clamp_payload(payload), dnssec_ok));
        }
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{Name, RecordType};

    /// A small cache's settings with `min_ttl`, no serving stale.
    fn settings(min_ttl: u32) -> crate::forward::CacheSettings {
        crate::forward::CacheSettings {
            size: 10,
            max_ttl: 3600,
            max_negative_ttl: 1800,
            min_ttl,
            serve_stale: std::time::Duration::ZERO,
        }
    }

    fn query(name: &str, qtype: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
        let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some((payload, dnssec_ok)) = edns {
            let mut e = hickory_proto::op::Edns::new();
            e.set_max_payload(payload);
            e.set_dnssec_ok(dnssec_ok);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn key_from_a_packet_is_the_key_of_the_name() {
        for (name, qtype, edns) in [
            ("Www.Example.COM.", RecordType::A, None),
            (".", RecordType::NS, Some((1232, true))),
            (
                "a.b.c.d.e.f.example.org.",
                RecordType::SRV,
                Some((4096, false)),
            ),
        ] {
            let packet = query(name, qtype, edns);
            let q = CacheQuery::parse(&packet).unwrap();
            let key = super::super::Key::new(
                &Name::from_ascii(name).unwrap(),
                qtype,
                hickory_proto::rr::DNSClass::IN,
                edns.is_some_and(|(_, d)| d),
                false,
            );
            let bytes: &[u8] = std::borrow::Borrow::borrow(&key);
            assert_eq!(q.key(), bytes, "{name}");
            assert_eq!(q.qtype(), u16::from(qtype));
        }
    }

    #[test]
    fn a_hit_is_the_entry_as_of_its_age() {
        use hickory_proto::rr::rdata::{A, SOA};
        use hickory_proto::rr::{RData, Record};
        use std::time::Instant;

        let settings = settings(5);
        let name = Name::from_ascii("www.example.com.").unwrap();
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name.clone(), RecordType::A));
        m.metadata.authentic_data = true;
        m.answers = vec![
            Record::from_rdata(name.clone(), 300, RData::A(A::new(192, 0, 2, 1))),
            Record::from_rdata(name.clone(), 100, RData::A(A::new(192, 0, 2, 2))),
        ];
        let zone = Name::from_ascii("example.com.").unwrap();
        let soa = SOA::new(zone.clone(), zone.clone(), 1, 2, 3, 4, 60);
        m.authorities = vec![Record::from_rdata(zone, 900, RData::SOA(soa))];
        let entry = Entry::from_message(m, &settings, true);
        assert_eq!(entry.ttl, 100);

        let packet = query("WWW.example.com.", RecordType::A, Some((4096, true)));
        let q = CacheQuery::parse(&packet).unwrap();
        let mut out = [0u8; 1232];
        // 30 s after it was stored.
        let len = q.respond(&entry, 30, q.limit(false), &mut out).unwrap();
        let got = Message::from_vec(&out[..len]).unwrap();
        let want = entry.reply(Instant::now(), false);
        assert_eq!(got.metadata.id, 0x4242);
        assert!(got.metadata.recursion_desired && got.metadata.recursion_available);
        assert!(got.metadata.authentic_data && !got.metadata.authoritative);
        assert_eq!(got.queries[0].name().to_ascii(), "WWW.example.com.");
        let ttls = |rs: &[Record]| rs.iter().map(|r| r.ttl).collect::<Vec<_>>();
        assert_eq!(ttls(&got.answers), [70, 70], "min(record, entry) - 30");
        assert_eq!(ttls(&got.authorities), [70]);
        let data = |rs: &[Record]| rs.iter().map(|r| r.data.clone()).collect::<Vec<_>>();
        assert_eq!(data(&got.answers), data(&want.answers));
        assert_eq!(data(&got.authorities), data(&want.authorities));
        let edns = got.edns.unwrap();
        assert_eq!(edns.max_payload(), 1232);
        assert!(edns.flags().dnssec_ok);
        // Past its lifetime the TTLs stop at 0; a 512-byte limit it does not fit is refused.
        let len = q.respond(&entry, 500, q.limit(false), &mut out).unwrap();
        let got = Message::from_vec(&out[..len]).unwrap();
        assert_eq!(ttls(&got.answers), [0, 0]);
        assert!(q.respond(&entry, 0, 40, &mut out).is_none());
    }

    #[test]
    fn odd_packets_are_left_to_the_general_path() {
        let good = query("example.com.", RecordType::A, Some((1232, false)));
        assert!(CacheQuery::parse(&good).is_some());
        // Cut short, trailing bytes, QR set, an answer count, a compressed question, class CH.
        assert!(CacheQuery::parse(&good[..good.len() - 1]).is_none());
        assert!(CacheQuery::parse(&[good.as_slice(), &[0]].concat()).is_none());
        let mut qr = good.clone();
        qr[2] |= 0x80;
        assert!(CacheQuery::parse(&qr).is_none());
        let mut an = good.clone();
        an[7] = 1;
        assert!(CacheQuery::parse(&an).is_none());
        let mut pointer = query("example.com.", RecordType::A, None);
        pointer.splice(12..25, [0xC0, 0x0C]);
        assert!(CacheQuery::parse(&pointer).is_none());
        let mut ch = query("example.com.", RecordType::A, None);
        let at = ch.len() - 1;
        ch[at] = 3;
        assert!(CacheQuery::parse(&ch).is_none());
        let axfr = query("example.com.", RecordType::AXFR, None);
        assert!(CacheQuery::parse(&axfr).is_none());
    }

    /// The fast path's one-reading check agrees with `remaining`, `in_prefetch_window` and
    /// `age` at every age around the boundaries, with prefetching on and off.
    #[test]
    fn fresh_age_decides_as_remaining_and_the_prefetch_window() {
        use hickory_proto::rr::rdata::A;
        use hickory_proto::rr::{RData, Record};
        use std::time::Duration;

        for ttl in [1u32, 5, 9, 10, 11, 30, 300] {
            let settings = settings(1);
            let name = Name::from_ascii("www.example.com.").unwrap();
            let mut m = Message::new(7, MessageType::Response, OpCode::Query);
            m.add_query(Query::query(name.clone(), RecordType::A));
            m.answers = vec![Record::from_rdata(
                name,
                ttl,
                RData::A(A::new(192, 0, 2, 1)),
            )];
            let entry = Entry::from_message(m, &settings, true);
            assert_eq!(entry.ttl, ttl);
            let stored = entry.stored_at();
            let ms = u64::from(ttl) * 1000;
            let ages = (0..=ms + 1500)
                .step_by(250)
                .chain([ms - 1, ms, ms + 1, ms - ms / 10]);
            for age_ms in ages {
                let now = stored + Duration::from_millis(age_ms);
                for prefetch in [false, true] {
                    let want = entry
                        .remaining(now)
                        .filter(|_| !(prefetch && entry.in_prefetch_window(now)))
                        .map(|_| entry.age(now));
                    assert_eq!(
                        entry.fresh_age(now, || prefetch),
                        want,
                        "ttl {ttl} s, age {age_ms} ms, prefetch {prefetch}"
                    );
                }
            }
        }
    }
}
