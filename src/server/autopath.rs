//! `--autopath`: server-side search-path expansion, as CoreDNS's `autopath @kubernetes`.
//!
//! A pod's resolv.conf searches `<ns>.svc.<zone> svc.<zone> <zone>` with `ndots:5`, so a lookup
//! of `example.com` costs four queries (three NXDOMAIN, then the name itself). The first of
//! them, `example.com.<ns>.svc.<zone>` from a pod of `<ns>`, says the whole walk is coming:
//! the server walks it itself (`<base>.<ns>.svc.<zone>`, `<base>.svc.<zone>`,
//! `<base>.<zone>`, `<base>.`) and answers the first name that is not NXDOMAIN, with a CNAME
//! from the question to that name in front of its records. The stub resolver takes the
//! answer and stops searching: one round trip instead of four.
//!
//! The client's namespace comes from its source address (the pod watch of `--pods verified`).
//! The node's own search domains (CoreDNS appends the host resolv.conf's) are not walked.

use std::net::IpAddr;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::CNAME;
use hickory_server::proto::rr::{Name, RData, Record};

use super::general::Outcome;
use crate::zone::Snapshot;

/// The names `client`'s stub resolver would try, in order, when `qname` is the first step of
/// its search path; `None` unless `client` is a pod the zone knows and `qname` is a name
/// under `<its namespace>.svc.<zone>` (with at least one label of its own).
pub(super) fn search_path(snapshot: &Snapshot, client: IpAddr, qname: &Name) -> Option<[Name; 4]> {
    let namespaces = snapshot.pod_namespaces.get(&client.to_canonical())?;
    let origin = &snapshot.config.origin;
    let svc_zone = Name::from_ascii("svc").ok()?.append_name(origin).ok()?;
    for ns in namespaces.iter() {
        let Some(first) = Name::from_ascii(&**ns)
            .ok()
            .and_then(|n| n.append_name(&svc_zone).ok())
        else {
            continue;
        };
        if qname.num_labels() <= first.num_labels() || !first.zone_of(qname) {
            continue;
        }
        let keep = usize::from(qname.num_labels() - first.num_labels());
        let mut base = Name::from_labels(qname.iter().take(keep)).ok()?;
        base.set_fqdn(true);
        return Some([
            qname.clone(),
            base.clone().append_name(&svc_zone).ok()?,
            base.clone().append_name(origin).ok()?,
            base,
        ]);
    }
    None
}

/// Whether a step of the walk ends it: any answer but NXDOMAIN and the failures (as CoreDNS:
/// SERVFAIL, REFUSED, FORMERR and NOTIMP go on to the next name).
pub(super) fn found(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Records { metadata, .. } => !matches!(
            metadata.response_code,
            ResponseCode::NXDomain
                | ResponseCode::ServFail
                | ResponseCode::Refused
                | ResponseCode::FormErr
                | ResponseCode::NotImp
        ),
        Outcome::Error(_) => false,
    }
}

/// Puts a CNAME from `question` to the owner of the first answer record in front of the
/// answers, unless that owner is the question itself (CoreDNS's `cnamer`).
pub(super) fn cname_from(question: &Name, mut outcome: Outcome) -> Outcome {
    if let Outcome::Records { rendered, .. } = &mut outcome
        && let Some(first) = rendered.answers.first()
        && first.name != *question
    {
        let cname = Record::from_rdata(
            question.clone(),
            first.ttl,
            RData::CNAME(CNAME(first.name.clone())),
        );
        rendered.answers.insert(0, cname);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::zone::{PodsMode, ZoneConfig};

    fn snapshot() -> Snapshot {
        let config = ZoneConfig::new("cluster.local", 30, PodsMode::Verified).unwrap();
        let mut snap = Snapshot::empty(Arc::new(config));
        let ns: Arc<[Box<str>]> = Arc::new(["shop".into()]);
        snap.pod_namespaces
            .set("10.244.0.7".parse().unwrap(), Some(ns));
        snap
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn walks_the_pods_search_path() {
        let snap = snapshot();
        let pod: IpAddr = "10.244.0.7".parse().unwrap();
        let path = search_path(&snap, pod, &name("Example.com.shop.svc.cluster.local.")).unwrap();
        let got: Vec<String> = path.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "Example.com.shop.svc.cluster.local.",
                "Example.com.svc.cluster.local.",
                "Example.com.cluster.local.",
                "Example.com.",
            ]
        );
        // The same from the v4-mapped IPv6 address of the pod.
        let mapped: IpAddr = "::ffff:10.244.0.7".parse().unwrap();
        assert!(search_path(&snap, mapped, &name("a.shop.svc.cluster.local.")).is_some());
    }

    #[test]
    fn only_known_pods_and_their_own_namespace() {
        let snap = snapshot();
        let pod: IpAddr = "10.244.0.7".parse().unwrap();
        let stranger: IpAddr = "10.244.0.8".parse().unwrap();
        let q = name("example.com.shop.svc.cluster.local.");
        assert!(search_path(&snap, stranger, &q).is_none());
        for other in [
            "example.com.other.svc.cluster.local.",
            "shop.svc.cluster.local.",
            "example.com.",
        ] {
            assert!(search_path(&snap, pod, &name(other)).is_none(), "{other}");
        }
    }
}
