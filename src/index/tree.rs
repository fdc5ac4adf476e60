//! The path arena: every path seen in any layer is a node addressed by a
//! `NodeId`, with its name interned once. Layers refer to nodes, never to
//! strings, so merging layers and comparing images is integer arithmetic.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// Index of a node in a [`PathTree`]. The root (`/`) is node 0.
pub type NodeId = u32;
/// Index of an interned name.
pub type Sym = u32;

pub const ROOT: NodeId = 0;

#[derive(Debug, Clone, Copy)]
struct Node {
    parent: NodeId,
    name: Sym,
    first_child: NodeId, // 0 = none (the root is never a child)
    next_sibling: NodeId,
}

/// An arena of path nodes with interned names.
///
/// `nodes`, `text` and `ends` are the tree; the two tables are indexes
/// over them that hold only ids (4 bytes a slot): a name's slot is hashed
/// by its text, a child's by its parent and name. Each name is stored once,
/// back to back with the others (no allocation per name), so memory grows
/// with entries at a few bytes each (issue 7).
#[derive(Debug, Clone, Default)]
pub struct PathTree {
    nodes: Vec<Node>,
    /// Every interned name, back to back.
    text: String,
    /// Where each name ends in `text`; name `s` starts where `s - 1` ends.
    ends: Vec<usize>,
    /// Every name's `Sym`, hashed by the name's text.
    name_ids: HashTable<Sym>,
    /// Every node but the root, hashed by (parent, name).
    children: HashTable<NodeId>,
}

/// Name `s` of an arena (see [`PathTree::text`]).
fn name_of<'a>(text: &'a str, ends: &[usize], s: Sym) -> &'a str {
    let s = s as usize;
    let start = if s == 0 { 0 } else { ends[s - 1] };
    &text[start..ends[s]]
}

fn name_hash(name: &str) -> u64 {
    FxBuildHasher.hash_one(name)
}

fn child_hash(parent: NodeId, name: Sym) -> u64 {
    FxBuildHasher.hash_one((u64::from(parent) << 32) | u64::from(name))
}

impl PathTree {
    pub fn new() -> Self {
        let mut t = PathTree::default();
        let root_name = t.intern("");
        t.nodes.push(Node {
            parent: ROOT,
            name: root_name,
            first_child: 0,
            next_sibling: 0,
        });
        t
    }

    fn sym(&self, name: &str) -> Option<Sym> {
        self.name_ids
            .find(name_hash(name), |&s| {
                name_of(&self.text, &self.ends, s) == name
            })
            .copied()
    }

    fn find(&self, parent: NodeId, sym: Sym) -> Option<NodeId> {
        self.children
            .find(child_hash(parent, sym), |&id| {
                let n = &self.nodes[id as usize];
                n.parent == parent && n.name == sym
            })
            .copied()
    }

    pub fn intern(&mut self, name: &str) -> Sym {
        let hash = name_hash(name);
        let (text, ends) = (&self.text, &self.ends);
        if let Some(&s) = self
            .name_ids
            .find(hash, |&s| name_of(text, ends, s) == name)
        {
            return s;
        }
        let s = self.ends.len() as Sym;
        self.text.push_str(name);
        self.ends.push(self.text.len());
        let (text, ends) = (&self.text, &self.ends);
        self.name_ids
            .insert_unique(hash, s, |&s| name_hash(name_of(text, ends, s)));
        s
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// The child of `parent` called `name`, created if missing.
    pub fn child(&mut self, parent: NodeId, name: &str) -> NodeId {
        let sym = self.intern(name);
        self.child_sym(parent, sym)
    }

    /// [`Self::child`], for a name already interned here.
    fn child_sym(&mut self, parent: NodeId, sym: Sym) -> NodeId {
        if let Some(id) = self.find(parent, sym) {
            return id;
        }
        self.push_child(parent, sym)
    }

    /// Add every path of `from` to this tree; gives the node here of each
    /// node there.
    pub fn graft(&mut self, from: &PathTree) -> Vec<NodeId> {
        let mut map = vec![ROOT; from.len()];
        // Each name is interned here once (names repeat: `lib`,
        // `index.js`, `__init__.py`).
        let mut syms: Vec<Option<Sym>> = vec![None; from.ends.len()];
        // Nodes are created after their parents: ids are in topological order.
        for id in 1..from.len() as NodeId {
            let parent = from.parent(id).unwrap_or(ROOT);
            let own = from.name_sym(id) as usize;
            let sym = *syms[own].get_or_insert_with(|| self.intern(from.name(id)));
            map[id as usize] = self.child_sym(map[parent as usize], sym);
        }
        map
    }

    /// Append a new node, first among `parent`'s children.
    fn push_child(&mut self, parent: NodeId, name: Sym) -> NodeId {
        let id = self.nodes.len() as NodeId;
        let next = self.nodes[parent as usize].first_child;
        self.nodes.push(Node {
            parent,
            name,
            first_child: 0,
            next_sibling: next,
        });
        self.nodes[parent as usize].first_child = id;
        let nodes = &self.nodes;
        self.children
            .insert_unique(child_hash(parent, name), id, |&c| {
                let n = &nodes[c as usize];
                child_hash(n.parent, n.name)
            });
        id
    }

    /// The node for a normalized relative path (`a/b/c`), created if missing.
    pub fn insert(&mut self, path: &str) -> NodeId {
        let mut node = ROOT;
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            node = self.child(node, part);
        }
        node
    }

    /// The node for a path if it exists.
    pub fn lookup(&self, path: &str) -> Option<NodeId> {
        let mut node = ROOT;
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            node = self.find(node, self.sym(part)?)?;
        }
        Some(node)
    }

    pub fn find_child(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        self.find(parent, self.sym(name)?)
    }

    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        (id != ROOT).then(|| self.nodes[id as usize].parent)
    }

    /// The id of a node's name: two nodes have the same name exactly when
    /// they have the same id.
    pub fn name_sym(&self, id: NodeId) -> Sym {
        self.nodes[id as usize].name
    }

    pub fn name(&self, id: NodeId) -> &str {
        name_of(&self.text, &self.ends, self.nodes[id as usize].name)
    }

    /// Children of a node, in no particular order.
    pub fn children(&self, id: NodeId) -> Children<'_> {
        Children {
            tree: self,
            next: self.nodes[id as usize].first_child,
        }
    }

    /// Every node below `id` (not `id` itself), depth first.
    pub fn descendants(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack: Vec<NodeId> = self.children(id).collect();
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(self.children(n));
        }
        out
    }

    /// The absolute path of a node, e.g. `/usr/lib/go`.
    pub fn path(&self, id: NodeId) -> String {
        let mut parts = Vec::new();
        let mut n = id;
        while n != ROOT {
            parts.push(self.name(n));
            n = self.nodes[n as usize].parent;
        }
        if parts.is_empty() {
            return "/".to_string();
        }
        let mut s = String::new();
        for p in parts.iter().rev() {
            s.push('/');
            s.push_str(p);
        }
        s
    }

    /// Depth of a node (root = 0).
    pub fn depth(&self, id: NodeId) -> usize {
        let mut d = 0;
        let mut n = id;
        while n != ROOT {
            d += 1;
            n = self.nodes[n as usize].parent;
        }
        d
    }

    /// Is `anc` a strict ancestor of `id`?
    pub fn is_ancestor(&self, anc: NodeId, id: NodeId) -> bool {
        let mut n = id;
        while n != ROOT {
            n = self.nodes[n as usize].parent;
            if n == anc {
                return true;
            }
        }
        false
    }
}

// ---- serialization (the layer-index cache) ---------------------------------
//
// Only what defines the tree is written: the interned names and each node's
// (parent, name). Sibling links and lookup maps are rebuilt on reading, in
// the same order they were built, so node ids and child order are the same.

impl serde::Serialize for PathTree {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Names<'a>(&'a PathTree);
        impl serde::Serialize for Names<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let t = self.0;
                s.collect_seq((0..t.ends.len() as Sym).map(|i| name_of(&t.text, &t.ends, i)))
            }
        }
        struct Nodes<'a>(&'a [Node]);
        impl serde::Serialize for Nodes<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|n| (n.parent, n.name)))
            }
        }
        // Names as a sequence of strings: the same bytes as a Vec<Box<str>>.
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&Names(self))?;
        t.serialize_element(&Nodes(&self.nodes))?;
        t.end()
    }
}

/// Names read straight into an arena (no allocation per name).
#[derive(Default)]
struct Arena {
    text: String,
    ends: Vec<usize>,
}

impl<'de> serde::Deserialize<'de> for Arena {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Seq;
        impl<'de> serde::de::Visitor<'de> for Seq {
            type Value = Arena;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of names")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Arena, A::Error> {
                let mut a = Arena::default();
                a.ends.reserve(seq.size_hint().unwrap_or(0).min(1 << 20));
                while seq.next_element_seed(Name(&mut a))?.is_some() {}
                Ok(a)
            }
        }
        struct Name<'a>(&'a mut Arena);
        impl<'de> serde::de::DeserializeSeed<'de> for Name<'_> {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_str(self)
            }
        }
        impl serde::de::Visitor<'_> for Name<'_> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
                self.0.text.push_str(v);
                self.0.ends.push(self.0.text.len());
                Ok(())
            }
        }
        d.deserialize_seq(Seq)
    }
}

impl<'de> serde::Deserialize<'de> for PathTree {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (names, nodes): (Arena, Vec<(NodeId, Sym)>) = serde::Deserialize::deserialize(d)?;
        PathTree::from_parts(names, &nodes).map_err(D::Error::custom)
    }
}

impl PathTree {
    /// Rebuild a tree from its names and (parent, name) pairs, checking that
    /// every parent precedes its child and every name exists.
    fn from_parts(names: Arena, nodes: &[(NodeId, Sym)]) -> Result<Self, String> {
        let Arena { text, ends } = names;
        if ends.first() != Some(&0) || nodes.first() != Some(&(ROOT, 0)) {
            return Err("path tree without its root".into());
        }
        let mut t = PathTree {
            nodes: Vec::with_capacity(nodes.len()),
            text,
            ends,
            name_ids: HashTable::with_capacity(0),
            children: HashTable::with_capacity(nodes.len()),
        };
        let mut name_ids = HashTable::with_capacity(t.ends.len());
        let (text, ends) = (&t.text, &t.ends);
        for s in 0..ends.len() as Sym {
            let name = name_of(text, ends, s);
            let hash = name_hash(name);
            if name_ids
                .find(hash, |&o| name_of(text, ends, o) == name)
                .is_some()
            {
                return Err(format!("path tree names {name:?} twice"));
            }
            name_ids.insert_unique(hash, s, |&o| name_hash(name_of(text, ends, o)));
        }
        t.name_ids = name_ids;
        t.nodes.push(Node {
            parent: ROOT,
            name: 0,
            first_child: 0,
            next_sibling: 0,
        });
        for (i, &(parent, name)) in nodes.iter().enumerate().skip(1) {
            let id = i as NodeId;
            if parent >= id || name as usize >= t.ends.len() {
                return Err(format!("path tree node {i} is out of order"));
            }
            if t.find(parent, name).is_some() {
                return Err(format!("path tree node {i} is a duplicate"));
            }
            t.push_child(parent, name);
        }
        Ok(t)
    }
}

pub struct Children<'a> {
    tree: &'a PathTree,
    next: NodeId,
}

impl Iterator for Children<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        if self.next == 0 {
            return None;
        }
        let id = self.next;
        self.next = self.tree.nodes[id as usize].next_sibling;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_and_paths() {
        let mut t = PathTree::new();
        let c = t.insert("a/b/c");
        let b = t.lookup("a/b").unwrap();
        assert_eq!(t.insert("./a/b/c/"), c);
        assert_eq!(t.path(c), "/a/b/c");
        assert_eq!(t.parent(c), Some(b));
        assert_eq!(t.depth(c), 3);
        assert!(t.is_ancestor(b, c));
        assert!(t.lookup("a/x").is_none());
        t.insert("a/b/d");
        let mut names: Vec<_> = t.children(b).map(|n| t.name(n).to_string()).collect();
        names.sort();
        assert_eq!(names, ["c", "d"]);
        assert_eq!(t.descendants(t.lookup("a").unwrap()).len(), 3);
    }

    #[test]
    fn round_trips_through_postcard_with_the_same_ids() {
        let mut t = PathTree::new();
        for p in [
            "usr/bin/go",
            "usr/lib/go/src",
            "etc/passwd",
            "usr/bin/gofmt",
        ] {
            t.insert(p);
        }
        let bytes = postcard::to_stdvec(&t).unwrap();
        let back: PathTree = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.len(), t.len());
        for id in 0..t.len() as NodeId {
            assert_eq!(back.path(id), t.path(id));
            let a: Vec<_> = t.children(id).collect();
            let b: Vec<_> = back.children(id).collect();
            assert_eq!(a, b);
        }
        assert_eq!(back.lookup("usr/lib/go"), t.lookup("usr/lib/go"));
        // The names are written as a sequence of strings, as a
        // Vec<Box<str>> would be: the cache format does not depend on how
        // the tree keeps them in memory.
        let names: Vec<Box<str>> = [
            "", "usr", "bin", "go", "lib", "src", "etc", "passwd", "gofmt",
        ]
        .into_iter()
        .map(Into::into)
        .collect();
        let pairs: Vec<(NodeId, Sym)> = (0..t.len() as NodeId)
            .map(|id| (t.parent(id).unwrap_or(ROOT), t.nodes[id as usize].name))
            .collect();
        assert_eq!(bytes, postcard::to_stdvec(&(names, pairs)).unwrap());
    }

    #[test]
    fn rejects_a_tree_whose_child_precedes_its_parent() {
        let names = || Arena {
            text: "a".into(),
            ends: vec![0, 1],
        };
        assert!(PathTree::from_parts(names(), &[(0, 0), (2, 1), (1, 1)]).is_err());
        assert!(PathTree::from_parts(names(), &[(0, 0), (0, 5)]).is_err());
        assert!(PathTree::from_parts(names(), &[(0, 0), (0, 1), (0, 1)]).is_err());
        let twice = Arena {
            text: "aa".into(),
            ends: vec![0, 1, 2],
        };
        assert!(PathTree::from_parts(twice, &[(0, 0)]).is_err());
    }
}
