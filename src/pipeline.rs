//! The one load path: references in, analyses out. Each image is read
//! (source), indexed and merged (index) and analysed (analysis) on a thread
//! of its own; progress and outcomes come back as [`Event`]s on a channel,
//! so a view can show progress and use each image as soon as it is ready.
//! The headless run ([`load`]) and the interactive view's background loader
//! (`tui::load`) both go through [`spawn`].

use std::sync::Arc;
use std::sync::mpsc;

use crate::analysis::Analysis;
use crate::analysis::classify::RuleSet;
use crate::source::progress::{ImageProgress, ProgressEvent, Reporter, Stage, Tracker};
use crate::source::{self, LoadOptions, Reference};

/// What the loader threads report.
#[derive(Debug)]
pub enum Event {
    /// Where an image's load is (also sent for the base image, at the index
    /// after the last image).
    Progress(ProgressEvent),
    Ready(usize, Box<Analysis>),
    Failed(usize, String),
}

/// How images are analysed once read.
#[derive(Debug, Clone)]
pub struct Analyse {
    pub rules: Arc<RuleSet>,
    /// The image the others were built FROM (`--base`): loaded alongside,
    /// not analysed; its layers mark theirs as base exactly.
    pub base: Option<Reference>,
}

/// The base's diff_ids (or why it failed to load), for each image's thread.
type BaseIds = Result<Arc<Vec<String>>, String>;

/// Start loading every image, one thread each; every image ends with
/// `Ready` or `Failed`, and the channel closes once all have (and the
/// progress sampler has sent its last event).
pub fn spawn(images: &[Reference], opts: &LoadOptions, how: &Analyse, tx: &mpsc::Sender<Event>) {
    let mut names: Vec<String> = images.iter().map(|r| r.given.clone()).collect();
    names.extend(how.base.iter().map(|b| b.given.clone()));
    let tracker = Tracker::new(&names);
    let progress_tx = tx.clone();
    // It ends by itself once every load is final.
    Reporter::start(tracker.clone(), move |ev| {
        progress_tx.send(Event::Progress(ev)).is_ok()
    })
    .detach();
    let mut bases: Vec<Option<mpsc::Receiver<BaseIds>>> = images.iter().map(|_| None).collect();
    if let Some(base) = &how.base {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            images.iter().map(|_| mpsc::channel::<BaseIds>()).unzip();
        bases = receivers.into_iter().map(Some).collect();
        let p = tracker.images[images.len()].clone();
        let (base, opts, fail_tx) = (base.clone(), opts.clone(), tx.clone());
        let started = start("load-base", move || {
            let r = source::load(&base.image, &opts, &p)
                .map(|img| Arc::new(img.layers.iter().map(|l| l.diff_id.clone()).collect()))
                .map_err(|e| e.to_string());
            p.set_stage(if r.is_ok() {
                Stage::Done
            } else {
                Stage::Failed
            });
            for s in &senders {
                let _ = s.send(r.clone());
            }
        });
        if let Err(e) = started {
            let _ = fail_tx.send(Event::Failed(0, e));
        }
    }
    for ((index, r), base) in images.iter().enumerate().zip(bases) {
        let p = tracker.images[index].clone();
        let (r, opts, rules, tx) = (r.clone(), opts.clone(), how.rules.clone(), tx.clone());
        let thread_tx = tx.clone();
        let started = start(&format!("load-{index}"), move || {
            let run = std::panic::AssertUnwindSafe(|| load_one(&r, &opts, &rules, base, &p));
            let ev = match std::panic::catch_unwind(run) {
                Ok(Ok(a)) => Event::Ready(index, Box::new(a)),
                Ok(Err(e)) => Event::Failed(index, e),
                Err(_) => Event::Failed(index, format!("{}: the loader crashed", r.given)),
            };
            p.set_stage(match ev {
                Event::Ready(..) => Stage::Done,
                _ => Stage::Failed,
            });
            let _ = thread_tx.send(ev);
        });
        if let Err(e) = started {
            tracker.images[index].set_stage(Stage::Failed);
            let _ = tx.send(Event::Failed(index, e));
        }
    }
}

fn start(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map(drop)
        .map_err(|e| format!("cannot start a loader thread: {e}"))
}

/// Read, index and analyse one image.
fn load_one(
    r: &Reference,
    opts: &LoadOptions,
    rules: &RuleSet,
    base: Option<mpsc::Receiver<BaseIds>>,
    p: &Arc<ImageProgress>,
) -> Result<Analysis, String> {
    let image = source::load(&r.image, opts, p).map_err(|e| e.to_string())?;
    let base_ids = match base {
        None => None,
        Some(rx) => Some(
            rx.recv()
                .unwrap_or_else(|_| Err("the base image's loader crashed".into()))?,
        ),
    };
    p.set_stage(Stage::Analysing);
    Ok(Analysis::with_options(
        image,
        rules,
        base_ids.as_deref().map(|v| v.as_slice()),
    ))
}

/// Who shows a headless run's progress (the stderr bars).
pub trait ProgressView {
    fn event(&mut self, ev: ProgressEvent);
    /// Called a few times a second, events or not.
    fn tick(&mut self) {}
}

impl<V: ProgressView> ProgressView for Option<V> {
    fn event(&mut self, ev: ProgressEvent) {
        if let Some(v) = self {
            v.event(ev);
        }
    }

    fn tick(&mut self) {
        if let Some(v) = self {
            v.tick();
        }
    }
}

/// Shows nothing.
impl ProgressView for () {
    fn event(&mut self, _: ProgressEvent) {}
}

/// Load and analyse every image (the headless run), showing progress on
/// `view`; the first failure ends it.
pub fn load(
    images: &[Reference],
    opts: &LoadOptions,
    how: &Analyse,
    view: &mut dyn ProgressView,
) -> Result<Vec<Analysis>, String> {
    let (tx, rx) = mpsc::channel();
    spawn(images, opts, how, &tx);
    drop(tx);
    let mut ready: Vec<Option<Analysis>> = images.iter().map(|_| None).collect();
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(150)) {
            Ok(Event::Progress(p)) => view.event(p),
            Ok(Event::Ready(i, a)) => ready[i] = Some(*a),
            Ok(Event::Failed(_, e)) => return Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => view.tick(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    ready
        .into_iter()
        .zip(images)
        .map(|(a, r)| a.ok_or_else(|| format!("{}: not loaded", r.given)))
        .collect()
}
