//! The truncation rule for UDP replies: a reply longer than the client allows keeps the
//! longest run of whole records from the start that fits, then its OPT record, with header
//! counts that match. Records are cut from the end, so every compression pointer that stays
//! points at bytes that stay: the cut reply is compressed exactly as the whole one.
//!
//! TC is set when an answer or authority record had to go. Additional records are extra
//! information: leaving some out does not set TC (RFC 2181 §9).

use super::{TYPE_OPT, record_at, skip_name, u16_at};

/// One record's place in a message.
#[derive(Clone, Copy)]
struct Place {
    end: usize,
    /// 0 answer, 1 authority, 2 additional.
    section: usize,
}

/// Cuts the encoded message `msg` to at most `limit` bytes at a record boundary, as the
/// module says. Returns whether anything was cut. A message whose records cannot be read is
/// cut to its header and question, with TC set.
pub fn fit(msg: &mut Vec<u8>, limit: usize) -> bool {
    if msg.len() <= limit {
        return false;
    }
    if cut(msg, limit).is_none() {
        // Not a message this server wrote whole: keep what is certainly sound.
        let end = question_end(msg).unwrap_or(12).min(msg.len());
        msg.truncate(end);
        if let Some(counts) = msg.get_mut(6..12) {
            counts.fill(0);
        }
        set_tc(msg);
    }
    true
}

fn set_tc(msg: &mut [u8]) {
    if let Some(flags) = msg.get_mut(2) {
        *flags |= 0x02;
    }
}

/// The end of the question section.
fn question_end(msg: &[u8]) -> Option<usize> {
    let mut pos = 12;
    for _ in 0..u16_at(msg, 4)? {
        pos = skip_name(msg, pos)? + 4;
    }
    (pos <= msg.len()).then_some(pos)
}

fn cut(msg: &mut Vec<u8>, limit: usize) -> Option<()> {
    let counts = [u16_at(msg, 6)?, u16_at(msg, 8)?, u16_at(msg, 10)?];
    let start = question_end(msg)?;
    // Every record's end, and the OPT record's bytes if there is one.
    let mut places = Vec::with_capacity(counts.iter().map(|c| usize::from(*c)).sum());
    let mut opt: Option<(usize, usize, usize)> = None;
    let mut pos = start;
    for (section, count) in counts.iter().enumerate() {
        for _ in 0..*count {
            let begin = pos;
            let record = record_at(msg, pos)?;
            pos = record.end;
            if section == 2 && record.rtype == TYPE_OPT && opt.is_none() {
                opt = Some((begin, pos, places.len()));
            } else {
                places.push(Place { end: pos, section });
            }
        }
    }
    // Records after the OPT would move if it moved: the kept run stops before it.
    let (opt_bytes, before_opt) = match opt {
        Some((b, e, index)) => (msg.get(b..e)?.to_vec(), index),
        None => (Vec::new(), places.len()),
    };
    let room = limit.checked_sub(opt_bytes.len());
    let kept = places
        .get(..before_opt)?
        .iter()
        .take_while(|p| room.is_some_and(|r| p.end <= r))
        .count();
    let end = match kept {
        0 => start,
        n => places.get(n - 1)?.end,
    };
    let mut new_counts = [0u16; 3];
    for p in places.get(..kept)? {
        new_counts[p.section] += 1;
    }
    let dropped_needed = places.get(kept..)?.iter().any(|p| p.section < 2);
    msg.truncate(end);
    if room.is_some_and(|r| end <= r) && opt.is_some() {
        msg.extend_from_slice(&opt_bytes);
        new_counts[2] += 1;
    }
    for (i, c) in new_counts.iter().enumerate() {
        msg.get_mut(6 + 2 * i..8 + 2 * i)?
            .copy_from_slice(&c.to_be_bytes());
    }
    if dropped_needed {
        set_tc(msg);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    use super::*;

    fn message(answers: usize, additionals: usize, edns: bool) -> Vec<u8> {
        let name = Name::from_ascii("big.data.svc.cluster.local.").unwrap();
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name.clone(), RecordType::A));
        for i in 0..answers {
            let ip = Ipv4Addr::new(10, 0, (i / 256) as u8, (i % 256) as u8);
            m.add_answer(Record::from_rdata(name.clone(), 30, RData::A(ip.into())));
        }
        for i in 0..additionals {
            let host = Name::from_ascii(format!("h{i}.big.data.svc.cluster.local.")).unwrap();
            m.add_additional(Record::from_rdata(
                host,
                30,
                RData::A(Ipv4Addr::LOCALHOST.into()),
            ));
        }
        if edns {
            m.edns = Some(Edns::new());
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn a_short_message_is_left_alone() {
        let mut m = message(3, 0, false);
        let before = m.clone();
        assert!(!fit(&mut m, 512));
        assert_eq!(m, before);
    }

    #[test]
    fn a_long_answer_ends_at_a_record_boundary_with_tc() {
        let whole = message(100, 0, false);
        let mut m = whole.clone();
        assert!(fit(&mut m, 512));
        assert!(m.len() <= 512);
        // Every kept byte is the whole message's: same compression.
        assert_eq!(m[12..], whole[12..m.len()]);
        let parsed = Message::from_vec(&m).unwrap();
        assert!(parsed.metadata.truncation);
        // Header and question, then as many 16-byte records (pointing at the question) as fit.
        let q = question_end(&m).unwrap();
        assert_eq!(parsed.answers.len(), (512 - q) / 16);
        assert_eq!(m.len(), q + 16 * parsed.answers.len());
    }

    #[test]
    fn the_opt_record_survives_the_cut() {
        let mut m = message(100, 0, true);
        assert!(fit(&mut m, 512));
        let parsed = Message::from_vec(&m).unwrap();
        assert!(parsed.metadata.truncation);
        assert!(parsed.edns.is_some());
        assert!(m.len() <= 512);
        let q = question_end(&m).unwrap();
        assert_eq!(parsed.answers.len(), (512 - q - 11) / 16);
        assert_eq!(m.len(), q + 16 * parsed.answers.len() + 11);
    }

    #[test]
    fn cut_additionals_do_not_set_tc() {
        let mut m = message(2, 40, true);
        assert!(fit(&mut m, 512));
        let parsed = Message::from_vec(&m).unwrap();
        assert!(!parsed.metadata.truncation);
        assert_eq!(parsed.answers.len(), 2);
        assert!(parsed.additionals.len() < 40);
        assert!(parsed.edns.is_some());
    }

    #[test]
    fn an_unreadable_message_keeps_its_header_and_question() {
        let mut m = message(100, 0, false);
        // Claim one more answer than there is.
        m[7] = m[7].wrapping_add(1);
        assert!(fit(&mut m, 512));
        let parsed = Message::from_vec(&m).unwrap();
        assert!(parsed.metadata.truncation);
        assert_eq!(parsed.queries.len(), 1);
        assert!(parsed.answers.is_empty());
    }
}
