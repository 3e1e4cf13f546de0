//! Properties: parse/render round trips, and `apply_rule_ops(a, diff_rules(a, b)) == b`.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;

use super::*;
use crate::nat::{AddressMatch, ConfigOp, GroupMatch, LeafValue, OpKind, Protocol};

fn opt(pool: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    option::of(proptest::sample::select(pool).prop_map(str::to_owned))
}

fn side() -> impl Strategy<Value = AddressMatch> {
    (
        opt(&["10.0.0.5", "!198.51.100.0/24", "10.0.0.1-10.0.0.9"]),
        opt(&["22", "80,443", "1024-65535"]),
        opt(&["example.com"]),
        opt(&["N", "!N"]),
        opt(&["P"]),
    )
        .prop_map(|(address, port, fqdn, ng, pg)| AddressMatch {
            address,
            port,
            fqdn,
            group: GroupMatch {
                network_group: ng,
                port_group: pg,
                ..GroupMatch::default()
            }
            .into(),
        })
}

fn extra() -> impl Strategy<Value = BTreeMap<Vec<String>, LeafValue>> {
    const PATHS: &[&[&str]] = &[
        &["jump-target"],
        &["inbound-interface", "name"],
        &["x", "y"],
    ];
    let path = proptest::sample::select(PATHS)
        .prop_map(|p| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    let value = prop_oneof![
        Just(LeafValue::Flag),
        proptest::sample::select(&["a", "b"][..]).prop_map(|s| LeafValue::One(s.to_owned())),
        btree_set(proptest::sample::select(&["c", "d", "e"][..]), 2..=3)
            .prop_map(|s| LeafValue::Many(s.into_iter().map(str::to_owned).collect())),
    ];
    btree_map(path, value, 0..2)
}

fn rule() -> impl Strategy<Value = ForwardRule> {
    (
        opt(&["accept", "drop", "jump"]),
        opt(&["vmnet:a/b", "hand made"]),
        any::<(bool, bool)>(),
        option::of(
            proptest::sample::select(&["tcp", "udp", "tcp_udp", "all", "icmp"][..])
                .prop_map(Protocol::from_vyos),
        ),
        btree_set(
            proptest::sample::select(&["established", "new", "related"][..])
                .prop_map(str::to_owned),
            0..3,
        ),
        opt(&["destination", "source"]),
        side(),
        side(),
        extra(),
    )
        .prop_map(
            |(
                action,
                description,
                (disabled, log),
                protocol,
                state,
                cs,
                source,
                destination,
                extra,
            )| {
                ForwardRule {
                    number: 1,
                    action,
                    description,
                    disabled,
                    log,
                    protocol,
                    state,
                    connection_status_nat: cs,
                    source,
                    destination,
                    extra,
                }
            },
        )
}

fn rules() -> impl Strategy<Value = BTreeMap<u32, ForwardRule>> {
    vec((1u32..12, rule()), 0..6).prop_map(|items| {
        items
            .into_iter()
            .map(|(n, mut r)| {
                r.number = n;
                (n, r)
            })
            .collect()
    })
}

fn normalized(rules: &BTreeMap<u32, ForwardRule>) -> BTreeMap<u32, ForwardRule> {
    rules.iter().map(|(n, r)| (*n, r.normalized())).collect()
}

proptest! {
    #[test]
    fn json_round_trip(rs in rules(), default_drop in any::<bool>()) {
        let filter = ForwardFilter {
            default_action: default_drop.then(|| "drop".to_owned()),
            rules: rs.clone(),
            ..ForwardFilter::default()
        };
        let json = forward_filter_to_json(&filter);
        let back = parse_forward_filter(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back.rules, &normalized(&rs));
        prop_assert_eq!(&back.default_action, &filter.default_action);
        prop_assert_eq!(forward_filter_to_json(&back), json);
    }

    #[test]
    fn render_then_apply_round_trip(rs in rules()) {
        let ops = render_rules(&rs);
        let mut got = BTreeMap::new();
        apply_rule_ops(&mut got, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&got, &normalized(&rs));
        for op in &ops {
            let v = serde_json::to_value(op).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: ConfigOp = serde_json::from_value(v).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, op);
        }
    }

    #[test]
    fn diff_then_apply_gives_target(a in rules(), b in rules()) {
        let ops = diff_rules(&a, &b);
        let mut got = a.clone();
        apply_rule_ops(&mut got, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&got, &normalized(&b));
        prop_assert!(diff_rules(&got, &b).is_empty());
        let sets = ops.iter().filter(|o| o.op == OpKind::Set).count();
        prop_assert!(sets <= render_rules(&b).len());
    }
}
