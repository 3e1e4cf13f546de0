//! HA pairs (issue 14): a VyosRouter with two members gets every owned rule on both,
//! written one member after the other (never both requests in flight at once, by
//! vyos-sim's timestamps); with the second member down the first converges and the
//! router's status says which member lags; when it returns it is caught up without a
//! change by a person. On the real kube-apiserver and vyos-sim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use kube::api::Api;
use serde_json::{Value, json};
use vmnet_api::VyosRouter;
use vyos_client::nat::{NatKind, NatRule, parse_rules};
use vyos_sim::ConfigureRecord;

use common::*;

fn rules_of(sim: &vyos_sim::Sim) -> std::collections::BTreeMap<u32, NatRule> {
    let cfg = sim.running_config();
    parse_rules(
        NatKind::Destination,
        cfg.pointer("/nat/destination").unwrap_or(&Value::Null),
    )
    .unwrap()
}

fn has_port(sim: &vyos_sim::Sim, port: u16) -> bool {
    rules_of(sim)
        .values()
        .any(|r| r.destination.port.as_deref() == Some(port.to_string().as_str()))
}

/// Requests that carried ops and committed.
fn writes(sim: &vyos_sim::Sim) -> Vec<ConfigureRecord> {
    sim.configure_log()
        .into_iter()
        .filter(|r| r.outcome == "committed")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_pair_is_written_one_member_after_the_other_and_a_lagging_member_catches_up() {
    let mut w = world("ha").await;
    let b_addr = free_addr().await;
    let b_state = w.state_dir.path().join("b.json");
    let mut b = Some(start_sim(b_addr, b_state.clone()).await);
    let b_url = b.as_ref().unwrap().url();
    w.reconfigure_router(json!({
        "healthCheckInterval": "5s",
        "members": [{"name": "edge-b", "endpoint": b_url, "tls": {"insecurePlainHttp": true}}]
    }))
    .await;
    w.start_operator("a", true).await;
    w.portrule("web", standalone(&w, 46600, "10.77.0.70")).await;
    wait_ready_rule(&w, "web", 60).await;
    let on_b = eventually(30, "the rule on member b", async || {
        let r = rules_of(b.as_ref().unwrap());
        if r.is_empty() {
            Err("none".to_owned())
        } else {
            Ok(r)
        }
    })
    .await;
    assert_eq!(on_b, w.router_rules(), "the members hold different rules");

    // Three changes: each reaches both members, the first member first, never both
    // requests in flight at once.
    for (i, port) in [46601u16, 46602, 46603].into_iter().enumerate() {
        w.portrule("web", standalone(&w, port, "10.77.0.70")).await;
        eventually(30, &format!("change {i} on both members"), async || {
            if has_port(w.sim(), port) && has_port(b.as_ref().unwrap(), port) {
                Ok(())
            } else {
                Err(format!(
                    "a: {:?}\nb: {:?}",
                    w.router_rules(),
                    rules_of(b.as_ref().unwrap())
                ))
            }
        })
        .await;
    }
    let a_writes = writes(w.sim());
    let b_writes = writes(b.as_ref().unwrap());
    assert!(
        a_writes.len() >= 4 && b_writes.len() >= 4,
        "{a_writes:?}\n{b_writes:?}"
    );
    let mut closest = i64::MAX;
    for x in &a_writes {
        for y in &b_writes {
            let overlap = x.started_ms < y.finished_ms && y.started_ms < x.finished_ms;
            assert!(!overlap, "both members were written at once: {x:?} {y:?}");
            closest = closest.min((y.started_ms as i64 - x.finished_ms as i64).abs());
        }
    }
    // Each change reached the first member before the second.
    for y in &b_writes {
        assert!(
            a_writes.iter().any(|x| x.finished_ms <= y.started_ms),
            "member b was written before member a: {y:?}"
        );
    }
    println!(
        "{} writes to a, {} to b, none overlapping (closest {closest} ms apart)",
        a_writes.len(),
        b_writes.len()
    );
    let routers = Api::<VyosRouter>::all(client(&w));
    let status = eventually(20, "both members synced in status", async || {
        let s = get_json(&routers, &w.router).await.unwrap()["status"].clone();
        let m = &s["members"];
        if m[&w.router]["synced"] == true && m["edge-b"]["synced"] == true {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
    .await;
    assert_eq!(status["members"]["edge-b"]["endpoint"], b_url.as_str());

    // Member b goes down: member a converges all the same, and the status says b lags.
    b.take().unwrap().stop().await;
    w.portrule("web", standalone(&w, 46604, "10.77.0.70")).await;
    eventually(30, "the change on member a", async || {
        if has_port(w.sim(), 46604) {
            Ok(())
        } else {
            Err(format!("{:?}", w.router_rules()))
        }
    })
    .await;
    let why = eventually(30, "member b reported lagging", async || {
        let s = get_json(&routers, &w.router).await.unwrap()["status"].clone();
        let m = &s["members"]["edge-b"];
        if m["synced"] == false && m["reachable"] == false {
            Ok(m["message"].as_str().unwrap_or_default().to_owned())
        } else {
            Err(s.to_string())
        }
    })
    .await;
    assert!(
        why.contains("caught up when it answers") || why.contains("did not answer"),
        "{why}"
    );
    let rule = wait_ready_rule(&w, "web", 30).await;
    assert_eq!(rule["status"]["conditions"][0]["status"], "True");

    // Member b returns with its old config: it is caught up by itself.
    let back = Instant::now();
    let b = start_sim(b_addr, b_state).await;
    assert!(!has_port(&b, 46604), "member b already had the change");
    eventually(30, "member b caught up", async || {
        if has_port(&b, 46604) {
            Ok(())
        } else {
            Err(format!("{:?}", rules_of(&b)))
        }
    })
    .await;
    println!(
        "member b caught up {:?} after it returned (probe 5 s)",
        back.elapsed()
    );
    assert!(back.elapsed() < Duration::from_secs(15));
    assert_eq!(rules_of(&b), w.router_rules());
    eventually(20, "member b synced in status", async || {
        let s = get_json(&routers, &w.router).await.unwrap()["status"].clone();
        if s["members"]["edge-b"]["synced"] == true {
            Ok(())
        } else {
            Err(s.to_string())
        }
    })
    .await;
}
