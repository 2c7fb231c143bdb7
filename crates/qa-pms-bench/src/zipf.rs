//! Zipf-distributed key popularity: key k (1-based) is drawn with probability ∝ 1/k^s.

use rand::Rng;

pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(keys: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=keys)
            .map(|k| {
                total += 1.0 / (k as f64).powf(s);
                total
            })
            .collect::<Vec<_>>();
        Self {
            cumulative: cumulative.iter().map(|c| c / total).collect(),
        }
    }

    /// A key rank in 1..=keys.
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.gen();
        self.cumulative
            .partition_point(|c| *c < u)
            .min(self.cumulative.len() - 1)
            + 1
    }

    /// The probability mass of the `n` most popular keys: the best hit rate any cache holding `n`
    /// entries can reach on this distribution.
    pub fn top_mass(&self, n: usize) -> f64 {
        match n {
            0 => 0.0,
            n => self.cumulative[(n - 1).min(self.cumulative.len() - 1)],
        }
    }
}
