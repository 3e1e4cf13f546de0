//! NAT reflection (issue 15): a hairpin forward gets exactly two more NAT rules, leaf for
//! leaf VyOS's documented reflection recipe narrowed to the forward, in the same NAT request
//! as its rule; a hand edit of one is put back; dropping `hairpin` removes exactly them, in
//! one request; a foreign source rule is untouched; a rule that asks for hairpin and cannot
//! have it is Stalled naming the field. On the real kube-apiserver and vyos-sim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};
use vyos_sim::SimOp;

use common::*;

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn nat(sim: &vyos_sim::Sim, kind: &str) -> Value {
    sim.running_config()
        .pointer(&format!("/nat/{kind}/rule"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn numbers(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The NAT configure requests the sim recorded after the first `skip`.
fn nat_requests(sim: &vyos_sim::Sim, skip: usize) -> Vec<vyos_sim::ConfigureRecord> {
    sim.configure_log()
        .into_iter()
        .skip(skip)
        .filter(|r| r.components.contains("nat"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hairpin_forward_gets_exactly_the_two_reflection_rules_and_loses_exactly_them() {
    let mut w = world("hp").await;
    // A person's masquerade for the inside network going out to the internet.
    w.sim()
        .third_party_edit(
            [
                "nat source rule 10 outbound-interface name eth0",
                "nat source rule 10 source address 10.77.0.0/16",
                "nat source rule 10 translation address masquerade",
            ]
            .iter()
            .map(|l| SimOp::Set(words(l)))
            .collect(),
        )
        .unwrap();
    let foreign = nat(w.sim(), "source")["10"].clone();
    w.reconfigure_router(json!({"hairpin": {
        "insideInterface": "eth1",
        "insideNetwork": "10.77.0.0/16",
        "ruleRange": {"start": 3000, "end": 3999}
    }}))
    .await;
    w.start_operator("a", true).await;
    let before = w.sim().configure_log().len();
    let mut web = standalone(&w, 46800, "10.77.0.90");
    web["hairpin"] = json!(true);
    w.portrule("web", web.clone()).await;
    let r = wait_ready_rule(&w, "web", 60).await;
    let n = r["status"]["ruleNumber"].as_u64().unwrap();
    let h = (3000 + n - 1000).to_string();
    let desc = format!("vmnet:{}/web", w.ns());

    // VyOS's recipe ("NAT Reflection", nat44 docs): a destination rule with the inside
    // interface as inbound interface, the forward's protocol, port and translation; here
    // also the external address, so inside clients' traffic to that port elsewhere is left
    // alone.
    let dst = nat(w.sim(), "destination");
    assert_eq!(
        dst[&h],
        json!({
            "description": desc,
            "destination": {"address": "203.0.113.20", "port": "46800"},
            "inbound-interface": {"name": "eth1"},
            "protocol": "tcp",
            "translation": {"address": "10.77.0.90", "port": "8080"}
        }),
        "{dst}"
    );
    // The recipe's source rule: the inside network to (here: only) the VM, out of the
    // inside interface, masqueraded.
    let src = nat(w.sim(), "source");
    assert_eq!(
        src[&h],
        json!({
            "description": desc,
            "destination": {"address": "10.77.0.90", "port": "8080"},
            "outbound-interface": {"name": "eth1"},
            "protocol": "tcp",
            "source": {"address": "10.77.0.0/16"},
            "translation": {"address": "masquerade"}
        }),
        "{src}"
    );
    // Exactly two more rules than the forward itself, and the forward is as without hairpin.
    let mut want_dst = vec![n.to_string(), h.clone()];
    want_dst.sort();
    assert_eq!(numbers(&dst), want_dst);
    assert_eq!(numbers(&src), vec!["10".to_owned(), h.clone()]);
    assert_eq!(
        dst[n.to_string()]["inbound-interface"],
        json!({"name": "eth0"})
    );
    assert_eq!(src["10"], foreign);
    // All three in one NAT request: the forward's 7 leaves and the companions' 7 each.
    let reqs = nat_requests(w.sim(), before);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].ops, 21, "{reqs:?}");
    assert_eq!(reqs[0].components.len(), 1, "{reqs:?}");

    // A companion deleted by hand is put back at the next drift check.
    w.sim()
        .third_party_edit(vec![SimOp::Delete(words(&format!("nat source rule {h}")))])
        .unwrap();
    eventually(40, "the hairpin source rule restored", async || {
        let src = nat(w.sim(), "source");
        if src.get(&h).is_some() {
            Ok(())
        } else {
            Err(src.to_string())
        }
    })
    .await;

    // Dropping hairpin removes exactly the two companions, in one request of two deletes.
    let before = w.sim().configure_log().len();
    let main = dst[n.to_string()].clone();
    web["hairpin"] = json!(false);
    w.portrule("web", web.clone()).await;
    eventually(30, "the companions gone", async || {
        let (d, s) = (nat(w.sim(), "destination"), nat(w.sim(), "source"));
        if d.get(&h).is_none() && s.get(&h).is_none() {
            Ok(())
        } else {
            Err(format!("{d} {s}"))
        }
    })
    .await;
    assert_eq!(nat(w.sim(), "destination")[n.to_string()], main);
    assert_eq!(numbers(&nat(w.sim(), "destination")), vec![n.to_string()]);
    assert_eq!(nat(w.sim(), "source"), json!({"10": foreign}));
    let reqs = nat_requests(w.sim(), before);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].ops, 2, "{reqs:?}");

    // The router's default gives it back (the rule no longer says false); deleting the
    // PortRule then removes all three rules in one request.
    w.reconfigure_router(json!({"hairpin": {
        "insideInterface": "eth1",
        "insideNetwork": "10.77.0.0/16",
        "ruleRange": {"start": 3000, "end": 3999},
        "default": true
    }}))
    .await;
    web.as_object_mut().unwrap().remove("hairpin");
    w.portrule("web", web).await;
    eventually(30, "the companions back by default", async || {
        let s = nat(w.sim(), "source");
        if s.get(&h).is_some() {
            Ok(())
        } else {
            Err(s.to_string())
        }
    })
    .await;
    let before = w.sim().configure_log().len();
    w.portrules()
        .delete("web", &Default::default())
        .await
        .unwrap();
    eventually(30, "all three gone", async || {
        let d = nat(w.sim(), "destination");
        if d.get(n.to_string()).is_none() && d.get(&h).is_none() {
            Ok(())
        } else {
            Err(d.to_string())
        }
    })
    .await;
    assert_eq!(nat(w.sim(), "source"), json!({"10": foreign}));
    let reqs = nat_requests(w.sim(), before);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].ops, 3, "{reqs:?}");

    // Asking for hairpin without an external address is refused, naming the field; the
    // router is not written.
    let before = w.sim().configure_log().len();
    w.portrule(
        "noaddr",
        json!({
            "router": w.router, "protocol": "tcp", "inboundInterface": "eth0",
            "externalPort": 46801, "internalAddress": "10.77.0.91", "hairpin": true
        }),
    )
    .await;
    let why = eventually(30, "noaddr Stalled", async || {
        let o = get_json(&w.portrules(), "noaddr").await.ok_or("absent")?;
        match condition(&o, "Stalled") {
            Some((s, r, m)) if s == "True" && r == "InvalidRequest" => Ok(m),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
    assert!(why.contains("spec.externalAddress"), "{why}");
    assert!(nat_requests(w.sim(), before).is_empty());
}
