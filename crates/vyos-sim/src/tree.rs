//! The config tree and its JSON rendering (VyOS's `showConfig` rules).
//!
//! Children are shared (`Arc`), so a commit's candidate is a copy of the running config
//! that costs nothing until an op changes it, and then only the nodes on the op's path are
//! copied ([`Arc::make_mut`]). At 10,000 NAT rules a deep copy, its comparison with the
//! running config and its pruning took about 60 ms of the simulator's CPU per commit, more
//! than the 42 ms its cost model gives a one-op commit at that size (× 0.01).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// A config node: inner (ordinary or tag node) or leaf (no values = valueless leaf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Node {
    /// A leaf and its values; empty for a valueless leaf (`disable`, `log`).
    Leaf(Vec<String>),
    /// An ordinary or tag node and its children (shared between copies of the tree).
    Inner(BTreeMap<String, Arc<Node>>),
}

impl Default for Node {
    fn default() -> Self {
        Node::Inner(BTreeMap::new())
    }
}

/// An inner node with these children.
impl FromIterator<(String, Node)> for Node {
    fn from_iter<I: IntoIterator<Item = (String, Node)>>(children: I) -> Self {
        Node::Inner(
            children
                .into_iter()
                .map(|(k, n)| (k, Arc::new(n)))
                .collect(),
        )
    }
}

impl Node {
    /// The node at `path`, if any.
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Option<&Node> {
        let mut cur = self;
        for p in path {
            match cur {
                Node::Inner(m) => cur = m.get(p.as_ref())?,
                Node::Leaf(_) => return None,
            }
        }
        Some(cur)
    }

    /// The inner node at `path`, created with its parents where missing (the nodes on the
    /// way are copied where shared). `None` when a leaf is in the way.
    pub fn inner_mut(&mut self, path: &[String]) -> Option<&mut BTreeMap<String, Arc<Node>>> {
        let mut cur = self;
        for p in path {
            let Node::Inner(m) = cur else { return None };
            cur = Arc::make_mut(m.entry(p.clone()).or_default());
        }
        match cur {
            Node::Inner(m) => Some(m),
            Node::Leaf(_) => None,
        }
    }

    /// Removes the node at `path`; true when something was removed. Nothing is copied
    /// when there is nothing to remove.
    pub fn remove(&mut self, path: &[String]) -> bool {
        let Some((last, parent)) = path.split_last() else {
            let had = !self.is_empty();
            *self = Node::default();
            return had;
        };
        if !matches!(self.get(parent), Some(Node::Inner(m)) if m.contains_key(last)) {
            return false;
        }
        let mut cur = self;
        for p in parent {
            match cur {
                Node::Inner(m) => match m.get_mut(p) {
                    Some(n) => cur = Arc::make_mut(n),
                    None => return false,
                },
                Node::Leaf(_) => return false,
            }
        }
        match cur {
            Node::Inner(m) => m.remove(last).is_some(),
            Node::Leaf(_) => false,
        }
    }

    /// Drops inner nodes left without children (VyOS keeps no empty parents after a delete).
    pub fn prune(&mut self) {
        self.prune_keeping(&|_| false);
    }

    /// [`prune`](Self::prune), except for the empty nodes whose path `keep` names: tag
    /// values such as a NAT rule or a load-balance backend, which VyOS keeps without
    /// children (as it keeps `interfaces ethernet eth0` when its last leaf goes).
    ///
    /// Only the nodes this tree does not share are visited: a shared one is as it was in
    /// the tree this one was copied from, which must have been pruned (every committed
    /// config is; a tree read from a file or built by ops on an empty one owns all its
    /// nodes, so all are visited). So prune a tree before copying it, not a copy of an
    /// unpruned one.
    pub fn prune_keeping(&mut self, keep: &dyn Fn(&[String]) -> bool) {
        fn walk(node: &mut Node, at: &mut Vec<String>, keep: &dyn Fn(&[String]) -> bool) {
            if let Node::Inner(m) = node {
                let mut empty = Vec::new();
                for (k, child) in m.iter_mut() {
                    let Some(child) = Arc::get_mut(child) else {
                        continue;
                    };
                    at.push(k.clone());
                    walk(child, at, keep);
                    if child.is_empty() && !keep(at) {
                        empty.push(k.clone());
                    }
                    at.pop();
                }
                for k in empty {
                    m.remove(&k);
                }
            }
        }
        walk(self, &mut Vec::new(), keep);
    }

    /// Whether this is an inner node without children.
    pub fn is_empty(&self) -> bool {
        matches!(self, Node::Inner(m) if m.is_empty())
    }

    /// The JSON rendering of `showConfig` (see [`Shown`]) as a value.
    pub fn render(&self) -> Value {
        serde_json::to_value(Shown(self)).unwrap_or_default()
    }

    /// Number of NAT rules (destination and source), the cost model's size proxy.
    pub fn nat_rules(&self) -> usize {
        ["destination", "source"]
            .iter()
            .map(|k| match self.get(&["nat", k, "rule"]) {
                Some(Node::Inner(m)) => m.len(),
                _ => 0,
            })
            .sum()
    }
}

/// A node as `showConfig` renders it in JSON: tag values as string keys, a one-value leaf
/// (multi or not) as a string, several values as an array, a valueless leaf and an empty
/// node as `{}`, values always strings, no defaults. Serialized as the tree is walked: a
/// read of 10,000 rules does not build a `Value` of them first.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(pub &'a Node);

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Node::Leaf(v) if v.is_empty() => s.serialize_map(Some(0))?.end(),
            Node::Leaf(v) if v.len() == 1 => s.serialize_str(&v[0]),
            Node::Leaf(v) => v.serialize(s),
            Node::Inner(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, n) in m {
                    map.serialize_entry(k, &Shown(n))?;
                }
                map.end()
            }
        }
    }
}

/// A path from string slices.
pub fn path(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_like_vyos() {
        let mut root = Node::default();
        let rule = root
            .inner_mut(&path(&["nat", "destination", "rule", "100"]))
            .unwrap();
        rule.insert("log".into(), Node::Leaf(vec![]).into());
        rule.insert("protocol".into(), Node::Leaf(vec!["tcp".into()]).into());
        let lb = rule.entry("load-balance".into()).or_default();
        if let Node::Inner(m) = Arc::make_mut(lb) {
            m.insert(
                "hash".into(),
                Node::Leaf(vec!["source-address".into()]).into(),
            );
        }
        assert_eq!(
            root.render(),
            json!({"nat": {"destination": {"rule": {"100": {
                "log": {}, "protocol": "tcp", "load-balance": {"hash": "source-address"}
            }}}}})
        );
        assert_eq!(root.nat_rules(), 1);
        // The text a read answers is that JSON, with several values as an array.
        let lan = path(&["firewall", "group", "network-group", "LAN"]);
        root.inner_mut(&lan).unwrap().insert(
            "network".into(),
            Node::Leaf(vec!["10.0.0.0/8".into(), "192.168.0.0/16".into()]).into(),
        );
        assert_eq!(
            serde_json::to_string(&Shown(&root)).unwrap(),
            r#"{"firewall":{"group":{"network-group":{"LAN":{"network":["10.0.0.0/8","192.168.0.0/16"]}}}},"nat":{"destination":{"rule":{"100":{"load-balance":{"hash":"source-address"},"log":{},"protocol":"tcp"}}}}}"#
        );
        assert_eq!(
            serde_json::to_string(&Shown(&root)).unwrap(),
            root.render().to_string()
        );
    }

    #[test]
    fn remove_and_prune_leave_no_empty_parents() {
        let mut root = Node::default();
        root.inner_mut(&path(&["nat", "destination", "rule", "100"]))
            .unwrap()
            .insert("log".into(), Node::Leaf(vec![]).into());
        assert!(root.remove(&path(&["nat", "destination", "rule", "100"])));
        assert!(!root.remove(&path(&["nat", "destination", "rule", "100"])));
        root.prune();
        assert!(root.is_empty());
        // A serialised tree reads back the same.
        let mut t = Node::default();
        t.inner_mut(&path(&["a", "b"]))
            .unwrap()
            .insert("c".into(), Node::Leaf(vec!["1".into(), "2".into()]).into());
        t.inner_mut(&path(&["a"]))
            .unwrap()
            .insert("flag".into(), Node::Leaf(vec![]).into());
        let back: Node = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    /// The rule at `n` in `root`, as the shared pointer the tree holds.
    fn rule(root: &Node, n: &str) -> Arc<Node> {
        let Some(Node::Inner(rules)) = root.get(&["nat", "destination", "rule"]) else {
            panic!("no rules")
        };
        rules[n].clone()
    }

    fn ops(lines: &[&str]) -> Vec<(String, Vec<String>, Option<String>)> {
        lines
            .iter()
            .map(|l| {
                let mut w: Vec<String> = l.split(' ').map(str::to_owned).collect();
                let op = w.remove(0);
                let value = w.pop();
                (op, w, value)
            })
            .collect()
    }

    fn commit(running: &Node, lines: &[&str]) -> Node {
        let ops = ops(lines);
        crate::check_commit(
            running,
            ops.iter()
                .map(|(o, p, v)| (o.as_str(), p.as_slice(), v.as_deref())),
            crate::Version::V1_5,
        )
        .unwrap()
    }

    #[test]
    fn a_commit_copies_only_the_nodes_its_ops_touch() {
        let r = "set nat destination rule";
        let running = commit(
            &Node::default(),
            &[
                &format!("{r} 100 protocol tcp"),
                &format!("{r} 100 translation port 22"),
                &format!("{r} 100 translation address 10.0.0.5"),
                &format!("{r} 200 translation address 10.0.0.6"),
            ],
        );
        let before = running.render();
        let next = commit(
            &running,
            &["delete nat destination rule 100 translation port 22"],
        );
        // The running config is as it was; the rule the op left alone is the same node.
        assert_eq!(running.render(), before);
        assert!(Arc::ptr_eq(&rule(&running, "200"), &rule(&next, "200")));
        assert!(!Arc::ptr_eq(&rule(&running, "100"), &rule(&next, "100")));
        assert_eq!(
            next.get(&["nat", "destination", "rule", "100"])
                .unwrap()
                .render(),
            json!({"protocol": "tcp", "translation": {"address": "10.0.0.5"}})
        );
    }

    #[test]
    fn pruning_a_copy_finds_every_empty_node_its_ops_left() {
        // The same ops on a copy that shares its nodes and on one that owns them all (read
        // back from JSON) leave the same config: the pruning that skips shared nodes misses
        // nothing the ops emptied.
        let r = "nat destination rule";
        let running = commit(
            &Node::default(),
            &[
                &format!("set {r} 100 protocol tcp"),
                &format!("set {r} 100 translation port 22"),
                &format!("set {r} 200 translation address 10.0.0.6"),
                &format!("set {r} 200 load-balance backend 10.0.0.7 weight 5"),
                &format!("set {r} 300 translation address 10.0.0.8"),
            ],
        );
        let owned: Node = serde_json::from_str(&serde_json::to_string(&running).unwrap()).unwrap();
        let edits = [
            format!("delete {r} 100 translation port 22"),
            format!("set {r} 100 translation address 10.0.0.5"),
            format!("delete {r} 200 load-balance backend 10.0.0.7"),
            format!("delete {r} 300 translation address 10.0.0.8"),
            format!("set {r} 300 translation address 10.0.0.9"),
        ];
        let edits: Vec<&str> = edits.iter().map(String::as_str).collect();
        let shared = commit(&running, &edits);
        assert_eq!(shared, commit(&owned, &edits));
        // `load-balance` of rule 200 was emptied and is gone; `translation` of rule 100 and
        // of rule 300 was emptied and filled again.
        assert_eq!(
            shared
                .get(&["nat", "destination", "rule"])
                .unwrap()
                .render(),
            json!({
                "100": {"protocol": "tcp", "translation": {"address": "10.0.0.5"}},
                "200": {"translation": {"address": "10.0.0.6"}},
                "300": {"translation": {"address": "10.0.0.9"}},
            })
        );
    }
}
