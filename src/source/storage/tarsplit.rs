//! A layer's tar, as the engine would export it, rebuilt from its
//! tar-split: the raw header bytes the engine kept (segments) with each
//! file's content in between, read from the layer directory only if
//! someone actually reads it. Seeking forward past a file's content costs
//! nothing, so the indexer sees the export's exact headers (names, modes,
//! ids, links, PAX records, whiteouts) without the engine writing a tar.
//!
//! The tar-split (`tar-split.json.gz`, one JSON object a line): type 2 is
//! a segment (`payload`: base64 of raw tar bytes, headers and padding);
//! type 1 is an entry (`name`, or base64 `name_raw` for a name that is not
//! UTF-8; `size`; `payload`: base64 of the content's CRC64 (Go's ISO
//! table), big-endian), followed in the tar by `size` content bytes.

use std::borrow::Cow;
use std::io::{self, BufRead, Read, Seek, SeekFrom};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::files::{Checked, LayerDir};
use crate::index::layer::explained;

/// The longest tar-split line accepted: the engine keeps PAX headers up to
/// 1 MiB (Go's limit), which base64 and JSON make about 1.4 MiB.
const MAX_LINE: u64 = 4 << 20;

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name_raw: Option<Cow<'a, str>>,
    #[serde(default)]
    size: i64,
    // Cow: a JSON escape cannot be borrowed.
    #[serde(default, borrow)]
    payload: Option<Cow<'a, str>>,
}

/// The base64 payload of a segment line exactly as the engine writes one,
/// `{"type":2,"payload":"…","position":N}`; None for any other line.
fn segment_payload(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(br#"{"type":2,"payload":""#)?;
    let end = memchr::memchr(b'"', rest)?;
    position_ends(&rest[end..]).then_some(&rest[..end])
}

/// Whether a line ends as the engine ends each, `","position":N}`.
fn position_ends(tail: &[u8]) -> bool {
    tail.strip_prefix(br#"","position":"#)
        .and_then(|t| t.strip_suffix(b"}"))
        .is_some_and(|d| !d.is_empty() && d.iter().all(u8::is_ascii_digit))
}

/// The name, size and CRC64 of a file line exactly as the engine writes
/// one for a file with content, `{"type":1,"name":"…","size":N,
/// "payload":"…","position":N}`, its name without JSON escapes; None for
/// any other line.
fn file_fields(line: &[u8]) -> Option<(&[u8], u64, u64)> {
    let rest = line.strip_prefix(br#"{"type":1,"name":""#)?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    let (name, rest) = rest.split_at(end);
    let rest = rest.strip_prefix(br#"","size":"#)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let size = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let rest = rest[digits..].strip_prefix(br#","payload":""#)?;
    let end = memchr::memchr(b'"', rest)?;
    let crc = <[u8; 8]>::try_from(STANDARD.decode(&rest[..end]).ok()?).ok()?;
    position_ends(&rest[end..]).then_some((name, size, u64::from_be_bytes(crc)))
}

/// A regular file with content, as the tar-split records it.
#[derive(Debug, Clone)]
pub struct FileRec {
    /// The name as in the tar header (bytes).
    pub raw: Box<[u8]>,
    pub size: u64,
    pub crc: u64,
    /// Where the content starts in the rebuilt tar.
    pub at: u64,
    /// The layer index's entry of this file, once matched by position
    /// ([`place`]; `Some(UNLISTED)`: none, such as an earlier listing of a
    /// path listed twice); `None` until then, to be matched by name.
    pub entry: Option<u32>,
}

/// [`FileRec::entry`] of a file that no entry stands for.
pub const UNLISTED: u32 = u32::MAX;

/// Match `files` to the entries [`index_headers`] left at the same
/// content offsets (both in tar order).
///
/// [`index_headers`]: crate::index::layer::index_headers
pub fn place(files: &mut [FileRec], placed: &[crate::index::layer::Pending]) {
    let mut next = placed.iter().peekable();
    for f in files {
        while next.next_if(|p| p.1 < f.at).is_some() {}
        f.entry = Some(match next.peek() {
            Some(&&(e, at)) if at == f.at => e,
            _ => UNLISTED,
        });
    }
}

/// What a tar-split line gives: raw tar bytes, or a file whose content
/// follows in the tar (empty segments and empty files are left out).
#[derive(Debug, PartialEq)]
pub enum Piece {
    Segment(Vec<u8>),
    File { raw: Box<[u8]>, size: u64, crc: u64 },
}

/// Where a rebuilt tar gets its pieces.
pub trait Pieces {
    /// The next piece, or None at the end of the tar-split.
    fn next_piece(&mut self) -> io::Result<Option<Piece>>;
}

/// A tar-split's lines, parsed one by one.
pub struct Lines<'d, R> {
    lines: R,
    /// A line that straddles the end of the reader's buffer, copied out.
    line: Vec<u8>,
    at: Place<'d>,
}

/// Where [`Lines`] is, for messages and progress.
struct Place<'d> {
    /// The line being read.
    line: u64,
    shown: String,
    progress: Option<&'d (dyn Fn(u64) + Sync)>,
}

impl<'d, R: BufRead> Lines<'d, R> {
    /// `shown` names the tar-split in errors; `progress` is told the size
    /// of each file as its line goes by.
    pub fn new(lines: R, shown: String, progress: Option<&'d (dyn Fn(u64) + Sync)>) -> Self {
        Lines {
            lines,
            line: Vec::new(),
            at: Place {
                line: 0,
                shown,
                progress,
            },
        }
    }
}

impl Place<'_> {
    fn bad(&self, why: impl std::fmt::Display) -> io::Error {
        explained(
            io::ErrorKind::InvalidData,
            format!("{} line {}: {why}", self.shown, self.line),
        )
    }

    /// A file's piece, its size told to the progress.
    fn file(&self, raw: Box<[u8]>, size: u64, crc: u64) -> Piece {
        if let Some(p) = self.progress {
            p(size);
        }
        Piece::File { raw, size, crc }
    }

    /// The piece of one line (without its newline); None for an empty
    /// segment or an empty file.
    fn parse(&self, text: &[u8]) -> io::Result<Option<Piece>> {
        // Most lines are as the engine writes them: cut out without a JSON
        // parser. Anything else is parsed in full.
        if let Some(data) =
            segment_payload(text).and_then(|p| base64_simd::STANDARD.decode_to_vec(p).ok())
        {
            return Ok((!data.is_empty()).then_some(Piece::Segment(data)));
        }
        if let Some((name, size, crc)) = file_fields(text) {
            return Ok((size > 0).then(|| self.file(name.into(), size, crc)));
        }
        let line: Line = serde_json::from_slice(text)
            .map_err(|e| self.bad(format!("not a tar-split entry ({e})")))?;
        match line.kind {
            2 => {
                let data = STANDARD
                    .decode(line.payload.as_deref().unwrap_or(""))
                    .map_err(|e| self.bad(format!("a segment that is not base64 ({e})")))?;
                Ok((!data.is_empty()).then_some(Piece::Segment(data)))
            }
            1 => {
                let size = u64::try_from(line.size)
                    .map_err(|_| self.bad(format!("a negative size {}", line.size)))?;
                if size == 0 {
                    return Ok(None);
                }
                let raw: Box<[u8]> = match (line.name_raw, line.name) {
                    (Some(r), _) => STANDARD
                        .decode(&*r)
                        .map_err(|e| self.bad(format!("a name that is not base64 ({e})")))?
                        .into(),
                    (None, Some(n)) => n.as_bytes().into(),
                    (None, None) => return Err(self.bad("a file entry without a name")),
                };
                let crc = line
                    .payload
                    .and_then(|p| STANDARD.decode(&*p).ok())
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| self.bad("a file entry without an 8-byte CRC64"))?;
                Ok(Some(self.file(raw, size, crc)))
            }
            k => Err(self.bad(format!("an entry of unknown type {k}"))),
        }
    }
}

impl<R: BufRead> Pieces for Lines<'_, R> {
    fn next_piece(&mut self) -> io::Result<Option<Piece>> {
        loop {
            self.at.line += 1;
            let buf = self
                .lines
                .fill_buf()
                .map_err(|e| self.at.bad(format!("unreadable ({e})")))?;
            if buf.is_empty() {
                return Ok(None);
            }
            // A line whole in the reader's buffer is parsed where it lies;
            // one that runs past the buffer's end is copied out first.
            let piece = if let Some(n) = memchr::memchr(b'\n', buf) {
                let piece = self.at.parse(buf[..n].trim_ascii_end());
                self.lines.consume(n + 1);
                piece
            } else {
                self.line.clear();
                let n = (&mut self.lines)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut self.line)
                    .map_err(|e| self.at.bad(format!("unreadable ({e})")))?;
                if n as u64 == MAX_LINE && !self.line.ends_with(b"\n") {
                    return Err(self.at.bad(format!("longer than {MAX_LINE} bytes")));
                }
                self.at.parse(self.line.trim_ascii_end())
            };
            if let Some(p) = piece? {
                return Ok(Some(p));
            }
        }
    }
}

/// Pieces parsed by another thread ([`parse_beside`]), in batches.
pub struct Beside {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<Piece>>>,
    batch: std::vec::IntoIter<Piece>,
    ended: bool,
}

impl Pieces for Beside {
    fn next_piece(&mut self) -> io::Result<Option<Piece>> {
        loop {
            if let Some(p) = self.batch.next() {
                return Ok(Some(p));
            }
            if self.ended {
                return Ok(None);
            }
            // An empty batch is the end; a closed channel without one, a
            // parser that stopped (it panicked).
            let batch = self.rx.recv().map_err(|_| {
                io::Error::other("the tar-split's parsing thread stopped before its end")
            })??;
            self.ended = batch.is_empty();
            self.batch = batch.into_iter();
        }
    }
}

/// Parse `lines` on a thread of `scope`, so that decompressing and decoding
/// the tar-split runs beside the indexing of the tar it rebuilds. The
/// thread stops at the end, at an error, or when the [`Beside`] is dropped.
pub fn parse_beside<'s, 'd: 's, R: BufRead + Send + 'd>(
    scope: &'s std::thread::Scope<'s, '_>,
    mut lines: Lines<'d, R>,
) -> Beside {
    const BATCH: usize = 256;
    let (tx, rx) = std::sync::mpsc::sync_channel(8);
    scope.spawn(move || {
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            let mut end = false;
            while !end && batch.len() < BATCH {
                match lines.next_piece() {
                    Ok(Some(p)) => batch.push(p),
                    Ok(None) => end = true,
                    Err(e) => {
                        let _ = tx.send(Ok(batch)).and_then(|()| tx.send(Err(e)));
                        return;
                    }
                }
            }
            // A send fails once nobody reads. The end is an empty batch.
            if !batch.is_empty() && tx.send(Ok(batch)).is_err() {
                return;
            }
            if end {
                let _ = tx.send(Ok(Vec::new()));
                return;
            }
        }
    });
    Beside {
        rx,
        batch: Vec::new().into_iter(),
        ended: false,
    }
}

enum Part<'d> {
    /// Raw tar bytes, and how many were consumed.
    Segment(Vec<u8>, usize),
    /// The content of `files[i]`, `done` bytes into it, open once read.
    Content {
        i: usize,
        done: u64,
        open: Option<Box<Checked<'d>>>,
    },
    End,
}

/// The rebuilt tar of one layer: `Read` gives its bytes, `Seek` (forward
/// only) skips them without touching the layer directory.
pub struct Rebuilt<'d, P> {
    pieces: P,
    dir: &'d LayerDir,
    part: Part<'d>,
    pos: u64,
    /// Every file with content, in tar order.
    pub files: Vec<FileRec>,
    /// The tar-split, for messages.
    shown: String,
}

impl<'d, P: Pieces> Rebuilt<'d, P> {
    /// `shown` names the tar-split in errors.
    pub fn new(pieces: P, dir: &'d LayerDir, shown: String) -> Self {
        Rebuilt {
            pieces,
            dir,
            part: Part::Segment(Vec::new(), 0),
            pos: 0,
            files: Vec::new(),
            shown,
        }
    }

    /// Move to the next part with bytes (or the end).
    fn advance(&mut self) -> io::Result<()> {
        self.part = match self.pieces.next_piece()? {
            None => Part::End,
            Some(Piece::Segment(data)) => Part::Segment(data, 0),
            Some(Piece::File { raw, size, crc }) => {
                self.files.push(FileRec {
                    raw,
                    size,
                    crc,
                    at: self.pos,
                    entry: None,
                });
                Part::Content {
                    i: self.files.len() - 1,
                    done: 0,
                    open: None,
                }
            }
        };
        Ok(())
    }

    /// Read the rest of the tar-split (the end-of-archive blocks after the
    /// last header) and give the rebuilt tar's size and its files.
    pub fn finish(mut self) -> io::Result<(u64, Vec<FileRec>)> {
        loop {
            match &mut self.part {
                Part::End => return Ok((self.pos, self.files)),
                Part::Segment(data, at) => {
                    self.pos += (data.len() - *at) as u64;
                }
                Part::Content { i, done, .. } => {
                    self.pos += self.files[*i].size - *done;
                }
            }
            self.advance()?;
        }
    }
}

impl<P: Pieces> Read for Rebuilt<'_, P> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.part {
                Part::End => return Ok(0),
                Part::Segment(data, at) if *at < data.len() => {
                    let n = buf.len().min(data.len() - *at);
                    buf[..n].copy_from_slice(&data[*at..*at + n]);
                    *at += n;
                    self.pos += n as u64;
                    return Ok(n);
                }
                Part::Content { i, done, open } if *done < self.files[*i].size => {
                    let f = &self.files[*i];
                    if open.is_none() {
                        if *done > 0 {
                            return Err(self.dir.changed(&f.raw, "read after a skip"));
                        }
                        *open = Some(Box::new(Checked::open(self.dir, &f.raw, f.size, f.crc)?));
                    }
                    let r = open.as_mut().map_or(Ok(0), |r| r.read(buf))?;
                    *done += r as u64;
                    self.pos += r as u64;
                    return Ok(r);
                }
                _ => self.advance()?,
            }
        }
    }
}

impl<P: Pieces> Seek for Rebuilt<'_, P> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let mut ahead = match to {
            SeekFrom::Current(n) if n >= 0 => n as u64,
            SeekFrom::Start(p) if p >= self.pos => p - self.pos,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a rebuilt layer can only be read forwards",
                ));
            }
        };
        while ahead > 0 {
            let k = match &mut self.part {
                Part::End => {
                    return Err(explained(
                        io::ErrorKind::UnexpectedEof,
                        format!("{}: the tar-split ends inside an entry", self.shown),
                    ));
                }
                Part::Segment(data, at) => {
                    let k = ahead.min((data.len() - *at) as u64);
                    *at += k as usize;
                    k
                }
                Part::Content { i, done, open } => {
                    let k = ahead.min(self.files[*i].size - *done);
                    *done += k;
                    // A file skipped part way is not checked: close it.
                    if k > 0 {
                        *open = None;
                    }
                    k
                }
            };
            if k == 0 {
                self.advance()?;
                continue;
            }
            ahead -= k;
            self.pos += k;
        }
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at: u64) -> FileRec {
        FileRec {
            raw: Box::default(),
            size: 1,
            crc: 0,
            at,
            entry: None,
        }
    }

    /// All the pieces `p` gives, then its error (if any) as text.
    fn drain(mut p: impl Pieces) -> (Vec<Piece>, Option<String>) {
        let mut got = Vec::new();
        loop {
            match p.next_piece() {
                Ok(Some(x)) => got.push(x),
                Ok(None) => return (got, None),
                Err(e) => return (got, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn a_thread_beside_gives_what_the_lines_give_and_fails_where_they_fail() {
        let b64 = |b: &[u8]| STANDARD.encode(b);
        let mut text = String::new();
        for i in 0..700u32 {
            let seg = vec![(i % 251) as u8; 1 + (i as usize % 600)];
            text += &format!(r#"{{"type":2,"payload":"{}","position":{i}}}"#, b64(&seg));
            text += "\n";
            let crc = b64(&u64::from(i).to_be_bytes());
            text += &format!(
                r#"{{"type":1,"name":"d/f{i}{}","size":{},"payload":"{crc}","position":{i}}}"#,
                if i % 2 == 0 { "\\u0026" } else { "" },
                i % 3
            );
            text += "\n";
        }
        let good = text.clone();
        text += "{\"type\":9}\n";
        for t in [good, text] {
            let inline = drain(Lines::new(t.as_bytes(), "ts".into(), None));
            let beside = std::thread::scope(|s| {
                drain(parse_beside(s, Lines::new(t.as_bytes(), "ts".into(), None)))
            });
            assert_eq!(inline, beside);
            // Lines that run past a small buffer's end are copied out.
            let small = io::BufReader::with_capacity(100, t.as_bytes());
            assert_eq!(inline, drain(Lines::new(small, "ts".into(), None)));
            assert_eq!(inline.0.len(), 700 + 466);
            assert!(inline.0.contains(&Piece::File {
                raw: b"d/f2&".as_slice().into(),
                size: 2,
                crc: 2,
            }));
            assert!(inline.0.contains(&Piece::File {
                raw: b"d/f7".as_slice().into(),
                size: 1,
                crc: 7,
            }));
        }
    }

    #[test]
    fn only_a_segment_line_as_the_engine_writes_it_skips_the_json_parser() {
        let ok = br#"{"type":2,"payload":"AAAA","position":12}"#;
        assert_eq!(segment_payload(ok), Some(b"AAAA".as_slice()));
        for other in [
            br#"{"type":2,"payload":"AAAA","position":12,"x":1}"#.as_slice(),
            br#"{"type":2,"payload":"AAAA","position":}"#,
            br#"{"type":2,"payload":"AAAA"}"#,
            br#"{"type":1,"payload":"AAAA","position":12}"#,
        ] {
            assert_eq!(
                segment_payload(other),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        let file = br#"{"type":1,"name":"a/b c","size":12,"payload":"AAAAAAAAAAc=","position":3}"#;
        assert_eq!(file_fields(file), Some((b"a/b c".as_slice(), 12, 7)));
        for other in [
            br#"{"type":1,"name":"a\u0026","size":12,"payload":"AAAAAAAAAAc=","position":3}"#
                .as_slice(),
            br#"{"type":1,"name":"a","payload":null,"position":3}"#,
            br#"{"type":1,"name":"a","size":12,"payload":"AAAA","position":3}"#,
            br#"{"type":1,"name":"a","size":-1,"payload":"AAAAAAAAAAc=","position":3}"#,
            br#"{"type":1,"name_raw":"YQ==","size":12,"payload":"AAAAAAAAAAc=","position":3}"#,
        ] {
            assert_eq!(
                file_fields(other),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        // A JSON escape is not base64: the line is parsed in full.
        let escaped = br#"{"type":2,"payload":"AA\/A","position":12}"#;
        let got = drain(Lines::new(&escaped[..], "ts".into(), None));
        assert_eq!(
            got,
            (vec![Piece::Segment(STANDARD.decode("AA/A").unwrap())], None)
        );
    }

    #[test]
    fn files_are_placed_by_offset_and_the_unlisted_by_none() {
        let mut files = vec![rec(1024), rec(3072), rec(5120), rec(9216)];
        // 3072: a path listed again later (its first listing dropped);
        // 7168: an entry without a record (none in this layer's tar-split).
        place(&mut files, &[(0, 1024), (2, 5120), (5, 7168), (3, 9216)]);
        let got: Vec<_> = files.iter().map(|f| f.entry).collect();
        assert_eq!(got, [Some(0), Some(UNLISTED), Some(2), Some(3)]);
    }
}
