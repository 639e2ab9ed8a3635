//! The Kubernetes API as a source: watchers on Services, EndpointSlices, Namespaces (and Pods
//! and Ingresses where a mode needs them), each object stripped to the model as it arrives.

use std::path::PathBuf;

use crate::model::{ConfigMapKey, Kind};
use crate::source::selector::LabelFilter;

/// What the API source is configured with (built from the flags by `app`).
#[derive(Clone, Debug, Default)]
pub struct KubeSettings {
    /// `--kubeconfig`; `None`: in-cluster, else `KUBECONFIG`, else `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Watch Pods (`--pods verified`: pod records and autopath need them).
    pub watch_pods: bool,
    /// The kinds the external zones read (`--external-resources`, when there is an
    /// `--external-zone`): each is watched (Services always are), and Gateways too when a
    /// route kind is among them.
    pub external_kinds: Vec<Kind>,
    /// Watch ServiceImports (there is a `--multicluster-zone`).
    pub watch_service_imports: bool,
    /// `--labels`: only the Services matching it are listed and watched.
    pub labels: Option<LabelFilter>,
    /// `--hosts-configmap`: this one ConfigMap is watched (in its namespace, by name).
    pub hosts_configmap: Option<ConfigMapKey>,
    /// `--watch-timeout`: each watch's `timeoutSeconds`, and so how soon a stalled one is
    /// noticed (this plus 5 s).
    pub watch_timeout: Duration,
}

/// The kinds watched: Namespaces, Services and EndpointSlices always; Pods, the external
/// zones' kinds, ServiceImports and ConfigMaps when the settings ask for them.
pub fn watched_kinds(settings: &KubeSettings) -> Vec<Kind> {
    let mut kinds = vec![Kind::Namespace, Kind::Service, Kind::EndpointSlice];
    if settings.watch_pods {
        kinds.push(Kind::Pod);
    }
    let routes = [Kind::HttpRoute, Kind::GrpcRoute, Kind::TlsRoute];
    let mut external = settings.external_kinds.clone();
    if external.iter().any(|k| routes.contains(k)) {
        external.push(Kind::Gateway);
    }
    for kind in external {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if settings.watch_service_imports {
        kinds.push(Kind::ServiceImport);
    }
    if settings.hosts_configmap.is_some() {
        kinds.push(Kind::ConfigMap);
    }
    kinds
}

/// The API group and resource of a kind, as RBAC names them.
pub fn resource_of(kind: Kind) -> (&'static str, &'static str) {
    (kind.row().group, kind.row().resource)
}

/// The (API group, resource) pairs the watcher lists and watches: exactly what the
/// ClusterRole in `deploy/base/rbac.yaml` must grant `list` and `watch` on.
pub fn watched_resources(settings: &KubeSettings) -> Vec<(&'static str, &'static str)> {
    watched_kinds(settings)
        .into_iter()
        .map(resource_of)
        .collect()
}

use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;

use super::Delta;
use super::api_object::{ApiObject, Body, Text, Tree};
use super::listing::Listing;
use super::metrics::{KindLabels, Metrics};
use crate::model::{Object, ObjectKey};

/// How long a streaming list may go without its end-of-initial-events bookmark before the
/// watcher falls back to paged lists (servers without the WatchList feature send the objects
/// but never the bookmark).
const STREAMING_LIST_GRACE: Duration = Duration::from_secs(10);

/// Objects in a page of a paged list of EndpointSlices (kube's default, 500, for the others).
const SLICE_PAGE_SIZE: u32 = 50;

/// The pause before relisting a kind whose watch went out of order (no relist storm when a
/// stream keeps doing it).
const RELIST_PAUSE: Duration = Duration::from_secs(1);

/// Builds an API client: `--kubeconfig FILE`, else the in-cluster service account, else
/// `KUBECONFIG`, else `~/.kube/config`. (kube's own inference tries the kubeconfigs first: in
/// a pod, a `KUBECONFIG` meant for something else would win over the pod's service account.)
pub async fn connect(settings: &KubeSettings) -> anyhow::Result<kube::Client> {
    let kube_config = match &settings.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| anyhow::anyhow!("--kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| anyhow::anyhow!("--kubeconfig {}: {e}", path.display()))?
        }
        None => match kube::Config::incluster() {
            Ok(mut in_cluster) => {
                // As `infer` does (the `KUBE_RS_DEBUG_*` variables).
                in_cluster.apply_debug_overrides();
                in_cluster
            }
            Err(_) => kube::Config::infer().await.map_err(|e| {
                anyhow::anyhow!(
                    "no Kubernetes API configuration (in-cluster, KUBECONFIG or --kubeconfig): {e}"
                )
            })?,
        },
    };
    Ok(kube::Client::try_from(kube_config)?)
}

/// What the watcher lists and watches for `kind`, from its row.
fn api_resource(kind: Kind) -> ApiResource {
    let row = kind.row();
    ApiResource {
        group: row.group.into(),
        version: row.version.into(),
        api_version: row.api_version.into(),
        kind: row.name.into(),
        plural: row.resource.into(),
    }
}

fn key_of<B>(kind: Kind, obj: &ApiObject<B>) -> Option<ObjectKey> {
    let name = obj.metadata.name.as_deref()?;
    let namespace = if kind.row().namespaced {
        obj.metadata.namespace.as_deref().unwrap_or("default")
    } else {
        ""
    };
    Some(ObjectKey::new(namespace, name))
}

/// One object from the API, converted; on failure logs the object and field and counts it.
fn convert<B: Body>(
    kind: Kind,
    obj: ApiObject<B>,
    metrics: &Metrics,
) -> Result<Object, Option<ObjectKey>> {
    let key = key_of(kind, &obj);
    obj.body.convert(kind).map_err(|e| {
        metrics.object_errors.get_or_create(&KindLabels { kind: kind.to_string() }).inc();
        let object = key.as_ref().map(ToString::to_string).unwrap_or_default();
        tracing::warn!(%kind, %object, field = %e.field, reason = %e.reason, "object rejected; keeping its last good version");
        key
    })
}

/// Watches one kind until `sink` closes, sending deltas: a `Reset` for every full list
/// (initial, or after a 410 or an outage) and an `Upsert`/`Remove` per event.
pub async fn watch_kind(
    client: kube::Client,
    kind: Kind,
    sink: mpsc::UnboundedSender<Vec<Delta>>,
    metrics: std::sync::Arc<Metrics>,
) {
    watch_kind_filtered(client, kind, None, sink, metrics).await;
}

/// The `labelSelector` the watcher of `kind` sends: `--labels` for Services (as CoreDNS's
/// `labels` option; EndpointSlices of Services filtered out are kept but publish nothing,
/// since they only ever resolve through their Service).
pub fn label_selector(settings: &KubeSettings, kind: Kind) -> Option<String> {
    let filter = settings.labels.as_ref()?;
    (kind == Kind::Service).then(|| filter.to_query())
}

/// What the watcher of a kind lists and watches: a label selector, a field selector, and
/// one namespace (all when `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selectors {
    /// The `labelSelector`.
    pub labels: Option<String>,
    /// The `fieldSelector`.
    pub fields: Option<String>,
    /// The namespace.
    pub namespace: Option<String>,
    /// The watch's `timeoutSeconds` (`--watch-timeout`): the server ends a healthy watch
    /// then, and a watch that sends nothing for this long plus 5 s is taken for dead
    /// (stalled without a FIN) and made again. `None`: kube's default, 290 s.
    pub timeout: Option<u32>,
}

/// The resourceVersions a watch stream has delivered: they must rise. (They are opaque to
/// clients in principle; the API server's are etcd revisions, and a version that does not
/// parse as a number is not checked.)
#[derive(Default)]
struct Order {
    last: u64,
}

impl Order {
    /// Whether `rv` comes after every version seen so far (and remembers it).
    fn in_order(&mut self, rv: &Option<String>) -> bool {
        let Some(v) = rv.as_deref().and_then(|v| v.parse::<u64>().ok()) else {
            return true;
        };
        if v < self.last {
            return false;
        }
        self.last = v;
        true
    }
}

/// The selectors of `kind`'s watcher: `label_selector`; for ConfigMaps, only the one of
/// `--hosts-configmap` (its namespace, `metadata.name=NAME`), so the watch stays narrow.
pub fn selectors(settings: &KubeSettings, kind: Kind) -> Selectors {
    let mut s = Selectors {
        labels: label_selector(settings, kind),
        timeout: Some(u32::try_from(settings.watch_timeout.as_secs().max(1)).unwrap_or(u32::MAX)),
        ..Selectors::default()
    };
    if kind == Kind::ConfigMap
        && let Some(key) = &settings.hosts_configmap
    {
        s.namespace = Some(key.object.namespace.to_string());
        s.fields = Some(format!("metadata.name={}", key.object.name));
    }
    s
}

/// `watch_kind`, listing and watching only objects matching `label_selector`.
pub async fn watch_kind_filtered(
    client: kube::Client,
    kind: Kind,
    label_selector: Option<String>,
    sink: mpsc::UnboundedSender<Vec<Delta>>,
    metrics: std::sync::Arc<Metrics>,
) {
    let selectors = Selectors {
        labels: label_selector,
        ..Selectors::default()
    };
    watch_kind_selected(client, kind, selectors, sink, metrics).await;
}

/// How a watcher lists and reads its objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reading {
    /// Streaming lists (watch events from the start); otherwise paged lists (a server
    /// without streaming lists).
    streaming: bool,
    /// Each object kept as its text; otherwise read into a JSON tree: the events came in a
    /// form only a tree can be read from (an object before its type).
    text: bool,
}

/// Why one run of a watcher ended.
enum End {
    /// The deltas' receiver is gone.
    Closed,
    /// Start again as before (a watch out of order).
    Again,
    /// Start again reading this way.
    Switch(Reading),
}

/// `watch_kind`, listing and watching only the objects `selectors` select.
pub async fn watch_kind_selected(
    client: kube::Client,
    kind: Kind,
    selectors: Selectors,
    sink: mpsc::UnboundedSender<Vec<Delta>>,
    metrics: std::sync::Arc<Metrics>,
) {
    let mut reading = Reading {
        streaming: true,
        text: true,
    };
    loop {
        let end = if reading.text {
            follow::<Text>(&client, kind, &selectors, reading, &sink, &metrics).await
        } else {
            follow::<Tree>(&client, kind, &selectors, reading, &sink, &metrics).await
        };
        match end {
            End::Closed => return,
            End::Again => {}
            End::Switch(next) => reading = next,
        }
    }
}

/// One run of a watcher (streaming lists or paged, as `reading` says), its objects read as
/// `B`, until it must start again.
// The watch loop is one state machine (list, watch, relist, back off) over one stream: its
// arms share the restart and sync state, which splitting would pass around.
#[allow(clippy::too_many_lines)]
async fn follow<B: Body>(
    client: &kube::Client,
    kind: Kind,
    selectors: &Selectors,
    reading: Reading,
    sink: &mpsc::UnboundedSender<Vec<Delta>>,
    metrics: &Metrics,
) -> End {
    let streaming = reading.streaming;
    let paged = Reading {
        streaming: false,
        ..reading
    };
    let api: Api<ApiObject<B>> = match &selectors.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &api_resource(kind)),
        None => Api::all_with(client.clone(), &api_resource(kind)),
    };
    let labels = KindLabels {
        kind: kind.to_string(),
    };
    let mut config = watcher::Config::default();
    if let Some(selector) = &selectors.labels {
        config = config.labels(selector);
    }
    if let Some(selector) = &selectors.fields {
        config = config.fields(selector);
    }
    if let Some(secs) = selectors.timeout {
        config = config.timeout(secs);
    }
    if streaming {
        config = config.streaming_lists();
    } else if kind == Kind::EndpointSlice {
        // A page is held whole before its first object is converted: 500 slices of 100
        // endpoints are 25 MB of text twice over (the response and the objects' copies),
        // and a few hundred megabytes when read as trees.
        config = config.page_size(SLICE_PAGE_SIZE);
    }
    let mut stream = std::pin::pin!(watcher::watcher(api, config));
    let mut order = Order::default();
    let mut backoff = Duration::ZERO;
    let mut listing = Listing::default();
    let mut failing: Option<String> = None;
    let mut synced_once = false;
    loop {
        let next = if streaming && !synced_once {
            tokio::time::timeout(STREAMING_LIST_GRACE, stream.next())
                .await
                .unwrap_or_default()
        } else {
            stream.next().await
        };
        let Some(event) = next else {
            if streaming && !synced_once {
                tracing::info!(%kind, "streaming list did not complete; using paged lists");
                return End::Switch(paged);
            }
            return End::Closed;
        };
        if event.is_ok() {
            backoff = Duration::ZERO;
        }
        let deltas = match event {
            Ok(Event::Init) => {
                listing.clear();
                continue;
            }
            Ok(Event::InitApply(obj)) => {
                let batch = listing.add(convert(kind, obj, metrics), synced_once);
                if batch.is_some_and(|b| sink.send(b).is_err()) {
                    return End::Closed;
                }
                continue;
            }
            Ok(Event::InitDone) => {
                metrics.relists.get_or_create(&labels).inc();
                let objects = listing.len();
                if let Some(cause) = failing.take() {
                    tracing::info!(%kind, %cause, objects, "relisted after watch failure");
                } else if synced_once {
                    tracing::info!(%kind, objects, "relisted");
                } else {
                    tracing::info!(%kind, objects, streaming, "listed");
                }
                synced_once = true;
                listing.finish(kind)
            }
            Ok(Event::Apply(obj) | Event::Delete(obj))
                if !order.in_order(&obj.metadata.resource_version) =>
            {
                // A watch delivers changes in resourceVersion order; one that goes back
                // is a broken stream (a proxy, a buggy server): applying it could undo a
                // newer change, so it is dropped and the kind relisted.
                tracing::warn!(%kind, object = ?key_of(kind, &obj), "watch event out of resourceVersion order; relisting");
                metrics.watch_restarts.get_or_create(&labels).inc();
                tokio::time::sleep(RELIST_PAUSE).await;
                return End::Again;
            }
            Ok(Event::Apply(obj)) => match convert(kind, obj, metrics) {
                Ok(o) => vec![Delta::Upsert(o)],
                Err(_) => continue,
            },
            Ok(Event::Delete(obj)) => match key_of(kind, &obj) {
                Some(key) => vec![Delta::Remove(kind, key)],
                None => continue,
            },
            Err(e) => {
                metrics.watch_restarts.get_or_create(&labels).inc();
                let cause = crate::logging::error_chain(&e);
                if streaming && !synced_once && is_client_error(&e) {
                    tracing::info!(%kind, error = %cause, "streaming lists refused; using paged lists");
                    return End::Switch(paged);
                }
                // A line that could not be read as an event of text (a server that writes an
                // event's object before its type; kube then also tries the line as a bare
                // Status, which such a line passes for): in a list, the list would end without
                // the object, removing it; in a watch, the change would be lost. The watcher
                // starts again reading trees, which any event can be read into, and lists
                // again, losing nothing.
                if B::TEXT && is_unreadable_line(&e) {
                    tracing::info!(%kind, error = %cause, "an object could not be read as text; listing again with JSON trees");
                    return End::Switch(Reading {
                        text: false,
                        ..reading
                    });
                }
                // One line per cause, not per retry; the last known state keeps serving.
                if failing.as_deref() != Some(&cause) {
                    tracing::warn!(%kind, error = %cause, "watch failed; retrying with backoff, serving the last known state");
                    failing = Some(cause);
                }
                // An event that cannot be decoded is skipped on a healthy stream: only
                // failures of the connection or the API wait before the next try.
                if !is_undecodable_event(&e) {
                    backoff = next_backoff(backoff);
                    tokio::time::sleep(backoff).await;
                }
                continue;
            }
        };
        if sink.send(deltas).is_err() {
            return End::Closed;
        }
    }
}

/// Whether the error is one watch event that could not be decoded (the stream goes on).
fn is_undecodable_event(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchFailed(kube::Error::SerdeError(_)))
}

/// Whether the error is a line of a watch stream that was not a watch event: undecodable,
/// or read as a bare Status (an API server sends its errors as ERROR events).
fn is_unreadable_line(e: &watcher::Error) -> bool {
    matches!(
        e,
        watcher::Error::WatchFailed(kube::Error::SerdeError(_) | kube::Error::Api(_))
    )
}

/// The next wait after a failure: 0.5 s doubling to 5 s, with ±20 % jitter so replicas do
/// not retry in step. The cap is low (kube's default is 30 s, and it also waited after
/// undecodable events) because a DNS server catching up late serves stale names: a handful
/// of replicas asking every 5 s is nothing to an API server.
fn next_backoff(previous: Duration) -> Duration {
    let base = if previous.is_zero() {
        Duration::from_millis(500)
    } else {
        (previous * 2).min(Duration::from_secs(5))
    };
    base.mul_f64(rand::random_range(0.8..1.2))
}

/// Whether the API refused the request itself (4xx other than 410/429), as a server without
/// streaming-list support does.
fn is_client_error(e: &watcher::Error) -> bool {
    let code = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code,
        watcher::Error::WatchError(s) => s.code,
        _ => return false,
    };
    (400..500).contains(&code) && code != 410 && code != 429
}

#[cfg(test)]
#[path = "kube_tests.rs"]
mod tests;
