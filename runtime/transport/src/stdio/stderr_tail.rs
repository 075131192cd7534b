//! [`StderrTail`]: the last lines a child wrote to stderr, kept in a bounded ring.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use super::lines::Line;

/// The last `capacity` lines of a stream, each already cut to its length limit.
pub(crate) struct StderrTail {
    capacity: usize,
    lines: Mutex<VecDeque<String>>,
}

impl StderrTail {
    /// An empty tail keeping at most `capacity` lines.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
        }
    }

    /// Adds a line, dropping the oldest when full. Text that is not UTF-8 is kept lossily; a cut
    /// line ends with `…`.
    pub(crate) fn push(&self, line: Line) {
        if self.capacity == 0 {
            return;
        }
        let mut bytes = line.bytes;
        if line.truncated {
            cut_partial_char(&mut bytes);
        }
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if line.truncated {
            text.push('…');
        }
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(text);
    }

    /// The lines kept, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect()
    }
}

/// Drops a UTF-8 character that the length limit cut in the middle, so a cut line does not end
/// with a replacement character.
fn cut_partial_char(bytes: &mut Vec<u8>) {
    // The last character starts at most three continuation bytes (`0b10xx_xxxx`) back.
    let Some(start) = (bytes.len().saturating_sub(4)..bytes.len())
        .rev()
        .find(|&i| bytes[i] & 0xC0 != 0x80)
    else {
        return;
    };
    let needed = match bytes[start] {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    };
    if bytes.len() - start < needed {
        bytes.truncate(start);
    }
}
