//! Image references, parsed once: skopeo's transport names
//! (`docker://`, `docker-daemon:`, `docker-archive:`, `oci:`,
//! `oci-archive:`), `docker:NAME` kept for the engine, and bare names and
//! paths as before (a bare name is the local engine; nothing goes to the
//! network unless the reference says `docker://`).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, one_line};

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A tar written by `docker save` (either layout), optionally with a tag.
    DockerArchive(PathBuf, Option<String>),
    /// An OCI image layout directory.
    OciDir(PathBuf, Option<String>),
    /// A tar of an OCI image layout.
    OciArchive(PathBuf, Option<String>),
    /// An image in the Docker engine.
    Engine(String),
    /// An image in a registry (`docker://HOST/REPO[:TAG|@DIGEST]`, or a
    /// Docker Hub short name), parsed by the registry source's grammar.
    Registry(crate::source::registry::RegistryRef),
}

/// A reference as given on the command line, and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub given: String,
    pub image: ImageRef,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, Error> {
        Ok(Reference {
            given: s.to_string(),
            image: ImageRef::parse(s)?,
        })
    }
}

/// The saved-image transports: prefix, what follows it, constructor.
type Saved = (
    &'static str,
    &'static str,
    fn(PathBuf, Option<String>) -> ImageRef,
);
const SAVED: [Saved; 3] = [
    ("docker-archive:", "PATH[:TAG]", ImageRef::DockerArchive),
    ("oci-archive:", "PATH[:REF]", ImageRef::OciArchive),
    ("oci:", "PATH[:REF]", ImageRef::OciDir),
];

/// Every transport, for messages.
const TRANSPORTS: &str =
    "docker://HOST/REPO[:TAG], docker-daemon:NAME, docker-archive:PATH, oci:PATH, oci-archive:PATH";

impl ImageRef {
    /// Parse `docker://HOST/REPO[:TAG|@DIGEST]`, `docker-daemon:NAME`,
    /// `docker:NAME`, `docker-archive:PATH[:TAG]`, `oci:DIR[:REF]`,
    /// `oci-archive:PATH[:REF]`, a path to an existing file or directory,
    /// or else an engine reference. Saved sources must exist. An ambiguous
    /// spelling is refused with the right one.
    pub fn parse(s: &str) -> Result<ImageRef, Error> {
        // The message may quote the reference back: escape what a
        // terminal would act on.
        let bad = |msg: String| Error::Usage(format!("{s:?}: {}", one_line(&msg)));
        if s.is_empty() {
            return Err(Error::Usage("empty image reference".into()));
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            return crate::source::registry::parse_reference(rest).map(ImageRef::Registry);
        }
        for prefix in ["docker-daemon:", "docker:"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                return engine_name(rest, prefix).map_err(bad);
            }
        }
        for (prefix, what, make) in SAVED {
            if let Some(rest) = s.strip_prefix(prefix) {
                if rest.is_empty() {
                    return Err(bad(format!("write {prefix}{what}")));
                }
                if let Some(path) = rest.strip_prefix("//") {
                    return Err(bad(format!(
                        "{prefix} takes a path, not a URL: write {prefix}{path}"
                    )));
                }
                let (path, tag) = split_path_tag(rest);
                if !path.exists() {
                    return Err(Error::input(
                        &path.display().to_string(),
                        "no such file or directory",
                    ));
                }
                return Ok(make(path, tag));
            }
        }
        let p = Path::new(s);
        if p.exists() {
            // A directory is an OCI layout; anything else (a FIFO, device
            // or socket too) goes to the archive loader, which says what it is.
            return Ok(if p.is_dir() {
                ImageRef::OciDir(p.to_path_buf(), None)
            } else {
                ImageRef::DockerArchive(p.to_path_buf(), None)
            });
        }
        if let Some(hint) = misspelled_transport(s) {
            return Err(bad(hint));
        }
        let looks_like_path = s.starts_with('.')
            || s.starts_with('/')
            || s.starts_with('~')
            || [".tar", ".tar.gz", ".tgz", ".oci"]
                .iter()
                .any(|x| s.ends_with(x));
        if looks_like_path {
            return Err(Error::input(s, "no such file or directory"));
        }
        engine_name(s, "").map_err(bad)
    }

    /// Does loading it contact a registry?
    pub fn is_remote(&self) -> bool {
        matches!(self, ImageRef::Registry(_))
    }
}

/// The engine name after `docker-daemon:` or `docker:`.
fn engine_name(rest: &str, prefix: &str) -> Result<ImageRef, String> {
    if let Some(name) = rest.strip_prefix("//") {
        // `docker://` was taken as a registry before this.
        return Err(format!(
            "{prefix} takes an engine name, not a URL: write {prefix}{name} (or docker://{name} for a registry)"
        ));
    }
    if let Some(name) = rest.strip_prefix('/') {
        return Err(either(name));
    }
    if rest.is_empty() {
        return Err(format!("write {prefix}NAME[:TAG]"));
    }
    // Docker's repository names are lower case (tags may not be): the
    // engine would only say "invalid reference format".
    let name = rest.split('@').next().unwrap_or(rest);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let repo_end = name[slash..].rfind(':').map_or(name.len(), |i| slash + i);
    let repo = &name[..repo_end];
    // A registry host may be written in any case.
    let path = match repo.split_once('/') {
        Some((host, path)) if host.contains(['.', ':']) || host == "localhost" => path,
        _ => repo,
    };
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "image names are lower case: write {prefix}{}{}{}",
            &repo[..repo.len() - path.len()],
            path.to_ascii_lowercase(),
            &rest[repo_end..]
        ));
    }
    Ok(ImageRef::Engine(rest.to_string()))
}

fn either(name: &str) -> String {
    format!("write docker://{name} for a registry, or docker-daemon:{name} for the engine")
}

/// A bare reference that looks like a transport written wrong:
/// `docker//x`, `docker-daemon//x`, `Docker://x`, `http://x`.
fn misspelled_transport(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    // Longest first: `docker-daemon` before `docker`.
    for t in [
        "docker-daemon",
        "docker-archive",
        "oci-archive",
        "oci",
        "docker",
    ] {
        if !lower.starts_with(t) {
            continue;
        }
        let rest = &s[t.len()..];
        if let Some(name) = rest.strip_prefix("//") {
            return Some(match t {
                "docker" => either(name),
                _ => format!("write {t}:{name}"),
            });
        }
        if rest.starts_with(':') && !s.starts_with(t) {
            return Some(format!("transport names are lower case: write {t}{rest}"));
        }
    }
    let (scheme, rest) = s.split_once("://")?;
    let name = rest.trim_start_matches('/');
    Some(format!(
        "unknown transport {scheme}:// (one of: {TRANSPORTS}); for a registry write docker://{name}"
    ))
}

/// `PATH:TAG` where PATH exists; else the whole string is the path.
fn split_path_tag(s: &str) -> (PathBuf, Option<String>) {
    if Path::new(s).exists() {
        return (PathBuf::from(s), None);
    }
    // The first ':' whose prefix exists splits path and tag.
    for (i, _) in s.match_indices(':') {
        let (p, t) = s.split_at(i);
        if Path::new(p).exists() {
            return (PathBuf::from(p), Some(t[1..].to_string()));
        }
    }
    (PathBuf::from(s), None)
}

impl fmt::Display for ImageRef {
    /// The canonical spelling: `ImageRef::parse` reads it back as itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, p, tag) = match self {
            ImageRef::Engine(n) => return write!(f, "docker-daemon:{n}"),
            ImageRef::Registry(r) => return write!(f, "docker://{r}"),
            ImageRef::DockerArchive(p, t) => ("docker-archive:", p, t),
            ImageRef::OciDir(p, t) => ("oci:", p, t),
            ImageRef::OciArchive(p, t) => ("oci-archive:", p, t),
        };
        write!(f, "{prefix}{}", p.display())?;
        match tag {
            Some(t) => write!(f, ":{t}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        ImageRef::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn transports() {
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("a.tar");
        std::fs::write(&tar, b"x").unwrap();
        let t = tar.display().to_string();
        let d = dir.path().display().to_string();
        let reg =
            |s: &str| ImageRef::Registry(crate::source::registry::parse_reference(s).unwrap());
        assert_eq!(
            ImageRef::parse("docker://localhost:5000/app:1").unwrap(),
            reg("localhost:5000/app:1")
        );
        // Docker Hub short names as docker resolves them.
        assert_eq!(
            ImageRef::parse("docker://alpine").unwrap().to_string(),
            "docker://docker.io/library/alpine:latest"
        );
        for s in ["docker-daemon:app:1", "docker:app:1", "app:1"] {
            assert_eq!(
                ImageRef::parse(s).unwrap(),
                ImageRef::Engine("app:1".into())
            );
        }
        assert_eq!(
            ImageRef::parse("localhost:5000/app@sha256:ab").unwrap(),
            ImageRef::Engine("localhost:5000/app@sha256:ab".into())
        );
        assert_eq!(
            ImageRef::parse(&format!("docker-archive:{t}:app:1")).unwrap(),
            ImageRef::DockerArchive(tar.clone(), Some("app:1".into()))
        );
        assert_eq!(
            ImageRef::parse(&format!("oci-archive:{t}")).unwrap(),
            ImageRef::OciArchive(tar.clone(), None)
        );
        assert_eq!(
            ImageRef::parse(&format!("oci:{d}:v1")).unwrap(),
            ImageRef::OciDir(dir.path().to_path_buf(), Some("v1".into()))
        );
        // Bare paths as before.
        assert_eq!(
            ImageRef::parse(&t).unwrap(),
            ImageRef::DockerArchive(tar.clone(), None)
        );
        assert_eq!(
            ImageRef::parse(&d).unwrap(),
            ImageRef::OciDir(dir.path().to_path_buf(), None)
        );
        // The canonical spelling reads back as itself.
        for r in [
            reg(&format!("h:1/r@sha256:{}", "0".repeat(64))),
            ImageRef::Engine("a:b".into()),
            ImageRef::DockerArchive(tar.clone(), Some("x:y".into())),
            ImageRef::OciDir(dir.path().to_path_buf(), None),
        ] {
            assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r);
        }
        assert!(ImageRef::parse("docker://x").unwrap().is_remote());
        assert!(!ImageRef::parse("x").unwrap().is_remote());
    }

    #[test]
    fn ambiguous_spellings_name_the_right_one() {
        for (s, want) in [
            (
                "docker:/x",
                "write docker://x for a registry, or docker-daemon:x",
            ),
            ("docker-daemon://x", "write docker-daemon:x"),
            ("docker-daemon:/x", "docker-daemon:x for the engine"),
            ("docker//x", "write docker://x for a registry"),
            ("docker-daemon//x", "write docker-daemon:x"),
            ("oci-archive:", "write oci-archive:PATH[:REF]"),
            ("docker-archive:", "write docker-archive:PATH[:TAG]"),
            ("docker-daemon:", "write docker-daemon:NAME[:TAG]"),
            ("docker:", "write docker:NAME[:TAG]"),
            ("oci-archive://tmp/x", "write oci-archive:tmp/x"),
            ("docker://", "no image named (docker://[HOST[:PORT]/]REPO"),
            ("docker:///x", "does not start with '/': write docker://x"),
            ("docker://Alpine", "repository names are lowercase"),
            ("http://host/x", "for a registry write docker://host/x"),
            ("Docker://x", "lower case: write docker://x"),
            ("OCI:x", "lower case: write oci:x"),
            (
                "Go-App-Single",
                "image names are lower case: write go-app-single",
            ),
            (
                "docker-daemon:Org/App:V1",
                "image names are lower case: write docker-daemon:org/app:V1",
            ),
            (
                "localhost:5000/App@sha256:ab",
                "write localhost:5000/app@sha256:ab",
            ),
        ] {
            let e = err(s);
            assert!(e.contains(want), "{s}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        assert_eq!(
            ImageRef::parse("Registry.Example:5000/app:V2").unwrap(),
            ImageRef::Engine("Registry.Example:5000/app:V2".into())
        );
        assert!(err("oci:/nonexistent/x").contains("no such file"));
        assert!(err("./missing.tar").contains("no such file"));
        assert_eq!(err(""), "empty image reference");
    }
}
