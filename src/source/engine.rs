//! The Docker engine, through its API (bollard): inspect, then stream the
//! image export straight into the archive indexer. Nothing touches disk and
//! the export is never held whole in memory.
//!
//! Works with any engine that speaks the Docker API: DOCKER_HOST picks a unix
//! socket or tcp address (podman's compatible socket too), else the default
//! socket; DOCKER_TLS_VERIFY and DOCKER_CERT_PATH select TLS as the docker CLI
//! does. The client's API version is negotiated down to the engine's.

use std::io::{self, BufReader};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::query_parameters::{CreateImageOptions, ListImagesOptions};
use futures_util::StreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::LoadOptions;
use super::archive::{Plan, assemble, load_stream};
use super::progress::{ImageProgress, Stage, Tracker};
use crate::cache::{Cache, ImageEntries};
use crate::error::Error;
use crate::image::{ConfigFile, Image};
use crate::index::layer::LayerIndex;
use crate::units::size;

/// The oldest Engine API layerscope talks to (Docker 1.12, 2016): inspect,
/// export and build all exist there with the fields used here.
pub const MIN_API: (usize, usize) = (1, 24);

/// How long a single request may wait for the engine to start answering.
/// A Docker 20.10 engine prepares the whole export before its first byte,
/// which takes a minute on a 1.5 GB image: be generous.
const LONG_TIMEOUT: Duration = Duration::from_secs(3600);

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

/// The host a connection goes to, as the user would write it.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// A runtime for one command. Two workers are plenty: the engine is the
/// bottleneck and indexing runs on blocking threads.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("engine")
        .enable_all()
        .build()
        .map_err(|e| Error::Engine(format!("cannot start the engine client: {e}")))
}

/// Connect (DOCKER_HOST or the default socket) and negotiate the API version.
/// A tcp:// host with DOCKER_TLS_VERIFY set (non-empty, not "0"), or any
/// https:// host, is reached over TLS with the docker CLI's certificates.
pub async fn connect() -> Result<Docker, Error> {
    let host = docker_host();
    let verify = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0");
    let is_tcp = host.starts_with("tcp://") || host.starts_with("http://");
    if host.starts_with("https://") || (verify && is_tcp) {
        return connect_tls(&host).await;
    }
    // tcp:// is connected explicitly: bollard's own dispatch would switch to
    // TLS for any DOCKER_TLS_VERIFY, even "0".
    let docker = if is_tcp {
        Docker::connect_with_http(&host, 120, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_host(&host)
    }
    .map_err(|e| connect_error(&e, &host))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| connect_error(&e, &host))?;
    let v = docker.client_version();
    check_api_version(&host, (v.major_version, v.minor_version))?;
    Ok(docker.with_timeout(LONG_TIMEOUT))
}

/// The docker CLI's certificate directory: DOCKER_CERT_PATH, else ~/.docker.
pub fn cert_dir() -> std::path::PathBuf {
    match std::env::var_os("DOCKER_CERT_PATH").filter(|p| !p.is_empty()) {
        Some(p) => p.into(),
        None => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(std::env::home_dir)
            .unwrap_or_default()
            .join(".docker"),
    }
}

/// Check one PEM file before handing it to bollard, whose client-certificate
/// errors would otherwise only show up as a vague handshake failure.
fn check_pem(host: &str, path: &std::path::Path, what: &str, marker: &str) -> Result<(), Error> {
    let shown = path.display();
    let text = std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::NotFound => "no such file".to_string(),
            io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        Error::Engine(format!(
            "cannot connect to the Docker engine at {host} over TLS: {what} {shown}: {why}; set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem"
        ))
    })?;
    let text = String::from_utf8_lossy(&text);
    let ok = text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("-----BEGIN ") && l.ends_with(&format!("{marker}-----"))
    });
    if !ok {
        return Err(Error::Engine(format!(
            "cannot connect to the Docker engine at {host} over TLS: {what} {shown} is not a PEM file holding a {}",
            marker.to_ascii_lowercase()
        )));
    }
    Ok(())
}

/// Connect over TLS with `ca.pem`, `cert.pem` and `key.pem` from [`cert_dir`].
async fn connect_tls(host: &str) -> Result<Docker, Error> {
    let dir = cert_dir();
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    check_pem(host, &ca, "the CA certificate", "CERTIFICATE")?;
    check_pem(host, &cert, "the client certificate", "CERTIFICATE")?;
    check_pem(host, &key, "the client key", "PRIVATE KEY")?;
    let docker =
        Docker::connect_with_ssl(host, &key, &cert, &ca, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| tls_setup_error(&e, host))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| tls_error(&e, host, &dir))?;
    let v = docker.client_version();
    check_api_version(host, (v.major_version, v.minor_version))?;
    Ok(docker.with_timeout(LONG_TIMEOUT))
}

/// One line for a TLS client that could not be set up.
fn tls_setup_error(e: &ApiError, host: &str) -> Error {
    let why = match e {
        ApiError::CertPathError { path } | ApiError::CertParseError { path } => {
            format!("cannot read {} as PEM certificates", path.display())
        }
        ApiError::CertMultipleKeys { count, path } => {
            format!("{} holds {count} keys, expected one", path.display())
        }
        ApiError::LoadNativeCertsErrors { .. } | ApiError::NoNativeCertsError { .. } => format!(
            "cannot load the system's root certificates ({}); check SSL_CERT_FILE/SSL_CERT_DIR",
            e.to_string().replace('\n', " ")
        ),
        _ => root_message(e),
    };
    Error::Engine(format!(
        "cannot connect to the Docker engine at {host} over TLS: {why}"
    ))
}

/// One line for a failed TLS connection, naming the certificate at fault
/// when the handshake says which one.
fn tls_error(e: &ApiError, host: &str, dir: &std::path::Path) -> Error {
    let kind = match e {
        ApiError::IOError { err } => Some(err.kind()),
        _ => io_kind(e),
    };
    if matches!(
        e,
        ApiError::DockerResponseServerError { .. } | ApiError::RequestTimeoutError
    ) || matches!(
        kind,
        Some(
            io::ErrorKind::NotFound
                | io::ErrorKind::ConnectionRefused
                | io::ErrorKind::AddrNotAvailable
        )
    ) {
        return connect_error(e, host);
    }
    let root = root_message(e);
    let ca = dir.join("ca.pem");
    let cert = dir.join("cert.pem");
    let why = if root.contains("UnknownIssuer") || root.contains("BadSignature") {
        format!(
            "the engine's certificate is not signed by the CA in {}",
            ca.display()
        )
    } else if root.contains("NotValidForName") {
        "the engine's certificate is not valid for this host name or address".to_string()
    } else if root.contains("Expired") || root.contains("NotValidYet") {
        "the engine's certificate is expired or not yet valid".to_string()
    } else if root.contains("received fatal alert") {
        format!(
            "the engine refused the client certificate {} ({root})",
            cert.display()
        )
    } else if root.contains("corrupt message") || root.contains("InvalidContentType") {
        "the engine does not speak TLS on this port (unset DOCKER_TLS_VERIFY for a plain tcp:// engine)"
            .to_string()
    } else {
        root.replace('\n', " ")
    };
    Error::Engine(format!(
        "TLS connection to the Docker engine at {host} failed: {why} (certificates from {})",
        dir.display()
    ))
}

/// Refuse engines older than [`MIN_API`].
pub fn check_api_version(host: &str, v: (usize, usize)) -> Result<(), Error> {
    if v < MIN_API {
        return Err(Error::Engine(format!(
            "the Docker engine at {host} speaks API {}.{}, which is too old: layerscope needs API {}.{} or later (Docker 1.12+); upgrade the engine",
            v.0, v.1, MIN_API.0, MIN_API.1
        )));
    }
    Ok(())
}

/// The first I/O error in an error's chain.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

/// The innermost message of an error chain (hyper's outer ones say little).
fn root_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn socket_path(host: &str) -> &str {
    host.strip_prefix("unix://").unwrap_or(host)
}

/// One line for a failure to talk to the engine at all.
pub fn connect_error(e: &ApiError, host: &str) -> Error {
    let start = "start it (`sudo systemctl start docker`, or `sudo dockerd &`) or point DOCKER_HOST at a running engine (e.g. DOCKER_HOST=unix:///run/user/1000/podman/podman.sock)";
    match e {
        ApiError::SocketNotFoundError(_) => {
            return Error::Engine(format!(
                "cannot reach the Docker engine at {host}: no such socket; {start}"
            ));
        }
        ApiError::UnsupportedURISchemeError { uri } => {
            return Error::Engine(format!(
                "DOCKER_HOST={uri} is not supported: use unix:///path/to/docker.sock or tcp://HOST:PORT"
            ));
        }
        ApiError::DockerResponseServerError {
            status_code,
            message,
        } => return server_error(host, *status_code, message),
        ApiError::RequestTimeoutError => {
            return Error::Engine(format!(
                "the Docker engine at {host} did not answer in time; check that it is running, or point DOCKER_HOST at one that is"
            ));
        }
        _ => {}
    }
    // `IOError` is transparent: its source() skips the io::Error itself.
    let kind = match e {
        ApiError::IOError { err } => Some(err.kind()),
        _ => io_kind(e),
    };
    match kind {
        Some(io::ErrorKind::PermissionDenied) => Error::Engine(format!(
            "permission denied on the Docker socket {}: add your user to the `docker` group (`sudo usermod -aG docker $USER`, then log in again), run as root, or point DOCKER_HOST at an engine you may use",
            socket_path(host)
        )),
        Some(
            io::ErrorKind::NotFound
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::AddrNotAvailable,
        ) => Error::Engine(format!(
            "cannot reach the Docker engine at {host} ({}); {start}",
            root_message(e)
        )),
        _ => Error::Engine(format!(
            "cannot talk to the Docker engine at {host}: {}; {start}",
            root_message(e)
        )),
    }
}

/// An error response from the engine, recognising version refusals.
fn server_error(host: &str, status: u16, message: &str) -> Error {
    let lower = message.to_ascii_lowercase();
    if lower.contains("http request to an https server") {
        return Error::Engine(format!(
            "the Docker engine at {host} expects TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem"
        ));
    }
    if lower.contains("too old") || lower.contains("too new") {
        return Error::Engine(format!(
            "the Docker engine at {host} refused the API version: {message} (layerscope needs API {}.{} or later)",
            MIN_API.0, MIN_API.1
        ));
    }
    Error::Engine(format!(
        "the Docker engine at {host} answered {status}: {}",
        message.trim()
    ))
}

/// An error from a request made after connecting.
fn request_error(e: &ApiError, host: &str, what: &str) -> Error {
    match e {
        ApiError::DockerResponseServerError {
            status_code,
            message,
        } if *status_code != 404 => match server_error(host, *status_code, message) {
            Error::Engine(m) => Error::Engine(format!("{what}: {m}")),
            other => other,
        },
        _ => match connect_error(e, host) {
            Error::Engine(m) => Error::Engine(format!("{what}: {m}")),
            other => other,
        },
    }
}

/// Load images from the engine, concurrently, in the order given.
pub fn load_many(names: &[String], opts: &LoadOptions) -> Result<Vec<Image>, Error> {
    load_tracked(names, opts, &Tracker::new(names).images)
}

/// [`load_many`], counting each image's progress in `progress` (one per
/// name). Must not be called from inside a tokio runtime.
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

/// The `repo:tag` names of the engine's images (empty if it cannot list them).
pub async fn local_tags(docker: &Docker) -> Vec<String> {
    docker
        .list_images(Some(ListImagesOptions::default()))
        .await
        .map(|imgs| {
            imgs.into_iter()
                .flat_map(|i| i.repo_tags)
                .filter(|t| t != "<none>:<none>")
                .collect()
        })
        .unwrap_or_default()
}

async fn not_found(docker: &Docker, name: &str) -> Error {
    let local = local_tags(docker).await;
    let similar = similar_names(name, &local, 5);
    let hint = "no pull is done implicitly: add --pull to pull it";
    if similar.is_empty() {
        Error::Engine(format!(
            "{name}: no such image in the Docker engine (no local image has a similar name; {hint})"
        ))
    } else {
        Error::Engine(format!(
            "{name}: no such image in the Docker engine; similar local images: {} ({hint})",
            similar.join(", ")
        ))
    }
}

/// Up to `max` of `candidates` whose names resemble `want`, closest first.
pub fn similar_names(want: &str, candidates: &[String], max: usize) -> Vec<String> {
    fn repo(s: &str) -> &str {
        let s = s.split('@').next().unwrap_or(s);
        let s = s
            .strip_prefix("docker.io/library/")
            .or_else(|| s.strip_prefix("docker.io/"))
            .unwrap_or(s);
        match s.rfind(':') {
            Some(i) if !s[i..].contains('/') => &s[..i],
            _ => s,
        }
    }
    let w = repo(want).to_ascii_lowercase();
    let w_last = w.rsplit('/').next().unwrap_or(&w).to_string();
    let mut scored: Vec<(usize, &String)> = candidates
        .iter()
        .filter_map(|c| {
            let r = repo(c).to_ascii_lowercase();
            let last = r.rsplit('/').next().unwrap_or(&r);
            let d = levenshtein(&w_last, last);
            let close = d <= (w_last.len().max(last.len()) / 3).max(2);
            let contains = !w_last.is_empty()
                && w_last.len() >= 2
                && (last.contains(&w_last) || w_last.contains(last));
            let common = common_prefix(&w_last, last) >= 3;
            (close || contains || common).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(max)
        .map(|(_, c)| c.clone())
        .collect()
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Inspect, export and index one image.
async fn load_one(
    docker: &Docker,
    name: &str,
    progress: Arc<ImageProgress>,
    opts: &LoadOptions,
) -> Result<Image, Error> {
    let name = name.strip_prefix("docker:").unwrap_or(name);
    let stall = stall_timeout()?;
    let info = inspect(docker, name).await?;
    let source = format!("docker:{name}");
    if let Some(cache) = opts.cache.clone().filter(|_| !opts.verify) {
        let (info2, opts2, source2) = (info.clone(), opts.clone(), source.clone());
        let cached =
            tokio::task::spawn_blocking(move || load_cached(&cache, &info2, &source2, &opts2))
                .await
                .ok()
                .flatten();
        if let Some(image) = cached {
            return Ok(finish(image, name, &info));
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
    Ok(finish(image, name, &info))
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
    let mut slots: Vec<Option<LayerIndex>> = Vec::new();
    slots.resize_with(diff_ids.len(), || None);
    std::thread::scope(|s| {
        let chunks = slots.chunks_mut(diff_ids.len().div_ceil(threads).max(1));
        for (k, chunk) in chunks.enumerate() {
            let first = k * diff_ids.len().div_ceil(threads).max(1);
            let ids = &diff_ids;
            s.spawn(move || {
                for (j, slot) in chunk.iter_mut().enumerate() {
                    *slot = cache.layer(&ids[first + j]);
                }
            });
        }
    });
    let indexes: Vec<LayerIndex> = slots.into_iter().collect::<Option<_>>()?;
    let plan = Plan {
        config,
        config_digest: config_id,
        tags: Vec::new(),
        layer_sizes: vec![None; diff_ids.len()],
        layers: diff_ids,
    };
    assemble(plan, indexes, source, opts).ok()
}

/// Does `name` (as typed) name the tag `tag`?
fn tag_is(name: &str, tag: &str) -> bool {
    let full = |s: &str| -> String {
        let last = s.rsplit('/').next().unwrap_or(s);
        if last.contains(':') || s.contains('@') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    };
    full(name) == full(tag)
}

/// Pull an image from its registry (`--pull`). Quiet; one-line errors.
pub fn pull(name: &str) -> Result<(), Error> {
    let rt = runtime()?;
    rt.block_on(async {
        let docker = connect().await?;
        pull_with(&docker, name).await
    })
}

/// `name[:tag]` or `name@digest` to the fromImage/tag pair the API wants
/// (without a tag the engine would pull every tag).
pub fn split_tag(name: &str) -> (String, String) {
    if name.contains('@') {
        return (name.to_string(), String::new());
    }
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (
            name[..slash + i].to_string(),
            name[slash + i + 1..].to_string(),
        ),
        None => (name.to_string(), "latest".to_string()),
    }
}

async fn pull_with(docker: &Docker, name: &str) -> Result<(), Error> {
    let host = docker_host();
    let (image, tag) = split_tag(name);
    let opts = CreateImageOptions {
        from_image: Some(image),
        tag: (!tag.is_empty()).then_some(tag),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(opts), None, None);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            let msg = match &e {
                ApiError::DockerResponseServerError { message, .. } => message.clone(),
                ApiError::DockerStreamError { error } => error.clone(),
                _ => return Err(request_error(&e, &host, &format!("pulling {name}"))),
            };
            return Err(pull_error(name, &msg));
        }
    }
    Ok(())
}

/// One line for a failed pull, telling "no registry answered" apart from
/// "the registry has no such image".
pub fn pull_error(name: &str, msg: &str) -> Error {
    let lower = msg.to_ascii_lowercase();
    let offline = [
        "dial tcp",
        "no such host",
        "i/o timeout",
        "timeout",
        "connection refused",
        "network is unreachable",
        "tls handshake",
        "lookup ",
        "eof",
        "proxyconnect",
        "certificate",
    ];
    let msg = msg.trim();
    if offline.iter().any(|k| lower.contains(k)) {
        Error::Engine(format!(
            "cannot pull {name}: no registry answered ({msg}); check the network or the engine's proxy settings, or use a local image"
        ))
    } else if lower.contains("not found")
        || lower.contains("manifest unknown")
        || lower.contains("pull access denied")
    {
        Error::Engine(format!(
            "cannot pull {name}: the registry has no such image, or it needs a login ({msg})"
        ))
    } else {
        Error::Engine(format!("cannot pull {name}: {msg}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_names_the_socket() {
        let e = ApiError::IOError {
            err: io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        };
        let msg = connect_error(&e, "unix:///var/run/docker.sock").to_string();
        assert!(
            msg.starts_with("permission denied on the Docker socket /var/run/docker.sock"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn refused_connection_says_how_to_start() {
        let e = ApiError::IOError {
            err: io::Error::new(io::ErrorKind::ConnectionRefused, "refused"),
        };
        let msg = connect_error(&e, "tcp://127.0.0.1:1").to_string();
        assert!(msg.contains("cannot reach the Docker engine at tcp://127.0.0.1:1"));
        assert!(msg.contains("DOCKER_HOST"));
    }

    #[test]
    fn old_api_is_refused_with_its_version() {
        let msg = check_api_version("unix:///x", (1, 12))
            .expect_err("too old")
            .to_string();
        assert!(msg.contains("API 1.12"), "{msg}");
        assert!(check_api_version("unix:///x", (1, 41)).is_ok());
        assert!(check_api_version("unix:///x", (1, 100)).is_ok());
    }

    #[test]
    fn similar_names_rank_close_ones_first() {
        let local: Vec<String> = [
            "go-app-single:latest",
            "go-app-multi:latest",
            "big-app:latest",
            "golang-local:1.19",
            "postgres:16",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = similar_names("go-app-singel", &local, 5);
        assert_eq!(s.first().map(String::as_str), Some("go-app-single:latest"));
        assert!(!s.contains(&"postgres:16".to_string()));
        assert!(similar_names("zzzzzz", &local, 5).is_empty());
        assert!(similar_names("go-app", &local, 1).len() == 1);
    }

    #[test]
    fn tags_split_for_pull() {
        assert_eq!(
            split_tag("golang:1.22-alpine"),
            ("golang".into(), "1.22-alpine".into())
        );
        assert_eq!(split_tag("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(
            split_tag("reg:5000/a/b"),
            ("reg:5000/a/b".into(), "latest".into())
        );
        assert_eq!(split_tag("a@sha256:00").1, "");
    }

    #[test]
    fn pull_errors_tell_offline_from_missing() {
        let m = pull_error(
            "golang:1.22",
            "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host",
        )
        .to_string();
        assert!(m.contains("no registry answered"), "{m}");
        let m = pull_error("x/y", "manifest unknown").to_string();
        assert!(m.contains("no such image"), "{m}");
    }

    #[test]
    fn asked_tag_comes_first() {
        assert!(tag_is("go-app", "go-app:latest"));
        assert!(!tag_is("go-app:v2", "go-app:latest"));
    }
}
