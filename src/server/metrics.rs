//! The server's metrics: CoreDNS's per-query `dns_*` families, recorded without a lock or an
//! allocation (fixed arrays of atomics indexed by label), and the bounds (`dropped_total`,
//! `tcp_connections`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::rr::{Name, RecordType};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::histogram::{AtomicHistogram, Buckets, DURATION, SIZE};

/// Labels of queries or connections dropped unanswered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// `udp_inflight` (too many UDP queries in flight on the general path), `udp_socket_full`
    /// (dropped by the kernel from a UDP lane's full receive buffer) or `tcp_connections`
    /// (over `--max-tcp-connections`).
    pub reason: &'static str,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// The per-query families: `clusterdns_dns_requests_total`, `clusterdns_dns_responses_total`,
    /// `clusterdns_dns_request_duration_seconds`, `clusterdns_dns_request_size_bytes`,
    /// `clusterdns_dns_response_size_bytes`.
    pub dns: Arc<DnsMetrics>,
    /// `clusterdns_dropped_total{reason}`: queries or connections dropped at a bound.
    pub dropped: Family<DropLabels, Counter>,
    /// `clusterdns_tcp_connections`: TCP connections open.
    pub tcp_connections: Gauge,
}

impl Metrics {
    /// The server's metrics, registered in `registry`; the per-query families label
    /// `servers` and `zones` (the root zone `.` is added for every other name).
    pub fn new(registry: &mut Registry, servers: &[&str], zones: &[&str]) -> Self {
        let m = Self {
            dns: Arc::new(DnsMetrics::new(servers, zones)),
            dropped: Family::default(),
            tcp_connections: Gauge::default(),
        };
        registry.register(
            "dropped",
            "Queries or connections dropped at a bound, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "tcp_connections",
            "TCP connections open",
            m.tcp_connections.clone(),
        );
        registry.register_collector(Box::new(DnsCollector(Arc::clone(&m.dns))));
        m
    }

    /// Records one answered query (no lock, no allocation).
    pub fn observe_query(&self, o: &QueryObservation) {
        self.dns.observe_query(o);
    }
}

/// Registers the per-query families.
#[derive(Debug)]
struct DnsCollector(Arc<DnsMetrics>);

/// Transports, as the `proto` label spells them.
pub const PROTOS: [&str; 2] = ["udp", "tcp"];
/// Address families of the client, as the `family` label spells them (CoreDNS: 1 IPv4, 2 IPv6).
pub const FAMILIES: [&str; 2] = ["1", "2"];
/// Query types with their own `type` label; every other one is `other` (as CoreDNS), so a
/// client cannot create a series per type number.
pub const TYPES: [&str; 20] = [
    "A", "AAAA", "ANY", "AXFR", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "IXFR", "MX", "NAPTR",
    "NS", "PTR", "SOA", "SRV", "SVCB", "TXT", "other", "",
];
/// Response codes with their own `rcode` label.
pub const RCODES: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "OTHER",
];
/// The transport of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// UDP.
    Udp = 0,
    /// TCP.
    Tcp = 1,
}

/// The client's address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrFamily {
    /// IPv4.
    V4 = 0,
    /// IPv6.
    V6 = 1,
}

impl AddrFamily {
    /// The family of `addr` (an IPv4-mapped IPv6 address counts as IPv6, as the socket saw it).
    pub fn of(addr: &std::net::SocketAddr) -> Self {
        if addr.is_ipv4() { Self::V4 } else { Self::V6 }
    }
}

/// The index of a query type's `type` label in [`TYPES`].
pub fn type_index(t: Option<RecordType>) -> usize {
    let Some(t) = t else {
        return TYPES.len() - 1;
    };
    match t {
        RecordType::A => 0,
        RecordType::AAAA => 1,
        RecordType::ANY => 2,
        RecordType::AXFR => 3,
        RecordType::CAA => 4,
        RecordType::CNAME => 5,
        RecordType::DNSKEY => 6,
        RecordType::DS => 7,
        RecordType::HTTPS => 8,
        RecordType::IXFR => 9,
        RecordType::MX => 10,
        RecordType::NAPTR => 11,
        RecordType::NS => 12,
        RecordType::PTR => 13,
        RecordType::SOA => 14,
        RecordType::SRV => 15,
        RecordType::SVCB => 16,
        RecordType::TXT => 17,
        _ => 18,
    }
}

/// The index of a response code's `rcode` label in [`RCODES`].
pub fn rcode_index(code: u16) -> usize {
    match code {
        0..=5 => usize::from(code),
        16 => 6,
        _ => 7,
    }
}

/// One answered query, as the `dns_*` metrics record it.
#[derive(Clone, Copy, Debug)]
pub struct QueryObservation {
    /// Index of the server (`server` label) in the metrics' server list.
    pub server: usize,
    /// Index of the zone (`zone` label), from [`DnsMetrics::zone_index`].
    pub zone: usize,
    /// Transport.
    pub proto: Proto,
    /// Client address family.
    pub family: AddrFamily,
    /// Index of the query type in [`TYPES`] ([`type_index`]).
    pub qtype: usize,
    /// Index of the response code in [`RCODES`] ([`rcode_index`]).
    pub rcode: usize,
    /// Size of the query, in bytes.
    pub request_size: usize,
    /// Size of the response, in bytes (0 when none was sent).
    pub response_size: usize,
    /// Time from the query's arrival to its answer.
    pub duration: std::time::Duration,
}

/// CoreDNS's per-query families, in flat arrays indexed by label indices: the query path
/// never takes a lock or allocates; a scrape walks the arrays and writes the non-zero series.
#[derive(Debug)]
pub struct DnsMetrics {
    servers: Vec<String>,
    /// Zone labels, `.` last; with each its lowercase labels for matching.
    zones: Vec<(String, Vec<Vec<u8>>)>,
    /// `[server][zone][proto][family][type]`.
    requests: Box<[AtomicU64]>,
    /// `[server][zone][rcode]`.
    responses: Box<[AtomicU64]>,
    /// `[server][zone][type]`.
    duration: Box<[AtomicHistogram]>,
    /// `[server][zone][proto]`.
    request_size: Box<[AtomicHistogram]>,
    /// `[server][zone][proto]`.
    response_size: Box<[AtomicHistogram]>,
}

impl DnsMetrics {
    /// Metrics for `servers` (e.g. `dns://:53`) and `zones` (e.g. `cluster.local.`); the root
    /// zone `.` is added last, for every other name.
    pub fn new(servers: &[&str], zones: &[&str]) -> Self {
        let servers: Vec<String> = if servers.is_empty() {
            vec!["dns://:53".to_owned()]
        } else {
            servers.iter().map(|s| (*s).to_owned()).collect()
        };
        let mut zl: Vec<(String, Vec<Vec<u8>>)> = zones
            .iter()
            .map(|z| z.trim_end_matches('.').to_ascii_lowercase())
            .filter(|z| !z.is_empty())
            .map(|z| {
                let labels = z.split('.').map(|l| l.as_bytes().to_vec()).collect();
                (format!("{z}."), labels)
            })
            .collect();
        // Longest first, so a zone inside another is matched first.
        zl.sort_by_key(|(_, l)| std::cmp::Reverse(l.len()));
        zl.push((".".to_owned(), Vec::new()));
        let (s, z) = (servers.len(), zl.len());
        let atomics = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        let hists =
            |n: usize, b: &'static Buckets| (0..n).map(|_| AtomicHistogram::new(b)).collect();
        Self {
            requests: atomics(s * z * PROTOS.len() * FAMILIES.len() * TYPES.len()),
            responses: atomics(s * z * RCODES.len()),
            duration: hists(s * z * TYPES.len(), &DURATION),
            request_size: hists(s * z * PROTOS.len(), &SIZE),
            response_size: hists(s * z * PROTOS.len(), &SIZE),
            servers,
            zones: zl,
        }
    }

    /// The index of the zone `name` falls in (the most specific one; `.` for every other
    /// name). Compares labels in place: no allocation.
    pub fn zone_index(&self, name: &Name) -> usize {
        let mut buf: [&[u8]; crate::zone::MAX_LABELS] = [&[]; crate::zone::MAX_LABELS];
        let mut n = 0;
        for (slot, label) in buf.iter_mut().zip(name.iter()) {
            *slot = label;
            n += 1;
        }
        self.zone_index_labels(&buf[..n])
    }

    /// [`DnsMetrics::zone_index`] for a name given as its labels, left to right.
    pub fn zone_index_labels(&self, name: &[&[u8]]) -> usize {
        let n = name.len();
        for (i, (_, labels)) in self.zones.iter().enumerate() {
            if labels.len() > n {
                continue;
            }
            // Right to left: another zone differs in its last label, mostly.
            let tail = name.iter().rev().take(labels.len());
            if tail
                .zip(labels.iter().rev())
                .all(|(a, b)| crate::wire::eq_lower(a, b))
            {
                return i;
            }
        }
        self.zones.len() - 1
    }

    /// Records one answered query: a handful of relaxed atomic adds.
    pub fn observe_query(&self, o: &QueryObservation) {
        let server = o.server.min(self.servers.len() - 1);
        let zone = o.zone.min(self.zones.len() - 1);
        let sz = server * self.zones.len() + zone;
        let (proto, family) = (o.proto as usize, o.family as usize);
        let qtype = o.qtype.min(TYPES.len() - 1);
        let rcode = o.rcode.min(RCODES.len() - 1);
        let req = ((sz * PROTOS.len() + proto) * FAMILIES.len() + family) * TYPES.len() + qtype;
        if let Some(c) = self.requests.get(req) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = self.responses.get(sz * RCODES.len() + rcode) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(h) = self.duration.get(sz * TYPES.len() + qtype) {
            h.observe(u64::try_from(o.duration.as_nanos()).unwrap_or(u64::MAX));
        }
        if let Some(h) = self.request_size.get(sz * PROTOS.len() + proto) {
            h.observe(o.request_size as u64);
        }
        if let Some(h) = self.response_size.get(sz * PROTOS.len() + proto) {
            h.observe(o.response_size as u64);
        }
    }

    /// Every `(server, zone)` label pair with its flat index.
    fn server_zones(&self) -> impl Iterator<Item = (usize, &str, &str)> {
        self.servers.iter().enumerate().flat_map(move |(si, s)| {
            self.zones
                .iter()
                .enumerate()
                .map(move |(zi, (z, _))| (si * self.zones.len() + zi, s.as_str(), z.as_str()))
        })
    }

    fn encode_size(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        hists: &[AtomicHistogram],
    ) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (sz, server, zone) in self.server_zones() {
            for (p, proto) in PROTOS.iter().enumerate() {
                if let Some((sum, count, buckets)) = hists
                    .get(sz * PROTOS.len() + p)
                    .and_then(AtomicHistogram::snapshot)
                {
                    let labels = [
                        ("server", server),
                        ("zone", zone),
                        ("view", ""),
                        ("proto", proto),
                    ];
                    family
                        .encode_family(&labels)?
                        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
                }
            }
        }
        Ok(())
    }
}

impl Collector for DnsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(&mut encoder)
    }
}

impl DnsMetrics {
    // The five per-query families, each a loop over the label arrays in the same order as
    // they are stored; kept together so the index arithmetic is read once.
    #[allow(clippy::too_many_lines)]
    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "dns_requests",
            "DNS requests by server, zone, transport, client address family and query type",
            None,
            MetricType::Counter,
        )?;
        for (sz, server, zone) in self.server_zones() {
            for (p, proto) in PROTOS.iter().enumerate() {
                for (f, fam) in FAMILIES.iter().enumerate() {
                    for (t, ty) in TYPES.iter().enumerate() {
                        let i = ((sz * PROTOS.len() + p) * FAMILIES.len() + f) * TYPES.len() + t;
                        let v = self
                            .requests
                            .get(i)
                            .map_or(0, |c| c.load(Ordering::Relaxed));
                        if v > 0 {
                            let labels = [
                                ("server", server),
                                ("zone", zone),
                                ("view", ""),
                                ("proto", proto),
                                ("family", fam),
                                ("type", ty),
                            ];
                            family
                                .encode_family(&labels)?
                                .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
                        }
                    }
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "dns_responses",
            "DNS responses by server, zone and response code",
            None,
            MetricType::Counter,
        )?;
        for (sz, server, zone) in self.server_zones() {
            for (r, rcode) in RCODES.iter().enumerate() {
                let v = self
                    .responses
                    .get(sz * RCODES.len() + r)
                    .map_or(0, |c| c.load(Ordering::Relaxed));
                if v > 0 {
                    let labels = [
                        ("server", server),
                        ("zone", zone),
                        ("view", ""),
                        ("rcode", rcode),
                        ("plugin", ""),
                    ];
                    family
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "dns_request_duration_seconds",
            "Time to answer a DNS request, by server, zone and query type",
            None,
            MetricType::Histogram,
        )?;
        for (sz, server, zone) in self.server_zones() {
            for (t, ty) in TYPES.iter().enumerate() {
                if let Some((sum, count, buckets)) = self
                    .duration
                    .get(sz * TYPES.len() + t)
                    .and_then(AtomicHistogram::snapshot)
                {
                    let labels = [
                        ("server", server),
                        ("zone", zone),
                        ("view", ""),
                        ("type", ty),
                    ];
                    family
                        .encode_family(&labels)?
                        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
                }
            }
        }
        self.encode_size(
            encoder,
            "dns_request_size_bytes",
            "Size of DNS requests in bytes, by server, zone and transport",
            &self.request_size,
        )?;
        self.encode_size(
            encoder,
            "dns_response_size_bytes",
            "Size of DNS responses in bytes, by server, zone and transport",
            &self.response_size,
        )
    }
}
