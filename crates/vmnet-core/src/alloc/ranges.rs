//! A set of `u128` values stored as merged, disjoint, inclusive intervals.

use std::collections::BTreeMap;

/// Number of values in `lo..=hi` (`lo <= hi`), saturating for the whole `u128` space.
pub(crate) fn span(lo: u128, hi: u128) -> u128 {
    (hi - lo).saturating_add(1)
}

/// Disjoint, non-adjacent inclusive intervals keyed by their first value. Memory is
/// proportional to the number of runs, never to the number of values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    runs: BTreeMap<u128, u128>,
    len: u128,
}

impl RangeSet {
    /// How many values the set holds (saturating at `u128::MAX`).
    pub(crate) fn len(&self) -> u128 {
        self.len
    }

    /// The runs in ascending order.
    pub(crate) fn runs(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        self.runs.iter().map(|(&lo, &hi)| (lo, hi))
    }

    /// The run containing `v`, if any.
    pub(crate) fn run_containing(&self, v: u128) -> Option<(u128, u128)> {
        self.runs
            .range(..=v)
            .next_back()
            .filter(|&(_, &hi)| hi >= v)
            .map(|(&lo, &hi)| (lo, hi))
    }

    /// The first run that starts after `v`.
    pub(crate) fn next_run_after(&self, v: u128) -> Option<(u128, u128)> {
        let start = v.checked_add(1)?;
        self.runs.range(start..).next().map(|(&lo, &hi)| (lo, hi))
    }

    /// Whether `v` is in the set.
    pub(crate) fn contains(&self, v: u128) -> bool {
        self.run_containing(v).is_some()
    }

    /// Whether every value of `lo..=hi` is in the set.
    pub(crate) fn contains_all(&self, lo: u128, hi: u128) -> bool {
        self.run_containing(lo).is_some_and(|(_, end)| end >= hi)
    }

    /// How many values of `lo..=hi` are in the set. Visits only the runs that overlap.
    pub(crate) fn count_within(&self, lo: u128, hi: u128) -> u128 {
        let first = self
            .runs
            .range(..=lo)
            .next_back()
            .map_or(lo, |(&start, _)| start);
        self.runs
            .range(first..=hi)
            .filter_map(|(&s, &e)| {
                let (a, b) = (s.max(lo), e.min(hi));
                (a <= b).then(|| span(a, b))
            })
            .fold(0u128, u128::saturating_add)
    }

    /// The runs overlapping `lo..=hi`, clipped to it.
    pub(crate) fn clipped(&self, lo: u128, hi: u128) -> impl Iterator<Item = (u128, u128)> + '_ {
        let first = self
            .runs
            .range(..=lo)
            .next_back()
            .map_or(lo, |(&start, _)| start);
        self.runs.range(first..=hi).filter_map(move |(&s, &e)| {
            let (a, b) = (s.max(lo), e.min(hi));
            (a <= b).then_some((a, b))
        })
    }

    /// Adds `lo..=hi`, merging with overlapping and adjacent runs.
    pub(crate) fn insert(&mut self, lo: u128, hi: u128) {
        let (mut lo, mut hi) = (lo, hi);
        if let Some((&s, &e)) = self.runs.range(..=lo).next_back()
            && e.saturating_add(1) >= lo
        {
            if e >= hi {
                return;
            }
            self.runs.remove(&s);
            self.len = self.len.saturating_sub(span(s, e));
            lo = s;
        }
        while let Some((&s, &e)) = self.runs.range(lo..).next() {
            if s > hi.saturating_add(1) {
                break;
            }
            self.runs.remove(&s);
            self.len = self.len.saturating_sub(span(s, e));
            hi = hi.max(e);
        }
        self.runs.insert(lo, hi);
        self.len = self.len.saturating_add(span(lo, hi));
    }

    /// Removes `lo..=hi`, splitting runs that straddle its ends.
    pub(crate) fn remove(&mut self, lo: u128, hi: u128) {
        if let Some((&s, &e)) = self.runs.range(..lo).next_back()
            && e >= lo
        {
            self.runs.insert(s, lo - 1);
            self.len = self.len.saturating_sub(span(lo, e));
            if e > hi {
                self.runs.insert(hi + 1, e);
                self.len = self.len.saturating_add(span(hi + 1, e));
                return;
            }
        }
        while let Some((&s, &e)) = self.runs.range(lo..=hi).next() {
            self.runs.remove(&s);
            self.len = self.len.saturating_sub(span(s, e));
            if e > hi {
                self.runs.insert(hi + 1, e);
                self.len = self.len.saturating_add(span(hi + 1, e));
            }
        }
    }

    /// This set minus `other`.
    pub(crate) fn difference(&self, other: &RangeSet) -> RangeSet {
        let mut out = self.clone();
        for (lo, hi) in other.runs() {
            out.remove(lo, hi);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_merges_adjacent_and_overlapping() {
        let mut s = RangeSet::default();
        s.insert(10, 12);
        s.insert(14, 15);
        assert_eq!(s.runs().count(), 2);
        s.insert(13, 13);
        assert_eq!(s.runs().collect::<Vec<_>>(), vec![(10, 15)]);
        s.insert(5, 20);
        assert_eq!(s.runs().collect::<Vec<_>>(), vec![(5, 20)]);
        assert_eq!(s.len(), 16);
        s.insert(7, 8);
        assert_eq!(s.len(), 16);
    }

    #[test]
    fn remove_splits() {
        let mut s = RangeSet::default();
        s.insert(0, 100);
        s.remove(10, 19);
        assert_eq!(s.runs().collect::<Vec<_>>(), vec![(0, 9), (20, 100)]);
        assert_eq!(s.len(), 91);
        s.remove(5, 25);
        assert_eq!(s.runs().collect::<Vec<_>>(), vec![(0, 4), (26, 100)]);
        s.remove(0, 200);
        assert_eq!(s.len(), 0);
        assert_eq!(s.runs().count(), 0);
    }

    #[test]
    fn counts_within_and_edges_of_the_space() {
        let mut s = RangeSet::default();
        s.insert(u128::MAX - 1, u128::MAX);
        s.insert(0, 0);
        assert_eq!(s.count_within(0, u128::MAX), 3);
        assert!(s.contains_all(u128::MAX - 1, u128::MAX));
        s.remove(u128::MAX, u128::MAX);
        assert_eq!(s.len(), 2);
        s.insert(0, u128::MAX);
        assert_eq!(s.len(), u128::MAX);
    }
}
