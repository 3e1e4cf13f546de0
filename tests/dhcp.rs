//! DHCP static mappings (issue 15): a VmNetwork with a MAC gets exactly one static mapping
//! with its address and MAC in the router's subnet that contains the address, in a request
//! that touches no other subtree; a new MAC is one op; a hand edit is reverted; a mapping
//! someone else wrote for that MAC or address stalls the VmNetwork, naming it, and is not
//! overwritten; deleting the VmNetwork removes the mapping; 1.4 writes `mac-address`,
//! 1.5 `mac`. On the real kube-apiserver and vyos-sim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use vyos_sim::{SimOp, Version};

use common::*;

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// The router's own DHCP config: subnet 10.77.0.0/24 in shared network LAN, and a
/// printer's mapping the operator did not write.
fn plant_dhcp(sim: &vyos_sim::Sim, v14: bool) {
    let mac = if v14 { "mac-address" } else { "mac" };
    let base = "service dhcp-server shared-network-name LAN subnet 10.77.0.0/24";
    let mut lines = vec![
        // VyOS serves a subnet only on an interface with an address in it.
        "interfaces ethernet eth1 address 10.77.0.1/24".to_owned(),
        format!("{base} range 0 start 10.77.0.200"),
        format!("{base} range 0 stop 10.77.0.250"),
        format!("{base} static-mapping printer ip-address 10.77.0.9"),
        format!("{base} static-mapping printer {mac} aa:bb:cc:00:00:09"),
    ];
    if !v14 {
        lines.push(format!("{base} subnet-id 1"));
    }
    sim.third_party_edit(lines.iter().map(|l| SimOp::Set(words(l))).collect())
        .unwrap();
}

fn mappings(sim: &vyos_sim::Sim) -> Value {
    sim.running_config()
        .pointer("/service/dhcp-server/shared-network-name/LAN/subnet/10.77.0.0~124/static-mapping")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_with_a_mac_gets_exactly_its_static_mapping() {
    let mut w = world("dhcp").await;
    plant_dhcp(w.sim(), false);
    w.start_operator("a", true).await;
    let me = format!("vmnet.{}.vm1", w.ns());
    w.vmnetwork(
        "vm1",
        json!({"router": w.router, "address": "10.77.0.21", "mac": "52:54:00:12:34:56",
               "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}]}),
    )
    .await;
    let vm = wait_ready_vm(&w, "vm1", 60).await;
    assert_eq!(
        vm["status"]["dhcp"]["state"], "Programmed",
        "{}",
        vm["status"]
    );
    let m = mappings(w.sim());
    assert_eq!(
        m[&me],
        json!({"ip-address": "10.77.0.21", "mac": "52:54:00:12:34:56"}),
        "{m}"
    );
    assert_eq!(
        m.as_object().unwrap().len(),
        2,
        "exactly ours and the printer's: {m}"
    );
    // The mapping went in a request of its own: no other subtree.
    let dhcp_writes: Vec<_> = w
        .sim()
        .configure_log()
        .into_iter()
        .filter(|r| r.components.contains("service dhcp-server"))
        .collect();
    assert_eq!(dhcp_writes.len(), 1, "{dhcp_writes:?}");
    assert_eq!(
        dhcp_writes[0].components.iter().collect::<Vec<_>>(),
        ["service dhcp-server"],
        "{dhcp_writes:?}"
    );

    // A new MAC is one op.
    w.vmnetwork(
        "vm1",
        json!({"router": w.router, "address": "10.77.0.21", "mac": "52:54:00:12:34:57",
               "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}]}),
    )
    .await;
    eventually(30, "the new MAC on the router", async || {
        let m = mappings(w.sim());
        if m[&me]["mac"] == "52:54:00:12:34:57" {
            Ok(())
        } else {
            Err(m.to_string())
        }
    })
    .await;
    let last = w
        .sim()
        .configure_log()
        .into_iter()
        .rfind(|r| r.components.contains("service dhcp-server"))
        .unwrap();
    assert_eq!(last.ops, 1, "{last:?}");
    wait_ready_vm(&w, "vm1", 30).await;

    // A hand edit of the owned mapping is reverted by the next drift check (10 s).
    let path = |rest: &str| {
        words(&format!(
            "service dhcp-server shared-network-name LAN subnet 10.77.0.0/24 static-mapping {me} {rest}"
        ))
    };
    w.sim()
        .third_party_edit(vec![SimOp::Set(path("ip-address 10.77.0.99"))])
        .unwrap();
    eventually(30, "the hand edit reverted", async || {
        let m = mappings(w.sim());
        if m[&me]["ip-address"] == "10.77.0.21" {
            Ok(())
        } else {
            Err(m.to_string())
        }
    })
    .await;

    // A VM asking for the printer's MAC: Stalled, naming the printer's mapping; nothing
    // overwritten.
    w.vmnetwork(
        "vm2",
        json!({"router": w.router, "address": "10.77.0.22", "mac": "AA:BB:CC:00:00:09"}),
    )
    .await;
    let why = eventually(30, "vm2 Stalled Conflict", async || {
        let o = get_json(&w.vmnetworks(), "vm2").await.ok_or("absent")?;
        match condition(&o, "Stalled") {
            Some((s, r, m)) if s == "True" && r == "Conflict" => Ok(m),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
    assert!(why.contains("\"printer\""), "{why}");
    let m = mappings(w.sim());
    assert_eq!(
        m["printer"],
        json!({"ip-address": "10.77.0.9", "mac": "aa:bb:cc:00:00:09"}),
        "{m}"
    );
    assert!(m.get(format!("vmnet.{}.vm2", w.ns())).is_none(), "{m}");

    // Deleting the VmNetwork removes its mapping, and only that.
    w.vmnetworks()
        .delete("vm1", &Default::default())
        .await
        .unwrap();
    eventually(30, "vm1 gone with its mapping", async || {
        let gone = get_json(&w.vmnetworks(), "vm1").await.is_none();
        let m = mappings(w.sim());
        if gone && m.get(&me).is_none() {
            Ok(())
        } else {
            Err(format!("gone {gone}: {m}"))
        }
    })
    .await;
    assert!(mappings(w.sim()).get("printer").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vyos_1_4_gets_mac_address_and_a_missing_subnet_is_said() {
    let mut w = world("dhcp14").await;
    // The world's router, played by a 1.4 sim at the same address.
    w.sim.take().unwrap().stop().await;
    let mut o = vyos_sim::SimOptions::for_tests();
    o.listen = w.sim_addr;
    o.version = Version::V1_4;
    o.api_keys = vec![KEY.to_owned()];
    let sim = vyos_sim::start(o).await.unwrap();
    w.sim = Some(sim);
    plant_dhcp(w.sim(), true);
    w.start_operator("a", true).await;
    let me = format!("vmnet.{}.vm1", w.ns());
    w.vmnetwork(
        "vm1",
        json!({"router": w.router, "address": "10.77.0.31", "mac": "52:54:00:00:14:01"}),
    )
    .await;
    wait_ready_vm(&w, "vm1", 60).await;
    assert_eq!(
        mappings(w.sim())[&me],
        json!({"ip-address": "10.77.0.31", "mac-address": "52:54:00:00:14:01"})
    );
    // An address in no DHCP subnet of the router: Stalled, saying what to add.
    w.vmnetwork(
        "far",
        json!({"router": w.router, "address": "10.78.0.5", "mac": "52:54:00:00:14:02"}),
    )
    .await;
    let why = eventually(30, "far Stalled", async || {
        let o = get_json(&w.vmnetworks(), "far").await.ok_or("absent")?;
        match condition(&o, "Stalled") {
            Some((s, r, m)) if s == "True" && r == "DhcpSubnetMissing" => Ok(m),
            _ => Err(o["status"].to_string()),
        }
    })
    .await;
    assert!(
        why.contains("10.78.0.5") && why.contains("set service dhcp-server"),
        "{why}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
}
