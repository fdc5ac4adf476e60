//! Apply layers in order, as overlayfs does, to get the final file system,
//! the layer that last wrote each path, and every shipped byte that ends up
//! hidden (overwritten, deleted, hidden by an opaque directory).

use std::collections::HashMap;

use super::layer::{Entry, EntryKind, LayerIndex};
use super::overlay;
use super::tree::{NodeId, PathTree};
use crate::image::{Change, Hidden, HideReason, Image, ImageFacts, Layer, Loc};

/// A layer's metadata from the manifest and history.
#[derive(Debug, Default, Clone)]
pub struct LayerMeta {
    pub diff_id: String,
    pub blob: String,
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
}

/// What `docker import` did, from the comment it leaves: `Imported from -`
/// (a tarball on standard input) or `Imported from URL`.
fn imported(comment: &str) -> Option<String> {
    match comment.trim().strip_prefix("Imported from ")?.trim() {
        "" => None,
        "-" => Some("docker import - (a tarball from standard input)".into()),
        src => Some(format!("docker import {src}")),
    }
}

/// The image's tree, grown a layer at a time from the bottom, each layer's
/// nodes re-homed into it as it is added. A reader can graft the layers it
/// has while it still reads or hashes others; [`build_image`] grafts the
/// rest.
pub struct Grafts {
    tree: PathTree,
    done: usize,
}

impl Default for Grafts {
    fn default() -> Self {
        Grafts {
            tree: PathTree::new(),
            done: 0,
        }
    }
}

impl Grafts {
    /// How many layers (the bottom ones) are grafted.
    pub fn done(&self) -> usize {
        self.done
    }

    /// The image's tree so far: the tree of every grafted layer's nodes.
    pub fn tree(&self) -> &PathTree {
        &self.tree
    }

    /// Graft the next layer (the one above the last grafted). Its own tree
    /// is emptied: its nodes are now the image's. A layer with more nodes
    /// than every layer below it together takes the other way round: its
    /// tree becomes the image's and the tree so far is grafted into it,
    /// which inserts fewer nodes (a base of a few thousand paths under a
    /// `node_modules` of two hundred thousand). Then the map is given
    /// back: the nodes of every layer grafted before must be re-homed
    /// through it ([`rehome`]).
    #[must_use = "the layers grafted before are to be re-homed through the map"]
    pub fn add(&mut self, idx: &mut LayerIndex) -> Option<Vec<NodeId>> {
        let mut own = std::mem::take(&mut idx.tree);
        self.done += 1;
        // The bottom layer's tree becomes the image's as it is: remapping it
        // into the empty tree would give every node its own id again (nodes
        // are made in the same order), so only the copy is saved.
        if self.done == 1 && !own.is_empty() {
            self.tree = own;
            return None;
        }
        if own.len() > self.tree.len() {
            let below = own.graft(&self.tree);
            self.tree = own;
            return Some(below);
        }
        let map = self.tree.graft(&own);
        drop(own);
        rehome_index(&map, idx);
        None
    }
}

/// [`rehome`] a layer's index.
pub fn rehome_index(map: &[NodeId], idx: &mut LayerIndex) {
    rehome(
        map,
        &mut idx.entries,
        &mut idx.whiteouts,
        &mut idx.opaque,
        &mut idx.captured,
    );
}

/// Give a layer's nodes their ids in another tree (`map`: old id to new).
pub fn rehome(
    map: &[NodeId],
    entries: &mut [Entry],
    whiteouts: &mut [NodeId],
    opaque: &mut [NodeId],
    captured: &mut [(NodeId, Box<[u8]>)],
) {
    let map = |n: &mut NodeId| *n = map[*n as usize];
    entries.iter_mut().for_each(|e| map(&mut e.node));
    whiteouts.iter_mut().for_each(map);
    opaque.iter_mut().for_each(map);
    captured.iter_mut().for_each(|(n, _)| map(n));
}

/// Merge indexed layers (bottom first) into an [`Image`]. Fails on a
/// hardlink whose target exists neither in its layer nor below it, which
/// Docker cannot apply either.
pub fn build_image(
    facts: ImageFacts,
    layers: Vec<(LayerMeta, LayerIndex)>,
) -> Result<Image, String> {
    build_grafted(facts, Grafts::default(), layers)
}

/// [`build_image`], the first `grafts.done()` layers grafted already.
pub fn build_grafted(
    facts: ImageFacts,
    mut grafts: Grafts,
    layers: Vec<(LayerMeta, LayerIndex)>,
) -> Result<Image, String> {
    let mut out_layers: Vec<Layer> = Vec::with_capacity(layers.len());
    let mut captured_by_layer: Vec<Vec<(NodeId, Box<[u8]>)>> = Vec::with_capacity(layers.len());

    // 1. Re-home every layer's nodes into the image's tree.
    for (li, (meta, mut idx)) in layers.into_iter().enumerate() {
        if li >= grafts.done()
            && let Some(map) = grafts.add(&mut idx)
        {
            for (l, caps) in out_layers.iter_mut().zip(&mut captured_by_layer) {
                rehome(&map, &mut l.entries, &mut l.whiteouts, &mut l.opaque, caps);
            }
        }
        let entries = idx.entries;
        let created_by = match meta.created_by {
            Some(by) if !by.trim().is_empty() => Some(by),
            // `docker import` leaves created_by empty and says so in the
            // comment ("Imported from -"): the command, rather than nothing.
            _ => meta.comment.as_deref().and_then(imported),
        };
        let instruction = match created_by.as_deref() {
            Some(by) => crate::image::clean_instruction(by),
            None => meta.comment.clone().unwrap_or_default(),
        };
        captured_by_layer.push(idx.captured);
        out_layers.push(Layer {
            diff_id: meta.diff_id,
            blob: meta.blob,
            created: meta.created,
            created_by,
            instruction,
            comment: meta.comment,
            changes: Vec::with_capacity(entries.len()),
            entries,
            whiteouts: idx.whiteouts,
            opaque: idx.opaque,
            size: idx.size,
            tar_bytes: idx.tar_bytes,
            ..Default::default()
        });
    }

    let tree = grafts.tree;

    // 2. Apply them in order (the rule is in `overlay`).
    let mut fs: Vec<Option<Loc>> = vec![None; tree.len()];
    let mut hidden = Vec::new();
    let mut captured: HashMap<NodeId, Box<[u8]>> = HashMap::new();
    for li in 0..out_layers.len() {
        let by = li as u16;
        let mut hide = |_: NodeId, old: Loc, reason: HideReason| {
            hidden.push(Hidden {
                layer: old.layer,
                entry: old.entry,
                by,
                reason,
            })
        };
        overlay::remove_lower(&tree, &out_layers, li, &mut fs, &mut hide);
        check_hardlinks(&tree, &out_layers[li], li, &fs, &out_layers)?;
        let layer = &out_layers[li];
        let mut changes = Vec::with_capacity(layer.entries.len());
        let mut counts = layer.counts;
        counts.removed = layer.whiteouts.len() as u64;
        counts.opaque_dirs = layer.opaque.len() as u64;
        let mut wrote = |_: usize, change: Change| {
            match change {
                Change::Added => counts.added += 1,
                Change::Modified => counts.modified += 1,
                Change::MetadataOnly => counts.metadata_only += 1,
                Change::Unchanged => {}
            }
            changes.push(change);
        };
        overlay::write_entries(&tree, &out_layers, li, &mut fs, &mut hide, &mut wrote);
        let layer = &mut out_layers[li];
        layer.changes = changes;
        layer.counts = counts;
    }

    // 3. An inode stays visible while any of its names does: when a file's
    //    data-carrying entry is hidden but a hardlink to it (same layer)
    //    survives, the bytes are not waste and the link carries them.
    keep_linked_inodes(&tree, &mut out_layers, &fs, &mut hidden);

    // 4. Hidden bytes per layer, both ways.
    for h in &hidden {
        let bytes = out_layers[h.layer as usize].entries[h.entry as usize].disk_bytes();
        out_layers[h.layer as usize].hidden_bytes += bytes;
        out_layers[h.by as usize].hides_bytes += bytes;
    }

    // 5. Captured files that are still visible.
    for (li, caps) in captured_by_layer.into_iter().enumerate() {
        for (node, data) in caps {
            if fs[node as usize].is_some_and(|loc| loc.layer as usize == li) {
                captured.insert(node, data);
            }
        }
    }

    let mut image = Image {
        facts,
        tree,
        layers: out_layers,
        fs,
        hidden,
        captured,
    };
    image.facts.base_os = super::os::detect_base_os(&image);
    Ok(image)
}

/// Every hardlink of `layer` must point at something this layer writes or
/// that is visible below it (`fs` is the state before this layer). Docker
/// refuses a layer with a link to nowhere (`link ...: no such file or
/// directory`), or to a directory.
fn check_hardlinks(
    tree: &PathTree,
    layer: &Layer,
    li: usize,
    fs: &[Option<Loc>],
    layers: &[Layer],
) -> Result<(), String> {
    let links: Vec<&crate::index::layer::Entry> = layer
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Hardlink)
        .collect();
    if links.is_empty() {
        return Ok(());
    }
    let own: HashMap<NodeId, EntryKind> = layer.entries.iter().map(|e| (e.node, e.kind)).collect();
    for e in links {
        let target = e.link.as_deref().unwrap_or("");
        let node = tree.lookup(target);
        let kind = node.and_then(|n| {
            own.get(&n).copied().or_else(|| {
                fs[n as usize]
                    .map(|loc| layers[loc.layer as usize].entries[loc.entry as usize].kind)
            })
        });
        let problem = match kind {
            None => "which exists neither in this layer nor below it",
            Some(EntryKind::Dir) => "which is a directory",
            Some(_) => continue,
        };
        return Err(format!(
            "layer {} ({}): entry {} is a hardlink to /{target}, {problem} (Docker refuses such a layer too)",
            li + 1,
            layer.blob,
            tree.path(e.node),
        ));
    }
    Ok(())
}

fn keep_linked_inodes(
    tree: &PathTree,
    layers: &mut [Layer],
    fs: &[Option<Loc>],
    hidden: &mut Vec<Hidden>,
) {
    // (layer, target node) -> visible hardlinks to it
    let mut links: HashMap<(u16, NodeId), Vec<u32>> = HashMap::new();
    for (li, layer) in layers.iter().enumerate() {
        for (ei, e) in layer.entries.iter().enumerate() {
            let loc = Loc {
                layer: li as u16,
                entry: ei as u32,
            };
            if e.kind == EntryKind::Hardlink
                && fs[e.node as usize] == Some(loc)
                && let Some(target) = e.link.as_deref().and_then(|t| tree.lookup(t))
            {
                links
                    .entry((li as u16, target))
                    .or_default()
                    .push(ei as u32);
            }
        }
    }
    if links.is_empty() {
        return;
    }
    hidden.retain(|h| {
        let e = &layers[h.layer as usize].entries[h.entry as usize];
        if e.kind != EntryKind::File {
            return true;
        }
        match links.get(&(h.layer, e.node)).and_then(|v| v.first()) {
            Some(&carrier) => {
                layers[h.layer as usize].entries[carrier as usize].owns_inode = true;
                false
            }
            None => true,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::layer::index_tar;

    fn tar(files: &[(&str, &[u8])]) -> LayerIndex {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, *data).unwrap();
        }
        index_tar(&b.into_inner().unwrap()[..]).unwrap()
    }

    /// A layer larger than those below takes their place as the image's
    /// tree: what the layers below name is named the same after.
    #[test]
    fn a_larger_upper_layer_grafts_the_lower_ones_into_its_tree() {
        let lower = tar(&[
            ("etc/os-release", b"ID=debian\n"),
            ("etc/a", b"first"),
            ("var/.wh.gone", b""),
            ("opt/.wh..wh..opq", b""),
        ]);
        let names: Vec<String> = (0..30).map(|i| format!("usr/lib/f{i}")).collect();
        let mut upper = upper_names(&names);
        upper.push(("etc/a", b"second"));
        let upper = tar(&upper);
        let top = tar(&[("etc/.wh.os-release", b""), ("etc/b", b"b")]);
        assert!(upper.tree.len() > lower.tree.len() + top.tree.len());

        let meta = LayerMeta::default;
        let img = build_image(
            ImageFacts::default(),
            vec![(meta(), lower), (meta(), upper), (meta(), top)],
        )
        .unwrap();
        let paths = |l: usize| -> Vec<String> {
            let layer = &img.layers[l];
            let mut v: Vec<String> = layer
                .entries
                .iter()
                .map(|e| img.tree.path(e.node))
                .collect();
            v.extend(
                layer
                    .whiteouts
                    .iter()
                    .map(|&n| format!("whiteout {}", img.tree.path(n))),
            );
            v.extend(
                layer
                    .opaque
                    .iter()
                    .map(|&n| format!("opaque {}", img.tree.path(n))),
            );
            v.sort();
            v
        };
        assert_eq!(
            paths(0),
            [
                "/etc/a",
                "/etc/os-release",
                "opaque /opt",
                "whiteout /var/gone"
            ]
        );
        assert_eq!(paths(2), ["/etc/b", "whiteout /etc/os-release"]);
        assert_eq!(paths(1).len(), 31);
        let mut hidden: Vec<(u16, String)> = img
            .hidden
            .iter()
            .map(|h| {
                let e = &img.layers[h.layer as usize].entries[h.entry as usize];
                (h.by, img.tree.path(e.node))
            })
            .collect();
        hidden.sort();
        assert_eq!(
            hidden,
            [
                (1, "/etc/a".to_string()),
                (2, "/etc/os-release".to_string())
            ]
        );
        // A captured file keeps its node: visible in a two-layer image.
        let two = build_image(
            ImageFacts::default(),
            vec![
                (meta(), tar(&[("etc/os-release", b"ID=debian\n")])),
                (meta(), tar(&upper_names(&names))),
            ],
        )
        .unwrap();
        assert_eq!(
            two.captured_file("etc/os-release"),
            Some(&b"ID=debian\n"[..])
        );
    }

    fn upper_names(names: &[String]) -> Vec<(&str, &[u8])> {
        names.iter().map(|n| (n.as_str(), &b"x"[..])).collect()
    }

    #[test]
    fn an_imported_layer_says_what_docker_import_did() {
        let meta = |comment: &str| LayerMeta {
            comment: Some(comment.into()),
            ..LayerMeta::default()
        };
        let img = build_image(
            ImageFacts::default(),
            vec![
                (meta("Imported from -"), LayerIndex::default()),
                (meta("Imported from https://x/r.tar"), LayerIndex::default()),
                (meta("a note"), LayerIndex::default()),
            ],
        )
        .unwrap();
        let by: Vec<_> = img.layers.iter().map(|l| l.created_by.as_deref()).collect();
        assert_eq!(
            by,
            [
                Some("docker import - (a tarball from standard input)"),
                Some("docker import https://x/r.tar"),
                None
            ]
        );
        assert_eq!(img.layers[0].instruction, by[0].unwrap_or_default());
        assert_eq!(img.layers[2].instruction, "a note");
    }
}
