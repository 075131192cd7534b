//! Smoke tests: the load generator, the sessions client and the client benchmark against the
//! reference and against the real Streamable HTTP endpoint serving `portico-everything`,
//! in-process, for a fraction of a second each. They check the tools speak the protocol (every answer a `200` result, the
//! echo's text, session ids), not speed.

use std::time::Duration;

use portico_transport::http::HttpConfig;
use tokio::net::TcpListener;

use crate::client::Target;
use crate::mcp::{Call, MESSAGE, Method, Mode};
use crate::{load, reference, sessions};

async fn start_reference() -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(reference::serve(listener));
    Target::parse(&url).unwrap()
}

async fn start_portico() -> Target {
    serve_endpoint(portico_everything::server(), HttpConfig::default()).await
}

/// `server` over Streamable HTTP on a free port.
async fn serve_endpoint(server: portico_core::server::Server, config: HttpConfig) -> Target {
    use portico_transport::http::{router, serve};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let shutdown = config.shutdown.clone();
    let app = router(move || server.connection(), config);
    tokio::spawn(serve(listener, app, shutdown.cancelled_owned()));
    Target::parse(&url).unwrap()
}

async fn short_load(target: &Target, mode: Mode) -> load::Report {
    short_run(target, mode, Call::new(mode, "echo", MESSAGE)).await
}

async fn short_run(target: &Target, mode: Mode, call: Call) -> load::Report {
    let options = load::Options {
        target: target.clone(),
        concurrency: 4,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(300),
        call,
        mode,
        server_pid: Some(std::process::id()),
        upstream_pid: Some(std::process::id()),
        rate: None,
    };
    let report = load::run(&options).await.unwrap();
    assert_eq!(report.errors, 0, "{report:?}");
    assert!(report.requests > 0, "{report:?}");
    assert!(report.p50_us > 0.0 && report.p50_us <= report.p99_us, "{report:?}");
    assert!(report.server_cpu_percent.is_some(), "{report:?}");
    assert!(report.upstream_cpu_percent.is_some(), "{report:?}");
    assert!(
        report.pages_per_call >= 1.0 && report.bytes_per_call > 0.0,
        "{report:?}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_runs_against_the_reference_in_both_modes() {
    let target = start_reference().await;
    for mode in [Mode::Stateless, Mode::Stateful] {
        short_load(&target, mode).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_runs_against_portico_in_both_modes() {
    let target = start_portico().await;
    for mode in [Mode::Stateless, Mode::Stateful] {
        short_load(&target, mode).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_load_sends_at_its_rate_not_as_fast_as_answered() {
    let target = start_portico().await;
    let options = load::Options {
        target,
        concurrency: 4,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(500),
        call: Call::new(Mode::Stateless, "echo", MESSAGE),
        mode: Mode::Stateless,
        server_pid: None,
        upstream_pid: None,
        rate: Some(200.0),
    };
    let report = load::run(&options).await.unwrap();
    assert_eq!(report.errors, 0, "{report:?}");
    // 200 calls/s for 0.5 s: 100 calls by the schedule (a closed loop answers thousands), never
    // more; fewer only if the machine stalled for a quarter of the window.
    assert!((50..=104).contains(&report.requests), "{report:?}");
    assert_eq!(report.rate, Some(200.0));
    assert!(report.late_percent.is_some(), "{report:?}");
    let closed = load::Options { rate: None, ..options };
    let report = load::run(&closed).await.unwrap();
    assert!(
        report.requests > 104 && report.rate.is_none() && report.late_percent.is_none(),
        "{report:?}"
    );
    let bad = load::Options {
        rate: Some(0.0),
        ..closed
    };
    let error = load::run(&bad).await.unwrap_err();
    assert!(format!("{error:#}").contains("--rate"), "{error:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_tool_fails_the_run() {
    let target = start_portico().await;
    let options = load::Options {
        target,
        concurrency: 1,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(100),
        call: Call::new(Mode::Stateless, "no_such_tool", MESSAGE),
        mode: Mode::Stateless,
        server_pid: None,
        upstream_pid: None,
        rate: None,
    };
    let outcome = load::run(&options).await;
    match outcome {
        Ok(report) => assert!(report.errors > 0 && report.first_error.is_some(), "{report:?}"),
        Err(e) => assert!(format!("{e:#}").contains("tools/call"), "{e:#}"),
    }
}

/// A gateway answers a session's `tools/call` with a primed SSE stream (`stream_methods`):
/// the answer is the stream's last event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_on_an_sse_stream_are_read() {
    let config = HttpConfig {
        stream_methods: vec!["tools/call".into()],
        ..HttpConfig::default()
    };
    let target = serve_endpoint(portico_everything::server(), config).await;
    for mode in [Mode::Stateless, Mode::Stateful] {
        short_load(&target, mode).await;
    }
}

/// `--method tools/list`: one call is every page, and the first listing counts the tools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_follows_every_page() {
    use portico_core::server::{Server, tool};
    let target = start_portico().await;
    for mode in [Mode::Stateless, Mode::Stateful] {
        let report = short_run(&target, mode, Call::list(mode)).await;
        assert_eq!(report.method, Method::ToolsList);
        assert_eq!(report.pages_per_call, 1.0, "{report:?}");
        assert!(report.tools_listed.is_some_and(|n| n > 30), "{report:?}");
    }
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct NoArguments {}
    let mut builder = Server::builder("paged", "1").page_size(10);
    for i in 0..25 {
        builder = builder.tool(tool(&format!("t{i}"), "a tool", |_cx, _args: NoArguments| async {
            "ok"
        }));
    }
    let target = serve_endpoint(builder.build(), HttpConfig::default()).await;
    for mode in [Mode::Stateless, Mode::Stateful] {
        let report = short_run(&target, mode, Call::list(mode)).await;
        assert_eq!(report.pages_per_call, 3.0, "{report:?}");
        assert_eq!(report.tools_listed, Some(25), "{report:?}");
    }
}

fn sessions_options(target: Target) -> sessions::Options {
    sessions::Options {
        target,
        count: 20,
        warm: 2,
        server_pid: Some(std::process::id()),
        settle: Duration::ZERO,
        hold: Duration::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_opened_and_measured() {
    let report = sessions::run(&sessions_options(start_portico().await)).await.unwrap();
    assert_eq!((report.opened, report.with_id), (20, 20), "{report:?}");
    assert!(report.kib_per_session.is_some(), "{report:?}");

    // The reference has no sessions: the same run gets no ids.
    let report = sessions::run(&sessions_options(start_reference().await)).await.unwrap();
    assert_eq!((report.opened, report.with_id), (20, 0), "{report:?}");
}

/// `portico-bench client`: both clients, both generations, at 1 and 4 calls in flight, against
/// the real endpoint (the reference's stateful calls share one session, so their ids must not
/// collide).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_benchmark_runs_both_clients_in_both_modes() {
    use crate::client_load::{self, Subject};
    let target = start_portico().await;
    let url = format!("http://{}{}", target.authority, target.path);
    for subject in [Subject::Reference, Subject::Portico] {
        for mode in [Mode::Stateless, Mode::Stateful] {
            for concurrency in [1, 4] {
                let options = client_load::Options {
                    url: url.clone(),
                    subject,
                    mode,
                    concurrency,
                    warmup: Duration::from_millis(50),
                    duration: Duration::from_millis(200),
                    server_pid: Some(std::process::id()),
                };
                let report = client_load::run(&options)
                    .await
                    .unwrap_or_else(|e| panic!("{subject:?} {mode:?} {concurrency}: {e:#}"));
                assert!(report.calls > 0, "{report:?}");
                assert!(report.p50_us > 0.0 && report.p50_us <= report.p99_us, "{report:?}");
                assert!(report.peak_rss_kib.is_some_and(|kib| kib > 0), "{report:?}");
            }
        }
    }
}
