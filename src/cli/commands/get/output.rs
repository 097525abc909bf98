//! `-o`: the output formats of `portcullis get`, with kubectl's names and
//! syntax.

use super::jsonpath::{Path, Template, TemplateError};

/// One column of `-o custom-columns`.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub header: String,
    pub path: Path,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The default table.
    Table,
    /// The table with more columns (ticket, approver, reason).
    Wide,
    /// `accessrequest.portcullis.dev/NAME`, one a line.
    Name,
    Json,
    Yaml,
    JsonPath(Template),
    CustomColumns(Vec<Column>),
}

const FORMATS: &str = "table, wide, name, json, yaml, jsonpath=TEMPLATE, jsonpath-file=FILE, custom-columns=SPEC, custom-columns-file=FILE";

impl Output {
    /// Parses `-o`'s value as kubectl does (`-o jsonpath='{.items[*].metadata.name}'`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, arg) = match text.split_once('=') {
            Some((k, a)) => (k, Some(a)),
            None => (text, None),
        };
        let read = |file: &str| {
            std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))
        };
        let template = |t: &str| {
            Template::parse(t)
                .map(Output::JsonPath)
                .map_err(|e| e.to_string())
        };
        match (kind, arg) {
            ("table", None) => Ok(Self::Table),
            ("wide", None) => Ok(Self::Wide),
            ("name", None) => Ok(Self::Name),
            ("json", None) => Ok(Self::Json),
            ("yaml", None) => Ok(Self::Yaml),
            ("jsonpath", Some(t)) => template(t),
            ("jsonpath-file", Some(f)) => template(&read(f)?),
            ("custom-columns", Some(spec)) => columns(spec).map(Self::CustomColumns),
            ("custom-columns-file", Some(f)) => columns_file(&read(f)?).map(Self::CustomColumns),
            ("jsonpath" | "jsonpath-file" | "custom-columns" | "custom-columns-file", None) => {
                Err(format!(
                    "-o {kind} needs a value, e.g. -o jsonpath='{{.items[*].metadata.name}}' or -o custom-columns=NAME:.metadata.name"
                ))
            }
            _ => Err(format!("unknown output format '{text}' (one of: {FORMATS})")),
        }
    }

    /// Whether this is one of the tables (header and aligned rows).
    pub fn is_table(&self) -> bool {
        matches!(self, Self::Table | Self::Wide | Self::CustomColumns(_))
    }
}

/// `NAME:.metadata.name,PHASE:.status.phase` (commas inside brackets or
/// quotes belong to the path).
fn columns(spec: &str) -> Result<Vec<Column>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    for (i, c) in spec.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&spec[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&spec[start..]);
    let mut out = Vec::new();
    for part in parts {
        let Some((header, path)) = part.split_once(':') else {
            return Err(format!(
                "custom-columns: '{part}' is not HEADER:JSONPATH (e.g. NAME:.metadata.name)"
            ));
        };
        if header.trim().is_empty() || path.trim().is_empty() {
            return Err(format!(
                "custom-columns: '{part}' is not HEADER:JSONPATH (e.g. NAME:.metadata.name)"
            ));
        }
        out.push(Column {
            header: header.trim().to_string(),
            path: Path::parse(path).map_err(|e: TemplateError| format!("custom-columns: {e}"))?,
        });
    }
    Ok(out)
}

/// kubectl's custom-columns file: a line of headers over a line of paths.
fn columns_file(text: &str) -> Result<Vec<Column>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let (Some(headers), Some(paths)) = (lines.next(), lines.next()) else {
        return Err("custom-columns-file: needs a line of headers and a line of paths".into());
    };
    let headers: Vec<&str> = headers.split_whitespace().collect();
    let paths: Vec<&str> = paths.split_whitespace().collect();
    if headers.len() != paths.len() {
        return Err(format!(
            "custom-columns-file: {} headers but {} paths",
            headers.len(),
            paths.len()
        ));
    }
    let spec: Vec<String> = headers
        .iter()
        .zip(&paths)
        .map(|(h, p)| format!("{h}:{p}"))
        .collect();
    columns(&spec.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_spellings() {
        assert_eq!(Output::parse("name").unwrap(), Output::Name);
        assert_eq!(Output::parse("wide").unwrap(), Output::Wide);
        assert!(matches!(
            Output::parse("jsonpath={.items[*].metadata.name}").unwrap(),
            Output::JsonPath(_)
        ));
        let Output::CustomColumns(c) = Output::parse(
            "NAME:.metadata.name,NS:{.spec.namespaces['a','b']}"
                .replace("NAME", "custom-columns=NAME")
                .as_str(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].header, "NS");
    }

    #[test]
    fn mistakes_are_named() {
        let e = Output::parse("jsn").unwrap_err();
        assert!(
            e.contains("unknown output format 'jsn'") && e.contains("jsonpath="),
            "{e}"
        );
        assert!(Output::parse("jsonpath")
            .unwrap_err()
            .contains("needs a value"));
        assert!(Output::parse("custom-columns=NAME")
            .unwrap_err()
            .contains("HEADER:JSONPATH"));
        assert!(Output::parse("jsonpath={.a")
            .unwrap_err()
            .contains("unclosed"));
        assert!(Output::parse("custom-columns-file=/nonexistent/x")
            .unwrap_err()
            .contains("cannot read"));
    }
}
