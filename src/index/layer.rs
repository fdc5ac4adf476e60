//! One layer's tar stream turned into entries: the layer's own changes,
//! with whiteouts and opaque markers kept apart from the files they hide.

use std::io::{self, BufRead, Read};

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use super::tree::{NodeId, PathTree, ROOT};

/// The kind of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Hardlink => "hardlink",
            EntryKind::Char => "char",
            EntryKind::Block => "block",
            EntryKind::Fifo => "fifo",
        }
    }
}

/// One entry of a layer. `node` refers to the tree that holds it (the
/// layer's own tree while indexing, the image's tree after merging).
#[derive(Debug, Clone)]
pub struct Entry {
    pub node: NodeId,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    /// Content size; for a hardlink, the size of the file it links to; for
    /// a symlink, the length of its target in bytes.
    pub size: u64,
    /// xxh3-64 of the content (regular files and hardlinks), else 0.
    pub digest: u64,
    /// Symlink or hardlink target.
    pub link: Option<Box<str>>,
    /// A hardlink that carries its inode's bytes because every other name
    /// of the inode is hidden (set by the merge).
    pub owns_inode: bool,
}

impl Entry {
    /// Bytes this entry adds to the layer as Docker counts them: regular
    /// file sizes, symlink target lengths, a hardlinked inode once (on the
    /// entry that carries the data, not on the link).
    pub fn disk_bytes(&self) -> u64 {
        match self.kind {
            EntryKind::File => self.size,
            EntryKind::Hardlink if self.owns_inode => self.size,
            EntryKind::Symlink => self.size,
            _ => 0,
        }
    }

    /// Same content and metadata (used to tell metadata-only rewrites).
    pub fn same_content(&self, other: &Entry) -> bool {
        self.kind == other.kind
            && self.size == other.size
            && self.digest == other.digest
            && self.link == other.link
    }
}

/// A layer's changes, indexed.
#[derive(Debug, Default, Clone)]
pub struct LayerIndex {
    pub tree: PathTree,
    pub entries: Vec<Entry>,
    /// Paths deleted by `.wh.NAME` markers.
    pub whiteouts: Vec<NodeId>,
    /// Directories whose lower content is hidden by `.wh..wh..opq`.
    pub opaque: Vec<NodeId>,
    /// Contents of small files the analysis reads (os-release, package
    /// databases), by node.
    pub captured: Vec<(NodeId, Box<[u8]>)>,
    /// Size as Docker computes it (see [`Entry::disk_bytes`]).
    pub size: u64,
    /// Uncompressed tar bytes read.
    pub tar_bytes: u64,
    /// sha256 of the uncompressed tar, when verification was asked for.
    pub diff_id: Option<String>,
}

/// Files whose contents the analysis needs, kept while streaming.
pub fn wants_capture(path: &str, size: u64) -> bool {
    // Real package databases are far smaller; the caps keep a hostile
    // archive from making us hold gigabytes (see also MAX_CAPTURED).
    let max: u64 = if path.ends_with(".list") {
        4 << 20
    } else {
        16 << 20
    };
    if size > max {
        return false;
    }
    matches!(
        path,
        "etc/os-release"
            | "usr/lib/os-release"
            | "var/lib/dpkg/status"
            | "lib/apk/db/installed"
            | "etc/alpine-release"
            | "etc/debian_version"
    ) || (path.starts_with("var/lib/dpkg/info/") && path.ends_with(".list"))
        || path.starts_with("var/lib/dpkg/status.d/")
        || (path.ends_with("/release") && path.starts_with("opt/java/"))
}

/// Normalize a tar path: no leading `./` or `/`, no trailing `/`.
pub fn normalize(path: &str) -> &str {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            break;
        }
    }
    p.trim_end_matches('/')
}

const WHITEOUT: &str = ".wh.";
const NO_ENTRY: u32 = u32::MAX;
/// Bytes and files of small files kept per layer for the analysis.
const MAX_CAPTURED: u64 = 64 << 20;
const MAX_CAPTURED_FILES: usize = 20_000;
/// Linux's PATH_MAX: no real image holds a longer path, and a deeper one
/// would only make every later pass slower.
const MAX_PATH: usize = 4096;
const OPAQUE: &str = ".wh..wh..opq";

/// Read a layer tar (already decompressed) into a [`LayerIndex`].
pub fn index_tar<R: Read>(reader: R) -> io::Result<LayerIndex> {
    // Seeking lets the tar crate skip padding without zeroing a buffer per
    // entry; `Skip` makes forward seeks cheap on any stream.
    let mut ar = tar::Archive::new(Skip::new(reader));
    let mut idx = LayerIndex {
        tree: PathTree::new(),
        ..Default::default()
    };
    // node -> entry index within this layer (a path listed twice: last wins)
    let mut by_node: Vec<u32> = Vec::new();
    let mut captured_bytes = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    // Tar entries arrive grouped by directory: remember the last parent.
    let mut last_dir: (String, NodeId) = (String::new(), ROOT);

    for item in ar.entries_with_seek()? {
        let mut entry = item?;
        let raw_path = entry.path()?;
        let path_string = raw_path.to_string_lossy().into_owned();
        let path = normalize(&path_string);
        if path.is_empty() {
            continue; // the root itself
        }
        if path.len() > MAX_PATH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a path of {} bytes (longer than {MAX_PATH})", path.len()),
            ));
        }
        let (dir, name) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path),
        };
        let parent = if dir == last_dir.0 {
            last_dir.1
        } else {
            let n = idx.tree.insert(dir);
            last_dir = (dir.to_string(), n);
            n
        };

        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            if name == OPAQUE {
                idx.opaque.push(parent);
            } else {
                let node = idx.tree.child(parent, hidden);
                idx.whiteouts.push(node);
            }
            continue;
        }

        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::Hardlink,
            tar::EntryType::Char => EntryKind::Char,
            tar::EntryType::Block => EntryKind::Block,
            tar::EntryType::Fifo => EntryKind::Fifo,
            // GNU sparse files and other rare kinds: count their content as a file.
            other if other.is_gnu_sparse() => EntryKind::File,
            _ => continue,
        };
        let mode = header.mode().unwrap_or(0);
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        let mtime = header.mtime().unwrap_or(0);
        let link = match kind {
            EntryKind::Symlink | EntryKind::Hardlink => entry
                .link_name()?
                .map(|l| l.to_string_lossy().into_owned().into_boxed_str()),
            _ => None,
        };
        let node = idx.tree.child(parent, name);
        // A symlink's size is its target's length in bytes, as lstat says
        // (counted from the raw bytes: the stored target may be lossy UTF-8).
        let mut size = match kind {
            EntryKind::Symlink => entry.link_name_bytes().map_or(0, |b| b.len() as u64),
            _ => 0,
        };
        let mut digest = 0;
        if kind == EntryKind::File {
            size = entry.size();
            let capture = wants_capture(path, size)
                && captured_bytes + size <= MAX_CAPTURED
                && idx.captured.len() < MAX_CAPTURED_FILES;
            let (d, data) = hash_content(&mut entry, size, &mut buf, capture)?;
            digest = d;
            if let Some(data) = data {
                captured_bytes += data.len() as u64;
                match idx.captured.iter_mut().find(|(n, _)| *n == node) {
                    Some(slot) => slot.1 = data,
                    None => idx.captured.push((node, data)),
                }
            }
        }
        let e = Entry {
            node,
            kind,
            mode,
            uid,
            gid,
            mtime,
            size,
            digest,
            link,
            owns_inode: false,
        };
        if by_node.len() <= node as usize {
            by_node.resize(idx.tree.len(), NO_ENTRY);
        }
        match by_node[node as usize] {
            NO_ENTRY => {
                by_node[node as usize] = idx.entries.len() as u32;
                idx.entries.push(e);
            }
            i => idx.entries[i as usize] = e,
        }
    }

    // Hardlinks share their target's content: give them its size and digest.
    for i in 0..idx.entries.len() {
        if idx.entries[i].kind != EntryKind::Hardlink {
            continue;
        }
        let target = idx.entries[i].link.as_deref().map(normalize).unwrap_or("");
        let found = idx
            .tree
            .lookup(target)
            .and_then(|n| by_node.get(n as usize))
            .filter(|&&j| j != NO_ENTRY)
            .map(|&j| (idx.entries[j as usize].size, idx.entries[j as usize].digest));
        if let Some((size, digest)) = found {
            idx.entries[i].size = size;
            idx.entries[i].digest = digest;
        }
    }
    idx.size = idx.entries.iter().map(Entry::disk_bytes).sum();
    // Every layer stays in memory until the merge: give back what doubling
    // reserved (up to half the vector; large blocks shrink in place).
    idx.entries.shrink_to_fit();
    Ok(idx)
}

/// A buffered reader whose forward seeks consume the buffer instead of
/// discarding it, so it can be handed to `tar::Archive::entries_with_seek`
/// over a stream (a pipe, a decompressor, the engine's export).
struct Skip<R> {
    inner: io::BufReader<R>,
    pos: u64,
}

impl<R: Read> Skip<R> {
    fn new(inner: R) -> Self {
        Skip {
            inner: io::BufReader::with_capacity(256 * 1024, inner),
            pos: 0,
        }
    }
}

impl<R: Read> Read for Skip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read> io::Seek for Skip<R> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let mut ahead = match to {
            io::SeekFrom::Current(n) if n >= 0 => n as u64,
            io::SeekFrom::Start(p) if p >= self.pos => p - self.pos,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a layer stream can only be read forwards",
                ));
            }
        };
        while ahead > 0 {
            let available = self.inner.fill_buf()?.len();
            if available == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated: the layer ends inside an entry",
                ));
            }
            let k = available.min(ahead.try_into().unwrap_or(usize::MAX));
            self.inner.consume(k);
            self.pos += k as u64;
            ahead -= k as u64;
        }
        Ok(self.pos)
    }
}

/// Hash an entry's content while streaming it; keep it if asked.
fn hash_content<R: Read>(
    r: &mut R,
    size: u64,
    buf: &mut [u8],
    capture: bool,
) -> io::Result<(u64, Option<Box<[u8]>>)> {
    if capture {
        let mut data = Vec::with_capacity(size as usize);
        r.read_to_end(&mut data)?;
        check_len(data.len() as u64, size)?;
        return Ok((xxh3_64(&data), Some(data.into_boxed_slice())));
    }
    if size as usize <= buf.len() {
        let n = size as usize;
        r.read_exact(&mut buf[..n]).map_err(truncated)?;
        return Ok((xxh3_64(&buf[..n]), None));
    }
    let mut h = Xxh3::new();
    let mut total = 0u64;
    loop {
        let n = r.read(buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    check_len(total, size)?;
    Ok((h.digest(), None))
}

fn check_len(got: u64, want: u64) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("truncated: file content ends after {got} of {want} bytes"),
        ))
    }
}

fn truncated(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated: file content ends early",
        )
    } else {
        e
    }
}
