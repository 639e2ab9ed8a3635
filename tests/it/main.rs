//! The integration tests: one binary, one module per area (`cargo test --test it forward::`
//! runs one area).
//!
//! The two allocation tests, `tests/no_alloc.rs` and `tests/metrics_alloc.rs`, are binaries of
//! their own: each installs a counting `#[global_allocator]`, which is per process.

mod common;

mod abuse;
mod answer_options;
mod apiserver_emulator;
mod cli;
mod config;
mod deploy;
mod external_zone;
mod fast_path;
mod forward;
mod kube_faults;
mod kube_source;
mod label_filter;
mod lifecycle;
mod live_update;
mod manifest_faults;
mod protocol;
mod records;
mod static_zones;
mod upstream_fake;
mod xfr;
