//! VyosRouter: one writer task per router, started on first sight and stopped when the
//! router goes. A change of the router or of its Secret wakes the writer.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use vmnet_api::VyosRouter;

use crate::controller::{Context, Error, lock};
use crate::writer::WriterHandle;

/// Reconciles one VyosRouter.
pub async fn reconcile(router: Arc<VyosRouter>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = router.metadata.name.clone().unwrap_or_default();
    if router.metadata.deletion_timestamp.is_some() {
        lock(&ctx.writers).remove(&name);
        return Ok(Action::await_change());
    }
    // Creates the rule-number allocator (from existing PortRule statuses) and follows a
    // grown ruleRange.
    if let Err(e) = ctx.with_rule_numbers(&router, |_| ()) {
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
    let mut writers = lock(&ctx.writers);
    match writers.get_mut(&name) {
        // A spec change: a pass now. Status-only updates (each pass writes one) are not.
        Some(w) if w.generation != generation => {
            w.generation = generation;
            w.nudge();
        }
        Some(_) => {}
        None => {
            let mut w = WriterHandle::spawn(ctx.clone(), name);
            w.generation = generation;
            writers.insert(router.metadata.name.clone().unwrap_or_default(), w);
        }
    }
    drop(writers);
    ctx.metrics.reconciled("VyosRouter", true);
    Ok(Action::requeue(Duration::from_secs(3600)))
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
