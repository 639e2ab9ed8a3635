//! The fields of an EndpointSlice that DNS reads, and only those.
//!
//! An EndpointSlice is most of what the watcher reads (at 1M endpoints, nine objects in ten
//! are endpoints in slices), and k8s-openapi's type builds every field of it: per endpoint
//! the node name, the zone and four strings of its `targetRef`, all dropped by the
//! conversion a moment later. These types read what the conversion uses, typed as
//! k8s-openapi types it (so a field of the wrong type is named alike), and skip the rest
//! without building it. They read objects as k8s-openapi does: every field optional (`null`
//! reads as absent), fields they do not know skipped, a repeated key's last value kept (as a
//! JSON tree keeps it, so text and tree read the same object alike).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};

use super::{IpList, Label};

/// Declares a struct of optional fields, each read from the JSON key given, and reads it from
/// an object as described in the module's documentation.
macro_rules! fields {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$fmeta:meta])* $field:ident: $ty:ty = $key:literal,)*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: Option<$ty>,)*
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                /// A key of the object: one of the fields, or one to skip.
                #[allow(non_camel_case_types)]
                enum Key {
                    $($field,)*
                    Other,
                }

                impl<'de> serde::Deserialize<'de> for Key {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        struct Visit;
                        impl serde::de::Visitor<'_> for Visit {
                            type Value = Key;
                            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                                f.write_str("a field name")
                            }
                            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                                Ok(match v {
                                    $($key => Key::$field,)*
                                    _ => Key::Other,
                                })
                            }
                        }
                        d.deserialize_identifier(Visit)
                    }
                }

                struct Visit;
                impl<'de> serde::de::Visitor<'de> for Visit {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("an object (", stringify!($name), ")"))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        let mut out = $name::default();
                        while let Some(key) = map.next_key::<Key>()? {
                            match key {
                                $(Key::$field => out.$field = map.next_value()?,)*
                                Key::Other => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(Visit)
            }
        }
    )*};
}

fields! {
    /// A discovery.k8s.io/v1 EndpointSlice.
    pub struct Slice {
        api_version: String = "apiVersion",
        kind: String = "kind",
        metadata: Meta = "metadata",
        address_type: String = "addressType",
        endpoints: Vec<Endpoint> = "endpoints",
        ports: Vec<Port> = "ports",
    }

    /// An object's metadata: its identity, labels and annotations.
    pub struct Meta {
        name: String = "name",
        namespace: String = "namespace",
        labels: BTreeMap<String, String> = "labels",
        annotations: BTreeMap<String, String> = "annotations",
    }

    /// One endpoint of a slice.
    pub struct Endpoint {
        addresses: Addresses = "addresses",
        conditions: Conditions = "conditions",
        hostname: Label = "hostname",
        target_ref: Reference = "targetRef",
    }

    /// An endpoint's conditions.
    pub struct Conditions {
        ready: bool = "ready",
    }

    /// What an endpoint stands for (a Pod, usually).
    pub struct Reference {
        kind: Label = "kind",
        name: Label = "name",
    }

    /// A port of a slice.
    pub struct Port {
        name: String = "name",
        port: i32 = "port",
        protocol: String = "protocol",
    }
}

/// An endpoint's addresses, each parsed as it is read: an endpoint's strings are the bulk of
/// a slice, and a change of a 100-endpoint slice would otherwise build and drop a list and
/// a string for each. Typed as a list of strings, as k8s-openapi types it.
#[derive(Debug, Default)]
pub struct Addresses {
    /// The addresses that parse, in order.
    pub ips: IpList,
    /// The first that does not: its index in the list and its text, for the conversion to
    /// name.
    pub bad: Option<(usize, Box<str>)>,
}

impl Addresses {
    fn push(&mut self, ip: IpAddr) {
        self.ips = match std::mem::take(&mut self.ips) {
            IpList::Many(list) if list.is_empty() => IpList::One(ip),
            IpList::One(first) => IpList::Many(Box::new([first, ip])),
            IpList::Many(list) => {
                let mut list = list.into_vec();
                list.push(ip);
                IpList::Many(list.into_boxed_slice())
            }
        };
    }
}

impl<'de> Deserialize<'de> for Addresses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// One address: parsed, or its text when it does not parse.
        struct Address(Result<IpAddr, Box<str>>);

        impl<'de> Deserialize<'de> for Address {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                read_str(d, |v| Address(v.parse().map_err(|_| Box::from(v))))
            }
        }

        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Addresses;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Addresses, A::Error> {
                let mut out = Addresses::default();
                let mut at = 0;
                while let Some(Address(address)) = seq.next_element()? {
                    match address {
                        Ok(ip) => out.push(ip),
                        Err(text) => {
                            out.bad.get_or_insert((at, text));
                        }
                    }
                    at += 1;
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// Short strings (a hostname, a pod's name, a kind) read inline, without a heap block.
impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        read_str(d, |v| Label::from(v))
    }
}

/// Reads a string through `read`, typed as a string (anything else is named as k8s-openapi's
/// `String` names it), without building it.
fn read_str<'de, D: Deserializer<'de>, T>(
    d: D,
    read: impl FnOnce(&str) -> T,
) -> Result<T, D::Error> {
    struct Visit<F>(F);
    impl<T, F: FnOnce(&str) -> T> Visitor<'_> for Visit<F> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            Ok((self.0)(v))
        }
    }
    d.deserialize_str(Visit(read))
}

#[cfg(test)]
mod tests {
    use super::Slice;
    use crate::model::{Document, Kind};

    /// A slice with every field k8s-openapi knows, some twice, and fields of its own.
    const SLICE: &str = r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",
        "metadata":{"name":"web-abc","namespace":"shop","uid":"u","resourceVersion":"9",
            "labels":{"kubernetes.io/service-name":"web"},
            "annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2026-12-05T08:00:00Z"},
            "ownerReferences":[{"apiVersion":"v1","kind":"Service","name":"web","uid":"x"}],
            "managedFields":[{"manager":"m","operation":"Update","fieldsV1":{"f:x":{}}}]},
        "addressType":"IPv4",
        "endpoints":[
            {"addresses":["10.1.0.1"],"conditions":{"ready":true,"serving":true,"terminating":false},
             "hostname":"Db-0","nodeName":"n1","zone":"z","hints":{"forZones":[{"name":"z"}]},
             "targetRef":{"kind":"Pod","name":"db-0","namespace":"shop","uid":"p"}},
            {"addresses":["10.1.0.2","10.1.0.3"],"conditions":{"ready":false},"targetRef":null},
            {"addresses":["10.1.0.4"],"conditions":null,"hostname":null,"future":[1,{"a":null}]}
        ],
        "ports":[{"name":"http","port":80,"protocol":"TCP","appProtocol":"h2c"},{"port":null}],
        "addressType":"IPv4"}"#;

    /// The conversion reads the same model object through these fields as through
    /// k8s-openapi's type, from text and from a tree.
    #[test]
    fn reads_what_k8s_openapi_reads() {
        let typed: k8s_openapi::api::discovery::v1::EndpointSlice =
            serde_json::from_str(SLICE).unwrap();
        let tree: serde_json::Value = serde_json::from_str(SLICE).unwrap();
        let from_text = Kind::EndpointSlice.convert(Document::Text(SLICE)).unwrap();
        let from_tree = Kind::EndpointSlice.convert(Document::Tree(tree)).unwrap();
        assert_eq!(from_text, from_tree);
        // k8s-openapi's reading, put back into text and read again: nothing the model holds
        // came from a field only these types read.
        let again = serde_json::to_string(&typed).unwrap();
        let from_typed = Kind::EndpointSlice.convert(Document::Text(&again)).unwrap();
        assert_eq!(from_text, from_typed);
        let crate::model::Object::EndpointSlice(s) = from_text else {
            panic!("a slice");
        };
        assert_eq!(s.endpoints.len(), 3);
        assert_eq!(s.ports.len(), 1);
        assert_eq!(s.service.as_deref(), Some("web"));
        assert!(s.trigger_time_ms.is_some());
    }

    /// A field it reads, of the wrong type, is named as k8s-openapi's type names it; a field
    /// it skips is not checked; a repeated key keeps its last value.
    #[test]
    fn names_bad_fields_and_keeps_the_last_of_a_repeated_key() {
        let field = |text: &str| {
            Kind::EndpointSlice
                .convert(Document::Text(text))
                .unwrap_err()
                .field
        };
        let base = r#""apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"s"},"addressType":"IPv4""#;
        assert_eq!(
            field(&format!(
                r#"{{{base},"endpoints":[{{"addresses":["10.0.0.1"]}},{{"addresses":[7]}}]}}"#
            )),
            "endpoints[1].addresses[0]"
        );
        // An address that is a string but not an address: the first of them is named.
        let text = format!(
            r#"{{{base},"endpoints":[{{"addresses":["10.0.0.1"]}},{{"addresses":["10.0.0.2","ten","eleven"]}}]}}"#
        );
        let bad = Kind::EndpointSlice
            .convert(Document::Text(&text))
            .unwrap_err();
        assert_eq!(bad.field, "endpoints[1].addresses[1]");
        assert!(bad.to_string().contains("\"ten\""), "{bad}");
        // Addresses of the other family are dropped, the rest kept in order.
        let mixed = format!(
            r#"{{{base},"endpoints":[{{"addresses":["fd00::1","10.0.0.3","10.0.0.4"]}},{{"addresses":["fd00::2"]}}]}}"#
        );
        let crate::model::Object::EndpointSlice(s) =
            Kind::EndpointSlice.convert(Document::Text(&mixed)).unwrap()
        else {
            panic!("a slice");
        };
        assert_eq!(s.endpoints.len(), 1);
        let want: Vec<std::net::IpAddr> =
            vec!["10.0.0.3".parse().unwrap(), "10.0.0.4".parse().unwrap()];
        assert_eq!(
            s.endpoints.get(0).map(|e| e.addresses),
            Some(want[..].into())
        );
        assert_eq!(
            field(&format!(
                r#"{{{base},"endpoints":[{{"addresses":["10.0.0.1"],"conditions":{{"ready":"yes"}}}}]}}"#
            )),
            "endpoints[0].conditions.ready"
        );
        assert_eq!(
            field(&format!(r#"{{{base},"ports":[{{"port":"http"}}]}}"#)),
            "ports[0].port"
        );
        assert_eq!(
            field(r#"{"metadata":{"name":"s"},"kind":"Service"}"#),
            "kind"
        );
        assert_eq!(field(r#"{"metadata":[]}"#), "metadata");
        let skipped = format!(
            r#"{{{base},"endpoints":[{{"addresses":["10.0.0.1"],"nodeName":5,"zone":[]}}]}}"#
        );
        assert!(
            Kind::EndpointSlice
                .convert(Document::Text(&skipped))
                .is_ok()
        );
        let last: Slice = serde_json::from_str(
            r#"{"addressType":"FQDN","ports":[{"port":1}],"addressType":"IPv6","ports":null}"#,
        )
        .unwrap();
        assert_eq!(last.address_type.as_deref(), Some("IPv6"));
        assert!(last.ports.is_none());
    }
}
