//! `EndpointNames`: a Service's endpoint names (`<label>.<svc>.<ns>.svc.<zone>`) as columns.
//!
//! A headless Service has a name per endpoint, and a large cluster a million of them. As
//! rows (an inline 24-byte label and a 24-byte address list) a name is 48 bytes; as columns
//! it is its label's bytes (`10-244-1-7`: 10), a 4-byte end and its address (4 bytes in an
//! IPv4 Service), with the ends of each name's addresses kept only when some name has more
//! than one. The columns sit behind one thin pointer: a cluster-IP Service has none.
//!
//! An ExternalName Service has no endpoint names but a CNAME target: the same pointer holds
//! it, so that a Service's records are 120 bytes (a 144-byte block with its `Arc`), not 128
//! (160).

use std::net::IpAddr;

use hickory_proto::rr::Name;

use crate::model::{Ips, Label, PackedIps};

/// One endpoint name: its label and the addresses it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointName<'a> {
    /// The label, lower case: the hostname, or the dashed address.
    pub label: &'a [u8],
    /// Its addresses (one in practice).
    pub addresses: Ips<'a>,
}

impl<'a> EndpointName<'a> {
    /// The label as text (labels are built from `Label`s: ASCII, never empty of meaning).
    pub fn label_str(&self) -> &'a str {
        std::str::from_utf8(self.label).unwrap_or_default()
    }
}

/// A Service's endpoint names, sorted by label (bytes); or an ExternalName Service's target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointNames(Option<Box<Held>>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Held {
    Names(Columns),
    Alias(Name),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Columns {
    /// Every label, one after another.
    text: Box<[u8]>,
    /// Per name, where its label ends in `text`.
    label_ends: Box<[u32]>,
    /// Every name's addresses, name after name.
    addresses: PackedIps,
    /// Per name, where its addresses end in `addresses`; empty when each name has one.
    address_ends: Box<[u32]>,
}

/// Where item `i` lies in a column whose items end at `ends`.
fn span(ends: &[u32], i: usize) -> Option<std::ops::Range<usize>> {
    let end = *ends.get(i)? as usize;
    let start = match i.checked_sub(1) {
        Some(p) => ends.get(p).map_or(0, |&e| e as usize),
        None => 0,
    };
    Some(start..end)
}

impl EndpointNames {
    /// Names from `(label, addresses)` pairs, already sorted by label and distinct. Labels
    /// are at most 127 bytes and a Service's endpoints far fewer than 2^32 bytes' worth.
    pub fn new(names: Vec<(Label, Vec<IpAddr>)>) -> Self {
        if names.is_empty() {
            return Self(None);
        }
        debug_assert!(
            names
                .windows(2)
                .all(|w| w[0].0.as_bytes() < w[1].0.as_bytes())
        );
        let mut text = Vec::new();
        let mut label_ends = Vec::with_capacity(names.len());
        let mut addresses = Vec::with_capacity(names.len());
        let mut address_ends = Vec::with_capacity(names.len());
        let mut one_each = true;
        for (label, ips) in &names {
            text.extend_from_slice(label.as_bytes());
            label_ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
            one_each &= ips.len() == 1;
            addresses.extend_from_slice(ips);
            address_ends.push(u32::try_from(addresses.len()).unwrap_or(u32::MAX));
        }
        Self(Some(Box::new(Held::Names(Columns {
            text: text.into(),
            label_ends: label_ends.into(),
            addresses: addresses.into_iter().collect(),
            address_ends: if one_each {
                Box::default()
            } else {
                address_ends.into()
            },
        }))))
    }

    /// No names: the CNAME target of an ExternalName Service.
    pub fn alias(target: Name) -> Self {
        Self(Some(Box::new(Held::Alias(target))))
    }

    /// The CNAME target, for an ExternalName Service.
    pub fn target(&self) -> Option<&Name> {
        match self.0.as_deref()? {
            Held::Alias(target) => Some(target),
            Held::Names(_) => None,
        }
    }

    fn columns(&self) -> Option<&Columns> {
        match self.0.as_deref()? {
            Held::Names(c) => Some(c),
            Held::Alias(_) => None,
        }
    }

    /// The number of names.
    pub fn len(&self) -> usize {
        self.columns().map_or(0, |c| c.label_ends.len())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label of name `i`.
    fn label(c: &Columns, i: usize) -> Option<&[u8]> {
        c.text.get(span(&c.label_ends, i)?)
    }

    /// Name `i`, in label order.
    pub fn get(&self, i: usize) -> Option<EndpointName<'_>> {
        let c = self.columns()?;
        let label = Self::label(c, i)?;
        let addresses = if c.address_ends.is_empty() {
            c.addresses.view().slice(i..i + 1)
        } else {
            c.addresses
                .view()
                .slice(span(&c.address_ends, i).unwrap_or_default())
        };
        Some(EndpointName { label, addresses })
    }

    /// Every name, in label order.
    pub fn iter(&self) -> impl Iterator<Item = EndpointName<'_>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The index of the name whose label is `label` (lower case).
    pub fn position(&self, label: &[u8]) -> Option<usize> {
        let c = self.columns()?;
        let (mut lo, mut hi) = (0, c.label_ends.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match Self::label(c, mid)?.cmp(label) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The name whose label is `label` (lower case).
    pub fn find(&self, label: &[u8]) -> Option<EndpointName<'_>> {
        self.get(self.position(label)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names_are_found_by_label_with_their_addresses() {
        let names = EndpointNames::new(vec![
            ("10-0-0-1".into(), vec![ip("10.0.0.1")]),
            ("10-0-0-2".into(), vec![ip("10.0.0.2")]),
            ("web-0".into(), vec![ip("10.0.0.9")]),
        ]);
        assert_eq!(names.len(), 3);
        let web = names.find(b"web-0").unwrap();
        assert_eq!(web.label_str(), "web-0");
        assert_eq!(web.addresses.iter().collect::<Vec<_>>(), [ip("10.0.0.9")]);
        assert_eq!(names.position(b"10-0-0-2"), Some(1));
        assert!(names.find(b"10-0-0-3").is_none());
        assert!(names.find(b"").is_none());
        assert!(names.find(b"zzz").is_none());
        let labels: Vec<_> = names.iter().map(|n| n.label_str()).collect();
        assert_eq!(labels, ["10-0-0-1", "10-0-0-2", "web-0"]);
        assert!(names.get(3).is_none());
    }

    #[test]
    fn names_with_several_addresses_keep_each_run() {
        let names = EndpointNames::new(vec![
            ("a".into(), vec![ip("10.0.0.1"), ip("fd00::1")]),
            ("b".into(), vec![ip("10.0.0.2")]),
            ("c".into(), vec![ip("fd00::3"), ip("fd00::4")]),
        ]);
        let runs: Vec<Vec<IpAddr>> = names.iter().map(|n| n.addresses.iter().collect()).collect();
        assert_eq!(
            runs,
            [
                vec![ip("10.0.0.1"), ip("fd00::1")],
                vec![ip("10.0.0.2")],
                vec![ip("fd00::3"), ip("fd00::4")]
            ]
        );
        assert!(EndpointNames::new(Vec::new()).is_empty());
        assert_eq!(std::mem::size_of::<EndpointNames>(), 8);
        assert!(names.target().is_none());
        let target = Name::from_ascii("db.example.com.").unwrap();
        let alias = EndpointNames::alias(target.clone());
        assert_eq!(alias.target(), Some(&target));
        assert!(alias.is_empty() && alias.get(0).is_none() && alias.find(b"a").is_none());
    }
}
