//! The image model: facts from the config, layers paired with history, and
//! the merged file system (built by `index::merge`).

use std::collections::HashMap;

use serde::Deserialize;

use crate::index::layer::Entry;
use crate::index::tree::{NodeId, PathTree};

/// The parts of an image config (`application/vnd.oci.image.config.v1+json`
/// or Docker's `<id>.json`) that layerscope uses. Unknown fields are ignored,
/// absent ones are empty.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    pub architecture: Option<String>,
    pub os: Option<String>,
    /// The CPU variant (`v8` of `arm64/v8`).
    pub variant: Option<String>,
    /// When the image was built (RFC 3339).
    pub created: Option<String>,
    pub config: Option<RunConfig>,
    pub rootfs: Option<RootFs>,
    pub history: Vec<HistoryEntry>,
}

/// The config's `config`: how a container of the image runs (the keys are
/// Docker's, `Env`, `WorkingDir`...).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RunConfig {
    /// `KEY=value` pairs.
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// `80/tcp` and the like, as keys (the values are empty objects).
    pub exposed_ports: Option<HashMap<String, serde_json::Value>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RootFs {
    /// The layers' uncompressed digests, bottom first.
    pub diff_ids: Vec<String>,
}

/// One step of the config's history; `empty_layer` steps made no layer.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct HistoryEntry {
    pub created: Option<String>,
    /// The instruction as the builder recorded it (the classic builder's
    /// `/bin/sh -c #(nop)  CMD ...`, BuildKit's `CMD ...`).
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

/// Facts about an image, from its config and final file system. Serialized
/// as they are into the report's `images[]` (in this order: see
/// docs/report.md).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImageFacts {
    /// Config digest (`sha256:...`), which is Docker's image id.
    pub id: String,
    pub tags: Vec<String>,
    /// Where the bytes came from (`path` of the archive, `docker` engine...).
    pub source: String,
    /// How the layers were read: `storage`, `export`, `archive`, or `cache`
    /// when every layer came from the layer cache.
    pub layers_read_via: String,
    /// Layers taken from the layer cache.
    pub layers_cached: usize,
    pub os: String,
    pub architecture: String,
    pub created: Option<String>,
    /// Base OS from `/etc/os-release`, or `scratch`/`distroless`.
    pub base_os: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub exposed_ports: Vec<String>,
    pub env_keys: Vec<String>,
    /// The config's `PATH`, where it sets one: how ENTRYPOINT/CMD names
    /// resolve to files.
    #[serde(skip)]
    pub path_env: Option<String>,
    /// The config's history, empty layers included.
    #[serde(skip)]
    pub history: Vec<HistoryEntry>,
}

impl ImageFacts {
    pub fn from_config(id: String, tags: Vec<String>, cfg: &ConfigFile) -> Self {
        let rc = cfg.config.clone().unwrap_or_default();
        let mut ports: Vec<String> = rc.exposed_ports.unwrap_or_default().into_keys().collect();
        ports.sort();
        let env = rc.env.unwrap_or_default();
        let path_env = env
            .iter()
            .find_map(|kv| kv.strip_prefix("PATH=").map(str::to_string));
        let env_keys = env
            .iter()
            .map(|kv| kv.split('=').next().unwrap_or("").to_string())
            .collect();
        let arch = match (&cfg.architecture, &cfg.variant) {
            (Some(a), Some(v)) if !v.is_empty() => format!("{a}/{v}"),
            (Some(a), _) => a.clone(),
            _ => String::new(),
        };
        ImageFacts {
            id,
            tags,
            os: cfg.os.clone().unwrap_or_default(),
            architecture: arch,
            created: cfg.created.clone(),
            entrypoint: rc.entrypoint.unwrap_or_default(),
            cmd: rc.cmd.unwrap_or_default(),
            user: rc.user.unwrap_or_default(),
            workdir: rc.working_dir.unwrap_or_default(),
            exposed_ports: ports,
            env_keys,
            path_env,
            source: String::new(),
            layers_read_via: "archive".into(),
            layers_cached: 0,
            base_os: String::new(),
            history: cfg.history.clone(),
        }
    }

    /// A short name for people: first tag, else the short id.
    pub fn name(&self) -> String {
        self.tags
            .first()
            .cloned()
            .unwrap_or_else(|| short_id(&self.id))
    }
}

pub fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

/// How a hidden entry was hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HideReason {
    /// A later layer wrote the path with different content.
    Overwritten,
    /// A later layer wrote the same content again (chmod/chown copy-up).
    MetadataOnly,
    /// A whiteout (`.wh.NAME`) deleted it, or its parent was replaced.
    Deleted,
    /// An opaque marker (`.wh..wh..opq`) hid its directory's lower content.
    Opaque,
}

/// An entry shipped in `layer` that is not visible in the final file system.
#[derive(Debug, Clone, Copy)]
pub struct Hidden {
    pub layer: u16,
    pub entry: u32,
    pub by: u16,
    pub reason: HideReason,
}

/// What a layer's entry did relative to the layers below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    MetadataOnly,
    /// A directory listed again with the same metadata (parents of changes).
    Unchanged,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ChangeCounts {
    pub added: u64,
    pub modified: u64,
    pub metadata_only: u64,
    pub removed: u64,
    pub opaque_dirs: u64,
}

/// One filesystem layer with its history.
#[derive(Debug, Default)]
pub struct Layer {
    pub diff_id: String,
    /// Where the blob was found (archive path or blob digest).
    pub blob: String,
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub instruction: String,
    pub comment: Option<String>,
    pub entries: Vec<Entry>,
    /// What each entry did (parallel to `entries`).
    pub changes: Vec<Change>,
    pub whiteouts: Vec<NodeId>,
    pub opaque: Vec<NodeId>,
    pub size: u64,
    pub tar_bytes: u64,
    pub counts: ChangeCounts,
    /// This layer's bytes hidden by later layers.
    pub hidden_bytes: u64,
    /// Lower layers' bytes this layer hid.
    pub hides_bytes: u64,
    /// Compressed blob size, what a pull downloads (registry manifests and
    /// OCI descriptors; unknown for engine images).
    pub pull_size: Option<u64>,
    /// Why the layer's content is absent (a foreign layer not fetched):
    /// the image is then incomplete.
    pub not_fetched: Option<String>,
}

/// Where a final entry lives: layer index and entry index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub layer: u16,
    pub entry: u32,
}

/// An indexed image: facts, layers and the merged file system.
#[derive(Debug, Default)]
pub struct Image {
    pub facts: ImageFacts,
    pub tree: PathTree,
    pub layers: Vec<Layer>,
    /// Final state per node: the entry visible in the merged file system.
    pub fs: Vec<Option<Loc>>,
    /// Entries shipped but hidden in the final file system.
    pub hidden: Vec<Hidden>,
    /// Contents of captured small files visible in the final file system.
    pub captured: HashMap<NodeId, Box<[u8]>>,
}

impl Image {
    pub fn entry(&self, loc: Loc) -> &Entry {
        &self.layers[loc.layer as usize].entries[loc.entry as usize]
    }

    /// The visible entry at an absolute or relative path.
    pub fn final_entry(&self, path: &str) -> Option<(Loc, &Entry)> {
        let node = self.tree.lookup(path)?;
        let loc = self.fs.get(node as usize).copied().flatten()?;
        Some((loc, self.entry(loc)))
    }

    /// Captured content of a visible file.
    pub fn captured_file(&self, path: &str) -> Option<&[u8]> {
        let node = self.tree.lookup(path)?;
        self.captured.get(&node).map(|b| &b[..])
    }

    /// Sum of the layers' sizes: what `docker image inspect` reports.
    pub fn total_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// What a pull downloads: the layers' compressed sizes, when every one
    /// is known.
    pub fn pull_size(&self) -> Option<u64> {
        self.layers.iter().map(|l| l.pull_size).sum()
    }

    /// Layers named but not read (foreign layers): the analysis misses them.
    pub fn is_incomplete(&self) -> bool {
        self.layers.iter().any(|l| l.not_fetched.is_some())
    }
}

/// Turn a history `created_by` into Dockerfile-like text.
pub fn clean_instruction(created_by: &str) -> String {
    let mut s = created_by.trim();
    // BuildKit appends "# buildkit".
    if let Some(rest) = s.strip_suffix("# buildkit") {
        s = rest.trim_end();
    }
    // Build args prefix: "|2 A=1 B=2 /bin/sh -c ..."
    if s.starts_with('|')
        && let Some(i) = s.find("/bin/sh -c ")
    {
        s = &s[i..];
    }
    if let Some(rest) = s.strip_prefix("RUN ") {
        s = rest.trim_start();
    }
    if let Some(rest) = s
        .strip_prefix("/bin/sh -c ")
        .or_else(|| s.strip_prefix("/bin/bash -c "))
        .or_else(|| s.strip_prefix("/bin/sh -o pipefail -c "))
    {
        let rest = rest.trim_start();
        if let Some(nop) = rest.strip_prefix("#(nop)") {
            return nop.trim().to_string();
        }
        return format!("RUN {}", rest.trim());
    }
    const KEYWORDS: [&str; 17] = [
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
        "RUN",
    ];
    let first = s.split_whitespace().next().unwrap_or("");
    if KEYWORDS.contains(&first) || s.is_empty() {
        s.to_string()
    } else if created_by.trim_start().starts_with("RUN ") {
        format!("RUN {s}")
    } else {
        s.to_string()
    }
}

/// What a layer did, for the layer lists: a cleaned instruction with the
/// content hashes of the classic builder named away (`COPY file:de15… in
/// /app/go-app` is `COPY → /app/go-app`, `COPY dir:… in /app/static` is
/// `COPY dir → /app/static`) and any other run of 12 or more hex digits
/// cut to 8. The full instruction, hashes and all, stays in
/// [`Layer::instruction`] for the details and the JSON.
pub fn layer_name(instruction: &str) -> String {
    let s = instruction.trim();
    let mut words = s.splitn(2, ' ');
    let verb = words.next().unwrap_or("");
    let rest = words.next().unwrap_or("").trim_start();
    if matches!(verb, "COPY" | "ADD")
        && let Some((src, dest)) = rest.split_once(" in ")
        && let Some((kind, hash)) = src.split_once(':')
        && !hash.is_empty()
        && hash.chars().all(|c| c.is_ascii_hexdigit())
    {
        let what = match kind {
            "file" => "",
            "dir" => " dir",
            "multi" => " files",
            _ => " ?",
        };
        if what != " ?" {
            return shorten_hex(&format!("{verb}{what} \u{2192} {}", dest.trim()), 8);
        }
    }
    shorten_hex(s, 8)
}

/// Runs of 12 or more hex digits (content hashes) cut to their first
/// `keep` digits and an ellipsis: `keep` 8 leaves no hash-like run, 12
/// leaves a short id as `docker history` prints it.
pub fn shorten_hex(s: &str, keep: usize) -> String {
    const RUN: usize = 12;
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= RUN.max(keep + 1) {
            out.push_str(&run[..keep]);
            out.push('\u{2026}');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Does `s` hold a run of 12 or more hex digits (a content hash)?
pub fn has_hash_run(s: &str) -> bool {
    let mut n = 0;
    for c in s.chars() {
        n = if c.is_ascii_hexdigit() { n + 1 } else { 0 };
        if n >= 12 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::clean_instruction as c;

    #[test]
    fn cleans_history_noise() {
        assert_eq!(
            c("/bin/sh -c #(nop)  CMD [\"/app/go-app\"]"),
            "CMD [\"/app/go-app\"]"
        );
        assert_eq!(
            c("/bin/sh -c #(nop) COPY dir:8c0d2a1e in /app "),
            "COPY dir:8c0d2a1e in /app"
        );
        assert_eq!(
            c("/bin/sh -c go build -o /app/go-app ."),
            "RUN go build -o /app/go-app ."
        );
        assert_eq!(
            c("|1 GO_IMAGE=golang /bin/sh -c go build ."),
            "RUN go build ."
        );
        assert_eq!(
            c("RUN /bin/sh -c apk add curl # buildkit"),
            "RUN apk add curl"
        );
        assert_eq!(c("COPY . . # buildkit"), "COPY . .");
        assert_eq!(c("WORKDIR /app"), "WORKDIR /app");
        assert_eq!(c("bash"), "bash");
    }

    #[test]
    fn layers_are_named_by_what_they_did() {
        use super::{has_hash_run, layer_name as n};
        let h = "de15d81d61c0a3b3e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";
        assert_eq!(
            n(&format!("COPY file:{h} in /app/go-app")),
            "COPY \u{2192} /app/go-app"
        );
        assert_eq!(
            n(&format!("COPY dir:{h} in /app/static ")),
            "COPY dir \u{2192} /app/static"
        );
        assert_eq!(
            n(&format!("ADD multi:{h} in /etc/")),
            "ADD files \u{2192} /etc/"
        );
        assert_eq!(n("ADD file:9a1b in /"), "ADD \u{2192} /");
        assert_eq!(
            n("COPY /out/server /app/server"),
            "COPY /out/server /app/server"
        );
        assert_eq!(n("RUN go build ."), "RUN go build .");
        let other = n(&format!("RUN curl -o x https://h/{h}.tgz"));
        assert_eq!(other, "RUN curl -o x https://h/de15d81d\u{2026}.tgz");
        assert!(!has_hash_run(&other));
        assert!(has_hash_run(h));
    }
}
