//! The layer-index cache: a layer's index is a function of its content, so it
//! is stored under the layer's diff_id (the sha256 of its uncompressed tar)
//! and reused by every later run and every image that shares the layer. An
//! engine image whose config and layers are all cached is analysed without
//! exporting it.
//!
//! Layout: `<dir>/v<FORMAT>/layers/<hex>` and `<dir>/v<FORMAT>/configs/<hex>`
//! (image configs, keyed by the image id, which is their own sha256). Every
//! file is `MAGIC`, the payload's length and xxh3-128, then the payload
//! (zstd-compressed postcard for layers, the raw JSON for configs). Files are
//! written to a temporary name and renamed, so readers and concurrent runs
//! see whole entries or none; a file that fails its checksum is deleted,
//! reported once and rebuilt. A file's mtime is its last use: least recently
//! used entries are evicted above the size cap.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use twox_hash::XxHash3_128;

use crate::index::layer::LayerIndex;

/// Version of what a cached layer index holds. Bump it whenever
/// `LayerIndex`, `Entry` or `PathTree`'s serialized form changes, or the
/// indexer starts keeping different things (e.g. `wants_capture`).
/// 2: this round (package-graph records captured: apt extended_states, apk
/// world, pip RECORDs, npm lock files; storage and registry reads).
pub const FORMAT: u32 = 2;

const MAGIC: &[u8; 8] = b"lscache\x01";
const HEADER: usize = 8 + 8 + 16;

/// Default size cap (`LAYERSCOPE_CACHE_MAX_SIZE` overrides it).
pub const DEFAULT_MAX_BYTES: u64 = 2_000_000_000;

/// Temporary files older than this are leftovers of a killed run: eviction
/// removes them after an hour, `cache prune` after a minute (a running
/// writer holds one for milliseconds).
const STALE_TEMP: Duration = Duration::from_secs(3600);
const TEMP_IN_USE: Duration = Duration::from_secs(60);

/// The cache directory and its cap.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
    /// Problems met while reading or writing, reported by the caller once.
    notes: Mutex<Vec<String>>,
    /// Damaged entries met (path, why), reported together.
    damaged: Mutex<Vec<(PathBuf, String)>>,
}

/// What `layerscope cache info` shows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Usage {
    pub layers: u64,
    pub layer_bytes: u64,
    pub configs: u64,
    pub config_bytes: u64,
    /// Bytes in directories of other FORMAT versions (removed by prune).
    pub stale_bytes: u64,
    pub oldest: Option<SystemTime>,
    pub newest: Option<SystemTime>,
}

impl Usage {
    pub fn bytes(&self) -> u64 {
        self.layer_bytes + self.config_bytes
    }
}

/// What a prune or an eviction removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub files: u64,
    pub bytes: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Layer,
    Config,
    /// An engine image id that is not its config's digest (the containerd
    /// image store's ids are manifest digests): holds the config digest.
    Alias,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Layer, Kind::Config, Kind::Alias];

    fn dir(self) -> &'static str {
        match self {
            Kind::Layer => "layers",
            Kind::Config => "configs",
            Kind::Alias => "images",
        }
    }
}

/// What one engine image puts in the cache after a cold run.
pub struct ImageEntries<'a> {
    /// The id the engine's inspect gave.
    pub image_id: &'a str,
    /// The config's own digest and bytes.
    pub config_id: &'a str,
    pub config: &'a [u8],
    /// (diff_id, index encoded with [`encode_layer`]) for each layer whose
    /// content was hashed and matched its diff_id.
    pub layers: Vec<(&'a str, &'a [u8])>,
}

impl Cache {
    /// The cache at `dir` (created when first written).
    pub fn at(dir: PathBuf, max_bytes: u64) -> Cache {
        Cache {
            dir,
            max_bytes,
            notes: Mutex::new(Vec::new()),
            damaged: Mutex::new(Vec::new()),
        }
    }

    /// The user's cache: `$XDG_CACHE_HOME/layerscope`, else
    /// `~/.cache/layerscope`; the cap from `LAYERSCOPE_CACHE_MAX_SIZE`.
    pub fn from_env() -> Result<Cache, String> {
        let dir = default_dir().ok_or_else(|| {
            "no cache directory (neither XDG_CACHE_HOME nor HOME is set)".to_string()
        })?;
        let max = match std::env::var("LAYERSCOPE_CACHE_MAX_SIZE") {
            Ok(v) => crate::units::parse_size(&v)
                .map_err(|e| format!("LAYERSCOPE_CACHE_MAX_SIZE: {e}"))?,
            Err(_) => DEFAULT_MAX_BYTES,
        };
        Ok(Cache::at(dir, max))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn version_dir(&self) -> PathBuf {
        self.dir.join(format!("v{FORMAT}"))
    }

    fn path(&self, kind: Kind, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| self.version_dir().join(kind.dir()).join(hex))
    }

    /// [`Cache::layer`] for each diff_id, decoded on `threads` threads.
    pub fn layers(&self, diff_ids: &[&str], threads: usize) -> Vec<Option<LayerIndex>> {
        let mut slots: Vec<Option<LayerIndex>> = Vec::new();
        slots.resize_with(diff_ids.len(), || None);
        let per = diff_ids.len().div_ceil(threads.max(1)).max(1);
        std::thread::scope(|s| {
            for (chunk, ids) in slots.chunks_mut(per).zip(diff_ids.chunks(per)) {
                s.spawn(move || {
                    for (slot, id) in chunk.iter_mut().zip(ids) {
                        *slot = self.layer(id);
                    }
                });
            }
        });
        slots
    }

    /// The index of the layer with this diff_id, if cached and intact.
    pub fn layer(&self, diff_id: &str) -> Option<LayerIndex> {
        let path = self.path(Kind::Layer, diff_id)?;
        let payload = self.read(&path)?;
        let decoded = zstd::stream::decode_all(&payload[..])
            .map_err(|e| e.to_string())
            .and_then(|raw| postcard::from_bytes::<LayerIndex>(&raw).map_err(|e| e.to_string()))
            .and_then(|idx| check(&idx).map(|()| idx));
        match decoded {
            Ok(idx) => Some(idx),
            Err(e) => {
                self.discard(&path, &format!("cannot be decoded ({e})"));
                None
            }
        }
    }

    /// The cached config of an engine image, by the id inspect gives: its
    /// digest and JSON, checked against that digest.
    pub fn image_config(&self, image_id: &str) -> Option<(String, Vec<u8>)> {
        let config_id = match self.path(Kind::Alias, image_id) {
            Some(p) if p.is_file() => {
                let target = self.read(&p)?;
                String::from_utf8(target).ok()?
            }
            _ => image_id.to_string(),
        };
        let path = self.path(Kind::Config, &config_id)?;
        let json = self.read(&path)?;
        if sha256_id(&json) != config_id {
            self.discard(&path, "does not match its digest");
            return None;
        }
        Some((config_id, json))
    }

    /// Store what a cold run of one engine image indexed, then evict other
    /// entries down to the cap. An image bigger than the cap alone is not
    /// stored (it would evict everything and still not fit).
    pub fn store_image(&self, e: &ImageEntries) {
        if sha256_id(e.config) != e.config_id {
            return;
        }
        let bytes: u64 =
            e.layers.iter().map(|(_, b)| b.len() as u64).sum::<u64>() + e.config.len() as u64;
        if bytes > self.max_bytes {
            self.note(format!(
                "the layer indexes of {} take {}, more than the cache's cap ({}): not cached (see LAYERSCOPE_CACHE_MAX_SIZE)",
                e.image_id,
                crate::units::size(bytes),
                crate::units::size(self.max_bytes)
            ));
            return;
        }
        let mut keep = Vec::new();
        let mut put = |kind: Kind, digest: &str, payload: &[u8]| {
            if let Some(p) = self.path(kind, digest) {
                self.write_once(&p, payload);
                keep.push(p);
            }
        };
        for (diff_id, payload) in &e.layers {
            put(Kind::Layer, diff_id, payload);
        }
        put(Kind::Config, e.config_id, e.config);
        if e.image_id != e.config_id {
            put(Kind::Alias, e.image_id, e.config_id.as_bytes());
        }
        self.evict(&keep);
    }

    /// Read and check one entry; marks it used. A damaged entry is removed
    /// and noted.
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let mut f = File::open(path).ok()?;
        let mut data = Vec::new();
        if let Err(e) = f.read_to_end(&mut data) {
            self.note(format!("cache entry {} unreadable: {e}", path.display()));
            return None;
        }
        match unframe(&data) {
            Ok(_) => {
                // Last use, for eviction; a read-only cache still works.
                let _ = f.set_modified(SystemTime::now());
                // The payload in place: no second buffer of its size.
                data.drain(..HEADER);
                Some(data)
            }
            Err(why) => {
                self.discard(path, why);
                None
            }
        }
    }

    fn discard(&self, path: &Path, why: &str) {
        let _ = fs::remove_file(path);
        if let Ok(mut d) = self.damaged.lock() {
            d.push((path.to_path_buf(), why.to_string()));
        }
    }

    /// Write an entry atomically, unless it is there already (then it is
    /// only marked used). Not synced to disk: a file torn by a crash fails
    /// its checksum and is rebuilt. Failing to cache is not an error for
    /// the analysis: it is noted and the run goes on.
    fn write_once(&self, path: &Path, payload: &[u8]) {
        if let Ok(f) = File::options().write(true).open(path)
            && f.metadata()
                .is_ok_and(|m| m.len() == (HEADER + payload.len()) as u64)
        {
            let _ = f.set_modified(SystemTime::now());
            return;
        }
        let result = (|| -> io::Result<()> {
            let dir = path.parent().unwrap_or(&self.dir);
            fs::create_dir_all(dir)?;
            let mut tmp = tempfile::Builder::new().prefix(".tmp").tempfile_in(dir)?;
            tmp.write_all(&frame_header(payload))?;
            tmp.write_all(payload)?;
            tmp.persist(path).map_err(|e| e.error)?;
            Ok(())
        })();
        if let Err(e) = result {
            self.note(format!(
                "cannot write to the layer cache in {}: {e}",
                self.dir.display()
            ));
        }
    }

    fn note(&self, msg: String) {
        if let Ok(mut n) = self.notes.lock()
            && !n.contains(&msg)
        {
            n.push(msg);
        }
    }

    /// Problems met so far, emptied: each once, damaged entries in one line.
    pub fn take_notes(&self) -> Vec<String> {
        let mut notes = self
            .notes
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default();
        let damaged = self
            .damaged
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        match damaged.as_slice() {
            [] => {}
            [(p, why)] => notes.insert(
                0,
                format!("cache entry {} {why}: ignored, it will be rebuilt", p.display()),
            ),
            [(p, why), ..] => notes.insert(
                0,
                format!(
                    "{} cache entries were damaged (first: {} {why}): ignored, they will be rebuilt",
                    damaged.len(),
                    p.display()
                ),
            ),
        }
        notes
    }

    /// Sizes and counts of what is stored.
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for f in self.walk().entries {
            if f.kind == Kind::Layer {
                u.layers += 1;
                u.layer_bytes += f.len;
            } else {
                // Aliases are a few bytes each: counted with the configs.
                u.configs += u64::from(f.kind == Kind::Config);
                u.config_bytes += f.len;
            }
            u.oldest = Some(u.oldest.map_or(f.used, |o| o.min(f.used)));
            u.newest = Some(u.newest.map_or(f.used, |o| o.max(f.used)));
        }
        u.stale_bytes = self.stale_dirs().iter().map(|d| dir_bytes(d)).sum();
        u
    }

    /// Remove entries last used before `now - older_than` (all entries when
    /// `older_than` is `None`), other format versions and temporary files
    /// a killed run left (not those a running one is writing).
    pub fn prune(&self, older_than: Option<Duration>) -> Removed {
        let now = SystemTime::now();
        let walk = self.walk();
        let mut removed = self.remove_stale_dirs();
        for f in walk.entries {
            let age = now.duration_since(f.used).unwrap_or_default();
            if older_than.is_none_or(|limit| age > limit) && fs::remove_file(&f.path).is_ok() {
                removed.files += 1;
                removed.bytes += f.len;
            }
        }
        remove_temps(&walk.temps, TEMP_IN_USE);
        removed
    }

    /// Evict least recently used entries until the cache fits its cap,
    /// sparing `keep` (what this run just stored or used).
    pub fn evict(&self, keep: &[PathBuf]) -> Removed {
        let walk = self.walk();
        let mut removed = self.remove_stale_dirs();
        let mut total: u64 = walk.entries.iter().map(|f| f.len).sum();
        if total > self.max_bytes {
            let mut files = walk.entries;
            files.sort_by_key(|f| f.used);
            for f in files.iter().filter(|f| !keep.contains(&f.path)) {
                if total <= self.max_bytes {
                    break;
                }
                if fs::remove_file(&f.path).is_ok() {
                    total -= f.len;
                    removed.files += 1;
                    removed.bytes += f.len;
                }
            }
        }
        remove_temps(&walk.temps, STALE_TEMP);
        removed
    }

    /// Every entry and temporary file of this format version, in one pass.
    fn walk(&self) -> Walk {
        let mut walk = Walk::default();
        for kind in Kind::ALL {
            let Ok(rd) = fs::read_dir(self.version_dir().join(kind.dir())) else {
                continue;
            };
            for e in rd.flatten() {
                // lstat: a symlink planted in the cache is neither followed
                // nor counted.
                let Ok(md) = e.metadata() else { continue };
                if !md.is_file() {
                    continue;
                }
                let stored = Stored {
                    kind,
                    path: e.path(),
                    len: md.len(),
                    used: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                };
                if e.file_name().to_string_lossy().starts_with('.') {
                    walk.temps.push(stored);
                } else {
                    walk.entries.push(stored);
                }
            }
        }
        walk
    }

    /// Directories of other format versions: never read, only removed.
    fn stale_dirs(&self) -> Vec<PathBuf> {
        let current = format!("v{FORMAT}");
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name != current
                    && name.len() > 1
                    && name.starts_with('v')
                    && name[1..].bytes().all(|b| b.is_ascii_digit())
            })
            .map(|e| e.path())
            .collect()
    }

    fn remove_stale_dirs(&self) -> Removed {
        let mut removed = Removed::default();
        for d in self.stale_dirs() {
            let bytes = dir_bytes(&d);
            if fs::remove_dir_all(&d).is_ok() {
                removed.bytes += bytes;
            }
        }
        removed
    }
}

#[derive(Default)]
struct Walk {
    entries: Vec<Stored>,
    temps: Vec<Stored>,
}

/// Remove temporary files older than `min_age`.
fn remove_temps(temps: &[Stored], min_age: Duration) {
    let now = SystemTime::now();
    for t in temps {
        if now.duration_since(t.used).unwrap_or_default() >= min_age {
            let _ = fs::remove_file(&t.path);
        }
    }
}

struct Stored {
    kind: Kind,
    path: PathBuf,
    len: u64,
    used: SystemTime,
}

fn default_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|v| Path::new(v).is_absolute());
    match xdg {
        Some(x) => Some(PathBuf::from(x).join("layerscope")),
        None => {
            let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
            Some(PathBuf::from(home).join(".cache").join("layerscope"))
        }
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// `sha256:<hex>` of some bytes: an image config's id, a layer's diff_id.
pub fn sha256_id(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::units::hex(&Sha256::digest(bytes)))
}

/// A layer index as the cache stores it (done on the indexing threads, so
/// only the file write is left for later).
pub fn encode_layer(idx: &LayerIndex) -> Option<Vec<u8>> {
    let raw = postcard::to_stdvec(idx).ok()?;
    zstd::bulk::compress(&raw, -3).ok()
}

fn frame_header(payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    h.extend_from_slice(&XxHash3_128::oneshot(payload).to_le_bytes());
    h
}

/// Check a cache file's frame; the payload follows the header.
fn unframe(data: &[u8]) -> Result<(), &'static str> {
    if data.len() < HEADER || &data[..8] != MAGIC {
        return Err("is not a layerscope cache file");
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&data[8..16]);
    let mut sum = [0u8; 16];
    sum.copy_from_slice(&data[16..32]);
    let payload = &data[HEADER..];
    if u64::from_le_bytes(len) != payload.len() as u64 {
        return Err("is truncated");
    }
    if u128::from_le_bytes(sum) != XxHash3_128::oneshot(payload) {
        return Err("fails its checksum");
    }
    Ok(())
}

/// Node references in a decoded index must point into its tree.
fn check(idx: &LayerIndex) -> Result<(), String> {
    let n = idx.tree.len() as u32;
    let bad = idx.entries.iter().any(|e| e.node >= n)
        || idx.whiteouts.iter().chain(&idx.opaque).any(|&w| w >= n)
        || idx.captured.iter().any(|(c, _)| *c >= n);
    if bad {
        Err("a node reference is out of range".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::layer::index_tar;

    fn layer() -> LayerIndex {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in [
            ("etc/os-release", &b"ID=debian\n"[..]),
            ("usr/bin/x", b"xx"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, data).unwrap();
        }
        index_tar(&b.into_inner().unwrap()[..]).unwrap()
    }

    const ID: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    fn put_layer(cache: &Cache, diff_id: &str, idx: &LayerIndex) -> PathBuf {
        let p = cache.path(Kind::Layer, diff_id).unwrap();
        cache.write_once(&p, &encode_layer(idx).unwrap());
        p
    }

    #[test]
    fn a_layer_round_trips_and_corruption_is_noted_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().to_path_buf(), u64::MAX);
        assert!(cache.layer(ID).is_none());
        let idx = layer();
        let path = put_layer(&cache, ID, &idx);
        let back = cache.layer(ID).unwrap();
        assert_eq!(back.size, idx.size);
        assert_eq!(back.entries.len(), idx.entries.len());
        assert_eq!(back.captured, idx.captured);
        assert!(cache.take_notes().is_empty());

        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        fs::write(&path, &data).unwrap();
        assert!(cache.layer(ID).is_none());
        assert!(!path.exists(), "a corrupt entry is removed");
        let notes = cache.take_notes();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("fails its checksum"), "{notes:?}");

        put_layer(&cache, ID, &idx);
        fs::write(&path, &fs::read(&path).unwrap()[..40]).unwrap();
        assert!(cache.layer(ID).is_none());
        assert!(cache.take_notes()[0].contains("truncated"));

        // Several damaged entries make one line.
        let other = "sha256:0000000000000000000000000000000000000000000000000000000000000002";
        for id in [ID, other] {
            let p = put_layer(&cache, id, &idx);
            fs::write(&p, b"garbage").unwrap();
            assert!(cache.layer(id).is_none());
        }
        let notes = cache.take_notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("2 cache entries were damaged"),
            "{notes:?}"
        );
    }

    #[test]
    fn digests_that_are_not_lowercase_sha256_hex_are_never_paths() {
        let cache = Cache::at(PathBuf::from("/nonexistent"), 0);
        assert!(cache.path(Kind::Layer, "sha256:../../etc/passwd").is_none());
        assert!(cache.path(Kind::Layer, "md5:abc").is_none());
        let upper = format!("sha256:{}", "AB".repeat(32));
        assert!(cache.path(Kind::Layer, &upper).is_none());
        assert!(cache.path(Kind::Layer, &upper.to_lowercase()).is_some());
    }

    #[test]
    fn configs_are_checked_against_their_digest_and_found_by_alias() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().to_path_buf(), u64::MAX);
        let json = br#"{"os":"linux"}"#;
        let id = sha256_id(json);
        let store = |config_id: &str, image_id: &str| {
            cache.store_image(&ImageEntries {
                image_id,
                config_id,
                config: json,
                layers: Vec::new(),
            })
        };
        store(ID, ID);
        assert!(
            cache.image_config(ID).is_none(),
            "not stored under a wrong id"
        );
        store(&id, &id);
        assert_eq!(
            cache.image_config(&id).unwrap(),
            (id.clone(), json.to_vec())
        );
        // The containerd store's ids are manifest digests.
        let manifest = "sha256:00000000000000000000000000000000000000000000000000000000000000aa";
        store(&id, manifest);
        assert_eq!(cache.image_config(manifest).unwrap().0, id);
    }

    #[test]
    fn eviction_removes_the_least_recently_used_first_and_spares_this_run() {
        let dir = tempfile::tempdir().unwrap();
        let idx = layer();
        let ids: Vec<String> = (1..=4).map(|i| format!("sha256:{i:064x}")).collect();
        let big = Cache::at(dir.path().to_path_buf(), u64::MAX);
        let paths: Vec<PathBuf> = ids.iter().map(|id| put_layer(&big, id, &idx)).collect();
        let one = big.usage().layer_bytes / 4;
        // Age them: ids[1] oldest, then ids[0], then ids[2], then ids[3].
        let now = SystemTime::now();
        for (i, age) in [(1, 400), (0, 300), (2, 200), (3, 100)] {
            let f = File::options().write(true).open(&paths[i]).unwrap();
            f.set_modified(now - Duration::from_secs(age)).unwrap();
        }
        let small = Cache::at(dir.path().to_path_buf(), 2 * one);
        // ids[1] is spared (this run used it): ids[0] and ids[2] go.
        let removed = small.evict(std::slice::from_ref(&paths[1]));
        assert_eq!(removed.files, 2);
        assert!(!paths[0].exists() && !paths[2].exists());
        assert!(small.layer(&ids[1]).is_some());
        assert!(small.layer(&ids[3]).is_some());

        let pruned = small.prune(Some(Duration::from_secs(3600)));
        assert_eq!(pruned.files, 0, "both were just used");
        assert_eq!(small.prune(None).files, 2);
        assert_eq!(small.usage(), Usage::default());
    }

    #[test]
    fn an_image_bigger_than_the_cap_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().to_path_buf(), 10);
        let json = br#"{"os":"linux","padding":"................"}"#;
        let id = sha256_id(json);
        cache.store_image(&ImageEntries {
            image_id: &id,
            config_id: &id,
            config: json,
            layers: Vec::new(),
        });
        assert!(cache.image_config(&id).is_none());
        assert!(cache.take_notes()[0].contains("more than the cache's cap"));
    }
}
