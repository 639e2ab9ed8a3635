//! An object as the watcher receives it from the API: its JSON tree, read once, with the three
//! metadata fields the watcher itself needs (name, namespace, resourceVersion) copied out.
//!
//! kube's `DynamicObject` flattens its fields, so serde first buffers the whole object in its
//! own content tree and then builds the `serde_json::Value` from that; and the model's
//! conversion wants the metadata back inside the tree. Here the text becomes one tree, which
//! the kind's conversion reads (`Document::Tree`). Whatever the tree holds, reading it never
//! fails: an object with a field of the wrong type is rejected by the conversion, which names
//! the object and the field and keeps its last good version, rather than by the decoder,
//! which could name neither (and would fail a whole page of a paged list).

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ApiResource;
use kube::core::DynamicResourceScope;
use serde_json::Value;

/// One API object: its tree and the metadata the watcher reads.
#[derive(Clone, Debug, Default)]
pub struct ApiObject {
    /// Only `name`, `namespace` and `resourceVersion`, copied from the tree.
    pub metadata: ObjectMeta,
    /// The whole object, metadata included.
    pub tree: Value,
}

impl ApiObject {
    /// The object of `tree`.
    pub fn new(tree: Value) -> Self {
        let field = |name: &str| {
            tree.get("metadata")
                .and_then(|m| m.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let metadata = ObjectMeta {
            name: field("name"),
            namespace: field("namespace"),
            resource_version: field("resourceVersion"),
            ..ObjectMeta::default()
        };
        Self { metadata, tree }
    }
}

impl<'de> serde::Deserialize<'de> for ApiObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self::new)
    }
}

// Written only by kube's requests that send an object, which the watcher never makes.
impl serde::Serialize for ApiObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.tree.serialize(s)
    }
}

impl kube::Resource for ApiObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::ApiObject;
    use crate::model::{Document, Kind, Object};

    /// A watch event's object reads into one tree, with the watcher's metadata copied out,
    /// and converts as the manifests' trees do.
    #[test]
    fn reads_the_tree_and_the_watchers_metadata() {
        let text = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop","resourceVersion":"42","labels":{"a":"b"}},"spec":{"clusterIP":"10.96.0.20","ports":[{"name":"http","port":80}]}}"#;
        let obj: ApiObject = serde_json::from_str(text).unwrap();
        assert_eq!(obj.metadata.name.as_deref(), Some("web"));
        assert_eq!(obj.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(obj.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(obj.metadata.labels, None, "only what the watcher reads");
        let Object::Service(svc) = Kind::Service.convert(Document::Tree(obj.tree)).unwrap() else {
            panic!("a Service");
        };
        assert_eq!(svc.key.to_string(), "shop/web");
    }

    /// Fields of the wrong type do not fail the read (the conversion names them); metadata
    /// that is not an object reads as no name.
    #[test]
    fn bad_fields_are_left_to_the_conversion() {
        let text = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"},"spec":{"ports":[{"port":"eighty"}]}}"#;
        let obj: ApiObject = serde_json::from_str(text).unwrap();
        let e = Kind::Service.convert(Document::Tree(obj.tree)).unwrap_err();
        assert_eq!(e.field, "spec.ports[0].port");
        let obj: ApiObject = serde_json::from_str(r#"{"metadata":["web"],"x":1}"#).unwrap();
        assert_eq!(obj.metadata.name, None);
    }
}
