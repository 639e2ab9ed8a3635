//! An in-process emulator of the Kubernetes API server's list/watch protocol over plain HTTP
//! on 127.0.0.1, for integration tests of the Kubernetes source.
//!
//! Read-only core v1 `services`, `pods`, `namespaces`, `configmaps`, discovery.k8s.io/v1
//! `endpointslices`, networking.k8s.io/v1 `ingresses`, the custom resources
//! multicluster.x-k8s.io/v1alpha1 `serviceimports`, gateway.networking.k8s.io/v1 `gateways`,
//! `httproutes`, `grpcroutes` and v1alpha2 `tlsroutes` (cluster-wide and per namespace) and
//! `/version`, as the real server serves them: one global
//! resourceVersion; LIST paged by `limit`/`continue`, items without `apiVersion`/`kind`, label
//! and field selectors (`k=v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`); WATCH as one JSON event per line of a chunked
//! body, replayed from `resourceVersion`, a `410 Expired` ERROR event once that is compacted
//! away, BOOKMARKs, `timeoutSeconds`; streaming lists (`sendInitialEvents=true`, ended by the
//! `k8s.io/initial-events-end` bookmark) or, switched off, the `422 Invalid` of a server whose
//! WatchList feature gate is off; errors as `Status` objects. Tests script changes, compaction,
//! failures, cut streams, stop/restart on the same port and garbage in watch streams; 429s
//! with Retry-After, events and LIST bodies cut mid-object.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A served resource: plural, apiVersion, kind, namespaced.
struct Res(&'static str, &'static str, &'static str, bool);

const SLICES: &str = "discovery.k8s.io/v1";
const INGRESSES: &str = "networking.k8s.io/v1";
const IMPORTS: &str = "multicluster.x-k8s.io/v1alpha1";
const GATEWAYS: &str = "gateway.networking.k8s.io/v1";
const GATEWAYS_ALPHA: &str = "gateway.networking.k8s.io/v1alpha2";
const RESOURCES: [Res; 11] = [
    Res("services", "v1", "Service", true),
    Res("pods", "v1", "Pod", true),
    Res("namespaces", "v1", "Namespace", false),
    Res("endpointslices", SLICES, "EndpointSlice", true),
    Res("ingresses", INGRESSES, "Ingress", true),
    Res("serviceimports", IMPORTS, "ServiceImport", true),
    Res("gateways", GATEWAYS, "Gateway", true),
    Res("httproutes", GATEWAYS, "HTTPRoute", true),
    Res("grpcroutes", GATEWAYS, "GRPCRoute", true),
    Res("tlsroutes", GATEWAYS_ALPHA, "TLSRoute", true),
    Res("configmaps", "v1", "ConfigMap", true),
];

const VERSION: &str = r#"{"major":"1","minor":"33","emulationMajor":"1","emulationMinor":"33",
"gitVersion":"v1.33.0","gitCommit":"60a317eadfcb839692a5551a6ae2ab6a1c9ec7a9",
"gitTreeState":"clean","buildDate":"2025-04-23T13:07:08Z","goVersion":"go1.24.2",
"compiler":"gc","platform":"linux/amd64"}"#;

/// What new objects get as `metadata.creationTimestamp` unless they bring one.
const CREATED: &str = "2025-05-01T12:00:00Z";
const NOT_FOUND: &str = "the server could not find the requested resource";
const WATCH_LIST_OFF: &str =
    "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled";

/// An object's key: resource index, namespace (`""` if cluster-scoped), name.
type Key = (usize, String, String);
type Params = HashMap<String, String>;
/// Where a watch's lines go; `None` cuts the stream.
type Sender = mpsc::UnboundedSender<Option<String>>;
type Serving = (oneshot::Sender<()>, JoinHandle<()>);
/// A response, or the `Status` object of a refusal.
type Reply = Result<Response, Value>;
/// A selector term: key, the values wanted (one for `=`, a set for `in`; `None` for just
/// presence), negated (`!=`, `notin`, `!k`).
type Term = (String, Option<Vec<String>>, bool);

/// What a request addresses: one resource, maybe one namespace, selectors.
struct Target {
    res: usize,
    ns: Option<String>,
    labels: Vec<Term>,
    fields: Vec<Term>,
}

impl Target {
    fn matches(&self, (res, ns, _): &Key, obj: &Obj) -> bool {
        if *res != self.res || self.ns.as_ref().is_some_and(|n| n != ns) {
            return false;
        }
        if self.labels.is_empty() && self.fields.is_empty() {
            return true;
        }
        let obj = &obj.full(*res);
        let holds = |(_, want, neg): &Term, actual: Option<&str>| match want {
            Some(vs) => actual.is_some_and(|a| vs.iter().any(|v| v == a)) != *neg,
            None => actual.is_some() != *neg,
        };
        let field = |path: &str| path.split('.').fold(obj, |v, part| &v[part]).as_str();
        (self.labels.iter()).all(|t| holds(t, obj["metadata"]["labels"][&t.0].as_str()))
            && (self.fields.iter()).all(|t| holds(t, field(&t.0)))
    }

    /// The event line a watch of this target gets for `c`, if any: a change that moves an
    /// object into or out of the selectors shows as ADDED or DELETED, as on the real server.
    fn line(&self, c: &Change, objects_first: bool) -> Option<String> {
        let now = self.matches(&c.key, &c.obj);
        let before = c.prev.as_ref().is_some_and(|p| self.matches(&c.key, p));
        let kind = match (c.kind, before, now) {
            ("MODIFIED", false, true) => "ADDED",
            ("MODIFIED", true, false) => "DELETED",
            (kind, _, true) => kind,
            _ => return None,
        };
        Some(object_line(kind, c.key.0, &c.obj, objects_first))
    }
}

fn terms(q: &Params, param: &str) -> Result<Vec<Term>, Value> {
    let text = q.get(param).map_or("", |s| s);
    // Split at commas outside parentheses (`env in (a,b)` is one term).
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    let mut out = Vec::new();
    for t in parts.into_iter().map(str::trim) {
        let set = |k: &str, rest: &str, neg: bool| -> Result<Term, Value> {
            let inner = (rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')')))
            .ok_or_else(|| bad(format!("unparsable {param} term {t:?}")))?;
            let values = inner.split(',').map(|v| v.trim().to_owned()).collect();
            Ok((k.trim().to_owned(), Some(values), neg))
        };
        if t.contains(['<', '>']) {
            return Err(bad(format!("unsupported {param} term {t:?}")));
        }
        let term = if let Some((k, rest)) = t.split_once(" notin ") {
            set(k, rest, true)?
        } else if let Some((k, rest)) = t.split_once(" in ") {
            set(k, rest, false)?
        } else if t.contains(['(', ' ']) {
            return Err(bad(format!("unsupported {param} term {t:?}")));
        } else if let Some((k, v)) = t.split_once("!=") {
            (k.to_owned(), Some(vec![v.to_owned()]), true)
        } else if let Some((k, v)) = t.split_once("==").or(t.split_once('=')) {
            (k.to_owned(), Some(vec![v.to_owned()]), false)
        } else if let Some(k) = t.strip_prefix('!') {
            (k.to_owned(), None, true)
        } else {
            (t.to_owned(), None, false)
        };
        if !term.0.is_empty() {
            out.push(term);
        }
    }
    Ok(out)
}

/// One stored change, kept for replay until compacted.
struct Change {
    rv: u64,
    key: Key,
    kind: &'static str,
    obj: Obj,
    prev: Option<Obj>,
}

/// A stored object, serialized once: its JSON without `apiVersion` and `kind`, as a list item
/// (a watch event puts them back from the resource). Text, not a `Value` tree, which would
/// take gigabytes for a cluster of a million endpoints.
#[derive(Clone)]
struct Obj(Arc<str>);

impl Obj {
    fn new(obj: &Value) -> Obj {
        let mut text = Vec::new();
        write_item(&mut text, obj);
        // serde_json writes UTF-8.
        Obj(String::from_utf8(text)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
            .into())
    }

    /// The object without `apiVersion` and `kind`.
    fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// Its `metadata`, read without building the rest (a slice of 100 endpoints is 25 KB).
    fn metadata(&self) -> Value {
        #[derive(serde::Deserialize)]
        struct Head {
            #[serde(default)]
            metadata: Value,
        }
        serde_json::from_str::<Head>(&self.0).map_or(Value::Null, |h| h.metadata)
    }

    /// The object with the `apiVersion` and `kind` of resource `res`.
    fn full(&self, res: usize) -> Value {
        let mut obj = self.value();
        let Res(_, api_version, kind, _) = RESOURCES[res];
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind);
        obj
    }
}

#[derive(Default)]
struct Store {
    rv: u64,
    compacted: u64,
    objects: BTreeMap<Key, Obj>,
    history: Vec<Change>,
    watches: Vec<(Target, Sender)>,
    failing: bool,
    /// While set, a request without `Authorization: Bearer <this>` is refused with 401.
    token: Option<String>,
    /// Requests that carried the token, and those refused for want of it.
    authorized: usize,
    unauthorized: usize,
    /// Resources (plural names) whose every request is refused with this status code.
    refused: Vec<(String, u16)>,
    streaming: bool,
    /// Watch events written object first, then type (as no API server writes them).
    objects_first: bool,
    bookmark_every: Duration,
    requests: Vec<String>,
    /// While set, every request is answered `429 TooManyRequests` with this `Retry-After`.
    throttled: Option<u64>,
    /// The next change reaches the watches as half an event line, then the stream is cut.
    cut_next_event: bool,
    /// How many of the next LIST responses are cut mid-body.
    cut_lists: usize,
    /// Watches made before this generation send nothing more and never end (no FIN).
    stall_generation: u64,
    /// The next change is held back from the watches and sent after the one that follows
    /// it: out of resourceVersion order, once.
    hold_next: bool,
    /// The held change's lines, with the watches they are for.
    held: Vec<(Sender, String)>,
    /// Every request, with when it came.
    stamped: Vec<(Instant, String)>,
    /// When non-zero, the most changes kept for replay: older ones are compacted away as
    /// new ones come (etcd's periodic compaction), so a long churn does not grow the history.
    history_limit: usize,
}

impl Store {
    /// Records `obj` (kind ADDED, MODIFIED or DELETED) at a new resourceVersion and sends it
    /// to the watches that see it, under the one lock, so every stream gets changes in order.
    fn change(&mut self, key: Key, kind: &'static str, obj: &mut Value, prev: Option<Obj>) {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let obj = Obj::new(obj);
        if kind != "DELETED" {
            self.objects.insert(key.clone(), obj.clone());
        }
        let change = Change {
            rv: self.rv,
            key,
            kind,
            obj,
            prev,
        };
        self.watches.retain(|(_, tx)| !tx.is_closed());
        let release = std::mem::take(&mut self.held);
        for (target, tx) in &self.watches {
            if let Some(line) = target.line(&change, self.objects_first) {
                if self.hold_next {
                    self.held.push((tx.clone(), line));
                } else if self.cut_next_event {
                    let _ = tx.send(Some(half(&line).to_owned()));
                    // A pause first, so the half line is on the wire before the cut.
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let _ = tx.send(None);
                    });
                } else {
                    let _ = tx.send(Some(line));
                }
            }
        }
        for (tx, line) in release {
            let _ = tx.send(Some(line));
        }
        self.hold_next = false;
        self.cut_next_event = false;
        self.history.push(change);
        if self.history_limit > 0 && self.history.len() >= 2 * self.history_limit {
            let dropped = self.history.len() - self.history_limit;
            self.compacted = self.history[dropped - 1].rv;
            self.history.drain(..dropped);
        }
    }
}

type Shared = Arc<Mutex<Store>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Store> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The emulated API server. Its state survives [`ApiServer::stop`] and
/// [`ApiServer::restart`].
pub struct ApiServer {
    shared: Shared,
    addr: SocketAddr,
    serving: Mutex<Option<Serving>>,
}

impl ApiServer {
    /// Starts on an ephemeral port of 127.0.0.1, with no objects, at resourceVersion 1.
    pub async fn start() -> ApiServer {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let store = Store {
            rv: 1,
            streaming: true,
            bookmark_every: Duration::from_secs(1),
            ..Store::default()
        };
        let shared = Arc::new(Mutex::new(store));
        let serving = Mutex::new(Some(serve(listener, shared.clone())));
        ApiServer {
            shared,
            addr,
            serving,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        lock(&self.shared)
    }

    fn serving(&self) -> MutexGuard<'_, Option<Serving>> {
        self.serving.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes `dir/kubeconfig`: this server, no credentials, namespace `default`.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: emulator\n\
             clusters: [{{name: emulator, cluster: {{server: \"{}\"}}}}]\n\
             users: [{{name: emulator, user: {{}}}}]\n\
             contexts: [{{name: emulator, context: {{cluster: emulator, user: emulator}}}}]\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Creates (ADDED) or replaces (MODIFIED) the object named by its apiVersion, kind,
    /// `metadata.namespace` (default `default`) and `metadata.name`. Sets
    /// `metadata.resourceVersion`; keeps (or takes from `obj`, or makes up) `uid` and
    /// `creationTimestamp`.
    pub fn apply(&self, mut obj: Value) {
        self.apply_in_place(&mut obj);
    }

    /// `apply`, leaving `obj` as stored (its server-set metadata filled in): a caller that
    /// changes the same object again and again keeps it rather than copying it each time.
    pub fn apply_in_place(&self, obj: &mut Value) {
        let res = resource_of(obj["apiVersion"].as_str(), obj["kind"].as_str());
        let meta = &obj["metadata"];
        let name = meta["name"].as_str().expect("metadata.name").to_owned();
        let ns = meta["namespace"].as_str().unwrap_or("default");
        let key = (res, if RESOURCES[res].3 { ns } else { "" }.to_owned(), name);
        let mut st = self.lock();
        let prev = st.objects.get(&key).cloned();
        let meta = &mut obj["metadata"];
        let kept = match &prev {
            Some(p) => p.metadata(),
            None => meta.clone(),
        };
        let uid = format!("{:08x}-0000-4000-8000-{:012x}", self.addr.port(), st.rv + 1);
        meta["uid"] = kept.get("uid").cloned().unwrap_or(json!(uid));
        meta["creationTimestamp"] =
            (kept.get("creationTimestamp").cloned()).unwrap_or(json!(CREATED));
        if RESOURCES[res].3 {
            meta["namespace"] = json!(key.1);
        }
        let kind = if prev.is_some() { "MODIFIED" } else { "ADDED" };
        st.change(key, kind, obj, prev);
    }

    /// Deletes the object (`namespace` is ignored for cluster-scoped kinds): a DELETED event
    /// with its last state at a new resourceVersion. Returns whether it existed.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let res = resource_of(Some(api_version), Some(kind));
        let ns = if RESOURCES[res].3 { namespace } else { "" };
        let key = (res, ns.to_owned(), name.to_owned());
        let mut st = self.lock();
        let Some(obj) = st.objects.remove(&key) else {
            return false;
        };
        st.change(key, "DELETED", &mut obj.value(), None);
        true
    }

    /// Keeps at most about `changes` changes for replay (0: all), compacting older ones away
    /// as new ones come.
    pub fn set_history_limit(&self, changes: usize) {
        self.lock().history_limit = changes;
    }

    /// The stored object, if any (`namespace` is ignored for cluster-scoped kinds).
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = resource_of(Some(api_version), Some(kind));
        let ns = if RESOURCES[res].3 { namespace } else { "" };
        let key = (res, ns.to_owned(), name.to_owned());
        self.lock().objects.get(&key).map(|o| o.full(res))
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Forces every watcher to relist: the resourceVersion moves on, everything before it is
    /// compacted away and every open watch is cut, so a watch resumed from the last
    /// resourceVersion its client saw gets `410 Expired`. One step under the lock: no
    /// bookmark carries the new resourceVersion to a client first.
    pub fn force_relist(&self) {
        let mut st = self.lock();
        st.rv += 1;
        st.compacted = st.rv;
        st.history.clear();
        for (_, tx) in st.watches.drain(..) {
            let _ = tx.send(None);
        }
    }

    /// Forgets the history: watches from an older resourceVersion, and continue tokens issued
    /// before, now get `410 Expired`.
    pub fn compact(&self) {
        let mut st = self.lock();
        st.compacted = st.rv;
        st.history.clear();
    }

    /// While on, every request is answered `500 InternalError`.
    pub fn set_failing(&self, on: bool) {
        self.lock().failing = on;
    }

    /// While set, only requests bearing this token (`Authorization: Bearer TOKEN`) are
    /// served, the others refused with 401; `None` serves everyone.
    pub fn set_token(&self, token: Option<&str>) {
        self.lock().token = token.map(str::to_owned);
    }

    /// Requests served with the token, and requests refused for want of it, so far.
    pub fn token_checks(&self) -> (usize, usize) {
        let st = self.lock();
        (st.authorized, st.unauthorized)
    }

    /// While set, every request for `plural` (`endpointslices`, `services`, …) is refused with
    /// `code` (401 Unauthorized or 403 Forbidden, as with missing RBAC); `None` lifts it.
    pub fn set_refused(&self, plural: &str, code: Option<u16>) {
        let mut st = self.lock();
        st.refused.retain(|(p, _)| p != plural);
        if let Some(code) = code {
            st.refused.push((plural.to_owned(), code));
        }
    }

    /// Off: streaming lists are refused with `422 Invalid`, as by a server without WatchList.
    pub fn set_streaming_lists_supported(&self, on: bool) {
        self.lock().streaming = on;
    }

    /// On: watch events name their object before their type (a decoder has to buffer it).
    pub fn set_objects_before_types(&self, on: bool) {
        self.lock().objects_first = on;
    }

    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK (default 1 s), for
    /// watches opened afterwards.
    pub fn set_bookmark_interval(&self, every: Duration) {
        self.lock().bookmark_every = every;
    }

    /// Cuts every open watch stream: the connection is closed without the final chunk, so the
    /// client sees a truncated body.
    pub fn drop_connections(&self) {
        for (_, tx) in self.lock().watches.drain(..) {
            let _ = tx.send(None);
        }
    }

    /// Stops listening and closes every connection; the state is kept.
    pub async fn stop(&self) {
        let serving = self.serving().take();
        self.drop_connections();
        if let Some((signal, task)) = serving {
            let _ = signal.send(());
            let (abort, within) = (task.abort_handle(), Duration::from_secs(5));
            if tokio::time::timeout(within, task).await.is_err() {
                abort.abort();
            }
        }
        self.drop_connections();
    }

    /// Listens again on the same port, with the kept state.
    pub async fn restart(&self) {
        super::process::closed_for_good();
        let listener = bind(self.addr).unwrap_or_else(|e| panic!("rebind {}: {e}", self.addr));
        let mut serving = self.serving();
        assert!(serving.is_none(), "restart() of a running server");
        *serving = Some(serve(listener, self.shared.clone()));
    }

    /// Writes `line` (plus a newline) into the open watch streams of one resource, named by
    /// its plural or a path ending in it (`services`, `/api/v1/pods`).
    pub fn inject_raw(&self, resource_path_hint: &str, line: &str) {
        let plural = resource_path_hint.trim_end_matches('/').rsplit('/').next();
        for (target, tx) in &self.lock().watches {
            if Some(RESOURCES[target.res].0) == plural {
                let _ = tx.send(Some(format!("{line}\n")));
            }
        }
    }

    /// Every request so far, as path and query string, in order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Watch streams open now.
    pub fn watch_count(&self) -> usize {
        let mut st = self.lock();
        st.watches.retain(|(_, tx)| !tx.is_closed());
        st.watches.len()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.drop_connections();
        if let Some((_, task)) = self.serving().take() {
            task.abort();
        }
    }
}

fn resource_of(api_version: Option<&str>, kind: Option<&str>) -> usize {
    let found = (RESOURCES.iter()).position(|r| api_version == Some(r.1) && kind == Some(r.2));
    found.unwrap_or_else(|| panic!("the emulator does not serve {api_version:?} {kind:?}"))
}

fn bind(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn serve(listener: tokio::net::TcpListener, shared: Shared) -> Serving {
    let (signal, stopped) = oneshot::channel::<()>();
    let app = axum::Router::new().fallback(handle).with_state(shared);
    let task = tokio::spawn(async move {
        let shutdown = async move { drop(stopped.await) };
        // TCP_NODELAY, as Go's net package (so the real API server) sets on every
        // connection: without it a watch event can sit behind Nagle's algorithm until the
        // client's delayed ACK, tens of milliseconds.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| drop(tcp.set_nodelay(true)));
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
        let _ = server.await;
    });
    (signal, task)
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: header::HeaderMap,
) -> Response {
    let bearer = (headers.get(header::AUTHORIZATION))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let authorized = {
        let mut st = lock(&shared);
        match st.token.clone() {
            None => true,
            Some(token) if bearer == Some(token.as_str()) => {
                st.authorized += 1;
                true
            }
            Some(_) => {
                st.unauthorized += 1;
                false
            }
        }
    };
    let answer = if authorized {
        respond(&shared, &method, &uri)
    } else {
        Err(status(401, "Unauthorized", "Unauthorized"))
    };
    answer.unwrap_or_else(|status| {
        let code = status["code"].as_u64().and_then(|c| u16::try_from(c).ok());
        let code = code.and_then(|c| StatusCode::from_u16(c).ok());
        let retry_after = status["details"]["retryAfterSeconds"].as_u64();
        let mut response = reply(
            code.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            status.to_string(),
        );
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    })
}

fn respond(shared: &Shared, method: &Method, uri: &Uri) -> Reply {
    let mut st = lock(shared);
    let logged = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    st.requests.push(logged.to_owned());
    st.stamped.push((Instant::now(), logged.to_owned()));
    if st.failing {
        return Err(status(500, "InternalError", "emulated failure"));
    }
    if let Some(secs) = st.throttled {
        // What API Priority and Fairness answers when a request is rejected.
        let mut s = status(
            429,
            "TooManyRequests",
            "too many requests, please try again later",
        );
        s["details"] =
            json!({"causes": [{"reason": "TooManyRequests"}], "retryAfterSeconds": secs});
        return Err(s);
    }
    if method != Method::GET {
        return Err(status(405, "MethodNotAllowed", "the emulator is read-only"));
    }
    let Query(q) = Query::<Params>::try_from_uri(uri).map_err(|e| bad(e.to_string()))?;
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let (group_version, rest) = match segments.as_slice() {
        ["version"] => return Ok(reply(StatusCode::OK, VERSION.to_owned())),
        ["api", "v1", rest @ ..] => ("v1", rest),
        ["apis", "discovery.k8s.io", "v1", rest @ ..] => (SLICES, rest),
        ["apis", "networking.k8s.io", "v1", rest @ ..] => (INGRESSES, rest),
        ["apis", "multicluster.x-k8s.io", "v1alpha1", rest @ ..] => (IMPORTS, rest),
        ["apis", "gateway.networking.k8s.io", "v1", rest @ ..] => (GATEWAYS, rest),
        ["apis", "gateway.networking.k8s.io", "v1alpha2", rest @ ..] => (GATEWAYS_ALPHA, rest),
        _ => return Err(not_found()),
    };
    let (ns, plural) = match rest {
        [plural] => (None, *plural),
        ["namespaces", ns, plural] => (Some((*ns).to_owned()), *plural),
        _ => return Err(not_found()),
    };
    if let Some((_, code)) = st.refused.iter().find(|(p, _)| p == plural) {
        let (reason, message) = match code {
            401 => ("Unauthorized", "Unauthorized".to_owned()),
            _ => (
                "Forbidden",
                format!(
                    "{plural} is forbidden: User \"system:serviceaccount:kube-system:clusterdns\" \
                     cannot list resource \"{plural}\" at the cluster scope"
                ),
            ),
        };
        return Err(status(*code, reason, &message));
    }
    let found = (RESOURCES.iter()).position(|r| r.0 == plural && r.1 == group_version);
    let res = found
        .filter(|&r| ns.is_none() || RESOURCES[r].3)
        .ok_or_else(not_found)?;
    let (labels, fields) = (terms(&q, "labelSelector")?, terms(&q, "fieldSelector")?);
    let target = Target {
        res,
        ns,
        labels,
        fields,
    };
    match q.get("watch").map(String::as_str) {
        Some("true" | "1") => watch(&mut st, shared, target, &q),
        _ if st.cut_lists > 0 => {
            st.cut_lists -= 1;
            list(&st, &target, &q).map(cut_mid_body)
        }
        _ => list(&st, &target, &q),
    }
}

fn param<T: FromStr>(q: &Params, key: &str, default: T) -> Result<T, Value> {
    match q.get(key) {
        Some(v) => v.parse().map_err(|_| bad(format!("invalid {key}: {v:?}"))),
        None => Ok(default),
    }
}

fn list(st: &Store, target: &Target, q: &Params) -> Reply {
    let limit: usize = param(q, "limit", 0)?;
    let (list_rv, after) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let mut parts = token.splitn(3, '|');
            let rv = parts.next().and_then(|rv| rv.parse::<u64>().ok());
            let (Some(rv), Some(ns), Some(name)) = (rv, parts.next(), parts.next()) else {
                return Err(bad("continue key is not valid".into()));
            };
            if rv < st.compacted {
                let m = "The provided continue parameter is too old to display a consistent list \
                         result. You can start a new list without the continue parameter.";
                return Err(status(410, "Expired", m));
            }
            (rv, Some((target.res, ns.to_owned(), name.to_owned())))
        }
        None => (st.rv, None),
    };
    // Keys sort by resource first: a range from the continue key (or the resource's first
    // key) visits only this resource's objects after it.
    let from = match after {
        Some(a) => Bound::Excluded(a),
        None => Bound::Included((target.res, String::new(), String::new())),
    };
    let mut matching = (st.objects.range((from, Bound::Unbounded)))
        .take_while(|(k, _)| k.0 == target.res)
        .filter(|(k, obj)| target.matches(k, obj));
    let items: Vec<(&Key, &Obj)> = if limit > 0 {
        matching.by_ref().take(limit).collect()
    } else {
        matching.by_ref().collect()
    };
    let remaining = matching.count();
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if remaining > 0
        && let Some(((_, ns, name), _)) = items.last()
    {
        metadata["continue"] = json!(format!("{list_rv}|{ns}|{name}"));
        metadata["remainingItemCount"] = json!(remaining);
    }
    // Written item by item, without copying the objects: lists of a large cluster are
    // hundreds of megabytes.
    let Res(_, api_version, kind, _) = RESOURCES[target.res];
    let head = json!({"kind": format!("{kind}List"), "apiVersion": api_version,
                      "metadata": metadata});
    let mut body = head.to_string().into_bytes();
    body.pop(); // the closing brace
    body.extend_from_slice(br#","items":["#);
    for (i, (_, obj)) in items.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(obj.0.as_bytes());
    }
    body.extend_from_slice(b"]}");
    Ok(reply(StatusCode::OK, body))
}

/// Writes `obj` as a list item: without `apiVersion` and `kind`, as the real server does.
fn write_item(out: &mut Vec<u8>, obj: &Value) {
    let Some(map) = obj.as_object() else {
        let _ = serde_json::to_writer(&mut *out, obj);
        return;
    };
    out.push(b'{');
    let fields = map
        .iter()
        .filter(|(f, _)| *f != "apiVersion" && *f != "kind");
    for (i, (field, value)) in fields.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, field);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, value);
    }
    out.push(b'}');
}

fn watch(st: &mut Store, shared: &Shared, target: Target, q: &Params) -> Reply {
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
    if send_initial.is_some() && !st.streaming {
        // What a real server with its WatchList feature gate off answers.
        let (field, m) = ("sendInitialEvents", WATCH_LIST_OFF);
        let cause = json!({"reason": "FieldValueForbidden", "message": format!("Forbidden: {m}"),
                           "field": field});
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "reason": "Invalid", "code": 422,
            "message": format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {m}"),
            "details": {"group": "meta.k8s.io", "kind": "ListOptions", "causes": [cause]}});
        return Err(status);
    }
    let timeout = Duration::from_secs(param(q, "timeoutSeconds", 1800)?);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let from = q.get("resourceVersion").map_or("", |s| s);
    let (tx, rx) = mpsc::unbounded_channel();
    let send = |line: String| drop(tx.send(Some(line)));
    if send_initial.unwrap_or(from.is_empty() || from == "0") {
        // The current state as ADDED events (a streaming list ends it with a bookmark).
        for (_, obj) in st.objects.iter().filter(|(k, obj)| target.matches(k, obj)) {
            send(object_line("ADDED", target.res, obj, st.objects_first));
        }
        if send_initial == Some(true) && bookmarks {
            send(bookmark_line(target.res, st.rv, true));
        }
    } else if !from.is_empty() {
        let from: u64 = param(q, "resourceVersion", 0)?;
        if from < st.compacted {
            let message = format!("too old resource version: {from} ({})", st.compacted);
            let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": message, "reason": "Expired", "code": 410});
            let once = futures::stream::iter([Ok::<_, io::Error>(event_line("ERROR", &gone))]);
            return Ok(reply(StatusCode::OK, Body::from_stream(once)));
        }
        let changes = st.history.iter().filter(|c| c.rv > from);
        for line in changes.filter_map(|c| target.line(c, st.objects_first)) {
            send(line);
        }
    }
    let every = st.bookmark_every;
    let state = WatchBody {
        generation: st.stall_generation,
        shared: shared.clone(),
        res: target.res,
        tx: tx.clone(),
        rx,
        bookmarks,
        tick: tokio::time::interval_at(Instant::now() + every, every),
        deadline: Instant::now() + timeout,
    };
    st.watches.push((target, tx));
    let body = futures::stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        loop {
            tokio::select! {
                biased;
                msg = s.rx.recv() => {
                    if lock(&s.shared).stall_generation > s.generation {
                        // Stalled: the connection stays open and silent.
                        std::future::pending::<()>().await;
                    }
                    return match msg {
                        Some(Some(line)) => Some((Ok(line), Some(s))),
                        _ => Some((Err(io::Error::new(io::ErrorKind::ConnectionReset, "cut")), None)),
                    };
                }
                () = tokio::time::sleep_until(s.deadline) => {
                    if lock(&s.shared).stall_generation > s.generation {
                        std::future::pending::<()>().await;
                    }
                    return None;
                }
                // Queued behind the changes already queued (under the same lock), so a
                // bookmark never overtakes a change.
                _ = s.tick.tick(), if s.bookmarks => {
                    let rv = lock(&s.shared).rv;
                    let _ = s.tx.send(Some(bookmark_line(s.res, rv, false)));
                }
            }
        }
    });
    Ok(reply(StatusCode::OK, Body::from_stream(body)))
}

/// The state of one watch response body.
struct WatchBody {
    /// The stall generation it was made in (`ApiServer::stall_open_watches`).
    generation: u64,
    shared: Shared,
    res: usize,
    tx: Sender,
    rx: mpsc::UnboundedReceiver<Option<String>>,
    bookmarks: bool,
    tick: tokio::time::Interval,
    deadline: Instant,
}

/// A watch event of a stored object, written around its text, the type first as the API
/// server writes it (a decoder that meets the object first has to buffer it), or last.
fn object_line(kind: &str, res: usize, obj: &Obj, objects_first: bool) -> String {
    let Res(_, api_version, res_kind, _) = RESOURCES[res];
    let rest = obj.0.strip_prefix('{').unwrap_or("}");
    let sep = if rest == "}" { "" } else { "," };
    if objects_first {
        return format!(
            r#"{{"object":{{"apiVersion":{},"kind":{}{sep}{rest},"type":{}}}"#,
            json!(api_version),
            json!(res_kind),
            json!(kind)
        ) + "\n";
    }
    format!(
        r#"{{"type":{},"object":{{"apiVersion":{},"kind":{}{sep}{rest}}}"#,
        json!(kind),
        json!(api_version),
        json!(res_kind)
    ) + "\n"
}

fn event_line(kind: &str, obj: &Value) -> String {
    // Written around the object rather than through `json!`, which would copy it.
    format!(r#"{{"type":{},"object":{obj}}}"#, json!(kind)) + "\n"
}

fn bookmark_line(res: usize, rv: u64, initial_end: bool) -> String {
    let Res(_, api_version, kind, _) = RESOURCES[res];
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
    event_line("BOOKMARK", &object)
}

fn reply(code: StatusCode, body: impl Into<Body>) -> Response {
    let json = [(header::CONTENT_TYPE, "application/json")];
    (code, json, body.into()).into_response()
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn bad(message: String) -> Value {
    status(400, "BadRequest", &message)
}

fn not_found() -> Value {
    status(404, "NotFound", NOT_FOUND)
}

impl ApiServer {
    /// While `Some(secs)`, every request is answered `429 TooManyRequests` with
    /// `Retry-After: secs` and `details.retryAfterSeconds`, as API Priority and Fairness does.
    /// Open watches are left alone (see [`ApiServer::drop_connections`]).
    pub fn set_throttled(&self, retry_after: Option<u64>) {
        self.lock().throttled = retry_after;
    }

    /// Every watch open now stops sending (no event, no bookmark, no end: no FIN either), as
    /// a connection that died silently; watches made afterwards are served as usual.
    pub fn stall_open_watches(&self) {
        self.lock().stall_generation += 1;
    }

    /// The next change reaches the watches only after the change that follows it: two
    /// events out of resourceVersion order, once.
    pub fn reorder_next_change(&self) {
        self.lock().hold_next = true;
    }

    /// The next change reaches each watch that sees it as the first half of its event line,
    /// and then the stream is cut. The change itself is stored and replayed as usual.
    pub fn cut_next_event_mid_object(&self) {
        self.lock().cut_next_event = true;
    }

    /// The next `n` LIST responses send the first half of their body, then the connection is
    /// cut (a chunked body without its end).
    pub fn cut_next_lists(&self, n: usize) {
        self.lock().cut_lists = n;
    }

    /// Every request so far with the time it came, in order.
    pub fn requests_at(&self) -> Vec<(Instant, String)> {
        self.lock().stamped.clone()
    }
}

/// The first half of `text`, on a character boundary.
fn half(text: &str) -> &str {
    let mut at = text.len() / 2;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    &text[..at]
}

/// `response` with only the first half of its body, then an error that cuts the connection.
fn cut_mid_body(response: Response) -> Response {
    use futures::StreamExt;
    let (parts, body) = response.into_parts();
    let first = futures::stream::once(async move {
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        Ok::<_, io::Error>(bytes.slice(..bytes.len() / 2))
    });
    // A pause first, so the half body is on the wire before the connection goes.
    let cut = futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "cut"))
    });
    Response::from_parts(parts, Body::from_stream(first.chain(cut)))
}
