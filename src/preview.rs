//! `vmnet-operator plan`: what the next pass would do to each router, read-only.
//!
//! It reads the five kinds from the cluster (one LIST each) and each router's rules (the
//! same reads as the observe step), lays manifests not yet applied over the cluster's
//! objects (`-f`), gives new objects what today's pools would give them (the controllers'
//! own allocation code, in memory), and prints the plan step's value per router. It never
//! writes to the cluster or to a router.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use vmnet_api::{IpPool, PortPool, PortRule, PortRuleStatus, VmNetwork, VyosRouter};
use vmnet_plan::desired::Key;
use vmnet_plan::plan::{Inputs, Plan, plan};

use crate::context::{Context, Settings, Stores, rule_claimant};
use crate::controller::vmnetwork::{VMNETWORK_LABEL, allocate, child_name, child_spec};
use crate::metrics::Metrics;
use crate::writer::observe::{Access, Connection, observe};
use crate::writer::paused_rules;

/// What `plan` was asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Only this router.
    pub router: Option<String>,
    /// Manifests (files or directories of `*.yaml`/`*.yml`/`*.json`) laid over the cluster.
    pub files: Vec<PathBuf>,
    /// With `files`: VmNetworks and PortRules in the files' namespaces that the files do
    /// not contain count as deleted (as `kubectl apply --prune` would delete them).
    pub prune: bool,
    /// Namespaces whose Secrets may hold API keys (`None`: any the caller may read).
    pub credentials_namespaces: Option<Vec<String>>,
    /// Deadline of each request to a router.
    pub timeout: std::time::Duration,
}

/// One router's plan, or why there is none.
#[derive(Debug)]
pub struct RouterPlan {
    /// The router.
    pub router: String,
    /// The plan, or the error that kept it from being made.
    pub plan: Result<Plan, String>,
    /// The DHCP static mappings' change (read on every router).
    pub dhcp: Option<vmnet_plan::dhcp::Plan>,
    /// The owned DHCP mappings on the router now.
    pub dhcp_owned:
        std::collections::BTreeMap<vyos_client::dhcp::MappingKey, vyos_client::dhcp::StaticMapping>,
    /// The forward-filter change (routers with `spec.firewall`).
    pub firewall: Option<vmnet_plan::firewall::Plan>,
}

/// The plans of every router asked for.
pub async fn plans(client: Client, req: &Request) -> anyhow::Result<Vec<RouterPlan>> {
    let mut routers = list::<VyosRouter>(&client).await?;
    let ippools = list::<IpPool>(&client).await?;
    let portpools = list::<PortPool>(&client).await?;
    let mut vmnetworks = list::<VmNetwork>(&client).await?;
    let mut portrules = list::<PortRule>(&client).await?;

    let mut changed_vms = BTreeSet::new();
    if !req.files.is_empty() {
        let docs = read_manifests(&req.files)?;
        let mut seen_ns = BTreeSet::new();
        let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new();
        for doc in docs {
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            let ns = doc["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned();
            match kind.as_str() {
                "VmNetwork" => {
                    let new: VmNetwork = parse(&doc, &kind)?;
                    let name = new.name_any();
                    seen_ns.insert(ns.clone());
                    seen.insert((kind.clone(), ns.clone(), name.clone()));
                    changed_vms.insert((ns.clone(), name.clone()));
                    overlay(&mut vmnetworks, new, &ns);
                }
                "PortRule" => {
                    let new: PortRule = parse(&doc, &kind)?;
                    seen_ns.insert(ns.clone());
                    seen.insert((kind.clone(), ns.clone(), new.name_any()));
                    overlay(&mut portrules, new, &ns);
                }
                "VyosRouter" => {
                    let new: VyosRouter = parse(&doc, &kind)?;
                    overlay(&mut routers, new, "");
                }
                // Pools, Secrets and anything else: as the cluster holds them.
                _ => {}
            }
        }
        if req.prune {
            let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            );
            for v in &mut vmnetworks {
                let ns = v.namespace().unwrap_or_default();
                if seen_ns.contains(&ns)
                    && !seen.contains(&("VmNetwork".into(), ns.clone(), v.name_any()))
                {
                    v.meta_mut().deletion_timestamp = Some(now.clone());
                }
            }
            for p in &mut portrules {
                let ns = p.namespace().unwrap_or_default();
                let child = p.labels().contains_key(VMNETWORK_LABEL);
                if seen_ns.contains(&ns)
                    && !child
                    && !seen.contains(&("PortRule".into(), ns.clone(), p.name_any()))
                {
                    p.meta_mut().deletion_timestamp = Some(now.clone());
                }
            }
        }
    }

    let ctx = context(
        client.clone(),
        &routers,
        &ippools,
        &portpools,
        &vmnetworks,
        &portrules,
    );
    crate::run::rebuild(&ctx);
    let portrules = settle_children(&ctx, &vmnetworks, portrules, &changed_vms);
    let portrules = number_new_rules(&ctx, &routers, portrules);

    let mut out = Vec::new();
    let paused = paused_rules(&ctx, &portrules);
    for r in &routers {
        let name = r.name_any();
        if req.router.as_ref().is_some_and(|want| *want != name) {
            continue;
        }
        let access = Access {
            namespaces: req.credentials_namespaces.as_deref(),
            timeout: req.timeout,
            secret_version: None,
            observer: None,
        };
        let mut connection = Connection::default();
        let result = async {
            let client = connection
                .client(&ctx.client, access, r)
                .await
                .map_err(|e| crate::writer::describe(&e).1)?;
            let version = connection
                .version(&client)
                .await
                .map_err(|e| crate::writer::describe(&e).1)?;
            let observed = observe(&client, &r.spec, true)
                .await
                .map_err(|e| e.to_string())?;
            let nat = plan(&Inputs {
                router: &name,
                spec: &r.spec,
                portrules: &portrules,
                check: &|p| ctx.tenant_check(p),
                observed: &observed,
                paused: &paused,
                now: k8s_openapi::jiff::Timestamp::now(),
                renderings: None,
            });
            let schema = crate::writer::dhcp::schema(&version);
            // The same pure steps as the writer's DHCP and firewall steps.
            let server = client.dhcp_server().await.map_err(|e| e.to_string())?;
            let wants = dhcp_wants(&name, &vmnetworks);
            let dhcp = vmnet_plan::dhcp::plan(&server, &wants, schema);
            let owned = server
                .mappings
                .into_iter()
                .filter(|(k, _)| vmnet_plan::dhcp::owner_of(&k.name).is_some())
                .collect();
            let firewall = match &r.spec.firewall {
                None => None,
                Some(_) => {
                    let filter = client.forward_filter().await.map_err(|e| e.to_string())?;
                    let groups = observed.owned_groups.keys().copied().collect();
                    Some(vmnet_plan::firewall::plan(
                        &r.spec,
                        &nat.target,
                        &filter,
                        &groups,
                        schema,
                    ))
                }
            };
            Ok::<_, String>((nat, dhcp, owned, firewall))
        }
        .await;
        out.push(match result {
            Ok((nat, dhcp, dhcp_owned, firewall)) => RouterPlan {
                router: name,
                plan: Ok(nat),
                dhcp: Some(dhcp),
                dhcp_owned,
                firewall,
            },
            Err(e) => RouterPlan {
                router: name,
                plan: Err(e),
                dhcp: None,
                dhcp_owned: Default::default(),
                firewall: None,
            },
        });
    }
    if let Some(want) = &req.router
        && out.is_empty()
    {
        bail!("no VyosRouter named {want:?}");
    }
    Ok(out)
}

/// The VmNetworks of `router` that want a DHCP static mapping (a MAC and an address), as
/// the writer's DHCP step takes them.
fn dhcp_wants(router: &str, vmnetworks: &[VmNetwork]) -> Vec<vmnet_plan::dhcp::Want> {
    vmnetworks
        .iter()
        .filter(|v| v.spec.router == router && v.metadata.deletion_timestamp.is_none())
        .filter_map(|v| {
            Some(vmnet_plan::dhcp::Want {
                owner: (v.metadata.namespace.clone()?, v.metadata.name.clone()?),
                address: v.status.as_ref()?.address.as_deref()?.parse().ok()?,
                mac: v.spec.mac.clone()?,
            })
        })
        .collect()
}

async fn list<K>(client: &Client) -> anyhow::Result<Vec<K>>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let api: Api<K> = Api::all(client.clone());
    Ok(api
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing {}", K::plural(&())))?
        .items)
}

fn parse<K: serde::de::DeserializeOwned>(doc: &Value, kind: &str) -> anyhow::Result<K> {
    serde_json::from_value(doc.clone()).with_context(|| {
        format!(
            "{kind} {:?} in the manifests is not valid",
            doc["metadata"]["name"].as_str().unwrap_or_default()
        )
    })
}

/// Lays `new` (from a manifest) over the cluster's copy: its spec and metadata from the
/// file, its status (what it holds) and identity from the cluster.
fn overlay<K>(objects: &mut Vec<K>, mut new: K, ns: &str)
where
    K: Resource + ResourceExt + Clone + StatusOf,
{
    if !ns.is_empty() {
        new.meta_mut().namespace = Some(ns.to_owned());
    }
    let same = |o: &K| o.name_any() == new.name_any() && o.namespace() == new.namespace();
    match objects.iter_mut().find(|o| same(o)) {
        Some(old) => {
            let meta = old.meta().clone();
            let generation = meta.generation.map(|g| g + 1);
            new.copy_status_from(old);
            let m = new.meta_mut();
            m.uid = meta.uid;
            m.creation_timestamp = meta.creation_timestamp;
            m.resource_version = meta.resource_version;
            m.owner_references = meta.owner_references;
            m.generation = generation;
            *old = new;
        }
        None => {
            let m = new.meta_mut();
            m.uid = Some(format!("planned-{}", m.name.clone().unwrap_or_default()));
            m.generation = Some(1);
            m.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
            objects.push(new);
        }
    }
}

/// Kinds whose status an overlay keeps.
trait StatusOf {
    fn copy_status_from(&mut self, old: &Self);
}

impl StatusOf for VmNetwork {
    fn copy_status_from(&mut self, old: &Self) {
        self.status = old.status.clone();
    }
}

impl StatusOf for PortRule {
    fn copy_status_from(&mut self, old: &Self) {
        self.status = old.status.clone();
    }
}

impl StatusOf for VyosRouter {
    fn copy_status_from(&mut self, old: &Self) {
        self.status = old.status.clone();
    }
}

fn read_manifests(paths: &[PathBuf]) -> anyhow::Result<Vec<Value>> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files)?;
    }
    let mut out = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc)
                .with_context(|| format!("parsing {}", f.display()))?;
            if v.is_null() {
                continue;
            }
            if v["kind"] == "List" {
                out.extend(v["items"].as_array().cloned().unwrap_or_default());
            } else {
                out.push(v);
            }
        }
    }
    Ok(out)
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("reading {}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let manifest = e
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"));
            if e.is_dir() || manifest {
                collect(&e, out)?;
            }
        }
        Ok(())
    } else if p.is_file() {
        out.push(p.to_path_buf());
        Ok(())
    } else {
        bail!("{}: no such file or directory", p.display())
    }
}

fn store<K>(objects: &[K]) -> Store<K>
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    // As a watch's initial list fills it: Init, one InitApply each, InitDone (which swaps
    // the listed objects in).
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o.clone()));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

fn context(
    client: Client,
    routers: &[VyosRouter],
    ippools: &[IpPool],
    portpools: &[PortPool],
    vmnetworks: &[VmNetwork],
    portrules: &[PortRule],
) -> Context {
    let stores = Stores {
        routers: store(routers),
        ippools: store(ippools),
        portpools: store(portpools),
        vmnetworks: store(vmnetworks),
        portrules: store(portrules),
    };
    Context::new(
        client,
        Settings::default(),
        stores,
        Arc::new(Metrics::new()),
    )
}

/// The PortRules the VmNetworks of the manifests would have: allocated from today's pools
/// by the controller's own code, their children's specs as it would write them. A VmNetwork
/// being deleted takes its children (with its deletion policy) along.
fn settle_children(
    ctx: &Context,
    vmnetworks: &[VmNetwork],
    mut portrules: Vec<PortRule>,
    changed: &BTreeSet<(String, String)>,
) -> Vec<Arc<PortRule>> {
    for v in vmnetworks {
        let ns = v.namespace().unwrap_or_default();
        let name = v.name_any();
        let of_this = |p: &PortRule| {
            p.namespace().as_deref() == Some(ns.as_str())
                && p.labels().get(VMNETWORK_LABEL) == Some(&name)
        };
        if v.meta().deletion_timestamp.is_some() {
            for p in portrules.iter_mut().filter(|p| of_this(p)) {
                p.meta_mut().deletion_timestamp = v.meta().deletion_timestamp.clone();
                if p.spec.deletion_policy.is_none() {
                    p.spec.deletion_policy = v.spec.deletion_policy;
                }
            }
            continue;
        }
        if !changed.contains(&(ns.clone(), name.clone())) {
            continue;
        }
        let outcome = allocate(ctx, v);
        let Some((address, _)) = outcome.address.filter(|_| outcome.problem.is_none()) else {
            continue;
        };
        let mut wanted = BTreeSet::new();
        for st in &outcome.ports {
            let Some(port) = v.spec.ports.iter().flatten().find(|p| p.name == st.name) else {
                continue;
            };
            let Ok(spec) = child_spec(ctx, v, address, port, st) else {
                continue;
            };
            let cname = child_name(&name, &port.name);
            wanted.insert(cname.clone());
            let Ok(spec) = serde_json::from_value(spec) else {
                continue;
            };
            match portrules
                .iter_mut()
                .find(|p| p.namespace().as_deref() == Some(ns.as_str()) && p.name_any() == cname)
            {
                Some(p) => p.spec = spec,
                None => {
                    let mut p = PortRule::new(&cname, spec);
                    p.metadata.namespace = Some(ns.clone());
                    p.metadata.generation = Some(1);
                    p.metadata.creation_timestamp = v.meta().creation_timestamp.clone();
                    p.metadata.labels = Some(
                        [(VMNETWORK_LABEL.to_owned(), name.clone())]
                            .into_iter()
                            .collect(),
                    );
                    let owner = json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "VmNetwork",
                        "name": name, "uid": v.meta().uid, "controller": true});
                    p.metadata.owner_references = serde_json::from_value(json!([owner])).ok();
                    portrules.push(p);
                }
            }
        }
        // Ports the new spec no longer has: their PortRules go.
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        );
        for p in portrules
            .iter_mut()
            .filter(|p| of_this(p) && !wanted.contains(&p.name_any()))
        {
            p.meta_mut().deletion_timestamp = Some(now.clone());
        }
    }
    portrules.into_iter().map(Arc::new).collect()
}

/// Rule numbers for the PortRules that have none yet, as the PortRule controller would
/// allocate them.
fn number_new_rules(
    ctx: &Context,
    routers: &[VyosRouter],
    portrules: Vec<Arc<PortRule>>,
) -> Vec<Arc<PortRule>> {
    let mut sorted = portrules;
    sorted.sort_by_key(|p| {
        (
            p.metadata.creation_timestamp.clone().map(|t| t.0),
            Key::of(p),
        )
    });
    sorted
        .into_iter()
        .map(|p| {
            if p.status.as_ref().and_then(|s| s.rule_number).is_some()
                || p.metadata.deletion_timestamp.is_some()
            {
                return p;
            }
            let Some(router) = routers.iter().find(|r| r.name_any() == p.spec.router) else {
                return p;
            };
            let claimant = rule_claimant(
                p.metadata.namespace.as_deref().unwrap_or_default(),
                p.metadata.name.as_deref().unwrap_or_default(),
            );
            match ctx.with_rule_numbers(router, |r| r.allocate(&claimant)) {
                Ok(Ok(n)) => {
                    let mut p = (*p).clone();
                    let mut status = p.status.clone().unwrap_or_else(PortRuleStatus::default);
                    status.rule_number = Some(n);
                    p.status = Some(status);
                    Arc::new(p)
                }
                _ => p,
            }
        })
        .collect()
}

/// The plans as JSON: per router its rules, summary and the ops in the order they go.
pub fn to_json(plans: &[RouterPlan]) -> Value {
    let routers: Vec<Value> = plans
        .iter()
        .map(|rp| match &rp.plan {
            Ok(p) => json!({
                "router": rp.router,
                "summary": p.summary(),
                "rules": p.rules,
                "ops": p.all_ops().collect::<Vec<_>>(),
                "dhcp": rp.dhcp.as_ref().map(|d| json!({
                    "ops": d.ops,
                    "refused": d.verdicts.iter().filter_map(|((ns, name), v)| match v {
                        vmnet_plan::dhcp::Verdict::Refused(r, m) => Some(json!({
                            "vmnetwork": format!("{ns}/{name}"), "reason": r.as_str(), "message": m,
                        })),
                        vmnet_plan::dhcp::Verdict::Placed(_) => None,
                    }).collect::<Vec<_>>(),
                })),
                "firewall": rp.firewall.as_ref().map(|f| json!({
                    "ops": f.before_nat.iter().chain(&f.after_nat).collect::<Vec<_>>(),
                    "note": f.note,
                })),
            }),
            Err(e) => json!({ "router": rp.router, "error": e }),
        })
        .collect();
    json!({ "routers": routers })
}

/// The plans as text, router after router.
pub fn to_text(plans: &[RouterPlan]) -> String {
    let mut out = String::new();
    for rp in plans {
        match &rp.plan {
            Ok(p) => {
                out.push_str(&p.to_text(&rp.router));
                out.push_str(&extras_text(rp));
            }
            Err(e) => out.push_str(&format!("{}: error: {e}\n", rp.router)),
        }
    }
    out
}

/// The DHCP and forward-filter lines of a router's plan: `+`, `~`, `-` per mapping or
/// accept rule, `!` per VmNetwork whose mapping is refused, and a count.
fn extras_text(rp: &RouterPlan) -> String {
    let mut out = String::new();
    if let Some(d) = &rp.dhcp {
        let keys: BTreeSet<_> = d.target.keys().chain(rp.dhcp_owned.keys()).collect();
        for k in keys {
            let line = match (rp.dhcp_owned.get(k), d.target.get(k)) {
                (None, Some(m)) => format!(
                    "  + dhcp mapping {} in {} {}: {} {}",
                    k.name,
                    k.shared_network,
                    k.subnet,
                    m.ip_address.as_deref().unwrap_or("-"),
                    m.mac.as_deref().unwrap_or("-")
                ),
                (Some(a), Some(b)) if a.normalized() != b.normalized() => format!(
                    "  ~ dhcp mapping {}: {} {} -> {} {}",
                    k.name,
                    a.ip_address.as_deref().unwrap_or("-"),
                    a.mac.as_deref().unwrap_or("-"),
                    b.ip_address.as_deref().unwrap_or("-"),
                    b.mac.as_deref().unwrap_or("-")
                ),
                (Some(_), None) => format!(
                    "  - dhcp mapping {} in {} {}",
                    k.name, k.shared_network, k.subnet
                ),
                _ => continue,
            };
            out.push_str(&line);
            out.push('\n');
        }
        for ((ns, name), v) in &d.verdicts {
            if let vmnet_plan::dhcp::Verdict::Refused(r, m) = v {
                out.push_str(&format!("  ! dhcp {ns}/{name}: {} {m}\n", r.as_str()));
            }
        }
        if !d.ops.is_empty() {
            out.push_str(&format!("  dhcp: {} op(s)\n", d.ops.len()));
        }
    }
    if let Some(f) = &rp.firewall {
        let numbers: BTreeSet<u32> = f.target.keys().chain(f.owned.keys()).copied().collect();
        for n in numbers {
            let line = match (f.owned.get(&n), f.target.get(&n)) {
                (None, Some(r)) => format!(
                    "  + accept rule {n}: {} to {}:{}",
                    r.description.as_deref().unwrap_or("-"),
                    r.destination.address.as_deref().unwrap_or("*"),
                    r.destination.port.as_deref().unwrap_or("*")
                ),
                (Some(a), Some(b)) if a.normalized() != b.normalized() => {
                    format!(
                        "  ~ accept rule {n}: {}",
                        b.description.as_deref().unwrap_or("-")
                    )
                }
                (Some(a), None) => {
                    format!(
                        "  - accept rule {n}: {}",
                        a.description.as_deref().unwrap_or("-")
                    )
                }
                _ => continue,
            };
            out.push_str(&line);
            out.push('\n');
        }
        if let Some(note) = &f.note {
            out.push_str(&format!("  firewall: {note}\n"));
        }
        let ops = f.before_nat.len() + f.after_nat.len();
        if ops > 0 {
            out.push_str(&format!("  firewall: {ops} op(s)\n"));
        }
    }
    out
}

/// Whether the DHCP or forward-filter step has something to do.
fn extras_pending(rp: &RouterPlan) -> bool {
    rp.dhcp.as_ref().is_some_and(|d| !d.ops.is_empty())
        || rp
            .firewall
            .as_ref()
            .is_some_and(|f| !f.before_nat.is_empty() || !f.after_nat.is_empty())
}

/// `--detailed-exitcode`: 0 when nothing is to do, 2 when changes are pending, 1 when a
/// router could not be planned.
pub fn exit_code(plans: &[RouterPlan]) -> i32 {
    if plans.iter().any(|p| p.plan.is_err()) {
        1
    } else if plans
        .iter()
        .any(|p| p.plan.as_ref().is_ok_and(|p| !p.is_empty()) || extras_pending(p))
    {
        2
    } else {
        0
    }
}
