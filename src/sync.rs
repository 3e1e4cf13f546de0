//! The router side of a writer pass, apart from Kubernetes: read the owned rules in one
//! request, and bring them to a target with the fewest ops in as few commits as the op
//! budget allows (a refused commit narrowed down to the rules at fault). The writer and
//! the sync benchmark both run this code.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use vmnet_api::RuleRange;
use vyos_client::nat::{ConfigOp, NatKind, NatRule, NetworkGroup, diff, diff_network_groups};
use vyos_client::{VyosClient, VyosError, op_body_len};

use vmnet_plan::commit::{CommitError, Share, fits, isolate, next_size};
use vmnet_plan::render::{group_name, is_owned, owned_group};

/// The destination-NAT rules of a router, split by ownership.
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// In the owned range and carrying the marker.
    pub owned: BTreeMap<u32, NatRule>,
    /// In the owned range without the marker: never touched.
    pub foreign: BTreeMap<u32, NatRule>,
}

/// Reads the router's destination-NAT rules (one request).
pub async fn read(client: &VyosClient, range: &RuleRange) -> Result<Read, VyosError> {
    let mut out = Read::default();
    for (n, r) in client.nat_rules(NatKind::Destination).await? {
        if is_owned(&r, range) {
            out.owned.insert(n, r);
        } else if range.contains(n) {
            out.foreign.insert(n, r);
        }
    }
    Ok(out)
}

/// The router's network-groups, split by ownership.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// The operator's (see [`owned_group`]), by the number of the rule that uses each.
    pub owned: BTreeMap<u32, NetworkGroup>,
    /// The names of all others: never touched, and never written over.
    pub foreign: BTreeSet<String>,
}

/// Reads the router's network-groups (one request).
pub async fn read_groups(client: &VyosClient, range: &RuleRange) -> Result<Groups, VyosError> {
    let mut out = Groups::default();
    for (name, g) in client.network_groups().await? {
        match owned_group(&name, &g, range) {
            Some(n) => {
                out.owned.insert(n, g);
            }
            None => {
                out.foreign.insert(name);
            }
        }
    }
    Ok(out)
}

/// How to apply a change.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// At most this many ops per configure request.
    pub max_ops_per_commit: usize,
    /// Request bodies stay at or under this many bytes (the router's
    /// `request-body-size-limit`).
    pub max_request_bytes: usize,
    /// Aim for requests that take about this long (sized from the measured pace).
    pub request_budget: std::time::Duration,
    /// Commit-confirm each request (confirmed once it came back), in minutes.
    pub confirm_minutes: Option<u32>,
    /// Save the config to boot after a change.
    pub save: bool,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The owned rules now on the router.
    pub after: BTreeMap<u32, NatRule>,
    /// Rules the router refused, with its text.
    pub failed: BTreeMap<u32, String>,
    /// Set/delete ops sent (in commits that succeeded or failed).
    pub ops: usize,
    /// Configure requests sent.
    pub requests: usize,
    /// Set when the router refused a body as too large (413) although it was within
    /// `max_request_bytes`: a limit under that size, to use from now on.
    pub learned_max_request_bytes: Option<usize>,
    /// The operator's network-groups now on the router, by rule number.
    pub after_groups: BTreeMap<u32, NetworkGroup>,
}

/// Brings the owned rules `owned` to `target`: leaf-level diff, op-budgeted batches, one
/// commit each; a refused batch is narrowed down so only the rules at fault fail.
/// The first request of a large change carries at most this many ops; later ones are sized
/// by [`next_size`] from the pace the router showed.
pub const FIRST_REQUEST_OPS: usize = 500;

/// `on_request(ok, ops)` is told about every configure request; `on_progress(sent, total)`
/// after each step of a change that takes more than one request.
pub async fn apply(
    client: &VyosClient,
    owned: &BTreeMap<u32, NatRule>,
    target: &BTreeMap<u32, NatRule>,
    opts: ApplyOptions,
    on_request: &(dyn Fn(bool, usize) + Send + Sync),
    on_progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<Applied, VyosError> {
    let none = BTreeMap::new();
    apply_with_groups(
        client,
        (owned, &none),
        (target, &none),
        opts,
        on_request,
        on_progress,
    )
    .await
}

/// As [`apply`], for rules and the network-groups some of them use (by rule number): a
/// rule's group ops go in the same request, so a rule and its sources commit together.
pub async fn apply_with_groups(
    client: &VyosClient,
    (owned, owned_groups): (&BTreeMap<u32, NatRule>, &BTreeMap<u32, NetworkGroup>),
    (target, target_groups): (&BTreeMap<u32, NatRule>, &BTreeMap<u32, NetworkGroup>),
    opts: ApplyOptions,
    on_request: &(dyn Fn(bool, usize) + Send + Sync),
    on_progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<Applied, VyosError> {
    let mut by_rule: BTreeMap<u32, Vec<ConfigOp>> = BTreeMap::new();
    for op in diff(NatKind::Destination, owned, target) {
        let n = op.path.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
        by_rule.entry(n).or_default().push(op);
    }
    let named = |m: &BTreeMap<u32, NetworkGroup>, n: u32| -> BTreeMap<String, NetworkGroup> {
        m.get(&n)
            .map(|g| (group_name(n), g.clone()))
            .into_iter()
            .collect()
    };
    let numbers: BTreeSet<u32> = owned_groups
        .keys()
        .chain(target_groups.keys())
        .copied()
        .collect();
    for n in numbers {
        let ops = diff_network_groups(&named(owned_groups, n), &named(target_groups, n));
        if !ops.is_empty() {
            by_rule.entry(n).or_default().extend(ops);
        }
    }
    let mut out = Applied {
        after: owned.clone(),
        after_groups: owned_groups.clone(),
        ..Applied::default()
    };
    if by_rule.is_empty() {
        return Ok(out);
    }
    let shares: Vec<Share> = by_rule
        .iter()
        .map(|(n, o)| Share {
            rule: *n,
            ops: o.len(),
            bytes: o.iter().map(op_body_len).sum(),
        })
        .collect();
    let total: usize = shares.iter().map(|s| s.ops).sum();
    let cap = opts.max_ops_per_commit.max(1);
    let overhead = client.configure_overhead();
    // Bytes for ops, lowered when the router answers 413 to a body under it.
    let declared_cap = opts.max_request_bytes.saturating_sub(overhead).max(1);
    let byte_cap = std::sync::Mutex::new(declared_cap);
    let by_rule = Arc::new(by_rule);
    let counted = std::sync::Mutex::new((0usize, 0usize));
    let commit = |batch: Vec<u32>| {
        let ops: Vec<ConfigOp> = batch
            .iter()
            .flat_map(|n| by_rule.get(n).cloned().unwrap_or_default())
            .collect();
        let (counted, byte_cap) = (&counted, &byte_cap);
        async move {
            let result = match opts.confirm_minutes {
                Some(m) if m > 0 => match client.configure_confirm(&ops, m).await {
                    Ok(_) => client.confirm().await.map(|_| ()),
                    Err(e) => Err(e),
                },
                _ => client.configure(&ops).await.map(|_| ()),
            };
            on_request(result.is_ok(), ops.len());
            if let Ok(mut c) = counted.lock() {
                c.0 += ops.len();
                c.1 += 1;
            }
            result.map_err(|e| match e {
                VyosError::CommitFailed { .. } | VyosError::Rejected { .. } => {
                    CommitError::Refused {
                        text: e.vyos_message().unwrap_or("commit failed").to_owned(),
                        rule: e.failed_nat_rule(),
                    }
                }
                // nginx refused the body before VyOS saw it: nothing was applied, so
                // smaller requests are safe. Halves are tried (the refusal is split like
                // a commit failure), and the rest of the change uses the lower limit.
                VyosError::PayloadTooLarge => {
                    let bytes: usize = ops.iter().map(op_body_len).sum();
                    let lower = (bytes / 2).max(1);
                    if let Ok(mut cap) = byte_cap.lock() {
                        *cap = (*cap).min(lower);
                    }
                    CommitError::Refused {
                        text: format!(
                            "the router refused a request of about {} bytes as too large \
                             (HTTP 413): raise its `service https request-body-size-limit` \
                             or lower the VyosRouter's spec.requestBodySizeLimit",
                            bytes + overhead
                        ),
                        rule: None,
                    }
                }
                other => CommitError::Other(other),
            })
        }
    };
    // Step by step: each step one request (more if a refused one is narrowed down), sized
    // to the router's measured pace.
    let mut size = FIRST_REQUEST_OPS.min(cap);
    let multi = fits(&shares, size, byte_cap.lock().map_or(usize::MAX, |c| *c)) < shares.len();
    let mut sent = 0;
    let mut rest = shares.as_slice();
    let mut done = vmnet_plan::commit::Isolated::default();
    while !rest.is_empty() {
        let max_bytes = byte_cap.lock().map_or(usize::MAX, |c| *c);
        let take = fits(rest, size, max_bytes);
        let ops: usize = rest[..take].iter().map(|s| s.ops).sum();
        let batch: Vec<u32> = rest[..take].iter().map(|s| s.rule).collect();
        rest = &rest[take..];
        let started = std::time::Instant::now();
        let step = isolate(vec![batch], &commit).await?;
        done.committed.extend(step.committed);
        done.failed.extend(step.failed);
        sent += ops;
        if multi {
            on_progress(sent, total);
        }
        size = next_size(size, ops, started.elapsed(), opts.request_budget, cap);
    }
    for n in done.committed {
        match target.get(&n) {
            Some(r) => out.after.insert(n, r.clone()),
            None => out.after.remove(&n),
        };
        match target_groups.get(&n) {
            Some(g) => out.after_groups.insert(n, g.clone()),
            None => out.after_groups.remove(&n),
        };
    }
    out.failed = done.failed;
    if let Ok(c) = counted.lock() {
        (out.ops, out.requests) = *c;
    }
    out.learned_max_request_bytes = byte_cap
        .lock()
        .ok()
        .filter(|cap| **cap < declared_cap)
        .map(|cap| *cap + overhead);
    if opts.save {
        client.save().await?;
    }
    Ok(out)
}
