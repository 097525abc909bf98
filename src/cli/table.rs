//! The one table printer of the command line (`get`, `diff`, `audit
//! show`): kubectl's layout — cells left-aligned, columns a fixed gap
//! apart, no trailing spaces — with every cell measured in one place by
//! the cells it takes on a terminal (a wide character takes two), so rows
//! line up whatever the text.

use unicode_width::UnicodeWidthStr;

/// Column widths, grown by the rows laid out so far: rows printed later
/// (`get -w`) keep the columns the first ones set.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    gap: usize,
    widths: Vec<usize>,
}

impl Table {
    /// Columns `gap` spaces apart.
    pub(crate) fn new(gap: usize) -> Self {
        Self {
            gap,
            widths: Vec::new(),
        }
    }

    /// Starts each column at least this wide.
    pub(crate) fn at_least(mut self, widths: Vec<usize>) -> Self {
        self.widths = widths;
        self
    }

    /// Widens the columns to fit `row`.
    pub(crate) fn grow<S: AsRef<str>>(&mut self, row: &[S]) {
        if self.widths.len() < row.len() {
            self.widths.resize(row.len(), 0);
        }
        for (w, cell) in self.widths.iter_mut().zip(row) {
            *w = (*w).max(cell.as_ref().width());
        }
    }

    /// One row, each cell padded to its column (the last is not).
    pub(crate) fn line<S: AsRef<str>>(&self, row: &[S]) -> String {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let cell = cell.as_ref();
            line.push_str(cell);
            if i + 1 < row.len() {
                let w = self.widths.get(i).copied().unwrap_or(0);
                line.push_str(&" ".repeat(w.saturating_sub(cell.width()) + self.gap));
            }
        }
        let end = line.trim_end().len();
        line.truncate(end);
        line.push('\n');
        line
    }

    /// Every row (the header first, if any), aligned.
    pub(crate) fn layout<S: AsRef<str>>(&mut self, rows: &[Vec<S>]) -> String {
        for r in rows {
            self.grow(r);
        }
        rows.iter().map(|r| self.line(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_take_two_cells_and_rows_still_line_up() {
        let rows = vec![
            vec!["NAME", "WHO", "WHY"],
            vec!["a", "日本", "x"],
            vec!["bbb", "al", "y"],
        ];
        let out = Table::new(3).layout(&rows);
        assert_eq!(out, "NAME   WHO    WHY\na      日本   x\nbbb    al     y\n");
    }

    #[test]
    fn the_last_column_is_never_padded_and_empty_ends_are_trimmed() {
        let mut t = Table::new(2).at_least(vec![4, 4]);
        assert_eq!(t.line(&["a", "", ""]), "a\n");
        t.grow(&["abcdef", "b"]);
        assert_eq!(
            t.line(&["x", "y", "long last"]),
            "x       y     long last\n"
        );
    }
}
