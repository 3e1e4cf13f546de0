//! The whole operator at scale: the release binary, run as a ServiceAccount (so API Priority
//! and Fairness applies to it), against the project's real kube-apiserver and an in-process
//! vyos-sim with its realistic cost model at a time scale this prints.
//!
//! `cargo bench --bench e2e -- [--n 5000] [--layout one|spread|both] [--namespaces 50]
//! [--time-scale 0.01] [--changes 20] [--changes-at-scale-1 3] [--drift-seconds 20]
//! [--no-per-rule]`
//!
//! For N VmNetworks with two ports each (2·N PortRules) it prints, per layout: the cold
//! converge (wall time, router requests/ops/commits/bytes, the modeled router floor and the
//! ratio, the same rules sent one commit per rule to a second simulator and that ratio,
//! apiserver requests by verb and resource per object, operator CPU seconds and peak RSS),
//! steady state over three drift intervals, single changes (p50/p99; a few more with the
//! simulator at time scale 1, where a read takes longer than the debounce), a SIGKILL restart
//! and deleting everything. Figures and ratios are printed beside the README's targets;
//! nothing is asserted on wall time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde_json::{Value, json};
use vmnet_api::{IpPool, PortPool, PortRule, VmNetwork, VyosRouter};
use vmnet_testkit::{control_plane, install_crds, kubectl, kubectl_with_input};
use vyos_client::nat::{ConfigOp, NatKind, parse_rules, render_rule};
use vyos_client::{ClientConfig, VyosClient};
use vyos_sim::{CostModel, Counters, SimOptions};

const OP_NS: &str = "vmnet-bench-op";
const KEY: &str = "bench-key";
const ROUTER: &str = "bench-edge";
const BENCH_LABEL: &str = "vmnet.dev/bench";
/// The operator's defaults, which the floor is computed for.
const MAX_OPS_PER_COMMIT: u64 = 2000;
const REQUEST_BUDGET_S: f64 = 60.0;
const LEASE_SECONDS: u64 = 15;

#[derive(Debug, Clone)]
struct Args {
    n: usize,
    layouts: Vec<usize>,
    time_scale: f64,
    changes: usize,
    drift_seconds: u64,
    per_rule: bool,
    changes_at_scale_1: usize,
}

fn args() -> Args {
    let mut a = Args {
        n: 5000,
        layouts: vec![1, 50],
        time_scale: 0.01,
        changes: 20,
        drift_seconds: 20,
        per_rule: true,
        changes_at_scale_1: 3,
    };
    let mut spread = 50;
    let mut layout = "both".to_owned();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--bench" => {}
            "--n" => a.n = value().parse().expect("--n N"),
            "--layout" => layout = value(),
            "--namespaces" => spread = value().parse().expect("--namespaces N"),
            "--time-scale" => a.time_scale = value().parse().expect("--time-scale F"),
            "--changes" => a.changes = value().parse().expect("--changes N"),
            "--changes-at-scale-1" => {
                a.changes_at_scale_1 = value().parse().expect("--changes-at-scale-1 N");
            }
            "--drift-seconds" => a.drift_seconds = value().parse().expect("--drift-seconds S"),
            "--no-per-rule" => a.per_rule = false,
            other => panic!("unknown flag {other}; see the top of benches/e2e.rs"),
        }
    }
    a.layouts = match layout.as_str() {
        "one" => vec![1],
        "spread" => vec![spread],
        "both" => vec![1, spread],
        other => panic!("--layout {other}: one, spread or both"),
    };
    a
}

fn main() {
    vmnet_testkit::install_crypto_provider();
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        install_crds().await.unwrap();
        sweep();
        let kubeconfig = operator_identity();
        println!(
            "e2e: N = {} VmNetworks × 2 ports = {} PortRules; vyos-sim realistic costs × {} \
             (figures at time scale 1 are extrapolated as stated beside them)",
            a.n,
            2 * a.n,
            a.time_scale
        );
        for &spread in &a.layouts {
            layout(&a, spread, &kubeconfig).await;
        }
        remove_admission_policy();
    });
}

/// Removes the chart's MutatingAdmissionPolicy that `operator_identity` installed: outside
/// the bench, objects made with no operator running must not get the finalizer.
fn remove_admission_policy() {
    let _ = kubectl(&[
        "delete",
        "mutatingadmissionpolicies,mutatingadmissionpolicybindings",
        "-l",
        "app.kubernetes.io/instance=vmnet-bench",
        "--ignore-not-found",
    ]);
}

// ---------------------------------------------------------------------------------------
// Set-up: the operator's ServiceAccount with the chart's RBAC, and a kubeconfig for it.

/// Creates the operator's namespace, ServiceAccount and the chart's RBAC (rendered by
/// `helm template`), and returns a kubeconfig holding a token for that ServiceAccount.
fn operator_identity() -> PathBuf {
    let _ = kubectl(&["create", "namespace", OP_NS]);
    let chart = vmnet_testkit::repo_root().join("charts/vmnet-operator");
    let rendered = vmnet_testkit::helm(&[
        "template",
        "vmnet-bench",
        chart.to_str().unwrap(),
        "--namespace",
        OP_NS,
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
        // The finalizer put on at creation, as on a cluster that serves
        // MutatingAdmissionPolicy (this one does): removed again at the end of the run.
        "--show-only",
        "templates/admissionpolicy.yaml",
        "--api-versions",
        "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy",
    ])
    .unwrap();
    kubectl_with_input(&["apply", "-f", "-"], &rendered).unwrap();
    let sa = rendered
        .split("\n---")
        .filter_map(|d| serde_yaml_ng::from_str::<Value>(d).ok())
        .find(|d| d["kind"] == "ServiceAccount")
        .and_then(|d| d["metadata"]["name"].as_str().map(str::to_owned))
        .expect("the chart renders a ServiceAccount");
    let admin: Value = serde_json::from_str(
        &kubectl(&["config", "view", "--raw", "--minify", "-o", "json"]).unwrap(),
    )
    .unwrap();
    let token = kubectl(&["create", "token", &sa, "-n", OP_NS, "--duration=12h"]).unwrap();
    let cfg = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": sa, "user": {"token": token.trim()}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": sa}}],
        "current-context": "c",
    });
    let path = std::env::temp_dir().join("vmnet-bench-sa.kubeconfig");
    std::fs::write(&path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
    println!("operator runs as system:serviceaccount:{OP_NS}:{sa} (the chart's RBAC)");
    path
}

/// Removes what an interrupted earlier run left: its namespaces (their objects' finalizers
/// cleared first, since no operator serves them any more).
fn sweep() {
    // First the policy that would put the finalizers back.
    remove_admission_policy();
    let Ok(names) = kubectl(&["get", "namespaces", "-o", "name"]) else {
        return;
    };
    for ns in names.lines().filter_map(|l| l.strip_prefix("namespace/")) {
        if !ns.starts_with("vmnet-bench-") || ns == OP_NS {
            continue;
        }
        if let Ok(objects) = kubectl(&["get", "vmnetworks,portrules", "-n", ns, "-o", "name"]) {
            for o in objects.lines() {
                let _ = kubectl(&[
                    "patch",
                    o,
                    "-n",
                    ns,
                    "--type=merge",
                    "-p",
                    r#"{"metadata":{"finalizers":null}}"#,
                ]);
            }
        }
        let _ = kubectl(&["delete", "namespace", ns, "--timeout=120s"]);
    }
}

/// The operator binary (release, built by `cargo bench`) as its own process.
struct Operator {
    child: Child,
    admin: std::net::SocketAddr,
}

impl Operator {
    fn start(kubeconfig: &Path, identity: &str) -> Self {
        let admin = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log_path = std::env::temp_dir().join(format!("vmnet-bench-{identity}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vmnet-operator"))
            .args([
                "run",
                &format!("--admin-addr={admin}"),
                &format!("--lease-namespace={OP_NS}"),
                &format!("--identity={identity}"),
                &format!("--credentials-namespaces={OP_NS}"),
                &format!("--selector={BENCH_LABEL}=1"),
                &format!("--lease-seconds={LEASE_SECONDS}"),
            ])
            .env("KUBECONFIG", kubeconfig)
            // As the chart's Deployment sets it.
            .env("MIMALLOC_PURGE_DELAY", "0")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Self { child, admin }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The replica's /metrics (empty while it does not answer): a blocking HTTP/1.0 read.
    fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let Ok(mut s) =
            std::net::TcpStream::connect_timeout(&self.admin, Duration::from_millis(200))
        else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// CPU seconds (user + system) and peak RSS (MiB) of a process, from /proc.
fn proc_usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        rest.get(i)
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the ')'.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

/// A process's resident memory now (`VmRSS`), in MiB.
fn resident_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn apiserver_pid() -> Option<u32> {
    let cp = control_plane();
    let dir = cp.kubeconfig.parent()?;
    std::fs::read_to_string(dir.join("kube-apiserver.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------
// The apiserver's own request counts.

/// `apiserver_request_total` summed by (verb, resource[/subresource]), and by code class.
#[derive(Debug, Clone, Default)]
struct ApiCounts {
    by_call: BTreeMap<(String, String), f64>,
    by_code: BTreeMap<String, f64>,
}

impl ApiCounts {
    async fn read(c: &Client) -> Self {
        let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
        let text = c.request_text(req).await.unwrap();
        let mut out = Self::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let value: f64 = value.trim().parse().unwrap_or(0.0);
            let label = |k: &str| {
                labels
                    .split("\",")
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                    .map(|v| v.trim_end_matches('"').to_owned())
                    .unwrap_or_default()
            };
            let mut resource = label("resource");
            let sub = label("subresource");
            if !sub.is_empty() {
                resource = format!("{resource}/{sub}");
            }
            *out.by_call.entry((label("verb"), resource)).or_default() += value;
            *out.by_code.entry(label("code")).or_default() += value;
        }
        out
    }

    fn since(&self, before: &Self) -> Self {
        fn diff<K: Ord + Clone>(a: &BTreeMap<K, f64>, b: &BTreeMap<K, f64>) -> BTreeMap<K, f64> {
            a.iter()
                .map(|(k, v)| (k.clone(), v - b.get(k).copied().unwrap_or(0.0)))
                .filter(|(_, v)| *v > 0.5)
                .collect()
        }
        Self {
            by_call: diff(&self.by_call, &before.by_call),
            by_code: diff(&self.by_code, &before.by_code),
        }
    }

    fn get(&self, verb: &str, resource: &str) -> f64 {
        self.by_call
            .get(&(verb.to_owned(), resource.to_owned()))
            .copied()
            .unwrap_or(0.0)
    }

    /// Writes (create, update, patch, delete) to `resource` and its subresources.
    fn writes(&self, resource: &str) -> f64 {
        self.by_call
            .iter()
            .filter(|((verb, r), _)| {
                matches!(verb.as_str(), "POST" | "PUT" | "PATCH" | "DELETE" | "APPLY")
                    && (r == resource || r.starts_with(&format!("{resource}/")))
            })
            .map(|(_, v)| v)
            .sum::<f64>()
            + 0.0 // an empty sum is -0.0
    }

    fn lists(&self) -> f64 {
        self.by_call
            .iter()
            .filter(|((verb, _), _)| verb == "LIST")
            .map(|(_, v)| v)
            .sum::<f64>()
            + 0.0 // an empty sum is -0.0
    }

    fn print(&self, indent: &str) {
        let calls: Vec<String> = self
            .by_call
            .iter()
            .map(|((verb, r), v)| format!("{verb} {r} {v:.0}"))
            .collect();
        println!("{indent}apiserver requests: {}", calls.join(", "));
        let codes: Vec<String> = self
            .by_code
            .iter()
            .map(|(c, v)| format!("{c}: {v:.0}"))
            .collect();
        println!("{indent}by code: {}", codes.join(", "));
    }
}

// ---------------------------------------------------------------------------------------
// The router floor: the minimal ops in the fewest commits that fit the request budget,
// priced by the simulator's own cost model.

/// Modeled seconds of sending `ops` set/delete ops (`ops_per_rule` per rule) to a router
/// that holds `rules_before` rules, in requests of at most `per_request` ops, at `scale`.
fn floor_seconds(
    c: &CostModel,
    ops: u64,
    ops_per_rule: u64,
    rules_before: u64,
    growing: bool,
    scale: f64,
) -> (f64, u64) {
    // The largest request that fits the budget at this scale (and the per-commit cap).
    let per_request = (1..=MAX_OPS_PER_COMMIT)
        .rev()
        .find(|k| {
            let s = rules_before as f64
                + if growing {
                    (ops / ops_per_rule) as f64
                } else {
                    0.0
                };
            let ms = c.request_fixed_ms
                + c.request_per_rule_ms * s
                + c.per_op_ms * *k as f64
                + c.commit_fixed_ms
                + c.commit_per_rule_ms * s;
            ms * scale / 1000.0 <= REQUEST_BUDGET_S
        })
        .unwrap_or(1);
    let mut left = ops;
    let mut rules = rules_before as f64;
    let mut ms = 0.0;
    let mut commits = 0;
    while left > 0 {
        let k = left.min(per_request);
        let after = if growing {
            rules + (k / ops_per_rule) as f64
        } else {
            (rules - (k / ops_per_rule) as f64).max(0.0)
        };
        ms += c.request_fixed_ms
            + c.request_per_rule_ms * rules
            + c.per_op_ms * k as f64
            + c.commit_fixed_ms
            + c.commit_per_rule_ms * after;
        rules = after;
        left -= k;
        commits += 1;
    }
    (ms * scale / 1000.0, commits)
}

// ---------------------------------------------------------------------------------------
// One layout: N VmNetworks over `spread` namespaces.

struct Watched {
    rules: Store<PortRule>,
    vms: Store<VmNetwork>,
}

fn ready<K>(
    o: &K,
    status_gen: Option<i64>,
    conds: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
) -> bool
where
    K: Resource,
{
    status_gen == o.meta().generation
        && conds
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

impl Watched {
    async fn start(c: &Client) -> Self {
        fn watch<K>(api: Api<K>) -> Store<K>
        where
            K: Resource<DynamicType = ()>
                + Clone
                + std::fmt::Debug
                + serde::de::DeserializeOwned
                + Send
                + Sync
                + 'static,
        {
            let (reader, writer) = reflector::store();
            let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
                .applied_objects()
                .for_each(|_| async {});
            tokio::spawn(stream);
            reader
        }
        let w = Self {
            rules: watch(Api::<PortRule>::all(c.clone())),
            vms: watch(Api::<VmNetwork>::all(c.clone())),
        };
        w.rules.wait_until_ready().await.unwrap();
        w.vms.wait_until_ready().await.unwrap();
        w
    }

    fn counts(&self, prefix: &str) -> (usize, usize, usize, usize) {
        let ours = |ns: Option<&String>| ns.is_some_and(|n| n.starts_with(prefix));
        let rules: Vec<Arc<PortRule>> = self
            .rules
            .state()
            .into_iter()
            .filter(|r| ours(r.metadata.namespace.as_ref()))
            .collect();
        let vms: Vec<Arc<VmNetwork>> = self
            .vms
            .state()
            .into_iter()
            .filter(|v| ours(v.metadata.namespace.as_ref()))
            .collect();
        let rules_ready = rules
            .iter()
            .filter(|r| {
                let s = r.status.as_ref();
                ready(
                    r.as_ref(),
                    s.and_then(|s| s.common.observed_generation),
                    s.and_then(|s| s.common.conditions.as_deref()),
                )
            })
            .count();
        let vms_ready = vms
            .iter()
            .filter(|v| {
                let s = v.status.as_ref();
                ready(
                    v.as_ref(),
                    s.and_then(|s| s.common.observed_generation),
                    s.and_then(|s| s.common.conditions.as_deref()),
                )
            })
            .count();
        (rules.len(), rules_ready, vms.len(), vms_ready)
    }
}

fn vm_name(i: usize) -> String {
    format!("vm-{i:05}")
}

fn vm_body(ns: &str, i: usize, http_port: u16) -> VmNetwork {
    serde_json::from_value(json!({
        "apiVersion": "vmnet.dev/v1alpha1", "kind": "VmNetwork",
        "metadata": {"name": vm_name(i), "namespace": ns},
        "spec": {
            "router": ROUTER,
            "vmRef": {"kind": "VirtualMachine", "name": vm_name(i)},
            "ports": [
                {"name": "ssh", "port": 22, "protocol": "tcp"},
                {"name": "http", "port": http_port, "protocol": "tcp"}
            ]
        }
    }))
    .unwrap()
}

fn router_counts(sim: &vyos_sim::Sim) -> Counters {
    sim.counters()
}

fn print_router(indent: &str, d: &RouterDelta) {
    println!(
        "{indent}router: {} configure requests, {} commits, {} ops, {:.1} KiB sent, {} reads, \
         {} refused for size, busy {:.2} s",
        d.configure,
        d.commits,
        d.ops,
        d.bytes as f64 / 1024.0,
        d.reads,
        d.too_large,
        d.busy_s
    );
}

struct RouterDelta {
    configure: u64,
    commits: u64,
    ops: u64,
    bytes: u64,
    reads: u64,
    too_large: u64,
    busy_s: f64,
}

fn router_delta(a: &Counters, b: &Counters) -> RouterDelta {
    RouterDelta {
        configure: b.configure_requests - a.configure_requests,
        commits: b.commits - a.commits,
        ops: b.ops_applied - a.ops_applied,
        bytes: b.request_bytes - a.request_bytes,
        reads: b.retrieve_requests - a.retrieve_requests,
        too_large: b.too_large - a.too_large,
        busy_s: (b.busy_micros - a.busy_micros) as f64 / 1e6,
    }
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    let mut last_print = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            panic!("{what}: not done after {limit:?}");
        }
        if last_print.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "  … still waiting for {what} ({:.0} s)",
                start.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Single changes, each timed from the apiserver's answer to the simulator's commit.
struct Singles {
    /// Apply → committed, sorted.
    latencies: Vec<Duration>,
    /// From the answer to the request reaching the router, less the debounce, in seconds,
    /// in the order the changes were made.
    beyond: Vec<f64>,
    /// The simulator's time for each change's request, from taking it up to its commit,
    /// sorted.
    took: Vec<Duration>,
}

impl Singles {
    fn p(&self, p: f64) -> f64 {
        percentile(&self.latencies, p).as_secs_f64()
    }

    fn print_operator_share(&self) {
        let mut sorted = self.beyond.clone();
        sorted.sort_by(f64::total_cmp);
        let at = |p: f64| {
            sorted
                .get(((sorted.len().max(1) - 1) as f64 * p).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        println!(
            "  per change, from the apiserver's answer to the request reaching the router, \
             minus the debounce (the operator's share): p50 {:+.4} s, p99 {:+.4} s, max {:+.4} s \
             (target p99 ≤ 0)",
            at(0.5),
            at(0.99),
            sorted.last().copied().unwrap_or_default()
        );
        let in_order: Vec<String> = self.beyond.iter().map(|s| format!("{s:+.4}")).collect();
        println!("  in the order made: {}", in_order.join(" "));
    }
}

/// Moves one VmNetwork's http port per change (80 → 8080, back on a second round), a
/// different VmNetwork each time: change `k` of `ks` edits VmNetwork `k·7919 mod n`.
async fn single_changes(
    admin: &Client,
    sim: &vyos_sim::Sim,
    n: usize,
    ks: std::ops::Range<usize>,
    ns_of: &dyn Fn(usize) -> String,
) -> Singles {
    let mut out = Singles {
        latencies: Vec::new(),
        beyond: Vec::new(),
        took: Vec::new(),
    };
    let unix_us = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64
    };
    for k in ks {
        let i = (k * 7919) % n;
        let port = if (k / n).is_multiple_of(2) { 8080 } else { 80 };
        let before = sim.counters().commits;
        let made_us = unix_us();
        let api: Api<VmNetwork> = Api::namespaced(admin.clone(), &ns_of(i));
        api.patch(
            &vm_name(i),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ports": [
                {"name": "ssh", "port": 22, "protocol": "tcp"},
                {"name": "http", "port": port, "protocol": "tcp"}
            ]}})),
        )
        .await
        .unwrap();
        // Timed from the apiserver's answer to the simulator's commit, both read from this
        // machine's clock in µs: a poll for the commit would add up to its period.
        let answered_us = unix_us();
        if std::env::var_os("E2E_TRACE").is_some() {
            // To line up with the operator's debug log (its timestamps are UTC wall time).
            eprintln!(
                "e2e: change {k} answered at {:.6}",
                answered_us as f64 / 1e6
            );
        }
        let start = Instant::now();
        while sim.counters().commits <= before {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "a change did not reach the router within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The simulator logs a request once it has answered, a moment after its commit
        // counts: wait for the record of one that began after the edit (the previous
        // record is another change's).
        let (started_us, committed_us) = loop {
            let record = sim
                .configure_log()
                .into_iter()
                .rev()
                .find(|r| r.ops > 0 && r.started_us >= made_us);
            if let Some(r) = record {
                break (r.started_us, r.committed_us.unwrap_or(r.finished_ms * 1000));
            }
            assert!(
                start.elapsed() < Duration::from_secs(130),
                "the change's request is not in the simulator's log"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let us = |d: u64| Duration::from_micros(d);
        out.latencies
            .push(us(committed_us.saturating_sub(answered_us)));
        out.took.push(us(committed_us.saturating_sub(started_us)));
        // The operator's share: from the answer to its request reaching the router, less
        // the debounce (the router's share, its request until the commit, is left out).
        let operator_s = (started_us as f64 - answered_us as f64) / 1e6 - 0.3;
        out.beyond.push(operator_s);
        // Let the VmNetwork settle before the next (its status follows the commit).
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    out.latencies.sort();
    out.took.sort();
    out
}

#[allow(clippy::too_many_lines)]
async fn layout(a: &Args, spread: usize, kubeconfig: &Path) {
    let admin = vmnet_testkit::admin_client().await.unwrap();
    let prefix = format!("vmnet-bench-{spread}-{}-", std::process::id());
    let rules_total = 2 * a.n;
    println!(
        "\n== {} VmNetworks in {spread} namespace(s) ({rules_total} PortRules) ==",
        a.n
    );

    // The router and the pools.
    let mut opts = SimOptions::for_tests();
    opts.api_keys = vec![KEY.to_owned()];
    opts.cost = CostModel {
        time_scale: a.time_scale,
        ..CostModel::realistic()
    };
    let cost = opts.cost;
    let sim = vyos_sim::start(opts.clone()).await.unwrap();
    let namespaces: Vec<String> = (0..spread).map(|i| format!("{prefix}{i:02}")).collect();
    let ns_api: Api<Namespace> = Api::all(admin.clone());
    for ns in &namespaces {
        let _ = ns_api
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await;
    }
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), OP_NS);
    let _ = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "bench-router-api"}, "stringData": {"api-key": KEY}
            }))
            .unwrap(),
        )
        .await;
    let pp = PatchParams::apply("vmnet-bench").force();
    let label = json!({ BENCH_LABEL: "1" });
    let rule_end = 1000 + 3 * rules_total as u32;
    Api::<VyosRouter>::all(admin.clone())
        .patch(
            ROUTER,
            &pp,
            &Patch::Apply(json!({
                "apiVersion": "vmnet.dev/v1alpha1", "kind": "VyosRouter",
                "metadata": {"name": ROUTER, "labels": label},
                "spec": {
                    "endpoint": sim.url(),
                    "credentialsSecretRef": {"name": "bench-router-api", "namespace": OP_NS},
                    "tls": {"insecurePlainHttp": true},
                    "ruleRange": {"start": 1000, "end": rule_end},
                    "defaultInboundInterface": "eth0",
                    "driftCheckInterval": format!("{}s", a.drift_seconds),
                }
            })),
        )
        .await
        .unwrap();
    Api::<IpPool>::all(admin.clone())
        .patch(
            "bench-ips",
            &pp,
            &Patch::Apply(json!({
                "apiVersion": "vmnet.dev/v1alpha1", "kind": "IpPool",
                "metadata": {"name": "bench-ips", "labels": label},
                "spec": {"addresses": ["10.128.0.0/14"], "autoAssign": true}
            })),
        )
        .await
        .unwrap();
    Api::<PortPool>::all(admin.clone())
        .patch(
            "bench-ports",
            &pp,
            &Patch::Apply(json!({
                "apiVersion": "vmnet.dev/v1alpha1", "kind": "PortPool",
                "metadata": {"name": "bench-ports", "labels": label},
                "spec": {"router": ROUTER, "externalAddress": "203.0.113.10",
                         "ports": ["10000-60000"], "autoAssign": true}
            })),
        )
        .await
        .unwrap();

    let watched = Watched::start(&admin).await;
    let mut op = Operator::start(kubeconfig, "bench-a");
    wait_for(
        "the first operator to lead",
        Duration::from_secs(120),
        || metric(&op.metrics(), "vmnet_leader ") >= 1.0,
    )
    .await;

    // 1. Cold converge.
    let apiserver_rss0 = apiserver_pid().map_or(0.0, resident_mib);
    let r0 = router_counts(&sim);
    let api0 = ApiCounts::read(&admin).await;
    let started = Instant::now();
    let ns_of = |i: usize| namespaces[i % spread].clone();
    futures::stream::iter(0..a.n)
        .map(|i| {
            let api: Api<VmNetwork> = Api::namespaced(admin.clone(), &ns_of(i));
            async move {
                api.create(&PostParams::default(), &vm_body(&ns_of(i), i, 80))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    let created = started.elapsed();
    let limit = Duration::from_secs(1800);
    wait_for("every PortRule and VmNetwork Ready", limit, || {
        let (r, rr, v, vr) = watched.counts(&prefix);
        r == rules_total && rr == rules_total && v == a.n && vr == a.n
    })
    .await;
    let cold = started.elapsed();
    let r1 = router_counts(&sim);
    let api1 = ApiCounts::read(&admin).await;
    let (cpu1, rss1) = proc_usage(op.pid());
    let cold_d = router_delta(&r0, &r1);
    let cold_api = api1.since(&api0);
    let ops_per_rule = cold_d.ops as f64 / rules_total as f64;
    let (floor, floor_commits) = floor_seconds(&cost, cold_d.ops, 7, 0, true, a.time_scale);
    let (floor1, floor1_commits) = floor_seconds(&cost, cold_d.ops, 7, 0, true, 1.0);
    println!(
        "cold converge: {:.1} s to all Ready (creates sent in {:.1} s)",
        cold.as_secs_f64(),
        created.as_secs_f64()
    );
    print_router("  ", &cold_d);
    println!(
        "  ops per rule {ops_per_rule:.2} (minimal 7); modeled router floor {floor:.1} s in \
         {floor_commits} commits → wall / floor = {:.2}",
        cold.as_secs_f64() / floor
    );
    let outside = (cold.as_secs_f64() - cold_d.busy_s).max(0.0);
    println!(
        "  operator time outside the router's busy time: {outside:.1} s; floor at time scale 1: \
         {floor1:.0} s ({floor1_commits} commits) → {:.1}% of it (target ≤ 10%; the time \
         outside the router does not scale with the router's speed, so it is carried over \
         unchanged)",
        100.0 * outside / floor1
    );
    let pr_writes = cold_api.writes("portrules");
    let vm_writes = cold_api.writes("vmnetworks") - cold_api.get("POST", "vmnetworks");
    println!(
        "  apiserver writes per PortRule {:.2} (target ≤ 3), per VmNetwork {:.2} (target ≤ 2; \
         the bench's own {} creates not counted); LISTs {:.0} in all (none per reconcile); \
         429s {:.0}",
        pr_writes / rules_total as f64,
        vm_writes / a.n as f64,
        a.n,
        cold_api.lists(),
        cold_api.by_code.get("429").copied().unwrap_or(0.0),
    );
    cold_api.print("  ");
    let (apiserver_cpu, apiserver_rss) = apiserver_pid().map_or((0.0, 0.0), proc_usage);
    let apiserver_now = apiserver_pid().map_or(0.0, resident_mib);
    println!(
        "  operator CPU {cpu1:.1} s, peak RSS {rss1:.0} MiB (target < 200); apiserver peak RSS \
         {apiserver_rss:.0} MiB since its start, CPU {apiserver_cpu:.0} s since its start"
    );
    // Flat in N beyond the objects: what the apiserver holds per object the converge left
    // (VmNetworks, PortRules) should not grow with N; compare runs at two N.
    let objects = (a.n + rules_total) as f64;
    println!(
        "  apiserver resident memory {apiserver_rss0:.0} MiB before the creates, \
         {apiserver_now:.0} MiB after the converge: {:.1} KiB per object ({objects:.0} objects; \
         flat in N when this does not grow with N)",
        (apiserver_now - apiserver_rss0).max(0.0) * 1024.0 / objects
    );

    // 1b. The same rules, one commit per rule, on a second router.
    if a.per_rule {
        let cfg = sim.running_config();
        let dest = cfg
            .pointer("/nat/destination")
            .cloned()
            .unwrap_or(Value::Null);
        let rules = parse_rules(NatKind::Destination, &dest).unwrap();
        let other = vyos_sim::start(opts.clone()).await.unwrap();
        let mut ccfg = ClientConfig::new(other.url(), KEY);
        ccfg.timeout = Duration::from_secs(600);
        let client = VyosClient::new(ccfg).unwrap();
        let o0 = router_counts(&other);
        let t = Instant::now();
        for rule in rules.values() {
            let ops: Vec<ConfigOp> = render_rule(rule);
            client.configure(&ops).await.unwrap();
        }
        let per_rule = t.elapsed();
        let per_rule_busy = router_delta(&o0, &router_counts(&other)).busy_s;
        println!(
            "  one commit per rule, same {} rules, same costs: {:.1} s → {:.1}× the operator's \
             cold converge at this time scale (target ≥ 4×)",
            rules.len(),
            per_rule.as_secs_f64(),
            per_rule.as_secs_f64() / cold.as_secs_f64()
        );
        // At time scale 1 each side's router time grows by 1 / scale and the rest stays:
        // one commit per rule is almost all router time; the operator's is its router busy
        // time plus its time outside the router (which is apiserver work).
        let per_rule1 =
            per_rule_busy / a.time_scale + (per_rule.as_secs_f64() - per_rule_busy).max(0.0);
        let operator1 = cold_d.busy_s / a.time_scale + outside;
        println!(
            "  at time scale 1 (router time ÷ {}, the rest unchanged): one commit per rule \
             {per_rule1:.0} s, the operator {operator1:.0} s → {:.1}× (target ≥ 4×)",
            a.time_scale,
            per_rule1 / operator1
        );
    }

    // 2. Steady state over three drift intervals.
    let r0 = router_counts(&sim);
    let api0 = ApiCounts::read(&admin).await;
    let (cpu0, _) = proc_usage(op.pid());
    let window = Duration::from_secs(3 * a.drift_seconds);
    tokio::time::sleep(window).await;
    let r1 = router_counts(&sim);
    let steady_api = ApiCounts::read(&admin).await.since(&api0);
    let (cpu1, _) = proc_usage(op.pid());
    let d = router_delta(&r0, &r1);
    let non_lease_writes: f64 = steady_api
        .by_call
        .iter()
        .filter(|((verb, r), _)| {
            matches!(verb.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") && r != "leases"
        })
        .map(|(_, v)| v)
        .sum::<f64>()
        + 0.0;
    println!(
        "steady state, {} s (3 drift intervals): {} configure requests (target 0), {} reads \
         ({:.1} per interval), operator CPU {:.2} s, apiserver writes other than the Lease \
         {non_lease_writes:.0} (target 0)",
        window.as_secs(),
        d.configure,
        d.reads,
        d.reads as f64 / 3.0,
        cpu1 - cpu0
    );
    steady_api.print("  ");

    // 3. Single changes: one VmNetwork's http port moves (1 leaf op each time).
    let r0 = router_counts(&sim);
    let singles = single_changes(&admin, &sim, a.n, 0..a.changes, &ns_of).await;
    let d = router_delta(&r0, &router_counts(&sim));
    let one_request = floor_seconds(&cost, 1, 1, rules_total as u64, false, a.time_scale).0;
    let measured = percentile(&singles.took, 0.5).as_secs_f64();
    println!(
        "single change at {rules_total} rules, {} changes: apply → committed p50 {:.4} s, p99 \
         {:.4} s (target p99 < debounce 0.3 s + one request: {:.4} s with the request as \
         modeled ({one_request:.4} s), {:.4} s with the simulator's measured p50 \
         ({measured:.4} s)); {} ops in {} commits ({:.2} ops per change, target 1)",
        a.changes,
        singles.p(0.5),
        singles.p(0.99),
        0.3 + one_request,
        0.3 + measured,
        d.ops,
        d.commits,
        d.ops as f64 / a.changes.max(1) as f64
    );
    singles.print_operator_share();

    // 3b. A few more at time scale 1, where a read of the router is longer than the
    // debounce: a pass reads before it writes, so the read, not the debounce, is what a lone
    // change waits for there.
    if a.changes_at_scale_1 > 0 && a.time_scale < 1.0 {
        let real = CostModel {
            time_scale: 1.0,
            ..cost
        };
        sim.set_cost(real);
        let r0 = router_counts(&sim);
        let at1 = single_changes(
            &admin,
            &sim,
            a.n,
            a.changes..a.changes + a.changes_at_scale_1,
            &ns_of,
        )
        .await;
        let d = router_delta(&r0, &router_counts(&sim));
        sim.set_cost(cost);
        let one_request = floor_seconds(&real, 1, 1, rules_total as u64, false, 1.0).0;
        let read = (real.request_fixed_ms + real.request_per_rule_ms * rules_total as f64) / 1000.0;
        println!(
            "single change at {rules_total} rules, time scale 1, {} changes: apply → committed \
             p50 {:.3} s, p99 {:.3} s; debounce + one request {:.3} s; a lone change's floor \
             {:.3} s (a pass reads the router, {read:.3} s, during the debounce, then sends one \
             request); {} reads, {} ops in {} commits",
            a.changes_at_scale_1,
            at1.p(0.5),
            at1.p(0.99),
            0.3 + one_request,
            read.max(0.3) + one_request,
            d.reads,
            d.ops,
            d.commits,
        );
        at1.print_operator_share();
    }

    // 4. Restart: SIGKILL the leader, start a new replica.
    op.kill();
    let r0 = router_counts(&sim);
    let api0 = ApiCounts::read(&admin).await;
    let op2 = Operator::start(kubeconfig, "bench-b");
    let to_leader = wait_for("the new replica to lead", Duration::from_secs(300), || {
        metric(&op2.metrics(), "vmnet_leader ") >= 1.0
    })
    .await;
    let sync_line = format!("vmnet_router_syncs_total{{router=\"{ROUTER}\",result=\"ok\"}} ");
    let to_pass = to_leader
        + wait_for(
            "the new leader's first pass",
            Duration::from_secs(600),
            || metric(&op2.metrics(), &sync_line) >= 1.0,
        )
        .await;
    let d = router_delta(&r0, &router_counts(&sim));
    let restart_api = ApiCounts::read(&admin).await.since(&api0);
    let (cpu2, rss2) = proc_usage(op2.pid());
    println!(
        "restart (SIGKILL) at {rules_total} rules: leader after {:.1} s, a finished pass after \
         {:.1} s (target ≤ lease {LEASE_SECONDS} s + 10 s) with {} configure requests (target \
         0); CPU {cpu2:.1} s, peak RSS {rss2:.0} MiB (target < 200); apiserver writes {:.0} \
         (Lease and Events included)",
        to_leader.as_secs_f64(),
        to_pass.as_secs_f64(),
        d.configure,
        restart_api
            .by_call
            .iter()
            .filter(|((v, _), _)| matches!(v.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
            .map(|(_, v)| v)
            .sum::<f64>(),
    );
    restart_api.print("  ");

    // 5a. The apiserver's own pace, for the delete's apiserver floor: one metadata patch
    // per VmNetwork and PortRule, 8 at a time (as the operator writes), which changes
    // nothing the operator acts on.
    let calibrate = Instant::now();
    let targets: Vec<(String, String, bool)> = (0..a.n)
        .flat_map(|i| {
            let ns = ns_of(i);
            let vm = vm_name(i);
            [
                (ns.clone(), vm.clone(), true),
                (ns.clone(), format!("{vm}-ssh"), false),
                (ns, format!("{vm}-http"), false),
            ]
        })
        .collect();
    let patched = futures::stream::iter(targets)
        .map(|(ns, name, vm)| {
            let admin = admin.clone();
            async move {
                let body =
                    Patch::Merge(json!({"metadata": {"labels": {"bench/calibrated": "yes"}}}));
                let pp = PatchParams::default();
                let ok = if vm {
                    Api::<VmNetwork>::namespaced(admin, &ns)
                        .patch(&name, &pp, &body)
                        .await
                        .is_ok()
                } else {
                    Api::<PortRule>::namespaced(admin, &ns)
                        .patch(&name, &pp, &body)
                        .await
                        .is_ok()
                };
                usize::from(ok)
            }
        })
        .buffer_unordered(8)
        .fold(0usize, |n, ok| async move { n + ok })
        .await;
    let write_rate = patched as f64 / calibrate.elapsed().as_secs_f64();
    // What a deletion of objects with finalizers needs of the apiserver at the least: a
    // delete and a finalizer removal per object (one deletecollection per namespace for
    // the VmNetworks).
    let min_writes = (2 * rules_total + a.n) as f64;
    let api_floor = min_writes / write_rate;
    println!(
        "apiserver pace: {patched} metadata patches, 8 at a time, at {write_rate:.0} writes/s \
         → its floor for deleting everything ({min_writes:.0} writes: a delete and a \
         finalizer removal per PortRule, a finalizer removal per VmNetwork) {api_floor:.1} s"
    );

    // 5. Delete everything.
    let r0 = router_counts(&sim);
    let api0 = ApiCounts::read(&admin).await;
    // From the first deletecollection: at 5,000 VmNetworks it takes minutes (and retries),
    // during which the operator does most of the deleting.
    let started = Instant::now();
    for ns in &namespaces {
        // Thousands of objects with finalizers can outlast the request's deadline (the
        // connection closes at 5,000); what was done stays done, so it is sent again.
        let api = Api::<VmNetwork>::namespaced(admin.clone(), ns);
        for attempt in 1.. {
            match api
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await
            {
                Ok(_) => break,
                Err(e) if attempt < 10 => eprintln!("  deletecollection in {ns}: {e}; again"),
                Err(e) => panic!("deletecollection in {ns}: {e}"),
            }
        }
    }
    wait_for("every VmNetwork and PortRule gone", limit, || {
        let (r, _, v, _) = watched.counts(&prefix);
        r == 0 && v == 0
    })
    .await;
    let gone = started.elapsed();
    let d = router_delta(&r0, &router_counts(&sim));
    let del_api = ApiCounts::read(&admin).await.since(&api0);
    let left = sim
        .running_config()
        .pointer("/nat/destination/rule")
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len);
    let (del_floor, del_commits) = floor_seconds(
        &cost,
        rules_total as u64,
        1,
        rules_total as u64,
        false,
        a.time_scale,
    );
    println!(
        "delete all: {:.1} s; {} rules left on the router; router floor {del_floor:.2} s \
         ({del_commits} commits) → {:.1}× the router floor; with the apiserver's floor \
         {api_floor:.1} s → {:.2}× (target ≤ 1.5×)",
        gone.as_secs_f64(),
        left,
        gone.as_secs_f64() / del_floor,
        gone.as_secs_f64() / (del_floor + api_floor)
    );
    print_router("  ", &d);
    println!(
        "  apiserver writes: PortRules {:.0} ({:.2} per rule), VmNetworks {:.0} (the bench's \
         deletecollection included)",
        del_api.writes("portrules"),
        del_api.writes("portrules") / rules_total as f64,
        del_api.writes("vmnetworks"),
    );
    del_api.print("  ");
    drop(op2);

    // Clean up for the next layout.
    for ns in &namespaces {
        let _ = ns_api.delete(ns, &DeleteParams::default()).await;
    }
    for kind in ["vyosrouter", "ippool", "portpool"] {
        let name = match kind {
            "vyosrouter" => ROUTER,
            "ippool" => "bench-ips",
            _ => "bench-ports",
        };
        let _ = kubectl(&[
            "patch",
            &format!("{kind}/{name}"),
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
        let _ = kubectl(&["delete", &format!("{kind}/{name}"), "--wait=false"]);
    }
}
