//! The arithmetic every table shares: milliseconds, medians, percentiles, Lambda's prices.

use std::time::Duration;

/// Lambda's price per GB-second on arm64.
pub const PRICE_GB_S: f64 = 0.0000133334;
/// Lambda's price per request.
pub const PRICE_REQUEST: f64 = 0.2e-6;

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of `v` (sorts it).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The 99th percentile of `v` (sorts it).
pub fn p99(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64) * 0.99).ceil() as usize - 1]
}
