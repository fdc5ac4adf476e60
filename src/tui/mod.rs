//! The terminal UI: explore one image, compare two.
//!
//! Keys become [`action::Action`]s in one place; [`app::App::step`] applies
//! them; [`app::App::draw`] renders state without I/O. The backend and the
//! key stream are injectable, so tests replay whole sessions on ratatui's
//! `TestBackend` (see `tests/tui.rs`).

pub mod action;
pub mod app;
pub mod compare;
pub mod explore;
pub mod load;
pub mod theme;
pub mod tree;
pub mod widgets;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::layout::Rect;

use crate::analysis::Analysis;
use crate::source::{LoadOptions, Reference};
pub use app::App;
pub use theme::Theme;

/// Environment variable naming a file that receives one line per handled
/// key: the action and the microseconds spent in step + draw.
pub const FRAME_LOG_ENV: &str = "LAYERSCOPE_FRAME_LOG";

/// Hidden debug switch: `after-first-frame` makes the UI panic once its
/// first frame is drawn (for testing that the terminal is restored).
pub const DEBUG_PANIC_ENV: &str = "LAYERSCOPE_DEBUG_PANIC";

/// Run the interactive UI on a terminal: one analysis explores it, two
/// compare them. The terminal is restored on return, on error and on panic.
pub fn run(analyses: Vec<Analysis>) -> anyhow::Result<()> {
    anyhow::ensure!(!analyses.is_empty(), "no image to show");
    let (_tx, rx) = mpsc::channel();
    event_loop(|area, theme| App::new(analyses, area, theme), &rx)
}

/// Load the named images in the background (one thread per image) and run
/// the UI meanwhile: progress per image until one is ready, then explore
/// (one image) or compare (two). Returns an error with the first load's
/// message when a load failed, after the user quits.
pub fn run_loading(
    images: Vec<Reference>,
    opts: LoadOptions,
    how: load::Analyse,
) -> anyhow::Result<()> {
    anyhow::ensure!(!images.is_empty(), "no image to show");
    let (tx, rx) = mpsc::channel();
    load::spawn(&images, &opts, &how, &tx);
    drop(tx);
    let names = images.into_iter().map(|r| r.given).collect();
    event_loop(|area, theme| App::loading(names, area, theme), &rx)
}

/// Set up the terminal, run the app until it quits, restore the terminal.
/// Loader reports arriving on `rx` are folded in between keys; the screen
/// is redrawn only when something changed.
fn event_loop(
    make: impl FnOnce(Rect, Theme) -> App,
    rx: &mpsc::Receiver<load::LoadEvent>,
) -> anyhow::Result<()> {
    let mut terminal = init_terminal().context("cannot set up the terminal")?;
    let _guard = RestoreGuard;
    let size = terminal.size()?;
    let mut app = make(Rect::new(0, 0, size.width, size.height), Theme::from_env());
    let mut log = FrameLog::from_env();
    let mut dirty = true;
    let mut idle_work = true;
    // A hidden debug switch, not in --help: LAYERSCOPE_DEBUG_PANIC=
    // after-first-frame panics once the first frame is on screen, so that a
    // test (tests/tui_tmux.rs) can check the terminal is restored.
    let debug_panic = std::env::var_os(DEBUG_PANIC_ENV).is_some_and(|v| v == "after-first-frame");
    loop {
        if dirty {
            terminal.draw(|f| app.draw(f))?;
            if let Some(l) = log.as_mut() {
                l.end_frame();
            }
            dirty = false;
            if debug_panic {
                panic!(
                    "{DEBUG_PANIC_ENV}=after-first-frame: a deliberate panic after the first frame"
                );
            }
        }
        if app.quit {
            break;
        }
        // Short waits while images load (their reports come on `rx`) or
        // while there is idle work; otherwise wait for the terminal.
        let wait = if app.loading_any() || idle_work {
            Duration::from_millis(40)
        } else {
            Duration::from_millis(250)
        };
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    if let Some(l) = log.as_mut() {
                        l.start(format!("{:?}", action::map_key(k, app.editing())));
                    }
                    app.handle_key(k);
                    dirty = true;
                    idle_work = true;
                }
                Event::Resize(w, h) => {
                    app.resize(Rect::new(0, 0, w, h));
                    dirty = true;
                }
                _ => {}
            }
            continue;
        }
        let now = Instant::now();
        while let Ok(ev) = rx.try_recv() {
            app.apply(ev, now);
            dirty = true;
            idle_work = true;
        }
        if idle_work && !dirty {
            idle_work = app.idle();
        }
    }
    if let Some(l) = log {
        l.write()?;
    }
    if let Some(e) = app.failure() {
        anyhow::bail!("{e}");
    }
    Ok(())
}

/// Is the terminal in the UI's modes (raw, alternate screen)?
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Raw mode and the alternate screen, with a panic hook that restores the
/// terminal before the panic is reported. (ratatui's own init does the
/// same, but its restore runs again on unwinding: leaving the alternate
/// screen twice moves the cursor back over the panic message.)
fn init_terminal() -> std::io::Result<ratatui::DefaultTerminal> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
    ratatui::crossterm::terminal::enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    ratatui::crossterm::execute!(
        std::io::stdout(),
        ratatui::crossterm::terminal::EnterAlternateScreen
    )?;
    ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))
}

/// Leave raw mode and the alternate screen and show the cursor, once.
fn restore_terminal() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = ratatui::crossterm::terminal::disable_raw_mode();
        let _ = ratatui::crossterm::execute!(
            std::io::stdout(),
            ratatui::crossterm::terminal::LeaveAlternateScreen,
            ratatui::crossterm::cursor::Show
        );
    }
}

/// Restores the terminal when `run` returns by any path.
struct RestoreGuard;

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Frame times, collected in memory and written on exit.
struct FrameLog {
    path: String,
    pending: Option<(String, Instant)>,
    lines: Vec<String>,
}

impl FrameLog {
    fn from_env() -> Option<FrameLog> {
        let path = std::env::var(FRAME_LOG_ENV)
            .ok()
            .filter(|p| !p.is_empty())?;
        Some(FrameLog {
            path,
            pending: None,
            lines: Vec::new(),
        })
    }

    fn start(&mut self, what: String) {
        self.pending = Some((what, Instant::now()));
    }

    fn end_frame(&mut self) {
        if let Some((what, t)) = self.pending.take() {
            self.lines
                .push(format!("{}\t{}", t.elapsed().as_micros(), what));
        }
    }

    fn write(self) -> anyhow::Result<()> {
        let mut f = std::fs::File::create(&self.path)
            .with_context(|| format!("{}: cannot write the frame log", self.path))?;
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

/// A size in a fixed 9-column field.
pub fn size_col(bytes: u64) -> String {
    format!("{:>9}", size(bytes))
}

pub use crate::output::{cut, size};
pub use widgets::bar;

/// The scroll offset that keeps `sel` inside a window of `h` rows.
pub fn fit_offset(sel: usize, offset: usize, h: usize) -> usize {
    let h = h.max(1);
    if sel < offset {
        sel
    } else if sel >= offset + h {
        sel + 1 - h
    } else {
        offset
    }
}
