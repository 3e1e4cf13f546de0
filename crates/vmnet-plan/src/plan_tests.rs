#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use proptest::prelude::*;
use vmnet_api::{PortRuleSpec, PortRuleStatus};

use crate::render::render;

use crate::fixtures::router;

fn pr(name: &str, number: u32, port: u16) -> PortRule {
    let spec: PortRuleSpec = serde_json::from_value(serde_json::json!({
        "router": "edge", "protocol": "tcp", "externalAddress": "203.0.113.10",
        "externalPort": port, "internalAddress": "10.0.0.5", "internalPort": 22
    }))
    .unwrap();
    let mut r = PortRule::new(name, spec);
    r.metadata.namespace = Some("lab".into());
    r.metadata.generation = Some(1);
    r.metadata.creation_timestamp = Some(Time(
        k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + i64::from(number)).unwrap(),
    ));
    r.status = Some(PortRuleStatus {
        rule_number: Some(number),
        ..PortRuleStatus::default()
    });
    r
}

/// `r` as the operator programmed it: on the router, and its hash in the status.
fn programmed(r: &mut PortRule) -> NatRule {
    let n = r.status.as_ref().unwrap().rule_number.unwrap();
    let rule = render(r, &router(), n).unwrap();
    r.status.as_mut().unwrap().applied_hash = Some(rule_hash(&rule, None, None));
    rule
}

fn ok(_: &PortRule) -> Result<(), Refusal> {
    Ok(())
}

fn run(rules: &[PortRule], observed: &Observed, paused: &BTreeSet<Key>) -> Plan {
    let rules: Vec<Arc<PortRule>> = rules.iter().cloned().map(Arc::new).collect();
    plan(&Inputs {
        router: "edge",
        spec: &router(),
        portrules: &rules,
        check: &ok,
        observed,
        paused,
        now: k8s_openapi::jiff::Timestamp::now(),
        renderings: None,
    })
}

fn action_of(p: &Plan, n: u32) -> Option<&Action> {
    p.rules
        .iter()
        .find(|r| r.number == Some(n))
        .map(|r| &r.action)
}

/// One plan with each kind of line: an add, a change, a removal, a refusal, a drift.
#[test]
fn each_rule_gets_the_line_that_says_what_happens_to_it() {
    let mut same = pr("same", 100, 30000);
    let mut changed = pr("changed", 101, 30001);
    let mut drifted = pr("drifted", 102, 30002);
    let added = pr("added", 103, 30003);
    let clash = pr("clash", 104, 30000); // the endpoint of "same"
    let on_router = BTreeMap::from([
        (100, programmed(&mut same)),
        (101, programmed(&mut changed)),
        (102, {
            let mut r = programmed(&mut drifted);
            r.translation.port = Some("2222".into()); // edited by hand
            r
        }),
        (105, {
            let mut gone = pr("gone", 105, 30005);
            programmed(&mut gone)
        }),
    ]);
    changed.spec.internal_port = Some(2200); // a new spec, not drift
    let observed = Observed {
        owned: on_router,
        ..Observed::default()
    };
    let p = run(
        &[same, changed, drifted, added, clash],
        &observed,
        &BTreeSet::new(),
    );
    assert_eq!(action_of(&p, 100), None, "in place: no line");
    let Some(Action::Change { leaves }) = action_of(&p, 101) else {
        panic!("{:?}", p.rules)
    };
    assert_eq!(
        leaves,
        &[Leaf {
            path: "translation port".into(),
            old: Some("22".into()),
            new: Some("2200".into())
        }]
    );
    assert!(matches!(action_of(&p, 102), Some(Action::Change { .. })));
    assert_eq!(
        p.drifted.get(&102).map(String::as_str),
        Some("changed on the router")
    );
    assert!(!p.drifted.contains_key(&101), "a new spec is not drift");
    assert_eq!(action_of(&p, 103), Some(&Action::Add));
    assert_eq!(action_of(&p, 105), Some(&Action::Remove));
    assert!(
        matches!(action_of(&p, 104), Some(Action::Refused { reason, .. }) if reason == "Conflict")
    );
    let s = p.summary();
    assert_eq!(
        (s.add, s.change, s.remove, s.refused, s.drifted),
        (1, 2, 1, 1, 1)
    );
    let text = p.to_text("edge");
    assert!(text.contains("  + rule 103 lab/added\n"), "{text}");
    assert!(text.contains("  - rule 105 lab/gone\n"), "{text}");
    assert!(
        text.contains("      translation port: 22 -> 2200\n"),
        "{text}"
    );
    assert!(text.contains("(drifted: changed on the router)"), "{text}");
    assert!(
        text.contains("  ! rule 104 lab/clash: Conflict: "),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "edge: 1 to add, 2 to change, 1 to remove, 1 refused, 1 drifted ({} ops)\n",
            p.op_count()
        )),
        "{text}"
    );
}

#[test]
fn a_programmed_rule_keeps_its_endpoint_against_an_older_newcomer() {
    let mut young = pr("young", 101, 30000);
    let rule = programmed(&mut young);
    // Older by creation time (rule 100 is created first), same endpoint, not programmed.
    let old = pr("old", 100, 30000);
    let observed = Observed {
        owned: BTreeMap::from([(101, rule)]),
        ..Observed::default()
    };
    let p = run(&[young, old], &observed, &BTreeSet::new());
    assert!(p.is_empty(), "{:?}", p.ops);
    assert!(
        matches!(action_of(&p, 100), Some(Action::Refused { reason, .. }) if reason == "Conflict")
    );
}

#[test]
fn a_rule_deleted_on_the_router_is_drift_and_is_added_back() {
    let mut r = pr("a", 100, 30000);
    programmed(&mut r);
    let p = run(&[r], &Observed::default(), &BTreeSet::new());
    assert_eq!(action_of(&p, 100), Some(&Action::Add));
    assert_eq!(
        p.drifted.get(&100).map(String::as_str),
        Some("deleted on the router")
    );
}

#[test]
fn a_paused_rule_is_neither_changed_nor_removed_nor_added() {
    let mut kept = pr("kept", 100, 30000);
    let on_router = BTreeMap::from([(100, programmed(&mut kept))]);
    kept.spec.internal_port = Some(2200);
    let mut deleted = pr("deleted", 101, 30001);
    let deleted_rule = programmed(&mut deleted);
    deleted.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    let new = pr("new", 102, 30002);
    let observed = Observed {
        owned: on_router.into_iter().chain([(101, deleted_rule)]).collect(),
        ..Observed::default()
    };
    let paused: BTreeSet<Key> = [&kept, &deleted, &new].iter().map(|r| Key::of(r)).collect();
    let p = run(&[kept, deleted, new], &observed, &paused);
    assert!(p.is_empty(), "{:?}", p.ops);
    assert_eq!(p.target_rules(), observed.owned);
    assert_eq!(action_of(&p, 100), Some(&Action::Held));
}

#[test]
fn an_orphaned_rule_stays_and_stops_being_ours() {
    let mut r = pr("a", 100, 30000);
    let rule = programmed(&mut r);
    r.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    r.spec.deletion_policy = Some(DeletionPolicy::Orphan);
    let observed = Observed {
        owned: BTreeMap::from([(100, rule.clone())]),
        ..Observed::default()
    };
    let p = run(&[r.clone()], &observed, &BTreeSet::new());
    assert_eq!(action_of(&p, 100), Some(&Action::Orphan));
    let after = &p.target[&100];
    assert_eq!(
        owner_of(after.description.as_deref()),
        None,
        "no longer ours"
    );
    assert_eq!(after.translation, rule.translation, "otherwise as it was");
    assert_eq!(p.op_count(), 1, "one op: the description");
    // With the default policy it is removed.
    r.spec.deletion_policy = None;
    let p = run(&[r], &observed, &BTreeSet::new());
    assert_eq!(action_of(&p, 100), Some(&Action::Remove));
}

proptest! {
    /// Whatever is on the router and whatever is declared: the plan's ops, applied to
    /// what was observed, give exactly its target; a second plan from there is empty; and
    /// each rule's line counts exactly the ops that rule takes.
    #[test]
    fn the_ops_lead_to_the_target_and_then_there_is_nothing_to_do(
        declared in proptest::collection::btree_map(100u32..130, (30000u16..30010, 1u16..4, any::<bool>()), 0..12),
        present in proptest::collection::btree_map(100u32..135, (30000u16..30010, 1u16..4, any::<bool>()), 0..12),
    ) {
        let mut rules = Vec::new();
        let mut owned = BTreeMap::new();
        for (n, (port, internal, _)) in &declared {
            let mut r = pr(&format!("r{n}"), *n, *port);
            r.spec.internal_port = Some(*internal);
            rules.push(r);
        }
        for (n, (port, internal, hashed)) in &present {
            let mut r = pr(&format!("r{n}"), *n, *port);
            r.spec.internal_port = Some(*internal);
            let rule = programmed(&mut r);
            if *hashed
                && let Some(d) = rules.iter_mut().find(|d| d.metadata.name == r.metadata.name)
            {
                d.status = r.status.clone();
            }
            owned.insert(*n, rule);
        }
        let observed = Observed { owned, ..Observed::default() };
        let p = run(&rules, &observed, &BTreeSet::new());
        let mut after = observed.owned.clone();
        let ops: Vec<ConfigOp> = p.all_ops().cloned().collect();
        vyos_client::nat::apply_ops(NatKind::Destination, &mut after, &ops).unwrap();
        prop_assert_eq!(&after, &p.target_rules());
        // A refused rule still on the router has two lines: its refusal (no ops) and its
        // removal.
        for r in p.rules.iter().filter(|r| !matches!(r.action, Action::Refused { .. })) {
            let n = r.number.unwrap_or(0);
            prop_assert_eq!(r.ops, p.ops.get(&n).map_or(0, Vec::len));
        }
        prop_assert_eq!(p.rules.iter().map(|r| r.ops).sum::<usize>(), p.op_count());
        let again = run(&rules, &Observed { owned: after, ..Observed::default() }, &BTreeSet::new());
        prop_assert!(again.is_empty(), "{:?}", again.ops);
        prop_assert!(again.drifted.is_empty());
    }
}

/// An expired rule leaves the router (even under `upsert-only`, which keeps only what
/// nothing declares), says so in the plan, and is not drift when it comes back.
#[test]
fn an_expired_rule_is_removed_and_listed_as_expired() {
    let mut tmp = pr("tmp", 100, 30000);
    let on_router = BTreeMap::from([(100, programmed(&mut tmp))]);
    tmp.spec.expires_at = Some("2026-12-06T10:00:00Z".into());
    let mut gone = pr("gone", 101, 30001);
    gone.spec.expires_at = Some("2026-12-06T09:00:00Z".into());
    let observed = Observed {
        owned: on_router,
        ..Observed::default()
    };
    let rules: Vec<Arc<PortRule>> = [tmp.clone(), gone].into_iter().map(Arc::new).collect();
    let at = |s: &str| s.parse::<k8s_openapi::jiff::Timestamp>().unwrap();
    for policy in [None, Some(vmnet_api::OrphanPolicy::UpsertOnly)] {
        let mut spec = router();
        spec.orphan_policy = policy;
        let plan_at = |now: &str| {
            plan(&Inputs {
                router: "edge",
                spec: &spec,
                portrules: &rules,
                check: &ok,
                observed: &observed,
                paused: &BTreeSet::new(),
                now: at(now),
                renderings: None,
            })
        };
        // Before: tmp stays, gone (never on the router, expired already) is listed.
        let p = plan_at("2026-12-06T09:59:59Z");
        assert!(p.is_empty(), "{:?}", p.ops);
        assert_eq!(action_of(&p, 100), None);
        // After: one delete of rule 100; the plan, its text and summary say why.
        let p = plan_at("2026-12-06T10:00:00Z");
        assert_eq!(
            action_of(&p, 100),
            Some(&Action::Expired {
                at: "2026-12-06T10:00:00Z".into()
            }),
            "{policy:?}"
        );
        assert_eq!(p.ops[&100].len(), 1);
        assert_eq!(p.ops[&100][0].op, OpKind::Delete);
        assert!(p.target.is_empty() && p.drifted.is_empty());
        let s = p.summary();
        assert_eq!((s.remove, s.refused, s.expired, s.ops), (0, 0, 2, 1));
        let text = p.to_text("edge");
        assert!(
            text.contains("  - rule 100 lab/tmp: expired at 2026-12-06T10:00:00Z\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "    rule 101 lab/gone: expired at 2026-12-06T09:00:00Z (not on the router)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("0 to remove, 0 refused, 2 expired (1 ops)"),
            "{text}"
        );
    }
    // Brought back (expiresAt moved, the hash cleared by the expiry): an addition on the
    // same number, not a repair of drift.
    let mut back = tmp;
    back.spec.expires_at = Some("2027-01-01T00:00:00Z".into());
    back.status.as_mut().unwrap().applied_hash = None;
    let p = plan(&Inputs {
        router: "edge",
        spec: &router(),
        portrules: &[Arc::new(back)],
        check: &ok,
        observed: &Observed::default(),
        paused: &BTreeSet::new(),
        now: at("2026-12-06T10:00:05Z"),
        renderings: None,
    });
    assert_eq!(action_of(&p, 100), Some(&Action::Add));
    assert!(p.drifted.is_empty());
}

mod hairpin {
    use super::*;
    use vmnet_api::{DeletionPolicy, HairpinSpec, RuleRange};

    fn spec() -> VyosRouterSpec {
        let mut s = router();
        s.hairpin = Some(HairpinSpec {
            inside_interface: "eth1".into(),
            inside_network: "10.0.0.0/24".into(),
            rule_range: RuleRange {
                start: 2000,
                end: 2099,
            },
            default: None,
        });
        s
    }

    fn with_hairpin(name: &str, number: u32, port: u16) -> PortRule {
        let mut r = pr(name, number, port);
        r.spec.hairpin = Some(true);
        r
    }

    fn plan_with(rules: &[PortRule], observed: &Observed, paused: &BTreeSet<Key>) -> Plan {
        let rules: Vec<Arc<PortRule>> = rules.iter().cloned().map(Arc::new).collect();
        plan(&Inputs {
            router: "edge",
            spec: &spec(),
            portrules: &rules,
            check: &ok,
            observed,
            paused,
            now: k8s_openapi::jiff::Timestamp::now(),
            renderings: None,
        })
    }

    /// The router after `p` was applied to `observed`.
    fn after(p: &Plan) -> Observed {
        Observed {
            owned: p.target_rules(),
            owned_groups: p.target_groups.clone(),
            owned_hairpin: p.target_hairpin.clone(),
            ..Observed::default()
        }
    }

    #[test]
    fn the_companions_ride_with_their_rule_and_converge() {
        let r = with_hairpin("rdp", 100, 3389);
        let p = plan_with(
            std::slice::from_ref(&r),
            &Observed::default(),
            &BTreeSet::new(),
        );
        assert_eq!(p.ops.keys().copied().collect::<Vec<_>>(), vec![100]);
        let tables: BTreeSet<&str> = p.ops[&100].iter().map(|o| o.path[1].as_str()).collect();
        assert_eq!(tables, BTreeSet::from(["destination", "source"]));
        assert!(matches!(action_of(&p, 100), Some(Action::Add)));
        assert!(
            p.to_text("edge").contains(
                "+ rule 100 lab/rdp, with hairpin (nat destination and source rule 2000)"
            ),
            "{}",
            p.to_text("edge")
        );
        // Applied, nothing is left to do.
        let again = plan_with(std::slice::from_ref(&r), &after(&p), &BTreeSet::new());
        assert!(again.is_empty(), "{:?}", again.ops);
        // Dropping hairpin is a change of exactly the companions' leaves, two deletes.
        let mut plain = r.clone();
        plain.spec.hairpin = None;
        let drop = plan_with(&[plain], &after(&p), &BTreeSet::new());
        let lines: Vec<String> = drop.all_ops().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "delete nat destination rule 2000",
                "delete nat source rule 2000"
            ]
        );
        let Some(Action::Change { leaves }) = action_of(&drop, 100) else {
            panic!("{:?}", drop.rules);
        };
        assert!(
            leaves
                .iter()
                .all(|l| l.path.starts_with("hairpin ") && l.new.is_none()),
            "{leaves:?}"
        );
        assert!(
            leaves
                .iter()
                .any(|l| l.path == "hairpin source translation address"
                    && l.old.as_deref() == Some("masquerade")),
            "{leaves:?}"
        );
    }

    #[test]
    fn a_companion_edited_by_hand_is_drift_and_a_paused_rule_keeps_its_companions() {
        let mut r = with_hairpin("rdp", 100, 3389);
        let first = plan_with(
            std::slice::from_ref(&r),
            &Observed::default(),
            &BTreeSet::new(),
        );
        let mut on_router = after(&first);
        let e = &first.desired.rules[&100];
        r.status.as_mut().unwrap().applied_hash =
            Some(rule_hash(&e.rule, None, e.hairpin.as_deref()));
        on_router.owned_hairpin.get_mut(&100).unwrap().source = None;
        let p = plan_with(std::slice::from_ref(&r), &on_router, &BTreeSet::new());
        assert_eq!(
            p.drifted.get(&100).map(String::as_str),
            Some("changed on the router")
        );
        assert_eq!(p.ops[&100].len(), 7, "{:?}", p.ops);
        // Paused: held as it is, companions included.
        let held = plan_with(
            std::slice::from_ref(&r),
            &on_router,
            &BTreeSet::from([Key::of(&r)]),
        );
        assert!(held.is_empty(), "{:?}", held.ops);
        assert!(matches!(action_of(&held, 100), Some(Action::Held)));
    }

    #[test]
    fn a_foreign_rule_in_the_hairpin_range_refuses_the_hairpin_and_orphans_keep_theirs() {
        let r = with_hairpin("rdp", 100, 3389);
        let observed = Observed {
            foreign_hairpin: BTreeMap::from([(100, "nat source rule 2000".to_owned())]),
            ..Observed::default()
        };
        let p = plan_with(std::slice::from_ref(&r), &observed, &BTreeSet::new());
        let why = &p.desired.refused[&Key::of(&r)];
        assert_eq!(why.reason, crate::conditions::Reason::Conflict);
        assert!(
            why.message.contains("nat source rule 2000"),
            "{}",
            why.message
        );
        assert!(p.is_empty());

        // Deleted with deletionPolicy Orphan: all three stay, without the marker.
        let first = plan_with(
            std::slice::from_ref(&r),
            &Observed::default(),
            &BTreeSet::new(),
        );
        let mut gone = r.clone();
        gone.metadata.deletion_timestamp = gone.metadata.creation_timestamp.clone();
        gone.spec.deletion_policy = Some(DeletionPolicy::Orphan);
        let p = plan_with(&[gone], &after(&first), &BTreeSet::new());
        assert!(matches!(action_of(&p, 100), Some(Action::Orphan)));
        let descriptions: Vec<String> = p
            .all_ops()
            .filter(|o| o.path.last().is_some_and(|w| w == "description"))
            .filter_map(|o| o.value.clone())
            .collect();
        assert_eq!(descriptions.len(), 3, "{:?}", p.ops);
        assert!(
            descriptions
                .iter()
                .all(|d| d == "orphaned-by-vmnet lab/rdp")
        );
        assert!(p.all_ops().all(|o| o.op == OpKind::Set));
    }
}
