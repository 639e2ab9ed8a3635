//! What each subsystem is given of the configuration: the zone's facts, the cluster's options,
//! the API source's settings, the forwarder's settings and the answer features. Each
//! subsystem takes its own small struct, never the whole `Config`.

use anyhow::Context;

use super::Config;
use crate::cluster::ClusterOptions;
use crate::forward::{CacheSettings, ForwardSettings, PoolSettings, resolv_conf};
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
        Ok(())
    }

    /// What `--setup-interface` sets up, if given: the interface, the listen addresses that
    /// are not unspecified, the firewall program, whether to tear down at exit.
    pub fn setup_spec(&self) -> Result<Option<SetupSpec>, SetupError> {
        self.setup_interface
            .as_deref()
            .map(|name| SetupSpec::new(name, &self.listen, self.node_firewall, !self.skip_teardown))
            .transpose()
    }

    /// A metrics registry labelled for this server: `dns://` and the first listen address
    /// (`dns://:53` by default), and the cluster zone.
    pub fn metrics(&self) -> Metrics {
        let server = match self.listen.first() {
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
            .map_err(anyhow::Error::msg)
    }

    /// Which objects and names the cluster publishes.
    pub fn cluster_options(&self) -> ClusterOptions {
        ClusterOptions {
            namespaces: self.namespaces.iter().map(|n| n.as_str().into()).collect(),
            endpoint_pod_names: self.endpoint_pod_names,
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
        } else {
            self.upstreams.clone()
        };
        let mut stub_domains = Vec::new();
        for s in &self.stub_domains {
            let name = hickory_proto::rr::Name::from_ascii(format!("{}.", s.domain))
                .with_context(|| format!("--stub-domain {}", s.domain))?;
            stub_domains.push((name, s.upstreams.clone()));
        }
        if upstreams.is_empty() && stub_domains.is_empty() {
            return Ok(None);
        }
        tracing::info!(?upstreams, stub_domains = stub_domains.len(), "forwarding");
        Ok(Some(ForwardSettings {
            upstreams,
            stub_domains,
            pool: PoolSettings {
                timeout: self.upstream_timeout,
                max_fails: self.max_fails,
                health_interval: self.health_check_interval,
                policy: self.policy,
            },
            max_concurrent: self.max_concurrent as usize,
            cache: CacheSettings {
                size: self.cache_size,
                max_ttl: self.cache_max_ttl,
                max_negative_ttl: self.cache_max_negative_ttl,
                min_ttl: self.cache_min_ttl,
                serve_stale: self.serve_stale,
            },
            prefetch: self.prefetch,
        }))
    }
}

/// The API source's settings: what it connects with and what it watches.
impl From<&Config> for KubeSettings {
    fn from(config: &Config) -> Self {
        KubeSettings {
            kubeconfig: config.kubeconfig.clone(),
            watch_pods: config.pods == PodsMode::Verified,
            watch_ingresses: !config.external_zones.is_empty(),
            labels: config.labels.clone(),
        }
    }
}
