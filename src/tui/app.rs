//! The application: one slot per image (loading, ready or failed), a stack
//! of screens over the ready analyses, the help overlay, and
//! `step(Action)` / `apply(LoadEvent)` / `draw` — the loop is step or
//! apply, then draw.

use std::time::Instant;

use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::action::{Action, KEY_HELP, map_key};
use super::compare::{Compare, Open};
use super::explore::Explore;
use super::load::{LoadEvent, Loading, Slot};
use super::theme::Theme;
use super::{bar, cut, size};
use crate::analysis::Analysis;
use crate::analysis::classify::Category;

/// The pairs of ready images a compare screen can show, A before B:
/// (0,1), (0,2) ... (1,2) ...
pub fn ready_pairs(slots: &[Slot]) -> Vec<(usize, usize)> {
    let ready: Vec<usize> = (0..slots.len())
        .filter(|&i| matches!(slots[i], Slot::Ready(_)))
        .collect();
    let mut v = Vec::new();
    for (k, &i) in ready.iter().enumerate() {
        for &j in &ready[k + 1..] {
            v.push((i, j));
        }
    }
    v
}

/// The pair after (or before) `now` among the ready pairs, wrapping;
/// `None` when there is no other.
fn next_pair(slots: &[Slot], now: (usize, usize), forward: bool) -> Option<(usize, usize)> {
    let pairs = ready_pairs(slots);
    if pairs.len() < 2 {
        return None;
    }
    let n = pairs.len();
    let at = pairs.iter().position(|p| *p == now).unwrap_or(0);
    Some(
        pairs[if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        }],
    )
}

/// Image `i`'s letter on the loading screen: A, B, C ...
pub fn image_letter(i: usize) -> char {
    char::from(b'A' + (i % 26) as u8)
}

/// Smallest usable terminal.
pub const MIN_W: u16 = 60;
pub const MIN_H: u16 = 16;

#[derive(Debug)]
pub enum Screen {
    Explore(Box<Explore>),
    Compare(Box<Compare>),
    /// Waiting for images: progress per image, the ready ones can be
    /// explored (`1`/`2`).
    Loading,
}

#[derive(Debug)]
pub struct App {
    /// Image names as given, one per slot.
    pub names: Vec<String>,
    pub slots: Vec<Slot>,
    /// The last screen is shown; `Back` pops to the one below.
    pub screens: Vec<Screen>,
    pub help: bool,
    pub quit: bool,
    /// Terminal size, updated on resize; step uses it for page sizes.
    pub area: Rect,
    pub theme: Theme,
}

impl App {
    /// One image opens explore; two open compare.
    pub fn new(analyses: Vec<Analysis>, area: Rect, theme: Theme) -> App {
        let names = analyses.iter().map(|a| a.image.facts.name()).collect();
        let slots = analyses
            .into_iter()
            .map(|a| Slot::Ready(Box::new(a)))
            .collect();
        App::with_slots(names, slots, area, theme)
    }

    /// Images still to come: the loading screen until one is ready.
    pub fn loading(names: Vec<String>, area: Rect, theme: Theme) -> App {
        let slots = names
            .iter()
            .map(|_| Slot::Loading(Loading::new()))
            .collect();
        App::with_slots(names, slots, area, theme)
    }

    fn with_slots(names: Vec<String>, slots: Vec<Slot>, area: Rect, theme: Theme) -> App {
        let mut app = App {
            names,
            slots,
            screens: vec![Screen::Loading],
            help: false,
            quit: false,
            area,
            theme,
        };
        app.settle();
        app
    }

    /// The analysis of image `i`, when it is ready.
    pub fn analysis(&self, i: usize) -> Option<&Analysis> {
        match self.slots.get(i) {
            Some(Slot::Ready(a)) => Some(a),
            _ => None,
        }
    }

    /// Every image ready?
    pub fn all_ready(&self) -> bool {
        self.slots.iter().all(|s| matches!(s, Slot::Ready(_)))
    }

    /// The first load error, `name: message`.
    pub fn failure(&self) -> Option<String> {
        self.slots.iter().find_map(|s| match s {
            Slot::Failed(e) => Some(e.clone()),
            _ => None,
        })
    }

    /// Fold in a loader's report, received at `now`.
    pub fn apply(&mut self, ev: LoadEvent, now: Instant) {
        match ev {
            LoadEvent::Progress(p) => {
                if let Some(Slot::Loading(l)) = self.slots.get_mut(p.index) {
                    l.update(&p, now);
                }
            }
            LoadEvent::Ready(i, a) => {
                if let Some(s) = self.slots.get_mut(i) {
                    *s = Slot::Ready(a);
                }
                self.settle();
            }
            LoadEvent::Failed(i, e) => {
                if let Some(s) = self.slots.get_mut(i) {
                    *s = Slot::Failed(e);
                }
            }
        }
    }

    /// Replace the loading screen at the bottom of the stack once enough
    /// images are ready: explore for one image, compare for two.
    fn settle(&mut self) {
        if !matches!(self.screens.first(), Some(Screen::Loading)) {
            return;
        }
        let screen = match self.slots.as_slice() {
            [Slot::Ready(a)] => Screen::Explore(Box::new(Explore::new(0, a))),
            [Slot::Ready(a), Slot::Ready(b), ..] => Screen::Compare(Box::new(Compare::new(a, b))),
            _ => return,
        };
        self.screens[0] = screen;
    }

    /// Work to do while no key is pending: build a tree model the next key
    /// will likely need. Returns false when there is nothing to do.
    pub fn idle(&mut self) -> bool {
        match self.screens.last_mut() {
            Some(Screen::Explore(e)) => match self.slots.get(e.image) {
                Some(Slot::Ready(a)) => e.prefetch(a),
                _ => false,
            },
            _ => false,
        }
    }

    /// Still waiting for an image?
    pub fn loading_any(&self) -> bool {
        self.slots.iter().any(|s| matches!(s, Slot::Loading(_)))
    }

    pub fn resize(&mut self, area: Rect) {
        self.area = area;
    }

    /// Is a text line being edited (keys are text, not commands)?
    pub fn editing(&self) -> bool {
        match self.screens.last() {
            Some(Screen::Explore(e)) => e.is_editing(),
            Some(Screen::Compare(c)) => c.is_editing(),
            _ => false,
        }
    }

    pub fn handle_key(&mut self, key: KeyEvent) {
        if self.help && key.kind != ratatui::crossterm::event::KeyEventKind::Release {
            // Any key closes the help; Ctrl+C and q still quit.
            self.step(map_key(key, false).unwrap_or(Action::Back));
            return;
        }
        if let Some(a) = map_key(key, self.editing()) {
            self.step(a);
        }
    }

    pub fn step(&mut self, action: Action) {
        if self.help {
            match action {
                Action::Quit => self.quit = true,
                _ => self.help = false,
            }
            return;
        }
        match action {
            Action::Quit => {
                self.quit = true;
                return;
            }
            Action::Help if !self.editing() => {
                self.help = true;
                return;
            }
            _ => {}
        }
        let area = self.area;
        let mut open: Option<(Open, Option<String>)> = None;
        let used = match self.screens.last_mut() {
            Some(Screen::Explore(e)) => match self.slots.get(e.image) {
                Some(Slot::Ready(a)) => e.step(action, a, area),
                _ => false,
            },
            Some(Screen::Compare(c)) if matches!(action, Action::NextPair | Action::PrevPair) => {
                let now = c.pair;
                if let Some(p) = next_pair(&self.slots, now, action == Action::NextPair) {
                    let (Some(Slot::Ready(a)), Some(Slot::Ready(b))) =
                        (self.slots.get(p.0), self.slots.get(p.1))
                    else {
                        return;
                    };
                    let mut next = Compare::new(a, b);
                    next.pair = p;
                    if let Some(text) = c.filter_text() {
                        next.set_filter(&text, a, b);
                    }
                    next.focus = c.focus;
                    **c = next;
                }
                true
            }
            Some(Screen::Compare(c)) => {
                let (i, j) = c.pair;
                match (self.slots.get(i), self.slots.get(j)) {
                    (Some(Slot::Ready(a)), Some(Slot::Ready(b))) => {
                        let (used, o) = c.step(action, a, b, area);
                        // The screen says A and B; the app's images are
                        // numbered.
                        open = o.map(|mut o| {
                            o.image = if o.image == 0 { i } else { j };
                            (o, c.filter_text())
                        });
                        used
                    }
                    _ => false,
                }
            }
            Some(Screen::Loading) => match action {
                Action::OpenA | Action::OpenB => {
                    let image = usize::from(action == Action::OpenB);
                    open = Some((
                        Open {
                            image,
                            layer: usize::MAX,
                            finding: None,
                        },
                        None,
                    ));
                    true
                }
                _ => false,
            },
            None => false,
        };
        if let Some((o, filter)) = open
            && let Some(Slot::Ready(a)) = self.slots.get(o.image)
        {
            let mut e = Explore::new(o.image, a);
            e.select_layer(a, o.layer, area);
            if let Some(f) = filter {
                e.set_filter(a, &f, area);
            }
            if let Some(i) = o
                .finding
                .and_then(|id| a.findings.iter().position(|x| x.id == id))
            {
                e.jump_to_finding(a, i, area);
            }
            self.screens.push(Screen::Explore(Box::new(e)));
        }
        // Esc goes back a screen; it never quits (q and Ctrl+C do).
        if !used && action == Action::Back && self.screens.len() > 1 {
            self.screens.pop();
        }
    }

    /// Draw the top screen and the help overlay. Reads state only.
    pub fn draw(&self, f: &mut Frame) {
        let area = f.area();
        if area.width < MIN_W || area.height < MIN_H {
            f.render_widget(
                Paragraph::new(format!(
                    "layerscope needs at least {MIN_W}x{MIN_H} (this is {}x{}); q quits",
                    area.width, area.height
                ))
                .wrap(ratatui::widgets::Wrap { trim: true }),
                area,
            );
            return;
        }
        let nested = self.screens.len() > 1;
        match self.screens.last() {
            Some(Screen::Explore(e)) => {
                if let Some(a) = self.analysis(e.image) {
                    e.draw(f, area, a, &self.theme, nested);
                }
            }
            Some(Screen::Compare(c)) => {
                if let (Some(a), Some(b)) = (self.analysis(c.pair.0), self.analysis(c.pair.1)) {
                    let pairs = ready_pairs(&self.slots);
                    let at = pairs.iter().position(|p| *p == c.pair).unwrap_or(0);
                    c.draw(f, area, a, b, &self.theme, (at, pairs.len()));
                }
            }
            Some(Screen::Loading) | None => self.draw_loading(f, area),
        }
        if self.help {
            self.draw_help(f, area);
        }
    }

    /// Progress per image, what is ready, and what failed.
    fn draw_loading(&self, f: &mut Frame, area: Rect) {
        let t = &self.theme;
        let [header, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        let what = if self.slots.len() > 1 {
            "compare"
        } else {
            "explore"
        };
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(" layerscope ", t.key()),
                Span::raw(what),
            ])),
            header,
        );
        let w = body.width.saturating_sub(2) as usize;
        let mut lines = vec![Line::raw("")];
        for (i, (name, slot)) in self.names.iter().zip(&self.slots).enumerate() {
            let tag = if self.slots.len() > 1 {
                format!(" {} ", image_letter(i))
            } else {
                " ".to_string()
            };
            let tag_st = if i == 0 { t.only_a() } else { t.only_b() };
            lines.push(Line::from(vec![
                Span::styled(tag, tag_st),
                Span::styled(cut(name, w.saturating_sub(4)), t.title()),
            ]));
            match slot {
                Slot::Loading(l) => {
                    let bar_w = 24usize;
                    let mut spans = vec![
                        Span::raw("   "),
                        Span::styled(bar(l.fraction(), bar_w), t.bar()),
                        Span::raw(format!(" {:<9} ", l.stage.as_str())),
                    ];
                    if l.received > 0 || l.expected > 0 {
                        let of = if l.expected > 0 {
                            format!(" of {}", size(l.expected))
                        } else {
                            String::new()
                        };
                        spans.push(Span::raw(format!("{}{of}", size(l.received))));
                    }
                    if l.rate >= 1.0 {
                        spans.push(Span::styled(
                            format!("  {}/s", size(l.rate as u64)),
                            t.dim(),
                        ));
                    }
                    lines.push(Line::from(spans));
                }
                Slot::Ready(a) => {
                    let mut s = format!(
                        "   ready: {} in {}, build residue {} ({}), {}",
                        size(a.waste.total_bytes),
                        crate::units::plural(a.image.layers.len() as u64, "layer"),
                        size(a.residue_bytes),
                        crate::output::percent(a.residue_share()),
                        crate::units::plural(a.findings.len() as u64, "finding")
                    );
                    if self.slots.len() > 1 {
                        s.push_str(&format!(" · {} explores it", i + 1));
                    }
                    lines.push(Line::styled(cut(&s, w), t.good()));
                }
                Slot::Failed(e) => {
                    lines.push(Line::styled(
                        format!("   failed: {}", cut(e, w.saturating_sub(11))),
                        t.bad(),
                    ));
                }
            }
            lines.push(Line::raw(""));
        }
        f.render_widget(
            Paragraph::new(lines).block(
                Block::bordered()
                    .title(Span::styled(" Loading ", t.title()))
                    .border_style(t.border(false)),
            ),
            body,
        );
        let hint = if self.failure().is_some() {
            " q quits (exit status 2)"
        } else {
            " q quits · the view opens when the images are ready"
        };
        f.render_widget(Paragraph::new(Line::styled(hint, t.dim())), footer);
    }

    fn draw_help(&self, f: &mut Frame, area: Rect) {
        let kw = KEY_HELP
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let dw = KEY_HELP
            .iter()
            .map(|(_, d)| d.chars().count())
            .max()
            .unwrap_or(0);
        let w = ((kw + dw + 4) as u16 + 2).min(area.width);
        // What the file tree's short category tags stand for.
        let legend: Vec<String> = Category::ALL
            .into_iter()
            .filter_map(|c| {
                let (tag, _) = self.theme.category(c);
                (!tag.is_empty() && tag != c.as_str()).then(|| format!("{tag} {}", c.as_str()))
            })
            .collect();
        let legend = format!(" tags: {}", legend.join(" \u{b7} "));
        let inner_w = w.saturating_sub(2).max(1) as usize;
        let legend_h = legend.chars().count().div_ceil(inner_w) as u16;
        let h = (KEY_HELP.len() as u16 + 3 + legend_h).min(area.height);
        let [r] = Layout::horizontal([Constraint::Length(w)])
            .flex(Flex::Center)
            .areas(area);
        let [r] = Layout::vertical([Constraint::Length(h)])
            .flex(Flex::Center)
            .areas(r);
        let mut lines: Vec<Line> = KEY_HELP
            .iter()
            .map(|(k, d)| {
                Line::from(vec![
                    Span::styled(format!(" {k:<kw$}  "), self.theme.key()),
                    Span::raw(*d),
                ])
            })
            .collect();
        lines.push(Line::styled(legend, self.theme.dim()));
        lines.push(Line::styled(" any key closes", self.theme.dim()));
        f.render_widget(Clear, r);
        f.render_widget(
            Paragraph::new(lines)
                .wrap(ratatui::widgets::Wrap { trim: false })
                .block(
                    Block::bordered()
                        .title(Span::styled(" Keys ", self.theme.title()))
                        .border_style(self.theme.border(true)),
                ),
            r,
        );
    }
}
