//! A layer's byte range of an open file, read forwards through a small
//! buffer, counting for progress what it reads or skips (but what the job
//! of a deferred file counts: see `parallel`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::super::Counter;
use super::parallel::Span;

/// Bytes read ahead for headers and small files: what is read ahead of a
/// deferred file is read twice, so less than the smallest deferred file.
const AHEAD: usize = 64 * 1024;

/// How far a layer's reader has counted, and how much of the deferred
/// file its next seek passes is left for that file's job to count.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) counted_to: AtomicU64,
    pub(super) uncounted: AtomicU64,
}

/// A layer's byte range read through a buffer, seeking forward within it
/// where it can; what it reads or skips is counted, but for what the job
/// of a deferred file counts.
pub(super) struct At<'a> {
    file: &'a File,
    base: u64,
    len: u64,
    /// Offset (in the layer) of `buf[start]`.
    pos: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    counter: Option<&'a Counter>,
    tally: &'a Tally,
}

impl<'a> At<'a> {
    /// The layer from `from` on (what is before it is not counted).
    pub(super) fn new(
        span: &'a Span,
        counter: Option<&'a Counter>,
        tally: &'a Tally,
        from: u64,
    ) -> Self {
        tally.counted_to.store(from, Ordering::Relaxed);
        At {
            file: &span.file,
            base: span.offset,
            len: span.len,
            pos: from.min(span.len),
            buf: vec![0u8; AHEAD],
            start: 0,
            end: 0,
            counter,
            tally,
        }
    }

    /// Count `n` bytes, up to `pos`.
    fn count(&self, n: u64) {
        if let Some(c) = self.counter {
            c.fetch_add(n, Ordering::Relaxed);
        }
        self.tally.counted_to.store(self.pos, Ordering::Relaxed);
    }
}

impl Read for At<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            let left = self.len - self.pos;
            if left == 0 || out.is_empty() {
                return Ok(0);
            }
            if out.len() >= self.buf.len() {
                let want = out.len().min(left as usize);
                let n = self.file.read_at(&mut out[..want], self.base + self.pos)?;
                self.pos += n as u64;
                self.count(n as u64);
                return Ok(n);
            }
            let want = self.buf.len().min(left as usize);
            let n = self
                .file
                .read_at(&mut self.buf[..want], self.base + self.pos)?;
            self.start = 0;
            self.end = n;
            if n == 0 {
                return Ok(0);
            }
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        self.pos += n as u64;
        self.count(n as u64);
        Ok(n)
    }
}

impl Seek for At<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        let Some(target) = target.filter(|&t| t >= self.pos) else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a layer is only read forwards",
            ));
        };
        if target > self.len {
            return Err(crate::index::layer::explained(
                io::ErrorKind::UnexpectedEof,
                "truncated: the layer ends inside the content of an entry",
            ));
        }
        let skip = target - self.pos;
        let buffered = (self.end - self.start) as u64;
        if skip <= buffered {
            self.start += skip as usize;
        } else {
            self.start = 0;
            self.end = 0;
        }
        self.pos = target;
        self.count(skip.saturating_sub(self.tally.uncounted.swap(0, Ordering::Relaxed)));
        Ok(target)
    }
}
