//! Rust emitter: wire types for every revision, and for the newest the handler traits and the
//! dispatch table. Views are computed here (type expressions, decision code); the layout is in
//! `templates/rust/`. The output is parsed with syn and printed with prettyplease, so a
//! template mistake fails generation instead of committing code that does not compile.

use std::collections::BTreeSet;

use heck::ToShoutySnakeCase;
use serde::Serialize;
use serde_json::Value;

use super::{Generated, render, revision_module};
use crate::ir::{Def, DefKind, Direction, Dispatch, JsonKind, KeyPick, Module, Pick, Struct, Ty, Union};
use crate::names;
use crate::{Error, Result};

/// Where the generated Rust goes.
pub const OUT_DIR: &str = "runtime/protocol/src/generated";

/// Renders every revision's types, the revisions index and the newest revision's server stubs.
pub fn emit(env: &minijinja::Environment<'_>, modules: &[Module]) -> Result<Vec<Generated>> {
    let mut out = Vec::new();
    for module in modules {
        out.push(emit_types(env, module)?);
    }
    if let Some(newest) = modules.last() {
        out.push(emit_server(env, newest)?);
    }
    let index = IndexView {
        revisions: modules
            .iter()
            .map(|m| RevisionView {
                revision: m.revision.clone(),
                module: revision_module(&m.revision),
                source: m.source.clone(),
                sha256: m.sha256.clone(),
            })
            .collect(),
        newest: modules.last().map(|m| revision_module(&m.revision)).unwrap_or_default(),
    };
    let text = render(env, "rust/mod.rs.jinja", minijinja::Value::from_serialize(&index))?;
    out.push(Generated {
        path: format!("{OUT_DIR}/mod.rs"),
        contents: format_rust("rust/mod.rs.jinja", &text)?,
    });
    Ok(out)
}

/// Renders one revision's wire types.
pub fn emit_types(env: &minijinja::Environment<'_>, module: &Module) -> Result<Generated> {
    let view = ModuleView::new(module)?;
    let text = render(env, "rust/types.rs.jinja", minijinja::Value::from_serialize(&view))?;
    Ok(Generated {
        path: format!("{OUT_DIR}/{}.rs", revision_module(&module.revision)),
        contents: format_rust("rust/types.rs.jinja", &text)?,
    })
}

/// Renders the handler traits and dispatch table of one revision.
pub fn emit_server(env: &minijinja::Environment<'_>, module: &Module) -> Result<Generated> {
    let view = ServerView::new(module);
    let text = render(env, "rust/server.rs.jinja", minijinja::Value::from_serialize(&view))?;
    Ok(Generated {
        path: format!("{OUT_DIR}/{}_server.rs", revision_module(&module.revision)),
        contents: format_rust("rust/server.rs.jinja", &text)?,
    })
}

/// Parses and pretty-prints generated Rust; a parse error names the line.
pub fn format_rust(template: &str, text: &str) -> Result<String> {
    let file = syn::parse_file(text).map_err(|e| {
        let line = e.span().start().line;
        let context: String = text
            .lines()
            .skip(line.saturating_sub(3))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n");
        Error::Render {
            template: template.to_string(),
            message: format!("rendered Rust does not parse at line {line}: {e}\n{context}"),
        }
    })?;
    Ok(prettyplease::unparse(&file))
}

#[derive(Serialize)]
struct IndexView {
    revisions: Vec<RevisionView>,
    newest: String,
}

#[derive(Serialize)]
struct RevisionView {
    revision: String,
    module: String,
    source: String,
    sha256: String,
}

#[derive(Serialize)]
struct ModuleView {
    revision: String,
    module: String,
    source: String,
    sha256: String,
    structs: Vec<StructView>,
    enums: Vec<EnumView>,
    unions: Vec<UnionView>,
    aliases: Vec<AliasView>,
    methods: Vec<MethodView>,
    error_codes: Vec<ErrorCodeView>,
    /// Every type that can be decoded from JSON on its own.
    decodable: Vec<String>,
}

#[derive(Serialize)]
struct StructView {
    name: String,
    doc: Vec<String>,
    fields: Vec<FieldView>,
    consts: Vec<ConstView>,
    /// Rust type of the map keeping unknown members.
    extra_ty: String,
    extra_any: bool,
    ctor_params: Vec<CtorParam>,
}

#[derive(Serialize)]
struct FieldView {
    ident: String,
    wire: String,
    doc: Vec<String>,
    /// The storage type.
    ty: String,
    /// The type read from the wire (the storage type without the `Option` of an optional member).
    read_ty: String,
    required: bool,
    /// For a required member: the constructor expression that fills it.
    ctor_expr: String,
    setter: String,
    setter_ty: String,
    setter_expr: String,
}

#[derive(Serialize)]
struct ConstView {
    wire: String,
    assoc: String,
    literal: String,
    assoc_ty: String,
    is_str: bool,
    required: bool,
    seen: String,
    /// For an optional constant: the `bool` field recording whether it is present.
    present: String,
}

#[derive(Serialize)]
struct CtorParam {
    ident: String,
    ty: String,
}

#[derive(Serialize)]
struct EnumView {
    name: String,
    doc: Vec<String>,
    variants: Vec<EnumVariantView>,
    expected: String,
    /// Whether any other string is allowed (kept in `Other`).
    open: bool,
}

#[derive(Serialize)]
struct EnumVariantView {
    ident: String,
    wire: String,
}

#[derive(Serialize)]
struct UnionView {
    name: String,
    doc: Vec<String>,
    variants: Vec<UnionVariantView>,
    /// `tagged` (streaming tag dispatch), `object` (buffered tag/keys dispatch), `shape`, `context`.
    strategy: String,
    tag: String,
    expected: String,
    cases: Vec<TagCaseView>,
    other: Option<String>,
    absent: Option<String>,
    /// For `object`: code computing the member index from `object: &Map<String, Value>`.
    pick_code: String,
    shape: Vec<ShapeView>,
    /// For `shape` with several object members: whether objects go through `from_object`.
    objects_by_pick: bool,
    dispatch_doc: String,
}

#[derive(Serialize)]
struct UnionVariantView {
    name: String,
    /// `None` for the `null` member.
    ty: Option<String>,
    index: usize,
    /// Whether `From<ty>` can be implemented (the type appears once in the union).
    from: bool,
}

#[derive(Serialize)]
struct TagCaseView {
    value: String,
    variant: String,
    ty: String,
}

#[derive(Serialize)]
struct ShapeView {
    kind: String,
    variant: String,
    ty: Option<String>,
}

#[derive(Serialize)]
struct AliasView {
    name: String,
    doc: Vec<String>,
    ty: String,
}

#[derive(Serialize)]
struct MethodView {
    name: String,
    konst: String,
    message: String,
    is_request: bool,
    params: String,
    result: String,
    direction: String,
    doc: String,
    /// The handler function's name (`tools_call`).
    handler: String,
    /// The member of `ClientRequest` carrying this method, if any.
    client_variant: Option<String>,
    /// Whether the message has a `params` member.
    has_params: bool,
}

#[derive(Serialize)]
struct ErrorCodeView {
    konst: String,
    code: i64,
    def: String,
}

impl ModuleView {
    fn new(module: &Module) -> Result<Self> {
        let mut view = ModuleView {
            revision: module.revision.clone(),
            module: revision_module(&module.revision),
            source: module.source.clone(),
            sha256: module.sha256.clone(),
            structs: Vec::new(),
            enums: Vec::new(),
            unions: Vec::new(),
            aliases: Vec::new(),
            methods: Vec::new(),
            error_codes: Vec::new(),
            decodable: Vec::new(),
        };
        for def in &module.defs {
            match &def.kind {
                DefKind::Struct(s) => view.structs.push(struct_view(def, s)),
                DefKind::Enum(e) => view.enums.push(EnumView {
                    name: def.name.clone(),
                    doc: doc_lines(def.doc.as_deref()),
                    variants: enum_variants(&e.values),
                    expected: e.values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", "),
                    open: e.open,
                }),
                DefKind::Union(u) => view.unions.push(union_view(module, def, u)?),
                DefKind::Alias { target } => view.aliases.push(AliasView {
                    name: def.name.clone(),
                    doc: doc_lines(def.doc.as_deref()),
                    ty: rust_ty(target),
                }),
            }
            if let DefKind::Struct(s) = &def.kind
                && let Some(code) = s
                    .field("code")
                    .and_then(|f| f.constant.as_ref())
                    .and_then(Value::as_i64)
            {
                let mut stem = def.name.as_str();
                while let Some(s) = stem.strip_suffix("Error") {
                    stem = s;
                }
                view.error_codes.push(ErrorCodeView {
                    konst: stem.to_shouty_snake_case(),
                    code,
                    def: def.name.clone(),
                });
            }
        }
        view.error_codes.sort_by(|a, b| a.konst.cmp(&b.konst));
        view.error_codes.dedup_by(|a, b| a.konst == b.konst);
        for m in &module.methods {
            view.methods.push(method_view(module, m));
        }
        view.decodable = module
            .defs
            .iter()
            .filter(|d| decodable(module, &d.name, 0))
            .map(|d| d.name.clone())
            .collect();
        Ok(view)
    }
}

/// Whether the named type can be decoded without context (not a [`Dispatch::Context`] union,
/// nor an alias of one).
fn decodable(module: &Module, name: &str, depth: usize) -> bool {
    match module.def(name).map(|d| &d.kind) {
        Some(DefKind::Union(u)) => !matches!(u.dispatch, Dispatch::Context),
        Some(DefKind::Alias {
            target: Ty::Ref { name },
        }) => depth < 8 && decodable(module, name, depth + 1),
        Some(_) => true,
        None => false,
    }
}

fn method_view(module: &Module, m: &crate::ir::Method) -> MethodView {
    let params = match (&m.params, m.params_required) {
        (Some(ty), true) => rust_ty(ty),
        (Some(ty), false) => format!("::core::option::Option<{}>", rust_ty(ty)),
        (None, _) => "()".into(),
    };
    MethodView {
        name: m.name.clone(),
        konst: names::method_const(&m.name),
        message: m.message.clone(),
        is_request: m.is_request,
        params,
        result: m.result.as_ref().map(rust_ty).unwrap_or_else(|| "()".into()),
        direction: format!("{:?}", m.direction),
        doc: module.def(&m.message).and_then(|d| d.doc.clone()).unwrap_or_default(),
        handler: names::method_fn(&m.name),
        client_variant: match module.def("ClientRequest").map(|d| &d.kind) {
            Some(DefKind::Union(u)) => u
                .variants
                .iter()
                .find(|v| v.ty == Ty::named(m.message.clone()))
                .map(|v| v.name.clone()),
            _ => None,
        },
        has_params: m.params.is_some(),
    }
}

/// Doc comment lines: `{@link X}` becomes `` `X` ``, and bare code fences are marked as text
/// so rustdoc does not try to compile them.
fn doc_lines(doc: Option<&str>) -> Vec<String> {
    let Some(doc) = doc else { return Vec::new() };
    let mut text = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(start) = rest.find("{@link ") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 7..];
        match after.find('}') {
            Some(end) => {
                let target = after[..end].split(['|', ' ']).next().unwrap_or_default();
                text.push('`');
                text.push_str(target.trim());
                text.push('`');
                rest = &after[end + 1..];
            }
            None => {
                text.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    text.push_str(rest);
    let mut in_fence = false;
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") {
                in_fence = !in_fence;
                if in_fence && trimmed == "```" {
                    return " ```text".to_string();
                }
            }
            let line = line.trim_end();
            // A space after `///`, as hand-written docs have it.
            if line.is_empty() {
                String::new()
            } else {
                format!(" {line}")
            }
        })
        .collect()
}

/// The Rust type of a type expression.
pub fn rust_ty(ty: &Ty) -> String {
    match ty {
        Ty::String => "::std::string::String".into(),
        Ty::Integer => "i64".into(),
        Ty::Number => "::serde_json::Number".into(),
        Ty::Boolean => "bool".into(),
        Ty::Null => "()".into(),
        Ty::Any => "::serde_json::Value".into(),
        Ty::Ref { name } => name.clone(),
        Ty::Array { items } => format!("::std::vec::Vec<{}>", rust_ty(items)),
        Ty::Map { values } if **values == Ty::Any => {
            "::serde_json::Map<::std::string::String, ::serde_json::Value>".into()
        }
        Ty::Map { values } => {
            format!(
                "::std::collections::BTreeMap<::std::string::String, {}>",
                rust_ty(values)
            )
        }
        Ty::Nullable { inner } => format!("::core::option::Option<{}>", rust_ty(inner)),
    }
}

fn struct_view(def: &Def, s: &Struct) -> StructView {
    let mut fields = Vec::new();
    let mut consts = Vec::new();
    let mut ctor_params = Vec::new();
    for f in &s.fields {
        let ident = names::rust_field(&f.name);
        if let Some(c) = &f.constant {
            let (literal, assoc_ty, is_str) = match c {
                Value::String(s) => (format!("{s:?}"), "&'static str".to_string(), true),
                other => (other.to_string(), "i64".to_string(), false),
            };
            consts.push(ConstView {
                wire: f.name.clone(),
                assoc: names::wire_stem(&f.name).to_shouty_snake_case(),
                literal,
                assoc_ty,
                is_str,
                required: f.required,
                seen: format!("seen_{}", ident.trim_start_matches("r#")),
                present: if f.required {
                    String::new()
                } else {
                    format!("{}_present", ident.trim_start_matches("r#"))
                },
            });
            continue;
        }
        let inner = match &f.ty {
            Ty::Nullable { inner } if !f.required => rust_ty(inner),
            other => rust_ty(other),
        };
        let ty = if f.required {
            inner.clone()
        } else {
            format!("::core::option::Option<{inner}>")
        };
        let (setter_ty, setter_expr) = if inner == "::std::string::String" {
            (
                "impl ::core::convert::Into<::std::string::String>".to_string(),
                "value.into()".to_string(),
            )
        } else {
            (inner.clone(), "value".to_string())
        };
        let mut ctor_expr = String::new();
        if f.required {
            let bare = if RESERVED_PARAMS.contains(&ident.as_str()) {
                format!("{ident}_")
            } else {
                ident.clone()
            };
            ctor_expr = setter_expr.replace("value", &bare);
            ctor_params.push(CtorParam {
                ident: bare,
                ty: setter_ty.clone(),
            });
        }
        fields.push(FieldView {
            ctor_expr,
            setter: format!("with_{}", ident.trim_start_matches("r#")),
            ident,
            wire: f.name.clone(),
            doc: doc_lines(f.doc.as_deref()),
            read_ty: inner.clone(),
            ty,
            required: f.required,
            setter_ty,
            setter_expr,
        });
    }
    StructView {
        name: def.name.clone(),
        doc: doc_lines(def.doc.as_deref()),
        fields,
        consts,
        extra_any: s.extra == Ty::Any,
        extra_ty: match &s.extra {
            Ty::Any => "::serde_json::Map<::std::string::String, ::serde_json::Value>".into(),
            other => format!(
                "::std::collections::BTreeMap<::std::string::String, {}>",
                rust_ty(other)
            ),
        },
        ctor_params,
    }
}

/// Parameter names a constructor cannot use as they are.
const RESERVED_PARAMS: &[&str] = &["self", "extra"];

fn enum_variants(values: &[String]) -> Vec<EnumVariantView> {
    let idents: Vec<String> = values.iter().map(|v| names::pascal(v)).collect();
    let unique: BTreeSet<&String> = idents.iter().collect();
    values
        .iter()
        .enumerate()
        .map(|(i, v)| EnumVariantView {
            ident: if unique.len() == idents.len() {
                idents[i].clone()
            } else {
                format!("V{i}")
            },
            wire: v.clone(),
        })
        .collect()
}

fn union_view(module: &Module, def: &Def, u: &Union) -> Result<UnionView> {
    let mut seen_tys: Vec<String> = Vec::new();
    let variants: Vec<UnionVariantView> = u
        .variants
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let ty = (v.ty != Ty::Null).then(|| rust_ty(&v.ty));
            if let Some(t) = &ty {
                seen_tys.push(t.clone());
            }
            UnionVariantView {
                name: v.name.clone(),
                ty,
                index,
                from: false,
            }
        })
        .collect();
    let variants = variants
        .into_iter()
        .map(|mut v| {
            v.from =
                v.ty.as_ref()
                    .is_some_and(|t| seen_tys.iter().filter(|s| *s == t).count() == 1);
            v
        })
        .collect::<Vec<_>>();
    let name_of = |i: usize| u.variants[i].name.clone();
    let ty_of = |i: usize| rust_ty(&u.variants[i].ty);
    let mut view = UnionView {
        name: def.name.clone(),
        doc: doc_lines(def.doc.as_deref()),
        variants,
        strategy: String::new(),
        tag: String::new(),
        expected: String::new(),
        cases: Vec::new(),
        other: None,
        absent: None,
        pick_code: String::new(),
        shape: Vec::new(),
        objects_by_pick: false,
        dispatch_doc: String::new(),
    };
    let all_variant_picks = |d: &Dispatch| match d {
        Dispatch::Tag {
            cases, other, absent, ..
        } => cases
            .iter()
            .map(|c| &c.pick)
            .chain(other.iter())
            .chain(absent.iter())
            .all(|p| matches!(p, Pick::Variant { .. })),
        _ => false,
    };
    match &u.dispatch {
        Dispatch::Tag {
            field,
            cases,
            other,
            absent,
        } if all_variant_picks(&u.dispatch) => {
            view.strategy = "tagged".into();
            view.tag = field.clone();
            view.expected = cases
                .iter()
                .map(|c| format!("{:?}", c.value))
                .collect::<Vec<_>>()
                .join(", ");
            let pick_index = |p: &Pick| match p {
                Pick::Variant { index } => *index,
                Pick::Keys(k) => k.fallback,
            };
            view.cases = cases
                .iter()
                .map(|c| {
                    let i = pick_index(&c.pick);
                    TagCaseView {
                        value: c.value.clone(),
                        variant: name_of(i),
                        ty: ty_of(i),
                    }
                })
                .collect();
            view.other = other.as_ref().map(|p| name_of(pick_index(p)));
            view.absent = absent.as_ref().map(|p| name_of(pick_index(p)));
            view.dispatch_doc = format!("Told apart by the constant member `{field}`.");
        }
        d @ (Dispatch::Tag { .. } | Dispatch::Keys(_)) => {
            view.strategy = "object".into();
            view.pick_code = pick_code(&def.name, d);
            view.dispatch_doc = "Told apart by a constant member and by which members are present.".into();
        }
        Dispatch::Shape { cases, objects } => {
            view.strategy = "shape".into();
            view.shape = cases
                .iter()
                .map(|c| ShapeView {
                    kind: kind_name(c.kind).into(),
                    variant: name_of(c.index),
                    ty: (u.variants[c.index].ty != Ty::Null).then(|| ty_of(c.index)),
                })
                .collect();
            if let Some(objects) = objects {
                view.objects_by_pick = true;
                view.pick_code = pick_code(&def.name, objects);
            }
            view.dispatch_doc = "Told apart by the kind of JSON value.".into();
        }
        Dispatch::Context => {
            view.strategy = "context".into();
            view.dispatch_doc = "The members cannot be told apart from the value alone, so this type only \
                 serializes: decode the member you expect (a result by the method of the request it answers)."
                .into();
        }
    }
    let _ = module;
    Ok(view)
}

fn kind_name(kind: JsonKind) -> &'static str {
    match kind {
        JsonKind::Null => "null",
        JsonKind::Boolean => "boolean",
        JsonKind::Integer => "integer",
        JsonKind::Number => "number",
        JsonKind::String => "string",
        JsonKind::Array => "array",
        JsonKind::Object => "object",
    }
}

/// Rust code that evaluates to `Result<usize, serde_json::Error>`: the index of the member
/// `object` (a `&Map<String, Value>`) belongs to.
fn pick_code(union: &str, dispatch: &Dispatch) -> String {
    let keys = |k: &KeyPick| {
        let path = |p: &[String]| {
            format!(
                "&[{}]",
                p.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
            )
        };
        let markers = k
            .markers
            .iter()
            .map(|m| {
                let conflicts = m.conflicts.iter().map(|c| path(c)).collect::<Vec<_>>().join(", ");
                format!("({}, {}, &[{conflicts}])", path(&m.path), m.index)
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "crate::support::pick_by_markers(object, &[{markers}], {}, {union:?})",
            k.fallback
        )
    };
    let pick = |p: &Pick| match p {
        Pick::Variant { index } => format!("Ok({index})"),
        Pick::Keys(k) => keys(k),
    };
    match dispatch {
        Dispatch::Keys(k) => keys(k),
        Dispatch::Tag {
            field,
            cases,
            other,
            absent,
        } => {
            let expected = cases
                .iter()
                .map(|c| format!("{:?}", c.value))
                .collect::<Vec<_>>()
                .join(", ");
            let mut arms = String::new();
            for c in cases {
                arms.push_str(&format!("Some({:?}) => {},\n", c.value, pick(&c.pick)));
            }
            match other {
                Some(p) => arms.push_str(&format!("Some(_) => {},\n", pick(p))),
                None => arms.push_str(&format!(
                    "Some(other) => Err(crate::support::unknown_tag({union:?}, {field:?}, other, {expected:?})),\n"
                )),
            }
            match absent {
                Some(p) => arms.push_str(&format!("None => {},\n", pick(p))),
                None => arms.push_str(&format!(
                    "None => Err(crate::support::missing_tag({union:?}, {field:?}, {expected:?})),\n"
                )),
            }
            format!(
                "{{
                    let tag = match object.get({field:?}) {{
                        Some(::serde_json::Value::String(tag)) => Some(tag.as_str()),
                        None => None,
                        Some(other) => return Err(<::serde_json::Error as ::serde::de::Error>::custom(format_args!(\"{union}.{field} must be a string, got {{other}}\"))),
                    }};
                    match tag {{ {arms} }}
                }}"
            )
        }
        _ => "compile_error!(\"this union has no object dispatch\")".into(),
    }
}

#[derive(Serialize)]
struct ServerView {
    revision: String,
    module: String,
    source: String,
    sha256: String,
    requests: Vec<MethodView>,
    notifications: Vec<MethodView>,
    all: Vec<MethodView>,
}

impl ServerView {
    fn new(module: &Module) -> Self {
        let to_server = |d: Direction| matches!(d, Direction::Client | Direction::Both);
        let methods: Vec<MethodView> = module.methods.iter().map(|m| method_view(module, m)).collect();
        let pick = |is_request: bool| {
            module
                .methods
                .iter()
                .zip(&methods)
                .filter(|(m, _)| to_server(m.direction) && m.is_request == is_request)
                .map(|(m, _)| method_view(module, m))
                .collect()
        };
        ServerView {
            revision: module.revision.clone(),
            module: revision_module(&module.revision),
            source: module.source.clone(),
            sha256: module.sha256.clone(),
            requests: pick(true),
            notifications: pick(false),
            all: methods,
        }
    }
}
