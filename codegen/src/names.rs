//! Naming: wire names to identifiers, and the names of hoisted types and union members.

use heck::{ToPascalCase, ToSnakeCase};

/// Rust keywords that need a raw identifier (`r#type`).
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static",
    "struct", "super", "trait", "true", "try", "type", "unsafe", "use", "where", "while", "abstract", "become", "box",
    "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield",
];

/// The part of a wire name that carries meaning: `io.modelcontextprotocol/clientInfo` is
/// `clientInfo`, `_meta` is `meta`, `$schema` is `schema`.
pub fn wire_stem(wire: &str) -> &str {
    let tail = wire.rsplit('/').next().unwrap_or(wire);
    tail.trim_start_matches(['_', '$'])
}

/// The Rust field name for a wire member (`inputSchema` → `input_schema`, `type` → `r#type`).
pub fn rust_field(wire: &str) -> String {
    let snake = wire_stem(wire).to_snake_case();
    if RUST_KEYWORDS.contains(&snake.as_str()) {
        format!("r#{snake}")
    } else {
        snake
    }
}

/// PascalCase of a wire name, for hoisted type names and enum variants (`date-time` → `DateTime`).
pub fn pascal(wire: &str) -> String {
    let p = wire_stem(wire).to_pascal_case();
    if p.is_empty() || p.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{p}")
    } else {
        p
    }
}

/// SCREAMING_SNAKE constant name for a method (`notifications/tools/list_changed` →
/// `NOTIFICATIONS_TOOLS_LIST_CHANGED`).
pub fn method_const(method: &str) -> String {
    method.replace(['/', '-', '.'], "_").to_snake_case().to_uppercase()
}

/// The handler function name of a method (`tools/call` → `tools_call`).
pub fn method_fn(method: &str) -> String {
    method.replace(['/', '-', '.'], "_").to_snake_case()
}

/// Splits a PascalCase name into words (`TextContent` → `["Text", "Content"]`).
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, c) in name.char_indices() {
        let starts = c.is_ascii_uppercase()
            && (i == 0 || {
                let prev = name[..i].chars().last().unwrap_or('a');
                let next = name[i + c.len_utf8()..].chars().next();
                prev.is_ascii_lowercase() || prev.is_ascii_digit() || next.is_some_and(|n| n.is_ascii_lowercase())
            });
        if starts || out.is_empty() {
            out.push(String::new());
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

/// Names for the members of a union whose members are the named types `types`: a last word
/// shared by two or more members is dropped (`TextContent`, `ImageContent`, `ResourceLink` in
/// `ContentBlock` → `Text`, `Image`, `ResourceLink`), unless that makes a name empty or two
/// names equal, in which case the type names are kept.
pub fn variant_names(types: &[String]) -> Vec<String> {
    let last: Vec<Option<String>> = types.iter().map(|t| words(t).last().cloned()).collect();
    let shared = |w: &Option<String>| w.is_some() && last.iter().filter(|x| *x == w).count() >= 2;
    let names: Vec<String> = types
        .iter()
        .zip(&last)
        .map(|(t, w)| match w {
            Some(w) if shared(&Some(w.clone())) && t.len() > w.len() => t[..t.len() - w.len()].to_string(),
            _ => t.clone(),
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() == names.len() {
        names
    } else {
        types.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_drop_shared_suffix() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            variant_names(&t(&[
                "TextContent",
                "ImageContent",
                "AudioContent",
                "ResourceLink",
                "EmbeddedResource"
            ])),
            t(&["Text", "Image", "Audio", "ResourceLink", "EmbeddedResource"])
        );
        assert_eq!(
            variant_names(&t(&["Result", "CallToolResult"])),
            t(&["Result", "CallTool"])
        );
        assert_eq!(
            variant_names(&t(&["PingRequest", "CallToolRequest"])),
            t(&["Ping", "CallTool"])
        );
    }

    #[test]
    fn field_names() {
        assert_eq!(rust_field("io.modelcontextprotocol/clientInfo"), "client_info");
        assert_eq!(rust_field("_meta"), "meta");
        assert_eq!(rust_field("type"), "r#type");
        assert_eq!(rust_field("$schema"), "schema");
        assert_eq!(
            method_const("notifications/tools/list_changed"),
            "NOTIFICATIONS_TOOLS_LIST_CHANGED"
        );
        assert_eq!(pascal("date-time"), "DateTime");
    }
}
