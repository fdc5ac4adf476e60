//! What the image runs: the files ENTRYPOINT and CMD name, resolved as the
//! kernel would find them (PATH, symlinks, `/etc/alternatives`), with every
//! link on the way. Nothing in the package graph says a Java app needs the
//! JRE a JDK pulled in; `java` on the CMD line does.

use super::resolve_from;
use crate::image::Image;
use crate::index::layer::EntryKind;
use crate::index::tree::{NodeId, ROOT};

/// Docker's default PATH for images whose config sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const SHELLS: [&str; 5] = ["sh", "bash", "dash", "ash", "busybox"];

/// Every node an ENTRYPOINT/CMD word leads to: the file itself and the
/// symlinks through which it was reached.
pub fn executables(image: &Image) -> Vec<NodeId> {
    let f = &image.facts;
    let argv: Vec<&str> = f
        .entrypoint
        .iter()
        .chain(&f.cmd)
        .map(String::as_str)
        .collect();
    let mut words: Vec<&str> = Vec::new();
    for (i, w) in argv.iter().enumerate() {
        words.push(w);
        // `sh -c "exec java -jar app.jar"`: the words of the script too.
        let base = w.rsplit('/').next().unwrap_or(w);
        if SHELLS.contains(&base)
            && argv.get(i + 1) == Some(&"-c")
            && let Some(script) = argv.get(i + 2)
        {
            words.extend(script.split(|c: char| c.is_whitespace() || ";&|()".contains(c)));
        }
    }
    let path = f.path_env.as_deref().unwrap_or(DEFAULT_PATH);
    let workdir = image.tree.lookup(&f.workdir).unwrap_or(ROOT);
    let mut out = Vec::new();
    for w in words {
        if w.is_empty() || w.starts_with('-') || w.contains('=') || w == "exec" {
            continue;
        }
        if w.contains('/') {
            follow(image, workdir, w, &mut out);
        } else {
            for dir in path.split(':').filter(|d| d.starts_with('/')) {
                if follow(image, ROOT, &format!("{dir}/{w}"), &mut out) {
                    break;
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Follow `path` to a file, pushing each node reached; false if it leads
/// nowhere (or to a directory).
fn follow(image: &Image, start: NodeId, path: &str, out: &mut Vec<NodeId>) -> bool {
    let mut current = path.to_string();
    let mut from = start;
    let mut seen = Vec::new();
    for _ in 0..40 {
        let Some(node) = resolve_from(image, from, &current) else {
            break;
        };
        let Some(loc) = image.fs.get(node as usize).copied().flatten() else {
            break;
        };
        let e = image.entry(loc);
        match e.kind {
            EntryKind::Dir => break,
            EntryKind::Symlink => {
                seen.push(node);
                let target = e.link.as_deref().unwrap_or("");
                from = image.tree.parent(node).unwrap_or(ROOT);
                current = target.to_string();
            }
            _ => {
                seen.push(node);
                out.extend(seen);
                return true;
            }
        }
    }
    false
}
