//! One allocation space: what may be handed out, and who holds what.

use std::collections::BTreeMap;

use super::Claimant;
use super::ranges::{RangeSet, span};

/// The engine under every allocator: the values that may be handed out (`avail`, fixed by
/// the pool's definition), the allocations (disjoint blocks `lo..=hi`, each with a holder)
/// and their union as merged runs (`occupied`), which lets a search jump over a whole
/// allocated stretch in one `O(log n)` step.
#[derive(Debug, Clone, Default)]
pub(crate) struct Space {
    avail: RangeSet,
    occupied: RangeSet,
    blocks: BTreeMap<u128, (u128, Claimant)>,
    /// Values that are both allocated and available: `|occupied ∩ avail|`.
    used: u128,
}

impl Space {
    pub(crate) fn new(avail: RangeSet) -> Self {
        Self {
            avail,
            ..Self::default()
        }
    }

    pub(crate) fn avail(&self) -> &RangeSet {
        &self.avail
    }

    pub(crate) fn total(&self) -> u128 {
        self.avail.len()
    }

    pub(crate) fn used(&self) -> u128 {
        self.used
    }

    pub(crate) fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// The allocations in ascending order.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = (u128, u128, &Claimant)> + '_ {
        self.blocks.iter().map(|(&lo, (hi, c))| (lo, *hi, c))
    }

    /// The allocation overlapping `lo..=hi` with the lowest start, if any.
    pub(crate) fn holder(&self, lo: u128, hi: u128) -> Option<(u128, u128, &Claimant)> {
        // Blocks are disjoint and sorted: the one starting last at or before `lo` is the only
        // earlier one that can reach into the range; otherwise the first starting inside it.
        if let Some((&s, (e, c))) = self.blocks.range(..=lo).next_back()
            && *e >= lo
        {
            return Some((s, *e, c));
        }
        self.blocks
            .range(lo..=hi)
            .next()
            .map(|(&s, (e, c))| (s, *e, c))
    }

    /// `|lo..=hi ∩ occupied ∩ avail|`.
    pub(crate) fn used_within(&self, lo: u128, hi: u128) -> u128 {
        self.occupied
            .clipped(lo, hi)
            .map(|(a, b)| self.avail.count_within(a, b))
            .fold(0, u128::saturating_add)
    }

    /// Records `lo..=hi` for `claimant`. The caller has checked that it is free.
    pub(crate) fn insert(&mut self, lo: u128, hi: u128, claimant: Claimant) {
        self.used = self.used.saturating_add(self.avail.count_within(lo, hi));
        self.occupied.insert(lo, hi);
        self.blocks.insert(lo, (hi, claimant));
    }

    /// Forgets the block starting at `lo`; returns its end and holder.
    pub(crate) fn remove(&mut self, lo: u128) -> Option<(u128, Claimant)> {
        let (hi, c) = self.blocks.remove(&lo)?;
        self.occupied.remove(lo, hi);
        self.used = self.used.saturating_sub(self.avail.count_within(lo, hi));
        Some((hi, c))
    }

    /// Drops every allocation.
    pub(crate) fn clear(&mut self) {
        *self = Self::new(std::mem::take(&mut self.avail));
    }

    /// The first `lo >= from` such that `lo..lo+len` is available, unallocated and at most
    /// `to`. Cost: one step per allocated run (or too-short gap) passed, never per value.
    pub(crate) fn find_from(&self, len: u128, from: u128, to: u128) -> Option<u128> {
        if len == 0 || from > to {
            return None;
        }
        self.avail
            .clipped(from, to)
            .find_map(|(a, b)| self.first_fit(len, a, b))
    }

    /// The first free run of `len` values inside `a..=b` (all available).
    fn first_fit(&self, len: u128, a: u128, b: u128) -> Option<u128> {
        let mut c = a;
        loop {
            if c > b || span(c, b) < len {
                return None;
            }
            if let Some((_, end)) = self.occupied.run_containing(c) {
                c = end.checked_add(1)?;
                continue;
            }
            let gap_end = self
                .occupied
                .next_run_after(c)
                .map_or(b, |(next, _)| (next - 1).min(b));
            if span(c, gap_end) >= len {
                return Some(c);
            }
            c = gap_end.checked_add(1)?;
        }
    }
}

/// Next fit: searches `cursor..=window.1`, then the whole window from its start.
pub(crate) fn wrap_search(
    cursor: u128,
    window: (u128, u128),
    search: impl Fn(u128, u128) -> Option<u128>,
) -> Option<u128> {
    let (lo, hi) = window;
    if lo > hi {
        return None;
    }
    let from = cursor.clamp(lo, hi);
    search(from, hi).or_else(|| if from > lo { search(lo, hi) } else { None })
}
