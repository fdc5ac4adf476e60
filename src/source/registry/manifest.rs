//! Registry manifests: Docker schema 2, OCI image manifests, manifest lists
//! and OCI indexes; choosing a platform from a list.

use std::collections::HashMap;

use serde::Deserialize;

/// Media types asked for (the Accept header of a manifest request).
pub const ACCEPT: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

const INDEX_TYPES: [&str; 2] = [ACCEPT[0], ACCEPT[1]];
const IMAGE_TYPES: [&str; 2] = [ACCEPT[2], ACCEPT[3]];

/// A manifest is small; a registry that sends more is not answering.
pub const MAX_MANIFEST: usize = 4 << 20;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    /// Where a foreign layer lives (never fetched).
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// A foreign (Windows base) or non-distributable layer: the registry
    /// does not hold it, or may not hand it out.
    pub fn is_foreign(&self) -> bool {
        self.media_type.contains(".foreign.") || self.media_type.contains(".nondistributable.")
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this program runs on.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
            return Err(format!(
                "--platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8"
            ));
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    /// (os, arch, variant) with the aliases containerd applies: x86_64 is
    /// amd64, aarch64 is arm64, arm64 without a variant is arm64/v8, arm
    /// without one is arm/v7, amd64/v1 is amd64.
    fn normalized(&self) -> (String, String, String) {
        let os = self.os.to_ascii_lowercase();
        let mut arch = self.architecture.to_ascii_lowercase();
        let mut variant = self
            .variant
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match arch.as_str() {
            "x86_64" | "x86-64" => arch = "amd64".into(),
            "aarch64" => arch = "arm64".into(),
            "i386" => arch = "386".into(),
            _ => {}
        }
        match (arch.as_str(), variant.as_str()) {
            ("arm64", "" | "8") => variant = "v8".into(),
            ("arm", "") => variant = "v7".into(),
            ("arm", "5" | "6" | "7" | "8") => variant = format!("v{variant}"),
            ("amd64", "v1") => variant.clear(),
            _ => {}
        }
        (os, arch, variant)
    }

    /// Does an image of platform `have` satisfy `self` (what was asked)?
    /// Without a variant asked for, any variant of the os/arch does.
    pub fn accepts(&self, have: &Platform) -> bool {
        let (os, arch, variant) = self.normalized();
        let (o, a, v) = have.normalized();
        os == o && arch == a && (self.variant.is_none() || variant == v)
    }

    fn is_attestation(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match self.variant.as_deref() {
            Some(v) if !v.is_empty() => write!(f, "/{v}"),
            _ => Ok(()),
        }
    }
}

/// One image's manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageManifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// What a manifest request returned.
#[derive(Debug, Clone)]
pub enum Manifest {
    Image(ImageManifest),
    /// A manifest list or OCI index: one entry per platform.
    Index(Vec<Descriptor>),
}

/// Parse a manifest; `content_type` is the response's Content-Type,
/// used when the body does not say what it is.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, String> {
    if body.len() > MAX_MANIFEST {
        return Err(format!(
            "the manifest is {} bytes, more than a manifest can be ({MAX_MANIFEST})",
            body.len()
        ));
    }
    let probe: Probe =
        serde_json::from_slice(body).map_err(|e| format!("the manifest is not valid JSON: {e}"))?;
    let declared = probe
        .media_type
        .clone()
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()))
        .unwrap_or_default();
    if probe.schema_version == Some(1)
        || declared.starts_with("application/vnd.docker.distribution.manifest.v1+")
    {
        return Err(
            "the registry serves a Docker schema 1 manifest, which layerscope does not read (push the image again with a current client)".into(),
        );
    }
    let is_index = INDEX_TYPES.contains(&declared.as_str())
        || (!IMAGE_TYPES.contains(&declared.as_str())
            && probe.manifests.is_some()
            && probe.config.is_none());
    if is_index {
        let idx: Index = serde_json::from_slice(body)
            .map_err(|e| format!("the image index is malformed: {e}"))?;
        return Ok(Manifest::Index(idx.manifests));
    }
    if !declared.is_empty() && !IMAGE_TYPES.contains(&declared.as_str()) {
        return Err(format!(
            "the manifest's media type is {declared:?}, not a container image"
        ));
    }
    let m: ImageManifest =
        serde_json::from_slice(body).map_err(|e| format!("the manifest is malformed: {e}"))?;
    const CONFIGS: [&str; 2] = [
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    ];
    if !CONFIGS.contains(&m.config.media_type.as_str()) {
        return Err(format!(
            "the manifest's config is {:?}, not a container image config (an artifact?)",
            m.config.media_type
        ));
    }
    for (i, l) in m.layers.iter().enumerate() {
        let t = l.media_type.as_str();
        let known = t.starts_with("application/vnd.oci.image.layer.")
            || t.starts_with("application/vnd.docker.image.rootfs.");
        if !known {
            return Err(format!(
                "layer {} has media type {t:?}, not a container image layer",
                i + 1
            ));
        }
    }
    Ok(m.into())
}

impl From<ImageManifest> for Manifest {
    fn from(m: ImageManifest) -> Self {
        Manifest::Image(m)
    }
}

/// The index entry for `want`. Attestations (`unknown/unknown`) are
/// skipped; without a variant asked for, the arch's default variant wins,
/// else the first of that os/arch. None found: the error lists what is.
pub fn choose<'a>(entries: &'a [Descriptor], want: &Platform) -> Result<&'a Descriptor, String> {
    let images: Vec<(&Descriptor, &Platform)> = entries
        .iter()
        .filter(|d| {
            d.annotations
                .get("vnd.docker.reference.type")
                .map(String::as_str)
                != Some("attestation-manifest")
        })
        .filter_map(|d| d.platform.as_ref().map(|p| (d, p)))
        .filter(|(_, p)| !p.is_attestation())
        .collect();
    let (os, arch, variant) = want.normalized();
    if let Some((d, _)) = images
        .iter()
        .find(|(_, p)| p.normalized() == (os.clone(), arch.clone(), variant.clone()))
    {
        return Ok(d);
    }
    if want.variant.is_none()
        && let Some((d, _)) = images.iter().find(|(_, p)| {
            let (o, a, _) = p.normalized();
            o == os && a == arch
        })
    {
        return Ok(d);
    }
    let mut available: Vec<String> = images.iter().map(|(_, p)| p.to_string()).collect();
    available.dedup();
    Err(if available.is_empty() {
        format!("the image index has no image for any platform (wanted {want})")
    } else {
        format!(
            "no {want} image; available: {} (choose one with --platform)",
            available.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn index(platforms: &[(&str, &str, Option<&str>)]) -> Vec<Descriptor> {
        platforms
            .iter()
            .enumerate()
            .map(|(i, (os, arch, v))| Descriptor {
                media_type: ACCEPT[2].into(),
                digest: format!("sha256:{i:064}"),
                size: 100,
                urls: Vec::new(),
                annotations: HashMap::new(),
                platform: Some(Platform {
                    os: os.to_string(),
                    architecture: arch.to_string(),
                    variant: v.map(str::to_string),
                }),
            })
            .collect()
    }

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn platforms_match_with_containerd_aliases() {
        let idx = index(&[
            ("linux", "amd64", None),
            ("linux", "arm64", Some("v8")),
            ("linux", "arm", Some("v6")),
            ("linux", "arm", Some("v7")),
            ("unknown", "unknown", None),
        ]);
        assert_eq!(
            choose(&idx, &p("linux/amd64")).unwrap().digest,
            idx[0].digest
        );
        assert_eq!(
            choose(&idx, &p("linux/arm64")).unwrap().digest,
            idx[1].digest
        );
        assert_eq!(
            choose(&idx, &p("linux/arm64/v8")).unwrap().digest,
            idx[1].digest
        );
        assert_eq!(choose(&idx, &p("linux/arm")).unwrap().digest, idx[3].digest);
        assert_eq!(
            choose(&idx, &p("linux/arm/v6")).unwrap().digest,
            idx[2].digest
        );
        let e = choose(&idx, &p("linux/s390x")).unwrap_err();
        assert_eq!(
            e,
            "no linux/s390x image; available: linux/amd64, linux/arm64/v8, linux/arm/v6, linux/arm/v7 (choose one with --platform)"
        );
        assert!(!e.contains("unknown"));
        assert!(p("linux/arm64").accepts(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").accepts(&p("linux/aarch64/8")));
        assert!(!p("linux/arm/v6").accepts(&p("linux/arm/v7")));
        assert!(!p("linux/amd64").accepts(&p("windows/amd64")));
        let only_arm64 = index(&[("linux", "arm64", None)]);
        assert!(choose(&only_arm64, &p("linux/arm64/v8")).is_ok());
        assert!(choose(&only_arm64, &p("linux/arm64/v9")).is_err());
    }

    #[test]
    fn platform_flags_are_checked() {
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64/v8");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"] {
            assert!(
                Platform::parse(bad).unwrap_err().contains("OS/ARCH"),
                "{bad}"
            );
        }
    }

    fn image_json(config_type: &str, layer_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{config_type}","digest":"{D1}","size":7}},"layers":[{{"mediaType":"{layer_type}","digest":"{D1}","size":9}}]}}"#,
            ACCEPT[3]
        )
    }

    #[test]
    fn manifests_of_each_kind_parse() {
        let m = parse(
            None,
            image_json(
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
            .as_bytes(),
        )
        .unwrap();
        let Manifest::Image(m) = m else {
            panic!("not an image")
        };
        assert_eq!((m.config.size, m.layers[0].size), (7, 9));
        // An OCI manifest (its type has "manifest.v1+" in it too).
        let oci = image_json(
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+zstd",
        )
        .replace(ACCEPT[3], ACCEPT[2]);
        assert!(matches!(
            parse(None, oci.as_bytes()),
            Ok(Manifest::Image(_))
        ));
        assert!(!m.layers[0].is_foreign());
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{D1}","size":5,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            ACCEPT[2]
        );
        // No mediaType in the body: the Content-Type says it.
        let Manifest::Index(e) = parse(Some(ACCEPT[0]), idx.as_bytes()).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(e.len(), 1);
        let foreign = parse(
            None,
            image_json(
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            )
            .as_bytes(),
        )
        .unwrap();
        let Manifest::Image(f) = foreign else {
            panic!()
        };
        assert!(f.layers[0].is_foreign());
    }

    #[test]
    fn what_is_not_an_image_is_named() {
        let e = parse(None, br#"{"schemaVersion":1,"name":"x"}"#).unwrap_err();
        assert!(e.contains("schema 1"), "{e}");
        let e = parse(
            None,
            image_json("application/vnd.cncf.helm.config.v1+json", "x").as_bytes(),
        )
        .unwrap_err();
        assert!(e.contains("artifact"), "{e}");
        let e = parse(
            None,
            image_json("application/vnd.oci.image.config.v1+json", "text/plain").as_bytes(),
        )
        .unwrap_err();
        assert!(e.contains("layer 1"), "{e}");
        assert!(
            parse(None, b"<html>")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            parse(None, br#"{"config":{}}"#)
                .unwrap_err()
                .contains("malformed")
        );
    }
}
