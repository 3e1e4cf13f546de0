//! Reading `showConfig ["service","dhcp-server"]`, and writing mappings back in that shape.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::model::{MappingKey, StaticMapping, SubnetKey, from_leaves, leaves};
use crate::leaf;
use crate::nat::SchemaVersion;

/// Why a `showConfig` answer could not be read as a DHCP server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A node that should be an object is not.
    #[error("expected a JSON object at {at}")]
    NotAnObject {
        /// Where (space-joined path).
        at: String,
    },
    /// A value that is not a string, a list of strings or `{}`.
    #[error("{at}: values must be strings, lists of strings or {{}}")]
    NotAString {
        /// Where (space-joined path).
        at: String,
    },
    /// A known leaf with the wrong shape.
    #[error("{at}: expected {expected}")]
    Shape {
        /// Where (space-joined path).
        at: String,
        /// What VyOS renders there.
        expected: &'static str,
    },
}

/// A lease range's ends, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRange {
    /// `start`.
    pub start: Option<String>,
    /// `stop`.
    pub stop: Option<String>,
}

/// What the commit checks need to know of a subnet besides its mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subnet {
    /// `subnet-id` (1.5).
    pub subnet_id: Option<String>,
    /// `range <name>`, by name.
    pub ranges: BTreeMap<String, LeaseRange>,
    /// `exclude` (a multi leaf), in the router's order.
    pub exclude: Vec<String>,
}

/// The router's `service dhcp-server`, as far as static mappings are concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhcpServer {
    /// `service dhcp-server disable`: VyOS then runs none of its commit checks.
    pub disabled: bool,
    /// Every subnet, by where it sits.
    pub subnets: BTreeMap<SubnetKey, Subnet>,
    /// Every static mapping.
    pub mappings: BTreeMap<MappingKey, StaticMapping>,
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, ParseError> {
    v.as_object()
        .ok_or_else(|| ParseError::NotAnObject { at: at.to_owned() })
}

fn strings(v: &Value, at: &str) -> Result<Vec<String>, ParseError> {
    let bad = || ParseError::NotAString { at: at.to_owned() };
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

fn one(v: &Value, at: &str) -> Result<String, ParseError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| ParseError::Shape {
            at: at.to_owned(),
            expected: "a string",
        })
}

/// Parses the `data` of `showConfig ["service","dhcp-server"]`. `null` or `{}` (the "path
/// is empty" answer, as the client passes it on) is no server. Either MAC leaf is read as
/// [`StaticMapping::mac`]; other nodes than those the model holds are ignored.
pub fn parse_server(data: &Value) -> Result<DhcpServer, ParseError> {
    let mut out = DhcpServer::default();
    if data.is_null() {
        return Ok(out);
    }
    let top = object(data, "service dhcp-server")?;
    out.disabled = top.contains_key("disable");
    let Some(networks) = top.get("shared-network-name") else {
        return Ok(out);
    };
    for (network, body) in object(networks, "shared-network-name")? {
        let at = format!("shared-network-name {network}");
        let Some(subnets) = object(body, &at)?.get("subnet") else {
            continue;
        };
        for (subnet, body) in object(subnets, &format!("{at} subnet"))? {
            let at = format!("{at} subnet {subnet}");
            let key = SubnetKey::new(network, subnet);
            let fields = object(body, &at)?;
            let mut facts = Subnet::default();
            if let Some(id) = fields.get("subnet-id") {
                facts.subnet_id = Some(one(id, &format!("{at} subnet-id"))?);
            }
            if let Some(ex) = fields.get("exclude") {
                facts.exclude = strings(ex, &format!("{at} exclude"))?;
            }
            if let Some(ranges) = fields.get("range") {
                for (name, r) in object(ranges, &format!("{at} range"))? {
                    let at = format!("{at} range {name}");
                    let r = object(r, &at)?;
                    let end = |k: &str| r.get(k).map(|v| one(v, &format!("{at} {k}"))).transpose();
                    facts.ranges.insert(
                        name.clone(),
                        LeaseRange {
                            start: end("start")?,
                            stop: end("stop")?,
                        },
                    );
                }
            }
            if let Some(mappings) = fields.get("static-mapping") {
                for (name, body) in object(mappings, &format!("{at} static-mapping"))? {
                    let mkey = MappingKey::new(network, subnet, name);
                    let at = mkey.path().join(" ");
                    let flat =
                        leaf::flatten(object(body, &at)?).map_err(|p| ParseError::NotAString {
                            at: format!("{at} {p}"),
                        })?;
                    out.mappings.insert(mkey.clone(), from_leaves(&mkey, flat)?);
                }
            }
            out.subnets.insert(key, facts);
        }
    }
    Ok(out)
}

/// The mappings in the shape `showConfig ["service","dhcp-server"]` gives them (with the
/// version's MAC leaf), and nothing else of the server: the inverse of [`parse_server`]'s
/// `mappings`.
pub fn mappings_to_json(
    mappings: &BTreeMap<MappingKey, StaticMapping>,
    version: SchemaVersion,
) -> Value {
    let mut tree = leaf::Leaves::new();
    for (key, m) in mappings {
        let base = [
            "shared-network-name",
            &key.shared_network,
            "subnet",
            &key.subnet,
            "static-mapping",
            &key.name,
        ]
        .map(str::to_owned);
        let ls = leaves(m, version);
        if ls.is_empty() {
            tree.insert(base.to_vec(), crate::nat::LeafValue::Flag);
        }
        for (rel, v) in ls {
            tree.insert(base.iter().chain(&rel).cloned().collect(), v);
        }
    }
    leaf::to_json(tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_versions() {
        let data = json!({"shared-network-name": {"LAN": {"subnet": {"192.0.2.0/24": {
        "subnet-id": "1",
        "exclude": ["192.0.2.5", "192.0.2.6"],
        "range": {"r": {"start": "192.0.2.100", "stop": "192.0.2.199"}},
        "static-mapping": {
            "vm1": {"ip-address": "192.0.2.10", "mac": "52:54:00:00:00:01",
                    "description": "vmnet:ns/vm1"},
            "vm2": {"ip-address": "192.0.2.11", "mac-address": "52:54:00:00:00:02",
                    "disable": {}, "static-mapping-parameters": "option foo 1;"}
        }}}}}});
        let s = parse_server(&data).unwrap();
        assert!(!s.disabled);
        let sub = &s.subnets[&SubnetKey::new("LAN", "192.0.2.0/24")];
        assert_eq!(sub.subnet_id.as_deref(), Some("1"));
        assert_eq!(sub.exclude.len(), 2);
        assert_eq!(sub.ranges["r"].stop.as_deref(), Some("192.0.2.199"));
        let vm1 = &s.mappings[&MappingKey::new("LAN", "192.0.2.0/24", "vm1")];
        assert_eq!(vm1.mac.as_deref(), Some("52:54:00:00:00:01"));
        assert_eq!(vm1.description.as_deref(), Some("vmnet:ns/vm1"));
        let vm2 = &s.mappings[&MappingKey::new("LAN", "192.0.2.0/24", "vm2")];
        assert!(vm2.disabled);
        assert_eq!(vm2.mac.as_deref(), Some("52:54:00:00:00:02"));
        assert_eq!(vm2.extra.len(), 1);
        assert!(parse_server(&json!({})).unwrap().mappings.is_empty());
        assert!(parse_server(&Value::Null).unwrap().subnets.is_empty());
        assert!(parse_server(&json!({"disable": {}})).unwrap().disabled);
        assert!(parse_server(&json!([])).is_err());
        let both = json!({"shared-network-name": {"L": {"subnet": {"192.0.2.0/24": {
            "static-mapping": {"x": {"mac": "a", "mac-address": "b"}}}}}}});
        assert!(matches!(parse_server(&both), Err(ParseError::Shape { .. })));
    }
}
