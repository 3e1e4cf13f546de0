//! Differential test: the client's checks of a forward-filter rule
//! (`firewall::validate_rule_for`) accept it exactly when vyos-sim commits the rule's ops, on
//! VyOS 1.4 and 1.5, and when both refuse, the simulator's text is one the client gave
//! (`firewall::validate_rule` is `Ok` exactly when both versions commit).
//!
//! Both sides follow vyos-1x (sagitta for 1.4, current for 1.5): the client in
//! `firewall/validate.rs`, the simulator in its schema and `verify_firewall.rs`. A failure
//! names the rule, both verdicts and both texts; the VyOS source settles which side to fix.
//! The simulator runs in process (`vyos_sim::check_commit`) on a config that holds the
//! firewall groups the rules may name: their existence is router state, which the client
//! does not check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use vyos_client::firewall::{self, ForwardRule};
use vyos_client::nat::{ConfigOp, OpKind, Protocol, RuleError, SchemaVersion};
use vyos_sim::{Node, Version};

const VERSIONS: [Version; 2] = [Version::V1_4, Version::V1_5];

fn base(version: Version) -> Node {
    let set = |p: &str| p.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let paths = [
        set("firewall group address-group A address 192.0.2.1"),
        set("firewall group domain-group D address example.com"),
        set("firewall group network-group N network 192.0.2.0/24"),
        set("firewall group port-group P port 80"),
        set("firewall ipv4 forward filter default-action drop"),
    ];
    vyos_sim::check_commit(
        &Node::default(),
        paths.iter().map(|p| ("set", p.as_slice(), None)),
        version,
    )
    .unwrap_or_else(|e| panic!("base config on {version:?}: {e}"))
}

fn bases() -> Vec<(Version, Node)> {
    VERSIONS.iter().map(|v| (*v, base(*v))).collect()
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

fn schema(version: Version) -> SchemaVersion {
    match version {
        Version::V1_4 => SchemaVersion::V1_4,
        Version::V1_5 => SchemaVersion::V1_5,
    }
}

fn texts(es: &[RuleError]) -> Vec<String> {
    es.iter().map(ToString::to_string).collect()
}

/// `None` when client and simulator agree on `rule`, else the report.
fn disagreement(bases: &[(Version, Node)], rule: &ForwardRule) -> Option<String> {
    let ops = firewall::render_rule(rule);
    let mut out = String::new();
    let mut all_commit = true;
    for (version, base) in bases {
        let client = firewall::validate_rule_for(rule, schema(*version));
        let sim = sim_commit(base, &ops, *version);
        all_commit &= sim.is_ok();
        let agree = match (&client, &sim) {
            (Ok(()), Ok(())) => true,
            (Err(es), Err(text)) => es.iter().any(|e| text.contains(&e.message)),
            _ => false,
        };
        if !agree {
            let _ = writeln!(
                out,
                "VyOS {version:?}:\n  client: {:?}\n  vyos-sim: {sim:?}",
                client.as_ref().map_err(|es| texts(es)),
            );
        }
    }
    let both = firewall::validate_rule(rule);
    if out.is_empty() && both.is_ok() != all_commit {
        let _ = writeln!(
            out,
            "validate_rule() says {both:?}, commits on both: {all_commit}"
        );
    }
    if out.is_empty() {
        return None;
    }
    let cli: Vec<String> = ops.iter().map(ToString::to_string).collect();
    Some(format!("rule:\n  {}\n{out}", cli.join("\n  ")))
}

const ACTIONS: &[&str] = &[
    "accept", "drop", "reject", "continue", "return", "queue", "jump", "offload", "synproxy",
    "allow", "ACCEPT", "",
];
const PROTOCOLS: &[&str] = &[
    "tcp",
    "udp",
    "tcp_udp",
    "all",
    "icmp",
    "ipv6-icmp",
    "gre",
    "!tcp",
    "6",
    "256",
    "tcpp",
    "",
];
const ADDRESSES: &[&str] = &[
    "10.0.0.5",
    "10.0.0.05",
    "10.0.0.0/24",
    "10.0.0.5/24",
    "10.0.0.1-10.0.0.9",
    "10.0.0.9-10.0.0.1",
    "10.0.0.1-10.0.0.1",
    "!198.51.100.0/24",
    "!!10.0.0.1",
    "1.2.3",
    "",
];
const PORTS: &[&str] = &[
    "22",
    "80,443",
    "1024-65535",
    "!22",
    "ssh",
    "www",
    "0",
    "65536",
    "90-80",
    "nosuch",
    "",
];
const STATES: &[&str] = &["established", "new", "related", "invalid", "NEW", ""];
const CONN_STATUS: &[&str] = &["destination", "source", "dnat", ""];
const DESCRIPTIONS: &[&str] = &["vmnet:ns/vm/ssh", "it's", "say \"hi\"", "line\nbreak", ""];
/// Network-group names: the base config has `N` (a missing one is router state).
const GROUPS: &[&str] = &["N", "!N", ""];

/// A rule VyOS takes: the base of every single-field edit.
fn valid() -> ForwardRule {
    let mut r = ForwardRule::new(100);
    r.action = Some("accept".into());
    r.protocol = Some(Protocol::Tcp);
    r.destination.address = Some("10.0.0.5".into());
    r.destination.port = Some("22".into());
    r
}

type Edit = Box<dyn Fn(&mut ForwardRule)>;

fn edits() -> Vec<(String, Edit)> {
    let mut out: Vec<(String, Edit)> = Vec::new();
    let mut add = |name: String, e: Edit| out.push((name, e));
    for a in ACTIONS {
        add(
            format!("action {a:?}"),
            Box::new(move |r| r.action = Some((*a).into())),
        );
    }
    add("no action".into(), Box::new(|r| r.action = None));
    for p in PROTOCOLS {
        add(
            format!("protocol {p:?}"),
            Box::new(move |r| r.protocol = Some(Protocol::from_vyos(p))),
        );
        add(
            format!("protocol {p:?}, no port"),
            Box::new(move |r| {
                r.protocol = Some(Protocol::from_vyos(p));
                r.destination.port = None;
            }),
        );
    }
    add("no protocol".into(), Box::new(|r| r.protocol = None));
    for a in ADDRESSES {
        add(
            format!("destination address {a:?}"),
            Box::new(move |r| r.destination.address = Some((*a).into())),
        );
        add(
            format!("source address {a:?}"),
            Box::new(move |r| r.source.address = Some((*a).into())),
        );
    }
    for p in PORTS {
        add(
            format!("destination port {p:?}"),
            Box::new(move |r| r.destination.port = Some((*p).into())),
        );
        add(
            format!("source port {p:?}"),
            Box::new(move |r| r.source.port = Some((*p).into())),
        );
    }
    for s in STATES {
        add(
            format!("state {s:?}"),
            Box::new(move |r| {
                r.state.insert((*s).into());
            }),
        );
    }
    for c in CONN_STATUS {
        add(
            format!("connection-status nat {c:?}"),
            Box::new(move |r| r.connection_status_nat = Some((*c).into())),
        );
    }
    for d in DESCRIPTIONS.iter().map(|s| (*s).to_owned()).chain([
        "x".repeat(255),
        "x".repeat(256),
        "é".repeat(128),
    ]) {
        add(
            format!("description {d:?}"),
            Box::new(move |r| r.description = Some(d.clone())),
        );
    }
    for g in GROUPS {
        add(
            format!("source network-group {g:?}"),
            Box::new(move |r| r.source.group.network_group = Some((*g).into())),
        );
        add(
            format!("destination network-group {g:?} beside the address"),
            Box::new(move |r| r.destination.group.network_group = Some((*g).into())),
        );
        add(
            format!("source network-group {g:?} and address-group A"),
            Box::new(move |r| {
                r.source.group.network_group = Some((*g).into());
                r.source.group.address_group = Some("A".into());
            }),
        );
    }
    add(
        "port-group and port".into(),
        Box::new(|r| r.destination.group.port_group = Some("P".into())),
    );
    add(
        "port-group, no protocol".into(),
        Box::new(|r| {
            r.destination.port = None;
            r.protocol = None;
            r.destination.group.port_group = Some("P".into());
        }),
    );
    add(
        "fqdn and address".into(),
        Box::new(|r| r.destination.fqdn = Some("example.com".into())),
    );
    add(
        "fqdn a_b".into(),
        Box::new(|r| {
            r.destination.address = None;
            r.destination.fqdn = Some("a_b".into());
        }),
    );
    add(
        "synproxy with state".into(),
        Box::new(|r| {
            r.action = Some("synproxy".into());
            r.state.insert("new".into());
        }),
    );
    add(
        "disabled without action".into(),
        Box::new(|r| {
            r.disabled = true;
            r.action = None;
        }),
    );
    add(
        "the accept-DNAT rule".into(),
        Box::new(|r| {
            *r = ForwardRule::new(20);
            r.action = Some("accept".into());
            r.connection_status_nat = Some("destination".into());
            r.description = Some("vmnet:dnat".into());
        }),
    );
    add(
        "an empty rule".into(),
        Box::new(|r| *r = ForwardRule::new(20)),
    );
    for n in [0, 1, 999_999, 1_000_000] {
        add(format!("number {n}"), Box::new(move |r| r.number = n));
    }
    out
}

#[test]
fn every_edge_value_agrees() {
    let bases = bases();
    let edits = edits();
    let mut report = Vec::new();
    for (name, edit) in &edits {
        let mut r = valid();
        edit(&mut r);
        if let Some(d) = disagreement(&bases, &r) {
            report.push(format!("[{name}]\n{d}"));
        }
    }
    assert!(
        report.is_empty(),
        "{} of {} edits disagree:\n{}",
        report.len(),
        edits.len(),
        report.join("\n")
    );
}

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    select(pool).prop_map(str::to_owned)
}

/// Mostly one of `valid`, else one of the edge table `all`.
fn mostly(
    valid: &'static [&'static str],
    all: &'static [&'static str],
) -> impl Strategy<Value = String> {
    prop_oneof![6 => pick(valid), 1 => pick(all)]
}

fn maybe(
    valid: &'static [&'static str],
    all: &'static [&'static str],
) -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(0.5, mostly(valid, all))
}

fn rarely(pool: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(0.06, pick(pool))
}

fn side() -> impl Strategy<Value = vyos_client::nat::AddressMatch> {
    (
        maybe(&["10.0.0.5", "10.0.0.0/24", "!198.51.100.0/24"], ADDRESSES),
        maybe(&["22", "80,443", "1024-65535"], PORTS),
        rarely(&["example.com", "a_b"]),
        rarely(GROUPS),
        rarely(&["A", "!A"]),
        rarely(&["P"]),
    )
        .prop_map(|(address, port, fqdn, ng, ag, pg)| {
            let mut m = vyos_client::nat::AddressMatch {
                address,
                port,
                fqdn,
                ..Default::default()
            };
            m.group.network_group = ng;
            m.group.address_group = ag;
            m.group.port_group = pg;
            m
        })
}

fn rule() -> impl Strategy<Value = ForwardRule> {
    (
        prop_oneof![30 => Just(100u32), 1 => Just(0), 1 => Just(1_000_000)],
        proptest::option::weighted(0.9, mostly(&["accept", "drop", "reject"], ACTIONS)),
        proptest::option::weighted(0.3, mostly(&["vmnet:ns/vm/ssh"], DESCRIPTIONS)),
        any::<(bool, bool)>(),
        proptest::option::weighted(0.7, mostly(&["tcp", "udp", "tcp_udp"], PROTOCOLS)),
        proptest::collection::btree_set(mostly(&["established", "new", "related"], STATES), 0..3),
        rarely(CONN_STATUS),
        side(),
        side(),
    )
        .prop_map(
            |(
                number,
                action,
                description,
                (disabled, log),
                proto,
                state,
                cs,
                source,
                destination,
            )| {
                let mut r = ForwardRule::new(number);
                r.action = action;
                r.description = description;
                r.disabled = disabled;
                r.log = log;
                r.protocol = proto.map(|p| Protocol::from_vyos(&p));
                r.state = state;
                r.connection_status_nat = cs;
                r.source = source;
                r.destination = destination;
                r
            },
        )
}

#[test]
fn random_rules_agree() {
    let bases = bases();
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&rule(), |r| match disagreement(&bases, &r) {
        None => Ok(()),
        Some(d) => Err(TestCaseError::fail(d)),
    });
    if let Err(e) = result {
        panic!("client and vyos-sim disagree:\n{e}");
    }
}

#[test]
fn random_rules_are_a_mix_of_valid_and_invalid() {
    let mut runner = TestRunner::deterministic();
    let bases = bases();
    let mut verdicts: BTreeMap<bool, usize> = BTreeMap::new();
    let strategy = rule();
    for _ in 0..500 {
        let r = strategy.new_tree(&mut runner).unwrap().current();
        let ok = sim_commit(&bases[1].1, &firewall::render_rule(&r), Version::V1_5).is_ok();
        *verdicts.entry(ok).or_default() += 1;
    }
    let accepted = verdicts.get(&true).copied().unwrap_or_default();
    assert!(
        (50..=450).contains(&accepted),
        "{accepted} of 500 generated rules commit: {verdicts:?}"
    );
}
