//! Server-Sent Events framing: event ids, encoding one JSON-RPC message as an event, comments
//! for keep-alive, and the `retry:` hint.
//!
//! Event ids are `{stream}-{seq}`: `stream` numbers the streams of one session (0 is the
//! session's own stream; for stateless requests, the endpoint numbers them) and `seq` counts
//! events within the stream from 1 (0 is a priming event's). An id is therefore unique across a
//! session's streams and names the stream it came from, which is what resuming with
//! `Last-Event-ID` needs (see [`EventId::parse`] and `session`).

use std::fmt;

use axum::body::Bytes;

/// The id of one SSE event: which stream, and which event in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EventId {
    pub(crate) stream: u64,
    pub(crate) seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.stream, self.seq)
    }
}

impl EventId {
    /// Reads an id as [`fmt::Display`] writes it (for `Last-Event-ID`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (stream, seq) = text.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(stream) || !digits(seq) {
            return None;
        }
        Some(Self {
            stream: stream.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

/// One event carrying `data`. A line break inside `data` (JSON may hold one as whitespace,
/// never inside a string) starts another `data:` line, which the client joins back with `\n`.
pub(crate) fn event(id: EventId, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 32);
    out.push_str("id: ");
    out.push_str(&id.to_string());
    out.push('\n');
    for line in data.split(['\r', '\n']).filter(|l| !l.is_empty()) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// The priming event of a stream a client may resume (2025-11-25): an id (the point to resume
/// from) with empty data, which dispatches no message, and the reconnection delay.
pub(crate) fn priming(id: EventId, retry_millis: u128) -> Bytes {
    Bytes::from(format!("id: {id}\nretry: {retry_millis}\ndata: \n\n"))
}

/// A comment line, which clients ignore: keeps an idle stream open through proxies.
pub(crate) fn keepalive() -> Bytes {
    Bytes::from_static(b":\n\n")
}

/// The reconnection delay, in a block with no data (which dispatches no event).
pub(crate) fn retry(millis: u128) -> Bytes {
    Bytes::from(format!("retry: {millis}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_events_keep_json_on_data_lines() {
        let id = EventId { stream: 7, seq: 42 };
        assert_eq!(id.to_string(), "7-42");
        assert_eq!(EventId::parse("7-42"), Some(id));
        for bad in ["", "7", "7-", "-1", "a-1", "1-2-3", "+1-2"] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
        assert_eq!(&event(id, r#"{"a":1}"#)[..], b"id: 7-42\ndata: {\"a\":1}\n\n");
        assert_eq!(
            &event(id, "{\r\n \"a\": 1\n}")[..],
            b"id: 7-42\ndata: {\ndata:  \"a\": 1\ndata: }\n\n"
        );
    }
}
