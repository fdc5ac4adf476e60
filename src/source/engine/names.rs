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
pub fn pull(name: &str) -> Result<(), Error> {
    let rt = runtime()?;
    rt.block_on(async {
        let docker = connect().await?;
        pull_with(&docker, name).await
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

async fn pull_with(docker: &Docker, name: &str) -> Result<(), Error> {
    let host = docker_host();
    let (image, tag) = split_tag(name);
    let opts = CreateImageOptions {
        from_image: Some(image),
        tag: (!tag.is_empty()).then_some(tag),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(opts), None, None);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            let msg = match &e {
                ApiError::DockerResponseServerError { message, .. } => message.clone(),
                ApiError::DockerStreamError { error } => error.clone(),
                _ => return Err(request_error(&e, &host, &format!("pulling {name}"))),
            };
            return Err(pull_error(name, &msg));
        }
    }
    Ok(())
}

/// One line for a failed pull, telling "no registry answered" apart from
/// "the registry has no such image".
pub fn pull_error(name: &str, msg: &str) -> Error {
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
        Error::Engine(format!(
            "cannot pull {name}: no registry answered ({msg}); check the network or the engine's proxy settings, or use a local image"
        ))
    } else if lower.contains("not found")
        || lower.contains("manifest unknown")
        || lower.contains("pull access denied")
    {
        Error::Engine(format!(
            "cannot pull {name}: the registry has no such image, or it needs a login ({msg})"
        ))
    } else {
        Error::Engine(format!("cannot pull {name}: {msg}"))
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
        )
        .to_string();
        assert!(m.contains("no registry answered"), "{m}");
        let m = pull_error("x/y", "manifest unknown").to_string();
        assert!(m.contains("no such image"), "{m}");
    }

    #[test]
    fn asked_tag_comes_first() {
        assert!(tag_is("go-app", "go-app:latest"));
        assert!(!tag_is("go-app:v2", "go-app:latest"));
    }
}
