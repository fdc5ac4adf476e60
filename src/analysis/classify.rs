//! What each byte is: every path of the image gets at most one category
//! from data-driven rules (`assets/rules/builtin.toml` plus the user's).

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::globtree::{StateId, TreeGlobs};
use super::langpm;
use super::packages::Packages;
use super::packages::verdict::{self, BuildOnly};
use crate::image::Image;
use crate::index::tree::{NodeId, ROOT};

/// The kinds of bytes layerscope tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Toolchain,
    PackageCache,
    BuildCache,
    Source,
    Docs,
    Tests,
    LogsTemp,
    /// Language package managers' own copies (pip, setuptools and wheel in
    /// site-packages; a global npm, yarn, pnpm, corepack): apart from the
    /// toolchain, since a runtime venv legitimately ships pip.
    PackageManager,
    Runtime,
}

impl Category {
    /// How many categories there are.
    pub const COUNT: usize = 9;

    pub const ALL: [Category; Category::COUNT] = [
        Category::Toolchain,
        Category::PackageCache,
        Category::BuildCache,
        Category::Source,
        Category::Docs,
        Category::Tests,
        Category::LogsTemp,
        Category::PackageManager,
        Category::Runtime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Toolchain => "toolchain",
            Category::PackageCache => "package-cache",
            Category::BuildCache => "build-cache",
            Category::Source => "source",
            Category::Docs => "docs",
            Category::Tests => "tests",
            Category::LogsTemp => "logs-temp",
            Category::PackageManager => "package-manager",
            Category::Runtime => "runtime",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Left behind by building: what a multi-stage build would not ship.
    pub fn is_build_residue(self) -> bool {
        matches!(
            self,
            Category::Toolchain | Category::PackageCache | Category::BuildCache | Category::Source
        )
    }
}

/// One classification rule (see `assets/rules/builtin.toml` for the fields).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub category: Category,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub fix: String,
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub markers: Vec<String>,
    #[serde(default)]
    pub distros: Vec<String>,
    /// Applies only when this file of the image contains this text
    /// (e.g. a JDK's `release` file listing `jdk.compiler`).
    #[serde(default)]
    pub when: Option<When>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    pub file: String,
    pub contains: String,
}

#[derive(Debug, Deserialize)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<Rule>,
}

const BUILTIN: &str = include_str!("../../assets/rules/builtin.toml");

/// An ordered list of rules: the first that matches wins.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// The built-in rules.
    pub fn builtin() -> RuleSet {
        // The built-in file is part of the binary and checked by tests.
        let file: RuleFile = toml::from_str(BUILTIN).unwrap_or(RuleFile { rule: Vec::new() });
        RuleSet { rules: file.rule }
    }

    /// Built-ins with the user's rules: a user rule with a built-in's id
    /// replaces it in place; new rules go first, so they win.
    pub fn with_user(user: &[Rule]) -> RuleSet {
        let mut set = RuleSet::builtin();
        let mut new = Vec::new();
        for r in user {
            match set.rules.iter_mut().find(|b| b.id == r.id) {
                Some(b) => *b = r.clone(),
                None => new.push(r.clone()),
            }
        }
        new.extend(set.rules);
        RuleSet { rules: new }
    }

    /// Check every glob compiles; the error names the rule.
    pub fn validate(&self) -> Result<(), String> {
        for r in &self.rules {
            for g in r.paths.iter().chain(&r.packages) {
                glob(g).map_err(|e| format!("rule {}: bad pattern {g:?}: {e}", r.id))?;
            }
        }
        Ok(())
    }
}

fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

/// The result: a rule (or none, meaning runtime) for every node.
#[derive(Debug, Clone, Default)]
pub struct Classes {
    /// The rules that applied to this image (distro filter passed).
    pub rules: Vec<Rule>,
    /// Rule index per node; `NO_RULE` for runtime.
    pub node_rule: Vec<u16>,
    pub packages: Packages,
    /// Which packages only the build needed (the package graph's verdict).
    pub build: BuildOnly,
    /// Apps' node_modules directories with no lock file to tell their
    /// devDependencies apart.
    pub unlocked_node_modules: Vec<NodeId>,
}

pub const NO_RULE: u16 = u16::MAX;

impl Classes {
    pub fn category(&self, node: NodeId) -> Category {
        self.rule(node).map_or(Category::Runtime, |r| r.category)
    }

    pub fn rule(&self, node: NodeId) -> Option<&Rule> {
        match self.node_rule.get(node as usize) {
            Some(&r) if r != NO_RULE => self.rules.get(r as usize),
            _ => None,
        }
    }
}

/// The distro identifiers of an image: os-release `ID` and `ID_LIKE`.
pub fn distro_ids(image: &Image) -> Vec<String> {
    let Some(text) = image
        .captured_file("etc/os-release")
        .or_else(|| image.captured_file("usr/lib/os-release"))
    else {
        return if image.captured_file("lib/apk/db/installed").is_some() {
            vec!["alpine".into()]
        } else {
            Vec::new()
        };
    };
    let text = String::from_utf8_lossy(text);
    let mut ids = Vec::new();
    for key in ["ID", "ID_LIKE"] {
        if let Some(v) = super::os::os_release_field(&text, key) {
            ids.extend(v.split_whitespace().map(|s| s.to_lowercase()));
        }
    }
    ids
}

/// The rule id that build-only packages no other rule names get.
pub const BUILD_DEPS: &str = "build-deps";
/// The rule ids given to files that language package managers' records name.
pub const LANGUAGE_PACKAGE_MANAGERS: &str = "language-package-managers";
pub const NPM_DEV_DEPENDENCIES: &str = "npm-dev-dependencies";

/// Classify every node of the image. `base_layers`: how many bottom layers
/// came from the base image (its packages are runtime roots).
pub fn classify(
    image: &Image,
    ruleset: &RuleSet,
    packages: impl FnOnce() -> Packages + Send,
    base_layers: usize,
) -> Classes {
    let distros = distro_ids(image);
    let rules: Vec<Rule> = ruleset
        .rules
        .iter()
        .filter(|r| r.distros.is_empty() || r.distros.iter().any(|d| distros.contains(d)))
        .filter(|r| {
            r.when.as_ref().is_none_or(|w| {
                image
                    .captured_file(w.file.trim_start_matches('/'))
                    .is_some_and(|b| String::from_utf8_lossy(b).contains(&w.contains))
            })
        })
        .cloned()
        .collect();
    let category_of = |r: u16| (r != NO_RULE).then(|| rules[r as usize].category);
    // The package graph and the path rules do not depend on each other
    // until the end: one core each.
    let ((packages, build, package_rule), by_path) = std::thread::scope(|s| {
        let graph = s.spawn(|| package_verdict(image, &rules, packages(), base_layers));
        let by_path = path_rules(image, &rules);
        let graph = graph
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (graph, by_path)
    });
    let mut node_rule = vec![NO_RULE; image.tree.len()];
    for (node, (rule, paths)) in node_rule.iter_mut().zip(&by_path).enumerate().skip(1) {
        let owner = packages.owner_index(node as NodeId);
        let by_package = owner.map_or(NO_RULE, |o| package_rule[o]);
        *rule = if by_package != NO_RULE {
            by_package
        } else if owner.is_some_and(|o| !build.is_build_only(o)) {
            // A kept package's files are not toolchain by path alone.
            paths.not_toolchain
        } else {
            paths.any
        };
    }
    // What language package managers recorded: their own files, and
    // devDependencies. Residue rules (caches) inside stay as they are.
    let rule_of = |id: &str| rules.iter().position(|r| r.id == id).map(|i| i as u16);
    let overridable = |r: u16| category_of(r).is_none_or(|c| !c.is_build_residue());
    if let Some(lpm) = rule_of(LANGUAGE_PACKAGE_MANAGERS) {
        for n in langpm::pip_tool_files(image) {
            if overridable(node_rule[n as usize]) && packages.owner_index(n).is_none() {
                node_rule[n as usize] = lpm;
            }
        }
    }
    let modules = langpm::node_modules(image);
    if let Some(dev) = rule_of(NPM_DEV_DEPENDENCIES) {
        for &n in &modules.dev {
            if overridable(node_rule[n as usize]) {
                node_rule[n as usize] = dev;
            }
        }
    }
    Classes {
        rules,
        node_rule,
        packages,
        build,
        unlocked_node_modules: modules.unlocked,
    }
}

/// The package graph's side: which packages only the build needed, and the
/// rule each package gives its files (`NO_RULE`: none).
fn package_verdict(
    image: &Image,
    rules: &[Rule],
    packages: Packages,
    base_layers: usize,
) -> (Packages, BuildOnly, Vec<u16>) {
    // Package globs name seeds (a toolchain rule: build tools) and
    // keep-lists (a runtime rule); the graph decides the rest.
    let (pkg_set, pkg_rule) = build_set(rules, |r| &r.packages);
    let named: Vec<u16> = packages
        .names
        .iter()
        .map(|name| first_match(&pkg_set, &pkg_rule, name))
        .collect();
    let category_of = |r: u16| (r != NO_RULE).then(|| rules[r as usize].category);
    let mut seed: Vec<bool> = named
        .iter()
        .map(|&r| category_of(r) == Some(Category::Toolchain))
        .collect();
    let keep: Vec<bool> = named
        .iter()
        .map(|&r| category_of(r) == Some(Category::Runtime))
        .collect();
    // `apk add --virtual .build-deps gcc ...` names its build tools (a
    // keep rule still wins).
    let index: std::collections::HashMap<&str, usize> = packages
        .names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    for (i, p) in packages.db.iter().enumerate() {
        if p.virtual_group && p.name.contains("build") && !keep[i] {
            seed[i] = true;
            for name in p.depends.iter().flatten() {
                if let Some(&j) = index.get(name.as_str())
                    && !keep[j]
                {
                    seed[j] = true;
                }
            }
        }
    }
    let build = verdict::sweep(image, &packages, seed, &keep, base_layers);
    let build_deps = rules
        .iter()
        .position(|r| r.id == BUILD_DEPS)
        .map_or(NO_RULE, |i| i as u16);
    let package_rule: Vec<u16> = named
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let toolchain = category_of(r) == Some(Category::Toolchain);
            match (build.is_build_only(i), toolchain) {
                (true, true) => r,
                (true, false) => build_deps,
                // A build tool the runtime needs: its files are what they are.
                (false, true) => NO_RULE,
                (false, false) => r,
            }
        })
        .collect();
    (packages, build, package_rule)
}

/// What a node's path and markers say, before its package has its say:
/// the first rule of all, and the first that is not a toolchain rule.
#[derive(Clone, Copy)]
struct ByPath {
    any: u16,
    not_toolchain: u16,
}

/// [`ByPath`] for every node, by a depth-first walk carrying each
/// directory's glob state, its path (for the globs matched whole, if any)
/// and the rule a marker gave it.
fn path_rules(image: &Image, rules: &[Rule]) -> Vec<ByPath> {
    let paths = PathGlobs::new(rules);
    let markers: Vec<(u16, &str)> = rules
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.markers.iter().map(move |m| (i as u16, m.as_str())))
        .collect();
    let toolchain = |r: u16| r != NO_RULE && rules[r as usize].category == Category::Toolchain;
    let none = ByPath {
        any: NO_RULE,
        not_toolchain: NO_RULE,
    };
    let mut out = vec![none; image.tree.len()];
    let mut tree = paths.tree;
    let whole = !paths.whole_rule.is_empty();
    let mut stack: Vec<(NodeId, StateId, String, u16)> =
        vec![(ROOT, tree.root(), String::new(), NO_RULE)];
    let mut found = Vec::new();
    let mut path = String::new();
    while let Some((dir, dir_state, dir_path, inherited)) = stack.pop() {
        let mut marker_rule = inherited;
        for &(ri, name) in &markers {
            if ri < marker_rule
                && image
                    .tree
                    .find_child(dir, name)
                    .is_some_and(|n| image.fs[n as usize].is_some())
            {
                marker_rule = ri;
            }
        }
        for child in image.tree.children(dir) {
            let name = image.tree.name(child);
            let (state, matched) = tree.step(dir_state, image.tree.name_sym(child), name);
            let mut by = none;
            let mut take = |r: u16| {
                by.any = by.any.min(r);
                if !toolchain(r) {
                    by.not_toolchain = by.not_toolchain.min(r);
                }
            };
            take(marker_rule);
            for &g in matched {
                take(paths.tree_rule[g as usize]);
            }
            if whole {
                path.clear();
                path.push_str(&dir_path);
                path.push('/');
                path.push_str(name);
                paths.whole.matches_into(path.as_str(), &mut found);
                for &g in &found {
                    take(paths.whole_rule[g]);
                }
            }
            out[child as usize] = by;
            if image.tree.children(child).next().is_some() {
                let child_path = if whole { path.clone() } else { String::new() };
                stack.push((child, state, child_path, marker_rule));
            }
        }
    }
    out
}

/// One GlobSet over a field of all rules, with the rule of each glob.
fn build_set(rules: &[Rule], field: impl Fn(&Rule) -> &Vec<String>) -> (GlobSet, Vec<u16>) {
    let mut b = GlobSetBuilder::new();
    let mut owner = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        for g in field(r) {
            if let Ok(glob) = glob(g) {
                b.add(glob);
                owner.push(i as u16);
            }
        }
    }
    (b.build().unwrap_or_else(|_| GlobSet::empty()), owner)
}

/// The rules' path globs: those [`TreeGlobs`] takes, matched name by name
/// down the tree, and the rest matched on whole paths; with the rule of
/// each.
struct PathGlobs {
    tree: TreeGlobs,
    tree_rule: Vec<u16>,
    whole: GlobSet,
    whole_rule: Vec<u16>,
}

impl PathGlobs {
    fn new(rules: &[Rule]) -> PathGlobs {
        let mut patterns: Vec<&str> = Vec::new();
        let mut rule_of = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            for g in r.paths.iter().filter(|g| glob(g).is_ok()) {
                patterns.push(g);
                rule_of.push(i as u16);
            }
        }
        let tree = TreeGlobs::new(&patterns);
        let mut b = GlobSetBuilder::new();
        let mut whole_rule = Vec::new();
        for (g, p) in patterns.iter().enumerate() {
            if !tree.handles(g)
                && let Ok(glob) = glob(p)
            {
                b.add(glob);
                whole_rule.push(rule_of[g]);
            }
        }
        PathGlobs {
            tree,
            tree_rule: rule_of,
            whole: b.build().unwrap_or_else(|_| GlobSet::empty()),
            whole_rule,
        }
    }
}

fn first_match(set: &GlobSet, owner: &[u16], s: &str) -> u16 {
    set.matches(s)
        .into_iter()
        .map(|g| owner[g])
        .min()
        .unwrap_or(NO_RULE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_parse_and_compile() {
        let file: RuleFile = toml::from_str(BUILTIN).expect("builtin rules parse");
        assert!(file.rule.len() > 20);
        let set = RuleSet { rules: file.rule };
        set.validate().expect("globs compile");
        let mut ids: Vec<_> = set.rules.iter().map(|r| r.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), set.rules.len(), "rule ids are unique");
    }

    #[test]
    fn user_rules_override_by_id_and_win() {
        let user = vec![
            Rule {
                id: "docs".into(),
                category: Category::Runtime,
                description: String::new(),
                fix: String::new(),
                packages: vec![],
                paths: vec!["/usr/share/doc/**".into()],
                markers: vec![],
                distros: vec![],
                when: None,
            },
            Rule {
                id: "mine".into(),
                category: Category::Source,
                description: String::new(),
                fix: String::new(),
                packages: vec![],
                paths: vec!["/srv/**".into()],
                markers: vec![],
                distros: vec![],
                when: None,
            },
        ];
        let set = RuleSet::with_user(&user);
        assert_eq!(set.rules[0].id, "mine");
        let docs = set.rules.iter().find(|r| r.id == "docs").unwrap();
        assert_eq!(docs.category, Category::Runtime);
        assert_eq!(set.rules.len(), RuleSet::builtin().rules.len() + 1);
    }
}
