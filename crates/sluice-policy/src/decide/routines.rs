//! Step 6 of the decision order: every routine called is named by an
//! `allow.routines` entry of a matching policy.

use sluice_sql::RoutineName;

use super::Run;
use crate::decision::{Decision, Rule, TraceStep};

impl Run<'_> {
    /// A routine called must be named by an `allow.routines` entry.
    pub(super) fn check_routine(&mut self, routine: &RoutineName) -> Option<Decision> {
        let grant = self.matching.iter().find_map(|policy| {
            policy
                .routines
                .iter()
                .find(|p| p.matches(routine))
                .map(|p| (policy, p))
        });
        if let Some((policy, pattern)) = grant {
            self.trace.push(TraceStep::new(
                &policy.name,
                format!("policies.{}.allow.routines", policy.name),
                "allow",
                format!("routine {routine} matches {}", pattern.as_str()),
            ));
            return None;
        }
        let rule = "policies.allow.routines";
        let names = self.names();
        let what = match routine {
            RoutineName::Persistent { .. } => {
                "a persistent routine, whose code and connections the SQL does not show"
            }
            RoutineName::BuiltIn(_) => {
                "a built-in billed per row or call, outside the query's byte limit"
            }
        };
        let why = format!(
            "routine {routine} ({what}) may not be called by policies {names}: not in allow.routines"
        );
        self.trace
            .push(TraceStep::new(&names, rule, "deny", why.clone()));
        let message = format!(
            "Denied by {} (rule {rule}): {why}. Routines run only when a policy names them; ask a data owner to add `{routine}` to a policy's allow.routines, or send the query without it.",
            self.phrase()
        );
        Some(self.deny(&names, Rule::Routines, message))
    }
}
