//! `layerscope demo` against a real engine and a real registry: it pulls a
//! missing builder image with progress, gives up fast where no registry
//! answers, labels what it builds and never replaces an image it did not
//! build. The builder here is a stand-in (busybox and a `go` script that
//! writes the binary), so the whole build runs on a machine without Go.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common_engine;
mod common_registry;

use std::net::TcpListener;
use std::process::Command as Std;
use std::time::Duration;

use common_engine::*;
use common_registry::{Auth, Registry, tools_available};
use layerscope::demo::{DemoOptions, LABEL, build_demo_as};

/// A stand-in for `go build [flags] -o OUT .`: writes OUT.
const FAKE_GO: &str = "#!/bin/sh\nout=\nprev=\nfor a in \"$@\"; do\n  case \"$prev\" in -o) out=\"$a\";; esac\n  prev=\"$a\"\ndone\nmkdir -p /out /app\necho 'a fake go-app' > \"$out\"\n";

fn docker(args: &[&str]) -> String {
    run_ok(Std::new("docker").args(args), &args.join(" "))
}

fn image_id(name: &str) -> String {
    docker(&["image", "inspect", "-f", "{{.Id}}", name])
        .trim()
        .to_string()
}

fn label_of(name: &str) -> String {
    docker(&[
        "image",
        "inspect",
        "-f",
        &format!("{{{{index .Config.Labels \"{LABEL}\"}}}}"),
        name,
    ])
    .trim()
    .to_string()
}

#[test]
fn demo_leaves_an_image_it_did_not_build_alone() {
    if !engine_available("demo_foreign_image") {
        return;
    }
    let Some(rootfs) = busybox_rootfs() else {
        return;
    };
    let mut clean = Cleanup::new();
    let single = clean.add(&unique("foreign-go-app-single"));
    let multi = clean.add(&unique("foreign-go-app-multi"));
    import(&single, rootfs);
    let before = image_id(&single);
    let opts = DemoOptions {
        base: Some(format!("{PREFIX}-absent-golang:0")),
        force: false,
        pull_timeout: None,
    };
    let err = build_demo_as(&opts, [&single, &multi], &mut |_| {})
        .expect_err("an unlabelled image of that name")
        .to_string();
    assert!(err.contains("did not build it"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    assert_eq!(image_id(&single), before, "the image keeps its id");
    assert_eq!(label_of(&single), "", "and gets no label");
}

#[test]
fn demo_pulls_a_missing_builder_with_progress_and_labels_what_it_builds() {
    if !engine_available("demo_pull") {
        return;
    }
    if !tools_available("demo_pull") {
        return;
    }
    // Plain HTTP on loopback, no auth: the engine pulls from it as is.
    let reg = Registry::start_with(&Auth::None, None);
    let go = Item::File("bin/go", FAKE_GO.as_bytes().to_vec(), 0o755);
    let Some(rootfs) = busybox_rootfs_with(vec![go]) else {
        return;
    };
    let mut clean = Cleanup::new();
    let base = format!("127.0.0.1:{}/fake-golang:1", reg.port);
    clean.add(&base);
    import(&base, rootfs);
    docker(&["push", &base]);
    docker(&["image", "rm", &base]);
    let single = clean.add(&unique("demo-go-app-single"));
    let multi = clean.add(&unique("demo-go-app-multi"));

    let opts = DemoOptions {
        base: Some(base.clone()),
        force: false,
        pull_timeout: None,
    };
    let mut lines: Vec<String> = Vec::new();
    let built = build_demo_as(&opts, [&single, &multi], &mut |l| lines.push(l.to_string()));
    // The builder stage stays untagged, labelled: find it to remove it.
    let builders = docker(&[
        "images",
        "-q",
        "--no-trunc",
        "-f",
        "dangling=true",
        "-f",
        &format!("label={LABEL}=builder"),
    ]);
    for id in builders.lines() {
        clean.add(id);
    }
    built.unwrap_or_else(|e| panic!("demo build: {e}\n{}", lines.join("\n")));
    let log = lines.join("\n");
    assert!(
        log.contains(&format!("demo: pulling the Go builder image {base}")),
        "{log}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(": Pull complete")),
        "per-layer pull progress: {log}"
    );
    assert!(
        !image_id(&base).is_empty(),
        "the builder image is local now"
    );
    // The log names the builder used, never the Dockerfile's default.
    assert!(log.contains(&format!("ARG GO_IMAGE={base}")), "{log}");
    assert!(!log.contains("golang:1.22-alpine"), "{log}");
    // Both images carry the label; the builder stage too, and one line
    // says how to remove it.
    assert_eq!(label_of(&single), "image");
    assert_eq!(label_of(&multi), "image");
    assert!(
        !builders.trim().is_empty(),
        "a labelled builder stage: {log}"
    );
    assert!(
        log.contains(&format!(
            "docker image prune --filter label={LABEL}=builder"
        )),
        "{log}"
    );
    // A labelled image is the demo's own: building again replaces it.
    build_demo_as(&opts, [&single, &multi], &mut |_| {}).expect("rebuild over its own images");
    assert_eq!(label_of(&single), "image");
}

#[test]
fn demo_gives_up_fast_where_no_registry_answers() {
    if !engine_available("demo_no_registry") {
        return;
    }
    // Accepts connections and never answers: a registry behind a dead
    // network path.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let mut clean = Cleanup::new();
    let single = clean.add(&unique("silent-go-app-single"));
    let multi = clean.add(&unique("silent-go-app-multi"));
    let base = format!("127.0.0.1:{port}/golang:1");
    let opts = DemoOptions {
        base: Some(base.clone()),
        force: false,
        pull_timeout: Some(Duration::from_secs(2)),
    };
    let err = build_demo_as(&opts, [&single, &multi], &mut |_| {})
        .expect_err("no registry answers")
        .to_string();
    assert!(err.starts_with("demo: "), "{err}");
    assert!(err.contains("no registry answered"), "{err}");
    assert!(err.contains("no answer within 2 s"), "{err}");
    assert!(err.contains("--base"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}
