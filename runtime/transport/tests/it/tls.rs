//! The clients over TLS (the crate's `tls` feature, which this test crate turns on): a server on
//! 127.0.0.1 with a self-signed certificate serves Streamable HTTP, WebSocket and the legacy
//! HTTP+SSE transport over HTTPS; each client reaches it with that certificate as an extra root,
//! and refuses it, with a typed error, without.

use std::sync::Arc;

use portico_core::client::{Client, ClientError, Protocol};
use portico_core::server::{Context, Server, tool};
use portico_transport::http::client::{HttpClientConfig, HttpClientError, connect};
use portico_transport::http::legacy_sse::{self, LegacySseConfig};
use portico_transport::http::legacy_sse_client::{self, LegacySseClientConfig};
use portico_transport::http::tls::{TlsConfig, TlsError};
use portico_transport::http::ws_client::{self, WsClientConfig, WsConnectError};
use portico_transport::http::{self, HttpConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::within;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Shout {
    text: String,
}

/// An HTTPS server of every transport, on 127.0.0.1:0, stopped on drop.
struct Https {
    /// `https://127.0.0.1:PORT`.
    origin: String,
    /// The server's certificate, PEM.
    certificate: String,
    stop: CancellationToken,
}

impl Https {
    async fn start() -> Self {
        let server = Server::builder("tls", "1.0.0")
            .tool(tool(
                "shout",
                "Says it louder",
                |_cx: Context, args: Shout| async move { args.text.to_uppercase() },
            ))
            .build();
        let config = HttpConfig::default();
        let legacy = LegacySseConfig::from_http(&config);
        let for_legacy = server.clone();
        let app = http::router(move || server.connection(), config)
            .merge(legacy_sse::router(move || for_legacy.connection(), legacy));

        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("a self-signed certificate");
        let key = rustls_key(&certified.signing_key);
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let tls = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("the server's certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let origin = format!("https://{}", listener.local_addr().expect("address"));
        let stop = CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                    () = until.cancelled() => return,
                };
                let (acceptor, app, until) = (acceptor.clone(), app.clone(), until.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to serve.
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .with_upgrades();
                    tokio::select! {
                        _ = connection => {}
                        () = until.cancelled() => {}
                    }
                });
            }
        });
        Self {
            origin,
            certificate: certified.cert.pem(),
            stop,
        }
    }

    fn trusted(&self) -> TlsConfig {
        TlsConfig::default().with_root_pem(&self.certificate)
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn rustls_key(key: &rcgen::KeyPair) -> tokio_rustls::rustls::pki_types::PrivateKeyDer<'static> {
    tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into())
}

fn builder() -> portico_core::client::ClientBuilder {
    crate::http_client::builder()
}

async fn shout(client: &Client) -> String {
    let result = within("shout", client.call_tool("shout", json!({"text": "over tls"})))
        .await
        .expect("answered");
    serde_json::to_value(&result.content[0]).expect("content")["text"]
        .as_str()
        .expect("text")
        .to_string()
}

#[tokio::test]
async fn streamable_http_over_https_in_both_generations() {
    let server = Https::start().await;
    let url = format!("{}/mcp", server.origin);
    for protocol in [Protocol::Stateless, Protocol::Stateful("2025-11-25")] {
        let config = HttpClientConfig {
            tls: server.trusted(),
            ..HttpClientConfig::default()
        };
        let client = within(
            "connect",
            builder()
                .protocol(protocol)
                .connect(|service| connect(&url, service, config)),
        )
        .await
        .expect("connects over https");
        assert_eq!(shout(&client).await, "OVER TLS");
        client.close().await.expect("close");
    }
}

#[tokio::test]
async fn websocket_and_legacy_sse_over_tls() {
    let server = Https::start().await;
    let wss = format!("{}/mcp", server.origin.replacen("https", "wss", 1));
    let config = WsClientConfig {
        tls: server.trusted(),
        ..WsClientConfig::default()
    };
    let client = within(
        "wss",
        builder()
            .protocol(Protocol::Stateful("2025-11-25"))
            .connect(|service| ws_client::connect(&wss, service, config)),
    )
    .await
    .expect("connects over wss");
    assert_eq!(shout(&client).await, "OVER TLS");
    client.close().await.expect("close");

    let sse = format!("{}/sse", server.origin);
    let config = LegacySseClientConfig {
        tls: server.trusted(),
        ..LegacySseClientConfig::default()
    };
    let client = within(
        "legacy sse",
        builder()
            .protocol(Protocol::Stateful("2024-11-05"))
            .connect(|service| legacy_sse_client::connect(&sse, service, config)),
    )
    .await
    .expect("connects over https");
    assert_eq!(shout(&client).await, "OVER TLS");
    client.close().await.expect("close");
}

#[tokio::test]
async fn an_untrusted_certificate_or_a_bad_root_is_a_typed_error() {
    let server = Https::start().await;
    // The platform's roots alone do not know the self-signed certificate.
    let url = format!("{}/mcp", server.origin);
    let refused = within(
        "connect",
        builder()
            .protocol(Protocol::Stateless)
            .connect(|service| connect(&url, service, HttpClientConfig::default())),
    )
    .await
    .expect_err("the certificate is not trusted");
    assert!(
        matches!(refused, ClientError::Transport { .. } | ClientError::Connect(_)),
        "{refused}"
    );
    assert!(refused.to_string().contains("certificate"), "{refused}");
    let wss = format!("{}/mcp", server.origin.replacen("https", "wss", 1));
    match within(
        "wss",
        ws_client::connect(&wss, crate::http_client::Nobody, WsClientConfig::default()),
    )
    .await
    {
        Err(refused @ WsConnectError::Connect { .. }) => {
            assert!(refused.to_string().contains("certificate"), "{refused}");
        }
        Err(other) => panic!("expected a refused certificate, got {other}"),
        Ok(_) => panic!("an untrusted certificate was accepted"),
    }
    // A root that is not a certificate is refused before any connection.
    let bad = HttpClientConfig {
        tls: TlsConfig::default().with_root_pem("not a certificate"),
        ..HttpClientConfig::default()
    };
    match connect(&url, crate::http_client::Nobody, bad).await {
        Err(HttpClientError::Tls(TlsError::BadRoot(_))) => {}
        Err(other) => panic!("expected a bad root, got {other}"),
        Ok(_) => panic!("a root that is not a certificate was accepted"),
    }
}
