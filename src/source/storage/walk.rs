//! A layer whose tar-split is missing or unreadable, read from its
//! directory as overlayfs keeps it: a 0/0 character device is a whiteout,
//! a directory with `trusted.overlay.opaque=y` (or `user.overlay.opaque=y`,
//! as rootless engines write it) is opaque, files sharing an inode are
//! hardlinks of the first path that names it.
//!
//! The directory is turned into the tar the engine's own diff would write
//! (paths in lexical order, each directory before its content, whiteouts
//! and opaque markers as `.wh.` entries) and that tar is indexed by the
//! same code as an export, every file hashed. Every name is resolved from
//! the layer directory's descriptor, one component at a time, never
//! following a symlink (files are opened through [`LayerDir::open_file`],
//! RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS); special files are never opened.
//!
//! Reading `trusted.*` xattrs needs CAP_SYS_ADMIN: without it the kernel
//! leaves them out silently, so [`can_walk`] is checked first.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use super::StoredLayer;
use super::files::LayerDir;
use super::gotar::{self, Fields};
use crate::index::layer::{LayerIndex, index_tar_within};

/// Does this process hold CAP_SYS_ADMIN (bit 21 of CapEff in
/// /proc/self/status)? Without it `trusted.*` xattrs read as absent.
pub fn can_walk() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// Index one layer from its directory. `progress` is told each file's size.
pub fn read_layer(
    layer: &StoredLayer,
    budget: &AtomicU64,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<LayerIndex> {
    let dir = LayerDir::open(&layer.dir)?;
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(8);
    let (index, written) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut out = Chunks {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
                sent: 0,
            };
            let r = write_tar(&dir, &mut out, progress).and_then(|()| out.flush());
            if let Err(e) = &r {
                // The reader sees the error, not a tar cut short.
                let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
            }
            drop(tx);
            r.map(|()| out.sent)
        });
        let index = index_tar_within(
            ChunkReader {
                rx,
                cur: Vec::new(),
                at: 0,
            },
            budget,
        );
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the directory walk panicked")));
        (index, written)
    });
    // The walk's own error names the file; the indexer's would only say
    // that the tar ended.
    let written = written?;
    let mut index = index?;
    // The engine's record of its tar's size where it keeps one (podman),
    // else the size of the tar the walk wrote.
    index.tar_bytes = layer.tar_size.unwrap_or(written);
    Ok(index)
}

const CHUNK: usize = 256 * 1024;

/// A writer sending its bytes over a channel in chunks.
struct Chunks {
    tx: SyncSender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    sent: u64,
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.sent += chunk.len() as u64;
        self.tx
            .send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the indexer stopped"))
    }
}

struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    at: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.cur.len() {
            match self.rx.recv() {
                Ok(chunk) => (self.cur, self.at) = (chunk?, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.at);
        buf[..n].copy_from_slice(&self.cur[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The content of a regular file, exactly `left` bytes of it.
struct Exact<'a> {
    dir: &'a LayerDir,
    raw: &'a [u8],
    file: std::fs::File,
    left: u64,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf.len().min(self.left.try_into().unwrap_or(usize::MAX));
        let n = self
            .file
            .read(&mut buf[..max])
            .map_err(|e| self.dir.changed(self.raw, &e.to_string()))?;
        if n == 0 {
            return Err(self
                .dir
                .changed(self.raw, &format!("it ended {} bytes short", self.left)));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// An extended attribute's value is `y` (an overlayfs flag set).
fn flag_set(fd: &OwnedFd, name: &str) -> io::Result<bool> {
    let mut v = [0u8; 8];
    match rustix::fs::fgetxattr(fd, name, &mut v[..]) {
        Ok(n) => Ok(v[..n] == *b"y"),
        Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Write the layer directory as a tar into `out`.
fn write_tar(dir: &LayerDir, out: &mut Chunks, progress: &(dyn Fn(u64) + Sync)) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut inodes: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    // Directories still to list: their descriptor and path ("" or "a/b/").
    let root = rustix::fs::openat(
        dir.fd(),
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut stack: Vec<Frame> = vec![Frame::list(root, Vec::new())?];
    // Depth first, each directory's names in byte order, a directory's
    // content right after it: the order the engine's own diff writes.
    while let Some(top) = stack.last_mut() {
        let Some(name) = top.names.pop() else {
            stack.pop();
            continue;
        };
        let (fd, prefix) = (&top.fd, top.prefix.clone());
        let mut next: Option<Frame> = None;
        {
            let mut path = prefix.clone();
            path.extend_from_slice(&name);
            let gone = |e: rustix::io::Errno| dir.changed(&path, &io::Error::from(e).to_string());
            let st =
                rustix::fs::statat(fd, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW).map_err(gone)?;
            let mut h = tar::Header::new_ustar();
            // The whole st_mode, file type bits included: the engines'
            // diff writes them (Docker's and containers/storage's
            // fillGo18FileTypeBits), so the export's headers carry them.
            h.set_mode(st.st_mode);
            h.set_uid(u64::from(st.st_uid));
            h.set_gid(u64::from(st.st_gid));
            h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
            h.set_size(0);
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    h.set_entry_type(tar::EntryType::Directory);
                    let mut slash = path.clone();
                    slash.push(b'/');
                    gotar::append(
                        &mut tar,
                        &mut h,
                        &of(&st, &slash, None, 0, None),
                        io::empty(),
                    )?;
                    let sub = rustix::fs::openat2(
                        fd,
                        name.as_slice(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
                    )
                    .map_err(gone)?;
                    for x in ["trusted.overlay.redirect", "trusted.overlay.metacopy"] {
                        if rustix::fs::fgetxattr(&sub, x, &mut [0u8; 0][..]).is_ok() {
                            return Err(dir.changed(
                                &path,
                                &format!("it carries {x}, which a directory walk cannot follow"),
                            ));
                        }
                    }
                    if flag_set(&sub, "trusted.overlay.opaque")?
                        || flag_set(&sub, "user.overlay.opaque")?
                    {
                        let mut wo = tar::Header::new_ustar();
                        wo.set_entry_type(tar::EntryType::Regular);
                        wo.set_size(0);
                        wo.set_mode(st.st_mode & 0o777);
                        wo.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
                        let mut p = slash.clone();
                        p.extend_from_slice(b".wh..wh..opq");
                        let f = Fields {
                            uid: 0,
                            gid: 0,
                            ..of(&st, &p, None, 0, None)
                        };
                        gotar::append(&mut tar, &mut wo, &f, io::empty())?;
                    }
                    next = Some(Frame::list(sub, slash)?);
                }
                FileType::CharacterDevice if st.st_rdev == 0 => {
                    // A whiteout: `.wh.NAME` beside where NAME was.
                    let mut p = prefix.clone();
                    p.extend_from_slice(b".wh.");
                    p.extend_from_slice(&name);
                    h.set_entry_type(tar::EntryType::Regular);
                    gotar::append(&mut tar, &mut h, &of(&st, &p, None, 0, None), io::empty())?;
                }
                FileType::RegularFile => {
                    let key = (st.st_dev, st.st_ino);
                    if st.st_nlink > 1
                        && let Some(first) = inodes.get(&key)
                    {
                        h.set_entry_type(tar::EntryType::Link);
                        gotar::append(
                            &mut tar,
                            &mut h,
                            &of(&st, &path, Some(first), 0, None),
                            io::empty(),
                        )?;
                    } else {
                        if st.st_nlink > 1 {
                            inodes.insert(key, path.clone());
                        }
                        let size = st.st_size as u64;
                        let file = dir.open_file(&path, size)?;
                        let mut cap = [0u8; 64];
                        let cap =
                            match rustix::fs::fgetxattr(&file, "security.capability", &mut cap[..])
                            {
                                Ok(n) => Some(&cap[..n]),
                                Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => None,
                                Err(e) => {
                                    return Err(dir.changed(&path, &io::Error::from(e).to_string()));
                                }
                            };
                        h.set_entry_type(tar::EntryType::Regular);
                        h.set_size(size);
                        progress(size);
                        let body = Exact {
                            dir,
                            raw: &path,
                            file,
                            left: size,
                        };
                        gotar::append(&mut tar, &mut h, &of(&st, &path, None, size, cap), body)?;
                    }
                }
                FileType::Symlink => {
                    let target =
                        rustix::fs::readlinkat(fd, name.as_slice(), Vec::new()).map_err(gone)?;
                    h.set_entry_type(tar::EntryType::Symlink);
                    let target = target.as_bytes();
                    gotar::append(
                        &mut tar,
                        &mut h,
                        &of(&st, &path, Some(target), 0, None),
                        io::empty(),
                    )?;
                }
                t @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                    h.set_entry_type(match t {
                        FileType::BlockDevice => tar::EntryType::Block,
                        FileType::CharacterDevice => tar::EntryType::Char,
                        _ => tar::EntryType::Fifo,
                    });
                    if t != FileType::Fifo {
                        h.set_device_major(rustix::fs::major(st.st_rdev))?;
                        h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                    }
                    let f = of(&st, &path, None, 0, None);
                    gotar::append(&mut tar, &mut h, &f, io::empty())?;
                }
                // Sockets are not archived (the engine's diff skips them).
                _ => {}
            }
        }
        stack.extend(next);
    }
    tar.finish()?;
    Ok(())
}

/// The header fields of an entry of `st`.
fn of<'a>(
    st: &rustix::fs::Stat,
    path: &'a [u8],
    link: Option<&'a [u8]>,
    size: u64,
    capability: Option<&'a [u8]>,
) -> Fields<'a> {
    Fields {
        path,
        link,
        uid: u64::from(st.st_uid),
        gid: u64::from(st.st_gid),
        size,
        mtime: st.st_mtime,
        capability,
    }
}

/// A directory being written: its descriptor, its path ("" or "a/b/"),
/// and the names still to write, last first.
struct Frame {
    fd: OwnedFd,
    prefix: Vec<u8>,
    names: Vec<Vec<u8>>,
}

impl Frame {
    fn list(fd: OwnedFd, prefix: Vec<u8>) -> io::Result<Frame> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut list = rustix::fs::Dir::read_from(&fd)?;
        while let Some(e) = list.read() {
            let name = e?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(name);
            }
        }
        names.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Frame { fd, prefix, names })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::layer::EntryKind;

    fn layer(dir: &std::path::Path) -> StoredLayer {
        StoredLayer::new(
            "sha256:x",
            dir.join("no-tar-split"),
            dir.to_path_buf(),
            0,
            None,
        )
    }

    #[test]
    fn a_walk_reads_the_directory_as_its_tar() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("diff");
        std::fs::create_dir_all(d.join("b/deep")).unwrap();
        std::fs::create_dir(d.join("opq")).unwrap();
        std::fs::write(d.join("a"), b"hello").unwrap();
        std::fs::write(d.join("b/deep/z"), vec![3u8; 70_000]).unwrap();
        std::fs::hard_link(d.join("a"), d.join("c")).unwrap();
        std::os::unix::fs::symlink("../../outside", d.join("link")).unwrap();
        std::fs::write(d.join("opq/new"), b"n").unwrap();
        // The rootless spelling (user.*), which any user may set.
        let opq = rustix::fs::open(d.join("opq"), OFlags::RDONLY, Mode::empty()).unwrap();
        if rustix::fs::fsetxattr(
            &opq,
            "user.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .is_err()
        {
            eprintln!("SKIPPED: no user xattrs on {}", tmp.path().display());
            return;
        }
        // A whiteout, where this process may make one (root).
        let whiteout = rustix::fs::mknodat(
            rustix::fs::CWD,
            d.join("gone"),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o600),
            0,
        )
        .is_ok();
        let l = layer(&d);
        assert!(l.walk, "no tar-split: walked");
        let seen = std::sync::atomic::AtomicU64::new(0);
        let count = |n: u64| {
            seen.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        };
        let idx = read_layer(&l, &crate::source::storage::budget(), &count).unwrap();
        let kind = |p: &str| {
            let n = idx.tree.lookup(p).unwrap_or_else(|| panic!("{p} missing"));
            idx.entries
                .iter()
                .find(|e| e.node == n)
                .map(|e| (e.kind, e))
        };
        let (k, a) = kind("a").unwrap();
        assert_eq!((k, a.size, a.hashed), (EntryKind::File, 5, true));
        assert_eq!(a.digest, twox_hash::XxHash3_64::oneshot(b"hello"));
        assert_eq!(
            a.mode & 0o170000,
            0o100000,
            "file type bits, as the engines write"
        );
        let (k, c) = kind("c").unwrap();
        assert_eq!(
            (k, c.link.as_deref(), c.size),
            (EntryKind::Hardlink, Some("a"), 5)
        );
        let (k, s) = kind("link").unwrap();
        assert_eq!(
            (k, s.link.as_deref()),
            (EntryKind::Symlink, Some("../../outside"))
        );
        assert_eq!(kind("b/deep/z").unwrap().1.size, 70_000);
        assert_eq!(kind("b/deep").unwrap().0, EntryKind::Dir);
        assert_eq!(idx.opaque, vec![idx.tree.lookup("opq").unwrap()]);
        if whiteout {
            assert_eq!(idx.whiteouts, vec![idx.tree.lookup("gone").unwrap()]);
            assert!(kind("gone").is_none(), "a whiteout is no entry");
        }
        assert_eq!(seen.into_inner(), 5 + 70_000 + 1, "each file counted once");
        // The size of the tar written: headers, content padded to 512, end.
        assert_eq!(idx.tar_bytes % 512, 0);
        assert!(idx.tar_bytes > 70_000);
    }
}
