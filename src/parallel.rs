//! Splitting a large batch across the usable cores (the first list of a big cluster: its
//! manifests' conversion, its Services' records).

/// Runs `run(offset, part)` over `items` cut into one part per usable core, in order, and
/// returns each part's result (`Err` if that part panicked), with `offset` the index of the
/// part's first item. Fewer than `min` items, or a single core: one part, on this thread.
pub fn in_parts<T: Sync, R: Send>(
    items: &[T],
    min: usize,
    run: impl Fn(usize, &[T]) -> R + Sync,
) -> Vec<std::thread::Result<R>> {
    // A small batch (every watch event's) is run here without asking how many cores there
    // are: the answer reads the cgroup's files each time.
    if items.len() < min {
        return vec![Ok(run(0, items))];
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 {
        return vec![Ok(run(0, items))];
    }
    let per = items.len().div_ceil(threads);
    let run = &run;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(per)
            .enumerate()
            .skip(1)
            .map(|(n, part)| scope.spawn(move || run(n * per, part)))
            .collect();
        // The first part on this thread, while the others run.
        let mut results = vec![Ok(run(0, &items[..per.min(items.len())]))];
        results.extend(workers.into_iter().map(|w| w.join()));
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_every_item_in_order() {
        let items: Vec<u32> = (0..10_000).collect();
        let parts = in_parts(&items, 100, |offset, part| {
            assert_eq!(part[0] as usize, offset);
            part.to_vec()
        });
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(parts.len(), threads.min(items.len()));
        let joined: Vec<u32> = parts.into_iter().flat_map(|p| p.unwrap()).collect();
        assert_eq!(joined, items);

        // Below `min`: one part.
        let small = in_parts(&items[..50], 100, |offset, part| (offset, part.len()));
        assert_eq!(small.len(), 1);
        assert_eq!(*small[0].as_ref().unwrap(), (0, 50));
    }
}
