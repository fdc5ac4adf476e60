//! Small synthetic images for the TUI tests, built in memory: layer tars
//! written with the `tar` crate, indexed by `index_tar`, merged by
//! `build_image`, exactly as real archives are.
#![allow(dead_code, clippy::unwrap_used)]

use layerscope::analysis::Analysis;
use layerscope::image::ImageFacts;
use layerscope::index::layer::{LayerIndex, index_tar};
use layerscope::index::merge::{LayerMeta, build_image};

pub enum E<'a> {
    Dir(&'a str),
    File(&'a str, usize),
    Text(&'a str, &'a str),
    /// `.wh.` marker deleting the path.
    Del(&'a str),
}

pub fn layer_tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, format!("{p}/"), std::io::empty())
                    .unwrap();
            }
            E::File(p, n) => {
                let data = vec![p.len() as u8; *n];
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(*n as u64);
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            E::Text(p, s) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(s.len() as u64);
                b.append_data(&mut h, p, s.as_bytes()).unwrap();
            }
            E::Del(p) => {
                let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
                let wh = if dir.is_empty() {
                    format!(".wh.{name}")
                } else {
                    format!("{dir}/.wh.{name}")
                };
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_data(&mut h, wh, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn layer(created_by: &str, diff_id: &str, entries: &[E]) -> (LayerMeta, LayerIndex) {
    let idx = index_tar(&layer_tar(entries)[..]).unwrap();
    (
        LayerMeta {
            diff_id: format!("sha256:{diff_id:0<64}"),
            blob: String::new(),
            created: Some("2024-05-01T10:00:00Z".into()),
            created_by: Some(created_by.into()),
            comment: None,
        },
        idx,
    )
}

pub fn base_layer() -> (LayerMeta, LayerIndex) {
    layer(
        "/bin/sh -c #(nop) ADD file:9a1b in / ",
        "b0",
        &[
            E::Dir("bin"),
            E::File("bin/sh", 120_000),
            E::Dir("etc"),
            E::Text("etc/os-release", "ID=debian\nVERSION_ID=12\n"),
            E::File("etc/passwd", 1_000),
            E::Dir("usr"),
            E::Dir("usr/lib"),
            E::File("usr/lib/libc.so.6", 2_000_000),
            E::Dir("usr/share"),
            E::Dir("usr/share/doc"),
            E::File("usr/share/doc/README", 40_000),
        ],
    )
}

pub fn facts(tag: &str, id: &str) -> ImageFacts {
    ImageFacts {
        id: format!("sha256:{id:0<64}"),
        tags: vec![tag.to_string()],
        os: "linux".into(),
        architecture: "amd64".into(),
        ..Default::default()
    }
}

/// A single-stage build: base, a toolchain install, an apt cleanup that
/// deletes lists in a later layer, and the app with its sources.
pub fn single() -> Analysis {
    Analysis::new(build_image(facts("app:single", "a1"), single_layers()).unwrap())
}

/// [`single`]'s layers, indexed but not merged.
pub fn single_layers() -> Vec<(LayerMeta, LayerIndex)> {
    vec![
        base_layer(),
        layer(
            "/bin/sh -c apt-get update && apt-get install -y gcc",
            "c1",
            &[
                E::Dir("usr"),
                E::Dir("usr/bin"),
                E::File("usr/bin/gcc", 900_000),
                E::Dir("usr/lib"),
                E::Dir("usr/lib/gcc"),
                E::File("usr/lib/gcc/cc1", 30_000_000),
                E::File("usr/lib/gcc/lto1", 25_000_000),
                E::Dir("var"),
                E::Dir("var/lib"),
                E::Dir("var/lib/apt"),
                E::Dir("var/lib/apt/lists"),
                E::File("var/lib/apt/lists/deb_main_Packages", 9_000_000),
                E::File("etc/passwd", 1_100),
                // dpkg's record of them: cpp-12 is a build tool nothing needs.
                E::Dir("var/lib/dpkg"),
                E::Text(
                    "var/lib/dpkg/status",
                    "Package: cpp-12\nStatus: install ok installed\nVersion: 12.2.0-14\n",
                ),
                E::Dir("var/lib/dpkg/info"),
                E::Text(
                    "var/lib/dpkg/info/cpp-12.list",
                    "/usr/bin/gcc\n/usr/lib/gcc/cc1\n/usr/lib/gcc/lto1\n",
                ),
            ],
        ),
        layer(
            "/bin/sh -c rm -rf /var/lib/apt/lists/*",
            "c2",
            &[
                E::Dir("var/lib/apt/lists"),
                E::Del("var/lib/apt/lists/deb_main_Packages"),
            ],
        ),
        layer(
            "COPY . /app # buildkit",
            "c3",
            &[
                E::Dir("app"),
                E::File("app/main.go", 12_000),
                E::File("app/go.mod", 300),
                E::File("app/server", 8_000_000),
                E::File("app/README.md", 2_500),
            ],
        ),
        layer("CMD [\"/app/server\"]", "c4", &[]),
    ]
}

/// The same app built in two stages: base plus the binary.
pub fn multi() -> Analysis {
    Analysis::new(build_image(facts("app:multi", "a2"), multi_layers()).unwrap())
}

/// [`multi`]'s layers, indexed but not merged.
pub fn multi_layers() -> Vec<(LayerMeta, LayerIndex)> {
    vec![
        base_layer(),
        layer(
            "COPY /out/server /app/server # buildkit",
            "d1",
            &[E::Dir("app"), E::File("app/server", 7_500_000)],
        ),
    ]
}
