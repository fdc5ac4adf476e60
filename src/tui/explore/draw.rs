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
use crate::image::{layer_name, short_id, shorten_hex};
use crate::output::percent;
use crate::tui::theme::Theme;
use crate::tui::tree::{SortBy, Status, TreeMode};
use crate::tui::widgets::{Scroll, draw_pane, draw_rows, headline, layer_line, pane};
use crate::tui::{cut, size, size_col};

impl Explore {
    /// Draw the screen. Reads state only.
    pub fn draw(&self, f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme, nested: bool) {
        let ar = areas(area, a.image.layers.len(), a.findings.len(), self.focus);
        self.draw_header(f, ar.header, a, theme);
        self.draw_layers(f, ar.layers, a, theme);
        if ar.details_line {
            self.draw_details_line(f, ar.details, a, theme);
        } else {
            self.draw_details(f, ar.details, a, theme);
        }
        if ar.summary_line {
            draw_summary_line(f, ar.summary, a, theme);
        } else {
            draw_summary(f, ar.summary, a, theme);
        }
        if ar.show_tree {
            self.draw_tree(f, ar.tree, a, theme);
        }
        match ar.findings {
            Some(r) if ar.findings_line => draw_top_finding(f, r, a, theme),
            Some(r) => self.draw_findings(f, r, a, theme),
            None => {}
        }
        self.draw_footer(f, ar.footer, theme, nested);
    }

    fn draw_header(&self, f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
        let img = &a.image;
        let n = img.layers.len();
        let first = Line::from(vec![
            Span::styled(" layerscope ", theme.key()),
            Span::styled(img.facts.name(), theme.title()),
            Span::raw(format!(
                "  {}  {}  {}",
                size(a.waste.total_bytes),
                crate::units::plural(n as u64, "layer"),
                crate::units::plural(a.findings.len() as u64, "finding"),
            )),
        ]);
        let mut second = vec![Span::raw(" ")];
        second.extend(headline(a, (area.width as usize).saturating_sub(1), theme));
        f.render_widget(Paragraph::new(vec![first, Line::from(second)]), area);
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
            layer_line(
                i,
                l,
                ' ',
                i < a.base.layers,
                Some((frac, bar_w)),
                w,
                Style::new(),
                theme,
            )
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
        let name = layer_name(&l.instruction);
        let mut first = vec![Span::styled(format!("#{} ", self.layer + 1), theme.title())];
        if self.layer < a.base.layers {
            first.push(Span::styled("base ", theme.dim()));
        }
        first.push(Span::raw(name.clone()));
        let mut lines = vec![
            Line::from(first),
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
                Span::raw(format!(" \u{b7} hides {}", size(l.hides_bytes))),
            ]),
        ];
        // The instruction as the history has it, with its hashes as short
        // ids (the JSON has them whole).
        if name != l.instruction {
            lines.push(Line::styled(shorten_hex(&l.instruction, 12), theme.dim()));
        }
        lines.push(Line::styled(
            format!(
                "{}  {}",
                short_id(&l.diff_id),
                l.created
                    .as_deref()
                    .map(|c| c.chars().take(16).collect::<String>().replace('T', " "))
                    .unwrap_or_default()
            ),
            theme.dim(),
        ));
        f.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            area,
        );
    }

    /// The layer details shrunk to one line.
    fn draw_details_line(&self, f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
        let Some(l) = a.image.layers.get(self.layer) else {
            return;
        };
        let c = &l.counts;
        let text = format!(
            "#{} {} +{} ~{} -{} wastes {}",
            self.layer + 1,
            layer_name(&l.instruction),
            c.added,
            c.modified,
            c.removed,
            size(l.hidden_bytes)
        );
        f.render_widget(
            Paragraph::new(Line::styled(cut(&text, area.width as usize), theme.dim())),
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
        let w = area.width.saturating_sub(2) as usize;
        let tags = Tags::new(a, w);
        let mut block = pane(mode, focused, theme).title_bottom(Line::from(format!(
            " {} of {} rows \u{b7} {} ",
            self.visible.len(),
            self.model.rows.len(),
            sort
        )));
        if !tags.words && self.filter.hidden().is_empty() {
            // What the short tags on screen stand for, where it fits.
            let h = area.height.saturating_sub(2) as usize;
            let mut on_screen: Vec<Category> = self
                .visible
                .iter()
                .skip(self.offset)
                .take(h)
                .filter_map(|&ri| self.model.rows[ri as usize].cat)
                .filter(|&c| c != Category::Runtime)
                .collect();
            on_screen.sort_by_key(|&c| c as usize);
            on_screen.dedup();
            let legend = Tags::legend(&on_screen);
            if !legend.is_empty() && legend.chars().count() + 30 <= w {
                block = block
                    .title_bottom(Line::styled(format!(" {legend} "), theme.dim()).right_aligned());
            }
        }
        let inner = draw_pane(f, area, self.filter.hiding(block, theme));
        let img = &a.image;
        let sizes = self.filtered_sizes();
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
            let sz = size_col(sizes.map_or(r.size, |v| v[ri as usize]));
            let (cat, cat_st) = r.cat.map_or(("", Style::new()), |c| {
                let (tag, st) = theme.category(c);
                (if tags.words { c.as_str() } else { tag }, st)
            });
            let cat = if c_runtime(r.cat) {
                " ".repeat(tags.width + 2)
            } else {
                format!(" {cat:<tw$} ", tw = tags.width)
            };
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

/// Is a row's category runtime (no tag)?
fn c_runtime(c: Option<Category>) -> bool {
    c.is_none_or(|c| c == Category::Runtime)
}

/// The tree's category tags: whole words when the pane is wide enough,
/// else the short tags with a legend.
struct Tags {
    words: bool,
    width: usize,
}

/// Tree panes at least this wide show whole-word tags.
const WORD_TAGS_W: usize = 64;

impl Tags {
    fn new(a: &Analysis, w: usize) -> Tags {
        let present = Self::present(a);
        let words = w >= WORD_TAGS_W;
        let width = if words {
            present.iter().map(|c| c.as_str().len()).max().unwrap_or(0)
        } else {
            SHORT_TAG_W
        };
        Tags { words, width }
    }

    /// The categories with bytes in the image, runtime aside.
    fn present(a: &Analysis) -> Vec<Category> {
        Category::ALL
            .into_iter()
            .filter(|&c| {
                c != Category::Runtime
                    && (a.bytes_of(c) > 0 || a.category_hidden_bytes[c as usize] > 0)
            })
            .collect()
    }

    /// `tool toolchain · src source`, for the short tags of `cats`.
    fn legend(cats: &[Category]) -> String {
        let theme = Theme { color: false };
        cats.iter()
            .filter(|&&c| theme.category(c).0 != c.as_str())
            .map(|&c| format!("{} {}", theme.category(c).0, c.as_str()))
            .collect::<Vec<_>>()
            .join(" \u{b7} ")
    }
}

/// Width of the short category tags.
const SHORT_TAG_W: usize = 4;

/// What kind of finding: its category, its kind of waste, or advice.
pub fn finding_label(x: &Finding, theme: &Theme) -> (String, Style) {
    match (x.kind, x.category, x.waste) {
        (_, Some(c), _) => (c.as_str().to_string(), theme.category(c).1),
        (_, _, Some(w)) => (w.as_str().to_string(), theme.warn()),
        (FindingKind::Advice, _, _) => ("advice".to_string(), theme.dim()),
        _ => (String::new(), Style::new()),
    }
}

/// The base's kind and layer count, `debian (1 layer)`.
fn base_text(a: &Analysis) -> String {
    let kind = if a.base.kind.is_empty() {
        "unknown"
    } else {
        &a.base.kind
    };
    let n = a.base.layers;
    format!("{kind} ({})", crate::units::plural(n as u64, "layer"))
}

/// Image totals: size, build residue, waste, findings, base, bytes per
/// category; efficiency last (kept for dive's readers, not a headline).
fn draw_summary(f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
    let w = &a.waste;
    let eff = w.efficiency();
    let row = |k: &str, v: String, s: Style| {
        Line::from(vec![
            Span::styled(format!("{k:<12}"), theme.dim()),
            Span::styled(v, s),
        ])
    };
    let mut lines = vec![
        row(
            "Total",
            format!(
                "{} in {}",
                size(w.total_bytes),
                crate::units::plural(a.image.layers.len() as u64, "layer")
            ),
            Style::new(),
        ),
        row(
            "Residue",
            format!("{} ({})", size(a.residue_bytes), percent(a.residue_share())),
            if a.residue_bytes > 0 {
                theme.warn()
            } else {
                theme.good()
            },
        ),
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
    ];
    // Known for registry images only (the text summary says where not).
    if let Some(p) = a.image.pull_size() {
        lines.insert(
            1,
            row("Pull", format!("{} compressed", size(p)), Style::new()),
        );
    }
    if !a.findings.is_empty() {
        let bytes: u64 = a.findings.iter().map(|f| f.bytes).sum();
        lines.push(row(
            "Findings",
            format!("{} \u{b7} {} (f)", a.findings.len(), size(bytes)),
            theme.warn(),
        ));
    }
    lines.push(row("Base", base_text(a), Style::new()));
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
            Span::styled(format!("{:<16}", c.as_str()), st),
            Span::raw(format!(
                "{} {:>5.1}%",
                size_col(b),
                b as f64 * 100.0 / final_bytes as f64
            )),
        ]));
    }
    lines.push(row("Efficiency", percent(eff), theme.dim()));
    let block = Block::bordered()
        .title(Span::styled(" Image ", theme.title()))
        .border_style(theme.border(false));
    f.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

/// The image summary shrunk to one line.
fn draw_summary_line(f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
    let text = format!(
        "{} \u{b7} residue {} \u{b7} wasted {} \u{b7} base {}",
        size(a.waste.total_bytes),
        size(a.residue_bytes),
        size(a.waste.wasted_bytes()),
        base_text(a)
    );
    f.render_widget(
        Paragraph::new(Line::styled(cut(&text, area.width as usize), theme.dim())),
        area,
    );
}

/// The findings shrunk to one line: their count and bytes, and the top one.
fn draw_top_finding(f: &mut Frame, area: Rect, a: &Analysis, theme: &Theme) {
    let Some(top) = a.findings.first() else {
        return;
    };
    let bytes: u64 = a.findings.iter().map(|f| f.bytes).sum();
    let (label, st) = finding_label(top, theme);
    let head = format!(
        " {} \u{b7} {} (f) \u{b7} top: ",
        crate::units::plural(a.findings.len() as u64, "finding"),
        size(bytes)
    );
    let what = format!("{label} {} ", size(top.bytes));
    let w = area.width as usize;
    let rest = w.saturating_sub(head.chars().count() + what.chars().count());
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(head, theme.warn()),
            Span::styled(what, st),
            Span::raw(cut(&top.title, rest)),
        ])),
        area,
    );
}
