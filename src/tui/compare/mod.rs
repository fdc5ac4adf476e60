//! Compare two images: totals, the two final file systems aligned by path
//! (one directory at a time, sorted by delta), and the layers side by side.

use ratatui::layout::{Constraint, Layout, Rect};

mod draw;

use super::action::Action;
use super::fit_offset;
use super::tree::{Filter, Pattern, Status};
use super::widgets::{FilterKey, FilterLine, navigate};
use crate::analysis::Analysis;
use crate::analysis::compare::{Comparison, FindingDelta, PathStatus, Union, compare};
use crate::image::Image;
use crate::index::tree::NodeId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Files,
    LayersA,
    LayersB,
    Findings,
}

/// Where a finding of the comparison stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// In A, gone from B.
    Resolved,
    /// In both.
    Remaining,
    /// Only in B.
    New,
}

/// What the user asked to explore from compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub image: usize,
    pub layer: usize,
    /// A finding id to show in the tree.
    pub finding: Option<String>,
}

/// The side the compare screen shows against the first image.
const B: usize = 1;

/// A row's mark for a path's status against the first image.
fn mark(s: PathStatus) -> Status {
    match s {
        PathStatus::Unchanged => Status::Unchanged,
        PathStatus::Added => Status::Added,
        PathStatus::Removed => Status::Removed,
        PathStatus::Modified => Status::Modified,
    }
}

/// Per node of `u`: its path or a directory above it matches `pattern`;
/// empty without a pattern. The slow part of filtering (a match per
/// path), so it runs when the pattern changes, not on toggles.
pub fn matches(u: &Union, pattern: Option<&Pattern>, images: &[&Image]) -> Vec<bool> {
    let Some(p) = pattern else {
        return Vec::new();
    };
    let n = u.len();
    let mut matched = vec![false; n];
    let mut lens: Vec<usize> = vec![0; n];
    let mut buf = String::new();
    for i in 1..n {
        // Preorder: the buffer holds a path below the parent's.
        let par = u.parent(i);
        buf.truncate(if par == 0 { 0 } else { lens[par] });
        buf.push('/');
        buf.push_str(u.name(i, images));
        lens[i] = buf.len();
        matched[i] = matched[par] || p.is_match(&buf);
    }
    matched
}

/// Bytes in A and in B below every node of the [`Union`] counting only
/// what `filter` keeps, and which nodes are left to show.
#[derive(Debug, Default)]
pub struct Sums {
    pub bytes: Vec<(u64, u64)>,
    /// Per node: it passes the filter or something below it does.
    pub shown: Vec<bool>,
}

impl Sums {
    /// A non-directory passes when its status is toggled on, it is at least
    /// `min_size` (in A or B), of the category (in A or B), and its path or
    /// a directory above it matches the pattern. An empty directory passes
    /// the same way (with no bytes) when no size or category is asked for;
    /// other directories are shown when something below them passes.
    /// `matched` is [`Union::matches`] for the filter's pattern.
    pub fn new(u: &Union, filter: &Filter, matched: &[bool], a: &Analysis, b: &Analysis) -> Sums {
        let n = u.len();
        let mut bytes = vec![(0u64, 0u64); n];
        let mut shown = vec![false; n];
        let trivial = filter.is_trivial();
        let in_pair = |i: usize| u.at(i, 0).is_some() || u.at(i, B).is_some();
        let is_dir = |i: usize| u.is_dir(i, 0) || u.is_dir(i, B);
        let cat_ok = |i: usize| {
            filter.category.is_none_or(|c| {
                !is_dir(i)
                    && (u.at(i, 0).is_some_and(|x| a.classes.category(x) == c)
                        || u.at(i, B).is_some_and(|x| b.classes.category(x) == c))
            })
        };
        let size_ok = |i: usize| {
            filter.min_size == 0 || (!is_dir(i) && u.own(i, 0).max(u.own(i, B)) >= filter.min_size)
        };
        // A directory with anything below it is shown only for what is
        // left below; an empty one stands for itself.
        let leaf = |i: usize| !is_dir(i) || u.end(i) == i + 1;
        let pass = |i: usize| {
            trivial
                || (leaf(i) && filter.status_ok(mark(u.status(i, B))) && size_ok(i) && cat_ok(i))
        };
        for i in 1..n {
            if in_pair(i) && pass(i) && (trivial || matched.is_empty() || matched[i]) {
                shown[i] = true;
                bytes[i] = (u.own(i, 0), u.own(i, B));
            }
        }
        for i in (1..n).rev() {
            let p = u.parent(i);
            let (x, y) = bytes[i];
            bytes[p].0 += x;
            bytes[p].1 += y;
            shown[p] |= shown[i];
        }
        if n > 0 {
            shown[0] = true;
        }
        Sums { bytes, shown }
    }
}

/// One path in the current directory of both images.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    /// Its node in the [`Union`].
    pub node: usize,
    pub a: Option<NodeId>,
    pub b: Option<NodeId>,
    pub size_a: u64,
    pub size_b: u64,
    pub is_dir: bool,
    /// Relative to the other image: added (only in B), removed (only in
    /// A), modified or unchanged.
    pub status: Status,
}

impl Entry {
    pub fn delta(&self) -> i128 {
        self.size_b as i128 - self.size_a as i128
    }
}

/// A directory level in the drill-down stack.
#[derive(Debug, Clone)]
struct Level {
    name: String,
    /// The directory's node in the [`Union`].
    node: usize,
    selected: usize,
    offset: usize,
}

/// State of the compare screen.
#[derive(Debug)]
pub struct Compare {
    /// The images compared, A and B, as indices of the app's images.
    pub pair: (usize, usize),
    pub focus: Pane,
    /// Totals, files and findings compared, computed once.
    pub cmp: Comparison,
    pub filter: FilterLine,
    /// Both file systems by path, built once.
    union: Union,
    /// Which paths the filter's pattern matches, per pattern change.
    matched: Vec<bool>,
    /// Filtered bytes and what is left to show, per filter change.
    sums: Sums,
    pub finding: usize,
    finding_off: usize,
    stack: Vec<Level>,
    pub entries: Vec<Entry>,
    pub selected: usize,
    pub offset: usize,
    pub layer_sel: [usize; 2],
    layer_off: [usize; 2],
}

/// Where each part of the compare screen goes. A pane that does not fit
/// shrinks to one line (`*_line`) rather than vanish; none gets zero rows.
pub struct Areas {
    pub header: Rect,
    pub files: Rect,
    pub layers_a: Rect,
    pub layers_b: Rect,
    /// Findings resolved / remaining / new: beside the layers on wide
    /// terminals, else in their place while focused, else one line with
    /// the counts and the top one (`findings_line`).
    pub findings: Option<Rect>,
    pub findings_line: bool,
    pub show_layers: bool,
    /// Bytes per category, A vs B: a pane when there is room, else one
    /// line (`categories_line`).
    pub categories: Rect,
    pub categories_line: bool,
    pub footer: Rect,
}

/// The layer lists' rows: a border and at least three layers.
const LAYERS_MIN: u16 = 5;

pub fn areas(area: Rect, findings: usize, focus: Pane) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    // One line at the bottom of `r`, and the rest.
    let line = |r: Rect| {
        let [x, y] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(r);
        (x, y)
    };
    let (files, mut layers, categories, categories_line, mut found, mut findings_line);
    if body.width >= 140 {
        let [f, right] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Min(0)]).areas(body);
        files = f;
        let (right, c, c_line) = if right.height >= 24 {
            let [l, c] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(10)]).areas(right);
            (l, c, false)
        } else {
            let (rest, c) = line(right);
            (rest, c, true)
        };
        categories = c;
        categories_line = c_line;
        if findings > 0 && right.height >= 16 {
            let fh = (findings as u16 + 2).min(right.height / 2);
            let [l, g] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(fh)]).areas(right);
            (layers, found, findings_line) = (l, Some(g), false);
        } else if findings > 0 {
            let (rest, g) = line(right);
            (layers, found, findings_line) = (rest, Some(g), true);
        } else {
            (layers, found, findings_line) = (right, None, false);
        }
    } else {
        let lh = (body.height * 2 / 5).max(LAYERS_MIN);
        let extra = 1 + u16::from(findings > 0);
        let [f, lines, l] = Layout::vertical([
            Constraint::Min(0),
            Constraint::Length(extra),
            Constraint::Length(lh),
        ])
        .areas(body);
        files = f;
        layers = l;
        // The top finding first, then the categories.
        categories_line = true;
        (found, findings_line, categories) = if findings > 0 {
            let [g, c] = Layout::vertical([Constraint::Length(1); 2]).areas(lines);
            (Some(g), true, c)
        } else {
            (None, false, lines)
        };
    }
    let mut show_layers = true;
    if findings_line && focus == Pane::Findings {
        // The findings list takes the layers' place while it has the focus.
        found = Some(layers);
        findings_line = false;
        show_layers = false;
    }
    if !show_layers {
        layers = Rect::default();
    }
    let [layers_a, layers_b] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(layers);
    Areas {
        header,
        files,
        layers_a,
        layers_b,
        findings: found,
        findings_line,
        show_layers,
        categories,
        categories_line,
        footer,
    }
}

impl Compare {
    pub fn new(a: &Analysis, b: &Analysis) -> Compare {
        let mut c = Compare {
            pair: (0, 1),
            focus: Pane::Files,
            cmp: compare(a, b),
            filter: FilterLine::default(),
            union: Union::new(&[&a.image, &b.image]),
            matched: Vec::new(),
            sums: Sums::default(),
            finding: 0,
            finding_off: 0,
            stack: vec![Level {
                name: String::new(),
                node: 0,
                selected: 0,
                offset: 0,
            }],
            entries: Vec::new(),
            selected: 0,
            offset: 0,
            layer_sel: [0, 0],
            layer_off: [0, 0],
        };
        c.sums = Sums::new(&c.union, &c.filter, &c.matched, a, b);
        c.list(a, b);
        c
    }

    /// The current directory's path, `/` at the top.
    pub fn path(&self) -> String {
        if self.stack.len() <= 1 {
            return "/".into();
        }
        self.stack[1..]
            .iter()
            .map(|l| format!("/{}", l.name))
            .collect()
    }

    /// B's layers shared with A, both ways: the same base (a common
    /// prefix) and any layer A also has (what a pull need not fetch).
    pub fn shared_layers(&self) -> String {
        format!(
            "{} base, {} in common",
            self.cmp.shared_layers, self.cmp.layers_in_common
        )
    }

    /// Does A have the layer too (the `=` mark)?
    pub fn is_shared(&self, diff_id: &str) -> bool {
        self.cmp.common_diff_ids.contains(diff_id)
    }

    pub fn is_editing(&self) -> bool {
        self.filter.is_editing()
    }

    /// The filter text, handed to explore views opened from here.
    pub fn filter_text(&self) -> Option<String> {
        Some(self.filter.text.clone()).filter(|t| !t.is_empty())
    }

    /// The findings of the comparison in display order.
    pub fn findings(&self) -> impl Iterator<Item = (Fate, &FindingDelta)> {
        let c = &self.cmp;
        c.resolved
            .iter()
            .map(|d| (Fate::Resolved, d))
            .chain(c.remaining.iter().map(|d| (Fate::Remaining, d)))
            .chain(c.new.iter().map(|d| (Fate::New, d)))
    }

    fn findings_len(&self) -> usize {
        self.cmp.resolved.len() + self.cmp.remaining.len() + self.cmp.new.len()
    }

    /// Apply a filter line as typed; an error keeps the previous filter.
    pub fn set_filter(&mut self, text: &str, a: &Analysis, b: &Analysis) {
        if self.filter.set_text(text) {
            self.filter_changed(a, b);
        }
    }

    fn filter_changed(&mut self, a: &Analysis, b: &Analysis) {
        self.matched = matches(
            &self.union,
            self.filter.pattern.as_ref(),
            &[&a.image, &b.image],
        );
        self.refilter(a, b);
    }

    /// Recompute the filtered sums (once per filter or toggle change) and
    /// relist, keeping the selection on the same name when it is left.
    fn refilter(&mut self, a: &Analysis, b: &Analysis) {
        let sel = self.entries.get(self.selected).map(|e| e.name.clone());
        self.sums = Sums::new(&self.union, &self.filter, &self.matched, a, b);
        // Levels whose directory has nothing left are closed.
        while self.stack.len() > 1 && !self.stack.last().is_some_and(|l| self.sums.shown[l.node]) {
            self.stack.pop();
        }
        self.list(a, b);
        self.selected = sel
            .and_then(|n| self.entries.iter().position(|e| e.name == n))
            .unwrap_or(self.selected)
            .min(self.entries.len().saturating_sub(1));
    }

    /// List the current directory of both images, largest |delta| first.
    fn list(&mut self, a: &Analysis, b: &Analysis) {
        let Some(level) = self.stack.last() else {
            return;
        };
        let u = &self.union;
        let mut v: Vec<Entry> = u
            .children(level.node)
            .filter(|&i| self.sums.shown[i])
            .map(|i| {
                let (size_a, size_b) = self.sums.bytes[i];
                Entry {
                    name: u.name(i, &[&a.image, &b.image]).to_string(),
                    node: i,
                    a: u.at(i, 0),
                    b: u.at(i, B),
                    size_a,
                    size_b,
                    is_dir: u.is_dir(i, 0) || u.is_dir(i, B),
                    status: mark(u.status(i, B)),
                }
            })
            .collect();
        v.sort_by(|x, y| {
            y.delta()
                .unsigned_abs()
                .cmp(&x.delta().unsigned_abs())
                .then_with(|| y.size_a.max(y.size_b).cmp(&x.size_a.max(x.size_b)))
                .then_with(|| x.name.cmp(&y.name))
        });
        self.entries = v;
    }

    fn step_editing(&mut self, action: Action, a: &Analysis, b: &Analysis) -> bool {
        match self.filter.step_editing(action) {
            FilterKey::Changed => self.filter_changed(a, b),
            FilterKey::Done | FilterKey::Used => {}
            FilterKey::Other => return false,
        }
        true
    }

    /// Returns what to explore when the user asks for an image.
    pub fn step(
        &mut self,
        action: Action,
        a: &Analysis,
        b: &Analysis,
        area: Rect,
    ) -> (bool, Option<Open>) {
        let nf = self.findings_len();
        let used = if self.filter.is_editing() {
            (self.step_editing(action, a, b), None)
        } else {
            self.step_normal(action, a, b, &areas(area, nf, self.focus))
        };
        // The action may have moved the focus, and so the panes.
        let ar = areas(area, nf, self.focus);
        let page = ar.files.height.saturating_sub(3).max(1) as usize;
        self.offset = fit_offset(self.selected, self.offset, page);
        for (side, r) in [ar.layers_a, ar.layers_b].iter().enumerate() {
            self.layer_off[side] = fit_offset(
                self.layer_sel[side],
                self.layer_off[side],
                r.height.saturating_sub(2) as usize,
            );
        }
        if let Some(r) = ar.findings.filter(|_| !ar.findings_line) {
            self.finding_off = fit_offset(
                self.finding,
                self.finding_off,
                r.height.saturating_sub(2) as usize,
            );
        }
        used
    }

    /// `ar`: the panes as drawn when the action came.
    fn step_normal(
        &mut self,
        action: Action,
        a: &Analysis,
        b: &Analysis,
        ar: &Areas,
    ) -> (bool, Option<Open>) {
        let nf = self.findings_len();
        let page = ar.files.height.saturating_sub(3).max(1) as usize;
        let last_of = |x: &Analysis| x.image.layers.len().saturating_sub(1);
        let mut open = None;
        let used = match action {
            Action::NextPane => {
                self.focus = match self.focus {
                    Pane::Files => Pane::LayersA,
                    Pane::LayersA => Pane::LayersB,
                    Pane::LayersB if nf > 0 => Pane::Findings,
                    Pane::LayersB | Pane::Findings => Pane::Files,
                };
                true
            }
            Action::PrevPane => {
                self.focus = match self.focus {
                    Pane::Files if nf > 0 => Pane::Findings,
                    Pane::Files => Pane::LayersB,
                    Pane::LayersA => Pane::Files,
                    Pane::LayersB => Pane::LayersA,
                    Pane::Findings => Pane::LayersB,
                };
                true
            }
            Action::Findings => {
                self.focus = if self.focus == Pane::Findings || nf == 0 {
                    Pane::Files
                } else {
                    Pane::Findings
                };
                true
            }
            // Esc clears a filter first, then closes the findings list
            // that took the layers' place, then goes up a directory.
            Action::Back if !self.filter.is_trivial() || self.filter.error.is_some() => {
                self.filter.clear();
                self.filter_changed(a, b);
                true
            }
            Action::Back if self.focus == Pane::Findings && !ar.show_layers => {
                self.focus = Pane::Files;
                true
            }
            Action::StartFilter => {
                self.focus = Pane::Files;
                self.filter.start();
                true
            }
            Action::ToggleAdded
            | Action::ToggleRemoved
            | Action::ToggleModified
            | Action::ToggleUnmodified => {
                self.filter.toggle(action);
                self.refilter(a, b);
                true
            }
            Action::OpenA => {
                open = Some(Open {
                    image: 0,
                    layer: last_of(a),
                    finding: None,
                });
                true
            }
            Action::OpenB => {
                open = Some(Open {
                    image: 1,
                    layer: last_of(b),
                    finding: None,
                });
                true
            }
            _ => match self.focus {
                Pane::Files => self.step_files(action, a, b, page),
                Pane::Findings => {
                    let picked = self
                        .findings()
                        .nth(self.finding)
                        .map(|(fate, d)| (fate, d.id.clone()));
                    if navigate(&mut self.finding, action, nf, page) {
                        return (true, None);
                    }
                    match action {
                        Action::Enter | Action::Right => {
                            // Resolved and remaining findings are shown in
                            // A, new ones in B.
                            if let Some((fate, id)) = picked {
                                let image = usize::from(fate == Fate::New);
                                open = Some(Open {
                                    image,
                                    layer: last_of([a, b][image]),
                                    finding: Some(id),
                                });
                            }
                        }
                        _ => return (false, None),
                    }
                    true
                }
                Pane::LayersA | Pane::LayersB => {
                    let side = usize::from(self.focus == Pane::LayersB);
                    let n = [&a, &b][side].image.layers.len();
                    let s = &mut self.layer_sel[side];
                    if navigate(s, action, n, page) {
                        return (true, None);
                    }
                    match action {
                        Action::Enter | Action::Right => {
                            open = Some(Open {
                                image: side,
                                layer: *s,
                                finding: None,
                            })
                        }
                        _ => return (false, None),
                    }
                    true
                }
            },
        };
        (used, open)
    }

    fn step_files(&mut self, action: Action, a: &Analysis, b: &Analysis, page: usize) -> bool {
        if navigate(&mut self.selected, action, self.entries.len(), page) {
            return true;
        }
        match action {
            Action::Enter | Action::Right => {
                let Some(e) = self.entries.get(self.selected).filter(|e| e.is_dir) else {
                    return true;
                };
                let e = e.clone();
                if let Some(top) = self.stack.last_mut() {
                    top.selected = self.selected;
                    top.offset = self.offset;
                }
                self.stack.push(Level {
                    name: e.name,
                    node: e.node,
                    selected: 0,
                    offset: 0,
                });
                self.list(a, b);
                self.selected = 0;
                self.offset = 0;
            }
            Action::Left | Action::Back => {
                if self.stack.len() <= 1 {
                    return action == Action::Left;
                }
                self.stack.pop();
                self.list(a, b);
                if let Some(top) = self.stack.last() {
                    self.selected = top.selected;
                    self.offset = top.offset;
                }
            }
            _ => return false,
        }
        true
    }
}
