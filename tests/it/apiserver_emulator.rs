//! The API server emulator in `tests/it/common/apiserver.rs` against kube-rs itself: the
//! watcher (list+watch with paging, and streaming lists) sees exactly what it would see from a
//! real API server, including relists after compaction, outages, restarts and refusals.

use crate::common;

use std::time::Duration;

use common::apiserver::ApiServer;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::Event;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(10);

type Item = watcher::Result<Event<Service>>;

async fn client(api: &ApiServer) -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = Kubeconfig::read_from(api.write_kubeconfig(dir.path())).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    (Client::try_from(config).unwrap(), dir)
}

fn service(ns: &str, name: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
           "spec": {"clusterIP": ip, "ports": [{"port": 80, "protocol": "TCP"}]}})
}

/// Five services in two namespaces; the initial set every test starts from.
fn seed(api: &ApiServer) {
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}));
    for (i, (ns, name)) in [
        ("a", "one"),
        ("a", "two"),
        ("a", "three"),
        ("b", "four"),
        ("b", "five"),
    ]
    .into_iter()
    .enumerate()
    {
        api.apply(service(ns, name, &format!("10.96.0.{}", i + 1)));
    }
}

fn key(s: &Service) -> String {
    format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any())
}

async fn next(stream: &mut (impl Stream<Item = Item> + Unpin)) -> Item {
    tokio::time::timeout(WITHIN, stream.next())
        .await
        .expect("a watcher event in time")
        .expect("the watcher never ends")
}

/// Skips errors up to `Init`, then returns the keys of the initial set up to `InitDone`,
/// sorted, and how many errors came first.
async fn initial_set(stream: &mut (impl Stream<Item = Item> + Unpin)) -> (Vec<String>, usize) {
    let mut errors = 0;
    loop {
        match next(stream).await {
            Ok(Event::Init) => break,
            Err(_) => errors += 1,
            Ok(other) => panic!("expected Init, got {other:?}"),
        }
    }
    let mut keys = Vec::new();
    loop {
        match next(stream).await {
            Ok(Event::InitApply(s)) => keys.push(key(&s)),
            Ok(Event::InitDone) => break,
            other => panic!("expected InitApply or InitDone, got {other:?}"),
        }
    }
    keys.sort();
    (keys, errors)
}

type Change = (&'static str, String, String);

/// The next event, which must be an `Apply` or `Delete`: ("apply"|"delete", key, clusterIP).
async fn next_change(stream: &mut (impl Stream<Item = Item> + Unpin)) -> Change {
    match next(stream).await {
        Ok(Event::Apply(s)) => {
            let ip = s.spec.as_ref().and_then(|s| s.cluster_ip.clone());
            ("apply", key(&s), ip.unwrap_or_default())
        }
        Ok(Event::Delete(s)) => ("delete", key(&s), String::new()),
        other => panic!("expected a change, got {other:?}"),
    }
}

/// The first change after any number of errors (a recovering watcher).
async fn change_after_errors(stream: &mut (impl Stream<Item = Item> + Unpin)) -> Change {
    loop {
        match next(stream).await {
            Err(_) => continue,
            Ok(Event::Apply(s)) => {
                let ip = s.spec.as_ref().and_then(|s| s.cluster_ip.clone());
                return ("apply", key(&s), ip.unwrap_or_default());
            }
            other => panic!("expected a change, got {other:?}"),
        }
    }
}

async fn wait_for_watches(api: &ApiServer, n: usize) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while api.watch_count() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} watches open, not {n}",
            api.watch_count()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lists, sees one live change, and waits until the watch is open again: only then does
/// cutting or compacting test a running watch rather than the initial list.
async fn settle(api: &ApiServer, w: &mut (impl Stream<Item = Item> + Unpin)) {
    initial_set(w).await;
    api.apply(service("a", "one", "10.96.1.1"));
    next_change(w).await;
    wait_for_watches(api, 1).await;
}

fn seeded_keys() -> Vec<String> {
    ["a/one", "a/three", "a/two", "b/five", "b/four"]
        .map(String::from)
        .to_vec()
}

#[tokio::test]
async fn list_watch_pages_then_streams_changes() {
    let api = ApiServer::start().await;
    seed(&api);
    let (client, _dir) = client(&api).await;
    let config = watcher::Config::default().page_size(2);
    let mut w = watcher(Api::<Service>::all(client), config).boxed();
    let (keys, errors) = initial_set(&mut w).await;
    assert_eq!((keys, errors), (seeded_keys(), 0));

    api.apply(service("a", "one", "10.96.1.1"));
    assert_eq!(
        next_change(&mut w).await,
        ("apply", "a/one".into(), "10.96.1.1".into())
    );
    assert!(api.delete("v1", "Service", "b", "four"));
    assert_eq!(
        next_change(&mut w).await,
        ("delete", "b/four".into(), String::new())
    );
    api.apply(service("c", "six", "10.96.1.6"));
    assert_eq!(
        next_change(&mut w).await,
        ("apply", "c/six".into(), "10.96.1.6".into())
    );

    let requests = api.requests();
    let lists: Vec<&String> = requests.iter().filter(|r| !r.contains("watch=")).collect();
    assert_eq!(lists.len(), 3, "5 services in pages of 2: {requests:#?}");
    assert!(lists[0].starts_with("/api/v1/services?") && lists[0].contains("limit=2"));
    assert!(lists[1].contains("continue=") && lists[2].contains("continue="));
    let watches = requests.iter().filter(|r| r.contains("watch=true")).count();
    assert_eq!(watches, 1, "{requests:#?}");
}

#[tokio::test]
async fn streaming_list_delivers_the_same_initial_set() {
    let api = ApiServer::start().await;
    seed(&api);
    let (client, _dir) = client(&api).await;
    let config = watcher::Config::default().streaming_lists();
    let mut w = watcher(Api::<Service>::all(client), config).boxed();
    assert_eq!(initial_set(&mut w).await, (seeded_keys(), 0));
    api.apply(service("a", "two", "10.96.2.2"));
    assert_eq!(
        next_change(&mut w).await,
        ("apply", "a/two".into(), "10.96.2.2".into())
    );
    let requests = api.requests();
    assert_eq!(
        requests.len(),
        1,
        "one streaming watch and nothing else: {requests:#?}"
    );
    assert!(
        requests[0].contains("sendInitialEvents=true"),
        "{requests:#?}"
    );
    assert!(
        requests[0].contains("resourceVersionMatch=NotOlderThan"),
        "{requests:#?}"
    );
}

#[tokio::test]
async fn compaction_and_a_cut_stream_force_a_relist() {
    for streaming in [false, true] {
        let api = ApiServer::start().await;
        seed(&api);
        let (client, _dir) = client(&api).await;
        let mut config = watcher::Config::default().page_size(2);
        if streaming {
            config = config.streaming_lists();
        }
        let mut w = watcher(Api::<Service>::all(client), config).boxed();
        settle(&api, &mut w).await;

        api.drop_connections();
        api.apply(service("a", "two", "10.96.1.2"));
        api.delete("v1", "Service", "b", "five");
        api.compact();
        let (keys, errors) = initial_set(&mut w).await;
        assert_eq!(
            keys,
            ["a/one", "a/three", "a/two", "b/four"],
            "streaming {streaming}"
        );
        assert_eq!(
            errors, 1,
            "the 410 shows as one error; the cut itself as none"
        );
        api.apply(service("c", "six", "10.96.1.6"));
        assert_eq!(next_change(&mut w).await.1, "c/six");
    }
}

#[tokio::test]
async fn a_cut_stream_resumes_without_a_relist_while_history_lasts() {
    let api = ApiServer::start().await;
    seed(&api);
    let (client, _dir) = client(&api).await;
    let mut w = watcher(Api::<Service>::all(client), watcher::Config::default()).boxed();
    settle(&api, &mut w).await;
    api.drop_connections();
    api.apply(service("a", "two", "10.96.1.2"));
    assert_eq!(
        next_change(&mut w).await,
        ("apply", "a/two".into(), "10.96.1.2".into())
    );
    let requests = api.requests();
    assert_eq!(
        requests.iter().filter(|r| !r.contains("watch=")).count(),
        1,
        "{requests:#?}"
    );
    assert_eq!(
        requests.iter().filter(|r| r.contains("watch=")).count(),
        2,
        "{requests:#?}"
    );
}

#[tokio::test]
async fn failures_yield_errors_and_the_watcher_recovers() {
    let api = ApiServer::start().await;
    seed(&api);
    let (client, _dir) = client(&api).await;
    let config = watcher::Config::default();
    let mut w = watcher(Api::<Service>::all(client), config)
        .default_backoff()
        .boxed();
    settle(&api, &mut w).await;

    api.set_failing(true);
    api.drop_connections();
    let err = next(&mut w).await.expect_err("an error while failing");
    assert!(format!("{err:?}").contains("500"), "{err:?}");
    api.apply(service("a", "two", "10.96.1.2"));
    api.set_failing(false);
    assert_eq!(
        change_after_errors(&mut w).await,
        ("apply", "a/two".into(), "10.96.1.2".into())
    );
}

#[tokio::test]
async fn stop_and_restart_on_the_same_port() {
    let api = ApiServer::start().await;
    seed(&api);
    let url = api.url();
    let (client, _dir) = client(&api).await;
    let mut w = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    settle(&api, &mut w).await;

    api.stop().await;
    assert_eq!(api.watch_count(), 0);
    let err = next(&mut w).await.expect_err("nobody listens");
    assert!(format!("{err:?}").contains("ConnectionRefused"), "{err:?}");
    assert!(client.apiserver_version().await.is_err());
    api.apply(service("a", "two", "10.96.1.2"));
    api.restart().await;
    assert_eq!(api.url(), url);
    assert_eq!(
        change_after_errors(&mut w).await,
        ("apply", "a/two".into(), "10.96.1.2".into())
    );
    assert_eq!(
        client.apiserver_version().await.unwrap().git_version,
        "v1.33.0"
    );
}

#[tokio::test]
async fn a_server_without_streaming_lists_refuses_them() {
    let api = ApiServer::start().await;
    api.set_streaming_lists_supported(false);
    seed(&api);
    let (client, _dir) = client(&api).await;
    let config = watcher::Config::default().streaming_lists();
    let mut w = watcher(Api::<Service>::all(client.clone()), config).boxed();
    for _ in 0..2 {
        match next(&mut w).await {
            Err(watcher::Error::WatchStartFailed(kube::Error::Api(status))) => {
                assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
                assert!(
                    status.message.contains("WatchList feature gate"),
                    "{}",
                    status.message
                );
            }
            other => panic!("expected a refused streaming list, got {other:?}"),
        }
    }
    let requests = api.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.contains("sendInitialEvents=true")),
        "no fallback: {requests:#?}"
    );

    let mut w = watcher(Api::<Service>::all(client), watcher::Config::default()).boxed();
    assert_eq!(initial_set(&mut w).await, (seeded_keys(), 0));
}

#[tokio::test]
async fn garbage_in_a_watch_stream() {
    let api = ApiServer::start().await;
    seed(&api);
    let (client, _dir) = client(&api).await;
    let mut w = watcher(Api::<Service>::all(client), watcher::Config::default()).boxed();
    settle(&api, &mut w).await;

    api.inject_raw("/api/v1/services", "this is not JSON");
    let err = next(&mut w).await.expect_err("garbage is an error");
    assert!(
        matches!(err, watcher::Error::WatchFailed(kube::Error::SerdeError(_))),
        "{err:?}"
    );
    // kube-client drops a line that is JSON cut short ("EOF while parsing") without a word.
    api.inject_raw("services", r#"{"type":"ADDED","object":{"#);
    api.apply(service("a", "two", "10.96.1.2"));
    assert_eq!(
        next_change(&mut w).await,
        ("apply", "a/two".into(), "10.96.1.2".into())
    );
    assert_eq!(api.watch_count(), 1, "the stream survived");
}

#[tokio::test]
async fn raw_watches_bookmarks_timeouts_and_expiry() {
    let api = ApiServer::start().await;
    api.set_bookmark_interval(Duration::from_millis(100));
    seed(&api);
    let (client, _dir) = client(&api).await;
    let services = Api::<Service>::namespaced(client.clone(), "a");
    let list = services
        .list(&ListParams::default().labels("app=two"))
        .await
        .unwrap();
    assert_eq!(list.items.iter().map(key).collect::<Vec<_>>(), ["a/two"]);
    let rv = list.metadata.resource_version.unwrap();

    // From the list's version: bookmarks, our change (only namespace a), the end at the timeout.
    let wp = WatchParams::default().timeout(1);
    let mut events = services.watch(&wp, &rv).await.unwrap().boxed();
    api.apply(service("b", "four", "10.96.4.4"));
    api.apply(service("a", "three", "10.96.3.3"));
    let started = tokio::time::Instant::now();
    let (mut bookmarks, mut changes) = (0, Vec::new());
    while let Some(event) = tokio::time::timeout(WITHIN, events.next()).await.unwrap() {
        match event.unwrap() {
            WatchEvent::Bookmark(_) => bookmarks += 1,
            WatchEvent::Modified(s) => changes.push(key(&s)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "timeoutSeconds ends the stream"
    );
    assert!(bookmarks >= 3, "{bookmarks} bookmarks");
    assert_eq!(changes, ["a/three"]);

    api.apply(service("a", "one", "10.96.1.1"));
    api.compact();
    let mut events = services.watch(&wp, &rv).await.unwrap().boxed();
    match events.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
    assert!(events.next().await.is_none());

    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "one-x", "namespace": "a", "labels": {"kubernetes.io/service-name": "one"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.1"]}]});
    api.apply(slice);
    api.apply(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "b"}}),
    );
    let slices = Api::<EndpointSlice>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(slices.items[0].endpoints[0].addresses, ["10.244.0.1"]);
    let pods = Api::<Pod>::namespaced(client.clone(), "b")
        .list(&ListParams::default())
        .await;
    assert_eq!(pods.unwrap().items.len(), 1);
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await;
    assert_eq!(namespaces.unwrap().items[0].name_any(), "a");
    let by_name = ListParams::default().fields("metadata.name=five");
    let found = Api::<Service>::all(client).list(&by_name).await.unwrap();
    assert_eq!(found.items.iter().map(key).collect::<Vec<_>>(), ["b/five"]);
}

#[tokio::test]
async fn a_cut_watch_ends_without_the_final_chunk() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = ApiServer::start().await;
    seed(&api);
    let addr = api.url().trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = "GET /api/v1/namespaces/a/services?watch=true HTTP/1.1\r\nHost: emulator\r\n\r\n";
    tcp.write_all(request.as_bytes()).await.unwrap();
    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
    let read = async |tcp: &mut tokio::net::TcpStream, buf: &mut [u8]| {
        let n = tokio::time::timeout(WITHIN, tcp.read(buf))
            .await
            .expect("read in time");
        n.unwrap_or(0) // a reset is an end too
    };
    while String::from_utf8_lossy(&got).matches(r#""ADDED""#).count() < 3 {
        let n = read(&mut tcp, &mut buf).await;
        assert!(n > 0, "{}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    wait_for_watches(&api, 1).await;
    api.drop_connections();
    loop {
        let n = read(&mut tcp, &mut buf).await;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
    assert!(
        text.contains("content-type: application/json\r\n"),
        "{text}"
    );
    assert!(!text.ends_with("0\r\n\r\n"), "no final chunk: {text}");
    assert_eq!(api.watch_count(), 0);
}
