//! Resources (fixed URIs) and resource templates (RFC 6570 `{name}` variables), each read by an
//! async handler that returns the contents.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use portico_protocol::v2026_07_28 as wire;

use super::context::Context;
use crate::error::ErrorObject;

/// One item of a `resources/read` result: text or base64 blob contents.
pub type Contents = wire::ReadResourceResultContentsItem;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type ReadHandler =
    dyn Fn(Context, BTreeMap<String, String>) -> BoxFuture<Result<Vec<Contents>, ErrorObject>> + Send + Sync;

/// Text contents of `uri`.
pub fn text(uri: impl Into<String>, text: impl Into<String>) -> Contents {
    wire::TextResourceContents::new(text, uri).into()
}

/// Binary contents of `uri`, given base64-encoded.
pub fn blob(uri: impl Into<String>, base64: impl Into<String>) -> Contents {
    wire::BlobResourceContents::new(base64, uri).into()
}

/// A resource at a fixed URI.
#[derive(Clone)]
pub struct Resource {
    definition: wire::Resource,
    read: Arc<ReadHandler>,
}

/// A family of resources whose URIs match a template.
#[derive(Clone)]
pub struct ResourceTemplate {
    definition: wire::ResourceTemplate,
    pattern: UriTemplate,
    read: Arc<ReadHandler>,
}

impl Resource {
    /// The definition `resources/list` shows.
    pub fn definition(&self) -> &wire::Resource {
        &self.definition
    }

    /// Sets the MIME type.
    pub fn with_mime_type(mut self, mime: impl Into<String>) -> Self {
        self.definition.mime_type = Some(mime.into());
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, text: impl Into<String>) -> Self {
        self.definition.description = Some(text.into());
        self
    }

    pub(crate) async fn read(&self, cx: Context) -> Result<Vec<Contents>, ErrorObject> {
        (self.read)(cx, BTreeMap::new()).await
    }
}

impl ResourceTemplate {
    /// The definition `resources/templates/list` shows.
    pub fn definition(&self) -> &wire::ResourceTemplate {
        &self.definition
    }

    /// Sets the MIME type.
    pub fn with_mime_type(mut self, mime: impl Into<String>) -> Self {
        self.definition.mime_type = Some(mime.into());
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, text: impl Into<String>) -> Self {
        self.definition.description = Some(text.into());
        self
    }

    /// The template's variables bound by `uri`, if it matches.
    pub fn matches(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        self.pattern.matches(uri)
    }

    pub(crate) async fn read(&self, cx: Context, vars: BTreeMap<String, String>) -> Result<Vec<Contents>, ErrorObject> {
        (self.read)(cx, vars).await
    }
}

/// A resource at `uri` named `name`, read by `read`.
pub fn resource<F, Fut>(uri: &str, name: &str, read: F) -> Resource
where
    F: Fn(Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Contents>, ErrorObject>> + Send + 'static,
{
    let read = Arc::new(read);
    Resource {
        definition: wire::Resource::new(name, uri),
        read: Arc::new(move |cx, _| {
            let read = read.clone();
            Box::pin(async move { read(cx).await })
        }),
    }
}

/// Resources matching `uri_template` (simple `{name}` variables, each matching one or more
/// characters other than `/`), read by `read` with the bound variables.
///
/// Panics when the template is malformed (an unclosed `{` or two variables in a row): a
/// programming error.
pub fn resource_template<F, Fut>(uri_template: &str, name: &str, read: F) -> ResourceTemplate
where
    F: Fn(Context, BTreeMap<String, String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Contents>, ErrorObject>> + Send + 'static,
{
    let pattern =
        UriTemplate::parse(uri_template).unwrap_or_else(|e| panic!("resource template {uri_template:?}: {e}"));
    let read = Arc::new(read);
    ResourceTemplate {
        definition: wire::ResourceTemplate::new(name, uri_template),
        pattern,
        read: Arc::new(move |cx, vars| {
            let read = read.clone();
            Box::pin(async move { read(cx, vars).await })
        }),
    }
}

/// A parsed URI template: literal text and variables, alternating.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Var(String),
}

/// RFC 6570 level 1 templates (`file:///{path}`), enough for MCP resource templates.
#[derive(Debug, Clone)]
struct UriTemplate {
    parts: Vec<Part>,
}

impl UriTemplate {
    fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..].find('}').ok_or("unclosed `{`")? + open;
            let name = &rest[open + 1..close];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad variable name {name:?}"));
            }
            if matches!(parts.last(), Some(Part::Var(_))) {
                return Err("two variables in a row cannot be told apart".into());
            }
            parts.push(Part::Var(name.to_string()));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Self { parts })
    }

    fn matches(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        let mut vars = BTreeMap::new();
        let mut rest = uri;
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Literal(lit) => rest = rest.strip_prefix(lit.as_str())?,
                Part::Var(name) => {
                    // A variable runs to the next literal (or the end), never across `/`.
                    let end = match self.parts.get(i + 1) {
                        Some(Part::Literal(next)) => rest.find(next.as_str())?,
                        _ => rest.len(),
                    };
                    let value = &rest[..end];
                    if value.is_empty() || value.contains('/') {
                        return None;
                    }
                    vars.insert(name.clone(), value.to_string());
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_bind_variables() {
        let t = UriTemplate::parse("test://template/{id}/data").expect("parses");
        assert_eq!(
            t.matches("test://template/42/data").map(|v| v["id"].clone()),
            Some("42".into())
        );
        assert_eq!(t.matches("test://template//data"), None);
        assert_eq!(t.matches("test://template/4/2/data"), None);
        assert_eq!(t.matches("test://template/42/data/more"), None);
        let t = UriTemplate::parse("db://{table}/{row}").expect("parses");
        let v = t.matches("db://users/7").expect("matches");
        assert_eq!((v["table"].as_str(), v["row"].as_str()), ("users", "7"));
        assert!(UriTemplate::parse("x://{a}{b}").is_err());
        assert!(UriTemplate::parse("x://{a").is_err());
    }
}
