//! Zone files (`--zones DIR`) served beside the cluster zone over real sockets: the
//! repository's `zones/` example, reloads, a broken file keeping its last good zone,
//! ExternalName targets inside a zone file, and a second clusterdns serving `zones/` as the
//! real upstream of the first.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::{TestServer, ask, eventually, query, udp};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn repo_zones() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("zones")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn serves_the_example_zone_file_beside_the_cluster_zone() {
    let z = repo_zones();
    let s = TestServer::example(&["--zones", &z]).await;
    let text = ask(s.addr, "WWW.example.internal.", RecordType::A).await;
    assert_eq!(
        text,
        "NoError aa\n;answer WWW.example.internal. 300 IN A 10.0.0.80"
    );
    let text = ask(s.addr, "web.example.internal.", RecordType::AAAA).await;
    assert_eq!(
        text,
        "NoError aa\n;answer web.example.internal. 300 IN CNAME www.example.internal.\n\
         ;answer www.example.internal. 300 IN AAAA fd00::80"
    );
    let text = ask(s.addr, "nope.example.internal.", RecordType::A).await;
    assert!(
        text.starts_with("NXDomain aa\n;authority example.internal. 60 IN SOA"),
        "{text}"
    );
    let text = ask(s.addr, "x.y.apps.example.internal.", RecordType::A).await;
    assert_eq!(
        text,
        "NoError aa\n;answer x.y.apps.example.internal. 300 IN A 10.0.1.1"
    );
    // A delegation: a referral, not authoritative.
    let (r, _) = udp(
        s.addr,
        &query("host.team.example.internal.", RecordType::A, None),
    )
    .await;
    assert!(!r.metadata.authoritative);
    assert_eq!(r.authorities[0].record_type(), RecordType::NS);
    // The cluster zone is untouched, and other names still refused without upstreams.
    let text = ask(
        s.addr,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert!(text.contains("10.96.0.1"), "{text}");
    let (r, _) = udp(s.addr, &query("www.example.com.", RecordType::A, None)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
}

const ZONE: &str = "$TTL 60
@ IN SOA ns.corp.test. hostmaster.corp.test. 1 3600 600 86400 30
@ IN NS ns
ns IN A 10.9.0.53
app IN A 10.9.0.1
";

#[tokio::test]
async fn zone_files_reload_and_a_broken_file_keeps_its_last_good_zone() {
    let zones = tempfile::tempdir().unwrap();
    let file = zones.path().join("corp.test.zone");
    std::fs::write(&file, ZONE).unwrap();
    let z = zones.path().to_str().unwrap().to_owned();
    let s = TestServer::example(&["--zones", &z]).await;
    let text = ask(s.addr, "app.corp.test.", RecordType::A).await;
    assert_eq!(text, "NoError aa\n;answer app.corp.test. 60 IN A 10.9.0.1");

    // An edit is served within the poll interval.
    std::fs::write(&file, ZONE.replace("10.9.0.1", "10.9.0.2")).unwrap();
    let text = eventually(
        s.addr,
        "app.corp.test.",
        RecordType::A,
        Duration::from_secs(5),
        |t| t.contains("10.9.0.2"),
    )
    .await;
    assert!(text.contains("10.9.0.2"), "{text}");

    // A broken edit (and a new, added name) is ignored: the last good zone stays.
    // A zone file written after it is served once a scan has read both (a fixed sleep would
    // pass as well before any scan).
    std::fs::write(&file, format!("{ZONE}new IN A not-an-address\n")).unwrap();
    let scan = zones.path().join("scan.test.zone");
    std::fs::write(
        zones.path().join(".scan"),
        ZONE.replace("corp.test", "scan.test"),
    )
    .unwrap();
    std::fs::rename(zones.path().join(".scan"), &scan).unwrap();
    let text = eventually(
        s.addr,
        "app.scan.test.",
        RecordType::A,
        Duration::from_secs(10),
        |t| t.contains("10.9.0.1"),
    )
    .await;
    assert!(text.contains("10.9.0.1"), "the scan zone served: {text}");
    let text = ask(s.addr, "app.corp.test.", RecordType::A).await;
    assert!(text.contains("10.9.0.2"), "{text}");
    let text = ask(s.addr, "new.corp.test.", RecordType::A).await;
    assert!(
        text.starts_with("NXDomain aa"),
        "the broken edit's name: {text}"
    );
    std::fs::remove_file(&scan).unwrap();

    // Fixed: served. A second zone file appears: served too.
    std::fs::write(&file, format!("{ZONE}new IN A 10.9.0.7\n")).unwrap();
    std::fs::write(
        zones.path().join("other.test.zone"),
        ZONE.replace("corp.test", "other.test"),
    )
    .unwrap();
    let text = eventually(
        s.addr,
        "new.corp.test.",
        RecordType::A,
        Duration::from_secs(5),
        |t| t.contains("10.9.0.7"),
    )
    .await;
    assert!(text.contains("10.9.0.7"), "{text}");
    let text = eventually(
        s.addr,
        "app.other.test.",
        RecordType::A,
        Duration::from_secs(5),
        |t| t.starts_with("NoError aa\n;answer"),
    )
    .await;
    assert!(text.contains("10.9.0.1"), "{text}");

    // Deleted: no longer ours.
    std::fs::remove_file(zones.path().join("other.test.zone")).unwrap();
    let text = eventually(
        s.addr,
        "app.other.test.",
        RecordType::A,
        Duration::from_secs(5),
        |t| t.starts_with("Refused"),
    )
    .await;
    assert!(text.starts_with("Refused"), "{text}");
}

#[tokio::test]
async fn externalname_targets_in_a_zone_file_are_completed() {
    let zones = tempfile::tempdir().unwrap();
    std::fs::write(zones.path().join("corp.test.zone"), ZONE).unwrap();
    let z = zones.path().to_str().unwrap().to_owned();
    let svc = "apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: shop}
spec: {type: ExternalName, externalName: app.corp.test}
";
    let s = TestServer::with_files(&[("svc.yaml", svc)], &["--zones", &z]).await;
    let text = ask(s.addr, "legacy.shop.svc.cluster.local.", RecordType::A).await;
    assert_eq!(
        text,
        "NoError aa\n;answer legacy.shop.svc.cluster.local. 30 IN CNAME app.corp.test.\n\
         ;answer app.corp.test. 60 IN A 10.9.0.1"
    );
}

#[tokio::test]
async fn a_second_clusterdns_serving_zones_is_a_real_upstream() {
    let z = repo_zones();
    let authority = TestServer::example(&["--zones", &z]).await;
    let up = authority.addr.to_string();
    let front = TestServer::example(&["--upstream", &up]).await;
    let (r, _) = udp(
        front.addr,
        &query("www.example.internal.", RecordType::A, None),
    )
    .await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(!r.metadata.authoritative, "forwarded: AA cleared");
    assert_eq!(r.answers[0].data.to_string(), "10.0.0.80");
    let (r, _) = udp(
        front.addr,
        &query("nope.example.internal.", RecordType::A, None),
    )
    .await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    for _ in 0..3 {
        udp(
            front.addr,
            &query("www.example.internal.", RecordType::A, None),
        )
        .await;
    }
    // The authority saw one A query per name: the repeats came from the front's cache.
    let m = authority.running.metrics.encode();
    let a = m
        .lines()
        .filter(|l| l.starts_with("clusterdns_dns_requests_total{"))
        .find_map(|l| l.split_once(",zone=\".\",view=\"\",proto=\"udp\",family=\"1\",type=\"A\"} "))
        .map(|(_, n)| n)
        .unwrap_or("0");
    assert_eq!(a, "2", "{m}");
}

#[tokio::test]
async fn a_zones_flag_naming_no_directory_fails_at_start() {
    use clap::Parser;
    let dir = common::example_dir();
    let args = [
        "clusterdns",
        "--manifests",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--no-forward",
        "--zones",
        "/nonexistent/zones",
    ];
    let config = clusterdns::config::Config::try_parse_from(args).unwrap();
    let err = match clusterdns::app::start(&config).await {
        Ok(_) => panic!("started without its zones directory"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("/nonexistent/zones"), "{err}");
}
