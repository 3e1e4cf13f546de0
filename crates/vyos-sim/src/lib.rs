//! vyos-sim: a simulator of the VyOS HTTP API, the test and demo peer of vmnet-operator.
//!
//! It speaks the API a client of VyOS 1.4 or 1.5 sees (endpoints, both request encodings,
//! the `{success, data, error}` envelope, status codes and error texts) over a config tree
//! with VyOS's semantics for the subtrees the operator writes (NAT, the IPv4 forward filter,
//! DHCP static mappings): set-time validation, commit-time checks with the config scripts'
//! messages, one all-or-nothing commit per configure request, a global
//! write lock, commit-confirm with revert to the saved config, and `showConfig` rendering.
//! Commits cost time like a real router's (a fixed part plus a part per rule); faults can
//! be injected; counters tell a test how many commits a change took. It is not a router:
//! nothing forwards packets. See docs/vyos-sim.md.

pub mod commit;
mod http;
pub mod opmode;
mod pyrepr;
mod request;
pub mod schema;
pub mod services;
pub mod text;
pub mod tree;
pub mod verify;
pub mod verify_dhcp;
pub mod verify_firewall;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use tree::Node;

/// Which VyOS the simulator plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    /// 1.4 (sagitta): a failed commit says only "Commit failed"; no `/info`; no
    /// commit-confirm (`confirm_time` is ignored); ISC dhcpd's DHCP schema.
    #[serde(rename = "1.4")]
    V1_4,
    /// 1.5 (circinus, 2025 and later): the config script's message, `/info`,
    /// commit-confirm; Kea's DHCP schema.
    #[serde(rename = "1.5")]
    V1_5,
}

impl Version {
    /// The version string `/info` and `show version` report.
    pub fn full(self) -> &'static str {
        match self {
            Version::V1_4 => "1.4.3",
            Version::V1_5 => "1.5-rolling-202511240000",
        }
    }
}

impl FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1.4" => Ok(Version::V1_4),
            "1.5" => Ok(Version::V1_5),
            other => Err(format!("unknown VyOS version {other:?}: use 1.4 or 1.5")),
        }
    }
}

/// What requests cost, in milliseconds, all multiplied by `time_scale`.
///
/// A write costs `request_fixed_ms + request_per_rule_ms·S + per_op_ms·ops`, plus, when it
/// changed something, `commit_fixed_ms + commit_per_rule_ms·S`, where S is the number of
/// NAT rules in the config: commits slow down as the rule set grows, whatever changed.
/// A read costs `request_fixed_ms + request_per_rule_ms·S`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// Fixed part of every request (building the config views).
    pub request_fixed_ms: f64,
    /// Per NAT rule, every request.
    pub request_per_rule_ms: f64,
    /// Per set/delete op.
    pub per_op_ms: f64,
    /// Fixed part of a commit.
    pub commit_fixed_ms: f64,
    /// Per NAT rule in the config, every commit.
    pub commit_per_rule_ms: f64,
    /// Multiplies everything (0.01 runs a "realistic" router a hundred times faster).
    pub time_scale: f64,
}

impl CostModel {
    /// No cost at all.
    pub fn instant() -> Self {
        Self {
            request_fixed_ms: 0.0,
            request_per_rule_ms: 0.0,
            per_op_ms: 0.0,
            commit_fixed_ms: 0.0,
            commit_per_rule_ms: 0.0,
            time_scale: 1.0,
        }
    }

    /// Starting points from the reference's cost analysis: 30 ms per op (a mix of plain
    /// and validated sets), 1 s per commit plus 0.25 ms per rule, 150 ms per request plus
    /// 0.05 ms per rule.
    pub fn realistic() -> Self {
        Self {
            request_fixed_ms: 150.0,
            request_per_rule_ms: 0.05,
            per_op_ms: 30.0,
            commit_fixed_ms: 1000.0,
            commit_per_rule_ms: 0.25,
            time_scale: 1.0,
        }
    }

    /// Whether every figure is finite and not negative (a cost that can be slept).
    pub fn is_valid(&self) -> bool {
        [
            self.request_fixed_ms,
            self.request_per_rule_ms,
            self.per_op_ms,
            self.commit_fixed_ms,
            self.commit_per_rule_ms,
            self.time_scale,
        ]
        .iter()
        .all(|x| x.is_finite() && *x >= 0.0)
    }

    fn sleep_for(&self, ms: f64) -> Duration {
        Duration::from_secs_f64((ms * self.time_scale).max(0.0) / 1000.0)
    }
}

/// Injected faults, changeable at run time through the admin endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct Faults {
    /// Share of requests answered with HTTP 500 (0.0–1.0).
    pub error_rate: f64,
    /// Share of requests held for 60 s before any answer (past a client's timeout).
    pub timeout_rate: f64,
    /// Share of connections closed (reset) before an answer.
    pub reset_rate: f64,
    /// Extra time per commit.
    pub commit_delay_ms: u64,
    /// Every commit fails with VyOS's generic commit failure.
    pub fail_commits: bool,
    /// A commit fails when a NAT rule's config contains this text (1.5 names the rule).
    pub fail_commit_matching: Option<String>,
    /// Another session (a person at the CLI) holds the commit lock: commits fail with
    /// VyOS's "temporarily locked" text, a transient error.
    pub locked_by_cli: bool,
    /// The router hangs: every API request is taken in (TLS, the request read) and never
    /// answered while this is set. When it is cleared, the held requests are dropped:
    /// their connections are closed without an answer and nothing of them is applied.
    /// The admin endpoint is not affected. Counted in `faults_injected["hang"]`.
    pub hang: bool,
}

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The VyOS API address (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The admin endpoint's address (`None`: `127.0.0.1:0`).
    pub admin_listen: Option<SocketAddr>,
    /// HTTPS with a self-signed certificate made at start (else plain HTTP).
    pub tls: bool,
    /// Where to write that certificate (PEM).
    pub tls_cert_out: Option<PathBuf>,
    /// Accepted API keys.
    pub api_keys: Vec<String>,
    /// Which VyOS to play.
    pub version: Version,
    /// Keeps the running and saved config across restarts.
    pub state_file: Option<PathBuf>,
    /// What requests cost.
    pub cost: CostModel,
    /// Faults at start.
    pub faults: Faults,
    /// VyOS's `service https request-body-size-limit`, in MiB (1–256; VyOS's default is
    /// 1): a larger request body is refused with 413 before the API sees it.
    pub request_body_size_limit_mib: u32,
}

impl SimOptions {
    /// Plain HTTP on a free port, no cost, key `test-key`, VyOS 1.5, no faults.
    pub fn for_tests() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: None,
            tls: false,
            tls_cert_out: None,
            api_keys: vec!["test-key".to_owned()],
            version: Version::V1_5,
            state_file: None,
            cost: CostModel::instant(),
            faults: Faults::default(),
            request_body_size_limit_mib: 1,
        }
    }
}

/// A third-party edit, as an admin would type it (the value, if any, is the path's last
/// element).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", content = "path", rename_all = "lowercase")]
pub enum SimOp {
    /// `set <path>`.
    Set(Vec<String>),
    /// `delete <path>`.
    Delete(Vec<String>),
}

/// What the simulator has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests by endpoint path (`/configure`, `/retrieve`, ...).
    pub requests: BTreeMap<String, u64>,
    /// `/configure` requests that carried ops (not `confirm`).
    pub configure_requests: u64,
    /// Commits that changed the config.
    pub commits: u64,
    /// Commits that failed (nothing changed).
    pub failed_commits: u64,
    /// Set/delete ops of committed requests.
    pub ops_applied: u64,
    /// `/retrieve` requests.
    pub retrieve_requests: u64,
    /// Requests refused by the HTTPS front end as larger than `request-body-size-limit`
    /// (413; the API never saw them).
    #[serde(default)]
    pub too_large: u64,
    /// Bytes of request bodies received (as declared by `Content-Length`).
    #[serde(default)]
    pub request_bytes: u64,
    /// Wall time spent answering requests, in microseconds, summed over requests (the
    /// router's busy time when requests come one at a time).
    #[serde(default)]
    pub busy_micros: u64,
    /// Faults injected so far, by kind: `5xx`, `held` (past a client's timeout), `reset`,
    /// `hang` (requests held by the `hang` fault).
    #[serde(default)]
    pub faults_injected: BTreeMap<String, u64>,
    /// Reboots ([`Sim::reboot`], the admin endpoint's `POST /reboot`).
    #[serde(default)]
    pub reboots: u64,
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Binding or I/O.
    #[error("vyos-sim: {0}")]
    Io(#[from] std::io::Error),
    /// Making the certificate or the TLS config.
    #[error("vyos-sim TLS: {0}")]
    Tls(String),
    /// Reading the state file.
    #[error("vyos-sim state file {path}: {message}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One `/configure` request that carried ops, as the simulator handled it: when the
/// router's write lock was taken and when the answer went out (Unix milliseconds), which
/// components its ops touched, and what came of it. Tests read it to check that a request
/// never mixes components and that two routers' writes never overlap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigureRecord {
    /// When the write began (the write lock was taken), Unix ms.
    pub started_ms: u64,
    /// The same instant in Unix µs (to measure a latency of a few ms without rounding).
    #[serde(default)]
    pub started_us: u64,
    /// When its commit replaced the running config, Unix µs (`None`: no commit).
    #[serde(default)]
    pub committed_us: Option<u64>,
    /// When the answer was ready, Unix ms.
    pub finished_ms: u64,
    /// Set/delete ops the request carried.
    pub ops: usize,
    /// The components its ops touched: the first path element, or the first two under
    /// `service`, `interfaces`, `protocols` and `system` (`nat`, `service dhcp-server`).
    pub components: std::collections::BTreeSet<String>,
    /// `committed`, `unchanged` (the ops changed nothing, so no commit ran), `refused`, or
    /// `dropped by a reboot` (the router rebooted before the commit; nobody was answered).
    pub outcome: String,
}

/// How many [`ConfigureRecord`]s the simulator keeps (the oldest go first).
pub const CONFIGURE_LOG_LEN: usize = 10_000;

/// The component an op's path belongs to (see [`ConfigureRecord::components`]).
pub fn component_of(path: &[String]) -> String {
    match path {
        [top, sub, ..]
            if matches!(
                top.as_str(),
                "service" | "interfaces" | "protocols" | "system"
            ) =>
        {
            format!("{top} {sub}")
        }
        [top, ..] => top.clone(),
        [] => String::new(),
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    running: Node,
    saved: Node,
    /// Files on the router besides the boot config, by absolute path.
    #[serde(default)]
    files: BTreeMap<String, String>,
}

/// Where the router keeps its configs (vyos-1x `vyos.defaults.directories['config']`).
pub const CONFIG_DIR: &str = "/config";
/// The boot config: the saved config.
pub const BOOT_CONFIG: &str = "/config/config.boot";

#[derive(Debug)]
struct State {
    running: Node,
    saved: Node,
    faults: Faults,
    keys: Vec<String>,
    counters: Counters,
    /// The latest configure requests, oldest first.
    configure_log: std::collections::VecDeque<ConfigureRecord>,
    /// A pending commit-confirm: its id (so an old timer does nothing).
    confirm: Option<u64>,
    confirm_seq: u64,
    /// When the router (last) booted: `show system uptime` counts from here.
    boot: std::time::Instant,
    /// Files on the router (configs saved elsewhere than the boot config, the 1.5 API's
    /// `/tmp/config.file`), by absolute path; the boot config is `saved`.
    files: BTreeMap<String, String>,
    /// When the last commit replaced the running config, Unix µs.
    last_commit_us: u64,
}

impl State {
    /// The text of a file on the router: [`BOOT_CONFIG`] is the saved config as
    /// `vyos-save-config.py` writes it.
    fn file(&self, path: &str, version: Version) -> Option<String> {
        if path == BOOT_CONFIG {
            return Some(text::render_boot(&self.saved, version));
        }
        self.files.get(path).cloned()
    }
}

/// A path on the router as a process started in `/` resolves it.
pub(crate) fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

#[derive(Debug)]
struct Shared {
    version: Version,
    /// What requests cost; the admin endpoint's `PUT /cost` replaces it between requests.
    cost: Mutex<CostModel>,
    state_file: Option<PathBuf>,
    /// The largest body the HTTPS front end passes on, in bytes.
    body_limit: usize,
    state: Mutex<State>,
    /// VyOS's global API lock: one write at a time, the others wait.
    write_lock: tokio::sync::Mutex<()>,
    /// Whether the `hang` fault is set; requests it holds wait for it to clear.
    hang: tokio::sync::watch::Sender<bool>,
    /// How many times the router has booted since start (counters can be reset; this is
    /// not): every request under way ends at a change. Changed while `state` is locked.
    boots: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// What a request that starts now costs.
    fn cost(&self) -> CostModel {
        *self.cost.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_cost(&self, cost: CostModel) {
        *self.cost.lock().unwrap_or_else(|p| p.into_inner()) = cost;
    }

    /// Which boot this is (see `boots`).
    fn boot_id(&self) -> u64 {
        *self.boots.borrow()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn persist(&self) {
        let Some(path) = &self.state_file else { return };
        let body = {
            let s = self.state();
            serde_json::to_vec_pretty(&Persisted {
                running: s.running.clone(),
                saved: s.saved.clone(),
                files: s.files.clone(),
            })
        };
        let Ok(body) = body else { return };
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, body)
            .and_then(|()| std::fs::rename(&tmp, path))
            .is_err()
        {
            tracing::warn!(path = %path.display(), "vyos-sim: could not write the state file");
        }
    }

    /// Replaces the faults (and wakes the requests a cleared `hang` held).
    fn set_faults(&self, f: Faults) {
        let hang = f.hang;
        self.state().faults = f;
        self.hang.send_replace(hang);
    }

    /// The time since the (last) boot.
    fn uptime(&self) -> Duration {
        self.state().boot.elapsed()
    }

    /// A reboot: the saved (boot) config becomes the running one, a pending commit-confirm
    /// is gone (its timer finds nothing to revert), the uptime starts again from zero, and
    /// the requests under way are dropped unanswered, a write's commit with them (sent while
    /// the state is locked, so a commit either came before the reboot or sees it).
    fn reboot(&self) {
        {
            let mut s = self.state();
            s.running = s.saved.clone();
            s.confirm = None;
            s.boot = std::time::Instant::now();
            s.counters.reboots += 1;
            self.boots.send_modify(|b| *b += 1);
        }
        tracing::info!("vyos-sim: rebooted; running the saved config");
        self.persist();
    }

    /// Applies ops as an admin would and commits them (checked like any commit).
    fn edit(&self, ops: &[SimOp]) -> Result<(), String> {
        let mut s = self.state();
        let mut candidate = s.running.clone();
        for op in ops {
            let (name, path) = match op {
                SimOp::Set(p) => ("set", p),
                SimOp::Delete(p) => ("delete", p),
            };
            apply_op(&mut candidate, name, path, None, self.version)?;
        }
        candidate.prune_keeping(&schema::kept_when_empty);
        if let Some(f) = commit::verify(&s.running, &candidate, self.version) {
            return Err(f.message);
        }
        s.running = candidate;
        drop(s);
        self.persist();
        Ok(())
    }

    /// Starts the commit-confirm timer; on expiry the running config goes back to the
    /// saved one, as VyOS's reboot would.
    fn arm_confirm(self: &Arc<Self>, minutes: u64) -> u64 {
        let id = {
            let mut s = self.state();
            s.confirm_seq += 1;
            let id = s.confirm_seq;
            s.confirm = Some(id);
            id
        };
        let me = self.clone();
        let wait = self.cost().sleep_for((minutes * 60_000) as f64);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            me.revert(Some(id));
        });
        id
    }

    /// Reverts a pending commit-confirm now (`id` None: whichever is pending).
    fn revert(&self, id: Option<u64>) -> bool {
        let mut s = self.state();
        match (s.confirm, id) {
            (Some(p), Some(i)) if p != i => return false,
            (None, _) => return false,
            _ => {}
        }
        s.confirm = None;
        s.running = s.saved.clone();
        drop(s);
        tracing::info!("vyos-sim: commit-confirm expired; reverted to the saved config");
        self.persist();
        true
    }
}

/// One `/configure` request's worth of ops, checked and committed in process, without
/// HTTP, locks, costs or faults: each `(op, path, value)` is applied to a copy of `running`
/// exactly as the `/configure` handler applies it, then the commit checks of the changed
/// components run ([`commit::verify`]). Returns the config the commit would leave, or why
/// the request fails: a set-time error in VyOS's words, or the refusing script's message
/// (unwrapped, and on 1.4 too, where the API itself only says `Commit failed`).
///
/// This is the pure entry point for tests that compare a client's pre-commit checks with
/// the simulator's (see `vyos-client`'s `validation_agrees_with_sim` test).
pub fn check_commit<'a>(
    running: &Node,
    ops: impl IntoIterator<Item = (&'a str, &'a [String], Option<&'a str>)>,
    version: Version,
) -> Result<Node, String> {
    let mut candidate = running.clone();
    for (op, path, value) in ops {
        apply_op(&mut candidate, op, path, value, version)?;
    }
    candidate.prune_keeping(&schema::kept_when_empty);
    match commit::verify(running, &candidate, version) {
        Some(f) => Err(f.message),
        None => Ok(candidate),
    }
}

/// Applies one set/delete/comment to `root`. Errors are VyOS's set-time texts.
pub(crate) fn apply_op(
    root: &mut Node,
    op: &str,
    path: &[String],
    value: Option<&str>,
    version: Version,
) -> Result<(), String> {
    use schema::Target;
    // _configure_op(): set, delete, comment, else
    //     raise ConfigSessionError(f"'{op}' is not a valid operation")
    if !matches!(op, "set" | "delete" | "comment") {
        return Err(format!("'{op}' is not a valid operation"));
    }
    if op == "comment" {
        return comment(root, path, value.unwrap_or_default(), version);
    }
    let target = schema::parse(path, value, version, op)?;
    let invalid = |p: &[String]| {
        format!(
            "Configuration path: [{}] is not valid\n\nSet failed",
            p.join(" ")
        )
    };
    match (op, target) {
        ("set", Target::Node(p) | Target::TagNode(p)) => {
            root.inner_mut(&p).ok_or_else(|| invalid(&p))?;
        }
        ("set", Target::Flag(p)) => {
            let (last, parent) = p.split_last().ok_or_else(|| invalid(&p))?;
            root.inner_mut(parent)
                .ok_or_else(|| invalid(&p))?
                .insert(last.clone(), Node::Leaf(Vec::new()).into());
        }
        ("set", Target::Value { leaf, value, multi }) => {
            let (last, parent) = leaf.split_last().ok_or_else(|| invalid(&leaf))?;
            let m = root.inner_mut(parent).ok_or_else(|| invalid(&leaf))?;
            match m.get_mut(last).map(Arc::make_mut) {
                Some(Node::Leaf(vals)) if multi => {
                    if !vals.contains(&value) {
                        vals.push(value);
                    }
                }
                Some(Node::Inner(c)) if !c.is_empty() => return Err(invalid(&leaf)),
                _ => {
                    m.insert(last.clone(), Node::Leaf(vec![value]).into());
                }
            }
        }
        ("set", Target::BareLeaf(p)) => {
            return Err(format!(
                "Configuration path: [{}] requires a value\n\nSet failed",
                p.join(" ")
            ));
        }
        (
            "delete",
            Target::Node(p) | Target::Flag(p) | Target::BareLeaf(p) | Target::TagNode(p),
        ) => {
            root.remove(&p);
        }
        ("delete", Target::Value { leaf, value, multi }) => {
            let mut full = leaf.clone();
            full.push(value.clone());
            if root.get(&full).is_some() {
                root.remove(&full);
            } else if let Some((last, parent)) = leaf.split_last()
                && let Some(m) = root.inner_mut(parent)
                && let Some(Node::Leaf(vals)) = m.get_mut(last).map(Arc::make_mut)
                && vals.contains(&value)
            {
                vals.retain(|v| *v != value);
                if vals.is_empty() || !multi {
                    m.remove(last);
                }
            }
        }
        (other, _) => return Err(format!("'{other}' is not a valid operation")),
    }
    Ok(())
}

/// `comment <path> <text>` (`configsession.comment(path, value)`, the CLI's `my_comment`
/// with the text as the last argument): checked as vyatta-cfg's
/// `Cstore::commentCfgPath` checks it, in its order and words, then dropped: the sim keeps
/// no comments, as `showConfig`'s JSON shows none.
fn comment(root: &Node, path: &[String], text: &str, version: Version) -> Result<(), String> {
    use schema::Target;
    let refuse = |why: &str| Err(format!("{why}\nComment failed"));
    // get_parsed_tmpl(): "Configuration path: [...] is not valid"
    let target = schema::parse(path, None, version, "comment")?;
    let exists = |p: &[String]| root.get(p).is_some();
    // cfg_path_exists(): "The specified config node does not exist"
    let here = match &target {
        Target::Value { leaf, value, .. } => {
            exists(path) || matches!(root.get(leaf), Some(Node::Leaf(vals)) if vals.contains(value))
        }
        Target::Node(p) | Target::Flag(p) | Target::BareLeaf(p) | Target::TagNode(p) => exists(p),
    };
    if !here {
        return refuse("The specified config node does not exist");
    }
    match target {
        // def->isLeafValue(): "Cannot comment on config values"
        Target::Value { .. } if !matches!(root.get(path), Some(Node::Inner(_))) => {
            refuse("Cannot comment on config values")
        }
        // def->isTagNode(): "Cannot add comment at this level"
        Target::TagNode(_) => refuse("Cannot add comment at this level"),
        // "Cannot use the '*' character in a comment"
        _ if text.contains('*') => refuse("Cannot use the '*' character in a comment"),
        _ => Ok(()),
    }
}

/// A running simulator. Dropping it stops it (without writing the state file).
#[derive(Debug)]
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    tls: bool,
    ca_pem: Option<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Sim {
    /// The VyOS API base URL.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The admin endpoint's base URL.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// The VyOS API address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The self-signed certificate (PEM), when serving HTTPS: the CA a client must trust.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.shared.state().counters.clone()
    }

    /// The latest configure requests that carried ops, oldest first (at most
    /// [`CONFIGURE_LOG_LEN`]); also at the admin endpoint's `/configure-log`.
    pub fn configure_log(&self) -> Vec<ConfigureRecord> {
        self.shared.state().configure_log.iter().cloned().collect()
    }

    /// Sets the counters to zero.
    pub fn reset_counters(&self) {
        self.shared.state().counters = Counters::default();
    }

    /// Replaces the faults.
    pub fn set_faults(&self, f: Faults) {
        self.shared.set_faults(f);
    }

    /// What requests cost now.
    pub fn cost(&self) -> CostModel {
        self.shared.cost()
    }

    /// Replaces what requests cost, from the next request on (one under way keeps the cost
    /// it started with). Also the admin endpoint's `PUT /cost`.
    pub fn set_cost(&self, cost: CostModel) {
        self.shared.set_cost(cost);
    }

    /// Reboots the router: the saved (boot) config becomes the running config, a pending
    /// commit-confirm is cleared, the uptime starts again from zero and
    /// [`Counters::reboots`] goes up. Also the admin endpoint's `POST /reboot`.
    pub fn reboot(&self) {
        self.shared.reboot();
    }

    /// The text of a file on the router: [`BOOT_CONFIG`] (the saved config, as
    /// `vyos-save-config.py` writes it), a config saved to another file, or the 1.5 API's
    /// `/tmp/config.file` of a `load` from a string. A relative path is taken from `/`.
    pub fn router_file(&self, path: &str) -> Option<String> {
        self.shared
            .state()
            .file(&absolute(path), self.shared.version)
    }

    /// The time since the router (last) booted, as `show system uptime` counts it.
    pub fn uptime(&self) -> Duration {
        self.shared.uptime()
    }

    /// Replaces the accepted API keys.
    pub fn set_api_keys(&self, keys: Vec<String>) {
        self.shared.state().keys = keys;
    }

    /// Edits the running config as an admin would (validated and committed, not saved).
    pub fn third_party_edit(&self, ops: Vec<SimOp>) -> Result<(), String> {
        self.shared.edit(&ops)
    }

    /// The running config, rendered like `showConfig []`.
    pub fn running_config(&self) -> Value {
        self.shared.state().running.render()
    }

    /// The saved (boot) config, rendered like `showConfig []`.
    pub fn saved_config(&self) -> Value {
        self.shared.state().saved.render()
    }

    /// Fires a pending commit-confirm's revert now; false when none is pending.
    pub fn expire_confirm(&self) -> bool {
        self.shared.revert(None)
    }

    /// Stops listening (in-flight requests are cut) and writes the state file.
    pub async fn stop(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        self.shared.persist();
    }
}

/// Starts a simulator.
pub async fn start(opts: SimOptions) -> Result<Sim, SimError> {
    let persisted = match &opts.state_file {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(p)?;
            serde_json::from_str::<Persisted>(&text).map_err(|e| SimError::State {
                path: p.clone(),
                message: e.to_string(),
            })?
        }
        _ => Persisted::default(),
    };
    let shared = Arc::new(Shared {
        version: opts.version,
        cost: Mutex::new(opts.cost),
        state_file: opts.state_file.clone(),
        body_limit: opts.request_body_size_limit_mib.clamp(1, 256) as usize * 1024 * 1024,
        state: Mutex::new(State {
            running: persisted.running,
            saved: persisted.saved,
            faults: opts.faults.clone(),
            keys: opts.api_keys.clone(),
            counters: Counters::default(),
            configure_log: std::collections::VecDeque::new(),
            confirm: None,
            confirm_seq: 0,
            boot: std::time::Instant::now(),
            files: persisted.files,
            last_commit_us: 0,
        }),
        write_lock: tokio::sync::Mutex::new(()),
        hang: tokio::sync::watch::Sender::new(opts.faults.hang),
        boots: tokio::sync::watch::Sender::new(0),
    });
    let listener = http::bind(opts.listen)?;
    let addr = listener.local_addr()?;
    let admin_listener = http::bind(
        opts.admin_listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
    )?;
    let admin_addr = admin_listener.local_addr()?;
    let (acceptor, ca_pem) = if opts.tls {
        let (acceptor, pem) = http::tls_acceptor()?;
        if let Some(out) = &opts.tls_cert_out {
            std::fs::write(out, &pem)?;
        }
        (Some(acceptor), Some(pem))
    } else {
        (None, None)
    };
    let tasks = vec![
        tokio::spawn(http::serve_api(listener, acceptor, shared.clone())),
        tokio::spawn(http::serve_admin(admin_listener, shared.clone())),
    ];
    Ok(Sim {
        shared,
        addr,
        admin_addr,
        tls: opts.tls,
        ca_pem,
        tasks,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    fn commit(lines: &[&str]) -> Result<Node, String> {
        let paths: Vec<Vec<String>> = lines.iter().map(|l| words(l)).collect();
        check_commit(
            &Node::default(),
            paths.iter().map(|p| ("set", p.as_slice(), None)),
            Version::V1_5,
        )
    }

    #[test]
    fn check_commit_keeps_empty_tag_values_as_vyos_does() {
        let ok = commit(&[
            "nat destination rule 10 translation address 10.0.0.5",
            "nat destination rule 10 load-balance backend 10.0.0.6 weight 100",
        ])
        .unwrap();
        assert_eq!(ok.nat_rules(), 1);
        // An empty rule stays, and the NAT commit wants a translation.
        let e = commit(&["nat destination rule 10"]).unwrap_err();
        assert!(
            e.contains("translation requires address and/or port"),
            "{e}"
        );
        // A backend without a weight stays too, and nat.py's int(weight) fails.
        let e = commit(&[
            "nat destination rule 10 translation address 10.0.0.5",
            "nat destination rule 10 load-balance backend 10.0.0.6",
        ])
        .unwrap_err();
        assert_eq!(e, "KeyError: 'weight'");
        // Set-time errors come back in VyOS's words.
        let e = commit(&["nat destination rule 10 protocol tcp-x"]).unwrap_err();
        assert!(
            e.starts_with("Error: tcp-x is not a valid IP protocol"),
            "{e}"
        );
        // An empty group is kept (a rule may name it).
        let g = commit(&["firewall group network-group EMPTY"]).unwrap();
        assert!(
            g.get(&words("firewall group network-group EMPTY"))
                .is_some()
        );
    }
}
