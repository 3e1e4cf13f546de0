//! One writer task per router: the only code that changes a router.
//!
//! A pass (on a nudge, debounced, or when the drift interval elapses): read the router's
//! destination-NAT rules in one request, keep the owned ones (owned range + marker), compute
//! the desired rules from the PortRules, diff at leaf level, and commit the ops in as few
//! configure requests as the op budget allows. A failed commit changed nothing; the rules in
//! it are bisected so that only the offending ones are marked failed and the rest commit.
//! Then the PortRule and VyosRouter statuses are written, and finalizers of deleted
//! PortRules whose rules are gone are released.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use vmnet_api::{OrphanPolicy, PortRule, VyosRouter, VyosRouterStatus};
use vyos_client::nat::{NatRule, NetworkGroup};
use vyos_client::{ClientConfig, VyosClient, VyosError};

use crate::controller::Context;
use vmnet_plan::conditions::{State, conditions, same};
use vmnet_plan::desired::{Desired, Key, desired};
use vmnet_plan::render::{owner_of, rule_hash, uses_group};

/// What a pass reports to those who wait for it: the owned rules on the router afterwards
/// (number → owner), or why the pass failed.
pub type PassResult = Result<BTreeMap<u32, Key>, String>;

enum Msg {
    Nudge,
    Wait(oneshot::Sender<PassResult>),
}

/// A running writer. Dropping the handle stops the task.
#[derive(Debug)]
pub struct WriterHandle {
    tx: mpsc::UnboundedSender<Msg>,
    task: tokio::task::JoinHandle<()>,
    /// The router generation this writer last heard of; status-only updates of the router
    /// (which every pass makes) must not cause another pass.
    pub generation: Option<i64>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WriterHandle {
    /// Starts the writer of `router`.
    pub fn spawn(ctx: Arc<Context>, router: String) -> Self {
        ctx.metrics.router_started(&router);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(ctx, router, rx));
        let handle = Self {
            tx,
            task,
            generation: None,
        };
        handle.nudge();
        handle
    }

    /// Asks for a pass soon.
    pub fn nudge(&self) {
        let _ = self.tx.send(Msg::Nudge);
    }

    /// Asks for a pass and waits for its outcome.
    pub async fn pass(&self) -> PassResult {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Wait(tx))
            .map_err(|_| "the router's writer has stopped".to_owned())?;
        rx.await
            .map_err(|_| "the router's writer has stopped".to_owned())?
    }
}

/// Parses a Go-style duration such as `30s`, `5m` or `1h30m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
    }
    (num.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

struct Writer {
    ctx: Arc<Context>,
    name: String,
    /// The owned rules as this writer last left them; a difference on the router that no
    /// change of ours explains is drift.
    last: Option<BTreeMap<u32, NatRule>>,
    client: Option<(String, VyosClient)>,
    version: Option<String>,
    failures: u32,
    /// The operator's network-groups as this writer last left them (`None` before the
    /// first pass).
    last_groups: Option<BTreeMap<u32, NetworkGroup>>,
    /// A body limit the router showed (413) below the one its spec declares, with that
    /// declared limit: forgotten when the spec changes.
    learned_body_limit: Option<(usize, usize)>,
}

async fn run(ctx: Arc<Context>, name: String, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut w = Writer {
        ctx,
        name,
        last: None,
        client: None,
        version: None,
        failures: 0,
        learned_body_limit: None,
        last_groups: None,
    };
    let mut next = Instant::now();
    loop {
        let mut waiters = Vec::new();
        let timer = tokio::time::sleep_until(next.into());
        tokio::select! {
            msg = rx.recv() => match msg {
                None => return,
                Some(Msg::Wait(tx)) => waiters.push(tx),
                Some(Msg::Nudge) => {}
            },
            () = timer => {}
        }
        // Coalesce what arrives close together into one pass: wait until nothing new came
        // for one debounce period, but no longer than twenty periods in all, so a burst of
        // hundreds of changes becomes a few commits and a steady trickle still gets through.
        let debounce = w.ctx.settings.debounce;
        let deadline = Instant::now() + debounce * 20;
        loop {
            tokio::time::sleep(debounce).await;
            let mut more = false;
            while let Ok(msg) = rx.try_recv() {
                more = true;
                if let Msg::Wait(tx) = msg {
                    waiters.push(tx);
                }
            }
            if !more || Instant::now() >= deadline {
                break;
            }
        }
        let started = Instant::now();
        let result = w.pass().await;
        let interval = w.drift_interval();
        next = match &result {
            Ok(_) => {
                w.failures = 0;
                started + jitter(interval)
            }
            Err(_) => {
                w.failures += 1;
                Instant::now() + crate::controller::backoff(w.failures).min(interval)
            }
        };
        for tx in waiters {
            let _ = tx.send(result.clone());
        }
    }
}

fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis() as u64;
    Duration::from_millis(ms - ms / 10 + rand::random_range(0..=ms / 5))
}

impl Writer {
    fn router(&self) -> Option<Arc<VyosRouter>> {
        self.ctx
            .stores
            .routers
            .state()
            .into_iter()
            .find(|r| r.metadata.name.as_deref() == Some(self.name.as_str()))
    }

    fn drift_interval(&self) -> Duration {
        self.router()
            .and_then(|r| {
                r.spec
                    .drift_check_interval
                    .as_deref()
                    .and_then(parse_duration)
            })
            .unwrap_or(self.ctx.settings.default_drift_interval)
    }

    /// One pass; errors are recorded on the router and its PortRules before they return.
    async fn pass(&mut self) -> PassResult {
        let Some(router) = self.router() else {
            return Err(format!("VyosRouter {} does not exist", self.name));
        };
        let timer = Instant::now();
        let outcome = self.converge(&router).await;
        self.ctx
            .metrics
            .observe_pass(&self.name, timer.elapsed(), outcome.is_ok());
        match outcome {
            Ok(owned) => Ok(owned),
            Err(e) => {
                let (reason, message, stalled) = describe(&e);
                tracing::warn!(router = %self.name, reason, "sync failed: {message}");
                self.report_failure(&router, reason, &message, stalled)
                    .await;
                Err(format!("{reason}: {message}"))
            }
        }
    }

    async fn client(&mut self, router: &VyosRouter) -> Result<VyosClient, PassError> {
        let spec = &router.spec;
        let sref = &spec.credentials_secret_ref;
        if let Some(allowed) = &self.ctx.settings.credentials_namespaces
            && !allowed.contains(&sref.namespace)
        {
            return Err(PassError::SecretElsewhere(format!(
                "spec.credentialsSecretRef names namespace {:?}, but the operator reads API-key \
                 Secrets only in {} (its --credentials-namespaces, the Helm chart's \
                 credentials.namespaces): move the Secret there, or add the namespace",
                sref.namespace,
                allowed
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let key_name = sref.key.clone().unwrap_or_else(|| "api-key".to_owned());
        let secrets: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &sref.namespace);
        let secret = secrets.get_opt(&sref.name).await.map_err(PassError::Kube)?;
        let key = secret
            .as_ref()
            .and_then(|s| s.data.as_ref())
            .and_then(|d| d.get(&key_name))
            .map(|b| String::from_utf8_lossy(&b.0).trim().to_owned())
            .filter(|k| !k.is_empty());
        let Some(key) = key else {
            // A Secret deleted together with everything else (`kubectl delete -f`) must
            // not strand the rules on the router: keep the last key that worked.
            if let Some((_, c)) = &self.client {
                tracing::warn!(router = %self.name, secret = %format!("{}/{}", sref.namespace, sref.name), "the API key Secret is gone; using the last key read");
                return Ok(c.clone());
            }
            return Err(PassError::Secret(format!(
                "Secret {}/{} has no key {key_name:?} (spec.credentialsSecretRef)",
                sref.namespace, sref.name
            )));
        };
        let tls = spec.tls.clone().unwrap_or(vmnet_api::RouterTls {
            ca_bundle: None,
            insecure_skip_verify: None,
            insecure_plain_http: None,
        });
        // The fingerprint decides when to build a new client: a rotated key or a new CA
        // takes effect on the next pass, without a restart.
        let fingerprint = format!(
            "{}|{:x}|{:?}|{:?}",
            spec.endpoint,
            fnv(&key),
            tls.ca_bundle.as_deref().map(fnv),
            tls.insecure_skip_verify
        );
        if let Some((fp, c)) = &self.client
            && *fp == fingerprint
        {
            return Ok(c.clone());
        }
        let mut cfg = ClientConfig::new(spec.endpoint.clone(), key);
        cfg.ca_bundle_pem = tls.ca_bundle.clone();
        cfg.insecure_skip_verify = tls.insecure_skip_verify == Some(true);
        cfg.timeout = self.ctx.settings.router_timeout;
        cfg.read_retries = 1;
        let client = VyosClient::new(cfg).map_err(PassError::Vyos)?;
        self.client = Some((fingerprint, client.clone()));
        self.version = None;
        Ok(client)
    }

    async fn converge(&mut self, router: &VyosRouter) -> Result<BTreeMap<u32, Key>, PassError> {
        let client = self.client(router).await?;
        if self.version.is_none() {
            let v = client.version().await.map_err(PassError::Vyos)?;
            self.version = Some(v.version);
        }
        let range = router.spec.rule_range;
        let crate::sync::Read { owned, foreign } = crate::sync::read(&client, &range)
            .await
            .map_err(PassError::Vyos)?;
        let portrules = self.scoped_portrules();
        // Network-groups are read (a second request) only when some rule needs one or this
        // writer may have left one behind; a router without them costs one read a pass.
        let uses_groups = portrules
            .iter()
            .any(|r| r.spec.router == self.name && uses_group(r));
        let groups = if uses_groups || self.last_groups.as_ref().is_none_or(|g| !g.is_empty()) {
            crate::sync::read_groups(&client, &range)
                .await
                .map_err(PassError::Vyos)?
        } else {
            crate::sync::Groups::default()
        };
        let ctx = self.ctx.clone();
        let want = desired(
            &self.name,
            &router.spec,
            &portrules,
            &|r| ctx.tenant_check(r),
            &foreign,
            &groups.foreign,
        );

        // Target: the desired rules; owned rules nothing declares go (policy sync) or stay.
        let keep_orphans = router.spec.orphan_policy == Some(OrphanPolicy::UpsertOnly);
        let mut target: BTreeMap<u32, NatRule> = want
            .rules
            .iter()
            .map(|(n, e)| (*n, e.rule.clone()))
            .collect();
        let mut target_groups = want.groups();
        if keep_orphans {
            for (n, r) in &owned {
                if !target.contains_key(n) && !declared_elsewhere(&portrules, r) {
                    target.insert(*n, r.clone());
                    if let Some(g) = groups.owned.get(n) {
                        target_groups.insert(*n, g.clone());
                    }
                }
            }
        }

        // Drift: owned rules (or their groups) that differ from how this writer left them.
        let mut drifted = drift(self.last.as_ref(), &owned, &target);
        if let Some(last) = &self.last_groups {
            for n in target_groups.keys() {
                if groups.owned.get(n) != last.get(n) && target.contains_key(n) {
                    drifted.entry(*n).or_insert("edited in its network-group");
                }
            }
        }

        let declared = router
            .spec
            .request_body_size_limit
            .unwrap_or(1)
            .clamp(1, 256) as usize
            * 1024
            * 1024;
        let opts = crate::sync::ApplyOptions {
            max_ops_per_commit: self.ctx.settings.max_ops_per_commit,
            max_request_bytes: match self.learned_body_limit {
                Some((when, limit)) if when == declared => limit.min(declared),
                _ => declared,
            },
            request_budget: self.ctx.settings.request_budget,
            confirm_minutes: router.spec.commit_confirm_minutes,
            save: router.spec.save_config == Some(true),
        };
        let metrics = self.ctx.metrics.clone();
        let name = self.name.clone();
        let on_request = move |ok: bool, ops: usize| metrics.commit(&name, ok, ops as u64);
        // A change that takes several requests shows its progress on the router's status.
        // One task writes it, in order, and is awaited before the final status is written.
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<String>();
        let progress = {
            let api: Api<VyosRouter> = Api::all(self.ctx.client.clone());
            let name = self.name.clone();
            tokio::spawn(async move {
                while let Some(mut text) = progress_rx.recv().await {
                    while let Ok(newer) = progress_rx.try_recv() {
                        text = newer;
                    }
                    let body = json!({ "status": { "syncProgress": text } });
                    let _ = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(body))
                        .await;
                }
            })
        };
        let on_progress = move |sent: usize, total: usize| {
            let _ = progress_tx.send(format!("{sent}/{total} changes sent"));
        };
        let applied = crate::sync::apply_with_groups(
            &client,
            (&owned, &groups.owned),
            (&target, &target_groups),
            opts,
            &on_request,
            &on_progress,
        )
        .await;
        drop(on_progress);
        let _ = progress.await;
        let applied = applied.map_err(PassError::Vyos)?;
        if let Some(limit) = applied.learned_max_request_bytes {
            tracing::warn!(
                router = %self.name,
                limit,
                "the router refused a request as too large (413); later requests stay under {limit} bytes: check spec.requestBodySizeLimit"
            );
            self.learned_body_limit = Some((declared, limit));
        }
        let (after, failed) = (applied.after, applied.failed);
        let repaired: Vec<(u32, &str)> = drifted
            .iter()
            .filter(|(n, _)| !failed.contains_key(n))
            .map(|(n, d)| (*n, *d))
            .collect();
        for _ in &repaired {
            self.ctx.metrics.drift_repaired(&self.name);
        }
        for (n, drift) in repaired {
            self.report_drift(n, drift, &want).await;
        }
        self.last = Some(after.clone());
        self.last_groups = Some(applied.after_groups);
        self.write_statuses(&portrules, &want, &failed).await;
        self.release_finalizers(&portrules, &after).await;
        self.write_router_status(router, &after, &want, drifted.len())
            .await;
        Ok(after
            .iter()
            .filter_map(|(n, r)| {
                let (ns, name) = owner_of(r.description.as_deref())?;
                Some((
                    *n,
                    Key {
                        namespace: ns.to_owned(),
                        name: name.to_owned(),
                    },
                ))
            })
            .collect())
    }

    fn scoped_portrules(&self) -> Vec<Arc<PortRule>> {
        let ns = self.ctx.settings.namespace.as_deref();
        self.ctx
            .stores
            .portrules
            .state()
            .into_iter()
            .filter(|r| ns.is_none() || r.metadata.namespace.as_deref() == ns)
            .collect()
    }

    async fn report_drift(&self, number: u32, what: &str, want: &Desired) {
        let Some(entry) = want.rules.get(&number) else {
            return;
        };
        tracing::warn!(router = %self.name, rule = number, "drift repaired: rule {what}");
        let Some(pr) = self.find(&entry.key) else {
            return;
        };
        self.ctx
            .event(
                pr.object_ref(&()),
                true,
                "DriftRepaired",
                "Reconcile",
                format!(
                    "rule {number} on router {} was {what}; restored as declared",
                    self.name
                ),
            )
            .await;
    }

    fn find(&self, key: &Key) -> Option<Arc<PortRule>> {
        self.ctx.stores.portrules.state().into_iter().find(|r| {
            r.metadata.namespace.as_deref() == Some(key.namespace.as_str())
                && r.metadata.name.as_deref() == Some(key.name.as_str())
        })
    }

    async fn write_statuses(
        &self,
        portrules: &[Arc<PortRule>],
        want: &Desired,
        failed: &BTreeMap<u32, String>,
    ) {
        let mut patches = Vec::new();
        let by_key: BTreeMap<&Key, (u32, &NatRule, Option<&NetworkGroup>)> = want
            .rules
            .iter()
            .map(|(n, e)| (&e.key, (*n, &e.rule, e.group.as_ref())))
            .collect();
        for pr in portrules {
            if pr.spec.router != self.name || pr.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let key = Key::of(pr);
            let (state, reason, message, hash) = if let Some(r) = want.refused.get(&key) {
                (State::Stalled, r.reason, r.message.clone(), None)
            } else if let Some((n, rule, group)) = by_key.get(&key) {
                match failed.get(n) {
                    Some(text) => (
                        State::Stalled,
                        "CommitFailed",
                        format!("router {} refused rule {n}: {text}", self.name),
                        None,
                    ),
                    None => (
                        State::Ready,
                        "Programmed",
                        format!("rule {n} on router {}", self.name),
                        Some(rule_hash(rule, *group)),
                    ),
                }
            } else {
                continue;
            };
            let status = pr.status.clone().unwrap_or_default();
            let conds = status.common.conditions.as_deref();
            let generation = pr.metadata.generation;
            if same(conds, state, reason, &message, generation)
                && (hash.is_none() || status.applied_hash == hash)
            {
                continue;
            }
            let mut body = json!({
                "observedGeneration": generation,
                "conditions": conditions(conds, state, reason, &message, generation),
            });
            if hash.is_some() {
                body["appliedHash"] = json!(hash);
            }
            patches.push((key, body));
        }
        self.patch_statuses(patches).await;
    }

    async fn patch_statuses(&self, patches: Vec<(Key, serde_json::Value)>) {
        let client = self.ctx.client.clone();
        futures::stream::iter(patches)
            .for_each_concurrent(8, |(key, body)| {
                let api: Api<PortRule> = Api::namespaced(client.clone(), &key.namespace);
                async move {
                    let patch = Patch::Merge(json!({ "status": body }));
                    if let Err(e) = api
                        .patch_status(&key.name, &PatchParams::default(), &patch)
                        .await
                    {
                        tracing::debug!(portrule = %key, error = %e, "status not written");
                    }
                }
            })
            .await;
    }

    /// Every PortRule of this router that is being deleted and whose rule is no longer on
    /// the router loses the finalizer.
    async fn release_finalizers(
        &self,
        portrules: &[Arc<PortRule>],
        after: &BTreeMap<u32, NatRule>,
    ) {
        for pr in portrules {
            if pr.spec.router != self.name || pr.metadata.deletion_timestamp.is_none() {
                continue;
            }
            let key = Key::of(pr);
            let still = after.values().any(|r| {
                owner_of(r.description.as_deref())
                    == Some((key.namespace.as_str(), key.name.as_str()))
            });
            if !still {
                crate::controller::portrule::release_number(&self.ctx, pr);
                crate::controller::portrule::drop_finalizer(&self.ctx, pr).await;
            }
        }
    }

    async fn write_router_status(
        &self,
        router: &VyosRouter,
        after: &BTreeMap<u32, NatRule>,
        want: &Desired,
        drifted: usize,
    ) {
        let refused = want.refused.len();
        let message = if refused == 0 {
            format!("{} rules programmed", want.rules.len())
        } else {
            format!(
                "{} rules programmed, {refused} refused (see the PortRules' conditions)",
                want.rules.len()
            )
        };
        let status = VyosRouterStatus {
            common: vmnet_api::CommonStatus {
                observed_generation: router.metadata.generation,
                conditions: Some(conditions(
                    router
                        .status
                        .as_ref()
                        .and_then(|s| s.common.conditions.as_deref()),
                    State::Ready,
                    "Synced",
                    &message,
                    router.metadata.generation,
                )),
            },
            reachable: Some(true),
            vyos_version: self.version.clone(),
            last_sync_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            )),
            owned_rules: Some(after.len() as i64),
            declared_rules: Some(want.rules.len() as i64),
            drifted_rules: Some(drifted as i64),
            sync_progress: None,
        };
        self.ctx.metrics.router_rules(
            &self.name,
            after.len() as i64,
            want.rules.len() as i64,
            refused as i64,
        );
        let mut body = json!(status);
        // A finished pass clears the progress of a long one.
        body["syncProgress"] = serde_json::Value::Null;
        self.patch_router_status(body).await;
    }

    async fn patch_router_status(&self, status: serde_json::Value) {
        let api: Api<VyosRouter> = Api::all(self.ctx.client.clone());
        let patch = Patch::Merge(json!({ "status": status }));
        if let Err(e) = api
            .patch_status(&self.name, &PatchParams::default(), &patch)
            .await
        {
            tracing::debug!(router = %self.name, error = %e, "router status not written");
        }
    }

    async fn report_failure(
        &self,
        router: &VyosRouter,
        reason: &str,
        message: &str,
        stalled: bool,
    ) {
        let state = if stalled {
            State::Stalled
        } else {
            State::Reconciling
        };
        let generation = router.metadata.generation;
        let conds = conditions(
            router
                .status
                .as_ref()
                .and_then(|s| s.common.conditions.as_deref()),
            state,
            reason,
            message,
            generation,
        );
        let reachable = !matches!(reason, "RouterUnreachable");
        self.patch_router_status(json!({
            "observedGeneration": generation,
            "reachable": reachable,
            "conditions": conds,
        }))
        .await;
        let text = format!("router {}: {message}", self.name);
        let mut patches = Vec::new();
        for pr in self.scoped_portrules() {
            if pr.spec.router != self.name {
                continue;
            }
            let status = pr.status.clone().unwrap_or_default();
            let conds = status.common.conditions.as_deref();
            let g = pr.metadata.generation;
            // A rule already refused for its own reason (for this generation) keeps that
            // reason: the router's trouble would hide what the person must fix.
            if stalled_on_its_own(conds, g) {
                continue;
            }
            if same(conds, state, reason, &text, g) {
                continue;
            }
            patches.push((
                Key::of(&pr),
                json!({
                    "observedGeneration": g,
                    "conditions": conditions(conds, state, reason, &text, g),
                }),
            ));
        }
        self.patch_statuses(patches).await;
    }
}

/// Whether `conds` say Stalled, for generation `g`, for a reason of the rule itself (not
/// one a failed pass spreads over every rule of the router).
fn stalled_on_its_own(
    conds: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
    g: Option<i64>,
) -> bool {
    const ROUTER_WIDE: [&str; 7] = [
        "RouterUnreachable",
        "AuthFailed",
        "TLSError",
        "InvalidConfig",
        "SecretMissing",
        "SecretUnreadable",
        "SecretNamespaceNotAllowed",
    ];
    conds.into_iter().flatten().any(|c| {
        c.type_ == "Stalled"
            && c.status == "True"
            && c.observed_generation == g
            && !ROUTER_WIDE.contains(&c.reason.as_str())
    })
}

/// Owned rules that differ from how the writer last left them (`last`), where the
/// difference is not one the writer is about to make anyway: edits made on the router.
/// Without a `last` (the first pass after a start) nothing counts as drift.
pub fn drift(
    last: Option<&BTreeMap<u32, NatRule>>,
    owned: &BTreeMap<u32, NatRule>,
    target: &BTreeMap<u32, NatRule>,
) -> BTreeMap<u32, &'static str> {
    let Some(last) = last else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (n, was) in last {
        match owned.get(n) {
            None if target.contains_key(n) => {
                out.insert(*n, "deleted on the router");
            }
            Some(now) if now != was && target.get(n) != Some(now) => {
                out.insert(*n, "changed on the router");
            }
            _ => {}
        }
    }
    out
}

/// Whether some PortRule still declares the owned rule `r` (it may be waiting for its
/// number, or refused), so `upsert-only` keeps it without counting it as an orphan.
fn declared_elsewhere(portrules: &[Arc<PortRule>], r: &NatRule) -> bool {
    let Some((ns, name)) = owner_of(r.description.as_deref()) else {
        return false;
    };
    portrules.iter().any(|p| {
        p.metadata.namespace.as_deref() == Some(ns) && p.metadata.name.as_deref() == Some(name)
    })
}

#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error("{0}")]
    Vyos(VyosError),
    #[error("reading the API key: {0}")]
    Kube(kube::Error),
    #[error("{0}")]
    Secret(String),
    #[error("{0}")]
    SecretElsewhere(String),
}

/// Reason, message, and whether only a person can fix it.
fn describe(e: &PassError) -> (&'static str, String, bool) {
    match e {
        PassError::Vyos(v) => {
            let reason = v.category();
            let stalled = matches!(reason, "AuthFailed" | "TLSError" | "InvalidConfig");
            let hint = match reason {
                "AuthFailed" => {
                    "; check the key in spec.credentialsSecretRef against `service https api keys` on the router"
                }
                "TLSError" => {
                    "; set spec.tls.caBundle to the router's CA (or its self-signed certificate)"
                }
                "RouterUnreachable" => "; retrying with backoff",
                _ => "",
            };
            (reason, format!("{v}{hint}"), stalled)
        }
        PassError::Kube(k) => (
            "SecretUnreadable",
            format!("reading the API key Secret: {k}"),
            false,
        ),
        PassError::Secret(m) => ("SecretMissing", m.clone(), true),
        PassError::SecretElsewhere(m) => ("SecretNamespaceNotAllowed", m.clone(), true),
    }
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use vyos_client::nat::NatKind;

    fn rule(n: u32, port: &str) -> NatRule {
        let mut r = NatRule::new(NatKind::Destination, n);
        r.description = Some(format!("vmnet:ns/r{n}"));
        r.translation.port = Some(port.into());
        r
    }

    #[test]
    fn hand_edits_are_drift_and_our_own_changes_are_not() {
        let last = BTreeMap::from([(1, rule(1, "22")), (2, rule(2, "80")), (3, rule(3, "443"))]);
        // 1 deleted by hand, 2 changed by hand, 3 about to change because its spec did.
        let owned = BTreeMap::from([(2, rule(2, "8080")), (3, rule(3, "443"))]);
        let target = BTreeMap::from([(1, rule(1, "22")), (2, rule(2, "80")), (3, rule(3, "8443"))]);
        let d = drift(Some(&last), &owned, &target);
        assert_eq!(d.get(&1), Some(&"deleted on the router"));
        assert_eq!(d.get(&2), Some(&"changed on the router"));
        assert_eq!(d.get(&3), None);
        assert!(
            drift(None, &owned, &target).is_empty(),
            "no memory, no drift"
        );
        // A rule we deleted on purpose that is gone is not drift either.
        let target = BTreeMap::from([(2, rule(2, "80")), (3, rule(3, "443"))]);
        assert_eq!(drift(Some(&last), &owned, &target).get(&1), None);
    }

    #[test]
    fn a_rules_own_refusal_is_not_hidden_by_the_routers_trouble() {
        use vmnet_plan::conditions::{State, conditions};
        let own = conditions(None, State::Stalled, "NamespaceNotAllowed", "no", Some(2));
        assert!(stalled_on_its_own(Some(&own), Some(2)));
        assert!(
            !stalled_on_its_own(Some(&own), Some(3)),
            "an older generation's refusal"
        );
        let router = conditions(None, State::Stalled, "AuthFailed", "key", Some(2));
        assert!(!stalled_on_its_own(Some(&router), Some(2)));
        let ready = conditions(None, State::Ready, "Programmed", "", Some(2));
        assert!(!stalled_on_its_own(Some(&ready), Some(2)));
        assert!(!stalled_on_its_own(None, Some(2)));
    }

    #[test]
    fn durations_parse_like_the_crd_allows() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("3d"), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(100));
            assert!(
                j >= Duration::from_secs(90) && j <= Duration::from_secs(110),
                "{j:?}"
            );
        }
    }
}
