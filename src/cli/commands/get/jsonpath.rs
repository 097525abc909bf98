//! kubectl's JSONPath templates, as `-o jsonpath=`, `-o custom-columns=`
//! and `--sort-by` read them: literal text with `{…}` actions — a path
//! (`{.items[*].metadata.name}`), a quoted literal (`{"\n"}`), or
//! `{range PATH}` … `{end}`. Paths are written as kubectl writes them
//! (`.metadata.name`, `..name`, `[*]`, `[0]`, `[1:3]`, `[?(@.a=="x")]`,
//! `['a.b']`, `\.` for a dot inside a key, `-` and `/` inside keys), are
//! translated to RFC 9535 and evaluated by jsonpath-rust (no path engine of
//! our own).
//!
//! Output follows kubectl: a string prints as itself, any other value as
//! compact JSON, several results of one path are joined by a space, and a
//! missing field or `null` prints nothing. Text from the data is made
//! inert for the terminal (control characters become `�`, line breaks a
//! space); the template's own text and literals print as written.

use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

use crate::domain::sanitize::inert;

/// The most characters one value prints (a reason is at most 1,024).
const VALUE_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed action in template (a `{{` without its `}}`): {0}")]
    Unclosed(String),
    #[error("`{{end}}` without `{{range …}}`")]
    EndWithoutRange,
    #[error("`{{range {0}}}` without `{{end}}`")]
    RangeWithoutEnd(String),
    #[error("'{path}' is not a JSONPath expression: {why}")]
    Path { path: String, why: String },
}

/// One path, as kubectl wrote it and as RFC 9535 evaluates it.
#[derive(Debug, Clone)]
pub struct Path {
    pub source: String,
    query: JpQuery,
}

impl PartialEq for Path {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Path {
    /// A kubectl path; also "relaxed" as custom-columns and --sort-by take
    /// it: `{.a.b}`, `.a.b` or `a.b`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let t = text.trim();
        let inner = t
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .unwrap_or(t);
        let rfc = to_rfc9535(inner).map_err(|why| TemplateError::Path {
            path: text.into(),
            why,
        })?;
        let query = parse_json_path(&rfc).map_err(|e| TemplateError::Path {
            path: text.into(),
            why: first_line(&e.to_string()),
        })?;
        Ok(Self {
            source: text.trim().to_string(),
            query,
        })
    }

    /// Every value the path finds (`null`s left out: kubectl's missing).
    pub fn eval<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        js_path_process(&self.query, value)
            .map(|found| {
                found
                    .into_iter()
                    .map(|r| r.val())
                    .filter(|v| !v.is_null())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value as kubectl prints it, made inert.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => inert(s, VALUE_MAX).into_owned(),
        Value::Null => String::new(),
        other => inert(&other.to_string(), VALUE_MAX).into_owned(),
    }
}

/// kubectl's path syntax as RFC 9535: every key in bracket notation (so
/// `-`, `/` and escaped dots survive), brackets passed through.
fn to_rfc9535(expr: &str) -> Result<String, String> {
    let chars: Vec<char> = expr.trim().chars().collect();
    let mut out = String::from("$");
    let mut i = 0;
    if matches!(chars.first(), Some('$' | '@')) {
        i = 1;
    }
    while i < chars.len() {
        match chars[i] {
            '.' if chars.get(i + 1) == Some(&'.') => {
                i += 2;
                out.push_str("..");
                if chars.get(i) == Some(&'[') {
                    let (inner, next) = bracket(&chars, i)?;
                    out.push_str(&format!("[{inner}]"));
                    i = next;
                } else {
                    let (key, next) = key(&chars, i);
                    match key.as_str() {
                        "" => return Err("`..` must be followed by a key".into()),
                        "*" => out.push('*'),
                        k => out.push_str(&quoted(k)),
                    }
                    i = next;
                }
            }
            '.' => {
                let (key, next) = key(&chars, i + 1);
                match key.as_str() {
                    "" => {}
                    "*" => out.push_str("[*]"),
                    k => out.push_str(&quoted(k)),
                }
                i = next;
            }
            '[' => {
                let (inner, next) = bracket(&chars, i)?;
                out.push_str(&format!("[{inner}]"));
                i = next;
            }
            c if c.is_whitespace() => {
                return Err("a path has no spaces (quote text as {\"text\"})".into())
            }
            _ => {
                // A leading key without its dot (relaxed: `metadata.name`).
                let (key, next) = key(&chars, i);
                out.push_str(&quoted(&key));
                i = next;
            }
        }
    }
    Ok(out)
}

/// A key up to the next unescaped `.` or `[`; `\x` is `x`.
fn key(chars: &[char], mut i: usize) -> (String, usize) {
    let mut k = String::new();
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                k.push(chars[i + 1]);
                i += 2;
            }
            '.' | '[' => break,
            c => {
                k.push(c);
                i += 1;
            }
        }
    }
    (k, i)
}

fn quoted(key: &str) -> String {
    format!("['{}']", key.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The inside of the bracket opening at `i` (quotes and nesting
/// respected), and the index after its `]`.
fn bracket(chars: &[char], i: usize) -> Result<(String, usize), String> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut j = i;
    while j < chars.len() {
        let c = chars[j];
        match quote {
            Some(_) if c == '\\' => j += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok((chars[i + 1..j].iter().collect(), j + 1));
                    }
                }
                _ => {}
            },
        }
        j += 1;
    }
    Err("a `[` without its `]`".into())
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(Path),
    Range(Path, Vec<Node>),
}

/// A parsed `-o jsonpath=` template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        // Frames of open ranges: (path, nodes so far); the bottom one is
        // the template itself.
        let mut stack: Vec<(Option<Path>, Vec<Node>)> = vec![(None, Vec::new())];
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        let mut literal = String::new();
        while i < chars.len() {
            if chars[i] != '{' {
                literal.push(chars[i]);
                i += 1;
                continue;
            }
            let end = action_end(&chars, i)
                .ok_or_else(|| TemplateError::Unclosed(chars[i..].iter().collect()))?;
            let action: String = chars[i + 1..end].iter().collect();
            i = end + 1;
            let top = &mut stack.last_mut().expect("the template frame").1;
            if !literal.is_empty() {
                top.push(Node::Text(std::mem::take(&mut literal)));
            }
            let action = action.trim();
            if let Some(text) = unquote(action) {
                top.push(Node::Text(text));
            } else if action == "end" {
                if stack.len() == 1 {
                    return Err(TemplateError::EndWithoutRange);
                }
                let (path, nodes) = stack.pop().expect("an open range");
                let path = path.expect("a range frame has its path");
                stack
                    .last_mut()
                    .expect("the template frame")
                    .1
                    .push(Node::Range(path, nodes));
            } else if let Some(path) = action.strip_prefix("range ") {
                stack.push((Some(Path::parse(path.trim())?), Vec::new()));
            } else {
                top.push(Node::Path(Path::parse(action)?));
            }
        }
        if !literal.is_empty() {
            stack
                .last_mut()
                .expect("the template frame")
                .1
                .push(Node::Text(literal));
        }
        if stack.len() > 1 {
            let (path, _) = stack.pop().expect("an open range");
            return Err(TemplateError::RangeWithoutEnd(
                path.map(|p| p.source).unwrap_or_default(),
            ));
        }
        Ok(Self {
            nodes: stack.pop().map(|(_, n)| n).unwrap_or_default(),
        })
    }

    /// The template applied to `value`.
    pub fn render(&self, value: &Value) -> String {
        let mut out = String::new();
        render(&self.nodes, value, &mut out);
        out
    }
}

fn render(nodes: &[Node], value: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Path(p) => {
                let shown: Vec<String> = p.eval(value).into_iter().map(show).collect();
                out.push_str(&shown.join(" "));
            }
            Node::Range(p, body) => {
                for item in p.eval(value) {
                    // `range` over one array walks its elements.
                    match item {
                        Value::Array(items) => {
                            for v in items {
                                render(body, v, out)
                            }
                        }
                        v => render(body, v, out),
                    }
                }
            }
        }
    }
}

/// Where the action opening at `i` closes (quotes respected).
fn action_end(chars: &[char], i: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut j = i + 1;
    while j < chars.len() {
        let c = chars[j];
        match quote {
            Some(_) if c == '\\' => j += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '}' => return Some(j),
            None => {}
        }
        j += 1;
    }
    None
}

/// `"text"` or `'text'` with `\n`, `\t`, `\r`, `\\` and the quote escaped.
fn unquote(action: &str) -> Option<String> {
    let q = action.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = action.strip_prefix(q)?.strip_suffix(q)?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list() -> Value {
        json!({"kind": "List", "items": [
            {"metadata": {"name": "a", "annotations": {"kubernetes.io/change-cause": "x", "app-name": "y"}},
             "spec": {"namespaces": ["payments", "orders"], "duration": "30m"}, "status": {"phase": "Pending", "decision": null}},
            {"metadata": {"name": "b"}, "spec": {"namespaces": [], "duration": "1h"}, "status": {"phase": "Active", "decision": {"by": "bob"}}}
        ]})
    }

    fn render(t: &str) -> String {
        Template::parse(t).unwrap().render(&list())
    }

    #[test]
    fn kubectl_templates() {
        assert_eq!(render("{.items[*].metadata.name}"), "a b");
        assert_eq!(render("{.items[0].metadata.name}"), "a");
        assert_eq!(render("{.items[-1:].metadata.name}"), "b");
        assert_eq!(
            render(r#"{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}"#),
            "a\tPending\nb\tActive\n"
        );
        assert_eq!(
            render(r#"{.items[?(@.status.phase=="Active")].metadata.name}"#),
            "b"
        );
        assert_eq!(render("names: {.items[*].metadata.name}!"), "names: a b!");
        assert_eq!(render("{..phase}"), "Pending Active");
        assert_eq!(
            render("{.items[0].spec.namespaces}"),
            r#"["payments","orders"]"#
        );
        assert_eq!(
            render(r"{.items[0].metadata.annotations.kubernetes\.io/change-cause}"),
            "x"
        );
        assert_eq!(render("{.items[0].metadata.annotations.app-name}"), "y");
        assert_eq!(
            render("{.items[0].metadata['annotations']['app-name']}"),
            "y"
        );
        // Missing and null print nothing, as kubectl's default.
        assert_eq!(render("[{.items[0].status.decision.by}]"), "[]");
        assert_eq!(render("[{.items[0].nothing}]"), "[]");
        assert_eq!(render("{.kind}"), "List");
        // A range over a field that holds an array walks it.
        assert_eq!(
            render(r#"{range .items[0].spec.namespaces}{@}{","}{end}"#),
            "payments,orders,"
        );
        assert_eq!(render("{range .items[*]}[{.metadata.name}]{end}"), "[a][b]");
        assert_eq!(render(r#"{'x}y'}"#), "x}y");
    }

    #[test]
    fn data_is_inert_template_text_is_not() {
        let v = json!({"reason": "ok\u{1b}]52;c;x\u{7}\nnext"});
        let out = Template::parse(r#"{.reason}{"\n"}"#).unwrap().render(&v);
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'));
        assert!(out.ends_with("next\n"), "{out:?}");
        assert_eq!(out.matches('\n').count(), 1);
    }

    #[test]
    fn bad_templates_say_why() {
        assert_eq!(
            Template::parse("{.a").unwrap_err(),
            TemplateError::Unclosed("{.a".into())
        );
        assert_eq!(
            Template::parse("{end}").unwrap_err(),
            TemplateError::EndWithoutRange
        );
        assert!(matches!(
            Template::parse("{range .items[*]}{.a}").unwrap_err(),
            TemplateError::RangeWithoutEnd(p) if p == ".items[*]"
        ));
        assert!(matches!(
            Template::parse("{.items[?(@.a==)]}").unwrap_err(),
            TemplateError::Path { .. }
        ));
        assert!(matches!(
            Template::parse("{.items[0}").unwrap_err(),
            TemplateError::Path { .. }
        ));
    }

    #[test]
    fn relaxed_paths() {
        let v = list();
        for p in ["{.kind}", ".kind", "kind", "$.kind"] {
            assert_eq!(Path::parse(p).unwrap().eval(&v), [&json!("List")], "{p}");
        }
    }
}
