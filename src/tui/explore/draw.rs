//! Drawing the explore screen: reads its state, never changes it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::{Explore, Pane, areas, findings_split};
use crate::analysis::Analysis;
use crate::analysis::classify::Category;
use crate::analysis::findings::{Finding, FindingKind};
use crate::image::short_id;
use crate::tui::theme::Theme;
use crate::tui::tree::{SortBy, Status, TreeMode};
use crate::tui::widgets::{Scroll, draw_pane, draw_rows, layer_line, pane};
use crate::tui::{cut, size, size_col};

impl Explore {
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
        let inner = draw_pane(f, area, pane(" Layers ", focused, theme));
        let layers = &a.image.layers;
        let max = layers.iter().map(|l| l.size).max().unwrap_or(0).max(1);
        let w = inner.width as usize;
        let bar_w = if w >= 50 { 10 } else { 5 };
        let at = Scroll {
            selected: self.layer,
            offset: self.layer_offset,
            focused,
        };
        draw_rows(f, inner, layers.iter(), at, theme, |i, l| {
            let frac = l.size as f64 / max as f64;
            layer_line(i, l, ' ', Some((frac, bar_w)), w, Style::new(), theme)
        });
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
        let block = pane(mode, focused, theme).title_bottom(Line::from(format!(
            " {} of {} rows · {} ",
            self.visible.len(),
            self.model.rows.len(),
            sort
        )));
        let inner = draw_pane(f, area, self.filter.hiding(block, theme));
        let img = &a.image;
        let w = inner.width as usize;
        let at = Scroll {
            selected: self.selected,
            offset: self.offset,
            focused,
        };
        draw_rows(f, inner, self.visible.iter(), at, theme, |_, &ri| {
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
            Line::from(vec![
                Span::styled(format!("{} ", r.status.mark()), st),
                Span::styled(indent, theme.dim()),
                Span::raw(icon),
                Span::styled(name, st),
                Span::raw(" ".repeat(pad)),
                Span::styled(cat, cat_st),
                Span::styled(sz, st),
            ])
        });
    }

    fn draw_findings(&self, f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
        let focused = self.focus == Pane::Findings;
        let total: u64 = a.findings.iter().map(|f| f.bytes).sum();
        let title = format!(" Findings: {} · {} ", a.findings.len(), size(total));
        let block = pane(title, focused, theme).title_bottom(" Enter shows it in the tree ");
        let inner = draw_pane(f, area, block);
        let (list, detail) = findings_split(area);
        let w = inner.width as usize;
        let at = Scroll {
            selected: self.finding,
            offset: self.finding_offset,
            focused,
        };
        draw_rows(f, list, a.findings.iter(), at, theme, |_, x| {
            let (label, st) = finding_label(x, theme);
            let bytes = if x.bytes > 0 {
                size_col(x.bytes)
            } else {
                format!("{:>9}", "")
            };
            let rest = w.saturating_sub(9 + 1 + 14);
            Line::from(vec![
                Span::raw(bytes),
                Span::raw(" "),
                Span::styled(format!("{:<13} ", cut(&label, 13)), st),
                Span::raw(cut(&x.title, rest)),
            ])
        });
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
        f.render_widget(Paragraph::new(self.filter.footer(&keys, theme)), area);
    }
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
