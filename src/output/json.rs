//! Writing the JSON report: to stdout, or atomically to a file.

use std::io::Write;
use std::path::Path;

use crate::report::Report;

/// Write the report to `dest` (`-` is stdout). A file is written beside its
/// destination and renamed into place, so a failed run never leaves a
/// half-written report.
pub fn write_report(report: &Report, dest: &str) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_output(&bytes, dest)
}

/// Write `bytes` to `dest` (`-` is stdout): atomically to a file, straight
/// to a device or pipe. Shared by the JSON and HTML reports.
pub fn write_output(bytes: &[u8], dest: &str) -> std::io::Result<()> {
    if dest == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        return out.flush();
    }
    let path = Path::new(dest);
    // A device or pipe (/dev/null, a FIFO) cannot be replaced by rename.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.write_all(bytes)?;
        return f.flush();
    }
    write_atomic(path, bytes)
}

/// Temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
