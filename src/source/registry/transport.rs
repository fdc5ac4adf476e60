//! The registry's own requests, on reqwest: what oci-client does not do.
//!
//! - 429 and 500/502/503/504 are retried, [`ATTEMPTS`] times in all, after
//!   the `Retry-After` the registry gives (seconds or a date, at most
//!   [`MAX_WAIT`]) or else an exponential backoff; so are connections that
//!   fail for another reason than being refused.
//! - A 401 authenticates again once per request (a token that expired
//!   during a long pull).
//! - A blob whose connection breaks resumes with `Range: bytes=N-` (a
//!   registry that answers 200 instead of 206 is read from the start and
//!   the first N bytes skipped), [`MAX_RESUMES`] times at most, 0.25 s
//!   more after each break.
//! - Redirects are followed (blobs are often served from object storage);
//!   reqwest drops `Authorization` when a redirect leaves the host, port or
//!   scheme.
//!
//! Contents are checked by the caller: the manifest's digest here, a
//! blob's digest and diff_id as it is indexed.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use oci_client::errors::{OciDistributionError, OciEnvelope};
use reqwest::header::{ACCEPT, AUTHORIZATION, RANGE, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};

use super::client::Registry;
use super::manifest::{ACCEPT as MANIFEST_TYPES, MAX_MANIFEST};
use crate::error::Error;

/// Tries per request (the first and the retries).
pub const ATTEMPTS: u32 = 5;
/// The longest `Retry-After` waited for; a registry that asks for more
/// fails the run with a line that says how long it asked for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Resumes of one blob.
pub const MAX_RESUMES: u32 = 5;

/// The wait before retry `attempt` (0-based) when the registry says none:
/// 0.5 s, 1 s, 2 s, 4 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500 << attempt.min(6))
}

fn retryable(s: StatusCode) -> bool {
    matches!(s.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// A request that failed before an answer and may work when sent again:
/// not a refused connection (nothing listens), not a TLS trust problem.
fn transient(e: &reqwest::Error) -> bool {
    if e.is_builder() || e.is_redirect() || tls_trouble(e).is_some() {
        return false;
    }
    !io_kinds(e).contains(&io::ErrorKind::ConnectionRefused)
}

/// An oci-client failure worth retrying (it keeps no headers: its 429s
/// get the backoff, not the `Retry-After`).
pub fn transient_oci(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => {
            StatusCode::from_u16(*code).is_ok_and(retryable)
        }
        OciDistributionError::RequestError(r) => transient(r),
        _ => false,
    }
}

/// The kinds of the I/O errors in an error's chain.
fn io_kinds(e: &(dyn std::error::Error + 'static)) -> Vec<io::ErrorKind> {
    let mut out = Vec::new();
    let mut cur = Some(e);
    while let Some(x) = cur {
        if let Some(io) = x.downcast_ref::<io::Error>() {
            out.push(io.kind());
        }
        cur = x.source();
    }
    out
}

/// A TLS failure that is about trust, not transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// The server's certificate does not verify (why, as rustls says it).
    Untrusted(String),
    /// The server wants a client certificate.
    ClientCertWanted,
    /// The server answered the TLS handshake with something else (plain
    /// HTTP, most likely).
    NotTls,
}

/// Whether `e` is a TLS trust failure, from the rustls error in its chain.
/// (An `io::Error`'s `source()` skips the error it wraps: look inside.)
pub fn tls_trouble(e: &(dyn std::error::Error + 'static)) -> Option<Tls> {
    let mut cur = Some(e);
    while let Some(mut x) = cur {
        // io::Errors may nest (hyper's wraps tokio-rustls's).
        while let Some(inner) = x.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            x = inner;
        }
        if let Some(r) = x.downcast_ref::<rustls::Error>() {
            use rustls::AlertDescription as A;
            return match r {
                rustls::Error::InvalidCertificate(c) => Some(Tls::Untrusted(format!("{c:?}"))),
                rustls::Error::AlertReceived(A::CertificateRequired | A::BadCertificate) => {
                    Some(Tls::ClientCertWanted)
                }
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
                    Some(Tls::NotTls)
                }
                _ => None,
            };
        }
        cur = x.source();
    }
    None
}

/// Does the loopback `host` answer TLS? (docker tries HTTPS first there,
/// then plain HTTP.) Asked with a bare handshake that trusts no one, so
/// that a certificate that does not verify still means yes. No request is
/// sent: a TLS 1.3 server that wants a client certificate says so only
/// after the handshake, and a request sent meanwhile can meet a reset
/// instead of that alert, which looked like "no TLS here".
pub async fn speaks_tls(host: &str, hostname: &str) -> bool {
    let has_port = !host.ends_with(']')
        && host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    let addr = if has_port {
        host.to_string()
    } else {
        format!("{host}:443")
    };
    let name = hostname.trim_start_matches('[').trim_end_matches(']');
    let Ok(name) = rustls::pki_types::ServerName::try_from(name.to_string()) else {
        return false;
    };
    let handshake = async {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
    };
    match tokio::time::timeout(Duration::from_secs(5), handshake).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => matches!(
            tls_trouble(&e),
            Some(Tls::Untrusted(_) | Tls::ClientCertWanted)
        ),
        Err(_) => false,
    }
}

/// The seconds a `Retry-After` asks for (a number or an HTTP date).
pub fn retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

impl Registry {
    /// Send `method` to `{repo_url}/{path}`: authorized, retried,
    /// authenticated again on a 401. Returns a 2xx answer.
    pub async fn send(
        &self,
        doing: &str,
        method: Method,
        path: &str,
        manifest: bool,
        from: u64,
    ) -> Result<Response, Error> {
        let url = format!("{}/{path}", self.repo_url);
        let mut reauthed = false;
        let mut attempt = 0;
        loop {
            let mut req = self.http.request(method.clone(), &url);
            if manifest {
                req = req.header(ACCEPT, MANIFEST_TYPES.join(", "));
            }
            if from > 0 {
                req = req.header(RANGE, format!("bytes={from}-"));
            }
            if let Some(h) = self.authorization() {
                req = req.header(AUTHORIZATION, h);
            }
            let last = attempt + 1 >= ATTEMPTS;
            let wait = match req.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !reauthed => {
                    reauthed = true;
                    self.login().await?;
                    continue;
                }
                Ok(resp) if retryable(resp.status()) && !last => {
                    let asked = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(retry_after);
                    match asked {
                        Some(w) if w > MAX_WAIT => {
                            return Err(Error::input(
                                &self.shown,
                                format!(
                                    "{doing}: the registry {} says too many requests and to retry in {} s; try again later",
                                    self.who().host,
                                    w.as_secs()
                                ),
                            ));
                        }
                        Some(w) => w,
                        None => backoff(attempt),
                    }
                }
                Ok(resp) => return Err(self.status_error(doing, manifest, resp).await),
                Err(e) if transient(&e) && !last => backoff(attempt),
                Err(e) => return Err(self.error(doing, &OciDistributionError::RequestError(e))),
            };
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// One line for an answer that is not a success.
    async fn status_error(&self, doing: &str, manifest: bool, resp: Response) -> Error {
        let code = resp.status().as_u16();
        let url = resp.url().to_string();
        let body = read_limited(resp, 64 << 10).await.unwrap_or_default();
        let envelope = serde_json::from_slice::<OciEnvelope>(&body)
            .ok()
            .filter(|e| !e.errors.is_empty());
        let e = match envelope {
            // A server error says what it is by its status; its words follow.
            Some(envelope) if code >= 500 => OciDistributionError::ServerError {
                code,
                url,
                message: envelope
                    .errors
                    .iter()
                    .map(|x| x.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            },
            Some(envelope) => OciDistributionError::RegistryError { envelope, url },
            _ if code == 401 => OciDistributionError::UnauthorizedError { url },
            // A HEAD has no body to say which.
            _ if code == 404 && manifest => OciDistributionError::ImageManifestNotFoundError(url),
            _ => OciDistributionError::ServerError {
                code,
                url,
                message: String::from_utf8_lossy(&body).into_owned(),
            },
        };
        self.error(doing, &e)
    }

    /// The manifest digest of the tag (or the digest asked for), by HEAD: a
    /// GET would count against Docker Hub's rate limit. A registry that
    /// sends no `Docker-Content-Digest` is asked with GET.
    pub async fn resolve(&self, reference: &str) -> Result<String, Error> {
        let doing = "resolving the tag";
        let path = format!("manifests/{reference}");
        let resp = self.send(doing, Method::HEAD, &path, true, 0).await?;
        let header = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let digest = match header {
            Some(d) => d,
            None => {
                let resp = self.send(doing, Method::GET, &path, true, 0).await?;
                let body = read_limited(resp, MAX_MANIFEST)
                    .await
                    .map_err(|e| Error::input(&self.shown, format!("{doing}: {e}")))?;
                crate::cache::sha256_id(&body)
            }
        };
        if reference.contains(':') && digest != reference {
            return Err(Error::input(
                &self.shown,
                format!("{doing}: the registry names manifest {digest} when asked for {reference}"),
            ));
        }
        Ok(digest)
    }

    /// The manifest with this digest: its bytes, checked against it.
    pub async fn manifest(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let doing = "reading the manifest";
        if !digest.starts_with("sha256:") {
            return Err(Error::input(
                &self.shown,
                format!(
                    "{doing}: {digest} is not a sha256 digest, the only kind layerscope checks"
                ),
            ));
        }
        let resp = self
            .send(doing, Method::GET, &format!("manifests/{digest}"), true, 0)
            .await?;
        let body = read_limited(resp, MAX_MANIFEST)
            .await
            .map_err(|e| Error::input(&self.shown, format!("{doing}: {e}")))?;
        let got = crate::cache::sha256_id(&body);
        if got != digest {
            return Err(Error::input(
                &self.shown,
                format!("the registry sent manifest {got} when asked for {digest}"),
            ));
        }
        Ok(body)
    }

    /// A blob of `size` bytes as a stream, resumed where its connection
    /// breaks. A failure ends the stream with an I/O error carrying the
    /// one line to show (see [`BlobError`]).
    pub fn blob_stream(
        &self,
        doing: String,
        digest: String,
        size: u64,
    ) -> BoxStream<'static, io::Result<Bytes>> {
        let state = Pull {
            reg: self.clone(),
            doing,
            path: format!("blobs/{digest}"),
            size,
            got: 0,
            started: false,
            body: None,
            skip: 0,
            resumes: 0,
            done: false,
        };
        futures_util::stream::unfold(state, |mut p| async move {
            let r = p.next().await;
            r.map(|x| (x, p))
        })
        .boxed()
    }

    /// A small blob (the config) in memory, at most `max` bytes, checked
    /// against its digest.
    pub async fn small_blob(&self, digest: &str, size: u64, max: u64) -> Result<Vec<u8>, Error> {
        let doing = "reading the config";
        if size > max {
            return Err(Error::input(
                &self.shown,
                format!("the config {digest} is larger than {max} bytes"),
            ));
        }
        let mut s = self.blob_stream(doing.into(), digest.into(), size);
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|e| Error::input(&self.shown, BlobError::line(&e)))?;
            out.extend_from_slice(&chunk);
        }
        if crate::cache::sha256_id(&out) != digest {
            return Err(Error::input(
                &self.shown,
                format!("the config blob does not match its digest {digest}"),
            ));
        }
        Ok(out)
    }
}

/// The line a blob stream failed with, inside the `io::Error` it ends with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BlobError(pub String);

impl BlobError {
    /// The line an I/O error carries, if a blob stream made it.
    pub fn of(e: &io::Error) -> Option<String> {
        e.get_ref()
            .and_then(|i| i.downcast_ref::<BlobError>())
            .map(|b| b.0.clone())
    }

    fn line(e: &io::Error) -> String {
        Self::of(e).unwrap_or_else(|| e.to_string())
    }
}

/// One blob download in progress.
struct Pull {
    reg: Registry,
    doing: String,
    path: String,
    size: u64,
    /// Bytes passed on.
    got: u64,
    started: bool,
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    /// Bytes still to drop from the start of a 200 answer to a resume.
    skip: u64,
    resumes: u32,
    done: bool,
}

impl Pull {
    fn fail(&mut self, msg: String) -> Option<io::Result<Bytes>> {
        self.done = true;
        Some(Err(io::Error::other(BlobError(msg))))
    }

    async fn next(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            if self.done {
                return None;
            }
            if self.body.is_none() {
                if self.started && self.got >= self.size {
                    return None;
                }
                let resp = match self
                    .reg
                    .send(&self.doing, Method::GET, &self.path, false, self.got)
                    .await
                {
                    Ok(r) => r,
                    Err(e) => return self.fail(error_msg(e)),
                };
                self.started = true;
                self.skip = if resp.status() == StatusCode::PARTIAL_CONTENT {
                    0
                } else {
                    self.got
                };
                self.body = Some(resp.bytes_stream().boxed());
            }
            let Some(body) = self.body.as_mut() else {
                continue;
            };
            let broke = match body.next().await {
                Some(Ok(mut b)) => {
                    if self.skip > 0 {
                        let n = self.skip.min(b.len() as u64);
                        self.skip -= n;
                        b = b.slice(n as usize..);
                    }
                    if b.is_empty() {
                        continue;
                    }
                    self.got += b.len() as u64;
                    if self.got > self.size {
                        let size = self.size;
                        return self.fail(format!(
                            "{}: the registry sent more than the {size} bytes the manifest declares",
                            self.doing
                        ));
                    }
                    return Some(Ok(b));
                }
                Some(Err(e)) => e.to_string(),
                None if self.got >= self.size => {
                    self.done = true;
                    return None;
                }
                None => "the answer ended early".to_string(),
            };
            self.body = None;
            self.resumes += 1;
            if self.resumes > MAX_RESUMES {
                let (got, size) = (self.got, self.size);
                return self.fail(format!(
                    "{}: the connection broke {MAX_RESUMES} times, the last at {got} of {size} bytes ({broke})",
                    self.doing
                ));
            }
            // A broken connection is usually the network's: resume soon.
            tokio::time::sleep(Duration::from_millis(250 * u64::from(self.resumes))).await;
        }
    }
}

/// An error's message without the image name (the caller adds it).
fn error_msg(e: Error) -> String {
    match e {
        Error::Input { msg, .. } => msg,
        other => other.to_string(),
    }
}

/// An answer's body, at most `max` bytes.
async fn read_limited(resp: Response, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if out.len() + chunk.len() > max {
            return Err(format!("the answer is larger than {max} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(retry_after(" 3 "), Some(Duration::from_secs(3)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let d = retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        let past = httpdate::fmt_http_date(std::time::UNIX_EPOCH);
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
        assert_eq!(retry_after("soon"), None);
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_secs(4));
    }
}
