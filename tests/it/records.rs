//! Every record kind and every negative rule of the cluster zone, asked over real UDP (and
//! TCP) sockets of a server serving `examples/cluster`. Expected answers are zone-file text.

use crate::common;

use common::{TestServer, ask, query, tcp, zone_text};
use hickory_proto::rr::RecordType::{self, *};

const SOA: &str = ";authority cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 30";

fn nodata() -> String {
    format!("NoError aa\n{SOA}")
}

fn nxdomain() -> String {
    format!("NXDomain aa\n{SOA}")
}

async fn check(table: &[(&str, RecordType, String)]) {
    let server = TestServer::example(&[]).await;
    let mut failures = Vec::new();
    for (name, qtype, want) in table {
        let got = ask(server.addr, name, *qtype).await;
        if got != *want {
            failures.push(format!(
                "{name} {qtype}:\n  got:  {}\n  want: {}",
                got.replace('\n', "\n        "),
                want.replace('\n', "\n        ")
            ));
        }
        // TCP answers the same.
        let over_tcp = zone_text(&tcp(server.addr, &query(name, *qtype, Some(1232))).await);
        assert_eq!(over_tcp, got, "{name} {qtype} over TCP");
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    server.running.shutdown().await;
}

fn ok(lines: &[&str]) -> String {
    let mut s = String::from("NoError aa");
    for l in lines {
        s.push('\n');
        s.push_str(l);
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ip_services() {
    check(&[
        (
            "web.shop.svc.cluster.local.",
            A,
            ok(&[";answer web.shop.svc.cluster.local. 30 IN A 10.96.10.20"]),
        ),
        ("web.shop.svc.cluster.local.", AAAA, nodata()),
        (
            "api.shop.svc.cluster.local.",
            A,
            ok(&[";answer api.shop.svc.cluster.local. 30 IN A 10.96.10.30"]),
        ),
        (
            "api.shop.svc.cluster.local.",
            AAAA,
            ok(&[";answer api.shop.svc.cluster.local. 30 IN AAAA fd00:10:96::30"]),
        ),
        ("v6only.shop.svc.cluster.local.", A, nodata()),
        (
            "v6only.shop.svc.cluster.local.",
            AAAA,
            ok(&[";answer v6only.shop.svc.cluster.local. 30 IN AAAA fd00:10:96::40"]),
        ),
        // NodePort and LoadBalancer Services answer their cluster IP.
        (
            "edge.shop.svc.cluster.local.",
            A,
            ok(&[";answer edge.shop.svc.cluster.local. 30 IN A 10.96.10.80"]),
        ),
        (
            "lb.shop.svc.cluster.local.",
            A,
            ok(&[";answer lb.shop.svc.cluster.local. 30 IN A 10.96.10.90"]),
        ),
        // Loaded from JSON in a subfolder.
        (
            "grafana.default.svc.cluster.local.",
            A,
            ok(&[";answer grafana.default.svc.cluster.local. 30 IN A 10.96.20.10"]),
        ),
        // A ClusterIP Service with no endpoints still answers.
        (
            "legacy.shop.svc.cluster.local.",
            A,
            ok(&[";answer legacy.shop.svc.cluster.local. 30 IN A 10.96.10.70"]),
        ),
        ("web.shop.svc.cluster.local.", TXT, nodata()),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_records() {
    check(&[
        ("_http._tcp.web.shop.svc.cluster.local.", SRV, ok(&[
            ";answer _http._tcp.web.shop.svc.cluster.local. 30 IN SRV 0 100 80 web.shop.svc.cluster.local.",
            ";additional web.shop.svc.cluster.local. 30 IN A 10.96.10.20",
        ])),
        // Bare name: every port, weight ⌊100/2⌋.
        ("web.shop.svc.cluster.local.", SRV, ok(&[
            ";answer web.shop.svc.cluster.local. 30 IN SRV 0 50 80 web.shop.svc.cluster.local.",
            ";answer web.shop.svc.cluster.local. 30 IN SRV 0 50 443 web.shop.svc.cluster.local.",
            ";additional web.shop.svc.cluster.local. 30 IN A 10.96.10.20",
        ])),
        // Dual-stack: two candidates, one record after de-duplication, both addresses as glue.
        ("_grpc._tcp.api.shop.svc.cluster.local.", SRV, ok(&[
            ";answer _grpc._tcp.api.shop.svc.cluster.local. 30 IN SRV 0 50 9090 api.shop.svc.cluster.local.",
            ";additional api.shop.svc.cluster.local. 30 IN A 10.96.10.30",
            ";additional api.shop.svc.cluster.local. 30 IN AAAA fd00:10:96::30",
        ])),
        // An unnamed port has no `_port._proto` name but is in the bare-name SRV set.
        ("legacy.shop.svc.cluster.local.", SRV, ok(&[
            ";answer legacy.shop.svc.cluster.local. 30 IN SRV 0 100 8080 legacy.shop.svc.cluster.local.",
            ";additional legacy.shop.svc.cluster.local. 30 IN A 10.96.10.70",
        ])),
        // Headless: one SRV per ready endpoint, endpoint ports, endpoint names as targets.
        ("_postgres._tcp.db.data.svc.cluster.local.", SRV, ok(&[
            ";answer _postgres._tcp.db.data.svc.cluster.local. 30 IN SRV 0 50 5432 db-0.db.data.svc.cluster.local.",
            ";answer _postgres._tcp.db.data.svc.cluster.local. 30 IN SRV 0 50 5432 db-1.db.data.svc.cluster.local.",
            ";additional db-0.db.data.svc.cluster.local. 30 IN A 10.244.1.30",
            ";additional db-1.db.data.svc.cluster.local. 30 IN A 10.244.2.31",
        ])),
        // Headless from Pods: hostname when subdomain matches, container port resolved.
        ("_redis._tcp.cache.data.svc.cluster.local.", SRV, ok(&[
            ";answer _redis._tcp.cache.data.svc.cluster.local. 30 IN SRV 0 50 6379 cache-0.cache.data.svc.cluster.local.",
            ";answer _redis._tcp.cache.data.svc.cluster.local. 30 IN SRV 0 50 6379 cache-1.cache.data.svc.cluster.local.",
            ";additional cache-0.cache.data.svc.cluster.local. 30 IN A 10.244.1.40",
            ";additional cache-1.cache.data.svc.cluster.local. 30 IN A 10.244.2.41",
        ])),
        ("_http._udp.web.shop.svc.cluster.local.", SRV, nxdomain()),
        ("_nope._tcp.web.shop.svc.cluster.local.", SRV, nxdomain()),
        ("_http._tcp.web.shop.svc.cluster.local.", A, nodata()),
        ("_tcp.web.shop.svc.cluster.local.", SRV, nodata()),
        ("_udp.web.shop.svc.cluster.local.", A, nxdomain()),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_and_endpoint_names() {
    check(&[
        // Ready endpoints only (db-2 is not ready).
        ("db.data.svc.cluster.local.", A, ok(&[
            ";answer db.data.svc.cluster.local. 30 IN A 10.244.1.30",
            ";answer db.data.svc.cluster.local. 30 IN A 10.244.2.31",
        ])),
        ("db.data.svc.cluster.local.", AAAA, nodata()),
        ("db-1.db.data.svc.cluster.local.", A, ok(&[";answer db-1.db.data.svc.cluster.local. 30 IN A 10.244.2.31"])),
        ("db-2.db.data.svc.cluster.local.", A, nxdomain()),
        // Endpoint names of a ClusterIP Service (no hostname: dashed address).
        ("10-244-1-10.web.shop.svc.cluster.local.", A, ok(&[";answer 10-244-1-10.web.shop.svc.cluster.local. 30 IN A 10.244.1.10"])),
        ("10-244-3-12.web.shop.svc.cluster.local.", A, nxdomain()),
        ("fd00-10-244-1--20.api.shop.svc.cluster.local.", AAAA, ok(&[";answer fd00-10-244-1--20.api.shop.svc.cluster.local. 30 IN AAAA fd00:10:244:1::20"])),
        // Selector-derived ClusterIP: ready pods only.
        ("10-244-2-51.search.shop.svc.cluster.local.", A, ok(&[";answer 10-244-2-51.search.shop.svc.cluster.local. 30 IN A 10.244.2.51"])),
        ("10-244-3-52.search.shop.svc.cluster.local.", A, nxdomain()),
        // Pod hostname/subdomain under a headless Service.
        ("cache-1.cache.data.svc.cluster.local.", A, ok(&[";answer cache-1.cache.data.svc.cluster.local. 30 IN A 10.244.2.41"])),
        // publishNotReadyAddresses publishes a not-ready pod.
        ("queue.data.svc.cluster.local.", A, ok(&[";answer queue.data.svc.cluster.local. 30 IN A 10.244.1.60"])),
        ("queue-0.queue.data.svc.cluster.local.", A, ok(&[";answer queue-0.queue.data.svc.cluster.local. 30 IN A 10.244.1.60"])),
        // Headless with no ready endpoint: NXDOMAIN (spec §2.4.1), below it too.
        ("empty.data.svc.cluster.local.", A, nxdomain()),
        ("empty.data.svc.cluster.local.", SRV, nxdomain()),
        ("_http._tcp.empty.data.svc.cluster.local.", SRV, nxdomain()),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_name_services() {
    let cname = ";answer payments.shop.svc.cluster.local. 30 IN CNAME payments.example.com.";
    check(&[
        ("payments.shop.svc.cluster.local.", CNAME, ok(&[cname])),
        ("payments.shop.svc.cluster.local.", A, ok(&[cname])),
        ("payments.shop.svc.cluster.local.", AAAA, ok(&[cname])),
        ("x.payments.shop.svc.cluster.local.", A, nxdomain()),
        (
            "_https._tcp.payments.shop.svc.cluster.local.",
            SRV,
            nxdomain(),
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apex_nameserver_and_version() {
    check(&[
        (
            "cluster.local.",
            SOA_TYPE,
            ok(&[&SOA.replace(";authority", ";answer")]),
        ),
        (
            "cluster.local.",
            NS,
            ok(&[
                ";answer cluster.local. 30 IN NS ns.dns.cluster.local.",
                ";additional ns.dns.cluster.local. 30 IN A 10.96.0.10",
            ]),
        ),
        (
            "ns.dns.cluster.local.",
            A,
            ok(&[";answer ns.dns.cluster.local. 30 IN A 10.96.0.10"]),
        ),
        ("dns.cluster.local.", A, nodata()),
        ("cluster.local.", A, nodata()),
        (
            "dns-version.cluster.local.",
            TXT,
            ok(&[";answer dns-version.cluster.local. 28800 IN TXT 1.1.0"]),
        ),
        // RFC 8020: the name exists, so A is NODATA (CoreDNS says NXDOMAIN).
        ("dns-version.cluster.local.", A, nodata()),
    ])
    .await;
}

const SOA_TYPE: RecordType = RecordType::SOA;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_non_terminals_and_nxdomain() {
    check(&[
        ("svc.cluster.local.", A, nodata()),
        ("pod.cluster.local.", A, nodata()),
        ("shop.svc.cluster.local.", A, nodata()),
        ("shop.pod.cluster.local.", A, nodata()),
        ("nosuchns.svc.cluster.local.", A, nxdomain()),
        ("nosuchns.pod.cluster.local.", A, nxdomain()),
        ("nope.shop.svc.cluster.local.", A, nxdomain()),
        ("web.nosuchns.svc.cluster.local.", A, nxdomain()),
        ("nope.web.shop.svc.cluster.local.", A, nxdomain()),
        ("foo.cluster.local.", A, nxdomain()),
        ("a.b._http._tcp.web.shop.svc.cluster.local.", A, nxdomain()),
        ("http.tcp.web.shop.svc.cluster.local.", A, nxdomain()),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_and_reverse() {
    check(&[
        ("10-244-9-9.shop.pod.cluster.local.", A, ok(&[";answer 10-244-9-9.shop.pod.cluster.local. 30 IN A 10.244.9.9"])),
        ("10-244-9-9.shop.pod.cluster.local.", AAAA, nodata()),
        ("fd00-1--5.shop.pod.cluster.local.", AAAA, ok(&[";answer fd00-1--5.shop.pod.cluster.local. 30 IN AAAA fd00:1::5"])),
        ("not-an-ip.shop.pod.cluster.local.", A, nxdomain()),
        ("10-244-9-9.nosuchns.pod.cluster.local.", A, nxdomain()),
        // A cluster IP has exactly one PTR, to its Service.
        ("10.0.96.10.in-addr.arpa.", PTR, ok(&[";answer 10.0.96.10.in-addr.arpa. 30 IN PTR kube-dns.kube-system.svc.cluster.local."])),
        ("0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", PTR, ok(&[
            ";answer 0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 30 IN PTR api.shop.svc.cluster.local.",
        ])),
        // Ready endpoint addresses point at their endpoint names.
        ("30.1.244.10.in-addr.arpa.", PTR, ok(&[";answer 30.1.244.10.in-addr.arpa. 30 IN PTR db-0.db.data.svc.cluster.local."])),
        ("10.1.244.10.in-addr.arpa.", PTR, ok(&[";answer 10.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-10.web.shop.svc.cluster.local."])),
        // Not-ready endpoints have none; unknown addresses are not ours yet.
        ("32.3.244.10.in-addr.arpa.", PTR, "Refused".into()),
        ("99.99.99.10.in-addr.arpa.", PTR, "Refused".into()),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_zone_is_refused() {
    check(&[
        ("example.com.", A, "Refused".into()),
        ("local.", A, "Refused".into()),
        ("cluster.local.", AXFR, "Refused".into()),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_echo_the_question_spelling() {
    check(&[
        ("WeB.ShOp.SvC.cLuStEr.LoCaL.", A, ok(&[";answer WeB.ShOp.SvC.cLuStEr.LoCaL. 30 IN A 10.96.10.20"])),
        ("_HTTP._Tcp.WEB.shop.svc.cLuStEr.LoCaL.", SRV, ok(&[
            ";answer _HTTP._Tcp.WEB.shop.svc.cLuStEr.LoCaL. 30 IN SRV 0 100 80 web.shop.svc.cLuStEr.LoCaL.",
            ";additional web.shop.svc.cLuStEr.LoCaL. 30 IN A 10.96.10.20",
        ])),
        ("NoPe.ShOp.SvC.ClUsTeR.lOcAl.", A, "NXDomain aa\n;authority ClUsTeR.lOcAl. 30 IN SOA ns.dns.ClUsTeR.lOcAl. hostmaster.ClUsTeR.lOcAl. SERIAL 7200 1800 86400 30".into()),
        ("DB-0.Db.DATA.svc.cluster.local.", A, ok(&[";answer DB-0.Db.DATA.svc.cluster.local. 30 IN A 10.244.1.30"])),
    ])
    .await;
}
