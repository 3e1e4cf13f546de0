//! VmNetwork: an address and external ports allocated and recorded in status, then one
//! owned PortRule per port (server-side apply), whose readiness makes the VmNetwork's.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use vmnet_api::{FIELD_MANAGER, FINALIZER, PortRule, VmNetwork, VmPortStatus};
use vmnet_core::alloc::{AddressRequest, AllocError, Claimant, PortRequest};

use crate::conditions::{State, conditions, is_ready, same};
use crate::controller::pools::protocol;
use crate::controller::{Context, Error, lock};

/// The label that ties a PortRule to the VmNetwork that made it.
pub const VMNETWORK_LABEL: &str = "vmnet.dev/vmnetwork";

/// Reconciles one VmNetwork.
pub async fn reconcile(vmn: Arc<VmNetwork>, ctx: Arc<Context>) -> Result<Action, Error> {
    let visible = ctx
        .stores
        .routers
        .state()
        .iter()
        .any(|r| r.metadata.name.as_deref() == Some(vmn.spec.router.as_str()));
    if ctx.settings.selector.is_some() && !visible {
        // Another deployment's router (this one watches a labelled subset): not ours.
        return Ok(Action::await_change());
    }
    let ns = vmn.metadata.namespace.clone().unwrap_or_default();
    let api: Api<VmNetwork> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, vmn, |event| async {
        match event {
            Finalizer::Apply(v) => apply(&v, &ctx).await,
            Finalizer::Cleanup(v) => {
                release_all(&ctx, &v);
                Ok(Action::await_change())
            }
        }
    })
    .await;
    ctx.metrics.reconciled("VmNetwork", result.is_ok());
    result.map_err(crate::controller::from_finalizer)
}

fn claimant(v: &VmNetwork) -> Claimant {
    Claimant::new(
        "VmNetwork",
        v.metadata.namespace.as_deref().unwrap_or_default(),
        v.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// The PortRule that carries port `port` of VmNetwork `vm`.
pub fn child_name(vm: &str, port: &str) -> String {
    format!("{vm}-{port}")
}

fn release_all(ctx: &Context, v: &VmNetwork) {
    let me = claimant(v);
    let mut alloc = lock(&ctx.alloc);
    alloc.addresses.release(&me);
    for p in v.spec.ports.iter().flatten() {
        alloc.ports.release(&me.clone().with_item(p.name.clone()));
    }
    // Ports removed from the spec earlier but still held.
    let held: Vec<Claimant> = alloc
        .ports
        .pools()
        .flat_map(|p| p.allocations().into_iter().map(|(c, _)| c.clone()))
        .filter(|c| c.kind == me.kind && c.namespace == me.namespace && c.name == me.name)
        .collect();
    for c in held {
        alloc.ports.release(&c);
    }
}

struct Outcome {
    address: Option<(IpAddr, Option<String>)>,
    ports: Vec<(VmPortStatus, Option<AllocError>)>,
    problem: Option<AllocError>,
}

/// Allocates (or confirms) the address and every port; never moves what is held.
fn allocate(ctx: &Context, v: &VmNetwork) -> Outcome {
    let me = claimant(v);
    let mut alloc = lock(&ctx.alloc);
    let mut problem = None;
    let request = match v.spec.address.as_deref().map(str::parse::<IpAddr>) {
        Some(Ok(ip)) => Ok(AddressRequest::Fixed(ip)),
        Some(Err(_)) => Err(AllocError::InvalidRequest {
            message: "spec.address is not an IP address".into(),
        }),
        None => Ok(AddressRequest::ANY),
    };
    let address = match request.and_then(|r| {
        alloc
            .addresses
            .allocate(&me, v.spec.ip_pool_ref.as_deref(), r)
    }) {
        Ok(a) => Some((a.value, a.pool)),
        Err(e) => {
            problem = Some(e);
            None
        }
    };
    let mut ports = Vec::new();
    let wanted: BTreeSet<&str> = v
        .spec
        .ports
        .iter()
        .flatten()
        .map(|p| p.name.as_str())
        .collect();
    // Ports dropped from the spec give their external port back.
    let stale: Vec<Claimant> = alloc
        .ports
        .pools()
        .flat_map(|p| p.allocations().into_iter().map(|(c, _)| c.clone()))
        .filter(|c| {
            c.kind == me.kind
                && c.namespace == me.namespace
                && c.name == me.name
                && c.item.as_deref().is_some_and(|i| !wanted.contains(i))
        })
        .collect();
    for c in stale {
        alloc.ports.release(&c);
    }
    for p in v.spec.ports.iter().flatten() {
        let who = me.clone().with_item(p.name.clone());
        let proto = protocol(p.protocol);
        let req = match p.external_port {
            Some(port) => PortRequest::fixed(proto, port),
            None => PortRequest::auto(proto),
        };
        let name = v.metadata.name.clone().unwrap_or_default();
        let mut st = VmPortStatus {
            name: p.name.clone(),
            port_rule: Some(child_name(&name, &p.name)),
            ..VmPortStatus::default()
        };
        match alloc
            .ports
            .allocate(&who, &v.spec.router, p.port_pool_ref.as_deref(), req)
        {
            Ok(a) => {
                st.external_port = Some(a.value.first);
                st.external_address = a
                    .pool
                    .as_deref()
                    .and_then(|n| alloc.ports.get(n))
                    .and_then(|pool| pool.spec().external_address.clone());
                st.port_pool = a.pool;
                ports.push((st, None));
            }
            Err(e) => ports.push((st, Some(e))),
        }
    }
    Outcome {
        address,
        ports,
        problem,
    }
}

async fn apply(v: &VmNetwork, ctx: &Context) -> Result<Action, Error> {
    let ns = v.metadata.namespace.clone().unwrap_or_default();
    let name = v.metadata.name.clone().unwrap_or_default();
    let g = v.metadata.generation;
    let outcome = allocate(ctx, v);
    let prev = v.status.clone().unwrap_or_default();
    let prev_conds = prev.common.conditions.as_deref();
    let api: Api<VmNetwork> = Api::namespaced(ctx.client.clone(), &ns);

    // Allocation first, in status, before anything is programmed.
    let first_port_problem = outcome
        .ports
        .iter()
        .find_map(|(p, e)| e.as_ref().map(|e| (p.name.clone(), e.clone())));
    // Read from the API server, not a cache: the watch that woke this reconcile may be
    // ahead of the cache, and a stale child would leave the VmNetwork waiting.
    let rules: Api<PortRule> = Api::namespaced(ctx.client.clone(), &ns);
    let lp = ListParams::default().labels(&format!("{VMNETWORK_LABEL}={name}"));
    let children = rules.list(&lp).await?.items;
    let child = |port: &str| {
        let cname = child_name(&name, port);
        children
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(cname.as_str()))
            .cloned()
    };
    let mut port_status = Vec::new();
    let mut not_ready = Vec::new();
    let mut stalled_child = None;
    let mut waiting_child: Option<(String, String)> = None;
    for (mut st, err) in outcome.ports.clone() {
        if err.is_none() {
            let c = child(&st.name);
            let conds = c
                .as_ref()
                .and_then(|c| c.status.as_ref())
                .and_then(|s| s.common.conditions.as_deref());
            let ready = is_ready(conds);
            st.ready = Some(ready);
            if !ready {
                not_ready.push(st.name.clone());
                if let Some(s) = conds.and_then(|cs| {
                    cs.iter()
                        .find(|c| c.type_ == "Stalled" && c.status == "True")
                }) {
                    stalled_child.get_or_insert((
                        st.name.clone(),
                        s.reason.clone(),
                        s.message.clone(),
                    ));
                }
                // A reason worth passing up (RouterUnreachable, Deleting, ...).
                if let Some(r) = conds.and_then(|cs| {
                    cs.iter().find(|c| {
                        c.type_ == "Reconciling" && c.status == "True" && c.reason != "Allocated"
                    })
                }) {
                    waiting_child.get_or_insert((r.reason.clone(), r.message.clone()));
                }
            }
        }
        port_status.push(st);
    }
    let endpoints: Vec<String> = port_status
        .iter()
        .filter_map(|p| {
            let addr = p.external_address.clone().unwrap_or_else(|| "*".into());
            Some(format!("{}:{}→{}", addr, p.external_port?, p.name))
        })
        .collect();
    let (state, reason, message) = if let Some(e) = &outcome.problem {
        (
            State::Stalled,
            e.reason().to_owned(),
            format!("address: {e}"),
        )
    } else if let Some((port, e)) = &first_port_problem {
        (
            State::Stalled,
            e.reason().to_owned(),
            format!("port {port}: {e}"),
        )
    } else if let Some((port, reason, msg)) = stalled_child {
        (State::Stalled, reason, format!("port {port}: {msg}"))
    } else if !not_ready.is_empty() {
        let (reason, why) = waiting_child.map_or_else(
            || ("Programming".to_owned(), String::new()),
            |(r, m)| (r, format!(": {m}")),
        );
        (
            State::Reconciling,
            reason,
            format!(
                "waiting for the router to program port(s) {}{why}",
                not_ready.join(", ")
            ),
        )
    } else {
        (
            State::Ready,
            "Programmed".to_owned(),
            format!("{} port(s) forwarded", port_status.len()),
        )
    };
    let status = json!({
        "observedGeneration": g,
        "address": outcome.address.as_ref().map(|(ip, _)| ip.to_string()),
        "ipPool": outcome.address.as_ref().and_then(|(_, p)| p.clone()),
        "endpoints": if endpoints.is_empty() { None } else { Some(endpoints.join(", ")) },
        "ports": port_status,
        "conditions": conditions(prev_conds, state, &reason, &message, g),
    });
    let unchanged = same(prev_conds, state, &reason, &message, g)
        && prev.address == outcome.address.as_ref().map(|(ip, _)| ip.to_string())
        && prev.ports.as_ref() == Some(&port_status);
    if !unchanged {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
    }

    // Then the PortRules, one per port that has its external port.
    // A stalled allocation heals when something is freed elsewhere, which raises no event
    // here: look again soon.
    let retry = match state {
        State::Stalled => Duration::from_secs(10),
        State::Reconciling => Duration::from_secs(5),
        State::Ready => Duration::from_secs(600),
    };
    let Some((address, _)) = outcome.address else {
        return Ok(Action::requeue(retry));
    };
    let owner = v
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Waiting("VmNetwork has no uid yet".into()))?;
    let mut wanted = BTreeSet::new();
    for (st, err) in &outcome.ports {
        if err.is_some() {
            continue;
        }
        let Some(port) = v.spec.ports.iter().flatten().find(|p| p.name == st.name) else {
            continue;
        };
        let cname = child_name(&name, &port.name);
        wanted.insert(cname.clone());
        let pool = st.port_pool.as_deref().and_then(|n| {
            ctx.stores
                .portpools
                .state()
                .into_iter()
                .find(|p| p.metadata.name.as_deref() == Some(n))
        });
        let mut spec = json!({
            "router": v.spec.router,
            "protocol": port.protocol,
            "externalPort": st.external_port,
            "internalAddress": address.to_string(),
            "internalPort": port.port,
            "description": format!("VmNetwork {name} port {}", port.name),
        });
        if let Some(a) = &st.external_address {
            spec["externalAddress"] = json!(a);
        }
        let interface = pool
            .as_ref()
            .and_then(|p| p.spec.inbound_interface.clone())
            .or_else(|| {
                // A fixed port outside every pool arrives on the router's default interface.
                ctx.stores
                    .routers
                    .state()
                    .iter()
                    .find(|r| r.metadata.name.as_deref() == Some(v.spec.router.as_str()))
                    .and_then(|r| r.spec.default_inbound_interface.clone())
            });
        if let Some(i) = interface {
            spec["inboundInterface"] = json!(i);
        } else if st.external_address.is_none() {
            tracing::warn!(vmnetwork = %name, port = %port.name, "no external address or interface: name a portPoolRef, or set the router's defaultInboundInterface");
            continue;
        }
        if let Some(s) = &port.source_ranges {
            spec["sourceRanges"] = json!(s);
        }
        let body = json!({
            "apiVersion": "vmnet.dev/v1alpha1",
            "kind": "PortRule",
            "metadata": {
                "name": cname,
                "namespace": ns,
                "labels": { VMNETWORK_LABEL: name },
                "ownerReferences": [owner],
            },
            "spec": spec,
        });
        if let Some(existing) = child(&port.name) {
            // Skip the write when nothing we own changed.
            if existing
                .owner_references()
                .iter()
                .any(|o| o.uid == owner.uid)
                && json!(existing.spec) == normalise(&spec)
            {
                continue;
            }
        }
        rules
            .patch(
                &cname,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await?;
    }
    // Ports removed from the spec: their PortRules go (their finalizers take the rules off
    // the router first).
    for r in &children {
        let rname = r.metadata.name.clone().unwrap_or_default();
        let ours = r
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == owner.uid);
        if ours && !wanted.contains(&rname) && r.metadata.deletion_timestamp.is_none() {
            rules.delete(&rname, &DeleteParams::background()).await?;
        }
    }
    Ok(Action::requeue(retry))
}

/// The spec as the API server stores it (no nulls), to compare with what is there.
fn normalise(spec: &serde_json::Value) -> serde_json::Value {
    match spec {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), normalise(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
