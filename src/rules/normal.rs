//! The standard normal and the binomial distributions, for the canary analysis' tests
//! ([`super::analysis`]): written out rather than a statistics crate linked into both bootstraps.

/// Pure: Φ(z), the standard normal distribution function.
pub fn phi(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Pure: 1 − Φ(z), computed directly so small p-values keep their precision.
pub fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Pure: P(X ≥ k) for X ~ Binomial(n, p), summed in logs term by term (exact, no underflow of
/// (1 − p)^n for large n).
pub fn binomial_upper_tail(n: u64, k: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    // ln C(n, i) built up from ln C(n, 0) = 0.
    let mut ln_choose = 0.0;
    let mut tail = 0.0;
    for i in 0..=n {
        if i >= k {
            tail += (ln_choose + i as f64 * lp + (n - i) as f64 * lq).exp();
        }
        if i < n {
            ln_choose += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
        }
    }
    tail.min(1.0)
}

/// The complementary error function by its Chebyshev fit (fractional error below 1.2e-7
/// everywhere): enough for p-values compared with 0.01, and no dependency for one function.
fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let coefficients = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let poly = coefficients.iter().rev().fold(0.0, |acc, c| c + t * acc);
    let tail = t * (-x * x + poly).exp();
    if x >= 0.0 {
        tail
    } else {
        2.0 - tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binomial_upper_tail_matches_hand_sums() {
        // P(X >= 2 | 10, 0.05) = 1 - 0.95^10 - 10 * 0.05 * 0.95^9 = 0.0861.
        assert!((binomial_upper_tail(10, 2, 0.05) - 0.086_138).abs() < 1e-5);
        assert!((binomial_upper_tail(3, 3, 0.5) - 0.125).abs() < 1e-12);
        assert_eq!(binomial_upper_tail(10, 0, 0.05), 1.0);
        assert_eq!(binomial_upper_tail(10, 11, 0.05), 0.0);
        assert!(binomial_upper_tail(150, 150, 0.05) < 1e-100);
        assert!(binomial_upper_tail(20_000, 1_000, 0.05) > 0.4, "large n does not underflow");
    }

    #[test]
    fn phi_matches_the_tables() {
        assert!((phi(1.96) - 0.975_002).abs() < 1e-6, "{}", phi(1.96));
        assert!((phi(-3.09) - 0.001_001).abs() < 1e-6, "{}", phi(-3.09));
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(2.326_348) - 0.99).abs() < 1e-6);
        assert!((upper_tail(5.0) - 2.866_5e-7).abs() < 1e-9, "small tails keep their precision");
        assert!(phi(-40.0) >= 0.0 && phi(40.0) <= 1.0);
    }
}
