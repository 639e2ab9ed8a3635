//! `OneOrMany`: a list that keeps a single item inline; `IpList`, a list of addresses.
//!
//! An endpoint has one address in practice (Kubernetes lets consumers use only the first),
//! so at 1M endpoints a boxed slice per endpoint would be a million 17-byte heap blocks
//! (32 bytes each with the allocator's overhead) for nothing. A Service's SRV sets are most
//! often one entry too (`zone::SrvList`).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
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
