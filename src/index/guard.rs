//! A reader that watches a tar stream's headers go by, so that the tar
//! crate is never asked to hold an oversized extension header in memory.
//!
//! The tar crate reads a GNU long name (`L`), long link (`K`) or PAX (`x`)
//! member whole into a `Vec` before the entry it describes. Inside a
//! compressed layer that is a decompression bomb: a few megabytes of gzip
//! or zstd declaring a "name" of many gigabytes. Go's `archive/tar` (and so
//! Docker) refuses such members above 1 MiB; so does this guard, before the
//! first byte of the member's body reaches the tar crate.
//!
//! The guard follows the archive as the tar crate does (header sizes, PAX
//! `size` overrides, GNU sparse extension blocks) and stops watching at the
//! end-of-archive block or at a header the tar crate would reject anyway,
//! so it never refuses an archive the tar crate reads. It costs a few
//! comparisons per read and a look at each 512-byte header.

use std::io::{self, Read};

use super::layer::explained;

/// Largest GNU long name, long link or PAX header body accepted, as Go's
/// `archive/tar` (`maxSpecialFileSize`).
pub const MAX_EXTENSION: u64 = 1 << 20;

const BLOCK: u64 = 512;

/// Wraps the (decompressed) tar stream handed to the tar crate.
pub struct Guard<R> {
    inner: R,
    /// Bytes passed through so far.
    pos: u64,
    /// Offset of the next header (or sparse extension) block.
    next: u64,
    /// The block being collected at `next`, and how much of it is in.
    block: tar::Header,
    filled: usize,
    /// A PAX body being collected: its header's offset, its end, its bytes.
    pax: Option<(u64, u64, Vec<u8>)>,
    /// The last complete PAX body, which applies to the next entry.
    pending_pax: Option<Vec<u8>>,
    /// Inside GNU sparse extension blocks: the data size that follows them.
    sparse: Option<u64>,
    /// Past the end-of-archive block, or lost: stop watching.
    done: bool,
}

impl<R: Read> Guard<R> {
    pub fn new(inner: R) -> Self {
        Guard {
            inner,
            pos: 0,
            next: 0,
            block: tar::Header::new_old(),
            filled: 0,
            pax: None,
            pending_pax: None,
            sparse: None,
            done: false,
        }
    }

    /// Follow the bytes `buf`, which start at `self.pos`.
    fn observe(&mut self, buf: &[u8]) -> io::Result<()> {
        let start = self.pos;
        let end = start + buf.len() as u64;
        let mut at = start;
        while at < end && !self.done {
            if at < self.next {
                // Inside an entry's body: skip it, keeping a PAX body.
                let until = self.next.min(end);
                if let Some((_, pax_end, data)) = self.pax.as_mut() {
                    let hi = until.min(*pax_end);
                    if at < hi {
                        data.extend_from_slice(&buf[(at - start) as usize..(hi - start) as usize]);
                    }
                }
                at = until;
                continue;
            }
            let want = BLOCK as usize - self.filled;
            let take = want.min((end - at) as usize);
            let from = (at - start) as usize;
            self.block.as_mut_bytes()[self.filled..self.filled + take]
                .copy_from_slice(&buf[from..from + take]);
            self.filled += take;
            at += take as u64;
            if self.filled == BLOCK as usize {
                self.filled = 0;
                self.on_block(at)?;
            }
        }
        self.pos = end;
        Ok(())
    }

    /// A whole block ending at `end` has arrived where a header was due.
    fn on_block(&mut self, end: u64) -> io::Result<()> {
        if let Some(size) = self.sparse {
            // A GNU sparse extension block: another follows while its
            // `isextended` flag is set, then the entry's data.
            if self.block.as_bytes()[504] == 1 {
                self.next = end;
            } else {
                self.sparse = None;
                self.next = end.saturating_add(padded(size));
            }
            return Ok(());
        }
        if let Some((at, _, data)) = self.pax.take() {
            if let Err(why) = check_pax(&data) {
                return Err(explained(
                    io::ErrorKind::InvalidData,
                    format!("a malformed PAX record ({why}) in the extended header at byte {at}"),
                ));
            }
            self.pending_pax = Some(data);
        }
        let h = &self.block;
        if h.as_bytes().iter().all(|&b| b == 0) || !checksum_ok(h) {
            // The end of the archive, or a header the tar crate refuses.
            self.done = true;
            return Ok(());
        }
        let kind = h.entry_type();
        let Ok(mut size) = h.entry_size() else {
            self.done = true;
            return Ok(());
        };
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        if !extension
            && let Some(s) = self
                .pending_pax
                .as_deref()
                .and_then(|p| pax_value(p, "size"))
        {
            size = s;
        }
        let recognized = h.as_gnu().is_some() || h.as_ustar().is_some();
        // Members the tar crate reads whole and keeps for the next entry.
        let held = recognized
            && (kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions());
        if held && size > MAX_EXTENSION {
            let what = if kind.is_gnu_longname() {
                "a GNU long name"
            } else if kind.is_gnu_longlink() {
                "a GNU long link target"
            } else {
                "a PAX extended header"
            };
            return Err(explained(
                io::ErrorKind::InvalidData,
                format!(
                    "{what} of {size} bytes at byte {} (more than {} bytes, as Docker refuses too)",
                    end - BLOCK,
                    MAX_EXTENSION
                ),
            ));
        }
        if held && kind.is_pax_local_extensions() {
            self.pax = Some((end - BLOCK, end + size, Vec::with_capacity(size as usize)));
        }
        if !held {
            self.pending_pax = None;
        }
        if !held && kind.is_gnu_sparse() {
            match h.as_gnu() {
                Some(g) if g.is_extended() => {
                    self.sparse = Some(size);
                    self.next = end;
                    return Ok(());
                }
                Some(_) => {}
                None => {
                    self.done = true;
                    return Ok(());
                }
            }
        }
        self.next = end.saturating_add(padded(size));
        Ok(())
    }
}

/// The tar crate seeks only over an entry's content and padding, which the
/// guard has no need to see; a seek anywhere else (it never makes one)
/// leaves the guard lost, and it stops watching.
impl<R: Read + io::Seek> io::Seek for Guard<R> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let at = self.inner.seek(to)?;
        // Skipping part of a header block, or of a PAX body it collects,
        // would leave it lost; skipping a PAX body's padding is fine.
        let in_pax = self
            .pax
            .as_ref()
            .is_some_and(|&(_, end, _)| self.pos < end && at > self.pos);
        if !self.done && (at < self.pos || at > self.next || self.filled > 0 || in_pax) {
            self.done = true;
        }
        self.pos = at;
        Ok(at)
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.done {
            return Ok(n);
        }
        if n == 0 && !buf.is_empty() && self.filled > 0 {
            // The stream ends part-way through a block where a header (or
            // the end-of-archive marker) was due: the tar crate would only
            // say "failed to read entire block".
            let zeros = self.block.as_bytes()[..self.filled].iter().all(|&b| b == 0);
            let what = if zeros {
                "its end-of-archive marker"
            } else {
                "a tar header"
            };
            return Err(explained(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "truncated: the layer ends inside {what}, {} bytes into the block at byte {}",
                    self.filled, self.next
                ),
            ));
        }
        self.observe(&buf[..n])?;
        Ok(n)
    }
}

/// `size` rounded up to whole blocks.
fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK).saturating_mul(BLOCK)
}

/// The header checksum as the tar crate checks it.
fn checksum_ok(h: &tar::Header) -> bool {
    let b = h.as_bytes();
    let sum: u32 = b[..148]
        .iter()
        .chain(&b[156..])
        .map(|&x| u32::from(x))
        .sum::<u32>()
        + 8 * 32;
    h.cksum().is_ok_and(|c| c == sum)
}

/// PAX records as Go's `archive/tar` parses them (and refuses them):
/// `LEN KEY=VALUE\n`, LEN counting the whole record, one after another.
/// The tar crate skips malformed records silently; Docker refuses the layer.
pub(super) fn check_pax(mut data: &[u8]) -> Result<(), String> {
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ').ok_or("no length")?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or("a length that is not a number")?;
        if len < 5 || len > data.len() || len <= space + 1 {
            return Err(format!(
                "a length of {len} where {} bytes remain",
                data.len()
            ));
        }
        let record = &data[space + 1..len];
        if record.last() != Some(&b'\n') {
            return Err("a record that does not end where its length says".into());
        }
        if !record.contains(&b'=') || record.first() == Some(&b'=') {
            return Err("a record with no key".into());
        }
        data = &data[len..];
    }
    Ok(())
}

/// A numeric PAX record, read as the tar crate reads it.
pub(super) fn pax_value(data: &[u8], key: &str) -> Option<u64> {
    for ext in tar::PaxExtensions::new(data) {
        let ext = ext.ok()?;
        if ext.key() == Ok(key) {
            return ext.value().ok()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, size: u64) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).expect("short name");
        h.set_size(size);
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    fn body(len: usize) -> Vec<u8> {
        let mut v = vec![b'a'; len];
        v.resize(len.div_ceil(512) * 512, 0);
        v
    }

    /// Read all of `data` through the guard in reads of `chunk` bytes.
    fn pass(data: &[u8], chunk: usize) -> io::Result<()> {
        let mut g = Guard::new(data);
        let mut buf = vec![0u8; chunk];
        while g.read(&mut buf)? > 0 {}
        Ok(())
    }

    #[test]
    fn refuses_a_long_name_over_the_limit_in_any_read_size() {
        let mut tar = header("a", b'0', 1000);
        tar.extend(body(1000));
        tar.extend(header("././@LongLink", b'L', MAX_EXTENSION + 1));
        tar.extend(vec![b'a'; 4096]);
        for chunk in [1, 7, 512, 4096, 1 << 20] {
            let e = pass(&tar, chunk).expect_err("too long");
            assert!(e.to_string().contains("GNU long name"), "{e}");
            assert!(e.to_string().contains("at byte 1536"), "{e}");
        }
    }

    #[test]
    fn follows_a_pax_size_override_to_the_next_header() {
        // A PAX size of 2000 for an entry whose header says 0: the next
        // header is after 2000 bytes, and it is a bomb.
        let rec = b"13 size=2000\n";
        let mut tar = header("PaxHeaders/x", b'x', rec.len() as u64);
        tar.extend(rec);
        tar.resize(1024, 0);
        tar.extend(header("x", b'0', 0));
        tar.extend(body(2000));
        tar.extend(header("PaxHeaders/y", b'x', 5 << 20));
        for chunk in [1, 100, 512, 8192] {
            let e = pass(&tar, chunk).expect_err("too long");
            assert!(e.to_string().contains("PAX"), "{e}");
        }
        // Without the override the guard would look for a header inside
        // the 2000 bytes of 'a', find none, and lose its way.
    }

    #[test]
    fn a_stream_cut_inside_a_header_or_the_end_marker_says_so() {
        let mut tar = header("a", b'0', 10);
        tar.extend(body(10));
        let mut cut = tar.clone();
        cut.extend(&header("b", b'0', 0)[..100]);
        let e = pass(&cut, 4096).expect_err("cut header");
        assert!(e.to_string().contains("inside a tar header"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let mut cut = tar.clone();
        cut.extend([0u8; 300]);
        let e = pass(&cut, 4096).expect_err("cut end marker");
        assert!(e.to_string().contains("end-of-archive marker"), "{e}");
        // No end marker at all, cut on a block boundary: accepted, as
        // Go's archive/tar (and so Docker) accepts it.
        pass(&tar, 4096).expect("no end marker");
    }

    #[test]
    fn pax_records_are_checked_as_go_checks_them() {
        assert!(check_pax(b"13 size=2000\n").is_ok());
        assert!(check_pax(b"").is_ok());
        // A value may hold a newline: records are read by length.
        assert!(check_pax(b"16 path=a\nb/c.d\n13 size=2000\n").is_ok());
        assert!(check_pax(b"99 path=short\n").is_err());
        assert!(check_pax(b"12 path=short\n").is_err());
        assert!(check_pax(b"x path=short\n").is_err());
        assert!(check_pax(b"10 =nokey\n").is_err());
        assert!(check_pax(b"13 size=2000\ngarbage").is_err());
    }

    #[test]
    fn small_extensions_and_the_end_of_the_archive_pass() {
        let mut tar = header("././@LongLink", b'L', 300);
        tar.extend(body(300));
        tar.extend(header("x", b'0', 10));
        tar.extend(body(10));
        tar.extend(vec![0u8; 1024]);
        // After the end, anything goes (it is not read as tar).
        tar.extend(header("././@LongLink", b'L', 1 << 40));
        for chunk in [1, 511, 513, 1 << 16] {
            pass(&tar, chunk).expect("fine");
        }
    }
}
