//! A config node as a flat map of leaf paths to values, for the models besides NAT (which
//! has its own copy in `nat/`): reading `showConfig` JSON, writing it back, the leaf-level
//! diff of one node, and playing one op on it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::nat::{ConfigOp, LeafValue, OpKind};

/// A leaf path relative to a node, e.g. `["destination", "port"]`.
pub(crate) type LeafPath = Vec<String>;

/// A node's leaves.
pub(crate) type Leaves = BTreeMap<LeafPath, LeafValue>;

/// Flattens a JSON node as `showConfig` renders it: `{}` is a flag (or an empty node), a
/// string one value, an array several. `Err` names the path of a value of another shape.
pub(crate) fn flatten(node: &Map<String, Value>) -> Result<Leaves, String> {
    fn walk(
        prefix: &mut Vec<String>,
        node: &Map<String, Value>,
        out: &mut Leaves,
    ) -> Result<(), String> {
        for (key, value) in node {
            prefix.push(key.clone());
            match value {
                Value::Object(m) if m.is_empty() => {
                    out.insert(prefix.clone(), LeafValue::Flag);
                }
                Value::Object(m) => walk(prefix, m, out)?,
                Value::String(s) => {
                    out.insert(prefix.clone(), LeafValue::One(s.clone()));
                }
                Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
                    let vals = items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect();
                    out.insert(prefix.clone(), LeafValue::Many(vals));
                }
                _ => return Err(prefix.join(" ")),
            }
            prefix.pop();
        }
        Ok(())
    }
    let mut out = Leaves::new();
    walk(&mut Vec::new(), node, &mut out)?;
    Ok(out)
}

/// A multi-value leaf the model does not know, compared as a set: sorted, no repeats.
pub(crate) fn as_set(value: LeafValue) -> LeafValue {
    match value {
        LeafValue::Many(mut vs) => {
            vs.sort();
            vs.dedup();
            LeafValue::Many(vs)
        }
        v => v,
    }
}

/// The JSON object `showConfig` shows for these leaves (a one-value multi leaf as a string).
pub(crate) fn to_json(leaves: impl IntoIterator<Item = (LeafPath, LeafValue)>) -> Value {
    let mut node = Map::new();
    for (path, value) in leaves {
        insert(&mut node, &path, value);
    }
    Value::Object(node)
}

/// Puts `value` at `path` under `node`, as `showConfig` shows it (a flag on a node that
/// already has children leaves it as it is).
pub(crate) fn insert(node: &mut Map<String, Value>, path: &[String], value: LeafValue) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = node;
    for word in parents {
        let entry = cur
            .entry(word.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else {
            return;
        };
        cur = next;
    }
    let rendered = match value {
        LeafValue::Flag => {
            if cur.contains_key(last) {
                return;
            }
            Value::Object(Map::new())
        }
        LeafValue::One(v) => Value::String(v),
        LeafValue::Many(mut vs) if vs.len() == 1 => Value::String(vs.remove(0)),
        LeafValue::Many(vs) => Value::Array(vs.into_iter().map(Value::String).collect()),
    };
    cur.insert(last.clone(), rendered);
}

/// Drops a flag that is a prefix of another leaf (an empty node that has children).
pub(crate) fn drop_covered_flags(leaves: &mut Leaves) {
    let paths: Vec<LeafPath> = leaves.keys().cloned().collect();
    leaves.retain(|path, value| {
        *value != LeafValue::Flag
            || !paths
                .iter()
                .any(|o| o.len() > path.len() && o.starts_with(path))
    });
}

/// Appends the `set`s that write `value` at `base + rel`.
pub(crate) fn push_set(
    ops: &mut Vec<ConfigOp>,
    base: &[String],
    rel: &[String],
    value: &LeafValue,
) {
    let path: Vec<String> = base.iter().chain(rel).cloned().collect();
    match value {
        LeafValue::Flag => ops.push(ConfigOp::set_node(path)),
        LeafValue::One(v) => ops.push(ConfigOp::set(path, v.clone())),
        LeafValue::Many(vs) => {
            for v in vs {
                ops.push(ConfigOp::set(path.clone(), v.clone()));
            }
        }
    }
}

/// What a model knows of its leaves' shapes.
pub(crate) struct Shapes<'a> {
    /// Whether a relative path is a leaf the model knows.
    pub(crate) known: &'a dyn Fn(&[String]) -> bool,
    /// Whether a relative path is a multi-value leaf in VyOS's schema.
    pub(crate) multi: &'a dyn Fn(&[String]) -> bool,
}

/// The ops that turn the node `base` from `old` into `new`, as NAT's diff does: a `delete`
/// of the highest node whose leaves all went, a `set` per changed single-value leaf,
/// per-value `set`/`delete` on multi-value leaves, and a delete-then-set of a changed leaf
/// the model does not know. Deletes come first.
pub(crate) fn diff_leaves(
    base: &[String],
    old: &Leaves,
    new: &Leaves,
    shapes: &Shapes<'_>,
    ops: &mut Vec<ConfigOp>,
) {
    let join = |rel: &[String]| -> Vec<String> { base.iter().chain(rel).cloned().collect() };
    let mut deletes = Vec::new();
    let mut deleted: BTreeSet<LeafPath> = BTreeSet::new();
    let mut sets = Vec::new();
    for path in old.keys().filter(|p| !new.contains_key(*p)) {
        let top = (1..path.len())
            .map(|n| path[..n].to_vec())
            .find(|prefix| !new.keys().any(|k| k.starts_with(prefix)))
            .unwrap_or_else(|| path.clone());
        if deleted.iter().any(|d| top.starts_with(d)) {
            continue;
        }
        deleted.insert(top.clone());
        deletes.push(ConfigOp::delete(join(&top)));
    }
    for (path, nv) in new {
        let Some(ov) = old.get(path) else {
            push_set(&mut sets, base, path, nv);
            continue;
        };
        if ov == nv {
            continue;
        }
        let known = (shapes.known)(path);
        let multi = (shapes.multi)(path)
            || (!known && (matches!(ov, LeafValue::Many(_)) || matches!(nv, LeafValue::Many(_))));
        if multi && *nv != LeafValue::Flag && *ov != LeafValue::Flag {
            let (ovs, nvs) = (ov.values(), nv.values());
            for v in ovs.iter().filter(|v| !nvs.contains(v)) {
                deletes.push(ConfigOp::delete_value(join(path), v.clone()));
            }
            for v in nvs.iter().filter(|v| !ovs.contains(v)) {
                sets.push(ConfigOp::set(join(path), v.clone()));
            }
        } else if known && matches!(nv, LeafValue::One(_)) {
            push_set(&mut sets, base, path, nv);
        } else {
            deletes.push(ConfigOp::delete(join(path)));
            push_set(&mut sets, base, path, nv);
        }
    }
    ops.extend(deletes);
    ops.extend(sets);
}

/// Plays one op on a node's leaves (`rel` relative to the node): `set` creates, replaces
/// a single-value leaf and adds to a multi-value one (and to a leaf the model does not
/// know); `delete` removes everything under `rel`, or one value of a leaf.
pub(crate) fn apply(leaves: &mut Leaves, rel: LeafPath, op: &ConfigOp, shapes: &Shapes<'_>) {
    match op.op {
        OpKind::Set => {
            if rel.is_empty() {
                return;
            }
            let Some(v) = &op.value else {
                leaves.entry(rel).or_insert(LeafValue::Flag);
                return;
            };
            let multi = (shapes.multi)(&rel);
            let open = multi || !(shapes.known)(&rel);
            let next = match leaves.get(&rel).cloned() {
                Some(LeafValue::Many(mut vs)) => {
                    if !vs.contains(v) {
                        vs.push(v.clone());
                    }
                    LeafValue::Many(vs)
                }
                Some(LeafValue::One(old)) if open && old != *v => {
                    LeafValue::Many(vec![old, v.clone()])
                }
                _ if multi => LeafValue::Many(vec![v.clone()]),
                _ => LeafValue::One(v.clone()),
            };
            leaves.insert(rel, next);
        }
        OpKind::Delete => match &op.value {
            None => leaves.retain(|k, _| !k.starts_with(&rel)),
            Some(v) => {
                let remove = match leaves.get_mut(&rel) {
                    Some(LeafValue::One(old)) => old == v,
                    Some(LeafValue::Many(vs)) => {
                        vs.retain(|x| x != v);
                        vs.is_empty()
                    }
                    _ => false,
                };
                if remove {
                    leaves.remove(&rel);
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flatten_and_back() {
        let data = json!({"a": {"b": "1", "c": ["x", "y"]}, "f": {}});
        let Value::Object(m) = &data else {
            panic!("object")
        };
        let leaves = flatten(m).unwrap();
        assert_eq!(leaves.len(), 3);
        assert_eq!(to_json(leaves), data);
        let Value::Object(bad) = json!({"a": 1}) else {
            panic!("object")
        };
        assert_eq!(flatten(&bad), Err("a".to_owned()));
    }
}
