//! Explore one image: layers, layer details, image summary, file tree.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::action::Action;
use super::theme::Theme;
use super::tree::{Filter, Replay, SortBy, SortedKids, Status, TreeMode, TreeModel};
use super::{bar, cut, fit_offset, size, size_col};
use crate::analysis::Analysis;
use crate::analysis::classify::Category;
use crate::image::short_id;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Layers,
    Tree,
}

/// The line being typed into the filter, and the filter before it.
#[derive(Debug, Clone)]
pub struct Editing {
    pub input: String,
    pub before: String,
}

/// Where each part of the explore screen goes.
pub struct Areas {
    pub header: Rect,
    pub layers: Rect,
    pub details: Rect,
    pub summary: Rect,
    pub tree: Rect,
    pub footer: Rect,
}

pub fn areas(area: Rect, layer_count: usize) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let left_w = (body.width * 9 / 20).clamp(20, 72);
    let [left, tree] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(0)]).areas(body);
    let details_h = 7u16;
    let summary_h = 7u16;
    let layers_max = left.height.saturating_sub(details_h + summary_h).max(3);
    let layers_h = (layer_count as u16 + 2).min(layers_max);
    let [layers, details, summary] = Layout::vertical([
        Constraint::Length(layers_h),
        Constraint::Length(details_h),
        Constraint::Min(0),
    ])
    .areas(left);
    Areas {
        header,
        layers,
        details,
        summary,
        tree,
        footer,
    }
}

/// State of one explore screen. Holds indices only; the image is passed in.
#[derive(Debug)]
pub struct Explore {
    pub image: usize,
    pub focus: Pane,
    pub layer: usize,
    pub layer_offset: usize,
    pub mode: TreeMode,
    pub sort: SortBy,
    pub filter: Filter,
    pub filter_error: Option<String>,
    pub editing: Option<Editing>,
    replay: Replay,
    kids: SortedKids,
    pub model: TreeModel,
    keep: Vec<bool>,
    /// Open directories, by node id.
    pub open: Vec<bool>,
    /// Visible rows (indices into `model.rows`).
    pub visible: Vec<u32>,
    pub selected: usize,
    pub offset: usize,
}

impl Explore {
    /// Start on the last layer, whole file system, top-level dirs open.
    pub fn new(image: usize, a: &Analysis) -> Explore {
        let layer = a.image.layers.len().saturating_sub(1);
        let mut e = Explore {
            image,
            focus: Pane::Layers,
            layer,
            layer_offset: 0,
            mode: TreeMode::Aggregated,
            sort: SortBy::Size,
            filter: Filter::default(),
            filter_error: None,
            editing: None,
            replay: Replay::default(),
            kids: SortedKids::new(&a.image),
            model: TreeModel::default(),
            keep: Vec::new(),
            open: vec![false; a.image.tree.len()],
            visible: Vec::new(),
            selected: 0,
            offset: 0,
        };
        e.rebuild(a);
        for r in &e.model.rows {
            if r.depth == 0 && r.is_dir {
                e.open[r.node as usize] = true;
            }
        }
        e.refresh_visible();
        e
    }

    /// Select a layer (used when opened from compare).
    pub fn select_layer(&mut self, a: &Analysis, layer: usize, area: Rect) {
        self.layer = layer.min(a.image.layers.len().saturating_sub(1));
        self.rebuild(a);
        self.fix_offsets(a, area);
    }

    pub fn selected_node(&self) -> Option<u32> {
        let r = *self.visible.get(self.selected)?;
        Some(self.model.rows[r as usize].node)
    }

    /// Rebuild the model after the layer, mode or sort changed.
    fn rebuild(&mut self, a: &Analysis) {
        let img = &a.image;
        let sel = self.selected_node();
        let before = self.replay.before(img, self.layer);
        self.model = TreeModel::build(
            img, &self.kids, &a.classes, before, self.layer, self.mode, self.sort,
        );
        self.keep = self.filter.keep(&self.model, img);
        self.refresh_visible();
        self.reselect(sel);
    }

    fn refilter(&mut self, a: &Analysis) {
        let sel = self.selected_node();
        self.keep = self.filter.keep(&self.model, &a.image);
        self.refresh_visible();
        self.reselect(sel);
    }

    fn refresh_visible(&mut self) {
        self.visible = self.model.visible(&self.keep, &self.open);
    }

    /// Keep the selection on the same node if it is still visible.
    fn reselect(&mut self, node: Option<u32>) {
        if let Some(node) = node
            && let Some(i) = self
                .visible
                .iter()
                .position(|&r| self.model.rows[r as usize].node == node)
        {
            self.selected = i;
            return;
        }
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
    }

    pub fn is_editing(&self) -> bool {
        self.editing.is_some()
    }

    /// Apply an action. Returns false if it was not used (the app handles it).
    pub fn step(&mut self, action: Action, a: &Analysis, area: Rect) -> bool {
        let used = if self.editing.is_some() {
            self.step_editing(action, a)
        } else {
            self.step_normal(action, a, area)
        };
        self.fix_offsets(a, area);
        used
    }

    fn step_editing(&mut self, action: Action, a: &Analysis) -> bool {
        let Some(ed) = self.editing.as_mut() else {
            return false;
        };
        match action {
            Action::Input(c) => ed.input.push(c),
            Action::Backspace => {
                ed.input.pop();
            }
            Action::ClearInput => ed.input.clear(),
            Action::Back => {
                let before = ed.before.clone();
                self.editing = None;
                self.apply_filter_text(&before, a);
                return true;
            }
            Action::Enter => {
                self.editing = None;
                self.open_matches();
                return true;
            }
            Action::Up | Action::Down => {
                let sel = self.selected as isize + if action == Action::Up { -1 } else { 1 };
                self.selected = sel.clamp(0, self.visible.len() as isize - 1).max(0) as usize;
                return true;
            }
            _ => return false,
        }
        let text = ed.input.clone();
        self.apply_filter_text(&text, a);
        true
    }

    fn apply_filter_text(&mut self, text: &str, a: &Analysis) {
        match self.filter.set_text(text) {
            Ok(()) => {
                self.filter_error = None;
                self.refilter(a);
                if self.filter.pattern.is_some() {
                    self.open_matches();
                }
            }
            Err(e) => self.filter_error = Some(e),
        }
    }

    /// Open every directory on the way to a row the filter kept.
    fn open_matches(&mut self) {
        if self.filter.is_trivial() {
            return;
        }
        for (i, r) in self.model.rows.iter().enumerate() {
            if r.is_dir && self.keep.get(i).copied().unwrap_or(false) {
                self.open[r.node as usize] = true;
            }
        }
        let sel = self.selected_node();
        self.refresh_visible();
        self.reselect(sel);
    }

    fn step_normal(&mut self, action: Action, a: &Analysis, area: Rect) -> bool {
        let layers = a.image.layers.len();
        let tree_h = areas(area, layers).tree.height.saturating_sub(2).max(1) as usize;
        match action {
            Action::NextPane | Action::PrevPane => {
                self.focus = match self.focus {
                    Pane::Layers => Pane::Tree,
                    Pane::Tree => Pane::Layers,
                };
            }
            Action::ToggleMode => {
                self.mode = match self.mode {
                    TreeMode::Layer => TreeMode::Aggregated,
                    TreeMode::Aggregated => TreeMode::Layer,
                };
                self.rebuild(a);
            }
            Action::ToggleSort => {
                self.sort = match self.sort {
                    SortBy::Size => SortBy::Name,
                    SortBy::Name => SortBy::Size,
                };
                self.rebuild(a);
            }
            Action::ToggleAdded => self.toggle(a, |f| &mut f.added),
            Action::ToggleRemoved => self.toggle(a, |f| &mut f.removed),
            Action::ToggleModified => self.toggle(a, |f| &mut f.modified),
            Action::ToggleUnmodified => self.toggle(a, |f| &mut f.unmodified),
            Action::StartFilter => {
                self.focus = Pane::Tree;
                self.editing = Some(Editing {
                    input: self.filter.text.clone(),
                    before: self.filter.text.clone(),
                });
            }
            Action::CollapseAll => {
                self.open.fill(false);
                self.reshow();
            }
            Action::ExpandAll => {
                self.open.fill(true);
                self.reshow();
            }
            _ => {
                return match self.focus {
                    Pane::Layers => self.step_layers(action, a, layers),
                    Pane::Tree => self.step_tree(action, tree_h),
                };
            }
        }
        true
    }

    fn toggle(&mut self, a: &Analysis, field: fn(&mut Filter) -> &mut bool) {
        let f = field(&mut self.filter);
        *f = !*f;
        self.refilter(a);
    }

    fn reshow(&mut self) {
        let sel = self.selected_node();
        self.refresh_visible();
        self.reselect(sel);
    }

    fn step_layers(&mut self, action: Action, a: &Analysis, layers: usize) -> bool {
        let last = layers.saturating_sub(1);
        let new = match action {
            Action::Up => self.layer.saturating_sub(1),
            Action::Down => (self.layer + 1).min(last),
            Action::PageUp => self.layer.saturating_sub(10),
            Action::PageDown => (self.layer + 10).min(last),
            Action::Home => 0,
            Action::End => last,
            Action::Right | Action::Enter => {
                self.focus = Pane::Tree;
                return true;
            }
            _ => return false,
        };
        if new != self.layer {
            self.layer = new;
            self.rebuild(a);
        }
        true
    }

    fn step_tree(&mut self, action: Action, page: usize) -> bool {
        let n = self.visible.len();
        let last = n.saturating_sub(1);
        let cur = self
            .visible
            .get(self.selected)
            .map(|&r| self.model.rows[r as usize]);
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(page),
            Action::PageDown => self.selected = (self.selected + page).min(last),
            Action::Home => self.selected = 0,
            Action::End => self.selected = last,
            Action::ToggleCollapse | Action::Enter => {
                if let Some(r) = cur.filter(|r| r.is_dir) {
                    let o = &mut self.open[r.node as usize];
                    *o = !*o;
                    self.reshow();
                }
            }
            Action::Right => {
                if let Some(r) = cur.filter(|r| r.is_dir) {
                    if self.open[r.node as usize] {
                        self.selected = (self.selected + 1).min(last);
                    } else {
                        self.open[r.node as usize] = true;
                        self.reshow();
                    }
                }
            }
            Action::Left => {
                if let Some(r) = cur {
                    if r.is_dir && self.open[r.node as usize] {
                        self.open[r.node as usize] = false;
                        self.reshow();
                    } else if r.parent != u32::MAX
                        && let Some(i) = self.visible.iter().position(|&v| v == r.parent)
                    {
                        self.selected = i;
                    }
                }
            }
            _ => return false,
        }
        true
    }

    fn fix_offsets(&mut self, a: &Analysis, area: Rect) {
        let ar = areas(area, a.image.layers.len());
        self.offset = fit_offset(
            self.selected,
            self.offset,
            ar.tree.height.saturating_sub(2) as usize,
        );
        self.layer_offset = fit_offset(
            self.layer,
            self.layer_offset,
            ar.layers.height.saturating_sub(2) as usize,
        );
    }

    /// Draw the screen. Reads state only.
    pub fn draw(&self, f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme, nested: bool) {
        let ar = areas(area, a.image.layers.len());
        self.draw_header(f, ar.header, a, theme);
        self.draw_layers(f, ar.layers, a, theme);
        self.draw_details(f, ar.details, a, theme);
        draw_summary(f, ar.summary, a, theme);
        self.draw_tree(f, ar.tree, a, theme);
        self.draw_footer(f, ar.footer, theme, nested);
    }

    fn draw_header(&self, f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
        let img = &a.image;
        let line = Line::from(vec![
            Span::styled(" layerscope ", theme.key()),
            Span::styled(img.facts.name(), theme.title()),
            Span::raw(format!(
                "  {}  {} layers  efficiency {}",
                size(a.waste.total_bytes),
                img.layers.len(),
                crate::output::percent(a.waste.efficiency())
            )),
        ]);
        f.render_widget(Paragraph::new(line), area);
    }

    fn draw_layers(&self, f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
        let focused = self.focus == Pane::Layers;
        let block = Block::bordered()
            .title(Span::styled(" Layers ", theme.title()))
            .border_style(theme.border(focused));
        let inner = block.inner(area);
        f.render_widget(block, area);
        let layers = &a.image.layers;
        let max = layers.iter().map(|l| l.size).max().unwrap_or(0).max(1);
        let w = inner.width as usize;
        let bar_w = if w >= 50 { 10 } else { 5 };
        let lines: Vec<Line> = layers
            .iter()
            .enumerate()
            .skip(self.layer_offset)
            .take(inner.height as usize)
            .map(|(i, l)| {
                let prefix = format!("{:>2} {} ", i + 1, size_col(l.size));
                let text_w = w.saturating_sub(prefix.chars().count() + bar_w + 1);
                let mut line = Line::from(vec![
                    Span::raw(prefix),
                    Span::styled(bar(l.size as f64 / max as f64, bar_w), theme.bar()),
                    Span::raw(" "),
                    Span::raw(cut(&l.instruction, text_w)),
                ]);
                if i == self.layer {
                    line = line.style(theme.selected(focused));
                }
                line
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn draw_details(&self, f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
        let block = Block::bordered()
            .title(Span::styled(" Layer details ", theme.title()))
            .border_style(theme.border(false));
        let Some(l) = a.image.layers.get(self.layer) else {
            f.render_widget(block, area);
            return;
        };
        let c = &l.counts;
        let lines = vec![
            Line::from(vec![
                Span::styled(format!("#{} ", self.layer + 1), theme.title()),
                Span::raw(format!(
                    "{}  {}",
                    short_id(&l.diff_id),
                    l.created
                        .as_deref()
                        .map(|c| c.chars().take(16).collect::<String>().replace('T', " "))
                        .unwrap_or_default()
                )),
            ]),
            Line::from(vec![
                Span::styled(format!("+{}", c.added), theme.status(Status::Added)),
                Span::raw(" "),
                Span::styled(format!("~{}", c.modified), theme.status(Status::Modified)),
                Span::raw(" "),
                Span::styled(format!("-{}", c.removed), theme.status(Status::Removed)),
                Span::raw(format!(" *{} meta", c.metadata_only)),
            ]),
            Line::from(vec![
                Span::raw("wastes "),
                Span::styled(
                    size(l.hidden_bytes),
                    if l.hidden_bytes > 0 {
                        theme.warn()
                    } else {
                        Style::new()
                    },
                ),
                Span::raw(format!(" · hides {}", size(l.hides_bytes))),
            ]),
            Line::from(l.instruction.clone()),
        ];
        f.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            area,
        );
    }

    fn draw_tree(&self, f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
        let focused = self.focus == Pane::Tree;
        let mode = match self.mode {
            TreeMode::Layer => format!(" Changes in layer {} ", self.layer + 1),
            TreeMode::Aggregated => format!(" Files after layer {} ", self.layer + 1),
        };
        let sort = match self.sort {
            SortBy::Size => "by size",
            SortBy::Name => "by name",
        };
        let mut block = Block::bordered()
            .title(Span::styled(mode, theme.title()))
            .title_bottom(Line::from(format!(
                " {} of {} rows · {} ",
                self.visible.len(),
                self.model.rows.len(),
                sort
            )))
            .border_style(theme.border(focused));
        let hidden: Vec<&str> = [
            (self.filter.added, "added"),
            (self.filter.removed, "removed"),
            (self.filter.modified, "modified"),
            (self.filter.unmodified, "unmodified"),
        ]
        .iter()
        .filter(|(on, _)| !on)
        .map(|(_, n)| *n)
        .collect();
        if !hidden.is_empty() {
            block = block.title_bottom(
                Line::from(Span::styled(
                    format!(" hiding {} ", hidden.join(",")),
                    theme.warn(),
                ))
                .right_aligned(),
            );
        }
        let inner = block.inner(area);
        f.render_widget(block, area);
        let img = &a.image;
        let w = inner.width as usize;
        let lines: Vec<Line> = self
            .visible
            .iter()
            .enumerate()
            .skip(self.offset)
            .take(inner.height as usize)
            .map(|(vi, &ri)| {
                let r = &self.model.rows[ri as usize];
                let st = theme.status(r.status);
                let indent = "  ".repeat(r.depth as usize);
                let icon = if r.is_dir {
                    if self.open[r.node as usize] {
                        "▾ "
                    } else {
                        "▸ "
                    }
                } else {
                    "  "
                };
                let name = img.tree.name(r.node);
                let sz = size_col(r.size);
                let (cat, cat_st) = r.cat.map_or(("", Style::new()), |c| theme.category(c));
                let cat = format!(" {cat:<4} ");
                let left = 2 + indent.chars().count() + 2;
                let right = cat.len() + sz.len();
                let name_w = w.saturating_sub(left + right + 1);
                let name = cut(name, name_w);
                let pad = w.saturating_sub(left + name.chars().count() + right);
                let mut line = Line::from(vec![
                    Span::styled(format!("{} ", r.status.mark()), st),
                    Span::styled(indent, theme.dim()),
                    Span::raw(icon),
                    Span::styled(name, st),
                    Span::raw(" ".repeat(pad)),
                    Span::styled(cat, cat_st),
                    Span::styled(sz, st),
                ]);
                if vi == self.selected {
                    line = line.style(theme.selected(focused));
                }
                line
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn draw_footer(&self, f: &mut Frame, area: Rect, theme: &Theme, nested: bool) {
        let line = if let Some(ed) = &self.editing {
            let mut spans = vec![
                Span::styled(" Filter: ", theme.key()),
                Span::raw(ed.input.clone()),
                Span::styled("█", theme.dim()),
            ];
            if let Some(e) = &self.filter_error {
                spans.push(Span::styled(format!("  {}", cut(e, 40)), theme.bad()));
            } else {
                spans.push(Span::styled(
                    "  glob, regex, >10M, @tool · Enter",
                    theme.dim(),
                ));
            }
            Line::from(spans)
        } else {
            let mut spans = Vec::new();
            let mut key = |k: &str, d: &str| {
                spans.push(Span::styled(format!(" {k}"), theme.key()));
                spans.push(Span::raw(format!(" {d}")));
            };
            key("Tab", "pane");
            key("Spc", "fold");
            key("/", "filter");
            key("^L", "mode");
            key("s", "sort");
            if nested {
                key("Esc", "back");
            }
            key("?", "help");
            key("q", "quit");
            if !self.filter.text.is_empty() {
                spans.push(Span::styled(
                    format!("  [{}]", cut(&self.filter.text, 20)),
                    theme.warn(),
                ));
            }
            Line::from(spans)
        };
        f.render_widget(Paragraph::new(line), area);
    }
}

/// Image totals: shipped, visible, wasted, efficiency.
fn draw_summary(f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
    let w = &a.waste;
    let facts = &a.image.facts;
    let eff = w.efficiency();
    let eff_style = if eff >= 0.95 {
        theme.good()
    } else if eff >= 0.8 {
        theme.warn()
    } else {
        theme.bad()
    };
    let row = |k: &str, v: String, s: Style| {
        Line::from(vec![
            Span::styled(format!("{k:<11}"), theme.dim()),
            Span::styled(v, s),
        ])
    };
    let base = if facts.base_os.is_empty() {
        "unknown".to_string()
    } else {
        facts.base_os.clone()
    };
    let lines = vec![
        row(
            "Total",
            format!("{} in {} layers", size(w.total_bytes), a.image.layers.len()),
            Style::new(),
        ),
        row("Visible", size(w.final_bytes), Style::new()),
        row(
            "Wasted",
            if w.duplicate_bytes > 0 {
                format!(
                    "{} (dup {})",
                    size(w.wasted_bytes()),
                    size(w.duplicate_bytes)
                )
            } else {
                size(w.wasted_bytes())
            },
            if w.wasted_bytes() > 0 {
                theme.warn()
            } else {
                Style::new()
            },
        ),
        row("Efficiency", crate::output::percent(eff), eff_style),
        row("Base", base, Style::new()),
    ];
    let mut lines = lines;
    let mut cats: Vec<(Category, u64)> = Category::ALL
        .into_iter()
        .map(|c| (c, a.bytes_of(c)))
        .filter(|(_, b)| *b > 0)
        .collect();
    cats.sort_by_key(|(c, b)| (*c == Category::Runtime, std::cmp::Reverse(*b)));
    let final_bytes = w.final_bytes.max(1);
    for (c, b) in cats {
        let (_, st) = theme.category(c);
        lines.push(Line::from(vec![
            Span::styled(format!("{:<14}", c.as_str()), st),
            Span::raw(format!(
                "{} {:>5.1}%",
                size_col(b),
                b as f64 * 100.0 / final_bytes as f64
            )),
        ]));
    }
    let block = Block::bordered()
        .title(Span::styled(" Image ", theme.title()))
        .border_style(theme.border(false));
    f.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}
