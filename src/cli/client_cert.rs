//! `mssante client-cert …`: which client certificates open which application BAL with SASL
//! EXTERNAL (ADR 0029). A certificate is named by its subject DN, a subjectAltName, or read
//! from a PEM file (its subject DN is bound).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use mssante_store::Store;
use mssante_trust::{CertName, Dn};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Subcommand)]
pub enum ClientCertCommand {
    /// Lets a certificate open an APP BAL (AUTHENTICATE / AUTH EXTERNAL). The certificate
    /// must also chain to `[tls] client_ca_file`.
    Bind {
        /// The APP BAL.
        bal: String,
        #[command(flatten)]
        name: NameArgs,
    },
    /// Removes a binding.
    Unbind {
        bal: String,
        #[command(flatten)]
        name: NameArgs,
    },
    /// Lists bindings, of one BAL or all.
    List {
        #[arg(long)]
        bal: Option<String>,
    },
}

/// One way to name the certificate.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct NameArgs {
    /// Its subject DN (RFC 4514, e.g. "CN=lab.ch-exemple.fr,O=CH Exemple,C=FR"); attribute
    /// order and case do not matter.
    #[arg(long)]
    dn: Option<String>,
    /// A subjectAltName: email:ADDRESS, dns:NAME or uri:URI.
    #[arg(long)]
    san: Option<String>,
    /// A PEM file holding the certificate: its subject DN.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
}

impl NameArgs {
    fn name(&self) -> Result<CertName> {
        if let Some(dn) = &self.dn {
            return Ok(CertName::Dn(
                Dn::parse(dn).map_err(|e| anyhow!("--dn: {e}"))?,
            ));
        }
        if let Some(san) = &self.san {
            return CertName::parse_san(san).map_err(|e| anyhow!("--san: {e}"));
        }
        let Some(path) = &self.cert else {
            bail!("give --dn, --san or --cert");
        };
        let cert = CertificateDer::from_pem_file(path)
            .map_err(|e| anyhow!("--cert {}: no PEM certificate: {e}", path.display()))?;
        let dn =
            Dn::from_certificate(&cert).with_context(|| format!("--cert {}", path.display()))?;
        Ok(CertName::Dn(dn))
    }
}

pub async fn run(store: &Store, cmd: ClientCertCommand) -> Result<()> {
    match cmd {
        ClientCertCommand::Bind { bal, name } => {
            let name = name.name()?;
            let text = name.to_string();
            if store
                .bind_client_certificate(&bal, &name.binding_key(), &text)
                .await?
            {
                println!("{text} opens {bal}");
            } else {
                println!("{text} already opens {bal}");
            }
        }
        ClientCertCommand::Unbind { bal, name } => {
            let name = name.name()?;
            if !store
                .unbind_client_certificate(&bal, &name.binding_key())
                .await?
            {
                bail!("{name} was not bound to {bal}");
            }
            println!("{name} no longer opens {bal}");
        }
        ClientCertCommand::List { bal } => {
            for binding in store.client_certificate_bindings(bal.as_deref()).await? {
                println!("{}\t{}", binding.bal, binding.name);
            }
        }
    }
    Ok(())
}
