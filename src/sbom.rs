//! The software bill of materials of a build or a card: SPDX 2.3 as JSON (and, with
//! `--cyclonedx`, the same document as CycloneDX 1.5 JSON). The outputs are the
//! described packages; each CONTAINS every Debian package that put files into the image
//! (name, version, supplier from the Maintainer field, purl, the .deb's SHA-256, the
//! licence its machine-readable `debian/copyright` declares, else NOASSERTION), kiln's
//! own generated content (init tree, accounts, config files, overlays), which is
//! GENERATED_FROM the board file, and on a card the kernel and boot-file packages, and
//! what kiln built from source (U-Boot): the binary the card CONTAINS, GENERATED_FROM
//! the Debian source package (its .dsc's SHA-256, the licence of its
//! `debian/copyright`) and the board. The same build gives the same bytes: the
//! namespace is derived from the content and the time is SOURCE_DATE_EPOCH. Mirrors are
//! never named: a package's download location is NOASSERTION, and its purl and the lock
//! identify it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::config::Board;
use crate::rootfs::{Facts, Rootfs};

/// What an SBOM describes.
pub struct Subject<'a> {
    pub outputs: &'a [PathBuf],
    /// SPDX's primaryPackagePurpose of the outputs: `ARCHIVE` or `FIRMWARE`.
    pub purpose: &'static str,
    /// Packages whose files are in the outputs besides the image tree's (a card's
    /// kernel and boot files).
    pub also: &'a [String],
    /// Binaries kiln built from source packages for the outputs (a card's U-Boot).
    pub built: &'a [crate::image::uboot::Built],
}

/// Writes the SBOM to `path` (atomically).
pub fn write(board: &Board, rootfs: &Rootfs, subject: &Subject, path: &Path) -> Result<()> {
    let text = render(board, rootfs, subject)?;
    crate::host::temp::write_file(path, text.as_bytes())?;
    Ok(())
}

/// Where `kiln image` writes a card's SBOM: `CARD.spdx.json` beside it.
pub fn beside(card: &Path) -> PathBuf {
    beside_as(card, "spdx.json")
}

/// `CARD.EXTENSION` beside the card.
pub fn beside_as(card: &Path, extension: &str) -> PathBuf {
    let mut name = card.as_os_str().to_owned();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

/// The packages a card holds files of besides the image tree's: the kernel image
/// package (not its metapackage) and the boot files' packages.
pub fn on_the_card(rootfs: &Rootfs) -> Vec<String> {
    let has_dependency = |name: &str| {
        rootfs
            .packages
            .values()
            .any(|facts| facts.why.wanted_by.as_deref() == Some(name))
    };
    rootfs
        .packages
        .iter()
        .filter(|(name, facts)| match facts.why.role {
            crate::fetch::Role::BootFiles => true,
            crate::fetch::Role::Kernel => !has_dependency(name),
            _ => false,
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// `kiln build --licenses DIR`: each package's copyright file as DIR/PACKAGE/copyright,
/// as Buildroot's legal-info collects them.
pub fn licenses(rootfs: &Rootfs, dir: &Path) -> Result<usize> {
    let (contained, _) = contributors(rootfs);
    let mut written = 0;
    for name in &contained {
        let Some(text) = &rootfs.packages[name].copyright else {
            continue;
        };
        let package_dir = dir.join(name);
        std::fs::create_dir_all(&package_dir)
            .with_context(|| format!("unable to create {}", package_dir.display()))?;
        crate::host::temp::write_file(&package_dir.join("copyright"), text.as_bytes())?;
        written += 1;
    }
    Ok(written)
}

/// The packages whose files the tree holds, and whether anything kiln made is in it.
fn contributors(rootfs: &Rootfs) -> (BTreeSet<String>, bool) {
    let mut packages = BTreeSet::new();
    let mut generated = false;
    for (_, node) in rootfs.tree.iter() {
        if rootfs.packages.contains_key(&*node.origin) {
            packages.insert(node.origin.to_string());
        } else if !node.implicit {
            generated = true;
        }
    }
    (packages, generated)
}

/// One package of the document: an SPDX package, a CycloneDX component.
struct Item {
    id: String,
    name: String,
    version: Option<String>,
    /// SPDX's form: `Person: NAME (MAIL)` or `Organization: NAME (MAIL)`.
    supplier: Option<String>,
    /// SPDX's primaryPackagePurpose, when it says more than "a package".
    purpose: Option<&'static str>,
    /// CycloneDX's component type.
    kind: &'static str,
    sha256: Option<String>,
    /// An SPDX licence expression, or NOASSERTION.
    license: String,
    purl: Option<String>,
    comment: Option<String>,
}

impl Item {
    fn new(id: String, name: &str, kind: &'static str) -> Item {
        Item {
            id,
            name: name.to_string(),
            version: None,
            supplier: None,
            purpose: None,
            kind,
            sha256: None,
            license: "NOASSERTION".to_string(),
            purl: None,
            comment: None,
        }
    }
}

/// What an SBOM says, before it is written in a format.
struct Document {
    title: String,
    /// A UUID derived from the content.
    namespace: String,
    created: String,
    items: Vec<Item>,
    /// (from, SPDX relationship type, to), by id.
    relationships: Vec<(String, &'static str, String)>,
    /// LicenseRef- identifiers and their texts.
    extracted: BTreeMap<String, String>,
}

/// The SPDX 2.3 JSON document.
pub fn render(board: &Board, rootfs: &Rootfs, subject: &Subject) -> Result<String> {
    Ok(spdx(&document(board, rootfs, subject)?))
}

/// The same SBOM as CycloneDX 1.5 JSON.
pub fn render_cyclonedx(board: &Board, rootfs: &Rootfs, subject: &Subject) -> Result<String> {
    Ok(cyclonedx(&document(board, rootfs, subject)?))
}

/// Writes the CycloneDX SBOM to `path` (atomically).
pub fn write_cyclonedx(
    board: &Board,
    rootfs: &Rootfs,
    subject: &Subject,
    path: &Path,
) -> Result<()> {
    let text = render_cyclonedx(board, rootfs, subject)?;
    crate::host::temp::write_file(path, text.as_bytes())?;
    Ok(())
}

fn document(board: &Board, rootfs: &Rootfs, subject: &Subject) -> Result<Document> {
    let (mut contained, generated) = contributors(rootfs);
    contained.extend(
        subject
            .also
            .iter()
            .filter(|name| rootfs.packages.contains_key(*name))
            .cloned(),
    );
    let mut ids = Ids::default();
    let mut items = Vec::new();
    let mut relationships = Vec::new();
    let mut extracted: BTreeMap<String, String> = BTreeMap::new();
    let mut fingerprint = Sha256::new();
    let output_kind = if subject.purpose == "FIRMWARE" {
        "firmware"
    } else {
        "file"
    };

    let mut outputs = Vec::new();
    for output in subject.outputs {
        let (sha256, _) = crate::lock::hash_file(output)?;
        fingerprint.update(sha256.as_bytes());
        let name = file_name(output);
        let id = ids.make("SPDXRef-Image-", &name);
        relationships.push(("SPDXRef-DOCUMENT".to_string(), "DESCRIBES", id.clone()));
        items.push(Item {
            version: Some(board.name.clone()),
            purpose: Some(subject.purpose),
            sha256: Some(sha256),
            ..Item::new(id.clone(), &name, output_kind)
        });
        outputs.push(id);
    }

    let board_bytes = std::fs::read(&board.file)
        .with_context(|| format!("unable to read {}", board.file.display()))?;
    let board_sha = hex(&Sha256::digest(&board_bytes));
    fingerprint.update(board_sha.as_bytes());
    items.push(Item {
        purpose: Some("SOURCE"),
        sha256: Some(board_sha),
        comment: Some(
            "The board config the outputs were built from (with the files it inherits)."
                .to_string(),
        ),
        ..Item::new("SPDXRef-Board".to_string(), &file_name(&board.file), "file")
    });
    if generated {
        items.push(Item {
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
            supplier: Some("Organization: kiln".to_string()),
            comment: Some("What kiln made from the board: the s6-linux-init tree and stage 1, /etc/passwd, group and shadow, busybox applet links, alternatives links, device nodes, the board's overlays and services.".to_string()),
            ..Item::new(
                "SPDXRef-kiln-generated".to_string(),
                "kiln-generated",
                "file",
            )
        });
        relationships.push((
            "SPDXRef-kiln-generated".to_string(),
            "GENERATED_FROM",
            "SPDXRef-Board".to_string(),
        ));
        for output in &outputs {
            relationships.push((
                output.clone(),
                "CONTAINS",
                "SPDXRef-kiln-generated".to_string(),
            ));
        }
    }

    for name in &contained {
        let facts = &rootfs.packages[name];
        let deb = rootfs
            .debs
            .get(name)
            .with_context(|| format!("{name}: no .deb"))?;
        let (sha256, _) = crate::lock::hash_file(deb)?;
        fingerprint.update(sha256.as_bytes());
        let id = ids.make("SPDXRef-Package-", name);
        let license = facts
            .copyright
            .as_deref()
            .and_then(|text| declared_license(text, name, &mut extracted))
            .unwrap_or_else(|| "NOASSERTION".to_string());
        items.push(Item {
            version: Some(facts.why.version.clone()),
            supplier: facts.maintainer.as_deref().map(supplier),
            sha256: Some(sha256),
            license,
            purl: Some(purl(name, facts)),
            ..Item::new(id.clone(), name, "library")
        });
        for output in &outputs {
            relationships.push((output.clone(), "CONTAINS", id.clone()));
        }
    }

    for built in subject.built {
        let source = &built.source;
        fingerprint.update(source.dsc_sha256().as_bytes());
        let source_id = ids.make("SPDXRef-Source-", &source.package);
        let license = crate::source::dsc::copyright(&source.dir, &source.dsc)
            .and_then(|text| declared_license(&text, &source.package, &mut extracted))
            .unwrap_or_else(|| "NOASSERTION".to_string());
        items.push(Item {
            version: Some(source.version.clone()),
            supplier: source.dsc.maintainer.as_deref().map(supplier),
            purpose: Some("SOURCE"),
            sha256: Some(source.dsc_sha256().to_string()),
            license,
            purl: Some(source_purl(&source.package, &source.version)),
            comment: Some("Debian's source package (the checksum is its .dsc's); the board's lock pins each of its files.".to_string()),
            ..Item::new(source_id.clone(), &source.package, "library")
        });
        let name = file_name(&built.binary);
        let (sha256, _) = crate::lock::hash_file(&built.binary)?;
        fingerprint.update(sha256.as_bytes());
        let id = ids.make("SPDXRef-Built-", &name);
        items.push(Item {
            version: Some(source.version.clone()),
            supplier: Some("Organization: kiln".to_string()),
            purpose: Some("FIRMWARE"),
            sha256: Some(sha256),
            comment: Some(built.about.clone()),
            ..Item::new(id.clone(), &name, "firmware")
        });
        relationships.push((id.clone(), "GENERATED_FROM", source_id));
        relationships.push((id.clone(), "GENERATED_FROM", "SPDXRef-Board".to_string()));
        for output in &outputs {
            relationships.push((output.clone(), "CONTAINS", id.clone()));
        }
    }

    Ok(Document {
        title: format!("kiln {}", board.name),
        namespace: uuid(&fingerprint.finalize()),
        created: created()?,
        items,
        relationships,
        extracted,
    })
}

fn spdx(doc: &Document) -> String {
    let packages: Vec<String> = doc
        .items
        .iter()
        .map(|item| {
            let mut fields = vec![("name", string(&item.name)), ("SPDXID", string(&item.id))];
            if let Some(version) = &item.version {
                fields.push(("versionInfo", string(version)));
            }
            if let Some(supplier) = &item.supplier {
                fields.push(("supplier", string(supplier)));
            }
            if let Some(purpose) = item.purpose {
                fields.push(("primaryPackagePurpose", string(purpose)));
            }
            fields.push(("downloadLocation", string("NOASSERTION")));
            fields.push(("filesAnalyzed", "false".to_string()));
            if let Some(sha256) = &item.sha256 {
                fields.push(("checksums", checksums(sha256)));
            }
            fields.extend([
                ("licenseConcluded", string("NOASSERTION")),
                ("licenseDeclared", string(&item.license)),
                ("copyrightText", string("NOASSERTION")),
            ]);
            if let Some(purl) = &item.purl {
                fields.push((
                    "externalRefs",
                    format!(
                        "[{}]",
                        object(&[
                            ("referenceCategory", string("PACKAGE-MANAGER")),
                            ("referenceType", string("purl")),
                            ("referenceLocator", string(purl)),
                        ])
                    ),
                ));
            }
            if let Some(comment) = &item.comment {
                fields.push(("comment", string(comment)));
            }
            object(&fields)
        })
        .collect();
    let mut fields = vec![
        ("spdxVersion", string("SPDX-2.3")),
        ("dataLicense", string("CC0-1.0")),
        ("SPDXID", string("SPDXRef-DOCUMENT")),
        ("name", string(&doc.title)),
        (
            "documentNamespace",
            string(&format!("urn:uuid:{}", doc.namespace)),
        ),
        (
            "creationInfo",
            object(&[
                ("created", string(&doc.created)),
                (
                    "creators",
                    format!(
                        "[{}]",
                        string(&format!("Tool: kiln-{}", env!("CARGO_PKG_VERSION")))
                    ),
                ),
            ]),
        ),
        ("packages", array(&packages)),
        (
            "relationships",
            array(
                &doc.relationships
                    .iter()
                    .map(|(from, kind, to)| {
                        object(&[
                            ("spdxElementId", string(from)),
                            ("relationshipType", string(kind)),
                            ("relatedSpdxElement", string(to)),
                        ])
                    })
                    .collect::<Vec<_>>(),
            ),
        ),
    ];
    if !doc.extracted.is_empty() {
        let infos: Vec<String> = doc
            .extracted
            .iter()
            .map(|(id, text)| {
                object(&[
                    ("licenseId", string(id)),
                    ("name", string(id.trim_start_matches("LicenseRef-"))),
                    ("extractedText", string(text)),
                ])
            })
            .collect();
        fields.push(("hasExtractedLicensingInfos", array(&infos)));
    }
    format!("{}\n", object(&fields))
}

/// CycloneDX 1.5: the first described output is the BOM's subject, every other item a
/// component (bom-ref = the SPDX id); CONTAINS becomes `dependencies`, GENERATED_FROM the
/// generated component's `pedigree.ancestors`; a licence expression is kept as written,
/// LicenseRef- ids included (their texts are in the SPDX document).
fn cyclonedx(doc: &Document) -> String {
    let described: Vec<&str> = doc
        .relationships
        .iter()
        .filter(|(from, kind, _)| from == "SPDXRef-DOCUMENT" && *kind == "DESCRIBES")
        .map(|(_, _, to)| to.as_str())
        .collect();
    let subject = described.first().copied();
    let by_id: BTreeMap<&str, &Item> = doc
        .items
        .iter()
        .map(|item| (item.id.as_str(), item))
        .collect();
    let component = |item: &Item, with_ref: bool| -> String {
        let mut fields = vec![("type", string(item.kind))];
        if with_ref {
            fields.push(("bom-ref", string(&item.id)));
        }
        if let Some(supplier) = &item.supplier {
            let text = supplier
                .split_once(": ")
                .map_or(&**supplier, |(_, rest)| rest);
            let mut entity = Vec::new();
            match text.rsplit_once(" (") {
                Some((name, mail)) if mail.ends_with(')') && mail.contains('@') => {
                    entity.push(("name", string(name)));
                    entity.push((
                        "contact",
                        format!(
                            "[{}]",
                            object(&[("email", string(mail.trim_end_matches(')')))])
                        ),
                    ));
                }
                _ => entity.push(("name", string(text))),
            }
            fields.push(("supplier", object(&entity)));
        }
        fields.push(("name", string(&item.name)));
        if let Some(version) = &item.version {
            fields.push(("version", string(version)));
        }
        if let Some(comment) = &item.comment {
            fields.push(("description", string(comment)));
        }
        if let Some(sha256) = &item.sha256 {
            fields.push((
                "hashes",
                format!(
                    "[{}]",
                    object(&[("alg", string("SHA-256")), ("content", string(sha256))])
                ),
            ));
        }
        if item.license != "NOASSERTION" {
            fields.push((
                "licenses",
                format!("[{}]", object(&[("expression", string(&item.license))])),
            ));
        }
        if let Some(purl) = &item.purl {
            fields.push(("purl", string(purl)));
        }
        fields
            .iter()
            .map(|(key, value)| format!("{}: {value}", string(key)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let with_pedigree = |item: &Item| -> String {
        let ancestors: Vec<String> = doc
            .relationships
            .iter()
            .filter(|(from, kind, _)| *from == item.id && *kind == "GENERATED_FROM")
            .filter_map(|(_, _, to)| by_id.get(to.as_str()))
            .map(|ancestor| format!("{{{}}}", component(ancestor, false)))
            .collect();
        if ancestors.is_empty() {
            format!("{{{}}}", component(item, true))
        } else {
            format!(
                "{{{}, \"pedigree\": {{\"ancestors\": [{}]}}}}",
                component(item, true),
                ancestors.join(", ")
            )
        }
    };
    let components: Vec<String> = doc
        .items
        .iter()
        .filter(|item| Some(item.id.as_str()) != subject)
        .map(with_pedigree)
        .collect();
    let mut contains: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, kind, to) in &doc.relationships {
        if *kind == "CONTAINS" {
            contains.entry(from).or_default().push(to);
        }
    }
    let dependencies: Vec<String> = contains
        .iter()
        .map(|(from, to)| {
            object(&[
                ("ref", string(from)),
                (
                    "dependsOn",
                    format!(
                        "[{}]",
                        to.iter()
                            .map(|id| string(id))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            ])
        })
        .collect();
    let tool = object(&[
        ("type", string("application")),
        ("name", string("kiln")),
        ("version", string(env!("CARGO_PKG_VERSION"))),
    ]);
    let mut metadata = vec![
        ("timestamp", string(&doc.created)),
        ("tools", object(&[("components", format!("[{tool}]"))])),
    ];
    if let Some(item) = subject.and_then(|id| by_id.get(id)) {
        metadata.push(("component", with_pedigree(item)));
    }
    let fields = vec![
        (
            "$schema",
            string("http://cyclonedx.org/schema/bom-1.5.schema.json"),
        ),
        ("bomFormat", string("CycloneDX")),
        ("specVersion", string("1.5")),
        (
            "serialNumber",
            string(&format!("urn:uuid:{}", doc.namespace)),
        ),
        ("version", "1".to_string()),
        ("metadata", object(&metadata)),
        ("components", array(&components)),
        ("dependencies", array(&dependencies)),
    ];
    format!("{}\n", object(&fields))
}

/// `name` with every character an SPDX identifier cannot hold (all but letters, digits,
/// `.` and `-`) written as `-`.
fn id_chars(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// SPDXIDs: letters, digits, `.` and `-` only, unique.
#[derive(Default)]
struct Ids(BTreeSet<String>);

impl Ids {
    fn make(&mut self, prefix: &str, name: &str) -> String {
        let base = id_chars(name);
        let mut id = format!("{prefix}{base}");
        let mut n = 2;
        while !self.0.insert(id.clone()) {
            id = format!("{prefix}{base}-{n}");
            n += 1;
        }
        id
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn uuid(hash: &[u8]) -> String {
    // A name-based UUID (version 5 layout) from the content's SHA-256.
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// SOURCE_DATE_EPOCH (default 2000-01-01) as RFC 3339 UTC.
fn created() -> Result<String> {
    let seconds = crate::archive::Options::from_env()?.mtime;
    let (year, month, day, hour, minute, second) = crate::listing::civil(seconds);
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"
    ))
}

/// `Name <mail>` → `Person: Name (mail)`, or `Organization:` for a team or list.
fn supplier(maintainer: &str) -> String {
    let (name, mail) = match maintainer.split_once('<') {
        Some((name, mail)) => (name.trim(), mail.trim_end_matches('>').trim()),
        None => (maintainer.trim(), ""),
    };
    let lower = name.to_ascii_lowercase();
    let kind = if ["team", "maintainers", "group", "developers", "project"]
        .iter()
        .any(|word| lower.contains(word))
    {
        "Organization"
    } else {
        "Person"
    };
    let name = name.replace(['(', ')'], "");
    if mail.is_empty() {
        format!("{kind}: {name}")
    } else {
        format!("{kind}: {name} ({mail})")
    }
}

/// `pkg:deb/debian/NAME@VERSION?arch=ARCH`, version percent-encoded.
fn purl(name: &str, facts: &Facts) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"._-~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "pkg:deb/debian/{}@{}?arch={}",
        encode(name),
        encode(&facts.why.version),
        encode(&facts.why.architecture)
    )
}

/// `pkg:deb/debian/NAME@VERSION?arch=source`, for a source package.
fn source_purl(name: &str, version: &str) -> String {
    let facts = Facts {
        why: crate::fetch::Why {
            version: version.to_string(),
            architecture: "source".to_string(),
            role: crate::fetch::Role::BootFiles,
            wanted_by: None,
            via: None,
        },
        maintainer: None,
        copyright: None,
    };
    purl(name, &facts)
}

/// Debian's licence short names (copyright-format 1.0) as SPDX identifiers.
const LICENSES: [(&str, &str); 40] = [
    ("gpl-1", "GPL-1.0-only"),
    ("gpl-1+", "GPL-1.0-or-later"),
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-2+", "GPL-2.0-or-later"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl-3+", "GPL-3.0-or-later"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2+", "LGPL-2.0-or-later"),
    ("lgpl-2.0", "LGPL-2.0-only"),
    ("lgpl-2.0+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl-3+", "LGPL-3.0-or-later"),
    ("agpl-3", "AGPL-3.0-only"),
    ("agpl-3+", "AGPL-3.0-or-later"),
    ("gfdl-1.3", "GFDL-1.3-only"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("0bsd", "0BSD"),
    ("expat", "MIT"),
    ("mit", "MIT"),
    ("isc", "ISC"),
    ("zlib", "Zlib"),
    ("apache-2.0", "Apache-2.0"),
    ("artistic", "Artistic-1.0"),
    ("artistic-2.0", "Artistic-2.0"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("bsl-1.0", "BSL-1.0"),
    ("psf-2", "PSF-2.0"),
    ("python-2.0", "Python-2.0"),
    ("openssl", "OpenSSL"),
    ("curl", "curl"),
    ("x11", "X11"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    ("ssleay", "SSLeay"),
];

/// The licence a machine-readable copyright file declares: every `Files` paragraph's
/// licence, each Debian name mapped to SPDX (an unknown one becomes a LicenseRef with
/// the file's standalone paragraph as its text), joined with AND. `None` for a file that
/// is not in copyright-format 1.0.
fn declared_license(
    text: &str,
    package: &str,
    extracted: &mut BTreeMap<String, String>,
) -> Option<String> {
    let paragraphs: Vec<BTreeMap<String, String>> = text
        .split("\n\n")
        .map(crate::source::deb::parse_fields)
        .collect();
    let header = paragraphs.first()?;
    if !header.get("Format")?.contains("copyright-format") {
        return None;
    }
    let standalone: BTreeMap<String, String> = paragraphs
        .iter()
        .filter(|fields| !fields.contains_key("Files"))
        .filter_map(|fields| {
            let license = fields.get("License")?;
            let (name, body) = license.split_once('\n').unwrap_or((license, ""));
            Some((name.trim().to_ascii_lowercase(), body.to_string()))
        })
        .collect();
    let mut terms = BTreeSet::new();
    for fields in paragraphs
        .iter()
        .filter(|fields| fields.contains_key("Files"))
    {
        let Some(license) = fields.get("License") else {
            continue;
        };
        let first = license.lines().next().unwrap_or("").trim();
        if first.is_empty() {
            continue;
        }
        terms.insert(expression(first, package, &standalone, extracted));
    }
    if terms.is_empty() {
        return None;
    }
    let terms: Vec<String> = terms.into_iter().collect();
    Some(if terms.len() == 1 {
        terms[0].clone()
    } else {
        terms
            .iter()
            .map(|term| {
                if term.contains(' ') {
                    format!("({term})")
                } else {
                    term.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    })
}

/// One `License:` line (`GPL-2+ or Artistic`, `BSD-3-clause and MIT`) as SPDX.
fn expression(
    line: &str,
    package: &str,
    standalone: &BTreeMap<String, String>,
    extracted: &mut BTreeMap<String, String>,
) -> String {
    let mut out = Vec::new();
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|word| !word.is_empty())
        .collect();
    let mut at = 0;
    while at < words.len() {
        let word = words[at];
        at += 1;
        match word.to_ascii_lowercase().as_str() {
            "or" => out.push("OR".to_string()),
            "and" => out.push("AND".to_string()),
            // `X with Y exception`: the exception is kept in the LicenseRef's text only.
            "with" => {
                while at < words.len() && !matches!(words[at], "or" | "and") {
                    at += 1;
                }
            }
            lower => {
                if let Some((_, spdx)) = LICENSES.iter().find(|(name, _)| *name == lower) {
                    out.push((*spdx).to_string());
                } else {
                    let id = format!("LicenseRef-{}", id_chars(word));
                    let text = standalone
                        .get(lower)
                        .filter(|body| !body.trim().is_empty())
                        .cloned()
                        .unwrap_or_else(|| {
                            format!("{word}: see /usr/share/doc/{package}/copyright in the package")
                        });
                    extracted.entry(id.clone()).or_insert(text);
                    out.push(id);
                }
            }
        }
    }
    // An operator without an operand on each side would not parse: drop strays.
    while out
        .first()
        .is_some_and(|word| word == "OR" || word == "AND")
    {
        out.remove(0);
    }
    while out.last().is_some_and(|word| word == "OR" || word == "AND") {
        out.pop();
    }
    out.dedup_by(|a, b| (a == "OR" || a == "AND") && (b == "OR" || b == "AND"));
    if out.is_empty() {
        "NOASSERTION".to_string()
    } else {
        out.join(" ")
    }
}

fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}: {value}", string(key)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

fn array(items: &[String]) -> String {
    format!("[\n{}\n]", items.join(",\n"))
}

fn checksums(sha256: &str) -> String {
    format!(
        "[{}]",
        object(&[
            ("algorithm", string("SHA256")),
            ("checksumValue", string(sha256)),
        ])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_readable_copyright_becomes_an_spdx_expression() {
        let text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\nFiles: *\nCopyright: 2000 A\nLicense: GPL-2+\n\nFiles: lib/*\nCopyright: 2001 B\nLicense: BSD-3-clause or Expat\n\nFiles: odd/*\nCopyright: 2002 C\nLicense: Odd-License\n\nLicense: Odd-License\n Do what you like.\n";
        let mut extracted = BTreeMap::new();
        assert_eq!(
            declared_license(text, "x", &mut extracted).as_deref(),
            Some("(BSD-3-Clause OR MIT) AND GPL-2.0-or-later AND LicenseRef-Odd-License")
        );
        assert_eq!(
            extracted.get("LicenseRef-Odd-License").map(String::as_str),
            Some("Do what you like.")
        );
        assert_eq!(
            declared_license("This is free software.\n", "x", &mut extracted),
            None
        );
        let mut none = BTreeMap::new();
        assert_eq!(
            expression(
                "GPL-2+ with OpenSSL exception",
                "p",
                &BTreeMap::new(),
                &mut none
            ),
            "GPL-2.0-or-later"
        );
    }

    #[test]
    fn one_document_in_both_formats() {
        let item = |id: &str, name: &str, kind| Item {
            version: Some("1".to_string()),
            sha256: Some("a".repeat(64)),
            ..Item::new(id.to_string(), name, kind)
        };
        let doc = Document {
            title: "kiln b".to_string(),
            namespace: uuid(&[0; 32]),
            created: "2000-01-01T00:00:00Z".to_string(),
            items: vec![
                Item {
                    purpose: Some("FIRMWARE"),
                    ..item("SPDXRef-Image-b.img", "b.img", "firmware")
                },
                Item {
                    supplier: Some("Person: Jane Doe (jane@example.org)".to_string()),
                    purpose: Some("SOURCE"),
                    license: "GPL-2.0-or-later".to_string(),
                    purl: Some(source_purl("u-boot", "1")),
                    ..item("SPDXRef-Source-u-boot", "u-boot", "library")
                },
                item("SPDXRef-Built-u-boot.bin", "u-boot.bin", "firmware"),
            ],
            relationships: vec![
                (
                    "SPDXRef-DOCUMENT".to_string(),
                    "DESCRIBES",
                    "SPDXRef-Image-b.img".to_string(),
                ),
                (
                    "SPDXRef-Built-u-boot.bin".to_string(),
                    "GENERATED_FROM",
                    "SPDXRef-Source-u-boot".to_string(),
                ),
                (
                    "SPDXRef-Image-b.img".to_string(),
                    "CONTAINS",
                    "SPDXRef-Built-u-boot.bin".to_string(),
                ),
            ],
            extracted: BTreeMap::new(),
        };
        expect_test::expect![[r#"
            {"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "kiln b", "documentNamespace": "urn:uuid:00000000-0000-5000-8000-000000000000", "creationInfo": {"created": "2000-01-01T00:00:00Z", "creators": ["Tool: kiln-0.1.0"]}, "packages": [
            {"name": "b.img", "SPDXID": "SPDXRef-Image-b.img", "versionInfo": "1", "primaryPackagePurpose": "FIRMWARE", "downloadLocation": "NOASSERTION", "filesAnalyzed": false, "checksums": [{"algorithm": "SHA256", "checksumValue": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}], "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION"},
            {"name": "u-boot", "SPDXID": "SPDXRef-Source-u-boot", "versionInfo": "1", "supplier": "Person: Jane Doe (jane@example.org)", "primaryPackagePurpose": "SOURCE", "downloadLocation": "NOASSERTION", "filesAnalyzed": false, "checksums": [{"algorithm": "SHA256", "checksumValue": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}], "licenseConcluded": "NOASSERTION", "licenseDeclared": "GPL-2.0-or-later", "copyrightText": "NOASSERTION", "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:deb/debian/u-boot@1?arch=source"}]},
            {"name": "u-boot.bin", "SPDXID": "SPDXRef-Built-u-boot.bin", "versionInfo": "1", "downloadLocation": "NOASSERTION", "filesAnalyzed": false, "checksums": [{"algorithm": "SHA256", "checksumValue": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}], "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION"}
            ], "relationships": [
            {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image-b.img"},
            {"spdxElementId": "SPDXRef-Built-u-boot.bin", "relationshipType": "GENERATED_FROM", "relatedSpdxElement": "SPDXRef-Source-u-boot"},
            {"spdxElementId": "SPDXRef-Image-b.img", "relationshipType": "CONTAINS", "relatedSpdxElement": "SPDXRef-Built-u-boot.bin"}
            ]}
        "#]].assert_eq(&spdx(&doc));
        expect_test::expect![[r#"
            {"$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json", "bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": "urn:uuid:00000000-0000-5000-8000-000000000000", "version": 1, "metadata": {"timestamp": "2000-01-01T00:00:00Z", "tools": {"components": [{"type": "application", "name": "kiln", "version": "0.1.0"}]}, "component": {"type": "firmware", "bom-ref": "SPDXRef-Image-b.img", "name": "b.img", "version": "1", "hashes": [{"alg": "SHA-256", "content": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]}}, "components": [
            {"type": "library", "bom-ref": "SPDXRef-Source-u-boot", "supplier": {"name": "Jane Doe", "contact": [{"email": "jane@example.org"}]}, "name": "u-boot", "version": "1", "hashes": [{"alg": "SHA-256", "content": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}], "licenses": [{"expression": "GPL-2.0-or-later"}], "purl": "pkg:deb/debian/u-boot@1?arch=source"},
            {"type": "firmware", "bom-ref": "SPDXRef-Built-u-boot.bin", "name": "u-boot.bin", "version": "1", "hashes": [{"alg": "SHA-256", "content": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}], "pedigree": {"ancestors": [{"type": "library", "supplier": {"name": "Jane Doe", "contact": [{"email": "jane@example.org"}]}, "name": "u-boot", "version": "1", "hashes": [{"alg": "SHA-256", "content": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}], "licenses": [{"expression": "GPL-2.0-or-later"}], "purl": "pkg:deb/debian/u-boot@1?arch=source"}]}}
            ], "dependencies": [
            {"ref": "SPDXRef-Image-b.img", "dependsOn": ["SPDXRef-Built-u-boot.bin"]}
            ]}
        "#]].assert_eq(&cyclonedx(&doc));
    }

    #[test]
    fn suppliers_purls_and_times() {
        assert_eq!(
            supplier("Debian Install System Team <debian-boot@lists.debian.org>"),
            "Organization: Debian Install System Team (debian-boot@lists.debian.org)"
        );
        assert_eq!(
            supplier("Jane Doe <jane@example.org>"),
            "Person: Jane Doe (jane@example.org)"
        );
        let facts = Facts {
            why: crate::fetch::Why {
                version: "1:1.35.0-4+deb12u1+b1".to_string(),
                architecture: "arm64".to_string(),
                role: crate::fetch::Role::Install,
                wanted_by: None,
                via: None,
            },
            maintainer: None,
            copyright: None,
        };
        assert_eq!(
            purl("busybox-static", &facts),
            "pkg:deb/debian/busybox-static@1%3A1.35.0-4%2Bdeb12u1%2Bb1?arch=arm64"
        );
        assert_eq!(uuid(&[0xff; 32]), "ffffffff-ffff-5fff-bfff-ffffffffffff");
        assert_eq!(created().unwrap_or_default().len(), 20);
    }
}
