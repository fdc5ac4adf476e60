//! The pieces explore and compare both draw with: the filter line (its
//! state, its keys, the footer it shows), list panes (a bordered pane of
//! rows that scroll with a selection), layer rows, and proportional bars.

use std::ops::Deref;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::action::Action;
use super::theme::Theme;
use super::tree::Filter;
use super::{cut, size, size_col};
use crate::analysis::Analysis;
use crate::image::{Layer, layer_name};
use crate::output::percent;

/// The line being typed into the filter, and the filter before it.
#[derive(Debug, Clone)]
pub struct Editing {
    pub input: String,
    pub before: String,
}

/// What a key did to the filter line.
pub enum Edit {
    /// The text changed: apply it as the user types.
    Changed(String),
    /// Esc: restore the filter from before.
    Cancelled(String),
    /// Enter: keep it.
    Done,
    /// Not a key for the line.
    Other,
}

impl Editing {
    pub fn step(&mut self, action: Action) -> Edit {
        match action {
            Action::Input(c) => self.input.push(c),
            Action::Backspace => {
                self.input.pop();
            }
            Action::ClearInput => self.input.clear(),
            Action::Back => return Edit::Cancelled(self.before.clone()),
            Action::Enter => return Edit::Done,
            _ => return Edit::Other,
        }
        Edit::Changed(self.input.clone())
    }
}

/// A view's filter: the filter in force, the line being edited, and why
/// the last text typed was refused. Reads as the [`Filter`] itself.
#[derive(Debug, Clone, Default)]
pub struct FilterLine {
    pub filter: Filter,
    /// Why the text typed last does not parse (the filter before it stays).
    pub error: Option<String>,
    editing: Option<Editing>,
}

impl Deref for FilterLine {
    type Target = Filter;
    fn deref(&self) -> &Filter {
        &self.filter
    }
}

/// What a key did to a view's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKey {
    /// The filter changed: refilter.
    Changed,
    /// Enter ended the editing; the filter stays.
    Done,
    /// Used without changing the filter (the text did not parse).
    Used,
    /// Not a key for the filter.
    Other,
}

impl FilterLine {
    pub fn is_editing(&self) -> bool {
        self.editing.is_some()
    }

    /// Start editing the line, from the filter in force.
    pub fn start(&mut self) {
        self.editing = Some(Editing {
            input: self.filter.text.clone(),
            before: self.filter.text.clone(),
        });
    }

    /// Apply a filter line as typed; an error keeps the previous filter.
    /// Returns whether the filter changed.
    pub fn set_text(&mut self, text: &str) -> bool {
        match self.filter.set_text(text) {
            Ok(()) => {
                self.error = None;
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// Back to no filter at all.
    pub fn clear(&mut self) {
        self.filter = Filter::default();
        self.error = None;
    }

    /// A key while editing: typing applies as it goes, Esc restores the
    /// filter from before, Enter keeps it.
    pub fn step_editing(&mut self, action: Action) -> FilterKey {
        let Some(ed) = self.editing.as_mut() else {
            return FilterKey::Other;
        };
        let changed = match ed.step(action) {
            Edit::Changed(text) => self.set_text(&text),
            Edit::Cancelled(before) => {
                self.editing = None;
                self.set_text(&before)
            }
            Edit::Done => {
                self.editing = None;
                return FilterKey::Done;
            }
            Edit::Other => return FilterKey::Other,
        };
        if changed {
            FilterKey::Changed
        } else {
            FilterKey::Used
        }
    }

    /// The change-kind toggles (added, removed, modified, unmodified).
    /// Returns whether `action` was one.
    pub fn toggle(&mut self, action: Action) -> bool {
        let f = &mut self.filter;
        let flag = match action {
            Action::ToggleAdded => &mut f.added,
            Action::ToggleRemoved => &mut f.removed,
            Action::ToggleModified => &mut f.modified,
            Action::ToggleUnmodified => &mut f.unmodified,
            _ => return false,
        };
        *flag = !*flag;
        true
    }

    /// A file pane's bottom-right note of the change kinds the toggles hide.
    pub fn hiding<'a>(&self, block: Block<'a>, theme: &Theme) -> Block<'a> {
        let hidden = self.filter.hidden();
        if hidden.is_empty() {
            return block;
        }
        block.title_bottom(
            Line::from(Span::styled(
                format!(" hiding {} ", hidden.join(",")),
                theme.warn(),
            ))
            .right_aligned(),
        )
    }

    /// The footer: the line being edited, else the view's keys and the
    /// filter in force.
    pub fn footer<'a>(&self, keys: &[(&str, &str)], theme: &Theme) -> Line<'a> {
        if let Some(ed) = &self.editing {
            return self.edited(ed, theme);
        }
        let mut spans = Vec::new();
        for (k, d) in keys {
            spans.push(Span::styled(format!(" {k}"), theme.key()));
            spans.push(Span::raw(format!(" {d}")));
        }
        if !self.filter.text.is_empty() {
            spans.push(Span::styled(
                format!("  [{}]", cut(&self.filter.text, 20)),
                theme.warn(),
            ));
        }
        Line::from(spans)
    }

    /// The line being edited, with the error or a hint.
    fn edited<'a>(&self, ed: &Editing, theme: &Theme) -> Line<'a> {
        let mut spans = vec![
            Span::styled(" Filter: ", theme.key()),
            Span::raw(ed.input.clone()),
            Span::styled("█", theme.dim()),
        ];
        if let Some(e) = &self.error {
            spans.push(Span::styled(format!("  {}", cut(e, 40)), theme.bad()));
        } else {
            spans.push(Span::styled(
                "  glob, regex, >10M, @tool · Enter",
                theme.dim(),
            ));
        }
        Line::from(spans)
    }
}

/// A bordered pane with a title, its border lit when it has the focus.
pub fn pane<'a>(title: impl Into<String>, focused: bool, theme: &Theme) -> Block<'a> {
    Block::bordered()
        .title(Span::styled(title.into(), theme.title()))
        .border_style(theme.border(focused))
}

/// Draw a pane's block; returns where its content goes.
pub fn draw_pane(f: &mut Frame, area: Rect, block: Block) -> Rect {
    let inner = block.inner(area);
    f.render_widget(block, area);
    inner
}

/// Where a list is scrolled to and which row is selected.
#[derive(Debug, Clone, Copy)]
pub struct Scroll {
    pub selected: usize,
    pub offset: usize,
    pub focused: bool,
}

/// A list's rows in `area`: the items from the scroll offset, as many as
/// fit, the selected one highlighted. `line` draws item `i`.
pub fn draw_rows<'a, T>(
    f: &mut Frame,
    area: Rect,
    items: impl Iterator<Item = T>,
    at: Scroll,
    theme: &Theme,
    mut line: impl FnMut(usize, T) -> Line<'a>,
) {
    let lines: Vec<Line> = items
        .enumerate()
        .skip(at.offset)
        .take(area.height as usize)
        .map(|(i, x)| {
            let l = line(i, x);
            if i == at.selected {
                l.style(theme.selected(at.focused))
            } else {
                l
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), area);
}

/// One layer in a layer list, `w` cells wide: its number, a mark (`=`
/// for a layer the other image has too), its size, a bar of `bar` cells
/// for its share of the largest layer when asked, `base` for a layer of
/// the base image, and what it did ([`layer_name`]: no content hashes).
#[allow(clippy::too_many_arguments)]
pub fn layer_line<'a>(
    i: usize,
    l: &Layer,
    mark: char,
    base: bool,
    bar: Option<(f64, usize)>,
    w: usize,
    style: Style,
    theme: &Theme,
) -> Line<'a> {
    let prefix = format!("{:>2}{mark}{} ", i + 1, size_col(l.size));
    let bar_w = bar.map_or(0, |(_, bw)| bw + 1);
    let base_w = if base { 5 } else { 0 };
    let rest = w.saturating_sub(prefix.chars().count() + bar_w + base_w);
    let mut spans = vec![Span::styled(prefix, style)];
    if let Some((frac, bw)) = bar {
        spans.push(Span::styled(self::bar(frac, bw), theme.bar()));
        spans.push(Span::raw(" "));
    }
    if base {
        spans.push(Span::styled("base ", theme.dim()));
    }
    spans.push(Span::styled(cut(&layer_name(&l.instruction), rest), style));
    Line::from(spans)
}

/// A proportional bar of `width` cells with eighth-block resolution.
pub fn bar(frac: f64, width: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (frac.clamp(0.0, 1.0) * (width * 8) as f64).round() as usize;
    let mut s: String = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) && s.chars().count() < width {
        s.push(PARTS[eighths % 8]);
    }
    let n = s.chars().count();
    s.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    s
}

/// Move a list's selection for the navigation keys (up, down, page up and
/// down by `page` rows, home, end) among `len` rows; false for other keys.
pub fn navigate(selected: &mut usize, action: Action, len: usize, page: usize) -> bool {
    let last = len.saturating_sub(1);
    let s = *selected;
    *selected = match action {
        Action::Up => s.saturating_sub(1),
        Action::Down => (s + 1).min(last),
        Action::PageUp => s.saturating_sub(page),
        Action::PageDown => (s + page).min(last),
        Action::Home => 0,
        Action::End => last,
        _ => return false,
    };
    true
}

/// The headline every view leads with (issue 18): the build residue in
/// bytes and as a share, and the two projections (the same base without
/// it; the app's own files, the floor on scratch or distroless), in the
/// longest wording that fits `w` cells.
pub fn headline<'a>(a: &Analysis, w: usize, theme: &Theme) -> Vec<Span<'a>> {
    let app = size(a.app_bytes);
    let variants: Vec<Vec<(String, Style)>> = if a.residue_bytes == 0 {
        vec![
            vec![
                ("build residue: none found".into(), theme.good()),
                (format!(" \u{b7} app's own files ~{app}"), Style::new()),
            ],
            vec![
                ("no residue".into(), theme.good()),
                (format!(" \u{b7} app ~{app}"), Style::new()),
            ],
            vec![("no residue".into(), theme.good())],
        ]
    } else {
        let res = (
            format!("{} ({})", size(a.residue_bytes), percent(a.residue_share())),
            theme.warn().add_modifier(ratatui::style::Modifier::BOLD),
        );
        let proj = a.projected_runtime_bytes.map(size).unwrap_or_default();
        let plain = |s: String| (s, Style::new());
        vec![
            vec![
                plain("build residue ".into()),
                res.clone(),
                plain(format!(" \u{b7} same base without it ~{proj}")),
                plain(format!(" \u{b7} app's own files ~{app}")),
            ],
            vec![
                plain("residue ".into()),
                res.clone(),
                plain(format!(" \u{b7} without it ~{proj}")),
                plain(format!(" \u{b7} app ~{app}")),
            ],
            vec![
                plain("residue ".into()),
                res.clone(),
                plain(format!(" \u{2192} ~{proj} \u{b7} app {app}")),
            ],
            vec![plain("residue ".into()), res],
        ]
    };
    let len = |v: &[(String, Style)]| v.iter().map(|(s, _)| s.chars().count()).sum::<usize>();
    let n = variants.len();
    let pick = variants.iter().position(|v| len(v) <= w).unwrap_or(n - 1);
    let mut left = w;
    variants[pick]
        .iter()
        .map(|(s, st)| {
            let t = cut(s, left);
            left = left.saturating_sub(t.chars().count());
            Span::styled(t, *st)
        })
        .collect()
}
