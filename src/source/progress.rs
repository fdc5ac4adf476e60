//! Progress of images being read from the engine: events for the TUI (over a
//! channel) and a one-line bar on stderr for headless runs.
//!
//! The hot path only adds to atomics ([`Tracker`]); a sampler thread turns
//! them into [`ProgressEvent`]s a few times a second, so a slow consumer
//! never slows the export down.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::output::size;

/// Where an image's load is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Asking the engine about the image.
    Inspecting,
    /// The engine is preparing the export; no byte has arrived yet (a
    /// Docker 20.10 engine copies every layer before sending the first).
    Waiting,
    /// Export bytes are arriving and being indexed.
    Receiving,
    /// Loaded and indexed.
    Done,
    /// Loading failed (the error is returned by the loader).
    Failed,
}

impl Stage {
    fn from_u8(v: u8) -> Stage {
        match v {
            0 => Stage::Inspecting,
            1 => Stage::Waiting,
            2 => Stage::Receiving,
            3 => Stage::Done,
            _ => Stage::Failed,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Stage::Inspecting => 0,
            Stage::Waiting => 1,
            Stage::Receiving => 2,
            Stage::Done => 3,
            Stage::Failed => 4,
        }
    }

    /// Finished, one way or the other.
    pub fn is_final(self) -> bool {
        matches!(self, Stage::Done | Stage::Failed)
    }
}

/// The state of one image's load, sent a few times a second while it
/// changes, and once more when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressEvent {
    /// Position of the image on the command line (among engine images).
    pub index: usize,
    /// The reference as given.
    pub name: String,
    pub stage: Stage,
    /// The image size from the engine's inspect (0 until known). The export
    /// stream is somewhat larger (tar headers, metadata), so `received` may
    /// pass it near the end.
    pub expected: u64,
    /// Export bytes received so far.
    pub received: u64,
}

impl ProgressEvent {
    pub fn done(&self) -> bool {
        self.stage.is_final()
    }
}

/// The sending end the TUI hands to the loader.
pub type Sender = mpsc::Sender<ProgressEvent>;

/// Shared counters for one image.
#[derive(Debug)]
pub struct ImageProgress {
    pub name: String,
    expected: AtomicU64,
    received: AtomicU64,
    stage: AtomicU8,
}

impl ImageProgress {
    pub fn set_expected(&self, n: u64) {
        self.expected.store(n, Ordering::Relaxed);
    }

    pub fn add_received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn set_stage(&self, s: Stage) {
        self.stage.store(s.to_u8(), Ordering::Relaxed);
    }

    pub fn stage(&self) -> Stage {
        Stage::from_u8(self.stage.load(Ordering::Relaxed))
    }
}

/// Progress of several images loading at once.
#[derive(Debug)]
pub struct Tracker {
    pub images: Vec<ImageProgress>,
}

impl Tracker {
    pub fn new(names: &[String]) -> Arc<Tracker> {
        Arc::new(Tracker {
            images: names
                .iter()
                .map(|n| ImageProgress {
                    name: n.clone(),
                    expected: AtomicU64::new(0),
                    received: AtomicU64::new(0),
                    stage: AtomicU8::new(Stage::Inspecting.to_u8()),
                })
                .collect(),
        })
    }

    /// The current state of every image.
    pub fn snapshot(&self) -> Vec<ProgressEvent> {
        self.images
            .iter()
            .enumerate()
            .map(|(index, p)| ProgressEvent {
                index,
                name: p.name.clone(),
                stage: p.stage(),
                expected: p.expected.load(Ordering::Relaxed),
                received: p.received(),
            })
            .collect()
    }
}

/// Who watches a load.
#[derive(Debug, Clone, Default)]
pub enum Watch {
    /// A bar on stderr when stderr is a terminal, nothing otherwise.
    #[default]
    Auto,
    /// Nothing.
    Quiet,
    /// Events over a channel (the TUI); no bar.
    Events(Sender),
}

/// Samples a [`Tracker`] on a thread until dropped or finished.
pub struct Reporter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const TICK: Duration = Duration::from_millis(150);

impl Reporter {
    /// Start watching. With [`Watch::Auto`] and no terminal on stderr, no
    /// thread is started at all.
    pub fn start(tracker: Arc<Tracker>, watch: &Watch) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = match watch {
            Watch::Quiet => None,
            Watch::Auto if !std::io::stderr().is_terminal() => None,
            Watch::Auto => {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name("progress".into())
                    .spawn(move || run_bar(&tracker, &stop))
                    .ok()
            }
            Watch::Events(tx) => {
                let stop = stop.clone();
                let tx = tx.clone();
                std::thread::Builder::new()
                    .name("progress".into())
                    .spawn(move || run_events(&tracker, &stop, &tx))
                    .ok()
            }
        };
        Reporter { stop, thread }
    }

    /// Stop and wait for the last event or the bar to be cleared.
    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn run_events(tracker: &Tracker, stop: &AtomicBool, tx: &Sender) {
    let mut last: Vec<Option<ProgressEvent>> = vec![None; tracker.images.len()];
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        for ev in tracker.snapshot() {
            let slot = &mut last[ev.index];
            if slot.as_ref() != Some(&ev) {
                if tx.send(ev.clone()).is_err() {
                    return; // nobody listens any more
                }
                *slot = Some(ev);
            }
        }
        if stopping {
            return;
        }
        std::thread::park_timeout(TICK);
    }
}

fn run_bar(tracker: &Tracker, stop: &AtomicBool) {
    let start = Instant::now();
    let mut first_byte: Option<Instant> = None;
    let mut shown = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::park_timeout(TICK);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // Short loads finish without a bar flickering by.
        if start.elapsed() < Duration::from_millis(300) {
            continue;
        }
        let events = tracker.snapshot();
        let received: u64 = events.iter().map(|e| e.received).sum();
        if first_byte.is_none() && received > 0 {
            first_byte = Some(Instant::now());
        }
        let first = first_byte;
        let width = crossterm::terminal::size()
            .ok()
            .filter(|(w, _)| *w > 0)
            .map_or(80, |(w, _)| w as usize);
        let line = bar_line(&events, start.elapsed(), first.map(|f| f.elapsed()), width);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        shown = true;
    }
    if shown {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}

/// One line: what is loading, bytes of the expected total, rate, ETA.
/// `since_first` is the time since the first export byte arrived.
pub fn bar_line(
    events: &[ProgressEvent],
    elapsed: Duration,
    since_first: Option<Duration>,
    width: usize,
) -> String {
    let names: Vec<&str> = events
        .iter()
        .filter(|e| !e.done())
        .map(|e| e.name.as_str())
        .collect();
    let label = if names.is_empty() {
        "indexing".to_string()
    } else {
        names.join(", ")
    };
    let received: u64 = events.iter().map(|e| e.received).sum();
    let expected: u64 = events.iter().map(|e| e.expected.max(e.received)).sum();
    let text = if received == 0 {
        format!(
            "{label}: waiting for the engine to export ({}s)",
            elapsed.as_secs()
        )
    } else {
        let secs = since_first.map_or(0.0, |d| d.as_secs_f64());
        // The first samples of a rate are noise.
        let rate = if secs >= 0.5 {
            received as f64 / secs
        } else {
            0.0
        };
        let remaining = expected.saturating_sub(received);
        let eta = if remaining == 0 || rate < 1.0 {
            "--".to_string()
        } else {
            format!("{}s", (remaining as f64 / rate).ceil() as u64)
        };
        // Clamp below 100% until every image is done: the export is a bit
        // larger than the image size the engine reports.
        let frac = if expected == 0 {
            0.0
        } else {
            (received as f64 / expected as f64).min(0.99)
        };
        let cells = 16usize;
        let full = (frac * cells as f64).floor() as usize;
        let rate = if rate >= 1.0 {
            format!("{}/s", size(rate as u64))
        } else {
            "--/s".to_string()
        };
        format!(
            "{label} [{}{}] {} of {} {rate} ETA {eta}",
            "#".repeat(full),
            "-".repeat(cells - full),
            size(received),
            size(expected),
        )
    };
    truncate(&text, width.saturating_sub(1).max(20))
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{keep}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(stage: Stage, expected: u64, received: u64) -> ProgressEvent {
        ProgressEvent {
            index: 0,
            name: "app".into(),
            stage,
            expected,
            received,
        }
    }

    #[test]
    fn bar_shows_bytes_rate_and_eta() {
        let line = bar_line(
            &[ev(Stage::Receiving, 100_000_000, 25_000_000)],
            Duration::from_secs(3),
            Some(Duration::from_secs(1)),
            200,
        );
        assert!(line.contains("25 MB of 100 MB"), "{line}");
        assert!(line.contains("25 MB/s"), "{line}");
        assert!(line.contains("ETA 3s"), "{line}");
    }

    #[test]
    fn bar_waits_before_the_first_byte() {
        let line = bar_line(
            &[ev(Stage::Waiting, 100, 0)],
            Duration::from_secs(4),
            None,
            200,
        );
        assert!(line.contains("waiting for the engine"), "{line}");
    }

    #[test]
    fn bar_never_claims_done_early_and_fits() {
        let line = bar_line(
            &[ev(Stage::Receiving, 100, 150)],
            Duration::from_secs(1),
            Some(Duration::from_secs(1)),
            30,
        );
        assert!(line.chars().count() <= 30, "{line}");
    }

    #[test]
    fn events_are_sent_on_change_and_at_the_end() {
        let tracker = Tracker::new(&["a".to_string()]);
        let (tx, rx) = mpsc::channel();
        let rep = Reporter::start(tracker.clone(), &Watch::Events(tx));
        tracker.images[0].set_expected(10);
        tracker.images[0].set_stage(Stage::Receiving);
        tracker.images[0].add_received(10);
        tracker.images[0].set_stage(Stage::Done);
        rep.finish();
        let all: Vec<ProgressEvent> = rx.try_iter().collect();
        let last = all.last().expect("at least one event");
        assert!(last.done());
        assert_eq!((last.expected, last.received), (10, 10));
    }
}
