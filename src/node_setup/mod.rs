//! The node set-up of `--setup-interface`, as NodeLocal DNSCache's node-cache does it: an
//! interface holding the listen addresses, created before the listeners bind, and rules that
//! take DNS to and from those addresses out of connection tracking (NOTRACK in the raw
//! table). A keeper task puts back what something else removes; teardown at exit removes
//! both. The work is done by iproute2's `ip` and by `nft` or `iptables`/`ip6tables`, run as
//! child processes.

mod exec;
mod iptables;
mod link;
pub mod metrics;
mod nft;
mod rules;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use metrics::Metrics;
use rules::Rule;

/// How often the keeper checks the interface, its addresses and the rules, by default.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);

/// The effective capability bit of CAP_NET_ADMIN.
const CAP_NET_ADMIN: u32 = 12;

/// Which firewall program installs the rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Firewall {
    /// `nft` when it works here, else `iptables`.
    #[default]
    Auto,
    /// nftables, a table of clusterdns's own.
    Nft,
    /// `iptables` and `ip6tables`, rules carrying a comment.
    Iptables,
}

/// Why the node set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// CAP_NET_ADMIN is not in the effective set.
    #[error(
        "--setup-interface needs the NET_ADMIN capability, which this process does not have \
         (run it as root with NET_ADMIN, e.g. securityContext.capabilities.add: [NET_ADMIN])"
    )]
    NoNetAdmin,
    /// The interface name is not one Linux (or clusterdns's rule comments) accepts.
    #[error(
        "--setup-interface {0:?}: an interface name is 1 to 15 letters, digits, '-', '_' or '.'"
    )]
    BadName(String),
    /// No listen address to put on the interface.
    #[error(
        "--setup-interface needs a --listen address that is not 0.0.0.0 or ::, to put on the \
         interface"
    )]
    NoAddress,
    /// A program could not be run.
    #[error("--setup-interface: cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A command failed.
    #[error("--setup-interface: `{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on standard error (or its exit code).
        stderr: String,
    },
    /// A command printed what could not be read.
    #[error("--setup-interface: cannot read the output of `{command}`: {reason}")]
    Output {
        /// The command.
        command: String,
        /// Why.
        reason: String,
    },
    /// The interface could be created neither as a dummy link nor as a bridge.
    #[error("--setup-interface: cannot create interface {name}: {reasons}")]
    Create {
        /// The interface.
        name: String,
        /// Each kind tried and its error.
        reasons: String,
    },
    /// The interface exists and is not one clusterdns would have made.
    #[error(
        "--setup-interface {name}: the interface exists and is {what}, not a dummy link or a \
         bridge without ports; not taking it over"
    )]
    Foreign {
        /// The interface.
        name: String,
        /// What it is.
        what: String,
    },
    /// Neither nft nor iptables works.
    #[error("--setup-interface: no working firewall program: nft: {nft}; iptables: {iptables}")]
    NoFirewall {
        /// nft's error.
        nft: Box<SetupError>,
        /// iptables's error.
        iptables: Box<SetupError>,
    },
    /// Several steps of the teardown failed.
    #[error("--setup-interface: teardown: {0}")]
    Teardown(String),
}

/// What to set up.
#[derive(Clone, Debug)]
pub struct SetupSpec {
    /// The interface's name.
    pub interface: String,
    /// The listen addresses to hold and to exempt from conntrack (none unspecified).
    pub listen: Vec<SocketAddr>,
    /// Which firewall program to use.
    pub firewall: Firewall,
    /// Remove the interface and the rules at exit.
    pub teardown: bool,
}

impl SetupSpec {
    /// The set-up of `interface` for the `listen` addresses: the unspecified ones (0.0.0.0,
    /// ::) are left out, and there must be another.
    pub fn new(
        interface: &str,
        listen: &[SocketAddr],
        firewall: Firewall,
        teardown: bool,
    ) -> Result<Self, SetupError> {
        let valid = (1..=15).contains(&interface.len())
            && interface
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            return Err(SetupError::BadName(interface.to_owned()));
        }
        let mut kept: Vec<SocketAddr> = Vec::new();
        for a in listen.iter().filter(|a| !a.ip().is_unspecified()) {
            if !kept.contains(a) {
                kept.push(*a);
            }
        }
        if kept.is_empty() {
            return Err(SetupError::NoAddress);
        }
        Ok(Self {
            interface: interface.to_owned(),
            listen: kept,
            firewall,
            teardown,
        })
    }

    /// The distinct listen IPs.
    fn addrs(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        for a in &self.listen {
            if !out.contains(&a.ip()) {
                out.push(a.ip());
            }
        }
        out
    }
}

/// The firewall in use, and the name its rules go by.
#[derive(Debug)]
enum Rules {
    /// An nft table.
    Nft(String),
    /// iptables rules with this comment.
    Iptables(String),
}

/// The interface and rules installed, with what the keeper and teardown need.
#[derive(Debug)]
pub struct NodeSetup {
    spec: SetupSpec,
    rules: Vec<Rule>,
    firewall: Rules,
    /// Held while restoring or tearing down; `true` once torn down (or let go), after
    /// which the keeper restores nothing.
    stopped: tokio::sync::Mutex<bool>,
}

impl NodeSetup {
    /// Checks for NET_ADMIN, creates (or reuses) the interface with the addresses and brings
    /// it up, picks the firewall program and installs the rules.
    pub async fn install(spec: SetupSpec) -> Result<NodeSetup, SetupError> {
        if !has_net_admin() {
            return Err(SetupError::NoNetAdmin);
        }
        let name = spec.interface.as_str();
        let link = link::ensure(name, &spec.addrs()).await?;
        let (kind, addrs) = (link.kind, spec.addrs());
        if link.created {
            tracing::info!(interface = name, kind, ?addrs, "interface created");
        } else {
            tracing::info!(interface = name, kind, ?addrs, added = ?link.done, "interface reused");
        }
        let (firewall, rules) = match install_rules(&spec).await {
            Ok(r) => r,
            Err(e) => {
                if spec.teardown
                    && let Err(e) = link::remove(name).await
                {
                    tracing::warn!(interface = name, error = %e, "cannot remove the interface");
                }
                return Err(e);
            }
        };
        Ok(NodeSetup {
            spec,
            rules,
            firewall,
            stopped: tokio::sync::Mutex::new(false),
        })
    }

    /// The interface's name.
    pub fn interface(&self) -> &str {
        &self.spec.interface
    }

    /// `nft` or `iptables`: the firewall program in use.
    pub fn firewall(&self) -> &'static str {
        self.firewall.program()
    }

    /// Puts back whatever is missing: the interface, an address, its up state, a rule. What
    /// was restored, one line each; nothing once torn down.
    pub async fn restore(&self) -> Result<Vec<String>, SetupError> {
        let stopped = self.stopped.lock().await;
        if *stopped {
            return Ok(Vec::new());
        }
        let mut done = link::ensure(&self.spec.interface, &self.spec.addrs())
            .await?
            .done;
        match &self.firewall {
            Rules::Nft(table) => {
                let missing = nft::missing(table, &self.rules).await?;
                if !missing.is_empty() {
                    nft::install(table, &self.rules).await?;
                    done.extend(missing.into_iter().map(|d| format!("rule {d}")));
                }
            }
            Rules::Iptables(comment) => {
                let missing = iptables::missing(comment, &self.rules).await?;
                iptables::insert(comment, &missing).await?;
                done.extend(missing.iter().map(|r| format!("rule {}", r.describe())));
            }
        }
        Ok(done)
    }

    /// Removes the rules and the interface, whatever `teardown` says; the keeper restores
    /// nothing afterwards. Both are attempted even when one fails.
    pub async fn teardown(&self) -> Result<(), SetupError> {
        let mut stopped = self.stopped.lock().await;
        *stopped = true;
        let rules = match &self.firewall {
            Rules::Nft(table) => nft::remove(table).await,
            Rules::Iptables(comment) => {
                iptables::remove(comment, self.spec.listen.iter().any(SocketAddr::is_ipv6)).await
            }
        };
        let link = link::remove(&self.spec.interface).await;
        match (rules, link) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Err(a), Err(b)) => Err(SetupError::Teardown(format!("{a}; {b}"))),
        }
    }

    /// At exit: tears down unless `--skip-teardown`, and logs what it did. The keeper
    /// restores nothing afterwards.
    pub async fn finish(&self) {
        let name = self.interface();
        if !self.spec.teardown {
            *self.stopped.lock().await = true;
            tracing::info!(
                interface = name,
                "--skip-teardown: interface and rules left in place"
            );
            return;
        }
        match self.teardown().await {
            Ok(()) => tracing::info!(interface = name, "interface and rules removed"),
            Err(e) => tracing::error!(interface = name, error = %e, "teardown incomplete"),
        }
    }
}

impl Rules {
    /// The program's name.
    fn program(&self) -> &'static str {
        match self {
            Rules::Nft(_) => "nft",
            Rules::Iptables(_) => "iptables",
        }
    }

    /// The table's name, or the rules' comment.
    fn name(&self) -> &str {
        match self {
            Rules::Nft(n) | Rules::Iptables(n) => n,
        }
    }
}

/// Picks the firewall program and installs the rules: which, and the rules.
async fn install_rules(spec: &SetupSpec) -> Result<(Rules, Vec<Rule>), SetupError> {
    let v6 = spec.listen.iter().any(SocketAddr::is_ipv6);
    let firewall = pick(spec.firewall, &spec.interface, v6).await?;
    let rules = rules::rules(&spec.listen, matches!(firewall, Rules::Iptables(_)));
    match &firewall {
        Rules::Nft(table) => nft::install(table, &rules).await?,
        Rules::Iptables(comment) => iptables::install(comment, &rules).await?,
    }
    tracing::info!(
        firewall = firewall.program(),
        name = firewall.name(),
        rules = rules.len(),
        "conntrack bypass rules installed"
    );
    Ok((firewall, rules))
}

/// The firewall program to use: the one asked for, if it works; with `Auto`, nft if it
/// works, else iptables.
async fn pick(choice: Firewall, name: &str, v6: bool) -> Result<Rules, SetupError> {
    let nft = || async { nft::works().await.map(|()| Rules::Nft(nft::table(name))) };
    let ipt = || async {
        iptables::works(v6)
            .await
            .map(|()| Rules::Iptables(iptables::comment(name)))
    };
    match choice {
        Firewall::Nft => nft().await,
        Firewall::Iptables => ipt().await,
        Firewall::Auto => match nft().await {
            Ok(r) => Ok(r),
            Err(nft_error) => ipt().await.map_err(|e| SetupError::NoFirewall {
                nft: Box::new(nft_error),
                iptables: Box::new(e),
            }),
        },
    }
}

/// Whether CAP_NET_ADMIN is in this process's effective set (`CapEff` of
/// /proc/self/status). Where that cannot be read, `true`: the first command's error says.
fn has_net_admin() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return true;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_none_or(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// Every `every`, checks the set-up and puts back what is missing, logging it and counting it
/// in `clusterdns_node_setup_restored_total`.
pub fn spawn_keeper(
    setup: Arc<NodeSetup>,
    every: Duration,
    metrics: Arc<Metrics>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is at once: the set-up was just installed.
        tick.tick().await;
        loop {
            tick.tick().await;
            match setup.restore().await {
                Ok(done) if done.is_empty() => {}
                Ok(done) => {
                    tracing::warn!(interface = setup.interface(), restored = ?done, "node set-up restored");
                    metrics.restored.inc_by(done.len() as u64);
                }
                Err(e) => {
                    tracing::error!(interface = setup.interface(), error = %e, "node set-up check failed");
                    metrics.check_errors.inc();
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_keeps_the_specified_addresses() {
        let listen: Vec<SocketAddr> = [
            "0.0.0.0:53",
            "169.254.20.10:53",
            "169.254.20.10:53",
            "[::]:53",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let spec = SetupSpec::new("nodelocaldns", &listen, Firewall::Auto, true).unwrap();
        assert_eq!(spec.listen, [listen[1]]);
        assert!(matches!(
            SetupSpec::new(
                "nodelocaldns",
                &[listen[0], listen[3]],
                Firewall::Auto,
                true
            ),
            Err(SetupError::NoAddress)
        ));
        assert!(matches!(
            SetupSpec::new("much-too-long-name", &listen, Firewall::Auto, true),
            Err(SetupError::BadName(_))
        ));
        assert!(matches!(
            SetupSpec::new("a b", &listen, Firewall::Auto, true),
            Err(SetupError::BadName(_))
        ));
    }

    #[test]
    fn the_message_names_the_flag_and_the_capability() {
        let m = SetupError::NoNetAdmin.to_string();
        assert!(
            m.contains("--setup-interface") && m.contains("NET_ADMIN"),
            "{m}"
        );
    }
}
