//! Arbitrary bytes as a manifests file: `parse_file` gives an error or objects, never a panic;
//! every error names the file; the objects then build a zone whose names all answer. A YAML
//! file and the same documents written as JSON give the same objects and the same errors
//! (by object).
//!
//! Input: one control byte (odd: the file is `.json`, even: `.yaml`), then the file's text.

#![no_main]

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use clusterdns::cluster::{ALL_KINDS, Cluster, Delta};
use clusterdns::model::Object;
use clusterdns::source::manifests::{ManifestError, parse_file};
use clusterdns::zone::{PodsMode, Rcode, ServiceShape, Snapshot, ZoneConfig, lookup, render};
use clusterdns_fuzz::ZONE;
use hickory_proto::ProtoError;
use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, text)) = data.split_first() else {
        return;
    };
    let file = Path::new(if control & 1 == 1 {
        "fuzz/in.json"
    } else {
        "fuzz/in.yaml"
    });
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let (objects, errors) = match parse_file(file, text) {
        Ok(parsed) => parsed,
        Err(e) => {
            assert_eq!(e.file, file, "file error names the file");
            assert!(
                e.to_string().contains("fuzz/in."),
                "message names the file: {e}"
            );
            return;
        }
    };
    for e in &errors {
        assert_eq!(e.file, file, "object error names the file");
        assert!(!e.object.is_empty(), "object error names the object: {e}");
    }
    if control & 1 == 0 {
        same_as_json(text, &objects, &errors);
    }
    if objects.is_empty() {
        return;
    }
    let pods = if control & 2 == 2 {
        PodsMode::Verified
    } else {
        PodsMode::Insecure
    };
    let config = Arc::new(ZoneConfig::new(ZONE, 30, pods).expect("zone"));
    let mut cluster = Cluster::new(config, &ALL_KINDS);
    let mut deltas: Vec<Delta> = objects.into_iter().map(Delta::Upsert).collect();
    deltas.extend(ALL_KINDS.map(Delta::Synced));
    cluster.apply(deltas);
    check_zone(&cluster.snapshot());
});

/// Every Service and every PTR address of the zone answers, and renders without a panic. A
/// Service and each of its endpoint names is found by its name (each part one label on the
/// wire): data or NODATA, not NXDOMAIN, unless it is headless without addresses.
fn check_zone(snapshot: &Snapshot) {
    let origin = &snapshot.config.origin;
    for service in snapshot.services.iter() {
        let Ok(name) = name_of(&[&service.name, &service.namespace, "svc"], origin) else {
            continue;
        };
        let empty = !service.resolvable();
        for qtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::SRV,
            RecordType::ANY,
        ] {
            let answer = lookup(snapshot, &name, qtype);
            assert_ne!(answer.rcode, Rcode::Refused, "{name} {qtype} refused");
            if !empty {
                assert_eq!(answer.rcode, Rcode::NoError, "{name} {qtype}");
            }
            render(snapshot, &answer, &name);
        }
        for endpoint in service.endpoints.iter() {
            let labels = [endpoint.label_str(), &service.name, &service.namespace, "svc"];
            let Ok(name) = name_of(&labels, origin) else {
                continue;
            };
            let answer = lookup(snapshot, &name, RecordType::A);
            if !endpoint.label.starts_with(b"_")
                && service.resolvable()
                && !matches!(service.shape(), ServiceShape::ExternalName(_))
            {
                assert_eq!(answer.rcode, Rcode::NoError, "{name} A");
            }
            render(snapshot, &answer, &name);
        }
    }
    for ip in snapshot.reverse.addresses() {
        let name = reverse_name(ip);
        let answer = lookup(snapshot, &name, RecordType::PTR);
        assert_eq!(answer.rcode, Rcode::NoError, "{name} PTR");
        render(snapshot, &answer, &name);
    }
}

/// `labels` (raw bytes, one label each, as a query on the wire can carry) under `origin`.
fn name_of(labels: &[&str], origin: &Name) -> Result<Name, ProtoError> {
    let mut name = Name::from_labels(labels.iter().map(|l| l.as_bytes()))?;
    name = name.append_domain(origin)?;
    name.set_fqdn(true);
    Ok(name)
}

fn reverse_name(ip: IpAddr) -> Name {
    let text = match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for byte in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            s + "ip6.arpa."
        }
    };
    Name::from_ascii(text).expect("reverse name")
}

/// The YAML `text`, whose documents `parse_file` read as `objects` and `errors`, written as a
/// JSON stream of the same documents, reads as the same objects with errors for the same
/// objects. A first document that is an array is left out (a JSON file starting with `[`
/// is a list of items, not a stream of documents).
fn same_as_json(text: &str, objects: &[Object], errors: &[ManifestError]) {
    let mut json = String::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let Ok(value) = <serde_json::Value as serde::Deserialize>::deserialize(doc) else {
            panic!("parse_file read a YAML document this does not");
        };
        if json.is_empty() && value.is_array() {
            return;
        }
        json.push_str(&serde_json::to_string(&value).expect("a JSON value writes"));
        json.push('\n');
    }
    let file = Path::new("fuzz/in.json");
    let (json_objects, json_errors) = match parse_file(file, &json) {
        Ok(parsed) => parsed,
        Err(e) => panic!("the YAML reads, its JSON does not: {e}\n{json}"),
    };
    assert_eq!(
        format!("{objects:?}"),
        format!("{json_objects:?}"),
        "YAML and JSON objects differ for\n{json}"
    );
    let named = |errors: &[ManifestError]| -> Vec<String> {
        errors
            .iter()
            .map(|e| format!("{} {:?}", e.object, e.field))
            .collect()
    };
    assert_eq!(
        named(errors),
        named(&json_errors),
        "YAML and JSON errors differ for\n{json}"
    );
}
