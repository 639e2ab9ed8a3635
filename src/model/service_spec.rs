//! `ServiceSpec`: a Service's ports (with their target ports) and its selector, packed in
//! one heap block.
//!
//! As a list of `ServicePort` a port is 48 bytes (an inline 24-byte name, a 16-byte target),
//! and the selector was a block of its own; packed, a port is its number, protocol and target
//! (six bytes), its name's length and text, and the selector follows: at 100k Services one
//! 48-byte block where there were an 80-byte and a 32-byte one, and 16 bytes less in the
//! Service itself.

use std::fmt;

use super::pairs::{PairsRef, pack};
use super::{Label, Port, Protocol, ServicePort, TargetPort};

/// A name's length that stands for no name.
const NO_NAME: u32 = u32::MAX;

/// Flags (one byte: `publishNotReadyAddresses` in the lowest bit), the ports' length in bytes
/// (four, little endian), the ports, the selector (`Pairs`' packing); empty for no ports, no
/// selector and no flags. Each port: protocol (one byte), port (two, little endian), the target (a tag
/// byte, then a port number, or a name's length as four bytes and its text), the name's
/// length (four bytes, `NO_NAME` for none) and its text.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ServiceSpec(Box<[u8]>);

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

impl ServiceSpec {
    /// `ports` in order and `selector`. A string of 4 GiB or more (which no API object can
    /// hold) ends its list rather than be miscounted.
    pub fn new<'a>(
        ports: impl IntoIterator<Item = ServicePort>,
        selector: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let ports = pack_ports(ports);
        let selector = pack(selector);
        let mut bytes = Vec::with_capacity(5 + ports.len() + selector.len());
        let Ok(len) = u32::try_from(ports.len()) else {
            return Self::default();
        };
        bytes.push(0);
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&ports);
        bytes.extend_from_slice(&selector);
        Self(bytes.into())
    }

    /// The same with `publishNotReadyAddresses` set to `on`.
    #[must_use]
    pub fn with_publish_not_ready(mut self, on: bool) -> Self {
        if self.0.is_empty() {
            if !on {
                return self;
            }
            self.0 = Box::new([0; 5]);
        }
        if let Some(flags) = self.0.first_mut() {
            *flags = if on { *flags | 1 } else { *flags & !1 };
        }
        self
    }

    /// `publishNotReadyAddresses`: not-ready endpoints are published too.
    pub fn publish_not_ready(&self) -> bool {
        self.0.first().is_some_and(|flags| flags & 1 != 0)
    }

    /// The ports' bytes and the selector's.
    fn parts(&self) -> (&[u8], &[u8]) {
        let rest = self.0.get(1..).unwrap_or_default();
        let Some((len, rest)) = rest.split_first_chunk::<4>() else {
            return (&[], &[]);
        };
        rest.split_at_checked(u32::from_le_bytes(*len) as usize)
            .unwrap_or((rest, &[]))
    }

    /// Every port, in order.
    pub fn ports(&self) -> impl Iterator<Item = ServicePort> + '_ {
        let mut rest: &[u8] = self.parts().0;
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
                    protocol: Protocol::from_code(protocol),
                    port,
                },
                target,
            })
        })
    }

    /// The label selector; empty means the Service selects no Pods.
    pub fn selector(&self) -> PairsRef<'_> {
        PairsRef::new(self.parts().1)
    }
}

/// Packs ports in order (`ServiceSpec`'s layout).
fn pack_ports(ports: impl IntoIterator<Item = ServicePort>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for p in ports {
        let start = bytes.len();
        bytes.push(p.port.protocol.code());
        bytes.extend_from_slice(&p.port.port.to_le_bytes());
        let target = match &p.target {
            TargetPort::Number(n) => {
                bytes.push(0);
                bytes.extend_from_slice(&n.to_le_bytes());
                Some(())
            }
            TargetPort::Name(name) => {
                bytes.push(1);
                put_text(&mut bytes, name)
            }
        };
        let name = match &p.port.name {
            None => {
                bytes.extend_from_slice(&NO_NAME.to_le_bytes());
                Some(())
            }
            Some(name) if name.len() < NO_NAME as usize => put_text(&mut bytes, name),
            Some(_) => None,
        };
        if target.is_none() || name.is_none() {
            // A port that cannot be written ends the list, whole ports only.
            bytes.truncate(start);
            break;
        }
    }
    bytes
}

impl fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSpec")
            .field("ports", &self.ports().collect::<Vec<_>>())
            .field("selector", &self.selector())
            .field("publish_not_ready", &self.publish_not_ready())
            .finish()
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
        let selector = [("app", "web"), ("tier", "")];
        let spec = ServiceSpec::new(built.clone(), selector);
        assert_eq!(spec.ports().collect::<Vec<_>>(), built);
        assert_eq!(spec.selector().iter().collect::<Vec<_>>(), selector);
        let no_selector = ServiceSpec::new(built.clone(), []);
        assert_eq!(no_selector.ports().count(), 3);
        assert!(no_selector.selector().is_empty());
        let no_ports = ServiceSpec::new([], selector);
        assert_eq!(no_ports.ports().count(), 0);
        assert_eq!(no_ports.selector().iter().count(), 2);
        assert_eq!(ServiceSpec::default().ports().count(), 0);
        assert!(ServiceSpec::default().selector().is_empty());
        assert_ne!(spec, ServiceSpec::new(built[..2].to_vec(), selector));

        let publishing = spec.clone().with_publish_not_ready(true);
        assert!(publishing.publish_not_ready() && !spec.publish_not_ready());
        assert_eq!(publishing.ports().collect::<Vec<_>>(), built);
        assert_eq!(publishing.selector().iter().collect::<Vec<_>>(), selector);
        assert_ne!(publishing, spec);
        assert_eq!(publishing.with_publish_not_ready(false), spec);
        let bare = ServiceSpec::default().with_publish_not_ready(true);
        assert!(bare.publish_not_ready() && bare.ports().count() == 0);
        assert!(bare.selector().is_empty());
        assert!(!ServiceSpec::default().publish_not_ready());
    }

    #[test]
    fn a_service_is_ninety_six_bytes() {
        // The key's two inline labels (48), the kind (24), this block (16) and the boxed
        // external addresses (8): `publishNotReadyAddresses` lives in the block's flags.
        assert_eq!(std::mem::size_of::<super::super::Service>(), 96);
    }
}
