//! The typed model of VyOS's IPv4 forward filter, `firewall ipv4 forward filter`: its
//! `default-action` and its rules (`rule <n>`), the same on VyOS 1.4 and 1.5 for the
//! leaves the operator writes: `action`, `protocol`, `source`/`destination` `address`,
//! `port` and `group`, `connection-status nat`, `state`, `description`.
//!
//! Pure code: no I/O. [`parse_forward_filter`] reads the JSON that `showConfig
//! ["firewall","ipv4","forward","filter"]` returns, [`render_rule`] writes a rule as `set`
//! ops, [`diff_rules`] gives the leaf-level ops between two rule sets, [`apply_rule_ops`]
//! plays ops as VyOS would, and [`validate_rule`] runs the set-time validators and the
//! checks of VyOS's `firewall.py` `verify_rule()`. See docs/vyos-dhcp-firewall.md.

mod diff;
mod model;
mod parse;
#[cfg(test)]
mod proptests;
mod render;
mod validate;

pub use diff::{ApplyError, apply_rule_ops, diff_rules};
pub use model::{ForwardFilter, ForwardRule};
pub use parse::{ParseError, forward_filter_to_json, parse_forward_filter};
pub use render::{render_rule, render_rules};
pub use validate::{validate_rule, validate_rule_for};

/// `["firewall", "ipv4", "forward", "filter"]`, the chain `showConfig` reads.
pub fn forward_filter_path() -> Vec<String> {
    ["firewall", "ipv4", "forward", "filter"]
        .map(str::to_owned)
        .to_vec()
}

/// The path of one rule node.
pub fn rule_path(number: u32) -> Vec<String> {
    let mut p = forward_filter_path();
    p.extend(["rule".to_owned(), number.to_string()]);
    p
}
