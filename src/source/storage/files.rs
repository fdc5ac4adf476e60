//! Reading files inside one layer directory, and nowhere else.
//!
//! Every open goes through openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS
//! from the layer's own directory: a path never leaves it, not through
//! `..`, an absolute name, a symlink or a magic link. A name is first
//! opened with O_PATH (no I/O, so a device is never really opened) and
//! only a regular file of the size the engine recorded is then opened for
//! reading. Content is checked against the size and CRC64 of the
//! tar-split as it is read: a file that changed or vanished since the
//! engine stored the layer ends the run instead of giving a wrong report.

use std::ffi::OsStr;
use std::fs::File;
use std::hash::Hasher;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

use crate::index::layer::{decode_name, explained};

/// CRC64 with Go's `crc64.ISO` table, as tar-split records it.
pub const CRC64: crc_fast::CrcAlgorithm = crc_fast::CrcAlgorithm::Crc64GoIso;

/// CRC64 (Go's ISO table) of `data`.
pub fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(CRC64, data)
}

/// A layer's directory (`.../overlay2/<cache-id>/diff`), held open.
#[derive(Debug)]
pub struct LayerDir {
    fd: OwnedFd,
    /// For messages only.
    pub shown: String,
}

impl LayerDir {
    pub fn open(path: &Path) -> io::Result<LayerDir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(LayerDir {
            fd,
            shown: path.display().to_string(),
        })
    }

    /// The directory's descriptor.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd as _;
        self.fd.as_fd()
    }

    /// Open the regular file `raw` (a tar name, relative to this directory)
    /// for reading, checked to hold `size` bytes.
    pub fn open_file(&self, raw: &[u8], size: u64) -> io::Result<File> {
        test_pause();
        let rel = relative(raw);
        let name = OsStr::from_bytes(rel);
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        let changed = |why: &str| self.changed(raw, why);
        let probe = rustix::fs::openat2(
            &self.fd,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            how,
        )
        .map_err(|e| changed(&vanished(e)))?;
        let st = rustix::fs::fstat(&probe).map_err(|e| changed(&e.to_string()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(changed("it is no longer a regular file"));
        }
        if st.st_size as u64 != size {
            return Err(changed(&format!(
                "it holds {} bytes where the engine recorded {size}",
                st.st_size
            )));
        }
        let fd = rustix::fs::openat2(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
            how,
        )
        .map_err(|e| changed(&vanished(e)))?;
        let again = rustix::fs::fstat(&fd).map_err(|e| changed(&e.to_string()))?;
        if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
            return Err(changed("it was replaced while being opened"));
        }
        Ok(File::from(fd))
    }

    /// The error for a file that is not what the engine recorded.
    pub fn changed(&self, raw: &[u8], why: &str) -> io::Error {
        explained(
            io::ErrorKind::InvalidData,
            format!(
                "{} in the engine's layer directory {} changed or vanished while being read ({why}); was the image removed or rebuilt meanwhile? Run again, or use --via export",
                decode_name(relative(raw)),
                self.shown
            ),
        )
    }
}

/// The test-only variable that pauses storage reads: `N:FILE` lets N
/// files be opened, then holds every later open until FILE exists
/// (announcing the pause by creating `FILE.paused`). A test removes the
/// image meanwhile, deterministically, to see the run fail cleanly. Not
/// for users: it only delays a run.
pub const TEST_PAUSE_ENV: &str = "LAYERSCOPE_TEST_PAUSE_AFTER";

/// How long a paused read waits for its file before going on anyway.
const TEST_PAUSE_MAX: std::time::Duration = std::time::Duration::from_secs(300);

fn test_pause() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PAUSE: OnceLock<Option<(u64, std::path::PathBuf)>> = OnceLock::new();
    static OPENED: AtomicU64 = AtomicU64::new(0);
    let pause = PAUSE.get_or_init(|| {
        let v = std::env::var(TEST_PAUSE_ENV).ok()?;
        let (n, file) = v.split_once(':')?;
        Some((n.trim().parse().ok()?, file.into()))
    });
    let Some((after, file)) = pause else {
        return;
    };
    if OPENED.fetch_add(1, Ordering::SeqCst) < *after {
        return;
    }
    let mut marker = file.clone().into_os_string();
    marker.push(".paused");
    let _ = std::fs::write(&marker, b"");
    let t0 = std::time::Instant::now();
    while !file.exists() && t0.elapsed() < TEST_PAUSE_MAX {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn vanished(e: rustix::io::Errno) -> String {
    match e {
        rustix::io::Errno::NOENT => "it no longer exists".into(),
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => {
            "its path now goes through a symlink".into()
        }
        e => io::Error::from(e).to_string(),
    }
}

/// A tar name without its leading `./` and `/`.
pub fn relative(raw: &[u8]) -> &[u8] {
    let mut p = raw;
    loop {
        if let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix(b"/") {
            p = rest;
        } else {
            return p;
        }
    }
}

/// A file being read, checked against the size and CRC64 the engine
/// recorded once its last byte is in.
pub struct Checked<'a> {
    dir: &'a LayerDir,
    raw: Box<[u8]>,
    file: File,
    left: u64,
    want: u64,
    crc: crc_fast::Digest,
}

impl<'a> Checked<'a> {
    pub fn open(dir: &'a LayerDir, raw: &[u8], size: u64, crc: u64) -> io::Result<Self> {
        Ok(Checked {
            file: dir.open_file(raw, size)?,
            dir,
            raw: raw.into(),
            left: size,
            want: crc,
            crc: crc_fast::Digest::new(CRC64),
        })
    }
}

impl Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf.len().min(self.left.try_into().unwrap_or(usize::MAX));
        let n = loop {
            match self.file.read(&mut buf[..max]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r.map_err(|e| self.dir.changed(&self.raw, &e.to_string()))?,
            }
        };
        if n == 0 {
            return Err(self
                .dir
                .changed(&self.raw, &format!("it ended {} bytes short", self.left)));
        }
        self.crc.update(&buf[..n]);
        self.left -= n as u64;
        if self.left == 0 {
            let got = self.crc.finalize();
            if got != self.want {
                return Err(self.dir.changed(
                    &self.raw,
                    "its content no longer matches the CRC64 the engine recorded",
                ));
            }
        }
        Ok(n)
    }
}

/// xxh3 of a file's whole content, checked as it is read.
pub fn hash_file(dir: &LayerDir, raw: &[u8], size: u64, crc: u64) -> io::Result<u64> {
    let mut r = Checked::open(dir, raw, size, crc)?;
    let mut h = twox_hash::XxHash3_64::new();
    let mut buf = vec![0u8; (size as usize).clamp(1, 256 * 1024)];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.write(&buf[..n]);
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_gos_iso_table() {
        // Checked on a real tar-split (go-app-multi's app/static/index.html
        // is recorded as VT9uCTSPoK8=, its ISO CRC; ECMA gives another):
        // crc64.Checksum([]byte("hello"), crc64.MakeTable(crc64.ISO)).
        assert_eq!(crc64(b"hello"), 0x3c3e_eee2_d810_0000);
    }

    #[test]
    fn reads_stay_beneath_the_layer_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("diff");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(tmp.path().join("outside"), b"secret").unwrap();
        std::fs::write(root.join("inside"), b"hello").unwrap();
        std::os::unix::fs::symlink("../outside", root.join("link")).unwrap();
        let dir = LayerDir::open(&root).unwrap();
        let crc = crc64(b"hello");
        assert!(hash_file(&dir, b"./inside", 5, crc).is_ok());
        for name in [&b"link"[..], b"../outside", b"/../outside"] {
            let e = hash_file(&dir, name, 6, crc64(b"secret")).expect_err("escaped");
            assert!(e.to_string().contains("changed or vanished"), "{e}");
        }
        let e = hash_file(&dir, b"inside", 5, crc ^ 1).expect_err("bad crc");
        assert!(e.to_string().contains("CRC64"), "{e}");
        let e = hash_file(&dir, b"inside", 6, crc).expect_err("bad size");
        assert!(e.to_string().contains("holds 5 bytes"), "{e}");
    }
}
