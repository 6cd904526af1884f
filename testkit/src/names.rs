//! The estate's leaf names: region, account, cluster, bucket, registry, fake digests. Imports
//! nothing of testkit, so every other module may use it.

/// Region the estate lives in.
pub const REGION: &str = "ap-southeast-2";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";
/// The todo app's cluster.
pub const CLUSTER: &str = "todo-cluster";
/// The artifact bucket.
pub const BUCKET: &str = "pushdeploy-artifacts";

/// `<account>.dkr.ecr.<region>.amazonaws.com`.
pub fn registry() -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com")
}

/// A `sha256:` string unique to `seed` (hex of the seed, padded): distinct layers give distinct images in moto.
pub fn fake_digest(seed: &str) -> String {
    let mut hex: String = seed.bytes().map(|b| format!("{b:02x}")).collect();
    hex.truncate(64);
    format!("sha256:{hex:0>64}")
}
