//! The overlay rule, in one place: how one layer changes the file system
//! below it, as overlayfs (and Docker's layer applier) does.
//!
//! 1. An opaque directory (`.wh..wh..opq`) hides everything the lower
//!    layers put in it.
//! 2. A whiteout (`.wh.NAME`) deletes a path and everything below it.
//! 3. Then the layer's entries land on top. An entry that is not a
//!    directory, written where a directory was, takes the directory's
//!    lower content with it, whether the directory had an entry of its own
//!    or was only implied by the paths below it.
//!
//! The state is one `Option<Loc>` per node of the image's tree: the entry
//! visible there. [`crate::index::merge`] applies every layer to build the
//! final file system and account for hidden bytes; the TUI replays them to
//! show the file system after any layer. Both call this module.

use super::layer::EntryKind;
use super::tree::{NodeId, PathTree};
use crate::image::{Change, HideReason, Layer, Loc};

/// Steps 1 and 2: the lower content that layer `li`'s opaque directories
/// and whiteouts remove. `hide` sees every visible node removed, with the
/// entry that was visible there.
pub fn remove_lower(
    tree: &PathTree,
    layers: &[Layer],
    li: usize,
    state: &mut [Option<Loc>],
    hide: &mut impl FnMut(NodeId, Loc, HideReason),
) {
    let layer = &layers[li];
    for &dir in &layer.opaque {
        for n in tree.descendants(dir) {
            take(state, li, n, HideReason::Opaque, hide);
        }
    }
    for &w in &layer.whiteouts {
        take(state, li, w, HideReason::Deleted, hide);
        for n in tree.descendants(w) {
            take(state, li, n, HideReason::Deleted, hide);
        }
    }
}

/// Step 3: layer `li`'s entries land on `state` (after [`remove_lower`]).
/// `hide` sees every lower entry they hide, `wrote` what each entry did
/// relative to what was visible below it.
pub fn write_entries(
    tree: &PathTree,
    layers: &[Layer],
    li: usize,
    state: &mut [Option<Loc>],
    hide: &mut impl FnMut(NodeId, Loc, HideReason),
    wrote: &mut impl FnMut(usize, Change),
) {
    let l = li as u16;
    for (ei, e) in layers[li].entries.iter().enumerate() {
        // A directory replaced by something else takes its lower content
        // with it, whether the directory had an entry or was implied.
        if e.kind != EntryKind::Dir && tree.children(e.node).next().is_some() {
            for n in tree.descendants(e.node) {
                take(state, li, n, HideReason::Deleted, hide);
            }
        }
        let change = match state[e.node as usize] {
            None => Change::Added,
            Some(old_loc) => {
                let old = &layers[old_loc.layer as usize].entries[old_loc.entry as usize];
                let change = if old.kind == EntryKind::Dir && e.kind == EntryKind::Dir {
                    if (old.mode, old.uid, old.gid) == (e.mode, e.uid, e.gid) {
                        Change::Unchanged
                    } else {
                        Change::MetadataOnly
                    }
                } else if old.same_content(e) {
                    Change::MetadataOnly
                } else {
                    Change::Modified
                };
                let reason = if change == Change::Modified {
                    HideReason::Overwritten
                } else {
                    HideReason::MetadataOnly
                };
                take(state, li, e.node, reason, hide);
                change
            }
        };
        wrote(ei, change);
        state[e.node as usize] = Some(Loc {
            layer: l,
            entry: ei as u32,
        });
    }
}

/// Apply layer `li` to `state`: [`remove_lower`], then [`write_entries`].
pub fn apply_layer(
    tree: &PathTree,
    layers: &[Layer],
    li: usize,
    state: &mut [Option<Loc>],
    hide: &mut impl FnMut(NodeId, Loc, HideReason),
) {
    remove_lower(tree, layers, li, state, hide);
    write_entries(tree, layers, li, state, hide, &mut |_, _| {});
}

/// Hide what a lower layer made visible at `node`. An entry of layer `li`
/// itself is never hidden by that layer (a path it lists twice keeps the
/// last, which is written over the first).
fn take(
    state: &mut [Option<Loc>],
    li: usize,
    node: NodeId,
    reason: HideReason,
    hide: &mut impl FnMut(NodeId, Loc, HideReason),
) {
    if let Some(old) = state[node as usize]
        && (old.layer as usize) < li
    {
        hide(node, old, reason);
        state[node as usize] = None;
    }
}
