//! Markdown to safe HTML, the same function on the server and in the browser so both
//! render alike. Safety is by construction rather than by cleaning HTML afterwards: the
//! parser's events are filtered before pulldown-cmark writes them (it escapes every text
//! and attribute). Raw HTML in the source is shown as text; links keep only `http`,
//! `https` and `mailto` (or a path under `base`), so no `javascript:` or `data:` URL
//! survives; images are dropped (an image from elsewhere tells a third party who reads
//! what). No element the writer emits carries an event attribute. A fenced code block in
//! a language [`crate::highlight`] knows is highlighted once its closing fence is there
//! (while an answer streams, the block being written stays plain until it closes).

use pulldown_cmark::{CodeBlockKind, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd, html};

/// Renders `src` (front matter, if any, is left out). Relative links point under `base`
/// (`/skills/<id>/files/`); `None` drops them. Code blocks get a language label and a
/// copy button labelled `copy` (the page wires the button).
pub fn render_with(src: &str, base: Option<&str>, copy: &str) -> String {
    let opts = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut links: Vec<bool> = Vec::new();
    let mut in_metadata = false;
    // The code block being read: its language, whether it is closed, its text so far.
    let mut code: Option<(String, bool, String)> = None;
    let events = Parser::new_ext(src, opts).into_offset_iter().filter_map(|(ev, range)| match ev {
        Event::Start(Tag::MetadataBlock(_)) => {
            in_metadata = true;
            None
        }
        Event::End(TagEnd::MetadataBlock(_)) => {
            in_metadata = false;
            None
        }
        _ if in_metadata => None,
        Event::Text(t) if code.is_some() => {
            if let Some((_, _, text)) = code.as_mut() {
                text.push_str(&t);
            }
            None
        }
        // Raw HTML is text, shown as written.
        Event::Html(s) | Event::InlineHtml(s) => Some(Event::Text(s)),
        Event::Start(Tag::HtmlBlock) => Some(Event::Start(Tag::Paragraph)),
        Event::End(TagEnd::HtmlBlock) => Some(Event::End(TagEnd::Paragraph)),
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Link { link_type, dest_url, title, .. }) => {
            let url = safe_url(&dest_url, base);
            links.push(url.is_some());
            url.map(|url| {
                let external = !matches!(link_type, LinkType::Email) && url.contains("://");
                let mut a = format!("<a href=\"{}\"", attr(&url));
                if !title.is_empty() {
                    a.push_str(&format!(" title=\"{}\"", attr(&title)));
                }
                if external {
                    a.push_str(" target=\"_blank\"");
                }
                a.push_str(" rel=\"noopener noreferrer nofollow\">");
                Event::InlineHtml(CowStr::from(a))
            })
        }
        Event::End(TagEnd::Link) => links.pop().unwrap_or(false).then(|| Event::InlineHtml("</a>".into())),
        Event::Start(Tag::CodeBlock(kind)) => {
            let (lang, closed) = match &kind {
                CodeBlockKind::Fenced(info) => {
                    (info.split([' ', ',', '{']).next().unwrap_or_default(), fence_closed(&src[range]))
                }
                CodeBlockKind::Indented => ("", false),
            };
            code = Some((lang.to_owned(), closed, String::new()));
            let lang = attr(lang);
            let class = if lang.is_empty() { String::new() } else { format!(" class=\"language-{lang}\"") };
            Some(Event::Html(CowStr::from(format!(
                "<div class=\"code-block\"><div class=\"code-head\"><span class=\"code-lang\">{lang}</span>\
                 <button type=\"button\" class=\"code-copy\">{}</button></div><pre><code{class}>",
                attr(copy)
            ))))
        }
        Event::End(TagEnd::CodeBlock) => {
            let (lang, closed, text) = code.take().unwrap_or_default();
            let body = closed.then(|| crate::highlight::highlight(&lang, &text)).flatten().unwrap_or_else(|| {
                let mut plain = String::with_capacity(text.len());
                crate::highlight::escape(&text, &mut plain);
                plain
            });
            Some(Event::Html(CowStr::from(format!("{body}</code></pre></div>\n"))))
        }
        other => Some(other),
    });
    let mut out = String::with_capacity(src.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// [`render_with`] with the English copy label.
pub fn render(src: &str, base: Option<&str>) -> String {
    render_with(src, base, "Copy")
}

/// Whether a fenced block's source (its opening fence to its end) has its closing fence.
fn fence_closed(block: &str) -> bool {
    let mut lines = block.trim_end_matches(['\n', '\r']).lines();
    let Some(open) = lines.next().map(str::trim_start) else { return false };
    let Some(mark) = open.chars().next() else { return false };
    let n = open.chars().take_while(|c| *c == mark).count();
    lines.next_back().is_some_and(|last| {
        let last = last.trim();
        last.len() >= n && last.chars().all(|c| c == mark)
    })
}

/// Escapes text for an attribute value or element content.
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    crate::highlight::escape(s, &mut out);
    out
}

/// The URL a link may keep: `http`, `https` or `mailto`, an in-page `#anchor`, or a plain
/// relative path under `base`. Anything else (`javascript:`, `data:`, `vbscript:`, a path
/// climbing out with `..`) is `None` and the link becomes its text.
fn safe_url(url: &str, base: Option<&str>) -> Option<String> {
    let url = url.trim();
    if let Some(colon) = url.find(':')
        && !url[..colon].contains(['/', '?', '#'])
    {
        // Browsers ignore tabs, newlines and other controls inside a scheme.
        let scheme: String = url[..colon]
            .chars()
            .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
            .collect::<String>()
            .to_ascii_lowercase();
        return matches!(scheme.as_str(), "http" | "https" | "mailto").then(|| url.to_owned());
    }
    if url.starts_with('#') {
        return Some(url.to_owned());
    }
    let base = base?;
    let path = url.trim_start_matches("./");
    // Only plain paths inside the base (`//host` would leave the site); the route checks again.
    if path.is_empty() || path.starts_with('/') || path.contains('\\') || path.split('/').any(|p| p == "..") {
        return None;
    }
    Some(format!("{base}{path}"))
}

/// Where the settled part of a growing text ends: after its last blank line outside a
/// fenced code block. While an answer streams, the page renders the settled part once and
/// re-renders only the rest on each token.
pub fn settled_len(src: &str) -> usize {
    let mut fence: Option<(char, usize)> = None;
    let mut settled = 0;
    let mut pos = 0;
    let mut prev_blank = false;
    for line in src.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        if !line.ends_with('\n') {
            break; // the last line is still being written
        }
        let trimmed = line.trim_start_matches(' ');
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        if let Some(m) = marker {
            let n = trimmed.chars().take_while(|c| *c == m).count();
            if n >= 3 {
                match fence {
                    None => fence = Some((m, n)),
                    Some((fm, fnum)) if fm == m && n >= fnum && trimmed.trim_end().len() == n => fence = None,
                    _ => {}
                }
            }
        }
        let blank = line.trim().is_empty();
        if blank && fence.is_none() && !prev_blank && start > 0 {
            settled = pos;
        }
        prev_blank = blank;
    }
    settled
}

#[cfg(test)]
mod tests {
    use super::{render, settled_len};

    const BAD: [&str; 7] = ["<script", "<img", "<svg", "<iframe", "<a href=\"javascript", "<a href=\"data", "<b "];

    fn assert_inert(html: &str) {
        for bad in BAD {
            assert!(!html.to_lowercase().contains(bad), "{bad} in {html}");
        }
    }

    #[test]
    fn scripts_handlers_and_javascript_links_are_removed() {
        let html = render(
            "---\nname: x\n---\n# Hi\n<script>alert(1)</script>\n[a](javascript:alert(1)) <b onclick=\"x()\">b</b>\n\n<img src=x onerror=alert(1)>",
            None,
        );
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        assert!(!html.contains("name: x"), "{html}");
        assert_inert(&html);
        // Raw HTML is shown as the text it is.
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    }

    #[test]
    fn every_way_to_smuggle_a_script_is_inert() {
        for src in [
            "<svg onload=alert(1)><circle/></svg>",
            "[x](JaVaScRiPt:alert(1))",
            "[x](<java\tscript:alert(1)>)",
            "[x](javascript&#58;alert(1))",
            "<javascript:alert(1)>",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "[x](vbscript:msgbox)",
            "![x](javascript:alert(1))",
            "![x](https://evil.example/pixel.png)",
            "<iframe src=\"https://evil.example\"></iframe>",
            "[x][r]\n\n[r]: javascript:alert(1)",
            "<a href=\"javascript:alert(1)\">x</a>",
            "`<img src=x onerror=alert(1)>`",
            "```html\n<script>alert(1)</script>\n```",
            "[a\"onmouseover=\"alert(1)](https://example.com/\"onmouseover=\"alert(1))",
        ] {
            let html = render(src, None);
            assert_inert(&html);
            assert!(!html.contains("/\"onmouseover"), "{html}");
        }
    }

    #[test]
    fn links_keep_safe_schemes_and_open_apart() {
        let html = render("[web](https://example.com \"T\") [m](mailto:a@example.com) [in](#part)", None);
        assert!(
            html.contains(
                "<a href=\"https://example.com\" title=\"T\" target=\"_blank\" rel=\"noopener noreferrer nofollow\">web</a>"
            ),
            "{html}"
        );
        assert!(html.contains("href=\"mailto:a@example.com\""), "{html}");
        assert!(html.contains("href=\"#part\""), "{html}");
    }

    #[test]
    fn relative_links_point_into_the_skill() {
        let html = render(
            "[ref](references/REF.md) [up](../x) [abs](//evil.example/x) [web](https://example.com)",
            Some("/skills/1/files/"),
        );
        assert!(html.contains("href=\"/skills/1/files/references/REF.md\""), "{html}");
        assert!(!html.contains("../x\"") && !html.contains("evil.example"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
        // Without a base, relative links are text.
        assert!(!render("[ref](references/REF.md)", None).contains("<a "));
    }

    #[test]
    fn code_blocks_carry_their_language_and_a_copy_button() {
        let html = render("```rust\nfn main() { let x = 1 < 2; }\n```\n", None);
        assert!(html.contains("<span class=\"code-lang\">rust</span>"), "{html}");
        assert!(html.contains("<button type=\"button\" class=\"code-copy\">Copy</button>"), "{html}");
        assert!(
            html.contains(
                "<code class=\"language-rust\"><span class=\"tok-k\">fn</span> main() { <span class=\"tok-k\">let</span> \
                 x = <span class=\"tok-n\">1</span> &lt; <span class=\"tok-n\">2</span>; }\n</code></pre></div>"
            ),
            "{html}"
        );
        let odd = render("```\"><script>\nx\n```\n", None);
        assert_inert(&odd);
    }

    #[test]
    fn a_code_block_is_highlighted_once_it_is_closed() {
        let closed = render("```rust\nlet x = 1;\n```\n", None);
        assert!(closed.contains("<span class=\"tok-k\">let</span> x = <span class=\"tok-n\">1</span>;"), "{closed}");
        let open = render("```rust\nlet x = 1;\n", None);
        assert!(open.contains("<code class=\"language-rust\">let x = 1;\n</code>"), "{open}");
        let unknown = render("```cobol\nMOVE A TO B.\n```\n", None);
        assert!(unknown.contains(">MOVE A TO B.\n</code>"), "{unknown}");
        // A fence inside the code does not close it early.
        let nested = render("````md\n```\ninner\n```\n````\n", None);
        assert!(nested.contains("```\ninner\n```"), "{nested}");
    }

    #[test]
    fn tables_and_task_lists_render() {
        let html = render("| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n- [ ] todo\n", None);
        assert!(html.contains("<table>") && html.contains("<td>1</td>"), "{html}");
        assert!(html.contains("<input disabled=\"\" type=\"checkbox\" checked=\"\"/>"), "{html}");
    }

    #[test]
    fn the_settled_part_ends_at_a_blank_line_outside_code() {
        assert_eq!(settled_len("one\n\ntwo"), 5);
        assert_eq!(settled_len("one\n\ntwo\n\nthr"), 10);
        // Inside an open fence a blank line settles nothing.
        let src = "a\n\n```\nx\n\ny";
        assert_eq!(settled_len(src), 3);
        let closed = "a\n\n```\nx\n\n```\n\nb";
        assert_eq!(settled_len(closed), closed.len() - 1);
        assert_eq!(settled_len("no blank line yet"), 0);
        // Rendering the two parts apart equals rendering the whole.
        let text = "# T\n\nsome *text*\n\n- a\n- b\n\nmore";
        let n = settled_len(text);
        assert_eq!(format!("{}{}", render(&text[..n], None), render(&text[n..], None)), render(text, None));
    }
}
