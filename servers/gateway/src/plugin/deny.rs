//! `deny_tools`: refuses calls of tools whose name (as their upstream names it) matches a
//! pattern, before any upstream is asked.
//!
//! ```yaml
//! - name: no-deletes
//!   kind: deny_tools
//!   patterns: ["delete_*", "drop_*"]
//!   reason: deleting is not allowed through this gateway
//! ```
//!
//! Patterns are the policy's name globs ([`crate::policy::glob`]: `*`, `?`, `\` escapes). A
//! refused call is answered `-32055` with the reason (default: "the tool `<name>` is denied by
//! pattern `<pattern>`"). It refuses calls only: the tools are still listed — to hide them as
//! well, deny them in the policy, which both hides and refuses.

use super::{Hook, Options, Plugin, PluginFuture, PluginRequest, Verdict};
use crate::config::ConfigError;
use crate::policy::Glob;

/// The `deny_tools` plugin.
#[derive(Debug)]
pub struct DenyTools {
    patterns: Vec<(String, Glob)>,
    reason: Option<String>,
}

impl DenyTools {
    /// From its options: `patterns` (required, at least one) and `reason`.
    pub fn from_options(options: &mut Options) -> Result<Self, ConfigError> {
        let texts: Vec<String> = options.require("patterns")?;
        if texts.is_empty() {
            return Err(options.invalid("patterns", "must have at least one pattern"));
        }
        let mut patterns = Vec::with_capacity(texts.len());
        for (i, text) in texts.into_iter().enumerate() {
            let glob = Glob::name(&text).map_err(|message| options.invalid(&format!("patterns[{i}]"), message))?;
            patterns.push((text, glob));
        }
        let reason = options.take("reason")?;
        Ok(Self { patterns, reason })
    }

    /// The pattern `tool` matches, if any.
    fn matching(&self, tool: &str) -> Option<&str> {
        self.patterns
            .iter()
            .find(|(_, glob)| glob.matches(tool))
            .map(|(text, _)| text.as_str())
    }
}

impl Plugin for DenyTools {
    fn hooks(&self) -> &[Hook] {
        &[Hook::Before]
    }

    fn before<'a>(&'a self, request: &'a mut PluginRequest) -> PluginFuture<'a, Verdict> {
        let verdict = match (request.method(), request.name()) {
            ("tools/call", Some(tool)) => match self.matching(tool) {
                Some(pattern) => {
                    let reason = self
                        .reason
                        .clone()
                        .unwrap_or_else(|| format!("the tool `{tool}` is denied by pattern `{pattern}`"));
                    Verdict::deny(reason).with_annotation("pattern", pattern)
                }
                None => Verdict::proceed(),
            },
            _ => Verdict::proceed(),
        };
        Box::pin(async move { Ok(verdict) })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::*;

    fn plugin(options: serde_json::Value) -> Result<DenyTools, ConfigError> {
        let values: BTreeMap<String, Value> = serde_json::from_value(options).expect("options");
        DenyTools::from_options(&mut Options::new("plugins[0]", "d", "deny_tools", values))
    }

    #[tokio::test]
    async fn tools_matching_a_pattern_are_denied_with_the_reason() {
        let deny = plugin(json!({"patterns": ["delete_*", "drop"]})).expect("plugin");
        let mut call = PluginRequest::new("tools/call", "db").with_name("delete_rows");
        let verdict = deny.before(&mut call).await.expect("verdict");
        assert_eq!(
            verdict.denied(),
            Some("the tool `delete_rows` is denied by pattern `delete_*`")
        );
        let mut other = PluginRequest::new("tools/call", "db").with_name("select");
        assert_eq!(deny.before(&mut other).await.expect("verdict").denied(), None);
        let mut prompt = PluginRequest::new("prompts/get", "db").with_name("drop");
        assert_eq!(
            deny.before(&mut prompt).await.expect("verdict").denied(),
            None,
            "calls alone"
        );

        let worded = plugin(json!({"patterns": ["drop"], "reason": "no"})).expect("plugin");
        let mut drop = PluginRequest::new("tools/call", "db").with_name("drop");
        assert_eq!(worded.before(&mut drop).await.expect("verdict").denied(), Some("no"));
    }

    #[test]
    fn bad_options_name_the_key() {
        let error = |options| plugin(options).expect_err("refused").to_string();
        assert!(error(json!({})).starts_with("plugins[0].patterns: is required"));
        assert!(error(json!({"patterns": []})).starts_with("plugins[0].patterns: must have"));
        assert!(error(json!({"patterns": ["ok", "[x]"]})).starts_with("plugins[0].patterns[1]:"));
    }
}
