//! The VyOS HTTP API client and the typed NAT rule model of vmnet-operator.
//!
//! - [`nat`] (always built, pure): parse, render, diff, apply and validate IPv4
//!   `nat destination` / `nat source` rules.
//! - [`dhcp`] (pure): the same for `service dhcp-server` static mappings.
//! - [`firewall`] (pure): the same for `firewall ipv4 forward filter` rules.
//! - [`parse_uptime`] (pure): the duration in `show system uptime`.
//! - [`config_text`] (pure): the curly config format read into a tree, and `set` lines.
//! - With the `http` feature (default): [`VyosClient`], an async client for the
//!   VyOS 1.4/1.5 HTTP API, with typed [`VyosError`]s.
//!
//! See `docs/vyos-client.md` for errors, retries, TLS and what each request does.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod config_text;
pub mod dhcp;
pub mod firewall;
mod leaf;
pub mod nat;
mod uptime;

pub use nat::{ConfigOp, NatKind, NatRule, OpKind};
pub use uptime::parse_uptime;

#[cfg(feature = "http")]
mod client;
#[cfg(feature = "http")]
mod error;
mod secret;
#[cfg(feature = "http")]
mod tls;

#[cfg(feature = "http")]
pub use client::{ClientConfig, Observer, VersionInfo, VyosClient, op_body_len};
#[cfg(feature = "http")]
pub use error::VyosError;
pub use secret::SecretString;
