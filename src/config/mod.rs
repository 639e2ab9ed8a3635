//! Configuration: the flags (`Config`), the YAML file that sets them, their value parsers, the
//! reference table, and what each subsystem is given of it (`settings`).

mod file;
mod flags;
mod mode;
mod parse;
mod reference;
mod settings;

pub use file::{LoadError, Loaded, load};
pub use flags::Config;
pub use mode::Mode;
pub use parse::{
    StubDomain, parse_duration, parse_network, parse_rate, parse_stub_domain, parse_upstream,
};
pub use reference::reference;

// Owned by the modules that use them; here too, where the flags name them.
pub use crate::forward::Policy;
pub use crate::logging::LogFormat;
