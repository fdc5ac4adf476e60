//! The HTML report: one self-contained page (treemap, layers, findings,
//! waste, comparison) drawn by inline JS from the [`Report`] embedded as
//! JSON. Nothing is analysed here; the page is a view over the report.
//!
//! The page fetches nothing: CSS and JS are inline, and a
//! Content-Security-Policy allows only those two blocks (by hash), so even
//! markup smuggled in by a file name could neither run nor load anything.
//!
//! With `#selftest` in its URL (and only then) the page drives its first
//! treemap through real DOM events and records what it showed as JSON in
//! `#selftest-result`; `tests/html.rs` reads that back from `--dump-dom`.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::json::write_output;
use crate::report::Report;

const CSS: &str = include_str!("../../assets/html/report.css");
const JS: &str = include_str!("../../assets/html/report.js");

/// CSP source for an inline block: `'sha256-<base64>'`.
fn csp_hash(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(d)
    )
}

/// JSON safe inside `<script>`: `<`, `>` and `&` as `\u003c`..., so no
/// name can close the element or open a comment, and U+2028/U+2029 escaped
/// for older JS parsers. They only occur inside strings, where the escapes
/// mean the same characters.
fn script_json(report: &Report) -> serde_json::Result<String> {
    let raw = serde_json::to_string(report)?;
    let mut out = String::with_capacity(raw.len() + raw.len() / 64);
    for ch in raw.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The whole page. The report should carry its trees
/// ([`Report::with_trees`]); without them the page says so instead of
/// drawing a treemap.
pub fn render(report: &Report) -> serde_json::Result<String> {
    let data = script_json(report)?;
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'none'; base-uri 'none'; form-action 'none'",
        csp_hash(JS),
        csp_hash(CSS)
    );
    let mut s = String::with_capacity(data.len() + CSS.len() + JS.len() + 2048);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"");
    s.push_str(&csp);
    s.push_str("\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    s.push_str("<meta name=\"generator\" content=\"layerscope ");
    s.push_str(env!("CARGO_PKG_VERSION"));
    s.push_str("\">\n<title>layerscope report</title>\n<style>");
    s.push_str(CSS);
    s.push_str("</style>\n</head>\n<body data-status=\"loading\">\n");
    s.push_str(BODY);
    s.push_str("<script type=\"application/json\" id=\"report-data\">");
    s.push_str(&data);
    s.push_str("</script>\n<script>");
    s.push_str(JS);
    s.push_str("</script>\n</body>\n</html>\n");
    Ok(s)
}

/// The static skeleton the script fills. The `<svg>` template gives the
/// script the SVG namespace without spelling it out.
const BODY: &str = r#"<div id="errors" role="alert"></div>
<header id="head">
<div class="bar"><h1 id="title">layerscope report</h1>
<button type="button" id="theme-toggle" aria-label="Switch between light and dark theme">theme</button></div>
<div id="headline"></div>
</header>
<noscript><p>This report is drawn by JavaScript; enable it to see the treemap.</p></noscript>
<main>
<section id="compare" hidden><h2>Comparison</h2><div id="compare-body"></div></section>
<section id="legend-box"><h2>Categories</h2><ul id="legend"></ul></section>
<div id="images"></div>
</main>
<div id="tooltip" role="status" hidden></div>
<svg id="svg-template" width="0" height="0" aria-hidden="true"></svg>
"#;

/// Render and write atomically to `dest` (`-` for stdout), as `--json` does.
pub fn write_report(report: &Report, dest: &str) -> std::io::Result<()> {
    let page = render(report).map_err(std::io::Error::other)?;
    write_output(page.as_bytes(), dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;

    fn empty_report() -> Report {
        Report::new(&[])
    }

    #[test]
    fn the_page_names_no_external_url() {
        let page = render(&empty_report()).unwrap_or_default();
        assert!(page.len() > 1000, "the page was rendered");
        let lower = page.to_ascii_lowercase();
        for needle in [
            "//cdn",
            "@import",
            "url(",
            " src=",
            " href=",
            "srcset",
            "fetch(",
            "xmlhttprequest",
            "websocket",
            "eventsource",
            "sendbeacon",
            "@font-face",
            "<link",
            "<iframe",
            "<img",
            "import(",
        ] {
            assert!(!lower.contains(needle), "the page contains {needle:?}");
        }
        // Absolute URLs of any scheme, and protocol-relative ones (`"//host`).
        let re = regex::Regex::new(r#"\b[a-z][a-z0-9+.-]*://|["'(=]\s*//[a-z0-9]"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!re.is_match(&lower), "a URL: {:?}", re.find(&lower));
        assert!(lower.contains("http-equiv=\"content-security-policy\""));
        assert!(lower.contains("default-src 'none'"));
    }

    #[test]
    fn the_inline_json_cannot_close_its_script() {
        let mut r = empty_report();
        r.tool.version = "</script><img src=x onerror=alert(1)>\u{2028}\u{2029}&<!--";
        let data = script_json(&r).unwrap_or_default();
        for bad in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
            assert!(!data.contains(bad), "{bad:?} left in {data}");
        }
        let back: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
        assert_eq!(
            back["tool"]["version"],
            "</script><img src=x onerror=alert(1)>\u{2028}\u{2029}&<!--"
        );
        let page = render(&r).unwrap_or_default();
        assert_eq!(
            page.matches("</script>").count(),
            2,
            "only the two real ends"
        );
        assert!(!page.contains("<img"));
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_blocks() {
        let page = render(&empty_report()).unwrap_or_default();
        let script = &page[page.rfind("<script>").map_or(0, |i| i + 8)..];
        let script = &script[..script.find("</script>").unwrap_or(0)];
        assert_eq!(script, JS);
        assert!(page.contains(&csp_hash(JS)) && page.contains(&csp_hash(CSS)));
        // A known vector: sha256("") in base64.
        assert_eq!(
            csp_hash(""),
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
        );
    }
}
