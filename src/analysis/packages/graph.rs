//! Which installed packages only the build needed, worked out as
//! `apt-get autoremove` does: mark everything the runtime roots reach,
//! sweep the rest. Asking "does anyone need this package" instead fails on
//! mutual dependencies (npm's node-* packages depend on each other).

use std::collections::{HashMap, VecDeque};

use super::control::{Alternatives, Package};

/// Why a package is a runtime root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// Installed by hand (no auto-installed record; apk's world).
    Manual,
    /// Part of the base image's layers.
    Base,
    /// Essential, protected or of priority required.
    Essential,
    /// Owns what the image runs (ENTRYPOINT/CMD, through PATH and links).
    Runs,
    /// Provides a shared library that code the image built links
    /// (a runtime library of a `-dev` package asked for by hand).
    Linked,
}

/// Why a package is kept (not build-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Root(Root),
    /// Needed (Depends, Pre-Depends, Recommends) by this package.
    By(usize),
}

/// The result of the walk, per package (indexes into the package list).
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub kept: Vec<Option<Kept>>,
    /// For build-only packages: the package that pulled it in (its nearest
    /// build-only dependant on a path from a seed), and that seed.
    pub pulled_by: Vec<Option<usize>>,
    pub seed_of: Vec<Option<usize>>,
}

impl Verdict {
    pub fn build_only(&self, i: usize) -> bool {
        self.kept[i].is_none()
    }
}

/// The dependency graph of the installed packages.
pub struct Graph<'a> {
    pub pkgs: &'a [Package],
    by_name: HashMap<&'a str, usize>,
    providers: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Graph<'a> {
    pub fn new(pkgs: &'a [Package]) -> Self {
        let mut by_name = HashMap::new();
        let mut providers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            by_name.entry(p.name.as_str()).or_insert(i);
            for v in &p.provides {
                providers.entry(v.as_str()).or_default().push(i);
            }
        }
        Graph {
            pkgs,
            by_name,
            providers,
        }
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The installed packages an alternative name resolves to: the package
    /// of that name, else every package providing it.
    fn resolve(&self, name: &str) -> &[usize] {
        if let Some((k, _)) = self.by_name.get_key_value(name) {
            // A real package; `providers` never holds a slice for it, so
            // point into by_name through a one-element lookup.
            return std::slice::from_ref(&self.by_name[k]);
        }
        self.providers.get(name).map_or(&[], |v| v.as_slice())
    }

    fn candidates(&self, group: &Alternatives) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for alt in group {
            for &c in self.resolve(alt) {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        out
    }

    /// Mark from `roots` and sweep. `seed[i]`: package i is a build tool; a
    /// seed is a root only when the image runs it, and is otherwise reached
    /// only through a hard dependency (a runtime package that Depends on
    /// it), never a Recommends.
    pub fn walk(&self, seed: &[bool], roots: &[Option<Root>]) -> Verdict {
        let n = self.pkgs.len();
        let mut kept: Vec<Option<Kept>> = vec![None; n];
        let mut queue = VecDeque::new();
        for i in 0..n {
            // A seed is a root only if the image runs it.
            if let Some(r) = roots[i]
                && (!seed[i] || r == Root::Runs)
            {
                kept[i] = Some(Kept::Root(r));
                queue.push_back(i);
            }
        }
        // Groups with several candidates wait until the plain walk is
        // done, so that a member marked meanwhile satisfies them.
        let mut pending: Vec<(usize, usize, bool)> = Vec::new(); // (package, group, hard)
        loop {
            while let Some(p) = queue.pop_front() {
                let pkg = &self.pkgs[p];
                let groups = pkg
                    .depends
                    .iter()
                    .map(|g| (g, true))
                    .chain(pkg.recommends.iter().map(|g| (g, false)));
                for (gi, (group, hard)) in groups.enumerate() {
                    let cands: Vec<usize> = self
                        .candidates(group)
                        .into_iter()
                        .filter(|&c| hard || !seed[c])
                        .collect();
                    if cands.iter().any(|&c| kept[c].is_some()) {
                        continue;
                    }
                    match cands.as_slice() {
                        [] => {}
                        [c] => {
                            kept[*c] = Some(Kept::By(p));
                            queue.push_back(*c);
                        }
                        _ => pending.push((p, gi, hard)),
                    }
                }
            }
            let mut progressed = false;
            for (p, gi, hard) in std::mem::take(&mut pending) {
                let pkg = &self.pkgs[p];
                let group = if gi < pkg.depends.len() {
                    &pkg.depends[gi]
                } else {
                    &pkg.recommends[gi - pkg.depends.len()]
                };
                let cands = self.candidates(group);
                if cands.iter().any(|&c| kept[c].is_some()) {
                    continue;
                }
                let pick = cands
                    .iter()
                    .copied()
                    .find(|&c| !seed[c])
                    .or_else(|| cands.first().copied().filter(|_| hard));
                if let Some(c) = pick {
                    kept[c] = Some(Kept::By(p));
                    queue.push_back(c);
                    progressed = true;
                }
            }
            // apk install_if: a package installed because all of these are.
            for i in 0..n {
                let cond = &self.pkgs[i].install_if;
                if kept[i].is_none()
                    && !cond.is_empty()
                    && cond
                        .iter()
                        .all(|c| self.resolve(c).iter().any(|&x| kept[x].is_some()))
                {
                    let by = self.resolve(&cond[0]).first().copied().unwrap_or(i);
                    kept[i] = Some(Kept::By(by));
                    queue.push_back(i);
                    progressed = true;
                }
            }
            if !progressed && queue.is_empty() {
                break;
            }
        }

        // Explain the sweep: walk from the seeds through build-only packages.
        let mut pulled_by = vec![None; n];
        let mut seed_of = vec![None; n];
        let mut queue = VecDeque::new();
        // Seeds asked for by hand first, so they are named as the reason;
        // then any seed nothing reached.
        let mut seeds: Vec<usize> = (0..n).filter(|&i| seed[i] && kept[i].is_none()).collect();
        seeds.sort_by_key(|&i| roots[i] != Some(Root::Manual));
        for s in seeds {
            if seed_of[s].is_some() {
                continue;
            }
            seed_of[s] = Some(s);
            queue.push_back(s);
            while let Some(p) = queue.pop_front() {
                let pkg = &self.pkgs[p];
                for group in pkg.depends.iter().chain(&pkg.recommends) {
                    for c in self.candidates(group) {
                        if kept[c].is_none() && seed_of[c].is_none() {
                            seed_of[c] = seed_of[p];
                            pulled_by[c] = Some(p);
                            queue.push_back(c);
                        }
                    }
                }
            }
        }
        Verdict {
            kept,
            pulled_by,
            seed_of,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::packages::control::parse_relations;

    fn pkg(name: &str, depends: &str, recommends: &str, provides: &str) -> Package {
        Package {
            name: name.into(),
            depends: parse_relations(depends),
            recommends: parse_relations(recommends),
            provides: parse_relations(provides).into_iter().flatten().collect(),
            ..Default::default()
        }
    }

    /// Build-only package names for a hand-written database.
    fn sweep(pkgs: &[Package], seeds: &[&str], roots: &[(&str, Root)]) -> Vec<String> {
        let g = Graph::new(pkgs);
        let seed: Vec<bool> = pkgs
            .iter()
            .map(|p| seeds.contains(&p.name.as_str()))
            .collect();
        let mut r = vec![None; pkgs.len()];
        for (name, why) in roots {
            r[g.index(name).expect("root exists")] = Some(*why);
        }
        let v = g.walk(&seed, &r);
        let mut out: Vec<String> = (0..pkgs.len())
            .filter(|&i| v.build_only(i))
            .map(|i| pkgs[i].name.clone())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn depends_chain_from_a_seed_is_build_only() {
        // build-essential -> dpkg-dev -> perl -> libperl; the app needs libc only.
        let pkgs = [
            pkg("libc6", "", "", ""),
            pkg("build-essential", "dpkg-dev, gcc", "", ""),
            pkg("dpkg-dev", "perl, libc6", "", ""),
            pkg("gcc", "libc6, libisl23", "", ""),
            pkg("libisl23", "libc6", "", ""),
            pkg("perl", "libperl5.36", "", ""),
            pkg("libperl5.36", "libc6", "", ""),
            pkg("app-runtime", "libc6", "", ""),
        ];
        let got = sweep(
            &pkgs,
            &["build-essential", "gcc", "dpkg-dev"],
            &[
                ("libc6", Root::Essential),
                ("app-runtime", Root::Manual),
                ("build-essential", Root::Manual),
            ],
        );
        assert_eq!(
            got,
            [
                "build-essential",
                "dpkg-dev",
                "gcc",
                "libisl23",
                "libperl5.36",
                "perl"
            ]
        );
    }

    #[test]
    fn a_cycle_of_mutual_dependencies_is_swept() {
        // npm's node-* packages depend on each other.
        let pkgs = [
            pkg("nodejs", "libnode", "", ""),
            pkg("libnode", "", "", ""),
            pkg("npm", "node-a, nodejs", "", ""),
            pkg("node-a", "node-b", "", ""),
            pkg("node-b", "node-a, node-c", "", ""),
            pkg("node-c", "node-b", "", ""),
        ];
        let got = sweep(
            &pkgs,
            &["npm"],
            &[("nodejs", Root::Manual), ("npm", Root::Manual)],
        );
        assert_eq!(got, ["node-a", "node-b", "node-c", "npm"]);
    }

    #[test]
    fn provides_and_alternatives_prefer_marked_then_non_seed() {
        let pkgs = [
            // app needs "mail-transport-agent": provided by exim (kept) or a seed.
            pkg("app", "awk | mawk, mta", "", ""),
            pkg("gawk", "", "", "awk"),
            pkg("mawk", "", "", "awk"),
            pkg("exim", "", "", "mta"),
            pkg("tool", "", "", "mta"),
            pkg("other", "mawk", "", ""),
        ];
        let got = sweep(
            &pkgs,
            &["tool"],
            &[("app", Root::Manual), ("other", Root::Manual)],
        );
        // `awk | mawk` waits; mawk is marked by `other`, so gawk is not needed.
        assert_eq!(got, ["gawk", "tool"]);
    }

    #[test]
    fn recommends_are_kept_but_never_into_seeds_and_suggests_are_ignored() {
        let mut git = pkg("git", "", "less, patch", "");
        git.suggests = parse_relations("git-doc");
        let pkgs = [
            git,
            pkg("less", "", "", ""),
            pkg("patch", "", "", ""),
            pkg("git-doc", "", "", ""),
        ];
        let got = sweep(&pkgs, &["patch"], &[("git", Root::Manual)]);
        assert_eq!(got, ["git-doc", "patch"]);
    }

    #[test]
    fn a_seed_a_runtime_package_depends_on_is_kept() {
        // gcc-12-base: a dependency of libgcc-s1, which everything needs.
        let pkgs = [
            pkg("libgcc-s1", "gcc-12-base", "", ""),
            pkg("gcc-12-base", "", "", ""),
            pkg("gcc-12", "gcc-12-base, cpp-12", "", ""),
            pkg("cpp-12", "gcc-12-base", "", ""),
        ];
        let got = sweep(
            &pkgs,
            &["gcc-12-base", "gcc-12", "cpp-12"],
            &[("libgcc-s1", Root::Essential), ("gcc-12", Root::Manual)],
        );
        assert_eq!(got, ["cpp-12", "gcc-12"]);
    }

    #[test]
    fn a_library_a_runtime_package_and_a_compiler_both_need_is_kept() {
        let pkgs = [
            pkg("python3.11", "libexpat1", "", ""),
            pkg("libexpat1-dev", "libexpat1", "", ""),
            pkg("libexpat1", "", "", ""),
        ];
        let got = sweep(
            &pkgs,
            &["libexpat1-dev"],
            &[("python3.11", Root::Runs), ("libexpat1-dev", Root::Manual)],
        );
        assert_eq!(got, ["libexpat1-dev"]);
    }

    #[test]
    fn the_reason_names_the_package_that_pulled_it_in_and_the_seed() {
        let pkgs = [
            pkg("build-essential", "dpkg-dev", "", ""),
            pkg("dpkg-dev", "perl", "", ""),
            pkg("perl", "", "", ""),
        ];
        let g = Graph::new(&pkgs);
        let v = g.walk(&[true, true, false], &[Some(Root::Manual), None, None]);
        assert_eq!(v.pulled_by[2], Some(1));
        assert_eq!(v.seed_of[2], Some(0));
    }

    #[test]
    fn install_if_follows_its_conditions() {
        let mut docs = pkg("man-pages-doc", "", "", "");
        docs.install_if = vec!["man-pages".into(), "docs".into()];
        let pkgs = [pkg("man-pages", "", "", ""), pkg("docs", "", "", ""), docs];
        let got = sweep(
            &pkgs,
            &[],
            &[("man-pages", Root::Manual), ("docs", Root::Manual)],
        );
        assert!(got.is_empty());
    }
}
