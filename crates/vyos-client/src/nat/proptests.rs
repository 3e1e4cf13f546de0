//! Properties: parse/render round trips, and `apply_ops(a, diff(a, b)) == b`.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;

use super::model::LeafValue;
use super::*;

fn opt(pool: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    option::of(proptest::sample::select(pool).prop_map(str::to_owned))
}

fn protocol() -> impl Strategy<Value = Option<Protocol>> {
    option::of(
        proptest::sample::select(&["all", "tcp", "udp", "tcp_udp", "icmp", "!tcp", "6"][..])
            .prop_map(Protocol::from_vyos),
    )
}

fn side() -> impl Strategy<Value = AddressMatch> {
    (
        opt(&["203.0.113.10", "!198.51.100.0/24", "10.0.0.1-10.0.0.9"]),
        opt(&["443", "80,443", "1024-65535", "ssh"]),
        opt(&["example.com"]),
        opt(&["AG"]),
        opt(&["NG"]),
        opt(&["PG", "!PG2"]),
    )
        .prop_map(|(address, port, fqdn, ag, ng, pg)| AddressMatch {
            address,
            port,
            fqdn,
            group: GroupMatch {
                address_group: ag,
                network_group: ng,
                port_group: pg,
                ..GroupMatch::default()
            }
            .into(),
        })
}

fn extra() -> impl Strategy<Value = BTreeMap<Vec<String>, LeafValue>> {
    const PATHS: &[&[&str]] = &[&["future", "leaf"], &["geo", "country-code"], &["x"]];
    let path = proptest::sample::select(PATHS)
        .prop_map(|p| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    let value = prop_oneof![
        Just(LeafValue::Flag),
        proptest::sample::select(&["a", "b"][..]).prop_map(|s| LeafValue::One(s.to_owned())),
        btree_set(proptest::sample::select(&["de", "fr", "nl"][..]), 2..=3)
            .prop_map(|s| LeafValue::Many(s.into_iter().map(str::to_owned).collect())),
    ];
    btree_map(path, value, 0..2)
}

fn rule(kind: NatKind) -> impl Strategy<Value = NatRule> {
    let head = (
        opt(&["vmnet:a/b", "vmnet:c/d port", "hand made"]),
        any::<(bool, bool, bool)>(),
        opt(&["host", "broadcast"]),
        protocol(),
        opt(&["eth0", "eth1", "eth*"]),
        opt(&["WAN"]),
    );
    let translation = (
        opt(&["10.0.0.5", "10.0.0.0/24", "10.0.0.5-10.0.0.9"]),
        opt(&["22", "8000-8010", "http"]),
        opt(&["8080"]),
        opt(&["persistent", "random"]),
        opt(&["random", "none"]),
    )
        .prop_map(|(address, port, redirect_port, am, pm)| Translation {
            address,
            port,
            redirect_port,
            address_mapping: am,
            port_mapping: pm,
        });
    let lb = (
        btree_set(
            proptest::sample::select(&["source-address", "destination-port", "random"][..])
                .prop_map(str::to_owned),
            0..3,
        ),
        btree_map(
            proptest::sample::select(&["10.0.0.6", "10.0.0.7"][..]).prop_map(str::to_owned),
            opt(&["50", "100"]),
            0..3,
        ),
    )
        .prop_map(|(hash, backends)| LoadBalance { hash, backends });
    (head, side(), side(), translation, lb, extra()).prop_map(
        move |((desc, (dis, exc, log), pt, proto, ifname, ifgroup), src, dst, t, lb, extra)| {
            let mut r = NatRule::new(kind, 1);
            r.description = desc;
            r.disabled = dis;
            r.exclude = exc;
            r.log = log;
            r.packet_type = pt;
            r.protocol = proto;
            let iface = InterfaceMatch {
                name: ifname,
                group: ifgroup,
            };
            match kind {
                NatKind::Destination => r.inbound_interface = iface,
                NatKind::Source => {
                    r.outbound_interface = iface;
                }
            }
            r.source = src;
            r.destination = dst;
            r.translation = t;
            if kind == NatKind::Source {
                r.translation.redirect_port = None;
            }
            r.load_balance = lb.into();
            r.extra = extra;
            r
        },
    )
}

fn rules(kind: NatKind) -> impl Strategy<Value = BTreeMap<u32, NatRule>> {
    vec((1u32..12, rule(kind)), 0..6).prop_map(|items| {
        items
            .into_iter()
            .map(|(n, mut r)| {
                r.number = n;
                (n, r)
            })
            .collect()
    })
}

fn kind() -> impl Strategy<Value = NatKind> {
    prop_oneof![Just(NatKind::Destination), Just(NatKind::Source)]
}

fn normalized(rules: &BTreeMap<u32, NatRule>) -> BTreeMap<u32, NatRule> {
    rules.iter().map(|(n, r)| (*n, r.normalized())).collect()
}

proptest! {
    #[test]
    fn json_round_trip((k, rs) in kind().prop_flat_map(|k| (Just(k), rules(k)))) {
        let json = rules_to_json(&rs);
        let back = parse_rules(k, &json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &normalized(&rs));
        prop_assert_eq!(rules_to_json(&back), json);
    }

    #[test]
    fn render_then_apply_round_trip((k, rs) in kind().prop_flat_map(|k| (Just(k), rules(k)))) {
        let ops = render_rules(&rs);
        let mut got = BTreeMap::new();
        apply_ops(k, &mut got, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&got, &normalized(&rs));
        // Every op serialises to the /configure command shape and back.
        for op in &ops {
            let v = serde_json::to_value(op).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: ConfigOp = serde_json::from_value(v).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, op);
        }
    }

    #[test]
    fn diff_then_apply_gives_target(
        (k, a, b) in kind().prop_flat_map(|k| (Just(k), rules(k), rules(k)))
    ) {
        let ops = diff(k, &a, &b);
        let mut got = a.clone();
        apply_ops(k, &mut got, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&got, &normalized(&b));
        // And a second diff finds nothing left to do.
        prop_assert!(diff(k, &got, &b).is_empty());
    }

    #[test]
    fn diff_sets_no_more_than_delete_and_recreate(
        (k, a, b) in kind().prop_flat_map(|k| (Just(k), rules(k), rules(k)))
    ) {
        // Sets are what costs on a router (validators run per set; deletes are
        // cheap): the diff never sets more than deleting and re-creating would.
        let ops = diff(k, &a, &b);
        let sets = ops.iter().filter(|o| o.op == OpKind::Set).count();
        prop_assert!(sets <= render_rules(&b).len());
        let rule_deletes = ops.iter().filter(|o| o.op == OpKind::Delete && o.path.len() == 4).count();
        prop_assert_eq!(rule_deletes, a.keys().filter(|n| !b.contains_key(n)).count());
        prop_assert!(diff(k, &a, &a).is_empty());
    }
}
