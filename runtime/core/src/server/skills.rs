//! The skills extension (`io.modelcontextprotocol/skills`, SEP-2640): Agent Skills — a
//! `SKILL.md` with YAML frontmatter and the files beside it — served as resources under
//! `skill://<skill-path>/…`, enumerated with `skills/list`, fetched with `skills/get`, and browsed
//! with `resources/directory/read`.
//!
//! ```
//! use portico_core::server::Server;
//! use portico_core::server::skills::Skill;
//!
//! let skill = Skill::new("pdf-processing", "Extract, fill, and assemble PDF documents", "# PDF\n\nUse the forms.\n")
//!     .with_file("references/FORMS.md", "text/markdown", "# Forms\n");
//! assert_eq!(skill.uri(), "skill://pdf-processing/SKILL.md");
//! assert!(skill.skill_md().starts_with("---\nname: \"pdf-processing\"\n"));
//! let server = Server::builder("demo", "1.0.0").skill(skill).build();
//! let caps = server.capabilities();
//! assert!(caps.resources.is_some());
//! assert!(caps.extensions.expect("extensions").contains_key("io.modelcontextprotocol/skills"));
//! ```
//!
//! # Decisions
//!
//! - **A skill is data registered once.** [`Skill`] holds its frontmatter (a JSON object with at
//!   least `name` and `description`), its body, and its other files (text). The framework
//!   renders `SKILL.md` from them, so the file's frontmatter and the `frontmatter` of the
//!   skill's entry cannot disagree: each member is written as `key: <JSON>`, and JSON values are
//!   YAML flow values, so any YAML parser reads back exactly the entry's object.
//! - **Every file is a resource** ([`ServerBuilder::skill`](super::ServerBuilder::skill)
//!   registers them): `SKILL.md` as `text/markdown`, named and described by its frontmatter,
//!   the others with their MIME types, read with `resources/read`. The server then declares the
//!   `resources` capability, which the extension requires.
//! - **Entries are complete.** A `skills/list` / `skills/get` entry lists every file of the
//!   skill (`SKILL.md` first) with `sha256:<hex>` of its bytes and its size, and is never split
//!   across pages. Results carry `ttlMs` and `cacheScope: "public"` like the other lists.
//! - **Directories.** The extension is declared with `directoryRead: true`:
//!   `resources/directory/read` lists the direct children of any directory the skills' URIs
//!   imply (a skill's root, its subfolders, and a skill path's leading segments), subdirectories
//!   with `mimeType: "inode/directory"`, paged like `resources/list`. A URI that is not such a
//!   directory is `-32602`.
//! - **Names follow the Agent Skills rules** (1–64 of `a-z`, `0-9`, `-`; no leading, trailing or
//!   doubled `-`) and are the last segment of the skill path; a skill path's other segments
//!   must be RFC 3986 reg-names. Breaking a rule is a programming error: the constructor panics.
//! - Unknown `skills/get` URIs are `-32602`.

use std::collections::{BTreeMap, BTreeSet};

use portico_protocol::v2026_07_28 as wire;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::resource::{Resource, resource};
use super::{Connection, Era, decode};
use crate::error::ErrorObject;
use crate::message::JsonText;

/// The extension's identifier, the key under `capabilities.extensions`.
pub const EXTENSION: &str = "io.modelcontextprotocol/skills";

/// The methods of the extension.
pub const METHODS: &[&str] = &["skills/list", "skills/get", "resources/directory/read"];

/// The URI scheme of skill files.
pub const SCHEME: &str = "skill://";

/// The name of a skill's manifest.
pub const SKILL_FILE: &str = "SKILL.md";

/// The MIME type of a directory in `resources/directory/read`.
pub const DIRECTORY_MIME_TYPE: &str = "inode/directory";

/// One Agent Skill: `SKILL.md` (frontmatter and body) and the files beside it.
#[derive(Debug, Clone)]
pub struct Skill {
    /// The skill path: its name, optionally under leading segments (`acme/pdf-processing`).
    path: String,
    frontmatter: Map<String, Value>,
    body: String,
    /// Files other than `SKILL.md`, by path relative to the skill's root.
    files: BTreeMap<String, SkillFile>,
}

#[derive(Debug, Clone)]
struct SkillFile {
    mime_type: String,
    text: String,
}

/// Whether `name` follows the Agent Skills naming rules.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// Whether `segment` is a non-empty RFC 3986 reg-name without percent-encoding.
fn is_reg_name(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b))
}

impl Skill {
    /// A skill named `name` (its path too), described by `description`, with `body` after the
    /// frontmatter of its `SKILL.md`. Panics when `name` breaks the naming rules.
    pub fn new(name: &str, description: &str, body: impl Into<String>) -> Self {
        assert!(
            is_valid_name(name),
            "skill name {name:?}: 1-64 of a-z, 0-9 and '-', no leading, trailing or doubled '-'"
        );
        assert!(!description.is_empty(), "skill {name:?}: the description is empty");
        let mut frontmatter = Map::new();
        frontmatter.insert("name".into(), name.into());
        frontmatter.insert("description".into(), description.into());
        Self {
            path: name.to_string(),
            frontmatter,
            body: body.into(),
            files: BTreeMap::new(),
        }
    }

    /// Places the skill under `prefix` (`acme` gives `skill://acme/<name>/SKILL.md`). Panics
    /// when a segment of `prefix` is not a reg-name.
    pub fn under(mut self, prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        assert!(
            prefix.split('/').all(is_reg_name),
            "skill prefix {prefix:?}: each segment must be a non-empty RFC 3986 reg-name"
        );
        self.path = format!("{prefix}/{}", self.name());
        self
    }

    /// Adds a frontmatter member (`license`, `metadata`, `allowed-tools`, …). Panics on `name`,
    /// which is the skill's identity.
    pub fn with_frontmatter(mut self, key: &str, value: Value) -> Self {
        assert!(key != "name", "the skill's name is set by Skill::new");
        if key == "description" {
            assert!(
                value.as_str().is_some_and(|d| !d.is_empty()),
                "the description must be text"
            );
        }
        self.frontmatter.insert(key.to_string(), value);
        self
    }

    /// Adds a text file at `path` relative to the skill's root (`references/FORMS.md`). Panics
    /// on an absolute path, `.`/`..` segments, or `SKILL.md` itself.
    pub fn with_file(mut self, path: &str, mime_type: &str, text: impl Into<String>) -> Self {
        assert!(
            !path.is_empty()
                && !path.starts_with('/')
                && path.split('/').all(|s| !s.is_empty() && s != "." && s != ".."),
            "skill file path {path:?} must be relative, without empty, '.' or '..' segments"
        );
        assert!(path != SKILL_FILE, "SKILL.md is rendered from the frontmatter and body");
        self.files.insert(
            path.to_string(),
            SkillFile {
                mime_type: mime_type.to_string(),
                text: text.into(),
            },
        );
        self
    }

    /// The skill's name.
    pub fn name(&self) -> &str {
        self.frontmatter["name"].as_str().unwrap_or_default()
    }

    /// The skill's description.
    pub fn description(&self) -> &str {
        self.frontmatter["description"].as_str().unwrap_or_default()
    }

    /// The frontmatter, as the skill's entry carries it.
    pub fn frontmatter(&self) -> &Map<String, Value> {
        &self.frontmatter
    }

    /// The skill's root: `skill://<skill-path>`.
    pub fn root_uri(&self) -> String {
        format!("{SCHEME}{}", self.path)
    }

    /// The URI of its `SKILL.md`, which identifies the skill.
    pub fn uri(&self) -> String {
        format!("{}/{SKILL_FILE}", self.root_uri())
    }

    /// `SKILL.md`: the frontmatter (`name` and `description` first, each member as
    /// `key: <JSON>`), then the body.
    pub fn skill_md(&self) -> String {
        let mut text = String::from("---\n");
        let first = ["name", "description"];
        let rest = self.frontmatter.keys().filter(|k| !first.contains(&k.as_str()));
        for key in first.iter().copied().chain(rest.map(String::as_str)) {
            // A plain key where YAML reads it as written, else a JSON (YAML double-quoted) one.
            let plain = key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            let written = if plain {
                key.to_string()
            } else {
                Value::from(key).to_string()
            };
            text.push_str(&format!("{written}: {}\n", self.frontmatter[key]));
        }
        text.push_str("---\n\n");
        text.push_str(&self.body);
        text
    }

    /// Every file: `(uri, mime type, text)`, `SKILL.md` first.
    fn files(&self) -> Vec<(String, String, String)> {
        let root = self.root_uri();
        std::iter::once((self.uri(), "text/markdown".to_string(), self.skill_md()))
            .chain(
                self.files
                    .iter()
                    .map(|(path, f)| (format!("{root}/{path}"), f.mime_type.clone(), f.text.clone())),
            )
            .collect()
    }

    /// The skill's entry in `skills/list` and `skills/get`.
    pub fn entry(&self) -> Value {
        let resources: Vec<Value> = self
            .files()
            .into_iter()
            .map(|(uri, _, text)| {
                let digest: String = Sha256::digest(text.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                json!({"uri": uri, "digest": format!("sha256:{digest}"), "size": text.len()})
            })
            .collect();
        json!({"uri": self.uri(), "frontmatter": self.frontmatter, "resources": resources})
    }

    /// The resources that serve the skill's files.
    pub(crate) fn resources(&self) -> Vec<Resource> {
        let root = self.root_uri();
        self.files()
            .into_iter()
            .map(|(uri, mime, text)| {
                let is_manifest = uri == self.uri();
                let name = if is_manifest {
                    self.name().to_string()
                } else {
                    uri[root.len() + 1..].to_string()
                };
                let contents = wire::TextResourceContents::new(text, uri.clone()).with_mime_type(mime.clone());
                let r = resource(&uri, &name, move |_cx| {
                    let contents = contents.clone();
                    async move { Ok(vec![contents.into()]) }
                })
                .with_mime_type(mime);
                if is_manifest {
                    r.with_description(self.description())
                } else {
                    r.with_description(format!("{name}, a file of the skill {}", self.name()))
                }
            })
            .collect()
    }
}

impl Connection {
    /// `skills/list`, `skills/get`, `resources/directory/read`.
    pub(super) fn skills_method(
        &self,
        era: Era,
        method: &str,
        params: Option<&RawValue>,
    ) -> Result<JsonText, ErrorObject> {
        let skills = &self.server.skills;
        if skills.is_empty() {
            return Err(ErrorObject::method_not_found(method));
        }
        let ttl = self.server.list_ttl_ms;
        match method {
            "skills/list" => {
                let (page, next) = self.page(method, skills, params)?;
                let mut result = json!({
                    "skills": page.iter().map(Skill::entry).collect::<Vec<_>>(),
                    "resultType": "complete",
                    "ttlMs": ttl,
                    "cacheScope": "public",
                });
                if let Some(next) = next {
                    result["nextCursor"] = next.into();
                }
                self.answer(era, method, &result)
            }
            "skills/get" => {
                #[derive(Deserialize)]
                struct Get {
                    uri: String,
                }
                let Get { uri } = decode(method, params)?;
                let skill = skills.iter().find(|s| s.uri() == uri).ok_or_else(|| {
                    ErrorObject::invalid_params(format!("skills/get: no skill at {uri:?}"))
                        .with_data(json!({"uri": uri}))
                })?;
                let result = json!({
                    "skill": skill.entry(),
                    "resultType": "complete",
                    "ttlMs": ttl,
                    "cacheScope": "public",
                });
                self.answer(era, method, &result)
            }
            _ => {
                #[derive(Deserialize)]
                struct Read {
                    uri: String,
                }
                let Read { uri } = decode(method, params)?;
                let listing = directory(skills, &self.server.resources, &uri).ok_or_else(|| {
                    ErrorObject::invalid_params(format!("resources/directory/read: {uri:?} is not a directory"))
                        .with_data(json!({"uri": uri}))
                })?;
                let (page, next) = self.page(method, &listing, params)?;
                let mut result = json!({"resources": page, "resultType": "complete"});
                if let Some(next) = next {
                    result["nextCursor"] = next.into();
                }
                self.answer(era, method, &result)
            }
        }
    }
}

/// The direct children of the directory `uri` as `Resource` objects (files as registered, then
/// subdirectories), or `None` when `uri` is not a directory of the skills.
fn directory(skills: &[Skill], resources: &[Resource], uri: &str) -> Option<Vec<Value>> {
    let dir = uri.trim_end_matches('/');
    if dir.len() <= SCHEME.len() || !dir.starts_with(SCHEME) {
        return None;
    }
    let prefix = format!("{dir}/");
    let mut files = Vec::new();
    let mut dirs = BTreeSet::new();
    for skill in skills {
        for (file, _, _) in skill.files() {
            let Some(rest) = file.strip_prefix(&prefix) else {
                continue;
            };
            match rest.split_once('/') {
                Some((sub, _)) => {
                    dirs.insert(sub.to_string());
                }
                None => files.push(file),
            }
        }
    }
    if files.is_empty() && dirs.is_empty() {
        return None;
    }
    let mut listing: Vec<Value> = files
        .iter()
        .filter_map(|file| resources.iter().find(|r| &r.definition().uri == file))
        .filter_map(|r| serde_json::to_value(r.definition()).ok())
        .collect();
    listing.extend(
        dirs.into_iter()
            .map(|sub| json!({"uri": format!("{prefix}{sub}"), "name": sub, "mimeType": DIRECTORY_MIME_TYPE})),
    );
    Some(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_agent_skills_rules() {
        for good in ["pdf-processing", "a", "x1-y2", &"a".repeat(64)] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", "a.b", &"a".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn skill_md_frontmatter_is_the_entry_frontmatter() {
        let skill = Skill::new("demo", "Says \"hi\": twice", "Body.\n")
            .with_frontmatter("license", json!("MIT"))
            .with_frontmatter("metadata", json!({"version": "1.0", "tags": ["a", "b"]}));
        let md = skill.skill_md();
        assert_eq!(
            md,
            "---\nname: \"demo\"\ndescription: \"Says \\\"hi\\\": twice\"\nlicense: \"MIT\"\n\
             metadata: {\"tags\":[\"a\",\"b\"],\"version\":\"1.0\"}\n---\n\nBody.\n"
        );
        let entry = skill.entry();
        assert_eq!(entry["uri"], "skill://demo/SKILL.md");
        assert_eq!(entry["resources"][0]["size"], md.len());
        let digest = entry["resources"][0]["digest"].as_str().expect("digest");
        assert!(digest.starts_with("sha256:") && digest.len() == 7 + 64, "{digest}");
    }

    #[test]
    fn directories_list_direct_children() {
        let skill = Skill::new("pdf", "PDFs", "b")
            .under("acme")
            .with_file("references/FORMS.md", "text/markdown", "f")
            .with_file("scripts/x/run.sh", "text/x-shellscript", "s");
        let resources = skill.resources();
        let skills = [skill];
        let root = directory(&skills, &resources, "skill://acme/pdf").expect("a directory");
        let uris: Vec<&str> = root.iter().filter_map(|r| r["uri"].as_str()).collect();
        assert_eq!(
            uris,
            [
                "skill://acme/pdf/SKILL.md",
                "skill://acme/pdf/references",
                "skill://acme/pdf/scripts"
            ]
        );
        assert_eq!(root[1]["mimeType"], DIRECTORY_MIME_TYPE);
        assert_eq!(root[0]["mimeType"], "text/markdown");
        let acme = directory(&skills, &resources, "skill://acme/").expect("a directory");
        assert_eq!(acme[0]["uri"], "skill://acme/pdf");
        assert!(directory(&skills, &resources, "skill://acme/pdf/SKILL.md").is_none());
        assert!(directory(&skills, &resources, "skill://").is_none());
        assert!(directory(&skills, &resources, "skill://other").is_none());
    }
}
