//! An engine image read from the engine's own storage (see
//! [`crate::source::storage`]): layers the cache holds are taken from it,
//! the others are indexed from their tar-split on all cores, then the files
//! that may be duplicates or rewrites are hashed from the layer directories.

use rustc_hash::FxHashSet as HashSet;
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest as _, Sha256};

use super::Inspected;
use crate::cache::ImageEntries;
use crate::error::Error;
use crate::image::{ConfigFile, Image};
use crate::index::layer::{Entry, LayerIndex, explain, index_tar_within};
use crate::index::tree::PathTree;
use crate::source::LoadOptions;
use crate::source::archive::{Plan, assemble};
use crate::source::progress::ImageProgress;
use crate::source::storage::settle::{hash_needed, needed, set_digests};
use crate::source::storage::tarsplit::{FileRec, Rebuilt};
use crate::source::storage::{ReadLayer, Stored, StoredLayer, budget, layer_files, read_layer};

/// Hashing passes before giving up: the second is needed only when a
/// fresh xxh3 equals another file's CRC (about 2^-64 a pair), so a third
/// means something is wrong.
const MAX_PASSES: usize = 4;

/// How many of an image's layers came from the cache.
pub struct Loaded {
    pub image: Image,
    pub cached: usize,
}

/// Load the image `info` describes from `stored`, its layers in storage.
pub fn load(
    stored: &Stored,
    info: &Inspected,
    source: &str,
    opts: &LoadOptions,
    progress: &ImageProgress,
) -> Result<Loaded, Error> {
    let fail = |i: usize, e: &io::Error| {
        Error::Engine(format!(
            "{source}: layer {} ({}): {}",
            i + 1,
            stored.layers[i].diff_id,
            explain(e)
        ))
    };
    let n = stored.layers.len();
    let cache = opts.cache.as_ref().filter(|_| !opts.verify);
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let ids: Vec<&str> = stored.layers.iter().map(|l| l.diff_id.as_str()).collect();
    let mut indexes: Vec<Option<LayerIndex>> = match cache {
        Some(c) => c.layers(&ids, threads),
        None => (0..n).map(|_| None).collect(),
    }
    .into_iter()
    .map(|i| i.filter(|i| !opts.hash_all || i.entries.iter().all(|e| e.hashed)))
    .collect();
    let cached = indexes.iter().filter(|i| i.is_some()).count();
    let todo: Vec<usize> = (0..n).filter(|&i| indexes[i].is_none()).collect();
    progress.set_expected(todo.iter().map(|&i| stored.layers[i].size).sum());
    progress.set_stage(crate::source::progress::Stage::Receiving);
    // Each layer counts its content bytes as their headers go by.
    let counters: Vec<Option<crate::source::Counter>> = (0..n)
        .map(|i| {
            todo.contains(&i)
                .then(|| progress.layer(i, stored.layers[i].size))
        })
        .collect();
    // Largest layers first, so that a big one does not start last.
    let mut order = todo.clone();
    order.sort_by_key(|&i| std::cmp::Reverse(stored.layers[i].size));
    let budget = budget();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, io::Result<ReadLayer>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.min(order.len()) {
            s.spawn(|| {
                loop {
                    let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let layer = &stored.layers[i];
                    let counter = counters[i].clone();
                    let tell = move |k: u64| {
                        if let Some(c) = &counter {
                            c.fetch_add(k, Ordering::Relaxed);
                        }
                    };
                    let r = if opts.verify || opts.hash_all {
                        whole(layer, &budget, &tell, opts.verify)
                    } else {
                        read_layer(layer, &budget, &tell)
                    };
                    let failed = r.is_err();
                    if let Ok(mut v) = results.lock() {
                        v.push((i, r));
                    }
                    if failed {
                        // The others finish their layer; nothing new starts.
                        next.store(order.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut files: Vec<Vec<FileRec>> = vec![Vec::new(); n];
    let mut fresh = vec![false; n];
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    for (i, r) in results {
        let read = r.map_err(|e| fail(i, &e))?;
        if let Some(want) = read.index.diff_id.as_ref()
            && *want != stored.layers[i].diff_id
        {
            return Err(Error::Engine(format!(
                "{source}: layer {} in storage does not match its diff_id (config says {}, content is {want})",
                i + 1,
                stored.layers[i].diff_id
            )));
        }
        indexes[i] = Some(read.index);
        files[i] = read.files;
        fresh[i] = true;
    }
    let mut indexes: Vec<LayerIndex> = indexes
        .into_iter()
        .enumerate()
        .map(|(i, x)| x.ok_or_else(|| fail(i, &io::Error::other("not read"))))
        .collect::<Result<_, _>>()?;

    // Hash what may be duplicates or rewrites, across all the layers, until
    // no digest of a size is a CRC equal to another digest (a hash can, by
    // chance, equal another file's CRC: then that file is hashed too).
    let mut touched = vec![false; n];
    let mut sizes: Option<HashSet<u64>> = None;
    for pass in 0.. {
        let entries: Vec<&[Entry]> = indexes.iter().map(|i| &i.entries[..]).collect();
        let needs = needed(&entries, sizes.as_ref());
        if needs.is_empty() {
            break;
        }
        if pass == MAX_PASSES {
            return Err(Error::Engine(format!(
                "{source}: file digests did not settle after {MAX_PASSES} passes"
            )));
        }
        for &(l, _) in &needs {
            touched[l] = true;
            if !fresh[l] && files[l].is_empty() {
                files[l] = layer_files(&stored.layers[l]).map_err(|e| fail(l, &e))?;
            }
        }
        {
            let dirs: Vec<&std::path::Path> =
                stored.layers.iter().map(|l| l.dir.as_path()).collect();
            let recs: Vec<&[FileRec]> = files.iter().map(Vec::as_slice).collect();
            let mut refs: Vec<(&PathTree, &mut [Entry])> = indexes
                .iter_mut()
                .map(|i| (&i.tree, &mut i.entries[..]))
                .collect();
            hash_needed(&mut refs, &needs, &dirs, &recs, threads, &|_| {})
                .map_err(|e| Error::Engine(format!("{source}: {}", explain(&e))))?;
        }
        sizes = Some(
            needs
                .iter()
                .map(|&(l, e)| indexes[l].entries[e as usize].size)
                .collect(),
        );
    }
    drop(files);

    if let Some(cache) = cache {
        let encoded: Vec<(usize, Vec<u8>)> = (0..n)
            .filter(|&i| (fresh[i] || touched[i]) && !indexes[i].incomplete)
            .filter_map(|i| crate::cache::encode_layer(&indexes[i]).map(|b| (i, b)))
            .collect();
        cache.store_image(&ImageEntries {
            image_id: &info.id,
            config_id: &info.id,
            config: &stored.config,
            layers: encoded
                .iter()
                .map(|(i, b)| (stored.layers[*i].diff_id.as_str(), &b[..]))
                .collect(),
        });
    }
    let config: ConfigFile = serde_json::from_slice(&stored.config)
        .map_err(|e| Error::Engine(format!("{source}: the image config is not valid JSON: {e}")))?;
    let plan = Plan {
        config,
        config_digest: info.id.clone(),
        tags: Vec::new(),
        layer_sizes: vec![None; n],
        layers: stored.layers.iter().map(|l| l.diff_id.clone()).collect(),
    };
    let image = assemble(plan, indexes, Default::default(), source, opts)
        .map_err(|e| Error::input(source, e))?;
    Ok(Loaded { image, cached })
}

/// The layer's whole tar rebuilt and read, every file hashed (xxh3), as an
/// export would be; with `verify`, its sha256 checked against the diff_id.
fn whole(
    layer: &StoredLayer,
    budget: &std::sync::atomic::AtomicU64,
    progress: &(dyn Fn(u64) + Sync),
    verify: bool,
) -> io::Result<ReadLayer> {
    struct Hashing<R> {
        inner: R,
        sha: Option<Sha256>,
    }
    impl<R: Read> Read for Hashing<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            if let Some(sha) = &mut self.sha {
                sha.update(&buf[..n]);
            }
            Ok(n)
        }
    }
    if layer.walk {
        if verify {
            return Err(crate::index::layer::explained(
                io::ErrorKind::Unsupported,
                format!(
                    "--verify: the layer has no readable tar-split ({}), so its tar cannot be rebuilt byte for byte to check its diff_id; use --via export",
                    layer.tar_split.display()
                ),
            ));
        }
        return crate::source::storage::walked(layer, budget, progress);
    }
    let dir = crate::source::storage::files::LayerDir::open(&layer.dir)?;
    let (path, lines) = crate::source::storage::tar_split(layer)?;
    let shown = path.display().to_string();
    let lines = crate::source::storage::tarsplit::Lines::new(lines, shown.clone(), Some(progress));
    let rebuilt = Rebuilt::new(lines, &dir, shown);
    let mut reader = Hashing {
        inner: rebuilt,
        sha: verify.then(Sha256::new),
    };
    let mut index = index_tar_within(&mut reader, budget)?;
    io::copy(&mut reader, &mut io::sink())?;
    let (tar_bytes, files) = reader.inner.finish()?;
    index.tar_bytes = tar_bytes;
    index.diff_id = reader
        .sha
        .take()
        .map(|sha| format!("sha256:{}", crate::source::blob::hex(&sha.finalize())));
    crate::source::storage::settle::fill_crcs(&mut index, &files);
    Ok(ReadLayer { index, files })
}

/// Images loaded together (a comparison) compare files across images: a
/// file unread in one and hashed, or of the same CRC, in the other must be
/// hashed, as within one image ([`needed`] over the layers of all of them,
/// each distinct layer once). `stored` says where each image's layers are
/// (None for an image read otherwise, whose files are all hashed).
pub fn settle_across(
    images: &mut [Image],
    stored: &[Option<&Stored>],
    threads: usize,
) -> Result<(), Error> {
    // Every (image, layer), and the first of each diff_id.
    let mut refs: Vec<(&PathTree, &mut [Entry])> = Vec::new();
    let mut at: Vec<(usize, usize, &str)> = Vec::new();
    for (i, img) in images.iter_mut().enumerate() {
        let tree = &img.tree;
        for (l, layer) in img.layers.iter_mut().enumerate() {
            at.push((i, l, layer.diff_id.as_str()));
            refs.push((tree, &mut layer.entries[..]));
        }
    }
    let mut seen = std::collections::HashSet::new();
    let firsts: Vec<usize> = (0..at.len()).filter(|&k| seen.insert(at[k].2)).collect();
    let mut sizes: Option<HashSet<u64>> = None;
    for _ in 0..MAX_PASSES {
        let entries: Vec<&[Entry]> = firsts.iter().map(|&k| &*refs[k].1).collect();
        let needs = needed(&entries, sizes.as_ref());
        sizes = Some(
            needs
                .iter()
                .map(|&(u, e)| entries[u][e as usize].size)
                .collect(),
        );
        if needs.is_empty() {
            return Ok(());
        }
        let fail = |k: usize, why: String| {
            Error::Engine(format!(
                "image {}, layer {} ({}): {why}",
                at[k].0 + 1,
                at[k].1 + 1,
                at[k].2
            ))
        };
        let mut layers: Vec<&StoredLayer> = Vec::new();
        for &k in &firsts {
            let (i, l, _) = at[k];
            let s = stored[i]
                .and_then(|s| s.layers.get(l))
                .ok_or_else(|| fail(k, "unread files but no storage to read them from".into()))?;
            layers.push(s);
        }
        let mut files: Vec<Vec<FileRec>> = vec![Vec::new(); firsts.len()];
        for &(u, _) in &needs {
            if files[u].is_empty() {
                files[u] = layer_files(layers[u]).map_err(|e| fail(firsts[u], explain(&e)))?;
            }
        }
        let dirs: Vec<&std::path::Path> = layers.iter().map(|l| l.dir.as_path()).collect();
        let recs: Vec<&[FileRec]> = files.iter().map(Vec::as_slice).collect();
        // Hash through the first use of each layer, then give every use the digests.
        let done = {
            let mut first_refs: Vec<(&PathTree, &mut [Entry])> = Vec::new();
            let mut rest = refs.iter_mut().enumerate();
            for &k in &firsts {
                for (j, r) in rest.by_ref() {
                    if j == k {
                        first_refs.push((r.0, &mut *r.1));
                        break;
                    }
                }
            }
            hash_needed(&mut first_refs, &needs, &dirs, &recs, threads, &|_| {})
                .map_err(|e| Error::Engine(explain(&e)))?
        };
        for (u, &k) in firsts.iter().enumerate() {
            let mine: Vec<(usize, u32, u64)> = done
                .iter()
                .filter(|d| d.0 == u)
                .map(|&(_, e, d)| (0, e, d))
                .collect();
            if mine.is_empty() {
                continue;
            }
            for j in (0..at.len()).filter(|&j| j != k && at[j].2 == at[k].2) {
                let (tree, entries) = &mut refs[j];
                set_digests(&mut [(*tree, &mut **entries)], &mine);
            }
        }
    }
    Err(Error::Engine(format!(
        "file digests did not settle after {MAX_PASSES} passes"
    )))
}
