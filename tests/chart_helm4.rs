//! The Helm chart with Helm 4 (`helm4`, which hack/control-plane.sh builds next to Helm 3's
//! `helm`; tests/chart.rs proves the chart with Helm 3): it lints, renders the objects Helm 3
//! renders, which the apiserver accepts, and a release of it installs, upgrades (CRDs too)
//! and uninstalls, keeping the CRDs and every object in them.
//!
//! Its own test binary: tests/chart.rs and tests/install_doc.rs install the release `vmnet`
//! into `vmnet-system`, and all of them make the shared CRDs part of their release; cargo
//! runs test binaries one after the other.
//!
//! The CRDs exist in the cluster before the release (other tests install them, and may have
//! made them part of release `vmnet`): the release adopts them, as tests/chart.rs does, and
//! they are given back afterwards as they were (their labels and annotations, and the
//! current code's schema).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/chart.rs"]
mod chart;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chart::{CRDS, chart, copy_dir, documents, every_optional_feature, monitoring_standins};
use serde_json::{Value, json};
use vmnet_testkit::{TestNamespace, helm, helm4, install_crds, kubectl, kubectl_with_input};

/// The Helm 4 release (its cluster-scoped objects are named after it).
const RELEASE: &str = "vmnet-h4";
/// Labels the custom objects this test makes.
const TEST_LABEL: &str = "vmnet.dev/test-run";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Fails, saying how to get it, when there is no Helm 4 to test with.
fn require_helm4() {
    let version = helm4(&["version", "--template", "{{.Version}}"]).unwrap_or_else(|e| {
        panic!(
            "no Helm 4: {e:#}\nBuild it with `hack/control-plane.sh build` (it adds `helm4` to an \
             existing cache), or put a `helm4` on PATH when VMNET_TEST_KUBECONFIG names the cluster"
        )
    });
    assert!(
        version.starts_with("v4."),
        "helm4 is {version:?}, not Helm 4"
    );
}

fn chart_dir() -> String {
    chart().to_string_lossy().into_owned()
}

fn kind_and_name(d: &Value) -> String {
    format!(
        "{}/{}",
        d["kind"].as_str().unwrap_or("?"),
        d["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while Instant::now() < deadline {
        match f() {
            Ok(()) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("timed out after {secs} s waiting for {what}; last: {last}");
}

/// Removes these CRDs when dropped (the monitoring stand-ins this test made).
struct CreatedCrds(Vec<String>);

impl Drop for CreatedCrds {
    fn drop(&mut self) {
        chart::remove_crds(&self.0);
    }
}

#[test]
fn with_helm_4_the_chart_lints_and_renders_what_helm_3_renders_and_the_apiserver_accepts_it() {
    require_helm4();
    let rt = runtime();
    // The dry run's namespaced objects need a namespace that exists.
    let ns_guard = rt.block_on(TestNamespace::new("helm4-render")).unwrap();
    let ns = ns_guard.name().to_owned();

    let lint = helm4(&["lint", "--strict", &chart_dir()]).unwrap();
    assert!(
        lint.contains("1 chart(s) linted, 0 chart(s) failed"),
        "helm4 lint --strict: {lint}"
    );

    let _standins = CreatedCrds(monitoring_standins());
    let all = every_optional_feature(&ns);
    for (what, sets, kinds) in [
        (
            "the default values",
            "",
            &[
                "CustomResourceDefinition",
                "Deployment",
                "PodDisruptionBudget",
                "ClusterRole",
            ][..],
        ),
        (
            "every optional feature",
            all.as_str(),
            &[
                "ServiceMonitor",
                "PrometheusRule",
                "NetworkPolicy",
                "Service",
                "ConfigMap",
            ][..],
        ),
    ] {
        let chart = chart_dir();
        let mut args = vec!["template", RELEASE, &chart, "-n", &ns];
        if !sets.is_empty() {
            args.extend(["--set", sets]);
        }
        let four = helm4(&args).unwrap_or_else(|e| panic!("helm4 template, {what}: {e:#}"));
        let three = helm(&args).unwrap_or_else(|e| panic!("helm template, {what}: {e:#}"));

        // The same objects in the same order (the text differs: Helm 4 keeps each
        // template's trailing newline, a blank line before every `---`).
        let (four_docs, three_docs) = (documents(&four), documents(&three));
        let names = |docs: &[Value]| docs.iter().map(kind_and_name).collect::<Vec<_>>();
        assert_eq!(
            names(&four_docs),
            names(&three_docs),
            "{what}: Helm 4 renders other objects than Helm 3"
        );
        for (a, b) in four_docs.iter().zip(&three_docs) {
            assert!(
                a == b,
                "{what}: Helm 4 renders {} otherwise than Helm 3:\n--- Helm 4\n{}\n--- Helm 3\n{}",
                kind_and_name(a),
                serde_yaml_ng::to_string(a).unwrap(),
                serde_yaml_ng::to_string(b).unwrap()
            );
        }
        let rendered: BTreeSet<&str> = four_docs
            .iter()
            .filter_map(|d| d["kind"].as_str())
            .collect();
        for kind in kinds {
            assert!(rendered.contains(kind), "{what}: no {kind} in {rendered:?}");
        }
        let crds = four_docs
            .iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
            .count();
        assert_eq!(crds, CRDS.len(), "{what}: the chart's CRDs");

        kubectl_with_input(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=chart-helm4-test",
                "--dry-run=server",
                "-f",
                "-",
            ],
            &four,
        )
        .unwrap_or_else(|e| panic!("the apiserver refuses Helm 4's render with {what}: {e:#}"));
    }
}

/// A CRD's labels and annotations, as they were before the release adopted it.
struct Saved {
    crd: String,
    labels: Value,
    annotations: Value,
}

/// What the install test changes outside its namespace, put back when it ends (passed or
/// not): the release uninstalled, its cluster-scoped objects and the test's cluster-scoped
/// custom objects deleted, the CRDs' labels and annotations as they were and their schema
/// the current code's.
struct Restore {
    ns: String,
    saved: Vec<Saved>,
    cluster_objects: Vec<String>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = helm4(&["uninstall", RELEASE, "-n", &self.ns]);
        delete_cluster_scoped_leftovers();
        for o in &self.cluster_objects {
            let _ = kubectl(&["delete", o, "--ignore-not-found", "--wait=false"]);
        }
        for s in &self.saved {
            if let Err(e) = restore_metadata(s) {
                eprintln!("could not restore crd/{}: {e:#}", s.crd);
            }
        }
        // The release applied the chart's CRDs; the cluster's were the code's.
        for (_, crd) in vmnet_api::crds() {
            let _ = kubectl_with_input(
                &[
                    "apply",
                    "--server-side",
                    "--force-conflicts",
                    "--field-manager=vmnet-testkit",
                    "-f",
                    "-",
                ],
                &serde_json::to_string(&crd).unwrap(),
            );
        }
    }
}

/// The release's cluster-scoped objects (ClusterRoles, ClusterRoleBinding), which outlive
/// its namespace if a run stopped before `helm uninstall`.
fn delete_cluster_scoped_leftovers() {
    let _ = kubectl(&[
        "delete",
        "clusterrole,clusterrolebinding",
        "-l",
        &format!("app.kubernetes.io/instance={RELEASE}"),
        "--ignore-not-found",
    ]);
}

fn crd_json(crd: &str) -> Value {
    serde_json::from_str(&kubectl(&["get", "crd", crd, "-o", "json"]).unwrap()).unwrap()
}

fn save_metadata(crd: &str) -> Saved {
    let o = crd_json(crd);
    let or_empty = |v: &Value| if v.is_object() { v.clone() } else { json!({}) };
    Saved {
        crd: crd.to_owned(),
        labels: or_empty(&o["metadata"]["labels"]),
        annotations: or_empty(&o["metadata"]["annotations"]),
    }
}

/// A merge patch that turns `now` into `was` (keys `was` lacks removed).
fn map_patch(was: &Value, now: &Value) -> Value {
    let mut patch = was.as_object().cloned().unwrap_or_default();
    for key in now.as_object().into_iter().flatten().map(|(k, _)| k) {
        patch.entry(key.clone()).or_insert(Value::Null);
    }
    Value::Object(patch)
}

fn restore_metadata(s: &Saved) -> anyhow::Result<()> {
    let now: Value = serde_json::from_str(&kubectl(&["get", "crd", &s.crd, "-o", "json"])?)?;
    let patch = json!({"metadata": {
        "labels": map_patch(&s.labels, &now["metadata"]["labels"]),
        "annotations": map_patch(&s.annotations, &now["metadata"]["annotations"]),
    }});
    kubectl(&[
        "patch",
        "crd",
        &s.crd,
        "--type=merge",
        "-p",
        &patch.to_string(),
    ])?;
    Ok(())
}

/// One object of each of the chart's kinds (no operator runs: nothing acts on them).
fn custom_objects(ns: &str, suffix: &str) -> (Vec<Value>, Vec<String>) {
    let label = json!({TEST_LABEL: ns});
    let router = format!("h4-router-{suffix}");
    let objects = vec![
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "VyosRouter",
            "metadata": {"name": router, "labels": label},
            "spec": {"endpoint": "http://127.0.0.1:9", "tls": {"insecurePlainHttp": true},
                "credentialsSecretRef": {"name": "router-api", "namespace": ns},
                "ruleRange": {"start": 1000, "end": 1999}}}),
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "IpPool",
            "metadata": {"name": format!("h4-ips-{suffix}"), "labels": label},
            "spec": {"addresses": ["10.78.0.0/24"], "allowedNamespaces": [ns], "autoAssign": true}}),
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "PortPool",
            "metadata": {"name": format!("h4-ports-{suffix}"), "labels": label},
            "spec": {"router": router, "externalAddress": "203.0.113.10",
                "ports": ["30000-30999"], "autoAssign": true, "allowedNamespaces": [ns]}}),
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "VmNetwork",
            "metadata": {"name": "vm-1", "namespace": ns, "labels": label},
            "spec": {"router": router, "vmRef": {"kind": "VirtualMachine", "name": "vm-1"},
                "address": "10.78.0.10",
                "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}]}}),
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "PortRule",
            "metadata": {"name": "dns", "namespace": ns, "labels": label},
            "spec": {"router": router, "protocol": "tcp_udp", "externalAddress": "203.0.113.10",
                "externalPort": 53, "internalAddress": "10.78.0.10"}}),
    ];
    let cluster_scoped = objects
        .iter()
        .filter(|o| o["metadata"]["namespace"].is_null())
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap().to_lowercase(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    (objects, cluster_scoped)
}

/// The custom objects, as `kind/name` with their uid (the same uid: not deleted and made
/// again).
fn custom_objects_present(ns: &str) -> BTreeSet<String> {
    let mut present = BTreeSet::new();
    for (kinds, scope) in [
        (
            "vyosrouters.vmnet.dev,ippools.vmnet.dev,portpools.vmnet.dev",
            None,
        ),
        ("vmnetworks.vmnet.dev,portrules.vmnet.dev", Some(ns)),
    ] {
        let selector = format!("{TEST_LABEL}={ns}");
        let mut args = vec!["get", kinds, "-l", &selector, "-o", "json"];
        if let Some(ns) = scope {
            args.extend(["-n", ns]);
        }
        let list: Value = serde_json::from_str(&kubectl(&args).unwrap()).unwrap();
        for o in list["items"].as_array().unwrap() {
            present.insert(format!(
                "{} {}",
                kind_and_name(o),
                o["metadata"]["uid"].as_str().unwrap()
            ));
        }
    }
    present
}

/// The objects of a release manifest as the apiserver has them (an error when one is
/// missing).
fn live_objects(ns: &str, manifest: &str) -> anyhow::Result<Vec<Value>> {
    let out = kubectl_with_input(
        &[
            "get",
            "-n",
            ns,
            "-f",
            "-",
            "-o",
            "json",
            "--show-managed-fields",
        ],
        manifest,
    )?;
    let v: Value = serde_json::from_str(&out)?;
    Ok(match v["items"].as_array() {
        Some(items) => items.clone(),
        None => vec![v],
    })
}

fn release_status(ns: &str) -> Value {
    serde_json::from_str(&helm4(&["status", RELEASE, "-n", ns, "-o", "json"]).unwrap()).unwrap()
}

fn deployment(objects: &[Value]) -> &Value {
    objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("the release has a Deployment")
}

#[test]
fn a_helm_4_release_installs_upgrades_and_uninstalls_and_keeps_the_crds_and_their_objects() {
    require_helm4();
    let rt = runtime();
    rt.block_on(install_crds()).unwrap();
    let ns_guard = rt.block_on(TestNamespace::new("helm4")).unwrap();
    let ns = ns_guard.name().to_owned();
    let suffix = ns.rsplit('-').next().unwrap().to_owned();
    delete_cluster_scoped_leftovers();

    let (objects, cluster_objects) = custom_objects(&ns, &suffix);
    let mut restore = Restore {
        ns: ns.clone(),
        saved: Vec::new(),
        cluster_objects,
    };
    for o in &objects {
        kubectl_with_input(&["apply", "-f", "-"], &o.to_string())
            .unwrap_or_else(|e| panic!("making {}: {e:#}", kind_and_name(o)));
    }
    let custom = custom_objects_present(&ns);
    assert_eq!(custom.len(), objects.len(), "{custom:#?}");

    // Adopt the CRDs, as tests/chart.rs does: Helm takes an existing object into a release
    // when it carries that release's ownership metadata.
    for crd in CRDS {
        let name = format!("{crd}.vmnet.dev");
        restore.saved.push(save_metadata(&name));
        kubectl(&[
            "label",
            &format!("crd/{name}"),
            "--overwrite",
            "app.kubernetes.io/managed-by=Helm",
        ])
        .unwrap();
        kubectl(&[
            "annotate",
            &format!("crd/{name}"),
            "--overwrite",
            &format!("meta.helm.sh/release-name={RELEASE}"),
            &format!("meta.helm.sh/release-namespace={ns}"),
        ])
        .unwrap();
    }

    // Install. Helm 4 applies server-side: the CRDs' fields that other managers set to other
    // values (the `kubectl` of tests/install_doc.rs's `kubectl apply --server-side` owns
    // their `app.kubernetes.io/instance` label) are conflicts unless forced. Helm 3's
    // client-side patch overwrote them without a word. No --wait: no kubelet runs the Pods
    // (and Helm 4's default, `hookOnly`, waits for hooks only; the chart has none).
    let chart = chart_dir();
    helm4(&["install", RELEASE, &chart, "-n", &ns, "--force-conflicts"])
        .unwrap_or_else(|e| panic!("helm4 install: {e:#}"));
    let status = release_status(&ns);
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    assert_eq!(status["version"], 1, "{status}");
    let manifest = helm4(&["get", "manifest", RELEASE, "-n", &ns]).unwrap();
    let docs = documents(&manifest);
    let live = live_objects(&ns, &manifest)
        .unwrap_or_else(|e| panic!("an object of the release is missing: {e:#}"));
    assert_eq!(
        live.iter().map(kind_and_name).collect::<BTreeSet<_>>(),
        docs.iter().map(kind_and_name).collect::<BTreeSet<_>>(),
        "the release's objects"
    );
    for o in &live {
        let what = kind_and_name(o);
        let meta = &o["metadata"];
        assert_eq!(
            meta["labels"]["app.kubernetes.io/instance"], RELEASE,
            "{what}"
        );
        assert_eq!(
            meta["annotations"]["meta.helm.sh/release-name"], RELEASE,
            "{what}"
        );
        assert_eq!(
            meta["annotations"]["meta.helm.sh/release-namespace"],
            ns.as_str(),
            "{what}"
        );
    }
    let kinds: BTreeSet<&str> = live.iter().filter_map(|o| o["kind"].as_str()).collect();
    for kind in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(kind), "no {kind} in the release: {kinds:?}");
    }
    let d = deployment(&live);
    assert_eq!(d["spec"]["replicas"], 2, "the default replicas");
    let applied_by_helm = d["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["manager"] == "helm" && m["operation"] == "Apply");
    assert!(
        applied_by_helm,
        "Helm 4 did not apply server-side: {}",
        d["metadata"]["managedFields"]
    );
    for crd in CRDS {
        let o = crd_json(&format!("{crd}.vmnet.dev"));
        assert_eq!(
            o["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "crd/{crd}"
        );
    }

    // Upgrade to a changed chart and changed values: the Deployment changes, the
    // PodDisruptionBudget (only with more than one replica) goes, the CRDs are upgraded.
    // The CRD gets a label of its own: tests/chart.rs's `vmnet.dev/upgraded` may be on it
    // already, another manager's field, which Helm 4's server-side apply would not change
    // without --force-conflicts.
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("changed");
    copy_dir(&chart::chart(), &changed);
    let crd_template = changed.join("templates/crds/portrules.yaml");
    let text = std::fs::read_to_string(&crd_template).unwrap();
    assert!(text.contains("  labels:\n"), "{}", crd_template.display());
    std::fs::write(
        &crd_template,
        text.replacen(
            "  labels:\n",
            "  labels:\n    vmnet.dev/helm4-upgraded: \"yes\"\n",
            1,
        ),
    )
    .unwrap();
    helm4(&[
        "upgrade",
        RELEASE,
        changed.to_str().unwrap(),
        "-n",
        &ns,
        "--set",
        "replicaCount=1,operator.logFormat=json",
    ])
    .unwrap_or_else(|e| panic!("helm4 upgrade: {e:#}"));
    let status = release_status(&ns);
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    assert_eq!(status["version"], 2, "{status}");
    let upgraded = helm4(&["get", "manifest", RELEASE, "-n", &ns]).unwrap();
    let upgraded_docs = documents(&upgraded);
    assert!(
        !upgraded_docs
            .iter()
            .any(|d| d["kind"] == "PodDisruptionBudget"),
        "one replica, yet a PodDisruptionBudget in the manifest"
    );
    let live = live_objects(&ns, &upgraded)
        .unwrap_or_else(|e| panic!("an object of the upgraded release is missing: {e:#}"));
    let d = deployment(&live);
    assert_eq!(d["spec"]["replicas"], 1, "replicaCount=1");
    let args = &d["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--log-format=json"),
        "operator.logFormat=json: {args}"
    );
    let pdbs = kubectl(&["get", "pdb", "-n", &ns, "-o", "name"]).unwrap();
    assert!(pdbs.trim().is_empty(), "the upgrade left {pdbs}");
    let label = kubectl(&[
        "get",
        "crd",
        "portrules.vmnet.dev",
        "-o",
        "jsonpath={.metadata.labels.vmnet\\.dev/helm4-upgraded}",
    ])
    .unwrap();
    assert_eq!(label, "yes", "helm4 upgrade upgraded the CRD");
    assert_eq!(
        custom_objects_present(&ns),
        custom,
        "the upgrade kept every object"
    );

    // Uninstall: the release and its objects go, the CRDs and every object in them stay.
    let out = helm4(&["uninstall", RELEASE, "-n", &ns]).unwrap_or_else(|e| panic!("{e:#}"));
    for crd in CRDS {
        assert!(
            out.contains(&format!("[CustomResourceDefinition] {crd}.vmnet.dev")),
            "helm4 uninstall does not say it kept crd/{crd}: {out}"
        );
    }
    // (Helm 4 lists releases in every state by default; it has no --all.)
    let releases = helm4(&["list", "-n", &ns, "-q"]).unwrap();
    assert!(releases.trim().is_empty(), "releases left: {releases}");
    let records = kubectl(&[
        "get",
        "secrets",
        "-n",
        &ns,
        "-l",
        "owner=helm",
        "-o",
        "name",
    ])
    .unwrap();
    assert!(records.trim().is_empty(), "release records left: {records}");
    let not_crds: String = upgraded
        .split("\n---")
        .filter(|d| !d.contains("\nkind: CustomResourceDefinition"))
        .collect::<Vec<_>>()
        .join("\n---");
    eventually(60, "the release's objects to be gone", || {
        let left = kubectl_with_input(
            &[
                "get",
                "-n",
                &ns,
                "--ignore-not-found",
                "-o",
                "name",
                "-f",
                "-",
            ],
            &not_crds,
        )
        .map_err(|e| e.to_string())?;
        if left.trim().is_empty() {
            Ok(())
        } else {
            Err(format!("still there: {left}"))
        }
    });
    for crd in CRDS {
        let o = crd_json(&format!("{crd}.vmnet.dev"));
        assert!(
            o["metadata"]["deletionTimestamp"].is_null(),
            "crd/{crd} is being deleted"
        );
        let established = o["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        assert!(established, "crd/{crd} is no longer established");
    }
    assert_eq!(
        custom_objects_present(&ns),
        custom,
        "helm4 uninstall kept every object of the CRDs"
    );
    drop(restore);
}
