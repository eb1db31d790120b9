//! The demo's own pseudo-random numbers.
//!
//! SplitMix64 is a few lines, fast, and — unlike `rand` — its output is fixed
//! by this file alone, so the generated Parquet files stay byte-identical
//! across runs, machines and dependency upgrades.

/// A SplitMix64 stream.
pub(super) struct Rng(u64);

/// The 64-bit golden-ratio increment SplitMix64 steps its state by.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    /// The stream for one row of one table. Seeding per row, rather than
    /// running one stream through the whole table, lets any batch be built
    /// on its own and lets other tables look up a customer's attributes
    /// (such as the signup date) without replaying the stream.
    pub(super) fn for_row(table_salt: u64, row_id: i64) -> Self {
        let mut seed = Self(table_salt ^ (row_id as u64).wrapping_mul(GOLDEN));
        // One discarded draw spreads neighbouring row ids far apart.
        seed.next_u64();
        seed
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (`n > 0`). Lemire's multiply-shift keeps
    /// the bias far below anything a demo could notice, without a loop.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform integer in `lo..=hi`.
    pub(super) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `percent / 100`.
    pub(super) fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A uniform float in `[0, 1)`, from the top 53 bits.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One of `items`.
    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// One of `items`, chosen in proportion to its weight.
    pub(super) fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut roll = self.below(u64::from(total)) as u32;
        for (item, weight) in items {
            if roll < *weight {
                return *item;
            }
            roll -= weight;
        }
        items[items.len() - 1].0
    }
}
