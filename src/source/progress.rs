//! Progress of images being loaded: counters the loaders add to, and the
//! one event type every view reads ([`ProgressEvent`], per image and per
//! layer). Nothing here draws: the stderr bars (`output::progress`) and the
//! TUI's loading screen are views of these events.
//!
//! The hot path only adds to atomics ([`ImageProgress`]); a sampler thread
//! ([`Reporter`]) turns them into events a few times a second, so a slow
//! consumer never slows loading down.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Counter;

/// Where an image's load is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Opening the source or asking the engine about the image.
    Inspecting,
    /// No byte has arrived yet (a Docker 20.10 engine copies every layer
    /// before sending the first).
    Waiting,
    /// Layer bytes are arriving and being indexed.
    Receiving,
    /// Read; classifying, computing waste and findings.
    Analysing,
    /// Loaded (and analysed).
    Done,
    /// Loading failed (the error is returned by the loader).
    Failed,
}

const STAGES: [Stage; 6] = [
    Stage::Inspecting,
    Stage::Waiting,
    Stage::Receiving,
    Stage::Analysing,
    Stage::Done,
    Stage::Failed,
];

impl Stage {
    /// Finished, one way or the other.
    pub fn is_final(self) -> bool {
        matches!(self, Stage::Done | Stage::Failed)
    }

    /// A word for a status line.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Inspecting | Stage::Waiting => "waiting",
            Stage::Receiving => "reading",
            Stage::Analysing => "analysing",
            Stage::Done => "done",
            Stage::Failed => "failed",
        }
    }
}

/// One layer being read, when a source reads layers separately (archives
/// and layouts in parallel, registry downloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerProgress {
    /// Position of the layer in the image, from 0.
    pub layer: usize,
    /// Bytes to read (0: unknown).
    pub expected: u64,
    pub received: u64,
    pub done: bool,
}

/// The state of one image's load, sent a few times a second while it
/// changes, and once more when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressEvent {
    /// Position of the image among those loaded together.
    pub index: usize,
    /// The reference as given.
    pub name: String,
    pub stage: Stage,
    /// Bytes to read, about (0 until known). An engine's export stream is
    /// somewhat larger than the image size it reports, so `received` may
    /// pass it near the end.
    pub expected: u64,
    /// Bytes read so far.
    pub received: u64,
    /// The layers started so far, when the source reports them.
    pub layers: Vec<LayerProgress>,
}

impl ProgressEvent {
    pub fn done(&self) -> bool {
        self.stage.is_final()
    }
}

/// Counters of one layer.
#[derive(Debug)]
struct LayerCounter {
    layer: usize,
    expected: u64,
    received: Counter,
}

/// Shared counters for one image.
#[derive(Debug)]
pub struct ImageProgress {
    pub name: String,
    expected: AtomicU64,
    received: Counter,
    stage: AtomicU8,
    layers: Mutex<Vec<LayerCounter>>,
    /// The [`Reporter`] sampling this image, woken when it becomes final
    /// (else the last event would wait for its next tick).
    reporter: Mutex<Option<std::thread::Thread>>,
}

impl ImageProgress {
    pub fn new(name: &str) -> ImageProgress {
        ImageProgress {
            name: name.to_string(),
            expected: AtomicU64::new(0),
            received: Arc::new(AtomicU64::new(0)),
            stage: AtomicU8::new(0),
            layers: Mutex::new(Vec::new()),
            reporter: Mutex::new(None),
        }
    }

    pub fn set_expected(&self, n: u64) {
        self.expected.store(n, Ordering::Relaxed);
    }

    pub fn add_received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes read, the layers' included.
    pub fn received(&self) -> u64 {
        let layers: u64 = self.layers.lock().map_or(0, |l| {
            l.iter().map(|c| c.received.load(Ordering::Relaxed)).sum()
        });
        self.received.load(Ordering::Relaxed) + layers
    }

    /// The byte counter, for readers that count as they go.
    pub fn counter(&self) -> Counter {
        self.received.clone()
    }

    pub fn set_stage(&self, s: Stage) {
        self.stage.store(s as u8, Ordering::Relaxed);
        if s.is_final()
            && let Ok(r) = self.reporter.lock()
            && let Some(t) = r.as_ref()
        {
            t.unpark();
        }
    }

    pub fn stage(&self) -> Stage {
        let v = self.stage.load(Ordering::Relaxed) as usize;
        STAGES.get(v).copied().unwrap_or(Stage::Failed)
    }

    /// Start counting layer `layer` of `expected` bytes: the counter a
    /// reader of that layer adds to. The layer is done once it is read.
    pub fn layer(&self, layer: usize, expected: u64) -> Counter {
        let received = Counter::default();
        if let Ok(mut l) = self.layers.lock() {
            l.push(LayerCounter {
                layer,
                expected,
                received: received.clone(),
            });
        }
        received
    }

    /// The current state, as position `index`.
    pub fn snapshot(&self, index: usize) -> ProgressEvent {
        let layers = self.layers.lock().map_or_else(
            |_| Vec::new(),
            |l| {
                let mut v: Vec<LayerProgress> = l
                    .iter()
                    .map(|c| {
                        let received = c.received.load(Ordering::Relaxed);
                        LayerProgress {
                            layer: c.layer,
                            expected: c.expected,
                            received,
                            done: received >= c.expected,
                        }
                    })
                    .collect();
                v.sort_by_key(|p| p.layer);
                v
            },
        );
        let received = self.received();
        // Readers that only count bytes move a waiting load on.
        let stage = match self.stage() {
            Stage::Waiting if received > 0 => Stage::Receiving,
            s => s,
        };
        ProgressEvent {
            index,
            name: self.name.clone(),
            stage,
            expected: self.expected.load(Ordering::Relaxed),
            received,
            layers,
        }
    }
}

/// Progress of several images loading together.
#[derive(Debug)]
pub struct Tracker {
    pub images: Vec<Arc<ImageProgress>>,
}

impl Tracker {
    pub fn new(names: &[String]) -> Arc<Tracker> {
        Arc::new(Tracker {
            images: names
                .iter()
                .map(|n| Arc::new(ImageProgress::new(n)))
                .collect(),
        })
    }

    /// The current state of every image.
    pub fn snapshot(&self) -> Vec<ProgressEvent> {
        self.images
            .iter()
            .enumerate()
            .map(|(i, p)| p.snapshot(i))
            .collect()
    }

    fn all_final(&self) -> bool {
        self.images.iter().all(|p| p.stage().is_final())
    }
}

/// Samples a [`Tracker`] on a thread and hands each changed event to a
/// sink, until every image is final, the sink returns `false` (nobody
/// listens), or the reporter is finished or dropped.
pub struct Reporter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const TICK: Duration = Duration::from_millis(150);

impl Reporter {
    pub fn start(
        tracker: Arc<Tracker>,
        mut sink: impl FnMut(ProgressEvent) -> bool + Send + 'static,
    ) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                for p in &tracker.images {
                    if let Ok(mut r) = p.reporter.lock() {
                        *r = Some(std::thread::current());
                    }
                }
                let mut last: Vec<Option<ProgressEvent>> = vec![None; tracker.images.len()];
                loop {
                    let end = stopping.load(Ordering::Relaxed) || tracker.all_final();
                    for ev in tracker.snapshot() {
                        let slot = &mut last[ev.index];
                        if slot.as_ref() != Some(&ev) {
                            if !sink(ev.clone()) {
                                return;
                            }
                            *slot = Some(ev);
                        }
                    }
                    if end {
                        return;
                    }
                    std::thread::park_timeout(TICK);
                }
            })
            .ok();
        Reporter { stop, thread }
    }

    /// Stop and wait for the last events to be handed over.
    pub fn finish(mut self) {
        self.stop_now();
    }

    /// Let the sampler run on its own until every load is final.
    pub fn detach(mut self) {
        self.thread = None;
    }

    fn stop_now(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn events_are_sent_on_change_and_at_the_end() {
        let tracker = Tracker::new(&["a".to_string()]);
        let (tx, rx) = mpsc::channel();
        let rep = Reporter::start(tracker.clone(), move |ev| tx.send(ev).is_ok());
        let p = &tracker.images[0];
        p.set_expected(10);
        p.set_stage(Stage::Receiving);
        let l = p.layer(0, 4);
        l.fetch_add(4, Ordering::Relaxed);
        p.add_received(6);
        p.set_stage(Stage::Done);
        rep.finish();
        let all: Vec<ProgressEvent> = rx.try_iter().collect();
        let last = all.last().expect("at least one event");
        assert!(last.done());
        assert_eq!((last.expected, last.received), (10, 10));
        assert_eq!(
            last.layers,
            vec![LayerProgress {
                layer: 0,
                expected: 4,
                received: 4,
                done: true
            }]
        );
    }

    #[test]
    fn the_sampler_ends_by_itself_when_every_image_is_final() {
        let tracker = Tracker::new(&["a".to_string(), "b".to_string()]);
        let (tx, rx) = mpsc::channel();
        let rep = Reporter::start(tracker.clone(), move |ev| tx.send(ev).is_ok());
        tracker.images[0].set_stage(Stage::Done);
        tracker.images[1].set_stage(Stage::Failed);
        // The channel closes once the sampler has seen both final.
        let stages: Vec<Stage> = rx.iter().map(|e| e.stage).collect();
        assert!(stages.contains(&Stage::Failed), "{stages:?}");
        drop(rep);
        assert_eq!(Stage::Analysing.as_str(), "analysing");
        assert_eq!(STAGES[Stage::Failed as usize], Stage::Failed);
    }
}
