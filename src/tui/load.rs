//! Loading images in the background for the UI: one thread per image reads
//! and analyses it and reports over the UI's event channel, so the screen is
//! usable as soon as the first image is ready and drawing never waits on I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::analysis::Analysis;
use crate::analysis::classify::RuleSet;
use crate::source::progress::{Stage, Watch};
use crate::source::{ImageRef, LoadOptions, engine, load_saved};

/// What a loader thread reports.
#[derive(Debug)]
pub enum LoadEvent {
    /// Bytes read so far of about `expected` (0: unknown).
    Progress {
        index: usize,
        stage: LoadStage,
        received: u64,
        expected: u64,
    },
    Ready(usize, Box<Analysis>),
    Failed(usize, String),
}

/// Where one image's load is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStage {
    /// Opening the archive or asking the engine; no byte yet.
    Waiting,
    /// Layer bytes are being read and indexed.
    Reading,
    /// Read; classifying, computing waste and findings.
    Analysing,
}

impl LoadStage {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadStage::Waiting => "waiting",
            LoadStage::Reading => "reading",
            LoadStage::Analysing => "analysing",
        }
    }
}

/// An image still loading, as last reported.
#[derive(Debug, Clone)]
pub struct Loading {
    pub stage: LoadStage,
    pub received: u64,
    pub expected: u64,
    /// When the first byte was reported, and the rate since then (bytes/s).
    pub first_byte: Option<Instant>,
    pub rate: f64,
}

impl Loading {
    pub fn new() -> Loading {
        Loading {
            stage: LoadStage::Waiting,
            received: 0,
            expected: 0,
            first_byte: None,
            rate: 0.0,
        }
    }

    /// Fold in a report received at `now` (the rate is computed here, not
    /// while drawing, so drawing is a pure function of state).
    pub fn update(&mut self, stage: LoadStage, received: u64, expected: u64, now: Instant) {
        self.stage = stage;
        self.expected = expected.max(self.expected);
        if received > 0 && self.first_byte.is_none() {
            self.first_byte = Some(now);
        }
        if let Some(t) = self.first_byte {
            let secs = now.duration_since(t).as_secs_f64();
            if secs >= 0.5 && received > self.received {
                self.rate = received as f64 / secs;
            }
        }
        self.received = received.max(self.received);
    }

    /// Fraction done, below 1 until the image is ready.
    pub fn fraction(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            (self.received as f64 / self.expected as f64).min(0.99)
        }
    }
}

impl Default for Loading {
    fn default() -> Self {
        Loading::new()
    }
}

/// One image of the command line.
#[derive(Debug)]
pub enum Slot {
    Loading(Loading),
    Ready(Box<Analysis>),
    Failed(String),
}

/// How images are analysed once read.
#[derive(Debug, Clone)]
pub struct Analyse {
    pub rules: Arc<RuleSet>,
    pub base_ids: Option<Arc<Vec<String>>>,
}

/// Start one loader thread per image; each ends with `Ready` or `Failed`.
pub fn spawn(names: &[String], opts: &LoadOptions, how: &Analyse, tx: &mpsc::Sender<LoadEvent>) {
    for (index, name) in names.iter().enumerate() {
        let (name, opts, how, thread_tx) = (name.clone(), opts.clone(), how.clone(), tx.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("load-{index}"))
            .spawn(move || {
                let tx = thread_tx;
                let run = std::panic::AssertUnwindSafe(|| load_one(index, &name, &opts, &how, &tx));
                let ev = match std::panic::catch_unwind(run) {
                    Ok(Ok(a)) => LoadEvent::Ready(index, Box::new(a)),
                    Ok(Err(e)) => LoadEvent::Failed(index, e),
                    Err(_) => LoadEvent::Failed(index, format!("{name}: the loader crashed")),
                };
                let _ = tx.send(ev);
            });
        if let Err(e) = spawned {
            let _ = tx.send(LoadEvent::Failed(
                index,
                format!("cannot start a loader thread: {e}"),
            ));
        }
    }
}

const POLL: Duration = Duration::from_millis(250);

fn load_one(
    index: usize,
    name: &str,
    opts: &LoadOptions,
    how: &Analyse,
    tx: &mpsc::Sender<LoadEvent>,
) -> Result<Analysis, String> {
    let r = ImageRef::parse(name).map_err(|e| e.to_string())?;
    let progress = |stage, received, expected| {
        let _ = tx.send(LoadEvent::Progress {
            index,
            stage,
            received,
            expected,
        });
    };
    let image = match &r {
        ImageRef::Engine(n) => {
            let (ptx, prx) = mpsc::channel::<crate::source::progress::ProgressEvent>();
            let names = [n.clone()];
            std::thread::scope(|s| {
                // The engine's sampler reports on its own channel; forward it.
                s.spawn(|| {
                    for ev in prx {
                        let stage = match ev.stage {
                            Stage::Inspecting | Stage::Waiting => LoadStage::Waiting,
                            Stage::Receiving | Stage::Done | Stage::Failed => LoadStage::Reading,
                        };
                        progress(stage, ev.received, ev.expected);
                    }
                });
                engine::load_many_watched(&names, opts, &Watch::Events(ptx))
            })
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or_else(|| format!("{name}: not loaded"))?
        }
        _ => {
            let expected = saved_size(&r);
            let counter = Arc::new(AtomicU64::new(0));
            let opts = LoadOptions {
                progress: Some(counter.clone()),
                ..opts.clone()
            };
            progress(LoadStage::Waiting, 0, expected);
            std::thread::scope(|s| {
                let h = s.spawn(|| load_saved(&r, &opts));
                let mut last = Instant::now();
                while !h.is_finished() {
                    std::thread::sleep(Duration::from_millis(20));
                    if last.elapsed() >= POLL {
                        last = Instant::now();
                        let got = counter.load(Ordering::Relaxed);
                        let stage = if got == 0 {
                            LoadStage::Waiting
                        } else {
                            LoadStage::Reading
                        };
                        progress(stage, got, expected);
                    }
                }
                h.join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e))
                    .map_err(|e| e.to_string())
            })?
        }
    };
    let read: u64 = image.layers.iter().map(|l| l.size).sum();
    progress(LoadStage::Analysing, read, read);
    Ok(Analysis::with_options(
        image,
        &how.rules,
        how.base_ids.as_deref().map(|v| v.as_slice()),
    ))
}

/// Bytes a saved source will read: the archive's size, or the layout's blobs.
fn saved_size(r: &ImageRef) -> u64 {
    match r {
        ImageRef::DockerArchive(p, _) | ImageRef::OciArchive(p, _) => {
            std::fs::metadata(p).map_or(0, |m| m.len())
        }
        ImageRef::OciDir(p, _) => dir_size(&p.join("blobs"), 3),
        ImageRef::Engine(_) | ImageRef::Registry(_) => 0,
    }
}

fn dir_size(p: &std::path::Path, depth: usize) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() && depth > 0 => dir_size(&e.path(), depth - 1),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_fraction() {
        let t0 = Instant::now();
        let mut l = Loading::new();
        l.update(LoadStage::Reading, 10, 100, t0);
        assert_eq!(l.rate, 0.0, "no rate from the first sample");
        l.update(LoadStage::Reading, 60, 100, t0 + Duration::from_secs(1));
        assert!((l.rate - 60.0).abs() < 1e-9);
        assert!((l.fraction() - 0.6).abs() < 1e-9);
        l.update(LoadStage::Reading, 150, 100, t0 + Duration::from_secs(2));
        assert!(l.fraction() < 1.0);
    }
}
