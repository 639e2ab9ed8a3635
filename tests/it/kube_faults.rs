//! The Kubernetes source against a misbehaving API server: garbage and cut-off objects in
//! watch streams, objects with missing or wrong-typed fields, LIST bodies cut mid-object, 500s
//! and 429s. Through each, clusterdns keeps answering from the last good state (identically),
//! stays ready once synced, and picks up changes once the API behaves again.

use crate::common;

use common::objects::{cluster_ip, headless, namespace, slice};

use std::net::SocketAddr;
use std::time::Duration;

use clusterdns::app::Running;
use common::apiserver::ApiServer;
use common::{TestServer, ask, eventually};
use hickory_proto::rr::RecordType::{self, A, PTR, SRV};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Long enough for kube's default backoff (exponential, capped at 30 s) to come round again.
const WITHIN: Duration = Duration::from_secs(45);

struct Kube {
    api: ApiServer,
    dns: Running,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

async fn start_against(api: ApiServer, extra: &[&str]) -> Kube {
    let mut args = extra.to_vec();
    if !extra.contains(&"--startup-timeout") {
        args.extend_from_slice(&["--startup-timeout", "3s"]);
    }
    let s = TestServer::kube(&api, &args).await;
    Kube {
        api,
        dns: s.running,
        addr: s.addr,
        _dir: s.dir,
    }
}

/// Namespace `a` with ClusterIP Services `one` and `two` and headless `db` with two endpoints.
async fn cluster(extra: &[&str]) -> Kube {
    let api = ApiServer::start().await;
    api.apply(namespace("a"));
    api.apply(cluster_ip("one", "10.96.1.1"));
    api.apply(cluster_ip("two", "10.96.1.2"));
    api.apply(headless("db"));
    api.apply(slice("db-1", "db", &["10.244.0.1", "10.244.0.2"]));
    let k = start_against(api, extra).await;
    wait_for(&k, "db.a.svc.cluster.local.", A, "10.244.0.2").await;
    k
}

/// The names the faults must not disturb.
const WATCHED: [(&str, RecordType); 7] = [
    ("one.a.svc.cluster.local.", A),
    ("_http._tcp.one.a.svc.cluster.local.", SRV),
    ("two.a.svc.cluster.local.", A),
    ("db.a.svc.cluster.local.", A),
    ("a.svc.cluster.local.", A),
    ("1.1.96.10.in-addr.arpa.", PTR),
    ("nope.a.svc.cluster.local.", A),
];

/// A reply's text with its records sorted (the order within an RRset is not defined).
fn normalized(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].sort_unstable();
    lines.join("\n")
}

async fn answers(k: &Kube) -> Vec<String> {
    let mut out = Vec::new();
    for (name, qtype) in WATCHED {
        out.push(normalized(&ask(k.addr, name, qtype).await));
    }
    out
}

/// The watched names answer exactly as in `before`, and the server is ready.
async fn unchanged(k: &Kube, before: &[String], during: &str) {
    let now = answers(k).await;
    for ((name, qtype), (b, n)) in WATCHED.iter().zip(before.iter().zip(&now)) {
        assert_eq!(n, b, "{name} {qtype} changed {during}");
    }
    assert_eq!(readyz(k).await, 200, "ready {during}");
}

/// Checks [`unchanged`] every 250 ms for `how_long`.
async fn unchanged_for(k: &Kube, before: &[String], how_long: Duration, during: &str) {
    let until = tokio::time::Instant::now() + how_long;
    while tokio::time::Instant::now() < until {
        unchanged(k, before, during).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = (buf.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, buf)
}

async fn readyz(k: &Kube) -> u16 {
    http_get(k.dns.metrics_addr, "/readyz").await.0
}

async fn wait_for(k: &Kube, name: &str, qtype: RecordType, want: &str) {
    let got = eventually(k.addr, name, qtype, WITHIN, |t| t.contains(want)).await;
    assert!(
        got.contains(want),
        "{name} {qtype}: want {want:?} in\n{got}"
    );
}

/// The sum of a metric's samples whose line starts with `prefix`. A labelled series nothing
/// has counted yet is not written out at all (prometheus-client writes no empty family), so
/// none reads as 0: the checks on these counters are that they grow past a first reading,
/// which a misspelt name never does.
fn metric(k: &Kube, prefix: &str) -> u64 {
    (k.dns.metrics.encode().lines())
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn restarts(k: &Kube, kind: &str) -> u64 {
    metric(
        k,
        &format!("clusterdns_kubernetes_watch_restarts_total{{kind=\"{kind}\"}}"),
    )
}

fn object_errors(k: &Kube, kind: &str) -> u64 {
    metric(
        k,
        &format!("clusterdns_kubernetes_object_errors_total{{kind=\"{kind}\"}}"),
    )
}

fn relists(k: &Kube, kind: &str) -> u64 {
    metric(
        k,
        &format!("clusterdns_kubernetes_relists_total{{kind=\"{kind}\"}}"),
    )
}

/// Waits (bounded) until `cond` holds; false if it never did.
async fn until(within: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    true
}

/// Lines a watch stream must survive: not JSON, JSON that is no event, events whose object
/// is no object or whose metadata is not an object.
const GARBAGE: [&str; 7] = [
    "this is not JSON",
    "[1, 2, 3]",
    "null",
    "\u{1}\u{2}\u{3}",
    r#"{"type": "EXPLODED", "object": {}}"#,
    r#"{"type": "ADDED", "object": "a string"}"#,
    r#"{"type": "MODIFIED", "object": {"apiVersion": "v1", "kind": "Service", "metadata": 7}}"#,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_line_in_a_watch_stream_changes_nothing() {
    let k = cluster(&[]).await;
    let before = answers(&k).await;
    assert!(
        until(WITHIN, || k.api.watch_count() >= 3).await,
        "watches open"
    );
    let (svc0, slice0) = (restarts(&k, "Service"), restarts(&k, "EndpointSlice"));
    let (ns0, objects0) = (restarts(&k, "Namespace"), object_errors(&k, "Service"));

    // One bad line in each stream.
    k.api.inject_raw("services", GARBAGE[0]);
    k.api.inject_raw("endpointslices", GARBAGE[6]);
    k.api.inject_raw("namespaces", GARBAGE[5]);
    assert!(
        until(WITHIN, || restarts(&k, "Service") > svc0
            && restarts(&k, "EndpointSlice") > slice0
            && restarts(&k, "Namespace") > ns0)
        .await,
        "garbage counted as watch failures"
    );
    assert_eq!(object_errors(&k, "Service"), objects0, "no object was read");
    unchanged(&k, &before, "after garbage in the watch streams").await;

    // The streams go on: new changes arrive.
    k.api.apply(cluster_ip("three", "10.96.1.3"));
    k.api
        .apply(slice("db-1", "db", &["10.244.0.1", "10.244.0.3"]));
    k.api.apply(namespace("b"));
    wait_for(&k, "three.a.svc.cluster.local.", A, "10.96.1.3").await;
    wait_for(&k, "db.a.svc.cluster.local.", A, "10.244.0.3").await;
    let b = eventually(k.addr, "b.svc.cluster.local.", A, WITHIN, |t| {
        t.starts_with("NoError")
    })
    .await;
    assert!(b.starts_with("NoError"), "new namespace: {b}");
    assert_eq!(
        ask(k.addr, "one.a.svc.cluster.local.", A).await,
        before[0],
        "untouched Service unchanged"
    );
    k.dns.shutdown().await;
}

/// A healthy stream with a few undecodable lines: each line is skipped, and the next real
/// event is applied promptly, not after a growing reconnect backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_garbage_lines_do_not_stall_a_watch_stream() {
    let k = cluster(&[]).await;
    let before = answers(&k).await;
    assert!(
        until(WITHIN, || k.api.watch_count() >= 3).await,
        "watches open"
    );
    for line in GARBAGE {
        k.api.inject_raw("services", line);
    }
    k.api.apply(cluster_ip("three", "10.96.1.3"));
    let within = Duration::from_secs(10);
    let got = eventually(k.addr, "three.a.svc.cluster.local.", A, within, |t| {
        t.contains("10.96.1.3")
    })
    .await;
    assert!(
        got.contains("10.96.1.3"),
        "a change after {} bad lines not served within {within:?}:\n{got}",
        GARBAGE.len()
    );
    unchanged(&k, &before, "after garbage in the watch streams").await;
    k.dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_with_bad_fields_keep_their_last_good_version() {
    let k = cluster(&[]).await;
    let before = answers(&k).await;
    let (svc0, slice0) = (
        object_errors(&k, "Service"),
        object_errors(&k, "EndpointSlice"),
    );

    // A port number that is a word.
    let mut one = cluster_ip("one", "10.96.1.1");
    one["spec"]["ports"][0]["port"] = json!("eighty");
    k.api.apply(one);
    // A cluster IP that is a number.
    let mut two = cluster_ip("two", "10.96.1.2");
    two["spec"]["clusterIP"] = json!(7);
    k.api.apply(two);
    // A slice without its required addressType, and with an endpoint without addresses.
    let mut db = slice("db-1", "db", &["10.244.0.9"]);
    db.as_object_mut().unwrap().remove("addressType");
    db["endpoints"][0]
        .as_object_mut()
        .unwrap()
        .remove("addresses");
    k.api.apply(db);
    // A new Service that was never good.
    let mut bad_new = cluster_ip("three", "10.96.1.3");
    bad_new["spec"]["ports"] = json!("all of them");
    k.api.apply(bad_new);

    assert!(
        until(WITHIN, || object_errors(&k, "Service") >= svc0 + 3
            && object_errors(&k, "EndpointSlice") > slice0)
        .await,
        "bad objects counted: Service {} EndpointSlice {}",
        object_errors(&k, "Service"),
        object_errors(&k, "EndpointSlice")
    );
    unchanged(&k, &before, "after bad updates").await;
    let three = ask(k.addr, "three.a.svc.cluster.local.", A).await;
    assert!(
        three.starts_with("NXDomain"),
        "never-good object absent: {three}"
    );

    // A relist while the bad versions are still there keeps the last good ones. (The watch
    // is kept out while a change it has not seen is compacted away, so it must relist.)
    let relists0 = relists(&k, "Service");
    force_relist(&k.api);
    assert!(
        until(WITHIN, || relists(&k, "Service") > relists0).await,
        "relisted"
    );
    unchanged(&k, &before, "after a relist of bad objects").await;

    // Fixed: the new good versions are served.
    k.api.apply(cluster_ip("one", "10.96.1.11"));
    k.api.apply(cluster_ip("two", "10.96.1.12"));
    k.api.apply(slice("db-1", "db", &["10.244.0.9"]));
    k.api.apply(cluster_ip("three", "10.96.1.3"));
    wait_for(&k, "one.a.svc.cluster.local.", A, "10.96.1.11").await;
    wait_for(&k, "two.a.svc.cluster.local.", A, "10.96.1.12").await;
    wait_for(&k, "three.a.svc.cluster.local.", A, "10.96.1.3").await;
    let got = eventually(k.addr, "db.a.svc.cluster.local.", A, WITHIN, |t| {
        t.contains("10.244.0.9") && !t.contains("10.244.0.1")
    })
    .await;
    assert!(
        got.contains("10.244.0.9") && !got.contains("10.244.0.1"),
        "{got}"
    );
    k.dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_stream_cut_mid_object_loses_nothing() {
    let k = cluster(&[]).await;
    let before = answers(&k).await;
    assert!(
        until(WITHIN, || k.api.watch_count() >= 3).await,
        "watches open"
    );
    let watches0 = watch_requests(&k.api, "services");

    // The change that is cut is replayed on the next watch, from the last version seen.
    k.api.cut_next_event_mid_object();
    k.api.apply(cluster_ip("three", "10.96.1.3"));
    wait_for(&k, "three.a.svc.cluster.local.", A, "10.96.1.3").await;
    assert!(
        watch_requests(&k.api, "services") > watches0,
        "the Service watch was reopened"
    );
    unchanged(&k, &before, "after a cut Service event").await;

    k.api.cut_next_event_mid_object();
    k.api.apply(slice(
        "db-1",
        "db",
        &["10.244.0.1", "10.244.0.2", "10.244.0.3"],
    ));
    wait_for(&k, "db.a.svc.cluster.local.", A, "10.244.0.3").await;
    let db = ask(k.addr, "db.a.svc.cluster.local.", A).await;
    assert_eq!(db.matches(" A 10.244.0.").count(), 3, "{db}");
    assert_eq!(ask(k.addr, "one.a.svc.cluster.local.", A).await, before[0]);
    assert_eq!(readyz(&k).await, 200);
    k.dns.shutdown().await;
}

/// Makes every watch relist: cut while failing, a change none has seen, compacted away.
fn force_relist(api: &ApiServer) {
    api.set_failing(true);
    api.drop_connections();
    api.apply(namespace("unseen"));
    api.delete("v1", "Namespace", "", "unseen");
    api.compact();
    api.set_failing(false);
}

/// Watch requests of one resource so far.
fn watch_requests(api: &ApiServer, plural: &str) -> usize {
    (api.requests().iter())
        .filter(|r| r.contains(&format!("/{plural}?")) && r.contains("watch=true"))
        .count()
}

/// LIST requests (not watches) of one resource so far.
fn list_requests(api: &ApiServer, plural: &str) -> usize {
    (api.requests().iter())
        .filter(|r| r.contains(&format!("/{plural}")) && !r.contains("watch=true"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_bodies_cut_mid_object_are_retried() {
    // Paged lists, as from a server without streaming lists; the first lists are cut.
    let api = ApiServer::start().await;
    api.set_streaming_lists_supported(false);
    api.apply(namespace("a"));
    api.apply(cluster_ip("one", "10.96.1.1"));
    api.apply(cluster_ip("two", "10.96.1.2"));
    api.apply(headless("db"));
    api.apply(slice("db-1", "db", &["10.244.0.1", "10.244.0.2"]));
    api.cut_next_lists(3);
    let k = start_against(api, &[]).await;
    wait_for(&k, "db.a.svc.cluster.local.", A, "10.244.0.2").await;
    wait_for(&k, "one.a.svc.cluster.local.", A, "10.96.1.1").await;
    assert_eq!(readyz(&k).await, 200, "synced despite cut lists");
    let before = answers(&k).await;

    // A relist forced by compaction is cut several times before one gets through.
    let lists0 = list_requests(&k.api, "services") + list_requests(&k.api, "endpointslices");
    // The changes happen while the watches are down and are compacted away: only a relist
    // can bring them.
    k.api.cut_next_lists(9);
    k.api.set_failing(true);
    k.api.drop_connections();
    k.api.apply(cluster_ip("three", "10.96.1.3"));
    k.api.apply(slice(
        "db-1",
        "db",
        &["10.244.0.1", "10.244.0.2", "10.244.0.3"],
    ));
    k.api.compact();
    k.api.set_failing(false);
    // Meanwhile nothing that was served is lost (a relist that got through may already
    // have added the new records).
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < until {
        for ((name, qtype), b) in WATCHED.iter().zip(&before) {
            let now = normalized(&ask(k.addr, name, *qtype).await);
            for line in b.lines() {
                assert!(
                    now.contains(line),
                    "{name} {qtype} lost {line:?} while relists are cut: {now}"
                );
            }
        }
        assert_eq!(readyz(&k).await, 200, "ready while relists are cut");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    wait_for(&k, "three.a.svc.cluster.local.", A, "10.96.1.3").await;
    wait_for(&k, "db.a.svc.cluster.local.", A, "10.244.0.3").await;
    let lists = list_requests(&k.api, "services") + list_requests(&k.api, "endpointslices");
    assert!(
        lists >= lists0 + 3,
        "cut lists were retried ({lists0} -> {lists})"
    );
    assert_eq!(ask(k.addr, "one.a.svc.cluster.local.", A).await, before[0]);
    assert_eq!(readyz(&k).await, 200);
    k.dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500s_for_a_while_serve_the_last_state() {
    let k = cluster(&[]).await;
    let before = answers(&k).await;
    let svc0 = restarts(&k, "Service");
    k.api.set_failing(true);
    k.api.drop_connections();
    // A change the failing API cannot deliver.
    k.api.apply(cluster_ip("three", "10.96.1.3"));
    unchanged_for(&k, &before, Duration::from_secs(2), "while the API fails").await;
    assert!(restarts(&k, "Service") > svc0, "failures counted");
    let three = ask(k.addr, "three.a.svc.cluster.local.", A).await;
    assert!(three.starts_with("NXDomain"), "{three}");
    assert_eq!(http_get(k.dns.metrics_addr, "/healthz").await.0, 200);

    k.api.set_failing(false);
    wait_for(&k, "three.a.svc.cluster.local.", A, "10.96.1.3").await;
    unchanged(&k, &before, "after the API recovered").await;
    k.dns.shutdown().await;
}

/// Requests answered while throttled, per resource path, with their times.
fn during(
    api: &ApiServer,
    from: tokio::time::Instant,
    to: tokio::time::Instant,
) -> Vec<(tokio::time::Instant, String)> {
    (api.requests_at().into_iter())
        .filter(|(at, _)| *at >= from && *at < to)
        .map(|(at, r)| (at, r.split('?').next().unwrap_or_default().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429s_serve_the_last_state_without_a_retry_storm() {
    let k = cluster(&[]).await;
    let before = answers(&k).await;
    let from = tokio::time::Instant::now();
    k.api.set_throttled(Some(1));
    k.api.drop_connections();
    k.api.apply(cluster_ip("three", "10.96.1.3"));
    unchanged_for(
        &k,
        &before,
        Duration::from_secs(3),
        "while the API throttles",
    )
    .await;
    let to = tokio::time::Instant::now();
    k.api.set_throttled(None);
    // Three kinds, backing off: a handful of retries each, not a loop.
    let tries = during(&k.api, from, to);
    assert!(
        !tries.is_empty() && tries.len() <= 30,
        "{} requests in 3 s of 429s: {tries:?}",
        tries.len()
    );
    wait_for(&k, "three.a.svc.cluster.local.", A, "10.96.1.3").await;
    unchanged(&k, &before, "after the throttling ended").await;
    k.dns.shutdown().await;
}

/// As client-go does, the `Retry-After` of a 429 is waited out before trying again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_of_a_429_is_honoured() {
    let k = cluster(&[]).await;
    let from = tokio::time::Instant::now();
    k.api.set_throttled(Some(3));
    k.api.drop_connections();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let to = tokio::time::Instant::now();
    k.api.set_throttled(None);
    let tries = during(&k.api, from, to);
    assert!(tries.len() >= 6, "throttled requests came: {tries:?}");
    let mut paths: Vec<&String> = tries.iter().map(|(_, p)| p).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let times: Vec<_> = (tries.iter())
            .filter(|(_, p)| p == path)
            .map(|(t, _)| *t)
            .collect();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_millis(2900),
                "{path} retried {gap:?} after a 429 with Retry-After: 3"
            );
        }
    }
    k.dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_before_the_first_sync_only_delays_it() {
    let api = ApiServer::start().await;
    api.apply(namespace("a"));
    api.apply(cluster_ip("one", "10.96.1.1"));
    api.set_throttled(Some(1));
    let k = start_against(api, &["--startup-timeout", "500ms"]).await;
    let got = ask(k.addr, "one.a.svc.cluster.local.", A).await;
    assert!(got.starts_with("ServFail"), "unknown while unsynced: {got}");
    assert_eq!(readyz(&k).await, 503, "not ready before the first list");
    let watches0 = k.api.requests().len();
    k.api.set_throttled(None);
    wait_for(&k, "one.a.svc.cluster.local.", A, "10.96.1.1").await;
    // Ready once every kind has listed (each retries on its own backoff).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while readyz(&k).await != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ready within 10 s of the 429s ending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A 429 is not a refusal of streaming lists: they are still used afterwards.
    let after: Vec<String> = k.api.requests()[watches0..].to_vec();
    assert!(
        after.iter().any(|r| r.contains("sendInitialEvents=true")),
        "streaming lists still used after the 429s: {after:?}"
    );
    k.dns.shutdown().await;
}

/// The faults above are what a client sees on the wire: a 429 with `Retry-After` and a
/// `Status`, a LIST body that ends mid-object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_throttles_and_cuts_on_the_wire() {
    let api = ApiServer::start().await;
    api.apply(namespace("a"));
    api.apply(cluster_ip("one", "10.96.1.1"));
    let addr: SocketAddr = api.url().trim_start_matches("http://").parse().unwrap();

    api.set_throttled(Some(2));
    let (code, text) = http_get(addr, "/api/v1/services").await;
    assert_eq!(code, 429);
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 2\r\n"),
        "{text}"
    );
    assert!(text.contains(r#""retryAfterSeconds":2"#), "{text}");
    api.set_throttled(None);

    let (code, whole) = http_get(addr, "/api/v1/services").await;
    assert_eq!(code, 200);
    api.cut_next_lists(1);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = "GET /api/v1/services HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    let mut cut = Vec::new();
    let _ = s.read_to_end(&mut cut).await;
    let cut = String::from_utf8_lossy(&cut);
    assert!(cut.starts_with("HTTP/1.1 200"), "{cut}");
    assert!(!cut.ends_with("0\r\n\r\n"), "no final chunk: {cut}");
    assert!(
        cut.contains(r#""items":[{"metadata":"#) && !cut.contains("10.96.1.1"),
        "{cut}"
    );
    assert!(whole.contains("10.96.1.1"));
    let (code, again) = http_get(addr, "/api/v1/services").await;
    assert_eq!(
        (code, again.contains("10.96.1.1")),
        (200, true),
        "only one cut"
    );

    // A watch that gets half an event, then nothing: the connection ends mid-object.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = "GET /api/v1/services?watch=true&resourceVersion=3 HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    assert!(until(Duration::from_secs(5), || api.watch_count() == 1).await);
    api.cut_next_event_mid_object();
    api.apply(cluster_ip("two", "10.96.1.2"));
    let mut wire = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut wire)).await;
    assert!(read.is_ok(), "the watch was cut");
    let wire = String::from_utf8_lossy(&wire);
    assert!(
        wire.contains(r#"{"type":"ADDED","object":{"apiVersion":"v1""#),
        "{wire}"
    );
    assert!(
        !wire.contains("10.96.1.2") && !wire.ends_with("0\r\n\r\n"),
        "{wire}"
    );
}

/// The sum of the programming-latency histogram for headless Services without a selector,
/// seconds; `None` before its first observation (prometheus-client writes no empty series).
fn programming_sum(k: &Kube) -> Option<f64> {
    let text = k.dns.metrics.encode();
    let series = "clusterdns_kubernetes_dns_programming_duration_seconds_sum\
                  {service_kind=\"headless_without_selector\"} ";
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.parse().ok())
}

#[tokio::test]
async fn a_watch_that_stalls_without_closing_is_noticed_and_made_again() {
    // Watches end after 2 s (timeoutSeconds); one silent for 2 + 5 s is taken for dead.
    let k = cluster(&["--watch-timeout", "2s"]).await;
    let before = answers(&k).await;
    let watches = watch_requests(&k.api, "endpointslices");
    let stalled_at = std::time::Instant::now();
    k.api.stall_open_watches();
    // A change the stalled watches never deliver, stamped now.
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut moved = slice("db-1", "db", &["10.244.0.1", "10.244.0.3"]);
    moved["metadata"]["annotations"] =
        json!({"endpoints.kubernetes.io/last-change-trigger-time": now});
    // No trigger time so far: the first observation is the stalled change's.
    assert_eq!(programming_sum(&k), None);
    k.api.apply(moved);
    // Meanwhile the last state serves, and readiness stays: a stalled API is no reason to
    // take the cluster's DNS out.
    assert_eq!(answers(&k).await, before);
    assert_eq!(readyz(&k).await, 200);
    wait_for(&k, "db.a.svc.cluster.local.", A, "10.244.0.3").await;
    let noticed = stalled_at.elapsed();
    assert!(
        watch_requests(&k.api, "endpointslices") > watches,
        "the watch was made again"
    );
    // The histogram carries the delay the stall caused.
    let added = programming_sum(&k).expect("the stalled change's programming latency");
    assert!(
        added >= 2.0,
        "programming latency of the stalled change: {added} s (noticed after {noticed:?})"
    );
    assert_eq!(readyz(&k).await, 200);
    let text = normalized(&ask(k.addr, "db.a.svc.cluster.local.", A).await);
    assert!(!text.contains("10.244.0.2"), "{text}");
}

#[tokio::test]
async fn a_watch_event_out_of_resource_version_order_is_not_applied() {
    let k = cluster(&[]).await;
    let restarted = restarts(&k, "Service");
    // `one` moves twice; the watches get the second move first, then the first.
    k.api.reorder_next_change();
    k.api.apply(cluster_ip("one", "10.96.1.11"));
    k.api.apply(cluster_ip("one", "10.96.1.12"));
    // The late, older event must not win: the answer settles on the newest address.
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let text = normalized(&ask(k.addr, "one.a.svc.cluster.local.", A).await);
        if text.contains("10.96.1.12") && restarts(&k, "Service") > restarted {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "settled: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And it stays there (the relist and everything after it agree).
    for _ in 0..20 {
        let text = normalized(&ask(k.addr, "one.a.svc.cluster.local.", A).await);
        assert!(
            text.contains("10.96.1.12") && !text.contains("10.96.1.11"),
            "{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
