//! The one keymap registry. Key handling, the footer hints and the help
//! screen are all generated from [`KEYMAP`], so they can never disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::View;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAction {
    Quit,
    Help,
    Back,
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    DetailDown,
    DetailUp,
    NextView,
    PrevView,
    ShowPending,
    ShowGrants,
    ShowHistory,
    CommandMode,
    FilterMode,
    ToggleMark,
    MarkAll,
    OpenFull,
    ToggleReads,
    Copy,
    Approve,
    ApproveWithChanges,
    Deny,
    Shorten,
    Revoke,
    Release,
}

impl KeyAction {
    /// Whether it acts on the selected request (mark, decide, copy, open).
    pub fn acts_on_selection(self) -> bool {
        matches!(
            self,
            KeyAction::ToggleMark
                | KeyAction::Approve
                | KeyAction::ApproveWithChanges
                | KeyAction::Deny
                | KeyAction::Shorten
                | KeyAction::Revoke
                | KeyAction::Release
                | KeyAction::Copy
                | KeyAction::OpenFull
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Navigate,
    Decide,
    General,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::Navigate => "Navigate",
            Section::Decide => "Decide",
            Section::General => "General",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct KeyBinding {
    pub action: KeyAction,
    pub keys: &'static [(KeyCode, KeyModifiers)],
    /// How the keys are written in the footer and help (`a`, `j/↓`).
    pub label: &'static str,
    /// Short name for the footer.
    pub name: &'static str,
    pub help: &'static str,
    /// Views where it applies; empty means every view.
    pub views: &'static [View],
    pub footer: bool,
    /// Changes access: disabled by `--readonly`.
    pub dangerous: bool,
    pub section: Section,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;

const fn ch(c: char) -> (KeyCode, KeyModifiers) {
    (KeyCode::Char(c), NONE)
}

macro_rules! bind {
    ($action:ident, [$($k:expr),+], $label:expr, $name:expr, $help:expr, views: [$($v:ident),*], footer: $footer:expr, dangerous: $danger:expr, $section:ident) => {
        KeyBinding {
            action: KeyAction::$action,
            keys: &[$($k),+],
            label: $label,
            name: $name,
            help: $help,
            views: &[$(View::$v),*],
            footer: $footer,
            dangerous: $danger,
            section: Section::$section,
        }
    };
}

pub const KEYMAP: &[KeyBinding] = &[
    bind!(Approve, [ch('a')], "a", "approve", "approve the selected request as asked (asks to confirm)", views: [Pending], footer: true, dangerous: true, Decide),
    bind!(ApproveWithChanges, [(KeyCode::Char('A'), SHIFT), ch('A')], "A", "approve…", "approve shorter or in fewer namespaces", views: [Pending], footer: true, dangerous: true, Decide),
    bind!(Deny, [ch('d')], "d", "deny", "deny with a reason (the marked requests, or the selected one)", views: [Pending], footer: true, dangerous: true, Decide),
    bind!(Shorten, [ch('s')], "s", "shorten", "make the selected live grant end sooner", views: [Grants], footer: true, dangerous: true, Decide),
    bind!(Revoke, [ch('r')], "r", "revoke", "end grants now, with a reason (the marked ones, or the selected one)", views: [Grants], footer: true, dangerous: true, Decide),
    bind!(Release, [(KeyCode::Char('R'), SHIFT), ch('R')], "R", "release", "end your own live grant now (\"I'm done\"; asks to confirm)", views: [Grants], footer: false, dangerous: true, Decide),
    bind!(ToggleMark, [ch(' ')], "space", "mark ↓", "mark or unmark, then move down: for a bulk deny or revoke (never bulk approve)", views: [Pending, Grants], footer: true, dangerous: true, Decide),
    bind!(MarkAll, [(KeyCode::Char('a'), CTRL)], "ctrl-a", "mark all", "mark every row of the filter (:mark all); esc clears the marks", views: [Pending, Grants], footer: false, dangerous: true, Decide),
    bind!(Down, [ch('j'), (KeyCode::Down, NONE)], "j/↓", "down", "next row", views: [], footer: false, dangerous: false, Navigate),
    bind!(Up, [ch('k'), (KeyCode::Up, NONE)], "k/↑", "up", "previous row", views: [], footer: false, dangerous: false, Navigate),
    bind!(Top, [ch('g'), (KeyCode::Home, NONE)], "g/home", "top", "first row", views: [], footer: false, dangerous: false, Navigate),
    bind!(Bottom, [(KeyCode::Char('G'), SHIFT), ch('G'), (KeyCode::End, NONE)], "G/end", "bottom", "last row", views: [], footer: false, dangerous: false, Navigate),
    bind!(PageDown, [(KeyCode::PageDown, NONE), (KeyCode::Char('d'), CTRL), (KeyCode::Char('f'), CTRL)], "ctrl-d/pgdn", "page down", "one page down", views: [], footer: false, dangerous: false, Navigate),
    bind!(PageUp, [(KeyCode::PageUp, NONE), (KeyCode::Char('u'), CTRL), (KeyCode::Char('b'), CTRL)], "ctrl-u/pgup", "page up", "one page up", views: [], footer: false, dangerous: false, Navigate),
    bind!(DetailDown, [(KeyCode::Char('J'), SHIFT), ch('J')], "J", "detail ↓", "scroll the detail pane down", views: [], footer: false, dangerous: false, Navigate),
    bind!(DetailUp, [(KeyCode::Char('K'), SHIFT), ch('K')], "K", "detail ↑", "scroll the detail pane up", views: [], footer: false, dangerous: false, Navigate),
    bind!(NextView, [(KeyCode::Tab, NONE), ch('l'), (KeyCode::Right, NONE)], "tab/l", "next view", "next view", views: [], footer: false, dangerous: false, Navigate),
    bind!(PrevView, [(KeyCode::BackTab, SHIFT), (KeyCode::BackTab, NONE), ch('h'), (KeyCode::Left, NONE)], "S-tab/h", "prev view", "previous view", views: [], footer: false, dangerous: false, Navigate),
    bind!(ShowPending, [ch('1')], "1", "pending", "Pending requests (:pending)", views: [], footer: false, dangerous: false, Navigate),
    bind!(ShowGrants, [ch('2')], "2", "grants", "Live grants (:grants)", views: [], footer: false, dangerous: false, Navigate),
    bind!(ShowHistory, [ch('3')], "3", "history", "History (:history)", views: [], footer: false, dangerous: false, Navigate),
    bind!(OpenFull, [(KeyCode::Enter, NONE)], "enter", "full", "the request in full: the whole diff, the object as YAML, its events", views: [], footer: true, dangerous: false, Navigate),
    bind!(ToggleReads, [ch('x')], "x", "reads", "list every read-only permission in the detail, or fold them into one line per namespace", views: [], footer: false, dangerous: false, Navigate),
    bind!(FilterMode, [ch('/')], "/", "filter", "filter: text, user:NAME, ns:NS, risk:LEVEL, cluster:NAME, role:NAME; !TERM keeps what it does not match (a new filter replaces the old)", views: [], footer: true, dangerous: false, General),
    bind!(CommandMode, [ch(':')], ":", "cmd", "command: :pending :grants :history :ctx [NAME|all] :mark all :q (tab completes)", views: [], footer: true, dangerous: false, General),
    bind!(Copy, [ch('c')], "c", "copy", "copy the request's name to the clipboard (OSC 52; off unless osc52 = true)", views: [], footer: false, dangerous: false, General),
    bind!(Back, [(KeyCode::Esc, NONE)], "esc", "back", "back: close, clear marks, clear filter, dismiss a message", views: [], footer: false, dangerous: false, General),
    bind!(Help, [ch('?')], "?", "help", "this help", views: [], footer: true, dangerous: false, General),
    bind!(Quit, [ch('q'), (KeyCode::Char('c'), CTRL)], "q", "quit", "quit (ctrl-c works everywhere)", views: [], footer: true, dangerous: false, General),
];

impl KeyBinding {
    pub fn applies_to(&self, view: View) -> bool {
        self.views.is_empty() || self.views.contains(&view)
    }

    pub fn matches(&self, key: &KeyEvent) -> bool {
        self.keys.iter().any(|(code, mods)| {
            *code == key.code
                && (*mods == key.modifiers
                    || (*mods == NONE
                        && key.modifiers == SHIFT
                        && matches!(code, KeyCode::Char(c) if !c.is_ascii_lowercase())))
        })
    }
}

/// The action bound to `key` in `view`, if any.
pub fn lookup(view: View, key: &KeyEvent) -> Option<KeyAction> {
    KEYMAP
        .iter()
        .find(|b| b.applies_to(view) && b.matches(key))
        .map(|b| b.action)
}

/// The binding of an action (for messages that name its key).
pub fn binding(action: KeyAction) -> Option<&'static KeyBinding> {
    KEYMAP.iter().find(|b| b.action == action)
}

/// The keys inside dialogs, for their hint lines and the help screen.
pub const DIALOG_KEYS: &[(&str, &str, &str)] = &[
    ("Approve", "y", "confirm (only y: never enter)"),
    (
        "Approve",
        "1 2 3",
        "quick pick: grant 15m, 30m or 1h (never longer than asked)",
    ),
    ("Approve", "e", "change it: shorter, fewer namespaces"),
    ("Approve", "n/esc", "cancel"),
    ("Reason", "tab/↑ ↓", "recent reasons (then edit them)"),
    ("Reason", "enter", "submit (a bulk action asks once more)"),
    ("Bulk", "e", "edit the reason before confirming"),
    ("Fields", "typing", "replaces the value shown selected"),
    ("Full", "j/k g/G", "scroll; c copies the name; esc back"),
];

/// Footer hints for a view; dangerous ones hidden when read-only.
pub fn footer(view: View, readonly: bool) -> impl Iterator<Item = &'static KeyBinding> {
    KEYMAP
        .iter()
        .filter(move |b| b.footer && b.applies_to(view) && !(readonly && b.dangerous))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(c, m)
    }

    #[test]
    fn lookup_respects_views() {
        assert_eq!(
            lookup(View::Pending, &key(KeyCode::Char('a'), NONE)),
            Some(KeyAction::Approve)
        );
        assert_eq!(lookup(View::Grants, &key(KeyCode::Char('a'), NONE)), None);
        assert_eq!(
            lookup(View::Grants, &key(KeyCode::Char('r'), NONE)),
            Some(KeyAction::Revoke)
        );
        assert_eq!(
            lookup(View::History, &key(KeyCode::Char('j'), NONE)),
            Some(KeyAction::Down)
        );
        assert_eq!(
            lookup(View::Pending, &key(KeyCode::Down, NONE)),
            Some(KeyAction::Down)
        );
        assert_eq!(
            lookup(View::Pending, &key(KeyCode::Char('A'), SHIFT)),
            Some(KeyAction::ApproveWithChanges)
        );
        assert_eq!(
            lookup(View::Pending, &key(KeyCode::Char('?'), SHIFT)),
            Some(KeyAction::Help)
        );
        assert_eq!(
            lookup(View::Pending, &key(KeyCode::Char('c'), CTRL)),
            Some(KeyAction::Quit)
        );
        assert_eq!(
            lookup(View::Pending, &key(KeyCode::Char('d'), CTRL)),
            Some(KeyAction::PageDown)
        );
        assert_eq!(
            lookup(View::Pending, &key(KeyCode::Char('a'), CTRL)),
            Some(KeyAction::MarkAll)
        );
        assert_eq!(lookup(View::History, &key(KeyCode::Char('a'), CTRL)), None);
        assert_eq!(
            lookup(View::History, &key(KeyCode::Enter, NONE)),
            Some(KeyAction::OpenFull)
        );
    }

    #[test]
    fn no_key_is_bound_twice_in_one_view() {
        for view in [View::Pending, View::Grants, View::History] {
            let mut seen = std::collections::HashSet::new();
            for b in KEYMAP.iter().filter(|b| b.applies_to(view)) {
                for k in b.keys {
                    assert!(seen.insert(*k), "{k:?} bound twice in {view:?}");
                }
            }
        }
    }

    #[test]
    fn readonly_footer_hides_dangerous_actions() {
        assert!(footer(View::Pending, false).any(|b| b.action == KeyAction::Approve));
        assert!(!footer(View::Pending, true).any(|b| b.dangerous));
    }
}
