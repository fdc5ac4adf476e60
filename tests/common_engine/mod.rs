//! Helpers for tests against a real Docker engine: connect (or skip, or
//! fail under CI), build and import throwaway images through the API, list
//! exported layers independently of layerscope's indexer, put a faulty
//! proxy in front of the engine ([`proxy`]), start a second engine of the
//! test's own ([`dockerd`]) and compare reports read two ways ([`compare`]).
#![allow(dead_code)]

pub mod compare;
pub mod dockerd;
pub mod proxy;

// Each test crate uses its own part of these.
#[allow(unused_imports)]
pub use dockerd::{Dockerd, Listen, Spec, unavailable};
#[allow(unused_imports)]
pub use proxy::{AfterBudget, Faults, Proxy, engine_socket, proxy};

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::OnceLock;

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptions, CreateImageOptions, RemoveImageOptions};
use futures_util::StreamExt;

/// Prefix of every image the tests create.
pub const PREFIX: &str = "layerscope-test";

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn connect() -> Result<Docker, String> {
    let d = Docker::connect_with_defaults().map_err(|e| e.to_string())?;
    let d = d.negotiate_version().await.map_err(|e| e.to_string())?;
    d.ping().await.map_err(|e| e.to_string())?;
    Ok(d)
}

/// Does an engine answer? Under CI a missing engine fails the test loudly;
/// elsewhere the test is skipped with a visible message.
pub fn engine_available(test: &str) -> bool {
    static STATE: OnceLock<Result<(), String>> = OnceLock::new();
    let state = STATE.get_or_init(|| rt().block_on(connect()).map(|_| ()));
    match state {
        Ok(()) => true,
        Err(e) => {
            let host = std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CI is set but no Docker engine answers at {host}: {e} (.ci/run must start one)"
                );
            }
            eprintln!("SKIPPED {test}: no Docker engine answers at {host} ({e})");
            false
        }
    }
}

/// A unique tag for this test run.
pub fn unique(name: &str) -> String {
    format!("{PREFIX}-{}-{name}:latest", std::process::id())
}

/// Removes the named images when dropped (also when a test panics).
pub struct Cleanup(pub Vec<String>);

impl Cleanup {
    pub fn new() -> Self {
        Cleanup(Vec::new())
    }
    pub fn add(&mut self, tag: &str) -> String {
        self.0.push(tag.to_string());
        tag.to_string()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.0);
        if names.is_empty() {
            return;
        }
        rt().block_on(async {
            if let Ok(d) = connect().await {
                // Last created first: children before their bases.
                for n in names.iter().rev() {
                    let _ = d
                        .remove_image(
                            n,
                            Some(RemoveImageOptions {
                                force: true,
                                noprune: false,
                                ..Default::default()
                            }),
                            None,
                        )
                        .await;
                }
            }
        });
    }
}

/// A file of a build context or root file system.
pub enum Item<'a> {
    File(&'a str, Vec<u8>, u32),
    Symlink(&'a str, &'a str),
    Dir(&'a str, u32),
}

pub fn tar_of(items: &[Item]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for it in items {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        match it {
            Item::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(*mode);
                b.append_data(&mut h, p, &data[..]).expect("tar file");
            }
            Item::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(&mut h, p, target).expect("tar symlink");
            }
            Item::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(*mode);
                b.append_data(&mut h, p, std::io::empty()).expect("tar dir");
            }
        }
    }
    b.into_inner().expect("tar")
}

/// Build `tag` from a Dockerfile and context items (classic builder, no
/// pull). A build FROM scratch skips the build cache: tests build in
/// parallel and remove their images as they end, and the classic
/// builder's cache lookup reads every image built on the same parent
/// (scratch is everyone's), failing the build ("unable to find image")
/// when another test removes one meanwhile. Builds on a test's own base
/// keep the cache, which some tests rely on to share their first layers.
pub fn build(tag: &str, dockerfile: &str, items: Vec<Item>) {
    let mut items = items;
    items.push(Item::File(
        "Dockerfile",
        dockerfile.as_bytes().to_vec(),
        0o644,
    ));
    let ctx = tar_of(&items);
    rt().block_on(async {
        let d = connect().await.expect("engine");
        let opts = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(tag.to_string()),
            rm: true,
            forcerm: true,
            nocache: dockerfile.trim_start().starts_with("FROM scratch"),
            ..Default::default()
        };
        let mut s = d.build_image(opts, None, Some(bollard::body_full(ctx.into())));
        let mut log = String::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(i) => log.push_str(i.stream.as_deref().unwrap_or("")),
                Err(e) => panic!("building {tag} failed: {e}\n{log}"),
            }
        }
    });
}

/// Import a root file system tar as image `tag` through the API.
pub fn import(tag: &str, rootfs: Vec<u8>) {
    let (repo, t) = tag.rsplit_once(':').expect("tag with :");
    rt().block_on(async {
        let d = connect().await.expect("engine");
        let opts = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo.into()),
            tag: Some(t.into()),
            ..Default::default()
        };
        let mut s = d.create_image(Some(opts), Some(bollard::body_full(rootfs.into())), None);
        while let Some(item) = s.next().await {
            if let Err(e) = item {
                panic!("importing {tag} failed: {e}");
            }
        }
    });
}

/// A tiny base with Debian's static busybox and the applets the test
/// Dockerfiles use, or None (with a message) when the host has no busybox.
pub fn busybox_rootfs() -> Option<Vec<u8>> {
    busybox_rootfs_with(Vec::new())
}

/// [`busybox_rootfs`] with more files.
pub fn busybox_rootfs_with(extra: Vec<Item>) -> Option<Vec<u8>> {
    let path = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file());
    let Some(path) = path else {
        let msg = "/bin/busybox not found: install Debian's busybox-static (apt-get install busybox-static)";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return None;
    };
    let bin = std::fs::read(path).expect("read busybox");
    let mut items = vec![
        Item::Dir("bin", 0o755),
        Item::File("bin/busybox", bin, 0o755),
    ];
    let applets = [
        "sh", "mkdir", "head", "rm", "chmod", "ls", "cat", "cp", "mv", "echo", "printf", "true",
        "ln",
    ];
    let names: Vec<String> = applets.iter().map(|a| format!("bin/{a}")).collect();
    for n in &names {
        items.push(Item::Symlink(n, "busybox"));
    }
    items.push(Item::Dir("tmp", 0o1777));
    items.extend(extra);
    Some(tar_of(&items))
}

/// `docker image inspect` through the CLI: an oracle independent of both
/// bollard and layerscope. Falls back to the API when there is no CLI.
pub fn inspect_size(name: &str) -> (u64, usize, String) {
    let out = std::process::Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Size}} {{len .RootFS.Layers}} {{.Id}}",
            name,
        ])
        .output();
    if let Ok(o) = out
        && o.status.success()
    {
        let text = String::from_utf8_lossy(&o.stdout);
        let mut it = text.split_whitespace();
        let size = it.next().and_then(|s| s.parse().ok()).expect("size");
        let layers = it.next().and_then(|s| s.parse().ok()).expect("layers");
        let id = it.next().expect("id").to_string();
        return (size, layers, id);
    }
    rt().block_on(async {
        let d = connect().await.expect("engine");
        let i = d.inspect_image(name).await.expect("inspect");
        (
            i.size.expect("size") as u64,
            i.root_fs.and_then(|r| r.layers).map_or(0, |l| l.len()),
            i.id.expect("id"),
        )
    })
}

/// One entry of an exported layer, as the tar says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub kind: char, // f file, d dir, l symlink, h hardlink, o other
    pub size: u64,
    pub link: Option<String>,
}

/// Export `name` through the API and list each layer's entries, bottom
/// first, with nothing but the tar crate (legacy or OCI export layout).
pub fn export_layers(name: &str) -> Vec<Vec<Listed>> {
    let bytes: Vec<u8> = rt().block_on(async {
        let d = connect().await.expect("engine");
        let mut s = d.export_image(name);
        let mut all = Vec::new();
        while let Some(chunk) = s.next().await {
            all.extend_from_slice(&chunk.expect("export chunk"));
        }
        all
    });
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut ar = tar::Archive::new(&bytes[..]);
    for e in ar.entries().expect("export tar") {
        let mut e = e.expect("entry");
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let p = e
            .path()
            .expect("path")
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        files.insert(p, data);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(files.get("manifest.json").expect("manifest.json")).expect("json");
    let layers = manifest[0]["Layers"].as_array().expect("Layers").clone();
    layers
        .iter()
        .map(|l| {
            let path = l.as_str().expect("layer path");
            list_layer(files.get(path).expect("layer blob"))
        })
        .collect()
}

fn list_layer(data: &[u8]) -> Vec<Listed> {
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(data);
    for e in ar.entries().expect("layer tar") {
        let e = e.expect("layer entry");
        let path = e
            .path()
            .expect("path")
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let t = e.header().entry_type();
        let kind = match t {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            _ => 'o',
        };
        let link = e
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.to_string_lossy().into_owned());
        out.push(Listed {
            path,
            kind,
            size: e.size(),
            link,
        });
    }
    out
}

/// Docker's size of a layer: regular files plus symlink target lengths.
pub fn layer_size(entries: &[Listed]) -> u64 {
    entries
        .iter()
        .filter(|e| !e.path.rsplit('/').next().unwrap_or("").starts_with(".wh."))
        .map(|e| match e.kind {
            'f' => e.size,
            'l' => e.link.as_ref().map_or(0, |l| l.len() as u64),
            _ => 0,
        })
        .sum()
}

/// The merged file system, overlay rules applied: path -> (layer, entry).
pub fn merge(layers: &[Vec<Listed>]) -> BTreeMap<String, (usize, Listed)> {
    let mut fs: BTreeMap<String, (usize, Listed)> = BTreeMap::new();
    let remove_under = |fs: &mut BTreeMap<String, (usize, Listed)>, dir: &str| {
        let prefix = format!("{dir}/");
        fs.retain(|p, _| !p.starts_with(&prefix));
    };
    for (i, layer) in layers.iter().enumerate() {
        for e in layer {
            let (dir, base) = match e.path.rsplit_once('/') {
                Some((d, b)) => (d.to_string(), b),
                None => (String::new(), e.path.as_str()),
            };
            if base == ".wh..wh..opq" {
                // Lower content of the directory disappears.
                fs.retain(|p, (l, _)| !(p.starts_with(&format!("{dir}/")) && *l < i));
            } else if let Some(name) = base.strip_prefix(".wh.") {
                let target = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
                fs.remove(&target);
                remove_under(&mut fs, &target);
            }
        }
        for e in layer {
            let base = e.path.rsplit('/').next().unwrap_or("");
            if base.starts_with(".wh.") {
                continue;
            }
            if e.kind != 'd' {
                remove_under(&mut fs, &e.path);
            }
            fs.insert(e.path.clone(), (i, e.clone()));
        }
    }
    fs
}

/// Bytes visible in a merged file system, counted as Docker counts them.
pub fn visible_bytes(fs: &BTreeMap<String, (usize, Listed)>) -> u64 {
    let entries: Vec<Listed> = fs.values().map(|(_, e)| e.clone()).collect();
    layer_size(&entries)
}

/// Does `tool arg` run and succeed (is the tool there)?
pub fn have(tool: &str, arg: &str) -> bool {
    std::process::Command::new(tool)
        .arg(arg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run a command that must succeed; its stdout.
pub fn run_ok(cmd: &mut std::process::Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
