//! Frame times on a big image: every keypress is step + draw on a 160x48
//! TestBackend. Run with
//! `LAYERSCOPE_BENCH_IMAGE=/work/scratch/big-app.tar cargo test --release --test tui_bench -- --ignored --nocapture`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use layerscope::analysis::Analysis;
use layerscope::source::{LoadOptions, load_all};
use layerscope::tui::action::Action;
use layerscope::tui::{App, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

#[test]
#[ignore = "needs a big image: set LAYERSCOPE_BENCH_IMAGE"]
fn frame_times_on_a_big_image() {
    let Ok(path) = std::env::var("LAYERSCOPE_BENCH_IMAGE") else {
        eprintln!("skipped: LAYERSCOPE_BENCH_IMAGE is not set");
        return;
    };
    let t = Instant::now();
    let images = load_all(std::slice::from_ref(&path), &LoadOptions::default()).unwrap();
    let analyses: Vec<Analysis> = images.into_iter().map(Analysis::new).collect();
    let nodes = analyses[0].image.tree.len();
    eprintln!("loaded {path}: {nodes} nodes in {:.1?}", t.elapsed());
    let (w, h) = (160, 48);
    let t = Instant::now();
    let mut app = App::new(analyses, Rect::new(0, 0, w, h), Theme { color: true });
    eprintln!("initial model: {:.1?}", t.elapsed());
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let layers = app.analysis(0).unwrap().image.layers.len();
    use Action::*;
    let mut script: Vec<Action> = Vec::new();
    script.extend(std::iter::repeat_n(Up, layers)); // walk up every layer
    script.extend(std::iter::repeat_n(Down, layers)); // and back down
    script.extend([
        ToggleMode, ToggleMode, ToggleSort, ToggleSort, NextPane, ExpandAll,
    ]);
    script.extend(std::iter::repeat_n(Down, 50));
    script.extend(std::iter::repeat_n(PageDown, 50));
    script.extend([
        End,
        Home,
        ToggleCollapse,
        ToggleCollapse,
        ToggleUnmodified,
        ToggleUnmodified,
    ]);
    script.extend([StartFilter, Input('g'), Input('o'), Input('/'), Enter]);
    script.extend([StartFilter, ClearInput, Enter, CollapseAll, NextPane, Up]);
    script.extend([
        Findings, Enter, Findings, Down, Enter, NextPane, NextPane, Up,
    ]);
    // Cold: every key right after the previous frame, nothing prebuilt.
    // Idle: between keys the loop's idle work runs (as it does while a
    // person reads the screen), then the key is timed.
    let mut cold = App::new(
        vec![Analysis::new(
            load_all(std::slice::from_ref(&path), &LoadOptions::default())
                .unwrap()
                .remove(0),
        )],
        Rect::new(0, 0, w, h),
        Theme { color: true },
    );
    let cold_times = run_script(&mut cold, &mut term, &script, false);
    report("cold", &cold_times);
    let times = run_script(&mut app, &mut term, &script, true);
    report("idle", &times);
    let t = Instant::now();
    let c =
        layerscope::tui::compare::Compare::new(app.analysis(0).unwrap(), cold.analysis(0).unwrap());
    eprintln!(
        "compare setup (image vs itself, once when both are ready): {:.1?}, {} entries",
        t.elapsed(),
        c.entries.len()
    );
    drop((app, cold));

    // Compare: against LAYERSCOPE_BENCH_IMAGE_B, else against itself.
    let path_b = std::env::var("LAYERSCOPE_BENCH_IMAGE_B").unwrap_or_else(|_| path.clone());
    let images = load_all(&[path.clone(), path_b.clone()], &LoadOptions::default()).unwrap();
    let analyses: Vec<Analysis> = images.into_iter().map(Analysis::new).collect();
    let t = Instant::now();
    let u = layerscope::analysis::compare::Union::new(&[&analyses[0].image, &analyses[1].image]);
    eprintln!(
        "compare: both file systems by path: {} nodes in {:.1?}",
        u.len(),
        t.elapsed()
    );
    drop(u);
    let t = Instant::now();
    let mut cmp = App::new(analyses, Rect::new(0, 0, w, h), Theme { color: true });
    eprintln!("compare {path} vs {path_b}: setup {:.1?}", t.elapsed());
    let mut script: Vec<Action> = Vec::new();
    script.extend(std::iter::repeat_n(Down, 5));
    script.extend([Enter, PageDown, End, Home, Left, Enter, Enter, Left, Left]);
    script.extend([
        ToggleUnmodified,
        ToggleAdded,
        ToggleRemoved,
        ToggleModified,
        ToggleModified,
        ToggleRemoved,
        ToggleAdded,
        ToggleUnmodified,
    ]);
    script.extend([StartFilter, Input('l'), Input('i'), Input('b'), Enter]);
    script.extend([Enter, Down, Left]);
    script.extend([StartFilter, ClearInput, Input('*'), Input('.'), Input('s')]);
    script.extend([Input('o'), Enter, ToggleUnmodified, ToggleUnmodified]);
    script.extend([StartFilter, ClearInput, Input('>'), Input('1'), Input('M')]);
    script.extend([Enter, StartFilter, ClearInput, Input('@'), Input('d')]);
    script.extend([Enter, StartFilter, ClearInput, Enter]);
    let times = run_script(&mut cmp, &mut term, &script, false);
    report("compare", &times);
}

fn run_script(
    app: &mut App,
    term: &mut Terminal<TestBackend>,
    script: &[Action],
    idle: bool,
) -> Vec<(u128, Action)> {
    let mut times = Vec::new();
    for &a in script {
        if idle {
            while app.idle() {}
        }
        let t = Instant::now();
        app.step(a);
        term.draw(|f| app.draw(f)).unwrap();
        times.push((t.elapsed().as_micros(), a));
    }
    times
}

fn report(what: &str, times: &[(u128, Action)]) {
    let mut sorted: Vec<u128> = times.iter().map(|t| t.0).collect();
    sorted.sort();
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    eprintln!(
        "{what}: {} keypresses: median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sorted.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    let mut worst = times.to_vec();
    worst.sort_by_key(|w| std::cmp::Reverse(w.0));
    for (us, a) in worst.iter().take(8) {
        eprintln!("  {:>8.2} ms  {a:?}", *us as f64 / 1000.0);
    }
}
