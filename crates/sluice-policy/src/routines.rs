//! Routine patterns of `allow.routines`.
//!
//! A routine runs only when a policy names it: a persistent function,
//! table function or procedure as `project.dataset.routine`, or a built-in
//! billed outside the query's byte limit as `NAMESPACE.FUNCTION`
//! (`ML.GENERATE_TEXT`, `AI.GENERATE`; namespaces in
//! [`sluice_sql::SPENDING_NAMESPACES`]). Each segment is a glob whose `*`
//! stays within the segment (`proj.udfs.*`, `AI.*`). Persistent names are
//! matched case-sensitively as written, built-in names ignoring case.
//!
//! There is no prefix form (`proj.udfs` alone): a routine can spend money
//! or run code the SQL does not show, so each grant names its routines.

use std::fmt;

use sluice_sql::{RoutineName, SPENDING_NAMESPACES};

use sluice_glob::{glob_match, glob_match_ignore_case};

/// A validated `allow.routines` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoutinePattern {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// `project.dataset.routine` globs.
    Persistent([String; 3]),
    /// `NAMESPACE.FUNCTION`, the namespace upper-cased, the function a glob.
    BuiltIn { namespace: String, function: String },
}

impl RoutinePattern {
    /// Validate `text`; the error says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty routine name".to_owned());
        }
        let segments: Vec<&str> = text.split('.').collect();
        if let Some(at) = segments.iter().position(|s| s.is_empty()) {
            return Err(format!("`{text}` has an empty segment {}", at + 1));
        }
        if let Some(bad) = text
            .chars()
            .find(|&c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '*' | '.')))
        {
            return Err(format!(
                "`{text}` contains `{bad}`; a routine name holds only letters, digits, `_`, `-`, `.` and the wildcard `*`"
            ));
        }
        let kind = match segments.as_slice() {
            [namespace, function] if is_spending(namespace) => Kind::BuiltIn {
                namespace: namespace.to_ascii_uppercase(),
                function: (*function).to_owned(),
            },
            [project, dataset, routine] => Kind::Persistent([
                (*project).to_owned(),
                (*dataset).to_owned(),
                (*routine).to_owned(),
            ]),
            _ => {
                return Err(format!(
                    "`{text}` names no routine: write a persistent routine as project.dataset.routine, or a built-in as {}.FUNCTION (e.g. ML.GENERATE_TEXT)",
                    SPENDING_NAMESPACES.join("|")
                ));
            }
        };
        Ok(Self {
            text: text.to_owned(),
            kind,
        })
    }

    /// The entry as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the entry allows `routine`.
    pub(crate) fn matches(&self, routine: &RoutineName) -> bool {
        match (&self.kind, routine) {
            (
                Kind::Persistent([p, d, r]),
                RoutineName::Persistent {
                    project,
                    dataset,
                    name,
                },
            ) => glob_match(p, project) && glob_match(d, dataset) && glob_match(r, name),
            (
                Kind::BuiltIn {
                    namespace,
                    function,
                },
                RoutineName::BuiltIn(called),
            ) => called.split_once('.').is_some_and(|(ns, f)| {
                ns.eq_ignore_ascii_case(namespace) && glob_match_ignore_case(function, f)
            }),
            _ => false,
        }
    }
}

impl fmt::Display for RoutinePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_spending(namespace: &str) -> bool {
    SPENDING_NAMESPACES
        .iter()
        .any(|known| known.eq_ignore_ascii_case(namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(pattern: &str, routine: &RoutineName) -> bool {
        RoutinePattern::parse(pattern)
            .expect("valid pattern")
            .matches(routine)
    }

    fn persistent(project: &str, dataset: &str, name: &str) -> RoutineName {
        RoutineName::persistent(project, dataset, name)
    }

    #[test]
    fn persistent_routines_match_by_three_globs() {
        let f = persistent("proj", "udfs", "clean_email");
        assert!(allows("proj.udfs.clean_email", &f));
        assert!(allows("proj.udfs.*", &f));
        assert!(allows("proj.*.clean_*", &f));
        assert!(!allows("proj.udfs.Clean_email", &f), "case-sensitive");
        assert!(!allows("proj.other.*", &f));
        assert!(!allows("other.udfs.clean_email", &f));
        assert!(!allows("ML.*", &f));
    }

    #[test]
    fn built_ins_match_by_name_ignoring_case() {
        let predict = RoutineName::BuiltIn("ML.PREDICT".to_owned());
        assert!(allows("ML.PREDICT", &predict));
        assert!(allows("ml.predict", &predict));
        assert!(allows("ML.*", &predict));
        assert!(!allows("ML.GENERATE_TEXT", &predict));
        assert!(!allows("AI.*", &predict));
        assert!(!allows("proj.ML.PREDICT", &predict));
    }

    #[test]
    fn invalid_entries_say_why() {
        for bad in [
            "",
            "f",
            "udfs.f",
            "a.b.c.d",
            "proj..f",
            "proj.udfs.f(x)",
            "proj.udfs.f x",
        ] {
            assert!(RoutinePattern::parse(bad).is_err(), "{bad:?}");
        }
        let why = RoutinePattern::parse("udfs.f").unwrap_err();
        assert!(why.contains("project.dataset.routine"), "{why}");
    }
}
