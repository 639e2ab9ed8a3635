//! Command-line configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::zone::PodsMode;

/// clusterdns: the Kubernetes cluster DNS server.
///
/// Serves the cluster zone (<service>.<namespace>.svc.<zone>, as the Kubernetes DNS-Based
/// Service Discovery specification defines it) authoritatively over UDP and TCP.
#[derive(Parser, Debug, Clone)]
#[command(name = "clusterdns", version, about, long_about)]
pub struct Config {
    /// Serve the objects in this directory of Kubernetes manifests (every .yaml, .yml and
    /// .json file, multi-document, subfolders too), watched for changes, instead of
    /// watching the Kubernetes API.
    #[arg(long, value_name = "DIR", conflicts_with = "kubeconfig")]
    pub manifests: Option<PathBuf>,

    /// Kubeconfig for the Kubernetes API (default: in-cluster service account, then
    /// `KUBECONFIG`, then `~/.kube/config`).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Serve only these namespaces (comma-separated); others answer NXDOMAIN and their
    /// objects are not kept.
    #[arg(long, value_name = "NS,...", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// Name endpoints without a hostname after their pod (when shorter than 64 characters).
    #[arg(long)]
    pub endpoint_pod_names: bool,

    /// How long listeners wait for the first full list from the API before serving anyway
    /// (names that would be NXDOMAIN answer SERVFAIL until then).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub startup_timeout: Duration,

    /// Address of the HTTP side port: /healthz, /readyz, /metrics.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:9153")]
    pub metrics_listen: SocketAddr,

    /// Address to answer on, over UDP and TCP; repeatable. Default: `0.0.0.0:53` and
    /// `[::]:53`, the IPv6 one skipped with a warning on a node without IPv6.
    #[arg(long = "listen", value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,

    /// The cluster domain.
    #[arg(long, value_name = "NAME", default_value = "cluster.local")]
    pub zone: String,

    /// TTL of cluster records, in seconds (the SOA minimum too).
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=3600))]
    pub ttl: u32,

    /// Pod records `<a-b-c-d>.<namespace>.pod.<zone>`: `insecure` answers the address any
    /// such name spells, in an existing namespace (as the default Kubernetes Corefile);
    /// `verified` only an address a pod in that namespace has (watches Pods).
    #[arg(long, value_enum, default_value_t = PodsMode::Insecure)]
    pub pods: PodsMode,

    /// Close a TCP connection that sends no complete query for this long (e.g. `10s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub tcp_idle_timeout: Duration,

    /// How often the manifests directory is re-checked, besides file-system events.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub manifests_poll: Duration,

    /// Log filter (tracing's EnvFilter syntax; `RUST_LOG` overrides it).
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub log_level: String,
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((t, "s"), |i| t.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn defaults_match_the_kubernetes_corefile() {
        let c = Config::try_parse_from(["clusterdns"]).unwrap();
        assert_eq!(c.ttl, 30);
        assert_eq!(c.zone, "cluster.local");
        assert_eq!(c.pods, PodsMode::Insecure);
        assert!(c.listen.is_empty(), "defaults are applied at bind time");
        assert!(Config::try_parse_from(["clusterdns", "--ttl", "3601"]).is_err());
    }
}
