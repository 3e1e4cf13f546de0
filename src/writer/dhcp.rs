//! The DHCP step of a pass: static mappings for the router's VmNetworks that have a MAC
//! (`spec.mac`), after the NAT step and in requests of their own (VyOS commits a request
//! all-or-nothing only within one component, so `service dhcp-server` never shares one
//! with `nat`). observe (`service dhcp-server`, one read) → plan
//! ([`vmnet_plan::dhcp::plan`], pure) → apply (the leaf-level ops) → report (each
//! VmNetwork's `status.dhcp`, which its controller turns into readiness). Mappings the
//! operator did not write are never touched.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use vmnet_api::{DhcpStatus, VmNetwork, VyosRouter};
use vmnet_plan::conditions::Reason;
use vmnet_plan::dhcp::{Owner, Verdict, Want, owner_of, plan};
use vmnet_plan::plan::is_paused;
use vyos_client::nat::SchemaVersion;
use vyos_client::{VyosClient, VyosError};

use super::Writer;

/// The schema of a VyOS version string.
pub fn schema(version: &str) -> SchemaVersion {
    if version.starts_with("1.4") {
        SchemaVersion::V1_4
    } else {
        SchemaVersion::V1_5
    }
}

impl Writer {
    /// The router's VmNetworks (in the operator's scope).
    fn vmnetworks(&self) -> Vec<Arc<VmNetwork>> {
        let ns = self.ctx.settings.namespace.as_deref();
        self.ctx
            .stores
            .vmnetworks
            .state()
            .into_iter()
            .filter(|v| v.spec.router == self.name)
            .filter(|v| ns.is_none() || v.metadata.namespace.as_deref() == ns)
            .collect()
    }

    /// The DHCP step. Reads `service dhcp-server` only while some VmNetwork of the router
    /// has a MAC or a mapping to clear, or the router held owned mappings at the last look.
    pub(super) async fn sync_dhcp(
        &mut self,
        client: &VyosClient,
        router: &VyosRouter,
        version: &str,
    ) -> Result<(), VyosError> {
        let vms = self.vmnetworks();
        let wants: Vec<Want> = vms
            .iter()
            .filter(|v| v.metadata.deletion_timestamp.is_none())
            .filter_map(|v| {
                Some(Want {
                    owner: owner(v)?,
                    address: v
                        .status
                        .as_ref()?
                        .address
                        .as_deref()?
                        .parse::<Ipv4Addr>()
                        .ok()?,
                    mac: v.spec.mac.clone()?,
                })
            })
            .collect();
        let to_clear = vms
            .iter()
            .any(|v| v.status.as_ref().is_some_and(|s| s.dhcp.is_some()));
        if wants.is_empty() && !to_clear && self.had_mappings == Some(false) {
            return Ok(());
        }
        let server = match client.dhcp_server().await {
            Ok(s) => s,
            Err(e) if e.category() == "RouterUnreachable" => return Err(e),
            // A DHCP config the operator cannot read: every VmNetwork that wants a
            // mapping says so, rather than waiting without a word.
            Err(e) => {
                let why = format!(
                    "the router's service dhcp-server could not be read, so no mapping is written: {e}"
                );
                let verdicts = wants
                    .iter()
                    .map(|w| {
                        (
                            w.owner.clone(),
                            Verdict::Refused(Reason::MalformedResponse, why.clone()),
                        )
                    })
                    .collect();
                self.report_dhcp(&vms, &verdicts, &BTreeMap::new(), Some(&why), false)
                    .await;
                return Ok(());
            }
        };
        let owned_before = server
            .mappings
            .keys()
            .filter(|k| owner_of(&k.name).is_some())
            .count();
        let p = plan(&server, &wants, schema(version));
        let mut failed: Option<String> = None;
        let paused = is_paused(router.metadata.annotations.as_ref());
        if !p.ops.is_empty() && !paused {
            let started = std::time::Instant::now();
            let result = client.configure(&p.ops).await;
            let ok = result.is_ok();
            self.ctx.metrics.commit(&self.name, ok, p.ops.len() as u64);
            let owners: Vec<String> = p
                .ops
                .iter()
                .filter_map(|o| o.path.get(7).cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            tracing::info!(
                router = %self.name,
                component = "service dhcp-server",
                ops = p.ops.len(),
                mappings = %owners.join(","),
                outcome = if ok { "committed" } else { "refused" },
                error = result.as_ref().err().map(ToString::to_string).unwrap_or_default(),
                duration_ms = started.elapsed().as_millis() as u64,
                "configure request"
            );
            match result {
                Ok(_) => {}
                Err(e @ VyosError::Timeout { .. }) => return Err(e),
                Err(e) if e.category() == "RouterUnreachable" => return Err(e),
                Err(e) => failed = Some(e.vyos_message().unwrap_or(&e.to_string()).to_owned()),
            }
        }
        self.had_mappings = Some(if failed.is_some() || paused {
            owned_before > 0
        } else {
            !p.target.is_empty()
        });
        self.report_dhcp(&vms, &p.verdicts, &p.target, failed.as_deref(), paused)
            .await;
        Ok(())
    }

    async fn report_dhcp(
        &self,
        vms: &[Arc<VmNetwork>],
        verdicts: &BTreeMap<Owner, Verdict>,
        target: &BTreeMap<vyos_client::dhcp::MappingKey, vyos_client::dhcp::StaticMapping>,
        failed: Option<&str>,
        paused: bool,
    ) {
        for v in vms {
            let Some(o) = owner(v) else { continue };
            let shown = v.status.as_ref().and_then(|s| s.dhcp.clone());
            let address = v.status.as_ref().and_then(|s| s.address.clone());
            let want = match verdicts.get(&o) {
                // Paused: what the router holds stays, and so does what the status says.
                _ if paused => continue,
                Some(Verdict::Placed(key)) => match failed {
                    None => Some(DhcpStatus {
                        state: "Programmed".into(),
                        mapping: Some(format!(
                            "shared-network-name {} subnet {} static-mapping {}",
                            key.shared_network, key.subnet, key.name
                        )),
                        mac: target.get(key).and_then(|m| m.mac.clone()),
                        address,
                        message: None,
                        reason: None,
                    }),
                    Some(text) => Some(refused(
                        v,
                        Reason::CommitFailed,
                        &format!("the router refused the DHCP static mappings: {text}"),
                    )),
                },
                Some(Verdict::Refused(reason, message)) => Some(refused(v, *reason, message)),
                // No MAC any more, or being deleted: the mapping is gone (unless the
                // request failed, when it is still there).
                None if failed.is_some() => continue,
                None => None,
            };
            if shown == want {
                continue;
            }
            let ns = v.metadata.namespace.clone().unwrap_or_default();
            let name = v.metadata.name.clone().unwrap_or_default();
            let api: Api<VmNetwork> = Api::namespaced(self.ctx.client.clone(), &ns);
            let body = json!({ "status": { "dhcp": want } });
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(body))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    self.ctx.metrics.status_write_failed("VmNetwork");
                    tracing::warn!(router = %self.name, vmnetwork = %format!("{ns}/{name}"), error = %e, "DHCP status not written");
                }
            }
        }
    }
}

fn owner(v: &VmNetwork) -> Option<Owner> {
    Some((v.metadata.namespace.clone()?, v.metadata.name.clone()?))
}

fn refused(v: &VmNetwork, reason: Reason, message: &str) -> DhcpStatus {
    DhcpStatus {
        state: "Refused".into(),
        mapping: None,
        mac: v.spec.mac.clone(),
        address: v.status.as_ref().and_then(|s| s.address.clone()),
        message: Some(message.to_owned()),
        reason: Some(reason.as_str().to_owned()),
    }
}
