//! `Pairs`: key/value strings packed in one heap block (a Service's selector).
//!
//! A list of `(Label, Label)` is 48 bytes a pair, and a key past 22 bytes
//! (`app.kubernetes.io/instance`) is one more block; packed, a selector is one block of its
//! text plus four bytes a string.

use std::fmt;

/// Key/value pairs, in order: each string as its length (u32, little endian), then its text.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Pairs(Box<[u8]>);

impl Pairs {
    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every pair, in the order built.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.view().iter()
    }

    /// The pairs, to read.
    pub fn view(&self) -> PairsRef<'_> {
        PairsRef(&self.0)
    }
}

/// Packed pairs, borrowed (from a `Pairs`, or from a block that holds more).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairsRef<'a>(&'a [u8]);

impl<'a> PairsRef<'a> {
    /// Pairs packed as `Pairs` packs them.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every pair, in the order built.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        let mut rest: &[u8] = self.0;
        std::iter::from_fn(move || {
            let key = take(&mut rest)?;
            let value = take(&mut rest)?;
            Some((key, value))
        })
    }
}

/// Packs pairs in order; a string of 4 GiB or more (which no API object can hold) ends the
/// list rather than be miscounted.
pub(super) fn pack<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (k, v) in pairs {
        let (Ok(kl), Ok(vl)) = (u32::try_from(k.len()), u32::try_from(v.len())) else {
            break;
        };
        for (len, text) in [(kl, k), (vl, v)] {
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
    }
    bytes
}

/// Reads one string off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    let (text, tail) = tail.split_at_checked(len)?;
    *rest = tail;
    // Written from `&str`s, so always valid UTF-8.
    std::str::from_utf8(text).ok()
}

impl<'a> FromIterator<(&'a str, &'a str)> for Pairs {
    /// Pairs in order; a string of 4 GiB or more (which no API object can hold) ends the
    /// list rather than be miscounted.
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        Self(pack(iter).into())
    }
}

impl fmt::Debug for Pairs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_come_back_as_built_in_one_block() {
        let built = [
            ("app.kubernetes.io/instance", "web"),
            ("tier", ""),
            ("", "x"),
        ];
        let pairs: Pairs = built.iter().copied().collect();
        assert_eq!(pairs.iter().collect::<Vec<_>>(), built);
        assert_eq!(pairs.0.len(), 6 * 4 + 26 + 3 + 4 + 1);
        assert!(!pairs.is_empty());
        assert!(Pairs::default().is_empty());
        assert_eq!(Pairs::default().iter().count(), 0);
        assert!(format!("{pairs:?}").contains("\"tier\": \"\""));
    }

    #[test]
    fn a_cut_block_reads_as_the_pairs_it_still_holds() {
        let pairs: Pairs = [("a", "1"), ("b", "2")].into_iter().collect();
        for cut in 0..pairs.0.len() {
            let short = Pairs(pairs.0[..cut].into());
            assert!(short.iter().count() <= 1, "{cut}");
        }
    }
}
