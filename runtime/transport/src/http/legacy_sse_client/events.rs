//! Reading the legacy transport's event stream off a streaming HTTP response: the crate's one
//! event-stream reader ([`crate::http::event_stream`]) fed chunk by chunk, with an optional
//! idle timeout. `id` and `retry` are read but unused: the legacy transport does not reconnect.

use std::collections::VecDeque;
use std::time::Duration;

pub(crate) use crate::http::event_stream::Event;
use crate::http::event_stream::{Decoder, TooLarge};

/// Why reading events stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The connection failed.
    #[error("reading the event stream failed: {0}")]
    Http(#[from] reqwest::Error),
    /// An event is larger than the limit.
    #[error("an event is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// Nothing came (not even a keep-alive comment) for the read timeout.
    #[error("nothing came on the event stream for {0:?}")]
    Idle(Duration),
}

/// Events read off a streaming HTTP response.
pub(crate) struct Events {
    response: reqwest::Response,
    decoder: Decoder,
    /// Events read but not yet handed out, in order.
    ready: VecDeque<Event>,
    /// Where the decoder appends what a chunk completes.
    batch: Vec<Event>,
    idle: Option<Duration>,
}

impl Events {
    pub(crate) fn new(response: reqwest::Response, max: usize, idle: Option<Duration>) -> Self {
        Self {
            response,
            decoder: Decoder::new(max, None),
            ready: VecDeque::new(),
            batch: Vec::new(),
            idle,
        }
    }

    /// The next event; `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<Event>, ReadError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            let chunk = match self.idle {
                Some(idle) => tokio::time::timeout(idle, self.response.chunk())
                    .await
                    .map_err(|_| ReadError::Idle(idle))??,
                None => self.response.chunk().await?,
            };
            match chunk {
                Some(chunk) => {
                    self.decoder
                        .push(&chunk, &mut self.batch)
                        .map_err(|TooLarge(max)| ReadError::TooLarge(max))?;
                    self.ready.extend(self.batch.drain(..));
                }
                None => return Ok(None),
            }
        }
    }
}
