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
    dump_at(bin, page, "")
}

/// [`dump`] of the page opened with a URL fragment (`#selftest;...`).
fn dump_at(bin: &Path, page: &Path, fragment: &str) -> (String, String) {
    let profile = TempDir::new().unwrap();
    let out = browser(bin, profile.path())
        .args(["--virtual-time-budget=20000", "--dump-dom"])
        .arg(url(page, fragment))
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
    let svg = Regex::new(r#"<svg class="treemap[^"]*"[^>]*? width="([\d.]+)" height="([\d.]+)""#)
        .unwrap();
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
    // The header leads with the report's headline: residue and the app floor.
    let h = &report["images"][0]["headline"];
    for key in ["residue_bytes", "app_bytes"] {
        let v = h[key].as_u64().unwrap();
        assert!(dom.contains(&format!("data-bytes=\"{v}\"")), "{key} {v}");
    }
    assert!(dom.contains("pull size unknown"));
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
    // The self-test drives the first image's treemap (in the dark theme);
    // it ends where it began, on `/`, so the geometry below is the first
    // picture's.
    let (dom, _, result) = selftest(&bin, &page, "dark");
    check_interactions(&result, &data["images"][0]);
    check_theme(&result, "dark");
    check_labels(&dom, &data["images"][0], 0);
    check_labels(&dom, &data["images"][1], 1);
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
    // The interactions at full scale, through the page's self-test.
    let (dom, _, result) = selftest(&bin, &page, "light");
    check_interactions(&result, &data["images"][0]);
    check_labels(&dom, &data["images"][0], 0);
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

// ---- interactions, driven by the page's #selftest -------------------------

/// The tree's columns, read once from the embedded report.
struct Tree {
    parent: Vec<usize>,
    bytes: Vec<u64>,
    dir: Vec<bool>,
    layer: Vec<u64>,
    package: Vec<usize>,
    packages: Vec<String>,
    paths: Vec<String>,
    /// Children in row order (the report's: largest first).
    kids: Vec<Vec<usize>>,
}

impl Tree {
    fn new(t: &Value) -> Tree {
        let col = |k: &str| -> Vec<i64> {
            t[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect()
        };
        let parent: Vec<usize> = col("parent").iter().map(|&p| p.max(0) as usize).collect();
        let mut kids = vec![Vec::new(); parent.len()];
        for (r, &p) in parent.iter().enumerate().skip(1) {
            kids[p].push(r);
        }
        Tree {
            bytes: col("bytes").iter().map(|&b| b as u64).collect(),
            dir: col("dir").iter().map(|&d| d == 1).collect(),
            layer: col("layer").iter().map(|&l| l as u64).collect(),
            package: col("package").iter().map(|&p| p as usize).collect(),
            packages: t["packages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
                .collect(),
            paths: (0..parent.len()).map(|r| tree_path(t, r)).collect(),
            parent,
            kids,
        }
    }

    /// `r` and its ancestors up to `/`.
    fn up(&self, mut r: usize) -> Vec<usize> {
        let mut v = vec![r];
        while r != 0 {
            r = self.parent[r];
            v.push(r);
        }
        v
    }

    /// The rows a drawn tile stands for: its own, or for a merged tile
    /// (`agg` > 0) the `agg` smallest non-empty children of its directory.
    fn covered(&self, n: usize, agg: usize) -> Vec<usize> {
        if agg == 0 {
            return vec![n];
        }
        let nonempty: Vec<usize> = self.kids[n]
            .iter()
            .copied()
            .take_while(|&k| self.bytes[k] > 0)
            .collect();
        assert!(agg <= nonempty.len(), "row {n} merges {agg} children");
        nonempty[nonempty.len() - agg..].to_vec()
    }
}

fn tiles_of(v: &Value) -> Vec<(usize, usize)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t[0].as_u64().unwrap() as usize,
                t[1].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

/// The tiles draw every byte below `view` exactly once: no tile lies below
/// another, none outside `view`, and their bytes add up to the view's.
fn check_cover(tree: &Tree, tiles: &[(usize, usize)], view: usize) {
    let rows: Vec<usize> = tiles
        .iter()
        .flat_map(|&(n, a)| tree.covered(n, a))
        .collect();
    let set: std::collections::HashSet<usize> = rows.iter().copied().collect();
    assert_eq!(set.len(), rows.len(), "a row is drawn twice");
    for &r in &rows {
        let up = tree.up(r);
        assert!(up.contains(&view), "{} is outside the view", tree.paths[r]);
        assert!(
            up[1..].iter().all(|a| !set.contains(a)),
            "{} is drawn inside another tile",
            tree.paths[r]
        );
    }
    let sum: u64 = rows.iter().map(|&r| tree.bytes[r]).sum();
    assert_eq!(
        sum, tree.bytes[view],
        "bytes drawn under {}",
        tree.paths[view]
    );
}

/// The tiles that should light up when `marked` rows are highlighted: a
/// tile whose rows include a marked row, one below it, or one above it.
fn expected_lit(
    tree: &Tree,
    tiles: &[(usize, usize)],
    marked: &[usize],
    with_descendants: bool,
) -> Vec<(usize, usize)> {
    let marked_set: std::collections::HashSet<usize> = marked.iter().copied().collect();
    // Rows that are a marked row or an ancestor of one.
    let above: std::collections::HashSet<usize> = marked.iter().flat_map(|&m| tree.up(m)).collect();
    let mut lit: Vec<(usize, usize)> = tiles
        .iter()
        .copied()
        .filter(|&(n, a)| {
            tree.covered(n, a).iter().any(|&r| {
                above.contains(&r)
                    || (with_descendants && tree.up(r).iter().any(|u| marked_set.contains(u)))
            })
        })
        .collect();
    lit.sort_unstable();
    lit
}

fn sorted(mut v: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    v.sort_unstable();
    v
}

/// `1234567` as `1,234,567`, as the page writes exact byte counts.
fn commas(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Text and attribute escapes as chromium serializes them.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The page with `#selftest;theme=...`: its DOM, the browser's log, and
/// what the self-test recorded.
fn selftest(bin: &Path, page: &Path, theme: &str) -> (String, String, Value) {
    let (dom, log) = dump_at(bin, page, &format!("#selftest;theme={theme}"));
    check_clean(&dom, &log);
    assert!(
        dom.contains("data-selftest=\"done\""),
        "the self-test did not finish"
    );
    let start = dom
        .find("<pre id=\"selftest-result\" hidden=\"\">")
        .unwrap();
    let body = &dom[start..];
    let body = &body[body.find('>').unwrap() + 1..body.find("</pre>").unwrap()];
    let result = serde_json::from_str(&unescape(body)).unwrap();
    (dom, log, result)
}

/// Every step the self-test took, against the embedded report's own rows.
/// Returns the finding it clicked, if any.
fn check_interactions(result: &Value, image: &Value) -> Option<String> {
    let tree = Tree::new(&image["tree"]);
    let name = image["name"].as_str().unwrap();
    let steps = result["steps"].as_array().unwrap();
    let step = |s: &str| steps.iter().find(|x| x["step"] == s).unwrap();

    // Drill in: a click on a tile opens its top-level directory.
    let drill = step("drill");
    let before = tiles_of(&drill["tiles_before"]);
    check_cover(&tree, &before, 0);
    let clicked = drill["clicked"].as_u64().unwrap() as usize;
    assert_eq!(drill["hit"], true, "the pointer lands on another element");
    let up = tree.up(clicked);
    let top = up[up.len() - 2];
    assert!(tree.dir[top]);
    assert_eq!(drill["view"].as_u64().unwrap() as usize, top);
    let crumb_root = format!("/ ({name})");
    let top_name = tree.paths[top].trim_start_matches('/').to_string();
    assert_eq!(drill["crumbs"], serde_json::json!([crumb_root, top_name]));
    let inside = tiles_of(&drill["tiles"]);
    assert!(!inside.is_empty() && inside != before);
    check_cover(&tree, &inside, top);

    // The breadcrumb's root goes back to the same picture.
    let back = step("back");
    assert_eq!(back["view"], 0);
    assert_eq!(back["crumbs"], serde_json::json!([crumb_root]));
    assert_eq!(tiles_of(&back["tiles"]), before);

    // The tooltip names the file's path, exact bytes, layer and package.
    let hover = step("hover");
    let row = hover["row"].as_u64().unwrap() as usize;
    assert_eq!(hover["hit"], true);
    assert_eq!(hover["shown"], true);
    let text: Vec<String> = hover["text"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let all = text.join("\n");
    assert!(!tree.dir[row]);
    assert_eq!(text[0], tree.paths[row]);
    assert!(
        all.contains(&format!("({} bytes)", commas(tree.bytes[row]))),
        "{all}"
    );
    let layer = tree.layer[row];
    let instruction = image["layers"][layer as usize - 1]["instruction"]
        .as_str()
        .unwrap();
    let head: String = instruction.chars().take(30).collect();
    assert!(
        all.contains(&format!(
            "layer {layer}: {}",
            head.replace(['\n', '\t'], " ")
        )),
        "{all}"
    );
    let pkg = match tree.package[row] {
        0 => "none known".to_string(),
        p => tree.packages[p - 1].clone(),
    };
    assert!(all.contains(&format!("package: {pkg}")), "{all}");

    // The layer's files light up, and a second click turns them off.
    let lay = step("layer");
    assert_eq!(lay["layer"].as_u64().unwrap(), layer);
    assert_eq!(lay["pressed"], "true");
    assert_eq!(lay["dim"], true);
    assert_eq!(tiles_of(&lay["tiles"]), before);
    let files: Vec<usize> = (1..tree.bytes.len())
        .filter(|&r| tree.layer[r] == layer && !tree.dir[r] && tree.bytes[r] > 0)
        .collect();
    let want = expected_lit(&tree, &before, &files, false);
    assert!(!want.is_empty());
    assert_eq!(sorted(tiles_of(&lay["lit"])), want, "layer {layer}");
    let off = step("layer-off");
    assert_eq!(off["pressed"], "false");
    assert_eq!(off["dim"], false);
    assert!(off["lit"].as_array().unwrap().is_empty());

    // "clear highlight" leaves nothing lit and no button pressed.
    let clear = step("clear");
    assert_eq!(clear["dim"], false);
    assert!(clear["lit"].as_array().unwrap().is_empty());
    assert_eq!(clear["pressed"], 0);

    // A finding lights up its paths: what is below them and what holds them.
    let fin = step("finding");
    let id = fin["id"].as_str()?.to_string();
    assert_eq!(fin["pressed"], "true");
    let finding = image["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id.as_str())
        .unwrap();
    let rows: Vec<usize> = finding["top_paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let p = p["path"].as_str().unwrap().trim_end_matches('/');
            tree.paths.iter().position(|q| q == p)
        })
        .collect();
    assert!(!rows.is_empty(), "{id} names no path of the tree");
    let want = expected_lit(&tree, &before, &rows, true);
    assert!(!want.is_empty());
    assert_eq!(sorted(tiles_of(&fin["lit"])), want, "finding {id}");
    Some(id)
}

/// Every tile says what it is without colour: an image role and a label
/// with its path (or what it merges) and its exact size.
fn check_labels(dom: &str, image: &Value, index: usize) {
    let tree = Tree::new(&image["tree"]);
    let from = dom
        .match_indices("<svg class=\"treemap")
        .nth(index)
        .unwrap()
        .0;
    let dom = &dom[from..from + dom[from..].find("</svg>").unwrap()];
    let tag = Regex::new(r#"<rect class="tile[^"]*"[^>]*>"#).unwrap();
    let res: Vec<(&str, Regex)> = ["data-n", "data-agg", "role", "aria-label"]
        .into_iter()
        .map(|k| (k, Regex::new(&format!(r#" {k}="([^"]*)""#)).unwrap()))
        .collect();
    let attr = |t: &str, k: &str| -> Option<String> {
        let re = &res.iter().find(|r| r.0 == k).unwrap().1;
        re.captures(t).map(|c| unescape(&c[1]))
    };
    let mut n = 0;
    for t in tag.find_iter(dom) {
        let t = t.as_str();
        n += 1;
        let row: usize = attr(t, "data-n").unwrap().parse().unwrap();
        let agg: usize = attr(t, "data-agg").map_or(0, |a| a.parse().unwrap());
        assert_eq!(attr(t, "role").as_deref(), Some("img"), "{t}");
        let label = attr(t, "aria-label").unwrap_or_else(|| panic!("no label: {t}"));
        let bytes: u64 = tree.covered(row, agg).iter().map(|&r| tree.bytes[r]).sum();
        let path = if agg > 0 {
            format!("{agg} smaller items in {}", tree.paths[row])
        } else {
            tree.paths[row].clone()
        };
        assert!(label.starts_with(&path), "{label} names not {path}");
        assert!(
            label.contains(&format!("({} bytes)", commas(bytes))),
            "{label}: not {bytes} bytes"
        );
    }
    assert!(n > 0, "no tiles");
}

/// `rgb(r, g, b)` → WCAG relative luminance.
fn luminance(css: &str) -> f64 {
    let v: Vec<f64> = css
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .take(3)
        .map(|x| x.trim().parse::<f64>().unwrap() / 255.0)
        .collect();
    assert_eq!(v.len(), 3, "{css}");
    let lin = |c: f64| {
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(v[0]) + 0.7152 * lin(v[1]) + 0.0722 * lin(v[2])
}

fn contrast(a: &str, b: &str) -> f64 {
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// The theme asked for is the one drawn, and its text stays readable
/// (WCAG AA, 4.5:1): body text and muted text on the background, tile
/// labels on every category's colour. Returns the background's luminance.
fn check_theme(result: &Value, theme: &str) -> f64 {
    let t = &result["theme"];
    assert_eq!(t["name"], theme);
    let s = |k: &str| t[k].as_str().unwrap().to_string();
    let (bg, fg) = (s("bg"), s("fg"));
    for (what, c) in [("text", &fg), ("muted text", &s("muted"))] {
        let r = contrast(c, &bg);
        assert!(r >= 4.5, "{theme}: {what} {c} on {bg}: {r:.2}");
    }
    let label = s("label");
    let swatches = t["tiles"].as_array().unwrap();
    assert!(swatches.len() >= 9, "{swatches:?}");
    for sw in swatches {
        let (class, fill) = (sw[0].as_str().unwrap(), sw[1].as_str().unwrap());
        let r = contrast(&label, fill);
        assert!(r >= 4.5, "{theme}: label {label} on {class} {fill}: {r:.2}");
    }
    luminance(&bg)
}

/// One image with a package database, a docs finding, and the hostile
/// name: every interaction, in both themes.
#[test]
fn interactions_run_through_the_pages_own_handlers() {
    let Some(bin) = chromium() else { return };
    let dir = TempDir::new().unwrap();
    let status =
        "Package: libx1\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\n";
    let base = Layer::new()
        .file("var/lib/dpkg/status", status, 0o644)
        .file(
            "var/lib/dpkg/info/libx1:amd64.list",
            "/usr/lib/libx.so.1\n/usr/share/doc/libx1/changelog\n",
            0o644,
        )
        .file("usr/lib/libx.so.1", content(3, 700_000), 0o644)
        .file("usr/share/doc/libx1/changelog", content(4, 90_000), 0o644)
        .file("usr/share/man/man1/x.1", content(5, 40_000), 0o644)
        .file("usr/bin/app", content(6, 300_000), 0o755);
    let mut app = Layer::new()
        .file("opt/data/a.bin", content(7, 150_000), 0o644)
        .file(&format!("srv/{HOSTILE}"), content(8, 60_000), 0o644);
    // Many tiny files next to the package's library, so merged tiles are
    // drawn beside a tile of another layer: highlighting layer 1 must
    // light the library's tile and not the merged tile of layer-2 files.
    for i in 0..300 {
        app = app.file(
            &format!("usr/lib/f{i:03}"),
            content(100 + i, 5 + i as usize % 30),
            0o644,
        );
    }
    let img = fixture_layers(
        vec![base, app],
        &[
            "/bin/sh -c #(nop) ADD base",
            "/bin/sh -c #(nop) COPY data /opt/data",
        ],
    );
    let tar = dir.path().join("pkg.tar");
    std::fs::write(&tar, legacy_archive(&[(&img, &["pkg:1"])])).unwrap();
    let page = dir.path().join("pkg.html");
    layerscope(&[tar.to_str().unwrap(), "--html", page.to_str().unwrap()]);
    let data = embedded(&std::fs::read_to_string(&page).unwrap());
    let image = &data["images"][0];

    // Without the fragment, the self-test does not run.
    let (dom, log) = dump(&bin, &page);
    check_clean(&dom, &log);
    assert!(!dom.contains("<pre id=\"selftest-result\"") && !dom.contains("data-selftest=\""));
    check_labels(&dom, image, 0);

    let mut bg = Vec::new();
    for theme in ["light", "dark"] {
        let (dom, _, result) = selftest(&bin, &page, theme);
        assert!(dom.contains(&format!("<html lang=\"en\" data-theme=\"{theme}\"")));
        let id = check_interactions(&result, image);
        assert!(id.is_some(), "no finding was clicked");
        // The hovered file is the package's largest.
        let hover = &result["steps"][2];
        assert_eq!(hover["text"][0], "/usr/lib/libx.so.1");
        bg.push(check_theme(&result, theme));
        check_labels(&dom, image, 0);
    }
    assert!(bg[0] > 0.8 && bg[1] < 0.05, "backgrounds: {bg:?}");
}

fn fixture_layers(layers: Vec<Layer>, history: &[&str]) -> Image {
    let mut img = Image::simple(layers);
    for (h, text) in img.history.iter_mut().zip(history) {
        h.created_by = text.to_string();
    }
    img
}
