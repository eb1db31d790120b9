//! The estimate phase: the warehouse's dry run of a query — bytes it would
//! process, tables and routines it reads, its statement type — cross-checked
//! against the analysis, so that a decision is never made on the wrong
//! facts. With `dry_run: when_needed`, a plain query whose analysis is
//! complete runs without a dry run, and the same cross-check is made on
//! the finished job before any row leaves ([`check_finished`]).

use sluice_sql::{ObjectKind, QueryFacts, RoutineName, StatementKind};
use sluice_warehouse::{DryRun, QueryOutcome, QueryRequest, RoutineRef, WarehouseErrorKind};

use crate::Gateway;
use crate::analyze::comparable;
use crate::authenticate::Principal;
use crate::config::DryRunMode;
use crate::error::GatewayError;
use crate::pipeline::QueryContext;

/// Whether the query may run without a dry run: `dry_run: when_needed`,
/// one query statement (a `SELECT`), fully analyzed. Nothing in policy
/// needs the estimate then: the byte limit becomes the job's
/// `maximumBytesBilled`, which BigQuery enforces.
pub fn may_skip(gateway: &Gateway, query: &QueryContext) -> bool {
    let when_needed = gateway
        .config
        .upstream
        .as_ref()
        .is_some_and(|u| u.dry_run == DryRunMode::WhenNeeded);
    when_needed
        && query.facts.is_complete()
        && query.facts.syntax_error.is_none()
        && matches!(query.facts.statements.as_slice(), [one] if one.kind == StatementKind::Query)
}

/// The dry run, cross-checked against the analysis.
pub async fn dry_run(
    gateway: &Gateway,
    principal: &Principal,
    query: &QueryContext,
) -> Result<DryRun, GatewayError> {
    // The dry run's token serves this one call and dies with it.
    let call = gateway.credentials.access_once(principal).await?;
    let plan = gateway
        .warehouse
        .dry_run(&call.access, &query.request)
        .await
        .map_err(|err| match err.kind {
            // Statistics Sluice cannot read are a refusal, not a failure a
            // client would retry: the decision cannot be made.
            WarehouseErrorKind::Internal => {
                tracing::warn!(principal = %principal.verified.name, error = %err.message, "unreadable dry run");
                GatewayError::access_denied(format!(
                    "Access Denied: check analysis.cross_check: the warehouse's dry run answered with statistics Sluice \
                     could not read ({}), so the query was not run. Report it to the Sluice administrators.",
                    crate::exit::scrub(&err.message)
                ))
            }
            _ => GatewayError::from(err),
        })?;
    drop(call);
    cross_check(
        &query.facts,
        &plan,
        &principal.verified.name,
        require_tables(gateway),
    )?;
    Ok(plan)
}

/// Whether a warehouse report that lists no table is a failed cross-check
/// (real BigQuery always lists them).
pub fn require_tables(gateway: &Gateway) -> bool {
    gateway
        .config
        .upstream
        .as_ref()
        .is_some_and(|u| u.require_referenced_tables)
}

/// The cross-check of a job that ran without a dry run: the finished job's
/// referenced tables, routines and statement type against the analysis of
/// the SQL it ran. A mismatch fails the job: no row of it leaves.
pub fn check_finished(
    request: &QueryRequest,
    outcome: &QueryOutcome,
    who: &str,
    require_tables: bool,
) -> Result<(), GatewayError> {
    let facts = crate::analyze::analyze(request);
    let reported = DryRun {
        schema: outcome.schema.clone(),
        total_bytes_processed: outcome.total_bytes_processed,
        referenced_tables: outcome.referenced_tables.clone(),
        referenced_routines: outcome.referenced_routines.clone(),
        statement_type: outcome.statement_type.clone(),
    };
    cross_check(&facts, &reported, who, require_tables)
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
    principal: &str,
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
        tracing::warn!(%principal, tables, "too many tables to cross-check");
        return Err(GatewayError::access_denied(format!(
            "Access Denied: check analysis.cross_check: the query reads {tables} tables, and BigQuery's dry run \
             lists a query's tables completely only below {LISTED_TABLES_LIMIT}, so Sluice cannot confirm its analysis \
             and the query was not run. Split the query so that each part reads fewer than {LISTED_TABLES_LIMIT} tables."
        )));
    }
    if require_tables && plan.referenced_tables.is_empty() && listable > 0 {
        tracing::warn!(%principal, "the dry run listed no tables");
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
        tracing::warn!(%principal, reported = %plan.statement_type, expected = ?expected, "the warehouse reports another kind of statement");
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
            tracing::warn!(%principal, table = %reported, "the warehouse reports a table analysis did not find");
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
            tracing::warn!(%principal, routine = %routine, "the warehouse reports a routine analysis did not find");
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
