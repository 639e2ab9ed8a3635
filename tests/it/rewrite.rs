//! `--rewrite`: questions rewritten before the lookup, answers spelled back in the client's
//! name, over real UDP and TCP, to the cluster zone and to a fake upstream; rules at
//! start-up and on reload.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clusterdns::app::{Running, start};
use clusterdns::config;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::common::upstream::FakeUpstream;
use crate::common::{TestServer, example_dir, query, strict, tcp, udp_raw, zone_text};

/// The example cluster's dual-stack ClusterIP Service.
const API: &str = "api.shop.svc.cluster.local";

/// Asks `name`/`qtype` over UDP: the reply, which a strict parser accepts.
async fn ask_strict(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let q = query(name, qtype, Some(1232));
    let bytes = udp_raw(addr, &q.to_vec().unwrap(), Duration::from_secs(2))
        .await
        .expect("a reply");
    strict::read(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    assert_eq!(
        m.queries[0].name(),
        q.queries[0].name(),
        "the question as asked"
    );
    m
}

/// Owner names and data of the answers.
fn answers(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect()
}

#[tokio::test]
async fn each_kind_answers_a_cluster_name_in_the_clients_name() {
    let rules = [
        format!("name exact db.example.com {API}"),
        "name suffix .corp.example .shop.svc.cluster.local".to_string(),
        "name prefix www.shop api.shop".to_string(),
        r"name regex ^svc-([a-z]+)\.([a-z]+)\.internal\.$ {1}.{2}.svc.cluster.local".to_string(),
    ];
    let mut args = Vec::new();
    for r in &rules {
        args.extend(["--rewrite", r.as_str()]);
    }
    let s = TestServer::example(&args).await;
    for asked in [
        "db.example.com.",
        "DB.Example.COM.",
        "api.corp.example.",
        "www.shop.svc.cluster.local.",
        "svc-api.shop.internal.",
    ] {
        let m = ask_strict(s.addr, asked, RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{asked}");
        assert_eq!(answers(&m), [format!("{asked} A 10.96.10.30")], "{asked}");
        let m = ask_strict(s.addr, asked, RecordType::AAAA).await;
        assert_eq!(
            answers(&m),
            [format!("{asked} AAAA fd00:10:96::30")],
            "{asked}"
        );
        // TCP, the same.
        let m = tcp(s.addr, &query(asked, RecordType::A, None)).await;
        assert_eq!(
            answers(&m),
            [format!("{asked} A 10.96.10.30")],
            "{asked} over TCP"
        );
    }
    // A rewrite to a name the zone does not have: its NXDOMAIN, the SOA of the zone.
    let m = ask_strict(s.addr, "nope.corp.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    // No rule matches: untouched (a regex anchored at both ends does not match a longer name).
    let m = ask_strict(s.addr, "web.shop.svc.cluster.local.", RecordType::A).await;
    assert!(
        answers(&m)[0].starts_with("web.shop.svc.cluster.local. A"),
        "{m:?}"
    );
    let m = ask_strict(s.addr, "x.svc-api.shop.internal.", RecordType::A).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::Refused,
        "not served, not forwarded"
    );
    let m = ask_strict(s.addr, "xdb.example.com.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_rewrite_to_a_forwarded_name_spells_owners_and_cname_targets_back() {
    let up = FakeUpstream::start().await;
    up.add("real.example.net. 300 IN A 192.0.2.7");
    up.add("alias.example.net. 300 IN CNAME real.example.net.");
    let upstream = up.addr().to_string();
    let s = TestServer::example(&[
        "--upstream",
        &upstream,
        "--rewrite",
        "name exact db.example.com real.example.net",
        "--rewrite",
        "name exact www.example.com alias.example.net",
    ])
    .await;
    let m = ask_strict(s.addr, "db.example.com.", RecordType::A).await;
    assert_eq!(answers(&m), ["db.example.com. A 192.0.2.7"]);
    assert_eq!(up.count("real.example.net.", RecordType::A), 1);
    assert_eq!(
        up.count("db.example.com.", RecordType::A),
        0,
        "never asked as is"
    );
    // The chain's own names stay; only the rewritten name is spelled back.
    let m = ask_strict(s.addr, "www.example.com.", RecordType::A).await;
    assert_eq!(
        answers(&m),
        [
            "www.example.com. CNAME real.example.net.",
            "real.example.net. A 192.0.2.7"
        ]
    );
    // A second time, from the cache: the same.
    let m = ask_strict(s.addr, "db.example.com.", RecordType::A).await;
    assert_eq!(answers(&m), ["db.example.com. A 192.0.2.7"]);
    assert_eq!(up.count("real.example.net.", RecordType::A), 1, "cached");
    s.running.shutdown().await;
}

#[test]
fn a_bad_rule_is_refused_at_start_naming_the_flag_and_the_rule() {
    for (rule, why) in [
        ("name regex ^([a-z]+\\.example\\.$ {1}.svc", "bad regex"),
        ("name regex ^([a-z]+)\\.example\\.$ {2}.svc", "group {2}"),
        ("name glob a b", "unknown match"),
        ("type A AAAA", "only name rules"),
    ] {
        let e = config::load(["clusterdns", "--rewrite", rule]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("--rewrite"), "{text}");
        assert!(text.contains(why), "{rule}: {text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    std::fs::write(&file, "rewrite: ['name regex ([ x']\n").unwrap();
    let e = config::load(["clusterdns", "--config", file.to_str().unwrap()]).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("rewrite") && text.contains("name regex ([ x"),
        "{text}"
    );
}

fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn wait_metric(running: &Running, series: &str, at_least: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while value(&running.metrics.encode(), series) < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} below {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn reloads_change_rules_with_every_reply_good_and_a_bad_rule_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    let head = "listen: ['127.0.0.1:0']\nno-forward: true\n";
    write(
        &file,
        &format!("{head}rewrite: ['name exact db.example.com {API}']\n"),
    );
    let examples = example_dir();
    let config = config::load([
        "clusterdns",
        "--config",
        file.to_str().unwrap(),
        "--manifests",
        examples.to_str().unwrap(),
        "--metrics-listen",
        "127.0.0.1:0",
        "--lameduck",
        "0s",
    ])
    .unwrap();
    let running = start(&config).await.unwrap();
    let addr = running.udp[0];
    let m = ask_strict(addr, "db.example.com.", RecordType::A).await;
    assert_eq!(answers(&m), ["db.example.com. A 10.96.10.30"]);

    // A client asking in a loop while the rule changes: every reply is the old answer or the
    // new one.
    let asking = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..150 {
            let m = ask_strict(addr, "db.example.com.", RecordType::A).await;
            let got = zone_text(&m);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{got}");
            assert_eq!(m.answers.len(), 1, "{got}");
            assert_eq!(
                m.answers[0].name,
                Name::from_ascii("db.example.com.").unwrap()
            );
            seen.push(m.answers[0].data.to_string());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    write(
        &file,
        &format!(
            "{head}rewrite:\n- 'name exact db.example.com search.shop.svc.cluster.local'\n- 'name suffix .corp.example .shop.svc.cluster.local'\n"
        ),
    );
    wait_metric(&running, "clusterdns_reload_total", 1.0).await;
    let seen = asking.await.unwrap();
    assert!(
        seen.iter()
            .all(|a| a == "10.96.10.30" || a == "10.96.10.50"),
        "{seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("10.96.10.50"),
        "{seen:?}"
    );
    let m = ask_strict(addr, "api.corp.example.", RecordType::A).await;
    assert_eq!(answers(&m), ["api.corp.example. A 10.96.10.30"]);

    // A bad regex: refused and counted; the rules in force stay.
    write(
        &file,
        &format!("{head}rewrite: ['name regex ^(db\\.example\\.com\\.$ {API}']\n"),
    );
    wait_metric(&running, "clusterdns_reload_failed_total", 1.0).await;
    let m = ask_strict(addr, "db.example.com.", RecordType::A).await;
    assert_eq!(answers(&m), ["db.example.com. A 10.96.10.50"]);
    assert_eq!(
        value(&running.metrics.encode(), "clusterdns_reload_total"),
        1.0
    );

    // No rules at all: the names are the client's own again.
    write(&file, head);
    wait_metric(&running, "clusterdns_reload_total", 2.0).await;
    let m = ask_strict(addr, "db.example.com.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    running.shutdown().await;
}
