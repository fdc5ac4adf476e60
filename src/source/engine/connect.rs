//! Reaching the engine: DOCKER_HOST (a unix socket or tcp address, podman's
//! compatible socket too) or the default socket, TLS as the docker CLI sets
//! it up (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), the API version negotiated
//! down to the engine's, and every failure worded as one line.

use std::io;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as ApiError;

use crate::error::Error;

/// The oldest Engine API layerscope talks to (Docker 1.12, 2016): inspect,
/// export and build all exist there with the fields used here.
pub const MIN_API: (usize, usize) = (1, 24);

/// How long a single request may wait for the engine to start answering.
/// A Docker 20.10 engine prepares the whole export before its first byte,
/// which takes a minute on a 1.5 GB image: be generous.
const LONG_TIMEOUT: Duration = Duration::from_secs(3600);

/// The host a connection goes to, as the user would write it.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// A runtime for one command. Two workers are plenty: the engine is the
/// bottleneck and indexing runs on blocking threads.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("engine")
        .enable_all()
        .build()
        .map_err(|e| Error::Engine(format!("cannot start the engine client: {e}")))
}

/// Connect (DOCKER_HOST or the default socket) and negotiate the API version.
/// A tcp:// host with DOCKER_TLS_VERIFY set (non-empty, not "0"), or any
/// https:// host, is reached over TLS with the docker CLI's certificates.
pub async fn connect() -> Result<Docker, Error> {
    let host = docker_host();
    let verify = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0");
    let is_tcp = host.starts_with("tcp://") || host.starts_with("http://");
    if host.starts_with("https://") || (verify && is_tcp) {
        return connect_tls(&host).await;
    }
    // tcp:// is connected explicitly: bollard's own dispatch would switch to
    // TLS for any DOCKER_TLS_VERIFY, even "0".
    let docker = if is_tcp {
        Docker::connect_with_http(&host, 120, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_host(&host)
    }
    .map_err(|e| connect_error(&e, &host))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| connect_error(&e, &host))?;
    let v = docker.client_version();
    check_api_version(&host, (v.major_version, v.minor_version))?;
    Ok(docker.with_timeout(LONG_TIMEOUT))
}

/// The docker CLI's certificate directory: DOCKER_CERT_PATH, else ~/.docker.
pub fn cert_dir() -> std::path::PathBuf {
    match std::env::var_os("DOCKER_CERT_PATH").filter(|p| !p.is_empty()) {
        Some(p) => p.into(),
        None => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(std::env::home_dir)
            .unwrap_or_default()
            .join(".docker"),
    }
}

/// Check one PEM file before handing it to bollard, whose client-certificate
/// errors would otherwise only show up as a vague handshake failure.
fn check_pem(host: &str, path: &std::path::Path, what: &str, marker: &str) -> Result<(), Error> {
    let shown = path.display();
    let text = std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::NotFound => "no such file".to_string(),
            io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        Error::Engine(format!(
            "cannot connect to the Docker engine at {host} over TLS: {what} {shown}: {why}; set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem"
        ))
    })?;
    let text = String::from_utf8_lossy(&text);
    let ok = text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("-----BEGIN ") && l.ends_with(&format!("{marker}-----"))
    });
    if !ok {
        return Err(Error::Engine(format!(
            "cannot connect to the Docker engine at {host} over TLS: {what} {shown} is not a PEM file holding a {}",
            marker.to_ascii_lowercase()
        )));
    }
    Ok(())
}

/// Connect over TLS with `ca.pem`, `cert.pem` and `key.pem` from [`cert_dir`].
async fn connect_tls(host: &str) -> Result<Docker, Error> {
    let dir = cert_dir();
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    check_pem(host, &ca, "the CA certificate", "CERTIFICATE")?;
    check_pem(host, &cert, "the client certificate", "CERTIFICATE")?;
    check_pem(host, &key, "the client key", "PRIVATE KEY")?;
    let docker =
        Docker::connect_with_ssl(host, &key, &cert, &ca, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| tls_setup_error(&e, host))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| tls_error(&e, host, &dir))?;
    let v = docker.client_version();
    check_api_version(host, (v.major_version, v.minor_version))?;
    Ok(docker.with_timeout(LONG_TIMEOUT))
}

/// One line for a TLS client that could not be set up.
fn tls_setup_error(e: &ApiError, host: &str) -> Error {
    let why = match e {
        ApiError::CertPathError { path } | ApiError::CertParseError { path } => {
            format!("cannot read {} as PEM certificates", path.display())
        }
        ApiError::CertMultipleKeys { count, path } => {
            format!("{} holds {count} keys, expected one", path.display())
        }
        ApiError::LoadNativeCertsErrors { .. } | ApiError::NoNativeCertsError { .. } => format!(
            "cannot load the system's root certificates ({}); check SSL_CERT_FILE/SSL_CERT_DIR",
            e.to_string().replace('\n', " ")
        ),
        _ => root_message(e),
    };
    Error::Engine(format!(
        "cannot connect to the Docker engine at {host} over TLS: {why}"
    ))
}

/// One line for a failed TLS connection, naming the certificate at fault
/// when the handshake says which one.
fn tls_error(e: &ApiError, host: &str, dir: &std::path::Path) -> Error {
    let kind = match e {
        ApiError::IOError { err } => Some(err.kind()),
        _ => io_kind(e),
    };
    if matches!(
        e,
        ApiError::DockerResponseServerError { .. } | ApiError::RequestTimeoutError
    ) || matches!(
        kind,
        Some(
            io::ErrorKind::NotFound
                | io::ErrorKind::ConnectionRefused
                | io::ErrorKind::AddrNotAvailable
        )
    ) {
        return connect_error(e, host);
    }
    let root = root_message(e);
    let ca = dir.join("ca.pem");
    let cert = dir.join("cert.pem");
    let why = if root.contains("UnknownIssuer") || root.contains("BadSignature") {
        format!(
            "the engine's certificate is not signed by the CA in {}",
            ca.display()
        )
    } else if root.contains("NotValidForName") {
        "the engine's certificate is not valid for this host name or address".to_string()
    } else if root.contains("Expired") || root.contains("NotValidYet") {
        "the engine's certificate is expired or not yet valid".to_string()
    } else if root.contains("received fatal alert") {
        format!(
            "the engine refused the client certificate {} ({root})",
            cert.display()
        )
    } else if root.contains("corrupt message") || root.contains("InvalidContentType") {
        "the engine does not speak TLS on this port (unset DOCKER_TLS_VERIFY for a plain tcp:// engine)"
            .to_string()
    } else {
        root.replace('\n', " ")
    };
    Error::Engine(format!(
        "TLS connection to the Docker engine at {host} failed: {why} (certificates from {})",
        dir.display()
    ))
}

/// Refuse engines older than [`MIN_API`].
pub fn check_api_version(host: &str, v: (usize, usize)) -> Result<(), Error> {
    if v < MIN_API {
        return Err(Error::Engine(format!(
            "the Docker engine at {host} speaks API {}.{}, which is too old: layerscope needs API {}.{} or later (Docker 1.12+); upgrade the engine",
            v.0, v.1, MIN_API.0, MIN_API.1
        )));
    }
    Ok(())
}

/// The first I/O error in an error's chain.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

/// The innermost message of an error chain (hyper's outer ones say little).
pub(super) fn root_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn socket_path(host: &str) -> &str {
    host.strip_prefix("unix://").unwrap_or(host)
}

/// One line for a failure to talk to the engine at all.
pub fn connect_error(e: &ApiError, host: &str) -> Error {
    let start = "start it (`sudo systemctl start docker`, or `sudo dockerd &`) or point DOCKER_HOST at a running engine (e.g. DOCKER_HOST=unix:///run/user/1000/podman/podman.sock)";
    match e {
        ApiError::SocketNotFoundError(_) => {
            return Error::Engine(format!(
                "cannot reach the Docker engine at {host}: no such socket; {start}"
            ));
        }
        ApiError::UnsupportedURISchemeError { uri } => {
            return Error::Engine(format!(
                "DOCKER_HOST={uri} is not supported: use unix:///path/to/docker.sock or tcp://HOST:PORT"
            ));
        }
        ApiError::DockerResponseServerError {
            status_code,
            message,
        } => return server_error(host, *status_code, message),
        ApiError::RequestTimeoutError => {
            return Error::Engine(format!(
                "the Docker engine at {host} did not answer in time; check that it is running, or point DOCKER_HOST at one that is"
            ));
        }
        _ => {}
    }
    // `IOError` is transparent: its source() skips the io::Error itself.
    let kind = match e {
        ApiError::IOError { err } => Some(err.kind()),
        _ => io_kind(e),
    };
    match kind {
        Some(io::ErrorKind::PermissionDenied) => Error::Engine(format!(
            "permission denied on the Docker socket {}: add your user to the `docker` group (`sudo usermod -aG docker $USER`, then log in again), run as root, or point DOCKER_HOST at an engine you may use",
            socket_path(host)
        )),
        Some(
            io::ErrorKind::NotFound
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::AddrNotAvailable,
        ) => Error::Engine(format!(
            "cannot reach the Docker engine at {host} ({}); {start}",
            root_message(e)
        )),
        _ => Error::Engine(format!(
            "cannot talk to the Docker engine at {host}: {}; {start}",
            root_message(e)
        )),
    }
}

/// An error response from the engine, recognising version refusals.
fn server_error(host: &str, status: u16, message: &str) -> Error {
    let lower = message.to_ascii_lowercase();
    if lower.contains("http request to an https server") {
        return Error::Engine(format!(
            "the Docker engine at {host} expects TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem"
        ));
    }
    if lower.contains("too old") || lower.contains("too new") {
        return Error::Engine(format!(
            "the Docker engine at {host} refused the API version: {message} (layerscope needs API {}.{} or later)",
            MIN_API.0, MIN_API.1
        ));
    }
    Error::Engine(format!(
        "the Docker engine at {host} answered {status}: {}",
        message.trim()
    ))
}

/// An error from a request made after connecting.
pub(super) fn request_error(e: &ApiError, host: &str, what: &str) -> Error {
    match e {
        ApiError::DockerResponseServerError {
            status_code,
            message,
        } if *status_code != 404 => match server_error(host, *status_code, message) {
            Error::Engine(m) => Error::Engine(format!("{what}: {m}")),
            other => other,
        },
        _ => match connect_error(e, host) {
            Error::Engine(m) => Error::Engine(format!("{what}: {m}")),
            other => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_names_the_socket() {
        let e = ApiError::IOError {
            err: io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        };
        let msg = connect_error(&e, "unix:///var/run/docker.sock").to_string();
        assert!(
            msg.starts_with("permission denied on the Docker socket /var/run/docker.sock"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn refused_connection_says_how_to_start() {
        let e = ApiError::IOError {
            err: io::Error::new(io::ErrorKind::ConnectionRefused, "refused"),
        };
        let msg = connect_error(&e, "tcp://127.0.0.1:1").to_string();
        assert!(msg.contains("cannot reach the Docker engine at tcp://127.0.0.1:1"));
        assert!(msg.contains("DOCKER_HOST"));
    }

    #[test]
    fn old_api_is_refused_with_its_version() {
        let msg = check_api_version("unix:///x", (1, 12))
            .expect_err("too old")
            .to_string();
        assert!(msg.contains("API 1.12"), "{msg}");
        assert!(check_api_version("unix:///x", (1, 41)).is_ok());
        assert!(check_api_version("unix:///x", (1, 100)).is_ok());
    }
}
