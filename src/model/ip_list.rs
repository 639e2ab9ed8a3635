//! `OneOrMany`: a list that keeps a single item inline; `IpList`, a list of addresses.
//!
//! An endpoint has one address in practice (Kubernetes lets consumers use only the first),
//! so at 1M endpoints a boxed slice per endpoint would be a million 17-byte heap blocks
//! (32 bytes each with the allocator's overhead) for nothing. A Service's SRV sets are most
//! often one entry too (`zone::SrvList`).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Deref;

/// Items: one inline, or any number on the heap.
#[derive(Clone)]
pub enum OneOrMany<T> {
    /// Exactly one item.
    One(T),
    /// None, or more than one.
    Many(Box<[T]>),
}

/// Addresses: one inline, or any number on the heap.
pub type IpList = OneOrMany<IpAddr>;

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany::Many(Box::default())
    }
}

impl<T> Deref for OneOrMany<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            OneOrMany::One(item) => std::slice::from_ref(item),
            OneOrMany::Many(list) => list,
        }
    }
}

impl<T: Copy> From<Vec<T>> for OneOrMany<T> {
    fn from(list: Vec<T>) -> Self {
        match *list.as_slice() {
            [item] => OneOrMany::One(item),
            _ => OneOrMany::Many(list.into()),
        }
    }
}

impl<T: Copy> From<Box<[T]>> for OneOrMany<T> {
    fn from(list: Box<[T]>) -> Self {
        match *list {
            [item] => OneOrMany::One(item),
            _ => OneOrMany::Many(list),
        }
    }
}

impl<T: Copy> FromIterator<T> for OneOrMany<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        iter.into_iter().collect::<Vec<_>>().into()
    }
}

impl<T: PartialEq> PartialEq for OneOrMany<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq> Eq for OneOrMany<T> {}

impl<T: Hash> Hash for OneOrMany<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl<T: fmt::Debug> fmt::Debug for OneOrMany<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Addresses packed by family: an IPv4 address is 4 bytes, not the 17 of an `IpAddr`. A list
/// of one family (an EndpointSlice's, whose `addressType` is one family; most Services') is a
/// column of that family's addresses; a list of both keeps them as given. One address is
/// inline. 24 bytes, as an `IpList`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PackedIps {
    /// Exactly one address.
    One(IpAddr),
    /// IPv4 addresses only (none, or more than one).
    V4(Box<[Ipv4Addr]>),
    /// IPv6 addresses only (more than one).
    V6(Box<[Ipv6Addr]>),
    /// Both families, in the order given.
    Mixed(Box<[IpAddr]>),
}

impl Default for PackedIps {
    fn default() -> Self {
        PackedIps::V4(Box::default())
    }
}

impl PackedIps {
    /// The addresses, to read.
    pub fn view(&self) -> Ips<'_> {
        match self {
            PackedIps::One(ip) => Ips::Any(std::slice::from_ref(ip)),
            PackedIps::V4(list) => Ips::V4(list),
            PackedIps::V6(list) => Ips::V6(list),
            PackedIps::Mixed(list) => Ips::Any(list),
        }
    }

    /// The number of addresses.
    pub fn len(&self) -> usize {
        self.view().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.view().is_empty()
    }

    /// Every address, in order.
    pub fn iter(&self) -> IpsIter<'_> {
        self.view().iter()
    }
}

impl From<Vec<IpAddr>> for PackedIps {
    fn from(all: Vec<IpAddr>) -> Self {
        if let [one] = *all {
            return PackedIps::One(one);
        }
        let v4: Option<Box<[Ipv4Addr]>> = all
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        if let Some(v4) = v4 {
            return PackedIps::V4(v4);
        }
        let v6: Option<Box<[Ipv6Addr]>> = all
            .iter()
            .map(|ip| match ip {
                IpAddr::V6(v6) => Some(*v6),
                IpAddr::V4(_) => None,
            })
            .collect();
        match v6 {
            Some(v6) => PackedIps::V6(v6),
            None => PackedIps::Mixed(all.into()),
        }
    }
}

impl FromIterator<IpAddr> for PackedIps {
    fn from_iter<I: IntoIterator<Item = IpAddr>>(iter: I) -> Self {
        iter.into_iter().collect::<Vec<_>>().into()
    }
}

impl From<&[IpAddr]> for PackedIps {
    fn from(list: &[IpAddr]) -> Self {
        list.to_vec().into()
    }
}

impl fmt::Debug for PackedIps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.view(), f)
    }
}

/// A run of addresses as stored: of one family, or of any.
#[derive(Clone, Copy)]
pub enum Ips<'a> {
    /// IPv4 addresses.
    V4(&'a [Ipv4Addr]),
    /// IPv6 addresses.
    V6(&'a [Ipv6Addr]),
    /// Addresses of either family.
    Any(&'a [IpAddr]),
}

impl Default for Ips<'_> {
    fn default() -> Self {
        Ips::Any(&[])
    }
}

impl<'a> From<&'a [IpAddr]> for Ips<'a> {
    fn from(list: &'a [IpAddr]) -> Self {
        Ips::Any(list)
    }
}

impl<'a> Ips<'a> {
    /// The number of addresses.
    pub fn len(&self) -> usize {
        match self {
            Ips::V4(l) => l.len(),
            Ips::V6(l) => l.len(),
            Ips::Any(l) => l.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Address `i`.
    pub fn get(&self, i: usize) -> Option<IpAddr> {
        match self {
            Ips::V4(l) => l.get(i).copied().map(IpAddr::V4),
            Ips::V6(l) => l.get(i).copied().map(IpAddr::V6),
            Ips::Any(l) => l.get(i).copied(),
        }
    }

    /// The first address.
    pub fn first(&self) -> Option<IpAddr> {
        self.get(0)
    }

    /// Addresses `range` (empty where it runs past the end).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Ips<'a> {
        match *self {
            Ips::V4(l) => Ips::V4(l.get(range).unwrap_or_default()),
            Ips::V6(l) => Ips::V6(l.get(range).unwrap_or_default()),
            Ips::Any(l) => Ips::Any(l.get(range).unwrap_or_default()),
        }
    }

    /// Whether `ip` is one of them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (Ips::V4(l), IpAddr::V4(v4)) => l.contains(&v4),
            (Ips::V6(l), IpAddr::V6(v6)) => l.contains(&v6),
            (Ips::Any(l), _) => l.contains(&ip),
            _ => false,
        }
    }

    /// Whether some address is IPv4.
    pub fn has_v4(&self) -> bool {
        match self {
            Ips::V4(l) => !l.is_empty(),
            Ips::V6(_) => false,
            Ips::Any(l) => l.iter().any(IpAddr::is_ipv4),
        }
    }

    /// Whether some address is IPv6.
    pub fn has_v6(&self) -> bool {
        match self {
            Ips::V4(_) => false,
            Ips::V6(l) => !l.is_empty(),
            Ips::Any(l) => l.iter().any(IpAddr::is_ipv6),
        }
    }

    /// Every address, in order.
    pub fn iter(&self) -> IpsIter<'a> {
        match *self {
            Ips::V4(l) => IpsIter::V4(l.iter()),
            Ips::V6(l) => IpsIter::V6(l.iter()),
            Ips::Any(l) => IpsIter::Any(l.iter()),
        }
    }

    /// The addresses of one family (IPv6 for `v6`), in order.
    pub fn family(&self, v6: bool) -> IpsIter<'a> {
        match (*self, v6) {
            (Ips::V4(l), false) => IpsIter::V4(l.iter()),
            (Ips::V6(l), true) => IpsIter::V6(l.iter()),
            (Ips::Any(l), _) => IpsIter::Family(l.iter(), v6),
            _ => IpsIter::V4([].iter()),
        }
    }
}

impl<'a> IntoIterator for Ips<'a> {
    type Item = IpAddr;
    type IntoIter = IpsIter<'a>;
    fn into_iter(self) -> IpsIter<'a> {
        self.iter()
    }
}

impl PartialEq for Ips<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Ips<'_> {}

impl fmt::Debug for Ips<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The addresses of an `Ips`, by value.
#[derive(Clone, Debug)]
pub enum IpsIter<'a> {
    /// IPv4 addresses.
    V4(std::slice::Iter<'a, Ipv4Addr>),
    /// IPv6 addresses.
    V6(std::slice::Iter<'a, Ipv6Addr>),
    /// Addresses of either family.
    Any(std::slice::Iter<'a, IpAddr>),
    /// The addresses of one family (IPv6 when `true`) among either.
    Family(std::slice::Iter<'a, IpAddr>, bool),
}

impl Iterator for IpsIter<'_> {
    type Item = IpAddr;
    fn next(&mut self) -> Option<IpAddr> {
        match self {
            IpsIter::V4(i) => i.next().map(|ip| IpAddr::V4(*ip)),
            IpsIter::V6(i) => i.next().map(|ip| IpAddr::V6(*ip)),
            IpsIter::Any(i) => i.next().copied(),
            IpsIter::Family(i, v6) => i.find(|ip| ip.is_ipv6() == *v6).copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            IpsIter::V4(i) => i.size_hint(),
            IpsIter::V6(i) => i.size_hint(),
            IpsIter::Any(i) => i.size_hint(),
            IpsIter::Family(i, _) => (0, i.size_hint().1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_is_inline_and_equal_to_a_list_of_one() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "fd00::1".parse().unwrap();
        assert!(matches!(IpList::from(vec![a]), IpList::One(_)));
        assert_eq!(IpList::Many(Box::new([a])), IpList::One(a));
        assert_eq!(&*IpList::from(vec![a, b]), &[a, b]);
        assert!(IpList::default().is_empty());
        assert!(std::mem::size_of::<IpList>() <= 24);
    }

    #[test]
    fn packed_addresses_keep_one_family_in_its_own_width() {
        let v4: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2"].map(|a| a.parse().unwrap()).into();
        let v6: Vec<IpAddr> = ["fd00::1", "fd00::2"].map(|a| a.parse().unwrap()).into();
        let both: Vec<IpAddr> = vec![v6[0], v4[0], v6[1]];
        for (list, family) in [(&v4, "V4"), (&v6, "V6"), (&both, "Mixed")] {
            let packed: PackedIps = list.iter().copied().collect();
            assert_eq!(packed.iter().collect::<Vec<_>>(), *list, "{family}");
            assert_eq!(packed.view(), Ips::from(&list[..]));
            assert_eq!(packed.len(), list.len());
            assert!(packed.view().contains(list[1]));
            assert_eq!(packed.view().slice(1..2).first(), Some(list[1]));
            assert!(packed.view().slice(5..9).is_empty());
        }
        assert!(matches!(PackedIps::from(&v4[..]), PackedIps::V4(_)));
        assert!(matches!(PackedIps::from(&v6[..]), PackedIps::V6(_)));
        assert!(matches!(PackedIps::from(&v4[..1]), PackedIps::One(_)));
        let packed: PackedIps = both.iter().copied().collect();
        assert!(packed.view().has_v4() && packed.view().has_v6());
        assert!(!PackedIps::from(&v4[..]).view().has_v6());
        assert!(!PackedIps::from(&v6[..]).view().contains(v4[0]));
        assert!(PackedIps::default().is_empty());
        assert!(std::mem::size_of::<PackedIps>() <= 24);
    }
}
