//! A thread's scheduling priority: the UDP threads lower their own (`--udp-thread-nice`),
//! so that on a saturated core the rest of clusterdns goes first (`udp.rs` says why).

/// Lowers the calling thread's scheduling priority by `by` (0: leaves it); a failure is
/// logged and the thread runs on at its priority.
#[cfg(target_os = "linux")]
pub fn lower(by: i32) {
    if by == 0 {
        return;
    }
    // On Linux the nice value is the calling thread's own (setpriority(2), NOTES): the
    // process's other threads keep theirs. `nice` returns the new value, and -1 is one, so
    // errno tells a failure apart.
    // SAFETY: `nice` takes an integer and touches no memory of the caller's; errno is this
    // thread's own, written and read on this thread.
    let failed = unsafe {
        *libc::__errno_location() = 0;
        libc::nice(by) == -1 && *libc::__errno_location() != 0
    };
    if failed {
        let error = std::io::Error::last_os_error();
        tracing::warn!(%error, nice = by, "cannot lower the thread's priority");
    }
}
