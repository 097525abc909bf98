//! Column widths that follow the content and the space: every column gets
//! what its widest visible cell needs when there is room; when there is
//! not, the least important columns go first, then the widest give way
//! down to a comfortable width (their text then ends in `…`). Columns of
//! priority 0 (who, and the risk) are never dropped.

#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub title: &'static str,
    /// Never narrower than this.
    pub min: u16,
    /// Never wider than this.
    pub max: u16,
    /// Shrinks to this before any column is dropped for it.
    pub soft: u16,
    /// Lower is kept longer; 0 is always kept.
    pub priority: u8,
    /// Shown whole or not at all: a number or a time cut short ("22…" of
    /// "22/369") would read as another number.
    pub whole: bool,
}

impl Column {
    /// This column is shown whole or dropped, never cut.
    pub(crate) const fn whole(mut self) -> Self {
        self.whole = true;
        self
    }
}

pub(crate) const fn col(
    title: &'static str,
    min: u16,
    soft: u16,
    max: u16,
    priority: u8,
) -> Column {
    Column {
        title,
        min,
        max,
        soft,
        priority,
        whole: false,
    }
}

/// The columns to show, in display order, each with its width, for cells
/// whose widest is `desired[i]`, in `avail` columns (one space between two).
pub(crate) fn fit(cols: &[Column], desired: &[u16], avail: u16) -> Vec<(usize, u16)> {
    let title_w = |c: &Column| c.title.chars().count() as u16;
    let want: Vec<u16> = cols
        .iter()
        .zip(desired)
        .map(|(c, d)| {
            (*d).max(title_w(c))
                .clamp(c.min.max(title_w(c)), c.max.max(title_w(c)))
        })
        .collect();
    let soft: Vec<u16> = cols
        .iter()
        .zip(&want)
        .map(|(c, w)| {
            if c.whole {
                *w
            } else {
                (*w).min(c.soft.max(c.min).max(title_w(c)))
            }
        })
        .collect();
    let gaps = |n: usize| n.saturating_sub(1) as u16;
    let mut kept: Vec<usize> = (0..cols.len()).collect();
    loop {
        let total: u16 = kept.iter().map(|i| soft[*i]).sum::<u16>() + gaps(kept.len());
        if total <= avail {
            break;
        }
        let Some(drop) = kept
            .iter()
            .copied()
            .filter(|i| cols[*i].priority > 0)
            .max_by_key(|i| (cols[*i].priority, *i))
        else {
            break;
        };
        kept.retain(|i| *i != drop);
    }
    let mut width: Vec<u16> = want.clone();
    let total = |width: &[u16], kept: &[usize]| -> u16 {
        kept.iter().map(|i| width[*i]).sum::<u16>() + gaps(kept.len())
    };
    // Give way: the widest above its comfortable width first, then above
    // its minimum.
    while total(&width, &kept) > avail {
        let over = |floor: &[u16]| {
            kept.iter()
                .copied()
                .filter(|i| width[*i] > floor[*i])
                .max_by_key(|i| (width[*i] - floor[*i], *i))
        };
        let mins: Vec<u16> = cols
            .iter()
            .zip(&want)
            .map(|(c, w)| if c.whole { *w } else { c.min })
            .collect();
        match over(&soft).or_else(|| over(&mins)) {
            Some(i) => width[i] -= 1,
            None => break,
        }
    }
    // Room left over: columns that were dropped come back, most important
    // first, in what is left (cut), rather than leaving it empty.
    let mut left = avail.saturating_sub(total(&width, &kept));
    let mut dropped: Vec<usize> = (0..cols.len()).filter(|i| !kept.contains(i)).collect();
    dropped.sort_by_key(|i| (cols[*i].priority, *i));
    for i in dropped {
        let gap = u16::from(!kept.is_empty());
        let least = if cols[i].whole {
            want[i]
        } else {
            cols[i].min.max(title_w(&cols[i]))
        };
        if left >= least + gap {
            width[i] = want[i].min(left - gap);
            left -= width[i] + gap;
            kept.push(i);
        }
    }
    kept.sort_unstable();
    kept.into_iter().map(|i| (i, width[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: &[Column] = &[
        col("REQUESTER", 6, 10, 24, 0),
        col("NAMESPACES", 8, 16, 32, 2),
        col("ROLE", 6, 12, 24, 1),
        col("AGE", 3, 6, 6, 3),
        col("RISK", 5, 5, 5, 0),
        col("REASON", 10, 20, 200, 4),
    ];

    #[test]
    fn content_decides_when_there_is_room() {
        let f = fit(COLS, &[5, 22, 8, 5, 4, 40], 200);
        let w: Vec<u16> = f.iter().map(|(_, w)| *w).collect();
        assert_eq!(w, [9, 22, 8, 5, 5, 40], "titles fit, nothing is cut");
    }

    #[test]
    fn least_important_go_first_then_the_widest_give_way() {
        let f = fit(COLS, &[5, 22, 13, 5, 4, 40], 50);
        let titles: Vec<&str> = f.iter().map(|(i, _)| COLS[*i].title).collect();
        assert_eq!(titles, ["REQUESTER", "NAMESPACES", "ROLE", "RISK"]);
        let used: u16 = f.iter().map(|(_, w)| w).sum::<u16>() + f.len() as u16 - 1;
        assert!(used <= 50, "{f:?}");
        // What a dropped column would need is there: it comes back, cut.
        let f = fit(COLS, &[5, 16, 12, 5, 4, 40], 64);
        let titles: Vec<&str> = f.iter().map(|(i, _)| COLS[*i].title).collect();
        assert_eq!(
            titles,
            ["REQUESTER", "NAMESPACES", "ROLE", "AGE", "RISK", "REASON"]
        );
        let used: u16 = f.iter().map(|(_, w)| w).sum::<u16>() + f.len() as u16 - 1;
        assert_eq!(used, 64, "{f:?}");
        let tiny = fit(COLS, &[5, 22, 13, 5, 4, 40], 12);
        let titles: Vec<&str> = tiny.iter().map(|(i, _)| COLS[*i].title).collect();
        assert_eq!(
            titles,
            ["REQUESTER", "RISK"],
            "who and the risk always stay"
        );
    }

    /// Issue 21, item 13: a column to be shown whole never comes back cut,
    /// nor gives way below what its content needs.
    #[test]
    fn a_number_is_shown_whole_or_not_at_all() {
        let cols = [
            col("REQUESTER", 6, 10, 24, 0),
            col("NEW", 3, 9, 9, 4).whole(),
            col("RISK", 5, 5, 5, 0),
        ];
        // "22/369" needs 6; with 4 spare, NEW stays out rather than "22…".
        let f = fit(&cols, &[9, 6, 4], 9 + 1 + 5 + 4);
        assert!(f.iter().all(|(i, _)| *i != 1), "{f:?}");
        // With room for it whole, it is there, whole.
        let f = fit(&cols, &[9, 6, 4], 9 + 1 + 5 + 1 + 6);
        assert!(f.contains(&(1, 6)), "{f:?}");
    }
}
