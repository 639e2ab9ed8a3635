//! SRV entries as a Service's records keep them: 8 bytes each, and a set of one kept inline.
//!
//! A cluster-IP Service's named port has one SRV record (its port, the Service name): inline,
//! the set costs no heap block (32 bytes with the allocator's overhead), at 100k Services.

use std::num::NonZeroU32;

/// A resolved SRV entry: weight, port and target (an endpoint of the same Service, or the
/// Service name itself), in 8 bytes: a headless Service has one per endpoint and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Srv {
    /// ⌊100 / candidates⌋, at least 1.
    pub weight: u16,
    /// The port.
    pub port: u16,
    /// Index into `ServiceRecords::endpoints` plus one, or `None` for the Service name.
    target: Option<NonZeroU32>,
}

impl Srv {
    /// An entry for `port` with `weight`, targeting endpoint `target` (an index into
    /// `ServiceRecords::endpoints`) or, for `None`, the Service name.
    pub fn new(weight: u16, port: u16, target: Option<u32>) -> Self {
        Self {
            weight,
            port,
            // An index of u32::MAX cannot occur (endpoint lists are far shorter); it would
            // read as the Service name.
            target: target.and_then(|i| NonZeroU32::new(i.wrapping_add(1))),
        }
    }

    /// The endpoint index the entry targets, or `None` for the Service name.
    pub fn target(&self) -> Option<u32> {
        self.target.map(|t| t.get() - 1)
    }
}

/// A set of SRV entries: one inline, or any number on the heap.
pub type SrvList = crate::model::OneOrMany<Srv>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_is_inline_and_equal_to_a_list_of_one() {
        let a = Srv::new(100, 80, None);
        let b = Srv::new(50, 443, Some(3));
        assert!(matches!(SrvList::from(vec![a]), SrvList::One(_)));
        assert_eq!(SrvList::Many(Box::new([a])), SrvList::One(a));
        assert_eq!(&*SrvList::from(vec![a, b]), &[a, b]);
        assert!(SrvList::default().is_empty());
        assert_eq!(std::mem::size_of::<SrvList>(), 16);
    }
}
