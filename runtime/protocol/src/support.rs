//! Hand-written machinery the generated wire types call into: member keys, constants, missing
//! and duplicate members, tag and marker dispatch for unions. Kept here, once, so the generated
//! code stays short and every error message has the same shape (`Type.member`).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON-RPC message type with a fixed method.
pub trait Message {
    /// The method's wire name (`tools/call`).
    const METHOD: &'static str;
    /// The type of `params`.
    type Params;
}

/// A request: a [`Message`] that expects a result.
pub trait Request: Message {
    /// The type of the result.
    type Result;
}

/// An object member's name as read from the input: borrowed when the input allows it.
#[derive(Debug)]
pub struct Key<'de>(Cow<'de, str>);

impl<'de> Key<'de> {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, owned.
    pub fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(CowStrVisitor(None)).map(Key)
    }
}

/// A string, borrowed from the input when possible; with `(union, tag)`, the value of a
/// union's tag member, which errors name.
struct CowStrVisitor(Option<(&'static str, &'static str)>);

impl<'de> DeserializeSeed<'de> for CowStrVisitor {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((union, tag)) => write!(f, "{union}.{tag} to be a string"),
            None => f.write_str("a string"),
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// `missing member Type.member`.
pub fn missing<E: de::Error>(ty: &str, member: &str) -> E {
    E::custom(format_args!("missing member {ty}.{member}"))
}

/// `duplicate member Type.member`.
pub fn duplicate<E: de::Error>(ty: &str, member: &str) -> E {
    E::custom(format_args!("duplicate member {ty}.{member}"))
}

/// Reads the value of a member into `slot`, refusing a second occurrence.
pub fn member<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    ty: &str,
    name: &str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(duplicate(ty, name));
    }
    *slot = Some(map.next_value().map_err(|e| in_member::<A::Error>(ty, name, e))?);
    Ok(())
}

/// Reads an optional member into `slot`; `null` counts as absent (peers written with some
/// serializers send `null` for an unset optional member).
pub fn optional_member<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    seen: &mut bool,
    ty: &str,
    name: &str,
) -> Result<(), A::Error> {
    if std::mem::replace(seen, true) {
        return Err(duplicate(ty, name));
    }
    *slot = map
        .next_value::<Option<T>>()
        .map_err(|e| in_member::<A::Error>(ty, name, e))?;
    Ok(())
}

/// Prefixes an error from inside a member with the member's place, so a nested failure reads
/// as a path: `in CallToolResult.content: expected TextContent.type = "text", got 5`. The
/// position serde_json appends is dropped here; it is added once more, at the outermost level.
fn in_member<E: de::Error>(ty: &str, name: &str, inner: impl fmt::Display) -> E {
    let text = inner.to_string();
    E::custom(format_args!("in {ty}.{name}: {}", strip_position(&text)))
}

/// `message at line 1 column 5` → `message`.
fn strip_position(text: &str) -> &str {
    match text.rfind(" at line ") {
        Some(i)
            if text[i + 9..]
                .split(" column ")
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            &text[..i]
        }
        _ => text,
    }
}

/// Reads a member that must hold the string constant `expected`, without allocating when the
/// input can lend the string.
pub fn constant_str<'de, A: MapAccess<'de>>(
    map: &mut A,
    seen: &mut bool,
    ty: &str,
    name: &str,
    expected: &str,
) -> Result<(), A::Error> {
    if std::mem::replace(seen, true) {
        return Err(duplicate(ty, name));
    }
    map.next_value_seed(ConstStr { ty, name, expected })
}

/// Checks a string constant as it is read.
struct ConstStr<'a> {
    ty: &'a str,
    name: &'a str,
    expected: &'a str,
}

impl<'de> DeserializeSeed<'de> for ConstStr<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ConstStr<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} = {:?}", self.ty, self.name, self.expected)
    }

    fn visit_str<E: de::Error>(self, got: &str) -> Result<(), E> {
        if got == self.expected {
            Ok(())
        } else {
            Err(E::custom(format_args!(
                "expected {}.{} = {:?}, got {got:?}",
                self.ty, self.name, self.expected
            )))
        }
    }
}

/// Reads a member that must hold the integer constant `expected`.
pub fn constant_int<'de, A: MapAccess<'de>>(
    map: &mut A,
    seen: &mut bool,
    ty: &str,
    name: &str,
    expected: i64,
) -> Result<(), A::Error> {
    if std::mem::replace(seen, true) {
        return Err(duplicate(ty, name));
    }
    let value: Value = map.next_value()?;
    match value.as_i64() {
        Some(got) if got == expected => Ok(()),
        _ => Err(de::Error::custom(format_args!(
            "expected {ty}.{name} = {expected}, got {value}"
        ))),
    }
}

/// Keeps a member the schema does not name.
pub fn extra_member<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    extra: &mut std::collections::BTreeMap<String, T>,
    key: Key<'de>,
    ty: &str,
) -> Result<(), A::Error> {
    let name = key.into_string();
    let value = map.next_value().map_err(|e| in_member::<A::Error>(ty, &name, e))?;
    if extra.insert(name, value).is_some() {
        return Err(de::Error::custom(format_args!("duplicate member in {ty}")));
    }
    Ok(())
}

/// Keeps a member the schema does not name, as any JSON.
pub fn extra_json<'de, A: MapAccess<'de>>(
    map: &mut A,
    extra: &mut Map<String, Value>,
    key: Key<'de>,
) -> Result<(), A::Error> {
    let name = key.into_string();
    let value = map.next_value()?;
    if extra.contains_key(&name) {
        return Err(de::Error::custom(format_args!("duplicate member `{name}`")));
    }
    extra.insert(name, value);
    Ok(())
}

/// A union told apart by a constant tag member, decoded without buffering when the tag is
/// the object's first member (as Portico and the official SDKs write it).
pub trait TaggedUnion: Sized {
    /// The union's name, for messages.
    const NAME: &'static str;
    /// The tag member.
    const TAG: &'static str;

    /// Decodes the member selected by `tag` (`None`: the tag member is absent) from `object`,
    /// which yields the whole object, tag included.
    fn decode<'de, D: Deserializer<'de>>(tag: Option<&str>, object: D) -> Result<Self, D::Error>;
}

/// `Deserialize` for a [`TaggedUnion`].
pub fn deserialize_tagged<'de, T: TaggedUnion, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_map(TaggedVisitor::<T>(PhantomData))
}

struct TaggedVisitor<T>(PhantomData<T>);

impl<'de, T: TaggedUnion> Visitor<'de> for TaggedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} object", T::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let Some(first) = map.next_key::<Key<'de>>()? else {
            return T::decode(None, Map::new().into_deserializer()).map_err(de::Error::custom);
        };
        if first.as_str() == T::TAG {
            let tag = map.next_value_seed(CowStrVisitor(Some((T::NAME, T::TAG))))?;
            let rest = TagFirst::<'de, A> {
                key: T::TAG,
                tag: Some(tag.clone()),
                key_given: false,
                rest: map,
            };
            return T::decode(Some(tag.as_ref()), MapAccessDeserializer::new(rest));
        }
        // The tag is not first: keep the members until it turns up.
        let mut object = Map::new();
        object.insert(first.into_string(), map.next_value()?);
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value = map.next_value()?;
            object.insert(key.into_string(), value);
        }
        let tag = match object.get(T::TAG) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(de::Error::custom(format_args!(
                    "{}.{} must be a string, got {other}",
                    T::NAME,
                    T::TAG
                )));
            }
        };
        T::decode(tag.as_deref(), Value::Object(object)).map_err(de::Error::custom)
    }
}

/// A map that yields the already-read tag member first, then the rest of the input.
struct TagFirst<'de, A> {
    key: &'static str,
    /// The tag's value, until the member's deserializer has read it.
    tag: Option<Cow<'de, str>>,
    /// Whether the tag's key has been handed out.
    key_given: bool,
    rest: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for TagFirst<'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        if !self.key_given {
            self.key_given = true;
            return seed.deserialize(BorrowedStrDeserializer::new(self.key)).map(Some);
        }
        self.rest.next_key_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        match self.tag.take() {
            Some(tag) => seed.deserialize(tag.into_deserializer()),
            None => self.rest.next_value_seed(seed),
        }
    }
}

/// Whether `object` holds a member at `path` (one segment, or two for a member of a member).
pub fn has_path(object: &Map<String, Value>, path: &[&str]) -> bool {
    match path {
        [] => false,
        [key] => object.contains_key(*key),
        [key, rest @ ..] => object
            .get(*key)
            .and_then(Value::as_object)
            .is_some_and(|inner| has_path(inner, rest)),
    }
}

/// A marker key of a union: its path, the member it selects, and the paths that must not be
/// present with it.
pub type Marker<'a> = (&'a [&'a str], usize, &'a [&'a [&'a str]]);

/// Picks a union member by marker keys, in order, then `fallback`. A value holding a marker
/// and one of its conflicts is ambiguous.
pub fn pick_by_markers(
    object: &Map<String, Value>,
    markers: &[Marker<'_>],
    fallback: usize,
    union: &str,
) -> Result<usize, serde_json::Error> {
    for (path, index, conflicts) in markers {
        if has_path(object, path) {
            if let Some(conflict) = conflicts.iter().find(|c| has_path(object, c)) {
                return Err(de::Error::custom(format_args!(
                    "{union}: `{}` and `{}` cannot both be present",
                    path.join("."),
                    conflict.join(".")
                )));
            }
            return Ok(*index);
        }
    }
    Ok(fallback)
}

/// Decodes `T` from a buffered object (a union member chosen by keys).
pub fn from_object<T: serde::de::DeserializeOwned>(object: Map<String, Value>) -> Result<T, serde_json::Error> {
    T::deserialize(Value::Object(object))
}

/// Reads a whole object into memory, for unions told apart by keys.
pub fn buffer_object<'de, D: Deserializer<'de>>(
    deserializer: D,
    union: &'static str,
) -> Result<Map<String, Value>, D::Error> {
    struct ObjectVisitor(&'static str);
    impl<'de> Visitor<'de> for ObjectVisitor {
        type Value = Map<String, Value>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a {} object", self.0)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut object = Map::new();
            while let Some(key) = map.next_key::<Key<'de>>()? {
                let value = map.next_value()?;
                object.insert(key.into_string(), value);
            }
            Ok(object)
        }
    }
    deserializer.deserialize_map(ObjectVisitor(union))
}

/// `unknown Union.tag "value"; expected one of ...`.
pub fn unknown_tag<E: de::Error>(union: &str, tag: &str, value: &str, expected: &str) -> E {
    E::custom(format_args!(
        "unknown {union}.{tag} {value:?}; expected one of {expected}"
    ))
}

/// `missing member Union.tag (one of ...)`.
pub fn missing_tag<E: de::Error>(union: &str, tag: &str, expected: &str) -> E {
    E::custom(format_args!("missing member {union}.{tag} (one of {expected})"))
}
