//! The UI in a real terminal: tmux runs this test binary's `tui_child`
//! (which calls `layerscope::tui::run`), the test sends keys and reads the
//! screen back with `capture-pane`. Skips with a message when tmux is absent.
//!
//! `scripts/tmux-check.sh` runs the same thing against real images and
//! saves the screens (used for `screenshots/`).
#![allow(clippy::unwrap_used)]

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
        let socket = format!("layerscope-{name}-{}", std::process::id());
        let exe = std::env::current_exe().unwrap();
        let cmd = format!(
            "env {env} {} --exact tui_child --nocapture --test-threads=1; echo EXIT=$?; sleep 60",
            exe.display()
        );
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
    t.keys(&["x", "Escape"]);
    t.wait_for("Files /usr");
    // Ctrl+C quits from anywhere and leaves the terminal as it was.
    t.keys(&["C-c"]);
    let s = t.wait_for("EXIT=0");
    assert!(!s.contains("Layers A"), "alternate screen left: {s}");
    let mode = t.tmux(&["display", "-p", "#{alternate_on}"]);
    assert_eq!(mode.trim(), "0");
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
