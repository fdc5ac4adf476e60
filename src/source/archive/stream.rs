//! A `docker save`-style tar stream read once, start to end (the engine's
//! export): layers indexed on worker threads as they arrive.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::AtomicU64;

use super::super::LoadOptions;
use super::super::blob::{index_blob, pipe, read_head};
use super::MAX_META;
use super::members::{Outer, outer_member, resolve};
use super::plan::{assemble, check_size, plan};
use crate::error::Error;
use crate::image::Image;
use crate::index::layer::{LayerIndex, MAX_CAPTURED_IMAGE};

/// Load an image from a `docker save`-style tar stream read once, start to
/// end (the engine's export endpoint). Every layer is indexed as it
/// arrives, on worker threads, while this thread goes on reading; nothing
/// is written to disk.
pub fn load_archive_stream<R: Read>(
    reader: R,
    source: &str,
    want: Option<&str>,
    opts: &LoadOptions,
) -> Result<Image, Error> {
    load_stream(reader, source, want, opts, false).map(|(image, _)| image)
}

/// What a stream gives the layer cache: the config, and each layer whose
/// content hashed to the diff_id the config names, encoded.
pub struct ForCache {
    /// The config's JSON (its digest is the image's `facts.id`).
    pub config: Vec<u8>,
    pub layers: Vec<(String, Vec<u8>)>,
}

/// [`load_archive_stream`], and when `opts.cache` is set, the entries to
/// cache. With `trust_diff_ids` (the local engine's own stream: it computed
/// them when it stored the layers) the config's diff_ids are taken as they
/// are; otherwise every layer is hashed and only content that matches its
/// diff_id is cached.
pub fn load_stream<R: Read>(
    reader: R,
    source: &str,
    want: Option<&str>,
    opts: &LoadOptions,
    trust_diff_ids: bool,
) -> Result<(Image, Option<ForCache>), Error> {
    let fail = |msg: String| Error::input(source, msg);
    let mut meta: HashMap<String, Vec<u8>> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let workers = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let encode = opts.cache.is_some();
    let mut done: HashMap<String, Indexed> = HashMap::new();
    let mut sizes: HashMap<String, u64> = HashMap::new();
    let budget = AtomicU64::new(MAX_CAPTURED_IMAGE);
    std::thread::scope(|s| -> Result<(), Error> {
        let mut running: std::collections::VecDeque<(
            String,
            std::thread::ScopedJoinHandle<'_, Indexed>,
        )> = std::collections::VecDeque::new();
        let read = || -> Result<(), Error> {
            // The guard bounds long-name and PAX members, as for layers.
            let mut ar = tar::Archive::new(crate::index::guard::Guard::new(reader));
            let entries = ar.entries().map_err(|e| fail(e.to_string()))?;
            let mut last: Option<String> = None;
            for item in entries {
                let mut entry = item.map_err(|e| {
                    let msg = crate::index::layer::explain(&e).replacen("layer", "archive", 1);
                    fail(match &last {
                        Some(name) => format!("{msg} (after member {name})"),
                        None => format!("{msg} (in the first header)"),
                    })
                })?;
                let name = match outer_member(&entry).map_err(fail)? {
                    Outer::File(name) => name,
                    Outer::Link(name, target) => {
                        last = Some(name.clone());
                        links.insert(name, target);
                        continue;
                    }
                    Outer::Other(name) => {
                        last = Some(name);
                        continue;
                    }
                };
                last = Some(name.clone());
                let size = entry.size();
                sizes.insert(name.clone(), size);
                let head = read_head(&mut entry, 512).map_err(|e| fail(format!("{name}: {e}")))?;
                let is_json = head.first().is_some_and(|&b| b == b'{' || b == b'[');
                if is_json || size == 0 {
                    if size > MAX_META {
                        return Err(fail(format!("{name}: JSON file too large ({size} bytes)")));
                    }
                    let mut data = head;
                    entry
                        .read_to_end(&mut data)
                        .map_err(|e| fail(format!("{name}: {e}")))?;
                    meta.insert(name, data);
                } else if name.starts_with("blobs/")
                    || name.ends_with("layer.tar")
                    || name.ends_with(".tar")
                {
                    // At most `workers` layers in flight: the oldest has all
                    // its bytes already, so waiting for it cannot stall.
                    while running.len() >= workers {
                        if let Some((n, h)) = running.pop_front() {
                            done.insert(n, join_indexer(h));
                        }
                    }
                    let (mut tx, rx) = pipe();
                    let verify = opts.verify || (encode && !trust_diff_ids);
                    let budget = &budget;
                    let h = s.spawn(move || {
                        let r = std::io::Cursor::new(head).chain(rx);
                        let idx = index_blob(r, verify, budget);
                        // An index missing files for lack of image-wide
                        // budget depends on the image: never cached.
                        let encoded = match &idx {
                            Ok(i) if encode && !i.incomplete => crate::cache::encode_layer(i),
                            _ => None,
                        };
                        (idx, encoded)
                    });
                    running.push_back((name.clone(), h));
                    // Feed the worker; if it stopped early (a broken layer),
                    // the rest of the member is skipped and its error reported.
                    while tx
                        .send_from(&mut entry, |_| {})
                        .map_err(|e| fail(format!("{name}: {e}")))?
                        > 0
                    {}
                }
            }
            Ok(())
        };
        let result = read();
        // Joined on every path, so a worker's panic is reported as its
        // layer's error rather than unwinding past the real one.
        for (n, h) in running {
            done.insert(n, join_indexer(h));
        }
        result
    })?;
    let plan = plan(&|p| meta.get(&resolve(&links, p)).cloned(), want).map_err(fail)?;
    let diff_ids = plan.config.rootfs.clone().unwrap_or_default().diff_ids;
    let mut indexes = Vec::with_capacity(plan.layers.len());
    let mut cacheable = Vec::new();
    for (i, l) in plan.layers.iter().enumerate() {
        let real = resolve(&links, l);
        let layer = |e: String| fail(format!("layer {} ({l}): {e}", i + 1));
        if let Some(&size) = sizes.get(&real) {
            check_size(&plan, i, size).map_err(layer)?;
        }
        // A layer listed twice is stored once: clone it for all but the last use.
        let later_uses = plan
            .layers
            .iter()
            .skip(i + 1)
            .any(|x| resolve(&links, x) == real);
        let (idx, encoded) = match done.get(&real) {
            Some((Ok(_), _)) if later_uses => match done.get(&real) {
                Some((Ok(i), e)) => (i.clone(), e.clone()),
                _ => return Err(layer("missing".into())),
            },
            Some((Ok(_), _)) => match done.remove(&real) {
                Some((Ok(i), e)) => (i, e),
                _ => return Err(layer("missing".into())),
            },
            Some((Err(e), _)) => return Err(layer(e.clone())),
            None => {
                return Err(layer(
                    "named by the manifest but missing from the archive".into(),
                ));
            }
        };
        if let (Some(bytes), Some(want)) = (encoded, diff_ids.get(i))
            && match &idx.diff_id {
                Some(actual) => actual == want,
                None => trust_diff_ids,
            }
        {
            cacheable.push((want.clone(), bytes));
        }
        indexes.push(idx);
    }
    let config_id = plan.config_digest.clone();
    let image = assemble(plan, indexes, Default::default(), source, opts).map_err(fail)?;
    let for_cache = encode.then(|| {
        let hex = config_id.strip_prefix("sha256:").unwrap_or(&config_id);
        let config = [format!("{hex}.json"), format!("blobs/sha256/{hex}")]
            .into_iter()
            .find_map(|p| meta.remove(&resolve(&links, &p)))
            .unwrap_or_default();
        ForCache {
            config,
            layers: cacheable,
        }
    });
    Ok((image, for_cache))
}

/// A layer's index and, when caching, its encoded form.
type Indexed = (Result<LayerIndex, String>, Option<Vec<u8>>);

fn join_indexer(h: std::thread::ScopedJoinHandle<'_, Indexed>) -> Indexed {
    h.join()
        .unwrap_or_else(|_| (Err("the indexing thread panicked".into()), None))
}
