//! The manifests in `deploy/` against the code, as they are applied: every object that
//! `kubectl kustomize` renders from each overlay (`deploy/overlays/*`) parses into its
//! Kubernetes type with no field the API would drop; the ClusterRole grants exactly what
//! clusterdns watches with the Deployment's args, probes and ports follow the flags, the
//! container is locked down, the image can bind port 53; the standalone kube-dns Service
//! reaches the pods; and the node-local DaemonSet's args parse, it runs on every node's
//! network with NET_ADMIN and no API access, and kube-dns-upstream reaches the central pods.
//!
//! Rendering needs `kubectl` (kustomize v4 or later inside) or `kustomize` on PATH; without
//! one these tests fail, saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use clusterdns::config::{Config, Mode};
use clusterdns::source::kube::{KubeSettings, watched_resources};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PodSpec, SecurityContext, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned};
use serde_json::Value;

/// The overlays an operator applies, each rendered and checked whole.
const OVERLAYS: [&str; 2] = ["overlays/replace-coredns", "overlays/node-local"];
/// The overlay that adds the node-local tier.
const NODE_LOCAL_OVERLAY: &str = "overlays/node-local";
/// The kube-dns Service for a cluster without one: applied alone, in no overlay.
const KUBE_DNS_SERVICE_FILE: &str = "kube-dns-service.yaml";
/// Where the cluster DNS lives.
const NAMESPACE: &str = "kube-system";
/// The kube-dns Service's address: kubelet's `clusterDNS`, pods' nameserver (kubeadm's default).
const CLUSTER_DNS_IP: &str = "10.96.0.10";
/// The label CoreDNS's pods carry, which the kube-dns Service and NetworkPolicies select.
const DNS_LABEL: (&str, &str) = ("k8s-app", "kube-dns");
/// The label k8s-dns-node-cache's pods carry.
const NODE_CACHE_LABEL: (&str, &str) = ("k8s-app", "node-local-dns");
/// The Service through which the node caches reach the central DNS.
const UPSTREAM_SERVICE: &str = "kube-dns-upstream";
/// The data key of the ConfigMap holding the `--config` file.
const CONFIG_KEY: &str = "config.yaml";
/// The annotation kustomize records each object's source file in (`buildMetadata`).
const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";

/// One rendered object, typed.
struct Doc<T> {
    /// `deploy/<source file>: <Kind> <namespace>/<name> (overlays/<overlay>)`, for messages.
    origin: String,
    object: T,
}

/// Every object one overlay renders (or one file holds), by kind.
#[derive(Default)]
struct Manifests {
    /// `deploy/overlays/<name>`, or the file's path.
    source: String,
    service_accounts: Vec<Doc<ServiceAccount>>,
    cluster_roles: Vec<Doc<ClusterRole>>,
    cluster_role_bindings: Vec<Doc<ClusterRoleBinding>>,
    role_bindings: Vec<Doc<RoleBinding>>,
    config_maps: Vec<Doc<ConfigMap>>,
    deployments: Vec<Doc<Deployment>>,
    daemon_sets: Vec<Doc<DaemonSet>>,
    services: Vec<Doc<Service>>,
    disruption_budgets: Vec<Doc<PodDisruptionBudget>>,
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// `to` relative to `from`, both absolute: what a kustomization in `from` names `to` by
/// (kustomize takes no absolute resource paths).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let up = from.components().count() - 1;
    let mut out = PathBuf::new();
    for _ in 0..up {
        out.push("..");
    }
    out.join(to.strip_prefix("/").expect("an absolute path"))
}

/// The renderer: `kubectl kustomize`, or a standalone `kustomize build`.
fn renderer() -> Vec<&'static str> {
    let works = |program: &str, arg: &str| {
        Command::new(program)
            .args([arg, "--help"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("kubectl", "kustomize") {
        vec!["kubectl", "kustomize"]
    } else if works("kustomize", "build") {
        vec!["kustomize", "build"]
    } else {
        panic!(
            "neither `kubectl kustomize` nor `kustomize build` runs here: tests/it/deploy.rs \
             checks deploy/ as the overlays render, which needs kubectl (kustomize v4 or \
             later inside) or kustomize on PATH. .ci/run checks for it and says where it \
             comes from{}",
            if std::env::var_os("CI").is_some() {
                " (CI: the machine image's kubectl is missing)"
            } else {
                ""
            }
        )
    }
}

/// What `kubectl kustomize deploy/<overlay>` renders, each object annotated with the file it
/// came from: a kustomization in a temporary directory takes the overlay as its one resource
/// and asks for origin annotations (so the overlays themselves add none to what is applied).
fn render(overlay: &str) -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tmp = dir.path().canonicalize().expect("the temporary directory");
    let target = deploy_dir()
        .join(overlay)
        .canonicalize()
        .unwrap_or_else(|e| panic!("deploy/{overlay}: {e}"));
    std::fs::write(
        tmp.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources:\n  - {}\nbuildMetadata: [originAnnotations]\n",
            relative(&tmp, &target).display()
        ),
    )
    .expect("the temporary kustomization is written");
    let program = renderer();
    let out = Command::new(program[0])
        .args(&program[1..])
        .arg(&tmp)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.join(" ")));
    assert!(
        out.status.success(),
        "`{} deploy/{overlay}` failed (kustomize v4 or later is needed; Debian's \
         kubernetes-client 1.20 carries v2.0.3, which cannot take a directory as a \
         resource):\n{}",
        program.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kustomize writes UTF-8")
}

/// Every overlay, rendered once for all the tests.
fn overlays() -> &'static [Manifests] {
    static RENDERED: OnceLock<Vec<Manifests>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        OVERLAYS
            .iter()
            .map(|o| parse(&format!("deploy/{o}"), &render(o)))
            .collect()
    })
}

/// The node-local overlay.
fn node_local() -> &'static Manifests {
    overlays()
        .iter()
        .find(|m| m.source.ends_with(NODE_LOCAL_OVERLAY))
        .expect("the node-local overlay is one of OVERLAYS")
}

/// The kube-dns Service file, applied alone on a cluster without one.
fn kube_dns_service_file() -> Manifests {
    let path = deploy_dir().join(KUBE_DNS_SERVICE_FILE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    parse(&format!("deploy/{KUBE_DNS_SERVICE_FILE}"), &text)
}

/// Parses every document of `text` (rendered from, or read at, `source`); panics on a kind
/// this test does not know, a document that does not parse into its type, or a field its
/// type does not have.
fn parse(source: &str, text: &str) -> Manifests {
    let mut m = Manifests {
        source: source.to_owned(),
        ..Manifests::default()
    };
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let mut value = Value::deserialize(doc)
            .unwrap_or_else(|e| panic!("{source} document {} is not valid YAML: {e}", i + 1));
        if value.is_null() {
            continue; // an empty document (comments only, or a trailing `---`)
        }
        let file = take_origin(&mut value);
        let api_version = value["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = value["kind"].as_str().unwrap_or_default().to_owned();
        let name = value["metadata"]["name"].as_str().unwrap_or_default();
        let namespace = value["metadata"]["namespace"]
            .as_str()
            .map(|n| format!("{n}/"))
            .unwrap_or_default();
        let origin = match file {
            Some(file) => format!("{file}: {kind} {namespace}{name} (in {source})"),
            None => format!("{source}: {kind} {namespace}{name}"),
        };
        match (api_version.as_str(), kind.as_str()) {
            ("v1", "ServiceAccount") => m.service_accounts.push(typed(origin, value)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                m.cluster_roles.push(typed(origin, value))
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                m.cluster_role_bindings.push(typed(origin, value))
            }
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                m.role_bindings.push(typed(origin, value))
            }
            ("v1", "ConfigMap") => m.config_maps.push(typed(origin, value)),
            ("apps/v1", "Deployment") => m.deployments.push(typed(origin, value)),
            ("apps/v1", "DaemonSet") => m.daemon_sets.push(typed(origin, value)),
            ("v1", "Service") => m.services.push(typed(origin, value)),
            ("policy/v1", "PodDisruptionBudget") => m.disruption_budgets.push(typed(origin, value)),
            _ => panic!(
                "{origin} is apiVersion {api_version:?} kind {kind:?}, which deploy/ is not \
                 expected to hold (ServiceAccount, ClusterRole, ClusterRoleBinding, \
                 RoleBinding, ConfigMap, Deployment, DaemonSet, Service, \
                 PodDisruptionBudget); if it belongs there, teach tests/it/deploy.rs to \
                 check it"
            ),
        }
    }
    m
}

/// Removes kustomize's origin annotation (and the annotations map if it leaves it empty);
/// returns the source file as `deploy/...`.
fn take_origin(value: &mut Value) -> Option<String> {
    let annotations = value
        .get_mut("metadata")?
        .get_mut("annotations")?
        .as_object_mut()?;
    let origin = annotations.remove(ORIGIN_ANNOTATION)?;
    if annotations.is_empty()
        && let Some(meta) = value["metadata"].as_object_mut()
    {
        meta.remove("annotations");
    }
    let path = origin
        .as_str()?
        .lines()
        .find_map(|l| l.trim().strip_prefix("path: "))?
        .trim()
        .to_owned();
    // The path is relative to the temporary kustomization; what follows `deploy/` names it.
    let at = path.rfind("/deploy/").map(|i| i + 1).unwrap_or(0);
    Some(path[at..].to_owned())
}

/// Deserializes `value` into its Kubernetes type, then checks that nothing was lost on the
/// way: a field the type does not have is a typo the API server would drop or reject.
fn typed<T: DeserializeOwned + Serialize>(origin: String, value: Value) -> Doc<T> {
    let object: T = serde_path_to_error::deserialize(value.clone())
        .unwrap_or_else(|e| panic!("{origin} is not a valid {}: {e}", value["kind"]));
    let back = serde_json::to_value(&object).expect("a Kubernetes object serializes");
    let mut lost = Vec::new();
    lost_fields("", &value, &back, &mut lost);
    assert!(
        lost.is_empty(),
        "{origin}: fields that a {} does not have (misspelt or misplaced; the API server \
         would drop or reject them): {}",
        value["kind"],
        lost.join(", ")
    );
    Doc { origin, object }
}

/// Paths present in `written` that did not survive the round trip through the typed struct.
fn lost_fields(path: &str, written: &Value, back: &Value, out: &mut Vec<String>) {
    match (written, back) {
        (Value::Object(w), Value::Object(b)) => {
            for (key, wv) in w {
                let p = format!("{path}.{key}");
                match b.get(key) {
                    Some(bv) => lost_fields(&p, wv, bv, out),
                    None if wv.is_null() => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(w), Value::Array(b)) if w.len() == b.len() => {
            for (i, (wv, bv)) in w.iter().zip(b).enumerate() {
                lost_fields(&format!("{path}[{i}]"), wv, bv, out);
            }
        }
        (w, b) if w != b => out.push(format!("{path} (written {w}, read as {b})")),
        _ => {}
    }
}

/// The single object of a kind; the overlay must render exactly one.
fn one<'a, T>(m: &Manifests, docs: &'a [Doc<T>], kind: &str) -> &'a Doc<T> {
    match docs {
        [doc] => doc,
        _ => panic!(
            "{} must render exactly one {kind}, found {}: {}",
            m.source,
            docs.len(),
            docs.iter()
                .map(|d| d.origin.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The object of a kind with this namespace and name.
fn named<'a, T>(
    m: &Manifests,
    docs: &'a [Doc<T>],
    meta: impl Fn(&T) -> &ObjectMeta,
    kind: &str,
    namespace: &str,
    name: &str,
) -> &'a Doc<T> {
    docs.iter()
        .find(|d| name_of(meta(&d.object)) == name && namespace_of(meta(&d.object)) == namespace)
        .unwrap_or_else(|| panic!("{} renders no {kind} {namespace}/{name}", m.source))
}

fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// A workload's pods: a Deployment's or a DaemonSet's template, as the checks see it.
struct Pods<'a> {
    origin: &'a str,
    namespace: &'a str,
    labels: BTreeMap<String, String>,
    spec: &'a PodSpec,
}

impl Doc<Deployment> {
    fn pods(&self) -> Pods<'_> {
        let template = self.object.spec.as_ref().map(|s| &s.template);
        Pods {
            origin: &self.origin,
            namespace: namespace_of(&self.object.metadata),
            labels: template
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
            spec: template
                .and_then(|t| t.spec.as_ref())
                .unwrap_or_else(|| panic!("{}: the Deployment has no pod template", self.origin)),
        }
    }
}

impl Doc<DaemonSet> {
    fn pods(&self) -> Pods<'_> {
        let template = self.object.spec.as_ref().map(|s| &s.template);
        Pods {
            origin: &self.origin,
            namespace: namespace_of(&self.object.metadata),
            labels: template
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
            spec: template
                .and_then(|t| t.spec.as_ref())
                .unwrap_or_else(|| panic!("{}: the DaemonSet has no pod template", self.origin)),
        }
    }
}

/// The clusterdns container: the pod's only one.
fn container<'a>(pods: &Pods<'a>) -> &'a Container {
    match pods.spec.containers.as_slice() {
        [c] => c,
        cs => panic!(
            "{}: the pod must run exactly one container (clusterdns), it runs {}",
            pods.origin,
            cs.len()
        ),
    }
}

/// The command line the container runs, as clusterdns sees it.
fn argv(container: &Container) -> Vec<String> {
    let mut argv = vec!["clusterdns".to_owned()];
    if let Some(command) = &container.command {
        argv.extend(command.iter().skip(1).cloned());
    }
    argv.extend(container.args.iter().flatten().cloned());
    argv
}

/// The `$(NAME)` references in `text`, as the kubelet expands them in args (`$$` escapes).
fn env_references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        let tail = &rest[i + 1..];
        if let Some(after) = tail.strip_prefix('$') {
            rest = after;
        } else if let Some(open) = tail.strip_prefix('(')
            && let Some(close) = open.find(')')
        {
            out.push(open[..close].to_owned());
            rest = &open[close + 1..];
        } else {
            rest = tail;
        }
    }
    out
}

/// The environment variable the kubelet injects with a Service's ClusterIP.
fn service_host_variable(service: &str) -> String {
    format!(
        "{}_SERVICE_HOST",
        service.to_ascii_uppercase().replace('-', "_")
    )
}

/// An address the kubelet would put in `$(NAME)`: the ClusterIP of the Service the variable is
/// named after, here a stand-in from the service CIDR (a real one is allocated on creation).
const EXPANDED_SERVICE_HOST: &str = "10.96.0.11";

/// The container's args with each `$(NAME)` as the kubelet expands it: a variable of the
/// container's `env`, or a Service's `<NAME>_SERVICE_HOST` (a stand-in address). Panics on
/// a reference neither would expand, which clusterdns would get as literal text.
fn expanded_args(m: &Manifests, pods: &Pods, container: &Container) -> Vec<String> {
    let mut args = argv(container);
    for arg in &mut args[1..] {
        for name in env_references(arg) {
            let from_env = container
                .env
                .iter()
                .flatten()
                .find(|e| e.name == name)
                .map(|e| {
                    e.value.clone().unwrap_or_else(|| {
                        panic!(
                            "{}: env {name} is set from a source; give the test a value",
                            pods.origin
                        )
                    })
                });
            let value = from_env.unwrap_or_else(|| {
                let service = m.services.iter().find(|s| {
                    service_host_variable(name_of(&s.object.metadata)) == name
                        && namespace_of(&s.object.metadata) == pods.namespace
                });
                assert!(
                    service.is_some(),
                    "{}: the args use $({name}), which is neither in the container's env nor \
                     the ClusterIP variable of a Service of {} that {} renders: the kubelet \
                     would pass it unexpanded",
                    pods.origin,
                    pods.namespace,
                    m.source
                );
                assert_ne!(
                    pods.spec.enable_service_links,
                    Some(false),
                    "{}: the args use $({name}), a Service's variable, but \
                     enableServiceLinks: false keeps the kubelet from setting it",
                    pods.origin
                );
                EXPANDED_SERVICE_HOST.to_owned()
            });
            *arg = arg.replace(&format!("$({name})"), &value);
        }
    }
    args
}

/// The configuration the pods' container runs with: its args (expanded as the kubelet does),
/// and the file `--config` names, read from the ConfigMap mounted there.
fn config_of(m: &Manifests, pods: &Pods) -> Config {
    let c = container(pods);
    let mut argv = expanded_args(m, pods, c);
    let at = pods.origin;
    let dir = tempfile::tempdir().unwrap();
    let mut i = 0;
    while i < argv.len() {
        let (path, value_at) = if let Some(p) = argv[i].strip_prefix("--config=") {
            (p.to_owned(), i)
        } else if argv[i] == "--config" && i + 1 < argv.len() {
            (argv[i + 1].clone(), i + 1)
        } else {
            i += 1;
            continue;
        };
        let text = mounted_config(m, pods, &path).1;
        let local = dir.path().join(format!("config-{i}.yaml"));
        std::fs::write(&local, text).unwrap();
        let local = local.to_str().unwrap().to_owned();
        argv[value_at] = if value_at == i {
            format!("--config={local}")
        } else {
            local
        };
        i = value_at + 1;
    }
    clusterdns::config::load(&argv).unwrap_or_else(|e| {
        panic!(
            "{at}: clusterdns would refuse its configuration (args {:?}): {e}",
            &argv[1..]
        )
    })
}

/// The ConfigMap a volume mounts at `path` inside the container, and the text of that key.
fn mounted_config<'a>(m: &'a Manifests, pods: &Pods, path: &str) -> (&'a Doc<ConfigMap>, String) {
    let at = pods.origin;
    let c = container(pods);
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|v| {
            path.strip_prefix(v.mount_path.trim_end_matches('/'))
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .unwrap_or_else(|| panic!("{at}: nothing is mounted where --config {path} points"));
    assert!(
        mount.sub_path.is_none() && mount.sub_path_expr.is_none(),
        "{at}: {} is mounted with subPath: the kubelet never updates such a file, so a \
         ConfigMap edit would never reach clusterdns",
        mount.mount_path
    );
    let key = &path[mount.mount_path.trim_end_matches('/').len() + 1..];
    let volume = pods
        .spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap_or_else(|| panic!("{at}: no volume {:?} for the mount", mount.name));
    let map_name = volume
        .config_map
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| panic!("{at}: volume {:?} is not a ConfigMap", volume.name));
    let map = m
        .config_maps
        .iter()
        .find(|d| {
            name_of(&d.object.metadata) == map_name
                && namespace_of(&d.object.metadata) == pods.namespace
        })
        .unwrap_or_else(|| panic!("{at}: {} renders no ConfigMap {map_name:?}", m.source));
    let text = map
        .object
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("{}: the ConfigMap has no key {key:?}", map.origin))
        .clone();
    (map, text)
}

/// A port as a probe or Service names it (a number, or the name of a container port of that
/// protocol, as the endpoints controller resolves it), as a number.
fn resolve_port(container: &Container, port: &IntOrString, protocol: &str) -> Option<i32> {
    match port {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name) && protocol_of(&p.protocol) == protocol)
            .map(|p| p.container_port),
    }
}

/// A port's protocol, TCP when unset (the API's default).
fn protocol_of(protocol: &Option<String>) -> &str {
    protocol.as_deref().unwrap_or("TCP")
}

/// Whether `selector` selects an object labelled `labels` (the API's semantics).
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expression = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            op => panic!("label selector operator {op:?} is not one the API accepts"),
        }
    });
    by_label && by_expression
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The container's security settings, with the pod's where the container sets none.
struct EffectiveSecurity {
    run_as_non_root: Option<bool>,
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    seccomp: Option<String>,
    container: SecurityContext,
}

fn security(pods: &Pods) -> EffectiveSecurity {
    let pod = pods.spec.security_context.clone().unwrap_or_default();
    let c = container(pods).security_context.clone().unwrap_or_default();
    EffectiveSecurity {
        run_as_non_root: c.run_as_non_root.or(pod.run_as_non_root),
        run_as_user: c.run_as_user.or(pod.run_as_user),
        run_as_group: c.run_as_group.or(pod.run_as_group),
        seccomp: c
            .seccomp_profile
            .as_ref()
            .or(pod.seccomp_profile.as_ref())
            .map(|p| p.type_.clone()),
        container: c,
    }
}

fn listen_ports(config: &Config) -> BTreeSet<i32> {
    config.listen.iter().map(|a| i32::from(a.port())).collect()
}

fn list<T: Debug>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every ServiceAccount subject of every binding an overlay renders, with the binding.
fn bound_accounts(m: &Manifests) -> Vec<(&str, &Subject)> {
    let cluster = m.cluster_role_bindings.iter().flat_map(|b| {
        b.object
            .subjects
            .iter()
            .flatten()
            .map(|s| (b.origin.as_str(), s))
    });
    let namespaced = m.role_bindings.iter().flat_map(|b| {
        b.object
            .subjects
            .iter()
            .flatten()
            .map(|s| (b.origin.as_str(), s))
    });
    cluster
        .chain(namespaced)
        .filter(|(_, s)| s.kind == "ServiceAccount")
        .collect()
}

/// The central tier of an overlay: its one Deployment.
fn central(m: &Manifests) -> &Doc<Deployment> {
    one(m, &m.deployments, "Deployment")
}

/// The node-local tier of the node-local overlay: its one DaemonSet.
fn daemon_set(m: &Manifests) -> &Doc<DaemonSet> {
    one(m, &m.daemon_sets, "DaemonSet")
}

#[test]
fn every_document_parses_into_its_kind() {
    for m in overlays() {
        let node_local = m.source.ends_with(NODE_LOCAL_OVERLAY);
        let count = |kind: &str, n: usize, want: usize| {
            assert_eq!(
                n,
                want,
                "{} renders {n} {kind}(s); the central tier has {}{}",
                m.source,
                "one ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap, Deployment and \
                 PodDisruptionBudget",
                if node_local {
                    ", the node-local tier one ServiceAccount, ConfigMap, DaemonSet and two \
                     Services (kube-dns-upstream, metrics)"
                } else {
                    ""
                }
            )
        };
        let tier = |central: usize, node: usize| central + if node_local { node } else { 0 };
        count("ServiceAccount", m.service_accounts.len(), tier(1, 1));
        count("ClusterRole", m.cluster_roles.len(), 1);
        count("ClusterRoleBinding", m.cluster_role_bindings.len(), 1);
        count("RoleBinding", m.role_bindings.len(), 0);
        count("ConfigMap", m.config_maps.len(), tier(1, 1));
        count("Deployment", m.deployments.len(), 1);
        count("DaemonSet", m.daemon_sets.len(), tier(0, 1));
        count("Service", m.services.len(), tier(0, 2));
        count("PodDisruptionBudget", m.disruption_budgets.len(), 1);
        for object in m
            .service_accounts
            .iter()
            .map(|d| (&d.origin, &d.object.metadata))
        {
            assert_eq!(
                namespace_of(object.1),
                NAMESPACE,
                "{}: cluster DNS lives in {NAMESPACE}",
                object.0
            );
        }
    }
    let file = kube_dns_service_file();
    one(&file, &file.services, "Service");
}

#[test]
fn no_overlay_touches_the_kube_dns_service() {
    for m in overlays() {
        for s in &m.services {
            assert_ne!(
                name_of(&s.object.metadata),
                "kube-dns",
                "{}: an overlay must not apply the kube-dns Service: on a running cluster it \
                 exists (its clusterIP is kubelet's clusterDNS and cannot change) and already \
                 selects the pods; deploy/{KUBE_DNS_SERVICE_FILE} is for a cluster without one",
                s.origin
            );
        }
    }
}

#[test]
fn cluster_role_grants_list_and_watch_on_exactly_the_watched_resources() {
    for m in overlays() {
        let role = one(m, &m.cluster_roles, "ClusterRole");
        let deployment = central(m);
        let pods = deployment.pods();
        let settings = KubeSettings::from(&config_of(m, &pods));
        let args = &argv(container(&pods))[1..];

        let expected: BTreeSet<(String, String, String)> = watched_resources(&settings)
            .into_iter()
            .flat_map(|(group, resource)| {
                ["list", "watch"]
                    .map(|verb| (group.to_owned(), resource.to_owned(), verb.to_owned()))
            })
            .collect();

        assert!(
            role.object.aggregation_rule.is_none(),
            "{}: the ClusterRole aggregates other roles, so what it grants is not in this file",
            role.origin
        );
        let mut granted = BTreeSet::new();
        for (i, rule) in role.object.rules.iter().flatten().enumerate() {
            let at = format!("{}: ClusterRole rule {}", role.origin, i + 1);
            assert!(
                rule.resource_names.as_ref().is_none_or(Vec::is_empty),
                "{at} is limited to resourceNames: the watchers list and watch every object of \
                 a kind, which a by-name grant does not allow"
            );
            assert!(
                rule.non_resource_urls.as_ref().is_none_or(Vec::is_empty),
                "{at} grants nonResourceURLs, which clusterdns never calls"
            );
            let groups = rule.api_groups.as_deref().unwrap_or_default();
            let resources = rule.resources.as_deref().unwrap_or_default();
            assert!(
                !groups.is_empty() && !resources.is_empty() && !rule.verbs.is_empty(),
                "{at} names no API group, resource or verb, so it grants nothing"
            );
            for field in [groups, resources, rule.verbs.as_slice()] {
                assert!(
                    !field.iter().any(|x| x.contains('*')),
                    "{at} uses a wildcard ({field:?}): grant exactly what clusterdns watches"
                );
            }
            for group in groups {
                for resource in resources {
                    for verb in &rule.verbs {
                        granted.insert((group.clone(), resource.clone(), verb.clone()));
                    }
                }
            }
        }

        let missing: Vec<_> = expected.difference(&granted).collect();
        assert!(
            missing.is_empty(),
            "{}: with args {args:?} clusterdns lists and watches {}, but the ClusterRole does \
             not grant (group, resource, verb) {}: its watchers would get 403 Forbidden and the \
             pods would never become ready",
            role.origin,
            list(watched_resources(&settings)),
            list(missing)
        );
        let extra: Vec<_> = granted.difference(&expected).collect();
        assert!(
            extra.is_empty(),
            "{}: the ClusterRole grants (group, resource, verb) {}, which clusterdns does not \
             use with args {args:?}; a DNS server reachable from every pod should hold no \
             more than list and watch on what it serves",
            role.origin,
            list(extra)
        );
    }
}

#[test]
fn binding_gives_the_role_to_the_deployments_service_account() {
    for m in overlays() {
        let role = one(m, &m.cluster_roles, "ClusterRole");
        let binding = one(m, &m.cluster_role_bindings, "ClusterRoleBinding");
        let deployment = central(m);
        let pods = deployment.pods();
        let namespace = namespace_of(&deployment.object.metadata);
        let spec = pods.spec;

        let account = spec.service_account_name.as_deref().unwrap_or("default");
        assert_ne!(
            account, "default",
            "{}: the Deployment runs as the `default` ServiceAccount; give it its own \
             (serviceAccountName) so the ClusterRole reaches nothing else",
            deployment.origin
        );
        assert_ne!(
            spec.automount_service_account_token,
            Some(false),
            "{}: the pod does not mount its ServiceAccount token, so clusterdns cannot reach \
             the API",
            deployment.origin
        );
        let sa = named(
            m,
            &m.service_accounts,
            |s| &s.metadata,
            "ServiceAccount",
            namespace,
            account,
        );
        assert_eq!(
            (
                name_of(&sa.object.metadata),
                namespace_of(&sa.object.metadata)
            ),
            (account, namespace),
            "{}: the ServiceAccount is not the one the Deployment runs as ({namespace}/{account})",
            sa.origin
        );
        assert_ne!(
            sa.object.automount_service_account_token,
            Some(false),
            "{}: the ServiceAccount turns off token mounting, so clusterdns cannot reach the API",
            sa.origin
        );

        let role_ref = &binding.object.role_ref;
        assert_eq!(
            (
                role_ref.api_group.as_str(),
                role_ref.kind.as_str(),
                role_ref.name.as_str()
            ),
            (
                "rbac.authorization.k8s.io",
                "ClusterRole",
                name_of(&role.object.metadata)
            ),
            "{}: the ClusterRoleBinding does not refer to the ClusterRole in {}",
            binding.origin,
            role.origin
        );
        let subjects: Vec<_> = binding
            .object
            .subjects
            .iter()
            .flatten()
            .map(|s| {
                (
                    s.kind.as_str(),
                    s.api_group.as_deref().unwrap_or_default(),
                    s.namespace.as_deref().unwrap_or_default(),
                    s.name.as_str(),
                )
            })
            .collect();
        assert_eq!(
            subjects,
            [("ServiceAccount", "", namespace, account)],
            "{}: the ClusterRoleBinding must bind the Deployment's ServiceAccount \
             {namespace}/{account}, and nothing else",
            binding.origin
        );
    }
}

#[test]
fn probes_and_ports_follow_the_flags() {
    for m in overlays() {
        let deployment = central(m);
        let pods = deployment.pods();
        let config = config_of(m, &pods);
        let c = container(&pods);
        let at = &deployment.origin;
        let metrics_port = i32::from(config.side_port().port());

        assert!(
            config.side_port().ip().is_unspecified(),
            "{at}: --metrics-listen {} is not reachable on the pod's IP, where the kubelet \
             probes and Prometheus scrapes",
            config.side_port()
        );
        assert!(
            config.listen.iter().any(|a| a.ip().is_unspecified()),
            "{at}: no --listen address is reachable on the pod's IP ({}), where the kube-dns \
             Service sends queries",
            list(&config.listen)
        );

        for (probe, kind, path) in [
            (&c.liveness_probe, "livenessProbe", "/healthz"),
            (&c.readiness_probe, "readinessProbe", "/readyz"),
        ] {
            let get = probe
                .as_ref()
                .and_then(|p| p.http_get.as_ref())
                .unwrap_or_else(|| panic!("{at}: the container has no {kind} httpGet {path}"));
            assert_eq!(
                get.path.as_deref(),
                Some(path),
                "{at}: the {kind} must GET {path} on the side port"
            );
            assert_eq!(
                resolve_port(c, &get.port, "TCP"),
                Some(metrics_port),
                "{at}: the {kind} targets port {:?}, but --metrics-listen serves {path} on {}",
                get.port,
                config.side_port()
            );
            assert!(
                get.scheme.as_deref().is_none_or(|s| s == "HTTP") && get.host.is_none(),
                "{at}: the {kind} must be plain HTTP to the pod's IP; the side port has no TLS"
            );
        }

        let declared = |protocol: &str| -> BTreeSet<i32> {
            c.ports
                .iter()
                .flatten()
                .filter(|p| protocol_of(&p.protocol) == protocol)
                .map(|p| p.container_port)
                .collect()
        };
        let dns_ports = listen_ports(&config);
        let mut tcp_ports = dns_ports.clone();
        tcp_ports.insert(metrics_port);
        assert_eq!(
            declared("UDP"),
            dns_ports,
            "{at}: the container's UDP ports must be the --listen port(s)"
        );
        assert_eq!(
            declared("TCP"),
            tcp_ports,
            "{at}: the container's TCP ports must be the --listen port(s) and the \
             --metrics-listen port"
        );
    }
}

#[test]
fn kube_dns_service_reaches_the_pods() {
    let file = kube_dns_service_file();
    let service = one(&file, &file.services, "Service");
    for m in overlays() {
        let deployment = central(m);
        let pods = deployment.pods();
        let c = container(&pods);
        let at = &service.origin;
        let spec = service
            .object
            .spec
            .as_ref()
            .unwrap_or_else(|| panic!("{at}: the Service has no spec"));

        assert_eq!(
            (
                name_of(&service.object.metadata),
                namespace_of(&service.object.metadata)
            ),
            ("kube-dns", NAMESPACE),
            "{at}: the cluster DNS Service must be {NAMESPACE}/kube-dns, the Service kubeadm \
             and CoreDNS create and tools look for"
        );
        assert_eq!(
            spec.cluster_ip.as_deref(),
            Some(CLUSTER_DNS_IP),
            "{at}: the Service's clusterIP must be kubelet's clusterDNS, which pods get as \
             their nameserver"
        );

        let ports: BTreeSet<(i32, &str)> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| (p.port, protocol_of(&p.protocol)))
            .collect();
        let wanted: BTreeSet<(i32, &str)> = [(53, "UDP"), (53, "TCP"), (9153, "TCP")].into();
        assert_eq!(
            ports, wanted,
            "{at}: the Service must expose DNS on 53/UDP and 53/TCP and metrics on 9153/TCP"
        );
        let config = config_of(m, &pods);
        let dns_ports = listen_ports(&config);
        let metrics_port = i32::from(config.side_port().port());
        for p in spec.ports.iter().flatten() {
            let protocol = protocol_of(&p.protocol);
            let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
            let reached = resolve_port(c, &target, protocol);
            let declared = c.ports.iter().flatten().any(|cp| {
                Some(cp.container_port) == reached && protocol_of(&cp.protocol) == protocol
            });
            assert!(
                declared,
                "{at}: Service port {}/{protocol} targets {target:?}, which is not a {protocol} \
                 port of the clusterdns container in {}",
                p.port, deployment.origin
            );
            let (serves, flag) = if p.port == 9153 {
                (reached == Some(metrics_port), "--metrics-listen")
            } else {
                (reached.is_some_and(|r| dns_ports.contains(&r)), "--listen")
            };
            assert!(
                serves,
                "{at}: Service port {}/{protocol} targets container port {reached:?}, which is \
                 not the {flag} port clusterdns serves it on",
                p.port
            );
        }

        let labels = &pods.labels;
        let selector = spec.selector.clone().unwrap_or_default();
        assert!(
            !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
            "{at}: the Service selects {selector:?}, but the clusterdns pods of {} are \
             labelled {labels:?}: it would send them no queries",
            deployment.origin
        );
    }
}

#[test]
fn deployment_and_budget_select_only_clusterdns_pods() {
    for m in overlays() {
        let deployment = central(m);
        let pods = deployment.pods();
        let budget = one(m, &m.disruption_budgets, "PodDisruptionBudget");
        let pods = pods.labels.clone();
        let coredns_pods = labels(&[DNS_LABEL]);
        let spec = deployment
            .object
            .spec
            .as_ref()
            .expect("checked by pod_spec");

        assert_eq!(
            namespace_of(&deployment.object.metadata),
            NAMESPACE,
            "{}: cluster DNS runs in {NAMESPACE}",
            deployment.origin
        );
        assert_eq!(
            pods.get(DNS_LABEL.0).map(String::as_str),
            Some(DNS_LABEL.1),
            "{}: the pods must carry {}={} like CoreDNS's, or the kube-dns Service and the \
             NetworkPolicies that allow DNS traffic miss them",
            deployment.origin,
            DNS_LABEL.0,
            DNS_LABEL.1
        );
        assert!(
            selects(&spec.selector, &pods),
            "{}: the Deployment's selector does not match its own pod template's labels",
            deployment.origin
        );
        assert!(
            !selects(&spec.selector, &coredns_pods),
            "{}: the Deployment's selector also matches CoreDNS's pods ({coredns_pods:?}); \
             add a label only clusterdns's pods carry",
            deployment.origin
        );

        let budget_spec =
            budget.object.spec.as_ref().unwrap_or_else(|| {
                panic!("{}: the PodDisruptionBudget has no spec", budget.origin)
            });
        let selector = budget_spec.selector.clone().unwrap_or_default();
        assert_eq!(
            namespace_of(&budget.object.metadata),
            namespace_of(&deployment.object.metadata),
            "{}: a PodDisruptionBudget covers pods of its own namespace only",
            budget.origin
        );
        assert!(
            selects(&selector, &pods),
            "{}: the PodDisruptionBudget does not select the clusterdns pods ({pods:?})",
            budget.origin
        );
        assert!(
            !selects(&selector, &coredns_pods),
            "{}: the PodDisruptionBudget also selects CoreDNS's pods ({coredns_pods:?}); a pod \
             under two budgets cannot be evicted, so draining a node fails during the switch",
            budget.origin
        );
        let replicas = spec.replicas.unwrap_or(1);
        let max_unavailable = match &budget_spec.max_unavailable {
            Some(IntOrString::Int(n)) => *n,
            other => panic!(
                "{}: the PodDisruptionBudget should say maxUnavailable as a number of pods, \
                 not {other:?}",
                budget.origin
            ),
        };
        assert!(
            replicas >= 2 && max_unavailable < replicas,
            "{}: with {replicas} replica(s) and maxUnavailable {max_unavailable}, a node drain \
             may take every DNS pod at once",
            budget.origin
        );
    }
}

#[test]
fn container_runs_locked_down() {
    for m in overlays() {
        let deployment = central(m);
        let pods = deployment.pods();
        let config = config_of(m, &pods);
        let at = &deployment.origin;
        let s = security(&pods);
        let c = &s.container;

        assert_eq!(
            s.run_as_non_root,
            Some(true),
            "{at}: set runAsNonRoot: true, so the kubelet refuses to start clusterdns as root"
        );
        assert!(
            s.run_as_user.is_some_and(|u| u != 0),
            "{at}: set runAsUser to a non-zero uid (the image's is 65532), found {:?}",
            s.run_as_user
        );
        assert_eq!(
            c.read_only_root_filesystem,
            Some(true),
            "{at}: set readOnlyRootFilesystem: true; clusterdns writes no files"
        );
        assert_eq!(
            c.allow_privilege_escalation,
            Some(false),
            "{at}: set allowPrivilegeEscalation: false"
        );
        assert_ne!(
            c.privileged,
            Some(true),
            "{at}: the container must not be privileged"
        );
        assert_eq!(
            s.seccomp.as_deref(),
            Some("RuntimeDefault"),
            "{at}: set seccompProfile type RuntimeDefault"
        );

        let caps = c.capabilities.clone().unwrap_or_default();
        let dropped = caps.drop.unwrap_or_default();
        let added = caps.add.unwrap_or_default();
        assert!(
            dropped.iter().any(|d| d == "ALL"),
            "{at}: drop ALL capabilities (dropped: {dropped:?})"
        );
        assert!(
            added.iter().all(|a| a == "NET_BIND_SERVICE"),
            "{at}: the only capability clusterdns needs is NET_BIND_SERVICE (port 53), but \
             the container adds {added:?}"
        );
        let privileged_ports: Vec<_> = listen_ports(&config)
            .into_iter()
            .filter(|p| *p < 1024)
            .collect();
        assert!(
            privileged_ports.is_empty() || added.iter().any(|a| a == "NET_BIND_SERVICE"),
            "{at}: clusterdns listens on port(s) {privileged_ports:?} as a non-root user, which \
             needs capability NET_BIND_SERVICE"
        );

        let pod = pods.spec;
        assert!(
            !pod.host_network.unwrap_or(false),
            "{at}: hostNetwork would put clusterdns on the node's port 53 (and its resolver)"
        );
        assert_eq!(
            pod.dns_policy.as_deref(),
            Some("Default"),
            "{at}: dnsPolicy must be Default: the cluster DNS cannot resolve through itself"
        );
    }
}

#[test]
fn deployment_reads_its_settings_from_the_config_map() {
    for m in overlays() {
        let deployment = central(m);
        let pods = deployment.pods();
        let (map, text) = mounted_config(m, &pods, &format!("/etc/clusterdns/{CONFIG_KEY}"));
        let text = text.as_str();
        let at = &map.origin;
        let args = argv(container(&pods));
        assert_eq!(
            &args[1..],
            ["--config=/etc/clusterdns/config.yaml"],
            "{}: every setting lives in the ConfigMap; a flag would silently override its key",
            deployment.origin
        );
        // The file as clusterdns loads it, with nothing else.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(CONFIG_KEY);
        std::fs::write(&file, text).unwrap();
        let from_map = clusterdns::config::load(["clusterdns", "--config", file.to_str().unwrap()])
            .unwrap_or_else(|e| panic!("{at}: {CONFIG_KEY} is not a valid configuration: {e}"));
        let running = config_of(m, &pods);
        assert_eq!(
            running.loaded.effective, from_map.loaded.effective,
            "{at}: the Deployment runs what the ConfigMap says"
        );
        // The keys the ConfigMap spells out are the ones that differ from a bare start or that
        // operators look for; each is a real key.
        let settings: BTreeMap<String, Value> = serde_yaml_ng::from_str(text).unwrap();
        for key in [
            "listen",
            "metrics-listen",
            "zone",
            "ttl",
            "upstream",
            "log-level",
        ] {
            assert!(settings.contains_key(key), "{at}: {CONFIG_KEY} sets {key}");
        }
    }
}

#[test]
fn image_runs_as_the_deployments_user_and_can_bind_port_53() {
    for m in overlays() {
        let deployment = central(m);
        let pods = deployment.pods();
        let config = config_of(m, &pods);
        let s = security(&pods);
        let text = std::fs::read_to_string(deploy_dir().join("Dockerfile"))
            .expect("deploy/Dockerfile exists");
        // The runtime stage's instruction: the last one in the file.
        let last = |instruction: &str| -> String {
            text.lines()
                .rev()
                .map(str::trim)
                .filter_map(|l| l.split_once(char::is_whitespace))
                .filter(|(i, _)| i.eq_ignore_ascii_case(instruction))
                .map(|(_, rest)| rest.trim().to_owned())
                .next()
                .unwrap_or_else(|| panic!("deploy/Dockerfile has no {instruction}"))
        };

        let user = last("USER");
        let (uid, gid) = user.split_once(':').unwrap_or((&user, ""));
        assert_eq!(
            uid.parse::<i64>().ok(),
            s.run_as_user,
            "deploy/Dockerfile runs as USER {user}, the Deployment as runAsUser {:?}: make them \
             one numeric uid, so runAsNonRoot can be verified and file ownership agrees",
            s.run_as_user
        );
        if let Some(group) = s.run_as_group {
            assert_eq!(
                gid.parse::<i64>().ok(),
                Some(group),
                "deploy/Dockerfile's USER {user} and the Deployment's runAsGroup differ"
            );
        }

        let entrypoint = last("ENTRYPOINT");
        assert_eq!(
            entrypoint, r#"["/clusterdns"]"#,
            "deploy/Dockerfile's ENTRYPOINT must be the binary alone, so the Deployment's args \
             are clusterdns's flags"
        );
        assert!(
            container(&pods).command.is_none(),
            "{}: the container overrides the image's ENTRYPOINT; pass flags as args only",
            deployment.origin
        );

        let exposed: BTreeSet<String> = last("EXPOSE")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let mut wanted: BTreeSet<String> = listen_ports(&config)
            .into_iter()
            .flat_map(|p| [format!("{p}/udp"), format!("{p}/tcp")])
            .collect();
        wanted.insert(format!("{}/tcp", config.side_port().port()));
        assert_eq!(
            exposed, wanted,
            "deploy/Dockerfile's EXPOSE does not list the --listen and --metrics-listen ports"
        );

        let binds_privileged = listen_ports(&config).iter().any(|p| *p < 1024);
        if binds_privileged && s.run_as_user != Some(0) {
            assert!(
                text.contains("setcap cap_net_bind_service=+ep /clusterdns"),
                "deploy/Dockerfile must give /clusterdns the file capability \
                 cap_net_bind_service (setcap): a non-root process gets no capability from the \
                 container's set without it, and binding port 53 fails with permission denied"
            );
        }
    }
}

#[test]
fn node_local_args_parse_and_follow_the_design() {
    let m = node_local();
    let ds = daemon_set(m);
    let pods = ds.pods();
    let at = &ds.origin;
    let config = config_of(m, &pods);
    let c = container(&pods);

    assert_eq!(
        config.mode,
        Mode::NodeLocal,
        "{at}: the DaemonSet must run --mode node-local"
    );
    assert!(
        config.setup_interface.is_some(),
        "{at}: set --setup-interface (nodelocaldns): the listen addresses must be on an \
         interface of the node, with NOTRACK rules, for pods' queries to arrive"
    );
    assert!(
        !config.cluster_dns.is_empty(),
        "{at}: no --cluster-dns: cluster names would have nowhere to go"
    );
    assert!(
        !config.listen.is_empty(),
        "{at}: set --listen explicitly: the default, 0.0.0.0:53, is the whole node's port 53"
    );
    for a in &config.listen {
        let ip = a.ip();
        let link_local = matches!(ip, IpAddr::V4(v4) if v4.is_link_local());
        assert!(
            !ip.is_unspecified(),
            "{at}: --listen {a}: with hostNetwork that is every address of the node (its own \
             resolver's port 53 and its outside interfaces); listen on the link-local address \
             and the kube-dns ClusterIP only"
        );
        assert!(
            link_local || ip.to_string() == CLUSTER_DNS_IP,
            "{at}: --listen {a} is neither link-local (169.254.20.10, kubelet's clusterDNS in \
             IPVS mode) nor the kube-dns ClusterIP {CLUSTER_DNS_IP} (iptables mode)"
        );
        assert_eq!(a.port(), 53, "{at}: --listen {a}: pods ask port 53");
    }
    assert!(
        config
            .listen
            .iter()
            .any(|a| matches!(a.ip(), IpAddr::V4(v4) if v4.is_link_local())),
        "{at}: no link-local --listen address (169.254.20.10): kube-proxy in IPVS mode \
         needs kubelet's clusterDNS pointed at one"
    );

    let metrics_port = i32::from(config.side_port().port());
    assert!(
        config.side_port().ip().is_unspecified(),
        "{at}: --metrics-listen {} must be on the node's own address, where the kubelet \
         probes a hostNetwork pod and Prometheus scrapes",
        config.side_port()
    );
    for (probe, kind, path) in [
        (&c.liveness_probe, "livenessProbe", "/healthz"),
        (&c.readiness_probe, "readinessProbe", "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("{at}: the container has no {kind} httpGet {path}"));
        assert_eq!(
            get.path.as_deref(),
            Some(path),
            "{at}: the {kind} must GET {path}"
        );
        assert_eq!(
            resolve_port(c, &get.port, "TCP"),
            Some(metrics_port),
            "{at}: the {kind} targets port {:?}, but --metrics-listen serves {path} on {}",
            get.port,
            config.side_port()
        );
        assert!(
            get.scheme.as_deref().is_none_or(|s| s == "HTTP") && get.host.is_none(),
            "{at}: the {kind} must be plain HTTP to the pod's (the node's) address"
        );
    }
    let declared = |protocol: &str| -> BTreeSet<i32> {
        c.ports
            .iter()
            .flatten()
            .filter(|p| protocol_of(&p.protocol) == protocol)
            .map(|p| p.container_port)
            .collect()
    };
    let dns_ports = listen_ports(&config);
    let mut tcp_ports = dns_ports.clone();
    tcp_ports.insert(metrics_port);
    assert_eq!(
        declared("UDP"),
        dns_ports,
        "{at}: the container's UDP ports must be the --listen port(s)"
    );
    assert_eq!(
        declared("TCP"),
        tcp_ports,
        "{at}: the container's TCP ports must be the --listen port(s) and --metrics-listen's"
    );
}

#[test]
fn node_local_reads_its_settings_from_its_config_map() {
    let m = node_local();
    let ds = daemon_set(m);
    let pods = ds.pods();
    let args = argv(container(&pods));
    let upstream = format!(
        "--cluster-dns=$({})",
        service_host_variable(UPSTREAM_SERVICE)
    );
    assert_eq!(
        &args[1..],
        [format!("--config=/etc/clusterdns/{CONFIG_KEY}"), upstream],
        "{}: every setting lives in the ConfigMap but --cluster-dns, the kube-dns-upstream \
         ClusterIP the kubelet expands; another flag would silently override its key",
        ds.origin
    );
    let (map, text) = mounted_config(m, &pods, &format!("/etc/clusterdns/{CONFIG_KEY}"));
    let settings: BTreeMap<String, Value> = serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {CONFIG_KEY} is not YAML: {e}", map.origin));
    assert!(
        !settings.contains_key("cluster-dns"),
        "{}: {CONFIG_KEY} sets cluster-dns, which the DaemonSet's args override",
        map.origin
    );
    for key in [
        "mode",
        "listen",
        "setup-interface",
        "metrics-listen",
        "zone",
        "cluster-cache-ttl",
        "cluster-cache-negative-ttl",
        "upstream",
    ] {
        assert!(
            settings.contains_key(key),
            "{}: {CONFIG_KEY} sets {key}",
            map.origin
        );
    }
    let central_zone = config_of(m, &central(m).pods()).zone;
    assert_eq!(
        config_of(m, &pods).zone,
        central_zone,
        "{}: the node caches must send the central tier's zone to it",
        map.origin
    );
}

#[test]
fn node_local_runs_on_every_node_in_its_network() {
    let m = node_local();
    let ds = daemon_set(m);
    let pods = ds.pods();
    let at = &ds.origin;
    let spec = ds.object.spec.as_ref().expect("checked by pods()");

    assert_eq!(
        namespace_of(&ds.object.metadata),
        NAMESPACE,
        "{at}: the node caches run in {NAMESPACE}, beside the kube-dns-upstream Service \
         whose variable they read"
    );
    assert_eq!(
        pods.spec.host_network,
        Some(true),
        "{at}: hostNetwork: true, so the cache answers on an address of the node"
    );
    assert_eq!(
        pods.spec.dns_policy.as_deref(),
        Some("Default"),
        "{at}: dnsPolicy must be Default: the node's resolv.conf holds the upstreams, and the \
         cache cannot resolve through itself"
    );
    assert_eq!(
        pods.spec.priority_class_name.as_deref(),
        Some("system-node-critical"),
        "{at}: the node's DNS is node-critical (as node-cache)"
    );
    let tolerations = pods.spec.tolerations.as_deref().unwrap_or_default();
    assert!(
        tolerations.iter().any(|t| t.key.is_none()
            && t.operator.as_deref() == Some("Exists")
            && t.effect.is_none()),
        "{at}: tolerate every taint ({{operator: Exists}} without key or effect), so every \
         node has its cache; found {tolerations:?}"
    );
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    assert!(
        strategy
            .type_
            .as_deref()
            .is_none_or(|t| t == "RollingUpdate"),
        "{at}: updateStrategy must be RollingUpdate, not {:?}",
        strategy.type_
    );
    assert!(
        strategy
            .rolling_update
            .and_then(|r| r.max_unavailable)
            .is_some(),
        "{at}: set rollingUpdate.maxUnavailable (10%, as node-cache): a node's DNS pauses \
         while its pod restarts"
    );

    assert!(
        selects(&spec.selector, &pods.labels),
        "{at}: the DaemonSet's selector does not match its own pod template's labels"
    );
    let central_pods = central(m).pods().labels;
    for (other, whose) in [
        (&central_pods, "the central clusterdns pods"),
        (&labels(&[NODE_CACHE_LABEL]), "k8s-dns-node-cache's pods"),
    ] {
        assert!(
            !selects(&spec.selector, other),
            "{at}: the DaemonSet's selector also matches {whose} ({other:?})"
        );
    }

    let metrics = named(
        m,
        &m.services,
        |s| &s.metadata,
        "Service",
        pods.namespace,
        name_of(&ds.object.metadata),
    );
    let config = config_of(m, &pods);
    let metrics_spec = metrics.object.spec.clone().unwrap_or_default();
    assert!(
        metrics_spec
            .selector
            .as_ref()
            .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| pods.labels.get(k) == Some(v))),
        "{}: the metrics Service does not select the node-local pods ({:?})",
        metrics.origin,
        pods.labels
    );
    for p in metrics_spec.ports.iter().flatten() {
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
        assert_eq!(
            resolve_port(container(&pods), &target, protocol_of(&p.protocol)),
            Some(i32::from(config.side_port().port())),
            "{}: port {} must target --metrics-listen's port",
            metrics.origin,
            p.port
        );
    }
}

#[test]
fn node_local_has_net_admin_and_nothing_more() {
    let m = node_local();
    let ds = daemon_set(m);
    let pods = ds.pods();
    let at = &ds.origin;
    let s = security(&pods);
    let c = &s.container;
    let caps = c.capabilities.clone().unwrap_or_default();
    let dropped = caps.drop.unwrap_or_default();
    let added: BTreeSet<String> = caps.add.unwrap_or_default().into_iter().collect();
    assert!(
        dropped.iter().any(|d| d == "ALL"),
        "{at}: drop ALL capabilities (dropped: {dropped:?})"
    );
    let wanted: BTreeSet<String> = ["NET_ADMIN", "NET_BIND_SERVICE"].map(str::to_owned).into();
    assert_eq!(
        added, wanted,
        "{at}: the node cache needs NET_ADMIN (the interface and the NOTRACK rules) and \
         NET_BIND_SERVICE (port 53), nothing else"
    );
    assert_ne!(
        c.privileged,
        Some(true),
        "{at}: the container must not be privileged"
    );
    assert_eq!(
        c.allow_privilege_escalation,
        Some(false),
        "{at}: set allowPrivilegeEscalation: false"
    );
    assert_eq!(
        c.read_only_root_filesystem,
        Some(true),
        "{at}: set readOnlyRootFilesystem: true; clusterdns writes no files"
    );
    assert_eq!(
        s.seccomp.as_deref(),
        Some("RuntimeDefault"),
        "{at}: set seccompProfile type RuntimeDefault"
    );
    assert!(
        s.run_as_user == Some(0) && s.run_as_non_root != Some(true),
        "{at}: run as user 0: a non-root process gets no capability from the container's set \
         without a file capability, and the image's binary carries cap_net_bind_service only \
         (found runAsUser {:?}, runAsNonRoot {:?})",
        s.run_as_user,
        s.run_as_non_root
    );
}

#[test]
fn node_local_service_account_has_no_api_access() {
    let m = node_local();
    let ds = daemon_set(m);
    let pods = ds.pods();
    let at = &ds.origin;
    let account = pods
        .spec
        .service_account_name
        .as_deref()
        .unwrap_or("default");
    assert_ne!(
        account, "default",
        "{at}: give the node caches their own ServiceAccount (serviceAccountName), so no \
         binding to `default` ever reaches them"
    );
    let sa = named(
        m,
        &m.service_accounts,
        |s| &s.metadata,
        "ServiceAccount",
        pods.namespace,
        account,
    );
    assert!(
        pods.spec.automount_service_account_token == Some(false)
            || (pods.spec.automount_service_account_token.is_none()
                && sa.object.automount_service_account_token == Some(false)),
        "{at}: the node cache never calls the API: set automountServiceAccountToken: false"
    );
    for (binding, subject) in bound_accounts(m) {
        let namespace = subject.namespace.as_deref().unwrap_or_default();
        assert!(
            (namespace, subject.name.as_str()) != (pods.namespace, account),
            "{binding} binds {}/{account}, the node caches' ServiceAccount: they need no API \
             access (node-local mode watches nothing)",
            pods.namespace
        );
    }
}

#[test]
fn kube_dns_upstream_reaches_the_central_pods() {
    let m = node_local();
    let deployment = central(m);
    let pods = deployment.pods();
    let c = container(&pods);
    let config = config_of(m, &pods);
    let ds = daemon_set(m);
    let service = named(
        m,
        &m.services,
        |s| &s.metadata,
        "Service",
        namespace_of(&ds.object.metadata),
        UPSTREAM_SERVICE,
    );
    let at = &service.origin;
    let spec = service
        .object
        .spec
        .as_ref()
        .unwrap_or_else(|| panic!("{at}: the Service has no spec"));
    assert!(
        spec.cluster_ip.as_deref() != Some("None"),
        "{at}: kube-dns-upstream must have a ClusterIP: the node caches are given that address"
    );
    assert!(
        spec.type_.as_deref().is_none_or(|t| t == "ClusterIP"),
        "{at}: kube-dns-upstream is for the nodes only: type ClusterIP, not {:?}",
        spec.type_
    );
    let selector = spec.selector.clone().unwrap_or_default();
    assert!(
        !selector.is_empty() && selector.iter().all(|(k, v)| pods.labels.get(k) == Some(v)),
        "{at}: kube-dns-upstream selects {selector:?}, but the central clusterdns pods of {} \
         are labelled {:?}: the node caches would get no answer for cluster names",
        deployment.origin,
        pods.labels
    );
    let ports: BTreeSet<(i32, &str)> = spec
        .ports
        .iter()
        .flatten()
        .map(|p| (p.port, protocol_of(&p.protocol)))
        .collect();
    assert_eq!(
        ports,
        [(53, "UDP"), (53, "TCP")].into(),
        "{at}: kube-dns-upstream must expose 53/UDP and 53/TCP (the caches ask over TCP)"
    );
    let dns_ports = listen_ports(&config);
    for p in spec.ports.iter().flatten() {
        let protocol = protocol_of(&p.protocol);
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
        let reached = resolve_port(c, &target, protocol);
        assert!(
            reached.is_some_and(|r| dns_ports.contains(&r))
                && c.ports.iter().flatten().any(|cp| {
                    Some(cp.container_port) == reached && protocol_of(&cp.protocol) == protocol
                }),
            "{at}: port {}/{protocol} targets {target:?}, which is not a {protocol} port that \
             --listen serves in {}",
            p.port,
            deployment.origin
        );
    }
    // The caches are given this Service's address through its environment variable.
    let upstream_arg = argv(container(&ds.pods()))
        .into_iter()
        .any(|a| a.contains(&format!("$({})", service_host_variable(UPSTREAM_SERVICE))));
    assert!(
        upstream_arg,
        "{}: --cluster-dns must be $({}), kube-dns-upstream's ClusterIP",
        ds.origin,
        service_host_variable(UPSTREAM_SERVICE)
    );
}

#[test]
fn node_local_runs_the_node_local_image_of_the_same_release() {
    let m = node_local();
    let image = |pods: &Pods| container(pods).image.clone().unwrap_or_default();
    let ds = daemon_set(m);
    let (node, central) = (image(&ds.pods()), image(&central(m).pods()));
    let split = |i: &str| {
        let (name, tag) = i.rsplit_once(':').unwrap_or((i, "latest"));
        (name.to_owned(), tag.to_owned())
    };
    let ((node_name, node_tag), (central_name, central_tag)) = (split(&node), split(&central));
    assert_eq!(
        node_name,
        format!("{central_name}-node-local"),
        "{}: the node caches run the node-local image (`--target node-local`: ip, nft and \
         iptables for --setup-interface) beside the central one",
        ds.origin
    );
    assert_eq!(
        node_tag, central_tag,
        "{}: both tiers run one release",
        ds.origin
    );
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile"))
            .unwrap();
    let stage = dockerfile
        .split("\nFROM ")
        .find(|s| {
            s.lines()
                .next()
                .is_some_and(|l| l.ends_with(" AS node-local"))
        })
        .expect("deploy/Dockerfile has a node-local stage");
    for tool in ["iproute2", "nftables", "iptables"] {
        assert!(stage.contains(tool), "the node-local stage installs {tool}");
    }
}

#[test]
fn env_references_are_read_as_the_kubelet_does() {
    assert_eq!(
        env_references("--a=$(X_Y) $$(NOT) $(Z)"),
        ["X_Y".to_owned(), "Z".to_owned()]
    );
    assert_eq!(
        service_host_variable("kube-dns-upstream"),
        "KUBE_DNS_UPSTREAM_SERVICE_HOST"
    );
    assert_eq!(
        relative(Path::new("/tmp/a"), Path::new("/work/x")),
        Path::new("../../work/x")
    );
}
