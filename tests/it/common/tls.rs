//! TLS in front of a plain TCP server of the tests: a rustls server on loopback that
//! terminates TLS and passes the byte stream to the backend's TCP port, with a private CA made
//! for the test. DNS over TLS in front of a fake upstream; HTTPS in front of the API server
//! emulator.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::apiserver::ApiServer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// A CA of the test's own and a server certificate it signed for `name`.
pub struct TestPki {
    /// The CA certificate, PEM, written to `ca_file`.
    pub ca_file: PathBuf,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl TestPki {
    /// A CA and a certificate for `name` (a DNS name, or an IP address: an IP SAN), the CA
    /// written into `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "clusterdns test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Self {
            ca_file,
            cert: leaf.der().clone(),
            key: key.serialize_der(),
        }
    }
}

/// A TLS listener relaying each connection to a backend's TCP port.
pub struct TlsFront {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsFront {
    /// Serves TLS with `pki`'s server certificate on an ephemeral loopback port.
    pub async fn start(pki: &TestPki, backend: SocketAddr) -> Self {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![pki.cert.clone()], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self { addr, task }
    }
}

/// The API server emulator behind TLS, as a cluster's API server: a certificate for
/// 127.0.0.1 (an IP SAN) from a CA of the test's own, its PEM in `pki.ca_file`.
pub struct HttpsApi {
    pub api: ApiServer,
    pub pki: TestPki,
    pub front: TlsFront,
}

impl HttpsApi {
    /// The emulator and its TLS front, the CA written into `dir`.
    pub async fn start(dir: &Path) -> Self {
        let api = ApiServer::start().await;
        let backend: SocketAddr = api.url().trim_start_matches("http://").parse().unwrap();
        let pki = TestPki::new(dir, "127.0.0.1");
        let front = TlsFront::start(&pki, backend).await;
        Self { api, pki, front }
    }

    /// `start`, the emulator holding namespace `a` and Service `one` (10.96.1.1) and taking
    /// only requests that bear `token`.
    pub async fn serving_one(dir: &Path, token: &str) -> Self {
        let https = Self::start(dir).await;
        https.api.apply(super::objects::namespace("a"));
        https
            .api
            .apply(super::objects::cluster_ip("one", "10.96.1.1"));
        https.api.set_token(Some(token));
        https
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.front.addr)
    }
}
