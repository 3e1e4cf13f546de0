//! Rule numbers from a router's owned range.

use std::collections::HashMap;

use super::ranges::RangeSet;
use super::space::{Space, wrap_search};
use super::{AllocError, Claimant, OutOfRange, OutsideReason, PoolCounts, RebuildReport};

/// The lowest NAT rule number VyOS accepts.
pub const RULE_NUMBER_MIN: u32 = 1;
/// The highest NAT rule number VyOS accepts (`NAT rule number must be between 1 and 999999`).
pub const RULE_NUMBER_MAX: u32 = 999_999;

/// The NAT rule numbers a router lends to this operator (`VyosRouter.spec.ruleRange`), and
/// which object holds which.
///
/// A new claimant first tries its *preferred* number, `start + stable_hash(key) % len`, then
/// the next free number after it (wrapping), so the number an object gets depends on its key
/// and on what is taken, not on the order objects are seen. Numbers already recorded in
/// status are imported with [`RuleNumbers::rebuild`] and kept across restarts.
#[derive(Debug, Clone)]
pub struct RuleNumbers {
    router: String,
    label: String,
    start: u32,
    end: u32,
    space: Space,
    holders: HashMap<Claimant, u32>,
}

impl RuleNumbers {
    /// The range `start..=end` of router `router`; both within 1..=999999, `start <= end`.
    pub fn new(router: impl Into<String>, start: u32, end: u32) -> Result<Self, AllocError> {
        let router = router.into();
        if !(RULE_NUMBER_MIN..=RULE_NUMBER_MAX).contains(&start)
            || !(RULE_NUMBER_MIN..=RULE_NUMBER_MAX).contains(&end)
            || start > end
        {
            return Err(AllocError::invalid(format!(
                "rule range {start}-{end} of VyosRouter {router:?}: VyOS NAT rule numbers are \
                 {RULE_NUMBER_MIN}-{RULE_NUMBER_MAX} and start must not be after end"
            )));
        }
        let mut avail = RangeSet::default();
        avail.insert(start.into(), end.into());
        Ok(Self {
            label: format!("the rule range {start}-{end} of VyosRouter {router:?}"),
            router,
            start,
            end,
            space: Space::new(avail),
            holders: HashMap::new(),
        })
    }

    /// The router's name.
    pub fn router(&self) -> &str {
        &self.router
    }

    /// The owned range as `(start, end)`.
    pub fn range(&self) -> (u32, u32) {
        (self.start, self.end)
    }

    /// The number `claimant` tries first.
    pub fn preferred(&self, claimant: &Claimant) -> u32 {
        let len = u64::from(self.end - self.start) + 1;
        // The remainder is below `len`, which fits in u32.
        self.start + u32::try_from(claimant.stable_hash() % len).unwrap_or(0)
    }

    /// Gives `claimant` a number: the one it holds, else its preferred number, else the next
    /// free one after that.
    pub fn allocate(&mut self, claimant: &Claimant) -> Result<u32, AllocError> {
        if let Some(&n) = self.holders.get(claimant) {
            return Ok(n);
        }
        let window = (u128::from(self.start), u128::from(self.end));
        let from = u128::from(self.preferred(claimant));
        let Some(v) = wrap_search(from, window, |a, b| self.space.find_from(1, a, b)) else {
            return Err(AllocError::Exhausted {
                pool: self.label.clone(),
                wanted: "free rule number".to_owned(),
            });
        };
        self.space.insert(v, v, claimant.clone());
        let n = number(v);
        self.holders.insert(claimant.clone(), n);
        Ok(n)
    }

    /// Gives `claimant` exactly `n` (e.g. the number its status records). A claimant that
    /// holds another number moves to `n` only if `n` is free.
    pub fn claim(&mut self, claimant: &Claimant, n: u32) -> Result<u32, AllocError> {
        let held = self.holders.get(claimant).copied();
        if held == Some(n) {
            return Ok(n);
        }
        if !(self.start..=self.end).contains(&n) {
            return Err(AllocError::OutsidePool {
                pool: self.label.clone(),
                resource: format!("rule number {n}"),
                reason: OutsideReason::NotInPool,
            });
        }
        let v = u128::from(n);
        if let Some((_, _, holder)) = self.space.holder(v, v) {
            return Err(AllocError::conflict(
                self.resource(n),
                holder,
                claimant.clone(),
            ));
        }
        self.release(claimant);
        self.space.insert(v, v, claimant.clone());
        self.holders.insert(claimant.clone(), n);
        Ok(n)
    }

    /// Frees the claimant's number, returning it.
    pub fn release(&mut self, claimant: &Claimant) -> Option<u32> {
        let n = self.holders.remove(claimant)?;
        self.space.remove(n.into());
        Some(n)
    }

    /// The claimant's number, if it holds one.
    pub fn get(&self, claimant: &Claimant) -> Option<u32> {
        self.holders.get(claimant).copied()
    }

    /// Who holds `n`, if anyone.
    pub fn holder_of(&self, n: u32) -> Option<&Claimant> {
        self.space.holder(n.into(), n.into()).map(|(_, _, c)| c)
    }

    /// Every allocation in number order.
    pub fn allocations(&self) -> impl Iterator<Item = (&Claimant, u32)> + '_ {
        self.space.blocks().map(|(v, _, c)| (c, number(v)))
    }

    /// Total, used and free numbers of the range, in `O(1)`.
    pub fn counts(&self) -> PoolCounts {
        let total = self.space.total();
        let used = self.space.used();
        PoolCounts {
            total,
            used,
            free: total - used.min(total),
        }
    }

    /// Forgets every allocation and imports `claims` (in any order); see
    /// [`super::AddressPool::rebuild`] for how conflicts and numbers outside the range are
    /// reported.
    pub fn rebuild(&mut self, claims: impl IntoIterator<Item = (Claimant, u32)>) -> RebuildReport {
        self.space.clear();
        self.holders.clear();
        let mut claims: Vec<(u32, Claimant)> = claims.into_iter().map(|(c, n)| (n, c)).collect();
        claims.sort_unstable();
        claims.dedup();
        let mut report = RebuildReport::default();
        for (n, claimant) in claims {
            if let Some(&held) = self.holders.get(&claimant) {
                report.conflicts.push(AllocError::invalid(format!(
                    "{claimant} claims both rule {held} and rule {n} on VyosRouter {:?}; kept {held}",
                    self.router
                )));
                continue;
            }
            let v = u128::from(n);
            if let Some((_, _, holder)) = self.space.holder(v, v) {
                report
                    .conflicts
                    .push(AllocError::conflict(self.resource(n), holder, claimant));
                continue;
            }
            if !(self.start..=self.end).contains(&n) {
                report.out_of_range.push(OutOfRange {
                    claimant: claimant.clone(),
                    resource: format!("rule {n}"),
                    reason: OutsideReason::NotInPool,
                });
            }
            self.space.insert(v, v, claimant.clone());
            self.holders.insert(claimant, n);
        }
        report
    }

    /// Applies a new range (it may only grow; a shrink leaves numbers outside, reported).
    pub fn reconfigure(&mut self, start: u32, end: u32) -> Result<RebuildReport, AllocError> {
        let mut next = Self::new(self.router.clone(), start, end)?;
        let claims: Vec<_> = self.allocations().map(|(c, n)| (c.clone(), n)).collect();
        let report = next.rebuild(claims);
        *self = next;
        Ok(report)
    }

    /// Numbers held outside the range (after a shrink the API forbids, or a bad import).
    pub fn out_of_range(&self) -> Vec<OutOfRange> {
        self.allocations()
            .filter(|&(_, n)| !(self.start..=self.end).contains(&n))
            .map(|(c, n)| OutOfRange {
                claimant: c.clone(),
                resource: format!("rule {n}"),
                reason: OutsideReason::NotInPool,
            })
            .collect()
    }

    fn resource(&self, n: u32) -> String {
        format!("rule number {n} on VyosRouter {:?}", self.router)
    }
}

/// A rule offset back to a number; offsets here always came from a u32.
fn number(v: u128) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
