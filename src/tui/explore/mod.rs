//! Explore one image: layers, layer details, image summary, file tree.

use std::rc::Rc;

use ratatui::layout::{Constraint, Layout, Rect};

mod draw;

use super::action::Action;
use super::fit_offset;
use super::tree::{Replay, SortBy, SortedKids, TreeMode, TreeModel};
use super::widgets::{FilterKey, FilterLine, navigate};
use crate::analysis::Analysis;
use crate::index::tree::{NodeId, ROOT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Layers,
    Tree,
    Findings,
}

/// Where each part of the explore screen goes. A pane that does not fit
/// shrinks to one line (`*_line`) rather than vanish; none gets zero rows.
pub struct Areas {
    /// Two lines: the image, then the headline (residue, projections).
    pub header: Rect,
    pub layers: Rect,
    pub details: Rect,
    /// The layer details in one line, without a border.
    pub details_line: bool,
    pub summary: Rect,
    /// The image summary in one line, without a border.
    pub summary_line: bool,
    /// The file tree; not drawn when `findings` took its place.
    pub tree: Rect,
    pub show_tree: bool,
    /// The findings list: below the tree on tall terminals, else in the
    /// tree's place while it has the focus, else one line with the top
    /// finding below the tree (`findings_line`).
    pub findings: Option<Rect>,
    pub findings_line: bool,
    pub footer: Rect,
}

/// Terminal rows from which findings get their own pane below the tree.
const SPLIT_H: u16 = 36;
/// The layer details pane's rows.
const DETAILS_H: u16 = 7;
/// The fewest rows of the image summary before it shrinks to a line (it
/// takes what the layers and details leave).
const SUMMARY_MIN: u16 = 5;

pub fn areas(area: Rect, layer_count: usize, findings: usize, focus: Pane) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    // Findings that get no pane of their own shrink to one line across
    // the bottom: the top finding, unless the list has the focus.
    let findings_line = findings > 0 && body.height < SPLIT_H && focus != Pane::Findings;
    let (body, line) = if findings_line {
        let [b, l] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(body);
        (b, Some(l))
    } else {
        (body, None)
    };
    let left_w = (body.width * 9 / 20).clamp(20, 72);
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(0)]).areas(body);
    // The layers first (all, or at least three), then the details, then
    // the summary; what does not fit shrinks to a line.
    let avail = left.height;
    let n = (layer_count as u16).max(1);
    let (want, least) = (n + 2, n.min(3) + 2);
    let mut details_h = DETAILS_H;
    let mut summary_h = SUMMARY_MIN;
    if avail < least + details_h + SUMMARY_MIN {
        summary_h = 1;
    }
    if avail < least + details_h + summary_h {
        details_h = 1;
    }
    let room = avail.saturating_sub(details_h + summary_h.min(SUMMARY_MIN));
    let layers_h = want.min(room).max(least.min(room)).max(1);
    let [layers, details, summary] = Layout::vertical([
        Constraint::Length(layers_h),
        Constraint::Length(details_h),
        Constraint::Min(1),
    ])
    .areas(left);
    let (tree, show_tree, found) = if findings == 0 {
        (right, true, None)
    } else if line.is_some() {
        (right, true, line)
    } else if right.height >= SPLIT_H {
        let fh = (findings as u16 + 2 + DETAIL_H).min(right.height * 2 / 5);
        let [t, f] = Layout::vertical([Constraint::Min(0), Constraint::Length(fh)]).areas(right);
        (t, true, Some(f))
    } else {
        (right, false, Some(right))
    };
    Areas {
        header,
        layers,
        details,
        details_line: details_h == 1,
        summary,
        summary_line: summary.height <= 1,
        tree,
        show_tree,
        findings: found,
        findings_line,
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
    pub filter: FilterLine,
    replay: Replay,
    kids: SortedKids,
    pub model: Rc<TreeModel>,
    /// Recently built models, least recently used first.
    cache: Vec<(ModelKey, Rc<TreeModel>)>,
    keep: Vec<bool>,
    /// Per row, its bytes counting only what the filter keeps (`None`
    /// without a filter: the model's sizes).
    sizes: Option<Vec<u64>>,
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
            filter: FilterLine::default(),
            replay: Replay::default(),
            kids: SortedKids::new(&a.image),
            model: Rc::new(TreeModel::default()),
            cache: Vec::new(),
            keep: Vec::new(),
            sizes: None,
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

    /// Per row of the model, its bytes under the filter: the sum over
    /// the files the filter keeps; `None` without a filter.
    pub fn filtered_sizes(&self) -> Option<&[u64]> {
        self.sizes.as_deref()
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
        (self.keep, self.sizes) = self.filter.keep_sized(&self.model, &a.image);
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
        (self.keep, self.sizes) = self.filter.keep_sized(&self.model, &a.image);
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
        self.filter.is_editing()
    }

    /// Apply an action. Returns false if it was not used (the app handles it).
    pub fn step(&mut self, action: Action, a: &Analysis, area: Rect) -> bool {
        let used = if self.filter.is_editing() {
            self.step_editing(action, a)
        } else {
            self.step_normal(action, a, area)
        };
        self.fix_offsets(a, area);
        used
    }

    fn step_editing(&mut self, action: Action, a: &Analysis) -> bool {
        match self.filter.step_editing(action) {
            FilterKey::Changed => self.filter_changed(a),
            FilterKey::Done => self.open_matches(),
            FilterKey::Used => {}
            FilterKey::Other if matches!(action, Action::Up | Action::Down) => {
                let sel = self.selected as isize + if action == Action::Up { -1 } else { 1 };
                self.selected = sel.clamp(0, self.visible.len() as isize - 1).max(0) as usize;
            }
            FilterKey::Other => return false,
        }
        true
    }

    fn apply_filter_text(&mut self, text: &str, a: &Analysis) {
        if self.filter.set_text(text) {
            self.filter_changed(a);
        }
    }

    fn filter_changed(&mut self, a: &Analysis) {
        self.refilter(a);
        if self.filter.pattern.is_some() {
            self.open_matches();
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
            Action::ToggleAdded
            | Action::ToggleRemoved
            | Action::ToggleModified
            | Action::ToggleUnmodified => {
                self.filter.toggle(action);
                self.refilter(a);
            }
            Action::StartFilter => {
                self.focus = Pane::Tree;
                self.filter.start();
            }
            // Esc clears a filter first, then closes the findings list
            // that took the tree's place; after that it is the app's.
            Action::Back if !self.filter.is_trivial() || self.filter.error.is_some() => {
                self.filter.clear();
                self.refilter(a);
            }
            Action::Back if self.focus == Pane::Findings && !ar.show_tree => {
                self.focus = Pane::Tree;
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

    fn reshow(&mut self) {
        let sel = self.selected_node();
        self.refresh_visible();
        self.reselect(sel);
    }

    fn step_layers(&mut self, action: Action, a: &Analysis, layers: usize) -> bool {
        if matches!(action, Action::Right | Action::Enter) {
            self.focus = Pane::Tree;
            return true;
        }
        let mut new = self.layer;
        if !navigate(&mut new, action, layers, 10) {
            return false;
        }
        if new != self.layer {
            self.layer = new;
            self.rebuild(a);
        }
        true
    }

    fn step_tree(&mut self, action: Action, page: usize) -> bool {
        let last = self.visible.len().saturating_sub(1);
        if navigate(&mut self.selected, action, self.visible.len(), page) {
            return true;
        }
        let cur = self
            .visible
            .get(self.selected)
            .map(|&r| self.model.rows[r as usize]);
        match action {
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
        if matches!(action, Action::Enter | Action::Right) {
            self.jump_to_finding(a, self.finding, area);
            return true;
        }
        navigate(&mut self.finding, action, a.findings.len(), 10)
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
            self.filter.clear();
            (self.keep, self.sizes) = self.filter.keep_sized(&self.model, &a.image);
            self.refresh_visible();
            if let Some(i) = find(self) {
                self.selected = i;
            }
        }
    }

    fn fix_offsets(&mut self, a: &Analysis, area: Rect) {
        let ar = areas(area, a.image.layers.len(), a.findings.len(), self.focus);
        if let Some(r) = ar.findings.filter(|_| !ar.findings_line) {
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
