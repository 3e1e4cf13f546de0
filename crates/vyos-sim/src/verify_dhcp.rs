//! The DHCP server's commit checks: vyos-1x `src/conf_mode/service_dhcp-server.py`,
//! `get_config()` and `verify()`, on the sagitta branch for 1.4 (ISC dhcpd) and on current
//! for 1.5 (Kea), in the script's order and with its texts (see docs/vyos-dhcp-firewall.md).
//!
//! Each message is given as `textwrap.fill` sees it: where the Python literal has a `\n`,
//! the text here has a space (`fill` replaces whitespace, then wraps).
//!
//! What depends on the router itself reads the config instead: an interface's addresses
//! are the `address` leaves under `interfaces` (vyos `is_subnet_connected`,
//! `is_addr_assigned`), an interface exists when `interfaces <type> <name>` does. The
//! `pki` lookups of 1.5's secured high availability are not simulated.

use crate::Version;
use crate::commit::{View, in_net, interface_addresses, interface_names, net, v4};
use crate::tree::{Node, path};

/// A range after `get_config()`: its name, start and stop (either may be missing).
struct Range {
    name: String,
    start: Option<String>,
    stop: Option<String>,
}

fn ip_str(n: u32) -> String {
    std::net::Ipv4Addr::from(n).to_string()
}

/// `dhcp_slice_range(exclude_list, range_dict)`, line by line: the excludes are sorted as
/// strings (`sorted(exclude_list)`), not as addresses, and the second loop tests each one
/// against the already advanced start, so some orders drop the range's tail; kept as is.
fn slice_range(sorted: &[&str], start: u32, stop: u32) -> Vec<(u32, u32)> {
    let ips: Vec<u32> = sorted.iter().filter_map(|e| v4(e)).collect();
    let mut out: Vec<(u32, u32)> = Vec::new();
    let mut range_start = start;
    let range_stop = stop;
    let mut last: Option<u32> = None;
    for e in &ips {
        if *e >= range_start && *e <= range_stop {
            last = Some(*e);
        }
    }
    for e in &ips {
        if *e >= range_start && *e <= range_stop {
            let r = (range_start, e.wrapping_sub(1));
            range_start = e.wrapping_add(1);
            if r.0 <= r.1 {
                out.push(r);
            }
            if Some(*e) == last {
                let r = (e.wrapping_add(1), range_stop);
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

/// The subnet's ranges as `verify()` sees them: as configured, or, when the subnet also
/// has `exclude`, cut around the excluded addresses and renamed `0`, `1`, ...
/// (`get_config()`). Cutting reads `range_dict['start']` first: a range without a start or
/// stop then fails the commit with Python's KeyError.
fn ranges(subnet: View<'_>) -> Result<Vec<Range>, String> {
    let configured: Vec<Range> = subnet
        .children(&["range"])
        .into_iter()
        .map(|(name, r)| Range {
            name: name.to_owned(),
            start: r.value(&["start"]).map(str::to_owned),
            stop: r.value(&["stop"]).map(str::to_owned),
        })
        .collect();
    let excludes = subnet.values(&["exclude"]);
    if excludes.is_empty() || !subnet.has(&["range"]) {
        return Ok(configured);
    }
    let mut sorted = excludes.clone();
    sorted.sort_unstable();
    let mut out = Vec::new();
    for r in configured {
        let start = r.start.as_deref().ok_or("KeyError: 'start'")?;
        let stop = r.stop.as_deref().ok_or("KeyError: 'stop'")?;
        let (Some(a), Some(b)) = (v4(start), v4(stop)) else {
            continue;
        };
        for (lo, hi) in slice_range(&sorted, a, b) {
            out.push(Range {
                name: out.len().to_string(),
                start: Some(ip_str(lo)),
                stop: Some(ip_str(hi)),
            });
        }
    }
    Ok(out)
}

/// The first error of `verify()` for `service dhcp-server` in `root`, if any.
pub fn verify(root: &Node, version: Version) -> Option<String> {
    verify_inner(root, version).err()
}

fn verify_inner(root: &Node, version: Version) -> Result<(), String> {
    let v14 = version == Version::V1_4;
    // `if not conf.exists(base): return None`; `if not dhcp or 'disable' in dhcp`.
    let Some(dhcp) = root.get(&path(&["service", "dhcp-server"])).map(View) else {
        return Ok(());
    };
    if dhcp.has(&["disable"]) {
        return Ok(());
    }
    if !dhcp.has(&["shared-network-name"]) {
        return Err("No DHCP shared networks configured. At least one DHCP shared network must be configured.".into());
    }
    // `len(dhcp['high_availability']) == 1`: only the default `mode`; then it is removed.
    let ha = dhcp
        .at(&["high-availability"])
        .filter(|h| h.children(&[]).iter().any(|(k, _)| *k != "mode"));
    let addresses = interface_addresses(root);
    let connected = |subnet: (u32, u32)| addresses.iter().any(|a| in_net(*a, subnet));

    let mut listen_ok = false;
    let mut subnets: Vec<String> = Vec::new();
    let mut failover_ok = false;
    let networks = dhcp.children(&["shared-network-name"]);
    let mut disabled_networks = 0;
    let mut subnet_ids: Vec<&str> = Vec::new();

    for (name, network_config) in &networks {
        // `network`: the loop variable, which the range check below rebinds.
        let mut network = (*name).to_owned();
        if network_config.has(&["disable"]) {
            disabled_networks += 1;
        }
        if !network_config.has(&["subnet"]) {
            return Err(format!(
                "No subnets defined for {network}. At least one lease subnet must be configured."
            ));
        }
        for (subnet, subnet_config) in network_config.children(&["subnet"]) {
            let Some(snet) = net(subnet) else { continue };
            if !v14 {
                let Some(id) = subnet_config.value(&["subnet-id"]) else {
                    return Err(format!(
                        "Unique subnet ID not specified for subnet \"{subnet}\""
                    ));
                };
                if subnet_ids.contains(&id) {
                    return Err(format!("Subnet ID for subnet \"{subnet}\" is not unique"));
                }
                subnet_ids.push(id);
            }
            for (route, r) in subnet_config.children(&["static-route"]) {
                if !r.has(&["next-hop"]) {
                    return Err(format!(
                        "DHCP static-route \"{route}\" requires router to be defined!"
                    ));
                }
            }
            if v14 && subnet_config.has(&["enable-failover"]) {
                if ha.is_none() {
                    return Err(format!(
                        "Can not enable high availability for \"{subnet}\" in \"{network}\". High availability is not configured globally!"
                    ));
                }
                failover_ok = true;
            }
            if subnet_config.has(&["range"]) {
                let mut seen: Vec<(u32, u32)> = Vec::new();
                for r in ranges(subnet_config)? {
                    let range = &r.name;
                    let (Some(start), Some(stop)) = (r.start.as_deref(), r.stop.as_deref()) else {
                        return Err(format!(
                            "DHCP range \"{range}\" start and stop address must be defined!"
                        ));
                    };
                    let (a, b) = (v4(start).unwrap_or(0), v4(stop).unwrap_or(0));
                    for (key, ip) in [("start", a), ("stop", b)] {
                        if !in_net(ip, snet) {
                            return Err(format!(
                                "DHCP range \"{range}\" {key} address not within shared-network \"{network}, {subnet}\"!"
                            ));
                        }
                    }
                    if b < a {
                        return Err(format!(
                            "DHCP range \"{range}\" stop address must be greater or equal to the ranges start address!"
                        ));
                    }
                    // `for network in networks:` rebinds the shared network's name to the
                    // earlier ranges' `IPRange`s (`str()`: `start-stop`).
                    for (lo, hi) in &seen {
                        network = format!("{}-{}", ip_str(*lo), ip_str(*hi));
                        if (*lo..=*hi).contains(&a) {
                            return Err(format!(
                                "Range \"{range}\" start address \"{start}\" already part of another range!"
                            ));
                        }
                        if (*lo..=*hi).contains(&b) {
                            return Err(format!(
                                "Range \"{range}\" stop address \"{stop}\" already part of another range!"
                            ));
                        }
                    }
                    seen.push((a, b));
                }
            }
            for exclude in subnet_config.values(&["exclude"]) {
                if !v4(exclude).is_some_and(|e| in_net(e, snet)) {
                    return Err(format!(
                        "Excluded IP address \"{exclude}\" not within shared-network \"{network}, {subnet}\"!"
                    ));
                }
            }
            if !subnet_config.has(&["range"]) && !subnet_config.has(&["static-mapping"]) {
                return Err(format!(
                    "No DHCP address range or active static-mapping configured within shared-network \"{network}, {subnet}\"!"
                ));
            }
            mappings(subnet_config, &network, subnet, snet, version)?;
            if !network_config.has(&["disable"]) && connected(snet) {
                listen_ok = true;
            }
            if subnets.iter().any(|s| s == subnet) {
                return Err(format!(
                    "Configured subnets must be unique! Subnet \"{subnet}\" defined multiple times!"
                ));
            }
            subnets.push(subnet.to_owned());
            let (lo, hi) = crate::commit::net_bounds(snet);
            for n in &subnets {
                let Some(other) = net(n) else { continue };
                let (olo, ohi) = crate::commit::net_bounds(other);
                if n != subnet && lo <= ohi && olo <= hi {
                    return Err(format!(
                        "Conflicting subnet ranges: \"{subnet}\" overlaps \"{n}\"!"
                    ));
                }
            }
        }
    }

    if networks.len() - disabled_networks < 1 {
        return Err("At least one shared network must be active!".into());
    }
    if let Some(ha) = ha {
        if v14 && !failover_ok {
            return Err("DHCP failover must be enabled for at least one subnet!".into());
        }
        for key in ["name", "remote", "source-address", "status"] {
            if !ha.has(&[key]) {
                return Err(if v14 {
                    format!("DHCP failover requires \"{key}\" to be specified!")
                } else {
                    format!("DHCP high-availability requires \"{key}\" to be specified!")
                });
            }
        }
        if !v14 && ha.has(&["certificate"]) != ha.has(&["ca-certificate"]) {
            return Err(
                "DHCP secured high-availability requires both certificate and CA certificate"
                    .into(),
            );
        }
    }
    for address in dhcp.values(&["listen-address"]) {
        if v4(address).is_some_and(|a| addresses.contains(&a)) {
            listen_ok = true;
        } else {
            return Err(format!(
                "listen-address \"{address}\" not configured on any interface"
            ));
        }
    }
    if !listen_ok {
        return Err("None of the configured subnets have an appropriate primary IP address on any broadcast interface configured, nor was there an explicit listen-address configured for serving DHCP relay packets!".into());
    }
    if !v14 {
        if dhcp.has(&["listen-address"]) && dhcp.has(&["listen-interface"]) {
            return Err(
                "Cannot define listen-address and listen-interface at the same time".into(),
            );
        }
        let names = interface_names(root);
        for interface in dhcp.values(&["listen-interface"]) {
            if !names.iter().any(|n| n == interface) {
                return Err(format!("listen-interface \"{interface}\" does not exist"));
            }
        }
    }
    Ok(())
}

/// The static-mapping part of one subnet: `used_ips`, `used_mac` (and 1.5's `used_duid`)
/// start empty for every subnet; disabled mappings are not counted.
fn mappings(
    subnet_config: View<'_>,
    network: &str,
    subnet: &str,
    snet: (u32, u32),
    version: Version,
) -> Result<(), String> {
    let v14 = version == Version::V1_4;
    let mac_leaf = if v14 { "mac-address" } else { "mac" };
    let mut used_ips: Vec<&str> = Vec::new();
    let mut used_mac: Vec<&str> = Vec::new();
    let mut used_duid: Vec<&str> = Vec::new();
    for (mapping, m) in subnet_config.children(&["static-mapping"]) {
        let enabled = !m.has(&["disable"]);
        if let Some(ip) = m.value(&["ip-address"]) {
            if !v4(ip).is_some_and(|a| in_net(a, snet)) {
                return Err(format!(
                    "Configured static lease address for mapping \"{mapping}\" is not within shared-network \"{network}, {subnet}\"!"
                ));
            }
            if v14 && !m.has(&["mac-address"]) {
                return Err(format!(
                    "MAC address required for static mapping \"{mapping}\" within shared-network \"{network}, {subnet}\"!"
                ));
            }
            if !v14 && m.has(&["mac"]) == m.has(&["duid"]) {
                return Err(format!(
                    "Either MAC address or Client identifier (DUID) is required for static mapping \"{mapping}\" within shared-network \"{network}, {subnet}\"!"
                ));
            }
            if enabled {
                if used_ips.contains(&ip) {
                    return Err(format!(
                        "Configured IP address for static mapping \"{mapping}\" already exists on another static mapping"
                    ));
                }
                used_ips.push(ip);
            }
        }
        if !enabled {
            continue;
        }
        if let Some(mac) = m.value(&[mac_leaf]) {
            if used_mac.contains(&mac) {
                return Err(format!(
                    "Configured MAC address for static mapping \"{mapping}\" already exists on another static mapping"
                ));
            }
            used_mac.push(mac);
        }
        if let Some(duid) = m.value(&["duid"]).filter(|_| !v14) {
            if used_duid.contains(&duid) {
                return Err(format!(
                    "Configured DUID for static mapping \"{mapping}\" already exists on another static mapping"
                ));
            }
            used_duid.push(duid);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const LAN: &str = "service dhcp-server shared-network-name LAN";

    fn tree(version: Version, lines: &[&str]) -> Node {
        let mut root = Node::default();
        for line in lines {
            let words: Vec<String> = line.split(' ').map(str::to_owned).collect();
            crate::apply_op(&mut root, "set", &words, None, version)
                .unwrap_or_else(|e| panic!("{line}: {e}"));
        }
        root
    }

    /// A served subnet on an interface, with one mapping, as each version wants it.
    fn base(version: Version) -> Vec<String> {
        let mac = if version == Version::V1_4 {
            "mac-address"
        } else {
            "mac"
        };
        let mut v = vec![
            "interfaces ethernet eth1 address 192.0.2.1/24".to_owned(),
            format!("{LAN} subnet 192.0.2.0/24 static-mapping vm1 ip-address 192.0.2.10"),
            format!("{LAN} subnet 192.0.2.0/24 static-mapping vm1 {mac} 52:54:00:00:00:01"),
        ];
        if version == Version::V1_5 {
            v.push(format!("{LAN} subnet 192.0.2.0/24 subnet-id 1"));
        }
        v
    }

    fn check(version: Version, extra: &[String]) -> Option<String> {
        let mut lines = base(version);
        lines.extend(extra.iter().cloned());
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        verify(&tree(version, &lines), version)
    }

    #[test]
    fn a_served_subnet_with_a_mapping_commits() {
        for v in [Version::V1_4, Version::V1_5] {
            assert_eq!(check(v, &[]), None, "{v:?}");
        }
    }

    #[test]
    fn the_scripts_texts() {
        let s = "subnet 192.0.2.0/24";
        let cases: Vec<(Version, Vec<String>, &str)> = vec![
            (
                Version::V1_5,
                vec![format!(
                    "{LAN} subnet 198.51.100.0/24 range r start 198.51.100.10"
                )],
                "Unique subnet ID not specified for subnet \"198.51.100.0/24\"",
            ),
            (
                Version::V1_5,
                vec![
                    format!("{LAN} subnet 198.51.100.0/24 subnet-id 1"),
                    format!("{LAN} subnet 198.51.100.0/24 range r start 198.51.100.10"),
                ],
                "Subnet ID for subnet \"198.51.100.0/24\" is not unique",
            ),
            (
                Version::V1_4,
                vec![format!("{LAN} {s} static-mapping vm2 ip-address 192.0.3.1")],
                "Configured static lease address for mapping \"vm2\" is not within shared-network \"LAN, 192.0.2.0/24\"!",
            ),
            (
                Version::V1_4,
                vec![format!(
                    "{LAN} {s} static-mapping vm2 ip-address 192.0.2.11"
                )],
                "MAC address required for static mapping \"vm2\" within shared-network \"LAN, 192.0.2.0/24\"!",
            ),
            (
                Version::V1_5,
                vec![format!(
                    "{LAN} {s} static-mapping vm2 ip-address 192.0.2.11"
                )],
                "Either MAC address or Client identifier (DUID) is required for static mapping \"vm2\" within shared-network \"LAN, 192.0.2.0/24\"!",
            ),
            (
                Version::V1_5,
                vec![
                    format!("{LAN} {s} static-mapping vm2 ip-address 192.0.2.10"),
                    format!("{LAN} {s} static-mapping vm2 mac 52:54:00:00:00:02"),
                ],
                "Configured IP address for static mapping \"vm2\" already exists on another static mapping",
            ),
            (
                Version::V1_4,
                vec![format!(
                    "{LAN} {s} static-mapping vm2 mac-address 52:54:00:00:00:01"
                )],
                "Configured MAC address for static mapping \"vm2\" already exists on another static mapping",
            ),
            (
                Version::V1_4,
                vec![format!(
                    "{LAN} subnet 192.0.2.128/25 range r start 192.0.2.130"
                )],
                "DHCP range \"r\" start and stop address must be defined!",
            ),
            (
                Version::V1_4,
                vec![
                    format!("{LAN} subnet 192.0.2.128/25 range r start 192.0.2.130"),
                    format!("{LAN} subnet 192.0.2.128/25 range r stop 192.0.2.140"),
                ],
                "Conflicting subnet ranges: \"192.0.2.128/25\" overlaps \"192.0.2.0/24\"!",
            ),
            (
                Version::V1_4,
                vec![
                    "interfaces ethernet eth1 address 203.0.113.1/24".to_owned(),
                    format!(
                        "service dhcp-server shared-network-name WAN subnet 192.0.2.0/24 range r start 192.0.2.130"
                    ),
                    format!(
                        "service dhcp-server shared-network-name WAN subnet 192.0.2.0/24 range r stop 192.0.2.140"
                    ),
                ],
                "Configured subnets must be unique! Subnet \"192.0.2.0/24\" defined multiple times!",
            ),
            (
                Version::V1_4,
                vec!["interfaces ethernet eth1 address 203.0.113.1/24".to_owned()],
                "None of the configured subnets have an appropriate primary IP address on any broadcast interface configured, nor was there an explicit listen-address configured for serving DHCP relay packets!",
            ),
            (
                Version::V1_5,
                vec!["service dhcp-server listen-address 192.0.2.99".to_owned()],
                "listen-address \"192.0.2.99\" not configured on any interface",
            ),
            (
                Version::V1_4,
                vec![format!("{LAN} disable")],
                "At least one shared network must be active!",
            ),
        ];
        for (v, extra, want) in cases {
            assert_eq!(check(v, &extra).as_deref(), Some(want), "{v:?} {extra:?}");
        }
    }

    #[test]
    fn duplicates_are_per_subnet_and_skip_disabled_mappings() {
        let other = "subnet 192.0.2.0/24 static-mapping vm2";
        let v = Version::V1_4;
        // The same MAC, disabled: no error.
        assert_eq!(
            check(
                v,
                &[
                    format!("{LAN} {other} mac-address 52:54:00:00:00:01"),
                    format!("{LAN} {other} disable"),
                ]
            ),
            None
        );
        // The same MAC in another subnet (of another shared network): no error.
        let lines = [
            "interfaces ethernet eth2 address 198.51.100.1/24".to_owned(),
            "service dhcp-server shared-network-name DMZ subnet 198.51.100.0/24 static-mapping x mac-address 52:54:00:00:00:01".to_owned(),
        ];
        assert_eq!(check(v, &lines), None);
        // Case matters: VyOS compares the strings.
        assert_eq!(
            check(
                v,
                &[
                    format!("{LAN} {other} mac-address 52:54:00:00:00:0a"),
                    format!(
                        "{LAN} subnet 192.0.2.0/24 static-mapping vm3 mac-address 52:54:00:00:00:0A"
                    ),
                ]
            ),
            None
        );
    }

    #[test]
    fn the_range_loop_rebinds_the_network_name() {
        let s = "subnet 192.0.2.0/24";
        let extra = [
            format!("{LAN} {s} range a start 192.0.2.100"),
            format!("{LAN} {s} range a stop 192.0.2.109"),
            format!("{LAN} {s} range b start 192.0.2.110"),
            format!("{LAN} {s} range b stop 192.0.2.119"),
            format!("{LAN} {s} static-mapping vm2 ip-address 192.0.3.1"),
        ];
        assert_eq!(
            check(Version::V1_4, &extra).as_deref(),
            Some(
                "Configured static lease address for mapping \"vm2\" is not within shared-network \"192.0.2.100-192.0.2.109, 192.0.2.0/24\"!"
            )
        );
    }

    #[test]
    fn excludes_cut_ranges_as_get_config_does() {
        let r = |s: &str, e: &[&str]| {
            let mut sorted = e.to_vec();
            sorted.sort_unstable();
            let (a, b) = s.split_once('-').unwrap();
            slice_range(&sorted, v4(a).unwrap(), v4(b).unwrap())
                .into_iter()
                .map(|(x, y)| format!("{}-{}", ip_str(x), ip_str(y)))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            r("192.0.2.1-192.0.2.100", &["192.0.2.74", "192.0.2.75"]),
            vec!["192.0.2.1-192.0.2.73", "192.0.2.76-192.0.2.100"]
        );
        assert_eq!(
            r("192.0.2.1-192.0.2.100", &["192.0.2.200"]),
            vec!["192.0.2.1-192.0.2.100"]
        );
        // Sorted as strings, "192.0.2.100" comes before "192.0.2.20": the second loop then
        // finds .20 below the advanced start, so .20 stays in and the tail is lost.
        assert_eq!(
            r("192.0.2.1-192.0.2.150", &["192.0.2.20", "192.0.2.100"]),
            vec!["192.0.2.1-192.0.2.99"]
        );
    }

    #[test]
    fn disabled_server_is_not_verified() {
        let root = tree(
            Version::V1_5,
            &[
                "service dhcp-server disable",
                &format!("{LAN} description x"),
            ],
        );
        assert_eq!(verify(&root, Version::V1_5), None);
    }
}
