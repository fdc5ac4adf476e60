//! `docker://` against a registry with token auth (`auth: token`), the
//! bearer flow Docker Hub, GHCR and Quay use: the registry answers 401 with
//! a `WWW-Authenticate: Bearer realm=...` challenge, the client gets a JWT
//! from the issuer (anonymously or with the stored credentials) and sends
//! it. The issuer runs in the test ([`common_registry::issuer`]) and signs
//! with a key the registry trusts; the registry is Debian's
//! docker-registry. Checked: anonymous and credentialed pulls, refusals,
//! a token that stops working mid-pull, and that a redirect to another
//! host (object storage) never carries the Authorization header.

mod common_engine;
mod common_registry;

use common_engine::*;
use common_registry::faults::{Action, FaultProxy, ObjectStore, Rule};
use common_registry::issuer::Issuer;
use common_registry::*;
use serde_json::Value;

/// Two gzip layers pushed under `tag`: (layer descriptors, file bytes).
fn push_two_layers(p: &Pusher, tag: &str) -> (Vec<Value>, u64) {
    let tars = [
        tar_of(&[Item::File("a.bin", noise(60_000, 21), 0o644)]),
        tar_of(&[
            Item::Dir("etc", 0o755),
            Item::File("etc/b.conf", b"b = 1\n".repeat(2000), 0o644),
        ]),
    ];
    let layers: Vec<Value> = tars
        .iter()
        .map(|t| p.blob("application/vnd.oci.image.layer.v1.tar+gzip", &gzip(t)))
        .collect();
    let diff_ids: Vec<String> = tars.iter().map(|t| sha256(t)).collect();
    p.manifest(
        tag,
        OCI_MANIFEST,
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": p.config(OCI_CONFIG, "amd64", None, &diff_ids),
            "layers": layers}),
    );
    (layers, 60_000 + 6 * 2000)
}

fn pull_size(layers: &[Value]) -> u64 {
    layers
        .iter()
        .map(|l| l["size"].as_u64().expect("size"))
        .sum()
}

fn digest(l: &Value) -> String {
    l["digest"].as_str().expect("digest").to_string()
}

#[test]
fn token_auth_anonymous_credentialed_and_refused() {
    let test = "token_auth_anonymous_credentialed_and_refused";
    if !tools_available(test) {
        return;
    }
    let issuer = Issuer::start(true);
    let reg = Registry::start_with(&issuer.auth(), None);
    let host = reg.host();
    let repo = format!("{PREFIX}/{}-token", std::process::id());
    let p = Pusher::new(&reg, &repo);
    let (layers, files) = push_two_layers(&p, "v1");
    let image = format!("docker://{host}/{repo}:v1");
    let check = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let img = json_of(&out.stdout)["images"][0].clone();
        assert_eq!(img["totals"]["size_bytes"].as_u64(), Some(files));
        assert_eq!(
            img["totals"]["pull_size_bytes"].as_u64(),
            Some(pull_size(&layers)),
            "the manifest's sizes"
        );
    };

    // Anonymous: a token without credentials (pull only).
    let anon = Env::new();
    let before = issuer.seen().len();
    check(
        anon.layerscope()
            .args([&image, "--json", "-"])
            .output()
            .expect("run"),
    );
    let asked = &issuer.seen()[before..];
    assert!(
        !asked.is_empty(),
        "the registry's challenge led to the issuer"
    );
    assert!(
        asked
            .iter()
            .all(|r| r.user.is_none() && r.granted && r.scope == format!("repository:{repo}:pull")),
        "{asked:?}"
    );

    // With the stored credentials: the issuer sees the user.
    let env = Env::new();
    env.store_credentials(&host);
    let before = issuer.seen().len();
    check(
        env.layerscope()
            .args([&image, "--json", "-"])
            .output()
            .expect("run"),
    );
    let asked = &issuer.seen()[before..];
    assert!(
        !asked.is_empty()
            && asked
                .iter()
                .all(|r| r.user.as_deref() == Some(USER) && r.granted),
        "{asked:?}"
    );

    // Wrong password: the issuer refuses; one line, no secret.
    let wrong = "Wr0ng-token-PW";
    let bad = Env::new();
    bad.write_config(&format!(
        r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
        b64(&format!("{USER}:{wrong}"))
    ));
    let e = bad.fails(&[&image, "--json", "-"]);
    assert!(e.contains("refused the credentials from"), "{e}");
    assert!(
        !e.contains(wrong) && !e.contains(&b64(&format!("{USER}:{wrong}"))),
        "{e}"
    );

    // No anonymous pulls any more: no credentials is a refusal that says
    // how to log in.
    issuer
        .anonymous
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let e = Env::new().fails(&[&image, "--json", "-"]);
    assert!(
        e.contains("none are stored") && e.contains(&format!("docker login {host}")),
        "{e}"
    );
}

#[test]
fn redirects_never_carry_authorization_and_a_401_mid_pull_authenticates_again() {
    let test = "redirects_never_carry_authorization_and_a_401_mid_pull_authenticates_again";
    if !tools_available(test) {
        return;
    }
    let issuer = Issuer::start(false);
    let reg = Registry::start_with(&issuer.auth(), None);
    let repo = format!("{PREFIX}/{}-redirect", std::process::id());
    let p = Pusher::new(&reg, &repo);
    let (layers, files) = push_two_layers(&p, "v1");
    let (d1, d2) = (digest(&layers[0]), digest(&layers[1]));
    let proxy = FaultProxy::start(reg.port);
    // The first layer is served by object storage on another host.
    let store = ObjectStore::start("127.0.0.2", reg.blobs());
    proxy.add(Rule::new(
        &["GET ", &format!("/blobs/{d1}")],
        usize::MAX,
        Action::Redirect(store.base.clone()),
    ));
    // The second one's first GET meets a token that stopped working, as
    // the registry says it.
    let challenge = format!(
        r#"Bearer realm="{}",service="{SERVICE}",scope="repository:{repo}:pull",error="invalid_token""#,
        issuer.realm()
    );
    proxy.add(Rule::new(
        &["GET ", &format!("/blobs/{d2}")],
        1,
        Action::Status(401, vec![("WWW-Authenticate", challenge)]),
    ));
    let env = Env::new();
    env.store_credentials(&proxy.host());
    let before = issuer.seen().len();
    let img = env.report(&[
        &format!("docker://{}/{repo}:v1", proxy.host()),
        "--json",
        "-",
    ])["images"][0]
        .clone();
    assert_eq!(img["totals"]["size_bytes"].as_u64(), Some(files));
    assert_eq!(
        img["totals"]["pull_size_bytes"].as_u64(),
        Some(pull_size(&layers))
    );

    // The registry got the token; the object store never saw it.
    let to_registry = proxy.matching(&[&format!("/blobs/{d1}")]);
    assert_eq!(to_registry.len(), 1, "{to_registry:?}");
    assert!(
        to_registry[0]
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer ")),
        "{to_registry:?}"
    );
    let at_store = store.seen.lock().expect("lock").clone();
    assert_eq!(at_store.len(), 1, "{at_store:?}");
    assert!(at_store[0].0.contains(&d1));
    assert_eq!(at_store[0].1, None, "Authorization went to another host");

    // 401, a new token, the same GET again with it.
    let second: Vec<String> = proxy
        .matching(&[&format!("/blobs/{d2}")])
        .iter()
        .map(|s| s.done.clone())
        .collect();
    assert_eq!(second, ["401", "passed"]);
    let tokens = issuer.seen()[before..].to_vec();
    assert_eq!(tokens.len(), 2, "one login, one after the 401: {tokens:?}");
    assert!(
        tokens
            .iter()
            .all(|t| t.user.as_deref() == Some(USER) && t.granted)
    );
    let retried = proxy.matching(&[&format!("/blobs/{d2}")]);
    assert_ne!(
        retried[0].authorization, retried[1].authorization,
        "the retry carries the new token"
    );
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn an_identity_token_is_exchanged_for_an_access_token() {
    let test = "an_identity_token_is_exchanged_for_an_access_token";
    if !tools_available(test) {
        return;
    }
    // No anonymous pulls: only the exchanged token gets in.
    let issuer = Issuer::start(false);
    let reg = Registry::start_with(&issuer.auth(), None);
    let host = reg.host();
    let repo = format!("{PREFIX}/{}-refresh", std::process::id());
    let p = Pusher::new(&reg, &repo);
    let (layers, files) = push_two_layers(&p, "v1");
    let image = format!("docker://{host}/{repo}:v1");

    // What `docker login` stores for an OAuth2 registry.
    let env = Env::new();
    env.write_config(&format!(
        r#"{{"auths":{{"{host}":{{"identitytoken":"{}"}}}}}}"#,
        common_registry::issuer::REFRESH
    ));
    let before = issuer.seen().len();
    let img = env.report(&[&image, "--json", "-"])["images"][0].clone();
    assert_eq!(img["totals"]["size_bytes"].as_u64(), Some(files));
    assert_eq!(
        img["totals"]["pull_size_bytes"].as_u64(),
        Some(pull_size(&layers))
    );
    let asked = &issuer.seen()[before..];
    assert!(
        !asked.is_empty()
            && asked.iter().all(|r| r.user.as_deref() == Some("<token>")
                && r.granted
                && r.scope == format!("repository:{repo}:pull")),
        "{asked:?}"
    );

    // A revoked refresh token: one line that says to log in again, and
    // shows no token.
    let revoked = "revoked-refresh-token";
    env.write_config(&format!(
        r#"{{"auths":{{"{host}":{{"identitytoken":"{revoked}"}}}}}}"#
    ));
    let e = env.fails(&[&image]);
    assert!(
        e.contains("identity token") && e.contains("log in again"),
        "{e}"
    );
    assert!(!e.contains(revoked), "{e}");
}
