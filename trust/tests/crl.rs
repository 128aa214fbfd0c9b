//! CRLs (ADR 0041): what is kept, what is refused, and the verifiers that see them, with a
//! test PKI (testkit) and CRLs signed by rcgen, read from files.

use std::path::Path;

use mssante_testkit::pki::{Identity, OperatorSpec, TestPki};
use mssante_trust::crl::{Outcome, Revocation, load_kept};
use mssante_trust::{CertRefusal, PeerVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

const SPEC: OperatorSpec<'static> = OperatorSpec {
    mta: "mx.operateur-b.mssante.fr",
    siret: "22222222200022",
    org: "OPERATEUR B",
    departement: "Gironde (33)",
};

struct World {
    dir: tempfile::TempDir,
    pki: TestPki,
    peer: Identity,
    other: Identity,
    verifier: PeerVerifier,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&dir.path().join("pki"));
    let peer = pki.operator("peer", &SPEC);
    let other = pki.operator("other", &SPEC);
    let verifier = PeerVerifier::from_pem_file(&pki.root_pem).unwrap();
    World {
        dir,
        pki,
        peer,
        other,
        verifier,
    }
}

impl World {
    /// Writes `der` as the file the (single) configured URL names.
    fn publish(&self, der: &[u8]) {
        std::fs::write(self.url_path(), der).unwrap();
    }

    fn url_path(&self) -> std::path::PathBuf {
        self.dir.path().join("published.crl")
    }

    fn revocation(&self) -> Revocation {
        let url = self.url_path().display().to_string();
        Revocation::open(
            &[url],
            3600,
            &self.dir.path().join("data"),
            vec![self.verifier.clone()],
        )
        .unwrap()
    }

    fn check(&self, who: &Identity) -> Result<(), CertRefusal> {
        let chain = chain(&who.chain_pem);
        self.verifier
            .check_client_chain(&chain, UnixTime::now())
            .map(|_| ())
    }
}

fn chain(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn only(outcomes: Vec<(String, Outcome)>) -> Outcome {
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    outcomes.into_iter().next().unwrap().1
}

#[tokio::test]
async fn a_published_crl_refuses_the_listed_peer_only_and_names_serial_and_ca() {
    let w = world();
    let revocation = w.revocation();
    assert!(
        w.check(&w.peer).is_ok(),
        "before any CRL the peer is accepted"
    );

    w.publish(&w.pki.fresh_crl(&[&w.peer], 1));
    assert!(matches!(
        only(revocation.refresh().await),
        Outcome::Installed(_)
    ));
    match w.check(&w.peer) {
        Err(CertRefusal::Revoked { serial, issuer }) => {
            let hex: String = w.peer.serial.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(serial.replace(':', "").to_lowercase(), hex);
            assert!(issuer.contains("IGC-Santé TEST"), "{issuer}");
        }
        other => panic!("expected a revocation, got {other:?}"),
    }
    assert!(
        w.check(&w.other).is_ok(),
        "a certificate not listed stays valid"
    );

    // The same publication again changes nothing.
    assert!(matches!(
        only(revocation.refresh().await),
        Outcome::Unchanged(_)
    ));
}

#[tokio::test]
async fn the_relay_side_verifier_refuses_a_revoked_server_certificate() {
    let w = world();
    let revocation = w.revocation();
    // Built before the CRL: the relay's TLS configuration is not rebuilt on refresh.
    let server_verifier = w.verifier.tls_server_verifier();
    let name = rustls_pki_types::ServerName::try_from(SPEC.mta).unwrap();
    let peer = chain(&w.peer.chain_pem);
    let verify =
        || server_verifier.verify_server_cert(&peer[0], &peer[1..], &name, &[], UnixTime::now());
    assert!(verify().is_ok());
    w.publish(&w.pki.fresh_crl(&[&w.peer], 1));
    revocation.refresh().await;
    let err = verify().unwrap_err().to_string();
    assert!(err.to_lowercase().contains("revoked"), "{err}");
}

#[tokio::test]
async fn an_expired_or_older_crl_does_not_replace_the_kept_one() {
    let w = world();
    let revocation = w.revocation();
    w.publish(&w.pki.fresh_crl(&[&w.peer], 5));
    assert!(matches!(
        only(revocation.refresh().await),
        Outcome::Installed(_)
    ));

    // Expired: nextUpdate an hour ago, and listing nobody.
    w.publish(&w.pki.crl(&[], -48, -1, 6));
    match only(revocation.refresh().await) {
        Outcome::Refused(why) => assert!(why.contains("expired") && why.contains("stays"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(w.check(&w.peer), Err(CertRefusal::Revoked { .. })));

    // Older: thisUpdate before the kept one's.
    w.publish(&w.pki.crl(&[], -10, 24, 4));
    match only(revocation.refresh().await) {
        Outcome::Refused(why) => assert!(why.contains("older"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(w.check(&w.peer), Err(CertRefusal::Revoked { .. })));

    // A restart loads the kept CRL from the data dir, without the network.
    let w2 = World {
        verifier: PeerVerifier::from_pem_file(&w.pki.root_pem).unwrap(),
        ..w
    };
    std::fs::remove_file(w2.url_path()).unwrap();
    let _reopened = w2.revocation();
    assert!(matches!(
        w2.check(&w2.peer),
        Err(CertRefusal::Revoked { .. })
    ));
}

#[tokio::test]
async fn a_crl_with_a_bad_signature_or_from_an_unknown_ca_is_ignored() {
    let w = world();
    let revocation = w.revocation();
    let mut forged = w.pki.fresh_crl(&[&w.peer], 1);
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    w.publish(&forged);
    match only(revocation.refresh().await) {
        Outcome::Refused(why) => assert!(why.contains("signature"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(w.check(&w.peer).is_ok());
    assert!(revocation.snapshot().is_empty());

    // Signed by another CA that took the same name: its key is not the configured one.
    let impostor = TestPki::new(&w.dir.path().join("impostor"));
    w.publish(&impostor.fresh_crl(&[&w.peer], 1));
    match only(revocation.refresh().await) {
        Outcome::Refused(why) => assert!(why.contains("signature does not verify"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(w.check(&w.peer).is_ok());

    // Not a CRL at all.
    w.publish(b"<html>503</html>");
    assert!(matches!(
        only(revocation.refresh().await),
        Outcome::Refused(_)
    ));
    assert!(load_kept(&w.dir.path().join("data/crl"), w.verifier.anchors()).is_empty());
}

// Seen while writing the fuzz target `crl`: x509-parser reads a CRL and ignores what
// follows it, while rustls-webpki, which enforces CRLs, refuses the whole. Such a CRL, signed
// by the CA, was kept in the data dir before its installation failed, and every later start
// then failed on it. It is refused now, before anything is kept.
#[tokio::test]
async fn a_crl_the_verifiers_cannot_read_is_refused_before_it_is_kept() {
    let w = world();
    let revocation = w.revocation();
    w.publish(&w.pki.fresh_crl(&[], 1));
    assert!(matches!(
        only(revocation.refresh().await),
        Outcome::Installed(_)
    ));
    let mut trailing = w.pki.crl(&[&w.peer], -1, 24, 2);
    trailing.push(0);
    w.publish(&trailing);
    match only(revocation.refresh().await) {
        Outcome::Refused(why) => assert!(why.contains("trailing"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The kept CRL (number 1) is still the one in force, and a restart still starts.
    let kept = load_kept(&w.dir.path().join("data/crl"), w.verifier.anchors());
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].1.as_ref().unwrap().number.as_deref(), Some("1"));
    let _reopened = w.revocation();
    assert!(w.check(&w.peer).is_ok());
}
