//! Names a Kubernetes object can have, checked before a name from a caller
//! goes anywhere (a path, a cluster call, a log line).

/// An object name as apimachinery validates one (`IsDNS1123Subdomain`):
/// at most 253 characters of `a-z`, `0-9`, `-` and `.`, starting and ending
/// with a letter or digit. `Err` says why, quoting nothing of the name (it
/// may be anything: NUL, CRLF, `..`).
pub(crate) fn object_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a name is required".into());
    }
    if name.len() > 253 {
        return Err(format!("{} characters: at most 253", name.chars().count()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(
            "only lowercase letters, digits, '-' and '.' (a Kubernetes object name)".into(),
        );
    }
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !edge(name.bytes().next()) || !edge(name.bytes().last()) {
        return Err(
            "starts and ends with a lowercase letter or digit (a Kubernetes object name)".into(),
        );
    }
    if name
        .split('.')
        .any(|part| part.is_empty() || !edge(part.bytes().next()) || !edge(part.bytes().last()))
    {
        return Err("each '.'-separated part starts and ends with a letter or digit".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_as_kubernetes_has_them() {
        for ok in ["a", "alice-payments-x7k2q", "a.b-c", "0", &"a".repeat(253)] {
            assert_eq!(object_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".",
            "a..b",
            "-a",
            "a-",
            "A",
            "a\0b",
            "a\r\nb",
            "a/b",
            "a b",
            "é",
            &"a".repeat(254),
        ] {
            assert!(object_name(bad).is_err(), "{bad:?}");
        }
    }
}
