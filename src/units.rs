//! Sizes and ratios as users write them (`20MB`, `1.5GB`, `512KiB`,
//! `10%`, `>10MiB`), and as layerscope prints them.

/// Sizes as `docker images` prints them (decimal units).
pub fn size(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::DECIMAL)
}

/// A count and its noun, singular for one: `1 layer`, `3 layers`
/// (`noun` takes an `s`).
pub fn plural(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// A signed size delta.
pub fn delta(d: i128) -> String {
    let s = size(d.unsigned_abs() as u64);
    match d.signum() {
        -1 => format!("-{s}"),
        1 => format!("+{s}"),
        _ => s,
    }
}

/// Bytes as lower-case hex (digests).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A ratio as a percentage with one decimal: `0.255` is `25.5%`.
pub fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Parse a size. `B`, `kB`/`KB`, `MB`, `GB`, `TB` are decimal as in
/// `docker images` (20MB = 20,000,000 bytes); `KiB`, `MiB`, `GiB`, `TiB`
/// are binary; a bare number is bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let n: f64 = num.parse().map_err(|_| {
        format!("invalid size {s:?} (expected e.g. 20MB, 1.5GB, 512MiB or a byte count)")
    })?;
    let mult: f64 = match unit {
        "" | "B" | "b" => 1.0,
        "kB" | "KB" | "kb" | "k" | "K" => 1e3,
        "MB" | "mb" | "M" | "m" => 1e6,
        "GB" | "gb" | "G" | "g" => 1e9,
        "TB" | "tb" | "T" | "t" => 1e12,
        "KiB" | "kiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {other:?} (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            ));
        }
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("invalid size {s:?}: out of range"));
    }
    Ok(bytes.round() as u64)
}

/// Parse an age: a whole number with `s`, `m`, `h`, `d` or `w` (`30d`).
pub fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("invalid age {s:?} (expected e.g. 30d, 12h, 90m or 2w)");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs: u64 = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs)
        .map(std::time::Duration::from_secs)
        .ok_or_else(bad)
}

/// An age for people: `40 seconds`, `5 minutes`, `3 hours`, `12 days`.
pub fn format_age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0..120 => (s, "second"),
        120..7200 => (s / 60, "minute"),
        7200..172_800 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// A limit given as a size or as a percentage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeOrPercent {
    Bytes(u64),
    /// A fraction: `10%` is 0.10.
    Ratio(f64),
}

impl SizeOrPercent {
    pub fn parse(s: &str) -> Result<SizeOrPercent, String> {
        match s.trim().strip_suffix('%') {
            Some(p) => {
                let v: f64 = p
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid percentage {s:?}"))?;
                if !(0.0..=10000.0).contains(&v) {
                    return Err(format!("invalid percentage {s:?}: out of range"));
                }
                Ok(SizeOrPercent::Ratio(v / 100.0))
            }
            None => parse_size(s).map(SizeOrPercent::Bytes),
        }
    }

    /// The limit in bytes, against a whole of `of` bytes.
    pub fn bytes_of(self, of: u64) -> u64 {
        match self {
            SizeOrPercent::Bytes(b) => b,
            // Round away float noise first: 29% of 100,000 is 29,000, not 28,999.
            SizeOrPercent::Ratio(r) => (((r * of as f64) * 1e6).round() / 1e6).floor() as u64,
        }
    }
}

impl std::fmt::Display for SizeOrPercent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SizeOrPercent::Bytes(b) => f.write_str(&size(*b)),
            SizeOrPercent::Ratio(r) => write!(f, "{:.1}%", r * 100.0),
        }
    }
}

/// A ratio such as `0.95`, or `95%`.
pub fn parse_ratio(s: &str) -> Result<f64, String> {
    let v = parse_share(s)?;
    if v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("invalid ratio {s:?}: must be between 0 and 1"))
    }
}

/// A non-negative ratio that may exceed 1 (`1.25`, `125%`): a share of a
/// part that can be smaller than what is measured against it.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let v = match SizeOrPercent::parse(s) {
        Ok(SizeOrPercent::Ratio(r)) => r,
        _ => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("invalid ratio {s:?} (expected e.g. 0.95 or 95%)"))?,
    };
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("invalid ratio {s:?}: must not be negative"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(plural(1u64, "layer"), "1 layer");
        assert_eq!(plural(0u64, "rule"), "0 rules");
        assert_eq!(plural(2u32, "image"), "2 images");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("20MB").unwrap(), 20_000_000);
        assert_eq!(parse_size("20MiB").unwrap(), 20 * 1024 * 1024);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("10kB").unwrap(), 10_000);
        assert_eq!(parse_size("10KB").unwrap(), 10_000);
        assert_eq!(parse_size("1 KiB").unwrap(), 1024);
        assert!(parse_size("20XB").is_err());
        assert!(parse_size("MB").is_err());
        assert!(parse_size("-5MB").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn percents_and_ratios() {
        assert_eq!(
            SizeOrPercent::parse("10%").unwrap(),
            SizeOrPercent::Ratio(0.1)
        );
        assert_eq!(
            SizeOrPercent::parse("5MB").unwrap(),
            SizeOrPercent::Bytes(5_000_000)
        );
        assert_eq!(SizeOrPercent::Ratio(0.1).bytes_of(1000), 100);
        assert_eq!(
            SizeOrPercent::parse("29%").unwrap().bytes_of(100_000),
            29_000
        );
        assert_eq!(SizeOrPercent::parse("0.5%").unwrap().bytes_of(3), 0);
        assert_eq!(parse_ratio("0.95").unwrap(), 0.95);
        assert_eq!(parse_ratio("95%").unwrap(), 0.95);
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("abc").is_err());
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d").unwrap().as_secs(), 30 * 86_400);
        assert_eq!(parse_age("90m").unwrap().as_secs(), 5400);
        assert_eq!(parse_age("2w").unwrap().as_secs(), 14 * 86_400);
        assert!(parse_age("30").is_err());
        assert!(parse_age("-1d").is_err());
        assert!(parse_age("1y").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
    }
}
