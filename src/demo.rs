//! `layerscope demo`: build the seed scenario — one small Go web server
//! packaged single-stage (`go-app-single`) and multi-stage on `scratch`
//! (`go-app-multi`) — through the engine's API, from files embedded in the
//! binary. No registry is contacted: the Go base image must be local.

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

/// Build `go-app-single` and `go-app-multi` from the embedded files with
/// `base` (default [`DEFAULT_BASE`]) as the Go builder image. Build output
/// lines (`Step 3/8 : ...`) go to `log`. Fails with one line when the base
/// image is not local (no pull is ever done) or a build step fails.
pub fn build_demo(base: Option<&str>, log: &mut dyn FnMut(&str)) -> Result<(), Error> {
    build_demo_as(base, IMAGES, log)
}

/// [`build_demo`] under other names (single-stage, multi-stage): tests
/// build the scenario without touching the user's `go-app-*` images.
pub fn build_demo_as(
    base: Option<&str>,
    names: [&str; 2],
    log: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    let base = base.unwrap_or(DEFAULT_BASE);
    let context = context_tar()?;
    let rt = runtime()?;
    rt.block_on(async {
        let docker = connect().await?;
        check_base(&docker, base).await?;
        for (tag, (_, dockerfile)) in names.iter().zip(BUILDS) {
            build_one(&docker, tag, dockerfile, base, &context, log).await?;
        }
        Ok(())
    })
}

/// The base must be in the engine already: the classic builder would try
/// to pull it, which fails (slowly) without a registry.
async fn check_base(docker: &Docker, base: &str) -> Result<(), Error> {
    match docker.inspect_image(base).await {
        Ok(_) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
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
                "demo: the Go base image {base} is not in the local Docker engine and layerscope never pulls implicitly; pull it (`docker pull {base}`) or {suggestion}"
            )))
        }
        Err(e) => Err(Error::Engine(format!(
            "demo: cannot inspect the base image {base} at {}: {e}",
            docker_host()
        ))),
    }
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
                        log(line);
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
