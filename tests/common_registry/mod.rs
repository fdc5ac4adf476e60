//! A real registry for the tests: Debian's docker-registry (distribution
//! 2.8) started on 127.0.0.1 with htpasswd or token auth, plain or TLS;
//! a test environment (DOCKER_CONFIG, HOME, cache) with no credentials of
//! the machine's; images pushed through the registry API; a token issuer
//! ([`issuer`]) and a faulty HTTP proxy ([`faults`]).
#![allow(dead_code)]

pub mod faults;
pub mod issuer;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command as Std, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

use crate::common_engine::{have, rt, run_ok};

pub const USER: &str = "tester";
pub const PASSWORD: &str = "s3cret-Pw-for-tests";

/// A registry process on a free loopback port, killed when dropped.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
    /// `https` with a certificate, else `http`.
    pub scheme: &'static str,
}

pub fn tools_available(test: &str) -> bool {
    // `htpasswd` has no option that exits 0: look for it on PATH.
    if have("docker-registry", "--version") && which("htpasswd") {
        return true;
    }
    let msg = "docker-registry or htpasswd missing (apt-get install docker-registry apache2-utils; .ci/ensure-test-tools does)";
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED {test}: {msg}");
    false
}

pub fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

impl Registry {
    /// htpasswd (basic) auth, plain HTTP.
    pub fn start() -> Registry {
        Registry::start_with(&Auth::Htpasswd, None)
    }

    pub fn start_with(auth: &Auth, tls: Option<&TlsFiles>) -> Registry {
        Registry::start_on("127.0.0.1", auth, tls)
    }

    /// Listening on `ip` (`0.0.0.0`: every interface, so that it can be
    /// reached by an address that is not loopback).
    pub fn start_on(ip: &str, auth: &Auth, tls: Option<&TlsFiles>) -> Registry {
        let dir = TempDir::new().expect("tempdir");
        let port = free_port();
        let auth_yaml = match auth {
            Auth::None => String::new(),
            Auth::Htpasswd => {
                let htpasswd = run_ok(
                    Std::new("htpasswd").args(["-Bbn", USER, PASSWORD]),
                    "htpasswd",
                );
                std::fs::write(dir.path().join("htpasswd"), htpasswd).expect("htpasswd file");
                format!(
                    "auth:\n  htpasswd:\n    realm: layerscope-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                )
            }
            Auth::Token(t) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                t.realm,
                t.bundle.display()
            ),
        };
        let tls_yaml = match tls {
            None => String::new(),
            Some(t) => {
                let mut y = format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    t.cert.display(),
                    t.key.display()
                );
                if let Some(ca) = &t.client_ca {
                    y += &format!("    clientcas:\n      - {}\n", ca.display());
                }
                y
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n{tls_yaml}{auth_yaml}validation:\n  manifests:\n    urls:\n      allow:\n        - ^https?://\n",
            root = dir.path().join("data").display(),
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Std::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let r = Registry {
            child,
            port,
            dir,
            scheme: if tls.is_some() { "https" } else { "http" },
        };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "docker-registry did not listen on {port}: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// Stop it now (a registry that goes away mid-pull).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// GETs of these blobs in the access log so far.
    pub fn blob_gets(&self, digests: &[String]) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/"))
            .filter(|l| digests.iter().any(|d| l.contains(&format!("/blobs/{d} "))))
            .count()
    }

    /// Where the registry stores blobs (`sha256/AB/HEX/data`).
    pub fn blobs(&self) -> PathBuf {
        self.v2().join("blobs")
    }

    pub fn v2(&self) -> PathBuf {
        self.dir.path().join("data/docker/registry/v2")
    }

    /// The manifest a tag names, read from the registry's storage.
    pub fn stored_manifest(&self, repo: &str, tag: &str) -> Value {
        let link = self.v2().join(format!(
            "repositories/{repo}/_manifests/tags/{tag}/current/link"
        ));
        let digest = std::fs::read_to_string(&link).expect("tag link");
        serde_json::from_slice(&std::fs::read(self.blob_path(digest.trim())).expect("manifest"))
            .expect("manifest json")
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256");
        self.v2()
            .join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free loopback port (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// How the registry authenticates.
pub enum Auth {
    None,
    Htpasswd,
    /// Bearer tokens from this issuer.
    Token(TokenAuth),
}

/// What the registry's `auth: token` names.
pub struct TokenAuth {
    pub realm: String,
    /// The issuer's certificate: tokens are trusted when signed by its key.
    pub bundle: PathBuf,
}

/// The service and issuer names in the registry's config and the tokens.
pub const SERVICE: &str = "layerscope-test-registry";
pub const ISSUER: &str = "layerscope-test-issuer";

/// The registry's TLS files.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificates signed by this CA are required.
    pub client_ca: Option<PathBuf>,
}

/// A docker config directory, HOME and cache for the runs under test: no
/// credentials from the machine leak in.
pub struct Env {
    pub dir: TempDir,
}

impl Env {
    pub fn new() -> Env {
        let e = Env {
            dir: TempDir::new().expect("tempdir"),
        };
        std::fs::create_dir_all(e.docker_config()).expect("docker config dir");
        e
    }
    pub fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker")
    }
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    pub fn write_config(&self, json: &str) {
        std::fs::write(self.docker_config().join("config.json"), json).expect("config.json");
    }
    /// What `docker login` writes: the test user's basic credentials for `host`.
    pub fn store_credentials(&self, host: &str) {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        self.write_config(&format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#));
    }
    pub fn layerscope(&self) -> Command {
        let mut c = Command::cargo_bin("layerscope").expect("binary");
        c.env("DOCKER_CONFIG", self.docker_config())
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.cache())
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("CI");
        c
    }
}

impl Env {
    /// Run layerscope with `args`; it must succeed. Its JSON on stdout.
    pub fn report(&self, args: &[&str]) -> Value {
        json_of(&succeeded(self.layerscope().args(args)).stdout)
    }

    /// Run layerscope with `args`; it must fail as bad input does: exit 2,
    /// nothing on stdout. Its one error line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.layerscope().args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(2));
        assert!(
            out.stdout.is_empty(),
            "stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        one_error_line(&out.stderr)
    }
}

pub fn docker_cli(env: &Env) -> Std {
    let mut c = Std::new("docker");
    c.arg("--config").arg(env.docker_config());
    c
}

pub fn login(env: &Env, reg: &Registry) {
    let mut child = docker_cli(env)
        .args(["login", "-u", USER, "--password-stdin", &reg.host()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker login");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(PASSWORD.as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("docker login");
    assert!(
        out.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn push(env: &Env, tag: &str) {
    run_ok(
        docker_cli(env).args(["push", tag]),
        &format!("docker push {tag}"),
    );
}

/// Run `cmd`; it must succeed (its stderr says why not). Its output.
pub fn succeeded(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

pub fn layer_digests(m: &Value) -> Vec<String> {
    m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect()
}

/// Not random but not compressible either: gzip keeps it about its size.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn one_error_line(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr).into_owned();
    assert_eq!(s.trim_end().lines().count(), 1, "one line: {s}");
    s
}

// ---- images pushed through the registry API --------------------------------
//
// Docker 20.10 pushes neither zstd, OCI media types, indexes nor foreign
// layers: these are pushed here with oci-client, and checked against what
// the test put in them.

pub fn sha256(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(data);
    format!(
        "sha256:{}",
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

pub struct Pusher {
    pub client: oci_client::Client,
    pub host: String,
    pub repo: String,
    pub rt: tokio::runtime::Runtime,
}

impl Pusher {
    pub fn new(reg: &Registry, repo: &str) -> Pusher {
        Pusher::with_ca(reg, repo, None)
    }

    /// A pusher that trusts `ca` (PEM) for a TLS registry.
    pub fn with_ca(reg: &Registry, repo: &str, ca: Option<&[u8]>) -> Pusher {
        use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = oci_client::Client::try_from(ClientConfig {
            protocol: if reg.scheme == "https" {
                ClientProtocol::Https
            } else {
                ClientProtocol::Http
            },
            extra_root_certificates: ca
                .map(|c| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: c.to_vec(),
                })
                .into_iter()
                .collect(),
            ..Default::default()
        })
        .expect("client");
        let p = Pusher {
            client,
            host: reg.host(),
            repo: repo.to_string(),
            rt: rt(),
        };
        let r = p.reference("x");
        p.rt.block_on(p.client.auth(
            &r,
            &oci_client::secrets::RegistryAuth::Basic(USER.into(), PASSWORD.into()),
            oci_client::RegistryOperation::Push,
        ))
        .expect("auth");
        p
    }

    pub fn reference(&self, tag: &str) -> oci_client::Reference {
        oci_client::Reference::with_tag(self.host.clone(), self.repo.clone(), tag.to_string())
    }

    /// Upload a blob; its descriptor as JSON.
    pub fn blob(&self, media_type: &str, data: &[u8]) -> Value {
        let digest = sha256(data);
        self.rt
            .block_on(
                self.client
                    .push_blob(&self.reference("x"), data.to_vec(), &digest),
            )
            .expect("push blob");
        serde_json::json!({"mediaType": media_type, "digest": digest, "size": data.len()})
    }

    /// Put a manifest under `tag`; its descriptor.
    pub fn manifest(&self, tag: &str, media_type: &str, body: &Value) -> Value {
        let bytes = serde_json::to_vec(body).expect("json");
        self.rt
            .block_on(self.client.push_manifest_raw(
                &self.reference(tag),
                bytes.clone(),
                http::HeaderValue::from_str(media_type).expect("header"),
            ))
            .expect("push manifest");
        serde_json::json!({"mediaType": media_type, "digest": sha256(&bytes), "size": bytes.len()})
    }

    pub fn config(
        &self,
        media_type: &str,
        arch: &str,
        variant: Option<&str>,
        diff_ids: &[String],
    ) -> Value {
        let mut c = serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": diff_ids.iter().map(|_| serde_json::json!({"created_by": "COPY test"})).collect::<Vec<_>>(),
        });
        if let Some(v) = variant {
            c["variant"] = v.into();
        }
        self.blob(media_type, &serde_json::to_vec(&c).expect("json"))
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

pub fn layer_files(out: &Value) -> Vec<u64> {
    out["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["size_bytes"].as_u64().expect("size"))
        .collect()
}

pub fn cached_layers(env: &Env) -> usize {
    walk_count(&env.cache(), "layers")
}

pub fn walk_count(dir: &std::path::Path, name: &str) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|f| f == name) {
                n += std::fs::read_dir(&p).map_or(0, |r| r.flatten().count());
            } else {
                n += walk_count(&p, name);
            }
        }
    }
    n
}
