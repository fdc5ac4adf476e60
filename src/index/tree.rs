//! The path arena: every path seen in any layer is a node addressed by a
//! `NodeId`, with its name interned once. Layers refer to nodes, never to
//! strings, so merging layers and comparing images is integer arithmetic.

use rustc_hash::FxHashMap as HashMap;

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
#[derive(Debug, Default, Clone)]
pub struct PathTree {
    nodes: Vec<Node>,
    names: Vec<Box<str>>,
    name_ids: HashMap<Box<str>, Sym>,
    children: HashMap<(NodeId, Sym), NodeId>,
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

    pub fn intern(&mut self, name: &str) -> Sym {
        if let Some(&s) = self.name_ids.get(name) {
            return s;
        }
        let s = self.names.len() as Sym;
        let boxed: Box<str> = name.into();
        self.names.push(boxed.clone());
        self.name_ids.insert(boxed, s);
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
        if let Some(&id) = self.children.get(&(parent, sym)) {
            return id;
        }
        let id = self.nodes.len() as NodeId;
        let next = self.nodes[parent as usize].first_child;
        self.nodes.push(Node {
            parent,
            name: sym,
            first_child: 0,
            next_sibling: next,
        });
        self.nodes[parent as usize].first_child = id;
        self.children.insert((parent, sym), id);
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
            let sym = *self.name_ids.get(part)?;
            node = *self.children.get(&(node, sym))?;
        }
        Some(node)
    }

    pub fn find_child(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        let sym = *self.name_ids.get(name)?;
        self.children.get(&(parent, sym)).copied()
    }

    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        (id != ROOT).then(|| self.nodes[id as usize].parent)
    }

    pub fn name(&self, id: NodeId) -> &str {
        &self.names[self.nodes[id as usize].name as usize]
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
        struct Nodes<'a>(&'a [Node]);
        impl serde::Serialize for Nodes<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|n| (n.parent, n.name)))
            }
        }
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.names)?;
        t.serialize_element(&Nodes(&self.nodes))?;
        t.end()
    }
}

impl<'de> serde::Deserialize<'de> for PathTree {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (names, nodes): (Vec<Box<str>>, Vec<(NodeId, Sym)>) =
            serde::Deserialize::deserialize(d)?;
        PathTree::from_parts(names, &nodes).map_err(D::Error::custom)
    }
}

impl PathTree {
    /// Rebuild a tree from its names and (parent, name) pairs, checking that
    /// every parent precedes its child and every name exists.
    fn from_parts(names: Vec<Box<str>>, nodes: &[(NodeId, Sym)]) -> Result<Self, String> {
        if names.first().map(|n| n.as_ref()) != Some("") || nodes.first() != Some(&(ROOT, 0)) {
            return Err("path tree without its root".into());
        }
        let mut name_ids = HashMap::default();
        name_ids.reserve(names.len());
        for (i, n) in names.iter().enumerate() {
            if name_ids.insert(n.clone(), i as Sym).is_some() {
                return Err(format!("path tree names {n:?} twice"));
            }
        }
        let mut t = PathTree {
            nodes: Vec::with_capacity(nodes.len()),
            names,
            name_ids,
            children: HashMap::default(),
        };
        t.children.reserve(nodes.len());
        t.nodes.push(Node {
            parent: ROOT,
            name: 0,
            first_child: 0,
            next_sibling: 0,
        });
        for (i, &(parent, name)) in nodes.iter().enumerate().skip(1) {
            let id = i as NodeId;
            if parent >= id || name as usize >= t.names.len() {
                return Err(format!("path tree node {i} is out of order"));
            }
            if t.children.insert((parent, name), id).is_some() {
                return Err(format!("path tree node {i} is a duplicate"));
            }
            let next = t.nodes[parent as usize].first_child;
            t.nodes.push(Node {
                parent,
                name,
                first_child: 0,
                next_sibling: next,
            });
            t.nodes[parent as usize].first_child = id;
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
    }

    #[test]
    fn rejects_a_tree_whose_child_precedes_its_parent() {
        let names: Vec<Box<str>> = vec!["".into(), "a".into()];
        assert!(PathTree::from_parts(names.clone(), &[(0, 0), (2, 1), (1, 1)]).is_err());
        assert!(PathTree::from_parts(names, &[(0, 0), (0, 5)]).is_err());
    }
}
