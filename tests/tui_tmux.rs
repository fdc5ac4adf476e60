//! The UI in a real terminal: tmux runs this test binary's `tui_child`
//! (which calls `layerscope::tui::run`), the test sends keys and reads the
//! screen back with `capture-pane`. Skips with a message when tmux is absent.
//!
//! `scripts/tmux-check.sh` runs the same thing against real images and
//! saves the screens (used for `screenshots/`).
#![allow(clippy::unwrap_used)]

mod common;
mod tui_fixtures;

use std::process::Command;
use std::time::{Duration, Instant};

use layerscope::analysis::Analysis;
use layerscope::source::{LoadOptions, load_all};

/// Not a test on its own: the process tmux starts. `LAYERSCOPE_TUI_CHILD`
/// is `explore` or `compare` (fixtures) or `images` (the archives named in
/// `LAYERSCOPE_TUI_IMAGES`, space separated).
#[test]
fn tui_child() {
    let Ok(mode) = std::env::var("LAYERSCOPE_TUI_CHILD") else {
        return;
    };
    let analyses: Vec<Analysis> = match mode.as_str() {
        "explore" => vec![tui_fixtures::single()],
        "compare" => vec![tui_fixtures::single(), tui_fixtures::multi()],
        "three" => vec![
            tui_fixtures::single(),
            tui_fixtures::multi(),
            tui_fixtures::single(),
        ],
        _ => {
            let names: Vec<String> = std::env::var("LAYERSCOPE_TUI_IMAGES")
                .unwrap()
                .split_whitespace()
                .map(String::from)
                .collect();
            load_all(&names, &LoadOptions::default())
                .unwrap()
                .into_iter()
                .map(Analysis::new)
                .collect()
        }
    };
    layerscope::tui::run(analyses).unwrap();
}

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, env: &str, w: u16, h: u16) -> Tmux {
        let exe = std::env::current_exe().unwrap();
        let cmd = format!(
            "env {env} {} --exact tui_child --nocapture --test-threads=1",
            exe.display()
        );
        Tmux::run(name, &cmd, w, h)
    }

    /// Run `cmd` in a new tmux session; `EXIT=<status>` is printed after it.
    fn run(name: &str, cmd: &str, w: u16, h: u16) -> Tmux {
        let socket = format!("layerscope-{name}-{}", std::process::id());
        let cmd = format!("{cmd}; echo EXIT=$?; sleep 60");
        let ok = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &w.to_string(), "-y", &h.to_string(), &cmd])
            .env("TERM", "xterm-256color")
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Tmux { socket }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", k]);
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    fn wait_for(&self, what: &str) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn have_tmux() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: tmux is not installed (apt-get install -y tmux)");
    }
    ok
}

#[test]
fn compare_explore_filter_and_quit_in_a_real_terminal() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start("cmp", "LAYERSCOPE_TUI_CHILD=compare", 100, 30);
    t.wait_for("Layers A");
    t.keys(&["Enter"]);
    t.wait_for("Files /usr");
    t.keys(&["1"]);
    t.wait_for("Files after layer 5");
    t.keys(&["/", "g", "c", "c", "Enter"]);
    let s = t.wait_for("[gcc]");
    assert!(s.contains("cc1"), "{s}");
    assert!(!s.contains("main.go"), "filtered out: {s}");
    t.keys(&["?"]);
    t.wait_for("any key closes");
    // A key closes the help; Esc clears the filter, the next goes back.
    t.keys(&["x", "Escape"]);
    let s = t.wait_for("main.go");
    assert!(!s.contains("[gcc]"), "filter cleared: {s}");
    t.keys(&["Escape"]);
    t.wait_for("Files /usr");
    // Ctrl+C quits from anywhere and leaves the terminal as it was.
    t.keys(&["C-c"]);
    let s = t.wait_for("EXIT=0");
    assert!(!s.contains("Layers A"), "alternate screen left: {s}");
    let mode = t.tmux(&["display", "-p", "#{alternate_on}"]);
    assert_eq!(mode.trim(), "0");
}

/// The first minute at 80x24 in a real terminal (issue 12): the headline,
/// the layers and the top finding on the first screen; Esc clears a
/// filter and never quits; with three images, n switches the pair.
#[test]
fn the_first_minute_at_80x24() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start("first", "LAYERSCOPE_TUI_CHILD=explore", 80, 24);
    let s = t.wait_for("Files after layer 5");
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[1].starts_with(" residue 55.91 MB (74.5%)"), "{s}");
    for l in ["│ 1 ", "│ 2 ", "│ 3 "] {
        assert!(s.contains(l), "{l}: {s}");
    }
    assert!(s.contains("top: toolchain 55.90 MB"), "{s}");
    assert!(s.contains("ADD → /"), "{s}");
    t.keys(&["/", "*", ".", "a", "Enter"]);
    t.wait_for("[*.a]");
    t.keys(&["Escape"]);
    let s = t.wait_for("main.go");
    assert!(!s.contains("[*.a]"), "{s}");
    t.keys(&["Escape", "Escape"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let s = t.wait_for("Files after layer 5");
    assert!(!s.contains("EXIT="), "Esc never quits: {s}");
    t.keys(&["q"]);
    t.wait_for("EXIT=0");

    let t = Tmux::start("three", "LAYERSCOPE_TUI_CHILD=three", 80, 24);
    t.wait_for("pair 1 of 3");
    t.keys(&["n"]);
    let s = t.wait_for("pair 2 of 3");
    assert!(s.contains(" B app:single"), "{s}");
    assert!(s.contains(" findings (f): "), "{s}");
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
}

#[test]
fn no_color_in_a_real_terminal_at_80x24() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start("nocolor", "NO_COLOR=1 LAYERSCOPE_TUI_CHILD=explore", 80, 24);
    t.wait_for("Files after layer 5");
    let raw = t.tmux(&["capture-pane", "-p", "-e"]);
    for sgr in [
        "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[36m", "\x1b[90m", "38;",
    ] {
        assert!(!raw.contains(sgr), "colour {sgr:?} with NO_COLOR:\n{raw}");
    }
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
}

/// The binary itself: loads in the background, opens explore, the findings
/// list jumps to the files, q exits 0; a file that is not an image is shown
/// as failed and q exits 2 with the message on stderr; a reference to a
/// missing file is refused before the view opens (references are parsed
/// once, up front).
#[test]
fn the_binary_loads_in_the_background_and_reports_failures() {
    if !have_tmux() {
        return;
    }
    use common::{Image, Layer, content, legacy_archive};
    let dir = tempfile::tempdir().unwrap();
    let img = Image::simple(vec![
        Layer::new()
            .dir("usr", 0o755)
            .dir("usr/share", 0o755)
            .dir("usr/share/doc", 0o755)
            .file("usr/share/doc/README", content(1, 300_000), 0o644),
        Layer::new()
            .dir("app", 0o755)
            .file("app/server", content(2, 2_000_000), 0o755),
    ]);
    let tar = dir.path().join("app.tar");
    std::fs::write(&tar, legacy_archive(&[(&img, &["app:tmux"])])).unwrap();
    let bin = env!("CARGO_BIN_EXE_layerscope");
    let t = Tmux::run(
        "bin",
        &format!("env TERM=xterm-256color {bin} {}", tar.display()),
        100,
        30,
    );
    t.wait_for("Files after layer 2");
    t.keys(&["f"]);
    t.wait_for("fix:");
    t.keys(&["Enter"]);
    let s = t.wait_for("README");
    assert!(s.contains("Files after layer 1"), "{s}");
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
    drop(t);

    // A file that is not an image: the reference is fine, the background
    // load fails, and the view says so.
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, b"not a tar archive at all").unwrap();
    let t = Tmux::run(
        "fail",
        &format!("env TERM=xterm-256color {bin} {} 2>&1", bad.display()),
        100,
        30,
    );
    t.wait_for("failed:");
    t.keys(&["q"]);
    let s = t.wait_for("EXIT=2");
    assert!(s.contains("layerscope: "), "{s}");
    drop(t);

    // A reference to a missing file is refused before any view opens.
    let missing = dir.path().join("missing.tar");
    let t = Tmux::run(
        "missing",
        &format!("env TERM=xterm-256color {bin} {} 2>&1", missing.display()),
        100,
        30,
    );
    let s = t.wait_for("EXIT=2");
    assert!(s.contains("no such file or directory"), "{s}");
    assert!(!s.contains("failed:"), "{s}");
}

/// A panic in the interactive view (forced by the hidden debug switch once
/// the first frame is drawn) leaves the terminal as it was: the alternate
/// screen left, the cursor shown, raw mode off (`icanon` and `echo` back);
/// the panic is one readable line and the exit code is not 0.
#[test]
fn a_panic_in_the_view_restores_the_terminal() {
    if !have_tmux() {
        return;
    }
    use common::{Image, Layer, content, legacy_archive};
    let dir = tempfile::tempdir().unwrap();
    let img = Image::simple(vec![Layer::new().dir("app", 0o755).file(
        "app/server",
        content(3, 50_000),
        0o755,
    )]);
    let tar = dir.path().join("panic.tar");
    std::fs::write(&tar, legacy_archive(&[(&img, &["app:panic"])])).unwrap();
    let bin = env!("CARGO_BIN_EXE_layerscope");
    let t = Tmux::run(
        "panic",
        &format!(
            "env -u RUST_BACKTRACE TERM=xterm-256color LAYERSCOPE_DEBUG_PANIC=after-first-frame {bin} {}",
            tar.display()
        ),
        100,
        30,
    );
    t.wait_for("EXIT=");
    // Joined: the message is one line, however the pane wraps it.
    let s = t.tmux(&["capture-pane", "-p", "-J"]);
    let exit = s
        .lines()
        .find_map(|l| l.trim().strip_prefix("EXIT="))
        .unwrap()
        .to_string();
    assert_ne!(exit, "0", "{s}");
    let ours: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(ours.len(), 2, "one message line, then EXIT=: {s}");
    assert!(
        ours[0].starts_with("layerscope: internal error")
            && ours[0].contains("LAYERSCOPE_DEBUG_PANIC")
            && ours[0].contains("src/tui/mod.rs"),
        "{s}"
    );
    assert!(
        !s.contains("panicked at") && !s.contains("note: run with"),
        "{s}"
    );
    assert_eq!(t.tmux(&["display", "-p", "#{alternate_on}"]).trim(), "0");
    assert_eq!(t.tmux(&["display", "-p", "#{cursor_flag}"]).trim(), "1");
    let tty = t.tmux(&["display", "-p", "#{pane_tty}"]);
    let tty = tty.trim();
    let out = Command::new("stty")
        .arg("-a")
        .stdin(std::fs::File::open(tty).unwrap())
        .output()
        .unwrap();
    let modes = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = modes
        .split(|c: char| c.is_whitespace() || c == ';')
        .collect();
    for mode in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(words.contains(&mode), "{mode} is back on {tty}: {modes}");
    }
}
