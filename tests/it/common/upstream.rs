//! A scriptable fake upstream resolver on loopback for the forwarder's tests: records from
//! zone-file lines, per-suffix misbehaviour (delay, silence, rcodes, truncation, garbage, wrong
//! IDs or questions, relaying), and a log of every query it received. UDP and TCP share a port.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The SOA of negative answers until `set_soa` replaces it.
pub const DEFAULT_SOA: &str =
    "example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 1 7200 1800 86400 60";
/// Served for `. IN NS` (the forwarder's health probe) when no root NS record was added.
const ROOT_NS: &str = ". 518400 IN NS a.root-servers.net.";
/// The EDNS payload size the fake advertises (the DNS flag day 2020 value).
const OUR_PAYLOAD: u16 = 1232;
/// How long a relayed query waits for the next hop.
const RELAY_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest CNAME chain followed in one answer.
const MAX_CNAME_HOPS: usize = 8;

/// The transport a query came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

/// One query the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    pub proto: Proto,
    pub message: Message,
    pub from: SocketAddr,
}

/// How the fake treats questions under a suffix.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// From the records: NXDOMAIN/NODATA with the SOA otherwise; RA set, AA clear, RD and
    /// CD echoed, EDNS echoed (payload 1232, DO copied); with DO, the owners' RRSIGs too.
    Answer,
    /// Answer normally after this delay (each query independently).
    Delay(Duration),
    /// Answer normally once the gate is opened (each held query waits for it).
    Hold(Gate),
    /// Never answer.
    Silent,
    /// An empty answer with this rcode.
    Rcode(ResponseCode),
    /// Over UDP TC=1 with the answer cut to its first record; over TCP the full answer.
    TruncateUdp,
    /// TC=1 with the answer cut to its first record, over UDP and TCP alike (a broken server).
    TruncateAlways,
    /// A header with the query's ID and bad counts, then a dangling compression pointer.
    Malformed,
    /// A correct answer whose ID is not the query's.
    WrongId,
    /// A correct-looking answer whose question (and owners) are `wrong.<qname>`.
    WrongQuestion,
    /// Forward the query bytes over UDP to this address and return its reply unchanged.
    Relay(SocketAddr),
    /// Over TCP, the first query under the suffix gets half of its reply and then the
    /// connection is closed (a server dying mid-answer); later ones are answered.
    CutTcpOnce,
}

/// Holds queries (`Behaviour::Hold`) until a test opens it: the wait for an event that a
/// fixed delay only guesses at. Gates compare equal when they are the same gate.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets every held query (and every later one) through.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn passed(&self) {
        let mut open = self.0.subscribe();
        // The sender lives as long as `self`: the wait ends only when the gate opens.
        let _ = open.wait_for(|o| *o).await;
    }
}

impl PartialEq for Gate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A fake upstream DNS server; dropping it stops serving (as `stop`, without waiting).
pub struct FakeUpstream {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    running: Option<Running>,
}

/// The serving tasks; closing `shutdown` makes them drop their sockets and end.
struct Running {
    shutdown: watch::Sender<()>,
    tasks: [JoinHandle<()>; 2],
}

impl FakeUpstream {
    /// Serves on an ephemeral 127.0.0.1 port free for both UDP and TCP.
    pub async fn start() -> Self {
        for _ in 0..50 {
            let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = bind_tcp(addr) {
                let mut fake = Self::stopped(addr);
                fake.serve(udp, tcp);
                return fake;
            }
        }
        panic!("no loopback port free for both UDP and TCP");
    }

    /// Serves on `addr` (a fixed port, e.g. to stand in for an upstream that restarted).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let mut fake = Self::stopped(addr);
        fake.restart().await;
        fake
    }

    fn stopped(addr: SocketAddr) -> Self {
        let state = State {
            records: Vec::new(),
            soa: parse_record(DEFAULT_SOA),
            root_ns: parse_record(ROOT_NS),
            behaviours: Vec::new(),
            received: Vec::new(),
            in_flight: 0,
            max_in_flight: 0,
        };
        let state = Arc::new(Mutex::new(state));
        Self {
            addr,
            state,
            running: None,
        }
    }

    fn serve(&mut self, udp: UdpSocket, tcp: TcpListener) {
        let (shutdown, stop) = watch::channel(());
        let tasks = [
            tokio::spawn(serve_udp(udp, self.state.clone(), stop.clone())),
            tokio::spawn(serve_tcp(tcp, self.state.clone(), stop)),
        ];
        self.running = Some(Running { shutdown, tasks });
    }

    /// The address both sockets are bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a record from a zone-file line (`www.example.com. 300 IN A 192.0.2.1`, absolute
    /// names, RFC 3597 `\# len hex` for any type); same name and type form an RRset.
    pub fn add(&self, record_line: &str) {
        let record = parse_record(record_line);
        lock(&self.state).records.push(record);
    }

    /// Removes every record of `name` and `rtype`, so that later answers change.
    pub fn remove(&self, name: &str, rtype: RecordType) {
        let name = fqdn(name);
        lock(&self.state)
            .records
            .retain(|r| !(r.name == name && r.record_type() == rtype));
    }

    /// Replaces the SOA of negative answers (also served for SOA questions at its owner).
    pub fn set_soa(&self, record_line: &str) {
        let soa = parse_record(record_line);
        assert_eq!(
            soa.record_type(),
            RecordType::SOA,
            "{record_line}: not an SOA"
        );
        lock(&self.state).soa = soa;
    }

    /// Sets the behaviour for names at or under `suffix` (whole labels, any case; "" or "."
    /// for every name); the suffix with the most labels wins, and the default is `Answer`.
    pub fn behave(&self, suffix: &str, b: Behaviour) {
        let suffix = fqdn(suffix);
        let mut state = lock(&self.state);
        state.behaviours.retain(|(s, _)| *s != suffix);
        state.behaviours.push((suffix, b));
    }

    /// Every query received so far, in order of arrival.
    /// The most TCP queries it held unanswered at once (several per connection when the
    /// client pipelines).
    pub fn max_in_flight(&self) -> usize {
        lock(&self.state).max_in_flight
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }

    /// How many received queries asked `name` (any case) and `qtype`.
    pub fn count(&self, name: &str, qtype: RecordType) -> usize {
        let name = fqdn(name);
        let state = lock(&self.state);
        let asks = |m: &Message| {
            m.queries
                .first()
                .is_some_and(|q| *q.name() == name && q.query_type() == qtype)
        };
        state.received.iter().filter(|r| asks(&r.message)).count()
    }

    /// Forgets the received queries.
    pub fn clear(&self) {
        lock(&self.state).received.clear();
    }

    /// Stops serving and waits until both sockets (and all connections) are closed.
    pub async fn stop(&mut self) {
        if let Some(Running { shutdown, tasks }) = self.running.take() {
            drop(shutdown);
            for task in tasks {
                let _ = task.await;
            }
        }
    }

    /// Serves again on the same port with the same records, behaviours and log.
    pub async fn restart(&mut self) {
        self.stop().await;
        super::process::closed_for_good();
        let udp = UdpSocket::bind(self.addr).await;
        let udp = udp.unwrap_or_else(|e| panic!("binding UDP {}: {e}", self.addr));
        let tcp = bind_tcp(self.addr).unwrap_or_else(|e| panic!("binding TCP {}: {e}", self.addr));
        self.serve(udp, tcp);
    }
}

/// Parses one zone-file record line: `owner [ttl] [class] type rdata` with absolute names, RDATA
/// in presentation form (hickory's parser) or RFC 3597's `\# length hex` (any type, e.g. RRSIG).
pub fn parse_record(line: &str) -> Record {
    let (owner, mut rest) = split_token(line);
    let name = Name::from_ascii(owner).unwrap_or_else(|e| panic!("{line}: owner: {e}"));
    let (mut token, mut after) = split_token(rest);
    let mut ttl = 0;
    if let Ok(t) = token.parse::<u32>() {
        ttl = t;
        (token, after) = split_token(after);
    }
    if token.eq_ignore_ascii_case("IN") {
        (token, after) = split_token(after);
    }
    rest = after;
    let upper = token.to_ascii_uppercase();
    let rtype = match upper.strip_prefix("TYPE").map(u16::from_str) {
        Some(Ok(code)) => RecordType::from(code),
        _ => RecordType::from_str(&upper).unwrap_or_else(|e| panic!("{line}: type: {e}")),
    };
    let rdata = match rest.strip_prefix("\\#") {
        Some(generic) => generic_rdata(rtype, generic, line),
        None => RData::try_from_str(rtype, rest).unwrap_or_else(|e| panic!("{line}: {e}")),
    };
    Record::from_rdata(name, ttl, rdata)
}

/// RFC 3597 section 5: `\# <length> <hex, spaces allowed>`.
fn generic_rdata(rtype: RecordType, text: &str, line: &str) -> RData {
    let (length, hex) = split_token(text);
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let bytes: Vec<u8> = digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).unwrap_or_default();
            u8::from_str_radix(pair, 16).unwrap_or_else(|e| panic!("{line}: hex: {e}"))
        })
        .collect();
    assert_eq!(length.parse(), Ok(bytes.len()), "{line}: generic length");
    assert!(!bytes.is_empty(), "{line}: empty generic RDATA");
    RData::Unknown {
        code: rtype,
        rdata: NULL::with(bytes),
    }
}

fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

/// `name` as an absolute name; "" and "." are the root.
fn fqdn(name: &str) -> Name {
    if name.is_empty() || name == "." {
        return Name::root();
    }
    let mut name = Name::from_ascii(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    name.set_fqdn(true);
    name
}

/// What the fake knows, shared by its API and its serving tasks.
struct State {
    records: Vec<Record>,
    soa: Record,
    root_ns: Record,
    behaviours: Vec<(Name, Behaviour)>,
    received: Vec<Received>,
    /// TCP queries received and not answered yet, and the most there ever were.
    in_flight: usize,
    max_in_flight: usize,
}

/// The state is never left half-updated, so a poisoned lock is still good to read.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    /// Whether this TCP query is the one `CutTcpOnce` cuts (the behaviour then turns into
    /// `Answer`).
    fn take_cut(&mut self, name: &Name) -> bool {
        let matching = self.behaviours.iter_mut().filter(|(s, _)| s.zone_of(name));
        match matching.max_by_key(|(s, _)| s.iter().count()) {
            Some((_, b)) if *b == Behaviour::CutTcpOnce => {
                *b = Behaviour::Answer;
                true
            }
            _ => false,
        }
    }

    fn behaviour_for(&self, name: &Name) -> Behaviour {
        let matching = self.behaviours.iter().filter(|(s, _)| s.zone_of(name));
        let best = matching.max_by_key(|(s, _)| s.iter().count());
        best.map_or(Behaviour::Answer, |(_, b)| b.clone())
    }

    /// Records owned by `name`: the added ones, the SOA, and the root NS fallback.
    fn at(&self, name: &Name) -> Vec<&Record> {
        let mut found: Vec<&Record> = self.records.iter().filter(|r| r.name == *name).collect();
        if self.soa.name == *name && !found.iter().any(|r| r.record_type() == RecordType::SOA) {
            found.push(&self.soa);
        }
        if name.is_root() && !found.iter().any(|r| r.record_type() == RecordType::NS) {
            found.push(&self.root_ns);
        }
        found
    }

    /// A name exists when it or a name below it owns a record (else NXDOMAIN, RFC 8020).
    fn exists(&self, name: &Name) -> bool {
        name.is_root()
            || name.zone_of(&self.soa.name)
            || self.records.iter().any(|r| name.zone_of(&r.name))
    }

    /// The rcode, answer and authority for a question, following CNAMEs (RFC 6604: the rcode
    /// and the SOA are those of the last name in the chain).
    fn lookup(&self, qname: &Name, qtype: RecordType) -> (ResponseCode, Vec<Record>, Vec<Record>) {
        let mut answers = Vec::new();
        let mut name = qname.clone();
        for _ in 0..MAX_CNAME_HOPS {
            let owned = self.at(&name);
            let matching: Vec<Record> = owned
                .iter()
                .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                .map(|r| (*r).clone())
                .collect();
            if !matching.is_empty() {
                answers.extend(matching);
                return (ResponseCode::NoError, answers, Vec::new());
            }
            let cname = owned.iter().find_map(|r| match &r.data {
                RData::CNAME(target) => Some((*r, target.0.clone())),
                _ => None,
            });
            match cname {
                Some((record, target)) => {
                    answers.push(record.clone());
                    name = target;
                }
                None => {
                    let rcode = match self.exists(&name) {
                        true => ResponseCode::NoError,
                        false => ResponseCode::NXDomain,
                    };
                    return (rcode, answers, vec![self.soa.clone()]);
                }
            }
        }
        (ResponseCode::NoError, answers, Vec::new())
    }

    /// The added RRSIGs at the owners of `section`'s records that cover their types.
    fn signatures(&self, section: &[Record]) -> Vec<Record> {
        let mut sigs: Vec<Record> = Vec::new();
        for r in section
            .iter()
            .filter(|r| r.record_type() != RecordType::RRSIG)
        {
            for sig in self.records.iter().filter(|s| s.name == r.name) {
                if covers(sig, r.record_type()) && !sigs.contains(sig) {
                    sigs.push(sig.clone());
                }
            }
        }
        sigs
    }
}

/// An RRSIG's RDATA starts with the type it covers (RFC 4034 section 3.1).
fn covers(sig: &Record, rtype: RecordType) -> bool {
    match &sig.data {
        RData::Unknown { code, rdata } if *code == RecordType::RRSIG => rdata
            .anything
            .get(..2)
            .is_none_or(|b| u16::from_be_bytes([b[0], b[1]]) == u16::from(rtype)),
        _ => false,
    }
}

async fn serve_udp(socket: UdpSocket, state: Arc<Mutex<State>>, mut stop: watch::Receiver<()>) {
    let socket = Arc::new(socket);
    let mut queries = JoinSet::new();
    let mut buf = vec![0u8; 65535];
    loop {
        let got = tokio::select! {
            _ = stop.changed() => break,
            got = socket.recv_from(&mut buf) => got,
        };
        // A receive error (e.g. a reported ICMP error) concerns one datagram, not the socket.
        let Ok((n, from)) = got else { continue };
        let raw = buf[..n].to_vec();
        let Some(query) = take_query(&state, Proto::Udp, &raw, from) else {
            continue;
        };
        let (socket, state) = (socket.clone(), state.clone());
        queries.spawn(async move {
            if let Some(reply) = respond(&state, Proto::Udp, &query, &raw).await {
                let _ = socket.send_to(&reply, from).await;
            }
        });
        while queries.try_join_next().is_some() {}
    }
    queries.shutdown().await;
}

async fn serve_tcp(listener: TcpListener, state: Arc<Mutex<State>>, mut stop: watch::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        let got = tokio::select! {
            _ = stop.changed() => break,
            got = listener.accept() => got,
        };
        let Ok((stream, from)) = got else { continue };
        connections.spawn(serve_connection(stream, from, state.clone(), stop.clone()));
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    // Each connection sees the same signal and ends once its sockets are closed.
    while connections.join_next().await.is_some() {}
}

/// Several length-prefixed queries per connection (RFC 7766), answered as they complete.
async fn serve_connection(
    stream: TcpStream,
    from: SocketAddr,
    state: Arc<Mutex<State>>,
    mut stop: watch::Receiver<()>,
) {
    let (mut reader, writer) = stream.into_split();
    let writer = Arc::new(tokio::sync::Mutex::new(writer));
    let mut queries = JoinSet::new();
    loop {
        let frame = tokio::select! {
            _ = stop.changed() => break,
            frame = read_frame(&mut reader) => frame,
        };
        let Some(raw) = frame else {
            // The client closed its side: finish what it still waits for, unless stopped.
            let pending = async { while queries.join_next().await.is_some() {} };
            tokio::select! {
                _ = stop.changed() => {}
                _ = pending => {}
            }
            break;
        };
        let Some(query) = take_query(&state, Proto::Tcp, &raw, from) else {
            continue;
        };
        let cut = query
            .queries
            .first()
            .is_some_and(|q| lock(&state).take_cut(q.name()));
        if cut {
            let reply = fit(answer(&state, &query), Proto::Tcp, &query).unwrap_or_default();
            let len = u16::try_from(reply.len()).unwrap_or(u16::MAX);
            let mut half = len.to_be_bytes().to_vec();
            half.extend_from_slice(&reply[..reply.len() / 2]);
            let mut w = writer.lock().await;
            let _ = w.write_all(&half).await;
            let _ = w.shutdown().await;
            break;
        }
        let (writer, state) = (writer.clone(), state.clone());
        {
            let mut st = lock(&state);
            st.in_flight += 1;
            st.max_in_flight = st.max_in_flight.max(st.in_flight);
        }
        queries.spawn(async move {
            let reply = respond(&state, Proto::Tcp, &query, &raw).await;
            lock(&state).in_flight -= 1;
            if let Some(reply) = reply {
                write_frame(&writer, &reply).await;
            }
        });
        while queries.try_join_next().is_some() {}
    }
    queries.shutdown().await;
}

async fn read_frame(reader: &mut OwnedReadHalf) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    reader.read_exact(&mut len).await.ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    reader.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

async fn write_frame(writer: &tokio::sync::Mutex<OwnedWriteHalf>, reply: &[u8]) {
    let Ok(len) = u16::try_from(reply.len()) else {
        return;
    };
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(reply);
    let _ = writer.lock().await.write_all(&framed).await;
}

/// Parses and logs a query; anything else (garbage, responses) is dropped unanswered.
fn take_query(state: &Mutex<State>, proto: Proto, raw: &[u8], from: SocketAddr) -> Option<Message> {
    let message = Message::from_vec(raw).ok()?;
    if message.metadata.message_type != MessageType::Query {
        return None;
    }
    let received = Received {
        proto,
        message: message.clone(),
        from,
    };
    lock(state).received.push(received);
    Some(message)
}

/// The reply bytes for a query, per the behaviour for its name; `None` is silence.
async fn respond(
    state: &Mutex<State>,
    proto: Proto,
    query: &Message,
    raw: &[u8],
) -> Option<Vec<u8>> {
    let qname = query
        .queries
        .first()
        .map_or_else(Name::root, |q| q.name().clone());
    let behaviour = lock(state).behaviour_for(&qname);
    match behaviour {
        Behaviour::Answer | Behaviour::CutTcpOnce => fit(answer(state, query), proto, query),
        Behaviour::Delay(delay) => {
            tokio::time::sleep(delay).await;
            fit(answer(state, query), proto, query)
        }
        Behaviour::Hold(gate) => {
            gate.passed().await;
            fit(answer(state, query), proto, query)
        }
        Behaviour::Silent => None,
        Behaviour::Rcode(rcode) => {
            let mut reply = reply_header(query);
            reply.metadata.response_code = rcode;
            fit(reply, proto, query)
        }
        Behaviour::TruncateUdp | Behaviour::TruncateAlways => {
            let always = behaviour == Behaviour::TruncateAlways;
            let mut reply = answer(state, query);
            if proto == Proto::Udp || always {
                reply.metadata.truncation = true;
                reply.answers.truncate(1);
                reply.authorities.clear();
                reply.additionals.clear();
            }
            fit(reply, proto, query)
        }
        Behaviour::Malformed => {
            let [hi, lo] = query.metadata.id.to_be_bytes();
            // QR RD RA, one question and three answers claimed, then a pointer past the end.
            Some(vec![hi, lo, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0, 0xc0, 0xff])
        }
        Behaviour::WrongId => {
            let mut reply = answer(state, query);
            reply.metadata.id = reply.metadata.id.wrapping_add(1);
            fit(reply, proto, query)
        }
        Behaviour::WrongQuestion => fit(wrong_question(answer(state, query)), proto, query),
        Behaviour::Relay(next) => relay(raw, next).await,
    }
}

/// A response to `query` with nothing in it yet: ID, opcode and question copied, RD and CD
/// echoed, RA set, and EDNS (our payload, DO copied) when the query had it.
fn reply_header(query: &Message) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.checking_disabled = query.metadata.checking_disabled;
    reply.metadata.recursion_available = true;
    reply.queries = query.queries.clone();
    if let Some(asked) = &query.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(OUR_PAYLOAD);
        edns.set_dnssec_ok(asked.flags().dnssec_ok);
        reply.edns = Some(edns);
    }
    reply
}

fn answer(state: &Mutex<State>, query: &Message) -> Message {
    let mut reply = reply_header(query);
    let Some(question) = query.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply;
    };
    if query.metadata.op_code != OpCode::Query {
        reply.metadata.response_code = ResponseCode::NotImp;
        return reply;
    }
    let state = lock(state);
    let (rcode, answers, authorities) = state.lookup(question.name(), question.query_type());
    reply.metadata.response_code = rcode;
    reply.answers = answers;
    reply.authorities = authorities;
    if query.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok) {
        let signed = [
            state.signatures(&reply.answers),
            state.signatures(&reply.authorities),
        ];
        let [answer_sigs, authority_sigs] = signed;
        reply.answers.extend(answer_sigs);
        reply.authorities.extend(authority_sigs);
    }
    reply
}

/// Renames the question, and the records it owns, to `wrong.<qname>`.
fn wrong_question(mut reply: Message) -> Message {
    let Some(question) = reply.queries.first_mut() else {
        return reply;
    };
    let asked = question.name().clone();
    let Ok(other) = asked.prepend_label("wrong") else {
        return reply;
    };
    for record in reply.answers.iter_mut().filter(|r| r.name == asked) {
        record.name = other.clone();
    }
    question.set_name(other);
    reply
}

/// Encodes a reply; over UDP one larger than the client's EDNS size (or 512) is cut to an
/// empty answer with TC set (RFC 1035 4.2.1, RFC 6891 6.2.3), so the client retries over TCP.
fn fit(mut reply: Message, proto: Proto, query: &Message) -> Option<Vec<u8>> {
    let bytes = reply.to_vec().ok()?;
    let limit = query
        .edns
        .as_ref()
        .map_or(512, |e| e.max_payload().max(512));
    if proto == Proto::Tcp || bytes.len() <= usize::from(limit) {
        return Some(bytes);
    }
    reply.metadata.truncation = true;
    reply.answers.clear();
    reply.authorities.clear();
    reply.additionals.clear();
    reply.to_vec().ok()
}

/// Sends the query bytes unchanged to `next` and returns its reply, if one comes in time.
async fn relay(raw: &[u8], next: SocketAddr) -> Option<Vec<u8>> {
    let local: SocketAddr = match next {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.ok()?;
    socket.connect(next).await.ok()?;
    socket.send(raw).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(RELAY_TIMEOUT, socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

/// A listener with SO_REUSEADDR, so a restart can bind while old connections linger.
fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}
