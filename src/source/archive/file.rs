//! Seekable sources: a saved archive on disk, whose members are found by
//! their headers before any layer is read, and an OCI layout directory.
//! Layers are indexed several at a time.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::super::LoadOptions;
use super::MAX_META;
use super::members::{Member, Outer, outer_error, outer_member, resolve};
use super::parallel::{Span, index_parallel};
use super::plan::{assemble, check_size, plan};
use crate::error::Error;
use crate::image::Image;
use crate::index::layer::MAX_CAPTURED_IMAGE;

/// Load an image from a tar archive on disk (`docker save` or `oci-archive`).
pub fn load_archive_file(
    path: &Path,
    want: Option<&str>,
    opts: &LoadOptions,
) -> Result<Image, Error> {
    let shown = path.display().to_string();
    let fail = |msg: String| Error::input(&shown, msg);
    // Opening a FIFO would wait for a writer, and a device never ends.
    let kind = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if kind.is_dir() {
        return Err(fail(
            "a directory, not an archive (an OCI layout directory is read with oci:DIR)".into(),
        ));
    }
    if !kind.is_file() {
        return Err(fail(
            "not a regular file (a FIFO, device or socket); save the image to a file first".into(),
        ));
    }
    let file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut head = Vec::new();
    (&file)
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| fail(e.to_string()))?;
    if head.is_empty() {
        return Err(fail(
            "an empty file (expected docker save or oci-archive output)".into(),
        ));
    }
    if !super::super::blob::looks_like_tar(&head) {
        return Err(fail(
            "not a tar archive (expected docker save or oci-archive output)".into(),
        ));
    }
    (&file)
        .seek(SeekFrom::Start(0))
        .map_err(|e| fail(e.to_string()))?;
    let file_len = file.metadata().map_err(|e| fail(e.to_string()))?.len();
    let mut members: HashMap<String, Member> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut meta: HashMap<String, Vec<u8>> = HashMap::new();
    let mut ar = tar::Archive::new(BufReader::with_capacity(64 * 1024, &file));
    let entries = ar.entries_with_seek().map_err(|e| fail(e.to_string()))?;
    // The last member read and where its data ends, for errors.
    let mut last: Option<(String, u64)> = None;
    for item in entries {
        let mut entry = item.map_err(|e| fail(outer_error(&e, last.as_ref(), &file, file_len)))?;
        let outer = outer_member(&entry).map_err(fail)?;
        let size = entry.size();
        let offset = entry.raw_file_position();
        let name = match outer {
            Outer::File(name) => name,
            Outer::Link(name, target) => {
                last = Some((name.clone(), offset + size));
                links.insert(name, target);
                continue;
            }
            Outer::Other(name) => {
                last = Some((name, offset + size));
                continue;
            }
        };
        last = Some((name.clone(), offset + size));
        if size <= MAX_META {
            let mut first = [0u8; 1];
            let n = entry.read(&mut first).map_err(|e| fail(e.to_string()))?;
            if n == 1 && (first[0] == b'{' || first[0] == b'[') {
                let mut data = first.to_vec();
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| fail(format!("{name}: {e}")))?;
                meta.insert(name.clone(), data);
            }
        }
        members.insert(name, Member { offset, size });
    }
    if last.is_none() {
        return Err(fail(
            "an empty archive: it holds no files (expected docker save or oci-archive output)"
                .into(),
        ));
    }
    // Check the archive is complete: the last member must end inside the file.
    for (name, m) in &members {
        if m.offset + m.size > file_len {
            return Err(fail(format!(
                "truncated archive: {name} declares {} bytes but the file ends {} bytes into them",
                m.size,
                file_len.saturating_sub(m.offset)
            )));
        }
    }
    // Small files are read when the plan asks for them: the JSON ones are
    // in memory already; any other (a config that is not JSON) is read
    // from the file, so that the error names what is wrong with it.
    let odd: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
    let get = |p: &str| -> Option<Vec<u8>> {
        let real = resolve(&links, p);
        if let Some(data) = meta.get(&real) {
            return Some(data.clone());
        }
        let m = members.get(&real)?;
        if m.size > MAX_META {
            odd.borrow_mut().get_or_insert(format!(
                "{p} is {} bytes, too large to be metadata (at most {MAX_META})",
                m.size
            ));
            return None;
        }
        let mut data = Vec::new();
        let mut f = &file;
        f.seek(SeekFrom::Start(m.offset)).ok()?;
        f.take(m.size).read_to_end(&mut data).ok()?;
        Some(data)
    };
    let plan = plan(&get, want).map_err(|e| fail(odd.take().unwrap_or(e)))?;
    let jobs: Vec<(String, Member)> = plan
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let real = resolve(&links, l);
            members
                .get(&real)
                .cloned()
                .map(|m| (l.clone(), m))
                .ok_or_else(|| {
                    fail(format!(
                        "layer {} ({l}): named by the manifest but missing from the archive",
                        i + 1
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    let sizes: Vec<u64> = jobs.iter().map(|(_, m)| m.size).collect();
    let budget = AtomicU64::new(MAX_CAPTURED_IMAGE);
    let file = Arc::new(file);
    let label = |i: usize| format!("layer {} ({})", i + 1, jobs[i].0);
    let (indexes, grafts) = index_parallel(
        &sizes,
        opts,
        &budget,
        |i| {
            let m = &jobs[i].1;
            let layer = |e: String| format!("{}: {e}", label(i));
            check_size(&plan, i, m.size).map_err(layer)?;
            Ok(Span {
                file: file.clone(),
                offset: m.offset,
                len: m.size,
            })
        },
        label,
    )
    .map_err(fail)?;
    assemble(plan, indexes, grafts, &shown, opts).map_err(fail)
}

/// Load an image from an OCI image layout directory.
pub fn load_oci_dir(dir: &Path, want: Option<&str>, opts: &LoadOptions) -> Result<Image, Error> {
    let shown = dir.display().to_string();
    let fail = |msg: String| Error::input(&shown, msg);
    if !dir.join("index.json").is_file() {
        return Err(fail("not an OCI image layout (no index.json)".into()));
    }
    // A blob that is not a regular file (a FIFO would block, /dev/zero
    // never ends) or is too large is not read; the error says why.
    let odd: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
    let get = |p: &str| -> Option<Vec<u8>> {
        let full = dir.join(p);
        let m = std::fs::metadata(&full).ok()?;
        if !m.is_file() {
            odd.borrow_mut()
                .get_or_insert(format!("{p} is not a regular file"));
            return None;
        }
        if m.len() > MAX_META {
            odd.borrow_mut().get_or_insert(format!(
                "{p} is {} bytes, too large to be metadata (at most {MAX_META})",
                m.len()
            ));
            return None;
        }
        std::fs::read(full).ok()
    };
    let plan = plan(&get, want).map_err(|e| fail(odd.take().unwrap_or(e)))?;
    let sizes: Vec<u64> = plan
        .layers
        .iter()
        .map(|l| std::fs::metadata(dir.join(l)).map_or(0, |m| m.len()))
        .collect();
    let budget = AtomicU64::new(MAX_CAPTURED_IMAGE);
    let label = |i: usize| format!("layer {} ({})", i + 1, plan.layers[i]);
    let (indexes, grafts) = index_parallel(
        &sizes,
        opts,
        &budget,
        |i| {
            let layer = |e: String| format!("{}: {e}", label(i));
            let f = File::open(dir.join(&plan.layers[i])).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    layer("named by the manifest but missing from the layout".into())
                }
                _ => layer(e.to_string()),
            })?;
            // Read no more than the file holds (a blob could be a device).
            let len = f.metadata().map_err(|e| layer(e.to_string()))?;
            if !len.is_file() {
                return Err(layer("not a regular file".into()));
            }
            check_size(&plan, i, len.len()).map_err(layer)?;
            Ok(Span {
                file: Arc::new(f),
                offset: 0,
                len: len.len(),
            })
        },
        label,
    )
    .map_err(fail)?;
    assemble(plan, indexes, grafts, &shown, opts).map_err(fail)
}
