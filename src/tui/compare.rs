//! Compare two images: totals, the two final file systems aligned by path
//! (one directory at a time, sorted by delta), and the layers side by side.

use std::collections::{BTreeMap, HashSet};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::action::Action;
use super::explore::{Edit, Editing, filter_line};
use super::theme::Theme;
use super::tree::Filter;
use super::{cut, fit_offset, size, size_col};
use crate::analysis::Analysis;
use crate::analysis::classify::{Category, Classes};
use crate::analysis::compare::{Comparison, FindingDelta, compare};
use crate::image::Image;
use crate::index::layer::EntryKind;
use crate::index::tree::{NodeId, ROOT};
use crate::output::{delta, percent};

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

/// Final bytes below every node of one image, and whether it exists.
#[derive(Debug)]
pub struct FinalSizes {
    pub size: Vec<u64>,
    pub present: Vec<bool>,
    pub is_dir: Vec<bool>,
}

impl FinalSizes {
    pub fn new(img: &Image) -> FinalSizes {
        let n = img.tree.len();
        let mut size = vec![0u64; n];
        let mut present = vec![false; n];
        let mut is_dir = vec![false; n];
        for (i, loc) in img.fs.iter().enumerate() {
            if let Some(loc) = loc {
                let e = img.entry(*loc);
                size[i] = e.disk_bytes();
                present[i] = true;
                is_dir[i] = e.kind == EntryKind::Dir;
            }
        }
        // Ids are topological: children after parents.
        for i in (1..n).rev() {
            if present[i]
                && let Some(p) = img.tree.parent(i as NodeId)
            {
                let p = p as usize;
                size[p] += size[i];
                present[p] = true;
                is_dir[p] = true;
            }
        }
        present[ROOT as usize] = true;
        is_dir[ROOT as usize] = true;
        FinalSizes {
            size,
            present,
            is_dir,
        }
    }
}

/// One path in the current directory of both images.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub a: Option<NodeId>,
    pub b: Option<NodeId>,
    pub size_a: u64,
    pub size_b: u64,
    pub is_dir: bool,
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
    a: Option<NodeId>,
    b: Option<NodeId>,
    selected: usize,
    offset: usize,
}

/// State of the compare screen.
#[derive(Debug)]
pub struct Compare {
    pub focus: Pane,
    /// Totals, files and findings compared, computed once.
    pub cmp: Comparison,
    pub filter: Filter,
    pub filter_error: Option<String>,
    pub editing: Option<Editing>,
    /// Per image, per node: passes the filter (itself or below); empty
    /// when the filter lets everything through.
    keep: [Vec<bool>; 2],
    pub finding: usize,
    finding_off: usize,
    sizes: [FinalSizes; 2],
    shared: HashSet<String>,
    stack: Vec<Level>,
    pub entries: Vec<Entry>,
    pub selected: usize,
    pub offset: usize,
    pub layer_sel: [usize; 2],
    layer_off: [usize; 2],
}

pub struct Areas {
    pub header: Rect,
    pub files: Rect,
    pub layers_a: Rect,
    pub layers_b: Rect,
    /// Findings resolved / remaining / new: beside the layers on wide
    /// terminals, else in their place while focused.
    pub findings: Option<Rect>,
    pub show_layers: bool,
    /// Bytes per category, A vs B (only when there is room).
    pub categories: Option<Rect>,
    pub footer: Rect,
}

pub fn areas(area: Rect, findings: usize, focus: Pane) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let (files, mut layers, categories, mut found) = if body.width >= 140 {
        let [f, right] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Min(0)]).areas(body);
        let (right, c) = if right.height >= 24 {
            let [l, c] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(10)]).areas(right);
            (l, Some(c))
        } else {
            (right, None)
        };
        if findings > 0 && right.height >= 16 {
            let fh = (findings as u16 + 2).min(right.height / 2);
            let [l, g] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(fh)]).areas(right);
            (f, l, c, Some(g))
        } else {
            (f, right, c, None)
        }
    } else {
        let lh = (body.height * 2 / 5).max(4);
        let [f, l] = Layout::vertical([Constraint::Min(0), Constraint::Length(lh)]).areas(body);
        (f, l, None, None)
    };
    let mut show_layers = true;
    if found.is_none() && focus == Pane::Findings {
        found = Some(layers);
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
        show_layers,
        categories,
        footer,
    }
}

/// Which nodes of an image pass `filter`: a node passes when it matches
/// (path pattern, final size, category of a file) or anything below it
/// does. Empty when the filter keeps everything.
fn keep_nodes(filter: &Filter, img: &Image, s: &FinalSizes, classes: &Classes) -> Vec<bool> {
    if filter.pattern.is_none() && filter.min_size == 0 && filter.category.is_none() {
        return Vec::new();
    }
    let n = img.tree.len();
    let mut keep = vec![false; n];
    let mut buf = String::new();
    let mut stack: Vec<(NodeId, usize)> = img.tree.children(ROOT).map(|c| (c, 0)).collect();
    while let Some((node, plen)) = stack.pop() {
        let i = node as usize;
        if !s.present[i] {
            continue;
        }
        buf.truncate(plen);
        buf.push('/');
        buf.push_str(img.tree.name(node));
        let dir = s.is_dir[i];
        keep[i] = filter
            .category
            .is_none_or(|c| !dir && classes.category(node) == c)
            && s.size[i] >= filter.min_size
            && filter.pattern.as_ref().is_none_or(|p| p.is_match(&buf));
        if dir {
            let l = buf.len();
            stack.extend(img.tree.children(node).map(|c| (c, l)));
        }
    }
    // Ids are topological: children after parents.
    for i in (1..n).rev() {
        if keep[i]
            && let Some(p) = img.tree.parent(i as NodeId)
        {
            keep[p as usize] = true;
        }
    }
    keep
}

impl Compare {
    pub fn new(a: &Analysis, b: &Analysis) -> Compare {
        let da: HashSet<&str> = a.image.layers.iter().map(|l| l.diff_id.as_str()).collect();
        let shared = b
            .image
            .layers
            .iter()
            .filter(|l| !l.diff_id.is_empty() && da.contains(l.diff_id.as_str()))
            .map(|l| l.diff_id.clone())
            .collect();
        let mut c = Compare {
            focus: Pane::Files,
            cmp: compare(a, b),
            filter: Filter::default(),
            filter_error: None,
            editing: None,
            keep: [Vec::new(), Vec::new()],
            finding: 0,
            finding_off: 0,
            sizes: [FinalSizes::new(&a.image), FinalSizes::new(&b.image)],
            shared,
            stack: vec![Level {
                name: String::new(),
                a: Some(ROOT),
                b: Some(ROOT),
                selected: 0,
                offset: 0,
            }],
            entries: Vec::new(),
            selected: 0,
            offset: 0,
            layer_sel: [0, 0],
            layer_off: [0, 0],
        };
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

    pub fn is_shared(&self, diff_id: &str) -> bool {
        self.shared.contains(diff_id)
    }

    pub fn is_editing(&self) -> bool {
        self.editing.is_some()
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
        match self.filter.set_text(text) {
            Ok(()) => {
                self.filter_error = None;
                self.keep = [
                    keep_nodes(&self.filter, &a.image, &self.sizes[0], &a.classes),
                    keep_nodes(&self.filter, &b.image, &self.sizes[1], &b.classes),
                ];
                self.list(a, b);
                self.selected = self.selected.min(self.entries.len().saturating_sub(1));
            }
            Err(e) => self.filter_error = Some(e),
        }
    }

    fn kept(&self, side: usize, node: Option<NodeId>) -> bool {
        let k = &self.keep[side];
        node.is_some_and(|n| k.is_empty() || k.get(n as usize).copied().unwrap_or(false))
    }

    /// List the current directory of both images, largest |delta| first.
    fn list(&mut self, a: &Analysis, b: &Analysis) {
        let Some(level) = self.stack.last() else {
            return;
        };
        let mut by_name: BTreeMap<String, Entry> = BTreeMap::new();
        for (side, img, dir) in [(0, &a.image, level.a), (1, &b.image, level.b)] {
            let Some(dir) = dir else { continue };
            let s = &self.sizes[side];
            for c in img.tree.children(dir) {
                if !s.present[c as usize] {
                    continue;
                }
                let name = img.tree.name(c);
                let e = by_name.entry(name.to_string()).or_insert_with(|| Entry {
                    name: name.to_string(),
                    a: None,
                    b: None,
                    size_a: 0,
                    size_b: 0,
                    is_dir: false,
                });
                e.is_dir |= s.is_dir[c as usize];
                if side == 0 {
                    e.a = Some(c);
                    e.size_a = s.size[c as usize];
                } else {
                    e.b = Some(c);
                    e.size_b = s.size[c as usize];
                }
            }
        }
        let mut v: Vec<Entry> = by_name
            .into_values()
            .filter(|e| self.kept(0, e.a) || self.kept(1, e.b))
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
        let Some(ed) = self.editing.as_mut() else {
            return false;
        };
        match ed.step(action) {
            Edit::Changed(text) => self.set_filter(&text, a, b),
            Edit::Cancelled(before) => {
                self.editing = None;
                self.set_filter(&before, a, b);
            }
            Edit::Done => self.editing = None,
            Edit::Other => return false,
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
        let used = if self.editing.is_some() {
            (self.step_editing(action, a, b), None)
        } else {
            self.step_normal(action, a, b, area)
        };
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
        if let Some(r) = ar.findings {
            self.finding_off = fit_offset(
                self.finding,
                self.finding_off,
                r.height.saturating_sub(2) as usize,
            );
        }
        used
    }

    fn step_normal(
        &mut self,
        action: Action,
        a: &Analysis,
        b: &Analysis,
        area: Rect,
    ) -> (bool, Option<Open>) {
        let nf = self.findings_len();
        let ar = areas(area, nf, self.focus);
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
            Action::StartFilter => {
                self.focus = Pane::Files;
                self.editing = Some(Editing {
                    input: self.filter.text.clone(),
                    before: self.filter.text.clone(),
                });
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
                    let last = nf.saturating_sub(1);
                    let picked = self
                        .findings()
                        .nth(self.finding)
                        .map(|(fate, d)| (fate, d.id.clone()));
                    let s = &mut self.finding;
                    match action {
                        Action::Up => *s = s.saturating_sub(1),
                        Action::Down => *s = (*s + 1).min(last),
                        Action::Home => *s = 0,
                        Action::End => *s = last,
                        Action::PageUp => *s = s.saturating_sub(page),
                        Action::PageDown => *s = (*s + page).min(last),
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
                    let last = n.saturating_sub(1);
                    let s = &mut self.layer_sel[side];
                    match action {
                        Action::Up => *s = s.saturating_sub(1),
                        Action::Down => *s = (*s + 1).min(last),
                        Action::Home => *s = 0,
                        Action::End => *s = last,
                        Action::PageUp => *s = s.saturating_sub(page),
                        Action::PageDown => *s = (*s + page).min(last),
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
        let last = self.entries.len().saturating_sub(1);
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(page),
            Action::PageDown => self.selected = (self.selected + page).min(last),
            Action::Home => self.selected = 0,
            Action::End => self.selected = last,
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
                    a: e.a,
                    b: e.b,
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

    pub fn draw(&self, f: &mut Frame, area: Rect, a: &Analysis, b: &Analysis, theme: &Theme) {
        let ar = areas(area, self.findings_len(), self.focus);
        self.draw_header(f, ar.header, a, b, theme);
        self.draw_files(f, ar.files, theme);
        if ar.show_layers {
            for (side, (r, img)) in [(ar.layers_a, a), (ar.layers_b, b)].into_iter().enumerate() {
                self.draw_layers(f, r, side, img, theme);
            }
        }
        if let Some(r) = ar.findings {
            self.draw_findings(f, r, theme);
        }
        if let Some(r) = ar.categories {
            draw_categories(f, r, a, b, theme);
        }
        let line = if let Some(ed) = &self.editing {
            filter_line(ed, self.filter_error.as_deref(), theme)
        } else {
            let mut spans = Vec::new();
            let mut key = |k: &str, d: &str| {
                spans.push(Span::styled(format!(" {k}"), theme.key()));
                spans.push(Span::raw(format!(" {d}")));
            };
            key("Tab", "pane");
            key("Enter", "open");
            key("←", "up");
            key("f", "findings");
            key("/", "filter");
            key("1/2", "explore");
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
        f.render_widget(Paragraph::new(line), ar.footer);
    }

    fn draw_findings(&self, f: &mut Frame, area: Rect, theme: &Theme) {
        let focused = self.focus == Pane::Findings;
        let c = &self.cmp;
        let block = Block::bordered()
            .title(Span::styled(
                format!(
                    " Findings: {} resolved, {} remaining, {} new ",
                    c.resolved.len(),
                    c.remaining.len(),
                    c.new.len()
                ),
                theme.title(),
            ))
            .border_style(theme.border(focused));
        let inner = block.inner(area);
        f.render_widget(block, area);
        let w = inner.width as usize;
        let opt = |x: Option<u64>| x.map_or(format!("{:>9}", "-"), size_col);
        let lines: Vec<Line> = self
            .findings()
            .enumerate()
            .skip(self.finding_off)
            .take(inner.height as usize)
            .map(|(i, (fate, d))| {
                let (mark, st) = match fate {
                    Fate::Resolved => ("✓ resolved ", theme.good()),
                    Fate::Remaining => ("= remaining", theme.warn()),
                    Fate::New => ("+ new      ", theme.bad()),
                };
                let rest = w.saturating_sub(11 + 1 + 9 + 3 + 9 + 1);
                let mut line = Line::from(vec![
                    Span::styled(mark, st),
                    Span::raw(format!(" {} → {} ", opt(d.a_bytes), opt(d.b_bytes))),
                    Span::raw(cut(&d.title, rest)),
                ]);
                if i == self.finding {
                    line = line.style(theme.selected(focused));
                }
                line
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn draw_header(&self, f: &mut Frame, area: Rect, a: &Analysis, b: &Analysis, theme: &Theme) {
        let (ta, tb) = (a.waste.total_bytes, b.waste.total_bytes);
        let d = tb as i128 - ta as i128;
        let pct = if ta > 0 { d as f64 / ta as f64 } else { 0.0 };
        let d_style = if d <= 0 { theme.good() } else { theme.bad() };
        let w = area.width as usize;
        let img_line = |tag: &str, x: &Analysis, st: Style| {
            Line::from(vec![
                Span::styled(format!(" {tag} "), st),
                Span::styled(cut(&x.image.facts.name(), w / 3), theme.title()),
                Span::raw(format!(
                    "  {}  {} layers  efficiency {}",
                    size(x.waste.total_bytes),
                    x.image.layers.len(),
                    percent(x.waste.efficiency())
                )),
            ])
        };
        let shared = b
            .image
            .layers
            .iter()
            .filter(|l| self.is_shared(&l.diff_id))
            .count();
        let lines = vec![
            Line::from(vec![
                Span::styled(" layerscope ", theme.key()),
                Span::raw("compare"),
            ]),
            img_line("A", a, theme.only_a()),
            img_line("B", b, theme.only_b()),
            Line::from(vec![
                Span::raw("   B vs A: "),
                Span::styled(format!("{} ({:+.1}%)", delta(d), pct * 100.0), d_style),
                Span::raw(if w >= 100 {
                    format!("  · shared layers: {shared}  · findings: ")
                } else {
                    format!("  · {shared} shared · findings: ")
                }),
                Span::styled(
                    format!("{} resolved", self.cmp.resolved.len()),
                    theme.good(),
                ),
                Span::raw(format!(
                    ", {} {}, ",
                    self.cmp.remaining.len(),
                    if w >= 100 { "remaining" } else { "left" }
                )),
                Span::styled(
                    format!("{} new", self.cmp.new.len()),
                    if self.cmp.new.is_empty() {
                        Style::new()
                    } else {
                        theme.bad()
                    },
                ),
            ]),
        ];
        f.render_widget(Paragraph::new(lines), area);
    }

    fn draw_files(&self, f: &mut Frame, area: Rect, theme: &Theme) {
        let focused = self.focus == Pane::Files;
        let block = Block::bordered()
            .title(Span::styled(
                format!(" Files {} ", cut(&self.path(), 40)),
                theme.title(),
            ))
            .title_bottom(Line::from(format!(
                " {} entries · by delta{} ",
                self.entries.len(),
                if self.filter.text.is_empty() {
                    String::new()
                } else {
                    format!(" · filter {}", cut(&self.filter.text, 20))
                }
            )))
            .border_style(theme.border(focused));
        let inner = block.inner(area);
        f.render_widget(block, area);
        let w = inner.width as usize;
        // mark(2) name ... A(9) B(9) Δ(10)
        let cols = 9 + 1 + 9 + 1 + 10;
        let name_w = w.saturating_sub(cols + 3);
        let head = format!(
            "  {:<name_w$} {:>9} {:>9} {:>10}",
            "name",
            "A",
            "B",
            "delta",
            name_w = name_w
        );
        let mut lines = vec![Line::styled(cut(&head, w), theme.dim())];
        for (i, e) in self
            .entries
            .iter()
            .enumerate()
            .skip(self.offset)
            .take(inner.height.saturating_sub(1) as usize)
        {
            let (mark, st) = match (e.a, e.b) {
                (Some(_), None) => ("A", theme.only_a()),
                (None, Some(_)) => ("B", theme.only_b()),
                _ => (" ", Style::new()),
            };
            let name = if e.is_dir {
                format!("{}/", e.name)
            } else {
                e.name.clone()
            };
            let opt = |present: bool, s: u64| {
                if present {
                    size_col(s)
                } else {
                    format!("{:>9}", "-")
                }
            };
            let d = e.delta();
            let d_st = match d.signum() {
                -1 => theme.good(),
                1 => theme.bad(),
                _ => theme.dim(),
            };
            let mut line = Line::from(vec![
                Span::styled(format!("{mark} "), st),
                Span::styled(format!("{:<name_w$}", cut(&name, name_w)), st),
                Span::raw(format!(
                    " {} {} ",
                    opt(e.a.is_some(), e.size_a),
                    opt(e.b.is_some(), e.size_b)
                )),
                Span::styled(
                    format!("{:>10}", if d == 0 { "=".into() } else { delta(d) }),
                    d_st,
                ),
            ]);
            if i == self.selected {
                line = line.style(theme.selected(focused));
            }
            lines.push(line);
        }
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn draw_layers(&self, f: &mut Frame, area: Rect, side: usize, x: &Analysis, theme: &Theme) {
        let pane = if side == 0 {
            Pane::LayersA
        } else {
            Pane::LayersB
        };
        let focused = self.focus == pane;
        let block = Block::bordered()
            .title(Span::styled(
                format!(" Layers {} ", if side == 0 { "A" } else { "B" }),
                theme.title(),
            ))
            .border_style(theme.border(focused));
        let inner = block.inner(area);
        f.render_widget(block, area);
        let w = inner.width as usize;
        let lines: Vec<Line> = x
            .image
            .layers
            .iter()
            .enumerate()
            .skip(self.layer_off[side])
            .take(inner.height as usize)
            .map(|(i, l)| {
                let shared = self.is_shared(&l.diff_id);
                let prefix = format!(
                    "{:>2}{}{} ",
                    i + 1,
                    if shared { "=" } else { " " },
                    size_col(l.size)
                );
                let rest = w.saturating_sub(prefix.chars().count());
                let mut line = Line::from(vec![
                    Span::styled(prefix, if shared { theme.dim() } else { Style::new() }),
                    Span::raw(cut(&l.instruction, rest)),
                ]);
                if i == self.layer_sel[side] {
                    line = line.style(theme.selected(focused));
                }
                line
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }
}

/// Bytes per category in A and B with bars on one scale, and the delta.
fn draw_categories(f: &mut Frame, area: Rect, a: &Analysis, b: &Analysis, theme: &Theme) {
    let block = Block::bordered()
        .title(Span::styled(" What the bytes are: A vs B ", theme.title()))
        .border_style(theme.border(false));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let rows: Vec<(Category, u64, u64)> = Category::ALL
        .into_iter()
        .map(|c| (c, a.bytes_of(c), b.bytes_of(c)))
        .filter(|(_, x, y)| *x > 0 || *y > 0)
        .collect();
    let max = rows.iter().map(|r| r.1.max(r.2)).max().unwrap_or(0).max(1);
    let bar_w = (inner.width as usize).saturating_sub(14 + 2 * 10 + 10 + 3) / 2;
    let lines: Vec<Line> = rows
        .iter()
        .map(|&(c, x, y)| {
            let (_, st) = theme.category(c);
            let d = y as i128 - x as i128;
            Line::from(vec![
                Span::styled(format!("{:<14}", c.as_str()), st),
                Span::styled(super::bar(x as f64 / max as f64, bar_w), theme.only_a()),
                Span::raw(size_col(x)),
                Span::raw(" "),
                Span::styled(super::bar(y as f64 / max as f64, bar_w), theme.only_b()),
                Span::raw(size_col(y)),
                Span::styled(
                    format!("{:>11}", if d == 0 { "=".into() } else { delta(d) }),
                    if d < 0 {
                        theme.good()
                    } else if d > 0 {
                        theme.bad()
                    } else {
                        theme.dim()
                    },
                ),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}
