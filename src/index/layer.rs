//! One layer's tar stream turned into entries: the layer's own changes,
//! with whiteouts and opaque markers kept apart from the files they hide.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicU64, Ordering};

use std::hash::Hasher;

use twox_hash::XxHash3_64;

use super::guard::Guard;
pub use super::scan::boundary_after;
use super::scan::{Reached, Stop, scan};
use super::tree::{NodeId, PathTree, ROOT};

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

const WHITEOUT: &str = ".wh.";
const NO_ENTRY: u32 = u32::MAX;
/// Bytes and files of small files kept per layer for the analysis.
const MAX_CAPTURED: u64 = 64 << 20;
/// Bytes of small files kept for a whole image: without it, many layers of
/// compressed zeros named like package databases would each keep 64 MiB.
pub const MAX_CAPTURED_IMAGE: u64 = 256 << 20;
const MAX_CAPTURED_FILES: usize = 20_000;
/// Linux's PATH_MAX: no real image holds a longer path, and a deeper one
/// would only make every later pass slower.
const MAX_PATH: usize = 4096;
/// Linux's NAME_MAX: Docker cannot create a longer file name either.
const MAX_NAME: usize = 255;
const OPAQUE: &str = ".wh..wh..opq";

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
    match std::str::from_utf8(raw) {
        Ok(s) if !s.chars().any(char::is_control) => Cow::Borrowed(s),
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
    // Is any component empty, `.` or `..`? (A byte loop: this runs on
    // every member, and a split iterator costs several times more.)
    let b = path.as_bytes();
    let mut start = 0;
    let mut odd = false;
    for i in 0..=b.len() {
        if i == b.len() || b[i] == b'/' {
            odd |= matches!(&b[start..i], b"" | b"." | b"..");
            start = i + 1;
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
fn at_entry(path: &str, pos: u64, e: io::Error) -> io::Error {
    explained(
        e.kind(),
        format!("{} (in entry {path}, header at byte {pos})", explain(&e)),
    )
}

/// An error reading the next header: name the entry it follows.
fn after_entry(last: Option<(String, u64)>, e: io::Error) -> io::Error {
    let msg = explain(&e);
    match last {
        Some((path, pos)) => explained(
            e.kind(),
            format!("{msg} (after entry {path}, header at byte {pos})"),
        ),
        None => explained(e.kind(), format!("{msg} (at the start of the layer)")),
    }
}

fn invalid(msg: String) -> io::Error {
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

/// The members of a layer from an offset to its end, indexed on their own
/// ([`index_tail`]) while [`index_tar_split`] indexes those before it.
pub struct Part<'a> {
    idx: LayerIndex,
    pending: Vec<Pending>,
    captured_bytes: u64,
    budget: &'a AtomicU64,
    taken: u64,
    /// The caller's count of what reading it took (given back by
    /// [`index_tar_split`] if the part is used).
    pub counted: u64,
}

impl Part<'_> {
    /// Not used after all: give back what it took of the image's budget.
    pub fn discard(self) {
        self.budget.fetch_add(self.taken, Ordering::Relaxed);
    }
}

/// Index a plain layer from `from` (where a member seems to start, see
/// [`boundary_after`]; `reader` is there) to its end, as
/// [`index_tar_deferred`] would; `None` where the scan does not read it
/// (the first part then reads on).
///
/// [`boundary_after`]: super::scan::boundary_after
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
pub fn finish_deferred(
    idx: &mut LayerIndex,
    pending: &[Pending],
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
        let mut by_node = vec![NO_ENTRY; idx.tree.len()];
        for (i, e) in idx.entries.iter().enumerate() {
            by_node[e.node as usize] = i as u32;
        }
        link_hardlinks(idx, &by_node);
    }
}

/// What [`index_archive`] does with regular files' content.
pub(super) enum Content<'a> {
    /// Read and hash it all.
    All,
    /// Read only what [`wants_capture`] keeps; say where each file is.
    Headers,
    /// Hash small files; hand large ones to the caller.
    Defer(Defer<'a>),
}

/// One tar member as [`Indexer::add`] reads it, from whichever parser.
pub(super) trait Member {
    /// Where its header starts (after any extension members before it).
    fn header_pos(&self) -> u64;
    /// Where its content starts.
    fn file_pos(&self) -> u64;
    fn path_bytes(&self) -> Cow<'_, [u8]>;
    fn link_bytes(&self) -> Option<Cow<'_, [u8]>>;
    fn kind(&self) -> tar::EntryType;
    /// Mode, uid, gid and mtime, 0 where the header's field is unreadable.
    fn meta(&self) -> (u32, u32, u32, u64);
    /// The content's size.
    fn size(&self) -> u64;
    /// The 512-byte header block.
    fn header_bytes(&self) -> &[u8; 512];
    /// Read the content: its xxh3, and the bytes when `keep`.
    fn hash(&mut self, buf: &mut [u8], keep: bool) -> io::Result<(u64, Option<Box<[u8]>>)>;
}

impl<R: Read> Member for tar::Entry<'_, R> {
    fn header_pos(&self) -> u64 {
        self.raw_header_position()
    }
    fn file_pos(&self) -> u64 {
        self.raw_file_position()
    }
    fn path_bytes(&self) -> Cow<'_, [u8]> {
        tar::Entry::path_bytes(self)
    }
    fn link_bytes(&self) -> Option<Cow<'_, [u8]>> {
        self.link_name_bytes()
    }
    fn kind(&self) -> tar::EntryType {
        self.header().entry_type()
    }
    fn meta(&self) -> (u32, u32, u32, u64) {
        let h = self.header();
        (
            h.mode().unwrap_or(0),
            h.uid().unwrap_or(0) as u32,
            h.gid().unwrap_or(0) as u32,
            h.mtime().unwrap_or(0),
        )
    }
    fn size(&self) -> u64 {
        tar::Entry::size(self)
    }
    fn header_bytes(&self) -> &[u8; 512] {
        self.header().as_bytes()
    }
    fn hash(&mut self, buf: &mut [u8], keep: bool) -> io::Result<(u64, Option<Box<[u8]>>)> {
        let size = tar::Entry::size(self);
        hash_content(self, size, buf, keep)
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

/// A layer's index as its members arrive, in tar order.
pub(super) struct Indexer<'a, 'c> {
    idx: LayerIndex,
    pending: Vec<Pending>,
    budget: &'a AtomicU64,
    /// Bytes of `budget` this layer took.
    taken: u64,
    content: Content<'c>,
    /// node -> entry index within this layer (a path listed twice: last wins)
    by_node: Vec<u32>,
    captured_bytes: u64,
    buf: Vec<u8>,
    /// Tar entries arrive grouped by directory: remember the last parent.
    last_dir: (String, NodeId),
    /// The last entry's node and header position, for errors between entries.
    last: Option<(NodeId, u64)>,
    path_buf: String,
}

impl<'a, 'c> Indexer<'a, 'c> {
    pub(super) fn new(budget: &'a AtomicU64, content: Content<'c>) -> Self {
        Indexer {
            idx: LayerIndex {
                tree: PathTree::new(),
                ..Default::default()
            },
            pending: Vec::new(),
            budget,
            taken: 0,
            content,
            by_node: Vec::new(),
            captured_bytes: 0,
            buf: vec![0u8; 256 * 1024],
            last_dir: (String::new(), ROOT),
            last: None,
            path_buf: String::new(),
        }
    }

    /// An error reading the next header, said after the last entry.
    pub(super) fn after_last(&self, e: io::Error) -> io::Error {
        after_entry(self.last.map(|(n, p)| (self.idx.tree.path(n), p)), e)
    }

    /// What this indexer holds, to be absorbed by the indexer of the
    /// members before it.
    fn into_part(self) -> Part<'a> {
        let (idx, pending) = (self.idx, self.pending);
        Part {
            idx,
            pending,
            captured_bytes: self.captured_bytes,
            budget: self.budget,
            taken: self.taken,
            counted: 0,
        }
    }

    /// Take in the members after the last one added, indexed on their own:
    /// false (and the part discarded) if together they keep more files
    /// than one layer may, where reading them here would have kept fewer.
    fn absorb(&mut self, part: Part<'_>) -> bool {
        if self.captured_bytes + part.captured_bytes > MAX_CAPTURED
            || self.idx.captured.len() + part.idx.captured.len() > MAX_CAPTURED_FILES
        {
            part.discard();
            return false;
        }
        let Part {
            idx: other,
            pending,
            captured_bytes,
            taken,
            ..
        } = part;
        let map = self.idx.tree.graft(&other.tree);
        let mut at = Vec::with_capacity(other.entries.len());
        for mut e in other.entries {
            e.node = map[e.node as usize];
            at.push(self.place(e));
        }
        self.pending
            .extend(pending.into_iter().map(|(e, job)| (at[e as usize], job)));
        let idx = &mut self.idx;
        idx.whiteouts
            .extend(other.whiteouts.iter().map(|&n| map[n as usize]));
        idx.opaque
            .extend(other.opaque.iter().map(|&n| map[n as usize]));
        idx.incomplete |= other.incomplete;
        for (n, data) in other.captured {
            self.keep(map[n as usize], data);
        }
        self.captured_bytes += captured_bytes;
        self.taken += taken;
        true
    }

    /// Drop the index, giving back what it took of the image's budget;
    /// what to do with content is left for another try.
    pub(super) fn give_up(self) -> Content<'c> {
        self.budget.fetch_add(self.taken, Ordering::Relaxed);
        self.content
    }

    /// Index one member. Its content is read (through [`Member::hash`]) or
    /// not; the caller moves past whatever is left of it.
    pub(super) fn add(&mut self, entry: &mut impl Member) -> io::Result<()> {
        let pos = entry.header_pos();
        let raw = entry.path_bytes();
        if raw.len() > MAX_PATH {
            let shown = decode_name(&raw[..60]).into_owned();
            return Err(invalid(format!(
                "entry {shown}… (at byte {pos}): a path of {} bytes (longer than {MAX_PATH}, Linux's PATH_MAX)",
                raw.len()
            )));
        }
        if raw.len() > MAX_NAME
            && let Some(long) = raw.split(|&b| b == b'/').find(|c| c.len() > MAX_NAME)
        {
            let shown = decode_name(&raw[..raw.len().min(80)]).into_owned();
            return Err(invalid(format!(
                "entry {shown}… (at byte {pos}): a file name of {} bytes (longer than {MAX_NAME}, Linux's NAME_MAX)",
                long.len()
            )));
        }
        // The decoded path goes into a buffer kept from member to member.
        let mut path_string = std::mem::take(&mut self.path_buf);
        path_string.clear();
        path_string.push_str(&decode_name(&raw));
        drop(raw);
        let r = self.add_named(entry, &path_string, pos);
        self.path_buf = path_string;
        r
    }

    /// [`Self::add`], the member's path decoded.
    fn add_named(
        &mut self,
        entry: &mut impl Member,
        path_string: &str,
        pos: u64,
    ) -> io::Result<()> {
        let idx = &mut self.idx;
        let Some(path) = clean(normalize(path_string)) else {
            return Err(invalid(format!(
                "entry {path_string} (at byte {pos}): the path climbs out of the image root with `..` (Docker refuses it too)"
            )));
        };
        let path: &str = &path;
        if path.is_empty() {
            return Ok(()); // the root itself
        }
        let (dir, name) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path),
        };
        let parent = if dir == self.last_dir.0 {
            self.last_dir.1
        } else {
            let n = idx.tree.insert(dir);
            self.last_dir = (dir.to_string(), n);
            n
        };

        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            if name == OPAQUE {
                idx.opaque.push(parent);
                self.last = Some((parent, pos));
            } else {
                let node = idx.tree.child(parent, hidden);
                idx.whiteouts.push(node);
                self.last = Some((node, pos));
            }
            return Ok(());
        }

        let entry_type = entry.kind();
        let sparse = entry_type.is_gnu_sparse();
        let kind = match entry_type {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::Hardlink,
            tar::EntryType::Char => EntryKind::Char,
            tar::EntryType::Block => EntryKind::Block,
            tar::EntryType::Fifo => EntryKind::Fifo,
            // GNU sparse files and other rare kinds: count their content as a file.
            other if other.is_gnu_sparse() => EntryKind::File,
            _ => return Ok(()),
        };
        let (mode, uid, gid, mtime) = entry.meta();
        let link_bytes = match kind {
            EntryKind::Symlink | EntryKind::Hardlink => entry.link_bytes(),
            _ => None,
        };
        // A symlink's size is its target's length in bytes, as lstat says.
        let link_len = link_bytes.as_ref().map_or(0, |b| b.len() as u64);
        let link = match (kind, link_bytes) {
            (EntryKind::Hardlink, Some(target)) => {
                // A hardlink names another member: cleaned like one.
                let target = decode_name(&target);
                match clean(normalize(&target)) {
                    Some(t) => Some(t.into_owned().into_boxed_str()),
                    None => {
                        return Err(invalid(format!(
                            "entry {path} (at byte {pos}): a hardlink to {target}, which climbs out of the image root with `..` (Docker refuses it too)"
                        )));
                    }
                }
            }
            (_, Some(target)) => Some(decode_name(&target).into_owned().into_boxed_str()),
            _ => None,
        };
        let node = idx.tree.child(parent, name);
        self.last = Some((node, pos));
        let mut size = match kind {
            EntryKind::Symlink => link_len,
            _ => 0,
        };
        let mut digest = 0;
        let mut hashed = true;
        let mut left = None;
        if kind == EntryKind::File && sparse {
            // A GNU sparse file reads back with its holes filled with zeros:
            // a few hundred bytes can claim terabytes. Count its apparent
            // size, as lstat would, and name its content by its header
            // rather than hashing the zeros.
            size = entry.size();
            digest = XxHash3_64::oneshot(entry.header_bytes());
        } else if kind == EntryKind::File {
            size = entry.size();
            let wanted = wants_capture(path, size)
                && self.captured_bytes + size <= MAX_CAPTURED
                && idx.captured.len() < MAX_CAPTURED_FILES;
            let capture = wanted
                && self
                    .budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                        b.checked_sub(size)
                    })
                    .is_ok();
            if capture {
                self.taken += size;
            }
            idx.incomplete |= wanted && !capture;
            let at = entry.file_pos();
            let (d, data) = match &mut self.content {
                Content::Defer(d) if !capture && size >= d.min && at + size <= d.len => {
                    left = Some(u64::from((d.send)(at, size)));
                    (0, None)
                }
                Content::Headers if !capture => {
                    hashed = false;
                    (0, None)
                }
                content => {
                    if let Content::Defer(d) = content
                        && size >= d.min
                    {
                        (d.seen)(size);
                    }
                    entry
                        .hash(&mut self.buf, capture)
                        .map_err(|e| at_entry(path, pos, e))?
                }
            };
            digest = d;
            if matches!(self.content, Content::Headers) && size > 0 {
                left = Some(at);
            }
            if let Some(data) = data {
                self.captured_bytes += data.len() as u64;
                self.keep(node, data);
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
            hashed,
            crc: None,
            link,
            owns_inode: false,
        };
        let at = self.place(e);
        if let Some(key) = left {
            self.pending.push((at, key));
        }
        Ok(())
    }

    /// Add an entry, or replace the one listed before at its path; gives
    /// its index.
    fn place(&mut self, e: Entry) -> u32 {
        let node = e.node as usize;
        if self.by_node.len() <= node {
            self.by_node.resize(self.idx.tree.len(), NO_ENTRY);
        }
        let entries = &mut self.idx.entries;
        match self.by_node[node] {
            NO_ENTRY => {
                self.by_node[node] = entries.len() as u32;
                entries.push(e);
                entries.len() as u32 - 1
            }
            i => {
                entries[i as usize] = e;
                // The path listed again: what it was is not waited for.
                self.pending.retain(|&(p, _)| p != i);
                i
            }
        }
    }

    /// Keep a file's content for the analysis (the last listing's).
    fn keep(&mut self, node: NodeId, data: Box<[u8]>) {
        let captured = &mut self.idx.captured;
        match captured.iter_mut().find(|(n, _)| *n == node) {
            Some(slot) => slot.1 = data,
            None => captured.push((node, data)),
        }
    }

    /// The index, once every member is in.
    pub(super) fn finish(self) -> (LayerIndex, Vec<Pending>) {
        let Indexer {
            mut idx,
            pending,
            by_node,
            ..
        } = self;
        // A marker listed twice says nothing new, and the merge walks the
        // whole subtree once per marker: keep the first of each.
        for list in [&mut idx.opaque, &mut idx.whiteouts] {
            let mut seen = vec![false; idx.tree.len()];
            list.retain(|&n| !std::mem::replace(&mut seen[n as usize], true));
        }
        link_hardlinks(&mut idx, &by_node);
        idx.size = idx.entries.iter().map(Entry::disk_bytes).sum();
        // Every layer stays in memory until the merge: give back what
        // doubling reserved (up to half the vector; large blocks shrink in
        // place).
        idx.entries.shrink_to_fit();
        (idx, pending)
    }
}

/// Hardlinks share their target's content: give them its size and digest.
/// `by_node`: each node's entry in the layer.
fn link_hardlinks(idx: &mut LayerIndex, by_node: &[u32]) {
    for i in 0..idx.entries.len() {
        if idx.entries[i].kind != EntryKind::Hardlink {
            continue;
        }
        let target = idx.entries[i].link.as_deref().unwrap_or("");
        let found = idx
            .tree
            .lookup(target)
            .and_then(|n| by_node.get(n as usize))
            .filter(|&&j| j != NO_ENTRY)
            .map(|&j| &idx.entries[j as usize])
            .map(|t| (t.size, t.digest, t.hashed, t.crc));
        if let Some((size, digest, hashed, crc)) = found {
            let e = &mut idx.entries[i];
            (e.size, e.digest, e.hashed, e.crc) = (size, digest, hashed, crc);
        }
    }
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
        return Ok((XxHash3_64::oneshot(&data), Some(data.into_boxed_slice())));
    }
    if size as usize <= buf.len() {
        let n = size as usize;
        let mut got = 0;
        while got < n {
            match r.read(&mut buf[got..n]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        check_len(got as u64, size)?;
        return Ok((XxHash3_64::oneshot(&buf[..n]), None));
    }
    let mut h = XxHash3_64::new();
    let mut total = 0u64;
    loop {
        let n = r.read(buf)?;
        if n == 0 {
            break;
        }
        h.write(&buf[..n]);
        total += n as u64;
    }
    check_len(total, size)?;
    Ok((h.finish(), None))
}

fn check_len(got: u64, want: u64) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(explained(
            io::ErrorKind::UnexpectedEof,
            format!(
                "truncated: the layer ends {got} bytes into content whose header declares {want} bytes"
            ),
        ))
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
    }
}
