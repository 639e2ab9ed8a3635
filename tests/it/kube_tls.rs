//! The API server over HTTPS, with a service account's credentials named by a kubeconfig:
//! `certificate-authority` (the cluster's CA, which signed the server's certificate for
//! 127.0.0.1) and `tokenFile` (the token the kubelet projects and rotates). clusterdns syncs
//! and follows the cluster, picks a rotated token up from the file, and refuses a server
//! whose certificate the CA did not sign: unready, the certificate error logged, no answers
//! from the cluster, no request sent.
//!
//! The in-cluster configuration proper (no kubeconfig, the fixed service account paths) is
//! `kube_incluster`; a kind refused with 401 or 403 is `kube_refused`.

use crate::common;
use crate::kube_auth::{replace, rotate, served, start};

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::binary::Binary;
use common::http_get;
use common::objects::{cluster_ip, namespace};
use common::tls::{HttpsApi, TestPki};

/// kube re-reads a token file a minute after it last read it (less ten seconds); its
/// watches back off after a refusal.
const WITHIN: Duration = Duration::from_secs(120);

/// Writes `dir/kubeconfig`: `server`, trusting `ca`, authenticating with the token in `token`.
fn kubeconfig(dir: &Path, server: &str, ca: &Path, token: &Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: sa\n\
         clusters: [{{name: c, cluster: {{server: \"{server}\", certificate-authority: \"{}\"}}}}]\n\
         users: [{{name: sa, user: {{tokenFile: \"{}\"}}}}]\n\
         contexts: [{{name: sa, context: {{cluster: c, user: sa, namespace: a}}}}]\n",
        ca.display(),
        token.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_ca_and_a_token_file_syncs_and_follows_a_token_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let https = HttpsApi::serving_one(dir.path(), "token-one").await;
    let api = &https.api;
    let token = dir.path().join("token");
    replace(&token, "token-one");
    let kc = kubeconfig(dir.path(), &https.url(), &https.pki.ca_file, &token);
    let running = start(&kc).await;
    let addr = running.udp[0];
    served(addr, "one.a.svc.cluster.local.", "10.96.1.1").await;
    assert_eq!(http_get(running.metrics_addr, "/readyz").await.0, 200);
    let (with_first, refused) = api.token_checks();
    assert!(with_first > 0, "requests over TLS bore the file's token");
    assert_eq!(refused, 0, "none without it");

    rotate(api, &token, addr).await;
    let (with_second, refused) = api.token_checks();
    assert!(with_second > with_first, "requests bore the rotated token");
    assert!(
        refused > 0,
        "the old token was refused before the new one was read"
    );
    assert_eq!(http_get(running.metrics_addr, "/readyz").await.0, 200);
    // And it keeps following.
    api.apply(cluster_ip("three", "10.96.1.3"));
    served(addr, "three.a.svc.cluster.local.", "10.96.1.3").await;
    running.shutdown().await;
}

/// A CA that did not sign the server's certificate (another cluster's, a stale ca.crt): no
/// request reaches the server, the binary keeps running unready, answers SERVFAIL for the
/// cluster's names, and logs the certificate error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_the_ca_did_not_sign_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("server")).unwrap();
    std::fs::create_dir(dir.path().join("other")).unwrap();
    let https = HttpsApi::start(&dir.path().join("server")).await;
    let other = TestPki::new(&dir.path().join("other"), "127.0.0.1");
    https.api.apply(namespace("a"));
    https.api.apply(cluster_ip("one", "10.96.1.1"));
    let token = dir.path().join("token");
    replace(&token, "token-one");
    let kc = kubeconfig(dir.path(), &https.url(), &other.ca_file, &token);
    let mut b = Binary::plain(&["--kubeconfig", kc.to_str().unwrap()]);

    let deadline = tokio::time::Instant::now() + WITHIN;
    while !(b.log().lines()).any(|l| l.contains("watch failed") && l.contains("certificate")) {
        b.assert_running();
        let log = b.log();
        assert!(
            tokio::time::Instant::now() < deadline,
            "the certificate error logged within {WITHIN:?}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Serving (after --startup-timeout), but nothing from the cluster.
    let answer = b
        .until("one.a.svc.cluster.local.", WITHIN, |t| !t.is_empty())
        .await;
    assert!(
        answer.starts_with("ServFail"),
        "SERVFAIL unsynced: {answer}"
    );
    assert!(!answer.contains(";answer"), "no answer: {answer}");
    assert_eq!(b.readyz().await, Some(503), "not ready: {}", b.log());
    assert!(
        https.api.requests().is_empty(),
        "no request got past TLS: {:?}",
        https.api.requests()
    );
    b.assert_running();
    assert!(!b.log().contains("panicked"), "{}", b.log());
}
