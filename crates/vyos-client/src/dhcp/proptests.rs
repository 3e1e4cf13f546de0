//! Properties: parse/render round trips, and `apply_mapping_ops(a, diff_mappings(a, b)) == b`,
//! on both versions' MAC leaf.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;

use super::*;
use crate::nat::{ConfigOp, LeafValue, OpKind, SchemaVersion};

fn opt(pool: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    option::of(proptest::sample::select(pool).prop_map(str::to_owned))
}

fn version() -> impl Strategy<Value = SchemaVersion> {
    prop_oneof![Just(SchemaVersion::V1_4), Just(SchemaVersion::V1_5)]
}

fn extra() -> impl Strategy<Value = BTreeMap<Vec<String>, LeafValue>> {
    const PATHS: &[&[&str]] = &[
        &["duid"],
        &["option", "domain-name"],
        &["static-mapping-parameters"],
    ];
    let path = proptest::sample::select(PATHS)
        .prop_map(|p| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    let value = prop_oneof![
        proptest::sample::select(&["a", "b"][..]).prop_map(|s| LeafValue::One(s.to_owned())),
        btree_set(proptest::sample::select(&["c", "d", "e"][..]), 2..=3)
            .prop_map(|s| LeafValue::Many(s.into_iter().map(str::to_owned).collect())),
    ];
    btree_map(path, value, 0..2)
}

fn mappings() -> impl Strategy<Value = BTreeMap<MappingKey, StaticMapping>> {
    let one = (
        proptest::sample::select(&["LAN", "DMZ"][..]),
        proptest::sample::select(&["192.0.2.0/24", "198.51.100.0/24"][..]),
        proptest::sample::select(&["vm1", "vm2", "web.lab"][..]),
        opt(&["192.0.2.10", "198.51.100.7"]),
        opt(&["52:54:00:00:00:01", "52:54:00:AA:BB:02"]),
        opt(&["vmnet:ns/vm"]),
        any::<bool>(),
        extra(),
    )
        .prop_map(|(n, s, name, ip, mac, desc, disabled, extra)| {
            let mut m = StaticMapping::new(&MappingKey::new(n, s, name));
            m.ip_address = ip;
            m.mac = mac;
            m.description = desc;
            m.disabled = disabled;
            m.extra = extra;
            m
        });
    vec(one, 0..6).prop_map(|ms| ms.into_iter().map(|m| (m.key(), m)).collect())
}

fn normalized(ms: &BTreeMap<MappingKey, StaticMapping>) -> BTreeMap<MappingKey, StaticMapping> {
    ms.iter()
        .map(|(k, m)| (k.clone(), m.normalized()))
        .collect()
}

proptest! {
    #[test]
    fn json_round_trip(v in version(), ms in mappings()) {
        let json = mappings_to_json(&ms, v);
        let back = parse_server(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back.mappings, &normalized(&ms));
        prop_assert_eq!(mappings_to_json(&back.mappings, v), json);
    }

    #[test]
    fn render_then_apply_round_trip(v in version(), ms in mappings()) {
        let ops = render_mappings(&ms, v);
        let mut got = BTreeMap::new();
        apply_mapping_ops(&mut got, &ops, v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&got, &normalized(&ms));
        for op in &ops {
            let j = serde_json::to_value(op).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: ConfigOp = serde_json::from_value(j).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, op);
        }
    }

    #[test]
    fn diff_then_apply_gives_target(v in version(), a in mappings(), b in mappings()) {
        let ops = diff_mappings(&a, &b, v);
        let mut got = a.clone();
        apply_mapping_ops(&mut got, &ops, v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&got, &normalized(&b));
        prop_assert!(diff_mappings(&got, &b, v).is_empty());
        let sets = ops.iter().filter(|o| o.op == OpKind::Set).count();
        prop_assert!(sets <= render_mappings(&b, v).len());
    }
}
