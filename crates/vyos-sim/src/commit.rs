//! Which config scripts a commit runs, in what order, and how a failure reads.
//!
//! vyatta-cfg runs the owner script of every priority node whose subtree changed, in
//! priority order (`commit-algorithm.cpp`), and VyOS's `config-mode-dependencies` adds the
//! scripts that depend on a changed one. The simulated ones, by their `<priority>`:
//! `nat` (220, `nat.py`), `firewall` (489, `firewall.py`, which also re-runs `nat.py`:
//! `"group_resync": ["system_conntrack", "nat", "policy_route"]`) and `service
//! dhcp-server` (911, `service_dhcp-server.py`). The first failing one fails the request
//! (VyOS would keep the components that passed: see docs/vyos-sim.md).

use std::net::Ipv4Addr;

use crate::tree::{Node, path};
use crate::{Version, verify, verify_dhcp, verify_firewall};

/// A component (priority node) with a config script the simulator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    /// `nat` (`nat.py`).
    Nat,
    /// `firewall` (`firewall.py`).
    Firewall,
    /// `service dhcp-server` (`service_dhcp-server.py`).
    DhcpServer,
}

impl Component {
    /// The priority node's path as vyatta-cfg prints it in `[[<path>]] failed`.
    pub fn path(self) -> &'static str {
        match self {
            Component::Nat => "nat",
            Component::Firewall => "firewall",
            Component::DhcpServer => "service dhcp-server",
        }
    }

    fn root(self) -> Vec<String> {
        match self {
            Component::Nat => path(&["nat"]),
            Component::Firewall => path(&["firewall"]),
            Component::DhcpServer => path(&["service", "dhcp-server"]),
        }
    }
}

/// A failed commit: the component whose script refused, and its message (not wrapped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The refusing component.
    pub component: Component,
    /// The script's message, before `textwrap.fill`.
    pub message: String,
}

impl Failure {
    /// The `/configure` error text: 1.4's generic lines, or 1.5's `[ <path> ]` header with
    /// the message wrapped at 72 columns, then the same lines.
    pub fn api_text(&self, v: Version) -> String {
        let p = self.component.path();
        let generic = format!("[[{p}]] failed\nCommit failed\n");
        match v {
            Version::V1_4 => generic,
            Version::V1_5 => format!("[ {p} ]\n{}\n\n{generic}", verify::fill(&self.message)),
        }
    }
}

/// The checks a commit from `running` to `candidate` runs, in priority order; the first
/// failure. A script runs when its subtree changed (NAT also when `firewall` did).
pub fn verify(running: &Node, candidate: &Node, version: Version) -> Option<Failure> {
    let changed = |c: Component| running.get(&c.root()) != candidate.get(&c.root());
    let fail = |component, message| Some(Failure { component, message });
    if (changed(Component::Nat) || changed(Component::Firewall))
        && let Some((_, message)) = verify::verify(candidate)
    {
        return fail(Component::Nat, message);
    }
    if changed(Component::Firewall)
        && let Some(message) = verify_firewall::verify(candidate, version)
    {
        return fail(Component::Firewall, message);
    }
    if changed(Component::DhcpServer)
        && let Some(message) = verify_dhcp::verify(candidate, version)
    {
        return fail(Component::DhcpServer, message);
    }
    None
}

/// A read-only view of a config node with the questions the scripts ask of their
/// `get_config_dict()`: `'key' in conf`, `conf['key']`, `conf['tag'].items()`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a>(pub(crate) &'a Node);

impl<'a> View<'a> {
    /// The node at `p` below this one.
    pub(crate) fn at(self, p: &[&str]) -> Option<View<'a>> {
        self.0.get(p).map(View)
    }

    /// `'key' in conf` (for a path of keys).
    pub(crate) fn has(self, p: &[&str]) -> bool {
        self.at(p).is_some()
    }

    /// The (first) value of the leaf at `p`.
    pub(crate) fn value(self, p: &[&str]) -> Option<&'a str> {
        match self.at(p)?.0 {
            Node::Leaf(v) => v.first().map(String::as_str),
            Node::Inner(_) => None,
        }
    }

    /// The values of the (multi) leaf at `p`.
    pub(crate) fn values(self, p: &[&str]) -> Vec<&'a str> {
        match self.at(p).map(|v| v.0) {
            Some(Node::Leaf(v)) => v.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// The children of the node at `p` (the tag values of a tag node), by name.
    pub(crate) fn children(self, p: &[&str]) -> Vec<(&'a str, View<'a>)> {
        match self.at(p).map(|v| v.0) {
            Some(Node::Inner(m)) => m.iter().map(|(k, n)| (k.as_str(), View(n))).collect(),
            _ => Vec::new(),
        }
    }

    /// How many children the node has (`len(conf)`); 0 for a leaf.
    pub(crate) fn len(self) -> usize {
        match self.0 {
            Node::Inner(m) => m.len(),
            Node::Leaf(_) => 0,
        }
    }
}

/// An IPv4 address as Python's `ip_address()` reads one the validators let through.
pub(crate) fn v4(s: &str) -> Option<u32> {
    s.parse::<Ipv4Addr>().ok().map(u32::from)
}

/// An IPv4 prefix (network address, length) as `ip_network()` reads one.
pub(crate) fn net(s: &str) -> Option<(u32, u32)> {
    let (a, l) = s.split_once('/')?;
    let len: u32 = l.parse().ok().filter(|l| *l <= 32)?;
    Some((v4(a)?, len))
}

/// The first and last address of a prefix.
pub(crate) fn net_bounds((addr, len): (u32, u32)) -> (u32, u32) {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (addr & mask, (addr & mask) | !mask)
}

/// `ip_address(a) in ip_network(n)`.
pub(crate) fn in_net(a: u32, n: (u32, u32)) -> bool {
    let (lo, hi) = net_bounds(n);
    (lo..=hi).contains(&a)
}

/// The addresses (without length) of every interface in the config: the `address`
/// leaves anywhere under `interfaces` (`interfaces ethernet eth1 address 192.0.2.1/24`,
/// `... vif 10 address ...`), and `lo`'s 127.0.0.1. The simulator's stand-in for what
/// netifaces reports on a router (it has no interfaces of its own).
pub(crate) fn interface_addresses(root: &Node) -> Vec<u32> {
    fn walk(node: &Node, out: &mut Vec<u32>) {
        if let Node::Inner(m) = node {
            for (k, child) in m {
                match &**child {
                    Node::Leaf(vals) if k == "address" => {
                        out.extend(vals.iter().filter_map(|v| v4(v.split('/').next()?)));
                    }
                    _ => walk(child, out),
                }
            }
        }
    }
    let mut out = vec![u32::from(Ipv4Addr::LOCALHOST)];
    if let Some(ifaces) = root.get(&path(&["interfaces"])) {
        walk(ifaces, &mut out);
    }
    out
}

/// The interface names the config has (`interfaces <type> <name>`, a `vif <n>` below it
/// as `<name>.<n>`), and `lo`.
pub(crate) fn interface_names(root: &Node) -> Vec<String> {
    let mut out = vec!["lo".to_owned()];
    for (_, kind) in View(root).children(&["interfaces"]) {
        for (name, iface) in kind.children(&[]) {
            out.push(name.to_owned());
            for (vif, _) in iface.children(&["vif"]) {
                out.push(format!("{name}.{vif}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn failure_texts_per_version() {
        let f = Failure {
            component: Component::DhcpServer,
            message: "Unique subnet ID not specified for subnet \"192.0.2.0/24\"".into(),
        };
        assert_eq!(
            f.api_text(Version::V1_4),
            "[[service dhcp-server]] failed\nCommit failed\n"
        );
        assert_eq!(
            f.api_text(Version::V1_5),
            "[ service dhcp-server ]\nUnique subnet ID not specified for subnet \"192.0.2.0/24\"\n\n[[service dhcp-server]] failed\nCommit failed\n"
        );
    }

    #[test]
    fn addresses_and_prefixes() {
        let n = net("192.0.2.0/24").unwrap();
        assert!(in_net(v4("192.0.2.0").unwrap(), n));
        assert!(in_net(v4("192.0.2.255").unwrap(), n));
        assert!(!in_net(v4("192.0.3.0").unwrap(), n));
        assert!(in_net(v4("8.8.8.8").unwrap(), net("0.0.0.0/0").unwrap()));
    }
}
