//! Which unread files must be hashed, and hashing them.
//!
//! A file read from storage starts with the CRC64 the engine recorded
//! (`Entry::hashed == false`, the CRC as its digest; every file read from
//! storage keeps its CRC in `Entry::crc`, hashed or not). It is hashed
//! only when another regular file of its image may have the same content:
//! one of the same size and CRC, or of the same size and no CRC (hashed
//! from an export: nothing to tell them apart by), or, by chance, one whose
//! xxh3 equals its CRC. Files of one size and different CRCs cannot be
//! equal. So among files of one size two digests are equal only when both
//! are xxh3 of the same content, and whoever compares digests within an
//! image (duplicates, rewrites, metadata-only changes) needs no more.

use std::collections::HashMap;

use rustc_hash::FxHashSet as HashSet;
use std::io;

use super::files::{LayerDir, hash_file};
use super::tarsplit::{FileRec, UNLISTED};
use crate::index::layer::{Entry, EntryKind, LayerIndex, clean, decode_name, normalize};
use crate::index::tree::{NodeId, PathTree};

/// The entry index of each of `files` in `idx`: as [`place`] matched them,
/// or else by name (an earlier listing of a path listed twice maps to its
/// last one's entry by name, to none by position).
///
/// [`place`]: super::tarsplit::place
fn entries_of(tree: &PathTree, entries: &[Entry], files: &[FileRec]) -> Vec<Option<u32>> {
    if files.iter().all(|f| f.entry.is_some()) {
        return files
            .iter()
            .map(|f| f.entry.filter(|&e| e != UNLISTED))
            .collect();
    }
    let mut by_node: HashMap<NodeId, u32> = HashMap::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        if e.kind == EntryKind::File {
            by_node.insert(e.node, i as u32);
        }
    }
    files
        .iter()
        .map(|f| {
            let name = decode_name(&f.raw);
            let path = clean(normalize(&name))?;
            let node = tree.lookup(&path)?;
            by_node.get(&node).copied()
        })
        .collect()
}

/// Give each unread file its CRC as digest ([`index_headers`] leaves 0),
/// and hardlinks their target's.
///
/// [`index_headers`]: crate::index::layer::index_headers
pub fn fill_crcs(idx: &mut LayerIndex, files: &[FileRec]) {
    for (f, e) in files.iter().zip(entries_of(&idx.tree, &idx.entries, files)) {
        if let Some(e) = e.map(|e| &mut idx.entries[e as usize])
            && e.size == f.size
        {
            e.crc = Some(f.crc);
            if !e.hashed {
                e.digest = f.crc;
            }
        }
    }
    relink(&idx.tree, &mut idx.entries);
}

/// Hardlinks carry their target's size and digest, as the indexer gives them.
fn relink(tree: &PathTree, entries: &mut [Entry]) {
    if !entries.iter().any(|e| e.kind == EntryKind::Hardlink) {
        return;
    }
    let by_node: HashMap<NodeId, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.node, i))
        .collect();
    for i in 0..entries.len() {
        if entries[i].kind != EntryKind::Hardlink {
            continue;
        }
        let target = entries[i].link.as_deref().unwrap_or("");
        let Some(&j) = tree.lookup(target).and_then(|n| by_node.get(&n)) else {
            continue;
        };
        let (size, digest, hashed, crc) = {
            let t = &entries[j];
            (t.size, t.digest, t.hashed, t.crc)
        };
        let e = &mut entries[i];
        (e.size, e.digest, e.hashed, e.crc) = (size, digest, hashed, crc);
    }
}

/// The files (layer, entry) among the entries of `layers` that must be
/// hashed; with `sizes`, among the files of those sizes only. After a
/// round of hashing, only the sizes hashed can need more: a file's CRC and
/// size do not change, and only new digests can meet an old one.
pub fn needed(layers: &[&[Entry]], sizes: Option<&HashSet<u64>>) -> Vec<(usize, u32)> {
    struct F {
        size: u64,
        crc: Option<u64>,
        hashed: bool,
        digest: u64,
        at: (usize, u32),
    }
    let mut all: Vec<F> = Vec::new();
    for (l, entries) in layers.iter().enumerate() {
        for (i, e) in entries.iter().enumerate() {
            if e.kind == EntryKind::File && e.size > 0 && sizes.is_none_or(|s| s.contains(&e.size))
            {
                all.push(F {
                    size: e.size,
                    crc: e.crc,
                    hashed: e.hashed,
                    digest: e.digest,
                    at: (l, i as u32),
                });
            }
        }
    }
    // By size first (a cheap key); a run of one size is ordered further
    // only if it may need hashing.
    all.sort_unstable_by_key(|f| f.size);
    let mut out = Vec::new();
    let unread = |run: &[F], out: &mut Vec<(usize, u32)>| {
        out.extend(run.iter().filter(|f| !f.hashed).map(|f| f.at));
    };
    for run in all.chunk_by_mut(|a, b| a.size == b.size) {
        if run.len() < 2 || run.iter().all(|f| f.hashed) {
            continue;
        }
        // A file of this size hashed without a CRC could equal any of them.
        if run.iter().any(|f| f.crc.is_none()) {
            unread(run, &mut out);
            continue;
        }
        run.sort_unstable_by_key(|f| f.crc);
        for same in run.chunk_by(|a, b| a.crc == b.crc) {
            if same.len() > 1 {
                unread(same, &mut out);
            }
        }
        // A CRC that happens to equal another file's xxh3 (about 2^-64).
        let mut digests: Vec<(u64, bool, (usize, u32))> =
            run.iter().map(|f| (f.digest, f.hashed, f.at)).collect();
        digests.sort_unstable();
        for same in digests.chunk_by(|a, b| a.0 == b.0) {
            if same.len() > 1 {
                out.extend(same.iter().filter(|f| !f.1).map(|f| f.2));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Hash the files `needs` names (layer, entry) of `layers` (each layer's
/// tree and entries), whose content is in `dirs` and whose names are in
/// `files` (by layer), on `threads` threads; then write their digests into
/// the entries. Gives the digests written, by (layer, entry).
pub fn hash_needed(
    layers: &mut [(&PathTree, &mut [Entry])],
    needs: &[(usize, u32)],
    dirs: &[&std::path::Path],
    files: &[&[FileRec]],
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<Vec<(usize, u32, u64)>> {
    if needs.is_empty() {
        return Ok(Vec::new());
    }
    // The tar-split record of each entry to hash.
    let mut want: Vec<(usize, u32, &FileRec)> = Vec::with_capacity(needs.len());
    let mut by_layer: HashMap<usize, HashMap<u32, usize>> = HashMap::new();
    for &(l, e) in needs {
        let map = by_layer.entry(l).or_insert_with(|| {
            let mut m = HashMap::new();
            let (tree, entries) = &layers[l];
            for (k, e) in entries_of(tree, entries, files[l]).into_iter().enumerate() {
                if let Some(e) = e {
                    // A path listed twice: the last record is the entry's.
                    m.insert(e, k);
                }
            }
            m
        });
        let rec = map.get(&e).map(|&k| &files[l][k]).ok_or_else(|| {
            io::Error::other(format!(
                "{}: {} is not in the layer's tar-split",
                dirs[l].display(),
                layers[l].0.path(layers[l].1[e as usize].node)
            ))
        })?;
        want.push((l, e, rec));
    }
    let mut open: Vec<Option<LayerDir>> = Vec::new();
    for (l, dir) in dirs.iter().enumerate() {
        open.push(if by_layer.contains_key(&l) {
            Some(LayerDir::open(dir)?)
        } else {
            None
        });
    }
    // Largest first, spread over the threads by a shared cursor.
    want.sort_by_key(|w| std::cmp::Reverse(w.2.size));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<io::Result<Vec<(usize, u32, u64)>>> = std::thread::scope(|s| {
        let work = || -> io::Result<Vec<(usize, u32, u64)>> {
            let mut got = Vec::new();
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(l, e, rec)) = want.get(k) else {
                    return Ok(got);
                };
                let Some(dir) = open[l].as_ref() else {
                    return Err(io::Error::other("a layer directory was not opened"));
                };
                let d = hash_file(dir, &rec.raw, rec.size, rec.crc)?;
                progress(rec.size);
                got.push((l, e, d));
            }
        };
        let handles: Vec<_> = (0..threads.max(1)).map(|_| s.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a hashing thread panicked")))
            })
            .collect()
    });
    let mut done = Vec::with_capacity(want.len());
    for r in results {
        done.extend(r?);
    }
    set_digests(layers, &done);
    Ok(done)
}

/// Write digests (layer, entry, xxh3) into the entries, and their hardlinks'.
pub fn set_digests(layers: &mut [(&PathTree, &mut [Entry])], done: &[(usize, u32, u64)]) {
    let mut touched = vec![false; layers.len()];
    for &(l, e, d) in done {
        if let Some(entry) = layers[l].1.get_mut(e as usize) {
            entry.digest = d;
            entry.hashed = true;
            touched[l] = true;
        }
    }
    for (l, t) in touched.into_iter().enumerate() {
        if t {
            let (tree, entries) = &mut layers[l];
            relink(tree, entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::layer::Entry;

    /// A file read from storage: CRC `crc`, hashed to `xxh3` if given.
    fn file(node: NodeId, size: u64, crc: u64, xxh3: Option<u64>) -> Entry {
        Entry {
            node,
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            size,
            digest: xxh3.unwrap_or(crc),
            hashed: xxh3.is_some(),
            crc: Some(crc),
            link: None,
            owns_inode: false,
        }
    }

    fn layer(entries: Vec<Entry>) -> LayerIndex {
        LayerIndex {
            entries,
            ..Default::default()
        }
    }

    #[test]
    fn only_files_that_may_be_equal_are_hashed() {
        let a = layer(vec![
            file(1, 10, 7, None), // a unique size
            file(2, 20, 1, None), // same size, other CRCs: cannot be equal
            file(3, 20, 2, None),
            file(4, 30, 5, None),     // same size and CRC: must be confirmed
            file(5, 40, 9, Some(33)), // hashed already, CRC 9
            file(6, 40, 8, None),     // same size as a hashed file, other CRC
        ]);
        let b = layer(vec![
            file(1, 30, 5, None),
            file(2, 40, 9, None), // the CRC of a hashed file: hashed too
        ]);
        let mut need = needed(&[&a.entries, &b.entries], None);
        need.sort();
        assert_eq!(need, vec![(0, 3), (1, 0), (1, 1)]);
        // Among some sizes only: the same files, of those sizes.
        let only: HashSet<u64> = [40].into_iter().collect();
        assert_eq!(needed(&[&a.entries, &b.entries], Some(&only)), vec![(1, 1)]);
    }

    #[test]
    fn without_a_crc_to_tell_them_apart_a_size_is_hashed_whole() {
        // A file hashed from an export has no CRC: every unread file of
        // its size may equal it.
        let mut exported = file(1, 20, 0, Some(5));
        exported.crc = None;
        let a = layer(vec![exported, file(2, 20, 1, None), file(3, 20, 2, None)]);
        assert_eq!(needed(&[&a.entries], None), vec![(0, 1), (0, 2)]);
    }

    #[test]
    fn a_crc_equal_to_an_xxh3_is_hashed() {
        let a = layer(vec![file(1, 20, 1, Some(7)), file(2, 20, 7, None)]);
        assert_eq!(needed(&[&a.entries], None), vec![(0, 1)]);
    }
}
