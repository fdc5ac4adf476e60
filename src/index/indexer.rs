//! The indexing rule every parser of a layer tar feeds: what a member
//! becomes (an entry, a marker, kept content), a path listed twice, the
//! limits on kept files, hardlinks; and a layer read in parts put back
//! together ([`Part`]).

use std::borrow::Cow;
use std::hash::Hasher;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};

use twox_hash::XxHash3_64;

use super::layer::{
    Defer, Entry, EntryKind, LayerIndex, MAX_CAPTURED, MAX_CAPTURED_FILES, MAX_NAME, MAX_PATH,
    NO_ENTRY, OPAQUE, Pending, WHITEOUT, after_entry, at_entry, clean, decode_name, explained,
    invalid, normalize, wants_capture,
};
use super::tree::{NodeId, PathTree, ROOT};

/// The members of a layer from an offset to its end, indexed on their own
/// ([`index_tail`]) while [`index_tar_split`] indexes those before it.
///
/// [`index_tail`]: super::layer::index_tail
/// [`index_tar_split`]: super::layer::index_tar_split
pub struct Part<'a> {
    idx: LayerIndex,
    pending: Vec<Pending>,
    captured_bytes: u64,
    budget: &'a AtomicU64,
    taken: u64,
    /// The caller's count of what reading it took (given back by
    /// [`index_tar_split`](super::layer::index_tar_split) if the part is used).
    pub counted: u64,
}

impl Part<'_> {
    /// Not used after all: give back what it took of the image's budget.
    pub fn discard(self) {
        self.budget.fetch_add(self.taken, Ordering::Relaxed);
    }
}

/// What the indexer does with regular files' content.
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
    pub(super) fn into_part(self) -> Part<'a> {
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
    pub(super) fn absorb(&mut self, part: Part<'_>) -> bool {
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
        let (dir, name) = match memchr::memrchr(b'/', path.as_bytes()) {
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
        link_hardlinks(&idx.tree, &mut idx.entries, &by_node);
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
pub(super) fn link_hardlinks(tree: &PathTree, entries: &mut [Entry], by_node: &[u32]) {
    for i in 0..entries.len() {
        if entries[i].kind != EntryKind::Hardlink {
            continue;
        }
        let target = entries[i].link.as_deref().unwrap_or("");
        let found = tree
            .lookup(target)
            .and_then(|n| by_node.get(n as usize))
            .filter(|&&j| j != NO_ENTRY)
            .map(|&j| &entries[j as usize])
            .map(|t| (t.size, t.digest, t.hashed, t.crc));
        if let Some((size, digest, hashed, crc)) = found {
            let e = &mut entries[i];
            (e.size, e.digest, e.hashed, e.crc) = (size, digest, hashed, crc);
        }
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
