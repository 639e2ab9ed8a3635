//! The integration tests: one binary, one module per area (`cargo test --test it forward::`
//! runs one area).
//!
//! They share one process and libtest runs them on parallel threads, so none may change
//! process-wide state that another one reads:
//! - no test sets an environment variable or the current directory, or installs a `tracing`
//!   subscriber (`clusterdns::logging::init`): what needs them runs the binary (`cli`), whose
//!   environment and output are its own;
//! - the query log's sampling (`clusterdns::querylog`) is process-wide, and every in-process
//!   server sets it when it starts or reloads: the query log is tested on the binary (`cli`);
//! - child processes are spawned through `common::process::SpawnGated`, and a test that binds
//!   a port this process has just closed calls `common::process::closed_for_good` first (a
//!   child holds every descriptor of this process until it execs);
//! - servers, upstreams and the API server emulator listen on ports the system picks; a
//!   server's UDP sockets use SO_REUSEPORT, and Linux may give such a port-0 bind a port that
//!   SO_REUSEPORT sockets of the same user still hold, so every server must close its sockets
//!   when its test ends: `shutdown`, or dropping it (`lifecycle` checks that both do).
//!
//! The two allocation tests, `tests/no_alloc.rs` and `tests/metrics_alloc.rs`, are binaries of
//! their own: each installs a counting `#[global_allocator]`, which is per process.
// Tests unwrap, expect and panic: a failed assumption is the test failing.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

mod common;

mod abuse;
mod answer_options;
mod apiserver_emulator;
mod cli;
mod client_limit;
mod clients;
mod config;
mod deploy;
mod expected;
mod external_zone;
mod fast_path;
mod forward;
mod gateway_api;
mod hosts;
mod kube_auth;
mod kube_faults;
mod kube_incluster;
mod kube_refused;
mod kube_source;
mod kube_tls;
mod label_filter;
mod lifecycle;
mod live_update;
mod manifest_faults;
mod multicluster;
mod node_local;
mod node_setup;
mod protocol;
mod records;
mod rewrite;
mod serving;
mod static_zones;
mod upstream_fake;
mod upstream_reply;
mod upstream_transport;
mod xfr;
