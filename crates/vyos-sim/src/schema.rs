//! What `set`, `delete` and `comment` accept: VyOS's top-level nodes, the levels the
//! operator touches, and the NAT part of the schema with its value validators and error
//! texts (reference §2.4, §5.1, §5.2).
//!
//! A path VyOS's schema does not have is refused with the CLI's text
//! (`Configuration path: [bogus x] is not valid`, then `Set failed` / `Delete failed` /
//! `Comment failed`). The node names come from vyos-1x's `interface-definitions` (the
//! sagitta branch for 1.4, current for 1.5). Below the levels modelled here (`Def::Open`
//! in `TOP`) any path is taken as a generic node with the last element as its value,
//! enough for the config to hold it; docs/vyos-sim.md lists those subtrees.

use std::net::Ipv4Addr;

use crate::Version;

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
    /// Any name without whitespace.
    Name,
    /// A rule number 1-999999, with this constraint message.
    Number(&'static str),
}

use Def::{Flag as F, Leaf as L, Multi as M, Open as O};

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

/// `firewall ipv4 forward filter`: the chain's leaves and its rules' children (their
/// values and sub-nodes are not checked).
const FORWARD_FILTER: &[(&str, Def)] = &[
    ("default-action", L),
    ("default-log", F),
    ("description", L),
    (
        "rule",
        Def::Tag(
            TagValue::Number("Firewall rule number must be between 1 and 999999"),
            FIREWALL_RULE,
        ),
    ),
];

const FIREWALL_RULE: &[(&str, Def)] = &[
    ("action", L),
    ("add-address-to-group", O),
    ("connection-mark", M),
    ("connection-status", O),
    ("conntrack-helper", M),
    ("description", L),
    ("destination", O),
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
    ("protocol", L),
    ("queue", L),
    ("queue-options", M),
    ("recent", O),
    ("set", Def::Only(V15, &O)),
    ("source", O),
    ("state", M),
    ("synproxy", O),
    ("tcp", O),
    ("time", O),
    ("ttl", O),
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
    ("listen-address", M),
    ("listen-interface", Def::Only(V15, &M)),
    (
        "shared-network-name",
        Def::Tag(TagValue::Name, SHARED_NETWORK),
    ),
];

const SHARED_NETWORK: &[(&str, Def)] = &[
    ("authoritative", F),
    ("description", L),
    ("disable", F),
    ("domain-name", Def::Only(V14, &L)),
    ("domain-search", Def::Only(V14, &M)),
    ("name-server", Def::Only(V14, &M)),
    ("ntp-server", Def::Only(V14, &M)),
    ("option", Def::Only(V15, &O)),
    ("ping-check", Def::Only(V14, &F)),
    ("shared-network-parameters", Def::Only(V14, &M)),
    ("subnet", Def::Tag(TagValue::Name, SUBNET)),
];

const SUBNET: &[(&str, Def)] = &[
    ("bootfile-name", Def::Only(V14, &L)),
    ("bootfile-server", Def::Only(V14, &L)),
    ("bootfile-size", Def::Only(V14, &L)),
    ("client-prefix-length", Def::Only(V14, &L)),
    ("default-router", Def::Only(V14, &L)),
    ("description", L),
    ("disable", Def::Only(V15, &F)),
    ("domain-name", Def::Only(V14, &L)),
    ("domain-search", Def::Only(V14, &M)),
    ("enable-failover", Def::Only(V14, &F)),
    ("exclude", M),
    ("ignore-client-id", Def::Only(V15, &F)),
    ("ip-forwarding", Def::Only(V14, &F)),
    ("ipv6-only-preferred", Def::Only(V14, &L)),
    ("lease", L),
    ("name-server", Def::Only(V14, &M)),
    ("ntp-server", Def::Only(V14, &M)),
    ("option", Def::Only(V15, &O)),
    ("ping-check", Def::Only(V14, &F)),
    ("pop-server", Def::Only(V14, &M)),
    ("range", O),
    ("server-identifier", Def::Only(V14, &L)),
    ("smtp-server", Def::Only(V14, &M)),
    ("static-mapping", Def::Tag(TagValue::Name, STATIC_MAPPING)),
    ("static-route", Def::Only(V14, &O)),
    ("subnet-id", Def::Only(V15, &L)),
    ("subnet-parameters", Def::Only(V14, &M)),
    ("tftp-server-name", Def::Only(V14, &L)),
    ("time-offset", Def::Only(V14, &L)),
    ("time-server", Def::Only(V14, &M)),
    ("vendor-option", Def::Only(V14, &O)),
    ("wins-server", Def::Only(V14, &M)),
    ("wpad-url", Def::Only(V14, &L)),
];

/// 1.4 names the MAC `mac-address`, 1.5 (Kea) `mac`.
const STATIC_MAPPING: &[(&str, Def)] = &[
    ("description", Def::Only(V15, &L)),
    ("disable", F),
    ("duid", Def::Only(V15, &L)),
    ("ip-address", L),
    ("mac", Def::Only(V15, &L)),
    ("mac-address", Def::Only(V14, &L)),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Description,
    PacketType,
    Protocol,
    Interface,
    Group,
    Address,
    PortMulti,
    PortRange,
    TranslationAddress { snat: bool },
    AddressMapping,
    PortMapping,
    Hash,
    Weight,
    Fqdn,
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
                check_tag_value(check, tag, what)?;
                i += 1;
                Def::Node(children)
            }
            Def::Leaf | Def::Multi => {
                return leaf_value(full, i, matches!(def, Def::Multi), op, what);
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

fn check_tag_value(check: TagValue, v: &str, what: &str) -> Result<(), String> {
    if v.chars().any(char::is_whitespace) {
        return Err(format!(
            "Tag node value name must not contain whitespace\n\n{what} failed"
        ));
    }
    match check {
        TagValue::Name => Ok(()),
        TagValue::Number(message) => rule_number(v, message, what),
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
                    validate(*c, &value)?;
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

fn check_backend(v: &str, what: &str) -> Result<(), String> {
    if v.parse::<Ipv4Addr>().is_ok() {
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

const PROTOCOLS: &[&str] = &[
    "tcp",
    "udp",
    "icmp",
    "igmp",
    "gre",
    "esp",
    "ah",
    "ospf",
    "pim",
    "vrrp",
    "sctp",
    "ipv6-icmp",
    "l2tp",
    "ipip",
];
const SERVICES: &[(&str, u16)] = &[
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("pop3", 110),
    ("ntp", 123),
    ("imap", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("submission", 587),
    ("imaps", 993),
    ("pop3s", 995),
    ("openvpn", 1194),
    ("mysql", 3306),
    ("rdp", 3389),
    ("postgresql", 5432),
    ("http-alt", 8080),
];

fn is_port(p: &str) -> bool {
    !p.starts_with('0') && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
}

fn is_port_or_range(p: &str) -> bool {
    match p.split_once('-') {
        Some((a, b)) => is_port(a) && is_port(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok(),
        None => is_port(p),
    }
}

fn is_service(p: &str) -> bool {
    SERVICES.iter().any(|(n, _)| *n == p)
}

/// An IPv4 address, a prefix written with its network address, or a low-high range.
fn is_v4_target(v: &str) -> bool {
    if let Some((a, b)) = v.split_once('-') {
        return match (strict_v4(a), strict_v4(b)) {
            (Some(a), Some(b)) => u32::from(a) <= u32::from(b),
            _ => false,
        };
    }
    if let Some((a, len)) = v.split_once('/') {
        let (Some(a), Ok(len)) = (strict_v4(a), len.parse::<u32>()) else {
            return false;
        };
        if len > 32 || len.to_string().len() != v.split_once('/').map_or(0, |(_, l)| l.len()) {
            return false;
        }
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        return u32::from(a) & !mask == 0;
    }
    strict_v4(v).is_some()
}

fn strict_v4(v: &str) -> Option<Ipv4Addr> {
    let ip: Ipv4Addr = v.parse().ok()?;
    // No leading zeros in octets (ipaddrcheck).
    (ip.to_string() == v).then_some(ip)
}

fn is_interface(v: &str) -> bool {
    let v = v.strip_prefix('!').unwrap_or(v);
    if v == "lo" {
        return true;
    }
    const PREFIXES: &[&str] = &[
        "bond", "br", "dum", "en", "ersp", "eth", "gnv", "ifb", "ipoe", "lan", "l2tp", "l2tpeth",
        "macsec", "peth", "ppp", "pppoe", "pptp", "sstp", "tun", "veth", "vti", "vtun", "vxlan",
        "wg", "wlan", "wwan",
    ];
    // Or a VRF name: 1-15 of letters, digits, '_' and '-', not all digits.
    let vrf = !v.is_empty()
        && v.len() <= 15
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !v.bytes().all(|b| b.is_ascii_digit());
    vrf || PREFIXES.iter().any(|p| v.starts_with(p))
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

/// `firewall group network-group <name> [description <text> | include <group>... |
/// network <prefix>...]`: the group a NAT rule's `source group network-group` names.
fn network_group(full: Vec<String>, what: &str) -> Result<Target, String> {
    let name = &full[3];
    if name.chars().any(char::is_whitespace) {
        return Err(format!(
            "Tag node value name must not contain whitespace\n\n{what} failed"
        ));
    }
    if name.is_empty() || name.chars().count() > 31 {
        return Err(fail(
            &[],
            Some("Firewall group name must be 31 characters or less"),
        ));
    }
    if name.starts_with('!') || name.starts_with('-') {
        return Err(fail(
            &[],
            Some(&format!(
                "Firewall group name cannot start with \"{}\"",
                &name[..1]
            )),
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
            validate(Check::Description, &full[5])?;
            Ok(Target::Value {
                leaf: full[..5].to_vec(),
                value: full[5].clone(),
                multi: false,
            })
        }
        (Some("network"), 6) => {
            let v = &full[5];
            if !v.contains('/') || v.contains('-') || !is_v4_target(v) {
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

fn validate(check: Check, v: &str) -> Result<(), String> {
    let bad = |line: String| Err(fail(&[line], None));
    match check {
        Check::Group | Check::Fqdn => {
            if v.is_empty() {
                return bad(format!("Error: {v} is not a valid value"));
            }
            Ok(())
        }
        Check::Description => {
            if v.chars().count() > 255 {
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
        Check::Protocol => {
            let p = v.strip_prefix('!').unwrap_or(v);
            let ok = p == "all"
                || p == "tcp_udp"
                || PROTOCOLS.contains(&p)
                || (!p.starts_with('0') || p == "0") && p.parse::<u32>().is_ok_and(|n| n <= 255);
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
        Check::Address => {
            let a = v.strip_prefix('!').unwrap_or(v);
            if is_v4_target(a) {
                Ok(())
            } else {
                Err(not_v4_target(v))
            }
        }
        Check::PortMulti => {
            for item in v.split(',') {
                let p = item.strip_prefix('!').unwrap_or(item);
                if p.contains('-') {
                    if !is_port_or_range(p) {
                        return bad(format!("Error: {p} is not a valid port range"));
                    }
                } else if p.chars().all(|c| c.is_ascii_digit()) {
                    if !is_port(p) {
                        return bad(format!("Error: {p} is not a valid port"));
                    }
                } else if !is_service(p) {
                    return bad(format!("Error: {p} is not a valid service name"));
                }
            }
            Ok(())
        }
        Check::PortRange => {
            if is_port_or_range(v) || is_service(v) {
                Ok(())
            } else {
                bad(format!("Error: {v} is not a valid port or port range"))
            }
        }
        Check::TranslationAddress { snat } => {
            if is_v4_target(v) || (snat && v == "masquerade") {
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
        Check::Weight => {
            if !v.starts_with('0') && v.parse::<u32>().is_ok_and(|n| (1..=100).contains(&n)) {
                Ok(())
            } else {
                Err(fail(
                    &[format!("Error: {v} is not a valid integer")],
                    Some("Weight must be between 1 and 100"),
                ))
            }
        }
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
                "is not a valid port or port range",
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
                "nat destination rule 100 inbound-interface name lab.uplink",
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
                "Weight must be between 1 and 100",
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
        ] {
            assert!(set(path).is_ok(), "{path}: {:?}", set(path));
        }
    }
}
