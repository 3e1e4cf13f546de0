//! The pure steps of a router sync, kept apart from I/O: nothing here talks to a router or
//! to Kubernetes, and the crate does not depend on tokio or the kube client.
//!
//! - [`backup`]: config backups: checksum, names, schedule, retention, diff;
//! - [`dhcp`]: DHCP static mappings for VmNetworks with a MAC: placement, clashes, ops;
//! - [`firewall`]: forward-filter accept rules for the forwarded traffic, and their order;
//! - [`hairpin`]: NAT reflection: the two companion rules of a forward that has it;
//! - [`render`]: one PortRule as a VyOS NAT rule (and the network-group its sources need);
//! - [`tenant`]: may a PortRule forward to its internal address;
//! - [`desired`]: what one router should hold, with refusals a person can act on;
//! - [`plan`]: from what was observed on the router and what is desired, the change as a
//!   value: per rule add / change / remove / refused / drifted, and the ordered ops;
//! - [`commit`]: how a change is cut into requests and a refused one narrowed down;
//! - [`conditions`]: the status conditions every writer of status uses;
//! - [`health`]: what a health probe's uptime says: the boot time, and whether it rebooted.

pub mod backup;
pub mod commit;
pub mod conditions;
pub mod desired;
pub mod dhcp;
pub mod firewall;
pub mod hairpin;
pub mod health;
pub mod plan;
pub mod render;
pub mod tenant;

#[cfg(test)]
mod fixtures;
