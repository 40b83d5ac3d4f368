//! Markdown to safe HTML: pulldown-cmark, then ammonia. No script, event attribute,
//! `javascript:` link or raw HTML from the source survives; links open without an opener.
//! The same function runs on the server and in the browser, so both render alike.

use pulldown_cmark::{Options, Parser, html};

/// Renders `src` (front matter, if any, is left out). Relative links and images point
/// under `base` (`/skills/<id>/files/`); `None` drops them.
pub fn render(src: &str, base: Option<&str>) -> String {
    let opts = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut raw = String::with_capacity(src.len() * 3 / 2);
    html::push_html(&mut raw, Parser::new_ext(src, opts));
    let mut b = ammonia::Builder::default();
    b.url_schemes(["http", "https", "mailto"].into()).link_rel(Some("noopener noreferrer nofollow"));
    // Images from elsewhere would tell a third party who reads what: only the skill's own.
    b.rm_tags(["img"]);
    match base {
        Some(base) => {
            b.url_relative(ammonia::UrlRelative::Custom(Box::new(Under(base.to_owned()))));
        }
        None => {
            b.url_relative(ammonia::UrlRelative::Deny);
        }
    }
    b.clean(&raw).to_string()
}

struct Under(String);

impl<'a> ammonia::UrlRelativeEvaluate<'a> for Under {
    fn evaluate<'u>(&self, url: &'u str) -> Option<std::borrow::Cow<'u, str>> {
        if url.starts_with('#') {
            return Some(url.into());
        }
        let path = url.trim_start_matches("./");
        // Only plain paths inside the skill; the file route checks again.
        if path.starts_with('/') || path.split('/').any(|p| p == "..") {
            return None;
        }
        Some(format!("{}{path}", self.0).into())
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn scripts_handlers_and_javascript_links_are_removed() {
        let html = render(
            "---\nname: x\n---\n# Hi\n<script>alert(1)</script>\n[a](javascript:alert(1)) <b onclick=\"x()\">b</b>\n\n<img src=x onerror=alert(1)>",
            None,
        );
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        for bad in ["<script", "javascript:", "onclick", "onerror", "<img", "name: x"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }

    #[test]
    fn relative_links_point_into_the_skill() {
        let html = render("[ref](references/REF.md) [up](../x) [web](https://example.com)", Some("/skills/1/files/"));
        assert!(html.contains("href=\"/skills/1/files/references/REF.md\""), "{html}");
        assert!(!html.contains("../x\""), "{html}");
        assert!(html.contains("href=\"https://example.com\" rel=\"noopener noreferrer nofollow\""), "{html}");
    }
}
