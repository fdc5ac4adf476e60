//! Indexing the layers of a seekable source on every core.
//!
//! Layers go to threads largest first. A plain (uncompressed) layer is read
//! for its headers and small files only: the content of each large file
//! becomes a job, hashed by positioned reads on whichever thread is free,
//! so that one big layer keeps every core busy rather than one. A job
//! waits until another file of the image has its size: a file whose size
//! no other file shares cannot be a copy, and is never read (it stays
//! `hashed: false`, see [`Entry::hashed`]), unless the images are to be
//! compared (`LoadOptions::hash_all`). A compressed layer, or any layer
//! when its diff_id is verified (which needs every byte in order), is read
//! whole, in line.
//!
//! [`Entry::hashed`]: crate::index::layer::Entry::hashed

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use std::hash::Hasher;

use twox_hash::XxHash3_64;

use super::super::blob::{Compression, detect, index_blob};
use super::super::{Counter, LoadOptions};
use super::at::{At, Tally};
use super::queue::{Met, Queue};
use crate::index::layer::{
    Defer, LayerIndex, Part, Pending, boundary_after, explain, finish_deferred, index_tail,
    index_tar_deferred, index_tar_split,
};
use crate::index::merge::{Grafts, rehome_index};

/// Files at least this large are hashed as jobs of their own: below it,
/// reading past them costs less than seeking.
const DEFER_MIN: u64 = 128 * 1024;
/// Bytes read at a time by a job.
const CHUNK: usize = 256 * 1024;
/// Plain layers at least this large are read in two parts at once, split
/// where a member starts near the middle: one layer of many small files
/// (a `node_modules`, a squashed image) would keep one core busy alone.
const SPLIT_MIN: u64 = if cfg!(test) { 64 << 10 } else { 32 << 20 };
/// How far past the middle a member start is looked for.
const SPLIT_SEARCH: u64 = 4 << 20;

/// What a thread does with a layer.
enum Task {
    Whole(usize),
    /// The members before the offset (and the whole layer, if the later
    /// part cannot be used).
    Head(usize, u64),
    /// The members from the offset on.
    Tail(usize, u64),
}

/// The later part of a split layer, handed from its thread to the head's.
#[derive(Default)]
struct Tail<'a> {
    state: Mutex<TailState<'a>>,
    done: Condvar,
}

#[derive(Default)]
enum TailState<'a> {
    #[default]
    Reading,
    Read(Option<Box<Part<'a>>>),
    /// Taken by the head, or not wanted.
    Gone,
}

impl<'a> Tail<'a> {
    /// The part is read (`None`: it could not be); once.
    fn put(&self, part: Option<Part<'a>>) {
        let Ok(mut s) = self.state.lock() else { return };
        match *s {
            TailState::Reading => *s = TailState::Read(part.map(Box::new)),
            _ => {
                if let Some(p) = part {
                    p.discard();
                }
            }
        }
        self.done.notify_all();
    }

    /// Wait for the part.
    fn take(&self) -> Option<Part<'a>> {
        let mut s = self.state.lock().ok()?;
        while matches!(*s, TailState::Reading) {
            s = self.done.wait(s).ok()?;
        }
        match std::mem::replace(&mut *s, TailState::Gone) {
            TailState::Read(p) => p.map(|p| *p),
            _ => None,
        }
    }

    /// The head is done: a part not taken is not wanted.
    fn abandon(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        if let TailState::Read(Some(p)) = std::mem::replace(&mut *s, TailState::Gone) {
            p.discard();
        }
    }
}

/// A layer as a byte range of an open file.
pub struct Span {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

/// One large file to hash.
pub(super) struct Job {
    id: u32,
    layer: usize,
    file: Arc<File>,
    offset: u64,
    pub(super) size: u64,
    /// Bytes of it to count as read (the reader counted the rest).
    count: u64,
}

/// Index layers on as many threads as the machine has cores; `sizes` are
/// the layers' byte counts, `open(i)` gets layer `i` ready and `label(i)`
/// names it in errors. The first error (by layer order) wins. Each layer
/// is grafted into the image's tree as soon as it and every layer below it
/// are read, by a thread that would otherwise wait or hash: the grafts
/// given back hold the layers done so (their nodes are the image's).
pub fn index_parallel<O, L>(
    sizes: &[u64],
    opts: &LoadOptions,
    budget: &AtomicU64,
    open: O,
    label: L,
) -> Result<(Vec<LayerIndex>, Grafts), String>
where
    O: Fn(usize) -> Result<Span, String> + Sync,
    L: Fn(usize) -> String + Sync,
{
    let n = sizes.len();
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    type Slot = Mutex<Option<Result<(LayerIndex, Vec<Pending>), String>>>;
    let results: Vec<Slot> = (0..n).map(|_| Mutex::new(None)).collect();
    let counters: Vec<Option<Counter>> = (0..n).map(|i| opts.layer_counter(i, sizes[i])).collect();

    // What each layer is (its span; plain or not), and the tasks, largest
    // layers first; a large plain layer in two parts, the later part first.
    let mut layers: Vec<Option<(Span, bool)>> = Vec::with_capacity(n);
    for (i, slot) in results.iter().enumerate() {
        let kind = open(i).and_then(|span| {
            let mut head = [0u8; 512];
            let got = span
                .file
                .read_at(&mut head[..span.len.min(512) as usize], span.offset)
                .map_err(|e| format!("{}: {e}", label(i)))?;
            let plain = !opts.verify && detect(&head[..got]) == Ok(Compression::None);
            Ok((span, plain))
        });
        match kind {
            Ok(k) => layers.push(Some(k)),
            Err(e) => {
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(Err(e));
                }
                layers.push(None);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| layers[i].is_some()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let mut tasks = Vec::with_capacity(order.len());
    for i in order {
        let split = match &layers[i] {
            Some((span, true)) if threads > 1 && span.len >= SPLIT_MIN => {
                let read_at = |buf: &mut [u8], at: u64| {
                    let want = buf.len().min(span.len.saturating_sub(at) as usize);
                    span.file.read_at(&mut buf[..want], span.offset + at)
                };
                boundary_after(&read_at, span.len / 2, SPLIT_SEARCH, span.len).filter(|&b| b > 0)
            }
            _ => None,
        };
        match split {
            Some(at) => tasks.extend([Task::Tail(i, at), Task::Head(i, at)]),
            None => tasks.push(Task::Whole(i)),
        }
    }
    let tails: Vec<Tail> = (0..n).map(|_| Tail::default()).collect();

    let digests: Mutex<Vec<(u32, Result<u64, String>)>> = Mutex::new(Vec::new());
    let queue = Mutex::new(Queue {
        jobs: Vec::new(),
        reading: tasks.len(),
        sizes: HashMap::new(),
    });
    let ready = Condvar::new();
    let jobs = AtomicU64::new(0);
    let next = AtomicUsize::new(0);
    // The next layers in order, if they are read and no other thread is
    // grafting (that one goes on to them).
    let grafts = Mutex::new(Grafts::default());
    let graft_ready = || {
        let Ok(mut g) = grafts.try_lock() else { return };
        while let Some(slot) = results.get(g.done()) {
            let Ok(mut slot) = slot.lock() else { break };
            let Some(Ok((idx, _))) = slot.as_mut() else {
                break;
            };
            let Some(map) = g.add(idx) else { continue };
            // The layers below are grafted and read: their slots are no
            // longer written.
            for below in &results[..g.done() - 1] {
                if let Ok(mut b) = below.lock()
                    && let Some(Ok((idx, _))) = b.as_mut()
                {
                    rehome_index(&map, idx);
                }
            }
        }
    };
    let run = |task: &Task| {
        let (i, plain) = match task {
            Task::Whole(i) | Task::Head(i, _) | Task::Tail(i, _) => (*i, layers[*i].as_ref()),
        };
        let Some((span, plain)) = plain else { return };
        let fail = |e: String| format!("{}: {e}", label(i));
        let tally = Tally::default();
        // A tail counts what it reads on its own, for the head to add if
        // it uses the tail (else the head reads those bytes again).
        let is_tail = matches!(task, Task::Tail(..));
        let own = Counter::default();
        let counter = if is_tail {
            Some(&own)
        } else {
            counters[i].as_ref()
        };
        let reader = |from: u64| At::new(span, counter, &tally, from);
        let mut send = |offset: u64, size: u64| {
            let id = jobs.fetch_add(1, Ordering::Relaxed) as u32;
            // What the reader has not read of this content is counted by
            // the job, not by the seek past it.
            let read = tally
                .counted_to
                .load(Ordering::Relaxed)
                .clamp(offset, offset + size);
            let mut count = offset + size - read;
            tally.uncounted.store(count, Ordering::Relaxed);
            if is_tail {
                own.fetch_add(count, Ordering::Relaxed);
                count = 0;
            }
            let job = Job {
                id,
                layer: i,
                file: span.file.clone(),
                offset: span.offset + offset,
                size,
                count,
            };
            if queue.lock().is_ok_and(|mut q| q.offer(job, !opts.hash_all)) {
                ready.notify_all();
            }
            id
        };
        let mut seen = |size: u64| {
            if !opts.hash_all && queue.lock().is_ok_and(|mut q| q.read(size)) {
                ready.notify_one();
            }
        };
        let defer = Defer {
            min: DEFER_MIN,
            len: span.len,
            send: &mut send,
            seen: &mut seen,
        };
        let r = match *task {
            _ if !plain => index_blob(reader(0), opts.verify, budget)
                .map(|idx| (idx, Vec::new()))
                .map_err(fail),
            Task::Tail(_, at) => {
                // Said on drop too, so that a panic cannot leave the head
                // waiting forever.
                let _unread = Unread(&tails[i]);
                let part = index_tail(reader(at), at, budget, defer).map(|mut p| {
                    p.counted = own.load(Ordering::Relaxed);
                    p
                });
                tails[i].put(part);
                return;
            }
            Task::Head(_, at) => {
                let r = index_tar_split(reader, budget, defer, Some(at), || tails[i].take());
                tails[i].abandon();
                r.map(|(idx, pending, counted)| {
                    if let Some(c) = &counters[i] {
                        c.fetch_add(counted, Ordering::Relaxed);
                    }
                    (idx, pending)
                })
                .map_err(|e| fail(explain(&e)))
            }
            Task::Whole(_) => {
                index_tar_deferred(|| reader(0), budget, defer).map_err(|e| fail(explain(&e)))
            }
        };
        // A plain layer's tar is its span (a compressed one's is counted
        // as it is inflated).
        let r = r.map(|(mut idx, pending)| {
            if *plain {
                idx.tar_bytes = span.len;
            }
            (idx, pending)
        });
        if let Ok(mut slot) = results[i].lock() {
            *slot = Some(r);
        }
    };

    let work = || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            graft_ready();
            let k = next.fetch_add(1, Ordering::Relaxed);
            if let Some(task) = tasks.get(k) {
                // Said on drop, so that a panic cannot leave the others
                // waiting for jobs forever.
                let _read = Finished(&queue, &ready);
                run(task);
                continue;
            }
            let job = {
                let Ok(mut q) = queue.lock() else { break };
                loop {
                    if let Some(j) = q.jobs.pop() {
                        break Some(j);
                    }
                    if q.reading == 0 {
                        break None;
                    }
                    q = match ready.wait(q) {
                        Ok(q) => q,
                        Err(_) => return,
                    };
                }
            };
            let Some(job) = job else { break };
            let d = hash_at(&job, &mut buf, counters[job.layer].as_ref());
            if let Ok(mut all) = digests.lock() {
                all.push((job.id, d.map_err(|e| format!("{}: {e}", label(job.layer)))));
            }
        }
    };
    // This thread works too: the layers it indexes are allocated where the
    // merge (on this thread) allocates, so the memory they free as they are
    // merged is reused instead of lingering in another thread's arena.
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    let mut digest_of: Vec<Option<Result<u64, String>>> =
        (0..jobs.into_inner()).map(|_| None).collect();
    for (id, d) in digests.into_inner().unwrap_or_default() {
        digest_of[id as usize] = Some(d);
    }
    // The jobs still parked are files of a size no other file has: never
    // read, but their bytes are done with.
    let mut unread = vec![false; digest_of.len()];
    for met in queue
        .into_inner()
        .map(|q| q.sizes)
        .unwrap_or_default()
        .into_values()
    {
        if let Met::Parked(job) = met {
            unread[job.id as usize] = true;
            if let Some(c) = &counters[job.layer] {
                c.fetch_add(job.count, Ordering::Relaxed);
            }
        }
    }
    let lost = || "indexing thread failed".to_string();
    let grafts = grafts.into_inner().map_err(|_| lost())?;
    let mut out = Vec::with_capacity(n);
    for (i, slot) in results.into_iter().enumerate() {
        let (mut idx, pending) = slot
            .into_inner()
            .ok()
            .flatten()
            .unwrap_or_else(|| Err(lost()))?;
        for &(_, job) in &pending {
            match &digest_of[job as usize] {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.clone()),
                None if unread[job as usize] => {}
                None => return Err(lost()),
            }
        }
        let grafted = (i < grafts.done()).then(|| grafts.tree());
        finish_deferred(&mut idx, &pending, grafted, |job| {
            match digest_of[job as usize] {
                Some(Ok(d)) => Some(d),
                _ => None,
            }
        });
        out.push(idx);
    }
    Ok((out, grafts))
}

/// A tail not read (dropped before it was put).
struct Unread<'t, 'a>(&'t Tail<'a>);

impl Drop for Unread<'_, '_> {
    fn drop(&mut self) {
        self.0.put(None);
    }
}

/// One layer is read: no more jobs will come from it.
struct Finished<'a>(&'a Mutex<Queue>, &'a Condvar);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        if let Ok(mut q) = self.0.lock() {
            q.reading -= 1;
        }
        self.1.notify_all();
    }
}

/// Hash one deferred file with positioned reads.
fn hash_at(job: &Job, buf: &mut [u8], counter: Option<&Counter>) -> Result<u64, String> {
    let mut h = XxHash3_64::new();
    let mut uncounted = job.count;
    let mut at = job.offset;
    let end = job.offset + job.size;
    while at < end {
        let want = buf.len().min((end - at) as usize);
        let n = job
            .file
            .read_at(&mut buf[..want], at)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "the file ended {} bytes into content of {} bytes (changed while being read?)",
                at - job.offset,
                job.size
            ));
        }
        h.write(&buf[..n]);
        at += n as u64;
        if let Some(c) = counter {
            let k = uncounted.min(n as u64);
            uncounted -= k;
            c.fetch_add(k, Ordering::Relaxed);
        }
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::layer::{LayerIndex, index_tar};

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, data).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        h.set_cksum();
        b.append_link(&mut h, path, target).unwrap();
    }

    /// A layer with large files (deferred), small ones, a hardlink to a
    /// large one and a large path replaced later in the same layer.
    fn layer() -> Vec<u8> {
        let big = |seed: u8, n: usize| (0..n).map(|i| (i as u8) ^ seed).collect::<Vec<u8>>();
        let mut b = tar::Builder::new(Vec::new());
        file(&mut b, "etc/os-release", b"ID=debian\n");
        file(&mut b, "usr/bin/big", &big(1, 700_000));
        link(&mut b, "usr/bin/big-link", "usr/bin/big");
        file(&mut b, "usr/bin/small", &big(2, 1000));
        file(&mut b, "usr/bin/again", &big(3, 300_000));
        file(&mut b, "usr/lib/copy", &big(1, 700_000));
        file(&mut b, "usr/bin/again", b"now small");
        // A long name (a GNU `L` member) and a PAX path before large files.
        let long = format!("opt/{}/big", "deep/".repeat(40));
        file(&mut b, &long, &big(5, 200_000));
        b.append_pax_extensions([("path", &b"opt/pax-named-file"[..])])
            .unwrap();
        file(&mut b, "opt/placeholder", &big(6, 400_000));
        file(&mut b, "usr/bin/last", &big(4, 2_000_000));
        // A package database kept for the analysis (read in line) and its
        // copy (deferred): one size, so the copy is hashed.
        file(&mut b, "var/lib/dpkg/status", &big(7, 150_000));
        file(&mut b, "var/lib/dpkg/status-old", &big(7, 150_000));
        b.into_inner().unwrap()
    }

    fn read(bytes: &[u8], threads: usize) -> Result<LayerIndex, String> {
        read_counted(bytes, threads, &Counter::default(), true)
    }

    /// Index `bytes` as a layer; with `hash_all`, files of a size no other
    /// file has are hashed too.
    fn read_counted(
        bytes: &[u8],
        threads: usize,
        counter: &Counter,
        hash_all: bool,
    ) -> Result<LayerIndex, String> {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        let file = Arc::new(f);
        let opts = LoadOptions {
            threads: Some(threads),
            progress: Some(counter.clone()),
            hash_all,
            ..Default::default()
        };
        let budget = AtomicU64::new(u64::MAX);
        let len = bytes.len() as u64;
        index_parallel(
            &[len],
            &opts,
            &budget,
            |_| {
                Ok(Span {
                    file: file.clone(),
                    offset: 0,
                    len,
                })
            },
            |i| format!("layer {}", i + 1),
        )
        .map(|(mut v, grafts)| {
            let mut idx = v.remove(0);
            // The one layer is grafted: its tree is the image's.
            if grafts.done() == 1 {
                idx.tree = grafts.tree().clone();
            }
            idx
        })
    }

    fn facts(idx: &LayerIndex) -> Vec<(String, u64, u64, bool)> {
        idx.entries
            .iter()
            .map(|e| (idx.tree.path(e.node), e.size, e.digest, e.hashed))
            .collect()
    }

    #[test]
    fn deferred_hashing_gives_the_index_read_in_line() {
        let tar = layer();
        let inline = index_tar(&tar[..]).unwrap();
        for threads in [1, 2, 4] {
            let counter = Counter::default();
            let idx = read_counted(&tar, threads, &counter, true).unwrap();
            // Every byte counted once, whether read, skipped or hashed by a job.
            assert_eq!(counter.load(Ordering::Relaxed), tar.len() as u64);
            assert_eq!(facts(&idx), facts(&inline), "{threads} threads");
            assert_eq!(idx.size, inline.size);
            assert_eq!(idx.tar_bytes, tar.len() as u64);
            assert_eq!(idx.captured, inline.captured);
        }
        // Not compared with another image: a large file whose size no other
        // file has is never read. Everything else is as read in line.
        let unique = ["usr/bin/last", "opt/pax-named-file", "deep/big"];
        for threads in [1, 2] {
            let counter = Counter::default();
            let idx = read_counted(&tar, threads, &counter, false).unwrap();
            assert_eq!(counter.load(Ordering::Relaxed), tar.len() as u64);
            let want: Vec<_> = facts(&inline)
                .into_iter()
                .map(|(p, size, digest, hashed)| {
                    if unique.iter().any(|u| p.ends_with(u)) {
                        (p, size, 0, false)
                    } else {
                        (p, size, digest, hashed)
                    }
                })
                .collect();
            assert_eq!(facts(&idx), want, "{threads} threads");
            assert_eq!(idx.size, inline.size);
        }
        // The large files really were left to jobs: seven of them (the one
        // whose path is listed again, small, is sent but not waited for).
        let mut sent = Vec::new();
        let mut send = |offset: u64, size: u64| {
            sent.push((offset, size));
            sent.len() as u32 - 1
        };
        let defer = Defer {
            min: DEFER_MIN,
            len: tar.len() as u64,
            send: &mut send,
            seen: &mut |_| {},
        };
        let (_, pending) = index_tar_deferred(
            || std::io::Cursor::new(&tar[..]),
            &AtomicU64::new(u64::MAX),
            defer,
        )
        .unwrap();
        assert_eq!(sent.len(), 7);
        assert_eq!(pending.len(), 6);
        let by_path = |p: &str| {
            facts(&inline)
                .into_iter()
                .find(|f| f.0.trim_start_matches('/') == p)
                .unwrap()
        };
        assert_eq!(by_path("usr/bin/big").2, by_path("usr/lib/copy").2);
        assert_eq!(by_path("usr/bin/big-link").2, by_path("usr/bin/big").2);
        assert_eq!(
            by_path("var/lib/dpkg/status").2,
            by_path("var/lib/dpkg/status-old").2
        );
        assert_ne!(by_path("usr/bin/big").2, 0);
        assert_eq!(by_path("opt/pax-named-file").1, 400_000);
        assert!(facts(&inline).iter().any(|f| f.0.ends_with("deep/big")));
    }

    /// A layer of many small files, one of them a tar itself (headers in
    /// its content), and a path listed in both halves.
    fn many_files() -> Vec<u8> {
        let mut inner = tar::Builder::new(Vec::new());
        for k in 0..40 {
            file(&mut inner, &format!("inner/{k}"), &[k as u8; 700]);
        }
        let inner = inner.into_inner().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        file(&mut b, "etc/os-release", b"ID=debian\n");
        file(&mut b, "app/listed-twice", b"first");
        for k in 0..3000u32 {
            let data: Vec<u8> = (0..(k % 1500) as usize)
                .map(|i| (i as u32 ^ k) as u8)
                .collect();
            file(&mut b, &format!("app/m{}/f{k}.js", k % 37), &data);
            if k == 1500 {
                file(&mut b, "app/nested.tar", &inner);
            }
        }
        link(&mut b, "app/link-to-first", "etc/os-release");
        file(&mut b, "app/listed-twice", b"second");
        b.into_inner().unwrap()
    }

    /// Index `tar` split at `at` (head here, tail by `index_tail`).
    fn split_at(tar: &[u8], at: u64) -> (LayerIndex, Vec<Pending>) {
        let budget = AtomicU64::new(u64::MAX);
        let len = tar.len() as u64;
        let (mut send, mut seen) = (|_, _| 0, |_| {});
        let (mut send2, mut seen2) = (|_, _| 0, |_| {});
        let mut r = std::io::Cursor::new(tar);
        r.set_position(at);
        let defer = Defer {
            min: u64::MAX,
            len,
            send: &mut send,
            seen: &mut seen,
        };
        let tail = index_tail(r, at, &budget, defer);
        let defer = Defer {
            min: u64::MAX,
            len,
            send: &mut send2,
            seen: &mut seen2,
        };
        let open = |from: u64| {
            let mut c = std::io::Cursor::new(tar);
            c.set_position(from);
            c
        };
        let (idx, pending, _) = index_tar_split(open, &budget, defer, Some(at), || tail).unwrap();
        (idx, pending)
    }

    #[test]
    fn a_layer_split_at_any_boundary_or_none_indexes_as_one() {
        let tar = many_files();
        let inline = index_tar(&tar[..]).unwrap();
        let read_at = |buf: &mut [u8], at: u64| {
            let from = (at as usize).min(tar.len());
            let n = buf.len().min(tar.len() - from);
            buf[..n].copy_from_slice(&tar[from..from + n]);
            Ok(n)
        };
        let mid =
            boundary_after(&read_at, tar.len() as u64 / 2, 1 << 20, tar.len() as u64).unwrap();
        // The nested tar's own headers look like boundaries too.
        let nested = tar.windows(10).position(|w| w == b"inner/20\0\0").unwrap() as u64;
        let fake = boundary_after(&read_at, nested - 1, 1 << 20, tar.len() as u64).unwrap();
        assert_eq!(fake, nested);
        for at in [mid, 512, fake, tar.len() as u64 - 1024 - 512] {
            let (idx, _) = split_at(&tar, at);
            assert_eq!(facts(&idx), facts(&inline), "split at {at}");
            assert_eq!(idx.size, inline.size);
            assert_eq!(idx.captured, inline.captured);
            assert_eq!(idx.whiteouts, inline.whiteouts);
        }
        // Through the threads: split, every byte counted once.
        for threads in [2, 3] {
            let counter = Counter::default();
            let idx = read_counted(&tar, threads, &counter, true).unwrap();
            assert_eq!(facts(&idx), facts(&inline), "{threads} threads");
            assert_eq!(
                counter.load(Ordering::Relaxed),
                tar.len() as u64,
                "{threads} threads"
            );
        }
    }

    #[test]
    fn a_layer_cut_inside_a_large_file_fails_as_it_does_in_line() {
        let tar = layer();
        let cut = &tar[..tar.len() - 1024 - 1_000_000];
        let inline = crate::index::layer::explain(&index_tar(cut).unwrap_err());
        let err = read(cut, 2).unwrap_err();
        assert_eq!(err, format!("layer 1: {inline}"));
        assert!(err.contains("truncated"), "{err}");
    }
}
