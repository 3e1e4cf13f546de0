//! The rule struct and its flat leaf form.

use std::collections::{BTreeMap, BTreeSet};

use super::parse::ParseError;
use crate::leaf::{self, LeafPath, Leaves};
use crate::nat::{AddressMatch, LeafValue, Protocol};

/// One `firewall ipv4 forward filter rule <number>`. Leaves the model does not know
/// (`jump-target`, `inbound-interface`, `limit`, ...) are kept in `extra`, so parse →
/// render is lossless; [`super::validate_rule`] checks them as VyOS's commit does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForwardRule {
    /// The rule number, `1..=999999`.
    pub number: u32,
    /// `action`: `accept`, `drop`, `reject`, `jump`, ... (required at commit).
    pub action: Option<String>,
    /// `description` (≤ 255 bytes; no quotes, no newline).
    pub description: Option<String>,
    /// `disable` (disabled rules are still verified at commit).
    pub disabled: bool,
    /// `log`.
    pub log: bool,
    /// `protocol`, written as it is (the firewall has no default: `all` is a value).
    pub protocol: Option<Protocol>,
    /// `state` (a multi leaf): `established`, `invalid`, `new`, `related`.
    pub state: BTreeSet<String>,
    /// `connection-status nat`: `destination` (the connections DNAT translated) or `source`.
    pub connection_status_nat: Option<String>,
    /// `source`: `address`, `port`, `fqdn`, `group ...`.
    pub source: AddressMatch,
    /// `destination`.
    pub destination: AddressMatch,
    /// Leaves this model does not know, by path relative to the rule node.
    pub extra: BTreeMap<LeafPath, LeafValue>,
}

impl ForwardRule {
    /// A rule without leaves.
    pub fn new(number: u32) -> Self {
        ForwardRule {
            number,
            action: None,
            description: None,
            disabled: false,
            log: false,
            protocol: None,
            state: BTreeSet::new(),
            connection_status_nat: None,
            source: AddressMatch::default(),
            destination: AddressMatch::default(),
            extra: BTreeMap::new(),
        }
    }

    /// The rule as it reads back from the router (multi-value extras as sets).
    pub fn normalized(&self) -> ForwardRule {
        from_leaves(self.number, leaf_map(self)).unwrap_or_else(|_| self.clone())
    }
}

/// `firewall ipv4 forward filter`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardFilter {
    /// `default-action` as configured (`None`: VyOS's default, `accept`).
    pub default_action: Option<String>,
    /// `default-log`.
    pub default_log: bool,
    /// `description`.
    pub description: Option<String>,
    /// The rules by number.
    pub rules: BTreeMap<u32, ForwardRule>,
}

impl ForwardFilter {
    /// What happens to a packet no rule matches: `accept` (VyOS's default) or `drop`.
    /// With `accept`, forwarded traffic needs no accept rule.
    pub fn effective_default_action(&self) -> &str {
        self.default_action.as_deref().unwrap_or("accept")
    }
}

fn p(words: &[&str]) -> LeafPath {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn push_side(out: &mut Vec<(LeafPath, LeafValue)>, side: &str, m: &AddressMatch) {
    let g = &m.group;
    for (rel, v) in [
        (&["address"][..], &m.address),
        (&["port"], &m.port),
        (&["fqdn"], &m.fqdn),
        (&["group", "address-group"], &g.address_group),
        (&["group", "domain-group"], &g.domain_group),
        (&["group", "mac-group"], &g.mac_group),
        (&["group", "network-group"], &g.network_group),
        (&["group", "port-group"], &g.port_group),
    ] {
        if let Some(v) = v {
            let mut path = vec![side.to_owned()];
            path.extend(rel.iter().map(|w| (*w).to_owned()));
            out.push((path, LeafValue::One(v.clone())));
        }
    }
}

/// The rule's leaves in rendering order.
pub(crate) fn leaves(r: &ForwardRule) -> Vec<(LeafPath, LeafValue)> {
    let mut out = Vec::new();
    let one = |out: &mut Vec<_>, path: &[&str], v: &Option<String>| {
        if let Some(v) = v {
            out.push((p(path), LeafValue::One(v.clone())));
        }
    };
    one(&mut out, &["action"], &r.action);
    one(&mut out, &["description"], &r.description);
    if r.disabled {
        out.push((p(&["disable"]), LeafValue::Flag));
    }
    if r.log {
        out.push((p(&["log"]), LeafValue::Flag));
    }
    let proto = r.protocol.as_ref().map(|p| p.as_str().to_owned());
    one(&mut out, &["protocol"], &proto);
    if !r.state.is_empty() {
        out.push((
            p(&["state"]),
            LeafValue::Many(r.state.iter().cloned().collect()),
        ));
    }
    one(
        &mut out,
        &["connection-status", "nat"],
        &r.connection_status_nat,
    );
    push_side(&mut out, "source", &r.source);
    push_side(&mut out, "destination", &r.destination);
    out.extend(r.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

pub(crate) fn leaf_map(r: &ForwardRule) -> Leaves {
    leaves(r).into_iter().collect()
}

/// Whether a rule-relative path is a leaf this model knows.
pub(crate) fn is_known(path: &[String]) -> bool {
    let w: Vec<&str> = path.iter().map(String::as_str).collect();
    matches!(
        w.as_slice(),
        ["action" | "description" | "disable" | "log" | "protocol" | "state"]
            | ["connection-status", "nat"]
            | ["source" | "destination", "address" | "port" | "fqdn"]
            | [
                "source" | "destination",
                "group",
                "address-group" | "domain-group" | "mac-group" | "network-group" | "port-group"
            ]
    )
}

/// Whether a rule-relative path is a multi-value leaf of the model.
pub(crate) fn is_multi(path: &[String]) -> bool {
    matches!(path, [w] if w == "state")
}

/// Builds a rule from its leaves: unknown leaves go to `extra`; a known leaf of the wrong
/// shape is an error.
pub(crate) fn from_leaves(number: u32, mut leaves: Leaves) -> Result<ForwardRule, ParseError> {
    leaf::drop_covered_flags(&mut leaves);
    let mut r = ForwardRule::new(number);
    for (path, value) in leaves {
        if !is_known(&path) {
            r.extra.insert(path, leaf::as_set(value));
            continue;
        }
        let shape = |expected| ParseError::Shape {
            at: format!("rule {number} {}", path.join(" ")),
            expected,
        };
        let w: Vec<&str> = path.iter().map(String::as_str).collect();
        match (w.as_slice(), value) {
            (["disable"], LeafValue::Flag) => r.disabled = true,
            (["log"], LeafValue::Flag) => r.log = true,
            (["disable" | "log"], _) => return Err(shape("a valueless leaf ({})")),
            (["state"], LeafValue::Flag) => return Err(shape("a string or a list of strings")),
            (["state"], v) => r.state.extend(v.values()),
            (_, LeafValue::One(v)) => {
                let slot = match w.as_slice() {
                    ["action"] => &mut r.action,
                    ["description"] => &mut r.description,
                    ["protocol"] => {
                        r.protocol = Some(Protocol::from_vyos(&v));
                        continue;
                    }
                    ["connection-status", "nat"] => &mut r.connection_status_nat,
                    [side, rest @ ..] => {
                        let m = if *side == "source" {
                            &mut r.source
                        } else {
                            &mut r.destination
                        };
                        match rest {
                            ["address"] => &mut m.address,
                            ["port"] => &mut m.port,
                            ["fqdn"] => &mut m.fqdn,
                            [_, "address-group"] => &mut m.group.address_group,
                            [_, "domain-group"] => &mut m.group.domain_group,
                            [_, "mac-group"] => &mut m.group.mac_group,
                            [_, "network-group"] => &mut m.group.network_group,
                            _ => &mut m.group.port_group,
                        }
                    }
                    [] => continue,
                };
                *slot = Some(v);
            }
            _ => return Err(shape("a string")),
        }
    }
    Ok(r)
}
