//! The checks VyOS applies to a NAT rule: set-time value validators (§5.2 of the
//! reference) and the NAT commit script's `verify()` (§5.3), with VyOS's texts.
//!
//! Not checked here, because they need the router's state: whether referenced
//! firewall groups exist, and whether interfaces exist (a warning only in VyOS).

use std::fmt;
use std::net::Ipv4Addr;

use super::NatKind;
use super::model::{AddressMatch, InterfaceMatch, NatRule, leaves};

/// One problem with a rule: the field (VyOS path words joined by `.`, relative to
/// the rule, e.g. `translation.port`) and VyOS's own message for it (without the
/// validators' `Error: ` prefix and without the commit output's line wrapping).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleError {
    /// The offending field, e.g. `translation.port`, `protocol`, `number`.
    pub field: String,
    /// VyOS's message, e.g. `99999 is not a valid port or port range`.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for RuleError {}

/// Checks `rule` the way VyOS would when it is set and committed. Returns every
/// problem found (VyOS stops at the first), in field order.
pub fn validate(rule: &NatRule) -> Result<(), Vec<RuleError>> {
    let mut errs = Vec::new();
    let mut err = |field: &str, message: String| {
        errs.push(RuleError {
            field: field.to_owned(),
            message,
        })
    };
    let n = rule.number;
    let kind = rule.kind;
    if !(1..=999_999).contains(&n) {
        err(
            "number",
            "NAT rule number must be between 1 and 999999".into(),
        );
    }

    // Characters no value may hold, whatever the leaf.
    for (path, value) in leaves(rule) {
        for v in value.values().iter().chain(path.iter()) {
            if let Some(msg) = forbidden_chars(v) {
                err(&path.join("."), msg.to_owned());
            }
        }
    }

    if let Some(d) = &rule.description
        && d.chars().count() > 255
    {
        err(
            "description",
            "Description too long (limit 255 characters)".into(),
        );
    }
    if let Some(t) = &rule.packet_type
        && !matches!(t.as_str(), "broadcast" | "host" | "multicast" | "other")
    {
        err("packet-type", "Invalid value".into());
    }
    if let Some(p) = &rule.protocol
        && !valid_protocol(p.as_str())
    {
        err("protocol", format!("{p} is not a valid IP protocol"));
    }

    // Schema: which interface node and which translation leaves each table has.
    let schema = |leaf: &str| {
        format!(
            "Configuration path: [nat {} rule {n} {leaf}] is not valid",
            kind.as_str()
        )
    };
    let (own, own_name, foreign, foreign_name) = match kind {
        NatKind::Destination => (
            &rule.inbound_interface,
            "inbound-interface",
            &rule.outbound_interface,
            "outbound-interface",
        ),
        NatKind::Source => (
            &rule.outbound_interface,
            "outbound-interface",
            &rule.inbound_interface,
            "inbound-interface",
        ),
    };
    if !foreign.is_empty() {
        err(foreign_name, schema(foreign_name));
    }
    if let Some(name) = &own.name
        && !valid_interface(name)
    {
        err(&format!("{own_name}.name"), "Invalid value".into());
    }
    if kind == NatKind::Source && rule.translation.redirect_port.is_some() {
        err("translation.redirect", schema("translation redirect"));
    }

    for (side, m) in [("source", &rule.source), ("destination", &rule.destination)] {
        if let Some(a) = &m.address
            && let Some(msg) = address_error(a.strip_prefix('!').unwrap_or(a), a)
        {
            err(&format!("{side}.address"), msg);
        }
        if let Some(p) = &m.port
            && let Err(msg) = port_multi(p)
        {
            err(&format!("{side}.port"), msg);
        }
        if let Some(f) = &m.fqdn
            && !valid_fqdn(f)
        {
            err(&format!("{side}.fqdn"), "Invalid value".into());
        }
    }

    let t = &rule.translation;
    if let Some(a) = &t.address {
        let masq = kind == NatKind::Source && a == "masquerade";
        if !masq && let Some(msg) = address_error(a, a) {
            err("translation.address", msg);
        }
    }
    if let Some(p) = &t.port
        && let Err(msg) = port_range(p)
    {
        err("translation.port", msg);
    }
    if kind == NatKind::Destination
        && let Some(p) = &t.redirect_port
        && let Err(msg) = port_range(p)
    {
        err("translation.redirect.port", msg);
    }
    if let Some(m) = &t.address_mapping
        && !matches!(m.as_str(), "persistent" | "random")
    {
        err(
            "translation.options.address-mapping",
            "Invalid value".into(),
        );
    }
    if let Some(m) = &t.port_mapping
        && !matches!(m.as_str(), "random" | "none")
    {
        err("translation.options.port-mapping", "Invalid value".into());
    }
    for h in &rule.load_balance.hash {
        if !matches!(
            h.as_str(),
            "source-address"
                | "destination-address"
                | "source-port"
                | "destination-port"
                | "random"
        ) {
            err("load-balance.hash", "Invalid value".into());
        }
    }
    for (addr, weight) in &rule.load_balance.backends {
        if addr.parse::<Ipv4Addr>().is_err() || !canonical_v4(addr) {
            err(
                "load-balance.backend",
                format!("{addr} is not a valid IPv4 address"),
            );
        }
        if let Some(w) = weight
            && !matches!(w.parse::<u32>(), Ok(1..=100))
        {
            err(
                &format!("load-balance.backend.{addr}.weight"),
                "Invalid value".into(),
            );
        }
    }

    commit_checks(rule, own, own_name, &mut err);
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// §5.3: the NAT script's `verify()`, which runs on every rule, disabled or not.
fn commit_checks(
    rule: &NatRule,
    iface: &InterfaceMatch,
    iface_name: &str,
    err: &mut impl FnMut(&str, String),
) {
    let n = rule.number;
    let e = format!("{} NAT configuration error in rule {n}:", rule.kind.title());
    let proto = rule.effective_protocol();
    let t = &rule.translation;

    if iface.name.is_some() && iface.group.is_some() {
        let table = match rule.kind {
            NatKind::Destination => "destination nat rule",
            NatKind::Source => "nat source rule",
        };
        err(
            iface_name,
            format!(
                "{e} cannot specify both interface group and interface name for {table} \"{n}\""
            ),
        );
    }
    let any_port = rule.source.port.is_some()
        || rule.destination.port.is_some()
        || t.port.is_some()
        || (rule.kind == NatKind::Destination && t.redirect_port.is_some());
    if any_port && !proto.allows_ports() {
        err(
            "protocol",
            format!("{e} ports can only be specified when protocol is either tcp, udp or tcp_udp!"),
        );
    }
    let redirect = rule.kind == NatKind::Destination && t.redirect_port.is_some();
    if t.address.is_none()
        && t.port.is_none()
        && !rule.exclude
        && rule.load_balance.backends.is_empty()
        && !redirect
    {
        err(
            "translation",
            format!("{e} translation requires address and/or port"),
        );
    }
    for (side, m) in [("source", &rule.source), ("destination", &rule.destination)] {
        side_checks(side, m, proto.allows_ports(), err);
    }
    let hash_ports = rule
        .load_balance
        .hash
        .iter()
        .any(|h| h == "source-port" || h == "destination-port");
    if hash_ports && !matches!(proto, super::Protocol::Tcp | super::Protocol::Udp) {
        err(
            "load-balance.hash",
            "Protocol must be tcp or udp when specifying hash ports".into(),
        );
    }
}

fn side_checks(side: &str, m: &AddressMatch, ports_ok: bool, err: &mut impl FnMut(&str, String)) {
    if m.address.is_some() && m.fqdn.is_some() {
        err(
            side,
            "Only one of address, fqdn or geoip can be specified".into(),
        );
    }
    let g = &m.group;
    let groups: Vec<&str> = [
        ("address-group", &g.address_group),
        ("network-group", &g.network_group),
        ("domain-group", &g.domain_group),
    ]
    .iter()
    .filter(|(_, v)| v.is_some())
    .map(|(k, _)| *k)
    .collect();
    if groups.len() > 1 {
        err(
            &format!("{side}.group"),
            "Only one address-group, network-group or domain-group can be specified".into(),
        );
    }
    if let Some(group) = groups.first() {
        for (plain, set) in [("address", m.address.is_some()), ("fqdn", m.fqdn.is_some())] {
            if set {
                err(
                    &format!("{side}.group.{group}"),
                    format!("{group} and {plain} cannot both be defined"),
                );
            }
        }
    }
    if g.port_group.is_some() && !ports_ok {
        err(
            &format!("{side}.group.port-group"),
            "Protocol must be tcp, udp, or tcp_udp when specifying a port-group".into(),
        );
    }
}

fn forbidden_chars(v: &str) -> Option<&'static str> {
    if v.contains('\'') {
        Some("Cannot use the single quote (') character in a value string")
    } else if v.contains('"') {
        Some("Cannot use the double quote (\") character in a value string")
    } else if v.contains('\n') {
        Some("Cannot use the newline character in a value string")
    } else {
        None
    }
}

const PROTOCOL_NAMES: &[&str] = &[
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

/// `ip-protocol`: a number 0-255, or a known name with an optional `!`.
fn valid_protocol(p: &str) -> bool {
    if matches!(p.parse::<u16>(), Ok(0..=255)) && p.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    PROTOCOL_NAMES.contains(&p.strip_prefix('!').unwrap_or(p))
}

/// The interface regex of `match-interface.xml.i`, or a VRF name.
fn valid_interface(name: &str) -> bool {
    let n = name.strip_prefix('!').unwrap_or(name);
    if n == "lo" {
        return true;
    }
    const PREFIXES: &[&str] = &[
        "bond", "br", "dum", "en", "ersp", "eth", "gnv", "ifb", "lan", "l2tp", "l2tpeth", "macsec",
        "peth", "ppp", "pppoe", "pptp", "sstp", "tun", "veth", "vti", "vtun", "vxlan", "wg",
        "wlan", "wwan",
    ];
    if PREFIXES.iter().any(|p| n.starts_with(p)) {
        return true;
    }
    // vrf-name: 1-15 of [A-Za-z0-9_-], not all digits.
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !name.bytes().all(|b| b.is_ascii_digit())
}

fn valid_fqdn(f: &str) -> bool {
    !f.is_empty()
        && f.len() <= 253
        && f.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// ipaddrcheck's notion of a plain IPv4 address: four decimal octets, no leading zeros.
fn canonical_v4(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok() && s.split('.').all(|o| !(o.len() > 1 && o.starts_with('0')))
}

fn v4(s: &str) -> Option<u32> {
    if canonical_v4(s) {
        s.parse::<Ipv4Addr>().ok().map(u32::from)
    } else {
        None
    }
}

/// An address, prefix (network address only) or low-high range; `None` when valid.
/// `shown` is the value as written (with any `!`), used in the message.
fn address_error(a: &str, shown: &str) -> Option<String> {
    if let Some((addr, len)) = a.split_once('/') {
        let ok = match (v4(addr), len.parse::<u32>()) {
            (Some(ip), Ok(l)) if l <= 32 && !(len.len() > 1 && len.starts_with('0')) => {
                let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
                ip & !mask == 0
            }
            _ => false,
        };
        return (!ok).then(|| format!("{shown} is not a valid IPv4 prefix"));
    }
    if let Some((lo, hi)) = a.split_once('-') {
        let ok = matches!((v4(lo), v4(hi)), (Some(l), Some(h)) if l <= h);
        return (!ok).then(|| format!("{shown} is not a valid IPv4 address range"));
    }
    v4(a)
        .is_none()
        .then(|| format!("{shown} is not a valid IPv4 address"))
}

fn port_number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_service_name(s: &str) -> bool {
    // /etc/services is not available here; accept a plausible service name.
    !s.is_empty()
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b'/')
}

/// `port-multi`: a comma list; each item a port, `a-b` or a service name, with `!`.
fn port_multi(list: &str) -> Result<(), String> {
    for item in list.split(',') {
        let item = item.strip_prefix('!').unwrap_or(item);
        if let Some((a, b)) = item.split_once('-')
            && let (Some(a), Some(b)) = (port_number(a), port_number(b))
        {
            if !(1..=65535).contains(&a) || !(1..=65535).contains(&b) || a > b {
                return Err(format!("{item} is not a valid port range"));
            }
        } else if let Some(p) = port_number(item) {
            if !(1..=65535).contains(&p) {
                return Err(format!("{item} is not a valid port"));
            }
        } else if item.bytes().all(|b| b.is_ascii_digit()) && !item.is_empty() {
            return Err(format!("{item} is not a valid port"));
        } else if !is_service_name(item) {
            return Err(format!("{item} is not a valid service name"));
        }
    }
    Ok(())
}

/// `port-range`: one port, `a-b` or a service name; no list, no `!`.
fn port_range(v: &str) -> Result<(), String> {
    let bad = || format!("{v} is not a valid port or port range");
    if let Some((a, b)) = v.split_once('-')
        && let (Some(a), Some(b)) = (port_number(a), port_number(b))
    {
        return if (1..=65535).contains(&a) && (1..=65535).contains(&b) && a <= b {
            Ok(())
        } else {
            Err(bad())
        };
    }
    if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() {
        return match port_number(v) {
            Some(1..=65535) => Ok(()),
            _ => Err(bad()),
        };
    }
    if v.contains(',') || v.starts_with('!') || v.contains('-') && !is_service_name(v) {
        return Err(bad());
    }
    if is_service_name(v) {
        Ok(())
    } else {
        Err(format!("{v} is not a valid service name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::Protocol;

    fn dnat() -> NatRule {
        let mut r = NatRule::new(NatKind::Destination, 100);
        r.protocol = Some(Protocol::Tcp);
        r.inbound_interface.name = Some("eth0".into());
        r.destination.port = Some("443".into());
        r.translation.address = Some("10.0.0.5".into());
        r.translation.port = Some("8443".into());
        r
    }

    fn errors(r: &NatRule) -> Vec<String> {
        match validate(r) {
            Ok(()) => vec![],
            Err(es) => es.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn table() {
        type Edit = fn(&mut NatRule);
        let cases: Vec<(&str, Edit, &str)> = vec![
            ("valid", |_| {}, ""),
            (
                "rule number",
                |r| r.number = 1_000_000,
                "number: NAT rule number must be between 1 and 999999",
            ),
            (
                "no protocol with ports",
                |r| r.protocol = None,
                "protocol: Destination NAT configuration error in rule 100: ports can only be specified when protocol is either tcp, udp or tcp_udp!",
            ),
            (
                "icmp with ports",
                |r| r.protocol = Some(Protocol::Other("icmp".into())),
                "protocol: Destination NAT configuration error in rule 100: ports can only be specified when protocol is either tcp, udp or tcp_udp!",
            ),
            (
                "bad protocol",
                |r| r.protocol = Some(Protocol::Other("tcpp".into())),
                "protocol: tcpp is not a valid IP protocol",
            ),
            (
                "translation port out of range",
                |r| r.translation.port = Some("99999".into()),
                "translation.port: 99999 is not a valid port or port range",
            ),
            (
                "translation port list",
                |r| r.translation.port = Some("80,443".into()),
                "translation.port: 80,443 is not a valid port or port range",
            ),
            (
                "translation range backwards",
                |r| r.translation.port = Some("90-80".into()),
                "translation.port: 90-80 is not a valid port or port range",
            ),
            (
                "destination port",
                |r| r.destination.port = Some("80,99999".into()),
                "destination.port: 99999 is not a valid port",
            ),
            (
                "destination port range",
                |r| r.destination.port = Some("!90-80".into()),
                "destination.port: 90-80 is not a valid port range",
            ),
            (
                "service name",
                |r| r.destination.port = Some("https,ssh".into()),
                "",
            ),
            (
                "bad address",
                |r| r.translation.address = Some("10.0.0.300".into()),
                "translation.address: 10.0.0.300 is not a valid IPv4 address",
            ),
            (
                "leading zero",
                |r| r.translation.address = Some("10.0.0.05".into()),
                "translation.address: 10.0.0.05 is not a valid IPv4 address",
            ),
            (
                "host bits",
                |r| r.source.address = Some("10.0.0.5/24".into()),
                "source.address: 10.0.0.5/24 is not a valid IPv4 prefix",
            ),
            (
                "negated prefix",
                |r| r.source.address = Some("!198.51.100.0/24".into()),
                "",
            ),
            (
                "backwards range",
                |r| r.destination.address = Some("10.0.0.9-10.0.0.1".into()),
                "destination.address: 10.0.0.9-10.0.0.1 is not a valid IPv4 address range",
            ),
            (
                "negated translation",
                |r| r.translation.address = Some("!10.0.0.1".into()),
                "translation.address: !10.0.0.1 is not a valid IPv4 address",
            ),
            (
                "masquerade on DNAT",
                |r| r.translation.address = Some("masquerade".into()),
                "translation.address: masquerade is not a valid IPv4 address",
            ),
            (
                "no translation",
                |r| {
                    r.translation.address = None;
                    r.translation.port = None;
                },
                "translation: Destination NAT configuration error in rule 100: translation requires address and/or port",
            ),
            (
                "redirect is a translation",
                |r| {
                    r.translation.address = None;
                    r.translation.port = None;
                    r.translation.redirect_port = Some("8080".into());
                },
                "",
            ),
            (
                "exclude needs no translation",
                |r| {
                    r.translation.address = None;
                    r.translation.port = None;
                    r.exclude = true;
                },
                "",
            ),
            (
                "name and group",
                |r| r.inbound_interface.group = Some("WAN".into()),
                "inbound-interface: Destination NAT configuration error in rule 100: cannot specify both interface group and interface name for destination nat rule \"100\"",
            ),
            (
                "outbound on DNAT",
                |r| r.outbound_interface.name = Some("eth1".into()),
                "outbound-interface: Configuration path: [nat destination rule 100 outbound-interface] is not valid",
            ),
            (
                "wildcard interface",
                |r| r.inbound_interface.name = Some("eth*".into()),
                "",
            ),
            (
                "bad interface",
                |r| r.inbound_interface.name = Some("this-is-not-an-interface".into()),
                "inbound-interface.name: Invalid value",
            ),
            (
                "quote in description",
                |r| r.description = Some("it's".into()),
                "description: Cannot use the single quote (') character in a value string",
            ),
            (
                "long description",
                |r| r.description = Some("x".repeat(256)),
                "description: Description too long (limit 255 characters)",
            ),
            (
                "address and fqdn",
                |r| r.destination.fqdn = Some("example.com".into()),
                "",
            ),
            (
                "address-group and address",
                |r| {
                    r.destination.address = Some("203.0.113.1".into());
                    r.destination.group.address_group = Some("A".into());
                },
                "destination.group.address-group: address-group and address cannot both be defined",
            ),
            (
                "two groups",
                |r| {
                    r.source.group.address_group = Some("A".into());
                    r.source.group.network_group = Some("N".into());
                },
                "source.group: Only one address-group, network-group or domain-group can be specified",
            ),
            (
                "hash ports with tcp_udp",
                |r| {
                    r.protocol = Some(Protocol::TcpUdp);
                    r.load_balance.hash.insert("source-port".into());
                },
                "load-balance.hash: Protocol must be tcp or udp when specifying hash ports",
            ),
            (
                "weight",
                |r| {
                    r.load_balance
                        .backends
                        .insert("10.0.0.6".into(), Some("0".into()));
                },
                "load-balance.backend.10.0.0.6.weight: Invalid value",
            ),
        ];
        for (name, edit, want) in cases {
            let mut r = dnat();
            edit(&mut r);
            let got = errors(&r);
            if want.is_empty() {
                assert!(got.is_empty(), "{name}: {got:?}");
            } else {
                assert!(
                    got.iter().any(|g| g == want),
                    "{name}: want {want:?}, got {got:?}"
                );
            }
        }
    }

    #[test]
    fn disabled_rules_are_checked_and_address_fqdn_conflict() {
        let mut r = dnat();
        r.disabled = true;
        r.destination.address = Some("203.0.113.1".into());
        r.destination.fqdn = Some("example.com".into());
        assert_eq!(
            errors(&r),
            vec!["destination: Only one of address, fqdn or geoip can be specified"]
        );
    }

    #[test]
    fn snat() {
        let mut r = NatRule::new(NatKind::Source, 10);
        r.outbound_interface.name = Some("eth0".into());
        r.source.address = Some("10.0.0.0/24".into());
        r.translation.address = Some("masquerade".into());
        assert_eq!(errors(&r), Vec::<String>::new());
        r.translation.address = None;
        assert_eq!(
            errors(&r),
            vec![
                "translation: Source NAT configuration error in rule 10: translation requires address and/or port"
            ]
        );
        r.translation.redirect_port = Some("80".into());
        r.inbound_interface.name = Some("eth1".into());
        r.source.group.port_group = Some("P".into());
        let got = errors(&r);
        assert!(got.contains(&"inbound-interface: Configuration path: [nat source rule 10 inbound-interface] is not valid".to_owned()), "{got:?}");
        assert!(got.contains(&"translation.redirect: Configuration path: [nat source rule 10 translation redirect] is not valid".to_owned()), "{got:?}");
        assert!(got.contains(&"source.group.port-group: Protocol must be tcp, udp, or tcp_udp when specifying a port-group".to_owned()), "{got:?}");
    }
}
