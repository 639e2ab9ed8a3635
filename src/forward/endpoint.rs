//! Where an upstream listens and how it is spoken to: `ADDR[:PORT]` (UDP, TCP when a reply is
//! truncated), `tcp://ADDR[:PORT]` (always TCP, over persistent connections), or
//! `tls://ADDR[:PORT]#SERVER_NAME` (DNS over TLS, RFC 7858; port 853 by default, the
//! certificate verified against SERVER_NAME). One syntax for `--upstream`, `--stub-domain`,
//! `--cluster-dns` and the config file; `Display` writes it back the same way.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// How queries reach an upstream.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP, the same query over a new TCP connection when the reply is truncated.
    Udp,
    /// TCP only, over persistent pipelined connections.
    Tcp,
    /// TLS over TCP, persistent and pipelined; the certificate must name `server_name`.
    Tls {
        /// The name the server's certificate is verified against (and sent as SNI).
        server_name: String,
    },
}

/// One upstream: its address and transport.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How it is spoken to.
    pub transport: Transport,
}

impl Endpoint {
    /// A plain UDP upstream (TCP on truncation).
    pub fn udp(addr: SocketAddr) -> Self {
        Self {
            addr,
            transport: Transport::Udp,
        }
    }

    /// The same upstream over TCP when it was given as plain UDP; other transports unchanged.
    /// (`--cluster-dns` speaks TCP to the central tier however it is written.)
    #[must_use]
    pub fn force_stream(self) -> Self {
        match self.transport {
            Transport::Udp => Self {
                addr: self.addr,
                transport: Transport::Tcp,
            },
            _ => self,
        }
    }

    /// Whether it is spoken to over persistent connections (TCP or TLS).
    pub fn is_stream(&self) -> bool {
        !matches!(self.transport, Transport::Udp)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.transport {
            Transport::Udp => write!(f, "{}", self.addr),
            Transport::Tcp => write!(f, "tcp://{}", self.addr),
            Transport::Tls { server_name } => write!(f, "tls://{}#{server_name}", self.addr),
        }
    }
}

/// Why an upstream's text was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The address part is not an IP address with an optional port.
    #[error(
        "{0:?} is not an address (e.g. 10.0.0.2, 10.0.0.2:53, [fd00::2]:53, tcp://10.0.0.2, \
         tls://10.0.0.2#dns.example)"
    )]
    Address(String),
    /// A scheme other than `tcp://` or `tls://`.
    #[error("{0:?}: unknown scheme (plain ADDR for UDP, tcp:// or tls://)")]
    Scheme(String),
    /// `tls://` without `#SERVER_NAME`, or with an invalid one.
    #[error("{0:?}: tls:// needs #SERVER_NAME, the name on the server's certificate")]
    ServerName(String),
    /// `#SERVER_NAME` on a transport without certificates.
    #[error("{0:?}: #SERVER_NAME is only for tls:// upstreams")]
    NameWithoutTls(String),
}

/// Parses `ADDR`, `ADDR:PORT`, `[V6]:PORT` or a bare IPv6 address, with `default_port`.
fn parse_addr(t: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Some(sa);
    }
    t.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, default_port))
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let t = text.trim();
        let (scheme, rest) = match t.split_once("://") {
            Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
            None => (None, t),
        };
        let (addr, name) = match rest.split_once('#') {
            Some((a, n)) => (a, Some(n)),
            None => (rest, None),
        };
        let bad = || EndpointError::Address(text.to_owned());
        let transport = match scheme.as_deref() {
            None | Some("udp" | "dns") => Transport::Udp,
            Some("tcp") => Transport::Tcp,
            Some("tls") => {
                let server_name = name
                    .filter(|n| rustls_pki_types::ServerName::try_from(*n).is_ok())
                    .ok_or_else(|| EndpointError::ServerName(text.to_owned()))?;
                Transport::Tls {
                    server_name: server_name.to_owned(),
                }
            }
            Some(_) => return Err(EndpointError::Scheme(text.to_owned())),
        };
        if name.is_some() && !matches!(transport, Transport::Tls { .. }) {
            return Err(EndpointError::NameWithoutTls(text.to_owned()));
        }
        let port = if matches!(transport, Transport::Tls { .. }) {
            853
        } else {
            53
        };
        let addr = parse_addr(addr, port).ok_or_else(bad)?;
        Ok(Self { addr, transport })
    }
}

/// Parses an upstream for clap and the config file: [`Endpoint::from_str`] with its message.
pub fn parse_endpoint(text: &str) -> Result<Endpoint, String> {
    text.parse().map_err(|e: EndpointError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_form_parses_and_prints_back() {
        let cases = [
            ("10.0.0.2", Endpoint::udp(sa("10.0.0.2:53")), "10.0.0.2:53"),
            (
                "10.0.0.2:5353",
                Endpoint::udp(sa("10.0.0.2:5353")),
                "10.0.0.2:5353",
            ),
            ("fd00::2", Endpoint::udp(sa("[fd00::2]:53")), "[fd00::2]:53"),
            (
                "tcp://10.0.0.2",
                Endpoint {
                    addr: sa("10.0.0.2:53"),
                    transport: Transport::Tcp,
                },
                "tcp://10.0.0.2:53",
            ),
            (
                "tcp://[fd00::2]:54",
                Endpoint {
                    addr: sa("[fd00::2]:54"),
                    transport: Transport::Tcp,
                },
                "tcp://[fd00::2]:54",
            ),
            (
                "tls://1.1.1.1#one.one.one.one",
                Endpoint {
                    addr: sa("1.1.1.1:853"),
                    transport: Transport::Tls {
                        server_name: "one.one.one.one".into(),
                    },
                },
                "tls://1.1.1.1:853#one.one.one.one",
            ),
            (
                "TLS://127.0.0.1:8853#dns.test",
                Endpoint {
                    addr: sa("127.0.0.1:8853"),
                    transport: Transport::Tls {
                        server_name: "dns.test".into(),
                    },
                },
                "tls://127.0.0.1:8853#dns.test",
            ),
        ];
        for (text, want, shown) in cases {
            let got: Endpoint = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), shown, "{text}");
            assert_eq!(
                shown.parse::<Endpoint>().unwrap(),
                want,
                "{shown} round trip"
            );
        }
    }

    #[test]
    fn bad_forms_say_what_is_wrong() {
        let err = |t: &str| t.parse::<Endpoint>().unwrap_err();
        assert!(matches!(err("dns.example"), EndpointError::Address(_)));
        assert!(matches!(
            err("tcp://dns.example"),
            EndpointError::Address(_)
        ));
        assert!(matches!(err("https://10.0.0.2"), EndpointError::Scheme(_)));
        assert!(matches!(
            err("tls://10.0.0.2"),
            EndpointError::ServerName(_)
        ));
        assert!(matches!(
            err("tls://10.0.0.2#"),
            EndpointError::ServerName(_)
        ));
        assert!(matches!(
            err("tcp://10.0.0.2#x"),
            EndpointError::NameWithoutTls(_)
        ));
        assert!(
            parse_endpoint("tls://10.0.0.2")
                .unwrap_err()
                .contains("SERVER_NAME")
        );
    }

    #[test]
    fn cluster_dns_is_forced_onto_tcp() {
        let e: Endpoint = "10.0.0.2".parse().unwrap();
        assert_eq!(e.force_stream().transport, Transport::Tcp);
        let t: Endpoint = "tls://10.0.0.2#x.test".parse().unwrap();
        assert_eq!(t.clone().force_stream(), t);
    }
}
