use super::*;
use crate::source::selector::parse_label_selector;

#[test]
fn api_resources_are_what_k8s_openapi_names() {
    use k8s_openapi::api::{core::v1 as core, discovery::v1 as discovery, networking::v1 as net};
    let known = [
        (Kind::Namespace, ApiResource::erase::<core::Namespace>(&())),
        (Kind::Service, ApiResource::erase::<core::Service>(&())),
        (
            Kind::EndpointSlice,
            ApiResource::erase::<discovery::EndpointSlice>(&()),
        ),
        (Kind::Pod, ApiResource::erase::<core::Pod>(&())),
        (Kind::Ingress, ApiResource::erase::<net::Ingress>(&())),
        (Kind::ConfigMap, ApiResource::erase::<core::ConfigMap>(&())),
    ];
    for (kind, erased) in known {
        assert_eq!(api_resource(kind), erased, "{kind}");
    }
}

#[test]
fn ingresses_are_watched_only_for_external_zones() {
    let plain = KubeSettings::default();
    assert!(!watched_kinds(&plain).contains(&Kind::Ingress));
    let edge = KubeSettings {
        watch_timeout: Duration::from_secs(60),
        external_kinds: vec![Kind::Service, Kind::Ingress],
        ..KubeSettings::default()
    };
    assert!(
        watched_resources(&edge).contains(&("networking.k8s.io", "ingresses")),
        "{:?}",
        watched_resources(&edge)
    );
    let gateway_api = KubeSettings {
        watch_timeout: Duration::from_secs(60),
        external_kinds: vec![Kind::Service, Kind::HttpRoute],
        watch_service_imports: true,
        ..KubeSettings::default()
    };
    assert_eq!(
        watched_resources(&gateway_api)[3..],
        [
            ("gateway.networking.k8s.io", "httproutes"),
            ("gateway.networking.k8s.io", "gateways"),
            ("multicluster.x-k8s.io", "serviceimports"),
        ]
    );
    let filtered = KubeSettings {
        watch_timeout: Duration::from_secs(60),
        labels: Some(parse_label_selector("app=web").unwrap()),
        ..KubeSettings::default()
    };
    assert_eq!(
        label_selector(&filtered, Kind::Service).as_deref(),
        Some("app=web")
    );
    assert_eq!(label_selector(&filtered, Kind::EndpointSlice), None);
    assert_eq!(label_selector(&plain, Kind::Service), None);
}
