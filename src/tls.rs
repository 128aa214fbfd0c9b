//! TLS server configuration: rustls with the ring provider, TLS 1.2 and 1.3 only.
//!
//! Every configuration (listeners and the relay's client side) takes its certificate from
//! one [`Certificates`] resolver, so that `SIGHUP` swaps the certificate for the handshakes
//! that follow while sessions already open keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Our certificate chain and key: the configured files, or (once) a self-signed pair.
pub struct Identity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Loads the configured certificate, or generates (once) a self-signed one for `hostname`.
    pub fn load(
        configured: Option<&(PathBuf, PathBuf)>,
        data_dir: &Path,
        hostname: &str,
    ) -> Result<Identity> {
        let (cert_path, key_path) = match configured {
            Some((c, k)) => (c.clone(), k.clone()),
            None => self_signed(data_dir, hostname)?,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
            .with_context(|| format!("tls.cert: cannot read {}", cert_path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("tls.cert: {}: {e}", cert_path.display()))?;
        if certs.is_empty() {
            return Err(anyhow!(
                "tls.cert: {} holds no certificate",
                cert_path.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| anyhow!("tls.key: {}: {e}", key_path.display()))?;
        Ok(Identity { certs, key })
    }
}

impl Identity {
    /// The certificate chain as loaded, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// The chain and a signing key for it, checked to belong together.
    fn certified(&self) -> Result<Arc<rustls::sign::CertifiedKey>> {
        let key = provider()
            .key_provider
            .load_private_key(self.key.clone_key())
            .map_err(|e| anyhow!("tls.key: unusable key: {e}"))?;
        let certified = rustls::sign::CertifiedKey::new(self.certs.clone(), key);
        certified
            .keys_match()
            .map_err(|e| anyhow!("tls: certificate and key do not match: {e}"))?;
        Ok(Arc::new(certified))
    }
}

/// The certificate in force, shared by every TLS configuration and replaced on reload.
#[derive(Debug)]
pub struct Certificates {
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl Certificates {
    pub fn new(identity: &Identity) -> Result<Arc<Certificates>> {
        Ok(Arc::new(Certificates {
            current: std::sync::RwLock::new(identity.certified()?),
        }))
    }

    /// Replaces the certificate by `identity`'s; on error the one in force stays.
    pub fn replace(&self, identity: &Identity) -> Result<()> {
        let certified = identity.certified()?;
        *self.current.write().expect("certificate lock") = certified;
        Ok(())
    }

    fn get(&self) -> Arc<rustls::sign::CertifiedKey> {
        self.current.read().expect("certificate lock").clone()
    }
}

impl rustls::server::ResolvesServerCert for Certificates {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.get())
    }
}

impl rustls::client::ResolvesClientCert for Certificates {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.get())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side: TLS 1.2 and 1.3 only. `client_verifier`: ask peers for a certificate
/// (the MX, docs/mssante.md §3; submission and IMAP with `[tls] client_ca_file`, for SASL
/// EXTERNAL); `None`: no client certificates.
pub fn server_config(
    certificates: &Arc<Certificates>,
    client_verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<Arc<rustls::ServerConfig>> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| anyhow!("TLS setup: {e}"))?;
    let builder = match client_verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(builder.with_cert_resolver(certificates.clone())))
}

/// The relay's client side: our certificate as client certificate (docs/mssante.md §3), peers
/// verified by `server_verifier` (the configured trust anchors), TLS 1.2 minimum.
pub fn client_config(
    certificates: &Arc<Certificates>,
    server_verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
) -> Result<Arc<rustls::ClientConfig>> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| anyhow!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(server_verifier)
        .with_client_cert_resolver(certificates.clone());
    Ok(Arc::new(config))
}

/// Where the self-signed pair lives (`data_dir/tls/{cert,key}.pem`).
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// `data_dir/tls/{cert,key}.pem`, created on first run (rcgen).
fn self_signed(data_dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let (cert_path, key_path) = self_signed_paths(data_dir);
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let certified = rcgen::generate_simple_self_signed(vec![hostname.to_string()])
        .map_err(|e| anyhow!("cannot generate a self-signed certificate: {e}"))?;
    write_private(&key_path, certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, certified.cert.pem())
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    tracing::warn!(
        "generated a self-signed certificate for {hostname} in {}",
        dir.display()
    );
    Ok((cert_path, key_path))
}

/// Writes a secret readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
