//! Record keys (`--key`): key cardinality decides how a topic's partitions are loaded.
//!
//! The original sends no key. `origin` keys every event by its origin (one partition, strict
//! order); `random:K` draws each key from K distinct ones (at most K partitions used, skew as K
//! decides); `sequential` keys event `n` by `n` (every key distinct). Keys are written into a
//! buffer kept for the run, so keying allocates nothing per event.

use std::str::FromStr;

/// How events are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyMode {
    /// No key, like the original (the partitioner spreads events).
    #[default]
    None,
    /// The origin string: all events of a producer land in one partition, in order.
    Origin,
    /// One of this many keys (`0` … `K-1`, in decimal), drawn at random for each event.
    Random(u64),
    /// The event's `n`, in decimal: every key distinct.
    Sequential,
}

impl FromStr for KeyMode {
    type Err = String;

    fn from_str(arg: &str) -> Result<Self, String> {
        let usage = "give none, origin, random:K (K distinct keys, K at least 1) or sequential";
        match arg {
            "none" => Ok(KeyMode::None),
            "origin" => Ok(KeyMode::Origin),
            "sequential" => Ok(KeyMode::Sequential),
            _ => match arg.strip_prefix("random:").map(str::parse::<u64>) {
                Some(Ok(k)) if k >= 1 => Ok(KeyMode::Random(k)),
                Some(_) => Err(format!(
                    "'{arg}' has no number of keys of at least 1; {usage}"
                )),
                None => Err(format!("'{arg}' is not a key mode; {usage}")),
            },
        }
    }
}

impl std::fmt::Display for KeyMode {
    /// As `--key` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMode::None => f.write_str("none"),
            KeyMode::Origin => f.write_str("origin"),
            KeyMode::Random(k) => write!(f, "random:{k}"),
            KeyMode::Sequential => f.write_str("sequential"),
        }
    }
}

/// splitmix64: a fast generator, good enough to spread keys and draw aborts evenly; seeded by
/// the run, so a run's draws are reproducible from its id.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        crate::wire::event::mix(self.0)
    }

    /// A number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes each event's key for one run.
pub struct Keyer {
    /// How keys are made.
    mode: KeyMode,
    /// The origin's bytes, for [`KeyMode::Origin`].
    origin: Vec<u8>,
    /// The generator of random keys.
    random: SplitMix,
    /// Where decimal keys are written (no allocation per event).
    int: itoa::Buffer,
}

impl Keyer {
    /// A keyer for a run from `origin`, its random keys seeded by `seed` (the run's key).
    pub fn new(mode: KeyMode, origin: &str, seed: u64) -> Self {
        Keyer {
            mode,
            origin: origin.as_bytes().to_vec(),
            random: SplitMix::new(seed),
            int: itoa::Buffer::new(),
        }
    }

    /// The key of event `n`, or `None` for no key.
    pub fn key(&mut self, n: u64) -> Option<&[u8]> {
        match self.mode {
            KeyMode::None => None,
            KeyMode::Origin => Some(&self.origin),
            KeyMode::Sequential => Some(self.int.format(n).as_bytes()),
            KeyMode::Random(k) => {
                let draw = self.random.next_u64() % k;
                Some(self.int.format(draw).as_bytes())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn parses_every_mode_and_refuses_the_rest() {
        assert_eq!("none".parse(), Ok(KeyMode::None));
        assert_eq!("origin".parse(), Ok(KeyMode::Origin));
        assert_eq!("sequential".parse(), Ok(KeyMode::Sequential));
        assert_eq!("random:16".parse(), Ok(KeyMode::Random(16)));
        for mode in ["none", "origin", "random:16", "sequential"] {
            assert_eq!(mode.parse::<KeyMode>().unwrap().to_string(), mode);
        }
        for bad in ["random:0", "random:", "random:x", "random"] {
            assert!(bad.parse::<KeyMode>().is_err(), "{bad}");
        }
    }

    #[test]
    fn random_keys_take_exactly_k_values_and_sequential_keys_are_n() {
        let mut keyer = Keyer::new(KeyMode::Random(7), "o", 42);
        let keys: BTreeSet<Vec<u8>> = (0..10_000)
            .map(|n| keyer.key(n).unwrap().to_vec())
            .collect();
        let expected: BTreeSet<Vec<u8>> = (0..7).map(|k: u64| k.to_string().into_bytes()).collect();
        assert_eq!(keys, expected);
        let mut sequential = Keyer::new(KeyMode::Sequential, "o", 42);
        assert_eq!(sequential.key(12345), Some(&b"12345"[..]));
        let mut origin = Keyer::new(KeyMode::Origin, "a (1.2.3.4)", 42);
        assert_eq!(origin.key(3), Some(&b"a (1.2.3.4)"[..]));
        assert_eq!(Keyer::new(KeyMode::None, "o", 1).key(0), None);
    }
}
