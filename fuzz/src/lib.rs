//! What the clusterdns fuzz targets share: snapshots of the example cluster, the request path
//! as clusterdns's UDP and TCP loops run it for one packet, and the checks on an answer.

pub mod checks;
pub mod structured;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use clusterdns::cluster::{ALL_KINDS, Cluster, Delta};
use clusterdns::metrics::Metrics;
use clusterdns::server::DnsHandler;
use clusterdns::source::manifests::ManifestSource;
use clusterdns::zone::{PodsMode, Snapshot, ZoneConfig};
use hickory_proto::op::{Header, HeaderCounts, MessageType, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;

/// The cluster zone every fixture serves.
pub const ZONE: &str = "cluster.local";

/// The manifests of the example cluster (`examples/cluster`).
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cluster")
}

/// A snapshot of the manifests in `dir`, built as `app::start` builds the first one. With
/// `synced == false` the sources have not finished listing (NXDOMAIN turns into SERVFAIL).
pub fn snapshot_from_dir(dir: &Path, pods: PodsMode, ttl: u32, synced: bool) -> Arc<Snapshot> {
    let config = Arc::new(ZoneConfig::new(ZONE, ttl, pods).expect("zone name"));
    let mut cluster = Cluster::new(config, &ALL_KINDS);
    let scan = ManifestSource::new(dir)
        .scan(true)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    assert!(
        scan.errors.is_empty(),
        "example manifests rejected: {:?}",
        scan.errors
    );
    let mut deltas = scan.deltas;
    if synced {
        deltas.extend(ALL_KINDS.map(Delta::Synced));
    }
    cluster.apply(deltas);
    cluster.snapshot()
}

/// The zone behind a handler, as the server holds it.
fn handler_for(snapshot: Arc<Snapshot>) -> DnsHandler {
    DnsHandler::new(Arc::new(ArcSwap::new(snapshot)), Metrics::new().server)
}

/// The example cluster with the defaults (`--pods insecure`, TTL 30), synced.
pub static EXAMPLE: LazyLock<Arc<Snapshot>> =
    LazyLock::new(|| snapshot_from_dir(&example_dir(), PodsMode::Insecure, 30, true));

/// Handlers over the example cluster, built once per process, and the runtime that drives them.
pub struct Fixture {
    /// `--pods insecure`, TTL 30 (the defaults), synced.
    pub insecure: DnsHandler,
    /// `--pods verified`, TTL 0, synced.
    pub verified: DnsHandler,
    /// Defaults, but the first full list has not arrived.
    pub unsynced: DnsHandler,
    /// A small current-thread runtime: the handler's fast path never waits on it.
    pub runtime: tokio::runtime::Runtime,
}

/// The process-wide fixture.
pub static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = example_dir();
    Fixture {
        insecure: handler_for(Arc::clone(&EXAMPLE)),
        verified: handler_for(snapshot_from_dir(&dir, PodsMode::Verified, 0, true)),
        unsynced: handler_for(snapshot_from_dir(&dir, PodsMode::Insecure, 30, false)),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime"),
    }
});

impl Fixture {
    /// The handler a query ID selects, so that one corpus reaches every fixture: IDs ending in
    /// binary 10 go to `verified`, 11 to `unsynced`, the rest to `insecure`.
    pub fn handler_for_id(&self, id: u16) -> &DnsHandler {
        match id & 3 {
            2 => &self.verified,
            3 => &self.unsynced,
            _ => &self.insecure,
        }
    }
}

/// The transport a query ID selects: TCP when its top four bits are all set, else UDP.
pub fn protocol_for_id(id: u16) -> Protocol {
    if id & 0xF000 == 0xF000 {
        Protocol::Tcp
    } else {
        Protocol::Udp
    }
}

/// What the server did with one packet.
pub enum Served {
    /// No answer at all: shorter than a header, or a response (hickory-server drops both).
    Dropped,
    /// The header was read but the rest was not: the FORMERR hickory-server sends itself.
    FormErr {
        /// The header of the packet.
        header: Header,
        /// The responses written.
        sent: Vec<Vec<u8>>,
    },
    /// The request reached our handler.
    Handled {
        /// The request as the handler saw it.
        request: Box<Request>,
        /// The responses written.
        sent: Vec<Vec<u8>>,
    },
}

/// Runs `packet` through clusterdns's own request path (`server::answer_raw`, what its UDP and
/// TCP loops call for every packet), and says which way it went.
pub fn serve(handler: &DnsHandler, packet: &[u8], protocol: Protocol) -> Served {
    let runtime = &FIXTURE.runtime;
    let src = SocketAddr::from(([127, 0, 0, 1], 40000));
    let reply = runtime.block_on(clusterdns::server::answer_raw(
        handler,
        packet.to_vec(),
        src,
        protocol,
    ));
    let sent: Vec<Vec<u8>> = reply.into_iter().collect();
    let Ok(header) = Header::read(&mut BinDecoder::new(packet)) else {
        assert!(
            sent.is_empty(),
            "a packet without a header is never answered"
        );
        return Served::Dropped;
    };
    if header.metadata.message_type == MessageType::Response {
        assert!(
            sent.is_empty(),
            "a response (QR=1) is never answered, readable or not"
        );
        return Served::Dropped;
    }
    match Request::from_bytes(packet.to_vec(), src, protocol) {
        Err(_) => Served::FormErr { header, sent },
        Ok(request) => Served::Handled {
            request: Box::new(request),
            sent,
        },
    }
}

/// The largest answer the request allows over UDP: 512 without EDNS (RFC 1035 §4.2.1),
/// else the client's payload size capped at `wire::MAX_UDP_PAYLOAD`, never below 512 (RFC 6891 §6.2.5).
pub fn udp_limit(request: Option<&Request>) -> usize {
    let payload = request
        .and_then(|r| r.edns.as_ref())
        .map_or(512, |e| clusterdns::wire::clamp_payload(e.max_payload()));
    usize::from(payload)
}

/// Whether `bytes` is the bare SERVFAIL header the server answers with when a response
/// cannot be encoded.
pub fn is_encode_fallback(bytes: &[u8]) -> bool {
    bytes.len() == 12
        && Header::read(&mut BinDecoder::new(bytes)).is_ok_and(|h| {
            h.metadata.response_code == ResponseCode::ServFail
                && h.counts == HeaderCounts::default()
        })
}

/// A response as comparable text: header, question, every record as zone-file text (the
/// spelling of names included), and the OPT. Two encodings of one message describe alike.
pub fn describe(bytes: &[u8]) -> String {
    let Ok(m) = hickory_proto::op::Message::from_vec(bytes) else {
        return format!("undecodable: {bytes:02x?}");
    };
    let h = &m.metadata;
    let mut s = format!(
        "id={} qr={:?} op={:?} aa={} tc={} rd={} ra={} ad={} cd={} rcode={:?} counts={}/{}/{}/{}\n",
        h.id,
        h.message_type,
        h.op_code,
        h.authoritative,
        h.truncation,
        h.recursion_desired,
        h.recursion_available,
        h.authentic_data,
        h.checking_disabled,
        h.response_code,
        m.queries.len(),
        m.answers.len(),
        m.authorities.len(),
        m.additionals.len() + usize::from(m.edns.is_some()),
    );
    for q in &m.queries {
        s.push_str(&format!(
            "? {} {} {}\n",
            q.name(),
            q.query_class(),
            q.query_type()
        ));
    }
    for (section, records) in [
        ("an", &m.answers),
        ("ns", &m.authorities),
        ("ad", &m.additionals),
    ] {
        for r in records {
            s.push_str(&format!("{section} {r}\n"));
        }
    }
    if let Some(e) = &m.edns {
        s.push_str(&format!(
            "opt payload={} version={} do={} options={:?}\n",
            e.max_payload(),
            e.version(),
            e.flags().dnssec_ok,
            e.options()
        ));
    }
    s
}

/// The ID every `upstream_reply` query goes out with (the seeds' replies carry it).
pub const UPSTREAM_ID: u16 = 0x5eed;

/// The upstream queries the `upstream_reply` target answers; its first input byte picks one.
pub fn upstream_queries() -> Vec<clusterdns::forward::Outgoing> {
    use clusterdns::forward::Outgoing;
    use hickory_proto::rr::{DNSClass, Name, RecordType};
    let q = |name: &str, qtype, edns| Outgoing {
        name: Name::from_ascii(name).unwrap_or_else(|e| panic!("{name}: {e}")),
        qtype,
        qclass: DNSClass::IN,
        rd: true,
        cd: false,
        edns,
    };
    vec![
        q("example.com.", RecordType::A, Some((1232, false))),
        q("www.Example.com.", RecordType::AAAA, None),
        q("example.com.", RecordType::TXT, Some((1232, true))),
        q(
            "_sip._udp.example.com.",
            RecordType::SRV,
            Some((512, false)),
        ),
    ]
}
