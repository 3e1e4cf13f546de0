//! Allocators: internal addresses, external ports and router rule numbers.
//!
//! The first step of every reconcile (nothing is programmed before its values are
//! allocated and recorded in status). Every allocator is plain data behind `&mut self`:
//! the controller rebuilds it from the API server's existing allocations before the first new
//! allocation, then asks it for values. Nothing here enumerates a pool: free values are found
//! by walking the (merged) allocated runs from a cursor, and counts come from interval
//! arithmetic, so a `/64` costs what a `/30` costs.

mod address;
mod address_pools;
mod claimant;
mod error;
mod port;
mod port_pools;
mod ranges;
mod report;
mod rule;
mod select;
mod space;

pub use address::{AddressPool, AddressPoolSpec, AddressRequest, IpFamily, PoolCounts};
pub use address_pools::{AddressPools, Assigned};
pub use claimant::Claimant;
pub use error::{AllocError, OutsideReason};
pub use port::{PortAllocation, PortCounts, PortPool, PortPoolSpec, PortProtocol, PortRequest};
pub use port_pools::PortPools;
pub use report::{OutOfRange, RebuildReport};
pub use rule::{RULE_NUMBER_MAX, RULE_NUMBER_MIN, RuleNumbers};
pub use select::{PoolPolicy, choose_pools};
