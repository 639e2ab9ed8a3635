//! The manifests source's deltas: only changed objects, last good versions kept, and an
//! object defined in two files.

use std::path::Path;

use super::ManifestSource;
use crate::model::{Object, ServiceKind};
use crate::source::Delta;

fn service(name: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  clusterIP: {ip}\n  ports:\n  - name: http\n    port: 80\n"
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// The deltas of a forced scan as short text: `+name=ip` for an upsert, `-name` for a removal.
fn scan(source: &mut ManifestSource) -> (Vec<String>, usize) {
    let scan = source.scan(true).unwrap();
    let mut out: Vec<String> = scan
        .deltas
        .iter()
        .map(|d| match d {
            Delta::Upsert(Object::Service(s)) => match &s.kind {
                ServiceKind::ClusterIp(ips) => format!("+{}={}", s.key.name, ips[0]),
                other => format!("+{}={other:?}", s.key.name),
            },
            Delta::Upsert(o) => format!("+{}", o.key()),
            Delta::Remove(kind, key) => format!("-{kind} {}", key.name),
            other => format!("{other:?}"),
        })
        .collect();
    out.sort();
    (out, scan.errors.len())
}

#[test]
fn only_changed_objects_become_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let both = format!(
        "{}---\n{}",
        service("a", "10.0.0.1"),
        service("b", "10.0.0.2")
    );
    write(dir.path(), "s.yaml", &both);
    let mut source = ManifestSource::new(dir.path());
    assert_eq!(
        scan(&mut source),
        (vec!["+a=10.0.0.1".into(), "+b=10.0.0.2".into()], 0)
    );
    assert_eq!(scan(&mut source), (vec![], 0), "unchanged");

    let changed = format!(
        "{}---\n{}",
        service("a", "10.0.0.1"),
        service("b", "10.0.0.3")
    );
    write(dir.path(), "s.yaml", &changed);
    assert_eq!(scan(&mut source), (vec!["+b=10.0.0.3".into()], 0));

    write(dir.path(), "s.yaml", &service("b", "10.0.0.3"));
    assert_eq!(scan(&mut source), (vec!["-Service a".into()], 0));

    std::fs::remove_file(dir.path().join("s.yaml")).unwrap();
    assert_eq!(scan(&mut source), (vec!["-Service b".into()], 0));
}

#[test]
fn broken_objects_and_files_keep_their_last_good_version() {
    let dir = tempfile::tempdir().unwrap();
    let both = format!(
        "{}---\n{}",
        service("a", "10.0.0.1"),
        service("b", "10.0.0.2")
    );
    write(dir.path(), "s.yaml", &both);
    let mut source = ManifestSource::new(dir.path());
    scan(&mut source);

    // A bad field: that object sends nothing, the other one its change.
    let bad = format!("{}---\n{}", service("a", "nope"), service("b", "10.0.0.9"));
    write(dir.path(), "s.yaml", &bad);
    assert_eq!(scan(&mut source), (vec!["+b=10.0.0.9".into()], 1));

    // Unparsable YAML: nothing changes, and the file is not read again until it changes.
    write(dir.path(), "s.yaml", "kind: Service\nmetadata: {name: a\n");
    assert_eq!(scan(&mut source), (vec![], 1));
    assert_eq!(scan(&mut source), (vec![], 0));

    // Back to the first content: `b` returns to its old address; `a` never changed.
    write(dir.path(), "s.yaml", &both);
    assert_eq!(scan(&mut source), (vec!["+b=10.0.0.2".into()], 0));

    // A broken object that was removed from the file before is not there: only the error.
    let bad = format!("{}---\n{}", service("b", "10.0.0.2"), service("c", "nope"));
    write(dir.path(), "s.yaml", &bad);
    assert_eq!(scan(&mut source), (vec!["-Service a".into()], 1));
}

#[test]
fn an_object_in_two_files_falls_back_to_the_other() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1.yaml", &service("a", "10.0.0.1"));
    write(dir.path(), "2.yaml", &service("a", "10.0.0.2"));
    let mut source = ManifestSource::new(dir.path());
    // Files are read in order: the later one wins.
    assert_eq!(
        scan(&mut source),
        (vec!["+a=10.0.0.1".into(), "+a=10.0.0.2".into()], 0)
    );

    // The winning file drops it: the other file's version takes over.
    write(dir.path(), "2.yaml", &service("z", "10.0.0.26"));
    assert_eq!(
        scan(&mut source),
        (vec!["+a=10.0.0.1".into(), "+z=10.0.0.26".into()], 0)
    );

    // The file in effect changes it.
    write(dir.path(), "1.yaml", &service("a", "10.0.0.3"));
    assert_eq!(scan(&mut source), (vec!["+a=10.0.0.3".into()], 0));

    // Gone from both.
    std::fs::remove_file(dir.path().join("1.yaml")).unwrap();
    assert_eq!(scan(&mut source), (vec!["-Service a".into()], 0));
}

#[test]
fn lists_and_other_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {{name: shop}}\n- apiVersion: v1\n  kind: Secret\n  metadata: {{name: x}}\n---\n---\n{}",
        service("a", "10.0.0.1")
    );
    write(dir.path(), "l.yaml", &list);
    write(
        dir.path(),
        "n.json",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"data"}}"#,
    );
    write(dir.path(), "bad.json", "{");
    let mut source = ManifestSource::new(dir.path());
    let (deltas, errors) = scan(&mut source);
    assert_eq!(deltas, vec!["+/data", "+/shop", "+a=10.0.0.1"]);
    assert_eq!(errors, 1);
    assert_eq!(
        scan(&mut source),
        (vec![], 0),
        "an unreadable file is read again only when it changes"
    );
}

#[test]
fn json_arrays_and_objects_one_after_another() {
    let dir = tempfile::tempdir().unwrap();
    let svc = |name: &str, ip: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{name}","namespace":"default"}},"spec":{{"clusterIP":"{ip}","ports":[{{"name":"http","port":80}}]}}}}"#
        )
    };
    write(
        dir.path(),
        "array.json",
        &format!(" [{}, {}]\n", svc("a", "10.0.0.1"), svc("b", "10.0.0.2")),
    );
    let bad_port = svc("d", "10.0.0.4").replace(r#""port":80"#, r#""port":"eighty""#);
    write(
        dir.path(),
        "lines.json",
        &format!(
            "{}\n{}\n{bad_port}\n",
            svc("c", "10.0.0.3"),
            svc("e", "10.0.0.5")
        ),
    );
    write(dir.path(), "empty.json", "\n");
    let mut source = ManifestSource::new(dir.path());
    let scan = source.scan(true).unwrap();
    let mut names: Vec<String> = scan.deltas.iter().map(|d| format!("{d:?}")).collect();
    names.retain(|d| d.contains("Upsert"));
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(scan.errors.len(), 1, "{:?}", scan.errors);
    let e = scan.errors[0].to_string();
    assert!(
        e.contains("lines.json")
            && e.contains("Service default/d")
            && e.contains("spec.ports[0].port"),
        "{e}"
    );
}

#[test]
fn json_syntax_error_names_the_file_and_keeps_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "broken.json",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}} {"apiVersion":"#,
    );
    let mut source = ManifestSource::new(dir.path());
    let scan = source.scan(true).unwrap();
    assert!(scan.deltas.is_empty());
    assert_eq!(scan.errors.len(), 1);
    assert!(scan.errors[0].to_string().contains("broken.json"));
}

/// `metadata` given as an array names no object, in YAML and in JSON alike (found by the
/// `manifests` fuzz target: the JSON path once read the array by position, as name and
/// namespace).
#[test]
fn metadata_as_an_array_names_no_object_in_yaml_or_json() {
    let yaml =
        "apiVersion: v1\nkind: Service\nmetadata: [web, shop]\nspec: {clusterIP: 10.0.0.1}\n";
    let json = r#"{"apiVersion":"v1","kind":"Service","metadata":["web","shop"],"spec":{"clusterIP":"10.0.0.1"}}"#;
    for (file, text) in [("a.yaml", yaml), ("a.json", json)] {
        let (objects, errors) = super::parse_file(Path::new(file), text).unwrap();
        assert!(objects.is_empty(), "{file}: {objects:?}");
        let named: Vec<String> = errors
            .iter()
            .map(|e| format!("{} {:?}", e.object, e.field))
            .collect();
        assert_eq!(named, ["Service (document 1) Some(\"metadata\")"], "{file}");
    }
}

/// A document that is an array (not the first of a JSON file, which lists items) is not a
/// Kubernetes object, in YAML and in JSON alike (found by the `manifests` fuzz target: the
/// JSON path once read `["v1", "Service"]` by position as apiVersion and kind).
#[test]
fn an_array_document_is_not_an_object_in_yaml_or_json() {
    let yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n[v1, Namespace]\n";
    let json = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}
["v1","Namespace"]"#;
    for (file, text) in [("a.yaml", yaml), ("a.json", json)] {
        let (objects, errors) = super::parse_file(Path::new(file), text).unwrap();
        assert_eq!(objects.len(), 1, "{file}: {objects:?}");
        let named: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.object, e.reason))
            .collect();
        assert_eq!(
            named,
            ["document 2: not a Kubernetes object (apiVersion and kind required)"],
            "{file}"
        );
    }
}

/// Services `first..last` (names `s<i>`, address `10.1.<i/250>.<i%250>` plus `shift`) as one
/// YAML file.
fn many(first: u32, last: u32, shift: u32) -> String {
    (first..last)
        .map(|i| {
            let ip = format!("10.1.{}.{}", i / 250, i % 250 + shift);
            service(&format!("s{i:04}"), &ip)
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn objects_moving_within_and_between_files_are_tracked_by_identity() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1.yaml", &many(500, 1000, 0));
    let mut source = ManifestSource::new(dir.path());
    assert_eq!(scan(&mut source).0.len(), 500);

    // New objects sort before the old ones (every old one changes its place in the file's
    // list) and the table grows: only the new ones are sent.
    write(dir.path(), "1.yaml", &many(0, 1000, 0));
    let (deltas, errors) = scan(&mut source);
    assert_eq!((deltas.len(), errors), (500, 0));
    assert!(deltas.iter().all(|d| d.as_str() < "+s0500"), "{deltas:?}");

    // One changed object among them is found at its new place.
    let mut text = many(0, 1000, 0);
    text = text.replace("clusterIP: 10.1.3.0\n", "clusterIP: 10.9.9.9\n");
    write(dir.path(), "1.yaml", &text);
    assert_eq!(scan(&mut source), (vec!["+s0750=10.9.9.9".into()], 0));

    // A second file takes half of them over, then the first file goes: the other half is
    // removed, the second file's half is what stays, not sent again.
    write(dir.path(), "2.yaml", &many(0, 500, 1));
    assert_eq!(scan(&mut source).0.len(), 500);
    std::fs::remove_file(dir.path().join("1.yaml")).unwrap();
    let (deltas, _) = scan(&mut source);
    assert_eq!(deltas.len(), 500);
    assert!(
        deltas.iter().all(|d| d.starts_with("-Service s")),
        "{deltas:?}"
    );
    assert!(
        deltas.iter().all(|d| d.as_str() >= "-Service s0500"),
        "{deltas:?}"
    );

    // A new file reuses the first file's place; its objects are new again.
    write(dir.path(), "3.yaml", &many(900, 1000, 0));
    assert_eq!(scan(&mut source).0.len(), 100);
    write(dir.path(), "2.yaml", &many(0, 400, 1));
    let (deltas, _) = scan(&mut source);
    assert_eq!(deltas.len(), 100, "{deltas:?}");
    assert_eq!(scan(&mut source), (vec![], 0), "unchanged");
}

#[test]
fn an_identity_with_a_long_namespace_reads_back() {
    let lengths = [254, 255, 256, 300].map(|n| "n".repeat(n));
    for namespace in ["", "default"]
        .into_iter()
        .chain(lengths.iter().map(String::as_str))
    {
        let key = crate::model::ObjectKey::new(namespace, "web");
        let id = super::identity(crate::model::Kind::ALL[1], &key);
        assert_eq!(super::IdRef(&id).key(), key);
        assert_eq!(super::IdRef(&id).kind(), crate::model::Kind::ALL[1]);
    }
}

/// Random writes, breakages and removals of three files sharing twelve Services: after every
/// scan, the deltas applied so far hold every Service some file defines well, each at a version
/// some file holds. A Service that is only broken where it is still defined may be gone (its
/// last good version there is known only by hash, so it cannot be sent again when the file in
/// effect drops it).
#[test]
fn deltas_follow_random_edits_of_files_sharing_objects() {
    use std::collections::{BTreeMap, BTreeSet};
    let dir = tempfile::tempdir().unwrap();
    let mut source = ManifestSource::new(dir.path());
    // What each file defines as the source should see it: name → (address, kept: broken now,
    // at its last good version).
    let mut files: [Option<BTreeMap<String, (String, bool)>>; 3] = [None, None, None];
    let mut applied: BTreeMap<String, String> = BTreeMap::new();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for step in 0..300 {
        let f = next(3) as usize;
        let name = format!("f{f}.yaml");
        if next(6) == 0 {
            let _ = std::fs::remove_file(dir.path().join(&name));
            files[f] = None;
        } else {
            let old = files[f].take().unwrap_or_default();
            let mut now = BTreeMap::new();
            let mut docs = Vec::new();
            for s in 0..12 {
                if next(2) == 0 {
                    continue;
                }
                let svc = format!("s{s:02}");
                if next(8) == 0 {
                    // A bad address: the file's last good version of it, if any, stays.
                    docs.push(service(&svc, "nope"));
                    if let Some((ip, _)) = old.get(&svc) {
                        now.insert(svc, (ip.clone(), true));
                    }
                } else {
                    let ip = format!("10.0.0.{}", 1 + next(3));
                    docs.push(service(&svc, &ip));
                    now.insert(svc, (ip, false));
                }
            }
            write(dir.path(), &name, &docs.join("---\n"));
            files[f] = Some(now);
        }
        for delta in source.scan(true).unwrap().deltas {
            match delta {
                Delta::Upsert(Object::Service(s)) => {
                    let ServiceKind::ClusterIp(ips) = &s.kind else {
                        panic!("step {step}: {s:?}");
                    };
                    applied.insert(s.key.name.to_string(), ips[0].to_string());
                }
                Delta::Remove(_, key) => {
                    applied.remove(&*key.name);
                }
                other => panic!("step {step}: {other:?}"),
            }
        }
        let held = || files.iter().flatten().flat_map(|m| m.iter());
        let well: BTreeSet<&String> = held()
            .filter(|(_, (_, kept))| !kept)
            .map(|(k, _)| k)
            .collect();
        let any: BTreeSet<&String> = held().map(|(k, _)| k).collect();
        let sent: BTreeSet<&String> = applied.keys().collect();
        assert!(
            well.is_subset(&sent) && sent.is_subset(&any),
            "step {step}: sent {sent:?}, files {files:?}"
        );
        for (svc, ip) in &applied {
            assert!(
                held().any(|(k, (v, _))| k == svc && v == ip),
                "step {step}: {svc}={ip} is in no file: {files:?}"
            );
        }
    }
}
