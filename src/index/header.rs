//! One 512-byte tar header block, read where it lies: its numeric fields
//! as the tar crate reads them, its checksum, and where in a layer a
//! member seems to start (to split a large layer between cores).

use std::io;

pub(super) const BLOCK: usize = 512;

/// Does a 512-byte header's checksum field (plain octal) hold the sum of
/// its bytes, the field itself counted as eight blanks?
pub(super) fn checksum_ok(block: &[u8]) -> bool {
    let all = byte_sum(block);
    let field: u32 = block[148..156].iter().map(|&b| u32::from(b)).sum();
    octal(&block[148..156]) == Some(u64::from(all - field + 8 * 32))
}

/// The sum of a header's bytes, eight at a time: each word's bytes added
/// in 16-bit lanes (64 words of at most 2 × 255 fit), then the lanes. About
/// twice as fast as widening each byte, and it runs on every header.
fn byte_sum(block: &[u8]) -> u32 {
    debug_assert!(block.len() <= BLOCK);
    const LO: u64 = 0x00ff_00ff_00ff_00ff;
    let words = block.chunks_exact(8);
    let tail: u32 = words.remainder().iter().map(|&b| u32::from(b)).sum();
    let mut lanes = 0u64;
    for w in words {
        let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
        lanes += (w & LO) + ((w >> 8) & LO);
    }
    let pairs = (lanes & 0x0000_ffff_0000_ffff) + ((lanes >> 16) & 0x0000_ffff_0000_ffff);
    ((pairs & 0xffff_ffff) + (pairs >> 32)) as u32 + tail
}

/// The size a 512-byte block gives if it is a header the scan reads (a
/// good checksum, ustar or GNU magic, a known type, a plain size).
fn header_size(block: &[u8]) -> Option<u64> {
    let magic = &block[257..265];
    let known = b"\x0001234567xLKg".contains(&block[156]);
    (checksum_ok(block) && (magic == b"ustar\x0000" || magic == b"ustar  \x00") && known)
        .then(|| octal(&block[124..136]))
        .flatten()
}

/// The first offset at or after `from` (and before `from + within`) where
/// a member of the layer (of `len` bytes) seems to start: a header there,
/// and another header or the end of the archive where its content ends.
/// `read_at` reads the layer at an offset. A guess: the scan from the
/// start of the layer checks it.
pub fn boundary_after(
    read_at: &dyn Fn(&mut [u8], u64) -> io::Result<usize>,
    from: u64,
    within: u64,
    len: u64,
) -> Option<u64> {
    let mut at = from.div_ceil(BLOCK as u64) * BLOCK as u64;
    let end = (from + within).min(len);
    let mut buf = vec![0u8; 64 * 1024];
    let mut block = [0u8; BLOCK];
    while at + (BLOCK as u64) <= end {
        let n = read_at(&mut buf, at).ok()?;
        let whole = n / BLOCK * BLOCK;
        if whole == 0 {
            return None;
        }
        for (k, b) in buf[..whole].chunks_exact(BLOCK).enumerate() {
            let here = at + (k * BLOCK) as u64;
            let Some(size) = header_size(b) else { continue };
            let next = here + BLOCK as u64 + size.div_ceil(BLOCK as u64) * BLOCK as u64;
            if next + BLOCK as u64 > len {
                continue;
            }
            if read_at(&mut block, next).ok()? == BLOCK
                && (block.iter().all(|&x| x == 0) || header_size(&block).is_some())
            {
                return Some(here);
            }
        }
        at += whole as u64;
    }
    None
}

/// A numeric header field as the tar crate reads it when it reads it as
/// octal: up to the first NUL, blanks trimmed. `None` for anything else
/// (base-256 included), where the tar crate may read otherwise.
pub(super) fn octal(field: &[u8]) -> Option<u64> {
    // One pass: blanks, digits, blanks (this runs four times a header).
    let (mut n, mut digits, mut ended) = (0u64, false, false);
    for &b in field {
        match b {
            0 => break,
            // (Header fields are at most 12 bytes: no overflow.)
            b'0'..=b'7' if !ended => {
                n = n << 3 | u64::from(b - b'0');
                digits = true;
            }
            b' ' | b'\t'..=b'\r' => ended |= digits,
            _ => return None,
        }
    }
    digits.then_some(n)
}

/// Mode, uid, gid or mtime as the indexer takes it from the tar crate: its
/// number, or 0 where the tar crate cannot read one. `None` where the
/// tar crate may read a number this does not (base-256, a sign, bytes
/// that are not ASCII).
pub(super) fn octal_or_zero(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        return None;
    }
    octal(field).or_else(|| {
        let unsure = until_nul(field).iter().any(|&b| b >= 0x80 || b == b'+');
        (!unsure).then_some(0)
    })
}

/// A header field up to its first NUL.
pub(super) fn until_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_byte_sums_are_exact() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut blocks = vec![[0u8; BLOCK], [0xff; BLOCK]];
        for _ in 0..200 {
            let mut b = [0u8; BLOCK];
            for v in &mut b {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = x as u8;
            }
            blocks.push(b);
        }
        for b in &blocks {
            for len in [BLOCK, BLOCK - 3, 8, 5, 0] {
                let want: u32 = b[..len].iter().map(|&v| u32::from(v)).sum();
                assert_eq!(byte_sum(&b[..len]), want, "{len} bytes");
            }
        }
    }

    #[test]
    fn octal_fields_are_read_as_the_tar_crate_reads_them_or_not_at_all() {
        assert_eq!(octal(b"0000644\0"), Some(0o644));
        assert_eq!(octal(b" 644 \0\0\0"), Some(0o644));
        assert_eq!(octal(b"00000001750 "), Some(0o1750));
        assert_eq!(octal(b"\t17\n\0junk"), Some(0o17));
        // Empty, signed, non-octal, base-256, non-ASCII: left to the tar crate.
        assert_eq!(octal(b"\0\0\0\0\0\0\0\0"), None);
        assert_eq!(octal(b"        "), None);
        assert_eq!(octal(b"+644\0"), None);
        assert_eq!(octal(b"0000648\0"), None);
        assert_eq!(octal(&[0x80, 0, 0, 0, 0, 0, 0x01, 0x00]), None);
        assert_eq!(octal("64\u{a0}".as_bytes()), None);
        // Where the tar crate reads no number, the indexer takes 0.
        assert_eq!(octal_or_zero(b"\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(octal_or_zero(b"12a\0"), Some(0));
        assert_eq!(octal_or_zero(b"-1\0"), Some(0));
        assert_eq!(octal_or_zero(b"0000755\0"), Some(0o755));
        assert_eq!(octal_or_zero(b"+755\0"), None);
        assert_eq!(octal_or_zero(&[0x80, 0, 0, 0, 0, 0, 0, 1]), None);
    }
}
