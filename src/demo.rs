//! `layerscope demo`: build the seed scenario — one small Go web server
//! packaged single-stage (`go-app-single`) and multi-stage on `scratch`
//! (`go-app-multi`) — through the engine's API, from files embedded in the
//! binary. A missing Go builder image is pulled first, as `docker build`
//! would (the demo is a build the user asked for). Images the demo builds
//! carry the label [`LABEL`]; an image of the same name without it is
//! never replaced unless `--force`.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;

use crate::error::Error;
use crate::source::engine::{connect, docker_host, runtime, similar_names};

/// The Go builder image used when `--base` is not given.
pub const DEFAULT_BASE: &str = "golang:1.22-alpine";

/// The images the demo builds: single-stage, then multi-stage.
pub const IMAGES: [&str; 2] = ["go-app-single", "go-app-multi"];

/// The label on every image the demo builds: `image` on the tagged ones,
/// `builder` on the multi-stage build's first stage (kept untagged by the
/// engine as the build cache; set by the embedded Dockerfile).
pub const LABEL: &str = "layerscope.demo";

/// How `layerscope demo` runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoOptions {
    /// The Go builder image (`None`: [`DEFAULT_BASE`]).
    pub base: Option<String>,
    /// Replace same-named images the demo did not build.
    pub force: bool,
    /// How long to wait for a registry's first answer when pulling the
    /// builder (`None`: [`crate::source::engine::pull_connect_timeout`]).
    pub pull_timeout: Option<std::time::Duration>,
}

/// The build context, embedded: (path in the context, contents).
pub const CONTEXT: [(&str, &str); 5] = [
    ("main.go", include_str!("../assets/demo/go-app/main.go")),
    ("go.mod", include_str!("../assets/demo/go-app/go.mod")),
    (
        "static/index.html",
        include_str!("../assets/demo/go-app/static/index.html"),
    ),
    (
        "Dockerfile.single",
        include_str!("../assets/demo/go-app/Dockerfile.single"),
    ),
    (
        "Dockerfile",
        include_str!("../assets/demo/go-app/Dockerfile"),
    ),
];

/// Which Dockerfile builds which image.
const BUILDS: [(&str, &str); 2] = [
    ("go-app-single", "Dockerfile.single"),
    ("go-app-multi", "Dockerfile"),
];

/// The embedded context as an uncompressed tar, in memory.
pub fn context_tar() -> Result<Vec<u8>, Error> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, text) in CONTEXT {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, text.as_bytes())
            .map_err(|e| Error::Usage(format!("demo: cannot build the context: {e}")))?;
    }
    b.into_inner()
        .map_err(|e| Error::Usage(format!("demo: cannot build the context: {e}")))
}

/// Build `go-app-single` and `go-app-multi` from the embedded files.
/// Build and pull output lines (`Step 3/8 : ...`) go to `log`. Fails with
/// one line when an image of those names was not built by the demo (unless
/// `force`), when the Go base can be neither found nor pulled, or when a
/// build step fails.
pub fn build_demo(o: &DemoOptions, log: &mut dyn FnMut(&str)) -> Result<(), Error> {
    build_demo_as(o, IMAGES, log)
}

/// [`build_demo`] under other names (single-stage, multi-stage): tests
/// build the scenario without touching the user's `go-app-*` images.
pub fn build_demo_as(
    o: &DemoOptions,
    names: [&str; 2],
    log: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    let base = o.base.as_deref().unwrap_or(DEFAULT_BASE);
    let context = context_tar()?;
    let rt = runtime()?;
    rt.block_on(async {
        let docker = connect().await?;
        if !o.force {
            for name in names {
                check_ours(&docker, name).await?;
            }
        }
        let wait = o
            .pull_timeout
            .unwrap_or_else(crate::source::engine::pull_connect_timeout);
        ensure_base(&docker, base, wait, log).await?;
        for (tag, (_, dockerfile)) in names.iter().zip(BUILDS) {
            build_one(&docker, tag, dockerfile, base, &context, log).await?;
        }
        log(&format!(
            "demo: the builder stage stays as the build cache (untagged, label {LABEL}=builder); \
             remove it with `docker image prune --filter label={LABEL}=builder`"
        ));
        Ok(())
    })
}

/// An image named `name` may be replaced only if the demo built it.
async fn check_ours(docker: &Docker, name: &str) -> Result<(), Error> {
    let Ok(img) = docker.inspect_image(name).await else {
        return Ok(());
    };
    let labelled = img
        .config
        .and_then(|c| c.labels)
        .is_some_and(|l| l.contains_key(LABEL));
    if labelled {
        return Ok(());
    }
    let id = img.id.unwrap_or_default();
    let short = id.strip_prefix("sha256:").unwrap_or(&id);
    Err(Error::Engine(format!(
        "demo: {name} exists (image {}) and layerscope demo did not build it, so it is left as it is; \
         compare it as it is (`layerscope {}`), remove or retag it, or pass --force to replace it",
        &short[..short.len().min(12)],
        IMAGES.join(" ")
    )))
}

/// The base must be in the engine: pull it when it is not, with progress,
/// as `docker build` would. Where no registry answers, the pull gives up
/// after a short wait and the error names local Go images for `--base`.
async fn ensure_base(
    docker: &Docker,
    base: &str,
    wait: std::time::Duration,
    log: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    match docker.inspect_image(base).await {
        Ok(_) => return Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => {
            return Err(Error::Engine(format!(
                "demo: cannot inspect the base image {base} at {}: {e}",
                docker_host()
            )));
        }
    }
    log(&format!("demo: pulling the Go builder image {base}"));
    let Err(pulled) = crate::source::engine::pull_with(docker, base, wait, log).await else {
        return Ok(());
    };
    let local = crate::source::engine::local_tags(docker).await;
    let mut go: Vec<String> = local
        .iter()
        .filter(|t| {
            let repo = t.split(':').next().unwrap_or(t);
            let last = repo.rsplit('/').next().unwrap_or(repo);
            last.starts_with("golang") || last == "go" || last.starts_with("go-")
        })
        .filter(|t| !IMAGES.iter().any(|i| t.starts_with(&format!("{i}:"))))
        .cloned()
        .collect();
    for s in similar_names(base, &local, 5) {
        if !go.contains(&s) && !IMAGES.iter().any(|i| s.starts_with(&format!("{i}:"))) {
            go.push(s);
        }
    }
    go.truncate(5);
    let suggestion = match go.first() {
        Some(first) => format!(
            "use a local Go image instead: --base {first}{}",
            if go.len() > 1 {
                format!(" (local candidates: {})", go.join(", "))
            } else {
                String::new()
            }
        ),
        None => "use a local Go image instead, e.g. --base golang-local:1.19 (any image with the `go` tool works)".to_string(),
    };
    Err(Error::Engine(format!(
        "demo: the Go base image {base} is not in the local Docker engine and could not be pulled ({}); {suggestion}",
        pulled.error
    )))
}

async fn build_one(
    docker: &Docker,
    tag: &str,
    dockerfile: &str,
    base: &str,
    context: &[u8],
    log: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    let opts = BuildImageOptions {
        dockerfile: dockerfile.to_string(),
        t: Some(tag.to_string()),
        buildargs: Some(HashMap::from([("GO_IMAGE".to_string(), base.to_string())])),
        labels: Some(HashMap::from([(LABEL.to_string(), "image".to_string())])),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let body = bollard::body_full(context.to_vec().into());
    let mut stream = docker.build_image(opts, None, Some(body));
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream {
                    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                        // The Dockerfile's default builder is not the one
                        // used when --base named another.
                        match line.split_once(" : ARG GO_IMAGE=") {
                            Some((step, _)) => log(&format!("{step} : ARG GO_IMAGE={base}")),
                            None => log(line),
                        }
                    }
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(Error::Engine(format!(
                    "demo: building {tag} ({dockerfile}, base {base}) failed: {}",
                    one_line(&error)
                )));
            }
            Err(e) => {
                return Err(Error::Engine(format!(
                    "demo: building {tag} at {} failed: {}",
                    docker_host(),
                    one_line(&e.to_string())
                )));
            }
        }
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_holds_every_embedded_file() {
        let tar = context_tar().expect("context");
        let mut ar = tar::Archive::new(&tar[..]);
        let names: Vec<String> = ar
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        for (path, _) in CONTEXT {
            assert!(names.iter().any(|n| n == path), "{path} missing");
        }
    }

    #[test]
    fn dockerfiles_take_the_go_image_and_multi_ends_on_scratch() {
        for (_, dockerfile) in BUILDS {
            let text = CONTEXT
                .iter()
                .find(|(p, _)| *p == dockerfile)
                .map(|(_, t)| *t)
                .expect("embedded");
            assert!(text.contains("ARG GO_IMAGE="), "{dockerfile}");
        }
        let multi = include_str!("../assets/demo/go-app/Dockerfile");
        let last_from = multi
            .lines()
            .rfind(|l| l.starts_with("FROM "))
            .expect("a FROM line");
        assert_eq!(last_from.trim(), "FROM scratch");
    }
}
