//! Tools whose input schema is the fixture: `json_schema_2020_12_tool` (JSON Schema 2020-12
//! keywords that must reach the client unchanged: `$schema`, `$defs` with an `$anchor`,
//! `additionalProperties`, `allOf`/`anyOf`, `if`/`then`/`else`; SEP-1613, SEP-2106) and
//! `test_x_mcp_header` (a string argument annotated `x-mcp-header`, which Streamable HTTP
//! mirrors into an `Mcp-Param-Region` header; SEP-2243).

use std::borrow::Cow;

use portico_core::server::{ServerBuilder, tool};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The arguments of `json_schema_2020_12_tool`: a contact, reachable by phone or email.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contact_method: Option<ContactMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    city: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ContactMethod {
    Phone,
    Email,
}

/// The schema is written out, not derived: it is the suite's, keyword for keyword.
impl JsonSchema for Contact {
    fn schema_name() -> Cow<'static, str> {
        "Contact".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "$anchor": "addressDef",
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
                }
            },
            "properties": {
                "name": {"type": "string"},
                "address": {"$ref": "#/$defs/address"},
                "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                "phone": {"type": "string"},
                "email": {"type": "string"}
            },
            "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
            "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
            "then": {"required": ["phone"]},
            "else": {"required": ["email"]},
            "additionalProperties": false
        })
    }
}

impl Contact {
    /// The conditions serde does not check: a phone when that is the method, else an email.
    fn check(&self) -> Result<(), &'static str> {
        match (self.contact_method, &self.phone, &self.email) {
            (Some(ContactMethod::Phone), None, _) => Err("contactMethod is phone, so phone is required"),
            (Some(ContactMethod::Phone), Some(_), _) => Ok(()),
            (_, _, None) => Err("email is required unless contactMethod is phone"),
            _ => Ok(()),
        }
    }
}

/// The arguments of `test_x_mcp_header`.
#[derive(Deserialize, JsonSchema)]
struct Region {
    /// The region to query; on Streamable HTTP it travels in the `Mcp-Param-Region` header too.
    #[schemars(extend("x-mcp-header" = "Region"))]
    region: String,
}

/// Registers the schema tools.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(tool(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            |_cx, args: Contact| async move {
                args.check()?;
                let echoed = serde_json::to_string(&args).map_err(|_| "the arguments could not be encoded")?;
                Ok::<_, &str>(format!("JSON Schema 2020-12 tool called with: {echoed}"))
            },
        ))
        .tool(tool(
            "test_x_mcp_header",
            "Echoes its region argument, which Streamable HTTP mirrors into the Mcp-Param-Region header",
            |_cx, args: Region| async move { format!("region={}", args.region) },
        ))
}
