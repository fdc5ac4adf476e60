//! Which OS an image is built on, from its final file system (a fact of
//! the merged image, read as it is built; the analysis uses it).

use crate::image::Image;

/// Parse `KEY=value` lines of an os-release file.
pub fn os_release_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').trim_matches('\'').to_string())
    })
}

/// `PRETTY_NAME` of `/etc/os-release` (or `/usr/lib/os-release`), "distroless"
/// for Google's distroless images, "scratch" when the image has no OS at all.
pub fn detect_base_os(image: &Image) -> String {
    let text = image
        .captured_file("etc/os-release")
        .or_else(|| image.captured_file("usr/lib/os-release"))
        .map(|b| String::from_utf8_lossy(b).into_owned());
    if let Some(text) = text {
        let pretty = os_release_field(&text, "PRETTY_NAME")
            .or_else(|| os_release_field(&text, "NAME"))
            .unwrap_or_else(|| "unknown Linux".to_string());
        if pretty.contains("Distroless") {
            return format!("distroless ({pretty})");
        }
        return pretty;
    }
    // Distroless lists its packages in status.d/, often without a directory entry.
    let status_d = image.tree.lookup("var/lib/dpkg/status.d");
    if status_d.is_some_and(|d| {
        image
            .tree
            .children(d)
            .any(|n| image.fs[n as usize].is_some())
    }) {
        return "distroless".to_string();
    }
    if image.final_entry("etc/alpine-release").is_some() {
        return "Alpine Linux".to_string();
    }
    if image.final_entry("bin/sh").is_none() && image.final_entry("usr/bin/sh").is_none() {
        return "scratch".to_string();
    }
    "unknown".to_string()
}
