//! Peer certificate checks with an rcgen test PKI, and real rustls handshakes in-process.

use std::sync::{Arc, Mutex};

use mssante_trust::{CertRefusal, Dn, PeerVerifier};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const LEAF_DN: &str =
    "CN=mss.test.fr,OU=318751275100020,O=OPERATEUR TEST,ST=Bouches-du-Rhône (13),C=FR";

struct Ca {
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "FR");
    dn.push(DnType::OrganizationName, "TEST IGC");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let der = params.self_signed(&key).unwrap().der().clone();
    Ca {
        der,
        issuer: Issuer::new(params, key),
    }
}

/// The DN in certificate (ASN.1) order, C first, as IGC-Santé issues them.
fn operator_dn() -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "FR");
    dn.push(DnType::StateOrProvinceName, "Bouches-du-Rhône (13)");
    dn.push(DnType::OrganizationName, "OPERATEUR TEST");
    dn.push(DnType::OrganizationalUnitName, "318751275100020");
    dn.push(DnType::CommonName, "mss.test.fr");
    dn
}

struct Leaf {
    der: CertificateDer<'static>,
    key: KeyPair,
}

fn leaf_with(ca: &Ca, edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
    let mut params = CertificateParams::new(vec!["mss.test.fr".to_string()]).unwrap();
    params.distinguished_name = operator_dn();
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    edit(&mut params);
    let key = KeyPair::generate().unwrap();
    let der = params.signed_by(&key, &ca.issuer).unwrap().der().clone();
    Leaf { der, key }
}

fn leaf(ca: &Ca) -> Leaf {
    leaf_with(ca, |_| {})
}

fn private_key(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

fn verifier(ca: &Ca) -> PeerVerifier {
    PeerVerifier::new(vec![ca.der.clone()]).unwrap()
}

#[test]
fn dn_from_rcgen_certificate_equals_the_whitelist_string() {
    let ca = ca("Test CA");
    let leaf = leaf(&ca);
    let from_cert = Dn::from_certificate(&leaf.der).unwrap();
    assert_eq!(from_cert, Dn::parse(LEAF_DN).unwrap());
    // The certificate stores C..CN; the DN prints CN first like the whitelist.
    assert_eq!(from_cert.to_string(), LEAF_DN);
    assert_ne!(
        from_cert,
        Dn::parse(
            "CN=other.test.fr,OU=318751275100020,O=OPERATEUR TEST,ST=Bouches-du-Rhône (13),C=FR"
        )
        .unwrap()
    );
}

#[test]
fn leaf_signed_by_the_root_is_accepted_with_its_dn() {
    let ca = ca("Test CA");
    let leaf = leaf(&ca);
    let dn = verifier(&ca)
        .check_client_chain(&[leaf.der], UnixTime::now())
        .unwrap();
    assert_eq!(dn, Dn::parse(LEAF_DN).unwrap());
}

#[test]
fn leaf_through_an_intermediate_is_accepted() {
    let root = ca("Test Root");
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Test Intermediate");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let key = KeyPair::generate().unwrap();
    let der = params.signed_by(&key, &root.issuer).unwrap().der().clone();
    let intermediate = Ca {
        der,
        issuer: Issuer::new(params, key),
    };
    let leaf = leaf(&intermediate);
    let v = verifier(&root);
    let chain = [leaf.der.clone(), intermediate.der.clone()];
    assert!(v.check_client_chain(&chain, UnixTime::now()).is_ok());
    // Without the intermediate, the leaf does not chain to the root.
    assert_eq!(
        v.check_client_chain(&chain[..1], UnixTime::now()),
        Err(CertRefusal::UnknownIssuer)
    );
}

#[test]
fn expired_leaf_is_refused_as_expired() {
    let ca = ca("Test CA");
    let leaf = leaf_with(&ca, |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let refusal = verifier(&ca)
        .check_client_chain(&[leaf.der], UnixTime::now())
        .unwrap_err();
    assert_eq!(refusal, CertRefusal::Expired);
    assert_eq!(refusal.to_string(), "client certificate expired");
}

#[test]
fn leaf_from_another_ca_is_refused_as_unknown_issuer() {
    let trusted = ca("Trusted CA");
    let other = ca("Other CA");
    let leaf = leaf(&other);
    assert_eq!(
        verifier(&trusted).check_client_chain(&[leaf.der], UnixTime::now()),
        Err(CertRefusal::UnknownIssuer)
    );
}

#[test]
fn empty_chain_is_missing() {
    let ca = ca("Test CA");
    assert_eq!(
        verifier(&ca).check_client_chain(&[], UnixTime::now()),
        Err(CertRefusal::Missing)
    );
}

#[test]
fn server_only_leaf_is_refused_for_client_auth() {
    let ca = ca("Test CA");
    let leaf = leaf_with(&ca, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    let refusal = verifier(&ca)
        .check_client_chain(&[leaf.der], UnixTime::now())
        .unwrap_err();
    assert!(
        matches!(&refusal, CertRefusal::Other(why) if why.contains("client authentication")),
        "{refusal:?}"
    );
}

#[test]
fn from_pem_file_reads_the_roots() {
    let ca = ca("Test CA");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("igc.pem");
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64_lines(ca.der.as_ref())
    );
    std::fs::write(&path, pem).unwrap();
    let v = PeerVerifier::from_pem_file(&path).unwrap();
    assert!(
        v.check_client_chain(&[leaf(&ca).der], UnixTime::now())
            .is_ok()
    );
}

/// Standard base64 in 64-character lines (enough for a PEM body).
fn base64_lines(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A client certificate resolver that records the CA hints of the CertificateRequest.
#[derive(Debug)]
struct RecordingResolver {
    key: Option<Arc<CertifiedKey>>,
    hints: Mutex<Vec<Vec<u8>>>,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(&self, hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        *self.hints.lock().unwrap() = hints.iter().map(|h| h.to_vec()).collect();
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

struct Outcome {
    server_saw: Option<Vec<CertificateDer<'static>>>,
    client_hints: Vec<Vec<u8>>,
}

/// Runs one handshake over an in-memory duplex: the server uses `tls_client_verifier()`, the
/// client verifies the server with `tls_server_verifier()` and presents `client` if given.
async fn handshake(
    v: &PeerVerifier,
    server_leaf: &Leaf,
    client: Option<&Leaf>,
    version: &'static rustls::SupportedProtocolVersion,
) -> Outcome {
    let server_config = ServerConfig::builder_with_provider(ring())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_client_cert_verifier(v.tls_client_verifier())
        .with_single_cert(vec![server_leaf.der.clone()], private_key(&server_leaf.key))
        .unwrap();
    let key = client.map(|c| {
        let signer = rustls::crypto::ring::sign::any_supported_type(&private_key(&c.key)).unwrap();
        Arc::new(CertifiedKey::new(vec![c.der.clone()], signer))
    });
    let resolver = Arc::new(RecordingResolver {
        key,
        hints: Mutex::new(Vec::new()),
    });
    let client_config = ClientConfig::builder_with_provider(ring())
        .with_protocol_versions(&[version])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(v.tls_server_verifier())
        .with_client_cert_resolver(resolver.clone());

    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let connector = TlsConnector::from(Arc::new(client_config));
    let name = ServerName::try_from("mss.test.fr").unwrap();
    let server = async move {
        let mut tls = acceptor.accept(a).await.expect("server handshake");
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"EHLO");
        tls.get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
    };
    let client = async move {
        let mut tls = connector.connect(name, b).await.expect("client handshake");
        tls.write_all(b"EHLO").await.unwrap();
        tls.flush().await.unwrap();
        tls
    };
    let (server_saw, _client_stream) = tokio::join!(server, client);
    let client_hints = resolver.hints.lock().unwrap().clone();
    Outcome {
        server_saw,
        client_hints,
    }
}

#[tokio::test]
async fn handshake_completes_with_and_without_client_certificate() {
    let ca = ca("Test CA");
    let v = verifier(&ca);
    let server_leaf = leaf(&ca);
    let client_leaf = leaf(&ca);
    let stranger = leaf(&self::ca("Stranger CA"));

    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        // A valid certificate: the server sees it and it checks out to the operator DN.
        let with = handshake(&v, &server_leaf, Some(&client_leaf), version).await;
        let chain = with.server_saw.expect("server sees the client certificate");
        assert_eq!(chain[0], client_leaf.der);
        assert_eq!(
            v.check_client_chain(&chain, UnixTime::now()),
            Ok(Dn::parse(LEAF_DN).unwrap())
        );
        // The CertificateRequest named our root as acceptable CA (DER subject inside).
        assert_eq!(with.client_hints.len(), 1, "{version:?}");
        assert!(
            with.client_hints[0]
                .windows(b"Test CA".len())
                .any(|w| w == b"Test CA")
        );

        // No certificate: the handshake still completes, the check says Missing.
        let without = handshake(&v, &server_leaf, None, version).await;
        let seen = without.server_saw.unwrap_or_default();
        assert!(seen.is_empty(), "{version:?}");
        assert_eq!(
            v.check_client_chain(&seen, UnixTime::now()),
            Err(CertRefusal::Missing)
        );

        // A certificate from an untrusted CA: handshake completes, refusal comes afterwards.
        let foreign = handshake(&v, &server_leaf, Some(&stranger), version).await;
        let chain = foreign
            .server_saw
            .expect("server sees the foreign certificate");
        assert_eq!(
            v.check_client_chain(&chain, UnixTime::now()),
            Err(CertRefusal::UnknownIssuer)
        );
    }
}

#[tokio::test]
async fn outbound_verifier_refuses_a_server_from_another_ca() {
    let ca = ca("Test CA");
    let v = verifier(&ca);
    let other = leaf(&self::ca("Other CA"));
    let server_config = ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![other.der.clone()], private_key(&other.key))
        .unwrap();
    let client_config = ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(v.tls_server_verifier())
        .with_no_client_auth();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let connector = TlsConnector::from(Arc::new(client_config));
    let name = ServerName::try_from("mss.test.fr").unwrap();
    let (server, client) = tokio::join!(acceptor.accept(a), connector.connect(name, b));
    let err = client.expect_err("the client refuses the server certificate");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert!(server.is_err());
}

#[tokio::test]
async fn handshake_fails_when_the_client_does_not_hold_the_certificate_key() {
    let ca = ca("Test CA");
    let v = verifier(&ca);
    let server_leaf = leaf(&ca);
    let genuine = leaf(&ca);
    let impostor_key = KeyPair::generate().unwrap();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let server_config = ServerConfig::builder_with_provider(ring())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_client_cert_verifier(v.tls_client_verifier())
            .with_single_cert(vec![server_leaf.der.clone()], private_key(&server_leaf.key))
            .unwrap();
        // Someone else's certificate, signed with the impostor's key.
        let signer =
            rustls::crypto::ring::sign::any_supported_type(&private_key(&impostor_key)).unwrap();
        let stolen = Arc::new(CertifiedKey::new(vec![genuine.der.clone()], signer));
        let client_config = ClientConfig::builder_with_provider(ring())
            .with_protocol_versions(&[version])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(v.tls_server_verifier())
            .with_client_cert_resolver(Arc::new(RecordingResolver {
                key: Some(stolen),
                hints: Mutex::new(Vec::new()),
            }));
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = TlsAcceptor::from(Arc::new(server_config));
        let connector = TlsConnector::from(Arc::new(client_config));
        let name = ServerName::try_from("mss.test.fr").unwrap();
        let server = async move {
            // TLS 1.3: the client finishes first; the server's verdict is what matters.
            let mut tls = acceptor.accept(a).await?;
            let mut buf = [0u8; 1];
            tls.read_exact(&mut buf).await.map(|_| ())
        };
        let client = async move {
            let mut tls = connector.connect(name, b).await?;
            tls.write_all(b"E").await?;
            tls.flush().await
        };
        let (server, _client) = tokio::join!(server, client);
        let err = server.expect_err("the server refuses a CertificateVerify made with another key");
        assert!(
            err.to_string().to_lowercase().contains("signature"),
            "{version:?}: {err}"
        );
    }
}
