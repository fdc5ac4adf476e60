//! What each fuzz target runs, in one place: the targets in `fuzz_targets/`
//! call these functions, and `tests/fuzz_regressions.rs` includes this file
//! (`#[path]`) to replay every saved crash input through the same code.
//!
//! Each function feeds bytes to one entry of layerscope and checks what
//! the CLI relies on: no panic, an error is one non-empty line, and a
//! loaded image adds up (shipped bytes = visible + hidden bytes) and
//! serializes to a JSON report.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use layerscope::analysis::Analysis;
use layerscope::analysis::classify::RuleSet;
use layerscope::image::{Image, ImageFacts};
use layerscope::index::layer::{LayerIndex, MAX_CAPTURED_IMAGE, index_tar};
use layerscope::index::merge::{LayerMeta, build_image};
use layerscope::index::tree::PathTree;
use layerscope::output::text;
use layerscope::report::Report;
use layerscope::source::LoadOptions;
use layerscope::source::archive::{assemble, load_archive_file, load_archive_stream, plan};
use layerscope::source::blob::index_blob;

/// Layers the `layout` target indexes (empty ones) for a plan it accepted;
/// the loaders cap plans at 4096 layers, this keeps each run short.
const LAYOUT_LAYERS: usize = 256;

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(RuleSet::builtin)
}

fn options() -> LoadOptions {
    LoadOptions {
        verify: true,
        progress: None,
        // One indexing thread: the fuzzer runs on one core.
        threads: Some(1),
        ..LoadOptions::default()
    }
}

/// An error as the CLI prints it (after `layerscope: `): one line that
/// says something, with no control characters.
fn check_error(what: &str, shown: &str) {
    assert!(
        !shown.trim().is_empty(),
        "{what}: empty error message: {shown:?}"
    );
    assert!(
        !shown.contains(char::is_control),
        "{what}: error message is not one clean line: {shown:?}"
    );
}

/// A loader's inner error (a `String`) as the loaders hand it to the CLI.
fn check_inner_error(what: &str, msg: &str) {
    assert!(!msg.trim().is_empty(), "{what}: empty error message");
    check_error(
        what,
        &layerscope::Error::input("image.tar", msg).to_string(),
    );
}

/// Analyse an image and render what the CLI renders: JSON report, text
/// summary and findings. Checks the byte accounting on the way.
fn analyse(image: Image) {
    let a = Analysis::with_rules(image, rules());
    let w = &a.waste;
    assert_eq!(
        w.total_bytes,
        w.final_bytes + w.hidden_bytes(),
        "shipped bytes must be visible or hidden"
    );
    let report = Report::new(&[&a]);
    let json = serde_json::to_vec(&report).expect("the report serializes");
    serde_json::from_slice::<serde_json::Value>(&json).expect("the report is valid JSON");
    let mut out = std::io::sink();
    text::write_summary(&mut out, &a).expect("text summary");
    text::write_findings(&mut out, &a, 12).expect("text findings");
}

fn meta(i: usize) -> LayerMeta {
    LayerMeta {
        diff_id: format!("sha256:{i:064x}"),
        blob: format!("layer{i}"),
        created_by: Some(format!("/bin/sh -c layer {i}")),
        ..Default::default()
    }
}

/// `layer_tar`: the bytes as one layer's tar, indexed directly and through
/// the blob path (compression by magic bytes, diff_id). A layer that
/// indexes is merged alone and stacked on itself (so its whiteouts and
/// opaque markers hide its own files), then analysed.
pub fn layer_tar(data: &[u8]) -> Result<(), String> {
    // index_tar's errors reach the user only through index_blob's.
    let direct = index_tar(Cursor::new(data)).map_err(|e| e.to_string());
    let budget = AtomicU64::new(MAX_CAPTURED_IMAGE);
    let blob = index_blob(Cursor::new(data), true, &budget);
    if let Err(e) = &blob {
        check_inner_error("index_blob", e);
    }
    let idx = match (direct, blob) {
        (Ok(idx), _) | (Err(_), Ok(idx)) => idx,
        (Err(e), Err(_)) => return Err(e),
    };
    // A hardlink to nothing is refused by the merge, as by Docker.
    for layers in [
        vec![(meta(0), idx.clone())],
        vec![(meta(0), idx.clone()), (meta(1), idx)],
    ] {
        match build_image(ImageFacts::default(), layers) {
            Ok(image) => analyse(image),
            Err(e) => check_inner_error("build_image", &e),
        }
    }
    Ok(())
}

/// `layout`: the bytes as a set of metadata files, split on NUL:
/// `WANT \0 NAME \0 CONTENT \0 NAME \0 CONTENT ...` (an empty WANT asks for
/// no particular tag). [`plan`] reads `manifest.json` or `index.json`, the
/// nested indexes, the OCI manifest and the image config from them; an
/// accepted plan is assembled with empty layers (history, diff_ids,
/// config facts) and analysed.
pub fn layout(data: &[u8]) -> Result<(), String> {
    let mut parts = data.split(|&b| b == 0);
    let want = parts
        .next()
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned());
    let mut files: Vec<(String, &[u8])> = Vec::new();
    while let (Some(name), Some(content)) = (parts.next(), parts.next()) {
        files.push((String::from_utf8_lossy(name).into_owned(), content));
    }
    let get = |p: &str| -> Option<Vec<u8>> {
        files
            .iter()
            .rev()
            .find(|(n, _)| n == p)
            .map(|(_, c)| c.to_vec())
    };
    let result = plan(&get, want.as_deref()).and_then(|p| {
        if p.layers.len() > LAYOUT_LAYERS {
            return Ok(None);
        }
        let layers = (0..p.layers.len())
            .map(|_| LayerIndex {
                tree: PathTree::new(),
                ..Default::default()
            })
            .collect();
        assemble(p, layers, Default::default(), "fuzz", &options()).map(Some)
    });
    match result {
        Ok(Some(image)) => {
            analyse(image);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            check_inner_error("plan", &e);
            Err(e)
        }
    }
}

/// A file of our own for one run of the `archive` target.
fn scratch_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("layerscope-fuzz-{}-{n}.tar", std::process::id()))
}

/// `archive`: the bytes as a `docker save` or `oci-archive` file on disk,
/// through the whole pipeline the CLI runs (load, merge, analysis, JSON
/// and text reports), and the same bytes as the engine's export stream.
pub fn archive(data: &[u8]) -> Result<(), String> {
    let path = scratch_path();
    std::fs::write(&path, data).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let from_file = load_archive_file(&path, None, &options()).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&path);
    let from_stream =
        load_archive_stream(Cursor::new(data), "fuzz", None, &options()).map_err(|e| e.to_string());
    let mut first_err = None;
    for (what, r) in [("file", from_file), ("stream", from_stream)] {
        match r {
            Ok(image) => analyse(image),
            Err(e) => {
                check_error(what, &e);
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

// ---- the registry's parsing --------------------------------------------

/// `reference`: the bytes (UTF-8) as what follows `docker://`, and as a
/// whole reference through the one parser the CLI uses. An accepted
/// registry reference prints as a name that parses back to itself, names
/// an API host and something to ask the manifest for.
pub fn reference(data: &[u8]) -> Result<(), String> {
    use layerscope::source::Reference;
    use layerscope::source::registry::parse_reference;
    let Ok(s) = std::str::from_utf8(data) else {
        return Ok(());
    };
    let mut first_err = None;
    match parse_reference(s) {
        Ok(r) => {
            let shown = r.to_string();
            let again = parse_reference(&shown)
                .unwrap_or_else(|e| panic!("{s:?} parsed as {shown:?}, which does not: {e}"));
            assert_eq!(again, r, "{s:?} -> {shown:?} -> another reference");
            assert!(!r.api_host().is_empty() && !r.reference().is_empty());
            assert!(!shown.contains(char::is_control), "{shown:?}");
        }
        Err(e) => {
            let e = e.to_string();
            check_error("docker://", &e);
            first_err = Some(e);
        }
    }
    if let Err(e) = Reference::parse(s) {
        check_error("reference", &e.to_string());
    }
    first_err.map_or(Ok(()), Err)
}

/// Neutralize credential helpers: a fuzzed file must not run whatever
/// `docker-credential-*` is on PATH. Every helper name becomes one that
/// does not exist (the "cannot run the helper" path still runs).
fn no_helpers(data: &[u8]) -> Vec<u8> {
    const NONE: &str = "layerscope-fuzz-no-such-helper";
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return data.to_vec();
    };
    if let Some(o) = v.as_object_mut() {
        if o.contains_key("credsStore") {
            o.insert("credsStore".into(), NONE.into());
        }
        if let Some(h) = o.get_mut("credHelpers").and_then(|h| h.as_object_mut()) {
            for (_, name) in h.iter_mut() {
                *name = NONE.into();
            }
        }
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The secrets a credentials file holds (values of `auth`, `password`,
/// `identitytoken`, `registrytoken`), at least 4 characters long.
fn secrets(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                match x {
                    serde_json::Value::String(s)
                        if s.len() >= 4
                            && ["auth", "password", "identitytoken", "registrytoken"]
                                .contains(&k.to_ascii_lowercase().as_str()) =>
                    {
                        out.push(s.clone())
                    }
                    _ => secrets(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| secrets(x, out)),
        _ => {}
    }
}

/// `credentials`: the bytes as a docker config.json and as a podman
/// auth.json, asked for Docker Hub, a loopback registry and a namespaced
/// one. An error is one line that names the file and shows none of the
/// secrets the file holds (nor the password decoded from an `auth`).
pub fn credentials(data: &[u8]) -> Result<(), String> {
    use layerscope::source::registry::credentials::{Credential, lookup_in_bytes};
    use layerscope::source::registry::parse_reference;
    let data = no_helpers(data);
    let mut hidden = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data) {
        secrets(&v, &mut hidden);
    }
    let file = std::path::Path::new("/fuzz/config.json");
    let mut errors = Vec::new();
    for name in ["alpine", "localhost:5000/app", "quay.io/team/app"] {
        let Ok(r) = parse_reference(name) else {
            panic!("{name} is a reference");
        };
        for podman in [false, true] {
            match lookup_in_bytes(&data, podman, file, &r) {
                Ok(Some(Credential::Basic { password: s, .. } | Credential::IdentityToken(s))) => {
                    hidden.push(s)
                }
                Ok(None) => {}
                Err(e) => {
                    let e = e.to_string();
                    check_error("credentials", &e);
                    assert!(e.contains("/fuzz/config.json"), "{e}");
                    errors.push(e);
                }
            }
        }
    }
    // What a message may name: the file and the registries. A secret with
    // a digit, 8 characters or more, cannot be one of the messages' own
    // words (they have no digits once those names are taken out).
    for e in &errors {
        let mut words = e.clone();
        for name in [
            "/fuzz/config.json",
            "localhost:5000",
            "quay.io",
            "docker.io",
        ] {
            words = words.replace(name, " ");
        }
        for h in &hidden {
            if h.len() >= 8 && h.contains(|c: char| c.is_ascii_digit()) {
                assert!(!words.contains(h.as_str()), "an error shows a secret: {e}");
            }
        }
    }
    errors.into_iter().next().map_or(Ok(()), Err)
}

/// `challenge`: `WWW-AUTHENTICATE \n RETRY-AFTER`. The challenge goes
/// through http-auth's parser, which oci-client (and so every registry
/// login) runs on it, then as oci-client reads a Bearer challenge (a realm
/// is required); the second line through our Retry-After reading, which
/// never asks for a wait beyond what the date allows.
pub fn challenge(data: &[u8]) -> Result<(), String> {
    use layerscope::source::registry::transport::retry_after;
    let Ok(s) = std::str::from_utf8(data) else {
        return Ok(());
    };
    let (header, retry) = s.split_once('\n').unwrap_or((s, ""));
    let mut bearer = None;
    for c in http_auth::ChallengeParser::new(header).flatten() {
        if !c.scheme.eq_ignore_ascii_case("Bearer") {
            continue;
        }
        let realm = c
            .params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("realm"))
            .map(|(_, v)| v.to_unescaped());
        if let Some(r) = realm {
            bearer = Some(r);
            break;
        }
    }
    // A number of seconds is taken as it is (the caller refuses to wait
    // more than a minute); anything else is an HTTP date or nothing.
    if let Ok(n) = retry.trim().parse::<u64>() {
        assert_eq!(retry_after(retry), Some(std::time::Duration::from_secs(n)));
    } else {
        let _ = retry_after(retry);
    }
    bearer
        .map(|_| ())
        .ok_or_else(|| "no Bearer challenge".into())
}

/// `platform`: `PLATFORM \n MANIFEST-JSON`. An accepted platform prints
/// as one that parses back to itself; a manifest or index is parsed, and
/// the entry chosen from an index is one the platform accepts (an error
/// is one line).
pub fn platform(data: &[u8]) -> Result<(), String> {
    use layerscope::source::registry::manifest::{self, Manifest, Platform};
    let (line, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return Ok(());
    };
    let want = match Platform::parse(line) {
        Ok(p) => {
            let again = Platform::parse(&p.to_string())
                .unwrap_or_else(|e| panic!("{line:?} printed as {p}, which does not parse: {e}"));
            assert_eq!(again, p);
            assert!(p.accepts(&p), "{p} does not accept itself");
            p
        }
        Err(e) => {
            check_error("platform", &e);
            Platform::host()
        }
    };
    match manifest::parse(None, body) {
        Ok(Manifest::Index(entries)) => match manifest::choose(&entries, &want) {
            Ok(d) => {
                let have = d.platform.as_ref().expect("a chosen entry has a platform");
                assert!(want.accepts(have), "chose {have} for {want}");
                Ok(())
            }
            // Both may quote what the registry sent; the loader shows them
            // through `Error::input`, which escapes control characters.
            Err(e) => {
                check_inner_error("choose", &e);
                Err(e)
            }
        },
        Ok(Manifest::Image(_)) => Ok(()),
        Err(e) => {
            check_inner_error("manifest", &e);
            Err(e)
        }
    }
}
