//! Encoding a general-path response: the header, the client's question as received, the
//! sections compressed against the question name (so an owner name that repeats the question
//! is a pointer to offset 12, as on the fast path), the OPT record, then the truncation rule
//! ([`super::fit`]) when the reply is over its limit. Records past a message's 65,535 bytes are
//! left out by the same rule, so a very large answer over TCP is cut, not refused.

use hickory_proto::ProtoError;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

/// A response before encoding.
#[derive(Clone, Debug)]
pub struct Response {
    /// ID, flags and response code (its high bits go into the OPT record).
    pub metadata: Metadata,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authorities: Vec<Record>,
    /// Additional section, without the OPT record.
    pub additionals: Vec<Record>,
    /// The OPT record to append, if the query had one.
    pub edns: Option<Edns>,
}

impl Response {
    /// A response with these header bits and no records.
    pub fn empty(metadata: Metadata, edns: Option<Edns>) -> Self {
        Self {
            metadata,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            edns,
        }
    }
}

/// Encodes `response` after `question` (the question section as the client sent it, holding
/// `queries` questions) and cuts it to `limit` bytes by the truncation rule. A response whose
/// records do not all fit a message's 65,535 bytes keeps those that do, in order, with TC set
/// when an answer or authority record is left out. An error when it cannot be encoded, or
/// when the question alone is over `limit`.
pub fn encode(
    question: &[u8],
    queries: u16,
    response: &Response,
    limit: usize,
) -> Result<Vec<u8>, ProtoError> {
    // A question section that alone is over the limit cannot be answered within it.
    if 12 + question.len() > limit {
        return Err(ProtoError::from(
            "the question alone is over the size limit",
        ));
    }
    let mut buf = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.emit_vec(&[0; 12])?;
    encoder.emit_vec(question)?;
    if queries > 0 {
        // Every suffix of the question name, for owner names to point at.
        let name = question_labels(question);
        for &start in &name.starts {
            encoder.store_label_pointer(12 + start, 12 + name.end);
        }
    }
    let count = |n: usize| u16::try_from(n).map_err(|_| ProtoError::from("too many records"));
    let opt = match &response.edns {
        Some(edns) => {
            let mut edns = edns.clone();
            edns.set_rcode_high(response.metadata.response_code.high());
            Record::from(&edns).to_bytes()?
        }
        None => Vec::new(),
    };
    // The records leave room for the OPT record within a message's 65,535 bytes.
    let room = usize::from(u16::MAX)
        .checked_sub(opt.len())
        .and_then(|r| u16::try_from(r).ok())
        .ok_or_else(|| ProtoError::from("the OPT record alone is over a message's size"))?;
    encoder.set_max_size(room);
    let sections = [
        &response.answers[..],
        &response.authorities[..],
        &response.additionals[..],
    ];
    let written = write_records(&mut encoder, sections, limit)?;
    encoder.set_max_size(u16::MAX);
    let mut additionals = count(written[2])?;
    if !opt.is_empty() {
        encoder.emit_vec(&opt)?;
        additionals += 1;
    }
    // The encoder may leave bytes past its offset after rewriting a name as a pointer.
    let end = encoder.offset();
    buf.truncate(end);
    let mut metadata = response.metadata;
    // An answer or authority record left unwritten: the reply is truncated (the additional
    // section is extra information, RFC 2181 §9).
    if written[0] < response.answers.len() || written[1] < response.authorities.len() {
        metadata.truncation = true;
    }
    let header = Header {
        metadata,
        counts: HeaderCounts {
            queries,
            answers: count(written[0])?,
            authorities: count(written[1])?,
            additionals,
        },
    };
    let head = header.to_bytes()?;
    if let (Some(dst), Some(src)) = (buf.get_mut(..12), head.get(..12)) {
        dst.copy_from_slice(src);
    }
    super::fit(&mut buf, limit);
    Ok(buf)
}

/// Writes the sections' records in order, each whole or not at all, and returns how many of
/// each section it wrote. It stops at the first record that does not fit the encoder's size
/// (a message's 65,535 bytes, less the OPT record's) and after the first that ends past
/// `limit`: the truncation rule keeps no record after that one, so a large answer asked over
/// UDP is not written whole only to be cut.
fn write_records(
    encoder: &mut BinEncoder<'_>,
    sections: [&[Record]; 3],
    limit: usize,
) -> Result<[usize; 3], ProtoError> {
    let mut written = [0usize; 3];
    for (records, n) in sections.into_iter().zip(written.iter_mut()) {
        for r in records {
            if encoder.offset() > limit {
                return Ok(written);
            }
            let start = encoder.offset();
            match r.emit(encoder) {
                Ok(()) => *n += 1,
                Err(ProtoError::MaxBufferSizeExceeded(_)) => {
                    // Back to the record's start, forgetting the names it stored for
                    // compression.
                    encoder.set_offset(start);
                    encoder.trim();
                    return Ok(written);
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(written)
}

/// Where each label of the first question's name starts, and where its last label ends,
/// relative to the question section; labels after a compression pointer are not listed.
struct QuestionName {
    starts: Vec<usize>,
    end: usize,
}

fn question_labels(question: &[u8]) -> QuestionName {
    let mut starts = Vec::new();
    let mut pos = 0;
    while let Some(&len) = question.get(pos) {
        if len == 0 || len & 0xC0 != 0 || pos + 1 + usize::from(len) > question.len() {
            break;
        }
        starts.push(pos);
        pos += 1 + usize::from(len);
    }
    // A name that ends in a pointer is not one the answers can point at whole.
    if question.get(pos) != Some(&0) {
        starts.clear();
    }
    QuestionName { starts, end: pos }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{Name, RData, RecordType};

    use super::*;

    fn question(name: &Name) -> Vec<u8> {
        let mut m = Message::new(1, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(name.clone(), RecordType::A));
        m.to_vec().unwrap()[12..].to_vec()
    }

    #[test]
    fn owners_point_at_the_question() {
        let name = Name::from_ascii("Web.Shop.svc.cluster.local.").unwrap();
        let q = question(&name);
        let mut r = Response::empty(Metadata::new(9, MessageType::Response, OpCode::Query), None);
        r.answers.push(Record::from_rdata(
            name.clone(),
            30,
            RData::A(Ipv4Addr::new(10, 0, 0, 1).into()),
        ));
        let bytes = encode(&q, 1, &r, 512).unwrap();
        let at = 12 + q.len();
        assert_eq!(&bytes[at..at + 2], &[0xc0, 12]);
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.answers[0].name, name);
        assert_eq!(m.metadata.id, 9);
    }

    #[test]
    fn extended_rcodes_go_into_the_opt_record() {
        let name = Name::from_ascii("example.").unwrap();
        let mut metadata = Metadata::new(3, MessageType::Response, OpCode::Query);
        metadata.response_code = ResponseCode::BADVERS;
        let r = Response::empty(metadata, Some(Edns::new()));
        let bytes = encode(&question(&name), 1, &r, 512).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        // 16 reads back as BADSIG, which shares BADVERS's number.
        assert_eq!(u16::from(m.metadata.response_code), 16);
    }
}
