//! The application: a stack of screens over the loaded analyses, the help
//! overlay, and `step(Action)` / `draw` — the loop is step, then draw.

use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::action::{Action, KEY_HELP, map_key};
use super::compare::Compare;
use super::explore::Explore;
use super::theme::Theme;
use crate::analysis::Analysis;

/// Smallest usable terminal.
pub const MIN_W: u16 = 60;
pub const MIN_H: u16 = 16;

#[derive(Debug)]
pub enum Screen {
    Explore(Box<Explore>),
    Compare(Box<Compare>),
}

#[derive(Debug)]
pub struct App {
    pub analyses: Vec<Analysis>,
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
        let screen = match analyses.as_slice() {
            [a, b, ..] => Screen::Compare(Box::new(Compare::new(a, b))),
            [a] => Screen::Explore(Box::new(Explore::new(0, a))),
            [] => Screen::Compare(Box::new(Compare::new(
                &Analysis::new(Default::default()),
                &Analysis::new(Default::default()),
            ))),
        };
        App {
            analyses,
            screens: vec![screen],
            help: false,
            quit: false,
            area,
            theme,
        }
    }

    pub fn resize(&mut self, area: Rect) {
        self.area = area;
    }

    /// Is a text line being edited (keys are text, not commands)?
    pub fn editing(&self) -> bool {
        matches!(self.screens.last(), Some(Screen::Explore(e)) if e.is_editing())
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
        let used = match self.screens.last_mut() {
            Some(Screen::Explore(e)) => match self.analyses.get(e.image) {
                Some(a) => e.step(action, a, area),
                None => false,
            },
            Some(Screen::Compare(c)) => match self.analyses.as_slice() {
                [a, b, ..] => {
                    let (used, open) = c.step(action, a, b, area);
                    if let Some((img, layer)) = open {
                        let mut e = Explore::new(img, &self.analyses[img]);
                        e.select_layer(&self.analyses[img], layer, area);
                        self.screens.push(Screen::Explore(Box::new(e)));
                    }
                    used
                }
                _ => false,
            },
            None => false,
        };
        if !used && action == Action::Back {
            if self.screens.len() > 1 {
                self.screens.pop();
            } else {
                self.quit = true;
            }
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
                if let Some(a) = self.analyses.get(e.image) {
                    e.draw(f, area, a, &self.theme, nested);
                }
            }
            Some(Screen::Compare(c)) => {
                if let [a, b, ..] = self.analyses.as_slice() {
                    c.draw(f, area, a, b, &self.theme);
                }
            }
            None => {}
        }
        if self.help {
            self.draw_help(f, area);
        }
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
        let h = (KEY_HELP.len() as u16 + 3).min(area.height);
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
        lines.push(Line::styled(" any key closes", self.theme.dim()));
        f.render_widget(Clear, r);
        f.render_widget(
            Paragraph::new(lines).block(
                Block::bordered()
                    .title(Span::styled(" Keys ", self.theme.title()))
                    .border_style(self.theme.border(true)),
            ),
            r,
        );
    }
}
