//! Podman through both paths: its Docker-compatible API (the export) and
//! its containers/storage read directly (`--via storage`). Each test runs
//! `podman system service` of its own, on a store of its own (a temporary
//! `--root`), so nothing it does touches another podman's images.
//!
//! Podman's inspect counts an image's size otherwise than Docker: the sum
//! of its layers' tar sizes (`diff-size` in layers.json, headers and
//! padding included) plus the image's metadata items (config, manifest,
//! signatures). layerscope reports Docker's size (file bytes) for every
//! source; the test checks both numbers against the engines' own.

mod common_engine;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common_engine::compare::{assert_same, diff_ids, kinds_image, report, without_via};
use common_engine::*;
use serde_json::Value;

/// A podman store and API service of the test's own; stopped and removed
/// on drop (also when the test panics).
struct Podman {
    child: Option<Child>,
    /// `unix://…/podman.sock`, for DOCKER_HOST.
    host: String,
    /// Last: removed after the service has stopped.
    dir: tempfile::TempDir,
}

impl Podman {
    /// Start podman's service on a fresh store, or skip (under CI: fail).
    fn start(test: &str) -> Option<Podman> {
        if !have("podman", "--version") {
            return unavailable(test, "podman is not installed (apt-get install podman)");
        }
        if !rustix::process::geteuid().is_root() {
            return unavailable(test, "not root: podman's own store is read as root");
        }
        if !engine_available(test) {
            return None;
        }
        // Under /var/tmp: overlay needs a store on a real file system, and
        // /tmp may be a tmpfs elsewhere.
        let dir = tempfile::Builder::new()
            .prefix("ls-podman-")
            .tempdir_in("/var/tmp")
            .expect("tempdir");
        let sock = dir.path().join("podman.sock");
        let log = std::fs::File::create(dir.path().join("service.log")).expect("log");
        let mut p = Podman {
            child: None,
            host: format!("unix://{}", sock.display()),
            dir,
        };
        let child = p
            .podman()
            .args(["system", "service", "--time=0", &p.host])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start podman system service");
        p.child = Some(child);
        let t0 = Instant::now();
        while !sock.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "podman's service did not listen within 30 s: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(p)
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `podman` on this store.
    fn podman(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args([
                "--storage-driver",
                "overlay",
                "--events-backend",
                "file",
                "--cgroup-manager",
                "cgroupfs",
            ]);
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    /// Copy the Docker engine's image `tag` into this store (`docker save`
    /// then `podman load`); its podman name.
    fn load_from_docker(&self, tag: &str) -> String {
        let archive = self.dir.path().join("image.tar");
        run_ok(
            Command::new("docker")
                .args(["save", "-o"])
                .arg(&archive)
                .arg(tag),
            "docker save",
        );
        run_ok(
            self.podman().args(["load", "-q", "-i"]).arg(&archive),
            "podman load",
        );
        std::fs::remove_file(&archive).expect("remove the archive");
        format!("localhost/{tag}")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Podman's overlay driver bind-mounts its `overlay` directory on
        // itself: unmount everything under the store, deepest first, so
        // that the temporary directory can go with its images.
        let dir = self.dir.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&format!("{dir}/")))
            .collect();
        points.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in points {
            let _ = Command::new("umount").arg(m).status();
        }
    }
}

/// Podman's own size of an image: what `podman image inspect` says.
fn podman_size(p: &Podman, image: &str) -> u64 {
    let out = run_ok(
        p.podman()
            .args(["image", "inspect", "--format", "{{.Size}}", image]),
        "podman image inspect",
    );
    out.trim().parse().expect("a size")
}

/// What containers/storage records of the image, read with nothing but
/// serde_json: each layer's tar size (`diff-size`, bottom first) and the
/// sizes of the image's metadata items (`big-data-sizes`).
fn store_records(root: &Path, image_id: &str, diff_ids: &[String]) -> (Vec<u64>, u64) {
    let read = |p: &str| -> Value {
        serde_json::from_slice(&std::fs::read(root.join(p)).expect(p)).expect("JSON")
    };
    let layers = read("overlay-layers/layers.json");
    let tar_sizes = diff_ids
        .iter()
        .map(|d| {
            layers
                .as_array()
                .expect("layers")
                .iter()
                .find(|l| l["diff-digest"] == *d)
                .and_then(|l| l["diff-size"].as_u64())
                .expect("the layer's diff-size")
        })
        .collect();
    let images = read("overlay-images/images.json");
    let id = image_id.trim_start_matches("sha256:");
    let image = images
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["id"] == id)
        .expect("the image in images.json");
    let meta = image["big-data-sizes"]
        .as_object()
        .expect("big-data-sizes")
        .values()
        .map(|v| v.as_u64().expect("a size"))
        .sum();
    (tar_sizes, meta)
}

#[test]
fn podman_reads_the_same_through_storage_and_its_api() {
    let Some(p) = Podman::start("podman_storage_and_api") else {
        return;
    };
    let mut clean = Cleanup::new();
    let Some(tag) = kinds_image(&mut clean, "pm-kinds") else {
        return;
    };
    let image = p.load_from_docker(&tag);
    let (storage, via_s) = without_via(report(&p.host, &image, "storage"));
    let (export, via_e) = without_via(report(&p.host, &image, "export"));
    assert_eq!((via_s.as_str(), via_e.as_str()), ("storage", "export"));
    assert_same(&storage, &export, &image);
    // Auto reads podman's storage too, silently.
    let (auto, via_a) = without_via(report(&p.host, &image, "auto"));
    assert_eq!(via_a, "storage");
    assert_same(&auto, &export, &image);

    let img = &storage["images"][0];
    assert_eq!(img["tags"][0], image.as_str());
    // layerscope's size is Docker's, for the same image in Docker.
    let (docker_size, layers, _) = inspect_size(&tag);
    assert_eq!(img["totals"]["size_bytes"].as_u64(), Some(docker_size));
    let ours = img["layers"].as_array().expect("layers");
    assert_eq!(ours.len(), layers);
    // Podman's size is its layers' tars (as layers.json records them, and
    // as layerscope measured them) plus its metadata items.
    let diff_ids: Vec<String> = ours
        .iter()
        .map(|l| l["diff_id"].as_str().expect("diff_id").to_string())
        .collect();
    let (tar_sizes, meta) = store_records(&p.root(), img["id"].as_str().expect("id"), &diff_ids);
    let tar_bytes: Vec<u64> = ours
        .iter()
        .map(|l| l["tar_bytes"].as_u64().expect("tar_bytes"))
        .collect();
    assert_eq!(tar_bytes, tar_sizes);
    assert_eq!(
        podman_size(&p, &image),
        tar_sizes.iter().sum::<u64>() + meta,
        "podman's size is its layers' tar sizes plus its metadata"
    );
}

/// The tar-splits of `image`'s layers in the store at `root`.
fn tar_splits(root: &Path, diff_ids: &[String]) -> Vec<PathBuf> {
    let layers: Value = serde_json::from_slice(
        &std::fs::read(root.join("overlay-layers/layers.json")).expect("layers.json"),
    )
    .expect("JSON");
    diff_ids
        .iter()
        .map(|d| {
            let id = layers
                .as_array()
                .expect("layers")
                .iter()
                .find(|l| l["diff-digest"] == *d)
                .and_then(|l| l["id"].as_str())
                .expect("the layer's id");
            root.join(format!("overlay-layers/{id}.tar-split.gz"))
        })
        .collect()
}

#[test]
fn without_tar_split_the_directories_are_walked() {
    let Some(p) = Podman::start("podman_walk") else {
        return;
    };
    let mut clean = Cleanup::new();
    let Some(tag) = kinds_image(&mut clean, "pm-walk") else {
        return;
    };
    let image = p.load_from_docker(&tag);
    let (export, _) = without_via(report(&p.host, &image, "export"));
    let diff_ids = diff_ids(&export);
    // Walking needs CAP_SYS_ADMIN (trusted.* xattrs); reading tar-splits
    // does not. `setpriv` drops it from the bounding set, so layerscope
    // runs as root without it.
    let bin = assert_cmd::cargo::cargo_bin("layerscope");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let without_cap = |via: &str, name: &str| {
        let json = out_dir.path().join(name);
        let out = Command::new("setpriv")
            .arg("--bounding-set=-sys_admin")
            .arg(&bin)
            .env("DOCKER_HOST", &p.host)
            .args(["--no-cache", "--via", via, "--json"])
            .arg(&json)
            .arg(&image)
            .output()
            .expect("run layerscope under setpriv");
        let report = std::fs::read(&json)
            .ok()
            .map(|b| serde_json::from_slice::<Value>(&b).expect("JSON"));
        (out, report)
    };
    let (out, auto) = without_cap("auto", "tar-split.json");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (auto, via) = without_via(auto.expect("a report"));
    assert_eq!(via, "storage", "tar-splits are read without CAP_SYS_ADMIN");
    assert_same(&auto, &export, "tar-split-without-cap");

    // This test's own store: its tar-splits are moved aside (the odd
    // layers and the top one, so that walks and tar-splits meet in one
    // image).
    let splits = tar_splits(&p.root(), &diff_ids);
    for (i, s) in splits.iter().enumerate() {
        if i % 2 == 1 || i + 1 == splits.len() {
            std::fs::rename(s, s.with_extension("aside")).expect("move the tar-split aside");
        }
    }
    let (walked, via) = without_via(report(&p.host, &image, "storage"));
    assert_eq!(via, "storage");
    assert_same(&walked, &export, "walked");

    // Without CAP_SYS_ADMIN, --via storage refuses to walk, in one line.
    let (out, report) = without_cap("storage", "refused.json");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("needs CAP_SYS_ADMIN"), "{err}");
    assert!(report.is_none(), "no report after a refusal");
    // Auto says why once and exports instead. (Podman itself cannot export
    // an image whose tar-splits are gone: its rebuilt tar does not match
    // the diff_id, which it reports, as the second line.)
    let (out, _) = without_cap("auto", "auto.json");
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.contains("through the export") && first.contains("needs CAP_SYS_ADMIN"),
        "{err}"
    );
    assert_eq!(err.matches("CAP_SYS_ADMIN").count(), 1, "{err}");
    assert!(
        out.status.success() || err.contains("Digest did not match"),
        "{err}"
    );
}
