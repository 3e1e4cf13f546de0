//! The router's health probe (issue 14): a reboot that dropped unsaved rules is noticed
//! within one probe interval and repaired at once, with an Event and a metric; a router
//! that booted its saved config needs no write; and a hung router is reported unreachable
//! within its probe interval plus its timeout without slowing another router down.
//! On the real kube-apiserver and vyos-sim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use kube::api::Api;
use serde_json::{Value, json};
use vmnet_api::VyosRouter;
use vmnet_testkit::kubectl;
use vyos_sim::Faults;

use common::*;

/// Probe every 5 s; the drift check is 10 minutes away, so only the probe can repair.
fn probed(w: &World, name: &str, endpoint: &str, extra: Value) -> Value {
    let mut spec = json!({"healthCheckInterval": "5s", "driftCheckInterval": "10m"});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    router_obj(w, name, endpoint, spec)
}

/// The router's status once the probe has recorded a boot at least `age` ago.
async fn booted_before(w: &World, name: &str, age: Duration) -> Value {
    let routers = Api::<VyosRouter>::all(client(w));
    eventually(60, "a boot time older than the wait", async || {
        let r = get_json(&routers, name).await.ok_or("absent")?;
        let boot = r["status"]["bootTime"]
            .as_str()
            .ok_or_else(|| r["status"].to_string())?;
        let boot: k8s_openapi::jiff::Timestamp = boot.parse().map_err(|e| format!("{e}"))?;
        let up = k8s_openapi::jiff::Timestamp::now().duration_since(boot);
        if up.as_secs() >= age.as_secs() as i64 {
            Ok(r)
        } else {
            Err(format!("up for {up:?}"))
        }
    })
    .await
}

fn reboot_events(router: &str) -> String {
    kubectl(&[
        "get",
        "events",
        "-A",
        "--field-selector",
        &format!("involvedObject.name={router},reason=RouterRebooted"),
        "-o",
        "jsonpath={range .items[*]}{.type} {.reason}: {.message}{\"\\n\"}{end}",
    ])
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebooted_router_gets_its_unsaved_rules_back_within_a_probe_interval() {
    let mut w = world("reboot").await;
    apply(
        &client(&w),
        probed(&w, &w.router, &w.sim().url(), json!({})),
    )
    .await;
    w.start_operator("a", true).await;
    w.portrule("web", standalone(&w, 46200, "10.77.0.30")).await;
    wait_ready_rule(&w, "web", 60).await;
    let status = booted_before(&w, &w.router, Duration::from_secs(8)).await;
    assert_eq!(status["status"]["reachable"], true, "{}", status["status"]);
    // The router's status warns that a reboot drops what is not saved.
    let (_, _, message) = condition(&status, "Ready").unwrap();
    assert!(message.contains("not saved to boot"), "{message}");
    let reboots = |n: u8| format!("vmnet_router_reboots_total{{router=\"{}\"}} {n}", w.router);
    assert!(
        w.metrics().await.contains(&reboots(0)),
        "{}",
        w.metrics().await
    );
    assert!(!w.router_rules().is_empty());

    // saveConfig is off: the reboot loses the rule.
    w.sim().reboot();
    let rebooted = Instant::now();
    assert!(
        w.router_rules().is_empty(),
        "the reboot kept an unsaved rule"
    );
    eventually(30, "the rule back on the router", async || {
        if w.router_rules().is_empty() {
            Err("not yet".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    let took = rebooted.elapsed();
    println!("rules back {took:?} after the reboot (probe interval 5 s)");
    // One probe interval, plus one pass (debounce 150 ms, a read and a commit).
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(
        w.metrics().await.contains(&reboots(1)),
        "{}",
        w.metrics().await
    );
    let events = eventually(30, "a RouterRebooted Event", async || {
        let e = reboot_events(&w.router);
        if e.contains("Warning RouterRebooted") {
            Ok(e)
        } else {
            Err(e)
        }
    })
    .await;
    assert!(events.contains("saveConfig"), "{events}");
    // The boot on record moved to the new boot.
    let routers = Api::<VyosRouter>::all(client(&w));
    let after = get_json(&routers, &w.router).await.unwrap();
    assert_ne!(
        after["status"]["bootTime"], status["status"]["bootTime"],
        "{}",
        after["status"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_that_saves_its_config_needs_no_write_after_a_reboot() {
    let mut w = world("rebootsaved").await;
    apply(
        &client(&w),
        probed(&w, &w.router, &w.sim().url(), json!({"saveConfig": true})),
    )
    .await;
    w.start_operator("a", true).await;
    w.portrule("web", standalone(&w, 46210, "10.77.0.31")).await;
    wait_ready_rule(&w, "web", 60).await;
    let status = booted_before(&w, &w.router, Duration::from_secs(8)).await;
    let (_, _, message) = condition(&status, "Ready").unwrap();
    assert!(!message.contains("not saved to boot"), "{message}");
    let before = w.router_rules();
    w.sim().reset_counters();
    w.sim().reboot();
    assert_eq!(w.router_rules(), before, "the saved config lacks the rule");
    let reboots = format!("vmnet_router_reboots_total{{router=\"{}\"}} 1", w.router);
    eventually(20, "the reboot seen", async || {
        let m = w.metrics().await;
        if m.contains(&reboots) { Ok(()) } else { Err(m) }
    })
    .await;
    // The pass the reboot started reads the router (at least one read after the probe's).
    eventually(20, "the pass after the reboot", async || {
        let c = w.sim().counters();
        if c.retrieve_requests >= 1 {
            Ok(())
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c = w.sim().counters();
    assert_eq!(
        c.configure_requests, 0,
        "a write after a reboot into the saved config: {c:?}"
    );
    assert_eq!(w.router_rules(), before);
}

/// Mean of a histogram's observations for `router` in an exposition.
fn mean(metrics: &str, name: &str, router: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        let key = format!("{name}_{suffix}{{router=\"{router}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
    };
    (value("sum"), value("count"))
}

/// Seconds from a change of `rule` to its new port on `w`'s router.
async fn sync_time(w: &World, rule: &str, port: u16) -> f64 {
    w.portrule(rule, standalone(w, port, "10.77.0.40")).await;
    let started = Instant::now();
    eventually(30, "the change on the router", async || {
        let rules = w.router_rules();
        if rules
            .values()
            .any(|r| r.destination.port.as_deref() == Some(port.to_string().as_str()))
        {
            Ok(())
        } else {
            Err(format!("{rules:?}"))
        }
    })
    .await;
    started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_router_is_reported_in_time_and_slows_no_other() {
    let mut w = world("hung").await;
    apply(
        &client(&w),
        probed(&w, &w.router, &w.sim().url(), json!({})),
    )
    .await;
    let other = start_sim(free_addr().await, w.state_dir.path().join("other.json")).await;
    let hung_name = format!("{}-b", w.router);
    w.extra_routers.push(hung_name.clone());
    apply(&client(&w), probed(&w, &hung_name, &other.url(), json!({}))).await;
    w.start_operator("a", true).await;
    w.portrule("fast", standalone(&w, 46300, "10.77.0.40"))
        .await;
    wait_ready_rule(&w, "fast", 60).await;
    let routers = Api::<VyosRouter>::all(client(&w));
    for r in [&w.router, &hung_name] {
        eventually(30, "reachable", async || {
            let o = get_json(&routers, r).await.ok_or("absent")?;
            if o["status"]["reachable"] == true {
                Ok(())
            } else {
                Err(o["status"].to_string())
            }
        })
        .await;
    }
    // Before: the healthy router's sync time and probe latency.
    let probe = "vmnet_router_probe_duration_seconds";
    let mut before = Vec::new();
    for i in 0..3 {
        before.push(sync_time(&w, "fast", 46301 + i).await);
    }
    let (s0, c0) = mean(&w.metrics().await, probe, &w.router);

    // The other router hangs: every request is held past the 3 s deadline.
    other.set_faults(Faults {
        timeout_rate: 1.0,
        ..Faults::default()
    });
    let hung_at = Instant::now();
    eventually(20, "the hung router unreachable", async || {
        let o = get_json(&routers, &hung_name).await.ok_or("absent")?;
        if o["status"]["reachable"] == false {
            Ok(())
        } else {
            Err(o["status"].to_string())
        }
    })
    .await;
    let noticed = hung_at.elapsed();
    println!("hung router reported unreachable after {noticed:?} (interval 5 s + timeout 3 s)");
    assert!(noticed < Duration::from_secs(10), "took {noticed:?}");
    assert!(
        w.metrics()
            .await
            .contains(&format!("vmnet_router_up{{router=\"{hung_name}\"}} 0")),
        "vmnet_router_up of the hung router is not 0"
    );

    // During: the same measurements, while the hung router's probe and writer wait.
    let mut during = Vec::new();
    for i in 0..3 {
        during.push(sync_time(&w, "fast", 46310 + i).await);
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (s1, c1) = mean(&w.metrics().await, probe, &w.router);
    let mean_of = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let sync_ratio = mean_of(&during) / mean_of(&before);
    let probe_before = s0 / c0.max(1.0);
    let probe_during = (s1 - s0) / (c1 - c0).max(1.0);
    println!(
        "healthy router beside a hung one: sync {:.3} s -> {:.3} s (ratio {sync_ratio:.2}); \
         probe {:.4} s -> {:.4} s (ratio {:.2}, {} probes)",
        mean_of(&before),
        mean_of(&during),
        probe_before,
        probe_during,
        probe_during / probe_before,
        c1 - c0
    );
    assert!(
        c1 > c0,
        "the healthy router was not probed while the other hung"
    );
    // Noise on a shared machine, not the hung router's 3 s deadline, bounds the change.
    assert!(
        sync_ratio < 3.0,
        "sync slowed by {sync_ratio:.2}x: {before:?} -> {during:?}"
    );
    assert!(
        probe_during < 1.0,
        "the healthy router's probe took {probe_during:.3} s beside a hung one"
    );
    other.set_faults(Faults::default());
    eventually(20, "the hung router reachable again", async || {
        let o = get_json(&routers, &hung_name).await.ok_or("absent")?;
        if o["status"]["reachable"] == true {
            Ok(())
        } else {
            Err(o["status"].to_string())
        }
    })
    .await;
}
