//! The SOA facts of the zones clusterdns serves, in one place for both writers (`render` for
//! the general path, `server::fast` for packets): CoreDNS's timers, the mailbox, the
//! primary nameserver's name under each zone.

/// Refresh, retry and expire, in seconds (CoreDNS's: 7200, 1800, 86400). The minimum is the
/// zone's TTL, and the SOA's own TTL `Snapshot::soa_ttl`.
pub const SOA_TIMERS: [u32; 3] = [7200, 1800, 86400];

/// The mailbox label, under the zone: `hostmaster.<zone>`.
pub const HOSTMASTER: &str = "hostmaster";

/// The cluster zone's primary nameserver, under the zone: `ns.dns.<zone>` (as CoreDNS).
pub const CLUSTER_MNAME: &str = "ns.dns";

/// An external zone's primary nameserver, under the zone: `ns1.dns.<zone>` (as k8s_gateway).
pub const EXTERNAL_MNAME: &str = "ns1.dns";
