//! Sources turn the world into `Delta`s of model objects; they know nothing about DNS.

mod api_object;
pub mod kube;
mod listing;
pub mod manifests;
pub mod metrics;
pub mod selector;
pub mod watch;

use crate::model::{Kind, Object, ObjectKey};

/// A change from a source.
#[derive(Clone, Debug)]
pub enum Delta {
    /// An object was created or changed.
    Upsert(Object),
    /// An object was deleted.
    Remove(Kind, ObjectKey),
    /// A full list of one kind: replaces everything of that kind, except the objects in
    /// `retain` (listed, but unreadable: their last good version stays).
    Reset {
        /// The kind listed.
        kind: Kind,
        /// Every readable object of the list.
        objects: Vec<Object>,
        /// Listed objects that could not be read.
        retain: Vec<ObjectKey>,
    },
    /// The source has delivered its first complete list of this kind.
    Synced(Kind),
}
