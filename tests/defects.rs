//! Defects found by testing as users do (issue 11), each kept fixed by a test on the real
//! kube-apiserver and vyos-sim: tenant isolation decided by holdings, tcp_udp ports held
//! once, readiness that never runs ahead of the router, a silent router reported within
//! its timeout, stalled objects that hold nothing, and no warnings for normal events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use vmnet_api::PortRule;
use vmnet_testkit::{TestNamespace, kubectl};
use vyos_sim::Faults;

use common::*;

fn rbac(body: Value) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body.to_string()).unwrap();
    kubectl(&["apply", "-f", file.path().to_str().unwrap()]).unwrap();
}

async fn wait_stalled(api: &Api<impl KubeObj>, name: &str, reason: &str, secs: u64) -> String {
    eventually(secs, &format!("{name} Stalled {reason}"), async || {
        let o = get_json(api, name).await.ok_or("absent")?;
        match condition(&o, "Stalled") {
            Some((s, r, m)) if s == "True" && r == reason => Ok(m),
            _ => Err(o["status"].to_string()),
        }
    })
    .await
}

trait KubeObj:
    kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug
{
}
impl<K> KubeObj for K where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug
{
}

// 1. A VmNetwork that merely asks for another tenant's address gets nothing, and gives its
//    namespace no right to forward to that address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_another_tenants_address_grants_nothing() {
    let other = TestNamespace::new("victim").await.unwrap();
    let mut w = world("bypass").await;
    let c = client(&w);
    let victim_ip = format!(
        "10.88.{}.{}",
        rand::random::<u8>(),
        1 + rand::random::<u8>() % 254
    );
    // A pool both tenants may use, and the victim's second VM in it.
    let shared = format!("{}-shared", w.ippool);
    let octet = 1 + rand::random::<u8>() % 250;
    apply(
        &c,
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "IpPool",
        "metadata": {"name": shared, "labels": {TEST_LABEL: w.ns()}},
        "spec": {"addresses": [format!("10.89.{octet}.0/28")], "allowedNamespaces": [w.ns(), other.name()]}}),
    )
    .await;
    let pooled_ip = format!("10.89.{octet}.5");
    w.start_operator("a", false).await;
    for (name, ip) in [("victim", &victim_ip), ("victim-pooled", &pooled_ip)] {
        apply(
            &c,
            json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "VmNetwork",
            "metadata": {"name": name, "namespace": other.name()},
            "spec": {"router": w.router, "address": ip}}),
        )
        .await;
        let theirs = Api::<vmnet_api::VmNetwork>::namespaced(c.clone(), other.name());
        wait_ready(&theirs, name, 60).await;
    }
    rbac(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "vmnet-edit", "namespace": w.ns()},
        "rules": [{"apiGroups": ["vmnet.dev"], "resources": ["portrules", "vmnetworks"], "verbs": ["*"]}]}),
    );
    rbac(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "mallory", "namespace": w.ns()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "vmnet-edit"},
        "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}]}),
    );
    let mallory = vmnet_testkit::impersonating_client("mallory", &["system:authenticated"])
        .await
        .unwrap();
    let vms: Api<vmnet_api::VmNetwork> = Api::namespaced(mallory.clone(), w.ns());
    let rules: Api<PortRule> = Api::namespaced(mallory, w.ns());
    for (i, ip) in [&victim_ip, &pooled_ip].into_iter().enumerate() {
        // The decoy asks for the victim's address...
        let decoy = serde_json::from_value(json!({"apiVersion": "vmnet.dev/v1alpha1",
            "kind": "VmNetwork", "metadata": {"name": format!("decoy-{i}")},
            "spec": {"router": w.router, "address": ip}}))
        .unwrap();
        vms.create(&PostParams::default(), &decoy).await.unwrap();
        let why = wait_stalled(&w.vmnetworks(), &format!("decoy-{i}"), "Conflict", 60).await;
        assert!(why.contains(other.name()), "{why}");
        // ...and a rule forwards to it.
        let rule = serde_json::from_value(json!({"apiVersion": "vmnet.dev/v1alpha1",
            "kind": "PortRule", "metadata": {"name": format!("steal-{i}")},
            "spec": standalone(&w, 46000 + i as u16, ip)}))
        .unwrap();
        rules.create(&PostParams::default(), &rule).await.unwrap();
        let why = wait_stalled(
            &w.portrules(),
            &format!("steal-{i}"),
            "NamespaceNotAllowed",
            60,
        )
        .await;
        assert!(
            why.contains(ip.as_str()) && why.contains(other.name()),
            "{why}"
        );
    }
    // Several passes later (drift interval 10 s in tests, every change nudges) still nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..2 {
        let o = get_json(&w.portrules(), &format!("steal-{i}"))
            .await
            .unwrap();
        assert!(!ready(&o), "steal-{i} became Ready: {}", o["status"]);
    }
    assert!(
        w.router_rules().is_empty(),
        "a stolen forward reached the router: {:?}",
        w.router_rules()
    );
    for name in ["victim", "victim-pooled"] {
        let theirs = Api::<vmnet_api::VmNetwork>::namespaced(c.clone(), other.name());
        let _ = theirs.delete(name, &DeleteParams::default()).await;
    }
    // Deleted first, then its finalizer dropped: the other way round, the operator could
    // add the finalizer again before the deletion and be gone before removing it.
    let _ = kubectl(&[
        "delete",
        &format!("ippool/{shared}"),
        "--ignore-not-found",
        "--wait=false",
    ]);
    let _ = kubectl(&[
        "patch",
        &format!("ippool/{shared}"),
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
}

fn vm_ports(o: &Value) -> Vec<(String, u64, Option<String>)> {
    o.pointer("/status/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or_default().to_owned(),
                        p["externalPort"].as_u64().unwrap_or_default(),
                        p["portPool"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

// 2. A pool that names no protocols serves tcp_udp; a fixed tcp_udp port inside it is
//    claimed there (so it is never handed out again); no pool for a protocol says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_udp_ports_are_held_once_and_refusals_say_why() {
    let mut w = world("tcpudp").await;
    // The world's pool: 203.0.113.10:30000-30999, autoAssign, no protocols named. Narrow it
    // to two ports so the automatic one must avoid the fixed one.
    apply(
        &client(&w),
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "PortPool",
        "metadata": {"name": w.portpool, "labels": {TEST_LABEL: w.ns()}},
        "spec": {"router": w.router, "externalAddress": "203.0.113.10", "ports": ["30000-30001"],
                 "autoAssign": true, "allowedNamespaces": [w.ns()]}}),
    )
    .await;
    w.start_operator("a", true).await;
    w.vmnetwork(
        "fixed",
        json!({"router": w.router, "ports": [
            {"name": "dns", "port": 53, "protocol": "tcp_udp", "externalPort": 30000}]}),
    )
    .await;
    let fixed = wait_ready_vm(&w, "fixed", 60).await;
    assert_eq!(
        vm_ports(&fixed),
        [("dns".to_owned(), 30000, Some(w.portpool.clone()))],
        "the fixed port is held in the pool"
    );
    assert!(
        fixed["status"]["endpoints"] == "dns=203.0.113.10:30000/tcp_udp",
        "{}",
        fixed["status"]
    );
    w.vmnetwork(
        "auto",
        json!({"router": w.router, "ports": [{"name": "dns", "port": 53, "protocol": "tcp_udp"}]}),
    )
    .await;
    let auto = wait_ready_vm(&w, "auto", 60).await;
    assert_eq!(vm_ports(&auto)[0].1, 30001, "{}", auto["status"]);
    // The pool is full: a third is refused for that reason, holding nothing.
    w.vmnetwork(
        "third",
        json!({"router": w.router, "ports": [{"name": "dns", "port": 53, "protocol": "tcp"}]}),
    )
    .await;
    wait_stalled(&w.vmnetworks(), "third", "PoolExhausted", 60).await;
    let rules = w.router_rules();
    assert_eq!(rules.len(), 2, "{rules:?}");
    let ports: Vec<_> = rules
        .values()
        .map(|r| r.destination.port.clone().unwrap_or_default())
        .collect();
    assert!(
        ports.contains(&"30000".to_owned()) && ports.contains(&"30001".to_owned()),
        "{ports:?}"
    );
    let pools = Api::<vmnet_api::PortPool>::all(client(&w));
    pool_used(&pools, &w.portpool, 2).await;

    // A pool that offers only tcp and udp: tcp_udp requests say why they cannot be had.
    w.vmnetworks()
        .delete("third", &DeleteParams::default())
        .await
        .unwrap();
    apply(
        &client(&w),
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "PortPool",
        "metadata": {"name": w.portpool, "labels": {TEST_LABEL: w.ns()}},
        "spec": {"router": w.router, "externalAddress": "203.0.113.10", "ports": ["30000-30009"],
                 "protocols": ["tcp", "udp"], "autoAssign": true, "allowedNamespaces": [w.ns()]}}),
    )
    .await;
    w.vmnetwork(
        "needs-both",
        json!({"router": w.router, "ports": [{"name": "dns", "port": 53, "protocol": "tcp_udp"}]}),
    )
    .await;
    let why = wait_stalled(&w.vmnetworks(), "needs-both", "InvalidRequest", 60).await;
    assert!(
        why.contains("offers tcp_udp") && why.contains(&w.portpool),
        "{why}"
    );
    assert!(!why.contains("no PortPool has autoAssign"), "{why}");
    w.vmnetwork(
        "fixed-both",
        json!({"router": w.router, "ports": [
            {"name": "dns", "port": 53, "protocol": "tcp_udp", "externalPort": 30005}]}),
    )
    .await;
    let why = wait_stalled(&w.vmnetworks(), "fixed-both", "InvalidRequest", 60).await;
    assert!(
        why.contains("30005/tcp_udp") && why.contains(&w.portpool),
        "{why}"
    );
    let o = get_json(&w.vmnetworks(), "fixed-both").await.unwrap();
    assert!(o["status"]["endpoints"].is_null(), "{}", o["status"]);
    assert!(
        w.router_rules()
            .values()
            .all(|r| r.destination.port.as_deref() != Some("30005")),
        "a refused fixed port reached the router"
    );
}

// 3 and 4. While a change is on its way to a slow router, neither the PortRule nor its
//    VmNetwork says Ready for the new generation; both say Reconciling at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_router() {
    let mut w = world("ready").await;
    w.start_operator("a", true).await;
    w.vmnetwork(
        "web",
        json!({"router": w.router, "address": "10.77.0.10", "ports": [
            {"name": "https", "port": 443, "protocol": "tcp", "externalPort": 30443}]}),
    )
    .await;
    let vm = wait_ready_vm(&w, "web", 60).await;
    // Built now (from the Go module proxy, once per run), not in the middle of the change.
    assert_eq!(kstatus(&[&vm]), ["Current"]);
    w.sim().set_faults(Faults {
        commit_delay_ms: 2000,
        ..Faults::default()
    });
    let started = Instant::now();
    w.vmnetwork(
        "web",
        json!({"router": w.router, "address": "10.77.0.10", "ports": [
            {"name": "https", "port": 8443, "protocol": "tcp", "externalPort": 30443}]}),
    )
    .await;
    let on_router = |w: &World| {
        w.router_rules()
            .values()
            .any(|r| r.translation.port.as_deref() == Some("8443"))
    };
    let (mut saw_rule_programming, mut saw_vm_reconciling) = (false, false);
    let mut saw_in_progress = false;
    loop {
        let vm = get_json(&w.vmnetworks(), "web").await.unwrap();
        let pr = get_json(&w.portrules(), "web-https").await.unwrap();
        let programmed = on_router(&w);
        let current = |o: &Value| o["status"]["observedGeneration"] == o["metadata"]["generation"];
        let vm_done = ready(&vm) && current(&vm) && vm["metadata"]["generation"] == 2;
        let pr_done = ready(&pr) && current(&pr) && pr["spec"]["internalPort"] == 8443;
        assert!(
            !vm_done || programmed,
            "VmNetwork Ready before the router: {}",
            vm["status"]
        );
        assert!(
            !pr_done || programmed,
            "PortRule Ready before the router: {}",
            pr["status"]
        );
        // What Flux and kpt see: Current only once the router has it.
        let ks = kstatus(&[&vm, &pr]);
        let new_gen = vm["metadata"]["generation"] == 2 && pr["spec"]["internalPort"] == 8443;
        if new_gen && !programmed {
            assert_ne!(
                ks[0], "Current",
                "kstatus: VmNetwork Current before the router: {}",
                vm["status"]
            );
            assert_ne!(
                ks[1], "Current",
                "kstatus: PortRule Current before the router: {}",
                pr["status"]
            );
            if ks.iter().all(|s| s == "InProgress") {
                saw_in_progress = true;
            }
        }
        if pr["spec"]["internalPort"] == 8443
            && current(&pr)
            && condition(&pr, "Reconciling").is_some_and(|c| c.0 == "True" && c.1 == "Programming")
        {
            saw_rule_programming = true;
        }
        if current(&vm) && condition(&vm, "Reconciling").is_some_and(|c| c.0 == "True") {
            saw_vm_reconciling = true;
        }
        if vm_done && pr_done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never converged: {}",
            vm["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        saw_rule_programming,
        "the PortRule never said Reconciling/Programming for the new generation"
    );
    assert!(
        saw_vm_reconciling,
        "the VmNetwork never said Reconciling for its new generation"
    );
    assert!(
        saw_in_progress,
        "kstatus never saw both InProgress while the change was on its way"
    );
    let vm = get_json(&w.vmnetworks(), "web").await.unwrap();
    let pr = get_json(&w.portrules(), "web-https").await.unwrap();
    assert_eq!(kstatus(&[&vm, &pr]), ["Current", "Current"]);
}

// 5. A router that stops answering is reported within one request timeout (3 s in tests),
//    not after retries, backoff or the drift interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_router_is_reported_within_its_timeout() {
    let mut w = world("silent").await;
    w.start_operator("a", true).await;
    w.portrule("one", standalone(&w, 46100, "10.77.0.20")).await;
    // An address no pool of this namespace covers: refused for its own reason.
    w.portrule("refused", standalone(&w, 46110, "10.99.0.5"))
        .await;
    wait_ready_rule(&w, "one", 60).await;
    let routers = Api::<vmnet_api::VyosRouter>::all(client(&w));
    wait_ready(&routers, &w.router, 30).await;
    let up = |v: u8| format!("vmnet_router_up{{router=\"{}\"}} {v}", w.router);
    assert!(w.metrics().await.contains(&up(1)), "{}", w.metrics().await);
    w.sim().set_faults(Faults {
        timeout_rate: 1.0,
        ..Faults::default()
    });
    let started = Instant::now();
    // A change starts a pass at once (debounce 150 ms).
    w.portrule("one", standalone(&w, 46101, "10.77.0.20")).await;
    let why = eventually(30, "router unreachable", async || {
        let o = get_json(&routers, &w.router).await.ok_or("absent")?;
        match condition(&o, "Reconciling") {
            Some((s, r, m)) if s == "True" && r == "RouterUnreachable" => Ok(m),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
    let took = started.elapsed();
    println!("router reported unreachable {took:?} after the change (timeout 3 s)");
    assert!(took < Duration::from_millis(5500), "took {took:?}: {why}");
    let r = get_json(&routers, &w.router).await.unwrap();
    assert_eq!(r["status"]["reachable"], false, "{}", r["status"]);
    assert!(
        w.metrics().await.contains(&up(0)),
        "vmnet_router_up is not 0"
    );
    // A rule refused for its own reason keeps saying so while the router is silent.
    let refused = eventually(30, "PortRule refused", async || {
        let o = get_json(&w.portrules(), "refused").await.ok_or("absent")?;
        match condition(&o, "Stalled") {
            Some((s, r, _)) if s == "True" && r == "NamespaceNotAllowed" => Ok(o),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
    w.portrule("one", standalone(&w, 46102, "10.77.0.20")).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let o = get_json(&w.portrules(), "refused").await.unwrap();
    assert_eq!(
        condition(&o, "Stalled").map(|c| c.1),
        Some("NamespaceNotAllowed".to_owned()),
        "the router's trouble hid the rule's own refusal: {} (was {})",
        o["status"],
        refused["status"]
    );
    w.sim().set_faults(Faults::default());
    wait_ready_rule(&w, "one", 60).await;
}

// 6. A VmNetwork that cannot have everything holds nothing new: no endpoints, no ports
//    counted in the pool; one that had everything keeps it while a change cannot be met.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_vmnetworks_hold_nothing_they_cannot_use() {
    let mut w = world("allornothing").await;
    w.start_operator("a", true).await;
    let pools = Api::<vmnet_api::PortPool>::all(client(&w));
    // No such IpPool: the address cannot be had, so neither may the ports be.
    w.vmnetwork(
        "nowhere",
        json!({"router": w.router, "ipPoolRef": "no-such-pool", "ports": [
            {"name": "ssh", "port": 22, "protocol": "tcp"},
            {"name": "web", "port": 80, "protocol": "tcp", "externalPort": 30080}]}),
    )
    .await;
    let why = wait_stalled(&w.vmnetworks(), "nowhere", "InvalidRequest", 60).await;
    assert!(
        why.contains("no-such-pool") && why.contains("holds no address or port"),
        "{why}"
    );
    let o = get_json(&w.vmnetworks(), "nowhere").await.unwrap();
    assert_eq!(kstatus(&[&o]), ["Failed"], "Flux fails fast on Stalled");
    assert!(o["status"]["endpoints"].is_null(), "{}", o["status"]);
    assert!(o["status"]["ports"].is_null(), "{}", o["status"]);
    assert!(o["status"]["address"].is_null(), "{}", o["status"]);
    pool_used(&pools, &w.portpool, 0).await;
    // Another VM can have the port the stalled one asked for.
    w.vmnetwork(
        "web",
        json!({"router": w.router, "ports": [
            {"name": "web", "port": 80, "protocol": "tcp", "externalPort": 30080}]}),
    )
    .await;
    let web = wait_ready_vm(&w, "web", 60).await;
    let rule_before = w.router_rules();
    assert_eq!(rule_before.len(), 1);
    // A change web cannot have (a port another VM holds) keeps what it has, rule included.
    w.vmnetwork(
        "other",
        json!({"router": w.router, "ports": [
            {"name": "alt", "port": 8080, "protocol": "tcp", "externalPort": 30081}]}),
    )
    .await;
    wait_ready_vm(&w, "other", 60).await;
    w.vmnetwork(
        "web",
        json!({"router": w.router, "ports": [
            {"name": "web", "port": 80, "protocol": "tcp", "externalPort": 30080},
            {"name": "alt", "port": 8080, "protocol": "tcp", "externalPort": 30081}]}),
    )
    .await;
    let why = wait_stalled(&w.vmnetworks(), "web", "Conflict", 60).await;
    assert!(
        why.contains("keeps the address and ports it held before"),
        "{why}"
    );
    let now = get_json(&w.vmnetworks(), "web").await.unwrap();
    assert_eq!(now["status"]["address"], web["status"]["address"]);
    assert_eq!(
        now["status"]["endpoints"], web["status"]["endpoints"],
        "{}",
        now["status"]
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rules = w.router_rules();
    assert_eq!(rules.len(), 2, "web's rule and other's stay: {rules:?}");
    pool_used(&pools, &w.portpool, 2).await;
}

/// Waits until the PortPool's status counts `used` ports (counts follow allocations
/// within the pool's 10 s refresh).
async fn pool_used(pools: &Api<vmnet_api::PortPool>, name: &str, used: u64) {
    eventually(30, &format!("PortPool {name} used = {used}"), async || {
        let p = get_json(pools, name).await.ok_or("absent")?;
        if p["status"]["used"] == used {
            Ok(())
        } else {
            Err(p["status"].to_string())
        }
    })
    .await;
}

// 8. Normal events (start-up, deleting VmNetworks and their PortRules) log no warning about
//    finalizers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizer_races_are_not_warnings() {
    let log = logged();
    let mut w = world("quiet").await;
    for i in 0..6 {
        w.vmnetwork(
            &format!("vm-{i}"),
            json!({"router": w.router, "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}]}),
        )
        .await;
    }
    w.start_operator("a", true).await;
    for i in 0..6 {
        wait_ready_vm(&w, &format!("vm-{i}"), 90).await;
    }
    for i in 0..6 {
        w.vmnetworks()
            .delete(&format!("vm-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    eventually(60, "everything deleted", async || {
        let left = w
            .vmnetworks()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len()
            + w.portrules()
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .len();
        if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} objects left"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bad: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(level, l)| *level <= tracing::Level::WARN && l.contains("finalizer"))
        .map(|(_, l)| l.clone())
        .collect();
    assert!(bad.is_empty(), "warnings about finalizers: {bad:#?}");
}
