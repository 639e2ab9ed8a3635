//! The manifests directory under the ways files really change: replaced atomically (temp file
//! and rename, or a ConfigMap's `..data` link swap), written in two steps, deleted and
//! recreated, the whole directory removed and recreated. A file's last good objects answer
//! until a good version arrives (a deleted file's objects go, as `source/manifests.rs`
//! documents), and the rest of the zone is never disturbed.

use crate::common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestServer, ask, eventually};
use hickory_proto::rr::RecordType::A;
use tokio::task::JoinHandle;

/// Several polls (`--manifests-poll 200ms`) and file-system events.
const WITHIN: Duration = Duration::from_secs(5);

/// Waits for a scan of `dir` that began after every change made so far: a file written now,
/// holding a Service of its own, is served once a scan (event or poll) has read it, and the
/// files changed before it with it. A fixed sleep "past a poll" before checking that nothing
/// changed passes as well when a loaded machine has not scanned yet. Returns the name served.
async fn scanned(addr: SocketAddr, dir: &Path) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("scan-{n}");
    let ip = format!("10.96.250.{n}");
    // Written beside and renamed in, so no scan reads it half-written.
    let tmp = dir.join(format!(".scan-{n}"));
    std::fs::write(&tmp, service(&name, &ip)).unwrap();
    std::fs::rename(&tmp, dir.join(format!("zz-scan-{n}.yaml"))).unwrap();
    wait_a(addr, &name, &ip).await;
    name
}

/// `clusterdns_zone_snapshots_total`, which must be there.
fn snapshots(server: &TestServer) -> f64 {
    let text = server.running.metrics.encode();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("clusterdns_zone_snapshots_total ")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no clusterdns_zone_snapshots_total in\n{text}"))
}

fn service(name: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  clusterIP: {ip}\n  ports:\n  - name: http\n    port: 80\n"
    )
}

fn services(list: &[(&str, &str)]) -> String {
    let docs: Vec<String> = list.iter().map(|(n, ip)| service(n, ip)).collect();
    docs.join("---\n")
}

fn fqdn(name: &str) -> String {
    format!("{name}.default.svc.cluster.local.")
}

/// The A answer of a Service, as text.
async fn a(addr: SocketAddr, name: &str) -> String {
    ask(addr, &fqdn(name), A).await
}

async fn wait_a(addr: SocketAddr, name: &str, want: &str) {
    let got = eventually(addr, &fqdn(name), A, WITHIN, |t| t.contains(want)).await;
    assert!(got.contains(want), "{name}: want {want:?} in\n{got}");
}

async fn wait_gone(addr: SocketAddr, name: &str) {
    let got = eventually(addr, &fqdn(name), A, WITHIN, |t| t.starts_with("NXDomain")).await;
    assert!(got.starts_with("NXDomain"), "{name} gone:\n{got}");
}

/// Asks for each of `names` every 10 ms until stopped; every reply must be one the caller
/// allows for that name. Returns the number of rounds asked.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: JoinHandle<usize>,
}

impl Sampler {
    /// Samples `names`, each of whose replies must be in its list of allowed texts.
    fn start(addr: SocketAddr, names: Vec<(String, Vec<String>)>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut rounds = 0;
            while !flag.load(Ordering::Relaxed) {
                for (name, allowed) in &names {
                    let got = a(addr, name).await;
                    assert!(
                        allowed.contains(&got),
                        "{name} answered\n{got}\nnot one of\n{}",
                        allowed.join("\n--\n")
                    );
                }
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            rounds
        });
        Sampler { stop, task }
    }

    /// Samples `names`, which must keep answering as they do now.
    async fn steady(addr: SocketAddr, names: &[&str]) -> Sampler {
        let mut list = Vec::new();
        for n in names {
            list.push((n.to_string(), vec![a(addr, n).await]));
        }
        Sampler::start(addr, list)
    }

    /// Stops and checks that it asked at least once (panics with its finding otherwise).
    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let rounds = self.task.await.unwrap_or_else(|e| {
            std::panic::resume_unwind(e.into_panic());
        });
        assert!(rounds > 0, "the sampler asked");
    }
}

/// The A answer text `name` gives for `ip` (what `ask` returns).
fn a_text(name: &str, ip: &str) -> String {
    format!("NoError aa\n;answer {} 30 IN A {ip}", fqdn(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_by_rename_switches_at_once() {
    let a_yaml = services(&[("alpha", "10.96.1.1"), ("beta", "10.96.1.2")]);
    let other = services(&[("gamma", "10.96.1.3")]);
    let server = TestServer::with_files(&[("a.yaml", &a_yaml), ("b.yaml", &other)], &[]).await;
    let addr = server.addr;
    assert_eq!(a(addr, "alpha").await, a_text("alpha", "10.96.1.1"));
    let steady = Sampler::steady(addr, &["gamma", "beta"]).await;
    // alpha is the old or the new version at every moment, never missing.
    let alpha = Sampler::start(
        addr,
        vec![(
            "alpha".into(),
            vec![a_text("alpha", "10.96.1.1"), a_text("alpha", "10.96.1.9")],
        )],
    );

    // An editor's save: the whole new file under a temporary name, renamed over the old.
    let next = services(&[
        ("alpha", "10.96.1.9"),
        ("beta", "10.96.1.2"),
        ("delta", "10.96.1.4"),
    ]);
    let tmp = server.path("a.yaml.tmp");
    std::fs::write(&tmp, &next).unwrap();
    std::fs::rename(&tmp, server.path("a.yaml")).unwrap();
    wait_a(addr, "alpha", "10.96.1.9").await;
    wait_a(addr, "delta", "10.96.1.4").await;
    // And once more, to be sure later renames are seen too.
    let tmp = server.path(".a.yaml.swp");
    std::fs::write(
        &tmp,
        services(&[("alpha", "10.96.1.9"), ("beta", "10.96.1.2")]),
    )
    .unwrap();
    std::fs::rename(&tmp, server.path("a.yaml")).unwrap();
    wait_gone(addr, "delta").await;
    alpha.finish().await;
    steady.finish().await;
    server.running.shutdown().await;
}

/// A ConfigMap volume: the files are links through `..data` to a hidden timestamped
/// directory, and an update swaps the `..data` link in one rename.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_style_link_swap_switches_at_once() {
    use std::os::unix::fs::symlink;
    let server =
        TestServer::with_files(&[("b.yaml", &services(&[("gamma", "10.96.1.3")]))], &[]).await;
    let addr = server.addr;
    let dir = server.dir.path();
    let version = |name: &str, text: &str| {
        let d = dir.join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("cm.yaml"), text).unwrap();
    };
    version(
        "..2025_01_01",
        &services(&[("alpha", "10.96.1.1"), ("beta", "10.96.1.2")]),
    );
    symlink("..2025_01_01", dir.join("..data")).unwrap();
    symlink("..data/cm.yaml", dir.join("cm.yaml")).unwrap();
    wait_a(addr, "alpha", "10.96.1.1").await;
    wait_a(addr, "beta", "10.96.1.2").await;
    let steady = Sampler::steady(addr, &["gamma", "beta"]).await;
    let alpha = Sampler::start(
        addr,
        vec![(
            "alpha".into(),
            vec![a_text("alpha", "10.96.1.1"), a_text("alpha", "10.96.1.9")],
        )],
    );

    // The kubelet's update: a new directory, a new link, renamed over `..data`, old removed.
    version(
        "..2025_01_02",
        &services(&[("alpha", "10.96.1.9"), ("beta", "10.96.1.2")]),
    );
    symlink("..2025_01_02", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..2025_01_01")).unwrap();
    wait_a(addr, "alpha", "10.96.1.9").await;
    scanned(addr, dir).await;
    assert_eq!(a(addr, "alpha").await, a_text("alpha", "10.96.1.9"));
    alpha.finish().await;
    steady.finish().await;
    server.running.shutdown().await;
}

/// Leaves `path` holding just `first`, as a writer would midway, and returns it open for
/// appending the rest. (`first` arrives by rename, so no scan can see a moment in between.)
fn write_part(path: &Path, first: &str) -> std::fs::File {
    let tmp = path.with_file_name(".partial");
    std::fs::write(&tmp, first).unwrap();
    std::fs::rename(&tmp, path).unwrap();
    std::fs::OpenOptions::new().append(true).open(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_truncated_mid_write_keeps_its_last_good_objects() {
    let old = services(&[
        ("alpha", "10.96.1.1"),
        ("beta", "10.96.1.2"),
        ("gamma", "10.96.1.3"),
    ]);
    let other = services(&[("omega", "10.96.2.1")]);
    let server = TestServer::with_files(&[("a.yaml", &old), ("z.yaml", &other)], &[]).await;
    let addr = server.addr;
    let steady = Sampler::steady(addr, &["omega"]).await;
    let before = snapshots(&server);

    // The new version in flow style, cut inside the second document's mapping: not YAML.
    let new = "apiVersion: v1\nkind: Service\nmetadata: {name: alpha, namespace: default}\nspec: {clusterIP: 10.96.1.11, ports: [{name: http, port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: beta, namespace: default}\nspec: {clusterIP: 10.96.1.12, ports: [{name: http, port: 80}]}\n";
    let cut = new.find("10.96.1.12").unwrap();
    let mut f = write_part(&server.path("a.yaml"), &new[..cut]);
    scanned(addr, server.dir.path()).await;
    for (name, ip) in [
        ("alpha", "10.96.1.1"),
        ("beta", "10.96.1.2"),
        ("gamma", "10.96.1.3"),
    ] {
        assert_eq!(
            a(addr, name).await,
            a_text(name, ip),
            "{name} kept while cut"
        );
    }
    // One snapshot since: the scan file's (the half-written file changed nothing).
    assert_eq!(
        snapshots(&server),
        before + 1.0,
        "no snapshot published for the half-written file"
    );

    // The rest arrives: the new version, whole (gamma is no longer in the file).
    f.write_all(&new.as_bytes()[cut..]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    wait_a(addr, "beta", "10.96.1.12").await;
    wait_a(addr, "alpha", "10.96.1.11").await;
    wait_gone(addr, "gamma").await;
    steady.finish().await;
    server.running.shutdown().await;
}

/// A half-written file that happens to be valid YAML is taken at its word: it holds fewer
/// objects, so the missing ones go until the rest is written; an emptied file likewise. (The
/// manifests source cannot tell a file being written from one that was shortened: writers
/// should write a temporary file and rename it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_cut_at_a_document_boundary_serves_what_it_holds() {
    let old = services(&[("alpha", "10.96.1.1"), ("beta", "10.96.1.2")]);
    let other = services(&[("omega", "10.96.2.1")]);
    let server = TestServer::with_files(&[("a.yaml", &old), ("z.yaml", &other)], &[]).await;
    let addr = server.addr;
    let steady = Sampler::steady(addr, &["omega"]).await;

    let new = services(&[("alpha", "10.96.1.11"), ("beta", "10.96.1.12")]);
    let cut = new.find("---\n").unwrap();
    let mut f = write_part(&server.path("a.yaml"), &new[..cut]);
    wait_a(addr, "alpha", "10.96.1.11").await;
    wait_gone(addr, "beta").await;

    f.write_all(&new.as_bytes()[cut..]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    wait_a(addr, "beta", "10.96.1.12").await;
    assert_eq!(a(addr, "alpha").await, a_text("alpha", "10.96.1.11"));

    // Truncated to nothing (the first step of `>` or a plain write): an empty file is valid
    // YAML without objects, so all of them go until the content is back.
    let mut f = write_part(&server.path("a.yaml"), "");
    wait_gone(addr, "alpha").await;
    wait_gone(addr, "beta").await;
    f.write_all(new.as_bytes()).unwrap();
    f.sync_all().unwrap();
    drop(f);
    wait_a(addr, "alpha", "10.96.1.11").await;
    wait_a(addr, "beta", "10.96.1.12").await;
    steady.finish().await;
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_takes_its_objects_and_a_recreated_one_brings_them_back() {
    let a_yaml = services(&[("alpha", "10.96.1.1"), ("beta", "10.96.1.2")]);
    let other = services(&[("gamma", "10.96.1.3")]);
    let server = TestServer::with_files(&[("a.yaml", &a_yaml), ("b.yaml", &other)], &[]).await;
    let addr = server.addr;
    let steady = Sampler::steady(addr, &["gamma"]).await;

    // Deleted: documented, its objects go.
    std::fs::remove_file(server.path("a.yaml")).unwrap();
    wait_gone(addr, "alpha").await;
    wait_gone(addr, "beta").await;

    // Recreated, with one change.
    let next = services(&[("alpha", "10.96.1.9"), ("beta", "10.96.1.2")]);
    std::fs::write(server.path("a.yaml"), &next).unwrap();
    wait_a(addr, "alpha", "10.96.1.9").await;
    wait_a(addr, "beta", "10.96.1.2").await;

    // Deleted and written again at once: whatever a scan saw in between, the end state is
    // the new file's.
    std::fs::remove_file(server.path("a.yaml")).unwrap();
    std::fs::write(server.path("a.yaml"), services(&[("alpha", "10.96.1.7")])).unwrap();
    wait_a(addr, "alpha", "10.96.1.7").await;
    wait_gone(addr, "beta").await;
    steady.finish().await;
    server.running.shutdown().await;
}

/// Copies the regular files of `from` into a new directory `to`.
fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_removed_and_recreated_keeps_serving() {
    let a_yaml = services(&[("alpha", "10.96.1.1"), ("beta", "10.96.1.2")]);
    let other = services(&[("gamma", "10.96.1.3")]);
    let server = TestServer::with_files(&[("a.yaml", &a_yaml), ("b.yaml", &other)], &[]).await;
    let addr = server.addr;
    let dir = server.dir.path().to_owned();
    let aside = tempfile::tempdir().unwrap();
    let steady = Sampler::steady(addr, &["alpha", "beta", "gamma"]).await;

    // Gone in one step: unreadable, so the last good objects stay.
    let moved = aside.path().join("moved");
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::remove_dir_all(&moved).unwrap();
    // No scan of a missing directory shows: the sampler asks through a few polls (200 ms).
    tokio::time::sleep(Duration::from_millis(800)).await;
    steady.finish().await;

    // Back in one step, with a change to one file.
    let staged = aside.path().join("staged");
    std::fs::create_dir(&staged).unwrap();
    std::fs::write(staged.join("a.yaml"), &a_yaml).unwrap();
    std::fs::write(
        staged.join("b.yaml"),
        services(&[("gamma", "10.96.1.3"), ("delta", "10.96.1.4")]),
    )
    .unwrap();
    let steady = Sampler::steady(addr, &["alpha", "beta", "gamma"]).await;
    std::fs::rename(&staged, &dir).unwrap();
    wait_a(addr, "delta", "10.96.1.4").await;
    steady.finish().await;

    // Watched again: a later edit in the new directory is seen.
    std::fs::write(
        dir.join("a.yaml"),
        services(&[("alpha", "10.96.1.9"), ("beta", "10.96.1.2")]),
    )
    .unwrap();
    wait_a(addr, "alpha", "10.96.1.9").await;

    // Removed file by file and recreated the same way (`rm -rf`, `mkdir`, `cp`): a scan in
    // between may see some files gone, but the end state is the new directory's.
    let backup = aside.path().join("backup");
    copy_files(&dir, &backup);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(&backup).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    for (name, ip) in [
        ("alpha", "10.96.1.9"),
        ("beta", "10.96.1.2"),
        ("gamma", "10.96.1.3"),
        ("delta", "10.96.1.4"),
    ] {
        wait_a(addr, name, ip).await;
    }
    scanned(addr, &dir).await;
    assert_eq!(a(addr, "alpha").await, a_text("alpha", "10.96.1.9"));
    server.running.shutdown().await;
}
