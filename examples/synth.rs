//! Synthetic `docker save` archives of a chosen number of tar entries, to
//! show how layerscope's time and memory grow with entries (issue 7).
//!
//! ```sh
//! cargo run --release --example synth -- --entries 250000 -o /tmp/synth-250k.tar
//! cargo run --release --example synth -- --entries 1000000 --layers 8 --seed 3 \
//!     -o /tmp/synth-1m.tar --expect /tmp/synth-1m.json
//! ```
//!
//! Options: `--entries N` (tar entries over all layers, whiteouts included;
//! default 250000), `--layers N` (default 6, at least 2), `--seed S`
//! (default 1), `-o PATH` (required), `--expect PATH` (write the generator's
//! own figures as JSON: what layerscope should report), `--tag NAME`.
//!
//! The same options give the same bytes. The image looks like a real one
//! built in steps, in the proportions of a Debian-based application image:
//!
//! - layer 1: a Debian-like base (merged-/usr symlinks, `etc/os-release`,
//!   packages with docs, man pages, binaries, shared libraries with their
//!   `.so.N` symlinks, translations in ~40 locales, data trees, git-style
//!   hardlinked commands, and `var/lib/dpkg/status` + `info/*.list`);
//! - then, cycling: more packages (rewriting the dpkg status), Python
//!   site-packages with `__pycache__` and `.dist-info`, a pip HTTP cache
//!   (hex names five levels deep), `node_modules` (scoped and nested
//!   packages, `.bin` symlinks), a Go source tree, application sources;
//! - every layer after the first also churns what lies below it: deletes
//!   package directories and single files (whiteouts), rewrites files
//!   (new content) and chmods some (metadata-only copies), hides one
//!   directory's lower content with an opaque marker, and re-lists the
//!   parent directories of everything it touches, as Docker does.
//!
//! Names mix fixed ones that recur in every package (`index.js`,
//! `__init__.py`, `LICENSE`) with generated words, so a good share of the
//! names are distinct. Files are small (median a few hundred bytes) so the
//! archive's size is dominated by its entries, not by content; license
//! texts and dpkg `INSTALLER`-style files repeat, so some content is
//! duplicated. Each tar is written in directory-walk order, as `docker save`
//! does, with USTAR prefixes for long paths (GNU long names past 255 bytes).
//!
//! While writing, the generator applies each layer to its own model of the
//! overlay file system (the same rules as overlayfs and Docker: opaque
//! markers, then whiteouts, then entries), so it knows what the final file
//! system holds, which bytes every layer hid and how many entries each
//! layer added, modified and rewrote. `tests/synth.rs` compares those
//! figures with layerscope's report.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use twox_hash::XxHash3_128;

/// Every entry of layer `l` gets mtime `MTIME + l`.
const MTIME: u64 = 1_700_000_000;

// ---- options and results ---------------------------------------------------

#[derive(Debug, Clone)]
pub struct Options {
    /// Tar entries over all layers (whiteouts and opaque markers included).
    pub entries: usize,
    pub layers: usize,
    pub seed: u64,
    pub tag: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            entries: 250_000,
            layers: 6,
            seed: 1,
            tag: "synth:latest".into(),
        }
    }
}

/// What the generator wrote and what layerscope should find, per layer.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LayerExpect {
    /// What the layer is made of.
    pub recipe: &'static str,
    pub diff_id: String,
    /// Tar entries, whiteouts and opaque markers included.
    pub tar_entries: u64,
    /// Entries that are files, directories, symlinks or hardlinks.
    pub entries: u64,
    pub tar_bytes: u64,
    /// File sizes plus symlink target lengths (Docker's layer size).
    pub size_bytes: u64,
    pub added: u64,
    pub modified: u64,
    pub metadata_only: u64,
    pub removed: u64,
    pub opaque_dirs: u64,
    /// This layer's bytes hidden by later layers.
    pub hidden_later_bytes: u64,
    /// Lower layers' bytes this layer hid.
    pub hides_bytes: u64,
}

/// The generator's accounting of the whole image.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Expected {
    pub tar_entries: u64,
    pub archive_bytes: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub whiteouts: u64,
    pub opaque_markers: u64,
    /// Distinct path components over all entries.
    pub distinct_names: u64,
    pub size_bytes: u64,
    pub final_bytes: u64,
    pub final_entries: u64,
    pub hidden_bytes: u64,
    pub overwritten_bytes: u64,
    /// Same-content rewrites by a RUN layer (copy-ups).
    pub metadata_only_bytes: u64,
    /// Same-content rewrites by a COPY/ADD layer (re-copies).
    pub recopied_bytes: u64,
    pub deleted_bytes: u64,
    pub opaque_bytes: u64,
    /// Extra copies of identical non-empty files in the final file system.
    pub duplicate_bytes: u64,
    pub layers: Vec<LayerExpect>,
}

// ---- randomness ------------------------------------------------------------

/// SplitMix64: small, fast, and the same on every platform.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64) < p * (1u64 << 53) as f64
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// `len` bytes of content determined by `seed`.
fn content(seed: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    let mut r = Rng(seed ^ 0xA076_1D64_78BD_642F);
    while out.len() < len {
        let w = r.next().to_le_bytes();
        let n = (len - out.len()).min(8);
        out.extend_from_slice(&w[..n]);
    }
}

/// A file size: mostly a few hundred bytes, some empty, a few tens of KB.
fn small_size(rng: &mut Rng) -> u32 {
    match rng.range(0, 99) {
        0..=7 => 0,
        8..=69 => rng.range(1, 600) as u32,
        70..=94 => rng.range(601, 3000) as u32,
        _ => rng.range(3001, 20_000) as u32,
    }
}

// ---- names -----------------------------------------------------------------

const SYL: [&str; 64] = [
    "al", "an", "ar", "ba", "be", "bo", "ca", "ce", "co", "cu", "da", "de", "di", "do", "el", "en",
    "er", "fa", "fi", "fo", "ga", "ge", "go", "ha", "he", "hi", "in", "io", "is", "ja", "ka", "ke",
    "ki", "la", "le", "li", "lo", "ma", "me", "mi", "mo", "na", "ne", "ni", "no", "or", "pa", "pe",
    "pi", "po", "ra", "re", "ri", "ro", "sa", "se", "si", "ta", "te", "ti", "to", "un", "va", "zo",
];

fn word(rng: &mut Rng) -> String {
    let n = match rng.range(0, 9) {
        0..=4 => 2,
        5..=8 => 3,
        _ => 4,
    };
    (0..n).map(|_| *rng.pick(&SYL)).collect()
}

/// An identifier: a word, two joined, or a word and a number.
fn ident(rng: &mut Rng, sep: &str) -> String {
    match rng.range(0, 9) {
        0 | 1 => format!("{}{sep}{}", word(rng), word(rng)),
        2 => format!("{}{}", word(rng), rng.range(1, 99)),
        _ => word(rng),
    }
}

fn hex_name(rng: &mut Rng, len: usize) -> String {
    let mut s = String::with_capacity(len);
    while s.len() < len {
        s.push_str(&format!("{:016x}", rng.next()));
    }
    s.truncate(len);
    s
}

const LANGS: [&str; 40] = [
    "af", "ar", "ast", "be", "bg", "ca", "cs", "da", "de", "el", "en_GB", "eo", "es", "et", "eu",
    "fi", "fr", "ga", "gl", "he", "hr", "hu", "id", "it", "ja", "ko", "lt", "nb", "nl", "pl", "pt",
    "pt_BR", "ro", "ru", "sk", "sl", "sr", "sv", "tr", "zh_CN",
];

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

fn base(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// Is `path` `dir` or below it?
fn within(path: &str, dir: &str) -> bool {
    path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

// ---- the overlay model -----------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    Hardlink,
}

/// A visible path of the model.
#[derive(Debug, Clone, Copy)]
struct Vis {
    layer: u16,
    kind: Kind,
    mode: u32,
    uid: u32,
    /// File size, or symlink target length.
    size: u64,
    /// xxh3-128 of the content (files), of the target (links).
    content: u128,
    /// What generated a file's bytes (to copy them unchanged).
    seed: u64,
    /// A hardlink or a hardlink's target: never changed on its own.
    pinned: bool,
}

impl Vis {
    /// Bytes as Docker counts them (a hardlink's inode is its target's).
    fn disk_bytes(&self) -> u64 {
        match self.kind {
            Kind::File | Kind::Symlink => self.size,
            Kind::Dir | Kind::Hardlink => 0,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Dir {
        path: String,
        mode: u32,
        uid: u32,
    },
    File {
        path: String,
        mode: u32,
        uid: u32,
        seed: u64,
        len: u32,
        pinned: bool,
    },
    Symlink {
        path: String,
        target: String,
    },
    Hardlink {
        path: String,
        target: String,
    },
    /// Deletes `path` (the tar member is `.wh.NAME` beside it).
    Whiteout(String),
    /// Hides the lower content of a directory (`DIR/.wh..wh..opq`).
    Opaque(String),
}

impl Op {
    /// The tar member's name (no trailing slash).
    fn member(&self) -> String {
        match self {
            Op::Dir { path, .. }
            | Op::File { path, .. }
            | Op::Symlink { path, .. }
            | Op::Hardlink { path, .. } => path.clone(),
            Op::Whiteout(p) => join(parent(p), &format!(".wh.{}", base(p))),
            Op::Opaque(d) => join(d, ".wh..wh..opq"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Why {
    Overwritten,
    MetadataOnly,
    Deleted,
    Opaque,
}

// ---- one layer's plan ------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recipe {
    Base,
    Packages,
    Python,
    PipCache,
    Node,
    Go,
    App,
}

/// Layers after the base cycle through these, with these shares.
const CYCLE: [(Recipe, u32); 6] = [
    (Recipe::Packages, 8),
    (Recipe::Python, 15),
    (Recipe::PipCache, 10),
    (Recipe::Node, 25),
    (Recipe::Go, 12),
    (Recipe::App, 5),
];

const SITE_PACKAGES: &str = "usr/local/lib/python3.12/site-packages";
const PIP_CACHE: &str = "root/.cache/pip";
const NODE_MODULES: &str = "app/node_modules";
const GO_SRC: &str = "usr/local/go/src";
const APP_SRC: &str = "app/src";

impl Recipe {
    fn name(self) -> &'static str {
        match self {
            Recipe::Base => "base (debian-like)",
            Recipe::Packages => "apt packages",
            Recipe::Python => "python site-packages",
            Recipe::PipCache => "pip cache",
            Recipe::Node => "node_modules",
            Recipe::Go => "go source tree",
            Recipe::App => "application sources",
        }
    }
    fn created_by(self) -> &'static str {
        match self {
            Recipe::Base => "/bin/sh -c #(nop) ADD file:synthetic in / ",
            Recipe::Packages => {
                "RUN /bin/sh -c apt-get update && apt-get install -y tools # buildkit"
            }
            Recipe::Python => "RUN /bin/sh -c pip install -r requirements.txt # buildkit",
            Recipe::PipCache => "RUN /bin/sh -c pip download -d /tmp/wheels . # buildkit",
            Recipe::Node => "RUN /bin/sh -c npm ci # buildkit",
            Recipe::Go => "COPY /usr/local/go /usr/local/go # buildkit",
            Recipe::App => "COPY . /app # buildkit",
        }
    }
}

/// State kept across layers.
#[derive(Debug, Default)]
struct World {
    /// The visible file system so far.
    model: BTreeMap<String, Vis>,
    /// Directories that directly hold files (for file-level churn).
    leaf_dirs: Vec<String>,
    /// Package directories (for directory deletes and opaque markers).
    pkg_roots: Vec<String>,
    /// dpkg: every package so far, in order, and the names taken.
    packages: Vec<String>,
    package_names: BTreeSet<String>,
    /// Contents of text files (dpkg database, os-release), by seed.
    texts: Vec<String>,
}

/// Random-content seeds stay below this; seeds from here up name a text
/// of `World::texts`.
const TEXT_SEED: u64 = 1 << 63;
const LICENSES: u64 = 6;
const LICENSE_SEED: u64 = 0x11CE_0000;
const INSTALLER_SEED: u64 = 0x1257_A11E;

impl World {
    fn bytes(&self, seed: u64, len: u32, out: &mut Vec<u8>) {
        if seed >= TEXT_SEED {
            out.clear();
            out.extend_from_slice(self.texts[(seed - TEXT_SEED) as usize].as_bytes());
            assert_eq!(out.len(), len as usize);
        } else {
            content(seed, len as usize, out);
        }
    }
}

/// Builds one layer's operations.
struct Plan<'w> {
    rng: Rng,
    world: &'w mut World,
    ops: Vec<Op>,
    /// Every path this layer lists (whiteout targets included).
    paths: BTreeSet<String>,
    /// Directories deleted or made opaque here: nothing else changes below.
    blocked: Vec<String>,
    budget: usize,
    /// Paths of the OS package being built (for its dpkg `.list`).
    owned: Option<Vec<String>>,
}

impl Plan<'_> {
    fn taken(&self, path: &str) -> bool {
        self.paths.contains(path) || self.world.model.contains_key(path)
    }

    /// `dir/name`, or a variant of it that is neither visible nor listed
    /// by this layer.
    fn fresh(&self, dir: &str, name: &str) -> String {
        let p = join(dir, name);
        if !self.taken(&p) {
            return p;
        }
        let (stem, ext) = match name.find('.') {
            Some(i) if i > 0 => name.split_at(i),
            _ => (name, ""),
        };
        (2..)
            .map(|i| join(dir, &format!("{stem}-{i}{ext}")))
            .find(|p| !self.taken(p))
            .unwrap_or(p)
    }

    fn blocked(&self, path: &str) -> bool {
        self.blocked.iter().any(|b| within(path, b))
    }

    /// Does this layer list `dir` or anything below it?
    fn touches(&self, dir: &str) -> bool {
        self.paths.contains(dir)
            || self
                .paths
                .range(format!("{dir}/")..format!("{dir}0"))
                .next()
                .is_some()
    }

    fn push(&mut self, path: &str, op: Op) {
        let fresh = self.paths.insert(path.to_string());
        assert!(fresh, "{path} listed twice in one layer");
        if let Some(owned) = &mut self.owned {
            owned.push(path.to_string());
        }
        self.ops.push(op);
        self.budget = self.budget.saturating_sub(1);
    }

    /// List a directory and its parents (as they are, when they exist).
    fn dir(&mut self, path: &str) {
        if path.is_empty() || self.paths.contains(path) {
            return;
        }
        self.dir(parent(path));
        let (mode, uid) = match self.world.model.get(path) {
            Some(v) => (v.mode, v.uid),
            None => (0o755, 0),
        };
        self.push(
            path,
            Op::Dir {
                path: path.to_string(),
                mode,
                uid,
            },
        );
    }

    fn file_seeded(&mut self, path: &str, mode: u32, seed: u64, len: u32) {
        self.dir(parent(path));
        let uid = if path.starts_with("app/") { 1000 } else { 0 };
        self.push(
            path,
            Op::File {
                path: path.to_string(),
                mode,
                uid,
                seed,
                len,
                pinned: false,
            },
        );
    }

    fn file(&mut self, path: &str, mode: u32, len: u32) {
        let seed = self.rng.next() >> 2;
        self.file_seeded(path, mode, seed, len);
    }

    fn text_file(&mut self, path: &str, text: String) {
        let seed = TEXT_SEED + self.world.texts.len() as u64;
        let len = text.len() as u32;
        self.world.texts.push(text);
        self.file_seeded(path, 0o644, seed, len);
    }

    fn license(&mut self, path: &str) {
        let which = self.rng.range(0, LICENSES - 1);
        self.file_seeded(path, 0o644, LICENSE_SEED + which, 1000 + 350 * which as u32);
    }

    fn symlink(&mut self, path: &str, target: &str) {
        self.dir(parent(path));
        self.push(
            path,
            Op::Symlink {
                path: path.to_string(),
                target: target.to_string(),
            },
        );
    }

    /// A file and hardlinks to it in the same directory (like git-core):
    /// they are deleted or hidden together, never one without the others.
    fn hardlinked(&mut self, target: &str, links: usize) {
        self.dir(parent(target));
        let len = self.rng.range(2000, 20_000) as u32;
        let seed = self.rng.next() >> 2;
        self.push(
            target,
            Op::File {
                path: target.to_string(),
                mode: 0o755,
                uid: 0,
                seed,
                len,
                pinned: true,
            },
        );
        for _ in 0..links {
            if self.budget == 0 {
                break;
            }
            // "git" sorts before "git-add": the link follows its target.
            let name = format!("{}-{}", base(target), word(&mut self.rng));
            let link = self.fresh(parent(target), &name);
            self.push(
                &link,
                Op::Hardlink {
                    path: link.clone(),
                    target: target.to_string(),
                },
            );
        }
    }

    /// A generic subtree: files named by `name`, up to `max_depth` levels.
    fn tree(&mut self, dir: &str, depth: u32, max_depth: u32, name: &dyn Fn(&mut Rng) -> String) {
        self.dir(dir);
        let mut placed = false;
        for _ in 0..self.rng.range(1, 10) {
            if self.budget == 0 {
                return;
            }
            let n = name(&mut self.rng);
            let p = self.fresh(dir, &n);
            if self.rng.chance(0.03) {
                let t = format!("../{}", name(&mut self.rng));
                self.symlink(&p, &t);
            } else {
                let mode = if self.rng.chance(0.05) { 0o755 } else { 0o644 };
                let len = small_size(&mut self.rng);
                self.file(&p, mode, len);
                placed = true;
            }
        }
        if placed {
            self.world.leaf_dirs.push(dir.to_string());
        }
        if depth >= max_depth {
            return;
        }
        let subdirs = match self.rng.range(0, 9) {
            0..=3 => 0,
            4..=6 => 1,
            7 | 8 => 2,
            _ => 3,
        };
        for _ in 0..subdirs {
            if self.budget == 0 {
                return;
            }
            let sub = {
                let n = ident(&mut self.rng, "_");
                self.fresh(dir, &n)
            };
            self.tree(&sub, depth + 1, max_depth, name);
        }
    }

    // ---- recipes -----------------------------------------------------------

    fn base_system(&mut self) {
        for (link, target) in [
            ("bin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("sbin", "usr/sbin"),
        ] {
            self.symlink(link, target);
        }
        for d in [
            "boot",
            "dev",
            "home",
            "media",
            "mnt",
            "opt",
            "proc",
            "root",
            "run",
            "srv",
            "sys",
            "tmp",
            "var/tmp",
            "var/log",
            "var/cache",
            "usr/sbin",
            "usr/lib64",
        ] {
            self.dir(d);
        }
        self.text_file("etc/os-release", OS_RELEASE.to_string());
        self.text_file("etc/debian_version", "12.8\n".to_string());
        for name in [
            "passwd",
            "group",
            "shadow",
            "hostname",
            "hosts",
            "nsswitch.conf",
        ] {
            let len = small_size(&mut self.rng);
            self.file(&format!("etc/{name}"), 0o644, len);
        }
    }

    /// A Debian package: docs, binaries, man pages, libraries, locales,
    /// data, and its `var/lib/dpkg/info/NAME.list`.
    fn os_package(&mut self) {
        let name = loop {
            let n = ident(&mut self.rng, "-");
            if self.world.package_names.insert(n.clone()) {
                break n;
            }
        };
        self.owned = Some(Vec::new());
        let doc = format!("usr/share/doc/{name}");
        self.license(&format!("{doc}/copyright"));
        let len = self.rng.range(200, 4000) as u32;
        self.file(&format!("{doc}/changelog.Debian.gz"), 0o644, len);
        if self.rng.chance(0.3) {
            let len = small_size(&mut self.rng);
            self.file(&format!("{doc}/README.Debian"), 0o644, len);
        }
        self.world.leaf_dirs.push(doc.clone());
        self.world.pkg_roots.push(doc);
        for _ in 0..self.rng.range(0, 3) {
            let bin = if self.rng.chance(0.5) {
                name.clone()
            } else {
                format!("{name}-{}", word(&mut self.rng))
            };
            let p = self.fresh("usr/bin", &bin);
            let len = self.rng.range(1000, 20_000) as u32;
            self.file(&p, 0o755, len);
            let man = self.fresh("usr/share/man/man1", &format!("{}.1.gz", base(&p)));
            let len = small_size(&mut self.rng);
            self.file(&man, 0o644, len);
        }
        if self.rng.chance(0.3) {
            let major = self.rng.range(0, 9);
            let lib = format!(
                "lib{name}.so.{major}.{}.{}",
                self.rng.range(0, 20),
                self.rng.range(0, 9)
            );
            let real = self.fresh("usr/lib/x86_64-linux-gnu", &lib);
            let len = self.rng.range(3000, 20_000) as u32;
            self.file(&real, 0o644, len);
            let link = self.fresh("usr/lib/x86_64-linux-gnu", &format!("lib{name}.so.{major}"));
            self.symlink(&link, base(&real));
        }
        if self.rng.chance(0.15) {
            let n = self.rng.range(20, LANGS.len() as u64) as usize;
            for lang in &LANGS[..n] {
                if self.budget == 0 {
                    break;
                }
                let p = format!("usr/share/locale/{lang}/LC_MESSAGES/{name}.mo");
                let len = small_size(&mut self.rng);
                self.file(&p, 0o644, len);
            }
        }
        if self.rng.chance(0.4) {
            let root = format!("usr/share/{name}");
            self.tree(&root, 0, 3, &|r| {
                let ext = *r.pick(&[".conf", ".txt", ".xml", ".json", ".png", ".svg", ".gz", ""]);
                format!("{}{ext}", ident(r, "_"))
            });
            self.world.pkg_roots.push(root);
        }
        if self.rng.chance(0.05) {
            let links = self.rng.range(2, 12) as usize;
            self.hardlinked(&format!("usr/lib/{name}-core/{name}"), links);
        }
        let owned = self.owned.take().unwrap_or_default();
        let mut list = String::from("/.\n");
        for p in owned {
            list.push('/');
            list.push_str(&p);
            list.push('\n');
        }
        self.text_file(&format!("var/lib/dpkg/info/{name}.list"), list);
        self.world.packages.push(name);
    }

    fn dpkg_status(&mut self) {
        let mut s = String::new();
        for p in &self.world.packages {
            s.push_str("Package: ");
            s.push_str(p);
            s.push_str("\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n");
        }
        self.text_file("var/lib/dpkg/status", s);
    }

    fn python_package(&mut self) {
        let name = ident(&mut self.rng, "_");
        let root = self.fresh(SITE_PACKAGES, &name);
        self.python_module_dir(&root, 0);
        self.world.pkg_roots.push(root.clone());
        if self.budget == 0 {
            return;
        }
        let version = format!(
            "{}.{}.{}",
            self.rng.range(0, 9),
            self.rng.range(0, 30),
            self.rng.range(0, 9)
        );
        let info = self.fresh(
            SITE_PACKAGES,
            &format!("{}-{version}.dist-info", base(&root)),
        );
        for f in ["METADATA", "RECORD", "WHEEL", "top_level.txt"] {
            let len = small_size(&mut self.rng);
            self.file(&format!("{info}/{f}"), 0o644, len);
        }
        self.file_seeded(&format!("{info}/INSTALLER"), 0o644, INSTALLER_SEED, 4);
        self.license(&format!("{info}/LICENSE"));
        self.world.leaf_dirs.push(info.clone());
        self.world.pkg_roots.push(info);
    }

    fn python_module_dir(&mut self, dir: &str, depth: u32) {
        self.dir(dir);
        self.file(&format!("{dir}/__init__.py"), 0o644, 0);
        let mut modules = Vec::new();
        for _ in 0..self.rng.range(1, 8) {
            if self.budget == 0 {
                return;
            }
            let m = ident(&mut self.rng, "_");
            let p = self.fresh(dir, &format!("{m}.py"));
            let len = small_size(&mut self.rng);
            self.file(&p, 0o644, len);
            modules.push(base(&p).trim_end_matches(".py").to_string());
        }
        self.world.leaf_dirs.push(dir.to_string());
        let cache = format!("{dir}/__pycache__");
        for m in std::iter::once("__init__".to_string()).chain(modules) {
            if self.budget == 0 {
                return;
            }
            let len = small_size(&mut self.rng) + 100;
            self.file(&format!("{cache}/{m}.cpython-312.pyc"), 0o644, len);
        }
        if depth < 4 {
            for _ in 0..self.rng.range(0, 2) {
                if self.budget == 0 {
                    return;
                }
                let sub = {
                    let n = ident(&mut self.rng, "_");
                    self.fresh(dir, &n)
                };
                self.python_module_dir(&sub, depth + 1);
            }
        }
    }

    /// One entry of pip's HTTP cache: `h/t/t/p/x/HASH` and `HASH.body`.
    fn pip_cache_entry(&mut self) {
        let h = hex_name(&mut self.rng, 61);
        let dir = format!(
            "{PIP_CACHE}/http-v2/{}/{}/{}/{}/{}",
            &h[0..1],
            &h[1..2],
            &h[2..3],
            &h[3..4],
            &h[4..5]
        );
        let len = self.rng.range(200, 800) as u32;
        self.file(&format!("{dir}/{}", &h[5..]), 0o600, len);
        if self.budget > 0 {
            let len = self.rng.range(1000, 20_000) as u32;
            self.file(&format!("{dir}/{}.body", &h[5..]), 0o600, len);
        }
    }

    fn node_package(&mut self, nm: &str, nest: u32) {
        let root = if self.rng.chance(0.15) {
            let scope = format!("{nm}/@{}", word(&mut self.rng));
            {
                let n = ident(&mut self.rng, "-");
                self.fresh(&scope, &n)
            }
        } else {
            {
                let n = ident(&mut self.rng, "-");
                self.fresh(nm, &n)
            }
        };
        self.dir(&root);
        self.world.pkg_roots.push(root.clone());
        let len = small_size(&mut self.rng) + 200;
        self.file(&format!("{root}/package.json"), 0o644, len);
        if self.rng.chance(0.8) {
            self.license(&format!("{root}/LICENSE"));
        }
        if self.rng.chance(0.7) {
            let len = small_size(&mut self.rng);
            self.file(&format!("{root}/README.md"), 0o644, len);
        }
        let len = small_size(&mut self.rng);
        self.file(&format!("{root}/index.js"), 0o644, len);
        self.world.leaf_dirs.push(root.clone());
        if self.budget == 0 {
            return;
        }
        let sub = *self.rng.pick(&["lib", "dist", "src", "build", "es"]);
        self.tree(&format!("{root}/{sub}"), 0, 4, &|r| {
            let ext = *r.pick(&[
                ".js", ".js", ".js", ".d.ts", ".js.map", ".mjs", ".cjs", ".json",
            ]);
            format!("{}{ext}", ident(r, "-"))
        });
        if self.budget > 0 && self.rng.chance(0.1) {
            let cmd = ident(&mut self.rng, "-");
            let target = self.fresh(&format!("{root}/bin"), &format!("{cmd}.js"));
            let len = small_size(&mut self.rng);
            self.file(&target, 0o755, len);
            let link = self.fresh(&format!("{nm}/.bin"), &cmd);
            let rel = format!("../{}", &target[nm.len() + 1..]);
            self.symlink(&link, &rel);
        }
        if nest < 3 && self.rng.chance(0.12) {
            let inner = format!("{root}/node_modules");
            for _ in 0..self.rng.range(1, 3) {
                if self.budget == 0 {
                    return;
                }
                self.node_package(&inner, nest + 1);
            }
        }
    }

    fn go_package(&mut self) {
        let root = {
            let n = word(&mut self.rng);
            self.fresh(GO_SRC, &n)
        };
        self.world.pkg_roots.push(root.clone());
        self.go_dir(&root, 0);
    }

    fn go_dir(&mut self, dir: &str, depth: u32) {
        self.dir(dir);
        for _ in 0..self.rng.range(2, 12) {
            if self.budget == 0 {
                return;
            }
            let stem = ident(&mut self.rng, "_");
            let p = self.fresh(dir, &format!("{stem}.go"));
            let len = small_size(&mut self.rng) + 300;
            self.file(&p, 0o644, len);
            if self.budget > 0 && self.rng.chance(0.5) {
                let t = self.fresh(
                    dir,
                    &format!("{}_test.go", base(&p).trim_end_matches(".go")),
                );
                let len = small_size(&mut self.rng) + 300;
                self.file(&t, 0o644, len);
            }
        }
        self.world.leaf_dirs.push(dir.to_string());
        if self.budget > 0 && self.rng.chance(0.2) {
            self.tree(&format!("{dir}/testdata"), 0, 1, &|r| {
                let ext = *r.pick(&[".txt", ".golden", ".json", ".input", ""]);
                format!("{}{ext}", ident(r, "_"))
            });
        }
        if depth < 3 {
            for _ in 0..self.rng.range(0, 2) {
                if self.budget == 0 {
                    return;
                }
                let sub = {
                    let n = word(&mut self.rng);
                    self.fresh(dir, &n)
                };
                self.go_dir(&sub, depth + 1);
            }
        }
    }

    fn app_tree(&mut self) {
        let sub = {
            let n = ident(&mut self.rng, "_");
            self.fresh(APP_SRC, &n)
        };
        self.world.pkg_roots.push(sub.clone());
        self.tree(&sub, 0, 5, &|r| {
            let ext = *r.pick(&[".ts", ".tsx", ".css", ".json", ".md", ".svg", ".test.ts"]);
            format!("{}{ext}", ident(r, "-"))
        });
    }

    // ---- churn: what a build step does to the layers below ------------------

    /// About `amount` entries that delete, hide, rewrite and chmod lower
    /// content. Runs before the layer adds anything, so what it deletes is
    /// not listed again.
    fn churn(&mut self, amount: usize, last: bool) {
        let stop = self.budget.saturating_sub(amount);
        // The classic: a later step removes a cache an earlier one left.
        if last && self.world.model.contains_key(PIP_CACHE) {
            self.dir(parent(PIP_CACHE));
            self.push(PIP_CACHE, Op::Whiteout(PIP_CACHE.to_string()));
            self.blocked.push(PIP_CACHE.to_string());
        }
        // Delete package directories (rm -rf).
        let wanted = (amount / 150).max(1);
        let (mut done, mut tries) = (0, 0);
        while done < wanted && tries < 50 * wanted && self.budget > stop {
            tries += 1;
            let Some(d) = self.pick_lower(|w| &w.pkg_roots) else {
                break;
            };
            if self.touches(&d) {
                continue;
            }
            self.dir(parent(&d));
            self.push(&d, Op::Whiteout(d.clone()));
            self.blocked.push(d);
            done += 1;
        }
        // Hide one directory's lower content and put new files in it.
        if self.rng.chance(0.7) {
            for _ in 0..20 {
                let Some(d) = self.pick_lower(|w| &w.pkg_roots) else {
                    break;
                };
                if self.touches(&d) {
                    continue;
                }
                self.dir(&d);
                let marker = join(&d, ".wh..wh..opq");
                self.push(&marker, Op::Opaque(d.clone()));
                self.blocked.push(d.clone());
                for _ in 0..self.rng.range(1, 5) {
                    let p = {
                        let n = format!("{}.txt", word(&mut self.rng));
                        self.fresh(&d, &n)
                    };
                    let len = small_size(&mut self.rng);
                    self.file(&p, 0o644, len);
                }
                break;
            }
        }
        // chmod a few directories.
        for _ in 0..(amount / 400).max(1) {
            if let Some(d) = self.pick_lower(|w| &w.leaf_dirs)
                && !self.paths.contains(&d)
                && let Some(v) = self.world.model.get(&d).copied()
            {
                self.dir(parent(&d));
                let mode = if v.mode == 0o755 { 0o775 } else { 0o755 };
                self.push(
                    &d,
                    Op::Dir {
                        path: d.clone(),
                        mode,
                        uid: v.uid,
                    },
                );
            }
        }
        // Delete, rewrite and chmod single files.
        let mut tries = 0;
        while self.budget > stop && tries < amount * 4 {
            tries += 1;
            let Some(d) = self.pick_lower(|w| &w.leaf_dirs) else {
                break;
            };
            let files = self.lower_files(&d, 64);
            if files.is_empty() {
                continue;
            }
            for _ in 0..self.rng.range(1, 4) {
                if self.budget <= stop {
                    break;
                }
                let (p, v) = self.rng.pick(&files).clone();
                if self.paths.contains(&p) {
                    continue;
                }
                match self.rng.range(0, 9) {
                    0..=2 => {
                        self.dir(parent(&p));
                        self.push(&p, Op::Whiteout(p.clone()));
                    }
                    3..=6 => {
                        // New content (sometimes of the same size).
                        let len = if self.rng.chance(0.3) {
                            v.size as u32
                        } else {
                            small_size(&mut self.rng)
                        };
                        self.file(&p, v.mode, len);
                    }
                    _ => {
                        // Same bytes, new mode: a copy-up by chmod.
                        let mode = if v.mode == 0o644 { 0o664 } else { 0o644 };
                        self.file_seeded(&p, mode, v.seed, v.size as u32);
                    }
                }
            }
        }
    }

    /// A random directory of a world list that is still visible and not
    /// under a directory this layer removes.
    fn pick_lower(&mut self, list: fn(&World) -> &Vec<String>) -> Option<String> {
        for _ in 0..20 {
            let xs = list(self.world);
            if xs.is_empty() {
                return None;
            }
            let d = self.rng.pick(xs).clone();
            if self
                .world
                .model
                .get(&d)
                .is_some_and(|v| v.kind == Kind::Dir)
                && !self.blocked(&d)
            {
                return Some(d);
            }
        }
        None
    }

    /// Visible, unpinned regular files directly in `dir` (at most `max`).
    fn lower_files(&self, dir: &str, max: usize) -> Vec<(String, Vis)> {
        let from = format!("{dir}/");
        let to = format!("{dir}0");
        self.world
            .model
            .range(from..to)
            .filter(|(p, v)| v.kind == Kind::File && !v.pinned && !p[dir.len() + 1..].contains('/'))
            .take(max)
            .map(|(p, v)| (p.clone(), *v))
            .collect()
    }
}

const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL=\"https://www.debian.org/\"\n";

/// Plan one layer: churn first, then the recipe's new content.
fn plan_layer(
    world: &mut World,
    rng: Rng,
    recipe: Recipe,
    budget: usize,
    index: usize,
    last: bool,
) -> Vec<Op> {
    let mut plan = Plan {
        rng,
        world,
        ops: Vec::new(),
        paths: BTreeSet::new(),
        blocked: Vec::new(),
        budget,
        owned: None,
    };
    if index > 0 {
        plan.churn(budget / 12, last);
    }
    match recipe {
        Recipe::Base | Recipe::Packages => {
            if recipe == Recipe::Base {
                plan.base_system();
            }
            // Keep one entry for the status file, written last.
            while plan.budget > 1 {
                plan.os_package();
            }
            plan.budget = plan.budget.max(1);
            plan.dpkg_status();
        }
        Recipe::Python => {
            while plan.budget > 0 {
                plan.python_package();
            }
        }
        Recipe::PipCache => {
            while plan.budget > 0 {
                plan.pip_cache_entry();
            }
        }
        Recipe::Node => {
            while plan.budget > 0 {
                plan.node_package(NODE_MODULES, 0);
            }
        }
        Recipe::Go => {
            while plan.budget > 0 {
                plan.go_package();
            }
        }
        Recipe::App => {
            while plan.budget > 0 {
                plan.app_tree();
            }
        }
    }
    let mut ops = plan.ops;
    ops.sort_by_cached_key(|op| {
        op.member()
            .into_bytes()
            .into_iter()
            .map(|c| if c == b'/' { 0 } else { c })
            .collect::<Vec<u8>>()
    });
    ops
}

// ---- writing ---------------------------------------------------------------

/// Counts and hashes what goes through it.
struct Tee<W> {
    inner: W,
    sha: Sha256,
    n: u64,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A member of the outer archive: header, data, padding.
fn outer_member(w: &mut impl Write, name: &str, data: &[u8]) -> io::Result<()> {
    w.write_all(outer_header(name, data.len() as u64)?.as_bytes())?;
    w.write_all(data)?;
    pad(w, data.len() as u64)
}

fn outer_header(name: &str, size: u64) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(MTIME);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

fn pad(w: &mut impl Write, len: u64) -> io::Result<()> {
    let rem = (512 - len % 512) % 512;
    w.write_all(&[0u8; 512][..rem as usize])
}

/// Write one layer's tar; return each op's content hash (files, links).
fn write_layer<W: Write>(
    w: W,
    world: &World,
    ops: &[Op],
    layer: usize,
) -> io::Result<(W, Vec<u128>)> {
    let mut b = tar::Builder::new(w);
    let mut hashes = Vec::with_capacity(ops.len());
    let mut buf = Vec::new();
    for op in ops {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(MTIME + layer as u64);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        let mut hash = 0;
        match op {
            Op::Dir { path, mode, uid } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_uid(u64::from(*uid));
                h.set_gid(u64::from(*uid));
                b.append_data(&mut h, format!("{path}/"), io::empty())?;
            }
            Op::File {
                path,
                mode,
                uid,
                seed,
                len,
                ..
            } => {
                world.bytes(*seed, *len, &mut buf);
                hash = XxHash3_128::oneshot(&buf);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_uid(u64::from(*uid));
                h.set_gid(u64::from(*uid));
                h.set_size(buf.len() as u64);
                b.append_data(&mut h, path, &buf[..])?;
            }
            Op::Symlink { path, target } => {
                hash = XxHash3_128::oneshot(target.as_bytes());
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                b.append_link(&mut h, path, target)?;
            }
            Op::Hardlink { path, target } => {
                hash = XxHash3_128::oneshot(target.as_bytes());
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o755);
                b.append_link(&mut h, path, target)?;
            }
            Op::Whiteout(_) | Op::Opaque(_) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                b.append_data(&mut h, op.member(), io::empty())?;
            }
        }
        hashes.push(hash);
    }
    Ok((b.into_inner()?, hashes))
}

// ---- applying a layer to the model -----------------------------------------

/// `by_copy`: the layer is a COPY/ADD, whose same-content rewrites are
/// re-copies rather than metadata-only copy-ups.
fn apply(
    world: &mut World,
    exp: &mut Expected,
    ops: &[Op],
    hashes: &[u128],
    l: usize,
    by_copy: bool,
) {
    let layer = l as u16;
    let mut le = std::mem::take(&mut exp.layers[l]);
    let hide = |exp: &mut Expected, le: &mut LayerExpect, v: Vis, why: Why| {
        let bytes = v.disk_bytes();
        match why {
            Why::Overwritten => exp.overwritten_bytes += bytes,
            Why::MetadataOnly if by_copy => exp.recopied_bytes += bytes,
            Why::MetadataOnly => exp.metadata_only_bytes += bytes,
            Why::Deleted => exp.deleted_bytes += bytes,
            Why::Opaque => exp.opaque_bytes += bytes,
        }
        exp.hidden_bytes += bytes;
        le.hides_bytes += bytes;
        if (v.layer as usize) < l {
            exp.layers[v.layer as usize].hidden_later_bytes += bytes;
        }
    };
    let below = |model: &BTreeMap<String, Vis>, dir: &str| -> Vec<String> {
        model
            .range(format!("{dir}/")..format!("{dir}0"))
            .map(|(p, _)| p.clone())
            .collect()
    };
    // Opaque markers first, then whiteouts, then entries (as overlayfs
    // sees the result, and as Docker applies a layer).
    for op in ops {
        if let Op::Opaque(d) = op {
            le.opaque_dirs += 1;
            exp.opaque_markers += 1;
            for p in below(&world.model, d) {
                let v = world.model.remove(&p).unwrap();
                hide(exp, &mut le, v, Why::Opaque);
            }
        }
    }
    for op in ops {
        if let Op::Whiteout(p) = op {
            le.removed += 1;
            exp.whiteouts += 1;
            let mut gone = below(&world.model, p);
            gone.push(p.clone());
            for q in gone {
                if let Some(v) = world.model.remove(&q) {
                    hide(exp, &mut le, v, Why::Deleted);
                }
            }
        }
    }
    for (op, &hash) in ops.iter().zip(hashes) {
        let (path, v) = match op {
            Op::Dir { path, mode, uid } => {
                exp.dirs += 1;
                (
                    path,
                    Vis {
                        layer,
                        kind: Kind::Dir,
                        mode: *mode,
                        uid: *uid,
                        size: 0,
                        content: 0,
                        seed: 0,
                        pinned: false,
                    },
                )
            }
            Op::File {
                path,
                mode,
                uid,
                seed,
                len,
                pinned,
            } => {
                exp.files += 1;
                (
                    path,
                    Vis {
                        layer,
                        kind: Kind::File,
                        mode: *mode,
                        uid: *uid,
                        size: u64::from(*len),
                        content: hash,
                        seed: *seed,
                        pinned: *pinned,
                    },
                )
            }
            Op::Symlink { path, target } => {
                exp.symlinks += 1;
                (
                    path,
                    Vis {
                        layer,
                        kind: Kind::Symlink,
                        mode: 0o777,
                        uid: 0,
                        size: target.len() as u64,
                        content: hash,
                        seed: 0,
                        pinned: false,
                    },
                )
            }
            Op::Hardlink { path, .. } => {
                exp.hardlinks += 1;
                (
                    path,
                    Vis {
                        layer,
                        kind: Kind::Hardlink,
                        mode: 0o755,
                        uid: 0,
                        size: 0,
                        content: hash,
                        seed: 0,
                        pinned: true,
                    },
                )
            }
            Op::Whiteout(_) | Op::Opaque(_) => continue,
        };
        le.entries += 1;
        le.size_bytes += v.disk_bytes();
        match world.model.get(path).copied() {
            None => le.added += 1,
            Some(old) => {
                let modified = if old.kind == Kind::Dir && v.kind == Kind::Dir {
                    if (old.mode, old.uid) != (v.mode, v.uid) {
                        le.metadata_only += 1;
                    }
                    false
                } else if (old.kind, old.size, old.content) == (v.kind, v.size, v.content) {
                    le.metadata_only += 1;
                    false
                } else {
                    le.modified += 1;
                    true
                };
                let why = if modified {
                    Why::Overwritten
                } else {
                    Why::MetadataOnly
                };
                hide(exp, &mut le, old, why);
            }
        }
        world.model.insert(path.clone(), v);
    }
    le.tar_entries = ops.len() as u64;
    exp.tar_entries += le.tar_entries;
    exp.size_bytes += le.size_bytes;
    exp.layers[l] = le;
}

/// Write a synthetic archive to `out` and return the generator's figures.
pub fn generate(opts: &Options, out: &Path) -> io::Result<Expected> {
    assert!(opts.layers >= 2, "at least two layers");
    let mut rng = Rng(opts.seed);
    let mut world = World::default();
    let mut exp = Expected::default();
    let recipes: Vec<Recipe> = (0..opts.layers)
        .map(|i| {
            if i == 0 {
                Recipe::Base
            } else {
                CYCLE[(i - 1) % CYCLE.len()].0
            }
        })
        .collect();
    // The base takes a quarter, the others share the rest by weight.
    let weights: Vec<u64> = (0..opts.layers)
        .map(|i| {
            if i == 0 {
                0
            } else {
                u64::from(CYCLE[(i - 1) % CYCLE.len()].1)
            }
        })
        .collect();
    let total_w: u64 = weights.iter().sum();
    let base_budget = opts.entries / 4;
    let budgets: Vec<usize> = weights
        .iter()
        .map(|&w| ((opts.entries - base_budget) as u64 * w / total_w) as usize)
        .collect();

    let file = File::create(out)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut names: HashMap<String, ()> = HashMap::new();
    let mut diff_ids = Vec::new();
    let mut layer_names = Vec::new();
    for (l, recipe) in recipes.iter().enumerate() {
        let last = l + 1 == opts.layers;
        let budget = if l == 0 {
            base_budget
        } else if last {
            // The last layer makes the total come out right.
            opts.entries.saturating_sub(exp.tar_entries as usize).max(1)
        } else {
            budgets[l].max(1)
        };
        let layer_rng = Rng(rng.next());
        let ops = plan_layer(&mut world, layer_rng, *recipe, budget, l, last);
        for op in &ops {
            for part in op.member().split('/') {
                if !names.contains_key(part) {
                    names.insert(part.to_string(), ());
                }
            }
        }
        // Header now, size and name once the layer is written.
        let start = w.stream_position()?;
        w.write_all(&[0u8; 512])?;
        let tee = Tee {
            inner: &mut w,
            sha: Sha256::new(),
            n: 0,
        };
        let (tee, hashes) = write_layer(tee, &world, &ops, l)?;
        let (sha, n) = (hex(&tee.sha.finalize()), tee.n);
        pad(&mut w, n)?;
        let end = w.stream_position()?;
        let name = format!("{sha}/layer.tar");
        w.seek(SeekFrom::Start(start))?;
        w.write_all(outer_header(&name, n)?.as_bytes())?;
        w.seek(SeekFrom::Start(end))?;
        exp.layers.push(LayerExpect {
            recipe: recipe.name(),
            diff_id: format!("sha256:{sha}"),
            tar_bytes: n,
            ..Default::default()
        });
        let ins = recipe.created_by().trim_start_matches("/bin/sh -c #(nop) ");
        let by_copy = ins.starts_with("COPY") || ins.starts_with("ADD");
        apply(&mut world, &mut exp, &ops, &hashes, l, by_copy);
        diff_ids.push(format!("sha256:{sha}"));
        layer_names.push(name);
    }

    let mut history: Vec<serde_json::Value> = Vec::new();
    for (l, r) in recipes.iter().enumerate() {
        history.push(serde_json::json!({
            "created": "2025-01-01T00:00:00Z",
            "created_by": r.created_by(),
        }));
        if l == 0 {
            // A base image ends with its CMD.
            history.push(serde_json::json!({
                "created": "2025-01-01T00:00:00Z",
                "created_by": "/bin/sh -c #(nop)  CMD [\"bash\"]",
                "empty_layer": true,
            }));
        }
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2025-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["node", "app/src/index.js"],
            "WorkingDir": "/app",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    let config = serde_json::to_vec(&config)?;
    let config_name = format!("{}.json", hex(&Sha256::digest(&config)));
    outer_member(&mut w, &config_name, &config)?;
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [opts.tag],
        "Layers": layer_names,
    }]);
    outer_member(&mut w, "manifest.json", &serde_json::to_vec(&manifest)?)?;
    w.write_all(&[0u8; 1024])?;
    w.flush()?;
    exp.archive_bytes = w.stream_position()?;

    // The final file system.
    let mut copies: HashMap<(u64, u128), u64> = HashMap::new();
    for v in world.model.values() {
        exp.final_entries += 1;
        exp.final_bytes += v.disk_bytes();
        if v.kind == Kind::File && v.size > 0 {
            *copies.entry((v.size, v.content)).or_default() += 1;
        }
    }
    exp.duplicate_bytes = copies.iter().map(|(k, n)| (n - 1) * k.0).sum();
    exp.distinct_names = names.len() as u64;
    Ok(exp)
}

// ---- command line ----------------------------------------------------------

#[allow(dead_code)]
fn main() {
    if let Err(e) = run() {
        eprintln!("synth: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut opts = Options::default();
    let mut out = None;
    let mut expect = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--entries" => opts.entries = parse_count(&value()?)?,
            "--layers" => opts.layers = value()?.parse().map_err(|e| format!("--layers: {e}"))?,
            "--seed" => opts.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--tag" => opts.tag = value()?,
            "-o" | "--output" => out = Some(value()?),
            "--expect" => expect = Some(value()?),
            "-h" | "--help" => {
                println!(
                    "usage: synth --entries N[k|m] [--layers N] [--seed S] [--tag NAME] -o OUT.tar [--expect OUT.json]"
                );
                return Ok(());
            }
            _ => return Err(format!("unknown argument {a:?} (try --help)")),
        }
    }
    let out = out.ok_or("-o OUT.tar is required")?;
    if opts.layers < 2 {
        return Err("--layers must be at least 2".into());
    }
    let started = std::time::Instant::now();
    let exp = generate(&opts, Path::new(&out)).map_err(|e| format!("{out}: {e}"))?;
    eprintln!(
        "synth: {out}: {} tar entries in {} layers ({} files, {} dirs, {} symlinks, {} hardlinks, {} whiteouts, {} opaque), {} distinct names, {:.1} MB, {} final entries, {:.2}s",
        exp.tar_entries,
        exp.layers.len(),
        exp.files,
        exp.dirs,
        exp.symlinks,
        exp.hardlinks,
        exp.whiteouts,
        exp.opaque_markers,
        exp.distinct_names,
        exp.archive_bytes as f64 / 1e6,
        exp.final_entries,
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = expect {
        let json = serde_json::to_string_pretty(&exp).map_err(|e| e.to_string())?;
        std::fs::write(&path, json + "\n").map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// `250000`, `250k`, `1m`.
fn parse_count(s: &str) -> Result<usize, String> {
    let (num, mul) = match s.to_ascii_lowercase() {
        t if t.ends_with('k') => (t[..t.len() - 1].to_string(), 1_000),
        t if t.ends_with('m') => (t[..t.len() - 1].to_string(), 1_000_000),
        t => (t, 1),
    };
    num.parse::<usize>()
        .map(|n| n * mul)
        .map_err(|e| format!("--entries {s:?}: {e}"))
}
