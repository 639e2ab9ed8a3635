//! Sources turn the world into `Delta`s of model objects; they know nothing about DNS.

pub mod kube;
pub mod manifests;
pub mod selector;
pub mod watch;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::{self, ConvertError, Kind, Object};

/// The model kind of an `apiVersion`/`kind` pair, if clusterdns serves it.
pub fn kind_of(api_version: &str, kind: &str) -> Option<Kind> {
    match (api_version, kind) {
        ("v1", "Namespace") => Some(Kind::Namespace),
        ("v1", "Service") => Some(Kind::Service),
        ("discovery.k8s.io/v1", "EndpointSlice") => Some(Kind::EndpointSlice),
        ("v1", "Pod") => Some(Kind::Pod),
        ("networking.k8s.io/v1", "Ingress") => Some(Kind::Ingress),
        _ => None,
    }
}

/// JSON that deserializes into a Kubernetes type, naming the field at fault on error.
trait Json {
    fn typed<T: DeserializeOwned>(self) -> Result<T, ConvertError>;
}

fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ConvertError {
    ConvertError {
        field: e.path().to_string(),
        reason: e.into_inner().to_string(),
    }
}

impl Json for Value {
    fn typed<T: DeserializeOwned>(self) -> Result<T, ConvertError> {
        serde_path_to_error::deserialize::<_, T>(self).map_err(path_error)
    }
}

impl Json for &str {
    fn typed<T: DeserializeOwned>(self) -> Result<T, ConvertError> {
        // Straight from the text; only an object that fails is read again, tracking the path
        // to name its field.
        serde_json::from_str(self).or_else(|_| {
            let mut de = serde_json::Deserializer::from_str(self);
            serde_path_to_error::deserialize::<_, T>(&mut de).map_err(path_error)
        })
    }
}

fn convert(kind: Kind, json: impl Json) -> Result<Object, ConvertError> {
    use k8s_openapi::api::{core::v1 as core, discovery::v1 as discovery, networking::v1 as net};
    Ok(match kind {
        Kind::Namespace => {
            Object::Namespace(model::from_namespace(&json.typed::<core::Namespace>()?)?)
        }
        Kind::Service => Object::Service(model::from_service(&json.typed::<core::Service>()?)?),
        Kind::EndpointSlice => Object::EndpointSlice(model::from_endpoint_slice(
            &json.typed::<discovery::EndpointSlice>()?,
        )?),
        Kind::Pod => Object::Pod(model::from_pod(&json.typed::<core::Pod>()?)?),
        Kind::Ingress => Object::Ingress(model::from_ingress(&json.typed::<net::Ingress>()?)?),
    })
}

/// Converts a JSON object of `kind` to the model, naming the field at fault on error. The
/// JSON is dropped as soon as the model object exists.
pub fn object_from_json(kind: Kind, value: Value) -> Result<Object, ConvertError> {
    convert(kind, value)
}

/// Converts the text of one JSON object of `kind` to the model, without building a tree of
/// it first; errors as `object_from_json`.
pub fn object_from_str(kind: Kind, text: &str) -> Result<Object, ConvertError> {
    convert(kind, text)
}
