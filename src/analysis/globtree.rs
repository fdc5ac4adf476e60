//! Path globs matched one name at a time, down a tree.
//!
//! `classify` gives every node of an image a rule by the globs its path
//! matches. Matching each whole path against one `GlobSet` costs a regex
//! run over the path, once per node (a third of a warm big-app run). But a
//! glob whose `**` stand as whole components (`/usr/share/doc/**`,
//! `**/node_modules/**/test/**`, `/usr/lib/**/*.a`) is a sequence of
//! one-name globs, with `**` for any number of names. So a directory's
//! progress through every glob is a small set of positions (a state), and
//! a child's is its parent's state stepped by the child's name: one match
//! of a short name against the globs that state can take next, memoized
//! by (state, name). Globs of any other shape (braces or classes that
//! could hold a `/`, a `**` inside a name, a relative start) are matched
//! whole, as before, by the caller's fallback set; `matches` says so.
//!
//! Semantics are globset's with `literal_separator(true)` over paths that
//! start with `/`: `**/x` matches `x` at any depth, `x/**` anything below
//! `x` (not `x` itself), `x/**/y` zero or more names between. The unit
//! test checks it against globset over many paths.

use std::sync::Arc;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use rustc_hash::FxHashMap as HashMap;

/// One component of a glob split at `/`.
#[derive(Debug, Clone, PartialEq)]
enum Comp {
    /// `**`: zero or more names.
    Any,
    /// A one-name glob (an index into `TreeGlobs::names`).
    Name(u32),
}

/// A state: for some globs, how far a path has come (glob, component).
type Pos = (u32, u32);

struct State {
    /// Positions, sorted, closed over `Any` (a position at `Any` also
    /// stands at the next component).
    at: Vec<Pos>,
    /// The positions at `Any`: they take any name and stay.
    stay: Vec<Pos>,
    /// The one-name globs the positions can take next (shared by the
    /// states that take the same names), and the positions each leads to.
    next: Arc<GlobSet>,
    next_to: Vec<Vec<Pos>>,
}

/// The state of a path's directory: see [`TreeGlobs::step`].
pub type StateId = u32;

/// A name's state, and the globs its path matches.
type Step = (StateId, Box<[u32]>);

pub struct TreeGlobs {
    /// Each glob's components; `None` for one matched whole by the caller.
    globs: Vec<Option<Vec<Comp>>>,
    /// The one-name globs, compiled.
    names: Vec<Glob>,
    /// A set of one-name globs (sorted indexes into `names`), compiled.
    sets: HashMap<Vec<u32>, Arc<GlobSet>>,
    states: Vec<State>,
    by_at: HashMap<Vec<Pos>, StateId>,
    /// By directory state and the one-name globs a name matched: the
    /// name's state and the globs its path matches.
    moves: HashMap<(StateId, Box<[usize]>), Step>,
    /// The same by name (names repeat: `lib`, `index.js`, `__init__.py`),
    /// by the caller's id for the name.
    memo: Vec<HashMap<u32, Step>>,
    memoized: usize,
    scratch: Vec<usize>,
}

/// The components of `pattern`, if it has the shape this matcher takes.
fn split(pattern: &str) -> Option<Vec<(bool, &str)>> {
    if pattern.contains(['{', '[', '\\']) {
        return None;
    }
    let rest = if pattern == "**" {
        return Some(vec![(true, "")]);
    } else if let Some(r) = pattern.strip_prefix("**/") {
        Some((true, r))
    } else {
        pattern.strip_prefix('/').map(|r| (false, r))
    };
    let (lead, rest) = rest?;
    let mut out = Vec::new();
    if lead {
        out.push((true, ""));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() || (part.contains("**") && *part != "**") {
            return None;
        }
        if *part == "**" {
            if i + 1 == parts.len() {
                // `x/**`: at least one more name.
                out.push((false, "*"));
            }
            out.push((true, ""));
        } else {
            out.push((false, part));
        }
    }
    Some(out)
}

fn name_glob(name: &str) -> Option<globset::Glob> {
    GlobBuilder::new(name).literal_separator(true).build().ok()
}

impl TreeGlobs {
    /// Globs in the order the caller numbers them.
    pub fn new(patterns: &[&str]) -> TreeGlobs {
        let mut names: Vec<&str> = Vec::new();
        let mut compiled: Vec<Glob> = Vec::new();
        let globs = patterns
            .iter()
            .map(|p| {
                let comps = split(p)?;
                let mut out = Vec::with_capacity(comps.len());
                for (any, name) in comps {
                    if any {
                        out.push(Comp::Any);
                    } else {
                        let i = match names.iter().position(|n| *n == name) {
                            Some(i) => i,
                            None => {
                                compiled.push(name_glob(name)?);
                                names.push(name);
                                names.len() - 1
                            }
                        };
                        out.push(Comp::Name(i as u32));
                    }
                }
                Some(out)
            })
            .collect();
        let mut t = TreeGlobs {
            globs,
            names: compiled,
            sets: HashMap::default(),
            states: Vec::new(),
            by_at: HashMap::default(),
            moves: HashMap::default(),
            memo: Vec::new(),
            memoized: 0,
            scratch: Vec::new(),
        };
        let start: Vec<Pos> = (0..t.globs.len())
            .filter(|&g| t.globs[g].is_some())
            .map(|g| (g as u32, 0))
            .collect();
        t.intern(start);
        t
    }

    /// Whether glob `g` is matched here (else the caller matches it whole).
    pub fn handles(&self, g: usize) -> bool {
        self.globs[g].is_some()
    }

    /// The state of the root directory.
    pub fn root(&self) -> StateId {
        0
    }

    fn comps(&self, g: u32) -> &[Comp] {
        self.globs[g as usize].as_deref().unwrap_or(&[])
    }

    fn intern(&mut self, mut at: Vec<Pos>) -> StateId {
        // Close over `Any` (each added position is checked in turn).
        let mut i = 0;
        while i < at.len() {
            let (g, k) = at[i];
            if self.comps(g).get(k as usize) == Some(&Comp::Any) {
                at.push((g, k + 1));
            }
            i += 1;
        }
        at.sort_unstable();
        at.dedup();
        if let Some(&id) = self.by_at.get(&at) {
            return id;
        }
        let mut steps: Vec<(u32, Pos)> = at
            .iter()
            .filter_map(|&(g, k)| match self.comps(g).get(k as usize) {
                Some(&Comp::Name(n)) => Some((n, (g, k + 1))),
                _ => None,
            })
            .collect();
        steps.sort_unstable();
        let mut names: Vec<u32> = Vec::new();
        let mut next_to: Vec<Vec<Pos>> = Vec::new();
        for (n, to) in steps {
            if names.last() != Some(&n) {
                names.push(n);
                next_to.push(Vec::new());
            }
            if let Some(last) = next_to.last_mut() {
                last.push(to);
            }
        }
        let next = match self.sets.get(&names) {
            Some(set) => set.clone(),
            None => {
                let mut b = GlobSetBuilder::new();
                for &n in &names {
                    b.add(self.names[n as usize].clone());
                }
                let set = Arc::new(b.build().unwrap_or_else(|_| GlobSet::empty()));
                self.sets.insert(names, set.clone());
                set
            }
        };
        let stay = at
            .iter()
            .copied()
            .filter(|&(g, k)| self.comps(g).get(k as usize) == Some(&Comp::Any))
            .collect();
        let id = self.states.len() as StateId;
        self.states.push(State {
            stay,
            at: at.clone(),
            next,
            next_to,
        });
        self.by_at.insert(at, id);
        id
    }

    /// The state of `name` in a directory of state `dir`, and the globs
    /// (of those [`handles`](Self::handles) says) its path matches. `sym`
    /// is the caller's id for `name`: the same id for the same name, and
    /// for no other (the image tree's name ids).
    pub fn step(&mut self, dir: StateId, sym: u32, name: &str) -> (StateId, &[u32]) {
        let d = dir as usize;
        if self.memo.get(d).is_none_or(|m| !m.contains_key(&sym)) {
            self.states[d].next.matches_into(name, &mut self.scratch);
            let key = (dir, Box::<[usize]>::from(&self.scratch[..]));
            let (id, matched) = match self.moves.get(&key) {
                Some(m) => m.clone(),
                None => {
                    let state = &self.states[d];
                    let mut at = state.stay.clone();
                    at.extend(self.scratch.iter().flat_map(|&i| &state.next_to[i]));
                    let id = self.intern(at);
                    let matched: Box<[u32]> = self.states[id as usize]
                        .at
                        .iter()
                        .filter(|&&(g, k)| k as usize == self.comps(g).len())
                        .map(|&(g, _)| g)
                        .collect();
                    self.moves.insert(key, (id, matched.clone()));
                    (id, matched)
                }
            };
            // Bound the memo on trees of very many distinct names.
            if self.memoized >= 1 << 20 {
                self.memo.iter_mut().for_each(HashMap::clear);
                self.memoized = 0;
            }
            if self.memo.len() <= d {
                self.memo.resize_with(d + 1, HashMap::default);
            }
            self.memo[d].insert(sym, (id, matched));
            self.memoized += 1;
        }
        let (id, matched) = &self.memo[d][&sym];
        (*id, matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path of a tree built from `names`, to `depth`.
    fn paths(names: &[&str], depth: usize) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = vec![vec![]];
        let mut level: Vec<Vec<String>> = vec![vec![]];
        for _ in 0..depth {
            let mut next = Vec::new();
            for p in &level {
                for n in names {
                    let mut q = p.clone();
                    q.push(n.to_string());
                    next.push(q);
                }
            }
            out.extend(next.iter().cloned());
            level = next;
        }
        out.retain(|p| !p.is_empty());
        out
    }

    /// Check the paths match here as globset matches them whole; give how
    /// many matched some glob.
    fn agree(patterns: &[&str], paths: Vec<Vec<String>>) -> usize {
        let whole = {
            let mut b = GlobSetBuilder::new();
            for p in patterns {
                b.add(GlobBuilder::new(p).literal_separator(true).build().unwrap());
            }
            b.build().unwrap()
        };
        let mut t = TreeGlobs::new(patterns);
        let mut syms: HashMap<String, u32> = HashMap::default();
        let (mut checked, mut hits) = (0, 0);
        for path in paths {
            let mut s = t.root();
            let mut got = Vec::new();
            for n in &path {
                let next_sym = syms.len() as u32;
                let sym = *syms.entry(n.clone()).or_insert(next_sym);
                let (next, m) = t.step(s, sym, n);
                got = m.to_vec();
                s = next;
            }
            let full = format!("/{}", path.join("/"));
            let mut want: Vec<u32> = whole
                .matches(&full)
                .into_iter()
                .filter(|&g| t.handles(g))
                .map(|g| g as u32)
                .collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "{full}");
            checked += 1;
            hits += usize::from(!got.is_empty());
        }
        assert!(checked > 1000);
        hits
    }

    #[test]
    fn matches_as_globset_matches_whole_paths() {
        let patterns = [
            "/usr/share/doc/**",
            "**/node_modules/**/test/**",
            "**/node_modules/.cache/**",
            "/usr/lib/**/*.a",
            "**/*.o",
            "**/Makefile",
            "/usr/lib/go-*/**",
            "/home/*/.cache/pip/**",
            "/var/cache/debconf/*-old",
            "/tmp/**",
            "/usr/local/bin/npm",
            "**/site-packages/**/tests/**",
            "**",
            "/usr/**/doc",
            "**/a/**/b/*.o",
            "/usr/lib/python3*/test/**",
        ];
        let names = [
            "usr",
            "share",
            "doc",
            "lib",
            "x.a",
            "node_modules",
            "test",
            ".cache",
            "a.o",
            "Makefile",
            "go-1.19",
            "tmp",
            "home",
            "pip",
            "b",
            "a",
            "f-old",
            "python3.11",
            "site-packages",
            "tests",
        ];
        assert!(agree(&patterns, paths(&names, 4)) > 10_000);
        let mut t = TreeGlobs::new(&patterns);
        assert!((0..patterns.len()).all(|g| t.handles(g)));
        // A memoized step gives what the first did.
        let first = t.step(t.root(), 7, "tmp").1.to_vec();
        assert_eq!(t.step(t.root(), 7, "tmp").1, &first[..]);
    }

    #[test]
    fn the_builtin_rules_are_matched_here_and_as_globset_matches_them() {
        let rules = crate::analysis::classify::RuleSet::builtin().rules;
        let patterns: Vec<&str> = rules
            .iter()
            .flat_map(|r| r.paths.iter().map(String::as_str))
            .collect();
        let t = TreeGlobs::new(&patterns);
        let whole: Vec<&&str> = (0..patterns.len())
            .filter(|&g| !t.handles(g))
            .map(|g| &patterns[g])
            .collect();
        assert!(whole.is_empty(), "matched whole: {whole:?}");
        // Names from the globs themselves, and names their wildcards take.
        let mut names: Vec<String> = patterns
            .iter()
            .flat_map(|p| p.split('/'))
            .filter(|c| !c.is_empty() && !c.contains(['*', '?']))
            .map(String::from)
            .collect();
        names.extend(
            [
                "x.o",
                "go-1.19",
                "python3.11",
                "a-old",
                "config-3.11",
                "m.log",
                "lib.a",
                "f.go",
            ]
            .map(String::from),
        );
        names.sort();
        names.dedup();
        // Random paths, one to seven names deep (a fixed LCG).
        let mut seed = 7u64;
        let mut pick = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let sample: Vec<Vec<String>> = (0..40_000)
            .map(|_| {
                let depth = 1 + pick(7);
                (0..depth)
                    .map(|_| names[pick(names.len())].clone())
                    .collect()
            })
            .collect();
        let hits = agree(&patterns, sample);
        assert!(hits > 5_000, "only {hits} paths matched a glob");
    }

    #[test]
    fn other_shapes_are_left_to_the_caller() {
        let t = TreeGlobs::new(&[
            "*.log",
            "/usr/{lib,share}/**",
            "/a/b**",
            "a/b",
            "/a//b",
            "/x/[ab]",
        ]);
        assert!((0..6).all(|g| !t.handles(g)));
    }
}
