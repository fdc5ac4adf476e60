//! Drawing the compare screen: reads its state, never changes it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Compare, Fate, Pane, areas};
use crate::analysis::Analysis;
use crate::analysis::classify::Category;
use crate::output::delta;
use crate::tui::theme::Theme;
use crate::tui::widgets::{Scroll, draw_pane, draw_rows, headline, layer_line, pane};
use crate::tui::{bar, cut, size, size_col};

impl Compare {
    /// Draw the screen; `pair` is this pair's place among the pairs of
    /// images and their number (more than one with three images or more).
    pub fn draw(
        &self,
        f: &mut Frame,
        area: Rect,
        a: &Analysis,
        b: &Analysis,
        theme: &Theme,
        pair: (usize, usize),
    ) {
        let ar = areas(area, self.findings_len(), self.focus);
        let header = self.header(a, b, ar.header.width as usize, theme, pair);
        f.render_widget(Paragraph::new(header), ar.header);
        self.draw_files(f, ar.files, theme);
        if ar.show_layers {
            for (side, (r, img)) in [(ar.layers_a, a), (ar.layers_b, b)].into_iter().enumerate() {
                self.draw_layers(f, r, side, img, theme);
            }
        }
        match ar.findings {
            Some(r) if ar.findings_line => self.draw_top_finding(f, r, theme),
            Some(r) => self.draw_findings(f, r, theme),
            None => {}
        }
        if ar.categories_line {
            draw_categories_line(f, ar.categories, a, b, theme);
        } else {
            draw_categories(f, ar.categories, a, b, theme);
        }
        let mut keys = vec![
            ("Tab", "pane"),
            ("Enter", "open"),
            ("\u{2190}", "up"),
            ("f", "findings"),
            ("/", "filter"),
            ("1/2", "explore"),
        ];
        if pair.1 > 1 {
            keys.push(("n", "next pair"));
        }
        keys.extend([("?", "help"), ("q", "quit")]);
        f.render_widget(Paragraph::new(self.filter.footer(&keys, theme)), ar.footer);
    }

    /// The findings shrunk to one line: the counts and the largest.
    fn draw_top_finding(&self, f: &mut Frame, area: Rect, theme: &Theme) {
        let c = &self.cmp;
        let mut spans = vec![
            Span::styled(" findings (f): ", theme.dim()),
            Span::styled(format!("{} resolved", c.resolved.len()), theme.good()),
            Span::raw(format!(", {} left, ", c.remaining.len())),
            Span::styled(
                format!("{} new", c.new.len()),
                if c.new.is_empty() {
                    Style::new()
                } else {
                    theme.bad()
                },
            ),
        ];
        if let Some((fate, d)) = self
            .findings()
            .max_by_key(|(_, d)| d.a_bytes.unwrap_or(0).max(d.b_bytes.unwrap_or(0)))
        {
            let what = match fate {
                Fate::Resolved => "resolved",
                Fate::Remaining => "left",
                Fate::New => "new",
            };
            let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
            let top = format!(
                " \u{b7} top: {} {} \u{2192} {} ({what})",
                d.id,
                d.a_bytes.map_or("-".into(), size),
                d.b_bytes.map_or("-".into(), size)
            );
            spans.push(Span::raw(cut(
                &top,
                (area.width as usize).saturating_sub(used),
            )));
        }
        f.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn draw_findings(&self, f: &mut Frame, area: Rect, theme: &Theme) {
        let focused = self.focus == Pane::Findings;
        let c = &self.cmp;
        let title = format!(
            " Findings: {} resolved, {} remaining, {} new ",
            c.resolved.len(),
            c.remaining.len(),
            c.new.len()
        );
        let inner = draw_pane(f, area, pane(title, focused, theme));
        let w = inner.width as usize;
        let opt = |x: Option<u64>| x.map_or(format!("{:>9}", "-"), size_col);
        let at = Scroll {
            selected: self.finding,
            offset: self.finding_off,
            focused,
        };
        draw_rows(f, inner, self.findings(), at, theme, |_, (fate, d)| {
            let (mark, st) = match fate {
                Fate::Resolved => ("✓ resolved ", theme.good()),
                Fate::Remaining => ("= remaining", theme.warn()),
                Fate::New => ("+ new      ", theme.bad()),
            };
            let rest = w.saturating_sub(11 + 1 + 9 + 3 + 9 + 1);
            Line::from(vec![
                Span::styled(mark, st),
                Span::raw(format!(" {} → {} ", opt(d.a_bytes), opt(d.b_bytes))),
                Span::raw(cut(&d.title, rest)),
            ])
        });
    }

    /// The header's lines, `w` columns wide: the title, each image, and B
    /// against A.
    fn header<'a>(
        &self,
        a: &Analysis,
        b: &Analysis,
        w: usize,
        theme: &Theme,
        pair: (usize, usize),
    ) -> Vec<Line<'a>> {
        let (ta, tb) = (a.waste.total_bytes, b.waste.total_bytes);
        let d = tb as i128 - ta as i128;
        let pct = if ta > 0 { d as f64 / ta as f64 } else { 0.0 };
        let d_style = if d <= 0 { theme.good() } else { theme.bad() };
        // Each image leads with its build residue and the projections.
        let img_line = |tag: &str, x: &Analysis, st: Style| {
            let name = cut(&x.image.facts.name(), w / 4);
            let total = match x.image.pull_size() {
                Some(p) => format!("  {} (pull {})  ", size(x.waste.total_bytes), size(p)),
                None => format!("  {}  ", size(x.waste.total_bytes)),
            };
            let used = tag.len() + 2 + name.chars().count() + total.chars().count();
            let mut spans = vec![
                Span::styled(format!(" {tag} "), st),
                Span::styled(name, theme.title()),
                Span::raw(total),
            ];
            spans.extend(headline(x, w.saturating_sub(used), theme));
            Line::from(spans)
        };
        let mut title = vec![
            Span::styled(" layerscope ", theme.key()),
            Span::raw("compare"),
        ];
        if pair.1 > 1 {
            title.push(Span::styled(
                format!("  pair {} of {} (n: next)", pair.0 + 1, pair.1),
                theme.dim(),
            ));
        }
        vec![
            Line::from(title),
            img_line("A", a, theme.only_a()),
            img_line("B", b, theme.only_b()),
            Line::from(self.versus_line(a, b, d, pct, d_style, w, theme)),
        ]
    }

    /// B against A: the size and residue deltas; on wide terminals also
    /// the shared layers and the findings (narrow ones show those in the
    /// Layers B title and the findings line).
    #[allow(clippy::too_many_arguments)]
    fn versus_line<'a>(
        &self,
        a: &Analysis,
        b: &Analysis,
        d: i128,
        pct: f64,
        d_style: Style,
        w: usize,
        theme: &Theme,
    ) -> Vec<Span<'a>> {
        let mut spans = vec![
            Span::raw("   B vs A: "),
            Span::styled(format!("{} ({:+.1}%)", delta(d), pct * 100.0), d_style),
            Span::raw(format!(
                "  \u{b7} residue {}",
                delta(b.residue_bytes as i128 - a.residue_bytes as i128)
            )),
        ];
        if let (Some(pa), Some(pb)) = (a.image.pull_size(), b.image.pull_size()) {
            spans.push(Span::raw(format!(
                "  \u{b7} B pulls {} instead of {}",
                size(pb),
                size(pa)
            )));
        }
        if w < 110 {
            return spans;
        }
        spans.extend([
            Span::raw(format!(
                "  \u{b7} shared layers: {}  \u{b7} findings: ",
                self.shared_layers()
            )),
            Span::styled(
                format!("{} resolved", self.cmp.resolved.len()),
                theme.good(),
            ),
            Span::raw(format!(", {} remaining, ", self.cmp.remaining.len())),
            Span::styled(
                format!("{} new", self.cmp.new.len()),
                if self.cmp.new.is_empty() {
                    Style::new()
                } else {
                    theme.bad()
                },
            ),
        ]);
        spans
    }

    fn draw_files(&self, f: &mut Frame, area: Rect, theme: &Theme) {
        let focused = self.focus == Pane::Files;
        let title = format!(" Files {} ", cut(&self.path(), 40));
        let block = pane(title, focused, theme).title_bottom(Line::from(format!(
            " {} · by delta{} ",
            match self.entries.len() {
                1 => "1 entry".to_string(),
                n => format!("{n} entries"),
            },
            if self.filter.text.is_empty() {
                String::new()
            } else {
                format!(" · filter {}", cut(&self.filter.text, 20))
            }
        )));
        let inner = draw_pane(f, area, self.filter.hiding(block, theme));
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
        let [head_row, list] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        f.render_widget(Line::styled(cut(&head, w), theme.dim()), head_row);
        let at = Scroll {
            selected: self.selected,
            offset: self.offset,
            focused,
        };
        draw_rows(f, list, self.entries.iter(), at, theme, |_, e| {
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
            Line::from(vec![
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
            ])
        });
    }

    fn draw_layers(&self, f: &mut Frame, area: Rect, side: usize, x: &Analysis, theme: &Theme) {
        let this = if side == 0 {
            Pane::LayersA
        } else {
            Pane::LayersB
        };
        let focused = self.focus == this;
        let title = if side == 0 {
            " Layers A ".to_string()
        } else {
            format!(" Layers B · {} ", self.shared_layers())
        };
        let inner = draw_pane(f, area, pane(title, focused, theme));
        let w = inner.width as usize;
        let at = Scroll {
            selected: self.layer_sel[side],
            offset: self.layer_off[side],
            focused,
        };
        draw_rows(f, inner, x.image.layers.iter(), at, theme, |i, l| {
            let base = i < x.base.layers;
            if self.is_shared(&l.diff_id) {
                layer_line(i, l, '=', base, None, w, theme.dim(), theme)
            } else {
                layer_line(i, l, ' ', base, None, w, Style::new(), theme)
            }
        });
    }
}

/// The categories shrunk to one line: the largest changes, A → B.
fn draw_categories_line(f: &mut Frame, area: Rect, a: &Analysis, b: &Analysis, theme: &Theme) {
    let mut rows: Vec<(Category, u64, u64)> = Category::ALL
        .into_iter()
        .map(|c| (c, a.bytes_of(c), b.bytes_of(c)))
        .filter(|(_, x, y)| x != y)
        .collect();
    rows.sort_by_key(|(_, x, y)| std::cmp::Reverse((*y as i128 - *x as i128).unsigned_abs()));
    let mut spans = vec![Span::styled(" bytes A \u{2192} B: ", theme.dim())];
    let mut left = (area.width as usize).saturating_sub(17);
    for (i, (c, x, y)) in rows.into_iter().enumerate() {
        let text = format!(
            "{}{} {} \u{2192} {}",
            if i > 0 { " \u{b7} " } else { "" },
            c.as_str(),
            size(x),
            size(y)
        );
        let n = text.chars().count();
        if n > left {
            break;
        }
        left -= n;
        spans.push(Span::styled(text, theme.category(c).1));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Bytes per category in A and B with bars on one scale, and the delta.
fn draw_categories(f: &mut Frame, area: Rect, a: &Analysis, b: &Analysis, theme: &Theme) {
    let block = pane(" What the bytes are: A vs B ", false, theme);
    let inner = draw_pane(f, area, block);
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
                Span::styled(format!("{:<16}", c.as_str()), st),
                Span::styled(bar(x as f64 / max as f64, bar_w), theme.only_a()),
                Span::raw(size_col(x)),
                Span::raw(" "),
                Span::styled(bar(y as f64 / max as f64, bar_w), theme.only_b()),
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
