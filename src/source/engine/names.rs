//! Image names: suggestions for a missing one, tags, and `--pull`.

use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::query_parameters::{CreateImageOptions, ListImagesOptions};
use futures_util::StreamExt;

use super::connect::{connect, docker_host, request_error, runtime};
use crate::error::Error;

/// The `repo:tag` names of the engine's images (empty if it cannot list them).
pub async fn local_tags(docker: &Docker) -> Vec<String> {
    docker
        .list_images(Some(ListImagesOptions::default()))
        .await
        .map(|imgs| {
            imgs.into_iter()
                .flat_map(|i| i.repo_tags)
                .filter(|t| t != "<none>:<none>")
                .collect()
        })
        .unwrap_or_default()
}

pub(super) async fn not_found(docker: &Docker, name: &str) -> Error {
    let local = local_tags(docker).await;
    let similar = similar_names(name, &local, 5);
    let hint = "no pull is done implicitly: add --pull to pull it";
    if similar.is_empty() {
        Error::Engine(format!(
            "{name}: no such image in the Docker engine (no local image has a similar name; {hint})"
        ))
    } else {
        Error::Engine(format!(
            "{name}: no such image in the Docker engine; similar local images: {} ({hint})",
            similar.join(", ")
        ))
    }
}

/// Up to `max` of `candidates` whose names resemble `want`, closest first.
pub fn similar_names(want: &str, candidates: &[String], max: usize) -> Vec<String> {
    fn repo(s: &str) -> &str {
        let s = s.split('@').next().unwrap_or(s);
        let s = s
            .strip_prefix("docker.io/library/")
            .or_else(|| s.strip_prefix("docker.io/"))
            .unwrap_or(s);
        match s.rfind(':') {
            Some(i) if !s[i..].contains('/') => &s[..i],
            _ => s,
        }
    }
    let w = repo(want).to_ascii_lowercase();
    let w_last = w.rsplit('/').next().unwrap_or(&w).to_string();
    let mut scored: Vec<(usize, &String)> = candidates
        .iter()
        .filter_map(|c| {
            let r = repo(c).to_ascii_lowercase();
            let last = r.rsplit('/').next().unwrap_or(&r);
            let d = levenshtein(&w_last, last);
            let close = d <= (w_last.len().max(last.len()) / 3).max(2);
            let contains = !w_last.is_empty()
                && w_last.len() >= 2
                && (last.contains(&w_last) || w_last.contains(last));
            let common = common_prefix(&w_last, last) >= 3;
            (close || contains || common).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(max)
        .map(|(_, c)| c.clone())
        .collect()
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Does `name` (as typed) name the tag `tag`?
pub(super) fn tag_is(name: &str, tag: &str) -> bool {
    let full = |s: &str| -> String {
        let last = s.rsplit('/').next().unwrap_or(s);
        if last.contains(':') || s.contains('@') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    };
    full(name) == full(tag)
}

/// Pull an image from its registry (`--pull`). Quiet; one-line errors.
/// Why a pull failed, as far as the caller may act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFailure {
    /// No registry answered (offline, DNS, refused, timed out).
    Offline,
    /// The registry answered: no such image, or a login is needed.
    Denied,
    /// Anything else (the engine itself failed).
    Other,
}

/// A failed pull: its kind and its one-line error.
#[derive(Debug)]
pub struct PullError {
    pub kind: PullFailure,
    pub error: Error,
}

impl std::fmt::Display for PullError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl From<PullError> for Error {
    fn from(e: PullError) -> Error {
        e.error
    }
}

/// How long a pull may wait for the registry's first answer before it
/// gives up as "no registry answered". `LAYERSCOPE_PULL_TIMEOUT`
/// (seconds) overrides it.
pub const PULL_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

pub fn pull_connect_timeout() -> std::time::Duration {
    std::env::var("LAYERSCOPE_PULL_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e6)
        .map_or(PULL_CONNECT_TIMEOUT, std::time::Duration::from_secs_f64)
}

/// Pull `name` through the engine (`--pull`).
pub fn pull(name: &str) -> Result<(), PullError> {
    let other = |error| PullError {
        kind: PullFailure::Other,
        error,
    };
    let rt = runtime().map_err(other)?;
    rt.block_on(async {
        let docker = connect().await.map_err(other)?;
        pull_with(&docker, name, pull_connect_timeout(), &mut |_| {}).await
    })
}

/// Whether the engine holds an image of that name (or id).
pub fn exists_locally(name: &str) -> bool {
    let Ok(rt) = runtime() else { return false };
    rt.block_on(async {
        match connect().await {
            Ok(docker) => docker.inspect_image(name).await.is_ok(),
            Err(_) => false,
        }
    })
}

/// `name[:tag]` or `name@digest` to the fromImage/tag pair the API wants
/// (without a tag the engine would pull every tag).
pub fn split_tag(name: &str) -> (String, String) {
    if name.contains('@') {
        return (name.to_string(), String::new());
    }
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (
            name[..slash + i].to_string(),
            name[slash + i + 1..].to_string(),
        ),
        None => (name.to_string(), "latest".to_string()),
    }
}

/// Pull `name`, passing the engine's progress lines (`a1b2c3: Downloading
/// 12.3MB/40.1MB`, one per layer and state change) to `log`. The first
/// answer must come within `wait` (e.g. [`pull_connect_timeout`]): where
/// no registry answers, the engine may otherwise wait for minutes.
pub async fn pull_with(
    docker: &Docker,
    name: &str,
    wait: std::time::Duration,
    log: &mut dyn FnMut(&str),
) -> Result<(), PullError> {
    let host = docker_host();
    let (image, tag) = split_tag(name);
    let opts = CreateImageOptions {
        from_image: Some(image),
        tag: (!tag.is_empty()).then_some(tag),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(opts), None, None);
    let mut first = true;
    let mut seen = std::collections::HashSet::new();
    loop {
        let item = if first {
            match tokio::time::timeout(wait, stream.next()).await {
                Ok(item) => item,
                Err(_) => {
                    let msg = format!("timeout: no answer within {} s", wait.as_secs_f64());
                    return Err(pull_error(name, &msg));
                }
            }
        } else {
            stream.next().await
        };
        first = false;
        let Some(item) = item else { return Ok(()) };
        match item {
            Ok(info) => {
                let (Some(id), Some(status)) = (&info.id, &info.status) else {
                    if let Some(status) = &info.status {
                        log(status);
                    }
                    continue;
                };
                // Byte counters change many times a second: a line per
                // layer and state, and per quarter of a layer's bytes.
                let detail = info.progress_detail.as_ref();
                let (cur, total) = detail
                    .map(|d| (d.current.unwrap_or(0), d.total.unwrap_or(0)))
                    .unwrap_or((0, 0));
                let quarter = if total > 0 { cur * 4 / total } else { 0 };
                let line = if total > 0 {
                    format!(
                        "{id}: {status} {}% of {}",
                        quarter * 25,
                        crate::units::size(total as u64)
                    )
                } else {
                    format!("{id}: {status}")
                };
                if seen.insert(line.clone()) {
                    log(&line);
                }
            }
            Err(e) => {
                let msg = match &e {
                    ApiError::DockerResponseServerError { message, .. } => message.clone(),
                    ApiError::DockerStreamError { error } => error.clone(),
                    _ => {
                        return Err(PullError {
                            kind: PullFailure::Other,
                            error: request_error(&e, &host, &format!("pulling {name}")),
                        });
                    }
                };
                return Err(pull_error(name, &msg));
            }
        }
    }
}

/// One line for a failed pull, telling "no registry answered" apart from
/// "the registry has no such image".
pub fn pull_error(name: &str, msg: &str) -> PullError {
    let lower = msg.to_ascii_lowercase();
    let offline = [
        "dial tcp",
        "no such host",
        "i/o timeout",
        "timeout",
        "connection refused",
        "network is unreachable",
        "tls handshake",
        "lookup ",
        "eof",
        "proxyconnect",
        "certificate",
    ];
    let msg = msg.trim();
    if offline.iter().any(|k| lower.contains(k)) {
        PullError {
            kind: PullFailure::Offline,
            error: Error::Engine(format!(
                "cannot pull {name}: no registry answered ({msg}); check the network or the engine's proxy settings, or use a local image"
            )),
        }
    } else if lower.contains("not found")
        || lower.contains("manifest unknown")
        || lower.contains("pull access denied")
        || lower.contains("unauthorized")
        || lower.contains("denied")
    {
        PullError {
            kind: PullFailure::Denied,
            error: Error::Engine(format!(
                "cannot pull {name}: the registry has no such image, or it needs a login ({msg})"
            )),
        }
    } else {
        PullError {
            kind: PullFailure::Other,
            error: Error::Engine(format!("cannot pull {name}: {msg}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn similar_names_rank_close_ones_first() {
        let local: Vec<String> = [
            "go-app-single:latest",
            "go-app-multi:latest",
            "big-app:latest",
            "golang-local:1.19",
            "postgres:16",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = similar_names("go-app-singel", &local, 5);
        assert_eq!(s.first().map(String::as_str), Some("go-app-single:latest"));
        assert!(!s.contains(&"postgres:16".to_string()));
        assert!(similar_names("zzzzzz", &local, 5).is_empty());
        assert!(similar_names("go-app", &local, 1).len() == 1);
    }

    #[test]
    fn tags_split_for_pull() {
        assert_eq!(
            split_tag("golang:1.22-alpine"),
            ("golang".into(), "1.22-alpine".into())
        );
        assert_eq!(split_tag("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(
            split_tag("reg:5000/a/b"),
            ("reg:5000/a/b".into(), "latest".into())
        );
        assert_eq!(split_tag("a@sha256:00").1, "");
    }

    #[test]
    fn pull_errors_tell_offline_from_missing() {
        let m = pull_error(
            "golang:1.22",
            "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host",
        );
        assert_eq!(m.kind, PullFailure::Offline);
        let m = m.error.to_string();
        assert!(m.contains("no registry answered"), "{m}");
        let m = pull_error("x/y", "manifest unknown");
        assert_eq!(m.kind, PullFailure::Denied);
        let m = m.error.to_string();
        assert!(m.contains("no such image"), "{m}");
        let m = pull_error(
            "x/y",
            "pull access denied for x/y, repository does not exist",
        );
        assert_eq!(m.kind, PullFailure::Denied);
    }

    #[test]
    fn asked_tag_comes_first() {
        assert!(tag_is("go-app", "go-app:latest"));
        assert!(!tag_is("go-app:v2", "go-app:latest"));
    }
}
