//! DHCP static mappings for VmNetworks with a MAC, the pure part: where each mapping goes,
//! whether it may go there, and the ops that bring the router's owned mappings to that.
//!
//! - **Where:** the router's DHCP subnet that contains the VM's address. VyOS refuses
//!   overlapping subnets, so at most one does; the subnet is the router's configuration and
//!   is not repeated in the cluster. No such subnet: the VmNetwork is refused with the
//!   `set` line that would add one.
//! - **Ownership:** the mapping's name, `vmnet.<namespace>.<name>` (namespaces have no
//!   dots, so the owner reads back unambiguously; it fits 1.4's name regex and 1.5's host
//!   names). VyOS 1.4 has no description on a mapping, so the name is the marker. Mappings
//!   without the prefix are never touched.
//! - **Clashes:** a mapping someone else wrote with the same MAC (case-insensitive) or
//!   address in the subnet refuses the VmNetwork `Conflict`, naming that mapping; nothing
//!   is overwritten. Two VmNetworks with one MAC: the first by name keeps it.
//! - **VyOS's checks:** the foreign and the owned mappings together go through
//!   [`validate_mappings`], the set-time validators and `verify()` of VyOS's
//!   `service_dhcp-server.py`; an owned mapping VyOS would refuse is refused with VyOS's
//!   words and left out.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use vyos_client::dhcp::{
    DhcpServer, MappingKey, StaticMapping, SubnetKey, diff_mappings, validate_mappings,
};
use vyos_client::nat::{ConfigOp, SchemaVersion};

use crate::conditions::Reason;

/// The prefix of every mapping the operator writes.
pub const PREFIX: &str = "vmnet.";

/// A VmNetwork, by namespace and name.
pub type Owner = (String, String);

/// The name of `owner`'s mapping.
pub fn mapping_name(owner: &Owner) -> String {
    format!("{PREFIX}{}.{}", owner.0, owner.1)
}

/// The VmNetwork a mapping name belongs to, if the operator wrote it.
pub fn owner_of(mapping: &str) -> Option<Owner> {
    let rest = mapping.strip_prefix(PREFIX)?;
    let (ns, name) = rest.split_once('.')?;
    (!ns.is_empty() && !name.is_empty()).then(|| (ns.to_owned(), name.to_owned()))
}

/// What one VmNetwork asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// The VmNetwork.
    pub owner: Owner,
    /// Its address.
    pub address: Ipv4Addr,
    /// Its MAC, as written.
    pub mac: String,
}

/// What became of one VmNetwork's mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It is (or will be, once the ops are sent) on the router, here.
    Placed(MappingKey),
    /// It cannot be: why, and what to do.
    Refused(Reason, String),
}

/// The change to the router's DHCP static mappings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The owned mappings the router should hold.
    pub target: BTreeMap<MappingKey, StaticMapping>,
    /// The ops from what it holds to that (leaf level; never touching foreign mappings).
    pub ops: Vec<ConfigOp>,
    /// Per VmNetwork.
    pub verdicts: BTreeMap<Owner, Verdict>,
}

/// The plan for `server` (as read from the router) and `wants`, on `version`.
pub fn plan(server: &DhcpServer, wants: &[Want], version: SchemaVersion) -> Plan {
    let owned: BTreeMap<MappingKey, StaticMapping> = server
        .mappings
        .iter()
        .filter(|(k, _)| owner_of(&k.name).is_some())
        .map(|(k, m)| (k.clone(), m.clone()))
        .collect();
    let foreign: BTreeMap<MappingKey, StaticMapping> = server
        .mappings
        .iter()
        .filter(|(k, _)| owner_of(&k.name).is_none())
        .map(|(k, m)| (k.clone(), m.clone()))
        .collect();
    let mut wants: Vec<&Want> = wants.iter().collect();
    wants.sort_by(|a, b| a.owner.cmp(&b.owner));

    let mut out = Plan::default();
    // The MACs and addresses each subnet's owned mappings took so far, with who took them.
    let mut taken: BTreeMap<(SubnetKey, String), Owner> = BTreeMap::new();
    for w in wants {
        let Some(subnet) = subnet_of(server, w.address) else {
            out.verdicts.insert(
                w.owner.clone(),
                Verdict::Refused(
                    Reason::DhcpSubnetMissing,
                    format!(
                        "no DHCP subnet on the router contains {}: add one first, e.g. `set service dhcp-server shared-network-name LAN subnet <prefix of {}> ...`",
                        w.address, w.address
                    ),
                ),
            );
            continue;
        };
        let mac = w.mac.to_ascii_lowercase();
        let ip = w.address.to_string();
        if let Some((k, _)) = foreign.iter().find(|(k, m)| {
            k.subnet_key() == subnet
                && !m.disabled
                && (m.mac.as_deref().map(str::to_ascii_lowercase) == Some(mac.clone())
                    || m.ip_address.as_deref() == Some(ip.as_str()))
        }) {
            out.verdicts.insert(
                w.owner.clone(),
                Verdict::Refused(
                    Reason::Conflict,
                    format!(
                        "static-mapping {:?} in shared-network-name {} subnet {} (not written by the operator) already has MAC {} or address {}: nothing was overwritten; remove that mapping or change this VmNetwork",
                        k.name, k.shared_network, k.subnet, w.mac, ip
                    ),
                ),
            );
            continue;
        }
        let clash = [mac.clone(), ip.clone()]
            .into_iter()
            .find_map(|v| taken.get(&(subnet.clone(), v)).cloned());
        if let Some(other) = clash {
            out.verdicts.insert(
                w.owner.clone(),
                Verdict::Refused(
                    Reason::Conflict,
                    format!(
                        "VmNetwork {}/{} has the same MAC or address in DHCP subnet {}",
                        other.0, other.1, subnet
                    ),
                ),
            );
            continue;
        }
        taken.insert((subnet.clone(), mac), w.owner.clone());
        taken.insert((subnet.clone(), ip.clone()), w.owner.clone());
        let key = MappingKey::new(
            &subnet.shared_network,
            &subnet.subnet,
            mapping_name(&w.owner),
        );
        let mut m = StaticMapping::new(&key);
        m.ip_address = Some(ip);
        m.mac = Some(w.mac.clone());
        // What the router already has beyond these leaves (a description someone added)
        // stays: only the operator's leaves are its to set.
        if let Some(old) = owned.get(&key) {
            m.description = old.description.clone();
            m.extra = old.extra.clone();
            m.disabled = old.disabled;
        }
        out.target.insert(key.clone(), m);
        out.verdicts.insert(w.owner.clone(), Verdict::Placed(key));
    }

    // VyOS's own checks over everything the router would then hold; an owned mapping it
    // would refuse is left out, with VyOS's words.
    loop {
        let mut all = foreign.clone();
        all.extend(out.target.iter().map(|(k, m)| (k.clone(), m.clone())));
        let Err(errs) = validate_mappings(server, &all, version) else {
            break;
        };
        let refused: Vec<(MappingKey, String)> = errs
            .iter()
            .filter_map(|e| {
                let name = e.mapping.as_ref()?;
                let key = MappingKey::new(&e.subnet.shared_network, &e.subnet.subnet, name);
                out.target
                    .contains_key(&key)
                    .then(|| (key, format!("{}: {}", e.field, e.message)))
            })
            .collect();
        if refused.is_empty() {
            // What is left is the router's own trouble (a foreign mapping, a subnet):
            // the commit will say so.
            break;
        }
        for (key, why) in refused {
            out.target.remove(&key);
            if let Some(owner) = owner_of(&key.name) {
                out.verdicts.insert(
                    owner,
                    Verdict::Refused(
                        Reason::InvalidRule,
                        format!("VyOS would refuse the DHCP static mapping: {why}"),
                    ),
                );
            }
        }
    }
    out.ops = diff_mappings(&owned, &out.target, version);
    out
}

/// The router's subnet that contains `ip` (the first, should VyOS ever allow two).
fn subnet_of(server: &DhcpServer, ip: Ipv4Addr) -> Option<SubnetKey> {
    server
        .subnets
        .keys()
        .find(|k| {
            k.subnet
                .parse::<ipnet::Ipv4Net>()
                .is_ok_and(|n| n.contains(&ip))
        })
        .cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;
    use vyos_client::dhcp::{apply_mapping_ops, parse_server};

    fn server(mappings: serde_json::Value) -> DhcpServer {
        parse_server(
            &json!({"shared-network-name": {"LAN": {"subnet": {"192.0.2.0/24": {
                "subnet-id": "1",
                "range": {"0": {"start": "192.0.2.100", "stop": "192.0.2.199"}},
                "static-mapping": mappings
            }}}}}),
        )
        .unwrap()
    }

    fn want(name: &str, ip: &str, mac: &str) -> Want {
        Want {
            owner: ("lab".into(), name.into()),
            address: ip.parse().unwrap(),
            mac: mac.into(),
        }
    }

    #[test]
    fn names_carry_the_owner() {
        let o = ("lab".to_owned(), "db-1".to_owned());
        assert_eq!(mapping_name(&o), "vmnet.lab.db-1");
        assert_eq!(owner_of("vmnet.lab.db-1"), Some(o));
        assert_eq!(
            owner_of("vmnet.lab.db.1"),
            Some(("lab".into(), "db.1".into()))
        );
        assert_eq!(owner_of("printer"), None);
        assert_eq!(owner_of("vmnet.nodot"), None);
    }

    #[test]
    fn a_mapping_goes_into_the_subnet_of_the_address_and_applies() {
        let s = server(json!({"printer": {"ip-address": "192.0.2.5", "mac": "aa:aa:aa:aa:aa:aa"}}));
        let p = plan(
            &s,
            &[want("vm1", "192.0.2.10", "52:54:00:00:00:01")],
            SchemaVersion::V1_5,
        );
        let key = MappingKey::new("LAN", "192.0.2.0/24", "vmnet.lab.vm1");
        assert_eq!(
            p.verdicts[&("lab".to_owned(), "vm1".to_owned())],
            Verdict::Placed(key.clone())
        );
        // Applying the ops to what the router has gives the target, foreign mapping kept.
        let mut after = s.mappings.clone();
        apply_mapping_ops(&mut after, &p.ops, SchemaVersion::V1_5).unwrap();
        assert_eq!(after[&key].mac.as_deref(), Some("52:54:00:00:00:01"));
        assert!(after.keys().any(|k| k.name == "printer"));
        // 1.4 writes the MAC as mac-address.
        let p14 = plan(
            &s,
            &[want("vm1", "192.0.2.10", "52:54:00:00:00:01")],
            SchemaVersion::V1_4,
        );
        assert!(
            p14.ops
                .iter()
                .any(|o| o.path.last().map(String::as_str) == Some("mac-address")
                    || o.path.iter().any(|w| w == "mac-address"))
        );
    }

    #[test]
    fn a_new_mac_is_one_op_and_a_gone_vm_is_one_delete() {
        let s = server(
            json!({"vmnet.lab.vm1": {"ip-address": "192.0.2.10", "mac": "52:54:00:00:00:01"}}),
        );
        let p = plan(
            &s,
            &[want("vm1", "192.0.2.10", "52:54:00:00:00:02")],
            SchemaVersion::V1_5,
        );
        assert_eq!(p.ops.len(), 1, "{:?}", p.ops);
        let p = plan(&s, &[], SchemaVersion::V1_5);
        assert_eq!(p.ops.len(), 1, "{:?}", p.ops);
        assert!(p.target.is_empty());
        // Nothing to do: no ops.
        let p = plan(
            &s,
            &[want("vm1", "192.0.2.10", "52:54:00:00:00:01")],
            SchemaVersion::V1_5,
        );
        assert!(p.ops.is_empty(), "{:?}", p.ops);
    }

    #[test]
    fn foreign_clashes_and_missing_subnets_refuse_and_overwrite_nothing() {
        let s = server(json!({"printer": {"ip-address": "192.0.2.5", "mac": "AA:AA:AA:AA:AA:AA"}}));
        let p = plan(
            &s,
            &[
                want("same-mac", "192.0.2.11", "aa:aa:aa:aa:aa:aa"),
                want("same-ip", "192.0.2.5", "52:54:00:00:00:03"),
                want("elsewhere", "10.9.9.9", "52:54:00:00:00:04"),
            ],
            SchemaVersion::V1_5,
        );
        for vm in ["same-mac", "same-ip"] {
            match &p.verdicts[&("lab".to_owned(), vm.to_owned())] {
                Verdict::Refused(Reason::Conflict, m) => assert!(m.contains("\"printer\""), "{m}"),
                other => panic!("{vm}: {other:?}"),
            }
        }
        match &p.verdicts[&("lab".to_owned(), "elsewhere".to_owned())] {
            Verdict::Refused(Reason::DhcpSubnetMissing, m) => {
                assert!(m.contains("10.9.9.9"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert!(p.ops.is_empty(), "{:?}", p.ops);
    }

    #[test]
    fn two_vms_with_one_mac_the_first_keeps_it() {
        let s = server(json!({}));
        let p = plan(
            &s,
            &[
                want("b", "192.0.2.12", "52:54:00:00:00:09"),
                want("a", "192.0.2.11", "52:54:00:00:00:09"),
            ],
            SchemaVersion::V1_5,
        );
        assert!(matches!(
            p.verdicts[&("lab".to_owned(), "a".to_owned())],
            Verdict::Placed(_)
        ));
        assert!(matches!(
            p.verdicts[&("lab".to_owned(), "b".to_owned())],
            Verdict::Refused(Reason::Conflict, _)
        ));
        assert_eq!(p.target.len(), 1);
    }
}
