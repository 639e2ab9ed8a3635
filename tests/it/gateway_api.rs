//! Gateway API hostnames under `--external-zone` (`--external-resources` naming Gateway,
//! HTTPRoute, GRPCRoute, TLSRoute): route hostnames through the Gateways that accepted them,
//! listener hostnames, wildcards and the precedence over Ingress hosts, over real sockets,
//! from manifests and from the API alike.

use crate::common;
use crate::multicluster::apply_yaml;

use std::path::Path;
use std::time::Duration;

use common::apiserver::ApiServer;
use common::{TestServer, ask, eventually};
use hickory_proto::rr::RecordType::{self, A, AAAA};

const FLAGS: [&str; 4] = [
    "--external-zone",
    "example.com",
    "--external-resources",
    "Service,Ingress,Gateway,HTTPRoute,GRPCRoute,TLSRoute",
];

fn example() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gateway/gateway.yaml");
    std::fs::read_to_string(path).unwrap()
}

const SOA_LINE: &str = ";authority example.com. 30 IN SOA ns1.dns.example.com. hostmaster.example.com. SERIAL 7200 1800 86400 30";

/// (query, type, answer lines; `NODATA`/`NXDOMAIN`: the negative answer with the SOA).
const TABLE: &[(&str, RecordType, &str)] = &[
    // An exact route hostname, also an Ingress host: both answer.
    (
        "store.example.com.",
        A,
        ";answer store.example.com. 30 IN A 198.51.100.4\n;answer store.example.com. 30 IN A 192.0.2.10",
    ),
    (
        "store.example.com.",
        AAAA,
        ";answer store.example.com. 30 IN AAAA 2001:db8::10",
    ),
    // A wildcard route hostname, one label down and two.
    (
        "x.shop.example.com.",
        A,
        ";answer x.shop.example.com. 30 IN A 192.0.2.10",
    ),
    (
        "a.b.shop.example.com.",
        A,
        ";answer a.b.shop.example.com. 30 IN A 192.0.2.10",
    ),
    // The wildcard's parent exists, without data.
    ("shop.example.com.", A, "NODATA"),
    // An exact name beats the wildcard above it.
    (
        "special.shop.example.com.",
        A,
        ";answer special.shop.example.com. 30 IN CNAME gw.lb.example.net.",
    ),
    // A listener's wildcard hostname.
    (
        "web.apps.example.com.",
        A,
        ";answer web.apps.example.com. 30 IN A 192.0.2.10",
    ),
    // The most specific wildcard wins: a route's under a listener's.
    (
        "a.img.cdn.example.com.",
        A,
        ";answer a.img.cdn.example.com. 30 IN A 192.0.2.10",
    ),
    (
        "a.cdn.example.com.",
        A,
        ";answer a.cdn.example.com. 30 IN CNAME gw.lb.example.net.",
    ),
    // GRPCRoute through a Gateway with a Hostname address; TLSRoute.
    (
        "rpc.example.com.",
        A,
        ";answer rpc.example.com. 30 IN CNAME gw.lb.example.net.",
    ),
    (
        "tls.example.com.",
        A,
        ";answer tls.example.com. 30 IN A 192.0.2.10",
    ),
    // Not accepted by its Gateway; a Gateway without an address (route and listener).
    ("rejected.example.com.", A, "NXDOMAIN"),
    ("noaddr.example.com.", A, "NXDOMAIN"),
    ("bare.example.com.", A, "NXDOMAIN"),
    ("nope.example.com.", A, "NXDOMAIN"),
];

fn expected(want: &str) -> String {
    match want {
        "NODATA" => format!("NoError aa\n{SOA_LINE}"),
        "NXDOMAIN" => format!("NXDomain aa\n{SOA_LINE}"),
        w => format!("NoError aa\n{w}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_and_listener_hostnames_from_manifests_and_from_the_api() {
    let yaml = example();
    let m = TestServer::with_files(&[("gateway.yaml", &yaml)], &FLAGS).await;
    for (name, qtype, want) in TABLE {
        let got = ask(m.addr, name, *qtype).await;
        assert_eq!(got, expected(want), "{name} {qtype}");
    }

    let api = ApiServer::start().await;
    apply_yaml(&api, &yaml);
    let k = TestServer::kube(&api, &FLAGS).await;
    for path in ["gateways", "httproutes", "grpcroutes"] {
        let prefix = format!("/apis/gateway.networking.k8s.io/v1/{path}");
        assert!(
            api.requests().iter().any(|r| r.starts_with(&prefix)),
            "{path} watched: {:?}",
            api.requests()
        );
    }
    for (name, qtype, _) in TABLE {
        let from_manifests = ask(m.addr, name, *qtype).await;
        let from_api = ask(k.addr, name, *qtype).await;
        assert_eq!(from_api, from_manifests, "{name} {qtype}");
    }

    // The route is deleted: its names go, the Ingress keeps its own.
    assert!(api.delete("gateway.networking.k8s.io/v1", "HTTPRoute", "shop", "store"));
    let within = Duration::from_secs(10);
    let got = eventually(k.addr, "x.shop.example.com.", A, within, |t| {
        t.starts_with("NXDomain")
    })
    .await;
    assert_eq!(got, expected("NXDOMAIN"));
    let got = ask(k.addr, "store.example.com.", A).await;
    assert_eq!(
        got,
        expected(";answer store.example.com. 30 IN A 198.51.100.4")
    );
    // The rejected route is accepted: it appears.
    let mut accepted: serde_json::Value = serde_yaml_ng::Deserializer::from_str(&yaml)
        .map(|d| <serde_json::Value as serde::Deserialize>::deserialize(d).unwrap())
        .find(|v| v["metadata"]["name"] == "rejected")
        .unwrap();
    accepted["status"]["parents"][0]["conditions"][0]["status"] = "True".into();
    api.apply(accepted);
    let got = eventually(k.addr, "rejected.example.com.", A, within, |t| {
        t.contains("192.0.2.10")
    })
    .await;
    assert_eq!(
        got,
        expected(";answer rejected.example.com. 30 IN A 192.0.2.10")
    );
    m.running.shutdown().await;
    k.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_are_served_only_when_listed() {
    // The default --external-resources: Services and Ingresses only.
    let s = TestServer::with_files(&[("gateway.yaml", &example())], &FLAGS[..2]).await;
    let got = ask(s.addr, "store.example.com.", A).await;
    assert_eq!(
        got,
        expected(";answer store.example.com. 30 IN A 198.51.100.4")
    );
    for name in [
        "x.shop.example.com.",
        "web.apps.example.com.",
        "tls.example.com.",
    ] {
        assert_eq!(ask(s.addr, name, A).await, expected("NXDOMAIN"), "{name}");
    }
}
