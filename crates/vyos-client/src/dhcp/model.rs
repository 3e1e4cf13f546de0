//! The mapping struct, its key, and its flat leaf form (per VyOS version: the MAC leaf is
//! `mac-address` on 1.4, `mac` on 1.5).

use std::collections::BTreeMap;
use std::fmt;

use super::parse::ParseError;
use crate::leaf::{self, LeafPath, Leaves};
use crate::nat::{LeafValue, SchemaVersion};

/// Where a subnet sits: `shared-network-name <shared_network> subnet <subnet>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubnetKey {
    /// The shared network's name.
    pub shared_network: String,
    /// The subnet, an IPv4 prefix as written (`192.0.2.0/24`).
    pub subnet: String,
}

impl SubnetKey {
    /// A key.
    pub fn new(shared_network: impl Into<String>, subnet: impl Into<String>) -> Self {
        SubnetKey {
            shared_network: shared_network.into(),
            subnet: subnet.into(),
        }
    }

    /// `["service","dhcp-server","shared-network-name",<n>,"subnet",<s>]`.
    pub fn path(&self) -> Vec<String> {
        let mut p = super::dhcp_server_path();
        p.extend([
            "shared-network-name".to_owned(),
            self.shared_network.clone(),
            "subnet".to_owned(),
            self.subnet.clone(),
        ]);
        p
    }
}

impl fmt::Display for SubnetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.shared_network, self.subnet)
    }
}

/// Which mapping: its subnet and its name. Orders as VyOS's `verify()` walks them
/// (shared network, subnet, name; each as the config sorts its tag values).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MappingKey {
    /// The shared network's name.
    pub shared_network: String,
    /// The subnet.
    pub subnet: String,
    /// The mapping's name (on 1.5 a host name).
    pub name: String,
}

impl MappingKey {
    /// A key.
    pub fn new(
        shared_network: impl Into<String>,
        subnet: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        MappingKey {
            shared_network: shared_network.into(),
            subnet: subnet.into(),
            name: name.into(),
        }
    }

    /// The mapping's subnet.
    pub fn subnet_key(&self) -> SubnetKey {
        SubnetKey::new(&self.shared_network, &self.subnet)
    }

    /// The mapping node's path.
    pub fn path(&self) -> Vec<String> {
        let mut p = self.subnet_key().path();
        p.extend(["static-mapping".to_owned(), self.name.clone()]);
        p
    }
}

impl fmt::Display for MappingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.shared_network, self.subnet, self.name)
    }
}

/// One `static-mapping`. Leaves the model does not know (1.5's `duid` and `option`, 1.4's
/// `static-mapping-parameters`) are kept in `extra`, so parse → render loses nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StaticMapping {
    /// The shared network's name.
    pub shared_network: String,
    /// The subnet.
    pub subnet: String,
    /// The mapping's name.
    pub name: String,
    /// `ip-address`.
    pub ip_address: Option<String>,
    /// The MAC: `mac-address` on 1.4, `mac` on 1.5. VyOS compares MACs as strings.
    pub mac: Option<String>,
    /// `description` (1.5 only: 1.4's schema has none).
    pub description: Option<String>,
    /// `disable`.
    pub disabled: bool,
    /// Leaves this model does not know, by path relative to the mapping node.
    pub extra: BTreeMap<LeafPath, LeafValue>,
}

impl StaticMapping {
    /// A mapping without leaves.
    pub fn new(key: &MappingKey) -> Self {
        StaticMapping {
            shared_network: key.shared_network.clone(),
            subnet: key.subnet.clone(),
            name: key.name.clone(),
            ip_address: None,
            mac: None,
            description: None,
            disabled: false,
            extra: BTreeMap::new(),
        }
    }

    /// Its key.
    pub fn key(&self) -> MappingKey {
        MappingKey::new(&self.shared_network, &self.subnet, &self.name)
    }

    /// The mapping as it reads back from the router (multi-value extras as sets).
    pub fn normalized(&self) -> StaticMapping {
        let version = SchemaVersion::V1_5;
        from_leaves(&self.key(), leaf_map(self, version)).unwrap_or_else(|_| self.clone())
    }
}

/// The MAC leaf's name.
pub(crate) fn mac_leaf(version: SchemaVersion) -> &'static str {
    match version {
        SchemaVersion::V1_4 => "mac-address",
        SchemaVersion::V1_5 => "mac",
    }
}

/// The mapping's leaves, in rendering order.
pub(crate) fn leaves(m: &StaticMapping, version: SchemaVersion) -> Vec<(LeafPath, LeafValue)> {
    let one = |name: &str, v: &Option<String>| {
        v.as_ref()
            .map(|v| (vec![name.to_owned()], LeafValue::One(v.clone())))
    };
    let mut out: Vec<(LeafPath, LeafValue)> = [
        one("ip-address", &m.ip_address),
        one(mac_leaf(version), &m.mac),
        one("description", &m.description),
    ]
    .into_iter()
    .flatten()
    .collect();
    if m.disabled {
        out.push((vec!["disable".to_owned()], LeafValue::Flag));
    }
    out.extend(m.extra.iter().map(|(p, v)| (p.clone(), v.clone())));
    out
}

pub(crate) fn leaf_map(m: &StaticMapping, version: SchemaVersion) -> Leaves {
    leaves(m, version).into_iter().collect()
}

/// Whether a mapping-relative path is a leaf this model knows (each single-valued).
pub(crate) fn is_known(path: &[String]) -> bool {
    matches!(
        path,
        [w] if matches!(w.as_str(), "description" | "disable" | "ip-address" | "mac" | "mac-address")
    )
}

/// Whether a mapping-relative path is a multi-value leaf (1.4's raw parameters).
pub(crate) fn is_multi(path: &[String]) -> bool {
    matches!(path, [w] if w == "static-mapping-parameters")
}

/// Builds a mapping from its leaves; either MAC leaf name is taken.
pub(crate) fn from_leaves(
    key: &MappingKey,
    mut leaves: Leaves,
) -> Result<StaticMapping, ParseError> {
    leaf::drop_covered_flags(&mut leaves);
    let mut m = StaticMapping::new(key);
    let at = |p: &[String]| format!("{} {}", key_path(key), p.join(" "));
    if leaves.contains_key(&vec!["mac".to_owned()])
        && leaves.contains_key(&vec!["mac-address".to_owned()])
    {
        return Err(ParseError::Shape {
            at: at(&["mac".to_owned()]),
            expected: "one of mac and mac-address",
        });
    }
    for (path, value) in leaves {
        if !is_known(&path) {
            // A multi leaf holds a list, also when VyOS shows one value as a string.
            let value = match value {
                LeafValue::One(v) if is_multi(&path) => LeafValue::Many(vec![v]),
                v => leaf::as_set(v),
            };
            m.extra.insert(path, value);
            continue;
        }
        if path[0] == "disable" {
            if value != LeafValue::Flag {
                return Err(ParseError::Shape {
                    at: at(&path),
                    expected: "a valueless leaf ({})",
                });
            }
            m.disabled = true;
            continue;
        }
        let LeafValue::One(v) = value else {
            return Err(ParseError::Shape {
                at: at(&path),
                expected: "a string",
            });
        };
        match path[0].as_str() {
            "ip-address" => m.ip_address = Some(v),
            "description" => m.description = Some(v),
            _ => m.mac = Some(v),
        }
    }
    Ok(m)
}

fn key_path(key: &MappingKey) -> String {
    key.path().join(" ")
}
