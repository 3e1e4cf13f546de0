//! The typed model of VyOS IPv4 `nat destination` and `nat source` rules.
//!
//! Pure code: no I/O. The pieces follow one rule's life:
//! [`parse_rules`] reads the JSON that `showConfig ["nat", "<kind>"]` returns,
//! [`render_rule`] turns a rule into lean `set` operations, [`diff`] computes the
//! minimal leaf-level set/delete operations between two rule sets, [`apply_ops`]
//! plays operations on a rule set the way VyOS would, and [`validate`] runs the
//! checks that VyOS's set-time validators and NAT commit script apply
//! ([`validate_network_group`] those of a `firewall group network-group`).

mod diff;
mod group;
mod model;
mod parse;
#[cfg(test)]
mod proptests;
mod render;
// One copy of VyOS's service names for the client and the simulator: the simulator's file
// (both crates are built from this workspace only; neither is published).
#[path = "../../../vyos-sim/src/services.rs"]
mod services;
pub(crate) mod validate;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use diff::{ApplyError, apply_ops, diff};
pub use group::{
    NetworkGroup, diff_network_groups, network_group_path, network_groups_path,
    parse_network_groups, render_network_group, validate_network_group,
};
pub use model::{
    AddressMatch, GroupMatch, InterfaceMatch, LeafValue, LoadBalance, NatRule, Part, Protocol,
    Sparse, Translation,
};
pub use parse::{ParseError, is_empty_path_error, parse_rules, parse_rules_owned, rules_to_json};
pub use render::{render_rule, render_rules};
pub(crate) use validate::in_either_version;
pub use validate::{RuleError, SchemaVersion, validate, validate_for};

/// Which NAT table a rule lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NatKind {
    /// `nat destination` (port forwards, DNAT).
    Destination,
    /// `nat source` (SNAT, masquerade).
    Source,
}

impl NatKind {
    /// The config word: `destination` or `source`.
    pub fn as_str(self) -> &'static str {
        match self {
            NatKind::Destination => "destination",
            NatKind::Source => "source",
        }
    }

    /// The subtree path, `["nat", "<kind>"]`, as `showConfig` wants it.
    pub fn config_path(self) -> Vec<String> {
        vec!["nat".to_owned(), self.as_str().to_owned()]
    }

    /// The path of one rule node, `["nat", "<kind>", "rule", "<n>"]`.
    pub fn rule_path(self, number: u32) -> Vec<String> {
        vec![
            "nat".to_owned(),
            self.as_str().to_owned(),
            "rule".to_owned(),
            number.to_string(),
        ]
    }

    /// How VyOS's NAT script names the table in its errors (`Destination`, `Source`).
    pub(crate) fn title(self) -> &'static str {
        match self {
            NatKind::Destination => "Destination",
            NatKind::Source => "Source",
        }
    }
}

impl fmt::Display for NatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `set` or `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Create a node or leaf; replaces a single-value leaf, adds to a multi-value leaf.
    Set,
    /// Remove a node (and all below it), a leaf, or one value of a multi-value leaf.
    Delete,
}

/// One configuration command, serialised exactly as one element of the
/// `/configure` `commands` list: `{"op":"set","path":[...],"value":"..."}`.
///
/// `path` names the node or leaf; `value` (when present) is the leaf value. VyOS
/// also accepts the value as the last path element; keeping it apart lets
/// [`apply_ops`] work without a schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConfigOp {
    /// `set` or `delete`.
    pub op: OpKind,
    /// Config path words, e.g. `["nat","destination","rule","100","translation","port"]`.
    pub path: Vec<String>,
    /// The leaf value; `None` for nodes, valueless leaves and whole-leaf deletes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl ConfigOp {
    /// A `set` of `path` with `value`.
    pub fn set(path: Vec<String>, value: impl Into<String>) -> Self {
        ConfigOp {
            op: OpKind::Set,
            path,
            value: Some(value.into()),
        }
    }

    /// A `set` of a node or valueless leaf.
    pub fn set_node(path: Vec<String>) -> Self {
        ConfigOp {
            op: OpKind::Set,
            path,
            value: None,
        }
    }

    /// A `delete` of a node or leaf (and everything below it).
    pub fn delete(path: Vec<String>) -> Self {
        ConfigOp {
            op: OpKind::Delete,
            path,
            value: None,
        }
    }

    /// A `delete` of one value of a (multi-value) leaf.
    pub fn delete_value(path: Vec<String>, value: impl Into<String>) -> Self {
        ConfigOp {
            op: OpKind::Delete,
            path,
            value: Some(value.into()),
        }
    }
}

impl fmt::Display for ConfigOp {
    /// The CLI form: `set nat destination rule 100 protocol 'tcp'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.op {
            OpKind::Set => "set",
            OpKind::Delete => "delete",
        };
        write!(f, "{verb} {}", self.path.join(" "))?;
        if let Some(v) = &self.value {
            write!(f, " '{v}'")?;
        }
        Ok(())
    }
}
