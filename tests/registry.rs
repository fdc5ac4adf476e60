//! `docker://` against a real registry: Debian's docker-registry
//! (distribution 2.8) started here on 127.0.0.1 with htpasswd auth, images
//! built FROM scratch and pushed by the engine after `docker login` into a
//! test DOCKER_CONFIG. The oracles are independent of layerscope's HTTP
//! client: `docker image inspect`, the registry's own storage (tag links,
//! manifests, blob files) and its access log. Without docker-registry or an
//! engine these tests skip with a message; with CI set they fail.

mod common_engine;
mod common_registry;

use std::process::Command as Std;

use common_engine::*;
use common_registry::*;
use serde_json::Value;

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
    let report = env.report(&[&ref1, "--json", "-"]);
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
    let out = succeeded(env.layerscope().args([&ref1, "--format", "text"]));
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

    // Compared: what each pull downloads, in the table and the JSON.
    let ref2 = format!("docker://{v2}");
    let out = env.layerscope().args([&ref1, &ref2]).output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let pull2: u64 = m2["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["size"].as_u64().expect("size"))
        .sum();
    let row = text
        .lines()
        .find(|l| l.starts_with("pull size"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains(&size_text(total_pull)) && row.contains(&size_text(pull2)),
        "{row}"
    );
    let out = env
        .layerscope()
        .args([&ref1, &ref2, "--json", "-"])
        .output()
        .expect("run");
    // One comparison (B against A) in the list.
    let c = &json_of(&out.stdout)["comparison"][0];
    assert_eq!(c["a_pull_size_bytes"].as_u64(), Some(total_pull));
    assert_eq!(c["b_pull_size_bytes"].as_u64(), Some(pull2));

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
    let e = env.fails(&[&ref1, "--platform", "linux/s390x", "--json", "-"]);
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
    let e = env.fails(&[&image, "--json", "-"]);
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
    let e = env.fails(&[&image, "--json", "-"]);
    assert!(e.contains("refused the credentials from"), "{e}");
    assert!(
        !e.contains(wrong) && !e.contains(&b64(&format!("{USER}:{wrong}"))),
        "{e}"
    );

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
    let e = env.fails(&[&image, "--json", "-"]);
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

#[test]
fn oci_index_zstd_foreign_layers_and_bad_blobs() {
    let test = "oci_index_zstd_foreign_layers_and_bad_blobs";
    if !tools_available(test) {
        return;
    }
    let reg = Registry::start();
    let env = Env::new();
    let host = reg.host();
    env.store_credentials(&host);
    let repo = format!("{PREFIX}/{}-hand", std::process::id());
    let p = Pusher::new(&reg, &repo);
    let run = |args: &[&str]| env.layerscope().args(args).output().expect("run");
    let ok_json = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_of(&out.stdout)["images"][0].clone()
    };

    // Two layers: a zstd one (5000 + 12345 bytes of files), a gzip one (20000).
    let tar_a = tar_of(&[
        Item::File("a.txt", b"a".repeat(5000), 0o644),
        Item::Dir("bin", 0o755),
        Item::File("bin/x", noise(12_345, 3), 0o755),
    ]);
    let tar_b = tar_of(&[Item::File("b.bin", noise(20_000, 4), 0o644)]);
    let zst_a = zstd::bulk::compress(&tar_a, 3).expect("zstd");
    let gz_b = gzip(&tar_b);
    let la = p.blob("application/vnd.oci.image.layer.v1.tar+zstd", &zst_a);
    let lb = p.blob("application/vnd.oci.image.layer.v1.tar+gzip", &gz_b);
    let amd = p.manifest(
        "amd64",
        OCI_MANIFEST,
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": p.config(OCI_CONFIG, "amd64", None, &[sha256(&tar_a), sha256(&tar_b)]),
            "layers": [la, lb]}),
    );
    let arm = p.manifest(
        "arm64",
        OCI_MANIFEST,
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": p.config(OCI_CONFIG, "arm64", Some("v8"), &[sha256(&tar_a)]),
            "layers": [la]}),
    );
    let with = |d: &Value, platform: Value| {
        let mut d = d.clone();
        d["platform"] = platform;
        d
    };
    let mut attestation = with(
        &arm,
        serde_json::json!({"os": "unknown", "architecture": "unknown"}),
    );
    attestation["annotations"] =
        serde_json::json!({"vnd.docker.reference.type": "attestation-manifest"});
    p.manifest(
        "multi",
        OCI_INDEX,
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            with(&amd, serde_json::json!({"os": "linux", "architecture": "amd64"})),
            with(&arm, serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"})),
            attestation,
        ]}),
    );
    let multi = format!("docker://{host}/{repo}:multi");

    let img = ok_json(&[&multi, "--platform", "linux/amd64", "--json", "-"]);
    assert_eq!(layer_files(&img), vec![5000 + 12_345, 20_000]);
    assert_eq!(
        img["totals"]["size_bytes"].as_u64(),
        Some(5000 + 12_345 + 20_000)
    );
    assert_eq!(
        img["totals"]["pull_size_bytes"].as_u64(),
        Some((zst_a.len() + gz_b.len()) as u64)
    );
    assert_eq!(
        img["layers"][0]["tar_bytes"].as_u64(),
        Some(tar_a.len() as u64)
    );
    assert_eq!(img["architecture"].as_str(), Some("amd64"));
    assert_eq!(
        cached_layers(&env),
        2,
        "both layers checked out and were cached"
    );

    let img = ok_json(&[&multi, "--platform", "linux/arm64", "--json", "-"]);
    assert_eq!(img["architecture"].as_str(), Some("arm64/v8"));
    assert_eq!(layer_files(&img), vec![5000 + 12_345]);
    assert_eq!(
        reg.blob_gets(&[la["digest"].as_str().expect("d").to_string()]),
        1,
        "the shared zstd layer came from the cache"
    );

    let out = run(&[&multi, "--platform", "linux/ppc64le", "--json", "-"]);
    assert_eq!(out.status.code(), Some(2));
    let e = one_error_line(&out.stderr);
    assert!(
        e.contains("no linux/ppc64le image; available: linux/amd64, linux/arm64/v8"),
        "{e}"
    );
    assert!(!e.contains("unknown"), "{e}");

    // A foreign layer: named, not fetched; the report says it is incomplete
    // and CI fails unless told otherwise.
    let foreign_tar = tar_of(&[Item::File("windows.dll", noise(1000, 5), 0o644)]);
    let foreign_gz = gzip(&foreign_tar);
    let foreign_digest = sha256(&foreign_gz);
    let lb_docker = {
        let mut d = lb.clone();
        d["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip".into();
        d
    };
    p.manifest(
        "foreign",
        DOCKER_MANIFEST,
        &serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": p.config(DOCKER_CONFIG, "amd64", None, &[sha256(&foreign_tar), sha256(&tar_b)]),
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
             "digest": foreign_digest, "size": foreign_gz.len(),
             "urls": ["https://example.invalid/base.tar.gz?sig=secret"]},
            lb_docker,
        ]}),
    );
    let foreign = format!("docker://{host}/{repo}:foreign");
    let img = ok_json(&[&foreign, "--json", "-"]);
    assert_eq!(img["totals"]["incomplete"].as_bool(), Some(true));
    let why = img["layers"][0]["not_fetched"]
        .as_str()
        .expect("not_fetched");
    assert!(
        why.contains("foreign") && why.contains("https://example.invalid/base.tar.gz"),
        "{why}"
    );
    assert!(
        !why.contains("sig=secret"),
        "query strings (signatures) are not shown: {why}"
    );
    assert_eq!(layer_files(&img), vec![0, 20_000]);
    assert_eq!(
        reg.blob_gets(std::slice::from_ref(&foreign_digest)),
        0,
        "a foreign layer is never fetched"
    );
    let out = run(&[&foreign, "--max-size", "1GB"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("not read whole"));
    let out = run(&[&foreign, "--max-size", "1GB", "--allow-incomplete"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Content that does not match: a config naming another diff_id, and a
    // stored blob changed behind the registry's back. One line, exit 2,
    // and nothing of it cached.
    let fresh = Env::new();
    std::fs::copy(
        env.docker_config().join("config.json"),
        fresh.docker_config().join("config.json"),
    )
    .expect("config");
    let tar_c = tar_of(&[Item::File("c.bin", noise(30_000, 6), 0o644)]);
    let lc = p.blob("application/vnd.oci.image.layer.v1.tar", &tar_c);
    p.manifest(
        "wrong-diff-id",
        OCI_MANIFEST,
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": p.config(OCI_CONFIG, "amd64", None, &[sha256(b"something else")]),
            "layers": [lc]}),
    );
    let e = fresh.fails(&[
        &format!("docker://{host}/{repo}:wrong-diff-id"),
        "--json",
        "-",
    ]);
    assert!(
        e.contains("layer 1") && e.contains("does not match the config's diff_id"),
        "{e}"
    );
    assert_eq!(cached_layers(&fresh), 0);

    let tar_d = tar_of(&[Item::File("d.bin", noise(40_000, 8), 0o644)]);
    let ld = p.blob("application/vnd.oci.image.layer.v1.tar", &tar_d);
    p.manifest(
        "tampered",
        OCI_MANIFEST,
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": p.config(OCI_CONFIG, "amd64", None, &[sha256(&tar_d)]),
            "layers": [ld]}),
    );
    let stored = reg.blob_path(ld["digest"].as_str().expect("digest"));
    let mut bytes = std::fs::read(&stored).expect("blob");
    // File content, not a header: only the digest can tell.
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&stored, &bytes).expect("tamper");
    let e = fresh.fails(&[&format!("docker://{host}/{repo}:tampered"), "--json", "-"]);
    assert!(
        e.contains("layer 1") && e.contains("does not match the digest the manifest names"),
        "{e}"
    );
    assert_eq!(
        cached_layers(&fresh),
        0,
        "a blob that fails its digest is not cached"
    );
}

/// Set in the child run of the progress test: the reference to load.
const PROGRESS_CHILD: &str = "LAYERSCOPE_TEST_PROGRESS_REF";

/// The last progress event of each image.
#[derive(Default)]
struct LastEvents(Vec<layerscope::source::progress::ProgressEvent>);

impl layerscope::pipeline::ProgressView for LastEvents {
    fn event(&mut self, ev: layerscope::source::progress::ProgressEvent) {
        self.0.retain(|e| e.index != ev.index);
        self.0.push(ev);
    }
}

/// The child: load through the pipeline (the one load path) and print the
/// last progress event, one line per layer.
fn progress_child(reference: &str) {
    use layerscope::analysis::classify::RuleSet;
    use layerscope::pipeline::{Analyse, load};
    use layerscope::source::{LoadOptions, Reference};
    let refs = [Reference::parse(reference).expect("reference")];
    let how = Analyse {
        rules: std::sync::Arc::new(RuleSet::builtin()),
        base: None,
    };
    let mut view = LastEvents::default();
    let a = load(&refs, &LoadOptions::default(), &how, &mut view).expect("load");
    assert_eq!(a.len(), 1);
    let ev = view.0.pop().expect("a progress event");
    println!(
        "image stage={} expected={} received={}",
        ev.stage.as_str(),
        ev.expected,
        ev.received
    );
    for l in &ev.layers {
        println!(
            "layer={} expected={} received={} done={}",
            l.layer, l.expected, l.received, l.done
        );
    }
}

#[test]
fn registry_downloads_report_progress_per_layer_through_the_pipeline() {
    if let Some(r) = std::env::var_os(PROGRESS_CHILD) {
        return progress_child(&r.to_string_lossy());
    }
    let test = "registry_downloads_report_progress_per_layer_through_the_pipeline";
    if !tools_available(test) {
        return;
    }
    let reg = Registry::start();
    let env = Env::new();
    let host = reg.host();
    env.store_credentials(&host);
    let repo = format!("{PREFIX}/{}-progress", std::process::id());
    let p = Pusher::new(&reg, &repo);
    let tars = [
        tar_of(&[Item::File("a.bin", noise(40_000, 11), 0o644)]),
        tar_of(&[Item::File("b.bin", noise(70_000, 12), 0o644)]),
        tar_of(&[Item::File("c.bin", noise(10_000, 13), 0o644)]),
    ];
    let layers: Vec<Value> = tars
        .iter()
        .map(|t| p.blob("application/vnd.oci.image.layer.v1.tar+gzip", &gzip(t)))
        .collect();
    let diff_ids: Vec<String> = tars.iter().map(|t| sha256(t)).collect();
    p.manifest(
        "v1",
        OCI_MANIFEST,
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": p.config(OCI_CONFIG, "amd64", None, &diff_ids),
            "layers": layers}),
    );
    // The oracle: the blob sizes in the registry's own manifest.
    let m = reg.stored_manifest(&repo, "v1");
    let sizes: Vec<u64> = m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["size"].as_u64().expect("size"))
        .collect();
    assert_eq!(sizes.len(), 3);
    // The loader reads credentials from DOCKER_CONFIG: the in-process part
    // runs in a child of this test binary with the test's config.
    let out = Std::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(PROGRESS_CHILD, format!("docker://{host}/{repo}:v1"))
        .env("DOCKER_CONFIG", env.docker_config())
        .env("HOME", env.dir.path())
        .env("XDG_CACHE_HOME", env.cache())
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total: u64 = sizes.iter().sum();
    assert!(
        stdout.contains(&format!(
            "image stage=done expected={total} received={total}"
        )),
        "{stdout}"
    );
    for (i, s) in sizes.iter().enumerate() {
        assert!(
            stdout.contains(&format!("layer={i} expected={s} received={s} done=true")),
            "layer {i}: {stdout}"
        );
    }
    assert_eq!(
        reg.blob_gets(&layer_digests(&m)),
        3,
        "each layer downloaded once"
    );
}
