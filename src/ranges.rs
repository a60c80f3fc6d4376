//! A set of `u64` kept as disjoint half-open ranges.
//!
//! Tracking which sequence numbers of an origin were seen costs memory per *gap*, not per event:
//! a run of a million events seen without loss is one range.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent half-open ranges `start..end`, keyed by `start`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: BTreeMap<u64, u64>,
    len: u64,
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n`; returns `false` if it was already present.
    pub fn insert(&mut self, n: u64) -> bool {
        let end = n + 1;
        // The range starting at or before n, if any.
        let below = self.ranges.range(..=n).next_back().map(|(&s, &e)| (s, e));
        if let Some((_, e)) = below {
            if n < e {
                return false;
            }
        }
        let joins_below = below.filter(|&(_, e)| e == n);
        let joins_above = self.ranges.get(&end).copied();
        match (joins_below, joins_above) {
            (Some((s, _)), Some(above_end)) => {
                self.ranges.remove(&end);
                self.ranges.insert(s, above_end);
            }
            (Some((s, _)), None) => {
                self.ranges.insert(s, end);
            }
            (None, Some(above_end)) => {
                self.ranges.remove(&end);
                self.ranges.insert(n, above_end);
            }
            (None, None) => {
                self.ranges.insert(n, end);
            }
        }
        self.len += 1;
        true
    }

    /// Whether `n` is present.
    pub fn contains(&self, n: u64) -> bool {
        self.ranges
            .range(..=n)
            .next_back()
            .is_some_and(|(_, &e)| n < e)
    }

    /// Number of values present.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One past the largest value, or 0 when empty.
    pub fn end(&self) -> u64 {
        self.ranges.values().next_back().copied().unwrap_or(0)
    }

    /// Number of stored ranges (what memory grows with).
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// The gaps below [`RangeSet::end`], from 0: the values missing if everything up to the largest
    /// value should be there.
    pub fn gaps(&self) -> impl Iterator<Item = std::ops::Range<u64>> + '_ {
        let mut next = 0;
        self.ranges.iter().filter_map(move |(&s, &e)| {
            let gap = (s > next).then_some(next..s);
            next = e;
            gap
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn in_order_values_stay_one_range() {
        let mut set = RangeSet::new();
        for n in 0..10_000 {
            assert!(set.insert(n));
        }
        assert_eq!(set.range_count(), 1);
        assert_eq!(set.len(), 10_000);
        assert_eq!(set.end(), 10_000);
        assert_eq!(set.gaps().count(), 0);
    }

    #[test]
    fn duplicates_are_reported_and_gaps_listed() {
        let mut set = RangeSet::new();
        for n in [5, 6, 2, 9, 3] {
            assert!(set.insert(n));
        }
        assert!(!set.insert(6));
        assert!(!set.insert(2));
        assert_eq!(set.gaps().collect::<Vec<_>>(), vec![0..2, 4..5, 7..9]);
        assert!(set.insert(4));
        assert_eq!(set.gaps().collect::<Vec<_>>(), vec![0..2, 7..9]);
        assert_eq!(set.range_count(), 2);
    }

    proptest! {
        #[test]
        fn behaves_like_a_set(values in proptest::collection::vec(0u64..200, 0..400)) {
            let mut set = RangeSet::new();
            let mut model = BTreeSet::new();
            for v in values {
                prop_assert_eq!(set.insert(v), model.insert(v));
            }
            prop_assert_eq!(set.len(), model.len() as u64);
            for v in 0..200 {
                prop_assert_eq!(set.contains(v), model.contains(&v));
            }
            let end = model.iter().next_back().map_or(0, |m| m + 1);
            prop_assert_eq!(set.end(), end);
            let missing: u64 = set.gaps().map(|g| g.end - g.start).sum();
            prop_assert_eq!(missing, end - model.len() as u64);
        }
    }
}
