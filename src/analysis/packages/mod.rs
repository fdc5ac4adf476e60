//! Package databases found in the image: which package owns which file,
//! and what each package depends on. Debian/Ubuntu (`/var/lib/dpkg/status`
//! with `info/*.list`, apt's `extended_states`, distroless `status.d/`)
//! and Alpine (`/lib/apk/db/installed`, `/etc/apk/world`). RPM databases
//! are not read.

pub mod control;
pub mod graph;
pub mod runs;
pub mod verdict;

use std::collections::{HashMap, HashSet};

use crate::image::Image;
use crate::index::layer::EntryKind;
use crate::index::tree::{NodeId, ROOT};
use control::Package;

/// The installed packages and, per node, the package that owns it.
#[derive(Debug, Default, Clone)]
pub struct Packages {
    /// `dpkg` or `apk`, when a database was found.
    pub manager: Option<&'static str>,
    pub names: Vec<String>,
    /// Owner per node (index into `names`), `u32::MAX` for none.
    pub owner: Vec<u32>,
    /// Metadata per package, parallel to `names`.
    pub db: Vec<Package>,
    /// Installed automatically, as a dependency: apt's `Auto-Installed: 1`
    /// record, or for apk not named in `world`.
    pub auto: Vec<bool>,
    /// The layer that recorded the package (its file list or control file;
    /// for apk, the lowest layer holding one of its files).
    pub layer: Vec<Option<u16>>,
    /// Visible bytes and files each package owns.
    pub bytes: Vec<u64>,
    pub files: Vec<u64>,
}

pub const NONE: u32 = u32::MAX;

impl Packages {
    pub fn owner_of(&self, node: NodeId) -> Option<&str> {
        self.owner_index(node).map(|i| self.names[i].as_str())
    }

    pub fn owner_index(&self, node: NodeId) -> Option<usize> {
        match self.owner.get(node as usize) {
            Some(&i) if i != NONE => Some(i as usize),
            _ => None,
        }
    }

    fn push(&mut self, p: Package, auto: bool, layer: Option<u16>) -> u32 {
        self.names.push(p.name.clone());
        self.db.push(p);
        self.auto.push(auto);
        self.layer.push(layer);
        (self.names.len() - 1) as u32
    }
}

/// The layer holding a visible file.
fn layer_of(image: &Image, node: NodeId) -> Option<u16> {
    image
        .fs
        .get(node as usize)
        .copied()
        .flatten()
        .map(|l| l.layer)
}

/// Read the image's package database, if any.
pub fn read(image: &Image) -> Packages {
    let mut p = Packages {
        owner: vec![NONE; image.tree.len()],
        ..Default::default()
    };
    let mut dirs = Dirs::default();
    let mut own = |owner: &mut [u32], path: &str, idx: u32| own(image, &mut dirs, owner, path, idx);
    let text = |path: &str| image.captured_file(path).map(String::from_utf8_lossy);
    // Captured files under a directory, as (file name, node, content).
    // Captured files directly in a directory, as (file name, node,
    // content), by name.
    let under = |dir: &str| -> Vec<(String, NodeId, &[u8])> {
        let Some(d) = image.tree.lookup(dir) else {
            return Vec::new();
        };
        let mut v: Vec<(String, NodeId, &[u8])> = image
            .tree
            .children(d)
            .filter_map(|c| {
                let data = image.captured.get(&c)?;
                Some((image.tree.name(c).to_string(), c, &data[..]))
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let status = text("var/lib/dpkg/status");
    let status_d = under("/var/lib/dpkg/status.d/");
    if status.is_some() || !status_d.is_empty() {
        p.manager = Some("dpkg");
        let auto: HashSet<String> = text("var/lib/apt/extended_states")
            .map(|t| control::apt_auto_installed(&t))
            .unwrap_or_default()
            .into_iter()
            .collect();
        // Another architecture of a package already read shares its name
        // (and its files are read from every NAME:ARCH.list below).
        let mut seen: HashSet<String> = HashSet::new();
        // info/NAME.list or info/NAME:ARCH.list, by package name.
        let mut lists: HashMap<String, Vec<(NodeId, &[u8])>> = HashMap::new();
        for (f, node, data) in under("/var/lib/dpkg/info/") {
            if let Some(stem) = f.strip_suffix(".list") {
                let name = stem.split(':').next().unwrap_or(stem).to_string();
                lists.entry(name).or_default().push((node, data));
            }
        }
        for pkg in status
            .as_deref()
            .map(control::dpkg_status)
            .unwrap_or_default()
        {
            if !seen.insert(pkg.name.clone()) {
                continue;
            }
            let list = lists.get(&pkg.name).map_or(&[][..], |v| v.as_slice());
            let is_auto = auto.contains(&pkg.name);
            let layer = list.iter().filter_map(|l| layer_of(image, l.0)).min();
            let idx = p.push(pkg, is_auto, layer);
            for (_, data) in list {
                for line in String::from_utf8_lossy(data).lines() {
                    own(&mut p.owner, line, idx);
                }
            }
        }
        // Distroless: a control file per package, its files in NAME.md5sums.
        let sums_of: HashMap<&str, &[u8]> = status_d
            .iter()
            .filter_map(|(f, _, d)| Some((f.strip_suffix(".md5sums")?, *d)))
            .collect();
        for (file, node, data) in &status_d {
            if file.ends_with(".md5sums") {
                continue;
            }
            for pkg in control::dpkg_status(&String::from_utf8_lossy(data)) {
                if !seen.insert(pkg.name.clone()) {
                    continue;
                }
                let sums = sums_of.get(file.as_str());
                let idx = p.push(pkg, false, layer_of(image, *node));
                if let Some(data) = sums {
                    for line in String::from_utf8_lossy(data).lines() {
                        // "<md5>  usr/lib/x" (no leading slash)
                        if let Some((_, path)) = line.split_once("  ") {
                            own(&mut p.owner, &format!("/{path}"), idx);
                        }
                    }
                }
            }
        }
    } else if let Some(db) = text("lib/apk/db/installed") {
        p.manager = Some("apk");
        // Without a world file nothing says what was asked for: every
        // package counts as asked for, as dpkg's do without extended_states.
        let world: Option<Vec<String>> = text("etc/apk/world").map(|t| control::apk_world(&t));
        for entry in control::apk_installed(&db) {
            let asked = world
                .as_ref()
                .is_none_or(|w| w.contains(&entry.package.name));
            let idx = p.push(entry.package, !asked, None);
            let mut lowest: Option<u16> = None;
            for f in &entry.files {
                if let Some(node) = own(&mut p.owner, f, idx) {
                    let l = layer_of(image, node);
                    lowest = match (lowest, l) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
            p.layer[idx as usize] = lowest;
        }
    }
    p.bytes = vec![0; p.names.len()];
    p.files = vec![0; p.names.len()];
    for (node, loc) in image.fs.iter().enumerate() {
        if let (Some(loc), Some(i)) = (loc, p.owner_index(node as NodeId)) {
            p.bytes[i] += image.entry(*loc).disk_bytes();
            p.files[i] += 1;
        }
    }
    p
}

/// Mark the non-directory entry at `path` (symlinked directories followed,
/// as dpkg lists `/bin/x` for a file stored in `/usr/bin/x`) as owned.
fn own(image: &Image, dirs: &mut Dirs, owner: &mut [u32], path: &str, idx: u32) -> Option<NodeId> {
    let node = dirs.resolve(image, path)?;
    let e = image.entry(image.fs[node as usize]?);
    if e.kind != EntryKind::Dir && owner[node as usize] == NONE {
        owner[node as usize] = idx;
        return Some(node);
    }
    None
}

/// Find a path in the final file system, following symlinks in its
/// directories (not in its last component).
pub fn resolve(image: &Image, path: &str) -> Option<NodeId> {
    resolve_from(image, ROOT, path)
}

/// [`resolve`] for many paths, most of them sharing directories (a
/// package's file list): each directory is resolved once.
#[derive(Default)]
struct Dirs(rustc_hash::FxHashMap<String, Option<NodeId>>);

impl Dirs {
    fn resolve(&mut self, image: &Image, path: &str) -> Option<NodeId> {
        let Some((dir, name)) = path.rsplit_once('/') else {
            return resolve(image, path);
        };
        if matches!(name, "" | "." | "..") {
            return resolve(image, path);
        }
        let dir = self.dir(image, dir)?;
        image.tree.find_child(dir, name)
    }

    /// A directory, symlinks followed: one step from its parent, which is
    /// resolved (and remembered) the same way. A list names every
    /// directory before what is in it, so each is walked once, not from
    /// the root. (Symlink hops are limited per step, not per path.)
    fn dir(&mut self, image: &Image, dir: &str) -> Option<NodeId> {
        if let Some(&d) = self.0.get(dir) {
            return d;
        }
        let d = match dir.rsplit_once('/') {
            Some((parent, name)) => self
                .dir(image, parent)
                .and_then(|p| walk(image, p, name, true)),
            None => walk(image, ROOT, dir, true),
        };
        self.0.insert(dir.to_string(), d);
        d
    }
}

/// [`resolve`], for a path relative to `start` (absolute paths restart at
/// the root).
pub fn resolve_from(image: &Image, start: NodeId, path: &str) -> Option<NodeId> {
    walk(image, start, path, false)
}

/// [`resolve_from`], following a symlink in the last component too when
/// `follow_last` (the path names a directory).
fn walk(image: &Image, start: NodeId, path: &str, follow_last: bool) -> Option<NodeId> {
    let mut parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string)
        .collect();
    parts.reverse(); // a stack: next component on top
    let mut node = if path.starts_with('/') { ROOT } else { start };
    let mut hops = 0;
    while let Some(part) = parts.pop() {
        if part == ".." {
            node = image.tree.parent(node).unwrap_or(ROOT);
            continue;
        }
        let child = image.tree.find_child(node, &part)?;
        // A directory a tar only implies (no entry of its own) is still a directory.
        let is_link =
            image.fs[child as usize].is_some_and(|loc| image.entry(loc).kind == EntryKind::Symlink);
        if is_link && (follow_last || !parts.is_empty()) {
            let e = image.fs[child as usize].map(|loc| image.entry(loc));
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = e.and_then(|e| e.link.as_deref()).unwrap_or("");
            if target.starts_with('/') {
                node = ROOT;
            }
            for t in target
                .split('/')
                .rev()
                .filter(|p| !p.is_empty() && *p != ".")
            {
                parts.push(t.to_string());
            }
            continue;
        }
        node = child;
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::image::ImageFacts;
    use crate::index::merge::LayerMeta;

    fn image() -> Image {
        let mut b = tar::Builder::new(Vec::new());
        let mut entry = |kind: tar::EntryType, path: &str, link: &str| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_mode(0o755);
            if link.is_empty() {
                b.append_data(&mut h, path, &b""[..]).unwrap();
            } else {
                b.append_link(&mut h, path, link).unwrap();
            }
        };
        use tar::EntryType::{Directory, Regular, Symlink};
        entry(Directory, "usr/bin", "");
        entry(Regular, "usr/bin/tool", "");
        entry(Symlink, "bin", "usr/bin");
        entry(Directory, "opt/a/b", "");
        entry(Symlink, "opt/up", "a/b/../..");
        entry(Symlink, "opt/a/link", "/usr/bin");
        entry(Symlink, "usr/bin/last", "tool");
        entry(Symlink, "loop", "loop");
        let idx = crate::index::layer::index_tar(&b.into_inner().unwrap()[..]).unwrap();
        let meta = LayerMeta {
            diff_id: format!("sha256:{:064x}", 1),
            ..Default::default()
        };
        crate::index::merge::build_image(ImageFacts::default(), vec![(meta, idx)]).unwrap()
    }

    #[test]
    fn paths_resolved_through_known_directories_resolve_as_alone() {
        let image = image();
        let mut dirs = Dirs::default();
        for path in [
            "/usr/bin/tool",
            "/bin/tool",
            "bin/tool",
            "/opt/up/a/link/tool",
            "/opt/a/link/last",
            "/opt/a/b/../link/tool",
            "/bin/",
            "/bin/.",
            "/bin/..",
            "/usr/bin/missing",
            "/loop/tool",
            "/bin",
            "tool",
        ] {
            // Twice: the second through the directory already known.
            for _ in 0..2 {
                assert_eq!(dirs.resolve(&image, path), resolve(&image, path), "{path}");
            }
        }
        assert!(dirs.resolve(&image, "/opt/up/a/link/tool").is_some());
        assert_eq!(
            dirs.resolve(&image, "/bin/tool"),
            resolve(&image, "/usr/bin/tool")
        );
    }
}
