//! The patterns of the policy's grants: `*` (any run of characters), `?` (one character) and,
//! in URIs, `**`; everything else is itself.
//!
//! Two flavours:
//!
//! - **names** ([`Glob::name`]: upstreams, tools, prompts): `*` and `**` match any run of
//!   characters, `?` any one;
//! - **URIs** ([`Glob::uri`]: resources and resource templates): `*` and `?` stop at `/`, so
//!   `file:///docs/*` is the files of `/docs` and `file:///docs/**` everything below it.
//!
//! `\` makes the next character itself (`\*` is a star). `[`, `]`, `{` and `}` must be escaped
//! that way: character classes and alternatives are not supported, and a pattern that looks
//! like it uses them is refused rather than matched literally by surprise. The whole text must
//! match (`read_*` does not match `unread_x`).

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Itself.
    Literal(char),
    /// `?`: one character (not `/` in a URI).
    One,
    /// `*`: any run (without `/` in a URI).
    Star,
    /// `**` in a URI: any run, `/` included.
    Stars,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    /// What is checked before the tokens: the pattern is all literal, or a literal prefix and
    /// one trailing star that crosses everything.
    shape: Shape,
    /// A URI pattern: `?` stops at `/`.
    uri: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Exact(String),
    Prefix(String),
    /// A star that crosses everything, then a literal.
    Suffix(String),
    /// A literal between two stars that cross everything (`*delete*`).
    Contains(String),
    General,
}

impl Glob {
    /// A pattern over names.
    pub fn name(pattern: &str) -> Result<Self, String> {
        Self::compile(pattern, false)
    }

    /// A pattern over URIs.
    pub fn uri(pattern: &str) -> Result<Self, String> {
        Self::compile(pattern, true)
    }

    fn compile(pattern: &str, uri: bool) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("an empty pattern matches nothing".into());
        }
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            let token = match c {
                '\\' => match chars.next() {
                    Some(escaped) => Token::Literal(escaped),
                    None => return Err(format!("`{pattern}` ends with a lone `\\`")),
                },
                '?' => Token::One,
                '*' => {
                    let mut run = 1;
                    while chars.next_if_eq(&'*').is_some() {
                        run += 1;
                    }
                    match run {
                        1 if uri => Token::Star,
                        2 if uri => Token::Stars,
                        1 | 2 => Token::Stars,
                        _ => {
                            return Err(format!(
                                "`{pattern}` has {run} `*` in a row; `*` or `**` mean something"
                            ));
                        }
                    }
                }
                '[' | ']' | '{' | '}' => {
                    return Err(format!(
                        "`{pattern}`: `{c}` is not supported (no character classes or alternatives); write `\\{c}` for the character itself"
                    ));
                }
                other => Token::Literal(other),
            };
            tokens.push(token);
        }
        let literal = |tokens: &[Token]| -> Option<String> {
            tokens
                .iter()
                .map(|t| match t {
                    Token::Literal(c) => Some(*c),
                    _ => None,
                })
                .collect()
        };
        let shape = match tokens.as_slice() {
            _ if literal(&tokens).is_some() => Shape::Exact(literal(&tokens).unwrap_or_default()),
            [rest @ .., Token::Stars] if literal(rest).is_some() => Shape::Prefix(literal(rest).unwrap_or_default()),
            [Token::Stars, rest @ ..] if literal(rest).is_some() => Shape::Suffix(literal(rest).unwrap_or_default()),
            [Token::Stars, middle @ .., Token::Stars] if literal(middle).is_some() => {
                Shape::Contains(literal(middle).unwrap_or_default())
            }
            _ => Shape::General,
        };
        Ok(Self { tokens, shape, uri })
    }

    /// Whether `text`, whole, matches.
    pub fn matches(&self, text: &str) -> bool {
        match &self.shape {
            Shape::Exact(exact) => exact == text,
            Shape::Prefix(prefix) => text.starts_with(prefix.as_str()),
            Shape::Suffix(suffix) => text.ends_with(suffix.as_str()),
            Shape::Contains(middle) => text.contains(middle.as_str()),
            Shape::General => self.simulate(text),
        }
    }

    /// Runs the pattern as an automaton over `text`: the positions of the pattern reachable
    /// after each character (no backtracking, so no pattern is slow).
    fn simulate(&self, text: &str) -> bool {
        let n = self.tokens.len();
        let mut now = vec![false; n + 1];
        let mut next = vec![false; n + 1];
        now[0] = true;
        self.close(&mut now);
        for c in text.chars() {
            next.iter_mut().for_each(|b| *b = false);
            for (i, token) in self.tokens.iter().enumerate() {
                if !now[i] {
                    continue;
                }
                match token {
                    Token::Literal(l) if *l == c => next[i + 1] = true,
                    Token::One if c != '/' || !self.uri => next[i + 1] = true,
                    Token::Star if c != '/' => next[i] = true,
                    Token::Stars => next[i] = true,
                    _ => {}
                }
            }
            self.close(&mut next);
            if !next.iter().any(|b| *b) {
                return false;
            }
            std::mem::swap(&mut now, &mut next);
        }
        now[n]
    }

    /// Adds the positions reachable without a character: past any star.
    fn close(&self, set: &mut [bool]) {
        for (i, token) in self.tokens.iter().enumerate() {
            if set[i] && matches!(token, Token::Star | Token::Stars) {
                set[i + 1] = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(pattern: &str, text: &str) -> bool {
        Glob::name(pattern).expect("a valid pattern").matches(text)
    }

    fn uri(pattern: &str, text: &str) -> bool {
        Glob::uri(pattern).expect("a valid pattern").matches(text)
    }

    #[test]
    fn names_match_whole_with_stars_and_question_marks() {
        assert!(name("echo", "echo"));
        assert!(!name("echo", "echoes"));
        assert!(name("read_*", "read_file"));
        assert!(name("read_*", "read_"));
        assert!(!name("read_*", "unread_file"));
        assert!(name("*", "a/b"), "a name's `*` crosses `/`");
        assert!(name("**", ""));
        assert!(name("*_file", "read_file"));
        assert!(name("r?ad*", "road_x"));
        assert!(!name("r?ad", "rad"));
        assert!(name("*a*b*c", "xxaxxbxxc"));
        assert!(!name("*a*b*c", "xxaxxcxxb"));
        assert!(name("\\*", "*"));
        assert!(!name("\\*", "x"));
        assert!(name("\\[x\\]", "[x]"));
        assert!(name("é?", "éü"));
    }

    #[test]
    fn the_quick_shapes_match_as_the_automaton_does() {
        let texts = [
            "",
            "delete",
            "x_delete_y",
            "delete_all",
            "drop_delete",
            "del",
            "a/delete/b",
            "file:///a/b.md",
            "b.md",
            "ab",
            "éa",
        ];
        for pattern in [
            "*delete*", "*_all", "delete_*", "*", "**", "*.md", "**.md", "*/*", "**/b.md", "*a", "a*", "*é*",
        ] {
            for (compile, flavour) in [
                (Glob::name as fn(&str) -> Result<Glob, String>, "name"),
                (Glob::uri, "uri"),
            ] {
                let glob = compile(pattern).expect("a valid pattern");
                for text in texts {
                    assert_eq!(
                        glob.matches(text),
                        glob.simulate(text),
                        "{flavour} pattern {pattern:?} on {text:?} ({:?})",
                        glob.shape
                    );
                }
            }
        }
        assert!(matches!(
            Glob::name("*delete*").expect("valid").shape,
            Shape::Contains(_)
        ));
        assert!(matches!(Glob::name("*_all").expect("valid").shape, Shape::Suffix(_)));
        // In a URI a single star stops at `/`: not a quick shape.
        assert!(matches!(Glob::uri("*.md").expect("valid").shape, Shape::General));
        assert!(matches!(Glob::uri("**.md").expect("valid").shape, Shape::Suffix(_)));
    }

    #[test]
    fn uri_stars_stop_at_slashes_and_double_stars_cross_them() {
        assert!(uri("file:///docs/*", "file:///docs/a.md"));
        assert!(!uri("file:///docs/*", "file:///docs/sub/a.md"));
        assert!(uri("file:///docs/**", "file:///docs/sub/a.md"));
        assert!(uri("file:///docs/**", "file:///docs/"));
        assert!(uri("file:///**/*.md", "file:///a/b/c.md"));
        assert!(!uri("file:///**/*.md", "file:///a/b/c.txt"));
        assert!(!uri("file:///docs/?", "file:///docs//"));
        assert!(uri("file:///docs/\\{path\\}", "file:///docs/{path}"));
        assert!(uri("*://**", "https://x.example/a/b"));
    }

    #[test]
    fn a_pathological_pattern_is_not_slow() {
        let text = "a".repeat(5000);
        assert!(!name("*a*a*a*a*a*a*a*a*a*a*b", &text));
        assert!(uri("**a**a**a**a**a", &text));
    }

    #[test]
    fn bad_patterns_are_refused_saying_why() {
        assert!(Glob::name("").unwrap_err().contains("empty"));
        assert!(Glob::name("x\\").unwrap_err().contains("lone"));
        assert!(Glob::uri("a***").unwrap_err().contains("3 `*`"));
        assert!(Glob::name("[ab]").unwrap_err().contains("not supported"));
        assert!(Glob::name("{a,b}").unwrap_err().contains("not supported"));
    }
}
