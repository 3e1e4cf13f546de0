//! The checks VyOS applies to a forward-filter rule: the set-time validators of
//! `include/firewall/*.xml.i` and `src/conf_mode/firewall.py`'s `verify_rule()`, on the
//! sagitta branch for 1.4 and on current for 1.5 (docs/vyos-dhcp-firewall.md, §2).
//!
//! Not checked, because they need the router's state: whether a named firewall group,
//! jump target, flowtable or dynamic group exists. Leaves the model does not know are
//! checked only by the commit checks that name them (`jump-target`, `synproxy`, `queue`,
//! `log-options`, `inbound-interface`, ...), not by their set-time validators.

use super::model::{ForwardRule, leaf_map};
use crate::leaf::Leaves;
use crate::nat::validate::{
    address_error, forbidden_chars, port_multi, valid_fqdn, valid_protocol,
};
use crate::nat::{LeafValue, RuleError, SchemaVersion};

/// Checks `rule` the way VyOS 1.4 and 1.5 would when it is set and committed: `Ok` commits
/// on either. A problem only one version has says so (as [`crate::nat::validate`]).
pub fn validate_rule(rule: &ForwardRule) -> Result<(), Vec<RuleError>> {
    crate::nat::in_either_version(|v| validate_rule_for(rule, v))
}

/// Checks `rule` the way the given VyOS version would when it is set and committed. Every
/// problem found is returned (VyOS stops at the first); fields are rule-relative paths
/// joined by `.`, as in [`RuleError`].
pub fn validate_rule_for(rule: &ForwardRule, version: SchemaVersion) -> Result<(), Vec<RuleError>> {
    let mut errs = Vec::new();
    let mut err = |field: &str, message: String| {
        errs.push(RuleError {
            field: field.to_owned(),
            message,
        })
    };
    let n = rule.number;
    if !(1..=999_999).contains(&n) {
        err(
            "number",
            "Firewall rule number must be between 1 and 999999".into(),
        );
    }
    let leaves = leaf_map(rule);
    for (path, value) in &leaves {
        for v in value.values().iter().chain(path.iter()) {
            if let Some(msg) = forbidden_chars(v) {
                err(&path.join("."), msg.to_owned());
            }
        }
        // configsession's `set()` drops an empty value: the leaf is then set without one.
        if value.values().iter().any(String::is_empty) {
            err(
                &path.join("."),
                format!(
                    "Configuration path: [firewall ipv4 forward filter rule {n} {}] requires a value",
                    path.join(" ")
                ),
            );
        }
    }
    set_time(rule, version, &mut err);
    commit(&leaves, version, &mut err);
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// The validators of the leaves the model knows.
fn set_time(rule: &ForwardRule, version: SchemaVersion, err: &mut impl FnMut(&str, String)) {
    let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    // generic-description.xml.i: `.{0,255}`, counted in bytes.
    if nonempty(&rule.description).is_some_and(|d| d.len() > 255) {
        err(
            "description",
            "Description too long (limit 255 characters)".into(),
        );
    }
    // action.xml.i / action-forward.xml.i: a regex, so `Invalid value`.
    if let Some(a) = nonempty(&rule.action)
        && !matches!(
            a.as_str(),
            "accept"
                | "continue"
                | "jump"
                | "reject"
                | "return"
                | "drop"
                | "queue"
                | "offload"
                | "synproxy"
        )
    {
        err("action", "Invalid value".into());
    }
    if let Some(p) = &rule.protocol
        && !p.as_str().is_empty()
        && !valid_protocol(p.as_str())
    {
        err("protocol", format!("{p} is not a valid IP protocol"));
    }
    for s in &rule.state {
        if !s.is_empty() && !matches!(s.as_str(), "established" | "invalid" | "new" | "related") {
            err("state", "Invalid value".into());
        }
    }
    if let Some(c) = nonempty(&rule.connection_status_nat)
        && !matches!(c.as_str(), "destination" | "source")
    {
        err("connection-status.nat", "Invalid value".into());
    }
    for (side, m) in [("source", &rule.source), ("destination", &rule.destination)] {
        // address.xml.i: the NAT address validators (and their version difference).
        if let Some(a) = nonempty(&m.address)
            && let Some(msg) = address_error(a.strip_prefix('!').unwrap_or(&a), &a, version)
        {
            err(&format!("{side}.address"), msg);
        }
        if let Some(p) = nonempty(&m.port)
            && let Err(msg) = port_multi(&p)
        {
            err(&format!("{side}.port"), msg);
        }
        if let Some(f) = nonempty(&m.fqdn)
            && !valid_fqdn(&f)
        {
            err(&format!("{side}.fqdn"), "Invalid value".into());
        }
    }
}

fn has(leaves: &Leaves, prefix: &[&str]) -> bool {
    leaves
        .keys()
        .any(|k| k.len() >= prefix.len() && k.iter().zip(prefix).all(|(a, b)| a == b))
}

fn value<'a>(leaves: &'a Leaves, path: &[&str]) -> Option<&'a str> {
    let key: Vec<String> = path.iter().map(|w| (*w).to_owned()).collect();
    match leaves.get(&key)? {
        LeafValue::One(v) => Some(v),
        LeafValue::Many(vs) => vs.first().map(String::as_str),
        LeafValue::Flag => None,
    }
}

/// `verify_rule()` for an IPv4 forward-filter rule, in its order, on every leaf the rule
/// has (known or not).
fn commit(l: &Leaves, version: SchemaVersion, err: &mut impl FnMut(&str, String)) {
    let v14 = version == SchemaVersion::V1_4;
    let mut e = |field: &str, m: &str| err(field, m.to_owned());
    let action = value(l, &["action"]);
    let Some(action) = action else {
        // `rule_conf['action']` is read by every later check: VyOS stops here.
        e("action", "Rule action must be defined");
        return;
    };
    let proto = value(l, &["protocol"]);
    if action.contains("jump") && !has(l, &["jump-target"]) {
        e(
            "jump-target",
            "Action set to jump, but no jump-target specified",
        );
    }
    if has(l, &["jump-target"]) && !action.contains("jump") {
        e(
            "jump-target",
            "jump-target defined, but action jump needed and it is not defined",
        );
    }
    if action == "offload" && !has(l, &["offload-target"]) {
        e(
            "offload-target",
            "Action set to offload, but no offload-target specified",
        );
    }
    if action != "synproxy" && has(l, &["synproxy"]) {
        e(
            "synproxy",
            "\"synproxy\" option allowed only for action synproxy",
        );
    }
    if action == "synproxy" {
        if has(l, &["state"]) {
            e("state", "For action \"synproxy\" state cannot be defined");
        }
        if !has(l, &["synproxy", "tcp"]) {
            e("synproxy", "synproxy TCP MSS is not defined");
        }
        if proto != Some("tcp") {
            e(
                "protocol",
                "For action \"synproxy\" the protocol must be set to TCP",
            );
        }
    }
    if has(l, &["queue-options"]) {
        if !action.contains("queue") {
            e(
                "queue-options",
                "queue-options defined, but action queue needed and it is not defined",
            );
        }
        if has(l, &["queue-options", "fanout"])
            && !value(l, &["queue"]).is_some_and(|q| q.contains('-'))
        {
            e(
                "queue-options",
                "queue-options fanout defined, then queue needs to be defined as a range",
            );
        }
    }
    if has(l, &["queue"]) && !action.contains("queue") {
        e(
            "queue",
            "queue defined, but action queue needed and it is not defined",
        );
    }
    if has(l, &["fragment", "match-frag"]) && has(l, &["fragment", "match-non-frag"]) {
        e(
            "fragment",
            "Cannot specify both \"match-frag\" and \"match-non-frag\"",
        );
    }
    if v14 {
        if has(l, &["ipsec", "match-ipsec"]) && has(l, &["ipsec", "match-non-ipsec"]) {
            e(
                "ipsec",
                "Cannot specify both \"match-ipsec\" and \"match-non-ipsec\"",
            );
        }
    } else if (has(l, &["ipsec", "match-ipsec-in"]) && has(l, &["ipsec", "match-none-in"]))
        || (has(l, &["ipsec", "match-ipsec-out"]) && has(l, &["ipsec", "match-none-out"]))
    {
        e(
            "ipsec",
            "Cannot specify both \"match-ipsec\" and \"match-none\"",
        );
    }
    if has(l, &["recent"]) && !(has(l, &["recent", "count"]) && has(l, &["recent", "time"])) {
        e(
            "recent",
            "Recent \"count\" and \"time\" values must be defined",
        );
    }
    if !v14 && has(l, &["gre"]) && proto != Some("gre") {
        e(
            "gre",
            "Protocol must be gre when matching GRE flags and fields",
        );
    }
    if has(l, &["tcp", "flags"]) && proto != Some("tcp") {
        e(
            "tcp.flags",
            "Protocol must be tcp when specifying tcp flags",
        );
    }
    if proto == Some("ipv6-icmp") {
        e(
            "protocol",
            "Cannot match IPv6 ICMP protocol on IPv4, use icmp",
        );
    }
    for side in ["destination", "source"] {
        let kinds: Vec<&str> = ["address", "fqdn", "geoip"]
            .into_iter()
            .filter(|k| has(l, &[side, k]))
            .collect();
        if kinds.len() > 1 {
            e(side, "Only one of address, fqdn or geoip can be specified");
        }
        let address_like = ["address-group", "network-group", "domain-group"];
        let groups = address_like
            .iter()
            .filter(|g| has(l, &[side, "group", g]))
            .count();
        if groups > 1 {
            e(
                &format!("{side}.group"),
                "Only one address-group, network-group or domain-group can be specified",
            );
        }
        for g in ["address-group", "domain-group", "network-group"] {
            if has(l, &[side, "group", g])
                && let Some(kind) = kinds.first()
            {
                e(
                    &format!("{side}.group.{g}"),
                    &format!("{g} and {kind} cannot both be defined"),
                );
            }
        }
        let port = has(l, &[side, "port"]);
        let port_group = has(l, &[side, "group", "port-group"]);
        if port || port_group {
            match proto {
                None => e(
                    "protocol",
                    "Protocol must be defined if specifying a port or port-group",
                ),
                Some("tcp" | "udp" | "tcp_udp") => {}
                Some(_) => e(
                    "protocol",
                    "Protocol must be tcp, udp, or tcp_udp when specifying a port or port-group",
                ),
            }
        }
        if port && port_group {
            e(
                &format!("{side}.group.port-group"),
                &format!("{side} port-group and port cannot both be defined"),
            );
        }
    }
    for kind in ["destination-address", "source-address"] {
        if has(l, &["add-address-to-group", kind])
            && !has(l, &["add-address-to-group", kind, "address-group"])
        {
            e(
                "add-address-to-group",
                "Dynamic address group must be defined.",
            );
        }
    }
    if has(l, &["log-options"]) {
        if !has(l, &["log"]) {
            e("log-options", "log-options defined, but log is not enable");
        }
        let group = has(l, &["log-options", "group"]);
        if has(l, &["log-options", "snapshot-length"]) && !group {
            e(
                "log-options",
                "log-options snapshot-length defined, but log group is not define",
            );
        }
        if has(l, &["log-options", "queue-threshold"]) && !group {
            e(
                "log-options",
                "log-options queue-threshold defined, but log group is not define",
            );
        }
    }
    for (node, key) in [
        ("inbound-interface", "inbound_interface"),
        ("outbound-interface", "outbound_interface"),
    ] {
        if has(l, &[node, "name"]) && has(l, &[node, "group"]) {
            e(
                node,
                &format!("Cannot specify both interface group and interface name for {key}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::Protocol;

    fn accept() -> ForwardRule {
        let mut r = ForwardRule::new(100);
        r.action = Some("accept".into());
        r.protocol = Some(Protocol::Tcp);
        r.destination.address = Some("10.0.0.5".into());
        r.destination.port = Some("22".into());
        r
    }

    fn errors(r: &ForwardRule) -> Vec<String> {
        match validate_rule(r) {
            Ok(()) => vec![],
            Err(es) => es.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn table() {
        type Edit = fn(&mut ForwardRule);
        let cases: Vec<(&str, Edit, &str)> = vec![
            ("valid", |_| {}, ""),
            (
                "dnat idiom",
                |r| {
                    *r = ForwardRule::new(20);
                    r.action = Some("accept".into());
                    r.connection_status_nat = Some("destination".into());
                },
                "",
            ),
            (
                "no action",
                |r| r.action = None,
                "action: Rule action must be defined",
            ),
            (
                "bad action",
                |r| r.action = Some("allow".into()),
                "action: Invalid value",
            ),
            (
                "port without protocol",
                |r| r.protocol = None,
                "protocol: Protocol must be defined if specifying a port or port-group",
            ),
            (
                "port with icmp",
                |r| r.protocol = Some(Protocol::Other("icmp".into())),
                "protocol: Protocol must be tcp, udp, or tcp_udp when specifying a port or port-group",
            ),
            (
                "port with all",
                |r| r.protocol = Some(Protocol::All),
                "protocol: Protocol must be tcp, udp, or tcp_udp when specifying a port or port-group",
            ),
            (
                "group and address",
                |r| r.destination.group.network_group = Some("N".into()),
                "destination.group.network-group: network-group and address cannot both be defined",
            ),
            (
                "port-group and port",
                |r| r.destination.group.port_group = Some("P".into()),
                "destination.group.port-group: destination port-group and port cannot both be defined",
            ),
            (
                "range equal ends",
                |r| r.source.address = Some("198.51.100.1-198.51.100.1".into()),
                "source.address: 198.51.100.1-198.51.100.1 is not a valid IPv4 address range (VyOS 1.4)",
            ),
            (
                "jump",
                |r| r.action = Some("jump".into()),
                "jump-target: Action set to jump, but no jump-target specified",
            ),
            (
                "state",
                |r| {
                    r.state.insert("NEW".into());
                },
                "state: Invalid value",
            ),
            (
                "connection-status",
                |r| r.connection_status_nat = Some("dnat".into()),
                "connection-status.nat: Invalid value",
            ),
            (
                "number",
                |r| r.number = 0,
                "number: Firewall rule number must be between 1 and 999999",
            ),
            (
                "quote",
                |r| r.description = Some("it's".into()),
                "description: Cannot use the single quote (') character in a value string",
            ),
        ];
        for (name, edit, want) in cases {
            let mut r = accept();
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
}
