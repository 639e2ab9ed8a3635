//! `load` and `apply`: the manifests loader and the cluster's update path, timed in process.
//!
//! `load` reads a manifests directory as `clusterdns --manifests` does and prints how long
//! parsing and publishing took and the process's RSS; `apply` then changes one EndpointSlice
//! at a time and prints the latency of each change (apply and publish of a new snapshot).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clusterdns::cluster::{ALL_KINDS, Cluster, Delta};
use clusterdns::model::{EndpointSlice, IpList, Object};
use clusterdns::source::manifests::ManifestSource;
use clusterdns::zone::{PodsMode, ZoneConfig};

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A cluster loaded from `dir`, and up to `keep` of its EndpointSlices.
fn load_cluster(dir: &Path, keep: usize) -> anyhow::Result<(Cluster, Vec<EndpointSlice>)> {
    let config = Arc::new(
        ZoneConfig::new("cluster.local", 30, PodsMode::Disabled).map_err(anyhow::Error::msg)?,
    );
    let mut cluster = Cluster::new(config, &ALL_KINDS);
    let mut source = ManifestSource::new(dir);
    let start = Instant::now();
    let scan = source
        .scan(true)
        .with_context(|| format!("cannot read {}", dir.display()))?;
    let parsed = start.elapsed();
    if let Some(e) = scan.errors.first() {
        anyhow::bail!("{} manifest errors, the first: {e}", scan.errors.len());
    }
    let slices: Vec<EndpointSlice> = scan
        .deltas
        .iter()
        .filter_map(|d| match d {
            Delta::Upsert(Object::EndpointSlice(s)) if !s.endpoints.is_empty() => Some(s.clone()),
            _ => None,
        })
        .take(keep)
        .collect();
    let objects = scan.deltas.len();
    let mut deltas = scan.deltas;
    deltas.extend(ALL_KINDS.map(Delta::Synced));
    let applied = Instant::now();
    let snapshot = cluster
        .apply(deltas)
        .context("the first apply published no snapshot")?;
    let published = applied.elapsed();
    let (rss, hwm) = rss_mib();
    println!(
        "objects={objects} services={} reverse={} parse_s={:.2} publish_s={:.2} total_s={:.2} rss_mib={rss:.1} peak_mib={hwm:.1}",
        snapshot.services.len(),
        snapshot.reverse.len(),
        parsed.as_secs_f64(),
        published.as_secs_f64(),
        start.elapsed().as_secs_f64(),
    );
    Ok((cluster, slices))
}

/// `load DIR`.
pub fn load(dir: &Path) -> anyhow::Result<()> {
    load_cluster(dir, 0).map(drop)
}

/// `apply DIR --changes N`: N single-slice changes, each moving one endpoint to a new
/// address and back on the next visit, round robin over the cluster's slices.
pub fn apply(dir: &Path, changes: usize) -> anyhow::Result<()> {
    let (mut cluster, mut slices) = load_cluster(dir, 1000)?;
    anyhow::ensure!(!slices.is_empty(), "{} has no EndpointSlice", dir.display());
    let mut times: Vec<Duration> = Vec::with_capacity(changes);
    for n in 0..changes {
        let k = n % slices.len();
        let slice = &mut slices[k];
        let mut endpoints = slice.endpoints.to_vec();
        let first = &mut endpoints[0];
        let ip = match first.addresses.first() {
            // Flip a bit of the address: 0.0.0.128 is outside the generated pod addresses'
            // pattern, and flipping it again restores the original.
            Some(IpAddr::V4(v4)) => IpAddr::V4(Ipv4Addr::from(v4.to_bits() ^ 0x8000_0000)),
            Some(IpAddr::V6(v6)) => IpAddr::V6((v6.to_bits() ^ 1).into()),
            None => continue,
        };
        first.addresses = IpList::One(ip);
        slice.endpoints = endpoints.into();
        let delta = Delta::Upsert(Object::EndpointSlice(slice.clone()));
        let start = Instant::now();
        let published = cluster.apply([delta]);
        let took = start.elapsed();
        anyhow::ensure!(published.is_some(), "change {n} published no snapshot");
        drop(published);
        times.push(took);
    }
    times.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = times.iter().map(|d| us(*d)).sum::<f64>() / times.len().max(1) as f64;
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| us(*d))
    };
    println!(
        "changes={} mean_us={mean:.1} p50_us={:.1} p99_us={:.1} max_us={:.1}",
        times.len(),
        pct(0.5),
        pct(0.99),
        times.last().map_or(f64::NAN, |d| us(*d)),
    );
    Ok(())
}
