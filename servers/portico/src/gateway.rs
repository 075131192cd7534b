//! `portico gateway`: runs the gateway ([`portico_gateway`]) from a configuration file, or on
//! the embedded default (the built-in `everything` server as its one upstream) without one.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use portico_gateway::Gateway;
use portico_gateway::config::{Config, UpstreamConfig};

/// `portico gateway`'s options.
#[derive(clap::Args)]
pub struct GatewayArgs {
    /// The configuration file (YAML, or TOML when it ends in `.toml`); every key is described
    /// in docs/configuration.md. Without one, the gateway fronts the built-in `everything`
    /// server.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Listen on this address instead of the configuration's `listen` (port 0 picks a free one).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// The state store instead of the configuration's `state.url` (`sqlite://FILE`,
    /// `postgres://…`).
    #[arg(long)]
    state: Option<String>,
    /// On SIGTERM or Ctrl-C, how long calls in flight are given to finish (while `/readyz`
    /// answers 503) before the gateway stops.
    #[arg(long, default_value = "30s", value_parser = portico_gateway::config::duration::parse)]
    drain: Duration,
    /// How often the configuration file is checked for changes, which are applied without a
    /// restart (`250ms`, `1s`, `1m`; `0s` turns watching off).
    #[arg(long, default_value = "1s", value_parser = portico_gateway::config::duration::parse)]
    watch_interval: Duration,
    /// Log lines as text or as JSON objects (one per line), to standard error.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Which log lines to write: a level (`info`), or levels per target
    /// (`warn,portico_gateway=debug`).
    #[arg(long, default_value = "info")]
    log: String,
}

/// How log lines are written.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The configuration used without `--config`.
fn embedded() -> Config {
    Config {
        upstreams: vec![UpstreamConfig::builtin("everything", "everything")],
        ..Config::default()
    }
}

/// Runs the gateway until Ctrl-C.
pub fn run(args: GatewayArgs) -> ExitCode {
    if let Err(message) = init_logs(&args) {
        eprintln!("error: --log: {message}");
        return ExitCode::FAILURE;
    }
    let mut config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => embedded(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(state) = &args.state {
        config.state.url = state.clone();
        if let Err(e) = config.check() {
            eprintln!("error: --state: {e}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome: std::io::Result<()> = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let names: Vec<String> = config.upstreams.iter().map(|u| u.name.clone()).collect();
        let gateway = Gateway::start(config, Duration::from_secs(10))
            .await
            .map_err(std::io::Error::other)?;
        if let Some(path) = &args.config
            && !args.watch_interval.is_zero()
        {
            // What the command line set over the file holds for every version of it.
            let (listen, state) = (args.listen, args.state.clone());
            gateway.watch_file_with(path.clone(), args.watch_interval, move |config| {
                if let Some(listen) = listen {
                    config.listen = listen;
                }
                if let Some(state) = &state {
                    config.state.url.clone_from(state);
                }
            });
        }
        let app = gateway.service();
        let mut banner = format!("gateway serving MCP on http://{addr}/mcp\n");
        for name in names {
            banner.push_str(&format!("upstream {name} on http://{addr}/mcp/{name}\n"));
        }
        {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(banner.as_bytes()).and_then(|()| stdout.flush());
        }
        // SIGTERM (what an orchestrator sends) or Ctrl-C: drain, then stop.
        let stop = tokio_util::sync::CancellationToken::new();
        let (draining, signalled) = (gateway.clone(), stop.clone());
        let drain = args.drain;
        tokio::spawn(async move {
            stop_signal().await;
            tracing::info!(within = ?drain, "draining: calls in flight may finish");
            let left = draining.drain(drain).await;
            if left > 0 {
                tracing::warn!(calls = left, "stopping with calls still in flight");
            }
            draining.shutdown();
            signalled.cancel();
        });
        let served = portico_transport::http::serve_service(listener, app, stop.cancelled_owned()).await;
        gateway.shutdown();
        served
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Log lines to standard error, filtered as `--log` says.
fn init_logs(args: &GatewayArgs) -> Result<(), String> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter: tracing_subscriber::filter::Targets = args.log.parse().map_err(|e| format!("{e}"))?;
    let registry = tracing_subscriber::registry().with(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => registry.with(fmt.with_ansi(false)).try_init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).try_init(),
    }
    .map_err(|e| e.to_string())
}
