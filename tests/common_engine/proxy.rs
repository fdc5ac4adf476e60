//! A unix-socket proxy in front of an engine that misbehaves on purpose:
//! it refuses some requests, cuts or stalls the answers after a budget of
//! bytes, or holds them until told to go on. Real engine, real bytes; only
//! the transport is made to fail.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the proxy does once a connection's answers used their budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterBudget {
    /// Close the connection: dropped mid-answer.
    Close,
    /// Stay silent with the connection open until the client goes away
    /// (5 minutes at most): a stalled engine or network.
    Stall,
}

/// How the proxy misbehaves; the default passes everything.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Bytes of each connection's answers passed on.
    pub budget: u64,
    pub after_budget: AfterBudget,
    /// At this many bytes (all connections together), wait for the flag
    /// before passing on more (5 minutes at most).
    pub hold: Option<(u64, Arc<AtomicBool>)>,
    /// A request containing all of these strings is answered with
    /// `500 {"message": ...}` and the connection closed.
    pub refuse: Option<(Vec<&'static str>, &'static str)>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            budget: u64::MAX,
            after_budget: AfterBudget::Close,
            hold: None,
            refuse: None,
        }
    }
}

/// A running proxy: point `DOCKER_HOST` at `host`. It stops accepting when
/// the test process ends.
pub struct Proxy {
    pub host: String,
    /// Answer bytes passed on so far, all connections together.
    pub forwarded: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

/// Start a proxy to the engine's unix socket `upstream`.
pub fn proxy(upstream: &str, faults: Faults) -> Proxy {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("proxy.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let forwarded = Arc::new(AtomicU64::new(0));
    let total = forwarded.clone();
    let upstream = upstream.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = UnixStream::connect(&upstream) else {
                return;
            };
            let closed = Arc::new(AtomicBool::new(false));
            let requests = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            let (refuse, done) = (faults.refuse.clone(), closed.clone());
            std::thread::spawn(move || {
                pass_requests(requests.0, requests.1, refuse.as_ref());
                done.store(true, Ordering::SeqCst);
            });
            let (faults, total) = (faults.clone(), total.clone());
            std::thread::spawn(move || pass_answers(server, client, &faults, &total, &closed));
        }
    });
    Proxy {
        host: format!("unix://{}", path.display()),
        forwarded,
        _dir: dir,
    }
}

/// Client to engine, refusing what `refuse` names.
fn pass_requests(
    mut client: UnixStream,
    mut server: UnixStream,
    refuse: Option<&(Vec<&'static str>, &'static str)>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let req = String::from_utf8_lossy(&buf[..n]);
        if let Some((words, message)) = refuse
            && words.iter().all(|w| req.contains(w))
        {
            let body = format!(r#"{{"message":"{message}"}}"#);
            let _ = write!(
                client,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.shutdown(std::net::Shutdown::Both);
            let _ = server.shutdown(std::net::Shutdown::Both);
            break;
        }
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// Engine to client, within the budget, holding where asked.
fn pass_answers(
    mut server: UnixStream,
    mut client: UnixStream,
    faults: &Faults,
    total: &AtomicU64,
    closed: &AtomicBool,
) {
    let mut left = faults.budget;
    let mut buf = vec![0u8; 16 * 1024];
    while left > 0 {
        if let Some((at, release)) = &faults.hold {
            let t = Instant::now();
            while total.load(Ordering::SeqCst) >= *at
                && !release.load(Ordering::SeqCst)
                && t.elapsed() < Duration::from_secs(300)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let want = left.min(buf.len() as u64) as usize;
        let n = match server.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
        total.fetch_add(n as u64, Ordering::SeqCst);
        left -= n as u64;
    }
    // Past the budget: silent, open, until the client goes away (bounded
    // anyway). A closed upstream is passed on at once.
    let t = Instant::now();
    while left == 0
        && faults.after_budget == AfterBudget::Stall
        && !closed.load(Ordering::SeqCst)
        && t.elapsed() < Duration::from_secs(300)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = server.shutdown(std::net::Shutdown::Both);
}

/// The engine's unix socket from `DOCKER_HOST` (the default socket when
/// unset); `None` when the engine is reached another way.
pub fn engine_socket() -> Option<String> {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    host.strip_prefix("unix://").map(str::to_string)
}
