//! The analyze phase: what the SQL of a query request does.
//!
//! The SQL is analyzed with the request's own defaults (the job's project
//! and `defaultDataset`), so unqualified names resolve the way the
//! warehouse will resolve them.

use sluice_sql::{Defaults, QueryFacts};
use sluice_warehouse::QueryRequest;

/// The facts of one query request, as the gateway's analyze phase finds
/// them (also what `sluice policy explain` shows).
pub fn analyze(request: &QueryRequest) -> QueryFacts {
    sluice_sql::analyze(&request.sql, &defaults(request))
}

pub fn defaults(request: &QueryRequest) -> Defaults {
    // Analysis resolves a one-part name to `project.dataset.table` with a
    // single project. When the default dataset lives in another project
    // than the job, one-part names are left unresolved instead, which
    // makes the facts incomplete: fail closed rather than guess.
    let dataset = match &request.default_dataset {
        Some((project, dataset)) if *project == request.default_project => Some(dataset.clone()),
        _ => None,
    };
    Defaults {
        project: request.default_project.clone(),
        dataset,
    }
}

/// The dotted form of a table name in which analysis facts and warehouse
/// references are compared: as written (BigQuery names are
/// case-sensitive), except what BigQuery reads ignoring case in an
/// `INFORMATION_SCHEMA` name: `INFORMATION_SCHEMA` and the view after it
/// in upper case, a `region-…` qualifier before it in lower case.
pub fn comparable(parts: &[&str]) -> String {
    let segments: Vec<&str> = parts.iter().flat_map(|part| part.split('.')).collect();
    let schema = segments
        .iter()
        .position(|segment| segment.eq_ignore_ascii_case("INFORMATION_SCHEMA"));
    segments
        .iter()
        .enumerate()
        .map(|(at, segment)| match schema {
            Some(schema) if at >= schema => segment.to_ascii_uppercase(),
            Some(schema) if at + 1 == schema && is_region(segment) => segment.to_ascii_lowercase(),
            _ => (*segment).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A region qualifier of `INFORMATION_SCHEMA` (`region-us`).
fn is_region(segment: &str) -> bool {
    segment
        .get(..7)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("region-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_warehouse::ParameterMode;

    fn request(sql: &str, default_dataset: Option<(&str, &str)>) -> QueryRequest {
        QueryRequest {
            sql: sql.into(),
            default_project: "demo".into(),
            default_dataset: default_dataset.map(|(p, d)| (p.into(), d.into())),
            parameter_mode: ParameterMode::Named,
            parameters: Vec::new(),
            maximum_bytes_billed: None,
            labels: Default::default(),
            job_timeout_ms: None,
        }
    }

    #[test]
    fn bare_names_resolve_against_the_default_dataset_of_the_same_project_only() {
        let facts = analyze(&request("SELECT * FROM customers", Some(("demo", "shop"))));
        assert!(facts.is_complete());
        assert_eq!(
            facts.reads.iter().next().unwrap().to_string(),
            "demo.shop.customers"
        );
        let facts = analyze(&request("SELECT * FROM customers", Some(("other", "shop"))));
        assert!(!facts.is_complete());
    }

    #[test]
    fn information_schema_compares_across_spellings() {
        assert_eq!(
            comparable(&["demo", "shop", "INFORMATION_SCHEMA.TABLES"]),
            comparable(&["demo", "shop.information_schema", "TABLES"])
        );
        assert_eq!(
            comparable(&["demo", "Region-US.information_schema", "jobs"]),
            "demo.region-us.INFORMATION_SCHEMA.JOBS"
        );
        // Outside INFORMATION_SCHEMA names keep their case.
        assert_eq!(comparable(&["demo", "Shop", "Orders"]), "demo.Shop.Orders");
        assert_eq!(
            comparable(&["demo", "Shop.INFORMATION_SCHEMA", "tables"]),
            "demo.Shop.INFORMATION_SCHEMA.TABLES"
        );
    }
}
