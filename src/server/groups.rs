//! Listener groups: the sockets of one configured listen address (`None`: the default pair
//! `0.0.0.0:53` and `[::]:53`), bound together, served together, and replaced together when
//! a reload changes `listen` (new addresses bound first, then the ones no longer listed stop
//! taking queries and answer those in flight).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::metrics::Metrics;
use super::{BindError, DnsHandler, Listeners, Serving, TcpLimits};

/// The listeners of one configured address (`None`: the default addresses).
pub struct Group {
    /// The configured address; `None` for the default pair.
    pub addr: Option<SocketAddr>,
    /// The serving listeners.
    pub serving: Serving,
    /// Bound UDP addresses.
    pub udp: Vec<SocketAddr>,
    /// Bound TCP addresses.
    pub tcp: Vec<SocketAddr>,
}

/// Binds the listeners of `addrs` (the defaults when empty), skipping those `keep` already
/// has: one group per configured address.
pub fn bind_groups(
    addrs: &[SocketAddr],
    keep: &[Option<SocketAddr>],
) -> Result<Vec<(Option<SocketAddr>, Listeners)>, BindError> {
    let wanted: Vec<Option<SocketAddr>> = if addrs.is_empty() {
        vec![None]
    } else {
        addrs.iter().copied().map(Some).collect()
    };
    let mut out = Vec::new();
    for a in wanted {
        if keep.contains(&a) || out.iter().any(|(b, _)| *b == a) {
            continue;
        }
        let listeners = match a {
            Some(addr) => super::bind(&[addr])?,
            None => super::bind(&[])?,
        };
        out.push((a, listeners));
    }
    Ok(out)
}

/// Serves each bound group with `handler`.
pub fn serve_groups(
    bound: Vec<(Option<SocketAddr>, Listeners)>,
    handler: &DnsHandler,
    limits: TcpLimits,
    metrics: &Arc<Metrics>,
) -> Vec<Group> {
    bound
        .into_iter()
        .map(|(addr, l)| {
            let (udp, tcp) = (l.udp_addrs(), l.tcp_addrs());
            let serving = l.serve(handler.clone(), limits, Arc::clone(metrics));
            Group {
                addr,
                serving,
                udp,
                tcp,
            }
        })
        .collect()
}

/// The configured addresses `listen` stands for: the default pair when empty.
pub fn wanted(listen: &[SocketAddr]) -> Vec<Option<SocketAddr>> {
    if listen.is_empty() {
        vec![None]
    } else {
        listen.iter().copied().map(Some).collect()
    }
}

/// Replaces `groups` by those still in `listen` plus `fresh`; the others stop taking queries
/// and answer those in flight within `grace`, in the background.
pub fn regroup(groups: &mut Vec<Group>, fresh: Vec<Group>, listen: &[SocketAddr], grace: Duration) {
    let wanted = wanted(listen);
    let (kept, gone): (Vec<Group>, Vec<Group>) = std::mem::take(groups)
        .into_iter()
        .partition(|g| wanted.contains(&g.addr));
    let added: Vec<SocketAddr> = fresh.iter().flat_map(|g| g.udp.clone()).collect();
    let removed: Vec<SocketAddr> = gone.iter().flat_map(|g| g.udp.clone()).collect();
    tracing::info!(?added, ?removed, "listen addresses changed");
    *groups = kept;
    groups.extend(fresh);
    tokio::spawn(async move {
        for g in gone {
            g.serving.shutdown(grace).await;
        }
    });
}
