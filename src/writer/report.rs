//! The report step of a pass: PortRule and VyosRouter statuses, Events, metrics, the audit
//! trail, and the finalizers of deleted PortRules whose rules have left the router. Writes
//! to Kubernetes only; never to the router.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use vmnet_api::{LastChange, PortRule, VyosRouter, VyosRouterStatus};
use vmnet_plan::conditions::{Reason, State, conditions, same};
use vmnet_plan::desired::Key;
use vmnet_plan::plan::{Action, Plan};
use vmnet_plan::render::{owner_of, rule_hash};

use super::apply::Applied;
use crate::context::{Context, drop_finalizer, release_number};

/// Who reports: the shared context and the router's name.
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)]
pub struct Reporter<'a> {
    /// The shared context.
    pub ctx: &'a Context,
    /// The router.
    pub router: &'a str,
}

/// What the pass did, for the router's status.
#[derive(Debug)]
pub struct Outcome<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// What the apply step did (`None`: the router is paused and nothing was sent).
    pub applied: Option<&'a Applied>,
    /// How many owned rules the observe step found.
    pub observed_owned: usize,
    /// The router's version.
    pub version: Option<String>,
    /// The `vmnet.dev/reconcile-requested-at` value this pass answers.
    pub requested: Option<String>,
    /// How long the apply step took.
    pub took: Duration,
}

impl Reporter<'_> {
    /// The cached PortRule `key` (a map lookup: called for every changed rule).
    fn find(&self, key: &Key) -> Option<Arc<PortRule>> {
        self.ctx
            .stores
            .portrules
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
    }

    /// Everything after a pass that reached the router.
    pub async fn pass(&self, router: &VyosRouter, portrules: &[Arc<PortRule>], out: Outcome<'_>) {
        let plan = out.plan;
        let paused = out.applied.is_none();
        let failed = out.applied.map(|a| a.failed.clone()).unwrap_or_default();
        // The Events and the statuses go side by side: at thousands of changed rules the
        // Events one after the other held the next pass back for minutes.
        let events = async {
            let Some(applied) = out.applied else {
                return;
            };
            self.audit(router, plan, applied, out.took).await;
            let repaired: Vec<(u32, &String)> = plan
                .drifted
                .iter()
                .filter(|(n, _)| !failed.contains_key(n))
                .map(|(n, d)| (*n, d))
                .collect();
            for (n, what) in repaired {
                self.ctx.metrics.drift_repaired(self.router);
                self.drift_repaired(n, what, plan).await;
            }
        };
        futures::join!(
            events,
            self.portrule_statuses(portrules, plan, &failed, paused)
        );
        if let Some(applied) = out.applied {
            self.release_finalizers(portrules, &applied.after).await;
        }
        self.router_status(router, &out).await;
    }

    /// One structured line per change, and a Normal Event on each PortRule whose rule was
    /// added, changed, removed or orphaned; past `RULE_EVENTS_UP_TO` such rules in one pass,
    /// one Normal Event on the VyosRouter instead. No secret is in any: the key never
    /// leaves the client.
    async fn audit(&self, router: &VyosRouter, plan: &Plan, applied: &Applied, took: Duration) {
        if applied.requests == 0 {
            return;
        }
        let changed: Vec<String> = plan
            .rules
            .iter()
            .filter(|r| r.ops > 0)
            .filter_map(|r| {
                let n = r.number?;
                let ok = !applied.failed.contains_key(&n);
                Some(format!(
                    "{n}:{}:{}{}",
                    r.owner.as_deref().unwrap_or("-"),
                    verb(&r.action),
                    if ok { "" } else { ":refused" }
                ))
            })
            .collect();
        tracing::info!(
            router = %self.router,
            requests = applied.requests,
            ops = applied.ops,
            rules = %changed.join(","),
            outcome = outcome(applied),
            duration_ms = took.as_millis() as u64,
            "router changed"
        );
        let changes = rule_changes(plan, applied);
        if changes.len() > RULE_EVENTS_UP_TO {
            // A pass of thousands of rules (a first sync, a mass delete): one Event on the
            // router says what it did. An Event per rule there was a quarter of the
            // apiserver's writes in a cold converge of 10,000 rules, and a person reads
            // each rule's outcome in its status (and every rule in the log line above).
            let note = summary_note(&changes, self.router, applied.ops);
            self.ctx
                .event(
                    router.object_ref(&()),
                    false,
                    "RulesProgrammed",
                    "Program",
                    note,
                )
                .await;
            return;
        }
        let mut events = Vec::new();
        for c in changes {
            let Some((ns, name)) = c.owner.split_once('/') else {
                continue;
            };
            let key = Key {
                namespace: ns.to_owned(),
                name: name.to_owned(),
            };
            let Some(pr) = self.find(&key) else {
                continue;
            };
            let note = format!(
                "rule {} {} on router {} ({} ops)",
                c.number,
                c.what(),
                self.router,
                c.ops
            );
            events.push((pr.object_ref(&()), c.reason(), note));
        }
        // Eight at a time, as the statuses are written.
        futures::stream::iter(events)
            .for_each_concurrent(8, |(obj, reason, note)| {
                self.ctx.event(obj, false, reason, "Program", note)
            })
            .await;
    }

    async fn drift_repaired(&self, number: u32, what: &str, plan: &Plan) {
        let Some(entry) = plan.desired.rules.get(&number) else {
            return;
        };
        tracing::warn!(router = %self.router, rule = number, "drift repaired: rule {what}");
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
                    self.router
                ),
            )
            .await;
    }

    async fn portrule_statuses(
        &self,
        portrules: &[Arc<PortRule>],
        plan: &Plan,
        failed: &BTreeMap<u32, String>,
        paused: bool,
    ) {
        let want = &plan.desired;
        let mut patches = Vec::new();
        let by_key: BTreeMap<&Key, u32> = want.rules.iter().map(|(n, e)| (&e.key, *n)).collect();
        let held: std::collections::BTreeSet<u32> = plan
            .rules
            .iter()
            .filter(|r| matches!(r.action, Action::Held))
            .filter_map(|r| r.number)
            .collect();
        for pr in portrules {
            if pr.spec.router != self.router || pr.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let key = Key::of(pr);
            let is_paused = vmnet_plan::plan::is_paused(pr.metadata.annotations.as_ref());
            let paused_message = |n: u32| {
                format!(
                    "paused (annotation {}): rule {n} on router {} is left as it is; \
                     remove the annotation to update it",
                    vmnet_plan::plan::PAUSED,
                    self.router
                )
            };
            let router_paused_message = |n: u32| {
                format!(
                    "router {} is paused (annotation {}): rule {n} waits",
                    self.router,
                    vmnet_plan::plan::PAUSED
                )
            };
            // (state, reason, message, the hash to record; `Some(None)` clears it)
            let (state, reason, message, hash) = if let Some(r) = want.refused.get(&key) {
                (State::Stalled, r.reason, r.message.clone(), None)
            } else if let Some(e) = want.expired.get(&key) {
                let n = e.number;
                match failed.get(&n) {
                    Some(text) => (
                        State::Stalled,
                        Reason::CommitFailed,
                        format!(
                            "router {} refused removing expired rule {n}: {text}",
                            self.router
                        ),
                        None,
                    ),
                    None if held.contains(&n) => {
                        (State::Reconciling, Reason::Paused, paused_message(n), None)
                    }
                    None if paused => (
                        State::Reconciling,
                        Reason::Paused,
                        router_paused_message(n),
                        None,
                    ),
                    // Off the router: the hash of what was programmed goes, so the rule's
                    // return is an addition, not a repair of drift.
                    None => (State::Reconciling, Reason::Expired, e.message(), Some(None)),
                }
            } else if let Some(n) = by_key.get(&key) {
                let entry = &want.rules[n];
                match failed.get(n) {
                    Some(text) => (
                        State::Stalled,
                        Reason::CommitFailed,
                        format!("router {} refused rule {n}: {text}", self.router),
                        None,
                    ),
                    None if held.contains(n) || (is_paused && !paused) => {
                        (State::Reconciling, Reason::Paused, paused_message(*n), None)
                    }
                    None if paused => (
                        State::Reconciling,
                        Reason::Paused,
                        router_paused_message(*n),
                        None,
                    ),
                    None => (
                        State::Ready,
                        Reason::Programmed,
                        format!("rule {n} on router {}", self.router),
                        Some(Some(rule_hash(
                            &entry.rule,
                            entry.group.as_ref(),
                            entry.hairpin.as_deref(),
                        ))),
                    ),
                }
            } else {
                continue;
            };
            let status = pr.status.clone().unwrap_or_default();
            let conds = status.common.conditions.as_deref();
            let generation = pr.metadata.generation;
            if same(conds, state, reason, &message, generation)
                && hash.as_ref().is_none_or(|h| status.applied_hash == *h)
            {
                continue;
            }
            let mut body = json!({
                "observedGeneration": generation,
                "conditions": conditions(conds, state, reason, &message, generation),
            });
            if let Some(h) = hash {
                // A merge patch: null removes the field.
                body["appliedHash"] = json!(h);
            }
            patches.push((key, body));
        }
        self.patch_statuses(patches).await;
    }

    /// Writes PortRule statuses, eight at a time. A failed write is logged at warn and
    /// counted: the next pass writes it again.
    async fn patch_statuses(&self, patches: Vec<(Key, serde_json::Value)>) {
        let client = self.ctx.client.clone();
        let metrics = self.ctx.metrics.clone();
        futures::stream::iter(patches)
            .for_each_concurrent(8, |(key, body)| {
                let api: Api<PortRule> = Api::namespaced(client.clone(), &key.namespace);
                let metrics = metrics.clone();
                async move {
                    let patch = Patch::Merge(json!({ "status": body }));
                    if let Err(e) = api
                        .patch_status(&key.name, &PatchParams::default(), &patch)
                        .await
                    {
                        metrics.status_write_failed("PortRule");
                        tracing::warn!(portrule = %key, error = %e, "status not written");
                    }
                }
            })
            .await;
    }

    /// Every PortRule of this router that is being deleted and whose rule is no longer the
    /// operator's on the router (removed, or orphaned) loses the finalizer, eight at a time
    /// (deleting a thousand rules is a few router requests; their finalizers should not
    /// take a thousand round trips one after the other).
    async fn release_finalizers(
        &self,
        portrules: &[Arc<PortRule>],
        after: &BTreeMap<u32, Option<String>>,
    ) {
        // Looked up once per deleted PortRule (10,000 deleted at once against 10,000 rules
        // on the router was 100 million comparisons).
        let on_router: std::collections::HashSet<(&str, &str)> = after
            .values()
            .filter_map(|d| owner_of(d.as_deref()))
            .collect();
        let gone: Vec<&Arc<PortRule>> = portrules
            .iter()
            .filter(|pr| pr.spec.router == self.router && pr.metadata.deletion_timestamp.is_some())
            .filter(|pr| {
                let ns = pr.metadata.namespace.as_deref().unwrap_or_default();
                let name = pr.metadata.name.as_deref().unwrap_or_default();
                !on_router.contains(&(ns, name))
            })
            .collect();
        for pr in &gone {
            release_number(self.ctx, pr);
        }
        futures::stream::iter(gone)
            .for_each_concurrent(8, |pr| drop_finalizer(self.ctx, pr))
            .await;
    }

    async fn router_status(&self, router: &VyosRouter, out: &Outcome<'_>) {
        let plan = out.plan;
        let summary = plan.summary();
        let declared = plan.desired.rules.len();
        let refused = plan.desired.refused.len();
        let expired = plan.desired.expired.len();
        let owned = out.applied.map_or(out.observed_owned, |a| a.after.len());
        let (state, reason, message) = match out.applied {
            None => (
                State::Reconciling,
                Reason::Paused,
                format!(
                    "paused (annotation {}): no writes to the router; {} ops pending, {} rules \
                     drifted; remove the annotation to resume",
                    vmnet_plan::plan::PAUSED,
                    summary.ops,
                    summary.drifted
                ),
            ),
            Some(_) => {
                let mut text = format!("{declared} rules programmed");
                if expired > 0 {
                    text.push_str(&format!(", {expired} expired"));
                }
                if refused > 0 {
                    text.push_str(&format!(
                        ", {refused} refused (see the PortRules' conditions)"
                    ));
                }
                (State::Ready, Reason::Synced, text)
            }
        };
        let message = match vmnet_plan::commit::commit_confirm_note(
            out.version.as_deref(),
            router.spec.commit_confirm_minutes.is_some(),
        ) {
            Some(note) if state == State::Ready => format!("{message}; {note}"),
            _ => message,
        };
        // A router that does not save to boot loses the rules when it reboots, until the
        // probe sees the reboot and the writer puts them back: say so where people look.
        let message = if state == State::Ready && router.spec.save_config != Some(true) {
            format!(
                "{message}; not saved to boot (spec.saveConfig is off): a reboot drops them until the health probe sees it and they are re-written"
            )
        } else {
            message
        };
        let previous = router
            .status
            .as_ref()
            .and_then(|s| s.common.conditions.as_deref());
        let last_change = match out.applied {
            Some(a) if a.requests > 0 => Some(LastChange {
                time: Time(k8s_openapi::jiff::Timestamp::now()),
                ops: a.ops as i64,
                requests: a.requests as i64,
                duration_ms: out.took.as_millis() as i64,
                rules: plan.rules.iter().filter(|r| r.ops > 0).count() as i64,
                outcome: outcome(a).to_owned(),
            }),
            _ => router.status.as_ref().and_then(|s| s.last_change.clone()),
        };
        let status = VyosRouterStatus {
            common: vmnet_api::CommonStatus {
                observed_generation: router.metadata.generation,
                conditions: Some(conditions(
                    previous,
                    state,
                    reason,
                    &message,
                    router.metadata.generation,
                )),
            },
            reachable: Some(true),
            // The health probe's.
            boot_time: router.status.as_ref().and_then(|s| s.boot_time.clone()),
            vyos_version: out.version.clone(),
            // Moves when a pass changed the router (or on the first pass): a pass that
            // finds everything in place leaves the status as it is, so steady state costs
            // no writes; the drift checks themselves show in vmnet_router_syncs_total.
            last_sync_time: match (
                out.applied,
                router
                    .status
                    .as_ref()
                    .and_then(|s| s.last_sync_time.clone()),
            ) {
                (Some(a), last) if a.requests > 0 || last.is_none() => {
                    Some(Time(k8s_openapi::jiff::Timestamp::now()))
                }
                (_, last) => last,
            },
            owned_rules: Some(owned as i64),
            declared_rules: Some(declared as i64),
            drifted_rules: Some(summary.drifted as i64),
            sync_progress: None,
            pending_ops: Some(match out.applied {
                None => summary.ops as i64,
                Some(a) => a
                    .failed
                    .keys()
                    .map(|n| plan.ops.get(n).map_or(0, Vec::len) as i64)
                    .sum(),
            }),
            last_handled_reconcile_at: out.requested.clone().or_else(|| {
                router
                    .status
                    .as_ref()
                    .and_then(|s| s.last_handled_reconcile_at.clone())
            }),
            last_change,
            // The backup task's, and the member passes' and probes'.
            backup: router.status.as_ref().and_then(|s| s.backup.clone()),
            members: router.status.as_ref().and_then(|s| s.members.clone()),
            firewall: router.status.as_ref().and_then(|s| s.firewall.clone()),
        };
        self.ctx
            .metrics
            .router_rules(self.router, owned as i64, declared as i64, refused as i64);
        // A pass that found everything as it was writes nothing: steady state costs the
        // apiserver no writes.
        if router.status.as_ref() == Some(&status) {
            return;
        }
        let mut body = json!(status);
        // A finished pass clears the progress of a long one.
        body["syncProgress"] = serde_json::Value::Null;
        // The probe's and the backups' fields are theirs to write: a copy from a cache
        // that has not caught up must not overwrite them.
        if let Some(o) = body.as_object_mut() {
            o.remove("bootTime");
            o.remove("backup");
            o.remove("members");
            o.remove("firewall");
        }
        self.patch_router_status(body).await;
    }

    /// Writes the router's status (merge patch). A failed write is logged at warn and
    /// counted.
    pub async fn patch_router_status(&self, status: serde_json::Value) {
        let api: Api<VyosRouter> = Api::all(self.ctx.client.clone());
        let patch = Patch::Merge(json!({ "status": status }));
        if let Err(e) = api
            .patch_status(self.router, &PatchParams::default(), &patch)
            .await
        {
            self.ctx.metrics.status_write_failed("VyosRouter");
            tracing::warn!(router = %self.router, error = %e, "router status not written");
        }
    }

    /// A pass that failed: the router's condition, and each PortRule's unless it is
    /// refused for a reason of its own.
    pub async fn failure(
        &self,
        router: &VyosRouter,
        portrules: &[Arc<PortRule>],
        reason: Reason,
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
        let reachable = reason != Reason::RouterUnreachable;
        self.patch_router_status(json!({
            "observedGeneration": generation,
            "reachable": reachable,
            "conditions": conds,
        }))
        .await;
        let text = format!("router {}: {message}", self.router);
        let mut patches = Vec::new();
        for pr in portrules {
            if pr.spec.router != self.router {
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
                Key::of(pr),
                json!({
                    "observedGeneration": g,
                    "conditions": conditions(conds, state, reason, &text, g),
                }),
            ));
        }
        self.patch_statuses(patches).await;
    }
}

/// Past this many rules changed in one pass, the pass publishes one Event on the VyosRouter
/// instead of one on each PortRule.
pub const RULE_EVENTS_UP_TO: usize = 50;

/// A rule that a pass changed on the router, for its Event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RuleChange<'a> {
    number: u32,
    /// `namespace/name` of the PortRule.
    owner: &'a str,
    action: &'a Action,
    ops: usize,
}

impl RuleChange<'_> {
    /// The Event's reason ([`rule_changes`] keeps only actions that have one).
    fn reason(&self) -> &'static str {
        event_of(self.action).unwrap_or_default().0
    }

    /// The word that counts it in a pass's summary.
    fn word(&self) -> &'static str {
        event_of(self.action).unwrap_or_default().1
    }

    /// What happened to the rule, for its own Event (made only for small passes).
    fn what(&self) -> String {
        match self.action {
            Action::Orphan => "left in place and no longer managed".to_owned(),
            Action::Expired { at } => format!("removed (expired at {at})"),
            _ => self.word().to_owned(),
        }
    }
}

/// The Event reason and summary word of a change to a rule; `None` for what changes
/// nothing on the router (refused, held).
fn event_of(action: &Action) -> Option<(&'static str, &'static str)> {
    match action {
        Action::Add => Some(("RuleAdded", "added")),
        Action::Change { .. } => Some(("RuleChanged", "changed")),
        Action::Remove => Some(("RuleRemoved", "removed")),
        Action::Orphan => Some(("RuleOrphaned", "orphaned")),
        Action::Expired { .. } => Some(("RuleExpired", "expired")),
        Action::Refused { .. } | Action::Held => None,
    }
}

/// The rules of `plan` that the pass changed on the router (ops sent, not refused) and that
/// belong to a PortRule, in rule-number order.
fn rule_changes<'a>(plan: &'a Plan, applied: &Applied) -> Vec<RuleChange<'a>> {
    plan.rules
        .iter()
        .filter_map(|r| {
            let (n, owner) = (r.number?, r.owner.as_deref()?);
            if r.ops == 0 || applied.failed.contains_key(&n) {
                return None;
            }
            event_of(&r.action)?;
            Some(RuleChange {
                number: n,
                owner,
                action: &r.action,
                ops: r.ops,
            })
        })
        .collect()
}

/// The router's Event for a pass of many rules: how many of each kind, and where each
/// rule's own outcome is to be read.
fn summary_note(changes: &[RuleChange<'_>], router: &str, ops: usize) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in changes {
        *counts.entry(c.word()).or_default() += 1;
    }
    let kinds: Vec<String> = ["added", "changed", "removed", "orphaned", "expired"]
        .iter()
        .filter_map(|w| counts.get(w).map(|n| format!("{n} {w}")))
        .collect();
    let first = changes.iter().map(|c| c.number).min().unwrap_or_default();
    let last = changes.iter().map(|c| c.number).max().unwrap_or_default();
    format!(
        "{} rules changed on router {router} ({}; rules {first}-{last}, {ops} ops); one Event \
         for the pass instead of one per PortRule (more than {RULE_EVENTS_UP_TO}): each \
         PortRule's status says its rule",
        changes.len(),
        kinds.join(", "),
    )
}

fn verb(a: &Action) -> &'static str {
    match a {
        Action::Add => "add",
        Action::Change { .. } => "change",
        Action::Remove => "remove",
        Action::Orphan => "orphan",
        Action::Refused { .. } => "refused",
        Action::Held => "held",
        Action::Expired { .. } => "expire",
    }
}

fn outcome(a: &Applied) -> &'static str {
    if a.failed.is_empty() {
        "Succeeded"
    } else {
        "PartiallyFailed"
    }
}

/// Whether `conds` say Stalled, for generation `g`, for a reason of the rule itself (not
/// one a failed pass spreads over every rule of the router).
fn stalled_on_its_own(conds: Option<&[Condition]>, g: Option<i64>) -> bool {
    conds.into_iter().flatten().any(|c| {
        c.type_ == "Stalled"
            && c.status == "True"
            && c.observed_generation == g
            && Reason::parse(&c.reason).is_none_or(|r| !r.router_wide())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rule(n: u32, owner: Option<&str>, action: Action, ops: usize) -> vmnet_plan::plan::RulePlan {
        vmnet_plan::plan::RulePlan {
            number: Some(n),
            owner: owner.map(str::to_owned),
            action,
            drifted: None,
            ops,
        }
    }

    #[test]
    fn a_pass_names_the_rules_it_changed_and_sums_up_a_large_one() {
        let plan = Plan {
            rules: vec![
                rule(101, Some("lab/a"), Action::Add, 7),
                rule(102, Some("lab/b"), Action::Remove, 1),
                rule(103, Some("lab/c"), Action::Held, 0),
                rule(104, Some("lab/d"), Action::Add, 7),
                rule(105, None, Action::Remove, 1),
                rule(106, Some("lab/f"), Action::Add, 0),
            ],
            ..Plan::default()
        };
        let mut applied = Applied::default();
        applied.failed.insert(104, "refused".into());
        let changes = rule_changes(&plan, &applied);
        let got: Vec<(u32, &str, &str)> = changes
            .iter()
            .map(|c| (c.number, c.owner, c.reason()))
            .collect();
        // Held, refused by the router, foreign and untouched rules get no Event.
        assert_eq!(
            got,
            [(101, "lab/a", "RuleAdded"), (102, "lab/b", "RuleRemoved")]
        );

        let many: Vec<RuleChange<'_>> = (0..=RULE_EVENTS_UP_TO as u32)
            .map(|i| {
                let removed = i % 3 == 0;
                RuleChange {
                    number: 2000 - i,
                    owner: "lab/x",
                    action: if removed {
                        &Action::Remove
                    } else {
                        &Action::Add
                    },
                    ops: 1,
                }
            })
            .collect();
        let note = summary_note(&many, "edge", 99);
        assert!(
            note.starts_with(&format!(
                "{} rules changed on router edge (34 added, 17 removed; rules 1950-2000, 99 ops)",
                RULE_EVENTS_UP_TO + 1
            )),
            "{note}"
        );
    }

    #[test]
    fn a_rules_own_refusal_is_not_hidden_by_the_routers_trouble() {
        let own = conditions(
            None,
            State::Stalled,
            Reason::NamespaceNotAllowed,
            "no",
            Some(2),
        );
        assert!(stalled_on_its_own(Some(&own), Some(2)));
        assert!(
            !stalled_on_its_own(Some(&own), Some(3)),
            "an older generation's refusal"
        );
        let router = conditions(None, State::Stalled, Reason::AuthFailed, "key", Some(2));
        assert!(!stalled_on_its_own(Some(&router), Some(2)));
        let ready = conditions(None, State::Ready, Reason::Programmed, "", Some(2));
        assert!(!stalled_on_its_own(Some(&ready), Some(2)));
        assert!(!stalled_on_its_own(None, Some(2)));
    }
}
