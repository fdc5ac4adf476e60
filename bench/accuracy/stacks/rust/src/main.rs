//! Counts words and bytes of its arguments (or of a greeting), largest first.
use std::collections::BTreeMap;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = if args.is_empty() { "layerscope shows why an image is big".to_string() } else { args.join(" ") };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word).or_default() += 1;
    }
    let mut sorted: Vec<_> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (word, n) in sorted {
        println!("{n:>3} {word}");
    }
    println!("{} bytes", text.len());
}
