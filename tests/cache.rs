//! The layer-index cache against a real engine: a warm run must not export
//! (proved through a proxy that refuses exports), must report exactly what
//! a cold run reports, and must survive corrupt entries, concurrent runs, an
//! unwritable directory and its own size cap. Each test has its own cache
//! directory (XDG_CACHE_HOME).

mod common_engine;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use common_engine::*;

fn layerscope(cache_home: &Path) -> Command {
    let mut c = Command::cargo_bin("layerscope").expect("binary");
    c.env("XDG_CACHE_HOME", cache_home)
        .env_remove("LAYERSCOPE_CACHE_MAX_SIZE");
    c
}

/// The cache's files (not temporaries), by path, with their sizes.
fn cached_files(cache_home: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let root = cache_home.join("layerscope");
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let md = e.metadata().expect("metadata");
            if md.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), md.len()));
            }
        }
    }
    out.sort();
    out
}

/// A three-layer image: a file, a copy of it and an overwrite, so the
/// report has waste and hidden bytes.
fn build_image(clean: &mut Cleanup, name: &str) -> String {
    let tag = clean.add(&unique(name));
    // Every layer unique per test: tests run in parallel, and a shared
    // build step would share (and remove) intermediate images and tags.
    let mut data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    data[..name.len()].copy_from_slice(name.as_bytes());
    build(
        &tag,
        "FROM scratch\nCOPY a /a\nCOPY a /dup\nCOPY b /a\nCMD [\"/a\"]\n",
        vec![
            Item::File("a", data, 0o644),
            Item::File("b", name.repeat(5000).into_bytes(), 0o755),
        ],
    );
    tag
}

/// Run with `--json -` and return the report.
fn report(cmd: &mut Command, tag: &str) -> (String, String) {
    let out = cmd
        .args(["--json", "-", &format!("docker:{tag}")])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    (String::from_utf8(out.stdout).expect("utf-8"), stderr)
}

/// A unix-socket proxy to the real engine that answers every export
/// request (`/images/NAME/get`) with an error and passes everything else.
fn no_export_proxy(upstream: String) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("noexport.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = UnixStream::connect(&upstream) else {
                return;
            };
            let (mut c_read, mut s_write) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            let mut c_write = client.try_clone().expect("clone");
            let (mut s_read, mut c_answer) = (server.try_clone().expect("clone"), client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_read, &mut c_answer);
            });
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match c_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let req = String::from_utf8_lossy(&buf[..n]);
                    if req.contains("/images/") && req.contains("/get") {
                        let body = r#"{"message":"exports are refused by this test proxy"}"#;
                        let _ = write!(
                            c_write,
                            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = c_write.shutdown(std::net::Shutdown::Both);
                        let _ = server.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let host = format!("unix://{}", path.display());
    (dir, host)
}

fn engine_socket() -> Option<String> {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    host.strip_prefix("unix://").map(str::to_string)
}

#[test]
fn a_warm_run_reports_the_same_without_exporting() {
    if !engine_available("warm_run") {
        return;
    }
    let Some(sock) = engine_socket() else {
        eprintln!("SKIPPED warm_run: DOCKER_HOST is not a unix socket");
        return;
    };
    let mut clean = Cleanup::new();
    let tag = build_image(&mut clean, "warm");
    let home = tempfile::tempdir().expect("tempdir");
    let (proxy_dir, proxy) = no_export_proxy(sock);

    // The proxy really refuses exports: a run without the cache fails.
    let out = layerscope(home.path())
        .env("DOCKER_HOST", &proxy)
        .args(["--no-cache", &format!("docker:{tag}")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        cached_files(home.path()).is_empty(),
        "--no-cache writes nothing"
    );

    let (cold, err) = report(&mut layerscope(home.path()), &tag);
    assert!(err.is_empty(), "{err}");
    let files = cached_files(home.path());
    let (_, layers, id) = inspect_size(&tag);
    // One entry per distinct layer, and the config.
    let layer_files = files
        .iter()
        .filter(|(p, _)| p.parent().is_some_and(|d| d.ends_with("layers")));
    assert_eq!(layer_files.count(), layers);
    let config = home
        .path()
        .join(format!("layerscope/v{}/configs", layerscope::cache::FORMAT))
        .join(id.trim_start_matches("sha256:"));
    assert!(config.is_file(), "{files:?}");

    let (warm, err) = report(layerscope(home.path()).env("DOCKER_HOST", &proxy), &tag);
    assert!(err.is_empty(), "{err}");
    assert_eq!(
        warm, cold,
        "a warm run reports exactly what a cold run does"
    );
    drop(proxy_dir);
}

#[test]
fn corrupt_and_truncated_entries_are_reported_once_and_rebuilt() {
    if !engine_available("corrupt_entries") {
        return;
    }
    let mut clean = Cleanup::new();
    let tag = build_image(&mut clean, "corrupt");
    let home = tempfile::tempdir().expect("tempdir");
    let (cold, _) = report(&mut layerscope(home.path()), &tag);
    let files = cached_files(home.path());
    let (layer, _) = files
        .iter()
        .find(|(p, _)| p.parent().is_some_and(|d| d.ends_with("layers")))
        .expect("a layer entry");
    let (config, _) = files
        .iter()
        .find(|(p, _)| p.parent().is_some_and(|d| d.ends_with("configs")))
        .expect("a config entry");

    // A flipped byte in a layer entry.
    let mut bytes = std::fs::read(layer).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(layer, &bytes).expect("write");
    let (again, err) = report(&mut layerscope(home.path()), &tag);
    assert_eq!(again, cold);
    let warnings: Vec<&str> = err.lines().collect();
    assert_eq!(warnings.len(), 1, "reported once: {err}");
    assert!(
        warnings[0].starts_with("layerscope: warning: cache entry"),
        "{err}"
    );
    assert!(warnings[0].contains("fails its checksum"), "{err}");
    assert!(warnings[0].contains(&layer.display().to_string()), "{err}");
    assert!(layer.is_file(), "rebuilt");

    // A truncated config entry.
    let bytes = std::fs::read(config).expect("read");
    std::fs::write(config, &bytes[..bytes.len() - 3]).expect("write");
    let (again, err) = report(&mut layerscope(home.path()), &tag);
    assert_eq!(again, cold);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is truncated"), "{err}");

    // Rebuilt: the next run is clean.
    let (again, err) = report(&mut layerscope(home.path()), &tag);
    assert_eq!(again, cold);
    assert!(err.is_empty(), "{err}");
}

#[test]
fn concurrent_runs_share_one_cache_safely() {
    if !engine_available("concurrent_runs") {
        return;
    }
    let mut clean = Cleanup::new();
    let tag = build_image(&mut clean, "concurrent");
    let home = tempfile::tempdir().expect("tempdir");
    let bin = assert_cmd::cargo::cargo_bin("layerscope");
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&bin)
                .env("XDG_CACHE_HOME", home.path())
                .args(["--json", "-", &format!("docker:{tag}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    for o in &outputs {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.stdout, outputs[0].stdout);
    }
    let files = cached_files(home.path());
    assert!(
        files.iter().all(|(p, _)| !p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))),
        "no temporary files left: {files:?}"
    );
    // Whichever run wrote last, the cache holds the whole image.
    let (_, layers, _) = inspect_size(&tag);
    let in_dir = |d: &str| {
        files
            .iter()
            .filter(|(p, _)| p.parent().is_some_and(|x| x.ends_with(d)))
            .count()
    };
    assert_eq!(
        (in_dir("layers"), in_dir("configs")),
        (layers, 1),
        "{files:?}"
    );
    let (warm, err) = report(&mut layerscope(home.path()), &tag);
    assert!(err.is_empty(), "{err}");
    assert_eq!(warm.as_bytes(), &outputs[0].stdout[..]);
}

#[test]
fn an_unwritable_cache_is_a_warning_not_a_failure() {
    if !engine_available("unwritable_cache") {
        return;
    }
    let mut clean = Cleanup::new();
    let tag = build_image(&mut clean, "unwritable");
    let dir = tempfile::tempdir().expect("tempdir");
    // A file where the cache directory should be.
    let home = dir.path().join("not-a-dir");
    std::fs::write(&home, b"x").expect("write");
    let (_, err) = report(&mut layerscope(&home), &tag);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot write to the layer cache"), "{err}");
}

#[test]
fn info_prune_and_the_size_cap_match_the_directory() {
    if !engine_available("cache_commands") {
        return;
    }
    let mut clean = Cleanup::new();
    let tag = build_image(&mut clean, "prune");
    let home = tempfile::tempdir().expect("tempdir");
    report(&mut layerscope(home.path()), &tag);
    let files = cached_files(home.path());
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    let n_layers = files
        .iter()
        .filter(|(p, _)| p.parent().is_some_and(|d| d.ends_with("layers")))
        .count();

    let out = layerscope(home.path())
        .args(["cache", "info"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let info = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        info.contains(&home.path().join("layerscope").display().to_string()),
        "{info}"
    );
    assert!(info.contains(&format!("layers     {n_layers} (")), "{info}");
    assert!(info.contains("configs    1 ("), "{info}");
    assert!(
        info.contains(&format!(
            "total      {} of a 2 GB cap",
            layerscope::output::size(total)
        )),
        "{info}"
    );

    // One entry last used 40 days ago: only it goes with --older-than 30d.
    let (old, old_len) = &files[0];
    let f = std::fs::File::options()
        .write(true)
        .open(old)
        .expect("open");
    f.set_modified(SystemTime::now() - Duration::from_secs(40 * 86_400))
        .expect("set mtime");
    let out = layerscope(home.path())
        .args(["cache", "prune", "--older-than", "30d"])
        .output()
        .expect("run");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.starts_with(&format!(
            "removed 1 cache entries ({})",
            layerscope::output::size(*old_len)
        )),
        "{said}"
    );
    assert!(!old.exists());
    assert_eq!(cached_files(home.path()).len(), files.len() - 1);

    let out = layerscope(home.path())
        .args(["cache", "prune", "--older-than", "soon"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--older-than: invalid age"));

    let out = layerscope(home.path())
        .args(["cache", "prune"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(cached_files(home.path()).is_empty());

    // A cap that holds one image but not two: the least recently used
    // image goes when another comes.
    let other = build_image(&mut clean, "prune-other");
    let cap = (total * 3 / 2).to_string();
    report(
        layerscope(home.path()).env("LAYERSCOPE_CACHE_MAX_SIZE", &cap),
        &tag,
    );
    let first = cached_files(home.path());
    std::thread::sleep(Duration::from_millis(20));
    report(
        layerscope(home.path()).env("LAYERSCOPE_CACHE_MAX_SIZE", &cap),
        &other,
    );
    let now = cached_files(home.path());
    let kept: u64 = now.iter().map(|(_, n)| n).sum();
    assert!(kept <= total * 3 / 2, "{kept} > {cap}");
    assert!(
        first.iter().any(|f| !now.contains(f)),
        "something of the first image was evicted"
    );
    let (_, _, other_id) = inspect_size(&other);
    let other_config = home
        .path()
        .join(format!("layerscope/v{}/configs", layerscope::cache::FORMAT))
        .join(other_id.trim_start_matches("sha256:"));
    assert!(other_config.is_file(), "the image just run stays: {now:?}");

    // A cap smaller than one image: not cached, said once.
    let (_, err) = report(
        layerscope(home.path()).env("LAYERSCOPE_CACHE_MAX_SIZE", "10"),
        &tag,
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("more than the cache's cap"), "{err}");
}
