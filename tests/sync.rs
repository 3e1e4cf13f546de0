//! The router side of a pass (`vmnet_operator::sync`) against vyos-sim, without Kubernetes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use vmnet_api::RuleRange;
use vmnet_operator::writer::apply::{ApplyOptions, FIRST_REQUEST_OPS, apply_rules as apply};
use vmnet_operator::writer::observe::read;
use vyos_client::nat::{NatKind, NatRule, Protocol};
use vyos_client::{ClientConfig, VyosClient};
use vyos_sim::{SimOp, SimOptions};

fn rule(n: u32) -> NatRule {
    let mut r = NatRule::new(NatKind::Destination, n);
    r.description = Some(format!("vmnet:t/r{n}"));
    r.protocol = Some(Protocol::Tcp);
    r.inbound_interface.name = Some("eth0".into());
    r.destination.port = Some((20000 + n).to_string());
    r.translation.address = Some("10.0.0.5".into());
    r.translation.port = Some("22".into());
    r
}

/// What `Applied::after` says of `rules`: each number with its description.
fn described(rules: &BTreeMap<u32, NatRule>) -> BTreeMap<u32, Option<String>> {
    rules
        .iter()
        .map(|(n, r)| (*n, r.description.clone()))
        .collect()
}

fn opts(cap: usize) -> ApplyOptions {
    ApplyOptions {
        max_ops_per_commit: cap,
        max_request_bytes: 1024 * 1024,
        request_budget: Duration::from_secs(60),
        confirm_minutes: None,
        save: false,
    }
}

#[tokio::test]
async fn a_large_change_goes_in_paced_requests_with_progress_and_only_owned_rules_are_read() {
    let sim = vyos_sim::start(SimOptions::for_tests()).await.unwrap();
    let client = VyosClient::new(ClientConfig::new(sim.url(), "test-key")).unwrap();
    let range = RuleRange {
        start: 100,
        end: 999,
    };
    // A foreign rule inside the range and one of ours outside it.
    let set = |n: &str, rest: &[&str]| {
        let mut p: Vec<String> = ["nat", "destination", "rule", n]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        p.extend(rest.iter().map(|s| (*s).to_owned()));
        SimOp::Set(p)
    };
    sim.third_party_edit(vec![
        set("150", &["description", "by hand"]),
        set("150", &["translation", "address", "10.9.9.9"]),
        set("5", &["description", "vmnet:t/outside"]),
        set("5", &["translation", "address", "10.9.9.9"]),
    ])
    .unwrap();

    let target: BTreeMap<u32, NatRule> = (200..400).map(|n| (n, rule(n))).collect();
    let before = read(&client, &range).await.unwrap();
    assert!(before.owned.is_empty());
    assert_eq!(
        before.foreign.keys().copied().collect::<Vec<_>>(),
        vec![150]
    );

    let progress = Mutex::new(Vec::new());
    let on_progress = |sent: usize, total: usize| progress.lock().unwrap().push((sent, total));
    let requests = Mutex::new(Vec::new());
    let on_request = |r: &vmnet_operator::writer::apply::Request<'_>| {
        requests.lock().unwrap().push((r.ok, r.ops))
    };
    let done = apply(
        &client,
        &before.owned,
        &target,
        opts(2000),
        &on_request,
        &on_progress,
    )
    .await
    .unwrap();
    assert_eq!(done.after, described(&target));
    assert!(done.failed.is_empty());
    let requests = requests.into_inner().unwrap();
    let progress = progress.into_inner().unwrap();
    println!("requests {requests:?}, progress {progress:?}");
    let total = vyos_client::nat::render_rules(&target).len();
    assert_eq!(done.ops, total);
    assert!(
        requests[0].1 <= FIRST_REQUEST_OPS,
        "the first request is a probe: {requests:?}"
    );
    assert!(requests.len() >= 2 && requests.iter().all(|(ok, _)| *ok));
    assert_eq!(requests.len(), done.requests);
    assert_eq!(sim.counters().commits as usize, requests.len());
    assert_eq!(progress.last(), Some(&(total, total)));
    assert!(
        progress.windows(2).all(|w| w[0].0 < w[1].0),
        "progress only grows: {progress:?}"
    );

    // Nothing to do: no request, no progress.
    let now = read(&client, &range).await.unwrap();
    assert_eq!(now.owned, target);
    let quiet = |_: usize, _: usize| panic!("progress for nothing");
    let again = apply(&client, &now.owned, &target, opts(2000), &|_| {}, &quiet)
        .await
        .unwrap();
    assert_eq!(again.requests, 0);
    // The foreign rule and our rule outside the range were never touched.
    let all = client.nat_rules(NatKind::Destination).await.unwrap();
    assert_eq!(all[&150].description.as_deref(), Some("by hand"));
    assert_eq!(all[&5].description.as_deref(), Some("vmnet:t/outside"));
}

#[tokio::test]
async fn requests_stay_under_the_routers_body_limit_and_a_lower_limit_is_learned() {
    const MIB: usize = 1024 * 1024;
    let sim = vyos_sim::start(SimOptions::for_tests()).await.unwrap(); // 1 MiB, as VyOS
    let client = VyosClient::new(ClientConfig::new(sim.url(), "test-key")).unwrap();
    let range = RuleRange {
        start: 1000,
        end: 19_999,
    };
    // About 3.7 MB of ops: the op cap and the pace would allow requests over 1 MiB.
    let target: BTreeMap<u32, NatRule> = (1000..7000).map(|n| (n, rule(n))).collect();
    let big = ApplyOptions {
        max_request_bytes: MIB,
        ..opts(100_000)
    };
    let requests = Mutex::new(Vec::new());
    let on_request = |r: &vmnet_operator::writer::apply::Request<'_>| {
        requests.lock().unwrap().push((r.ok, r.ops))
    };
    let done = apply(
        &client,
        &BTreeMap::new(),
        &target,
        big,
        &on_request,
        &|_, _| {},
    )
    .await
    .unwrap();
    let requests = requests.into_inner().unwrap();
    println!("requests {requests:?}");
    assert_eq!(done.after, described(&target));
    assert_eq!(read(&client, &range).await.unwrap().owned, target);
    assert_eq!(sim.counters().too_large, 0, "a body went over the limit");
    assert_eq!(done.learned_max_request_bytes, None);
    assert!(
        requests.iter().any(|(_, ops)| *ops * 80 > MIB / 2),
        "the limit, not the op cap, should have bounded some request: {requests:?}"
    );

    // A router whose limit is lower than declared: the first refusal (413, nothing applied)
    // is split, the lower limit learned, and every rule still goes in.
    let mut o = SimOptions::for_tests();
    o.request_body_size_limit_mib = 1;
    let sim = vyos_sim::start(o).await.unwrap();
    let client = VyosClient::new(ClientConfig::new(sim.url(), "test-key")).unwrap();
    let wrong = ApplyOptions {
        max_request_bytes: 8 * MIB,
        ..opts(100_000)
    };
    let done = apply(
        &client,
        &BTreeMap::new(),
        &target,
        wrong,
        &|_| {},
        &|_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(done.after, described(&target));
    assert!(done.failed.is_empty(), "{:?}", done.failed);
    let learned = done
        .learned_max_request_bytes
        .expect("a limit learned from the 413");
    assert!(learned <= MIB, "learned {learned}");
    let refused = sim.counters().too_large;
    assert!(refused >= 1);
    assert_eq!(
        read(&client, &range).await.unwrap().owned,
        target,
        "the refused requests applied nothing twice and lost nothing"
    );

    // With the learned limit, the next change draws no refusal.
    let moved: BTreeMap<u32, NatRule> = (7000..13_000).map(|n| (n, rule(n))).collect();
    let next = ApplyOptions {
        max_request_bytes: learned,
        ..wrong
    };
    let done = apply(&client, &target, &moved, next, &|_| {}, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(done.after, described(&moved));
    assert_eq!(read(&client, &range).await.unwrap().owned, moved);
    assert_eq!(sim.counters().too_large, refused);
}
