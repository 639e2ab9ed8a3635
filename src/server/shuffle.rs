//! `--shuffle`: a random order of the address records of every answer, CNAMEs first, as
//! CoreDNS's `loadbalance round_robin`. Clients that take the first address then spread over
//! a headless Service's endpoints (or an external name's addresses) instead of all picking
//! the same one.

use hickory_server::proto::rr::{Record, RecordType};
use rand::seq::SliceRandom;

/// Reorders `answers`: CNAMEs in their order (a chain must read from the question onwards),
/// then the A/AAAA records in a random order, then every other record in its order.
pub(super) fn shuffle_addresses(answers: &mut Vec<Record>) {
    let is_address = |r: &Record| matches!(r.record_type(), RecordType::A | RecordType::AAAA);
    if answers.iter().filter(|r| is_address(r)).count() < 2 {
        return;
    }
    let mut cnames = Vec::new();
    let mut addresses = Vec::new();
    let mut rest = Vec::new();
    for r in answers.drain(..) {
        if r.record_type() == RecordType::CNAME {
            cnames.push(r);
        } else if is_address(&r) {
            addresses.push(r);
        } else {
            rest.push(r);
        }
    }
    addresses.shuffle(&mut rand::rng());
    answers.extend(cnames);
    answers.extend(addresses);
    answers.extend(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_server::proto::rr::rdata::{A, CNAME, TXT};
    use hickory_server::proto::rr::{Name, RData};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn cnames_first_addresses_permuted_rest_last() {
        let owner = name("web.example.");
        let mut answers = vec![
            Record::from_rdata(owner.clone(), 30, RData::TXT(TXT::new(vec!["x".into()]))),
            Record::from_rdata(name("www.example."), 30, RData::CNAME(CNAME(owner.clone()))),
        ];
        for i in 1..=8u8 {
            answers.push(Record::from_rdata(
                owner.clone(),
                30,
                RData::A(A::new(10, 0, 0, i)),
            ));
        }
        let original: Vec<String> = answers.iter().map(|r| r.data.to_string()).collect();
        let mut orders = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut a = answers.clone();
            shuffle_addresses(&mut a);
            assert_eq!(a[0].record_type(), RecordType::CNAME);
            assert_eq!(a[9].record_type(), RecordType::TXT);
            let mut got: Vec<String> = a.iter().map(|r| r.data.to_string()).collect();
            orders.insert(got.clone());
            got.sort();
            let mut want = original.clone();
            want.sort();
            assert_eq!(got, want, "the same records");
        }
        assert!(orders.len() > 1, "more than one order in 50 shuffles of 8");
    }

    #[test]
    fn single_address_untouched() {
        let owner = name("one.example.");
        let mut answers = vec![
            Record::from_rdata(owner.clone(), 30, RData::TXT(TXT::new(vec!["x".into()]))),
            Record::from_rdata(owner, 30, RData::A(A::new(10, 0, 0, 1))),
        ];
        let before = answers.clone();
        shuffle_addresses(&mut answers);
        assert_eq!(answers, before);
    }
}
