//! The plan step of a sync: from what was observed on a router and what the PortRules
//! declare, the change as a value. Per rule: add, change (which leaves, old → new), remove,
//! orphan (left on the router, no longer ours), refused (why), held (paused), and whether
//! it drifted (was edited on the router since the operator last programmed it); and the
//! ordered config ops, by rule number, that the apply step sends. Pure: no I/O.
//!
//! The writer applies exactly [`Plan::ops`], and `vmnet-operator plan` prints the same value,
//! so a preview can never differ from the change that follows it.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use vmnet_api::{DeletionPolicy, OrphanPolicy, PortRule, VyosRouterSpec};
use vyos_client::nat::{
    ConfigOp, NatKind, NatRule, NetworkGroup, OpKind, diff, diff_network_groups, render_rule,
};

use crate::desired::{Desired, Foreign, Incumbents, Key, desired_with};
use crate::hairpin::Hairpin;
use crate::render::{MARKER, Refusal, group_name, owner_of, rule_hash};

/// The annotation that pauses a VyosRouter (no writes to it), a VmNetwork or a PortRule
/// (its rule is left on the router as it is).
pub const PAUSED: &str = "vmnet.dev/paused";

/// Whether `annotations` pause the object that carries them.
pub fn is_paused(annotations: Option<&BTreeMap<String, String>>) -> bool {
    annotations
        .and_then(|a| a.get(PAUSED))
        .is_some_and(|v| v == "true")
}

/// What a rule's description becomes when its PortRule is deleted with
/// `deletionPolicy: Orphan`: without the marker, so the rule is no longer the operator's
/// and no later pass touches it; the old owner stays readable.
pub fn orphaned_description(description: &str) -> String {
    match description.strip_prefix(MARKER) {
        Some(rest) => format!("orphaned-by-vmnet {rest}"),
        None => description.to_owned(),
    }
}

/// A router's NAT rules and network-groups as the observe step read them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Rules in the owned range carrying the marker.
    pub owned: BTreeMap<u32, NatRule>,
    /// Rules in the owned range without it: never touched.
    pub foreign: BTreeMap<u32, NatRule>,
    /// The operator's network-groups, by the number of the rule that uses each.
    pub owned_groups: BTreeMap<u32, NetworkGroup>,
    /// The names of all other network-groups: never touched, never written over.
    pub foreign_groups: BTreeSet<String>,
    /// The operator's hairpin companions (`spec.hairpin`), by the number of their rule.
    pub owned_hairpin: BTreeMap<u32, Hairpin>,
    /// Rules in the hairpin range that are not the operator's, by the number of the rule
    /// whose hairpin they block, with what they are.
    pub foreign_hairpin: BTreeMap<u32, String>,
}

/// Everything the plan depends on.
pub struct Inputs<'a> {
    /// The router's name.
    pub router: &'a str,
    /// Its spec.
    pub spec: &'a VyosRouterSpec,
    /// The PortRules the operator sees (of every router; others are ignored).
    pub portrules: &'a [Arc<PortRule>],
    /// The tenant check.
    pub check: &'a dyn Fn(&PortRule) -> Result<(), Refusal>,
    /// What the router holds.
    pub observed: &'a Observed,
    /// PortRules whose rule is held as it is (paused themselves or through their VmNetwork).
    pub paused: &'a BTreeSet<Key>,
    /// The time the plan is for: a PortRule whose `spec.expiresAt` is not after it has
    /// expired, and its rule leaves the router.
    pub now: Timestamp,
    /// The rules rendered by earlier passes (`None`: render every rule).
    pub renderings: Option<&'a crate::render::Renderings>,
}

impl std::fmt::Debug for Inputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

/// One leaf that changes: its path below the rule, the value on the router, the value
/// declared (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leaf {
    /// Path below the rule (or the network-group), words joined by spaces.
    pub path: String,
    /// On the router now.
    pub old: Option<String>,
    /// After the change.
    pub new: Option<String>,
}

/// What happens to one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Action {
    /// Not on the router; will be.
    Add,
    /// On the router, different: these leaves change.
    Change {
        /// The leaves that change.
        leaves: Vec<Leaf>,
    },
    /// On the router, nothing declares it (orphan policy `sync`): removed.
    Remove,
    /// Its PortRule was deleted with `deletionPolicy: Orphan`: left on the router, its
    /// description loses the marker so no later pass removes it.
    Orphan,
    /// Refused: not programmed, for this reason.
    Refused {
        /// CamelCase reason.
        reason: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// Paused: left as it is on the router although it differs from what is declared.
    Held,
    /// Its `spec.expiresAt` has passed: removed from the router if it is there (`ops` > 0),
    /// its rule number and endpoint kept for when `expiresAt` moves.
    Expired {
        /// When it expired (RFC 3339).
        at: String,
    },
}

/// The plan for one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RulePlan {
    /// The rule number (none for a refused rule that has none yet).
    pub number: Option<u32>,
    /// The PortRule that declares or owned it, `namespace/name`.
    pub owner: Option<String>,
    /// What happens.
    #[serde(flatten)]
    pub action: Action,
    /// How it was edited on the router since the operator last programmed it, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drifted: Option<String>,
    /// Set/delete ops this rule takes (0 for refused and held rules).
    pub ops: usize,
}

/// Counts of a plan, as its summary line prints them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Rules to add.
    pub add: usize,
    /// Rules to change.
    pub change: usize,
    /// Rules to remove.
    pub remove: usize,
    /// Rules to give up (orphaned).
    pub orphan: usize,
    /// Rules refused.
    pub refused: usize,
    /// Rules held by a pause.
    pub held: usize,
    /// Rules whose `expiresAt` has passed (removed, or already off the router).
    pub expired: usize,
    /// Rules edited on the router (each also an add or a change).
    pub drifted: usize,
    /// Set/delete ops in all.
    pub ops: usize,
}

/// A router's next change.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// What the PortRules declare for this router (with refusals).
    pub desired: Desired,
    /// The owned rules as they are to be after the change (shared with `desired`).
    pub target: BTreeMap<u32, Arc<NatRule>>,
    /// The operator's network-groups after the change, by rule number.
    pub target_groups: BTreeMap<u32, NetworkGroup>,
    /// The hairpin companions after the change, by the number of their rule.
    pub target_hairpin: BTreeMap<u32, Hairpin>,
    /// The ops, by rule number, in the order they are sent; a rule's group ops go with it.
    pub ops: BTreeMap<u32, Vec<ConfigOp>>,
    /// Per rule, ordered by number (refused rules without one last).
    pub rules: Vec<RulePlan>,
    /// Drifted rule numbers and how.
    pub drifted: BTreeMap<u32, String>,
}

impl Plan {
    /// A copy of [`Plan::target`] that owns its rules (for comparing with what was read).
    pub fn target_rules(&self) -> BTreeMap<u32, NatRule> {
        self.target
            .iter()
            .map(|(n, r)| (*n, NatRule::clone(r)))
            .collect()
    }
}

/// The plan for one router.
pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let observed = inputs.observed;
    let incumbents: Incumbents<'_> = observed
        .owned
        .values()
        .filter_map(|r| owner_of(r.description.as_deref()))
        .collect();
    let mut want = desired_with(
        inputs.router,
        inputs.spec,
        inputs.portrules,
        inputs.check,
        Foreign {
            rules: &observed.foreign,
            groups: &observed.foreign_groups,
            hairpin: &observed.foreign_hairpin,
        },
        &incumbents,
        inputs.now,
        inputs.renderings,
    );
    let mine: Vec<&Arc<PortRule>> = inputs
        .portrules
        .iter()
        .filter(|p| p.spec.router == inputs.router)
        .collect();
    // By `(namespace, name)`, borrowed: no copy of every key per pass.
    let by_key: ByKey<'_> = mine
        .iter()
        .map(|p| {
            let m = &p.metadata;
            let key = (
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default(),
            );
            (key, *p)
        })
        .collect();
    let owner = |r: &NatRule| -> Option<Key> {
        owner_of(r.description.as_deref()).map(|(ns, name)| Key {
            namespace: ns.to_owned(),
            name: name.to_owned(),
        })
    };

    let mut target: BTreeMap<u32, Arc<NatRule>> = want
        .rules
        .iter()
        .map(|(n, e)| (*n, e.rule.clone()))
        .collect();
    let mut target_groups = want.groups();
    let mut target_hairpin: BTreeMap<u32, Hairpin> = want
        .rules
        .iter()
        .filter_map(|(n, e)| Some((*n, (**e.hairpin.as_ref()?).clone())))
        .collect();
    let mut held = BTreeSet::new();
    let mut orphaned = BTreeSet::new();

    // Paused rules stay exactly as the router holds them: not added, changed or removed.
    let paused_numbers: BTreeSet<u32> = want
        .rules
        .iter()
        .filter(|(_, e)| inputs.paused.contains(&e.key))
        .map(|(n, _)| *n)
        .chain(
            observed
                .owned
                .iter()
                .filter(|_| !inputs.paused.is_empty())
                .filter(|(_, r)| owner(r).is_some_and(|k| inputs.paused.contains(&k)))
                .map(|(n, _)| *n),
        )
        .collect();
    for n in paused_numbers {
        hold(
            n,
            observed,
            &mut target,
            &mut target_groups,
            &mut target_hairpin,
        );
        held.insert(n);
    }

    let keep_orphans = inputs.spec.orphan_policy == Some(OrphanPolicy::UpsertOnly);
    // Owned rules on the router whose PortRule has expired: removed, whatever the orphan
    // policy (the PortRule itself declares the end of the forward).
    let mut expiring: BTreeMap<u32, String> = BTreeMap::new();
    for (n, r) in &observed.owned {
        if target.contains_key(n) || held.contains(n) {
            continue;
        }
        let key = owner(r);
        if let Some(e) = key.as_ref().and_then(|k| want.expired.get(k)) {
            expiring.insert(*n, e.at.to_string());
            continue;
        }
        let declared = owner_of(r.description.as_deref()).and_then(|k| by_key.get(&k).copied());
        match declared {
            // Deleted with deletionPolicy Orphan: left on the router, no longer ours.
            Some(p)
                if p.metadata.deletion_timestamp.is_some()
                    && p.spec.deletion_policy == Some(DeletionPolicy::Orphan) =>
            {
                let mut kept = r.clone();
                kept.description = r.description.as_deref().map(orphaned_description);
                target.insert(*n, Arc::new(kept));
                if let Some(g) = observed.owned_groups.get(n) {
                    let mut g = g.clone();
                    g.description = g.description.as_deref().map(orphaned_description);
                    target_groups.insert(*n, g);
                }
                if let Some(h) = observed.owned_hairpin.get(n) {
                    let mut h = h.clone();
                    for r in [&mut h.destination, &mut h.source].into_iter().flatten() {
                        r.description = r.description.as_deref().map(orphaned_description);
                    }
                    target_hairpin.insert(*n, h);
                }
                orphaned.insert(*n);
            }
            // upsert-only keeps what nothing declares any more, and what is declared but
            // cannot be programmed now (waiting for its number, or refused).
            _ if keep_orphans
                && (declared.is_none()
                    || declared.is_some_and(|p| p.metadata.deletion_timestamp.is_none())) =>
            {
                hold(
                    *n,
                    observed,
                    &mut target,
                    &mut target_groups,
                    &mut target_hairpin,
                );
            }
            _ => {}
        }
    }

    let drifted = drift(observed, &target, &target_groups, &target_hairpin, &by_key);
    let mut ops = ops_by_rule(
        (&observed.owned, &observed.owned_groups),
        (&target, &target_groups),
    );
    // A rule's hairpin companions go in its request, after its own ops.
    for (n, hairpin_ops) in crate::hairpin::ops(&observed.owned_hairpin, &target_hairpin) {
        ops.entry(n).or_default().extend(hairpin_ops);
    }

    let mut rules = Vec::new();
    let numbers: BTreeSet<u32> = observed
        .owned
        .keys()
        .chain(target.keys())
        .chain(observed.owned_hairpin.keys())
        .copied()
        .collect();
    for n in numbers {
        let (before, after) = (observed.owned.get(&n), target.get(&n).map(|r| &**r));
        let rule_ops = ops.get(&n).map_or(0, Vec::len);
        let (hairpin_before, hairpin_after) =
            (observed.owned_hairpin.get(&n), target_hairpin.get(&n));
        let differs = before != after
            || observed.owned_groups.get(&n) != target_groups.get(&n)
            || hairpin_before != hairpin_after;
        let action = if held.contains(&n) {
            let declared = want.rules.get(&n);
            let wanted = declared.map(|e| (&*e.rule, e.group.as_ref(), e.hairpin.as_deref()));
            if wanted == before.map(|b| (b, observed.owned_groups.get(&n), hairpin_before)) {
                continue;
            }
            Action::Held
        } else if orphaned.contains(&n) {
            Action::Orphan
        } else if let Some(at) = expiring.get(&n) {
            Action::Expired { at: at.clone() }
        } else {
            match (before, after) {
                (None, Some(_)) => Action::Add,
                (Some(_), None) => Action::Remove,
                // Companions left without their rule (it was deleted by hand).
                (None, None) if rule_ops > 0 => Action::Remove,
                (Some(b), Some(a)) if differs => Action::Change {
                    leaves: leaves(
                        (b, observed.owned_groups.get(&n), hairpin_before),
                        (a, target_groups.get(&n), hairpin_after),
                    ),
                },
                _ => continue,
            }
        };
        let owner = after
            .and_then(&owner)
            .or_else(|| before.and_then(&owner))
            .or_else(|| hairpin_before.and_then(|h| h.rules().find_map(&owner)))
            .or_else(|| want.rules.get(&n).map(|e| e.key.clone()))
            .map(|k| k.to_string());
        rules.push(RulePlan {
            number: Some(n),
            owner,
            action,
            drifted: drifted.get(&n).cloned(),
            ops: rule_ops,
        });
    }
    let refused: Vec<RulePlan> = want
        .refused
        .iter()
        .map(|(k, r)| RulePlan {
            number: by_key
                .get(&(k.namespace.as_str(), k.name.as_str()))
                .and_then(|p| p.status.as_ref())
                .and_then(|s| s.rule_number),
            owner: Some(k.to_string()),
            action: Action::Refused {
                reason: r.reason.as_str().to_owned(),
                message: r.message.clone(),
            },
            drifted: None,
            ops: 0,
        })
        .collect();
    rules.extend(refused);
    // Expired rules already off the router: listed (as refused ones are), with no ops.
    let listed: BTreeSet<u32> = rules.iter().filter_map(|r| r.number).collect();
    let idle: Vec<RulePlan> = want
        .expired
        .iter()
        .filter(|(_, e)| !listed.contains(&e.number))
        .map(|(k, e)| RulePlan {
            number: Some(e.number),
            owner: Some(k.to_string()),
            action: Action::Expired {
                at: e.at.to_string(),
            },
            drifted: None,
            ops: 0,
        })
        .collect();
    rules.extend(idle);
    // By number (stable: a refused rule still on the router follows its removal), those
    // without one last.
    rules.sort_by_key(|r| (r.number.is_none(), r.number));
    want.pending.sort();
    Plan {
        desired: want,
        target,
        target_groups,
        target_hairpin,
        ops,
        rules,
        drifted,
    }
}

/// The PortRules of a router by `(namespace, name)`.
type ByKey<'a> = std::collections::HashMap<(&'a str, &'a str), &'a Arc<PortRule>>;

/// Keeps rule `n` (and its group and hairpin companions) exactly as observed.
fn hold(
    n: u32,
    observed: &Observed,
    target: &mut BTreeMap<u32, Arc<NatRule>>,
    target_groups: &mut BTreeMap<u32, NetworkGroup>,
    target_hairpin: &mut BTreeMap<u32, Hairpin>,
) {
    match observed.owned_hairpin.get(&n) {
        Some(h) => target_hairpin.insert(n, h.clone()),
        None => target_hairpin.remove(&n),
    };
    match observed.owned.get(&n) {
        Some(r) => target.insert(n, Arc::new(r.clone())),
        None => target.remove(&n),
    };
    match observed.owned_groups.get(&n) {
        Some(g) => target_groups.insert(n, g.clone()),
        None => target_groups.remove(&n),
    };
}

/// Rules edited on the router since the operator last programmed them: the PortRule's
/// `status.appliedHash` records what it programmed; a rule on the router that hashes
/// otherwise, or is gone, while the plan restores it, drifted. A difference that only
/// the declaration explains (a new spec) is a change, not drift; a rule whose router copy
/// is already what is declared needs no repair and is not reported.
fn drift(
    observed: &Observed,
    target: &BTreeMap<u32, Arc<NatRule>>,
    target_groups: &BTreeMap<u32, NetworkGroup>,
    target_hairpin: &BTreeMap<u32, Hairpin>,
    by_key: &ByKey<'_>,
) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for (n, want) in target {
        let Some(p) = owner_of(want.description.as_deref()).and_then(|k| by_key.get(&k).copied())
        else {
            continue;
        };
        let Some(status) = p.status.as_ref() else {
            continue;
        };
        let Some(applied) = status.applied_hash.as_deref() else {
            continue;
        };
        let now = observed.owned.get(n);
        let now_group = observed.owned_groups.get(n);
        let now_hairpin = observed.owned_hairpin.get(n);
        if now == Some(want)
            && now_group == target_groups.get(n)
            && now_hairpin == target_hairpin.get(n)
        {
            continue;
        }
        match now {
            None if status.rule_number == Some(*n) => {
                out.insert(*n, "deleted on the router".to_owned());
            }
            Some(r) if rule_hash(r, now_group, now_hairpin) != applied => {
                out.insert(*n, "changed on the router".to_owned());
            }
            _ => {}
        }
    }
    out
}

/// The ops that bring `from` to `to`, by rule number: the rule's leaf-level diff, then its
/// network-group's (a rule and its sources commit together). Either side may hold its rules
/// shared or owned.
pub fn ops_by_rule<A: Borrow<NatRule>, B: Borrow<NatRule>>(
    (from, from_groups): (&BTreeMap<u32, A>, &BTreeMap<u32, NetworkGroup>),
    (to, to_groups): (&BTreeMap<u32, B>, &BTreeMap<u32, NetworkGroup>),
) -> BTreeMap<u32, Vec<ConfigOp>> {
    let mut by_rule: BTreeMap<u32, Vec<ConfigOp>> = BTreeMap::new();
    for op in diff(NatKind::Destination, from, to) {
        let n = op.path.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
        by_rule.entry(n).or_default().push(op);
    }
    let named = |m: &BTreeMap<u32, NetworkGroup>, n: u32| -> BTreeMap<String, NetworkGroup> {
        m.get(&n)
            .map(|g| (group_name(n), g.clone()))
            .into_iter()
            .collect()
    };
    let numbers: BTreeSet<u32> = from_groups
        .keys()
        .chain(to_groups.keys())
        .copied()
        .collect();
    for n in numbers {
        let ops = diff_network_groups(&named(from_groups, n), &named(to_groups, n));
        if !ops.is_empty() {
            by_rule.entry(n).or_default().extend(ops);
        }
    }
    by_rule
}

/// The leaves of a rule (and its group and hairpin companions) as `path below the rule →
/// values`; a companion's leaves read `hairpin <table> <path>`.
fn leaf_map(
    rule: &NatRule,
    group: Option<&NetworkGroup>,
    hairpin: Option<&Hairpin>,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let base = rule.kind.rule_path(rule.number).len();
    for op in render_rule(rule) {
        if op.op != OpKind::Set {
            continue;
        }
        let path = op.path[base.min(op.path.len())..].join(" ");
        out.entry(path).or_default().extend(op.value);
    }
    if let Some(g) = group {
        for op in vyos_client::nat::render_network_group(&group_name(rule.number), g) {
            let path = format!(
                "network-group {}",
                op.path.last().map_or("", String::as_str)
            );
            out.entry(path).or_default().extend(op.value);
        }
    }
    for r in hairpin.into_iter().flat_map(Hairpin::rules) {
        let base = r.kind.rule_path(r.number).len();
        for op in render_rule(r) {
            let path = format!(
                "hairpin {} {}",
                r.kind,
                op.path[base.min(op.path.len())..].join(" ")
            );
            out.entry(path).or_default().extend(op.value);
        }
    }
    out
}

/// Which leaves differ between `old` and `new`, old → new.
fn leaves(
    (old, old_group, old_hairpin): (&NatRule, Option<&NetworkGroup>, Option<&Hairpin>),
    (new, new_group, new_hairpin): (&NatRule, Option<&NetworkGroup>, Option<&Hairpin>),
) -> Vec<Leaf> {
    let (a, b) = (
        leaf_map(old, old_group, old_hairpin),
        leaf_map(new, new_group, new_hairpin),
    );
    let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let join = |v: Option<&Vec<String>>| v.map(|v| v.join(","));
    paths
        .into_iter()
        .filter(|p| a.get(*p) != b.get(*p))
        .map(|p| Leaf {
            path: p.clone(),
            old: join(a.get(p)),
            new: join(b.get(p)),
        })
        .collect()
}

impl Plan {
    /// The counts of this plan.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            ops: self.op_count(),
            drifted: self.drifted.len(),
            ..Summary::default()
        };
        for r in &self.rules {
            match r.action {
                Action::Add => s.add += 1,
                Action::Change { .. } => s.change += 1,
                Action::Remove => s.remove += 1,
                Action::Orphan => s.orphan += 1,
                Action::Refused { .. } => s.refused += 1,
                Action::Held => s.held += 1,
                Action::Expired { .. } => s.expired += 1,
            }
        }
        s
    }

    /// Set/delete ops in all.
    pub fn op_count(&self) -> usize {
        self.ops.values().map(Vec::len).sum()
    }

    /// The ops in the order the apply step sends them.
    pub fn all_ops(&self) -> impl Iterator<Item = &ConfigOp> {
        self.ops.values().flatten()
    }

    /// The plan as text, one line per rule, Terraform-style, then the summary line.
    pub fn to_text(&self, router: &str) -> String {
        let mut out = String::new();
        for r in &self.rules {
            let number = r.number.map_or_else(|| "-".to_owned(), |n| n.to_string());
            let owner = r.owner.as_deref().unwrap_or("(no owner)");
            let drift = r
                .drifted
                .as_deref()
                .map(|d| format!(" (drifted: {d})"))
                .unwrap_or_default();
            let _ = match &r.action {
                Action::Add => {
                    let hairpin = r
                        .number
                        .and_then(|n| self.target_hairpin.get(&n))
                        .and_then(|h| h.rules().next())
                        .map(|h| {
                            format!(
                                ", with hairpin (nat destination and source rule {})",
                                h.number
                            )
                        })
                        .unwrap_or_default();
                    writeln!(out, "  + rule {number} {owner}{hairpin}{drift}")
                }
                Action::Remove => writeln!(out, "  - rule {number} {owner}"),
                Action::Orphan => writeln!(
                    out,
                    "  ~ rule {number} {owner}: orphaned (stays on the router, no longer managed)"
                ),
                Action::Held => writeln!(out, "  = rule {number} {owner}: paused, left as it is"),
                Action::Expired { at } if r.ops > 0 => {
                    writeln!(out, "  - rule {number} {owner}: expired at {at}")
                }
                Action::Expired { at } => writeln!(
                    out,
                    "    rule {number} {owner}: expired at {at} (not on the router)"
                ),
                Action::Refused { reason, message } => {
                    writeln!(out, "  ! rule {number} {owner}: {reason}: {message}")
                }
                Action::Change { leaves } => {
                    let _ = writeln!(out, "  ~ rule {number} {owner}{drift}");
                    for l in leaves {
                        let _ = writeln!(
                            out,
                            "      {}: {} -> {}",
                            l.path,
                            l.old.as_deref().unwrap_or("(none)"),
                            l.new.as_deref().unwrap_or("(none)")
                        );
                    }
                    Ok(())
                }
            };
        }
        let _ = writeln!(out, "{}", self.summary_line(router));
        out
    }

    /// `edge-1: 3 to add, 1 to change, 2 to remove, 1 refused`.
    pub fn summary_line(&self, router: &str) -> String {
        let s = self.summary();
        let mut parts = vec![
            format!("{} to add", s.add),
            format!("{} to change", s.change),
            format!("{} to remove", s.remove),
        ];
        if s.orphan > 0 {
            parts.push(format!("{} to orphan", s.orphan));
        }
        parts.push(format!("{} refused", s.refused));
        if s.held > 0 {
            parts.push(format!("{} paused", s.held));
        }
        if s.expired > 0 {
            parts.push(format!("{} expired", s.expired));
        }
        if s.drifted > 0 {
            parts.push(format!("{} drifted", s.drifted));
        }
        format!("{router}: {} ({} ops)", parts.join(", "), s.ops)
    }

    /// Whether the plan changes nothing on the router.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
