//! The zone directory: which files count, last good zones, removals, duplicates, and
//! following the directory as it changes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::rr::{Name, RecordType};

use super::{ZoneDir, ZoneSet, watch};

const GOOD: &str =
    "$TTL 60\n@ SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.80\n";

fn write(dir: &Path, file: &str, text: &str) {
    if let Err(e) = std::fs::write(dir.join(file), text) {
        panic!("{file}: {e}");
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The first A record of `qname`, as text.
fn address(set: &ZoneSet, qname: &str) -> Option<String> {
    let answer = set.lookup(&name(qname), RecordType::A)?;
    answer.answers.first().map(|r| r.data.to_string())
}

fn origins(set: &ZoneSet) -> Vec<String> {
    set.origins().iter().map(Name::to_string).collect()
}

#[test]
fn only_zone_files_count() {
    let tmp = tempdir();
    write(tmp.path(), "a.test.zone", GOOD);
    write(tmp.path(), ".hidden.test.zone", GOOD);
    write(tmp.path(), "b.test.zone.bak", GOOD);
    write(tmp.path(), "notes.txt", "not a zone");
    if let Err(e) = std::fs::create_dir(tmp.path().join("c.test.zone")) {
        panic!("{e}");
    }
    let mut dir = ZoneDir::new(tmp.path());
    let first = dir.scan();
    assert!(first.changed);
    assert_eq!(first.errors, []);
    assert_eq!(origins(&first.zones), ["a.test."]);
    assert_eq!(
        address(&first.zones, "www.a.test.").as_deref(),
        Some("192.0.2.80")
    );
    // Nothing changed: the same set.
    let second = dir.scan();
    assert!(!second.changed);
    assert!(Arc::ptr_eq(&first.zones, &second.zones));
}

#[test]
fn a_broken_file_keeps_its_last_good_zone() {
    let tmp = tempdir();
    let file = tmp.path().join("a.test.zone");
    write(tmp.path(), "a.test.zone", GOOD);
    let mut dir = ZoneDir::new(tmp.path());
    assert!(dir.scan().changed);

    write(tmp.path(), "a.test.zone", &format!("{GOOD}bad A 192.0.2\n"));
    for _ in 0..2 {
        // Reported on every scan while the file stays broken.
        let scan = dir.scan();
        assert!(!scan.changed);
        let errors: Vec<String> = scan.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(&format!("{}:6: ", file.display())),
            "{errors:?}"
        );
        assert_eq!(
            address(&scan.zones, "www.a.test.").as_deref(),
            Some("192.0.2.80")
        );
    }

    write(tmp.path(), "a.test.zone", &GOOD.replace(".80", ".81"));
    let fixed = dir.scan();
    assert!(fixed.changed);
    assert_eq!(fixed.errors, []);
    assert_eq!(
        address(&fixed.zones, "www.a.test.").as_deref(),
        Some("192.0.2.81")
    );

    // A comment changes no record; a TTL does.
    let text = GOOD.replace(".80", ".81");
    write(tmp.path(), "a.test.zone", &format!("; a comment\n{text}"));
    assert!(!dir.scan().changed);
    write(
        tmp.path(),
        "a.test.zone",
        &text.replace("$TTL 60", "$TTL 61"),
    );
    assert!(dir.scan().changed);
}

#[test]
fn a_deleted_file_drops_its_zone() {
    let tmp = tempdir();
    write(tmp.path(), "a.test.zone", GOOD);
    write(tmp.path(), "b.test.zone", GOOD);
    let mut dir = ZoneDir::new(tmp.path());
    assert_eq!(origins(&dir.scan().zones), ["a.test.", "b.test."]);
    if let Err(e) = std::fs::remove_file(tmp.path().join("a.test.zone")) {
        panic!("{e}");
    }
    let scan = dir.scan();
    assert!(scan.changed);
    assert_eq!(origins(&scan.zones), ["b.test."]);
    assert_eq!(scan.zones.lookup(&name("www.a.test."), RecordType::A), None);
}

#[test]
fn a_missing_directory_keeps_the_zones() {
    let tmp = tempdir();
    let path = tmp.path().join("zones");
    if let Err(e) = std::fs::create_dir(&path) {
        panic!("{e}");
    }
    write(&path, "a.test.zone", GOOD);
    let mut dir = ZoneDir::new(&path);
    assert!(dir.scan().changed);
    if let Err(e) = std::fs::remove_dir_all(&path) {
        panic!("{e}");
    }
    let scan = dir.scan();
    assert!(!scan.changed);
    assert_eq!(origins(&scan.zones), ["a.test."]);
    assert_eq!(scan.errors.len(), 1);
    assert_eq!(scan.errors[0].file, path);
    assert!(
        scan.errors[0]
            .reason
            .starts_with("cannot read the zones directory")
    );
    // Back, and empty: nothing is served.
    if let Err(e) = std::fs::create_dir(&path) {
        panic!("{e}");
    }
    let scan = dir.scan();
    assert!(scan.changed);
    assert!(scan.zones.is_empty());
}

#[test]
fn one_file_per_origin() {
    let tmp = tempdir();
    write(tmp.path(), "b.test.zone", GOOD);
    let mut dir = ZoneDir::new(tmp.path());
    assert!(dir.scan().changed);
    // The same origin again (a final dot); it sorts first, but the serving file stays.
    write(tmp.path(), "b.test..zone", &GOOD.replace(".80", ".99"));
    write(tmp.path(), "a..b.zone", GOOD);
    let scan = dir.scan();
    assert!(!scan.changed);
    let errors: Vec<String> = scan.errors.iter().map(|e| e.to_string()).collect();
    let (first, second) = (
        tmp.path().join("b.test.zone"),
        tmp.path().join("b.test..zone"),
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with(&format!("{}: ", tmp.path().join("a..b.zone").display())));
    assert!(
        errors[0].contains("does not spell a zone origin"),
        "{errors:?}"
    );
    assert_eq!(
        errors[1],
        format!(
            "{}: origin b.test. is already served by {}",
            second.display(),
            first.display()
        )
    );
    assert_eq!(
        address(&scan.zones, "www.b.test.").as_deref(),
        Some("192.0.2.80")
    );
    // When the first goes, the second takes over.
    if let Err(e) = std::fs::remove_file(&first) {
        panic!("{e}");
    }
    let scan = dir.scan();
    assert!(scan.changed);
    assert_eq!(
        address(&scan.zones, "www.b.test.").as_deref(),
        Some("192.0.2.99")
    );
}

/// Waits (at most 5 s) until `done` holds.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn follow_picks_up_changes() {
    let tmp = tempdir();
    write(tmp.path(), "a.test.zone", GOOD);
    let out = Arc::new(ArcSwap::from_pointee(ZoneSet::empty()));
    let task = tokio::spawn(watch(
        ZoneDir::new(tmp.path()),
        Arc::clone(&out),
        Duration::from_millis(100),
    ));
    let www = |out: &ArcSwap<ZoneSet>| address(&out.load(), "www.a.test.");
    wait_for("the first load", || {
        www(&out).as_deref() == Some("192.0.2.80")
    })
    .await;

    write(tmp.path(), "a.test.zone", &GOOD.replace(".80", ".81"));
    wait_for("the edit", || www(&out).as_deref() == Some("192.0.2.81")).await;

    // A broken edit changes nothing; a new file is added.
    write(tmp.path(), "a.test.zone", "broken");
    write(tmp.path(), "b.test.zone", GOOD);
    wait_for("the new file", || origins(&out.load()).len() == 2).await;
    assert_eq!(www(&out).as_deref(), Some("192.0.2.81"));

    // Follow ends once nothing else holds the set.
    drop(out);
    let ended = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert!(matches!(ended, Ok(Ok(()))), "follow did not end");
}
