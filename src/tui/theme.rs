//! Colours, or none when `NO_COLOR` is set: then marks and modifiers
//! (bold, reversed, crossed out) carry the meaning alone.

use ratatui::style::{Color, Modifier, Style};

use super::tree::Status;
use crate::analysis::classify::Category;

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to anything non-empty (no-color.org).
    pub fn from_env() -> Theme {
        let no = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme { color: !no }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn status(&self, s: Status) -> Style {
        match s {
            Status::Unchanged => Style::new(),
            Status::Added => self.fg(Color::Green),
            Status::Modified => self.fg(Color::Yellow),
            Status::Meta => self.fg(Color::Yellow).add_modifier(Modifier::DIM),
            Status::Removed => self.fg(Color::Red).add_modifier(Modifier::CROSSED_OUT),
        }
    }

    pub fn title(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            self.fg(Color::DarkGray)
        }
    }

    pub fn selected(&self, focused: bool) -> Style {
        if focused && self.color {
            Style::new()
                .bg(Color::Indexed(238))
                .add_modifier(Modifier::BOLD)
        } else if focused {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::UNDERLINED)
        }
    }

    pub fn dim(&self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub fn bar(&self) -> Style {
        self.fg(Color::Blue)
    }

    pub fn key(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// A short mark and a colour per category; runtime has none.
    pub fn category(&self, c: Category) -> (&'static str, Style) {
        let (mark, color) = match c {
            Category::Toolchain => ("tool", Color::Magenta),
            Category::PackageCache => ("pkgc", Color::Blue),
            Category::BuildCache => ("bldc", Color::Blue),
            Category::Source => ("src", Color::Cyan),
            Category::Docs => ("docs", Color::DarkGray),
            Category::Tests => ("test", Color::DarkGray),
            Category::LogsTemp => ("tmp", Color::DarkGray),
            Category::PackageManager => ("pm", Color::Yellow),
            Category::Runtime => ("", Color::Reset),
        };
        (mark, self.fg(color))
    }

    pub fn good(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn bad(&self) -> Style {
        self.fg(Color::Red)
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }

    /// Only in A / only in B marks in compare.
    pub fn only_a(&self) -> Style {
        self.fg(Color::Red)
    }

    pub fn only_b(&self) -> Style {
        self.fg(Color::Green)
    }
}
