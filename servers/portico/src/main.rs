//! `portico`: the command-line front of the Portico MCP platform.
//!
//! Today it answers `--help`, `--version`, `revisions` (the MCP protocol revisions Portico
//! supports), `check` (decode a JSON message as a protocol type, reporting what is wrong) and
//! `serve everything` (the conformance fixtures server, over stdio or on one HTTP listener
//! serving Streamable HTTP, WebSocket and legacy HTTP+SSE) and `gateway` (the gateway, from a
//! configuration file or on its embedded default). The other built-in servers (`serve <kind>`),
//! `codegen` on users' own tool specs, `inspect` and `token` come as their crates land. The
//! binary has no features.

/// mimalloc rather than the system allocator, without transparent huge pages, and asked for an
/// alignment only where a type needs one (`portico_alloc`'s docs say why and what it measured).
#[global_allocator]
static ALLOCATOR: portico_alloc::Mimalloc = portico_alloc::Mimalloc;

mod conformance_client;
mod gateway;
mod token;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portico_protocol::{LATEST, REVISIONS};
use portico_transport::http::legacy_sse::{self, LegacySseConfig};
use portico_transport::otel::Traced;

/// The command line; `about` is the package description.
#[derive(Parser)]
#[command(name = "portico", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the MCP protocol revisions Portico supports, newest first.
    Revisions,
    /// Run the gateway: one MCP endpoint in front of many MCP servers.
    Gateway(gateway::GatewayArgs),
    /// Mint an HS256 JWT for a gateway whose `auth.jwt.keys` share its secret (local use).
    Token(token::TokenArgs),
    /// Run a built-in MCP server.
    Serve {
        /// Which server.
        #[command(subcommand)]
        which: Builtin,
    },
    /// Decode a JSON value as a protocol type and print it as Portico re-encodes it; on bad
    /// input, say what is wrong and exit 1.
    Check {
        /// The schema type, e.g. `CallToolRequest`, `JSONRPCMessage`, `Tool`.
        #[arg(long = "type", short = 't', default_value = "JSONRPCMessage")]
        ty: String,
        /// The protocol revision.
        #[arg(long, short = 'r', default_value = LATEST)]
        revision: String,
        /// The file to read; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// The client side of the official MCP conformance suite: act out the scenario named in
    /// `MCP_CONFORMANCE_SCENARIO` against the mock server at URL.
    ConformanceClient {
        /// The mock server's MCP endpoint.
        url: String,
    },
}

/// The built-in servers.
#[derive(Subcommand)]
enum Builtin {
    /// The conformance fixtures server: every tool, resource and prompt the official suite calls.
    Everything(ServeArgs),
}

/// How to serve.
#[derive(clap::Args)]
struct ServeArgs {
    /// Serve on this address: Streamable HTTP and WebSocket (`ws://`, subprotocol `mcp`) at `/mcp`,
    /// the legacy HTTP+SSE transport at `/sse` and `/messages`; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:3000", conflicts_with = "stdio")]
    http: std::net::SocketAddr,
    /// Serve over standard input and output instead (logs go to standard error).
    #[arg(long)]
    stdio: bool,
    /// Send a span per request to this OpenTelemetry collector (OTLP/HTTP base URL,
    /// `http://host:4318`), continuing the trace a request's `_meta.traceparent` names.
    #[arg(long)]
    otlp_endpoint: Option<String>,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Revisions => revisions(),
        Command::Check { ty, revision, file } => check(&ty, &revision, file.as_deref()),
        Command::Serve {
            which: Builtin::Everything(args),
        } => serve(portico_everything::server(), &args),
        Command::ConformanceClient { url } => conformance_client::run(&url),
        Command::Gateway(args) => gateway::run(args),
        Command::Token(args) => token::run(args),
    }
}

/// `portico check`.
fn check(ty: &str, revision: &str, file: Option<&std::path::Path>) -> ExitCode {
    let mut json = String::new();
    let read = match file {
        Some(path) if path.as_os_str() != "-" => std::fs::read_to_string(path).map(|text| json = text),
        _ => std::io::stdin().read_to_string(&mut json).map(|_| ()),
    };
    if let Err(e) = read {
        eprintln!(
            "error: reading {}: {e}",
            file.map_or("standard input".into(), |p| p.display().to_string())
        );
        return ExitCode::FAILURE;
    }
    if !REVISIONS.contains(&revision) {
        eprintln!("error: unknown revision {revision:?}; known: {}", REVISIONS.join(", "));
        return ExitCode::FAILURE;
    }
    match portico_protocol::roundtrip_json(revision, ty, &json) {
        None => {
            eprintln!("error: revision {revision} has no type {ty:?} that can be decoded on its own");
            ExitCode::FAILURE
        }
        Some(Err(e)) => {
            eprintln!("invalid {ty} ({revision}): {e}");
            ExitCode::FAILURE
        }
        Some(Ok(value)) => {
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            ExitCode::SUCCESS
        }
    }
}

/// Prints one revision per line, newest first, the newest marked.
fn revisions() -> ExitCode {
    for (i, revision) in REVISIONS.iter().rev().enumerate() {
        if i == 0 {
            println!("{revision} (newest)");
        } else {
            println!("{revision}");
        }
    }
    ExitCode::SUCCESS
}

/// `portico serve`: runs `server` until Ctrl-C (HTTP) or the end of standard input (stdio).
fn serve(server: portico_core::server::Server, args: &ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let exporter = args
            .otlp_endpoint
            .as_deref()
            .map(|endpoint| portico_transport::otel::Exporter::start(endpoint, "portico-everything"));
        if args.stdio {
            let service = Traced::new(server.connection(), exporter);
            return portico_transport::stdio::serve_stdio(service, Default::default()).await;
        }
        let listener = tokio::net::TcpListener::bind(args.http).await?;
        let config = portico_transport::http::HttpConfig::default();
        let shutdown = config.shutdown.clone();
        // One listener: Streamable HTTP and WebSocket at /mcp, legacy HTTP+SSE at /sse.
        let legacy = LegacySseConfig::from_http(&config);
        let (sse_path, messages_path) = (legacy.sse_path.clone(), legacy.messages_path.clone());
        let (for_legacy, legacy_exporter) = (server.clone(), exporter.clone());
        let endpoint = portico_transport::http::StreamableHttp::new(
            move || Traced::new(server.connection(), exporter.clone()),
            config,
        );
        let app = endpoint.router().merge(legacy_sse::router(
            move || Traced::new(for_legacy.connection(), legacy_exporter.clone()),
            legacy,
        ));
        // The address actually bound (port 0 picks one), for people and for scripts; the first
        // line stays as it is, scripts read it.
        let addr = listener.local_addr()?;
        // Written whole and unchecked: a script that read the first line and closed the pipe
        // must not stop the server.
        let banner = format!(
            "serving MCP on http://{addr}/mcp\n\
             serving MCP over WebSocket on ws://{addr}/mcp (subprotocol mcp)\n\
             serving legacy HTTP+SSE (2024-11-05) on http://{addr}{sse_path} (messages to {messages_path})\n"
        );
        {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(banner.as_bytes()).and_then(|()| stdout.flush());
        }
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
        // The MCP POSTs go to the endpoint straight; the rest through `app`.
        portico_transport::http::serve_endpoint(listener, endpoint, app, shutdown.cancelled_owned()).await
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
