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
    /// Needed (Depends, Pre-Depends) by this package.
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
        if let Some(i) = self.by_name.get(name) {
            return std::slice::from_ref(i);
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

    /// Mark from `roots` through Depends and Pre-Depends (and Provides), and
    /// sweep. Recommends are followed only from the packages the image runs,
    /// Suggests never: a runtime stage installed with
    /// `--no-install-recommends` ships neither. `seed[i]`:
    /// package i is a build tool; a seed is a root only when the image runs
    /// it, and is otherwise kept only when a kept package depends on it
    /// (through any alternative: `awk | mawk` keeps both when both are
    /// installed, as apt does).
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
        // As apt's MarkPackage does: every installed package that satisfies
        // a dependency (each alternative, each provider) is kept, so the
        // sweep is exactly what `apt-get autoremove` would remove.
        loop {
            let mut progressed = false;
            while let Some(p) = queue.pop_front() {
                // What the image runs keeps its Recommends too: python3.11-
                // minimal only recommends python3.11, whose Depends are the
                // standard library a running python3 needs.
                let runs = kept[p] == Some(Kept::Root(Root::Runs));
                let pkg = &self.pkgs[p];
                let recommends = if runs { &pkg.recommends[..] } else { &[] };
                for group in pkg.depends.iter().chain(recommends) {
                    for c in self.candidates(group) {
                        if kept[c].is_none() {
                            kept[c] = Some(Kept::By(p));
                            queue.push_back(c);
                        }
                    }
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

    /// A hand-written database, a package a row: `name: depends` with the
    /// depends in dpkg's syntax (`a, b | c`), or `name` alone for a package
    /// that depends on nothing.
    fn db(rows: &[&str]) -> Vec<Package> {
        rows.iter()
            .map(|row| {
                let (name, depends) = row.split_once(':').unwrap_or((row, ""));
                Package {
                    name: name.trim().into(),
                    depends: parse_relations(depends),
                    ..Default::default()
                }
            })
            .collect()
    }

    /// The package of that name, to give it more than Depends.
    fn named<'a>(pkgs: &'a mut [Package], name: &str) -> &'a mut Package {
        pkgs.iter_mut().find(|p| p.name == name).expect("listed")
    }

    /// Build-only package names, sorted: what the sweep removes.
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
        let pkgs = db(&[
            "libc6",
            "build-essential: dpkg-dev, gcc",
            "dpkg-dev: perl, libc6",
            "gcc: libc6, libisl23",
            "libisl23: libc6",
            "perl: libperl5.36",
            "libperl5.36: libc6",
            "app-runtime: libc6",
        ]);
        let seeds = ["build-essential", "gcc", "dpkg-dev"];
        let roots = [
            ("libc6", Root::Essential),
            ("app-runtime", Root::Manual),
            ("build-essential", Root::Manual),
        ];
        let want = [
            "build-essential",
            "dpkg-dev",
            "gcc",
            "libisl23",
            "libperl5.36",
            "perl",
        ];
        assert_eq!(sweep(&pkgs, &seeds, &roots), want);
    }

    #[test]
    fn a_cycle_of_mutual_dependencies_is_swept() {
        // npm's node-* packages depend on each other.
        let pkgs = db(&[
            "nodejs: libnode",
            "libnode",
            "npm: node-a, nodejs",
            "node-a: node-b",
            "node-b: node-a, node-c",
            "node-c: node-b",
        ]);
        let roots = [("nodejs", Root::Manual), ("npm", Root::Manual)];
        let want = ["node-a", "node-b", "node-c", "npm"];
        assert_eq!(sweep(&pkgs, &["npm"], &roots), want);
    }

    #[test]
    fn alternatives_and_provides_keep_every_installed_candidate_as_apt_does() {
        // app needs "awk | mawk" and the virtual "mta".
        let mut pkgs = db(&[
            "app: awk | mawk, mta",
            "gawk",
            "mawk",
            "exim",
            "tool",
            "unrelated",
        ]);
        for (name, provides) in [
            ("gawk", "awk"),
            ("exim", "mta"),
            ("tool", "mta"),
            ("unrelated", "other"),
        ] {
            named(&mut pkgs, name).provides = vec![provides.into()];
        }
        // Every candidate stays, the seed among them: purging it would
        // leave apt with one less provider, and autoremove keeps it.
        assert_eq!(
            sweep(&pkgs, &["tool"], &[("app", Root::Manual)]),
            ["unrelated"]
        );
    }

    #[test]
    fn recommends_and_suggests_are_not_followed() {
        let mut pkgs = db(&["git: less", "less", "patch", "manpages", "git-doc"]);
        named(&mut pkgs, "git").recommends = parse_relations("patch, manpages");
        named(&mut pkgs, "git").suggests = parse_relations("git-doc");
        let got = sweep(&pkgs, &["patch"], &[("git", Root::Manual)]);
        assert_eq!(got, ["git-doc", "manpages", "patch"]);
    }

    #[test]
    fn what_the_image_runs_keeps_its_recommends() {
        let mut pkgs = db(&[
            "python3.11-minimal",
            "python3.11: libpython3.11-stdlib",
            "libpython3.11-stdlib",
            "libglib",
            "shared-mime-info",
        ]);
        named(&mut pkgs, "python3.11-minimal").recommends = parse_relations("python3.11");
        named(&mut pkgs, "libglib").recommends = parse_relations("shared-mime-info");
        let roots = [
            ("python3.11-minimal", Root::Runs),
            ("libglib", Root::Manual),
        ];
        assert_eq!(sweep(&pkgs, &[], &roots), ["shared-mime-info"]);
    }

    #[test]
    fn a_seed_a_runtime_package_depends_on_is_kept() {
        // gcc-12-base: a dependency of libgcc-s1, which everything needs.
        let pkgs = db(&[
            "libgcc-s1: gcc-12-base",
            "gcc-12-base",
            "gcc-12: gcc-12-base, cpp-12",
            "cpp-12: gcc-12-base",
        ]);
        let seeds = ["gcc-12-base", "gcc-12", "cpp-12"];
        let roots = [("libgcc-s1", Root::Essential), ("gcc-12", Root::Manual)];
        assert_eq!(sweep(&pkgs, &seeds, &roots), ["cpp-12", "gcc-12"]);
    }

    #[test]
    fn a_library_a_runtime_package_and_a_compiler_both_need_is_kept() {
        let pkgs = db(&[
            "python3.11: libexpat1",
            "libexpat1-dev: libexpat1",
            "libexpat1",
        ]);
        let roots = [("python3.11", Root::Runs), ("libexpat1-dev", Root::Manual)];
        assert_eq!(sweep(&pkgs, &["libexpat1-dev"], &roots), ["libexpat1-dev"]);
    }

    #[test]
    fn the_reason_names_the_package_that_pulled_it_in_and_the_seed() {
        let pkgs = db(&["build-essential: dpkg-dev", "dpkg-dev: perl", "perl"]);
        let g = Graph::new(&pkgs);
        let v = g.walk(&[true, true, false], &[Some(Root::Manual), None, None]);
        assert_eq!(v.pulled_by[2], Some(1));
        assert_eq!(v.seed_of[2], Some(0));
    }

    #[test]
    fn install_if_follows_its_conditions() {
        let mut pkgs = db(&["man-pages", "docs", "man-pages-doc"]);
        named(&mut pkgs, "man-pages-doc").install_if = vec!["man-pages".into(), "docs".into()];
        let roots = [("man-pages", Root::Manual), ("docs", Root::Manual)];
        assert!(sweep(&pkgs, &[], &roots).is_empty());
    }
}
