//! Command-line configuration.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};
use serde_yaml_ng::Value;

use crate::source::selector::{LabelFilter, parse_label_selector};
use crate::zone::PodsMode;

/// clusterdns: the Kubernetes cluster DNS server.
///
/// Serves the cluster zone (<service>.<namespace>.svc.<zone>, as the Kubernetes DNS-Based
/// Service Discovery specification defines it) authoritatively over UDP and TCP.
#[derive(Parser, Debug, Clone)]
#[command(name = "clusterdns", version, about, long_about)]
pub struct Config {
    /// Read settings from this YAML file: each key is a flag's long name (`ttl: 30`,
    /// `upstream: [10.0.0.2]`); flags given on the command line win. Watched: a valid change
    /// is applied live, an invalid one is logged and the running configuration kept.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the effective configuration as YAML (loadable by `--config`) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Print the configuration reference (flag, key, default, meaning) as a Markdown table
    /// and exit.
    #[arg(long)]
    pub print_config_reference: bool,

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

    /// Most TCP connections open at once; beyond it new ones are closed at once.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tcp_connections: u32,

    /// After SIGTERM, keep answering this long while /readyz reports not ready, so the
    /// Service stops sending queries here before the listeners close (capped by
    /// `--shutdown-grace`).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub lameduck: Duration,

    /// After SIGTERM, exit within this long: the lameduck period, then the queries in flight
    /// are answered and the process exits 0.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// How often the manifests directory is re-checked, besides file-system events.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub manifests_poll: Duration,

    /// Serve the RFC 1035 zone files in this directory (`<origin>.zone`) authoritatively beside
    /// the cluster zone, reloaded when they change.
    #[arg(long, value_name = "DIR")]
    pub zones: Option<PathBuf>,

    /// Be authoritative for the reverse names of this CIDR (e.g. the service and pod CIDRs):
    /// an address there that no Service or Pod has answers NXDOMAIN instead of being
    /// forwarded. Repeatable.
    #[arg(long = "reverse-cidr", value_name = "CIDR")]
    pub reverse_cidrs: Vec<ipnet::IpNet>,

    /// Upstream resolver for every name outside the served zones (`ADDR` or `ADDR:PORT`,
    /// port 53 by default); repeatable. Default: the nameservers of `--resolv-conf`.
    #[arg(long = "upstream", value_name = "ADDR[:PORT]", value_parser = parse_upstream)]
    pub upstreams: Vec<SocketAddr>,

    /// Where the default upstreams come from when no `--upstream` is given (a pod with
    /// `dnsPolicy: Default` gets the node's).
    #[arg(long, value_name = "FILE", default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,

    /// Answer only the served zones; every other name is REFUSED (no upstreams at all).
    #[arg(long, conflicts_with_all = ["upstreams", "stub_domains"])]
    pub no_forward: bool,

    /// Send a domain to its own upstreams: `DOMAIN=ADDR[:PORT][,ADDR[:PORT]...]`; repeatable.
    #[arg(long = "stub-domain", value_name = "DOMAIN=ADDR,...", value_parser = parse_stub_domain)]
    pub stub_domains: Vec<StubDomain>,

    /// Order in which upstreams are tried.
    #[arg(long, value_enum, default_value_t = Policy::Random)]
    pub policy: Policy,

    /// How long to wait for one upstream's reply before trying the next.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub upstream_timeout: Duration,

    /// Consecutive failures after which an upstream is marked down (and probed in the
    /// background until it answers again).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_fails: u32,

    /// How often a down upstream is probed (`. IN NS`).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    pub health_check_interval: Duration,

    /// Most upstream queries outstanding at once; beyond it queries are REFUSED.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent: u32,

    /// Most entries in the cache of forwarded answers (least recently used evicted first);
    /// 0 turns the cache off.
    #[arg(long, value_name = "N", default_value_t = 10000)]
    pub cache_size: u64,

    /// Longest time a positive answer is cached, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub cache_max_ttl: u32,

    /// Longest time a negative answer (NXDOMAIN, NODATA) is cached, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub cache_max_negative_ttl: u32,

    /// Shortest time any answer is cached, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub cache_min_ttl: u32,

    /// Answer from an expired cache entry (with TTL 30) when every upstream fails, up to
    /// this long past its expiry (RFC 8767); 0 turns it off.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub serve_stale: Duration,

    /// Refresh a cache entry that is asked for often shortly before it expires.
    #[arg(long)]
    pub prefetch: bool,

    /// Log filter (tracing's EnvFilter syntax, e.g. `info` or `info,clusterdns::forward=debug`;
    /// `RUST_LOG` overrides it).
    #[arg(long, value_name = "FILTER", default_value = "info", value_parser = crate::logging::parse_level)]
    pub log_level: String,

    /// Serve only Services whose labels match this Kubernetes label selector
    /// (`app=web,tier!=cache,env in (prod,staging),!legacy`); others answer NXDOMAIN. The API
    /// server filters the Services list/watch; the manifests source skips the others.
    #[arg(long = "labels", value_name = "SELECTOR", value_parser = parse_label_selector)]
    pub labels: Option<LabelFilter>,

    /// Answer for this external zone (repeatable): the load balancer and external IPs of
    /// Services as `<svc>.<ns>.<zone>` (A/AAAA, SRV for named ports, CNAME for load balancer
    /// hostnames), and the hosts of Ingresses under it with their load balancer addresses
    /// (watches Ingresses). Authoritative, with SOA and NS `ns1.dns.<zone>` at the apex.
    #[arg(long = "external-zone", value_name = "ZONE")]
    pub external_zones: Vec<String>,

    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log a sample of answered queries at info (name, type, response code, duration, client).
    #[arg(long)]
    pub query_log: bool,

    /// Fraction of queries the query log writes (`0.01`: one in a hundred).
    #[arg(long, value_name = "FRACTION", default_value = "0.01", value_parser = parse_rate)]
    pub query_log_rate: f64,

    /// Answer address records (A/AAAA) in a random order, CNAMEs first, so clients that take
    /// the first address spread over all of them (CoreDNS `loadbalance round_robin`).
    #[arg(long)]
    pub shuffle: bool,

    /// Answer AAAA queries for names outside the served zones with NODATA instead of
    /// forwarding them (IPv4-only clusters: halves the upstream load). The cluster zone and
    /// zone files still answer AAAA.
    #[arg(long)]
    pub no_aaaa_outside_zone: bool,

    /// Server-side search path: a query `<name>.<ns>.svc.<zone>` from a pod of `<ns>` is
    /// answered with a CNAME to the first of `<name>.<ns>.svc.<zone>`, `<name>.svc.<zone>`,
    /// `<name>.<zone>`, `<name>.` that exists (CoreDNS `autopath @kubernetes`). Needs
    /// `--pods verified` (the pod watch that maps a client address to its namespace).
    #[arg(long)]
    pub autopath: bool,

    /// Allow zone transfers of the cluster zone (AXFR over TCP, IXFR) to clients in this
    /// network (`CIDR`, or one address); repeatable. Everyone else is REFUSED.
    #[arg(long = "transfer-to", value_name = "CIDR", value_parser = parse_network)]
    pub transfer_to: Vec<ipnet::IpNet>,

    /// The configuration as loaded: the command line given and the values in effect.
    #[arg(skip)]
    pub loaded: Loaded,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Parses a fraction in (0, 1].
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!("{text:?} is not a fraction in (0, 1] (e.g. 0.01)")),
    }
}

/// The order in which upstreams are tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    /// A random order per query.
    Random,
    /// Each query starts at the next upstream.
    #[value(name = "round_robin", alias = "round-robin")]
    RoundRobin,
    /// Always the first healthy one, in the order given.
    Sequential,
}

/// A domain sent to its own upstreams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubDomain {
    /// The domain, as given.
    pub domain: String,
    /// Its upstreams.
    pub upstreams: Vec<SocketAddr>,
}

/// Parses `ADDR`, `ADDR:PORT`, `[V6]:PORT` or a bare IPv6 address; port 53 by default.
pub fn parse_upstream(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Ok(sa);
    }
    t.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!("{text:?} is not an address (e.g. 10.0.0.2, 10.0.0.2:53, [fd00::2]:53)")
        })
}

/// Parses `DOMAIN=ADDR[:PORT][,ADDR[:PORT]...]`.
pub fn parse_stub_domain(text: &str) -> Result<StubDomain, String> {
    let (domain, addrs) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected DOMAIN=ADDR[:PORT][,ADDR...]"))?;
    let domain = domain.trim().trim_end_matches('.');
    if domain.is_empty() {
        return Err(format!("{text:?}: the domain is empty"));
    }
    hickory_proto::rr::Name::from_ascii(domain).map_err(|e| format!("{text:?}: domain: {e}"))?;
    let upstreams = addrs
        .split(',')
        .map(parse_upstream)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{text:?}: {e}"))?;
    Ok(StubDomain {
        domain: domain.to_owned(),
        upstreams,
    })
}

/// The nameservers of a resolv.conf text (`nameserver ADDR` lines), port 53.
pub fn resolv_conf_nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        // A scoped IPv6 address (`fe80::1%eth0`) keeps only the address.
        .filter_map(|a| a.split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Parses a CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address (a /32 or /128).
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let t = text.trim();
    t.parse::<ipnet::IpNet>()
        .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("{text:?} is not a network (e.g. 10.0.0.0/8, 10.0.0.5, fd00::/8)"))
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

/// Flags a configuration file cannot set.
const CLI_ONLY: [&str; 5] = [
    "config",
    "print-config",
    "print-config-reference",
    "help",
    "version",
];

/// How the configuration was loaded: what a reload repeats, and what `--print-config` prints.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// The command line, program name first.
    pub args: Vec<OsString>,
    /// Every file key with the value in effect, in flag order.
    pub effective: Vec<(String, Value)>,
}

impl Loaded {
    /// The value in effect for `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.effective
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The keys whose value differs between `self` and `other`.
    pub fn changed(&self, other: &Loaded) -> Vec<String> {
        self.effective
            .iter()
            .filter(|(k, v)| other.get(k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The effective configuration as YAML, loadable again by `--config`.
    pub fn to_yaml(&self) -> String {
        let map: serde_yaml_ng::Mapping = self
            .effective
            .iter()
            .map(|(k, v)| (Value::String(k.clone()), v.clone()))
            .collect();
        serde_yaml_ng::to_string(&map).unwrap_or_default()
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The command line (including `--help` and `--version`, which are not failures).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The configuration file: the message names the file, the key, the value and why.
    #[error("{0}")]
    File(String),
}

/// The configuration from a command line and the `--config` file it names: every flag has a
/// key of the same long name, and the command line wins over the file. Each key's value goes
/// through the flag's own parser, so the file accepts exactly what the flag does.
pub fn load<I, T>(args: I) -> Result<Config, LoadError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cmd = Config::command();
    let cli = cmd.clone().try_get_matches_from(&args)?;
    let mut argv = vec![args.first().cloned().unwrap_or_else(|| "clusterdns".into())];
    let file = cli.get_one::<PathBuf>("config").cloned();
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError::File(format!("{}: cannot read: {e}", path.display())))?;
        for (id, key_args) in file_args(path, &text, &cmd)? {
            if cli.value_source(&id) != Some(ValueSource::CommandLine) {
                argv.extend(key_args);
            }
        }
    }
    argv.extend(args.iter().skip(1).cloned());
    let parsed = cmd
        .clone()
        .try_get_matches_from(&argv)
        .and_then(|m| Config::from_arg_matches(&m).map(|c| (c, m)));
    let (mut config, matches) = match (parsed, &file) {
        (Ok(p), _) => p,
        (Err(e), None) => return Err(e.into()),
        (Err(e), Some(path)) => {
            return Err(LoadError::File(format!(
                "{} with the command line: {}",
                path.display(),
                clap_reason(&e)
            )));
        }
    };
    config.loaded = Loaded {
        args,
        effective: effective(&cmd, &matches),
    };
    Ok(config)
}

impl Config {
    /// The same command line loaded again: the file re-read, validated as at start.
    pub fn reload(&self) -> Result<Config, LoadError> {
        let args = if self.loaded.args.is_empty() {
            // Built without `load` (e.g. `Config::parse_from`): the file alone.
            let mut a: Vec<OsString> = vec!["clusterdns".into()];
            if let Some(p) = &self.config {
                a.extend(["--config".into(), p.clone().into_os_string()]);
            }
            a
        } else {
            self.loaded.args.clone()
        };
        load(args)
    }
}

/// clap's one-line reason, without its `error: ` prefix and usage block.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.render().to_string();
    text.lines()
        .next()
        .unwrap_or("invalid value")
        .trim_start_matches("error: ")
        .to_owned()
}

/// A YAML scalar as the text a flag would get.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn show(v: &Value) -> String {
    serde_yaml_ng::to_string(v)
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_default()
}

/// The file's keys as command-line arguments, each checked alone by its flag's parser:
/// `(arg id, arguments)` in file order.
fn file_args(
    path: &Path,
    text: &str,
    cmd: &clap::Command,
) -> Result<Vec<(String, Vec<OsString>)>, LoadError> {
    let file = path.display();
    let err = |m: String| LoadError::File(m);
    let doc: Value =
        serde_yaml_ng::from_str(text).map_err(|e| err(format!("{file}: not YAML: {e}")))?;
    let map = match doc {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        other => {
            return Err(err(format!(
                "{file}: expected a mapping of keys to values, found {}",
                show(&other)
            )));
        }
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let Value::String(key) = &k else {
            return Err(err(format!(
                "{file}: key {}: keys are flag names",
                show(&k)
            )));
        };
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && !CLI_ONLY.contains(&key.as_str()));
        let Some(arg) = arg else {
            let hint = cmd
                .get_arguments()
                .filter_map(|a| a.get_long())
                .find(|l| *l == key.replace('_', "-") || *l == key.trim_end_matches('s'))
                .filter(|l| !CLI_ONLY.contains(l))
                .map(|l| format!(" (did you mean {l:?}?)"))
                .unwrap_or_default();
            return Err(err(format!(
                "{file}: unknown key {key:?}{hint}; keys are the flags' long names \
                 (`clusterdns --print-config` lists them)"
            )));
        };
        let flag = format!("--{key}");
        let bad = |value: &Value, why: &str| {
            err(format!("{file}: key {key:?}, value {}: {why}", show(value)))
        };
        let values: Vec<OsString> = match (arg.get_action(), &v) {
            (_, Value::Null) => Vec::new(),
            (ArgAction::SetTrue, Value::Bool(true)) => vec![flag.clone().into()],
            (ArgAction::SetTrue, Value::Bool(false)) => Vec::new(),
            (ArgAction::SetTrue, _) => return Err(bad(&v, "expected true or false")),
            (ArgAction::Append, Value::Sequence(items)) => {
                let mut a = Vec::new();
                for item in items {
                    let s = scalar(item).ok_or_else(|| bad(item, "expected a single value"))?;
                    a.push(format!("{flag}={s}").into());
                }
                a
            }
            (_, Value::Sequence(_)) => {
                return Err(bad(&v, "expected one value, not a list"));
            }
            _ => {
                let s = scalar(&v).ok_or_else(|| bad(&v, "expected a single value"))?;
                vec![format!("{flag}={s}").into()]
            }
        };
        // Each value alone through the flag's parser, so the error names it.
        for one in values.iter() {
            if let Err(e) = cmd
                .clone()
                .try_get_matches_from([OsString::from("clusterdns"), one.clone()])
            {
                let shown = one
                    .to_string_lossy()
                    .split_once('=')
                    .map_or(v.clone(), |(_, s)| Value::String(s.to_owned()));
                let reason = clap_reason(&e);
                let mut reason = reason
                    .split_once("': ")
                    .filter(|_| reason.starts_with("invalid value"))
                    .map_or(reason.as_str(), |(_, why)| why)
                    .to_owned();
                let possible: Vec<String> = arg
                    .get_possible_values()
                    .iter()
                    .filter(|p| !p.is_hide_set())
                    .map(|p| p.get_name().to_owned())
                    .collect();
                if !possible.is_empty() && !matches!(arg.get_action(), ArgAction::SetTrue) {
                    reason = format!("expected one of {}", possible.join(", "));
                }
                return Err(bad(&shown, &reason));
            }
        }
        out.push((arg.get_id().to_string(), values));
    }
    Ok(out)
}

/// Every file key's value in effect, in flag order.
fn effective(cmd: &clap::Command, m: &clap::ArgMatches) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if CLI_ONLY.contains(&long) {
            continue;
        }
        let id = arg.get_id().as_str();
        let raw: Vec<String> = m
            .get_raw(id)
            .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = match arg.get_action() {
            ArgAction::SetTrue => Value::Bool(m.get_flag(id)),
            ArgAction::Append => Value::Sequence(raw.into_iter().map(Value::String).collect()),
            _ => match raw.into_iter().next() {
                None => Value::Null,
                Some(s) => match (s.parse::<u64>(), s.parse::<f64>()) {
                    (Ok(n), _) => Value::Number(n.into()),
                    (_, Ok(f)) if f.is_finite() && !s.contains(['e', 'E']) => {
                        Value::Number(f.into())
                    }
                    _ => Value::String(s),
                },
            },
        };
        out.push((long.to_owned(), value));
    }
    out
}

/// The configuration reference as a Markdown table: flag, file key, default, meaning.
pub fn reference() -> String {
    let cmd = Config::command();
    let mut out = String::from("| Flag | Key | Default | Meaning |\n|---|---|---|---|\n");
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let key = if CLI_ONLY.contains(&long) {
            "—".to_owned()
        } else {
            format!("`{long}`")
        };
        let flag = match (arg.get_action(), arg.get_value_names()) {
            (ArgAction::SetTrue, _) => format!("`--{long}`"),
            (_, Some(names)) => format!("`--{long} {}`", names.join(" ")),
            _ => format!("`--{long} VALUE`"),
        };
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        let default = match arg.get_action() {
            ArgAction::SetTrue => "`false`".to_owned(),
            ArgAction::Append => "`[]`".to_owned(),
            _ if defaults.is_empty() => "—".to_owned(),
            _ => format!("`{}`", defaults.join(",")),
        };
        let mut meaning = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|p| !p.is_hide_set())
            .map(|p| format!("`{}`", p.get_name()))
            .collect();
        if !possible.is_empty() && !matches!(arg.get_action(), ArgAction::SetTrue) {
            meaning.push_str(&format!(" One of {}.", possible.join(", ")));
        }
        out.push_str(&format!(
            "| {flag} | {key} | {default} | {} |\n",
            meaning.replace('|', "\\|")
        ));
    }
    out
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
        assert_eq!(c.upstream_timeout, Duration::from_secs(2));
        assert_eq!((c.max_fails, c.max_concurrent), (2, 1000));
        assert_eq!(
            (c.cache_size, c.cache_max_ttl, c.cache_max_negative_ttl),
            (10000, 3600, 1800)
        );
        assert_eq!(c.policy, Policy::Random);
    }

    #[test]
    fn upstreams_and_stub_domains() {
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(parse_upstream("10.0.0.2"), Ok(sa("10.0.0.2:53")));
        assert_eq!(parse_upstream("10.0.0.2:5353"), Ok(sa("10.0.0.2:5353")));
        assert_eq!(parse_upstream("fd00::2"), Ok(sa("[fd00::2]:53")));
        assert_eq!(parse_upstream("[fd00::2]:54"), Ok(sa("[fd00::2]:54")));
        assert!(parse_upstream("dns.example").is_err());
        assert_eq!(
            parse_stub_domain("corp.example=10.0.0.9,10.0.0.10:5353"),
            Ok(StubDomain {
                domain: "corp.example".into(),
                upstreams: vec![sa("10.0.0.9:53"), sa("10.0.0.10:5353")],
            })
        );
        assert!(parse_stub_domain("corp.example").is_err());
        assert!(parse_stub_domain("=10.0.0.1").is_err());
        assert!(parse_stub_domain("corp.example=nope").is_err());
        let text = "# comment\nsearch svc.cluster.local\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions ndots:5\nnameserver bogus\n";
        assert_eq!(
            resolv_conf_nameservers(text),
            vec![sa("10.0.0.2:53"), sa("[fe80::1]:53")]
        );
        let c = Config::try_parse_from(["clusterdns", "--policy", "round_robin"]).unwrap();
        assert_eq!(c.policy, Policy::RoundRobin);
        assert!(
            Config::try_parse_from(["clusterdns", "--no-forward", "--upstream", "10.0.0.1"])
                .is_err()
        );
    }
}
