//! Encoding a general-path response: the header, the client's question as received, the
//! sections compressed against the question name (so an owner name that repeats the question
//! is a pointer to offset 12, as on the fast path), the OPT record, then the truncation rule
//! ([`super::fit`]) when the reply is over its limit.

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
/// `queries` questions) and cuts it to `limit` bytes by the truncation rule. An error when it
/// cannot be encoded, or when the question alone is over `limit`.
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
    for r in response
        .answers
        .iter()
        .chain(&response.authorities)
        .chain(&response.additionals)
    {
        r.emit(&mut encoder)?;
    }
    let mut additionals = count(response.additionals.len())?;
    if let Some(edns) = &response.edns {
        let mut edns = edns.clone();
        edns.set_rcode_high(response.metadata.response_code.high());
        Record::from(&edns).emit(&mut encoder)?;
        additionals += 1;
    }
    // The encoder may leave bytes past its offset after rewriting a name as a pointer.
    let end = encoder.offset();
    buf.truncate(end);
    let header = Header {
        metadata: response.metadata,
        counts: HeaderCounts {
            queries,
            answers: count(response.answers.len())?,
            authorities: count(response.authorities.len())?,
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
