//! VyosRouter: one writer task per router, started on first sight and stopped when the
//! router goes. A change of the router or of its Secret wakes the writer.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use serde_json::json;
use vmnet_api::{FINALIZER, VyosRouter};

use vmnet_plan::conditions::{Reason, State, conditions, same};

use crate::context::WriterSlot;
use crate::context::{Context, lock};
use crate::controller::Error;
use crate::writer::{RECONCILE_REQUESTED_AT, WriterHandle};
use vmnet_plan::plan::is_paused;

/// Reconciles one VyosRouter. Deleting a router waits (finalizer) until no PortRule uses it,
/// so the rules leave the router before the operator forgets how to reach it.
pub async fn reconcile(router: Arc<VyosRouter>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<VyosRouter> = Api::all(ctx.client.clone());
    let router = crate::controller::with_finalizer(&api, router).await?;
    let result = finalizer(&api, FINALIZER, router, |event| async {
        match event {
            Finalizer::Apply(r) => apply(&r, &ctx).await,
            Finalizer::Cleanup(r) => cleanup(&r, &ctx).await,
        }
    })
    .await;
    ctx.metrics.reconciled("VyosRouter", result.is_ok());
    crate::controller::settle(result)
}

async fn cleanup(router: &VyosRouter, ctx: &Context) -> Result<Action, Error> {
    let name = router.metadata.name.clone().unwrap_or_default();
    let users: Vec<String> = ctx
        .stores
        .portrules
        .state()
        .iter()
        .filter(|r| r.spec.router == name)
        .map(|r| {
            format!(
                "{}/{}",
                r.metadata.namespace.as_deref().unwrap_or_default(),
                r.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect();
    if users.is_empty() {
        lock(&ctx.writers).remove(&name);
        lock(&ctx.alloc).rules.remove(&name);
        return Ok(Action::await_change());
    }
    ctx.nudge(&name);
    let shown: Vec<&str> = users.iter().take(5).map(String::as_str).collect();
    let more = if users.len() > 5 {
        format!(" and {} more", users.len() - 5)
    } else {
        String::new()
    };
    let msg = format!(
        "deleting: waiting for {} PortRule(s) that use this router to be deleted first ({}{more}); their rules leave the router as they go",
        users.len(),
        shown.join(", ")
    );
    let g = router.metadata.generation;
    let conds = router
        .status
        .as_ref()
        .and_then(|s| s.common.conditions.as_deref());
    if !same(conds, State::Reconciling, Reason::Deleting, &msg, g) {
        let api: Api<VyosRouter> = Api::all(ctx.client.clone());
        let body = json!({ "status": { "conditions": conditions(conds, State::Reconciling, Reason::Deleting, &msg, g) } });
        let _ = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(body))
            .await;
    }
    Err(Error::Waiting(msg))
}

async fn apply(router: &Arc<VyosRouter>, ctx: &Arc<Context>) -> Result<Action, Error> {
    let name = router.metadata.name.clone().unwrap_or_default();
    // Creates the rule-number allocator (from existing PortRule statuses) and follows a
    // grown ruleRange.
    if let Err(e) = ctx.with_rule_numbers(router, |_| ()) {
        tracing::warn!(router = %name, "rule numbers: {e}");
    }
    if router
        .spec
        .tls
        .as_ref()
        .and_then(|t| t.insecure_skip_verify)
        == Some(true)
    {
        tracing::warn!(router = %name, "TLS verification is OFF for this router (spec.tls.insecureSkipVerify)");
    }
    let generation = router.metadata.generation;
    let annotations = router.metadata.annotations.as_ref();
    // A pass at once on a new reconcile request or a pause toggled, as on a spec change.
    let requested = annotations
        .and_then(|a| a.get(RECONCILE_REQUESTED_AT))
        .map(|v| format!("{v}|paused={}", is_paused(annotations)))
        .or_else(|| Some(format!("|paused={}", is_paused(annotations))));
    {
        let mut writers = lock(&ctx.writers);
        match writers.get_mut(&name) {
            // A spec change: a pass now. Status-only updates (each pass writes one) are not.
            Some(w) if w.generation != generation || w.requested != requested => {
                w.generation = generation;
                w.requested = requested;
                w.writer.wake();
            }
            Some(_) => {}
            None => {
                let writer = WriterHandle::spawn(ctx.clone(), name.clone());
                writers.insert(
                    name,
                    WriterSlot {
                        writer: Box::new(writer),
                        generation,
                        requested,
                    },
                );
            }
        }
    }
    mark_in_flight(router, ctx).await?;
    Ok(Action::requeue(Duration::from_secs(3600)))
}

/// A new generation is in flight from the moment it is seen, until the writer's next pass
/// says how it went (Ready or not, for that generation).
async fn mark_in_flight(router: &VyosRouter, ctx: &Context) -> Result<(), Error> {
    let status = router.status.as_ref();
    let g = router.metadata.generation;
    if status.and_then(|s| s.common.observed_generation) == g {
        return Ok(());
    }
    let name = router.metadata.name.clone().unwrap_or_default();
    let msg = format!(
        "generation {} is not synced to the router yet",
        g.unwrap_or_default()
    );
    let conds = status.and_then(|s| s.common.conditions.as_deref());
    let patch = json!({
        "metadata": { "resourceVersion": router.metadata.resource_version },
        "status": {
            "observedGeneration": g,
            "conditions": conditions(conds, State::Reconciling, Reason::Programming, &msg, g),
        },
    });
    let api: Api<VyosRouter> = Api::all(ctx.client.clone());
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        // 409: the writer wrote meanwhile, which is newer than this.
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Stops writers of routers that no longer exist (a deleted object is not reconciled).
pub fn prune_writers(ctx: &Context) {
    let alive: std::collections::HashSet<String> = ctx
        .stores
        .routers
        .state()
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    lock(&ctx.writers).retain(|name, _| alive.contains(name));
}
