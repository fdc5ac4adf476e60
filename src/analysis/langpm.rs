//! What language package managers record of what they installed: pip's
//! `*.dist-info/RECORD` for its own tools (pip, setuptools, wheel), and
//! npm's lock files telling devDependencies from dependencies.

use serde_json::Value;

use super::packages::resolve_from;
use crate::image::Image;
use crate::index::tree::{NodeId, ROOT};

/// Files pip, setuptools and wheel installed into site-packages, from
/// their RECORD files (`path,hash,size`, relative to site-packages).
pub fn pip_tool_files(image: &Image) -> Vec<NodeId> {
    let mut out = Vec::new();
    for (&node, data) in &image.captured {
        let Some(info) = image.tree.parent(node) else {
            continue;
        };
        if image.tree.name(node) != "RECORD" || !image.tree.name(info).ends_with(".dist-info") {
            continue;
        }
        let Some(site) = image.tree.parent(info) else {
            continue;
        };
        for line in String::from_utf8_lossy(data).lines() {
            let file = line.split(',').next().unwrap_or("");
            if file.is_empty() {
                continue;
            }
            if let Some(n) = resolve_from(image, site, file)
                && image.fs[n as usize].is_some()
            {
                out.push(n);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The devDependencies an app's node_modules holds.
#[derive(Debug, Clone, Default)]
pub struct NodeModules {
    /// Every node installed only for development (package dirs and below).
    pub dev: Vec<NodeId>,
    /// node_modules directories of apps with no lock file to tell
    /// devDependencies apart.
    pub unlocked: Vec<NodeId>,
}

/// Read `node_modules/.package-lock.json` (what npm installed), else the
/// app's `package-lock.json`.
pub fn node_modules(image: &Image) -> NodeModules {
    let mut out = NodeModules::default();
    for node in 0..image.tree.len() as NodeId {
        // An app's node_modules: not inside another node_modules, and not
        // a global install (`/usr/local/lib/node_modules`, npm itself).
        if image.tree.name(node) != "node_modules" || !visible(image, node) {
            continue;
        }
        let Some(app) = image.tree.parent(node) else {
            continue;
        };
        if ancestors(image, app).any(|a| image.tree.name(a) == "node_modules")
            || image.tree.name(app) == "lib"
        {
            continue;
        }
        let hidden = image.tree.find_child(node, ".package-lock.json");
        let lock = hidden.or_else(|| image.tree.find_child(app, "package-lock.json"));
        let Some(data) = lock.and_then(|l| image.captured.get(&l)) else {
            out.unlocked.push(node);
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            out.unlocked.push(node);
            continue;
        };
        let mut flags: Vec<(String, bool)> = Vec::new();
        if let Some(pkgs) = v.get("packages").and_then(Value::as_object) {
            for (key, e) in pkgs.iter().filter(|(k, _)| !k.is_empty()) {
                let flag = |f: &str| e.get(f).and_then(Value::as_bool).unwrap_or(false);
                // devOptional: needed by dev, and only optionally by prod.
                flags.push((key.clone(), flag("dev") || flag("devOptional")));
            }
        } else if let Some(deps) = v.get("dependencies").and_then(Value::as_object) {
            lockfile_v1(deps, "node_modules", &mut flags);
        }
        let dirs: std::collections::HashMap<NodeId, bool> = flags
            .into_iter()
            .filter_map(|(key, dev)| Some((resolve_from(image, app, &key)?, dev)))
            .collect();
        // Depth first, a nested package's own flag overriding its parent's.
        let mut stack: Vec<(NodeId, bool)> = vec![(node, false)];
        while let Some((n, inherited)) = stack.pop() {
            let dev = dirs.get(&n).copied().unwrap_or(inherited);
            if dev {
                out.dev.push(n);
            }
            stack.extend(image.tree.children(n).map(|c| (c, dev)));
        }
    }
    out
}

/// npm 6 lock files nest `dependencies` where they are installed.
fn lockfile_v1(deps: &serde_json::Map<String, Value>, prefix: &str, out: &mut Vec<(String, bool)>) {
    for (name, e) in deps {
        let key = format!("{prefix}/{name}");
        let dev = e.get("dev").and_then(Value::as_bool).unwrap_or(false);
        out.push((key.clone(), dev));
        if let Some(nested) = e.get("dependencies").and_then(Value::as_object) {
            lockfile_v1(nested, &format!("{key}/node_modules"), out);
        }
    }
}

fn ancestors(image: &Image, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
    std::iter::successors(Some(node), |&n| {
        if n == ROOT {
            None
        } else {
            image.tree.parent(n)
        }
    })
}

/// Something at or below `node` is in the final file system (a directory
/// the tar only implies has no entry of its own).
fn visible(image: &Image, node: NodeId) -> bool {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if image.fs[n as usize].is_some() {
            return true;
        }
        stack.extend(image.tree.children(n));
    }
    false
}
