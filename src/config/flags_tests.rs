//! Unit tests of the flags' parsing.
use super::*;

#[test]
fn defaults_match_the_kubernetes_corefile() {
    let c = Config::try_parse_from(["clusterdns"]).unwrap();
    assert_eq!(c.ttl, 30);
    assert_eq!(c.zone, "cluster.local");
    assert_eq!(c.pods, PodsMode::Insecure);
    assert!(c.listen.is_empty(), "defaults are applied at bind time");
    assert!(Config::try_parse_from(["clusterdns", "--ttl", "3601"]).is_err());
    assert_eq!(c.upstream_timeout, Duration::from_secs(2));
    assert_eq!((c.max_fails, c.max_concurrent), (2, 1000));
    assert_eq!(
        (c.cache_size, c.cache_max_ttl, c.cache_max_negative_ttl),
        (10000, 3600, 1800)
    );
    assert_eq!(c.policy, Policy::Random);
    assert_eq!(c.node_setup_interval, crate::node_setup::CHECK_EVERY);
}

#[test]
fn every_pods_mode_has_its_flag_value() {
    for mode in [PodsMode::Disabled, PodsMode::Insecure, PodsMode::Verified] {
        // Exhaustive: a new mode fails to compile here until `PodsFlag` has it.
        let value = match mode {
            PodsMode::Disabled => "disabled",
            PodsMode::Insecure => "insecure",
            PodsMode::Verified => "verified",
        };
        let c = Config::try_parse_from(["clusterdns", "--pods", value]).unwrap();
        assert_eq!(c.pods, mode);
    }
    assert!(Config::try_parse_from(["clusterdns", "--pods", "Verified"]).is_err());
}

#[test]
fn node_local_flags() {
    let c = Config::try_parse_from(["clusterdns"]).unwrap();
    assert_eq!(c.mode, Mode::Cluster);
    assert!(c.cluster_dns.is_empty() && c.setup_interface.is_none() && !c.skip_teardown);
    assert_eq!(
        (c.cluster_cache_ttl, c.cluster_cache_negative_ttl),
        (Duration::from_secs(30), Duration::from_secs(5))
    );
    let c = Config::try_parse_from([
        "clusterdns",
        "--mode",
        "node-local",
        "--cluster-dns",
        "10.96.0.11",
        "--cluster-dns=[fd00::11]:5353",
        "--setup-interface",
        "nodelocaldns",
        "--skip-teardown",
        "--cluster-cache-ttl=10s",
        "--cluster-cache-negative-ttl=1s",
    ])
    .unwrap();
    assert_eq!(c.mode, Mode::NodeLocal);
    let shown: Vec<String> = c.cluster_dns.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["10.96.0.11:53", "[fd00::11]:5353"]);
    assert_eq!(c.setup_interface.as_deref(), Some("nodelocaldns"));
    assert!(c.skip_teardown);
    assert_eq!(c.cluster_cache_ttl, Duration::from_secs(10));
    assert!(Config::try_parse_from(["clusterdns", "--mode", "nodelocal"]).is_err());
    assert!(Config::try_parse_from(["clusterdns", "--cluster-dns", "kube-dns"]).is_err());
}

#[test]
fn policy_and_no_forward() {
    let c = Config::try_parse_from(["clusterdns", "--policy", "round_robin"]).unwrap();
    assert_eq!(c.policy, Policy::RoundRobin);
    assert!(
        Config::try_parse_from(["clusterdns", "--no-forward", "--upstream", "10.0.0.1"]).is_err()
    );
}
