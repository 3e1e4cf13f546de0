//! Differential test: the client's pre-commit validation accepts a NAT rule exactly when
//! vyos-sim's commit of that rule's config ops succeeds, on VyOS 1.4 and 1.5
//! (`nat::validate_for`, and `nat::validate` exactly when both commit); the same for
//! network-groups (`nat::validate_network_group` against `render_network_group`'s ops).
//!
//! Both sides follow vyos-1x (sagitta for 1.4, current for 1.5): the client in
//! `nat/validate.rs`, the simulator in its schema and commit checks. When they disagree,
//! one of them has drifted from VyOS; the failure names the rule, the client's verdict and
//! the simulator's error text, and the VyOS source settles which side to fix.
//!
//! The simulator runs in process (`vyos_sim::check_commit`, no HTTP), on a config that
//! already holds the firewall groups the generated rules may name: group existence is
//! router state, which the client does not check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use proptest::collection::{btree_map, btree_set};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use vyos_client::nat::{
    self, ConfigOp, NatKind, NatRule, NetworkGroup, OpKind, Protocol, SchemaVersion,
};
use vyos_sim::{Node, Version};

const VERSIONS: [Version; 2] = [Version::V1_4, Version::V1_5];

/// The groups every generated rule may name, as an admin would have set them up.
fn base(version: Version) -> Node {
    let set = |p: &str| p.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let paths = [
        set("firewall group address-group A address 192.0.2.1"),
        set("firewall group domain-group D address example.com"),
        set("firewall group network-group N network 192.0.2.0/24"),
        set("firewall group port-group P port 80"),
        set("firewall group interface-group IG interface eth0"),
    ];
    vyos_sim::check_commit(
        &Node::default(),
        paths.iter().map(|p| ("set", p.as_slice(), None)),
        version,
    )
    .unwrap_or_else(|e| panic!("base config on {version:?}: {e}"))
}

fn op_name(op: &ConfigOp) -> &'static str {
    match op.op {
        OpKind::Set => "set",
        OpKind::Delete => "delete",
    }
}

/// The simulator's verdict on committing `ops` on top of `base`.
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

fn client_rule(rule: &NatRule, version: Version) -> Result<(), Vec<String>> {
    nat::validate_for(rule, schema(version))
        .map_err(|es| es.iter().map(ToString::to_string).collect())
}

fn verdict<E>(r: &Result<(), E>, yes: &'static str, no: &'static str) -> &'static str {
    if r.is_ok() { yes } else { no }
}

/// `None` when client and simulator agree on `rule`, else the report of the disagreement.
fn disagreement(bases: &[(Version, Node)], rule: &NatRule) -> Option<String> {
    let ops = nat::render_rule(rule);
    let mut out = String::new();
    let mut all_commit = true;
    for (version, base) in bases {
        let client = client_rule(rule, *version);
        let sim = sim_commit(base, &ops, *version);
        all_commit &= sim.is_ok();
        if client.is_ok() != sim.is_ok() {
            let _ = writeln!(
                out,
                "VyOS {version:?}: client {} but vyos-sim {}\n  client: {client:?}\n  vyos-sim: {}",
                verdict(&client, "accepts", "refuses"),
                verdict(&sim, "commits", "refuses"),
                sim.err()
                    .map_or("(committed)".to_owned(), |e| format!("{e:?}")),
            );
        }
    }
    // `validate` is for callers that do not know the version: Ok exactly when both commit.
    let both = nat::validate(rule);
    if out.is_empty() && both.is_ok() != all_commit {
        let _ = writeln!(
            out,
            "validate() {} but the versions {}: {both:?}",
            verdict(&both, "accepts", "refuses"),
            if all_commit {
                "both commit"
            } else {
                "do not both commit"
            },
        );
    }
    if out.is_empty() {
        return None;
    }
    let cli: Vec<String> = ops.iter().map(ToString::to_string).collect();
    Some(format!("rule:\n  {}\n{out}", cli.join("\n  ")))
}

fn bases() -> Vec<(Version, Node)> {
    VERSIONS.iter().map(|v| (*v, base(*v))).collect()
}

// Values near the edges of what VyOS accepts, per field.

const INTERFACES: &[&str] = &[
    "eth0",
    "eth1.10",
    "eth*",
    "!eth0",
    "!eth*",
    "ipoe0",
    "ipoe*",
    "!ipoe1",
    "bond0",
    "br0",
    "dum0",
    "en0",
    "enp3s0",
    "ersp0",
    "gnv0",
    "ifb0",
    "lan0",
    "l2tp0",
    "l2tpeth0",
    "macsec0",
    "peth0",
    "ppp0",
    "pppoe0",
    "pptp0",
    "sstp0",
    "sstpc0",
    "tun0",
    "veth0",
    "vti0",
    "vtun0",
    "vxlan0",
    "wg0",
    "wlan0",
    "wwan0",
    "lo",
    "!lo",
    "lo0",
    "eth",
    "ethernet-with-a-long-name",
    "blue",
    "!blue",
    "vrf-red_1",
    "lab.uplink",
    "a.b",
    "MGMT",
    "x",
    "1abc",
    "12345",
    "0",
    "hello",
    "trunk-to-hallo",
    "this-is-not-an-interface",
    "abcdefghijklmnop",
    "abcdefghijklmno",
    "*",
    "!",
    "",
    "eth0 x",
    "ETH0",
    "Lo",
];

const PROTOCOLS: &[&str] = &[
    "tcp",
    "udp",
    "tcp_udp",
    "all",
    "icmp",
    "gre",
    "esp",
    "hopopt",
    "ipv6-icmp",
    "icmpv6",
    "ax.25",
    "axx25",
    "mobility-header",
    "rohc",
    "!tcp",
    "!udp",
    "!!tcp",
    "!all",
    "0",
    "6",
    "255",
    "256",
    "007",
    "00",
    "!6",
    "99",
    "!99",
    "tcpp",
    "tcp-x",
    "TCP",
    "+7",
    "-0",
    "ip",
    "ip-x",
    " tcp",
    "",
];

const PORTS: &[&str] = &[
    "1",
    "22",
    "443",
    "65535",
    "0",
    "65536",
    "080",
    "0000080",
    "00000",
    "99999",
    "100000",
    "80-90",
    "90-80",
    "80-80",
    "1-65535",
    "0-10",
    "65535-65536",
    "080-090",
    "000080-90",
    "!22",
    "!!22",
    "!80-90",
    "80,443",
    "80,,443",
    "80,",
    ",80",
    "!22,!23",
    "ssh",
    "http",
    "https",
    "www",
    "domain",
    "submission",
    "ftp",
    "ntp",
    "nosuch",
    "Remote",
    "SSH",
    "http,ssh,1000-2000",
    "!ssh",
    "-5",
    "5-",
    "1-2-3",
    "a-b",
    " 80",
    "80 ",
    "",
];

const TRANSLATION_PORTS: &[&str] = &[
    "1",
    "22",
    "65535",
    "0",
    "65536",
    "080",
    "0000080",
    "8000-8010",
    "8010-8000",
    "80-80",
    "0-10",
    "80,443",
    "!80",
    "ssh",
    "http",
    "www",
    "nosuch",
    "-5",
    "",
];

const ADDRESSES: &[&str] = &[
    "10.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "10.0.0.01",
    "10.0.0.256",
    "1.2.3",
    "1.2.3.4.5",
    "a.b.c.d",
    "10.0.0.0/24",
    "10.0.0.5/24",
    "10.0.0.1/32",
    "0.0.0.0/0",
    "10.0.0.0/33",
    "10.0.0.0/08",
    "10.0.0.0/",
    "10.0.0.1-10.0.0.9",
    "10.0.0.9-10.0.0.1",
    "10.0.0.1-10.0.0.1",
    "10.0.0.250-10.0.1.3",
    "10.0.0.1-10.0.0.2-10.0.0.3",
    "10.0.0.1-",
    "10.0.0.0/24-10.0.1.0",
    "!10.0.0.1",
    "!!10.0.0.1",
    "!10.0.0.0/24",
    "!10.0.0.5/24",
    "!10.0.0.1-10.0.0.9",
    "!10.0.0.1-10.0.0.1",
    "10.0.0.1 ",
    "masquerade",
    "",
];

const TRANSLATION_ADDRESSES: &[&str] = &[
    "10.0.0.5",
    "10.0.0.05",
    "10.0.0.0/24",
    "10.0.0.5/24",
    "10.0.0.5-10.0.0.9",
    "10.0.0.9-10.0.0.5",
    "10.0.0.5-10.0.0.5",
    "!10.0.0.5",
    "masquerade",
    "Masquerade",
    "",
];

const DESCRIPTIONS: &[&str] = &[
    "vmnet:ns/web",
    "",
    "it's",
    "say \"hi\"",
    "line\nbreak",
    "tab\there",
    "ümlaut and emoji 🎉",
    "*",
    "semi;colon & $dollar `tick`",
];

const FQDNS: &[&str] = &[
    "example.com",
    "a",
    "a-",
    "-a",
    "a..b",
    "a_b",
    "_a",
    "1.2.3.4",
    "ex ample.com",
    "xn--bcher-kva.example",
    "",
];

const WEIGHTS: &[&str] = &[
    "1", "50", "100", "0", "101", "050", "+5", "10-20", "1.0", "-5", "",
];

const BACKENDS: &[&str] = &[
    "10.0.0.6",
    "10.0.0.7",
    "10.0.0.06",
    "10.0.0.256",
    "10.0.0.0/24",
];

const HASHES: &[&str] = &[
    "source-address",
    "destination-address",
    "source-port",
    "destination-port",
    "random",
    "bogus",
];

/// A long description: `n` times `s`.
fn long(s: &str, n: usize) -> String {
    s.repeat(n)
}

/// A rule VyOS takes as it is, of either kind: the base every single-field edit starts from.
fn valid(kind: NatKind) -> NatRule {
    let mut r = NatRule::new(kind, 100);
    r.description = Some("vmnet:ns/web".into());
    r.protocol = Some(Protocol::Tcp);
    match kind {
        NatKind::Destination => {
            r.inbound_interface.name = Some("eth0".into());
            r.destination.port = Some("443".into());
            r.translation.address = Some("10.0.0.5".into());
            r.translation.port = Some("8443".into());
        }
        NatKind::Source => {
            r.outbound_interface.name = Some("eth0".into());
            r.source.address = Some("10.0.0.0/24".into());
            r.translation.address = Some("masquerade".into());
        }
    }
    r
}

type Edit = Box<dyn Fn(&mut NatRule)>;

/// Every single-field edit of the valid rule, drawn from the tables above.
fn edits() -> Vec<(String, Edit)> {
    let mut out: Vec<(String, Edit)> = Vec::new();
    let mut add = |name: String, e: Edit| out.push((name, e));
    for v in INTERFACES {
        let v = (*v).to_owned();
        add(
            format!("interface name {v:?}"),
            Box::new(move |r| match r.kind {
                NatKind::Destination => r.inbound_interface.name = Some(v.clone()),
                NatKind::Source => r.outbound_interface.name = Some(v.clone()),
            }),
        );
    }
    for s in PROTOCOLS {
        let v = (*s).to_owned();
        add(
            format!("protocol {v:?}"),
            Box::new(move |r| r.protocol = Some(Protocol::from_vyos(&v))),
        );
        let v = (*s).to_owned();
        add(
            format!("protocol {v:?}, no ports"),
            Box::new(move |r| {
                r.protocol = Some(Protocol::from_vyos(&v));
                r.destination.port = None;
                r.translation.port = None;
            }),
        );
    }
    for v in PORTS {
        for side in ["source", "destination"] {
            let v = (*v).to_owned();
            add(
                format!("{side} port {v:?}"),
                Box::new(move |r| {
                    let m = if side == "source" {
                        &mut r.source
                    } else {
                        &mut r.destination
                    };
                    m.port = Some(v.clone());
                }),
            );
        }
    }
    for s in TRANSLATION_PORTS {
        let v = (*s).to_owned();
        add(
            format!("translation port {v:?}"),
            Box::new(move |r| r.translation.port = Some(v.clone())),
        );
        let v = (*s).to_owned();
        add(
            format!("redirect port {v:?}"),
            Box::new(move |r| {
                r.translation.address = None;
                r.translation.port = None;
                r.translation.redirect_port = Some(v.clone());
            }),
        );
    }
    for v in ADDRESSES {
        for side in ["source", "destination"] {
            let v = (*v).to_owned();
            add(
                format!("{side} address {v:?}"),
                Box::new(move |r| {
                    let m = if side == "source" {
                        &mut r.source
                    } else {
                        &mut r.destination
                    };
                    m.address = Some(v.clone());
                }),
            );
        }
    }
    for v in TRANSLATION_ADDRESSES {
        let v = (*v).to_owned();
        add(
            format!("translation address {v:?}"),
            Box::new(move |r| r.translation.address = Some(v.clone())),
        );
    }
    let descriptions = DESCRIPTIONS.iter().map(|s| (*s).to_owned()).chain([
        long("x", 255),
        long("x", 256),
        long("é", 127),
        long("é", 128),
        long("é", 200),
    ]);
    for v in descriptions {
        add(
            format!("description {v:?}"),
            Box::new(move |r| r.description = Some(v.clone())),
        );
    }
    for v in FQDNS.iter().map(|s| (*s).to_owned()).chain([long("a", 64)]) {
        for side in ["source", "destination"] {
            let v = v.clone();
            add(
                format!("{side} fqdn {v:?}"),
                Box::new(move |r| {
                    let m = if side == "source" {
                        &mut r.source
                    } else {
                        &mut r.destination
                    };
                    m.address = None;
                    m.fqdn = Some(v.clone());
                }),
            );
        }
    }
    for w in std::iter::once(None).chain(WEIGHTS.iter().map(|w| Some((*w).to_owned()))) {
        for b in BACKENDS {
            let (b, w2) = ((*b).to_owned(), w.clone());
            add(
                format!("backend {b:?} weight {w2:?}"),
                Box::new(move |r| {
                    r.load_balance.backends.insert(b.clone(), w2.clone());
                }),
            );
        }
    }
    for h in HASHES {
        for proto in ["tcp", "udp", "tcp_udp"] {
            let h = (*h).to_owned();
            add(
                format!("hash {h:?} with {proto}"),
                Box::new(move |r| {
                    r.protocol = Some(Protocol::from_vyos(proto));
                    r.load_balance.hash.insert(h.clone());
                }),
            );
        }
    }
    for v in ["broadcast", "host", "multicast", "other", "bogus", ""] {
        add(
            format!("packet-type {v:?}"),
            Box::new(move |r| r.packet_type = Some(v.into())),
        );
    }
    for v in ["persistent", "random", "bogus"] {
        add(
            format!("address-mapping {v:?}"),
            Box::new(move |r| r.translation.address_mapping = Some(v.into())),
        );
        add(
            format!("port-mapping {v:?}"),
            Box::new(move |r| r.translation.port_mapping = Some(v.into())),
        );
    }
    for n in [0, 1, 999_999, 1_000_000] {
        add(format!("number {n}"), Box::new(move |r| r.number = n));
    }
    add(
        "foreign interface".into(),
        Box::new(|r| match r.kind {
            NatKind::Destination => r.outbound_interface.name = Some("eth1".into()),
            NatKind::Source => r.inbound_interface.name = Some("eth1".into()),
        }),
    );
    add(
        "interface name and group".into(),
        Box::new(|r| match r.kind {
            NatKind::Destination => r.inbound_interface.group = Some("IG".into()),
            NatKind::Source => r.outbound_interface.group = Some("IG".into()),
        }),
    );
    for g in ["IG", "!IG"] {
        add(
            format!("interface group {g:?}"),
            Box::new(move |r| {
                for m in [&mut r.inbound_interface, &mut r.outbound_interface] {
                    if m.name.take().is_some() {
                        m.group = Some(g.into());
                    }
                }
            }),
        );
    }
    add(
        "no translation".into(),
        Box::new(|r| r.translation = Default::default()),
    );
    add(
        "exclude, no translation".into(),
        Box::new(|r| {
            r.translation = Default::default();
            r.exclude = true;
        }),
    );
    add(
        "disabled, no translation".into(),
        Box::new(|r| {
            r.translation = Default::default();
            r.disabled = true;
        }),
    );
    out
}

/// Every single-field edge value, each on a rule that is otherwise valid, both kinds, both
/// versions: all disagreements are listed at once.
#[test]
fn every_edge_value_agrees() {
    let bases = bases();
    let mut report = Vec::new();
    let edits = edits();
    for kind in [NatKind::Destination, NatKind::Source] {
        for (name, edit) in &edits {
            let mut r = valid(kind);
            edit(&mut r);
            if let Some(d) = disagreement(&bases, &r) {
                report.push(format!("[{kind} rule, {name}]\n{d}"));
            }
        }
    }
    assert!(
        report.is_empty(),
        "{} of {} edge cases disagree:\n\n{}",
        report.len(),
        edits.len() * 2,
        report.join("\n")
    );
}

// Random rules: several edge values at once, of every field.

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    select(pool).prop_map(str::to_owned)
}

/// Mostly a value from `valid`, else one from the edge table `all`.
fn mostly(
    valid: &'static [&'static str],
    all: &'static [&'static str],
) -> impl Strategy<Value = String> {
    prop_oneof![6 => pick(valid), 1 => pick(all)]
}

/// `None` half the time, else [`mostly`] a valid value.
fn maybe(
    valid: &'static [&'static str],
    all: &'static [&'static str],
) -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(0.5, mostly(valid, all))
}

/// `None` most of the time: fields that make a rule invalid more often than not.
fn rarely(pool: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(0.04, pick(pool))
}

fn side() -> impl Strategy<Value = nat::AddressMatch> {
    (
        maybe(
            &[
                "10.0.0.1",
                "10.0.0.0/24",
                "10.0.0.1-10.0.0.9",
                "!10.0.0.0/24",
            ],
            ADDRESSES,
        ),
        maybe(&["22", "443", "80,443", "1024-65535", "ssh", "!22"], PORTS),
        rarely(FQDNS),
        rarely(&["A", "!A"]),
        rarely(&["N", "!N"]),
        rarely(&["D"]),
        rarely(&["M", "any-mac-group"]),
        rarely(&["P", "!P"]),
    )
        .prop_map(|(address, port, fqdn, ag, ng, dg, mg, pg)| {
            let mut m = nat::AddressMatch {
                address,
                port,
                fqdn,
                ..Default::default()
            };
            m.group.address_group = ag;
            m.group.network_group = ng;
            m.group.domain_group = dg;
            m.group.mac_group = mg;
            m.group.port_group = pg;
            m
        })
}

fn translation() -> impl Strategy<Value = nat::Translation> {
    (
        maybe(
            &["10.0.0.5", "10.0.0.0/24", "10.0.0.5-10.0.0.9", "masquerade"],
            TRANSLATION_ADDRESSES,
        ),
        maybe(&["22", "8000-8010", "http"], TRANSLATION_PORTS),
        rarely(TRANSLATION_PORTS),
        rarely(&["persistent", "random", "bogus"]),
        rarely(&["random", "none", "bogus"]),
    )
        .prop_map(|(address, port, redirect_port, am, pm)| nat::Translation {
            address,
            port,
            redirect_port,
            address_mapping: am,
            port_mapping: pm,
        })
}

fn load_balance() -> impl Strategy<Value = nat::LoadBalance> {
    (
        proptest::option::weighted(0.15, btree_set(pick(HASHES), 1..3)),
        proptest::option::weighted(
            0.15,
            btree_map(
                mostly(&["10.0.0.6", "10.0.0.7"], BACKENDS),
                proptest::option::weighted(0.9, mostly(&["50", "100"], WEIGHTS)),
                1..3,
            ),
        ),
    )
        .prop_map(|(hash, backends)| nat::LoadBalance {
            hash: hash.unwrap_or_default(),
            backends: backends.unwrap_or_default(),
        })
}

fn description() -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(
        0.5,
        prop_oneof![
            16 => Just("vmnet:ns/web".to_owned()),
            2 => pick(DESCRIPTIONS),
            1 => (250usize..260).prop_map(|n| long("x", n)),
            1 => (125usize..130).prop_map(|n| long("é", n)),
        ],
    )
}

fn rule() -> impl Strategy<Value = NatRule> {
    let head = (
        prop_oneof![Just(NatKind::Destination), Just(NatKind::Source)],
        prop_oneof![30 => Just(100u32), 1 => Just(0), 1 => Just(999_999), 1 => Just(1_000_000)],
        description(),
        any::<(bool, bool, bool)>(),
        rarely(&["broadcast", "host", "multicast", "other", "bogus"]),
        proptest::option::weighted(0.8, mostly(&["tcp", "udp", "tcp_udp"], PROTOCOLS)),
        maybe(
            &["eth0", "eth1.10", "eth*", "!eth0", "ipoe0", "lo", "blue"],
            INTERFACES,
        ),
        rarely(&["IG", "!IG"]),
        proptest::option::weighted(0.03, pick(INTERFACES)),
    );
    (head, side(), side(), translation(), load_balance()).prop_map(
        |(
            (kind, number, desc, (dis, exc, log), pt, proto, name, group, foreign),
            src,
            dst,
            t,
            lb,
        )| {
            let mut r = NatRule::new(kind, number);
            r.description = desc;
            r.disabled = dis;
            r.exclude = exc;
            r.log = log;
            r.packet_type = pt;
            r.protocol = proto.map(|p| Protocol::from_vyos(&p));
            let (own, other) = match kind {
                NatKind::Destination => (&mut r.inbound_interface, &mut r.outbound_interface),
                NatKind::Source => (&mut r.outbound_interface, &mut r.inbound_interface),
            };
            own.name = name;
            own.group = group;
            other.name = foreign;
            r.source = src;
            r.destination = dst;
            r.translation = t;
            r.load_balance = lb.into();
            r
        },
    )
}

/// Random rules, several edge values at a time; the shrunk counterexample is reported.
#[test]
fn random_rules_agree() {
    let bases = bases();
    let mut runner = TestRunner::new(Config {
        cases: 6000,
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

/// How many generated rules each side accepts: the generator must make both kinds of
/// verdict often, or the property says little.
#[test]
fn random_rules_are_a_mix_of_valid_and_invalid() {
    let mut runner = TestRunner::deterministic();
    let bases = bases();
    let mut verdicts: BTreeMap<bool, usize> = BTreeMap::new();
    let strategy = rule();
    for _ in 0..500 {
        let r = strategy.new_tree(&mut runner).unwrap().current();
        let ok = sim_commit(&bases[1].1, &nat::render_rule(&r), Version::V1_5).is_ok();
        *verdicts.entry(ok).or_default() += 1;
    }
    println!("of 500 generated rules, committed on 1.5: {verdicts:?}");
    let accepted = verdicts.get(&true).copied().unwrap_or_default();
    assert!(
        (50..=450).contains(&accepted),
        "{accepted} of 500 generated rules commit: {verdicts:?}"
    );
}

// Every service name and alias the simulator knows, and some it does not: in a port list
// (names and aliases) and as a translation port (names only).

#[test]
fn every_service_name_agrees() {
    let bases = bases();
    let mut words: Vec<&str> = vec!["nosuch", "Remote", "Protocol", "#", "SSH", "HTTP"];
    for (name, aliases) in vyos_sim::services::SERVICES {
        words.push(name);
        words.extend(aliases.iter());
    }
    let mut report = Vec::new();
    for w in words {
        let mut r = valid(NatKind::Destination);
        r.destination.port = Some(w.to_owned());
        r.translation.port = None;
        let mut t = valid(NatKind::Destination);
        t.translation.port = Some(w.to_owned());
        for rule in [r, t] {
            if let Some(d) = disagreement(&bases, &rule) {
                report.push(d);
            }
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

// Network-groups: the client's `validate_network_group` against the simulator's commit of
// `render_network_group`'s ops.

const GROUP_NAMES: &[&str] = &[
    "VMNET-100",
    "N2",
    "a",
    "-lead",
    "_lead",
    "with.dot",
    "with_under",
    "plus+sign",
    ".dot-first",
    "!neg",
    "sp ace",
    "tab\tname",
    "1digit-first",
    "ümlaut",
    "quo'te",
    "a-very-long-group-name-of-forty-characters",
    "",
];

const NETWORKS: &[&str] = &[
    "192.0.2.0/24",
    "198.51.100.7/32",
    "0.0.0.0/0",
    "10.0.0.0/8",
    "192.0.2.1",
    "192.0.2.1/24",
    "192.0.2.0/33",
    "192.0.2.0/024",
    "192.0.2.0/",
    "192.0.2.0-192.0.2.9",
    "!192.0.2.0/24",
    "2001:db8::/32",
    "",
];

fn group_disagreement(bases: &[(Version, Node)], name: &str, g: &NetworkGroup) -> Option<String> {
    let ops = nat::render_network_group(name, g);
    let client = nat::validate_network_group(name, g);
    let mut out = String::new();
    for (version, base) in bases {
        let sim = sim_commit(base, &ops, *version);
        if client.is_ok() != sim.is_ok() {
            let _ = writeln!(
                out,
                "VyOS {version:?}: client {} but vyos-sim {}\n  client: {:?}\n  vyos-sim: {}",
                verdict(&client, "accepts", "refuses"),
                verdict(&sim, "commits", "refuses"),
                client
                    .as_ref()
                    .map_err(|es| es.iter().map(ToString::to_string).collect::<Vec<_>>()),
                sim.err()
                    .map_or("(committed)".to_owned(), |e| format!("{e:?}")),
            );
        }
    }
    if out.is_empty() {
        return None;
    }
    let cli: Vec<String> = ops.iter().map(ToString::to_string).collect();
    Some(format!("group:\n  {}\n{out}", cli.join("\n  ")))
}

fn group(description: Option<String>, networks: &[&str]) -> NetworkGroup {
    NetworkGroup {
        description,
        networks: networks.iter().map(|n| (*n).to_owned()).collect(),
    }
}

#[test]
fn every_network_group_edge_agrees() {
    let bases = bases();
    let mut report = Vec::new();
    let ok_net = ["192.0.2.0/24"];
    for name in GROUP_NAMES {
        if let Some(d) = group_disagreement(&bases, name, &group(None, &ok_net)) {
            report.push(d);
        }
    }
    for n in NETWORKS {
        if let Some(d) = group_disagreement(&bases, "G", &group(None, &[n])) {
            report.push(d);
        }
    }
    let descriptions = DESCRIPTIONS.iter().map(|s| (*s).to_owned()).chain([
        long("x", 255),
        long("x", 256),
        long("é", 127),
        long("é", 128),
    ]);
    for d in descriptions {
        if let Some(d) = group_disagreement(&bases, "G", &group(Some(d), &ok_net)) {
            report.push(d);
        }
    }
    for g in [
        group(None, &[]),
        group(Some("only a description".into()), &[]),
    ] {
        if let Some(d) = group_disagreement(&bases, "G", &g) {
            report.push(d);
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn random_network_groups_agree() {
    let bases = bases();
    let strategy = (
        mostly(&["VMNET-100", "N2", "with.dot"], GROUP_NAMES),
        proptest::option::weighted(0.5, mostly(&["vmnet:ns/web"], DESCRIPTIONS)),
        btree_set(
            mostly(&["192.0.2.0/24", "198.51.100.7/32", "10.0.0.0/8"], NETWORKS),
            0..4,
        ),
    );
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |(name, description, networks)| {
        let g = NetworkGroup {
            description,
            networks,
        };
        match group_disagreement(&bases, &name, &g) {
            None => Ok(()),
            Some(d) => Err(TestCaseError::fail(d)),
        }
    });
    if let Err(e) = result {
        panic!("client and vyos-sim disagree:\n{e}");
    }
}
