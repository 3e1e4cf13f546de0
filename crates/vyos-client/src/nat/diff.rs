//! Minimal leaf-level changes between rule sets, and playing changes on a rule set.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use super::model::{LeafPath, LeafValue, NatRule, from_leaves, is_known, is_multi, leaf_map};
use super::parse::ParseError;
use super::render::render_rule;
use super::{ConfigOp, NatKind, OpKind};
use crate::leaf::push_set;

/// The operations that turn the router's `old` rules into `new`, touching as little
/// as possible:
///
/// - a rule only in `old`: one `delete` of its node;
/// - a rule only in `new`: its [`render_rule`] `set`s;
/// - a rule in both: a `set` per changed or added single-value leaf (a changed
///   translation port is one `set`), a `delete` of the highest node whose leaves all
///   went away (a removed leaf is one `delete`), and per-value `set`/`delete` on
///   multi-value leaves. A changed leaf the model does not know is deleted and set
///   again, since it may hold several values.
///
/// Both sides are compared without default-restating leaves, so `protocol all` on
/// one side and no protocol on the other is no change. Within a rule, deletes come
/// before sets; rules come in number order. Rules are keyed by their map key. Either side
/// may hold its rules shared (`Arc<NatRule>`) or owned.
pub fn diff<A: Borrow<NatRule>, B: Borrow<NatRule>>(
    kind: NatKind,
    old: &BTreeMap<u32, A>,
    new: &BTreeMap<u32, B>,
) -> Vec<ConfigOp> {
    let mut ops = Vec::new();
    let numbers: BTreeSet<u32> = old.keys().chain(new.keys()).copied().collect();
    for n in numbers {
        match (old.get(&n).map(A::borrow), new.get(&n).map(B::borrow)) {
            (Some(_), None) => ops.push(ConfigOp::delete(kind.rule_path(n))),
            (None, Some(r)) => ops.extend(render_rule(&with_key(r, kind, n))),
            (Some(a), Some(b)) => diff_rule(kind, n, a, b, &mut ops),
            (None, None) => {}
        }
    }
    ops
}

fn with_key(rule: &NatRule, kind: NatKind, number: u32) -> std::borrow::Cow<'_, NatRule> {
    if rule.kind == kind && rule.number == number {
        return std::borrow::Cow::Borrowed(rule);
    }
    let mut r = rule.clone();
    r.kind = kind;
    r.number = number;
    std::borrow::Cow::Owned(r)
}

fn diff_rule(kind: NatKind, n: u32, a: &NatRule, b: &NatRule, ops: &mut Vec<ConfigOp>) {
    // Equal rules have equal leaves: the usual case of a pass, done without building them.
    if a == b {
        return;
    }
    let base = kind.rule_path(n);
    let old = leaf_map(a);
    let new = leaf_map(b);
    let mut deletes: Vec<ConfigOp> = Vec::new();
    let mut deleted: BTreeSet<LeafPath> = BTreeSet::new();
    let mut sets: Vec<ConfigOp> = Vec::new();

    for path in old.keys().filter(|p| !new.contains_key(*p)) {
        let top = highest_removable(path, &new);
        if deleted.iter().any(|d| top.starts_with(d)) {
            continue;
        }
        deleted.insert(top.clone());
        deletes.push(ConfigOp::delete(join(&base, &top)));
    }
    for (path, nv) in &new {
        let Some(ov) = old.get(path) else {
            push_set(&mut sets, &base, path, nv);
            continue;
        };
        if ov == nv {
            continue;
        }
        let multi = is_multi(path)
            || (!is_known(path)
                && (matches!(ov, LeafValue::Many(_)) || matches!(nv, LeafValue::Many(_))));
        let full = join(&base, path);
        if multi && *nv != LeafValue::Flag && *ov != LeafValue::Flag {
            let ovs = ov.values();
            let nvs = nv.values();
            for v in ovs.iter().filter(|v| !nvs.contains(v)) {
                deletes.push(ConfigOp::delete_value(full.clone(), v.clone()));
            }
            for v in nvs.iter().filter(|v| !ovs.contains(v)) {
                sets.push(ConfigOp::set(full.clone(), v.clone()));
            }
        } else if is_known(path) && matches!(nv, LeafValue::One(_)) {
            push_set(&mut sets, &base, path, nv);
        } else {
            deletes.push(ConfigOp::delete(full));
            push_set(&mut sets, &base, path, nv);
        }
    }
    ops.extend(deletes);
    ops.extend(sets);
}

/// The shortest prefix of `path` under which `new` has no leaf (at least the leaf).
fn highest_removable(path: &LeafPath, new: &BTreeMap<LeafPath, LeafValue>) -> LeafPath {
    for len in 1..path.len() {
        let prefix = &path[..len];
        if !new.keys().any(|k| k.starts_with(prefix)) {
            return prefix.to_vec();
        }
    }
    path.clone()
}

fn join(base: &[String], rel: &[String]) -> Vec<String> {
    base.iter().chain(rel).cloned().collect()
}

/// Why [`apply_ops`] could not play an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The path is not under `nat <kind>`.
    #[error("operation outside nat {kind}: {path}")]
    OutsideSubtree {
        /// The table being applied to.
        kind: NatKind,
        /// The operation's path (space-joined).
        path: String,
    },
    /// The rule word is not a rule number.
    #[error("not a NAT rule number: {0:?}")]
    RuleNumber(String),
    /// The result is not a valid rule.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// Plays `ops` on `rules` the way VyOS's config backend would: `set` creates
/// intermediate nodes, replaces a single-value leaf and adds to a multi-value one;
/// `delete` removes a node with everything below it, or one value of a leaf;
/// deleting what is not there does nothing. Used by tests (and `plan`) to show that
/// `apply_ops(a, diff(a, b))` gives `b`.
///
/// A `set` on a leaf the model does not know adds a value, as on a multi-value
/// leaf (VyOS replaces if the leaf is single-valued; [`diff`] deletes such a leaf
/// before setting it, so both readings agree on its output). Rules come back
/// normalized (see [`NatRule::normalized`]).
pub fn apply_ops(
    kind: NatKind,
    rules: &mut BTreeMap<u32, NatRule>,
    ops: &[ConfigOp],
) -> Result<(), ApplyError> {
    let mut trees: BTreeMap<u32, BTreeMap<LeafPath, LeafValue>> =
        rules.iter().map(|(n, r)| (*n, leaf_map(r))).collect();
    for op in ops {
        apply_one(kind, &mut trees, op)?;
    }
    let mut out = BTreeMap::new();
    for (n, leaves) in trees {
        out.insert(n, from_leaves(kind, n, leaves)?);
    }
    *rules = out;
    Ok(())
}

fn apply_one(
    kind: NatKind,
    trees: &mut BTreeMap<u32, BTreeMap<LeafPath, LeafValue>>,
    op: &ConfigOp,
) -> Result<(), ApplyError> {
    let outside = || ApplyError::OutsideSubtree {
        kind,
        path: op.path.join(" "),
    };
    let words: Vec<&str> = op.path.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["nat", k] | ["nat", k, "rule"] if *k == kind.as_str() => {
            if op.op == OpKind::Delete {
                trees.clear();
            }
            return Ok(());
        }
        ["nat", k, "rule", _, ..] if *k == kind.as_str() => {}
        _ => return Err(outside()),
    }
    let word = &op.path[3];
    let number = match word.parse::<u32>() {
        Ok(n) if (1..=999_999).contains(&n) => n,
        _ => return Err(ApplyError::RuleNumber(word.clone())),
    };
    let rel: LeafPath = op.path[4..].to_vec();
    match op.op {
        OpKind::Set => {
            let tree = trees.entry(number).or_default();
            if rel.is_empty() {
                return Ok(());
            }
            match &op.value {
                None => {
                    tree.entry(rel).or_insert(LeafValue::Flag);
                }
                Some(v) => {
                    let existing = tree.get(&rel).cloned();
                    let next = match existing {
                        Some(LeafValue::Many(mut vs)) => {
                            if !vs.contains(v) {
                                vs.push(v.clone());
                            }
                            LeafValue::Many(vs)
                        }
                        Some(LeafValue::One(old))
                            if (is_multi(&rel) || !is_known(&rel)) && old != *v =>
                        {
                            LeafValue::Many(vec![old, v.clone()])
                        }
                        _ if is_multi(&rel) => LeafValue::Many(vec![v.clone()]),
                        _ => LeafValue::One(v.clone()),
                    };
                    tree.insert(rel, next);
                }
            }
        }
        OpKind::Delete => {
            if rel.is_empty() {
                trees.remove(&number);
                return Ok(());
            }
            let Some(tree) = trees.get_mut(&number) else {
                return Ok(());
            };
            match &op.value {
                None => tree.retain(|k, _| !k.starts_with(&rel)),
                Some(v) => {
                    let remove = match tree.get_mut(&rel) {
                        Some(LeafValue::One(old)) => old == v,
                        Some(LeafValue::Many(vs)) => {
                            vs.retain(|x| x != v);
                            vs.is_empty()
                        }
                        _ => false,
                    };
                    if remove {
                        tree.remove(&rel);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::Protocol;

    fn dnat(n: u32) -> NatRule {
        let mut r = NatRule::new(NatKind::Destination, n);
        r.description = Some(format!("vmnet:rule{n}"));
        r.protocol = Some(Protocol::Tcp);
        r.inbound_interface.name = Some("eth0".into());
        r.destination.port = Some("2222".into());
        r.translation.address = Some("10.0.0.5".into());
        r.translation.port = Some("22".into());
        r
    }

    fn map(rules: Vec<NatRule>) -> BTreeMap<u32, NatRule> {
        rules.into_iter().map(|r| (r.number, r)).collect()
    }

    fn check(a: &BTreeMap<u32, NatRule>, b: &BTreeMap<u32, NatRule>) -> Vec<ConfigOp> {
        let ops = diff(NatKind::Destination, a, b);
        let mut got = a.clone();
        apply_ops(NatKind::Destination, &mut got, &ops).unwrap();
        let want: BTreeMap<u32, NatRule> = b.iter().map(|(n, r)| (*n, r.normalized())).collect();
        assert_eq!(got, want);
        ops
    }

    #[test]
    fn port_change_is_one_set() {
        let a = map(vec![dnat(100)]);
        let mut b = a.clone();
        if let Some(r) = b.get_mut(&100) {
            r.translation.port = Some("2022".into());
        }
        let ops = check(&a, &b);
        assert_eq!(
            ops,
            vec![ConfigOp::set(
                NatKind::Destination
                    .rule_path(100)
                    .into_iter()
                    .chain(["translation".into(), "port".into()])
                    .collect(),
                "2022"
            )]
        );
    }

    #[test]
    fn removed_leaf_is_one_delete_and_removed_rule_one_delete() {
        let a = map(vec![dnat(100), dnat(101)]);
        let mut b = map(vec![dnat(100)]);
        if let Some(r) = b.get_mut(&100) {
            r.translation.port = None;
        }
        let ops = check(&a, &b);
        let text: Vec<String> = ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "delete nat destination rule 100 translation port",
                "delete nat destination rule 101",
            ]
        );
    }

    #[test]
    fn whole_subtree_goes_in_one_delete() {
        let mut r = dnat(100);
        r.source.address = Some("198.51.100.0/24".into());
        r.source.port = Some("1024-65535".into());
        let a = map(vec![r]);
        let b = map(vec![dnat(100)]);
        let ops = check(&a, &b);
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].to_string(), "delete nat destination rule 100 source");
    }

    #[test]
    fn new_rule_is_its_render_and_same_is_nothing() {
        let a = map(vec![]);
        let b = map(vec![dnat(7)]);
        assert_eq!(check(&a, &b), render_rule(&dnat(7)));
        assert!(check(&b, &b).is_empty());
    }

    #[test]
    fn multi_value_hash() {
        let mut r = dnat(100);
        r.load_balance.hash = ["source-address".to_owned(), "destination-port".to_owned()]
            .into_iter()
            .collect();
        let a = map(vec![r.clone()]);
        r.load_balance.hash = ["source-address".to_owned(), "source-port".to_owned()]
            .into_iter()
            .collect();
        let b = map(vec![r]);
        let ops = check(&a, &b);
        let text: Vec<String> = ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "delete nat destination rule 100 load-balance hash 'destination-port'",
                "set nat destination rule 100 load-balance hash 'source-port'",
            ]
        );
    }

    #[test]
    fn defaults_are_no_change() {
        let a = map(vec![dnat(100)]);
        let mut b = a.clone();
        if let Some(r) = b.get_mut(&100) {
            r.translation.address_mapping = Some("random".into());
        }
        assert!(diff(NatKind::Destination, &a, &b).is_empty());
    }

    #[test]
    fn unknown_leaf_change_is_delete_then_set() {
        let mut r = dnat(100);
        r.extra.insert(
            vec!["future".into(), "leaf".into()],
            LeafValue::One("a".into()),
        );
        let a = map(vec![r.clone()]);
        r.extra.insert(
            vec!["future".into(), "leaf".into()],
            LeafValue::One("b".into()),
        );
        let b = map(vec![r]);
        assert_eq!(check(&a, &b).len(), 2);
    }

    #[test]
    fn apply_rejects_foreign_paths() {
        let mut rules = BTreeMap::new();
        let op = ConfigOp::set(vec!["firewall".into(), "x".into()], "y");
        assert!(matches!(
            apply_ops(NatKind::Destination, &mut rules, &[op]),
            Err(ApplyError::OutsideSubtree { .. })
        ));
        let op = ConfigOp::set_node(NatKind::Source.rule_path(3));
        assert!(apply_ops(NatKind::Destination, &mut rules, &[op]).is_err());
    }
}
