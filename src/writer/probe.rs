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

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Resource;
use serde_json::json;
use tokio::sync::mpsc;
use vmnet_api::VyosRouter;
use vmnet_plan::health::{Boot, boot_time, compare};

use super::observe::{Access, Connection};
use super::parse_duration;
use crate::context::{Context, lock};

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
pub async fn run(ctx: Arc<Context>, name: String, wake: mpsc::UnboundedSender<()>) {
    let mut probe = Probe {
        observer: ctx.metrics.request_observer(&name),
        ctx,
        name,
        conn: Connection::default(),
        boot: None,
        up: None,
    };
    loop {
        let Some(router) = probe.router() else {
            tokio::time::sleep(DEFAULT_INTERVAL).await;
            continue;
        };
        let started = Instant::now();
        let finding = probe.probe(&router).await;
        probe
            .report(&router, &finding, started.elapsed(), &wake)
            .await;
        let every = interval(&router);
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
}

struct Probe {
    ctx: Arc<Context>,
    observer: vyos_client::Observer,
    name: String,
    conn: Connection,
    /// The boot time this process last saw (Unix ms).
    boot: Option<i64>,
    /// Whether the router answered the last probe.
    up: Option<bool>,
}

impl Probe {
    fn router(&self) -> Option<Arc<VyosRouter>> {
        self.ctx
            .stores
            .routers
            .state()
            .into_iter()
            .find(|r| r.metadata.name.as_deref() == Some(self.name.as_str()))
    }

    async fn probe(&mut self, router: &VyosRouter) -> Finding {
        let sref = &router.spec.credentials_secret_ref;
        let secret_version = lock(&self.ctx.secret_versions)
            .get(&format!("{}/{}", sref.namespace, sref.name))
            .cloned();
        let timeout = self.ctx.settings.router_timeout.min(interval(router));
        let access = Access {
            namespaces: self.ctx.settings.credentials_namespaces.as_deref(),
            timeout,
            secret_version: secret_version.as_deref(),
            observer: Some(&self.observer),
        };
        let Ok(client) = self.conn.client(&self.ctx.client, access, router).await else {
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
        router: &VyosRouter,
        finding: &Finding,
        took: Duration,
        wake: &mpsc::UnboundedSender<()>,
    ) {
        let metrics = &self.ctx.metrics;
        let status = router.status.as_ref();
        let (up, boot, version) = match finding {
            Finding::NoClient => return,
            Finding::Down(why) => {
                tracing::warn!(router = %self.name, took_ms = took.as_millis() as u64, "health probe: the router did not answer: {why}");
                (false, None, None)
            }
            Finding::Troubled(category) => {
                tracing::debug!(router = %self.name, category = %category, "health probe: the router answered with an error");
                (true, None, None)
            }
            Finding::Up { boot_ms, version } => (true, Some(*boot_ms), Some(version.clone())),
        };
        metrics.probe(&self.name, took, up);
        // A router that answers again after an outage gets a pass at once, not at the
        // next drift check: the rules waiting for it go out now.
        if up && self.up == Some(false) {
            let _ = wake.send(());
        }
        self.up = Some(up);

        let recorded = self.boot.or_else(|| {
            status
                .and_then(|s| s.boot_time.as_ref())
                .map(|t| t.0.as_millisecond())
        });
        let mut boot_to_write = None;
        if let Some(seen) = boot {
            match compare(recorded, seen, took) {
                Boot::Same => {}
                Boot::First | Boot::Corrected => boot_to_write = Some(seen),
                Boot::Rebooted => {
                    boot_to_write = Some(seen);
                    // It may have booted another VyOS image.
                    self.conn.version = None;
                    self.rebooted(router, recorded, seen, wake).await;
                }
            }
            if boot_to_write.is_some() || self.boot.is_none() {
                self.boot = Some(seen);
            }
        }

        // Write only what changed (the cache's copy of the status is what is compared).
        let reachable_changed = status.and_then(|s| s.reachable) != Some(up);
        let version_changed =
            version.is_some() && status.and_then(|s| s.vyos_version.clone()) != version;
        if !(reachable_changed || boot_to_write.is_some() || version_changed) {
            return;
        }
        let mut body = json!({ "reachable": up });
        if let Some(b) = boot_to_write
            && let Ok(t) = k8s_openapi::jiff::Timestamp::from_millisecond(b)
        {
            body["bootTime"] = json!(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t));
        }
        if let Some(v) = version {
            body["vyosVersion"] = json!(v);
        }
        let reporter = super::report::Reporter {
            ctx: &self.ctx,
            router: &self.name,
        };
        reporter.patch_router_status(body).await;
        if reachable_changed && !up {
            // The router's conditions (and its rules') say so after a pass.
            let _ = wake.send(());
        }
    }

    async fn rebooted(
        &self,
        router: &VyosRouter,
        recorded: Option<i64>,
        seen: i64,
        wake: &mpsc::UnboundedSender<()>,
    ) {
        let _ = wake.send(());
        self.ctx.metrics.router_rebooted(&self.name);
        let when = k8s_openapi::jiff::Timestamp::from_millisecond(seen)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let before = recorded
            .and_then(|r| k8s_openapi::jiff::Timestamp::from_millisecond(r).ok())
            .map(|t| t.to_string())
            .unwrap_or_default();
        let saved = router.spec.save_config == Some(true);
        let note = if saved {
            format!(
                "the router rebooted at about {when} (it had booted at {before}); it booted with its saved config, which the operator keeps up to date (saveConfig: true), so the next pass should find the owned rules in place"
            )
        } else {
            format!(
                "the router rebooted at about {when} (it had booted at {before}): changes not saved to boot are gone, so the owned rules are re-written now; set spec.saveConfig: true to keep them across reboots"
            )
        };
        tracing::warn!(router = %self.name, "{note}");
        self.ctx
            .event(
                router.object_ref(&()),
                true,
                "RouterRebooted",
                "Probe",
                note,
            )
            .await;
    }
}

fn now_ms() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_millisecond()
}
