//! `--external-zone`: Services' load balancer and external addresses and Ingress hosts under
//! an external zone, answered authoritatively over real sockets, from manifests and from the
//! API (an Ingress's status update becomes visible).

use crate::common;

use std::time::Duration;

use clap::Parser;
use clusterdns::config::Config;
use common::apiserver::ApiServer;
use common::{TestServer, ask, eventually, query, tcp, zone_text};
use hickory_proto::rr::RecordType::{A, AAAA, CNAME, MX, NS, SOA, SRV, TXT};
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(10);

const EDGE: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.1
  externalIPs: [192.0.2.7]
  ports:
    - {name: https, port: 443, protocol: TCP}
    - {name: dns, port: 53, protocol: UDP}
status:
  loadBalancer:
    ingress:
      - ip: 203.0.113.10
      - ip: 2001:db8::10
---
apiVersion: v1
kind: Service
metadata:
  name: aws
  namespace: shop
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.2
  ports:
    - {name: http, port: 80}
status:
  loadBalancer:
    ingress:
      - hostname: abc123.elb.example.net
---
apiVersion: v1
kind: Service
metadata:
  name: internal
  namespace: shop
spec:
  clusterIP: 10.96.0.3
  ports:
    - {name: http, port: 80}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  ports:
    - {name: dns, port: 53, protocol: UDP}
status:
  loadBalancer:
    ingress:
      - ip: 203.0.113.53
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: store
  namespace: shop
spec:
  rules:
    - host: store.example.com
    - host: api.v2.Example.COM
    - host: store.other.org
    - host: "*.wild.example.com"
status:
  loadBalancer:
    ingress:
      - ip: 198.51.100.4
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: cdn
  namespace: shop
spec:
  rules:
    - host: cdn.example.com
status:
  loadBalancer:
    ingress:
      - hostname: lb.cdn.example.net
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: pending
  namespace: shop
spec:
  rules:
    - host: pending.example.com
"#;

async fn edge() -> TestServer {
    TestServer::with_files(&[("edge.yaml", EDGE)], &["--external-zone", "example.com"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_answer_under_the_external_zone() {
    let s = edge().await;
    let table = [
        (
            "web.shop.example.com.",
            A,
            "NoError aa\n;answer web.shop.example.com. 30 IN A 192.0.2.7\n;answer web.shop.example.com. 30 IN A 203.0.113.10",
        ),
        (
            "WEB.Shop.Example.Com.",
            AAAA,
            "NoError aa\n;answer WEB.Shop.Example.Com. 30 IN AAAA 2001:db8::10",
        ),
        (
            "_https._tcp.web.shop.example.com.",
            SRV,
            "NoError aa\n;answer _https._tcp.web.shop.example.com. 30 IN SRV 0 100 443 web.shop.example.com.\n;additional web.shop.example.com. 30 IN A 192.0.2.7\n;additional web.shop.example.com. 30 IN A 203.0.113.10\n;additional web.shop.example.com. 30 IN AAAA 2001:db8::10",
        ),
        (
            "web.shop.example.com.",
            SRV,
            "NoError aa\n;answer web.shop.example.com. 30 IN SRV 0 50 443 web.shop.example.com.\n;answer web.shop.example.com. 30 IN SRV 0 50 53 web.shop.example.com.",
        ),
        (
            "aws.shop.example.com.",
            CNAME,
            "NoError aa\n;answer aws.shop.example.com. 30 IN CNAME abc123.elb.example.net.",
        ),
        (
            "_http._tcp.aws.shop.example.com.",
            SRV,
            "NoError aa\n;answer _http._tcp.aws.shop.example.com. 30 IN SRV 0 100 80 abc123.elb.example.net.",
        ),
        (
            "example.com.",
            NS,
            "NoError aa\n;answer example.com. 30 IN NS ns1.dns.example.com.\n;additional ns1.dns.example.com. 30 IN A 203.0.113.53",
        ),
        (
            "ns1.dns.example.com.",
            A,
            "NoError aa\n;answer ns1.dns.example.com. 30 IN A 203.0.113.53",
        ),
    ];
    for (name, qtype, want) in table {
        let got = ask(s.addr, name, qtype).await;
        assert!(
            got.starts_with(want),
            "{name} {qtype}:\n{got}\nwant\n{want}"
        );
    }
    let got = ask(s.addr, "example.com.", SOA).await;
    assert!(
        got.starts_with("NoError aa\n;answer example.com. 30 IN SOA ns1.dns.example.com. hostmaster.example.com. SERIAL 7200 1800 86400 30"),
        "{got}"
    );
    // Over TCP too.
    let got = zone_text(&tcp(s.addr, &query("web.shop.example.com.", A, None)).await);
    assert!(got.contains("IN A 203.0.113.10"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_hosts_answer_with_their_load_balancer() {
    let s = edge().await;
    let table = [
        (
            "store.example.com.",
            A,
            "NoError aa\n;answer store.example.com. 30 IN A 198.51.100.4",
        ),
        (
            "api.v2.example.com.",
            A,
            "NoError aa\n;answer api.v2.example.com. 30 IN A 198.51.100.4",
        ),
        (
            "cdn.example.com.",
            CNAME,
            "NoError aa\n;answer cdn.example.com. 30 IN CNAME lb.cdn.example.net.",
        ),
    ];
    for (name, qtype, want) in table {
        let got = ask(s.addr, name, qtype).await;
        assert!(
            got.starts_with(want),
            "{name} {qtype}:\n{got}\nwant\n{want}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_answers_are_authoritative_with_the_soa() {
    let s = edge().await;
    let soa =
        ";authority example.com. 30 IN SOA ns1.dns.example.com. hostmaster.example.com. SERIAL";
    let table = [
        // Names that exist with other data, or only as parents of names: NODATA.
        ("web.shop.example.com.", MX, "NoError aa"),
        ("store.example.com.", AAAA, "NoError aa"),
        ("v2.example.com.", A, "NoError aa"),
        ("shop.example.com.", A, "NoError aa"),
        ("_tcp.web.shop.example.com.", SRV, "NoError aa"),
        ("_https._tcp.web.shop.example.com.", A, "NoError aa"),
        ("example.com.", TXT, "NoError aa"),
        // Not published: a Service without external addresses, an Ingress without status,
        // a wildcard host, anything else.
        ("internal.shop.example.com.", A, "NXDomain aa"),
        ("pending.example.com.", A, "NXDomain aa"),
        ("x.wild.example.com.", A, "NXDomain aa"),
        ("nope.example.com.", A, "NXDomain aa"),
        ("_http._tcp.web.shop.example.com.", SRV, "NXDomain aa"),
    ];
    for (name, qtype, want) in table {
        let got = ask(s.addr, name, qtype).await;
        assert!(
            got.starts_with(want) && got.contains(soa) && !got.contains(";answer"),
            "{name} {qtype}:\n{got}\nwant {want} with the SOA"
        );
    }
    // A host under no external zone is not ours: with forwarding off, REFUSED.
    let got = ask(s.addr, "store.other.org.", A).await;
    assert!(got.starts_with("Refused"), "{got}");
    // The cluster zone is unchanged.
    let got = ask(s.addr, "web.shop.svc.cluster.local.", A).await;
    assert!(got.contains("IN A 10.96.0.1"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_nothing_is_external() {
    let s = TestServer::with_files(&[("edge.yaml", EDGE)], &[]).await;
    let got = ask(s.addr, "web.shop.example.com.", A).await;
    assert!(got.starts_with("Refused"), "{got}");
}

#[test]
fn bad_external_zones_are_refused() {
    for (zone, why) in [("cluster.local", "overlaps"), ("a..b", "--external-zone")] {
        let config = Config::try_parse_from(["clusterdns", "--external-zone", zone]).unwrap();
        let err = clusterdns::zone::ZoneConfig::new(&config.zone, 30, config.pods)
            .and_then(|z| z.with_external_zones(&config.external_zones))
            .expect_err(zone)
            .to_string();
        assert!(err.contains(why) && err.contains(zone), "{zone}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_status_updates_from_the_api_become_visible() {
    let api = ApiServer::start().await;
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    let ingress = |status: serde_json::Value| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "store", "namespace": "shop"},
               "spec": {"rules": [{"host": "store.example.com"}]},
               "status": status})
    };
    api.apply(ingress(json!({})));
    let server = TestServer::kube(&api, &["--external-zone", "example.com"]).await;
    let (dns, addr) = (server.running, server.addr);
    let got = ask(addr, "store.example.com.", A).await;
    assert!(got.starts_with("NXDomain aa"), "no address yet: {got}");
    assert!(
        api.requests()
            .iter()
            .any(|r| r.starts_with("/apis/networking.k8s.io/v1/ingresses")),
        "Ingresses are watched: {:?}",
        api.requests()
    );

    // The controller fills in the load balancer: the name appears.
    api.apply(ingress(
        json!({"loadBalancer": {"ingress": [{"ip": "198.51.100.4"}]}}),
    ));
    let got = eventually(addr, "store.example.com.", A, WITHIN, |t| {
        t.contains("198.51.100.4")
    })
    .await;
    assert!(
        got.starts_with("NoError aa\n;answer store.example.com. 30 IN A 198.51.100.4"),
        "{got}"
    );
    // And moves with it.
    api.apply(ingress(
        json!({"loadBalancer": {"ingress": [{"ip": "198.51.100.5"}]}}),
    ));
    let got = eventually(addr, "store.example.com.", A, WITHIN, |t| {
        t.contains("198.51.100.5")
    })
    .await;
    assert!(
        !got.contains("198.51.100.4") && got.contains("198.51.100.5"),
        "{got}"
    );
    // Deleted: gone.
    assert!(api.delete("networking.k8s.io/v1", "Ingress", "shop", "store"));
    let got = eventually(addr, "store.example.com.", A, WITHIN, |t| {
        t.starts_with("NXDomain")
    })
    .await;
    assert!(got.starts_with("NXDomain aa"), "{got}");
    dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_cluster_edge() {
    let s = TestServer::example(&["--external-zone", "example.com"]).await;
    let table = [
        (
            "lb.shop.example.com.",
            A,
            "NoError aa\n;answer lb.shop.example.com. 30 IN A 203.0.113.10",
        ),
        (
            "_https._tcp.lb.shop.example.com.",
            SRV,
            "NoError aa\n;answer _https._tcp.lb.shop.example.com. 30 IN SRV 0 100 443 lb.shop.example.com.",
        ),
        (
            "store.example.com.",
            A,
            "NoError aa\n;answer store.example.com. 30 IN A 198.51.100.4",
        ),
        ("store.example.org.", A, "Refused"),
        ("web.shop.example.com.", A, "NXDomain aa"),
        (
            "lb.shop.svc.cluster.local.",
            A,
            "NoError aa\n;answer lb.shop.svc.cluster.local. 30 IN A 10.96.10.90",
        ),
    ];
    for (name, qtype, want) in table {
        let got = ask(s.addr, name, qtype).await;
        assert!(
            got.starts_with(want),
            "{name} {qtype}:\n{got}\nwant\n{want}"
        );
    }
}
