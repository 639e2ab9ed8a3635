//! The Kubernetes API as a source: watchers on Services, EndpointSlices, Namespaces (and Pods
//! where a mode needs them), each object stripped to the model as it arrives.

use crate::config::Config;
use crate::model::Kind;
use crate::zone::PodsMode;

/// The kinds watched for `config`: Namespaces, Services and EndpointSlices always; Pods only
/// for `--pods verified`.
pub fn watched_kinds(config: &Config) -> Vec<Kind> {
    let mut kinds = vec![Kind::Namespace, Kind::Service, Kind::EndpointSlice];
    if config.pods == PodsMode::Verified {
        kinds.push(Kind::Pod);
    }
    kinds
}

/// The API group and resource of a kind, as RBAC names them.
pub fn resource_of(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Namespace => ("", "namespaces"),
        Kind::Service => ("", "services"),
        Kind::EndpointSlice => ("discovery.k8s.io", "endpointslices"),
        Kind::Pod => ("", "pods"),
    }
}

/// The (API group, resource) pairs the watcher lists and watches for `config`: exactly what
/// the ClusterRole in `deploy/` must grant `list` and `watch` on.
pub fn watched_resources(config: &Config) -> Vec<(&'static str, &'static str)> {
    watched_kinds(config).into_iter().map(resource_of).collect()
}
