//! The client end, [`spawn`], against a real child process: the crate's `portico-stdio-fixture`
//! binary, which serves `echo`, `stderr`, `hang` and `exit` with `serve_stdio`.

use std::time::Duration;

use portico_core::PeerError;
use portico_transport::stdio::spawn;
use portico_transport::{StdioClient, StdioConfig};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::{TestService, within};

/// The fixture server. Cargo builds a package's binaries before its integration tests and
/// gives them their paths.
fn fixture() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portico-stdio-fixture"))
}

async fn start(command: &mut Command, config: StdioConfig) -> StdioClient<TestService> {
    within("spawning the fixture", spawn(command, TestService, config))
        .await
        .expect("the fixture starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_the_child_and_come_back() {
    let client = start(&mut fixture(), StdioConfig::default()).await;
    assert!(client.id().is_some());
    let handle = client.peer().handle().clone();
    let answer: Value = within("echo", handle.request("echo", &json!({"hello": "world"})))
        .await
        .expect("an answer");
    assert_eq!(answer, json!({"hello": "world"}));

    let calls = (0..100).map(|i| {
        let handle = handle.clone();
        tokio::spawn(async move { handle.request::<_, Value>("echo", &json!({"n": i})).await })
    });
    for (i, call) in calls.collect::<Vec<_>>().into_iter().enumerate() {
        let answer = within("a concurrent echo", call)
            .await
            .expect("no panic")
            .expect("an answer");
        assert_eq!(answer, json!({"n": i}));
    }

    let err = within("an unknown method", handle.request::<_, Value>("nope", &json!({})))
        .await
        .expect_err("unknown");
    assert!(matches!(err, PeerError::Remote(ref e) if e.code == -32601), "{err:?}");

    // Closing its stdin ends the fixture's `serve_stdio`, and it exits on its own.
    let status = within("shutdown", client.shutdown()).await.expect("an exit status");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_childs_stderr_is_kept_in_a_bounded_tail() {
    let config = StdioConfig {
        stderr_lines: 5,
        stderr_line_bytes: 16,
        ..StdioConfig::default()
    };
    let client = start(&mut fixture(), config).await;
    let handle = client.peer().handle();
    let _: Value = within(
        "stderr",
        handle.request("stderr", &json!({"text": "line", "repeat": 20})),
    )
    .await
    .expect("an answer");
    // 1 + 20 × 2 bytes: cut at 16 bytes, inside the eighth `é`, which goes entirely.
    let long = format!("a{}", "é".repeat(20));
    let _: Value = within("stderr", handle.request("stderr", &json!({"text": long})))
        .await
        .expect("an answer");
    let cut = format!("a{}…", "é".repeat(7));
    // The answers come on stdout; the lines on stderr arrive on their own time.
    within("the last stderr line", async {
        while client.stderr_tail().last() != Some(&cut) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(
        client.stderr_tail(),
        ["line 16", "line 17", "line 18", "line 19", cut.as_str()]
    );
    let status = within("shutdown", client.shutdown()).await.expect("an exit status");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_child_that_exits_fails_waiting_and_later_requests() {
    let client = start(&mut fixture(), StdioConfig::default()).await;
    let handle = client.peer().handle().clone();
    let _: Value = within("echo", handle.request("echo", &json!(1)))
        .await
        .expect("an answer");

    let hang = handle.request_raw("hang", None, None);
    tokio::pin!(hang);
    // One poll queues `hang`, so it is written before `exit`.
    tokio::select! {
        biased;
        answer = &mut hang => panic!("`hang` answered: {answer:?}"),
        () = std::future::ready(()) => {}
    }
    let exit = within("exit", handle.request_raw("exit", None, None))
        .await
        .expect_err("the child exits without answering");
    assert!(matches!(exit, PeerError::Closed), "{exit:?}");
    let hang = within("hang", hang).await.expect_err("the child is gone");
    assert!(matches!(hang, PeerError::Closed), "{hang:?}");
    let later = within("a later echo", handle.request::<_, Value>("echo", &json!(2)))
        .await
        .expect_err("the child is gone");
    assert!(matches!(later, PeerError::Closed), "{later:?}");
    assert!(handle.is_closed());

    let status = within("shutdown", client.shutdown()).await.expect("an exit status");
    assert_eq!(status.code(), Some(3), "{status}");
}

#[cfg(unix)]
#[tokio::test]
async fn shutdown_kills_a_child_that_stays_up() {
    use std::os::unix::process::ExitStatusExt;

    let config = StdioConfig {
        shutdown_grace: Duration::from_millis(200),
        ..StdioConfig::default()
    };
    let client = start(fixture().arg("--linger"), config).await;
    let _: Value = within("echo", client.peer().handle().request("echo", &json!(1)))
        .await
        .expect("an answer");
    let status = within("shutdown", client.shutdown()).await.expect("an exit status");
    assert_eq!(status.code(), None, "{status}");
    assert_eq!(status.signal(), Some(9), "{status}");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn dropping_the_client_kills_the_child() {
    let client = start(fixture().arg("--linger"), StdioConfig::default()).await;
    let _: Value = within("echo", client.peer().handle().request("echo", &json!(1)))
        .await
        .expect("an answer");
    let pid = client.id().expect("a pid");
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc.exists());
    drop(client);
    // Killed and reaped: the process is gone from /proc.
    within("the child to go", async {
        while proc.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_command_that_does_not_exist_fails_to_spawn() {
    let mut command = Command::new("/nonexistent/portico-no-such-server");
    let err = spawn(&mut command, TestService, StdioConfig::default())
        .await
        .err()
        .expect("no such file");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_is_not_json_fails_the_waiting_requests_at_once_and_cancels_them() {
    // A request timeout longer than the test's patience: an error that waited for it would fail
    // the test instead of passing it.
    let config = StdioConfig {
        peer: portico_core::PeerConfig {
            request_timeout: Duration::from_secs(3600),
            ..portico_core::PeerConfig::default()
        },
        ..StdioConfig::default()
    };
    let client = start(&mut fixture(), config).await;
    let handle = client.peer().handle().clone();
    let err = within("garbage", handle.request::<_, Value>("garbage", &json!({})))
        .await
        .expect_err("no answer but garbage");
    match &err {
        PeerError::Remote(error) => {
            assert!(error.message.starts_with("invalid JSON: "), "{error:?}");
        }
        other => panic!("expected the unreadable-message error, got {other:?}"),
    }
    // The child was told: its handler saw the cancellation.
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        while !client.stderr_tail().iter().any(|l| l == "garbage: cancelled") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(seen.is_ok(), "{:?}", client.stderr_tail());
    // The connection goes on.
    let answer: Value = within("echo", handle.request("echo", &json!({"still": "here"})))
        .await
        .expect("an answer");
    assert_eq!(answer, json!({"still": "here"}));
    within("shutdown", client.shutdown()).await.expect("an exit status");
}
