//! A token issuer, as Docker Hub's auth.docker.io, GHCR or Quay run one:
//! it answers `GET /token?service=...&scope=repository:NAME:pull,push`
//! with a JWT signed (RS256, by the openssl CLI) with a key whose
//! self-signed certificate the registry's `rootcertbundle` trusts. The
//! test user's basic credentials get what they ask for; wrong ones get a
//! 401; no credentials get pull access when anonymous pulls are allowed,
//! else a 401. It also answers the OAuth2 form docker posts for an
//! `identitytoken` (`POST` with `grant_type=refresh_token`): [`REFRESH`]
//! gets pull access as the test user, any other token a 401. Every request
//! is recorded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command as Std, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tempfile::TempDir;

use super::{Auth, ISSUER, PASSWORD, SERVICE, TokenAuth, USER};
use crate::common_engine::run_ok;

/// The refresh token the issuer honours.
pub const REFRESH: &str = "refresh-token-for-tests";

/// One token request as the issuer saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The decoded `scope` parameter.
    pub scope: String,
    /// The user of a basic `Authorization`, if one was sent.
    pub user: Option<String>,
    /// Whether it was answered with a token.
    pub granted: bool,
}

pub struct Issuer {
    pub port: u16,
    /// The certificate of the signing key (the registry's rootcertbundle).
    pub bundle: PathBuf,
    pub requests: Arc<Mutex<Vec<TokenRequest>>>,
    /// Anonymous pulls allowed.
    pub anonymous: Arc<AtomicBool>,
    /// Seconds the tokens are valid for (`expires_in`).
    pub lifetime: Arc<AtomicU64>,
    _dir: TempDir,
}

impl Issuer {
    pub fn start(anonymous: bool) -> Issuer {
        let dir = TempDir::new().expect("tempdir");
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        run_ok(
            Std::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", &format!("/CN={ISSUER}")])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
            "openssl req (issuer key)",
        );
        let der = Std::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl x509");
        assert!(der.status.success(), "openssl x509 -outform DER");
        let x5c = STANDARD.encode(&der.stdout);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let anonymous = Arc::new(AtomicBool::new(anonymous));
        let lifetime = Arc::new(AtomicU64::new(300));
        let shared = (requests.clone(), anonymous.clone(), lifetime.clone());
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { return };
                let (key, x5c) = (key.clone(), x5c.clone());
                let (req, anon, life) = shared.clone();
                std::thread::spawn(move || answer(s, &key, &x5c, &req, &anon, &life));
            }
        });
        Issuer {
            port,
            bundle: cert,
            requests,
            anonymous,
            lifetime,
            _dir: dir,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The registry's `auth: token` for this issuer.
    pub fn auth(&self) -> Auth {
        Auth::Token(TokenAuth {
            realm: self.realm(),
            bundle: self.bundle.clone(),
        })
    }

    pub fn seen(&self) -> Vec<TokenRequest> {
        self.requests.lock().expect("lock").clone()
    }
}

/// The request head (through the blank line), at most 64 KiB.
pub fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 << 10 || s.read(&mut b).ok()? == 0 {
            return None;
        }
        // A TLS ClientHello: not HTTP; close, as an HTTP server does.
        if head.is_empty() && b[0] == 0x16 {
            return None;
        }
        head.push(b[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A header's value (first match, case-insensitive name).
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(h, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(s: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn answer(
    mut s: TcpStream,
    key: &Path,
    x5c: &str,
    requests: &Mutex<Vec<TokenRequest>>,
    anonymous: &AtomicBool,
    lifetime: &AtomicU64,
) {
    let Some(head) = read_head(&mut s) else {
        return;
    };
    let target = head.split_whitespace().nth(1).unwrap_or("");
    // A POST carries its parameters as a form in the body.
    let body = if head.starts_with("POST ") {
        let len: usize = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            .min(64 << 10);
        let mut b = vec![0u8; len];
        if s.read_exact(&mut b).is_err() {
            return;
        }
        String::from_utf8_lossy(&b).into_owned()
    } else {
        String::new()
    };
    let query = if head.starts_with("POST ") {
        body.as_str()
    } else {
        target.split_once('?').map_or("", |(_, q)| q)
    };
    let param = |name: &str| {
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| percent_decode(v))
        })
    };
    let scope = param("scope").unwrap_or_default();
    let basic = header(&head, "authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .map(|d| String::from_utf8_lossy(&d).into_owned());
    let user = basic
        .as_ref()
        .map(|b| b.split_once(':').map_or(b.as_str(), |(u, _)| u).to_string());
    let refresh = (param("grant_type").as_deref() == Some("refresh_token"))
        .then(|| param("refresh_token").unwrap_or_default());
    let user = user.or_else(|| refresh.as_ref().map(|_| "<token>".to_string()));
    let granted: Option<Vec<&str>> = match (&basic, &refresh) {
        (_, Some(t)) if t == REFRESH => Some(vec!["pull"]),
        (_, Some(_)) => None,
        (Some(b), None) if *b == format!("{USER}:{PASSWORD}") => Some(vec!["pull", "push"]),
        (Some(_), None) => None,
        (None, None) if anonymous.load(Ordering::SeqCst) => Some(vec!["pull"]),
        (None, None) => None,
    };
    requests.lock().expect("lock").push(TokenRequest {
        scope: scope.clone(),
        user,
        granted: granted.is_some(),
    });
    let Some(allowed) = granted else {
        respond(
            &mut s,
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
        return;
    };
    // scope = repository:NAME:ACTIONS
    let mut parts = scope.splitn(3, ':');
    let (kind, name, asked) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let actions: Vec<&str> = asked.split(',').filter(|a| allowed.contains(a)).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let life = lifetime.load(Ordering::SeqCst);
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": if basic.is_some() || refresh.is_some() { USER } else { "" }, "aud": SERVICE,
        "exp": now + life, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", requests.lock().expect("lock").len()),
        "access": if kind.is_empty() { vec![] } else {
            vec![serde_json::json!({"type": kind, "name": name, "actions": actions})]
        },
    });
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let Some(sig) = sign(key, signing_input.as_bytes()) else {
        respond(&mut s, "500 Internal Server Error", "{}");
        return;
    };
    let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig));
    let body = serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": life});
    respond(&mut s, "200 OK", &body.to_string());
}

/// RSASSA-PKCS1-v1_5 with SHA-256 (RS256), by `openssl dgst`.
fn sign(key: &Path, data: &[u8]) -> Option<Vec<u8>> {
    let mut child = Std::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(data).ok()?;
    let out = child.wait_with_output().ok()?;
    out.status.success().then_some(out.stdout)
}
