//! Child processes and ports bound again, in one test process.
//!
//! A child holds a copy of every descriptor of this process from the moment it is spawned
//! until it execs the new program (they are all close-on-exec: then they go). A socket that a
//! test, or the server it runs, closes meanwhile stays open in the child, and binding its port
//! again fails with EADDRINUSE: a `cli` test spawning the binary could make the `lifecycle`
//! test's "the port is free once shutdown returns" fail. So children are spawned only through
//! [`spawn`], [`output`] and [`status`], which hold `SPAWNING` shared while the spawn is under
//! way (`Command::spawn` returns once the child has exec'd), and a test that binds a port
//! this process just closed calls [`closed_for_good`] first: it waits for the spawns under
//! way, so no child started before the close still holds the socket.

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{PoisonError, RwLock};

static SPAWNING: RwLock<()> = RwLock::new(());

/// `spawn`, `output` and `status` of a [`Command`], with no port re-bound meanwhile.
pub trait SpawnGated {
    /// `Command::spawn`.
    fn spawn_gated(&mut self) -> io::Result<Child>;
    /// `Command::output`: stdin from /dev/null, stdout and stderr captured.
    fn output_gated(&mut self) -> io::Result<Output>;
    /// `Command::status`.
    fn status_gated(&mut self) -> io::Result<ExitStatus>;
}

impl SpawnGated for Command {
    fn spawn_gated(&mut self) -> io::Result<Child> {
        let _spawning = SPAWNING.read().unwrap_or_else(PoisonError::into_inner);
        self.spawn()
    }

    fn output_gated(&mut self) -> io::Result<Output> {
        self.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_gated()?
            .wait_with_output()
    }

    fn status_gated(&mut self) -> io::Result<ExitStatus> {
        self.spawn_gated()?.wait()
    }
}

/// Returns once no child spawned before this call can still hold a descriptor of this
/// process: a socket closed before it is closed for good, and its port can be bound again.
pub fn closed_for_good() {
    drop(SPAWNING.write().unwrap_or_else(PoisonError::into_inner));
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    let port = loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            break port;
        }
    };
    // The probes above are closed: no child may keep them open when the caller binds.
    closed_for_good();
    port
}

/// A long-running child (a server), its standard output and error in a file of its own;
/// killed and reaped when dropped (a failed test too).
pub struct Daemon {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Daemon {
    /// Spawns `cmd` (gated) with stdin from /dev/null and its output into the log.
    pub fn spawn(cmd: &mut Command) -> Daemon {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn_gated()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        Daemon { child, log }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What it has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
