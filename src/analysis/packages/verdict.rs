//! The package graph applied to an image: seeds from the rules, runtime
//! roots from the image (hand-installed, base layers, essential, what it
//! runs), and a sentence per build-only package saying why.

use super::Packages;
use super::graph::{Graph, Root, Verdict};
use crate::image::Image;
use crate::index::layer::EntryKind;
use crate::index::tree::NodeId;

/// Which packages only the build needed, and why.
#[derive(Debug, Clone, Default)]
pub struct BuildOnly {
    pub verdict: Verdict,
    pub seed: Vec<bool>,
    /// How many bottom layers the base image gave.
    pub base_layers: usize,
}

impl BuildOnly {
    pub fn is_build_only(&self, i: usize) -> bool {
        i < self.verdict.kept.len() && self.verdict.build_only(i)
    }

    /// Why package `i` is build-only, in a sentence fragment.
    pub fn reason(&self, pk: &Packages, i: usize) -> String {
        let name = |j: usize| pk.names[j].as_str();
        let layer = pk.layer[i]
            .map(|l| format!(" in layer {}", l + 1))
            .unwrap_or_default();
        let v = &self.verdict;
        let how = match (v.pulled_by[i], v.seed_of[i]) {
            (Some(by), Some(seed)) if by == seed => format!("pulled in by {}", name(by)),
            (Some(by), Some(seed)) => format!("pulled in by {} for {}", name(by), name(seed)),
            _ if self.seed[i] && !pk.auto[i] => format!("a build tool installed{layer}"),
            _ if self.seed[i] => format!("a build tool installed automatically{layer}"),
            _ => format!("installed automatically{layer}; no installed package needs it any more"),
        };
        format!("{how}; nothing the image runs needs it")
    }

    /// The seeds asked for by hand, per layer that installed them: what to
    /// purge (with `--auto-remove`) in that layer's RUN.
    pub fn purge_targets(&self, pk: &Packages) -> Vec<(Option<u16>, Vec<String>)> {
        let mut out: Vec<(Option<u16>, Vec<String>)> = Vec::new();
        for i in 0..pk.names.len() {
            let named = self.seed[i] && self.is_build_only(i) && !pk.auto[i];
            if !named {
                continue;
            }
            match out.iter_mut().find(|(l, _)| *l == pk.layer[i]) {
                Some((_, v)) => v.push(pk.names[i].clone()),
                None => out.push((pk.layer[i], vec![pk.names[i].clone()])),
            }
        }
        out.sort();
        out
    }
}

/// Walk the graph. `seed[i]`/`keep[i]`: a rule names package i as a build
/// tool / as runtime. `base_layers`: how many bottom layers the base gave.
pub fn sweep(
    image: &Image,
    pk: &Packages,
    seed: Vec<bool>,
    keep: &[bool],
    base_layers: usize,
) -> BuildOnly {
    let n = pk.names.len();
    let mut roots: Vec<Option<Root>> = vec![None; n];
    for node in super::runs::executables(image) {
        if let Some(i) = pk.owner_index(node) {
            roots[i] = Some(Root::Runs);
        }
    }
    for i in 0..n {
        let p = &pk.db[i];
        let in_base = pk.layer[i].is_some_and(|l| (l as usize) < base_layers);
        roots[i] = roots[i].or(if keep[i] {
            Some(Root::Manual)
        } else if p.essential || p.protected || p.required {
            Some(Root::Essential)
        } else if in_base && !pk.auto[i] {
            // A base package apt installed automatically is kept only if a
            // root needs it: builder bases (buildpack-deps) pull in
            // compiler libraries that way.
            Some(Root::Base)
        } else if !pk.auto[i] {
            // Asked for; an apk `--virtual .rundeps` group included.
            Some(Root::Manual)
        } else {
            None
        });
    }
    let graph = Graph::new(&pk.db);
    if has_native_code(image, pk, base_layers) {
        // Code the image compiled links the runtime libraries of the -dev
        // packages it was built against: `libssl-dev` asked for by hand
        // means the binary needs `libssl3`.
        let shared = shared_library_packages(image, pk);
        // Asked for: by hand, or as a member of an apk build group.
        let mut asked: Vec<bool> = pk.auto.iter().map(|a| !a).collect();
        for (g, p) in pk.db.iter().enumerate() {
            if p.virtual_group && seed[g] {
                for name in p.depends.iter().flatten() {
                    if let Some(j) = graph.index(name) {
                        asked[j] = true;
                    }
                }
            }
        }
        for i in 0..n {
            if !(seed[i] && asked[i] && pk.names[i].ends_with("-dev")) {
                continue;
            }
            for group in &pk.db[i].depends {
                if let [only] = group.as_slice()
                    && let Some(j) = graph.index(only)
                    && shared[j]
                    && !seed[j]
                    && roots[j].is_none()
                {
                    roots[j] = Some(Root::Linked);
                }
            }
        }
    }
    let verdict = graph.walk(&seed, &roots);
    BuildOnly {
        verdict,
        seed,
        base_layers,
    }
}

/// Packages that own a shared library (`*.so`, `*.so.N`).
fn shared_library_packages(image: &Image, pk: &Packages) -> Vec<bool> {
    let mut out = vec![false; pk.names.len()];
    for (node, &o) in pk.owner.iter().enumerate() {
        if o != super::NONE && !out[o as usize] && is_shared_object(image.tree.name(node as NodeId))
        {
            out[o as usize] = true;
        }
    }
    out
}

/// `libx.so`, `libx.so.3`, `libx.so.1.2.3` (not `ld.so.conf`).
fn is_shared_object(name: &str) -> bool {
    // (A byte search: `str::find` builds a searcher per call, and this
    // runs on every file.)
    let Some(i) = name.as_bytes().windows(3).position(|w| w == b".so") else {
        return false;
    };
    let rest = &name[i + 3..];
    rest.is_empty()
        || (rest.starts_with('.')
            && rest[1..]
                .split('.')
                .all(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())))
}

/// Executables that are scripts by their name, not native code.
fn is_script(name: &str) -> bool {
    const EXT: [&str; 8] = [".sh", ".py", ".js", ".pl", ".rb", ".bash", ".php", ".cjs"];
    EXT.iter().any(|e| name.ends_with(e))
}

/// Native code of the image's own: an executable or shared object no
/// package owns, written above the base.
fn has_native_code(image: &Image, pk: &Packages, base_layers: usize) -> bool {
    image.fs.iter().enumerate().any(|(node, loc)| {
        let Some(loc) = loc else { return false };
        if (loc.layer as usize) < base_layers || pk.owner_index(node as NodeId).is_some() {
            return false;
        }
        let e = image.entry(*loc);
        let name = image.tree.name(node as NodeId);
        e.kind == EntryKind::File
            && e.size > 0
            && ((e.mode & 0o111 != 0 && !is_script(name))
                || is_shared_object(name)
                || name.ends_with(".node"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_objects_by_name() {
        for yes in [
            "libc.so",
            "libssl.so.3",
            "libz.so.1.2.13",
            "_ujson.cpython-311-x86_64-linux-gnu.so",
        ] {
            assert!(is_shared_object(yes), "{yes}");
        }
        for no in ["ld.so.conf", "ld.so.cache", "libfoo.so.1.bak", "so"] {
            assert!(!is_shared_object(no), "{no}");
        }
    }
}
