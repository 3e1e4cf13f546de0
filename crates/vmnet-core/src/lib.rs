//! vmnet-core: the pure logic of vmnet-operator.
//!
//! Nothing here does I/O or needs a runtime: objects go in, decisions come out, and every
//! piece is tested with plain `#[test]`s and proptest properties.
//!
//! - [`alloc`]: allocators for internal addresses ([`alloc::AddressPool`]), external ports
//!   ([`alloc::PortPool`]) and router rule numbers ([`alloc::RuleNumbers`]), and the choice
//!   among many pools ([`alloc::AddressPools`], [`alloc::PortPools`]).

pub mod alloc;
