//! A list under way, as the API watcher hands it over: a kind's first list whole, a relist
//! in batches.

use super::Delta;
use crate::model::{Kind, Object, ObjectKey};

/// The objects of a list under way. A kind's first list is gathered and handed over whole;
/// a relist's objects are handed over in batches as they come and only their keys kept for
/// the closing `Reset`, so the stores never sit beside a second full copy of the kind.
#[derive(Default)]
pub struct Listing {
    /// The first list's objects.
    listed: Vec<Object>,
    /// A relist's objects not yet handed over.
    batch: Vec<Delta>,
    /// The keys of a relist's objects handed over.
    named: Vec<ObjectKey>,
    /// Listed objects that could not be read.
    retain: Vec<ObjectKey>,
}

/// Objects of a relist handed over at once.
const RELIST_BATCH: usize = 256;

impl Listing {
    pub fn clear(&mut self) {
        *self = Listing::default();
    }

    /// Objects listed so far.
    pub fn len(&self) -> usize {
        self.listed.len() + self.named.len()
    }

    /// Takes one listed object; returns a relist's batch once it is full.
    pub fn add(
        &mut self,
        obj: Result<Object, Option<ObjectKey>>,
        relist: bool,
    ) -> Option<Vec<Delta>> {
        match obj {
            Ok(o) if relist => {
                self.named.push(o.key());
                self.batch.push(Delta::Upsert(o));
            }
            Ok(o) => self.listed.push(o),
            Err(Some(key)) => self.retain.push(key),
            Err(None) => {}
        }
        (self.batch.len() >= RELIST_BATCH).then(|| std::mem::take(&mut self.batch))
    }

    /// The end of the list: what is left to hand over, the `Reset` that removes what the list
    /// did not name, and `Synced`.
    pub fn finish(&mut self, kind: Kind) -> Vec<Delta> {
        let mut deltas = std::mem::take(&mut self.batch);
        let mut retain = std::mem::take(&mut self.retain);
        retain.append(&mut self.named);
        deltas.push(Delta::Reset {
            kind,
            objects: std::mem::take(&mut self.listed),
            retain,
        });
        deltas.push(Delta::Synced(kind));
        deltas
    }
}
