//! The writer's costs at scale, against vyos-sim's realistic cost model (scaled down so the
//! run takes seconds; the ratios are what carry over to a real router).
//!
//! `cargo bench --bench sync` prints, for a router with N rules: the first sync, a pass
//! with nothing to do, one changed rule (leaf-level diff against the naive
//! delete-and-recreate of everything), a refused rule isolated among many, and the
//! desired-state computation for 10,000 PortRules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmnet_api::{PortRule, PortRuleStatus, RuleRange, VyosRouterSpec};
use vmnet_operator::writer::apply::{ApplyOptions, apply_rules as apply};
use vmnet_operator::writer::observe::read;
use vmnet_plan::desired::desired;
use vmnet_plan::render::Refusal;
use vyos_client::nat::{ConfigOp, NatKind, NatRule};
use vyos_client::{ClientConfig, VyosClient};
use vyos_sim::{CostModel, Faults, SimOptions};

const N: u32 = 2000;
const SCALE: f64 = 0.02;

fn rule(n: u32) -> NatRule {
    let mut r = NatRule::new(NatKind::Destination, n);
    r.description = Some(format!("vmnet:bench/r{n}"));
    r.protocol = Some(vyos_client::nat::Protocol::Tcp);
    r.inbound_interface.name = Some("eth0".into());
    r.destination.address = Some("203.0.113.10".into());
    r.destination.port = Some((20000 + n).to_string());
    r.translation.address = Some(format!("10.20.{}.{}", n / 250, 1 + n % 250));
    r.translation.port = Some("22".into());
    r
}

fn range() -> RuleRange {
    RuleRange {
        start: 1,
        end: 999_999,
    }
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        max_ops_per_commit: 2000,
        max_request_bytes: 1024 * 1024,
        request_budget: Duration::from_secs(60),
        confirm_minutes: None,
        save: false,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let mut o = SimOptions::for_tests();
    o.cost = CostModel {
        time_scale: SCALE,
        ..CostModel::realistic()
    };
    // The naive delete-and-recreate of step 3 sends its 14,000 ops (1.3 MB) in one
    // request, over VyOS's default 1 MiB body limit: the router here has it raised.
    o.request_body_size_limit_mib = 4;
    let sim = vyos_sim::start(o).await.unwrap();
    let mut cfg = ClientConfig::new(sim.url(), "test-key");
    cfg.timeout = Duration::from_secs(600);
    let client = VyosClient::new(cfg).unwrap();
    let none = |_: &vmnet_operator::writer::apply::Request<'_>| {};
    let quiet = |_: usize, _: usize| {};
    println!(
        "vyos-sim realistic cost model at time scale {SCALE} (real router ≈ {:.0}× slower)",
        1.0 / SCALE
    );

    // 1. First sync of N rules.
    let target: BTreeMap<u32, NatRule> = (1..=N).map(|n| (n, rule(n))).collect();
    let t = Instant::now();
    let before = read(&client, &range()).await.unwrap();
    let first = apply(&client, &before.owned, &target, opts(), &none, &quiet)
        .await
        .unwrap();
    let first_t = t.elapsed();
    println!(
        "first sync of {N} rules: {} ({} ops in {} configure requests)",
        secs(first_t),
        first.ops,
        first.requests
    );

    // 2. A pass with nothing to do: one read, no write.
    sim.reset_counters();
    let t = Instant::now();
    let now = read(&client, &range()).await.unwrap();
    let noop = apply(&client, &now.owned, &target, opts(), &none, &quiet)
        .await
        .unwrap();
    let noop_t = t.elapsed();
    let c = sim.counters();
    println!(
        "pass with nothing to do on {N} rules: {} ({} reads, {} configure requests)",
        secs(noop_t),
        c.retrieve_requests,
        noop.requests
    );

    // 3. One changed translation port: the diff against delete-and-recreate of all.
    let mut changed = target.clone();
    changed.get_mut(&(N / 2)).unwrap().translation.port = Some("2222".into());
    let t = Instant::now();
    let now = read(&client, &range()).await.unwrap();
    let one = apply(&client, &now.owned, &changed, opts(), &none, &quiet)
        .await
        .unwrap();
    let one_t = t.elapsed();
    let mut flood: Vec<ConfigOp> = vec![ConfigOp::delete(NatKind::Destination.config_path())];
    flood.extend(vyos_client::nat::render_rules(&target));
    let t = Instant::now();
    client.configure(&flood).await.unwrap();
    let flood_t = t.elapsed();
    println!(
        "one changed rule among {N}: {} ops in {} ({}); delete-and-recreate: {} ops in {} — {:.0}× fewer ops, {:.1}× faster",
        one.ops,
        one.requests,
        secs(one_t),
        flood.len(),
        secs(flood_t),
        flood.len() as f64 / one.ops.max(1) as f64,
        flood_t.as_secs_f64() / one_t.as_secs_f64()
    );

    // 4. One refused rule among 500 new ones: the rest commit, few extra requests.
    sim.set_faults(Faults {
        fail_commit_matching: Some("10.99.99.99".into()),
        ..Faults::default()
    });
    let mut more = target.clone();
    for n in N + 1..=N + 500 {
        more.insert(n, rule(n));
    }
    more.get_mut(&(N + 250)).unwrap().translation.address = Some("10.99.99.99".into());
    let t = Instant::now();
    let now = read(&client, &range()).await.unwrap();
    let bad = apply(&client, &now.owned, &more, opts(), &none, &quiet)
        .await
        .unwrap();
    println!(
        "500 new rules, 1 refused by the router: {} committed, {} failed, {} configure requests, {}",
        bad.after.len() - now.owned.len(),
        bad.failed.len(),
        bad.requests,
        secs(t.elapsed())
    );
    sim.set_faults(Faults::default());

    // 5. The desired state of 10,000 PortRules (pure CPU).
    let router: VyosRouterSpec = serde_json::from_value(serde_json::json!({
        "endpoint": "https://192.0.2.1", "credentialsSecretRef": {"name": "k", "namespace": "n"},
        "ruleRange": {"start": 1, "end": 999999}, "defaultInboundInterface": "eth0"
    }))
    .unwrap();
    let prs: Vec<Arc<PortRule>> = (1..=10_000u32)
        .map(|i| {
            let spec = serde_json::from_value(serde_json::json!({
                "router": "edge", "protocol": "tcp", "externalAddress": "203.0.113.10",
                "externalPort": 10000 + i % 50000, "internalAddress": format!("10.20.{}.{}", i / 250, 1 + i % 250)
            }))
            .unwrap();
            let mut r = PortRule::new(&format!("r{i}"), spec);
            r.metadata.namespace = Some("bench".into());
            r.metadata.uid = Some(format!("uid-{i}"));
            r.metadata.generation = Some(1);
            r.status = Some(PortRuleStatus { rule_number: Some(i), ..PortRuleStatus::default() });
            Arc::new(r)
        })
        .collect();
    let ok = |_: &PortRule| -> Result<(), Refusal> { Ok(()) };
    let t = Instant::now();
    let d = desired(
        "edge",
        &router,
        &prs,
        &ok,
        &BTreeMap::new(),
        &BTreeSet::new(),
    );
    let d_t = t.elapsed();
    println!(
        "desired state of 10,000 PortRules (render, validate, conflicts): {:.1} ms ({} rules, {} refused)",
        d_t.as_secs_f64() * 1000.0,
        d.rules.len(),
        d.refused.len()
    );

    // 6. One pass at 10,000 rules with one change: the observe and plan steps the writer
    // runs for it (CPU on both sides of the read; the sim's modeled cost is off).
    let mut o = SimOptions::for_tests();
    o.request_body_size_limit_mib = 4;
    let sim2 = vyos_sim::start(o).await.unwrap();
    let client = VyosClient::new(ClientConfig::new(sim2.url(), "test-key")).unwrap();
    let programmed: BTreeMap<u32, NatRule> = d
        .rules
        .iter()
        .map(|(n, e)| (*n, NatRule::clone(&e.rule)))
        .collect();
    let cleared: Vec<ConfigOp> = vec![ConfigOp::delete(NatKind::Destination.config_path())];
    client.configure(&cleared).await.unwrap();
    for chunk in programmed.keys().copied().collect::<Vec<_>>().chunks(2000) {
        let part: BTreeMap<u32, NatRule> =
            chunk.iter().map(|n| (*n, programmed[n].clone())).collect();
        client
            .configure(&vyos_client::nat::render_rules(&part))
            .await
            .unwrap();
    }
    let mut moved: Vec<Arc<PortRule>> = prs.clone();
    let mut one = (*moved[4999]).clone();
    one.spec.internal_port = Some(8080);
    one.metadata.generation = Some(2);
    moved[4999] = Arc::new(one);
    let paused = BTreeSet::new();
    let renderings = vmnet_plan::render::Renderings::default();
    let (mut reads, mut plans, mut kept) = (Vec::new(), Vec::new(), Vec::new());
    let mut ops = 0;
    for _ in 0..10 {
        let t = Instant::now();
        let observed = vmnet_operator::writer::observe::observe(&client, &router, false)
            .await
            .unwrap();
        reads.push(t.elapsed());
        let inputs = |renderings| vmnet_plan::plan::Inputs {
            router: "edge",
            spec: &router,
            portrules: &moved,
            check: &ok,
            observed: &observed,
            paused: &paused,
            now: k8s_openapi::jiff::Timestamp::now(),
            renderings,
        };
        let t = Instant::now();
        let p = vmnet_plan::plan::plan(&inputs(None));
        plans.push(t.elapsed());
        let t = Instant::now();
        let with_kept = vmnet_plan::plan::plan(&inputs(Some(&renderings)));
        kept.push(t.elapsed());
        assert_eq!(with_kept.ops, p.ops);
        ops = p.op_count();
    }
    reads.sort();
    plans.sort();
    kept.sort();
    println!(
        "a pass at 10,000 rules with one change ({ops} op): observe {:.1} ms, plan {:.1} ms, \
         {:.1} ms with the renderings of the pass before (medians of 10)",
        reads[5].as_secs_f64() * 1000.0,
        plans[5].as_secs_f64() * 1000.0,
        kept[5].as_secs_f64() * 1000.0
    );
    sim2.stop().await;
    sim.stop().await;
}
