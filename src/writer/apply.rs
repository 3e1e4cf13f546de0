//! The apply step of a pass: send a plan's ops to the router in paced, size-limited
//! configure requests, one commit each; a refused commit is narrowed down to the rules at
//! fault (bisection) so the rest still commits. The writer and the sync benchmark both run
//! this code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmnet_plan::commit::{CommitError, Share, fits, isolate, next_size};
use vmnet_plan::plan::ops_by_rule;
use vyos_client::nat::{ConfigOp, NatRule, NetworkGroup};
use vyos_client::{VyosClient, VyosError, op_body_len};

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
    /// The owned rules now on the router, by number, with their descriptions (which name
    /// their owners): not the rules themselves, which would be a copy of every rule the
    /// router holds, held through the report step.
    pub after: BTreeMap<u32, Option<String>>,
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

/// The first request of a large change carries at most this many ops; later ones are sized
/// by [`next_size`] from the pace the router showed.
pub const FIRST_REQUEST_OPS: usize = 500;

/// One configure request, as the audit log and the metrics see it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Its number in this change, from 1.
    pub seq: usize,
    /// Whether it committed.
    pub ok: bool,
    /// Set/delete ops it carried.
    pub ops: usize,
    /// The rules whose ops it carried.
    pub rules: &'a [u32],
    /// How long it took.
    pub took: Duration,
    /// The router's text when it did not commit.
    pub error: Option<&'a str>,
    /// No answer came within the client's timeout: it may have committed.
    pub timed_out: bool,
}

/// The change to send: ops by rule number (as [`vmnet_plan::plan::Plan::ops`]), and the
/// owned rules and groups before and after it.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// Ops by rule number, in the order they go.
    pub ops: &'a BTreeMap<u32, Vec<ConfigOp>>,
    /// The owned rules and groups now.
    pub before: (&'a BTreeMap<u32, NatRule>, &'a BTreeMap<u32, NetworkGroup>),
    /// The owned rules and groups after it.
    pub after: (
        &'a BTreeMap<u32, Arc<NatRule>>,
        &'a BTreeMap<u32, NetworkGroup>,
    ),
}

/// Brings the owned rules `owned` to `target` (no groups): the ops [`ops_by_rule`]
/// computes, sent by [`apply`].
pub async fn apply_rules(
    client: &VyosClient,
    owned: &BTreeMap<u32, NatRule>,
    target: &BTreeMap<u32, NatRule>,
    opts: ApplyOptions,
    on_request: &(dyn Fn(&Request<'_>) + Send + Sync),
    on_progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<Applied, VyosError> {
    let none = BTreeMap::new();
    let ops = ops_by_rule((owned, &none), (target, &none));
    let shared: BTreeMap<u32, Arc<NatRule>> = target
        .iter()
        .map(|(n, r)| (*n, Arc::new(r.clone())))
        .collect();
    let change = Change {
        ops: &ops,
        before: (owned, &none),
        after: (&shared, &none),
    };
    apply(client, change, opts, on_request, on_progress).await
}

/// Sends `change`: its ops cut into requests by op budget and body size, paced to the
/// router, one commit each. `on_request` is told about every configure request;
/// `on_progress(sent, total)` after each step of a change that takes more than one.
pub async fn apply(
    client: &VyosClient,
    change: Change<'_>,
    opts: ApplyOptions,
    on_request: &(dyn Fn(&Request<'_>) + Send + Sync),
    on_progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<Applied, VyosError> {
    let (owned, owned_groups) = change.before;
    let (target, target_groups) = change.after;
    let by_rule = change.ops;
    // What the router holds once the requests are answered: the owned rules as they were,
    // with the committed ones as planned. Made after the requests, not before: at 10,000
    // rules this copy is a millisecond or two a single change would wait for.
    let unchanged = || Applied {
        after: owned
            .iter()
            .map(|(n, r)| (*n, r.description.clone()))
            .collect(),
        after_groups: owned_groups.clone(),
        ..Applied::default()
    };
    if by_rule.is_empty() {
        return Ok(unchanged());
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
    let counted = std::sync::Mutex::new((0usize, 0usize));
    let commit = |batch: Vec<u32>| {
        let ops: Vec<ConfigOp> = batch
            .iter()
            .flat_map(|n| by_rule.get(n).cloned().unwrap_or_default())
            .collect();
        let (counted, byte_cap) = (&counted, &byte_cap);
        async move {
            let started = Instant::now();
            let result = match opts.confirm_minutes {
                Some(m) if m > 0 => match client.configure_confirm(&ops, m).await {
                    Ok(_) => client.confirm().await.map(|_| ()),
                    Err(e) => Err(e),
                },
                _ => client.configure(&ops).await.map(|_| ()),
            };
            let seq = counted.lock().map_or(0, |mut c| {
                c.0 += ops.len();
                c.1 += 1;
                c.1
            });
            let error = result.as_ref().err().map(ToString::to_string);
            on_request(&Request {
                seq,
                ok: result.is_ok(),
                ops: ops.len(),
                rules: &batch,
                took: started.elapsed(),
                error: error.as_deref(),
                timed_out: matches!(result, Err(VyosError::Timeout { .. })),
            });
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
        let started = Instant::now();
        let step = isolate(vec![batch], &commit).await?;
        done.committed.extend(step.committed);
        done.failed.extend(step.failed);
        sent += ops;
        if multi {
            on_progress(sent, total);
        }
        size = next_size(size, ops, started.elapsed(), opts.request_budget, cap);
    }
    let mut out = unchanged();
    for n in done.committed {
        match target.get(&n) {
            Some(r) => out.after.insert(n, r.description.clone()),
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
