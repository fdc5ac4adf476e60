//! Layer blobs: compression detected from magic bytes, never from names.

use std::io::{self, Cursor, Read};

use sha2::{Digest, Sha256};

use crate::index::layer::{LayerIndex, explain, index_tar_within};

/// How a blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Read up to `n` bytes (fewer only at end of stream).
pub fn read_head<R: Read>(r: &mut R, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Tell the compression of a blob from its first bytes. Unknown formats
/// that are clearly not tar (bzip2, xz) are refused by name.
pub fn detect(head: &[u8]) -> Result<Compression, String> {
    match head {
        [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
            Err("xz-compressed layers are not supported".into())
        }
        [b'B', b'Z', b'h', ..] => Err("bzip2-compressed layers are not supported".into()),
        _ if looks_like_tar(head) => Ok(Compression::None),
        _ => Err("not a tar archive (nor gzip or zstd)".into()),
    }
}

/// A tar stream starts with a header (checksum-valid) or with the zero
/// block that ends an empty archive.
pub fn looks_like_tar(head: &[u8]) -> bool {
    if head.is_empty() {
        return true; // an empty layer
    }
    if head.len() < 512 {
        return false;
    }
    let block = &head[..512];
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0 && b != b' ')
        .map(|&b| b as char)
        .collect();
    let Ok(want) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                b' ' as u32
            } else {
                b as u32
            }
        })
        .sum();
    sum == want
}

/// Index a layer blob: detect its compression, decompress while streaming,
/// and optionally compute the sha256 of the uncompressed tar (its diff_id).
/// For a compressed layer, decompression and that sha256 run on a second
/// thread, feeding the tar parser (and its content hashing) on this one
/// through a bounded queue; a plain tar is parsed (and hashed) straight
/// from `r`. `budget`
/// bounds the small files kept for the analysis, image-wide (see
/// [`crate::index::layer::index_tar_within`]).
pub fn index_blob<R: Read + Send>(
    mut r: R,
    verify: bool,
    budget: &std::sync::atomic::AtomicU64,
) -> Result<LayerIndex, String> {
    let head = read_head(&mut r, 512).map_err(|e| e.to_string())?;
    let compression = detect(&head)?;
    let raw = Cursor::new(head).chain(r);
    let (decoder, name): (Box<dyn Read + Send + '_>, &'static str) = match compression {
        Compression::Gzip => (Box::new(flate2::read::MultiGzDecoder::new(raw)), "gzip"),
        Compression::Zstd => (
            Box::new(
                zstd::stream::read::Decoder::new(raw)
                    .map_err(|e| format!("corrupt zstd stream: {e}"))?,
            ),
            "zstd",
        ),
        Compression::None => {
            // Nothing to decompress: hashing inline costs less than handing
            // every byte to another thread.
            let mut reader = CountingReader {
                inner: raw,
                count: 0,
                hasher: verify.then(Sha256::new),
            };
            let mut idx = index_tar_within(&mut reader, budget).map_err(|e| explain(&e))?;
            // What follows the end-of-archive marker still counts as tar bytes
            // (and is covered by the digest).
            io::copy(&mut reader, &mut io::sink())
                .map_err(|e| format!("{} (after the end of the tar)", explain(&e)))?;
            idx.tar_bytes = reader.count;
            idx.diff_id = reader
                .hasher
                .map(|h| format!("sha256:{}", hex(&h.finalize())));
            return Ok(idx);
        }
    };
    std::thread::scope(|s| {
        let (tx, mut pipe) = pipe();
        let producer = s.spawn(move || decompress(decoder, name, verify, tx));
        let parsed = index_tar_within(&mut pipe, budget)
            .and_then(|idx| io::copy(&mut pipe, &mut io::sink()).map(|_| idx));
        // Closing the queue stops a producer the parser left behind.
        drop(pipe);
        let produced = producer
            .join()
            .map_err(|_| "the decompression thread panicked".to_string())?;
        match (parsed, produced) {
            // A broken stream is the cause of whatever the parser saw.
            (_, Err(e)) => Err(e),
            (Err(e), Ok(_)) => Err(explain(&e)),
            (Ok(mut idx), Ok((count, digest))) => {
                idx.tar_bytes = count;
                idx.diff_id = digest;
                Ok(idx)
            }
        }
    })
}

/// Read the `name` (gzip, zstd) `decoder` into `tx` in chunks, hashing the
/// output when asked; returns the uncompressed length and digest. Stops
/// quietly when the parser hangs up.
fn decompress(
    mut dec: Box<dyn Read + Send + '_>,
    name: &str,
    verify: bool,
    mut tx: PipeWriter,
) -> Result<(u64, Option<String>), String> {
    let fail = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof => format!("truncated: the {name} stream ends early ({e})"),
        _ if e.to_string().starts_with("corrupt") => e.to_string(),
        _ => format!("corrupt {name} stream: {e}"),
    };
    let mut hasher = verify.then(Sha256::new);
    let mut count = 0u64;
    loop {
        let n = tx
            .send_from(&mut dec, |c| {
                if let Some(h) = hasher.as_mut() {
                    h.update(c);
                }
            })
            .map_err(fail)?;
        if n == 0 {
            break;
        }
        count += n as u64;
    }
    let digest = hasher.map(|h| format!("sha256:{}", hex(&h.finalize())));
    Ok((count, digest))
}

/// A reader that counts, and optionally hashes, the bytes it passes.
struct CountingReader<R> {
    inner: R,
    count: u64,
    hasher: Option<Sha256>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// Bytes passed between threads at a time, and chunks queued: 4 MiB in
/// flight per layer at most.
const PIPE_CHUNK: usize = 256 * 1024;
const PIPE_CHUNKS: usize = 16;

/// A bounded queue of byte chunks from one thread to another. Spent chunks
/// go back to the writer, so a layer of gigabytes reuses a few buffers
/// instead of allocating (and faulting in) a fresh one per 256 KiB.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = std::sync::mpsc::sync_channel(PIPE_CHUNKS);
    let (back, spare) = std::sync::mpsc::channel();
    (
        PipeWriter { tx, spare },
        PipeReader {
            rx,
            back,
            chunk: Vec::new(),
            pos: 0,
        },
    )
}

pub struct PipeWriter {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl PipeWriter {
    /// Send the next chunk of `r`, shown to `seen` first. Returns its
    /// length: 0 at the end of `r`, or when the reader has hung up.
    pub fn send_from<R: Read>(&mut self, r: &mut R, seen: impl FnOnce(&[u8])) -> io::Result<usize> {
        let mut chunk = self.spare.try_recv().unwrap_or_default();
        chunk.resize(PIPE_CHUNK, 0);
        let mut n = 0;
        while n < chunk.len() {
            match r.read(&mut chunk[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            return Ok(0);
        }
        chunk.truncate(n);
        seen(&chunk);
        Ok(if self.tx.send(chunk).is_ok() { n } else { 0 })
    }
}

/// The reading end of a [`pipe`]; ends when the writer is dropped.
pub struct PipeReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    back: std::sync::mpsc::Sender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    let spent = std::mem::replace(&mut self.chunk, c);
                    if spent.capacity() > 0 {
                        // The writer may be gone; the buffer is then freed.
                        let _ = self.back.send(spent);
                    }
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

pub use crate::units::hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]).unwrap(), Compression::Gzip);
        assert_eq!(
            detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]).unwrap(),
            Compression::Zstd
        );
        assert_eq!(detect(&[0u8; 1024]).unwrap(), Compression::None);
        assert!(detect(b"BZh91AY").unwrap_err().contains("bzip2"));
        assert!(detect(b"hello world").unwrap_err().contains("not a tar"));
    }

    fn budget() -> std::sync::atomic::AtomicU64 {
        std::sync::atomic::AtomicU64::new(u64::MAX)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    fn tar_with(size: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "f", &vec![7u8; size][..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn compressed_layers_index_through_the_second_thread_with_their_digest() {
        let tar = tar_with(3 << 20);
        let plain = index_blob(&tar[..], true, &budget()).unwrap();
        let zipped = index_blob(&gzip(&tar)[..], true, &budget()).unwrap();
        assert_eq!(zipped.diff_id, plain.diff_id);
        assert_eq!(zipped.tar_bytes, tar.len() as u64);
        assert_eq!(zipped.size, 3 << 20);
        let z = zstd::bulk::compress(&tar, 1).unwrap();
        assert_eq!(
            index_blob(&z[..], true, &budget()).unwrap().diff_id,
            plain.diff_id
        );
    }

    #[test]
    fn a_broken_stream_is_named_and_an_early_parse_error_does_not_hang() {
        let gz = gzip(&tar_with(3 << 20));
        let err = index_blob(&gz[..gz.len() / 2], false, &budget()).unwrap_err();
        assert!(err.contains("gzip stream"), "{err}");
        // A gzip of 40 MB that is not a tar: the parser fails at once and
        // the decompressor must stop rather than block on the full queue.
        let junk = gzip(&vec![b'x'; 40 << 20]);
        let err = index_blob(&junk[..], true, &budget()).unwrap_err();
        assert!(err.contains("invalid tar"), "{err}");
    }
}
