//! Explore one image: layers, layer details, image summary, file tree.

use std::rc::Rc;

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
use crate::analysis::findings::{Finding, FindingKind};
use crate::image::short_id;
use crate::index::tree::{NodeId, ROOT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Layers,
    Tree,
    Findings,
}

/// The line being typed into the filter, and the filter before it.
#[derive(Debug, Clone)]
pub struct Editing {
    pub input: String,
    pub before: String,
}

/// A file pane's bottom-right note of the change kinds the toggles hide
/// (shared by explore and compare).
pub fn hiding_title<'a>(block: Block<'a>, filter: &Filter, theme: &Theme) -> Block<'a> {
    let hidden = filter.hidden();
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

/// What a key did to the filter line (shared by explore and compare).
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

/// Where each part of the explore screen goes.
pub struct Areas {
    pub header: Rect,
    pub layers: Rect,
    pub details: Rect,
    pub summary: Rect,
    /// The file tree; not drawn when `findings` took its place.
    pub tree: Rect,
    pub show_tree: bool,
    /// The findings list: below the tree on tall terminals, else in the
    /// tree's place while it has the focus.
    pub findings: Option<Rect>,
    pub footer: Rect,
}

/// Terminal rows from which findings get their own pane below the tree.
const SPLIT_H: u16 = 36;

pub fn areas(area: Rect, layer_count: usize, findings: usize, focus: Pane) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let left_w = (body.width * 9 / 20).clamp(20, 72);
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(0)]).areas(body);
    let details_h = 7u16;
    let summary_h = 9u16;
    let layers_max = left.height.saturating_sub(details_h + summary_h).max(3);
    let layers_h = (layer_count as u16 + 2).min(layers_max);
    let [layers, details, summary] = Layout::vertical([
        Constraint::Length(layers_h),
        Constraint::Length(details_h),
        Constraint::Min(0),
    ])
    .areas(left);
    let (tree, show_tree, findings) = if findings > 0 && right.height >= SPLIT_H {
        let fh = (findings as u16 + 2 + DETAIL_H).min(right.height * 2 / 5);
        let [t, f] = Layout::vertical([Constraint::Min(0), Constraint::Length(fh)]).areas(right);
        (t, true, Some(f))
    } else if focus == Pane::Findings {
        (right, false, Some(right))
    } else {
        (right, true, None)
    };
    Areas {
        header,
        layers,
        details,
        summary,
        tree,
        show_tree,
        findings,
        footer,
    }
}

/// Rows under the findings list for the selected finding's details.
const DETAIL_H: u16 = 6;

/// Built models kept for revisiting layers, modes and sorts, in rows
/// (about 40 bytes each).
const CACHE_ROWS: usize = 1_500_000;

type ModelKey = (usize, TreeMode, SortBy);

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
    pub model: Rc<TreeModel>,
    /// Recently built models, least recently used first.
    cache: Vec<(ModelKey, Rc<TreeModel>)>,
    keep: Vec<bool>,
    /// Open directories, by node id.
    pub open: Vec<bool>,
    /// Visible rows (indices into `model.rows`).
    pub visible: Vec<u32>,
    pub selected: usize,
    pub offset: usize,
    /// Selected finding and the findings list's scroll offset.
    pub finding: usize,
    finding_offset: usize,
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
            model: Rc::new(TreeModel::default()),
            cache: Vec::new(),
            keep: Vec::new(),
            open: vec![false; a.image.tree.len()],
            visible: Vec::new(),
            selected: 0,
            offset: 0,
            finding: 0,
            finding_offset: 0,
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

    /// Apply a filter line as if typed (used when opened from compare).
    pub fn set_filter(&mut self, a: &Analysis, text: &str, area: Rect) {
        self.apply_filter_text(text, a);
        self.fix_offsets(a, area);
    }

    /// Rebuild the model after the layer, mode or sort changed.
    fn rebuild(&mut self, a: &Analysis) {
        let sel = self.selected_node();
        self.model = self.model_for(a, (self.layer, self.mode, self.sort));
        self.keep = self.filter.keep(&self.model, &a.image);
        self.refresh_visible();
        self.reselect(sel);
    }

    /// The model for a (layer, mode, sort), from the cache or built.
    fn model_for(&mut self, a: &Analysis, key: ModelKey) -> Rc<TreeModel> {
        if let Some(i) = self.cache.iter().position(|(k, _)| *k == key) {
            let hit = self.cache.remove(i);
            let m = hit.1.clone();
            self.cache.push(hit);
            return m;
        }
        let img = &a.image;
        let (layer, mode, sort) = key;
        let before = self.replay.before(img, layer);
        let m = Rc::new(TreeModel::build(
            img, &self.kids, &a.classes, before, layer, mode, sort,
        ));
        self.cache.push((key, m.clone()));
        let mut rows: usize = self.cache.iter().map(|(_, m)| m.rows.len()).sum();
        while rows > CACHE_ROWS && self.cache.len() > 1 {
            rows -= self.cache.remove(0).1.rows.len();
        }
        m
    }

    /// Build one model the next key is likely to ask for (the layers next
    /// to this one, the other mode); called while the user is idle.
    /// Returns false when there is nothing left to build.
    pub fn prefetch(&mut self, a: &Analysis) -> bool {
        let last = a.image.layers.len().saturating_sub(1);
        let other = match self.mode {
            TreeMode::Layer => TreeMode::Aggregated,
            TreeMode::Aggregated => TreeMode::Layer,
        };
        let mut want: Vec<ModelKey> = Vec::with_capacity(4);
        if self.layer > 0 {
            want.push((self.layer - 1, self.mode, self.sort));
        }
        if self.layer < last {
            want.push((self.layer + 1, self.mode, self.sort));
        }
        want.push((self.layer, other, self.sort));
        let Some(key) = want
            .into_iter()
            .find(|k| !self.cache.iter().any(|(c, _)| c == k))
        else {
            return false;
        };
        // Keep the shown model the most recently used.
        self.model_for(a, key);
        let cur = (self.layer, self.mode, self.sort);
        if let Some(i) = self.cache.iter().position(|(k, _)| *k == cur) {
            let hit = self.cache.remove(i);
            self.cache.push(hit);
        }
        true
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
        match ed.step(action) {
            Edit::Changed(text) => self.apply_filter_text(&text, a),
            Edit::Cancelled(before) => {
                self.editing = None;
                self.apply_filter_text(&before, a);
            }
            Edit::Done => {
                self.editing = None;
                self.open_matches();
            }
            Edit::Other if matches!(action, Action::Up | Action::Down) => {
                let sel = self.selected as isize + if action == Action::Up { -1 } else { 1 };
                self.selected = sel.clamp(0, self.visible.len() as isize - 1).max(0) as usize;
            }
            Edit::Other => return false,
        }
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
        let ar = areas(area, layers, a.findings.len(), self.focus);
        let tree_h = ar.tree.height.saturating_sub(2).max(1) as usize;
        let has_findings = !a.findings.is_empty();
        match action {
            Action::NextPane => {
                self.focus = match self.focus {
                    Pane::Layers => Pane::Tree,
                    Pane::Tree if has_findings => Pane::Findings,
                    Pane::Tree | Pane::Findings => Pane::Layers,
                };
            }
            Action::PrevPane => {
                self.focus = match self.focus {
                    Pane::Layers if has_findings => Pane::Findings,
                    Pane::Layers | Pane::Findings => Pane::Tree,
                    Pane::Tree => Pane::Layers,
                };
            }
            Action::Findings => {
                self.focus = if self.focus == Pane::Findings || !has_findings {
                    Pane::Tree
                } else {
                    Pane::Findings
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
                    Pane::Findings => self.step_findings(action, a, area),
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

    fn step_findings(&mut self, action: Action, a: &Analysis, area: Rect) -> bool {
        let last = a.findings.len().saturating_sub(1);
        match action {
            Action::Up => self.finding = self.finding.saturating_sub(1),
            Action::Down => self.finding = (self.finding + 1).min(last),
            Action::PageUp => self.finding = self.finding.saturating_sub(10),
            Action::PageDown => self.finding = (self.finding + 10).min(last),
            Action::Home => self.finding = 0,
            Action::End => self.finding = last,
            Action::Enter | Action::Right => self.jump_to_finding(a, self.finding, area),
            _ => return false,
        }
        true
    }

    /// Show finding `i` in the tree: the layer that introduced its bytes,
    /// the file system after that layer, its largest path opened and
    /// selected. Advice without paths selects its layer.
    pub fn jump_to_finding(&mut self, a: &Analysis, i: usize, area: Rect) {
        let Some(f) = a.findings.get(i) else {
            return;
        };
        let last = a.image.layers.len().saturating_sub(1);
        self.finding = i;
        self.layer = f
            .layers
            .first()
            .map_or(self.layer, |&l| (l as usize).min(last));
        self.mode = TreeMode::Aggregated;
        let target = f
            .top_paths
            .first()
            .and_then(|(p, _)| p.split(" = ").next())
            .and_then(|p| a.image.tree.lookup(p));
        let Some(node) = target else {
            self.rebuild(a);
            self.focus = Pane::Layers;
            self.fix_offsets(a, area);
            return;
        };
        self.rebuild(a);
        if !self.model.rows.iter().any(|r| r.node == node) && self.layer != last {
            // The path came later than the finding's main layer.
            self.layer = last;
            self.rebuild(a);
        }
        self.reveal(a, node);
        self.focus = Pane::Tree;
        let h = areas(area, a.image.layers.len(), a.findings.len(), self.focus)
            .tree
            .height
            .saturating_sub(2) as usize;
        // Put the row near the top, with its parent above it.
        self.offset = self.selected.saturating_sub(h / 4);
        self.fix_offsets(a, area);
    }

    /// Open the directories above `node` and `node` itself (its largest
    /// files show below it) and select it; clears a filter that hides it.
    fn reveal(&mut self, a: &Analysis, node: NodeId) {
        if let Some(o) = self.open.get_mut(node as usize) {
            *o = true;
        }
        let mut p = a.image.tree.parent(node);
        while let Some(n) = p.filter(|&n| n != ROOT) {
            self.open[n as usize] = true;
            p = a.image.tree.parent(n);
        }
        self.refresh_visible();
        let find = |e: &Explore| {
            e.visible
                .iter()
                .position(|&r| e.model.rows[r as usize].node == node)
        };
        if let Some(i) = find(self) {
            self.selected = i;
            return;
        }
        if !self.filter.is_trivial() {
            self.filter = Filter::default();
            self.filter_error = None;
            self.keep = self.filter.keep(&self.model, &a.image);
            self.refresh_visible();
            if let Some(i) = find(self) {
                self.selected = i;
            }
        }
    }

    fn fix_offsets(&mut self, a: &Analysis, area: Rect) {
        let ar = areas(area, a.image.layers.len(), a.findings.len(), self.focus);
        if let Some(r) = ar.findings {
            let list_h = findings_split(r).0.height as usize;
            self.finding_offset = fit_offset(self.finding, self.finding_offset, list_h);
        }
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
        let ar = areas(area, a.image.layers.len(), a.findings.len(), self.focus);
        self.draw_header(f, ar.header, a, theme);
        self.draw_layers(f, ar.layers, a, theme);
        self.draw_details(f, ar.details, a, theme);
        draw_summary(f, ar.summary, a, theme);
        if ar.show_tree {
            self.draw_tree(f, ar.tree, a, theme);
        }
        if let Some(r) = ar.findings {
            self.draw_findings(f, r, a, theme);
        }
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
        block = hiding_title(block, &self.filter, theme);
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

    fn draw_findings(&self, f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
        let focused = self.focus == Pane::Findings;
        let total: u64 = a.findings.iter().map(|f| f.bytes).sum();
        let block = Block::bordered()
            .title(Span::styled(
                format!(" Findings: {} · {} ", a.findings.len(), size(total)),
                theme.title(),
            ))
            .title_bottom(Line::from(" Enter shows it in the tree "))
            .border_style(theme.border(focused));
        let inner = block.inner(area);
        f.render_widget(block, area);
        let (list, detail) = findings_split(area);
        let w = inner.width as usize;
        let lines: Vec<Line> = a
            .findings
            .iter()
            .enumerate()
            .skip(self.finding_offset)
            .take(list.height as usize)
            .map(|(i, x)| {
                let (label, st) = finding_label(x, theme);
                let bytes = if x.bytes > 0 {
                    size_col(x.bytes)
                } else {
                    format!("{:>9}", "")
                };
                let rest = w.saturating_sub(9 + 1 + 14);
                let mut line = Line::from(vec![
                    Span::raw(bytes),
                    Span::raw(" "),
                    Span::styled(format!("{:<13} ", cut(&label, 13)), st),
                    Span::raw(cut(&x.title, rest)),
                ]);
                if i == self.finding {
                    line = line.style(theme.selected(focused));
                }
                line
            })
            .collect();
        f.render_widget(Paragraph::new(lines), list);
        let Some(x) = a.findings.get(self.finding) else {
            return;
        };
        let mut lines = vec![Line::styled("─".repeat(w), theme.dim())];
        if let Some(&l) = x.layers.first()
            && let Some(layer) = a.image.layers.get(l as usize)
        {
            lines.push(Line::from(vec![
                Span::styled(format!("layer {}: ", l + 1), theme.title()),
                Span::raw(layer.instruction.clone()),
            ]));
        }
        if let Some((p, b)) = x.top_paths.first() {
            let more = x.top_paths.len().saturating_sub(1);
            lines.push(Line::from(vec![
                Span::styled("in ", theme.dim()),
                Span::raw(format!("{p} ({})", size(*b))),
                Span::styled(
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    },
                    theme.dim(),
                ),
            ]));
        }
        lines.push(Line::from(vec![
            Span::styled("fix: ", theme.good()),
            Span::raw(x.fix.clone()),
        ]));
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), detail);
    }

    fn draw_footer(&self, f: &mut Frame, area: Rect, theme: &Theme, nested: bool) {
        let mut keys = vec![
            ("Tab", "pane"),
            ("f", "findings"),
            ("Spc", "fold"),
            ("/", "filter"),
            ("^L", "mode"),
            ("s", "sort"),
        ];
        if nested {
            keys.push(("Esc", "back"));
        }
        keys.extend([("?", "help"), ("q", "quit")]);
        let line = footer_line(
            self.editing.as_ref(),
            self.filter_error.as_deref(),
            &self.filter.text,
            &keys,
            theme,
        );
        f.render_widget(Paragraph::new(line), area);
    }
}

/// A view's footer: the filter being edited, else its keys and the
/// filter in force.
pub fn footer_line<'a>(
    editing: Option<&Editing>,
    error: Option<&str>,
    filter: &str,
    keys: &[(&str, &str)],
    theme: &Theme,
) -> Line<'a> {
    if let Some(ed) = editing {
        return filter_line(ed, error, theme);
    }
    let mut spans = Vec::new();
    for (k, d) in keys {
        spans.push(Span::styled(format!(" {k}"), theme.key()));
        spans.push(Span::raw(format!(" {d}")));
    }
    if !filter.is_empty() {
        spans.push(Span::styled(
            format!("  [{}]", cut(filter, 20)),
            theme.warn(),
        ));
    }
    Line::from(spans)
}

/// The filter line being edited, with the error or a hint.
pub fn filter_line<'a>(ed: &Editing, error: Option<&str>, theme: &Theme) -> Line<'a> {
    let mut spans = vec![
        Span::styled(" Filter: ", theme.key()),
        Span::raw(ed.input.clone()),
        Span::styled("█", theme.dim()),
    ];
    if let Some(e) = error {
        spans.push(Span::styled(format!("  {}", cut(e, 40)), theme.bad()));
    } else {
        spans.push(Span::styled(
            "  glob, regex, >10M, @tool · Enter",
            theme.dim(),
        ));
    }
    Line::from(spans)
}

/// The findings pane's inner list rows and the detail rows below them.
fn findings_split(area: Rect) -> (Rect, Rect) {
    let inner = Rect {
        x: area.x + 1,
        y: area.y + 1,
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(2),
    };
    let detail_h = DETAIL_H.min(inner.height / 2);
    let [list, detail] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(detail_h)]).areas(inner);
    (list, detail)
}

/// What kind of finding: its category, its kind of waste, or advice.
pub fn finding_label(x: &Finding, theme: &Theme) -> (String, Style) {
    match (x.kind, x.category, x.waste) {
        (_, Some(c), _) => (c.as_str().to_string(), theme.category(c).1),
        (_, _, Some(w)) => (w.as_str().to_string(), theme.warn()),
        (FindingKind::Advice, _, _) => ("advice".to_string(), theme.dim()),
        _ => (String::new(), Style::new()),
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
            Span::styled(format!("{k:<12}"), theme.dim()),
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
    ];
    let mut lines = lines;
    if !a.findings.is_empty() {
        let bytes: u64 = a.findings.iter().map(|f| f.bytes).sum();
        lines.push(row(
            "Findings",
            format!("{} · {} (f)", a.findings.len(), size(bytes)),
            theme.warn(),
        ));
    }
    if let Some(p) = a.projected_runtime_bytes {
        if area.width >= 50 {
            lines.push(Line::styled(
                format!("A multi-stage build could ship about {}", size(p)),
                theme.good(),
            ));
        } else {
            lines.push(row(
                "Multi-stage",
                format!("about {}", size(p)),
                theme.good(),
            ));
        }
    }
    lines.push(row("Base", base, Style::new()));
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
