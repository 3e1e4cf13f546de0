//! The reconcile loop end to end: the real kube-apiserver, vyos-sim, and the operator
//! running in this process (`vmnet_operator::run::operate`).
//!
//! Each test has its own namespace, its own vyos-sim, its own router and pools (labelled
//! for that test) and its own operator watching only them, so the tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use vmnet_api::{PortRule, VyosRouter};
use vmnet_testkit::{TestNamespace, kubectl};
use vyos_client::nat::{NatKind, NatRule, parse_rules};
use vyos_sim::{Faults, SimOp, SimOptions};

use common::*;

// 1. Declared objects yield exactly the declared rules; statuses show the endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_objects_become_exactly_the_declared_rules() {
    let mut w = world("declared").await;
    w.start_operator("a", true).await;
    w.vmnetwork(
        "web",
        json!({"router": w.router, "address": "10.77.0.10", "ports": [
            {"name": "https", "port": 443, "protocol": "tcp", "externalPort": 30443},
            {"name": "ssh", "port": 22, "protocol": "tcp", "sourceRanges": ["198.51.100.0/24"]}
        ]}),
    )
    .await;
    w.vmnetwork(
        "db",
        json!({"router": w.router, "ipPoolRef": w.ippool, "ports": [
            {"name": "pg", "port": 5432, "protocol": "tcp"}
        ]}),
    )
    .await;
    w.portrule(
        "dns",
        json!({"router": w.router, "protocol": "tcp_udp", "externalAddress": "203.0.113.10",
        "externalPort": 53, "internalAddress": "10.77.0.10", "description": "resolver"}),
    )
    .await;
    let web = wait_ready_vm(&w, "web", 60).await;
    let db = wait_ready_vm(&w, "db", 60).await;
    wait_ready_rule(&w, "dns", 60).await;
    kubectl(&[
        "wait",
        "--for=condition=Ready",
        "-n",
        w.ns(),
        "vmnetwork/web",
        "vmnetwork/db",
        "portrule/dns",
        "--timeout=30s",
    ])
    .unwrap();

    // Status: the address and each port's external endpoint.
    assert_eq!(web["status"]["address"], "10.77.0.10");
    let endpoints = web["status"]["endpoints"].as_str().unwrap();
    assert!(
        endpoints.contains("https=203.0.113.10:30443/tcp"),
        "{endpoints}"
    );
    let db_addr = db["status"]["address"].as_str().unwrap();
    assert!(db_addr.starts_with("10.77.0."), "{db_addr}");
    assert_eq!(db["status"]["ipPool"], w.ippool.as_str());

    // The router holds exactly the four declared rules, each with our marker.
    let rules = w.router_rules();
    assert_eq!(rules.len(), 4, "{rules:#?}");
    let by_desc: BTreeMap<String, &NatRule> = rules
        .values()
        .map(|r| (r.description.clone().unwrap(), r))
        .collect();
    let https = by_desc[&format!("vmnet:{}/web-https VmNetwork web port https", w.ns())];
    assert_eq!(https.destination.address.as_deref(), Some("203.0.113.10"));
    assert_eq!(https.destination.port.as_deref(), Some("30443"));
    assert_eq!(https.translation.address.as_deref(), Some("10.77.0.10"));
    assert_eq!(https.translation.port.as_deref(), Some("443"));
    let ssh = by_desc[&format!("vmnet:{}/web-ssh VmNetwork web port ssh", w.ns())];
    assert_eq!(ssh.source.address.as_deref(), Some("198.51.100.0/24"));
    let pg = by_desc[&format!("vmnet:{}/db-pg VmNetwork db port pg", w.ns())];
    assert_eq!(pg.translation.address.as_deref(), Some(db_addr));
    assert!(by_desc.contains_key(&format!("vmnet:{}/dns resolver", w.ns())));
    for r in rules.values() {
        assert!(
            (1000..=1999).contains(&r.number),
            "rule {} outside the owned range",
            r.number
        );
    }

    // Router status counts.
    let router = get_json(&Api::<VyosRouter>::all(client(&w)), &w.router)
        .await
        .unwrap();
    assert_eq!(router["status"]["ownedRules"], 4);
    assert_eq!(router["status"]["reachable"], true);
}

// 2. 200 PortRules created at once converge in at most 5 commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_rules_converge_in_at_most_five_commits() {
    let mut w = world("bulk").await;
    w.start_operator("a", true).await;
    // Let the first (empty) pass happen, then count from zero.
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.sim().reset_counters();
    let api = w.portrules();
    let names: Vec<String> = (0..200).map(|i| format!("bulk-{i}")).collect();
    futures::stream::iter(names.iter().enumerate())
        .for_each_concurrent(16, |(i, n)| {
            let w = &w;
            async move {
                w.portrule(
                    n,
                    standalone(w, 40000 + i as u16, &format!("10.77.0.{}", 10 + i % 200)),
                )
                .await;
            }
        })
        .await;
    eventually(120, "200 PortRules Ready", async || {
        let list = api.list(&Default::default()).await.unwrap();
        let n = list
            .items
            .iter()
            .filter(|r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.common.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if n == 200 {
            Ok(())
        } else {
            Err(format!("{n} of 200 Ready"))
        }
    })
    .await;
    assert_eq!(w.router_rules().len(), 200);
    let counters = w.sim().counters();
    println!(
        "200 rules: {} commits, {} ops, {} configure requests",
        counters.commits, counters.ops_applied, counters.configure_requests
    );
    assert!(
        counters.commits <= 5,
        "200 rules took {} commits",
        counters.commits
    );

    // Every rule added is told once: on its PortRule when its pass was small, in one Event
    // on the VyosRouter for a pass of many (at most five passes for 200 rules: one was).
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(client(&w));
    eventually(20, "an Event for every rule added", async || {
        let list = events.list(&Default::default()).await.unwrap();
        let per_rule = list
            .items
            .iter()
            .filter(|e| {
                e.reason.as_deref() == Some("RuleAdded")
                    && e.regarding.as_ref().and_then(|r| r.namespace.as_deref()) == Some(w.ns())
            })
            .count();
        let summed: Vec<usize> = list
            .items
            .iter()
            .filter(|e| {
                e.reason.as_deref() == Some("RulesProgrammed")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                        == Some(w.router.as_str())
            })
            .filter_map(|e| e.note.as_deref()?.split(' ').next()?.parse().ok())
            .collect();
        let told = per_rule + summed.iter().sum::<usize>();
        if told == 200 && !summed.is_empty() && summed.iter().all(|n| *n > 50) {
            Ok(())
        } else {
            Err(format!("{per_rule} on PortRules, {summed:?} on the router"))
        }
    })
    .await;
}

use futures::StreamExt as _;

// 3. Drift: deleted and altered owned rules come back; a foreign rule stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired_within_one_interval_and_foreign_rules_are_left_alone() {
    let mut w = world("drift").await;
    w.start_operator("a", true).await;
    for (i, n) in ["d-a", "d-b", "d-c"].iter().enumerate() {
        w.portrule(n, standalone(&w, 41000 + i as u16, "10.77.0.50"))
            .await;
    }
    let a = wait_ready_rule(&w, "d-a", 60).await;
    let b = wait_ready_rule(&w, "d-b", 60).await;
    wait_ready_rule(&w, "d-c", 60).await;
    let before = w.router_rules();
    let na = a["status"]["ruleNumber"].as_u64().unwrap().to_string();
    let nb = b["status"]["ruleNumber"].as_u64().unwrap().to_string();
    // A number in our range that none of our rules holds, for the foreign rule.
    let foreign_n = (1000..2000u32)
        .find(|n| !before.contains_key(n))
        .unwrap()
        .to_string();
    let path = |n: &str, rest: &[&str]| {
        let mut p: Vec<String> = ["nat", "destination", "rule", n]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        p.extend(rest.iter().map(|s| (*s).to_owned()));
        p
    };
    w.sim()
        .third_party_edit(vec![
            SimOp::Delete(path(&na, &[])),
            SimOp::Set(path(&nb, &["translation", "port", "9999"])),
            SimOp::Set(path(&foreign_n, &["description", "hand made"])),
            SimOp::Set(path(&foreign_n, &["destination", "port", "2222"])),
            SimOp::Set(path(&foreign_n, &["protocol", "tcp"])),
            SimOp::Set(path(&foreign_n, &["inbound-interface", "name", "eth0"])),
            SimOp::Set(path(&foreign_n, &["translation", "address", "10.9.9.9"])),
        ])
        .unwrap();
    let after_edit = w.router_rules();
    assert!(!after_edit.contains_key(&na.parse().unwrap()));
    eventually(25, "owned rules restored", async || {
        let now = w.router_rules();
        let owned_back = before.iter().all(|(n, r)| now.get(n) == Some(r));
        if owned_back {
            Ok(())
        } else {
            Err(format!("{now:?}"))
        }
    })
    .await;
    let now = w.router_rules();
    let foreign = &now[&foreign_n.parse::<u32>().unwrap()];
    assert_eq!(
        foreign.description.as_deref(),
        Some("hand made"),
        "the foreign rule was touched"
    );
    assert_eq!(foreign.translation.address.as_deref(), Some("10.9.9.9"));
    eventually(10, "vmnet_drift_repaired_total at 2 or more", async || {
        let metrics = w.metrics().await;
        let repaired: f64 = metrics
            .lines()
            .find(|l| l.starts_with("vmnet_drift_repaired_total"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if repaired >= 2.0 {
            Ok(())
        } else {
            Err(format!("{repaired}"))
        }
    })
    .await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client(&w), w.ns());
    eventually(10, "a DriftRepaired Event", async || {
        let list = events.list(&Default::default()).await.unwrap();
        let hit = list.items.iter().any(|e| {
            e.reason.as_deref() == Some("DriftRepaired") && e.type_.as_deref() == Some("Warning")
        });
        if hit {
            Ok(())
        } else {
            Err(format!("{} events", list.items.len()))
        }
    })
    .await;
}

// 4. One rule the router refuses: the others commit, it is CommitFailed, a fix heals it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_rule_fails_alone_with_the_routers_message() {
    let mut w = world("bisect").await;
    w.sim().set_faults(Faults {
        fail_commit_matching: Some("10.77.0.66".into()),
        ..Faults::default()
    });
    w.start_operator("a", true).await;
    for i in 0..9u16 {
        w.portrule(&format!("ok-{i}"), standalone(&w, 42000 + i, "10.77.0.60"))
            .await;
    }
    w.portrule("bad", standalone(&w, 42100, "10.77.0.66")).await;
    for i in 0..9 {
        wait_ready_rule(&w, &format!("ok-{i}"), 60).await;
    }
    let api = w.portrules();
    let bad = eventually(60, "PortRule bad CommitFailed", async || {
        let o = get_json(&api, "bad").await.ok_or("absent")?;
        match condition(&o, "Stalled") {
            Some((s, r, m)) if s == "True" && r == "CommitFailed" => Ok(m),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
    assert!(!bad.is_empty() && bad.contains("refused rule"), "{bad}");
    assert_eq!(w.router_rules().len(), 9);
    // Fix the object: it converges.
    w.portrule("bad", standalone(&w, 42100, "10.77.0.67")).await;
    wait_ready_rule(&w, "bad", 60).await;
    assert_eq!(w.router_rules().len(), 10);
}

// 5. Restart with 200 rules converged: no configure request, no allocation change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_operator_writes_nothing_and_moves_nothing() {
    let mut w = world("restart").await;
    w.start_operator("a", true).await;
    futures::stream::iter(0..200u16)
        .for_each_concurrent(16, |i| {
            let w = &w;
            async move {
                w.portrule(&format!("r-{i}"), standalone(w, 43000 + i, "10.77.0.70"))
                    .await
            }
        })
        .await;
    w.vmnetwork(
        "vm",
        json!({"router": w.router, "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}]}),
    )
    .await;
    wait_ready_vm(&w, "vm", 120).await;
    let api = w.portrules();
    let numbers = || async {
        let list = api.list(&Default::default()).await.unwrap();
        list.items
            .iter()
            .map(|r| (r.name_any(), r.status.as_ref().and_then(|s| s.rule_number)))
            .collect::<BTreeMap<_, _>>()
    };
    eventually(120, "201 rules on the router", async || {
        let n = w.router_rules().len();
        if n == 201 {
            Ok(())
        } else {
            Err(format!("{n}"))
        }
    })
    .await;
    // A long first sync wrote its progress on the router; a finished pass clears it.
    let routers: Api<VyosRouter> = Api::all(client(&w));
    eventually(30, "syncProgress cleared", async || {
        let r = get_json(&routers, &w.router).await.unwrap();
        match r.pointer("/status/syncProgress") {
            None | Some(Value::Null) => Ok(()),
            Some(p) => Err(p.to_string()),
        }
    })
    .await;
    let before = numbers().await;
    let vm_before = get_json(&w.vmnetworks(), "vm").await.unwrap()["status"].clone();
    w.kill_operator("a");
    w.sim().reset_counters();
    w.start_operator("b", true).await;
    // Wait for two full passes of the new operator (each reads the rules once).
    eventually(40, "two passes after the restart", async || {
        let c = w.sim().counters();
        let reads = c.retrieve_requests;
        if reads >= 2 {
            Ok(())
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    let c = w.sim().counters();
    assert_eq!(
        c.configure_requests, 0,
        "the restarted operator wrote: {c:?}"
    );
    assert_eq!(
        numbers().await,
        before,
        "rule numbers changed across the restart"
    );
    let vm_after = get_json(&w.vmnetworks(), "vm").await.unwrap()["status"].clone();
    assert_eq!(vm_after["address"], vm_before["address"]);
    assert_eq!(vm_after["ports"], vm_before["ports"]);
}

// Objects made while no operator runs are reconciled when one starts: its first list wakes
// each of them, not only those a pool or router change would wake (the VmNetwork's address
// is in no pool).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_made_while_no_operator_runs_are_reconciled_when_one_starts() {
    let mut w = world("offline").await;
    let address = format!("10.88.{}.7", rand::random::<u8>());
    w.vmnetwork("vm", json!({"router": w.router, "address": address}))
        .await;
    w.portrule("web", standalone(&w, 44100, "10.77.0.81")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.start_operator("a", true).await;
    let vm = wait_ready(&w.vmnetworks(), "vm", 30).await;
    assert_eq!(vm["status"]["address"], address.as_str());
    wait_ready_rule(&w, "web", 30).await;
}

// 6. Two replicas: only the leader writes; the other takes over when it dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_replica_takes_over_within_the_lease() {
    let mut w = world("leader").await;
    w.start_operator("first", true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.start_operator("second", true).await;
    w.portrule("one", standalone(&w, 44000, "10.77.0.80")).await;
    wait_ready_rule(&w, "one", 60).await;
    let leases: Api<Lease> = Api::namespaced(client(&w), w.ns());
    let holder = |l: Option<Lease>| l.and_then(|l| l.spec).and_then(|s| s.holder_identity);
    assert_eq!(
        holder(leases.get_opt("vmnet-operator").await.unwrap()).as_deref(),
        Some("first")
    );
    let metrics = w.metrics().await;
    let leaders = metrics.lines().filter(|l| *l == "vmnet_leader 1").count();
    let standbys = metrics.lines().filter(|l| *l == "vmnet_leader 0").count();
    assert_eq!(
        (leaders, standbys),
        (1, 1),
        "exactly one leader and one standby:\n{metrics}"
    );

    w.kill_operator("first");
    let killed = Instant::now();
    w.portrule("two", standalone(&w, 44001, "10.77.0.80")).await;
    wait_ready_rule(&w, "two", 60).await;
    let took = killed.elapsed();
    println!("takeover and convergence after {took:?}");
    assert!(took < Duration::from_secs(4 + 15), "takeover took {took:?}");
    assert_eq!(
        holder(leases.get_opt("vmnet-operator").await.unwrap()).as_deref(),
        Some("second")
    );
    assert_eq!(w.router_rules().len(), 2);
}

// 7. Deleting a VmNetwork takes its rules off the router; with the router down the
// finalizer holds and says why, and completes when the router is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_waits_for_the_router_and_then_completes() {
    let mut w = world("delete").await;
    w.start_operator("a", true).await;
    let ports = json!([{"name": "a", "port": 80, "protocol": "tcp"}, {"name": "b", "port": 81, "protocol": "tcp"}]);
    w.vmnetwork("one", json!({"router": w.router, "ports": ports}))
        .await;
    w.vmnetwork("two", json!({"router": w.router, "ports": ports}))
        .await;
    wait_ready_vm(&w, "one", 60).await;
    wait_ready_vm(&w, "two", 60).await;
    assert_eq!(w.router_rules().len(), 4);

    w.vmnetworks()
        .delete("one", &DeleteParams::default())
        .await
        .unwrap();
    eventually(60, "VmNetwork one's rules and PortRules gone", async || {
        let left = w.router_rules().len();
        let pr = w.portrules().list(&Default::default()).await.unwrap();
        let ones = pr
            .items
            .iter()
            .filter(|r| r.name_any().starts_with("one-"))
            .count();
        if left == 2 && ones == 0 {
            Ok(())
        } else {
            Err(format!("{left} rules, {ones} PortRules"))
        }
    })
    .await;

    // Router down: the finalizer holds and the condition says why.
    w.sim.take().unwrap().stop().await;
    w.vmnetworks()
        .delete("two", &DeleteParams::default())
        .await
        .unwrap();
    let api = w.portrules();
    let why = eventually(
        60,
        "a PortRule of two saying the router is unreachable",
        async || {
            let o = get_json(&api, "two-a")
                .await
                .ok_or("PortRule two-a vanished while the router was down")?;
            let conds = o["status"]["conditions"].to_string();
            if conds.contains("RouterUnreachable") {
                Ok(conds)
            } else {
                Err(conds)
            }
        },
    )
    .await;
    assert!(why.contains(&w.router), "{why}");
    assert!(
        get_json(&api, "two-b").await.is_some(),
        "two-b left although its rule is still on the router"
    );

    // Router back (same address, same state): the deletion completes.
    w.sim = Some(start_sim(w.sim_addr, w.state_dir.path().join("sim.json")).await);
    eventually(
        90,
        "two's PortRules gone and the router empty",
        async || {
            let left = w.router_rules().len();
            let pr = api.list(&Default::default()).await.unwrap().items.len();
            if left == 0 && pr == 0 {
                Ok(())
            } else {
                Err(format!("{left} rules, {pr} PortRules"))
            }
        },
    )
    .await;
}

// 8. A rotated API key is picked up without restarting the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_api_key_is_used_without_a_restart() {
    let mut w = world("rotate").await;
    w.start_operator("a", true).await;
    w.portrule("before", standalone(&w, 45000, "10.77.0.90"))
        .await;
    wait_ready_rule(&w, "before", 60).await;
    w.sim().set_api_keys(vec!["rotated-key".into()]);
    w.portrule("during", standalone(&w, 45001, "10.77.0.90"))
        .await;
    let routers: Api<VyosRouter> = Api::all(client(&w));
    let auth = eventually(30, "the router saying AuthFailed", async || {
        let o = get_json(&routers, &w.router).await.unwrap();
        match condition(&o, "Stalled") {
            Some((s, r, m)) if s == "True" && r == "AuthFailed" => Ok(m),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
    assert!(
        !auth.contains("rotated-key") && !auth.contains(KEY),
        "the key leaked into status: {auth}"
    );
    let secrets: Api<Secret> = Api::namespaced(client(&w), w.ns());
    secrets
        .patch(
            "router-api",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"api-key": "rotated-key"}})),
        )
        .await
        .unwrap();
    wait_ready_rule(&w, "during", 60).await;
    assert_eq!(w.router_rules().len(), 2);
}

// 9. A namespaced user cannot forward to another namespace's VM, nor read credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_reach_into_other_namespaces() {
    // Made before the world, so dropped after it: its VmNetwork's finalizer can only be
    // cleared once the operator has stopped.
    let other = TestNamespace::new("tenant-victim").await.unwrap();
    let mut w = world("tenant").await;
    // An address of this run only, outside every pool.
    let victim_ip = format!(
        "10.88.{}.{}",
        rand::random::<u8>(),
        1 + rand::random::<u8>() % 254
    );
    w.start_operator("a", false).await;
    // The victim's VM, fixed address outside every pool the attacker may use.
    apply(
        &client(&w),
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "VmNetwork",
        "metadata": {"name": "victim", "namespace": other.name()},
        "spec": {"router": w.router, "address": victim_ip}}),
    )
    .await;
    // alice may edit vmnet objects in her namespace only.
    let rbac = |kind: &str, body: Value| {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), body.to_string()).unwrap();
        kubectl(&["apply", "-f", file.path().to_str().unwrap()])
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    };
    rbac(
        "Role",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "vmnet-edit", "namespace": w.ns()},
        "rules": [{"apiGroups": ["vmnet.dev"], "resources": ["portrules", "vmnetworks"], "verbs": ["*"]}]}),
    );
    rbac(
        "RoleBinding",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "alice", "namespace": w.ns()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "vmnet-edit"},
        "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]}),
    );
    let alice = vmnet_testkit::impersonating_client("alice", &["system:authenticated"])
        .await
        .unwrap();
    let routers: Api<VyosRouter> = Api::all(alice.clone());
    let denied = routers.get(&w.router).await.unwrap_err();
    assert!(
        matches!(&denied, kube::Error::Api(s) if s.code == 403),
        "{denied:?}"
    );
    let secrets: Api<Secret> = Api::namespaced(alice.clone(), w.ns());
    let denied = secrets.get("router-api").await.unwrap_err();
    assert!(
        matches!(&denied, kube::Error::Api(s) if s.code == 403),
        "{denied:?}"
    );

    let theirs: Api<PortRule> = Api::namespaced(alice, w.ns());
    let rule: PortRule = serde_json::from_value(
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "PortRule",
        "metadata": {"name": "steal"}, "spec": standalone(&w, 46000, &victim_ip)}),
    )
    .unwrap();
    theirs.create(&PostParams::default(), &rule).await.unwrap();
    let api = w.portrules();
    let why = eventually(60, "PortRule steal refused", async || {
        let o = get_json(&api, "steal").await.ok_or("absent")?;
        match condition(&o, "Stalled") {
            Some((s, r, m)) if s == "True" && r == "NamespaceNotAllowed" => Ok(m),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
    assert!(
        why.contains(&victim_ip) && why.contains(other.name()),
        "{why}"
    );
    assert!(
        w.router_rules().is_empty(),
        "a refused rule reached the router"
    );
}

// 10. Exhaustion and a fixed-port conflict: conditions, nothing programmed, healed by a free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhaustion_and_conflicts_stall_until_the_resource_is_freed() {
    let mut w = world("exhaust").await;
    apply(
        &client(&w),
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "PortPool",
        "metadata": {"name": w.portpool, "labels": {TEST_LABEL: w.ns()}},
        "spec": {"router": w.router, "externalAddress": "203.0.113.10", "ports": ["31000-31001"],
                 "autoAssign": true, "allowedNamespaces": [w.ns()]}}),
    )
    .await;
    w.start_operator("a", true).await;
    let two = json!([{"name": "a", "port": 80, "protocol": "tcp"}, {"name": "b", "port": 81, "protocol": "tcp"}]);
    w.vmnetwork("first", json!({"router": w.router, "ports": two}))
        .await;
    let first = wait_ready_vm(&w, "first", 60).await;
    let held = first["status"]["ports"][0]["externalPort"]
        .as_u64()
        .unwrap();

    w.vmnetwork(
        "hungry",
        json!({"router": w.router, "ports": [{"name": "c", "port": 82, "protocol": "tcp"}]}),
    )
    .await;
    w.vmnetwork("clash", json!({"router": w.router, "ports": [
        {"name": "d", "port": 83, "protocol": "tcp", "externalPort": held, "portPoolRef": w.portpool}]})).await;
    let api = w.vmnetworks();
    let stalled = |name: &'static str, reason: &'static str| {
        let api = api.clone();
        async move {
            eventually(60, &format!("{name} Stalled {reason}"), async || {
                let o = get_json(&api, name).await.ok_or("absent")?;
                match condition(&o, "Stalled") {
                    Some((s, r, m)) if s == "True" && r == reason => Ok(m),
                    _ => Err(o["status"].to_string()),
                }
            })
            .await
        }
    };
    let m = stalled("hungry", "PoolExhausted").await;
    assert!(m.contains(&w.portpool), "{m}");
    let m = stalled("clash", "Conflict").await;
    assert!(m.contains("first"), "the conflict names the holder: {m}");
    assert_eq!(
        w.router_rules().len(),
        2,
        "only first's rules are programmed"
    );
    let prs = w.portrules().list(&Default::default()).await.unwrap();
    assert!(
        prs.items.iter().all(|r| r.name_any().starts_with("first-")),
        "a stalled VmNetwork made PortRules"
    );

    // Free one port (first drops port b): the hungry one gets it; clash still waits for
    // port a. Then first goes: clash gets its fixed port.
    w.vmnetwork(
        "first",
        json!({"router": w.router, "ports": [{"name": "a", "port": 80, "protocol": "tcp"}]}),
    )
    .await;
    wait_ready_vm(&w, "hungry", 90).await;
    // The dropped port's PortRule is gone (its rule with it).
    let prs = w.portrules();
    eventually(30, "PortRule first-b removed", async || {
        match get_json(&prs, "first-b").await {
            None => Ok(()),
            Some(o) => Err(o["metadata"].to_string()),
        }
    })
    .await;
    let m = stalled("clash", "Conflict").await;
    assert!(m.contains("first"), "{m}");
    w.vmnetworks()
        .delete("first", &DeleteParams::default())
        .await
        .unwrap();
    let clash = wait_ready_vm(&w, "clash", 90).await;
    assert_eq!(
        clash["status"]["ports"][0]["externalPort"].as_u64(),
        Some(held)
    );
    eventually(
        60,
        "the router holding hungry's and clash's rules only",
        async || {
            let rules = w.router_rules();
            let descs: Vec<String> = rules
                .values()
                .filter_map(|r| r.description.clone())
                .collect();
            let ok = rules.len() == 2
                && descs.iter().any(|d| d.contains("/hungry-c "))
                && descs.iter().any(|d| d.contains("/clash-d "));
            if ok {
                Ok(())
            } else {
                Err(format!("{descs:?}"))
            }
        },
    )
    .await;

    // A pool in use cannot disappear: its deletion waits, naming who holds it.
    let pools: Api<vmnet_api::PortPool> = Api::all(client(&w));
    pools
        .delete(&w.portpool, &DeleteParams::default())
        .await
        .unwrap();
    let held_by = eventually(30, "the PortPool saying who holds it", async || {
        let o = get_json(&pools, &w.portpool)
            .await
            .ok_or("the pool vanished while in use")?;
        match condition(&o, "Reconciling") {
            Some((s, r, m)) if s == "True" && r == "Deleting" => Ok(m),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
    assert!(
        held_by.contains("clash") && held_by.contains("hungry"),
        "{held_by}"
    );
    // Meanwhile it hands out nothing new, not even a port just freed, and the remaining
    // holder keeps what it has.
    w.vmnetworks()
        .delete("hungry", &DeleteParams::default())
        .await
        .unwrap();
    eventually(30, "hungry's port released", async || {
        let o = get_json(&pools, &w.portpool).await.ok_or("pool gone")?;
        match condition(&o, "Reconciling") {
            Some((_, _, m))
                if m.contains("1 allocation(s)")
                    && !m.contains("hungry")
                    && o["status"]["used"] == 1 =>
            {
                Ok(())
            }
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
    w.vmnetwork(
        "late",
        json!({"router": w.router, "ports": [{"name": "e", "port": 84, "protocol": "tcp"}]}),
    )
    .await;
    let m = stalled("late", "PoolDeleting").await;
    assert!(m.contains(&w.portpool), "{m}");
    let o = get_json(&w.vmnetworks(), "clash").await.unwrap();
    assert!(ready(&o), "clash lost its port: {}", o["status"]);
    eventually(30, "only clash's rule on the router", async || {
        match w.router_rules().len() {
            1 => Ok(()),
            n => Err(format!("{n} rules")),
        }
    })
    .await;
    w.vmnetworks()
        .delete("clash", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        60,
        "the PortPool gone once released",
        async || match get_json(&pools, &w.portpool).await {
            None => Ok(()),
            Some(o) => Err(o["status"].to_string()),
        },
    )
    .await;
}

// Orphan policies, validation before any request, commit-confirm and save-to-boot, and a
// hanging router that does not hold up another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_validation_confirm_and_independent_routers() {
    let mut w = world("policy").await;
    let url = w.sim().url();
    apply(
        &client(&w),
        router_obj(
            &w,
            &w.router,
            &url,
            json!({"commitConfirmMinutes": 1, "saveConfig": true}),
        ),
    )
    .await;
    // A second router whose API never answers in time.
    let hung = start_sim(free_addr().await, w.state_dir.path().join("hung.json")).await;
    hung.set_faults(Faults {
        timeout_rate: 1.0,
        ..Faults::default()
    });
    let hung_name = format!("{}-hung", w.router);
    w.extra_routers.push(hung_name.clone());
    apply(
        &client(&w),
        router_obj(&w, &hung_name, &hung.url(), json!({})),
    )
    .await;
    w.start_operator("a", true).await;

    let mut on_hung = standalone(&w, 47001, "10.77.0.95");
    on_hung["router"] = json!(hung_name);
    w.portrule("on-hung", on_hung).await;
    w.portrule("fast", standalone(&w, 47000, "10.77.0.95"))
        .await;
    let started = Instant::now();
    wait_ready_rule(&w, "fast", 30).await;
    println!(
        "the healthy router converged in {:?} beside a hung one",
        started.elapsed()
    );
    let hung_rule = get_json(&w.portrules(), "on-hung").await.unwrap();
    assert!(
        !ready(&hung_rule),
        "a rule on the hung router cannot be Ready"
    );

    // Commit-confirm was confirmed, and the change saved to boot.
    assert!(
        !w.sim().expire_confirm(),
        "a commit-confirm was left pending"
    );
    let saved = w.sim().saved_config();
    assert_eq!(
        parse_rules(NatKind::Destination, &saved["nat"]["destination"])
            .unwrap()
            .len(),
        1
    );

    // A PortRule VyOS would refuse is refused before any request, naming the field.
    let before = w.sim().counters().configure_requests;
    let mut bad = standalone(&w, 47002, "10.77.0.95");
    // A digit first: neither an interface prefix nor a VRF name (vyos-1x src/validators/vrf-name).
    bad["inboundInterface"] = json!("1uplink");
    w.portrule("bad-iface", bad).await;
    let api = w.portrules();
    let why = eventually(30, "bad-iface InvalidRule", async || {
        let o = get_json(&api, "bad-iface").await.ok_or("absent")?;
        match condition(&o, "Stalled") {
            Some((s, r, m)) if s == "True" && r == "InvalidRule" => Ok(m),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
    assert!(why.contains("inbound-interface"), "{why}");
    assert_eq!(
        w.sim().counters().configure_requests,
        before,
        "a request was sent for a rule VyOS would refuse"
    );

    // Orphan policy sync: an owned-looking rule nothing declares goes.
    let free = |taken: &BTreeMap<u32, NatRule>| {
        (1000..2000u32)
            .find(|n| !taken.contains_key(n))
            .unwrap()
            .to_string()
    };
    let ghost = |n: &str, who: &str| {
        let p = |rest: &[&str]| {
            let mut v: Vec<String> = ["nat", "destination", "rule", n]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            v.extend(rest.iter().map(|s| (*s).to_owned()));
            SimOp::Set(v)
        };
        vec![
            p(&["description", &format!("vmnet:{}/{who}", w.ns())]),
            p(&["translation", "address", "10.1.1.1"]),
        ]
    };
    let n1 = free(&w.router_rules());
    w.sim().third_party_edit(ghost(&n1, "ghost")).unwrap();
    eventually(25, "the orphan removed", async || {
        if w.router_rules().contains_key(&n1.parse().unwrap()) {
            Err("still there".into())
        } else {
            Ok(())
        }
    })
    .await;
    // upsert-only: the next orphan stays.
    apply(
        &client(&w),
        router_obj(
            &w,
            &w.router,
            &url,
            json!({"commitConfirmMinutes": 1, "saveConfig": true, "orphanPolicy": "upsert-only"}),
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n2 = free(&w.router_rules());
    w.sim().third_party_edit(ghost(&n2, "ghost2")).unwrap();
    let passes = w.sim().counters().retrieve_requests;
    eventually(25, "two more passes", async || {
        let now = w.sim().counters().retrieve_requests;
        if now >= passes + 2 {
            Ok(())
        } else {
            Err(format!("{now}"))
        }
    })
    .await;
    assert!(
        w.router_rules().contains_key(&n2.parse().unwrap()),
        "upsert-only deleted an orphan"
    );
    hung.stop().await;
}

// TLS is verified by default: an HTTPS router whose certificate nobody vouches for is
// refused (TLSError) until spec.tls.caBundle names it; a missing Secret is named too, and
// the API key shows up in no status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_and_credential_problems_are_named() {
    let mut w = world("tls").await;
    let mut o = SimOptions::for_tests();
    o.tls = true;
    o.api_keys = vec![KEY.to_owned()];
    let https = vyos_sim::start(o).await.unwrap();
    let ca = https.ca_pem().expect("an HTTPS sim has a certificate");
    let name = format!("{}-https", w.router);
    w.extra_routers.push(name.clone());
    let base = router_obj(&w, &name, &https.url(), json!({}));
    let spec = |secret: &str, tls: Option<Value>| {
        let mut r = base.clone();
        r["spec"]["credentialsSecretRef"]["name"] = json!(secret);
        match tls {
            Some(t) => r["spec"]["tls"] = t,
            None => drop(r["spec"].as_object_mut().unwrap().remove("tls")),
        }
        r
    };
    let routers: Api<VyosRouter> = Api::all(client(&w));
    let stalled = |reason: &'static str| {
        let routers = routers.clone();
        let name = name.clone();
        async move {
            eventually(30, &format!("router Stalled {reason}"), async || {
                let o = get_json(&routers, &name).await.ok_or("absent")?;
                match condition(&o, "Stalled") {
                    Some((s, r, m)) if s == "True" && r == reason => Ok(m),
                    _ => Err(o["status"].to_string()),
                }
            })
            .await
        }
    };

    // 1. The Secret does not exist.
    apply(&client(&w), spec("no-such-secret", None)).await;
    let mut on_https = standalone(&w, 47100, "10.77.0.96");
    on_https["router"] = json!(name);
    w.start_operator("a", true).await;
    w.portrule("on-https", on_https).await;
    let m = stalled("SecretMissing").await;
    assert!(m.contains("no-such-secret"), "{m}");

    // 2. The key is there, but the certificate is self-signed and not trusted.
    apply(&client(&w), spec("router-api", None)).await;
    let m = stalled("TLSError").await;
    assert!(m.contains("caBundle"), "the message says what to do: {m}");
    assert_eq!(
        https.counters().configure_requests,
        0,
        "nothing was sent to an unverified router"
    );

    // 3. Trusting its certificate: the rule goes in over verified TLS.
    apply(
        &client(&w),
        spec("router-api", Some(json!({"caBundle": ca}))),
    )
    .await;
    wait_ready_rule(&w, "on-https", 30).await;
    let rules = parse_rules(
        NatKind::Destination,
        &https.running_config()["nat"]["destination"],
    )
    .unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    let router = get_json(&routers, &name).await.unwrap();
    assert!(ready(&router), "{}", router["status"]);

    // The key appears in no status of the objects involved.
    let rule = get_json(&w.portrules(), "on-https").await.unwrap();
    for o in [&router, &rule] {
        assert!(!o["status"].to_string().contains(KEY), "{}", o["status"]);
    }
}

/// The router's network-groups as vyos-sim holds them.
fn router_groups(w: &World) -> BTreeMap<String, vyos_client::nat::NetworkGroup> {
    let cfg = w.sim().running_config();
    let data = cfg
        .pointer("/firewall/group/network-group")
        .cloned()
        .unwrap_or(json!({}));
    vyos_client::nat::parse_network_groups(&data).unwrap()
}

// Several source ranges: a network-group per rule, written and removed with it, kept as
// declared (hand edits reverted), and other groups left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_source_ranges_go_through_a_network_group() {
    let mut w = world("groups").await;
    let office = |n: &str| {
        SimOp::Set(
            ["firewall", "group", "network-group", "OFFICE", "network", n]
                .map(str::to_owned)
                .to_vec(),
        )
    };
    w.sim()
        .third_party_edit(vec![office("203.0.113.0/24")])
        .unwrap();
    w.start_operator("a", true).await;
    let mut spec = standalone(&w, 47200, "10.77.0.97");
    spec["sourceRanges"] = json!(["192.0.2.0/24", "198.51.100.7"]);
    w.portrule("multi", spec.clone()).await;
    let o = wait_ready_rule(&w, "multi", 30).await;
    let n = o["status"]["ruleNumber"].as_u64().unwrap() as u32;
    let name = format!("VMNET-{n}");
    let rule = w.router_rules()[&n].clone();
    assert_eq!(
        rule.source.group.network_group.as_deref(),
        Some(name.as_str())
    );
    assert_eq!(rule.source.address, None);
    let nets = |w: &World| -> Vec<String> {
        router_groups(w)
            .get(&format!("VMNET-{n}"))
            .map(|g| g.networks.iter().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(nets(&w), vec!["192.0.2.0/24", "198.51.100.7/32"]);
    let hash = o["status"]["appliedHash"].clone();

    // A hand edit of the group is reverted within one drift interval, and reported.
    w.sim()
        .third_party_edit(vec![SimOp::Delete(
            [
                "firewall",
                "group",
                "network-group",
                &name,
                "network",
                "192.0.2.0/24",
            ]
            .map(str::to_owned)
            .to_vec(),
        )])
        .unwrap();
    eventually(30, "the group restored", async || {
        let got = nets(&w);
        if got == ["192.0.2.0/24", "198.51.100.7/32"] {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    assert!(w.metrics().await.contains("vmnet_drift_repaired_total"));

    // A third range: one op on the group, the rule untouched, the status follows.
    let before = w.sim().counters().ops_applied;
    spec["sourceRanges"] = json!(["192.0.2.0/24", "198.51.100.7", "203.0.113.64/26"]);
    w.portrule("multi", spec.clone()).await;
    let prs = w.portrules();
    eventually(30, "a third network and a new appliedHash", async || {
        let o = get_json(&prs, "multi").await.ok_or("gone")?;
        if nets(&w).len() == 3 && ready(&o) && o["status"]["appliedHash"] != hash {
            Ok(())
        } else {
            Err(format!("{:?} {}", nets(&w), o["status"]))
        }
    })
    .await;
    assert_eq!(
        w.sim().counters().ops_applied - before,
        1,
        "only the new network is sent"
    );

    // Down to one range: on the rule itself, and the group goes in the same commit.
    spec["sourceRanges"] = json!(["192.0.2.0/24"]);
    w.portrule("multi", spec.clone()).await;
    eventually(30, "one source on the rule, no group", async || {
        let r = w.router_rules().get(&n).cloned().ok_or("no rule")?;
        let groups = router_groups(&w);
        if r.source.address.as_deref() == Some("192.0.2.0/24") && !groups.contains_key(&name) {
            Ok(())
        } else {
            Err(format!("{:?} {:?}", r.source, groups.keys()))
        }
    })
    .await;

    // Back to two, then deleted: rule and group leave together; OFFICE is never touched.
    spec["sourceRanges"] = json!(["192.0.2.0/24", "198.51.100.7"]);
    w.portrule("multi", spec).await;
    eventually(30, "the group back", async || {
        if nets(&w).len() == 2 {
            Ok(())
        } else {
            Err(format!("{:?}", nets(&w)))
        }
    })
    .await;
    w.portrules()
        .delete("multi", &DeleteParams::default())
        .await
        .unwrap();
    eventually(30, "rule and group gone", async || {
        let groups = router_groups(&w);
        if w.router_rules().is_empty() && !groups.contains_key(&name) {
            Ok(())
        } else {
            Err(format!("{:?}", groups.keys()))
        }
    })
    .await;
    let office_now = &router_groups(&w)["OFFICE"];
    assert_eq!(
        office_now.networks.iter().collect::<Vec<_>>(),
        vec!["203.0.113.0/24"]
    );
}

// VyOS 1.4 has no commit-confirm: a router that asks for it is written without it (the rule
// is programmed, not reported CommitFailed), and its status says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_confirm_on_vyos_1_4_is_not_used_and_the_status_says_so() {
    let mut w = world("confirm14").await;
    let mut o = SimOptions::for_tests();
    o.version = vyos_sim::Version::V1_4;
    o.api_keys = vec![KEY.to_owned()];
    let sim14 = vyos_sim::start(o).await.unwrap();
    apply(
        &client(&w),
        router_obj(
            &w,
            &w.router,
            &sim14.url(),
            json!({"commitConfirmMinutes": 2}),
        ),
    )
    .await;
    w.start_operator("a", true).await;
    w.portrule("on-14", standalone(&w, 47100, "10.77.0.96"))
        .await;
    let rule = wait_ready_rule(&w, "on-14", 30).await;
    assert_eq!(condition(&rule, "Ready").unwrap().1, "Programmed");
    assert_eq!(
        parse_rules(
            NatKind::Destination,
            &sim14.running_config()["nat"]["destination"]
        )
        .unwrap()
        .len(),
        1
    );
    let routers: Api<VyosRouter> = Api::all(client(&w));
    let message = eventually(20, "the router's Ready message", async || {
        let r = get_json(&routers, &w.router).await.ok_or("no router")?;
        match condition(&r, "Ready") {
            Some((s, _, m)) if s == "True" => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        message.contains("VyOS 1.4 has no commit-confirm"),
        "{message}"
    );
}
