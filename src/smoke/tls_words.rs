//! A failed connection in words a person acts on: which certificate check failed (the name, the
//! issuer, the dates), a host name that does not resolve, a refused connection.

use std::error::Error as StdError;

use rustls::{CertificateError, Error as TlsError};

/// Every error in `e`'s chain, including what an `io::Error` wraps (its `source` skips that).
fn chain<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        out.push(err);
        next = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => err.source(),
        };
    }
    out
}

/// The TLS failure in `e`'s chain, in words, if there is one.
pub fn in_chain(e: &(dyn StdError + 'static)) -> Option<String> {
    chain(e).into_iter().find_map(|err| err.downcast_ref::<TlsError>()).map(tls_error)
}

/// A rustls error in words.
pub fn tls_error(e: &TlsError) -> String {
    match e {
        TlsError::InvalidCertificate(c) => format!("TLS: {}", certificate(c)),
        TlsError::AlertReceived(alert) => format!("TLS: the server refused the handshake ({alert:?})"),
        TlsError::NoCertificatesPresented => "TLS: the server presented no certificate".into(),
        other => format!("TLS handshake failed: {other}"),
    }
}

fn certificate(c: &CertificateError) -> String {
    match c {
        CertificateError::NotValidForName => "the certificate is not valid for the URL's host name".into(),
        CertificateError::NotValidForNameContext { expected, presented } => format!(
            "the certificate is not valid for {} (it names {})",
            server_name(expected),
            if presented.is_empty() { "no host".to_string() } else { presented.join(", ") }
        ),
        CertificateError::UnknownIssuer => {
            "the certificate's issuer is not trusted (an unknown or private CA, a self-signed certificate, or a missing intermediate)".into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "the certificate has expired".into(),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the certificate is not valid yet (check the clock or the certificate's start date)".into()
        }
        CertificateError::Revoked => "the certificate has been revoked".into(),
        other => format!("the certificate was refused ({other:?})"),
    }
}

fn server_name(n: &rustls::pki_types::ServerName<'_>) -> String {
    match n {
        rustls::pki_types::ServerName::DnsName(d) => d.as_ref().to_string(),
        rustls::pki_types::ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// A connection that failed before TLS: the name did not resolve (the resolver's own words, which
/// for `connect_to` name its target), the connection was refused, or neither said.
pub fn connect_words(e: &(dyn StdError + 'static)) -> String {
    let errs = chain(e);
    if let Some(io) = errs.iter().find_map(|err| err.downcast_ref::<std::io::Error>()) {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => return "could not connect: connection refused".into(),
            std::io::ErrorKind::TimedOut => return "could not connect: timed out".into(),
            _ => {}
        }
    }
    if errs.iter().any(|err| err.to_string() == "dns error") {
        let why = errs.last().map(|err| err.to_string()).unwrap_or_default();
        return format!("could not connect: the host name did not resolve ({why})");
    }
    "could not connect".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_failures_say_which_check_failed() {
        let name = TlsError::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("todo.example.test").unwrap(),
            presented: vec!["DnsName(\"other.example.test\")".into()],
        });
        assert_eq!(
            tls_error(&name),
            "TLS: the certificate is not valid for todo.example.test (it names DnsName(\"other.example.test\"))"
        );
        let issuer = tls_error(&TlsError::InvalidCertificate(CertificateError::UnknownIssuer));
        assert!(issuer.starts_with("TLS: the certificate's issuer is not trusted"), "{issuer}");
        assert_eq!(
            tls_error(&TlsError::InvalidCertificate(CertificateError::Expired)),
            "TLS: the certificate has expired"
        );
        // Wrapped as tokio-rustls wraps it, the words are still found.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, name);
        assert!(in_chain(&io).unwrap().contains("not valid for todo.example.test"));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(connect_words(&refused), "could not connect: connection refused");
        assert_eq!(in_chain(&refused), None);
    }
}
