//! TLS in front of moto, as AWS serves every endpoint: a local CA, an RSA-2048 server certificate
//! under an RSA-2048 intermediate (the shape of the chains AWS endpoints present), and a
//! TLS-terminating proxy per endpoint that counts the connections it accepts.
//!
//! For the benchmarks: moto speaks plain HTTP, so without this a cold start never pays the TLS
//! handshakes and trust-store load it pays on Lambda.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Where the system's root bundle lives on Debian/Ubuntu and on Amazon Linux (Lambda's al2023).
const SYSTEM_BUNDLES: [&str; 2] = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"];

/// A throwaway certificate authority and the server chain it signed for 127.0.0.1.
pub struct LocalCa {
    /// The root certificate (PEM).
    pub root_pem: PathBuf,
    /// The system root bundle with the local root appended: point `SSL_CERT_FILE` here.
    pub bundle: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key_pem: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run the openssl command");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A certificate for `cn` (`name`.pem, its key `name`.key) that `signer` signs, with the
/// extensions of `section` in ext.cnf.
fn sign(dir: &Path, name: &str, cn: &str, signer: &str, section: &str) {
    let rsa = ["-newkey", "rsa:2048", "-nodes"];
    let (key, csr, pem) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
    openssl(dir, &[&["req"][..], &rsa, &["-keyout", &key, "-out", &csr, "-subj", cn]].concat());
    let (ca, ca_key) = (format!("{signer}.pem"), format!("{signer}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-extensions",
            section,
        ],
    );
}

impl LocalCa {
    /// Generates a root, an intermediate and a server certificate for 127.0.0.1 (all RSA-2048)
    /// with the openssl command into `dir`, and writes the trust bundle.
    pub fn generate(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("certificate directory");
        let ext = "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
                   [leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                   extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n";
        std::fs::write(dir.join("ext.cnf"), ext).expect("extensions file");
        let rsa = ["-newkey", "rsa:2048", "-nodes"];
        openssl(
            dir,
            &[
                &["req", "-x509"][..],
                &rsa,
                &["-keyout", "root.key", "-out", "root.pem", "-days", "2"],
                &[
                    "-subj",
                    "/CN=pushdeploy bench root",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        for (name, cn, signer, section) in [
            ("intermediate", "/CN=pushdeploy bench intermediate", "root", "ca"),
            ("server", "/CN=127.0.0.1", "intermediate", "leaf"),
        ] {
            sign(dir, name, cn, signer, section);
        }
        let chain = ["server.pem", "intermediate.pem"]
            .iter()
            .map(|f| CertificateDer::from_pem_file(dir.join(f)).expect("certificate PEM"))
            .collect();
        let system = SYSTEM_BUNDLES
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .expect("a system root bundle (the ca-certificates package)");
        let mut bundle = system;
        bundle.extend(std::fs::read(dir.join("root.pem")).expect("root PEM"));
        std::fs::write(dir.join("bundle.pem"), bundle).expect("trust bundle");
        Self { root_pem: dir.join("root.pem"), bundle: dir.join("bundle.pem"), chain, key_pem: dir.join("server.key") }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        server_config(self.chain.clone(), &self.key_pem)
    }
}

fn server_config(chain: Vec<CertificateDer<'static>>, key_pem: &Path) -> Arc<rustls::ServerConfig> {
    let key = PrivateKeyDer::from_pem_file(key_pem).expect("server key PEM");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate and key");
    // HTTP/1.1 only, as S3 serves it: concurrent calls then need a connection each.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl LocalCa {
    /// A server certificate for the DNS name `name`, signed by the intermediate: a site that
    /// serves `name` (its key and chain), for [`TlsFront::for_site`].
    pub fn site(&self, name: &str) -> SiteCert {
        let dir = self.root_pem.parent().expect("the CA's directory").to_path_buf();
        let section = format!("site_{}", name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
        let ext = format!("\n[{section}]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:{name}\n");
        let mut cnf = std::fs::read_to_string(dir.join("ext.cnf")).expect("extensions file");
        cnf.push_str(&ext);
        std::fs::write(dir.join("ext.cnf"), cnf).expect("extensions file");
        sign(&dir, &section, &format!("/CN={name}"), "intermediate", &section);
        let chain = [format!("{section}.pem"), "intermediate.pem".to_string()]
            .iter()
            .map(|f| CertificateDer::from_pem_file(dir.join(f)).expect("certificate PEM"))
            .collect();
        SiteCert { chain, key_pem: dir.join(format!("{section}.key")) }
    }

    /// The root, as the smoke client takes a trusted root.
    pub fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(&std::fs::read(&self.root_pem).expect("root PEM")).expect("root certificate")
    }
}

/// A server certificate chain and its key.
pub struct SiteCert {
    chain: Vec<CertificateDer<'static>>,
    key_pem: PathBuf,
}

/// A TLS-terminating proxy on 127.0.0.1 in front of a plain-HTTP endpoint; stops when dropped.
pub struct TlsFront {
    /// `https://127.0.0.1:<port>`: point the SDK here (and trust [`LocalCa::bundle`]).
    pub endpoint: String,
    accepted: Arc<AtomicUsize>,
    sni: Arc<Mutex<Vec<Option<String>>>>,
    task: JoinHandle<()>,
}

impl TlsFront {
    /// Terminates TLS with `ca`'s server chain and forwards the bytes to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str, ca: &LocalCa) -> Self {
        Self::serve(upstream, ca.server_config()).await
    }

    /// Terminates TLS with `site`'s certificate (a name's, not 127.0.0.1's) in front of `upstream`.
    pub async fn for_site(upstream: &str, site: &SiteCert) -> Self {
        Self::serve(upstream, server_config(site.chain.clone(), &site.key_pem)).await
    }

    /// The server name (SNI) each handshake asked for, in order.
    pub fn server_names(&self) -> Vec<Option<String>> {
        self.sni.lock().expect("lock").clone()
    }

    async fn serve(upstream: &str, config: Arc<rustls::ServerConfig>) -> Self {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the TLS front");
        let endpoint = format!("https://{}", listener.local_addr().expect("address"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let sni: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let (count, seen) = (accepted.clone(), sni.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (acceptor, upstream, seen) = (acceptor.clone(), upstream.clone(), seen.clone());
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    seen.lock().expect("lock").push(tls.get_ref().1.server_name().map(str::to_string));
                    let Ok(mut plain) = TcpStream::connect(&upstream).await else { return };
                    let _ = plain.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self { endpoint, accepted, sni, task }
    }

    /// TCP connections accepted so far (each a TLS handshake).
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}
