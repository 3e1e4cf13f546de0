//! The typed model of VyOS DHCP static mappings, `service dhcp-server shared-network-name
//! <N> subnet <CIDR> static-mapping <NAME>`, on VyOS 1.4 (ISC dhcpd: the MAC is
//! `mac-address`) and 1.5 (Kea: `mac`, with `description`, and a `subnet-id` on every
//! subnet).
//!
//! Pure code: no I/O. [`parse_server`] reads the JSON that `showConfig
//! ["service","dhcp-server"]` returns (the mappings, and what the commit checks need to know
//! of their subnets), [`render_mapping`] writes one mapping as `set` ops for a version,
//! [`diff_mappings`] gives the leaf-level ops between two sets of mappings (a changed MAC is
//! one `set`), [`apply_mapping_ops`] plays ops as VyOS would, and [`validate_mappings`] runs
//! the set-time validators and the checks of VyOS's `service_dhcp-server.py` `verify()`
//! that mappings can fail. See docs/vyos-dhcp-firewall.md for the VyOS sources.

mod diff;
mod model;
mod parse;
#[cfg(test)]
mod proptests;
mod render;
mod validate;

pub use diff::{ApplyError, apply_mapping_ops, diff_mappings};
pub use model::{MappingKey, StaticMapping, SubnetKey};
pub use parse::{DhcpServer, LeaseRange, ParseError, Subnet, mappings_to_json, parse_server};
pub use render::{render_mapping, render_mappings};
pub use validate::{DhcpError, unknown_subnets, validate_mappings};

/// `["service", "dhcp-server"]`, the subtree `showConfig` reads.
pub fn dhcp_server_path() -> Vec<String> {
    vec!["service".to_owned(), "dhcp-server".to_owned()]
}
