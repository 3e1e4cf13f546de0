//! Minimal leaf-level changes between rule sets, and playing changes on a rule set.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{ForwardRule, from_leaves, is_known, is_multi, leaf_map};
use super::parse::ParseError;
use super::render::render_rule;
use super::rule_path;
use crate::leaf::{self, Leaves, Shapes};
use crate::nat::{ConfigOp, OpKind};

const SHAPES: Shapes<'static> = Shapes {
    known: &is_known,
    multi: &is_multi,
};

/// The operations that turn the router's rules `old` into `new`: a rule only in `old` is
/// one `delete` of its node, one only in `new` its [`render_rule`] `set`s, one in both a
/// `set` per changed leaf, a `delete` of the highest node whose leaves all went, and
/// per-value ops on `state`. Rules come in number order, keyed by their map key.
pub fn diff_rules(
    old: &BTreeMap<u32, ForwardRule>,
    new: &BTreeMap<u32, ForwardRule>,
) -> Vec<ConfigOp> {
    let mut ops = Vec::new();
    let numbers: BTreeSet<u32> = old.keys().chain(new.keys()).copied().collect();
    for n in numbers {
        match (old.get(&n), new.get(&n)) {
            (Some(_), None) => ops.push(ConfigOp::delete(rule_path(n))),
            (None, Some(r)) => {
                let mut r = r.clone();
                r.number = n;
                ops.extend(render_rule(&r));
            }
            (Some(a), Some(b)) => {
                leaf::diff_leaves(&rule_path(n), &leaf_map(a), &leaf_map(b), &SHAPES, &mut ops);
            }
            (None, None) => {}
        }
    }
    ops
}

/// Why [`apply_rule_ops`] could not play an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The path is not a forward-filter rule's (or a delete of all of them).
    #[error("operation outside firewall ipv4 forward filter rule: {0}")]
    OutsideSubtree(String),
    /// The result is not a valid rule.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// Plays `ops` on `rules` as VyOS would (see [`crate::nat::apply_ops`]); rules come back
/// normalized. Used by tests and `plan`.
pub fn apply_rule_ops(
    rules: &mut BTreeMap<u32, ForwardRule>,
    ops: &[ConfigOp],
) -> Result<(), ApplyError> {
    let mut trees: BTreeMap<u32, Leaves> = rules.iter().map(|(n, r)| (*n, leaf_map(r))).collect();
    let base = super::forward_filter_path();
    for op in ops {
        let outside = || ApplyError::OutsideSubtree(op.path.join(" "));
        if !op.path.starts_with(&base) {
            return Err(outside());
        }
        let rest = &op.path[base.len()..];
        match rest {
            [w] if w == "rule" && op.op == OpKind::Delete => trees.clear(),
            [w, n, rel @ ..] if w == "rule" => {
                let n = match n.parse::<u32>() {
                    Ok(n) if (1..=999_999).contains(&n) => n,
                    _ => return Err(outside()),
                };
                match op.op {
                    OpKind::Delete if rel.is_empty() => {
                        trees.remove(&n);
                    }
                    OpKind::Delete => {
                        if let Some(t) = trees.get_mut(&n) {
                            leaf::apply(t, rel.to_vec(), op, &SHAPES);
                        }
                    }
                    OpKind::Set => {
                        leaf::apply(trees.entry(n).or_default(), rel.to_vec(), op, &SHAPES)
                    }
                }
            }
            _ => return Err(outside()),
        }
    }
    let mut out = BTreeMap::new();
    for (n, t) in trees {
        out.insert(n, from_leaves(n, t)?);
    }
    *rules = out;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::Protocol;

    fn rule(n: u32, port: &str) -> ForwardRule {
        let mut r = ForwardRule::new(n);
        r.action = Some("accept".into());
        r.protocol = Some(Protocol::Tcp);
        r.destination.address = Some("10.0.0.5".into());
        r.destination.port = Some(port.into());
        r
    }

    #[test]
    fn a_new_port_is_one_set() {
        let a: BTreeMap<u32, ForwardRule> = [(100, rule(100, "22")), (101, rule(101, "80"))].into();
        let mut b: BTreeMap<u32, ForwardRule> = [(100, rule(100, "2222"))].into();
        if let Some(r) = b.get_mut(&100) {
            r.state.insert("new".into());
        }
        let ops = diff_rules(&a, &b);
        let text: Vec<String> = ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "set firewall ipv4 forward filter rule 100 destination port '2222'",
                "set firewall ipv4 forward filter rule 100 state 'new'",
                "delete firewall ipv4 forward filter rule 101",
            ]
        );
        let mut got = a.clone();
        apply_rule_ops(&mut got, &ops).unwrap();
        assert_eq!(got, b);
        assert!(diff_rules(&b, &b).is_empty());
        let bad = ConfigOp::set(vec!["firewall".into(), "ipv4".into()], "x");
        assert!(apply_rule_ops(&mut got, &[bad]).is_err());
    }
}
