//! The estimate and decide phases for a query: analyze the SQL, let the
//! policy refuse what it can refuse on the facts alone (guardrails, tables,
//! routines, statement kinds), then dry-run the query, cross-check the
//! tables and routines the warehouse reports against the analysis, and
//! decide again with the estimate (byte limits).
//!
//! A refusal is 403 `accessDenied` whose message names the policy and rule;
//! the query is never started.

use sluice_policy::{Decision, Estimate, Limits};
use sluice_sql::{ObjectKind, QueryFacts, RoutineName, StatementKind};
use sluice_warehouse::{DryRun, QueryRequest, RoutineRef, WarehouseErrorKind};

use crate::Gateway;
use crate::analyze::{analyze, comparable};
use crate::authenticate::Principal;
use crate::error::GatewayError;

/// A query the policy allows, with what was learned on the way.
#[derive(Debug)]
pub struct Admitted {
    /// The dry run: schema, estimate, referenced tables.
    pub plan: DryRun,
    /// The limits the allowing policies set.
    pub limits: Limits,
}

/// analyze → estimate → decide for one query request.
pub async fn admit(
    gateway: &Gateway,
    principal: &Principal,
    request: &QueryRequest,
) -> Result<Admitted, GatewayError> {
    let facts = analyze(request);
    if let Some(exceeded) = &facts.limit_exceeded {
        // Refused before parsing: nothing was analyzed, so nothing runs.
        return Err(GatewayError::invalid_query(format!(
            "Query not analyzed: {exceeded}. Sluice runs only SQL it can analyze within these \
             bounds, so the query was not run."
        )));
    }
    let policy = &gateway.config.policy;
    let who = principal.who();
    let first = policy.decide(&who, &facts, None);
    if let Some(syntax) = &facts.syntax_error {
        // A guardrail the token scan recognised still refuses by name;
        // otherwise SQL that does not parse is bad SQL, as BigQuery says.
        if first.is_allowed() || first.rule == "analysis.incomplete" {
            return Err(GatewayError::invalid_query(format!(
                "Syntax error: {syntax} (check analysis.parse). Sluice runs only SQL it can parse, \
                 so the query was not run; correct the SQL and send it again."
            )));
        }
    }
    enforce(first, principal)?;
    // Where the job runs is who pays for it: a project a policy names.
    let project = &request.default_project;
    if !policy.may_run_jobs_in(&who, project) {
        tracing::info!(principal = %principal.verified.name, %project, "denied: project");
        return Err(GatewayError::access_denied(format!(
            "Access Denied: rule policies.projects: no policy for {} lets it run jobs in project {project} \
             (the project a job runs in is billed for it). Send the job to a project your policy lists, \
             or ask the Sluice administrators to add this one to the policy's projects.",
            principal.verified.name
        )));
    }
    // The dry run's token serves this one call and dies with it.
    let call = gateway.credentials.access_once(principal).await?;
    let plan = gateway
        .warehouse
        .dry_run(&call.access, request)
        .await
        .map_err(|err| match err.kind {
            // Statistics Sluice cannot read are a refusal, not a failure a
            // client would retry: the decision cannot be made.
            WarehouseErrorKind::Internal => {
                tracing::warn!(principal = %principal.verified.name, error = %err.message, "unreadable dry run");
                GatewayError::access_denied(format!(
                    "Access Denied: check analysis.cross_check: the warehouse's dry run answered with statistics Sluice \
                     could not read ({}), so the query was not run. Report it to the Sluice administrators.",
                    err.message
                ))
            }
            _ => GatewayError::from(err),
        })?;
    drop(call);
    let require_tables = gateway
        .config
        .upstream
        .as_ref()
        .is_some_and(|u| u.require_referenced_tables);
    cross_check(&facts, &plan, principal, require_tables)?;
    let estimate = Estimate {
        bytes_processed: plan.total_bytes_processed,
    };
    let decision = policy.decide(&who, &facts, Some(&estimate));
    let limits = decision.limits.clone();
    enforce(decision, principal)?;
    Ok(Admitted { plan, limits })
}

/// Turns a decision into a refusal, or lets the request on; every decision
/// is logged with the rule that made it.
pub fn enforce(decision: Decision, principal: &Principal) -> Result<(), GatewayError> {
    if decision.is_allowed() {
        tracing::debug!(principal = %principal.verified.name, policy = %decision.policy, rule = %decision.rule, "allowed");
        return Ok(());
    }
    tracing::info!(principal = %principal.verified.name, policy = %decision.policy, rule = %decision.rule, "denied");
    Err(GatewayError::access_denied(format!(
        "Access Denied: {}",
        decision.message
    )))
}

/// The longest `referencedTables` list that can be trusted to be whole.
/// BigQuery's REST reference for `JobStatistics2.referencedTables` says
/// that queries referencing more than 50 tables do not have a complete
/// list; a list of 50 may be one cut short.
const LISTED_TABLES_LIMIT: usize = 50;

/// Every table the warehouse says the query reads, and every routine it
/// says the query calls, must be one analysis found; otherwise the
/// decision was made on the wrong facts.
///
/// A query of [`LISTED_TABLES_LIMIT`] tables or more (by the dry run's
/// count or the analysis's) fails closed: BigQuery may have left off the
/// very table analysis missed. With `require_tables`, a dry run that lists
/// no table although analysis found tables the query reads (other than
/// `INFORMATION_SCHEMA` views, which BigQuery does not list) also fails
/// closed: the cross-check could not be made.
fn cross_check(
    facts: &QueryFacts,
    plan: &DryRun,
    principal: &Principal,
    require_tables: bool,
) -> Result<(), GatewayError> {
    let seen: Vec<String> = facts
        .reads
        .iter()
        .map(|t| comparable(&[&t.project, &t.dataset, &t.table]))
        .collect();
    // BigQuery lists no INFORMATION_SCHEMA view, so those are not counted.
    let listable = facts
        .reads
        .iter()
        .filter(|t| !t.is_information_schema())
        .count();
    let tables = plan.referenced_tables.len().max(listable);
    if tables >= LISTED_TABLES_LIMIT {
        tracing::warn!(principal = %principal.verified.name, tables, "too many tables to cross-check");
        return Err(GatewayError::access_denied(format!(
            "Access Denied: check analysis.cross_check: the query reads {tables} tables, and BigQuery's dry run \
             lists a query's tables completely only below {LISTED_TABLES_LIMIT}, so Sluice cannot confirm its analysis \
             and the query was not run. Split the query so that each part reads fewer than {LISTED_TABLES_LIMIT} tables."
        )));
    }
    if require_tables && plan.referenced_tables.is_empty() && listable > 0 {
        tracing::warn!(principal = %principal.verified.name, "the dry run listed no tables");
        return Err(GatewayError::access_denied(
            "Access Denied: check analysis.cross_check: the warehouse's dry run did not list the tables the query reads, \
             so Sluice cannot confirm its analysis and the query was not run. Try again; if it persists, report it to the Sluice administrators.",
        ));
    }
    // Real BigQuery always names the statement type; an endpoint that does
    // not (require_tables off) is trusted on tables alone.
    if let Some(expected) = expected_statement_type(facts)
        && (require_tables || !plan.statement_type.is_empty())
        && !expected.matches(&plan.statement_type)
    {
        tracing::warn!(principal = %principal.verified.name, reported = %plan.statement_type, expected = ?expected, "the warehouse reports another kind of statement");
        return Err(GatewayError::access_denied(format!(
            "Access Denied: check analysis.cross_check: the warehouse's dry run says this is a {} statement, \
             but Sluice's analysis of the SQL found {}, so the decision cannot be trusted and the query was not run. \
             If the query is ordinary, report it to the Sluice administrators.",
            plan.statement_type,
            expected.describe(),
        )));
    }
    for table in &plan.referenced_tables {
        let reported = comparable(&[&table.project_id, &table.dataset_id, &table.table_id]);
        let found = seen.iter().any(|name| {
            *name == reported
                || name
                    .strip_suffix('*')
                    .is_some_and(|prefix| reported.starts_with(prefix))
        });
        if !found {
            tracing::warn!(principal = %principal.verified.name, table = %reported, "the warehouse reports a table analysis did not find");
            return Err(GatewayError::access_denied(format!(
                "Access Denied: check analysis.cross_check: the warehouse reports that the query reads {reported}, \
                 which Sluice's analysis of the SQL did not find, so the decision cannot be trusted and the query was not run. \
                 Write every table as project.dataset.table and avoid constructs that hide table names; \
                 if the query is ordinary, report it to the Sluice administrators."
            )));
        }
    }
    for routine in &plan.referenced_routines {
        if !analysis_found_routine(facts, routine) {
            tracing::warn!(principal = %principal.verified.name, routine = %routine, "the warehouse reports a routine analysis did not find");
            return Err(GatewayError::access_denied(format!(
                "Access Denied: check analysis.cross_check: the warehouse reports that the query calls routine {routine}, \
                 which Sluice's analysis of the SQL did not find, so the decision cannot be trusted and the query was not run. \
                 Call every routine by its dataset-qualified name; a view or routine that calls other routines is refused this way too. \
                 If the query is ordinary, report it to the Sluice administrators."
            )));
        }
    }
    Ok(())
}

/// Whether analysis saw the routine the dry run reports: a persistent
/// routine the SQL calls or creates, or a temporary function the request
/// creates (BigQuery keeps those in a hidden dataset, `_…`). Routine ids
/// are compared ignoring case, as BigQuery resolves them; project and
/// dataset exactly.
fn analysis_found_routine(facts: &QueryFacts, routine: &RoutineRef) -> bool {
    let same = |project: &str, dataset: &str, name: &str| {
        project == routine.project_id
            && dataset == routine.dataset_id
            && name.eq_ignore_ascii_case(&routine.routine_id)
    };
    let called = facts.routines.iter().any(|called| match called {
        RoutineName::Persistent {
            project,
            dataset,
            name,
        } => same(project, dataset, name),
        RoutineName::BuiltIn(_) => false,
    });
    let created = facts.statements.iter().any(|statement| {
        let Some(object) = statement.object.as_deref() else {
            return false;
        };
        if statement.temporary {
            return routine.dataset_id.starts_with('_')
                && object.eq_ignore_ascii_case(&routine.routine_id);
        }
        let routine_ddl = matches!(
            statement.kind,
            StatementKind::Create {
                object: ObjectKind::Function | ObjectKind::Procedure,
                ..
            }
        );
        let mut parts = object.splitn(3, '.');
        routine_ddl
            && matches!(
                (parts.next(), parts.next(), parts.next()),
                (Some(p), Some(d), Some(n)) if same(p, d, n)
            )
    });
    called || created
}

/// The `statementType` BigQuery's dry run should report for what analysis
/// found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpectedType {
    /// Exactly this type.
    Exactly(&'static str),
    /// One of these types.
    OneOf(&'static [&'static str]),
    /// A type with this prefix (`CREATE_TABLE`, `CREATE_TABLE_AS_SELECT`, …).
    Prefix(&'static str),
}

impl ExpectedType {
    fn matches(self, reported: &str) -> bool {
        match self {
            Self::Exactly(t) => reported.eq_ignore_ascii_case(t),
            Self::OneOf(types) => types.iter().any(|t| reported.eq_ignore_ascii_case(t)),
            Self::Prefix(p) => reported
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p)),
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Exactly("SCRIPT") => "several statements (a script)".into(),
            Self::Exactly(t) => format!("a {t} statement"),
            Self::OneOf(types) => format!("a {} statement", types.join(" or ")),
            Self::Prefix(p) => format!("a {}… statement", p.trim_end_matches('_')),
        }
    }
}

/// What the dry run must call the request, when analysis can say: one
/// statement has the type of its kind; temporary functions followed by one
/// query are a `SELECT` (BigQuery does not count them as a script; `SCRIPT`
/// is accepted too); any other several statements are a `SCRIPT`. Kinds
/// whose BigQuery name analysis cannot predict expect nothing.
fn expected_statement_type(facts: &QueryFacts) -> Option<ExpectedType> {
    use ExpectedType::{Exactly, OneOf, Prefix};
    use StatementKind as K;
    let temporary_function = |s: &sluice_sql::StatementFacts| {
        s.temporary
            && matches!(
                s.kind,
                K::Create {
                    object: ObjectKind::Function,
                    ..
                }
            )
    };
    match facts.statements.as_slice() {
        [] => None,
        [one] => match &one.kind {
            K::Query => Some(Exactly("SELECT")),
            K::Insert => Some(Exactly("INSERT")),
            K::Update { .. } => Some(Exactly("UPDATE")),
            K::Delete { .. } => Some(Exactly("DELETE")),
            K::Merge => Some(Exactly("MERGE")),
            K::Truncate => Some(Exactly("TRUNCATE_TABLE")),
            K::Create { .. } => Some(Prefix("CREATE_")),
            K::Alter { .. } => Some(Prefix("ALTER_")),
            K::Drop { .. } => Some(Prefix("DROP_")),
            K::ExportData => Some(Prefix("EXPORT_")),
            K::LoadData => Some(Exactly("LOAD_DATA")),
            K::Call => Some(Exactly("CALL")),
            _ => None,
        },
        [leading @ .., last] if last.kind == K::Query && leading.iter().all(temporary_function) => {
            Some(OneOf(&["SELECT", "SCRIPT"]))
        }
        _ => Some(Exactly("SCRIPT")),
    }
}

/// The effective `maximumBytesBilled`: the smaller of the caller's and the
/// policy's.
pub fn bytes_billed_cap(asked: Option<u64>, limits: &Limits) -> Option<u64> {
    match (asked, limits.max_bytes_billed) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(sql: &str) -> Option<ExpectedType> {
        let facts = sluice_sql::analyze(
            sql,
            &sluice_sql::Defaults {
                project: "proj".into(),
                dataset: Some("ds".into()),
            },
        );
        expected_statement_type(&facts)
    }

    /// What analysis expects, against the `statementType` BigQuery's dry
    /// run reports for each statement.
    #[test]
    fn the_dry_runs_statement_type_is_expected_from_the_analysis() {
        let agrees = [
            ("SELECT 1", "SELECT"),
            ("WITH t AS (SELECT 1 AS x) SELECT x FROM t", "SELECT"),
            ("(SELECT 1) UNION ALL (SELECT 2)", "SELECT"),
            ("INSERT INTO t (x) VALUES (1)", "INSERT"),
            ("UPDATE t SET x = 1 WHERE x = 2", "UPDATE"),
            ("DELETE FROM t WHERE x = 1", "DELETE"),
            (
                "MERGE t USING s ON t.x = s.x WHEN MATCHED THEN DELETE",
                "MERGE",
            ),
            ("TRUNCATE TABLE t", "TRUNCATE_TABLE"),
            ("CREATE TABLE t (x INT64)", "CREATE_TABLE"),
            ("CREATE TABLE t AS SELECT 1 AS x", "CREATE_TABLE_AS_SELECT"),
            ("CREATE VIEW v AS SELECT 1 AS x", "CREATE_VIEW"),
            ("DROP TABLE t", "DROP_TABLE"),
            ("ALTER TABLE t ADD COLUMN y INT64", "ALTER_TABLE"),
            (
                "EXPORT DATA OPTIONS (uri = 'gs://b/*.csv', format = 'CSV') AS SELECT 1 AS x",
                "EXPORT_DATA",
            ),
            ("SELECT 1; SELECT 2", "SCRIPT"),
            // Temporary functions before one query are not a script.
            (
                "CREATE TEMP FUNCTION f(x INT64) AS (x + 1); SELECT f(1)",
                "SELECT",
            ),
            (
                "CREATE TEMP FUNCTION f(x INT64) AS (x + 1); SELECT f(1)",
                "SCRIPT",
            ),
        ];
        for (sql, reported) in agrees {
            let expected = expected(sql).unwrap_or_else(|| panic!("{sql}: no expectation"));
            assert!(
                expected.matches(reported),
                "{sql}: {expected:?} vs {reported}"
            );
        }
        let disagrees = [
            ("SELECT 1", "DELETE"),
            ("SELECT 1", "SCRIPT"),
            ("SELECT 1", ""),
            ("WITH t AS (SELECT 1 AS x) SELECT x FROM t", "INSERT"),
            ("DELETE FROM t WHERE x = 1", "SELECT"),
            ("SELECT 1; SELECT 2", "SELECT"),
            ("CREATE TABLE t (x INT64)", "DROP_TABLE"),
            (
                "CREATE TEMP FUNCTION f(x INT64) AS (x + 1); SELECT f(1)",
                "DELETE",
            ),
            // A permanent function makes a script.
            (
                "CREATE FUNCTION ds.f(x INT64) AS (x + 1); SELECT ds.f(1)",
                "SELECT",
            ),
        ];
        for (sql, reported) in disagrees {
            let expected = expected(sql).unwrap_or_else(|| panic!("{sql}: no expectation"));
            assert!(
                !expected.matches(reported),
                "{sql}: {expected:?} vs {reported}"
            );
        }
    }
}
