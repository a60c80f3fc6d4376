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
        // Fast path: the next value after the last range (a run read in order).
        if let Some((&start, last_end)) = self.ranges.iter_mut().next_back() {
            if *last_end == n {
                *last_end = n + 1;
                self.len += 1;
                return true;
            }
            if (start..*last_end).contains(&n) {
                return false;
            }
        }
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

    /// The smallest value, if any.
    pub fn start(&self) -> Option<u64> {
        self.ranges.keys().next().copied()
    }

    /// How many values are at or above `from`.
    pub fn count_from(&self, from: u64) -> u64 {
        self.ranges
            .range(..)
            .rev()
            .take_while(|(_, &e)| e > from)
            .map(|(&s, &e)| e - s.max(from))
            .sum()
    }

    /// Number of stored ranges (what memory grows with).
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// The gaps below [`RangeSet::end`], from 0: the values missing if everything up to the largest
    /// value should be there.
    pub fn gaps(&self) -> impl Iterator<Item = std::ops::Range<u64>> + '_ {
        self.gaps_below(self.end())
    }

    /// The values in `0..limit` that are not in the set, as ranges.
    pub fn gaps_below(&self, limit: u64) -> impl Iterator<Item = std::ops::Range<u64>> + '_ {
        let mut next = 0;
        self.ranges
            .iter()
            .map(|(&s, &e)| (s, e))
            .chain([(u64::MAX, u64::MAX)])
            .filter_map(move |(s, e)| {
                let gap = (next < limit && s > next).then(|| next..s.min(limit));
                next = next.max(e);
                gap
            })
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> impl Iterator<Item = std::ops::Range<u64>> + '_ {
        self.ranges.iter().map(|(&s, &e)| s..e)
    }

    /// Adds every value of `range`, merging with what is there.
    pub fn insert_range(&mut self, range: std::ops::Range<u64>) {
        if range.is_empty() {
            return;
        }
        let (mut start, mut end) = (range.start, range.end);
        // Ranges that overlap or touch `range`: they start at or before its end and end at or
        // after its start.
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(..=end)
            .rev()
            .take_while(|(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.ranges.remove(&s);
            self.len -= e - s;
            start = start.min(s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
        self.len += end - start;
    }

    /// The values of this set that are not in `other`.
    pub fn difference(&self, other: &RangeSet) -> RangeSet {
        let mut out = RangeSet::new();
        for range in self.ranges() {
            let mut from = range.start;
            for (&s, &e) in other.ranges.range(..range.end) {
                if e <= from {
                    continue;
                }
                if s > from {
                    out.insert_range(from..s.min(range.end));
                }
                from = from.max(e);
                if from >= range.end {
                    break;
                }
            }
            out.insert_range(from..range.end);
        }
        out
    }

    /// How many values of `other` are in this set too.
    pub fn overlap(&self, other: &RangeSet) -> u64 {
        other
            .ranges()
            .map(|r| {
                self.ranges
                    .range(..r.end)
                    .rev()
                    .take_while(|(_, &e)| e > r.start)
                    .map(|(&s, &e)| e.min(r.end) - s.max(r.start))
                    .sum::<u64>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn difference_holds_exactly_the_values_not_in_the_other(
            a in proptest::collection::vec(0u64..200, 0..80),
            b in proptest::collection::vec(0u64..200, 0..80),
        ) {
            let (mut x, mut y) = (RangeSet::new(), RangeSet::new());
            a.iter().for_each(|&n| { x.insert(n); });
            b.iter().for_each(|&n| { y.insert(n); });
            let d = x.difference(&y);
            for n in 0..200 {
                proptest::prop_assert_eq!(d.contains(n), x.contains(n) && !y.contains(n), "{}", n);
            }
            proptest::prop_assert_eq!(d.len(), x.len() - x.overlap(&y));
        }
    }

    #[test]
    fn start_and_count_from() {
        let mut set = RangeSet::new();
        assert_eq!((set.start(), set.count_from(0)), (None, 0));
        set.insert_range(3..5);
        set.insert_range(8..12);
        assert_eq!(set.start(), Some(3));
        assert_eq!([0, 4, 5, 9, 12].map(|f| set.count_from(f)), [6, 5, 4, 3, 0]);
    }
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

    #[test]
    fn gaps_below_a_limit_include_the_tail() {
        let mut set = RangeSet::new();
        for n in [2, 3, 7] {
            set.insert(n);
        }
        assert_eq!(
            set.gaps_below(10).collect::<Vec<_>>(),
            vec![0..2, 4..7, 8..10]
        );
        assert_eq!(set.gaps_below(3).collect::<Vec<_>>(), vec![0..2]);
        assert_eq!(
            RangeSet::new().gaps_below(4).collect::<Vec<_>>(),
            vec![0..4]
        );
    }

    proptest! {
        #[test]
        fn insert_range_is_inserting_each_value(
            ranges in proptest::collection::vec((0u64..100, 0u64..20), 0..20),
        ) {
            let (mut fast, mut slow) = (RangeSet::new(), RangeSet::new());
            for (start, len) in ranges {
                fast.insert_range(start..start + len);
                (start..start + len).for_each(|n| { slow.insert(n); });
            }
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn overlap_counts_common_values(
            a in proptest::collection::vec(0u64..100, 0..80),
            b in proptest::collection::vec(0u64..100, 0..80),
        ) {
            let (mut x, mut y) = (RangeSet::new(), RangeSet::new());
            a.iter().for_each(|&v| { x.insert(v); });
            b.iter().for_each(|&v| { y.insert(v); });
            let common = (0..100).filter(|&v| x.contains(v) && y.contains(v)).count() as u64;
            prop_assert_eq!(x.overlap(&y), common);
            prop_assert_eq!(y.overlap(&x), common);
        }

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
