//! Answers a question from one zone: RFC 1034 §4.3.2 with RFC 4592 wildcards, RFC 2308
//! negative answers and RFC 8020 empty non-terminals.
//!
//! Records at the query name are answered with the owner spelled as asked; the walk from the
//! apex down costs one hash probe per label.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::ZoneAnswer;
use super::zone::{Node, Zone, label_count};

/// The most CNAMEs followed in one answer (the server's one limit).
pub use crate::wire::MAX_CNAME_CHAIN;

/// Where the walk down from the apex ends.
enum Found<'z> {
    /// The name's node, or the wildcard that stands in for it.
    Node(&'z Node),
    /// A zone cut at or above the name: its name (as asked) and node.
    Cut(Name, &'z Node),
    /// The name does not exist and no wildcard covers it.
    Nothing,
}

/// Copies of `records` owned by `name`.
fn owned_by<'a>(name: &'a Name, records: &'a [Record]) -> impl Iterator<Item = Record> + 'a {
    records.iter().map(move |r| {
        let mut r = r.clone();
        r.name = name.clone();
        r
    })
}

impl Zone {
    /// The answer for `name` (which must be in this zone) and `qtype`.
    pub fn lookup(&self, name: &Name, qtype: RecordType) -> ZoneAnswer {
        let mut answer = ZoneAnswer {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        };
        let mut name = name.clone();
        let mut chain: Vec<Name> = Vec::new();
        loop {
            let node = match self.find(&name, qtype) {
                Found::Nothing => {
                    // RFC 2308 §2.1 (and RFC 6604 after a CNAME): NXDOMAIN with the SOA.
                    answer.rcode = ResponseCode::NXDomain;
                    answer.authorities.push(self.negative_soa.clone());
                    return answer;
                }
                Found::Cut(cut, node) => {
                    self.refer(&cut, node, &mut answer);
                    return answer;
                }
                Found::Node(node) => node,
            };
            let cname = node
                .get(RecordType::CNAME)
                .filter(|_| !matches!(qtype, RecordType::CNAME | RecordType::ANY));
            let Some(cname) = cname else {
                self.answer_at(&name, node, qtype, &mut answer);
                return answer;
            };
            answer.answers.extend(owned_by(&name, &cname.records));
            let target = match cname.records.first().map(|r| &r.data) {
                Some(RData::CNAME(target)) => target.0.clone(),
                _ => return answer,
            };
            chain.push(name);
            // Follow only inside this zone, a bounded number of times, never round a loop.
            if chain.len() >= MAX_CNAME_CHAIN
                || chain.contains(&target)
                || !self.origin.zone_of(&target)
            {
                return answer;
            }
            name = target;
        }
    }

    /// Walks from the apex to `name`, stopping at a zone cut or the first missing name.
    fn find(&self, name: &Name, qtype: RecordType) -> Found<'_> {
        let total = label_count(name);
        for k in self.labels + 1..=total {
            let at = name.trim_to(k);
            let Some(node) = self.nodes.get(&at) else {
                // RFC 4592 §3.3.1: the closest encloser is one label up; its wildcard answers.
                return match self.nodes.get(&at.into_wildcard()) {
                    Some(wildcard) => Found::Node(wildcard),
                    None => Found::Nothing,
                };
            };
            // RFC 1034 §4.3.2 step 3b: NS below the apex is a cut. The parent side answers
            // only DS at the cut itself (RFC 4035 §3.1.4.1).
            let at_name = k == total;
            if node.get(RecordType::NS).is_some() && !(at_name && qtype == RecordType::DS) {
                return Found::Cut(at, node);
            }
            if at_name {
                return Found::Node(node);
            }
        }
        self.nodes.get(name).map_or(Found::Nothing, Found::Node)
    }

    /// Answers from the node of `name`; NODATA carries the SOA (RFC 2308 §2.2).
    fn answer_at(&self, name: &Name, node: &Node, qtype: RecordType, answer: &mut ZoneAnswer) {
        let before = answer.answers.len();
        if qtype == RecordType::ANY {
            // RFC 8482 allows less, but a zone file's names hold few sets.
            for set in &node.rrsets {
                answer.answers.extend(owned_by(name, &set.records));
            }
        } else if let Some(set) = node.get(qtype) {
            answer.answers.extend(owned_by(name, &set.records));
            if qtype == RecordType::NS {
                self.glue(&set.records, &mut answer.additionals);
            }
        }
        if answer.answers.len() == before {
            answer.authorities.push(self.negative_soa.clone());
        }
    }

    /// A referral to the zone cut `cut`: its NS set, and in-zone glue.
    fn refer(&self, cut: &Name, node: &Node, answer: &mut ZoneAnswer) {
        if let Some(ns) = node.get(RecordType::NS) {
            answer.authorities.extend(owned_by(cut, &ns.records));
            self.glue(&ns.records, &mut answer.additionals);
        }
        // RFC 1035 §4.1.1: AA speaks for the first answer name; a bare referral has none.
        answer.authoritative = !answer.answers.is_empty();
    }

    /// A and AAAA records of the NS targets that lie in this zone.
    fn glue(&self, ns: &[Record], out: &mut Vec<Record>) {
        for r in ns {
            let RData::NS(target) = &r.data else { continue };
            if !self.origin.zone_of(&target.0) {
                continue;
            }
            let Some(node) = self.nodes.get(&target.0) else {
                continue;
            };
            for rtype in [RecordType::A, RecordType::AAAA] {
                if let Some(set) = node.get(rtype) {
                    out.extend(set.records.iter().cloned());
                }
            }
        }
    }
}
