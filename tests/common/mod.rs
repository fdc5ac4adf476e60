//! Fixture builders for the integration tests, and an overlay model that
//! computes what the code under test should find, independently of it.
//!
//! Layer tars are written header by header (GNU or PAX long names, optional
//! `./` prefixes), then packaged as a legacy `docker save` archive, a Docker
//! 25+ archive (OCI layout plus `manifest.json`), an OCI layout directory or
//! an `oci-archive` tar.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Every entry gets this mtime, so fixtures are byte-for-byte reproducible.
pub const MTIME: u64 = 1_700_000_000;

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// `len` bytes of deterministic content; different seeds give different bytes.
pub fn content(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

// ---- layers -----------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Hardlink,
    Fifo,
    Char,
}

impl Kind {
    /// The name layerscope uses for this kind.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Dir => "dir",
            Kind::File => "file",
            Kind::Symlink => "symlink",
            Kind::Hardlink => "hardlink",
            Kind::Fifo => "fifo",
            Kind::Char => "char",
        }
    }
}

#[derive(Clone, Debug)]
pub enum Op {
    /// `data` is the file content, or the link target for links.
    Entry {
        path: String,
        kind: Kind,
        mode: u32,
        data: Vec<u8>,
    },
    /// `.wh.NAME` next to the path it deletes.
    Whiteout(String),
    /// `DIR/.wh..wh..opq`.
    Opaque(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongNames {
    Gnu,
    Pax,
}

/// One layer, as a list of tar entries in order.
#[derive(Clone, Debug)]
pub struct Layer {
    pub ops: Vec<Op>,
    pub long_names: LongNames,
    /// Write every member as `./path` (as some tools do).
    pub dot_slash: bool,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Self {
        Layer {
            ops: Vec::new(),
            long_names: LongNames::Gnu,
            dot_slash: false,
        }
    }
    fn entry(mut self, path: &str, kind: Kind, mode: u32, data: Vec<u8>) -> Self {
        self.ops.push(Op::Entry {
            path: path.trim_end_matches('/').to_string(),
            kind,
            mode,
            data,
        });
        self
    }
    pub fn dir(self, path: &str, mode: u32) -> Self {
        self.entry(path, Kind::Dir, mode, Vec::new())
    }
    pub fn file(self, path: &str, data: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.entry(path, Kind::File, mode, data.into())
    }
    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(path, Kind::Symlink, 0o777, target.as_bytes().to_vec())
    }
    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.entry(path, Kind::Hardlink, 0o644, target.as_bytes().to_vec())
    }
    pub fn fifo(self, path: &str) -> Self {
        self.entry(path, Kind::Fifo, 0o600, Vec::new())
    }
    pub fn chardev(self, path: &str) -> Self {
        self.entry(path, Kind::Char, 0o666, Vec::new())
    }
    pub fn whiteout(mut self, path: &str) -> Self {
        self.ops.push(Op::Whiteout(path.to_string()));
        self
    }
    pub fn opaque(mut self, dir: &str) -> Self {
        self.ops.push(Op::Opaque(dir.to_string()));
        self
    }
    pub fn pax(mut self) -> Self {
        self.long_names = LongNames::Pax;
        self
    }
    pub fn dot_slash(mut self) -> Self {
        self.dot_slash = true;
        self
    }

    /// The uncompressed layer tar.
    pub fn tar(&self) -> Vec<u8> {
        let mut w = TarWriter::new(self.long_names);
        let name = |p: &str| {
            if self.dot_slash {
                format!("./{p}")
            } else {
                p.to_string()
            }
        };
        for op in &self.ops {
            match op {
                Op::Entry {
                    path,
                    kind,
                    mode,
                    data,
                } => {
                    let (flag, body, link): (u8, &[u8], Option<&str>) = match kind {
                        Kind::Dir => (b'5', &[], None),
                        Kind::File => (b'0', data, None),
                        Kind::Symlink => (b'2', &[], Some(std::str::from_utf8(data).unwrap())),
                        Kind::Hardlink => (b'1', &[], Some(std::str::from_utf8(data).unwrap())),
                        Kind::Fifo => (b'6', &[], None),
                        Kind::Char => (b'3', &[], None),
                    };
                    let mut n = name(path);
                    if *kind == Kind::Dir {
                        n.push('/');
                    }
                    // Hardlink targets are member names too.
                    let link = link.map(|l| {
                        if *kind == Kind::Hardlink {
                            name(l)
                        } else {
                            l.to_string()
                        }
                    });
                    w.entry(&n, flag, *mode, body, link.as_deref());
                }
                Op::Whiteout(p) => {
                    let (dir, base) = split(p);
                    let wh = if dir.is_empty() {
                        format!(".wh.{base}")
                    } else {
                        format!("{dir}/.wh.{base}")
                    };
                    w.entry(&name(&wh), b'0', 0o644, &[], None);
                }
                Op::Opaque(d) => {
                    w.entry(&name(&format!("{d}/.wh..wh..opq")), b'0', 0o644, &[], None);
                }
            }
        }
        w.finish()
    }
}

fn split(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    }
}

/// Writes tar members header by header, with full control of names.
pub struct TarWriter {
    out: Vec<u8>,
    long: LongNames,
}

impl TarWriter {
    pub fn new(long: LongNames) -> Self {
        TarWriter {
            out: Vec::new(),
            long,
        }
    }

    fn raw(&mut self, name: &[u8], flag: u8, mode: u32, body: &[u8], link: &[u8]) {
        let mut h = match self.long {
            LongNames::Gnu => tar::Header::new_gnu(),
            LongNames::Pax => tar::Header::new_ustar(),
        };
        {
            let old = h.as_old_mut();
            let n = name.len().min(100);
            old.name[..n].copy_from_slice(&name[..n]);
            let l = link.len().min(100);
            old.linkname[..l].copy_from_slice(&link[..l]);
        }
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(body.len() as u64);
        h.set_entry_type(tar::EntryType::new(flag));
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(body);
        let pad = (512 - body.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    /// One member; long names and link targets use GNU or PAX extensions.
    pub fn entry(&mut self, name: &str, flag: u8, mode: u32, body: &[u8], link: Option<&str>) {
        let link = link.unwrap_or("");
        let long_name = name.len() > 100;
        let long_link = link.len() > 100;
        match self.long {
            LongNames::Gnu => {
                if long_name {
                    let mut d = name.as_bytes().to_vec();
                    d.push(0);
                    self.raw(b"././@LongLink", b'L', 0o644, &d, b"");
                }
                if long_link {
                    let mut d = link.as_bytes().to_vec();
                    d.push(0);
                    self.raw(b"././@LongLink", b'K', 0o644, &d, b"");
                }
            }
            LongNames::Pax => {
                let mut recs = Vec::new();
                if long_name {
                    recs.extend(pax_record("path", name));
                }
                if long_link {
                    recs.extend(pax_record("linkpath", link));
                }
                if !recs.is_empty() {
                    self.raw(b"PaxHeaders.0/entry", b'x', 0o644, &recs, b"");
                }
            }
        }
        self.raw(name.as_bytes(), flag, mode, body, link.as_bytes());
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while len != base + len.to_string().len() {
        len = base + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

/// Files of an outer archive or layout: (path, bytes).
pub type Files = Vec<(String, Vec<u8>)>;
/// Symlinks of an outer archive: (path, target).
pub type Links = Vec<(String, String)>;

/// An outer archive (docker save, oci-archive) from (name, bytes) files and
/// (name, target) symlinks.
pub fn tar_files(files: &[(String, Vec<u8>)], symlinks: &[(String, String)]) -> Vec<u8> {
    let mut w = TarWriter::new(LongNames::Pax);
    let mut dirs: Vec<String> = Vec::new();
    let all = files
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(symlinks.iter().map(|(n, _)| n.as_str()));
    for n in all {
        let mut d = String::new();
        for part in n.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            d.push_str(part);
            d.push('/');
            if !dirs.contains(&d) {
                dirs.push(d.clone());
            }
        }
    }
    for d in &dirs {
        w.entry(d, b'5', 0o755, &[], None);
    }
    for (n, data) in files {
        w.entry(n, b'0', 0o644, data, None);
    }
    for (n, t) in symlinks {
        w.entry(n, b'2', 0o777, &[], Some(t));
    }
    w.finish()
}

pub fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (n, data) in files {
        let p = dir.join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

// ---- images -----------------------------------------------------------------

/// One history entry: `created_by` and whether it made no layer.
#[derive(Clone, Debug)]
pub struct Hist {
    pub created_by: String,
    pub empty: bool,
}

pub fn hist(created_by: &str, empty: bool) -> Hist {
    Hist {
        created_by: created_by.to_string(),
        empty,
    }
}

#[derive(Clone, Debug)]
pub struct Image {
    pub layers: Vec<Layer>,
    pub history: Vec<Hist>,
    /// The config's `config` object (Env, Cmd, ...).
    pub run_config: Value,
    /// Replace the diff_id of layer `.0` (0-based) in the config.
    pub bad_diff_id: Option<usize>,
}

impl Image {
    /// An image whose history has one non-empty entry per layer.
    pub fn simple(layers: Vec<Layer>) -> Self {
        let history = (0..layers.len())
            .map(|i| hist(&format!("/bin/sh -c echo layer {i}"), false))
            .collect();
        Image {
            layers,
            history,
            run_config: json!({}),
            bad_diff_id: None,
        }
    }

    pub fn tars(&self) -> Vec<Vec<u8>> {
        self.layers.iter().map(Layer::tar).collect()
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.tars().iter().map(|t| digest(t)).collect()
    }

    pub fn config_bytes(&self) -> Vec<u8> {
        let mut diff_ids = self.diff_ids();
        if let Some(i) = self.bad_diff_id {
            diff_ids[i] = digest(b"not this layer");
        }
        let history: Vec<Value> = self
            .history
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mut v = json!({
                    "created": format!("2024-01-01T00:00:{:02}Z", i % 60),
                    "created_by": h.created_by,
                });
                if h.empty {
                    v["empty_layer"] = json!(true);
                }
                v
            })
            .collect();
        serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": self.run_config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }))
        .unwrap()
    }

    /// Docker's image id.
    pub fn id(&self) -> String {
        digest(&self.config_bytes())
    }
}

/// A legacy `docker save` archive: `manifest.json`, `<id>.json`,
/// `<v1id>/layer.tar` (a layer saved twice is a symlink to the first copy,
/// as Docker writes it), `repositories`.
pub fn legacy_files(images: &[(&Image, &[&str])]) -> (Files, Links) {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let mut manifest = Vec::new();
    let mut repos = serde_json::Map::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new(); // diff_id -> v1 id
    for (img, tags) in images {
        let cfg = img.config_bytes();
        let cfg_name = format!("{}.json", sha256_hex(&cfg));
        files.push((cfg_name.clone(), cfg));
        let mut layer_names = Vec::new();
        let mut parent = String::new();
        for (i, tar) in img.tars().into_iter().enumerate() {
            let diff_id = digest(&tar);
            let v1 = sha256_hex(format!("{parent}/{diff_id}/{i}").as_bytes());
            let name = format!("{v1}/layer.tar");
            match seen.get(&diff_id) {
                Some(first) if first != &v1 => {
                    links.push((name.clone(), format!("../{first}/layer.tar")));
                }
                Some(_) => {}
                None => {
                    seen.insert(diff_id.clone(), v1.clone());
                    files.push((name.clone(), tar));
                }
            }
            files.push((format!("{v1}/VERSION"), b"1.0".to_vec()));
            files.push((
                format!("{v1}/json"),
                serde_json::to_vec(&json!({"id": v1, "parent": parent})).unwrap(),
            ));
            layer_names.push(name);
            parent = v1;
        }
        for t in *tags {
            let (repo, tag) = t.rsplit_once(':').unwrap();
            repos
                .entry(repo.to_string())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .unwrap()
                .insert(tag.to_string(), json!(parent));
        }
        manifest.push(json!({
            "Config": cfg_name,
            "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
            "Layers": layer_names,
        }));
    }
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    files.push(("repositories".into(), serde_json::to_vec(&repos).unwrap()));
    (files, links)
}

pub fn legacy_archive(images: &[(&Image, &[&str])]) -> Vec<u8> {
    let (files, links) = legacy_files(images);
    tar_files(&files, &links)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

pub fn compress(data: &[u8], c: Comp) -> Vec<u8> {
    match c {
        Comp::None => data.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(data, 3).unwrap(),
    }
}

pub fn media_type(c: Comp) -> &'static str {
    match c {
        Comp::None => "application/vnd.oci.image.layer.v1.tar",
        Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// How the layers of an OCI layout are stored.
#[derive(Clone, Debug)]
pub struct OciOpts {
    /// Compression of layer `i` is `comp[i % len]`.
    pub comp: Vec<Comp>,
    /// Media type written for layer `i` (default: the one matching its compression).
    pub media: BTreeMap<usize, String>,
    /// Also write Docker's `manifest.json` (what `docker save` 25+ writes).
    pub docker_manifest: bool,
}

impl OciOpts {
    pub fn new(comp: &[Comp]) -> Self {
        OciOpts {
            comp: comp.to_vec(),
            media: BTreeMap::new(),
            docker_manifest: false,
        }
    }
}

/// Blob digests of an OCI layout written by [`oci_files`].
#[derive(Clone, Debug, Default)]
pub struct OciBlobs {
    /// Per image: layer blob digests, bottom first.
    pub layers: Vec<Vec<String>>,
    pub configs: Vec<String>,
    pub manifests: Vec<String>,
}

/// An OCI image layout: `oci-layout`, `index.json`, `blobs/sha256/...`.
/// `names` become `org.opencontainers.image.ref.name` (the tag part) and
/// `io.containerd.image.name` annotations, and `RepoTags` in `manifest.json`.
pub fn oci_files(
    images: &[(&Image, &[&str])],
    opts: &OciOpts,
) -> (Vec<(String, Vec<u8>)>, OciBlobs) {
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut out = OciBlobs::default();
    let mut index_manifests = Vec::new();
    let mut docker_manifest = Vec::new();
    let mut put = |data: Vec<u8>| -> (String, usize) {
        let d = digest(&data);
        let n = data.len();
        blobs.insert(d.clone(), data);
        (d, n)
    };
    for (img, names) in images {
        let (cfg_digest, cfg_size) = put(img.config_bytes());
        let mut layers = Vec::new();
        let mut digests = Vec::new();
        for (i, tar) in img.tars().into_iter().enumerate() {
            let c = opts.comp[i % opts.comp.len()];
            let (d, n) = put(compress(&tar, c));
            let mt = opts
                .media
                .get(&i)
                .cloned()
                .unwrap_or_else(|| media_type(c).to_string());
            layers.push(json!({"mediaType": mt, "digest": d, "size": n}));
            digests.push(d);
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": cfg_digest,
                "size": cfg_size,
            },
            "layers": layers,
        }))
        .unwrap();
        let (m_digest, m_size) = put(manifest);
        let mut desc = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m_digest,
            "size": m_size,
        });
        if let Some(first) = names.first() {
            let tag = first.rsplit_once(':').map_or(*first, |x| x.1);
            desc["annotations"] = json!({
                "io.containerd.image.name": format!("docker.io/library/{first}"),
                "org.opencontainers.image.ref.name": tag,
            });
        }
        index_manifests.push(desc);
        docker_manifest.push(json!({
            "Config": format!("blobs/sha256/{}", &cfg_digest[7..]),
            "RepoTags": names,
            "Layers": digests.iter().map(|d| format!("blobs/sha256/{}", &d[7..])).collect::<Vec<_>>(),
        }));
        out.layers.push(digests);
        out.configs.push(cfg_digest);
        out.manifests.push(m_digest);
    }
    let mut files: Vec<(String, Vec<u8>)> = blobs
        .into_iter()
        .map(|(d, data)| (format!("blobs/sha256/{}", &d[7..]), data))
        .collect();
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion": "1.0.0"}"#.to_vec(),
    ));
    files.push((
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": index_manifests})).unwrap(),
    ));
    if opts.docker_manifest {
        files.push((
            "manifest.json".into(),
            serde_json::to_vec(&docker_manifest).unwrap(),
        ));
    }
    (files, out)
}

/// What `docker save` writes since Docker 25: an OCI layout with
/// uncompressed layers plus `manifest.json`.
pub fn docker25_archive(images: &[(&Image, &[&str])]) -> Vec<u8> {
    let mut opts = OciOpts::new(&[Comp::None]);
    opts.docker_manifest = true;
    let (files, _) = oci_files(images, &opts);
    tar_files(&files, &[])
}

// ---- the overlay model ----------------------------------------------------

/// A visible entry in the model's final file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelEntry {
    pub kind: Kind,
    /// File content or link target.
    pub data: Vec<u8>,
    pub mode: u32,
    /// 0-based layer that last wrote the path.
    pub layer: usize,
}

impl ModelEntry {
    /// Bytes as Docker counts them: file sizes and symlink target lengths;
    /// a hardlink adds nothing (its inode is counted on the file).
    pub fn bytes(&self) -> u64 {
        match self.kind {
            Kind::File | Kind::Symlink => self.data.len() as u64,
            _ => 0,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelLayer {
    pub size: u64,
    pub entries: usize,
    pub added: u64,
    pub modified: u64,
    pub metadata_only: u64,
    pub removed: u64,
    pub opaque: u64,
    /// This layer's bytes hidden later.
    pub hidden_bytes: u64,
    /// Lower layers' bytes this layer hid.
    pub hides_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    Overwritten,
    MetadataOnly,
    Deleted,
    Opaque,
}

/// A hidden entry: (layer, "/path", hidden by layer, reason, bytes).
pub type ModelHidden = (usize, String, usize, Reason, u64);

#[derive(Clone, Debug, Default)]
pub struct Model {
    pub layers: Vec<ModelLayer>,
    pub fs: BTreeMap<String, ModelEntry>,
    pub hidden: Vec<ModelHidden>,
}

impl Model {
    /// Apply layers bottom first, as overlayfs does: within a layer the
    /// opaque markers and whiteouts remove lower content, then the layer's
    /// entries (a path listed twice: the last one) land on top.
    pub fn build(layers: &[Layer]) -> Model {
        let mut m = Model::default();
        for (li, layer) in layers.iter().enumerate() {
            let mut entries: Vec<(String, Kind, u32, Vec<u8>)> = Vec::new();
            let mut whiteouts = Vec::new();
            let mut opaques = Vec::new();
            for op in &layer.ops {
                match op {
                    Op::Entry {
                        path,
                        kind,
                        mode,
                        data,
                    } => {
                        entries.retain(|e| &e.0 != path);
                        entries.push((path.clone(), *kind, *mode, data.clone()));
                    }
                    Op::Whiteout(p) => whiteouts.push(p.clone()),
                    Op::Opaque(d) => opaques.push(d.clone()),
                }
            }
            let mut ml = ModelLayer {
                entries: entries.len(),
                removed: whiteouts.len() as u64,
                opaque: opaques.len() as u64,
                ..Default::default()
            };
            for d in &opaques {
                m.remove_below(d, li, Reason::Opaque);
            }
            for p in &whiteouts {
                m.remove(p, li, Reason::Deleted);
                m.remove_below(p, li, Reason::Deleted);
            }
            for (path, kind, mode, data) in entries {
                let new = ModelEntry {
                    kind,
                    data,
                    mode,
                    layer: li,
                };
                ml.size += new.bytes();
                match m.fs.get(&path).cloned() {
                    None => ml.added += 1,
                    Some(old) => {
                        let reason = if old.kind == Kind::Dir && kind == Kind::Dir {
                            if old.mode != mode {
                                ml.metadata_only += 1;
                            }
                            Reason::MetadataOnly
                        } else if old.kind == kind && old.data == new.data {
                            ml.metadata_only += 1;
                            Reason::MetadataOnly
                        } else {
                            ml.modified += 1;
                            Reason::Overwritten
                        };
                        if old.kind == Kind::Dir && kind != Kind::Dir {
                            m.remove_below(&path, li, Reason::Deleted);
                        }
                        m.remove(&path, li, reason);
                    }
                }
                m.fs.insert(path, new);
            }
            m.layers.push(ml);
        }
        for h in &m.hidden {
            m.layers[h.0].hidden_bytes += h.4;
            m.layers[h.2].hides_bytes += h.4;
        }
        m
    }

    fn remove(&mut self, path: &str, by: usize, reason: Reason) {
        if let Some(old) = self.fs.remove(path) {
            self.hidden
                .push((old.layer, format!("/{path}"), by, reason, old.bytes()));
        }
    }

    fn remove_below(&mut self, dir: &str, by: usize, reason: Reason) {
        let prefix = format!("{dir}/");
        let below: Vec<String> = self
            .fs
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for p in below {
            self.remove(&p, by, reason);
        }
    }

    pub fn total(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    pub fn final_bytes(&self) -> u64 {
        self.fs.values().map(ModelEntry::bytes).sum()
    }

    pub fn hidden_by_reason(&self, r: Reason) -> u64 {
        self.hidden.iter().filter(|h| h.3 == r).map(|h| h.4).sum()
    }

    pub fn hidden_total(&self) -> u64 {
        self.hidden.iter().map(|h| h.4).sum()
    }

    /// Sets of identical non-empty regular files: (size, paths ordered by
    /// (layer, path), so the copy written first comes first).
    pub fn duplicates(&self) -> Vec<(u64, Vec<String>)> {
        let mut groups: BTreeMap<&[u8], Vec<(usize, String)>> = BTreeMap::new();
        for (p, e) in &self.fs {
            if e.kind == Kind::File && !e.data.is_empty() {
                groups
                    .entry(&e.data)
                    .or_default()
                    .push((e.layer, format!("/{p}")));
            }
        }
        let mut sets: Vec<(u64, Vec<String>)> = groups
            .into_iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(data, mut v)| {
                v.sort();
                (data.len() as u64, v.into_iter().map(|x| x.1).collect())
            })
            .collect();
        sets.sort_by(|a, b| {
            let extra = |s: &(u64, Vec<String>)| s.0 * (s.1.len() as u64 - 1);
            extra(b).cmp(&extra(a)).then(a.1.cmp(&b.1))
        });
        sets
    }

    pub fn duplicate_bytes(&self) -> u64 {
        self.duplicates()
            .iter()
            .map(|(size, paths)| size * (paths.len() as u64 - 1))
            .sum()
    }

    /// 1 - (hidden + extra duplicate copies) / total.
    pub fn efficiency(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 1.0;
        }
        1.0 - (self.hidden_total() + self.duplicate_bytes()) as f64 / total as f64
    }
}

// ---- the main fixture -------------------------------------------------------

pub const OS_RELEASE: &str =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nID=debian\n";

/// A path longer than 100 bytes (needs a GNU or PAX long name).
pub fn long_path(prefix: &str, tag: &str) -> String {
    format!(
        "{prefix}/{}/{tag}-file-with-a-long-name.bin",
        "nested-directory-level".repeat(4)
    )
}

/// A symlink target longer than 100 bytes.
pub fn long_target() -> String {
    format!("/usr/share/{}/target", "very-long-link-target".repeat(6))
}

/// An image exercising every overlay rule: overwrites, a file whiteout, a
/// directory whiteout, an opaque directory, hardlinks, symlinks (one with a
/// long target), chmod copy-ups of files and a directory, duplicates, a path
/// listed twice, PAX and GNU long names, `./` prefixes, devices, a fifo,
/// an empty layer tar, and a history with empty layers between the real ones.
pub fn main_image() -> Image {
    let dup = content(77, 2500);
    let png = content(88, 800);
    let l1 = Layer::new()
        .dir("bin", 0o755)
        .dir("etc", 0o755)
        .dir("usr", 0o755)
        .dir("usr/lib", 0o755)
        .dir("app", 0o755)
        .dir("data", 0o755)
        .dir("data/cache", 0o755)
        .dir("opt", 0o755)
        .dir("opt/tool", 0o755)
        .dir("dev", 0o755)
        .dir("run", 0o755)
        .file("usr/lib/os-release", OS_RELEASE, 0o644)
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("bin/sh", content(1, 1000), 0o755)
        .hardlink("bin/bash", "bin/sh")
        .file("app/config.txt", content(2, 300), 0o644)
        .file("data/cache/a.bin", content(3, 5000), 0o644)
        .file("data/cache/b.bin", content(4, 7000), 0o644)
        .file("data/big.log", content(5, 20000), 0o644)
        .file("opt/tool/lib.so", content(6, 4000), 0o755)
        .file("opt/tool/bin", content(7, 3000), 0o755)
        .file("usr/lib/libdup.so", dup.clone(), 0o644)
        .file("usr/lib/empty", Vec::new(), 0o644)
        .chardev("dev/null")
        .fifo("run/initctl");
    let lp = long_path("app", "pax");
    let lp_dir = lp.rsplit_once('/').unwrap().0.to_string();
    let l2 = Layer::new()
        .pax()
        .dir("app", 0o755)
        .dir("data", 0o755)
        .file("app/config.txt", content(8, 350), 0o644)
        .whiteout("data/big.log")
        .file("app/script.sh", content(9, 600), 0o755)
        .file("usr/lib/libdup-copy.so", dup, 0o644)
        .symlink("app/link", "/usr/lib/libdup.so")
        .file("app/twice.txt", content(10, 111), 0o644)
        .file("app/twice.txt", content(11, 222), 0o600)
        .dir(&lp_dir, 0o755)
        .file(&lp, content(12, 1234), 0o644)
        .symlink("app/longlink", &long_target());
    let l3 = Layer::new()
        .dir("app", 0o700)
        .file("app/script.sh", content(9, 600), 0o700)
        .file("app/config.txt", content(8, 350), 0o600)
        .dir("opt", 0o755)
        .whiteout("opt/tool")
        .dir("data/cache", 0o755)
        .opaque("data/cache")
        .file("data/cache/c.bin", content(13, 900), 0o644);
    let gnu = long_path("srv", "gnu");
    let l4 = Layer::new()
        .dot_slash()
        .dir("app", 0o700)
        .file("app/config.txt", content(14, 400), 0o644)
        .dir("app/assets", 0o755)
        .file("app/assets/x.png", png.clone(), 0o644)
        .file("app/assets/y.png", png.clone(), 0o644)
        .file("app/assets/z.png", png, 0o644)
        .file("app/entry.sh", content(15, 150), 0o755)
        .file(&gnu, content(16, 4321), 0o644);
    let l5 = Layer::new(); // WORKDIR: a layer with no entries
    Image {
        layers: vec![l1, l2, l3, l4, l5],
        history: vec![
            hist("/bin/sh -c #(nop) ADD file:4b03b5f551e3 in / ", false),
            hist("/bin/sh -c #(nop)  CMD [\"bash\"]", true),
            hist(
                "/bin/sh -c apt-get update && apt-get install -y curl",
                false,
            ),
            hist("/bin/sh -c #(nop)  ENV APP_MODE=prod", true),
            hist(
                "RUN /bin/sh -c chmod -R 700 /app && rm -rf /opt/tool # buildkit",
                false,
            ),
            hist("/bin/sh -c #(nop) COPY dir:8c0d2a1e in /app ", false),
            hist("WORKDIR /app", false),
            hist("EXPOSE map[8080/tcp:{} 53/udp:{}]", true),
            hist("/bin/sh -c #(nop)  USER app", true),
            hist("/bin/sh -c #(nop)  ENTRYPOINT [\"/app/entry.sh\"]", true),
        ],
        run_config: json!({
            "Env": ["PATH=/usr/local/bin:/usr/bin", "APP_MODE=prod", "EMPTY=", "EQ=a=b"],
            "Entrypoint": ["/app/entry.sh"],
            "Cmd": ["--serve", "--port=8080"],
            "User": "app",
            "WorkingDir": "/app",
            "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
        }),
        bad_diff_id: None,
    }
}

/// The instructions expected for [`main_image`]'s layers.
pub const MAIN_INSTRUCTIONS: [&str; 5] = [
    "ADD file:4b03b5f551e3 in /",
    "RUN apt-get update && apt-get install -y curl",
    "RUN chmod -R 700 /app && rm -rf /opt/tool",
    "COPY dir:8c0d2a1e in /app",
    "WORKDIR /app",
];

// ---- reports ---------------------------------------------------------------

/// Check a parsed JSON report against the model.
pub fn check_report(v: &Value, fx: &Image, model: &Model) {
    assert_eq!(v["schema_version"], 2);
    let img = &v["images"][0];
    assert_eq!(img["id"], fx.id());
    let t = &img["totals"];
    assert_eq!(t["size_bytes"], model.total());
    assert_eq!(t["final_bytes"], model.final_bytes());
    assert_eq!(t["layers"], fx.layers.len());
    assert_eq!(t["final_entries"], model.fs.len());
    assert_eq!(t["hidden_bytes"], model.hidden_total());
    assert_eq!(
        t["overwritten_bytes"],
        model.hidden_by_reason(Reason::Overwritten)
    );
    assert_eq!(
        t["metadata_only_bytes"],
        model.hidden_by_reason(Reason::MetadataOnly)
    );
    assert_eq!(t["deleted_bytes"], model.hidden_by_reason(Reason::Deleted));
    assert_eq!(t["opaque_bytes"], model.hidden_by_reason(Reason::Opaque));
    assert_eq!(t["duplicate_bytes"], model.duplicate_bytes());
    assert_eq!(
        t["wasted_bytes"],
        model.hidden_total() + model.duplicate_bytes()
    );
    let eff = t["efficiency"].as_f64().unwrap();
    assert!((eff - model.efficiency()).abs() <= 0.00005, "{eff}");
    let layers = img["layers"].as_array().unwrap();
    assert_eq!(layers.len(), model.layers.len());
    for (i, (l, m)) in layers.iter().zip(&model.layers).enumerate() {
        assert_eq!(l["index"], i + 1);
        assert_eq!(l["size_bytes"], m.size, "layer {i}");
        assert_eq!(l["entries"], m.entries, "layer {i}");
        assert_eq!(l["added"], m.added, "layer {i}");
        assert_eq!(l["modified"], m.modified, "layer {i}");
        assert_eq!(l["metadata_only"], m.metadata_only, "layer {i}");
        assert_eq!(l["removed"], m.removed, "layer {i}");
        assert_eq!(l["opaque_dirs"], m.opaque, "layer {i}");
        assert_eq!(l["hidden_later_bytes"], m.hidden_bytes, "layer {i}");
        assert_eq!(l["hides_bytes"], m.hides_bytes, "layer {i}");
        assert_eq!(l["diff_id"], fx.diff_ids()[i], "layer {i}");
        assert_eq!(l["instruction"], MAIN_INSTRUCTIONS[i], "layer {i}");
    }
    // The biggest waste is data/big.log, shipped in layer 1, deleted in 2.
    let top = &img["top_wasted"][0];
    assert_eq!(top["path"], "/data/big.log");
    assert_eq!(top["bytes"], 20000);
    assert_eq!(top["kind"], "deleted");
    assert_eq!(top["layers"], json!([1]));
    assert_eq!(top["hidden_by"], json!([2]));
    let wasted: BTreeSet<(String, String)> = img["top_wasted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["path"].as_str().unwrap().to_string(),
                w["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (path, kind) in [
        ("/data/cache/b.bin", "opaque"),
        ("/opt/tool/lib.so", "deleted"),
        ("/app/config.txt", "overwritten"),
        ("/app/config.txt", "metadata_only"),
        ("/app/script.sh", "metadata_only"),
    ] {
        assert!(
            wasted.contains(&(path.to_string(), kind.to_string())),
            "{path} {kind} in {wasted:?}"
        );
    }
    let dups: Vec<(u64, Vec<String>)> = img["duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(
                d["extra_bytes"].as_u64().unwrap(),
                d["size_bytes"].as_u64().unwrap()
                    * (d["paths"].as_array().unwrap().len() as u64 - 1)
            );
            (
                d["size_bytes"].as_u64().unwrap(),
                serde_json::from_value(d["paths"].clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(dups, model.duplicates());
    assert_eq!(img["base_os"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(img["exposed_ports"], json!(["53/udp", "8080/tcp"]));
}
