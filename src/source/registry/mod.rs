//! Images straight from a registry (`docker://HOST/REPO[:TAG|@DIGEST]`).
//!
//! The tag is resolved to a digest with HEAD; the manifest (or, from a
//! list, the chosen platform's) names the config, whose diff_ids say which
//! layers the cache already holds: those are not downloaded at all. The
//! others stream from the registry through the blob indexer on worker
//! threads, several at once, with no temporary files; a downloaded layer
//! is cached only when its blob digest and its diff_id both check out.
//! Foreign and non-distributable layers are named, not fetched.

pub mod certs;
pub mod client;
pub mod credentials;
pub mod manifest;
pub mod reference;
pub mod transport;

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio_util::io::{StreamReader, SyncIoBridge};

pub use reference::{RegistryRef, parse_reference};

use self::client::Registry;
use self::manifest::{Descriptor, Manifest, Platform};
use super::LoadOptions;
use super::archive::{Plan, assemble};
use super::blob::{hex, index_blob};
use super::progress::Stage;
use crate::cache::{ImageEntries, encode_layer};
use crate::error::Error;
use crate::image::{ConfigFile, Image};
use crate::index::layer::{LayerIndex, MAX_CAPTURED_IMAGE};

/// Indexes followed from a tag before an image manifest (an index may name
/// an index).
const MAX_NESTED_INDEXES: usize = 4;
/// A config larger than this is not a config.
const MAX_CONFIG: u64 = 16 << 20;
/// Layers downloaded at once at most (registries throttle more).
const MAX_PARALLEL: usize = 4;

/// Load an image from its registry.
pub fn load(r: &RegistryRef, opts: &LoadOptions) -> Result<Image, Error> {
    let shown = format!("docker://{r}");
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let cred = credentials::lookup(r)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::input(&shown, format!("cannot start the network runtime: {e}")))?;
    rt.block_on(async {
        let registry = Registry::connect(r, cred, opts.insecure).await?;
        load_async(&registry, r, &platform, opts).await
    })
}

/// What one layer needs: its descriptor and where its index comes from.
enum Source {
    Cached(Box<LayerIndex>),
    Download,
    /// Foreign or non-distributable: not fetched; the index stays empty.
    NotFetched,
}

async fn load_async(
    reg: &Registry,
    r: &RegistryRef,
    platform: &Platform,
    opts: &LoadOptions,
) -> Result<Image, Error> {
    let fail = |msg: String| Error::input(&reg.shown, msg);
    reg.login().await?;
    let mut digest = reg.resolve(r.reference()).await?;
    let mut nested = 0;
    let image = loop {
        let body = reg.manifest(&digest).await?;
        match manifest::parse(None, &body).map_err(fail)? {
            Manifest::Image(m) => break m,
            Manifest::Index(entries) => {
                nested += 1;
                if nested > MAX_NESTED_INDEXES {
                    return Err(fail(format!(
                        "more than {MAX_NESTED_INDEXES} nested image indexes"
                    )));
                }
                digest = manifest::choose(&entries, platform)
                    .map_err(fail)?
                    .digest
                    .clone();
            }
        }
    };
    if image.layers.len() > 4096 {
        return Err(fail(format!(
            "the manifest lists {} layers; layerscope reads at most 4096",
            image.layers.len()
        )));
    }
    let config_digest = image.config.digest.clone();
    let cache = opts.cache.clone().filter(|_| !opts.verify);
    let cached_config = cache
        .as_ref()
        .and_then(|c| c.image_config(&config_digest))
        .map(|(_, json)| json);
    let config_json = match cached_config {
        Some(j) => j,
        None => {
            reg.small_blob(&config_digest, image.config.size, MAX_CONFIG)
                .await?
        }
    };
    let config: ConfigFile = serde_json::from_slice(&config_json)
        .map_err(|e| fail(format!("the image config is not valid: {e}")))?;
    // One image, not an index: it is what it is, but a platform asked for
    // must match it.
    if opts.platform.is_some() && nested == 0 {
        let have = Platform {
            os: config.os.clone().unwrap_or_default(),
            architecture: config.architecture.clone().unwrap_or_default(),
            variant: config.variant.clone(),
        };
        if !platform.accepts(&have) {
            return Err(fail(format!(
                "the image is {have} only (not a multi-platform index), not {platform}"
            )));
        }
    }
    let diff_ids = config
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    if diff_ids.len() != image.layers.len() {
        return Err(fail(format!(
            "the manifest lists {} layers but the config's rootfs has {} diff_ids",
            image.layers.len(),
            diff_ids.len()
        )));
    }
    // Cached layers first: they are not downloaded at all.
    let mut sources: Vec<Source> = image
        .layers
        .iter()
        .zip(&diff_ids)
        .map(|(d, diff_id)| {
            if d.is_foreign() {
                Source::NotFetched
            } else {
                match cache.as_ref().and_then(|c| c.layer(diff_id)) {
                    Some(idx) => Source::Cached(Box::new(idx)),
                    None => Source::Download,
                }
            }
        })
        .collect();
    let wanted: Vec<usize> = (0..sources.len())
        .filter(|&i| matches!(sources[i], Source::Download))
        .collect();
    if let Some(p) = &opts.layers {
        p.set_expected(wanted.iter().map(|&i| image.layers[i].size).sum());
        p.set_stage(Stage::Waiting);
    }
    let downloaded = download_all(reg, &image.layers, &diff_ids, &wanted, opts).await?;
    let mut for_cache: Vec<(String, Vec<u8>)> = Vec::new();
    let mut indexes = Vec::with_capacity(sources.len());
    let mut downloaded = downloaded.into_iter();
    for (i, s) in sources.iter_mut().enumerate() {
        let idx = match std::mem::replace(s, Source::Download) {
            Source::Cached(idx) => *idx,
            Source::NotFetched => LayerIndex::default(),
            Source::Download => {
                let (idx, encoded) = downloaded
                    .next()
                    .ok_or_else(|| fail("internal: a layer went missing".into()))?;
                if let Some(e) = encoded {
                    for_cache.push((diff_ids[i].clone(), e));
                }
                idx
            }
        };
        indexes.push(idx);
    }
    if let Some(c) = &cache {
        c.store_image(&ImageEntries {
            image_id: &config_digest,
            config_id: &config_digest,
            config: &config_json,
            layers: for_cache
                .iter()
                .map(|(d, b)| (d.as_str(), &b[..]))
                .collect(),
        });
    }
    let plan = Plan {
        config,
        config_digest,
        tags: vec![r.to_string()],
        layers: image.layers.iter().map(|l| l.digest.clone()).collect(),
        layer_sizes: image.layers.iter().map(|l| Some(l.size)).collect(),
    };
    // Every downloaded layer was checked above; cached ones when stored.
    let assemble_opts = LoadOptions {
        verify: false,
        ..opts.clone()
    };
    let mut img = assemble(
        plan,
        indexes,
        Default::default(),
        &reg.shown,
        &assemble_opts,
    )
    .map_err(fail)?;
    for (l, d) in img.layers.iter_mut().zip(&image.layers) {
        l.pull_size = Some(d.size);
        if d.is_foreign() {
            l.not_fetched = Some(format!(
                "{} layer, not fetched{}",
                if d.media_type.contains("nondistributable") {
                    "non-distributable"
                } else {
                    "foreign"
                },
                d.urls
                    .first()
                    .map(|u| format!(" (from {})", u.split('?').next().unwrap_or(u)))
                    .unwrap_or_default()
            ));
        }
    }
    img.facts.source = reg.shown.clone();
    Ok(img)
}

/// Download and index the `wanted` layers, several at a time; returns each
/// one's index and, when both its digests checked out, its cache encoding
/// (in the order of `wanted`).
async fn download_all(
    reg: &Registry,
    layers: &[Descriptor],
    diff_ids: &[String],
    wanted: &[usize],
    opts: &LoadOptions,
) -> Result<Vec<(LayerIndex, Option<Vec<u8>>)>, Error> {
    let budget = Arc::new(AtomicU64::new(MAX_CAPTURED_IMAGE));
    let parallel = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, MAX_PARALLEL);
    let jobs = wanted.iter().map(|&i| {
        let budget = budget.clone();
        let desc = layers[i].clone();
        let diff_id = diff_ids[i].clone();
        // Each download counts on its own (per-layer progress).
        let counter = opts.layer_counter(i, desc.size);
        let cache_wanted = opts.cache.is_some();
        async move {
            let named = format!("layer {} ({})", i + 1, desc.digest);
            let layer = |e: String| Error::input(&reg.shown, format!("{named}: {e}"));
            let stream = reg
                .blob_stream("downloading".into(), desc.digest.clone(), desc.size)
                .map(move |chunk| {
                    if let (Ok(c), Some(n)) = (&chunk, &counter) {
                        n.fetch_add(c.len() as u64, Ordering::Relaxed);
                    }
                    chunk
                });
            let task = tokio::task::spawn_blocking(move || {
                let bridge = SyncIoBridge::new(StreamReader::new(stream));
                let mut r = Hashing::new(io::BufReader::with_capacity(256 * 1024, bridge));
                let indexed = index_blob(&mut r, true, &budget).and_then(|idx| {
                    // What follows the compressed stream still counts.
                    io::copy(&mut r, &mut io::sink()).map_err(|e| e.to_string())?;
                    Ok(idx)
                });
                // A download that failed says so itself; content that does
                // not parse may be content that does not match its digest:
                // read the rest (the stream stops at the declared size) to
                // tell.
                if let Some(line) = r.failed.take() {
                    return Err(line);
                }
                let mut idx = match indexed {
                    Ok(idx) => idx,
                    Err(e) => {
                        let _ = io::copy(&mut r, &mut io::sink());
                        if let Some(line) = r.failed.take() {
                            return Err(line);
                        }
                        let (count, blob_digest) = r.finish();
                        return Err(if count == desc.size && blob_digest != desc.digest {
                            MISMATCH.to_string()
                        } else {
                            e
                        });
                    }
                };
                let (count, blob_digest) = r.finish();
                check_layer(&desc, &diff_id, count, &blob_digest, idx.diff_id.as_deref())?;
                idx.diff_id = Some(diff_id);
                let encoded = (cache_wanted && !idx.incomplete)
                    .then(|| encode_layer(&idx))
                    .flatten();
                Ok::<_, String>((idx, encoded))
            });
            task.await
                .map_err(|e| layer(format!("indexing failed: {e}")))?
                .map_err(layer)
        }
    });
    let results: Vec<Result<_, Error>> = futures_util::stream::iter(jobs)
        .buffered(parallel)
        .collect()
        .await;
    results.into_iter().collect()
}

const MISMATCH: &str =
    "the registry sent content that does not match the digest the manifest names";

/// A downloaded layer against its descriptor and its config diff_id.
fn check_layer(
    desc: &Descriptor,
    diff_id: &str,
    count: u64,
    blob_digest: &str,
    content: Option<&str>,
) -> Result<(), String> {
    if count != desc.size {
        return Err(format!(
            "the registry sent {count} bytes, the manifest declares {}",
            desc.size
        ));
    }
    if blob_digest != desc.digest {
        return Err(format!("{MISMATCH} (it is {blob_digest})"));
    }
    if content != Some(diff_id) {
        return Err(format!(
            "the uncompressed content does not match the config's diff_id {diff_id} (it is {})",
            content.unwrap_or("unknown")
        ));
    }
    Ok(())
}

/// A reader that counts and hashes what passes through, and keeps the
/// line a failed download ended with.
struct Hashing<R> {
    inner: R,
    count: u64,
    hasher: Sha256,
    failed: Option<String>,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            count: 0,
            hasher: Sha256::new(),
            failed: None,
        }
    }

    fn finish(self) -> (u64, String) {
        (
            self.count,
            format!("sha256:{}", hex(&self.hasher.finalize())),
        )
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|e| {
            if let Some(line) = transport::BlobError::of(e) {
                self.failed.get_or_insert(line);
            }
        })?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
