//! The role a clusterdns process plays: the cluster's DNS, or a node-local cache in front of it.

/// What `--mode` selects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The cluster DNS: the cluster zone from the API (or manifests), other names forwarded.
    #[default]
    Cluster,
    /// A node-local cache (NodeLocal DNSCache's role): no cluster source; the cluster zone and
    /// the reverse zones go to `--cluster-dns` over TCP, other names to the upstreams.
    #[value(name = "node-local")]
    NodeLocal,
}
