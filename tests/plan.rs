//! `vmnet-operator plan` and the control knobs (issue 13), on the real kube-apiserver and
//! vyos-sim: the plan lists exactly what the next pass does and writes nothing; a paused
//! router or rule is left alone; Orphan leaves rules behind; a reconcile request repairs
//! drift at once; every change leaves an audit trail without secrets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use vmnet_api::{IpPool, PortPool, PortRule, VmNetwork, VyosRouter};
use vmnet_testkit::control_plane;
use vyos_sim::SimOp;

use common::*;

/// Runs `vmnet-operator plan` with `args`; its exit code and standard output.
fn plan(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmnet-operator"))
        .arg("plan")
        .args(args)
        .env("KUBECONFIG", &control_plane().kubeconfig)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(KEY), "plan printed the API key:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.contains(KEY), "plan printed the API key:\n{stdout}");
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

fn plan_json(router: &str) -> (i32, Value) {
    let (code, out) = plan(&["--router", router, "-o", "json", "--detailed-exitcode"]);
    let json = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (code, json)
}

/// Every resourceVersion of the test's objects (namespaced and cluster-scoped), and the
/// namespace's Event count: a write to any of them changes this.
async fn cluster_state(w: &World) -> (BTreeMap<String, String>, usize) {
    let c = client(w);
    let mut out = BTreeMap::new();
    let lp = ListParams::default();
    let mine = [w.router.clone(), w.ippool.clone(), w.portpool.clone()];
    macro_rules! versions {
        ($api:expr, $kind:literal) => {
            for o in $api.list(&lp).await.unwrap() {
                let name = o.metadata.name.clone().unwrap();
                if o.metadata.namespace.is_none() && !mine.contains(&name) {
                    continue; // another test's
                }
                out.insert(
                    format!("{}/{}", $kind, o.metadata.name.clone().unwrap()),
                    o.metadata.resource_version.clone().unwrap(),
                );
            }
        };
    }
    versions!(Api::<PortRule>::namespaced(c.clone(), w.ns()), "PortRule");
    versions!(Api::<VmNetwork>::namespaced(c.clone(), w.ns()), "VmNetwork");
    versions!(Api::<VyosRouter>::all(c.clone()), "VyosRouter");
    versions!(Api::<IpPool>::all(c.clone()), "IpPool");
    versions!(Api::<PortPool>::all(c.clone()), "PortPool");
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(c, w.ns());
    (out, events.list(&lp).await.unwrap().items.len())
}

fn number_of(o: &Value) -> u32 {
    o["status"]["ruleNumber"].as_u64().unwrap() as u32
}

fn rule_path(n: u32, rest: &[&str]) -> Vec<String> {
    let mut p: Vec<String> = ["nat", "destination", "rule", &n.to_string()]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    p.extend(rest.iter().map(|s| (*s).to_owned()));
    p
}

async fn annotate_router(w: &World, key: &str, value: Option<&str>) {
    let api: Api<VyosRouter> = Api::all(client(w));
    api.patch(
        &w.router,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {key: value}}})),
    )
    .await
    .unwrap();
}

async fn router_json(w: &World) -> Value {
    let api: Api<VyosRouter> = Api::all(client(w));
    serde_json::to_value(api.get(&w.router).await.unwrap()).unwrap()
}

/// Done when 1 and 6: a router with an add, a change, a removal, a refusal and a drift;
/// `plan` lists exactly those and writes nothing; the next pass sends exactly its ops; then
/// `plan` has nothing to do; the change leaves a log line, Events and `status.lastChange`,
/// and the API key appears in none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_lists_exactly_what_the_next_pass_does_and_writes_nothing() {
    logged();
    let mut w = world("plan").await;
    w.start_operator("op-1", true).await;
    for (name, port) in [
        ("same", 31001),
        ("changed", 31002),
        ("gone", 31003),
        ("drifted", 31004),
    ] {
        w.portrule(name, standalone(&w, port, "10.77.0.10")).await;
    }
    for name in ["same", "changed", "gone", "drifted"] {
        wait_ready_rule(&w, name, 30).await;
    }
    // A clash with "same" is refused (and stays so).
    w.portrule("clash", standalone(&w, 31001, "10.77.0.11"))
        .await;
    let drifted = number_of(&get_json(&w.portrules(), "drifted").await.unwrap());
    eventually(20, "clash refused", async || {
        let o = get_json(&w.portrules(), "clash").await.ok_or("absent")?;
        match condition(&o, "Stalled") {
            Some((s, r, _)) if s == "True" && r == "Conflict" => Ok(()),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;

    // The operator stops; meanwhile the cluster and the router change.
    w.kill_operator("op-1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.portrule("added", standalone(&w, 31005, "10.77.0.12"))
        .await;
    let mut changed = standalone(&w, 31002, "10.77.0.10");
    changed["internalPort"] = json!(9090);
    w.portrule("changed", changed).await;
    w.portrules()
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    w.sim()
        .third_party_edit(vec![SimOp::Set(rule_path(
            drifted,
            &["translation", "port", "7777"],
        ))])
        .unwrap();

    let before = cluster_state(&w).await;
    let sim_before = w.sim().counters();
    let (code, json) = plan_json(&w.router);
    assert_eq!(code, 2, "changes pending: {json:#}");
    let routers = json["routers"].as_array().unwrap();
    assert_eq!(routers.len(), 1, "{json:#}");
    let r = &routers[0];
    let actions: BTreeMap<String, String> = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["owner"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
                x["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect: BTreeMap<String, String> = [
        ("added", "add"),
        ("changed", "change"),
        ("gone", "remove"),
        ("drifted", "change"),
        ("clash", "refused"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(actions, expect, "{json:#}");
    let s = &r["summary"];
    assert_eq!(
        (
            &s["add"],
            &s["change"],
            &s["remove"],
            &s["refused"],
            &s["drifted"]
        ),
        (&json!(1), &json!(2), &json!(1), &json!(1), &json!(1)),
        "{json:#}"
    );
    let planned_ops = r["ops"].as_array().unwrap().len() as u64;
    assert_eq!(json!(planned_ops), s["ops"]);
    // The text says the same, a line per rule and the summary.
    let (code, text) = plan(&["--router", &w.router, "--detailed-exitcode"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(&format!(
            "{}: 1 to add, 2 to change, 1 to remove, 1 refused, 1 drifted ({planned_ops} ops)",
            w.router
        )),
        "{text}"
    );
    assert!(text.contains("translation port: 8080 -> 9090"), "{text}");
    assert!(text.contains("translation port: 7777 -> 8080"), "{text}");
    // Nothing was written: no object changed, no Event, no configure request.
    assert_eq!(cluster_state(&w).await, before, "plan wrote to the cluster");
    let sim_after = w.sim().counters();
    assert_eq!(sim_after.configure_requests, sim_before.configure_requests);
    assert_eq!(sim_after.ops_applied, sim_before.ops_applied);

    // The next passes send exactly the planned ops.
    w.start_operator("op-2", true).await;
    wait_ready_rule(&w, "added", 30).await;
    eventually(30, "converged", async || match plan_json(&w.router) {
        (0, _) => Ok(()),
        (c, j) => Err(format!("exit {c}: {j}")),
    })
    .await;
    let sent = w.sim().counters().ops_applied - sim_before.ops_applied;
    assert_eq!(sent, planned_ops, "the passes sent other ops than planned");

    // The audit trail.
    let status = router_json(&w).await["status"].clone();
    let last = &status["lastChange"];
    assert_eq!(last["outcome"], "Succeeded", "{status:#}");
    assert!(last["ops"].as_i64().unwrap() > 0 && last["requests"].as_i64().unwrap() > 0);
    let events = vmnet_testkit::kubectl(&[
        "get",
        "events",
        "-n",
        w.ns(),
        "-o",
        "jsonpath={range .items[*]}{.reason}:{.involvedObject.name}{\"\\n\"}{end}",
    ])
    .unwrap();
    for want in [
        "RuleAdded:added",
        "RuleChanged:changed",
        "DriftRepaired:drifted",
    ] {
        assert!(events.contains(want), "no {want} Event:\n{events}");
    }
    let lines: Vec<String> = logged()
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l)| l.clone())
        .collect();
    let ours: Vec<&String> = lines.iter().filter(|l| l.contains(&w.router)).collect();
    assert!(
        ours.iter().any(|l| l.contains("configure request")
            && l.contains("request=")
            && l.contains(&format!("{}/added", w.ns()))),
        "no audit line for the change:\n{ours:#?}"
    );
    assert!(
        ours.iter()
            .any(|l| l.contains("router changed") && l.contains("outcome=\"Succeeded\"")),
        "no summary line:\n{ours:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains(KEY)),
        "the API key is in the log"
    );
}

/// Done when 3: a paused router gets no configure request while its rules change and it
/// drifts; its status counts what waits; unpausing converges it. A paused PortRule's rule
/// stays as it is while another changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_router_or_rule_is_left_alone() {
    let mut w = world("pause").await;
    w.start_operator("op-1", true).await;
    w.portrule("a", standalone(&w, 32001, "10.77.0.20")).await;
    w.portrule("b", standalone(&w, 32002, "10.77.0.20")).await;
    let a = number_of(&wait_ready_rule(&w, "a", 30).await);
    wait_ready_rule(&w, "b", 30).await;

    annotate_router(&w, "vmnet.dev/paused", Some("true")).await;
    eventually(20, "router paused", async || {
        let r = router_json(&w).await;
        match condition(&r, "Reconciling") {
            Some((s, reason, _)) if s == "True" && reason == "Paused" => Ok(()),
            _ => Err(r["status"].to_string()),
        }
    })
    .await;
    let requests = w.sim().counters().configure_requests;
    let mut b = standalone(&w, 32002, "10.77.0.20");
    b["internalPort"] = json!(9999);
    w.portrule("b", b.clone()).await;
    w.sim()
        .third_party_edit(vec![SimOp::Set(rule_path(
            a,
            &["translation", "port", "1234"],
        ))])
        .unwrap();
    annotate_router(&w, "vmnet.dev/reconcile-requested-at", Some("paused-1")).await;
    let pending = eventually(20, "pending ops counted", async || {
        let r = router_json(&w).await;
        let st = &r["status"];
        if st["lastHandledReconcileAt"] == "paused-1" && st["pendingOps"].as_i64() > Some(0) {
            Ok(st["pendingOps"].as_i64().unwrap())
        } else {
            Err(st.to_string())
        }
    })
    .await;
    assert_eq!(pending, 2, "b's port and a's repair");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        w.sim().counters().configure_requests,
        requests,
        "a paused router was written to"
    );
    assert_eq!(
        w.router_rules()[&a].translation.port.as_deref(),
        Some("1234")
    );

    // Unpaused: converged.
    annotate_router(&w, "vmnet.dev/paused", None).await;
    eventually(20, "converged after unpausing", async || {
        let rules = w.router_rules();
        let ok = rules[&a].translation.port.as_deref() == Some("8080")
            && rules
                .values()
                .any(|r| r.translation.port.as_deref() == Some("9999"));
        if ok {
            Ok(())
        } else {
            Err(format!("{rules:?}"))
        }
    })
    .await;

    // A paused PortRule: its rule stays as it is while another changes.
    w.portrules()
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"vmnet.dev/paused": "true"}}})),
        )
        .await
        .unwrap();
    let mut a_spec = standalone(&w, 32001, "10.77.0.20");
    a_spec["internalPort"] = json!(4444);
    w.portrule("a", a_spec).await;
    b["internalPort"] = json!(5555);
    w.portrule("b", b).await;
    eventually(20, "b changed", async || {
        let rules = w.router_rules();
        if rules
            .values()
            .any(|r| r.translation.port.as_deref() == Some("5555"))
        {
            Ok(())
        } else {
            Err(format!("{rules:?}"))
        }
    })
    .await;
    assert_eq!(
        w.router_rules()[&a].translation.port.as_deref(),
        Some("8080"),
        "a paused rule was changed"
    );
    // The PortRule controller marks the new generation Programming; the writer's next pass
    // says Paused.
    eventually(10, "a says Paused", async || {
        let o = get_json(&w.portrules(), "a").await.ok_or("absent")?;
        match condition(&o, "Reconciling") {
            Some((s, r, _)) if s == "True" && r == "Paused" => Ok(()),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
}

/// Done when 4 and 5: `deletionPolicy: Orphan` on a VmNetwork leaves its rules on the router
/// and no later pass removes them; a reconcile request repairs a hand edit at once, well
/// inside the drift interval, and is echoed in the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_rules_stay_and_a_reconcile_request_repairs_at_once() {
    let mut w = world("orphan").await;
    // A long drift interval: only the request can explain a quick repair.
    let api: Api<VyosRouter> = Api::all(client(&w));
    api.patch(
        &w.router,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"driftCheckInterval": "10m"}})),
    )
    .await
    .unwrap();
    w.start_operator("op-1", true).await;
    w.vmnetwork(
        "vm",
        json!({"router": w.router, "deletionPolicy": "Orphan",
               "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"},
                         {"name": "web", "port": 80, "protocol": "tcp"}]}),
    )
    .await;
    wait_ready_vm(&w, "vm", 40).await;
    w.portrule("keep", standalone(&w, 33001, "10.77.0.30"))
        .await;
    let keep = number_of(&wait_ready_rule(&w, "keep", 30).await);
    let before = w.router_rules();
    assert_eq!(before.len(), 3);

    // A hand edit, then a request: repaired within seconds, the value echoed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.sim()
        .third_party_edit(vec![SimOp::Set(rule_path(
            keep,
            &["translation", "port", "1"],
        ))])
        .unwrap();
    annotate_router(
        &w,
        "vmnet.dev/reconcile-requested-at",
        Some("2026-12-02T01:00:00Z"),
    )
    .await;
    eventually(10, "repaired at once", async || {
        let r = router_json(&w).await;
        let repaired = w.router_rules()[&keep].translation.port.as_deref() == Some("8080");
        if repaired && r["status"]["lastHandledReconcileAt"] == "2026-12-02T01:00:00Z" {
            Ok(())
        } else {
            Err(r["status"].to_string())
        }
    })
    .await;

    // Orphan: the VM goes, its rules stay, unowned, through later passes.
    w.vmnetworks()
        .delete("vm", &DeleteParams::default())
        .await
        .unwrap();
    eventually(30, "VmNetwork and its PortRules gone", async || {
        let vm = get_json(&w.vmnetworks(), "vm").await;
        let rules = w
            .portrules()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len();
        if vm.is_none() && rules == 1 {
            Ok(())
        } else {
            Err(format!("vm {vm:?}, {rules} PortRules"))
        }
    })
    .await;
    annotate_router(&w, "vmnet.dev/reconcile-requested-at", Some("after-orphan")).await;
    eventually(10, "a pass after the deletion", async || {
        let r = router_json(&w).await;
        if r["status"]["lastHandledReconcileAt"] == "after-orphan" {
            Ok(())
        } else {
            Err(r["status"].to_string())
        }
    })
    .await;
    let after = w.router_rules();
    assert_eq!(after.len(), 3, "the orphaned rules were removed: {after:?}");
    for (n, r) in &before {
        let now = &after[n];
        assert_eq!(now.translation, r.translation);
        if *n != keep {
            let d = now.description.as_deref().unwrap_or_default();
            assert!(!d.starts_with("vmnet:"), "still marked as ours: {d}");
        }
    }
}

/// Done when 2: `plan -f` on manifests not yet applied (a new VmNetwork, a changed port,
/// an object left out with --prune) shows the rules applying them would produce, with the
/// addresses and ports today's pools would give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_with_manifests_shows_what_applying_them_would_do() {
    let mut w = world("planf").await;
    w.start_operator("op-1", true).await;
    w.portrule("web", standalone(&w, 34001, "10.77.0.40")).await;
    w.portrule("old", standalone(&w, 34002, "10.77.0.40")).await;
    wait_ready_rule(&w, "web", 30).await;
    wait_ready_rule(&w, "old", 30).await;
    let dir = tempfile::tempdir().unwrap();
    let mut web = standalone(&w, 34011, "10.77.0.40");
    web["router"] = json!(w.router);
    let manifests = format!(
        "apiVersion: vmnet.dev/v1alpha1\nkind: VmNetwork\nmetadata:\n  name: fresh\n  namespace: {ns}\n\
         spec:\n  router: {router}\n  ports:\n  - name: ssh\n    port: 22\n    protocol: tcp\n---\n\
         apiVersion: vmnet.dev/v1alpha1\nkind: PortRule\nmetadata:\n  name: web\n  namespace: {ns}\nspec: {web}\n",
        ns = w.ns(),
        router = w.router,
    );
    std::fs::write(dir.path().join("change.yaml"), manifests).unwrap();
    // The operator's own passes write statuses: stop it, so any write would be plan's.
    w.kill_operator("op-1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cluster_state(&w).await;
    let (code, text) = plan(&[
        "--router",
        &w.router,
        "-f",
        dir.path().to_str().unwrap(),
        "--prune",
        "--detailed-exitcode",
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("  + rule ") && l.ends_with(&format!("{}/fresh-ssh", w.ns()))),
        "the new VM's rule: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("  - rule ") && l.ends_with(&format!("{}/old", w.ns()))),
        "the pruned rule: {text}"
    );
    assert!(
        text.contains("destination port: 34001 -> 34011"),
        "the changed port: {text}"
    );
    assert!(
        text.contains("1 to add, 1 to change, 1 to remove"),
        "{text}"
    );
    // What the pools would give: the JSON shows the new rule's ops with the address and
    // port the pools hand out first (10.77.0.x, 30000).
    let (_, out) = plan(&[
        "--router",
        &w.router,
        "-f",
        dir.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    let ops = json["routers"][0]["ops"].to_string();
    assert!(ops.contains("\"30000\""), "the pool's first port: {ops}");
    assert!(
        ops.contains("\"10.77.0."),
        "an address from the IpPool: {ops}"
    );
    assert_eq!(
        cluster_state(&w).await,
        before,
        "plan -f wrote to the cluster"
    );
}

/// Issue 16, item 4: a configure request that outlives the client's deadline may still
/// commit (VyOS goes on with it, and so does vyos-sim). The writer reads the router again
/// instead of reporting it unreachable, waits for it rather than resending, and converges
/// with exactly the ops `plan` predicted: none sent twice, no commit refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_timed_out_is_read_again_and_never_sent_twice() {
    logged();
    let mut w = world("slow").await;
    for i in 0..5u16 {
        w.portrule(&format!("r{i}"), standalone(&w, 35000 + i, "10.77.0.50"))
            .await;
    }
    let (code, json) = plan_json(&w.router);
    assert_eq!(code, 2, "{json:#}");
    let planned = json["routers"][0]["summary"]["ops"].as_u64().unwrap();
    // Every commit takes longer than the operator's 3 s deadline.
    w.sim().set_faults(vyos_sim::Faults {
        commit_delay_ms: 3500,
        ..Default::default()
    });
    w.start_operator("op-1", true).await;
    for i in 0..5 {
        wait_ready_rule(&w, &format!("r{i}"), 60).await;
    }
    let c = w.sim().counters();
    assert_eq!(c.ops_applied, planned, "ops sent twice (or missing): {c:?}");
    assert_eq!(c.failed_commits, 0, "{c:?}");
    let lines: Vec<String> = logged()
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, l)| l.contains(&w.router))
        .map(|(_, l)| l.clone())
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("CommitUnconfirmed")),
        "the timeout was not seen: {lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("reason=\"RouterUnreachable\"")),
        "a slow commit was reported as an unreachable router: {lines:#?}"
    );
    assert_eq!(router_json(&w).await["status"]["reachable"], true);
}

// The DHCP and forward-filter steps show in `plan` too, from the same pure code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_dhcp_mapping_and_accept_rule_changes() {
    let mut w = world("planextras").await;
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let base = "service dhcp-server shared-network-name LAN subnet 10.77.0.0/24";
    w.sim()
        .third_party_edit(
            [
                "interfaces ethernet eth1 address 10.77.0.1/24".to_owned(),
                format!("{base} subnet-id 1"),
                format!("{base} range 0 start 10.77.0.200"),
                format!("{base} range 0 stop 10.77.0.250"),
                "firewall ipv4 forward filter default-action drop".to_owned(),
            ]
            .iter()
            .map(|l| SimOp::Set(words(l)))
            .collect(),
        )
        .unwrap();
    w.start_operator("op", true).await;
    let ports = json!([{"name": "ssh", "port": 22, "protocol": "tcp"}]);
    w.vmnetwork(
        "vm",
        json!({"router": w.router, "address": "10.77.0.41", "mac": "52:54:00:00:41:01", "ports": ports}),
    )
    .await;
    wait_ready_vm(&w, "vm", 60).await;
    let rule = wait_ready_rule(&w, "vm-ssh", 30).await;
    let fw = 5000 + number_of(&rule) - 1000;
    // With the operator stopped: a new MAC, and the forward filter's accept rules asked for.
    w.kill_operator("op");
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.vmnetwork(
        "vm",
        json!({"router": w.router, "address": "10.77.0.41", "mac": "52:54:00:00:41:02", "ports": ports}),
    )
    .await;
    w.reconfigure_router(
        json!({"firewall": {"mode": "per-rule", "ruleRange": {"start": 5000, "end": 5999}}}),
    )
    .await;
    let before = w.sim().counters();
    let (code, text) = plan(&["--router", &w.router, "--detailed-exitcode"]);
    assert_eq!(code, 2, "{text}");
    let me = format!("vmnet.{}.vm", w.ns());
    assert!(
        text.contains(&format!(
            "  ~ dhcp mapping {me}: 10.77.0.41 52:54:00:00:41:01 -> 10.77.0.41 52:54:00:00:41:02"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("  + accept rule {fw}: vmnet:{}/vm-ssh", w.ns())),
        "{text}"
    );
    let (_, out) = plan(&["--router", &w.router, "-o", "json"]);
    let json: Value = serde_json::from_str(&out).unwrap();
    let r = &json["routers"][0];
    assert_eq!(r["dhcp"]["ops"].as_array().unwrap().len(), 1, "{r}");
    assert!(
        r["firewall"]["ops"]
            .to_string()
            .contains(&format!("\"{fw}\"")),
        "{r}"
    );
    let after = w.sim().counters();
    assert_eq!(
        (after.configure_requests, after.commits),
        (before.configure_requests, before.commits),
        "plan wrote to the router"
    );
}

/// Issue 16: a lone change goes with the plan made while the writer waited out its quiet
/// period (the observe and plan steps run then, off the change's latency), and sends the
/// one op it needs. A wake-up during that wait makes the pass plan again, so under load
/// one of three edits is enough to show that the plan made ahead is used at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_change_goes_with_the_plan_made_during_the_quiet_period() {
    logged();
    let mut w = world("ahead").await;
    w.start_operator("op-1", true).await;
    w.portrule("web", standalone(&w, 32001, "10.77.0.20")).await;
    let number = number_of(&wait_ready_rule(&w, "web", 30).await);
    let mark = logged().lock().unwrap().len();
    for port in [8081u16, 8082, 8083] {
        let mut spec = standalone(&w, 32001, "10.77.0.20");
        spec["internalPort"] = json!(port);
        w.portrule("web", spec).await;
        eventually(30, "the new port on the router", async || {
            let on_router = w
                .router_rules()
                .get(&number)
                .and_then(|r| r.translation.port.clone());
            if on_router.as_deref() == Some(port.to_string().as_str()) {
                Ok(())
            } else {
                Err(format!("{on_router:?}"))
            }
        })
        .await;
        // Let the statuses the change brings settle before the next one.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let passes: Vec<String> = logged().lock().unwrap()[mark..]
        .iter()
        .map(|(_, l)| l.clone())
        .filter(|l| l.contains("planned_ahead=") && l.contains(&w.router))
        .collect();
    let lone: Vec<&String> = passes.iter().filter(|l| l.contains("ops=1 ")).collect();
    assert_eq!(lone.len(), 3, "one pass of one op per edit:\n{passes:#?}");
    assert!(
        lone.iter().any(|l| l.contains("planned_ahead=true")),
        "no edit used the plan made ahead:\n{lone:#?}"
    );
}
