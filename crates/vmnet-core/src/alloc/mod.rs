//! Allocators: internal addresses, external ports and router rule numbers.
//!
//! Step 1 of the reconcile (see DESIGN.md). Every allocator is plain data behind `&mut self`:
//! the controller rebuilds it from the API server's existing allocations before the first new
//! allocation, then asks it for values. Nothing here enumerates a pool: free values are found
//! by walking the (merged) allocated runs from a cursor, and counts come from interval
//! arithmetic, so a `/64` costs what a `/30` costs.

mod address;
mod claimant;
mod error;
mod port;
mod ranges;
mod report;
mod rule;
mod select;
mod space;

pub use address::{AddressPool, AddressPoolSpec, AddressRequest, IpFamily, PoolCounts};
pub use claimant::Claimant;
pub use error::{AllocError, OutsideReason};
pub use port::{PortAllocation, PortCounts, PortPool, PortPoolSpec, PortProtocol, PortRequest};
pub use report::{OutOfRange, RebuildReport};
pub use rule::{RULE_NUMBER_MAX, RULE_NUMBER_MIN, RuleNumbers};
pub use select::{AddressPools, Assigned, PoolPolicy, PortPools, choose_pools};
