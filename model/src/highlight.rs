//! Syntax highlighting for code blocks: one small lexer, configured per language
//! (comments, strings, keywords), that marks comments, strings, numbers, keywords and
//! type-like names with `<span class="tok-…">`. It runs on the server and in the browser
//! alike (the same markup either way) and weighs a few kilobytes, where a grammar-based
//! highlighter would add megabytes to the WASM. Everything it writes is escaped.

/// How one language looks to the lexer.
struct Lang {
    line_comments: &'static [&'static str],
    block_comment: Option<(&'static str, &'static str)>,
    /// Quote characters that open a string.
    quotes: &'static [char],
    /// `"""` and `'''` strings (Python).
    triple: bool,
    keywords: &'static [&'static str],
    /// Keywords match in any case (SQL).
    any_case: bool,
    /// Capitalised names are types (not in shells or SQL).
    types: bool,
}

const RUST: Lang = Lang {
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &['"'],
    triple: false,
    keywords: &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
        "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
        "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while",
    ],
    any_case: false,
    types: true,
};

const PYTHON: Lang = Lang {
    line_comments: &["#"],
    block_comment: None,
    quotes: &['"', '\''],
    triple: true,
    keywords: &[
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
        "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
        "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "self",
    ],
    any_case: false,
    types: true,
};

const JS: Lang = Lang {
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &['"', '\'', '`'],
    triple: false,
    keywords: &[
        "async",
        "await",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "default",
        "delete",
        "do",
        "else",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "from",
        "function",
        "if",
        "import",
        "in",
        "instanceof",
        "interface",
        "let",
        "new",
        "null",
        "return",
        "static",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "type",
        "typeof",
        "undefined",
        "var",
        "void",
        "while",
        "yield",
    ],
    any_case: false,
    types: true,
};

const C_LIKE: Lang = Lang {
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    quotes: &['"', '\''],
    triple: false,
    keywords: &[
        "abstract",
        "auto",
        "bool",
        "break",
        "case",
        "catch",
        "char",
        "class",
        "const",
        "continue",
        "default",
        "defer",
        "delete",
        "do",
        "double",
        "else",
        "enum",
        "extends",
        "false",
        "final",
        "float",
        "for",
        "fun",
        "func",
        "go",
        "if",
        "implements",
        "import",
        "int",
        "interface",
        "long",
        "namespace",
        "new",
        "nil",
        "null",
        "nullptr",
        "override",
        "package",
        "private",
        "protected",
        "public",
        "return",
        "short",
        "static",
        "struct",
        "switch",
        "template",
        "this",
        "throw",
        "true",
        "try",
        "typedef",
        "unsigned",
        "using",
        "val",
        "var",
        "void",
        "while",
        "#include",
        "#define",
    ],
    any_case: false,
    types: true,
};

const SHELL: Lang = Lang {
    line_comments: &["#"],
    block_comment: None,
    quotes: &['"', '\''],
    triple: false,
    keywords: &[
        "case", "do", "done", "elif", "else", "esac", "export", "fi", "for", "function", "if", "in", "local", "return",
        "then", "until", "while",
    ],
    any_case: false,
    types: false,
};

const SQL: Lang = Lang {
    line_comments: &["--"],
    block_comment: Some(("/*", "*/")),
    quotes: &['\''],
    triple: false,
    keywords: &[
        "and",
        "as",
        "asc",
        "by",
        "create",
        "delete",
        "desc",
        "distinct",
        "drop",
        "from",
        "group",
        "having",
        "index",
        "insert",
        "into",
        "is",
        "join",
        "key",
        "left",
        "limit",
        "not",
        "null",
        "on",
        "or",
        "order",
        "primary",
        "references",
        "right",
        "select",
        "set",
        "table",
        "update",
        "values",
        "where",
        "with",
    ],
    any_case: true,
    types: false,
};

const DATA: Lang = Lang {
    line_comments: &["#"],
    block_comment: None,
    quotes: &['"', '\''],
    triple: false,
    keywords: &["true", "false", "null", "yes", "no"],
    any_case: false,
    types: false,
};

const JSON: Lang = Lang {
    line_comments: &[],
    block_comment: None,
    quotes: &['"'],
    triple: false,
    keywords: &["true", "false", "null"],
    any_case: false,
    types: false,
};

const CSS: Lang = Lang {
    line_comments: &[],
    block_comment: Some(("/*", "*/")),
    quotes: &['"', '\''],
    triple: false,
    keywords: &["important", "inherit", "none", "auto"],
    any_case: false,
    types: false,
};

fn lang(name: &str) -> Option<&'static Lang> {
    Some(match name.to_ascii_lowercase().as_str() {
        "rust" | "rs" => &RUST,
        "python" | "py" | "python3" => &PYTHON,
        "javascript" | "js" | "jsx" | "mjs" | "typescript" | "ts" | "tsx" => &JS,
        "c" | "h" | "cpp" | "c++" | "cc" | "hpp" | "java" | "go" | "golang" | "kotlin" | "kt" | "csharp" | "cs"
        | "swift" | "php" | "scala" | "dart" => &C_LIKE,
        "bash" | "sh" | "shell" | "zsh" | "console" => &SHELL,
        "sql" | "postgresql" | "sqlite" => &SQL,
        "toml" | "yaml" | "yml" | "ini" => &DATA,
        "json" | "jsonc" => &JSON,
        "css" | "scss" => &CSS,
        _ => return None,
    })
}

/// Escapes text for element content.
pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn span(class: &str, text: &str, out: &mut String) {
    out.push_str("<span class=\"tok-");
    out.push_str(class);
    out.push_str("\">");
    escape(text, out);
    out.push_str("</span>");
}

/// `code` in language `name` as highlighted HTML, or `None` for a language it does not know.
pub fn highlight(name: &str, code: &str) -> Option<String> {
    let l = lang(name)?;
    let mut out = String::with_capacity(code.len() * 2);
    let b = code.as_bytes();
    let mut i = 0;
    let mut plain = 0; // start of text not yet written
    let flush = |out: &mut String, from: usize, to: usize| escape(&code[from..to], out);
    while i < b.len() {
        let rest = &code[i..];
        // Comments.
        let comment_end = if let Some(lc) = l.line_comments.iter().find(|lc| rest.starts_with(**lc)) {
            let _ = lc;
            Some(rest.find('\n').map_or(code.len(), |n| i + n))
        } else if let Some((open, close)) = l.block_comment.filter(|(o, _)| rest.starts_with(o)) {
            Some(rest[open.len()..].find(close).map_or(code.len(), |n| i + open.len() + n + close.len()))
        } else {
            None
        };
        if let Some(end) = comment_end {
            flush(&mut out, plain, i);
            span("c", &code[i..end], &mut out);
            i = end;
            plain = i;
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        // Strings: to the closing quote (a backslash escapes), or the line's end.
        if l.quotes.contains(&c) && !(c == '\'' && l.keywords.contains(&"fn") && is_lifetime(rest)) {
            let triple: String = std::iter::repeat_n(c, 3).collect();
            let end = if l.triple && rest.starts_with(&triple) {
                rest[3..].find(&triple).map_or(code.len(), |n| i + 3 + n + 3)
            } else {
                let mut j = i + c.len_utf8();
                let mut end = code.len();
                while j < b.len() {
                    match b[j] {
                        b'\\' => j += 2,
                        b'\n' if c != '`' => {
                            end = j;
                            break;
                        }
                        x if x == c as u8 => {
                            end = j + 1;
                            break;
                        }
                        _ => j += 1,
                    }
                }
                end.min(code.len())
            };
            let end = (i + 1..=end).rev().find(|e| code.is_char_boundary(*e)).unwrap_or(end);
            flush(&mut out, plain, i);
            span("s", &code[i..end], &mut out);
            i = end;
            plain = i;
            continue;
        }
        // Words: keywords, types; numbers.
        if c.is_ascii_alphanumeric() || c == '_' || c == '#' {
            let prev_word = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
            let len =
                rest.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '#')).unwrap_or(rest.len());
            let len = len.max(1);
            let word = &rest[..len];
            if !prev_word {
                let class = if c.is_ascii_digit() {
                    Some("n")
                } else if l.keywords.iter().any(|k| if l.any_case { k.eq_ignore_ascii_case(word) } else { *k == word })
                {
                    Some("k")
                } else if l.types && c.is_ascii_uppercase() && word.chars().any(|ch| ch.is_ascii_lowercase()) {
                    Some("t")
                } else {
                    None
                };
                if let Some(class) = class {
                    flush(&mut out, plain, i);
                    span(class, word, &mut out);
                    plain = i + len;
                }
            }
            i += len;
            continue;
        }
        i += c.len_utf8();
    }
    flush(&mut out, plain, code.len());
    Some(out)
}

/// `'a` in Rust is a lifetime, not a character.
fn is_lifetime(rest: &str) -> bool {
    let mut chars = rest.chars().skip(1);
    match (chars.next(), chars.next()) {
        (Some(c), Some(n)) => (c.is_alphabetic() || c == '_') && n != '\'',
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::highlight;

    #[test]
    fn rust_is_marked_and_escaped() {
        let html = highlight("rust", "fn main() { let s: &'a str = \"<b>\"; // hi\n}").expect("rust");
        assert_eq!(
            html,
            "<span class=\"tok-k\">fn</span> main() { <span class=\"tok-k\">let</span> s: &amp;&#39;a str = \
             <span class=\"tok-s\">&quot;&lt;b&gt;&quot;</span>; <span class=\"tok-c\">// hi</span>\n}"
        );
    }

    #[test]
    fn python_strings_comments_numbers_and_types() {
        let html = highlight("py", "class Point(Base):\n    x = '''doc'''  # note\n    y = 42\n").expect("python");
        assert!(html.contains("<span class=\"tok-k\">class</span> <span class=\"tok-t\">Point</span>"), "{html}");
        assert!(html.contains("<span class=\"tok-s\">&#39;&#39;&#39;doc&#39;&#39;&#39;</span>"), "{html}");
        assert!(html.contains("<span class=\"tok-c\"># note</span>"), "{html}");
        assert!(html.contains("<span class=\"tok-n\">42</span>"), "{html}");
    }

    #[test]
    fn unknown_languages_and_broken_input_are_safe() {
        assert_eq!(highlight("brainfuck", "+++"), None);
        for src in ["\"unterminated <script>", "/* open", "'", "é\"ü", "x = \"a\\", "SELECT 'it''s' -- c"] {
            for lang in ["rust", "py", "js", "sql", "sh", "json"] {
                let html = highlight(lang, src).expect("known");
                assert!(!html.contains('<') || html.contains("<span"), "{html}");
                assert!(!html.contains("<script"), "{html}");
            }
        }
        let sql = highlight("sql", "select * FROM t -- all").expect("sql");
        assert!(sql.contains("<span class=\"tok-k\">FROM</span>") && sql.contains("tok-c"), "{sql}");
    }
}
