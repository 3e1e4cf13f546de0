//! `vmnet-operator run`: leader election, caches, allocator rebuild, controllers, writers
//! and the admin server, in that order.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::Event;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use tokio::task::JoinSet;
use vmnet_api::{IpPool, PortPool, PortRule, VmNetwork, VyosRouter};
use vmnet_core::alloc::{Claimant, PortAllocation};

use crate::admin::Health;
use crate::context::{Context, Settings, Stores, lock, rule_claims};
use crate::controller::pools::{address_spec, port_spec, protocol};
use crate::controller::{self, Error};
use crate::metrics::Metrics;
use crate::triggers::Triggers;
use crate::writer::wake;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Reconcile settings.
    pub settings: Settings,
    /// Leader-election Lease name and namespace.
    pub lease_name: String,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// This replica's identity in the Lease.
    pub identity: String,
    /// Lease duration in seconds (a dead leader is replaced after at most this long).
    pub lease_seconds: u64,
    /// Where `/healthz`, `/readyz` and `/metrics` listen (`None`: no admin server).
    pub admin_addr: Option<SocketAddr>,
}

/// Runs the operator until `shutdown` completes or leadership is lost (an error: the
/// process should exit and be restarted, so two replicas never write at once).
pub async fn operate(
    client: Client,
    opts: Options,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let mut tasks = JoinSet::new();
    if let Some(addr) = opts.admin_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the admin server to {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "admin server: /healthz /readyz /metrics");
        tasks.spawn(crate::admin::serve(
            listener,
            metrics.clone(),
            health.clone(),
        ));
    }
    tokio::pin!(shutdown);

    // Leadership first: a follower does nothing but wait (and report ready).
    let lease = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &opts.lease_name)
        .with_namespace(&opts.lease_namespace)
        .with_identity(&opts.identity)
        .with_duration(opts.lease_seconds.max(2))
        .with_grace((opts.lease_seconds / 3).max(1))
        .with_field_manager(format!("{}-lease", vmnet_api::FIELD_MANAGER))
        .build()
        .await
        .context("setting up leader election")?;
    let (mut leading, lease_task) = lease.watch().await;
    let _lease_task = AbortOnDrop(lease_task);
    health.ready.store(true, Ordering::Relaxed);
    tracing::info!(identity = %opts.identity, lease = %opts.lease_name, "waiting to lead");
    loop {
        if *leading.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = leading.changed() => changed.context("leader election stopped")?,
            () = &mut shutdown => return Ok(()),
        }
    }
    tracing::info!(identity = %opts.identity, "leading: starting controllers");
    metrics.set_leader(true);
    health.ready.store(false, Ordering::Relaxed);

    let ns = opts.settings.namespace.clone();
    let scoped = |c: &Client| -> (Api<VmNetwork>, Api<PortRule>) {
        match &ns {
            Some(n) => (Api::namespaced(c.clone(), n), Api::namespaced(c.clone(), n)),
            None => (Api::all(c.clone()), Api::all(c.clone())),
        }
    };
    let (vmn_api, pr_api) = scoped(&client);
    let routers_api: Api<VyosRouter> = Api::all(client.clone());
    let ippool_api: Api<IpPool> = Api::all(client.clone());
    let portpool_api: Api<PortPool> = Api::all(client.clone());

    let (routers, routers_w) = reflector::store();
    let (ippools, ippools_w) = reflector::store();
    let (portpools, portpools_w) = reflector::store();
    // The VmNetwork and PortRule caches are shared with their controllers (one watch and
    // one trimmed copy of each object, not two, the controllers' own full copies with
    // managedFields), and the VmNetwork controller is woken by a PortRule change only after
    // this cache holds it, so a reconcile never reads its children older than its trigger.
    // What wakes the controllers is handed on by `triggers` (not kube's shared reflector,
    // which can lose a wake-up: see there).
    let (vmnetworks, vmnetworks_w) = reflector::store();
    let mut vmnetwork_triggers = Triggers::default();
    let vmnetwork_changes = vmnetwork_triggers.subscribe();
    let (portrules, portrules_w) = reflector::store();
    let mut portrule_triggers = Triggers::default();
    let portrules_for_themselves = portrule_triggers.subscribe();
    let portrules_for_owners = portrule_triggers.subscribe();
    let stores = Stores {
        routers: routers.clone(),
        ippools: ippools.clone(),
        portpools: portpools.clone(),
        vmnetworks: vmnetworks.clone(),
        portrules: portrules.clone(),
    };
    let mut settings = opts.settings.clone();
    settings
        .backup_namespace
        .get_or_insert_with(|| opts.lease_namespace.clone());
    let ctx = Arc::new(Context::new(
        client.clone(),
        settings,
        stores,
        metrics.clone(),
    ));
    let _writers = StopWriters(ctx.clone());

    let cfg = watcher::Config::default;
    let selector = opts.settings.selector.clone();
    let cluster_cfg = move || match &selector {
        Some(sel) => watcher::Config::default().labels(sel),
        None => watcher::Config::default(),
    };
    tasks.spawn(drain(reflector::reflector(
        routers_w,
        watcher(routers_api.clone(), cluster_cfg())
            .default_backoff()
            .modify(lean),
    )));
    tasks.spawn(drain(reflector::reflector(
        ippools_w,
        watcher(ippool_api.clone(), cluster_cfg())
            .default_backoff()
            .modify(lean),
    )));
    tasks.spawn(drain(reflector::reflector(
        portpools_w,
        watcher(portpool_api.clone(), cluster_cfg())
            .default_backoff()
            .modify(lean),
    )));
    // When VmNetworks were edited: the PortRules they then write wake the writer as changes
    // made at the edit (`writer::wake::Causes`).
    let causes = Arc::new(std::sync::Mutex::new(wake::Causes::new(
        opts.settings.debounce,
    )));
    {
        // A VmNetwork's address decides which PortRules may forward to it (and its MAC the
        // DHCP step): a change of what the writer reads wakes it (`writer::wake`).
        let ctx = ctx.clone();
        let causes = causes.clone();
        let mut seen = wake::Seen::default();
        tasks.spawn(
            reflector::reflector(
                vmnetworks_w,
                watcher(vmn_api.clone(), cfg())
                    .default_backoff()
                    .modify(lean),
            )
            .for_each(move |ev| {
                let Ok(ev) = ev else {
                    return futures::future::ready(());
                };
                if let Event::Apply(v) | Event::InitApply(v) | Event::Delete(v) = &ev {
                    let fp = wake::vmnetwork_fingerprint(v);
                    let ns = v.metadata.namespace.as_deref().unwrap_or_default();
                    let name = v.metadata.name.as_deref().unwrap_or_default();
                    if wake::vmnetwork_edited(v) {
                        tracing::trace!(namespace = ns, name, "VmNetwork edit seen");
                        lock(&causes).edited(ns, name, Instant::now());
                    }
                    if seen.changed(ns, name, fp, || ctx.stores.vmnetworks.state().len()) {
                        ctx.nudge(&v.spec.router);
                    }
                }
                vmnetwork_triggers.take(&ctx.stores.vmnetworks, &ev);
                futures::future::ready(())
            }),
        );
    }
    {
        // A PortRule change that the writer reads wakes its router's writer; status that only
        // says how things stand does not (`writer::wake`).
        let ctx = ctx.clone();
        let mut seen = wake::Seen::default();
        tasks.spawn(
            reflector::reflector(
                portrules_w,
                watcher(pr_api.clone(), cfg())
                    .default_backoff()
                    .modify(lean),
            )
            .for_each(move |ev| {
                let Ok(ev) = ev else {
                    return futures::future::ready(());
                };
                if let Event::Apply(r) | Event::InitApply(r) | Event::Delete(r) = &ev {
                    let fp = wake::portrule_fingerprint(r);
                    let ns = r.metadata.namespace.as_deref().unwrap_or_default();
                    let name = r.metadata.name.as_deref().unwrap_or_default();
                    if seen.changed(ns, name, fp, || ctx.stores.portrules.state().len()) {
                        let cause = lock(&causes).of(ns, wake::vmnetwork_owners(r), Instant::now());
                        ctx.nudge_since(&r.spec.router, cause);
                    }
                }
                portrule_triggers.take(&ctx.stores.portrules, &ev);
                futures::future::ready(())
            }),
        );
    }
    {
        // A change of an API key Secret wakes the writers of the routers that use it, so a
        // rotated key is used at once (each pass re-reads it anyway). Metadata only: the
        // operator never caches Secret contents; and only in the namespaces it may read
        // Secrets in (cluster-wide only when it is told no namespaces).
        let ctx = ctx.clone();
        // Api<PartialObjectMeta<_>> makes metadata-only requests: the apiserver sends
        // PartialObjectMetadata, never the data.
        let apis: Vec<Api<kube::core::PartialObjectMeta<Secret>>> =
            match &opts.settings.credentials_namespaces {
                Some(nss) => nss
                    .iter()
                    .map(|n| Api::namespaced(client.clone(), n))
                    .collect(),
                None => vec![Api::all(client.clone())],
            };
        let watches = apis.into_iter().map(|api| {
            watcher(api, cfg())
                .default_backoff()
                .touched_objects()
                .boxed()
        });
        tasks.spawn(futures::stream::select_all(watches).for_each(move |ev| {
            if let Ok(s) = ev {
                let (ns, name) = (s.metadata.namespace.clone(), s.metadata.name.clone());
                if let (Some(n), Some(m), Some(v)) = (&ns, &name, &s.metadata.resource_version) {
                    lock(&ctx.secret_versions).insert(format!("{n}/{m}"), v.clone());
                }
                for r in ctx.stores.routers.state() {
                    let sref = &r.spec.credentials_secret_ref;
                    if Some(&sref.namespace) == ns.as_ref() && Some(&sref.name) == name.as_ref() {
                        ctx.nudge(r.metadata.name.as_deref().unwrap_or_default());
                    }
                }
            }
            futures::future::ready(())
        }));
    }
    for ready in [
        routers.wait_until_ready().boxed(),
        ippools.wait_until_ready().boxed(),
        portpools.wait_until_ready().boxed(),
        vmnetworks.wait_until_ready().boxed(),
        portrules.wait_until_ready().boxed(),
    ] {
        tokio::select! {
            r = ready => r.context("a cache stopped before it was filled")?,
            () = &mut shutdown => return Ok(()),
        }
    }
    rebuild(&ctx);
    count_states(&ctx);
    health.ready.store(true, Ordering::Relaxed);

    // Bounded: at most this many reconciles of one kind at a time.
    let ctl_cfg =
        kube::runtime::controller::Config::default().concurrency(opts.settings.concurrency);
    let router_ctl = Controller::new(routers_api, cluster_cfg())
        .with_config(ctl_cfg.clone())
        .run(
            counted(controller::router::reconcile),
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    let pr_ctl = Controller::for_shared_stream(portrules_for_themselves, portrules.clone())
        .with_config(ctl_cfg.clone())
        .watches(Api::<VyosRouter>::all(client.clone()), cluster_cfg(), {
            let store = portrules.clone();
            // Only spec changes (a new generation) concern the PortRules; every writer pass
            // updates the router's status.
            let seen =
                std::sync::Mutex::new(std::collections::HashMap::<String, Option<i64>>::new());
            move |r: VyosRouter| {
                let name = r.metadata.name.clone().unwrap_or_default();
                let changed = lock(&seen).insert(name.clone(), r.metadata.generation)
                    != Some(r.metadata.generation);
                if changed {
                    rules_of(&store, &name)
                } else {
                    Vec::new()
                }
            }
        })
        .run(
            counted(controller::portrule::reconcile),
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    let vmn_ctl = Controller::for_shared_stream(vmnetwork_changes, vmnetworks.clone())
        .with_config(ctl_cfg.clone())
        .owns_shared_stream(portrules_for_owners)
        // A pool's change wakes only the VmNetworks it can affect (not every VmNetwork).
        .watches(ippool_api.clone(), cluster_cfg(), {
            let store = vmnetworks.clone();
            move |p: IpPool| {
                let name = p.metadata.name.unwrap_or_default();
                some_of(&store, |v| {
                    controller::vmnetwork::affected_by_ip_pool(v, &name)
                })
            }
        })
        .watches(portpool_api.clone(), cluster_cfg(), {
            let store = vmnetworks.clone();
            move |p: PortPool| {
                let name = p.metadata.name.unwrap_or_default();
                some_of(&store, |v| {
                    controller::vmnetwork::affected_by_port_pool(v, &name, &p.spec.router)
                })
            }
        })
        .run(
            counted(controller::vmnetwork::reconcile),
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    let ippool_ctl = Controller::new(ippool_api, cluster_cfg())
        .with_config(ctl_cfg.clone())
        .run(
            counted(controller::pools::reconcile_ip),
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    let portpool_ctl = Controller::new(portpool_api, cluster_cfg())
        .with_config(ctl_cfg.clone())
        .run(
            counted(controller::pools::reconcile_port),
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    let prune = {
        let ctx = ctx.clone();
        async move {
            let mut n = 0u32;
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                controller::router::prune_writers(&ctx);
                if n.is_multiple_of(3) {
                    count_states(&ctx);
                }
                n = n.wrapping_add(1);
            }
        }
    };
    let all = futures::future::join5(router_ctl, pr_ctl, vmn_ctl, ippool_ctl, portpool_ctl);
    tokio::select! {
        _ = all => anyhow::bail!("the controllers stopped"),
        () = prune => Ok(()),
        () = &mut shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
        lost = async {
            loop {
                if leading.changed().await.is_err() || !*leading.borrow() {
                    break;
                }
            }
        } => {
            let () = lost;
            metrics.set_leader(false);
            anyhow::bail!("lost the leader Lease; exiting so that only one replica writes")
        }
    }
}

/// Imports every existing allocation before the first new one: pools, addresses and ports
/// from VmNetwork statuses, rule numbers from PortRule statuses. Conflicts are logged (the
/// reconciles then report them on the objects).
pub fn rebuild(ctx: &Context) {
    let s = &ctx.stores;
    let mut alloc = lock(&ctx.alloc);
    for p in s.ippools.state() {
        if let Err(e) = alloc.addresses.upsert(
            p.metadata.name.as_deref().unwrap_or_default(),
            address_spec(&p),
        ) {
            tracing::warn!(pool = ?p.metadata.name, "IpPool not loaded: {e}");
        }
    }
    for p in s.portpools.state() {
        if let Err(e) = alloc.ports.upsert(
            p.metadata.name.as_deref().unwrap_or_default(),
            port_spec(&p),
        ) {
            tracing::warn!(pool = ?p.metadata.name, "PortPool not loaded: {e}");
        }
    }
    let mut addresses = Vec::new();
    let mut ports = Vec::new();
    for v in s.vmnetworks.state() {
        let Some(st) = v.status.as_ref() else {
            continue;
        };
        let who = Claimant::new(
            "VmNetwork",
            v.metadata.namespace.as_deref().unwrap_or_default(),
            v.metadata.name.as_deref().unwrap_or_default(),
        );
        // Values outside every pool are imported too: they are held all the same.
        if let Some(ip) = st.address.as_deref().and_then(|a| a.parse().ok()) {
            addresses.push((st.ip_pool.clone(), who.clone(), ip));
        }
        for p in st.ports.iter().flatten() {
            let Some(port) = p.external_port else {
                continue;
            };
            // The protocol it was held in; older statuses lack it, and the spec says it.
            let proto = p.protocol.or_else(|| {
                let spec = v.spec.ports.iter().flatten().find(|x| x.name == p.name)?;
                Some(spec.protocol)
            });
            let Some(proto) = proto else {
                continue;
            };
            ports.push((
                p.port_pool.clone().ok_or_else(|| v.spec.router.clone()),
                who.clone().with_item(p.name.clone()),
                PortAllocation {
                    protocol: protocol(proto),
                    first: port,
                    last: port,
                },
            ));
        }
    }
    let report = alloc.addresses.rebuild(addresses);
    for c in &report.conflicts {
        tracing::warn!("address rebuild: {c}");
    }
    let report = alloc.ports.rebuild(ports);
    for c in &report.conflicts {
        tracing::warn!("port rebuild: {c}");
    }
    let portrules = s.portrules.state();
    for r in s.routers.state() {
        let name = r.metadata.name.clone().unwrap_or_default();
        match vmnet_core::alloc::RuleNumbers::new(
            &name,
            r.spec.rule_range.start,
            r.spec.rule_range.end,
        ) {
            Ok(mut numbers) => {
                for c in numbers.rebuild(rule_claims(&portrules, &name)).conflicts {
                    tracing::warn!(router = %name, "rule number rebuild: {c}");
                }
                alloc.rules.insert(name, numbers);
            }
            Err(e) => tracing::warn!(router = %name, "rule numbers: {e}"),
        }
    }
    tracing::info!(
        vmnetworks = s.vmnetworks.state().len(),
        portrules = portrules.len(),
        "allocators rebuilt from the API server"
    );
}

/// Objects per kind and state, from the caches, for `vmnet_objects` (every 15 s).
fn count_states(ctx: &Context) {
    fn count<K>(
        store: &Store<K>,
        status: impl Fn(&K) -> Option<&vmnet_api::CommonStatus>,
    ) -> [(&'static str, i64); 4]
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        let mut c = [
            ("Ready", 0),
            ("Reconciling", 0),
            ("Stalled", 0),
            ("None", 0),
        ];
        for o in store.state() {
            let on = status(&o)
                .and_then(|s| s.conditions.as_deref())
                .and_then(|cs| cs.iter().find(|c| c.status == "True"))
                .map(|c| c.type_.as_str());
            let i = match on {
                Some("Ready") => 0,
                Some("Reconciling") => 1,
                Some("Stalled") => 2,
                _ => 3,
            };
            c[i].1 += 1;
        }
        c
    }
    let s = &ctx.stores;
    let m = &ctx.metrics;
    m.objects(
        "VyosRouter",
        count(&s.routers, |o| o.status.as_ref().map(|s| &s.common)),
    );
    m.objects(
        "IpPool",
        count(&s.ippools, |o| o.status.as_ref().map(|s| &s.common)),
    );
    m.objects(
        "PortPool",
        count(&s.portpools, |o| o.status.as_ref().map(|s| &s.common)),
    );
    m.objects(
        "VmNetwork",
        count(&s.vmnetworks, |o| o.status.as_ref().map(|s| &s.common)),
    );
    m.objects(
        "PortRule",
        count(&s.portrules, |o| o.status.as_ref().map(|s| &s.common)),
    );
}

fn rules_of(store: &Store<PortRule>, router: &str) -> Vec<ObjectRef<PortRule>> {
    store
        .state()
        .iter()
        .filter(|r| r.spec.router == router)
        .map(|r| ObjectRef::from_obj(&**r))
        .collect()
}

fn some_of<K: Resource<DynamicType = ()> + Clone>(
    store: &Store<K>,
    keep: impl Fn(&K) -> bool,
) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|o| keep(o))
        .map(|o| ObjectRef::from_obj(&**o))
        .collect()
}

/// The key under which an object's failures are counted.
fn retry_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    let m = obj.meta();
    format!(
        "{}/{}/{}",
        K::kind(&()),
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default()
    )
}

/// `reconcile`, with the object's failure count cleared when it succeeds.
fn counted<K, F, Fut>(
    reconcile: F,
) -> impl FnMut(Arc<K>, Arc<Context>) -> futures::future::BoxFuture<'static, Result<Action, Error>>
where
    K: Resource<DynamicType = ()> + Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    move |obj, ctx| {
        async move {
            let key = retry_key(obj.as_ref());
            let result = reconcile(obj, ctx.clone()).await;
            if result.is_ok() {
                ctx.retries.succeeded(&key);
            }
            result
        }
        .boxed()
    }
}

/// A failed reconcile is retried after its object's own backoff (counted per object:
/// 1 s, 2 s, … a minute); a wait or a race with our own write, soon.
fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    err: &Error,
    ctx: Arc<Context>,
) -> Action {
    match err {
        Error::Waiting(_) => Action::requeue(Duration::from_secs(2)),
        Error::Stale(why) => {
            tracing::debug!("reconcile raced its own write ({why}); again shortly");
            Action::requeue(Duration::from_millis(500))
        }
        other => {
            let key = retry_key(obj.as_ref());
            let delay = ctx.retries.failed(&key);
            tracing::warn!(
                object = %key,
                attempt = ctx.retries.attempts(&key),
                retry_in_ms = delay.as_millis() as u64,
                category = other.category(),
                "reconcile failed: {other}"
            );
            Action::requeue(delay)
        }
    }
}

async fn drain<S, T, E>(stream: S)
where
    S: futures::Stream<Item = Result<T, E>> + Send,
    E: std::fmt::Display,
{
    let stream = stream.map_err(|e| {
        tracing::debug!(error = %e, "watch error (retried)");
    });
    futures::pin_mut!(stream);
    while stream.next().await.is_some() {}
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Stops every writer when `operate` ends or is dropped (writers hold the context, so
/// they would otherwise outlive it).
struct StopWriters(Arc<Context>);

impl Drop for StopWriters {
    fn drop(&mut self) {
        lock(&self.0.writers).clear();
    }
}

/// What the caches keep of an object: not its managedFields nor kubectl's
/// last-applied-configuration (the operator reads neither, and they are most of a small
/// object's size: at 3,000 objects they were most of the operator's memory).
fn lean<K: kube::ResourceExt>(o: &mut K) {
    o.managed_fields_mut().clear();
    o.annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
}
