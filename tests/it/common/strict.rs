//! A strict reader of DNS replies, as kdig, dnspython and musl's `ns_initparse` read them: the
//! header counts must match the records, and the message must end exactly after the last
//! one (no trailing bytes). Used by the truncation tests.

/// What a strictly valid reply holds.
#[derive(Debug)]
pub struct Strict {
    /// The TC bit.
    pub truncated: bool,
    /// Answer, authority and additional counts (the OPT record among the additionals).
    pub counts: [u16; 3],
    /// Where the question ends.
    pub question_end: usize,
    /// Owner-name bytes of the first answer record (2 when it is a pointer).
    pub first_owner_len: Option<usize>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("short read at {at} of {}", b.len()))
}

/// The end of the name at `pos`, every pointer checked to point backwards.
fn name_end(b: &[u8], mut pos: usize) -> Result<usize, String> {
    loop {
        let len = *b
            .get(pos)
            .ok_or(format!("name runs past the end at {pos}"))?;
        match len & 0xC0 {
            0 if len == 0 => return Ok(pos + 1),
            0 => pos += 1 + usize::from(len),
            0xC0 => {
                let target = usize::from(u16_at(b, pos)? & 0x3FFF);
                if target >= pos {
                    return Err(format!("pointer at {pos} points forward to {target}"));
                }
                return Ok(pos + 2);
            }
            _ => return Err(format!("bad label type at {pos}")),
        }
    }
}

/// Reads `b` strictly; an error says what a strict parser would reject.
pub fn read(b: &[u8]) -> Result<Strict, String> {
    let qd = u16_at(b, 4)?;
    let counts = [u16_at(b, 6)?, u16_at(b, 8)?, u16_at(b, 10)?];
    let mut pos = 12;
    for _ in 0..qd {
        pos = name_end(b, pos)? + 4;
    }
    let question_end = pos;
    let mut first_owner_len = None;
    for i in 0..counts.iter().map(|c| usize::from(*c)).sum::<usize>() {
        let start = pos;
        pos = name_end(b, pos)?;
        if i == 0 && counts[0] > 0 {
            first_owner_len = Some(pos - start);
        }
        let rdlen = usize::from(u16_at(b, pos + 8)?);
        pos += 10 + rdlen;
        if pos > b.len() {
            return Err(format!(
                "record {i} runs past the end ({pos} > {})",
                b.len()
            ));
        }
    }
    if pos != b.len() {
        return Err(format!("{} bytes of trailing data", b.len() - pos));
    }
    Ok(Strict {
        truncated: b.get(2).is_some_and(|f| f & 0x02 != 0),
        counts,
        question_end,
        first_owner_len,
    })
}
