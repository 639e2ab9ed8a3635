//! `--labels SELECTOR`: only matching Services are served, from manifests (filtered while
//! reading) and from the API (filtered by the server's list/watch), over real sockets.

use crate::common;

use std::time::Duration;

use clap::Parser;
use clusterdns::config::Config;
use common::apiserver::ApiServer;
use common::{TestServer, ask, eventually};
use hickory_proto::rr::RecordType::A;
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(10);

fn service_yaml(name: &str, ip: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: shop\n  labels: {labels}\nspec:\n  clusterIP: {ip}\n  ports:\n    - name: http\n      port: 80\n---\n"
    )
}

const SELECTOR: &str = "tier in (web,api),env!=dev,!legacy";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_serve_only_matching_services() {
    let mut text = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n");
    text += &service_yaml("web", "10.96.0.1", "{tier: web, env: prod}");
    text += &service_yaml("api", "10.96.0.2", "{tier: api}");
    text += &service_yaml("dev", "10.96.0.3", "{tier: web, env: dev}");
    text += &service_yaml("old", "10.96.0.4", "{tier: web, legacy: \"true\"}");
    text += &service_yaml("db", "10.96.0.5", "{tier: db}");
    text += &service_yaml("bare", "10.96.0.6", "{}");
    let server = TestServer::with_files(&[("shop.yaml", &text)], &["--labels", SELECTOR]).await;
    for (name, ip) in [("web", "10.96.0.1"), ("api", "10.96.0.2")] {
        let got = ask(server.addr, &format!("{name}.shop.svc.cluster.local."), A).await;
        assert!(got.starts_with("NoError aa"), "{name}: {got}");
        assert!(got.contains(&format!("IN A {ip}")), "{name}: {got}");
    }
    for name in ["dev", "old", "db", "bare"] {
        let got = ask(server.addr, &format!("{name}.shop.svc.cluster.local."), A).await;
        assert!(
            got.starts_with("NXDomain aa"),
            "{name} is filtered out: {got}"
        );
    }

    // Relabelling moves a Service in and out.
    let mut text = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n");
    text += &service_yaml("web", "10.96.0.1", "{tier: web, env: dev}");
    text += &service_yaml("db", "10.96.0.5", "{tier: api}");
    std::fs::write(server.path("shop.yaml"), text).unwrap();
    let got = eventually(server.addr, "db.shop.svc.cluster.local.", A, WITHIN, |t| {
        t.contains("10.96.0.5")
    })
    .await;
    assert!(got.contains("IN A 10.96.0.5"), "db now matches: {got}");
    let got = eventually(server.addr, "web.shop.svc.cluster.local.", A, WITHIN, |t| {
        t.starts_with("NXDomain")
    })
    .await;
    assert!(
        got.starts_with("NXDomain aa"),
        "web no longer matches: {got}"
    );
}

#[test]
fn bad_selectors_are_refused_with_the_reason() {
    for (bad, why) in [
        ("tier in web", "parenthesised"),
        ("tier=", ""),
        ("=web", "missing label key"),
        ("tier=a b", "label value"),
    ] {
        let r = Config::try_parse_from(["clusterdns", "--labels", bad]);
        if why.is_empty() {
            assert!(r.is_ok(), "{bad:?} is valid (empty value)");
            continue;
        }
        let err = r.expect_err(bad).to_string();
        assert!(
            err.contains("--labels") && err.contains(why),
            "{bad:?}: {err}"
        );
    }
}

fn service(name: &str, ip: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "shop", "labels": labels},
           "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_filters_services() {
    let api = ApiServer::start().await;
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    api.apply(service("web", "10.96.0.1", json!({"tier": "web"})));
    api.apply(service("db", "10.96.0.5", json!({"tier": "db"})));
    let server = TestServer::kube(&api, &["--labels", SELECTOR]).await;
    let (dns, addr) = (server.running, server.addr);
    let got = eventually(addr, "web.shop.svc.cluster.local.", A, WITHIN, |t| {
        t.contains("10.96.0.1")
    })
    .await;
    assert!(got.contains("IN A 10.96.0.1"), "{got}");
    let got = ask(addr, "db.shop.svc.cluster.local.", A).await;
    assert!(got.starts_with("NXDomain aa"), "db is filtered out: {got}");

    // The selector went to the server, on the Services list/watch only.
    let requests = api.requests();
    let services: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("/services"))
        .collect();
    assert!(!services.is_empty());
    assert!(
        services.iter().all(|r| r.contains("labelSelector=")),
        "{services:?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.contains("/endpointslices"))
            .all(|r| !r.contains("labelSelector=")),
        "{requests:?}"
    );

    // A label change that makes a Service match reaches DNS through the watch (the server
    // sends it as ADDED), and one that stops matching as DELETED.
    api.apply(service("db", "10.96.0.5", json!({"tier": "api"})));
    api.apply(service(
        "web",
        "10.96.0.1",
        json!({"tier": "web", "env": "dev"}),
    ));
    let got = eventually(addr, "db.shop.svc.cluster.local.", A, WITHIN, |t| {
        t.contains("10.96.0.5")
    })
    .await;
    assert!(got.contains("IN A 10.96.0.5"), "{got}");
    let got = eventually(addr, "web.shop.svc.cluster.local.", A, WITHIN, |t| {
        t.starts_with("NXDomain")
    })
    .await;
    assert!(got.starts_with("NXDomain aa"), "{got}");
    dns.shutdown().await;
}
