//! PTR data: target names and the set of targets of one address.
//!
//! Memory: at 1M endpoints there is a PTR target per endpoint. The names of one Service's
//! targets share one buffer (`PtrName` is a range of it, no allocation of its own), and an
//! address with a single target stores it inline. The set keeps every Service's
//! contribution, so the cluster needs no other per-address index; the buffer also tells
//! which Service build a target came from.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Deref;
use std::sync::Arc;

use super::ShardedMap;

/// A fully qualified PTR target name: a range of a buffer shared by one Service's targets,
/// and whether it names a cluster IP (kept here, in what would be padding).
#[derive(Clone)]
pub struct PtrName {
    buf: Arc<str>,
    start: u32,
    len: u16,
    cluster_ip: bool,
}

impl PtrName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        let start = self.start as usize;
        self.buf
            .get(start..start + usize::from(self.len))
            .unwrap_or_default()
    }

    /// Whether this name lives in `buf` (it came from the build that made `buf`).
    pub fn is_in(&self, buf: &Arc<str>) -> bool {
        Arc::ptr_eq(&self.buf, buf)
    }
}

impl Deref for PtrName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for PtrName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for PtrName {
    fn eq(&self, other: &Self) -> bool {
        self.cluster_ip == other.cluster_ip && self.as_str() == other.as_str()
    }
}

impl Eq for PtrName {}

impl PartialOrd for PtrName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PtrName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.cluster_ip, self.as_str()).cmp(&(other.cluster_ip, other.as_str()))
    }
}

impl Hash for PtrName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.cluster_ip.hash(state);
        self.as_str().hash(state);
    }
}

impl fmt::Debug for PtrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for PtrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A PTR target: a name, which names a cluster IP or an endpoint (cluster IPs win).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PtrTarget {
    /// The fully qualified target, lower case.
    pub name: PtrName,
}

impl PtrTarget {
    /// True for a Service's cluster IP.
    pub fn cluster_ip(&self) -> bool {
        self.name.cluster_ip
    }
}

/// One Service's PTR targets, sorted by address, their names in one shared buffer.
#[derive(Clone, Debug, Default)]
pub struct ServicePtrs {
    /// The buffer every name is a range of (`None` when there are no targets).
    pub buf: Option<Arc<str>>,
    /// (address, target), sorted and de-duplicated.
    pub targets: Vec<(IpAddr, PtrTarget)>,
}

impl ServicePtrs {
    /// Builds the set from (address, cluster IP?, name); sorts and de-duplicates it.
    pub fn new(mut list: Vec<(IpAddr, bool, String)>) -> Self {
        list.sort();
        list.dedup();
        if list.is_empty() {
            return Self::default();
        }
        // Names separated by a newline: equal buffers mean equal target lists.
        let mut text = String::with_capacity(list.iter().map(|(_, _, n)| n.len() + 1).sum());
        let mut ranges = Vec::with_capacity(list.len());
        for (_, _, name) in &list {
            let start = text.len();
            text.push_str(name);
            ranges.push((start, text.len()));
            text.push('\n');
        }
        let buf: Arc<str> = text.into();
        let targets = list
            .into_iter()
            .zip(ranges)
            .map(|((ip, cluster_ip, _), (start, end))| {
                // A DNS name has at most 255 octets; a longer one would read as empty.
                let name = PtrName {
                    buf: Arc::clone(&buf),
                    start: u32::try_from(start).unwrap_or(u32::MAX),
                    len: u16::try_from(end - start).unwrap_or(0),
                    cluster_ip,
                };
                (ip, PtrTarget { name })
            })
            .collect();
        Self {
            buf: Some(buf),
            targets,
        }
    }
}

/// The PTR targets of one address: every Service's contribution, the answered ones first.
///
/// Derefs to the answer: a cluster IP's Service wins (the first by name); otherwise every
/// endpoint name, sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PtrSet {
    /// The only target.
    One(PtrTarget),
    /// Several: cluster-IP targets by name, then endpoint targets by name.
    Many(Arc<[PtrTarget]>),
}

impl PtrSet {
    /// The set of `targets` (any order, no duplicates expected); `None` when empty.
    pub fn new(mut targets: Vec<PtrTarget>) -> Option<Self> {
        targets.sort_by(|a, b| {
            (b.cluster_ip(), a.name.as_str()).cmp(&(a.cluster_ip(), b.name.as_str()))
        });
        targets.dedup();
        match targets.len() {
            0 => None,
            1 => targets.pop().map(PtrSet::One),
            _ => Some(PtrSet::Many(targets.into())),
        }
    }

    /// Every target, answered or not.
    pub fn all(&self) -> &[PtrTarget] {
        match self {
            PtrSet::One(t) => std::slice::from_ref(t),
            PtrSet::Many(targets) => targets,
        }
    }
}

impl Deref for PtrSet {
    type Target = [PtrTarget];
    fn deref(&self) -> &[PtrTarget] {
        match self {
            PtrSet::One(t) => std::slice::from_ref(t),
            // Sorted cluster IPs first: the first of them is the whole answer.
            PtrSet::Many(targets) => match targets.first() {
                Some(first) if first.cluster_ip() => std::slice::from_ref(first),
                _ => targets,
            },
        }
    }
}

/// PTR targets by address, IPv4 and IPv6 apart (a 4-byte key, not a 17-byte `IpAddr`, for
/// the million IPv4 endpoints of a large cluster).
#[derive(Clone, Debug, Default)]
pub struct ReverseMap {
    v4: ShardedMap<Ipv4Addr, PtrSet>,
    v6: ShardedMap<Ipv6Addr, PtrSet>,
}

impl ReverseMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The targets of `ip`; never allocates.
    pub fn get(&self, ip: &IpAddr) -> Option<&PtrSet> {
        match ip {
            IpAddr::V4(v4) => self.v4.get(v4),
            IpAddr::V6(v6) => self.v6.get(v6),
        }
    }

    /// Sets (`Some`) or removes (`None`) the targets of `ip`, copying only its shard.
    pub fn set(&mut self, ip: IpAddr, targets: Option<PtrSet>) {
        match ip {
            IpAddr::V4(v4) => self.v4.set(v4, targets),
            IpAddr::V6(v6) => self.v6.set(v6, targets),
        }
    }

    /// The number of addresses.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Adds shards if `set` has grown the map past their size (see `ShardedMap::rebalance`).
    pub fn rebalance(&mut self) {
        self.v4.rebalance();
        self.v6.rebalance();
    }

    /// The number of shards of the IPv4 and IPv6 maps.
    pub fn shard_counts(&self) -> (usize, usize) {
        (self.v4.shard_count(), self.v6.shard_count())
    }

    /// Entries not shared with `other`: what the updates that made one from the other copied.
    pub fn unshared_entries(&self, other: &Self) -> usize {
        self.v4.unshared_entries(&other.v4) + self.v6.unshared_entries(&other.v6)
    }

    /// Every address with targets (IPv4 first), in no particular order.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let v4 = self.v4.iter().map(|(ip, _)| IpAddr::V4(*ip));
        v4.chain(self.v6.iter().map(|(ip, _)| IpAddr::V6(*ip)))
    }

    /// Whether no address has targets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ptrs(list: &[(&str, bool, &str)]) -> ServicePtrs {
        ServicePtrs::new(
            list.iter()
                .map(|(ip, c, n)| (ip.parse().unwrap(), *c, (*n).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn names_share_one_buffer() {
        let p = ptrs(&[
            ("10.0.0.2", false, "b.svc.ns.svc.cluster.local."),
            ("10.0.0.1", true, "svc.ns.svc.cluster.local."),
            ("10.0.0.2", false, "b.svc.ns.svc.cluster.local."),
        ]);
        let buf = p.buf.clone().unwrap();
        let names: Vec<&str> = p.targets.iter().map(|(_, t)| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["svc.ns.svc.cluster.local.", "b.svc.ns.svc.cluster.local."]
        );
        assert!(p.targets.iter().all(|(_, t)| t.name.is_in(&buf)));
        let other = ptrs(&[("10.0.0.1", true, "svc.ns.svc.cluster.local.")]);
        assert_eq!(other.targets[0].1, p.targets[0].1, "equal by content");
        assert!(!other.targets[0].1.name.is_in(&buf));
    }

    #[test]
    fn cluster_ip_wins_the_answer() {
        let t = |c: bool, n: &str| ptrs(&[("10.0.0.1", c, n)]).targets[0].1.clone();
        let set = PtrSet::new(vec![t(false, "e.a."), t(true, "z."), t(true, "c.")]).unwrap();
        assert_eq!(
            set.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["c."]
        );
        assert_eq!(set.all().len(), 3);
        let set = PtrSet::new(vec![t(false, "y.b."), t(false, "x.a.")]).unwrap();
        assert_eq!(
            set.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["x.a.", "y.b."]
        );
        assert!(matches!(
            PtrSet::new(vec![t(false, "x.")]),
            Some(PtrSet::One(_))
        ));
        assert_eq!(PtrSet::new(Vec::new()), None);
        assert_eq!(
            (
                std::mem::size_of::<PtrTarget>(),
                std::mem::size_of::<PtrSet>()
            ),
            (24, 24)
        );
    }

    #[test]
    fn reverse_map_by_family() {
        let t = ptrs(&[("10.0.0.1", true, "a.")]).targets[0].1.clone();
        let mut map = ReverseMap::new();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        map.set(v4, PtrSet::new(vec![t.clone()]));
        map.set(v6, PtrSet::new(vec![t]));
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&v4).map(|s| s.len()), Some(1));
        map.set(v4, None);
        assert!(map.get(&v4).is_none() && map.get(&v6).is_some());
    }
}
