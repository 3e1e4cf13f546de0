//! Router config backups (issue 14): stored on a schedule and before changes, once per
//! distinct config, pruned by retention, diffed against each other and the live router,
//! restored only when a person confirms, and never leaked into logs, Events or status.
//! On the real kube-apiserver and vyos-sim, through the `vmnet-operator backup` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use vmnet_api::VyosRouter;
use vmnet_testkit::{control_plane, kubectl};
use vyos_sim::SimOp;

use common::*;

/// A value planted in the router's config: it must reach the backups and nothing else.
const CANARY: &str = "canary-7f3a9c-not-for-logs";

/// Runs `vmnet-operator backup ARGS -n NS`: exit code, stdout, stderr.
fn backup(ns: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmnet-operator"))
        .arg("backup")
        .args(args)
        .args(["-n", ns])
        .env("KUBECONFIG", &control_plane().kubeconfig)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "backup printed the API key:\n{stdout}\n{stderr}"
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

fn ok(ns: &str, args: &[&str]) -> String {
    let (code, out, err) = backup(ns, args);
    assert_eq!(code, 0, "backup {args:?} failed:\n{out}\n{err}");
    out
}

/// The backup Secrets of `router`, newest first, as `backup list -o json` gives them.
fn listed(ns: &str, router: &str) -> Vec<Value> {
    let out = ok(ns, &["list", "--router", router, "-o", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn rule_path(n: &str, rest: &[&str]) -> Vec<String> {
    let mut p: Vec<String> = ["nat", "destination", "rule", n]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    p.extend(rest.iter().map(|s| (*s).to_owned()));
    p
}

/// A rule made by hand, outside the operator's range (1000-1999).
fn hand_rule(w: &World, n: &str, port: &str) {
    w.sim()
        .third_party_edit(vec![
            SimOp::Set(rule_path(n, &["description", &format!("by hand {CANARY}")])),
            SimOp::Set(rule_path(n, &["protocol", "tcp"])),
            SimOp::Set(rule_path(n, &["destination", "port", port])),
            SimOp::Set(rule_path(n, &["inbound-interface", "name", "eth0"])),
            SimOp::Set(rule_path(n, &["translation", "address", "10.77.0.99"])),
        ])
        .unwrap();
}

async fn router_status(w: &World) -> Value {
    let routers = Api::<VyosRouter>::all(client(w));
    get_json(&routers, &w.router).await.unwrap()["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_are_stored_once_per_config_pruned_and_diffed() {
    let logs = logged();
    let mut w = world("backup").await;
    let ns = w.ns().to_owned();
    w.reconfigure_router(json!({"backup": {"schedule": "* * * * *", "retention": {"count": 2}}}))
        .await;
    hand_rule(&w, "50", "2050");
    w.start_operator("a", true).await;
    w.portrule("web", standalone(&w, 46400, "10.77.0.50")).await;
    wait_ready_rule(&w, "web", 60).await;

    // The schedule fires at the top of the next minute.
    let first = eventually(75, "a scheduled backup", async || {
        let s = router_status(&w).await;
        if s["backup"]["lastBackup"]["name"].is_string() {
            Ok(s["backup"].clone())
        } else {
            Err(s.to_string())
        }
    })
    .await;
    assert_eq!(first["count"], 1, "{first}");
    assert!(first["nextScheduled"].is_string(), "{first}");
    let b1 = first["lastBackup"]["name"].as_str().unwrap().to_owned();
    let all = listed(&ns, &w.router);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["reason"], "schedule");
    assert_eq!(
        all[0]["sha256"].as_str().unwrap().len(),
        64,
        "the checksum is SHA-256 hex"
    );

    // Nothing changed on the router: no new Secret, the last-seen time moves.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let out = ok(&ns, &["now", &w.router]);
    assert!(out.contains("unchanged"), "{out}");
    let again = listed(&ns, &w.router);
    assert_eq!(
        again.len(),
        1,
        "an unchanged config was stored again: {again:?}"
    );
    assert!(
        again[0]["lastSeen"].as_str() > all[0]["lastSeen"].as_str(),
        "last-seen did not move: {again:?}"
    );

    // A change by hand: a second backup.
    hand_rule(&w, "51", "2051");
    let out = ok(&ns, &["now", &w.router]);
    assert!(out.contains("stored backup"), "{out}");
    let two = listed(&ns, &w.router);
    assert_eq!(two.len(), 2, "{two:?}");
    let b2 = two[0]["name"].as_str().unwrap().to_owned();

    // diff --live shows exactly the rule added by hand since, as set lines.
    hand_rule(&w, "52", "2052");
    let diff = ok(&ns, &["diff", &b2, "--live"]);
    let added: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    let removed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .collect();
    assert!(removed.is_empty(), "{diff}");
    assert_eq!(added.len(), 5, "{diff}");
    for l in &added {
        assert!(l.starts_with("+set nat destination rule 52 "), "{diff}");
    }
    assert!(
        added.contains(&"+set nat destination rule 52 destination port '2052'"),
        "{diff}"
    );
    assert!(
        diff.contains("5 change(s): 5 line(s) added, 0 removed"),
        "{diff}"
    );
    // Two backups compare the same way.
    let between = ok(&ns, &["diff", &b1, &b2]);
    assert!(
        between.contains("+set nat destination rule 51 destination port '2051'"),
        "{between}"
    );

    // A third config: retention keeps exactly two, and the oldest goes.
    let out = ok(&ns, &["now", &w.router]);
    assert!(out.contains(&format!("retention pruned: {b1}")), "{out}");
    let kept = listed(&ns, &w.router);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|b| b["name"] != b1.as_str()), "{kept:?}");
    let secrets: Api<Secret> = Api::namespaced(client(&w), &ns);
    let stored = secrets
        .list_metadata(&ListParams::default().labels("vmnet.dev/backup-of"))
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 2);

    // show: the config as sorted set lines, the canary among them.
    let shown = ok(&ns, &["show", kept[0]["name"].as_str().unwrap()]);
    assert!(
        shown.contains("set nat destination rule 52 destination port '2052'"),
        "{shown}"
    );
    assert!(shown.contains(CANARY), "the backup lacks the config");
    // Sorted as VyOS sorts tag values (numbers by value), so the order never changes.
    let at = |needle: &str| {
        shown
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}: {shown}"))
    };
    assert!(at("set nat destination rule 50 ") < at("set nat destination rule 52 "));
    assert!(at("set nat destination rule 52 ") < at("set nat destination rule 1"));
    assert_eq!(shown, ok(&ns, &["show", kept[0]["name"].as_str().unwrap()]));

    // Item 6: no backup content, key or config secret in logs, Events or status.
    let status = router_status(&w).await.to_string();
    let events = kubectl(&["get", "events", "-A", "-o", "json"]).unwrap();
    let lines: Vec<String> = logs
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l)| l.clone())
        .collect();
    for (what, text) in [
        ("status", status.as_str()),
        ("Events", events.as_str()),
        ("logs", &lines.join("\n")),
    ] {
        assert!(!text.contains(CANARY), "config content in the {what}");
        assert!(!text.contains(KEY), "the API key in the {what}");
        assert!(
            !text.contains("set nat destination"),
            "config lines in the {what}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("config backup")),
        "no log line says a backup was taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_changes_nothing_until_confirmed_then_loads_the_backup() {
    let mut w = world("restore").await;
    let ns = w.ns().to_owned();
    w.reconfigure_router(
        json!({"backup": {"beforeChanges": true, "minInterval": "10s", "retention": {"count": 5}}}),
    )
    .await;
    // The router's own config (a real router's is never empty).
    hand_rule(&w, "59", "2059");
    w.start_operator("a", true).await;
    // The first pass writes: a backup of the router as it was comes first.
    w.portrule("web", standalone(&w, 46500, "10.77.0.60")).await;
    wait_ready_rule(&w, "web", 60).await;
    let all = listed(&ns, &w.router);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["reason"], "before-change");
    let before = all[0]["name"].as_str().unwrap().to_owned();
    let shown = ok(&ns, &["show", &before]);
    assert!(
        !shown.contains("set nat destination rule 1"),
        "the before-change backup already has the operator's rule:\n{shown}"
    );
    let owned = w.router_rules();
    assert_eq!(owned.len(), 2, "{owned:?}");

    // Changed by hand after the backup.
    hand_rule(&w, "60", "2060");
    let config = w.sim().running_config();
    let counters = w.sim().counters();

    // Without --confirm RESTORE: the diff, and nothing changes.
    let out = ok(&ns, &["restore", &before, "--router", &w.router]);
    assert!(out.contains("nothing was changed"), "{out}");
    assert!(out.contains("-set nat destination rule 60 "), "{out}");
    assert!(out.contains("-set nat destination rule 1"), "{out}");
    let (code, _, err) = backup(
        &ns,
        &[
            "restore",
            &before,
            "--router",
            &w.router,
            "--confirm",
            "yes",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("exactly RESTORE"), "{err}");
    assert_eq!(w.sim().running_config(), config, "the router changed");
    let now = w.sim().counters();
    assert_eq!(
        (now.configure_requests, now.commits),
        (counters.configure_requests, counters.commits),
        "a write without the confirmation"
    );
    assert_eq!(
        now.requests.get("/config-file"),
        counters.requests.get("/config-file")
    );

    // With it: the router's config is the backup's (the load is checked by the CLI
    // itself, before the operator's next pass)...
    let out = ok(
        &ns,
        &[
            "restore",
            &before,
            "--router",
            &w.router,
            "--confirm",
            "RESTORE",
        ],
    );
    assert!(out.contains("restored: router"), "{out}");
    assert!(out.contains("now equals"), "{out}");
    assert!(
        w.sim().counters().requests.get("/config-file") > counters.requests.get("/config-file"),
        "no load reached the router"
    );
    // ...and the rule made by hand after the backup is gone for good, while the
    // operator's own rule, which the backup predates, is written back on top: its
    // PortRule still declares it.
    eventually(
        30,
        "the operator's rule back after the restore",
        async || {
            let rules = w.router_rules();
            if rules == owned {
                Ok(())
            } else {
                Err(format!("{rules:?}"))
            }
        },
    )
    .await;
    let cfg = w.sim().running_config();
    assert!(
        cfg.pointer("/nat/destination/rule/60").is_none(),
        "the rule made after the backup survived the restore"
    );
}
