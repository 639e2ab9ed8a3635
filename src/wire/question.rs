//! The question of a query, read once per packet from its bytes: the labels of the name and
//! where each starts, the type, the client's OPT record, where the question ends. The fast
//! path, the cache lookup, the metrics and the query log all take this one reading.
//!
//! It reads the shape every packet-level path shares: a standard QUERY (QR clear, opcode 0)
//! with exactly one question of class IN, no answer or authority records, at most one
//! additional record which must be an OPT, and nothing after it. The name is plain labels
//! (no compression), at most 255 bytes. Anything else gets `None`, and the general path
//! (hickory's decoder) answers it. What only some paths accept (letters-digits-hyphen
//! labels, OPT options kept as opaque bytes) is recorded, for each path to check.

use std::mem::MaybeUninit;

use super::{CLASS_IN, TYPE_OPT, clamp_payload, u16_at};

/// The bytes of a plain label: ASCII letters, digits, `-` and `_` (a table: one load a byte).
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    t
};

/// Most labels a DNS name can have (255 octets: 127 one-character labels and the root).
pub const MAX_LABELS: usize = 128;

/// Bytes of an OPT record without options: root name, type, class, TTL, RDLENGTH.
pub const OPT_LEN: usize = 11;

/// The client's OPT record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientEdns {
    /// The payload size the client offers, as sent.
    pub payload: u16,
    /// The DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// The EDNS version.
    pub version: u8,
    /// The upper bits of the extended response code (zero in a query).
    pub ext_rcode: u8,
    /// Whether every option is well formed and of a kind kept as opaque bytes (cookies,
    /// padding, unassigned codes), not one the general decoder reads field by field (client
    /// subnet, NSID, algorithm lists…).
    pub plain_options: bool,
}

impl ClientEdns {
    /// The payload size a response offers: min(client's, 1232), at least 512.
    pub fn response_payload(&self) -> u16 {
        clamp_payload(self.payload)
    }
}

/// One query's question, as read from its packet.
pub struct Question<'p> {
    packet: &'p [u8],
    /// The labels read so far: the first `count` are written, the rest never read. Left
    /// uninitialised rather than zeroed: zeroing the 2 KiB on every packet cost more than
    /// reading a typical name.
    labels: [MaybeUninit<&'p [u8]>; MAX_LABELS],
    /// Where each label of `labels` starts in the packet; the first `count` are written.
    offsets: [MaybeUninit<u16>; MAX_LABELS],
    count: usize,
    name_end: usize,
    question_end: usize,
    qtype: u16,
    edns: Option<ClientEdns>,
    plain: bool,
}

impl<'p> Question<'p> {
    /// Reads `packet` when it has the shape the module describes.
    pub fn parse(packet: &'p [u8]) -> Option<Self> {
        let mut q = Self::unread(packet);
        q.read().then_some(q)
    }

    /// A question of `packet` not read yet: [`Self::read`] reads it in place. The per-packet
    /// path uses the pair rather than [`Self::parse`], so that the 2 KiB of label slices are
    /// written once where they stay, never moved.
    #[inline]
    pub fn unread(packet: &'p [u8]) -> Self {
        Self {
            packet,
            labels: [const { MaybeUninit::uninit() }; MAX_LABELS],
            offsets: [const { MaybeUninit::uninit() }; MAX_LABELS],
            count: 0,
            name_end: 0,
            question_end: 0,
            qtype: 0,
            edns: None,
            plain: true,
        }
    }

    /// Reads the packet: whether it has the shape the module describes.
    pub fn read(&mut self) -> bool {
        self.read_parts().is_some()
    }

    fn read_parts(&mut self) -> Option<()> {
        let packet = self.packet;
        let q = self;
        let header = packet.get(..12)?;
        // QR clear, opcode QUERY; one question; no answers or authorities; at most one more.
        if header[2] & 0xf8 != 0 || header[4..10] != [0, 1, 0, 0, 0, 0] {
            return None;
        }
        let additionals = u16_at(header, 10)?;
        if additionals > 1 {
            return None;
        }
        let mut pos = 12;
        loop {
            let len = usize::from(*packet.get(pos)?);
            if len == 0 {
                pos += 1;
                break;
            }
            if len > 63 || q.count == MAX_LABELS {
                return None;
            }
            let label = packet.get(pos + 1..pos + 1 + len)?;
            q.plain &= label.iter().all(|b| PLAIN[usize::from(*b)]);
            let offset = u16::try_from(pos).ok()?;
            // Both written before `count` covers them (see `labels` and `offsets`).
            q.labels[q.count] = MaybeUninit::new(label);
            q.offsets[q.count] = MaybeUninit::new(offset);
            q.count += 1;
            pos += 1 + len;
        }
        if pos - 12 > 255 {
            return None;
        }
        q.name_end = pos;
        q.qtype = u16_at(packet, pos)?;
        if u16_at(packet, pos + 2)? != CLASS_IN {
            return None;
        }
        pos += 4;
        q.question_end = pos;
        if additionals == 1 {
            // OPT: root owner, type 41, class = payload size, TTL = extended rcode, version
            // and flags, then options.
            if *packet.get(pos)? != 0 || u16_at(packet, pos + 1)? != TYPE_OPT {
                return None;
            }
            let rdlen = usize::from(u16_at(packet, pos + 9)?);
            let options = packet.get(pos + OPT_LEN..pos + OPT_LEN + rdlen)?;
            q.edns = Some(ClientEdns {
                payload: u16_at(packet, pos + 3)?,
                ext_rcode: *packet.get(pos + 5)?,
                version: *packet.get(pos + 6)?,
                dnssec_ok: *packet.get(pos + 7)? & 0x80 != 0,
                plain_options: plain_options(options),
            });
            pos += OPT_LEN + rdlen;
        }
        // Nothing after the last record.
        (pos == packet.len()).then_some(())
    }

    /// The packet it was read from.
    pub fn packet(&self) -> &'p [u8] {
        self.packet
    }

    /// The two flag bytes of the header.
    pub fn flags(&self) -> [u8; 2] {
        [self.packet[2], self.packet[3]]
    }

    /// The name's labels, left to right, as the client spelled them.
    pub fn labels(&self) -> &[&'p [u8]] {
        let written = self.labels.get(..self.count).unwrap_or_default();
        // SAFETY: `read_parts` writes `labels[i]` before it raises `count` past `i`, and
        // `count` only ever rises (from 0 in `unread`), so the first `count` elements are
        // initialised; `MaybeUninit<T>` has the size, alignment and validity of `T` once
        // initialised, so a slice of initialised `MaybeUninit<&[u8]>` is a valid `[&[u8]]`
        // of the same length, borrowed for as long as `self`.
        unsafe { &*(std::ptr::from_ref(written) as *const [&'p [u8]]) }
    }

    /// Where each label starts in the packet.
    pub fn offsets(&self) -> &[u16] {
        let written = self.offsets.get(..self.count).unwrap_or_default();
        // SAFETY: as in `labels`: `read_parts` writes `offsets[i]` before `count` passes `i`.
        unsafe { &*(std::ptr::from_ref(written) as *const [u16]) }
    }

    /// The name in wire form, root label included.
    pub fn name(&self) -> &'p [u8] {
        &self.packet[12..self.name_end]
    }

    /// End of the name (after its root label).
    pub fn name_end(&self) -> usize {
        self.name_end
    }

    /// End of the question (after type and class).
    pub fn question_end(&self) -> usize {
        self.question_end
    }

    /// The question section's bytes, as the client sent them.
    pub fn question(&self) -> &'p [u8] {
        &self.packet[12..self.question_end]
    }

    /// The query type, as on the wire.
    pub fn qtype(&self) -> u16 {
        self.qtype
    }

    /// The client's OPT record.
    pub fn edns(&self) -> Option<ClientEdns> {
        self.edns
    }

    /// Whether every label is letters, digits, `-` and `_` only.
    pub fn plain_labels(&self) -> bool {
        self.plain
    }

    /// The name in lower case, its labels joined by dots and ending in one (`db.example.com.`,
    /// `.` for the root), written into `buf`; `None` unless every label is plain (letters,
    /// digits, `-`, `_`), the spelling hickory's `Name::to_ascii` gives such a name.
    pub fn lower_text<'b>(&self, buf: &'b mut [u8; 256]) -> Option<&'b str> {
        if !self.plain {
            return None;
        }
        let mut len = 0;
        for label in self.labels() {
            let end = len + label.len();
            let slot = buf.get_mut(len..=end)?;
            for (to, from) in slot.iter_mut().zip(label.iter()) {
                *to = from.to_ascii_lowercase();
            }
            *slot.last_mut()? = b'.';
            len = end + 1;
        }
        if len == 0 {
            buf[0] = b'.';
            len = 1;
        }
        std::str::from_utf8(buf.get(..len)?).ok()
    }

    /// The most bytes the response may take (see [`super::reply_limit`]).
    pub fn limit(&self, tcp: bool) -> usize {
        super::reply_limit(tcp, self.edns.map(|e| e.payload))
    }
}

/// Whether the OPT options are well formed and each of a kind kept as opaque bytes.
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

/// The OPT record a response carries: root owner, our payload size, version 0, the DO bit
/// echoed (RFC 3225), no options.
pub fn opt_record(payload: u16, dnssec_ok: bool) -> [u8; OPT_LEN] {
    let [hi, lo] = payload.to_be_bytes();
    let flags = if dnssec_ok { 0x80 } else { 0 };
    [0, 0, TYPE_OPT as u8, hi, lo, 0, 0, flags, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};

    use super::*;

    fn packet(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some(p) = edns {
            let mut e = Edns::new();
            e.set_max_payload(p);
            m.edns = Some(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn reads_labels_type_and_edns() {
        let p = packet("Web.shop.svc.cluster.local.", RecordType::AAAA, Some(4096));
        let q = Question::parse(&p).unwrap();
        assert_eq!(q.labels().len(), 5);
        assert_eq!(q.labels()[0], b"Web");
        assert_eq!(q.offsets()[0], 12);
        assert_eq!(q.qtype(), 28);
        assert!(q.plain_labels());
        let e = q.edns().unwrap();
        assert_eq!(
            (e.payload, e.response_payload(), e.version),
            (4096, 1232, 0)
        );
        assert_eq!(q.limit(false), 1232);
        assert_eq!(q.limit(true), 65535);
        assert_eq!(q.question(), &p[12..q.question_end()]);
    }

    #[test]
    fn refuses_other_shapes() {
        let mut p = packet("a.example.", RecordType::A, None);
        assert!(Question::parse(&p).is_some());
        p.push(0);
        assert!(Question::parse(&p).is_none(), "trailing byte");
        let mut r = packet("a.example.", RecordType::A, None);
        r[2] |= 0x80;
        assert!(Question::parse(&r).is_none(), "a response");
        let mut odd = packet("ab.example.", RecordType::A, None);
        odd[14] = b' ';
        assert!(!Question::parse(&odd).unwrap().plain_labels());
    }

    #[test]
    fn the_opt_record_is_eleven_bytes() {
        assert_eq!(
            opt_record(1232, true),
            [0, 0, 41, 4, 208, 0, 0, 0x80, 0, 0, 0]
        );
    }
}
