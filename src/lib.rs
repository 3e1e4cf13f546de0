//! vmnet-operator: gives virtual machines their network identity on a VyOS router.
//!
//! The binary's subcommands live in [`cli`]; the API types in the `vmnet-api` crate.

pub mod cli;
pub mod crdgen;
