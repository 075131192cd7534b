//! PKCE (RFC 7636) with `S256`, and the random strings of the flow (`state`, verifiers).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::AuthError;

/// `n` random bytes, Base64url without padding.
pub(crate) fn random(n: usize) -> Result<String, AuthError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Config(format!("no system randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A code verifier and its `S256` challenge.
pub(crate) struct Pkce {
    /// 43 characters from 32 random bytes (RFC 7636 §4.1).
    pub verifier: String,
    /// `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Result<Self, AuthError> {
        let verifier = random(32)?;
        let challenge = challenge(&verifier);
        Ok(Self { verifier, challenge })
    }
}

/// The `S256` challenge of a verifier.
pub(crate) fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            super::challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pkce = super::Pkce::new().expect("randomness");
        assert_eq!(pkce.verifier.len(), 43);
        assert_eq!(pkce.challenge, super::challenge(&pkce.verifier));
    }
}
