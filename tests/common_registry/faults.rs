//! An HTTP proxy in front of a real registry that misbehaves on purpose,
//! as the engine's (`common_engine::proxy`) does: it answers some requests
//! itself (429 with Retry-After, 5xx, 401, a redirect), cuts answers after
//! a budget of bytes, or holds them until told to cut. Each connection
//! carries one request (`Connection: close` is added upstream). Every
//! request is recorded with what was done to it.
//!
//! [`ObjectStore`] stands in for the object storage a registry redirects
//! blob downloads to: another host, serving the registry's stored blobs,
//! recording whether a request carried `Authorization`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::issuer::{header, read_head};

/// What the proxy does to a request a rule matches.
#[derive(Clone)]
pub enum Action {
    /// Answer with this status and these headers, and close.
    Status(u16, Vec<(&'static str, String)>),
    /// Pass the answer on for this many bytes (head included), then close.
    CutAfter(u64),
    /// Pass this many bytes, wait until the flag is set (5 minutes at most),
    /// then close; `held` is set when it starts waiting.
    HoldThenCut {
        after: u64,
        held: Arc<AtomicBool>,
        release: Arc<AtomicBool>,
    },
    /// Answer `307` to `BASE` + the request's path.
    Redirect(String),
}

pub struct Rule {
    /// Strings the request line must all contain (`"GET "`, `"/blobs/"`).
    pub when: Vec<String>,
    /// How many matching requests it applies to.
    pub times: usize,
    pub action: Action,
}

impl Rule {
    pub fn new(when: &[&str], times: usize, action: Action) -> Rule {
        Rule {
            when: when.iter().map(|s| s.to_string()).collect(),
            times,
            action,
        }
    }
}

/// A request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    /// `GET /v2/... HTTP/1.1`
    pub line: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
    /// `passed`, `cut`, `429`, `redirected`, `upstream down`...
    pub done: String,
}

pub struct FaultProxy {
    pub port: u16,
    pub rules: Arc<Mutex<Vec<Rule>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl FaultProxy {
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (r, s) = (rules.clone(), seen.clone());
        std::thread::spawn(move || {
            for c in listener.incoming() {
                let Ok(c) = c else { return };
                let (r, s) = (r.clone(), s.clone());
                std::thread::spawn(move || serve(c, upstream, &r, &s));
            }
        });
        FaultProxy { port, rules, seen }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn add(&self, rule: Rule) {
        self.rules.lock().expect("lock").push(rule);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// Requests whose line contains all of `words`.
    pub fn matching(&self, words: &[&str]) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| words.iter().all(|w| s.line.contains(w)))
            .collect()
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn serve(mut client: TcpStream, upstream: u16, rules: &Mutex<Vec<Rule>>, seen: &Mutex<Vec<Seen>>) {
    let Some(head) = read_head(&mut client) else {
        return;
    };
    let line = head.lines().next().unwrap_or("").to_string();
    let action = {
        let mut rules = rules.lock().expect("lock");
        rules
            .iter_mut()
            .find(|r| r.times > 0 && r.when.iter().all(|w| line.contains(w.as_str())))
            .map(|r| {
                r.times -= 1;
                r.action.clone()
            })
    };
    let record = |done: &str| {
        seen.lock().expect("lock").push(Seen {
            at: Instant::now(),
            line: line.clone(),
            range: header(&head, "range").map(str::to_string),
            authorization: header(&head, "authorization").map(str::to_string),
            done: done.to_string(),
        });
    };
    match &action {
        Some(Action::Status(code, headers)) => {
            record(&code.to_string());
            let body =
                format!(r#"{{"errors":[{{"code":"UNKNOWN","message":"injected {code}"}}]}}"#);
            let mut extra = String::new();
            for (k, v) in headers {
                extra += &format!("{k}: {v}\r\n");
            }
            let _ = write!(
                client,
                "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                reason(*code),
                body.len()
            );
            return;
        }
        Some(Action::Redirect(base)) => {
            record("redirected");
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let _ = write!(
                client,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {base}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
        _ => {}
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        // What a load balancer in front of a stopped registry answers.
        record("upstream down");
        let _ = write!(
            client,
            "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    };
    // One request per connection: say so upstream.
    let mut fwd = String::new();
    for l in head.trim_end().lines() {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            fwd += l;
            fwd += "\r\n";
        }
    }
    fwd += "Connection: close\r\n\r\n";
    if server.write_all(fwd.as_bytes()).is_err() {
        record("upstream write failed");
        return;
    }
    let (budget, hold) = match &action {
        Some(Action::CutAfter(n)) => (*n, None),
        Some(Action::HoldThenCut {
            after,
            held,
            release,
        }) => (*after, Some((held.clone(), release.clone()))),
        _ => (u64::MAX, None),
    };
    record(if budget == u64::MAX { "passed" } else { "cut" });
    let mut left = budget;
    let mut buf = vec![0u8; 16 * 1024];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = match server.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
        left -= n as u64;
    }
    if left == 0
        && let Some((held, release)) = hold
    {
        held.store(true, Ordering::SeqCst);
        let t = Instant::now();
        while !release.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = server.shutdown(std::net::Shutdown::Both);
}

/// (request line, the Authorization header if any)
type Requests = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Object storage on another host (`ip`, e.g. 127.0.0.2): serves the
/// registry's stored blobs by the digest that ends the path.
pub struct ObjectStore {
    pub base: String,
    pub seen: Requests,
}

impl ObjectStore {
    pub fn start(ip: &str, blobs: PathBuf) -> ObjectStore {
        let listener = TcpListener::bind((ip, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen: Requests = Arc::default();
        let s = seen.clone();
        std::thread::spawn(move || {
            for c in listener.incoming() {
                let Ok(mut c) = c else { return };
                let Some(head) = read_head(&mut c) else {
                    continue;
                };
                let line = head.lines().next().unwrap_or("").to_string();
                s.lock().expect("lock").push((
                    line.clone(),
                    header(&head, "authorization").map(str::to_string),
                ));
                let digest = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.rsplit('/').next())
                    .unwrap_or("");
                let hex = digest.strip_prefix("sha256:").unwrap_or("");
                let file = blobs.join(format!(
                    "sha256/{}/{hex}/data",
                    hex.get(..2).unwrap_or("xx")
                ));
                match std::fs::read(&file) {
                    Ok(data) if hex.len() == 64 => {
                        let _ = write!(
                            c,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            data.len()
                        );
                        let _ = c.write_all(&data);
                    }
                    _ => {
                        let _ = write!(
                            c,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                }
            }
        });
        ObjectStore {
            base: format!("http://{ip}:{port}"),
            seen,
        }
    }
}
