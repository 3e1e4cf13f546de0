//! Config backups of one router (`spec.backup`): on its cron schedule, by a task of its own
//! beside the writer and the probe, and before the first request of a pass that writes
//! (`beforeChanges`, called by the writer). Each is stored by [`crate::backup::Backups`];
//! the router's `status.backup`, the metrics and, on failure, a Warning Event say how it
//! went. The config itself is never logged.

use std::sync::Arc;
use std::time::Duration;

use kube::Resource;
use serde_json::json;
use vmnet_api::{BackupFailure, VyosRouter};
use vmnet_plan::backup::{next_run, schedule};
use vyos_client::VyosClient;

use super::observe::{Access, Connection};
use crate::backup::{Backups, Taken};
use crate::context::Context;

/// How often the schedule task looks at the router's spec again while nothing is due.
const RECHECK: Duration = Duration::from_secs(15);

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `spec.backup.schedule`.
    Schedule,
    /// `spec.backup.beforeChanges`.
    BeforeChange,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Schedule => "schedule",
            Reason::BeforeChange => "before-change",
        }
    }
}

/// Runs `name`'s backup schedule until the task is aborted.
pub async fn run(ctx: Arc<Context>, name: String) {
    let mut conn = Connection::default();
    let observer = ctx.metrics.request_observer(&name);
    // The schedule and when it fires next (Unix ms).
    let mut due: Option<(String, i64)> = None;
    loop {
        let now = now_ms();
        let router = ctx.router(&name);
        let wanted = router.as_ref().and_then(|r| {
            let b = r.spec.backup.as_ref()?;
            Some((b.schedule.clone()?, r.clone()))
        });
        let Some((text, router)) = wanted else {
            due = None;
            tokio::time::sleep(RECHECK).await;
            continue;
        };
        let next = match &due {
            Some((t, at)) if *t == text => *at,
            _ => match schedule(&text).map(|c| next_run(&c, now)) {
                Ok(Some(at)) => {
                    due = Some((text.clone(), at));
                    report_next(&ctx, &name, &router, at).await;
                    at
                }
                Ok(None) | Err(_) => {
                    let why = match schedule(&text) {
                        Err(e) => e.to_string(),
                        Ok(_) => format!("spec.backup.schedule {text:?} never fires"),
                    };
                    failed(&ctx, &router, &why).await;
                    due = None;
                    tokio::time::sleep(RECHECK * 4).await;
                    continue;
                }
            },
        };
        if now < next {
            let wait = Duration::from_millis(u64::try_from(next - now).unwrap_or(0));
            tokio::time::sleep(wait.min(RECHECK)).await;
            continue;
        }
        due = None;
        let client = {
            let secret_version = ctx.secret_version(&router);
            let access = Access {
                namespaces: ctx.settings.credentials_namespaces.as_deref(),
                timeout: ctx.settings.router_timeout,
                secret_version: secret_version.as_deref(),
                observer: Some(&observer),
            };
            conn.client(&ctx.client, access, &router).await
        };
        match client {
            Ok(c) => {
                let version = conn.version(&c).await.unwrap_or_default();
                take(&ctx, &router, &c, &version, Reason::Schedule).await;
            }
            Err(e) => {
                let why = format!(
                    "scheduled backup: no client for the router: {}",
                    super::describe(&e).1
                );
                failed(&ctx, &router, &why).await;
            }
        }
    }
}

/// Takes a backup of `router` now and reports it; `true` when one is stored (new or
/// seen again).
pub async fn take(
    ctx: &Context,
    router: &VyosRouter,
    client: &VyosClient,
    version: &str,
    reason: Reason,
) -> bool {
    let name = router.metadata.name.clone().unwrap_or_default();
    let Some(namespace) = ctx.settings.backup_namespace.as_deref() else {
        return false;
    };
    let store = Backups::new(ctx.client.clone(), namespace);
    let retention = router.spec.backup.as_ref().map(|b| &b.retention);
    match store
        .take(client, &name, version, reason.as_str(), retention)
        .await
    {
        Ok(t) => {
            ctx.metrics
                .backup(&name, if t.new { "stored" } else { "unchanged" });
            tracing::info!(
                router = %name,
                backup = %t.backup.name,
                new = t.new,
                bytes = t.backup.size,
                kept = t.kept,
                pruned = t.pruned.len(),
                reason = reason.as_str(),
                "config backup"
            );
            succeeded(ctx, &name, &t).await;
            true
        }
        Err(e) => {
            failed(
                ctx,
                router,
                &format!("{} backup failed: {e}", reason.as_str()),
            )
            .await;
            false
        }
    }
}

// Each write names only the fields it changes (a merge patch), so a status the cache has
// not caught up with is never written back over a newer one.

async fn succeeded(ctx: &Context, name: &str, t: &Taken) {
    write(
        ctx,
        name,
        json!({"lastBackup": t.backup.record(), "count": t.kept, "lastFailure": null}),
    )
    .await;
}

async fn failed(ctx: &Context, router: &VyosRouter, why: &str) {
    let name = router.metadata.name.clone().unwrap_or_default();
    ctx.metrics.backup(&name, "error");
    tracing::warn!(router = %name, "{why}");
    let failure = BackupFailure {
        time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ),
        message: why.to_owned(),
    };
    write(ctx, &name, json!({ "lastFailure": failure })).await;
    ctx.event(
        router.object_ref(&()),
        true,
        "BackupFailed",
        "Backup",
        why.to_owned(),
    )
    .await;
}

async fn report_next(ctx: &Context, name: &str, router: &VyosRouter, at_ms: i64) {
    let Ok(at) = k8s_openapi::jiff::Timestamp::from_millisecond(at_ms) else {
        return;
    };
    let next = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at));
    let shown = router
        .status
        .as_ref()
        .and_then(|s| s.backup.as_ref())
        .and_then(|b| b.next_scheduled.clone());
    if shown == next {
        return;
    }
    write(ctx, name, json!({ "nextScheduled": next })).await;
}

async fn write(ctx: &Context, name: &str, backup: serde_json::Value) {
    let reporter = super::report::Reporter { ctx, router: name };
    reporter
        .patch_router_status(json!({ "backup": backup }))
        .await;
}

fn now_ms() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_millisecond()
}
