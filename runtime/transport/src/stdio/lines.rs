//! [`LineReader`]: lines of bounded length from a byte stream; a longer line is cut, and the
//! rest of it skipped as it streams in, so memory stays bounded whatever the other side sends.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The read buffer: big enough that a typical message takes one read.
const READ_BUFFER: usize = 64 * 1024;

/// One line, without its `\n` (nor a `\r` before it).
#[derive(Debug)]
pub(crate) struct Line {
    /// The line's bytes, at most the reader's limit.
    pub bytes: Vec<u8>,
    /// Whether the line was longer than the limit: `bytes` is then its beginning.
    pub truncated: bool,
}

/// Reads `\n`-terminated lines of at most `max` bytes.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    max: usize,
    line: Vec<u8>,
    truncated: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Lines from `reader`, each cut at `max` bytes.
    pub(crate) fn new(reader: R, max: usize) -> Self {
        Self {
            inner: BufReader::with_capacity(READ_BUFFER, reader),
            max,
            line: Vec::new(),
            truncated: false,
        }
    }

    /// The next line; `None` at the end of the stream. A last line without its `\n` still
    /// counts.
    pub(crate) async fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if self.line.is_empty() && !self.truncated {
                    return Ok(None);
                }
                return Ok(Some(self.finish()));
            }
            let (chunk, used, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (&available[..end], end + 1, true),
                None => (available, available.len(), false),
            };
            // One byte more than the limit is kept: it may be the `\r` of a `\r\n`.
            let room = self.max.saturating_add(1).saturating_sub(self.line.len());
            if chunk.len() > room {
                self.truncated = true;
            }
            self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.inner.consume(used);
            if complete {
                return Ok(Some(self.finish()));
            }
        }
    }

    /// Hands out the line read so far and starts the next one.
    fn finish(&mut self) -> Line {
        let mut bytes = std::mem::take(&mut self.line);
        let mut truncated = std::mem::take(&mut self.truncated);
        if !truncated && bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.len() > self.max {
            bytes.truncate(self.max);
            truncated = true;
        }
        Line { bytes, truncated }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::LineReader;

    /// The lines of `input` cut at `max` bytes, as (text, truncated). The input goes through a
    /// pipe holding 3 bytes at a time, so lines and `\r\n` pairs cross read boundaries.
    async fn lines(input: &[u8], max: usize) -> Vec<(String, bool)> {
        let (mut tx, rx) = tokio::io::duplex(3);
        let input = input.to_vec();
        let writer = tokio::spawn(async move { tx.write_all(&input).await });
        let mut reader = LineReader::new(rx, max);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().await.expect("a pipe read") {
            out.push((String::from_utf8(line.bytes).expect("UTF-8"), line.truncated));
        }
        writer.await.expect("no panic").expect("a pipe write");
        out
    }

    fn owned(expected: &[(&str, bool)]) -> Vec<(String, bool)> {
        expected.iter().map(|&(s, t)| (s.to_string(), t)).collect()
    }

    #[tokio::test]
    async fn lines_end_at_newlines_and_at_the_end() {
        assert_eq!(lines(b"", 3).await, owned(&[]));
        assert_eq!(
            lines(b"a\nbb\r\n\nccc", 3).await,
            owned(&[("a", false), ("bb", false), ("", false), ("ccc", false)])
        );
        assert_eq!(lines(b"abc\r", 3).await, owned(&[("abc", false)]));
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_the_rest_skipped() {
        assert_eq!(
            lines(b"abcd\nabc\r\nabcdefgh\r\nxy\nabcdefgh", 3).await,
            owned(&[
                ("abc", true),
                ("abc", false),
                ("abc", true),
                ("xy", false),
                ("abc", true)
            ])
        );
        // A `\r` that is not before the `\n` counts as a byte.
        assert_eq!(lines(b"abc\rd\n", 3).await, owned(&[("abc", true)]));
    }
}
