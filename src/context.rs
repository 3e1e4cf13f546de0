//! What every controller and every writer shares: settings, caches, allocators, the
//! writers' wake-up handles, metrics and the Event recorder. Imports neither the
//! controllers nor the writer, so both can import it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use vmnet_api::{FINALIZER, IpPool, PortPool, PortRule, VmNetwork, VyosRouter};
use vmnet_core::alloc::{AddressPools, Claimant, PortPools, RuleNumbers};
use vmnet_plan::render::Refusal;

use crate::metrics::Metrics;

/// A router's writer as the rest of the operator sees it: something to wake. Dropping it
/// stops the writer.
pub trait Wake: Send + Sync {
    /// Asks for a pass soon, for a change made at `cause` (the debounce counts from it).
    fn wake_since(&self, cause: Instant);

    /// Asks for a pass soon, for a change made now.
    fn wake(&self) {
        self.wake_since(Instant::now());
    }
}

/// A running writer and the router generation it last heard of (status-only updates of
/// the router, which every pass makes, must not cause another pass).
pub struct WriterSlot {
    /// The writer.
    pub writer: Box<dyn Wake>,
    /// The generation of the VyosRouter when the writer was last woken for it.
    pub generation: Option<i64>,
    /// The `vmnet.dev/reconcile-requested-at` value the writer was last woken for.
    pub requested: Option<String>,
}

impl std::fmt::Debug for WriterSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterSlot")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Settings of a running operator (from `vmnet-operator run`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Changes that arrive within this time of each other go to the router together.
    pub debounce: Duration,
    /// At most this many set/delete ops in one configure request (one commit).
    pub max_ops_per_commit: usize,
    /// At most this many reconciles of one kind at a time.
    pub concurrency: u16,
    /// Aim for configure requests of about this duration, sized from the router's pace.
    pub request_budget: Duration,
    /// Drift check interval of routers that set none.
    pub default_drift_interval: Duration,
    /// Deadline of each request to a router.
    pub router_timeout: Duration,
    /// Only VmNetworks and PortRules of this namespace (all when `None`).
    pub namespace: Option<String>,
    /// Only VyosRouters, IpPools and PortPools with these labels (a label selector), so
    /// that several deployments can share a cluster, each with its own routers.
    pub selector: Option<String>,
    /// Namespaces whose Secrets may hold router API keys (`None`: any namespace).
    pub credentials_namespaces: Option<Vec<String>>,
    /// Where config backups are kept (Secrets); `None`: the Lease's namespace, which is
    /// the operator's own.
    pub backup_namespace: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(300),
            max_ops_per_commit: 2000,
            concurrency: 16,
            request_budget: Duration::from_secs(60),
            default_drift_interval: Duration::from_secs(300),
            router_timeout: Duration::from_secs(30),
            namespace: None,
            selector: None,
            credentials_namespaces: None,
            backup_namespace: None,
        }
    }
}

/// Read-only caches of every kind, fed by watches.
#[derive(Clone)]
pub struct Stores {
    /// VyosRouters.
    pub routers: Store<VyosRouter>,
    /// IpPools.
    pub ippools: Store<IpPool>,
    /// PortPools.
    pub portpools: Store<PortPool>,
    /// VmNetworks.
    pub vmnetworks: Store<VmNetwork>,
    /// PortRules.
    pub portrules: Store<PortRule>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

/// The allocators. Rebuilt from the API server before the first new allocation.
#[derive(Debug, Default)]
pub struct Allocators {
    /// Addresses, by IpPool.
    pub addresses: AddressPools,
    /// External ports, by PortPool.
    pub ports: PortPools,
    /// Rule numbers, by router.
    pub rules: HashMap<String, RuleNumbers>,
}

/// What every reconcile and every writer shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Settings.
    pub settings: Settings,
    /// Caches.
    pub stores: Stores,
    /// Allocators (only the leader runs, so only the leader allocates).
    pub alloc: Mutex<Allocators>,
    /// One writer per router.
    pub writers: Mutex<HashMap<String, WriterSlot>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Failed reconciles in a row, per object.
    pub retries: Retries,
    /// PortRules this process wrote whose new version the cache may not hold yet.
    pub written: Written<PortRule>,
    /// VmNetworks likewise (their finalizer and status writes).
    pub written_vms: Written<VmNetwork>,
    /// The resourceVersion of each API-key Secret (`namespace/name`) as the metadata watch
    /// last saw it: a writer re-reads a Secret only when it moved.
    pub secret_versions: Mutex<HashMap<String, String>>,
}

/// Objects this process wrote, kept until the watch cache holds that version (or for a few
/// seconds at most): a reconcile that runs before the watch delivers the write reads the
/// write's response, not the older cached copy, and so does not write the same again.
#[derive(Debug)]
pub struct Written<K: kube::Resource<DynamicType = ()>>(Mutex<Memo<K>>);

/// When an object was written, and the apiserver's answer.
type Entry<K> = (std::time::Instant, Arc<K>);

/// The written objects, and the size at which the expired ones are next dropped: twice
/// the size left after the last time (at least [`PRUNE_FROM`]), so a write costs O(1) on
/// average, not a scan of every object written in the last 30 s (at 10,000 PortRules
/// written in a cold converge, the scans were quadratic).
#[derive(Debug)]
struct Memo<K: kube::Resource<DynamicType = ()>> {
    entries: HashMap<ObjectRef<K>, Entry<K>>,
    prune_at: usize,
}

/// The fewest entries [`Written`] scans for expired ones.
const PRUNE_FROM: usize = 64;

impl<K: kube::Resource<DynamicType = ()>> Default for Written<K> {
    fn default() -> Self {
        Self(Mutex::new(Memo {
            entries: HashMap::new(),
            prune_at: PRUNE_FROM,
        }))
    }
}

/// How long a written object stands in for the cache's copy: long enough for any watch
/// delay the apiserver has under load, short enough that an object deleted meanwhile is
/// noticed (the cache then rightly holds nothing).
const WRITTEN_TTL: Duration = Duration::from_secs(30);

/// Whether `cached` is the version `written` or a later one. The apiserver's
/// resourceVersions are etcd revisions, integers that grow with every write; were they
/// ever not integers, only the very same version counts.
fn caught_up(cached: &kube::core::ObjectMeta, written: &kube::core::ObjectMeta) -> bool {
    if cached.uid != written.uid {
        return false;
    }
    match (&cached.resource_version, &written.resource_version) {
        (Some(c), Some(w)) => match (c.parse::<u64>(), w.parse::<u64>()) {
            (Ok(c), Ok(w)) => c >= w,
            _ => c == w,
        },
        _ => false,
    }
}

impl<K: kube::Resource<DynamicType = ()>> Written<K> {
    /// Remembers the apiserver's answer to a write of `obj`.
    pub fn remember(&self, obj: Arc<K>)
    where
        K: Clone,
    {
        self.remember_at(obj, std::time::Instant::now());
    }

    /// [`remember`](Self::remember), as written at `when`.
    fn remember_at(&self, obj: Arc<K>, when: std::time::Instant)
    where
        K: Clone,
    {
        let key = ObjectRef::from_obj(obj.as_ref());
        // Kept as lean as the caches keep theirs.
        let mut lean = (*obj).clone();
        lean.meta_mut().managed_fields = None;
        let obj = Arc::new(lean);
        let mut m = lock(&self.0);
        if m.entries.len() >= m.prune_at {
            m.entries.retain(|_, (at, _)| at.elapsed() < WRITTEN_TTL);
            m.prune_at = (m.entries.len() * 2).max(PRUNE_FROM);
        }
        m.entries.insert(key, (when, obj));
    }

    /// How many written objects are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.0).entries.len()
    }

    /// The fresher of the cache's copy of `key` and the one this process wrote.
    pub fn fresher(&self, key: &ObjectRef<K>, cached: Option<Arc<K>>) -> Option<Arc<K>> {
        let mut m = lock(&self.0);
        let Some((at, written)) = m.entries.get(key) else {
            return cached;
        };
        let current = cached
            .as_ref()
            .is_some_and(|c| caught_up(c.meta(), written.meta()));
        if current || at.elapsed() >= WRITTEN_TTL {
            m.entries.remove(key);
            return cached;
        }
        Some(written.clone())
    }
}

/// Failed reconciles in a row, per object (`Kind/namespace/name`), so each object backs off
/// on its own: its first failure is retried soon, its tenth after a minute, and another
/// object's first failure soon again.
#[derive(Debug, Default)]
pub struct Retries(Mutex<HashMap<String, u32>>);

impl Retries {
    /// One more failure of `key`: the delay before its next attempt.
    pub fn failed(&self, key: &str) -> Duration {
        let mut m = lock(&self.0);
        let n = m.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        backoff(*n)
    }

    /// `key` reconciled: its count starts over.
    pub fn succeeded(&self, key: &str) {
        lock(&self.0).remove(key);
    }

    /// Failures of `key` in a row.
    pub fn attempts(&self, key: &str) -> u32 {
        lock(&self.0).get(key).copied().unwrap_or(0)
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the data are
/// plain maps that stay consistent between statements).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Context {
    /// A context for `client`.
    pub fn new(client: Client, settings: Settings, stores: Stores, metrics: Arc<Metrics>) -> Self {
        let recorder = Recorder::new(client.clone(), reporter());
        Self {
            client,
            settings,
            stores,
            alloc: Mutex::new(Allocators::default()),
            writers: Mutex::new(HashMap::new()),
            metrics,
            recorder,
            retries: Retries::default(),
            written: Written::default(),
            written_vms: Written::default(),
            secret_versions: Mutex::new(HashMap::new()),
        }
    }

    /// The cached VyosRouter `name` (a map lookup).
    pub fn router(&self, name: &str) -> Option<Arc<VyosRouter>> {
        self.stores.routers.get(&ObjectRef::new(name))
    }

    /// The resourceVersion the Secret watch last saw of `router`'s API-key Secret (`None`:
    /// not seen, so a client is made from a fresh read).
    pub fn secret_version(&self, router: &VyosRouter) -> Option<String> {
        let sref = &router.spec.credentials_secret_ref;
        lock(&self.secret_versions)
            .get(&format!("{}/{}", sref.namespace, sref.name))
            .cloned()
    }

    /// Wakes the writer of `router` (if it runs): something it programs may have changed.
    pub fn nudge(&self, router: &str) {
        if let Some(w) = lock(&self.writers).get(router) {
            w.writer.wake();
        }
    }

    /// Wakes the writer of `router` (if it runs) for a change made at `cause`: a PortRule
    /// written because of a VmNetwork edit counts from the edit.
    pub fn nudge_since(&self, router: &str, cause: Instant) {
        if let Some(w) = lock(&self.writers).get(router) {
            w.writer.wake_since(cause);
        }
    }

    /// Wakes every writer.
    pub fn nudge_all(&self) {
        for w in lock(&self.writers).values() {
            w.writer.wake();
        }
    }

    /// The tenant check of `rule` against the allocators: who holds the address decides,
    /// never what a VmNetwork merely asks for. `O(pools)`, whatever the number of VMs.
    pub fn tenant_check(&self, rule: &PortRule) -> Result<(), Refusal> {
        let alloc = lock(&self.alloc);
        let holder = |ip: IpAddr| alloc.addresses.holder(ip);
        let pool_allows = |ip: IpAddr, ns: &str| {
            alloc
                .addresses
                .pools()
                .any(|p| p.covers(ip) && p.spec().policy.allows(ns))
        };
        vmnet_plan::tenant::check(rule, &holder, &pool_allows)
    }

    /// The rule-number allocator of `router`, created (and filled from the PortRules that
    /// already hold numbers on it) on first use.
    pub fn with_rule_numbers<T>(
        &self,
        router: &VyosRouter,
        f: impl FnOnce(&mut RuleNumbers) -> T,
    ) -> Result<T, vmnet_core::alloc::AllocError> {
        let name = router.metadata.name.clone().unwrap_or_default();
        let range = router.spec.rule_range;
        let mut alloc = lock(&self.alloc);
        if !alloc.rules.contains_key(&name) {
            let mut numbers = RuleNumbers::new(&name, range.start, range.end)?;
            let report = numbers.rebuild(rule_claims(&self.stores.portrules.state(), &name));
            for c in &report.conflicts {
                tracing::warn!(router = %name, "rule numbers: {c}");
            }
            alloc.rules.insert(name.clone(), numbers);
        }
        let numbers = alloc.rules.get_mut(&name).ok_or_else(|| {
            vmnet_core::alloc::AllocError::InvalidRequest {
                message: format!("no rule numbers for router {name}"),
            }
        })?;
        if numbers.range() != (range.start, range.end) {
            let report = numbers.reconfigure(range.start, range.end)?;
            for o in &report.out_of_range {
                tracing::warn!(router = %name, "rule numbers: {o}");
            }
        }
        Ok(f(numbers))
    }

    /// Publishes an Event about `obj` (failures are logged: an Event is never worth failing
    /// a reconcile for).
    pub async fn event(
        &self,
        obj: ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        // Warnings repeat (a failure seen at every pass) and the shared recorder counts them
        // into a series, keeping each Event it published for six minutes to do so. The
        // Normal ones say what changed, once per change: they go through a recorder of their
        // own, with nothing kept (at 10,000 rules the shared cache held 30 MB of them, and
        // went through them all at every publish).
        let once;
        let recorder = if warning {
            &self.recorder
        } else {
            once = Recorder::new(self.client.clone(), reporter());
            &once
        };
        if let Err(e) = recorder.publish(&ev, &obj).await {
            tracing::debug!(error = %e, "could not publish an Event");
        }
    }
}

/// Who publishes the operator's Events.
fn reporter() -> Reporter {
    Reporter {
        controller: vmnet_api::FIELD_MANAGER.to_owned(),
        instance: std::env::var("POD_NAME").ok(),
    }
}

/// The claimant that holds a PortRule's rule number.
pub fn rule_claimant(namespace: &str, name: &str) -> Claimant {
    Claimant::new("PortRule", namespace, name)
}

/// Every `(claimant, rule number)` recorded in PortRule statuses for `router`.
pub fn rule_claims(portrules: &[Arc<PortRule>], router: &str) -> Vec<(Claimant, u32)> {
    portrules
        .iter()
        .filter(|r| r.spec.router == router)
        .filter_map(|r| {
            let n = r.status.as_ref()?.rule_number?;
            Some((
                rule_claimant(
                    r.metadata.namespace.as_deref().unwrap_or_default(),
                    r.metadata.name.as_deref().unwrap_or_default(),
                ),
                n,
            ))
        })
        .collect()
}

/// Removes `pr`'s rule number from its router's allocator (its rule has left the router).
pub fn release_number(ctx: &Context, pr: &PortRule) {
    let claimant = rule_claimant(
        pr.metadata.namespace.as_deref().unwrap_or_default(),
        pr.metadata.name.as_deref().unwrap_or_default(),
    );
    if let Some(numbers) = lock(&ctx.alloc).rules.get_mut(&pr.spec.router) {
        numbers.release(&claimant);
    }
}

/// Removes the operator's finalizer from `pr` (its rule has left the router).
pub async fn drop_finalizer(ctx: &Context, pr: &PortRule) {
    let Some(finalizers) = pr.metadata.finalizers.as_ref() else {
        return;
    };
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return;
    }
    let api: Api<PortRule> = Api::namespaced(
        ctx.client.clone(),
        pr.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let rest: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
    // A compare-and-swap on the finalizer list alone: a list changed meanwhile is not
    // overwritten (the test fails and the next pass tries again), while a status write
    // that came between the cache's copy and this patch does not stand in the way (a
    // resourceVersion precondition made that a 409 for most rules of a large delete).
    let patch: json_patch::Patch = match serde_json::from_value(json!([
        { "op": "test", "path": "/metadata/finalizers", "value": finalizers },
        { "op": "replace", "path": "/metadata/finalizers", "value": rest },
    ])) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "finalizer patch not built");
            return;
        }
    };
    if let Err(e) = api
        .patch(
            pr.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        tracing::debug!(error = %e, "finalizer not removed (will retry)");
    }
}

/// Backoff for the `attempt`th failure in a row (from 1): 1 s, 2 s, 4 s, … up to a minute,
/// with up to a quarter more of jitter.
pub fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1u64 << attempt.min(7)).min(60_000);
    let jitter = rand::random_range(0..=base / 4);
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rule(name: &str) -> Arc<PortRule> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "vmnet.dev/v1alpha1", "kind": "PortRule",
                "metadata": {"name": name, "namespace": "ns", "resourceVersion": "7"},
                "spec": {"router": "edge", "protocol": "tcp", "externalPort": 2000,
                         "internalAddress": "10.0.0.1"}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn written_objects_expire_without_a_scan_per_write() {
        let w = Written::<PortRule>::default();
        let old = std::time::Instant::now() - (WRITTEN_TTL + Duration::from_secs(1));
        for i in 0..100 {
            w.remember_at(rule(&format!("old-{i}")), old);
        }
        // The scan at 64 entries dropped the 64 expired ones; 36 more came after it.
        assert_eq!(w.len(), 36);
        for i in 0..200 {
            w.remember(rule(&format!("new-{i}")));
        }
        // The next scan (at 64) dropped the other 36; the later ones (at 56 and 112,
        // twice what was left) found nothing expired.
        assert_eq!(w.len(), 200);
        let key = |n: &str| ObjectRef::from_obj(rule(n).as_ref());
        assert!(w.fresher(&key("old-99"), None).is_none());
        assert!(w.fresher(&key("new-0"), None).is_some());
        assert!(w.fresher(&key("new-199"), None).is_some());
    }

    #[test]
    fn each_object_backs_off_on_its_own_and_starts_over_after_a_success() {
        let r = Retries::default();
        let first = r.failed("PortRule/a/x");
        for _ in 0..8 {
            r.failed("PortRule/a/x");
        }
        let ninth = r.failed("PortRule/a/x");
        assert_eq!(r.attempts("PortRule/a/x"), 10);
        assert!(first <= Duration::from_millis(1250), "{first:?}");
        assert!(ninth >= Duration::from_secs(60), "{ninth:?}");
        // Another object is not held back by this one's failures.
        assert!(r.failed("PortRule/a/y") <= Duration::from_millis(1250));
        r.succeeded("PortRule/a/x");
        assert_eq!(r.attempts("PortRule/a/x"), 0);
        assert!(r.failed("PortRule/a/x") <= Duration::from_millis(1250));
    }
}
