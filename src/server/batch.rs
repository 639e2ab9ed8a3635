//! A batch of datagrams: their bytes back to back, and where each came from. The UDP loops
//! hand the queries the fast path does not answer to the general path this way, one
//! allocation for the batch.

use std::net::SocketAddr;

/// Datagrams' bytes back to back, and where each came from.
#[derive(Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    queries: Vec<(std::ops::Range<usize>, SocketAddr)>,
}

impl Batch {
    pub fn push(&mut self, bytes: &[u8], src: SocketAddr) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.queries.push((start..self.data.len(), src));
    }

    pub fn len(&self) -> usize {
        self.queries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// The datagrams and their sources.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.queries
            .iter()
            .map(|(range, src)| (self.data.get(range.clone()).unwrap_or_default(), *src))
    }
}
