//! Reading a plain layer tar in place: each header is parsed where it lies
//! in a read-ahead window, and small files are hashed there, with no copy
//! between the file and the hasher but the kernel's.
//!
//! It reads what real layers hold (ustar, GNU and old headers, GNU long
//! names and links, PAX records) exactly as the tar crate behind [`Guard`]
//! reads them, and gives up on anything else: a GNU sparse file, a
//! base-256 number, a field that is not plain octal, a bad checksum, two
//! extensions of one kind before a member, a truncated layer, any header
//! the tar crate or the guard would refuse. The caller then reads the
//! layer again with the tar crate, which says in its words what is wrong.
//! Giving up costs a second read of one layer, never a different index.
//!
//! [`Guard`]: super::guard::Guard

use std::borrow::Cow;
use std::io::{self, Read, Seek, SeekFrom};

use std::hash::Hasher;

use twox_hash::XxHash3_64;

use super::guard::{MAX_EXTENSION, check_pax, pax_value};
use super::header::{BLOCK, checksum_ok, octal, octal_or_zero, until_nul};
use super::indexer::{Indexer, Member};

/// Bytes read at a time: at least this much, so that the reader below
/// (`source::archive::parallel`'s `At`) reads straight into the window.
const READ: usize = 64 * 1024;
/// The largest content hashed in one piece, in the window.
const IN_PLACE: usize = 256 * 1024;

/// Why a scan stopped before the end.
pub(super) enum Stop {
    /// Something it does not read exactly as the tar crate does: read the
    /// layer with the tar crate instead.
    GaveUp,
    /// The layer is wrong in a way the tar crate would meet in the same
    /// member, and this is the error it gives there.
    Failed(io::Error),
}

/// Where a scan ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reached {
    /// The end of the layer.
    End,
    /// The member boundary it was to stop at.
    Stop,
}

/// Index the layer `r`, of `len` bytes, into `ix`, member by member, from
/// the member at `from` (`r` is there). With `stop`, end at that offset
/// if a member starts there with nothing pending before it; else go on to
/// the end (the offset was not where the members of this layer fall).
pub(super) fn scan<R: Read + Seek>(
    r: R,
    from: u64,
    len: u64,
    mut stop: Option<u64>,
    ix: &mut Indexer<'_, '_>,
) -> Result<Reached, Stop> {
    let mut w = Window {
        r,
        len,
        limit: stop.unwrap_or(len),
        buf: vec![0u8; IN_PLACE + READ],
        start: 0,
        end: 0,
        pos: from,
        eof: false,
    };
    let gave_up = |_| Stop::GaveUp;
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax: Option<Vec<u8>> = None;
    let mut header = [0u8; BLOCK];
    loop {
        let header_pos = w.pos;
        let pending = long_name.is_some() || long_link.is_some() || pax.is_some();
        if let Some(s) = stop {
            if header_pos == s && !pending {
                return Ok(Reached::Stop);
            }
            if header_pos >= s {
                (stop, w.limit) = (None, len);
            }
        }
        let block = w.fill(BLOCK).map_err(gave_up)?;
        if block.is_empty() && !pending {
            return Ok(Reached::End);
        }
        if block.len() < BLOCK {
            return Err(Stop::GaveUp);
        }
        // One copy out of the window (which moves as it fills); the
        // member borrows it.
        header.copy_from_slice(block);
        if header.iter().all(|&b| b == 0) {
            return if pending {
                Err(Stop::GaveUp)
            } else {
                Ok(Reached::End)
            };
        }
        if !checksum_ok(&header) {
            return Err(Stop::GaveUp);
        }
        let flag = header[156];
        let extension = matches!(flag, b'L' | b'K' | b'x' | b'g');
        let applied = pax.as_deref().filter(|_| !extension);
        let mut size = octal(&header[124..136]).ok_or(Stop::GaveUp)?;
        if let Some(p) = applied.and_then(|p| pax_value(p, "size")) {
            size = p;
        }
        let padded = size.checked_add(BLOCK as u64 - 1).ok_or(Stop::GaveUp)? & !(BLOCK as u64 - 1);
        let file_pos = header_pos + BLOCK as u64;
        let next = file_pos.checked_add(padded).ok_or(Stop::GaveUp)?;
        if stop.is_some_and(|s| next > s) {
            // This member runs past the stop: the stop is no boundary.
            (stop, w.limit) = (None, len);
        }
        w.consume(BLOCK);

        let magic = &header[257..265];
        let recognized = magic == b"ustar\x0000" || magic == b"ustar  \x00";
        if recognized && matches!(flag, b'L' | b'K' | b'x') {
            let slot = match flag {
                b'L' => &mut long_name,
                b'K' => &mut long_link,
                _ => &mut pax,
            };
            if slot.is_some() || size > MAX_EXTENSION {
                return Err(Stop::GaveUp);
            }
            let mut body = Vec::with_capacity(size as usize);
            if !w
                .stream(size, |b| body.extend_from_slice(b))
                .map_err(gave_up)?
                || (flag == b'x' && check_pax(&body).is_err())
                || !w.skip(padded - size).map_err(gave_up)?
            {
                return Err(Stop::GaveUp);
            }
            *slot = Some(body);
            continue;
        }
        if flag == b'S' {
            return Err(Stop::GaveUp);
        }
        let number = |field: &[u8], key: &str| match applied.and_then(|p| pax_value(p, key)) {
            Some(v) => Some(v),
            None => octal_or_zero(field),
        };
        let meta = (
            octal_or_zero(&header[100..108]).ok_or(Stop::GaveUp)? as u32,
            number(&header[108..116], "uid").ok_or(Stop::GaveUp)? as u32,
            number(&header[116..124], "gid").ok_or(Stop::GaveUp)? as u32,
            octal_or_zero(&header[136..148]).ok_or(Stop::GaveUp)?,
        );
        let mut m = Scanned {
            w: &mut w,
            header: &header,
            header_pos,
            file_pos,
            size,
            meta,
            long_name: long_name.take(),
            long_link: long_link.take(),
            pax: pax.take(),
            read: false,
            gave_up: false,
        };
        if let Err(e) = ix.add(&mut m) {
            return Err(if m.gave_up {
                Stop::GaveUp
            } else {
                Stop::Failed(e)
            });
        }
        let rest = if m.read { padded - size } else { padded };
        if !w.skip(rest).map_err(gave_up)? {
            return Err(Stop::GaveUp);
        }
    }
}

/// The layer through a read-ahead window.
struct Window<R> {
    r: R,
    len: u64,
    /// Read no further (a stop, else `len`).
    limit: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The layer offset of `buf[start]`.
    pos: u64,
    eof: bool,
}

impl<R: Read + Seek> Window<R> {
    /// The next `n` bytes (at most [`IN_PLACE`]), fewer only where the
    /// layer ends.
    fn fill(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.end - self.start < n && !self.eof {
            // Move what is left to the front only when the `n` bytes, or
            // a whole read, would not fit after it.
            if self.start + n > self.buf.len() || self.buf.len() - self.end < READ {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            while self.end - self.start < n {
                let room = self
                    .limit
                    .saturating_sub(self.pos + (self.end - self.start) as u64);
                let want = (n - (self.end - self.start))
                    .max(READ)
                    .min(self.buf.len() - self.end)
                    .min(usize::try_from(room).unwrap_or(usize::MAX));
                if want == 0 {
                    break;
                }
                match self.r.read(&mut self.buf[self.end..self.end + want]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(k) => self.end += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let n = n.min(self.end - self.start);
        Ok(&self.buf[self.start..self.start + n])
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.pos += n as u64;
    }

    /// Pass `n` bytes to `f`, in pieces; false if the layer ends first.
    fn stream(&mut self, mut n: u64, mut f: impl FnMut(&[u8])) -> io::Result<bool> {
        while n > 0 {
            let piece = self.fill(n.min(IN_PLACE as u64) as usize)?;
            if piece.is_empty() {
                return Ok(false);
            }
            let k = piece.len();
            f(piece);
            self.consume(k);
            n -= k as u64;
        }
        Ok(true)
    }

    /// Move `n` bytes on, seeking past what is not in the window; false if
    /// that is past the layer's end.
    fn skip(&mut self, n: u64) -> io::Result<bool> {
        let held = (self.end - self.start) as u64;
        if n <= held {
            self.consume(n as usize);
            return Ok(true);
        }
        let to = self.pos + n;
        // The reader is at `pos + held`: it seeks forward only.
        if to > self.len || self.r.seek(SeekFrom::Start(to)).is_err() {
            return Ok(false);
        }
        self.start = 0;
        self.end = 0;
        self.pos = to;
        Ok(true)
    }
}

/// One member, its header parsed; its content next in the window.
struct Scanned<'w, R> {
    w: &'w mut Window<R>,
    header: &'w [u8; BLOCK],
    header_pos: u64,
    file_pos: u64,
    size: u64,
    meta: (u32, u32, u32, u64),
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
    /// The content was read.
    read: bool,
    /// The content could not be read as the tar crate reads it.
    gave_up: bool,
}

/// A GNU long name or link as the tar crate gives it: one trailing NUL off.
fn without_nul(b: &[u8]) -> &[u8] {
    b.strip_suffix(&[0]).unwrap_or(b)
}

impl<R> Scanned<'_, R> {
    fn pax_bytes(&self, key: &[u8]) -> Option<&[u8]> {
        tar::PaxExtensions::new(self.pax.as_deref()?)
            .filter_map(Result::ok)
            .find(|x| x.key_bytes() == key)
            .map(|x| x.value_bytes())
    }
}

impl<R: Read + Seek> Member for Scanned<'_, R> {
    fn header_pos(&self) -> u64 {
        self.header_pos
    }

    fn file_pos(&self) -> u64 {
        self.file_pos
    }

    fn path_bytes(&self) -> Cow<'_, [u8]> {
        if let Some(n) = &self.long_name {
            return Cow::Borrowed(without_nul(n));
        }
        if let Some(p) = self.pax_bytes(b"path") {
            return Cow::Borrowed(p);
        }
        let h = self.header;
        let name = until_nul(&h[..100]);
        let ustar = &h[257..265] == b"ustar\x0000";
        if ustar && h[345] != 0 {
            let mut full = until_nul(&h[345..500]).to_vec();
            full.push(b'/');
            full.extend_from_slice(name);
            Cow::Owned(full)
        } else {
            Cow::Borrowed(name)
        }
    }

    fn link_bytes(&self) -> Option<Cow<'_, [u8]>> {
        if let Some(n) = &self.long_link {
            return Some(Cow::Borrowed(without_nul(n)));
        }
        if let Some(p) = self.pax_bytes(b"linkpath") {
            return Some(Cow::Borrowed(p));
        }
        let link = &self.header[157..257];
        (link[0] != 0).then(|| Cow::Borrowed(until_nul(link)))
    }

    fn kind(&self) -> tar::EntryType {
        tar::EntryType::new(self.header[156])
    }

    fn meta(&self) -> (u32, u32, u32, u64) {
        self.meta
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn header_bytes(&self) -> &[u8; 512] {
        self.header
    }

    fn hash(&mut self, _: &mut [u8], keep: bool) -> io::Result<(u64, Option<Box<[u8]>>)> {
        let size = self.size;
        let got = if keep {
            let mut data = Vec::with_capacity(size as usize);
            self.w
                .stream(size, |b| data.extend_from_slice(b))?
                .then(|| (XxHash3_64::oneshot(&data), Some(data.into_boxed_slice())))
        } else if size <= IN_PLACE as u64 {
            let piece = self.w.fill(size as usize)?;
            let (k, d) = (piece.len(), XxHash3_64::oneshot(piece));
            let whole = k as u64 == size;
            self.w.consume(k);
            whole.then_some((d, None))
        } else {
            let mut h = XxHash3_64::new();
            self.w
                .stream(size, |b| h.write(b))?
                .then(|| (h.finish(), None))
        };
        self.read = true;
        got.ok_or_else(|| {
            self.gave_up = true;
            io::Error::from(io::ErrorKind::UnexpectedEof)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::index::indexer::Content;
    use crate::index::layer::{Defer, LayerIndex, explain, finish_deferred, index_tar};
    use std::io::Cursor;
    use std::sync::atomic::AtomicU64;

    /// What an index says, in comparable form.
    fn facts(idx: &LayerIndex) -> String {
        let mut out = Vec::new();
        for e in &idx.entries {
            out.push(format!(
                "{} {:?} {:o} {} {} {} {} {:x} {} {:?}",
                idx.tree.path(e.node),
                e.kind,
                e.mode,
                e.uid,
                e.gid,
                e.mtime,
                e.size,
                e.digest,
                e.hashed,
                e.link
            ));
        }
        for &n in &idx.whiteouts {
            out.push(format!("whiteout {}", idx.tree.path(n)));
        }
        for &n in &idx.opaque {
            out.push(format!("opaque {}", idx.tree.path(n)));
        }
        for (n, data) in &idx.captured {
            out.push(format!(
                "captured {} {:x}",
                idx.tree.path(*n),
                XxHash3_64::oneshot(data)
            ));
        }
        out.push(format!("size {} incomplete {}", idx.size, idx.incomplete));
        out.join("\n")
    }

    /// The scan's index of `tar` (None if it gave up), large files left
    /// to jobs when `defer` is set.
    fn scanned(tar: &[u8], defer: bool) -> Option<Result<String, String>> {
        let budget = AtomicU64::new(u64::MAX);
        let mut sent: Vec<(u64, u64)> = Vec::new();
        let mut send = |at: u64, size: u64| {
            sent.push((at, size));
            sent.len() as u32 - 1
        };
        let content = if defer {
            Content::Defer(Defer {
                min: 700,
                len: tar.len() as u64,
                send: &mut send,
                seen: &mut |_| {},
            })
        } else {
            Content::All
        };
        let mut ix = Indexer::new(&budget, content);
        match scan(Cursor::new(tar), 0, tar.len() as u64, None, &mut ix) {
            Ok(_) => {
                let (mut idx, pending) = ix.finish();
                finish_deferred(&mut idx, &pending, None, |job| {
                    let (at, size) = sent[job as usize];
                    Some(XxHash3_64::oneshot(&tar[at as usize..(at + size) as usize]))
                });
                Some(Ok(facts(&idx)))
            }
            Err(Stop::Failed(e)) => Some(Err(explain(&e))),
            Err(Stop::GaveUp) => None,
        }
    }

    fn direct(tar: &[u8]) -> Result<String, String> {
        index_tar(tar).map(|i| facts(&i)).map_err(|e| explain(&e))
    }

    fn append(b: &mut tar::Builder<Vec<u8>>, mut h: tar::Header, path: &str, data: &[u8]) {
        h.set_size(data.len() as u64);
        h.set_mode(0o640);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn link(
        b: &mut tar::Builder<Vec<u8>>,
        h: tar::Header,
        kind: tar::EntryType,
        path: &str,
        to: &str,
    ) {
        let mut h = h;
        h.set_entry_type(kind);
        h.set_size(0);
        b.append_link(&mut h, path, to).unwrap();
    }

    /// A layer with every kind of member real layers hold; with `big`, one
    /// file too large to hash in one piece.
    fn layer(big: bool) -> Vec<u8> {
        let data = |seed: u8, n: usize| {
            (0..n)
                .map(|i| (i as u8).wrapping_mul(seed))
                .collect::<Vec<u8>>()
        };
        let mut b = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_ustar();
        dir.set_entry_type(tar::EntryType::Directory);
        append(&mut b, dir, "usr/", b"");
        append(
            &mut b,
            tar::Header::new_ustar(),
            "etc/os-release",
            b"ID=debian\n",
        );
        append(
            &mut b,
            tar::Header::new_gnu(),
            "usr/bin/tool",
            &data(3, 5000),
        );
        append(
            &mut b,
            tar::Header::new_old(),
            "usr/old-style",
            &data(5, 10),
        );
        let deep = format!("usr/share/{}/file.txt", "nested-directory".repeat(7));
        append(&mut b, tar::Header::new_ustar(), &deep, &data(7, 300));
        let long = format!("opt/{}/gnu-long-name", "x".repeat(150));
        append(&mut b, tar::Header::new_gnu(), &long, &data(9, 1200));
        link(
            &mut b,
            tar::Header::new_gnu(),
            tar::EntryType::Symlink,
            "usr/lib/long-link",
            &long,
        );
        link(
            &mut b,
            tar::Header::new_ustar(),
            tar::EntryType::Link,
            "usr/bin/tool-again",
            "usr/bin/tool",
        );
        b.append_pax_extensions([
            ("path", &b"opt/pax/\xc3\xa9t\xc3\xa9"[..]),
            ("uid", b"3000000"),
            ("gid", b"12"),
        ])
        .unwrap();
        append(
            &mut b,
            tar::Header::new_ustar(),
            "opt/placeholder",
            &data(11, 800),
        );
        b.append_pax_extensions([("linkpath", &b"/some/where/else"[..])])
            .unwrap();
        link(
            &mut b,
            tar::Header::new_ustar(),
            tar::EntryType::Symlink,
            "opt/pax-link",
            "short",
        );
        append(
            &mut b,
            tar::Header::new_ustar(),
            "var/lib/dpkg/status",
            b"Package: x\nStatus: install ok installed\n\n",
        );
        append(&mut b, tar::Header::new_gnu(), "usr/.wh.gone", b"");
        append(&mut b, tar::Header::new_gnu(), "var/.wh..wh..opq", b"");
        if big {
            append(
                &mut b,
                tar::Header::new_gnu(),
                "usr/big",
                &data(13, 400_000),
            );
        }
        append(
            &mut b,
            tar::Header::new_gnu(),
            "usr/bin/tool",
            b"listed again",
        );
        let mut fifo = tar::Header::new_gnu();
        fifo.set_entry_type(tar::EntryType::Fifo);
        append(&mut b, fifo, "run/fifo", b"");
        b.into_inner().unwrap()
    }

    /// Check the scan reads `tar` as the tar crate does, large files
    /// deferred or not; gives what both read.
    fn scans_as_the_tar_crate(tar: &[u8]) -> String {
        let want = direct(tar).unwrap();
        for defer in [false, true] {
            assert_eq!(scanned(tar, defer), Some(Ok(want.clone())), "defer {defer}");
        }
        want
    }

    #[test]
    fn a_well_formed_layer_is_scanned_as_the_tar_crate_reads_it() {
        let tar = layer(true);
        let want = scans_as_the_tar_crate(&tar);
        // Cut after its last member, without the end blocks: the same.
        let end = tar.len() - 1024;
        assert_eq!(scanned(&tar[..end], false), Some(Ok(want)));
    }

    /// Many members of sizes around the window's: the window refills,
    /// moves what is left to its front and skips, at every offset.
    #[test]
    fn a_layer_larger_than_the_window_is_scanned_as_the_tar_crate_reads_it() {
        let mut b = tar::Builder::new(Vec::new());
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let size = match i % 4 {
                0 => (x % 600) as usize,
                1 => (x % (READ as u64 * 2)) as usize,
                2 => (x % (IN_PLACE as u64 + READ as u64)) as usize,
                _ => (x % 5000) as usize,
            };
            let data: Vec<u8> = (0..size).map(|j| (j as u8) ^ (i as u8)).collect();
            append(
                &mut b,
                tar::Header::new_gnu(),
                &format!("d{}/f{i}", i % 7),
                &data,
            );
        }
        let tar = b.into_inner().unwrap();
        assert!(tar.len() > 20 * (IN_PLACE + READ));
        scans_as_the_tar_crate(&tar);
    }

    /// The offsets of the headers in `tar` (each member's first block).
    fn headers(tar: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
            out.push(at);
            let size = octal(&tar[at + 124..at + 136]).unwrap_or(0) as usize;
            at += 512 + size.div_ceil(512) * 512;
        }
        out
    }

    fn fix_checksum(block: &mut [u8]) {
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    #[test]
    fn damaged_layers_are_scanned_as_the_tar_crate_reads_them_or_given_up() {
        let base = layer(false);
        let at = headers(&base);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let interesting = [
            0u8, b' ', b'0', b'7', b'8', b'/', b'.', b'x', b'L', b'K', b'g', b'S', b'5', b'2',
            b'1', 0x80, 0xff, b'\n', b'=',
        ];
        let (mut read, mut gave_up) = (0, 0);
        for round in 0..6000 {
            let mut tar = base.clone();
            match next() % 8 {
                // A cut anywhere.
                0 => tar.truncate((next() % base.len() as u64) as usize),
                // A byte of a header changed, the checksum made right (or not).
                _ => {
                    let h = at[(next() % at.len() as u64) as usize];
                    for _ in 0..1 + next() % 3 {
                        let i = h + (next() % 512) as usize;
                        tar[i] = if next() % 2 == 0 {
                            interesting[(next() % interesting.len() as u64) as usize]
                        } else {
                            next() as u8
                        };
                    }
                    if next() % 8 != 0 {
                        fix_checksum(&mut tar[h..h + 512]);
                    }
                }
            }
            let want = direct(&tar);
            for defer in [false, true] {
                match scanned(&tar, defer) {
                    None => gave_up += 1,
                    Some(got) => {
                        read += 1;
                        assert_eq!(got, want, "round {round}, defer {defer}");
                    }
                }
            }
        }
        // Most damage is still read by the scan, not passed on.
        assert!(read > gave_up, "read {read}, gave up {gave_up}");
    }
}
