//! `IpList`: a list of addresses that keeps a single address inline.
//!
//! An endpoint has one address in practice (Kubernetes lets consumers use only the first),
//! so at 1M endpoints a boxed slice per endpoint would be a million 17-byte heap blocks
//! (32 bytes each with the allocator's overhead) for nothing.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::ops::Deref;

/// Addresses: one inline, or any number on the heap.
#[derive(Clone)]
pub enum IpList {
    /// Exactly one address.
    One(IpAddr),
    /// None, or more than one.
    Many(Box<[IpAddr]>),
}

impl Default for IpList {
    fn default() -> Self {
        IpList::Many(Box::default())
    }
}

impl Deref for IpList {
    type Target = [IpAddr];
    fn deref(&self) -> &[IpAddr] {
        match self {
            IpList::One(ip) => std::slice::from_ref(ip),
            IpList::Many(list) => list,
        }
    }
}

impl From<Vec<IpAddr>> for IpList {
    fn from(list: Vec<IpAddr>) -> Self {
        match *list.as_slice() {
            [ip] => IpList::One(ip),
            _ => IpList::Many(list.into()),
        }
    }
}

impl From<Box<[IpAddr]>> for IpList {
    fn from(list: Box<[IpAddr]>) -> Self {
        match *list {
            [ip] => IpList::One(ip),
            _ => IpList::Many(list),
        }
    }
}

impl FromIterator<IpAddr> for IpList {
    fn from_iter<I: IntoIterator<Item = IpAddr>>(iter: I) -> Self {
        iter.into_iter().collect::<Vec<_>>().into()
    }
}

impl PartialEq for IpList {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for IpList {}

impl Hash for IpList {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for IpList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
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
}
