//! Sources turn the world into `Delta`s of model objects; they know nothing about DNS.

pub mod kube;
pub mod manifests;
pub mod watch;
