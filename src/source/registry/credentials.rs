//! Credentials as `docker login` and `podman login` store them.
//!
//! Files, first found wins: `$DOCKER_CONFIG/config.json` (else
//! `~/.docker/config.json`), then podman's `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json` and
//! `~/.config/containers/auth.json`. The `docker_credential` crate reads
//! each: `auths` (keys with a scheme and a path are matched by host),
//! `credsStore` and `credHelpers` (running `docker-credential-NAME get`),
//! and an `identitytoken` or a helper's `<token>` user as an OAuth2 refresh
//! token. No secret is ever put in a message: errors name the file and the
//! registry only.

use std::fmt;
use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};

use super::reference::{DOCKER_HUB, DOCKER_HUB_AUTH_KEY, RegistryRef};
use crate::error::Error;

/// A secret for one registry. Its `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        user: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`, or user `<token>`).
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { user, .. } => write!(f, "Basic({user:?}, <redacted>)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

/// A credential and the file it came from.
#[derive(Debug, Clone)]
pub struct Found {
    pub credential: Credential,
    pub file: PathBuf,
}

/// Which kind of file: the two spell Docker Hub differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Docker,
    Podman,
}

/// The files searched, in order, from the environment.
fn files() -> Vec<(PathBuf, Kind)> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let mut out = Vec::new();
    match (env("DOCKER_CONFIG"), &home) {
        (Some(d), _) => out.push((d.join("config.json"), Kind::Docker)),
        (None, Some(h)) => out.push((h.join(".docker/config.json"), Kind::Docker)),
        (None, None) => {}
    }
    if let Some(f) = env("REGISTRY_AUTH_FILE") {
        out.push((f, Kind::Podman));
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        out.push((d.join("containers/auth.json"), Kind::Podman));
    }
    if let Some(h) = &home {
        out.push((h.join(".config/containers/auth.json"), Kind::Podman));
    }
    out
}

/// The credential for `r`, if any file has one.
pub fn lookup(r: &RegistryRef) -> Result<Option<Found>, Error> {
    for (file, kind) in files() {
        if let Some(c) = lookup_in(&file, kind, r)? {
            return Ok(Some(Found {
                credential: c,
                file,
            }));
        }
    }
    Ok(None)
}

/// Keys to try in one file, most specific first. Docker stores Docker Hub
/// under `https://index.docker.io/v1/` (and its helpers expect that
/// spelling); podman under `docker.io`, and may key by `host/namespace`.
fn keys(kind: Kind, r: &RegistryRef) -> Vec<String> {
    match kind {
        Kind::Docker if r.registry == DOCKER_HUB => vec![DOCKER_HUB_AUTH_KEY.to_string()],
        Kind::Docker => vec![r.registry.clone()],
        Kind::Podman => {
            let parts: Vec<&str> = r.repository.split('/').collect();
            let mut keys: Vec<String> = (1..=parts.len())
                .rev()
                .map(|n| format!("{}/{}", r.registry, parts[..n].join("/")))
                .collect();
            keys.push(r.registry.clone());
            keys
        }
    }
}

/// The credential for `r` in the contents of a credentials file (`podman`:
/// an auth.json, else a docker config.json); `file` names it in errors.
/// A `credsStore` or `credHelpers` entry runs its helper.
pub fn lookup_in_bytes(
    bytes: &[u8],
    podman: bool,
    file: &Path,
    r: &RegistryRef,
) -> Result<Option<Credential>, Error> {
    let kind = if podman { Kind::Podman } else { Kind::Docker };
    for key in keys(kind, r) {
        match docker_credential::get_credential_from_reader(bytes, &key) {
            Ok(c) => return Ok(Some(convert(c))),
            Err(CredentialRetrievalError::NoCredentialConfigured) => {}
            Err(e) => return explain(file, &r.registry, e),
        }
    }
    Ok(None)
}

fn lookup_in(file: &Path, kind: Kind, r: &RegistryRef) -> Result<Option<Credential>, Error> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::input(
                &file.display().to_string(),
                format!("cannot read the credentials file: {e}"),
            ));
        }
    };
    lookup_in_bytes(&bytes, kind == Kind::Podman, file, r)
}

fn convert(c: DockerCredential) -> Credential {
    match c {
        DockerCredential::IdentityToken(t) => Credential::IdentityToken(t),
        DockerCredential::UsernamePassword(user, password) => Credential::Basic { user, password },
    }
}

/// One line for a credentials failure. Helper output is never shown: a
/// helper may print the secret it failed to hand over.
fn explain(
    file: &Path,
    registry: &str,
    e: CredentialRetrievalError,
) -> Result<Option<Credential>, Error> {
    use CredentialRetrievalError as E;
    let what = file.display().to_string();
    let msg = match e {
        // docker treats a store without an entry as "not logged in".
        E::HelperFailure { stdout, stderr, .. }
            if format!("{stdout}{stderr}")
                .to_ascii_lowercase()
                .contains("credentials not found") =>
        {
            return Ok(None);
        }
        E::HelperFailure { helper, .. } => {
            format!("the credential helper {helper} failed for {registry}")
        }
        E::HelperCommunicationError => format!(
            "cannot run the credential helper (docker-credential-*) it names for {registry}; is it installed?"
        ),
        E::MalformedHelperResponse => {
            format!(
                "the credential helper it names answered for {registry} with something that is not credentials"
            )
        }
        E::CredentialDecodingError => {
            format!("the \"auth\" entry for {registry} is not base64 of USER:PASSWORD")
        }
        E::CredentialMismatchError => format!(
            "the \"auth\" entry for {registry} disagrees with its \"username\" and \"password\""
        ),
        E::ConfigReadError | E::ConfigNotFound => {
            "not a credentials file (invalid JSON, or \"auths\" of the wrong shape)".to_string()
        }
        E::NoCredentialConfigured => return Ok(None),
    };
    Err(Error::input(&what, msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::registry::reference::parse_reference;

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    fn b64(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn docker_and_podman_spell_docker_hub_their_way() {
        let d = tempfile::tempdir().unwrap();
        let hub = parse_reference("alpine").unwrap();
        let docker = write(
            d.path(),
            "config.json",
            &format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},"http://localhost:5000/v2/":{{"auth":"{}"}}}}}}"#,
                b64("hubuser:hubsecret"),
                b64("u:p")
            ),
        );
        assert_eq!(
            lookup_in(&docker, Kind::Docker, &hub).unwrap(),
            Some(Credential::Basic {
                user: "hubuser".into(),
                password: "hubsecret".into()
            })
        );
        // A key with a scheme and a path still names its host.
        let local = parse_reference("localhost:5000/app").unwrap();
        assert!(lookup_in(&docker, Kind::Docker, &local).unwrap().is_some());
        let other = parse_reference("localhost:5001/app").unwrap();
        assert_eq!(lookup_in(&docker, Kind::Docker, &other).unwrap(), None);

        let podman = write(
            d.path(),
            "auth.json",
            &format!(
                r#"{{"auths":{{"docker.io":{{"auth":"{}"}},"quay.io/team":{{"auth":"{}"}},"quay.io":{{"auth":"{}"}}}}}}"#,
                b64("a:1"),
                b64("team:2"),
                b64("all:3")
            ),
        );
        let got = |s: &str| lookup_in(&podman, Kind::Podman, &parse_reference(s).unwrap()).unwrap();
        assert!(matches!(got("alpine"), Some(Credential::Basic { user, .. }) if user == "a"));
        assert!(
            matches!(got("quay.io/team/app"), Some(Credential::Basic { user, .. }) if user == "team")
        );
        assert!(
            matches!(got("quay.io/x/app"), Some(Credential::Basic { user, .. }) if user == "all")
        );
    }

    #[test]
    fn identity_tokens_are_refresh_tokens() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            d.path(),
            "config.json",
            r#"{"auths":{"ghcr.io":{"identitytoken":"refresh-me"}}}"#,
        );
        let r = parse_reference("ghcr.io/o/a").unwrap();
        let c = lookup_in(&f, Kind::Docker, &r).unwrap().unwrap();
        assert_eq!(c, Credential::IdentityToken("refresh-me".into()));
        assert!(!format!("{c:?}").contains("refresh-me"));
    }

    #[test]
    fn failures_name_the_file_and_never_the_secret() {
        let d = tempfile::tempdir().unwrap();
        let r = parse_reference("localhost:5000/app").unwrap();
        let bad_json = write(d.path(), "a.json", "{not json");
        let e = lookup_in(&bad_json, Kind::Docker, &r)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.json") && e.contains("not a credentials file"),
            "{e}"
        );
        let mismatch = write(
            d.path(),
            "b.json",
            &format!(
                r#"{{"auths":{{"localhost:5000":{{"auth":"{}","username":"u","password":"other-secret"}}}}}}"#,
                b64("u:sekrit-pw")
            ),
        );
        let e = lookup_in(&mismatch, Kind::Docker, &r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("disagrees"), "{e}");
        assert!(
            !e.contains("sekrit-pw") && !e.contains("other-secret"),
            "{e}"
        );
        let helper = write(
            d.path(),
            "c.json",
            r#"{"credsStore":"layerscope-test-no-such-helper"}"#,
        );
        let e = lookup_in(&helper, Kind::Docker, &r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot run the credential helper"), "{e}");
        let c = Credential::Basic {
            user: "u".into(),
            password: "sekrit-pw".into(),
        };
        assert!(!format!("{c:?}").contains("sekrit-pw"));
        // A missing file is no credential, not an error.
        assert_eq!(
            lookup_in(&d.path().join("none.json"), Kind::Docker, &r).unwrap(),
            None
        );
    }

    #[test]
    fn a_store_without_the_entry_is_not_logged_in() {
        // A helper that answers as docker-credential-pass does when it
        // has nothing for the server.
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("docker-credential-layerscopetest");
        std::fs::write(
            &bin,
            "#!/bin/sh\ncat >/dev/null\necho 'credentials not found in native keychain'\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = write(
            d.path(),
            "config.json",
            r#"{"credsStore":"layerscopetest"}"#,
        );
        let r = parse_reference("localhost:5000/app").unwrap();
        // The helper is found through PATH; run it by its full path instead
        // of changing this process's PATH (tests run in parallel).
        let out = std::process::Command::new(&bin).output().unwrap();
        assert!(!out.status.success());
        let e = explain(
            &f,
            &r.registry,
            CredentialRetrievalError::HelperFailure {
                helper: "docker-credential-layerscopetest".into(),
                stdout: String::from_utf8_lossy(&out.stdout).into(),
                stderr: String::new(),
            },
        );
        assert_eq!(e.unwrap(), None);
        let e = explain(
            &f,
            &r.registry,
            CredentialRetrievalError::HelperFailure {
                helper: "docker-credential-x".into(),
                stdout: "the-secret".into(),
                stderr: "the-secret".into(),
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("docker-credential-x failed") && !e.contains("the-secret"),
            "{e}"
        );
    }
}
