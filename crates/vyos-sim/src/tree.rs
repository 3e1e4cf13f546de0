//! The config tree and its JSON rendering (VyOS's `showConfig` rules).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A config node: inner (ordinary or tag node) or leaf (no values = valueless leaf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Node {
    /// A leaf and its values; empty for a valueless leaf (`disable`, `log`).
    Leaf(Vec<String>),
    /// An ordinary or tag node and its children.
    Inner(BTreeMap<String, Node>),
}

impl Default for Node {
    fn default() -> Self {
        Node::Inner(BTreeMap::new())
    }
}

impl Node {
    /// The node at `path`, if any.
    pub fn get(&self, path: &[String]) -> Option<&Node> {
        let mut cur = self;
        for p in path {
            match cur {
                Node::Inner(m) => cur = m.get(p)?,
                Node::Leaf(_) => return None,
            }
        }
        Some(cur)
    }

    /// The inner node at `path`, created with its parents where missing. `None` when a
    /// leaf is in the way.
    pub fn inner_mut(&mut self, path: &[String]) -> Option<&mut BTreeMap<String, Node>> {
        let mut cur = self;
        for p in path {
            let Node::Inner(m) = cur else { return None };
            cur = m.entry(p.clone()).or_default();
        }
        match cur {
            Node::Inner(m) => Some(m),
            Node::Leaf(_) => None,
        }
    }

    /// Removes the node at `path`; true when something was removed.
    pub fn remove(&mut self, path: &[String]) -> bool {
        let Some((last, parent)) = path.split_last() else {
            let had = !self.is_empty();
            *self = Node::default();
            return had;
        };
        let mut cur = self;
        for p in parent {
            match cur {
                Node::Inner(m) => match m.get_mut(p) {
                    Some(n) => cur = n,
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
        if let Node::Inner(m) = self {
            for child in m.values_mut() {
                child.prune();
            }
            m.retain(|_, c| !matches!(c, Node::Inner(cm) if cm.is_empty()));
        }
    }

    /// [`prune`](Self::prune), except for the empty nodes whose path `keep` names: tag
    /// values such as a NAT rule or a load-balance backend, which VyOS keeps without
    /// children (as it keeps `interfaces ethernet eth0` when its last leaf goes).
    pub fn prune_keeping(&mut self, keep: &dyn Fn(&[String]) -> bool) {
        fn walk(node: &mut Node, at: &mut Vec<String>, keep: &dyn Fn(&[String]) -> bool) {
            if let Node::Inner(m) = node {
                for (k, child) in m.iter_mut() {
                    at.push(k.clone());
                    walk(child, at, keep);
                    at.pop();
                }
                m.retain(|k, c| {
                    if !c.is_empty() {
                        return true;
                    }
                    at.push(k.clone());
                    let kept = keep(at);
                    at.pop();
                    kept
                });
            }
        }
        walk(self, &mut Vec::new(), keep);
    }

    /// Whether this is an inner node without children.
    pub fn is_empty(&self) -> bool {
        matches!(self, Node::Inner(m) if m.is_empty())
    }

    /// The JSON rendering of `showConfig`: tag values as string keys, a one-value leaf
    /// (multi or not) as a string, several values as an array, a valueless leaf and an
    /// empty node as `{}`, values always strings, no defaults.
    pub fn render(&self) -> Value {
        match self {
            Node::Leaf(v) if v.is_empty() => Value::Object(serde_json::Map::new()),
            Node::Leaf(v) if v.len() == 1 => Value::String(v[0].clone()),
            Node::Leaf(v) => Value::Array(v.iter().cloned().map(Value::String).collect()),
            Node::Inner(m) => {
                Value::Object(m.iter().map(|(k, n)| (k.clone(), n.render())).collect())
            }
        }
    }

    /// Number of NAT rules (destination and source), the cost model's size proxy.
    pub fn nat_rules(&self) -> usize {
        ["destination", "source"]
            .iter()
            .map(|k| match self.get(&path(&["nat", k, "rule"])) {
                Some(Node::Inner(m)) => m.len(),
                _ => 0,
            })
            .sum()
    }
}

/// A path from string slices.
pub fn path(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_like_vyos() {
        let mut root = Node::default();
        let rule = root
            .inner_mut(&path(&["nat", "destination", "rule", "100"]))
            .unwrap();
        rule.insert("log".into(), Node::Leaf(vec![]));
        rule.insert("protocol".into(), Node::Leaf(vec!["tcp".into()]));
        let lb = rule.entry("load-balance".into()).or_default();
        if let Node::Inner(m) = lb {
            m.insert("hash".into(), Node::Leaf(vec!["source-address".into()]));
        }
        assert_eq!(
            root.render(),
            json!({"nat": {"destination": {"rule": {"100": {
                "log": {}, "protocol": "tcp", "load-balance": {"hash": "source-address"}
            }}}}})
        );
        assert_eq!(root.nat_rules(), 1);
    }

    #[test]
    fn remove_and_prune_leave_no_empty_parents() {
        let mut root = Node::default();
        root.inner_mut(&path(&["nat", "destination", "rule", "100"]))
            .unwrap()
            .insert("log".into(), Node::Leaf(vec![]));
        assert!(root.remove(&path(&["nat", "destination", "rule", "100"])));
        assert!(!root.remove(&path(&["nat", "destination", "rule", "100"])));
        root.prune();
        assert!(root.is_empty());
        // A serialised tree reads back the same.
        let mut t = Node::default();
        t.inner_mut(&path(&["a", "b"]))
            .unwrap()
            .insert("c".into(), Node::Leaf(vec!["1".into(), "2".into()]));
        t.inner_mut(&path(&["a"]))
            .unwrap()
            .insert("flag".into(), Node::Leaf(vec![]));
        let back: Node = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}
