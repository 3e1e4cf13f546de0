//! The other members of an HA router (`spec.members`): after the first member's pass, each
//! one in list order gets the same owned rules, through the same observe → plan → apply
//! steps. The next member is written only once the previous one converged and still
//! answers, so the two halves of a VRRP pair never commit at the same time. A member that
//! cannot be reached is passed over (it does not hold up the others), said so in
//! `status.members`, and caught up by a later pass: the writer retries with backoff while
//! any member lags, and the probe wakes it as soon as the member answers again.
//!
//! PortRule conditions follow the first member; the others are reported on the router.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::json;
use vmnet_api::{Member, MemberStatus, PortRule, VyosRouter};
use vmnet_plan::plan::is_paused;
use vyos_client::VyosError;

use super::observe::{Access, Connection};
use super::{PassError, Writer, describe};

/// How the first member's pass ended, as the members after it see it.
#[derive(Debug, Clone)]
pub enum First {
    /// It holds what the cluster declares.
    Converged,
    /// It could not be reached: the others are written all the same.
    Down(String),
    /// It answered but did not converge (refused, timed out, no key): the others wait.
    Failed(String),
}

impl First {
    /// From the first member's pass.
    pub fn of(result: &Result<(), PassError>) -> Self {
        match result {
            Ok(()) => First::Converged,
            Err(e) => {
                let (reason, message, _) = describe(e);
                if reason == vmnet_plan::conditions::Reason::RouterUnreachable {
                    First::Down(message)
                } else {
                    First::Failed(message)
                }
            }
        }
    }
}

/// What the writer keeps per member between passes.
#[derive(Debug, Default)]
pub struct Members {
    conns: HashMap<String, Connection>,
}

/// A member's pass.
struct Synced {
    owned: usize,
    version: String,
    pending: usize,
}

impl Writer {
    /// The members after the first, one after the other; writes `status.members` when it
    /// changed. `true` when every member holds what the cluster declares.
    pub(super) async fn sync_members(
        &mut self,
        router: &VyosRouter,
        portrules: &[Arc<PortRule>],
        first: First,
    ) -> bool {
        let members = router.members();
        if members.len() < 2 {
            return true;
        }
        let mut all = true;
        let mut status: BTreeMap<String, MemberStatus> = BTreeMap::new();
        let head = &members[0];
        let mut may_write = match &first {
            First::Converged => match self.first_answers(router).await {
                Ok(()) => {
                    status.insert(head.name.clone(), synced_status(head, None, None));
                    true
                }
                Err(why) => {
                    all = false;
                    status.insert(head.name.clone(), lagging(head, Some(false), &why));
                    false
                }
            },
            First::Down(why) => {
                all = false;
                status.insert(head.name.clone(), lagging(head, Some(false), why));
                true
            }
            First::Failed(why) => {
                all = false;
                status.insert(head.name.clone(), lagging(head, Some(true), why));
                false
            }
        };
        let mut before = head.name.clone();
        for m in &members[1..] {
            if !may_write {
                all = false;
                let why = format!(
                    "waiting: member {before} did not converge or stopped answering, so this one is not written (never two members mid-change at once)"
                );
                status.insert(m.name.clone(), lagging(m, None, &why));
                continue;
            }
            match self.sync_member(router, m, portrules).await {
                Ok(s) if s.pending == 0 => {
                    status.insert(
                        m.name.clone(),
                        synced_status(m, Some(s.owned), Some(s.version)),
                    );
                    before = m.name.clone();
                }
                Ok(s) => {
                    all = false;
                    let why = format!("paused: {} ops wait for this member", s.pending);
                    let mut st = lagging(m, Some(true), &why);
                    st.owned_rules = Some(s.owned as i64);
                    status.insert(m.name.clone(), st);
                }
                Err(e) => {
                    all = false;
                    let (reason, message, _) = describe(&e);
                    let down = reason == vmnet_plan::conditions::Reason::RouterUnreachable;
                    tracing::warn!(router = %self.name, member = %m.name, reason = reason.as_str(), "member sync failed: {message}");
                    self.ctx.metrics.member_up(&self.name, &m.name, !down);
                    let why = if down {
                        format!("{message}; it is caught up when it answers")
                    } else {
                        message
                    };
                    status.insert(m.name.clone(), lagging(m, Some(!down), &why));
                    // A member that is down does not hold up the others; one that answered
                    // and did not converge does.
                    may_write = down;
                }
            }
        }
        self.write_members(router, status).await;
        all
    }

    /// Whether the first member still answers after its pass (one uptime read).
    async fn first_answers(&mut self, router: &VyosRouter) -> Result<(), String> {
        let secret_version = self.ctx.secret_version(router);
        let access = Access {
            namespaces: self.ctx.settings.credentials_namespaces.as_deref(),
            timeout: self.ctx.settings.router_timeout,
            secret_version: secret_version.as_deref(),
            observer: Some(&self.observer),
        };
        let client = self
            .conn
            .client(&self.ctx.client, access, router)
            .await
            .map_err(|e| describe(&e).1)?;
        client
            .uptime()
            .await
            .map(drop)
            .map_err(|e| format!("stopped answering after its change: {e}"))
    }

    async fn sync_member(
        &mut self,
        router: &VyosRouter,
        member: &Member,
        portrules: &[Arc<PortRule>],
    ) -> Result<Synced, PassError> {
        let view = router.as_member(member);
        let secret_version = self.ctx.secret_version(&view);
        let mut conn = self.members.conns.remove(&member.name).unwrap_or_default();
        let result = async {
            let access = Access {
                namespaces: self.ctx.settings.credentials_namespaces.as_deref(),
                timeout: self.ctx.settings.router_timeout,
                secret_version: secret_version.as_deref(),
                observer: Some(&self.observer),
            };
            let client = conn.client(&self.ctx.client, access, &view).await?;
            let version = conn.version(&client).await?;
            let (observed, plan) = self
                .observe_and_plan(&client, &view.spec, portrules, true)
                .await?;
            if is_paused(router.metadata.annotations.as_ref()) {
                return Ok(Synced {
                    owned: observed.owned.len(),
                    version,
                    pending: plan.op_count(),
                });
            }
            let applied = match self
                .apply(&client, &view, &version, &observed, &plan)
                .await
            {
                Err(PassError::Vyos(VyosError::Timeout { .. })) => {
                    self.unconfirmed = true;
                    return Err(PassError::Unconfirmed(format!(
                        "a configure request to member {} got no answer within {} s, so it may have committed; it is read again before anything more is sent",
                        member.name,
                        self.ctx.settings.router_timeout.as_secs()
                    )));
                }
                other => other?,
            };
            // It converged: does it still answer, before the next member is touched?
            client.uptime().await.map_err(PassError::Vyos)?;
            Ok(Synced {
                owned: applied.after.len(),
                version,
                pending: applied.failed.len(),
            })
        }
        .await;
        self.members.conns.insert(member.name.clone(), conn);
        if result.is_ok() {
            self.ctx.metrics.member_up(&self.name, &member.name, true);
        }
        result
    }

    /// Writes `status.members` (a merge patch of the fields the writer owns), unless the
    /// cached status shows them already.
    async fn write_members(&self, router: &VyosRouter, status: BTreeMap<String, MemberStatus>) {
        let shown = router.status.as_ref().and_then(|s| s.members.as_ref());
        let same = status.iter().all(|(name, new)| {
            shown.and_then(|m| m.get(name)).is_some_and(|old| {
                old.endpoint == new.endpoint
                    && old.synced == new.synced
                    && old.message == new.message
                    && (new.owned_rules.is_none() || old.owned_rules == new.owned_rules)
                    && (new.reachable.is_none() || old.reachable == new.reachable)
                    && (new.vyos_version.is_none() || old.vyos_version == new.vyos_version)
            })
        });
        if same {
            return;
        }
        let mut body = serde_json::Map::new();
        for (name, s) in status {
            let mut v = json!(s);
            // Cleared when it no longer lags.
            if s.message.is_none() {
                v["message"] = serde_json::Value::Null;
            }
            body.insert(name, v);
        }
        self.reporter()
            .patch_router_status(json!({ "members": body }))
            .await;
    }
}

fn synced_status(m: &Member, owned: Option<usize>, version: Option<String>) -> MemberStatus {
    MemberStatus {
        endpoint: Some(m.endpoint.clone()),
        reachable: Some(true),
        synced: Some(true),
        owned_rules: owned.map(|n| n as i64),
        message: None,
        vyos_version: version,
        boot_time: None,
    }
}

fn lagging(m: &Member, reachable: Option<bool>, why: &str) -> MemberStatus {
    MemberStatus {
        endpoint: Some(m.endpoint.clone()),
        reachable,
        synced: Some(false),
        owned_rules: None,
        message: Some(why.to_owned()),
        vyos_version: None,
        boot_time: None,
    }
}
