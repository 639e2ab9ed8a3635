//! What each subsystem is given of the configuration: the zone's facts, the cluster's options,
//! the API source's settings, the forwarder's settings and the answer features. Each
//! subsystem takes its own small struct, never the whole `Config`.

use anyhow::Context;

use std::net::{Ipv4Addr, SocketAddr};

use super::{Config, Mode};
use crate::cluster::ClusterOptions;
use crate::forward::{
    CacheSettings, Endpoint, ForwardSettings, PoolSettings, StreamSettings, StubRoute, TlsClient,
    resolv_conf,
};
use crate::hosts::HostsOptions;
use crate::metrics::Metrics;
use crate::node_setup::{SetupError, SetupSpec};
use crate::server::AnswerOptions;
use crate::source::kube::KubeSettings;
use crate::zone::{PodsMode, ZoneConfig};

impl Config {
    /// Checks what no single flag's parser can: combinations of flags.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.autopath && self.pods != PodsMode::Verified {
            anyhow::bail!(
                "--autopath needs --pods verified: the pod watch is what maps a client's address \
                 to its namespace"
            );
        }
        match self.mode {
            Mode::NodeLocal => {
                if self.cluster_dns.is_empty() {
                    anyhow::bail!(
                        "--mode node-local needs --cluster-dns ADDR[:PORT]: the central cluster \
                         DNS (the kube-dns-upstream Service) that answers the cluster zone"
                    );
                }
                if self.no_forward {
                    anyhow::bail!(
                        "--mode node-local forwards the cluster zone to --cluster-dns: \
                         --no-forward cannot be used with it"
                    );
                }
                for (flag, set) in [
                    ("--manifests", self.manifests.is_some()),
                    ("--autopath", self.autopath),
                    ("--transfer-to", !self.transfer_to.is_empty()),
                ] {
                    if set {
                        anyhow::bail!(
                            "{flag} needs the cluster zone, which --mode node-local does not \
                             hold (it asks --cluster-dns)"
                        );
                    }
                }
            }
            Mode::Cluster => {
                if !self.cluster_dns.is_empty() {
                    anyhow::bail!("--cluster-dns is for --mode node-local");
                }
            }
        }
        Ok(())
    }

    /// The side port's address: `--metrics-listen`, or the mode's default (`0.0.0.0:9153`,
    /// node-local `0.0.0.0:9253`).
    pub fn side_port(&self) -> SocketAddr {
        self.metrics_listen.unwrap_or_else(|| {
            let port = match self.mode {
                Mode::Cluster => 9153,
                Mode::NodeLocal => 9253,
            };
            (Ipv4Addr::UNSPECIFIED, port).into()
        })
    }

    /// The DNS listen addresses: `--listen`, or the mode's default (empty: `0.0.0.0:53` and
    /// `[::]:53`; node-local `169.254.20.10:53`).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        match self.mode {
            Mode::NodeLocal if self.listen.is_empty() => {
                vec![(Ipv4Addr::new(169, 254, 20, 10), 53).into()]
            }
            _ => self.listen.clone(),
        }
    }

    /// What `--setup-interface` sets up, if given: the interface, the listen addresses that
    /// are not unspecified, the firewall program, whether to tear down at exit.
    pub fn setup_spec(&self) -> Result<Option<SetupSpec>, SetupError> {
        self.setup_interface
            .as_deref()
            .map(|name| {
                SetupSpec::new(
                    name,
                    &self.listen_addrs(),
                    self.node_firewall,
                    !self.skip_teardown,
                )
            })
            .transpose()
    }

    /// A metrics registry labelled for this server: `dns://` and the first listen address
    /// (`dns://:53` by default), and the cluster zone.
    pub fn metrics(&self) -> Metrics {
        let server = match self.listen_addrs().first() {
            Some(a) => format!("dns://{a}"),
            None => "dns://:53".to_owned(),
        };
        let zone = format!("{}.", self.zone.trim_end_matches('.'));
        Metrics::for_server(&[&server], &[&zone])
    }

    /// The cluster zone's facts: origin, TTL, pod records, reverse CIDRs, external zones.
    pub fn zone_config(&self) -> anyhow::Result<ZoneConfig> {
        ZoneConfig::new(&self.zone, self.ttl, self.pods)
            .map_err(anyhow::Error::msg)
            .context("--zone")?
            .with_reverse_cidrs(self.reverse_cidrs.clone())
            .with_external_zones(&self.external_zones)
            .and_then(|z| z.with_clusterset_zone(self.multicluster_zone.as_deref()))
            .map_err(anyhow::Error::msg)
    }

    /// Which objects and names the cluster publishes.
    pub fn cluster_options(&self) -> ClusterOptions {
        ClusterOptions {
            namespaces: self.namespaces.iter().map(|n| n.as_str().into()).collect(),
            endpoint_pod_names: self.endpoint_pod_names,
            external_kinds: Some(self.external_resources.0.clone()),
            hosts: self
                .hosts_configmap
                .clone()
                .map(|key| (key, self.hosts_options())),
        }
    }

    /// How host entries (`--hosts`, `--hosts-configmap`) are answered.
    pub fn hosts_options(&self) -> HostsOptions {
        HostsOptions {
            ttl: self.hosts_ttl,
            reverse: !self.hosts_no_reverse,
        }
    }

    /// The TCP listeners' bounds.
    pub fn tcp_limits(&self) -> crate::server::TcpLimits {
        crate::server::TcpLimits {
            idle_timeout: self.tcp_idle_timeout,
            max_connections: self.max_tcp_connections as usize,
        }
    }

    /// The answer features turned on.
    pub fn answer_options(&self) -> AnswerOptions {
        AnswerOptions {
            shuffle: self.shuffle,
            no_aaaa_outside_zone: self.no_aaaa_outside_zone,
            autopath: self.autopath,
            transfer_to: self.transfer_to.clone(),
        }
    }

    /// The forwarding settings; `None` with `--no-forward`, or when no upstream is configured
    /// and resolv.conf names none and there is no stub domain.
    pub fn forward_settings(&self) -> anyhow::Result<Option<ForwardSettings>> {
        if self.no_forward {
            return Ok(None);
        }
        let upstreams = if self.upstreams.is_empty() {
            resolv_conf::read_nameservers(&self.resolv_conf)
                .into_iter()
                .map(Endpoint::udp)
                .collect()
        } else {
            self.upstreams.clone()
        };
        let cache = CacheSettings {
            size: self.cache_size,
            max_ttl: self.cache_max_ttl,
            max_negative_ttl: self.cache_max_negative_ttl,
            min_ttl: self.cache_min_ttl,
            serve_stale: self.serve_stale,
        };
        let mut stub_domains = self.cluster_routes(&cache)?;
        for s in &self.stub_domains {
            let name = hickory_proto::rr::Name::from_ascii(format!("{}.", s.domain))
                .with_context(|| format!("--stub-domain {}", s.domain))?;
            stub_domains.push(StubRoute::new(name, s.upstreams.clone()));
        }
        if upstreams.is_empty() && stub_domains.is_empty() {
            return Ok(None);
        }
        let every = upstreams
            .iter()
            .chain(stub_domains.iter().flat_map(|s| s.upstreams.iter()));
        let tls = every
            .clone()
            .any(|e| matches!(e.transport, crate::forward::Transport::Tls { .. }))
            .then(|| TlsClient::load(self.upstream_tls_ca.as_deref()))
            .transpose()?;
        let shown: Vec<String> = upstreams.iter().map(ToString::to_string).collect();
        tracing::info!(upstreams = ?shown, stub_domains = stub_domains.len(), "forwarding");
        Ok(Some(ForwardSettings {
            upstreams,
            stub_domains,
            pool: PoolSettings {
                timeout: self.upstream_timeout,
                max_fails: self.max_fails,
                health_interval: self.health_check_interval,
                policy: self.policy,
                streams: StreamSettings {
                    idle_timeout: self.upstream_idle_timeout,
                    max_connections: self.max_upstream_connections as usize,
                    tls,
                },
            },
            max_concurrent: self.max_concurrent as usize,
            cache,
            prefetch: self.prefetch,
        }))
    }

    /// Node-local mode's routes to the central tier: the cluster zone and the reverse zones
    /// to `--cluster-dns` over TCP, cached at most `--cluster-cache-ttl` (negative
    /// `--cluster-cache-negative-ttl`) and served stale through an outage. None in cluster
    /// mode.
    fn cluster_routes(&self, cache: &CacheSettings) -> anyhow::Result<Vec<StubRoute>> {
        if self.mode != Mode::NodeLocal {
            return Ok(Vec::new());
        }
        let secs = |d: std::time::Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        let central = CacheSettings {
            max_ttl: secs(self.cluster_cache_ttl),
            max_negative_ttl: secs(self.cluster_cache_negative_ttl),
            // The caps win over the floor: `--cluster-cache-ttl 1s` keeps answers 1 s.
            min_ttl: cache
                .min_ttl
                .min(secs(self.cluster_cache_ttl))
                .min(secs(self.cluster_cache_negative_ttl)),
            serve_stale: self.cluster_serve_stale,
            ..*cache
        };
        let upstreams: Vec<Endpoint> = self
            .cluster_dns
            .iter()
            .cloned()
            .map(Endpoint::force_stream)
            .collect();
        let zone = format!("{}.", self.zone.trim_end_matches('.'));
        [zone.as_str(), "in-addr.arpa.", "ip6.arpa."]
            .into_iter()
            .map(|d| {
                let name = hickory_proto::rr::Name::from_ascii(d)
                    .with_context(|| format!("--zone {d}"))?;
                Ok(StubRoute {
                    domain: name,
                    upstreams: upstreams.clone(),
                    cache: Some(central),
                })
            })
            .collect()
    }
}

/// The API source's settings: what it connects with and what it watches.
impl From<&Config> for KubeSettings {
    fn from(config: &Config) -> Self {
        KubeSettings {
            watch_timeout: config.watch_timeout,
            kubeconfig: config.kubeconfig.clone(),
            watch_pods: config.pods == PodsMode::Verified,
            external_kinds: if config.external_zones.is_empty() {
                Vec::new()
            } else {
                config.external_resources.0.clone()
            },
            watch_service_imports: config.multicluster_zone.is_some(),
            labels: config.labels.clone(),
            hosts_configmap: config.hosts_configmap.clone(),
        }
    }
}
