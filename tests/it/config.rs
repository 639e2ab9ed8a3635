//! The configuration file: keys and precedence, errors, `--print-config`, the README's
//! reference table, and live reload over real sockets (upstreams, cache, TTL, listen
//! addresses, rejected files), plus the metric names the deploy/monitoring/ dashboard and alerts use.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clusterdns::app::{Running, start};
use clusterdns::config::{self, Config, LoadError};
use common::upstream::FakeUpstream;
use common::{example_dir, query, udp, udp_raw};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const WEB: &str = "web.shop.svc.cluster.local.";

fn load(args: &[&str]) -> Result<Config, String> {
    let mut all = vec!["clusterdns"];
    all.extend_from_slice(args);
    config::load(all).map_err(|e| match e {
        LoadError::Cli(e) => e.to_string(),
        LoadError::File(m) => m,
    })
}

fn write(path: &Path, text: &str) {
    // Written beside and renamed, as a ConfigMap update swaps its files in one step.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A series that must be there: a missing one fails the test rather than reading as 0.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{metrics}"))
}

async fn wait_metric(running: &Running, series: &str, at_least: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = value(&running.metrics.encode(), series);
        if v >= at_least {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} stayed at {v}, expected {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn file_keys_apply_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        "ttl: 10\nupstream: [10.0.0.2, '10.0.0.3:5353']\nnamespaces: [a, b]\nprefetch: true\n\
         max-tcp-connections: 50\npolicy: sequential\nupstream-timeout: 500ms\nzone: example.org\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let c = load(&["--config", f, "--ttl", "20", "--upstream", "10.0.0.9"]).unwrap();
    assert_eq!(c.ttl, 20, "the flag wins");
    assert_eq!(
        c.upstreams,
        vec![clusterdns::forward::Endpoint::udp(
            "10.0.0.9:53".parse().unwrap()
        )],
        "a repeated flag replaces the file's list, it does not add to it"
    );
    assert_eq!(c.namespaces, vec!["a", "b"]);
    assert!(c.prefetch);
    assert_eq!(c.max_tcp_connections, 50);
    assert_eq!(c.policy, config::Policy::Sequential);
    assert_eq!(c.upstream_timeout, Duration::from_millis(500));
    assert_eq!(c.zone, "example.org");
    // Without the file, the defaults.
    let d = load(&[]).unwrap();
    assert_eq!((d.ttl, d.max_tcp_connections), (30, 1000));
}

#[test]
fn print_config_output_loads_back_to_the_same_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        "ttl: 7\nstub-domain: ['corp.example=10.0.0.9,10.0.0.10:5353']\nreverse-cidr: [10.96.0.0/12]\n\
         query-log: true\nquery-log-rate: 0.5\nlisten: ['127.0.0.1:5300']\nserve-stale: 1h\n",
    )
    .unwrap();
    let first = load(&["--config", file.to_str().unwrap(), "--cache-size", "77"]).unwrap();
    let printed = first.loaded.to_yaml();
    assert!(printed.contains("cache-size: 77"), "{printed}");
    assert!(printed.contains("ttl: 7"), "{printed}");
    let again_file = dir.path().join("printed.yaml");
    std::fs::write(&again_file, &printed).unwrap();
    let again = load(&["--config", again_file.to_str().unwrap()]).unwrap();
    assert_eq!(again.loaded.effective, first.loaded.effective, "{printed}");
    assert_eq!(again.query_log_rate, 0.5);
    assert_eq!(again.stub_domains, first.stub_domains);
}

#[test]
fn bad_files_name_the_file_the_key_the_value_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    let f = file.to_str().unwrap().to_owned();
    let cases: [(&str, &[&str]); 9] = [
        ("ttl: abc\n", &["\"ttl\"", "abc", "invalid digit"]),
        ("ttl: 4000\n", &["\"ttl\"", "4000", "0..=3600"]),
        (
            "max_fails: 3\n",
            &["unknown key \"max_fails\"", "max-fails"],
        ),
        ("colour: blue\n", &["unknown key \"colour\""]),
        (
            "upstream: [10.0.0.1, nope]\n",
            &["\"upstream\"", "nope", "not an address"],
        ),
        (
            "policy: fastest\n",
            &["\"policy\"", "fastest", "random, round_robin, sequential"],
        ),
        ("prefetch: yes please\n", &["\"prefetch\"", "true or false"]),
        ("ttl: [1, 2]\n", &["\"ttl\"", "not a list"]),
        ("- just\n- a list\n", &["mapping"]),
    ];
    for (text, wanted) in cases {
        std::fs::write(&file, text).unwrap();
        let err = load(&["--config", &f]).expect_err(text);
        assert!(err.contains(&f), "{text:?}: names the file: {err}");
        for w in wanted {
            assert!(err.contains(w), "{text:?}: {w:?} in {err}");
        }
    }
    // A conflict between the file and the command line.
    std::fs::write(&file, "no-forward: true\n").unwrap();
    let err = load(&["--config", &f, "--upstream", "10.0.0.1"]).unwrap_err();
    assert!(err.contains(&f) && err.contains("--no-forward"), "{err}");
    // The file itself missing.
    let err = load(&["--config", "/nonexistent/clusterdns.yaml"]).unwrap_err();
    assert!(err.contains("/nonexistent/clusterdns.yaml"), "{err}");
}

#[test]
fn readme_reference_table_is_the_one_the_code_prints() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = "<!-- config-reference:start -->\n";
    let end = "<!-- config-reference:end -->";
    let from = readme
        .find(start)
        .expect("README has the reference markers")
        + start.len();
    let to = readme[from..].find(end).expect("end marker") + from;
    let table = config::reference();
    assert_eq!(
        readme[from..to].trim(),
        table.trim(),
        "README's table is stale: regenerate it with `clusterdns --print-config-reference`"
    );
    // Every key of the effective configuration has a row.
    for (key, _) in load(&[]).unwrap().loaded.effective {
        assert!(table.contains(&format!("| `{key}` |")), "{key} in\n{table}");
    }
}

/// A server over the example cluster configured by `file`, answering on loopback.
async fn serve(file: &Path, extra: &[&str]) -> Running {
    let examples = example_dir();
    let mut args = vec![
        "clusterdns",
        "--config",
        file.to_str().unwrap(),
        "--manifests",
        examples.to_str().unwrap(),
        "--metrics-listen",
        "127.0.0.1:0",
        "--lameduck",
        "0s",
    ];
    args.extend_from_slice(extra);
    let config = config::load(args).unwrap_or_else(|e| panic!("{e}"));
    start(&config).await.unwrap()
}

async fn a_record(addr: SocketAddr, name: &str) -> (ResponseCode, Vec<String>, Vec<u32>) {
    let (m, _) = udp(addr, &query(name, RecordType::A, Some(1232))).await;
    let ips = m.answers.iter().map(|r| r.data.to_string()).collect();
    let ttls = m.answers.iter().map(|r| r.ttl).collect();
    (m.metadata.response_code, ips, ttls)
}

#[tokio::test]
async fn reload_moves_forwarding_to_the_new_upstream_and_keeps_the_cache() {
    let a = FakeUpstream::start().await;
    let b = FakeUpstream::start().await;
    for up in [&a, &b] {
        up.add("www.example.com. 300 IN A 192.0.2.10");
        up.add("new.example.com. 300 IN A 192.0.2.30");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    let listen = "listen: ['127.0.0.1:0']\n";
    write(&file, &format!("{listen}upstream: ['{}']\n", a.addr()));
    let running = serve(&file, &[]).await;
    let addr = running.udp[0];

    let (rcode, ips, _) = a_record(addr, "www.example.com.").await;
    assert_eq!(
        (rcode, ips),
        (ResponseCode::NoError, vec!["192.0.2.10".into()])
    );
    assert_eq!(a.count("www.example.com.", RecordType::A), 1);

    write(&file, &format!("{listen}upstream: ['{}']\n", b.addr()));
    wait_metric(&running, "clusterdns_reload_total", 1.0).await;

    let (rcode, ips, _) = a_record(addr, "new.example.com.").await;
    assert_eq!(
        (rcode, ips),
        (ResponseCode::NoError, vec!["192.0.2.30".into()])
    );
    assert_eq!(
        b.count("new.example.com.", RecordType::A),
        1,
        "the new upstream"
    );
    assert_eq!(
        a.count("new.example.com.", RecordType::A),
        0,
        "not the old one"
    );
    // The entry cached before the reload still answers, from the cache.
    let (rcode, ips, _) = a_record(addr, "www.example.com.").await;
    assert_eq!(
        (rcode, ips),
        (ResponseCode::NoError, vec!["192.0.2.10".into()])
    );
    assert_eq!(a.count("www.example.com.", RecordType::A), 1);
    assert_eq!(b.count("www.example.com.", RecordType::A), 0);
    let m = running.metrics.encode();
    assert_eq!(value(&m, "clusterdns_reload_failed_total"), 0.0, "{m}");
    running.shutdown().await;
}

#[tokio::test]
async fn a_reload_adding_an_upstream_that_loops_is_refused() {
    let honest = FakeUpstream::start().await;
    honest.add("www.example.com. 300 IN A 192.0.2.10");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    let listen = "listen: ['127.0.0.1:0']\n";
    write(&file, &format!("{listen}upstream: ['{}']\n", honest.addr()));
    let running = serve(&file, &[]).await;
    let addr = running.udp[0];
    // An upstream that relays everything back to clusterdns.
    let relay = FakeUpstream::start().await;
    relay.behave("", common::upstream::Behaviour::Relay(addr));
    write(
        &file,
        &format!(
            "{listen}upstream: ['{}', '{}']\n",
            honest.addr(),
            relay.addr()
        ),
    );
    wait_metric(&running, "clusterdns_reload_failed_total", 1.0).await;
    let m = running.metrics.encode();
    assert_eq!(value(&m, "clusterdns_reload_total"), 0.0, "{m}");
    // The running configuration stays: every query goes to the honest upstream.
    for _ in 0..4 {
        let (rcode, ips, _) = a_record(addr, "www.example.com.").await;
        assert_eq!(
            (rcode, ips),
            (ResponseCode::NoError, vec!["192.0.2.10".into()])
        );
    }
    let relayed: Vec<RecordType> = relay
        .received()
        .iter()
        .map(|r| r.message.queries[0].query_type())
        .collect();
    assert_eq!(relayed, vec![RecordType::HINFO], "only the loop probe");
    running.shutdown().await;
}

#[tokio::test]
async fn a_bad_file_keeps_the_running_configuration_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    let good = "listen: ['127.0.0.1:0']\nno-forward: true\nttl: 30\n";
    write(&file, good);
    let running = serve(&file, &[]).await;
    let addr = running.udp[0];
    assert_eq!(a_record(addr, WEB).await.2, vec![30]);

    write(
        &file,
        "listen: ['127.0.0.1:0']\nno-forward: true\nttl: soon\n",
    );
    wait_metric(&running, "clusterdns_reload_failed_total", 1.0).await;
    let (rcode, ips, ttls) = a_record(addr, WEB).await;
    assert_eq!(rcode, ResponseCode::NoError);
    assert!(!ips.is_empty());
    assert_eq!(ttls, vec![30], "the old TTL stays");

    // A key that cannot change live is reported, and the rest applies.
    write(
        &file,
        "listen: ['127.0.0.1:0']\nno-forward: true\nttl: 5\nzone: example.org\n",
    );
    wait_metric(&running, "clusterdns_reload_restart_required_total", 1.0).await;
    wait_metric(&running, "clusterdns_reload_total", 1.0).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (rcode, _, ttls) = a_record(addr, WEB).await;
        assert_eq!(rcode, ResponseCode::NoError, "still the cluster.local zone");
        if ttls == vec![5] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "TTL never became 5: {ttls:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = running.metrics.encode();
    assert_eq!(value(&m, "clusterdns_reload_failed_total"), 1.0, "{m}");
    running.shutdown().await;
}

#[tokio::test]
async fn a_changed_listen_address_is_rebound() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    write(&file, "listen: ['127.0.0.1:0']\nno-forward: true\n");
    let running = serve(&file, &[]).await;
    let old = running.udp[0];
    assert_eq!(a_record(old, WEB).await.0, ResponseCode::NoError);

    write(&file, "listen: ['127.0.0.2:0']\nno-forward: true\n");
    wait_metric(&running, "clusterdns_reload_total", 1.0).await;
    let (udp_now, tcp_now) = running.listen_addrs().await;
    assert_eq!(udp_now.len(), 1, "{udp_now:?}");
    let new = udp_now[0];
    assert_eq!(new.ip().to_string(), "127.0.0.2");
    assert_eq!(tcp_now, vec![new], "TCP rebound with UDP");
    assert_eq!(a_record(new, WEB).await.0, ResponseCode::NoError);
    let tcp_reply = common::tcp(new, &query(WEB, RecordType::A, None)).await;
    assert_eq!(tcp_reply.metadata.response_code, ResponseCode::NoError);

    // The old address stops answering once its in-flight queries are done.
    let bytes = query(WEB, RecordType::A, None).to_vec().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while udp_raw(old, &bytes, Duration::from_millis(300))
        .await
        .is_some()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{old} still answers"
        );
    }
    assert!(
        tokio::net::TcpStream::connect(old).await.is_err(),
        "old TCP closed"
    );
    running.shutdown().await;
}

/// The old label sets are gone: the per-query families carry CoreDNS's.
fn scrape_has_no_stale_names(scrape: &str) -> bool {
    !scrape.contains("clusterdns_dns_requests_total{proto=")
}

/// Every metric the Grafana dashboard and the alert rules use is one a running server exports.
#[tokio::test]
async fn dashboard_and_alerts_use_exported_metrics() {
    let up = FakeUpstream::start().await;
    up.add("www.example.com. 300 IN A 192.0.2.10");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    write(
        &file,
        &format!("listen: ['127.0.0.1:0']\nupstream: ['{}']\n", up.addr()),
    );
    let running = serve(&file, &[]).await;
    let addr = running.udp[0];
    a_record(addr, WEB).await;
    a_record(addr, "www.example.com.").await;
    a_record(addr, "nope.shop.svc.cluster.local.").await;
    assert!(scrape_has_no_stale_names(&running.metrics.encode()));
    let scrape = running.metrics.encode();
    running.shutdown().await;

    // The per-query families with CoreDNS's label sets.
    for series in [
        "clusterdns_dns_requests_total{server=\"dns://127.0.0.1:0\",zone=\"cluster.local.\",view=\"\",proto=\"udp\",family=\"1\",type=\"A\"} 2",
        "clusterdns_dns_requests_total{server=\"dns://127.0.0.1:0\",zone=\".\",view=\"\",proto=\"udp\",family=\"1\",type=\"A\"} 1",
        "clusterdns_dns_responses_total{server=\"dns://127.0.0.1:0\",zone=\"cluster.local.\",view=\"\",rcode=\"NXDOMAIN\",plugin=\"\"} 1",
        "clusterdns_dns_request_duration_seconds_count{server=\"dns://127.0.0.1:0\",zone=\".\",view=\"\",type=\"A\"} 1",
        "clusterdns_dns_request_size_bytes_count{server=\"dns://127.0.0.1:0\",zone=\"cluster.local.\",view=\"\",proto=\"udp\"} 2",
        "clusterdns_dns_response_size_bytes_bucket{le=\"+Inf\",server=\"dns://127.0.0.1:0\",zone=\".\",view=\"\",proto=\"udp\"} 1",
        "clusterdns_dns_request_duration_seconds_bucket{le=\"+Inf\",server=\"dns://127.0.0.1:0\",zone=\"cluster.local.\",view=\"\",type=\"A\"} 2",
        "clusterdns_build_info{version=\"",
    ] {
        assert!(scrape.contains(series), "{series} in\n{scrape}");
    }

    // A family with no series yet (no watch restart, no drop) is not in this scrape: then
    // its name must be one the registry registers.
    // Each subsystem registers its own: src/metrics.rs and src/*/metrics.rs.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let source: String = [
        "metrics.rs",
        "server/metrics.rs",
        "forward/metrics.rs",
        "source/metrics.rs",
        "cluster/metrics.rs",
        "clients/metrics.rs",
        "node_setup/metrics.rs",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(src.join(f)).unwrap())
    .collect();
    let exported = |name: &str| {
        let base = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        let short = base.strip_prefix("clusterdns_").unwrap_or(base);
        scrape.contains(&format!("# HELP {name} "))
            || scrape.contains(&format!("# HELP {base} "))
            || source.contains(&format!("\"{short}\","))
    };
    let names = |text: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("clusterdns_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            out.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
        out
    };
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/monitoring");

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy.join("grafana-dashboard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    assert!(dashboard["title"].is_string() && dashboard["schemaVersion"].is_number());
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6, "{} panels", panels.len());
    let mut used = 0;
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("a target has a PromQL expr");
            for n in names(expr) {
                assert!(
                    exported(&n),
                    "dashboard panel {:?} uses {n}, not exported",
                    p["title"]
                );
                used += 1;
            }
        }
    }
    assert!(used >= 10, "{used} metric references");

    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(deploy.join("prometheus-rules.yaml")).unwrap(),
    )
    .expect("the rules are YAML");
    assert_eq!(rules["kind"].as_str(), Some("PrometheusRule"));
    let mut alerts = Vec::new();
    for group in rules["spec"]["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let alert = rule["alert"].as_str().expect("alert name").to_owned();
            let expr = rule["expr"].as_str().expect("expr");
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{alert} has a summary"
            );
            assert!(
                rule["labels"]["severity"].is_string(),
                "{alert} has a severity"
            );
            let used = names(expr);
            assert!(!used.is_empty(), "{alert} uses clusterdns metrics");
            for n in used {
                assert!(exported(&n), "alert {alert} uses {n}, not exported");
            }
            alerts.push(alert);
        }
    }
    for wanted in [
        "ClusterDNSServfailRate",
        "ClusterDNSUpstreamsDown",
        "ClusterDNSNotSynced",
        "ClusterDNSProgrammingLatency",
    ] {
        assert!(alerts.iter().any(|a| a == wanted), "{wanted} in {alerts:?}");
    }
}

async fn http_status(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.lines().next().unwrap_or_default().to_owned()
}

/// The README's configuration equivalent to the default Kubernetes Corefile behaves as that
/// Corefile does (the command line moves it to loopback and a test upstream).
#[tokio::test]
async fn the_corefile_equivalent_from_the_readme_behaves_like_the_corefile() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let block = readme
        .split("<!-- corefile-equivalent:start -->")
        .nth(1)
        .and_then(|r| r.split("<!-- corefile-equivalent:end -->").next())
        .expect("README has the Corefile equivalent");
    let yaml = block
        .trim()
        .trim_start_matches("```yaml")
        .trim_end_matches("```");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, yaml).unwrap();

    let up = FakeUpstream::start().await;
    up.add("www.example.com. 300 IN A 192.0.2.10");
    up.add("4.3.2.1.in-addr.arpa. 300 IN PTR host.example.com.");
    let upstream = up.addr().to_string();
    let running = serve(&file, &["--listen", "127.0.0.1:0", "--upstream", &upstream]).await;
    let addr = running.udp[0];

    // kubernetes cluster.local { ttl 30 }
    let (rcode, ips, ttls) = a_record(addr, WEB).await;
    assert_eq!(
        (rcode, ips, ttls),
        (ResponseCode::NoError, vec!["10.96.10.20".into()], vec![30])
    );
    // pods insecure
    let (_, ips, _) = a_record(addr, "10-244-1-7.shop.pod.cluster.local.").await;
    assert_eq!(ips, vec!["10.244.1.7".to_owned()]);
    // in-addr.arpa: a cluster IP's PTR here, other addresses fall through to forward.
    let (m, _) = udp(
        addr,
        &query("10.0.96.10.in-addr.arpa.", RecordType::PTR, None),
    )
    .await;
    assert_eq!(
        m.answers[0].data.to_string(),
        "kube-dns.kube-system.svc.cluster.local."
    );
    let (m, _) = udp(addr, &query("4.3.2.1.in-addr.arpa.", RecordType::PTR, None)).await;
    assert_eq!(m.answers[0].data.to_string(), "host.example.com.");
    // forward . + cache 30: the upstream's 300 s is capped at 30, and asked once.
    for _ in 0..2 {
        let (rcode, ips, ttls) = a_record(addr, "www.example.com.").await;
        assert_eq!(
            (rcode, ips),
            (ResponseCode::NoError, vec!["192.0.2.10".into()])
        );
        assert!(ttls[0] <= 30, "{ttls:?}");
    }
    assert_eq!(up.count("www.example.com.", RecordType::A), 1);
    // health, ready, prometheus
    assert!(
        http_status(running.metrics_addr, "/healthz")
            .await
            .contains("200")
    );
    assert!(
        http_status(running.metrics_addr, "/readyz")
            .await
            .contains("200")
    );
    assert!(
        http_status(running.metrics_addr, "/metrics")
            .await
            .contains("200")
    );
    // The file's settings are the ones in effect where no flag overrides them.
    let m = running.metrics.encode();
    assert!(m.contains("clusterdns_zone_synced 1"), "{m}");
    running.shutdown().await;
}
