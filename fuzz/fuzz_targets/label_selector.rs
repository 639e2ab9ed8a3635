//! Arbitrary text as a `--labels` selector (`source::selector::parse_label_selector`): an
//! error that is not empty, or a filter whose query form (`labelSelector=`, what the API is
//! sent) parses back to the same filter, which matches the same labels.
//!
//! Input: the selector, then optionally a newline and labels (`k=v,k2=v2`) to match.

#![no_main]

use std::collections::BTreeMap;

use clusterdns::source::selector::parse_label_selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (selector, labels) = text.split_once('\n').unwrap_or((text, ""));
    let filter = match parse_label_selector(selector) {
        Ok(f) => f,
        Err(e) => {
            assert!(!e.is_empty(), "empty error for {selector:?}");
            return;
        }
    };
    let query = filter.to_query();
    assert_eq!(query, filter.to_string(), "query and display forms");
    let again = match parse_label_selector(&query) {
        Ok(f) => f,
        Err(e) => panic!("{selector:?} gives {query:?}, which does not parse: {e}"),
    };
    assert_eq!(
        filter, again,
        "{selector:?} gives {query:?}, which parses otherwise"
    );
    let labels: BTreeMap<String, String> = labels
        .split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    assert_eq!(
        filter.matches(&labels),
        again.matches(&labels),
        "{selector:?} and {query:?} match {labels:?} differently"
    );
});
