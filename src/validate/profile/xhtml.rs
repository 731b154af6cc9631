//! A narrative's XHTML (`Narrative.div`, type `xhtml`) by the rules FHIR states for it (R4
//! `txt-1`, "the narrative SHALL contain only the basic html formatting elements and attributes",
//! as the HL7 validator checks it): well-formed XML with no document type declaration, a `div`
//! root in the XHTML namespace, no element in another namespace, only the basic elements and
//! attributes (no scripts, no forms, no event handlers), no block inside a paragraph, and the
//! table, list and phrase structure HTML requires. Duplicate ids are a warning.
//!
//! Findings name elements and attributes (markup, which the rules are about), never text or an
//! attribute's value.

use std::collections::BTreeMap;

use roxmltree::{Document, Node, ParsingOptions};

use super::Severity;

const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The basic formatting elements (R4 Narrative: "no scripts, forms, base/link/xlink, frames,
/// iframes and objects").
const ELEMENTS: &[&str] = &[
    "p",
    "br",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "span",
    "b",
    "em",
    "i",
    "strong",
    "small",
    "big",
    "tt",
    "dfn",
    "q",
    "var",
    "abbr",
    "acronym",
    "cite",
    "blockquote",
    "hr",
    "address",
    "bdo",
    "kbd",
    "sub",
    "sup",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "pre",
    "table",
    "caption",
    "colgroup",
    "col",
    "thead",
    "tr",
    "tfoot",
    "tbody",
    "th",
    "td",
    "code",
    "samp",
    "img",
    "map",
    "area",
];

/// Attributes allowed on any element.
const ATTRIBUTES: &[&str] = &[
    "title",
    "style",
    "class",
    "id",
    "lang",
    "xml:lang",
    "dir",
    "accesskey",
    "tabindex",
    "span",
    "width",
    "align",
    "valign",
    "char",
    "charoff",
    "abbr",
    "axis",
    "headers",
    "scope",
    "rowspan",
    "colspan",
];

/// Attributes allowed on one element, as `element.attribute`.
const ELEMENT_ATTRIBUTES: &[&str] = &[
    "a.href",
    "a.name",
    "a.charset",
    "a.type",
    "a.hreflang",
    "a.rel",
    "a.rev",
    "a.shape",
    "a.coords",
    "img.src",
    "img.border",
    "img.alt",
    "img.longdesc",
    "img.height",
    "img.width",
    "img.usemap",
    "img.ismap",
    "div.xmlns",
    "blockquote.cite",
    "q.cite",
    "map.name",
    "area.shape",
    "area.coords",
    "area.href",
    "area.nohref",
    "area.alt",
    "table.summary",
    "table.width",
    "table.border",
    "table.frame",
    "table.rules",
    "table.cellspacing",
    "table.cellpadding",
    "pre.space",
    "td.nowrap",
];

/// Phrase elements: text-level, and none may nest inside itself.
const PHRASE: &[&str] = &[
    "a", "b", "em", "i", "strong", "small", "big", "sub", "sup", "code", "tt", "dfn", "q", "var", "abbr", "acronym", "cite", "bdo", "kbd",
    "samp",
];

/// Elements besides the phrase ones whose content is text (no blocks inside).
const PARAGRAPHS: &[&str] = &["p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "address", "span", "caption", "dd", "dt"];

/// Elements that may not appear inside a paragraph.
const BLOCKS_IN_PARA: &[&str] = &["div", "blockquote", "table", "ol", "ul", "p"];

/// A finding: severity, OperationOutcome issue code, text.
pub type Issue = (Severity, &'static str, String);

/// A markup name as findings show it: names are markup, but a name that is not a plain XML name
/// is not shown.
fn shown(name: &str) -> String {
    if name.len() <= 40 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.')) {
        format!("'{name}'")
    } else {
        "(a name that is not plain)".to_owned()
    }
}

/// The element's name as written: its local name in the XHTML namespace (or none), else with
/// the prefix that names its namespace.
fn element_name(n: Node<'_, '_>) -> String {
    let tag = n.tag_name();
    match tag.namespace() {
        None | Some(XHTML_NS) => tag.name().to_owned(),
        Some(ns) => match n.lookup_prefix(ns) {
            Some(p) if !p.is_empty() => format!("{p}:{}", tag.name()),
            _ => tag.name().to_owned(),
        },
    }
}

fn attribute_name(n: Node<'_, '_>, a: &roxmltree::Attribute<'_, '_>) -> String {
    match a.namespace() {
        None => a.name().to_owned(),
        Some(XML_NS) => format!("xml:{}", a.name()),
        Some(ns) => match n.lookup_prefix(ns) {
            Some(p) if !p.is_empty() => format!("{p}:{}", a.name()),
            _ => a.name().to_owned(),
        },
    }
}

/// A narrative's `lang` and `xml:lang`, as HL7's validator reads them for its language rules:
/// the root `div`'s, or, when it has neither and every child with content is a language `div`
/// (one with `xml:lang`), the first such child's. None when the XHTML does not parse.
pub fn lang_attributes(div: &str) -> Option<(Option<String>, Option<String>)> {
    let opts = ParsingOptions { allow_dtd: false, nodes_limit: u32::MAX };
    let doc = Document::parse_with_options(div, opts).ok()?;
    let langs = |n: Node<'_, '_>| (n.attribute("lang").map(str::to_owned), n.attribute((XML_NS, "lang")).map(str::to_owned));
    let root = doc.root_element();
    let (l, xl) = langs(root);
    if l.is_some() || xl.is_some() {
        return Some((l, xl));
    }
    let is_lang_div = |n: &Node<'_, '_>| n.is_element() && n.attribute((XML_NS, "lang")).is_some();
    let has_content = |n: &Node<'_, '_>| n.descendants().any(|d| d.is_text() && d.text().is_some_and(|t| !t.trim().is_empty()));
    let all_lang_divs = root.has_children() && root.children().all(|c| is_lang_div(&c) || !has_content(&c));
    match root.children().find(is_lang_div) {
        Some(first) if all_lang_divs => Some(langs(first)),
        _ => Some((None, None)),
    }
}

/// Checks one narrative `div`. Entities are checked with the primitive (`&reg;` and friends are
/// reported there), so a parse error here is about structure.
pub fn check(div: &str) -> Vec<Issue> {
    let mut out = Vec::new();
    let opts = ParsingOptions { allow_dtd: false, nodes_limit: u32::MAX };
    let doc = match Document::parse_with_options(div, opts) {
        Ok(d) => d,
        Err(roxmltree::Error::DtdDetected) => {
            out.push((
                Severity::Error,
                "invalid",
                "Malformed XHTML: a document type declaration is not allowed in a narrative (it opens XML entity attacks)".to_owned(),
            ));
            return out;
        }
        Err(e) => {
            // The error's position is about markup, not content.
            let pos = e.pos();
            out.push((
                Severity::Error,
                "invalid",
                format!("the narrative is not well-formed XHTML (line {}, column {})", pos.row, pos.col),
            ));
            return out;
        }
    };
    let root = doc.root_element();
    let root_ns = root.tag_name().namespace();
    if root_ns != Some(XHTML_NS) {
        out.push((
            Severity::Error,
            "invalid",
            format!(
                "Wrong namespace on the XHTML ({}, should be '{XHTML_NS}')",
                root_ns.map_or("none".to_owned(), shown)
            ),
        ));
    }
    if root.tag_name().name() != "div" {
        out.push((
            Severity::Error,
            "invalid",
            format!("Wrong name on the XHTML ({}) - must start with div", shown(&element_name(root))),
        ));
    }
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for n in root.descendants().filter(Node::is_element) {
        let name = element_name(n);
        if n == root {
            if let Some(id) = n.attribute("id") {
                *ids.entry(id.to_owned()).or_default() += 1;
            }
        } else {
            if let Some(ns) = n.tag_name().namespace().filter(|ns| *ns != XHTML_NS) {
                out.push((
                    Severity::Error,
                    "invalid",
                    format!("Wrong namespace on the XHTML ({}, should be '{XHTML_NS}')", shown(ns)),
                ));
            }
            if !ELEMENTS.contains(&name.as_str()) {
                out.push((Severity::Error, "invalid", format!("Invalid element name in the XHTML ({})", shown(&name))));
            }
            let in_para = n.ancestors().skip(1).take_while(|a| *a != root).any(|a| a.is_element() && a.tag_name().name() == "p");
            if in_para && BLOCKS_IN_PARA.contains(&name.as_str()) {
                out.push((
                    Severity::Error,
                    "invalid",
                    format!("Invalid element name inside a paragraph in the XHTML ({})", shown(&name)),
                ));
            }
        }
        if n == root {
            // The root's own attributes and structure are not the basic-formatting rules' concern
            // (the HL7 validator checks from its children down).
            continue;
        }
        for a in n.attributes() {
            let an = attribute_name(n, &a);
            let ok = ATTRIBUTES.contains(&an.as_str()) || ELEMENT_ATTRIBUTES.contains(&format!("{name}.{an}").as_str());
            if !ok && an != "xml:space" {
                out.push((
                    Severity::Error,
                    "invalid",
                    format!("Invalid attribute name in the XHTML ({} on {})", shown(&an), shown(&name)),
                ));
            }
        }
        if let Some(id) = n.attribute("id") {
            *ids.entry(id.to_owned()).or_default() += 1;
        }
        if name == "a" {
            if let Some(href) = n.attribute("href") {
                href_rules(href, &mut out);
            }
            if let Some(anchor) = n.attribute("name").filter(|a| Some(*a) != n.attribute("id")) {
                *ids.entry(anchor.to_owned()).or_default() += 1;
            }
        }
        structure(n, &name, &mut out);
    }
    let dups = ids.values().filter(|c| **c > 1).count();
    if dups > 0 {
        out.push((
            Severity::Warning,
            "business-rule",
            format!("the XHTML has more than one node with the same id ({dups} ids repeated); links to them are ambiguous"),
        ));
    }
    out
}

/// A hyperlink's target, as HL7's validator checks it: not empty, and when it is an absolute URL
/// (a lower-case scheme, then something without spaces) not active content (`javascript:`,
/// `vbscript:`) and a scheme a browser can follow (not `urn:` or `cid:`). The link itself is
/// not quoted.
fn href_rules(href: &str, out: &mut Vec<Issue>) {
    if href.is_empty() {
        out.push((Severity::Error, "invalid", "a hyperlink in the XHTML is empty".to_owned()));
        return;
    }
    let Some((scheme, rest)) = href.split_once(':') else { return };
    let token =
        !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'+'));
    if !token || rest.is_empty() || rest.contains(' ') {
        return;
    }
    if matches!(scheme, "javascript" | "vbscript") {
        out.push((
            Severity::Error,
            "invalid",
            format!("a hyperlink in the XHTML uses the scheme '{scheme}', which is active content (a security risk) and not allowed"),
        ));
    } else if matches!(scheme, "urn" | "cid") {
        out.push((
            Severity::Error,
            "invalid",
            format!("a hyperlink in the XHTML uses the scheme '{scheme}', which cannot be followed"),
        ));
    }
}

fn child_elements<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(Node::is_element)
}

/// HTML's content rules for the elements FHIR narratives use.
fn structure(n: Node<'_, '_>, name: &str, out: &mut Vec<Issue>) {
    let parent = n.parent_element().map(|p| p.tag_name().name().to_owned()).unwrap_or_default();
    let mut only = |allowed: &[&str]| {
        let text = n.children().any(|c| c.is_text() && c.text().is_some_and(|t| !t.trim().is_empty()));
        let bad: Vec<String> = child_elements(n).map(element_name).filter(|c| !allowed.contains(&c.as_str())).collect();
        if text || !bad.is_empty() {
            let mut list: Vec<String> = bad.iter().map(|b| shown(b)).collect();
            if text {
                list.insert(0, "text".to_owned());
            }
            out.push((
                Severity::Error,
                "structure",
                format!("Elements of type {} cannot have the following children: {}", shown(name), list.join(", ")),
            ));
        }
    };
    match name {
        "table" => only(&["tbody", "tr", "caption", "thead", "tfoot", "col", "colgroup"]),
        "tr" => only(&["td", "th"]),
        "tbody" | "thead" | "tfoot" => only(&["tr"]),
        "ul" | "ol" => only(&["li"]),
        "dl" => only(&["dd", "dt"]),
        "map" => only(&["area"]),
        _ => {}
    }
    let mut within = |allowed: &[&str]| {
        if !allowed.contains(&parent.as_str()) {
            out.push((
                Severity::Error,
                "structure",
                format!("Elements of type {} must be in a {}, not a {}", shown(name), allowed.join("|"), shown(&parent)),
            ));
        }
    };
    match name {
        "tr" => within(&["table", "thead", "tfoot", "tbody"]),
        "tbody" | "thead" | "tfoot" | "caption" | "colgroup" | "col" => within(&["table"]),
        "th" | "td" => within(&["tr", "thead", "tfoot"]),
        "li" => within(&["ul", "ol"]),
        "dd" | "dt" => within(&["dl"]),
        _ => {}
    }
    if matches!(name, "br" | "img" | "hr" | "area") && n.has_children() {
        out.push((Severity::Error, "structure", format!("Elements of type {} cannot have children", shown(name))));
    }
    let phrase = PHRASE.contains(&name);
    let paragraph_like = phrase || PARAGRAPHS.contains(&name);
    if paragraph_like {
        let blocks: Vec<String> = n
            .descendants()
            .skip(1)
            .filter(|d| d.is_element() && matches!(d.tag_name().name(), "div" | "pre" | "table" | "ul" | "ol"))
            .map(|d| shown(d.tag_name().name()))
            .collect();
        if !blocks.is_empty() {
            out.push((
                Severity::Error,
                "structure",
                format!("Found block structures inside a paragraph/text element {}: {}", shown(name), blocks.join(", ")),
            ));
        }
    }
    if phrase && n.descendants().skip(1).any(|d| d.is_element() && d.tag_name().name() == name) {
        out.push((Severity::Error, "structure", format!("Elements of type {0} cannot contain nested {0}", shown(name))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(div: &str) -> Vec<String> {
        check(div).into_iter().map(|(_, _, t)| t).collect()
    }

    #[test]
    fn basic_narratives_pass() {
        let ok = r##"<div xmlns="http://www.w3.org/1999/xhtml" xml:lang="en"><p>A <b>bold</b> <a href="#x">link</a></p>
            <table class="t"><thead><tr><th>a</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>
            <ul><li>one</li></ul><img src="data:image/png;base64,AA==" alt=""/><a name="x">x</a></div>"##;
        assert!(check(ok).is_empty(), "{:?}", check(ok));
    }

    #[test]
    fn scripts_events_and_namespaces_are_refused() {
        let t = codes(r#"<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script><p onclick="x()">a</p></div>"#);
        assert!(t.iter().any(|m| m.contains("Invalid element name in the XHTML ('script')")), "{t:?}");
        assert!(t.iter().any(|m| m.contains("'onclick' on 'p'")), "{t:?}");
        assert!(codes("<div>a</div>").iter().any(|m| m.contains("Wrong namespace")));
        assert!(codes(r#"<p xmlns="http://www.w3.org/1999/xhtml">a</p>"#).iter().any(|m| m.contains("must start with div")));
        let other = codes(r#"<div xmlns="http://www.w3.org/1999/xhtml"><x:b xmlns:x="urn:x">a</x:b></div>"#);
        assert!(other.iter().any(|m| m.contains("Wrong namespace")), "{other:?}");
    }

    #[test]
    fn hyperlinks() {
        let at = |href: &str| codes(&format!(r#"<div xmlns="http://www.w3.org/1999/xhtml"><a href="{href}">x</a></div>"#));
        assert!(at("javascript:alert(1)")[0].contains("active content"));
        assert!(at("urn:uuid:0b6f5fd7-4c1d-4e4e-9d56-0d2b9a1b7c11")[0].contains("cannot be followed"));
        assert!(at("")[0].contains("empty"));
        for ok in ["https://example.org/a", "mailto:a@example.org", "#x", "page.html"] {
            assert!(at(ok).is_empty(), "{ok}");
        }
    }

    #[test]
    fn structure_rules() {
        let t = codes(r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>a<div>b</div></p><table><td>x</td></table><li>z</li></div>"#);
        assert!(t.iter().any(|m| m.contains("inside a paragraph")), "{t:?}");
        assert!(t.iter().any(|m| m.contains("cannot have the following children: 'td'")), "{t:?}");
        assert!(t.iter().any(|m| m.contains("must be in a ul|ol")), "{t:?}");
        assert!(codes("<!DOCTYPE x><div xmlns=\"http://www.w3.org/1999/xhtml\"/>").iter().any(|m| m.contains("document type")));
        assert!(codes("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>a</div>").iter().any(|m| m.contains("well-formed")));
        let dup = check(r#"<div xmlns="http://www.w3.org/1999/xhtml"><p id="a">1</p><p id="a">2</p></div>"#);
        assert!(dup.len() == 1 && dup[0].0 == Severity::Warning, "{dup:?}");
    }
}
