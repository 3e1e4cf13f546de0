//! docs/install.md, run as written: every `sh` block of the page, in the page's order, against
//! the test control plane, each followed by a check of what it should have left behind. A
//! block preceded by a `<!-- not run by tests/install_doc.rs: … -->` comment is skipped (the
//! Docker build; the machines here have no Docker engine).
//!
//! Its own test binary: it installs the release `vmnet` into `vmnet-system`, as
//! tests/chart.rs does, and cargo runs test binaries one after the other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use charts::{CRDS, adopt_crds};
use vmnet_testkit::{control_plane, helm, install_crds, kubectl, repo_root};

#[path = "common/chart.rs"]
mod charts;

const PAGE: &str = "docs/install.md";
const SKIP: &str = "<!-- not run by tests/install_doc.rs:";

/// The section whose commands are the alternative to Helm's: run after `helm uninstall`
/// (applied over a Helm release, its objects conflict with Helm's fields, as the page says).
const ALTERNATIVE: &str = "## Without Helm";

/// The page's `sh` blocks, in order, with their section and whether the page marks them as
/// not run.
fn blocks(page: &str) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut previous = "";
    let mut section = String::new();
    let mut skip = false;
    for line in page.lines() {
        if current.is_none() && line.starts_with("## ") {
            section = line.trim_end().to_owned();
        }
        match (&mut current, line.trim_end()) {
            (None, "```sh") => {
                skip = previous.trim_start().starts_with(SKIP);
                current = Some(String::new());
            }
            (Some(block), "```") => {
                out.push((section.clone(), std::mem::take(block), skip));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, text) => {
                if !text.trim().is_empty() {
                    previous = line;
                }
            }
        }
    }
    assert!(current.is_none(), "{PAGE} has an unclosed ```sh block");
    out
}

fn run(script: &str) -> Result<String, String> {
    let cp = control_plane();
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(bin) = &cp.bin_dir {
        let mut joined = bin.clone().into_os_string();
        joined.push(":");
        joined.push(&path);
        path = joined;
    }
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(repo_root())
        .env("PATH", path)
        .env("KUBECONFIG", &cp.kubeconfig)
        .output()
        .map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

fn revision() -> u64 {
    let status = helm(&["status", "vmnet", "-n", "vmnet-system", "-o", "json"]).unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    status["version"].as_u64().unwrap()
}

#[test]
fn every_command_of_the_install_page_runs_as_written() {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(install_crds())
        .unwrap();
    // The CRDs exist already (other tests install them); a fresh cluster would not have
    // them. Give them Helm's ownership so `helm install` adopts them, as it would its own.
    adopt_crds("vmnet", "vmnet-system");
    let _ = helm(&["uninstall", "vmnet", "-n", "vmnet-system"]);
    let _ = kubectl(&[
        "delete",
        "secret",
        "edge-1-api",
        "-n",
        "vmnet-system",
        "--ignore-not-found",
    ]);

    let page = std::fs::read_to_string(repo_root().join(PAGE)).unwrap();
    let mut blocks = blocks(&page);
    // The two ways are alternatives: the Helm ones first, then the plain manifests.
    blocks.sort_by_key(|(section, _, _)| section == ALTERNATIVE);
    let mut ran = Vec::new();
    let mut revision_before = 0;
    for (_, script, skipped) in &blocks {
        if *skipped {
            continue;
        }
        let script = script.replace("<KEY>", "install-doc-test-key");
        if script.contains("helm uninstall") {
            revision_before = revision();
        }
        let output = run(&script)
            .unwrap_or_else(|out| panic!("{PAGE}: this block failed:\n{script}\n{out}"));
        let first = script
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        match first.as_str() {
            "helm install" => assert_eq!(revision(), 1, "{output}"),
            "helm upgrade" => assert_eq!(revision(), 2, "{output}"),
            "kubectl apply" => {
                kubectl(&["get", "deployment", "-n", "vmnet-system", "-o", "name"])
                    .map(|names| assert!(!names.trim().is_empty(), "no Deployment: {output}"))
                    .unwrap();
            }
            "kubectl -n" => {
                let key = kubectl(&[
                    "get",
                    "secret",
                    "edge-1-api",
                    "-n",
                    "vmnet-system",
                    "-o",
                    "jsonpath={.data.api-key}",
                ])
                .unwrap();
                assert!(!key.is_empty(), "the Secret has no api-key");
            }
            "helm uninstall" => {
                assert!(revision_before >= 1);
                assert!(
                    helm(&["status", "vmnet", "-n", "vmnet-system"]).is_err(),
                    "the release is still there"
                );
                for crd in CRDS {
                    kubectl(&["get", "crd", &format!("{crd}.vmnet.dev")])
                        .unwrap_or_else(|e| panic!("uninstall removed the CRD {crd}: {e}"));
                }
            }
            other => panic!("{PAGE}: a block this test has no check for ({other}):\n{script}"),
        }
        ran.push(first);
    }
    assert_eq!(
        ran,
        [
            "helm install",
            "kubectl -n",
            "helm upgrade",
            "helm uninstall",
            "kubectl apply",
        ],
        "the page's commands changed; give each new one a check here"
    );
    assert!(
        blocks.iter().any(|(_, _, skipped)| *skipped),
        "the Docker block is no longer marked"
    );

    // Leave the cluster as the other tests expect it: the Secret and the plain manifests'
    // objects gone (but the CRDs and the namespace, which hold other tests' objects), the
    // CRDs ours again.
    let _ = kubectl(&["delete", "secret", "edge-1-api", "-n", "vmnet-system"]);
    let manifests =
        std::fs::read_to_string(repo_root().join("deploy/vmnet-operator.yaml")).unwrap();
    for doc in serde_yaml_ng::Deserializer::from_str(&manifests) {
        let Ok(obj) = <serde_json::Value as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        let kind = obj["kind"].as_str().unwrap_or_default();
        if kind.is_empty() || kind == "CustomResourceDefinition" || kind == "Namespace" {
            continue;
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let what = format!("{kind}/{name}");
        let mut args = vec![
            "delete",
            what.as_str(),
            "--ignore-not-found",
            "--wait=false",
        ];
        if let Some(ns) = obj["metadata"]["namespace"].as_str() {
            args.extend(["-n", ns]);
        }
        kubectl(&args).unwrap();
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(install_crds())
        .unwrap();
}
