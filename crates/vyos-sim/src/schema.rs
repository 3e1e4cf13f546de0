//! What `set`, `delete` and `comment` accept: VyOS's top-level nodes, the levels the
//! operator touches, and the parts of the schema it writes (NAT, the IPv4 forward filter,
//! DHCP static mappings) with their value validators and error texts (reference §2.4,
//! §5.1, §5.2; docs/vyos-dhcp-firewall.md).
//!
//! A path VyOS's schema does not have is refused with the CLI's text
//! (`Configuration path: [bogus x] is not valid`, then `Set failed` / `Delete failed` /
//! `Comment failed`). The node names come from vyos-1x's `interface-definitions` (the
//! sagitta branch for 1.4, current for 1.5). Below the levels modelled here (`Def::Open`
//! in `TOP`) any path is taken as a generic node with the last element as its value,
//! enough for the config to hold it; docs/vyos-sim.md lists those subtrees.

use std::net::Ipv4Addr;

use crate::Version;
use crate::services::SERVICES;

/// What a path names once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A node (ordinary or tag value): `set` creates it, `delete` removes it.
    Node(Vec<String>),
    /// A leaf with a value: `set` writes it (replacing, or adding for a multi leaf).
    Value {
        /// The leaf's path.
        leaf: Vec<String>,
        /// The value.
        value: String,
        /// A multi-value leaf.
        multi: bool,
    },
    /// A valueless leaf.
    Flag(Vec<String>),
    /// A value leaf named without its value: `set` fails, `delete` removes the leaf.
    BareLeaf(Vec<String>),
    /// A tag node itself, without a tag value (`nat destination rule`): `set` creates
    /// nothing that stays, `delete` removes every tag value, `comment` is refused.
    TagNode(Vec<String>),
}

/// What a level of the schema is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Def {
    /// A node whose children are all listed: another name is not valid.
    Node(&'static [(&'static str, Def)]),
    /// A tag node: a tag value (checked), then the children of that value.
    Tag(TagValue, &'static [(&'static str, Def)]),
    /// A leaf with one value.
    Leaf,
    /// A leaf with several values.
    Multi,
    /// A leaf with one value, checked at set time.
    Value(Check),
    /// A leaf with several values, each checked at set time.
    Values(Check),
    /// A valueless leaf.
    Flag,
    /// Not modelled below here: any path is taken (the generic rule).
    Open,
    /// `nat destination` or `nat source`: the NAT parser below.
    Nat,
    /// `firewall group network-group`: its own parser below.
    NetworkGroup,
    /// Only in this version's schema.
    Only(Version, &'static Def),
}

/// How a tag value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagValue {
    /// A rule number 1-999999, with this constraint message.
    Number(&'static str),
    /// `constraint/alpha-numeric-hyphen-underscore-dot.xml.i`'s regex
    /// `[-_a-zA-Z0-9][\w\-\.\+]*`, with this constraint message.
    AlnumDot(&'static str),
    /// `service dhcp-server ... subnet`: the `ipv4-prefix` validator.
    Subnet,
    /// `... static-mapping`: 1.4's regex `[-_a-zA-Z0-9.]+`, 1.5's `fqdn` validator.
    StaticMapping,
}

use Def::{Flag as F, Leaf as L, Multi as M, Open as O, Value as V};

const V14: Version = Version::V1_4;
const V15: Version = Version::V1_5;

/// The top-level nodes of VyOS's schema (vyos-1x `interface-definitions/*.xml.in`: the
/// same sixteen on sagitta and current, and `netns` on current).
pub(crate) const TOP: &[(&str, Def)] = &[
    ("container", O),
    ("firewall", Def::Node(FIREWALL)),
    ("high-availability", O),
    ("interfaces", O),
    ("load-balancing", O),
    ("nat", Def::Node(NAT)),
    ("nat64", O),
    ("nat66", O),
    ("netns", Def::Only(V15, &O)),
    ("pki", O),
    ("policy", O),
    ("protocols", O),
    ("qos", O),
    ("service", Def::Node(SERVICE)),
    ("system", Def::Node(SYSTEM)),
    ("vpn", O),
    ("vrf", O),
];

const NAT: &[(&str, Def)] = &[
    ("cgnat", Def::Only(V15, &O)),
    ("destination", Def::Nat),
    ("source", Def::Nat),
    ("static", O),
];

const FIREWALL: &[(&str, Def)] = &[
    ("bridge", O),
    ("flowtable", O),
    ("global-options", O),
    ("group", Def::Node(FIREWALL_GROUP)),
    ("ipv4", Def::Node(FIREWALL_IPV4)),
    ("ipv6", O),
    ("zone", O),
];

const FIREWALL_GROUP: &[(&str, Def)] = &[
    ("address-group", O),
    ("domain-group", O),
    ("dynamic-group", O),
    ("interface-group", O),
    ("ipv6-address-group", O),
    ("ipv6-network-group", O),
    ("mac-group", O),
    ("network-group", Def::NetworkGroup),
    ("port-group", O),
];

const FIREWALL_IPV4: &[(&str, Def)] = &[
    (
        "forward",
        Def::Node(&[("filter", Def::Node(FORWARD_FILTER))]),
    ),
    ("input", O),
    ("name", O),
    ("output", O),
    ("prerouting", Def::Only(V15, &O)),
];

/// `firewall ipv4 forward filter` (`include/firewall/ipv4-hook-forward.xml.i`): the chain's
/// leaves and its rules' children, with the validators of the leaves the operator writes
/// (`action`, `protocol`, `description`, `state`, `connection-status nat`, `source` and
/// `destination`); the other children's values are not checked.
const FORWARD_FILTER: &[(&str, Def)] = &[
    // default-action-base-chains.xml.i: `(drop|accept)`, default accept.
    ("default-action", V(Check::DefaultAction)),
    ("default-log", F),
    ("description", V(Check::Description)),
    (
        "rule",
        Def::Tag(
            TagValue::Number("Firewall rule number must be between 1 and 999999"),
            FIREWALL_RULE,
        ),
    ),
];

const FIREWALL_RULE: &[(&str, Def)] = &[
    // action.xml.i and action-forward.xml.i (the same leaf twice): a regex, no message.
    ("action", V(Check::FirewallAction)),
    ("add-address-to-group", O),
    ("connection-mark", M),
    (
        "connection-status",
        Def::Node(&[("nat", V(Check::ConnectionStatusNat))]),
    ),
    ("conntrack-helper", M),
    ("description", V(Check::Description)),
    ("destination", Def::Node(FIREWALL_SIDE)),
    ("disable", F),
    ("dscp", M),
    ("dscp-exclude", M),
    ("fragment", O),
    ("gre", Def::Only(V15, &O)),
    ("icmp", O),
    ("inbound-interface", O),
    ("ipsec", O),
    ("jump-target", L),
    ("limit", O),
    ("log", F),
    ("log-options", O),
    ("mark", L),
    ("offload-target", L),
    ("outbound-interface", O),
    ("packet-length", M),
    ("packet-length-exclude", M),
    ("packet-type", L),
    ("protocol", V(Check::Protocol)),
    ("queue", L),
    ("queue-options", M),
    ("recent", O),
    ("set", Def::Only(V15, &O)),
    ("source", Def::Node(FIREWALL_SIDE)),
    ("state", Def::Values(Check::State)),
    ("synproxy", O),
    ("tcp", O),
    ("time", O),
    ("ttl", O),
];

/// A firewall rule's `source` / `destination` (`common-rule-ipv4.xml.i`, the same on 1.4
/// and 1.5): `address.xml.i` takes the validators of a NAT address, `port.xml.i`
/// `port-multi`; the group leaves have no validator.
const FIREWALL_SIDE: &[(&str, Def)] = &[
    ("address", V(Check::Address)),
    ("address-mask", V(Check::Ipv4Address)),
    ("fqdn", V(Check::Fqdn)),
    ("geoip", O),
    (
        "group",
        Def::Node(&[
            ("address-group", V(Check::Group)),
            ("domain-group", V(Check::Group)),
            ("dynamic-address-group", V(Check::Group)),
            ("mac-group", V(Check::Group)),
            ("network-group", V(Check::Group)),
            ("port-group", V(Check::Group)),
        ]),
    ),
    ("mac-address", V(Check::MacMatch)),
    ("port", V(Check::PortMulti)),
];

const SERVICE: &[(&str, Def)] = &[
    ("aws", Def::Only(V15, &O)),
    ("broadcast-relay", O),
    ("config-sync", O),
    ("conntrack-sync", O),
    ("console-server", O),
    ("dhcp-relay", O),
    ("dhcp-server", Def::Node(DHCP_SERVER)),
    ("dhcpv6-relay", O),
    ("dhcpv6-server", O),
    ("dns", O),
    ("event-handler", O),
    ("https", O),
    ("ids", O),
    ("ipoe-server", O),
    ("lldp", O),
    ("mdns", O),
    ("monitoring", O),
    ("ndp-proxy", O),
    ("ntp", O),
    ("pppoe-server", O),
    ("router-advert", O),
    ("salt-minion", O),
    ("sla", O),
    ("snmp", O),
    ("ssh", O),
    ("stunnel", Def::Only(V15, &O)),
    ("suricata", Def::Only(V15, &O)),
    ("tftp-server", O),
    ("webproxy", O),
];

/// `service dhcp-server`: ISC dhcpd's options on 1.4, Kea's on 1.5.
const DHCP_SERVER: &[(&str, Def)] = &[
    ("disable", F),
    ("dynamic-dns-update", F),
    ("global-parameters", Def::Only(V14, &M)),
    ("high-availability", O),
    ("host-decl-name", Def::Only(V14, &F)),
    ("hostfile-update", F),
    ("listen-address", Def::Values(Check::Ipv4Address)),
    ("listen-interface", Def::Only(V15, &M)),
    (
        "shared-network-name",
        Def::Tag(
            TagValue::AlnumDot(
                "Invalid shared network name. May only contain letters, numbers and .-_",
            ),
            SHARED_NETWORK,
        ),
    ),
];

const SHARED_NETWORK: &[(&str, Def)] = &[
    ("authoritative", F),
    ("description", V(Check::Description)),
    ("disable", F),
    ("domain-name", Def::Only(V14, &L)),
    ("domain-search", Def::Only(V14, &M)),
    ("name-server", Def::Only(V14, &M)),
    ("ntp-server", Def::Only(V14, &M)),
    ("option", Def::Only(V15, &O)),
    ("ping-check", Def::Only(V14, &F)),
    ("shared-network-parameters", Def::Only(V14, &M)),
    ("subnet", Def::Tag(TagValue::Subnet, SUBNET)),
];

const SUBNET: &[(&str, Def)] = &[
    ("bootfile-name", Def::Only(V14, &L)),
    ("bootfile-server", Def::Only(V14, &L)),
    ("bootfile-size", Def::Only(V14, &L)),
    ("client-prefix-length", Def::Only(V14, &L)),
    ("default-router", Def::Only(V14, &L)),
    ("description", V(Check::Description)),
    ("disable", Def::Only(V15, &F)),
    ("domain-name", Def::Only(V14, &L)),
    ("domain-search", Def::Only(V14, &M)),
    ("enable-failover", Def::Only(V14, &F)),
    ("exclude", Def::Values(Check::Ipv4Address)),
    ("ignore-client-id", Def::Only(V15, &F)),
    ("ip-forwarding", Def::Only(V14, &F)),
    ("ipv6-only-preferred", Def::Only(V14, &L)),
    ("lease", V(Check::Lease)),
    ("name-server", Def::Only(V14, &M)),
    ("ntp-server", Def::Only(V14, &M)),
    ("option", Def::Only(V15, &O)),
    ("ping-check", Def::Only(V14, &F)),
    ("pop-server", Def::Only(V14, &M)),
    (
        "range",
        Def::Tag(
            TagValue::AlnumDot("Invalid range name, may only be alphanumeric, dot and hyphen"),
            DHCP_RANGE,
        ),
    ),
    ("server-identifier", Def::Only(V14, &L)),
    ("smtp-server", Def::Only(V14, &M)),
    (
        "static-mapping",
        Def::Tag(TagValue::StaticMapping, STATIC_MAPPING),
    ),
    ("static-route", Def::Only(V14, &O)),
    ("subnet-id", Def::Only(V15, &V(Check::SubnetId))),
    ("subnet-parameters", Def::Only(V14, &M)),
    ("tftp-server-name", Def::Only(V14, &L)),
    ("time-offset", Def::Only(V14, &L)),
    ("time-server", Def::Only(V14, &M)),
    ("vendor-option", Def::Only(V14, &O)),
    ("wins-server", Def::Only(V14, &M)),
    ("wpad-url", Def::Only(V14, &L)),
];

/// A lease range: `start` and `stop` (`ipv4-address`), and 1.5's `option`.
const DHCP_RANGE: &[(&str, Def)] = &[
    ("option", Def::Only(V15, &O)),
    ("start", V(Check::Ipv4Address)),
    ("stop", V(Check::Ipv4Address)),
];

/// 1.4 names the MAC `mac-address`, 1.5 (Kea) `mac` (`include/interface/mac.xml.i`); both
/// take the `mac-address` validator. `description` and `duid` are 1.5's.
const STATIC_MAPPING: &[(&str, Def)] = &[
    ("description", Def::Only(V15, &V(Check::Description))),
    ("disable", F),
    ("duid", Def::Only(V15, &V(Check::Duid))),
    ("ip-address", V(Check::Ipv4Address)),
    ("mac", Def::Only(V15, &V(Check::MacAddress))),
    ("mac-address", Def::Only(V14, &V(Check::MacAddress))),
    ("option", Def::Only(V15, &O)),
    ("static-mapping-parameters", Def::Only(V14, &M)),
];

const SYSTEM: &[(&str, Def)] = &[
    ("acceleration", O),
    ("config-management", Def::Node(CONFIG_MANAGEMENT)),
    ("conntrack", O),
    ("console", O),
    ("domain-name", L),
    ("domain-search", M),
    ("flow-accounting", O),
    ("frr", O),
    ("host-name", L),
    ("ip", O),
    ("ipv6", O),
    ("lcd", O),
    ("login", O),
    ("logs", O),
    ("name-server", M),
    ("option", O),
    ("proxy", O),
    ("sflow", O),
    ("static-host-mapping", O),
    ("sysctl", O),
    ("syslog", O),
    ("task-scheduler", O),
    ("time-zone", L),
    ("update-check", O),
    ("wireless", Def::Only(V15, &O)),
];

const CONFIG_MANAGEMENT: &[(&str, Def)] = &[
    (
        "commit-archive",
        Def::Node(&[("location", M), ("source-address", L)]),
    ),
    (
        "commit-confirm",
        Def::Only(V15, &Def::Node(&[("action", L)])),
    ),
    ("commit-revisions", L),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Flag,
    Value(Check),
    Multi(Check),
}

/// A set-time value check (a leaf's `<constraint>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Description,
    PacketType,
    Protocol,
    Interface,
    Group,
    Address,
    PortMulti,
    PortRange,
    TranslationAddress {
        snat: bool,
    },
    AddressMapping,
    PortMapping,
    Hash,
    Weight,
    Fqdn,
    /// `ipv4-address` (ipaddrcheck `--is-ipv4-single`).
    Ipv4Address,
    /// The `mac-address` validator.
    MacAddress,
    /// `mac-address` or `mac-address-exclude` (a firewall rule's `mac-address`).
    MacMatch,
    /// `interface/duid.xml.i`'s regex.
    Duid,
    /// `subnet-id`: `numeric --range 1-4294967295`.
    SubnetId,
    /// `lease`: `numeric --range 0-4294967295`.
    Lease,
    /// A firewall rule's `action`.
    FirewallAction,
    /// A base chain's `default-action`.
    DefaultAction,
    /// `state`.
    State,
    /// `connection-status nat`.
    ConnectionStatusNat,
}

/// The leaves of a NAT rule, relative to `nat <kind> rule <n>`. `*` is the backend tag.
fn rule_leaves(kind: &str, version: Version) -> Vec<(Vec<&'static str>, Kind)> {
    let mut v: Vec<(Vec<&'static str>, Kind)> = vec![
        (vec!["description"], Kind::Value(Check::Description)),
        (vec!["disable"], Kind::Flag),
        (vec!["exclude"], Kind::Flag),
        (vec!["log"], Kind::Flag),
        (vec!["packet-type"], Kind::Value(Check::PacketType)),
        (vec!["protocol"], Kind::Value(Check::Protocol)),
        (
            vec!["translation", "address"],
            Kind::Value(Check::TranslationAddress {
                snat: kind == "source",
            }),
        ),
        (vec!["translation", "port"], Kind::Value(Check::PortRange)),
        (
            vec!["translation", "options", "address-mapping"],
            Kind::Value(Check::AddressMapping),
        ),
        (
            vec!["translation", "options", "port-mapping"],
            Kind::Value(Check::PortMapping),
        ),
        (vec!["load-balance", "hash"], Kind::Multi(Check::Hash)),
        (
            vec!["load-balance", "backend", "*", "weight"],
            Kind::Value(Check::Weight),
        ),
    ];
    let iface = if kind == "destination" {
        "inbound-interface"
    } else {
        "outbound-interface"
    };
    v.push((vec![iface, "name"], Kind::Value(Check::Interface)));
    v.push((vec![iface, "group"], Kind::Value(Check::Group)));
    if kind == "destination" {
        v.push((
            vec!["translation", "redirect", "port"],
            Kind::Value(Check::PortRange),
        ));
    }
    for side in ["source", "destination"] {
        v.push((vec![side, "address"], Kind::Value(Check::Address)));
        v.push((vec![side, "port"], Kind::Value(Check::PortMulti)));
        if version == Version::V1_5 {
            v.push((vec![side, "fqdn"], Kind::Value(Check::Fqdn)));
        }
        for g in [
            "address-group",
            "domain-group",
            "mac-group",
            "network-group",
            "port-group",
        ] {
            v.push((vec![side, "group", g], Kind::Value(Check::Group)));
        }
    }
    v
}

fn invalid_path(path: &[String], what: &str) -> String {
    format!(
        "Configuration path: [{}] is not valid\n\n{what} failed",
        path.join(" ")
    )
}

/// Whether `path` names a tag value that VyOS keeps when it has no children: a NAT rule,
/// a rule's load-balance backend, a firewall group, a forward-filter rule, a DHCP shared
/// network, subnet, range or static mapping. (An empty rule then fails the NAT commit's
/// "translation requires address and/or port"; a backend without a weight its
/// `int(weight)`; a DHCP subnet whose last mapping went, "No DHCP address range or active
/// static-mapping configured": vyatta-cfg's `Cstore::remove_tag` removes the tag node
/// with its last value, never the parents.)
pub(crate) fn kept_when_empty(path: &[String]) -> bool {
    let w: Vec<&str> = path.iter().map(String::as_str).collect();
    matches!(
        w.as_slice(),
        ["nat", "destination" | "source", "rule", _]
            | [
                "nat",
                "destination" | "source",
                "rule",
                _,
                "load-balance",
                "backend",
                _
            ]
            | ["firewall", "group", _, _]
            | ["firewall", "ipv4", "forward", "filter", "rule", _]
            | ["service", "dhcp-server", "shared-network-name", _]
            | [
                "service",
                "dhcp-server",
                "shared-network-name",
                _,
                "subnet",
                _
            ]
            | [
                "service",
                "dhcp-server",
                "shared-network-name",
                _,
                "subnet",
                _,
                "range" | "static-mapping",
                _
            ]
    )
}

/// Tag nodes of the subtrees not modelled here (`Def::Open`), by name: VyOS's common ones
/// (vyos-1x `interface-definitions`: the interface types and `vif`, firewall groups and
/// chains, routes, policies, users, VRFs). Only the rendering as text uses this
/// (`rule 10 {` rather than `rule {` / `10 {`); both read back as the same tree.
const OPEN_TAG_NODES: &[&str] = &[
    "address-group",
    "bonding",
    "bridge",
    "certificate",
    "ca",
    "domain-group",
    "dummy",
    "ethernet",
    "geneve",
    "input",
    "interface-group",
    "ipv6-address-group",
    "ipv6-network-group",
    "l2tpv3",
    "loopback",
    "mac-group",
    "macsec",
    "name",
    "neighbor",
    "network-group",
    "next-hop",
    "openvpn",
    "peer",
    "port-group",
    "pppoe",
    "prefix-list",
    "prefix-list6",
    "pseudo-ethernet",
    "route",
    "route-map",
    "route6",
    "rule",
    "sstpc",
    "table",
    "tunnel",
    "user",
    "vif",
    "vif-c",
    "vif-s",
    "virtual-ethernet",
    "vti",
    "vxlan",
    "wireguard",
    "wireless",
    "wwan",
];

/// Whether the node at `path` is a tag node (`nat destination rule`, `service
/// dhcp-server shared-network-name`): its children are tag values, rendered as text on
/// one line with it (`rule 100 {`). Where the schema is not modelled, a known name
/// ([`OPEN_TAG_NODES`]) decides.
pub(crate) fn is_tag_node(path: &[String], version: Version) -> bool {
    let words: Vec<&str> = path.iter().map(String::as_str).collect();
    let open = || {
        words
            .last()
            .is_some_and(|name| OPEN_TAG_NODES.contains(name))
    };
    let mut def = Def::Node(TOP);
    for (i, name) in words.iter().enumerate() {
        if let Def::Only(v, inner) = def {
            if v != version {
                return false;
            }
            def = *inner;
        }
        def = match def {
            Def::Node(children) => match children.iter().find(|(n, _)| n == name) {
                Some((_, child)) => *child,
                None => return false,
            },
            Def::Tag(_, children) => Def::Node(children),
            Def::Open => return open(),
            Def::Nat => {
                return matches!(
                    &words[i..],
                    ["rule"] | ["rule", _, "load-balance", "backend"]
                );
            }
            Def::NetworkGroup => return false,
            _ => return false,
        };
    }
    if let Def::Only(v, inner) = def {
        if v != version {
            return false;
        }
        def = *inner;
    }
    match def {
        Def::Tag(..) | Def::NetworkGroup => true,
        Def::Open => open(),
        _ => false,
    }
}

/// Parses a `set`/`delete` path (the value, if any, as its last element or in `value`).
/// Errors are VyOS's set-time texts.
pub fn parse(
    path: &[String],
    value: Option<&str>,
    version: Version,
    op: &str,
) -> Result<Target, String> {
    let what = match op {
        "delete" => "Delete",
        "comment" => "Comment",
        _ => "Set",
    };
    let mut full: Vec<String> = path.to_vec();
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        full.push(v.to_owned());
    }
    if full.is_empty() {
        return Err(invalid_path(&full, what));
    }
    for p in &full {
        for (c, name) in [
            ('\'', "single quote (')"),
            ('"', "double quote (\")"),
            ('\n', "newline"),
        ] {
            if p.contains(c) {
                return Err(format!(
                    "Cannot use the {name} character in a value string\n\n{what} failed"
                ));
            }
        }
    }
    walk(full, version, op, what)
}

/// Follows `full` down [`TOP`] to the level that decides what it names.
fn walk(full: Vec<String>, version: Version, op: &str, what: &str) -> Result<Target, String> {
    let mut def = Def::Node(TOP);
    let mut i = 0;
    loop {
        def = match def {
            Def::Only(v, inner) if v == version => *inner,
            Def::Only(..) => return Err(invalid_path(&full, what)),
            Def::Open => return Ok(generic(full)),
            Def::Nat => return nat_rule(full, version, op, what),
            Def::NetworkGroup if full.len() == 3 => return Ok(Target::TagNode(full)),
            Def::NetworkGroup => return network_group(full, what),
            Def::Node(children) => {
                let Some(name) = full.get(i) else {
                    return Ok(Target::Node(full));
                };
                let Some((_, child)) = children.iter().find(|(n, _)| n == name) else {
                    return Err(invalid_path(&full, what));
                };
                i += 1;
                *child
            }
            Def::Tag(check, children) => {
                let Some(tag) = full.get(i) else {
                    return Ok(Target::TagNode(full));
                };
                check_tag_value(check, tag, what, version)?;
                i += 1;
                Def::Node(children)
            }
            Def::Leaf | Def::Multi => {
                return leaf_value(full, i, matches!(def, Def::Multi), op, what);
            }
            Def::Value(check) | Def::Values(check) => {
                let target = leaf_value(full, i, matches!(def, Def::Values(_)), op, what)?;
                if op == "set"
                    && let Target::Value { value, .. } = &target
                {
                    validate(check, value, version)?;
                }
                return Ok(target);
            }
            Def::Flag if full.len() == i => return Ok(Target::Flag(full)),
            Def::Flag => return Err(invalid_path(&full, what)),
        };
    }
}

/// Below a level not modelled: nodes, with the last element as the value of a leaf.
fn generic(full: Vec<String>) -> Target {
    match full.split_last() {
        Some((last, leaf)) if !leaf.is_empty() => Target::Value {
            leaf: leaf.to_vec(),
            value: last.clone(),
            multi: false,
        },
        _ => Target::Node(full),
    }
}

/// A leaf at `full[..i]`, its value (if any) at `full[i]`; values are not checked.
fn leaf_value(
    full: Vec<String>,
    i: usize,
    multi: bool,
    op: &str,
    what: &str,
) -> Result<Target, String> {
    match full.len() - i {
        0 if op != "set" => Ok(Target::BareLeaf(full)),
        0 => Err(format!(
            "Configuration path: [{}] requires a value\n\nSet failed",
            full.join(" ")
        )),
        1 => Ok(Target::Value {
            leaf: full[..i].to_vec(),
            value: full[i].clone(),
            multi,
        }),
        _ => Err(invalid_path(&full, what)),
    }
}

fn check_tag_value(check: TagValue, v: &str, what: &str, version: Version) -> Result<(), String> {
    if v.chars().any(char::is_whitespace) {
        return Err(format!(
            "Tag node value name must not contain whitespace\n\n{what} failed"
        ));
    }
    let refuse = |lines: &[String], constraint: &str| {
        let mut out = lines.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        Err(format!(
            "{out}{constraint}\nValue validation failed\n{what} failed"
        ))
    };
    match check {
        TagValue::Number(message) => rule_number(v, message, what),
        TagValue::AlnumDot(message) if !is_alnum_dot(v) => refuse(&[], message),
        TagValue::Subnet if !is_v4_prefix(v) => refuse(
            &[format!("Error: {v} is not a valid IPv4 prefix")],
            "Invalid IPv4 subnet definition",
        ),
        // sagitta: `<regex>[-_a-zA-Z0-9.]+</regex>`; current: `<validator name="fqdn"/>`
        // (a regex-only script, which prints nothing of its own).
        TagValue::StaticMapping if version == Version::V1_4 && !is_mapping_name_14(v) => refuse(
            &[],
            "Invalid static mapping name, may only be alphanumeric, dot and hyphen",
        ),
        TagValue::StaticMapping if version == Version::V1_5 && !is_fqdn(v) => {
            refuse(&[], "Invalid static mapping hostname")
        }
        _ => Ok(()),
    }
}

/// `[-_a-zA-Z0-9][\w\-\.\+]*` (PCRE's `\w`: ASCII letters, digits and `_`).
fn is_alnum_dot(v: &str) -> bool {
    let mut b = v.bytes();
    let first = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    b.next().is_some_and(first) && b.all(|c| first(c) || c == b'.' || c == b'+')
}

/// 1.4's static-mapping name, `[-_a-zA-Z0-9.]+`.
fn is_mapping_name_14(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// vyos-1x `src/validators/fqdn`: `[A-Za-z0-9][-.A-Za-z0-9]*`.
fn is_fqdn(v: &str) -> bool {
    let mut b = v.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

/// `^([0-9A-Fa-f]{2}:){5}([0-9A-Fa-f]{2})$`, the `mac-address` validator's regex.
fn is_mac(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// `interface/duid.xml.i`: `([0-9A-Fa-f]{2}:){0,127}([0-9A-Fa-f]{2})`.
fn is_duid(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    parts.len() <= 128
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// vyos-utils `numeric --range lo-hi` (no `--allow-range`), its messages in its order.
fn numeric_in(v: &str, lo: f64, hi: f64) -> Result<(), String> {
    let body = v.strip_prefix('-').unwrap_or(v);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let looks_like_number = decimal(int).is_some() && frac.is_none_or(|f| decimal(f).is_some());
    let is_range = v
        .split_once('-')
        .is_some_and(|(a, b)| decimal(a).is_some() && decimal(b).is_some());
    if is_range {
        return Err("Value must be a number, not a range".to_owned());
    }
    if !looks_like_number {
        return Err(format!("'{v}' is not a valid number"));
    }
    if frac.is_some() {
        return Err(format!("'{v}' is not a valid integer number"));
    }
    match v.parse::<f64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(()),
        Ok(_) => Err("Number is not in any of allowed ranges".to_owned()),
        Err(_) => Err(format!("'{v}' is not a valid number")),
    }
}

/// A rule number 1-999999, in VyOS's `numeric --range 1-999999` validator's words.
fn rule_number(n: &str, message: &str, what: &str) -> Result<(), String> {
    match n.parse::<u64>() {
        Ok(x) if (1..=999_999).contains(&x) && !n.starts_with('0') => Ok(()),
        _ => Err(format!(
            "Error: {n} is not a valid integer\n{message}\nValue validation failed\n{what} failed"
        )),
    }
}

/// `nat destination|source ...`: `full[1]` is the kind.
fn nat_rule(full: Vec<String>, version: Version, op: &str, what: &str) -> Result<Target, String> {
    let kind = full[1].as_str();
    if full.len() == 2 {
        return Ok(Target::Node(full));
    }
    if full[2] != "rule" {
        return Err(invalid_path(&full, what));
    }
    if full.len() == 3 {
        return Ok(Target::TagNode(full));
    }
    check_tag_value(
        TagValue::Number("NAT rule number must be between 1 and 999999"),
        &full[3],
        what,
        version,
    )?;
    let rest = &full[4..];
    if rest.is_empty() {
        return Ok(Target::Node(full));
    }
    let base = &full[..4];
    let leaves = rule_leaves(kind, version);
    for (lp, k) in &leaves {
        // A node on the way to a leaf (e.g. `translation`, `load-balance backend 10.0.0.1`).
        let matches_prefix = |n: usize| {
            rest.len() >= n && lp[..n].iter().zip(rest).all(|(a, b)| *a == "*" || a == b)
        };
        if rest.len() < lp.len() && matches_prefix(rest.len()) {
            if let Some(i) = lp.iter().position(|s| *s == "*")
                && i < rest.len()
            {
                check_backend(&rest[i], what)?;
            }
            return Ok(Target::Node(full));
        }
        if !matches_prefix(lp.len()) {
            continue;
        }
        if let Some(i) = lp.iter().position(|s| *s == "*") {
            check_backend(&rest[i], what)?;
        }
        let mut leaf = base.to_vec();
        leaf.extend(rest[..lp.len()].iter().cloned());
        return match (k, rest.len() - lp.len()) {
            (Kind::Flag, 0) => Ok(Target::Flag(leaf)),
            (Kind::Flag, _) => Err(invalid_path(&full, what)),
            (Kind::Value(_) | Kind::Multi(_), 0) => {
                if op != "set" {
                    Ok(Target::BareLeaf(leaf))
                } else {
                    Err(format!(
                        "Configuration path: [{}] requires a value\n\nSet failed",
                        leaf.join(" ")
                    ))
                }
            }
            (Kind::Value(c) | Kind::Multi(c), 1) => {
                let value = rest[lp.len()].clone();
                if op == "set" {
                    validate(*c, &value, version)?;
                }
                Ok(Target::Value {
                    leaf,
                    value,
                    multi: matches!(k, Kind::Multi(_)),
                })
            }
            _ => Err(invalid_path(&full, what)),
        };
    }
    Err(invalid_path(&full, what))
}

/// `load-balance backend <addr>`: `firewall/nat-balance.xml.i`'s `ipv4-address` validator
/// (ipaddrcheck `--is-ipv4-single`: no leading zeros).
fn check_backend(v: &str, what: &str) -> Result<(), String> {
    if strict_v4(v).is_some() {
        Ok(())
    } else {
        Err(format!(
            "Error: {v} is not a valid IPv4 address\nInvalid value\nValue validation failed\n{what} failed"
        ))
    }
}

fn fail(lines: &[String], constraint: Option<&str>) -> String {
    let mut out = lines.join("\n");
    out.push('\n');
    out.push_str(constraint.unwrap_or("Invalid value"));
    out.push_str("\nValue validation failed\nSet failed");
    out
}

/// The names of vyos-1x `src/validators/ip-protocol` (its regex, `99` included).
const PROTOCOLS: &[&str] = &[
    "all",
    "ip",
    "hopopt",
    "icmp",
    "igmp",
    "ggp",
    "ipencap",
    "st",
    "tcp",
    "egp",
    "igp",
    "pup",
    "udp",
    "tcp_udp",
    "hmp",
    "xns-idp",
    "rdp",
    "iso-tp4",
    "dccp",
    "xtp",
    "ddp",
    "idpr-cmtp",
    "ipv6",
    "ipv6-route",
    "ipv6-frag",
    "idrp",
    "rsvp",
    "gre",
    "esp",
    "ah",
    "skip",
    "ipv6-icmp",
    "icmpv6",
    "ipv6-nonxt",
    "ipv6-opts",
    "rspf",
    "vmtp",
    "eigrp",
    "ospf",
    "ax.25",
    "ipip",
    "etherip",
    "encap",
    "99",
    "pim",
    "ipcomp",
    "vrrp",
    "l2tp",
    "isis",
    "sctp",
    "fc",
    "mobility-header",
    "udplite",
    "mpls-in-ip",
    "manet",
    "hip",
    "shim6",
    "wesp",
    "rohc",
];

/// A string of ASCII digits as a number (`None` for anything else); past `u64`, `u64::MAX`.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > 19 {
        return Some(u64::MAX);
    }
    Some(digits.parse().unwrap_or(0))
}

fn is_port(n: u64) -> bool {
    (1..=65535).contains(&n)
}

/// The validators' `^[0-9]{1,5}-[0-9]{1,5}$`: the ends of a port range.
fn range_form(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-')?;
    let short = |x: &str| (1..=5).contains(&x.len());
    if short(a) && short(b) {
        Some((decimal(a)?, decimal(b)?))
    } else {
        None
    }
}

/// `port-multi`'s services: every name and alias of `/etc/services`. (The validator splits
/// whole lines, so the words of a line's comment pass too, and the commit's nft then
/// refuses them; they are not services here.)
fn is_service_or_alias(p: &str) -> bool {
    SERVICES
        .iter()
        .any(|(name, aliases)| *name == p || aliases.contains(&p))
}

/// `port-range`'s services: the first word of each `/etc/services` line.
fn is_service(p: &str) -> bool {
    SERVICES.iter().any(|(name, _)| *name == p)
}

/// An IPv4 address, a prefix written with its network address, or a low-high range:
/// ipaddrcheck's `--is-ipv4-single` and `--is-ipv4-net`, and `src/validators/ipv4-range`,
/// which on 1.4 (a bash script) wants the first address below the last and on 1.5
/// (ipaddrcheck `--is-ipv4-range`) takes them equal too. (1.4's script ignores a third `-`
/// part, which the commit's nft then refuses; refused here.)
fn is_v4_target(v: &str, version: Version) -> bool {
    if v.contains('/') {
        return is_v4_prefix(v);
    }
    if let Some((a, b)) = v.split_once('-') {
        return match (strict_v4(a), strict_v4(b)) {
            (Some(a), Some(b)) if version == Version::V1_4 => u32::from(a) < u32::from(b),
            (Some(a), Some(b)) => u32::from(a) <= u32::from(b),
            _ => false,
        };
    }
    strict_v4(v).is_some()
}

/// ipaddrcheck `--is-ipv4-net`: `^((([1-9]\d{0,2}|0)\.){3}([1-9]\d{0,2}|0)\/([1-9]\d*|0))$`
/// and no host bits.
fn is_v4_prefix(v: &str) -> bool {
    let Some((a, len)) = v.split_once('/') else {
        return false;
    };
    let (Some(a), Some(n)) = (strict_v4(a), decimal(len)) else {
        return false;
    };
    if n > 32 || (len.len() > 1 && len.starts_with('0')) {
        return false;
    }
    let mask = if n == 0 { 0 } else { u32::MAX << (32 - n) };
    u32::from(a) & !mask == 0
}

fn strict_v4(v: &str) -> Option<Ipv4Addr> {
    let ip: Ipv4Addr = v.parse().ok()?;
    // No leading zeros in octets (ipaddrcheck).
    (ip.to_string() == v).then_some(ip)
}

/// The prefixes of `firewall/match-interface.xml.i`'s regex.
const INTERFACE_PREFIXES: &[&str] = &[
    "bond", "br", "dum", "en", "ersp", "eth", "gnv", "ifb", "ipoe", "lan", "l2tp", "l2tpeth",
    "macsec", "peth", "ppp", "pppoe", "pptp", "sstp", "tun", "veth", "vti", "vtun", "vxlan", "wg",
    "wlan", "wwan",
];

/// `inbound-interface name` / `outbound-interface name` (vyos-1x
/// `interface-definitions/include/firewall/match-interface.xml.i`): the regex
/// `(\!?)(bond|br|…|wwan)([0-9]?)(\*?)(.+)?|(\!?)lo`, or the `vrf-name` validator.
/// validate-value anchors a regex as `^…$`, which binds to the alternation's ends: any value
/// that starts with a prefix (after an optional `!`) passes, and any that ends in `lo`.
fn is_interface(v: &str) -> bool {
    let n = v.strip_prefix('!').unwrap_or(v);
    INTERFACE_PREFIXES.iter().any(|p| n.starts_with(p)) || v.ends_with("lo") || is_vrf_name(v)
}

/// vyos-1x `src/validators/vrf-name`: 1-15 characters, not `lo`, and not starting with a
/// digit or an interface prefix of its list (where `vtun` follows a backslash-newline that
/// the raw string keeps, so never matches). Python's `\d` also takes non-ASCII digits.
fn is_vrf_name(v: &str) -> bool {
    const NOT: &[&str] = &[
        "bond", "br", "dum", "eth", "lan", "eno", "ens", "enp", "enx", "gnv", "ipoe", "l2tp",
        "ppp", "peth", "tun", "vti", "vxlan", "wg", "wlan", "wwan",
    ];
    (1..=15).contains(&v.chars().count())
        && v != "lo"
        && !v.starts_with(|c: char| c.is_ascii_digit())
        && !NOT.iter().any(|p| v.starts_with(p))
}

/// The three OR-ed validators of an address leaf, one line each, as VyOS prints them.
fn not_v4_target(v: &str) -> String {
    fail(
        &[
            format!("Error: {v} is not a valid IPv4 address"),
            format!("Error: {v} is not a valid IPv4 prefix"),
            format!("Error: {v} is not a valid IPv4 address range"),
        ],
        None,
    )
}

/// A firewall group's name: vyos-1x `interface-definitions/firewall.xml.in` constrains it
/// with `constraint/alpha-numeric-hyphen-underscore-dot.xml.i`, `[-_a-zA-Z0-9][\w\-\.\+]*`
/// (PCRE's `\w` is ASCII here), with no limit on length. The regex takes a `+`, but the
/// commit then fails: the group becomes the nft set `N_<name>`, and nft's names have no
/// `+`; refused here.
fn is_group_name(name: &str) -> bool {
    let mut b = name.bytes();
    let ok = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    b.next().is_some_and(ok) && b.all(|c| ok(c) || c == b'.')
}

/// `firewall group network-group <name> [description <text> | include <group>... |
/// network <prefix>...]`: the group a NAT rule's `source group network-group` names.
fn network_group(full: Vec<String>, what: &str) -> Result<Target, String> {
    let name = &full[3];
    if name.chars().any(char::is_whitespace) {
        return Err(format!(
            "Tag node value name must not contain whitespace\n\n{what} failed"
        ));
    }
    if !is_group_name(name) {
        return Err(fail(
            &[],
            Some(
                "Name of firewall group can only contain alphanumeric letters, hyphen, underscores and dot",
            ),
        ));
    }
    match (full.get(4).map(String::as_str), full.len()) {
        (None, _) => Ok(Target::Node(full)),
        (Some("description" | "include" | "network"), 5) => Ok(Target::BareLeaf(full)),
        // Other network-groups this one takes in (names not checked).
        (Some("include"), 6) => Ok(Target::Value {
            leaf: full[..5].to_vec(),
            value: full[5].clone(),
            multi: true,
        }),
        (Some("description"), 6) => {
            validate(Check::Description, &full[5], Version::V1_5)?;
            Ok(Target::Value {
                leaf: full[..5].to_vec(),
                value: full[5].clone(),
                multi: false,
            })
        }
        (Some("network"), 6) => {
            let v = &full[5];
            if !is_v4_prefix(v) {
                return Err(fail(
                    &[format!("Error: {v} is not a valid IPv4 prefix")],
                    None,
                ));
            }
            Ok(Target::Value {
                leaf: full[..5].to_vec(),
                value: v.clone(),
                multi: true,
            })
        }
        _ => Err(invalid_path(&full, what)),
    }
}

/// vyos-utils' `numeric --allow-range --range 1-100` (the backend weight): a number
/// (`^-?[0-9]+(\.[0-9]+)?$`, no fraction) or a range `^[0-9]+-[0-9]+$`, all in 1-100.
fn numeric_1_100(v: &str) -> Result<(), String> {
    let number = |s: &str| -> Result<f64, String> {
        let body = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        if decimal(int).is_none() || frac.is_some_and(|f| decimal(f).is_none()) {
            Err(format!("'{s}' is not a valid number"))
        } else if frac.is_some() {
            Err(format!("'{s}' is not a valid integer number"))
        } else {
            s.parse::<f64>()
                .map_err(|_| format!("'{s}' is not a valid number"))
        }
    };
    let inside = |n: f64| (1.0..=100.0).contains(&n);
    match v.split_once('-') {
        Some((a, b)) if decimal(a).is_some() && decimal(b).is_some() => {
            if inside(number(a)?) && inside(number(b)?) {
                Ok(())
            } else {
                Err("Range is not in any of allowed ranges".to_owned())
            }
        }
        _ => {
            if inside(number(v)?) {
                Ok(())
            } else {
                Err("Number is not in any of allowed ranges".to_owned())
            }
        }
    }
}

/// A constraint that is a regex (or a regex-only validator script): no line of its own,
/// then the constraint message (`Invalid value` when the schema has none).
fn regex(ok: bool, constraint: Option<&str>) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(fail(&[], constraint).trim_start().to_owned())
    }
}

fn validate(check: Check, v: &str, version: Version) -> Result<(), String> {
    let bad = |line: String| Err(fail(&[line], None));
    match check {
        Check::Group => {
            if v.is_empty() {
                return bad(format!("Error: {v} is not a valid value"));
            }
            Ok(())
        }
        // vyos-1x `src/validators/fqdn`: `[A-Za-z0-9][-.A-Za-z0-9]*`.
        Check::Fqdn => {
            let mut b = v.bytes();
            if b.next().is_some_and(|c| c.is_ascii_alphanumeric())
                && b.all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
            {
                Ok(())
            } else {
                bad(format!("Error: {v} is not a valid value"))
            }
        }
        // generic-description.xml.i: `.{0,255}`, which validate-value's PCRE (no UTF-8
        // mode) counts in bytes.
        Check::Description => {
            if v.len() > 255 {
                Err(
                    fail(&[], Some("Description too long (limit 255 characters)"))
                        .trim_start()
                        .to_owned(),
                )
            } else {
                Ok(())
            }
        }
        Check::PacketType => match v {
            "broadcast" | "host" | "multicast" | "other" => Ok(()),
            _ => bad(format!("Error: {v} is not a valid packet type")),
        },
        // vyos-1x `src/validators/ip-protocol`: `int(value)` in 0-255, or
        // `re.match('!?\b(names)\b')`. Stricter on two points, values the commit's nft then
        // refuses: a number is plain digits (`int()` also takes ` 7`, `+7`, `0_7`), and a
        // name is the whole value (`\b` also passes `tcp-x`).
        Check::Protocol => {
            let ok = decimal(v).is_some_and(|n| n <= 255)
                || PROTOCOLS.contains(&v.strip_prefix('!').unwrap_or(v));
            if ok {
                Ok(())
            } else {
                bad(format!("Error: {v} is not a valid IP protocol"))
            }
        }
        Check::Interface => {
            if is_interface(v) {
                Ok(())
            } else {
                bad(format!("Error: {v} is not a valid interface name"))
            }
        }
        // nat-address.xml.i: ipv4-address, -prefix, -range and their `-exclude` forms (one
        // leading `!`).
        Check::Address => {
            let a = v.strip_prefix('!').unwrap_or(v);
            if is_v4_target(a, version) {
                Ok(())
            } else {
                Err(not_v4_target(v))
            }
        }
        // vyos-1x `src/validators/port-multi`.
        Check::PortMulti => {
            for item in v.split(',') {
                let p = item.strip_prefix('!').unwrap_or(item);
                if let Some((a, b)) = range_form(p) {
                    if !is_port(a) || !is_port(b) || a > b {
                        return bad(format!("Error: {p} is not a valid port range"));
                    }
                } else if let Some(n) = decimal(p) {
                    if !is_port(n) {
                        return bad(format!("Error: {p} is not a valid port"));
                    }
                } else if !is_service_or_alias(p) {
                    return bad(format!("Error: {p} is not a valid service name"));
                }
            }
            Ok(())
        }
        // vyos-1x `src/validators/port-range`.
        Check::PortRange => {
            let ok = match range_form(v) {
                Some((a, b)) => is_port(a) && is_port(b) && a <= b,
                None => match decimal(v) {
                    Some(n) => is_port(n),
                    None if is_service(v) => true,
                    None => return bad(format!("Error: {v} is not a valid service name")),
                },
            };
            if ok {
                Ok(())
            } else {
                bad(format!("Error: {v} is not a valid port or port range"))
            }
        }
        Check::TranslationAddress { snat } => {
            if is_v4_target(v, version) || (snat && v == "masquerade") {
                Ok(())
            } else {
                Err(not_v4_target(v))
            }
        }
        Check::AddressMapping => match v {
            "persistent" | "random" => Ok(()),
            _ => bad(format!("Error: {v} is not a valid address mapping")),
        },
        Check::PortMapping => match v {
            "random" | "none" => Ok(()),
            _ => bad(format!("Error: {v} is not a valid port mapping")),
        },
        Check::Hash => match v {
            "source-address"
            | "destination-address"
            | "source-port"
            | "destination-port"
            | "random" => Ok(()),
            _ => bad(format!("Error: {v} is not a valid hash")),
        },
        // A range passes here; the commit's `int(weight)` then fails (verify.rs).
        Check::Weight => numeric_1_100(v).map_err(|line| fail(&[line], None)),
        Check::Ipv4Address => {
            if strict_v4(v).is_some() {
                Ok(())
            } else {
                bad(format!("Error: {v} is not a valid IPv4 address"))
            }
        }
        // Regex-only validator scripts print nothing of their own: the output starts with
        // the constraint message.
        Check::MacAddress => regex(is_mac(v), None),
        Check::MacMatch => regex(is_mac(v.strip_prefix('!').unwrap_or(v)), None),
        Check::Duid => regex(
            is_duid(v),
            Some("Invalid DUID, must be in the format h[[:h]...]"),
        ),
        Check::SubnetId => numeric_in(v, 1.0, 4_294_967_295.0).map_err(|line| fail(&[line], None)),
        Check::Lease => numeric_in(v, 0.0, 4_294_967_295.0).map_err(|line| {
            fail(
                &[line],
                Some("DHCP lease time must be between 0 and 4294967295 (49 days)"),
            )
        }),
        Check::FirewallAction => regex(
            matches!(
                v,
                "accept"
                    | "continue"
                    | "jump"
                    | "reject"
                    | "return"
                    | "drop"
                    | "queue"
                    | "offload"
                    | "synproxy"
            ),
            None,
        ),
        Check::DefaultAction => regex(matches!(v, "drop" | "accept"), None),
        Check::State => regex(
            matches!(v, "established" | "invalid" | "new" | "related"),
            None,
        ),
        Check::ConnectionStatusNat => regex(matches!(v, "destination" | "source"), None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    fn set(s: &str) -> Result<Target, String> {
        parse(&p(s), None, Version::V1_5, "set")
    }

    #[test]
    fn leaves_values_and_nodes() {
        assert_eq!(
            set("nat destination rule 100 protocol tcp").unwrap(),
            Target::Value {
                leaf: p("nat destination rule 100 protocol"),
                value: "tcp".into(),
                multi: false
            }
        );
        assert_eq!(
            set("nat destination rule 100 log").unwrap(),
            Target::Flag(p("nat destination rule 100 log"))
        );
        assert_eq!(
            set("nat destination rule 100").unwrap(),
            Target::Node(p("nat destination rule 100"))
        );
        assert_eq!(
            set("nat destination rule 100 translation").unwrap(),
            Target::Node(p("nat destination rule 100 translation"))
        );
        assert!(matches!(
            set("nat destination rule 100 load-balance hash random").unwrap(),
            Target::Value { multi: true, .. }
        ));
        assert!(matches!(
            set("nat destination rule 100 load-balance backend 10.0.0.1 weight 50").unwrap(),
            Target::Value { .. }
        ));
        assert_eq!(
            parse(
                &p("nat destination rule 100 protocol"),
                Some("udp"),
                Version::V1_5,
                "set"
            )
            .unwrap(),
            Target::Value {
                leaf: p("nat destination rule 100 protocol"),
                value: "udp".into(),
                multi: false
            }
        );
        assert_eq!(
            parse(
                &p("nat destination rule 100 protocol"),
                None,
                Version::V1_5,
                "delete"
            )
            .unwrap(),
            Target::BareLeaf(p("nat destination rule 100 protocol"))
        );
    }

    #[test]
    fn set_time_errors_are_vyos_texts() {
        let cases: &[(&str, &str)] = &[
            (
                "nat destination rule 100 foo bar",
                "Configuration path: [nat destination rule 100 foo bar] is not valid",
            ),
            (
                "nat destination rule 0 protocol tcp",
                "NAT rule number must be between 1 and 999999",
            ),
            (
                "nat destination rule 1000000 protocol tcp",
                "NAT rule number must be between 1 and 999999",
            ),
            ("nat destination rule 100 protocol", "requires a value"),
            (
                "nat destination rule 100 protocol tcpx",
                "Error: tcpx is not a valid IP protocol",
            ),
            (
                "nat destination rule 100 destination port 99999",
                "Error: 99999 is not a valid port",
            ),
            (
                "nat destination rule 100 destination port 90-80",
                "is not a valid port range",
            ),
            (
                "nat destination rule 100 destination port nosuch",
                "is not a valid service name",
            ),
            (
                "nat destination rule 100 translation port 1,2",
                "Error: 1,2 is not a valid service name",
            ),
            (
                "nat destination rule 100 translation port 0",
                "Error: 0 is not a valid port or port range",
            ),
            (
                "nat destination rule 100 translation port www",
                "Error: www is not a valid service name",
            ),
            (
                "nat destination rule 100 protocol !6",
                "Error: !6 is not a valid IP protocol",
            ),
            (
                "nat destination rule 100 destination address 10.0.0.1-10.0.0.2-10.0.0.3",
                "is not a valid IPv4",
            ),
            (
                "nat destination rule 100 destination fqdn a_b",
                "Error: a_b is not a valid value",
            ),
            (
                "nat destination rule 100 destination address 10.0.0.300",
                "Error: 10.0.0.300 is not a valid IPv4 address",
            ),
            (
                "nat destination rule 100 destination address 10.0.0.5/24",
                "is not a valid IPv4",
            ),
            (
                "nat destination rule 100 destination address 10.0.0.9-10.0.0.1",
                "is not a valid IPv4",
            ),
            (
                "nat destination rule 100 translation address !10.0.0.1",
                "is not a valid IPv4",
            ),
            (
                "nat destination rule 100 inbound-interface name 1abc",
                "is not a valid interface name",
            ),
            (
                "nat destination rule 100 inbound-interface name this-is-not-an-interface",
                "is not a valid interface name",
            ),
            (
                "nat destination rule 100 outbound-interface name eth0",
                "is not valid",
            ),
            (
                "nat source rule 100 translation redirect port 22",
                "is not valid",
            ),
            (
                "nat destination rule 100 load-balance backend 10.0.0.1 weight 101",
                "Number is not in any of allowed ranges",
            ),
            ("nat destination rule 100 log yes", "is not valid"),
        ];
        for (path, want) in cases {
            let e = set(path).unwrap_err();
            assert!(e.contains(want), "{path}: {e:?} lacks {want:?}");
            assert!(e.ends_with("Set failed"), "{path}: {e:?}");
        }
        let long = format!("nat destination rule 100 description {}", "x".repeat(256));
        assert!(
            set(&long)
                .unwrap_err()
                .contains("Description too long (limit 255 characters)")
        );
        let e = parse(
            &p("nat destination rule 100 description"),
            Some("it's"),
            Version::V1_5,
            "set",
        )
        .unwrap_err();
        assert!(
            e.starts_with("Cannot use the single quote (') character in a value string"),
            "{e}"
        );
        assert!(
            parse(
                &p("nat destination rule 100 destination fqdn"),
                Some("a.example"),
                Version::V1_4,
                "set"
            )
            .is_err()
        );
    }

    #[test]
    fn versions_and_bytes() {
        let on = |v, path: &str| parse(&p(path), None, v, "set");
        let equal = "nat destination rule 100 translation address 10.0.0.5-10.0.0.5";
        assert!(on(Version::V1_5, equal).is_ok());
        assert!(on(Version::V1_4, equal).is_err());
        let long = format!("nat destination rule 100 description {}", "é".repeat(128));
        assert!(set(&long).unwrap_err().contains("Description too long"));
        let fits = format!("nat destination rule 100 description {}", "é".repeat(127));
        assert!(set(&fits).is_ok());
        for bad in ["a+b", ".dot", "!neg"] {
            let path = format!("firewall group network-group {bad} network 10.0.0.0/8");
            assert!(
                set(&path)
                    .unwrap_err()
                    .contains("Name of firewall group can only contain"),
                "{bad}"
            );
        }
    }

    #[test]
    fn dhcp_and_forward_filter_values_are_checked() {
        let on = |v, path: &str| parse(&p(path), None, v, "set");
        let sm = "service dhcp-server shared-network-name LAN subnet 192.0.2.0/24 static-mapping";
        for v in [Version::V1_4, Version::V1_5] {
            let mac = if v == Version::V1_4 {
                "mac-address"
            } else {
                "mac"
            };
            for ok in [
                format!("{sm} vm-1.lab ip-address 192.0.2.10"),
                format!("{sm} vm1 {mac} 52:54:00:AB:cd:01"),
                "service dhcp-server shared-network-name A_b-c.d+e".to_owned(),
                "firewall ipv4 forward filter rule 10 action accept".to_owned(),
                "firewall ipv4 forward filter rule 10 connection-status nat destination".to_owned(),
                "firewall ipv4 forward filter rule 10 state new".to_owned(),
                "firewall ipv4 forward filter rule 10 protocol tcp_udp".to_owned(),
                "firewall ipv4 forward filter rule 10 destination address 10.0.0.5".to_owned(),
                "firewall ipv4 forward filter rule 10 destination port 22,80-90".to_owned(),
                "firewall ipv4 forward filter rule 10 source address !198.51.100.0/24".to_owned(),
                "firewall ipv4 forward filter rule 10 source group network-group N".to_owned(),
                "firewall ipv4 forward filter default-action drop".to_owned(),
            ] {
                assert!(on(v, &ok).is_ok(), "{v:?} {ok}: {:?}", on(v, &ok));
            }
            let cases: Vec<(String, &str)> = vec![
                (
                    format!("{sm} vm1 {mac} 52:54:00:00:00"),
                    "Invalid value\nValue validation failed\nSet failed",
                ),
                (
                    format!("{sm} vm1 ip-address 192.0.2.010"),
                    "Error: 192.0.2.010 is not a valid IPv4 address\nInvalid value",
                ),
                (
                    "service dhcp-server shared-network-name LAN subnet 192.0.2.1/24".to_owned(),
                    "Error: 192.0.2.1/24 is not a valid IPv4 prefix\nInvalid IPv4 subnet definition",
                ),
                (
                    "service dhcp-server shared-network-name .LAN".to_owned(),
                    "Invalid shared network name. May only contain letters, numbers and .-_",
                ),
                (
                    "firewall ipv4 forward filter rule 10 action allow".to_owned(),
                    "Invalid value",
                ),
                (
                    "firewall ipv4 forward filter rule 10 state NEW".to_owned(),
                    "Invalid value",
                ),
                (
                    "firewall ipv4 forward filter rule 10 connection-status nat dnat".to_owned(),
                    "Invalid value",
                ),
                (
                    "firewall ipv4 forward filter rule 10 destination port 0".to_owned(),
                    "Error: 0 is not a valid port",
                ),
                (
                    "firewall ipv4 forward filter default-action reject".to_owned(),
                    "Invalid value",
                ),
            ];
            for (path, want) in cases {
                let e = on(v, &path).unwrap_err();
                assert!(e.contains(want), "{v:?} {path}: {e:?}");
                assert!(e.ends_with("Set failed"), "{path}: {e:?}");
            }
        }
        // 1.4's mapping names take `_`; 1.5's are host names.
        let under = format!("{sm} vm_1 ip-address 192.0.2.10");
        assert!(on(Version::V1_4, &under).is_ok());
        assert!(
            on(Version::V1_5, &under)
                .unwrap_err()
                .contains("Invalid static mapping hostname")
        );
        let dash = format!("{sm} -vm ip-address 192.0.2.10");
        assert!(on(Version::V1_4, &dash).is_ok());
        assert!(on(Version::V1_5, &dash).is_err());
        assert!(
            on(Version::V1_4, &format!("{sm} vm+1 ip-address 192.0.2.10"))
                .unwrap_err()
                .contains("Invalid static mapping name, may only be alphanumeric, dot and hyphen")
        );
        let id = "service dhcp-server shared-network-name LAN subnet 192.0.2.0/24 subnet-id";
        assert!(on(Version::V1_5, &format!("{id} 1")).is_ok());
        assert!(
            on(Version::V1_5, &format!("{id} 0"))
                .unwrap_err()
                .starts_with("Number is not in any of allowed ranges\nInvalid value")
        );
        assert!(on(Version::V1_4, &format!("{id} 1")).is_err());
        assert!(on(Version::V1_4, &format!("{sm} vm1 description x")).is_err());
        assert!(on(Version::V1_5, &format!("{sm} vm1 description x")).is_ok());
    }

    #[test]
    fn valid_values_pass() {
        for path in [
            "nat destination rule 100 destination port 80,443,1000-2000,!22,https",
            "nat destination rule 100 destination address !198.51.100.0/24",
            "nat destination rule 100 source address 10.0.0.1-10.0.0.9",
            "nat destination rule 100 protocol !tcp",
            "nat destination rule 100 protocol 47",
            "nat destination rule 100 inbound-interface name eth0.10",
            "nat destination rule 100 inbound-interface name eth*",
            "nat source rule 100 translation address masquerade",
            "nat destination rule 100 translation redirect port 8080",
            // What the vyos-1x sources take that a reading of the help texts might not.
            "nat destination rule 100 inbound-interface name ipoe0",
            "nat destination rule 100 inbound-interface name !ipoe*",
            "nat destination rule 100 inbound-interface name lab.uplink",
            "nat destination rule 100 inbound-interface name !blue",
            "nat destination rule 100 inbound-interface name trunk-to-the-hallo",
            "nat destination rule 100 protocol hopopt",
            "nat destination rule 100 protocol !99",
            "nat destination rule 100 protocol 007",
            "nat destination rule 100 destination port 080,0000443,www,80-80",
            "nat destination rule 100 translation port 0080",
            "nat destination rule 100 load-balance backend 10.0.0.1 weight 050",
            "nat destination rule 100 load-balance backend 10.0.0.1 weight 10-20",
            "nat destination rule 100 destination fqdn a..b-",
            "firewall group network-group -x.y_z network 10.0.0.0/8",
            "firewall group network-group a-very-long-group-name-of-forty-chars network 10.0.0.0/8",
        ] {
            assert!(set(path).is_ok(), "{path}: {:?}", set(path));
        }
    }
}
