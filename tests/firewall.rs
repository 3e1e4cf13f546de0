//! Forward-filter accept rules (issue 15): in per-rule mode every programmed PortRule has
//! exactly one accept rule with its protocol, internal address and port and its sources (two
//! source ranges restrict both the NAT and the firewall rule); deleting the PortRule removes
//! both; rules the operator did not write are untouched; mode off removes every owned
//! accept rule; a filter that accepts by default gets nothing and the status says so.
//! On the real kube-apiserver and vyos-sim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use kube::api::Api;
use serde_json::{Value, json};
use vmnet_api::VyosRouter;
use vyos_sim::SimOp;

use common::*;

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn filter(sim: &vyos_sim::Sim) -> Value {
    sim.running_config()
        .pointer("/firewall/ipv4/forward/filter")
        .cloned()
        .unwrap_or(Value::Null)
}

fn firewall(mode: &str) -> Value {
    json!({"firewall": {"mode": mode, "ruleRange": {"start": 5000, "end": 5999}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_rule_accept_rules_follow_the_portrules_and_leave_the_rest_alone() {
    let mut w = world("fw").await;
    // The router drops forwarded traffic unless a rule accepts it; rule 10 is a person's.
    w.sim()
        .third_party_edit(
            [
                "firewall ipv4 forward filter default-action drop",
                "firewall ipv4 forward filter rule 10 action accept",
                "firewall ipv4 forward filter rule 10 state established",
                "firewall ipv4 forward filter rule 10 state related",
            ]
            .iter()
            .map(|l| SimOp::Set(words(l)))
            .collect(),
        )
        .unwrap();
    w.reconfigure_router(firewall("per-rule")).await;
    w.start_operator("a", true).await;
    let mut one = standalone(&w, 46700, "10.77.0.80");
    one["sourceRanges"] = json!(["198.51.100.0/24"]);
    w.portrule("one", one).await;
    let mut two = standalone(&w, 46701, "10.77.0.81");
    two["sourceRanges"] = json!(["198.51.100.0/24", "203.0.113.7"]);
    w.portrule("two", two).await;
    let a = wait_ready_rule(&w, "one", 60).await;
    let b = wait_ready_rule(&w, "two", 60).await;
    let na = a["status"]["ruleNumber"].as_u64().unwrap();
    let nb = b["status"]["ruleNumber"].as_u64().unwrap();
    let (fa, fb) = (5000 + na - 1000, 5000 + nb - 1000);

    let f = eventually(30, "the accept rules", async || {
        let f = filter(w.sim());
        if f["rule"].get(fa.to_string()).is_some() && f["rule"].get(fb.to_string()).is_some() {
            Ok(f)
        } else {
            Err(f.to_string())
        }
    })
    .await;
    let rules = f["rule"].as_object().unwrap();
    assert_eq!(rules.len(), 3, "exactly ours and rule 10: {f}");
    assert_eq!(
        f["rule"][fa.to_string()],
        json!({
            "action": "accept",
            "connection-status": {"nat": "destination"},
            "description": format!("vmnet:{}/one", w.ns()),
            "destination": {"address": "10.77.0.80", "port": "8080"},
            "protocol": "tcp",
            "source": {"address": "198.51.100.0/24"}
        }),
        "{f}"
    );
    // Two source ranges: the NAT rule and the accept rule both name the same group.
    let group = format!("VMNET-{nb}");
    assert_eq!(
        f["rule"][fb.to_string()]["source"],
        json!({"group": {"network-group": group}}),
        "{f}"
    );
    let cfg = w.sim().running_config();
    assert_eq!(
        cfg["nat"]["destination"]["rule"][nb.to_string()]["source"],
        json!({"group": {"network-group": group}})
    );
    assert_eq!(
        cfg["firewall"]["group"]["network-group"][&group]["network"],
        json!(["198.51.100.0/24", "203.0.113.7/32"])
    );
    // The forward-filter requests touched the firewall only.
    for r in w.sim().configure_log() {
        if r.components.contains("firewall") && !r.components.contains("nat") {
            assert_eq!(r.components.len(), 1, "{r:?}");
        }
    }

    // Deleting a PortRule removes both of its rules.
    w.portrules()
        .delete("one", &Default::default())
        .await
        .unwrap();
    eventually(30, "rule one gone from nat and the filter", async || {
        let cfg = w.sim().running_config();
        let nat_gone = cfg["nat"]["destination"]["rule"]
            .get(na.to_string())
            .is_none();
        let fw_gone = filter(w.sim())["rule"].get(fa.to_string()).is_none();
        if nat_gone && fw_gone {
            Ok(())
        } else {
            Err(cfg.to_string())
        }
    })
    .await;
    assert!(
        filter(w.sim())["rule"].get("10").is_some(),
        "rule 10 was touched"
    );

    // The status counts the owned rules; mode off removes every one of them.
    let routers = Api::<VyosRouter>::all(client(&w));
    eventually(30, "status.firewall", async || {
        let s = get_json(&routers, &w.router).await.unwrap()["status"].clone();
        if s["firewall"]["ownedRules"] == 1 {
            Ok(())
        } else {
            Err(s.to_string())
        }
    })
    .await;
    w.reconfigure_router(firewall("off")).await;
    eventually(30, "every owned accept rule gone", async || {
        let f = filter(w.sim());
        let left: Vec<String> = f["rule"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        if left == ["10"] {
            Ok(())
        } else {
            Err(f.to_string())
        }
    })
    .await;
    assert_eq!(
        filter(w.sim())["rule"]["10"]["state"],
        json!(["established", "related"])
    );
    // The NAT rule stays: only the firewall was switched off.
    assert!(
        w.sim().running_config()["nat"]["destination"]["rule"]
            .get(nb.to_string())
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_accepts_by_default_gets_nothing_and_says_so() {
    let mut w = world("fwaccept").await;
    w.reconfigure_router(firewall("per-rule")).await;
    w.start_operator("a", true).await;
    w.portrule("web", standalone(&w, 46710, "10.77.0.82")).await;
    wait_ready_rule(&w, "web", 60).await;
    let routers = Api::<VyosRouter>::all(client(&w));
    let why = eventually(30, "status.firewall says why", async || {
        let s = get_json(&routers, &w.router).await.unwrap()["status"].clone();
        match s["firewall"]["message"].as_str() {
            Some(m) => Ok(m.to_owned()),
            None => Err(s.to_string()),
        }
    })
    .await;
    assert!(why.contains("accepts by default"), "{why}");
    assert!(filter(w.sim()).is_null(), "{}", filter(w.sim()));
}
