//! One layer's tar stream turned into entries: the layer's own changes,
//! with whiteouts and opaque markers kept apart from the files they hide.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};
use std::sync::atomic::AtomicU64;

use super::guard::Guard;
pub use super::header::boundary_after;
pub use super::indexer::Part;
use super::indexer::{Content, Indexer, link_hardlinks};
use super::scan::{Reached, Stop, scan};
use super::tree::{NodeId, PathTree};

/// The kind of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// xxh3-64 of the content (regular files and hardlinks), else 0; see
    /// `hashed`.
    pub digest: u64,
    /// False for a regular file (or a hardlink to one) whose content was
    /// never read: `digest` then holds its CRC64 (read from the engine's
    /// storage), or 0 (a saved archive's file of a size no other file of
    /// its image has). Such a file has no other file of the same size and
    /// CRC in its image, so it cannot be a duplicate; whoever compares it
    /// with a file of the same size hashes it first
    /// (`source::storage::settle`; images compared are read whole).
    pub hashed: bool,
    /// The CRC64 (Go's ISO table) of the content, where the engine recorded
    /// one (layers read from its storage, whose tar-split keeps it).
    pub crc: Option<u64>,
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
            && self.hashed == other.hashed
            && self.digest == other.digest
            && self.link == other.link
    }
}

/// A layer's changes, indexed. It is also what the layer cache stores
/// (`crate::cache`): changing its fields or what [`wants_capture`] keeps
/// means bumping `cache::FORMAT`.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
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
    /// Files the analysis reads were left out because the image-wide
    /// budget ran out: the index depends on the other layers, so it is
    /// never cached (and never stored).
    #[serde(skip)]
    pub incomplete: bool,
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
            | "etc/apk/world"
            | "etc/alpine-release"
            | "etc/debian_version"
            | "var/lib/apt/extended_states"
    ) || (path.starts_with("var/lib/dpkg/info/") && path.ends_with(".list"))
        || path.starts_with("var/lib/dpkg/status.d/")
        || (path.ends_with("/release") && path.starts_with("opt/java/"))
        || is_language_record(path)
}

/// The records language package managers keep of what they installed:
/// pip's `*.dist-info/RECORD` for its own tools, npm's lock files.
fn is_language_record(path: &str) -> bool {
    if let Some(dir) = path.strip_suffix(".dist-info/RECORD") {
        let name = dir.rsplit('/').next().unwrap_or(dir);
        let project = name.split('-').next().unwrap_or(name).to_ascii_lowercase();
        return matches!(project.as_str(), "pip" | "setuptools" | "wheel");
    }
    // The app's own lock files, not those of its dependencies.
    if !path.ends_with("package-lock.json") {
        return false;
    }
    let depth = path.matches("node_modules/").count();
    if path.ends_with("node_modules/.package-lock.json") {
        depth == 1
    } else {
        (path == "package-lock.json" || path.ends_with("/package-lock.json")) && depth == 0
    }
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

pub(super) const WHITEOUT: &str = ".wh.";
pub(super) const NO_ENTRY: u32 = u32::MAX;
/// Bytes and files of small files kept per layer for the analysis.
pub(super) const MAX_CAPTURED: u64 = 64 << 20;
/// Bytes of small files kept for a whole image: without it, many layers of
/// compressed zeros named like package databases would each keep 64 MiB.
pub const MAX_CAPTURED_IMAGE: u64 = 256 << 20;
pub(super) const MAX_CAPTURED_FILES: usize = 20_000;
/// Linux's PATH_MAX: no real image holds a longer path, and a deeper one
/// would only make every later pass slower.
pub(super) const MAX_PATH: usize = 4096;
/// Linux's NAME_MAX: Docker cannot create a longer file name either.
pub(super) const MAX_NAME: usize = 255;
pub(super) const OPAQUE: &str = ".wh..wh..opq";

/// A path as the tree stores it. Valid UTF-8 is kept as is; any other byte,
/// and any control character, is written `\xNN`, so that two names
/// differing only in such bytes stay two files (a lossy conversion would
/// merge them into one) and no view ever sends a file name's escape
/// sequences to a terminal.
pub fn decode_name(raw: &[u8]) -> Cow<'_, str> {
    use std::fmt::Write;
    let escape = |s: &mut String, valid: &str| {
        for c in valid.chars() {
            if c.is_control() {
                let _ = write!(s, "\\x{:02x}", u32::from(c));
            } else {
                s.push(c);
            }
        }
    };
    // Printable ASCII, as nearly every name is (a fold, which vectorizes,
    // rather than decoding characters).
    let printable = !raw
        .iter()
        .fold(false, |odd, &b| odd | !(0x20..0x7f).contains(&b));
    match std::str::from_utf8(raw) {
        Ok(s) if printable || !s.chars().any(char::is_control) => Cow::Borrowed(s),
        _ => {
            let mut s = String::with_capacity(raw.len() + 16);
            for chunk in raw.utf8_chunks() {
                escape(&mut s, chunk.valid());
                for b in chunk.invalid() {
                    let _ = write!(s, "\\x{b:02x}");
                }
            }
            Cow::Owned(s)
        }
    }
}

/// Resolve `.`, `..` and empty components of a normalized path lexically,
/// as Docker does (Go's `filepath.Clean` before joining it to the root).
/// `None` when the path climbs out of the root.
pub fn clean(path: &str) -> Option<Cow<'_, str>> {
    // Is any component empty, `.` or `..`? Only if the path is empty,
    // starts or ends with `/`, or a component starts with `/` or `.`; the
    // byte loop then tells (this runs on every member).
    let b = path.as_bytes();
    let maybe = match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            first == b'/'
                || first == b'.'
                || last == b'/'
                || b.iter().zip(&b[1..]).fold(false, |hit, (&x, &y)| {
                    hit | ((x == b'/') & ((y == b'/') | (y == b'.')))
                })
        }
        _ => true,
    };
    let mut odd = false;
    if maybe {
        let mut start = 0;
        for i in 0..=b.len() {
            if i == b.len() || b[i] == b'/' {
                odd |= matches!(&b[start..i], b"" | b"." | b"..");
                start = i + 1;
            }
        }
    }
    if !odd {
        return Some(Cow::Borrowed(path));
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(Cow::Owned(parts.join("/")))
}

/// An I/O error whose message already says, in a user's words, what is
/// wrong (errors from the tar crate are worded by [`explain`]).
#[derive(Debug)]
pub struct Explained(pub String);

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Explained {}

pub fn explained(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, Explained(msg.into()))
}

/// One line for an error met while reading a layer tar.
pub fn explain(e: &io::Error) -> String {
    if let Some(x) = e.get_ref().and_then(|i| i.downcast_ref::<Explained>()) {
        return x.0.clone();
    }
    match e.to_string().as_str() {
        "failed to read entire block" => "truncated: the layer ends inside a tar header".into(),
        "archive header checksum mismatch" => {
            "invalid tar: a header with a bad checksum (corrupt data)".into()
        }
        m if e.kind() == io::ErrorKind::UnexpectedEof => format!("truncated: {m}"),
        m => format!("invalid tar: {}", m.replace('\n', " ")),
    }
}

/// An error about one entry: its path and the byte where its header
/// starts say where.
pub(super) fn at_entry(path: &str, pos: u64, e: io::Error) -> io::Error {
    explained(
        e.kind(),
        format!("{} (in entry {path}, header at byte {pos})", explain(&e)),
    )
}

/// An error reading the next header: name the entry it follows.
pub(super) fn after_entry(last: Option<(String, u64)>, e: io::Error) -> io::Error {
    let msg = explain(&e);
    match last {
        Some((path, pos)) => explained(
            e.kind(),
            format!("{msg} (after entry {path}, header at byte {pos})"),
        ),
        None => explained(e.kind(), format!("{msg} (at the start of the layer)")),
    }
}

pub(super) fn invalid(msg: String) -> io::Error {
    explained(io::ErrorKind::InvalidData, msg)
}

/// Read a layer tar (already decompressed) into a [`LayerIndex`].
pub fn index_tar<R: Read>(reader: R) -> io::Result<LayerIndex> {
    index_tar_within(reader, &AtomicU64::new(MAX_CAPTURED_IMAGE))
}

/// [`index_tar`], taking the small files it keeps out of `budget` (bytes
/// shared by all the layers of an image): past it, files are not kept.
pub fn index_tar_within<R: Read>(reader: R, budget: &AtomicU64) -> io::Result<LayerIndex> {
    // Seeking lets the tar crate skip padding without zeroing a buffer per
    // entry; `Skip` makes forward seeks cheap on any stream. The guard
    // below it refuses oversized long-name and PAX members.
    index_archive(
        tar::Archive::new(Skip::new(Guard::new(reader))),
        budget,
        Content::All,
    )
    .map(|(idx, _)| idx)
}

/// Index a layer tar whose headers are at hand but whose content is read
/// only on demand (the engine's tar-split over its layer directory): only
/// files [`wants_capture`] keeps are read; other regular files get
/// `hashed: false` and digest 0, for the caller to fill in. The reader
/// must seek forward without reading. Also gives each regular file's
/// entry and content offset ([`Pending`], in tar order; a path listed
/// twice: its last listing), to match the caller's records by position.
pub fn index_headers<R: Read + io::Seek>(
    reader: R,
    budget: &AtomicU64,
) -> io::Result<(LayerIndex, Vec<Pending>)> {
    index_archive(tar::Archive::new(reader), budget, Content::Headers)
}

/// Where [`index_tar_deferred`] sends the content of large files instead of
/// reading it in line.
pub struct Defer<'a> {
    /// Regular files of at least this many bytes are deferred.
    pub min: u64,
    /// The layer's length: content that would run past it is read in line,
    /// so that the error says what it always says.
    pub len: u64,
    /// Called with a deferred file's content offset in the layer and its
    /// size; returns the job id the caller will give its digest under.
    pub send: &'a mut dyn FnMut(u64, u64) -> u32,
    /// Called with the size of each regular file of at least `min` bytes
    /// hashed in line (kept for the analysis), which a deferred file of
    /// the same size may be a copy of.
    pub seen: &'a mut dyn FnMut(u64),
}

/// A file [`index_archive`] leaves to its caller: the entry (its index in
/// the layer), and the job id of a deferred file ([`index_tar_deferred`])
/// or the content offset of a file read for its headers only
/// ([`index_headers`]).
pub type Pending = (u32, u64);

/// Index a plain layer tar that can be read at any offset, leaving large
/// regular files unread: each goes to `defer.send`, to be hashed by whoever
/// has a core free, and comes back through [`finish_deferred`]. Headers and
/// small files are read in line, in place ([`super::scan`]), as
/// [`index_tar_within`] reads them. `open` gives the layer from its start:
/// a layer the scan does not read as the tar crate does is read again
/// through the tar crate.
pub fn index_tar_deferred<R: Read + io::Seek>(
    mut open: impl FnMut() -> R,
    budget: &AtomicU64,
    defer: Defer<'_>,
) -> io::Result<(LayerIndex, Vec<Pending>)> {
    index_tar_split(|_| open(), budget, defer, None, || None)
        .map(|(idx, pending, _)| (idx, pending))
}

/// Index a plain layer from `from` (where a member seems to start, see
/// [`boundary_after`]; `reader` is there) to its end, as
/// [`index_tar_deferred`] would; `None` where the scan does not read it
/// (the first part then reads on).
///
/// [`boundary_after`]: super::header::boundary_after
pub fn index_tail<'a, R: Read + io::Seek>(
    reader: R,
    from: u64,
    budget: &'a AtomicU64,
    defer: Defer<'_>,
) -> Option<Part<'a>> {
    let len = defer.len;
    let mut ix = Indexer::new(budget, Content::Defer(defer));
    match scan(reader, from, len, None, &mut ix) {
        Ok(_) => Some(ix.into_part()),
        Err(_) => {
            ix.give_up();
            None
        }
    }
}

/// [`index_tar_deferred`] on a layer split at `stop` (if any): the members
/// before it are indexed here, those after it by [`index_tail`] elsewhere,
/// which `tail()` waits for. If no member starts at `stop`, or the tail was not
/// read, or the two parts together keep more files than one layer may,
/// the members after it are read here too: the index is always the one
/// [`index_tar_deferred`] gives. `open(at)` gives the layer from `at`.
/// Also gives the [`Part::counted`] of the part used, if one was.
pub fn index_tar_split<'a, R: Read + io::Seek>(
    mut open: impl FnMut(u64) -> R,
    budget: &'a AtomicU64,
    defer: Defer<'_>,
    mut stop: Option<u64>,
    tail: impl FnOnce() -> Option<Part<'a>>,
) -> io::Result<(LayerIndex, Vec<Pending>, u64)> {
    let len = defer.len;
    let mut ix = Indexer::new(budget, Content::Defer(defer));
    let mut from = 0;
    let mut tail = Some(tail);
    let with = |(idx, pending), counted| (idx, pending, counted);
    loop {
        match scan(open(from), from, len, stop, &mut ix) {
            Ok(Reached::End) => return Ok(with(ix.finish(), 0)),
            Ok(Reached::Stop) => {}
            Err(Stop::Failed(e)) => return Err(e),
            Err(Stop::GaveUp) => {
                let guard = Guard::new(open(0));
                return index_archive(tar::Archive::new(guard), budget, ix.give_up())
                    .map(|r| with(r, 0));
            }
        }
        if let Some(part) = tail.take().and_then(|t| t()) {
            let counted = part.counted;
            if ix.absorb(part) {
                return Ok(with(ix.finish(), counted));
            }
        }
        // On from the stop, alone.
        from = stop.take().unwrap_or(len);
    }
}

/// Give the deferred files their digests (`digest` of each job id), and
/// the hardlinks to them theirs. A job not hashed (`None`: no other file
/// of the image has its size) leaves its file `hashed: false`, digest 0.
/// `grafted`: the image's tree, once the layer's nodes are re-homed there
/// ([`super::merge::Grafts`]).
pub fn finish_deferred(
    idx: &mut LayerIndex,
    pending: &[Pending],
    grafted: Option<&PathTree>,
    digest: impl Fn(u64) -> Option<u64>,
) {
    for &(entry, job) in pending {
        let e = &mut idx.entries[entry as usize];
        match digest(job) {
            Some(d) => e.digest = d,
            None => (e.digest, e.hashed) = (0, false),
        }
    }
    if !pending.is_empty() && idx.entries.iter().any(|e| e.kind == EntryKind::Hardlink) {
        let tree = grafted.unwrap_or(&idx.tree);
        let mut by_node = vec![NO_ENTRY; tree.len()];
        for (i, e) in idx.entries.iter().enumerate() {
            by_node[e.node as usize] = i as u32;
        }
        link_hardlinks(tree, &mut idx.entries, &by_node);
    }
}

fn index_archive<R: Read + io::Seek>(
    mut ar: tar::Archive<R>,
    budget: &AtomicU64,
    content: Content<'_>,
) -> io::Result<(LayerIndex, Vec<Pending>)> {
    let mut ix = Indexer::new(budget, content);
    for item in ar.entries_with_seek()? {
        let mut entry = match item {
            Ok(e) => e,
            Err(e) => return Err(ix.after_last(e)),
        };
        ix.add(&mut entry)?;
    }
    Ok(ix.finish())
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
                return Err(explained(
                    io::ErrorKind::UnexpectedEof,
                    "truncated: the layer ends inside the content of an entry",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn os_release_layer() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        let data = b"ID=debian\n";
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "etc/os-release", &data[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn an_index_cut_short_by_the_image_budget_says_so() {
        // What a layer keeps must not depend on the other layers of the
        // image without saying so: such an index is never cached.
        let tar = os_release_layer();
        let whole = index_tar_within(&tar[..], &AtomicU64::new(1 << 20)).unwrap();
        assert_eq!(whole.captured.len(), 1);
        assert!(!whole.incomplete);
        let cut = index_tar_within(&tar[..], &AtomicU64::new(3)).unwrap();
        assert!(cut.captured.is_empty());
        assert!(cut.incomplete);
    }

    #[test]
    fn paths_are_cleaned_as_go_cleans_them() {
        let cases = [
            ("a/b", Some("a/b")),
            (".hidden/x.tar.gz", Some(".hidden/x.tar.gz")),
            ("a/..b/...", Some("a/..b/...")),
            ("a//b", Some("a/b")),
            ("a/./b/.", Some("a/b")),
            ("a/b/../c", Some("a/c")),
            ("a/..", Some("")),
            ("", Some("")),
            ("..", None),
            ("a/../../b", None),
            // Each way an odd component can show: first, after a `/`, last.
            ("./a", Some("a")),
            ("/a/b", Some("a/b")),
            ("a/b/", Some("a/b")),
            ("a/b/..", Some("a")),
            ("a/.b/c", Some("a/.b/c")),
            ("a.", Some("a.")),
            (".", Some("")),
            ("/", Some("")),
        ];
        for (path, want) in cases {
            assert_eq!(clean(path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn names_with_control_characters_are_escaped_and_stay_distinct() {
        assert_eq!(decode_name(b"plain"), "plain");
        assert_eq!(decode_name(b"a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(decode_name(b"tab\there"), "tab\\x09here");
        assert_eq!(decode_name("c1\u{9b}x".as_bytes()), "c1\\x9bx");
        assert_eq!(decode_name(b"bad\xffbyte\n"), "bad\\xffbyte\\x0a");
        assert_eq!(decode_name(b"del\x7f"), "del\\x7f");
        assert_eq!(decode_name("é~".as_bytes()), "é~");
    }
}
