//! The interactive view's side of loading: images load in the background
//! through the one pipeline (`crate::pipeline`), which reports over the
//! UI's event channel, so the screen is usable as soon as the first image
//! is ready and drawing never waits on I/O. Here: what the loading screen
//! keeps of those reports.

use std::time::Instant;

use crate::analysis::Analysis;
pub use crate::pipeline::{Analyse, Event as LoadEvent, spawn};
use crate::source::progress::{ProgressEvent, Stage};

/// An image still loading, as last reported.
#[derive(Debug, Clone)]
pub struct Loading {
    pub stage: Stage,
    pub received: u64,
    pub expected: u64,
    /// When the first byte was reported, and the rate since then (bytes/s).
    pub first_byte: Option<Instant>,
    pub rate: f64,
}

impl Loading {
    pub fn new() -> Loading {
        Loading {
            stage: Stage::Waiting,
            received: 0,
            expected: 0,
            first_byte: None,
            rate: 0.0,
        }
    }

    /// Fold in a report received at `now` (the rate is computed here, not
    /// while drawing, so drawing is a pure function of state).
    pub fn update(&mut self, ev: &ProgressEvent, now: Instant) {
        let (received, expected) = (ev.received, ev.expected);
        self.stage = ev.stage;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rate_and_fraction() {
        let ev = |received| ProgressEvent {
            index: 0,
            name: "a".into(),
            stage: Stage::Receiving,
            expected: 100,
            received,
            layers: Vec::new(),
        };
        let t0 = Instant::now();
        let mut l = Loading::new();
        l.update(&ev(10), t0);
        assert_eq!(l.rate, 0.0, "no rate from the first sample");
        l.update(&ev(60), t0 + Duration::from_secs(1));
        assert!((l.rate - 60.0).abs() < 1e-9);
        assert!((l.fraction() - 0.6).abs() < 1e-9);
        l.update(&ev(150), t0 + Duration::from_secs(2));
        assert!(l.fraction() < 1.0);
    }
}
