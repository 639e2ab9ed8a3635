//! Value parsers: the text of a flag or file key (durations, addresses, stub domains,
//! networks, fractions) and the nameservers of a resolv.conf, each with an error naming the
//! value and an example.

use std::time::Duration;

use crate::forward::Endpoint;

/// Parses a fraction in (0, 1].
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!("{text:?} is not a fraction in (0, 1] (e.g. 0.01)")),
    }
}

/// A domain sent to its own upstreams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubDomain {
    /// The domain, as given.
    pub domain: String,
    /// Its upstreams.
    pub upstreams: Vec<Endpoint>,
}

/// Parses an upstream: `ADDR[:PORT]` (UDP; port 53 by default), `tcp://ADDR[:PORT]`, or
/// `tls://ADDR[:PORT]#SERVER_NAME` (port 853 by default); see [`crate::forward::endpoint`].
pub fn parse_upstream(text: &str) -> Result<Endpoint, String> {
    crate::forward::parse_endpoint(text)
}

/// Parses `DOMAIN=UPSTREAM[,UPSTREAM...]`, each upstream as [`parse_upstream`].
pub fn parse_stub_domain(text: &str) -> Result<StubDomain, String> {
    let (domain, addrs) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected DOMAIN=ADDR[:PORT][,ADDR...]"))?;
    let domain = domain.trim().trim_end_matches('.');
    if domain.is_empty() {
        return Err(format!("{text:?}: the domain is empty"));
    }
    hickory_proto::rr::Name::from_ascii(domain).map_err(|e| format!("{text:?}: domain: {e}"))?;
    let upstreams = addrs
        .split(',')
        .map(parse_upstream)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{text:?}: {e}"))?;
    Ok(StubDomain {
        domain: domain.to_owned(),
        upstreams,
    })
}

/// The kinds whose names the external zones serve (`--external-resources`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalKinds(pub Vec<crate::model::Kind>);

/// The kinds `--external-resources` may name.
pub const EXTERNAL_KINDS: [crate::model::Kind; 6] = {
    use crate::model::Kind;
    [
        Kind::Service,
        Kind::Ingress,
        Kind::Gateway,
        Kind::HttpRoute,
        Kind::GrpcRoute,
        Kind::TlsRoute,
    ]
};

/// Parses a comma-separated list of kind names (`Service,Ingress,HTTPRoute`), any case.
pub fn parse_external_resources(text: &str) -> Result<ExternalKinds, String> {
    let mut kinds = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let kind = EXTERNAL_KINDS
            .into_iter()
            .find(|k| k.row().name.eq_ignore_ascii_case(word))
            .ok_or_else(|| {
                let names: Vec<&str> = EXTERNAL_KINDS.iter().map(|k| k.row().name).collect();
                format!("{word:?} is not one of {}", names.join(", "))
            })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(ExternalKinds(kinds))
}

/// Parses a CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address (a /32 or /128).
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let t = text.trim();
    t.parse::<ipnet::IpNet>()
        .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("{text:?} is not a network (e.g. 10.0.0.0/8, 10.0.0.5, fd00::/8)"))
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((t, "s"), |i| t.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn upstreams_and_stub_domains() {
        let sa = |s: &str| Endpoint::udp(s.parse().unwrap());
        assert_eq!(parse_upstream("10.0.0.2"), Ok(sa("10.0.0.2:53")));
        assert_eq!(parse_upstream("10.0.0.2:5353"), Ok(sa("10.0.0.2:5353")));
        assert_eq!(parse_upstream("fd00::2"), Ok(sa("[fd00::2]:53")));
        assert_eq!(parse_upstream("[fd00::2]:54"), Ok(sa("[fd00::2]:54")));
        assert!(parse_upstream("dns.example").is_err());
        assert_eq!(
            parse_stub_domain("corp.example=10.0.0.9,10.0.0.10:5353"),
            Ok(StubDomain {
                domain: "corp.example".into(),
                upstreams: vec![sa("10.0.0.9:53"), sa("10.0.0.10:5353")],
            })
        );
        let tls = parse_stub_domain("corp.example=tls://10.0.0.9#dns.corp.example").unwrap();
        assert_eq!(
            tls.upstreams[0].to_string(),
            "tls://10.0.0.9:853#dns.corp.example"
        );
        assert!(parse_stub_domain("corp.example").is_err());
        assert!(parse_stub_domain("=10.0.0.1").is_err());
        assert!(parse_stub_domain("corp.example=nope").is_err());
    }
}
