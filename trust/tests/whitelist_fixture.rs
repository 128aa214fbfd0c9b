//! The real ANS whitelist (2025-03-13), which ends without `</ListeBlancheMSSante>`.

use mssante_trust::whitelist::NAMESPACE;
use mssante_trust::{Dn, TrustList, WhitelistError};
use sha2::{Digest, Sha256};

const FIXTURE: &[u8] = include_bytes!("fixtures/listeblanchemssante.xml");
const CHECKSUM: &str = include_str!("fixtures/checksum");
const MIPIH: &str =
    "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR";
const ENOVACOM: &str =
    "CN=mss.enovacom.fr,OU=344368557300034,O=ENOVACOM,ST=Bouches-du-Rhône (13),C=FR";

#[test]
fn real_file_parses_to_619_entries_and_516_domains() {
    assert!(
        !FIXTURE
            .trim_ascii_end()
            .ends_with(b"</ListeBlancheMSSante>")
    );
    let list = TrustList::parse(FIXTURE).unwrap();
    assert_eq!(list.entries().len(), 619);
    assert_eq!(list.domain_count(), 516);
    assert_eq!(list.generated_at(), "2025-03-13T14:54:10Z");
    let first = &list.entries()[0];
    assert_eq!(first.domain, "nddtestasmae.mssante.fr");
    assert_eq!(first.description, "BREST LA SAUVEGARDE");
    assert_eq!(first.updated, "2025-03-14T15:34:10Z");
    assert_eq!(
        first.support_contact,
        "08 10  61 50 50, medimail.technique@mipih.fr"
    );
    // Entities are decoded.
    assert!(
        list.entries()
            .iter()
            .any(|e| e.description.contains("AGE & VIE"))
    );
}

#[test]
fn real_file_matches_its_published_checksum() {
    let digest = hex::encode(Sha256::digest(FIXTURE));
    assert_eq!(digest, CHECKSUM.split_whitespace().next().unwrap());
}

#[test]
fn listed_domain_dn_pair_is_allowed_and_other_dn_is_not() {
    let list = TrustList::parse(FIXTURE).unwrap();
    let mipih = Dn::parse(MIPIH).unwrap();
    assert!(list.is_listed("nddtestasmae.mssante.fr"));
    assert!(list.dn_allowed("nddtestasmae.mssante.fr", &mipih));
    assert!(!list.dn_allowed("nddtestasmae.mssante.fr", &Dn::parse(ENOVACOM).unwrap()));
    assert!(!list.is_listed("not-in-the-list.example.fr"));
    assert!(!list.dn_allowed("not-in-the-list.example.fr", &mipih));
}

#[test]
fn domain_and_dn_comparison_is_case_insensitive() {
    let list = TrustList::parse(FIXTURE).unwrap();
    let shouting = Dn::parse(&MIPIH.to_uppercase()).unwrap();
    assert!(list.is_listed("NddTestAsmae.MSSANTE.fr"));
    assert!(list.dn_allowed("NDDTESTASMAE.MSSANTE.FR", &shouting));
    // Attribute order does not matter either (certificates store C first).
    let reversed = Dn::parse(
        "C=FR,ST=Haute-Garonne (31),O=GIP MIPIH,OU=318310021300028,CN=medimail-asip.mipih.fr",
    )
    .unwrap();
    assert!(list.dn_allowed("nddtestasmae.mssante.fr", &reversed));
}

#[test]
fn a_domain_with_several_mtas_has_several_dns() {
    let list = TrustList::parse(FIXTURE).unwrap();
    let entries = list.entries_for("15-20.mssante.fr");
    assert_eq!(entries.len(), 5, "{entries:?}");
    let cns: Vec<_> = entries.iter().filter_map(|e| e.dn.common_name()).collect();
    let distinct: std::collections::HashSet<_> = entries.iter().map(|e| &e.dn).collect();
    assert_eq!(distinct.len(), 5, "{cns:?}");
    for e in &entries {
        assert!(list.dn_allowed("15-20.mssante.fr", &e.dn));
    }
}

#[test]
fn fixture_with_its_root_end_tag_parses_the_same() {
    let mut closed = FIXTURE.to_vec();
    closed.extend_from_slice(b"</ListeBlancheMSSante>\n");
    let list = TrustList::parse(&closed).unwrap();
    assert_eq!((list.entries().len(), list.domain_count()), (619, 516));
}

fn cut_after(needle: &str, nth_from_middle: bool) -> Vec<u8> {
    let text = std::str::from_utf8(FIXTURE).unwrap();
    let start = if nth_from_middle { text.len() / 2 } else { 0 };
    let at = start + text[start..].find(needle).unwrap() + needle.len();
    FIXTURE[..at].to_vec()
}

#[test]
fn truncated_inside_a_domaine_is_refused() {
    let cut = cut_after("<DNCertificatOperateur>", true);
    let err = TrustList::parse(&cut).unwrap_err();
    assert!(matches!(err, WhitelistError::Truncated { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("truncated") && msg.contains("DNCertificatOperateur"),
        "{msg}"
    );
}

#[test]
fn truncated_between_two_domaines_is_refused() {
    // Every entry read so far is complete, but the rest of the list is missing.
    let cut = cut_after("</Domaine>", true);
    let err = TrustList::parse(&cut).unwrap_err();
    assert!(matches!(err, WhitelistError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("ListeDomaines"), "{err}");
}

#[test]
fn truncated_inside_a_tag_is_refused_with_a_line() {
    let mut cut = cut_after("</Domaine>", true);
    cut.extend_from_slice(b"\n<Doma");
    let err = TrustList::parse(&cut).unwrap_err();
    assert!(
        matches!(err, WhitelistError::Xml { line, .. } if line > 1000),
        "{err}"
    );
}

fn document(list: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListeBlancheMSSante xmlns=\"{NAMESPACE}\">\n\
         <DateDeGeneration>2025-03-13T14:54:10Z</DateDeGeneration>\n{list}\n</ListeBlancheMSSante>"
    )
}

#[test]
fn empty_list_is_refused() {
    for list in [
        "<ListeDomaines></ListeDomaines>",
        "<ListeDomaines/>",
        "<ListeDomaines>\n  </ListeDomaines>",
    ] {
        let err = TrustList::parse(document(list).as_bytes()).unwrap_err();
        assert!(matches!(err, WhitelistError::Empty), "{list}: {err}");
        assert!(err.to_string().contains("no entry"), "{err}");
    }
}

#[test]
fn missing_liste_domaines_is_refused() {
    let err = TrustList::parse(document("").as_bytes()).unwrap_err();
    assert!(matches!(err, WhitelistError::MissingList), "{err}");
}

#[test]
fn wrong_root_is_refused() {
    let text = std::str::from_utf8(FIXTURE).unwrap();
    let renamed = text.replacen("<ListeBlancheMSSante ", "<ListeNoire ", 1);
    let err = TrustList::parse(renamed.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, WhitelistError::WrongRoot { found } if found == "ListeNoire"),
        "{err}"
    );
    let html = TrustList::parse(b"<html><body>502 Bad Gateway</body></html>").unwrap_err();
    assert!(matches!(html, WhitelistError::WrongRoot { .. }), "{html}");
    let nothing = TrustList::parse(b"").unwrap_err();
    assert!(matches!(nothing, WhitelistError::Xml { .. }), "{nothing}");
}
