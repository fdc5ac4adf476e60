//! One 512-byte tar header block, read where it lies: its numeric fields
//! as the tar crate reads them, its checksum, and where in a layer a
//! member seems to start (to split a large layer between cores).

use std::io;

pub(super) const BLOCK: usize = 512;

/// Does a 512-byte header's checksum field (plain octal) hold the sum of
/// its bytes, the field itself counted as eight blanks?
pub(super) fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let all = byte_sum(block);
    let field: u32 = block[148..156].iter().map(|&b| u32::from(b)).sum();
    octal(&block[148..156]) == Some(u64::from(all - field + 8 * 32))
}

/// The sum of a header's bytes, eight at a time: each word's bytes added
/// in 16-bit lanes (64 words of at most 2 × 255 fit), then the lanes. About
/// twice as fast as widening each byte, and it runs on every header.
fn byte_sum(block: &[u8; BLOCK]) -> u32 {
    const LO: u64 = 0x00ff_00ff_00ff_00ff;
    let mut lanes = 0u64;
    for w in block.as_chunks::<8>().0 {
        let w = u64::from_le_bytes(*w);
        lanes += (w & LO) + ((w >> 8) & LO);
    }
    let pairs = (lanes & 0x0000_ffff_0000_ffff) + ((lanes >> 16) & 0x0000_ffff_0000_ffff);
    ((pairs & 0xffff_ffff) + (pairs >> 32)) as u32
}

/// The size a 512-byte block gives if it is a header the scan reads (a
/// good checksum, ustar or GNU magic, a known type, a plain size).
fn header_size(block: &[u8; BLOCK]) -> Option<u64> {
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
        for (k, b) in buf[..whole].as_chunks::<BLOCK>().0.iter().enumerate() {
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
    plain_octal(field).or_else(|| octal_slow(field))
}

/// [`octal`] of a field as tar writers write it (digits from the first
/// byte to a NUL or the field's end), eight digits at a time; `None` for
/// any other field, which [`octal_slow`] reads. Six fields of every
/// header are read: byte by byte they were a tenth of the scan's work.
fn plain_octal(field: &[u8]) -> Option<u64> {
    // A field of 8 or 12 bytes (every numeric field of a header).
    let (head, rest) = field.split_first_chunk::<8>()?;
    let (k, v) = octal_digits(u64::from_le_bytes(*head));
    match (k, rest) {
        (0, _) => None,
        (8, []) => Some(v),
        (8, &[a, b, c, d]) => {
            // The last four bytes, the missing four read as non-digits.
            let (k2, v2) = octal_digits(u64::from_le_bytes([a, b, c, d, 0xff, 0xff, 0xff, 0xff]));
            (k2 == 4 || field[8 + k2] == 0).then_some(v << (3 * k2) | v2)
        }
        (8, _) => None,
        _ => (field[k] == 0).then_some(v),
    }
}

/// How many of the bytes of `w` (first byte lowest) are octal digits
/// before the first that is not, and their value.
fn octal_digits(w: u64) -> (usize, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Each digit byte becomes its value (0-7); any other byte keeps a bit
    // of its top five set.
    let x = w ^ (0x30 * ONES);
    let t = x & (0xf8 * ONES);
    let not_digit = (t | ((t & (0x7f * ONES)) + 0x7f * ONES)) & (0x80 * ONES);
    let k = (not_digit.trailing_zeros() / 8) as usize;
    if k == 0 {
        return (0, 0);
    }
    // The k digits moved to the top bytes: the bytes below are leading
    // zeros. Then digits pair up: 2 in 16-bit lanes, 4 in 32, all 8.
    let mut v = (x << (64 - 8 * k as u32)) & (0x07 * ONES);
    v = ((v & 0x0007_0007_0007_0007) << 3) | ((v >> 8) & 0x0007_0007_0007_0007);
    v = ((v & 0x0000_003f_0000_003f) << 6) | ((v >> 16) & 0x0000_003f_0000_003f);
    v = ((v & 0xfff) << 12) | ((v >> 32) & 0xfff);
    (k, v)
}

/// [`octal`] byte by byte: any field.
fn octal_slow(field: &[u8]) -> Option<u64> {
    // One pass: blanks, digits, blanks.
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
            let want: u32 = b.iter().map(|&v| u32::from(v)).sum();
            assert_eq!(byte_sum(b), want);
        }
    }

    #[test]
    fn fields_as_writers_write_them_are_read_as_byte_by_byte() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let bytes = b"01234567 \0\t8+\x80\xff";
        let (mut plain, mut fields) = (0, 0);
        for len in [8usize, 12] {
            for n in 0..=len {
                // Digits (of every value's width), then anything.
                for _ in 0..400 {
                    let mut f = vec![0u8; len];
                    for (i, b) in f.iter_mut().enumerate() {
                        *b = if i < n {
                            b'0' + (next() % 8) as u8
                        } else {
                            bytes[(next() % bytes.len() as u64) as usize]
                        };
                    }
                    fields += 1;
                    plain += usize::from(plain_octal(&f).is_some());
                    assert_eq!(
                        octal(&f),
                        octal_slow(&f),
                        "{:?}",
                        String::from_utf8_lossy(&f)
                    );
                    if let Some(v) = plain_octal(&f) {
                        assert_eq!(Some(v), octal_slow(&f));
                    }
                }
            }
        }
        assert_eq!(plain_octal(b"77777777777\0"), Some(0o77777777777));
        assert_eq!(plain_octal(b"777777777777"), Some(0o777777777777));
        assert_eq!(plain_octal(b"0000644\0"), Some(0o644));
        assert_eq!(plain_octal(b"00000644"), Some(0o644));
        assert_eq!(plain_octal(b"012345\0 "), Some(0o12345));
        assert!(plain > fields / 4, "{plain} of {fields} read in words");
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
