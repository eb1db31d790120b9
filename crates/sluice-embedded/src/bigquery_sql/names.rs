//! Names: table references resolved to `project.dataset.table`, column
//! identifiers made case-insensitive.
//!
//! DataFusion lowercases unquoted identifiers and keeps quoted ones as they
//! are. BigQuery's table names are case-sensitive and its column names are
//! not, so table name parts are always quoted and backtick-quoted column
//! identifiers are unquoted.

use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

use sluice_warehouse::{QueryRequest, WarehouseError};

/// Makes a backtick-quoted column identifier unquoted, so DataFusion
/// matches it case-insensitively like BigQuery does.
pub fn unquote(ident: &mut Ident) {
    if ident.quote_style == Some('`') {
        ident.quote_style = None;
    }
}

/// The CTE names visible at one point of the query, innermost last.
#[derive(Debug, Default)]
pub struct CteScopes(Vec<Vec<String>>);

impl CteScopes {
    pub fn push(&mut self, names: Vec<String>) {
        self.0.push(names);
    }

    pub fn pop(&mut self) {
        self.0.pop();
    }

    fn contains(&self, name: &str) -> bool {
        self.0
            .iter()
            .flatten()
            .any(|cte| cte.eq_ignore_ascii_case(name))
    }
}

/// Rewrites a table reference to exactly three quoted parts, or leaves a
/// CTE reference alone.
pub fn resolve_table(
    name: &mut ObjectName,
    query: &QueryRequest,
    ctes: &CteScopes,
) -> Result<(), WarehouseError> {
    let mut parts: Vec<String> = Vec::new();
    for part in &name.0 {
        let ObjectNamePart::Identifier(ident) = part else {
            return Err(WarehouseError::unsupported(format!("Table name {name}")));
        };
        if ident.quote_style.is_some() {
            // `project.dataset.table` in one pair of backticks.
            parts.extend(ident.value.split('.').map(str::to_string));
        } else {
            parts.push(ident.value.clone());
        }
    }
    if parts.len() == 1 && ctes.contains(&parts[0]) {
        return Ok(());
    }
    let display = parts.join(".");
    if parts.iter().any(|p| p.is_empty()) {
        return Err(WarehouseError::invalid_query(format!(
            "Invalid table name: {display}"
        )));
    }
    if parts.last().is_some_and(|t| t.contains('*')) {
        return Err(WarehouseError::unsupported(format!(
            "Wildcard tables ({display})"
        )));
    }
    let resolved = match parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("INFORMATION_SCHEMA"))
    {
        Some(at) => information_schema(&parts, at, query, &display)?,
        None => match parts.as_slice() {
            [project, dataset, table] => [project.clone(), dataset.clone(), table.clone()],
            [dataset, table] => [
                query.default_project.clone(),
                dataset.clone(),
                table.clone(),
            ],
            [table] => match &query.default_dataset {
                Some((project, dataset)) => [project.clone(), dataset.clone(), table.clone()],
                None => {
                    return Err(WarehouseError::invalid_query(format!(
                        "Table name \"{table}\" missing dataset while no default dataset is set in the request."
                    )));
                }
            },
            _ => {
                return Err(WarehouseError::invalid_query(format!(
                    "Invalid table name: {display}"
                )));
            }
        },
    };
    name.0 = resolved
        .into_iter()
        .map(|part| ObjectNamePart::Identifier(Ident::with_quote('`', part)))
        .collect();
    Ok(())
}

/// `[project.]dataset.INFORMATION_SCHEMA.VIEW` → `[project, dataset,
/// "INFORMATION_SCHEMA.VIEW"]`, the name the warehouse registers it under.
fn information_schema(
    parts: &[String],
    at: usize,
    query: &QueryRequest,
    display: &str,
) -> Result<[String; 3], WarehouseError> {
    let Some(view) = parts.get(at + 1).filter(|_| parts.len() == at + 2) else {
        return Err(WarehouseError::invalid_query(format!(
            "Invalid INFORMATION_SCHEMA view name: {display}"
        )));
    };
    let owner = &parts[..at];
    if owner
        .iter()
        .any(|p| p.to_ascii_lowercase().starts_with("region-"))
    {
        return Err(WarehouseError::unsupported(format!(
            "Region-qualified INFORMATION_SCHEMA views ({display})"
        )));
    }
    let (project, dataset) = match owner {
        [project, dataset] => (project.clone(), dataset.clone()),
        [dataset] => (query.default_project.clone(), dataset.clone()),
        _ => {
            return Err(WarehouseError::unsupported(format!(
                "Project-level INFORMATION_SCHEMA views ({display})"
            )));
        }
    };
    let table = format!("INFORMATION_SCHEMA.{}", view.to_ascii_uppercase());
    Ok([project, dataset, table])
}
