//! Layer blobs: compression detected from magic bytes, never from names.

use std::io::{self, Cursor, Read};

use sha2::{Digest, Sha256};

use crate::index::layer::{LayerIndex, explain, explained, index_tar_within};

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

/// A reader that hashes everything that passes through it.
struct Sha256Reader<R> {
    inner: R,
    hasher: Option<Sha256>,
    count: u64,
}

impl<R: Read> Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// A decompressor whose errors say which stream failed and how.
struct Decoded<R> {
    inner: R,
    what: &'static str,
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let msg = if e.kind() == io::ErrorKind::UnexpectedEof {
                format!("truncated: the {} stream ends early ({e})", self.what)
            } else if e.to_string().starts_with("corrupt") {
                e.to_string()
            } else {
                format!("corrupt {} stream: {e}", self.what)
            };
            explained(e.kind(), msg)
        })
    }
}

/// Index a layer blob: detect its compression, decompress while streaming,
/// and optionally compute the sha256 of the uncompressed tar (its diff_id).
/// `budget` bounds the small files kept for the analysis, image-wide (see
/// [`crate::index::layer::index_tar_within`]).
pub fn index_blob<R: Read>(
    mut r: R,
    verify: bool,
    budget: &std::sync::atomic::AtomicU64,
) -> Result<LayerIndex, String> {
    let head = read_head(&mut r, 512).map_err(|e| e.to_string())?;
    let compression = detect(&head)?;
    let raw = Cursor::new(head).chain(r);
    let tar: Box<dyn Read> = match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(Decoded {
            inner: flate2::read::MultiGzDecoder::new(raw),
            what: "gzip",
        }),
        Compression::Zstd => Box::new(Decoded {
            inner: zstd::stream::read::Decoder::new(raw)
                .map_err(|e| format!("corrupt zstd stream: {e}"))?,
            what: "zstd",
        }),
    };
    let mut reader = Sha256Reader {
        inner: tar,
        hasher: verify.then(Sha256::new),
        count: 0,
    };
    let mut idx = index_tar_within(&mut reader, budget).map_err(|e| explain(&e))?;
    // Drain what follows the end-of-archive marker so the digest covers it
    // (and a compressed stream is checked to its end).
    io::copy(&mut reader, &mut io::sink())
        .map_err(|e| format!("{} (after the end of the tar)", explain(&e)))?;
    idx.tar_bytes = reader.count;
    if let Some(h) = reader.hasher.take() {
        idx.diff_id = Some(format!("sha256:{}", hex(&h.finalize())));
    }
    Ok(idx)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

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
}
