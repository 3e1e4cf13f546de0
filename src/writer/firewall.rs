//! The firewall step of a pass (`spec.firewall`): the router's IPv4 forward filter is read,
//! [`vmnet_plan::firewall::plan`] computes the owned accept rules for the NAT rules the
//! pass targets, and their ops go in requests of their own (never mixed with `nat`): new
//! and changed accept rules before the NAT request, removals after it (see that module for
//! why). The router's `status.firewall` says how many rules it owns, or why none is
//! written.

use std::collections::BTreeSet;

use serde_json::json;
use vmnet_api::VyosRouter;
use vmnet_plan::firewall::{Plan as FwPlan, plan};
use vmnet_plan::plan::Observed;
use vyos_client::nat::ConfigOp;
use vyos_client::{VyosClient, VyosError};

use super::Writer;
use super::dhcp::schema;

/// At most this many rules' ops per forward-filter request.
const RULES_PER_REQUEST: usize = 200;

impl Writer {
    /// Reads the forward filter and plans the accept rules; `None` when the router has no
    /// `spec.firewall` (nothing is read).
    pub(super) async fn plan_firewall(
        &self,
        client: &VyosClient,
        router: &VyosRouter,
        version: &str,
        observed: &Observed,
        target: &std::collections::BTreeMap<u32, std::sync::Arc<vyos_client::nat::NatRule>>,
    ) -> Result<Option<FwPlan>, VyosError> {
        if router.spec.firewall.is_none() {
            return Ok(None);
        }
        let filter = client.forward_filter().await?;
        let groups: BTreeSet<u32> = observed.owned_groups.keys().copied().collect();
        Ok(Some(plan(
            &router.spec,
            target,
            &filter,
            &groups,
            schema(version),
        )))
    }

    /// Sends forward-filter ops, a rule's ops always in one request. A refused request is
    /// the router's verdict on the operator's rules: it is returned as text for the status,
    /// not as a failed pass.
    pub(super) async fn send_firewall(
        &self,
        client: &VyosClient,
        ops: &[ConfigOp],
        when: &str,
    ) -> Result<Option<String>, VyosError> {
        let mut by_rule: Vec<Vec<ConfigOp>> = Vec::new();
        let mut last: Option<String> = None;
        for op in ops {
            let n = op.path.get(5).cloned();
            if n != last || by_rule.is_empty() {
                by_rule.push(Vec::new());
                last = n;
            }
            if let Some(group) = by_rule.last_mut() {
                group.push(op.clone());
            }
        }
        for chunk in by_rule.chunks(RULES_PER_REQUEST) {
            let request: Vec<ConfigOp> = chunk.iter().flatten().cloned().collect();
            let started = std::time::Instant::now();
            let result = client.configure(&request).await;
            self.ctx
                .metrics
                .commit(&self.name, result.is_ok(), request.len() as u64);
            tracing::info!(
                router = %self.name,
                component = "firewall",
                when,
                ops = request.len(),
                rules = chunk.len(),
                outcome = if result.is_ok() { "committed" } else { "refused" },
                duration_ms = started.elapsed().as_millis() as u64,
                "configure request"
            );
            match result {
                Ok(_) => {}
                Err(e) if e.category() == "RouterUnreachable" => return Err(e),
                Err(e) => {
                    return Ok(Some(format!(
                        "the router refused the forward-filter rules ({when} the NAT change): {}",
                        e.vyos_message().unwrap_or(&e.to_string())
                    )));
                }
            }
        }
        Ok(None)
    }

    /// `status.firewall`, written when it changed.
    pub(super) async fn report_firewall(
        &self,
        router: &VyosRouter,
        fw: &FwPlan,
        refused_by_router: Option<String>,
        applied: bool,
    ) {
        let owned = if applied {
            fw.target.len()
        } else {
            fw.owned.len()
        };
        let mut notes: Vec<String> = fw.note.iter().cloned().collect();
        notes.extend(refused_by_router);
        if !fw.refused.is_empty() {
            let list: Vec<String> = fw
                .refused
                .iter()
                .take(5)
                .map(|(n, why)| format!("NAT rule {n}: {why}"))
                .collect();
            notes.push(format!(
                "{} accept rule(s) not written: {}",
                fw.refused.len(),
                list.join("; ")
            ));
        }
        let message = (!notes.is_empty()).then(|| notes.join("; "));
        let shown = router.status.as_ref().and_then(|s| s.firewall.as_ref());
        if shown.is_some_and(|s| s.owned_rules == Some(owned as i64) && s.message == message) {
            return;
        }
        self.reporter()
            .patch_router_status(json!({
                "firewall": {"ownedRules": owned, "message": message}
            }))
            .await;
    }
}
