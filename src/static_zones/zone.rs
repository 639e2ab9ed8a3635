//! One served zone: its records by owner name, with every empty non-terminal present, so that
//! existence, wildcard and delegation checks are hash probes.

use std::path::Path;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::parse::{Records, ZoneFileError, parse_file};

/// The records of one owner name, one set per type (sorted by type). Empty for an empty
/// non-terminal.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub(super) rrsets: Vec<RrSet>,
}

/// The records of one type at one name, spelled as in the file.
#[derive(Debug)]
pub(super) struct RrSet {
    pub(super) rtype: RecordType,
    pub(super) records: Box<[Record]>,
}

impl Node {
    /// The set of `rtype` here, if any.
    pub(super) fn get(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

/// A parsed, checked zone: immutable once built.
#[derive(Debug)]
pub struct Zone {
    /// The origin, lower case and fully qualified.
    pub(super) origin: Name,
    /// Labels of the origin.
    pub(super) labels: usize,
    /// Every owner name and every empty non-terminal up to the apex. `Name` hashes and
    /// compares case-insensitively, so a query name probes as asked.
    pub(super) nodes: foldhash::HashMap<Name, Node>,
    /// The apex SOA with the negative-caching TTL (RFC 2308 §5: min of its TTL and minimum).
    pub(super) negative_soa: Record,
    /// Number of records.
    records: usize,
}

/// Labels of `name`, counting a leading `*` (unlike `Name::num_labels`).
pub(super) fn label_count(name: &Name) -> usize {
    name.iter().count()
}

impl Zone {
    /// Parses the zone file `file` (contents `text`) for `origin`, the default `$ORIGIN`.
    pub fn parse(file: &Path, origin: &Name, text: &str) -> Result<Self, ZoneFileError> {
        let mut origin = origin.to_lowercase();
        origin.set_fqdn(true);
        let records = parse_file(file, &origin, text)?;
        Self::build(origin, records).map_err(|reason| ZoneFileError::new(file, reason))
    }

    /// The origin, lower case and fully qualified.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Number of records served.
    pub fn record_count(&self) -> usize {
        self.records
    }

    /// Whether `other` serves exactly the same records, TTLs and spellings included (hickory's
    /// `Record` equality ignores the TTL, RFC 2136 §1.1.1).
    pub fn same_as(&self, other: &Self) -> bool {
        let same_record =
            |a: &Record, b: &Record| a == b && a.ttl == b.ttl && a.name.eq_case(&b.name);
        let same_node = |a: &Node, b: &Node| {
            a.rrsets.len() == b.rrsets.len()
                && a.rrsets.iter().zip(&b.rrsets).all(|(x, y)| {
                    x.rtype == y.rtype
                        && x.records.len() == y.records.len()
                        && x.records
                            .iter()
                            .zip(y.records.iter())
                            .all(|(r, s)| same_record(r, s))
                })
        };
        self.origin == other.origin
            && self.nodes.len() == other.nodes.len()
            && self
                .nodes
                .iter()
                .all(|(name, node)| other.nodes.get(name).is_some_and(|o| same_node(node, o)))
    }

    /// Indexes checked records and applies the whole-zone rules (one SOA and some NS at the
    /// apex).
    fn build(origin: Name, parsed: Records) -> Result<Self, String> {
        let labels = label_count(&origin);
        let mut nodes: foldhash::HashMap<Name, Node> = foldhash::HashMap::default();
        nodes.entry(origin.clone()).or_default();
        let mut records = 0;
        for set in parsed.into_values() {
            let owner = set.name().clone();
            let rtype = set.record_type();
            let set: Box<[Record]> = set.records_without_rrsigs().cloned().collect();
            if set.is_empty() {
                continue;
            }
            records += set.len();
            for k in labels + 1..label_count(&owner) {
                nodes.entry(owner.trim_to(k)).or_default();
            }
            nodes.entry(owner).or_default().rrsets.push(RrSet {
                rtype,
                records: set,
            });
        }
        for node in nodes.values_mut() {
            node.rrsets.sort_by_key(|s| u16::from(s.rtype));
        }
        let apex = nodes.get(&origin);
        let soa = apex
            .and_then(|n| n.get(RecordType::SOA))
            .and_then(|s| s.records.first())
            .ok_or_else(|| format!("no SOA record at the apex {origin}"))?;
        if apex.and_then(|n| n.get(RecordType::NS)).is_none() {
            return Err(format!("no NS record at the apex {origin}"));
        }
        let minimum = match &soa.data {
            RData::SOA(soa) => soa.minimum,
            _ => soa.ttl,
        };
        let mut negative_soa = soa.clone();
        negative_soa.ttl = soa.ttl.min(minimum);
        Ok(Self {
            origin,
            labels,
            nodes,
            negative_soa,
            records,
        })
    }
}
