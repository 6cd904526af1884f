//! The one TLS stack of the process: rustls on ring, for the SDK's HTTPS client and for the smoke
//! client alike (no OpenSSL, no aws-lc-rs: smaller bootstraps, no C toolchain for arm64).

/// Makes rustls on ring the process's TLS crypto; reqwest (smoke tests) uses the process default.
pub fn install_crypto() {
    // Fails only when a provider is already installed, which is the state we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The SDK's defaults with its HTTPS client on rustls + ring instead of aws-lc-rs.
pub fn sdk_defaults() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let https = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https)
}
