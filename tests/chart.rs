//! The Helm chart, proven on the real apiserver. There is no kubelet, so the chart's Pod
//! never runs: the test installs the chart, takes a token for its ServiceAccount
//! (TokenRequest, as `kubectl create token` does), and starts the operator binary with that
//! token and the args and env of the chart's Deployment. If the chart's RBAC lacked a verb
//! the operator needs, the examples would not converge.
//!
//! Its own test binary (the examples' router and vyos-sim address are shared with
//! tests/examples_e2e.rs, and cargo runs test binaries one after the other).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use charts::{CRDS, adopt_crds, copy_dir, documents, every_optional_feature, monitoring_standins};
use serde_json::{Value, json};
use vmnet_testkit::{helm, install_crds, kubectl, kubectl_with_input, repo_root};

#[path = "common/chart.rs"]
mod charts;

const RELEASE: &str = "vmnet";
const NS: &str = "vmnet-system";
const CHART: &str = "charts/vmnet-operator";
/// What a cluster that serves MutatingAdmissionPolicy tells Helm.
const MAP_API: &str = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy";

/// Held by the tests that install the chart's MutatingAdmissionPolicy: the installed chart's
/// acts in every namespace, and the policy test checks that its own, scoped to one
/// namespace, leaves another alone.
static ADMISSION_POLICY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn admission_policy_lock() -> std::sync::MutexGuard<'static, ()> {
    ADMISSION_POLICY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn chart() -> String {
    charts::chart().to_string_lossy().into_owned()
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

#[test]
fn the_chart_lints_and_renders_into_objects_the_apiserver_accepts() {
    install_crds_blocking();
    let lint = helm(&["lint", "--strict", &chart()]).unwrap();
    assert!(lint.contains("0 chart(s) failed"), "{lint}");
    monitoring_standins();
    let _ = kubectl(&["create", "namespace", NS]);
    let every = every_optional_feature(NS);
    for sets in ["", every.as_str()] {
        // Its own release name, so the install test's objects are not in the way.
        let mut args = vec!["template", "dryrun", CHART, "-n", NS];
        if !sets.is_empty() {
            // As on a cluster that serves MutatingAdmissionPolicy (this one does).
            args.extend(["--set", sets, "--api-versions", MAP_API]);
        }
        let chart = chart();
        args[2] = &chart;
        let out = helm(&args).unwrap();
        kubectl_with_input(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=chart-test",
                "--dry-run=server",
                "-f",
                "-",
            ],
            &out,
        )
        .unwrap_or_else(|e| panic!("with {sets:?}: {e}"));
    }
}

/// The finalizers of an object that has only the operator's, as kubectl prints them.
const OURS: &str = r#"["vmnet.dev/cleanup"]"#;

fn finalizers(kind: &str, name: &str, ns: &str) -> String {
    kubectl(&[
        "get",
        kind,
        name,
        "-n",
        ns,
        "-o",
        "jsonpath={.metadata.finalizers}",
    ])
    .unwrap_or_default()
}

/// Sets (merge patch) the finalizers of a live object; `list` is JSON (`null` drops them).
fn set_finalizers(kind: &str, name: &str, ns: &str, list: &str) {
    let patch = format!(r#"{{"metadata":{{"finalizers":{list}}}}}"#);
    kubectl(&["patch", kind, name, "-n", ns, "--type=merge", "-p", &patch]).unwrap();
}

fn vmnetwork(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: vmnet.dev/v1alpha1\nkind: VmNetwork\nmetadata:\n  name: {name}\n  \
         namespace: {ns}\nspec:\n  router: edge-1\n  address: 10.20.0.10\n  ports:\n    \
         - name: ssh\n      port: 22\n      protocol: tcp\n"
    )
}

/// The chart's MutatingAdmissionPolicy (here scoped to one namespace by
/// `operator.watchNamespace`, so no other test's objects are touched): VmNetworks and
/// PortRules have the operator's finalizer from their creation, with no operator running;
/// a server-side apply of a manifest without it, or a patch that drops it, keeps it; an
/// object being deleted can lose it and go; another namespace is left alone.
#[test]
fn the_admission_policy_puts_the_finalizer_on_at_creation() {
    let _alone = admission_policy_lock();
    install_crds_blocking();
    let (ns, other) = ("vmnet-policy-test", "vmnet-policy-other");
    for n in [ns, other] {
        let _ = kubectl(&["delete", "namespace", n, "--wait=true", "--timeout=60s"]);
        kubectl(&["create", "namespace", n]).unwrap();
    }
    let policy = helm(&[
        "template",
        "policytest",
        &chart(),
        "-n",
        ns,
        "--show-only",
        "templates/admissionpolicy.yaml",
        "--api-versions",
        MAP_API,
        "--set",
        &format!("operator.watchNamespace={ns}"),
    ])
    .unwrap();
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = kubectl_with_input(&["delete", "--ignore-not-found", "-f", "-"], &self.0);
        }
    }
    let _gone = Gone(policy.clone());
    kubectl_with_input(&["apply", "-f", "-"], &policy).unwrap();

    let apply = |yaml: &str| {
        kubectl_with_input(
            &[
                "apply",
                "--server-side",
                "--field-manager=person",
                "-f",
                "-",
            ],
            yaml,
        )
    };
    // The apiserver loads a new policy within a few seconds: until then a create is not
    // mutated, so wait on dry runs.
    eventually(30, "the policy in effect", || {
        let out = kubectl_with_input(
            &[
                "apply",
                "--server-side",
                "--field-manager=person",
                "--dry-run=server",
                "-o",
                "jsonpath={.metadata.finalizers}",
                "-f",
                "-",
            ],
            &vmnetwork("probe", ns),
        )
        .map_err(|e| e.to_string())?;
        out.contains("vmnet.dev/cleanup").then_some(()).ok_or(out)
    });

    apply(&vmnetwork("vm", ns)).unwrap();
    assert_eq!(finalizers("vmnetwork", "vm", ns), OURS);
    // The same manifest applied again (it does not list the finalizer) keeps it.
    apply(&vmnetwork("vm", ns)).unwrap();
    assert_eq!(finalizers("vmnetwork", "vm", ns), OURS);
    // A patch that drops it from a live object: put back.
    set_finalizers("vmnetwork", "vm", ns, "null");
    assert_eq!(finalizers("vmnetwork", "vm", ns), OURS);
    // Someone else's finalizer stays beside it.
    set_finalizers("vmnetwork", "vm", ns, r#"["example.com/keep"]"#);
    assert_eq!(
        finalizers("vmnetwork", "vm", ns),
        r#"["example.com/keep","vmnet.dev/cleanup"]"#
    );

    let rule = format!(
        "apiVersion: vmnet.dev/v1alpha1\nkind: PortRule\nmetadata:\n  name: dns\n  \
         namespace: {ns}\nspec:\n  router: edge-1\n  protocol: udp\n  externalAddress: \
         203.0.113.10\n  externalPort: 53\n  internalAddress: 10.20.0.10\n"
    );
    apply(&rule).unwrap();
    assert_eq!(finalizers("portrule", "dns", ns), OURS);

    // Another namespace: not the policy's.
    apply(&vmnetwork("vm", other)).unwrap();
    assert_eq!(finalizers("vmnetwork", "vm", other), "");

    // Being deleted: the finalizers can go, and the object with them.
    for (kind, name) in [("vmnetwork", "vm"), ("portrule", "dns")] {
        kubectl(&["delete", kind, name, "-n", ns, "--wait=false"]).unwrap();
        set_finalizers(kind, name, ns, "null");
        eventually(20, &format!("{kind} {name} gone"), || {
            match kubectl(&["get", kind, name, "-n", ns, "-o", "name"]) {
                Err(e) if e.to_string().contains("NotFound") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
    }
    for n in [ns, other] {
        let _ = kubectl(&["delete", "namespace", n, "--wait=false"]);
    }
}

/// Every PromQL expression of the chart's alerts and dashboard, with where it is.
fn monitoring_expressions() -> Vec<(String, String)> {
    let sets = "metrics.prometheusRule.enabled=true,metrics.dashboard.enabled=true";
    let out = helm(&["template", RELEASE, &chart(), "-n", NS, "--set", sets]).unwrap();
    let mut exprs = Vec::new();
    for d in documents(&out) {
        if d["kind"] == "PrometheusRule" {
            for g in d["spec"]["groups"].as_array().unwrap() {
                for r in g["rules"].as_array().unwrap() {
                    let place = format!("alert {}", r["alert"].as_str().unwrap());
                    exprs.push((place, r["expr"].as_str().unwrap().to_owned()));
                }
            }
        }
        let name = d["metadata"]["name"].as_str().unwrap_or_default();
        if d["kind"] == "ConfigMap" && name.ends_with("-dashboard") {
            let json = d["data"]["vmnet-operator.json"].as_str().unwrap();
            let dash: Value = serde_json::from_str(json).unwrap();
            for p in dash["panels"].as_array().unwrap() {
                for t in p["targets"].as_array().unwrap() {
                    let place = format!("panel {:?}", p["title"].as_str().unwrap());
                    exprs.push((place, t["expr"].as_str().unwrap().to_owned()));
                }
            }
        }
    }
    assert!(exprs.len() >= 14, "alerts and panels: {exprs:?}");
    exprs
}

/// The vmnet metric names an expression uses.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("vmnet_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn every_alert_and_dashboard_expression_parses() {
    for (place, expr) in monitoring_expressions() {
        promql_parser::parser::parse(&expr)
            .unwrap_or_else(|e| panic!("{place}: {expr:?} does not parse: {e}"));
        assert!(
            !metric_names(&expr).is_empty(),
            "{place} uses no vmnet metric"
        );
    }
}

/// Checks that every metric the alerts and the dashboard use is in `exposition` (the
/// operator's /metrics).
fn assert_exported(exposition: &str) {
    // Families with no sample yet (a counter never incremented) still have their TYPE.
    let mut exported = std::collections::BTreeSet::new();
    for line in exposition.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let mut w = t.split(' ');
            let (name, kind) = (w.next().unwrap_or_default(), w.next().unwrap_or_default());
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            for s in suffixes {
                exported.insert(format!("{name}{s}"));
            }
        } else if !line.starts_with('#') {
            exported.extend(line.split(['{', ' ']).next().map(str::to_owned));
        }
    }
    let mut missing = Vec::new();
    for (place, expr) in monitoring_expressions() {
        for name in metric_names(&expr) {
            if !exported.contains(&name) {
                missing.push(format!("{place}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not exported by the operator: {missing:#?}\n{exposition}"
    );
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

#[test]
fn the_plain_manifests_are_the_chart_with_default_values() {
    let rendered = helm(&["template", RELEASE, &chart(), "-n", NS]).unwrap();
    let want = format!(
        "# Generated by `make manifests` (helm template {RELEASE} charts/vmnet-operator -n {NS});\n\
         # do not edit. Install with: kubectl apply --server-side -f deploy/vmnet-operator.yaml\n\
         apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n{rendered}"
    );
    let have =
        std::fs::read_to_string(repo_root().join("deploy/vmnet-operator.yaml")).unwrap_or_default();
    assert!(
        have == want,
        "deploy/vmnet-operator.yaml is stale; run `make manifests`"
    );
}

#[test]
fn the_values_reference_is_generated_from_values_yaml() {
    let out = Command::new("python3")
        .arg(repo_root().join("hack/chart-docs.py"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn install_crds_blocking() {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(install_crds())
        .unwrap();
}

/// A kubeconfig for the chart's ServiceAccount: the admin kubeconfig's server and CA, and a
/// token from the TokenRequest API.
fn service_account_kubeconfig(sa: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let admin: Value = serde_json::from_str(
        &kubectl(&["config", "view", "--raw", "--minify", "-o", "json"]).unwrap(),
    )
    .unwrap();
    let cluster = &admin["clusters"][0]["cluster"];
    let token = kubectl(&["create", "token", sa, "-n", NS, "--duration=1h"]).unwrap();
    let cfg = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": sa, "user": {"token": token.trim()}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": sa}}],
        "current-context": "c",
    });
    let path = dir.join("sa.kubeconfig");
    std::fs::write(&path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
    path
}

struct Operator(Child, std::net::SocketAddr);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the operator binary as the chart's Pod would: the container's args and env
/// (the downward API's POD_NAME and POD_NAMESPACE filled in), the ServiceAccount's token.
/// The admin address is moved to a free port (tests share one host).
fn run_as_the_chart_would(deployment: &Value, kubeconfig: &std::path::Path) -> Operator {
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    let admin = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let args: Vec<String> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .map(|a| {
            if a.starts_with("--admin-addr=") {
                format!("--admin-addr={admin}")
            } else {
                a
            }
        })
        .collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmnet-operator"));
    cmd.args(&args)
        .env_clear()
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info");
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let value = match (name, e["value"].as_str()) {
            (_, Some(v)) => v.to_owned(),
            ("POD_NAME", None) => "vmnet-operator-test-0".to_owned(),
            ("POD_NAMESPACE", None) => NS.to_owned(),
            (other, None) => panic!("env {other} has no value the test can give"),
        };
        cmd.env(name, value);
    }
    Operator(cmd.spawn().unwrap(), admin)
}

fn can_i(sa: &str, verb: &str, what: &str, ns: &str) -> bool {
    let who = format!("--as=system:serviceaccount:{NS}:{sa}");
    kubectl(&["auth", "can-i", verb, what, "-n", ns, &who])
        .map(|o| o.trim() == "yes")
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The lock only keeps the policy test out while the chart is installed; nothing else takes it.
#[allow(clippy::await_holding_lock)]
async fn installed_with_helm_the_operator_converges_the_examples_with_the_charts_rights_only() {
    let _alone = admission_policy_lock();
    install_crds().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The CRDs exist already (other tests install them): Helm adopts them, as it adopts
    // any object with its ownership metadata.
    adopt_crds(RELEASE, NS);
    let _ = helm(&["uninstall", RELEASE, "-n", NS]);
    helm(&[
        "install",
        RELEASE,
        &chart(),
        "-n",
        NS,
        "--create-namespace",
        "--wait=false",
    ])
    .unwrap();
    let manifest = helm(&["get", "manifest", RELEASE, "-n", NS]).unwrap();
    let docs = documents(&manifest);
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the chart has a Deployment")
        .clone();
    let sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap()
        .to_owned();

    // Least privilege, as the apiserver sees it.
    let list = kubectl(&[
        "auth",
        "can-i",
        "--list",
        "-n",
        NS,
        &format!("--as=system:serviceaccount:{NS}:{sa}"),
    ])
    .unwrap();
    for line in list.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (resource, verbs) = (cols.first().copied().unwrap_or_default(), line);
        assert!(!resource.starts_with('*'), "a wildcard resource: {line}");
        assert!(!verbs.contains("[*]"), "a wildcard verb: {line}");
    }
    // Backups are Secrets the operator writes in its own namespace, and nowhere else;
    // nothing may replace a Secret whole.
    for verb in ["create", "patch", "delete"] {
        assert!(
            can_i(&sa, verb, "secrets", NS),
            "must {verb} backup Secrets in {NS}"
        );
        assert!(
            !can_i(&sa, verb, "secrets", "default"),
            "may {verb} Secrets outside {NS}"
        );
    }
    assert!(!can_i(&sa, "update", "secrets", NS), "may update Secrets");
    assert!(
        can_i(&sa, "get", "secrets", NS),
        "must read Secrets in {NS}"
    );
    assert!(
        !can_i(&sa, "get", "secrets", "default"),
        "reads Secrets outside {NS}"
    );
    assert!(
        !can_i(&sa, "list", "secrets", "kube-system"),
        "lists Secrets outside {NS}"
    );

    // vyos-sim at the examples' address, the operator with the chart's rights.
    let mut opts = vyos_sim::SimOptions::for_tests();
    opts.listen = "127.0.0.1:18443".parse().unwrap();
    opts.api_keys = vec!["demo-key-change-me".into()];
    let sim = vyos_sim::start(opts).await.unwrap();
    let kubeconfig = service_account_kubeconfig(&sa, dir.path());
    let operator = run_as_the_chart_would(&deployment, &kubeconfig);
    let examples = repo_root().join("examples");
    let examples = examples.to_str().unwrap();
    kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=examples",
        "-f",
        examples,
    ])
    .unwrap();
    // Every vmnet object the examples declare (and only those: other tests' objects may
    // share the cluster).
    let declared = kubectl(&["get", "-f", examples, "-o", "name"]).unwrap();
    let declared: Vec<&str> = declared
        .lines()
        .filter(|l| l.contains(".vmnet.dev/"))
        .collect();
    assert!(declared.len() >= 6, "{declared:?}");
    for obj in declared {
        let ns = if obj.starts_with("vmnetwork") || obj.starts_with("portrule") {
            "lab"
        } else {
            "default"
        };
        tokio::task::block_in_place(|| {
            kubectl(&[
                "wait",
                "--for=condition=Ready",
                obj,
                "-n",
                ns,
                "--timeout=120s",
            ])
            .unwrap_or_else(|e| panic!("{obj}: {e}"))
        });
    }
    // And the PortRules the operator made for the VmNetworks.
    tokio::task::block_in_place(|| {
        kubectl(&[
            "wait",
            "--for=condition=Ready",
            "portrule",
            "--all",
            "-n",
            "lab",
            "--timeout=120s",
        ])
        .unwrap()
    });
    let rules = sim.running_config();
    assert!(
        rules.pointer("/nat/destination/rule").is_some(),
        "nothing on the router"
    );
    // The example router backs up before its first change: with the chart's Role, into
    // the release namespace.
    let backups = kubectl(&[
        "get",
        "secrets",
        "-n",
        NS,
        "-l",
        "vmnet.dev/backup-of=edge-1",
        "-o",
        "name",
    ])
    .unwrap();
    assert!(
        backups.lines().count() >= 1,
        "no backup Secret in {NS} with the chart's rights"
    );
    let failure = kubectl(&[
        "get",
        "vyosrouter",
        "edge-1",
        "-o",
        "jsonpath={.status.backup.lastFailure}",
    ])
    .unwrap();
    assert!(failure.trim().is_empty(), "a backup failed: {failure}");
    // API Priority and Fairness: the chart's FlowSchema put the operator's Lease requests
    // in the leader-election priority level (the apiserver's own count says so).
    let schema = format!("{RELEASE}-vmnet-operator-leader");
    let dispatched = kubectl(&["get", "--raw", "/metrics"])
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("apiserver_flowcontrol_dispatched_requests_total{"))
        .filter(|l| l.contains(&format!("flow_schema=\"{schema}\"")))
        .filter(|l| l.contains("priority_level=\"leader-election\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    assert!(
        dispatched > 0.0,
        "no request went through FlowSchema {schema} to leader-election"
    );
    // Every metric the alerts and the dashboard use is exported by this running operator
    // (object counts are refreshed every 15 s).
    tokio::time::sleep(Duration::from_secs(16)).await;
    let exposition = tokio::task::block_in_place(|| http_get(operator.1, "/metrics"));
    assert_exported(&exposition);

    // A router whose Secret is outside the chart's namespaces is Stalled, naming them.
    kubectl_with_input(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "VyosRouter",
            "metadata": {"name": "elsewhere"},
            "spec": {"endpoint": "http://127.0.0.1:18443", "tls": {"insecurePlainHttp": true},
                "credentialsSecretRef": {"name": "edge-1-api", "namespace": "default"},
                "ruleRange": {"start": 20000, "end": 20999}}})
        .to_string(),
    )
    .unwrap();
    tokio::task::block_in_place(|| {
        eventually(60, "router elsewhere Stalled", || {
            let o: Value = serde_json::from_str(
                &kubectl(&["get", "vyosrouter", "elsewhere", "-o", "json"]).unwrap(),
            )
            .unwrap();
            let stalled = o["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Stalled" && c["status"] == "True")
                .cloned();
            match stalled {
                Some(c)
                    if c["reason"] == "SecretNamespaceNotAllowed"
                        && c["message"]
                            .as_str()
                            .unwrap_or_default()
                            .contains("\"vmnet-system\"") =>
                {
                    Ok(())
                }
                _ => Err(o["status"].to_string()),
            }
        })
    });
    kubectl(&[
        "delete",
        "vyosrouter",
        "elsewhere",
        "--wait=true",
        "--timeout=60s",
    ])
    .unwrap();

    // People: edit in one namespace manages VmNetworks there, nothing cluster-scoped.
    let team = format!("team-{:08x}", rand::random::<u32>());
    kubectl(&["create", "namespace", &team]).unwrap();
    kubectl(&[
        "create",
        "rolebinding",
        "dev-edit",
        "--clusterrole=edit",
        "--user=dev",
        "-n",
        &team,
    ])
    .unwrap();
    kubectl(&[
        "create",
        "rolebinding",
        "ro-view",
        "--clusterrole=view",
        "--user=ro",
        "-n",
        &team,
    ])
    .unwrap();
    let as_user = |user: &str, verb: &str, what: &str, ns: &str| {
        kubectl(&[
            "auth",
            "can-i",
            verb,
            what,
            "-n",
            ns,
            &format!("--as={user}"),
        ])
        .map(|o| o.trim() == "yes")
        .unwrap_or(false)
    };
    // Aggregation is done by kube-controller-manager... or not at all without it: wait.
    tokio::task::block_in_place(|| {
        eventually(60, "aggregated roles", || {
            if as_user("dev", "create", "vmnetworks.vmnet.dev", &team) {
                Ok(())
            } else {
                Err("dev may not create VmNetworks yet".into())
            }
        })
    });
    assert!(as_user("dev", "delete", "portrules.vmnet.dev", &team));
    assert!(!as_user("dev", "create", "ippools.vmnet.dev", &team));
    assert!(!as_user("dev", "get", "vyosrouters.vmnet.dev", &team));
    assert!(
        !as_user("dev", "get", "secrets", NS),
        "dev reads the router's Secret"
    );
    assert!(as_user("ro", "list", "vmnetworks.vmnet.dev", &team));
    assert!(as_user("ro", "get", "portrules.vmnet.dev", &team));
    assert!(!as_user("ro", "create", "vmnetworks.vmnet.dev", &team));
    let _ = kubectl(&["delete", "namespace", &team, "--wait=false"]);

    // Upgrade to a changed chart: the objects stay, the CRDs are upgraded.
    let changed = dir.path().join("changed");
    copy_dir(&repo_root().join(CHART), &changed);
    let crd = changed.join("templates/crds/portrules.yaml");
    let text = std::fs::read_to_string(&crd).unwrap();
    std::fs::write(
        &crd,
        text.replacen(
            "  labels:\n",
            "  labels:\n    vmnet.dev/upgraded: \"yes\"\n",
            1,
        ),
    )
    .unwrap();
    helm(&[
        "upgrade",
        RELEASE,
        changed.to_str().unwrap(),
        "-n",
        NS,
        "--wait=false",
    ])
    .unwrap();
    let label = kubectl(&[
        "get",
        "crd",
        "portrules.vmnet.dev",
        "-o",
        "jsonpath={.metadata.labels.vmnet\\.dev/upgraded}",
    ])
    .unwrap();
    assert_eq!(label, "yes", "helm upgrade upgraded the CRD");
    let count = |kind: &str| {
        kubectl(&["get", kind, "-A", "-o", "name"])
            .unwrap()
            .lines()
            .count()
    };
    let before: Vec<usize> = ["vyosrouter", "ippool", "portpool", "vmnetwork", "portrule"]
        .iter()
        .map(|k| count(k))
        .collect();
    assert!(before.iter().all(|n| *n > 0), "{before:?}");

    // Uninstall: the CRDs and every object stay.
    drop(operator);
    helm(&["uninstall", RELEASE, "-n", NS]).unwrap();
    for crd in CRDS {
        kubectl(&["get", "crd", &format!("{crd}.vmnet.dev")]).unwrap();
    }
    let after: Vec<usize> = ["vyosrouter", "ippool", "portpool", "vmnetwork", "portrule"]
        .iter()
        .map(|k| count(k))
        .collect();
    assert_eq!(before, after, "uninstall kept every object");

    // Clean up with an operator running as the admin (finalizers take the rules off).
    cleanup_examples(examples).await;
    install_crds().await.unwrap();
    drop(sim);
}

async fn cleanup_examples(examples: &str) {
    let client = vmnet_testkit::admin_client().await.unwrap();
    let op = tokio::spawn(vmnet_operator::run::operate(
        client,
        vmnet_operator::run::Options {
            settings: vmnet_operator::context::Settings {
                debounce: Duration::from_millis(150),
                ..Default::default()
            },
            lease_name: format!("vmnet-chart-{:08x}", rand::random::<u32>()),
            lease_namespace: "default".into(),
            identity: "chart-cleanup".into(),
            lease_seconds: 5,
            admin_addr: None,
        },
        futures::future::pending(),
    ));
    // VMs and rules first, while the router's Secret is still there to read the key from;
    // then the router, the pools and the namespace.
    let vms = format!("{examples}/30-vmnetworks.yaml");
    let rule = format!("{examples}/40-portrule.yaml");
    tokio::task::block_in_place(|| {
        for files in [vec![vms.as_str(), rule.as_str()], vec![examples]] {
            let mut args = vec!["delete"];
            for f in files {
                args.extend(["-f", f]);
            }
            args.extend(["--wait=true", "--timeout=120s", "--ignore-not-found"]);
            kubectl(&args).unwrap();
        }
    });
    op.abort();
}
