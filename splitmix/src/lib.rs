//! SplitMix64 (Steele, Lea and Flood, 2014): a small, fast generator fully determined by its
//! seed. The simulation, the replay, the watch simulator, the demo data, the fault proxy and
//! the sync client's jitter take their randomness from it, so that a seed gives the same run
//! everywhere. Not for secrets: keys, nonces and codes come from the operating system.

/// The generator: a 64-bit state that advances by the golden-ratio increment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The generator that `seed` starts.
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; 0 when `n` is 0, without drawing.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// An index into something `len` long; 0 when it is empty.
    pub fn index(&mut self, len: usize) -> usize {
        // A usize always fits in a u64 here, and what `below` returns is under `len`.
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }

    /// One of `items`; `None` when there are none.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.index(items.len()))
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A number in `0.0..1.0`, from 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_gives_the_reference_sequence() {
        // The first outputs for seed 1234567 of the authors' C reference implementation.
        let mut rng = SplitMix64::new(1_234_567);
        let first: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423,
                4_593_380_528_125_082_431,
                16_408_922_859_458_223_821,
            ]
        );
    }

    #[test]
    fn ranges_hold_and_an_empty_range_draws_nothing() {
        let mut rng = SplitMix64::new(9988);
        for n in 1..200u64 {
            assert!(rng.below(n) < n);
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
        let before = rng.clone();
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.index(0), 0);
        assert_eq!(rng.pick::<u8>(&[]), None);
        assert_eq!(rng, before);
        assert!(!rng.chance(0));
        assert!(rng.chance(100));
        assert!(rng.pick(&[1, 2, 3]).is_some_and(|x| (1..=3).contains(x)));
    }

    #[test]
    fn the_seed_decides_everything() {
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}
