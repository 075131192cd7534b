//! `portico token`: mints an HS256 JWT for local use, for a gateway whose `auth.jwt.keys`
//! hold the same secret — a development convenience, never a production issuer.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `portico token`'s options.
#[derive(clap::Args)]
pub struct TokenArgs {
    /// The HMAC secret (the `secret` of an HS256 key of the gateway's `auth.jwt.keys`).
    #[arg(long, env = "PORTICO_TOKEN_SECRET")]
    secret: String,
    /// `iss` (the gateway's `auth.jwt.issuer`).
    #[arg(long)]
    issuer: String,
    /// `aud` (one of the gateway's `auth.jwt.audience`).
    #[arg(long)]
    audience: String,
    /// `sub`.
    #[arg(long, default_value = "dev")]
    subject: String,
    /// Roles, comma-separated (the `roles` claim).
    #[arg(long, value_delimiter = ',')]
    roles: Vec<String>,
    /// `scope`, space-separated.
    #[arg(long, default_value = "")]
    scope: String,
    /// The `kid` of the key.
    #[arg(long)]
    kid: Option<String>,
    /// How long it is valid (`30m`, `1h` is `60m`).
    #[arg(long, default_value = "60m", value_parser = portico_gateway::config::duration::parse)]
    ttl: Duration,
}

/// Prints the token.
pub fn run(args: TokenArgs) -> ExitCode {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut claims = serde_json::json!({
        "iss": args.issuer,
        "aud": args.audience,
        "sub": args.subject,
        "iat": now,
        "nbf": now,
        "exp": now + args.ttl.as_secs(),
    });
    if !args.roles.is_empty() {
        claims["roles"] = args.roles.into();
    }
    if !args.scope.is_empty() {
        claims["scope"] = args.scope.into();
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = args.kid;
    match jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(args.secret.as_bytes()),
    ) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
