//! The skills extension fixtures (`io.modelcontextprotocol/skills`, SEP-2640): Agent Skills the
//! suite's `sep-2640-skills-*` scenarios discover with `skills/list` and `resources/list`, read
//! with `resources/read` and browse with `resources/directory/read` (served by the framework, see
//! `portico_core::server::skills`).

use portico_core::server::ServerBuilder;
use portico_core::server::skills::Skill;
use serde_json::json;

/// The body of `pdf-processing`'s `SKILL.md`.
const PDF_BODY: &str = "# PDF processing\n\n\
Use this skill to extract text and tables from PDF documents, fill PDF forms, and assemble\n\
several PDFs into one.\n\n\
1. Read the document's text first; scanned pages need OCR.\n\
2. For forms, list the fields before filling them: see [the form guide](references/FORMS.md).\n";

/// `references/FORMS.md` of `pdf-processing`.
const FORMS: &str = "# Filling PDF forms\n\n\
List the form's fields, map each to the user's data, fill them, then flatten the form so the\n\
values cannot be changed by accident.\n";

/// The body of `release-notes`' `SKILL.md`.
const RELEASE_BODY: &str = "# Release notes\n\n\
Collect the merged changes since the last tag, group them by kind (features, fixes, breaking\n\
changes), and write one line per change in the imperative mood.\n";

/// Registers the skills fixtures.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    builder
        .skill(
            Skill::new("pdf-processing", "Extract, fill, and assemble PDF documents", PDF_BODY)
                .with_frontmatter("license", json!("Apache-2.0"))
                .with_frontmatter("metadata", json!({"author": "portico", "version": "1.0"}))
                .with_file("references/FORMS.md", "text/markdown", FORMS),
        )
        .skill(
            Skill::new(
                "release-notes",
                "Write release notes from the changes since the last release",
                RELEASE_BODY,
            )
            .under("portico"),
        )
}
