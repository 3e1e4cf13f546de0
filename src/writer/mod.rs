//! One writer task per router: the only code that changes a router.
//!
//! A pass (on a wake-up, debounced, or when the drift interval elapses) is four steps,
//! each its own module: [`observe`] reads the router's owned rules and groups; the plan
//! step ([`vmnet_plan::plan`], pure) computes the change as a value; [`apply`] sends its ops
//! in paced, size-limited commits with bisection; [`report`] writes statuses, Events,
//! metrics and the audit trail. A paused router (annotation `vmnet.dev/paused`) is observed
//! and planned, never written to.

pub mod apply;
pub mod backups;
pub mod dhcp;
pub mod firewall;
pub mod members;
pub mod observe;
pub mod probe;
pub mod report;
pub mod wake;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vmnet_api::{PortRule, VyosRouter};
use vmnet_plan::conditions::Reason;
use vmnet_plan::desired::Key;
use vmnet_plan::plan::{Inputs, Plan, is_paused, plan};
use vmnet_plan::render::uses_group;
use vyos_client::VyosError;

use crate::context::{Context, Wake, backoff};
use apply::{ApplyOptions, Change, Request};
use observe::{Access, Connection};
use report::{Outcome, Reporter};

/// The annotation whose every new value starts a pass at once (drift check included); the
/// router's `status.lastHandledReconcileAt` echoes the value the pass answered.
pub const RECONCILE_REQUESTED_AT: &str = "vmnet.dev/reconcile-requested-at";

/// A running writer. Dropping the handle stops the task.
#[derive(Debug)]
pub struct WriterHandle {
    tx: mpsc::UnboundedSender<Instant>,
    task: tokio::task::JoinHandle<()>,
    probe: tokio::task::JoinHandle<()>,
    backups: tokio::task::JoinHandle<()>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.task.abort();
        self.probe.abort();
        self.backups.abort();
    }
}

impl Wake for WriterHandle {
    fn wake_since(&self, cause: Instant) {
        let _ = self.tx.send(cause);
    }
}

impl WriterHandle {
    /// Starts the writer of `router` and its health probe; the first pass and the first
    /// probe follow at once.
    pub fn spawn(ctx: Arc<Context>, router: String) -> Self {
        ctx.metrics.router_started(&router);
        let (tx, rx) = mpsc::unbounded_channel();
        let probe = tokio::spawn(probe::run(ctx.clone(), router.clone(), tx.clone()));
        let backups = tokio::spawn(backups::run(ctx.clone(), router.clone()));
        let task = tokio::spawn(run(ctx, router, rx));
        let handle = Self {
            tx,
            task,
            probe,
            backups,
        };
        handle.wake();
        handle
    }
}

pub use vmnet_api::parse_duration;

struct Writer {
    ctx: Arc<Context>,
    name: String,
    conn: Connection,
    failures: u32,
    /// Whether the router held any of the operator's network-groups after the last pass
    /// (`None` before the first): if not, and no rule needs one, they are not read.
    had_groups: Option<bool>,
    /// A body limit the router showed (413) below the one its spec declares, with that
    /// declared limit: forgotten when the spec changes.
    learned_body_limit: Option<(usize, usize)>,
    /// At most this many ops per request since a request of twice as many got no answer
    /// within the deadline.
    learned_max_ops: Option<usize>,
    /// The last pass ended with a write whose outcome is unknown: the next waits a whole
    /// request deadline, so the router has finished it before it is read again.
    unconfirmed: bool,
    /// Times every request to the router (`vmnet_router_request_duration_seconds`).
    observer: vyos_client::Observer,
    /// When this writer last tried a `beforeChanges` backup (Unix ms).
    backed_up_ms: Option<i64>,
    /// The other members of an HA router.
    members: members::Members,
    /// The rules the last pass rendered, for the next.
    renderings: vmnet_plan::render::Renderings,
    /// Whether the router held owned DHCP mappings at the last look (`None` before the
    /// first): if not, and no VmNetwork has a MAC, `service dhcp-server` is not read.
    had_mappings: Option<bool>,
}

async fn run(ctx: Arc<Context>, name: String, mut rx: mpsc::UnboundedReceiver<Instant>) {
    let mut w = Writer {
        observer: ctx.metrics.request_observer(&name),
        backed_up_ms: None,
        members: members::Members::default(),
        had_mappings: None,
        renderings: vmnet_plan::render::Renderings::default(),
        ctx,
        name,
        conn: Connection::default(),
        failures: 0,
        had_groups: None,
        learned_body_limit: None,
        learned_max_ops: None,
        unconfirmed: false,
    };
    let mut next = Instant::now();
    loop {
        let timer = tokio::time::sleep_until(next.into());
        let woken = tokio::select! {
            msg = rx.recv() => {
                let Some(cause) = msg else { return };
                Some(cause)
            }
            () = timer => None,
        };
        // Coalesce what arrives close together into one pass (see `quiet`), and read the
        // router meanwhile: the read does not depend on what the wake-ups bring, and at
        // 10,000 rules it takes about as long as the quiet period itself.
        let started = Instant::now();
        let ahead = if let Some(cause) = woken {
            let debounce = w.ctx.settings.debounce;
            let arrivals = std::sync::Mutex::new(started);
            let (ahead, last_wake) = tokio::join!(
                w.read_ahead(&arrivals),
                quiet(&mut rx, debounce, cause, &arrivals)
            );
            let Some(last_wake) = last_wake else {
                return;
            };
            ahead.map(|a| Ahead {
                last_wake: Some(last_wake),
                ..a
            })
        } else {
            None
        };
        let ok = w.pass(ahead).await;
        let interval = w.drift_interval();
        next = if ok {
            w.failures = 0;
            started + jitter(interval)
        } else if w.unconfirmed {
            // Never resend after a timeout: let the router finish, then read it again.
            w.failures += 1;
            Instant::now() + w.ctx.settings.router_timeout.min(interval)
        } else {
            w.failures += 1;
            Instant::now() + backoff(w.failures).min(interval)
        };
        // A forward that expires before then must leave the router at its instant, not at
        // the next drift check: wake up for the earliest expiresAt still to come. (A PortRule
        // created or edited later wakes the writer through the watch, and this is computed
        // again after that pass.)
        if let Some(wait) = until_next_expiry(&w.name, &scoped_portrules(&w.ctx)) {
            next = next.min(Instant::now() + wait);
        }
    }
}

/// Waits until nothing new came for one `debounce` period after the last change, but no
/// longer than twenty periods in all, so a burst of hundreds of changes becomes a few
/// commits and a steady trickle still gets through. A wake-up carries when its change was
/// made (`cause`, no later than when it was sent): a PortRule that a VmNetwork edit made
/// counts from the edit, so the controller's hop between them does not lengthen the wait,
/// and changes closer than one period still go to the router together. `first` is the
/// wake-up that started the wait. Returns when the last wake-up arrived (for the plan made
/// ahead, which stands only if none came after it began), and keeps that in `arrivals` as
/// it goes (the read made meanwhile looks); `None`: the writer is to stop.
async fn quiet(
    rx: &mut mpsc::UnboundedReceiver<Instant>,
    debounce: Duration,
    first: Instant,
    arrivals: &std::sync::Mutex<Instant>,
) -> Option<Instant> {
    // `arrivals` holds the first wake-up's arrival (the caller's), until another comes.
    let now = Instant::now();
    let deadline = now + debounce * 20;
    let mut changed = first.min(now);
    loop {
        let until = (changed + debounce).min(deadline);
        match tokio::time::timeout_at(until.into(), rx.recv()).await {
            Ok(Some(cause)) => {
                let now = Instant::now();
                *crate::context::lock(arrivals) = now;
                changed = changed.max(cause.min(now));
                while let Ok(cause) = rx.try_recv() {
                    changed = changed.max(cause.min(now));
                }
            }
            Ok(None) => return None,
            Err(_) => {
                // How late the timer fired (tokio's timers tick in milliseconds).
                tracing::debug!(
                    late_us = until.elapsed().as_micros() as u64,
                    "quiet period over"
                );
                return Some(*crate::context::lock(arrivals));
            }
        }
    }
}

/// How long until the earliest `spec.expiresAt` still to come among the router's PortRules.
fn until_next_expiry(router: &str, portrules: &[Arc<PortRule>]) -> Option<Duration> {
    let now = k8s_openapi::jiff::Timestamp::now();
    let at = vmnet_plan::desired::next_expiry(router, portrules, now)?;
    // `next_expiry` is after `now`, so this is positive; a clock that moved back meanwhile
    // gives zero (a pass at once, which finds nothing expired and computes this again).
    Some(Duration::try_from(now.duration_until(at)).unwrap_or(Duration::ZERO))
}

fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis() as u64;
    Duration::from_millis(ms - ms / 10 + rand::random_range(0..=ms / 5))
}

impl Writer {
    fn router(&self) -> Option<Arc<VyosRouter>> {
        self.ctx.router(&self.name)
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

    fn reporter(&self) -> Reporter<'_> {
        Reporter {
            ctx: &self.ctx,
            router: &self.name,
        }
    }

    /// One pass; errors are recorded on the router and its PortRules. `ahead`: the router
    /// as read while the writer waited for the wake-ups to settle.
    async fn pass(&mut self, ahead: Option<Ahead>) -> bool {
        let entered = Instant::now();
        let Some(router) = self.router() else {
            return false;
        };
        let portrules = scoped_portrules(&self.ctx);
        let timer = Instant::now();
        let outcome = self.sync(&router, &portrules, ahead, entered).await;
        // The other members of an HA router follow the first, one after the other.
        let first = members::First::of(&outcome);
        let members_ok = self.sync_members(&router, &portrules, first).await;
        self.ctx
            .metrics
            .observe_pass(&self.name, timer.elapsed(), outcome.is_ok() && members_ok);
        match outcome {
            Ok(()) => {
                self.ctx.metrics.router_up(&self.name, true);
                members_ok
            }
            Err(e) => {
                let (reason, message, stalled) = describe(&e);
                self.ctx
                    .metrics
                    .router_up(&self.name, reason != Reason::RouterUnreachable);
                tracing::warn!(router = %self.name, reason = reason.as_str(), "sync failed: {message}");
                self.reporter()
                    .failure(&router, &portrules, reason, &message, stalled)
                    .await;
                false
            }
        }
    }

    /// The observe step: the client, the router's version, and what the router holds (the
    /// network-groups too when the pass needs them).
    async fn read(
        &mut self,
        router: &VyosRouter,
        portrules: &[Arc<PortRule>],
    ) -> Result<Reading, PassError> {
        let secret_version = self.ctx.secret_version(router);
        let access = Access {
            namespaces: self.ctx.settings.credentials_namespaces.as_deref(),
            timeout: self.ctx.settings.router_timeout,
            secret_version: secret_version.as_deref(),
            observer: Some(&self.observer),
        };
        let client = self.conn.client(&self.ctx.client, access, router).await?;
        let version = self.conn.version(&client).await?;
        let groups = self.needs_groups(portrules);
        let observed = observe::observe(&client, &router.spec, groups)
            .await
            .map_err(PassError::Vyos)?;
        Ok(Reading {
            client,
            version,
            groups,
            observed,
        })
    }

    /// The observe step, run while the writer waits for wake-ups to settle, and the plan
    /// step on what it read, at once: at 10,000 rules the two together take about as long
    /// as the quiet period, and the pass uses the plan if nothing woke the writer after it
    /// began (see [`Ahead::plan_for`]).
    async fn read_ahead(&mut self, arrivals: &std::sync::Mutex<Instant>) -> Option<Ahead> {
        let router = self.router()?;
        let portrules = scoped_portrules(&self.ctx);
        let read_began = Instant::now();
        let read = self.read(&router, &portrules).await;
        let at = Instant::now();
        // A wake-up during the read means a burst: more are likely to follow and make the
        // plan stale (a cold converge drew out its quiet periods and threw away about 3 s
        // of plans at 10,000 rules), so the pass plans instead, once the burst settles.
        let burst = *crate::context::lock(arrivals) > read_began;
        let plan = read.as_ref().ok().filter(|_| !burst).map(|r| {
            let began = Instant::now();
            let portrules = scoped_portrules(&self.ctx);
            (self.plan_for(&router.spec, &portrules, &r.observed), began)
        });
        Some(Ahead {
            read,
            at,
            router_version: router.metadata.resource_version.clone(),
            plan,
            last_wake: None,
        })
    }

    /// observe → plan → apply → report. `entered`: when the pass began (the debug log
    /// tells the time it took to get here).
    async fn sync(
        &mut self,
        router: &VyosRouter,
        portrules: &[Arc<PortRule>],
        ahead: Option<Ahead>,
        entered: Instant,
    ) -> Result<(), PassError> {
        let t0 = Instant::now();
        // What was read ahead stands in for the observe step while it is recent (within
        // one debounce period: a quiet period that a burst drew out reads again) and of the
        // same router spec, and it read everything this pass needs.
        let fresh = ahead.filter(|a| {
            a.at.elapsed() <= self.ctx.settings.debounce
                && a.router_version == router.metadata.resource_version
        });
        let (reading, ahead_plan) = match fresh {
            Some(Ahead { read: Err(e), .. }) => return Err(e),
            Some(mut a)
                if a.read.as_ref().is_ok_and(|r| r.groups) || !self.needs_groups(portrules) =>
            {
                let plan = a.plan_for();
                (a.read?, plan)
            }
            _ => (self.read(router, portrules).await?, None),
        };
        let Reading {
            client,
            version,
            groups,
            observed,
        } = reading;
        let read = t0.elapsed();
        let planned_ahead = ahead_plan.is_some();
        let plan = ahead_plan.unwrap_or_else(|| self.plan_for(&router.spec, portrules, &observed));
        let planned = t0.elapsed();
        let requested = router
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RECONCILE_REQUESTED_AT))
            .cloned();

        let fw = self
            .plan_firewall(&client, router, &version, &observed, &plan.target)
            .await
            .or_else(|e| self.side_step("firewall", e))?;

        if is_paused(router.metadata.annotations.as_ref()) {
            if let Some(fw) = &fw {
                self.report_firewall(router, fw, None, false).await;
            }
            self.reporter()
                .pass(
                    router,
                    portrules,
                    Outcome {
                        plan: &plan,
                        applied: None,
                        observed_owned: observed.owned.len(),
                        version: Some(version.clone()),
                        requested,
                        took: Duration::ZERO,
                    },
                )
                .await;
            self.sync_dhcp(&client, router, &version)
                .await
                .or_else(|e| self.side_step("DHCP", e))?;
            return Ok(());
        }

        if plan.op_count() > 0 {
            self.backup_before_change(&client, router, &version).await;
        }
        // New and changed forward-filter accept rules go before the NAT change.
        let mut fw_refused = None;
        if let Some(fw) = &fw
            && !fw.before_nat.is_empty()
        {
            fw_refused = self
                .send_firewall(&client, &fw.before_nat, "before")
                .await
                .map_err(PassError::Vyos)?;
        }
        let started = Instant::now();
        self.unconfirmed = false;
        let applied = match self
            .apply(&client, router, &version, &observed, &plan)
            .await
        {
            Err(PassError::Vyos(VyosError::Timeout { .. })) => {
                // The request may have committed: read the router again before anything
                // is reported or sent, and say what is still to do.
                self.unconfirmed = true;
                let (_, again) = self
                    .observe_and_plan(&client, &router.spec, portrules, groups)
                    .await?;
                return Err(PassError::Unconfirmed(format!(
                    "a configure request got no answer within {} s, so it may have committed; \
                     read again: {} of {} ops still to send; the next pass waits for the \
                     router and sends smaller requests",
                    self.ctx.settings.router_timeout.as_secs(),
                    again.op_count(),
                    plan.op_count()
                )));
            }
            other => other?,
        };
        self.had_groups = Some(!applied.after_groups.is_empty());
        let sent = started.elapsed();
        // Removed ones after it.
        if let Some(fw) = &fw {
            if !fw.after_nat.is_empty() && fw_refused.is_none() {
                fw_refused = self
                    .send_firewall(&client, &fw.after_nat, "after")
                    .await
                    .map_err(PassError::Vyos)?;
            }
            self.report_firewall(router, fw, fw_refused, true).await;
        }
        self.reporter()
            .pass(
                router,
                portrules,
                Outcome {
                    plan: &plan,
                    applied: Some(&applied),
                    observed_owned: observed.owned.len(),
                    version: Some(version.clone()),
                    requested,
                    took: started.elapsed(),
                },
            )
            .await;
        tracing::debug!(
            router = %self.name,
            ops = plan.op_count(),
            planned_ahead,
            prepare_us = t0.duration_since(entered).as_micros() as u64,
            read_ms = read.as_millis() as u64,
            plan_ms = (planned - read).as_millis() as u64,
            // From the plan to the first request (the firewall step, a backup).
            setup_us = started.duration_since(t0).saturating_sub(planned).as_micros() as u64,
            apply_ms = sent.as_millis() as u64,
            report_ms = (started.elapsed() - sent).as_millis() as u64,
            "pass"
        );
        // DHCP static mappings, in requests of their own (never mixed with nat).
        self.sync_dhcp(&client, router, &version)
            .await
            .or_else(|e| self.side_step("DHCP", e))?;
        Ok(())
    }

    /// Whether a pass must read the network-groups: the last found some, or a rule uses one.
    fn needs_groups(&self, portrules: &[Arc<PortRule>]) -> bool {
        self.had_groups != Some(false)
            || portrules
                .iter()
                .any(|r| r.spec.router == self.name && uses_group(r))
    }

    /// The observe and plan steps against the router (or HA member) behind `client`, with
    /// `spec` as its view of the VyosRouter; `groups`: read the network-groups too.
    async fn observe_and_plan(
        &self,
        client: &vyos_client::VyosClient,
        spec: &vmnet_api::VyosRouterSpec,
        portrules: &[Arc<PortRule>],
        groups: bool,
    ) -> Result<(vmnet_plan::plan::Observed, Plan), PassError> {
        let observed = observe::observe(client, spec, groups)
            .await
            .map_err(PassError::Vyos)?;
        let plan = self.plan_for(spec, portrules, &observed);
        Ok((observed, plan))
    }

    /// The plan step for a router (or HA member) with `spec` that holds `observed`.
    fn plan_for(
        &self,
        spec: &vmnet_api::VyosRouterSpec,
        portrules: &[Arc<PortRule>],
        observed: &vmnet_plan::plan::Observed,
    ) -> Plan {
        let paused = paused_rules(&self.ctx, portrules);
        plan(&Inputs {
            router: &self.name,
            spec,
            portrules,
            check: &|r| self.ctx.tenant_check(r),
            observed,
            paused: &paused,
            now: k8s_openapi::jiff::Timestamp::now(),
            renderings: Some(&self.renderings),
        })
    }

    /// How a failed DHCP or firewall step ends the pass: a router that does not answer
    /// fails it (`Err`); anything else (a config the operator cannot read there, a refused
    /// request) is logged and leaves the NAT rules, already in place, reported as they are.
    fn side_step<T: Default>(&self, step: &str, e: VyosError) -> Result<T, PassError> {
        if e.category() == "RouterUnreachable" {
            return Err(PassError::Vyos(e));
        }
        tracing::warn!(router = %self.name, step, category = e.category(), "the {step} step failed; the NAT rules are not affected: {e}");
        Ok(T::default())
    }

    /// `spec.backup.beforeChanges`: a backup before the first request of a pass that
    /// writes, unless one was taken (or tried) within `minInterval`. A failed backup is
    /// reported (status, Event, metric) and does not hold the change back.
    async fn backup_before_change(
        &mut self,
        client: &vyos_client::VyosClient,
        router: &VyosRouter,
        version: &str,
    ) {
        let Some(spec) = router
            .spec
            .backup
            .as_ref()
            .filter(|b| b.before_changes == Some(true))
        else {
            return;
        };
        let min = spec
            .min_interval
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or(Duration::from_secs(3600));
        let now = k8s_openapi::jiff::Timestamp::now().as_millisecond();
        let last_stored = router
            .status
            .as_ref()
            .and_then(|s| s.backup.as_ref())
            .and_then(|b| b.last_backup.as_ref())
            .map(|b| b.time.0.as_millisecond());
        let last = self.backed_up_ms.max(last_stored);
        if last.is_some_and(|l| now - l < i64::try_from(min.as_millis()).unwrap_or(i64::MAX)) {
            return;
        }
        self.backed_up_ms = Some(now);
        backups::take(
            &self.ctx,
            router,
            client,
            version,
            backups::Reason::BeforeChange,
        )
        .await;
    }

    async fn apply(
        &mut self,
        client: &vyos_client::VyosClient,
        router: &VyosRouter,
        version: &str,
        observed: &vmnet_plan::plan::Observed,
        plan: &Plan,
    ) -> Result<apply::Applied, PassError> {
        let declared = router
            .spec
            .request_body_size_limit
            .unwrap_or(1)
            .clamp(1, 256) as usize
            * 1024
            * 1024;
        let opts = ApplyOptions {
            max_ops_per_commit: self
                .learned_max_ops
                .map_or(self.ctx.settings.max_ops_per_commit, |m| {
                    m.min(self.ctx.settings.max_ops_per_commit)
                }),
            max_request_bytes: match self.learned_body_limit {
                Some((when, limit)) if when == declared => limit.min(declared),
                _ => declared,
            },
            // Sized to end well inside the deadline (half of it at most).
            request_budget: vmnet_plan::commit::request_budget(
                self.ctx.settings.request_budget,
                self.ctx.settings.router_timeout,
            ),
            // 1.4 has no commit-confirm: its changes go without the timer (the router's
            // status says so), never with a confirm it does not know.
            confirm_minutes: router
                .spec
                .commit_confirm_minutes
                .filter(|_| vmnet_plan::commit::has_commit_confirm(version)),
            save: router.spec.save_config == Some(true),
        };
        let metrics = self.ctx.metrics.clone();
        let name = self.name.clone();
        // The owner of a rule the request carried, looked up in the plan (its numbered rules
        // come first, by number) rather than copied out of it before the first request.
        let owner = |n: u32| {
            plan.rules
                .binary_search_by(|r| r.number.map_or(std::cmp::Ordering::Greater, |m| m.cmp(&n)))
                .ok()
                .and_then(|i| plan.rules[i].owner.as_deref())
                .unwrap_or("-")
        };
        let timed_out = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let timed_out_ops = timed_out.clone();
        // The audit trail: one line per configure request, with the rules it carried.
        let on_request = move |r: &Request<'_>| {
            metrics.commit(&name, r.ok, r.ops as u64);
            if r.timed_out {
                timed_out_ops.store(r.ops, std::sync::atomic::Ordering::Relaxed);
            }
            let rules: Vec<String> = r
                .rules
                .iter()
                .map(|n| format!("{n}:{}", owner(*n)))
                .collect();
            tracing::info!(
                router = %name,
                request = r.seq,
                ops = r.ops,
                rules = %rules.join(","),
                outcome = if r.ok { "committed" } else { "refused" },
                error = r.error.unwrap_or(""),
                duration_ms = r.took.as_millis() as u64,
                "configure request"
            );
        };
        // A change that takes several requests shows its progress on the router's status.
        // One task writes it, in order, and is awaited before the final status is written.
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<String>();
        let progress = {
            let ctx = self.ctx.clone();
            let name = self.name.clone();
            tokio::spawn(async move {
                let reporter = Reporter {
                    ctx: &ctx,
                    router: &name,
                };
                while let Some(mut text) = progress_rx.recv().await {
                    while let Ok(newer) = progress_rx.try_recv() {
                        text = newer;
                    }
                    reporter
                        .patch_router_status(serde_json::json!({ "syncProgress": text }))
                        .await;
                }
            })
        };
        let on_progress = move |sent: usize, total: usize| {
            let _ = progress_tx.send(format!("{sent}/{total} changes sent"));
        };
        let change = Change {
            ops: &plan.ops,
            before: (&observed.owned, &observed.owned_groups),
            after: (&plan.target, &plan.target_groups),
        };
        let applied = apply::apply(client, change, opts, &on_request, &on_progress).await;
        drop(on_progress);
        let _ = progress.await;
        let timed_out = timed_out.load(std::sync::atomic::Ordering::Relaxed);
        if timed_out > 0 {
            let limit = (timed_out / 2).max(1);
            tracing::warn!(router = %self.name, ops = timed_out, limit, "a configure request outlived the deadline; later requests carry at most {limit} ops");
            self.learned_max_ops = Some(limit);
        }
        let applied = applied.map_err(PassError::Vyos)?;
        if let Some(limit) = applied.learned_max_request_bytes {
            tracing::warn!(
                router = %self.name,
                limit,
                "the router refused a request as too large (413); later requests stay under {limit} bytes: check spec.requestBodySizeLimit"
            );
            self.learned_body_limit = Some((declared, limit));
        }
        Ok(applied)
    }
}

/// The PortRules the operator sees (all namespaces, or its `--namespace`).
pub fn scoped_portrules(ctx: &Context) -> Vec<Arc<PortRule>> {
    let ns = ctx.settings.namespace.as_deref();
    ctx.stores
        .portrules
        .state()
        .into_iter()
        .filter(|r| ns.is_none() || r.metadata.namespace.as_deref() == ns)
        .collect()
}

/// PortRules whose rules are held: paused themselves, or through their VmNetwork.
pub fn paused_rules(ctx: &Context, portrules: &[Arc<PortRule>]) -> BTreeSet<Key> {
    let vms = ctx.stores.vmnetworks.state();
    let paused_vms: BTreeSet<(&str, &str)> = vms
        .iter()
        .filter(|v| is_paused(v.metadata.annotations.as_ref()))
        .filter_map(|v| {
            Some((
                v.metadata.namespace.as_deref()?,
                v.metadata.name.as_deref()?,
            ))
        })
        .collect();
    portrules
        .iter()
        .filter(|p| {
            is_paused(p.metadata.annotations.as_ref())
                || (!paused_vms.is_empty()
                    && p.metadata.owner_references.iter().flatten().any(|o| {
                        o.kind == "VmNetwork"
                            && paused_vms.contains(&(
                                p.metadata.namespace.as_deref().unwrap_or_default(),
                                o.name.as_str(),
                            ))
                    }))
        })
        .map(|p| Key::of(p))
        .collect()
}

/// What the observe step read.
struct Reading {
    client: vyos_client::VyosClient,
    /// The router's VyOS version.
    version: String,
    /// Whether the network-groups were read.
    groups: bool,
    /// What the router holds.
    observed: vmnet_plan::plan::Observed,
}

/// The router as read while the writer waited for wake-ups to settle.
struct Ahead {
    /// What was read, or why it could not be.
    read: Result<Reading, PassError>,
    /// When the read ended.
    at: Instant,
    /// The VyosRouter's resourceVersion it was read for.
    router_version: Option<String>,
    /// The plan made from that read as soon as it ended, with when it began: it stands
    /// for the pass's plan step when no wake-up came after that (see [`Ahead::plan_for`]).
    plan: Option<(Plan, Instant)>,
    /// When the last wake-up of the quiet period came (`None` until the period ends).
    last_wake: Option<Instant>,
}

impl Ahead {
    /// The plan made ahead, if it is the plan the pass would make now: nothing that wakes
    /// the writer came after its inputs were taken. The changes that wake it (a PortRule's
    /// spec, number, pause or deletion, a VmNetwork's address or pause, the router) do so
    /// after they are in the caches and the allocators, so a wake-up before the plan began
    /// is in it, and one after it makes the pass plan again. What wakes nobody (an address
    /// released as its VmNetwork goes, while its own PortRules are deleted and wake the
    /// writer) waits for the next pass either way; planning ahead only moves the instant it
    /// is read by less than one debounce period.
    fn plan_for(&mut self) -> Option<Plan> {
        let (plan, began) = self.plan.take()?;
        (self.last_wake? < began).then_some(plan)
    }
}

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The router's API.
    #[error("{0}")]
    Vyos(VyosError),
    /// Reading the API key.
    #[error("reading the API key: {0}")]
    Kube(kube::Error),
    /// The Secret lacks the key.
    #[error("{0}")]
    Secret(String),
    /// The Secret is in a namespace the operator may not read.
    #[error("{0}")]
    SecretElsewhere(String),
    /// A write got no answer in time; the router was read again.
    #[error("{0}")]
    Unconfirmed(String),
}

/// Reason, message, and whether only a person can fix it.
pub fn describe(e: &PassError) -> (Reason, String, bool) {
    match e {
        PassError::Vyos(v) => {
            let reason = Reason::parse(v.category()).unwrap_or(Reason::RouterError);
            let stalled = matches!(
                reason,
                Reason::AuthFailed | Reason::TLSError | Reason::InvalidConfig
            );
            let hint = match reason {
                Reason::AuthFailed => {
                    "; check the key in spec.credentialsSecretRef against `service https api keys` on the router"
                }
                Reason::TLSError => {
                    "; set spec.tls.caBundle to the router's CA (or its self-signed certificate)"
                }
                Reason::RouterUnreachable => "; retrying with backoff",
                _ => "",
            };
            (reason, format!("{v}{hint}"), stalled)
        }
        PassError::Kube(k) => (
            Reason::SecretUnreadable,
            format!("reading the API key Secret: {k}"),
            false,
        ),
        PassError::Secret(m) => (Reason::SecretMissing, m.clone(), true),
        PassError::SecretElsewhere(m) => (Reason::SecretNamespaceNotAllowed, m.clone(), true),
        PassError::Unconfirmed(m) => (Reason::CommitUnconfirmed, m.clone(), false),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_parse_like_the_crd_allows() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("3d"), None);
    }

    #[tokio::test]
    async fn a_plan_made_ahead_stands_only_when_no_wake_up_came_after_it_began() {
        let began = Instant::now();
        let ahead = |last_wake| Ahead {
            read: Err(PassError::Unconfirmed(String::new())),
            at: began,
            router_version: None,
            plan: Some((Plan::default(), began)),
            last_wake,
        };
        // The quiet period's last wake-up came before the plan began: the plan stands.
        assert!(
            ahead(Some(began - Duration::from_millis(1)))
                .plan_for()
                .is_some()
        );
        // Before the quiet period ends, nothing stands.
        assert!(ahead(None).plan_for().is_none());
        // One came after it began: the pass plans again.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(Instant::now()).unwrap();
            tx
        });
        let arrivals = std::sync::Mutex::new(began);
        let last = quiet(
            &mut rx,
            Duration::from_millis(100),
            Instant::now(),
            &arrivals,
        )
        .await
        .unwrap();
        assert!(last > began);
        // The read made meanwhile sees the arrival too (and makes no plan ahead).
        assert_eq!(*arrivals.lock().unwrap(), last);
        assert!(ahead(Some(last)).plan_for().is_none());
        // A closed channel stops the writer.
        drop(sender.await.unwrap());
        assert_eq!(
            quiet(
                &mut rx,
                Duration::from_millis(10),
                Instant::now(),
                &arrivals
            )
            .await,
            None
        );
    }

    #[tokio::test]
    async fn the_quiet_period_counts_from_when_the_change_was_made() {
        let debounce = Duration::from_millis(1000);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let arrivals = std::sync::Mutex::new(Instant::now());
        // A wake-up for a change made 900 ms ago (a VmNetwork edit whose PortRule came
        // later) waits out the rest of the period, not a whole one.
        let start = Instant::now();
        quiet(
            &mut rx,
            debounce,
            start - Duration::from_millis(900),
            &arrivals,
        )
        .await
        .unwrap();
        assert!(
            start.elapsed() < Duration::from_millis(700),
            "{:?}",
            start.elapsed()
        );
        // A later change within the period moves its end, counted from that change...
        let start = Instant::now();
        tx.send(start - Duration::from_millis(400)).unwrap();
        let last = quiet(
            &mut rx,
            debounce,
            start - Duration::from_millis(950),
            &arrivals,
        )
        .await
        .unwrap();
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(590) && waited < Duration::from_millis(900),
            "{waited:?}"
        );
        // ...and the wait reports when that wake-up arrived, not when its change was made.
        assert!(last >= start);
        // A cause in the future (a clock read late) counts as now.
        let start = Instant::now();
        quiet(
            &mut rx,
            Duration::from_millis(50),
            start + Duration::from_secs(60),
            &arrivals,
        )
        .await
        .unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        drop(tx);
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
