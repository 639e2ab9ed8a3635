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

fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ConvertError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| ConvertError {
        field: e.path().to_string(),
        reason: e.into_inner().to_string(),
    })
}

/// Converts a JSON object of `kind` to the model, naming the field at fault on error. The
/// JSON is dropped as soon as the model object exists.
pub fn object_from_json(kind: Kind, value: Value) -> Result<Object, ConvertError> {
    use k8s_openapi::api::{core::v1 as core, discovery::v1 as discovery, networking::v1 as net};
    Ok(match kind {
        Kind::Namespace => {
            Object::Namespace(model::from_namespace(&typed::<core::Namespace>(value)?)?)
        }
        Kind::Service => Object::Service(model::from_service(&typed::<core::Service>(value)?)?),
        Kind::EndpointSlice => {
            Object::EndpointSlice(model::from_endpoint_slice(&typed::<
                discovery::EndpointSlice,
            >(value)?)?)
        }
        Kind::Pod => Object::Pod(model::from_pod(&typed::<core::Pod>(value)?)?),
        Kind::Ingress => Object::Ingress(model::from_ingress(&typed::<net::Ingress>(value)?)?),
    })
}
