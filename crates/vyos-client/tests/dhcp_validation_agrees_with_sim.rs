//! Differential test: the client's checks of a set of DHCP static mappings
//! (`dhcp::validate_mappings`, against the router's `service dhcp-server` as
//! `dhcp::parse_server` reads it) accept it exactly when vyos-sim commits
//! `dhcp::diff_mappings`' ops from the router's mappings to it, on VyOS 1.4 and 1.5; when
//! both refuse, the simulator's text is one the client gave.
//!
//! Both sides follow vyos-1x (sagitta for 1.4, current for 1.5): the client in
//! `dhcp/validate.rs`, the simulator in its schema and `verify_dhcp.rs`. The router here
//! has three shared networks on its interfaces: `LAN` (a range), `DMZ` (no range, one
//! mapping the operator does not own) and `LAB` (two ranges cut by an exclude, so VyOS's
//! messages there show a range where the shared network's name belongs), and an address
//! in 10.0.0.0/8 for subnets the mappings create.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use vyos_client::dhcp::{self, DhcpServer, MappingKey, StaticMapping};
use vyos_client::nat::{ConfigOp, OpKind, SchemaVersion};
use vyos_sim::{Node, Version};

const VERSIONS: [Version; 2] = [Version::V1_4, Version::V1_5];

fn schema(version: Version) -> SchemaVersion {
    match version {
        Version::V1_4 => SchemaVersion::V1_4,
        Version::V1_5 => SchemaVersion::V1_5,
    }
}

/// The router, as an admin set it up.
fn base(version: Version) -> Node {
    let mac = if version == Version::V1_4 {
        "mac-address"
    } else {
        "mac"
    };
    let s = "service dhcp-server shared-network-name";
    let mut lines = vec![
        "interfaces ethernet eth1 address 192.0.2.1/24".to_owned(),
        "interfaces ethernet eth2 address 198.51.100.1/24".to_owned(),
        "interfaces ethernet eth3 address 203.0.113.1/24".to_owned(),
        "interfaces ethernet eth4 address 10.255.0.1/8".to_owned(),
        format!("{s} LAN subnet 192.0.2.0/24 range r start 192.0.2.100"),
        format!("{s} LAN subnet 192.0.2.0/24 range r stop 192.0.2.199"),
        format!("{s} DMZ subnet 198.51.100.0/24 static-mapping keep ip-address 198.51.100.50"),
        format!("{s} DMZ subnet 198.51.100.0/24 static-mapping keep {mac} 52:54:00:00:00:50"),
        format!("{s} LAB subnet 203.0.113.0/24 range a start 203.0.113.100"),
        format!("{s} LAB subnet 203.0.113.0/24 range a stop 203.0.113.109"),
        format!("{s} LAB subnet 203.0.113.0/24 range b start 203.0.113.110"),
        format!("{s} LAB subnet 203.0.113.0/24 range b stop 203.0.113.119"),
        format!("{s} LAB subnet 203.0.113.0/24 exclude 203.0.113.105"),
    ];
    if version == Version::V1_5 {
        lines.push(format!("{s} LAN subnet 192.0.2.0/24 subnet-id 1"));
        lines.push(format!("{s} DMZ subnet 198.51.100.0/24 subnet-id 2"));
        lines.push(format!("{s} LAB subnet 203.0.113.0/24 subnet-id 3"));
    }
    let paths: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect();
    vyos_sim::check_commit(
        &Node::default(),
        paths.iter().map(|p| ("set", p.as_slice(), None)),
        version,
    )
    .unwrap_or_else(|e| panic!("base config on {version:?}: {e}"))
}

/// The router's config and what the client reads of it.
fn routers() -> Vec<(Version, Node, DhcpServer)> {
    VERSIONS
        .iter()
        .map(|v| {
            let node = base(*v);
            let data = node
                .get(&["service".to_owned(), "dhcp-server".to_owned()])
                .map(Node::render)
                .unwrap();
            let server = dhcp::parse_server(&data).unwrap();
            (*v, node, server)
        })
        .collect()
}

fn op_name(op: &ConfigOp) -> &'static str {
    match op.op {
        OpKind::Set => "set",
        OpKind::Delete => "delete",
    }
}

fn sim_commit(base: &Node, ops: &[ConfigOp], version: Version) -> Result<(), String> {
    vyos_sim::check_commit(
        base,
        ops.iter()
            .map(|o| (op_name(o), o.path.as_slice(), o.value.as_deref())),
        version,
    )
    .map(drop)
}

/// A change: mappings to write (replacing any of the same key), and whether the
/// operator's set drops the router's `keep`.
#[derive(Debug, Clone)]
struct Change {
    write: Vec<StaticMapping>,
    drop_keep: bool,
}

fn desired(server: &DhcpServer, c: &Change) -> BTreeMap<MappingKey, StaticMapping> {
    let mut out = server.mappings.clone();
    if c.drop_keep {
        out.retain(|k, _| k.name != "keep");
    }
    for m in &c.write {
        out.insert(m.key(), m.clone());
    }
    out
}

fn disagreement(routers: &[(Version, Node, DhcpServer)], c: &Change) -> Option<String> {
    let mut out = String::new();
    let mut cli = Vec::new();
    for (version, node, server) in routers {
        let want = desired(server, c);
        let ops = dhcp::diff_mappings(&server.mappings, &want, schema(*version));
        let client = dhcp::validate_mappings(server, &want, schema(*version));
        let sim = sim_commit(node, &ops, *version);
        let agree = match (&client, &sim) {
            (Ok(()), Ok(())) => true,
            (Err(es), Err(text)) => es.iter().any(|e| text.contains(&e.message)),
            _ => false,
        };
        if !agree {
            cli = ops.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                out,
                "VyOS {version:?}:\n  client: {:?}\n  vyos-sim: {sim:?}",
                client
                    .as_ref()
                    .map_err(|es| es.iter().map(ToString::to_string).collect::<Vec<_>>()),
            );
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(format!(
            "ops (last disagreeing version):\n  {}\n{out}",
            cli.join("\n  ")
        ))
    }
}

fn mapping(
    network: &str,
    subnet: &str,
    name: &str,
    ip: Option<&str>,
    mac: Option<&str>,
) -> StaticMapping {
    let mut m = StaticMapping::new(&MappingKey::new(network, subnet, name));
    m.ip_address = ip.map(str::to_owned);
    m.mac = mac.map(str::to_owned);
    m
}

const LAN: &str = "192.0.2.0/24";

fn one(m: StaticMapping) -> Change {
    Change {
        write: vec![m],
        drop_keep: false,
    }
}

/// A mapping VyOS takes on both versions, the base of every single-field edit.
fn good() -> StaticMapping {
    mapping(
        "LAN",
        LAN,
        "vm1",
        Some("192.0.2.10"),
        Some("52:54:00:00:00:01"),
    )
}

const NAMES: &[&str] = &[
    "vm1", "web.lab", "vm-1", "VM1", "vm_1", "-vm", "_vm", ".vm", "vm+1", "vm 1", "it's", "",
];
const IPS: &[&str] = &[
    "192.0.2.10",
    "192.0.2.0",
    "192.0.2.255",
    "192.0.3.10",
    "192.0.2.010",
    "192.0.2.256",
    "198.51.100.50",
    "",
];
const MACS: &[&str] = &[
    "52:54:00:00:00:01",
    "52:54:00:AA:bb:01",
    "52:54:00:00:00:50",
    "52-54-00-00-00-01",
    "52:54:00:00:00",
    "52:54:00:00:00:001",
    "",
];
const NETWORKS: &[&str] = &["LAN", "DMZ", "LAB", "NEW", "a+b", ".x", "sp ace", ""];
const SUBNETS: &[&str] = &[
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "10.1.0.0/16",
    "192.0.2.128/25",
    "192.0.2.1/24",
    "0.0.0.0/0",
    "",
];
const DESCRIPTIONS: &[&str] = &["vmnet:ns/vm1", "it's", ""];

fn edits() -> Vec<(String, Change)> {
    let mut out = Vec::new();
    let mut add = |name: String, c: Change| out.push((name, c));
    add("valid".into(), one(good()));
    for n in NAMES {
        let mut m = good();
        m.name = (*n).into();
        add(format!("name {n:?}"), one(m));
    }
    for ip in IPS {
        let mut m = good();
        m.ip_address = Some((*ip).into());
        add(format!("ip-address {ip:?}"), one(m));
    }
    for mac in MACS {
        let mut m = good();
        m.mac = Some((*mac).into());
        add(format!("mac {mac:?}"), one(m));
    }
    for d in DESCRIPTIONS
        .iter()
        .map(|s| (*s).to_owned())
        .chain(["x".repeat(255), "x".repeat(256)])
    {
        let mut m = good();
        m.description = Some(d.clone());
        add(format!("description {d:?}"), one(m));
    }
    for net in NETWORKS {
        for sub in SUBNETS {
            let mut m = good();
            m.shared_network = (*net).into();
            m.subnet = (*sub).into();
            m.ip_address = sub
                .split('/')
                .next()
                .and_then(|a| a.strip_suffix(".0"))
                .map(|p| format!("{p}.7"));
            add(format!("{net:?} {sub:?}"), one(m));
        }
    }
    add(
        "no mac".into(),
        one(mapping("LAN", LAN, "vm1", Some("192.0.2.10"), None)),
    );
    add(
        "no ip".into(),
        one(mapping("LAN", LAN, "vm1", None, Some("52:54:00:00:00:01"))),
    );
    add(
        "nothing".into(),
        one(mapping("LAN", LAN, "vm1", None, None)),
    );
    let mut disabled = mapping(
        "DMZ",
        "198.51.100.0/24",
        "vm2",
        Some("198.51.100.50"),
        Some("52:54:00:00:00:50"),
    );
    add("keep's address and MAC".into(), one(disabled.clone()));
    disabled.disabled = true;
    add("keep's address and MAC, disabled".into(), one(disabled));
    add(
        "keep's MAC in another subnet".into(),
        one(mapping(
            "LAN",
            LAN,
            "vm1",
            Some("192.0.2.10"),
            Some("52:54:00:00:00:50"),
        )),
    );
    add(
        "drop keep: DMZ has no range".into(),
        Change {
            write: vec![],
            drop_keep: true,
        },
    );
    add(
        "drop keep, add another to DMZ".into(),
        Change {
            write: vec![mapping(
                "DMZ",
                "198.51.100.0/24",
                "vm3",
                Some("198.51.100.51"),
                Some("52:54:00:00:00:51"),
            )],
            drop_keep: true,
        },
    );
    add(
        "outside LAB's subnet".into(),
        one(mapping(
            "LAB",
            "203.0.113.0/24",
            "vm1",
            Some("203.0.114.1"),
            Some("52:54:00:00:00:01"),
        )),
    );
    add(
        "keep changes its MAC".into(),
        one(mapping(
            "DMZ",
            "198.51.100.0/24",
            "keep",
            Some("198.51.100.50"),
            Some("52:54:00:00:00:59"),
        )),
    );
    out
}

#[test]
fn every_edge_value_agrees() {
    let routers = routers();
    let edits = edits();
    let mut report = Vec::new();
    for (name, c) in &edits {
        if let Some(d) = disagreement(&routers, c) {
            report.push(format!("[{name}]\n{d}"));
        }
    }
    assert!(
        report.is_empty(),
        "{} of {} changes disagree:\n{}",
        report.len(),
        edits.len(),
        report.join("\n")
    );
}

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    select(pool).prop_map(str::to_owned)
}

fn mostly(
    valid: &'static [&'static str],
    all: &'static [&'static str],
) -> impl Strategy<Value = String> {
    prop_oneof![8 => pick(valid), 1 => pick(all)]
}

fn random_mapping() -> impl Strategy<Value = StaticMapping> {
    (
        mostly(&["LAN", "DMZ", "LAB"], NETWORKS),
        mostly(
            &["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"],
            SUBNETS,
        ),
        mostly(&["vm1", "vm2", "web.lab"], NAMES),
        proptest::option::weighted(
            0.9,
            mostly(
                &[
                    "192.0.2.10",
                    "192.0.2.11",
                    "198.51.100.50",
                    "198.51.100.51",
                    "203.0.113.7",
                ],
                IPS,
            ),
        ),
        proptest::option::weighted(
            0.9,
            mostly(
                &[
                    "52:54:00:00:00:01",
                    "52:54:00:00:00:02",
                    "52:54:00:00:00:50",
                ],
                MACS,
            ),
        ),
        proptest::option::weighted(0.1, mostly(&["vmnet:ns/vm1"], DESCRIPTIONS)),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(net, sub, name, ip, mac, description, disabled)| {
            let mut m = StaticMapping::new(&MappingKey::new(net, sub, name));
            m.ip_address = ip;
            m.mac = mac;
            m.description = description;
            m.disabled = disabled;
            m
        })
}

fn change() -> impl Strategy<Value = Change> {
    (
        proptest::collection::vec(random_mapping(), 0..5),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(write, drop_keep)| Change { write, drop_keep })
}

#[test]
fn random_changes_agree() {
    let routers = routers();
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&change(), |c| match disagreement(&routers, &c) {
        None => Ok(()),
        Some(d) => Err(TestCaseError::fail(d)),
    });
    if let Err(e) = result {
        panic!("client and vyos-sim disagree:\n{e}");
    }
}

#[test]
fn random_changes_are_a_mix_of_valid_and_invalid() {
    let mut runner = TestRunner::deterministic();
    let routers = routers();
    let mut verdicts: BTreeMap<(bool, bool), usize> = BTreeMap::new();
    let strategy = change();
    for _ in 0..500 {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        let ok: Vec<bool> = routers
            .iter()
            .map(|(v, node, server)| {
                let ops = dhcp::diff_mappings(&server.mappings, &desired(server, &c), schema(*v));
                sim_commit(node, &ops, *v).is_ok()
            })
            .collect();
        *verdicts.entry((ok[0], ok[1])).or_default() += 1;
    }
    for v in 0..2 {
        let accepted: usize = verdicts
            .iter()
            .filter(|(k, _)| if v == 0 { k.0 } else { k.1 })
            .map(|(_, n)| n)
            .sum();
        assert!(
            (50..=450).contains(&accepted),
            "{accepted} of 500 changes commit on version {v}: {verdicts:?}"
        );
    }
}
