//! `docker://` references, resolved as docker resolves them.
//!
//! The grammar is distribution's (`reference/regexp.go`): an optional
//! registry host (a first component with a `.` or a `:`, or `localhost`),
//! lowercase path components, an optional `:TAG` and an optional
//! `@ALGO:HEX` digest. Docker Hub short names get `docker.io` and, with one
//! component, `library/`. Spellings that mean something else than they
//! seem are refused with the spelling that works.

use std::fmt;

use crate::error::Error;

/// Docker Hub as references name it.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API answers.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key `docker login` stores Docker Hub's credentials under.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// An image in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// `docker.io`, `ghcr.io`, `localhost:5000` (host[:port], as named).
    pub registry: String,
    /// `library/alpine`, `org/app`.
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// `sha256:<64 hex>`; when given, it wins over the tag (as in docker).
    pub digest: Option<String>,
}

impl RegistryRef {
    /// The host the registry API is reached at.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The host without its port (`[::1]` keeps its brackets).
    pub fn hostname(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(end) = r.strip_prefix('[').and_then(|s| s.find(']')) {
            return &r[..end + 2];
        }
        r.split(':').next().unwrap_or(r)
    }

    /// Is the registry on this machine (plain HTTP is allowed there)?
    pub fn is_loopback(&self) -> bool {
        let h = self.hostname();
        let h = h.trim_start_matches('[').trim_end_matches(']');
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// What the manifest is asked for by: the digest if any, else the tag.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for RegistryRef {
    /// The full name: `docker.io/library/alpine:latest`,
    /// `host:5000/repo@sha256:...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Longest reference docker accepts.
const MAX_NAME: usize = 255;

/// Parse what follows `docker://`.
pub fn parse_reference(s: &str) -> Result<RegistryRef, Error> {
    // The message may quote parts of `s` back: escape what a terminal
    // would act on there too.
    let bad = |msg: String| {
        let msg = crate::error::one_line(&msg);
        Error::Usage(format!("docker://{}: {msg}", one_line(s)))
    };
    if s.is_empty() {
        return Err(bad(
            "no image named (docker://[HOST[:PORT]/]REPO[:TAG|@DIGEST])".into(),
        ));
    }
    for scheme in ["https://", "http://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            return Err(bad(format!(
                "a reference has no URL scheme: write docker://{rest}"
            )));
        }
    }
    if let Some(rest) = s.strip_prefix('/') {
        return Err(bad(format!(
            "a reference does not start with '/': write docker://{}",
            rest.trim_start_matches('/')
        )));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains white space or control characters".into()));
    }
    let (name, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(parse_digest(d).map_err(bad)?)),
        None => (s, None),
    };
    // The tag is after the last ':' that follows the last '/' (a ':' before
    // it is a port).
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
        None => (name, None),
    };
    if let Some(t) = tag {
        check_tag(t).map_err(bad)?;
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    let first = parts[0];
    let has_host = parts.len() > 1
        && (first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.starts_with('['));
    let registry = if has_host {
        parts.remove(0);
        check_host(first).map_err(bad)?;
        match first {
            "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
                DOCKER_HUB.to_string()
            }
            _ => first.to_string(),
        }
    } else {
        // `host:5000` or `example.com` alone: a registry without an image
        // (docker would read the port as a tag).
        if parts.len() == 1
            && (first.contains('.') || first == "localhost")
            && tag.is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad(format!(
                "names a registry, not an image: write docker://{name}/REPO[:TAG]"
            )));
        }
        DOCKER_HUB.to_string()
    };
    for p in &parts {
        check_component(p, &parts.join("/")).map_err(bad)?;
    }
    let mut repository = parts.join("/");
    if registry == DOCKER_HUB && parts.len() == 1 {
        repository = format!("library/{repository}");
    }
    if registry.len() + 1 + repository.len() > MAX_NAME {
        return Err(bad(format!(
            "the name is longer than {MAX_NAME} characters"
        )));
    }
    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, None) => Some("latest".to_string()),
        (None, Some(_)) => None,
    };
    Ok(RegistryRef {
        registry,
        repository,
        tag,
        digest,
    })
}

fn parse_digest(d: &str) -> Result<String, String> {
    let Some((algo, hex)) = d.split_once(':') else {
        return Err(format!(
            "the digest {d:?} has no algorithm: write @sha256:<64 hex digits>"
        ));
    };
    let len = match algo {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "unsupported digest algorithm {algo:?} (sha256 or sha512)"
            ));
        }
    };
    let is_hex = hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex.len() != len || !is_hex {
        let hint = if hex.bytes().any(|b| b.is_ascii_uppercase()) {
            " in lowercase"
        } else {
            ""
        };
        return Err(format!(
            "the digest must be {algo}: and {len} hex digits{hint}, not {} characters",
            hex.len()
        ));
    }
    Ok(d.to_string())
}

fn check_tag(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("empty tag after ':'".into());
    }
    let ok_first = t
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let ok_rest = t
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok_first || !ok_rest || t.len() > 128 {
        return Err(format!(
            "invalid tag {t:?} (letters, digits, '_', '.', '-'; at most 128, not starting with '.' or '-')"
        ));
    }
    Ok(())
}

fn check_host(h: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return Err(format!("invalid registry host {h:?}"));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("invalid IPv6 address in {h:?}"));
        }
        match after {
            "" => (ip, None),
            p => match p.strip_prefix(':') {
                Some(p) => (ip, Some(p)),
                None => return Err(format!("invalid registry host {h:?}")),
            },
        }
    } else {
        match h.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (h, None),
        }
    };
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |n| n == 0)
    {
        return Err(format!("invalid port {p:?} in the registry host {h:?}"));
    }
    if !h.starts_with('[') {
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(format!("invalid registry host {h:?}"));
        }
    }
    Ok(())
}

/// A path component: `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn check_component(c: &str, path: &str) -> Result<(), String> {
    if c.is_empty() {
        return Err(if path.is_empty() {
            "no repository name".into()
        } else {
            format!("empty path component in {path:?}")
        });
    }
    if c.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "repository names are lowercase: write {:?}",
            path.to_ascii_lowercase()
        ));
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < b.len() {
        if alnum(b[i]) {
            expect_alnum = false;
            i += 1;
            continue;
        }
        if expect_alnum {
            return Err(format!("invalid repository name {path:?}"));
        }
        // A separator: '.', '_', '__', or one or more '-'.
        let sep_len = match b[i] {
            b'.' => 1,
            b'_' if b.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            b'-' => b[i..].iter().take_while(|&&x| x == b'-').count(),
            _ => return Err(format!("invalid character in repository name {path:?}")),
        };
        i += sep_len;
        expect_alnum = true;
    }
    if expect_alnum {
        return Err(format!("invalid repository name {path:?}"));
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.chars().flat_map(char::escape_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> RegistryRef {
        parse_reference(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        parse_reference(s).expect_err(s).to_string()
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_hub_short_names_resolve_as_docker_does() {
        let r = ok("alpine");
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(
            ok("library/alpine:3.19").to_string(),
            "docker.io/library/alpine:3.19"
        );
        assert_eq!(
            ok("docker.io/alpine").to_string(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            ok("index.docker.io/org/app:1").to_string(),
            "docker.io/org/app:1"
        );
        assert_eq!(ok("org/app").repository, "org/app");
        assert!(!ok("alpine").is_loopback());
    }

    #[test]
    fn hosts_ports_and_digests() {
        let r = ok("localhost:5000/a/b:v1");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost:5000", "a/b")
        );
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert!(r.is_loopback());
        assert_eq!(r.hostname(), "localhost");
        let r = ok(&format!("127.0.0.1:5000/app@{D}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.reference(), D);
        assert!(r.is_loopback());
        let r = ok(&format!("ghcr.io/o/app:1.2@{D}"));
        assert_eq!(r.reference(), D, "the digest wins over the tag");
        assert_eq!(r.api_host(), "ghcr.io");
        let r = ok("[::1]:5000/app");
        assert!(r.is_loopback());
        assert_eq!(r.hostname(), "[::1]");
        assert_eq!(ok("localhost/app").registry, "localhost");
        assert_eq!(ok("a__b/c-d.e--f_g:T_1.x-y").repository, "a__b/c-d.e--f_g");
    }

    #[test]
    fn ambiguous_spellings_name_the_right_one() {
        assert!(err("https://ghcr.io/o/a").contains("write docker://ghcr.io/o/a"));
        assert!(err("//ghcr.io/o/a").contains("write docker://ghcr.io/o/a"));
        assert!(err("Alpine").contains("write \"alpine\""));
        assert!(err("localhost:5000").contains("write docker://localhost:5000/REPO"));
        assert!(err("registry.example.com:443").contains("names a registry"));
        assert!(err("alpine@sha256:abc").contains("64 hex digits"));
        assert!(err("alpine@abc").contains("write @sha256:"));
        assert!(
            err(&format!(
                "alpine@{}",
                D.to_uppercase().replace("SHA256", "sha256")
            ))
            .contains("lowercase")
        );
    }

    #[test]
    fn malformed_references_are_one_line_errors() {
        for s in [
            "",
            "alpine:",
            "alpine:-x",
            "a//b",
            "a/",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "host:0/a",
            "host:99999/a",
            "ho_st.io/a",
            "[::zz]:5/a",
            "a b",
            "a\nb",
            "a:b:c",
        ] {
            let e = err(s);
            assert!(e.starts_with("docker://"), "{s:?}: {e}");
            assert!(!e.contains('\n'), "{s:?}: {e}");
        }
        assert!(err(&"a".repeat(300)).contains("longer than"));
    }
}
