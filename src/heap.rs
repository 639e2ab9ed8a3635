//! Giving the allocator's free memory back to the system after a large change.
//!
//! Loading a cluster, a relist or a large manifests change frees much of what it allocated on
//! the way (the parsed text and trees, the objects replaced, the old snapshot's shards), in
//! holes between the blocks that stay. glibc keeps such memory in the process; `malloc_trim`
//! gives every whole free page of every arena back (`MADV_DONTNEED`), so the steady RSS is what
//! the cluster and its zone hold.

use crate::source::Delta;

/// Objects in one batch from which the publish loop trims afterwards.
pub const LARGE_BATCH: usize = 10_000;

/// The objects a batch carries: a full list counts each of its objects.
pub fn objects_in(batch: &[Delta]) -> usize {
    batch
        .iter()
        .map(|d| match d {
            Delta::Reset { objects, .. } => objects.len().max(1),
            _ => 1,
        })
        .sum()
}

/// Gives free memory back to the system (glibc builds; elsewhere nothing). Takes milliseconds
/// on a heap of hundreds of MiB: call it off the async threads.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::time::Instant::now();
        // SAFETY: `malloc_trim` takes no pointer and changes only the allocator's own state,
        // under the allocator's own locks; any thread may call it at any time.
        let released = unsafe { libc::malloc_trim(0) } != 0;
        tracing::debug!(
            released,
            micros = started.elapsed().as_micros() as u64,
            "free heap memory given back to the system"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, ObjectKey};

    #[test]
    fn a_full_list_counts_its_objects() {
        let remove = || Delta::Remove(Kind::Service, ObjectKey::new("ns", "a"));
        assert_eq!(objects_in(&[remove(), remove()]), 2);
        let empty_list = Delta::Reset {
            kind: Kind::Service,
            objects: Vec::new(),
            retain: Vec::new(),
        };
        assert_eq!(objects_in(&[empty_list, remove()]), 2);
        // Freed memory goes back while other threads allocate and free.
        let worker = std::thread::spawn(|| (0..10_000).map(|i| vec![i; 16].len()).sum::<usize>());
        release_free_memory();
        assert_eq!(worker.join().ok(), Some(160_000));
    }
}
