//! Lowering: a patched JSON Schema document becomes an [`ir::Module`].
//!
//! `$ref`s are resolved against the document's `$defs` (or draft-07 `definitions`), `allOf`
//! members are merged into one object, inline objects, unions and enums are hoisted into named
//! definitions (`Parent` + `Field`), and each union is classified by how its members are told
//! apart ([`ir::Dispatch`]). Anything the generator cannot represent stops lowering with the
//! JSON pointer at fault; nothing is dropped silently.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::ir::{
    Def, DefKind, Direction, Dispatch, Draft, Enum, Field, JsonKind, KeyPick, Marker, Method, Module, Pick, ShapeCase,
    Struct, TagCase, Ty, Union, Variant,
};
use crate::names;
use crate::spec::Schema;
use crate::{Error, Result};

/// Joins the segments of a nested marker path inside the classifier (a character no schema
/// member name holds).
const PATH_SEPARATOR: char = '\u{1f}';

/// Tag members tried first when several could tell a union's members apart.
const PREFERRED_TAGS: &[&str] = &["type", "method", "mode", "resultType"];

/// Lowers one revision's patched schema.
pub fn lower(schema: &Schema, source: &str) -> Result<Module> {
    let doc = &schema.document;
    let (draft, defs_key) = match doc.get("$schema").and_then(Value::as_str) {
        Some(s) if s.contains("2020-12") => (Draft::Draft2020_12, "$defs"),
        Some(s) if s.contains("draft-07") => (Draft::Draft7, "definitions"),
        other => {
            return Err(Error::Schema {
                revision: schema.revision.clone(),
                pointer: "/$schema".into(),
                message: format!("unsupported or missing dialect {other:?}; expected draft-07 or 2020-12"),
            });
        }
    };
    let defs = doc
        .get(defs_key)
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Schema {
            revision: schema.revision.clone(),
            pointer: format!("/{defs_key}"),
            message: format!("missing `{defs_key}`: the schema defines no types"),
        })?;
    let mut lowerer = Lowerer {
        revision: &schema.revision,
        defs_key,
        defs,
        out: IndexMap::new(),
    };
    for (name, def) in defs {
        let pointer = format!("/{defs_key}/{}", escape(name));
        lowerer.lower_def(name, def, &pointer, false)?;
    }
    let mut defs: Vec<Def> = lowerer.out.into_values().collect();
    classify_unions(&mut defs, &schema.revision)?;
    let methods = collect_methods(&defs);
    Ok(Module {
        revision: schema.revision.clone(),
        source: source.to_string(),
        sha256: schema.sha256.clone(),
        draft,
        defs,
        methods,
    })
}

/// RFC 6901 escaping of one pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Lowering state of one document.
struct Lowerer<'a> {
    revision: &'a str,
    defs_key: &'a str,
    defs: &'a Map<String, Value>,
    out: IndexMap<String, Def>,
}

/// A union member before classification: its type and the pointer it came from.
type RawVariant = (Ty, String);

impl<'a> Lowerer<'a> {
    fn err(&self, pointer: &str, message: impl Into<String>) -> Error {
        Error::Schema {
            revision: self.revision.to_string(),
            pointer: pointer.to_string(),
            message: message.into(),
        }
    }

    /// The definition name a `$ref` points to; the target must exist.
    fn ref_target(&self, reference: &str, pointer: &str) -> Result<String> {
        let prefix = format!("#/{}/", self.defs_key);
        let name = reference
            .strip_prefix(&prefix)
            .ok_or_else(|| self.err(pointer, format!("`$ref` {reference:?} does not point into `{prefix}`")))?;
        let name = name.replace("~1", "/").replace("~0", "~");
        if !self.defs.contains_key(&name) {
            return Err(self.err(
                pointer,
                format!("dangling `$ref` {reference:?}: no definition `{name}`"),
            ));
        }
        Ok(name)
    }

    /// Follows a chain of pure `$ref`s to a schema that says something, refusing cycles.
    fn resolve<'s>(&'s self, schema: &'s Value, pointer: &str) -> Result<(&'s Value, String)> {
        let mut current = schema;
        let mut at = pointer.to_string();
        let mut seen = BTreeSet::new();
        while let Some(reference) = current.get("$ref").and_then(Value::as_str) {
            let name = self.ref_target(reference, &at)?;
            if !seen.insert(name.clone()) {
                return Err(self.err(pointer, format!("cyclic `$ref` through `{name}`")));
            }
            current = &self.defs[&name];
            at = format!("/{}/{}", self.defs_key, escape(&name));
        }
        Ok((current, at))
    }

    fn push(&mut self, def: Def) {
        self.out.insert(def.name.clone(), def);
    }

    /// A name for a type hoisted out of `parent`.`field` that clashes with nothing.
    fn hoist_name(&self, base: String) -> String {
        let mut name = base;
        while self.defs.contains_key(&name) || self.out.contains_key(&name) {
            name.push_str("Inline");
        }
        name
    }

    fn lower_def(&mut self, name: &str, schema: &Value, pointer: &str, hoisted: bool) -> Result<()> {
        let doc = doc_of(schema);
        let obj = schema
            .as_object()
            .ok_or_else(|| self.err(pointer, "a definition must be a JSON object"))?;
        let kind = if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
            let target = self.ref_target(reference, pointer)?;
            // Pure aliases must not loop back to themselves.
            self.resolve(schema, pointer)?;
            DefKind::Alias {
                target: Ty::named(target),
            }
        } else if obj.contains_key("allOf") {
            let merged = self.merge_all_of(schema, pointer)?;
            DefKind::Struct(self.lower_struct(name, &merged, pointer)?)
        } else if let Some(values) = open_enum(obj.get("anyOf").or_else(|| obj.get("oneOf"))) {
            DefKind::Enum(Enum { values, open: true })
        } else if let Some(members) = obj.get("anyOf").or_else(|| obj.get("oneOf")) {
            DefKind::Union(self.lower_union(name, members, pointer)?)
        } else if let Some(types) = obj.get("type").and_then(Value::as_array) {
            let non_null: Vec<&Value> = types.iter().filter(|t| t.as_str() != Some("null")).collect();
            if non_null.len() == 1 && types.len() == 2 {
                let inner = primitive(non_null[0].as_str().unwrap_or_default())
                    .ok_or_else(|| self.err(pointer, "unsupported type in a nullable list"))?;
                DefKind::Alias {
                    target: Ty::Nullable { inner: Box::new(inner) },
                }
            } else {
                let variants = self.type_list_variants(types, pointer)?;
                DefKind::Union(Union {
                    variants: raw_variants(variants),
                    dispatch: Dispatch::Context,
                })
            }
        } else if let Some(values) = obj.get("enum") {
            DefKind::Enum(Enum {
                values: self.string_enum(values, pointer)?,
                open: false,
            })
        } else {
            match obj.get("type").and_then(Value::as_str) {
                Some("object") if obj.contains_key("properties") => {
                    DefKind::Struct(self.lower_struct(name, schema, pointer)?)
                }
                _ => DefKind::Alias {
                    target: self.lower_ty(schema, name, "", pointer)?,
                },
            }
        };
        self.push(Def {
            name: name.to_string(),
            doc,
            pointer: pointer.to_string(),
            hoisted,
            kind,
        });
        Ok(())
    }

    fn string_enum(&self, values: &Value, pointer: &str) -> Result<Vec<String>> {
        values
            .as_array()
            .ok_or_else(|| self.err(pointer, "`enum` must be an array"))?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.err(pointer, "only string enums are supported"))
            })
            .collect()
    }

    /// Merges the members of an `allOf` (each resolved, recursively) into one object schema:
    /// properties are united (a later member refines an earlier one's property), `required`
    /// lists are united, and `additionalProperties` is taken from the last member that sets it.
    fn merge_all_of(&self, schema: &Value, pointer: &str) -> Result<Value> {
        let mut properties = Map::new();
        let mut required: Vec<Value> = Vec::new();
        let mut additional: Option<Value> = None;
        let mut description = schema.get("description").cloned();
        let mut parts: Vec<(Value, String)> = Vec::new();
        match schema.get("allOf").and_then(Value::as_array) {
            Some(members) => {
                for (i, member) in members.iter().enumerate() {
                    let at = format!("{pointer}/allOf/{i}");
                    let (resolved, resolved_at) = self.resolve(member, &at)?;
                    let resolved = if resolved.get("allOf").is_some() {
                        self.merge_all_of(resolved, &resolved_at)?
                    } else {
                        resolved.clone()
                    };
                    parts.push((resolved, at));
                }
            }
            None => return Err(self.err(pointer, "`allOf` must be an array")),
        }
        // Members written beside `allOf` count as one more member.
        let mut rest = schema.as_object().cloned().unwrap_or_default();
        rest.remove("allOf");
        parts.push((Value::Object(rest), pointer.to_string()));
        for (part, at) in parts {
            if let Some(t) = part.get("type").and_then(Value::as_str)
                && t != "object"
            {
                return Err(self.err(&at, format!("`allOf` member of type {t:?}: only objects can be merged")));
            }
            if let Some(props) = part.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    match (properties.get_mut(k), v) {
                        (Some(Value::Object(old)), Value::Object(new)) => {
                            for (nk, nv) in new {
                                old.insert(nk.clone(), nv.clone());
                            }
                        }
                        _ => {
                            properties.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            if let Some(req) = part.get("required").and_then(Value::as_array) {
                for r in req {
                    if !required.contains(r) {
                        required.push(r.clone());
                    }
                }
            }
            if let Some(a) = part.get("additionalProperties") {
                additional = Some(a.clone());
            }
            if description.is_none() {
                description = part.get("description").cloned();
            }
        }
        let mut merged = Map::new();
        merged.insert("type".into(), "object".into());
        merged.insert("properties".into(), Value::Object(properties));
        merged.insert("required".into(), Value::Array(required));
        if let Some(a) = additional {
            merged.insert("additionalProperties".into(), a);
        }
        if let Some(d) = description {
            merged.insert("description".into(), d);
        }
        Ok(Value::Object(merged))
    }

    fn lower_struct(&mut self, name: &str, schema: &Value, pointer: &str) -> Result<Struct> {
        let required: BTreeSet<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields = Vec::new();
        let empty = Map::new();
        let props = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        for (wire, prop) in props {
            let at = format!("{pointer}/properties/{}", escape(wire));
            if names::rust_field(wire) == "extra" {
                return Err(self.err(
                    &at,
                    "a member called `extra` clashes with the field that keeps unknown members",
                ));
            }
            let constant = match (prop.get("const"), prop.get("enum").and_then(Value::as_array)) {
                (Some(c), _) => Some(c.clone()),
                (None, Some(values)) if values.len() == 1 => Some(values[0].clone()),
                _ => None,
            };
            let ty = match &constant {
                Some(Value::String(_)) => Ty::String,
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ty::Integer,
                Some(Value::Bool(_)) => Ty::Boolean,
                Some(other) => return Err(self.err(&at, format!("unsupported constant {other}"))),
                None => self.lower_ty(prop, name, wire, &at)?,
            };
            fields.push(Field {
                name: wire.clone(),
                doc: doc_of(prop),
                ty,
                required: required.contains(wire.as_str()),
                constant,
            });
        }
        for r in &required {
            if !props.contains_key(*r) {
                return Err(self.err(pointer, format!("`required` names `{r}`, which is not a property")));
            }
        }
        let extra = match schema.get("additionalProperties") {
            None | Some(Value::Bool(true)) => Ty::Any,
            Some(Value::Bool(false)) => Ty::Any,
            Some(a) => self.lower_ty(a, name, "Extra", &format!("{pointer}/additionalProperties"))?,
        };
        Ok(Struct { fields, extra })
    }

    /// The type of a property (or item, or map value) schema, hoisting inline types.
    fn lower_ty(&mut self, schema: &Value, parent: &str, field: &str, pointer: &str) -> Result<Ty> {
        let obj = match schema {
            Value::Bool(true) => return Ok(Ty::Any),
            Value::Object(o) => o,
            _ => return Err(self.err(pointer, "a schema must be an object or `true`")),
        };
        let hoist = |s: &Self| s.hoist_name(format!("{parent}{}", names::pascal(field)));
        if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
            return Ok(Ty::named(self.ref_target(reference, pointer)?));
        }
        if obj.contains_key("allOf") || obj.contains_key("anyOf") || obj.contains_key("oneOf") {
            let name = hoist(self);
            self.lower_def(&name, schema, pointer, true)?;
            return Ok(Ty::named(name));
        }
        if let Some(values) = obj.get("enum") {
            let values = self.string_enum(values, pointer)?;
            // Identical enums hoisted from several parents share the first one's name.
            let same = self.out.values().find(|d| {
                d.hoisted
                    && matches!(&d.kind, DefKind::Enum(e) if e.values == values && !e.open)
                    && d.name.ends_with(&names::pascal(field))
            });
            if let Some(existing) = same {
                return Ok(Ty::named(existing.name.clone()));
            }
            let name = hoist(self);
            self.lower_def(&name, schema, pointer, true)?;
            return Ok(Ty::named(name));
        }
        match obj.get("type") {
            Some(Value::Array(types)) => {
                let non_null: Vec<&Value> = types.iter().filter(|t| t.as_str() != Some("null")).collect();
                if non_null.len() == 1 && types.len() == 2 {
                    let inner = primitive(non_null[0].as_str().unwrap_or_default())
                        .ok_or_else(|| self.err(pointer, "unsupported type in a nullable list"))?;
                    Ok(Ty::Nullable { inner: Box::new(inner) })
                } else {
                    let name = hoist(self);
                    self.lower_def(&name, schema, pointer, true)?;
                    Ok(Ty::named(name))
                }
            }
            Some(Value::String(t)) => match t.as_str() {
                "object" if obj.contains_key("properties") => {
                    let name = hoist(self);
                    self.lower_def(&name, schema, pointer, true)?;
                    Ok(Ty::named(name))
                }
                "object" => match obj.get("additionalProperties") {
                    None | Some(Value::Bool(_)) => Ok(Ty::Map {
                        values: Box::new(Ty::Any),
                    }),
                    Some(a) => Ok(Ty::Map {
                        values: Box::new(self.lower_ty(
                            a,
                            parent,
                            &format!("{field}Value"),
                            &format!("{pointer}/additionalProperties"),
                        )?),
                    }),
                },
                "array" => {
                    let items = match obj.get("items") {
                        Some(items) => {
                            self.lower_ty(items, parent, &format!("{field}Item"), &format!("{pointer}/items"))?
                        }
                        None => Ty::Any,
                    };
                    Ok(Ty::Array { items: Box::new(items) })
                }
                other => primitive(other).ok_or_else(|| self.err(pointer, format!("unsupported type {other:?}"))),
            },
            Some(_) => Err(self.err(pointer, "`type` must be a string or an array of strings")),
            None if obj.get("properties").is_some() => {
                let name = hoist(self);
                self.lower_def(&name, schema, pointer, true)?;
                Ok(Ty::named(name))
            }
            None => Ok(Ty::Any),
        }
    }

    /// Members for a `type: [..]` list: one primitive member per listed type.
    fn type_list_variants(&self, types: &[Value], pointer: &str) -> Result<Vec<RawVariant>> {
        types
            .iter()
            .map(|t| {
                let t = t.as_str().unwrap_or_default();
                match t {
                    "object" => Ok((
                        Ty::Map {
                            values: Box::new(Ty::Any),
                        },
                        pointer.to_string(),
                    )),
                    "array" => Ok((
                        Ty::Array {
                            items: Box::new(Ty::Any),
                        },
                        pointer.to_string(),
                    )),
                    _ => primitive(t)
                        .map(|ty| (ty, pointer.to_string()))
                        .ok_or_else(|| self.err(pointer, format!("unsupported type {t:?}"))),
                }
            })
            .collect()
    }

    fn lower_union(&mut self, name: &str, members: &Value, pointer: &str) -> Result<Union> {
        let keyword = if pointer.ends_with("oneOf") { "oneOf" } else { "anyOf" };
        let members = members
            .as_array()
            .ok_or_else(|| self.err(pointer, "a union must list its members"))?;
        let mut raw: Vec<RawVariant> = Vec::new();
        for (i, member) in members.iter().enumerate() {
            let at = format!("{pointer}/{keyword}/{i}");
            match member.get("type") {
                // `type: [string, integer, boolean]` inside a union: one member per type.
                Some(Value::Array(types)) if member.get("$ref").is_none() => {
                    raw.extend(self.type_list_variants(types, &at)?)
                }
                _ => {
                    let ty = self.lower_ty(member, name, &format!("Variant{i}"), &at)?;
                    raw.push((ty, at));
                }
            }
        }
        Ok(Union {
            variants: raw_variants(raw),
            dispatch: Dispatch::Context,
        })
    }
}

/// Members with their names (named types by [`names::variant_names`], others by their kind).
fn raw_variants(raw: Vec<RawVariant>) -> Vec<Variant> {
    let labels: Vec<String> = raw
        .iter()
        .map(|(ty, _)| match ty {
            Ty::Ref { name } => name.clone(),
            Ty::String => "String".into(),
            Ty::Integer => "Integer".into(),
            Ty::Number => "Number".into(),
            Ty::Boolean => "Boolean".into(),
            Ty::Null => "Null".into(),
            Ty::Any => "Any".into(),
            Ty::Array { .. } => "Array".into(),
            Ty::Map { .. } => "Object".into(),
            Ty::Nullable { .. } => "Nullable".into(),
        })
        .collect();
    let all_named = raw.iter().all(|(ty, _)| matches!(ty, Ty::Ref { .. }));
    let names = if all_named {
        names::variant_names(&labels)
    } else {
        labels
    };
    // Two inline members of one kind (the batch arrays of 2025-03-26) get their position.
    let names: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if names.iter().filter(|m| *m == n).count() > 1 {
                format!("{n}{i}")
            } else {
                n.clone()
            }
        })
        .collect();
    raw.into_iter()
        .zip(names)
        .map(|((ty, _), name)| Variant { name, ty })
        .collect()
}

/// The known values of an open string enum: union members that are all string constants (or
/// string `enum`s) except exactly one plain `{"type": "string"}`.
fn open_enum(members: Option<&Value>) -> Option<Vec<String>> {
    let members = members?.as_array()?;
    let mut values = Vec::new();
    let mut plain = 0;
    for m in members {
        let m = m.as_object()?;
        if m.get("type").is_some_and(|t| t != "string") {
            return None;
        }
        match (m.get("const"), m.get("enum")) {
            (Some(Value::String(c)), None) => values.push(c.clone()),
            (None, Some(Value::Array(e))) => {
                for v in e {
                    values.push(v.as_str()?.to_string());
                }
            }
            (None, None) if m.keys().all(|k| k == "type" || k == "description" || k == "title") => plain += 1,
            _ => return None,
        }
    }
    (plain == 1 && !values.is_empty()).then_some(values)
}

fn primitive(t: &str) -> Option<Ty> {
    Some(match t {
        "string" => Ty::String,
        "integer" => Ty::Integer,
        "number" => Ty::Number,
        "boolean" => Ty::Boolean,
        "null" => Ty::Null,
        _ => return None,
    })
}

fn doc_of(schema: &Value) -> Option<String> {
    schema.get("description").and_then(Value::as_str).map(str::to_string)
}

/// What the classifier needs to know about an object member of a union.
struct ObjectInfo<'a> {
    /// Required members, and `member/inner` paths of required members of required objects.
    required: BTreeSet<String>,
    /// Every member, and `member/inner` paths one level down.
    properties: BTreeSet<String>,
    /// Tag candidates: member → the constant strings it may hold (and whether it is required).
    tags: BTreeMap<&'a str, (Vec<String>, bool)>,
}

fn object_info<'a>(defs: &'a [Def], name: &str) -> Option<ObjectInfo<'a>> {
    let def = defs.iter().find(|d| d.name == name)?;
    match &def.kind {
        DefKind::Struct(s) => {
            let mut tags = BTreeMap::new();
            for f in &s.fields {
                if let Some(Value::String(c)) = &f.constant {
                    tags.insert(f.name.as_str(), (vec![c.clone()], f.required));
                } else if let Ty::Ref { name } = &f.ty
                    && let Some(Def {
                        kind: DefKind::Enum(e), ..
                    }) = defs.iter().find(|d| &d.name == name)
                    && f.name == "type"
                {
                    // A `type` member that is an enum (`number | integer`) tags with every value.
                    tags.insert(f.name.as_str(), (e.values.clone(), f.required));
                }
            }
            let mut required: BTreeSet<String> =
                s.fields.iter().filter(|f| f.required).map(|f| f.name.clone()).collect();
            let mut properties: BTreeSet<String> = s.fields.iter().map(|f| f.name.clone()).collect();
            // One level down: `items/enum` tells an untitled multi-select from a titled one
            // (`items/anyOf`) when their own members are the same.
            for f in s.fields.iter().filter(|f| f.constant.is_none()) {
                if let Ty::Ref { name } = &f.ty
                    && let Some(Def {
                        kind: DefKind::Struct(inner),
                        ..
                    }) = defs.iter().find(|d| &d.name == name)
                {
                    for g in &inner.fields {
                        let path = format!("{}{PATH_SEPARATOR}{}", f.name, g.name);
                        if f.required && g.required {
                            required.insert(path.clone());
                        }
                        properties.insert(path);
                    }
                }
            }
            Some(ObjectInfo {
                required,
                properties,
                tags,
            })
        }
        DefKind::Alias {
            target: Ty::Ref { name },
        } => object_info(defs, name),
        _ => None,
    }
}

/// The JSON kinds a type accepts.
fn kinds_of(defs: &[Def], ty: &Ty, depth: usize) -> BTreeSet<JsonKind> {
    let mut out = BTreeSet::new();
    if depth > 16 {
        return out;
    }
    match ty {
        Ty::String => {
            out.insert(JsonKind::String);
        }
        Ty::Integer => {
            out.insert(JsonKind::Integer);
        }
        Ty::Number => {
            out.extend([JsonKind::Integer, JsonKind::Number]);
        }
        Ty::Boolean => {
            out.insert(JsonKind::Boolean);
        }
        Ty::Null => {
            out.insert(JsonKind::Null);
        }
        Ty::Any => {
            out.extend([
                JsonKind::Null,
                JsonKind::Boolean,
                JsonKind::Integer,
                JsonKind::Number,
                JsonKind::String,
                JsonKind::Array,
                JsonKind::Object,
            ]);
        }
        Ty::Array { .. } => {
            out.insert(JsonKind::Array);
        }
        Ty::Map { .. } => {
            out.insert(JsonKind::Object);
        }
        Ty::Nullable { inner } => {
            out.insert(JsonKind::Null);
            out.extend(kinds_of(defs, inner, depth + 1));
        }
        Ty::Ref { name } => match defs.iter().find(|d| &d.name == name).map(|d| &d.kind) {
            Some(DefKind::Struct(_)) => {
                out.insert(JsonKind::Object);
            }
            Some(DefKind::Enum(_)) => {
                out.insert(JsonKind::String);
            }
            Some(DefKind::Alias { target }) => out.extend(kinds_of(defs, target, depth + 1)),
            Some(DefKind::Union(u)) => {
                for v in &u.variants {
                    out.extend(kinds_of(defs, &v.ty, depth + 1));
                }
            }
            None => {}
        },
    }
    out
}

/// Fills in [`Union::dispatch`] for every union, now that all definitions are known.
fn classify_unions(defs: &mut [Def], revision: &str) -> Result<()> {
    let mut decided = Vec::new();
    for (i, def) in defs.iter().enumerate() {
        if let DefKind::Union(u) = &def.kind {
            let dispatch = classify(defs, u).map_err(|message| Error::Schema {
                revision: revision.to_string(),
                pointer: def.pointer.clone(),
                message: format!("union `{}`: {message}", def.name),
            })?;
            decided.push((i, dispatch));
        }
    }
    for (i, dispatch) in decided {
        if let DefKind::Union(u) = &mut defs[i].kind {
            u.dispatch = dispatch;
        }
    }
    Ok(())
}

fn classify(defs: &[Def], union: &Union) -> std::result::Result<Dispatch, String> {
    // A union that has the bare `Result` among its members is a union of results: every result
    // is also a valid `Result`, so only the request being answered can say which one it is.
    if union
        .variants
        .iter()
        .any(|v| matches!(&v.ty, Ty::Ref { name } if name == "Result" || name == "EmptyResult"))
    {
        return Ok(Dispatch::Context);
    }
    let kinds: Vec<BTreeSet<JsonKind>> = union.variants.iter().map(|v| kinds_of(defs, &v.ty, 0)).collect();
    // Object members (named struct types) are told apart by tag or keys among themselves.
    let object_members: Vec<usize> = (0..kinds.len())
        .filter(|&i| {
            kinds[i].len() == 1 && kinds[i].contains(&JsonKind::Object) && object_ty(defs, &union.variants[i].ty)
        })
        .collect();
    let objects = if object_members.len() > 1 {
        let infos: Vec<ObjectInfo> = object_members
            .iter()
            .map(|&i| match &union.variants[i].ty {
                Ty::Ref { name } => object_info(defs, name),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or("object members must be named object types")?;
        let Some(local) = classify_objects(&infos) else {
            return Ok(Dispatch::Context);
        };
        Some(Box::new(reindex(local, &object_members)))
    } else {
        None
    };
    if object_members.len() == union.variants.len()
        && let Some(objects) = objects
    {
        return Ok(*objects);
    }
    // Members of different kinds: each kind must belong to one member (an integer goes to the
    // integer member when there is one, else to the number member). When two members accept
    // the same kind and no tag separates them, only the context can decide.
    let mut cases: BTreeMap<JsonKind, usize> = BTreeMap::new();
    for (index, ks) in kinds.iter().enumerate() {
        if objects.is_some() && object_members.contains(&index) {
            continue;
        }
        for k in ks {
            if objects.is_some() && *k == JsonKind::Object {
                return Ok(Dispatch::Context);
            }
            match cases.get(k) {
                Some(&other) if *k == JsonKind::Integer => {
                    let other_is_int = matches!(union.variants[other].ty, Ty::Integer);
                    if !other_is_int && matches!(union.variants[index].ty, Ty::Integer) {
                        cases.insert(*k, index);
                    }
                }
                Some(_) => return Ok(Dispatch::Context),
                None => {
                    cases.insert(*k, index);
                }
            }
        }
    }
    Ok(Dispatch::Shape {
        cases: cases
            .into_iter()
            .map(|(kind, index)| ShapeCase { kind, index })
            .collect(),
        objects,
    })
}

/// Whether `ty` names a struct (directly or through aliases).
fn object_ty(defs: &[Def], ty: &Ty) -> bool {
    match ty {
        Ty::Ref { name } => match defs.iter().find(|d| &d.name == name).map(|d| &d.kind) {
            Some(DefKind::Struct(_)) => true,
            Some(DefKind::Alias { target }) => object_ty(defs, target),
            _ => false,
        },
        _ => false,
    }
}

/// Maps the member indices of a dispatch computed on a subset back to the union's indices.
fn reindex(dispatch: Dispatch, members: &[usize]) -> Dispatch {
    let keys = |k: KeyPick| KeyPick {
        markers: k
            .markers
            .into_iter()
            .map(|m| Marker {
                index: members[m.index],
                ..m
            })
            .collect(),
        fallback: members[k.fallback],
    };
    let pick = |p: Pick| match p {
        Pick::Variant { index } => Pick::Variant { index: members[index] },
        Pick::Keys(k) => Pick::Keys(keys(k)),
    };
    match dispatch {
        Dispatch::Tag {
            field,
            cases,
            other,
            absent,
        } => Dispatch::Tag {
            field,
            cases: cases
                .into_iter()
                .map(|c| TagCase {
                    value: c.value,
                    pick: pick(c.pick),
                })
                .collect(),
            other: other.map(pick),
            absent: absent.map(pick),
        },
        Dispatch::Keys(k) => Dispatch::Keys(keys(k)),
        other => other,
    }
}

/// Tag first, then marker keys, for a union of object types.
fn classify_objects(infos: &[ObjectInfo]) -> Option<Dispatch> {
    let all: Vec<usize> = (0..infos.len()).collect();
    let mut candidates: Vec<&str> = infos.iter().flat_map(|i| i.tags.keys().copied()).collect();
    candidates.sort_by_key(|c| {
        (
            PREFERRED_TAGS.iter().position(|p| p == c).unwrap_or(usize::MAX),
            c.to_string(),
        )
    });
    candidates.dedup();
    'candidates: for field in candidates {
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut other: Vec<usize> = Vec::new();
        let mut optional_tagged: Vec<usize> = Vec::new();
        for (i, info) in infos.iter().enumerate() {
            match info.tags.get(field) {
                Some((values, required)) => {
                    for v in values {
                        groups.entry(v.clone()).or_default().push(i);
                    }
                    if !required {
                        optional_tagged.push(i);
                    }
                }
                None if info.properties.contains(field) => other.push(i),
                // A member without the tag member at all cannot be reached by it.
                None => continue 'candidates,
            }
        }
        if groups.len() + usize::from(!other.is_empty()) < 2 && groups.values().all(|g| g.len() == infos.len()) {
            continue;
        }
        let pick = |members: &[usize]| -> Option<Pick> {
            if members.len() == 1 {
                Some(Pick::Variant { index: members[0] })
            } else {
                key_pick(infos, members).map(Pick::Keys)
            }
        };
        let mut cases = Vec::new();
        for (value, members) in &groups {
            match pick(members) {
                Some(p) => cases.push(TagCase {
                    value: value.clone(),
                    pick: p,
                }),
                None => continue 'candidates,
            }
        }
        let other_pick = if other.is_empty() {
            None
        } else {
            match pick(&other) {
                Some(p) => Some(p),
                None => continue 'candidates,
            }
        };
        let absent = match (optional_tagged.as_slice(), &other_pick) {
            ([one], None) => Some(Pick::Variant { index: *one }),
            ([], Some(p)) => Some(p.clone()),
            _ => None,
        };
        return Some(Dispatch::Tag {
            field: field.to_string(),
            cases,
            other: other_pick,
            absent,
        });
    }
    key_pick(infos, &all).map(Dispatch::Keys)
}

/// Marker keys for `members`: the fallback is the member with the fewest required keys that
/// leaves every other member a marker (a key none of the still-undecided members has),
/// required keys preferred over optional ones.
fn key_pick(infos: &[ObjectInfo], members: &[usize]) -> Option<KeyPick> {
    let mut order: Vec<usize> = members.to_vec();
    order.sort_by_key(|&i| (infos[i].required.len(), infos[i].properties.len()));
    'fallback: for &fallback in &order {
        let mut remaining: Vec<usize> = members.iter().copied().filter(|&m| m != fallback).collect();
        let mut markers = Vec::new();
        while !remaining.is_empty() {
            let unique = |i: usize, key: &str, remaining: &[usize]| {
                remaining
                    .iter()
                    .chain(std::iter::once(&fallback))
                    .all(|&o| o == i || !infos[o].properties.contains(key))
            };
            let found = remaining.iter().find_map(|&i| {
                infos[i]
                    .required
                    .iter()
                    .find(|k| unique(i, k, &remaining))
                    .map(|k| (i, k.to_string()))
            });
            let found = found.or_else(|| {
                remaining.iter().find_map(|&i| {
                    infos[i]
                        .properties
                        .iter()
                        .find(|k| unique(i, k, &remaining))
                        .map(|k| (i, k.to_string()))
                })
            });
            match found {
                Some((i, key)) => {
                    markers.push((key, i));
                    remaining.retain(|&r| r != i);
                }
                None => continue 'fallback,
            }
        }
        let split = |key: &str| key.split(PATH_SEPARATOR).map(str::to_string).collect::<Vec<_>>();
        let markers = markers
            .iter()
            .enumerate()
            .map(|(j, (key, index)): (usize, &(String, usize))| Marker {
                path: split(key),
                index: *index,
                // Keys the chosen member cannot have: later markers, and the members the
                // fallback requires (`result` when `error` chose the error response).
                conflicts: markers[j + 1..]
                    .iter()
                    .map(|(later, _)| later)
                    .chain(infos[fallback].required.iter())
                    .filter(|key| !infos[*index].properties.contains(*key))
                    .map(|key| split(key))
                    .collect(),
            })
            .collect();
        return Some(KeyPick { markers, fallback });
    }
    None
}

/// The JSON-RPC methods: every struct with a constant `method` member.
fn collect_methods(defs: &[Def]) -> Vec<Method> {
    let union_members = |union: &str| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        match defs.iter().find(|d| d.name == union).map(|d| &d.kind) {
            Some(DefKind::Union(u)) => {
                out.extend(u.variants.iter().filter_map(|v| match &v.ty {
                    Ty::Ref { name } => Some(name.clone()),
                    _ => None,
                }));
            }
            Some(DefKind::Struct(_)) => {
                out.insert(union.to_string());
            }
            _ => {}
        }
        out
    };
    let client: BTreeSet<String> = union_members("ClientRequest")
        .into_iter()
        .chain(union_members("ClientNotification"))
        .collect();
    let server: BTreeSet<String> = union_members("ServerRequest")
        .into_iter()
        .chain(union_members("ServerNotification"))
        .collect();
    let mut methods = Vec::new();
    for def in defs {
        let DefKind::Struct(s) = &def.kind else {
            continue;
        };
        let Some(Value::String(method)) = s.field("method").and_then(|f| f.constant.clone()) else {
            continue;
        };
        let direction = match (client.contains(&def.name), server.contains(&def.name)) {
            (true, true) => Direction::Both,
            (true, false) => Direction::Client,
            (false, true) => Direction::Server,
            (false, false) => Direction::Embedded,
        };
        let is_request = def.name.ends_with("Request");
        let params = s.field("params");
        let result = is_request.then(|| result_of(defs, &def.name));
        methods.push(Method {
            name: method,
            message: def.name.clone(),
            is_request,
            direction,
            params: params.map(|p| p.ty.clone()),
            params_required: params.is_some_and(|p| p.required),
            result,
        });
    }
    methods.sort_by(|a, b| a.name.cmp(&b.name));
    // 2026-07-28 also names the client's cancellation `ClientNotification`: one method, both ways.
    let mut merged: Vec<Method> = Vec::new();
    for m in methods {
        match merged.last_mut() {
            Some(last) if last.name == m.name => {
                if last.direction != m.direction {
                    last.direction = Direction::Both;
                }
                if last.message.starts_with("Client") || last.message.starts_with("Server") {
                    last.message = m.message;
                }
            }
            _ => merged.push(m),
        }
    }
    merged
}

/// The result type of request `XRequest`: `XResultResponse.result` (2026-07-28), else `XResult`,
/// else the empty result.
fn result_of(defs: &[Def], request: &str) -> Ty {
    let stem = request.strip_suffix("Request").unwrap_or(request);
    let find = |n: &str| defs.iter().find(|d| d.name == n);
    if let Some(Def {
        kind: DefKind::Struct(s),
        ..
    }) = find(&format!("{stem}ResultResponse"))
        && let Some(f) = s.field("result")
    {
        return f.ty.clone();
    }
    if find(&format!("{stem}Result")).is_some() {
        return Ty::named(format!("{stem}Result"));
    }
    if find("EmptyResult").is_some() {
        Ty::named("EmptyResult")
    } else {
        Ty::named("Result")
    }
}
