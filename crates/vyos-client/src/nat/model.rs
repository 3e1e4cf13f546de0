//! The rule structs and their flat "leaf" form.
//!
//! Every rule converts to and from a map of leaf paths (relative to the rule node)
//! to [`LeafValue`]s. Parsing, rendering, diffing and applying all go through that
//! one form, so they agree on what a rule is.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::NatKind;
use super::parse::ParseError;

/// A leaf path relative to the rule node, e.g. `["translation", "port"]`.
pub type LeafPath = Vec<String>;

/// What a leaf holds, as `showConfig` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LeafValue {
    /// A valueless leaf (`disable`, `log`, `exclude`) or an empty node: JSON `{}`.
    Flag,
    /// One value: a JSON string.
    One(String),
    /// A multi-value leaf: a JSON array (VyOS shows a one-value multi leaf as a string).
    Many(Vec<String>),
}

impl LeafValue {
    /// The values, whatever the shape (empty for a flag).
    pub fn values(&self) -> Vec<String> {
        match self {
            LeafValue::Flag => Vec::new(),
            LeafValue::One(v) => vec![v.clone()],
            LeafValue::Many(vs) => vs.clone(),
        }
    }
}

/// An IP protocol match (`protocol` leaf). VyOS's default is `all`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// `all` (the default, never rendered).
    All,
    /// `tcp`.
    Tcp,
    /// `udp`.
    Udp,
    /// `tcp_udp`: both.
    TcpUdp,
    /// Anything else as written: a name (`icmp`, `gre`), a number `0-255`, or a negation
    /// (`!tcp`). Build values with [`Protocol::from_vyos`] so `tcp` never lands here.
    Other(String),
}

impl Protocol {
    /// Reads the config text.
    pub fn from_vyos(s: &str) -> Protocol {
        match s {
            "all" => Protocol::All,
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "tcp_udp" => Protocol::TcpUdp,
            other => Protocol::Other(other.to_owned()),
        }
    }

    /// The config text.
    pub fn as_str(&self) -> &str {
        match self {
            Protocol::All => "all",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::TcpUdp => "tcp_udp",
            Protocol::Other(s) => s,
        }
    }

    /// Whether VyOS allows ports with this protocol (`tcp`, `udp`, `tcp_udp`).
    pub fn allows_ports(&self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp | Protocol::TcpUdp)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `inbound-interface` (DNAT) or `outbound-interface` (SNAT): `name` or `group`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct InterfaceMatch {
    /// `name <ifname>`; `*` is a wildcard, a leading `!` negates.
    pub name: Option<String>,
    /// `group <interface-group>`.
    pub group: Option<String>,
}

impl InterfaceMatch {
    /// Neither leaf set.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.group.is_none()
    }
}

/// A part of a rule that most rules leave empty, kept out of line (8 bytes instead of a
/// hundred or more in every rule, of which the writer holds tens of thousands): absent
/// until a field of it is set. Reads through it see an empty part, a write makes one, and
/// an emptied part equals an absent one.
#[derive(Clone, Default)]
pub struct Sparse<T: Part>(Option<Box<T>>);

/// A part [`Sparse`] can hold: it has a shared empty value to read when absent.
pub trait Part: Default + PartialEq + 'static {
    /// The empty part.
    fn empty() -> &'static Self;
}

impl<T: Part> std::ops::Deref for Sparse<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self.0.as_deref() {
            Some(part) => part,
            None => T::empty(),
        }
    }
}

impl<T: Part> std::ops::DerefMut for Sparse<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T: Part> From<T> for Sparse<T> {
    fn from(part: T) -> Self {
        Self((part != *T::empty()).then(|| Box::new(part)))
    }
}

impl<T: Part> PartialEq for Sparse<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Part + Eq> Eq for Sparse<T> {}

impl<T: Part + std::hash::Hash> std::hash::Hash for Sparse<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl<T: Part + fmt::Debug> fmt::Debug for Sparse<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// Firewall groups referenced by a `source` or `destination` match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GroupMatch {
    /// `group address-group`.
    pub address_group: Option<String>,
    /// `group domain-group`.
    pub domain_group: Option<String>,
    /// `group mac-group`.
    pub mac_group: Option<String>,
    /// `group network-group`.
    pub network_group: Option<String>,
    /// `group port-group`.
    pub port_group: Option<String>,
}

/// The `source` or `destination` match of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AddressMatch {
    /// `address`: `a.b.c.d`, `a.b.c.d/n` or `a.b.c.d-e.f.g.h`, optionally `!`-negated.
    pub address: Option<String>,
    /// `port`: a comma list of ports, ranges and service names, each optionally `!`.
    pub port: Option<String>,
    /// `fqdn` (VyOS 1.5).
    pub fqdn: Option<String>,
    /// `group ...`.
    pub group: Sparse<GroupMatch>,
}

impl Part for GroupMatch {
    fn empty() -> &'static Self {
        static EMPTY: GroupMatch = GroupMatch {
            address_group: None,
            domain_group: None,
            mac_group: None,
            network_group: None,
            port_group: None,
        };
        &EMPTY
    }
}

impl Part for LoadBalance {
    fn empty() -> &'static Self {
        static EMPTY: LoadBalance = LoadBalance {
            hash: BTreeSet::new(),
            backends: BTreeMap::new(),
        };
        &EMPTY
    }
}

/// The `translation` of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Translation {
    /// `translation address`: address, prefix or range; `masquerade` (SNAT only).
    pub address: Option<String>,
    /// `translation port`: a port, `a-b` or a service name.
    pub port: Option<String>,
    /// `translation redirect port` (DNAT only): redirect to the router itself.
    pub redirect_port: Option<String>,
    /// `translation options address-mapping` (`persistent`; default `random`).
    pub address_mapping: Option<String>,
    /// `translation options port-mapping` (`random`; default `none`).
    pub port_mapping: Option<String>,
}

/// `load-balance`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LoadBalance {
    /// `hash` (multi-value): `source-address`, `destination-address`, `source-port`,
    /// `destination-port`, `random` (the default, not rendered when alone).
    pub hash: BTreeSet<String>,
    /// `backend <ipv4> [weight <1-100>]`.
    pub backends: BTreeMap<String, Option<String>>,
}

/// One IPv4 NAT rule, `nat <kind> rule <number>`.
///
/// Every leaf VyOS 1.4/1.5 has for these rules is a field; anything else the router
/// holds under the rule is kept in `extra`, so parse → render is lossless.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NatRule {
    /// The rule number, `1..=999999`.
    pub number: u32,
    /// The table.
    pub kind: NatKind,
    /// `description` (≤ 255 characters; no quotes, no newline).
    pub description: Option<String>,
    /// `disable` (disabled rules are still verified at commit).
    pub disabled: bool,
    /// `exclude`: matching packets skip NAT.
    pub exclude: bool,
    /// `log`.
    pub log: bool,
    /// `packet-type` (`broadcast`, `host`, `multicast`, `other`).
    pub packet_type: Option<String>,
    /// `protocol`; `None` means VyOS's default, `all`.
    pub protocol: Option<Protocol>,
    /// `inbound-interface` (DNAT only).
    pub inbound_interface: InterfaceMatch,
    /// `outbound-interface` (SNAT only).
    pub outbound_interface: InterfaceMatch,
    /// `source`.
    pub source: AddressMatch,
    /// `destination`.
    pub destination: AddressMatch,
    /// `translation`.
    pub translation: Translation,
    /// `load-balance`.
    pub load_balance: Sparse<LoadBalance>,
    /// Leaves this model does not know, by path relative to the rule node.
    pub extra: BTreeMap<LeafPath, LeafValue>,
}

impl NatRule {
    /// An empty rule (no leaves).
    pub fn new(kind: NatKind, number: u32) -> Self {
        NatRule {
            number,
            kind,
            description: None,
            disabled: false,
            exclude: false,
            log: false,
            packet_type: None,
            protocol: None,
            inbound_interface: InterfaceMatch::default(),
            outbound_interface: InterfaceMatch::default(),
            source: AddressMatch::default(),
            destination: AddressMatch::default(),
            translation: Translation::default(),
            load_balance: Sparse::default(),
            extra: BTreeMap::new(),
        }
    }

    /// The same rule without leaves that restate VyOS defaults (`protocol all`,
    /// `address-mapping random`, `port-mapping none`, `hash random`). This is the form
    /// a rule has after a round trip through the router.
    pub fn normalized(&self) -> NatRule {
        // Conversion of a normalized leaf list cannot fail.
        from_leaves(self.kind, self.number, leaf_map(self)).unwrap_or_else(|_| self.clone())
    }

    /// The effective protocol (`all` when unset).
    pub fn effective_protocol(&self) -> Protocol {
        self.protocol.clone().unwrap_or(Protocol::All)
    }
}

fn p(words: &[&str]) -> LeafPath {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn push_opt(out: &mut Vec<(LeafPath, LeafValue)>, path: &[&str], v: &Option<String>) {
    if let Some(v) = v {
        out.push((p(path), LeafValue::One(v.clone())));
    }
}

fn push_flag(out: &mut Vec<(LeafPath, LeafValue)>, path: &[&str], on: bool) {
    if on {
        out.push((p(path), LeafValue::Flag));
    }
}

fn push_side(out: &mut Vec<(LeafPath, LeafValue)>, side: &str, m: &AddressMatch) {
    push_opt(out, &[side, "address"], &m.address);
    push_opt(out, &[side, "port"], &m.port);
    push_opt(out, &[side, "fqdn"], &m.fqdn);
    push_opt(
        out,
        &[side, "group", "address-group"],
        &m.group.address_group,
    );
    push_opt(out, &[side, "group", "domain-group"], &m.group.domain_group);
    push_opt(out, &[side, "group", "mac-group"], &m.group.mac_group);
    push_opt(
        out,
        &[side, "group", "network-group"],
        &m.group.network_group,
    );
    push_opt(out, &[side, "group", "port-group"], &m.group.port_group);
}

/// The rule's leaves in rendering order, without defaults.
pub(crate) fn leaves(rule: &NatRule) -> Vec<(LeafPath, LeafValue)> {
    let mut out = Vec::new();
    push_opt(&mut out, &["description"], &rule.description);
    push_flag(&mut out, &["disable"], rule.disabled);
    push_flag(&mut out, &["exclude"], rule.exclude);
    push_flag(&mut out, &["log"], rule.log);
    push_opt(&mut out, &["packet-type"], &rule.packet_type);
    if let Some(proto) = &rule.protocol
        && *proto != Protocol::All
    {
        out.push((p(&["protocol"]), LeafValue::One(proto.as_str().to_owned())));
    }
    for (node, m) in [
        ("inbound-interface", &rule.inbound_interface),
        ("outbound-interface", &rule.outbound_interface),
    ] {
        push_opt(&mut out, &[node, "name"], &m.name);
        push_opt(&mut out, &[node, "group"], &m.group);
    }
    push_side(&mut out, "source", &rule.source);
    push_side(&mut out, "destination", &rule.destination);
    let t = &rule.translation;
    push_opt(&mut out, &["translation", "address"], &t.address);
    push_opt(&mut out, &["translation", "port"], &t.port);
    push_opt(
        &mut out,
        &["translation", "redirect", "port"],
        &t.redirect_port,
    );
    if t.address_mapping.as_deref() != Some("random") {
        push_opt(
            &mut out,
            &["translation", "options", "address-mapping"],
            &t.address_mapping,
        );
    }
    if t.port_mapping.as_deref() != Some("none") {
        push_opt(
            &mut out,
            &["translation", "options", "port-mapping"],
            &t.port_mapping,
        );
    }
    let lb = &rule.load_balance;
    let default_hash = lb.hash.len() == 1 && lb.hash.contains("random");
    if !lb.hash.is_empty() && !default_hash {
        out.push((
            p(&["load-balance", "hash"]),
            LeafValue::Many(lb.hash.iter().cloned().collect()),
        ));
    }
    for (addr, weight) in &lb.backends {
        match weight {
            Some(w) => out.push((
                p(&["load-balance", "backend", addr, "weight"]),
                LeafValue::One(w.clone()),
            )),
            None => out.push((p(&["load-balance", "backend", addr]), LeafValue::Flag)),
        }
    }
    for (path, v) in &rule.extra {
        out.push((path.clone(), v.clone()));
    }
    out
}

/// The rule's leaves as a map (for diffing).
pub(crate) fn leaf_map(rule: &NatRule) -> BTreeMap<LeafPath, LeafValue> {
    leaves(rule).into_iter().collect()
}

/// Whether a rule-relative path is a multi-value leaf in VyOS's schema.
pub(crate) fn is_multi(path: &[String]) -> bool {
    path.len() == 2 && path[0] == "load-balance" && path[1] == "hash"
}

/// Whether a rule-relative path is a leaf this model knows.
pub(crate) fn is_known(path: &[String]) -> bool {
    Words::of(path).is_some_and(|w| known(w.as_slice()))
}

/// Whether a path, as words, is a leaf this model knows.
fn known(words: &[&str]) -> bool {
    matches!(
        words,
        ["description" | "disable" | "exclude" | "log" | "packet-type" | "protocol"]
            | ["inbound-interface" | "outbound-interface", "name" | "group"]
            | ["source" | "destination", "address" | "port" | "fqdn"]
            | [
                "source" | "destination",
                "group",
                "address-group" | "domain-group" | "mac-group" | "network-group" | "port-group",
            ]
            | ["translation", "address" | "port"]
            | ["translation", "redirect", "port"]
            | ["translation", "options", "address-mapping" | "port-mapping"]
            | ["load-balance", "hash"]
            | ["load-balance", "backend", _]
            | ["load-balance", "backend", _, "weight"]
    )
}

/// A path's words borrowed on the stack: a known leaf is at most four deep, and a rule has
/// ten thousand siblings at each read, so the words are not collected into a `Vec`.
struct Words<'a> {
    buf: [&'a str; 4],
    len: usize,
}

impl<'a> Words<'a> {
    /// `None`: deeper than any known leaf.
    fn of(path: &'a [String]) -> Option<Self> {
        let mut buf = [""; 4];
        if path.len() > buf.len() {
            return None;
        }
        for (slot, word) in buf.iter_mut().zip(path) {
            *slot = word;
        }
        Some(Self {
            buf,
            len: path.len(),
        })
    }

    fn as_slice(&self) -> &[&'a str] {
        &self.buf[..self.len]
    }
}

/// Adds one leaf to `rule`: a known leaf to its field (an error if its shape is wrong),
/// any other to `extra`.
pub(crate) fn take_leaf(
    rule: &mut NatRule,
    path: &[String],
    value: LeafValue,
) -> Result<(), ParseError> {
    if let Some(words) = Words::of(path)
        && known(words.as_slice())
    {
        return apply_known(rule, path, words.as_slice(), value);
    }
    // Multi-value leaves are compared as sets: sorted, without repeats.
    let value = match value {
        LeafValue::Many(mut vs) => {
            vs.sort();
            vs.dedup();
            LeafValue::Many(vs)
        }
        v => v,
    };
    rule.extra.insert(path.to_vec(), value);
    Ok(())
}

/// Builds a rule from its leaves. Unknown leaves go to `extra`; a known leaf with
/// the wrong shape (a list where one value belongs, a value on a flag) is an error.
/// An empty-node flag that is a prefix of another leaf is dropped (it adds nothing).
pub(crate) fn from_leaves(
    kind: NatKind,
    number: u32,
    leaves: BTreeMap<LeafPath, LeafValue>,
) -> Result<NatRule, ParseError> {
    let mut rule = NatRule::new(kind, number);
    let mut leaves = leaves.into_iter().peekable();
    while let Some((path, value)) = leaves.next() {
        // An empty node with leaves under it is not a flag. The paths are sorted, so any
        // path under this one comes right after it.
        if value == LeafValue::Flag
            && leaves
                .peek()
                .is_some_and(|(next, _)| next.len() > path.len() && next.starts_with(&path))
        {
            continue;
        }
        take_leaf(&mut rule, &path, value)?;
    }
    Ok(rule)
}

/// A known leaf (`w`: `path`'s words) into its field.
fn apply_known(
    rule: &mut NatRule,
    path: &[String],
    w: &[&str],
    value: LeafValue,
) -> Result<(), ParseError> {
    let shape = |expected: &'static str| ParseError::Shape {
        rule: rule.number,
        path: path.join(" "),
        expected,
    };
    // Flags and the multi leaf first; everything else holds one value.
    match w {
        ["disable" | "exclude" | "log"] => {
            if value != LeafValue::Flag {
                return Err(shape("a valueless leaf ({})"));
            }
            match w[0] {
                "disable" => rule.disabled = true,
                "exclude" => rule.exclude = true,
                _ => rule.log = true,
            }
            return Ok(());
        }
        ["load-balance", "hash"] => {
            let vals = match value {
                LeafValue::Flag => return Err(shape("a string or a list of strings")),
                v => v.values(),
            };
            rule.load_balance.hash.extend(vals);
            return Ok(());
        }
        ["load-balance", "backend", addr] => {
            if value != LeafValue::Flag {
                return Err(shape("a node"));
            }
            rule.load_balance
                .backends
                .entry((*addr).to_owned())
                .or_insert(None);
            return Ok(());
        }
        _ => {}
    }
    let v = match value {
        LeafValue::One(v) => v,
        _ => return Err(shape("a string")),
    };
    let slot: &mut Option<String> = match w {
        ["description"] => &mut rule.description,
        ["packet-type"] => &mut rule.packet_type,
        ["protocol"] => {
            rule.protocol = Some(Protocol::from_vyos(&v));
            return Ok(());
        }
        ["inbound-interface", "name"] => &mut rule.inbound_interface.name,
        ["inbound-interface", "group"] => &mut rule.inbound_interface.group,
        ["outbound-interface", "name"] => &mut rule.outbound_interface.name,
        ["outbound-interface", "group"] => &mut rule.outbound_interface.group,
        [side @ ("source" | "destination"), rest @ ..] => {
            let m = if *side == "source" {
                &mut rule.source
            } else {
                &mut rule.destination
            };
            match rest {
                ["address"] => &mut m.address,
                ["port"] => &mut m.port,
                ["fqdn"] => &mut m.fqdn,
                ["group", "address-group"] => &mut m.group.address_group,
                ["group", "domain-group"] => &mut m.group.domain_group,
                ["group", "mac-group"] => &mut m.group.mac_group,
                ["group", "network-group"] => &mut m.group.network_group,
                _ => &mut m.group.port_group,
            }
        }
        ["translation", "address"] => &mut rule.translation.address,
        ["translation", "port"] => &mut rule.translation.port,
        ["translation", "redirect", "port"] => &mut rule.translation.redirect_port,
        ["translation", "options", "address-mapping"] => &mut rule.translation.address_mapping,
        ["translation", "options", "port-mapping"] => &mut rule.translation.port_mapping,
        ["load-balance", "backend", addr, "weight"] => {
            rule.load_balance
                .backends
                .insert((*addr).to_owned(), Some(v));
            return Ok(());
        }
        _ => {
            rule.extra.insert(path.to_vec(), LeafValue::One(v));
            return Ok(());
        }
    };
    *slot = Some(v);
    Ok(())
}

#[cfg(test)]
mod sparse_tests {
    use super::*;

    #[test]
    fn a_sparse_part_reads_empty_until_written_and_an_emptied_one_equals_an_absent_one() {
        let mut a = NatRule::new(NatKind::Destination, 10);
        let b = a.clone();
        assert_eq!(a.source.group.network_group, None);
        assert!(a.load_balance.backends.is_empty());
        a.source.group.network_group = Some("VMNET-10".into());
        assert_ne!(a, b);
        a.source.group.network_group = None;
        assert_eq!(a, b, "an emptied part equals an absent one");
        let set: Sparse<GroupMatch> = GroupMatch::default().into();
        assert_eq!(set.0, None, "an empty part is not boxed");
        // The point of it: the rules the writer holds by the ten thousand stay small.
        assert!(
            std::mem::size_of::<NatRule>() <= 512,
            "{}",
            std::mem::size_of::<NatRule>()
        );
    }
}
