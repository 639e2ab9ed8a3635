//! The default upstreams: the nameservers of the host's resolv.conf (`--resolv-conf`), as
//! CoreDNS's `forward . /etc/resolv.conf`.

use std::net::SocketAddr;
use std::path::Path;

/// The nameservers of a resolv.conf text (`nameserver ADDR` lines), port 53.
pub fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        // A scoped IPv6 address (`fe80::1%eth0`) keeps only the address.
        .filter_map(|a| a.split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The nameservers of the resolv.conf file at `path`; none (with a warning saying why) when it
/// cannot be read or names none.
pub fn read_nameservers(path: &Path) -> Vec<SocketAddr> {
    let found = match std::fs::read_to_string(path) {
        Ok(text) => nameservers(&text),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read resolv.conf: no default upstreams");
            Vec::new()
        }
    };
    if found.is_empty() {
        tracing::warn!(file = %path.display(), "no nameserver in resolv.conf: names outside the served zones are refused");
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn nameserver_lines_give_the_upstreams() {
        let text = "# comment\nsearch svc.cluster.local\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions ndots:5\nnameserver bogus\n";
        assert_eq!(
            nameservers(text),
            vec![sa("10.0.0.2:53"), sa("[fe80::1]:53")]
        );
    }
}
