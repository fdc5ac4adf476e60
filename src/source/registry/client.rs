//! The distribution protocol. oci-client authenticates (the bearer or
//! basic challenge from `WWW-Authenticate`, the token request); every other
//! request (manifests by HEAD then GET, blobs as streams) goes through
//! [`super::transport`] on a reqwest client of our own, which retries 429
//! (honouring Retry-After) and 5xx, authenticates again on a 401, and
//! resumes a broken blob with a Range request. Failures become one line
//! naming the image, never a secret.

use std::sync::{Arc, Mutex};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use reqwest::header::HeaderValue;

use super::certs;
use super::credentials::{Credential, Found};
use super::reference::RegistryRef;
use super::transport::{self, Tls};
use crate::error::Error;

/// A connection to one repository of one registry (cheap to clone: the
/// clients and the current authorization are shared).
#[derive(Clone)]
pub struct Registry {
    /// For authenticating only.
    oci: Client,
    pub(super) http: reqwest::Client,
    /// The reference as oci-client wants it (the API host as registry).
    oref: Reference,
    auth: RegistryAuth,
    /// An OAuth2 refresh token (`identitytoken`): exchanged for an access
    /// token at the realm the registry's challenge names.
    refresh: Option<Arc<str>>,
    /// The `Authorization` header value for the registry's own requests.
    authorization: Arc<Mutex<Option<HeaderValue>>>,
    /// `https://host[:port]/v2/REPO`.
    pub(super) repo_url: String,
    /// What the user typed, for messages.
    pub shown: String,
    /// Where the credentials came from, for messages.
    cred_file: Option<String>,
    api_host: String,
    /// A client certificate certs.d holds for this registry (not presented).
    client_cert: Option<String>,
}

/// The ring provider: rustls is already built with it for bollard, so the
/// registry client adds no second crypto library.
fn install_crypto() {
    // Fails only when a provider is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

const USER_AGENT: &str = concat!("layerscope/", env!("CARGO_PKG_VERSION"));

impl Registry {
    /// Set up the clients: the system's roots plus the registry's certs.d
    /// CAs. HTTPS, except that a loopback registry that does not speak TLS
    /// is spoken to in plain HTTP (as docker trusts loopback); `insecure`
    /// treats any registry so, and accepts a certificate that does not
    /// verify (Docker's insecure-registries).
    pub async fn connect(
        r: &RegistryRef,
        cred: Option<Found>,
        insecure: bool,
    ) -> Result<Registry, Error> {
        install_crypto();
        let shown = format!("docker://{r}");
        let api_host = r.api_host().to_string();
        let found = certs::for_registry(&r.registry)?;
        let mut roots = Vec::with_capacity(found.roots.len());
        for (file, pem) in &found.roots {
            roots.push(reqwest::Certificate::from_pem(pem).map_err(|e| {
                Error::input(
                    &file.display().to_string(),
                    format!("not a usable CA certificate: {e}"),
                )
            })?);
        }
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(std::time::Duration::from_secs(15))
            .read_timeout(std::time::Duration::from_secs(60))
            .tls_certs_merge(roots)
            .danger_accept_invalid_certs(insecure)
            .build()
            .map_err(|e| Error::input(&shown, format!("cannot set up the HTTP client: {e}")))?;
        let https =
            !(r.is_loopback() || insecure) || transport::speaks_tls(&api_host, r.hostname()).await;
        let protocol = if https {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(vec![api_host.clone()])
        };
        let config = ClientConfig {
            protocol,
            platform_resolver: None,
            extra_root_certificates: found
                .roots
                .iter()
                .map(|(_, pem)| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            accept_invalid_certificates: insecure,
            connect_timeout: Some(std::time::Duration::from_secs(15)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            user_agent: USER_AGENT,
            ..Default::default()
        };
        let oci = Client::try_from(config)
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
        let (auth, refresh) = match cred.map(|f| f.credential) {
            None => (RegistryAuth::Anonymous, None),
            Some(Credential::Basic { user, password }) => {
                (RegistryAuth::Basic(user, password), None)
            }
            Some(Credential::IdentityToken(t)) => (RegistryAuth::Anonymous, Some(Arc::from(t))),
        };
        let scheme = if https { "https" } else { "http" };
        Ok(Registry {
            oci,
            http,
            repo_url: format!("{scheme}://{api_host}/v2/{}", r.repository),
            oref,
            auth,
            refresh,
            authorization: Arc::default(),
            shown,
            cred_file,
            api_host,
            client_cert: found.client_cert.map(|p| p.display().to_string()),
        })
    }

    /// Authenticate for pulls: follows the registry's challenge (a bearer
    /// token, anonymous or with the credentials, or basic auth). Called
    /// again when the registry answers 401 (an expired token).
    pub async fn login(&self) -> Result<(), Error> {
        if let Some(refresh) = &self.refresh {
            let token = self.exchange(refresh).await?;
            let mut h = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Error::input(
                    &self.shown,
                    "authenticating: the registry's token is not a valid header value",
                )
            })?;
            h.set_sensitive(true);
            *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = Some(h);
            return Ok(());
        }
        let mut attempt = 0;
        let token = loop {
            match self
                .oci
                .auth(&self.oref, &self.auth, RegistryOperation::Pull)
                .await
            {
                Ok(t) => break t,
                Err(e) if attempt + 1 < transport::ATTEMPTS && transport::transient_oci(&e) => {
                    tokio::time::sleep(transport::backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(self.error("authenticating", &e)),
            }
        };
        let value = match (token, &self.auth) {
            (Some(t), _) => Some(format!("Bearer {t}")),
            (None, RegistryAuth::Basic(user, password)) => {
                use base64::Engine;
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
                ))
            }
            _ => None,
        };
        let value = match value {
            Some(v) => {
                let mut h = HeaderValue::from_str(&v).map_err(|_| {
                    Error::input(
                        &self.shown,
                        "authenticating: the registry's token is not a valid header value",
                    )
                })?;
                h.set_sensitive(true);
                Some(h)
            }
            None => None,
        };
        *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = value;
        Ok(())
    }

    /// Trade the refresh token for an access token, as docker does with an
    /// `identitytoken`: the registry's `/v2/` challenge names the realm and
    /// service, and the realm is sent the OAuth2 form
    /// `grant_type=refresh_token` for pulls of this repository.
    async fn exchange(&self, refresh: &str) -> Result<String, Error> {
        let fail = |what: String| {
            Error::input(
                &self.shown,
                format!(
                    "authenticating with the identity token in {}: {what}",
                    self.cred_file.as_deref().unwrap_or("the credentials")
                ),
            )
        };
        let base = self.repo_url.split("/v2/").next().unwrap_or_default();
        let probe = self
            .http
            .get(format!("{base}/v2/"))
            .send()
            .await
            .map_err(|e| {
                fail(format!(
                    "cannot reach the registry ({})",
                    transport_line(&e)
                ))
            })?;
        let challenge = probe
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(bearer_realm)
            .ok_or_else(|| {
                fail(format!(
                    "the registry answered /v2/ with HTTP {} and no Bearer challenge, so it takes no OAuth2 tokens",
                    probe.status().as_u16()
                ))
            })?;
        let (realm, service) = challenge;
        let scope = format!("repository:{}:pull", self.oref.repository());
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("client_id", "layerscope"),
            ("refresh_token", refresh),
            ("scope", scope.as_str()),
        ];
        if let Some(s) = service.as_deref() {
            form.push(("service", s));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let answer = self
            .http
            .post(&realm)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| fail(format!("cannot reach {realm} ({})", transport_line(&e))))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(fail(format!(
                "{realm} refused it (HTTP {}); log in again",
                status.as_u16()
            )));
        }
        let json: serde_json::Value = answer
            .json()
            .await
            .map_err(|_| fail(format!("{realm} did not answer with a token")))?;
        json.get("access_token")
            .or_else(|| json.get("token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| fail(format!("{realm} answered without an access_token")))
    }

    /// The current `Authorization` value, if any.
    pub(super) fn authorization(&self) -> Option<HeaderValue> {
        self.authorization
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One line for a failed request.
    pub fn error(&self, doing: &str, e: &OciDistributionError) -> Error {
        Error::input(&self.shown, explain(doing, e, &self.who()))
    }

    pub(super) fn who(&self) -> Who<'_> {
        Who {
            host: &self.api_host,
            cred_file: self.cred_file.as_deref(),
            client_cert: self.client_cert.as_deref(),
        }
    }
}

/// Who a message is about.
pub struct Who<'a> {
    /// The API host.
    pub host: &'a str,
    /// Where the credentials came from.
    pub cred_file: Option<&'a str>,
    /// A client certificate certs.d holds (and layerscope does not present).
    pub client_cert: Option<&'a str>,
}

/// A manifest the registry does not have, for either way it says so.
const NO_SUCH_IMAGE: &str =
    "has no such image (no such repository, or no such tag or digest in it)";

/// What went wrong, for people. Registry bodies are quoted at most in part;
/// no header or credential is.
pub fn explain(doing: &str, e: &OciDistributionError, who: &Who<'_>) -> String {
    use OciDistributionError as E;
    let host = who.host;
    let denied = || match who.cred_file {
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
            let has = |code: &OciErrorCode| envelope.errors.iter().any(|x| x.code == *code);
            if has(&OciErrorCode::Unauthorized) || has(&OciErrorCode::Denied) {
                return denied();
            }
            // The codes that say what to do, the most telling first.
            let known = [
                (OciErrorCode::NameUnknown, "has no such repository"),
                (OciErrorCode::ManifestUnknown, NO_SUCH_IMAGE),
                (OciErrorCode::BlobUnknown, "lacks a blob the manifest names"),
                (
                    OciErrorCode::Toomanyrequests,
                    "says too many requests (rate limited); try again later",
                ),
            ];
            if let Some((_, what)) = known.iter().find(|(code, _)| has(code)) {
                return format!("{doing}: the registry {host} {what}");
            }
            let msgs: Vec<String> = envelope
                .errors
                .iter()
                .map(|x| format!("{:?}: {}", x.code, cut(&x.message)))
                .collect();
            format!("{doing}: the registry {host} answered {}", msgs.join("; "))
        }
        E::ImageManifestNotFoundError(_) => format!("{doing}: the registry {host} {NO_SUCH_IMAGE}"),
        E::ServerError { code, message, .. } => match code {
            401 | 403 => denied(),
            404 => {
                format!("{doing}: the registry {host} has no such repository, tag or digest (404)")
            }
            429 => format!(
                "{doing}: the registry {host} says too many requests (429); try again later"
            ),
            c if cut(message).is_empty() => {
                format!("{doing}: the registry {host} answered HTTP {c}")
            }
            c => format!(
                "{doing}: the registry {host} answered HTTP {c} ({})",
                cut(message)
            ),
        },
        E::RequestError(r) => {
            match transport::tls_trouble(r) {
                Some(Tls::Untrusted(why)) => {
                    return format!(
                        "{doing}: the registry {host} has a TLS certificate this machine does not trust ({why}); put its CA in /etc/docker/certs.d/{host}/ca.crt or /etc/containers/certs.d/{host}/ca.crt (or pass --insecure on a network you trust)"
                    );
                }
                Some(Tls::NotTls) => {
                    return format!(
                        "{doing}: the registry {host} does not speak TLS (plain HTTP, most likely); pass --insecure to talk to it without TLS, on a network you trust"
                    );
                }
                Some(Tls::ClientCertWanted) => {
                    return format!(
                        "{doing}: the registry {host} asks for a TLS client certificate, which layerscope cannot present{}",
                        who.client_cert
                            .map(|c| format!(" ({c} is not used)"))
                            .unwrap_or_default()
                    );
                }
                None => {}
            }
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

/// A Bearer challenge's realm and service, if `header` holds one.
fn bearer_realm(header: &str) -> Option<(String, Option<String>)> {
    http_auth::ChallengeParser::new(header)
        .flatten()
        .filter(|c| c.scheme.eq_ignore_ascii_case("Bearer"))
        .find_map(|c| {
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            Some((param("realm")?, param("service")))
        })
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One line for a failed request, without the URL's query.
fn transport_line(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    cut(&msg)
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

    fn who(host: &str) -> Who<'_> {
        Who {
            host,
            cred_file: None,
            client_cert: None,
        }
    }

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
            &Who {
                host: "h:5000",
                cred_file: Some("/home/u/.docker/config.json"),
                client_cert: None,
            },
        );
        assert_eq!(
            m,
            "resolving the tag: the registry h:5000 refused the credentials from /home/u/.docker/config.json (check `docker login h:5000`)"
        );
        let m = explain("x", &envelope("DENIED"), &who("h:5000"));
        assert!(m.contains("run `docker login h:5000`"), "{m}");
    }

    #[test]
    fn registry_codes_become_sentences() {
        let m = explain("x", &envelope("NAME_UNKNOWN"), &who("h"));
        assert!(m.ends_with("has no such repository"), "{m}");
        let m = explain("x", &envelope("MANIFEST_UNKNOWN"), &who("h"));
        assert!(m.contains("has no such image"), "{m}");
        let m = explain("x", &envelope("TOOMANYREQUESTS"), &who("h"));
        assert!(m.contains("rate limited"), "{m}");
        let long = OciDistributionError::ServerError {
            code: 502,
            url: "u".into(),
            message: format!("bad\ngateway {}", "x".repeat(500)),
        };
        let m = explain("x", &long, &who("h"));
        assert!(
            m.contains("HTTP 502 (bad gateway") && m.ends_with("...)"),
            "{m}"
        );
        assert!(!m.contains('\n'));
    }
}
