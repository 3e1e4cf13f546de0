//! `examples/` applies verbatim, a second server-side apply changes nothing, and
//! `kubectl get vmnet` shows every kind with its printer columns.
//!
//! One test in this binary on purpose: the examples use fixed names and namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use serde_json::Value;
use vmnet_testkit::{install_crds, kubectl, repo_root};

fn examples_dir() -> String {
    repo_root().join("examples").display().to_string()
}

/// The feature examples, applied after examples/.
fn extras_dir() -> String {
    repo_root()
        .join("examples")
        .join("extras")
        .display()
        .to_string()
}

/// Every object the examples (and examples/extras/) declare, as (kind, namespace, name) →
/// spec (or data).
fn declared() -> BTreeMap<(String, String, String), Value> {
    let mut out = BTreeMap::new();
    let yaml = |dir: std::path::PathBuf| -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        files
    };
    let main = yaml(repo_root().join("examples"));
    assert!(main.len() >= 5, "examples/ should hold the example set");
    let extras = yaml(repo_root().join("examples").join("extras"));
    assert!(
        extras.len() >= 2,
        "examples/extras/ should hold the feature examples"
    );
    let files = main.into_iter().chain(extras);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap();
            if v.is_null() {
                continue;
            }
            let kind = v["kind"].as_str().unwrap().to_owned();
            let ns = v["metadata"]["namespace"].as_str().unwrap_or("").to_owned();
            let name = v["metadata"]["name"].as_str().unwrap().to_owned();
            out.insert(
                (kind, ns, name),
                v.get("spec").cloned().unwrap_or(Value::Null),
            );
        }
    }
    out
}

fn get(kind: &str, ns: &str, name: &str) -> Value {
    let mut args = vec!["get", kind, name, "-o", "json"];
    if !ns.is_empty() {
        args.extend(["-n", ns]);
    }
    serde_json::from_str(&kubectl(&args).unwrap()).unwrap()
}

#[tokio::test]
async fn examples_apply_verbatim_idempotently_and_show_in_kubectl_get_vmnet() {
    install_crds().await.unwrap();
    let dir = examples_dir();
    let declared = declared();
    let kinds: Vec<_> = declared.keys().map(|k| k.0.as_str()).collect();
    for k in [
        "VyosRouter",
        "IpPool",
        "PortPool",
        "VmNetwork",
        "PortRule",
        "Secret",
    ] {
        assert!(kinds.contains(&k), "examples/ lacks a {k}");
    }

    apply_examples(&dir);
    let mut first = BTreeMap::new();
    for (kind, ns, name) in declared.keys() {
        first.insert(
            (kind.clone(), ns.clone(), name.clone()),
            get(kind, ns, name),
        );
    }
    // What is stored is exactly what the files say: no defaults, no empty placeholders.
    for ((kind, ns, name), spec) in &declared {
        if spec.is_null() {
            continue;
        }
        let stored = &first[&(kind.clone(), ns.clone(), name.clone())]["spec"];
        assert_eq!(
            stored, spec,
            "{kind} {ns}/{name}: stored spec differs from the file"
        );
    }

    apply_examples(&dir);
    for ((kind, ns, name), before) in &first {
        let after = get(kind, ns, name);
        let what = format!("{kind} {ns}/{name}");
        assert_eq!(
            after["metadata"]["generation"], before["metadata"]["generation"],
            "{what}: generation changed on re-apply"
        );
        // The namespace controller writes Namespaces itself, so only our objects and the
        // Secret are held to "not written again".
        if kind != "Namespace" {
            assert_eq!(
                after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
                "{what}: the second apply wrote the object again"
            );
        }
    }

    // `kubectl get vmnet` lists the five kinds, each with its printer columns.
    let table = kubectl(&["get", "vmnet", "-A"]).unwrap();
    for (kind, columns) in [
        (
            "vyosrouter.vmnet.dev/edge-1",
            &[
                "ENDPOINT",
                "VERSION",
                "OWNED",
                "DRIFTED",
                "READY",
                "LAST SYNC",
                "STATUS",
            ][..],
        ),
        (
            "ippool.vmnet.dev/lab-v4",
            &["ADDRESSES", "TOTAL", "USED", "FREE", "READY", "STATUS"][..],
        ),
        (
            "portpool.vmnet.dev/edge-1-public",
            &[
                "ROUTER",
                "EXTERNAL",
                "PORTS",
                "TOTAL",
                "PORTS USED",
                "ALLOCATIONS",
                "FREE",
                "READY",
                "STATUS",
            ][..],
        ),
        (
            "vmnetwork.vmnet.dev/web-1",
            &["ROUTER", "ADDRESS", "ENDPOINTS", "READY", "STATUS"][..],
        ),
        (
            "portrule.vmnet.dev/dns",
            &[
                "ROUTER", "PROTOCOL", "EXTERNAL", "INTERNAL", "RULE", "READY", "STATUS",
            ][..],
        ),
    ] {
        let line = table
            .lines()
            .position(|l| l.contains(kind))
            .unwrap_or_else(|| panic!("`kubectl get vmnet -A` does not list {kind}:\n{table}"));
        // The header of a kind's table is the nearest NAME line above its rows.
        let header = table
            .lines()
            .take(line)
            .filter(|l| l.contains("NAME"))
            .last()
            .unwrap();
        for c in columns {
            assert!(
                header.contains(c),
                "{kind}: column {c} missing from header {header:?}"
            );
        }
    }

    // The condition's message and a router's sync progress are one `-o wide` away.
    let wide = kubectl(&["get", "vyosrouters", "-o", "wide"]).unwrap();
    let header = wide.lines().next().unwrap_or_default();
    for c in ["STATUS", "MESSAGE", "PROGRESS"] {
        assert!(header.contains(c), "-o wide lacks {c}: {header:?}");
    }
    assert!(
        !table.contains("MESSAGE"),
        "messages are long: wide output only"
    );

    // Wait, so that a re-run does not meet the namespaces still terminating.
    kubectl(&[
        "delete",
        "--wait=true",
        "--timeout=120s",
        "--ignore-not-found",
        "-f",
        &dir,
    ])
    .unwrap();
}

/// `kubectl apply --server-side` of the examples in `dir` and then of examples/extras/.
fn apply_examples(dir: &str) {
    for d in [dir, &extras_dir()] {
        kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=examples",
            "-f",
            d,
        ])
        .unwrap();
    }
}
