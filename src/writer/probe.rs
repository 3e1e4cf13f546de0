//! The health probe of one router: on its own cadence (`spec.healthCheckInterval`,
//! default 30 s), also while nothing changes, it asks the router for its uptime. That one
//! read says whether the API answers (and accepts the key), how long it takes, and when the
//! router booted. A boot later than the one on record means the router rebooted and lost
//! whatever was not saved to boot: the writer is woken at once to put the owned rules back,
//! a `RouterRebooted` Warning Event is emitted and counted.
//!
//! Each router has its own probe task with its own client, so a router that hangs delays
//! nothing but its own probe. The probe writes the router's status only when what it shows
//! changes (`reachable`, `bootTime`, `vyosVersion`): steady state costs no writes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Resource;
use serde_json::json;
use tokio::sync::mpsc;
use vmnet_api::VyosRouter;
use vmnet_plan::health::{Boot, boot_time, compare};

use super::observe::{Access, Connection};
use super::parse_duration;
use crate::context::Context;

/// The probe interval of a router that sets none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// The probe interval of `router`.
pub fn interval(router: &VyosRouter) -> Duration {
    router
        .spec
        .health_check_interval
        .as_deref()
        .and_then(parse_duration)
        .unwrap_or(DEFAULT_INTERVAL)
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The router answered: its boot time (Unix ms) and VyOS version.
    Up { boot_ms: i64, version: String },
    /// No answer within the deadline, or no connection.
    Down(String),
    /// An answer, but not a usable one (a refused key, TLS, a malformed answer): the
    /// writer's pass reports that with what to do, so the probe only records that the
    /// router is there.
    Troubled(String),
    /// No client could be made (no Secret, or one the operator may not read): the
    /// writer's pass says so.
    NoClient,
}

/// Runs the probe of `name` until the task is aborted; `wake` asks the writer for a pass.
/// Every member of an HA router is probed, at the same time, each with its own client.
pub async fn run(ctx: Arc<Context>, name: String, wake: mpsc::UnboundedSender<Instant>) {
    let observer = ctx.metrics.request_observer(&name);
    let mut targets: HashMap<String, Target> = HashMap::new();
    loop {
        let Some(router) = ctx.router(&name) else {
            tokio::time::sleep(DEFAULT_INTERVAL).await;
            continue;
        };
        let started = Instant::now();
        let members = router.members();
        targets.retain(|n, _| members.iter().any(|m| m.name == *n));
        for m in &members {
            targets.entry(m.name.clone()).or_default();
        }
        let probes = targets.iter_mut().filter_map(|(n, t)| {
            let m = members.iter().find(|m| m.name == *n)?.clone();
            let view = router.as_member(&m);
            let (ctx, observer) = (&ctx, &observer);
            Some(async move {
                let began = Instant::now();
                let finding = t.probe(ctx, observer, &view).await;
                (m, finding, began.elapsed())
            })
        });
        let findings = futures::future::join_all(probes).await;
        let first = members.first().map(|m| m.name.clone());
        for (m, finding, took) in findings {
            let Some(t) = targets.get_mut(&m.name) else {
                continue;
            };
            let at = Place {
                router: &name,
                member: (first.as_deref() != Some(m.name.as_str())).then_some(m.name.as_str()),
                has_members: members.len() > 1,
            };
            t.report(&ctx, &router, at, &finding, took, &wake).await;
        }
        let every = interval(&router);
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
}

/// Where a probe's finding goes: the router's own status fields (the first member), or
/// `status.members.<member>` (the others).
#[derive(Debug, Clone, Copy)]
struct Place<'a> {
    router: &'a str,
    member: Option<&'a str>,
    has_members: bool,
}

/// One member as the probe follows it.
#[derive(Debug, Default)]
struct Target {
    conn: Connection,
    /// The boot time this process last saw (Unix ms).
    boot: Option<i64>,
    /// Whether it answered the last probe.
    up: Option<bool>,
}

impl Target {
    async fn probe(
        &mut self,
        ctx: &Context,
        observer: &vyos_client::Observer,
        router: &VyosRouter,
    ) -> Finding {
        let secret_version = ctx.secret_version(router);
        let timeout = ctx.settings.router_timeout.min(interval(router));
        let access = Access {
            namespaces: ctx.settings.credentials_namespaces.as_deref(),
            timeout,
            secret_version: secret_version.as_deref(),
            observer: Some(observer),
        };
        let Ok(client) = self.conn.client(&ctx.client, access, router).await else {
            return Finding::NoClient;
        };
        let sent = now_ms();
        let uptime = client.uptime().await;
        let answered = now_ms();
        let uptime = match uptime {
            Ok(u) => u,
            Err(e) if e.category() == "RouterUnreachable" => return Finding::Down(e.to_string()),
            Err(e) => return Finding::Troubled(e.category().to_owned()),
        };
        let version = match self.conn.version(&client).await {
            Ok(v) => v,
            Err(e) => return Finding::Troubled(e.to_string()),
        };
        Finding::Up {
            boot_ms: boot_time(sent, answered, uptime),
            version,
        }
    }

    async fn report(
        &mut self,
        ctx: &Context,
        router: &VyosRouter,
        at: Place<'_>,
        finding: &Finding,
        took: Duration,
        wake: &mpsc::UnboundedSender<Instant>,
    ) {
        let metrics = &ctx.metrics;
        let who = at.member.unwrap_or(at.router);
        let (up, boot, version) = match finding {
            Finding::NoClient => return,
            Finding::Down(why) => {
                tracing::warn!(router = %at.router, member = %who, took_ms = took.as_millis() as u64, "health probe: the router did not answer: {why}");
                (false, None, None)
            }
            Finding::Troubled(category) => {
                tracing::debug!(router = %at.router, member = %who, category = %category, "health probe: the router answered with an error");
                (true, None, None)
            }
            Finding::Up { boot_ms, version } => (true, Some(*boot_ms), Some(version.clone())),
        };
        if at.member.is_none() {
            metrics.probe(at.router, took, up);
        }
        if at.has_members {
            metrics.member_up(at.router, who, up);
        }
        // A router that answers again after an outage gets a pass at once, not at the
        // next drift check: the rules waiting for it go out now.
        if up && self.up == Some(false) {
            let _ = wake.send(Instant::now());
        }
        self.up = Some(up);

        // What the status shows now: the router's own fields, or its member's.
        let shown = router.status.as_ref();
        let shown_member = at.member.and_then(|m| {
            shown
                .and_then(|s| s.members.as_ref())
                .and_then(|ms| ms.get(m))
        });
        let (shown_up, shown_boot, shown_version) = match at.member {
            None => (
                shown.and_then(|s| s.reachable),
                shown.and_then(|s| s.boot_time.clone()),
                shown.and_then(|s| s.vyos_version.clone()),
            ),
            Some(_) => (
                shown_member.and_then(|s| s.reachable),
                shown_member.and_then(|s| s.boot_time.clone()),
                shown_member.and_then(|s| s.vyos_version.clone()),
            ),
        };
        let recorded = self
            .boot
            .or_else(|| shown_boot.as_ref().map(|t| t.0.as_millisecond()));
        let mut boot_to_write = None;
        if let Some(seen) = boot {
            match compare(recorded, seen, took) {
                Boot::Same => {}
                Boot::First | Boot::Corrected => boot_to_write = Some(seen),
                Boot::Rebooted => {
                    boot_to_write = Some(seen);
                    // It may have booted another VyOS image.
                    self.conn.version = None;
                    rebooted(ctx, router, who, recorded, seen, wake).await;
                }
            }
            if boot_to_write.is_some() || self.boot.is_none() {
                self.boot = Some(seen);
            }
        }

        // Write only what changed (the cache's copy of the status is what is compared).
        let reachable_changed = shown_up != Some(up);
        let version_changed = version.is_some() && shown_version != version;
        if !(reachable_changed || boot_to_write.is_some() || version_changed) {
            return;
        }
        let mut fields = json!({ "reachable": up });
        if let Some(b) = boot_to_write
            && let Ok(t) = k8s_openapi::jiff::Timestamp::from_millisecond(b)
        {
            fields["bootTime"] = json!(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t));
        }
        if let Some(v) = version {
            fields["vyosVersion"] = json!(v);
        }
        let body = match at.member {
            None => fields,
            Some(m) => json!({ "members": { m: fields } }),
        };
        let reporter = super::report::Reporter {
            ctx,
            router: at.router,
        };
        reporter.patch_router_status(body).await;
        if reachable_changed && !up {
            // The router's conditions (and its rules') say so after a pass.
            let _ = wake.send(Instant::now());
        }
    }
}

async fn rebooted(
    ctx: &Context,
    router: &VyosRouter,
    who: &str,
    recorded: Option<i64>,
    seen: i64,
    wake: &mpsc::UnboundedSender<Instant>,
) {
    let _ = wake.send(Instant::now());
    let name = router.metadata.name.clone().unwrap_or_default();
    ctx.metrics.router_rebooted(&name);
    let when = k8s_openapi::jiff::Timestamp::from_millisecond(seen)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let before = recorded
        .and_then(|r| k8s_openapi::jiff::Timestamp::from_millisecond(r).ok())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let which = if who == name {
        "the router".to_owned()
    } else {
        format!("member {who}")
    };
    let saved = router.spec.save_config == Some(true);
    let note = if saved {
        format!(
            "{which} rebooted at about {when} (it had booted at {before}); it booted with its saved config, which the operator keeps up to date (saveConfig: true), so the next pass should find the owned rules in place"
        )
    } else {
        format!(
            "{which} rebooted at about {when} (it had booted at {before}): changes not saved to boot are gone, so the owned rules are re-written now; set spec.saveConfig: true to keep them across reboots"
        )
    };
    tracing::warn!(router = %name, member = %who, "{note}");
    ctx.event(
        router.object_ref(&()),
        true,
        "RouterRebooted",
        "Probe",
        note,
    )
    .await;
}

fn now_ms() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_millisecond()
}
