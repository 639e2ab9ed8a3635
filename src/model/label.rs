//! `Label`: a short string (a DNS label or two) stored inline.
//!
//! Endpoint labels and hostnames (`web-0`, `10-244-1-7`), Service and namespace names and
//! port names are almost always under 23 bytes: inline they cost no heap block (32 bytes with
//! the allocator's overhead), which at 1M endpoints is 32 MB.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest text kept inline.
const INLINE: usize = 22;

/// A string of up to 22 bytes inline, longer ones on the heap.
#[derive(Clone)]
pub enum Label {
    /// Short text: `bytes[..len]`.
    Inline {
        /// Length in bytes.
        len: u8,
        /// The text, then zeros.
        bytes: [u8; INLINE],
    },
    /// Longer text.
    Heap(Box<str>),
}

impl Label {
    /// The text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Label::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Label::Heap(s) => s.as_bytes(),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            // Built from a `&str` cut at its end, so always valid UTF-8.
            Label::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Label::Heap(s) => s,
        }
    }

    /// `text` in ASCII lower case, lowered in place (no intermediate `String`).
    pub fn lowercase(text: &str) -> Self {
        let mut label = Label::from(text);
        match &mut label {
            // Zeros past `len` stay zeros.
            Label::Inline { bytes, .. } => bytes.make_ascii_lowercase(),
            Label::Heap(s) => s.make_ascii_lowercase(),
        }
        label
    }
}

impl fmt::Write for Label {
    /// Appends (a label is built by formatting into an empty one): inline while it fits.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match self {
            Label::Inline { len, bytes } => {
                let at = usize::from(*len);
                match bytes.get_mut(at..at + s.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(s.as_bytes());
                        *len += s.len() as u8;
                    }
                    None => {
                        let mut text = String::with_capacity(at + s.len());
                        text.push_str(std::str::from_utf8(&bytes[..at]).unwrap_or_default());
                        text.push_str(s);
                        *self = Label::Heap(text.into_boxed_str());
                    }
                }
            }
            Label::Heap(text) => {
                let mut t = std::mem::take(text).into_string();
                t.push_str(s);
                *text = t.into_boxed_str();
            }
        }
        Ok(())
    }
}

impl Default for Label {
    fn default() -> Self {
        Label::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl From<&str> for Label {
    fn from(text: &str) -> Self {
        if text.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Label::Inline {
                len: text.len() as u8,
                bytes,
            }
        } else {
            Label::Heap(text.into())
        }
    }
}

impl From<String> for Label {
    fn from(text: String) -> Self {
        if text.len() <= INLINE {
            Label::from(text.as_str())
        } else {
            Label::Heap(text.into_boxed_str())
        }
    }
}

impl From<Box<str>> for Label {
    fn from(text: Box<str>) -> Self {
        if text.len() <= INLINE {
            Label::from(&*text)
        } else {
            Label::Heap(text)
        }
    }
}

impl Deref for Label {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

// Hash, Eq and Ord are those of the text: a `Label` is looked up by `&str`.
impl std::borrow::Borrow<str> for Label {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Label {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Label {}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Label {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for Label {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_inline_and_compares_by_content() {
        let short = Label::from("web-0");
        let long = Label::from("a-label-longer-than-twenty-two-bytes");
        assert!(matches!(short, Label::Inline { .. }));
        assert!(matches!(long, Label::Heap(_)));
        assert_eq!(short.as_str(), "web-0");
        assert_eq!(long.to_string(), "a-label-longer-than-twenty-two-bytes");
        assert_eq!(Label::from(String::from("web-0")), short);
        assert_eq!(Label::Heap("web-0".into()), short);
        assert!(Label::from("a") < Label::from("b"));
        assert_eq!(Label::from("1234567890123456789012").as_bytes().len(), 22);
        assert_eq!(std::mem::size_of::<Label>(), 24);
    }

    #[test]
    fn lowercase_and_written_labels_stay_inline_while_they_fit() {
        let l = Label::lowercase("Web-0");
        assert!(matches!(l, Label::Inline { .. }));
        assert_eq!(l.as_str(), "web-0");
        let long = Label::lowercase("A-Label-Longer-Than-Twenty-Two-Bytes");
        assert_eq!(long.as_str(), "a-label-longer-than-twenty-two-bytes");

        use std::fmt::Write;
        let mut w = Label::default();
        let octet = 7;
        write!(w, "10-244-{octet}").unwrap();
        assert!(matches!(w, Label::Inline { .. }));
        assert_eq!(w.as_str(), "10-244-7");
        // Past 22 bytes it moves to the heap, keeping what it had.
        w.write_str("-and-some-more-text").unwrap();
        assert!(matches!(w, Label::Heap(_)));
        assert_eq!(w.as_str(), "10-244-7-and-some-more-text");
        w.write_str("!").unwrap();
        assert_eq!(w.as_str(), "10-244-7-and-some-more-text!");
        assert_eq!(Label::default().as_str(), "");
    }
}
