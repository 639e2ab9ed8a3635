//! clusterdns: the Kubernetes cluster DNS server.
//!
//! Flow: a source (`source`) turns the cluster into deltas; `cluster` applies them and
//! publishes immutable `zone::Snapshot`s; `server` answers queries from the current snapshot and
//! hands every other name to `forward` (upstream pools behind a cache).

pub mod app;
pub mod clients;
pub mod cluster;
pub mod config;
pub mod files;
pub mod forward;
pub mod health;
pub mod heap;
pub mod hosts;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod node_setup;
pub mod parallel;
pub mod querylog;
pub mod reload;
pub mod rewrite;
pub mod server;
pub mod source;
pub mod static_zones;
pub mod wire;
pub mod zone;
