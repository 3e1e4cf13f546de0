//! `firewall group network-group`: the sets of networks a NAT rule matches through
//! `source group network-group <name>` when one address or prefix is not enough.
//!
//! Pure code, like the rest of this module: [`parse_network_groups`] reads what
//! `showConfig ["firewall","group","network-group"]` returns, [`render_network_group`]
//! writes one group as `set` ops, and [`diff_network_groups`] gives the leaf-level ops
//! from one set of groups to another (a network added or removed is one op).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{ConfigOp, ParseError};

/// One `firewall group network-group <name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkGroup {
    /// `description`.
    pub description: Option<String>,
    /// `network` (a multi leaf): IPv4 prefixes, a single address as `/32`.
    pub networks: BTreeSet<String>,
}

/// The subtree path, as `showConfig` wants it.
pub fn network_groups_path() -> Vec<String> {
    ["firewall", "group", "network-group"]
        .map(str::to_owned)
        .to_vec()
}

/// The path of one group node.
pub fn network_group_path(name: &str) -> Vec<String> {
    let mut p = network_groups_path();
    p.push(name.to_owned());
    p
}

/// Parses `showConfig ["firewall","group","network-group"]` (`{}` when there are none).
/// A one-network group comes back as a string, several as an array.
pub fn parse_network_groups(data: &Value) -> Result<BTreeMap<String, NetworkGroup>, ParseError> {
    let shape = |at: String, expected| ParseError::GroupShape { at, expected };
    let Value::Object(groups) = data else {
        return Err(shape("network-group".to_owned(), "an object"));
    };
    let mut out = BTreeMap::new();
    for (name, body) in groups {
        let Value::Object(fields) = body else {
            return Err(shape(format!("network-group {name}"), "an object"));
        };
        let mut g = NetworkGroup::default();
        for (k, v) in fields {
            match (k.as_str(), v) {
                ("description", Value::String(d)) => g.description = Some(d.clone()),
                ("network", Value::String(n)) => {
                    g.networks.insert(n.clone());
                }
                ("network", Value::Array(items)) => {
                    for i in items {
                        let n = i.as_str().ok_or_else(|| {
                            shape(format!("network-group {name} network"), "strings")
                        })?;
                        g.networks.insert(n.to_owned());
                    }
                }
                ("description" | "network", _) => {
                    return Err(shape(
                        format!("network-group {name} {k}"),
                        "a string or strings",
                    ));
                }
                // Leaves this model does not hold (e.g. `include`) are kept out of it;
                // the operator only reads groups it wrote.
                _ => {}
            }
        }
        out.insert(name.clone(), g);
    }
    Ok(out)
}

/// The `set` ops that create `group` as `name`.
pub fn render_network_group(name: &str, group: &NetworkGroup) -> Vec<ConfigOp> {
    let base = network_group_path(name);
    let leaf = |l: &str| {
        let mut p = base.clone();
        p.push(l.to_owned());
        p
    };
    let mut ops = Vec::new();
    if let Some(d) = &group.description {
        ops.push(ConfigOp::set(leaf("description"), d.clone()));
    }
    for n in &group.networks {
        ops.push(ConfigOp::set(leaf("network"), n.clone()));
    }
    if ops.is_empty() {
        ops.push(ConfigOp::set_node(base));
    }
    ops
}

/// The ops that turn the groups `old` into `new`: a group that goes is one `delete`, a new
/// one is rendered, and a changed one gets only the networks and description that differ.
pub fn diff_network_groups(
    old: &BTreeMap<String, NetworkGroup>,
    new: &BTreeMap<String, NetworkGroup>,
) -> Vec<ConfigOp> {
    let mut ops = Vec::new();
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        match (old.get(name), new.get(name)) {
            (Some(_), None) => ops.push(ConfigOp::delete(network_group_path(name))),
            (None, Some(g)) => ops.extend(render_network_group(name, g)),
            (Some(a), Some(b)) => diff_group(name, a, b, &mut ops),
            (None, None) => {}
        }
    }
    ops
}

fn diff_group(name: &str, a: &NetworkGroup, b: &NetworkGroup, ops: &mut Vec<ConfigOp>) {
    let leaf = |l: &str| {
        let mut p = network_group_path(name);
        p.push(l.to_owned());
        p
    };
    match (&a.description, &b.description) {
        (Some(_), None) => ops.push(ConfigOp::delete(leaf("description"))),
        (x, Some(d)) if x.as_ref() != Some(d) => {
            ops.push(ConfigOp::set(leaf("description"), d.clone()));
        }
        _ => {}
    }
    // Add before removing, so a group never passes through empty within the request.
    for n in b.networks.difference(&a.networks) {
        ops.push(ConfigOp::set(leaf("network"), n.clone()));
    }
    for n in a.networks.difference(&b.networks) {
        ops.push(ConfigOp::delete_value(leaf("network"), n.clone()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn group(desc: Option<&str>, nets: &[&str]) -> NetworkGroup {
        NetworkGroup {
            description: desc.map(str::to_owned),
            networks: nets.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn parses_one_network_as_a_string_and_several_as_a_list() {
        let data = json!({
            "VMNET-1000": {"description": "vmnet:lab/web", "network": ["192.0.2.0/24", "198.51.100.7/32"]},
            "OTHER": {"network": "203.0.113.0/24", "include": "X"}
        });
        let got = parse_network_groups(&data).unwrap();
        assert_eq!(
            got["VMNET-1000"],
            group(Some("vmnet:lab/web"), &["192.0.2.0/24", "198.51.100.7/32"])
        );
        assert_eq!(got["OTHER"], group(None, &["203.0.113.0/24"]));
        assert!(parse_network_groups(&json!({})).unwrap().is_empty());
        assert!(parse_network_groups(&json!({"G": {"network": [1]}})).is_err());
        assert!(parse_network_groups(&json!("x")).is_err());
    }

    #[test]
    fn diff_touches_only_what_changed() {
        let old: BTreeMap<String, NetworkGroup> = [
            (
                "A".to_owned(),
                group(Some("a"), &["10.0.0.0/8", "192.0.2.0/24"]),
            ),
            ("GONE".to_owned(), group(None, &["10.0.0.0/8"])),
        ]
        .into();
        let new: BTreeMap<String, NetworkGroup> = [
            (
                "A".to_owned(),
                group(Some("a"), &["192.0.2.0/24", "198.51.100.0/24"]),
            ),
            ("NEW".to_owned(), group(Some("n"), &["203.0.113.9/32"])),
        ]
        .into();
        let ops: Vec<String> = diff_network_groups(&old, &new)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            ops,
            vec![
                "set firewall group network-group A network '198.51.100.0/24'",
                "delete firewall group network-group A network '10.0.0.0/8'",
                "delete firewall group network-group GONE",
                "set firewall group network-group NEW description 'n'",
                "set firewall group network-group NEW network '203.0.113.9/32'",
            ]
        );
        assert!(diff_network_groups(&new, &new).is_empty());
    }
}
