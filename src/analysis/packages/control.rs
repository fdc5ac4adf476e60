//! Package metadata as the package managers record it: dpkg's control
//! paragraphs (`status`, distroless `status.d/<pkg>`), apt's
//! `extended_states`, apk's `installed` and `world`. Pure parsing; the
//! graph walk is in [`super::graph`].

/// One dependency alternative: a package (or virtual) name, with version
/// constraints and `:any`/`:native` qualifiers dropped. A dependency on
/// any version is satisfied by any installed package of that name or
/// providing it: the image is consistent as installed.
pub type Alternatives = Vec<String>;

/// One installed package, as the graph needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Depends and Pre-Depends: every group must be satisfied.
    pub depends: Vec<Alternatives>,
    pub recommends: Vec<Alternatives>,
    /// Parsed for completeness; never followed (apt's
    /// `APT::AutoRemove::SuggestsImportant=false`).
    pub suggests: Vec<Alternatives>,
    /// Virtual names this package provides (`so:`, `cmd:` for apk).
    pub provides: Vec<String>,
    /// apk `install_if`: installed automatically once all of these are.
    pub install_if: Vec<String>,
    /// dpkg Essential/Protected, or Priority: required.
    pub essential: bool,
    pub protected: bool,
    pub required: bool,
    /// apk virtual package (`apk add --virtual NAME`).
    pub virtual_group: bool,
}

/// Split a control file into paragraphs of (field, value), continuation
/// lines joined with newlines.
pub fn paragraphs(text: &str) -> Vec<Vec<(&str, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn field<'a>(p: &'a [(&str, String)], name: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `a (>= 1), b | c:any [amd64]` -> `[[a], [b, c]]`.
pub fn parse_relations(v: &str) -> Vec<Alternatives> {
    v.split(',')
        .map(|group| {
            group
                .split('|')
                .filter_map(|alt| {
                    let name = alt
                        .trim()
                        .split(|c: char| c.is_whitespace() || c == '(' || c == '[' || c == '<')
                        .next()
                        .unwrap_or("");
                    let name = name.split(':').next().unwrap_or(name).trim();
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect::<Vec<_>>()
        })
        .filter(|g| !g.is_empty())
        .collect()
}

/// One dpkg paragraph; `None` unless it is `install ok installed` (a
/// `status.d` paragraph has no Status field: it is installed by being there).
pub fn dpkg_package(p: &[(&str, String)]) -> Option<Package> {
    let name = field(p, "Package")?.to_string();
    if let Some(status) = field(p, "Status")
        && status.split_whitespace().collect::<Vec<_>>() != ["install", "ok", "installed"]
    {
        return None;
    }
    let rel = |f: &str| field(p, f).map(parse_relations).unwrap_or_default();
    let mut depends = rel("Pre-Depends");
    depends.extend(rel("Depends"));
    let yes = |f: &str| field(p, f).is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    Some(Package {
        version: field(p, "Version").unwrap_or("").to_string(),
        depends,
        recommends: rel("Recommends"),
        suggests: rel("Suggests"),
        provides: rel("Provides").into_iter().flatten().collect(),
        install_if: Vec::new(),
        essential: yes("Essential"),
        protected: yes("Protected"),
        required: field(p, "Priority").is_some_and(|v| v.eq_ignore_ascii_case("required")),
        virtual_group: false,
        name,
    })
}

/// Installed packages of a dpkg `status` file (or a `status.d` file).
pub fn dpkg_status(text: &str) -> Vec<Package> {
    paragraphs(text)
        .iter()
        .filter_map(|p| dpkg_package(p))
        .collect()
}

/// apt's `extended_states`: the packages it installed automatically.
pub fn apt_auto_installed(text: &str) -> Vec<String> {
    paragraphs(text)
        .iter()
        .filter(|p| field(p, "Auto-Installed").is_some_and(|v| v.trim() == "1"))
        .filter_map(|p| field(p, "Package").map(str::to_string))
        .collect()
}

/// An apk dependency or provide token: `so:libc.musl-x86_64.so.1=1`,
/// `pkg>=1.2`, `!conflict` (None), `cmd:gcc=12`.
fn apk_name(tok: &str) -> Option<String> {
    if tok.starts_with('!') {
        return None;
    }
    let end = tok.find(['=', '<', '>', '~']).unwrap_or(tok.len());
    let name = &tok[..end];
    (!name.is_empty()).then(|| name.to_string())
}

/// One package of apk's `installed` database, and the files it owns
/// (`F:` directory, `R:` file lines), as absolute paths.
pub struct ApkEntry {
    pub package: Package,
    pub files: Vec<String>,
}

/// apk's `lib/apk/db/installed`.
pub fn apk_installed(text: &str) -> Vec<ApkEntry> {
    let mut out: Vec<ApkEntry> = Vec::new();
    let mut dir = String::new();
    for block in text.split("\n\n") {
        let mut pkg = Package::default();
        let mut files = Vec::new();
        for line in block.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let toks = || v.split_whitespace().filter_map(apk_name);
            match k {
                "P" => pkg.name = v.to_string(),
                "V" => pkg.version = v.to_string(),
                "D" => pkg.depends = toks().map(|n| vec![n]).collect(),
                "p" => pkg.provides = toks().collect(),
                "i" => pkg.install_if = toks().collect(),
                "F" => dir = v.to_string(),
                "R" => files.push(format!("/{dir}/{v}")),
                _ => {}
            }
        }
        if pkg.name.is_empty() {
            continue;
        }
        // `apk add --virtual .name` records a package with no files whose
        // name starts with a dot.
        pkg.virtual_group = pkg.name.starts_with('.');
        out.push(ApkEntry {
            package: pkg,
            files,
        });
        dir.clear();
    }
    out
}

/// `/etc/apk/world`: what was asked for, constraints dropped.
pub fn apk_world(text: &str) -> Vec<String> {
    text.split_whitespace().filter_map(apk_name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_drop_versions_qualifiers_and_arches() {
        assert_eq!(
            parse_relations("libc6 (>= 2.34), perl:any, a | b (<< 2) [amd64], "),
            vec![
                vec!["libc6".to_string()],
                vec!["perl".to_string()],
                vec!["a".to_string(), "b".to_string()]
            ]
        );
    }

    #[test]
    fn dpkg_paragraphs_with_continuations_and_states() {
        let text = "Package: a\nStatus: install ok installed\nPriority: required\nDepends: b\nDescription: x\n more\n .\n\nPackage: gone\nStatus: deinstall ok config-files\n\nPackage: c\nStatus: install ok installed\nEssential: yes\nProvides: v (= 1), w\nPre-Depends: d\nDepends: e\n";
        let pkgs = dpkg_status(text);
        assert_eq!(pkgs.len(), 2);
        assert!(pkgs[0].required && !pkgs[0].essential);
        assert_eq!(pkgs[1].provides, vec!["v", "w"]);
        assert_eq!(
            pkgs[1].depends,
            vec![vec!["d".to_string()], vec!["e".to_string()]]
        );
        assert!(pkgs[1].essential);
    }

    #[test]
    fn extended_states_lists_auto_installed_only() {
        let text = "Package: a\nArchitecture: amd64\nAuto-Installed: 1\n\nPackage: b\nArchitecture: amd64\nAuto-Installed: 0\n";
        assert_eq!(apt_auto_installed(text), vec!["a"]);
    }

    #[test]
    fn apk_database_and_world() {
        let text = "C:Q1x\nP:musl\nV:1.2\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\n\nP:.build-deps\nV:20240101\nD:gcc musl-dev>=1 !foo\n";
        let db = apk_installed(text);
        assert_eq!(db.len(), 2);
        assert_eq!(db[0].files, vec!["/lib/ld-musl-x86_64.so.1"]);
        assert_eq!(db[0].package.provides, vec!["so:libc.musl-x86_64.so.1"]);
        assert!(db[1].package.virtual_group);
        assert_eq!(
            db[1].package.depends,
            vec![vec!["gcc".to_string()], vec!["musl-dev".to_string()]]
        );
        assert_eq!(
            apk_world("alpine-base\n.build-deps\npython3>=3.11\n"),
            vec!["alpine-base", ".build-deps", "python3"]
        );
    }
}
