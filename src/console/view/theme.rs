//! Themes from TOML: the built-in ones in `themes/*.toml` (compiled in) and
//! user themes in `$XDG_CONFIG_HOME/portcullis/themes/NAME.toml`.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use thiserror::Error;

pub const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../../themes/default.toml")),
    ("light", include_str!("../../../themes/light.toml")),
    ("mono", include_str!("../../../themes/mono.toml")),
];

#[derive(Debug, Error)]
pub enum ThemeError {
    #[error("theme '{0}' not found: built in are default, light, mono; user themes go in {1}")]
    NotFound(String, String),
    #[error("theme {0}: {1}")]
    Parse(String, String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underlined: bool,
    #[serde(default)]
    reversed: bool,
}

#[derive(Debug, Deserialize)]
struct ThemeFile {
    name: String,
    #[serde(default)]
    styles: BTreeMap<String, StyleSpec>,
}

macro_rules! theme_struct {
    ($($field:ident),* $(,)?) => {
        /// Named styles the UI uses; anything a file leaves out is plain.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Theme {
            pub name: String,
            $(pub $field: Style,)*
        }

        impl Theme {
            fn set(&mut self, key: &str, style: Style) -> bool {
                match key {
                    $(stringify!($field) => self.$field = style,)*
                    _ => return false,
                }
                true
            }
        }
    };
}

theme_struct!(
    base,
    header,
    header_key,
    tab_active,
    tab_inactive,
    border,
    border_focus,
    border_prod,
    badge_prod,
    title,
    column_header,
    selected,
    marked,
    label,
    value,
    dim,
    critical,
    high,
    medium,
    info,
    expiring,
    ok,
    error,
    success,
    notice,
    key,
    dialog,
    dialog_border,
    invalid,
);

fn color(text: &str, origin: &str) -> Result<Color, ThemeError> {
    Color::from_str(text)
        .map_err(|_| ThemeError::Parse(origin.into(), format!("'{text}' is not a colour")))
}

impl Theme {
    pub fn parse(text: &str, origin: &str) -> Result<Self, ThemeError> {
        let file: ThemeFile = toml::from_str(text)
            .map_err(|e| ThemeError::Parse(origin.into(), e.message().to_string()))?;
        let mut theme = Theme {
            name: file.name,
            ..Default::default()
        };
        for (key, spec) in file.styles {
            let mut style = Style::default();
            if let Some(fg) = &spec.fg {
                style = style.fg(color(fg, origin)?);
            }
            if let Some(bg) = &spec.bg {
                style = style.bg(color(bg, origin)?);
            }
            for (on, m) in [
                (spec.bold, Modifier::BOLD),
                (spec.dim, Modifier::DIM),
                (spec.italic, Modifier::ITALIC),
                (spec.underlined, Modifier::UNDERLINED),
                (spec.reversed, Modifier::REVERSED),
            ] {
                if on {
                    style = style.add_modifier(m);
                }
            }
            if !theme.set(&key, style) {
                return Err(ThemeError::Parse(
                    origin.into(),
                    format!("unknown style '{key}'"),
                ));
            }
        }
        Ok(theme)
    }

    /// A built-in theme by name.
    pub fn built_in(name: &str) -> Option<Self> {
        BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(n, text)| Theme::parse(text, &format!("themes/{n}.toml")).ok())
    }

    /// A built-in theme, or `user_dir/NAME.toml`.
    pub fn load(name: &str, user_dir: Option<&Path>) -> Result<Self, ThemeError> {
        if let Some(dir) = user_dir {
            let path = dir.join(format!("{name}.toml"));
            if let Ok(text) = std::fs::read_to_string(&path) {
                return Theme::parse(&text, &path.display().to_string());
            }
        }
        Theme::built_in(name).ok_or_else(|| {
            ThemeError::NotFound(
                name.into(),
                user_dir.map_or_else(
                    || "$XDG_CONFIG_HOME/portcullis/themes/".into(),
                    |d| d.display().to_string(),
                ),
            )
        })
    }

    pub fn mono() -> Self {
        Theme::built_in("mono").unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_themes_parse_and_define_every_style() {
        for (name, text) in BUILT_IN {
            let t = Theme::parse(text, name).unwrap();
            assert_eq!(t.name, *name);
            assert_ne!(
                t.selected,
                Style::default(),
                "{name}: selection must be visible"
            );
            assert_ne!(t.critical, Style::default(), "{name}");
        }
    }

    #[test]
    fn mono_uses_no_colour() {
        let m = Theme::mono();
        for s in [
            m.selected,
            m.critical,
            m.high,
            m.header,
            m.border_prod,
            m.error,
        ] {
            assert!(s.fg.is_none() && s.bg.is_none(), "{s:?}");
        }
        assert!(m.selected.add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn default_uses_only_ansi_16() {
        let d = Theme::built_in("default").unwrap();
        let ok = |c: Option<Color>| !matches!(c, Some(Color::Rgb(..)) | Some(Color::Indexed(_)));
        for s in [
            d.base,
            d.header,
            d.selected,
            d.critical,
            d.high,
            d.medium,
            d.info,
            d.border_prod,
        ] {
            assert!(ok(s.fg) && ok(s.bg), "{s:?}");
        }
    }

    #[test]
    fn errors_are_clear() {
        let e = Theme::parse("name = 'x'\n[styles]\nbogus = {}\n", "x.toml").unwrap_err();
        assert_eq!(e.to_string(), "theme x.toml: unknown style 'bogus'");
        let e = Theme::parse(
            "name = 'x'\n[styles]\nbase = { fg = 'ultraviolet' }\n",
            "x.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("'ultraviolet' is not a colour"));
        assert!(matches!(
            Theme::load("nope", None),
            Err(ThemeError::NotFound(..))
        ));
    }
}
