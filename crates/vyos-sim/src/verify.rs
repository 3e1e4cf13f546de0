//! The NAT commit's checks (`nat.py` `verify()`, reference §5.3): every rule, disabled ones
//! included, in rule order; the first error fails the whole `nat` component.

use crate::tree::Node;

/// Python's `textwrap.fill(text, width=72)`: greedy word wrap.
pub fn fill(text: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + word.len() > 72 {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines.join("\n")
}

struct Rule<'a> {
    node: &'a Node,
}

impl Rule<'_> {
    fn get(&self, p: &[&str]) -> Option<&Node> {
        self.node.get(p)
    }
    fn has(&self, p: &[&str]) -> bool {
        self.get(p).is_some()
    }
    fn value(&self, p: &[&str]) -> Option<&str> {
        match self.get(p)? {
            Node::Leaf(v) => v.first().map(String::as_str),
            Node::Inner(_) => None,
        }
    }
    fn values(&self, p: &[&str]) -> Vec<&str> {
        match self.get(p) {
            Some(Node::Leaf(v)) => v.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// The first NAT error in `root`, as `(rule number, message)` (the message not yet wrapped).
pub fn verify(root: &Node) -> Option<(u32, String)> {
    for kind in ["destination", "source"] {
        let Some(Node::Inner(rules)) = root.get(&["nat", kind, "rule"]) else {
            continue;
        };
        let mut numbers: Vec<(u32, &Node)> = rules
            .iter()
            .filter_map(|(k, n)| Some((k.parse().ok()?, &**n)))
            .collect();
        numbers.sort_by_key(|(n, _)| *n);
        for (n, node) in numbers {
            if let Some(msg) = check_rule(root, kind, n, &Rule { node }) {
                return Some((n, msg));
            }
        }
    }
    None
}

fn group_exists(root: &Node, group_type: &str, name: &str) -> bool {
    let name = name.strip_prefix('!').unwrap_or(name);
    root.get(&["firewall", "group", group_type, name]).is_some()
}

/// `Destination NAT configuration error in rule <n>:` (or `Source`).
struct Head<'a> {
    kind: &'a str,
    n: u32,
}

impl std::fmt::Display for Head<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.kind == "destination" {
            "Destination"
        } else {
            "Source"
        };
        write!(f, "{kind} NAT configuration error in rule {}:", self.n)
    }
}

fn check_rule(root: &Node, kind: &str, n: u32, r: &Rule<'_>) -> Option<String> {
    // The message's head, made only for a rule that fails (every rule is checked at
    // every commit, so the passing ones allocate nothing).
    let e = Head { kind, n };
    let proto = r.value(&["protocol"]).unwrap_or("all");
    let ports_ok = matches!(proto, "tcp" | "udp" | "tcp_udp");
    let any_port = r.has(&["translation", "port"])
        || r.has(&["translation", "redirect", "port"])
        || r.has(&["destination", "port"])
        || r.has(&["source", "port"]);
    if any_port && !ports_ok {
        return Some(format!(
            "{e} ports can only be specified when protocol is either tcp, udp or tcp_udp!"
        ));
    }
    let translated = r.has(&["translation", "address"])
        || r.has(&["translation", "port"])
        || r.has(&["exclude"])
        || r.has(&["load-balance", "backend"])
        || (kind == "destination" && r.has(&["translation", "redirect"]));
    if !translated {
        return Some(format!("{e} translation requires address and/or port"));
    }
    let iface = if kind == "destination" {
        "inbound-interface"
    } else {
        "outbound-interface"
    };
    if r.has(&[iface, "name"]) && r.has(&[iface, "group"]) {
        let which = if kind == "destination" {
            "destination nat rule"
        } else {
            "nat source rule"
        };
        return Some(format!(
            "{e} cannot specify both interface group and interface name for {which} \"{n}\""
        ));
    }
    if let Some(g) = r.value(&[iface, "group"])
        && !group_exists(root, "interface-group", g)
    {
        let which = if kind == "destination" {
            "destination"
        } else {
            "source"
        };
        return Some(format!(
            "Invalid interface group \"{g}\" on {which} nat rule"
        ));
    }
    for side in ["source", "destination"] {
        let has_addr = r.has(&[side, "address"]);
        let has_fqdn = r.has(&[side, "fqdn"]);
        if has_addr && has_fqdn {
            return Some("Only one of address, fqdn or geoip can be specified".to_owned());
        }
        let addr_groups: Vec<&str> = ["address-group", "network-group", "domain-group"]
            .into_iter()
            .filter(|g| r.has(&[side, "group", g]))
            .collect();
        if addr_groups.len() > 1 {
            return Some(
                "Only one address-group, network-group or domain-group can be specified".to_owned(),
            );
        }
        if let Some(g) = addr_groups.first() {
            if has_addr {
                return Some(format!("{g} and address cannot both be defined"));
            }
            if has_fqdn {
                return Some(format!("{g} and fqdn cannot both be defined"));
            }
        }
        for g in [
            "address-group",
            "domain-group",
            "network-group",
            "port-group",
        ] {
            if let Some(name) = r.value(&[side, "group", g])
                && !group_exists(root, g, name)
            {
                return Some(format!("Invalid {g} \"{name}\" on nat rule"));
            }
        }
        if r.has(&[side, "group", "port-group"]) && !ports_ok {
            return Some(
                "Protocol must be tcp, udp, or tcp_udp when specifying a port-group".to_owned(),
            );
        }
    }
    let hash = r.values(&["load-balance", "hash"]);
    if hash
        .iter()
        .any(|h| *h == "source-port" || *h == "destination-port")
        && !matches!(proto, "tcp" | "udp")
    {
        return Some("Protocol must be tcp or udp when specifying hash ports".to_owned());
    }
    // Then it sums the weights, `int(config['load_balance']['backend'][member]['weight'])`:
    // a backend without one fails the commit with a KeyError, a weight range (which the
    // set-time `numeric --allow-range` passes) with a ValueError. The texts are Python's.
    if let Some(Node::Inner(backends)) = r.get(&["load-balance", "backend"]) {
        for b in backends.values() {
            match b.get(&["weight"]) {
                Some(Node::Leaf(w))
                    if w.first().is_some_and(|w| {
                        !w.is_empty() && w.bytes().all(|c| c.is_ascii_digit())
                    }) => {}
                Some(Node::Leaf(w)) => {
                    return Some(format!(
                        "ValueError: invalid literal for int() with base 10: '{}'",
                        w.first().map(String::as_str).unwrap_or_default()
                    ));
                }
                _ => return Some("KeyError: 'weight'".to_owned()),
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::tree::path;

    type Leaves<'a> = &'a [(&'a str, Option<&'a str>)];

    fn rule(leaves: &[(&str, Option<&str>)]) -> Node {
        let mut root = Node::default();
        for (p, v) in leaves {
            let mut full = path(&["nat", "destination", "rule", "100"]);
            full.extend(p.split(' ').map(str::to_owned));
            let (last, parent) = full.split_last().unwrap();
            root.inner_mut(parent).unwrap().insert(
                last.clone(),
                Node::Leaf(v.map(|v| vec![v.to_owned()]).unwrap_or_default()).into(),
            );
        }
        root
    }

    #[test]
    fn the_reference_cases() {
        let ok: &[Leaves<'_>] = &[
            &[
                ("protocol", Some("tcp")),
                ("destination port", Some("443")),
                ("translation address", Some("10.0.0.5")),
            ],
            &[("translation address", Some("10.0.0.5"))],
            &[("exclude", None)],
            &[
                ("protocol", Some("tcp_udp")),
                ("destination port", Some("53")),
                ("translation port", Some("5353")),
            ],
            &[("disable", None), ("translation address", Some("10.0.0.5"))],
        ];
        for c in ok {
            assert_eq!(verify(&rule(c)), None, "{c:?}");
        }
        let bad: &[(Leaves<'_>, &str)] = &[
            (
                &[
                    ("destination port", Some("443")),
                    ("translation address", Some("10.0.0.5")),
                ],
                "Destination NAT configuration error in rule 100: ports can only be specified when protocol is either tcp, udp or tcp_udp!",
            ),
            (
                &[("protocol", Some("icmp")), ("translation port", Some("22"))],
                "ports can only be specified",
            ),
            (
                &[("protocol", Some("tcp"))],
                "Destination NAT configuration error in rule 100: translation requires address and/or port",
            ),
            (
                &[("disable", None), ("protocol", Some("tcp"))],
                "translation requires address and/or port",
            ),
            (
                &[
                    ("translation address", Some("10.0.0.5")),
                    ("inbound-interface name", Some("eth0")),
                    ("inbound-interface group", Some("g")),
                ],
                "cannot specify both interface group and interface name for destination nat rule \"100\"",
            ),
            (
                &[
                    ("translation address", Some("10.0.0.5")),
                    ("inbound-interface group", Some("nosuch")),
                ],
                "Invalid interface group \"nosuch\" on destination nat rule",
            ),
            (
                &[
                    ("translation address", Some("10.0.0.5")),
                    ("source address", Some("10.0.0.1")),
                    ("source fqdn", Some("a.example")),
                ],
                "Only one of address, fqdn or geoip can be specified",
            ),
            (
                &[
                    ("translation address", Some("10.0.0.5")),
                    ("source group address-group", Some("a")),
                    ("source group network-group", Some("b")),
                ],
                "Only one address-group, network-group or domain-group can be specified",
            ),
            (
                &[
                    ("translation address", Some("10.0.0.5")),
                    ("source group network-group", Some("b")),
                    ("source address", Some("10.0.0.1")),
                ],
                "network-group and address cannot both be defined",
            ),
            (
                &[
                    ("translation address", Some("10.0.0.5")),
                    ("destination group port-group", Some("web")),
                ],
                "Invalid port-group \"web\" on nat rule",
            ),
            (
                &[
                    ("translation address", Some("10.0.0.5")),
                    ("protocol", Some("tcp_udp")),
                    ("load-balance hash", Some("source-port")),
                ],
                "Protocol must be tcp or udp when specifying hash ports",
            ),
            (
                &[
                    ("translation address", Some("10.0.0.5")),
                    ("load-balance backend 10.0.0.6", None),
                ],
                "KeyError: 'weight'",
            ),
            (
                &[
                    ("translation address", Some("10.0.0.5")),
                    ("load-balance backend 10.0.0.6 weight", Some("10-20")),
                ],
                "ValueError: invalid literal for int() with base 10: '10-20'",
            ),
        ];
        for (c, want) in bad {
            let (n, msg) = verify(&rule(c)).unwrap_or_else(|| panic!("{c:?} passed"));
            assert_eq!(n, 100);
            assert!(msg.contains(want), "{c:?}: {msg}");
        }
    }

    #[test]
    fn fill_wraps_at_72_like_python() {
        let text = "Destination NAT configuration error in rule 100: ports can only be specified when protocol is either tcp, udp or tcp_udp!";
        let filled = fill(text);
        assert_eq!(
            filled,
            "Destination NAT configuration error in rule 100: ports can only be\nspecified when protocol is either tcp, udp or tcp_udp!"
        );
        assert!(filled.lines().all(|l| l.len() <= 72));
    }
}
