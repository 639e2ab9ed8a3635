//! ConfigMaps, read for one key (`--hosts-configmap NAMESPACE/NAME:KEY`, k3s's
//! `kube-system/coredns:NodeHosts`): the model keeps the object's `data`, which the cluster's
//! store turns into host entries.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;

use super::convert::{ConvertError, key};
use super::{Model, ObjectKey};

/// A v1 ConfigMap, reduced to its `data`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConfigMap {
    /// Namespace and name.
    pub key: ObjectKey,
    /// `data`, by key.
    pub data: BTreeMap<Box<str>, Box<str>>,
}

impl Model for ConfigMap {
    fn object_key(&self) -> ObjectKey {
        self.key.clone()
    }

    fn namespace(&self) -> &str {
        &self.key.namespace
    }
}

/// Converts a v1 ConfigMap (`binaryData` is not read).
pub fn from_config_map(cm: &core::ConfigMap) -> Result<ConfigMap, ConvertError> {
    Ok(ConfigMap {
        key: key(&cm.metadata)?,
        data: cm
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
            .collect(),
    })
}

/// One key of one ConfigMap: `NAMESPACE/NAME:KEY`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConfigMapKey {
    /// The ConfigMap's namespace and name.
    pub object: ObjectKey,
    /// The key in its `data`.
    pub key: String,
}

impl std::fmt::Display for ConfigMapKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}:{}",
            self.object.namespace, self.object.name, self.key
        )
    }
}

/// Parses `NAMESPACE/NAME:KEY`.
pub fn parse_configmap_key(text: &str) -> Result<ConfigMapKey, String> {
    let bad =
        || format!("{text:?}: expected NAMESPACE/NAME:KEY (e.g. kube-system/coredns:NodeHosts)");
    let (object, key) = text.split_once(':').ok_or_else(bad)?;
    let (namespace, name) = object.split_once('/').ok_or_else(bad)?;
    if [namespace, name, key]
        .iter()
        .any(|s| s.is_empty() || s.contains(['/', ':']))
    {
        return Err(bad());
    }
    Ok(ConfigMapKey {
        object: ObjectKey::new(namespace, name),
        key: key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let k = parse_configmap_key("kube-system/coredns:NodeHosts").unwrap();
        assert_eq!(k.to_string(), "kube-system/coredns:NodeHosts");
        for bad in [
            "coredns:NodeHosts",
            "kube-system/coredns",
            "a/b:",
            "/b:c",
            "a/b/c:d",
        ] {
            assert!(parse_configmap_key(bad).is_err(), "{bad}");
        }
    }
}
