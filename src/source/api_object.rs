//! An object as the watcher receives it from the API, with the three metadata fields the
//! watcher itself needs (name, namespace, resourceVersion) copied out, and its body kept for
//! the kind's conversion in one of two forms:
//!
//! - `Text`: the object's JSON text, which the conversion reads straight into the kind's type
//!   (`Document::Text`). Only serde_json's own decoder can hand out text: it does for watch
//!   events whose type comes before their object (as the API server writes them) and for the
//!   items of a page of a paged list (a field of its own, though kube's list type flattens
//!   another);
//! - `Tree`: one `serde_json::Value` (`Document::Tree`), which any decoder can build: an event
//!   whose object comes first is read through serde's buffer.
//!
//! kube's `DynamicObject` also flattens its fields, so serde buffered each object in its own
//! content tree before building a `Value` from it, and the metadata had to be written back
//! into the tree. Whatever the object holds, reading it never fails: an object with a field
//! of the wrong type is rejected by the conversion, which names the object and the field and
//! keeps its last good version, rather than by the decoder, which could name neither (and
//! would fail a whole page of a paged list).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ApiResource;
use kube::core::DynamicResourceScope;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::model::{ConvertError, Document, Kind, Object};

/// The form an object's body is kept in until its conversion.
pub trait Body: Clone + std::fmt::Debug + Send + Sync + Sized + 'static {
    /// Whether the body is the object's text (which only serde_json's decoder can give).
    const TEXT: bool;

    /// Reads the body.
    fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error>;

    /// `metadata.name`, `.namespace` and `.resourceVersion` when they are strings (no name
    /// when `metadata` is not an object).
    fn meta(&self) -> ObjectMeta;

    /// The model object of `kind`, or the field at fault.
    fn convert(self, kind: Kind) -> Result<Object, ConvertError>;
}

/// The object as its JSON text.
#[derive(Clone, Debug)]
pub struct Text(Box<RawValue>);

/// The object as one JSON tree.
#[derive(Clone, Debug, Default)]
pub struct Tree(Value);

fn meta_of(field: impl Fn(&str) -> Option<String>) -> ObjectMeta {
    ObjectMeta {
        name: field("name"),
        namespace: field("namespace"),
        resource_version: field("resourceVersion"),
        ..ObjectMeta::default()
    }
}

impl Body for Text {
    const TEXT: bool = true;

    fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <Box<RawValue> as serde::Deserialize>::deserialize(d).map(Self)
    }

    fn meta(&self) -> ObjectMeta {
        let text = self.0.get();
        let fields = if metadata_key_is_unique(text) {
            first_metadata(text)
        } else {
            whole_metadata(text)
        };
        let Some(fields) = fields else {
            return ObjectMeta::default();
        };
        meta_of(|name| serde_json::from_str(fields.get(name)?.get()).ok())
    }

    fn convert(self, kind: Kind) -> Result<Object, ConvertError> {
        kind.convert(Document::Text(self.0.get()))
    }
}

/// An object's metadata, each field still text.
type MetaFields<'a> = BTreeMap<Cow<'a, str>, &'a RawValue>;

/// Whether the text can hold at most one key `metadata`, at any depth: the quoted word appears
/// at most once and no `\u` escape could spell another. Two searches of the bytes, several
/// times faster than reading past a slice's endpoints.
fn metadata_key_is_unique(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memmem::find(bytes, b"\\u").is_none()
        && memchr::memmem::find_iter(bytes, b"\"metadata\"")
            .nth(1)
            .is_none()
}

/// The top-level `metadata` of the object, read to the object's end: a repeated key's last
/// value, as the tree keeps it; a map only, as in the tree.
fn whole_metadata(text: &str) -> Option<MetaFields<'_>> {
    read_metadata(text, false)
}

/// The top-level `metadata` of the object, the rest of the object left unread: for text with
/// no other key of that name (`metadata_key_is_unique`), where it is what `whole_metadata`
/// reads.
fn first_metadata(text: &str) -> Option<MetaFields<'_>> {
    read_metadata(text, true)
}

/// Reads the top-level object's `metadata`: the first, leaving the rest unread, or the last.
/// `None` when there is none, or it is not a map of JSON values, or the text not an object.
fn read_metadata(text: &str, first: bool) -> Option<MetaFields<'_>> {
    use serde::de::{DeserializeSeed, Error, IgnoredAny, MapAccess, Visitor};

    /// Whether a key is `metadata`, read without building it.
    struct IsMetadata(bool);
    impl<'de> serde::Deserialize<'de> for IsMetadata {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl Visitor<'_> for Visit {
                type Value = IsMetadata;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a field name")
                }
                fn visit_str<E: Error>(self, v: &str) -> Result<IsMetadata, E> {
                    Ok(IsMetadata(v == "metadata"))
                }
            }
            d.deserialize_identifier(Visit)
        }
    }

    /// The metadata's fields, borrowed from the text where they can be.
    #[derive(serde::Deserialize)]
    struct Fields<'a>(#[serde(borrow)] Option<MetaFields<'a>>);

    /// Reads the top-level object's keys into the slot: up to the first `metadata`, or all.
    struct Seek<'s, 'de> {
        slot: &'s mut Option<MetaFields<'de>>,
        first: bool,
    }
    impl<'de> DeserializeSeed<'de> for Seek<'_, 'de> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Seek<'_, 'de> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(IsMetadata(found)) = map.next_key()? {
                if !found {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                // A value that is not a map leaves none, as it does in the tree.
                *self.slot = None;
                *self.slot = map.next_value::<Fields<'de>>()?.0;
                if self.first {
                    // Stop here: the decoder reports the stop as an error, which the
                    // caller ignores; the slot holds what was read.
                    return Err(A::Error::custom("metadata read"));
                }
            }
            Ok(())
        }
    }

    let mut slot = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let read = Seek {
        slot: &mut slot,
        first,
    }
    .deserialize(&mut de);
    // A text that is not one object (serde_json's raw values always are valid JSON) has no
    // metadata: the whole reading must end cleanly; the first stops early by design.
    if !first && read.and_then(|()| de.end()).is_err() {
        return None;
    }
    slot
}

impl Body for Tree {
    const TEXT: bool = false;

    fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <Value as serde::Deserialize>::deserialize(d).map(Self)
    }

    fn meta(&self) -> ObjectMeta {
        let metadata = self.0.get("metadata");
        meta_of(|name| Some(metadata?.get(name)?.as_str()?.to_owned()))
    }

    fn convert(self, kind: Kind) -> Result<Object, ConvertError> {
        kind.convert(Document::Tree(self.0))
    }
}

/// One API object: the metadata the watcher reads, and its body.
#[derive(Clone, Debug)]
pub struct ApiObject<B> {
    /// Only `name`, `namespace` and `resourceVersion`, copied from the body.
    pub metadata: ObjectMeta,
    /// The whole object, metadata included.
    pub body: B,
}

impl<'de, B: Body> serde::Deserialize<'de> for ApiObject<B> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let body = B::read(d)?;
        Ok(Self {
            metadata: body.meta(),
            body,
        })
    }
}

impl<B: Body> kube::Resource for ApiObject<B> {
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
    use super::{ApiObject, Body, Text, Tree, first_metadata, whole_metadata};
    use crate::model::{Kind, Object};

    const SERVICE: &str = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop","resourceVersion":"42","labels":{"a":"b"}},"spec":{"clusterIP":"10.96.0.20","ports":[{"name":"http","port":80}]}}"#;

    /// Reads `text` as a watch event's object would be, with body `B`.
    fn read<B: Body>(text: &str) -> ApiObject<B> {
        serde_json::from_str(text).unwrap()
    }

    /// Both bodies copy out the watcher's metadata, and convert to the same model object.
    #[test]
    fn both_bodies_read_the_watchers_metadata_and_convert_alike() {
        let (text, tree) = (read::<Text>(SERVICE), read::<Tree>(SERVICE));
        for meta in [&text.metadata, &tree.metadata] {
            assert_eq!(meta.name.as_deref(), Some("web"));
            assert_eq!(meta.namespace.as_deref(), Some("shop"));
            assert_eq!(meta.resource_version.as_deref(), Some("42"));
            assert_eq!(meta.labels, None, "only what the watcher reads");
        }
        let a = text.body.convert(Kind::Service).unwrap();
        let b = tree.body.convert(Kind::Service).unwrap();
        assert_eq!(a, b);
        let Object::Service(svc) = a else {
            panic!("a Service");
        };
        assert_eq!(svc.key.to_string(), "shop/web");
    }

    /// A field of the wrong type does not fail the read: the conversion names it, from either
    /// body. Metadata that is not an object, or names that are not strings, read as none.
    #[test]
    fn bad_fields_are_left_to_the_conversion() {
        let bad = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"},"spec":{"ports":[{"port":"eighty"}]}}"#;
        let e = read::<Text>(bad).body.convert(Kind::Service).unwrap_err();
        assert_eq!(e.field, "spec.ports[0].port");
        let e = read::<Tree>(bad).body.convert(Kind::Service).unwrap_err();
        assert_eq!(e.field, "spec.ports[0].port");
        for odd in [
            r#"{"metadata":["web","shop"],"x":1}"#,
            r#"{"metadata":{"name":7,"namespace":null}}"#,
            r#"[{"name":"web","namespace":"shop"}]"#,
            r#"[1,2]"#,
            r#""text""#,
        ] {
            assert_eq!(read::<Text>(odd).metadata.name, None, "{odd}");
            assert_eq!(read::<Tree>(odd).metadata.name, None, "{odd}");
        }
    }

    /// Text read up to its metadata and text read whole give the same metadata, and both what
    /// the tree gives: a repeated `metadata` (plain, escaped or nested) sends the text to the
    /// whole reading, which keeps the last.
    #[test]
    fn the_metadata_read_first_is_the_metadata_read_whole() {
        for text in [
            SERVICE,
            r#"{"kind":"Service","metadata":{"name":"a","namespace":"n","resourceVersion":"1"},"spec":{"x":[1,2,{"y":null}]}}"#,
            r#"{"metadata":{"name":"a"},"metadata":{"name":"b","namespace":"n"}}"#,
            r#"{"metadata":{"name":"a"},"m\u0065tadata":{"name":"b"}}"#,
            r#"{"metadata":{"name":"a"},"spec":{"template":{"metadata":{"name":"b"}}}}"#,
            r#"{"spec":{"metadata":{"name":"b"}},"metadata":{"name":"a","resourceVersion":"9"}}"#,
            r#"{"metadata":null,"x":"metadata"}"#,
            r#"{"metadata":7}"#,
            r#"{"spec":{}}"#,
            r#"[{"metadata":{"name":"a"}}]"#,
            r#"{"metadata":{"name":"\"quoted\"","labels":{"metadata":"x"}}}"#,
        ] {
            let texts = |m: Option<super::MetaFields<'_>>| {
                m.map(|m| {
                    m.into_iter()
                        .map(|(k, v)| (k.into_owned(), v.get().to_owned()))
                        .collect::<Vec<_>>()
                })
            };
            let whole = texts(whole_metadata(text));
            let tree = read::<Tree>(text).metadata;
            let from_text = read::<Text>(text).metadata;
            assert_eq!(from_text, tree, "{text}");
            if super::metadata_key_is_unique(text) {
                assert_eq!(texts(first_metadata(text)), whole, "{text}");
            }
        }
        assert!(super::metadata_key_is_unique(SERVICE));
        assert!(!super::metadata_key_is_unique(
            r#"{"metadata":{"name":"a"},"m\u0065tadata":{"name":"b"}}"#
        ));
        let last = read::<Text>(r#"{"metadata":{"name":"a"},"metadata":{"name":"b"}}"#);
        assert_eq!(last.metadata.name.as_deref(), Some("b"));
    }

    /// Text comes only from serde_json's own decoder: through serde's buffer (a watch event
    /// whose object comes before its type) it is refused, which the watcher takes as its cue
    /// to read trees; a tree reads either way.
    #[test]
    fn text_needs_serde_jsons_decoder() {
        type Event<B> = kube::core::WatchEvent<ApiObject<B>>;
        let type_first = format!(r#"{{"type":"ADDED","object":{SERVICE}}}"#);
        let object_first = format!(r#"{{"object":{SERVICE},"type":"ADDED"}}"#);
        assert!(serde_json::from_str::<Event<Text>>(&type_first).is_ok());
        assert!(serde_json::from_str::<Event<Text>>(&object_first).is_err());
        assert!(serde_json::from_str::<Event<Tree>>(&object_first).is_ok());
    }

    /// A page of a paged list keeps its items as text, wherever its flattened type fields
    /// stand.
    #[test]
    fn a_pages_items_are_text() {
        type List = kube::core::ObjectList<ApiObject<Text>>;
        for page in [
            format!(
                r#"{{"kind":"ServiceList","apiVersion":"v1","metadata":{{"resourceVersion":"7","continue":"c"}},"items":[{SERVICE}]}}"#
            ),
            format!(
                r#"{{"items":[{SERVICE}],"metadata":{{"resourceVersion":"7","continue":"c"}},"apiVersion":"v1","kind":"ServiceList"}}"#
            ),
        ] {
            let list: List = serde_json::from_str(&page).unwrap();
            assert_eq!(list.metadata.continue_.as_deref(), Some("c"));
            let [item] = &list.items[..] else {
                panic!("one item: {page}");
            };
            assert_eq!(item.metadata.name.as_deref(), Some("web"));
            assert_eq!(item.body.0.get(), SERVICE);
        }
    }
}
