//! The intermediate representation: what the schema means, independent of any output language.
//!
//! Every definition has a name (the schema's `$defs` name, or `Parent` + `Field` for an inline
//! type hoisted out of a property), and every union knows how it is told apart on the wire, so
//! the emitters never guess by trying variants in turn.

use serde::Serialize;
use serde_json::Value;

/// One revision of the protocol, lowered.
#[derive(Debug, Clone, Serialize)]
pub struct Module {
    /// The revision, e.g. `2026-07-28`.
    pub revision: String,
    /// The file the schema was read from, relative to the spec directory (`2026-07-28/schema.json`).
    pub source: String,
    /// sha256 of that file.
    pub sha256: String,
    /// The JSON Schema dialect of the file.
    pub draft: Draft,
    /// Every definition, in schema order, each hoisted type right after its parent.
    pub defs: Vec<Def>,
    /// Every JSON-RPC method the schema defines, sorted by wire name.
    pub methods: Vec<Method>,
}

impl Module {
    /// The definition called `name`.
    pub fn def(&self, name: &str) -> Option<&Def> {
        self.defs.iter().find(|d| d.name == name)
    }
}

/// The JSON Schema dialect of a schema file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Draft {
    /// `http://json-schema.org/draft-07/schema#`, definitions under `definitions`.
    Draft7,
    /// `https://json-schema.org/draft/2020-12/schema`, definitions under `$defs`.
    Draft2020_12,
}

/// A named type.
#[derive(Debug, Clone, Serialize)]
pub struct Def {
    /// The type's name (`CallToolRequest`, or a hoisted `ElicitResultAction`).
    pub name: String,
    /// The schema's `description`.
    pub doc: Option<String>,
    /// JSON pointer of the schema this definition came from.
    pub pointer: String,
    /// Whether the definition was hoisted out of another type rather than named in `$defs`.
    pub hoisted: bool,
    /// What the type is.
    pub kind: DefKind,
}

/// The shape of a named type.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DefKind {
    /// An object with known members.
    Struct(Struct),
    /// One of several types, told apart as [`Union::dispatch`] says.
    Union(Union),
    /// A closed set of strings.
    Enum(Enum),
    /// Another name for a type expression (`Cursor` = string, `EmptyResult` = `Result`).
    Alias {
        /// The aliased type.
        target: Ty,
    },
}

/// An object type.
#[derive(Debug, Clone, Serialize)]
pub struct Struct {
    /// Known members, in schema order (alphabetical in the upstream files).
    pub fields: Vec<Field>,
    /// The type of members the schema does not name (`additionalProperties`; any JSON when the
    /// schema says nothing, since JSON Schema allows them). Emitters keep such members so a
    /// message passes through Portico unchanged.
    pub extra: Ty,
}

impl Struct {
    /// The member called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A member of an object type.
#[derive(Debug, Clone, Serialize)]
pub struct Field {
    /// The name on the wire (`_meta`, `inputSchema`, `io.modelcontextprotocol/clientInfo`).
    pub name: String,
    /// The member's `description`.
    pub doc: Option<String>,
    /// The member's type.
    pub ty: Ty,
    /// Whether the schema lists the member in `required`.
    pub required: bool,
    /// The member's constant value, when the schema fixes it (`const`, or a one-value `enum`).
    pub constant: Option<Value>,
}

/// A string enumeration: closed (`enum: [...]`), or open (`anyOf` of constants and a plain
/// string), where the listed values are the known ones and any other string is allowed too.
#[derive(Debug, Clone, Serialize)]
pub struct Enum {
    /// The known strings, in schema order.
    pub values: Vec<String>,
    /// Whether other strings are allowed.
    pub open: bool,
}

/// A type expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "ty", rename_all = "snake_case")]
pub enum Ty {
    /// Any JSON string.
    String,
    /// A JSON number without a fraction.
    Integer,
    /// Any JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// `null`.
    Null,
    /// Any JSON value.
    Any,
    /// A named definition.
    Ref {
        /// The definition's name.
        name: String,
    },
    /// A JSON array.
    Array {
        /// Type of the items.
        items: Box<Ty>,
    },
    /// A JSON object used as a map from strings to values.
    Map {
        /// Type of the values.
        values: Box<Ty>,
    },
    /// The inner type or `null`.
    Nullable {
        /// The non-null type.
        inner: Box<Ty>,
    },
}

impl Ty {
    /// `Ty::Ref` to `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Ty::Ref { name: name.into() }
    }
}

/// A union of types.
#[derive(Debug, Clone, Serialize)]
pub struct Union {
    /// The members, in schema order.
    pub variants: Vec<Variant>,
    /// How a value is assigned to a member.
    pub dispatch: Dispatch,
}

/// A member of a union.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    /// The member's name inside the union (`Text` for `TextContent` in `ContentBlock`).
    pub name: String,
    /// The member's type.
    pub ty: Ty,
}

/// The JSON kinds a shape union is told apart by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonKind {
    /// `null`.
    Null,
    /// `true`/`false`.
    Boolean,
    /// A number without a fraction.
    Integer,
    /// A number with a fraction (integers too, when no member takes integers alone).
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

/// How a union's members are told apart. Computed once from the schema; the emitted code
/// follows it and never tries members one after another.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Dispatch {
    /// Object members carry a constant in the member `field` (`type`, `method`, `mode`, ...).
    Tag {
        /// The tag member.
        field: String,
        /// Which member each constant selects.
        cases: Vec<TagCase>,
        /// The pick for any other value: only where the spec leaves the set open (a member
        /// whose tag is a free string, like `resultType` of a complete result).
        other: Option<Pick>,
        /// The pick when the tag member is missing (a member whose tag is optional).
        absent: Option<Pick>,
    },
    /// Object members without a common tag, told apart by the members present.
    Keys(KeyPick),
    /// Members of different JSON kinds (`string | integer`, JSON values).
    Shape {
        /// The member for each kind; kinds not listed are rejected.
        cases: Vec<ShapeCase>,
        /// When several members are objects: how objects are told apart among them (a
        /// [`Dispatch::Tag`] or [`Dispatch::Keys`] whose indices are union member indices).
        objects: Option<Box<Dispatch>>,
    },
    /// The members cannot be told apart from the value alone: the caller must know which one
    /// to expect (a result is decoded by the method of the request it answers).
    Context,
}

/// One constant of a [`Dispatch::Tag`].
#[derive(Debug, Clone, Serialize)]
pub struct TagCase {
    /// The tag's value.
    pub value: String,
    /// What it selects.
    pub pick: Pick,
}

/// What a tag value selects.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "pick", rename_all = "snake_case")]
pub enum Pick {
    /// One member, by index into [`Union::variants`].
    Variant {
        /// Index of the member.
        index: usize,
    },
    /// Several members sharing the tag value, told apart by keys.
    Keys(KeyPick),
}

/// Members told apart by marker keys: the first marker present selects its member; a value
/// that also holds a marker of a member it cannot be is rejected as ambiguous (both `result`
/// and `error`); with no marker, `fallback`.
#[derive(Debug, Clone, Serialize)]
pub struct KeyPick {
    /// The markers, in the order they are checked.
    pub markers: Vec<Marker>,
    /// The member taken when no marker is present.
    pub fallback: usize,
}

/// A key whose presence selects a union member.
#[derive(Debug, Clone, Serialize)]
pub struct Marker {
    /// Path of the key: one segment for a member of the object, two for a member of one of its
    /// object members (`["items", "enum"]`).
    pub path: Vec<String>,
    /// Index of the member it selects.
    pub index: usize,
    /// Paths of later markers that the selected member does not have: a value holding one of
    /// them is ambiguous and rejected.
    pub conflicts: Vec<Vec<String>>,
}

/// One kind of a [`Dispatch::Shape`].
#[derive(Debug, Clone, Serialize)]
pub struct ShapeCase {
    /// The JSON kind.
    pub kind: JsonKind,
    /// Index of the member taking it.
    pub index: usize,
}

/// Which side sends a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to server (`ClientRequest`, `ClientNotification`).
    Client,
    /// Server to client (`ServerRequest`, `ServerNotification`).
    Server,
    /// Both directions (cancellation, progress, ping).
    Both,
    /// Not sent on its own: embedded in other messages (2026-07-28 input requests).
    Embedded,
}

/// A JSON-RPC method.
#[derive(Debug, Clone, Serialize)]
pub struct Method {
    /// The wire name (`tools/call`).
    pub name: String,
    /// The message type (`CallToolRequest`).
    pub message: String,
    /// Whether it expects a response.
    pub is_request: bool,
    /// Who sends it.
    pub direction: Direction,
    /// Type of `params`, if the message has them.
    pub params: Option<Ty>,
    /// Whether `params` is required.
    pub params_required: bool,
    /// Type of the result, for requests.
    pub result: Option<Ty>,
}
