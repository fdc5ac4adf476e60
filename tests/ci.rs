//! The CI gate end to end (issue 6): every rule at, just below and just
//! above its limit, units, configuration files (`.layerscope.toml`,
//! `--config`, `.dive-ci`), `CI=true`, exit codes and every output format.
//!
//! Expected numbers come from the fixtures' own file lists (the overlay
//! model in `common`), never from layerscope's output.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::*;
use serde_json::Value;
use tempfile::TempDir;

// ---- fixtures -----------------------------------------------------------------

/// Every waste fixture ships exactly this many bytes.
const TOTAL: u64 = 100_000;

/// A built fixture: its directory (also the working directory of the runs),
/// the archive, the image and the model of its file system.
struct Fx {
    dir: TempDir,
    path: PathBuf,
    image: Image,
    model: Model,
}

impl Fx {
    fn new(image: Image, tag: &str) -> Fx {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("image.tar");
        std::fs::write(&path, legacy_archive(&[(&image, &[tag])])).unwrap();
        let model = Model::build(&image.layers);
        Fx {
            dir,
            path,
            image,
            model,
        }
    }

    /// Another archive in the same directory (for two-image runs).
    fn add(&self, name: &str, image: &Image, tag: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, legacy_archive(&[(image, &[tag])])).unwrap();
        p
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn wasted(&self) -> u64 {
        self.model.hidden_total() + self.model.duplicate_bytes()
    }

    /// `layerscope IMAGE ARGS...` run in the fixture's directory, with no
    /// CI variables inherited.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = layerscope();
        c.current_dir(self.dir.path()).arg(&self.path).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        run(&mut self.cmd(args))
    }
}

fn layerscope() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_layerscope"));
    c.env_remove("CI")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("NO_COLOR");
    c
}

/// A Debian image of exactly [`TOTAL`] bytes in two layers: layer 1 ships
/// `/data/old.bin` (`deleted` bytes) that layer 2 deletes, and layer 2 adds
/// two identical files of `dup` bytes. Waste: `deleted + dup`.
fn waste_image(deleted: usize, dup: usize) -> Image {
    let os = OS_RELEASE.len();
    let filler = TOTAL as usize - os - deleted - 2 * dup;
    let twin = content(3, dup);
    let l1 = Layer::new()
        .dir("etc", 0o755)
        .file("etc/os-release", OS_RELEASE, 0o644)
        .dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .file("usr/bin/app", content(1, filler), 0o755)
        .dir("data", 0o755)
        .file("data/old.bin", content(2, deleted), 0o644);
    let l2 = Layer::new()
        .whiteout("data/old.bin")
        .dir("app", 0o755)
        .file("app/a.dat", twin.clone(), 0o644)
        .file("app/b.dat", twin, 0o644);
    Image::simple(vec![l1, l2])
}

/// 25% waste: 15,000 deleted and 10,000 duplicated bytes of 100,000.
fn waste_fx() -> Fx {
    let fx = Fx::new(waste_image(15_000, 10_000), "gate:v1");
    // The fixture is what it says, by the model.
    assert_eq!(fx.model.total(), TOTAL);
    assert_eq!(fx.model.hidden_total(), 15_000);
    assert_eq!(fx.model.duplicate_bytes(), 10_000);
    fx
}

/// A Debian image with a Go toolchain file of `go` bytes under
/// /usr/local/go, apt lists of `apt` bytes, and /srv/data.bin of `srv`
/// bytes; without os-release when `debian` is false.
fn residue_image(debian: bool, go: usize, apt: usize, srv: usize) -> Image {
    let mut l1 = Layer::new().dir("etc", 0o755);
    if debian {
        l1 = l1.file("etc/os-release", OS_RELEASE, 0o644);
    }
    let l1 = l1
        .dir("bin", 0o755)
        .file("bin/sh", content(20, 1000), 0o755)
        .dir("var", 0o755)
        .dir("var/lib", 0o755)
        .dir("var/lib/apt", 0o755)
        .dir("var/lib/apt/lists", 0o755)
        .file(
            "var/lib/apt/lists/deb.debian.org_Packages",
            content(21, apt),
            0o644,
        );
    let l2 = Layer::new()
        .dir("usr", 0o755)
        .dir("usr/local", 0o755)
        .dir("usr/local/go", 0o755)
        .dir("usr/local/go/bin", 0o755)
        .file("usr/local/go/bin/go", content(22, go), 0o755)
        .dir("srv", 0o755)
        .file("srv/data.bin", content(23, srv), 0o644);
    Image::simple(vec![l1, l2])
}

/// An image of exactly `bytes` bytes in one file (no waste).
fn plain_image(bytes: usize, seed: u32) -> Image {
    Image::simple(vec![Layer::new().dir("app", 0o755).file(
        "app/blob",
        content(seed, bytes),
        0o644,
    )])
}

// ---- running ------------------------------------------------------------------

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(c: &mut Command) -> Run {
    let out = c.output().unwrap();
    let r = Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r
}

impl Run {
    fn code(self, want: i32) -> Run {
        assert_eq!(
            self.code, want,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The text verdict line of `rule`: `PASS  rule ...` or `FAIL  rule ...`.
    fn line(&self, rule: &str) -> &str {
        let found: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| {
                (l.starts_with("PASS  ") || l.starts_with("FAIL  "))
                    && l[6..].starts_with(rule)
                    && l[6 + rule.len()..].starts_with(' ')
            })
            .collect();
        assert_eq!(found.len(), 1, "one line for {rule}: {}", self.stdout);
        found[0]
    }

    fn passes(&self, rule: &str) -> &str {
        let l = self.line(rule);
        assert!(l.starts_with("PASS  "), "{rule} should pass: {l}");
        l
    }

    fn fails(&self, rule: &str) -> &str {
        let l = self.line(rule);
        assert!(l.starts_with("FAIL  "), "{rule} should fail: {l}");
        l
    }

    /// How many verdict lines stdout has.
    fn verdict_lines(&self) -> usize {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("PASS  ") || l.starts_with("FAIL  "))
            .count()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap()
    }

    /// An error: exit 2, nothing on stdout, one stderr line naming `needles`.
    fn error(self, needles: &[&str]) -> Run {
        let r = self.code(2);
        assert!(r.stdout.is_empty(), "stdout: {}", r.stdout);
        assert_eq!(r.stderr.lines().count(), 1, "one line: {:?}", r.stderr);
        assert!(r.stderr.starts_with("layerscope: "), "{}", r.stderr);
        for n in needles {
            assert!(r.stderr.contains(n), "{n:?} not in {}", r.stderr);
        }
        r
    }
}

/// The text gate's final line says how many rules failed.
fn summary_says(r: &Run, failed: usize, of: usize) {
    let last = r.stdout.lines().last().unwrap();
    if failed == 0 {
        assert!(
            last.starts_with(&format!(
                "PASS: {of} rule{} passed",
                if of == 1 { "" } else { "s" }
            )),
            "{last}"
        );
    } else {
        assert!(
            last.starts_with(&format!(
                "FAIL: {failed} of {of} rule{} failed",
                if of == 1 { "" } else { "s" }
            )),
            "{last}"
        );
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// The verdict of `rule` in a JSON report's `ci` section.
fn verdict<'a>(report: &'a Value, rule: &str) -> &'a Value {
    report["ci"]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == rule)
        .unwrap_or_else(|| panic!("no verdict {rule} in {}", report["ci"]))
}

// ---- max-size -----------------------------------------------------------------

#[test]
fn max_size_at_below_and_above_the_total() {
    let fx = waste_fx();
    let total = fx.model.total();
    let at = total.to_string();
    let below = (total - 1).to_string();
    let above = (total + 1).to_string();

    let r = fx.run(&["--ci", "--max-size", &at]).code(0);
    let l = r.passes("max-size");
    assert!(l.contains(&format!("({total} bytes)")), "{l}");
    assert_eq!(r.verdict_lines(), 1);
    summary_says(&r, 0, 1);
    assert!(r.stderr.is_empty(), "{}", r.stderr);

    fx.run(&["--ci", "--max-size", &above])
        .code(0)
        .passes("max-size");

    let r = fx.run(&["--ci", "--max-size", &below]).code(1);
    let l = r.fails("max-size");
    assert!(l.contains(&format!("({total} bytes)")), "{l}");
    summary_says(&r, 1, 1);
    // The failure lists offenders: the biggest things to fix, with their fix.
    assert!(r.stdout.contains("/data/old.bin"), "{}", r.stdout);
    assert!(r.stdout.contains("waste/deleted"), "{}", r.stdout);
    assert!(r.stdout.contains("fix: "), "{}", r.stdout);

    // Decimal units as in `docker images`, binary ones with an i.
    fx.run(&["--ci", "--max-size", "100kB"]).code(0);
    fx.run(&["--ci", "--max-size", "100KB"]).code(0);
    fx.run(&["--ci", "--max-size", "0.1MB"]).code(0);
    fx.run(&["--ci", "--max-size", "99.999kB"]).code(1);
    fx.run(&["--ci", "--max-size", "97.65625KiB"]).code(0); // 100,000 bytes
    fx.run(&["--ci", "--max-size", "97.6KiB"]).code(1); // 99,942 bytes
    fx.run(&["--ci", "--max-size", "100000B"]).code(0);
}

#[test]
fn one_kb_is_1000_bytes_and_one_kib_1024() {
    let fx = Fx::new(plain_image(1010, 5), "small:v1");
    assert_eq!(fx.model.total(), 1010);
    fx.run(&["--ci", "--max-size", "1kB"])
        .code(1)
        .fails("max-size");
    fx.run(&["--ci", "--max-size", "1KiB"])
        .code(0)
        .passes("max-size");
    fx.run(&["--ci", "--max-size", "1010"]).code(0);
    fx.run(&["--ci", "--max-size", "1009"]).code(1);
}

#[test]
fn size_units_through_the_cli() {
    let fx = waste_fx();
    for ok in ["20MB", "20MiB", "1.5GB", "20 MB", "1TB", "1GiB"] {
        fx.run(&["--ci", "--max-size", ok])
            .code(0)
            .passes("max-size");
    }
    for bad in ["20XB", "MB", "-5MB", "", "1.2.3MB", "5 XiB"] {
        let arg = format!("--max-size={bad}");
        let r = fx.run(&["--ci", &arg]).error(&["--max-size"]);
        assert!(r.stderr.contains("invalid size"), "{}", r.stderr);
    }
    // The other size flags name themselves too.
    fx.run(&["--ci", "--max-size", "1GB", "--deny-threshold", "20XB"])
        .error(&["--deny-threshold"]);
    fx.run(&["--ci", "--max-waste", "20XB"])
        .error(&["--max-waste"]);
    fx.run(&["--ci", "--max-waste", "ten%"])
        .error(&["--max-waste"]);
    fx.run(&["--ci", "--min-efficiency", "1.5"])
        .error(&["--min-efficiency"]);
    fx.run(&["--ci", "--min-efficiency", "lots"])
        .error(&["--min-efficiency"]);
    fx.run(&["--ci", "--deny", "compilers"])
        .error(&["--deny", "compilers"]);
    fx.run(&["--ci", "--max-size", "1GB", "--ignore", "/a/[b"])
        .error(&["--ignore"]);
    // `--max-size -5MB` (separate argument) is refused too.
    let r = fx.run(&["--ci", "--max-size", "-5MB"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn negative_size_as_a_separate_argument_names_the_flag() {
    let fx = waste_fx();
    fx.run(&["--ci", "--max-size", "-5MB"])
        .error(&["--max-size", "invalid size"]);
}

// ---- max-layers ---------------------------------------------------------------

#[test]
fn max_layers_at_below_and_above() {
    let fx = waste_fx();
    let n = fx.image.layers.len();
    assert_eq!(n, 2);
    let r = fx.run(&["--ci", "--max-layers", &n.to_string()]).code(0);
    let l = r.passes("max-layers");
    assert!(l.contains(&format!("limit {n} ")), "{l}");
    fx.run(&["--ci", "--max-layers", &(n + 1).to_string()])
        .code(0)
        .passes("max-layers");
    let r = fx
        .run(&["--ci", "--max-layers", &(n - 1).to_string()])
        .code(1);
    let l = r.fails("max-layers");
    assert!(l.contains(&format!("has {n} layers")), "{l}");
    // Not a number: a usage error.
    let r = fx.run(&["--ci", "--max-layers", "two"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

// ---- max-waste and min-efficiency ----------------------------------------------

#[test]
fn max_waste_as_a_size() {
    let fx = waste_fx();
    let w = fx.wasted();
    let r = fx.run(&["--ci", "--max-waste", &w.to_string()]).code(0);
    r.passes("max-waste");
    fx.run(&["--ci", "--max-waste", &(w + 1).to_string()])
        .code(0)
        .passes("max-waste");
    let r = fx
        .run(&["--ci", "--max-waste", &(w - 1).to_string()])
        .code(1);
    let l = r.fails("max-waste");
    assert!(l.contains("(25.0%)"), "{l}");
    // Offenders: the deleted file and the duplicate copy, each with its fix.
    assert!(r.stdout.contains("waste/deleted"), "{}", r.stdout);
    assert!(r.stdout.contains("/data/old.bin"), "{}", r.stdout);
    assert!(r.stdout.contains("waste/duplicate"), "{}", r.stdout);
    assert!(r.stdout.contains("/app/b.dat"), "{}", r.stdout);
    assert!(
        r.stdout.contains("fix: Delete them in the same RUN"),
        "{}",
        r.stdout
    );
    // 25kB = 25,000 bytes: exactly the waste.
    fx.run(&["--ci", "--max-waste", "25kB"]).code(0);
    fx.run(&["--ci", "--max-waste", "24KiB"]).code(1);

    // The JSON verdict has the exact numbers.
    let v = fx
        .run(&[
            "--ci",
            "--max-waste",
            &(w - 1).to_string(),
            "--format",
            "json",
        ])
        .code(1)
        .json();
    let m = verdict(&v, "max-waste");
    assert_eq!(m["passed"], false);
    assert_eq!(m["measured_value"].as_f64().unwrap(), w as f64);
    assert_eq!(m["limit_value"].as_f64().unwrap(), (w - 1) as f64);
    let offenders = m["offenders"].as_array().unwrap();
    let deleted = offenders
        .iter()
        .find(|o| o["path"] == "/data/old.bin")
        .unwrap();
    assert_eq!(deleted["bytes"], fx.model.hidden_total());
    assert_eq!(deleted["what"], "waste/deleted");
    assert_eq!(deleted["layer"], 1);
    assert!(!deleted["fix"].as_str().unwrap().is_empty());
    let dup = offenders
        .iter()
        .find(|o| o["what"] == "waste/duplicate")
        .unwrap();
    assert_eq!(dup["bytes"], fx.model.duplicate_bytes());
}

#[test]
fn max_waste_as_a_percent() {
    let fx = waste_fx();
    // 25,000 of 100,000 bytes.
    assert_eq!(fx.wasted() * 4, fx.model.total());
    let r = fx.run(&["--ci", "--max-waste", "25%"]).code(0);
    let l = r.passes("max-waste");
    assert!(l.contains("limit 25.0%"), "{l}");
    fx.run(&["--ci", "--max-waste", "25.001%"]).code(0);
    fx.run(&["--ci", "--max-waste", "24.999%"])
        .code(1)
        .fails("max-waste");
    fx.run(&["--ci", "--max-waste", "0%"]).code(1);
    fx.run(&["--ci", "--max-waste", "100%"]).code(0);
    let v = fx
        .run(&["--ci", "--max-waste", "24.999%", "--format", "json"])
        .code(1)
        .json();
    let m = verdict(&v, "max-waste");
    assert_eq!(m["measured_value"].as_f64().unwrap(), 25_000.0);
    // 24.999% of 100,000 bytes is 24,999 bytes.
    assert_eq!(m["limit_value"].as_f64().unwrap(), 24_999.0);
}

#[test]
fn max_waste_percent_at_the_limit_is_exact() {
    // 19,000 deleted + 10,000 duplicated = 29,000 of 100,000 bytes.
    let fx = Fx::new(waste_image(19_000, 10_000), "gate:v29");
    assert_eq!(fx.wasted(), 29_000);
    assert_eq!(fx.model.total(), TOTAL);
    fx.run(&["--ci", "--max-waste", "29%"])
        .code(0)
        .passes("max-waste");
    fx.run(&["--ci", "--max-waste", "28.999%"]).code(1);
}

#[test]
fn min_efficiency_at_below_and_above() {
    let fx = waste_fx();
    // 1 - 25,000/100,000.
    let eff = 1.0 - fx.wasted() as f64 / fx.model.total() as f64;
    assert_eq!(eff, 0.75);
    let r = fx.run(&["--ci", "--min-efficiency", "0.75"]).code(0);
    let l = r.passes("min-efficiency");
    assert!(l.contains("75.0%"), "{l}");
    fx.run(&["--ci", "--min-efficiency", "75%"]).code(0);
    fx.run(&["--ci", "--min-efficiency", "0.7499"]).code(0);
    let r = fx.run(&["--ci", "--min-efficiency", "0.7501"]).code(1);
    r.fails("min-efficiency");
    assert!(r.stdout.contains("/data/old.bin"), "{}", r.stdout);
    fx.run(&["--ci", "--min-efficiency", "76%"]).code(1);
    fx.run(&["--ci", "--min-efficiency", "0"]).code(0);
    fx.run(&["--ci", "--min-efficiency", "1"]).code(1);
    let v = fx
        .run(&["--ci", "--min-efficiency", "0.7501", "--format", "json"])
        .code(1)
        .json();
    let m = verdict(&v, "min-efficiency");
    assert!((m["measured_value"].as_f64().unwrap() - eff).abs() < 1e-12);
    assert!((m["limit_value"].as_f64().unwrap() - 0.7501).abs() < 1e-12);
}

#[test]
fn ignore_leaves_paths_out_of_waste() {
    let fx = waste_fx();
    let w = fx.wasted();
    // Independently: the waste that is not under /data.
    let hidden_elsewhere: u64 = fx
        .model
        .hidden
        .iter()
        .filter(|h| !h.1.starts_with("/data/"))
        .map(|h| h.4)
        .sum();
    let rest = hidden_elsewhere + fx.model.duplicate_bytes();
    assert_eq!(rest, 10_000);
    let limit = rest.to_string();
    fx.run(&["--ci", "--max-waste", &limit]).code(1);
    let r = fx
        .run(&["--ci", "--max-waste", &limit, "--ignore", "/data/**"])
        .code(0);
    r.passes("max-waste");
    fx.run(&[
        "--ci",
        "--max-waste",
        &(rest - 1).to_string(),
        "--ignore",
        "/data/**",
    ])
    .code(1);
    // Ignoring one copy of the duplicate pair removes the duplicate waste;
    // both globs together leave none.
    let r = fx
        .run(&[
            "--ci",
            "--max-waste",
            "0",
            "--ignore",
            "/data/**",
            "--ignore",
            "/app/b.dat",
        ])
        .code(0);
    r.passes("max-waste");
    // Efficiency follows the same measure.
    let v = fx
        .run(&[
            "--ci",
            "--min-efficiency",
            "0.9",
            "--ignore",
            "/data/**",
            "--format",
            "json",
        ])
        .code(0)
        .json();
    let m = verdict(&v, "min-efficiency");
    assert!((m["measured_value"].as_f64().unwrap() - 0.9).abs() < 1e-12);
    // A glob that matches nothing changes nothing.
    let v = fx
        .run(&[
            "--ci",
            "--max-waste",
            "1GB",
            "--ignore",
            "/nowhere/**",
            "--format",
            "json",
        ])
        .code(0)
        .json();
    assert_eq!(
        verdict(&v, "max-waste")["measured_value"].as_f64().unwrap(),
        w as f64
    );
    // The offenders leave ignored paths out.
    let v = fx
        .run(&[
            "--ci",
            "--max-waste",
            "0",
            "--ignore",
            "/data/**",
            "--format",
            "json",
        ])
        .code(1)
        .json();
    let offenders = verdict(&v, "max-waste")["offenders"].as_array().unwrap();
    assert!(!offenders.is_empty());
    for o in offenders {
        assert!(!o["path"].as_str().unwrap().starts_with("/data/"), "{o}");
    }
}

// ---- deny ---------------------------------------------------------------------

#[test]
fn deny_toolchain_at_below_and_above_the_threshold() {
    let fx = Fx::new(residue_image(true, 30_000, 8_000, 5_000), "residue:v1");
    // Toolchain bytes: everything under /usr/local/go.
    let go: u64 = fx
        .model
        .fs
        .iter()
        .filter(|(p, _)| p.starts_with("usr/local/go/"))
        .map(|(_, e)| e.bytes())
        .sum();
    assert_eq!(go, 30_000);
    let at = go.to_string();
    let r = fx
        .run(&["--ci", "--deny", "toolchain", "--deny-threshold", &at])
        .code(0);
    r.passes("deny toolchain");
    fx.run(&[
        "--ci",
        "--deny",
        "toolchain",
        "--deny-threshold",
        &(go + 1).to_string(),
    ])
    .code(0);
    let r = fx
        .run(&[
            "--ci",
            "--deny",
            "toolchain",
            "--deny-threshold",
            &(go - 1).to_string(),
        ])
        .code(1);
    r.fails("deny toolchain");
    // The offender: category, path, the instruction's layer and the fix.
    assert!(r.stdout.contains("toolchain"), "{}", r.stdout);
    assert!(r.stdout.contains("/usr/local/go"), "{}", r.stdout);
    assert!(r.stdout.contains("layer 2:"), "{}", r.stdout);
    assert!(
        r.stdout.contains("fix: Build in a builder stage"),
        "{}",
        r.stdout
    );
    let v = fx
        .run(&[
            "--ci",
            "--deny",
            "toolchain",
            "--deny-threshold",
            &(go - 1).to_string(),
            "--format",
            "json",
        ])
        .code(1)
        .json();
    let m = verdict(&v, "deny toolchain");
    assert_eq!(m["measured_value"].as_f64().unwrap(), go as f64);
    assert_eq!(m["limit_value"].as_f64().unwrap(), (go - 1) as f64);
    let o = &m["offenders"][0];
    assert_eq!(o["what"], "toolchain");
    assert_eq!(o["bytes"], go);
    assert!(
        o["path"].as_str().unwrap().starts_with("/usr/local/go"),
        "{o}"
    );
    assert_eq!(o["layer"], 2);
    // --ignore takes the toolchain out of the count.
    fx.run(&[
        "--ci",
        "--deny",
        "toolchain",
        "--deny-threshold",
        "0",
        "--ignore",
        "/usr/local/go/**",
    ])
    .code(0)
    .passes("deny toolchain");
}

#[test]
fn deny_threshold_defaults_to_one_megabyte() {
    let fx = Fx::new(residue_image(false, 1_000_000, 10, 10), "go:at");
    fx.run(&["--ci", "--deny", "toolchain"])
        .code(0)
        .passes("deny toolchain");
    let fx = Fx::new(residue_image(false, 1_000_001, 10, 10), "go:above");
    let r = fx.run(&["--ci", "--deny", "toolchain"]).code(1);
    let l = r.fails("deny toolchain");
    assert!(l.contains("limit 1 MB"), "{l}");
}

#[test]
fn apt_lists_are_a_package_cache_only_on_debian() {
    let debian = Fx::new(residue_image(true, 100, 8_000, 100), "deb:v1");
    let bare = Fx::new(residue_image(false, 100, 8_000, 100), "bare:v1");
    let args = [
        "--ci",
        "--deny",
        "package-cache",
        "--deny-threshold",
        "7999",
    ];
    let r = debian.run(&args).code(1);
    r.fails("deny package-cache");
    assert!(r.stdout.contains("/var/lib/apt/lists"), "{}", r.stdout);
    assert!(r.stdout.contains("package-cache"), "{}", r.stdout);
    debian
        .run(&[
            "--ci",
            "--deny",
            "package-cache",
            "--deny-threshold",
            "8000",
        ])
        .code(0);
    // No os-release: the apt rule (distros = debian, ubuntu) does not fire.
    bare.run(&args).code(0).passes("deny package-cache");

    // Two categories at once, comma-separated: one verdict each.
    let r = debian
        .run(&[
            "--ci",
            "--deny",
            "toolchain,package-cache",
            "--deny-threshold",
            "7999",
        ])
        .code(1);
    r.passes("deny toolchain");
    r.fails("deny package-cache");
    assert_eq!(r.verdict_lines(), 2);
    summary_says(&r, 1, 2);
}

// ---- max-growth ---------------------------------------------------------------

#[test]
fn max_growth_as_size_and_percent() {
    // Baseline 100,000 bytes, candidate 110,000.
    let fx = Fx::new(plain_image(100_000, 30), "app:old");
    let candidate = Image::simple(vec![
        Layer::new()
            .dir("app", 0o755)
            .file("app/blob", content(30, 100_000), 0o644),
        Layer::new()
            .dir("app", 0o755)
            .file("app/new-feature", content(31, 10_000), 0o644),
    ]);
    let cand_total = Model::build(&candidate.layers).total();
    let growth = cand_total - fx.model.total();
    assert_eq!(growth, 10_000);
    let cand = fx.add("new.tar", &candidate, "app:new");
    let two = |args: &[&str]| {
        let mut c = layerscope();
        c.current_dir(fx.dir.path())
            .arg(&fx.path)
            .arg(&cand)
            .args(args);
        run(&mut c)
    };
    let r = two(&["--ci", "--max-growth", &growth.to_string()]).code(0);
    let l = r.passes("max-growth");
    assert!(l.contains("(10.0%)"), "{l}");
    two(&["--ci", "--max-growth", &(growth + 1).to_string()]).code(0);
    let r = two(&["--ci", "--max-growth", &(growth - 1).to_string()]).code(1);
    r.fails("max-growth");
    assert!(r.stdout.contains("/app"), "growth offenders: {}", r.stdout);
    two(&["--ci", "--max-growth", "10kB"]).code(0);
    two(&["--ci", "--max-growth", "9.999kB"]).code(1);
    // Percent of the baseline.
    two(&["--ci", "--max-growth", "10%"])
        .code(0)
        .passes("max-growth");
    two(&["--ci", "--max-growth", "10.01%"]).code(0);
    two(&["--ci", "--max-growth", "9.99%"])
        .code(1)
        .fails("max-growth");
    let v = two(&["--ci", "--max-growth", "9.99%", "--format", "json"])
        .code(1)
        .json();
    let m = verdict(&v, "max-growth");
    assert_eq!(m["measured_value"].as_f64().unwrap(), growth as f64);
    assert_eq!(m["limit_value"].as_f64().unwrap(), 9_990.0);
    assert_eq!(v["ci"]["baseline"], "app:old");
    assert_eq!(v["ci"]["image"], "app:new");
    assert_eq!(v["images"].as_array().unwrap().len(), 2);

    // The size rules apply to the candidate, not to the baseline.
    let c = cand_total.to_string();
    two(&["--ci", "--max-size", &c]).code(0);
    two(&["--ci", "--max-size", &(cand_total - 1).to_string()]).code(1);
    two(&["--ci", "--max-layers", "2"]).code(0);
    two(&["--ci", "--max-layers", "1"]).code(1);

    // Shrinking always passes a growth limit; swapped, the candidate shrank.
    let mut c = layerscope();
    c.current_dir(fx.dir.path())
        .arg(&cand)
        .arg(&fx.path)
        .args(["--ci", "--max-growth", "0"]);
    run(&mut c).code(0).passes("max-growth");
}

#[test]
fn max_growth_needs_two_images() {
    let fx = waste_fx();
    fx.run(&["--ci", "--max-growth", "1MB"])
        .error(&["--max-growth", "needs a baseline"]);
}

#[test]
fn three_images_judge_each_against_the_first() {
    // Baseline 100,000 bytes; B grows by 5,000 and C by 20,000.
    let fx = Fx::new(plain_image(100_000, 40), "app:base");
    let grown = |extra: usize, seed: u32| {
        Image::simple(vec![
            Layer::new()
                .dir("app", 0o755)
                .file("app/blob", content(40, 100_000), 0o644),
            Layer::new()
                .dir("app", 0o755)
                .file("app/more", content(seed, extra), 0o644),
        ])
    };
    let (b, c) = (grown(5_000, 41), grown(20_000, 42));
    let b_total = Model::build(&b.layers).total();
    let c_total = Model::build(&c.layers).total();
    assert_eq!(b_total - fx.model.total(), 5_000);
    assert_eq!(c_total - fx.model.total(), 20_000);
    let b = fx.add("b.tar", &b, "app:b");
    let c = fx.add("c.tar", &c, "app:c");
    let three = |args: &[&str]| {
        let mut cmd = layerscope();
        cmd.current_dir(fx.dir.path())
            .arg(&fx.path)
            .arg(&b)
            .arg(&c)
            .args(args);
        run(&mut cmd)
    };
    // Growth is measured against the first image, for each other image.
    let v = three(&["--ci", "--max-growth", "10kB", "--format", "json"])
        .code(1)
        .json();
    assert!(v["ci"].is_null(), "several judged images: ci_results only");
    let results = v["ci_results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for (r, (name, growth, passed)) in results
        .iter()
        .zip([("app:b", 5_000.0, true), ("app:c", 20_000.0, false)])
    {
        assert_eq!(r["image"], name);
        assert_eq!(r["baseline"], "app:base");
        assert_eq!(r["passed"], passed, "{r}");
        let m = r["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["rule"] == "max-growth")
            .unwrap();
        assert_eq!(m["measured_value"].as_f64().unwrap(), growth);
    }
    // A size rule applies to every image after the first, not the baseline.
    let limit = b_total.to_string();
    let r = three(&["--ci", "--max-size", &limit]).code(1);
    assert!(r.stdout.contains("app:b against app:base (the baseline)"));
    assert!(r.stdout.contains("app:c against app:base (the baseline)"));
    assert_eq!(
        r.stdout.matches("PASS  max-size").count(),
        1,
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout.matches("FAIL  max-size").count(),
        1,
        "{}",
        r.stdout
    );
    // The table of images leads, a row per image.
    assert!(r.stdout.starts_with("IMAGE "), "{}", r.stdout);
    let limit = c_total.to_string();
    three(&["--ci", "--max-size", &limit]).code(0);
    // Markdown: the table, then a section per judged image.
    let md = three(&["--max-size", &limit, "--format", "markdown"]).code(0);
    assert!(
        md.stdout.starts_with("| IMAGE | SIZE | PULL |"),
        "{}",
        md.stdout
    );
    assert_eq!(md.stdout.matches("### layerscope: `").count(), 2);
    assert!(md.stdout.contains("| app:c | "), "{}", md.stdout);
    // JUnit: one suite per judged image.
    let x = three(&["--max-size", &b_total.to_string(), "--format", "junit"]).code(1);
    let doc = roxmltree::Document::parse(&x.stdout).unwrap();
    let suites: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 2);
    assert_eq!(doc.root_element().attribute("failures"), Some("1"));
}

// ---- exit codes and errors ----------------------------------------------------

#[test]
fn all_rules_together_and_exit_codes() {
    let fx = waste_fx();
    let total = fx.model.total().to_string();
    let pass = [
        "--ci",
        "--max-size",
        &total,
        "--max-layers",
        "2",
        "--max-waste",
        "25%",
        "--min-efficiency",
        "0.75",
        "--deny",
        "toolchain,package-cache",
    ];
    let r = fx.run(&pass).code(0);
    assert_eq!(r.verdict_lines(), 6);
    summary_says(&r, 0, 6);
    // One rule off by one byte: exit 1, that rule alone fails.
    let mut one_off = pass.to_vec();
    let below = (fx.model.total() - 1).to_string();
    one_off[2] = &below;
    let r = fx.run(&one_off).code(1);
    r.fails("max-size");
    for rule in [
        "max-layers",
        "max-waste",
        "min-efficiency",
        "deny toolchain",
        "deny package-cache",
    ] {
        r.passes(rule);
    }
    summary_says(&r, 1, 6);
    // The JSON verdicts come in the same order, one per rule.
    let mut json = one_off.clone();
    json.extend(["--format", "json"]);
    let v = fx.run(&json).code(1).json();
    let rules: Vec<&str> = v["ci"]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "max-size",
            "max-layers",
            "max-waste",
            "min-efficiency",
            "deny toolchain",
            "deny package-cache"
        ]
    );
    assert_eq!(v["ci"]["passed"], false);
}

#[test]
fn errors_exit_2() {
    let fx = waste_fx();
    // CI mode with no rule at all.
    fx.run(&["--ci"]).error(&["rule"]);
    // A missing image.
    let mut c = layerscope();
    c.current_dir(fx.dir.path())
        .arg(fx.dir.path().join("missing.tar"))
        .args(["--ci", "--max-size", "1MB"]);
    let r = run(&mut c).code(2);
    assert!(r.stdout.is_empty());
    // A config file that does not exist.
    fx.run(&["--ci", "--config", "nope.toml"])
        .error(&["nope.toml"]);
}

// ---- configuration ------------------------------------------------------------

#[test]
fn layerscope_toml_in_the_working_directory_is_read() {
    let fx = waste_fx();
    let total = fx.model.total();
    fx.write(
        ".layerscope.toml",
        &format!("[ci]\nmax-size = \"{}\"\nmax-layers = 2\n", total - 1),
    );
    let r = fx.run(&["--ci"]).code(1);
    r.fails("max-size");
    r.passes("max-layers");
    assert!(
        r.stderr.is_empty(),
        "no note for our own file: {}",
        r.stderr
    );
    // A flag overrides the file's rule, and leaves the others.
    let r = fx.run(&["--ci", "--max-size", &total.to_string()]).code(0);
    r.passes("max-size");
    r.passes("max-layers");
    let r = fx.run(&["--ci", "--max-layers", "1"]).code(1);
    r.fails("max-size");
    r.fails("max-layers");
    // Units in the file, as numbers or strings.
    fx.write(".layerscope.toml", "[ci]\nmax-size = \"100kB\"\n");
    fx.run(&["--ci"]).code(0);
    fx.write(".layerscope.toml", "[ci]\nmax-size = 99999\n");
    fx.run(&["--ci"]).code(1);
    fx.write(
        ".layerscope.toml",
        "[ci]\nmax-waste = \"25%\"\nmin-efficiency = 0.75\n",
    );
    let r = fx.run(&["--ci"]).code(0);
    r.passes("max-waste");
    r.passes("min-efficiency");
    fx.run(&["--ci", "--max-waste", "24.99%"]).code(1);
    // deny, threshold and ignore in the file.
    fx.write(
        ".layerscope.toml",
        "[ci]\nmax-waste = \"10kB\"\nignore = [\"/data/**\"]\n",
    );
    fx.run(&["--ci"]).code(0);
    // A flag --ignore replaces the file's list.
    fx.run(&["--ci", "--ignore", "/app/b.dat"]).code(1);
}

#[test]
fn config_flag_names_the_file() {
    let fx = waste_fx();
    let elsewhere = TempDir::new().unwrap();
    let cfg = elsewhere.path().join("gate.toml");
    std::fs::write(&cfg, "[ci]\nmax-layers = 1\n").unwrap();
    // A .layerscope.toml in the working directory is not read then.
    fx.write(".layerscope.toml", "[ci]\nmax-size = 1\n");
    let r = fx.run(&["--ci", "--config", &p(&cfg)]).code(1);
    r.fails("max-layers");
    assert_eq!(r.verdict_lines(), 1, "{}", r.stdout);
    fx.run(&["--ci", "--config", &p(&cfg), "--max-layers", "2"])
        .code(0);
}

#[test]
fn invalid_configs_exit_2_with_file_and_line() {
    let fx = waste_fx();
    let cases = [
        ("bad TOML", "[ci]\nmax-size = \"1MB\"\n[ci\n", 3),
        ("unknown key", "[ci]\nmax-size = \"1MB\"\nmax-sise = 3\n", 3),
        ("bad size", "# budget\n[ci]\nmax-size = \"20XB\"\n", 3),
        ("bad percent", "[ci]\n\nmax-waste = \"ten%\"\n", 3),
        ("bad category", "[ci]\ndeny = [\"compilers\"]\n", 2),
        ("negative layers", "[ci]\nmax-layers = -1\n", 2),
        (
            "bad rule",
            "[ci]\nmax-size = \"1MB\"\n\n[[rule]]\nid = \"x\"\ncategory = \"nope\"\n",
            6,
        ),
        (
            "bad rule glob",
            "[ci]\nmax-size = \"1MB\"\n\n[[rule]]\nid = \"g\"\ncategory = \"toolchain\"\npaths = [\"/a/[b\"]\n",
            4,
        ),
        (
            "unknown rule field",
            "[[rule]]\nid = \"g\"\ncategory = \"toolchain\"\npath = [\"/a\"]\n",
            4,
        ),
    ];
    for (what, text, line) in cases {
        fx.write(".layerscope.toml", text);
        let r = fx.run(&["--ci", "--max-size", "1GB"]);
        assert_eq!(r.code, 2, "{what}: {}", r.stderr);
        let r = r.error(&[&format!(".layerscope.toml:{line}: ")]);
        eprint!("{what}: {}", r.stderr);
        // The same through --config.
        let cfg = fx.write("other.toml", text);
        fx.run(&["--ci", "--max-size", "1GB", "--config", &p(&cfg)])
            .error(&[&format!("other.toml:{line}: ")]);
    }
}

#[test]
fn invalid_ignore_glob_in_config_names_the_line() {
    let fx = waste_fx();
    fx.write(
        ".layerscope.toml",
        "[ci]\nmax-size = \"1MB\"\nignore = [\"/a/[b\"]\n",
    );
    fx.run(&["--ci"]).error(&[".layerscope.toml:3: "]);
}

#[test]
fn a_user_rule_reclassifies_paths() {
    let fx = Fx::new(residue_image(true, 100, 100, 5_000), "srv:v1");
    let args = ["--ci", "--deny", "toolchain", "--deny-threshold", "4999"];
    // Built-in rules: /srv is runtime; only the 100-byte go binary counts.
    fx.run(&args).code(0).passes("deny toolchain");
    fx.write(
        ".layerscope.toml",
        "[[rule]]\nid = \"srv-tools\"\ncategory = \"toolchain\"\ndescription = \"Tools under /srv\"\nfix = \"Move /srv tools to a builder stage\"\npaths = [\"/srv/**\"]\n",
    );
    let r = fx.run(&args).code(1);
    r.fails("deny toolchain");
    assert!(r.stdout.contains("/srv"), "{}", r.stdout);
    assert!(
        r.stdout.contains("fix: Move /srv tools to a builder stage"),
        "{}",
        r.stdout
    );
    let v = fx
        .run(&[&args[..], &["--format", "json"]].concat())
        .code(1)
        .json();
    assert_eq!(
        verdict(&v, "deny toolchain")["measured_value"]
            .as_f64()
            .unwrap(),
        5_100.0
    );
    // The threshold exactly at the new total passes.
    fx.run(&["--ci", "--deny", "toolchain", "--deny-threshold", "5100"])
        .code(0);
}

#[test]
fn dive_ci_is_read_when_no_layerscope_toml_exists() {
    let fx = waste_fx();
    let w = fx.wasted();
    fx.write(
        ".dive-ci",
        "rules:\n  # dive's defaults, tightened\n  lowestEfficiency: 0.8\n  highestWastedBytes: disabled\n  highestUserWastedPercent: disabled\n",
    );
    let r = fx.run(&["--ci"]).code(1);
    r.fails("min-efficiency");
    assert_eq!(r.verdict_lines(), 1);
    assert!(r.stderr.contains(".dive-ci"), "a note: {}", r.stderr);
    assert!(r.stderr.starts_with("note: "), "{}", r.stderr);
    // Flags override it too.
    fx.run(&["--ci", "--min-efficiency", "0.75"]).code(0);

    fx.write(
        ".dive-ci",
        &format!("rules:\n  lowestEfficiency: 0.75\n  highestWastedBytes: {w}\n"),
    );
    let r = fx.run(&["--ci"]).code(0);
    r.passes("min-efficiency");
    r.passes("max-waste");
    fx.write(
        ".dive-ci",
        &format!("rules:\n  highestWastedBytes: {}\n", w - 1),
    );
    fx.run(&["--ci"]).code(1).fails("max-waste");
    // As dive: wasted bytes over every layer but the first (here the second
    // layer's two 10,000-byte twins: 25,000 wasted / 20,000 = 1.25).
    let user = fx.model.total() - fx.model.layers[0].size;
    assert_eq!(user, 20_000);
    fx.write(".dive-ci", "rules:\n  highestUserWastedPercent: 1.25\n");
    fx.run(&["--ci"]).code(0).passes("max-user-waste");
    fx.write(".dive-ci", "rules:\n  highestUserWastedPercent: 1.2\n");
    fx.run(&["--ci"]).code(1).fails("max-user-waste");
    // Both of dive's waste rules at once: each is checked.
    fx.write(
        ".dive-ci",
        &format!("rules:\n  highestWastedBytes: {w}\n  highestUserWastedPercent: 1.2\n"),
    );
    let r = fx.run(&["--ci"]).code(1);
    r.passes("max-waste");
    r.fails("max-user-waste");
    // A bad value names the file and line.
    fx.write(
        ".dive-ci",
        "rules:\n  lowestEfficiency: 0.9\n  highestWastedBytes: lots\n",
    );
    fx.run(&["--ci"]).error(&[".dive-ci:3: "]);

    // With a .layerscope.toml beside it, .dive-ci is not read.
    fx.write(".dive-ci", "rules:\n  lowestEfficiency: 0.99\n");
    fx.write(".layerscope.toml", "[ci]\nmax-layers = 5\n");
    let r = fx.run(&["--ci"]).code(0);
    r.passes("max-layers");
    assert_eq!(r.verdict_lines(), 1);
    assert!(r.stderr.is_empty(), "no note: {}", r.stderr);
}

// ---- CI=true ------------------------------------------------------------------

#[test]
fn ci_env_with_rules_behaves_like_ci() {
    let fx = waste_fx();
    let below = (fx.model.total() - 1).to_string();
    let r = run(fx.cmd(&["--max-size", &below]).env("CI", "true")).code(1);
    r.fails("max-size");
    summary_says(&r, 1, 1);
    let r = run(fx
        .cmd(&["--max-size", &fx.model.total().to_string()])
        .env("CI", "true"))
    .code(0);
    r.passes("max-size");
    // Rules from the config file count as rules.
    fx.write(".layerscope.toml", &format!("[ci]\nmax-size = {below}\n"));
    run(fx.cmd(&[]).env("CI", "true")).code(1).fails("max-size");
    // As does a .dive-ci, with its note.
    std::fs::remove_file(fx.dir.path().join(".layerscope.toml")).unwrap();
    fx.write(".dive-ci", "rules:\n  lowestEfficiency: 0.8\n");
    let r = run(fx.cmd(&[]).env("CI", "true")).code(1);
    r.fails("min-efficiency");
    assert!(r.stderr.contains(".dive-ci"), "{}", r.stderr);
}

#[test]
fn ci_env_without_rules_prints_the_summary() {
    let fx = waste_fx();
    let r = run(fx.cmd(&[]).env("CI", "true")).code(0);
    assert_eq!(r.verdict_lines(), 0, "{}", r.stdout);
    assert!(r.stdout.starts_with("gate:v1"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("({TOTAL} bytes) in 2 layers")),
        "{}",
        r.stdout
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    // Without CI (and without --ci), the same summary.
    let plain = fx.run(&[]).code(0);
    assert_eq!(plain.stdout, r.stdout);
}

/// The `<failure>` child of a JUnit test case.
fn failure<'a, 'i>(case: &roxmltree::Node<'a, 'i>) -> Option<roxmltree::Node<'a, 'i>> {
    case.children().find(|n| n.has_tag_name("failure"))
}

// ---- formats ------------------------------------------------------------------

#[test]
fn junit_has_one_testcase_per_rule() {
    let fx = waste_fx();
    let below = (fx.model.total() - 1).to_string();
    let r = fx
        .run(&[
            "--format",
            "junit",
            "--max-size",
            &below,
            "--max-layers",
            "2",
            "--max-waste",
            "24.999%",
            "--deny",
            "toolchain",
        ])
        .code(1);
    let doc = roxmltree::Document::parse(&r.stdout).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("4"));
    assert_eq!(root.attribute("failures"), Some("2"));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(suite.attribute("tests"), Some("4"));
    assert_eq!(suite.attribute("failures"), Some("2"));
    assert!(suite.attribute("name").unwrap().contains("gate:v1"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<&str> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(
        names,
        ["max-size", "max-layers", "max-waste", "deny toolchain"]
    );
    let size = failure(&cases[0]).unwrap();
    let msg = size.attribute("message").unwrap();
    assert!(
        msg.contains(&format!("({TOTAL} bytes)")),
        "message names the size: {msg}"
    );
    assert!(size.text().unwrap_or("").contains("/data/old.bin"));
    assert!(size.text().unwrap_or("").contains("fix: "));
    assert!(failure(&cases[1]).is_none());
    let waste = failure(&cases[2]).unwrap();
    assert!(waste.text().unwrap().contains("waste/deleted"));
    assert!(failure(&cases[3]).is_none());

    // All passing: no failure elements, exit 0.
    let r = fx.run(&["--format", "junit", "--max-layers", "2"]).code(0);
    let doc = roxmltree::Document::parse(&r.stdout).unwrap();
    assert_eq!(doc.root_element().attribute("failures"), Some("0"));
    assert!(!doc.descendants().any(|n| n.has_tag_name("failure")));
}

#[test]
fn junit_escapes_names() {
    // A tag with characters XML must escape reaches the attributes.
    let fx = Fx::new(plain_image(500, 9), "registry.local/a&b<c>:v\"1'");
    let r = fx.run(&["--format", "junit", "--max-size", "499"]).code(1);
    let doc = roxmltree::Document::parse(&r.stdout).unwrap();
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase"))
        .unwrap();
    assert_eq!(
        case.attribute("classname"),
        Some("layerscope.registry.local/a&b<c>:v\"1'")
    );
}

#[test]
fn json_format_has_the_verdicts_inside_the_report() {
    let fx = waste_fx();
    let r = fx
        .run(&[
            "--ci",
            "--format",
            "json",
            "--max-size",
            &TOTAL.to_string(),
            "--max-layers",
            "1",
        ])
        .code(1);
    let v = r.json();
    assert_eq!(v["schema_version"], 2);
    let img = &v["images"][0];
    assert_eq!(img["id"], fx.image.id());
    assert_eq!(img["totals"]["size_bytes"], fx.model.total());
    assert_eq!(img["totals"]["wasted_bytes"], fx.wasted());
    assert_eq!(v["ci"]["passed"], false);
    assert_eq!(v["ci"]["image"], "gate:v1");
    let size = verdict(&v, "max-size");
    assert_eq!(size["passed"], true);
    assert_eq!(size["measured_value"].as_f64().unwrap(), TOTAL as f64);
    assert_eq!(size["limit_value"].as_f64().unwrap(), TOTAL as f64);
    let layers = verdict(&v, "max-layers");
    assert_eq!(layers["passed"], false);
    assert_eq!(layers["measured_value"].as_f64().unwrap(), 2.0);
    assert_eq!(layers["limit_value"].as_f64().unwrap(), 1.0);
    assert_eq!(v["ci"]["verdicts"].as_array().unwrap().len(), 2);
    // Passing: ci.passed is true and the exit code 0.
    let v = fx
        .run(&["--ci", "--format", "json", "--max-layers", "2"])
        .code(0)
        .json();
    assert_eq!(v["ci"]["passed"], true);
    // Without CI mode the report has no ci section.
    let v = fx.run(&["--format", "json"]).code(0).json();
    assert!(v.get("ci").is_none() || v["ci"].is_null(), "{}", v["ci"]);
}

#[test]
fn json_file_with_ci_exports_and_gates_in_one_run() {
    let fx = waste_fx();
    let out = fx.dir.path().join("report.json");
    let below = (TOTAL - 1).to_string();
    let r = fx
        .run(&[
            "--ci",
            "--json",
            &p(&out),
            "--max-size",
            &below,
            "--max-layers",
            "2",
        ])
        .code(1);
    // The text verdicts on stdout.
    r.fails("max-size");
    r.passes("max-layers");
    summary_says(&r, 1, 2);
    // The report in the file, with the ci section.
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["images"][0]["totals"]["size_bytes"], TOTAL);
    assert_eq!(v["ci"]["passed"], false);
    assert_eq!(verdict(&v, "max-size")["passed"], false);
    assert_eq!(verdict(&v, "max-layers")["passed"], true);
    assert_eq!(
        verdict(&v, "max-size")["limit_value"].as_f64().unwrap(),
        (TOTAL - 1) as f64
    );

    // The same under CI=true without --ci.
    std::fs::remove_file(&out).unwrap();
    let r = run(fx
        .cmd(&["--json", &p(&out), "--max-size", &below])
        .env("CI", "true"))
    .code(1);
    r.fails("max-size");
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["ci"]["passed"], false);
}

#[test]
fn github_format_annotates_and_appends_the_step_summary() {
    let fx = waste_fx();
    let summary = fx.write("summary.md", "## earlier step\n");
    let below = (TOTAL - 1).to_string();
    let args = [
        "--format",
        "github",
        "--max-size",
        &below,
        "--max-layers",
        "2",
    ];
    let r = run(fx.cmd(&args).env("GITHUB_STEP_SUMMARY", &summary)).code(1);
    // The failure leads with the residue (none in this fixture: a notice).
    assert!(
        r.stdout.starts_with(&format!(
            "::notice title=layerscope build residue::build residue: none found in {}\n",
            "100 kB"
        )),
        "{}",
        r.stdout
    );
    let rule = |l: &&str| !l.contains("layerscope build residue::");
    let errors: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error "))
        .filter(rule)
        .collect();
    assert_eq!(errors.len(), 1, "{}", r.stdout);
    assert!(errors[0].starts_with("::error title=layerscope max-size::"));
    assert!(
        errors[0].contains(&format!("({TOTAL} bytes)")),
        "{}",
        errors[0]
    );
    // Offenders follow in the same annotation (newlines escaped).
    assert!(errors[0].contains("%0A"), "{}", errors[0]);
    assert!(errors[0].contains("/data/old.bin"), "{}", errors[0]);
    let notices: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("::notice "))
        .filter(rule)
        .collect();
    assert_eq!(notices.len(), 1);
    assert!(notices[0].starts_with("::notice title=layerscope max-layers::"));
    // Every stdout line is a workflow command.
    assert!(
        r.stdout.lines().all(|l| l.starts_with("::")),
        "{}",
        r.stdout
    );

    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("## earlier step\n"), "appended: {md}");
    assert!(md.contains("| max-size | ❌ fail |"), "{md}");
    assert!(md.contains("| max-layers | ✅ pass |"), "{md}");
    // Appended again on a second run.
    run(fx.cmd(&args).env("GITHUB_STEP_SUMMARY", &summary)).code(1);
    let md2 = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(md2.matches("| max-size | ❌ fail |").count(), 2);
    assert_eq!(md2.len(), "## earlier step\n".len() + 2 * (md.len() - 16));

    // Without GITHUB_STEP_SUMMARY: annotations only, no file written.
    let r = fx.run(&["--format", "github", "--max-layers", "2"]).code(0);
    assert!(r.stdout.starts_with("::notice "), "{}", r.stdout);
}

#[test]
fn markdown_has_a_table_row_per_rule() {
    let fx = waste_fx();
    let below = (TOTAL - 1).to_string();
    let r = fx
        .run(&[
            "--format",
            "markdown",
            "--max-size",
            &below,
            "--max-layers",
            "2",
            "--deny",
            "toolchain",
        ])
        .code(1);
    let md = &r.stdout;
    assert!(md.starts_with("### layerscope: `gate:v1` failed"), "{md}");
    assert!(md.contains("| Rule | Result | Measured | Limit |"), "{md}");
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Rule"))
        .collect();
    assert_eq!(rows.len(), 3, "{md}");
    assert!(rows[0].starts_with("| max-size | ❌ fail |"), "{}", rows[0]);
    assert!(
        rows[1].starts_with("| max-layers | ✅ pass | 2 | 2 |"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].starts_with("| deny toolchain | ✅ pass |"),
        "{}",
        rows[2]
    );
    // The failure explained below the table, with its offenders.
    assert!(md.contains("**max-size**: "), "{md}");
    assert!(md.contains("`/data/old.bin`"), "{md}");
    assert!(md.contains("Fix: "), "{md}");
    let r = fx
        .run(&["--format", "markdown", "--max-layers", "2"])
        .code(0);
    assert!(r.stdout.starts_with("### layerscope: `gate:v1` passed"));
}

#[test]
fn text_has_no_colour_without_a_terminal() {
    let fx = waste_fx();
    let r = fx.run(&["--ci", "--max-layers", "1"]).code(1);
    assert!(!r.stdout.contains('\x1b'), "{:?}", r.stdout);
}

#[test]
fn json_to_stdout_with_ci_is_only_the_report() {
    let fx = waste_fx();
    let below = (TOTAL - 1).to_string();
    let r = fx
        .run(&["--ci", "--json", "-", "--max-size", &below])
        .code(1);
    let v = r.json();
    assert_eq!(v["ci"]["passed"], false);
    assert_eq!(
        verdict(&v, "max-size")["measured_value"].as_f64().unwrap(),
        TOTAL as f64
    );
}

#[test]
fn ci_env_values() {
    let fx = waste_fx();
    let below = (TOTAL - 1).to_string();
    // A rule given as a flag asks for a verdict whatever CI says.
    run(fx.cmd(&["--max-size", &below]).env("CI", "1"))
        .code(1)
        .fails("max-size");
    run(fx.cmd(&["--max-size", &below]).env("CI", "false"))
        .code(1)
        .fails("max-size");
}

#[test]
fn ci_env_values_with_config_rules() {
    let fx = waste_fx();
    let below = TOTAL - 1;
    std::fs::write(
        fx.dir.path().join(".layerscope.toml"),
        format!("[ci]\nmax-size = \"{below}\"\n"),
    )
    .unwrap();
    // Config rules apply with CI=true or CI=1, not with CI=false.
    run(fx.cmd(&[]).env("CI", "1")).code(1).fails("max-size");
    let r = run(fx.cmd(&[]).env("CI", "false")).code(0);
    assert_eq!(r.verdict_lines(), 0, "{}", r.stdout);
}

// ---- issue 18: a failure leads with the residue; base offenders ---------------

/// A Debian base layer holding a Go toolchain of 30,000 bytes, and the
/// user's layer: 5,000 bytes of data and 8,000 bytes of apt lists.
fn base_and_app() -> (Layer, Image) {
    let base = Layer::new()
        .dir("etc", 0o755)
        .file("etc/os-release", OS_RELEASE, 0o644)
        .dir("bin", 0o755)
        .file("bin/sh", content(30, 1000), 0o755)
        .dir("usr", 0o755)
        .dir("usr/local", 0o755)
        .dir("usr/local/go", 0o755)
        .dir("usr/local/go/bin", 0o755)
        .file("usr/local/go/bin/go", content(31, 30_000), 0o755);
    let app = Layer::new()
        .dir("srv", 0o755)
        .file("srv/data.bin", content(32, 5_000), 0o644)
        .dir("var", 0o755)
        .dir("var/lib", 0o755)
        .dir("var/lib/apt", 0o755)
        .dir("var/lib/apt/lists", 0o755)
        .file(
            "var/lib/apt/lists/deb.debian.org_Packages",
            content(33, 8_000),
            0o644,
        );
    (base.clone(), Image::simple(vec![base, app]))
}

#[test]
fn a_failure_leads_with_the_residue_and_labels_base_offenders_in_every_format() {
    let (base_layer, image) = base_and_app();
    let fx = Fx::new(image, "app:v1");
    let base = fx.add("base.tar", &Image::simple(vec![base_layer]), "base:v1");
    // The oracle: the fixture's own file list.
    let total: u64 = fx.model.fs.values().map(|e| e.bytes()).sum();
    let bytes_under = |prefix: &str| -> u64 {
        fx.model
            .fs
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(_, e)| e.bytes())
            .sum()
    };
    let go = bytes_under("usr/local/go/");
    let apt = bytes_under("var/lib/apt/lists/");
    let app = bytes_under("srv/");
    assert_eq!((go, apt, app), (30_000, 8_000, 5_000));
    let residue = go + apt;
    let rules = [
        "--base",
        &p(&base),
        "--deny",
        "toolchain,package-cache",
        "--deny-threshold",
        "0",
    ];
    fn with<'a>(rules: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [rules, extra].concat()
    }

    // JSON: the numbers, and which offender is the base's.
    let v = fx.run(&with(&rules, &["--format", "json"])).code(1).json();
    let h = &v["ci"]["headline"];
    assert_eq!(h["size_bytes"], total);
    assert_eq!(h["residue_bytes"], residue);
    let share = (residue as f64 / total as f64 * 10000.0).round() / 10000.0;
    assert_eq!(h["residue_share"].as_f64().unwrap(), share);
    assert_eq!(h["projected_runtime_bytes"], total - residue);
    assert_eq!(h["app_bytes"], app);
    let tool = &verdict(&v, "deny toolchain")["offenders"][0];
    assert_eq!(
        (tool["layer"].as_u64(), tool["base"].as_bool()),
        (Some(1), Some(true))
    );
    let cache = &verdict(&v, "deny package-cache")["offenders"][0];
    assert_eq!(
        (cache["layer"].as_u64(), cache["base"].as_bool()),
        (Some(2), Some(false))
    );

    // Text: the first line is the residue and both projections.
    // Written out by hand from the numbers above (44,079 bytes in all).
    assert_eq!(total, 44_079);
    let lead = "build residue 38 kB (86.2%) of 44.08 kB; same base without it: about 6.08 kB; the app's own files: about 5 kB";
    let r = fx.run(&with(&rules, &[])).code(1);
    assert_eq!(r.stdout.lines().next(), Some(lead), "{}", r.stdout);
    assert!(r.stdout.contains("layer 1 (base): "), "{}", r.stdout);
    assert!(r.stdout.contains("layer 2: "), "{}", r.stdout);
    assert!(!r.stdout.contains("layer 2 (base)"), "{}", r.stdout);

    // Markdown: after the title.
    let r = fx.run(&with(&rules, &["--format", "markdown"])).code(1);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[2], format!("**{lead}**"), "{}", r.stdout);
    assert!(r.stdout.contains("— layer 1 (base): `"), "{}", r.stdout);

    // GitHub: the first annotation.
    let r = fx.run(&with(&rules, &["--format", "github"])).code(1);
    assert_eq!(
        r.stdout.lines().next(),
        // Annotation data escapes '%'.
        Some(
            format!(
                "::error title=layerscope build residue::{}",
                lead.replace('%', "%25")
            )
            .as_str()
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("(layer 1 (base): "), "{}", r.stdout);

    // JUnit: each failure's text starts with it.
    let r = fx.run(&with(&rules, &["--format", "junit"])).code(1);
    let doc = roxmltree::Document::parse(&r.stdout).unwrap();
    let failures: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .collect();
    assert_eq!(failures.len(), 2, "{}", r.stdout);
    for f in &failures {
        assert!(f.text().unwrap().starts_with(lead), "{}", r.stdout);
    }
    assert!(r.stdout.contains("(layer 1 (base): "), "{}", r.stdout);

    // A passing run says nothing of it.
    let r = fx.run(&["--max-layers", "2"]).code(0);
    assert!(!r.stdout.contains("build residue"), "{}", r.stdout);
}

#[test]
fn one_rule_and_one_layer_are_singular() {
    let fx = Fx::new(plain_image(1000, 5), "one:v1");
    let r = fx.run(&["--max-layers", "1"]).code(0);
    assert!(
        r.passes("max-layers").contains("has 1 layer, within 1"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.ends_with("PASS: 1 rule passed for one:v1\n"),
        "{}",
        r.stdout
    );
    let r = fx.run(&["--max-layers", "0"]).code(1);
    assert!(r.fails("max-layers").contains("has 1 layer, more than 0"));
    assert!(
        r.stdout.ends_with("FAIL: 1 of 1 rule failed for one:v1\n"),
        "{}",
        r.stdout
    );
}
