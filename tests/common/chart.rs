//! What the chart's tests share (tests/chart.rs, tests/chart_helm4.rs). Included with `#[path = "common/chart.rs"] mod chart;`, apart from
//! tests/common/mod.rs, whose worlds a chart test does not need.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use vmnet_testkit::{kubectl, kubectl_with_input, repo_root};

/// The chart, relative to the repository root.
pub const CHART: &str = "charts/vmnet-operator";

/// The five CRDs of the chart (`<plural>.vmnet.dev`).
pub const CRDS: [&str; 5] = [
    "vyosrouters",
    "ippools",
    "portpools",
    "vmnetworks",
    "portrules",
];

/// The chart's directory.
pub fn chart() -> PathBuf {
    repo_root().join(CHART)
}

/// `--set` for every optional feature of the chart switched on (as tests/chart.rs renders
/// it), with the router credentials read in `credentials_ns` and `default`.
pub fn every_optional_feature(credentials_ns: &str) -> String {
    format!(
        "metrics.service.enabled=true,metrics.serviceMonitor.enabled=true,networkPolicy.enabled=true,\
         metrics.prometheusRule.enabled=true,metrics.dashboard.enabled=true,\
         credentials.namespaces={{{credentials_ns},default}},operator.watchNamespace=lab,\
         operator.selector=shard=a,backups.namespace=default,\
         image.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000"
    )
}

/// Every document of a multi-document YAML stream, as JSON.
pub fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---")
        .filter_map(|d| serde_yaml_ng::from_str::<Value>(d).ok())
        .filter(|v| v.is_object())
        .collect()
}

/// The prometheus-operator kinds the chart's optional monitoring objects use.
const MONITORING: [(&str, &str); 2] = [
    ("servicemonitors", "ServiceMonitor"),
    ("prometheusrules", "PrometheusRule"),
];

/// Stand-ins for prometheus-operator's CRDs (open schemas, ours), so the apiserver knows
/// the kinds the chart's optional monitoring objects use. Returns the names of those it
/// created (not those that were there already), for [`remove_crds`].
pub fn monitoring_standins() -> Vec<String> {
    let mut created = Vec::new();
    for (plural, kind) in MONITORING {
        let name = format!("{plural}.monitoring.coreos.com");
        if kubectl(&["get", "crd", &name, "-o", "name"]).is_ok() {
            continue;
        }
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                "names": {"plural": plural, "kind": kind},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}
        });
        kubectl_with_input(&["apply", "-f", "-"], &crd.to_string()).unwrap();
        created.push(name);
    }
    for name in &created {
        kubectl(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{name}"),
            "--timeout=30s",
        ])
        .unwrap();
    }
    created
}

/// Deletes these CRDs (without waiting).
pub fn remove_crds(names: &[String]) {
    for name in names {
        let _ = kubectl(&["delete", "crd", name, "--ignore-not-found", "--wait=false"]);
    }
}

/// Copies a directory tree (a chart, to change it).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Gives the CRDs (other tests install them without Helm) the ownership metadata of
/// `release` in `namespace`, so `helm install` adopts them as it would its own.
pub fn adopt_crds(release: &str, namespace: &str) {
    for crd in CRDS {
        let name = format!("crd/{crd}.vmnet.dev");
        kubectl(&[
            "label",
            &name,
            "--overwrite",
            "app.kubernetes.io/managed-by=Helm",
        ])
        .unwrap();
        kubectl(&[
            "annotate",
            &name,
            "--overwrite",
            &format!("meta.helm.sh/release-name={release}"),
            &format!("meta.helm.sh/release-namespace={namespace}"),
        ])
        .unwrap();
    }
}
