//! The Docker engine, through its API (bollard): inspect, then stream the
//! image export straight into the archive indexer. Nothing touches disk and
//! the export is never held whole in memory.
//!
//! Works with any engine that speaks the Docker API: DOCKER_HOST picks a unix
//! socket or tcp address (podman's compatible socket too), else the default
//! socket; DOCKER_TLS_VERIFY and DOCKER_CERT_PATH select TLS as the docker CLI
//! does. The client's API version is negotiated down to the engine's.
//!
//! With `--via storage` (or auto, where the engine's directories can be
//! read) layers come from the engine's own storage instead (`stored`).

mod connect;
mod names;
mod stored;

pub use connect::{
    MIN_API, cert_dir, check_api_version, connect, connect_error, docker_host, runtime,
};
pub use names::{
    PullError, PullFailure, exists_locally, local_tags, pull, pull_connect_timeout, pull_error,
    pull_with, similar_names, split_tag,
};

use std::io::{self, BufReader};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as ApiError;
use futures_util::StreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::LoadOptions;
use super::archive::{Plan, assemble, load_stream};
use super::progress::{ImageProgress, Stage, Tracker};
use crate::cache::{Cache, ImageEntries};
use crate::error::Error;
use crate::image::{ConfigFile, Image};
use crate::index::layer::LayerIndex;
use crate::source::storage::{self, GraphDriver, Via};
use crate::units::size;
use connect::{request_error, root_message};
use names::{not_found, tag_is};

/// How long the export may go without a single byte once it has started
/// (the engine prepares the whole export before its first byte; that wait
/// is bounded by [`LONG_TIMEOUT`]). A stalled connection then fails
/// instead of hanging. `LAYERSCOPE_ENGINE_TIMEOUT` (seconds) overrides it.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The environment variable that sets [`STALL_TIMEOUT`], in seconds.
pub const STALL_TIMEOUT_ENV: &str = "LAYERSCOPE_ENGINE_TIMEOUT";

/// [`STALL_TIMEOUT`], or the number of seconds in its variable.
pub fn stall_timeout() -> Result<Duration, Error> {
    match std::env::var(STALL_TIMEOUT_ENV) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{STALL_TIMEOUT_ENV}={v:?} is not a number of seconds (e.g. 120, or 0.5)"
                ))
            }),
        _ => Ok(STALL_TIMEOUT),
    }
}

/// Why an export stream ended early.
#[derive(Debug, Clone)]
enum Fault {
    /// The connection failed (reset, closed mid-body, the engine died).
    Dropped(String),
    /// No byte arrived for this long.
    Stalled(Duration),
}

/// Load images from the engine, concurrently, in the order given.
pub fn load_many(names: &[String], opts: &LoadOptions) -> Result<Vec<Image>, Error> {
    load_tracked(names, opts, &Tracker::new(names).images)
}

/// [`load_many`], counting each image's progress in `progress` (one per
/// name). Must not be called from inside a tokio runtime. Images loaded in
/// one call are settled together ([`stored::settle_across`]), so that they
/// can be compared.
pub fn load_tracked(
    names: &[String],
    opts: &LoadOptions,
    progress: &[Arc<ImageProgress>],
) -> Result<Vec<Image>, Error> {
    let rt = runtime()?;
    let result = rt.block_on(async {
        let docker = connect().await?;
        let loads = names.iter().zip(progress).map(|(name, p)| {
            let docker = docker.clone();
            async move {
                let r = load_one(&docker, name, p.clone(), opts).await;
                if r.is_err() {
                    p.set_stage(Stage::Failed);
                }
                r
            }
        });
        futures_util::future::try_join_all(loads).await
    });
    // Images compared with each other are settled together.
    let result = result.and_then(|loaded| {
        let (mut images, stored): (Vec<Image>, Vec<Option<storage::Stored>>) =
            loaded.into_iter().unzip();
        if images.len() > 1 {
            let threads = opts
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let refs: Vec<Option<&storage::Stored>> = stored.iter().map(Option::as_ref).collect();
            stored::settle_across(&mut images, &refs, threads)?;
        }
        Ok(images)
    });
    // On an error the other exports may still be streaming on blocking
    // threads: do not wait for them.
    rt.shutdown_background();
    result
}

/// Facts from the engine's inspect that the export does not carry.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// `sha256:...`, the config digest.
    pub id: String,
    pub tags: Vec<String>,
    /// Image size as the engine reports it.
    pub size: u64,
    /// Layer diff_ids (RootFS.Layers).
    pub layers: Vec<String>,
    /// Where the layers live in the engine's storage (GraphDriver).
    pub graph: Option<GraphDriver>,
}

/// Inspect one image; a missing one gets a "not found" error listing local
/// images with similar names.
pub async fn inspect(docker: &Docker, name: &str) -> Result<Inspected, Error> {
    let host = docker_host();
    match docker.inspect_image(name).await {
        Ok(i) => Ok(Inspected {
            id: i.id.unwrap_or_else(|| name.to_string()),
            tags: i.repo_tags.unwrap_or_default(),
            size: i.size.map_or(0, |s| s.max(0) as u64),
            layers: i.root_fs.and_then(|r| r.layers).unwrap_or_default(),
            graph: i.graph_driver.map(|g| GraphDriver {
                upper: g.data.get("UpperDir").cloned(),
                lower: g
                    .data
                    .get("LowerDir")
                    .map(|l| l.split(':').map(str::to_string).collect())
                    .unwrap_or_default(),
                name: g.name,
            }),
        }),
        Err(ApiError::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(not_found(docker, name).await),
        Err(ApiError::DockerResponseServerError {
            status_code: 400,
            message,
        }) if message.contains("invalid reference") => Err(Error::Usage(format!(
            "{name}: not a valid image reference ({message})"
        ))),
        Err(e) => Err(request_error(&e, &host, name)),
    }
}

/// Inspect, export and index one image.
async fn load_one(
    docker: &Docker,
    name: &str,
    progress: Arc<ImageProgress>,
    opts: &LoadOptions,
) -> Result<(Image, Option<storage::Stored>), Error> {
    let name = name.strip_prefix("docker:").unwrap_or(name);
    let stall = stall_timeout()?;
    let info = inspect(docker, name).await?;
    let source = format!("docker:{name}");
    if opts.via != Via::Export {
        let host = docker_host();
        match storage::locate(&host, &info.id, &info.layers, info.graph.as_ref()) {
            Ok(stored) => {
                progress.set_stage(Stage::Receiving);
                let (info2, opts2, source2) = (info.clone(), opts.clone(), source.clone());
                let p = progress.clone();
                let (loaded, stored) = tokio::task::spawn_blocking(move || {
                    stored::load(&stored, &info2, &source2, &opts2, &p).map(|l| (l, stored))
                })
                .await
                .map_err(|e| Error::Engine(format!("{name}: indexing failed: {e}")))??;
                let all = loaded.image.layers.len();
                let mut image = finish(loaded.image, name, &info);
                image.facts.layers_read_via = if loaded.cached == all {
                    "cache"
                } else {
                    "storage"
                }
                .into();
                image.facts.layers_cached = loaded.cached;
                return Ok((image, Some(stored)));
            }
            Err(why) if opts.via == Via::Storage => {
                return Err(Error::Engine(format!(
                    "{name}: cannot read the layers from the engine's storage (--via storage): {why}"
                )));
            }
            Err(why) => say_once(&format!(
                "layerscope: reading engine layers through the export, which is slower: {why} (--via export says this is meant and silences this)"
            )),
        }
    }
    if let Some(cache) = opts.cache.clone().filter(|_| !opts.verify) {
        let (info2, opts2, source2) = (info.clone(), opts.clone(), source.clone());
        let cached =
            tokio::task::spawn_blocking(move || load_cached(&cache, &info2, &source2, &opts2))
                .await
                .ok()
                .flatten();
        if let Some(image) = cached {
            let mut image = finish(image, name, &info);
            image.facts.layers_read_via = "cache".into();
            image.facts.layers_cached = image.layers.len();
            return Ok((image, None));
        }
    }
    progress.set_expected(info.size);
    progress.set_stage(Stage::Waiting);
    let failure: Arc<Mutex<Option<Fault>>> = Arc::new(Mutex::new(None));
    // Export by id: exactly the image inspected, even if a tag moves. The
    // first chunk may take long (the engine prepares the export first);
    // after it, a gap longer than `stall` ends the stream with an error.
    let export = Box::pin(docker.export_image(&info.id));
    let timed = futures_util::stream::unfold(Some((export, false)), move |state| async move {
        let (mut s, started) = state?;
        let next = if started {
            match tokio::time::timeout(stall, s.next()).await {
                Ok(next) => next,
                Err(_) => return Some((Err(Fault::Stalled(stall)), None)),
            }
        } else {
            s.next().await
        };
        match next {
            Some(Ok(bytes)) => Some((Ok(bytes), Some((s, true)))),
            Some(Err(e)) => Some((Err(Fault::Dropped(root_message(&e))), None)),
            None => None,
        }
    });
    let stream = {
        let failure = failure.clone();
        let p = progress.clone();
        timed.map(move |item| match item {
            Ok(bytes) => {
                p.add_received(bytes.len() as u64);
                p.set_stage(Stage::Receiving);
                Ok(bytes)
            }
            Err(fault) => {
                let msg = format!("{fault:?}");
                if let Ok(mut f) = failure.lock() {
                    f.get_or_insert(fault);
                }
                Err(io::Error::other(msg))
            }
        })
    };
    let load_opts = opts.clone();
    let image_id = info.id.clone();
    // The local engine's diff_ids are its own; a remote one's (tcp, ssh)
    // are checked by hashing before anything is cached under them.
    let trusted = docker_host().starts_with("unix://");
    let task = tokio::task::spawn_blocking(move || {
        let reader = StreamReader::new(Box::pin(stream));
        let bridge = SyncIoBridge::new(reader);
        let buffered = BufReader::with_capacity(1 << 20, bridge);
        let (image, for_cache) = load_stream(buffered, &source, None, &load_opts, trusted)?;
        if let (Some(cache), Some(c)) = (&load_opts.cache, for_cache) {
            cache.store_image(&ImageEntries {
                image_id: &image_id,
                config_id: &image.facts.id,
                config: &c.config,
                layers: c.layers.iter().map(|(d, b)| (d.as_str(), &b[..])).collect(),
            });
        }
        Ok(image)
    });
    let got = || progress.received();
    let result = task
        .await
        .map_err(|e| Error::Engine(format!("{name}: indexing failed: {e}")))?;
    let fault = failure.lock().ok().and_then(|f| f.clone());
    let host = docker_host();
    let image = match (result, fault) {
        (Ok(image), _) => image,
        (Err(_), Some(Fault::Dropped(why))) => {
            return Err(Error::Engine(format!(
                "{name}: the connection to the Docker engine at {host} dropped during the export after {} ({got} bytes) of about {} ({why}); check that the engine is still running",
                size(got()),
                size(info.size),
                got = got(),
            )));
        }
        (Err(_), Some(Fault::Stalled(t))) => {
            return Err(Error::Engine(format!(
                "{name}: the Docker engine at {host} sent nothing for {} s during the export, after {} ({got} bytes) of about {}; gave up (set {STALL_TIMEOUT_ENV} to wait longer)",
                t.as_secs_f64(),
                size(got()),
                size(info.size),
                got = got(),
            )));
        }
        (Err(e), None) => return Err(e),
    };
    Ok((finish(image, name, &info), None))
}

/// What an engine image looks like whichever way it was loaded.
fn finish(mut image: Image, name: &str, info: &Inspected) -> Image {
    // The export by id carries no tags: use the engine's, the one asked
    // for first.
    if image.facts.tags.is_empty() {
        let mut tags = info.tags.clone();
        if let Some(pos) = tags.iter().position(|t| tag_is(name, t)) {
            let t = tags.remove(pos);
            tags.insert(0, t);
        }
        image.facts.tags = tags;
    }
    image.facts.source = format!("docker:{name}");
    image.facts.layers_read_via = "export".into();
    // The engine stores layers by diff_id; the export's member names are an
    // artifact of the export (and absent when loaded from the cache).
    for l in &mut image.layers {
        l.blob = l.diff_id.clone();
    }
    image
}

/// The image from the layer cache alone, without an export: only when its
/// config and every layer are cached and agree with what the engine says.
fn load_cached(cache: &Cache, info: &Inspected, source: &str, opts: &LoadOptions) -> Option<Image> {
    let (config_id, json) = cache.image_config(&info.id)?;
    let config: ConfigFile = serde_json::from_slice(&json).ok()?;
    let diff_ids = config.rootfs.as_ref().map(|r| r.diff_ids.clone())?;
    if diff_ids != info.layers {
        return None;
    }
    // Decode on as many threads as an export would index on.
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, diff_ids.len().max(1));
    let ids: Vec<&str> = diff_ids.iter().map(String::as_str).collect();
    let slots = cache.layers(&ids, threads);
    let indexes: Vec<LayerIndex> = slots.into_iter().collect::<Option<_>>()?;
    // Layers read from storage may hold unread files: in an image read
    // through the export every file is hashed, so these are re-read.
    if indexes.iter().any(|i| i.entries.iter().any(|e| !e.hashed)) {
        return None;
    }
    let plan = Plan {
        config,
        config_digest: config_id,
        tags: Vec::new(),
        layer_sizes: vec![None; diff_ids.len()],
        layers: diff_ids,
    };
    assemble(plan, indexes, Default::default(), source, opts).ok()
}

/// Print `msg` on stderr, the first time only.
fn say_once(msg: &str) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{msg}");
    }
}
