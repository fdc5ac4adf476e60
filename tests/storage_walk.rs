//! Docker's storage without tar-splits: where a layer's
//! `layerdb/sha256/<chainID>/tar-split.json.gz` is gone, `--via storage`
//! walks the layer's directory (`overlay2/<cache-id>/diff`) instead, and
//! the report must still be the export's. The tar-splits are moved aside
//! in a data root of the test's own: a second dockerd
//! (`common_engine::dockerd`), never the machine's engine, whose storage
//! the other tests read.

mod common_engine;

use std::path::Path;
use std::process::Command;

use common_engine::compare::{assert_same, diff_ids, kinds_image, report, without_via};
use common_engine::*;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

const TEST: &str = "docker_storage_walk";

/// Docker's layerdb keys of a stack of diff_ids: the first layer's chain
/// id is its diff_id, each next one sha256("<parent chain id> <diff_id>").
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let id = match out.last() {
            None => d.clone(),
            Some(parent) => {
                let h = Sha256::digest(format!("{parent} {d}").as_bytes());
                let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
                format!("sha256:{hex}")
            }
        };
        out.push(id);
    }
    out
}

/// The layerdb directories of the layers `diff_ids` under `data_root`,
/// bottom first, each checked against the engine's own record of its diff.
fn layerdb_dirs(data_root: &Path, diff_ids: &[String]) -> Vec<std::path::PathBuf> {
    let layerdb = data_root.join("image/overlay2/layerdb/sha256");
    diff_ids
        .iter()
        .zip(chain_ids(diff_ids))
        .map(|(d, chain)| {
            let dir = layerdb.join(chain.trim_start_matches("sha256:"));
            let recorded = std::fs::read_to_string(dir.join("diff"))
                .unwrap_or_else(|e| panic!("{}/diff: {e}", dir.display()));
            assert_eq!(recorded.trim(), d, "the layerdb entry {}", dir.display());
            dir
        })
        .collect()
}

#[test]
fn docker_without_tar_split_the_directories_are_walked() {
    if !have("setpriv", "--version") {
        unavailable::<()>(TEST, "`setpriv` is not installed (util-linux)");
        return;
    }
    if !engine_available(TEST) {
        return;
    }
    // Net 18 with an odd slot: engine_tls's engine (net 18, slot 0) takes
    // even third octets, and engine_faults' engines are on net 19.
    let spec = Spec {
        test: TEST,
        tag: "wlk",
        slot: 1,
        net: 18,
    };
    let Some(engine) = Dockerd::start(&spec, |_| Listen::Unix) else {
        return;
    };
    let mut clean = Cleanup::new();
    let Some(tag) = kinds_image(&mut clean, "dk-walk") else {
        return;
    };
    // The top layer (walked below) holds names and ids a plain ustar
    // header cannot: its export writes PAX headers for them.
    let top = export_layers(&tag).pop().expect("layers");
    let long = format!("data/{}", "l".repeat(120));
    assert!(top.iter().any(|e| e.path == long), "{top:?}");
    assert!(
        top.iter()
            .any(|e| e.path == "data/long-target" && e.link.as_deref() == Some(&format!("/{long}"))),
        "{top:?}"
    );
    // Built by the machine's engine, copied into the test's own.
    let archive = engine.dir.path().join("image.tar");
    run_ok(
        Command::new("docker")
            .args(["save", "-o"])
            .arg(&archive)
            .arg(&tag),
        "docker save",
    );
    run_ok(
        engine.docker().args(["load", "-q", "-i"]).arg(&archive),
        "docker load into the second engine",
    );
    std::fs::remove_file(&archive).expect("remove the archive");

    let (export, via) = without_via(report(&engine.host, &tag, "export"));
    assert_eq!(via, "export");
    let diff_ids = diff_ids(&export);
    assert!(diff_ids.len() >= 3, "{} layers", diff_ids.len());
    // With every tar-split in place, the second engine's storage reads as
    // its export (so that a difference below is the walk's).
    let (stored, via) = without_via(report(&engine.host, &tag, "storage"));
    assert_eq!(via, "storage");
    assert_same(&stored, &export, "docker-tar-split");

    // The odd layers' tar-splits and the top one's go aside, so that walks
    // and tar-splits meet in one image.
    let dirs = layerdb_dirs(&engine.dir.path().join("data"), &diff_ids);
    for (i, d) in dirs.iter().enumerate() {
        if i % 2 == 1 || i + 1 == dirs.len() {
            let split = d.join("tar-split.json.gz");
            std::fs::rename(&split, d.join("tar-split.json.gz.aside"))
                .unwrap_or_else(|e| panic!("move {} aside: {e}", split.display()));
        }
    }
    // Those layers are walked: without CAP_SYS_ADMIN (which a walk needs
    // and a tar-split read does not) the read refuses, naming the first.
    let out = Command::new("setpriv")
        .arg("--bounding-set=-sys_admin")
        .arg(assert_cmd::cargo::cargo_bin("layerscope"))
        .env("DOCKER_HOST", &engine.host)
        .args(["--no-cache", "--via", "storage", "--json", "-", &tag])
        .output()
        .expect("run layerscope under setpriv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("layer 2 has no readable tar-split") && err.contains("needs CAP_SYS_ADMIN"),
        "{err}"
    );
    assert!(
        serde_json::from_slice::<Value>(&out.stdout).is_err(),
        "no report after a refusal"
    );
    // With it they are walked, and the report is the export's.
    let (walked, via) = without_via(report(&engine.host, &tag, "storage"));
    assert_eq!(via, "storage");
    assert_same(&walked, &export, "docker-walked");
}
