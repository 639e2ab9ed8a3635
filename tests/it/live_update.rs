//! The manifests directory is watched: answers follow file changes within a second, only the
//! changed objects are applied, and a broken file keeps its last good objects.

use crate::common;

use std::time::Duration;

use common::{TestServer, ask, eventually};
use hickory_proto::rr::RecordType::A;

const WITHIN: Duration = Duration::from_secs(3);

fn service(name: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  clusterIP: {ip}\n  ports: [{{name: http, port: 80}}]\n"
    )
}

/// `clusterdns_zone_snapshots_total`, which must be there.
fn snapshots(server: &TestServer) -> f64 {
    let text = server.running.metrics.encode();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("clusterdns_zone_snapshots_total ")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no clusterdns_zone_snapshots_total in\n{text}"))
}

async fn serial(addr: std::net::SocketAddr) -> u32 {
    let (m, _) = common::udp(
        addr,
        &common::query("cluster.local.", hickory_proto::rr::RecordType::SOA, None),
    )
    .await;
    match &m.answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("not an SOA: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_change_and_delete_files() {
    let server = TestServer::with_files(&[("a.yaml", &service("alpha", "10.96.1.1"))], &[]).await;
    let alpha = "alpha.default.svc.cluster.local.";
    let beta = "beta.default.svc.cluster.local.";
    assert!(ask(server.addr, alpha, A).await.contains("10.96.1.1"));
    assert!(ask(server.addr, beta, A).await.starts_with("NXDomain"));
    let serial0 = serial(server.addr).await;

    // Add a file.
    std::fs::write(server.path("b.yaml"), service("beta", "10.96.1.2")).unwrap();
    let got = eventually(server.addr, beta, A, WITHIN, |t| t.contains("10.96.1.2")).await;
    assert!(got.contains("10.96.1.2"), "new file served: {got}");

    // Change a file.
    std::fs::write(server.path("a.yaml"), service("alpha", "10.96.1.9")).unwrap();
    let got = eventually(server.addr, alpha, A, WITHIN, |t| t.contains("10.96.1.9")).await;
    assert!(got.contains("10.96.1.9"), "changed file served: {got}");

    // The serial rose with the changes.
    let serial1 = serial(server.addr).await;
    assert!(serial1 > serial0, "serial {serial0} -> {serial1}");

    // Delete a file.
    std::fs::remove_file(server.path("b.yaml")).unwrap();
    let got = eventually(server.addr, beta, A, WITHIN, |t| t.starts_with("NXDomain")).await;
    assert!(got.starts_with("NXDomain"), "deleted file gone: {got}");
    assert!(ask(server.addr, alpha, A).await.contains("10.96.1.9"));
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_keeps_its_last_good_objects() {
    let server = TestServer::with_files(&[("a.yaml", &service("alpha", "10.96.1.1"))], &[]).await;
    let alpha = "alpha.default.svc.cluster.local.";
    let snap0 = snapshots(&server);

    // Invalid YAML: nothing changes. A file written after it is served once a scan has read
    // both (a fixed sleep would pass as well before any scan).
    std::fs::write(
        server.path("a.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: alpha\n",
    )
    .unwrap();
    std::fs::write(server.path(".scan"), service("scan", "10.96.1.250")).unwrap();
    std::fs::rename(server.path(".scan"), server.path("scan.yaml")).unwrap();
    let got = eventually(
        server.addr,
        "scan.default.svc.cluster.local.",
        A,
        WITHIN,
        |t| t.contains("10.96.1.250"),
    )
    .await;
    assert!(got.contains("10.96.1.250"), "the scan file served: {got}");
    assert!(ask(server.addr, alpha, A).await.contains("10.96.1.1"));
    assert_eq!(
        snapshots(&server),
        snap0 + 1.0,
        "one new snapshot, the scan file's: none for the broken file"
    );

    // A bad field in one object: that object keeps its last good version, the others load.
    let bad = format!(
        "{}---\n{}",
        service("alpha", "not-an-ip"),
        service("gamma", "10.96.1.3")
    );
    std::fs::write(server.path("a.yaml"), bad).unwrap();
    let got = eventually(
        server.addr,
        "gamma.default.svc.cluster.local.",
        A,
        WITHIN,
        |t| t.contains("10.96.1.3"),
    )
    .await;
    assert!(
        got.contains("10.96.1.3"),
        "good object of the file loads: {got}"
    );
    assert!(
        ask(server.addr, alpha, A).await.contains("10.96.1.1"),
        "bad object keeps last good version"
    );

    // Fixed again.
    std::fs::write(server.path("a.yaml"), service("alpha", "10.96.1.7")).unwrap();
    let got = eventually(server.addr, alpha, A, WITHIN, |t| t.contains("10.96.1.7")).await;
    assert!(got.contains("10.96.1.7"));
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_shares_every_untouched_service() {
    let mut files = Vec::new();
    for i in 0..50 {
        files.push((
            format!("s{i}.yaml"),
            service(&format!("svc{i}"), &format!("10.96.2.{}", i + 1)),
        ));
    }
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let server = TestServer::with_files(&borrowed, &[]).await;
    let before = server.running.snapshot();
    std::fs::write(server.path("s7.yaml"), service("svc7", "10.96.3.7")).unwrap();
    let got = eventually(
        server.addr,
        "svc7.default.svc.cluster.local.",
        A,
        WITHIN,
        |t| t.contains("10.96.3.7"),
    )
    .await;
    assert!(got.contains("10.96.3.7"));
    let after = server.running.snapshot();
    let mut shared = 0;
    for i in 0..50 {
        let key = clusterdns::zone::ServiceKey::new("default", &format!("svc{i}"));
        let (a, b) = (
            before.services.get_key(&key).unwrap(),
            after.services.get_key(&key).unwrap(),
        );
        if std::sync::Arc::ptr_eq(a, b) {
            shared += 1;
        }
    }
    assert_eq!(shared, 49, "only the changed Service was rebuilt");
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_and_slices_drive_endpoints() {
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: hl, namespace: default}\nspec:\n  clusterIP: None\n  selector: {app: hl}\n  ports: [{name: http, port: 80}]\n";
    let pod = |ready: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: hl-0, namespace: default, labels: {{app: hl}}}}\nspec:\n  containers: [{{name: c, image: x}}]\nstatus:\n  podIP: 10.244.0.5\n  conditions: [{{type: Ready, status: \"{ready}\"}}]\n"
        )
    };
    let server =
        TestServer::with_files(&[("svc.yaml", svc), ("pod.yaml", &pod("False"))], &[]).await;
    let name = "hl.default.svc.cluster.local.";
    assert!(
        ask(server.addr, name, A).await.starts_with("NXDomain"),
        "no ready endpoint"
    );

    std::fs::write(server.path("pod.yaml"), pod("True")).unwrap();
    let got = eventually(server.addr, name, A, WITHIN, |t| t.contains("10.244.0.5")).await;
    assert!(got.contains("10.244.0.5"), "pod became ready: {got}");

    // An EndpointSlice takes over from the selector.
    let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: hl-x, namespace: default, labels: {kubernetes.io/service-name: hl}}\naddressType: IPv4\nendpoints: [{addresses: [10.244.0.9]}]\nports: [{name: http, port: 8080}]\n";
    std::fs::write(server.path("slice.yaml"), slice).unwrap();
    let got = eventually(server.addr, name, A, WITHIN, |t| {
        t.contains("10.244.0.9") && !t.contains("10.244.0.5")
    })
    .await;
    assert!(
        got.contains("10.244.0.9") && !got.contains("10.244.0.5"),
        "slice endpoints: {got}"
    );
    server.running.shutdown().await;
}
