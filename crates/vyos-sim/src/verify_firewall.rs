//! The firewall's commit checks: vyos-1x `src/conf_mode/firewall.py` `verify()`, on the
//! sagitta branch for 1.4 and on current for 1.5, with its texts (see
//! docs/vyos-dhcp-firewall.md). Simulated: the nested-group check of every
//! `firewall group`, and `verify_rule()` on every rule of `firewall ipv4 forward filter`,
//! disabled ones too, in rule-number order. The other chains (`input`, `output`, `name`,
//! ipv6, bridge), zones and flowtables are stored unchecked.

use crate::Version;
use crate::commit::View;
use crate::tree::Node;

/// The first error of `verify()` for `firewall` in `root`, if any.
pub fn verify(root: &Node, version: Version) -> Option<String> {
    verify_inner(View(root), version).err()
}

fn verify_inner(root: View<'_>, version: Version) -> Result<(), String> {
    let Some(fw) = root.at(&["firewall"]) else {
        return Ok(());
    };
    // nested_group_types, each group through verify_nested_group(name, group, groups, []).
    for kind in [
        "address-group",
        "network-group",
        "mac-group",
        "port-group",
        "ipv6-address-group",
        "ipv6-network-group",
    ] {
        let groups = fw.children(&["group", kind]);
        for (name, group) in &groups {
            nested_group(name, *group, &groups, &mut Vec::new())?;
        }
    }
    let mut rules: Vec<(u32, View<'_>)> = fw
        .children(&["ipv4", "forward", "filter", "rule"])
        .into_iter()
        .filter_map(|(n, r)| Some((n.parse().ok()?, r)))
        .collect();
    rules.sort_by_key(|(n, _)| *n);
    for (_, rule) in rules {
        verify_rule(fw, rule, version)?;
    }
    Ok(())
}

/// `verify_nested_group()`: `seen` is one list for the whole walk, as in the script.
fn nested_group<'a>(
    name: &'a str,
    group: View<'a>,
    groups: &[(&'a str, View<'a>)],
    seen: &mut Vec<&'a str>,
) -> Result<(), String> {
    if !group.has(&["include"]) {
        return Ok(());
    }
    seen.push(name);
    for g in group.values(&["include"]) {
        let Some((_, inner)) = groups.iter().find(|(n, _)| *n == g) else {
            return Err(format!("Nested group \"{g}\" does not exist"));
        };
        if seen.contains(&g) {
            return Err(format!("Group \"{name}\" has a circular reference"));
        }
        if inner.has(&["include"]) {
            nested_group(g, *inner, groups, seen)?;
        }
    }
    Ok(())
}

/// `verify_jump_target(firewall, hook, target, 'ipv4', recursive=True)` (1.5; a forward
/// filter is not a `name` hook, so the walk is recursive).
fn jump_target(fw: View<'_>, target: &str) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    let mut pending = vec![target.to_owned()];
    while let Some(t) = pending.pop() {
        let Some(chain) = fw.at(&["ipv4", "name", &t]) else {
            return Err(format!(
                "Invalid jump-target. Firewall ipv4 name {t} does not exist on the system"
            ));
        };
        for (_, r) in chain.children(&["rule"]) {
            if let Some(child) = r.value(&["jump-target"]) {
                if seen.iter().any(|s| s == child) {
                    return Err(format!(
                        "Loop detected in jump-targets, firewall ipv4 name {t} refers to previously traversed ipv4 name {child}"
                    ));
                }
                pending.push(child.to_owned());
            }
        }
        seen.push(t);
    }
    Ok(())
}

/// `verify_rule()` for one IPv4 forward-filter rule, in the script's order.
fn verify_rule(fw: View<'_>, r: View<'_>, version: Version) -> Result<(), String> {
    let v14 = version == Version::V1_4;
    let err = |m: &str| Err(m.to_owned());
    let Some(action) = r.value(&["action"]) else {
        return err("Rule action must be defined");
    };
    // `'jump' in rule_conf['action']`: a substring test on the string.
    if action.contains("jump") && !r.has(&["jump-target"]) {
        return err("Action set to jump, but no jump-target specified");
    }
    if let Some(target) = r.value(&["jump-target"]) {
        if !action.contains("jump") {
            return err("jump-target defined, but action jump needed and it is not defined");
        }
        if v14 {
            // `if target not in dict_search_args(firewall, 'ipv4', 'name')`: with no named
            // chain at all that is `in None`.
            if !fw.has(&["ipv4", "name"]) {
                return err("TypeError: argument of type 'NoneType' is not iterable");
            }
            if !fw.has(&["ipv4", "name", target]) {
                return Err(format!(
                    "Invalid jump-target. Firewall name {target} does not exist on the system"
                ));
            }
        } else {
            jump_target(fw, target)?;
        }
    }
    if action == "offload" {
        let Some(target) = r.value(&["offload-target"]) else {
            return err("Action set to offload, but no offload-target specified");
        };
        if fw.at(&["flowtable", target]).is_none_or(|f| f.len() == 0) {
            return Err(format!(
                "Invalid offload-target. Flowtable \"{target}\" does not exist on the system"
            ));
        }
    }
    if action != "synproxy" && r.has(&["synproxy"]) {
        return err("\"synproxy\" option allowed only for action synproxy");
    }
    if action == "synproxy" {
        if r.has(&["state"]) {
            return err("For action \"synproxy\" state cannot be defined");
        }
        if r.at(&["synproxy", "tcp"]).is_none_or(|t| t.len() == 0) {
            return err("synproxy TCP MSS is not defined");
        }
        if r.value(&["protocol"]) != Some("tcp") {
            return err("For action \"synproxy\" the protocol must be set to TCP");
        }
    }
    if r.has(&["queue-options"]) {
        if !action.contains("queue") {
            return err("queue-options defined, but action queue needed and it is not defined");
        }
        if r.has(&["queue-options", "fanout"])
            && !r.value(&["queue"]).is_some_and(|q| q.contains('-'))
        {
            return err("queue-options fanout defined, then queue needs to be defined as a range");
        }
    }
    if r.has(&["queue"]) && !action.contains("queue") {
        return err("queue defined, but action queue needed and it is not defined");
    }
    if r.has(&["fragment", "match-frag"]) && r.has(&["fragment", "match-non-frag"]) {
        return err("Cannot specify both \"match-frag\" and \"match-non-frag\"");
    }
    if let Some(rate) = r.value(&["limit", "rate"]) {
        // `int(re.sub(r'\D', '', rate))`.
        let digits: String = rate.chars().filter(char::is_ascii_digit).collect();
        match digits.trim_start_matches('0') {
            _ if digits.is_empty() => {
                return err("ValueError: invalid literal for int() with base 10: ''");
            }
            "" => return err("Limit rate integer cannot be less than 1"),
            _ => {}
        }
    }
    if v14 {
        if r.has(&["ipsec", "match-ipsec"]) && r.has(&["ipsec", "match-non-ipsec"]) {
            return err("Cannot specify both \"match-ipsec\" and \"match-non-ipsec\"");
        }
    } else if (r.has(&["ipsec", "match-ipsec-in"]) && r.has(&["ipsec", "match-none-in"]))
        || (r.has(&["ipsec", "match-ipsec-out"]) && r.has(&["ipsec", "match-none-out"]))
    {
        return err("Cannot specify both \"match-ipsec\" and \"match-none\"");
    }
    if r.has(&["recent"]) && !(r.has(&["recent", "count"]) && r.has(&["recent", "time"])) {
        return err("Recent \"count\" and \"time\" values must be defined");
    }
    if !v14 && r.has(&["gre"]) {
        if r.value(&["protocol"]) != Some("gre") {
            return err("Protocol must be gre when matching GRE flags and fields");
        }
        if r.has(&["gre", "key"]) {
            if r.value(&["gre", "version"]) == Some("pptp") {
                return err("GRE tunnel keys are not present in PPTP");
            }
            if !r.has(&["gre", "flags", "checksum"]) {
                return err(
                    "Matching GRE tunnel key requires an explicit checksum flag match. For most cases, use \"gre flags checksum unset\"",
                );
            }
            if r.has(&["gre", "flags", "key", "unset"]) {
                return err(
                    "Matching GRE tunnel key implies \"flags key\", cannot specify \"flags key unset\"",
                );
            }
        }
    }
    if r.at(&["tcp", "flags"]).is_some_and(|f| f.len() > 0) {
        if r.value(&["protocol"]) != Some("tcp") {
            return err("Protocol must be tcp when specifying tcp flags");
        }
        let set: Vec<&str> = r
            .children(&["tcp", "flags"])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let not: Vec<&str> = r
            .children(&["tcp", "flags", "not"])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        if set.iter().any(|f| not.contains(f)) {
            return err("Cannot match a tcp flag as set and not set");
        }
    }
    if r.value(&["protocol"]) == Some("ipv6-icmp") {
        return err("Cannot match IPv6 ICMP protocol on IPv4, use icmp");
    }
    for side in ["destination", "source"] {
        let Some(s) = r.at(&[side]) else { continue };
        let kinds: Vec<&str> = ["address", "fqdn", "geoip"]
            .into_iter()
            .filter(|k| s.has(&[k]))
            .collect();
        if kinds.len() > 1 {
            return err("Only one of address, fqdn or geoip can be specified");
        }
        if s.has(&["group"]) {
            let address_like = ["address-group", "network-group", "domain-group"];
            if address_like.iter().filter(|g| s.has(&["group", g])).count() > 1 {
                return err(
                    "Only one address-group, network-group or domain-group can be specified",
                );
            }
            // valid_groups, in order (the bridge-only kinds cannot be set in an ipv4 rule).
            for group in [
                "address-group",
                "domain-group",
                "network-group",
                "port-group",
                "interface-group",
            ] {
                let Some(name) = s.value(&["group", group]) else {
                    continue;
                };
                if address_like.contains(&group)
                    && let Some(kind) = kinds.first()
                {
                    return Err(format!("{group} and {kind} cannot both be defined"));
                }
                let name = name.strip_prefix('!').unwrap_or(name);
                if !fw.has(&["group", group, name]) {
                    return Err(format!("Invalid {group} \"{name}\" on firewall rule"));
                }
            }
        }
        let port_group = s.has(&["group", "port-group"]);
        if s.has(&["port"]) || port_group {
            match r.value(&["protocol"]) {
                None => {
                    return err("Protocol must be defined if specifying a port or port-group");
                }
                Some("tcp" | "udp" | "tcp_udp") => {}
                Some(_) => {
                    return err(
                        "Protocol must be tcp, udp, or tcp_udp when specifying a port or port-group",
                    );
                }
            }
        }
        if s.has(&["port"]) && port_group {
            return Err(format!("{side} port-group and port cannot both be defined"));
        }
    }
    for kind in ["destination-address", "source-address"] {
        let Some(a) = r.at(&["add-address-to-group", kind]) else {
            continue;
        };
        let Some(target) = a.value(&["address-group"]) else {
            return err("Dynamic address group must be defined.");
        };
        if !fw.has(&["group", "dynamic-group", "address-group", target]) {
            return err("Invalid dynamic address group on firewall rule");
        }
    }
    if r.has(&["log-options"]) {
        if !r.has(&["log"]) {
            return err("log-options defined, but log is not enable");
        }
        let group = r.has(&["log-options", "group"]);
        if r.has(&["log-options", "snapshot-length"]) && !group {
            return err("log-options snapshot-length defined, but log group is not define");
        }
        if r.has(&["log-options", "queue-threshold"]) && !group {
            return err("log-options queue-threshold defined, but log group is not define");
        }
    }
    // The Python keys, with their underscores, are in the text.
    for (node, key) in [
        ("inbound-interface", "inbound_interface"),
        ("outbound-interface", "outbound_interface"),
    ] {
        let Some(i) = r.at(&[node]) else { continue };
        if i.has(&["name"]) && i.has(&["group"]) {
            return Err(format!(
                "Cannot specify both interface group and interface name for {key}"
            ));
        }
        if let Some(g) = i.value(&["group"]) {
            let g = g.strip_prefix('!').unwrap_or(g);
            if !fw.has(&["group", "interface-group", g]) {
                return Err(format!("Invalid interface group \"{g}\" on firewall rule"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const R: &str = "firewall ipv4 forward filter rule 10";

    fn check(version: Version, lines: &[&str]) -> Option<String> {
        let mut root = Node::default();
        for line in lines {
            let words: Vec<String> = line.split(' ').map(str::to_owned).collect();
            crate::apply_op(&mut root, "set", &words, None, version)
                .unwrap_or_else(|e| panic!("{line}: {e}"));
        }
        root.prune_keeping(&crate::schema::kept_when_empty);
        verify(&root, version)
    }

    #[test]
    fn accept_dnat_and_port_forward_rules_commit() {
        for v in [Version::V1_4, Version::V1_5] {
            let ok: &[&[String]] = &[
                &[
                    format!("{R} action accept"),
                    format!("{R} connection-status nat destination"),
                ],
                &[
                    format!("{R} action accept"),
                    format!("{R} protocol tcp"),
                    format!("{R} destination address 10.0.0.5"),
                    format!("{R} destination port 22"),
                    format!("{R} source address 198.51.100.0/24"),
                    format!("{R} description vmnet:ns/vm/ssh"),
                ],
                &[
                    "firewall group network-group SRC network 198.51.100.0/24".to_owned(),
                    format!("{R} action accept"),
                    format!("{R} source group network-group SRC"),
                ],
            ];
            for lines in ok {
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                assert_eq!(check(v, &lines), None, "{v:?} {lines:?}");
            }
        }
    }

    #[test]
    fn the_scripts_texts() {
        let cases: Vec<(Vec<String>, &str)> = vec![
            (vec![R.to_owned()], "Rule action must be defined"),
            (vec![format!("{R} disable")], "Rule action must be defined"),
            (
                vec![
                    format!("{R} action accept"),
                    format!("{R} destination port 22"),
                ],
                "Protocol must be defined if specifying a port or port-group",
            ),
            (
                vec![
                    format!("{R} action accept"),
                    format!("{R} protocol icmp"),
                    format!("{R} destination port 22"),
                ],
                "Protocol must be tcp, udp, or tcp_udp when specifying a port or port-group",
            ),
            (
                vec![
                    format!("{R} action accept"),
                    format!("{R} source group network-group NOPE"),
                ],
                "Invalid network-group \"NOPE\" on firewall rule",
            ),
            (
                vec![
                    "firewall group network-group N network 10.0.0.0/8".to_owned(),
                    format!("{R} action accept"),
                    format!("{R} source address 10.0.0.1"),
                    format!("{R} source group network-group !N"),
                ],
                "network-group and address cannot both be defined",
            ),
            (
                vec![
                    "firewall group port-group P port 80".to_owned(),
                    format!("{R} action accept"),
                    format!("{R} protocol tcp"),
                    format!("{R} source port 80"),
                    format!("{R} source group port-group P"),
                ],
                "source port-group and port cannot both be defined",
            ),
            (
                vec![format!("{R} action jump")],
                "Action set to jump, but no jump-target specified",
            ),
            (
                vec![
                    format!("{R} action accept"),
                    format!("{R} protocol ipv6-icmp"),
                ],
                "Cannot match IPv6 ICMP protocol on IPv4, use icmp",
            ),
            (
                vec![
                    format!("{R} action accept"),
                    format!("{R} inbound-interface name eth0"),
                    format!("{R} inbound-interface group G"),
                ],
                "Cannot specify both interface group and interface name for inbound_interface",
            ),
            (
                vec!["firewall group network-group A include B".to_owned()],
                "Nested group \"B\" does not exist",
            ),
        ];
        for v in [Version::V1_4, Version::V1_5] {
            for (lines, want) in &cases {
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                assert_eq!(check(v, &lines).as_deref(), Some(*want), "{v:?} {lines:?}");
            }
        }
    }

    #[test]
    fn versions_differ_on_jump_targets() {
        let lines = [
            "firewall ipv4 name OTHER default-action drop".to_owned(),
            format!("{R} action jump"),
            format!("{R} jump-target NOPE"),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(
            check(Version::V1_4, &lines).as_deref(),
            Some("Invalid jump-target. Firewall name NOPE does not exist on the system")
        );
        assert_eq!(
            check(Version::V1_5, &lines).as_deref(),
            Some("Invalid jump-target. Firewall ipv4 name NOPE does not exist on the system")
        );
    }
}
