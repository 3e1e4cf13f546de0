//! examples/ end to end: applied verbatim, with the operator running and vyos-sim playing
//! the router at the address examples/00-router.yaml names (127.0.0.1:18443, the demo's).
//!
//! Its own test binary, so that no other test's operator runs meanwhile: this operator
//! watches everything, as a real deployment does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use vmnet_operator::context::Settings;
use vmnet_operator::run::{Options, operate};
use vmnet_testkit::{install_crds, kubectl, repo_root};
use vyos_client::nat::{NatKind, NatRule, parse_rules};
use vyos_sim::SimOptions;

/// The `kind` NAT rules on the router numbered `from..=to`.
fn nat_rules(sim: &vyos_sim::Sim, kind: NatKind, from: u32, to: u32) -> BTreeMap<u32, NatRule> {
    let cfg = sim.running_config();
    let rules = cfg
        .pointer(&format!("/nat/{kind}"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut all = parse_rules(kind, &rules).unwrap();
    all.retain(|n, _| (from..=to).contains(n));
    all
}

/// The forwards: the destination rules in the router's ruleRange.
fn router_rules(sim: &vyos_sim::Sim) -> BTreeMap<u32, NatRule> {
    nat_rules(sim, NatKind::Destination, 10000, 19999)
}

async fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while Instant::now() < deadline {
        match f() {
            Ok(()) => return,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out after {secs} s waiting for {what}; last state: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_converge_onto_the_router_and_leave_it_clean() {
    install_crds().await.unwrap();
    let dir = repo_root().join("examples");
    let dir = dir.to_str().unwrap();
    let mut opts = SimOptions::for_tests();
    opts.listen = "127.0.0.1:18443".parse().unwrap();
    opts.api_keys = vec!["demo-key-change-me".into()];
    let sim = vyos_sim::start(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}: is `make demo` running? It uses the same address"));
    // What a person set up on the router once, as the demo does: a DHCP subnet for the
    // lab and a forward filter that drops by default (rule 10 lets replies through).
    let setup = std::fs::read_to_string(repo_root().join("hack").join("demo-router.json")).unwrap();
    sim.third_party_edit(serde_json::from_str(&setup).unwrap())
        .unwrap();
    let extras = repo_root().join("examples").join("extras");
    let extras = extras.to_str().unwrap();

    kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=examples",
        "-f",
        dir,
    ])
    .unwrap();
    kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=examples",
        "-f",
        extras,
    ])
    .unwrap();
    let client = vmnet_testkit::admin_client().await.unwrap();
    let operator = tokio::spawn(operate(
        client,
        Options {
            settings: Settings {
                debounce: Duration::from_millis(150),
                ..Settings::default()
            },
            lease_name: format!("vmnet-e2e-{:08x}", rand::random::<u32>()),
            lease_namespace: "default".into(),
            identity: "e2e".into(),
            lease_seconds: 5,
            admin_addr: None,
        },
        futures::future::pending(),
    ));

    // `kubectl wait --for=condition=Ready` succeeds for every object.
    for args in [
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=90s",
            "vyosrouter/edge-1",
            "ippool/lab-v4",
            "portpool/edge-1-public",
        ][..],
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=90s",
            "-n",
            "lab",
            "vmnetwork/web-1",
            "vmnetwork/db-1",
            "vmnetwork/app-1",
            "vmnetwork/wiki-1",
            "portrule/dns",
            "portrule/vendor-support",
        ][..],
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=90s",
            "-n",
            "lab",
            "portrule",
            "--all",
        ][..],
    ] {
        kubectl(args).unwrap_or_else(|e| panic!("{e}"));
    }

    // Exactly the declared rules: web-1 https and ssh, db-1 ssh, dns.
    let rules = router_rules(&sim);
    let by_owner: BTreeMap<String, &NatRule> = rules
        .values()
        .map(|r| {
            let d = r.description.clone().unwrap();
            (d.split(' ').next().unwrap().to_owned(), r)
        })
        .collect();
    assert_eq!(
        by_owner.keys().cloned().collect::<Vec<_>>(),
        [
            "vmnet:lab/app-1-http",
            "vmnet:lab/db-1-ssh",
            "vmnet:lab/dns",
            "vmnet:lab/vendor-support",
            "vmnet:lab/web-1-https",
            "vmnet:lab/web-1-ssh",
            "vmnet:lab/wiki-1-https"
        ],
        "{rules:#?}"
    );
    // The extras: app-1's DHCP static mapping, and one forward-filter accept rule per
    // NAT rule (20000 + the NAT rule's offset in 10000-19999), besides the person's rule 10.
    let cfg = sim.running_config();
    assert_eq!(
        cfg.pointer("/service/dhcp-server/shared-network-name/LAB/subnet/10.20.0.0~124/static-mapping/vmnet.lab.app-1")
            .cloned(),
        Some(serde_json::json!({"ip-address": "10.20.0.30", "mac": "52:54:00:20:00:30"})),
        "{cfg}"
    );
    let filter = &cfg["firewall"]["ipv4"]["forward"]["filter"]["rule"];
    for r in rules.values() {
        let accept = &filter[(20000 + r.number - 10000).to_string()];
        assert_eq!(accept["action"], "accept", "{filter}");
        assert_eq!(accept["description"].as_str(), r.description.as_deref());
    }
    assert_eq!(
        filter.as_object().unwrap().len(),
        rules.len() + 1,
        "{filter}"
    );
    for r in rules.values() {
        assert!(
            (10000..=19999).contains(&r.number),
            "rule {} outside the owned range",
            r.number
        );
        assert_eq!(r.inbound_interface.name.as_deref(), Some("eth0"));
    }
    let https = by_owner["vmnet:lab/web-1-https"];
    assert_eq!(https.destination.address.as_deref(), Some("203.0.113.10"));
    assert_eq!(https.destination.port.as_deref(), Some("30443"));
    assert_eq!(https.translation.address.as_deref(), Some("10.20.0.10"));
    assert_eq!(https.translation.port.as_deref(), Some("443"));
    // wiki-1's https port has hairpin: its two companions, 30000 + its offset, and only
    // they, in nat destination and nat source.
    let wiki = by_owner["vmnet:lab/wiki-1-https"];
    let h = 30000 + wiki.number - 10000;
    let reflected = nat_rules(&sim, NatKind::Destination, 30000, 39999);
    assert_eq!(reflected.keys().copied().collect::<Vec<_>>(), vec![h]);
    assert_eq!(
        reflected[&h].inbound_interface.name.as_deref(),
        Some("eth1")
    );
    assert_eq!(reflected[&h].destination, wiki.destination);
    assert_eq!(reflected[&h].translation, wiki.translation);
    let masq = nat_rules(&sim, NatKind::Source, 1, 999999);
    assert_eq!(masq.keys().copied().collect::<Vec<_>>(), vec![h]);
    assert_eq!(masq[&h].source.address.as_deref(), Some("10.20.0.0/24"));
    assert_eq!(masq[&h].destination.address.as_deref(), Some("10.20.0.40"));
    assert_eq!(masq[&h].translation.address.as_deref(), Some("masquerade"));
    let ssh = by_owner["vmnet:lab/web-1-ssh"];
    assert_eq!(ssh.source.address.as_deref(), Some("198.51.100.0/24"));
    let dns = by_owner["vmnet:lab/dns"];
    assert_eq!(dns.destination.port.as_deref(), Some("53"));
    assert_eq!(dns.translation.address.as_deref(), Some("10.20.0.10"));

    // Statuses show the endpoints.
    let web: Value = serde_json::from_str(
        &kubectl(&["get", "-n", "lab", "vmnetwork", "web-1", "-o", "json"]).unwrap(),
    )
    .unwrap();
    assert_eq!(web["status"]["address"], "10.20.0.10");
    let endpoints = web["status"]["endpoints"].as_str().unwrap();
    assert!(
        endpoints.contains("https=203.0.113.10:30443/tcp"),
        "{endpoints}"
    );
    let db: Value = serde_json::from_str(
        &kubectl(&["get", "-n", "lab", "vmnetwork", "db-1", "-o", "json"]).unwrap(),
    )
    .unwrap();
    let db_addr = db["status"]["address"].as_str().unwrap();
    assert_eq!(
        by_owner["vmnet:lab/db-1-ssh"]
            .translation
            .address
            .as_deref(),
        Some(db_addr)
    );
    let table = kubectl(&["get", "portrule", "-n", "lab"]).unwrap();
    assert!(table.contains("203.0.113.10:30443/tcp"), "{table}");
    // The STATUS column names the condition that holds, row by row.
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert!(
        !rows.is_empty() && rows.iter().all(|l| l.contains("Programmed")),
        "{table}"
    );
    let routers = kubectl(&["get", "vyosrouter", "edge-1"]).unwrap();
    assert!(routers.contains("Synced"), "{routers}");

    // Deleting the examples takes every rule off the router, then the objects go.
    kubectl(&["delete", "--wait=true", "--timeout=90s", "-f", extras]).unwrap();
    kubectl(&["delete", "--wait=true", "--timeout=90s", "-f", dir]).unwrap();
    eventually(30, "an empty router", || {
        let n = router_rules(&sim).len()
            + nat_rules(&sim, NatKind::Destination, 30000, 39999).len()
            + nat_rules(&sim, NatKind::Source, 1, 999999).len();
        let cfg = sim.running_config();
        let accepts = cfg["firewall"]["ipv4"]["forward"]["filter"]["rule"]
            .as_object()
            .map_or(0, |o| o.len());
        let mappings = cfg
            .pointer(
                "/service/dhcp-server/shared-network-name/LAB/subnet/10.20.0.0~124/static-mapping",
            )
            .is_some();
        if n == 0 && accepts == 1 && !mappings {
            Ok(())
        } else {
            Err(format!(
                "{n} rules, {accepts} filter rules, mappings {mappings}"
            ))
        }
    })
    .await;
    operator.abort();
}
