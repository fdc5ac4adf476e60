//! Which layers came from the base image, and what the base is.

use crate::image::{HistoryEntry, Image};

/// The base image, as far as the image itself tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Base {
    /// Number of bottom layers that came from the base.
    pub layers: usize,
    /// scratch, distroless, alpine, debian, ubuntu, ... or unknown.
    pub kind: String,
    /// How `layers` was decided: `history`, `--base`, or `none`.
    pub method: &'static str,
}

/// Decide from history: the base ends at its last `CMD`/`ENTRYPOINT`
/// (images end with one; the next build's steps follow), at an
/// `Imported from` layer, or at the largest pause of an hour or more
/// between steps. `base_diff_ids` (from `--base IMAGE`) is exact.
pub fn detect(image: &Image, base_diff_ids: Option<&[String]>) -> Base {
    let (layers, method) = if let Some(ids) = base_diff_ids {
        let n = image
            .layers
            .iter()
            .zip(ids)
            .take_while(|(l, id)| l.diff_id == **id)
            .count();
        (n, "--base")
    } else {
        let n = from_history(&image.facts.history);
        (n, if n > 0 { "history" } else { "none" })
    };
    Base {
        layers,
        kind: kind(image),
        method,
    }
}

/// The base ends at the later of its closing instruction and the largest
/// pause in the history: official images such as golang end with no CMD,
/// but were built long before the steps that follow them.
fn from_history(history: &[HistoryEntry]) -> usize {
    from_instructions(history).max(from_pause(history))
}

/// A pause of at least this long between two history entries separates
/// images built at different times.
const PAUSE_SECS: i64 = 3600;

/// Layers before the largest pause of an hour or more, if any.
fn from_pause(history: &[HistoryEntry]) -> usize {
    let mut best: Option<(i64, usize)> = None;
    let mut layers_so_far = 0;
    let mut prev: Option<i64> = None;
    for h in history {
        let t = h.created.as_deref().and_then(epoch_seconds);
        if let (Some(a), Some(b)) = (prev, t)
            && b - a >= PAUSE_SECS
            && best.is_none_or(|(gap, _)| b - a > gap)
        {
            best = Some((b - a, layers_so_far));
        }
        prev = t.or(prev);
        if !h.empty_layer {
            layers_so_far += 1;
        }
    }
    let total = history.iter().filter(|h| !h.empty_layer).count();
    // The base must leave the image at least one layer of its own.
    best.map_or(0, |(_, n)| n).min(total.saturating_sub(1))
}

/// `2024-01-31T12:34:56.789Z` or with an offset, as seconds since 1970.
fn epoch_seconds(s: &str) -> Option<i64> {
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let rest = s
        .get(19..)?
        .trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest.as_bytes().first() {
        Some(b'+') | Some(b'-') => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let oh = rest.get(1..3)?.parse::<i64>().ok()?;
            let om = rest
                .get(4..6)
                .and_then(|m| m.parse::<i64>().ok())
                .unwrap_or(0);
            sign * (oh * 3600 + om * 60)
        }
        _ => 0,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + sec - offset)
}

/// Count the layers before the base's closing instruction.
fn from_instructions(history: &[HistoryEntry]) -> usize {
    let mut layers_so_far = 0;
    let mut base_end = 0;
    let total = history.iter().filter(|h| !h.empty_layer).count();
    for h in history {
        let by = crate::image::clean_instruction(h.created_by.as_deref().unwrap_or(""));
        let comment = h.comment.as_deref().unwrap_or("");
        if !h.empty_layer {
            layers_so_far += 1;
            if comment.starts_with("Imported from") {
                base_end = layers_so_far;
            }
        } else if (by.starts_with("CMD") || by.starts_with("ENTRYPOINT")) && layers_so_far < total {
            base_end = layers_so_far;
        }
    }
    base_end
}

/// What kind of base an image has, from its final file system.
pub fn kind(image: &Image) -> String {
    let os = image.facts.base_os.to_lowercase();
    for k in [
        "distroless",
        "scratch",
        "alpine",
        "ubuntu",
        "debian",
        "fedora",
        "centos",
        "rocky",
        "amazon",
        "wolfi",
    ] {
        if os.contains(k) {
            return k.to_string();
        }
    }
    if os.is_empty() || os == "unknown" {
        "unknown".to_string()
    } else {
        os
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(created: &str, by: &str, empty: bool) -> HistoryEntry {
        HistoryEntry {
            created: Some(created.to_string()),
            created_by: Some(by.to_string()),
            comment: None,
            empty_layer: empty,
        }
    }

    #[test]
    fn timestamps_parse_with_fractions_and_offsets() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            epoch_seconds("2024-02-29T12:00:00.123456789Z"),
            Some(1_709_208_000)
        );
        assert_eq!(
            epoch_seconds("2024-02-29T14:00:00+02:00"),
            Some(1_709_208_000)
        );
        assert_eq!(epoch_seconds("garbage"), None);
    }

    #[test]
    fn a_base_without_cmd_ends_at_the_pause_before_the_users_steps() {
        // debian (CMD bash), then golang's layers (no CMD), then the app
        // built weeks later.
        let hist = [
            h("2024-01-01T00:00:00Z", "ADD file:x in /", false),
            h("2024-01-01T00:00:01Z", "CMD [\"bash\"]", true),
            h("2024-01-02T00:00:00Z", "RUN apt-get install gcc", false),
            h("2024-01-02T00:10:00Z", "RUN install go", false),
            h("2024-01-02T00:10:01Z", "WORKDIR /go", true),
            h("2024-03-01T09:00:00Z", "WORKDIR /app", true),
            h("2024-03-01T09:00:01Z", "COPY . .", false),
            h("2024-03-01T09:00:30Z", "RUN go build", false),
        ];
        assert_eq!(from_instructions(&hist), 1);
        assert_eq!(from_history(&hist), 3);
    }

    #[test]
    fn equal_timestamps_fall_back_to_the_closing_instruction() {
        // Every step at the same second: the times tell nothing.
        let at_epoch = |by: &str, empty: bool| h("1970-01-01T00:00:00Z", by, empty);
        let hist = [
            at_epoch("ADD file:x in /", false),
            at_epoch("CMD [\"sh\"]", true),
            at_epoch("COPY app /app", false),
        ];
        assert_eq!(from_history(&hist), 1);
    }
}
