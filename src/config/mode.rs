//! `--mode`: which role this process plays.

/// The role of a clusterdns process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The cluster's DNS: serves the cluster zone from the Kubernetes API (or a manifests
    /// directory) and forwards the rest (a Deployment behind the kube-dns Service).
    #[default]
    Cluster,
    /// A cache on every node (a hostNetwork DaemonSet, as NodeLocal DNSCache): answers pods on
    /// a link-local address, sends cluster names to `--cluster-dns` over TCP and other names
    /// to the upstreams; no API access.
    NodeLocal,
}
