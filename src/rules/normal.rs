//! The standard normal distribution, for the canary analysis' test ([`super::analysis`]): two
//! functions, written out rather than a statistics crate linked into both bootstraps for them.

/// Pure: Φ(z), the standard normal distribution function.
pub fn phi(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Pure: 1 − Φ(z), computed directly so small p-values keep their precision.
pub fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
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
    fn phi_matches_the_tables() {
        assert!((phi(1.96) - 0.975_002).abs() < 1e-6, "{}", phi(1.96));
        assert!((phi(-3.09) - 0.001_001).abs() < 1e-6, "{}", phi(-3.09));
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(2.326_348) - 0.99).abs() < 1e-6);
        assert!((upper_tail(5.0) - 2.866_5e-7).abs() < 1e-9, "small tails keep their precision");
        assert!(phi(-40.0) >= 0.0 && phi(40.0) <= 1.0);
    }
}
