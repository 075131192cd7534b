//! TLS for the HTTP-based clients: `https://` for Streamable HTTP, the legacy HTTP+SSE transport
//! and the OAuth client, `wss://` for WebSocket.
//!
//! # Decisions
//!
//! - **A feature, `tls`**, off by default (the crate builds without rustls), on in the `portico`
//!   binary. Without it every client refuses `https://` and `wss://` URLs at connect time with
//!   a `TlsUnsupported` error that says how to get TLS; [`ENABLED`] tells which build this is.
//! - **rustls with the `ring` provider** (no aws-lc: no C toolchain beyond what `ring` needs,
//!   and a lean build), installed as the process's default provider the first time a client is
//!   built unless the program installed one of its own first.
//! - **The platform's trust store**, through `rustls-platform-verifier` (what reqwest uses too),
//!   plus the roots a [`TlsConfig`] adds: a private CA, or a test server's self-signed
//!   certificate. Certificates are always verified; there is no switch to turn that off.
//! - **One place builds every client**: `reqwest_builder` for the reqwest-based ones and
//!   `ws_connector` for WebSocket, so the rules above hold for each transport alike.
//! - **reqwest without a provider.** reqwest 0.13 offers rustls with aws-lc or with no provider;
//!   this crate takes the second and brings ring. Features are unified, so in a program that
//!   links this crate with `tls`, *every* reqwest client has rustls and no provider of its own,
//!   and reqwest refuses to build one (it panics) until a provider is installed: call
//!   [`install_provider`] first if the program builds reqwest clients of its own. This crate's
//!   clients install it themselves.

use std::sync::Arc;

/// Whether this build speaks TLS (the crate's `tls` feature).
pub const ENABLED: bool = cfg!(feature = "tls");

/// How the clients' TLS trusts servers, beyond the platform's roots.
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// Certificates (PEM, one or more per entry) trusted as roots besides the platform's.
    pub extra_roots_pem: Vec<Arc<[u8]>>,
}

impl TlsConfig {
    /// Trusts the certificates in `pem` (one or more) as roots too.
    pub fn with_root_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.extra_roots_pem.push(Arc::from(pem.as_ref()));
        self
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("extra_roots_pem", &self.extra_roots_pem.len())
            .finish()
    }
}

/// Why a client's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// An extra root is not a PEM certificate.
    #[error("an extra root certificate is not a PEM certificate: {0}")]
    BadRoot(String),
    /// The platform's trust store could not be loaded.
    #[error("the platform's certificate store: {0}")]
    Platform(String),
}

/// What a `TlsUnsupported` error says to do.
pub(crate) const HOW_TO_GET_TLS: &str =
    "this build has no TLS: build portico-transport with its `tls` feature (the portico binary has it)";

/// Installs this crate's rustls provider (`ring`) as the process's default, unless one is
/// installed already; without the `tls` feature it does nothing. See the module docs for when a
/// program needs to call it.
pub fn install_provider() {
    #[cfg(feature = "tls")]
    provider();
}

/// Installs `ring` as the process's default rustls provider, unless one is installed.
#[cfg(feature = "tls")]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    if let Some(installed) = rustls::crypto::CryptoProvider::get_default() {
        return installed.clone();
    }
    // Losing a race to another installer is fine: theirs is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// The extra roots, as DER.
#[cfg(feature = "tls")]
fn extra_roots(tls: &TlsConfig) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = Vec::new();
    for pem in &tls.extra_roots_pem {
        let before = roots.len();
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots.push(cert.map_err(|e| TlsError::BadRoot(e.to_string()))?);
        }
        if roots.len() == before {
            return Err(TlsError::BadRoot("no CERTIFICATE block in it".into()));
        }
    }
    Ok(roots)
}

/// A reqwest client builder with this crate's TLS (or none, without the feature).
pub(crate) fn reqwest_builder(tls: &TlsConfig) -> Result<reqwest::ClientBuilder, TlsError> {
    #[cfg(feature = "tls")]
    {
        provider();
        let mut builder = reqwest::Client::builder().tls_backend_rustls();
        for pem in &tls.extra_roots_pem {
            // Checked here so a bad PEM is this error, not a build failure later.
            for cert in extra_roots(&TlsConfig {
                extra_roots_pem: vec![pem.clone()],
            })? {
                builder = builder.add_root_certificate(
                    reqwest::Certificate::from_der(&cert).map_err(|e| TlsError::BadRoot(e.to_string()))?,
                );
            }
        }
        Ok(builder)
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = tls;
        Ok(reqwest::Client::builder())
    }
}

/// The connector of a `wss://` WebSocket; `None` without the feature.
pub(crate) fn ws_connector(tls: &TlsConfig) -> Result<Option<tokio_tungstenite::Connector>, TlsError> {
    #[cfg(feature = "tls")]
    {
        let provider = provider();
        let roots = extra_roots(tls)?;
        let verifier = if roots.is_empty() {
            rustls_platform_verifier::Verifier::new(provider.clone())
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
        }
        .map_err(|e| TlsError::Platform(e.to_string()))?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Platform(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Some(tokio_tungstenite::Connector::Rustls(Arc::new(config))))
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = tls;
        Ok(None)
    }
}
