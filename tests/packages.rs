//! The package graph on whole images (issue 18): synthetic dpkg and apk
//! databases written into real layer tars, with the build-only set and its
//! bytes written down by hand.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use layerscope::analysis::Analysis;
use layerscope::analysis::classify::{Category, RuleSet};
use layerscope::source::{ImageRef, LoadOptions, load_saved};
use serde_json::json;
use tempfile::TempDir;

/// One package: its control fields, whether apt installed it
/// automatically, and its files with their sizes.
struct Pkg {
    name: &'static str,
    fields: &'static str,
    auto: bool,
    files: &'static [(&'static str, usize)],
}

const fn pkg(
    name: &'static str,
    fields: &'static str,
    auto: bool,
    files: &'static [(&'static str, usize)],
) -> Pkg {
    Pkg {
        name,
        fields,
        auto,
        files,
    }
}

/// A layer that installs `new` on top of `before`: dpkg's status (all of
/// them), their file lists, apt's extended_states, and the files.
fn dpkg_layer(before: &[&Pkg], new: &[&Pkg]) -> Layer {
    let all: Vec<&&Pkg> = before.iter().chain(new).collect();
    let status: String = all
        .iter()
        .map(|p| {
            format!(
                "Package: {}\nStatus: install ok installed\nVersion: 1\n{}\n",
                p.name, p.fields
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let states: String = all
        .iter()
        .filter(|p| p.auto)
        .map(|p| {
            format!(
                "Package: {}\nArchitecture: amd64\nAuto-Installed: 1\n\n",
                p.name
            )
        })
        .collect();
    let mut l = Layer::new()
        .file("var/lib/dpkg/status", status, 0o644)
        .file("var/lib/apt/extended_states", states, 0o644);
    for (i, p) in new.iter().enumerate() {
        let list: String = p.files.iter().map(|(f, _)| format!("/{f}\n")).collect();
        l = l.file(
            &format!("var/lib/dpkg/info/{}:amd64.list", p.name),
            list,
            0o644,
        );
        for (j, (f, len)) in p.files.iter().enumerate() {
            l = l.file(f, content((i * 100 + j) as u32 + 7, *len), 0o644);
        }
    }
    l
}

fn load(img: &Image) -> layerscope::image::Image {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("img.tar");
    std::fs::write(&path, legacy_archive(&[(img, &[])])).unwrap();
    let r = ImageRef::parse(&path.display().to_string()).unwrap();
    load_saved(&r, &LoadOptions::default()).unwrap()
}

fn analyse(img: &Image, base_layers: usize) -> Analysis {
    let base: Vec<String> = img.diff_ids().into_iter().take(base_layers).collect();
    Analysis::with_options(load(img), &RuleSet::builtin(), Some(&base))
}

fn build_only(a: &Analysis) -> BTreeSet<String> {
    let pk = &a.classes.packages;
    (0..pk.names.len())
        .filter(|&i| a.classes.build.is_build_only(i))
        .map(|i| pk.names[i].clone())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn bytes_of(pkgs: &[&Pkg], names: &BTreeSet<String>) -> u64 {
    pkgs.iter()
        .filter(|p| names.contains(p.name))
        .flat_map(|p| p.files.iter().map(|(_, n)| *n as u64))
        .sum()
}

// ---- a Debian image: base, then `apt-get install build-essential python3 libssl-dev`

const LIBC6: Pkg = pkg(
    "libc6",
    "Priority: required",
    false,
    &[("usr/lib/x86_64-linux-gnu/libc.so.6", 2000)],
);
const LIBGCC: Pkg = pkg(
    "libgcc-s1",
    "Priority: required\nDepends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)",
    false,
    &[("usr/lib/x86_64-linux-gnu/libgcc_s.so.1", 300)],
);
// Not required itself: only libgcc-s1's dependency keeps it.
const GCC_BASE: Pkg = pkg(
    "gcc-12-base",
    "Priority: optional",
    false,
    &[("usr/share/doc/gcc-12-base/changelog.gz", 900)],
);
const PERL_BASE: Pkg = pkg(
    "perl-base",
    "Essential: yes\nPriority: required",
    false,
    &[("usr/bin/perl", 800)],
);
// In the base, no record, nothing needs it: a root because it came with the base.
const TZDATA: Pkg = pkg(
    "tzdata",
    "Priority: optional",
    false,
    &[("usr/share/zoneinfo/UTC", 100)],
);

const BUILD_ESSENTIAL: Pkg = pkg(
    "build-essential",
    "Depends: libc6-dev | libc-dev, gcc (>= 4:12), g++ | gcc:any, make, dpkg-dev (>= 1.17.11)",
    false,
    &[("usr/share/doc/build-essential/copyright", 50)],
);
const GCC: Pkg = pkg(
    "gcc",
    "Depends: gcc-12 (>= 12.2.0-1)\nRecommends: libc6-dev | libc-dev",
    true,
    &[("usr/bin/gcc", 10)],
);
const GCC12: Pkg = pkg(
    "gcc-12",
    "Depends: cpp-12 (= 12.2.0-14), gcc-12-base (= 12.2.0-14), libisl23 (>= 0.15), binutils (>= 2.40), libc6 (>= 2.36)\nSuggests: gcc-12-doc",
    true,
    &[
        ("usr/bin/x86_64-linux-gnu-gcc-12", 4000),
        ("usr/lib/gcc/x86_64-linux-gnu/12/cc1", 9000),
    ],
);
const CPP12: Pkg = pkg(
    "cpp-12",
    "Depends: gcc-12-base (= 12.2.0-14), libisl23",
    true,
    &[("usr/bin/cpp-12", 1500)],
);
const ISL: Pkg = pkg(
    "libisl23",
    "Depends: libc6",
    true,
    &[("usr/lib/x86_64-linux-gnu/libisl.so.23", 1200)],
);
const BINUTILS: Pkg = pkg(
    "binutils",
    "Depends: binutils-common (= 2.40-2), libbinutils (= 2.40-2)",
    true,
    &[("usr/bin/x86_64-linux-gnu-ld.bfd", 1700)],
);
const BINUTILS_COMMON: Pkg = pkg(
    "binutils-common",
    "",
    true,
    &[("usr/lib/x86_64-linux-gnu/ldscripts/elf_x86_64.x", 60)],
);
const LIBBINUTILS: Pkg = pkg(
    "libbinutils",
    "Depends: binutils-common (= 2.40-2)",
    true,
    &[("usr/lib/x86_64-linux-gnu/libbfd-2.40-system.so", 1600)],
);
const MAKE: Pkg = pkg("make", "Depends: libc6", true, &[("usr/bin/make", 250)]);
const DPKG_DEV: Pkg = pkg(
    "dpkg-dev",
    "Depends: perl:any, libdpkg-perl (= 1.21.22), make, binutils\nRecommends: build-essential, fakeroot",
    true,
    &[("usr/bin/dpkg-buildpackage", 70)],
);
const LIBDPKG_PERL: Pkg = pkg(
    "libdpkg-perl",
    "Depends: perl:any",
    true,
    &[("usr/share/perl5/Dpkg.pm", 900)],
);
const PERL: Pkg = pkg(
    "perl",
    "Pre-Depends: perl-base (= 5.36.0-7)\nDepends: perl-modules-5.36 (>= 5.36.0-7), libperl5.36 (= 5.36.0-7)",
    true,
    &[("usr/bin/perl5.36-x86_64-linux-gnu", 30)],
);
// perl-modules and libperl need each other: a cycle the sweep must take.
const PERL_MODULES: Pkg = pkg(
    "perl-modules-5.36",
    "Depends: perl-base, libperl5.36",
    true,
    &[("usr/share/perl/5.36/strict.pm", 700)],
);
const LIBPERL: Pkg = pkg(
    "libperl5.36",
    "Depends: libc6, perl-modules-5.36 (>= 5.36.0-7)",
    true,
    &[("usr/lib/x86_64-linux-gnu/libperl.so.5.36", 4300)],
);
const FAKEROOT: Pkg = pkg(
    "fakeroot",
    "Depends: libfakeroot",
    true,
    &[("usr/bin/fakeroot-sysv", 40)],
);
const LIBFAKEROOT: Pkg = pkg(
    "libfakeroot",
    "",
    true,
    &[(
        "usr/lib/x86_64-linux-gnu/libfakeroot/libfakeroot-sysv.so",
        90,
    )],
);
const LIBC6_DEV: Pkg = pkg(
    "libc6-dev",
    "Depends: libc6 (= 2.36-9), libc-dev-bin (= 2.36-9), linux-libc-dev\nProvides: libc-dev",
    true,
    &[
        ("usr/include/stdio.h", 600),
        ("usr/lib/x86_64-linux-gnu/libc.a", 5000),
    ],
);
const LIBC_DEV_BIN: Pkg = pkg("libc-dev-bin", "", true, &[("usr/bin/ldd", 50)]);
const LINUX_LIBC_DEV: Pkg = pkg(
    "linux-libc-dev",
    "",
    true,
    &[("usr/include/linux/types.h", 300)],
);
const PYTHON3: Pkg = pkg(
    "python3",
    "Depends: python3.11 (>= 3.11.2-1~)\nSuggests: python3-doc",
    false,
    &[("usr/share/doc/python3/copyright", 80)],
);
const PYTHON311: Pkg = pkg(
    "python3.11",
    "Depends: libexpat1 (>= 2.1~beta3), libc6\nRecommends: ca-certificates",
    true,
    &[("usr/bin/python3.11", 6000)],
);
const LIBEXPAT: Pkg = pkg(
    "libexpat1",
    "Depends: libc6",
    true,
    &[("usr/lib/x86_64-linux-gnu/libexpat.so.1", 200)],
);
// Both python3.11 (runtime) and libexpat1-dev (a seed) need libexpat1.
// python3.11 recommends ca-certificates: followed, since the image runs
// python3.11 (Recommends of other packages are not).
const LIBEXPAT_DEV: Pkg = pkg(
    "libexpat1-dev",
    "Depends: libexpat1 (= 2.5.0-1)",
    false,
    &[("usr/include/expat.h", 400)],
);
const CA: Pkg = pkg(
    "ca-certificates",
    "Depends: openssl",
    true,
    &[("etc/ssl/certs/ca-certificates.crt", 200)],
);
const OPENSSL: Pkg = pkg(
    "openssl",
    "Depends: libc6",
    true,
    &[("usr/bin/openssl", 900)],
);
const LIBSSL_DEV: Pkg = pkg(
    "libssl-dev",
    "Depends: libssl3 (= 3.0.11-1~deb12u2)",
    false,
    &[("usr/include/openssl/ssl.h", 2500)],
);
const LIBSSL3: Pkg = pkg(
    "libssl3",
    "Depends: libc6",
    true,
    &[("usr/lib/x86_64-linux-gnu/libssl.so.3", 3000)],
);
// Installed automatically, and nothing needs it any more.
const ORPHAN: Pkg = pkg(
    "libonce1",
    "",
    true,
    &[("usr/lib/x86_64-linux-gnu/libonce.so.1", 120)],
);

fn debian_base() -> Vec<&'static Pkg> {
    vec![&LIBC6, &LIBGCC, &GCC_BASE, &PERL_BASE, &TZDATA]
}

fn debian_build() -> Vec<&'static Pkg> {
    vec![
        &BUILD_ESSENTIAL,
        &GCC,
        &GCC12,
        &CPP12,
        &ISL,
        &BINUTILS,
        &BINUTILS_COMMON,
        &LIBBINUTILS,
        &MAKE,
        &DPKG_DEV,
        &LIBDPKG_PERL,
        &PERL,
        &PERL_MODULES,
        &LIBPERL,
        &FAKEROOT,
        &LIBFAKEROOT,
        &LIBC6_DEV,
        &LIBC_DEV_BIN,
        &LINUX_LIBC_DEV,
        &PYTHON3,
        &PYTHON311,
        &LIBEXPAT,
        &LIBEXPAT_DEV,
        &CA,
        &OPENSSL,
        &LIBSSL_DEV,
        &LIBSSL3,
        &ORPHAN,
    ]
}

/// The Debian image; `app` is the last layer (the app's own files).
fn debian_image(app: Layer, cmd: serde_json::Value) -> Image {
    let base = dpkg_layer(&[], &debian_base());
    let build =
        dpkg_layer(&debian_base(), &debian_build()).symlink("usr/bin/python3", "python3.11");
    let mut img = Image::simple(vec![base, build, app]);
    img.run_config = json!({ "Cmd": cmd, "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"] });
    img
}

const EXPECTED_BUILD_ONLY: [&str; 22] = [
    "binutils",
    "binutils-common",
    "build-essential",
    "cpp-12",
    "dpkg-dev",
    "fakeroot",
    "gcc",
    "gcc-12",
    "libbinutils",
    "libc-dev-bin",
    "libc6-dev",
    "libdpkg-perl",
    "libexpat1-dev",
    "libfakeroot",
    "libisl23",
    "libonce1",
    "libperl5.36",
    "libssl-dev",
    "linux-libc-dev",
    "make",
    "perl",
    "perl-modules-5.36",
];

#[test]
fn debian_build_only_packages_are_what_only_the_build_tools_reach() {
    let app = Layer::new().file("app/app.py", "print('hi')\n", 0o644);
    let a = analyse(&debian_image(app, json!(["python3", "/app/app.py"])), 1);
    let mut expected = set(&EXPECTED_BUILD_ONLY);
    // No native code of the image's own: nothing links libssl3.
    expected.insert("libssl3".into());
    assert_eq!(build_only(&a), expected);

    // Every byte of those packages is toolchain; nothing else is.
    let mut all = debian_base();
    all.extend(debian_build());
    assert_eq!(a.bytes_of(Category::Toolchain), bytes_of(&all, &expected));
    let json: u64 = layerscope::report::Report::new(&[&a]).images[0]
        .packages
        .build_only_bytes;
    assert_eq!(json, bytes_of(&all, &expected));

    // Why: the chain from the seed asked for by hand.
    let pk = &a.classes.packages;
    let i = pk.names.iter().position(|n| n == "libperl5.36").unwrap();
    let why = a.classes.build.reason(pk, i);
    assert!(
        why.contains("pulled in by perl for build-essential"),
        "{why}"
    );
    assert!(why.ends_with("nothing the image runs needs it"), "{why}");
    let orphan = pk.names.iter().position(|n| n == "libonce1").unwrap();
    assert!(
        a.classes
            .build
            .reason(pk, orphan)
            .contains("no installed package needs it")
    );

    // The fix removes exactly the seeds asked for by hand, in their layer.
    let f = a.findings.iter().find(|f| f.id == "c-toolchain").unwrap();
    assert!(
        f.fix.contains("apt-get purge -y --auto-remove -o APT::AutoRemove::RecommendsImportant=false -o APT::AutoRemove::SuggestsImportant=false build-essential libexpat1-dev libssl-dev")
            && f.fix.contains("layer 2"),
        "{}",
        f.fix
    );
    let deps = a.findings.iter().find(|f| f.id == "build-deps").unwrap();
    let perl = deps.notes.iter().find(|n| n.name == "libperl5.36").unwrap();
    assert_eq!(perl.bytes, 4300);
}

#[test]
fn code_the_image_built_keeps_the_runtime_library_of_its_dev_package() {
    // A binary of the image's own (no package owns it) links what
    // libssl-dev was asked for: libssl3 stays.
    let app = Layer::new().file("app/server", content(99, 5000), 0o755);
    let a = analyse(&debian_image(app, json!(["/app/server"])), 1);
    // python3.11 is not run here, so its Recommends are not followed.
    let mut expected = set(&EXPECTED_BUILD_ONLY);
    expected.extend(["ca-certificates".to_string(), "openssl".to_string()]);
    assert_eq!(build_only(&a), expected);
}

#[test]
fn the_package_behind_the_cmd_is_kept_even_when_a_build_tool_pulled_it_in() {
    // `CMD make run`: the image runs make, so make (a seed) and what it
    // needs stay.
    let app = Layer::new().file("app/Makefile.inc", "x", 0o644);
    let a = analyse(&debian_image(app, json!(["make", "run"])), 1);
    let got = build_only(&a);
    assert!(!got.contains("make"), "{got:?}");
    assert!(got.contains("gcc-12"));
}

#[test]
fn jdk_pulls_in_the_jre_that_java_on_the_cmd_line_needs() {
    const JAVA_COMMON: Pkg = pkg("java-common", "", true, &[("usr/share/java-common/x", 10)]);
    const JRE: Pkg = pkg(
        "openjdk-17-jre-headless",
        "Depends: java-common, libc6",
        true,
        &[
            ("usr/lib/jvm/java-17-openjdk-amd64/bin/java", 700),
            ("usr/lib/jvm/java-17-openjdk-amd64/lib/modules", 50000),
        ],
    );
    const JDK: Pkg = pkg(
        "openjdk-17-jdk-headless",
        "Depends: openjdk-17-jre-headless (= 17.0.9)",
        true,
        &[
            ("usr/lib/jvm/java-17-openjdk-amd64/bin/javac", 400),
            (
                "usr/lib/jvm/java-17-openjdk-amd64/jmods/java.base.jmod",
                20000,
            ),
        ],
    );
    const DEFAULT_JDK: Pkg = pkg(
        "default-jdk-headless",
        "Depends: openjdk-17-jdk-headless",
        false,
        &[("usr/share/doc/default-jdk-headless/copyright", 30)],
    );
    let base = dpkg_layer(&[], &[&LIBC6]);
    let jdk = dpkg_layer(&[&LIBC6], &[&JAVA_COMMON, &JRE, &JDK, &DEFAULT_JDK])
        .symlink("usr/bin/java", "/etc/alternatives/java")
        .symlink(
            "etc/alternatives/java",
            "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
        );
    let app = Layer::new().file("app/app.jar", content(5, 900), 0o644);
    let mut img = Image::simple(vec![base, jdk, app]);
    img.run_config = json!({ "Cmd": ["java", "-jar", "/app/app.jar"] });
    let a = analyse(&img, 1);
    assert_eq!(
        build_only(&a),
        set(&["default-jdk-headless", "openjdk-17-jdk-headless"])
    );
    assert_eq!(a.bytes_of(Category::Toolchain), 400 + 20000 + 30);

    // Without `java` on the CMD line nothing says the JRE is needed.
    let mut img2 = img.clone();
    img2.run_config = json!({ "Cmd": ["/app/run.sh"] });
    let b = analyse(&img2, 1);
    assert!(build_only(&b).contains("openjdk-17-jre-headless"));
}

#[test]
fn a_base_image_toolchain_counts_but_the_advice_is_about_the_base() {
    // golang-go in the base layer (like the official golang image).
    const GO: Pkg = pkg(
        "golang-1.19-go",
        "",
        false,
        &[("usr/lib/go-1.19/bin/go", 30000)],
    );
    let base = dpkg_layer(&[], &[&LIBC6, &GO]);
    let app = Layer::new().file("app/server", content(3, 2000), 0o755);
    let mut img = Image::simple(vec![base, app]);
    img.run_config = json!({ "Cmd": ["/app/server"] });
    let a = analyse(&img, 1);
    assert_eq!(build_only(&a), set(&["golang-1.19-go"]));
    assert_eq!(a.residue_bytes, 30000);
    let f = a.findings.iter().find(|f| f.id == "go-toolchain").unwrap();
    assert_eq!(f.base_bytes, 30000);
    assert!(f.fix.contains("came with the base image"), "{}", f.fix);
    assert!(!f.fix.contains("apt-get purge"), "{}", f.fix);
    // The app's own files: the binary.
    assert_eq!(a.app_bytes, 2000);
}

#[test]
fn apk_build_deps_group_is_a_seed() {
    let installed = "P:musl\nV:1.2.4\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\n\n\
P:python3\nV:3.11\nD:so:libc.musl-x86_64.so.1\nF:usr/bin\nR:python3.11\n\n\
P:.build-deps\nV:20240101\nD:gcc musl-dev\n\n\
P:gcc\nV:12\nD:binutils so:libisl.so.23 musl-dev>=1\nF:usr/bin\nR:gcc\n\n\
P:binutils\nV:2.40\nD:so:libc.musl-x86_64.so.1\nF:usr/bin\nR:ld\n\n\
P:isl26\nV:0.26\np:so:libisl.so.23=23\nF:usr/lib\nR:libisl.so.23\n\n\
P:musl-dev\nV:1.2.4\nD:musl=1.2.4\nF:usr/include\nR:stdio.h\n\n";
    let l = Layer::new()
        .file("etc/os-release", "ID=alpine\n", 0o644)
        .file("lib/apk/db/installed", installed, 0o644)
        .file("etc/apk/world", "python3\n.build-deps\n", 0o644)
        .file("lib/ld-musl-x86_64.so.1", content(1, 600), 0o755)
        .file("usr/bin/python3.11", content(2, 3000), 0o755)
        .file("usr/bin/gcc", content(3, 4000), 0o755)
        .file("usr/bin/ld", content(4, 1000), 0o755)
        .file("usr/lib/libisl.so.23", content(5, 800), 0o644)
        .file("usr/include/stdio.h", content(6, 300), 0o644);
    let mut img = Image::simple(vec![l]);
    img.run_config = json!({ "Cmd": ["python3.11"] });
    let a = analyse(&img, 0);
    assert_eq!(a.classes.packages.manager, Some("apk"));
    assert_eq!(
        build_only(&a),
        set(&[".build-deps", "binutils", "gcc", "isl26", "musl-dev"])
    );
    assert_eq!(a.bytes_of(Category::Toolchain), 4000 + 1000 + 800 + 300);
    let f = a.findings.iter().find(|f| f.id == "c-toolchain").unwrap();
    assert!(f.fix.contains("apk del .build-deps"), "{}", f.fix);
}

#[test]
fn distroless_status_d_is_read_and_nothing_is_flagged() {
    let l = Layer::new()
        .file(
            "var/lib/dpkg/status.d/libc6",
            "Package: libc6\nVersion: 2.36\nPriority: optional\n",
            0o644,
        )
        .file(
            "var/lib/dpkg/status.d/libc6.md5sums",
            "0123456789abcdef0123456789abcdef  usr/lib/x86_64-linux-gnu/libc.so.6\n",
            0o644,
        )
        .file(
            "usr/lib/x86_64-linux-gnu/libc.so.6",
            content(1, 2000),
            0o755,
        );
    let app = Layer::new().file("app/server", content(2, 1000), 0o755);
    let mut img = Image::simple(vec![l, app]);
    img.run_config = json!({ "Entrypoint": ["/app/server"] });
    let a = analyse(&img, 1);
    assert_eq!(a.classes.packages.manager, Some("dpkg"));
    let node = a
        .image
        .tree
        .lookup("usr/lib/x86_64-linux-gnu/libc.so.6")
        .unwrap();
    assert_eq!(a.classes.packages.owner_of(node), Some("libc6"));
    assert!(build_only(&a).is_empty());
    assert_eq!(a.residue_bytes, 0);
}

#[test]
fn pip_tools_and_npm_dev_dependencies_have_their_own_findings() {
    let site = "usr/local/lib/python3.11/site-packages";
    let record = "pip/__init__.py,sha256=x,1000\npip/_internal/main.py,sha256=y,2000\n../../../bin/pip,sha256=z,200\npip-23.0.dist-info/RECORD,,\n";
    let lock = json!({
        "name": "app", "lockfileVersion": 3,
        "packages": {
            "": {"name": "app"},
            "node_modules/express": {"version": "4"},
            "node_modules/jest": {"version": "29", "dev": true},
            "node_modules/jest/node_modules/ms": {"version": "2", "dev": true},
            "node_modules/typescript": {"version": "5", "devOptional": true},
            "node_modules/fsevents": {"version": "2", "optional": true}
        }
    });
    let l = Layer::new()
        .file(&format!("{site}/pip/__init__.py"), content(1, 1000), 0o644)
        .file(
            &format!("{site}/pip/_internal/main.py"),
            content(2, 2000),
            0o644,
        )
        .file(&format!("{site}/pip-23.0.dist-info/RECORD"), record, 0o644)
        .file("usr/local/bin/pip", content(3, 200), 0o755)
        .file(&format!("{site}/flask/app.py"), content(4, 700), 0o644)
        .file(
            "app/node_modules/.package-lock.json",
            serde_json::to_vec(&lock).unwrap(),
            0o644,
        )
        .file("app/node_modules/express/index.js", content(5, 500), 0o644)
        .file("app/node_modules/jest/index.js", content(6, 3000), 0o644)
        .file(
            "app/node_modules/jest/node_modules/ms/index.js",
            content(7, 100),
            0o644,
        )
        .file(
            "app/node_modules/typescript/lib/tsc.js",
            content(8, 9000),
            0o644,
        )
        .file("app/node_modules/fsevents/index.js", content(9, 50), 0o644)
        .file(
            "other/node_modules/left-pad/index.js",
            content(10, 40),
            0o644,
        );
    let a = analyse(&Image::simple(vec![l]), 0);
    let pm = a
        .findings
        .iter()
        .find(|f| f.id == "language-package-managers")
        .unwrap();
    assert_eq!(
        pm.bytes,
        1000 + 2000
            + 200
            + a.image
                .final_entry("/usr/local/lib/python3.11/site-packages/pip-23.0.dist-info/RECORD")
                .unwrap()
                .1
                .size
    );
    assert_eq!(pm.category, Some(Category::PackageManager));
    let dev = a
        .findings
        .iter()
        .find(|f| f.id == "npm-dev-dependencies")
        .unwrap();
    assert_eq!(dev.bytes, 3000 + 100 + 9000);
    let unlocked = a
        .findings
        .iter()
        .find(|f| f.id == "node-modules-unlocked")
        .unwrap();
    assert!(
        unlocked.title.contains("/other/node_modules"),
        "{}",
        unlocked.title
    );
}

#[test]
fn a_base_package_apt_installed_automatically_is_kept_only_if_needed() {
    // A builder base (like buildpack-deps): gcc asked for by hand, libisl23
    // pulled in automatically, tzdata asked for by hand.
    let base = dpkg_layer(
        &[],
        &[&LIBC6, &TZDATA, &GCC12, &CPP12, &ISL, &GCC_BASE, &LIBGCC],
    );
    let app = Layer::new().file("app/app.sh", "echo hi\n", 0o644);
    let mut img = Image::simple(vec![base, app]);
    img.run_config = json!({ "Cmd": ["sh", "/app/app.sh"] });
    let a = analyse(&img, 1);
    // cpp-12 and libisl23 carry apt's auto record; tzdata does not.
    assert_eq!(build_only(&a), set(&["cpp-12", "gcc-12", "libisl23"]));
    let f = a.findings.iter().find(|f| f.id == "c-toolchain").unwrap();
    assert!(f.fix.contains("came with the base image"), "{}", f.fix);
}

#[test]
fn apk_rundeps_group_is_kept_and_build_group_dev_libraries_keep_their_runtime() {
    // `apk add --virtual .rundeps libffi` and `apk add --virtual
    // .build-deps gcc libffi-dev`, then a compiled extension of our own.
    let installed = "P:musl\nV:1\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\n\n\
P:.rundeps\nV:1\nD:libpq\n\n\
P:libpq\nV:16\nF:usr/lib\nR:libpq.so.5\n\n\
P:.build-deps\nV:1\nD:gcc libffi-dev\n\n\
P:gcc\nV:12\nF:usr/bin\nR:gcc\n\n\
P:libffi-dev\nV:3\nD:libffi\nF:usr/include\nR:ffi.h\n\n\
P:libffi\nV:3\nF:usr/lib\nR:libffi.so.8\n\n";
    let l = Layer::new()
        .file("etc/os-release", "ID=alpine\n", 0o644)
        .file("lib/apk/db/installed", installed, 0o644)
        .file("etc/apk/world", "musl\n.rundeps\n.build-deps@edge\n", 0o644)
        .file("lib/ld-musl-x86_64.so.1", content(1, 600), 0o755)
        .file("usr/lib/libpq.so.5", content(2, 900), 0o755)
        .file("usr/bin/gcc", content(3, 4000), 0o755)
        .file("usr/include/ffi.h", content(4, 300), 0o644)
        .file("usr/lib/libffi.so.8", content(5, 200), 0o755)
        .file("app/_speedups.so", content(6, 700), 0o755);
    let a = analyse(&Image::simple(vec![l]), 0);
    assert_eq!(build_only(&a), set(&[".build-deps", "gcc", "libffi-dev"]));
}

#[test]
fn a_keep_rule_wins_over_a_build_group() {
    let installed = "P:.build-deps\nV:1\nD:curl gcc\n\nP:curl\nV:8\nF:usr/bin\nR:curl\n\nP:gcc\nV:12\nF:usr/bin\nR:gcc\n\n";
    let l = Layer::new()
        .file("lib/apk/db/installed", installed, 0o644)
        .file("etc/apk/world", ".build-deps\n", 0o644)
        .file("usr/bin/curl", content(1, 100), 0o755)
        .file("usr/bin/gcc", content(2, 200), 0o755);
    let image = load(&Image::simple(vec![l]));
    let cfg = layerscope::config::parse(
        "[[rule]]\nid = \"keep-curl\"\ncategory = \"runtime\"\npackages = [\"curl\"]\n",
        std::path::Path::new(".layerscope.toml"),
    )
    .unwrap();
    let rules = RuleSet::with_user(&cfg.rules);
    let a = Analysis::with_rules(image, &rules);
    assert_eq!(build_only(&a), set(&[".build-deps", "gcc"]));
}

#[test]
fn what_the_cmd_package_depends_on_is_kept_too() {
    const MAKE_DEP: Pkg = pkg("libguile", "", true, &[("usr/lib/libguile.so.3", 500)]);
    const MAKE2: Pkg = pkg("make", "Depends: libguile", true, &[("usr/bin/make", 250)]);
    let base = dpkg_layer(&[], &[&LIBC6]);
    let tools = dpkg_layer(&[&LIBC6], &[&BUILD_ESSENTIAL, &MAKE2, &MAKE_DEP]);
    let mut img = Image::simple(vec![base, tools]);
    img.run_config = json!({ "Cmd": ["make", "run"] });
    let a = analyse(&img, 1);
    assert_eq!(build_only(&a), set(&["build-essential"]));
}

/// A path rule alone does not make a kept package's file toolchain: a
/// static library the base's own package ships stays that package's, and
/// the same kind of file owned by no package is toolchain.
#[test]
fn a_kept_packages_files_are_not_toolchain_by_path_alone() {
    const LIBFOO: Pkg = pkg(
        "libfoo1",
        "",
        false,
        &[("usr/lib/x86_64-linux-gnu/libfoo.a", 1200)],
    );
    let base = dpkg_layer(&[], &[&LIBC6, &LIBFOO]);
    let app = Layer::new()
        .file("usr/lib/x86_64-linux-gnu/libbar.a", content(9, 700), 0o644)
        .file("app/server", content(3, 2000), 0o755);
    let mut img = Image::simple(vec![base, app]);
    img.run_config = json!({ "Cmd": ["/app/server"] });
    let a = analyse(&img, 1);
    assert!(build_only(&a).is_empty(), "{:?}", build_only(&a));
    let node = |p: &str| a.image.tree.lookup(p).unwrap();
    let kept = node("usr/lib/x86_64-linux-gnu/libfoo.a");
    assert_eq!(a.classes.packages.owner_of(kept), Some("libfoo1"));
    assert_ne!(a.classes.category(kept), Category::Toolchain);
    let loose = node("usr/lib/x86_64-linux-gnu/libbar.a");
    assert_eq!(a.classes.category(loose), Category::Toolchain);
    assert_eq!(a.bytes_of(Category::Toolchain), 700);
}
