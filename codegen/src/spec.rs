//! Pinned inputs: reading `spec/PINNED.toml` and `spec/patches.toml`, loading each revision's
//! `schema.json` with its hash checked, and applying the patches as data.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// One entry of `spec/PINNED.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct PinnedRevision {
    /// The revision, e.g. `2026-07-28`; also the folder name under the spec directory.
    pub name: String,
    /// Lower-case hex sha256 of `schema.json`.
    pub sha256: String,
}

/// The parsed `spec/PINNED.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct Pinned {
    /// The revisions, oldest first.
    #[serde(rename = "revision")]
    pub revisions: Vec<PinnedRevision>,
}

/// One entry of `spec/patches.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    /// The revision the patch applies to.
    pub revision: String,
    /// RFC 6901 JSON pointer into that revision's schema.
    pub pointer: String,
    /// JSON text of the value expected at the pointer; `None` means nothing may be there yet.
    pub expect: Option<String>,
    /// JSON text of the value to put at the pointer.
    pub replace: String,
    /// Why the upstream schema is wrong (kept for reviewers; not used by the generator).
    pub reason: String,
}

#[derive(Debug, Deserialize)]
struct PatchFile {
    #[serde(default, rename = "patch")]
    patches: Vec<Patch>,
}

/// A revision's schema, loaded, verified and patched.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The revision, e.g. `2026-07-28`.
    pub revision: String,
    /// Path the schema was read from.
    pub path: PathBuf,
    /// sha256 of the file as read (before patches).
    pub sha256: String,
    /// The patched document.
    pub document: Value,
}

/// Reads and parses a TOML file.
fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| Error::Parse {
        path: path.into(),
        message: e.to_string(),
    })
}

impl Pinned {
    /// Reads `spec/PINNED.toml`.
    pub fn load(path: &Path) -> Result<Self> {
        read_toml(path)
    }
}

/// Reads `spec/patches.toml`; every patch must parse as JSON on both sides.
pub fn load_patches(path: &Path) -> Result<Vec<Patch>> {
    let file: PatchFile = read_toml(path)?;
    Ok(file.patches)
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads `<spec_dir>/<revision>/schema.json`, checks its hash against the pin and applies the
/// patches for that revision.
pub fn load_schema(spec_dir: &Path, pin: &PinnedRevision, patches: &[Patch]) -> Result<Schema> {
    let path = spec_dir.join(&pin.name).join("schema.json");
    let bytes = std::fs::read(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::Pin(format!(
                "{}: missing. The MCP schemas are read from MCP_SPEC_DIR (default ../shared/mcp-spec); \
                 set it to a folder holding <revision>/schema.json for every revision of spec/PINNED.toml",
                path.display()
            ))
        } else {
            Error::Io {
                path: path.clone(),
                source,
            }
        }
    })?;
    let sha256 = sha256_hex(&bytes);
    if sha256 != pin.sha256 {
        return Err(Error::Pin(format!(
            "{}: sha256 is {sha256} but spec/PINNED.toml pins {} for revision {}. \
             If the upstream schema changed on purpose, update the pin and review the regenerated code",
            path.display(),
            pin.sha256,
            pin.name
        )));
    }
    let mut document: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Parse {
        path: path.clone(),
        message: e.to_string(),
    })?;
    apply_patches(&mut document, &pin.name, patches)?;
    Ok(Schema {
        revision: pin.name.clone(),
        path,
        sha256,
        document,
    })
}

/// Applies every patch of `patches` that targets `revision`, in file order.
pub fn apply_patches(document: &mut Value, revision: &str, patches: &[Patch]) -> Result<()> {
    for (i, patch) in patches.iter().enumerate().filter(|(_, p)| p.revision == revision) {
        let fail = |message: String| Error::Patch {
            index: i + 1,
            revision: patch.revision.clone(),
            pointer: patch.pointer.clone(),
            message,
        };
        let parse = |what: &str, text: &str| {
            serde_json::from_str::<Value>(text).map_err(|e| fail(format!("`{what}` is not JSON: {e}")))
        };
        let replace = parse("replace", &patch.replace)?;
        let expect = patch.expect.as_deref().map(|t| parse("expect", t)).transpose()?;
        let (parent_ptr, last) = match patch.pointer.rfind('/') {
            Some(i) => (&patch.pointer[..i], unescape(&patch.pointer[i + 1..])),
            None => return Err(fail("a JSON pointer starts with `/`".into())),
        };
        let parent = document.pointer_mut(parent_ptr).ok_or_else(|| {
            fail(format!(
                "nothing at `{parent_ptr}`: the upstream schema changed; revisit this patch"
            ))
        })?;
        let slot: Option<&mut Value> = match parent {
            Value::Object(map) => map.get_mut(&last),
            Value::Array(items) => last.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => {
                return Err(fail(format!("`{parent_ptr}` is neither an object nor an array")));
            }
        };
        match (expect, slot) {
            (Some(expected), Some(slot)) if *slot == expected => *slot = replace,
            (Some(expected), Some(slot)) => {
                return Err(fail(format!(
                    "expected {expected} but found {slot}: the upstream schema changed; if it is fixed upstream, delete this patch"
                )));
            }
            (Some(expected), None) => {
                return Err(fail(format!(
                    "expected {expected} but nothing is there: the upstream schema changed"
                )));
            }
            (None, Some(slot)) => {
                return Err(fail(format!(
                    "expected nothing but found {slot}: the upstream schema changed; if it is fixed upstream, delete this patch"
                )));
            }
            (None, None) => match parent {
                Value::Object(map) => {
                    map.insert(last, replace);
                }
                _ => return Err(fail("can only add a new member to an object".into())),
            },
        }
    }
    Ok(())
}

/// Undoes RFC 6901 escaping of one pointer segment.
fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// All pinned revisions, loaded and patched, oldest first.
pub fn load_all(repo_root: &Path, spec_dir: &Path) -> Result<Vec<Schema>> {
    let pinned = Pinned::load(&repo_root.join("spec/PINNED.toml"))?;
    let patches = load_patches(&repo_root.join("spec/patches.toml"))?;
    for (i, patch) in patches.iter().enumerate() {
        if !pinned.revisions.iter().any(|r| r.name == patch.revision) {
            return Err(Error::Patch {
                index: i + 1,
                revision: patch.revision.clone(),
                pointer: patch.pointer.clone(),
                message: "names a revision that spec/PINNED.toml does not pin".into(),
            });
        }
    }
    pinned
        .revisions
        .iter()
        .map(|pin| load_schema(spec_dir, pin, &patches))
        .collect()
}
