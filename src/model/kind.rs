//! The table of kinds: one row per kind of Kubernetes object clusterdns reads, naming it as
//! the API does and giving its converter.
//!
//! Everything that handles kinds reads this table instead of a list or a match of its own:
//! the manifests loader (`apiVersion` and `kind` to a kind, scope, converter), the kube
//! watcher (the `ApiResource` it lists and watches, scope, converter), RBAC
//! (`source::kube::watched_resources`, which `tests/it/deploy.rs` checks the ClusterRole
//! against), the kinds the zone waits for (`Kind::ALL`), the object counts (`Cluster::counts`,
//! the `kubernetes_objects{kind}` metric) and every `kind` in logs and metric labels.
//!
//! Adding a kind (ServiceImport, Gateway, HTTPRoute...) touches:
//! 1. **the row**, in `kinds!` below: variant, model type, apiVersion, group, version,
//!    resource, kind name, scope, converter. The `Kind` and `Object` variants come from it; a
//!    CRD kind needs no k8s-openapi type, the watcher builds its `ApiResource` from the row;
//! 2. **a converter**: the model type (`model/mod.rs`, with its two-method `Model` impl: key
//!    and namespace) and the function from the API type (k8s-openapi's, or a serde struct of
//!    the few fields DNS reads) to it (`model/convert.rs`), naming the field at fault;
//! 3. **a store**: `cluster/<resource>.rs`, its objects and indexes with their upsert and
//!    remove (a full list is one generic `reset` over them) and `Store` (count, keys); then a
//!    field of `Cluster` and its arm in `Cluster::store`, `upsert` and `remove`, which the
//!    compiler asks for;
//! 4. **the records it makes**: what its upsert and remove mark in `Touched` (Services to
//!    rebuild, or a flag of its own), and what `Cluster::publish` (`cluster/snapshot.rs`)
//!    then builds into the snapshot with `zone/`.
//!
//! Nothing else: sources, counts, metric labels and the synced check follow from the row.
//! Two choices depend on flags and are not in the row: when the kube watcher lists the kind
//! (`source::kube::watched_kinds`, for a kind only some mode needs; the ClusterRole in
//! `deploy/base/rbac.yaml` must grant what it lists, as `tests/it/deploy.rs` checks), and
//! whether `--labels` filters it (Services only). Tests of the kube source also need the kind in the API server
//! emulator's own list (`tests/it/common/apiserver.rs`), which plays the API and so does not
//! read this table.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::convert::{
    ConvertError, from_endpoint_slice, from_ingress, from_namespace, from_pod, from_service,
};
use super::crd::{from_gateway, from_route, from_service_import};
use super::{
    ConfigMap, EndpointSlice, Gateway, Ingress, Namespace, ObjectKey, Pod, Route, Service,
    ServiceImport, from_config_map,
};

/// One row of the table: how the API names a kind, and how its objects become the model.
#[derive(Debug)]
pub struct KindRow {
    /// `apiVersion`, as manifests write it: `v1`, `discovery.k8s.io/v1`.
    pub api_version: &'static str,
    /// The API group, as RBAC names it (`""`: the core group).
    pub group: &'static str,
    /// The version within the group.
    pub version: &'static str,
    /// The resource (plural, lower case), as API paths and RBAC name it.
    pub resource: &'static str,
    /// The Kubernetes kind name, as manifests, logs and the `kind` metric label spell it.
    pub name: &'static str,
    /// Whether its objects live in a namespace.
    pub namespaced: bool,
    /// The converter: an API object or manifest document to the model, naming the field at
    /// fault on error.
    pub convert: fn(Document<'_>) -> Result<Object, ConvertError>,
}

/// What the table needs of every kind's model type.
pub trait Model {
    /// Namespace and name; a cluster-scoped object has an empty namespace.
    fn object_key(&self) -> ObjectKey;
    /// The namespace `--namespaces` filters it by: its own (a Namespace: itself).
    fn namespace(&self) -> &str;
}

/// `T` read only from a JSON object. serde's derived structs also take an array, read by
/// position (`["v1", "Service"]` as apiVersion and kind), where a tree (`Value::get`) and the
/// API server see no fields at all; readers of parts of an object's text use this, so text and
/// tree read the same document alike.
#[derive(Default)]
pub struct MapOnly<T>(pub T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = MapOnly<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                map: M,
            ) -> Result<Self::Value, M::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(MapOnly)
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// An API object or manifest document, before conversion: a parsed JSON tree, or JSON text
/// (read straight into the typed struct, without a tree).
pub enum Document<'a> {
    /// A JSON tree (a YAML document, an object from the API).
    Tree(Value),
    /// The text of one JSON object.
    Text(&'a str),
}

fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ConvertError {
    ConvertError {
        field: e.path().to_string(),
        reason: e.into_inner().to_string(),
    }
}

impl Document<'_> {
    /// Deserializes into a Kubernetes type, naming the field at fault on error.
    pub fn typed<T: DeserializeOwned>(self) -> Result<T, ConvertError> {
        match self {
            // From the tree without tracking the path, which would copy out every key it
            // passes; only an object that fails is read again, tracking it.
            Document::Tree(value) => T::deserialize(&value)
                .or_else(|_| serde_path_to_error::deserialize::<_, T>(&value).map_err(path_error)),
            // Straight from the text; only an object that fails is read again, tracking the
            // path to name its field.
            Document::Text(text) => serde_json::from_str(text).or_else(|_| {
                let mut de = serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize::<_, T>(&mut de).map_err(path_error)
            }),
        }
    }
}

/// Writes the table: `Kind`, `Object` (one variant per row, in row order) and `KINDS`.
macro_rules! kinds {
    ($(
        $(#[$doc:meta])*
        $variant:ident($model:ty) {
            api_version: $api_version:literal,
            group: $group:literal,
            version: $version:literal,
            resource: $resource:literal,
            name: $name:literal,
            namespaced: $namespaced:literal,
            convert: $convert:path $(,)?
        }
    ),* $(,)?) => {
        /// The kinds of object the model knows, in table order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $($(#[$doc])* $variant,)*
        }

        /// One model object of any kind.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Object {
            $(#[doc = concat!("An object of kind `", $name, "`.")] $variant($model),)*
        }

        impl Kind {
            /// Every kind, in table order.
            pub const ALL: [Kind; [$($name),*].len()] = [$(Kind::$variant),*];
        }

        /// The table, in `Kind` order.
        static KINDS: [KindRow; Kind::ALL.len()] = [$(KindRow {
            api_version: $api_version,
            group: $group,
            version: $version,
            resource: $resource,
            name: $name,
            namespaced: $namespaced,
            convert: |doc| Ok(Object::$variant($convert(&doc.typed()?)?)),
        }),*];

        impl Object {
            /// The object's kind.
            pub fn kind(&self) -> Kind {
                match self {
                    $(Object::$variant(_) => Kind::$variant,)*
                }
            }

            /// The object's key; a Namespace has an empty namespace and its name.
            pub fn key(&self) -> ObjectKey {
                match self {
                    $(Object::$variant(o) => o.object_key(),)*
                }
            }

            /// The namespace `--namespaces` filters the object by (a Namespace: itself).
            pub fn namespace(&self) -> &str {
                match self {
                    $(Object::$variant(o) => o.namespace(),)*
                }
            }
        }
    };
}

kinds! {
    /// v1 Namespace.
    Namespace(Namespace) {
        api_version: "v1",
        group: "",
        version: "v1",
        resource: "namespaces",
        name: "Namespace",
        namespaced: false,
        convert: from_namespace,
    },
    /// v1 Service.
    Service(Service) {
        api_version: "v1",
        group: "",
        version: "v1",
        resource: "services",
        name: "Service",
        namespaced: true,
        convert: from_service,
    },
    /// discovery.k8s.io/v1 EndpointSlice.
    EndpointSlice(EndpointSlice) {
        api_version: "discovery.k8s.io/v1",
        group: "discovery.k8s.io",
        version: "v1",
        resource: "endpointslices",
        name: "EndpointSlice",
        namespaced: true,
        convert: from_endpoint_slice,
    },
    /// v1 Pod.
    Pod(Pod) {
        api_version: "v1",
        group: "",
        version: "v1",
        resource: "pods",
        name: "Pod",
        namespaced: true,
        convert: from_pod,
    },
    /// networking.k8s.io/v1 Ingress (for `--external-zone`).
    Ingress(Ingress) {
        api_version: "networking.k8s.io/v1",
        group: "networking.k8s.io",
        version: "v1",
        resource: "ingresses",
        name: "Ingress",
        namespaced: true,
        convert: from_ingress,
    },
    /// multicluster.x-k8s.io/v1alpha1 ServiceImport (for `--multicluster-zone`).
    ServiceImport(ServiceImport) {
        api_version: "multicluster.x-k8s.io/v1alpha1",
        group: "multicluster.x-k8s.io",
        version: "v1alpha1",
        resource: "serviceimports",
        name: "ServiceImport",
        namespaced: true,
        convert: from_service_import,
    },
    /// gateway.networking.k8s.io/v1 Gateway (for `--external-zone`).
    Gateway(Gateway) {
        api_version: "gateway.networking.k8s.io/v1",
        group: "gateway.networking.k8s.io",
        version: "v1",
        resource: "gateways",
        name: "Gateway",
        namespaced: true,
        convert: from_gateway,
    },
    /// gateway.networking.k8s.io/v1 HTTPRoute (for `--external-zone`).
    HttpRoute(Route) {
        api_version: "gateway.networking.k8s.io/v1",
        group: "gateway.networking.k8s.io",
        version: "v1",
        resource: "httproutes",
        name: "HTTPRoute",
        namespaced: true,
        convert: from_route,
    },
    /// gateway.networking.k8s.io/v1 GRPCRoute (for `--external-zone`).
    GrpcRoute(Route) {
        api_version: "gateway.networking.k8s.io/v1",
        group: "gateway.networking.k8s.io",
        version: "v1",
        resource: "grpcroutes",
        name: "GRPCRoute",
        namespaced: true,
        convert: from_route,
    },
    /// gateway.networking.k8s.io/v1alpha2 TLSRoute (for `--external-zone`).
    TlsRoute(Route) {
        api_version: "gateway.networking.k8s.io/v1alpha2",
        group: "gateway.networking.k8s.io",
        version: "v1alpha2",
        resource: "tlsroutes",
        name: "TLSRoute",
        namespaced: true,
        convert: from_route,
    },
    /// v1 ConfigMap (for `--hosts-configmap`).
    ConfigMap(ConfigMap) {
        api_version: "v1",
        group: "",
        version: "v1",
        resource: "configmaps",
        name: "ConfigMap",
        namespaced: true,
        convert: from_config_map,
    },
}

impl Kind {
    /// The kind's row of the table.
    pub fn row(self) -> &'static KindRow {
        &KINDS[self as usize]
    }

    /// The kind of an `apiVersion`/`kind` pair, if clusterdns serves it.
    pub fn of(api_version: &str, name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.row().name == name && k.row().api_version == api_version)
    }

    /// Converts an object of this kind to the model, naming the field at fault on error; the
    /// document is dropped as soon as the model object exists.
    pub fn convert(self, doc: Document<'_>) -> Result<Object, ConvertError> {
        (self.row().convert)(doc)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.row().name)
    }
}

#[cfg(test)]
mod tests {
    use std::any::TypeId;

    use k8s_openapi::api::{core::v1 as core, discovery::v1 as discovery, networking::v1 as net};
    use k8s_openapi::{NamespaceResourceScope, Resource};

    use super::*;

    /// apiVersion, group, version, resource, kind and scope, as a row or k8s-openapi has them.
    type Names = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        bool,
    );

    fn api<T: Resource<Scope: 'static>>() -> Names {
        let namespaced = TypeId::of::<T::Scope>() == TypeId::of::<NamespaceResourceScope>();
        let (v, g, ver, res, k) = (
            T::API_VERSION,
            T::GROUP,
            T::VERSION,
            T::URL_PATH_SEGMENT,
            T::KIND,
        );
        (v, g, ver, res, k, namespaced)
    }

    #[test]
    fn rows_name_kinds_as_the_api_does() {
        // Kinds with a k8s-openapi type (a CRD kind has none: its row is the only source).
        let known = [
            (Kind::Namespace, api::<core::Namespace>()),
            (Kind::Service, api::<core::Service>()),
            (Kind::EndpointSlice, api::<discovery::EndpointSlice>()),
            (Kind::Pod, api::<core::Pod>()),
            (Kind::Ingress, api::<net::Ingress>()),
            (Kind::ConfigMap, api::<core::ConfigMap>()),
        ];
        for (kind, names) in known {
            let r = kind.row();
            let row = (
                r.api_version,
                r.group,
                r.version,
                r.resource,
                r.name,
                r.namespaced,
            );
            assert_eq!(row, names, "{kind}");
        }
        for kind in Kind::ALL {
            let r = kind.row();
            let group_version = match r.group {
                "" => r.version.to_owned(),
                group => format!("{group}/{}", r.version),
            };
            assert_eq!(r.api_version, group_version, "{kind}");
            assert_eq!(Kind::of(r.api_version, r.name), Some(kind));
        }
        assert_eq!(Kind::of("v1", "Secret"), None);
        assert_eq!(Kind::of("v2", "Service"), None);
    }
}
