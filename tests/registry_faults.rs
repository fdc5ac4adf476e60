//! `docker://` through a faulty proxy in front of a real registry
//! (Debian's docker-registry, htpasswd auth): 429 with Retry-After and 5xx
//! are retried, a blob whose connection is cut resumes with a Range
//! request (and still checks out: it is cached), and what cannot be
//! recovered (a Retry-After too long, a 500 that stays, a connection that
//! keeps breaking, the registry stopped mid-blob) is one line and exit 2,
//! with nothing cached. The proxy's own record of the requests is the
//! oracle for what was sent.

mod common_engine;
mod common_registry;

use std::time::Duration;

use common_engine::*;
use common_registry::faults::{Action, FaultProxy, Rule};
use common_registry::*;
use serde_json::Value;

const BIG: usize = 400_000;

struct Setup {
    reg: Registry,
    proxy: FaultProxy,
    repo: String,
    /// The config, the big layer, the small one.
    config: String,
    big: Value,
    small: Value,
}

fn setup(name: &str) -> Setup {
    let reg = Registry::start();
    let repo = format!("{PREFIX}/{}-{name}", std::process::id());
    let p = Pusher::new(&reg, &repo);
    let big_tar = tar_of(&[Item::File("big.bin", noise(BIG, 41), 0o644)]);
    let small_tar = tar_of(&[Item::File("small.txt", b"small\n".repeat(100), 0o644)]);
    let big = p.blob(
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &gzip(&big_tar),
    );
    let small = p.blob(
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &gzip(&small_tar),
    );
    let config = p.config(
        OCI_CONFIG,
        "amd64",
        None,
        &[sha256(&big_tar), sha256(&small_tar)],
    );
    p.manifest(
        "v1",
        OCI_MANIFEST,
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": config, "layers": [big, small]}),
    );
    let proxy = FaultProxy::start(reg.port);
    Setup {
        reg,
        proxy,
        repo,
        config: config["digest"].as_str().expect("digest").to_string(),
        big,
        small,
    }
}

impl Setup {
    fn image(&self) -> String {
        format!("docker://{}/{}:v1", self.proxy.host(), self.repo)
    }
    fn env(&self) -> Env {
        let env = Env::new();
        env.store_credentials(&self.proxy.host());
        env
    }
    fn run(&self, env: &Env) -> std::process::Output {
        env.layerscope()
            .args([&self.image(), "--json", "-"])
            .output()
            .expect("run")
    }
    fn blob_path(&self, l: &Value) -> String {
        format!("/blobs/{}", l["digest"].as_str().expect("digest"))
    }
    fn size(&self, l: &Value) -> u64 {
        l["size"].as_u64().expect("size")
    }
    /// What the proxy did to each request whose line has all `words`.
    fn done(&self, words: &[&str]) -> Vec<String> {
        self.proxy
            .matching(words)
            .into_iter()
            .map(|s| s.done)
            .collect()
    }
}

fn failed_with(out: &std::process::Output, words: &[&str]) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let e = one_error_line(&out.stderr);
    for w in words {
        assert!(e.contains(w), "{w:?} in {e}");
    }
    assert!(!e.contains(PASSWORD));
    e
}

#[test]
fn throttled_failing_and_cut_requests_are_retried_and_resumed() {
    let test = "throttled_failing_and_cut_requests_are_retried_and_resumed";
    if !tools_available(test) {
        return;
    }
    let s = setup("retry");
    let big = s.blob_path(&s.big);
    s.proxy.add(Rule::new(
        &["HEAD ", "/manifests/v1"],
        2,
        Action::Status(503, vec![]),
    ));
    s.proxy.add(Rule::new(
        &["GET ", &format!("/blobs/{}", s.config)],
        1,
        Action::Status(502, vec![]),
    ));
    s.proxy.add(Rule::new(
        &["GET ", &big],
        1,
        Action::Status(429, vec![("Retry-After", "1".into())]),
    ));
    s.proxy
        .add(Rule::new(&["GET ", &big], 1, Action::CutAfter(150_000)));
    let env = s.env();
    let out = s.run(&env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = json_of(&out.stdout)["images"][0].clone();
    assert_eq!(
        img["totals"]["size_bytes"].as_u64(),
        Some((BIG + 600) as u64)
    );
    assert_eq!(
        img["totals"]["pull_size_bytes"].as_u64(),
        Some(s.size(&s.big) + s.size(&s.small))
    );
    assert_eq!(
        s.done(&["HEAD ", "/manifests/v1"]),
        ["503", "503", "passed"]
    );
    assert_eq!(
        s.done(&["GET ", &format!("/blobs/{}", s.config)]),
        ["502", "passed"]
    );
    assert_eq!(s.done(&["GET ", &big]), ["429", "cut", "passed"]);
    let gets = s.proxy.matching(&["GET ", &big]);
    assert!(
        gets[1].at.duration_since(gets[0].at) >= Duration::from_millis(950),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(gets[1].range, None);
    // The resume asks for what the cut one did not deliver.
    let from: u64 = gets[2]
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a Range request: {:?}", gets[2]));
    assert!(from > 100_000 && from < s.size(&s.big), "{from}");
    assert_eq!(s.reg.log().matches("\" 206 ").count(), 1, "one 206 answer");
    assert_eq!(
        cached_layers(&env),
        2,
        "the resumed blob checked out (digest and diff_id) and was cached"
    );
}

#[test]
fn faults_that_stay_are_one_line_and_nothing_is_cached() {
    let test = "faults_that_stay_are_one_line_and_nothing_is_cached";
    if !tools_available(test) {
        return;
    }
    let s = setup("stay");
    let big = s.blob_path(&s.big);

    // A Retry-After longer than layerscope waits: said at once.
    s.proxy.add(Rule::new(
        &["GET ", &big],
        1,
        Action::Status(429, vec![("Retry-After", "3600".into())]),
    ));
    let env = s.env();
    failed_with(&s.run(&env), &["layer 1", "retry in 3600 s"]);
    assert_eq!(s.done(&["GET ", &big]), ["429"]);

    // A 500 that stays: tried 5 times.
    s.proxy.add(Rule::new(
        &["GET ", &big],
        usize::MAX,
        Action::Status(500, vec![]),
    ));
    let env = s.env();
    failed_with(&s.run(&env), &["layer 1", "answered HTTP 500"]);
    assert_eq!(s.done(&["GET ", &big]).len(), 1 + 5);
    assert_eq!(cached_layers(&env), 0);
    s.proxy.rules.lock().expect("lock").clear();

    // A connection that breaks every time: resumed 5 times, then given up.
    s.proxy.add(Rule::new(
        &["GET ", &big],
        usize::MAX,
        Action::CutAfter(50_000),
    ));
    let env = s.env();
    failed_with(
        &s.run(&env),
        &[
            "layer 1",
            "the connection broke 5 times",
            &format!("of {} bytes", s.size(&s.big)),
        ],
    );
    let resumed = s.proxy.matching(&["GET ", &big]);
    let ranges: Vec<bool> = resumed[resumed.len() - 6..]
        .iter()
        .map(|x| x.range.is_some())
        .collect();
    assert_eq!(ranges, [false, true, true, true, true, true]);
    assert_eq!(cached_layers(&env), 0);
}

#[test]
fn a_registry_stopped_mid_blob_is_one_line() {
    let test = "a_registry_stopped_mid_blob_is_one_line";
    if !tools_available(test) {
        return;
    }
    let mut s = setup("stopped");
    let big = s.blob_path(&s.big);
    let held = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let release = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    s.proxy.add(Rule::new(
        &["GET ", &big],
        1,
        Action::HoldThenCut {
            after: 100_000,
            held: held.clone(),
            release: release.clone(),
        },
    ));
    let env = s.env();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("layerscope"));
    for (k, v) in env.layerscope().get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let child = cmd
        .args([&s.image(), "--json", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("layerscope");
    let t0 = std::time::Instant::now();
    while !held.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "never reached the hold"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    s.reg.kill();
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = child.wait_with_output().expect("wait");
    failed_with(&out, &["layer 1", "downloading", "HTTP 502"]);
    assert_eq!(cached_layers(&env), 0);
}

#[test]
fn proxy_variables_are_honoured() {
    let test = "proxy_variables_are_honoured";
    if !tools_available(test) {
        return;
    }
    let s = setup("via-proxy");
    // The fault proxy passes an absolute-form request on as it is: it is an
    // HTTP proxy with no faults set.
    let direct = format!("docker://{}/{}:v1", s.reg.host(), s.repo);
    let env = Env::new();
    env.store_credentials(&s.reg.host());
    let proxy_url = format!("http://{}", s.proxy.host());
    succeeded(
        env.layerscope()
            .env("HTTP_PROXY", &proxy_url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .args([&direct, "--json", "-"]),
    );
    let via = s.proxy.matching(&[&format!("http://{}/v2/", s.reg.host())]);
    assert!(
        via.iter().any(|x| x.line.contains("/manifests/v1"))
            && via.iter().any(|x| x.line.contains(&s.blob_path(&s.big))),
        "manifests and blobs through HTTP_PROXY: {via:?}"
    );
    // NO_PROXY names the registry: nothing more through the proxy.
    let before = s.proxy.seen().len();
    let env = Env::new();
    env.store_credentials(&s.reg.host());
    let out = env
        .layerscope()
        .env("HTTP_PROXY", &proxy_url)
        .env("NO_PROXY", "127.0.0.1")
        .args([&direct, "--json", "-"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.proxy.seen().len(), before, "NO_PROXY bypasses the proxy");
}
