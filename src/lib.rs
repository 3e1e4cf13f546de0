//! vmnet-operator: gives virtual machines their network identity on a VyOS router.
//!
//! The binary's subcommands live in [`cli`]; the API types in the `vmnet-api` crate; the
//! allocators in `vmnet-core`; the router client in `vyos-client`. Here: the pure steps of a
//! reconcile ([`render`], [`desired`], [`tenant`], [`conditions`]), the controllers, the
//! per-router [`writer`] and the process around them ([`run`], [`admin`], [`metrics`]).

pub mod admin;
pub mod cli;
pub mod commit;
pub mod conditions;
pub mod controller;
pub mod crdgen;
pub mod desired;
pub mod metrics;
pub mod render;
pub mod run;
pub mod sync;
pub mod tenant;
pub mod writer;
