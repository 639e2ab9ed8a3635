//! One watched kind refused by the API server (401 or 403, as with a ClusterRole missing a
//! resource): the other kinds keep being served and followed, the refusal is counted per kind
//! and logged, readiness tells whether everything was ever synced, and the kind is picked up
//! once the API lets it through.

use crate::common;

use common::objects::{cluster_ip, headless, namespace, slice};

use std::time::Duration;

use common::apiserver::ApiServer;
use common::{TestServer, ask, eventually, http_get};
use hickory_proto::rr::RecordType::A;

/// Long enough for kube's default backoff (exponential, capped at 30 s) to come round again.
const WITHIN: Duration = Duration::from_secs(45);

/// The sum of the samples of `series` (a labelled family: `series` ends before the value).
fn restarts(s: &TestServer, kind: &str) -> Option<f64> {
    let text = s.running.metrics.encode();
    let series = format!("clusterdns_kubernetes_watch_restarts_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str())?.parse().ok())
}

async fn served(s: &TestServer, name: &str, want: &str) {
    let got = eventually(s.addr, name, A, WITHIN, |t| t.contains(want)).await;
    assert!(got.contains(want), "{name}: want {want} in\n{got}");
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Refused from the start: the server still starts (after `--startup-timeout`) and serves
/// what the other kinds give, but is not ready until the refused kind has been listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_refused_from_the_start_keeps_the_server_unready() {
    for code in [403, 401] {
        let api = ApiServer::start().await;
        api.apply(namespace("a"));
        api.apply(cluster_ip("one", "10.96.1.1"));
        api.apply(headless("db"));
        api.apply(slice("db-1", "db", &["10.244.0.1"]));
        api.set_refused("endpointslices", Some(code));
        let s = TestServer::kube(&api, &["--startup-timeout", "2s"]).await;
        served(&s, "one.a.svc.cluster.local.", "10.96.1.1").await;
        until("the refusals counted", || {
            restarts(&s, "EndpointSlice").is_some_and(|n| n >= 1.0)
        })
        .await;
        let (status, body) = http_get(s.running.metrics_addr, "/readyz").await;
        assert_eq!(
            status, 503,
            "{code}: not ready while a kind was never listed: {body}"
        );
        // The other kinds are followed meanwhile.
        api.apply(cluster_ip("two", "10.96.1.2"));
        served(&s, "two.a.svc.cluster.local.", "10.96.1.2").await;

        // Allowed again: listed, served, ready.
        api.set_refused("endpointslices", None);
        served(&s, "db.a.svc.cluster.local.", "10.244.0.1").await;
        let deadline = tokio::time::Instant::now() + WITHIN;
        while http_get(s.running.metrics_addr, "/readyz").await.0 != 200 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{code}: ready once listed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.running.shutdown().await;
    }
}

/// Refused once synced (the ClusterRole edited under a running server): the kind's last state
/// stays, the other kinds keep being followed, readiness stays, the refusals are counted, and
/// changes to the kind come through once it is allowed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_refused_after_sync_keeps_its_last_state_and_the_others_flow() {
    let api = ApiServer::start().await;
    api.apply(namespace("a"));
    api.apply(cluster_ip("one", "10.96.1.1"));
    api.apply(headless("db"));
    api.apply(slice("db-1", "db", &["10.244.0.1"]));
    let s = TestServer::kube(&api, &["--startup-timeout", "5s"]).await;
    served(&s, "db.a.svc.cluster.local.", "10.244.0.1").await;
    assert_eq!(http_get(s.running.metrics_addr, "/readyz").await.0, 200);
    let before = restarts(&s, "EndpointSlice").unwrap_or(0.0);

    api.set_refused("endpointslices", Some(403));
    // The open watch ends (an API server re-checks authorization on a new request).
    api.drop_connections();
    until("the refusals counted", || {
        restarts(&s, "EndpointSlice").is_some_and(|n| n > before)
    })
    .await;
    api.apply(slice("db-1", "db", &["10.244.0.2"]));
    api.apply(cluster_ip("two", "10.96.1.2"));
    served(&s, "two.a.svc.cluster.local.", "10.96.1.2").await;
    assert!(
        ask(s.addr, "db.a.svc.cluster.local.", A)
            .await
            .contains("10.244.0.1"),
        "the refused kind's last state stays"
    );
    assert_eq!(
        http_get(s.running.metrics_addr, "/readyz").await.0,
        200,
        "readiness stays once reached"
    );

    api.set_refused("endpointslices", None);
    served(&s, "db.a.svc.cluster.local.", "10.244.0.2").await;
    s.running.shutdown().await;
}
