//! Per-registry TLS trust as Docker and podman keep it: every `*.crt`
//! under `certs.d/HOST[:PORT]/` is a CA trusted for that registry, on top
//! of the system's roots. The directories, all read:
//!
//! - `/etc/docker/certs.d/` (the Docker engine's);
//! - `/etc/containers/certs.d/` (podman, skopeo, buildah);
//! - `$HOME/.config/containers/certs.d/` (theirs, per user).
//!
//! A client certificate (`*.cert` with its `*.key`) is noted but not
//! presented: the HTTP client oci-client authenticates with cannot be
//! given one. A registry that asks for it fails with a line that says so.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// What the certs.d directories hold for one registry.
#[derive(Debug, Default, Clone)]
pub struct HostCerts {
    /// PEM certificates, one per entry, with the file each came from.
    pub roots: Vec<(PathBuf, Vec<u8>)>,
    /// A client certificate found (and not presented).
    pub client_cert: Option<PathBuf>,
}

/// The certs.d directories, in the order read.
pub fn dirs() -> Vec<PathBuf> {
    let mut out = vec![
        PathBuf::from("/etc/docker/certs.d"),
        PathBuf::from("/etc/containers/certs.d"),
    ];
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        out.push(PathBuf::from(h).join(".config/containers/certs.d"));
    }
    out
}

/// What `dirs()` hold for `registry` (`host[:port]`, as named).
pub fn for_registry(registry: &str) -> Result<HostCerts, Error> {
    let mut found = HostCerts::default();
    // A name with a path separator or a dot-dot would leave the directory.
    if registry.contains('/') || registry.contains("..") {
        return Ok(found);
    }
    for d in dirs() {
        read_dir_into(&d.join(registry), &mut found)?;
    }
    Ok(found)
}

fn read_dir_into(dir: &Path, found: &mut HostCerts) -> Result<(), Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::input(
                &dir.display().to_string(),
                format!("cannot read the certificates directory: {e}"),
            ));
        }
    };
    let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    names.sort();
    for p in names {
        match p.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                let pem = std::fs::read(&p).map_err(|e| {
                    Error::input(
                        &p.display().to_string(),
                        format!("cannot read the CA certificate: {e}"),
                    )
                })?;
                let certs = split_pem(&pem);
                if certs.is_empty() {
                    return Err(Error::input(
                        &p.display().to_string(),
                        "not a PEM certificate (no BEGIN CERTIFICATE block)",
                    ));
                }
                found
                    .roots
                    .extend(certs.into_iter().map(|c| (p.clone(), c)));
            }
            Some("cert") if found.client_cert.is_none() => found.client_cert = Some(p),
            _ => {}
        }
    }
    Ok(())
}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// The `CERTIFICATE` blocks of a PEM file, each on its own.
pub fn split_pem(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut rest = &text[..];
    while let Some(b) = rest.find(BEGIN) {
        let Some(e) = rest[b..].find(END) else { break };
        let end = b + e + END.len();
        out.push(format!("{}\n", &rest[b..end]).into_bytes());
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_split_into_certificates_and_keys_are_not_roots() {
        let d = tempfile::tempdir().unwrap();
        let block = |n: &str| format!("{BEGIN}\n{n}\n{END}\n");
        std::fs::write(
            d.path().join("ca.crt"),
            format!("junk\n{}{}", block("AAAA"), block("BBBB")),
        )
        .unwrap();
        std::fs::write(d.path().join("client.cert"), block("CCCC")).unwrap();
        std::fs::write(d.path().join("client.key"), "key").unwrap();
        let mut found = HostCerts::default();
        read_dir_into(d.path(), &mut found).unwrap();
        assert_eq!(found.roots.len(), 2);
        assert!(String::from_utf8_lossy(&found.roots[1].1).contains("BBBB"));
        assert_eq!(found.client_cert, Some(d.path().join("client.cert")));
        std::fs::write(d.path().join("bad.crt"), "no pem here").unwrap();
        let e = read_dir_into(d.path(), &mut HostCerts::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.crt") && e.contains("not a PEM"), "{e}");
        // A missing directory is no certificate, not an error.
        read_dir_into(&d.path().join("none"), &mut found).unwrap();
    }
}
