//! One image read two ways (an engine's export and its storage) and the
//! reports compared: the image of every kind of entry both ways are tested
//! on, layerscope's JSON report of it through an engine, and the report
//! without the fields that say how its layers were read.

use std::process::Command;

use serde_json::Value;

use super::{Cleanup, Item, build, busybox_rootfs, import, unique};

/// The JSON report of `image` read through the engine at `host`, `via`.
pub fn report(host: &str, image: &str, via: &str) -> Value {
    let bin = assert_cmd::cargo::cargo_bin("layerscope");
    let out = Command::new(bin)
        .env("DOCKER_HOST", host)
        .args(["--no-cache", "--via", via, "--json", "-", image])
        .output()
        .expect("run layerscope");
    assert!(
        out.status.success(),
        "layerscope --via {via} {image} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

/// The report without the fields that say how the layers were read, and
/// how they were.
pub fn without_via(mut v: Value) -> (Value, String) {
    let img = v["images"][0].as_object_mut().expect("image");
    let via = img.remove("layers_read_via").expect("layers_read_via");
    img.remove("layers_cached").expect("layers_cached");
    (v, via.as_str().expect("str").to_string())
}

pub fn assert_same(a: &Value, b: &Value, what: &str) {
    if a == b {
        return;
    }
    let a = serde_json::to_string_pretty(a).unwrap_or_default();
    let b = serde_json::to_string_pretty(b).unwrap_or_default();
    let first = a
        .lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or(0);
    let around = |s: &str| {
        s.lines()
            .skip(first.saturating_sub(3))
            .take(6)
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Whole, for a look (`what` may be an image name: `/` and `:` go).
    let dir = std::env::temp_dir();
    let name: String = what
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let keep = |side: &str, text: &str| {
        let path = dir.join(format!("layerscope-{name}-{side}.json"));
        let _ = std::fs::write(&path, text);
        path.display().to_string()
    };
    panic!(
        "{what}: the reports differ near line {first} ({} and {}):\n{}\n--- and ---\n{}",
        keep("a", &a),
        keep("b", &b),
        around(&a),
        around(&b)
    );
}

/// The diff_ids of a report's first image, bottom first.
pub fn diff_ids(report: &Value) -> Vec<String> {
    report["images"][0]["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["diff_id"].as_str().expect("diff_id").to_string())
        .collect()
}

/// An image of every kind of entry, built by the Docker engine: whiteouts,
/// an opaque directory, hardlinks, symlinks, devices, a chmod copy-up, a
/// non-UTF-8 name, a sparse file, duplicates and os-release.
pub fn kinds_image(clean: &mut Cleanup, name: &str) -> Option<String> {
    let rootfs = busybox_rootfs()?;
    let base = clean.add(&unique(&format!("{name}-busybox")));
    import(&base, rootfs);
    let tag = clean.add(&unique(name));
    build(
        &tag,
        &format!(
            "FROM {base}\n\
             COPY ctx /ctx\n\
             RUN mkdir -p /data/sub /opq /etc && echo hello > /data/keep \
               && head -c 100000 /dev/zero > /data/big && head -c 5000 /dev/urandom > /data/sub/x \
               && echo a > /opq/a && echo b > /opq/b && cp /ctx/same /data/same-copy \
               && echo 'ID=test' > /etc/os-release\n\
             RUN rm /data/big && echo changed > /data/keep && ln /data/sub/x /data/sub/y \
               && ln -s ../data/keep /data/soft && busybox mknod /data/null c 1 3 \
               && busybox mkfifo /data/fifo\n\
             RUN chmod -R 700 /data/sub\n\
             RUN rm -rf /opq && mkdir /opq && echo c > /opq/c \
               && echo x > \"/data/$(printf 'bad\\377name')\" \
               && busybox dd if=/dev/zero of=/data/sparse bs=1 count=1 seek=3000000 2>/dev/null \
               && L=$(busybox head -c 120 /dev/zero | busybox tr '\\0' l) && echo long > /data/$L \
               && ln -s /data/$L /data/long-target && echo id > /data/owned \
               && busybox chown 3000000:3000001 /data/owned\n"
        ),
        vec![
            Item::Dir("ctx", 0o755),
            Item::File("ctx/same", vec![7; 4096], 0o644),
            Item::File("ctx/same-size", vec![8; 4096], 0o644),
            Item::File("ctx/unique", vec![1; 1234], 0o644),
        ],
    );
    Some(tag)
}
