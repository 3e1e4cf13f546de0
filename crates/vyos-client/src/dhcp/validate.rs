//! The checks VyOS applies when static mappings are set and committed: the set-time
//! validators of `interface-definitions/service_dhcp-server.xml.in` and the part of
//! `src/conf_mode/service_dhcp-server.py`'s `verify()` that mappings can fail, on the
//! sagitta branch for 1.4 and on current for 1.5, with VyOS's texts (see
//! docs/vyos-dhcp-firewall.md, §1).
//!
//! Not checked, because they need the router itself: whether a subnet is on one of its
//! interfaces (`None of the configured subnets have an appropriate primary IP address ...`)
//! and whether a listen address is assigned. Leaves the model does not know (`duid`,
//! `option`, ...) get only the character checks. The checks of the parts of the server a
//! mapping does not touch (ranges, high availability) are not repeated: the router's
//! config passed them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::model::{MappingKey, StaticMapping, SubnetKey, leaves, mac_leaf};
use super::parse::{DhcpServer, Subnet};
use crate::nat::validate::{forbidden_chars, v4, valid_fqdn, valid_v4_prefix};
use crate::nat::{LeafValue, SchemaVersion};

/// One problem: where (a subnet, and the mapping if it is one mapping's), the field
/// (`name`, `ip-address`, `mac`, `description`, `subnet`, `subnet-id`, `static-mapping`,
/// `shared-network-name`) and VyOS's message, as [`crate::nat::RuleError`] gives it (no
/// `Error: ` prefix, no line wrapping).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DhcpError {
    /// The subnet.
    pub subnet: SubnetKey,
    /// The mapping's name, when the problem is one mapping's.
    pub mapping: Option<String>,
    /// The offending field.
    pub field: String,
    /// VyOS's message.
    pub message: String,
}

impl fmt::Display for DhcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.subnet)?;
        if let Some(m) = &self.mapping {
            write!(f, " {m}")?;
        }
        write!(f, ": {}: {}", self.field, self.message)
    }
}

impl std::error::Error for DhcpError {}

/// The subnets the mappings name that the router does not have. VyOS would create them
/// (on 1.5 the commit then fails for want of a `subnet-id`; on 1.4 it succeeds and the
/// router serves a subnet nobody configured), so the operator refuses such mappings; this
/// is its rule, not VyOS's, and [`validate_mappings`] does not apply it.
pub fn unknown_subnets(
    server: &DhcpServer,
    mappings: &BTreeMap<MappingKey, StaticMapping>,
) -> BTreeSet<SubnetKey> {
    mappings
        .keys()
        .map(MappingKey::subnet_key)
        .filter(|k| !server.subnets.contains_key(k))
        .collect()
}

/// Checks that the router, holding `server` today, would take `mappings` as its complete
/// set of static mappings (the caller merges in those it does not own) on `version`: the
/// values at set time, then the commit. `Ok` means VyOS commits the change
/// ([`super::diff_mappings`] from `server.mappings`), as far as the config tells. Every
/// problem found is returned (VyOS stops at the first), in VyOS's order.
pub fn validate_mappings(
    server: &DhcpServer,
    mappings: &BTreeMap<MappingKey, StaticMapping>,
    version: SchemaVersion,
) -> Result<(), Vec<DhcpError>> {
    let mut errs = Vec::new();
    for m in mappings.values() {
        set_time(m, version, &mut errs);
    }
    // `if not dhcp or 'disable' in dhcp: return None`.
    if !server.disabled {
        commit(server, mappings, version, &mut errs);
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

fn err(errs: &mut Vec<DhcpError>, key: &MappingKey, field: &str, message: String) {
    errs.push(DhcpError {
        subnet: key.subnet_key(),
        mapping: Some(key.name.clone()),
        field: field.to_owned(),
        message,
    });
}

/// `[-_a-zA-Z0-9][\w\-\.\+]*` (`constraint/alpha-numeric-hyphen-underscore-dot.xml.i`).
fn alnum_dot(v: &str) -> bool {
    let mut b = v.bytes();
    let first = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    b.next().is_some_and(first) && b.all(|c| first(c) || c == b'.' || c == b'+')
}

/// The `mac-address` validator: `([0-9A-Fa-f]{2}:){5}([0-9A-Fa-f]{2})`.
fn valid_mac(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()))
}

fn set_time(m: &StaticMapping, version: SchemaVersion, errs: &mut Vec<DhcpError>) {
    let key = m.key();
    let path = key.path().join(" ");
    // Tag values: the characters no word may hold, whitespace, then each one's validator.
    let tags = [
        ("shared-network-name", &m.shared_network),
        ("subnet", &m.subnet),
        ("name", &m.name),
    ];
    for (field, v) in tags {
        if let Some(msg) = forbidden_chars(v) {
            err(errs, &key, field, msg.to_owned());
        } else if v.chars().any(char::is_whitespace) {
            err(
                errs,
                &key,
                field,
                "Tag node value name must not contain whitespace".to_owned(),
            );
        }
    }
    if !alnum_dot(&m.shared_network) {
        err(
            errs,
            &key,
            "shared-network-name",
            "Invalid shared network name. May only contain letters, numbers and .-_".to_owned(),
        );
    }
    if !valid_v4_prefix(&m.subnet) {
        err(
            errs,
            &key,
            "subnet",
            format!("{} is not a valid IPv4 prefix", m.subnet),
        );
    }
    // sagitta: `<regex>[-_a-zA-Z0-9.]+</regex>`; current: `<validator name="fqdn"/>`.
    match version {
        SchemaVersion::V1_4
            if m.name.is_empty()
                || !m
                    .name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')) =>
        {
            err(
                errs,
                &key,
                "name",
                "Invalid static mapping name, may only be alphanumeric, dot and hyphen".to_owned(),
            );
        }
        SchemaVersion::V1_5 if !valid_fqdn(&m.name) => {
            err(
                errs,
                &key,
                "name",
                "Invalid static mapping hostname".to_owned(),
            );
        }
        _ => {}
    }
    for (rel, value) in leaves(m, version) {
        let field = if rel == [mac_leaf(version)] {
            "mac".to_owned()
        } else {
            rel.join(".")
        };
        for v in value.values() {
            if let Some(msg) = forbidden_chars(&v) {
                err(errs, &key, &field, msg.to_owned());
            }
        }
        let known = matches!(
            rel.first().map(String::as_str),
            Some("ip-address" | "mac" | "mac-address" | "description")
        ) && rel.len() == 1;
        let LeafValue::One(v) = &value else { continue };
        if rel[0] == "description" && version == SchemaVersion::V1_4 {
            // 1.4's static-mapping has no description: the path is not in the schema.
            let shown = if v.is_empty() {
                format!("{path} description")
            } else {
                format!("{path} description {v}")
            };
            err(
                errs,
                &key,
                "description",
                format!("Configuration path: [{shown}] is not valid"),
            );
            continue;
        }
        if v.is_empty() {
            // configsession's `set()` drops an empty value: the leaf is set without one.
            err(
                errs,
                &key,
                &field,
                format!(
                    "Configuration path: [{path} {}] requires a value",
                    rel.join(" ")
                ),
            );
            continue;
        }
        if !known {
            continue;
        }
        match rel[0].as_str() {
            "ip-address" if v4(v).is_none() => {
                err(
                    errs,
                    &key,
                    &field,
                    format!("{v} is not a valid IPv4 address"),
                );
            }
            "mac" | "mac-address" if !valid_mac(v) => {
                err(errs, &key, &field, "Invalid value".to_owned());
            }
            // generic-description.xml.i: `.{0,255}`, counted in bytes.
            "description" if v.len() > 255 => {
                err(
                    errs,
                    &key,
                    &field,
                    "Description too long (limit 255 characters)".to_owned(),
                );
            }
            _ => {}
        }
    }
}

/// `(network address, length)` of a valid prefix.
fn prefix(s: &str) -> Option<(u32, u32)> {
    if !valid_v4_prefix(s) {
        return None;
    }
    let (a, l) = s.split_once('/')?;
    Some((v4(a)?, l.parse().ok()?))
}

fn bounds((addr, len): (u32, u32)) -> (u32, u32) {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (addr & mask, (addr & mask) | !mask)
}

fn ip_str(n: u32) -> String {
    std::net::Ipv4Addr::from(n).to_string()
}

/// `dhcp_slice_range()`, as the simulator has it: the excludes sorted as strings, the
/// second loop testing against the advanced start.
fn slice(sorted: &[&str], start: u32, stop: u32) -> Vec<(u32, u32)> {
    let ips: Vec<u32> = sorted.iter().filter_map(|e| v4(e)).collect();
    let mut out = Vec::new();
    let mut range_start = start;
    let last = ips.iter().copied().rfind(|e| (start..=stop).contains(e));
    for e in ips {
        if (range_start..=stop).contains(&e) {
            let r = (range_start, e.wrapping_sub(1));
            range_start = e.wrapping_add(1);
            if r.0 <= r.1 {
                out.push(r);
            }
            if Some(e) == last {
                let r = (e.wrapping_add(1), stop);
                if r.0 <= r.1 {
                    out.push(r);
                }
            }
        } else if last.is_none() && !out.contains(&(start, stop)) {
            out.push((start, stop));
        }
    }
    out
}

/// The subnet's ranges as `verify()` walks them (cut around `exclude` by `get_config()`).
fn verified_ranges(facts: &Subnet) -> Vec<(u32, u32)> {
    let configured = facts
        .ranges
        .values()
        .filter_map(|r| Some((v4(r.start.as_deref()?)?, v4(r.stop.as_deref()?)?)));
    if facts.exclude.is_empty() {
        return configured.collect();
    }
    let mut sorted: Vec<&str> = facts.exclude.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    configured.flat_map(|(a, b)| slice(&sorted, a, b)).collect()
}

fn commit(
    server: &DhcpServer,
    mappings: &BTreeMap<MappingKey, StaticMapping>,
    version: SchemaVersion,
    errs: &mut Vec<DhcpError>,
) {
    let v14 = version == SchemaVersion::V1_4;
    let mut by_subnet: BTreeMap<SubnetKey, Vec<&StaticMapping>> = server
        .subnets
        .keys()
        .map(|k| (k.clone(), Vec::new()))
        .collect();
    for (key, m) in mappings {
        by_subnet.entry(key.subnet_key()).or_default().push(m);
    }
    let none = Subnet::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut subnet_ids: Vec<&str> = Vec::new();
    let mut label_of: Option<(String, String)> = None;
    for (key, ms) in &by_subnet {
        let Some(snet) = prefix(&key.subnet) else {
            continue;
        };
        let subnet = key.subnet.as_str();
        let facts = server.subnets.get(key).unwrap_or(&none);
        let e = |field: &str, mapping: Option<&str>, message: String| DhcpError {
            subnet: key.clone(),
            mapping: mapping.map(str::to_owned),
            field: field.to_owned(),
            message,
        };
        // The name `{network}` shows: the shared network's, until the range loop of a
        // subnet with two or more ranges rebinds it to the second-to-last one.
        let network = match &label_of {
            Some((n, label)) if *n == key.shared_network => label.clone(),
            _ => key.shared_network.clone(),
        };
        let mut network = network;
        if !v14 {
            match facts.subnet_id.as_deref() {
                None => errs.push(e(
                    "subnet-id",
                    None,
                    format!("Unique subnet ID not specified for subnet \"{subnet}\""),
                )),
                Some(id) if subnet_ids.contains(&id) => errs.push(e(
                    "subnet-id",
                    None,
                    format!("Subnet ID for subnet \"{subnet}\" is not unique"),
                )),
                Some(id) => subnet_ids.push(id),
            }
        }
        let ranges = verified_ranges(facts);
        if ranges.len() >= 2 {
            let (lo, hi) = ranges[ranges.len() - 2];
            network = format!("{}-{}", ip_str(lo), ip_str(hi));
        }
        label_of = Some((key.shared_network.clone(), network.clone()));
        if facts.ranges.is_empty() && ms.is_empty() {
            errs.push(e(
                "static-mapping",
                None,
                format!(
                    "No DHCP address range or active static-mapping configured within shared-network \"{network}, {subnet}\"!"
                ),
            ));
        }
        let mut used_ips: Vec<&str> = Vec::new();
        let mut used_mac: Vec<&str> = Vec::new();
        let mut used_duid: Vec<&str> = Vec::new();
        for m in ms {
            let name = Some(m.name.as_str());
            let enabled = !m.disabled;
            let duid = match m.extra.get(&vec!["duid".to_owned()]) {
                Some(LeafValue::One(d)) if !v14 => Some(d.as_str()),
                _ => None,
            };
            if let Some(ip) = m.ip_address.as_deref() {
                let Some(addr) = v4(ip) else { continue };
                let (lo, hi) = bounds(snet);
                if !(lo..=hi).contains(&addr) {
                    errs.push(e(
                        "ip-address",
                        name,
                        format!(
                            "Configured static lease address for mapping \"{}\" is not within shared-network \"{network}, {subnet}\"!",
                            m.name
                        ),
                    ));
                }
                if v14 && m.mac.is_none() {
                    errs.push(e(
                        "mac",
                        name,
                        format!(
                            "MAC address required for static mapping \"{}\" within shared-network \"{network}, {subnet}\"!",
                            m.name
                        ),
                    ));
                }
                if !v14 && m.mac.is_some() == duid.is_some() {
                    errs.push(e(
                        "mac",
                        name,
                        format!(
                            "Either MAC address or Client identifier (DUID) is required for static mapping \"{}\" within shared-network \"{network}, {subnet}\"!",
                            m.name
                        ),
                    ));
                }
                if enabled {
                    if used_ips.contains(&ip) {
                        errs.push(e(
                            "ip-address",
                            name,
                            format!(
                                "Configured IP address for static mapping \"{}\" already exists on another static mapping",
                                m.name
                            ),
                        ));
                    }
                    used_ips.push(ip);
                }
            }
            if !enabled {
                continue;
            }
            if let Some(mac) = m.mac.as_deref() {
                if used_mac.contains(&mac) {
                    errs.push(e(
                        "mac",
                        name,
                        format!(
                            "Configured MAC address for static mapping \"{}\" already exists on another static mapping",
                            m.name
                        ),
                    ));
                }
                used_mac.push(mac);
            }
            if let Some(d) = duid {
                if used_duid.contains(&d) {
                    errs.push(e(
                        "duid",
                        name,
                        format!(
                            "Configured DUID for static mapping \"{}\" already exists on another static mapping",
                            m.name
                        ),
                    ));
                }
                used_duid.push(d);
            }
        }
        if seen.contains(&subnet) {
            errs.push(e(
                "subnet",
                None,
                format!(
                    "Configured subnets must be unique! Subnet \"{subnet}\" defined multiple times!"
                ),
            ));
        }
        seen.push(subnet);
        let (lo, hi) = bounds(snet);
        if let Some(other) = seen.iter().find(|n| {
            **n != subnet
                && prefix(n).is_some_and(|o| {
                    let (olo, ohi) = bounds(o);
                    lo <= ohi && olo <= hi
                })
        }) {
            errs.push(e(
                "subnet",
                None,
                format!("Conflicting subnet ranges: \"{subnet}\" overlaps \"{other}\"!"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::parse_server;
    use serde_json::json;

    fn server(v: SchemaVersion) -> DhcpServer {
        let mac = super::super::model::mac_leaf(v);
        let mut sub = json!({"static-mapping": {"vm1": {"ip-address": "192.0.2.10", mac: "52:54:00:00:00:01"}}});
        if v == SchemaVersion::V1_5 {
            sub["subnet-id"] = json!("1");
        }
        parse_server(&json!({"shared-network-name": {"LAN": {"subnet": {"192.0.2.0/24": sub}}}}))
            .unwrap()
    }

    fn vm(name: &str, ip: Option<&str>, mac: Option<&str>) -> StaticMapping {
        let mut m = StaticMapping::new(&MappingKey::new("LAN", "192.0.2.0/24", name));
        m.ip_address = ip.map(str::to_owned);
        m.mac = mac.map(str::to_owned);
        m
    }

    fn errors(s: &DhcpServer, ms: &[StaticMapping], v: SchemaVersion) -> Vec<String> {
        let map = ms.iter().map(|m| (m.key(), m.clone())).collect();
        match validate_mappings(s, &map, v) {
            Ok(()) => vec![],
            Err(es) => es.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn table() {
        let vm1 = vm("vm1", Some("192.0.2.10"), Some("52:54:00:00:00:01"));
        let p = "LAN 192.0.2.0/24";
        type Case = (SchemaVersion, Vec<StaticMapping>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (SchemaVersion::V1_4, vec![vm1.clone()], vec![]),
            (SchemaVersion::V1_5, vec![vm1.clone()], vec![]),
            (
                SchemaVersion::V1_4,
                vec![
                    vm1.clone(),
                    vm("vm2", Some("192.0.3.1"), Some("52:54:00:00:00:02")),
                ],
                vec![
                    "vm2: ip-address: Configured static lease address for mapping \"vm2\" is not within shared-network \"LAN, 192.0.2.0/24\"!",
                ],
            ),
            (
                SchemaVersion::V1_4,
                vec![vm1.clone(), vm("vm2", Some("192.0.2.11"), None)],
                vec![
                    "vm2: mac: MAC address required for static mapping \"vm2\" within shared-network \"LAN, 192.0.2.0/24\"!",
                ],
            ),
            (
                SchemaVersion::V1_5,
                vec![vm1.clone(), vm("vm2", Some("192.0.2.11"), None)],
                vec![
                    "vm2: mac: Either MAC address or Client identifier (DUID) is required for static mapping \"vm2\" within shared-network \"LAN, 192.0.2.0/24\"!",
                ],
            ),
            (
                SchemaVersion::V1_5,
                vec![
                    vm1.clone(),
                    vm("vm2", Some("192.0.2.10"), Some("52:54:00:00:00:01")),
                ],
                vec![
                    "vm2: ip-address: Configured IP address for static mapping \"vm2\" already exists on another static mapping",
                    "vm2: mac: Configured MAC address for static mapping \"vm2\" already exists on another static mapping",
                ],
            ),
            (
                SchemaVersion::V1_5,
                vec![vm("vm_1", Some("192.0.2.10"), Some("52:54:00:00:00:1"))],
                vec![
                    "vm_1: name: Invalid static mapping hostname",
                    "vm_1: mac: Invalid value",
                ],
            ),
            (
                SchemaVersion::V1_4,
                vec![vm("vm_1", Some("192.0.2.010"), Some("52:54:00:00:00:01"))],
                vec!["vm_1: ip-address: 192.0.2.010 is not a valid IPv4 address"],
            ),
            (
                SchemaVersion::V1_4,
                vec![],
                vec![
                    "static-mapping: No DHCP address range or active static-mapping configured within shared-network \"LAN, 192.0.2.0/24\"!",
                ],
            ),
        ];
        for (v, ms, want) in cases {
            let got = errors(&server(v), &ms, v);
            let want: Vec<String> = want
                .iter()
                .map(|w| {
                    if w.starts_with("static-mapping:") {
                        format!("{p}: {w}")
                    } else {
                        format!("{p} {w}")
                    }
                })
                .collect();
            assert_eq!(got, want, "{v:?} {ms:?}");
        }
    }

    #[test]
    fn new_subnets_and_descriptions() {
        let mut other = vm("x", Some("198.51.100.5"), Some("52:54:00:00:00:05"));
        other.subnet = "198.51.100.0/24".into();
        let vm1 = vm("vm1", Some("192.0.2.10"), Some("52:54:00:00:00:01"));
        let s15 = server(SchemaVersion::V1_5);
        assert_eq!(
            errors(&s15, &[vm1.clone(), other.clone()], SchemaVersion::V1_5),
            vec![
                "LAN 198.51.100.0/24: subnet-id: Unique subnet ID not specified for subnet \"198.51.100.0/24\""
            ]
        );
        let s14 = server(SchemaVersion::V1_4);
        assert_eq!(
            errors(&s14, &[vm1.clone(), other.clone()], SchemaVersion::V1_4),
            Vec::<String>::new()
        );
        assert_eq!(
            unknown_subnets(&s14, &[(other.key(), other.clone())].into()),
            [SubnetKey::new("LAN", "198.51.100.0/24")].into()
        );
        let mut over = other.clone();
        over.subnet = "192.0.2.128/25".into();
        over.ip_address = Some("192.0.2.130".into());
        assert_eq!(
            errors(&s14, &[vm1.clone(), over], SchemaVersion::V1_4),
            vec![
                "LAN 192.0.2.128/25: subnet: Conflicting subnet ranges: \"192.0.2.128/25\" overlaps \"192.0.2.0/24\"!"
            ]
        );
        let mut d = vm1.clone();
        d.description = Some("vmnet:ns/vm1".into());
        assert_eq!(
            errors(&s15, &[d.clone()], SchemaVersion::V1_5),
            Vec::<String>::new()
        );
        assert_eq!(
            errors(&s14, &[d], SchemaVersion::V1_4),
            vec![
                "LAN 192.0.2.0/24 vm1: description: Configuration path: [service dhcp-server shared-network-name LAN subnet 192.0.2.0/24 static-mapping vm1 description vmnet:ns/vm1] is not valid"
            ]
        );
        let mut off = server(SchemaVersion::V1_5);
        off.disabled = true;
        assert_eq!(
            errors(&off, &[other], SchemaVersion::V1_5),
            Vec::<String>::new()
        );
    }

    #[test]
    fn two_ranges_rename_the_network_in_later_messages() {
        let data = json!({"shared-network-name": {"LAN": {"subnet": {"192.0.2.0/24": {
            "range": {"a": {"start": "192.0.2.100", "stop": "192.0.2.109"},
                      "b": {"start": "192.0.2.110", "stop": "192.0.2.119"}}}}}}});
        let s = parse_server(&data).unwrap();
        assert_eq!(
            errors(
                &s,
                &[vm("vm2", Some("192.0.3.1"), Some("52:54:00:00:00:02"))],
                SchemaVersion::V1_4
            ),
            vec![
                "LAN 192.0.2.0/24 vm2: ip-address: Configured static lease address for mapping \"vm2\" is not within shared-network \"192.0.2.100-192.0.2.109, 192.0.2.0/24\"!"
            ]
        );
    }
}
