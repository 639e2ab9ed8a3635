//! PTR data: which Services answer for an address.
//!
//! Memory: at 1M endpoints there is a reverse entry per endpoint, so an entry names its
//! Service by a 4-byte id (`ServiceRecords::id`, looked up in `Snapshot::by_id`) and holds no
//! name: the target (`<endpoint>.<service>.<namespace>.svc.<zone>`, or the Service name for a
//! cluster IP) is spelled at answer time from the Service's records, as forward names are. A
//! Service's change then rewrites only the addresses it gains or loses, not every address it
//! has: renaming an endpoint touches no reverse entry at all.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Deref;
use std::sync::Arc;

use super::{ServiceRecords, ShardedMap, Snapshot};

/// One Service's claim on an address: its cluster IP, or its endpoint names that carry it.
/// Four bytes (the id and, in the top bit, whether it is a cluster IP): the reverse map holds
/// one per endpoint.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PtrTarget(u32);

/// The top bit of a `PtrTarget`: a cluster IP.
const CLUSTER_IP: u32 = 1 << 31;
/// The stored value of an address with several targets (they are in `ReverseMap::many`).
/// Never a real target: Service ids stay far below 2³¹ − 1.
const MANY: PtrTarget = PtrTarget(u32::MAX);

impl PtrTarget {
    /// Service `service`'s (`ServiceRecords::id`, below 2³¹ − 1) claim: its cluster IP
    /// (`cluster_ip`, the Service's own name answers) or its endpoint names.
    pub fn new(service: u32, cluster_ip: bool) -> Self {
        let flag = if cluster_ip { CLUSTER_IP } else { 0 };
        Self((service & !CLUSTER_IP) | flag)
    }

    /// The Service (`ServiceRecords::id`).
    pub fn service(self) -> u32 {
        self.0 & !CLUSTER_IP
    }

    /// True for a cluster IP, false for endpoint names.
    pub fn cluster_ip(self) -> bool {
        self.0 & CLUSTER_IP != 0
    }
}

impl fmt::Debug for PtrTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PtrTarget")
            .field("service", &self.service())
            .field("cluster_ip", &self.cluster_ip())
            .finish()
    }
}

/// The PTR targets of one address: every Service's claim, the answered ones first.
///
/// Derefs to the answer: a cluster IP's Service wins (the first by name); otherwise every
/// Service's endpoint names, by Service name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PtrSet {
    /// The only target.
    One(PtrTarget),
    /// Several: cluster-IP targets by name, then endpoint targets by name.
    Many(Arc<[PtrTarget]>),
}

impl PtrSet {
    /// The set of `targets`, ordered by `(cluster IP first, name_of(service))`; `None` when
    /// empty.
    pub fn new<N: Ord>(mut targets: Vec<PtrTarget>, name_of: impl Fn(u32) -> N) -> Option<Self> {
        targets.sort_by_cached_key(|t| (!t.cluster_ip(), name_of(t.service()), t.service()));
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
        answered(self.all())
    }
}

/// The answer among `targets` (sorted as `PtrSet` sorts them): cluster IPs come first, and
/// the first of them is the whole answer; otherwise every target.
fn answered(targets: &[PtrTarget]) -> &[PtrTarget] {
    match targets.first() {
        Some(first) if first.cluster_ip() => std::slice::from_ref(first),
        _ => targets,
    }
}

/// The targets of one address in the map, borrowed: derefs to the answer, as `PtrSet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets<'a>(&'a [PtrTarget]);

impl<'a> Targets<'a> {
    /// Every target, answered or not, sorted as `PtrSet` sorts them.
    pub fn all(self) -> &'a [PtrTarget] {
        self.0
    }

    /// The answer: what `deref` gives, for the map's lifetime.
    pub fn answer(self) -> &'a [PtrTarget] {
        answered(self.0)
    }
}

impl Deref for Targets<'_> {
    type Target = [PtrTarget];
    fn deref(&self) -> &[PtrTarget] {
        answered(self.0)
    }
}

/// The names a PTR answer lists, as (Service, endpoint index): `None` is the Service's own
/// name. Allocates nothing; an endpoint target lists every endpoint name of its Service that
/// carries `ip` (one, in practice), in label order.
pub fn ptr_names<'s>(
    snap: &'s Snapshot,
    ip: IpAddr,
    targets: &'s [PtrTarget],
) -> impl Iterator<Item = (&'s ServiceRecords, Option<u32>)> + 's {
    targets.iter().flat_map(move |t| {
        let svc = snap.by_id.get(&t.service()).map(|r| &**r);
        let own = svc.filter(|_| t.cluster_ip()).map(|s| (s, None));
        let endpoints = svc
            .filter(|_| !t.cluster_ip())
            .into_iter()
            .flat_map(move |s| {
                s.endpoints
                    .iter()
                    .enumerate()
                    .filter(move |(_, e)| e.addresses.contains(ip))
                    .map(move |(i, _)| (s, Some(i as u32)))
            });
        own.into_iter().chain(endpoints)
    })
}

/// PTR targets by address, IPv4 and IPv6 apart (a 4-byte key, not a 17-byte `IpAddr`, for
/// the million IPv4 endpoints of a large cluster), each entry 8 bytes for IPv4: the address
/// and its only target, or `MANY` when several Services claim it (rare: a pod behind two
/// headless Services), whose sorted list is in `many`.
#[derive(Clone, Debug, Default)]
pub struct ReverseMap {
    v4: ShardedMap<Ipv4Addr, PtrTarget>,
    v6: ShardedMap<Ipv6Addr, PtrTarget>,
    many: ShardedMap<IpAddr, Arc<[PtrTarget]>>,
}

impl ReverseMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The targets of `ip`; never allocates.
    pub fn get(&self, ip: &IpAddr) -> Option<Targets<'_>> {
        let one = match ip {
            IpAddr::V4(v4) => self.v4.get(v4),
            IpAddr::V6(v6) => self.v6.get(v6),
        }?;
        if *one == MANY {
            self.many.get(ip).map(|list| Targets(list))
        } else {
            Some(Targets(std::slice::from_ref(one)))
        }
    }

    /// Sets (`Some`) or removes (`None`) the targets of `ip`, copying only its shards.
    pub fn set(&mut self, ip: IpAddr, targets: Option<PtrSet>) {
        let (one, many) = match targets {
            None => (None, None),
            Some(PtrSet::One(t)) => (Some(t), None),
            Some(PtrSet::Many(list)) => (Some(MANY), Some(list)),
        };
        let old = match ip {
            IpAddr::V4(v4) => self.v4.set(v4, one),
            IpAddr::V6(v6) => self.v6.set(v6, one),
        };
        if old == Some(MANY) || many.is_some() {
            self.many.set(ip, many);
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
        self.many.rebalance();
    }

    /// The number of shards of the IPv4, IPv6 and several-targets maps.
    pub fn shard_counts(&self) -> (usize, usize, usize) {
        (
            self.v4.shard_count(),
            self.v6.shard_count(),
            self.many.shard_count(),
        )
    }

    /// Entries not shared with `other`: what the updates that made one from the other copied.
    pub fn unshared_entries(&self, other: &Self) -> usize {
        self.v4.unshared_entries(&other.v4)
            + self.v6.unshared_entries(&other.v6)
            + self.many.unshared_entries(&other.many)
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

    fn t(service: u32, cluster_ip: bool) -> PtrTarget {
        PtrTarget::new(service, cluster_ip)
    }

    #[test]
    fn cluster_ip_wins_the_answer() {
        let names = ["e", "z", "c", "y", "x"];
        let name_of = |id: u32| names[id as usize];
        let set = PtrSet::new(vec![t(0, false), t(1, true), t(2, true)], name_of).unwrap();
        assert_eq!(&*set, [t(2, true)]);
        assert_eq!(set.all().len(), 3);
        let set = PtrSet::new(vec![t(3, false), t(4, false), t(3, false)], name_of).unwrap();
        assert_eq!(&*set, [t(4, false), t(3, false)]);
        assert!(matches!(
            PtrSet::new(vec![t(4, false)], name_of),
            Some(PtrSet::One(_))
        ));
        assert_eq!(PtrSet::new(Vec::new(), name_of), None);
        assert_eq!(std::mem::size_of::<PtrTarget>(), 4);
        let big = t((1 << 31) - 2, true);
        assert_eq!((big.service(), big.cluster_ip()), ((1 << 31) - 2, true));
        assert_ne!(big, MANY);
        assert_eq!(
            (t(7, false).service(), t(7, false).cluster_ip()),
            (7, false)
        );
    }

    #[test]
    fn reverse_map_by_family() {
        let mut map = ReverseMap::new();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        map.set(v4, Some(PtrSet::One(t(1, true))));
        map.set(v6, Some(PtrSet::One(t(1, false))));
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&v4).map(|s| s.len()), Some(1));
        map.set(v4, None);
        assert!(map.get(&v4).is_none() && map.get(&v6).is_some());
    }

    #[test]
    fn several_targets_live_beside_the_map_and_leave_with_the_address() {
        let mut map = ReverseMap::new();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let names = ["b", "a", "c"];
        let both = PtrSet::new(vec![t(0, false), t(1, false)], |id| names[id as usize]);
        map.set(ip, both);
        let got = map.get(&ip).unwrap();
        assert_eq!(got.all(), [t(1, false), t(0, false)]);
        assert_eq!(
            &*got,
            [t(1, false), t(0, false)],
            "endpoint names: all answer"
        );
        assert_eq!(map.len(), 1);

        let with_ip = PtrSet::new(vec![t(0, false), t(1, false), t(2, true)], |id| {
            names[id as usize]
        });
        map.set(ip, with_ip);
        assert_eq!(&*map.get(&ip).unwrap(), [t(2, true)], "the cluster IP wins");

        // Back to one target: stored inline again, the list gone.
        map.set(ip, Some(PtrSet::One(t(0, false))));
        assert_eq!(map.get(&ip).unwrap().all(), [t(0, false)]);
        assert_eq!(map.many.len(), 0);
        map.set(
            ip,
            PtrSet::new(vec![t(0, false), t(2, false)], |id| names[id as usize]),
        );
        assert_eq!(map.many.len(), 1);
        map.set(ip, None);
        assert!(map.get(&ip).is_none());
        assert_eq!((map.len(), map.many.len()), (0, 0));
    }
}
