//! Keys become [`Action`]s here, and only here (csvlens' `Control`).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Everything a user can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Close the overlay / filter / drill level, or return to compare.
    Back,
    Help,
    NextPane,
    PrevPane,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// Collapse, or go to the parent.
    Left,
    /// Expand, or drill in.
    Right,
    Enter,
    ToggleCollapse,
    CollapseAll,
    ExpandAll,
    ToggleAdded,
    ToggleRemoved,
    ToggleModified,
    ToggleUnmodified,
    /// Layer's own changes vs. the file system after it.
    ToggleMode,
    ToggleSort,
    StartFilter,
    /// Focus the findings list (again: back to the files).
    Findings,
    /// Open image A's / B's explore view from compare.
    OpenA,
    OpenB,
    /// Compare the next / previous pair of images (three or more).
    NextPair,
    PrevPair,
    // While the filter line is being edited:
    Input(char),
    Backspace,
    ClearInput,
}

/// The key help, one line per binding, shown by `?`.
pub const KEY_HELP: &[(&str, &str)] = &[
    ("Tab / Shift+Tab", "next / previous pane"),
    ("↑↓ j k", "move"),
    ("PgUp PgDn Home End", "page, top, bottom"),
    (
        "← h / → l",
        "collapse, parent, up a level / expand, drill in",
    ),
    ("Space", "collapse / expand directory"),
    ("- / + (Ctrl+Space)", "collapse all / expand all"),
    ("Ctrl+L  v", "layer's own changes / file system after it"),
    ("s", "sort by size / name"),
    ("Ctrl+A / Ctrl+R", "added / removed files on or off"),
    ("Ctrl+M / Ctrl+U", "modified / unmodified files on or off"),
    ("", "  compare: added only in B, removed only in A"),
    ("Ctrl+F  /", "filter: glob, regex, >10M, @toolchain"),
    ("f", "findings list / back to the files"),
    (
        "Enter",
        "finding: show in tree; dir: drill in; layer: explore",
    ),
    ("1 / 2", "explore image A / B (compare)"),
    ("n / N", "next / previous pair of images (compare)"),
    ("Esc", "clear the filter, else close or go back"),
    ("q  Ctrl+C", "quit"),
];

/// Map a key to an action. `editing` is true while the filter line has focus.
pub fn map_key(key: KeyEvent, editing: bool) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if editing {
        return match key.code {
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Enter => Some(Action::Enter),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Char('u') if ctrl => Some(Action::ClearInput),
            KeyCode::Char(c) if !ctrl => Some(Action::Input(c)),
            KeyCode::Up => Some(Action::Up),
            KeyCode::Down => Some(Action::Down),
            _ => None,
        };
    }
    if ctrl {
        return match key.code {
            KeyCode::Char('a') => Some(Action::ToggleAdded),
            KeyCode::Char('r') => Some(Action::ToggleRemoved),
            KeyCode::Char('m') => Some(Action::ToggleModified),
            KeyCode::Char('u') => Some(Action::ToggleUnmodified),
            KeyCode::Char('f') => Some(Action::StartFilter),
            KeyCode::Char('l') => Some(Action::ToggleMode),
            KeyCode::Char(' ') => Some(Action::ExpandAll),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Tab => Action::NextPane,
        KeyCode::BackTab => Action::PrevPane,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Home,
        KeyCode::End | KeyCode::Char('G') => Action::End,
        KeyCode::Left | KeyCode::Char('h') => Action::Left,
        KeyCode::Right | KeyCode::Char('l') => Action::Right,
        KeyCode::Enter => Action::Enter,
        KeyCode::Char(' ') => Action::ToggleCollapse,
        KeyCode::Char('-') => Action::CollapseAll,
        KeyCode::Char('+') | KeyCode::Char('=') => Action::ExpandAll,
        KeyCode::Char('v') => Action::ToggleMode,
        KeyCode::Char('s') => Action::ToggleSort,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char('f') => Action::Findings,
        KeyCode::Char('1') => Action::OpenA,
        KeyCode::Char('2') => Action::OpenB,
        KeyCode::Char('n') => Action::NextPair,
        KeyCode::Char('N') => Action::PrevPair,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn dive_keys() {
        let n = KeyModifiers::NONE;
        let c = KeyModifiers::CONTROL;
        assert_eq!(map_key(k(KeyCode::Tab, n), false), Some(Action::NextPane));
        assert_eq!(map_key(k(KeyCode::Char('j'), n), false), Some(Action::Down));
        assert_eq!(
            map_key(k(KeyCode::Char('a'), c), false),
            Some(Action::ToggleAdded)
        );
        assert_eq!(
            map_key(k(KeyCode::Char('f'), c), false),
            Some(Action::StartFilter)
        );
        assert_eq!(map_key(k(KeyCode::Char('c'), c), true), Some(Action::Quit));
        assert_eq!(
            map_key(k(KeyCode::Char('q'), n), true),
            Some(Action::Input('q'))
        );
    }
}
