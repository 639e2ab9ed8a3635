//! The shape of a generated cluster as pure functions of an index and the seed, so that the
//! manifests, the zone file and the query file agree without holding the cluster in memory.

use std::net::Ipv4Addr;

/// The cluster domain the generated files use.
pub const ZONE: &str = "cluster.local";
/// Services per namespace (the last namespace may hold fewer).
pub const SERVICES_PER_NAMESPACE: u64 = 100;
/// Endpoints per EndpointSlice, as the EndpointSlice controller's default `maxEndpointsPerSlice`.
pub const ENDPOINTS_PER_SLICE: u64 = 100;
/// One in this many of the non-headless Services is an ExternalName.
const EXTERNAL_NAME_EVERY: u64 = 200;
/// The cluster IP of `kube-system/kube-dns` (generated Services start at `SERVICE_CIDR + 256`).
pub const KUBE_DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// Service cluster IPs: 10.96.0.0/12.
const SERVICE_CIDR: (u32, u32) = (u32::from_be_bytes([10, 96, 0, 0]), 12);
/// Endpoint (pod) addresses: 100.64.0.0/10.
const POD_CIDR: (u32, u32) = (u32::from_be_bytes([100, 64, 0, 0]), 10);

/// How one Service is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A cluster IP and 1–2 named ports.
    ClusterIp,
    /// Headless, with the index among headless Services (it places the endpoint addresses).
    Headless(u64),
    /// A CNAME to a name outside the cluster.
    ExternalName,
}

/// A named Service port.
#[derive(Clone, Copy, Debug)]
pub struct PortSpec {
    /// The port name.
    pub name: &'static str,
    /// `TCP` or `UDP`.
    pub protocol: &'static str,
    /// The Service port.
    pub port: u16,
    /// The pod port (`targetPort`, and the EndpointSlice port).
    pub target: u16,
}

const HTTP: PortSpec = PortSpec {
    name: "http",
    protocol: "TCP",
    port: 80,
    target: 8080,
};
const GRPC: PortSpec = PortSpec {
    name: "grpc",
    protocol: "TCP",
    port: 9090,
    target: 9090,
};
const SYSLOG: PortSpec = PortSpec {
    name: "syslog",
    protocol: "UDP",
    port: 514,
    target: 5514,
};
/// The one port of every headless Service: SRV records carry the EndpointSlice port.
pub const HEADLESS_PORT: PortSpec = PortSpec {
    name: "http",
    protocol: "TCP",
    port: 8080,
    target: 8080,
};

/// splitmix64: a fixed, well-mixed function of its input.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A deterministic stream of random numbers.
pub struct Rng(u64);

impl Rng {
    /// A stream from a seed.
    pub fn new(seed: u64) -> Self {
        Self(mix(seed ^ 0x5151_5151))
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The parameters of a generated cluster.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Number of generated Services (besides `kube-system/kube-dns`).
    pub services: u64,
    /// Ready endpoints per headless Service.
    pub endpoints_per_headless: u64,
    /// Percentage of Services that are headless.
    pub headless_percent: u64,
    /// Seed of every random choice.
    pub seed: u64,
}

fn in_cidr(cidr: (u32, u32), offset: u64) -> Option<Ipv4Addr> {
    let size = 1u64 << (32 - cidr.1);
    (offset < size).then(|| Ipv4Addr::from(cidr.0 + offset as u32))
}

impl Plan {
    /// Checks that every address fits its range.
    pub fn check(&self) -> Result<(), String> {
        if self.headless_percent > 100 {
            return Err("--headless-percent must be at most 100".into());
        }
        if in_cidr(SERVICE_CIDR, 256 + self.services).is_none() {
            return Err(format!(
                "{} Services do not fit the service range 10.96.0.0/12",
                self.services
            ));
        }
        let endpoints = self.headless_count() * self.endpoints_per_headless;
        if in_cidr(POD_CIDR, 1 + endpoints).is_none() {
            return Err(format!(
                "{endpoints} endpoints do not fit the pod range 100.64.0.0/10"
            ));
        }
        Ok(())
    }

    /// Number of headless Services: exactly ⌊services × percent / 100⌋.
    pub fn headless_count(&self) -> u64 {
        self.services * self.headless_percent / 100
    }

    /// Total endpoints.
    pub fn endpoint_count(&self) -> u64 {
        self.headless_count() * self.endpoints_per_headless
    }

    /// Number of namespaces holding the generated Services.
    pub fn namespace_count(&self) -> u64 {
        self.services.div_ceil(SERVICES_PER_NAMESPACE).max(1)
    }

    /// Namespace name.
    pub fn namespace(&self, ns: u64) -> String {
        format!("ns-{ns:05}")
    }

    /// Service `i`'s namespace and name.
    pub fn service(&self, i: u64) -> (String, String) {
        (
            self.namespace(i / SERVICES_PER_NAMESPACE),
            format!("svc-{i:06}"),
        )
    }

    /// How Service `i` is published: headless ones are spread evenly over the indexes.
    pub fn shape(&self, i: u64) -> Shape {
        let p = self.headless_percent;
        let (before, after) = (i * p / 100, (i + 1) * p / 100);
        if after > before {
            Shape::Headless(before)
        } else if mix(self.seed ^ i.wrapping_mul(31)).is_multiple_of(EXTERNAL_NAME_EVERY) {
            Shape::ExternalName
        } else {
            Shape::ClusterIp
        }
    }

    /// Service `i`'s cluster IP (meaningful for `Shape::ClusterIp`).
    pub fn cluster_ip(&self, i: u64) -> Ipv4Addr {
        in_cidr(SERVICE_CIDR, 256 + i).unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// Service `i`'s ports: `http`, and for half of them a second named port.
    pub fn ports(&self, i: u64) -> &'static [PortSpec] {
        match self.shape(i) {
            Shape::Headless(_) => &[HEADLESS_PORT],
            Shape::ExternalName => &[],
            Shape::ClusterIp => match mix(self.seed.wrapping_add(i)) % 4 {
                0 => &[HTTP, SYSLOG],
                1 => &[HTTP, GRPC],
                _ => &[HTTP],
            },
        }
    }

    /// The CNAME target of an ExternalName Service.
    pub fn external_name(&self, i: u64) -> String {
        format!("svc-{i:06}.example.com")
    }

    /// Whether the endpoints of headless Service `h` carry hostnames (StatefulSet style).
    pub fn has_hostnames(&self, h: u64) -> bool {
        h.is_multiple_of(2)
    }

    /// Endpoint `k` of headless Service `h`: its address.
    pub fn endpoint_ip(&self, h: u64, k: u64) -> Ipv4Addr {
        in_cidr(POD_CIDR, 1 + h * self.endpoints_per_headless + k).unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// The DNS label of endpoint `k` of headless Service `h` named `svc`: its hostname, or
    /// the dashed address.
    pub fn endpoint_label(&self, h: u64, k: u64, svc: &str) -> String {
        if self.has_hostnames(h) {
            format!("{svc}-{k}")
        } else {
            self.endpoint_ip(h, k).to_string().replace('.', "-")
        }
    }

    /// The node an endpoint runs on (for realistic EndpointSlices).
    pub fn node(&self, h: u64, k: u64) -> String {
        format!("node-{:04}", mix(self.seed ^ (h << 20) ^ k) % 5000)
    }
}

/// ⌊100 / candidates⌋, at least 1: the SRV weight clusterdns and CoreDNS give.
pub fn srv_weight(candidates: u64) -> u64 {
    (100 / candidates.max(1)).max(1)
}
