//! Credentials from files, as a service account's: a kubeconfig naming a `tokenFile` (the
//! token the kubelet projects and rotates) against an API server that serves only requests
//! bearing the current token. After a rotation (the file rewritten, the old token refused),
//! the watches pick the new token up from the file and keep following the cluster.
//!
//! The same over HTTPS with the cluster's CA is `kube_tls`; the in-cluster configuration
//! proper (the fixed service account paths, no kubeconfig) is `kube_incluster`.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use clusterdns::config::Config;
use common::apiserver::ApiServer;
use common::objects::cluster_ip;
use common::{eventually, http_get};
use hickory_proto::rr::RecordType::A;
use serde_json::json;

/// kube re-reads a token file a minute after it last read it (less ten seconds), and its
/// watches back off up to 30 s after a refusal.
const WITHIN: Duration = Duration::from_secs(120);

/// Writes `text` beside `path` and renames it over, as the kubelet swaps a projected token.
pub(crate) fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub(crate) async fn served(addr: SocketAddr, name: &str, want: &str) {
    let got = eventually(addr, name, A, WITHIN, |t| t.contains(want)).await;
    assert!(got.contains(want), "{name}: want {want} in\n{got}");
}

/// Rotated: the file holds a new token and the old one is refused from now on; the open
/// watches end, as when an API server restarts. Returns once Service `two`, created after the
/// rotation, is answered.
pub(crate) async fn rotate(api: &ApiServer, token: &Path, addr: SocketAddr) {
    replace(token, "token-two");
    api.set_token(Some("token-two"));
    api.drop_connections();
    api.apply(cluster_ip("two", "10.96.1.2"));
    served(addr, "two.a.svc.cluster.local.", "10.96.1.2").await;
}

/// clusterdns in process, following the cluster `kubeconfig` names (no forwarding).
pub(crate) async fn start(kubeconfig: &Path) -> clusterdns::app::Running {
    let config = Config::try_parse_from([
        "clusterdns",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--no-forward",
        "--lameduck",
        "0s",
        "--startup-timeout",
        "5s",
    ])
    .unwrap();
    clusterdns::app::start(&config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_file_is_picked_up_and_the_watches_go_on() {
    let api = ApiServer::start().await;
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}));
    api.apply(cluster_ip("one", "10.96.1.1"));
    api.set_token(Some("token-one"));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    // No newline after it: kube sends the file's bytes as they are (as the kubelet writes them).
    replace(&token, "token-one");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: sa\n\
             clusters: [{{name: emulator, cluster: {{server: \"{}\"}}}}]\n\
             users: [{{name: sa, user: {{tokenFile: \"{}\"}}}}]\n\
             contexts: [{{name: sa, context: {{cluster: emulator, user: sa}}}}]\n",
            api.url(),
            token.display()
        ),
    )
    .unwrap();
    let running = start(&kubeconfig).await;
    let addr = running.udp[0];
    served(addr, "one.a.svc.cluster.local.", "10.96.1.1").await;
    assert_eq!(http_get(running.metrics_addr, "/readyz").await.0, 200);
    let (with_first, refused) = api.token_checks();
    assert!(with_first > 0, "requests bore the file's token");
    assert_eq!(refused, 0, "none without it");

    rotate(&api, &token, addr).await;
    let (with_second, _) = api.token_checks();
    assert!(with_second > with_first, "requests bore the rotated token");
    assert_eq!(http_get(running.metrics_addr, "/readyz").await.0, 200);
    // And it keeps following.
    api.apply(cluster_ip("three", "10.96.1.3"));
    served(addr, "three.a.svc.cluster.local.", "10.96.1.3").await;
    running.shutdown().await;
}
