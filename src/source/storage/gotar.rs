//! Tar headers as the engines write them when they export a layer.
//!
//! Docker and containers/storage write a layer's tar with Go's
//! `archive/tar`, asking for the PAX format: a header is plain ustar when
//! every field fits one, and otherwise a PAX extended header (type `x`)
//! goes first, with the records ustar cannot hold. So a walked layer's tar
//! has the export's byte count only if it makes the same choices (a GNU
//! long-name entry, or no PAX header for a non-ASCII name, is a different
//! size). The rules below are Go's `Header.allowedFormats` for what the
//! engines set: path, link target, ids, size, mtime (whole seconds), and
//! the `security.capability` xattr as a `SCHILY.xattr.` record.

use std::io::{self, Read, Write};

const NAME: usize = 100;
const PREFIX: usize = 155;

/// One entry's fields that decide its header's shape.
pub struct Fields<'a> {
    /// The entry's name (a directory's with its trailing `/`).
    pub path: &'a [u8],
    /// A symlink's or hardlink's target.
    pub link: Option<&'a [u8]>,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    /// The value of `security.capability`, where the file has one.
    pub capability: Option<&'a [u8]>,
}

/// ASCII without NUL, and at most `max` bytes: a ustar string field.
fn fits(s: &[u8], max: usize) -> bool {
    s.len() <= max && s.iter().all(|&c| c != 0 && c < 0x80)
}

/// A long ASCII path cut into ustar's prefix and name, as Go cuts it.
fn split(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= NAME || !fits(path, usize::MAX) {
        return None;
    }
    let mut len = path.len();
    if len > PREFIX + 1 {
        len = PREFIX + 1;
    } else if path[len - 1] == b'/' {
        len -= 1;
    }
    let i = path[..len].iter().rposition(|&c| c == b'/')?;
    let (prefix, name) = (&path[..i], &path[i + 1..]);
    (i > 0 && !name.is_empty() && name.len() <= NAME && prefix.len() <= PREFIX)
        .then_some((prefix, name))
}

/// The PAX records (sorted by key) an entry needs, if ustar cannot hold it.
pub fn records(f: &Fields) -> Option<Vec<(&'static str, Vec<u8>)>> {
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut ustar = true;
    if !fits(f.path, NAME) {
        out.push(("path", f.path.to_vec()));
        ustar &= split(f.path).is_some();
    }
    if let Some(link) = f.link.filter(|l| !fits(l, NAME)) {
        out.push(("linkpath", link.to_vec()));
        ustar = false;
    }
    // Octal fields: 7 digits for ids, 11 for the size and mtime.
    for (key, v, bits) in [("uid", f.uid, 21), ("gid", f.gid, 21), ("size", f.size, 33)] {
        if v >= 1 << bits {
            out.push((key, v.to_string().into_bytes()));
            ustar = false;
        }
    }
    if !(0..1 << 33).contains(&f.mtime) {
        out.push(("mtime", f.mtime.to_string().into_bytes()));
        ustar = false;
    }
    if let Some(cap) = f.capability {
        out.push(("SCHILY.xattr.security.capability", cap.to_vec()));
        ustar = false;
    }
    if ustar {
        return None;
    }
    out.sort();
    Some(out)
}

/// One record, `LEN key=value\n`, LEN counting itself.
fn record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    // Adding LEN's digits can add a digit to LEN (at most once).
    let digits = |n: usize| n.to_string().len();
    let len = rest + digits(rest + digits(rest));
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Copy `s` into a header field, cut to fit.
fn put(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
}

/// Append one entry: `h` carries its type, mode, ids, mtime and size
/// (`set_size` and the like, on a ustar header); its name and link target
/// are set here, with a PAX header first where ustar cannot hold them.
pub fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    f: &Fields,
    data: impl Read,
) -> io::Result<()> {
    let pax = records(f);
    if let Some(pax) = &pax {
        let mut body = Vec::new();
        for (k, v) in pax {
            record(&mut body, k, v);
        }
        let mut x = tar::Header::new_ustar();
        x.set_entry_type(tar::EntryType::XHeader);
        x.set_mode(0o644);
        x.set_size(body.len() as u64);
        put(&mut x.as_old_mut().name, b"PaxHeaders.0");
        x.set_cksum();
        tar.append(&x, &body[..])?;
    }
    {
        let old = h.as_old_mut();
        old.name = [0; NAME];
        old.linkname = [0; NAME];
    }
    match (pax.is_none(), split(f.path)) {
        (true, Some((prefix, name))) => {
            put(&mut h.as_old_mut().name, name);
            if let Some(u) = h.as_ustar_mut() {
                u.prefix = [0; PREFIX];
                put(&mut u.prefix, prefix);
            }
        }
        _ => put(&mut h.as_old_mut().name, f.path),
    }
    if let Some(link) = f.link {
        put(&mut h.as_old_mut().linkname, link);
    }
    h.set_cksum();
    tar.append(h, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(path: &[u8]) -> Fields<'_> {
        Fields {
            path,
            link: None,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 1,
            capability: None,
        }
    }

    /// The tar `f` gives, and what the tar crate reads back from it.
    fn written(f: &Fields, kind: tar::EntryType) -> (usize, Vec<u8>, Option<Vec<u8>>, u64, u64) {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(f.size.min(1 << 20));
        h.set_uid(f.uid);
        h.set_mtime(1);
        append(&mut tar, &mut h, f, io::repeat(7).take(f.size.min(1 << 20))).unwrap();
        let bytes = tar.into_inner().unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        let link = e.link_name_bytes().map(|l| l.to_vec());
        let uid = e.header().uid().unwrap();
        (
            bytes.len() - 1024,
            e.path_bytes().to_vec(),
            link,
            uid,
            e.size(),
        )
    }

    #[test]
    fn records_count_their_own_length() {
        for (k, v) in [("path", 1usize), ("path", 92), ("path", 93), ("path", 990)] {
            let mut out = Vec::new();
            record(&mut out, k, &vec![b'a'; v]);
            let len: usize =
                std::str::from_utf8(&out[..out.iter().position(|&c| c == b' ').unwrap()])
                    .unwrap()
                    .parse()
                    .unwrap();
            assert_eq!(len, out.len(), "{k}={v}");
        }
    }

    #[test]
    fn ustar_where_it_fits_pax_where_it_does_not() {
        // Short ASCII: one block.
        let (n, p, ..) = written(&fields(b"etc/passwd"), tar::EntryType::Regular);
        assert_eq!((n, p), (512, b"etc/passwd".to_vec()));
        // A non-ASCII name: a PAX header and a block of records first
        // (what Docker's export writes for such a name).
        let (n, p, ..) = written(&fields(b"data/bad\xffname"), tar::EntryType::Regular);
        assert_eq!((n, p), (1536, b"data/bad\xffname".to_vec()));
        // A long path that splits into prefix and name: still one block.
        let long = [&[b'd'; 120][..], b"/", &[b'f'; 90][..]].concat();
        let (n, p, ..) = written(&fields(&long), tar::EntryType::Regular);
        assert_eq!((n, p), (512, long.clone()));
        // A last name over 100 bytes does not split.
        let long = [&b"d/"[..], &[b'f'; 101][..]].concat();
        let (n, p, ..) = written(&fields(&long), tar::EntryType::Regular);
        assert_eq!((n, p), (1536, long.clone()));
        // A long link target.
        let target = vec![b't'; 150];
        let mut f = fields(b"l");
        f.link = Some(&target);
        let (n, _, link, ..) = written(&f, tar::EntryType::Symlink);
        assert_eq!((n, link), (1536, Some(target.clone())));
        // An id past 7 octal digits.
        let mut f = fields(b"u");
        f.uid = 3_000_000;
        let (n, _, _, uid, _) = written(&f, tar::EntryType::Regular);
        assert_eq!((n, uid), (1536, 3_000_000));
        // A capability.
        let mut f = fields(b"bin/ping");
        f.capability = Some(b"\x01\x00\x00\x02\x00\x20\x00\x00");
        assert_eq!(written(&f, tar::EntryType::Regular).0, 1536);
        // A time before 1970.
        let mut f = fields(b"old");
        f.mtime = -5;
        assert_eq!(written(&f, tar::EntryType::Regular).0, 1536);
    }

    #[test]
    fn paths_split_as_go_splits_them() {
        assert_eq!(split(b"short"), None);
        let p = [&[b'a'; 60][..], b"/", &[b'b'; 60][..], b"/"].concat();
        // A trailing slash stays with the name.
        assert_eq!(split(&p).map(|(a, b)| (a.len(), b.len())), Some((60, 61)));
        let p = [&[b'a'; 156][..], b"/b"].concat();
        assert_eq!(split(&p), None, "prefix over 155");
        let p = [&[b'a'; 101][..], b"\xff"].concat();
        assert_eq!(split(&p), None, "not ASCII");
    }
}
