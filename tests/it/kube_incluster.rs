//! The in-cluster configuration as a pod has it: no `--kubeconfig`, `KUBERNETES_SERVICE_HOST`
//! and `KUBERNETES_SERVICE_PORT` naming the API server (HTTPS), and the service account's
//! `token`, `ca.crt` and `namespace` at the fixed path `/var/run/secrets/kubernetes.io/
//! serviceaccount/`, as the kubelet projects them (symlinks through `..data`, swapped whole
//! on rotation).
//!
//! The binary runs in a mount namespace of its own (`unshare --mount`) where a directory of
//! the test is bind-mounted over that path; when the path is not there, a tmpfs over
//! `/var/run` in that namespace holds it, so nothing is created on the machine. Without root
//! (or where `unshare --mount` is refused) these tests say so and pass.

use crate::common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::apiserver::ApiServer;
use common::binary::Binary;
use common::objects::{cluster_ip, namespace};
use common::process::SpawnGated;
use common::tls::HttpsApi;

/// kube re-reads the token file a minute after it last read it (less ten seconds).
const WITHIN: Duration = Duration::from_secs(120);

const SA: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// `$1` bind-mounted over the service account path, then the rest executed.
const MOUNT_AND_EXEC: &str = r#"set -e
sa=/var/run/secrets/kubernetes.io/serviceaccount
if [ ! -d "$sa" ]; then
    mount -t tmpfs clusterdns-test /var/run
    mkdir -p "$sa"
fi
mount --bind "$1" "$sa"
shift
exec "$@"
"#;

/// Why the tests cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    match Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .output_gated()
    {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "unshare --mount refused: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("no unshare: {e}")),
    }
}

/// A service account directory as the kubelet's atomic writer keeps it: the files in a
/// timestamped directory, `..data` a symlink to it, each name a symlink through `..data`;
/// an update writes a new directory and renames a new `..data` over the old one.
struct Projected {
    dir: tempfile::TempDir,
    generation: u32,
}

impl Projected {
    fn new(token: &str, ca: &Path, ns: &str) -> Projected {
        let mut p = Projected {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
        };
        p.write(token, ca, ns);
        for name in ["token", "ca.crt", "namespace"] {
            symlink(format!("..data/{name}"), p.dir.path().join(name)).unwrap();
        }
        p
    }

    fn write(&mut self, token: &str, ca: &Path, ns: &str) {
        let old = format!("..2026_01_01_00_00_00.{}", self.generation);
        self.generation += 1;
        let new = format!("..2026_01_01_00_00_00.{}", self.generation);
        let root = self.dir.path();
        std::fs::create_dir(root.join(&new)).unwrap();
        std::fs::write(root.join(&new).join("token"), token).unwrap();
        std::fs::copy(ca, root.join(&new).join("ca.crt")).unwrap();
        std::fs::write(root.join(&new).join("namespace"), ns).unwrap();
        symlink(&new, root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        let _ = std::fs::remove_dir_all(root.join(old));
    }
}

/// The binary with no kubeconfig, in a pod's environment: `sa` at the service account path,
/// the API server at 127.0.0.1:`port`, `HOME` empty, `KUBECONFIG` as `kubeconfig` says.
fn in_pod(sa: &Projected, port: u16, kubeconfig: Option<&Path>) -> (Binary, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let b = Binary::start(&[], |argv| {
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c"])
            .args([MOUNT_AND_EXEC, "sh"])
            .arg(sa.dir.path())
            .args(argv)
            .env_remove("KUBECONFIG")
            .env("HOME", home.path())
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", port.to_string());
        if let Some(kc) = kubeconfig {
            c.env("KUBECONFIG", kc);
        }
        c
    });
    (b, home)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_pod_the_service_account_token_and_ca_are_used_and_rotated() {
    if let Some(why) = unavailable() {
        eprintln!("{why}: the in-cluster tests need a mount namespace over {SA}; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let https = HttpsApi::serving_one(dir.path(), "token-one").await;
    let api = &https.api;
    let mut sa = Projected::new("token-one", &https.pki.ca_file, "a");
    let (mut b, _home) = in_pod(&sa, https.front.addr.port(), None);
    b.served("one.a.svc.cluster.local.", "10.96.1.1", WITHIN)
        .await;
    assert_eq!(b.readyz().await, Some(200), "ready: {}", b.log());
    let (with_first, refused) = api.token_checks();
    assert!(with_first > 0, "requests bore the service account's token");
    assert_eq!(refused, 0, "none without it");

    // The kubelet rotates the token: a new `..data`, the old token refused from now on.
    sa.write("token-two", &https.pki.ca_file, "a");
    api.set_token(Some("token-two"));
    api.drop_connections();
    api.apply(cluster_ip("two", "10.96.1.2"));
    b.served("two.a.svc.cluster.local.", "10.96.1.2", WITHIN)
        .await;
    let (with_second, refused) = api.token_checks();
    assert!(with_second > with_first, "requests bore the rotated token");
    assert!(
        refused > 0,
        "the old token was refused before the new one was read"
    );
    api.apply(cluster_ip("three", "10.96.1.3"));
    b.served("three.a.svc.cluster.local.", "10.96.1.3", WITHIN)
        .await;
    assert_eq!(b.readyz().await, Some(200), "still ready: {}", b.log());
    b.assert_running();
    assert!(!b.log().contains("panicked"), "{}", b.log());
}

/// In a pod, the service account comes first (as `--help` says): a `KUBECONFIG` in the
/// environment (an image's, another tool's) is not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_pod_the_service_account_comes_before_kubeconfig() {
    if let Some(why) = unavailable() {
        eprintln!("{why}: the in-cluster tests need a mount namespace over {SA}; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let https = HttpsApi::start(dir.path()).await;
    https.api.apply(namespace("a"));
    https.api.apply(cluster_ip("one", "10.96.1.1"));
    https.api.set_token(Some("token-one"));
    let elsewhere = ApiServer::start().await;
    elsewhere.apply(namespace("a"));
    elsewhere.apply(cluster_ip("one", "10.96.9.9"));
    let kubeconfig = elsewhere.write_kubeconfig(dir.path());
    let sa = Projected::new("token-one", &https.pki.ca_file, "a");
    let (mut b, _home) = in_pod(&sa, https.front.addr.port(), Some(&kubeconfig));
    let got = b
        .until("one.a.svc.cluster.local.", WITHIN, |t| {
            t.contains(";answer")
        })
        .await;
    assert!(
        got.contains("10.96.1.1"),
        "the API server of the pod: {got}"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the kubeconfig's server was asked: {:?}",
        elsewhere.requests()
    );
}
