//! `firewall group network-group`: the sets of networks a NAT rule matches through
//! `source group network-group <name>` when one address or prefix is not enough.
//!
//! Pure code, like the rest of this module: [`parse_network_groups`] reads what
//! `showConfig ["firewall","group","network-group"]` returns, [`render_network_group`]
//! writes one group as `set` ops, [`diff_network_groups`] gives the leaf-level ops
//! from one set of groups to another (a network added or removed is one op), and
//! [`validate_network_group`] checks a group as VyOS would before it is written.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::validate::{forbidden_chars, valid_v4_prefix};
use super::{ConfigOp, ParseError, RuleError};

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

/// Checks the group `name` the way VyOS (1.4 and 1.5 alike) would when
/// [`render_network_group`]'s ops are set and committed: vyos-1x
/// `interface-definitions/firewall.xml.in`'s `network-group` with its name constraint
/// (`constraint/alpha-numeric-hyphen-underscore-dot.xml.i`), `generic-description.xml.i`
/// and the `ipv4-prefix` validator on each network. Fields are `name`, `description` and
/// `network`.
///
/// The name regex, `[-_a-zA-Z0-9][\w\-\.\+]*`, takes a `+`, but the commit then fails:
/// the group becomes the nft set `N_<name>`, and nft's names have no `+`. Refused here.
pub fn validate_network_group(name: &str, group: &NetworkGroup) -> Result<(), Vec<RuleError>> {
    let mut errs = Vec::new();
    let mut err = |field: &str, message: String| {
        errs.push(RuleError {
            field: field.to_owned(),
            message,
        })
    };
    let path = |leaf: &str| {
        format!("Configuration path: [firewall group network-group {name} {leaf}] requires a value")
    };
    if let Some(msg) = forbidden_chars(name) {
        err("name", msg.to_owned());
    } else if name.chars().any(char::is_whitespace) {
        err(
            "name",
            "Tag node value name must not contain whitespace".into(),
        );
    } else if !valid_group_name(name) {
        err(
            "name",
            "Name of firewall group can only contain alphanumeric letters, hyphen, underscores and dot".into(),
        );
    }
    if let Some(d) = &group.description {
        if let Some(msg) = forbidden_chars(d) {
            err("description", msg.to_owned());
        }
        if d.is_empty() {
            err("description", path("description"));
        }
        // `.{0,255}`, counted in bytes by validate-value's PCRE.
        if d.len() > 255 {
            err(
                "description",
                "Description too long (limit 255 characters)".into(),
            );
        }
    }
    for n in &group.networks {
        if let Some(msg) = forbidden_chars(n) {
            err("network", msg.to_owned());
        }
        if n.is_empty() {
            err("network", path("network"));
        } else if !valid_v4_prefix(n) {
            err("network", format!("{n} is not a valid IPv4 prefix"));
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// `[-_a-zA-Z0-9][\w\-\.\+]*` (PCRE's `\w` is ASCII here), less the `+`.
fn valid_group_name(name: &str) -> bool {
    let mut b = name.bytes();
    let ok = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    b.next().is_some_and(ok) && b.all(|c| ok(c) || c == b'.')
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
    fn validation_follows_vyos() {
        let ok = |name: &str, g: &NetworkGroup| validate_network_group(name, g).is_ok();
        let g = group(Some("vmnet:lab/web"), &["192.0.2.0/24", "198.51.100.7/32"]);
        assert!(ok("VMNET-1000", &g));
        assert!(ok("-starts.with_hyphen", &g));
        assert!(ok(&"x".repeat(40), &g), "VyOS sets no length limit");
        assert!(!ok("a+b", &g), "nft refuses the set name");
        assert!(!ok(".dot", &g));
        assert!(!ok("!neg", &g));
        assert!(!ok("sp ace", &g));
        assert!(!ok("", &g));
        assert!(ok("E", &NetworkGroup::default()));
        for bad in [
            "192.0.2.1",
            "192.0.2.1/24",
            "192.0.2.0/33",
            "192.0.2.0/024",
            "",
        ] {
            assert!(!ok("G", &group(None, &[bad])), "{bad}");
        }
        assert!(!ok("G", &group(Some(&"é".repeat(128)), &[])));
        assert!(!ok("G", &group(Some(""), &[])));
        assert_eq!(
            validate_network_group("G", &group(Some("it's"), &[]))
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec!["description: Cannot use the single quote (') character in a value string"]
        );
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
