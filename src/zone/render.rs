//! Rendering a compact `Answer` into hickory records, spelled as the question was.
//!
//! Owner names are the question's name; the zone part of every other name (SOA, NS, SRV
//! targets, glue) is the question's spelling of the zone, as CoreDNS does (its
//! `handler_case_test`): `SvC1.TeStNs.SvC.cLuStEr.LoCaL.` gets targets under `cLuStEr.LoCaL.`.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record};

use super::lookup::{Answer, AnswerData, AnswerZone, Rcode};
use super::soa::{CLUSTER_MNAME, EXTERNAL_MNAME, HOSTMASTER, SOA_TIMERS};
use super::{
    CLUSTERSET_SCHEMA_VERSION, DNS_SCHEMA_VERSION, DNS_VERSION_TTL, ServiceRecords, Snapshot, Srv,
    ptr_names,
};
use crate::model::Ips;

/// The sections of a response.
#[derive(Debug, Default)]
pub struct Rendered {
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authorities: Vec<Record>,
    /// Additional section (without OPT).
    pub additionals: Vec<Record>,
}

/// `prefix` (dotted, relative) under `zone`.
fn under(prefix: &str, zone: &Name) -> Option<Name> {
    Name::from_ascii(prefix).ok()?.append_name(zone).ok()
}

fn address_record(owner: &Name, ttl: u32, ip: IpAddr) -> Record {
    let rdata = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(owner.clone(), ttl, rdata)
}

fn soa_record(snap: &Snapshot, zone: &Name, mname: &str) -> Option<Record> {
    let soa = SOA::new(
        under(mname, zone)?,
        under(HOSTMASTER, zone)?,
        snap.serial,
        i32::try_from(SOA_TIMERS[0]).ok()?,
        i32::try_from(SOA_TIMERS[1]).ok()?,
        i32::try_from(SOA_TIMERS[2]).ok()?,
        snap.config.ttl,
    );
    Some(Record::from_rdata(
        zone.clone(),
        snap.soa_ttl(),
        RData::SOA(soa),
    ))
}

fn service_target(svc: &ServiceRecords, endpoint: Option<u32>, zone: &Name) -> Option<Name> {
    let base = format!("{}.{}.svc", svc.name, svc.namespace);
    match endpoint {
        None => under(&base, zone),
        Some(i) => {
            let ep = svc.endpoints.get(i as usize)?;
            under(&format!("{}.{base}", ep.label_str()), zone)
        }
    }
}

/// The addresses an SRV record's target has: the Service's (ClusterIP) or its endpoint's
/// (headless), for the additional section.
pub fn target_addresses<'a>(svc: &'a ServiceRecords, srv: &Srv) -> Ips<'a> {
    match srv.target() {
        None => svc.addresses.view(),
        Some(i) => svc
            .endpoints
            .get(i as usize)
            .map(|e| e.addresses)
            .unwrap_or_default(),
    }
}

/// Renders `answer` to the question `qname`.
// One match over the answer kinds, each arm the records of that kind: the general path's
// counterpart of `server::fast`, kept in the same order for reading the two side by side.
#[allow(clippy::too_many_lines)]
pub fn render(snap: &Snapshot, answer: &Answer<'_>, qname: &Name) -> Rendered {
    let mut out = Rendered::default();
    let ttl = snap.config.ttl;
    let zone = match answer.zone {
        AnswerZone::None => return out,
        AnswerZone::Cluster { labels }
        | AnswerZone::External { labels }
        | AnswerZone::Clusterset { labels } => qname.trim_to(labels),
        AnswerZone::ReverseV4 | AnswerZone::ReverseV6 => qname.trim_to(2),
    };
    // k8s_external names its zones' nameserver `ns1.dns.<zone>`.
    let mname = match answer.zone {
        AnswerZone::External { .. } => EXTERNAL_MNAME,
        _ => CLUSTER_MNAME,
    };
    match answer.data {
        AnswerData::Empty => {}
        AnswerData::Soa => out.answers.extend(soa_record(snap, &zone, mname)),
        AnswerData::ExternalNs => {
            if let Some(ns) = under(mname, &zone) {
                for ip in snap.external.nameserver_addresses.iter() {
                    out.additionals.push(address_record(&ns, ttl, *ip));
                }
                out.answers
                    .push(Record::from_rdata(zone.clone(), ttl, RData::NS(NS(ns))));
            }
        }
        AnswerData::ExternalSrv(srv) => {
            // The targets whose glue is in already.
            let mut seen = super::seen_set(srv.len());
            for s in srv {
                if seen.insert(&s.target) {
                    for ip in s.glue.iter() {
                        out.additionals.push(address_record(&s.target, ttl, *ip));
                    }
                }
                let rdata = SRV::new(0, s.weight, s.port, s.target.clone());
                out.answers
                    .push(Record::from_rdata(qname.clone(), ttl, RData::SRV(rdata)));
            }
        }
        AnswerData::Ns => {
            if let Some(ns) = under(CLUSTER_MNAME, &zone) {
                for ip in snap.nameserver_addresses.iter() {
                    out.additionals.push(address_record(&ns, ttl, *ip));
                }
                out.answers
                    .push(Record::from_rdata(zone.clone(), ttl, RData::NS(NS(ns))));
            }
        }
        AnswerData::DnsVersion => out.answers.push(Record::from_rdata(
            qname.clone(),
            DNS_VERSION_TTL,
            RData::TXT(TXT::new(vec![DNS_SCHEMA_VERSION.to_owned()])),
        )),
        AnswerData::ClustersetVersion => out.answers.push(Record::from_rdata(
            qname.clone(),
            DNS_VERSION_TTL,
            RData::TXT(TXT::new(vec![CLUSTERSET_SCHEMA_VERSION.to_owned()])),
        )),
        AnswerData::Addresses { addrs, v6 } => out
            .answers
            .extend(addrs.family(v6).map(|ip| address_record(qname, ttl, ip))),
        AnswerData::PodAddress(ip) => out.answers.push(address_record(qname, ttl, ip)),
        AnswerData::Cname(target) => out.answers.push(Record::from_rdata(
            qname.clone(),
            ttl,
            RData::CNAME(CNAME(target.clone())),
        )),
        AnswerData::Srv { service, srv } => {
            // The targets whose glue is in already: a set, so that a large headless
            // Service's SRV answer costs time linear in its records.
            let mut seen = super::seen_set(srv.len());
            for s in srv {
                let Some(target) = service_target(service, s.target(), &zone) else {
                    continue;
                };
                if seen.insert(s.target()) {
                    for ip in target_addresses(service, s) {
                        out.additionals.push(address_record(&target, ttl, ip));
                    }
                }
                let rdata = SRV::new(0, s.weight, s.port, target);
                out.answers
                    .push(Record::from_rdata(qname.clone(), ttl, RData::SRV(rdata)));
            }
        }
        AnswerData::Ptr { ip, targets } => {
            // Targets are spelled under the zone's own name (the question is a reverse name).
            for (service, endpoint) in ptr_names(snap, ip, targets) {
                if let Some(name) = service_target(service, endpoint, &snap.config.origin) {
                    out.answers.push(Record::from_rdata(
                        qname.clone(),
                        ttl,
                        RData::PTR(PTR(name)),
                    ));
                }
            }
        }
    }
    let negative = matches!(answer.rcode, Rcode::NxDomain | Rcode::ServFail)
        || (answer.rcode == Rcode::NoError && out.answers.is_empty());
    if negative {
        out.authorities.extend(soa_record(snap, &zone, mname));
    }
    out
}
