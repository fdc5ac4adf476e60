//! The stderr view of loading progress in headless runs: one bar per
//! image, and one per layer while a source reads layers separately
//! (indicatif's MultiProgress). Only on a terminal; short loads finish
//! before any bar is drawn.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::pipeline::ProgressView;
use crate::source::progress::{ProgressEvent, Stage};

/// Loads shorter than this show no bar at all.
const DELAY: Duration = Duration::from_millis(300);

/// The rate and ETA (`{msg}`) are computed here, from when a bar first
/// saw bytes: indicatif's own estimate counts the bytes read before the
/// bar was drawn as if read in an instant.
const BYTES: &str = "{prefix} [{bar:16}] {decimal_bytes} of {decimal_total_bytes} {msg}";

pub struct Bars {
    multi: MultiProgress,
    started: Instant,
    /// The latest event of each image, drawn once `DELAY` has passed.
    latest: Vec<Option<ProgressEvent>>,
    images: HashMap<usize, ProgressBar>,
    layers: HashMap<(usize, usize), ProgressBar>,
    /// When each bar (image, layer) first saw bytes, and how many.
    origins: HashMap<(usize, Option<usize>), (Instant, u64)>,
}

impl Bars {
    /// Bars on stderr; `None` when stderr is not a terminal.
    pub fn stderr() -> Option<Bars> {
        std::io::stderr()
            .is_terminal()
            .then(|| Bars::to(ProgressDrawTarget::stderr()))
    }

    /// Bars drawn to `target` (tests use a hidden one).
    pub fn to(target: ProgressDrawTarget) -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(target),
            started: Instant::now(),
            latest: Vec::new(),
            images: HashMap::new(),
            layers: HashMap::new(),
            origins: HashMap::new(),
        }
    }

    /// Fold in an event.
    pub fn show(&mut self, ev: ProgressEvent) {
        let i = ev.index;
        if self.latest.len() <= i {
            self.latest.resize(i + 1, None);
        }
        self.latest[i] = Some(ev);
        self.tick();
    }

    /// Draw what changed (call it now and then: the first bars appear
    /// only after `DELAY`).
    pub fn tick(&mut self) {
        if self.started.elapsed() < DELAY {
            return;
        }
        for ev in std::mem::take(&mut self.latest).into_iter().flatten() {
            self.draw(&ev);
        }
    }

    /// How many bars are up (images and layers).
    pub fn shown(&self) -> usize {
        self.images.len() + self.layers.len()
    }

    fn draw(&mut self, ev: &ProgressEvent) {
        let i = ev.index;
        if ev.stage.is_final() {
            if let Some(b) = self.images.remove(&i) {
                b.finish_and_clear();
            }
            self.origins.retain(|&(img, _), _| img != i);
            self.layers.retain(|&(img, _), b| {
                if img == i {
                    b.finish_and_clear();
                }
                img != i
            });
            return;
        }
        let multi = &self.multi;
        let bar = self
            .images
            .entry(i)
            .or_insert_with(|| multi.add(new_bar(ev.name.clone(), ev.expected, ev.received)));
        if ev.received == 0 && ev.stage != Stage::Analysing {
            bar.set_style(style("{prefix}: waiting for the first byte ({elapsed})"));
            bar.enable_steady_tick(Duration::from_millis(500));
            return;
        }
        bar.disable_steady_tick();
        if ev.stage == Stage::Analysing {
            bar.set_style(style("{prefix}: analysing"));
        } else {
            bar.set_style(style(BYTES));
            set(bar, &mut self.origins, (i, None), ev.expected, ev.received);
        }
        let image_bar = bar.clone();
        for l in &ev.layers {
            let key = (i, l.layer);
            if l.done {
                if let Some(b) = self.layers.remove(&key) {
                    b.finish_and_clear();
                }
                continue;
            }
            let b = self.layers.entry(key).or_insert_with(|| {
                let name = format!("  layer {}", l.layer + 1);
                multi.insert_after(&image_bar, new_bar(name, l.expected, l.received))
            });
            set(
                b,
                &mut self.origins,
                (i, Some(l.layer)),
                l.expected,
                l.received,
            );
        }
    }

    /// Take every bar off the screen.
    pub fn finish(self) {
        for b in self.images.values().chain(self.layers.values()) {
            b.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

impl ProgressView for Bars {
    fn event(&mut self, ev: ProgressEvent) {
        self.show(ev);
    }

    fn tick(&mut self) {
        Bars::tick(self);
    }
}

fn new_bar(prefix: String, expected: u64, received: u64) -> ProgressBar {
    ProgressBar::new(expected.max(received))
        .with_style(style(BYTES))
        .with_prefix(prefix)
        .with_position(received)
}

/// Move a bar to `received` of `expected`, with the rate since it first
/// saw bytes and the time left at that rate.
fn set(
    bar: &ProgressBar,
    origins: &mut HashMap<(usize, Option<usize>), (Instant, u64)>,
    key: (usize, Option<usize>),
    expected: u64,
    received: u64,
) {
    let total = expected.max(received);
    bar.set_length(total);
    bar.set_position(received);
    let (t0, from) = *origins
        .entry(key)
        .or_insert_with(|| (Instant::now(), received));
    bar.set_message(rate_and_eta(
        received - from.min(received),
        t0.elapsed(),
        total - received,
    ));
}

/// `12.5 MB/s ETA 4s`; `--` while the rate is not known yet.
fn rate_and_eta(bytes: u64, over: Duration, remaining: u64) -> String {
    let secs = over.as_secs_f64();
    // The first half second of a rate is noise.
    let rate = if secs >= 0.5 {
        bytes as f64 / secs
    } else {
        0.0
    };
    if rate < 1.0 {
        return "--/s ETA --".into();
    }
    let eta = (remaining as f64 / rate).ceil() as u64;
    format!("{}/s ETA {eta}s", crate::units::size(rate as u64))
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::progress::LayerProgress;

    fn ev(stage: Stage, received: u64, layers: Vec<LayerProgress>) -> ProgressEvent {
        ProgressEvent {
            index: 0,
            name: "app".into(),
            stage,
            expected: 100,
            received,
            layers,
        }
    }

    #[test]
    fn a_bar_per_image_and_per_layer_in_flight_none_when_done() {
        let mut bars = Bars::to(ProgressDrawTarget::hidden());
        bars.show(ev(Stage::Receiving, 10, Vec::new()));
        assert_eq!(bars.shown(), 0, "nothing before the delay");
        bars.started -= DELAY;
        bars.tick();
        assert_eq!(bars.shown(), 1);
        let layer = |layer, done| LayerProgress {
            layer,
            expected: 50,
            received: 20,
            done,
        };
        bars.show(ev(
            Stage::Receiving,
            40,
            vec![layer(0, false), layer(1, false)],
        ));
        assert_eq!(bars.shown(), 3);
        bars.show(ev(
            Stage::Receiving,
            70,
            vec![layer(0, true), layer(1, false)],
        ));
        assert_eq!(bars.shown(), 2);
        assert_eq!(bars.images[&0].position(), 70);
        bars.show(ev(Stage::Done, 100, Vec::new()));
        assert_eq!(bars.shown(), 0);
        bars.finish();
    }

    #[test]
    fn rate_and_eta_from_the_first_bytes_seen() {
        assert_eq!(
            rate_and_eta(25_000_000, Duration::from_secs(1), 75_000_000),
            "25 MB/s ETA 3s"
        );
        assert_eq!(
            rate_and_eta(25_000_000, Duration::from_millis(100), 1),
            "--/s ETA --"
        );
    }
}
