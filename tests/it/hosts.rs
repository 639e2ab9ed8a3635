//! Host entries: `--hosts FILE` (watched), `--hosts-configmap` from `--manifests` and through
//! the API server emulator, over real UDP.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType::{self, A, AAAA, MX, PTR};
use serde_json::json;

use crate::common::apiserver::ApiServer;
use crate::common::upstream::FakeUpstream;
use crate::common::{TestServer, query, strict, udp_raw};

const HOSTS: &str = "# the node names\n\
    192.168.1.10 node-a node-a.lan\n\
    fd00::10     node-a\n\
    192.168.1.11 node-b   # IPv4 only\n";

async fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let q = query(name, qtype, Some(1232));
    let bytes = udp_raw(addr, &q.to_vec().unwrap(), Duration::from_secs(2))
        .await
        .expect("a reply");
    strict::read(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    Message::from_vec(&bytes).unwrap()
}

/// The answers as `owner ttl type data`.
fn answers(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect()
}

/// Asks until the answers are `want` (at most 5 s); the last answers.
async fn answers_become(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    want: &[&str],
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = answers(&ask(addr, name, qtype).await);
        if got == want || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_hosts_file_answers_its_names_and_lets_others_through() {
    let up = FakeUpstream::start().await;
    up.add("elsewhere.example. 300 A 192.0.2.1");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts");
    std::fs::write(&file, HOSTS).unwrap();
    let (f, u) = (file.to_str().unwrap(), up.addr().to_string());
    let s = TestServer::example(&["--hosts", f, "--upstream", &u]).await;
    let m = ask(s.addr, "Node-A.", A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(answers(&m), ["Node-A. 3600 A 192.168.1.10"]);
    assert_eq!(
        answers(&ask(s.addr, "node-a.lan.", A).await),
        ["node-a.lan. 3600 A 192.168.1.10"]
    );
    assert_eq!(
        answers(&ask(s.addr, "node-a.", AAAA).await),
        ["node-a. 3600 AAAA fd00::10"]
    );
    // A name it has, of another type or family: NODATA, never forwarded.
    for (name, qtype) in [("node-b.", AAAA), ("node-b.", MX)] {
        let m = ask(s.addr, name, qtype).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{name} {qtype}"
        );
        assert!(m.answers.is_empty() && m.authorities.is_empty(), "{m:?}");
    }
    assert_eq!(up.count("node-b.", AAAA), 0);
    // Reverse names.
    assert_eq!(
        answers(&ask(s.addr, "10.1.168.192.in-addr.arpa.", PTR).await),
        [
            "10.1.168.192.in-addr.arpa. 3600 PTR node-a.",
            "10.1.168.192.in-addr.arpa. 3600 PTR node-a.lan."
        ]
    );
    let v6 = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
    assert_eq!(
        answers(&ask(s.addr, v6, PTR).await),
        [format!("{v6} 3600 PTR node-a.")]
    );
    // Other names fall through: the cluster zone first, then the upstream.
    let m = ask(s.addr, "api.shop.svc.cluster.local.", A).await;
    assert_eq!(
        answers(&m),
        ["api.shop.svc.cluster.local. 30 A 10.96.10.30"]
    );
    let m = ask(s.addr, "elsewhere.example.", A).await;
    assert_eq!(answers(&m), ["elsewhere.example. 300 A 192.0.2.1"]);
    s.running.shutdown().await;
}

#[tokio::test]
async fn ttl_and_no_reverse() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts");
    std::fs::write(&file, HOSTS).unwrap();
    let f = file.to_str().unwrap();
    let s = TestServer::example(&["--hosts", f, "--hosts-ttl", "60", "--hosts-no-reverse"]).await;
    assert_eq!(
        answers(&ask(s.addr, "node-b.", A).await),
        ["node-b. 60 A 192.168.1.11"]
    );
    let m = ask(s.addr, "11.1.168.192.in-addr.arpa.", PTR).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::Refused,
        "not ours: no upstream"
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_edited_file_is_picked_up_with_every_reply_good_and_bad_lines_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts");
    std::fs::write(&file, HOSTS).unwrap();
    let f = file.to_str().unwrap().to_owned();
    let s = TestServer::example(&["--hosts", &f]).await;
    let addr = s.addr;
    let asking = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..100 {
            let m = ask(addr, "node-b.", A).await;
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(m.answers.len(), 1, "{m:?}");
            seen.push(m.answers[0].data.to_string());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let edited = "192.168.1.10 node-a\nnot-an-address node-x\n192.168.1.12 node-b\n192.168.1.13\n";
    let tmp = dir.path().join("hosts.tmp");
    std::fs::write(&tmp, edited).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let seen = asking.await.unwrap();
    assert!(
        seen.iter()
            .all(|a| a == "192.168.1.11" || a == "192.168.1.12"),
        "{seen:?}"
    );
    let got = answers_become(addr, "node-b.", A, &["node-b. 3600 A 192.168.1.12"]).await;
    assert_eq!(got, ["node-b. 3600 A 192.168.1.12"]);
    // The bad lines are skipped, the rest served; a name gone from the file falls through.
    let m = ask(addr, "node-x.", A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(
        answers(&ask(addr, "node-a.", A).await),
        ["node-a. 3600 A 192.168.1.10"]
    );
    let m = ask(addr, "node-a.lan.", A).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::Refused,
        "gone from the file"
    );
    // A file removed keeps the entries last read.
    std::fs::remove_file(&file).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        answers(&ask(addr, "node-a.", A).await),
        ["node-a. 3600 A 192.168.1.10"]
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_missing_hosts_file_stops_the_start() {
    let config = clusterdns::config::load([
        "clusterdns",
        "--manifests",
        crate::common::example_dir().to_str().unwrap(),
        "--hosts",
        "/nonexistent/hosts",
        "--no-forward",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ])
    .unwrap();
    let e = clusterdns::app::start(&config)
        .await
        .err()
        .expect("no start");
    assert!(
        format!("{e:#}").contains("--hosts /nonexistent/hosts"),
        "{e:#}"
    );
}

fn node_hosts(text: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: coredns\n  namespace: kube-system\ndata:\n  Corefile: '.:53 {{}}'\n  NodeHosts: |\n{}",
        text.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    )
}

#[tokio::test]
async fn a_configmap_key_from_manifests_is_served_and_followed() {
    let flags = [
        "--hosts-configmap",
        "kube-system/coredns:NodeHosts",
        "--namespaces",
        "shop",
    ];
    let s = TestServer::example(&flags).await;
    let m = ask(s.addr, "node-a.", A).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::Refused,
        "no ConfigMap yet"
    );
    std::fs::write(s.path("coredns.yaml"), node_hosts("192.168.1.10 node-a\n")).unwrap();
    let got = answers_become(s.addr, "node-a.", A, &["node-a. 3600 A 192.168.1.10"]).await;
    assert_eq!(got, ["node-a. 3600 A 192.168.1.10"]);
    let ptr = "10.1.168.192.in-addr.arpa.";
    assert_eq!(
        answers(&ask(s.addr, ptr, PTR).await),
        [format!("{ptr} 3600 PTR node-a.")]
    );
    // Another ConfigMap, or another key, is not read.
    let other = node_hosts("192.168.1.99 node-z\n").replace("name: coredns", "name: other");
    std::fs::write(s.path("other.yaml"), other).unwrap();
    std::fs::write(s.path("coredns.yaml"), node_hosts("192.168.1.20 node-a\n")).unwrap();
    let got = answers_become(s.addr, "node-a.", A, &["node-a. 3600 A 192.168.1.20"]).await;
    assert_eq!(got, ["node-a. 3600 A 192.168.1.20"]);
    assert_eq!(
        ask(s.addr, "node-z.", A).await.metadata.response_code,
        ResponseCode::Refused
    );
    // The ConfigMap removed: its names are gone.
    std::fs::remove_file(s.path("coredns.yaml")).unwrap();
    let got = answers_become(s.addr, "node-a.", A, &[]).await;
    assert!(got.is_empty(), "{got:?}");
    s.running.shutdown().await;
}

fn configmap(name: &str, hosts: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "kube-system"},
        "data": {"NodeHosts": hosts},
    })
}

#[tokio::test]
async fn a_configmap_key_through_the_api_is_watched_narrowly() {
    let api = ApiServer::start().await;
    api.apply(configmap("coredns", "192.168.1.10 node-a\n"));
    api.apply(configmap("other", "192.168.1.99 node-z\n"));
    let s = TestServer::kube(
        &api,
        &["--hosts-configmap", "kube-system/coredns:NodeHosts"],
    )
    .await;
    let got = answers_become(s.addr, "node-a.", A, &["node-a. 3600 A 192.168.1.10"]).await;
    assert_eq!(got, ["node-a. 3600 A 192.168.1.10"]);
    assert_eq!(
        ask(s.addr, "node-z.", A).await.metadata.response_code,
        ResponseCode::Refused
    );
    api.apply(configmap(
        "coredns",
        "192.168.1.10 node-a\n192.168.1.11 node-b\n",
    ));
    let got = answers_become(s.addr, "node-b.", A, &["node-b. 3600 A 192.168.1.11"]).await;
    assert_eq!(got, ["node-b. 3600 A 192.168.1.11"]);
    let requests = api.requests();
    let configmaps: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("configmaps"))
        .collect();
    assert!(!configmaps.is_empty(), "{requests:?}");
    for r in configmaps {
        assert!(r.contains("/namespaces/kube-system/configmaps"), "{r}");
        assert!(r.contains("fieldSelector=metadata.name%3Dcoredns"), "{r}");
    }
    s.running.shutdown().await;
}
