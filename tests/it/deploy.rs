//! The manifests in `deploy/` against the code: every document parses into its Kubernetes
//! type with no field the API would drop, the ClusterRole grants exactly what clusterdns
//! watches with the Deployment's args, probes and ports follow the flags, the kube-dns
//! Service reaches the pods, the container is locked down, and the image can bind port 53.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use clusterdns::config::Config;
use clusterdns::source::kube::{KubeSettings, watched_resources};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PodSpec, SecurityContext, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned};
use serde_json::Value;

/// Where the cluster DNS lives.
const NAMESPACE: &str = "kube-system";
/// The kube-dns Service's address: kubelet's `clusterDNS`, pods' nameserver (kubeadm's default).
const CLUSTER_DNS_IP: &str = "10.96.0.10";
/// The label CoreDNS's pods carry, which the kube-dns Service and NetworkPolicies select.
const DNS_LABEL: (&str, &str) = ("k8s-app", "kube-dns");
/// The data key of the ConfigMap holding the `--config` file.
const CONFIG_KEY: &str = "config.yaml";

/// One document of a file in `deploy/`, typed.
struct Doc<T> {
    /// `deploy/<file> document <n>`, for messages.
    origin: String,
    object: T,
}

/// Every document in `deploy/`, by kind.
#[derive(Default)]
struct Manifests {
    service_accounts: Vec<Doc<ServiceAccount>>,
    cluster_roles: Vec<Doc<ClusterRole>>,
    cluster_role_bindings: Vec<Doc<ClusterRoleBinding>>,
    config_maps: Vec<Doc<ConfigMap>>,
    deployments: Vec<Doc<Deployment>>,
    services: Vec<Doc<Service>>,
    disruption_budgets: Vec<Doc<PodDisruptionBudget>>,
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn yaml_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("deploy/ exists")
        .map(|e| e.expect("deploy/ is readable").path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "deploy/ holds no .yaml manifests");
    files
}

/// Parses every document of every YAML file in `deploy/`; panics on a kind this test does not
/// know, a document that does not parse into its type, or a field its type does not have.
fn load() -> Manifests {
    let mut m = Manifests::default();
    for file in yaml_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).expect("manifest is readable UTF-8");
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let origin = format!("deploy/{name} document {}", i + 1);
            let value = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{origin} is not valid YAML: {e}"));
            if value.is_null() {
                continue; // an empty document (comments only, or a trailing `---`)
            }
            let api_version = value["apiVersion"].as_str().unwrap_or_default().to_owned();
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            match (api_version.as_str(), kind.as_str()) {
                ("v1", "ServiceAccount") => m.service_accounts.push(typed(origin, value)),
                ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                    m.cluster_roles.push(typed(origin, value))
                }
                ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                    m.cluster_role_bindings.push(typed(origin, value))
                }
                ("v1", "ConfigMap") => m.config_maps.push(typed(origin, value)),
                ("apps/v1", "Deployment") => m.deployments.push(typed(origin, value)),
                ("v1", "Service") => m.services.push(typed(origin, value)),
                ("policy/v1", "PodDisruptionBudget") => {
                    m.disruption_budgets.push(typed(origin, value))
                }
                // The alert rules, checked against the exported metrics in tests/it/config.rs.
                ("monitoring.coreos.com/v1", "PrometheusRule") => {}
                _ => panic!(
                    "{origin} is apiVersion {api_version:?} kind {kind:?}, which deploy/ is not \
                     expected to hold (ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap, \
                     Deployment, Service, PodDisruptionBudget); if it belongs there, teach \
                     tests/it/deploy.rs to check it"
                ),
            }
        }
    }
    m
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

/// The single object of a kind; deploy/ must hold exactly one.
fn one<'a, T>(docs: &'a [Doc<T>], kind: &str) -> &'a Doc<T> {
    match docs {
        [doc] => doc,
        _ => panic!(
            "deploy/ must hold exactly one {kind}, found {}: {}",
            docs.len(),
            docs.iter()
                .map(|d| d.origin.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

fn pod_spec(deployment: &Doc<Deployment>) -> &PodSpec {
    deployment
        .object
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .unwrap_or_else(|| panic!("{}: the Deployment has no pod template", deployment.origin))
}

fn pod_labels(deployment: &Doc<Deployment>) -> BTreeMap<String, String> {
    deployment
        .object
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

/// The clusterdns container: the Deployment's only one.
fn container(deployment: &Doc<Deployment>) -> &Container {
    match pod_spec(deployment).containers.as_slice() {
        [c] => c,
        cs => panic!(
            "{}: the Deployment's pod must run exactly one container (clusterdns), it runs {}",
            deployment.origin,
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

/// The configuration the Deployment's container runs with: its args, and the file `--config`
/// names, read from the ConfigMap mounted there.
fn config_of(deployment: &Doc<Deployment>) -> Config {
    let mut argv = argv(container(deployment));
    let at = &deployment.origin;
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
        let text = mounted_config(deployment, &path);
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

/// The text of `path` inside the container: the ConfigMap key a volume mounts there.
fn mounted_config(deployment: &Doc<Deployment>, path: &str) -> String {
    let at = &deployment.origin;
    let c = container(deployment);
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| {
            path.strip_prefix(m.mount_path.trim_end_matches('/'))
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
    let volume = pod_spec(deployment)
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
    let m = load();
    let map = m
        .config_maps
        .iter()
        .find(|d| {
            name_of(&d.object.metadata) == map_name
                && namespace_of(&d.object.metadata) == namespace_of(&deployment.object.metadata)
        })
        .unwrap_or_else(|| panic!("{at}: no ConfigMap {map_name:?} beside the Deployment"));
    map.object
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("{}: the ConfigMap has no key {key:?}", map.origin))
        .clone()
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

fn security(deployment: &Doc<Deployment>) -> EffectiveSecurity {
    let pod = pod_spec(deployment)
        .security_context
        .clone()
        .unwrap_or_default();
    let c = container(deployment)
        .security_context
        .clone()
        .unwrap_or_default();
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

#[test]
fn every_document_parses_into_its_kind() {
    let m = load();
    one(&m.service_accounts, "ServiceAccount");
    one(&m.cluster_roles, "ClusterRole");
    one(&m.cluster_role_bindings, "ClusterRoleBinding");
    one(&m.config_maps, "ConfigMap");
    one(&m.deployments, "Deployment");
    one(&m.services, "Service");
    one(&m.disruption_budgets, "PodDisruptionBudget");
}

#[test]
fn cluster_role_grants_list_and_watch_on_exactly_the_watched_resources() {
    let m = load();
    let role = one(&m.cluster_roles, "ClusterRole");
    let deployment = one(&m.deployments, "Deployment");
    let settings = KubeSettings::from(&config_of(deployment));
    let args = &argv(container(deployment))[1..];

    let expected: BTreeSet<(String, String, String)> = watched_resources(&settings)
        .into_iter()
        .flat_map(|(group, resource)| {
            ["list", "watch"].map(|verb| (group.to_owned(), resource.to_owned(), verb.to_owned()))
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

#[test]
fn binding_gives_the_role_to_the_deployments_service_account() {
    let m = load();
    let role = one(&m.cluster_roles, "ClusterRole");
    let binding = one(&m.cluster_role_bindings, "ClusterRoleBinding");
    let deployment = one(&m.deployments, "Deployment");
    let namespace = namespace_of(&deployment.object.metadata);
    let spec = pod_spec(deployment);

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
    let sa = one(&m.service_accounts, "ServiceAccount");
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

#[test]
fn probes_and_ports_follow_the_flags() {
    let m = load();
    let deployment = one(&m.deployments, "Deployment");
    let config = config_of(deployment);
    let c = container(deployment);
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

#[test]
fn kube_dns_service_reaches_the_pods() {
    let m = load();
    let service = one(&m.services, "Service");
    let deployment = one(&m.deployments, "Deployment");
    let c = container(deployment);
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
    let config = config_of(deployment);
    let dns_ports = listen_ports(&config);
    let metrics_port = i32::from(config.side_port().port());
    for p in spec.ports.iter().flatten() {
        let protocol = protocol_of(&p.protocol);
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
        let reached = resolve_port(c, &target, protocol);
        let declared =
            c.ports.iter().flatten().any(|cp| {
                Some(cp.container_port) == reached && protocol_of(&cp.protocol) == protocol
            });
        assert!(
            declared,
            "{at}: Service port {}/{protocol} targets {target:?}, which is not a {protocol} \
             port of the clusterdns container",
            p.port
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

    let pods = pod_labels(deployment);
    let selector = spec.selector.clone().unwrap_or_default();
    assert!(
        !selector.is_empty() && selector.iter().all(|(k, v)| pods.get(k) == Some(v)),
        "{at}: the Service selects {selector:?}, but the clusterdns pods are labelled \
         {pods:?}: it would send them no queries"
    );
}

#[test]
fn deployment_and_budget_select_only_clusterdns_pods() {
    let m = load();
    let deployment = one(&m.deployments, "Deployment");
    let budget = one(&m.disruption_budgets, "PodDisruptionBudget");
    let pods = pod_labels(deployment);
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

    let budget_spec = budget
        .object
        .spec
        .as_ref()
        .unwrap_or_else(|| panic!("{}: the PodDisruptionBudget has no spec", budget.origin));
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

#[test]
fn container_runs_locked_down() {
    let m = load();
    let deployment = one(&m.deployments, "Deployment");
    let config = config_of(deployment);
    let at = &deployment.origin;
    let s = security(deployment);
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

    let pod = pod_spec(deployment);
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

#[test]
fn deployment_reads_its_settings_from_the_config_map() {
    let m = load();
    let deployment = one(&m.deployments, "Deployment");
    let map = one(&m.config_maps, "ConfigMap");
    let at = &map.origin;
    let text = map
        .object
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_KEY))
        .unwrap_or_else(|| panic!("{at}: the ConfigMap has no {CONFIG_KEY}"));
    let args = argv(container(deployment));
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
    let running = config_of(deployment);
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

#[test]
fn image_runs_as_the_deployments_user_and_can_bind_port_53() {
    let m = load();
    let deployment = one(&m.deployments, "Deployment");
    let config = config_of(deployment);
    let s = security(deployment);
    let text =
        std::fs::read_to_string(deploy_dir().join("Dockerfile")).expect("deploy/Dockerfile exists");
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
        container(deployment).command.is_none(),
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
