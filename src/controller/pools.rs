//! IpPool and PortPool: loaded into the allocators, with total / used / free in status.
//! Editing a pool never moves an allocation: the ones left outside are listed.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use serde_json::json;
use vmnet_api::{FINALIZER, IpPool, PortPool};
use vmnet_core::alloc::{AddressPoolSpec, PoolPolicy, PortPoolSpec, PortProtocol};

use crate::context::{Context, lock};
use crate::controller::Error;
use vmnet_plan::conditions::{Reason, State, conditions, same};

/// The allocator's view of an IpPool.
pub fn address_spec(p: &IpPool) -> AddressPoolSpec {
    AddressPoolSpec {
        addresses: p.spec.addresses.clone(),
        exclude: p.spec.exclude.clone().unwrap_or_default(),
        include_network_and_broadcast: p.spec.include_network_and_broadcast == Some(true),
        policy: PoolPolicy {
            auto_assign: p.spec.auto_assign == Some(true),
            priority: p.spec.priority.unwrap_or(0),
            allowed_namespaces: p.spec.allowed_namespaces.clone().unwrap_or_default(),
            closing: p.metadata.deletion_timestamp.is_some(),
        },
    }
}

/// The allocator's protocol for an API protocol.
pub fn protocol(p: vmnet_api::PortProtocol) -> PortProtocol {
    match p {
        vmnet_api::PortProtocol::Tcp => PortProtocol::Tcp,
        vmnet_api::PortProtocol::Udp => PortProtocol::Udp,
        vmnet_api::PortProtocol::TcpUdp => PortProtocol::TcpUdp,
    }
}

/// The allocator's view of a PortPool.
pub fn port_spec(p: &PortPool) -> PortPoolSpec {
    PortPoolSpec {
        router: p.spec.router.clone(),
        external_address: p.spec.external_address.clone(),
        ports: p.spec.ports.clone(),
        exclude: p.spec.exclude.clone().unwrap_or_default(),
        // Absent: every protocol (tcp, udp and tcp_udp), as the API reference says; the
        // allocator reads an empty list so.
        protocols: p
            .spec
            .protocols
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(protocol)
            .collect(),
        policy: PoolPolicy {
            auto_assign: p.spec.auto_assign == Some(true),
            priority: p.spec.priority.unwrap_or(0),
            allowed_namespaces: p.spec.allowed_namespaces.clone().unwrap_or_default(),
            closing: p.metadata.deletion_timestamp.is_some(),
        },
    }
}

/// An IpPool's status counts (total and free as strings: an IPv6 pool outgrows integers).
fn ip_counts(c: vmnet_core::alloc::PoolCounts) -> serde_json::Value {
    json!({
        "total": c.total.to_string(),
        "used": i64::try_from(c.used).unwrap_or(i64::MAX),
        "free": c.free.to_string(),
    })
}

/// A PortPool's status counts: port numbers in use, and allocations.
fn port_counts(c: vmnet_core::alloc::PortCounts, allocations: usize) -> serde_json::Value {
    let int = |n: u128| i64::try_from(n).unwrap_or(i64::MAX);
    json!({
        "total": int(c.total),
        "used": int(c.used),
        "allocations": i64::try_from(allocations).unwrap_or(i64::MAX),
        "free": int(c.free),
    })
}

/// Writes `status` unless the object's current status (as stored: no nulls) already says
/// exactly that: counts are refreshed every 10 s, and most refreshes change nothing.
async fn write_if_changed<K>(
    api: &Api<K>,
    name: &str,
    current: Option<serde_json::Value>,
    status: serde_json::Value,
) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut stored = status.clone();
    if let Some(m) = stored.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    if current.as_ref() != Some(&stored) {
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
    }
    Ok(())
}

/// Copies the fields of `from` into `into`.
fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// Reconciles one IpPool.
async fn apply_ip(pool: Arc<IpPool>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = pool.metadata.name.clone().unwrap_or_default();
    let (state, reason, message, counts, out) = {
        let mut alloc = lock(&ctx.alloc);
        match alloc.addresses.upsert(&name, address_spec(&pool)) {
            Ok(_) => {
                let p = alloc.addresses.get(&name);
                let counts = p.map(|p| p.counts()).unwrap_or_default();
                let out: Vec<String> = p
                    .map(|p| p.out_of_range().iter().map(ToString::to_string).collect())
                    .unwrap_or_default();
                if out.is_empty() {
                    (
                        State::Ready,
                        Reason::Loaded,
                        String::new(),
                        Some(counts),
                        out,
                    )
                } else {
                    let msg = format!(
                        "{} allocations lie outside the pool now; they are kept, not moved",
                        out.len()
                    );
                    (
                        State::Ready,
                        Reason::AllocationsOutOfRange,
                        msg,
                        Some(counts),
                        out,
                    )
                }
            }
            Err(e) => (
                State::Stalled,
                Reason::from(&e),
                e.to_string(),
                None,
                Vec::new(),
            ),
        }
    };
    let g = pool.metadata.generation;
    let mut status = json!({
        "observedGeneration": g,
        "conditions": conditions(pool.status.as_ref().and_then(|s| s.common.conditions.as_deref()), state, reason, &message, g),
        "outOfRange": if out.is_empty() { serde_json::Value::Null } else { json!(out) },
    });
    if let Some(c) = counts {
        ctx.metrics
            .pool("IpPool", &name, c.used as f64, c.total as f64);
        merge(&mut status, ip_counts(c));
    }
    let api: Api<IpPool> = Api::all(ctx.client.clone());
    write_if_changed(&api, &name, pool.status.as_ref().map(|s| json!(s)), status).await?;
    ctx.metrics.reconciled("IpPool", true);
    // Counts follow allocations, which change without a pool event.
    Ok(Action::requeue(Duration::from_secs(10)))
}

/// Reconciles one PortPool.
async fn apply_port(pool: Arc<PortPool>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = pool.metadata.name.clone().unwrap_or_default();
    let (state, reason, message, counts, out) = {
        let mut alloc = lock(&ctx.alloc);
        match alloc.ports.upsert(&name, port_spec(&pool)) {
            Ok(_) => {
                let p = alloc.ports.get(&name);
                let counts = p.map(|p| (p.counts(), p.len()));
                let out: Vec<String> = p
                    .map(|p| p.out_of_range().iter().map(ToString::to_string).collect())
                    .unwrap_or_default();
                if out.is_empty() {
                    (State::Ready, Reason::Loaded, String::new(), counts, out)
                } else {
                    let msg = format!(
                        "{} allocations lie outside the pool now; they are kept, not moved",
                        out.len()
                    );
                    (
                        State::Ready,
                        Reason::AllocationsOutOfRange,
                        msg,
                        counts,
                        out,
                    )
                }
            }
            Err(e) => (
                State::Stalled,
                Reason::from(&e),
                e.to_string(),
                None,
                Vec::new(),
            ),
        }
    };
    let g = pool.metadata.generation;
    let mut status = json!({
        "observedGeneration": g,
        "conditions": conditions(pool.status.as_ref().and_then(|s| s.common.conditions.as_deref()), state, reason, &message, g),
        "outOfRange": if out.is_empty() { serde_json::Value::Null } else { json!(out) },
    });
    if let Some(c) = counts {
        ctx.metrics
            .pool("PortPool", &name, c.0.used as f64, c.0.total as f64);
        merge(&mut status, port_counts(c.0, c.1));
    }
    let api: Api<PortPool> = Api::all(ctx.client.clone());
    write_if_changed(&api, &name, pool.status.as_ref().map(|s| json!(s)), status).await?;
    ctx.metrics.reconciled("PortPool", true);
    // Counts follow allocations, which change without a pool event.
    Ok(Action::requeue(Duration::from_secs(10)))
}

/// Reconciles one IpPool. Deleting a pool waits (finalizer) while allocations still use it,
/// so nothing in use disappears from under a VM; meanwhile it hands out nothing new.
pub async fn reconcile_ip(pool: Arc<IpPool>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<IpPool> = Api::all(ctx.client.clone());
    let pool = crate::controller::with_finalizer(&api, pool).await?;
    let result = finalizer(&api, FINALIZER, pool, |event| async {
        match event {
            Finalizer::Apply(p) => apply_ip(p, ctx.clone()).await,
            Finalizer::Cleanup(p) => {
                let name = p.metadata.name.clone().unwrap_or_default();
                let (holders, counts): (Vec<String>, _) = {
                    let mut alloc = lock(&ctx.alloc);
                    // Closed first: what it holds stays, nothing new comes out of it.
                    let _ = alloc.addresses.upsert(&name, address_spec(&p));
                    alloc
                        .addresses
                        .get(&name)
                        .map(|pool| {
                            let holders = pool
                                .allocations()
                                .map(|(c, ip)| format!("{c} ({ip})"))
                                .collect();
                            (holders, ip_counts(pool.counts()))
                        })
                        .unwrap_or_default()
                };
                if holders.is_empty() {
                    lock(&ctx.alloc).addresses.remove(&name);
                    ctx.metrics.forget_pool("IpPool", &name);
                    return Ok(Action::await_change());
                }
                let conds = p.status.as_ref().and_then(|s| s.common.conditions.clone());
                hold(&api, &name, conds, p.metadata.generation, &holders, counts).await
            }
        }
    })
    .await;
    crate::controller::settle(result)
}

/// Reconciles one PortPool; deletion waits like an IpPool's.
pub async fn reconcile_port(pool: Arc<PortPool>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<PortPool> = Api::all(ctx.client.clone());
    let pool = crate::controller::with_finalizer(&api, pool).await?;
    let result = finalizer(&api, FINALIZER, pool, |event| async {
        match event {
            Finalizer::Apply(p) => apply_port(p, ctx.clone()).await,
            Finalizer::Cleanup(p) => {
                let name = p.metadata.name.clone().unwrap_or_default();
                let (holders, counts): (Vec<String>, _) = {
                    let mut alloc = lock(&ctx.alloc);
                    let _ = alloc.ports.upsert(&name, port_spec(&p));
                    alloc
                        .ports
                        .get(&name)
                        .map(|pool| {
                            let holders = pool
                                .allocations()
                                .into_iter()
                                .map(|(c, a)| format!("{c} ({a})"))
                                .collect();
                            (holders, port_counts(pool.counts(), pool.len()))
                        })
                        .unwrap_or_default()
                };
                if holders.is_empty() {
                    lock(&ctx.alloc).ports.remove(&name);
                    ctx.metrics.forget_pool("PortPool", &name);
                    return Ok(Action::await_change());
                }
                let conds = p.status.as_ref().and_then(|s| s.common.conditions.clone());
                hold(&api, &name, conds, p.metadata.generation, &holders, counts).await
            }
        }
    })
    .await;
    crate::controller::settle(result)
}

/// Keeps a pool that is being deleted while `holders` use it, and says so in its status.
async fn hold<K>(
    api: &Api<K>,
    name: &str,
    conds: Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
    generation: Option<i64>,
    holders: &[String],
    counts: serde_json::Value,
) -> Result<Action, Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let shown: Vec<&str> = holders.iter().take(5).map(String::as_str).collect();
    let more = if holders.len() > 5 {
        format!(" and {} more", holders.len() - 5)
    } else {
        String::new()
    };
    let msg = format!(
        "deleting: {} allocation(s) still use this pool ({}{more}); the pool goes once they are released",
        holders.len(),
        shown.join(", ")
    );
    if !same(
        conds.as_deref(),
        State::Reconciling,
        Reason::Deleting,
        &msg,
        generation,
    ) {
        // The counts follow the releases, so `kubectl get` shows the pool draining.
        let mut status = counts;
        status["conditions"] = json!(conditions(
            conds.as_deref(),
            State::Reconciling,
            Reason::Deleting,
            &msg,
            generation
        ));
        let body = json!({ "status": status });
        let _ = api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(body))
            .await;
    }
    Err(Error::Waiting(msg))
}
