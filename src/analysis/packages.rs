//! Package databases found in the image: which package owns which file.
//! Debian/Ubuntu (`/var/lib/dpkg/status` + `info/*.list`) and Alpine
//! (`/lib/apk/db/installed`).

use crate::image::Image;
use crate::index::layer::EntryKind;
use crate::index::tree::{NodeId, ROOT};

/// The installed packages and, per node, the package that owns it.
#[derive(Debug, Default, Clone)]
pub struct Packages {
    /// `dpkg` or `apk`, when a database was found.
    pub manager: Option<&'static str>,
    pub names: Vec<String>,
    /// Owner per node (index into `names`), `u32::MAX` for none.
    pub owner: Vec<u32>,
}

pub const NONE: u32 = u32::MAX;

impl Packages {
    pub fn owner_of(&self, node: NodeId) -> Option<&str> {
        match self.owner.get(node as usize) {
            Some(&i) if i != NONE => Some(&self.names[i as usize]),
            _ => None,
        }
    }
}

/// Read the image's package database, if any.
pub fn read(image: &Image) -> Packages {
    let mut p = Packages {
        owner: vec![NONE; image.tree.len()],
        ..Default::default()
    };
    if let Some(status) = image.captured_file("var/lib/dpkg/status") {
        p.manager = Some("dpkg");
        let installed = dpkg_installed(&String::from_utf8_lossy(status));
        // info/NAME.list or info/NAME:ARCH.list
        let mut lists: Vec<(String, &[u8])> = image
            .captured
            .iter()
            .filter_map(|(&node, data)| {
                let path = image.tree.path(node);
                let file = path
                    .strip_prefix("/var/lib/dpkg/info/")?
                    .strip_suffix(".list")?;
                let name = file.split(':').next().unwrap_or(file).to_string();
                Some((name, &data[..]))
            })
            .collect();
        lists.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, data) in lists {
            if !installed.is_empty() && !installed.contains(&name) {
                continue;
            }
            let idx = p.names.len() as u32;
            p.names.push(name);
            for line in String::from_utf8_lossy(data).lines() {
                own(image, &mut p.owner, line, idx);
            }
        }
    } else if let Some(db) = image.captured_file("lib/apk/db/installed") {
        p.manager = Some("apk");
        let text = String::from_utf8_lossy(db);
        let mut dir = String::new();
        let mut idx = NONE;
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("P:") {
                idx = p.names.len() as u32;
                p.names.push(name.to_string());
            } else if let Some(d) = line.strip_prefix("F:") {
                dir = d.to_string();
            } else if let Some(f) = line.strip_prefix("R:") {
                if idx != NONE {
                    own(image, &mut p.owner, &format!("/{dir}/{f}"), idx);
                }
            } else if line.is_empty() {
                idx = NONE;
                dir.clear();
            }
        }
    }
    p
}

fn dpkg_installed(status: &str) -> Vec<String> {
    let mut out = Vec::new();
    for para in status.split("\n\n") {
        let mut name = None;
        let mut installed = false;
        for line in para.lines() {
            if let Some(n) = line.strip_prefix("Package: ") {
                name = Some(n.trim().to_string());
            } else if let Some(s) = line.strip_prefix("Status: ") {
                installed = s.trim().ends_with(" installed");
            }
        }
        if let (Some(n), true) = (name, installed) {
            out.push(n);
        }
    }
    out
}

/// Mark the non-directory entry at `path` (symlinked directories followed,
/// as dpkg lists `/bin/x` for a file stored in `/usr/bin/x`) as owned.
fn own(image: &Image, owner: &mut [u32], path: &str, idx: u32) {
    if let Some(node) = resolve(image, path)
        && let Some((_, e)) = image.fs[node as usize].map(|l| (l, image.entry(l)))
        && e.kind != EntryKind::Dir
        && owner[node as usize] == NONE
    {
        owner[node as usize] = idx;
    }
}

/// Find a path in the final file system, following symlinks in its
/// directories (not in its last component).
pub fn resolve(image: &Image, path: &str) -> Option<NodeId> {
    let mut parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string)
        .collect();
    parts.reverse(); // a stack: next component on top
    let mut node = ROOT;
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
        if is_link && !parts.is_empty() {
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
