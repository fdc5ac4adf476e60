//! Saved images: `docker save` archives (legacy and OCI layouts), OCI image
//! layout directories and `oci-archive` tars.
//!
//! Two ways in, one way out. A seekable file is scanned for its headers
//! first, so only the chosen image's layers are read, several at a time. A
//! stream (the engine's export) is read once, every layer indexed as it
//! arrives. Either way the small JSON files are kept in memory and
//! [`plan`] decides which layers make up the image.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::rc::Rc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::blob::{hex, index_blob, pipe, read_head};
use super::{Counter, LoadOptions};
use crate::error::Error;
use crate::image::{ConfigFile, Image, ImageFacts};
use crate::index::layer::{LayerIndex, MAX_CAPTURED_IMAGE, normalize};
use crate::index::merge::{LayerMeta, build_image};

/// Nested OCI indexes followed at most.
const MAX_INDEXES: usize = 64;

/// Docker refuses images with more layers than this; the index keeps layer
/// numbers in 16 bits.
const MAX_LAYERS: usize = 4096;

/// JSON files above this size are not metadata.
const MAX_META: u64 = 16 << 20;

/// Which image of the source to load, and how.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: ConfigFile,
    pub config_digest: String,
    pub tags: Vec<String>,
    /// Archive paths of the layer blobs, bottom first.
    pub layers: Vec<String>,
    /// Blob sizes the manifest declares (OCI descriptors), by layer.
    pub layer_sizes: Vec<Option<u64>>,
}

// ---- docker save manifest.json -------------------------------------------

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

// ---- OCI index and manifest ----------------------------------------------

#[derive(Deserialize)]
struct OciDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    platform: Option<OciPlatform>,
}

#[derive(Deserialize, Clone)]
struct OciPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Deserialize)]
struct OciManifest {
    config: OciDescriptor,
    #[serde(default)]
    layers: Vec<OciDescriptor>,
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

const CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

const LAYER_TYPES: [&str; 9] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
];

/// The names (annotations) given to an index manifest or image manifest
/// and to the indexes above it. Shared, not copied, down the tree: copying
/// them for every descriptor let a small layout fill memory.
#[derive(Default)]
struct Names {
    own: Vec<String>,
    parent: Option<Rc<Names>>,
    /// Does one of these names, or of the parents', match the name asked for?
    matches: bool,
}

impl Names {
    fn new(own: Vec<String>, parent: &Rc<Names>, want: Option<&str>) -> Self {
        let matches =
            parent.matches || want.is_some_and(|w| own.iter().any(|t| tag_matches(w, t) || t == w));
        Names {
            own,
            parent: Some(Rc::clone(parent)),
            matches,
        }
    }

    /// Every name, outermost index first.
    fn all(&self) -> impl Iterator<Item = &str> {
        let mut levels = Vec::new();
        let mut n = Some(self);
        while let Some(x) = n {
            levels.push(&x.own);
            n = x.parent.as_deref();
        }
        levels.into_iter().rev().flatten().map(String::as_str)
    }
}

/// An image manifest found in the layout.
struct Found {
    names: Rc<Names>,
    platform: Option<OciPlatform>,
    path: String,
}

fn blob_path(digest: &str) -> Result<String, String> {
    let (algo, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("invalid digest {digest:?}"))?;
    // The digest becomes a path: never let it leave blobs/.
    let algo_ok = !algo.is_empty()
        && algo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+._-".contains(c));
    let hex_ok = !hex.is_empty()
        && hex
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '=' || c == '_' || c == '-');
    if !algo_ok || !hex_ok || algo.starts_with('.') {
        return Err(format!("invalid digest {digest:?}"));
    }
    Ok(format!("blobs/{algo}/{hex}"))
}

/// Does a requested name match one of an image's tags?
fn tag_matches(want: &str, tag: &str) -> bool {
    let strip = |s: &str| -> String {
        let s = s
            .strip_prefix("docker.io/library/")
            .or_else(|| s.strip_prefix("docker.io/"))
            .unwrap_or(s)
            .to_string();
        let last = s.rsplit('/').next().unwrap_or(&s);
        if last.contains(':') {
            s
        } else {
            format!("{s}:latest")
        }
    };
    want == tag || strip(want) == strip(tag)
}

fn parse_json<T: for<'de> Deserialize<'de>>(name: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{name}: invalid JSON ({e})"))
}

/// Decide which image to load from the metadata files. `get` returns a
/// small file's contents by archive path.
pub fn plan(get: &dyn Fn(&str) -> Option<Vec<u8>>, want: Option<&str>) -> Result<Plan, String> {
    if let Some(bytes) = get("manifest.json") {
        let entries: Vec<DockerManifestEntry> = parse_json("manifest.json", &bytes)?;
        let all_tags: Vec<String> = entries
            .iter()
            .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
            .collect();
        let chosen = match want {
            Some(w) => entries
                .iter()
                .find(|e| e.repo_tags.iter().flatten().any(|t| tag_matches(w, t)))
                .ok_or_else(|| {
                    format!(
                        "no image tagged {w:?} in the archive (it has: {})",
                        list(all_tags.iter().map(String::as_str))
                    )
                })?,
            None if entries.len() == 1 => &entries[0],
            None if entries.is_empty() => return Err("manifest.json lists no image".into()),
            None => {
                return Err(format!(
                    "the archive holds {} images; pick one by tag: {}",
                    entries.len(),
                    list(all_tags.iter().map(String::as_str))
                ));
            }
        };
        for p in std::iter::once(&chosen.config).chain(&chosen.layers) {
            check_member_path(p)?;
        }
        let config_bytes = get(&chosen.config)
            .ok_or_else(|| format!("config {} named by manifest.json is missing", chosen.config))?;
        let config: ConfigFile = parse_json(&chosen.config, &config_bytes)?;
        return checked(Plan {
            config,
            config_digest: format!("sha256:{}", hex(&Sha256::digest(&config_bytes))),
            tags: chosen.repo_tags.clone().unwrap_or_default(),
            layers: chosen
                .layers
                .iter()
                .map(|l| normalize(l).to_string())
                .collect(),
            layer_sizes: vec![None; chosen.layers.len()],
        });
    }
    let Some(index) = get("index.json") else {
        return Err("neither manifest.json (docker save) nor index.json (OCI layout) found".into());
    };
    // Walk the index (and nested indexes) to every image manifest.
    let root = Rc::new(Names::default());
    let mut found: Vec<Found> = Vec::new();
    let mut queue: Vec<(String, Rc<Names>)> = vec![("index.json".into(), root)];
    let mut index = Some(index);
    // Blobs are not checked against their digests: guard against an index
    // that names itself, or fans out without end. Checked before a blob is
    // read, so an index listing one nested index many times reads it once.
    let mut visited: std::collections::HashSet<String> =
        std::collections::HashSet::from(["index.json".to_string()]);
    while let Some((name, inherited)) = queue.pop() {
        let bytes = match index.take() {
            Some(b) => b,
            None => get(&name).ok_or_else(|| format!("index blob {name} is missing"))?,
        };
        let idx: OciIndex = parse_json(&name, &bytes)?;
        for d in idx.manifests {
            let own: Vec<String> = [
                "io.containerd.image.name",
                "org.opencontainers.image.ref.name",
            ]
            .iter()
            .filter_map(|key| d.annotations.get(*key).cloned())
            .collect();
            let names = Rc::new(Names::new(own, &inherited, want));
            let path = blob_path(&d.digest)?;
            if INDEX_TYPES.contains(&d.media_type.as_str()) {
                if !visited.insert(path.clone()) {
                    return Err(format!(
                        "{path}: index refers to itself (a cycle of nested indexes)"
                    ));
                }
                if visited.len() > MAX_INDEXES {
                    return Err(format!("more than {MAX_INDEXES} nested indexes"));
                }
                queue.push((path, names));
            } else if d
                .platform
                .as_ref()
                .is_some_and(|p| p.architecture == "unknown")
            {
                continue; // attestation manifests
            } else {
                found.push(Found {
                    names,
                    platform: d.platform,
                    path,
                });
            }
        }
    }
    let all_tags = || list(found.iter().flat_map(|f| f.names.all()));
    let mut candidates: Vec<&Found> = match want {
        Some(_) => found.iter().filter(|f| f.names.matches).collect(),
        None => found.iter().collect(),
    };
    if candidates.len() > 1 {
        // Several platforms of one image: prefer this machine's.
        let host = host_arch();
        let same: Vec<_> = candidates
            .iter()
            .copied()
            .filter(|f| {
                f.platform
                    .as_ref()
                    .is_some_and(|p| p.architecture == host && p.os == "linux")
            })
            .collect();
        if !same.is_empty() {
            candidates = same;
        }
    }
    let chosen = match (candidates.len(), want) {
        (1, _) => candidates[0],
        (0, Some(w)) => {
            return Err(format!(
                "no image named {w:?} in the layout (it has: {})",
                all_tags()
            ));
        }
        (0, None) => return Err("index.json lists no image manifest".into()),
        _ => {
            return Err(format!(
                "the layout holds {} images; pick one by name: {}",
                candidates.len(),
                all_tags()
            ));
        }
    };
    let mbytes =
        get(&chosen.path).ok_or_else(|| format!("manifest blob {} is missing", chosen.path))?;
    let manifest: OciManifest = parse_json(&chosen.path, &mbytes)?;
    let config_type = manifest.config.media_type.as_str();
    if !config_type.is_empty() && !CONFIG_TYPES.contains(&config_type) {
        return Err(format!(
            "{}: not a container image (its config has media type {config_type})",
            chosen.path
        ));
    }
    for l in &manifest.layers {
        if !LAYER_TYPES.contains(&l.media_type.as_str()) && !l.media_type.is_empty() {
            return Err(format!(
                "layer {}: unknown media type {}",
                l.digest, l.media_type
            ));
        }
    }
    let config_path = blob_path(&manifest.config.digest)?;
    let config_bytes =
        get(&config_path).ok_or_else(|| format!("config blob {config_path} is missing"))?;
    if let Some(want) = manifest.config.size
        && want != config_bytes.len() as u64
    {
        return Err(format!(
            "config blob {config_path}: the manifest declares {want} bytes but the blob has {}",
            config_bytes.len()
        ));
    }
    let config: ConfigFile = parse_json(&config_path, &config_bytes)?;
    let layers = manifest
        .layers
        .iter()
        .map(|l| blob_path(&l.digest))
        .collect::<Result<_, _>>()?;
    checked(Plan {
        config,
        config_digest: manifest.config.digest.clone(),
        tags: chosen.names.all().map(str::to_string).collect(),
        layers,
        layer_sizes: manifest.layers.iter().map(|l| l.size).collect(),
    })
}

/// Refuse plans the index cannot hold, and diff_ids that are not digests,
/// before any layer is read.
fn checked(plan: Plan) -> Result<Plan, String> {
    if plan.layers.len() > MAX_LAYERS {
        return Err(format!(
            "the manifest lists {} layers; layerscope reads at most {MAX_LAYERS}",
            plan.layers.len()
        ));
    }
    let diff_ids = plan.config.rootfs.as_ref().map(|r| r.diff_ids.as_slice());
    for (i, d) in diff_ids.unwrap_or_default().iter().enumerate() {
        if !valid_digest(d) {
            return Err(format!(
                "the config's diff_id for layer {} is {d:?}, not a digest (sha256:<64 hex digits>)",
                i + 1
            ));
        }
    }
    Ok(plan)
}

/// `sha256:<64 hex>` (or sha384, sha512), as Docker's digests are.
fn valid_digest(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    let len = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A layer blob's size against the size its descriptor declares.
fn check_size(plan: &Plan, i: usize, actual: u64) -> Result<(), String> {
    match plan.layer_sizes.get(i).copied().flatten() {
        Some(want) if want > actual => Err(format!(
            "truncated blob: the manifest declares {want} bytes but the blob has {actual}"
        )),
        Some(want) if want < actual => Err(format!(
            "the blob has {actual} bytes, more than the {want} its manifest declares"
        )),
        _ => Ok(()),
    }
}

/// One line for a failure to read the outer archive's next header.
fn outer_error(e: &std::io::Error, last: Option<&(String, u64)>, file: &File, len: u64) -> String {
    let msg = e.to_string();
    let Some((name, end)) = last else {
        return format!("invalid tar archive: {msg} (in the first header)");
    };
    // Where the failed header starts: after the last member's padded data.
    let at = end.div_ceil(512) * 512;
    if msg == "failed to read entire block" {
        let mut tail = Vec::new();
        let mut f = file;
        let zeros = f.seek(SeekFrom::Start(at)).is_ok()
            && f.take(512).read_to_end(&mut tail).is_ok()
            && tail.iter().all(|&b| b == 0);
        let what = if zeros {
            "its end-of-archive marker"
        } else {
            "a tar header"
        };
        return format!(
            "truncated archive: the file ends inside {what}, {} bytes into the block at byte {at} (after member {name})",
            len.saturating_sub(at)
        );
    }
    if msg == "archive header checksum mismatch" {
        return format!(
            "corrupt archive: the tar header at byte {at} has a bad checksum (after member {name})"
        );
    }
    format!("invalid tar archive: {msg} (after member {name})")
}

/// Paths named by manifest.json stay inside the archive or layout.
fn check_member_path(p: &str) -> Result<(), String> {
    if p.starts_with('/') || p.split('/').any(|c| c == "..") {
        return Err(format!("manifest.json names {p:?}, outside the archive"));
    }
    Ok(())
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Names listed in an error message: the first few (cut if very long),
/// then how many more.
fn list<'a>(tags: impl IntoIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 20;
    const WIDTH: usize = 200;
    let mut tags = tags.into_iter();
    let shown: Vec<String> = tags
        .by_ref()
        .take(SHOWN)
        .map(|t| match t.char_indices().nth(WIDTH) {
            Some((i, _)) => format!("{}...", &t[..i]),
            None => t.to_string(),
        })
        .collect();
    let more = tags.count();
    match (shown.is_empty(), more) {
        (true, _) => "no tags".to_string(),
        (false, 0) => shown.join(", "),
        (false, n) => format!("{} and {n} more", shown.join(", ")),
    }
}

/// Pair layers with history and merge them into an image.
pub fn assemble(
    plan: Plan,
    indexes: Vec<LayerIndex>,
    source: &str,
    opts: &LoadOptions,
) -> Result<Image, String> {
    let diff_ids = plan.config.rootfs.clone().unwrap_or_default().diff_ids;
    if !diff_ids.is_empty() && diff_ids.len() != plan.layers.len() {
        return Err(format!(
            "the manifest lists {} layers but the config's rootfs has {} diff_ids",
            plan.layers.len(),
            diff_ids.len()
        ));
    }
    let mut history = plan.config.history.iter().filter(|h| !h.empty_layer);
    let mut layers = Vec::with_capacity(indexes.len());
    for (i, idx) in indexes.into_iter().enumerate() {
        let expected = diff_ids.get(i).cloned().unwrap_or_default();
        if let Some(actual) = idx.diff_id.as_ref().filter(|_| opts.verify)
            && !expected.is_empty()
            && *actual != expected
        {
            return Err(format!(
                "layer {} ({}): content does not match its diff_id (config says {expected}, content is {actual})",
                i + 1,
                plan.layers[i]
            ));
        }
        let h = history.next();
        let meta = LayerMeta {
            diff_id: if expected.is_empty() {
                idx.diff_id.clone().unwrap_or_default()
            } else {
                expected
            },
            blob: plan.layers[i].clone(),
            created: h.and_then(|h| h.created.clone()),
            created_by: h.and_then(|h| h.created_by.clone()),
            comment: h.and_then(|h| h.comment.clone()),
        };
        layers.push((meta, idx));
    }
    let mut facts =
        ImageFacts::from_config(plan.config_digest.clone(), plan.tags.clone(), &plan.config);
    facts.source = source.to_string();
    build_image(facts, layers)
}

// ---- seekable files and directories ---------------------------------------

/// Where an archive member lives.
#[derive(Debug, Clone)]
struct Member {
    offset: u64,
    size: u64,
}

/// Load an image from a tar archive on disk (`docker save` or `oci-archive`).
pub fn load_archive_file(
    path: &Path,
    want: Option<&str>,
    opts: &LoadOptions,
) -> Result<Image, Error> {
    let shown = path.display().to_string();
    let fail = |msg: String| Error::input(&shown, msg);
    // Opening a FIFO would wait for a writer, and a device never ends.
    let kind = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if kind.is_dir() {
        return Err(fail(
            "a directory, not an archive (an OCI layout directory is read with oci:DIR)".into(),
        ));
    }
    if !kind.is_file() {
        return Err(fail(
            "not a regular file (a FIFO, device or socket); save the image to a file first".into(),
        ));
    }
    let file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut head = Vec::new();
    (&file)
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| fail(e.to_string()))?;
    if head.is_empty() {
        return Err(fail(
            "an empty file (expected docker save or oci-archive output)".into(),
        ));
    }
    if !super::blob::looks_like_tar(&head) {
        return Err(fail(
            "not a tar archive (expected docker save or oci-archive output)".into(),
        ));
    }
    (&file)
        .seek(SeekFrom::Start(0))
        .map_err(|e| fail(e.to_string()))?;
    let file_len = file.metadata().map_err(|e| fail(e.to_string()))?.len();
    let mut members: HashMap<String, Member> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut meta: HashMap<String, Vec<u8>> = HashMap::new();
    let mut ar = tar::Archive::new(BufReader::with_capacity(64 * 1024, &file));
    let entries = ar.entries_with_seek().map_err(|e| fail(e.to_string()))?;
    // The last member read and where its data ends, for errors.
    let mut last: Option<(String, u64)> = None;
    for item in entries {
        let mut entry = item.map_err(|e| fail(outer_error(&e, last.as_ref(), &file, file_len)))?;
        let outer = outer_member(&entry).map_err(fail)?;
        let size = entry.size();
        let offset = entry.raw_file_position();
        let name = match outer {
            Outer::File(name) => name,
            Outer::Link(name, target) => {
                last = Some((name.clone(), offset + size));
                links.insert(name, target);
                continue;
            }
            Outer::Other(name) => {
                last = Some((name, offset + size));
                continue;
            }
        };
        last = Some((name.clone(), offset + size));
        if size <= MAX_META {
            let mut first = [0u8; 1];
            let n = entry.read(&mut first).map_err(|e| fail(e.to_string()))?;
            if n == 1 && (first[0] == b'{' || first[0] == b'[') {
                let mut data = first.to_vec();
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| fail(format!("{name}: {e}")))?;
                meta.insert(name.clone(), data);
            }
        }
        members.insert(name, Member { offset, size });
    }
    if last.is_none() {
        return Err(fail(
            "an empty archive: it holds no files (expected docker save or oci-archive output)"
                .into(),
        ));
    }
    // Check the archive is complete: the last member must end inside the file.
    for (name, m) in &members {
        if m.offset + m.size > file_len {
            return Err(fail(format!(
                "truncated archive: {name} declares {} bytes but the file ends {} bytes into them",
                m.size,
                file_len.saturating_sub(m.offset)
            )));
        }
    }
    // Small files are read when the plan asks for them: the JSON ones are
    // in memory already; any other (a config that is not JSON) is read
    // from the file, so that the error names what is wrong with it.
    let odd: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
    let get = |p: &str| -> Option<Vec<u8>> {
        let real = resolve(&links, p);
        if let Some(data) = meta.get(&real) {
            return Some(data.clone());
        }
        let m = members.get(&real)?;
        if m.size > MAX_META {
            odd.borrow_mut().get_or_insert(format!(
                "{p} is {} bytes, too large to be metadata (at most {MAX_META})",
                m.size
            ));
            return None;
        }
        let mut data = Vec::new();
        let mut f = &file;
        f.seek(SeekFrom::Start(m.offset)).ok()?;
        f.take(m.size).read_to_end(&mut data).ok()?;
        Some(data)
    };
    let plan = plan(&get, want).map_err(|e| fail(odd.take().unwrap_or(e)))?;
    let jobs: Vec<(String, Member)> = plan
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let real = resolve(&links, l);
            members
                .get(&real)
                .cloned()
                .map(|m| (l.clone(), m))
                .ok_or_else(|| {
                    fail(format!(
                        "layer {} ({l}): named by the manifest but missing from the archive",
                        i + 1
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    let sizes: Vec<u64> = jobs.iter().map(|(_, m)| m.size).collect();
    let budget = AtomicU64::new(MAX_CAPTURED_IMAGE);
    let indexes = index_parallel(&sizes, opts, |i| {
        let (name, m) = &jobs[i];
        let layer = |e: String| format!("layer {} ({name}): {e}", i + 1);
        check_size(&plan, i, m.size).map_err(layer)?;
        let mut f = File::open(path).map_err(|e| layer(e.to_string()))?;
        f.seek(SeekFrom::Start(m.offset))
            .map_err(|e| layer(e.to_string()))?;
        let counter = opts.layer_counter(i, m.size);
        let r = Counted::new(
            BufReader::with_capacity(256 * 1024, f.take(m.size)),
            counter.as_ref(),
        );
        index_blob(r, opts.verify, &budget).map_err(layer)
    })
    .map_err(fail)?;
    assemble(plan, indexes, &shown, opts).map_err(fail)
}

/// Load an image from an OCI image layout directory.
pub fn load_oci_dir(dir: &Path, want: Option<&str>, opts: &LoadOptions) -> Result<Image, Error> {
    let shown = dir.display().to_string();
    let fail = |msg: String| Error::input(&shown, msg);
    if !dir.join("index.json").is_file() {
        return Err(fail("not an OCI image layout (no index.json)".into()));
    }
    // A blob that is not a regular file (a FIFO would block, /dev/zero
    // never ends) or is too large is not read; the error says why.
    let odd: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
    let get = |p: &str| -> Option<Vec<u8>> {
        let full = dir.join(p);
        let m = std::fs::metadata(&full).ok()?;
        if !m.is_file() {
            odd.borrow_mut()
                .get_or_insert(format!("{p} is not a regular file"));
            return None;
        }
        if m.len() > MAX_META {
            odd.borrow_mut().get_or_insert(format!(
                "{p} is {} bytes, too large to be metadata (at most {MAX_META})",
                m.len()
            ));
            return None;
        }
        std::fs::read(full).ok()
    };
    let plan = plan(&get, want).map_err(|e| fail(odd.take().unwrap_or(e)))?;
    let sizes: Vec<u64> = plan
        .layers
        .iter()
        .map(|l| std::fs::metadata(dir.join(l)).map_or(0, |m| m.len()))
        .collect();
    let budget = AtomicU64::new(MAX_CAPTURED_IMAGE);
    let indexes = index_parallel(&sizes, opts, |i| {
        let name = &plan.layers[i];
        let layer = |e: String| format!("layer {} ({name}): {e}", i + 1);
        let f = File::open(dir.join(name)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                layer("named by the manifest but missing from the layout".into())
            }
            _ => layer(e.to_string()),
        })?;
        // Read no more than the file holds (a blob could be a device).
        let len = f.metadata().map_err(|e| layer(e.to_string()))?;
        if !len.is_file() {
            return Err(layer("not a regular file".into()));
        }
        check_size(&plan, i, len.len()).map_err(layer)?;
        let counter = opts.layer_counter(i, len.len());
        let r = Counted::new(
            BufReader::with_capacity(256 * 1024, f.take(len.len())),
            counter.as_ref(),
        );
        index_blob(r, opts.verify, &budget).map_err(layer)
    })
    .map_err(fail)?;
    assemble(plan, indexes, &shown, opts).map_err(fail)
}

/// Index layers on as many threads as the machine has cores, largest
/// first (so one big layer does not finish last, alone); `sizes` are the
/// layers' byte counts. The first error (by layer order) wins.
fn index_parallel<F>(sizes: &[u64], opts: &LoadOptions, f: F) -> Result<Vec<LayerIndex>, String>
where
    F: Fn(usize) -> Result<LayerIndex, String> + Sync,
{
    let n = sizes.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, n.max(1));
    let results: Vec<Mutex<Option<Result<LayerIndex, String>>>> =
        (0..n).map(|_| Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        loop {
            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(&i) = order.get(k) else { break };
            let r = f(i);
            if let Ok(mut slot) = results[i].lock() {
                *slot = Some(r);
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
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err("indexing thread failed".into()))
        })
        .collect()
}

// ---- streams ---------------------------------------------------------------

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
    let image = assemble(plan, indexes, source, opts).map_err(fail)?;
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

/// What an outer archive member is to the loaders.
enum Outer {
    /// A regular file, by normalized path.
    File(String),
    /// A symlink or hardlink: its path and the member it resolves to
    /// (legacy `docker save` links repeated layers to the first copy).
    Link(String, String),
    /// Directories and anything else, by path.
    Other(String),
}

fn outer_member<R: Read>(entry: &tar::Entry<R>) -> Result<Outer, String> {
    let name = normalize(&entry.path().map_err(|e| e.to_string())?.to_string_lossy()).to_string();
    let kind = entry.header().entry_type();
    Ok(match kind {
        tar::EntryType::Symlink | tar::EntryType::Link => match entry.link_name() {
            Ok(Some(target)) => {
                let resolved = resolve_link(&name, &target.to_string_lossy(), kind);
                Outer::Link(name, resolved)
            }
            _ => Outer::Other(name),
        },
        tar::EntryType::Regular | tar::EntryType::Continuous => Outer::File(name),
        _ => Outer::Other(name),
    })
}

/// Resolve a link inside an archive to the member path it names.
fn resolve_link(name: &str, target: &str, kind: tar::EntryType) -> String {
    if kind == tar::EntryType::Link {
        return normalize(target).to_string();
    }
    let base = match name.rfind('/') {
        Some(i) => &name[..i],
        None => "",
    };
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|p| !p.is_empty()).collect()
    };
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

fn resolve(links: &HashMap<String, String>, path: &str) -> String {
    let mut p = normalize(path).to_string();
    for _ in 0..8 {
        match links.get(&p) {
            Some(t) => p = t.clone(),
            None => break,
        }
    }
    p
}

/// A reader that adds the bytes it passes to a shared counter.
pub struct Counted<'a, R> {
    inner: R,
    counter: Option<&'a Counter>,
}

impl<'a, R> Counted<'a, R> {
    pub fn new(inner: R, counter: Option<&'a Counter>) -> Self {
        Counted { inner, counter }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = self.counter {
            c.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_loosely() {
        assert!(tag_matches("go-app", "go-app:latest"));
        assert!(tag_matches(
            "go-app:latest",
            "docker.io/library/go-app:latest"
        ));
        assert!(!tag_matches("go-app:v2", "go-app:latest"));
        assert!(tag_matches("reg:5000/x", "reg:5000/x:latest"));
    }

    #[test]
    fn links_resolve_relative_to_their_directory() {
        assert_eq!(
            resolve_link("abc/layer.tar", "../def/layer.tar", tar::EntryType::Symlink),
            "def/layer.tar"
        );
        assert_eq!(
            resolve_link("abc/layer.tar", "def/layer.tar", tar::EntryType::Link),
            "def/layer.tar"
        );
    }
}
