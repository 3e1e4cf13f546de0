//! The checks VyOS applies to a NAT rule: set-time value validators (§5.2 of the
//! reference) and the NAT commit script's `verify()` (§5.3), with VyOS's texts.
//!
//! The truth is vyos-1x: its `interface-definitions` (the constraints), `src/validators/`
//! (the validator programs) and `src/conf_mode/nat.py` (`verify()`), on the sagitta branch
//! for 1.4 and on current for 1.5, with vyos-utils' `validate-value` (which anchors each
//! constraint regex as `^…$`) and ipaddrcheck. The two versions differ in two places:
//! 1.4 has no `fqdn` leaf, and 1.4's `ipv4-range` wants the first address below the last
//! where 1.5's (ipaddrcheck `--is-ipv4-range`) also takes them equal. [`validate`] refuses
//! what either version refuses; [`validate_for`] follows one.
//!
//! Not checked here, because they need the router's state: whether referenced
//! firewall groups exist, and whether interfaces exist (a warning only in VyOS). Nor
//! what only nft refuses when the commit loads the generated ruleset (`nft --check`),
//! except where a validator's slip lets through a value nft is sure to refuse; those
//! places say so.

use std::fmt;
use std::net::Ipv4Addr;

use super::NatKind;
use super::model::{AddressMatch, InterfaceMatch, LeafValue, NatRule, leaves};
use super::services::SERVICES;

/// Which VyOS schema a check follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaVersion {
    /// 1.4 (sagitta).
    V1_4,
    /// 1.5 (circinus; the current branch).
    V1_5,
}

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

/// Checks `rule` the way VyOS 1.4 and 1.5 would when it is set and committed: an `Ok`
/// rule commits on either. Returns every problem found (VyOS stops at the first), in
/// field order; a problem only one version has says so.
pub fn validate(rule: &NatRule) -> Result<(), Vec<RuleError>> {
    in_either_version(|v| validate_for(rule, v))
}

/// The problems `check` finds on 1.4 or on 1.5, each one found on only one of them marked
/// with that version.
pub(crate) fn in_either_version(
    check: impl Fn(SchemaVersion) -> Result<(), Vec<RuleError>>,
) -> Result<(), Vec<RuleError>> {
    let v14 = check(SchemaVersion::V1_4).err().unwrap_or_default();
    let v15 = check(SchemaVersion::V1_5).err().unwrap_or_default();
    let mut errs: Vec<RuleError> = v14
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if !v15.contains(&e) {
                e.message.push_str(" (VyOS 1.4)");
            }
            e
        })
        .collect();
    for e in v15 {
        if !v14.contains(&e) {
            errs.push(RuleError {
                message: format!("{} (VyOS 1.5)", e.message),
                ..e
            });
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// Checks `rule` the way the given VyOS version would when it is set and committed.
pub fn validate_for(rule: &NatRule, version: SchemaVersion) -> Result<(), Vec<RuleError>> {
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

    // Schema: which interface node and which translation leaves each table has.
    let schema = |leaf: &str| {
        format!(
            "Configuration path: [nat {} rule {n} {leaf}] is not valid",
            kind.as_str()
        )
    };
    // Characters no value may hold, whatever the leaf; and the API sends a value apart
    // from its path, where configsession's `set()` drops an empty one (`if not value`),
    // so the leaf is then set without a value.
    for (path, value) in leaves(rule) {
        for v in value.values().iter().chain(path.iter()) {
            if let Some(msg) = forbidden_chars(v) {
                err(&path.join("."), msg.to_owned());
            }
        }
        if matches!(&value, LeafValue::One(v) if v.is_empty())
            || matches!(&value, LeafValue::Many(vs) if vs.iter().any(String::is_empty))
        {
            err(
                &path.join("."),
                format!(
                    "Configuration path: [nat {} rule {n} {}] requires a value",
                    kind.as_str(),
                    path.join(" ")
                ),
            );
        }
    }

    // generic-description.xml.i: `.{0,255}`, which validate-value's PCRE (no UTF-8
    // mode) counts in bytes.
    if let Some(d) = &rule.description
        && d.len() > 255
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
        && !p.as_str().is_empty()
        && !valid_protocol(p.as_str())
    {
        err("protocol", format!("{p} is not a valid IP protocol"));
    }

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
        && !name.is_empty()
        && !valid_interface(name)
    {
        err(&format!("{own_name}.name"), "Invalid value".into());
    }
    if kind == NatKind::Source && rule.translation.redirect_port.is_some() {
        err("translation.redirect", schema("translation redirect"));
    }

    for (side, m) in [("source", &rule.source), ("destination", &rule.destination)] {
        if let Some(a) = &m.address
            && !a.is_empty()
            && let Some(msg) = address_error(a.strip_prefix('!').unwrap_or(a), a, version)
        {
            err(&format!("{side}.address"), msg);
        }
        if let Some(p) = &m.port
            && let Err(msg) = port_multi(p)
        {
            err(&format!("{side}.port"), msg);
        }
        if let Some(f) = &m.fqdn {
            // nat-rule.xml.i: `fqdn` came with 1.5 (firewall/fqdn.xml.i).
            if version == SchemaVersion::V1_4 {
                err(&format!("{side}.fqdn"), schema(&format!("{side} fqdn {f}")));
            } else if !f.is_empty() && !valid_fqdn(f) {
                err(&format!("{side}.fqdn"), "Invalid value".into());
            }
        }
    }

    let t = &rule.translation;
    if let Some(a) = &t.address
        && !a.is_empty()
    {
        let masq = kind == NatKind::Source && a == "masquerade";
        if !masq && let Some(msg) = address_error(a, a, version) {
            err("translation.address", msg);
        }
    }
    if let Some(p) = &t.port
        && !p.is_empty()
        && let Err(msg) = port_range(p)
    {
        err("translation.port", msg);
    }
    if kind == NatKind::Destination
        && let Some(p) = &t.redirect_port
        && !p.is_empty()
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
        if v4(addr).is_none() {
            err(
                "load-balance.backend",
                format!("{addr} is not a valid IPv4 address"),
            );
        }
        if let Some(w) = weight
            && !w.is_empty()
            && !valid_weight(w)
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
    // verify_rule() sums the weights with `int(...['weight'])`: a backend without a weight
    // fails the commit with a KeyError (a weight range, which the `numeric --allow-range`
    // validator lets through, with a ValueError; `valid_weight` refuses those at set).
    for (addr, weight) in &rule.load_balance.backends {
        if weight.is_none() {
            err(
                &format!("load-balance.backend.{addr}.weight"),
                format!(
                    "{e} load-balance backend {addr} has no weight, which VyOS's NAT commit needs (KeyError: 'weight')"
                ),
            );
        }
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

pub(crate) fn forbidden_chars(v: &str) -> Option<&'static str> {
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

/// The names of `src/validators/ip-protocol` (its regex, `99` included).
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

/// `src/validators/ip-protocol`: `int(value)` in 0-255, or `re.match('!?\b(names)\b')`.
/// Taken more strictly than the validator on two points, both values the commit's nft
/// then refuses: a number is plain digits (`int()` also takes ` 7`, `+7`, `0_7`), and a
/// name is the whole value (`\b` also lets `tcp-x` or `ax-25` through).
pub(crate) fn valid_protocol(p: &str) -> bool {
    decimal(p).is_some_and(|n| n <= 255)
        || PROTOCOL_NAMES.contains(&p.strip_prefix('!').unwrap_or(p))
}

/// The prefixes of `firewall/match-interface.xml.i`'s regex.
const INTERFACE_PREFIXES: &[&str] = &[
    "bond", "br", "dum", "en", "ersp", "eth", "gnv", "ifb", "ipoe", "lan", "l2tp", "l2tpeth",
    "macsec", "peth", "ppp", "pppoe", "pptp", "sstp", "tun", "veth", "vti", "vtun", "vxlan", "wg",
    "wlan", "wwan",
];

/// `inbound-interface name` / `outbound-interface name` (`firewall/match-interface.xml.i`):
/// the regex `(\!?)(bond|br|…|wwan)([0-9]?)(\*?)(.+)?|(\!?)lo` or the `vrf-name` validator.
/// validate-value anchors the regex as `^…$`, which binds to the alternation's ends, so it
/// takes any value that starts with a prefix (after an optional `!`) and any that ends in
/// `lo`.
fn valid_interface(name: &str) -> bool {
    let n = name.strip_prefix('!').unwrap_or(name);
    INTERFACE_PREFIXES.iter().any(|p| n.starts_with(p)) || name.ends_with("lo") || vrf_name(name)
}

/// `src/validators/vrf-name`: 1-15 characters, not `lo`, not starting with a digit or with
/// an interface prefix (its list; `vtun` is in it only after a backslash-newline that a raw
/// string keeps, so never matches). Python's `\d` also takes non-ASCII digits; this does not.
fn vrf_name(v: &str) -> bool {
    const NOT: &[&str] = &[
        "bond", "br", "dum", "eth", "lan", "eno", "ens", "enp", "enx", "gnv", "ipoe", "l2tp",
        "ppp", "peth", "tun", "vti", "vxlan", "wg", "wlan", "wwan",
    ];
    (1..=15).contains(&v.chars().count())
        && v != "lo"
        && !v.starts_with(|c: char| c.is_ascii_digit())
        && !NOT.iter().any(|p| v.starts_with(p))
}

/// `src/validators/fqdn`: the regex `[A-Za-z0-9][-.A-Za-z0-9]*`.
pub(crate) fn valid_fqdn(f: &str) -> bool {
    let mut b = f.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

/// ipaddrcheck's `--is-ipv4-single`: four decimal octets 0-255, no leading zeros.
fn canonical_v4(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok() && s.split('.').all(|o| !(o.len() > 1 && o.starts_with('0')))
}

pub(crate) fn v4(s: &str) -> Option<u32> {
    if canonical_v4(s) {
        s.parse::<Ipv4Addr>().ok().map(u32::from)
    } else {
        None
    }
}

/// ipaddrcheck's `--is-ipv4-net`: an address, `/`, a length 0-32 without leading zeros,
/// and no host bits.
pub(crate) fn valid_v4_prefix(a: &str) -> bool {
    let Some((addr, len)) = a.split_once('/') else {
        return false;
    };
    match (v4(addr), decimal(len)) {
        (Some(ip), Some(l)) if l <= 32 && !(len.len() > 1 && len.starts_with('0')) => {
            let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
            ip & !mask == 0
        }
        _ => false,
    }
}

/// An address, prefix (network address only) or low-high range; `None` when valid.
/// `shown` is the value as written (with any `!`), used in the message.
///
/// Ranges: 1.4's `src/validators/ipv4-range` (a bash script) wants the first address below
/// the last (`-ge` fails); 1.5's (ipaddrcheck `--is-ipv4-range`) takes them equal too. The
/// bash one also ignores a third `-` part, which nft then refuses; refused here on both.
pub(crate) fn address_error(a: &str, shown: &str, version: SchemaVersion) -> Option<String> {
    if a.contains('/') {
        return (!valid_v4_prefix(a)).then(|| format!("{shown} is not a valid IPv4 prefix"));
    }
    if let Some((lo, hi)) = a.split_once('-') {
        let ok = match (v4(lo), v4(hi)) {
            (Some(l), Some(h)) if version == SchemaVersion::V1_4 => l < h,
            (Some(l), Some(h)) => l <= h,
            _ => false,
        };
        return (!ok).then(|| format!("{shown} is not a valid IPv4 address range"));
    }
    v4(a)
        .is_none()
        .then(|| format!("{shown} is not a valid IPv4 address"))
}

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

/// The validators' `^[0-9]{1,5}-[0-9]{1,5}$`: the two ends of a port range.
fn range_form(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-')?;
    let short = |x: &str| (1..=5).contains(&x.len());
    if short(a) && short(b) {
        Some((decimal(a)?, decimal(b)?))
    } else {
        None
    }
}

fn is_port(n: u64) -> bool {
    (1..=65535).contains(&n)
}

/// `port-multi`'s services: the names and aliases of `/etc/services`. (It splits whole
/// lines, so the words of a line's comment count too; nft knows no such service, so they
/// do not here.)
fn is_service_or_alias(s: &str) -> bool {
    SERVICES
        .iter()
        .any(|(name, aliases)| *name == s || aliases.contains(&s))
}

/// `port-range`'s services: the first word of each `/etc/services` line, no aliases.
fn is_service(s: &str) -> bool {
    SERVICES.iter().any(|(name, _)| *name == s)
}

/// `src/validators/port-multi`: a comma list; each item, after one optional `!`, a port
/// range `a-b` (1-5 digits each, 1-65535, `a <= b`), a port (digits, 1-65535), or a
/// service name or alias.
pub(crate) fn port_multi(list: &str) -> Result<(), String> {
    for item in list.split(',') {
        let item = item.strip_prefix('!').unwrap_or(item);
        if let Some((a, b)) = range_form(item) {
            if !is_port(a) || !is_port(b) || a > b {
                return Err(format!("{item} is not a valid port range"));
            }
        } else if let Some(p) = decimal(item) {
            if !is_port(p) {
                return Err(format!("{item} is not a valid port"));
            }
        } else if !is_service_or_alias(item) {
            return Err(format!("{item} is not a valid service name"));
        }
    }
    Ok(())
}

/// `src/validators/port-range`: a port range `a-b` (as in `port-multi`), a port, or a
/// service name (no aliases); no list, no `!`.
fn port_range(v: &str) -> Result<(), String> {
    let bad = || format!("{v} is not a valid port or port range");
    if let Some((a, b)) = range_form(v) {
        return if is_port(a) && is_port(b) && a <= b {
            Ok(())
        } else {
            Err(bad())
        };
    }
    match decimal(v) {
        Some(p) if is_port(p) => Ok(()),
        Some(_) => Err(bad()),
        None if is_service(v) => Ok(()),
        None => Err(format!("{v} is not a valid service name")),
    }
}

/// `firewall/nat-balance.xml.i`'s `numeric --allow-range --range 1-100`, as far as the
/// commit's `int(weight)` then takes it: digits (leading zeros too), 1-100.
fn valid_weight(w: &str) -> bool {
    decimal(w).is_some_and(|n| (1..=100).contains(&n))
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

    fn errors_on(r: &NatRule, v: SchemaVersion) -> Vec<String> {
        match validate_for(r, v) {
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
                "translation.port: 80,443 is not a valid service name",
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
                "fqdn is 1.5 only",
                |r| r.destination.fqdn = Some("example.com".into()),
                "destination.fqdn: Configuration path: [nat destination rule 100 destination fqdn example.com] is not valid (VyOS 1.4)",
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
            errors_on(&r, SchemaVersion::V1_5),
            vec!["destination: Only one of address, fqdn or geoip can be specified"]
        );
    }

    #[test]
    fn versions_differ_on_fqdn_and_one_address_ranges() {
        let mut r = dnat();
        r.destination.fqdn = Some("example.com".into());
        assert_eq!(errors_on(&r, SchemaVersion::V1_5), Vec::<String>::new());
        assert_eq!(errors_on(&r, SchemaVersion::V1_4).len(), 1);
        let mut r = dnat();
        r.translation.address = Some("10.0.0.5-10.0.0.5".into());
        assert_eq!(errors_on(&r, SchemaVersion::V1_5), Vec::<String>::new());
        assert_eq!(
            errors(&r),
            vec![
                "translation.address: 10.0.0.5-10.0.0.5 is not a valid IPv4 address range (VyOS 1.4)"
            ]
        );
    }

    #[test]
    fn vyos_sources_settle_the_edges() {
        type Edit = fn(&mut NatRule);
        // (what, edit, valid on both versions)
        let cases: Vec<(&str, Edit, bool)> = vec![
            (
                "ipoe prefix",
                |r| r.inbound_interface.name = Some("ipoe*".into()),
                true,
            ),
            (
                "negated ipoe",
                |r| r.inbound_interface.name = Some("!ipoe1".into()),
                true,
            ),
            (
                "VRF with a dot",
                |r| r.inbound_interface.name = Some("lab.uplink".into()),
                true,
            ),
            (
                "negated VRF",
                |r| r.inbound_interface.name = Some("!blue".into()),
                true,
            ),
            (
                "VRF from a digit",
                |r| r.inbound_interface.name = Some("1abc".into()),
                false,
            ),
            (
                "long, ends in lo",
                |r| r.inbound_interface.name = Some("trunk-to-the-hallo".into()),
                true,
            ),
            (
                "protocol 99 negated",
                |r| r.protocol = Some(Protocol::Other("!99".into())),
                false,
            ),
            (
                "protocol 6 negated",
                |r| r.protocol = Some(Protocol::Other("!6".into())),
                false,
            ),
            (
                "leading zeros",
                |r| r.translation.port = Some("0080".into()),
                true,
            ),
            (
                "leading zeros, long",
                |r| r.destination.port = Some("0000080".into()),
                true,
            ),
            (
                "alias in a port list",
                |r| r.destination.port = Some("www".into()),
                true,
            ),
            (
                "alias as translation",
                |r| r.translation.port = Some("www".into()),
                false,
            ),
            (
                "unknown service",
                |r| r.destination.port = Some("nosuch".into()),
                false,
            ),
            (
                "empty description",
                |r| r.description = Some(String::new()),
                false,
            ),
            ("255 bytes", |r| r.description = Some("é".repeat(127)), true),
            (
                "256 bytes in 128 characters",
                |r| r.description = Some("é".repeat(128)),
                false,
            ),
            (
                "backend without weight",
                |r| {
                    r.load_balance.backends.insert("10.0.0.6".into(), None);
                },
                false,
            ),
            (
                "weight with leading zero",
                |r| {
                    r.load_balance
                        .backends
                        .insert("10.0.0.6".into(), Some("050".into()));
                },
                true,
            ),
            (
                "weight with a sign",
                |r| {
                    r.load_balance
                        .backends
                        .insert("10.0.0.6".into(), Some("+5".into()));
                },
                false,
            ),
        ];
        for (what, edit, ok) in cases {
            let mut r = dnat();
            edit(&mut r);
            assert_eq!(validate(&r).is_ok(), ok, "{what}: {:?}", validate(&r));
        }
        let mut r = dnat();
        r.protocol = Some(Protocol::Other("!99".into()));
        r.destination.port = None;
        r.translation.port = None;
        assert_eq!(
            errors(&r),
            Vec::<String>::new(),
            "!99 is in ip-protocol's list"
        );
        let mut r = dnat();
        r.destination.fqdn = Some("a_b".into());
        assert_eq!(
            errors_on(&r, SchemaVersion::V1_5),
            vec!["destination.fqdn: Invalid value"]
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
