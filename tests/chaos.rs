//! Chaos: VmNetworks created, edited and deleted in bursts while vyos-sim fails requests
//! (5xx, held past the deadline, reset connections, slow commits), a person edits owned
//! and foreign rules by hand, and the operator's replicas are killed and restarted. Once
//! the faults stop, the router must hold exactly what is declared, every leaf as declared,
//! the foreign rules as the person left them, no address or external port held twice, and
//! every object Ready.
//!
//! Bounded in the suite (30 VmNetworks, 6 bursts). Long, by a command:
//! `CHAOS_VMS=500 CHAOS_BURSTS=20 cargo test --test chaos -- --nocapture`
//! (`CHAOS_SEED` repeats a run; the seed is printed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use kube::api::{DeleteParams, ListParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use vyos_client::nat::NatRule;
use vyos_sim::{Faults, SimOp};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn vm_spec(w: &World, name: &str, http: u16) -> Value {
    json!({
        "router": w.router,
        "vmRef": {"kind": "VirtualMachine", "name": name},
        "ports": [
            {"name": "ssh", "port": 22, "protocol": "tcp"},
            {"name": "http", "port": http, "protocol": "tcp"}
        ]
    })
}

fn words(path: &str) -> Vec<String> {
    path.split_whitespace().map(str::to_owned).collect()
}

/// A foreign rule (no marker) at `n`.
fn foreign(n: u32, port: u16) -> Vec<SimOp> {
    let base = format!("nat destination rule {n}");
    vec![
        SimOp::Set(words(&format!("{base} description hand-made"))),
        SimOp::Set(words(&format!("{base} protocol tcp"))),
        SimOp::Set(words(&format!("{base} inbound-interface name eth1"))),
        SimOp::Set(words(&format!("{base} destination port {port}"))),
        SimOp::Set(words(&format!("{base} translation address 192.0.2.7"))),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_under_faults_and_kills_ends_exactly_as_declared() {
    let max_vms = env("CHAOS_VMS", 30) as usize;
    let bursts = env("CHAOS_BURSTS", 6);
    let seed = env("CHAOS_SEED", rand::random::<u32>() as u64);
    println!("chaos: up to {max_vms} VmNetworks, {bursts} bursts, seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut w = world("chaos").await;
    if max_vms > 200 {
        // More VMs than the world's /24 holds.
        apply(
            &client(&w),
            json!({
                "apiVersion": "vmnet.dev/v1alpha1", "kind": "IpPool",
                "metadata": {"name": format!("{}-more", w.ippool), "labels": {TEST_LABEL: w.ns()}},
                "spec": {"addresses": ["10.78.0.0/20"], "allowedNamespaces": [w.ns()],
                         "autoAssign": true, "priority": -1}
            }),
        )
        .await;
    }
    // Foreign rules outside the owned range (1000-1999), one of which the person edits
    // during the run: both must end exactly as the person left them.
    w.sim().third_party_edit(foreign(500, 2200)).unwrap();
    w.sim().third_party_edit(foreign(2500, 2300)).unwrap();
    let mut next_identity = 0;
    let mut start = async |w: &mut World| {
        next_identity += 1;
        w.start_operator(&format!("r{next_identity}"), true).await;
    };
    start(&mut w).await;
    start(&mut w).await;
    w.sim().set_faults(Faults {
        error_rate: 0.10,
        timeout_rate: 0.05,
        reset_rate: 0.05,
        commit_delay_ms: 200,
        ..Faults::default()
    });

    let mut declared: BTreeMap<String, u16> = BTreeMap::new();
    let mut next_vm = 0;
    let (mut changes, mut kills, mut hand_edits) = (0, 0, 0);
    for burst in 0..bursts {
        // A burst of changes, sent concurrently.
        // At most one change per VmNetwork in a burst: the changes go concurrently, so two
        // on one name would race each other, not the operator.
        let mut ops: Vec<(String, Option<u16>)> = Vec::new();
        let mut touched = BTreeSet::new();
        let size = rng.random_range(max_vms / 3..=max_vms.max(3));
        for _ in 0..size {
            let roll = rng.random_range(0..10);
            let untouched: Vec<String> = declared
                .keys()
                .filter(|n| !touched.contains(*n))
                .cloned()
                .collect();
            if untouched.is_empty() && declared.len() >= max_vms {
                break;
            }
            if declared.len() < max_vms && (roll < 5 || untouched.is_empty()) {
                let name = format!("vm-{next_vm:04}");
                next_vm += 1;
                declared.insert(name.clone(), 80);
                touched.insert(name.clone());
                ops.push((name, Some(80)));
            } else if roll < 8 {
                let name = untouched[rng.random_range(0..untouched.len())].clone();
                let port = declared.get_mut(&name).unwrap();
                *port = if *port == 80 { 8080 } else { 80 };
                ops.push((name.clone(), Some(*port)));
                touched.insert(name);
            } else {
                let name = untouched[rng.random_range(0..untouched.len())].clone();
                declared.remove(&name);
                touched.insert(name.clone());
                ops.push((name, None));
            }
        }
        changes += ops.len();
        let wref = &w;
        // Spread over a few seconds, so the writer makes many passes under the faults.
        let pauses: Vec<u64> = ops.iter().map(|_| rng.random_range(0..400)).collect();
        futures::stream::iter(ops.into_iter().zip(pauses))
            .for_each_concurrent(4, |((name, port), pause)| async move {
                tokio::time::sleep(Duration::from_millis(pause)).await;
                match port {
                    Some(p) => wref.vmnetwork(&name, vm_spec(wref, &name, p)).await,
                    None => {
                        let _ = wref
                            .vmnetworks()
                            .delete(&name, &DeleteParams::default())
                            .await;
                    }
                }
            })
            .await;
        // A person edits an owned rule and a foreign one.
        let owned: Vec<u32> = w
            .router_rules()
            .iter()
            .filter(|(_, r)| {
                r.description
                    .as_deref()
                    .is_some_and(|d| d.starts_with("vmnet:"))
            })
            .map(|(n, _)| *n)
            .collect();
        if !owned.is_empty() {
            let n = owned[rng.random_range(0..owned.len())];
            w.sim()
                .third_party_edit(vec![SimOp::Set(words(&format!(
                    "nat destination rule {n} translation port 9999"
                )))])
                .unwrap();
            hand_edits += 1;
        }
        w.sim()
            .third_party_edit(vec![SimOp::Set(words(&format!(
                "nat destination rule 2500 destination port {}",
                2300 + burst
            )))])
            .unwrap();
        hand_edits += 1;
        // The writer works through the burst under the faults for a while; then, every other
        // burst, a replica is killed (its task dropped mid-work, as SIGKILL would) and a new
        // one started.
        tokio::time::sleep(Duration::from_millis(rng.random_range(2000..6000))).await;
        if burst % 2 == 1 {
            continue;
        }
        let victim = w.operators[rng.random_range(0..w.operators.len())]
            .identity
            .clone();
        w.kill_operator(&victim);
        kills += 1;
        start(&mut w).await;
    }
    let final_foreign_port = 2300 + bursts - 1;

    // The faults stop; the end state must be reached within two drift intervals (10 s each
    // in the tests' router) plus the time to take over a dead leader's Lease (4 s).
    w.sim().set_faults(Faults::default());
    let stopped = Instant::now();
    let repaired_before = w.sim().counters().commits;
    let vms = w.vmnetworks();
    let rules_api = w.portrules();
    let outcome = eventually(90, "the declared state on the router", async || {
        let vm_list = vms.list(&ListParams::default()).await.unwrap().items;
        let pr_list = rules_api.list(&ListParams::default()).await.unwrap().items;
        let names: BTreeSet<String> = vm_list
            .iter()
            .filter_map(|v| v.metadata.name.clone())
            .collect();
        let wanted: BTreeSet<String> = declared.keys().cloned().collect();
        if names != wanted {
            let extra: Vec<String> = vm_list
                .iter()
                .filter(|v| !wanted.contains(v.metadata.name.as_deref().unwrap_or_default()))
                .map(|v| {
                    format!(
                        "{} (deleting: {}, finalizers {:?})",
                        v.metadata.name.as_deref().unwrap_or_default(),
                        v.metadata.deletion_timestamp.is_some(),
                        v.metadata.finalizers
                    )
                })
                .collect();
            return Err(format!(
                "VmNetworks {} of {} declared; extra {extra:?}; missing {:?}",
                names.len(),
                wanted.len(),
                wanted.difference(&names).collect::<Vec<_>>()
            ));
        }
        let mut addresses = BTreeSet::new();
        for v in &vm_list {
            let o = serde_json::to_value(v).unwrap();
            if !ready(&o) {
                return Err(format!(
                    "{} not Ready: {}",
                    o["metadata"]["name"], o["status"]
                ));
            }
            let http = declared[v.metadata.name.as_deref().unwrap()];
            let spec_http = v.spec.ports.as_ref().unwrap()[1].port;
            if spec_http != http {
                return Err("a spec still old".into());
            }
            let addr = o["status"]["address"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !addresses.insert(addr.clone()) {
                panic!("address {addr} held twice");
            }
        }
        if pr_list.len() != 2 * declared.len() {
            return Err(format!(
                "{} PortRules for {} VmNetworks",
                pr_list.len(),
                declared.len()
            ));
        }
        let router = w.router_rules();
        let mut external = BTreeSet::new();
        let mut numbers = BTreeSet::new();
        for pr in &pr_list {
            let o = serde_json::to_value(pr).unwrap();
            if !ready(&o) {
                return Err(format!(
                    "{} not Ready: {}",
                    o["metadata"]["name"], o["status"]
                ));
            }
            let port = pr.spec.external_port.unwrap();
            if !external.insert(port) {
                panic!("external port {port} held twice");
            }
            let n = pr.status.as_ref().and_then(|s| s.rule_number).unwrap();
            numbers.insert(n);
            let r: &NatRule = router.get(&n).ok_or(format!("rule {n} missing"))?;
            let name = pr.metadata.name.as_deref().unwrap();
            let want = [
                (
                    r.translation.address.clone(),
                    Some(pr.spec.internal_address.clone()),
                ),
                (
                    r.translation.port.clone(),
                    Some(pr.spec.internal_port.unwrap().to_string()),
                ),
                (r.destination.port.clone(), Some(port.to_string())),
            ];
            if want.iter().any(|(have, want)| have != want)
                || !r
                    .description
                    .as_deref()
                    .is_some_and(|d| d.contains(&format!("/{name}")))
            {
                return Err(format!("rule {n} is not {name}'s: {r:?}"));
            }
        }
        let owned: BTreeSet<u32> = router
            .iter()
            .filter(|(_, r)| {
                r.description
                    .as_deref()
                    .is_some_and(|d| d.starts_with("vmnet:"))
            })
            .map(|(n, _)| *n)
            .collect();
        if owned != numbers {
            return Err(format!(
                "owned rules on the router {} but {} declared (extra: {:?})",
                owned.len(),
                numbers.len(),
                owned.difference(&numbers).collect::<Vec<_>>()
            ));
        }
        let f1 = router.get(&500).ok_or("foreign rule 500 gone")?;
        let f2 = router.get(&2500).ok_or("foreign rule 2500 gone")?;
        if f1.destination.port.as_deref() != Some("2200")
            || f2.destination.port.as_deref() != Some(final_foreign_port.to_string().as_str())
            || f2.translation.address.as_deref() != Some("192.0.2.7")
        {
            return Err(format!("foreign rules changed: {f1:?} {f2:?}"));
        }
        Ok((declared.len(), pr_list.len()))
    })
    .await;
    let took = stopped.elapsed();
    let repairs = w.metrics().await;
    let drift: f64 = repairs
        .lines()
        .filter(|l| l.starts_with("vmnet_drift_repaired_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    println!(
        "chaos: {changes} changes in {bursts} bursts, {hand_edits} hand edits, {kills} kills; \
         faults: 10% 5xx, 5% held past the deadline, 5% resets, 200 ms slower commits; \
         {} requests seen by the router, faults injected {:?}; end state ({} VmNetworks, {} PortRules) reached {:.1} s \
         after the faults stopped, with {} commits after that; drift repairs counted by the \
         live replicas: {drift}",
        w.sim().counters().requests.values().sum::<u64>(),
        w.sim().counters().faults_injected,
        outcome.0,
        outcome.1,
        took.as_secs_f64(),
        w.sim().counters().commits - repaired_before,
    );
    // Two drift intervals (10 s each), a Lease takeover (4 s) and the writer's backoff
    // after a run of failures: what a person would call "converged once the faults
    // stopped". The figure above says how long it really took.
    assert!(
        took < Duration::from_secs(45),
        "took {took:?} to converge after the faults stopped"
    );
}
