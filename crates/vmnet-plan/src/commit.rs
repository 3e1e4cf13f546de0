//! How a change is cut into commits, and how a refused commit is narrowed down to the rules
//! at fault. Generic over the commit itself, so it is tested without a router.

use std::collections::{BTreeMap, BTreeSet};

/// One rule's part of a request: its number, its op count and the bytes its ops add to the
/// request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// The rule number.
    pub rule: u32,
    /// Set/delete ops.
    pub ops: usize,
    /// Encoded size of those ops in the body.
    pub bytes: usize,
}

/// How many of `rest`, in order, the next request carries: as many as fit in `max_ops` ops
/// and `max_bytes` bytes, and at least one, as a rule's ops are never split.
pub fn fits(rest: &[Share], max_ops: usize, max_bytes: usize) -> usize {
    let (mut ops, mut bytes, mut take) = (0usize, 0usize, 0usize);
    for s in rest {
        let (o, b) = (ops + s.ops, bytes + s.bytes);
        if take > 0 && (o > max_ops || b > max_bytes) {
            break;
        }
        (ops, bytes, take) = (o, b, take + 1);
    }
    take
}

/// The op count of the next request: what fits in `budget` at the pace the last request
/// showed (`ops` in `took`), at most twice the `current` size (one quick request does not
/// jump to the cap), within 1 and `cap`. A real router spends tens of milliseconds per op,
/// and its proxy gives up after 600 s, so a large first sync must be cut to the router's
/// speed rather than to a fixed size.
pub fn next_size(
    current: usize,
    ops: usize,
    took: std::time::Duration,
    budget: std::time::Duration,
    cap: usize,
) -> usize {
    let cap = cap.max(1);
    if ops == 0 || took.is_zero() {
        return current.saturating_mul(2).clamp(1, cap);
    }
    let per_op = took.as_secs_f64() / ops as f64;
    let fits = (budget.as_secs_f64() / per_op).floor();
    let fits = if fits.is_finite() && fits > 0.0 {
        fits as usize
    } else {
        1
    };
    fits.min(current.saturating_mul(2)).clamp(1, cap)
}

/// The time a request should take: the configured budget, but never more than half the
/// client's deadline for a request, so that a request sized from the router's pace ends
/// well inside it (a request that outlives the deadline may still commit on the router,
/// and its outcome is then unknown).
pub fn request_budget(
    budget: std::time::Duration,
    timeout: std::time::Duration,
) -> std::time::Duration {
    budget
        .min(timeout / 2)
        .max(std::time::Duration::from_millis(1))
}

/// Why a commit did not happen.
#[derive(Debug)]
pub enum CommitError<E> {
    /// The router refused it and changed nothing; `rule` is the rule its message names,
    /// when it names one (VyOS 1.5 does, 1.4 does not).
    Refused {
        /// The router's text.
        text: String,
        /// The rule the text names.
        rule: Option<u32>,
    },
    /// Anything else (unreachable, timeout, ...): stop and re-read before writing again.
    Other(E),
}

/// What [`isolate`] achieved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Isolated {
    /// Rules committed.
    pub committed: BTreeSet<u32>,
    /// Rules the router refused on their own (or as named), with its text.
    pub failed: BTreeMap<u32, String>,
}

/// Commits each batch; a refused batch is split (or the named rule taken out) until the
/// refused rules are alone, so everything else still commits. An error other than a
/// refusal ends the work and is returned; what was committed before stays committed.
pub async fn isolate<E, F, Fut>(batches: Vec<Vec<u32>>, mut commit: F) -> Result<Isolated, E>
where
    F: FnMut(Vec<u32>) -> Fut,
    Fut: std::future::Future<Output = Result<(), CommitError<E>>>,
{
    let mut todo: Vec<Vec<u32>> = batches.into_iter().rev().collect();
    let mut done = Isolated::default();
    while let Some(batch) = todo.pop() {
        if batch.is_empty() {
            continue;
        }
        match commit(batch.clone()).await {
            Ok(()) => done.committed.extend(batch),
            Err(CommitError::Other(e)) => return Err(e),
            Err(CommitError::Refused { text, rule }) => {
                if batch.len() == 1 {
                    done.failed.insert(batch[0], text);
                } else if let Some(n) = rule.filter(|n| batch.contains(n)) {
                    done.failed.insert(n, text);
                    todo.push(batch.into_iter().filter(|m| *m != n).collect());
                } else {
                    let (a, b) = batch.split_at(batch.len() / 2);
                    todo.push(b.to_vec());
                    todo.push(a.to_vec());
                }
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    fn run<E: std::fmt::Debug>(
        batches: Vec<Vec<u32>>,
        bad: &BTreeSet<u32>,
        name_the_rule: bool,
    ) -> (Isolated, usize) {
        let mut calls = 0;
        let result = futures::executor::block_on(isolate::<E, _, _>(batches, |b: Vec<u32>| {
            calls += 1;
            std::future::ready(match b.iter().find(|n| bad.contains(n)) {
                None => Ok(()),
                Some(n) => Err(CommitError::Refused {
                    text: format!("rule {n} is bad"),
                    rule: name_the_rule.then_some(*n),
                }),
            })
        }))
        .unwrap();
        (result, calls)
    }

    #[test]
    fn requests_are_sized_to_end_well_inside_the_deadline() {
        use std::time::Duration as D;
        // The defaults (60 s budget, 30 s deadline): 15 s requests.
        assert_eq!(
            request_budget(D::from_secs(60), D::from_secs(30)),
            D::from_secs(15)
        );
        assert_eq!(
            request_budget(D::from_secs(10), D::from_secs(30)),
            D::from_secs(10)
        );
        // At 30 ms per op, the default budget gave 1,988-op requests (60 s, past the
        // 30 s deadline); now at most 500 fit.
        let size = next_size(
            1000,
            1000,
            D::from_secs(30),
            request_budget(D::from_secs(60), D::from_secs(30)),
            2000,
        );
        assert_eq!(size, 500);
    }

    #[test]
    fn request_size_follows_the_routers_pace() {
        use std::time::Duration as D;
        let budget = D::from_secs(60);
        // 30 ms per op: 2000 fit in a minute, but growth is at most twofold per request.
        assert_eq!(next_size(500, 500, D::from_secs(15), budget, 2000), 1000);
        assert_eq!(next_size(1000, 1000, D::from_secs(30), budget, 2000), 2000);
        // A slow router (200 ms per op) shrinks the next request to what fits.
        assert_eq!(next_size(500, 500, D::from_secs(100), budget, 2000), 300);
        // Never above the cap, never below one, and no measurement means gentle growth.
        assert_eq!(
            next_size(2000, 2000, D::from_millis(10), budget, 2000),
            2000
        );
        assert_eq!(next_size(10, 10, D::from_secs(1000), budget, 2000), 1);
        assert_eq!(next_size(300, 0, D::ZERO, budget, 2000), 600);
    }

    /// Cuts `shares` into consecutive requests by [`fits`], as `sync::apply` does when its
    /// sizes stay fixed.
    fn batches(shares: &[Share], max_ops: usize, max_bytes: usize) -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        let mut rest = shares;
        while !rest.is_empty() {
            let take = fits(rest, max_ops, max_bytes);
            out.push(rest[..take].iter().map(|s| s.rule).collect());
            rest = &rest[take..];
        }
        out
    }

    fn shares(ops: &[(u32, usize)]) -> Vec<Share> {
        ops.iter()
            .map(|&(rule, ops)| Share {
                rule,
                ops,
                bytes: ops * 90,
            })
            .collect()
    }

    #[test]
    fn batches_respect_the_op_budget_and_never_split_a_rule() {
        let ops = shares(&[(1, 3), (2, 3), (3, 3), (4, 10), (5, 1)]);
        let any = usize::MAX;
        assert_eq!(
            batches(&ops, 6, any),
            vec![vec![1, 2], vec![3], vec![4], vec![5]]
        );
        assert_eq!(batches(&ops, 100, any), vec![vec![1, 2, 3, 4, 5]]);
        assert!(batches(&[], 10, any).is_empty());
        assert_eq!(
            batches(&ops, 0, any).len(),
            5,
            "a zero budget still makes progress"
        );
    }

    #[test]
    fn batches_respect_the_byte_limit_too() {
        let ops = shares(&[(1, 3), (2, 3), (3, 3), (4, 10), (5, 1)]);
        // 270 bytes a 3-op rule: two fit in 600, not three.
        assert_eq!(
            batches(&ops, 100, 600),
            vec![vec![1, 2], vec![3], vec![4], vec![5]]
        );
        assert_eq!(batches(&ops, 100, 2_000), vec![vec![1, 2, 3, 4, 5]]);
        // Whichever limit binds first.
        assert_eq!(batches(&ops, 6, 10_000), batches(&ops, 100, 540));
        assert_eq!(fits(&ops, 1, 1), 1, "one rule always goes");
    }

    #[test]
    fn a_clean_change_is_one_commit_per_batch() {
        let (r, calls) = run::<()>(vec![vec![1, 2, 3], vec![4]], &BTreeSet::new(), false);
        assert_eq!(calls, 2);
        assert_eq!(r.committed, [1, 2, 3, 4].into());
        assert!(r.failed.is_empty());
    }

    #[test]
    fn a_named_rule_is_taken_out_in_one_step() {
        let (r, calls) = run::<()>(vec![(1..=16).collect()], &[7].into(), true);
        assert_eq!(calls, 2);
        assert_eq!(r.failed.keys().copied().collect::<Vec<_>>(), vec![7]);
        assert_eq!(r.committed.len(), 15);
        assert_eq!(r.failed[&7], "rule 7 is bad");
    }

    #[test]
    fn an_unnamed_failure_is_bisected_in_logarithmic_commits() {
        let (r, calls) = run::<()>(vec![(1..=64).collect()], &[40].into(), false);
        assert_eq!(r.failed.keys().copied().collect::<Vec<_>>(), vec![40]);
        assert_eq!(r.committed.len(), 63);
        assert!(calls <= 1 + 2 * 6, "{calls} commits for one bad rule in 64");
    }

    #[test]
    fn a_transport_error_stops_and_keeps_what_was_committed() {
        let mut calls = 0;
        let r =
            futures::executor::block_on(isolate(vec![vec![1], vec![2], vec![3]], |b: Vec<u32>| {
                calls += 1;
                std::future::ready(if b == [2] {
                    Err(CommitError::Other("unreachable"))
                } else {
                    Ok(())
                })
            }));
        assert_eq!(r.unwrap_err(), "unreachable");
        assert_eq!(calls, 2, "nothing is sent after the error");
    }

    proptest! {
        /// Batches keep the rules in order, each exactly once, and stay within both limits
        /// unless a single rule is over them on its own.
        #[test]
        fn batches_cover_every_rule_once_within_the_limits(
            sizes in proptest::collection::vec((1usize..12, 20usize..2_000), 0..80),
            max_ops in 1usize..40,
            max_bytes in 1usize..10_000,
        ) {
            let all: Vec<Share> = sizes
                .iter()
                .enumerate()
                .map(|(i, &(ops, bytes))| Share { rule: i as u32, ops, bytes })
                .collect();
            let cut = batches(&all, max_ops, max_bytes);
            let flat: Vec<u32> = cut.iter().flatten().copied().collect();
            prop_assert_eq!(flat, all.iter().map(|s| s.rule).collect::<Vec<_>>());
            for b in &cut {
                prop_assert!(!b.is_empty());
                let ops: usize = b.iter().map(|n| all[*n as usize].ops).sum();
                let bytes: usize = b.iter().map(|n| all[*n as usize].bytes).sum();
                prop_assert!(b.len() == 1 || (ops <= max_ops && bytes <= max_bytes));
            }
            // Nothing is cut early: the next rule would not have fitted.
            for w in cut.windows(2) {
                let ops: usize = w[0].iter().chain(&w[1][..1]).map(|n| all[*n as usize].ops).sum();
                let bytes: usize = w[0].iter().chain(&w[1][..1]).map(|n| all[*n as usize].bytes).sum();
                prop_assert!(ops > max_ops || bytes > max_bytes);
            }
        }

        /// Whatever the bad set and batching: exactly the bad rules fail, every other rule
        /// is committed, nothing twice.
        #[test]
        fn exactly_the_bad_rules_fail(
            n in 1u32..120,
            bad in proptest::collection::btree_set(1u32..120, 0..6),
            max in 1usize..40,
            named in any::<bool>(),
        ) {
            let ops: Vec<(u32, usize)> = (1..=n).map(|i| (i, 1 + (i as usize % 4))).collect();
            let bad: BTreeSet<u32> = bad.into_iter().filter(|b| *b <= n).collect();
            let (r, _) = run::<()>(batches(&shares(&ops), max, usize::MAX), &bad, named);
            prop_assert_eq!(r.failed.keys().copied().collect::<BTreeSet<_>>(), bad.clone());
            let all: BTreeSet<u32> = (1..=n).collect();
            prop_assert_eq!(r.committed, all.difference(&bad).copied().collect::<BTreeSet<_>>());
        }
    }
}

/// Whether a router of this VyOS version (as `/info` or `show version` reports it) has
/// commit-confirm over the API: 1.5 has; 1.4 (sagitta) has not.
pub fn has_commit_confirm(version: &str) -> bool {
    !version.trim_start_matches('v').starts_with("1.4")
}

/// What the router's status adds when it asks for commit-confirm and cannot have it.
pub fn commit_confirm_note(version: Option<&str>, asked: bool) -> Option<&'static str> {
    (asked && version.is_some_and(|v| !has_commit_confirm(v))).then_some(
        "VyOS 1.4 has no commit-confirm: spec.commitConfirmMinutes is not used, changes are \
         committed without a revert timer",
    )
}

#[cfg(test)]
mod confirm_tests {
    use super::*;

    #[test]
    fn only_1_4_lacks_commit_confirm() {
        assert!(!has_commit_confirm("1.4.3"));
        assert!(has_commit_confirm("1.5-rolling-202511240000"));
        assert!(has_commit_confirm("2025.11"));
        assert_eq!(commit_confirm_note(Some("1.5.0"), true), None);
        assert_eq!(commit_confirm_note(Some("1.4.3"), false), None);
        assert!(commit_confirm_note(Some("1.4.3"), true).is_some());
    }
}
