//! Expiring forwards (issue 15, item 4), on the real kube-apiserver and vyos-sim: a forward
//! whose `expiresAt` passes leaves the router within a few seconds of that instant (the
//! router's drift check is set to 10 minutes, so only the writer's expiry wake-up can do
//! it), the object stays and says `Expired`, and moving `expiresAt` (or removing it) brings
//! the rule back on the same rule number and external port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use vmnet_testkit::kubectl;

use common::*;

/// The longest an expired rule may stay on the router after its instant: the writer wakes
/// at the instant, waits one debounce period (150 ms here) and makes one pass.
const AT_MOST: Duration = Duration::from_secs(3);

/// A whole second at least `secs` from now, as `expiresAt` takes it.
fn in_seconds(secs: i64) -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second() + secs + 1).unwrap()
}

/// The router's drift check set far beyond the test, so that only the expiry can remove
/// a rule in time.
async fn slow_drift_check(w: &World) {
    let url = w.sim().url();
    apply(
        &client(w),
        router_obj(w, &w.router, &url, json!({"driftCheckInterval": "10m"})),
    )
    .await;
}

/// Waits until rule `number` has left the router, and returns how long after `at` that was
/// seen (negative: before `at`, which fails the test). Polls the simulator's running config
/// every 20 ms.
async fn left_at(w: &World, number: u32, at: Timestamp) -> SignedDuration {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if !w.router_rules().contains_key(&number) {
            return Timestamp::now().duration_since(at);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("rule {number} was still on the router 30 s after waiting began (expiresAt {at})");
}

/// Waits until rule `number` is on the router, and returns how long that took.
async fn back_within(w: &World, number: u32, since: Instant) -> Duration {
    eventually(
        30,
        &format!("rule {number} back on the router"),
        async || {
            if w.router_rules().contains_key(&number) {
                Ok(since.elapsed())
            } else {
                Err(format!("{:?}", w.router_rules().keys().collect::<Vec<_>>()))
            }
        },
    )
    .await
}

/// The PortRule's True condition as (type, reason, message), and its rule number.
async fn rule_state(w: &World, name: &str) -> (String, String, String, u32, Value) {
    let o = get_json(&w.portrules(), name).await.unwrap();
    let (t, r, m) = ["Ready", "Reconciling", "Stalled"]
        .iter()
        .find_map(|t| {
            condition(&o, t)
                .filter(|c| c.0 == "True")
                .map(|c| (t.to_string(), c.1, c.2))
        })
        .unwrap_or_default();
    let n = o["status"]["ruleNumber"].as_u64().unwrap_or_default() as u32;
    (t, r, m, n, o)
}

/// Waits until PortRule `name` says Expired for its current generation, and returns it.
async fn wait_expired(w: &World, name: &str) -> Value {
    eventually(15, &format!("{name} Expired"), async || {
        let (t, r, _, _, o) = rule_state(w, name).await;
        let current = o["status"]["observedGeneration"] == o["metadata"]["generation"];
        if t == "Reconciling" && r == "Expired" && current {
            Ok(o)
        } else {
            Err(o["status"].to_string())
        }
    })
    .await
}

fn drift_repairs(metrics: &str, router: &str) -> f64 {
    let prefix = format!("vmnet_drift_repaired_total{{router=\"{router}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

// 1. A standalone PortRule: on the router until its instant, off within a few seconds
//    after it, Expired (the object stays, with its number), shown by kubectl; moved into
//    the future, back at once on the same number and port, with no drift reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portrule_leaves_the_router_when_it_expires_and_comes_back_when_moved() {
    let mut w = world("expiry").await;
    slow_drift_check(&w).await;
    w.start_operator("a", true).await;
    // A forward without expiry first: the operator is up, and it must stay throughout.
    w.portrule("keep", standalone(&w, 31001, "10.77.0.11"))
        .await;
    wait_ready_rule(&w, "keep", 60).await;

    let at = in_seconds(6);
    let mut spec = standalone(&w, 31002, "10.77.0.12");
    spec["expiresAt"] = json!(at.to_string());
    w.portrule("tmp", spec.clone()).await;
    let o = wait_ready_rule(&w, "tmp", 20).await;
    let number = o["status"]["ruleNumber"].as_u64().unwrap() as u32;
    let keep = rule_state(&w, "keep").await.3;
    assert!(
        Timestamp::now() < at,
        "the rule must be Ready before it expires; make the test's margin larger"
    );
    let on_router = w.router_rules()[&number].clone();
    assert_eq!(on_router.destination.port.as_deref(), Some("31002"));
    // kubectl shows the expiry as written.
    let table = kubectl(&["get", "portrules", "-n", w.ns()]).unwrap();
    assert!(
        table.lines().next().unwrap().contains("EXPIRES")
            && table
                .lines()
                .any(|l| l.starts_with("tmp ") && l.contains(&at.to_string())),
        "{table}"
    );

    let late = left_at(&w, number, at).await;
    println!("rule {number} left the router {late} after its expiresAt {at}");
    assert!(
        late >= SignedDuration::ZERO,
        "rule {number} left the router {late} before its expiresAt"
    );
    assert!(
        late < SignedDuration::try_from(AT_MOST).unwrap(),
        "rule {number} left the router {late} after its expiresAt: not woken at the instant"
    );
    assert!(
        w.router_rules().contains_key(&keep),
        "only the expired rule leaves"
    );

    let o = wait_expired(&w, "tmp").await;
    let (.., message, kept, _) = rule_state(&w, "tmp").await;
    assert_eq!(
        message,
        format!("expired at {at}; move spec.expiresAt into the future to bring it back")
    );
    assert_eq!(kept, number, "the rule number is kept while expired");
    assert_eq!(condition(&o, "Ready").unwrap().0, "False");
    assert_eq!(condition(&o, "Stalled").unwrap().0, "False");
    assert!(
        o["status"].get("appliedHash").is_none(),
        "the hash of the removed rule goes: {}",
        o["status"]
    );
    let table = kubectl(&["get", "portrules", "-n", w.ns()]).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("tmp ") && l.contains("Expired")),
        "{table}"
    );

    // Moved an hour into the future: back at once, same number, same port, not drift.
    spec["expiresAt"] = json!(in_seconds(3600).to_string());
    let moved = Instant::now();
    w.portrule("tmp", spec).await;
    let took = back_within(&w, number, moved).await;
    println!("rule {number} was back on the router {took:?} after expiresAt moved");
    assert!(took < AT_MOST, "back after {took:?}");
    assert_eq!(
        w.router_rules()[&number],
        on_router,
        "the same rule as before"
    );
    let o = wait_ready_rule(&w, "tmp", 10).await;
    assert_eq!(o["status"]["ruleNumber"], json!(number));
    assert_eq!(o["status"]["external"], json!("203.0.113.20:31002/tcp"));
    assert_eq!(
        drift_repairs(&w.metrics().await, &w.router),
        0.0,
        "a rule that comes back is added, not repaired"
    );
}

// 2. A VmNetwork port with expiresAt: passed on to its PortRule, which expires like any
//    other; the VmNetwork stays Ready (its other port is forwarded) and shows the port as
//    expired, keeping its external port; without expiresAt, the port is back on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vmnetwork_port_expires_and_keeps_its_external_port() {
    let mut w = world("expiry-vm").await;
    slow_drift_check(&w).await;
    w.start_operator("a", true).await;
    // Warm up: the first VmNetwork of a fresh operator may take a few seconds.
    w.vmnetwork(
        "warm",
        json!({"router": w.router, "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}]}),
    )
    .await;
    wait_ready_vm(&w, "warm", 60).await;

    let at = in_seconds(7);
    let ports = |expiry: Option<Timestamp>| {
        let mut debug = json!({"name": "debug", "port": 9000, "protocol": "tcp"});
        if let Some(t) = expiry {
            debug["expiresAt"] = json!(t.to_string());
        }
        json!({"router": w.router,
               "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}, debug]})
    };
    w.vmnetwork("vm", ports(Some(at))).await;
    let vm = wait_ready_vm(&w, "vm", 20).await;
    assert!(
        Timestamp::now() < at,
        "the VmNetwork must be Ready before its port expires"
    );
    let child = get_json(&w.portrules(), "vm-debug").await.unwrap();
    assert_eq!(
        child["spec"]["expiresAt"],
        json!(at.to_string()),
        "passed on"
    );
    let number = child["status"]["ruleNumber"].as_u64().unwrap() as u32;
    let port_of = |vm: &Value, name: &str| -> Value {
        vm["status"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    let external = port_of(&vm, "debug")["externalPort"].clone();
    assert!(external.is_u64(), "{vm}");

    let late = left_at(&w, number, at).await;
    println!("VmNetwork port debug (rule {number}) left the router {late} after {at}");
    assert!(late >= SignedDuration::ZERO && late < SignedDuration::try_from(AT_MOST).unwrap());
    wait_expired(&w, "vm-debug").await;

    // The VmNetwork: Ready for its forwarded port, the expired one shown as such and held.
    let vm = eventually(15, "vm shows debug expired", async || {
        let vm = get_json(&w.vmnetworks(), "vm").await.unwrap();
        if port_of(&vm, "debug")["expired"] == json!(true) {
            Ok(vm)
        } else {
            Err(vm["status"].to_string())
        }
    })
    .await;
    assert!(ready(&vm), "{}", vm["status"]);
    let (_, reason, message) = condition(&vm, "Ready").unwrap();
    assert_eq!(reason, "Programmed");
    assert!(
        message.starts_with("1 port(s) forwarded; expired: debug at ")
            && message.contains(&at.to_string()),
        "{message}"
    );
    let debug = port_of(&vm, "debug");
    assert_eq!(debug["externalPort"], external, "the external port is kept");
    assert_eq!(debug["ready"], json!(false));
    let endpoints = vm["status"]["endpoints"].as_str().unwrap();
    assert!(
        endpoints.contains(&format!("debug=203.0.113.10:{external}/tcp (expired)")),
        "{endpoints}"
    );
    assert!(w.router_rules().values().any(|r| {
        r.description
            .as_deref()
            .is_some_and(|d| d.contains("/vm-ssh"))
    }));

    // expiresAt removed from the port: back at once on the same number and port.
    let moved = Instant::now();
    w.vmnetwork("vm", ports(None)).await;
    let took = back_within(&w, number, moved).await;
    println!("VmNetwork port debug was back on the router {took:?} after expiresAt was removed");
    assert!(took < AT_MOST, "back after {took:?}");
    assert_eq!(
        w.router_rules()[&number].destination.port.as_deref(),
        Some(external.to_string().as_str())
    );
    let vm = eventually(15, "vm Ready with both ports", async || {
        let vm = get_json(&w.vmnetworks(), "vm").await.unwrap();
        match condition(&vm, "Ready") {
            Some((s, _, m)) if s == "True" && m == "2 port(s) forwarded" => Ok(vm),
            _ => Err(vm["status"].to_string()),
        }
    })
    .await;
    assert_eq!(port_of(&vm, "debug")["externalPort"], external);
    assert!(port_of(&vm, "debug").get("expired").is_none());
}
