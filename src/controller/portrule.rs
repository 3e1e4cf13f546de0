//! PortRule: a rule number recorded in status before anything is programmed, then the
//! router's writer does the rest. Deletion waits until the rule has left the router.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use serde_json::json;
use vmnet_api::{FINALIZER, PortRule, VyosRouter};

use crate::context::{Context, release_number, rule_claimant};
use crate::controller::Error;
use vmnet_plan::conditions::{Reason, State, conditions, same};

/// Reconciles one PortRule.
pub async fn reconcile(pr: Arc<PortRule>, ctx: Arc<Context>) -> Result<Action, Error> {
    if ctx.settings.selector.is_some() && router_of(&ctx, &pr).is_none() {
        // Another deployment's router (this one watches a labelled subset): not ours.
        return Ok(Action::await_change());
    }
    let ns = pr.metadata.namespace.clone().unwrap_or_default();
    let api: Api<PortRule> = Api::namespaced(ctx.client.clone(), &ns);
    let pr = crate::controller::with_finalizer(&api, pr).await?;
    let result = finalizer(&api, FINALIZER, pr, |event| async {
        match event {
            Finalizer::Apply(pr) => apply(&pr, &ctx).await,
            Finalizer::Cleanup(pr) => cleanup(&pr, &ctx).await,
        }
    })
    .await;
    ctx.metrics.reconciled("PortRule", result.is_ok());
    crate::controller::settle(result)
}

fn router_of(ctx: &Context, pr: &PortRule) -> Option<Arc<VyosRouter>> {
    ctx.stores
        .routers
        .state()
        .into_iter()
        .find(|r| r.metadata.name.as_deref() == Some(pr.spec.router.as_str()))
}

async fn apply(pr: &PortRule, ctx: &Context) -> Result<Action, Error> {
    let ns = pr.metadata.namespace.clone().unwrap_or_default();
    let name = pr.metadata.name.clone().unwrap_or_default();
    let generation = pr.metadata.generation;
    let status = pr.status.clone().unwrap_or_default();
    let Some(router) = router_of(ctx, pr) else {
        let msg = format!(
            "VyosRouter {:?} does not exist; create it or fix spec.router",
            pr.spec.router
        );
        set_condition(ctx, pr, State::Stalled, Reason::RouterNotFound, &msg).await?;
        return Ok(Action::requeue(Duration::from_secs(300)));
    };
    let external = external_text(pr);
    let internal = format!(
        "{}:{}",
        pr.spec.internal_address,
        pr.spec
            .internal_port
            .or(pr.spec.external_port)
            .map_or_else(|| "*".to_owned(), |p| p.to_string())
    );
    let first = status.rule_number.is_none();
    // A new generation is in flight from the moment it is seen: `kubectl get`, `kubectl
    // wait` and kstatus all say so until the writer has programmed it (the writer, which
    // alone knows, then writes Ready or Stalled for that generation).
    let lagging = status.common.observed_generation != generation;
    let mut body = serde_json::Map::new();
    if first
        || status.external.as_deref() != Some(external.as_str())
        || status.internal.as_deref() != Some(internal.as_str())
    {
        let claimant = rule_claimant(&ns, &name);
        let number = match status.rule_number {
            Some(n) => Some(n),
            None => match ctx.with_rule_numbers(&router, |r| r.allocate(&claimant)) {
                Ok(Ok(n)) => Some(n),
                Ok(Err(e)) | Err(e) => {
                    set_condition(ctx, pr, State::Stalled, Reason::from(&e), &e.to_string())
                        .await?;
                    return Ok(Action::requeue(Duration::from_secs(300)));
                }
            },
        };
        body.insert("ruleNumber".into(), json!(number));
        body.insert("external".into(), json!(external));
        body.insert("internal".into(), json!(internal));
    }
    if first || lagging {
        let (reason, msg) = if first {
            (
                Reason::Allocated,
                format!(
                    "rule number allocated; waiting for router {}",
                    pr.spec.router
                ),
            )
        } else {
            (
                Reason::Programming,
                format!(
                    "generation {} is not on router {} yet",
                    generation.unwrap_or_default(),
                    pr.spec.router
                ),
            )
        };
        body.insert("observedGeneration".into(), json!(generation));
        body.insert(
            "conditions".into(),
            json!(conditions(
                status.common.conditions.as_deref(),
                State::Reconciling,
                reason,
                &msg,
                generation
            )),
        );
    }
    if !body.is_empty() {
        let api: Api<PortRule> = Api::namespaced(ctx.client.clone(), &ns);
        // A compare-and-swap: had the writer already written this generation's outcome,
        // the cache was stale and this would overwrite it.
        let patch = json!({
            "metadata": { "resourceVersion": pr.metadata.resource_version },
            "status": body,
        });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {
                return Err(Error::Stale(format!(
                    "PortRule {ns}/{name} changed meanwhile"
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    // No nudge here: a change of what the writer reads (the spec, and the rule number this
    // patch may set) reaches it through the PortRule watch (`writer::wake`); the conditions
    // written here do not wake it, and nudging from here would turn each router status
    // update into another pass.
    Ok(Action::requeue(Duration::from_secs(3600)))
}

/// A deletion waiting this long, while its router is not Ready, gets a `Deleting`
/// condition naming what it waits for.
const DELETING_SAYS_SO_AFTER_SECONDS: f64 = 10.0;

/// A deletion waiting this long says so whatever the router's state: something other than
/// the router holds it up (a slow apiserver, a deleted writer).
const DELETING_SAYS_SO_ANYWAY_AFTER_SECONDS: f64 = 120.0;

/// Whether a PortRule being deleted for `age` seconds, on a router that is (or is not)
/// Ready, is worth a `Deleting` status write. A person needs it when the deletion is held
/// up; a mass deletion on a healthy router is only slowed by the apiserver, and a status
/// write per rule there would make it slower still (issue 16's delete benchmark: one
/// `Deleting` write per rule doubled the apiserver writes of deleting 2,000 rules).
fn says_deleting(age: f64, router_ready: bool) -> bool {
    age >= DELETING_SAYS_SO_ANYWAY_AFTER_SECONDS
        || (!router_ready && age >= DELETING_SAYS_SO_AFTER_SECONDS)
}

async fn cleanup(pr: &PortRule, ctx: &Context) -> Result<Action, Error> {
    let number = pr.status.as_ref().and_then(|s| s.rule_number);
    if number.is_none() || router_of(ctx, pr).is_none() {
        // Nothing was programmed, or there is no router left to program on.
        release_number(ctx, pr);
        return Ok(Action::await_change());
    }
    ctx.nudge(&pr.spec.router);
    // The writer drops the finalizer once the rule is gone from the router; a deletion that
    // waits longer than a few seconds says what it waits for. One that completes at once
    // (the usual case: one router request for many rules) costs no status write.
    let age = pr
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| k8s_openapi::jiff::Timestamp::now().duration_since(t.0))
        .map_or(0.0, |d| d.as_secs_f64());
    let waiting = format!(
        "deleting: waiting for rule {} to leave router {}",
        number.unwrap_or_default(),
        pr.spec.router
    );
    let status = pr.status.clone().unwrap_or_default();
    let conds = status.common.conditions.as_deref();
    let stuck = conds
        .and_then(|cs| cs.iter().find(|c| c.status == "True"))
        .filter(|c| {
            matches!(
                Reason::parse(&c.reason),
                Some(Reason::RouterUnreachable | Reason::AuthFailed | Reason::TLSError)
            )
        });
    let router_ready = ctx.router(&pr.spec.router).is_some_and(|r| {
        r.status
            .as_ref()
            .and_then(|s| s.common.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    if stuck.is_none()
        && says_deleting(age, router_ready)
        && !same(
            conds,
            State::Reconciling,
            Reason::Deleting,
            &waiting,
            pr.metadata.generation,
        )
    {
        let _ = set_condition(ctx, pr, State::Reconciling, Reason::Deleting, &waiting).await;
    }
    Err(Error::Waiting(waiting))
}

/// `203.0.113.10:30022/tcp` (or the interface), for the status and printer column.
pub fn external_text(pr: &PortRule) -> String {
    let s = &pr.spec;
    let place = s
        .external_address
        .clone()
        .or_else(|| s.inbound_interface.clone())
        .unwrap_or_default();
    let ports = match (s.external_port, s.external_port_end) {
        (Some(p), Some(e)) if e > p => format!(":{p}-{e}"),
        (Some(p), _) => format!(":{p}"),
        (None, _) => String::new(),
    };
    format!("{place}{ports}/{}", s.protocol.as_str())
}

async fn set_condition(
    ctx: &Context,
    pr: &PortRule,
    state: State,
    reason: Reason,
    message: &str,
) -> Result<(), Error> {
    let status = pr.status.clone().unwrap_or_default();
    let g = pr.metadata.generation;
    if same(
        status.common.conditions.as_deref(),
        state,
        reason,
        message,
        g,
    ) {
        return Ok(());
    }
    let api: Api<PortRule> = Api::namespaced(
        ctx.client.clone(),
        pr.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let body = json!({ "status": {
        "observedGeneration": g,
        "conditions": conditions(status.common.conditions.as_deref(), state, reason, message, g),
    }});
    api.patch_status(
        pr.metadata.name.as_deref().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Merge(body),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deletion_says_so_only_when_held_up() {
        // A healthy router: quiet through a slow mass deletion, but not for ever.
        assert!(!says_deleting(1.0, true));
        assert!(!says_deleting(60.0, true));
        assert!(says_deleting(DELETING_SAYS_SO_ANYWAY_AFTER_SECONDS, true));
        // A router that is not Ready: said after a short wait.
        assert!(!says_deleting(1.0, false));
        assert!(says_deleting(DELETING_SAYS_SO_AFTER_SECONDS, false));
    }
}
