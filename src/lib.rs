//! vmnet-operator: gives virtual machines their network identity on a VyOS router.
//!
//! The binary's subcommands live in [`cli`]; the API types in the `vmnet-api` crate; the
//! allocators in `vmnet-core`; the pure steps of a sync (render, desired rules, tenant
//! check, commit batching, conditions) in `vmnet-plan`; the router client in `vyos-client`.
//! Here: the controllers, the per-router [`writer`] and the process around them ([`run`],
//! [`admin`], [`metrics`]).

pub mod admin;
pub mod backup;
pub mod backup_cmd;
pub mod check;
pub mod cli;
pub mod context;
pub mod controller;
pub mod crdgen;
pub mod metrics;
pub mod preview;
pub mod run;
pub mod triggers;
pub mod writer;
