//! What a rebuild found.

use std::fmt;

use super::{AllocError, Claimant, OutsideReason};

/// An allocation that lies outside its pool (after a pool edit, say). It stays allocated
/// and is never moved; it is listed in the pool's `status.outOfRange`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutOfRange {
    /// Who holds it.
    pub claimant: Claimant,
    /// The value, as status shows it (`10.0.0.5`, `30000-30009/tcp`, `rule 120`).
    pub resource: String,
    /// Why the pool would not hand it out today.
    pub reason: OutsideReason,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}; {})",
            self.resource,
            self.claimant,
            reason_word(self.reason)
        )
    }
}

fn reason_word(r: OutsideReason) -> &'static str {
    match r {
        OutsideReason::NotInPool => "not in the pool",
        OutsideReason::Excluded => "excluded",
        OutsideReason::NetworkOrBroadcast => "network or broadcast address",
        OutsideReason::PoolMissing => "pool missing",
    }
}

/// The outcome of importing existing allocations.
///
/// Conflicting claims are kept out of the allocator except for one holder, chosen by a
/// fixed order (the claimant that sorts first), so the result is the same for every order
/// of the input; each loser appears here as an [`AllocError::Conflict`] naming both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Claims that were refused: conflicts, and malformed claims (as `InvalidRequest`).
    pub conflicts: Vec<AllocError>,
    /// Claims that were kept although they lie outside the pool.
    pub out_of_range: Vec<OutOfRange>,
}

impl RebuildReport {
    /// True when every claim was imported inside its pool.
    pub fn is_clean(&self) -> bool {
        self.conflicts.is_empty() && self.out_of_range.is_empty()
    }

    pub(crate) fn merge(&mut self, other: RebuildReport) {
        self.conflicts.extend(other.conflicts);
        self.out_of_range.extend(other.out_of_range);
    }
}
