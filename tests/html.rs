//! The HTML report in a real browser: Debian's chromium, headless, loads
//! the page from disk, runs its scripts, and the test reads back what they
//! drew (`--dump-dom`): the tiles, their geometry, the tables, the error box
//! the page's `window.onerror` hook fills. Numbers are checked against the
//! fixtures' own arithmetic (or the synthetic generator's model), not
//! against the report.
#![allow(clippy::unwrap_used)]

mod common;

#[allow(dead_code)]
#[path = "../examples/synth.rs"]
mod synth;

use std::path::{Path, PathBuf};
use std::process::Command as Proc;

use assert_cmd::Command;
use common::*;
use regex::Regex;
use serde_json::Value;
use tempfile::TempDir;

const HOSTILE: &str = "</script><img src=x onerror=alert(1)>";

/// The browser, or `None` (a skip) outside CI when it is not installed.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "chromium is missing (.ci/ensure-test-tools installs it)"
    );
    eprintln!("skipped: chromium is not installed (apt-get install -y chromium)");
    None
}

fn browser(bin: &Path, profile: &Path) -> Proc {
    let mut c = Proc::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1400,1000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

fn url(page: &Path, fragment: &str) -> String {
    format!("file://{}{fragment}", page.display())
}

/// The DOM after the scripts ran, and the browser's log.
fn dump(bin: &Path, page: &Path) -> (String, String) {
    let profile = TempDir::new().unwrap();
    let out = browser(bin, profile.path())
        .args(["--virtual-time-budget=20000", "--dump-dom"])
        .arg(url(page, ""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Light and dark screenshots, kept under target/ for people to look at.
fn screenshots(bin: &Path, page: &Path, name: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for theme in ["light", "dark"] {
        let profile = TempDir::new().unwrap();
        let png = dir.join(format!("{name}-{theme}.png"));
        let _ = std::fs::remove_file(&png);
        let out = browser(bin, profile.path())
            .args(["--virtual-time-budget=20000", "--hide-scrollbars"])
            .arg(format!("--screenshot={}", png.display()))
            .arg(url(page, &format!("#theme={theme}")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&png).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{png:?}"
        );
    }
}

fn layerscope(args: &[&str]) -> std::process::Output {
    let out = Command::cargo_bin("layerscope")
        .unwrap()
        .arg("--no-cache")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The report embedded in a page (its escapes are valid JSON).
fn embedded(page: &str) -> Value {
    let start = page.find("id=\"report-data\">").unwrap() + "id=\"report-data\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).unwrap()
}

#[derive(Debug, Clone)]
struct Rect {
    class: String,
    w: f64,
    h: f64,
    n: usize,
}

/// Per treemap (in page order): its size and its rects.
fn treemaps(dom: &str) -> Vec<((f64, f64), Vec<Rect>)> {
    let svg =
        Regex::new(r#"<svg class="treemap"[^>]*? width="([\d.]+)" height="([\d.]+)""#).unwrap();
    let rect = Regex::new(
        r#"<rect class="([a-z0-9 -]+)" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" data-n="(\d+)""#,
    )
    .unwrap();
    let starts: Vec<_> = svg.captures_iter(dom).collect();
    starts
        .iter()
        .map(|c| {
            let from = c.get(0).unwrap().start();
            let to = from + dom[from..].find("</svg>").unwrap();
            let rects = rect
                .captures_iter(&dom[from..to])
                .map(|r| Rect {
                    class: r[1].to_string(),
                    w: r[4].parse().unwrap(),
                    h: r[5].parse().unwrap(),
                    n: r[6].parse().unwrap(),
                })
                .collect();
            ((c[1].parse().unwrap(), c[2].parse().unwrap()), rects)
        })
        .collect()
}

fn tree_path(tree: &Value, row: usize) -> String {
    let mut parts = Vec::new();
    let mut r = row as i64;
    while r > 0 {
        let name = tree["name"][r as usize].as_u64().unwrap() as usize;
        parts.push(tree["names"][name].as_str().unwrap().to_string());
        r = tree["parent"][r as usize].as_i64().unwrap();
    }
    parts.reverse();
    format!("/{}", parts.join("/"))
}

/// The page ran without errors and drew its treemaps.
fn check_clean(dom: &str, log: &str) {
    assert!(
        dom.contains("data-status=\"drawn\""),
        "not drawn: {}",
        &dom[..dom.len().min(3000)]
    );
    assert!(
        dom.contains("<div id=\"errors\" role=\"alert\"></div>"),
        "errors: {}",
        dom.split("<div id=\"errors\"")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(800)
            .collect::<String>()
    );
    for bad in [
        "Uncaught",
        "Refused to",
        "Content Security Policy",
        "CONSOLE",
    ] {
        assert!(!log.contains(bad), "browser log has {bad:?}:\n{log}");
    }
}

/// Leaf tiles fill their treemap (1%); the largest top-level tile is
/// `expect_path`, at `expect_share` of the area (2%).
fn check_geometry(
    size: (f64, f64),
    rects: &[Rect],
    tree: &Value,
    expect_path: &str,
    expect_share: f64,
) {
    let area = size.0 * size.1;
    let tiles: f64 = rects
        .iter()
        .filter(|r| r.class.split(' ').any(|c| c == "tile"))
        .map(|r| r.w * r.h)
        .sum();
    assert!(
        (tiles - area).abs() <= area * 0.01,
        "tiles cover {tiles} of {area}"
    );
    let top = rects
        .iter()
        .filter(|r| r.class == "top")
        .max_by(|a, b| (a.w * a.h).total_cmp(&(b.w * b.h)))
        .unwrap();
    assert_eq!(tree_path(tree, top.n), expect_path);
    let share = top.w * top.h / area;
    assert!(
        (share - expect_share).abs() <= 0.02,
        "{expect_path}: drawn at {share}, bytes say {expect_share}"
    );
}

/// Files of the one-image fixture: (path, size), by layer.
fn single_files() -> Vec<Vec<(String, usize)>> {
    let hostile = format!("srv/{HOSTILE}");
    vec![
        vec![
            ("usr/bin/app".into(), 400_000),
            ("usr/lib/libx.so.1".into(), 120_000),
            ("usr/share/doc/x/README".into(), 30_000),
            ("etc/app.conf".into(), 2_000),
        ],
        vec![
            ("opt/data/a.bin".into(), 150_000),
            ("opt/data/b.bin".into(), 90_000),
            (hostile, 80_000),
        ],
    ]
}

fn fixture(files: &[Vec<(String, usize)>], history: &[&str]) -> Image {
    let mut seed = 1;
    let layers = files
        .iter()
        .map(|fs| {
            fs.iter().fold(Layer::new(), |l, (p, n)| {
                seed += 1;
                l.file(p, content(seed, *n), 0o644)
            })
        })
        .collect();
    let mut img = Image::simple(layers);
    for (h, text) in img.history.iter_mut().zip(history) {
        h.created_by = text.to_string();
    }
    img
}

#[test]
fn one_image_page_draws_its_tree_and_runs_no_hostile_name() {
    let Some(bin) = chromium() else { return };
    let dir = TempDir::new().unwrap();
    let files = single_files();
    let img = fixture(
        &files,
        &[
            "/bin/sh -c #(nop) ADD base",
            &format!("/bin/sh -c echo '{HOSTILE}' > /srv/x"),
        ],
    );
    let tar = dir.path().join("one.tar");
    std::fs::write(&tar, legacy_archive(&[(&img, &["one:1"])])).unwrap();
    let page = dir.path().join("one.html");
    let json = dir.path().join("one.json");
    layerscope(&[
        tar.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--json-tree",
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    let data = embedded(&html);
    let tree = &data["images"][0]["tree"];
    // The page's data is the JSON report's (with --json-tree).
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(&report["images"][0]["tree"], tree);

    // The tree's numbers, from the fixture's arithmetic.
    let total: usize = files.iter().flatten().map(|f| f.1).sum();
    let under = |prefix: &str| -> usize {
        files
            .iter()
            .flatten()
            .filter(|f| format!("/{}", f.0).starts_with(prefix))
            .map(|f| f.1)
            .sum()
    };
    assert_eq!(tree["bytes"][0].as_u64().unwrap() as usize, total);
    for row in 0..tree["parent"].as_array().unwrap().len() {
        let p = tree_path(tree, row);
        let want = if row == 0 { total } else { under(&p) };
        assert_eq!(tree["bytes"][row].as_u64().unwrap() as usize, want, "{p}");
        let layer = tree["layer"][row].as_u64().unwrap() as usize;
        if let Some(l) = files
            .iter()
            .position(|fs| fs.iter().any(|f| format!("/{}", f.0) == p))
        {
            assert_eq!(layer, l + 1, "{p}");
        }
    }

    let (dom, log) = dump(&bin, &page);
    check_clean(&dom, &log);
    // The hostile name is shown as text, and nothing it spells exists.
    assert!(!dom.contains("<img"), "an <img> element was created");
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the name is not shown"
    );
    let maps = treemaps(&dom);
    assert_eq!(maps.len(), 1);
    let (size, rects) = &maps[0];
    assert!(rects.iter().filter(|r| r.class.starts_with("tile")).count() >= 7);
    check_geometry(
        *size,
        rects,
        tree,
        "/usr",
        under("/usr") as f64 / total as f64,
    );
    // Every byte figure in the waste table is a number from the fixture.
    assert!(dom.contains(&format!("data-bytes=\"{total}\"")));
    screenshots(&bin, &page, "one-image");
}

#[test]
fn comparison_page_draws_both_on_one_scale_with_category_deltas() {
    let Some(bin) = chromium() else { return };
    let dir = TempDir::new().unwrap();
    let a_files = vec![
        vec![
            ("usr/share/doc/tool/manual.txt".to_string(), 60_000),
            ("usr/bin/tool".to_string(), 150_000),
        ],
        vec![("app/server".to_string(), 200_000)],
    ];
    let b_files = vec![vec![("app/server".to_string(), 200_000)]];
    let a = fixture(&a_files, &[]);
    let b = fixture(&b_files, &[]);
    let ta = dir.path().join("a.tar");
    let tb = dir.path().join("b.tar");
    std::fs::write(&ta, legacy_archive(&[(&a, &["big:1"])])).unwrap();
    std::fs::write(&tb, legacy_archive(&[(&b, &["small:1"])])).unwrap();
    let page = dir.path().join("cmp.html");
    layerscope(&[
        ta.to_str().unwrap(),
        tb.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    let data = embedded(&html);
    let (dom, log) = dump(&bin, &page);
    check_clean(&dom, &log);
    let maps = treemaps(&dom);
    assert_eq!(maps.len(), 2);
    let a_total = 410_000.0;
    let b_total = 200_000.0;
    let area = |m: &((f64, f64), Vec<Rect>)| m.0.0 * m.0.1;
    let ratio = area(&maps[1]) / area(&maps[0]);
    assert!(
        (ratio - b_total / a_total).abs() <= 0.01 * (b_total / a_total),
        "areas {ratio}, bytes {}",
        b_total / a_total
    );
    check_geometry(
        maps[0].0,
        &maps[0].1,
        &data["images"][0]["tree"],
        "/usr",
        210_000.0 / a_total,
    );
    check_geometry(
        maps[1].0,
        &maps[1].1,
        &data["images"][1]["tree"],
        "/app",
        1.0,
    );
    // Category deltas, B minus A: the docs file and the rest.
    let cell = |cat: &str| -> i64 {
        let re = Regex::new(&format!(
            r#"<td class="num [a-z]+" data-bytes="(-?\d+)"[^>]*data-category="{cat}" data-image="1""#
        ))
        .unwrap();
        re.captures(&dom)
            .unwrap_or_else(|| panic!("no {cat} delta"))[1]
            .parse()
            .unwrap()
    };
    assert_eq!(cell("docs"), -60_000);
    assert_eq!(cell("toolchain") + cell("runtime") + cell("docs"), -210_000);
    screenshots(&bin, &page, "comparison");
}

#[test]
fn big_page_draws_within_its_size_budget() {
    let Some(bin) = chromium() else { return };
    let dir = TempDir::new().unwrap();
    let page = dir.path().join("big.html");
    let engine_big = Proc::new("docker")
        .args(["image", "inspect", "big-app"])
        .output()
        .is_ok_and(|o| o.status.success());
    let expect_final = if engine_big {
        layerscope(&["big-app", "--html", page.to_str().unwrap()]);
        None
    } else {
        let tar = dir.path().join("synth.tar");
        let opts = synth::Options {
            entries: 260_000,
            ..synth::Options::default()
        };
        let exp = synth::generate(&opts, &tar).unwrap();
        layerscope(&[tar.to_str().unwrap(), "--html", page.to_str().unwrap()]);
        Some(exp.final_bytes)
    };
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() < 15_000_000, "{} bytes", html.len());
    let data = embedded(&html);
    let tree = &data["images"][0]["tree"];
    let rows = tree["parent"].as_array().unwrap().len() as u64;
    assert!(
        rows >= data["images"][0]["totals"]["final_entries"]
            .as_u64()
            .unwrap()
    );
    if let Some(f) = expect_final {
        assert_eq!(tree["bytes"][0].as_u64().unwrap(), f);
    }
    let (dom, log) = dump(&bin, &page);
    check_clean(&dom, &log);
    let maps = treemaps(&dom);
    assert_eq!(maps.len(), 1);
    // The largest top-level directory, from the tree's own rows.
    let total = tree["bytes"][0].as_f64().unwrap();
    let (row, bytes) = (1..rows as usize)
        .filter(|&r| tree["parent"][r] == 0)
        .map(|r| (r, tree["bytes"][r].as_f64().unwrap()))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    check_geometry(
        maps[0].0,
        &maps[0].1,
        tree,
        &tree_path(tree, row),
        bytes / total,
    );
    screenshots(&bin, &page, "big");
}
