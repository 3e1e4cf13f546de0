//! What the operator's integration tests share: a world per test (namespace, vyos-sim,
//! router, pools, operators in this process) and the helpers to read and wait on objects.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use vmnet_api::{PortRule, VmNetwork, VyosRouter};
use vmnet_operator::context::Settings;
use vmnet_operator::run::{Options, operate};
use vmnet_testkit::{TestNamespace, install_crds, kubectl};
use vyos_client::nat::{NatKind, NatRule, parse_rules};
use vyos_sim::SimOptions;

pub const KEY: &str = "test-key";
pub const TEST_LABEL: &str = "vmnet.dev/test-run";

/// One test's world.
pub struct World {
    pub ns: TestNamespace,
    pub sim: Option<vyos_sim::Sim>,
    pub sim_addr: SocketAddr,
    pub state_dir: tempfile::TempDir,
    pub router: String,
    pub ippool: String,
    pub portpool: String,
    /// More routers a test made (cleaned up like the first).
    pub extra_routers: Vec<String>,
    pub operators: Vec<Operator>,
}

pub struct Operator {
    pub identity: String,
    pub admin: SocketAddr,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.operators.clear();
        if std::thread::panicking() {
            self.print_log();
        }
        // Cluster-scoped objects outlive the namespace: delete them (without waiting). The
        // operator is gone, so their finalizers are cleared first.
        let objects: Vec<String> = std::iter::once(&self.router)
            .chain(&self.extra_routers)
            .map(|r| format!("vyosrouter/{r}"))
            .chain([
                format!("ippool/{}", self.ippool),
                format!("portpool/{}", self.portpool),
            ])
            .collect();
        for o in &objects {
            let _ = kubectl(&[
                "patch",
                o,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ]);
        }
        for o in &objects {
            let _ = kubectl(&["delete", o, "--ignore-not-found", "--wait=false"]);
        }
    }
}

pub fn client(w: &World) -> Client {
    w.ns.client()
}

pub async fn free_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

pub async fn start_sim(addr: SocketAddr, state: std::path::PathBuf) -> vyos_sim::Sim {
    let mut opts = SimOptions::for_tests();
    opts.listen = addr;
    opts.api_keys = vec![KEY.to_owned()];
    opts.state_file = Some(state);
    // Retry the bind for a moment: a stopped sim's port may still be settling.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match vyos_sim::start(opts.clone()).await {
            Ok(sim) => return sim,
            Err(e) if Instant::now() < deadline => {
                eprintln!("vyos-sim did not start yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("vyos-sim did not start: {e}"),
        }
    }
}

/// Namespace, vyos-sim, Secret, VyosRouter, IpPool 10.77.0.0/24 (this namespace only) and
/// PortPool 203.0.113.10:30000-30999, all labelled for this test.
pub async fn world(prefix: &str) -> World {
    logged();
    install_crds().await.unwrap();
    let ns = TestNamespace::new(prefix).await.unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let sim = start_sim(
        "127.0.0.1:0".parse().unwrap(),
        state_dir.path().join("sim.json"),
    )
    .await;
    let sim_addr = sim.addr();
    let suffix = ns.name().rsplit('-').next().unwrap().to_owned();
    let w = World {
        router: format!("r-{prefix}-{suffix}"),
        ippool: format!("ip-{prefix}-{suffix}"),
        portpool: format!("pp-{prefix}-{suffix}"),
        sim: Some(sim),
        sim_addr,
        state_dir,
        ns,
        extra_routers: Vec::new(),
        operators: Vec::new(),
    };
    let c = client(&w);
    let ns = w.ns.name().to_owned();
    let secrets: Api<Secret> = Api::namespaced(c.clone(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "router-api"},
                "stringData": {"api-key": KEY}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    apply(
        &c,
        json!({
            "apiVersion": "vmnet.dev/v1alpha1", "kind": "VyosRouter",
            "metadata": {"name": w.router, "labels": {TEST_LABEL: ns}},
            "spec": {
                "endpoint": w.sim.as_ref().unwrap().url(),
                "credentialsSecretRef": {"name": "router-api", "namespace": ns},
                "tls": {"insecurePlainHttp": true},
                "ruleRange": {"start": 1000, "end": 1999},
                "defaultInboundInterface": "eth0",
                "driftCheckInterval": "10s"
            }
        }),
    )
    .await;
    apply(
        &c,
        json!({
            "apiVersion": "vmnet.dev/v1alpha1", "kind": "IpPool",
            "metadata": {"name": w.ippool, "labels": {TEST_LABEL: ns}},
            "spec": {"addresses": ["10.77.0.0/24"], "allowedNamespaces": [ns], "autoAssign": true}
        }),
    )
    .await;
    apply(
        &c,
        json!({
            "apiVersion": "vmnet.dev/v1alpha1", "kind": "PortPool",
            "metadata": {"name": w.portpool, "labels": {TEST_LABEL: ns}},
            "spec": {"router": w.router, "externalAddress": "203.0.113.10",
                     "ports": ["30000-30999"], "autoAssign": true, "allowedNamespaces": [ns]}
        }),
    )
    .await;
    w
}

/// Server-side applies `obj` (cluster-scoped, or namespaced with metadata.namespace set).
pub async fn apply(c: &Client, obj: Value) {
    let kind = obj["kind"].as_str().unwrap().to_owned();
    let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
    let ns = obj["metadata"]["namespace"].as_str().map(str::to_owned);
    let pp = PatchParams::apply("vmnet-tests").force();
    match kind.as_str() {
        "VyosRouter" => drop(
            Api::<VyosRouter>::all(c.clone())
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .unwrap(),
        ),
        "IpPool" => drop(
            Api::<vmnet_api::IpPool>::all(c.clone())
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .unwrap(),
        ),
        "PortPool" => drop(
            Api::<vmnet_api::PortPool>::all(c.clone())
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .unwrap(),
        ),
        "VmNetwork" => drop(
            Api::<VmNetwork>::namespaced(c.clone(), &ns.unwrap())
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .unwrap(),
        ),
        "PortRule" => drop(
            Api::<PortRule>::namespaced(c.clone(), &ns.unwrap())
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .unwrap(),
        ),
        other => panic!("apply: unexpected kind {other}"),
    }
}

impl World {
    /// The operators' log lines that name this test's namespace or routers (the last 400),
    /// for a failed test: what they did is often the only clue to why.
    fn print_log(&self) {
        let names: Vec<&str> = [self.ns(), self.router.as_str()]
            .into_iter()
            .chain(self.extra_routers.iter().map(String::as_str))
            .collect();
        let log = logged()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ours: Vec<_> = log
            .iter()
            .filter(|(_, l)| names.iter().any(|n| l.contains(n)))
            .collect();
        eprintln!(
            "---- the operators' log for {} ({} of {} lines) ----",
            self.ns(),
            ours.len().min(400),
            ours.len()
        );
        for (level, line) in ours.iter().skip(ours.len().saturating_sub(400)) {
            eprintln!("{level:>5} {line}");
        }
        eprintln!("---- end of the operators' log ----");
    }

    pub fn sim(&self) -> &vyos_sim::Sim {
        self.sim.as_ref().expect("vyos-sim is stopped")
    }

    /// Starts an operator replica for this test's namespace and router.
    pub async fn start_operator(&mut self, identity: &str, scope_namespace: bool) {
        let admin = free_addr().await;
        let settings = Settings {
            debounce: Duration::from_millis(150),
            default_drift_interval: Duration::from_secs(10),
            router_timeout: Duration::from_secs(3),
            namespace: scope_namespace.then(|| self.ns.name().to_owned()),
            selector: Some(format!("{TEST_LABEL}={}", self.ns.name())),
            ..Settings::default()
        };
        let opts = Options {
            settings,
            lease_name: "vmnet-operator".into(),
            lease_namespace: self.ns.name().to_owned(),
            identity: identity.to_owned(),
            lease_seconds: 4,
            admin_addr: Some(admin),
        };
        let client = vmnet_testkit::admin_client().await.unwrap();
        // Restarted when it exits, as its Deployment's pod would be: with a 4 s Lease on a
        // loaded machine a renewal can come too late, and an operator that lost its Lease
        // exits so that only one replica writes (the suite once saw a test's only operator
        // gone for the rest of the test that way).
        let task = tokio::spawn(async move {
            loop {
                let exit = operate(client.clone(), opts.clone(), futures::future::pending()).await;
                eprintln!(
                    "operator {} exited ({exit:?}); restarting it",
                    opts.identity
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        self.operators.push(Operator {
            identity: identity.to_owned(),
            admin,
            task,
        });
    }

    /// Applies this world's router again (its own sim, the world's defaults) with `extra`
    /// spec fields merged in.
    pub async fn reconfigure_router(&self, extra: Value) {
        apply(
            &client(self),
            router_obj(self, &self.router, &self.sim().url(), extra),
        )
        .await;
    }

    pub fn kill_operator(&mut self, identity: &str) {
        self.operators.retain(|o| o.identity != identity);
    }

    pub fn ns(&self) -> &str {
        self.ns.name()
    }

    pub async fn vmnetwork(&self, name: &str, spec: Value) {
        apply(
            &client(self),
            json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "VmNetwork",
                   "metadata": {"name": name, "namespace": self.ns()}, "spec": spec}),
        )
        .await;
    }

    pub async fn portrule(&self, name: &str, spec: Value) {
        apply(
            &client(self),
            json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "PortRule",
                   "metadata": {"name": name, "namespace": self.ns()}, "spec": spec}),
        )
        .await;
    }

    /// The destination-NAT rules vyos-sim holds.
    pub fn router_rules(&self) -> BTreeMap<u32, NatRule> {
        let cfg = self.sim().running_config();
        let dest = cfg
            .pointer("/nat/destination")
            .cloned()
            .unwrap_or(Value::Null);
        parse_rules(NatKind::Destination, &dest).unwrap()
    }

    pub fn portrules(&self) -> Api<PortRule> {
        Api::namespaced(client(self), self.ns())
    }

    pub fn vmnetworks(&self) -> Api<VmNetwork> {
        Api::namespaced(client(self), self.ns())
    }

    pub async fn metrics(&self) -> String {
        let mut out = String::new();
        for o in &self.operators {
            out.push_str(&http_get(o.admin, "/metrics").await);
        }
        out
    }
}

/// The router spec of this world, with `extra` fields merged in.
pub fn router_obj(w: &World, name: &str, endpoint: &str, extra: Value) -> Value {
    let mut spec = json!({
        "endpoint": endpoint,
        "credentialsSecretRef": {"name": "router-api", "namespace": w.ns()},
        "tls": {"insecurePlainHttp": true},
        "ruleRange": {"start": 1000, "end": 1999},
        "defaultInboundInterface": "eth0",
        "driftCheckInterval": "10s"
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "VyosRouter",
           "metadata": {"name": name, "labels": {TEST_LABEL: w.ns()}}, "spec": spec})
}

/// A plain HTTP/1.0 GET (the admin server), body only; empty when nothing answers.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf).await;
    buf.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// The condition `type_` of an object's status, as (status, reason, message).
pub fn condition(obj: &Value, type_: &str) -> Option<(String, String, String)> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

pub fn ready(obj: &Value) -> bool {
    condition(obj, "Ready").is_some_and(|c| c.0 == "True")
}

/// Polls `f` until it returns `Some`, or fails after `secs` with `what` and the last state.
pub async fn eventually<T>(
    secs: u64,
    what: &str,
    mut f: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while Instant::now() < deadline {
        match f().await {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out after {secs} s waiting for {what}; last state: {last}");
}

pub async fn get_json<K>(api: &Api<K>, name: &str) -> Option<Value>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.get_opt(name)
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
}

/// Waits until the object `name` behind `api` is Ready, and returns it.
pub async fn wait_ready<K>(api: &Api<K>, name: &str, secs: u64) -> Value
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    eventually(secs, &format!("{name} Ready"), async || {
        let o = get_json(api, name).await.ok_or("absent")?;
        if ready(&o) {
            Ok(o)
        } else {
            Err(o["status"].to_string())
        }
    })
    .await
}

pub async fn wait_ready_rule(w: &World, name: &str, secs: u64) -> Value {
    wait_ready(&w.portrules(), name, secs).await
}

pub async fn wait_ready_vm(w: &World, name: &str, secs: u64) -> Value {
    wait_ready(&w.vmnetworks(), name, secs).await
}

pub fn standalone(w: &World, port: u16, to: &str) -> Value {
    let _ = w;
    json!({
        "router": w.router, "protocol": "tcp", "externalAddress": "203.0.113.20",
        "externalPort": port, "internalAddress": to, "internalPort": 8080
    })
}

/// The Go program in `hack/<name>`, built once per test binary (its modules come from
/// the Go module proxy) into the target directory.
pub fn go_tool(name: &str) -> std::path::PathBuf {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<HashMap<String, std::path::PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    built
        .entry(name.to_owned())
        .or_insert_with(|| {
            let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
            let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("hack")
                .join(name);
            let started = Instant::now();
            let ok = std::process::Command::new("go")
                .args(["build", "-o"])
                .arg(&out)
                .arg(".")
                .current_dir(&src)
                .status()
                .unwrap_or_else(|e| panic!("running go build for hack/{name}: {e}"));
            assert!(ok.success(), "go build of hack/{name} failed");
            eprintln!("built hack/{name} in {:?}", started.elapsed());
            out
        })
        .clone()
}

/// Runs `bin args`, writes each object as one JSON line to it, and returns its lines.
pub fn pipe_lines(
    bin: &std::path::Path,
    args: &[&std::ffi::OsStr],
    objects: &[&Value],
) -> Vec<String> {
    use std::io::Write;
    let mut child = std::process::Command::new(bin)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    {
        let mut stdin = child.stdin.take().unwrap();
        for o in objects {
            writeln!(stdin, "{o}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{} failed", bin.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What kstatus (`sigs.k8s.io/cli-utils/pkg/kstatus/status`, as Flux and kpt use it) says
/// of each object: `Current`, `InProgress`, `Failed`, ... (`hack/kstatus`).
pub fn kstatus(objects: &[&Value]) -> Vec<String> {
    pipe_lines(&go_tool("kstatus"), &[], objects)
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap_or_default().to_owned())
        .collect()
}

/// Every event this test binary logs (its operators run in process), with its level, from
/// the first call on (which installs the collecting subscriber).
pub fn logged() -> &'static std::sync::Mutex<Vec<(tracing::Level, String)>> {
    use std::sync::{Mutex, OnceLock};
    static LOG: OnceLock<Mutex<Vec<(tracing::Level, String)>>> = OnceLock::new();
    LOG.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        struct Collect;
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Collect {
            fn on_event(
                &self,
                event: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                struct Text(String);
                impl tracing::field::Visit for Text {
                    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                        self.0.push_str(&format!("{}={v:?} ", f.name()));
                    }
                }
                let mut t = Text(String::new());
                event.record(&mut t);
                if let Some(log) = LOG.get() {
                    log.lock().unwrap().push((*event.metadata().level(), t.0));
                }
            }
        }
        // Everything of ours; of the libraries (kube, hyper, rustls) only INFO and above.
        let ours = tracing_subscriber::filter::filter_fn(|m| {
            m.target().starts_with("vmnet") || m.target().starts_with("vyos") || {
                *m.level() <= tracing::Level::INFO
            }
        });
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::registry()
                .with(tracing_subscriber::Layer::with_filter(Collect, ours)),
        );
        Mutex::new(Vec::new())
    })
}
