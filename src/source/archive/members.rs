//! The members of the outer archive: which are files, which are links to
//! other members (legacy `docker save` links repeated layers), and one
//! line for a failure to read the outer tar.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use crate::index::layer::normalize;

// ---- seekable files and directories ---------------------------------------

/// Where an archive member lives.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub offset: u64,
    pub size: u64,
}

/// One line for a failure to read the outer archive's next header.
pub(super) fn outer_error(
    e: &std::io::Error,
    last: Option<&(String, u64)>,
    file: &File,
    len: u64,
) -> String {
    let msg = e.to_string();
    let Some((name, end)) = last else {
        return format!("invalid tar archive: {msg} (in the first header)");
    };
    // Where the failed header starts: after the last member's padded data.
    let at = end.div_ceil(512) * 512;
    if msg == "failed to read entire block" {
        let mut tail = Vec::new();
        let mut f = file;
        let zeros = f.seek(SeekFrom::Start(at)).is_ok()
            && f.take(512).read_to_end(&mut tail).is_ok()
            && tail.iter().all(|&b| b == 0);
        let what = if zeros {
            "its end-of-archive marker"
        } else {
            "a tar header"
        };
        return format!(
            "truncated archive: the file ends inside {what}, {} bytes into the block at byte {at} (after member {name})",
            len.saturating_sub(at)
        );
    }
    if msg == "archive header checksum mismatch" {
        return format!(
            "corrupt archive: the tar header at byte {at} has a bad checksum (after member {name})"
        );
    }
    format!("invalid tar archive: {msg} (after member {name})")
}

/// What an outer archive member is to the loaders.
pub(super) enum Outer {
    /// A regular file, by normalized path.
    File(String),
    /// A symlink or hardlink: its path and the member it resolves to
    /// (legacy `docker save` links repeated layers to the first copy).
    Link(String, String),
    /// Directories and anything else, by path.
    Other(String),
}

pub(super) fn outer_member<R: Read>(entry: &tar::Entry<R>) -> Result<Outer, String> {
    let name = normalize(&entry.path().map_err(|e| e.to_string())?.to_string_lossy()).to_string();
    let kind = entry.header().entry_type();
    Ok(match kind {
        tar::EntryType::Symlink | tar::EntryType::Link => match entry.link_name() {
            Ok(Some(target)) => {
                let resolved = resolve_link(&name, &target.to_string_lossy(), kind);
                Outer::Link(name, resolved)
            }
            _ => Outer::Other(name),
        },
        tar::EntryType::Regular | tar::EntryType::Continuous => Outer::File(name),
        _ => Outer::Other(name),
    })
}

/// Resolve a link inside an archive to the member path it names.
pub(super) fn resolve_link(name: &str, target: &str, kind: tar::EntryType) -> String {
    if kind == tar::EntryType::Link {
        return normalize(target).to_string();
    }
    let base = match name.rfind('/') {
        Some(i) => &name[..i],
        None => "",
    };
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|p| !p.is_empty()).collect()
    };
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

pub(super) fn resolve(links: &HashMap<String, String>, path: &str) -> String {
    let mut p = normalize(path).to_string();
    for _ in 0..8 {
        match links.get(&p) {
            Some(t) => p = t.clone(),
            None => break,
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_relative_to_their_directory() {
        assert_eq!(
            resolve_link("abc/layer.tar", "../def/layer.tar", tar::EntryType::Symlink),
            "def/layer.tar"
        );
        assert_eq!(
            resolve_link("abc/layer.tar", "def/layer.tar", tar::EntryType::Link),
            "def/layer.tar"
        );
    }
}
