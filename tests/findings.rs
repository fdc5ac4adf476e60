//! Findings and comparison (issue 4): fixture images with known toolchain,
//! cache, source and doc content; every expected byte count comes from the
//! fixture's own file list, with the category the test assigns by hand.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use layerscope::analysis::Analysis;
use layerscope::analysis::classify::{Category, RuleSet};
use layerscope::analysis::compare::compare;
use layerscope::analysis::findings::FindingKind;
use layerscope::source::{ImageRef, LoadOptions, load_saved};
use tempfile::TempDir;

/// A file of the fixture with the category a person would give it.
struct F {
    path: &'static str,
    data: Vec<u8>,
    cat: Category,
}

fn f(path: &'static str, seed: u32, len: usize, cat: Category) -> F {
    F {
        path,
        data: content(seed, len),
        cat,
    }
}

fn text(path: &'static str, s: &str, cat: Category) -> F {
    F {
        path,
        data: s.as_bytes().to_vec(),
        cat,
    }
}

const DPKG_STATUS: &str = "Package: golang-1.19-go\nStatus: install ok installed\nVersion: 1.19.8-2\n\n\
Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n\n\
Package: libc6-dev\nStatus: install ok installed\nVersion: 2.36-9\n\n\
Package: removed-pkg\nStatus: deinstall ok config-files\nVersion: 1\n";

/// Layer 1: a Debian base with a dpkg database owning the Go toolchain
/// (one file reached through the usrmerge `bin -> usr/bin` symlink), libc,
/// libc6-dev headers, docs, locales, apt lists.
fn base_files() -> Vec<F> {
    use Category::*;
    vec![
        text(
            "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
            Runtime,
        ),
        text("var/lib/dpkg/status", DPKG_STATUS, Runtime),
        text(
            "var/lib/dpkg/info/golang-1.19-go.list",
            "/.\n/usr\n/usr/lib/go-1.19\n/usr/lib/go-1.19/bin/go\n/usr/lib/go-1.19/pkg/linux_amd64/runtime.a\n/bin/gofmt\n/usr/share/doc/golang-1.19-go/copyright\n",
            Runtime,
        ),
        text(
            "var/lib/dpkg/info/libc6:amd64.list",
            "/.\n/usr/lib/x86_64-linux-gnu/libc.so.6\n/usr/share/doc/libc6/copyright\n",
            Runtime,
        ),
        text(
            "var/lib/dpkg/info/libc6-dev:amd64.list",
            "/usr/include/stdio.h\n/usr/lib/x86_64-linux-gnu/libc.a\n",
            Runtime,
        ),
        // A package that is not installed any more: its list must not count.
        text(
            "var/lib/dpkg/info/removed-pkg.list",
            "/usr/bin/leftover\n",
            Runtime,
        ),
        f("usr/lib/go-1.19/bin/go", 1, 9000, Toolchain),
        f(
            "usr/lib/go-1.19/pkg/linux_amd64/runtime.a",
            2,
            7000,
            Toolchain,
        ),
        f("usr/bin/gofmt", 3, 3000, Toolchain),
        f("usr/share/doc/golang-1.19-go/copyright", 4, 500, Toolchain),
        f("usr/lib/x86_64-linux-gnu/libc.so.6", 5, 2000, Runtime),
        f("usr/share/doc/libc6/copyright", 6, 400, Docs),
        f("usr/include/stdio.h", 7, 600, Toolchain),
        f("usr/lib/x86_64-linux-gnu/libc.a", 8, 1500, Toolchain),
        f("usr/bin/leftover", 9, 100, Runtime),
        f("usr/share/locale/de/LC_MESSAGES/x.mo", 10, 700, Docs),
        f(
            "var/lib/apt/lists/deb.debian.org_Packages",
            11,
            4000,
            PackageCache,
        ),
        f("usr/share/man/man1/ls.1.gz", 12, 300, Docs),
    ]
}

/// Layer 2: what `RUN go build` leaves in a single-stage image.
fn build_files() -> Vec<F> {
    use Category::*;
    vec![
        f("root/.cache/go-build/ab/abcdef-d", 20, 1200, BuildCache),
        text(
            "root/.cache/go-build/README",
            "This directory holds cached build artifacts from the Go build system.\n",
            BuildCache,
        ),
        f("app/main.go", 21, 800, Source),
        f("app/go.mod", 22, 40, Source),
        f("app/server", 23, 5000, Runtime),
        f("app/static/index.html", 24, 150, Runtime),
        f("tmp/build.log", 25, 90, LogsTemp),
        f("usr/local/go/bin/go", 26, 2500, Toolchain),
        f("srv/cache/blob", 27, 333, Runtime),
    ]
}

fn layer_of(files: &[F], dirs: &[&str]) -> Layer {
    let mut l = Layer::new();
    for d in dirs {
        l = l.dir(d, 0o755);
    }
    for x in files {
        l = l.file(x.path, x.data.clone(), 0o644);
    }
    l
}

const BASE_DIRS: [&str; 4] = ["usr", "usr/bin", "usr/lib", "var"];

fn single_stage() -> Image {
    let base = layer_of(&base_files(), &BASE_DIRS).symlink("bin", "usr/bin");
    let build = layer_of(&build_files(), &["app", "root"]);
    let mut img = Image::simple(vec![base, build]);
    img.history = vec![
        hist("/bin/sh -c #(nop) ADD file:0123 in / ", false),
        hist("/bin/sh -c #(nop)  CMD [\"bash\"]", true),
        hist("/bin/sh -c go build -o /app/server .", false),
    ];
    img
}

/// The multi-stage result: the binary (rebuilt, other bytes) and static
/// files on scratch.
fn multi_stage() -> Image {
    let files = vec![
        f("app/server", 30, 4000, Category::Runtime),
        f("app/static/index.html", 24, 150, Category::Runtime),
    ];
    let mut img = Image::simple(vec![layer_of(&files, &["app"])]);
    img.history = vec![hist("COPY /out/server /app/server # buildkit", false)];
    img
}

fn analyse(img: &Image, dir: &TempDir, name: &str, rules: &RuleSet) -> Analysis {
    let path = dir.path().join(name);
    std::fs::write(&path, legacy_archive(&[(img, &[])])).unwrap();
    let r = ImageRef::parse(&path.display().to_string()).unwrap();
    let image = load_saved(&r, &LoadOptions::default()).unwrap();
    Analysis::with_rules(image, rules)
}

/// Expected visible bytes per category: regular files from the lists,
/// plus the `bin -> usr/bin` symlink (7 bytes, runtime).
fn expected(files: &[&[F]], symlink_bytes: u64) -> BTreeMap<Category, u64> {
    let mut m: BTreeMap<Category, u64> = Category::ALL.iter().map(|&c| (c, 0)).collect();
    for list in files {
        for x in *list {
            *m.get_mut(&x.cat).unwrap() += x.data.len() as u64;
        }
    }
    *m.get_mut(&Category::Runtime).unwrap() += symlink_bytes;
    m
}

fn actual(a: &Analysis) -> BTreeMap<Category, u64> {
    Category::ALL.iter().map(|&c| (c, a.bytes_of(c))).collect()
}

#[test]
fn every_byte_gets_the_category_a_person_would_give_it() {
    let dir = TempDir::new().unwrap();
    let a = analyse(&single_stage(), &dir, "single.tar", &RuleSet::builtin());
    let want = expected(&[&base_files(), &build_files()], "usr/bin".len() as u64);
    assert_eq!(actual(&a), want);
    // Categories partition the image: nothing counted twice or lost.
    assert_eq!(
        a.category_bytes.iter().sum::<u64>(),
        a.waste.final_bytes,
        "categories sum to the visible bytes"
    );
    assert_eq!(a.classes.packages.manager, Some("dpkg"));
}

#[test]
fn dpkg_lists_attribute_files_through_symlinked_directories() {
    let dir = TempDir::new().unwrap();
    let a = analyse(&single_stage(), &dir, "single.tar", &RuleSet::builtin());
    let owner = |p: &str| {
        let node = a.image.tree.lookup(p).unwrap();
        a.classes.packages.owner_of(node).map(str::to_string)
    };
    // Listed as /bin/gofmt, stored at /usr/bin/gofmt.
    assert_eq!(owner("usr/bin/gofmt").as_deref(), Some("golang-1.19-go"));
    assert_eq!(
        owner("usr/lib/go-1.19/bin/go").as_deref(),
        Some("golang-1.19-go")
    );
    assert_eq!(owner("usr/include/stdio.h").as_deref(), Some("libc6-dev"));
    assert_eq!(
        owner("usr/lib/x86_64-linux-gnu/libc.so.6").as_deref(),
        Some("libc6")
    );
    // Not installed any more: owns nothing.
    assert_eq!(owner("usr/bin/leftover"), None);
    // No package owns the app or the official-image Go tree.
    assert_eq!(owner("usr/local/go/bin/go"), None);
    assert_eq!(owner("app/server"), None);

    // 95% target of the issue, on the fixture: all golang-owned bytes.
    let go_owned: u64 = [9000u64, 7000, 3000, 500].iter().sum();
    let go = a.findings.iter().find(|f| f.id == "go-toolchain").unwrap();
    assert_eq!(
        go.bytes,
        go_owned + 2500,
        "dpkg-owned Go plus /usr/local/go"
    );
    assert_eq!(go.files, 5);
    assert_eq!(
        go.packages.first().map(String::as_str),
        Some("golang-1.19-go")
    );
}

#[test]
fn findings_carry_bytes_layers_and_fixes() {
    let dir = TempDir::new().unwrap();
    let a = analyse(&single_stage(), &dir, "single.tar", &RuleSet::builtin());
    let find = |id: &str| {
        a.findings
            .iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("no finding {id}: {:?}", ids(&a)))
    };
    let apt = find("apt-lists");
    assert_eq!(apt.category, Some(Category::PackageCache));
    assert_eq!((apt.bytes, apt.files), (4000, 1));
    assert_eq!(apt.layers, vec![0]);
    assert!(apt.fix.contains("rm -rf /var/lib/apt/lists"), "{}", apt.fix);
    // Paths are summarised three levels deep.
    assert_eq!(apt.top_paths, vec![("/var/lib/apt".to_string(), 4000)]);

    let cache = find("go-build-cache");
    assert_eq!(cache.bytes, 1200 + 70);
    assert_eq!(cache.layers, vec![1]);
    assert!(cache.fix.contains("--mount=type=cache"), "{}", cache.fix);

    let src = find("app-sources");
    assert_eq!((src.bytes, src.files), (840, 2));
    // libc6-dev is named by the C toolchain rule, which comes before *-dev.
    let dev = find("c-toolchain");
    assert_eq!(
        dev.bytes,
        600 + 1500,
        "libc6-dev headers and static library"
    );
    assert_eq!(dev.packages, ["libc6-dev"]);
    assert_eq!(
        dev.bytes,
        600 + 1500,
        "libc6-dev headers and static library"
    );
    assert_eq!(find("locales").bytes, 700);
    assert_eq!(find("docs").bytes, 400 + 300);
    assert_eq!(find("logs-temp").bytes, 90);

    // Findings come largest first; the toolchain leads.
    assert_eq!(a.findings[0].id, "go-toolchain");
    assert!(
        a.findings
            .windows(2)
            .all(|w| w[0].kind == FindingKind::Advice
                || w[1].kind == FindingKind::Advice
                || w[0].bytes >= w[1].bytes)
    );
    // Base: the history's CMD closes the base after layer 1.
    assert_eq!(a.base.layers, 1);
    assert_eq!(a.base.kind, "debian");
    // Projected: visible bytes that are not build residue (no duplicates here).
    let want = expected(&[&base_files(), &build_files()], 7);
    let kept: u64 = want
        .iter()
        .filter(|(c, _)| !c.is_build_residue())
        .map(|(_, b)| b)
        .sum();
    assert_eq!(a.projected_runtime_bytes, Some(kept));
}

fn ids(a: &Analysis) -> Vec<String> {
    a.findings.iter().map(|f| f.id.clone()).collect()
}

#[test]
fn distro_rules_do_not_fire_without_the_distro_and_scratch_flags_nothing() {
    let dir = TempDir::new().unwrap();
    // apt lists on an image without os-release: not Debian, not a cache.
    let files = vec![
        f("var/lib/apt/lists/x", 1, 100, Category::Runtime),
        f("app/server", 2, 1000, Category::Runtime),
    ];
    let img = Image::simple(vec![layer_of(&files, &[])]);
    let a = analyse(&img, &dir, "scratch.tar", &RuleSet::builtin());
    assert_eq!(actual(&a), expected(&[&files], 0));
    assert!(
        a.findings.iter().all(|f| f.kind != FindingKind::Residue),
        "{:?}",
        ids(&a)
    );
    assert_eq!(a.projected_runtime_bytes, None);
    assert_eq!(a.base.kind, "scratch");

    // The multi-stage image is all runtime.
    let m = analyse(&multi_stage(), &dir, "multi.tar", &RuleSet::builtin());
    assert_eq!(m.bytes_of(Category::Runtime), m.waste.total_bytes);
    assert!(m.findings.is_empty(), "{:?}", ids(&m));
}

#[test]
fn alpine_packages_are_read_from_the_apk_database() {
    let dir = TempDir::new().unwrap();
    let files = vec![
        text(
            "etc/os-release",
            "NAME=\"Alpine Linux\"\nID=alpine\n",
            Category::Runtime,
        ),
        text(
            "lib/apk/db/installed",
            "P:go\nV:1.22\nF:usr/lib/go/bin\nR:go\nR:gofmt\n\nP:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\n",
            Category::Runtime,
        ),
        f("usr/lib/go/bin/go", 1, 3000, Category::Toolchain),
        f("usr/lib/go/bin/gofmt", 2, 1000, Category::Toolchain),
        f("lib/ld-musl-x86_64.so.1", 3, 600, Category::Runtime),
        f(
            "var/cache/apk/APKINDEX.tar.gz",
            4,
            800,
            Category::PackageCache,
        ),
        // apt's path on Alpine is nobody's cache.
        f("var/lib/apt/lists/x", 5, 50, Category::Runtime),
    ];
    let img = Image::simple(vec![layer_of(&files, &[])]);
    let a = analyse(&img, &dir, "alpine.tar", &RuleSet::builtin());
    assert_eq!(a.classes.packages.manager, Some("apk"));
    assert_eq!(actual(&a), expected(&[&files], 0));
    let node = a.image.tree.lookup("usr/lib/go/bin/gofmt").unwrap();
    assert_eq!(a.classes.packages.owner_of(node), Some("go"));
    let apk = a.findings.iter().find(|f| f.id == "apk-cache").unwrap();
    assert!(apk.fix.contains("--no-cache"));
}

#[test]
fn user_rules_override_and_add() {
    // A glob matched name by name, and one (braces) matched on whole paths.
    for srv in ["/srv/cache/**", "/srv/{cache,none}/**"] {
        let dir = TempDir::new().unwrap();
        let config = layerscope::config::parse(
            &format!(
                "[[rule]]\nid = \"srv-cache\"\ncategory = \"build-cache\"\nfix = \"mount it\"\npaths = [\"{srv}\"]\n\n\
                 [[rule]]\nid = \"docs\"\ncategory = \"runtime\"\npaths = [\"/usr/share/doc/**\"]\n"
            ),
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let rules = RuleSet::with_user(&config.rules);
        let a = analyse(&single_stage(), &dir, "single.tar", &rules);
        let cache = a.findings.iter().find(|f| f.id == "srv-cache").unwrap();
        assert_eq!(
            (cache.bytes, cache.category),
            (333, Some(Category::BuildCache)),
            "{srv}"
        );
        // The docs rule now says runtime: man pages (docs rule) become runtime,
        // /usr/share/doc/libc6 too; the Go copyright stays with its package.
        let builtin = analyse(&single_stage(), &dir, "single.tar", &RuleSet::builtin());
        assert_eq!(
            a.bytes_of(Category::Docs),
            builtin.bytes_of(Category::Docs) - 400 - 300
        );
        assert_eq!(
            a.bytes_of(Category::BuildCache),
            builtin.bytes_of(Category::BuildCache) + 333
        );
    }
}

#[test]
fn advice_spots_a_whole_context_copy_before_the_install() {
    let dir = TempDir::new().unwrap();
    let files = vec![f("app/package.json", 1, 100, Category::Runtime)];
    let deps = vec![f("app/node_modules/x/index.js", 2, 500, Category::Runtime)];
    let mut img = Image::simple(vec![layer_of(&files, &["app"]), layer_of(&deps, &[])]);
    img.history = vec![
        hist("/bin/sh -c #(nop) COPY dir:abc in /app ", false),
        hist("/bin/sh -c npm install", false),
    ];
    let a = analyse(&img, &dir, "node.tar", &RuleSet::builtin());
    let adv = a
        .findings
        .iter()
        .find(|f| f.id == "copy-manifests-first")
        .unwrap();
    assert_eq!(adv.kind, FindingKind::Advice);
    assert_eq!(adv.layers, vec![0, 1]);

    // Manifests first, then the context: no advice.
    let mut good = Image::simple(vec![
        layer_of(&files, &["app"]),
        layer_of(&deps, &[]),
        layer_of(&[f("app/index.js", 3, 10, Category::Runtime)], &[]),
    ]);
    good.history = vec![
        hist("/bin/sh -c #(nop) COPY file:abc in /app/ ", false),
        hist("/bin/sh -c npm install", false),
        hist("/bin/sh -c #(nop) COPY dir:def in /app ", false),
    ];
    let g = analyse(&good, &dir, "good.tar", &RuleSet::builtin());
    assert!(g.findings.iter().all(|f| f.id != "copy-manifests-first"));
}

#[test]
fn comparison_of_single_and_multi_stage() {
    let dir = TempDir::new().unwrap();
    let a = analyse(&single_stage(), &dir, "single.tar", &RuleSet::builtin());
    let b = analyse(&multi_stage(), &dir, "multi.tar", &RuleSet::builtin());
    let c = compare(&a, &b);

    // Independent file maps (non-directories, by path).
    let mut fa: BTreeMap<String, (u64, Vec<u8>)> = BTreeMap::new();
    for x in base_files().into_iter().chain(build_files()) {
        fa.insert(format!("/{}", x.path), (x.data.len() as u64, x.data));
    }
    fa.insert("/bin".into(), (7, b"usr/bin".to_vec()));
    let fb: BTreeMap<String, (u64, Vec<u8>)> = multi_stage().layers[0]
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Entry {
                path,
                kind: Kind::File,
                data,
                ..
            } => Some((format!("/{path}"), (data.len() as u64, data.clone()))),
            _ => None,
        })
        .collect();
    let only_a: Vec<_> = fa.keys().filter(|p| !fb.contains_key(*p)).collect();
    let only_b: Vec<_> = fb.keys().filter(|p| !fa.contains_key(*p)).collect();
    let changed: Vec<_> = fa
        .iter()
        .filter(|(p, v)| fb.get(*p).is_some_and(|w| w != *v))
        .collect();
    assert_eq!(c.files.only_in_a, only_a.len() as u64);
    assert_eq!(
        c.files.only_in_a_bytes,
        only_a.iter().map(|p| fa[*p].0).sum::<u64>()
    );
    assert_eq!(c.files.only_in_b, only_b.len() as u64);
    assert_eq!(c.files.changed, changed.len() as u64);
    assert_eq!(c.files.changed, 1, "app/server was rebuilt");
    assert_eq!(c.files.unchanged, 1, "index.html is identical");
    assert_eq!(c.files.top_changed[0].path, "/app/server");
    assert_eq!(
        (c.files.top_changed[0].a, c.files.top_changed[0].b),
        (Some(5000), Some(4000))
    );

    assert_eq!(c.a_total, a.waste.total_bytes);
    assert_eq!(c.b_total, 4150);
    assert_eq!(c.reduction(), a.waste.total_bytes as i128 - 4150);
    assert_eq!(c.shared_layers, 0);
    let cat = |k: Category| c.categories.iter().find(|x| x.0 == k).unwrap();
    assert_eq!(cat(Category::Toolchain).2, 0);
    assert_eq!(cat(Category::Toolchain).1, a.bytes_of(Category::Toolchain));
    assert_eq!(cat(Category::Runtime).2, 4150);

    // Every residue finding of A is resolved in B; none remain or appear.
    let resolved: Vec<&str> = c.resolved.iter().map(|d| d.id.as_str()).collect();
    for id in ["go-toolchain", "apt-lists", "go-build-cache", "app-sources"] {
        assert!(resolved.contains(&id), "{id} not in {resolved:?}");
    }
    assert!(c.remaining.is_empty() && c.new.is_empty());

    // The directories that explain the difference, largest first: the Go
    // tree's bin/ and pkg/ (neither parent is listed: one child holds more
    // than half of /usr/lib/go-1.19's delta).
    let top: Vec<&str> = c.top_dirs.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(top[..2], ["/usr/lib/go-1.19/bin", "/usr/lib/go-1.19/pkg"]);
    assert!(!top.contains(&"/usr/lib/go-1.19") && !top.contains(&"/usr"));
}

#[test]
fn a_jdk_is_told_from_a_jre_by_its_release_file() {
    let dir = TempDir::new().unwrap();
    let java = |modules: &str| {
        vec![
            text(
                "opt/java/openjdk/release",
                &format!("JAVA_VERSION=\"21\"\nMODULES=\"{modules}\"\n"),
                Category::Runtime,
            ),
            f("opt/java/openjdk/lib/modules", 1, 5000, Category::Runtime),
            f("opt/java/openjdk/bin/java", 2, 100, Category::Runtime),
        ]
    };
    let jre = java("java.base java.logging");
    let img = Image::simple(vec![layer_of(&jre, &[])]);
    let a = analyse(&img, &dir, "jre.tar", &RuleSet::builtin());
    assert_eq!(a.bytes_of(Category::Toolchain), 0, "a JRE is runtime");

    let jdk = java("java.base java.compiler jdk.compiler jdk.jlink");
    let img = Image::simple(vec![layer_of(&jdk, &[])]);
    let a = analyse(&img, &dir, "jdk.tar", &RuleSet::builtin());
    let total: u64 = jdk.iter().map(|x| x.data.len() as u64).sum();
    assert_eq!(a.bytes_of(Category::Toolchain), total, "a JDK is toolchain");
    assert!(a.findings.iter().any(|f| f.id == "jdk-full"));
}

#[test]
fn a_named_base_marks_its_layers_exactly() {
    let dir = TempDir::new().unwrap();
    let fx = single_stage();
    let path = dir.path().join("single.tar");
    std::fs::write(&path, legacy_archive(&[(&fx, &[])])).unwrap();
    let r = ImageRef::parse(&path.display().to_string()).unwrap();
    let load = || load_saved(&r, &LoadOptions::default()).unwrap();
    let rules = RuleSet::builtin();
    // The base's diff_ids: the fixture's first layer, computed by the test.
    let base = vec![fx.diff_ids()[0].clone()];
    let a = Analysis::with_options(load(), &rules, Some(&base));
    assert_eq!((a.base.layers, a.base.method), (1, "--base"));
    let other = vec![digest(b"another image's layer")];
    let b = Analysis::with_options(load(), &rules, Some(&other));
    assert_eq!((b.base.layers, b.base.method), (0, "--base"));
}

/// Duplicates count against the projection and the app only among the
/// copies each keeps: two runtime copies of a file need one, and a third
/// copy in a build cache goes with the cache.
#[test]
fn duplicates_are_judged_by_the_copies_a_runtime_image_keeps() {
    let files = vec![
        f("app/a.bin", 40, 1000, Category::Runtime),
        f("app/b.bin", 40, 1000, Category::Runtime),
        f(
            "root/.cache/go-build/ab/copy",
            40,
            1000,
            Category::BuildCache,
        ),
        f("app/server", 41, 500, Category::Runtime),
    ];
    let mut img = Image::simple(vec![layer_of(&files, &["app", "root"])]);
    img.history = vec![hist("COPY . / # buildkit", false)];
    let dir = TempDir::new().unwrap();
    let a = analyse(&img, &dir, "dups.tar", &RuleSet::builtin());
    assert_eq!(a.base.layers, 0);
    assert_eq!(a.waste.duplicate_bytes, 2000);
    let set = &a.waste.duplicate_sets[0];
    for (n, p) in set.nodes.iter().zip(&set.paths) {
        assert_eq!(a.image.tree.path(*n), *p);
    }
    // Runtime: a, b and the server (2500), less the one extra runtime copy.
    assert_eq!(a.projected_runtime_bytes, Some(1500));
    assert_eq!(a.app_bytes, 1500);
}
