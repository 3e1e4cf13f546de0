//! VmNetwork: an address and external ports allocated and recorded in status, then one
//! owned PortRule per port (server-side apply), whose readiness makes the VmNetwork's.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use vmnet_api::{FIELD_MANAGER, FINALIZER, PortRule, VmNetwork, VmPortStatus};
use vmnet_core::alloc::{
    AddressRequest, AllocError, Assigned, Claimant, PortAllocation, PortRequest,
};

use crate::context::{Context, lock};
use crate::controller::Error;
use crate::controller::pools::protocol;
use vmnet_plan::conditions::{Reason, State, conditions, is_ready, same, same_state};

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
    // Our own last write, when the cache does not hold it yet: its status is the one to
    // compare with, or the same status would be written twice.
    let key = ObjectRef::from_obj(vmn.as_ref());
    let vmn = ctx
        .written_vms
        .fresher(&key, Some(vmn.clone()))
        .unwrap_or(vmn);
    let ns = vmn.metadata.namespace.clone().unwrap_or_default();
    let api: Api<VmNetwork> = Api::namespaced(ctx.client.clone(), &ns);
    let before = vmn.clone();
    let vmn = crate::controller::with_finalizer(&api, vmn).await?;
    if !Arc::ptr_eq(&before, &vmn) {
        ctx.written_vms.remember(vmn.clone());
    }
    let result = finalizer(&api, FINALIZER, vmn, |event| async {
        match event {
            Finalizer::Apply(v) => apply(&v, &ctx).await,
            Finalizer::Cleanup(v) => {
                release_all(&ctx, &v);
                delete_children(&ctx, &v).await;
                // The DHCP static mapping leaves the router first; the writer clears
                // status.dhcp when it has, which brings this VmNetwork back.
                if v.status.as_ref().is_some_and(|s| s.dhcp.is_some()) {
                    ctx.nudge(&v.spec.router);
                    return Err(Error::Waiting(
                        "deleting: the DHCP static mapping leaves the router first".into(),
                    ));
                }
                Ok(Action::await_change())
            }
        }
    })
    .await;
    ctx.metrics.reconciled("VmNetwork", result.is_ok());
    crate::controller::settle(result)
}

fn claimant(v: &VmNetwork) -> Claimant {
    Claimant::new(
        "VmNetwork",
        v.metadata.namespace.as_deref().unwrap_or_default(),
        v.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Whether `v` might see a change of the IpPool `pool`: it holds an address from it,
/// names it, holds no address yet (a new or grown pool may serve it), or is not Ready.
/// Every other VmNetwork is left alone, so one pool's change costs O(its consumers).
pub fn affected_by_ip_pool(v: &VmNetwork, pool: &str) -> bool {
    let st = v.status.as_ref();
    st.and_then(|s| s.ip_pool.as_deref()) == Some(pool)
        || v.spec.ip_pool_ref.as_deref() == Some(pool)
        || st.and_then(|s| s.address.as_ref()).is_none()
        || !is_ready(st.and_then(|s| s.common.conditions.as_deref()))
}

/// Whether `v` might see a change of the PortPool `pool` on `router`: it is on that router
/// and holds a port from it, names it, lacks a port, or is not Ready.
pub fn affected_by_port_pool(v: &VmNetwork, pool: &str, router: &str) -> bool {
    if v.spec.router != router {
        return false;
    }
    let st = v.status.as_ref();
    let held = st.and_then(|s| s.ports.as_deref()).unwrap_or_default();
    let wanted = v.spec.ports.as_deref().unwrap_or_default();
    held.iter().any(|p| p.port_pool.as_deref() == Some(pool))
        || wanted
            .iter()
            .any(|p| p.port_pool_ref.as_deref() == Some(pool))
        || held.iter().filter(|p| p.external_port.is_some()).count() < wanted.len()
        || !is_ready(st.and_then(|s| s.common.conditions.as_deref()))
}

/// The PortRule that carries port `port` of VmNetwork `vm`.
pub fn child_name(vm: &str, port: &str) -> String {
    format!("{vm}-{port}")
}

fn release_all(ctx: &Context, v: &VmNetwork) {
    let me = claimant(v);
    let mut alloc = lock(&ctx.alloc);
    alloc.addresses.release(&me);
    // Every port it holds, those removed from the spec earlier included.
    for c in alloc.ports.held_by(&me) {
        alloc.ports.release(&c);
    }
}

/// Deletes the PortRules of a VmNetwork that is being deleted, 8 at a time, rather than
/// leaving them to the garbage collector, which deletes about 20 objects a second
/// (kube-controller-manager's default client rate) and so made deleting a thousand
/// VmNetworks take over a minute for a router that needs a second. A deletion that asked
/// to orphan the dependents (`--cascade=orphan`) keeps them, as the collector would.
/// Failures are left to the collector, which deletes them anyway.
async fn delete_children(ctx: &Context, v: &VmNetwork) {
    let orphaning = v.finalizers().iter().any(|f| f == "orphan");
    let (Some(uid), false) = (v.metadata.uid.as_deref(), orphaning) else {
        return;
    };
    let ns = v.metadata.namespace.clone().unwrap_or_default();
    let name = v.metadata.name.clone().unwrap_or_default();
    let rules: Api<PortRule> = Api::namespaced(ctx.client.clone(), &ns);
    let children: Vec<String> = v
        .status
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|p| {
            p.port_rule
                .clone()
                .unwrap_or_else(|| child_name(&name, &p.name))
        })
        .filter(|c| {
            ctx.stores
                .portrules
                .get(&ObjectRef::new(c).within(&ns))
                .is_some_and(|r| {
                    r.metadata.deletion_timestamp.is_none()
                        && r.owner_references().iter().any(|o| o.uid == uid)
                })
        })
        .collect();
    use futures::StreamExt as _;
    futures::stream::iter(children)
        .for_each_concurrent(8, |c| {
            let rules = rules.clone();
            async move {
                if let Err(e) = rules.delete(&c, &DeleteParams::background()).await {
                    tracing::debug!(portrule = %c, error = %e, "not deleted (the garbage collector will)");
                }
            }
        })
        .await;
}

/// What a VmNetwork holds after an allocation: everything its spec asks for, or (when some
/// of it cannot be had) exactly what it held before, which for a new VmNetwork is nothing.
#[derive(Debug)]
pub struct Outcome {
    /// The address held, and the IpPool it is from.
    pub address: Option<(IpAddr, Option<String>)>,
    /// The ports held.
    pub ports: Vec<VmPortStatus>,
    /// Why the spec cannot be satisfied: where (`address`, `port ssh`) and the outcome.
    pub problem: Option<(String, AllocError)>,
}

/// The status entry of a held port.
fn port_status(
    alloc: &crate::context::Allocators,
    vm: &str,
    item: &str,
    held: &Assigned<PortAllocation>,
) -> VmPortStatus {
    VmPortStatus {
        name: item.to_owned(),
        external_address: held
            .pool
            .as_deref()
            .and_then(|n| alloc.ports.get(n))
            .and_then(|pool| pool.spec().external_address.clone()),
        external_port: Some(held.value.first),
        protocol: Some(api_protocol(held.value.protocol)),
        port_pool: held.pool.clone(),
        port_rule: Some(child_name(vm, item)),
        ready: None,
        expired: None,
    }
}

fn api_protocol(p: vmnet_core::alloc::PortProtocol) -> vmnet_api::PortProtocol {
    match p {
        vmnet_core::alloc::PortProtocol::Tcp => vmnet_api::PortProtocol::Tcp,
        vmnet_core::alloc::PortProtocol::Udp => vmnet_api::PortProtocol::Udp,
        vmnet_core::alloc::PortProtocol::TcpUdp => vmnet_api::PortProtocol::TcpUdp,
    }
}

/// Allocates (or confirms) the address and every port, all or nothing: if any of them
/// cannot be had, the VmNetwork is put back to exactly what it held before (nothing is
/// taken that it could not use, nothing it used is lost). Never moves what is held.
pub fn allocate(ctx: &Context, v: &VmNetwork) -> Outcome {
    let me = claimant(v);
    let vm = v.metadata.name.clone().unwrap_or_default();
    let router = v.spec.router.as_str();
    let mut alloc = lock(&ctx.alloc);
    let before_address = alloc.addresses.lookup(&me);
    let before_ports: Vec<(Claimant, Assigned<PortAllocation>)> = alloc
        .ports
        .held_by(&me)
        .into_iter()
        .filter_map(|c| {
            let held = alloc.ports.lookup(&c)?;
            Some((c, held))
        })
        .collect();

    let attempt = (|| {
        let request = match v.spec.address.as_deref().map(str::parse::<IpAddr>) {
            Some(Ok(ip)) => AddressRequest::Fixed(ip),
            Some(Err(_)) => {
                return Err((
                    "address".to_owned(),
                    AllocError::InvalidRequest {
                        message: "spec.address is not an IP address".into(),
                    },
                ));
            }
            None => AddressRequest::ANY,
        };
        let address = alloc
            .addresses
            .allocate(&me, v.spec.ip_pool_ref.as_deref(), request)
            .map_err(|e| ("address".to_owned(), e))?;
        let wanted: BTreeSet<&str> = v
            .spec
            .ports
            .iter()
            .flatten()
            .map(|p| p.name.as_str())
            .collect();
        let mut ports = Vec::new();
        for p in v.spec.ports.iter().flatten() {
            let who = me.clone().with_item(p.name.clone());
            let proto = protocol(p.protocol);
            let req = match p.external_port {
                Some(port) => PortRequest::fixed(proto, port),
                None => PortRequest::auto(proto),
            };
            let held = alloc
                .ports
                .allocate(&who, router, p.port_pool_ref.as_deref(), req)
                .map_err(|e| (format!("port {}", p.name), e))?;
            ports.push(port_status(&alloc, &vm, &p.name, &held));
        }
        // Ports dropped from the spec give their external port back.
        for c in alloc.ports.held_by(&me) {
            if c.item.as_deref().is_some_and(|i| !wanted.contains(i)) {
                alloc.ports.release(&c);
            }
        }
        Ok(((address.value, address.pool), ports))
    })();
    match attempt {
        Ok((address, ports)) => Outcome {
            address: Some(address),
            ports,
            problem: None,
        },
        Err(problem) => {
            // Back to exactly what was held before this attempt.
            alloc.addresses.restore(&me, before_address.as_ref());
            for c in alloc.ports.held_by(&me) {
                alloc.ports.release(&c);
            }
            for (c, held) in &before_ports {
                alloc.ports.restore(c, router, Some(held));
            }
            let ports = before_ports
                .iter()
                .map(|(c, held)| {
                    port_status(&alloc, &vm, c.item.as_deref().unwrap_or_default(), held)
                })
                .collect();
            Outcome {
                address: before_address.map(|a| (a.value, a.pool)),
                ports,
                problem: Some(problem),
            }
        }
    }
}

/// `ssh=203.0.113.10:30022/tcp` (`*` for the address when the rule takes the router's
/// inbound interface, any address).
fn endpoint_text(p: &VmPortStatus) -> Option<String> {
    let addr = p.external_address.as_deref().unwrap_or("*");
    let proto = p.protocol.map_or("tcp", |p| p.as_str());
    let note = if p.expired == Some(true) {
        " (expired)"
    } else {
        ""
    };
    Some(format!(
        "{}={addr}:{}/{proto}{note}",
        p.name, p.external_port?
    ))
}

/// The spec of the PortRule that carries `port`, or why there can be none.
pub fn child_spec(
    ctx: &Context,
    v: &VmNetwork,
    address: IpAddr,
    port: &vmnet_api::VmPort,
    st: &VmPortStatus,
) -> Result<serde_json::Value, String> {
    let name = v.metadata.name.as_deref().unwrap_or_default();
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
    let pool = st
        .port_pool
        .as_deref()
        .and_then(|n| ctx.stores.portpools.get(&ObjectRef::new(n)));
    let interface = pool
        .as_ref()
        .and_then(|p| p.spec.inbound_interface.clone())
        .or_else(|| {
            // A fixed port outside every pool arrives on the router's default interface.
            ctx.stores
                .routers
                .get(&ObjectRef::new(&v.spec.router))
                .and_then(|r| r.spec.default_inbound_interface.clone())
        });
    if let Some(i) = interface {
        spec["inboundInterface"] = json!(i);
    } else if st.external_address.is_none() {
        return Err(format!(
            "port {}: its PortRule would have neither an external address nor an inbound \
             interface; name a portPoolRef with an externalAddress, or set the router's \
             spec.defaultInboundInterface",
            port.name
        ));
    }
    if let Some(s) = &port.source_ranges {
        spec["sourceRanges"] = json!(s);
    }
    if let Some(at) = &port.expires_at {
        spec["expiresAt"] = json!(at);
    }
    if let Some(h) = port.hairpin {
        spec["hairpin"] = json!(h);
    }
    // The VM's policy is its rules' policy: deleting it with Orphan leaves them in place.
    if let Some(p) = v.spec.deletion_policy {
        spec["deletionPolicy"] = json!(p);
    }
    Ok(normalise(&spec))
}

/// Whether `child` is Ready for exactly `spec`: its spec is the wanted one and its status
/// describes that generation.
fn child_ready(child: &PortRule, spec: &serde_json::Value) -> bool {
    let status = child.status.as_ref();
    json!(child.spec) == *spec
        && status.and_then(|s| s.common.observed_generation) == child.metadata.generation
        && is_ready(status.and_then(|s| s.common.conditions.as_deref()))
}

/// Whether `child` has expired for exactly `spec`: its spec is the wanted one, and the
/// writer said `Expired` for that generation (so its rule is off the router).
fn child_expired(child: &PortRule, spec: &serde_json::Value) -> bool {
    let status = child.status.as_ref();
    json!(child.spec) == *spec
        && status.and_then(|s| s.common.observed_generation) == child.metadata.generation
        && status
            .and_then(|s| s.common.conditions.as_deref())
            .into_iter()
            .flatten()
            .any(|c| c.status == "True" && c.reason == Reason::Expired.as_str())
}

/// A condition's reason and message.
type Said = Option<(Reason, String)>;

/// What a not-Ready child says about itself: a Stalled reason (for the generation it has),
/// or a Reconciling one worth passing up (RouterUnreachable, Deleting, ...).
fn child_state(child: Option<&PortRule>) -> (Said, Said) {
    let conds = child
        .and_then(|c| c.status.as_ref())
        .and_then(|s| s.common.conditions.as_deref())
        .unwrap_or_default();
    let fresh = child.is_some_and(|c| {
        c.status.as_ref().and_then(|s| s.common.observed_generation) == c.metadata.generation
    });
    let find = |t: &str| {
        conds
            .iter()
            .find(|c| c.type_ == t && c.status == "True")
            // Every reason on a PortRule is one of ours; one from elsewhere reads as Waiting.
            .map(|c| {
                (
                    Reason::parse(&c.reason).unwrap_or(Reason::Waiting),
                    c.message.clone(),
                )
            })
    };
    let stalled = find("Stalled").filter(|_| fresh);
    let waiting =
        find("Reconciling").filter(|(r, _)| !matches!(r, Reason::Allocated | Reason::Programming));
    (stalled, waiting)
}

async fn apply(v: &VmNetwork, ctx: &Context) -> Result<Action, Error> {
    let ns = v.metadata.namespace.clone().unwrap_or_default();
    let name = v.metadata.name.clone().unwrap_or_default();
    let g = v.metadata.generation;
    let outcome = allocate(ctx, v);
    let prev = v.status.clone().unwrap_or_default();
    let prev_conds = prev.common.conditions.as_deref();
    let api: Api<VmNetwork> = Api::namespaced(ctx.client.clone(), &ns);
    let rules: Api<PortRule> = Api::namespaced(ctx.client.clone(), &ns);
    let cached = |cname: &str| {
        let key = ObjectRef::new(cname).within(&ns);
        ctx.written.fresher(&key, ctx.stores.portrules.get(&key))
    };

    // Children are written only once the whole allocation is held; while it is not, the
    // rules of what was held before stay as they are.
    let mut port_status = outcome.ports.clone();
    let mut not_ready = Vec::new();
    let mut stalled_child = None;
    let mut waiting_child: Option<(Reason, String)> = None;
    let mut unprogrammable = None;
    let mut expired_ports: Vec<String> = Vec::new();
    let mut wanted = BTreeSet::new();
    if let (None, Some((address, _))) = (&outcome.problem, &outcome.address) {
        let owner = v
            .controller_owner_ref(&())
            .ok_or_else(|| Error::Waiting("VmNetwork has no uid yet".into()))?;
        for st in &mut port_status {
            let Some(port) = v.spec.ports.iter().flatten().find(|p| p.name == st.name) else {
                continue;
            };
            let cname = child_name(&name, &port.name);
            wanted.insert(cname.clone());
            let spec = match child_spec(ctx, v, *address, port, st) {
                Ok(spec) => spec,
                Err(why) => {
                    unprogrammable.get_or_insert(why);
                    st.ready = Some(false);
                    continue;
                }
            };
            let mut child = cached(&cname);
            let current = child.as_ref().is_some_and(|c| {
                c.owner_references().iter().any(|o| o.uid == owner.uid) && json!(c.spec) == spec
            });
            // A child on its way out is left to go (its rule leaves the router first); the
            // watch brings this VmNetwork back when it is gone, and a new one is made then.
            let leaving = child
                .as_ref()
                .is_some_and(|c| c.metadata.deletion_timestamp.is_some());
            if !current && !leaving {
                let body = json!({
                    "apiVersion": "vmnet.dev/v1alpha1",
                    "kind": "PortRule",
                    "metadata": {
                        "name": cname,
                        "namespace": ns,
                        "labels": { VMNETWORK_LABEL: name },
                        "ownerReferences": [owner],
                        // Made with the PortRule controller's finalizer: one write fewer
                        // than adding it after the create.
                        "finalizers": [FINALIZER],
                    },
                    "spec": spec,
                });
                // The response is newer than the cache: it decides readiness below.
                let written = rules
                    .patch(
                        &cname,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&body),
                    )
                    .await?;
                let written = Arc::new(written);
                ctx.written.remember(written.clone());
                child = Some(written);
            }
            let ready = child.as_deref().is_some_and(|c| child_ready(c, &spec));
            st.ready = Some(ready);
            // An expired port is as its spec asks once its rule is off the router: it does
            // not hold the VmNetwork's readiness back (see docs/expiring-forwards.md).
            let expired = !ready && child.as_deref().is_some_and(|c| child_expired(c, &spec));
            st.expired = expired.then_some(true);
            if expired {
                expired_ports.push(format!(
                    "{} at {}",
                    st.name,
                    port.expires_at.as_deref().unwrap_or_default()
                ));
            } else if !ready {
                not_ready.push(st.name.clone());
                let (stalled, waiting) = child_state(child.as_deref());
                if let Some((r, m)) = stalled {
                    stalled_child.get_or_insert((st.name.clone(), r, m));
                }
                if let Some(w) = waiting {
                    waiting_child.get_or_insert(w);
                }
            }
        }
        // Ports removed from the spec: their PortRules go (their finalizers take the rules
        // off the router first). Their names are those the status listed.
        for old in prev.ports.iter().flatten() {
            let cname = old
                .port_rule
                .clone()
                .unwrap_or_else(|| child_name(&name, &old.name));
            if wanted.contains(&cname) {
                continue;
            }
            let Some(r) = cached(&cname) else {
                continue;
            };
            let ours = r.owner_references().iter().any(|o| o.uid == owner.uid);
            if ours && r.metadata.deletion_timestamp.is_none() {
                match rules.delete(&cname, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    let endpoints: Vec<String> = port_status.iter().filter_map(endpoint_text).collect();
    let (state, reason, message) = if let Some((place, e)) = &outcome.problem {
        let kept = if outcome.address.is_none() && outcome.ports.is_empty() {
            "; it holds no address or port until this is resolved".to_owned()
        } else {
            "; nothing changed: it keeps the address and ports it held before".to_owned()
        };
        (
            State::Stalled,
            Reason::from(e),
            format!("{place}: {e}{kept}"),
        )
    } else if let Some(why) = unprogrammable {
        (State::Stalled, Reason::InvalidRequest, why)
    } else if let Some((port, reason, msg)) = stalled_child {
        (State::Stalled, reason, format!("port {port}: {msg}"))
    } else if !not_ready.is_empty() {
        let (reason, why) = waiting_child.map_or_else(
            || (Reason::Programming, String::new()),
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
    } else if expired_ports.is_empty() {
        (
            State::Ready,
            Reason::Programmed,
            format!("{} port(s) forwarded", port_status.len()),
        )
    } else {
        (
            State::Ready,
            Reason::Programmed,
            format!(
                "{} port(s) forwarded; expired: {} (move spec.ports[].expiresAt into the \
                 future to bring a port back)",
                port_status.len() - expired_ports.len(),
                expired_ports.join(", ")
            ),
        )
    };
    let address = outcome.address.as_ref().map(|(ip, _)| ip.to_string());
    // The DHCP static mapping of spec.mac counts towards Ready like a port.
    let (state, reason, message) = match (state, dhcp(v, address.as_deref())) {
        (_, Dhcp::Nothing) => (state, reason, message),
        (_, Dhcp::Clear) => {
            ctx.nudge(&v.spec.router);
            (state, reason, message)
        }
        (State::Stalled, _) | (_, Dhcp::Done) => (state, reason, message),
        (_, Dhcp::Refused(r, m)) => (State::Stalled, r, format!("DHCP static mapping: {m}")),
        (State::Ready, Dhcp::Waiting(mac)) => {
            ctx.nudge(&v.spec.router);
            (
                State::Reconciling,
                Reason::Programming,
                format!("waiting for the router's DHCP static mapping of {mac}"),
            )
        }
        (_, Dhcp::Waiting(_)) => {
            ctx.nudge(&v.spec.router);
            (state, reason, message)
        }
    };
    let ip_pool = outcome.address.as_ref().and_then(|(_, p)| p.clone());
    let endpoints = (!endpoints.is_empty()).then(|| endpoints.join(", "));
    let held_same =
        prev.address == address && prev.ip_pool == ip_pool && prev.endpoints == endpoints;
    let prev_ports = prev.ports.as_deref().unwrap_or_default();
    let unchanged = same(prev_conds, state, reason, &message, g)
        && held_same
        && prev_ports == port_status.as_slice();
    // While the router programs the ports, which of them is done is progress within one
    // state, shown on each PortRule: the VmNetwork is written when it got its allocation
    // and again when every port is forwarded, not once per port (one write per state).
    let progress_only = state == State::Reconciling
        && same_state(prev_conds, State::Reconciling, reason, g)
        && held_same
        && same_ignoring_readiness(prev_ports, &port_status);
    if !unchanged && !progress_only {
        let status = json!({
            "observedGeneration": g,
            "address": address,
            "ipPool": ip_pool,
            "endpoints": endpoints,
            "ports": if port_status.is_empty() { None } else { Some(&port_status) },
            "conditions": conditions(prev_conds, state, reason, &message, g),
        });
        let written = api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?;
        ctx.written_vms.remember(Arc::new(written));
    }
    // A child's change wakes this VmNetwork (it owns them), so waiting needs no polling; a
    // stalled allocation heals when something is freed elsewhere, which raises no event
    // here: look again.
    let retry = match state {
        State::Stalled => Duration::from_secs(10),
        State::Reconciling => Duration::from_secs(60),
        State::Ready => Duration::from_secs(600),
    };
    Ok(Action::requeue(retry))
}

/// Where a VmNetwork's DHCP static mapping stands, from the status the writer wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dhcp {
    /// No MAC, no mapping.
    Nothing,
    /// No MAC (any more), but the mapping is still shown: the writer removes it.
    Clear,
    /// On the router for this MAC and address.
    Done,
    /// Not yet for this MAC and address (the MAC, for the message).
    Waiting(String),
    /// Refused by the operator's checks or the router.
    Refused(Reason, String),
}

fn dhcp(v: &VmNetwork, address: Option<&str>) -> Dhcp {
    let shown = v.status.as_ref().and_then(|s| s.dhcp.as_ref());
    let Some(mac) = v.spec.mac.as_deref() else {
        return if shown.is_some() {
            Dhcp::Clear
        } else {
            Dhcp::Nothing
        };
    };
    let Some(address) = address else {
        // No address held yet: the allocation's own condition says why.
        return Dhcp::Nothing;
    };
    match shown {
        Some(d) if d.mac.as_deref() == Some(mac) && d.address.as_deref() == Some(address) => {
            match d.state.as_str() {
                "Programmed" => Dhcp::Done,
                _ => Dhcp::Refused(
                    d.reason
                        .as_deref()
                        .and_then(Reason::parse)
                        .unwrap_or(Reason::InvalidRequest),
                    d.message.clone().unwrap_or_default(),
                ),
            }
        }
        _ => Dhcp::Waiting(mac.to_owned()),
    }
}

/// Whether two port lists hold the same allocations, whichever of them are ready.
fn same_ignoring_readiness(a: &[VmPortStatus], b: &[VmPortStatus]) -> bool {
    let strip = |p: &VmPortStatus| VmPortStatus {
        ready: None,
        expired: None,
        ..p.clone()
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| strip(x) == strip(y))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn vm(spec: serde_json::Value, status: serde_json::Value) -> VmNetwork {
        let mut v = VmNetwork::new("vm", serde_json::from_value(spec).unwrap());
        v.status = serde_json::from_value(status).unwrap();
        v
    }

    fn ready() -> serde_json::Value {
        json!([{"type": "Ready", "status": "True", "reason": "Programmed", "message": "",
                "lastTransitionTime": "2026-12-01T00:00:00Z"}])
    }

    #[test]
    fn a_pool_change_wakes_only_the_vmnetworks_it_can_affect() {
        let settled = vm(
            json!({"router": "edge", "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}]}),
            json!({"address": "10.0.0.5", "ipPool": "a", "conditions": ready(),
                   "ports": [{"name": "ssh", "externalPort": 30000, "portPool": "p"}]}),
        );
        assert!(affected_by_ip_pool(&settled, "a"));
        assert!(!affected_by_ip_pool(&settled, "b"), "another pool's change");
        assert!(affected_by_port_pool(&settled, "p", "edge"));
        assert!(!affected_by_port_pool(&settled, "q", "edge"));
        assert!(!affected_by_port_pool(&settled, "p", "other-router"));
        // Waiting for an address or a port: any pool may now serve it.
        let waiting = vm(
            json!({"router": "edge", "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}]}),
            json!({"conditions": [{"type": "Stalled", "status": "True", "reason": "PoolExhausted",
                   "message": "", "lastTransitionTime": "2026-12-01T00:00:00Z"}]}),
        );
        assert!(affected_by_ip_pool(&waiting, "b"));
        assert!(affected_by_port_pool(&waiting, "q", "edge"));
    }
}
