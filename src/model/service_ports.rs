//! `ServicePorts`: a Service's ports and their target ports packed in one heap block.
//!
//! As a list of `ServicePort` a port is 48 bytes (an inline 24-byte name, a 16-byte target);
//! packed, it is its number, protocol and target (six bytes), its name's length and text, at
//! 100k Services a 32-byte block where the list was an 80-byte one.

use std::fmt;

use super::{Label, Port, Protocol, ServicePort, TargetPort};

/// A name's length that stands for no name.
const NO_NAME: u32 = u32::MAX;

/// Ports in order. Each: protocol (one byte), port (two, little endian), the target (a tag
/// byte, then a port number, or a name's length as four bytes and its text), the name's
/// length (four bytes, `NO_NAME` for none) and its text.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ServicePorts(Box<[u8]>);

fn protocol_byte(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
        Protocol::Sctp => 2,
    }
}

fn protocol_of(b: u8) -> Protocol {
    match b {
        1 => Protocol::Udp,
        2 => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

/// Reads `N` bytes off the front of `rest`.
fn take<'a, const N: usize>(rest: &mut &'a [u8]) -> Option<&'a [u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(head)
}

/// Reads a length and that much text off the front of `rest`.
fn text<'a>(rest: &mut &'a [u8], len: u32) -> Option<&'a str> {
    let (text, tail) = rest.split_at_checked(len as usize)?;
    *rest = tail;
    // Written from `&str`s, so always valid UTF-8.
    std::str::from_utf8(text).ok()
}

fn put_text(bytes: &mut Vec<u8>, s: &str) -> Option<()> {
    bytes.extend_from_slice(&u32::try_from(s.len()).ok()?.to_le_bytes());
    bytes.extend_from_slice(s.as_bytes());
    Some(())
}

impl ServicePorts {
    /// Whether there are no ports.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every port, in order.
    pub fn iter(&self) -> impl Iterator<Item = ServicePort> + '_ {
        let mut rest: &[u8] = &self.0;
        std::iter::from_fn(move || {
            let [protocol] = *take::<1>(&mut rest)?;
            let port = u16::from_le_bytes(*take::<2>(&mut rest)?);
            let target = match take::<1>(&mut rest)? {
                [0] => TargetPort::Number(u16::from_le_bytes(*take::<2>(&mut rest)?)),
                _ => {
                    let len = u32::from_le_bytes(*take::<4>(&mut rest)?);
                    TargetPort::Name(text(&mut rest, len)?.into())
                }
            };
            let name = match u32::from_le_bytes(*take::<4>(&mut rest)?) {
                NO_NAME => None,
                len => Some(Label::from(text(&mut rest, len)?)),
            };
            Some(ServicePort {
                port: Port {
                    name,
                    protocol: protocol_of(protocol),
                    port,
                },
                target,
            })
        })
    }

    /// The ports, without their targets.
    pub fn ports(&self) -> Vec<Port> {
        self.iter().map(|p| p.port).collect()
    }
}

impl FromIterator<ServicePort> for ServicePorts {
    /// Ports in order; a string of 4 GiB or more (which no API object can hold) ends the
    /// list rather than be miscounted.
    fn from_iter<I: IntoIterator<Item = ServicePort>>(iter: I) -> Self {
        let mut bytes = Vec::new();
        for p in iter {
            let mut one = vec![protocol_byte(p.port.protocol)];
            one.extend_from_slice(&p.port.port.to_le_bytes());
            let written = (|| {
                match &p.target {
                    TargetPort::Number(n) => {
                        one.push(0);
                        one.extend_from_slice(&n.to_le_bytes());
                    }
                    TargetPort::Name(name) => {
                        one.push(1);
                        put_text(&mut one, name)?;
                    }
                }
                match &p.port.name {
                    None => one.extend_from_slice(&NO_NAME.to_le_bytes()),
                    Some(name) if name.len() < NO_NAME as usize => put_text(&mut one, name)?,
                    Some(_) => return None,
                }
                Some(())
            })();
            if written.is_none() {
                break;
            }
            bytes.extend_from_slice(&one);
        }
        Self(bytes.into())
    }
}

impl From<Vec<ServicePort>> for ServicePorts {
    fn from(list: Vec<ServicePort>) -> Self {
        list.into_iter().collect()
    }
}

impl fmt::Debug for ServicePorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_back_as_built() {
        let built = vec![
            ServicePort {
                port: Port {
                    name: Some("http".into()),
                    protocol: Protocol::Tcp,
                    port: 80,
                },
                target: TargetPort::Name("web".into()),
            },
            ServicePort {
                port: Port {
                    name: None,
                    protocol: Protocol::Udp,
                    port: 53,
                },
                target: TargetPort::Number(5353),
            },
            ServicePort {
                port: Port {
                    name: Some(
                        String::from("a-rather-long-port-name-past-inline")
                            .as_str()
                            .into(),
                    ),
                    protocol: Protocol::Sctp,
                    port: 9,
                },
                target: TargetPort::Number(9),
            },
        ];
        let packed: ServicePorts = built.clone().into();
        assert_eq!(packed.iter().collect::<Vec<_>>(), built);
        let ports: Vec<Port> = built.iter().map(|p| p.port.clone()).collect();
        assert_eq!(packed.ports(), ports);
        assert!(ServicePorts::default().is_empty());
        assert_eq!(ServicePorts::default().iter().count(), 0);
        assert_ne!(packed, ServicePorts::from(built[..2].to_vec()));
    }
}
