//! The interface holding the listen addresses, through iproute2's `ip`: a `dummy` link as
//! node-cache makes, or a `bridge` without ports where the kernel has no dummy driver (a
//! bridge carries local addresses just as well).

use std::net::IpAddr;

use serde_json::Value;

use super::SetupError;
use super::exec::{check, failed, run};

/// The link kinds clusterdns creates, in the order it tries them; an existing interface of
/// another kind is not taken over.
const KINDS: [&str; 2] = ["dummy", "bridge"];

/// What `ip -j` printed, parsed.
fn json(command: &str, text: &str) -> Result<Value, SetupError> {
    serde_json::from_str(text).map_err(|e| SetupError::Output {
        command: command.to_owned(),
        reason: e.to_string(),
    })
}

/// The interface as `ip -d -j link show` describes it, or `None` when there is none.
async fn show(name: &str) -> Result<Option<Value>, SetupError> {
    let args = ["-d", "-j", "link", "show", "dev", name];
    let ran = run("ip", &args, None).await?;
    if !ran.ok() {
        if ran.stderr.contains("does not exist") {
            return Ok(None);
        }
        return Err(failed("ip", &args, &ran));
    }
    let v = json("ip link show", &ran.stdout)?;
    Ok(v.as_array().and_then(|a| a.first()).cloned())
}

/// The link's kind (`dummy`, `bridge`, `veth`…; `device` for a plain one).
fn kind(link: &Value) -> String {
    link["linkinfo"]["info_kind"]
        .as_str()
        .unwrap_or("device")
        .to_owned()
}

/// Whether the link is administratively up.
fn is_up(link: &Value) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "UP"))
}

/// Refuses an existing interface clusterdns would not have made: another kind, or a bridge
/// with ports (a CNI or Docker bridge), which tearing down would take off the node.
async fn check_ours(name: &str, link: &Value) -> Result<String, SetupError> {
    let kind = kind(link);
    if !KINDS.contains(&kind.as_str()) {
        return Err(SetupError::Foreign {
            name: name.to_owned(),
            what: format!("a {kind} link"),
        });
    }
    if kind == "bridge" {
        let out = check("ip", &["-j", "link", "show", "master", name], None).await?;
        let ports = json("ip link show master", &out)?;
        if ports.as_array().is_some_and(|p| !p.is_empty()) {
            return Err(SetupError::Foreign {
                name: name.to_owned(),
                what: "a bridge with ports".to_owned(),
            });
        }
    }
    Ok(kind)
}

/// Creates the interface: a dummy link, else a bridge. Its kind.
async fn create(name: &str) -> Result<&'static str, SetupError> {
    let mut errors = Vec::new();
    for kind in KINDS {
        let args = ["link", "add", name, "type", kind];
        let ran = run("ip", &args, None).await?;
        if ran.ok() {
            return Ok(kind);
        }
        errors.push(format!("{kind}: {}", ran.stderr));
    }
    Err(SetupError::Create {
        name: name.to_owned(),
        reasons: errors.join("; "),
    })
}

/// The addresses on the interface.
async fn addresses(name: &str) -> Result<Vec<IpAddr>, SetupError> {
    let out = check("ip", &["-j", "addr", "show", "dev", name], None).await?;
    let v = json("ip addr show", &out)?;
    let infos = v
        .as_array()
        .and_then(|a| a.first())
        .and_then(|l| l["addr_info"].as_array())
        .cloned()
        .unwrap_or_default();
    Ok(infos
        .iter()
        .filter_map(|i| i["local"].as_str()?.parse().ok())
        .collect())
}

/// What `ensure` found and did.
pub struct Ensured {
    /// The link's kind: `dummy` or `bridge`.
    pub kind: String,
    /// Whether the interface was created (else reused).
    pub created: bool,
    /// What was done, one line each; nothing when all was in place.
    pub done: Vec<String>,
}

/// Makes sure the interface exists (created if need be), holds `addrs` and is up.
pub async fn ensure(name: &str, addrs: &[IpAddr]) -> Result<Ensured, SetupError> {
    let mut done = Vec::new();
    let (kind, up, created) = match show(name).await? {
        Some(link) => (check_ours(name, &link).await?, is_up(&link), false),
        None => {
            let kind = create(name).await?;
            done.push(format!("interface {name} (type {kind})"));
            (kind.to_owned(), false, true)
        }
    };
    let present = addresses(name).await?;
    for a in addrs.iter().filter(|a| !present.contains(a)) {
        let cidr = match a {
            IpAddr::V4(_) => format!("{a}/32"),
            IpAddr::V6(_) => format!("{a}/128"),
        };
        let mut args = vec!["addr", "add", cidr.as_str(), "dev", name];
        if a.is_ipv6() {
            // Usable at once: a tentative address (duplicate address detection) cannot be
            // bound.
            args.push("nodad");
        }
        check("ip", &args, None).await?;
        done.push(format!("address {a} on {name}"));
    }
    if !up {
        check("ip", &["link", "set", "dev", name, "up"], None).await?;
        done.push(format!("interface {name} up"));
    }
    Ok(Ensured {
        kind,
        created,
        done,
    })
}

/// Deletes the interface (and with it its addresses); nothing when it is already gone.
pub async fn remove(name: &str) -> Result<(), SetupError> {
    if show(name).await?.is_some() {
        check("ip", &["link", "del", "dev", name], None).await?;
    }
    Ok(())
}
