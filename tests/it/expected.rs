//! `examples/cluster/EXPECTED.md`, every row: its Markdown tables are read here and each query
//! is asked, over UDP and over TCP, of a server serving `examples/cluster` with the flags the
//! page names, and the answer compared with the row. A row the page gains is tested as it is
//! written; a row the server stops answering as written fails here.

use crate::common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::str::FromStr;

use common::{TestServer, example_dir, query, tcp, udp};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

/// The flags EXPECTED.md's first lines give the server (with `--no-forward`, which the test
/// server adds itself).
const FLAGS: [&str; 4] = [
    "--reverse-cidr",
    "10.96.0.0/12",
    "--reverse-cidr",
    "10.244.0.0/16",
];

/// One row: the query and what must come back.
#[derive(Debug)]
struct Row {
    line: usize,
    name: String,
    qtype: RecordType,
    want: Want,
}

#[derive(Debug, PartialEq)]
enum Want {
    Rcode(ResponseCode),
    /// NOERROR with these answers, in any order; an item ending in `…` is a prefix.
    Answers(Vec<String>),
}

/// The text between backquotes, in order.
fn quoted(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn want(cell: &str) -> Want {
    let cell = cell.trim();
    if cell == "NXDOMAIN" {
        Want::Rcode(ResponseCode::NXDomain)
    } else if cell.starts_with("NOERROR, no answer") {
        Want::Answers(Vec::new())
    } else if cell.contains("REFUSED with `--no-forward`") {
        Want::Rcode(ResponseCode::Refused)
    } else {
        let items = quoted(cell);
        assert!(!items.is_empty(), "an answer this test can read: {cell:?}");
        Want::Answers(items)
    }
}

/// The rows of every table of `text` that has a query column and an answer column, each
/// table in the order found.
fn tables(text: &str) -> Vec<Vec<Row>> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((_, line)) = lines.next() {
        if !line.starts_with('|') {
            continue;
        }
        let header: Vec<&str> = line.split('|').map(str::trim).collect();
        let q = header.iter().position(|h| h.starts_with("Query"));
        let a = header
            .iter()
            .position(|h| *h == "Expected answer" || *h == "Answer");
        let (Some(q), Some(a)) = (q, a) else {
            continue;
        };
        lines.next(); // |---|---|
        let mut rows = Vec::new();
        while let Some((n, row)) = lines.next_if(|(_, l)| l.starts_with('|')) {
            let cells: Vec<&str> = row.split('|').collect();
            assert_eq!(cells.len(), header.len(), "line {}: {row}", n + 1);
            let asked = quoted(cells[q]);
            let (name, qtype) = asked[0]
                .split_once(' ')
                .unwrap_or_else(|| panic!("line {}: `<name> <type>`", n + 1));
            rows.push(Row {
                line: n + 1,
                name: format!("{name}."),
                qtype: RecordType::from_str(qtype).unwrap(),
                want: want(cells[a]),
            });
        }
        out.push(rows);
    }
    out
}

/// An answer's data as dig +short shows it: TXT strings in quotes.
fn data(r: &RData) -> String {
    match r {
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|s| format!("\"{}\"", String::from_utf8_lossy(s)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn check(row: &Row, m: &Message, how: &str, ttls: bool) {
    let at = format!(
        "EXPECTED.md line {} ({how}): {} {}",
        row.line, row.name, row.qtype
    );
    match &row.want {
        Want::Rcode(rcode) => {
            assert_eq!(m.metadata.response_code, *rcode, "{at}");
            assert!(m.answers.is_empty(), "{at}: no answers");
        }
        Want::Answers(items) => {
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{at}");
            let got: BTreeSet<String> = m.answers.iter().map(|r| data(&r.data)).collect();
            assert_eq!(got.len(), m.answers.len(), "{at}: no repeated records");
            assert_eq!(got.len(), items.len(), "{at}: {got:?}, want {items:?}");
            for item in items {
                let hit = match item.strip_suffix('…') {
                    Some(prefix) => got.iter().any(|g| g.starts_with(prefix.trim_end())),
                    None => got.contains(item),
                };
                assert!(hit, "{at}: {item:?} not in {got:?}");
            }
            // "Every record has TTL 30, except the dns-version TXT (TTL 28800)".
            if ttls {
                let ttl = if row.name.starts_with("dns-version.") {
                    28800
                } else {
                    30
                };
                for r in &m.answers {
                    assert_eq!(r.ttl, ttl, "{at}: {r}");
                }
            }
        }
    }
}

async fn ask_all(addr: SocketAddr, rows: &[Row], ttls: bool) {
    for row in rows {
        let q = query(&row.name, row.qtype, Some(1232));
        let (m, _) = udp(addr, &q).await;
        check(row, &m, "UDP", ttls);
        check(row, &tcp(addr, &q).await, "TCP", ttls);
    }
}

fn expected_md() -> String {
    std::fs::read_to_string(example_dir().join("EXPECTED.md")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_expected_md_is_answered_as_written() {
    let text = expected_md();
    // The page names the flags this test serves with.
    for flag in FLAGS.chunks(2) {
        assert!(
            text.contains(&flag.join(" ")),
            "EXPECTED.md names {}",
            flag.join(" ")
        );
    }
    let tables = tables(&text);
    assert_eq!(
        tables.len(),
        2,
        "the cluster table and the external-zone table"
    );
    let (cluster, external) = (&tables[0], &tables[1]);
    assert_eq!(cluster.len(), 28, "every numbered row read");
    assert!(external.len() >= 6, "{external:?}");

    let s = TestServer::example(&FLAGS).await;
    ask_all(s.addr, cluster, true).await;
    s.running.shutdown().await;

    let mut flags = FLAGS.to_vec();
    flags.extend(["--external-zone", "example.com"]);
    let s = TestServer::example(&flags).await;
    ask_all(s.addr, external, false).await;
    // The cluster table holds with the external zone served too.
    ask_all(s.addr, cluster, true).await;
    s.running.shutdown().await;
}

/// Row 22, a pod-range address with no record: NXDOMAIN where the server is authoritative for
/// the range (`--reverse-cidr`, as CoreDNS for a reverse zone listed in its kubernetes
/// plugin); without it, the name is not the server's: REFUSED with `--no-forward`, forwarded
/// otherwise (CoreDNS's default Corefile falls through `in-addr.arpa` to `forward`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_pod_address_is_nxdomain_only_inside_a_reverse_cidr() {
    let name = "32.3.244.10.in-addr.arpa.";
    let q = query(name, RecordType::PTR, Some(1232));
    let s = TestServer::example(&FLAGS).await;
    let (m, _) = udp(s.addr, &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert_eq!(m.authorities.len(), 1, "the SOA of the negative answer");
    s.running.shutdown().await;

    let s = TestServer::example(&[]).await;
    let (m, _) = udp(s.addr, &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // A known address needs no flag.
    let (m, _) = udp(
        s.addr,
        &query("30.1.244.10.in-addr.arpa.", RecordType::PTR, None),
    )
    .await;
    assert_eq!(m.answers.len(), 1);
    s.running.shutdown().await;
}

#[test]
fn the_table_reader_reads_each_kind_of_cell() {
    let text = "| # | Query (`<name> <type>`) | Expected answer | Why |\n|---|---|---|---|\n\
        | 1 | `a.b TXT` | `\"x\"` | w |\n| 2 | `c.d A` | `1.2.3.4`, `5.6.7.8` | w |\n\
        | 3 | `e.f AAAA` | NOERROR, no answer | w |\n| 4 | `g.h A` | NXDOMAIN | w |\n\n\
        | Query | Answer | Why |\n|---|---|---|\n| `i.j A` | not ours (forwarded, or REFUSED with `--no-forward`) | w |\n";
    let t = tables(text);
    assert_eq!(t.len(), 2);
    let wants: Vec<&Want> = t.iter().flatten().map(|r| &r.want).collect();
    assert_eq!(
        wants,
        [
            &Want::Answers(vec!["\"x\"".into()]),
            &Want::Answers(vec!["1.2.3.4".into(), "5.6.7.8".into()]),
            &Want::Answers(vec![]),
            &Want::Rcode(ResponseCode::NXDomain),
            &Want::Rcode(ResponseCode::Refused),
        ]
    );
    assert_eq!(t[0][1].name, "c.d.");
    assert_eq!(t[0][1].qtype, RecordType::A);
}
