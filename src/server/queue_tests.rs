use super::*;

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 40000))
}

/// `n` datagrams of `len` bytes from `src`, each carrying its index.
fn datagrams(src: SocketAddr, n: usize, len: usize) -> Vec<(Vec<u8>, SocketAddr)> {
    (0..n)
        .map(|i| {
            let mut bytes = vec![0u8; len];
            if let Some(first) = bytes.first_mut() {
                *first = (i % 256) as u8;
            }
            (bytes, src)
        })
        .collect()
}

fn admit(queue: &mut Queue, now: Instant, d: &[(Vec<u8>, SocketAddr)]) {
    queue.admit(now, d.iter().map(|(b, s)| (b.as_slice(), *s)));
}

/// The sources of every datagram `pop` hands out at `now`, in order.
fn drain_sources(queue: &mut Queue, now: Instant) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    while let Some(batch) = queue.pop(now) {
        out.extend(batch.iter().map(|(_, src)| src));
        queue.recycle(batch);
    }
    out
}

/// How many datagrams `pop` hands out before the first from `src` (all of them if none).
fn ahead_of(queue: &mut Queue, now: Instant, src: SocketAddr) -> usize {
    let order = drain_sources(queue, now);
    order.iter().position(|s| *s == src).unwrap_or(order.len())
}

#[test]
fn without_a_backlog_datagrams_are_answered_in_the_order_read() {
    let now = Instant::now();
    let mut queue = Queue::new(now);
    admit(&mut queue, now, &datagrams(addr(1), 20, 40));
    admit(&mut queue, now, &datagrams(addr(2), 3, 40));
    assert_eq!(queue.len(), 23);
    let order = drain_sources(&mut queue, now);
    assert_eq!(order.len(), 23);
    assert!(order[..20].iter().all(|s| *s == addr(1)));
    assert!(order[20..].iter().all(|s| *s == addr(2)));
    assert!(queue.is_empty());
    assert_eq!(queue.take_dropped(), Dropped::default());
}

#[test]
fn with_a_backlog_a_light_source_is_answered_before_a_flood() {
    let now = Instant::now();
    let mut queue = Queue::new(now);
    // A flood of 10,000 from one source, read in recvmmsg-sized pieces.
    for _ in 0..(10_000 / 32) {
        admit(&mut queue, now, &datagrams(addr(1), 32, 40));
    }
    // A pod's lookup arrives behind it, mixed with more of the flood.
    let mut mixed = datagrams(addr(1), 20, 40);
    mixed.extend(datagrams(addr(2), 6, 40));
    admit(&mut queue, now, &mixed);
    // Ahead of it: only the flood's first LIGHT datagrams after the backlog began (it was
    // light until then), not the 10,000.
    assert_eq!(ahead_of(&mut queue, now, addr(2)), LIGHT as usize);
}

#[test]
fn a_source_over_its_share_in_a_window_waits_with_the_bulk() {
    let now = Instant::now();
    let mut queue = Queue::new(now);
    admit(&mut queue, now, &datagrams(addr(9), BACKLOG, 40));
    // Source 2 sends LIGHT + 30 in one window: the first LIGHT are served first.
    admit(
        &mut queue,
        now,
        &datagrams(addr(2), LIGHT as usize + 30, 40),
    );
    let first = queue.pop(now).expect("a batch");
    assert_eq!(first.len(), LIGHT as usize);
    assert!(first.iter().all(|(_, s)| s == addr(2)));
    // In a new window it is light again.
    let later = now + WINDOW;
    admit(&mut queue, later, &datagrams(addr(2), 5, 40));
    let next = queue.pop(later).expect("a batch");
    assert_eq!(next.len(), 5);
    assert!(next.iter().all(|(_, s)| s == addr(2)));
}

#[test]
fn batches_older_than_the_bound_are_dropped_and_counted() {
    let start = Instant::now();
    let mut queue = Queue::new(start);
    admit(&mut queue, start, &datagrams(addr(1), 32, 40));
    admit(&mut queue, start, &datagrams(addr(1), 32, 40));
    let fresh_at = start + MAX_WAIT / 2;
    admit(&mut queue, fresh_at, &datagrams(addr(3), 7, 40));
    let now = start + MAX_WAIT + Duration::from_millis(1);
    let order = drain_sources(&mut queue, now);
    assert_eq!(order, vec![addr(3); 7]);
    assert_eq!(
        queue.take_dropped(),
        Dropped { wait: 64, full: 0 },
        "the two old batches are dropped, the fresh one answered"
    );
    assert_eq!(queue.take_dropped(), Dropped::default(), "counted once");
    // At the bound exactly a batch is still answered.
    admit(&mut queue, now, &datagrams(addr(1), 1, 40));
    assert!(queue.pop(now + MAX_WAIT).is_some());
}

#[test]
fn a_full_queue_drops_its_oldest_bulk_and_keeps_reading() {
    let now = Instant::now();
    let mut queue = Queue::new(now);
    let per = QUEUE_DATAGRAMS / 32;
    for _ in 0..per + 10 {
        admit(&mut queue, now, &datagrams(addr(1), 32, 12));
    }
    assert!(queue.len() <= QUEUE_DATAGRAMS);
    assert_eq!(queue.take_dropped().full, 10 * 32);
    // A light source arriving now is still admitted, and served after no more than the
    // flood's first LIGHT.
    admit(&mut queue, now, &datagrams(addr(2), 2, 12));
    assert_eq!(ahead_of(&mut queue, now, addr(2)), LIGHT as usize);
}

#[test]
fn the_byte_bound_holds_too() {
    let now = Instant::now();
    let mut queue = Queue::new(now);
    // 512-byte datagrams reach QUEUE_BYTES before QUEUE_DATAGRAMS.
    let batches = QUEUE_BYTES / (32 * 512) + 5;
    for _ in 0..batches {
        admit(&mut queue, now, &datagrams(addr(1), 32, 512));
    }
    assert!(queue.bytes <= QUEUE_BYTES);
    assert_eq!(queue.take_dropped().full, 5 * 32);
}

#[test]
fn pop_any_returns_everything_at_shutdown_whatever_its_age() {
    let start = Instant::now();
    let mut queue = Queue::new(start);
    admit(&mut queue, start, &datagrams(addr(1), 10, 40));
    let mut n = 0;
    while let Some(batch) = queue.pop_any() {
        n += batch.len();
    }
    assert_eq!(n, 10);
    assert!(queue.is_empty());
}

#[test]
fn ipv6_sources_are_told_apart() {
    let now = Instant::now();
    let mut sources = Sources::new(now);
    let a: IpAddr = "fd00::1".parse().expect("address");
    let b: IpAddr = "fd00::2".parse().expect("address");
    for _ in 0..LIGHT {
        assert!(sources.light(a));
    }
    assert!(!sources.light(a), "over its share");
    assert!(sources.light(b), "another address has its own count");
}
