//! Mappings to `set` operations.

use std::collections::BTreeMap;

use super::model::{MappingKey, StaticMapping, leaves};
use crate::leaf::push_set;
use crate::nat::{ConfigOp, SchemaVersion};

/// The `set` operations that create `m` from nothing on `version` (whose MAC leaf is
/// `mac-address` on 1.4, `mac` on 1.5): one per leaf; a mapping without leaves is one
/// `set` of its node. Setting a mapping creates its subnet and shared network if the router
/// has none: see [`super::unknown_subnets`].
pub fn render_mapping(m: &StaticMapping, version: SchemaVersion) -> Vec<ConfigOp> {
    let base = m.key().path();
    let mut ops = Vec::new();
    for (rel, value) in leaves(m, version) {
        push_set(&mut ops, &base, &rel, &value);
    }
    if ops.is_empty() {
        ops.push(ConfigOp::set_node(base));
    }
    ops
}

/// [`render_mapping`] for every mapping, in key order.
pub fn render_mappings(
    mappings: &BTreeMap<MappingKey, StaticMapping>,
    version: SchemaVersion,
) -> Vec<ConfigOp> {
    mappings
        .values()
        .flat_map(|m| render_mapping(m, version))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_leaf_follows_the_version() {
        let mut m = StaticMapping::new(&MappingKey::new("LAN", "192.0.2.0/24", "vm1"));
        m.ip_address = Some("192.0.2.10".into());
        m.mac = Some("52:54:00:00:00:01".into());
        let text = |v| {
            render_mapping(&m, v)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        let p = "set service dhcp-server shared-network-name LAN subnet 192.0.2.0/24 static-mapping vm1";
        assert_eq!(
            text(SchemaVersion::V1_4),
            vec![
                format!("{p} ip-address '192.0.2.10'"),
                format!("{p} mac-address '52:54:00:00:00:01'"),
            ]
        );
        assert_eq!(
            text(SchemaVersion::V1_5)[1],
            format!("{p} mac '52:54:00:00:00:01'")
        );
        let empty = StaticMapping::new(&m.key());
        assert_eq!(
            render_mapping(&empty, SchemaVersion::V1_5),
            vec![ConfigOp::set_node(m.key().path())]
        );
    }
}
