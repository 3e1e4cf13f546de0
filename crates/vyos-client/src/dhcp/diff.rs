//! Minimal leaf-level changes between sets of mappings, and playing changes on them.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{MappingKey, StaticMapping, from_leaves, is_known, is_multi, leaf_map};
use super::parse::ParseError;
use super::render::render_mapping;
use crate::leaf::{self, Leaves, Shapes};
use crate::nat::{ConfigOp, OpKind, SchemaVersion};

const SHAPES: Shapes<'static> = Shapes {
    known: &is_known,
    multi: &is_multi,
};

/// The operations that turn the router's mappings `old` into `new` on `version`: a mapping
/// only in `old` is one `delete` of its node (its subnet stays, as on VyOS), one only in
/// `new` its [`render_mapping`] `set`s, and one in both a `set` per changed leaf (a new MAC
/// is one `set`) and a `delete` per removed one. Within a mapping deletes come first;
/// mappings come in key order, keyed by their map key.
pub fn diff_mappings(
    old: &BTreeMap<MappingKey, StaticMapping>,
    new: &BTreeMap<MappingKey, StaticMapping>,
    version: SchemaVersion,
) -> Vec<ConfigOp> {
    let mut ops = Vec::new();
    let keys: BTreeSet<&MappingKey> = old.keys().chain(new.keys()).collect();
    for key in keys {
        match (old.get(key), new.get(key)) {
            (Some(_), None) => ops.push(ConfigOp::delete(key.path())),
            (None, Some(m)) => ops.extend(render_mapping(&with_key(m, key), version)),
            (Some(a), Some(b)) => leaf::diff_leaves(
                &key.path(),
                &leaf_map(a, version),
                &leaf_map(b, version),
                &SHAPES,
                &mut ops,
            ),
            (None, None) => {}
        }
    }
    ops
}

fn with_key(m: &StaticMapping, key: &MappingKey) -> StaticMapping {
    let mut m = m.clone();
    m.shared_network = key.shared_network.clone();
    m.subnet = key.subnet.clone();
    m.name = key.name.clone();
    m
}

/// Why [`apply_mapping_ops`] could not play an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The path is neither a mapping's nor a delete of a node above mappings.
    #[error("operation outside the static mappings: {0}")]
    OutsideSubtree(String),
    /// The result is not a valid mapping.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// Plays `ops` on `mappings` as VyOS would: `set` creates a mapping and its leaves and
/// replaces a leaf's value; `delete` removes a mapping, a leaf, or everything below a
/// subnet, shared network or the server; deleting what is not there does nothing. Either
/// MAC leaf name is taken. Used by tests and `plan` (`apply(diff(a, b))` gives `b`).
pub fn apply_mapping_ops(
    mappings: &mut BTreeMap<MappingKey, StaticMapping>,
    ops: &[ConfigOp],
    version: SchemaVersion,
) -> Result<(), ApplyError> {
    let mut trees: BTreeMap<MappingKey, Leaves> = mappings
        .iter()
        .map(|(k, m)| (k.clone(), leaf_map(m, version)))
        .collect();
    for op in ops {
        apply_one(&mut trees, op)?;
    }
    let mut out = BTreeMap::new();
    for (key, leaves) in trees {
        let m = from_leaves(&key, leaves)?;
        out.insert(key, m);
    }
    *mappings = out;
    Ok(())
}

fn apply_one(trees: &mut BTreeMap<MappingKey, Leaves>, op: &ConfigOp) -> Result<(), ApplyError> {
    let outside = || ApplyError::OutsideSubtree(op.path.join(" "));
    let w: Vec<&str> = op.path.iter().map(String::as_str).collect();
    let delete = op.op == OpKind::Delete && op.value.is_none();
    match w.as_slice() {
        ["service", "dhcp-server"] if delete => trees.clear(),
        ["service", "dhcp-server", "shared-network-name"] if delete => trees.clear(),
        ["service", "dhcp-server", "shared-network-name", n] if delete => {
            trees.retain(|k, _| k.shared_network != *n);
        }
        ["service", "dhcp-server", "shared-network-name", n, "subnet"] if delete => {
            trees.retain(|k, _| k.shared_network != *n);
        }
        [
            "service",
            "dhcp-server",
            "shared-network-name",
            n,
            "subnet",
            s,
        ]
        | [
            "service",
            "dhcp-server",
            "shared-network-name",
            n,
            "subnet",
            s,
            "static-mapping",
        ] if delete => {
            trees.retain(|k, _| !(k.shared_network == *n && k.subnet == *s));
        }
        [
            "service",
            "dhcp-server",
            "shared-network-name",
            n,
            "subnet",
            s,
            "static-mapping",
            m,
            rest @ ..,
        ] => {
            let key = MappingKey::new(*n, *s, *m);
            let rel: Vec<String> = rest.iter().map(|r| (*r).to_owned()).collect();
            match op.op {
                OpKind::Set => {
                    let tree = trees.entry(key).or_default();
                    leaf::apply(tree, rel, op, &SHAPES);
                }
                OpKind::Delete if rel.is_empty() => {
                    trees.remove(&key);
                }
                OpKind::Delete => {
                    if let Some(tree) = trees.get_mut(&key) {
                        leaf::apply(tree, rel, op, &SHAPES);
                    }
                }
            }
        }
        _ => return Err(outside()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(name: &str, ip: &str, mac: &str) -> StaticMapping {
        let mut m = StaticMapping::new(&MappingKey::new("LAN", "192.0.2.0/24", name));
        m.ip_address = Some(ip.into());
        m.mac = Some(mac.into());
        m
    }

    fn map(ms: Vec<StaticMapping>) -> BTreeMap<MappingKey, StaticMapping> {
        ms.into_iter().map(|m| (m.key(), m)).collect()
    }

    #[test]
    fn a_new_mac_is_one_set_and_a_gone_mapping_one_delete() {
        for v in [SchemaVersion::V1_4, SchemaVersion::V1_5] {
            let a = map(vec![
                vm("vm1", "192.0.2.10", "52:54:00:00:00:01"),
                vm("vm2", "192.0.2.11", "52:54:00:00:00:02"),
            ]);
            let b = map(vec![vm("vm1", "192.0.2.10", "52:54:00:00:00:09")]);
            let ops = diff_mappings(&a, &b, v);
            let text: Vec<String> = ops.iter().map(ToString::to_string).collect();
            let p =
                "service dhcp-server shared-network-name LAN subnet 192.0.2.0/24 static-mapping";
            let mac = if v == SchemaVersion::V1_4 {
                "mac-address"
            } else {
                "mac"
            };
            assert_eq!(
                text,
                vec![
                    format!("set {p} vm1 {mac} '52:54:00:00:00:09'"),
                    format!("delete {p} vm2"),
                ]
            );
            let mut got = a.clone();
            apply_mapping_ops(&mut got, &ops, v).unwrap();
            assert_eq!(got, b);
            assert!(diff_mappings(&b, &b, v).is_empty());
        }
    }

    #[test]
    fn apply_refuses_what_is_not_a_mapping() {
        let mut ms = BTreeMap::new();
        let op = ConfigOp::set(
            vec!["service".into(), "dhcp-server".into(), "disable".into()],
            "x",
        );
        assert!(apply_mapping_ops(&mut ms, &[op], SchemaVersion::V1_5).is_err());
    }
}
