//! Forwarding over real sockets: clusterdns in front of fake upstreams started by the test on
//! loopback (tests/it/common/upstream.rs): failover, health, truncation, cache, coalescing,
//! serve-stale, the concurrency cap, spoofed replies, stub domains, reverse CIDRs,
//! ExternalName completion and loop detection.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::process::{self, SpawnGated, free_port};
use common::upstream::{Behaviour, FakeUpstream, Gate, Proto};
use common::{TestServer, ask, metric, query, tcp, udp, wait_for, zone_text};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

const WWW: &str = "www.example.com.";

/// A fake upstream knowing a few names of example.com.
async fn upstream() -> FakeUpstream {
    let f = FakeUpstream::start().await;
    f.add("www.example.com. 300 IN A 192.0.2.10");
    f.add("www.example.com. 300 IN A 192.0.2.11");
    f.add("payments.example.com. 120 IN A 192.0.2.20");
    f.add("mail.example.com. 300 IN MX 10 mx.example.com.");
    f
}

async fn server(extra: &[&str]) -> TestServer {
    TestServer::example(extra).await
}

/// What the upstream received apart from clusterdns's start-up loop probe (HINFO).
fn forwarded(up: &FakeUpstream) -> Vec<Proto> {
    up.received()
        .iter()
        .filter(|r| r.message.queries[0].query_type() != RecordType::HINFO)
        .map(|r| r.proto)
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn forwards_outside_names_and_caches_the_answer() {
    let up = upstream().await;
    let u = up.addr().to_string();
    let s = server(&["--upstream", &u]).await;

    let q = query("WwW.ExAmPlE.CoM.", RecordType::A, Some(1232));
    let (r, _) = udp(s.addr, &q).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(
        !r.metadata.authoritative,
        "AA is cleared on forwarded answers"
    );
    assert!(r.metadata.recursion_available, "RA is set");
    assert_eq!(
        r.queries[0].name().to_ascii(),
        "WwW.ExAmPlE.CoM.",
        "question as asked"
    );
    let mut ips: Vec<String> = r.answers.iter().map(|a| a.data.to_string()).collect();
    ips.sort();
    assert_eq!(ips, ["192.0.2.10", "192.0.2.11"]);
    assert_eq!(up.count(WWW, RecordType::A), 1);

    // Repeats come from the cache, over UDP and TCP, in any spelling.
    for name in ["www.example.com.", "WWW.EXAMPLE.COM."] {
        let (r, _) = udp(s.addr, &query(name, RecordType::A, None)).await;
        assert_eq!(r.answers.len(), 2);
        assert_eq!(r.queries[0].name().to_ascii(), name);
    }
    let r = tcp(s.addr, &query(WWW, RecordType::A, None)).await;
    assert_eq!(r.answers.len(), 2);
    assert_eq!(
        up.count(WWW, RecordType::A),
        1,
        "one upstream query for four asks"
    );
    assert_eq!(
        metric(&s, "clusterdns_cache_hits_total{type=\"success\"}"),
        3.0
    );
    assert_eq!(metric(&s, "clusterdns_cache_misses_total"), 1.0);
    assert_eq!(
        metric(
            &s,
            &format!("clusterdns_forward_requests_total{{to=\"{u}\"}}")
        ),
        1.0
    );

    // Another type of the same name is another entry.
    let (r, _) = udp(s.addr, &query("mail.example.com.", RecordType::MX, None)).await;
    assert_eq!(r.answers.len(), 1);
    // The cluster zone is still answered authoritatively, never forwarded.
    let text = ask(
        s.addr,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert!(text.starts_with("NoError aa"), "{text}");
    assert_eq!(
        forwarded(&up).len(),
        2,
        "only the two external names went upstream"
    );
}

#[tokio::test]
async fn cached_ttls_count_down() {
    let up = upstream().await;
    let s = server(&["--upstream", &up.addr().to_string()]).await;
    // The entry is stored between `asked` and `stored`, read again between `again` and
    // `read`: its age then is between `again - stored` and `read - asked`, however long the
    // sleep really took on a loaded machine.
    let asked = tokio::time::Instant::now();
    let (first, _) = udp(s.addr, &query(WWW, RecordType::A, None)).await;
    let stored = tokio::time::Instant::now();
    assert_eq!(first.answers[0].ttl, 300);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let again = tokio::time::Instant::now();
    let (later, _) = udp(s.addr, &query(WWW, RecordType::A, None)).await;
    let read = tokio::time::Instant::now();
    let ttl = later.answers[0].ttl;
    let (least, most) = ((again - stored).as_secs(), (read - asked).as_secs() + 1);
    let counted = u64::from(300 - ttl.min(300));
    assert!(
        (least..=most).contains(&counted) && counted >= 2,
        "TTL {ttl}: counted down by {counted} s, the entry's age being {least}..={most} s"
    );
    assert_eq!(up.count(WWW, RecordType::A), 1);
}

#[tokio::test]
async fn negative_answers_are_cached_for_the_soa_minimum() {
    let up = upstream().await;
    up.set_soa(
        "example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 7 7200 1800 86400 60",
    );
    let s = server(&["--upstream", &up.addr().to_string()]).await;
    for _ in 0..3 {
        let (r, _) = udp(s.addr, &query("nope.example.com.", RecordType::A, None)).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        let soa = &r.authorities[0];
        assert_eq!(soa.record_type(), RecordType::SOA);
        assert!(
            soa.ttl <= 60,
            "negative TTL is min(SOA TTL, minimum): {}",
            soa.ttl
        );
    }
    assert_eq!(up.count("nope.example.com.", RecordType::A), 1);
    // NODATA too: the name exists without AAAA.
    for _ in 0..2 {
        let (r, _) = udp(s.addr, &query(WWW, RecordType::AAAA, None)).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    }
    assert_eq!(up.count(WWW, RecordType::AAAA), 1);
    assert_eq!(
        metric(&s, "clusterdns_cache_hits_total{type=\"denial\"}"),
        3.0
    );

    // --cache-max-negative-ttl caps it.
    let capped = server(&[
        "--upstream",
        &up.addr().to_string(),
        "--cache-max-negative-ttl",
        "10",
    ])
    .await;
    let (r, _) = udp(
        capped.addr,
        &query("other.example.com.", RecordType::A, None),
    )
    .await;
    assert!(r.authorities[0].ttl <= 10, "{}", r.authorities[0].ttl);
}

#[tokio::test]
async fn identical_concurrent_misses_send_one_upstream_query() {
    let up = upstream().await;
    up.behave("", Behaviour::Delay(Duration::from_millis(300)));
    let s = server(&["--upstream", &up.addr().to_string()]).await;
    let asks = (0..100).map(|_| {
        let addr = s.addr;
        tokio::spawn(async move { udp(addr, &query(WWW, RecordType::A, None)).await.0 })
    });
    for r in futures::future::join_all(asks).await {
        let r = r.unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.answers.len(), 2);
    }
    assert_eq!(
        up.count(WWW, RecordType::A),
        1,
        "100 identical misses, one upstream query"
    );
    assert!(metric(&s, "clusterdns_forward_coalesced_total") >= 1.0);
}

#[tokio::test]
async fn retries_over_tcp_when_the_upstream_truncates() {
    let up = upstream().await;
    for i in 1..=20 {
        up.add(&format!("big.example.com. 60 IN A 192.0.2.{i}"));
    }
    up.behave("big.example.com.", Behaviour::TruncateUdp);
    let s = server(&["--upstream", &up.addr().to_string()]).await;
    let r = tcp(s.addr, &query("big.example.com.", RecordType::A, None)).await;
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 20, "the full answer from the TCP retry");
    assert_eq!(forwarded(&up), [Proto::Udp, Proto::Tcp]);
}

#[tokio::test]
async fn fails_over_marks_down_and_recovers() {
    let mut first = upstream().await;
    let second = upstream().await;
    let (a, b) = (first.addr().to_string(), second.addr().to_string());
    first.behave("", Behaviour::Silent);
    let s = server(&[
        "--upstream",
        &a,
        "--upstream",
        &b,
        "--policy",
        "sequential",
        "--upstream-timeout",
        "300ms",
        "--health-check-interval",
        "100ms",
        "--cache-size",
        "0",
    ])
    .await;
    // The first upstream says nothing: each query is answered by the second after 300 ms.
    for _ in 0..2 {
        let (r, _) = udp(s.addr, &query(WWW, RecordType::A, None)).await;
        assert_eq!(r.answers.len(), 2);
    }
    assert_eq!(first.count(WWW, RecordType::A), 2);
    assert_eq!(second.count(WWW, RecordType::A), 2);
    let healthy = format!("clusterdns_forward_upstream_healthy{{to=\"{a}\"}}");
    assert_eq!(
        metric(&s, &healthy),
        0.0,
        "down after --max-fails (2) failures"
    );
    // Down: no longer tried; the second answers at once.
    let (r, _) = udp(s.addr, &query(WWW, RecordType::A, None)).await;
    assert_eq!(r.answers.len(), 2);
    assert_eq!(first.count(WWW, RecordType::A), 2);
    // The probe keeps asking `. NS` while it is silent, and marks it up once it answers.
    wait_for(
        "probes of the down upstream",
        Duration::from_secs(3),
        || first.count(".", RecordType::NS) >= 2,
    )
    .await;
    first.behave("", Behaviour::Answer);
    wait_for(
        "the upstream marked up again",
        Duration::from_secs(3),
        || metric(&s, &healthy) == 1.0,
    )
    .await;
    udp(s.addr, &query(WWW, RecordType::A, None)).await;
    assert_eq!(
        first.count(WWW, RecordType::A),
        3,
        "sequential: the first is used again"
    );

    // An upstream that goes away entirely (port closed) fails over as fast.
    first.stop().await;
    let (r, _) = udp(s.addr, &query(WWW, RecordType::A, None)).await;
    assert_eq!(r.answers.len(), 2);
}

#[tokio::test]
async fn answers_servfail_at_once_when_every_upstream_is_down() {
    let up = upstream().await;
    up.behave("", Behaviour::Silent);
    let s = server(&[
        "--upstream",
        &up.addr().to_string(),
        "--upstream-timeout",
        "200ms",
        "--health-check-interval",
        "10s",
    ])
    .await;
    for _ in 0..2 {
        let (r, _) = udp(s.addr, &query(WWW, RecordType::A, None)).await;
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    }
    assert_eq!(up.count(WWW, RecordType::A), 2);
    // Marked down: the next queries fail without reaching it.
    for name in [WWW, "payments.example.com."] {
        let (r, _) = udp(s.addr, &query(name, RecordType::A, None)).await;
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    }
    assert_eq!(
        forwarded(&up).len(),
        2,
        "nothing sent while every upstream is down"
    );
    assert_eq!(
        metric(&s, "clusterdns_forward_healthcheck_broken_total"),
        2.0
    );
}

#[tokio::test]
async fn serves_stale_only_when_upstreams_fail() {
    let up = FakeUpstream::start().await;
    up.add("short.example.com. 1 IN A 192.0.2.30");
    let u = up.addr().to_string();
    let common = [
        "--upstream",
        u.as_str(),
        "--cache-min-ttl",
        "1",
        "--upstream-timeout",
        "200ms",
    ];
    let stale = server(&[&common[..], &["--serve-stale", "1h"]].concat()).await;
    let plain = server(&common).await;
    for s in [&stale, &plain] {
        let (r, _) = udp(s.addr, &query("short.example.com.", RecordType::A, None)).await;
        assert_eq!(r.answers[0].ttl, 1);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Expired while the upstream works: refreshed, not served stale.
    let (r, _) = udp(
        stale.addr,
        &query("short.example.com.", RecordType::A, None),
    )
    .await;
    assert_eq!(r.answers[0].ttl, 1);
    assert_eq!(
        up.count("short.example.com.", RecordType::A),
        3,
        "one query from each server, then the refresh"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    up.behave("", Behaviour::Silent);
    let (r, _) = udp(
        stale.addr,
        &query("short.example.com.", RecordType::A, None),
    )
    .await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.answers[0].ttl, 30, "stale answers carry TTL 30");
    assert_eq!(r.answers[0].data, RData::A("192.0.2.30".parse().unwrap()));
    assert_eq!(metric(&stale, "clusterdns_cache_served_stale_total"), 1.0);
    let (r, _) = udp(
        plain.addr,
        &query("short.example.com.", RecordType::A, None),
    )
    .await;
    assert_eq!(
        r.metadata.response_code,
        ResponseCode::ServFail,
        "no stale answers unless asked"
    );
}

#[tokio::test]
async fn refuses_beyond_the_outstanding_query_cap() {
    let up = upstream().await;
    let gate = Gate::new();
    up.behave("", Behaviour::Hold(gate.clone()));
    let s = server(&[
        "--upstream",
        &up.addr().to_string(),
        "--max-concurrent",
        "2",
    ])
    .await;
    let ask = |i: usize| {
        let addr = s.addr;
        tokio::spawn(async move {
            let name = format!("host{i}.example.com.");
            udp(addr, &query(&name, RecordType::A, None)).await.0
        })
    };
    // Two queries held at the upstream fill the cap.
    let held = [ask(0), ask(1)];
    wait_for(
        "both held queries at the upstream",
        Duration::from_secs(10),
        || (0..2).all(|i| up.count(&format!("host{i}.example.com."), RecordType::A) == 1),
    )
    .await;
    // While they are out, every other query is refused at once.
    for i in 2..5 {
        let r = ask(i).await.unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::Refused, "host{i}");
        assert_eq!(
            up.count(&format!("host{i}.example.com."), RecordType::A),
            0,
            "host{i} not forwarded"
        );
    }
    assert_eq!(
        metric(&s, "clusterdns_forward_max_concurrent_rejects_total"),
        3.0
    );
    gate.open();
    for h in held {
        let r = h.await.unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }
    // The cap frees as queries finish.
    let (r, _) = udp(s.addr, &query(WWW, RecordType::A, None)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test]
async fn drops_replies_with_a_wrong_id_or_question() {
    for bad in [
        Behaviour::WrongId,
        Behaviour::WrongQuestion,
        Behaviour::Malformed,
    ] {
        let liar = upstream().await;
        liar.behave("", bad.clone());
        let honest = upstream().await;
        let (l, h) = (liar.addr().to_string(), honest.addr().to_string());
        let s = server(&[
            "--upstream",
            &l,
            "--upstream",
            &h,
            "--policy",
            "sequential",
            "--upstream-timeout",
            "300ms",
        ])
        .await;
        let (r, _) = udp(s.addr, &query(WWW, RecordType::A, None)).await;
        let mut ips: Vec<String> = r.answers.iter().map(|a| a.data.to_string()).collect();
        ips.sort();
        assert_eq!(
            ips,
            ["192.0.2.10", "192.0.2.11"],
            "{bad:?}: the honest answer"
        );
        assert_eq!(liar.count(WWW, RecordType::A), 1);
        assert_eq!(
            metric(
                &s,
                &format!("clusterdns_forward_mismatched_replies_total{{to=\"{l}\"}}")
            ),
            2.0,
            "{bad:?} counted: the start-up loop probe's reply and the query's"
        );
    }
}

#[tokio::test]
async fn passes_rd_do_payload_and_dnssec_records_through() {
    let up = upstream().await;
    up.add(
        // RFC 3597 form: covers A, algorithm 8, 3 labels, signer example.com.
        "www.example.com. 300 IN RRSIG \\# 35 000108030000012c700000005e0000003039076578616d706c6503636f6d00deadbeef",
    );
    let s = server(&["--upstream", &up.addr().to_string()]).await;
    let mut q = query(WWW, RecordType::A, Some(4096));
    if let Some(e) = q.edns.as_mut() {
        e.set_dnssec_ok(true);
    }
    let (r, _) = udp(s.addr, &q).await;
    assert!(
        r.answers
            .iter()
            .any(|a| a.record_type() == RecordType::RRSIG),
        "RRSIG passed back: {:?}",
        r.answers
    );
    assert!(
        r.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        "DO echoed"
    );
    let rrsig = r
        .answers
        .iter()
        .find(|a| a.record_type() == RecordType::RRSIG)
        .unwrap();
    match &rrsig.data {
        RData::Unknown { rdata, .. } => assert_eq!(
            rdata.anything,
            hex("000108030000012c700000005e0000003039076578616d706c6503636f6d00deadbeef"),
            "RRSIG bytes untouched"
        ),
        other => panic!("{other:?}"),
    }
    let sent = &up.received()[1].message;
    assert_eq!(sent.queries[0].query_type(), RecordType::A);
    assert!(sent.metadata.recursion_desired);
    let e = sent.edns.as_ref().expect("EDNS passed on");
    assert!(e.flags().dnssec_ok);
    assert_eq!(
        e.max_payload(),
        1232,
        "the client's payload, capped at 1232"
    );
    // Without DO: another cache entry, no RRSIG.
    let (r, _) = udp(s.addr, &query(WWW, RecordType::A, Some(1232))).await;
    assert!(r.answers.iter().all(|a| a.record_type() == RecordType::A));
    // A non-recursive query goes out non-recursive.
    let mut q = query("mail.example.com.", RecordType::MX, None);
    q.metadata.recursion_desired = false;
    udp(s.addr, &q).await;
    let last = up.received().last().unwrap().message.clone();
    assert!(!last.metadata.recursion_desired);
    assert!(last.edns.is_none(), "no EDNS when the client sent none");
}

#[tokio::test]
async fn upstream_rcodes_come_back_untouched() {
    let up = upstream().await;
    up.behave(
        "refused.example.com.",
        Behaviour::Rcode(ResponseCode::Refused),
    );
    up.behave(
        "broken.example.com.",
        Behaviour::Rcode(ResponseCode::ServFail),
    );
    let s = server(&["--upstream", &up.addr().to_string()]).await;
    let (r, _) = udp(s.addr, &query("refused.example.com.", RecordType::A, None)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    for _ in 0..2 {
        let (r, _) = udp(s.addr, &query("broken.example.com.", RecordType::A, None)).await;
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    }
    assert_eq!(
        up.count("broken.example.com.", RecordType::A),
        1,
        "an upstream SERVFAIL is cached (5 s)"
    );
}

#[tokio::test]
async fn stub_domains_have_their_own_upstreams() {
    let public = upstream().await;
    let corp = FakeUpstream::start().await;
    corp.add("db.corp.example. 60 IN A 10.1.2.3");
    let stub = format!("corp.example={}", corp.addr());
    let s = server(&[
        "--upstream",
        &public.addr().to_string(),
        "--stub-domain",
        &stub,
    ])
    .await;
    let text = ask(s.addr, "db.corp.example.", RecordType::A).await;
    assert!(text.contains("db.corp.example. 60 IN A 10.1.2.3"), "{text}");
    let (r, _) = udp(s.addr, &query(WWW, RecordType::A, None)).await;
    assert_eq!(r.answers.len(), 2);
    assert_eq!(corp.count("db.corp.example.", RecordType::A), 1);
    assert_eq!(public.count("db.corp.example.", RecordType::A), 0);
    assert_eq!(corp.count(WWW, RecordType::A), 0);

    // A stub domain alone: the rest is refused.
    let only = server(&["--stub-domain", &stub, "--resolv-conf", "/nonexistent"]).await;
    let text = ask(only.addr, "db.corp.example.", RecordType::A).await;
    assert!(text.contains("10.1.2.3"), "{text}");
    let (r, _) = udp(only.addr, &query(WWW, RecordType::A, None)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
}

#[tokio::test]
async fn reverse_cidrs_are_answered_here_and_other_reverse_names_forwarded() {
    let up = upstream().await;
    up.add("1.2.0.192.in-addr.arpa. 300 IN PTR host.example.com.");
    let s = server(&[
        "--upstream",
        &up.addr().to_string(),
        "--reverse-cidr",
        "10.96.0.0/12",
        "--reverse-cidr",
        "fd00:10:96::/112",
    ])
    .await;
    // A Service address: its PTR.
    let text = ask(s.addr, "1.0.96.10.in-addr.arpa.", RecordType::PTR).await;
    assert!(
        text.contains("PTR kubernetes.default.svc.cluster.local."),
        "{text}"
    );
    // Unknown inside the CIDR: NXDOMAIN here, with the SOA.
    let text = ask(s.addr, "77.5.96.10.in-addr.arpa.", RecordType::PTR).await;
    assert!(
        text.starts_with("NXDomain aa\n;authority in-addr.arpa."),
        "{text}"
    );
    let text = ask(
        s.addr,
        "9.9.9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.",
        RecordType::PTR,
    )
    .await;
    assert!(text.starts_with("NXDomain aa"), "{text}");
    // A shorter name inside it: NODATA.
    let text = ask(s.addr, "5.96.10.in-addr.arpa.", RecordType::PTR).await;
    assert!(text.starts_with("NoError aa\n;authority"), "{text}");
    // Outside: forwarded.
    let text = ask(s.addr, "1.2.0.192.in-addr.arpa.", RecordType::PTR).await;
    assert!(text.contains("PTR host.example.com."), "{text}");
    assert_eq!(
        forwarded(&up).len(),
        1,
        "only the outside address went upstream"
    );
}

#[tokio::test]
async fn externalname_answers_are_completed_through_the_forwarder() {
    let up = upstream().await;
    let s = server(&["--upstream", &up.addr().to_string()]).await;
    let text = ask(s.addr, "payments.shop.svc.cluster.local.", RecordType::A).await;
    assert_eq!(
        text,
        "NoError aa\n;answer payments.shop.svc.cluster.local. 30 IN CNAME payments.example.com.\n\
         ;answer payments.example.com. 120 IN A 192.0.2.20"
    );
    // From the cache the second time, TTL counted from the upstream's.
    let text = ask(s.addr, "payments.shop.svc.cluster.local.", RecordType::A).await;
    assert!(text.contains("CNAME payments.example.com."), "{text}");
    assert_eq!(up.count("payments.example.com.", RecordType::A), 1);
    // A CNAME query is the CNAME alone; the target's NODATA leaves the CNAME alone too.
    let text = ask(
        s.addr,
        "payments.shop.svc.cluster.local.",
        RecordType::CNAME,
    )
    .await;
    assert_eq!(
        text,
        "NoError aa\n;answer payments.shop.svc.cluster.local. 30 IN CNAME payments.example.com."
    );
    // The target's NODATA keeps the CNAME, with the target zone's SOA (RFC 2308 §2.2).
    let text = ask(s.addr, "payments.shop.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!(
        text,
        format!(
            "NoError aa\n;answer payments.shop.svc.cluster.local. 30 IN CNAME payments.example.com.\n;authority {}",
            soa_line()
        )
    );
    // When the target cannot be resolved: SERVFAIL, with the CNAME (RFC 1034 §3.6.2), and
    // RA like every response of a forwarding server.
    up.behave("", Behaviour::Silent);
    let s2 = server(&[
        "--upstream",
        &up.addr().to_string(),
        "--upstream-timeout",
        "200ms",
    ])
    .await;
    for _ in 0..2 {
        let (m, _) = udp(
            s2.addr,
            &query("payments.shop.svc.cluster.local.", RecordType::A, None),
        )
        .await;
        assert!(m.metadata.recursion_available);
        assert_eq!(
            zone_text(&m),
            "ServFail aa\n;answer payments.shop.svc.cluster.local. 30 IN CNAME payments.example.com."
        );
    }
}

#[tokio::test]
async fn externalname_answers_take_the_targets_rcode_and_keep_the_cname() {
    const CNAME: &str =
        ";answer payments.shop.svc.cluster.local. 30 IN CNAME payments.example.com.";
    // An upstream that knows no name: every target is NXDOMAIN, with its SOA.
    let empty = FakeUpstream::start().await;
    let s = server(&["--upstream", &empty.addr().to_string()]).await;
    let nxdomain = format!("NXDomain aa\n{CNAME}\n;authority {}", soa_line());
    for ask_no in ["first", "cached"] {
        let text = ask(s.addr, "payments.shop.svc.cluster.local.", RecordType::A).await;
        assert_eq!(text, nxdomain, "{ask_no} ask");
    }
    assert_eq!(empty.count("payments.example.com.", RecordType::A), 1);

    // The target exists without AAAA: NODATA, NOERROR with the CNAME and the target's SOA.
    let up = upstream().await;
    let s = server(&["--upstream", &up.addr().to_string()]).await;
    let nodata = format!("NoError aa\n{CNAME}\n;authority {}", soa_line());
    for ask_no in ["first", "cached"] {
        let text = ask(s.addr, "payments.shop.svc.cluster.local.", RecordType::AAAA).await;
        assert_eq!(text, nodata, "{ask_no} ask");
    }
    assert_eq!(up.count("payments.example.com.", RecordType::AAAA), 1);
}

/// The fake upstream's SOA as `zone_text` prints it, its TTL cut to the negative TTL (the
/// SOA minimum, 60) as cached answers carry it.
fn soa_line() -> &'static str {
    "example.com. 60 IN SOA ns.example.com. hostmaster.example.com. SERIAL 7200 1800 86400 60"
}

#[tokio::test]
async fn every_response_of_a_forwarding_server_sets_ra() {
    let up = upstream().await;
    up.behave("", Behaviour::Silent);
    let s = server(&[
        "--upstream",
        &up.addr().to_string(),
        "--upstream-timeout",
        "200ms",
    ])
    .await;
    // SERVFAIL when every upstream fails, REFUSED for class CH, NOTIMP for an opcode.
    let (m, _) = udp(s.addr, &query(WWW, RecordType::A, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(m.metadata.recursion_available, "SERVFAIL");
    let mut q = query(WWW, RecordType::A, None);
    q.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    let (m, _) = udp(s.addr, &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.metadata.recursion_available, "REFUSED");
    let mut q = query(WWW, RecordType::A, None);
    q.metadata.op_code = hickory_proto::op::OpCode::Status;
    let (m, _) = udp(s.addr, &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
    assert!(m.metadata.recursion_available, "NOTIMP");
    // A query whose body does not parse: FORMERR, RA too.
    let mut raw = query(WWW, RecordType::A, None).to_vec().unwrap();
    raw.truncate(raw.len() - 3);
    let reply = common::udp_raw(s.addr, &raw, Duration::from_secs(2))
        .await
        .expect("FORMERR");
    let m = hickory_proto::op::Message::from_vec(&reply).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert!(m.metadata.recursion_available, "FORMERR");
    // Without forwarding there is no recursion to offer.
    let plain = server(&[]).await;
    let (m, _) = udp(plain.addr, &query(WWW, RecordType::A, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.recursion_available);
}

#[tokio::test]
async fn prefetch_refreshes_popular_entries_before_they_expire() {
    let up = FakeUpstream::start().await;
    let s = server(&["--upstream", &up.addr().to_string(), "--prefetch"]).await;
    // A 5 s entry's prefetch window is its last second. A hit there answers from the entry
    // (TTL 1); a machine too loaded to ask within it finds the entry gone (a miss, TTL 5), and
    // the round is tried again with a new name.
    for round in 0..5 {
        let hot = format!("hot{round}.example.com.");
        up.add(&format!("{hot} 5 IN A 192.0.2.40"));
        let ask_hot = || async { udp(s.addr, &query(&hot, RecordType::A, None)).await.0 };
        ask_hot().await;
        let stored = tokio::time::Instant::now();
        ask_hot().await;
        tokio::time::sleep_until(stored + Duration::from_millis(4300)).await;
        // Less than a second left, asked before: this hit refreshes the entry in the background.
        let in_window = ask_hot().await;
        assert_eq!(in_window.answers.len(), 1);
        if in_window.answers[0].ttl == 5 {
            assert_eq!(up.count(&hot, RecordType::A), 2, "expired: asked again");
            continue;
        }
        assert_eq!(in_window.answers[0].ttl, 1, "a hit in the window");
        wait_for("the prefetch", Duration::from_secs(10), || {
            up.count(&hot, RecordType::A) == 2
        })
        .await;
        assert_eq!(metric(&s, "clusterdns_cache_prefetch_total"), 1.0);
        // Past the first entry's expiry, still a hit: the refreshed entry.
        tokio::time::sleep_until(stored + Duration::from_millis(5200)).await;
        let r = ask_hot().await;
        assert!(r.answers[0].ttl >= 1, "fresh TTL {}", r.answers[0].ttl);
        assert_eq!(
            up.count(&hot, RecordType::A),
            2,
            "answered from the refresh"
        );
        return;
    }
    panic!("no round asked within the prefetch window");
}

#[tokio::test]
async fn refuses_to_start_when_an_upstream_forwards_back_to_it() {
    use clap::Parser;
    let port = free_port();
    let me: SocketAddr = ([127, 0, 0, 1], port).into();
    // An upstream that relays everything to clusterdns's own address.
    let relay = FakeUpstream::start().await;
    relay.behave("", Behaviour::Relay(me));
    let honest = upstream().await;
    let dir = common::example_dir();
    let args = [
        "clusterdns",
        "--manifests",
        dir.to_str().unwrap(),
        "--listen",
        &me.to_string(),
        "--metrics-listen",
        "127.0.0.1:0",
        "--upstream",
        &honest.addr().to_string(),
        "--upstream",
        &relay.addr().to_string(),
    ];
    let config = clusterdns::config::Config::try_parse_from(args).unwrap();
    let err = match clusterdns::app::start(&config).await {
        Ok(_) => panic!("started despite a forwarding loop"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("forwarding loop"), "{err}");
    assert!(
        err.contains(&relay.addr().to_string()),
        "names the upstream: {err}"
    );
    assert!(!err.contains(&honest.addr().to_string()), "{err}");
    // The probe reached the honest upstream and went no further.
    assert_eq!(honest.received().len(), 1);
    assert_eq!(
        honest.received()[0].message.queries[0].query_type(),
        RecordType::HINFO
    );
    // The port is free again: the listeners were shut.
    process::closed_for_good();
    assert!(std::net::UdpSocket::bind(me).is_ok());

    // Without the loop, the same configuration starts.
    let s = server(&["--upstream", &honest.addr().to_string()]).await;
    assert_eq!(
        udp(s.addr, &query(WWW, RecordType::A, None))
            .await
            .0
            .answers
            .len(),
        2
    );
}

#[tokio::test]
async fn a_loop_through_an_upstream_that_starts_late_is_found() {
    use clap::Parser;
    let port = free_port();
    let me: SocketAddr = ([127, 0, 0, 1], port).into();
    // The relay's port, not served yet: the first probe gets no reply.
    let mut relay = FakeUpstream::start().await;
    relay.behave("", Behaviour::Relay(me));
    relay.stop().await;
    let dir = common::example_dir();
    let relay_addr = relay.addr().to_string();
    let args = [
        "clusterdns",
        "--manifests",
        dir.to_str().unwrap(),
        "--listen",
        &me.to_string(),
        "--metrics-listen",
        "127.0.0.1:0",
        "--upstream",
        &relay_addr,
        "--upstream-timeout",
        "300ms",
        "--lameduck",
        "0s",
    ];
    let config = clusterdns::config::Config::try_parse_from(args).unwrap();
    let running = clusterdns::app::start(&config)
        .await
        .expect("starts while the upstream is silent");
    // Serving meanwhile.
    let (m, _) = udp(
        me,
        &query("web.shop.svc.cluster.local.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    // The upstream comes up, relaying to clusterdns: the next probe finds the loop.
    relay.restart().await;
    let why = tokio::time::timeout(Duration::from_secs(20), running.fatal())
        .await
        .expect("the loop is found while the probes go on");
    assert!(
        why.contains("forwarding loop") && why.contains(&relay_addr),
        "{why}"
    );
    running.shutdown().await;
}

#[test]
fn the_binary_exits_when_a_late_upstream_forwards_back_to_it() {
    let port = free_port();
    let me = format!("127.0.0.1:{port}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut relay = rt.block_on(FakeUpstream::start());
    relay.behave("", Behaviour::Relay(me.parse().unwrap()));
    rt.block_on(relay.stop());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args([
            "--manifests",
            common::example_dir().to_str().unwrap(),
            "--listen",
            &me,
            "--metrics-listen",
            "127.0.0.1:0",
            "--upstream",
            &relay.addr().to_string(),
            "--upstream-timeout",
            "300ms",
            "--lameduck",
            "0s",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn_gated()
        .unwrap();
    // Once it answers, the first probe round is over: then the upstream starts.
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let q = query("web.shop.svc.cluster.local.", RecordType::A, None);
        while common::udp_raw(
            me.parse().unwrap(),
            &q.to_vec().unwrap(),
            Duration::from_millis(200),
        )
        .await
        .is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "clusterdns never answered"
            );
        }
        relay.restart().await;
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("clusterdns kept running with a forwarding loop");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains("forwarding loop") && err.contains(&relay.addr().to_string()),
        "{err}"
    );
    rt.block_on(relay.stop());
}

#[test]
fn the_binary_exits_naming_itself_as_its_own_upstream() {
    let port = free_port();
    let me = format!("127.0.0.1:{port}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args([
            "--manifests",
            common::example_dir().to_str().unwrap(),
            "--listen",
            &me,
            "--metrics-listen",
            "127.0.0.1:0",
            "--upstream",
            &me,
        ])
        .output_gated()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("forwarding loop") && err.contains(&me),
        "{err}"
    );
}

#[tokio::test]
async fn round_robin_spreads_queries_over_the_upstreams() {
    let a = upstream().await;
    let b = upstream().await;
    let s = server(&[
        "--upstream",
        &a.addr().to_string(),
        "--upstream",
        &b.addr().to_string(),
        "--policy",
        "round_robin",
        "--cache-size",
        "0",
    ])
    .await;
    for _ in 0..6 {
        udp(s.addr, &query(WWW, RecordType::A, None)).await;
    }
    assert_eq!(
        (a.count(WWW, RecordType::A), b.count(WWW, RecordType::A)),
        (3, 3)
    );
}

#[tokio::test]
async fn the_cache_keeps_its_size_and_its_popular_answers_through_a_one_hit_flood() {
    let up = upstream().await;
    let s = server(&["--upstream", &up.addr().to_string(), "--cache-size", "400"]).await;
    // More than half the cache (moka counts frequencies once the cache is half full), each
    // asked a few times: popular.
    let hot: Vec<String> = (0..250).map(|i| format!("hot{i}.example.com.")).collect();
    // An hour's TTL: however slowly a loaded machine runs the test, no popular answer
    // expires during it (a negative answer would be cached for the SOA's 60 s only).
    for name in &hot {
        up.add(&format!("{name} 3600 IN A 192.0.2.99"));
    }
    for _ in 0..3 {
        for name in &hot {
            udp(s.addr, &query(name, RecordType::A, None)).await;
        }
    }
    // What the upstream saw of them while warming (a retry of a slow answer counts there,
    // not as a refetch during the flood).
    let warmed: Vec<usize> = hot.iter().map(|n| up.count(n, RecordType::A)).collect();
    // A random-subdomain flood, 1,000 names asked once each (every one a miss, forwarded),
    // while other clients keep asking the popular names.
    for i in 0..2000 {
        let name = format!("r{i:04}x.flood.example.com.");
        udp(s.addr, &query(&name, RecordType::A, None)).await;
        if i % 2 == 0 {
            let popular = &hot[(i / 2) % hot.len()];
            udp(s.addr, &query(popular, RecordType::A, None)).await;
        }
    }
    assert!(metric(&s, "clusterdns_cache_entries") <= 400.0);
    assert!(
        metric(&s, "clusterdns_cache_evictions_total") >= 1500.0,
        "flood answers refused at admission or evicted for room"
    );
    // The popular names were asked 1,000 times during the flood; an LRU cache of this size
    // loses nearly all of them (925). Most floods cost none: TinyLFU refuses the one-hit
    // names. Not every one: the frequency sketch is sized by the cache (400), and a flood
    // five times that size fills it with noise, so now and then (in 7% of 1,000 caches with
    // random hash seeds, simulated in process) one flood name's estimate beats the least
    // recently asked popular name, which is evicted. Its refetch is then admitted over the
    // next least recently asked popular name, and so on along the names until one asked
    // more often stops it: up to 13% of the popular queries went upstream.
    let refetched: usize = (hot.iter().zip(&warmed))
        .map(|(n, before)| up.count(n, RecordType::A) - before)
        .sum();
    assert!(
        refetched <= 200,
        "{refetched} of 1,000 popular queries during the flood went upstream"
    );
}

#[tokio::test]
async fn externalname_completion_keeps_the_upstream_truncation() {
    let up = upstream().await;
    up.add("payments.example.com. 120 IN A 192.0.2.21");
    up.behave("payments.example.com.", Behaviour::TruncateAlways);
    let s = server(&["--upstream", &up.addr().to_string()]).await;
    let (r, _) = udp(
        s.addr,
        &query(
            "payments.shop.svc.cluster.local.",
            RecordType::A,
            Some(1232),
        ),
    )
    .await;
    assert!(r.metadata.truncation, "TC passed on");
    assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
    // A truncated answer is not cached.
    udp(
        s.addr,
        &query(
            "payments.shop.svc.cluster.local.",
            RecordType::A,
            Some(1232),
        ),
    )
    .await;
    assert_eq!(forwarded(&up).len(), 4, "UDP then TCP, twice");
}

#[tokio::test]
async fn forwarded_answers_too_long_for_the_client_are_cut_at_a_record_boundary() {
    let up = upstream().await;
    // 40 addresses: 674 bytes, over the 512 of a query without EDNS.
    for i in 1..=40 {
        up.add(&format!("many.example.com. 300 IN A 192.0.2.{i}"));
    }
    let s = server(&["--upstream", &up.addr().to_string()]).await;
    let q = query("many.example.com.", RecordType::A, None)
        .to_vec()
        .unwrap();
    for ask_no in ["miss", "cache hit"] {
        let raw = common::udp_raw(s.addr, &q, Duration::from_secs(2))
            .await
            .expect("a reply");
        let r = common::strict::read(&raw).unwrap_or_else(|e| panic!("{ask_no}: {e}"));
        assert!(r.truncated, "{ask_no}: {r:?} {} bytes", raw.len());
        assert!(raw.len() <= 512, "{ask_no}");
        assert_eq!(
            usize::from(r.counts[0]),
            (512 - r.question_end) / 16,
            "{ask_no}: as many as fit"
        );
    }
    // With room for all of them, all of them.
    let (m, _) = udp(
        s.addr,
        &query("many.example.com.", RecordType::A, Some(1232)),
    )
    .await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 40);
}

#[tokio::test]
async fn the_cluster_zone_never_waits_behind_a_cached_nxdomain() {
    let up = upstream().await;
    let s = server(&["--upstream", &up.addr().to_string()]).await;
    let name = "late.shop.svc.cluster.local.";
    assert!(
        ask(s.addr, name, RecordType::A)
            .await
            .starts_with("NXDomain aa")
    );
    std::fs::write(
        s.path("late.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: late, namespace: shop}\n\
         spec: {clusterIP: 10.96.10.99, ports: [{port: 80}]}\n",
    )
    .unwrap();
    let text = common::eventually(s.addr, name, RecordType::A, Duration::from_secs(5), |t| {
        t.contains("10.96.10.99")
    })
    .await;
    assert!(text.contains("10.96.10.99"), "{text}");
    assert!(
        forwarded(&up).is_empty(),
        "cluster names are never forwarded"
    );
}

/// Zeroes every TTL of a response, for comparing answers sent a second apart.
fn without_ttls(mut m: hickory_proto::op::Message) -> hickory_proto::op::Message {
    for r in m
        .answers
        .iter_mut()
        .chain(m.authorities.iter_mut())
        .chain(m.additionals.iter_mut())
    {
        r.ttl = 0;
    }
    m
}

#[tokio::test]
async fn cache_hits_answer_exactly_as_the_miss_did() {
    let up = upstream().await;
    up.add("alias.example.com. 60 IN CNAME www.example.com.");
    up.add("text.example.com. 200 IN TXT \"v=spf1 -all\" \"second string\"");
    up.add("mx.example.com. 300 IN A 192.0.2.25");
    up.set_soa(
        "example.com. 900 IN SOA ns1.example.com. hostmaster.example.com. 7 7200 900 1209600 120",
    );
    let u = up.addr().to_string();
    let s = server(&["--upstream", &u]).await;

    let cases: &[(&str, RecordType)] = &[
        ("www.example.com.", RecordType::A),
        ("alias.example.com.", RecordType::A),
        ("text.example.com.", RecordType::TXT),
        ("mail.example.com.", RecordType::MX),
        ("www.example.com.", RecordType::AAAA),
        ("missing.example.com.", RecordType::A),
    ];
    let mut hits = 0;
    for (name, qtype) in cases {
        for (payload, dnssec_ok, cd) in [
            (None, false, false),
            (Some(1232), false, false),
            (Some(4096), true, true),
            (Some(700), false, true),
        ] {
            let ask = || {
                let mut q = query(name, *qtype, payload);
                q.metadata.checking_disabled = cd;
                if let Some(e) = q.edns.as_mut() {
                    e.set_dnssec_ok(dnssec_ok);
                }
                q
            };
            let first = ask();
            let (miss, miss_len) = udp(s.addr, &first).await;
            let second = ask();
            let (hit, hit_len) = udp(s.addr, &second).await;
            hits += 1;
            let what = format!("{name} {qtype} payload {payload:?} DO {dnssec_ok} CD {cd}");
            // The same records; owner names may compress better than hickory's encoder does.
            assert!(
                hit_len <= miss_len,
                "{what}: {hit_len} bytes after {miss_len}"
            );
            for (a, b) in miss
                .answers
                .iter()
                .chain(&miss.authorities)
                .zip(hit.answers.iter().chain(&hit.authorities))
            {
                assert!(a.ttl - b.ttl <= 1, "{what}: TTL {} then {}", a.ttl, b.ttl);
            }
            let mut miss = without_ttls(miss);
            let mut hit = without_ttls(hit);
            miss.metadata.id = 0;
            hit.metadata.id = 0;
            assert_eq!(hit, miss, "{what}");
            assert!(
                hit.metadata.recursion_available && !hit.metadata.authoritative,
                "{what}"
            );
            assert_eq!(hit.metadata.checking_disabled, cd, "{what}: CD echoed");
            assert_eq!(
                hit.edns.as_ref().map(|e| e.flags().dnssec_ok),
                payload.map(|_| dnssec_ok),
                "{what}: DO echoed"
            );
            assert_eq!(
                hit.edns.as_ref().map(|e| e.max_payload()),
                payload.map(|p| p.clamp(512, 1232)),
                "{what}: payload"
            );
        }
    }
    // Each (name, type, DO, CD) missed once: everything else came from the cache.
    let misses = metric(&s, "clusterdns_cache_misses_total");
    let served = metric(&s, "clusterdns_cache_hits_total{type=\"success\"}")
        + metric(&s, "clusterdns_cache_hits_total{type=\"denial\"}");
    assert_eq!(
        misses + served,
        f64::from(2 * hits),
        "every query looked in the cache"
    );
    assert_eq!(misses, 18.0, "6 names × 3 (DO, CD) keys");
}
