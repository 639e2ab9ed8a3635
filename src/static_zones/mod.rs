//! Static RFC 1035 zone files served beside the cluster zone (`--zones DIR`).
//!
//! Each `<origin>.zone` file in the directory is one zone. Files are parsed with hickory's
//! zone file parser and checked (one SOA and some NS at the apex, nothing outside the origin);
//! a file that stops parsing keeps its last good zone. The parsed zones form an immutable
//! [`ZoneSet`], published behind an `ArcSwap` by [`watch`], and answered by [`ZoneSet::lookup`]
//! with the zone of the longest matching origin.
//!
//! Zone files are small next to the cluster zone, so records are kept as hickory `Record`s,
//! ready to answer; only the owner name is re-spelled per answer.
//!
//! Wiring: scan once before serving (`let first = dir.scan()`), publish `first.zones` in an
//! `ArcSwap`, then spawn `watch(dir, swap, poll)`. `watch`'s first scan re-reports the
//! errors still present, so the caller need not log them.

mod dir;
mod lookup;
mod parse;
mod watch;
mod zone;

#[cfg(test)]
mod dir_tests;
#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};

pub use dir::{ScanResult, ZoneDir};
pub use lookup::MAX_CNAME_CHAIN;
pub use parse::ZoneFileError;
pub use watch::watch;
pub use zone::Zone;

use zone::label_count;

/// The answer to a question in a served zone.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneAnswer {
    /// NOERROR (data, NODATA or a referral) or NXDOMAIN.
    pub rcode: ResponseCode,
    /// The AA bit: false for a referral below a delegation.
    pub authoritative: bool,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section: the SOA of a negative answer, or the NS set of a referral.
    pub authorities: Vec<Record>,
    /// The additional section: glue addresses of NS targets inside the zone.
    pub additionals: Vec<Record>,
}

/// An immutable set of parsed zones; cheap to share behind `arc_swap::ArcSwap`.
#[derive(Debug, Default)]
pub struct ZoneSet {
    /// Zones by origin (case-insensitive, as `Name` hashes).
    zones: foldhash::HashMap<Name, Arc<Zone>>,
    /// Distinct origin label counts, longest first: the only suffixes of a query worth probing.
    depths: Vec<usize>,
    /// Origins in lower-case wire form, for [`ZoneSet::covers_wire`].
    origins_wire: Vec<Box<[u8]>>,
}

impl ZoneSet {
    /// A set serving nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A set of `zones`; of two zones with the same origin, the first is served.
    pub fn new(zones: impl IntoIterator<Item = Arc<Zone>>) -> Self {
        let mut set = Self::default();
        for zone in zones {
            set.zones.entry(zone.origin().clone()).or_insert(zone);
        }
        set.depths = set.zones.keys().map(label_count).collect();
        set.depths.sort_unstable_by(|a, b| b.cmp(a));
        set.depths.dedup();
        set.origins_wire = set
            .zones
            .keys()
            .map(|origin| {
                let mut wire = Vec::new();
                for label in origin.iter() {
                    wire.push(u8::try_from(label.len()).unwrap_or(63));
                    wire.extend(label.iter().map(u8::to_ascii_lowercase));
                }
                wire.push(0);
                wire.into_boxed_slice()
            })
            .collect();
        set
    }

    /// Whether the name `wire` (lower-case wire form, uncompressed) is in a served zone.
    pub fn covers_wire(&self, wire: &[u8]) -> bool {
        if self.origins_wire.is_empty() {
            return false;
        }
        let mut at = 0;
        loop {
            let rest = wire.get(at..).unwrap_or_default();
            if self.origins_wire.iter().any(|o| **o == *rest) {
                return true;
            }
            match rest.first() {
                Some(&len) if len > 0 => at += 1 + usize::from(len),
                _ => return false,
            }
        }
    }

    /// Whether no zone is served.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Number of zones served.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Origins served, sorted, for logs.
    pub fn origins(&self) -> Vec<Name> {
        let mut origins: Vec<Name> = self.zones.keys().cloned().collect();
        origins.sort();
        origins
    }

    /// The zone served for `origin`, if any.
    pub fn get(&self, origin: &Name) -> Option<&Arc<Zone>> {
        self.zones.get(origin)
    }

    /// The zone with the longest origin that `name` is in.
    pub fn zone_for(&self, name: &Name) -> Option<&Arc<Zone>> {
        let total = label_count(name);
        self.depths
            .iter()
            .filter(|d| **d <= total)
            .find_map(|d| self.zones.get(&name.trim_to(*d)))
    }

    /// None when `name` is in no served zone. Otherwise the authoritative answer from the zone
    /// with the longest matching origin.
    pub fn lookup(&self, name: &Name, qtype: RecordType) -> Option<ZoneAnswer> {
        if !name.is_fqdn() {
            let mut name = name.clone();
            name.set_fqdn(true);
            return self.lookup(&name, qtype);
        }
        Some(self.zone_for(name)?.lookup(name, qtype))
    }
}
