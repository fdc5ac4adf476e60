//! `docker://` against a real registry: Debian's docker-registry
//! (distribution 2.8) started here on 127.0.0.1 with htpasswd auth, images
//! built FROM scratch and pushed by the engine after `docker login` into a
//! test DOCKER_CONFIG. The oracles are independent of layerscope's HTTP
//! client: `docker image inspect`, the registry's own storage (tag links,
//! manifests, blob files) and its access log. Without docker-registry or an
//! engine these tests skip with a message; with CI set they fail.

mod common_engine;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command as Std, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common_engine::*;
use serde_json::Value;
use tempfile::TempDir;

const USER: &str = "tester";
const PASSWORD: &str = "s3cret-Pw-for-tests";

/// A registry process on a free loopback port, killed when dropped.
struct Registry {
    child: Child,
    port: u16,
    dir: TempDir,
}

fn tools_available(test: &str) -> bool {
    // `htpasswd` has no option that exits 0: look for it on PATH.
    if have("docker-registry", "--version") && which("htpasswd") {
        return true;
    }
    let msg = "docker-registry or htpasswd missing (apt-get install docker-registry apache2-utils; .ci/ensure-test-tools does)";
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED {test}: {msg}");
    false
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

impl Registry {
    fn start() -> Registry {
        let dir = TempDir::new().expect("tempdir");
        let htpasswd = run_ok(
            Std::new("htpasswd").args(["-Bbn", USER, PASSWORD]),
            "htpasswd",
        );
        std::fs::write(dir.path().join("htpasswd"), htpasswd).expect("htpasswd file");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: layerscope-test\n    path: {ht}\n",
            root = dir.path().join("data").display(),
            ht = dir.path().join("htpasswd").display(),
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Std::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let r = Registry { child, port, dir };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "docker-registry did not listen on {port}: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// GETs of these blobs in the access log so far.
    fn blob_gets(&self, digests: &[String]) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/"))
            .filter(|l| digests.iter().any(|d| l.contains(&format!("/blobs/{d} "))))
            .count()
    }

    fn v2(&self) -> PathBuf {
        self.dir.path().join("data/docker/registry/v2")
    }

    /// The manifest a tag names, read from the registry's storage.
    fn stored_manifest(&self, repo: &str, tag: &str) -> Value {
        let link = self.v2().join(format!(
            "repositories/{repo}/_manifests/tags/{tag}/current/link"
        ));
        let digest = std::fs::read_to_string(&link).expect("tag link");
        serde_json::from_slice(&std::fs::read(self.blob_path(digest.trim())).expect("manifest"))
            .expect("manifest json")
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256");
        self.v2()
            .join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A docker config directory, HOME and cache for the runs under test: no
/// credentials from the machine leak in.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        let e = Env {
            dir: TempDir::new().expect("tempdir"),
        };
        std::fs::create_dir_all(e.docker_config()).expect("docker config dir");
        e
    }
    fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker")
    }
    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    fn write_config(&self, json: &str) {
        std::fs::write(self.docker_config().join("config.json"), json).expect("config.json");
    }
    fn layerscope(&self) -> Command {
        let mut c = Command::cargo_bin("layerscope").expect("binary");
        c.env("DOCKER_CONFIG", self.docker_config())
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.cache())
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("CI");
        c
    }
}

fn docker_cli(env: &Env) -> Std {
    let mut c = Std::new("docker");
    c.arg("--config").arg(env.docker_config());
    c
}

fn login(env: &Env, reg: &Registry) {
    let mut child = docker_cli(env)
        .args(["login", "-u", USER, "--password-stdin", &reg.host()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker login");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(PASSWORD.as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("docker login");
    assert!(
        out.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn push(env: &Env, tag: &str) {
    run_ok(
        docker_cli(env).args(["push", tag]),
        &format!("docker push {tag}"),
    );
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

fn layer_digests(m: &Value) -> Vec<String> {
    m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect()
}

/// Not random but not compressible either: gzip keeps it about its size.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn one_error_line(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr).into_owned();
    assert_eq!(s.trim_end().lines().count(), 1, "one line: {s}");
    s
}

#[test]
fn pull_sizes_totals_and_warm_runs_against_a_real_registry() {
    let test = "pull_sizes_totals_and_warm_runs_against_a_real_registry";
    if !tools_available(test) || !engine_available(test) {
        return;
    }
    let reg = Registry::start();
    let env = Env::new();
    login(&env, &reg);
    let repo = format!("{PREFIX}/{}-app", std::process::id());
    let v1 = format!("{}/{repo}:v1", reg.host());
    let v2 = format!("{}/{repo}:v2", reg.host());
    let mut clean = Cleanup::new();
    clean.add(&v1);
    build(
        &v1,
        "FROM scratch\nCOPY a.bin /a.bin\nCOPY b.txt /data/b.txt\n",
        vec![
            Item::File("a.bin", noise(300_000, 7), 0o644),
            Item::File("b.txt", b"layerscope line\n".repeat(40_000), 0o644),
        ],
    );
    push(&env, &v1);
    let ref1 = format!("docker://{v1}");

    // Cold: every layer downloaded once; sizes as the engine and the
    // registry's storage say.
    let out = env
        .layerscope()
        .args([&ref1, "--json", "-"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out.stdout);
    let img = &report["images"][0];
    let (size, nlayers, _) = inspect_size(&v1);
    assert_eq!(
        img["totals"]["size_bytes"].as_u64(),
        Some(size),
        "vs docker image inspect"
    );
    assert_eq!(img["layers"].as_array().map(Vec::len), Some(nlayers));
    assert_eq!(img["source"].as_str(), Some(ref1.as_str()));
    let m = reg.stored_manifest(&repo, "v1");
    let digests = layer_digests(&m);
    let mut total_pull = 0;
    for (i, l) in m["layers"].as_array().expect("layers").iter().enumerate() {
        let want = l["size"].as_u64().expect("size");
        let on_disk = std::fs::metadata(reg.blob_path(&digests[i]))
            .expect("blob")
            .len();
        assert_eq!(want, on_disk, "the manifest's size is the stored blob's");
        assert_eq!(
            img["layers"][i]["pull_size_bytes"].as_u64(),
            Some(want),
            "layer {i}"
        );
        assert_eq!(img["layers"][i]["blob"].as_str(), Some(digests[i].as_str()));
        total_pull += want;
    }
    assert_eq!(img["totals"]["pull_size_bytes"].as_u64(), Some(total_pull));
    assert!(img["totals"].get("incomplete").is_none());
    assert_eq!(
        reg.blob_gets(&digests),
        digests.len(),
        "cold: each layer once"
    );

    // Warm: the cache answers by diff_id; no layer blob is fetched.
    let before = reg.blob_gets(&digests);
    let out = env
        .layerscope()
        .args([&ref1, "--format", "text"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "pull size {} ({total_pull} bytes, compressed)",
            size_text(total_pull)
        )),
        "{text}"
    );
    assert!(text.contains("PULL"), "{text}");
    assert_eq!(reg.blob_gets(&digests), before, "warm: no layer blob GET");

    // A rebuilt image on top: only its new layer is downloaded.
    clean.add(&v2);
    build(
        &v2,
        &format!("FROM {v1}\nCOPY c.bin /c.bin\n"),
        vec![Item::File("c.bin", noise(100_000, 9), 0o644)],
    );
    push(&env, &v2);
    let m2 = reg.stored_manifest(&repo, "v2");
    let d2 = layer_digests(&m2);
    assert_eq!(d2[..digests.len()], digests[..], "v2 shares v1's layers");
    let out = env
        .layerscope()
        .args([&format!("docker://{v2}"), "--json", "-"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        inspect_size(&v2).0,
        json_of(&out.stdout)["images"][0]["totals"]["size_bytes"]
            .as_u64()
            .expect("size")
    );
    assert_eq!(
        reg.blob_gets(&digests),
        before,
        "shared layers not fetched again"
    );
    assert_eq!(reg.blob_gets(&d2[digests.len()..]), 1, "the new layer once");

    // --max-pull-size: measured on the compressed sizes.
    env.layerscope()
        .args([&ref1, "--max-pull-size", &format!("{}B", total_pull)])
        .assert()
        .code(0);
    let out = env
        .layerscope()
        .args([&ref1, "--max-pull-size", &format!("{}B", total_pull - 1)])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("max-pull-size"));

    // A single-platform image and another platform asked for.
    let out = env
        .layerscope()
        .args([&ref1, "--platform", "linux/s390x", "--json", "-"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let e = one_error_line(&out.stderr);
    assert!(
        e.contains("linux/amd64 only") && e.contains("linux/s390x"),
        "{e}"
    );

    // Credentials from podman's auth.json (REGISTRY_AUTH_FILE) work the same.
    let auth = env.dir.path().join("auth.json");
    std::fs::copy(env.docker_config().join("config.json"), &auth).expect("auth.json");
    let other = Env::new();
    other
        .layerscope()
        .env("REGISTRY_AUTH_FILE", &auth)
        .args([&ref1, "--json", "-"])
        .assert()
        .code(0);
}

/// `output::size` as the text summary prints it.
fn size_text(n: u64) -> String {
    layerscope::output::size(n)
}

#[test]
fn credential_and_name_faults_are_one_line_and_exit_2() {
    let test = "credential_and_name_faults_are_one_line_and_exit_2";
    if !tools_available(test) {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let image = format!("docker://{host}/{PREFIX}/none:v1");
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };

    // No credentials stored.
    let env = Env::new();
    let out = env
        .layerscope()
        .args([&image, "--json", "-"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let e = one_error_line(&out.stderr);
    assert!(
        e.contains("none are stored") && e.contains(&format!("docker login {host}")),
        "{e}"
    );

    // Wrong password: refused, and the password is never printed.
    let wrong = "Wr0ng-and-secret-PW";
    env.write_config(&format!(
        r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
        b64(&format!("{USER}:{wrong}"))
    ));
    let out = env
        .layerscope()
        .args([&image, "--json", "-"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let e = one_error_line(&out.stderr);
    assert!(e.contains("refused the credentials from"), "{e}");
    assert!(
        !e.contains(wrong) && !e.contains(&b64(&format!("{USER}:{wrong}"))),
        "{e}"
    );
    assert!(out.stdout.is_empty());

    // Right credentials (a key with a scheme and a path, as older clients
    // wrote), unknown repository and unknown tag.
    env.write_config(&format!(
        r#"{{"auths":{{"http://{host}/v2/":{{"auth":"{}"}}}}}}"#,
        b64(&format!("{USER}:{PASSWORD}"))
    ));
    for name in [
        image.clone(),
        format!("docker://{host}/{PREFIX}/none@sha256:{}", "0".repeat(64)),
    ] {
        let out = env
            .layerscope()
            .args([&name, "--json", "-"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{name}");
        let e = one_error_line(&out.stderr);
        assert!(e.contains("has no such image"), "{e}");
        assert!(e.starts_with(&format!("layerscope: {name}: ")), "{e}");
        assert!(!e.contains(PASSWORD));
    }

    // Nothing listening: one line too.
    drop(reg);
    let out = env
        .layerscope()
        .args([&image, "--json", "-"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let e = one_error_line(&out.stderr);
    assert!(e.contains("cannot connect to the registry"), "{e}");

    // A malformed reference never reaches the network.
    let out = env
        .layerscope()
        .args(["docker://Alpine", "--json", "-"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(one_error_line(&out.stderr).contains("write \"alpine\""));
}
