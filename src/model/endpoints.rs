//! `Endpoints`: an EndpointSlice's endpoints, stored as columns.
//!
//! At 1M endpoints every byte of an endpoint is a megabyte. A row struct (addresses as an
//! `IpList`, an optional inline hostname, the ready flag) is 56 bytes; as columns an endpoint
//! is its addresses (4 bytes each in an IPv4 slice, one in practice) and a 4-byte end-and-ready word, plus
//! a hostname only in slices where some endpoint has one, and a pod name only where some
//! endpoint names a Pod (and the cluster keeps pod names).

use super::{IpList, Ips, Label, PackedIps};

/// The ready flag in an end word; the rest is where the endpoint's addresses end.
const READY: u32 = 1 << 31;

/// One endpoint, owned: how endpoints are built, and what `Endpoints::to_vec` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The endpoint's addresses (Kubernetes allows exactly one in practice).
    pub addresses: IpList,
    /// `conditions.ready`, where unset counts as ready.
    pub ready: bool,
    /// The endpoint's `hostname`, lower case.
    pub hostname: Option<Label>,
    /// The name of the Pod in the endpoint's `targetRef` (`None` where it names no Pod).
    pub pod_name: Option<Box<str>>,
}

/// One endpoint, as read from its slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointRef<'a> {
    /// The endpoint's addresses.
    pub addresses: Ips<'a>,
    /// `conditions.ready`, where unset counts as ready.
    pub ready: bool,
    /// The endpoint's `hostname`, lower case.
    pub hostname: Option<&'a Label>,
    /// The name of the Pod in its `targetRef`, if kept.
    pub pod_name: Option<&'a str>,
}

/// An EndpointSlice's endpoints, column by column.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Endpoints {
    /// Every endpoint's addresses, endpoint after endpoint (4 bytes each in an IPv4 slice).
    addresses: PackedIps,
    /// Per endpoint: where its addresses end in `addresses`, and `READY`.
    ends: Box<[u32]>,
    /// Hostnames and pod names, when some endpoint has one (behind one thin pointer: the
    /// slices of a large cluster are mostly small, and mostly without either).
    names: Option<Box<Names>>,
}

/// The name columns of `Endpoints`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Names {
    /// Per endpoint, its hostname; empty when no endpoint has one.
    hostnames: Box<[Option<Label>]>,
    /// Per endpoint, its pod name; empty when no endpoint names a Pod.
    pod_names: Box<[Option<Box<str>>]>,
}

impl Endpoints {
    /// The number of endpoints.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Endpoint `i`.
    pub fn get(&self, i: usize) -> Option<EndpointRef<'_>> {
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).map_or(0, |e| e & !READY),
            None => 0,
        };
        Some(EndpointRef {
            addresses: self
                .addresses
                .view()
                .slice(start as usize..(end & !READY) as usize),
            ready: end & READY != 0,
            hostname: self
                .names
                .as_ref()
                .and_then(|n| n.hostnames.get(i)?.as_ref()),
            pod_name: self
                .names
                .as_ref()
                .and_then(|n| n.pod_names.get(i)?.as_deref()),
        })
    }

    /// Every endpoint, in order.
    pub fn iter(&self) -> impl Iterator<Item = EndpointRef<'_>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Every endpoint, owned.
    pub fn to_vec(&self) -> Vec<Endpoint> {
        self.iter()
            .map(|e| Endpoint {
                addresses: e.addresses.iter().collect(),
                ready: e.ready,
                hostname: e.hostname.cloned(),
                pod_name: e.pod_name.map(Box::from),
            })
            .collect()
    }

    /// Drops every pod name (kept only when endpoints are named after their pods).
    pub fn forget_pod_names(&mut self) {
        if let Some(names) = &mut self.names {
            names.pod_names = Box::default();
            if names.hostnames.is_empty() {
                self.names = None;
            }
        }
    }
}

impl FromIterator<Endpoint> for Endpoints {
    /// Endpoints in order. A slice holds at most 1,000 endpoints of at most 100 addresses
    /// each, far below the 2^31 addresses an end word can count; past that, addresses are
    /// dropped rather than miscounted.
    fn from_iter<I: IntoIterator<Item = Endpoint>>(iter: I) -> Self {
        let mut addresses = Vec::new();
        let mut ends = Vec::new();
        let mut hostnames = Vec::new();
        let mut pod_names = Vec::new();
        for e in iter {
            for ip in e.addresses.iter() {
                if addresses.len() < READY as usize - 1 {
                    addresses.push(*ip);
                }
            }
            // Bounded just above.
            let end = addresses.len() as u32;
            ends.push(if e.ready { end | READY } else { end });
            hostnames.push(e.hostname);
            pod_names.push(e.pod_name);
        }
        let names = Names {
            hostnames: if hostnames.iter().any(Option::is_some) {
                hostnames.into()
            } else {
                Box::default()
            },
            pod_names: if pod_names.iter().any(Option::is_some) {
                pod_names.into()
            } else {
                Box::default()
            },
        };
        Self {
            addresses: addresses.into(),
            ends: ends.into(),
            names: (names != Names::default()).then(|| Box::new(names)),
        }
    }
}

impl From<Vec<Endpoint>> for Endpoints {
    fn from(list: Vec<Endpoint>) -> Self {
        list.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(ips: &[&str], ready: bool, hostname: Option<&str>, pod: Option<&str>) -> Endpoint {
        Endpoint {
            addresses: ips.iter().map(|a| a.parse().unwrap()).collect(),
            ready,
            hostname: hostname.map(Label::from),
            pod_name: pod.map(Box::from),
        }
    }

    #[test]
    fn columns_give_back_each_endpoint_as_built() {
        let built = vec![
            ep(&["10.0.0.1"], true, None, Some("web-abc")),
            ep(&["10.0.0.2", "10.0.0.3"], false, Some("web-1"), None),
            ep(&[], true, None, None),
            ep(&["fd00::4"], true, Some("web-3"), Some("web-def")),
        ];
        let eps: Endpoints = built.clone().into_iter().collect();
        assert_eq!(eps.len(), 4);
        assert_eq!(eps.to_vec(), built);
        let second = eps.get(1).unwrap();
        assert_eq!(second.addresses.len(), 2);
        assert!(!second.ready);
        assert_eq!(second.hostname.map(Label::as_str), Some("web-1"));
        assert_eq!(eps.get(3).unwrap().pod_name, Some("web-def"));
        assert!(eps.get(4).is_none());

        let mut forgotten = eps.clone();
        forgotten.forget_pod_names();
        assert!(forgotten.iter().all(|e| e.pod_name.is_none()));
        assert_ne!(forgotten, eps);
        assert_eq!(
            forgotten.get(1).unwrap().hostname.map(Label::as_str),
            Some("web-1")
        );

        // Without hostnames, forgetting the pod names leaves no name columns at all.
        let mut pods_only: Endpoints = vec![ep(&["10.0.0.1"], true, None, Some("p"))].into();
        pods_only.forget_pod_names();
        assert!(pods_only.names.is_none());
        assert_eq!(pods_only, vec![ep(&["10.0.0.1"], true, None, None)].into());
    }

    #[test]
    fn columns_nobody_uses_cost_nothing() {
        let eps: Endpoints = (1..=3)
            .map(|i| ep(&[&format!("10.0.0.{i}")], true, None, None))
            .collect();
        assert!(eps.names.is_none());
        assert!(eps.iter().all(|e| e.hostname.is_none() && e.ready));
        assert!(Endpoints::default().is_empty());
    }
}
