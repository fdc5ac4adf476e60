//! Screen tests: the whole UI on ratatui's TestBackend, driven by scripted
//! keys (dua-cli's journeys), with insta snapshots of full screens.
#![allow(clippy::unwrap_used)]

mod tui_fixtures;

use layerscope::tui::action::Action;
use layerscope::tui::app::{App, Screen};
use layerscope::tui::explore::{Explore, Pane};
use layerscope::tui::tree::{SortBy, Status, TreeMode};
use layerscope::tui::{Theme, compare};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

fn app(images: Vec<layerscope::analysis::Analysis>, w: u16, h: u16) -> App {
    App::new(images, Rect::new(0, 0, w, h), Theme { color: true })
}

fn screen(app: &App) -> String {
    let area = app.area;
    let mut t = Terminal::new(TestBackend::new(area.width, area.height)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    let buf = t.backend().buffer();
    let mut s = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// Send keys as a user types them: `"j j Tab / g c c Enter"`; words are key
/// names, single characters are typed.
fn keys(app: &mut App, script: &str) {
    for k in script.split(' ').filter(|k| !k.is_empty()) {
        let (code, m) = match k {
            "Tab" => (KeyCode::Tab, KeyModifiers::NONE),
            "Enter" => (KeyCode::Enter, KeyModifiers::NONE),
            "Esc" => (KeyCode::Esc, KeyModifiers::NONE),
            "Bs" => (KeyCode::Backspace, KeyModifiers::NONE),
            "Up" => (KeyCode::Up, KeyModifiers::NONE),
            "Down" => (KeyCode::Down, KeyModifiers::NONE),
            "Left" => (KeyCode::Left, KeyModifiers::NONE),
            "Right" => (KeyCode::Right, KeyModifiers::NONE),
            "PgDn" => (KeyCode::PageDown, KeyModifiers::NONE),
            "Space" => (KeyCode::Char(' '), KeyModifiers::NONE),
            k if k.starts_with("C-") => (
                KeyCode::Char(k[2..].chars().next().unwrap()),
                KeyModifiers::CONTROL,
            ),
            k => (KeyCode::Char(k.chars().next().unwrap()), KeyModifiers::NONE),
        };
        app.handle_key(KeyEvent::new(code, m));
    }
}

fn explore(app: &App) -> &Explore {
    match app.screens.last().unwrap() {
        Screen::Explore(e) => e,
        _ => panic!("expected explore"),
    }
}

fn compare(app: &App) -> &compare::Compare {
    match app.screens.last().unwrap() {
        Screen::Compare(c) => c,
        _ => panic!("expected compare"),
    }
}

/// Paths of the visible rows.
fn rows(app: &App) -> Vec<String> {
    let e = explore(app);
    let img = &app.analysis(e.image).unwrap().image;
    e.visible
        .iter()
        .map(|&r| img.tree.path(e.model.rows[r as usize].node))
        .collect()
}

fn row_status(app: &App, path: &str) -> Option<Status> {
    let e = explore(app);
    let img = &app.analysis(e.image).unwrap().image;
    e.model
        .rows
        .iter()
        .find(|r| img.tree.path(r.node) == path)
        .map(|r| r.status)
}

#[test]
fn explore_80x24() {
    let a = app(vec![tui_fixtures::single()], 80, 24);
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn explore_160x48() {
    let mut a = app(vec![tui_fixtures::single()], 160, 48);
    keys(&mut a, "Tab + ");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn explore_help_overlay() {
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    keys(&mut a, "?");
    assert!(a.help);
    insta::assert_snapshot!(screen(&a));
    keys(&mut a, "x");
    assert!(!a.help && !a.quit);
}

#[test]
fn compare_80x24() {
    let a = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 80, 24);
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn compare_160x48() {
    let mut a = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 160, 48);
    keys(&mut a, "j Enter");
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn tiny_terminal_says_so() {
    let a = app(vec![tui_fixtures::single()], 40, 10);
    assert!(screen(&a).contains("at least"));
}

#[test]
fn starts_on_last_layer_with_the_whole_file_system_by_size() {
    let a = app(vec![tui_fixtures::single()], 80, 24);
    let e = explore(&a);
    assert_eq!(e.layer, 4);
    assert_eq!(e.mode, TreeMode::Aggregated);
    let r = rows(&a);
    // Top level sorted by size: /usr (toolchain) first; top-level dirs open.
    assert_eq!(r[0], "/usr");
    assert_eq!(r[1], "/usr/lib");
    assert!(r.contains(&"/app/server".to_string()));
    // Deleted in an earlier layer: gone from the final file system.
    assert!(!r.iter().any(|p| p.contains("deb_main_Packages")));
}

#[test]
fn layer_changes_mark_added_modified_and_removed() {
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    // Layer 2 (apt-get install): added gcc, modified passwd.
    keys(&mut a, "Up Up Up C-l");
    let e = explore(&a);
    assert_eq!((e.layer, e.mode), (1, TreeMode::Layer));
    assert_eq!(row_status(&a, "/usr/lib/gcc/cc1"), Some(Status::Added));
    assert_eq!(row_status(&a, "/etc/passwd"), Some(Status::Modified));
    assert_eq!(row_status(&a, "/bin/sh"), None, "not changed by layer 2");
    // Layer 3 removes the apt lists: still shown, where they were, as removed.
    keys(&mut a, "Down");
    assert_eq!(
        row_status(&a, "/var/lib/apt/lists/deb_main_Packages"),
        Some(Status::Removed)
    );
    keys(&mut a, "Tab +");
    let s = screen(&a);
    assert!(s.contains("- ") && s.contains("deb_main_P"), "{s}");
    // Aggregated view after layer 3 shows the removal and everything else.
    keys(&mut a, "v");
    assert_eq!(explore(&a).mode, TreeMode::Aggregated);
    assert_eq!(
        row_status(&a, "/var/lib/apt/lists/deb_main_Packages"),
        Some(Status::Removed)
    );
    assert_eq!(row_status(&a, "/bin/sh"), Some(Status::Unchanged));
}

#[test]
fn a_file_replacing_an_implied_directory_takes_its_content_in_the_tree() {
    use tui_fixtures::{E, facts, layer};
    // Layer 1 writes /a/b/c and /a/d without an entry for /a or /a/b (the
    // tar only implies them); layer 2 writes a file at /a.
    let layers = vec![
        layer(
            "ADD files /",
            "f1",
            &[E::File("a/b/c", 100), E::File("a/d", 10)],
        ),
        layer("COPY a /a", "f2", &[E::File("a", 7)]),
    ];
    let img = layerscope::index::merge::build_image(facts("implied:1", "f"), layers).unwrap();
    let mut a = app(vec![layerscope::analysis::Analysis::new(img)], 80, 24);
    // After layer 2 the file system has the file /a; what was below it is
    // shown where it was, removed (as a whiteout's paths are).
    let r = rows(&a);
    assert!(r.contains(&"/a".to_string()), "{r:?}");
    assert_eq!(row_status(&a, "/a"), Some(Status::Added));
    for p in ["/a/b/c", "/a/d"] {
        assert_eq!(row_status(&a, p), Some(Status::Removed), "{p}");
    }
    // Layer 2's own changes show what it took away, as removed.
    keys(&mut a, "C-l");
    assert_eq!(explore(&a).mode, TreeMode::Layer);
    assert_eq!(row_status(&a, "/a/b/c"), Some(Status::Removed));
    assert_eq!(row_status(&a, "/a/d"), Some(Status::Removed));
    // Layer 1's own view still has them, added.
    keys(&mut a, "Up");
    assert_eq!(row_status(&a, "/a/b/c"), Some(Status::Added));
}

#[test]
fn directory_sizes_add_up() {
    let a = app(vec![tui_fixtures::single()], 80, 24);
    let e = explore(&a);
    let img = &a.analysis(0).unwrap().image;
    let size = |p: &str| {
        e.model
            .rows
            .iter()
            .find(|r| img.tree.path(r.node) == p)
            .unwrap()
            .size
    };
    assert_eq!(size("/usr/lib/gcc"), 55_000_000);
    assert_eq!(size("/app"), 8_014_800);
    let top: u64 = e
        .model
        .rows
        .iter()
        .filter(|r| r.depth == 0)
        .map(|r| r.size)
        .sum();
    assert_eq!(top, a.analysis(0).unwrap().waste.final_bytes);
}

#[test]
fn filter_by_regex_glob_and_size_then_cancel() {
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    keys(&mut a, "/ g c c");
    assert!(explore(&a).is_editing());
    let r = rows(&a);
    assert!(r.contains(&"/usr/lib/gcc/cc1".to_string()), "{r:?}");
    assert!(
        r.iter()
            .all(|p| "/usr/lib/gcc/cc1 /usr/bin/gcc".contains(p.as_str()) || p.contains("gcc")),
        "{r:?}"
    );
    assert!(!r.contains(&"/bin/sh".to_string()));
    keys(&mut a, "Enter");
    assert!(!explore(&a).is_editing());
    assert!(screen(&a).contains("[gcc]"));
    // Glob plus a minimum size.
    keys(&mut a, "/ C-u * . s o * Space > 1 M Enter");
    assert_eq!(explore(&a).filter.min_size, 1_000_000);
    let r = rows(&a);
    assert!(r.contains(&"/usr/lib/libc.so.6".to_string()), "{r:?}");
    assert!(!r.contains(&"/app/server".to_string()), "{r:?}");
    // A bad regex keeps the previous filter and says why.
    keys(&mut a, "/ C-u (");
    assert!(explore(&a).filter.error.is_some());
    assert!(rows(&a).contains(&"/usr/lib/libc.so.6".to_string()));
    // Esc restores the filter from before editing.
    keys(&mut a, "Esc");
    assert_eq!(explore(&a).filter.text, "*.so* >1M");
    keys(&mut a, "/ C-u Enter");
    assert!(rows(&a).contains(&"/bin/sh".to_string()));
    assert!(!a.quit);
}

#[test]
fn filter_sizes_read_as_the_flags_do() {
    // `--max-size 10MiB` is accepted; so is `>10MiB` in the filter, with
    // the same meaning (binary units), in explore and in compare.
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    keys(&mut a, "/ > 2 4 M i B Enter");
    let e = explore(&a);
    assert!(e.filter.error.is_none(), "{:?}", e.filter.error);
    assert_eq!(e.filter.min_size, 24 << 20);
    let img = &a.analysis(0).unwrap().image;
    // cc1 (30 MB) and lto1 (25 MB) are over 24 MiB (25,165,824 bytes).
    let files: Vec<String> = e
        .visible
        .iter()
        .map(|&r| &e.model.rows[r as usize])
        .filter(|r| !r.is_dir)
        .map(|r| img.tree.path(r.node))
        .collect();
    assert_eq!(files, ["/usr/lib/gcc/cc1"]);
    let mut c = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 80, 24);
    keys(&mut c, "/ > 1 0 M i B Enter");
    assert!(compare(&c).filter.error.is_none());
    assert_eq!(compare(&c).filter.min_size, 10 << 20);
    // A unit the flags refuse is refused here too, and says so.
    keys(&mut c, "/ C-u > 1 0 X B");
    assert!(
        compare(&c)
            .filter
            .error
            .as_deref()
            .unwrap()
            .contains("unknown unit")
    );
    // The filter applied as typed stays the last one that parsed: `>10`.
    assert_eq!(compare(&c).filter.min_size, 10);
}

#[test]
fn collapse_expand_and_sort() {
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    keys(&mut a, "Tab");
    assert_eq!(explore(&a).focus, Pane::Tree);
    // Collapse /usr with Space on it.
    keys(&mut a, "Space");
    let r = rows(&a);
    assert!(!r.contains(&"/usr/lib".to_string()));
    assert_eq!(r[1], "/app");
    // Expand with l, go into it with l, back to the parent with h.
    keys(&mut a, "l");
    assert_eq!(rows(&a)[1], "/usr/lib");
    keys(&mut a, "l h");
    assert_eq!(explore(&a).selected, 0);
    // Collapse all, expand all.
    keys(&mut a, "-");
    assert!(rows(&a).iter().all(|p| p.matches('/').count() == 1));
    keys(&mut a, "+");
    assert!(rows(&a).contains(&"/usr/lib/gcc/cc1".to_string()));
    // Sort by name.
    keys(&mut a, "s");
    assert_eq!(explore(&a).sort, SortBy::Name);
    assert_eq!(rows(&a)[0], "/app");
    // Selection stays on the same node across a re-sort.
    keys(&mut a, "j j");
    let before = explore(&a).selected_node();
    keys(&mut a, "s");
    assert_eq!(explore(&a).selected_node(), before);
}

#[test]
fn change_toggles_hide_rows() {
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    // Layer 2, only its own changes... then hide unmodified in aggregated view.
    keys(&mut a, "Up Up Up + C-u");
    let r = rows(&a);
    assert!(!r.contains(&"/bin/sh".to_string()), "{r:?}");
    assert!(r.contains(&"/usr/bin/gcc".to_string()));
    keys(&mut a, "C-a");
    let r = rows(&a);
    assert!(!r.contains(&"/usr/bin/gcc".to_string()));
    assert!(
        r.contains(&"/etc/passwd".to_string()),
        "modified stays: {r:?}"
    );
    keys(&mut a, "C-m");
    assert!(rows(&a).is_empty());
    keys(&mut a, "C-a C-m C-u");
    assert!(rows(&a).contains(&"/bin/sh".to_string()));
}

#[test]
fn scrolling_keeps_the_selection_on_screen() {
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    keys(&mut a, "Tab + PgDn PgDn PgDn");
    let e = explore(&a);
    assert_eq!(e.selected, e.visible.len() - 1);
    assert!(e.offset <= e.selected && e.selected < e.offset + 20);
    let s = screen(&a);
    let last = a
        .analysis(0)
        .unwrap()
        .image
        .tree
        .name(e.model.rows[e.visible[e.selected] as usize].node)
        .to_string();
    assert!(s.contains(&last), "{s}");
}

#[test]
fn compare_aligns_paths_and_drills_down() {
    let mut a = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 80, 24);
    let c = compare(&a);
    assert_eq!(c.path(), "/");
    // Largest delta first: /usr lost the toolchain.
    assert_eq!(c.entries[0].name, "usr");
    assert!(c.entries[0].delta() < -50_000_000);
    let var = c.entries.iter().find(|e| e.name == "var").unwrap();
    assert!(var.a.is_some() && var.b.is_none(), "only in A");
    keys(&mut a, "Enter");
    assert_eq!(compare(&a).path(), "/usr");
    keys(&mut a, "Enter");
    assert_eq!(compare(&a).path(), "/usr/lib");
    assert_eq!(compare(&a).entries[0].name, "gcc");
    keys(&mut a, "Left");
    assert_eq!(compare(&a).path(), "/usr");
    keys(&mut a, "Esc");
    assert_eq!(compare(&a).path(), "/");
    assert!(!a.quit);
    let app_dir = compare(&a)
        .entries
        .iter()
        .find(|e| e.name == "app")
        .unwrap();
    assert_eq!(app_dir.size_a, 8_014_800);
    assert_eq!(app_dir.size_b, 7_500_000);
}

#[test]
fn compare_marks_shared_layers_and_opens_explore() {
    let mut a = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 80, 24);
    let c = compare(&a);
    let img_a = &a.analysis(0).unwrap().image;
    assert!(c.is_shared(&img_a.layers[0].diff_id));
    assert!(!c.is_shared(&img_a.layers[1].diff_id));
    // Layers B pane, second layer, Enter: explore B at that layer.
    keys(&mut a, "Tab Tab j Enter");
    assert_eq!(a.screens.len(), 2);
    let e = explore(&a);
    assert_eq!((e.image, e.layer), (1, 1));
    assert!(screen(&a).contains("Esc back"));
    keys(&mut a, "Esc");
    assert_eq!(a.screens.len(), 1);
    assert!(!a.quit);
    keys(&mut a, "1");
    assert_eq!(explore(&a).image, 0);
    keys(&mut a, "q");
    assert!(a.quit);
}

/// A shares its base with B and also a layer B has elsewhere: one layer
/// of common prefix, two layers in common.
fn sharing_apart_from_the_base() -> Vec<layerscope::analysis::Analysis> {
    use layerscope::analysis::Analysis;
    use layerscope::index::merge::build_image;
    use tui_fixtures::{E, base_layer, facts, layer};
    let tools = || layer("RUN install tools", "e1", &[E::File("opt/tools", 5_000)]);
    let app = || layer("COPY app /app", "e2", &[E::File("app/bin", 9_000)]);
    let a = vec![base_layer(), tools(), app()];
    let b = vec![base_layer(), app()];
    vec![
        Analysis::new(build_image(facts("shared:a", "5a"), a).unwrap()),
        Analysis::new(build_image(facts("shared:b", "5b"), b).unwrap()),
    ]
}

/// The two numbers after `label` on a screen: "<p> base, <c> in common".
fn shared_numbers(screen: &str, label: &str) -> (u64, u64) {
    let at = screen
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in\n{screen}"));
    let rest = &screen[at + label.len()..];
    let nums: Vec<u64> = rest
        .split([' ', ','])
        .take(5)
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(rest.starts_with(&format!("{} base, {} in common", nums[0], nums[1])));
    (nums[0], nums[1])
}

#[test]
fn compare_shows_the_shared_layers_the_json_reports() {
    let images = sharing_apart_from_the_base();
    let c = layerscope::analysis::compare::compare(&images[0], &images[1]);
    let refs: Vec<&layerscope::analysis::Analysis> = images.iter().collect();
    let json: serde_json::Value =
        serde_json::to_value(layerscope::report::Report::new(&refs).with_comparison(&c)).unwrap();
    let want = (
        json["comparison"][0]["shared_layers"].as_u64().unwrap(),
        json["comparison"][0]["layers_in_common"].as_u64().unwrap(),
    );
    // The same base (layer 1), and B's layer 2 is A's layer 3.
    assert_eq!(want, (1, 2));
    let wide = app(sharing_apart_from_the_base(), 160, 48);
    assert_eq!(shared_numbers(&screen(&wide), "shared layers: "), want);
    let narrow = app(sharing_apart_from_the_base(), 80, 24);
    assert_eq!(shared_numbers(&screen(&narrow), "Layers B · "), want);
    // Both layers of B are marked as A's too.
    let cmp = compare(&narrow);
    let b = &narrow.analysis(1).unwrap().image;
    assert!(b.layers.iter().all(|l| cmp.is_shared(&l.diff_id)));
}

#[test]
fn esc_clears_the_filter_then_goes_back_and_never_quits() {
    // Explore: `/ *.a Enter` then Esc clears the filter, and never quits.
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    let all = rows(&a).len();
    keys(&mut a, "/ g c c Enter");
    assert_eq!(explore(&a).filter.text, "gcc");
    assert!(rows(&a).len() < all);
    keys(&mut a, "Esc");
    assert!(!a.quit);
    assert!(explore(&a).filter.is_trivial(), "Esc cleared the filter");
    keys(&mut a, "Esc Esc");
    assert!(!a.quit, "Esc never quits");
    // Toggles count as a filter too.
    keys(&mut a, "C-u");
    assert!(!explore(&a).filter.unmodified);
    keys(&mut a, "Esc");
    assert!(explore(&a).filter.is_trivial());
    // The help overlay closes on Esc.
    keys(&mut a, "? Esc");
    assert!(!a.help && !a.quit);
    // On a short terminal the findings take the tree's place; Esc closes them.
    keys(&mut a, "f");
    assert_eq!(explore(&a).focus, Pane::Findings);
    keys(&mut a, "Esc");
    assert_eq!(explore(&a).focus, Pane::Tree);
    assert!(!a.quit);
    keys(&mut a, "q");
    assert!(a.quit);
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    keys(&mut a, "/ x C-c");
    assert!(a.quit);

    // Compare → explore with the filter carried over: Esc clears it there,
    // the next Esc returns to compare, whose filter stays.
    let mut a = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 80, 24);
    keys(&mut a, "/ g c c Enter 1");
    assert_eq!(explore(&a).filter.text, "gcc");
    keys(&mut a, "Esc");
    assert!(explore(&a).filter.is_trivial());
    keys(&mut a, "Esc");
    assert_eq!(compare(&a).filter.text, "gcc");
    keys(&mut a, "Esc");
    assert!(compare(&a).filter.is_trivial());
    keys(&mut a, "Esc Esc");
    assert!(matches!(a.screens.last(), Some(Screen::Compare(_))));
    assert!(!a.quit);
}

#[test]
fn no_color_theme_draws_no_colour() {
    let a = App::new(
        vec![tui_fixtures::single()],
        Rect::new(0, 0, 80, 24),
        Theme { color: false },
    );
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| a.draw(f)).unwrap();
    let buf = t.backend().buffer();
    for c in buf.content() {
        assert_eq!(c.fg, ratatui::style::Color::Reset);
        assert_eq!(c.bg, ratatui::style::Color::Reset);
    }
    let _ = Action::Quit;
}

#[test]
fn category_marks_and_filter() {
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    assert!(screen(&a).contains("docs"));
    keys(&mut a, "/ @ d o c Enter");
    let r = rows(&a);
    assert!(r.contains(&"/usr/share/doc/README".to_string()), "{r:?}");
    assert!(!r.contains(&"/bin/sh".to_string()), "{r:?}");
    keys(&mut a, "/ C-u @ n o p e");
    assert!(explore(&a).filter.error.is_some());
}

#[test]
fn summary_shows_findings_and_the_headline() {
    let a = app(vec![tui_fixtures::single()], 80, 24);
    let s = screen(&a);
    let an = a.analysis(0).unwrap();
    let n = an.findings.len();
    assert!(s.contains(&format!("Findings    {n} ·")), "{s}");
    // The header's second line leads with the residue and the projections.
    let second = s.lines().nth(1).unwrap();
    let size = layerscope::output::size;
    let percent = layerscope::output::percent;
    assert!(
        second.starts_with(&format!(
            " residue {} ({})",
            size(an.residue_bytes),
            percent(an.residue_share())
        )),
        "{second}"
    );
    assert!(
        second.contains(&format!(
            "without it ~{}",
            size(an.projected_runtime_bytes.unwrap())
        )),
        "{second}"
    );
    assert!(
        second.contains(&format!("app ~{}", size(an.app_bytes))),
        "{second}"
    );
    assert!(!s.lines().take(2).any(|l| l.contains("efficiency")), "{s}");
    let wide = app(vec![tui_fixtures::single()], 160, 48);
    let w = screen(&wide);
    let second = w.lines().nth(1).unwrap();
    assert!(second.contains("build residue "), "{second}");
    assert!(second.contains("same base without it ~"), "{second}");
    assert!(second.contains("app's own files ~"), "{second}");
}

#[test]
fn findings_list_jumps_to_the_files() {
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    // A filter that hides the finding's files is cleared by the jump.
    keys(&mut a, "/ g c c Enter f");
    assert_eq!(explore(&a).focus, Pane::Findings);
    let s = screen(&a);
    let n = a.analysis(0).unwrap().findings.len();
    assert!(s.contains(&format!("Findings: {n}")), "{s}");
    assert!(s.contains("fix:"), "{s}");
    // The second finding: the apt lists added in layer 2, deleted in 3.
    let f = &a.analysis(0).unwrap().findings[1];
    assert_eq!(f.top_paths[0].0, "/var/lib/apt");
    keys(&mut a, "j Enter");
    let e = explore(&a);
    assert_eq!(
        (e.layer, e.mode, e.focus),
        (1, TreeMode::Aggregated, Pane::Tree)
    );
    assert!(e.filter.text.is_empty(), "filter cleared");
    let img = &a.analysis(0).unwrap().image;
    assert_eq!(img.tree.path(e.selected_node().unwrap()), "/var/lib/apt");
    assert!(rows(&a).contains(&"/var/lib/apt/lists".to_string()) || e.visible.len() > 3);
    // Down the list to the docs finding, and jump again.
    keys(&mut a, "f j Enter");
    let e = explore(&a);
    let img = &a.analysis(0).unwrap().image;
    assert!(
        img.tree
            .path(e.selected_node().unwrap())
            .starts_with("/usr/share"),
        "{}",
        img.tree.path(e.selected_node().unwrap())
    );
    // f again returns to the files; Tab cycles through the findings.
    keys(&mut a, "f f");
    assert_eq!(explore(&a).focus, Pane::Tree);
    keys(&mut a, "Tab");
    assert_eq!(explore(&a).focus, Pane::Findings);
    keys(&mut a, "Tab");
    assert_eq!(explore(&a).focus, Pane::Layers);
}

#[test]
fn revisited_layers_reuse_their_built_tree() {
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    let first = explore(&a).model.clone();
    keys(&mut a, "Up Down");
    assert!(std::rc::Rc::ptr_eq(&first, &explore(&a).model));
    // Idle time builds the neighbours before they are asked for.
    while a.idle() {}
    let before = explore(&a).model.clone();
    keys(&mut a, "v");
    assert!(!std::rc::Rc::ptr_eq(&before, &explore(&a).model));
    assert_eq!(explore(&a).mode, TreeMode::Layer);
}

#[test]
fn compare_lists_findings_resolved_remaining_new() {
    let mut a = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 160, 48);
    let c = compare(&a);
    assert_eq!(c.cmp.resolved.len(), 4);
    assert_eq!(c.cmp.remaining.len(), 1);
    assert!(c.cmp.new.is_empty());
    let s = screen(&a);
    assert!(s.contains("✓ resolved"), "{s}");
    assert!(s.contains("= remaining"), "{s}");
    // Enter on a resolved finding explores A at that finding's files.
    keys(&mut a, "f j Enter");
    let e = explore(&a);
    assert_eq!((e.image, e.layer, e.focus), (0, 1, Pane::Tree));
    let img = &a.analysis(0).unwrap().image;
    assert_eq!(img.tree.path(e.selected_node().unwrap()), "/var/lib/apt");
    keys(&mut a, "Esc");
    assert!(matches!(a.screens.last(), Some(Screen::Compare(_))));
}

#[test]
fn compare_applies_the_filters() {
    let mut a = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 80, 24);
    keys(&mut a, "/ g c c");
    assert!(a.editing());
    let names: Vec<String> = compare(&a).entries.iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, ["usr"]);
    keys(&mut a, "Enter Enter");
    assert_eq!(compare(&a).path(), "/usr");
    let names: Vec<String> = compare(&a).entries.iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, ["lib", "bin"]);
    assert!(screen(&a).contains("[gcc]"));
    // Esc clears the filter first, then goes up a directory.
    keys(&mut a, "Esc");
    assert!(compare(&a).filter.text.is_empty());
    assert_eq!(compare(&a).path(), "/usr");
    keys(&mut a, "Esc");
    assert_eq!(compare(&a).path(), "/");
    // Size and category: only the docs pass @docs.
    keys(&mut a, "/ C-u @ d o c s Enter");
    let names: Vec<String> = compare(&a).entries.iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, ["usr"]);
    keys(&mut a, "/ C-u > 5 M Enter");
    let names: Vec<String> = compare(&a).entries.iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, ["usr", "app"]);
    // A bad filter keeps the old one; Esc restores the text before editing.
    keys(&mut a, "/ C-u (");
    assert!(compare(&a).filter.error.is_some());
    keys(&mut a, "Esc");
    assert_eq!(compare(&a).filter.text, ">5M");
    // Explore from here carries the filter over.
    keys(&mut a, "2");
    assert_eq!(explore(&a).filter.min_size, 5_000_000);
    // Esc clears it there, then returns to compare, whose filter stays.
    keys(&mut a, "Esc Esc");
    assert_eq!(compare(&a).filter.text, ">5M");
    keys(&mut a, "/ C-u Enter");
    assert_eq!(compare(&a).entries.len(), 5);
}

#[test]
fn loading_screen_progress_then_views_as_images_arrive() {
    use layerscope::source::progress::{ProgressEvent, Stage};
    use layerscope::tui::load::{LoadEvent, Slot};
    use std::time::{Duration, Instant};
    let t0 = Instant::now();
    let mut a = App::loading(
        vec!["one.tar".into(), "two.tar".into()],
        Rect::new(0, 0, 80, 24),
        Theme { color: true },
    );
    assert!(matches!(a.screens[0], Screen::Loading));
    for (i, got) in [(0, 40_000_000u64), (1, 10_000_000)] {
        a.apply(
            LoadEvent::Progress(ProgressEvent {
                index: i,
                name: String::new(),
                stage: Stage::Receiving,
                received: 1,
                expected: 80_000_000,
                layers: Vec::new(),
            }),
            t0,
        );
        a.apply(
            LoadEvent::Progress(ProgressEvent {
                index: i,
                name: String::new(),
                stage: Stage::Receiving,
                received: got,
                expected: 80_000_000,
                layers: Vec::new(),
            }),
            t0 + Duration::from_secs(2),
        );
    }
    let s = screen(&a);
    assert!(s.contains("40 MB of 80 MB") && s.contains("20 MB/s"), "{s}");
    assert!(s.contains("10 MB of 80 MB") && s.contains("5 MB/s"), "{s}");
    insta::assert_snapshot!("loading_80x24", s);
    // A is ready: still loading B, but A can be explored meanwhile.
    a.apply(LoadEvent::Ready(0, Box::new(tui_fixtures::single())), t0);
    assert!(matches!(a.screens[0], Screen::Loading));
    assert!(screen(&a).contains("ready: 75.08 MB in 5 layers"));
    keys(&mut a, "1");
    assert_eq!(explore(&a).image, 0);
    // B arrives: compare is underneath, Esc goes there.
    a.apply(LoadEvent::Ready(1, Box::new(tui_fixtures::multi())), t0);
    assert!(matches!(a.slots[1], Slot::Ready(_)));
    keys(&mut a, "Esc");
    assert_eq!(compare(&a).path(), "/");
    assert!(a.failure().is_none());
}

#[test]
fn a_failed_load_says_why_and_quits_with_an_error() {
    use layerscope::tui::load::LoadEvent;
    let mut a = App::loading(
        vec!["nope.tar".into()],
        Rect::new(0, 0, 80, 24),
        Theme { color: true },
    );
    a.apply(
        LoadEvent::Failed(0, "nope.tar: no such file or directory".into()),
        std::time::Instant::now(),
    );
    let s = screen(&a);
    assert!(s.contains("failed: nope.tar: no such file"), "{s}");
    assert!(s.contains("exit status 2"), "{s}");
    keys(&mut a, "q");
    assert!(a.quit);
    assert_eq!(
        a.failure().as_deref(),
        Some("nope.tar: no such file or directory")
    );
}

#[test]
fn loader_threads_report_ready_or_failed() {
    use layerscope::analysis::classify::RuleSet;
    use layerscope::source::{ImageRef, LoadOptions, Reference};
    use layerscope::tui::load::{Analyse, LoadEvent, spawn};
    use std::sync::Arc;
    let real = "/work/scratch/go-app-single.tar";
    // A file removed after the reference was parsed.
    let gone = "/nonexistent/x.tar";
    let mut names = vec![Reference {
        given: gone.into(),
        image: ImageRef::DockerArchive(gone.into(), None),
    }];
    let have_real = std::path::Path::new(real).exists();
    if have_real {
        names.push(Reference::parse(real).unwrap());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let how = Analyse {
        rules: Arc::new(RuleSet::builtin()),
        base: None,
    };
    spawn(&names, &LoadOptions::default(), &how, &tx);
    drop(tx);
    let mut failed = None;
    let mut ready = None;
    let mut progressed = false;
    for ev in rx {
        match ev {
            LoadEvent::Failed(i, e) => failed = Some((i, e)),
            LoadEvent::Ready(i, a) => ready = Some((i, a.image.layers.len())),
            LoadEvent::Progress(p) => progressed |= p.expected > 0,
        }
    }
    let (i, e) = failed.unwrap();
    assert_eq!(i, 0);
    assert!(e.to_lowercase().contains("no such file"), "{e}");
    if have_real {
        assert_eq!(ready.unwrap().0, 1);
        assert!(progressed, "the archive's size is the expected total");
    }
}

/// Content size, digest and link target.
type Identity = (u64, u64, Option<String>);

/// The non-directory files of an image's final file system, by path:
/// (bytes as counted, content identity).
fn final_files(app: &App, image: usize) -> std::collections::HashMap<String, (u64, Identity)> {
    use layerscope::index::layer::EntryKind;
    let img = &app.analysis(image).unwrap().image;
    let mut m = std::collections::HashMap::new();
    for (node, loc) in img.fs.iter().enumerate() {
        let Some(loc) = loc else { continue };
        let e = img.entry(*loc);
        if e.kind == EntryKind::Dir {
            continue;
        }
        let link = e.link.as_deref().map(str::to_string);
        m.insert(
            img.tree.path(node as u32),
            (e.disk_bytes(), (e.size, e.digest, link)),
        );
    }
    m
}

/// Bytes in A and B under `dir` over the files `keep` accepts, computed
/// from the images alone: `keep(path, status)`.
fn expected_sums(app: &App, dir: &str, keep: impl Fn(&str, Status) -> bool) -> (u64, u64) {
    let (fa, fb) = (final_files(app, 0), final_files(app, 1));
    let under = |p: &str| p.starts_with(&format!("{dir}/"));
    let mut sum = (0, 0);
    for (p, (bytes, id)) in &fa {
        let st = match fb.get(p) {
            None => Status::Removed,
            Some((_, other)) if other == id => Status::Unchanged,
            Some(_) => Status::Modified,
        };
        if under(p) && keep(p, st) {
            sum.0 += bytes;
        }
    }
    for (p, (bytes, id)) in &fb {
        let st = match fa.get(p) {
            None => Status::Added,
            Some((_, other)) if other == id => Status::Unchanged,
            Some(_) => Status::Modified,
        };
        if under(p) && keep(p, st) {
            sum.1 += bytes;
        }
    }
    sum
}

fn names(app: &App) -> Vec<String> {
    compare(app)
        .entries
        .iter()
        .map(|e| e.name.clone())
        .collect()
}

fn sums_of(app: &App, name: &str) -> (u64, u64) {
    let e = compare(app)
        .entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", names(app)));
    (e.size_a, e.size_b)
}

#[test]
fn compare_change_toggles_hide_rows_by_status() {
    let mut a = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 80, 24);
    let mut sorted = names(&a);
    sorted.sort();
    assert_eq!(sorted, ["app", "bin", "etc", "usr", "var"]);
    let status = |a: &App, n: &str| {
        compare(a)
            .entries
            .iter()
            .find(|e| e.name == n)
            .unwrap()
            .status
    };
    assert_eq!(status(&a, "bin"), Status::Unchanged);
    assert_eq!(status(&a, "var"), Status::Removed, "only in A");
    assert_eq!(status(&a, "usr"), Status::Modified, "gcc went away");
    assert_eq!(status(&a, "etc"), Status::Modified, "passwd differs");
    // Ctrl+U: the identical /bin goes; /usr counts only what differs.
    keys(&mut a, "C-u");
    let mut sorted = names(&a);
    sorted.sort();
    assert_eq!(sorted, ["app", "etc", "usr", "var"]);
    for d in ["usr", "etc", "app"] {
        assert_eq!(
            sums_of(&a, d),
            expected_sums(&a, &format!("/{d}"), |_, s| s != Status::Unchanged),
            "{d}"
        );
    }
    assert_eq!(sums_of(&a, "usr"), (55_900_000, 0));
    assert!(screen(&a).contains("hiding unmodified"));
    // Inside /usr only the dirs with removed files are left.
    keys(&mut a, "Enter");
    assert_eq!(compare(&a).path(), "/usr");
    assert_eq!(names(&a), ["lib", "bin"]);
    // Ctrl+R as well: nothing is left in /usr, so the view goes up.
    keys(&mut a, "C-r");
    assert_eq!(compare(&a).path(), "/");
    assert_eq!(names(&a), ["app", "etc"]);
    assert!(screen(&a).contains("hiding removed,unmodified"));
    // Ctrl+M as well: nothing at all; then everything back.
    keys(&mut a, "C-m");
    assert!(names(&a).is_empty());
    keys(&mut a, "C-m C-r C-u");
    assert_eq!(names(&a).len(), 5);
    assert!(!screen(&a).contains("hiding"));
    assert_eq!(sums_of(&a, "usr"), (57_940_000, 2_040_000));

    // Swapped, gcc is only in B: Ctrl+A hides it, and /var is added.
    let mut a = app(vec![tui_fixtures::multi(), tui_fixtures::single()], 80, 24);
    keys(&mut a, "C-u");
    assert_eq!(
        sums_of(&a, "usr"),
        expected_sums(&a, "/usr", |_, s| s != Status::Unchanged)
    );
    assert_eq!(sums_of(&a, "usr"), (0, 55_900_000));
    assert!(names(&a).contains(&"var".to_string()));
    keys(&mut a, "C-a");
    assert_eq!(names(&a), ["app", "etc"]);
    assert_eq!(
        sums_of(&a, "app"),
        expected_sums(&a, "/app", |_, s| s == Status::Modified)
    );
    // app/main.go etc. are added in B: only the modified server is left.
    assert_eq!(sums_of(&a, "app"), (7_500_000, 8_000_000));
}

#[test]
fn compare_filters_sum_directories_over_the_kept_files() {
    let mut a = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 80, 24);
    // A regex: every path containing gcc.
    keys(&mut a, "/ g c c Enter");
    assert_eq!(names(&a), ["usr"]);
    assert_eq!(
        sums_of(&a, "usr"),
        expected_sums(&a, "/usr", |p, _| p.contains("gcc"))
    );
    keys(&mut a, "Enter");
    assert_eq!(
        sums_of(&a, "lib"),
        expected_sums(&a, "/usr/lib", |p, _| p.contains("gcc"))
    );
    assert_eq!(sums_of(&a, "lib"), (55_000_000, 0));
    keys(&mut a, "Esc");
    // A glob naming a directory keeps the files below it.
    keys(&mut a, "/ C-u * * / g c c Enter");
    assert_eq!(sums_of(&a, "usr"), (55_900_000, 0));
    // A minimum size keeps files that big in A or B; small dirs go.
    keys(&mut a, "/ C-u > 1 M Enter");
    let mut sorted = names(&a);
    sorted.sort();
    assert_eq!(sorted, ["app", "usr"]);
    let fa = final_files(&a, 0);
    let fb = final_files(&a, 1);
    let big = |p: &str| {
        fa.get(p)
            .map_or(0, |f| f.0)
            .max(fb.get(p).map_or(0, |f| f.0))
            >= 1_000_000
    };
    for d in ["usr", "app"] {
        assert_eq!(
            sums_of(&a, d),
            expected_sums(&a, &format!("/{d}"), |p, _| big(p)),
            "{d}"
        );
    }
    assert_eq!(sums_of(&a, "usr"), (57_000_000, 2_000_000));
    // With Ctrl+U too, the shared libc no longer counts.
    keys(&mut a, "C-u");
    assert_eq!(
        sums_of(&a, "usr"),
        expected_sums(&a, "/usr", |p, s| big(p) && s != Status::Unchanged)
    );
    assert_eq!(sums_of(&a, "usr"), (55_000_000, 0));
    keys(&mut a, "C-u");
    // A category: the docs only.
    keys(&mut a, "/ C-u @ d o c s Enter");
    assert_eq!(names(&a), ["usr"]);
    let docs = expected_sums(&a, "/usr", |p, _| p.starts_with("/usr/share/doc/"));
    assert_eq!(sums_of(&a, "usr"), docs);
    assert_eq!(docs, (40_000, 40_000));
    // Cleared: the full sums again.
    keys(&mut a, "/ C-u Enter");
    assert_eq!(sums_of(&a, "usr"), expected_sums(&a, "/usr", |_, _| true));
    assert_eq!(names(&a).len(), 5);
}

#[test]
fn compare_hiding_toggles_in_the_pane() {
    let mut a = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 80, 24);
    keys(&mut a, "C-u / > 1 M Enter");
    insta::assert_snapshot!(screen(&a));
}

/// The app's rows from `top` to `bottom` (inclusive) of the screen.
fn screen_lines(a: &App) -> Vec<String> {
    screen(a).lines().map(str::to_string).collect()
}

#[test]
fn at_80x24_headline_three_layers_and_the_top_finding_come_first() {
    use layerscope::tui::compare::Pane as CPane;
    use layerscope::tui::compare::areas as compare_areas;
    use layerscope::tui::explore::areas as explore_areas;
    // Explore: the headline, every layer (at least three), the top finding.
    let a = app(vec![tui_fixtures::single()], 80, 24);
    let an = a.analysis(0).unwrap();
    let s = screen_lines(&a);
    assert!(s[1].contains("residue"), "{s:#?}");
    for i in 1..=3 {
        assert!(
            s.iter().any(|l| l.starts_with(&format!("│ {i} "))),
            "layer {i} shown: {s:#?}"
        );
    }
    let top = &an.findings[0];
    let line = s
        .iter()
        .find(|l| l.contains("top: "))
        .unwrap_or_else(|| panic!("a top finding line: {s:#?}"));
    assert!(
        line.contains(&layerscope::output::size(top.bytes)),
        "{line}"
    );
    // Compare: the same, and the categories as a line.
    let c = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 80, 24);
    let s = screen_lines(&c);
    assert!(
        s[1].contains("residue") && s[2].contains("residue"),
        "{s:#?}"
    );
    assert!(s.iter().any(|l| l.starts_with(" findings (f): ")), "{s:#?}");
    assert!(s.iter().any(|l| l.starts_with(" bytes A → B: ")), "{s:#?}");
    assert!(s.iter().any(|l| l.starts_with("│ 1=")), "{s:#?}");
    for i in 2..=3 {
        assert!(
            s.iter().any(|l| l.starts_with(&format!("│ {i} "))),
            "{s:#?}"
        );
    }
    // No pane with zero rows at any size from the smallest up; layers get
    // a border and three rows wherever there is room for them.
    for w in (60..=200).step_by(7) {
        for h in 16..=60 {
            let area = Rect::new(0, 0, w, h);
            for focus in [Pane::Layers, Pane::Tree, Pane::Findings] {
                let e = explore_areas(area, 5, 4, focus);
                let mut panes = vec![e.header, e.layers, e.details, e.summary, e.footer];
                if e.show_tree {
                    panes.push(e.tree);
                }
                panes.extend(e.findings);
                assert!(panes.iter().all(|r| r.height > 0), "{w}x{h} {focus:?}");
                assert!(e.layers.height >= 5, "{w}x{h}: {:?}", e.layers);
            }
            for focus in [CPane::Files, CPane::Findings] {
                let c = compare_areas(area, 4, focus);
                let mut panes = vec![c.header, c.files, c.categories, c.footer];
                if c.show_layers {
                    panes.extend([c.layers_a, c.layers_b]);
                    assert!(c.layers_a.height >= 5, "{w}x{h}");
                }
                panes.extend(c.findings);
                assert!(panes.iter().all(|r| r.height > 0), "{w}x{h} {focus:?}");
            }
        }
    }
}

/// An image whose layers the classic builder named by content hashes, on
/// a base given as `--base` would.
fn hashed() -> layerscope::analysis::Analysis {
    use layerscope::analysis::classify::RuleSet;
    use tui_fixtures::{E, base_layer, facts, layer};
    let h = "de15d81d61c0a3b3e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";
    let layers = vec![
        base_layer(),
        layer(
            &format!("/bin/sh -c #(nop) COPY file:{h} in /app/go-app "),
            "e1",
            &[E::Dir("app"), E::File("app/go-app", 4_000_000)],
        ),
        layer(
            &format!("/bin/sh -c #(nop) COPY dir:{h} in /app/static "),
            "e2",
            &[E::Dir("app/static"), E::File("app/static/index.html", 150)],
        ),
    ];
    let base = vec![layers[0].0.diff_id.clone()];
    let img = layerscope::index::merge::build_image(facts("app:hashed", "a3"), layers).unwrap();
    layerscope::analysis::Analysis::with_options(img, &RuleSet::builtin(), Some(&base))
}

#[test]
fn layers_are_named_by_what_they_did_with_the_hash_in_the_details() {
    use layerscope::image::has_hash_run;
    for (w, h) in [(80, 24), (160, 48)] {
        let mut a = app(vec![hashed()], w, h);
        let s = screen(&a);
        // The details name the selected layer in full, destination and all.
        assert!(s.contains("│#3 COPY dir → /app/static"), "{s}");
        assert!(s.contains("COPY → /app/go"), "{s}");
        if w >= 160 {
            assert!(s.contains("COPY → /app/go-app"), "{s}");
            assert!(s.contains("COPY dir → /app/static "), "{s}");
        }
        assert!(s.contains("base ADD → /"), "the base is labelled: {s}");
        // The layer list (the left column above the details) has no hash.
        let list: Vec<String> = s
            .lines()
            .skip(2)
            .take_while(|l| !l.contains("Layer details"))
            .map(|l| l.split('│').nth(1).unwrap_or("").to_string())
            .collect();
        assert!(list.len() >= 3, "{s}");
        assert!(!list.iter().any(|l| has_hash_run(l)), "{list:#?}");
        // The details keep the hash: the instruction as history has it.
        keys(&mut a, "Up");
        let s = screen(&a);
        assert!(s.contains("COPY file:de15d81d61c0…"), "{s}");
        // Compare's lists too, with base marked.
        let c = app(vec![hashed(), tui_fixtures::multi()], w, h);
        let s = screen(&c);
        assert!(s.contains("base ADD → /"), "{s}");
        let layers: Vec<&str> = s.lines().skip_while(|l| !l.contains("Layers A")).collect();
        assert!(!layers.iter().any(|l| has_hash_run(l)), "{s}");
    }
    // And the text summary's list.
    let mut out = Vec::new();
    layerscope::output::text::write_summary(&mut out, &hashed()).unwrap();
    let text = String::from_utf8(out).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("INSTRUCTION"))
        .skip(1)
        .take(3)
        .collect();
    assert!(rows[0].contains("base ADD → /"), "{text}");
    assert!(rows[1].ends_with("COPY → /app/go-app"), "{text}");
    assert!(rows[2].ends_with("COPY dir → /app/static"), "{text}");
    assert!(!rows.iter().any(|l| has_hash_run(l)), "{text}");
}

/// Per kept directory row: the size explore shows, and the sum computed
/// here over the same image's visible files that pass `keep`.
fn dir_sums_under(a: &App, keep: impl Fn(&str, u64, Category) -> bool) -> Vec<(String, u64, u64)> {
    let e = explore(a);
    let an = a.analysis(e.image).unwrap();
    let img = &an.image;
    let shown = e.filtered_sizes().expect("a filter is active");
    // Independent: every visible non-directory of the final file system.
    let files: Vec<(String, u64)> = img
        .fs
        .iter()
        .enumerate()
        .filter_map(|(n, loc)| {
            let e = img.entry((*loc)?);
            (e.kind != layerscope::index::layer::EntryKind::Dir).then(|| {
                let node = n as u32;
                (
                    img.tree.path(node),
                    e.disk_bytes(),
                    an.classes.category(node),
                )
            })
        })
        .filter(|(p, b, c)| keep(p, *b, *c))
        .map(|(p, b, _)| (p, b))
        .collect();
    e.visible
        .iter()
        .map(|&ri| e.model.rows[ri as usize])
        .filter(|r| r.is_dir)
        .map(|r| {
            let path = img.tree.path(r.node);
            let want: u64 = files
                .iter()
                .filter(|(p, _)| p.starts_with(&format!("{path}/")))
                .map(|(_, b)| b)
                .sum();
            let ri = e.model.rows.iter().position(|x| x.node == r.node).unwrap();
            (path, shown[ri], want)
        })
        .collect()
}

use layerscope::analysis::classify::Category;

#[test]
fn explore_sums_directories_over_the_files_a_filter_keeps() {
    let mut a = app(vec![tui_fixtures::single()], 160, 48);
    keys(&mut a, "/ @ t o o l c h a i n Enter");
    let sums = dir_sums_under(&a, |_, _, c| c == Category::Toolchain);
    assert!(!sums.is_empty());
    for (p, shown, want) in &sums {
        assert_eq!(shown, want, "{p}");
    }
    let usr = sums.iter().find(|(p, ..)| p == "/usr").unwrap();
    assert_eq!(usr.1, 55_900_000, "usr counts the toolchain only");
    assert!(
        screen(&a).contains("55.90 MB"),
        "the screen shows the filtered size"
    );
    // A size.
    keys(&mut a, "/ C-u > 1 M Enter");
    for (p, shown, want) in dir_sums_under(&a, |_, b, _| b >= 1_000_000) {
        assert_eq!(shown, want, "{p}");
    }
    // A regex: a path, or a directory above it, matches.
    keys(&mut a, "/ C-u g c c Enter");
    let re = regex::Regex::new("gcc").unwrap();
    let sums = dir_sums_under(&a, |p, _, _| {
        let mut q = String::new();
        p.split('/').skip(1).any(|part| {
            q.push('/');
            q.push_str(part);
            re.is_match(&q)
        })
    });
    for (p, shown, want) in &sums {
        assert_eq!(shown, want, "{p}");
    }
    // Cleared: the model's sizes again.
    keys(&mut a, "Esc");
    assert!(explore(&a).filtered_sizes().is_none());
}

#[test]
fn help_spells_the_keys_and_the_tags_read_as_words() {
    let mut a = app(vec![tui_fixtures::single()], 80, 24);
    keys(&mut a, "?");
    let s = screen(&a);
    for k in ["Ctrl+A", "Ctrl+R", "Ctrl+M", "Ctrl+U", "Ctrl+F", "Ctrl+L"] {
        assert!(s.contains(k), "{k}: {s}");
    }
    assert!(!s.contains("Ctrl+A R M U"), "{s}");
    // The legend of the short tags, the new category among them.
    assert!(s.contains("tool toolchain"), "{s}");
    assert!(s.contains("bldc build-cache"), "{s}");
    assert!(s.contains("pm package-manager"), "{s}");
    // A wide tree writes the categories in words.
    let wide = app(vec![tui_fixtures::single()], 160, 48);
    let s = screen(&wide);
    let bin = s
        .lines()
        .find(|l| l.contains("▸ bin "))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(bin.contains(" toolchain "), "{bin}");
    assert!(
        s.lines()
            .any(|l| l.contains("main.go") && l.contains("source")),
        "{s}"
    );
}

#[test]
fn three_images_compare_a_pair_and_n_switches_pairs() {
    let mut a = app(
        vec![tui_fixtures::single(), tui_fixtures::multi(), hashed()],
        80,
        24,
    );
    let name = |a: &App| {
        let c = compare(a);
        (c.cmp.a_name.clone(), c.cmp.b_name.clone(), c.pair)
    };
    assert_eq!(name(&a), ("app:single".into(), "app:multi".into(), (0, 1)));
    assert!(screen(&a).contains("pair 1 of 3"));
    keys(&mut a, "n");
    assert_eq!(name(&a), ("app:single".into(), "app:hashed".into(), (0, 2)));
    let s = screen(&a);
    assert!(
        s.contains("pair 2 of 3") && s.contains(" B app:hashed"),
        "{s}"
    );
    keys(&mut a, "n");
    assert_eq!(name(&a).2, (1, 2));
    keys(&mut a, "n");
    assert_eq!(name(&a).2, (0, 1), "wraps around");
    keys(&mut a, "N");
    assert_eq!(name(&a).2, (1, 2));
    // The filter is kept across pairs; 1 and 2 explore the pair's images.
    keys(&mut a, "/ g c c Enter n");
    assert_eq!(compare(&a).filter.text, "gcc");
    keys(&mut a, "N 2");
    assert_eq!(explore(&a).image, 2);
    keys(&mut a, "Esc Esc 1");
    assert_eq!(explore(&a).image, 1);
    // Two images: n does nothing.
    let mut two = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 80, 24);
    keys(&mut two, "n");
    assert_eq!(compare(&two).pair, (0, 1));
    assert!(!screen(&two).contains("pair "));
}

/// A fixture as if read from a registry: every layer with a pull size.
fn pulled(
    layers: Vec<(
        layerscope::index::merge::LayerMeta,
        layerscope::index::layer::LayerIndex,
    )>,
    tag: &str,
    each: u64,
) -> layerscope::analysis::Analysis {
    let mut img =
        layerscope::index::merge::build_image(tui_fixtures::facts(tag, tag), layers).unwrap();
    for l in &mut img.layers {
        l.pull_size = Some(each);
    }
    layerscope::analysis::Analysis::new(img)
}

#[test]
fn pull_sizes_show_where_known() {
    let size = layerscope::output::size;
    let a = pulled(tui_fixtures::single_layers(), "reg/app:single", 1_000_000);
    let b = pulled(tui_fixtures::multi_layers(), "reg/app:multi", 300_000);
    let (pa, pb) = (a.image.pull_size().unwrap(), b.image.pull_size().unwrap());
    assert_eq!(pa, 1_000_000 * a.image.layers.len() as u64);
    // Explore: a Pull row with the compressed total.
    let e = app(vec![a], 160, 48);
    assert!(
        screen(&e).contains(&format!("Pull        {} compressed", size(pa))),
        "{}",
        screen(&e)
    );
    // Compare: each image's pull size, and what B pulls instead of A.
    let a = pulled(tui_fixtures::single_layers(), "reg/app:single", 1_000_000);
    let c = app(vec![a, b], 160, 48);
    let s = screen(&c);
    assert!(
        s.contains(&format!("B pulls {} instead of {}", size(pb), size(pa))),
        "{s}"
    );
    assert!(s.contains(&format!("(pull {})", size(pb))), "{s}");
    // Without pull sizes (an archive, the engine) neither shows.
    let plain = app(vec![tui_fixtures::single(), tui_fixtures::multi()], 160, 48);
    assert!(!screen(&plain).contains("pull"), "{}", screen(&plain));
}
