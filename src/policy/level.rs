//! Verification levels and their per-check actions (NOTARY.md §5 "Levels", §8).

use std::fmt;

/// What a failed check does to the signature (NOTARY.md §8): an enforced failure stops
/// the signature, a logged one is recorded and verification goes on, a skipped check
/// is not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckAction {
    Enforce,
    Log,
    Skip,
}

impl fmt::Display for CheckAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckAction::Enforce => "enforce",
            CheckAction::Log => "log",
            CheckAction::Skip => "skip",
        })
    }
}

/// The four predefined levels of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LevelName {
    Strict,
    Permissive,
    Audit,
    Skip,
}

impl LevelName {
    pub(crate) fn parse(name: &str) -> Option<LevelName> {
        match name {
            "strict" => Some(LevelName::Strict),
            "permissive" => Some(LevelName::Permissive),
            "audit" => Some(LevelName::Audit),
            "skip" => Some(LevelName::Skip),
            _ => None,
        }
    }
}

impl fmt::Display for LevelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LevelName::Strict => "strict",
            LevelName::Permissive => "permissive",
            LevelName::Audit => "audit",
            LevelName::Skip => "skip",
        })
    }
}

/// A level with its overrides applied: the action for each of the five checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationLevel {
    pub name: LevelName,
    pub integrity: CheckAction,
    pub authenticity: CheckAction,
    pub authentic_timestamp: CheckAction,
    pub expiry: CheckAction,
    pub revocation: CheckAction,
}

/// A check that an `override` map may name (`integrity` never can).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverridableCheck {
    Authenticity,
    AuthenticTimestamp,
    Expiry,
    Revocation,
}

impl OverridableCheck {
    pub(crate) fn parse(key: &str) -> Option<OverridableCheck> {
        match key {
            "authenticity" => Some(OverridableCheck::Authenticity),
            "authenticTimestamp" => Some(OverridableCheck::AuthenticTimestamp),
            "expiry" => Some(OverridableCheck::Expiry),
            "revocation" => Some(OverridableCheck::Revocation),
            _ => None,
        }
    }

    pub(crate) fn key(self) -> &'static str {
        match self {
            OverridableCheck::Authenticity => "authenticity",
            OverridableCheck::AuthenticTimestamp => "authenticTimestamp",
            OverridableCheck::Expiry => "expiry",
            OverridableCheck::Revocation => "revocation",
        }
    }

    /// `enforce|log` for every check; `skip` only for revocation (spec "Custom
    /// Verification Level").
    pub(crate) fn parse_action(self, value: &str) -> Option<CheckAction> {
        match (value, self) {
            ("enforce", _) => Some(CheckAction::Enforce),
            ("log", _) => Some(CheckAction::Log),
            ("skip", OverridableCheck::Revocation) => Some(CheckAction::Skip),
            _ => None,
        }
    }

    pub(crate) fn allowed(self) -> &'static str {
        match self {
            OverridableCheck::Revocation => "enforce, log or skip",
            _ => "enforce or log",
        }
    }
}

impl VerificationLevel {
    /// The predefined table (NOTARY.md §5): integrity / authenticity /
    /// authenticTimestamp / expiry / revocation are strict E/E/E/E/E,
    /// permissive E/E/L/L/L, audit E/L/L/L/L, skip nothing.
    pub fn predefined(name: LevelName) -> VerificationLevel {
        use CheckAction::{Enforce as E, Log as L, Skip as S};
        let (integrity, authenticity, authentic_timestamp, expiry, revocation) = match name {
            LevelName::Strict => (E, E, E, E, E),
            LevelName::Permissive => (E, E, L, L, L),
            LevelName::Audit => (E, L, L, L, L),
            LevelName::Skip => (S, S, S, S, S),
        };
        VerificationLevel {
            name,
            integrity,
            authenticity,
            authentic_timestamp,
            expiry,
            revocation,
        }
    }

    /// Applies one already-validated override. Callers reject overrides on `skip`.
    pub(crate) fn with_override(mut self, check: OverridableCheck, action: CheckAction) -> Self {
        match check {
            OverridableCheck::Authenticity => self.authenticity = action,
            OverridableCheck::AuthenticTimestamp => self.authentic_timestamp = action,
            OverridableCheck::Expiry => self.expiry = action,
            OverridableCheck::Revocation => self.revocation = action,
        }
        self
    }

    /// Whether signatures are looked at at all (`skip` → forward unchanged).
    pub fn verifies(&self) -> bool {
        self.name != LevelName::Skip
    }
}

#[cfg(test)]
mod tests {
    use super::CheckAction::{Enforce as E, Log as L, Skip as S};
    use super::*;

    fn row(l: VerificationLevel) -> [CheckAction; 5] {
        [
            l.integrity,
            l.authenticity,
            l.authentic_timestamp,
            l.expiry,
            l.revocation,
        ]
    }

    #[test]
    fn predefined_levels_table() {
        let table = [
            (LevelName::Strict, [E, E, E, E, E]),
            (LevelName::Permissive, [E, E, L, L, L]),
            (LevelName::Audit, [E, L, L, L, L]),
            (LevelName::Skip, [S, S, S, S, S]),
        ];
        for (name, expected) in table {
            assert_eq!(row(VerificationLevel::predefined(name)), expected, "{name}");
        }
        assert!(!VerificationLevel::predefined(LevelName::Skip).verifies());
        assert!(VerificationLevel::predefined(LevelName::Audit).verifies());
    }

    #[test]
    fn override_actions_table() {
        use OverridableCheck::*;
        for check in [Authenticity, AuthenticTimestamp, Expiry, Revocation] {
            assert_eq!(check.parse_action("enforce"), Some(E), "{}", check.key());
            assert_eq!(check.parse_action("log"), Some(L), "{}", check.key());
            assert_eq!(OverridableCheck::parse(check.key()), Some(check));
        }
        assert_eq!(Revocation.parse_action("skip"), Some(S));
        for check in [Authenticity, AuthenticTimestamp, Expiry] {
            assert_eq!(check.parse_action("skip"), None, "{}", check.key());
        }
        assert_eq!(Expiry.parse_action("Enforce"), None);
        assert_eq!(OverridableCheck::parse("integrity"), None);
    }

    #[test]
    fn override_changes_only_its_check() {
        let strict = VerificationLevel::predefined(LevelName::Strict);
        let l = strict.with_override(OverridableCheck::Expiry, L);
        assert_eq!(row(l), [E, E, E, L, E]);
        let audit = VerificationLevel::predefined(LevelName::Audit)
            .with_override(OverridableCheck::Authenticity, E)
            .with_override(OverridableCheck::Revocation, S);
        assert_eq!(row(audit), [E, E, L, L, S]);
        assert_eq!(audit.name, LevelName::Audit);
    }
}
