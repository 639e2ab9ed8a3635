//! The API objects the fault tests load into the emulator: namespace `a` and its Services
//! and EndpointSlices, as the real API server serves them.

use serde_json::{Value, json};

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

pub fn cluster_ip(name: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "a"},
           "spec": {"clusterIP": ip, "clusterIPs": [ip],
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
}

pub fn headless(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "a"},
           "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}})
}

pub fn slice(name: &str, svc: &str, ips: &[&str]) -> Value {
    let eps: Vec<Value> = (ips.iter())
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": name, "namespace": "a",
                        "labels": {"kubernetes.io/service-name": svc}},
           "addressType": "IPv4", "endpoints": eps,
           "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
}
