//! The users' requests themselves: which target group each reaches (at random by the production
//! rule's weights, as an ALB routes), whether it fails and how long it takes. Pure and seeded, so
//! a test's traffic is the same from run to run.

/// How the image a target group serves behaves under users' traffic, and the group's hosts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// The share of requests the targets answer 5XX (0.02: 2 %).
    pub error_rate: f64,
    /// The median response time, in milliseconds.
    pub median_ms: f64,
    /// The 95th percentile response time, in milliseconds (≥ the median): with the median it
    /// fixes a lognormal distribution, the long right tail web latencies show.
    pub p95_ms: f64,
    /// Healthy targets (`HealthyHostCount`).
    pub healthy_hosts: u32,
    /// Unhealthy targets (`UnHealthyHostCount`).
    pub unhealthy_hosts: u32,
}

impl Profile {
    /// A group of two healthy targets failing `error_rate` of requests, with that latency.
    pub fn new(error_rate: f64, median_ms: f64, p95_ms: f64) -> Self {
        Self { error_rate, median_ms, p95_ms, healthy_hosts: 2, unhealthy_hosts: 0 }
    }

    /// This profile with `healthy` and `unhealthy` targets.
    pub fn hosts(self, healthy: u32, unhealthy: u32) -> Self {
        Self { healthy_hosts: healthy, unhealthy_hosts: unhealthy, ..self }
    }
}

/// One simulated request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Index of the target group (in the order they were added) that served it.
    pub group: usize,
    /// When, in epoch seconds.
    pub at_s: i64,
    /// Answered 5XX.
    pub error: bool,
    /// The target's response time, in seconds (as ALB reports `TargetResponseTime`).
    pub latency_s: f64,
}

/// z of the standard normal's 95th percentile: a lognormal's sigma from its median and p95.
const Z95: f64 = 1.644_853_626_951_472_2;

/// Draws requests over target groups from a seeded generator.
pub struct Simulator {
    rng: fastrand::Rng,
    /// (weight, profile) per group.
    groups: Vec<(u32, Profile)>,
}

impl Simulator {
    /// A simulator with no groups, drawing from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { rng: fastrand::Rng::with_seed(seed), groups: Vec::new() }
    }

    /// Restarts the draws from `seed`.
    pub fn seed(&mut self, seed: u64) {
        self.rng = fastrand::Rng::with_seed(seed);
    }

    /// Adds a group with its weight; its index is the number of groups before it.
    pub fn add(&mut self, weight: u32, profile: Profile) -> usize {
        self.groups.push((weight, profile));
        self.groups.len() - 1
    }

    /// Sets group `i`'s weight.
    pub fn set_weight(&mut self, i: usize, weight: u32) {
        self.groups[i].0 = weight;
    }

    /// Sets group `i`'s profile (the group now serves another image, or its hosts changed).
    pub fn set_profile(&mut self, i: usize, profile: Profile) {
        self.groups[i].1 = profile;
    }

    /// Group `i`'s profile.
    pub fn profile(&self, i: usize) -> Profile {
        self.groups[i].1
    }

    /// `requests_per_second` requests in each second of the `seconds` before `end_s` (epoch
    /// seconds, exclusive). With every weight 0 no request is routed (the rule forwards nowhere).
    pub fn run(&mut self, seconds: u64, requests_per_second: u32, end_s: i64) -> Vec<Sample> {
        let total: u64 = self.groups.iter().map(|(w, _)| u64::from(*w)).sum();
        let mut out = Vec::new();
        if total == 0 {
            return out;
        }
        for t in (end_s - seconds as i64)..end_s {
            for _ in 0..requests_per_second {
                let group = self.pick(total);
                let profile = self.groups[group].1;
                let error = self.rng.f64() < profile.error_rate;
                let latency_s = self.latency_ms(&profile) / 1000.0;
                out.push(Sample { group, at_s: t, error, latency_s });
            }
        }
        out
    }

    /// A group at random by weight, as an ALB's weighted forward picks one per request.
    fn pick(&mut self, total: u64) -> usize {
        let mut draw = self.rng.u64(0..total);
        for (i, (w, _)) in self.groups.iter().enumerate() {
            if draw < u64::from(*w) {
                return i;
            }
            draw -= u64::from(*w);
        }
        unreachable!("the draw is below the weights' total")
    }

    /// A lognormal draw with the profile's median and p95 (Box–Muller for the normal deviate).
    fn latency_ms(&mut self, p: &Profile) -> f64 {
        let median = p.median_ms.max(0.001);
        let sigma = (p.p95_ms.max(median) / median).ln() / Z95;
        let u1 = 1.0 - self.rng.f64(); // (0, 1]: ln never sees 0
        let u2 = self.rng.f64();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        median * (sigma * z).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_groups(seed: u64) -> Simulator {
        let mut sim = Simulator::new(seed);
        sim.add(95, Profile::new(0.001, 40.0, 90.0));
        sim.add(5, Profile::new(0.02, 40.0, 90.0));
        sim
    }

    #[test]
    fn random_routing_gives_each_group_about_its_weight() {
        let mut sim = two_groups(7);
        let samples = sim.run(600, 50, 1_800_000_000);
        assert_eq!(samples.len(), 30_000);
        let green = samples.iter().filter(|s| s.group == 1).count() as f64 / samples.len() as f64;
        // 5 % of 30,000: sd ≈ 0.13 %; four of them either side.
        assert!((green - 0.05).abs() < 0.005, "green's share {green}");
        let errors = |g: usize| {
            let of: Vec<_> = samples.iter().filter(|s| s.group == g).collect();
            of.iter().filter(|s| s.error).count() as f64 / of.len() as f64
        };
        assert!((errors(1) - 0.02).abs() < 0.008, "green's error rate {}", errors(1));
        assert!(errors(0) < 0.003, "blue's error rate {}", errors(0));
        assert!(samples.iter().all(|s| (1_800_000_000 - 600..1_800_000_000).contains(&s.at_s)));
    }

    #[test]
    fn the_same_seed_gives_the_same_traffic_and_another_seed_other_traffic() {
        let a = two_groups(42).run(60, 20, 1_800_000_000);
        assert_eq!(a, two_groups(42).run(60, 20, 1_800_000_000));
        assert_ne!(a, two_groups(43).run(60, 20, 1_800_000_000));
        let mut reseeded = two_groups(1);
        reseeded.seed(42);
        assert_eq!(a, reseeded.run(60, 20, 1_800_000_000));
    }

    #[test]
    fn latencies_follow_the_profiles_median_and_p95() {
        let mut sim = Simulator::new(3);
        sim.add(1, Profile::new(0.0, 40.0, 120.0));
        let mut ms: Vec<f64> = sim.run(200, 100, 1_800_000_000).iter().map(|s| s.latency_s * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[(q * ms.len() as f64) as usize];
        assert!((at(0.5) - 40.0).abs() < 2.0, "median {}", at(0.5));
        assert!((at(0.95) - 120.0).abs() < 8.0, "p95 {}", at(0.95));
    }

    #[test]
    fn weights_can_move_and_zero_sends_nothing() {
        let mut sim = two_groups(5);
        sim.set_weight(0, 0);
        assert!(sim.run(10, 10, 100).iter().all(|s| s.group == 1));
        sim.set_weight(1, 0);
        assert!(sim.run(10, 10, 100).is_empty());
    }
}
