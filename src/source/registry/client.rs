//! The distribution protocol, through oci-client: the bearer/basic
//! challenge from `WWW-Authenticate`, manifests by HEAD then GET, blobs as
//! streams. Failures become one line naming the image, never a secret.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::credentials::{Credential, Found};
use super::manifest::ACCEPT;
use super::reference::RegistryRef;
use crate::error::Error;

/// A connection to one repository of one registry.
pub struct Registry {
    pub client: Client,
    /// The reference as oci-client wants it (the API host as registry).
    pub oref: Reference,
    pub auth: RegistryAuth,
    /// What the user typed, for messages.
    pub shown: String,
    /// Where the credentials came from, for messages.
    pub cred_file: Option<String>,
    pub api_host: String,
}

/// The ring provider: rustls is already built with it for bollard, so the
/// registry client adds no second crypto library.
fn install_crypto() {
    // Fails only when a provider is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Registry {
    pub fn new(r: &RegistryRef, cred: Option<Found>) -> Result<Registry, Error> {
        install_crypto();
        let shown = format!("docker://{r}");
        let api_host = r.api_host().to_string();
        // Plain HTTP only on this machine (docker trusts loopback the same
        // way); everything else is HTTPS with the system's roots.
        let protocol = if r.is_loopback() {
            ClientProtocol::HttpsExcept(vec![api_host.clone()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            platform_resolver: None,
            connect_timeout: Some(std::time::Duration::from_secs(15)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            user_agent: concat!("layerscope/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let client = Client::try_from(config)
            .map_err(|e| Error::input(&shown, format!("cannot set up the HTTP client: {e}")))?;
        let oref = match &r.digest {
            Some(d) => Reference::with_digest(api_host.clone(), r.repository.clone(), d.clone()),
            None => Reference::with_tag(
                api_host.clone(),
                r.repository.clone(),
                r.reference().to_string(),
            ),
        };
        let cred_file = cred.as_ref().map(|f| f.file.display().to_string());
        let auth = match cred.map(|f| f.credential) {
            None => RegistryAuth::Anonymous,
            Some(Credential::Basic { user, password }) => RegistryAuth::Basic(user, password),
            Some(Credential::IdentityToken(_)) => {
                return Err(Error::input(
                    &shown,
                    format!(
                        "the credentials in {} are an OAuth2 identity token, which this build cannot exchange yet; log in with a user name and password or token",
                        cred_file.unwrap_or_default()
                    ),
                ));
            }
        };
        Ok(Registry {
            client,
            oref,
            auth,
            shown,
            cred_file,
            api_host,
        })
    }

    /// Authenticate for pulls: follows the registry's challenge (a bearer
    /// token, anonymous or with the credentials, or basic auth).
    pub async fn login(&self) -> Result<(), Error> {
        self.client
            .auth(&self.oref, &self.auth, RegistryOperation::Pull)
            .await
            .map(|_| ())
            .map_err(|e| self.error("authenticating", &e))
    }

    /// The manifest digest of the tag, by HEAD (a GET would count against
    /// Docker Hub's rate limit).
    pub async fn resolve(&self) -> Result<String, Error> {
        self.client
            .fetch_manifest_digest(&self.oref, &self.auth)
            .await
            .map_err(|e| self.error("resolving the tag", &e))
    }

    /// The manifest with this digest: its bytes (checked against the digest).
    pub async fn manifest(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let by_digest = self.oref.clone_with_digest(digest.to_string());
        let (bytes, got) = self
            .client
            .pull_manifest_raw(&by_digest, &self.auth, &ACCEPT)
            .await
            .map_err(|e| self.error("reading the manifest", &e))?;
        if got != digest {
            return Err(Error::input(
                &self.shown,
                format!("the registry sent manifest {got} when asked for {digest}"),
            ));
        }
        Ok(bytes.to_vec())
    }

    /// A small blob (the config) in memory, at most `max` bytes, checked
    /// against its digest.
    pub async fn small_blob(&self, digest: &str, max: u64) -> Result<Vec<u8>, Error> {
        use futures_util::StreamExt;
        let mut s = self
            .client
            .pull_blob_stream(&self.oref, digest)
            .await
            .map_err(|e| self.error("reading the config", &e))?;
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            let chunk =
                chunk.map_err(|e| Error::input(&self.shown, format!("reading the config: {e}")))?;
            out.extend_from_slice(&chunk);
            if out.len() as u64 > max {
                return Err(Error::input(
                    &self.shown,
                    format!("the config {digest} is larger than {max} bytes"),
                ));
            }
        }
        if crate::cache::sha256_id(&out) != digest {
            return Err(Error::input(
                &self.shown,
                format!("the config blob does not match its digest {digest}"),
            ));
        }
        Ok(out)
    }

    /// One line for a failed request.
    pub fn error(&self, doing: &str, e: &OciDistributionError) -> Error {
        Error::input(
            &self.shown,
            explain(doing, e, &self.api_host, self.cred_file.as_deref()),
        )
    }
}

/// What went wrong, for people. Registry bodies are quoted at most in part;
/// no header or credential is.
pub fn explain(
    doing: &str,
    e: &OciDistributionError,
    host: &str,
    cred_file: Option<&str>,
) -> String {
    use OciDistributionError as E;
    let denied = || match cred_file {
        Some(f) => format!(
            "{doing}: the registry {host} refused the credentials from {f} (check `docker login {host}`)"
        ),
        None => format!(
            "{doing}: the registry {host} wants credentials and none are stored for it (run `docker login {host}`)"
        ),
    };
    match e {
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => denied(),
        E::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|x| &x.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                return denied();
            }
            if codes.iter().any(|c| matches!(c, OciErrorCode::NameUnknown)) {
                return format!("{doing}: the registry {host} has no such repository");
            }
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::ManifestUnknown))
            {
                return format!(
                    "{doing}: the registry {host} has no such image (no such repository, or no such tag or digest in it)"
                );
            }
            if codes.iter().any(|c| matches!(c, OciErrorCode::BlobUnknown)) {
                return format!("{doing}: the registry {host} lacks a blob the manifest names");
            }
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
            {
                return format!(
                    "{doing}: the registry {host} says too many requests (rate limited); try again later"
                );
            }
            let msgs: Vec<String> = envelope
                .errors
                .iter()
                .map(|x| format!("{:?}: {}", x.code, cut(&x.message)))
                .collect();
            format!("{doing}: the registry {host} answered {}", msgs.join("; "))
        }
        E::ImageManifestNotFoundError(_) => {
            format!(
                "{doing}: the registry {host} has no such image (no such repository, or no such tag or digest in it)"
            )
        }
        E::ServerError { code, message, .. } => match code {
            401 | 403 => denied(),
            404 => {
                format!("{doing}: the registry {host} has no such repository, tag or digest (404)")
            }
            429 => format!(
                "{doing}: the registry {host} says too many requests (429); try again later"
            ),
            c => format!(
                "{doing}: the registry {host} answered HTTP {c} ({})",
                cut(message)
            ),
        },
        E::RequestError(r) => {
            let mut msg = r.to_string();
            let mut src = std::error::Error::source(r);
            while let Some(s) = src {
                msg = s.to_string();
                src = s.source();
            }
            let what = if r.is_connect() {
                "cannot connect to"
            } else if r.is_timeout() {
                "timed out talking to"
            } else {
                "failed talking to"
            };
            format!("{doing}: {what} the registry {host} ({})", cut(&msg))
        }
        E::DigestError(d) => format!("{doing}: {d}"),
        other => format!("{doing}: {}", cut(&other.to_string())),
    }
}

/// At most a line of a registry's own words.
fn cut(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one = one.trim();
    match one.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &one[..i]),
        None => one.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(code: &str) -> OciDistributionError {
        let body = format!(r#"{{"errors":[{{"code":"{code}","message":"m"}}]}}"#);
        OciDistributionError::RegistryError {
            envelope: serde_json::from_str(&body).expect("envelope"),
            url: "http://h/v2/x".into(),
        }
    }

    #[test]
    fn refusals_name_the_credentials_file_or_say_how_to_log_in() {
        let e = OciDistributionError::UnauthorizedError {
            url: "http://h/v2/".into(),
        };
        let m = explain(
            "resolving the tag",
            &e,
            "h:5000",
            Some("/home/u/.docker/config.json"),
        );
        assert_eq!(
            m,
            "resolving the tag: the registry h:5000 refused the credentials from /home/u/.docker/config.json (check `docker login h:5000`)"
        );
        let m = explain("x", &envelope("DENIED"), "h:5000", None);
        assert!(m.contains("run `docker login h:5000`"), "{m}");
    }

    #[test]
    fn registry_codes_become_sentences() {
        let m = explain("x", &envelope("NAME_UNKNOWN"), "h", None);
        assert!(m.ends_with("has no such repository"), "{m}");
        let m = explain("x", &envelope("MANIFEST_UNKNOWN"), "h", None);
        assert!(m.contains("has no such image"), "{m}");
        let m = explain("x", &envelope("TOOMANYREQUESTS"), "h", None);
        assert!(m.contains("rate limited"), "{m}");
        let long = OciDistributionError::ServerError {
            code: 502,
            url: "u".into(),
            message: format!("bad\ngateway {}", "x".repeat(500)),
        };
        let m = explain("x", &long, "h", None);
        assert!(
            m.contains("HTTP 502 (bad gateway") && m.ends_with("...)"),
            "{m}"
        );
        assert!(!m.contains('\n'));
    }
}
