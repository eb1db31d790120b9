//! Fully qualified table names and their resolution against the request's
//! defaults.
//!
//! Names keep the case they were written in. BigQuery dataset and table
//! names are case-sensitive, so `d.Orders` and `d.orders` are different
//! tables here; a policy that wants case-insensitive matching must fold
//! case itself.

use std::fmt;

use crate::facts::Defaults;

const INFORMATION_SCHEMA: &str = "INFORMATION_SCHEMA";

/// The longest name part BigQuery allows (a table name: 1,024 bytes).
const MAX_PART_BYTES: usize = 1024;

/// A fully qualified table (or view) name.
///
/// `INFORMATION_SCHEMA` views keep their qualifier in `dataset`:
/// `region-us.INFORMATION_SCHEMA.JOBS` becomes project = the default
/// project, dataset = `region-us.INFORMATION_SCHEMA`, table = `JOBS`;
/// `d.INFORMATION_SCHEMA.TABLES` becomes dataset `d.INFORMATION_SCHEMA`;
/// `INFORMATION_SCHEMA.SCHEMATA` becomes dataset `INFORMATION_SCHEMA`.
/// Wildcard tables keep their `*` (`events_*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    /// Project id, e.g. `my-project`.
    pub project: String,
    /// Dataset id (see the type's docs for `INFORMATION_SCHEMA`).
    pub dataset: String,
    /// Table, view or `INFORMATION_SCHEMA` view name.
    pub table: String,
}

impl TableName {
    /// A name from its three parts.
    pub fn new(
        project: impl Into<String>,
        dataset: impl Into<String>,
        table: impl Into<String>,
    ) -> Self {
        Self {
            project: project.into(),
            dataset: dataset.into(),
            table: table.into(),
        }
    }

    /// Resolve the dot-separated parts of a name as written (after splitting
    /// quoted parts such as `` `p.d.t` ``) against `defaults`.
    ///
    /// Errors say why the name cannot be resolved.
    pub fn resolve(parts: &[&str], defaults: &Defaults) -> Result<Self, String> {
        let written = parts.join(".");
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!("table name `{written}` has an empty part"));
        }
        if let Some((table, qualifiers)) = parts.split_last() {
            for part in qualifiers {
                check_part(part, false, &written)?;
            }
            check_part(table, true, &written)?;
        }
        if let Some(at) = parts
            .iter()
            .position(|p| p.eq_ignore_ascii_case(INFORMATION_SCHEMA))
        {
            return Self::resolve_information_schema(parts, at, defaults, &written);
        }
        match parts {
            [project, dataset, table] => Ok(Self::new(*project, *dataset, *table)),
            [dataset, table] => Ok(Self::new(defaults.project.as_str(), *dataset, *table)),
            [table] => match &defaults.dataset {
                Some(dataset) => Ok(Self::new(
                    defaults.project.as_str(),
                    dataset.as_str(),
                    *table,
                )),
                None => Err(format!(
                    "table `{written}` has no dataset and the request has no default dataset"
                )),
            },
            _ => Err(format!("table name `{written}` has too many parts")),
        }
    }

    fn resolve_information_schema(
        parts: &[&str],
        at: usize,
        defaults: &Defaults,
        written: &str,
    ) -> Result<Self, String> {
        let (qualifier, rest) = parts.split_at(at);
        let [schema, view] = rest else {
            return Err(format!(
                "`{written}` does not name one INFORMATION_SCHEMA view"
            ));
        };
        let (project, dataset) = match qualifier {
            [] => (defaults.project.as_str(), (*schema).to_owned()),
            [scope] => (defaults.project.as_str(), format!("{scope}.{schema}")),
            [project, scope] => (*project, format!("{scope}.{schema}")),
            _ => return Err(format!("table name `{written}` has too many parts")),
        };
        Ok(Self::new(project, dataset, *view))
    }

    /// True for an `INFORMATION_SCHEMA` view.
    pub fn is_information_schema(&self) -> bool {
        self.dataset
            .rsplit('.')
            .next()
            .is_some_and(|last| last.eq_ignore_ascii_case(INFORMATION_SCHEMA))
    }

    /// True for a wildcard table (`events_*`).
    pub fn is_wildcard(&self) -> bool {
        self.table.ends_with('*')
    }
}

/// Why `part` of the name `written` cannot be trusted to name what
/// BigQuery will resolve, if it cannot.
///
/// BigQuery decodes backslash escapes in quoted names (`` `a\x41` `` is
/// `aA`) and the parser does not, so a name with a backslash is not
/// analyzed. Otherwise a part may hold no more than BigQuery allows in a
/// table name: letters and digits of any script, `_`, `-` and inner
/// spaces; a `*` only at the end of a table (a wildcard table, when
/// `wildcard` is true). Control characters, quotes, `$` partition
/// decorators, leading or trailing spaces and the like would let
/// analysis and the warehouse read one name as two different things.
/// Project and dataset names allow less than this; a name BigQuery
/// rejects cannot run, so the looser check loses nothing.
pub(crate) fn check_part(part: &str, wildcard: bool, written: &str) -> Result<(), String> {
    if part.contains('\\') {
        return Err(format!(
            "name `{written}` holds a backslash escape, which analysis does not decode"
        ));
    }
    if part.len() > MAX_PART_BYTES {
        return Err(format!(
            "a part of name `{written}` is longer than BigQuery allows ({MAX_PART_BYTES} bytes)"
        ));
    }
    if part.trim() != part {
        return Err(format!(
            "name `{written}` has a part with leading or trailing space"
        ));
    }
    let last = part.len().saturating_sub(1);
    let bad = part.char_indices().find(|&(at, c)| {
        let allowed = c.is_alphanumeric()
            || matches!(c, '_' | '-' | ' ')
            || (c == '*' && wildcard && at == last);
        !allowed
    });
    match bad {
        Some((_, c)) => Err(format!(
            "name `{written}` contains {c:?}, which BigQuery does not allow there"
        )),
        None => Ok(()),
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.project, self.dataset, self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults(dataset: Option<&str>) -> Defaults {
        Defaults {
            project: "home".to_owned(),
            dataset: dataset.map(str::to_owned),
        }
    }

    fn resolved(parts: &[&str], dataset: Option<&str>) -> String {
        match TableName::resolve(parts, &defaults(dataset)) {
            Ok(name) => name.to_string(),
            Err(why) => format!("error: {why}"),
        }
    }

    #[test]
    fn three_parts_are_kept_as_written() {
        assert_eq!(
            resolved(&["Other-Proj", "Sales", "Orders"], None),
            "Other-Proj.Sales.Orders"
        );
    }

    #[test]
    fn two_parts_take_the_default_project() {
        assert_eq!(resolved(&["sales", "orders"], None), "home.sales.orders");
    }

    #[test]
    fn one_part_takes_the_default_dataset() {
        assert_eq!(resolved(&["orders"], Some("shop")), "home.shop.orders");
    }

    #[test]
    fn one_part_without_default_dataset_is_an_error() {
        assert!(resolved(&["orders"], None).starts_with("error: "));
    }

    #[test]
    fn empty_and_extra_parts_are_errors() {
        assert!(resolved(&["a", "", "c"], None).starts_with("error: "));
        assert!(resolved(&["a", "b", "c", "d"], None).starts_with("error: "));
    }

    #[test]
    fn region_information_schema() {
        let name = TableName::resolve(
            &["region-us", "INFORMATION_SCHEMA", "JOBS"],
            &defaults(None),
        )
        .expect("resolves");
        assert_eq!(name.to_string(), "home.region-us.INFORMATION_SCHEMA.JOBS");
        assert!(name.is_information_schema());
        assert_eq!(
            resolved(&["p", "region-eu", "information_schema", "JOBS"], None),
            "p.region-eu.information_schema.JOBS"
        );
    }

    #[test]
    fn dataset_and_project_information_schema() {
        assert_eq!(
            resolved(&["shop", "INFORMATION_SCHEMA", "TABLES"], None),
            "home.shop.INFORMATION_SCHEMA.TABLES"
        );
        assert_eq!(
            resolved(&["INFORMATION_SCHEMA", "SCHEMATA"], None),
            "home.INFORMATION_SCHEMA.SCHEMATA"
        );
        assert!(resolved(&["a", "b", "c", "INFORMATION_SCHEMA", "X"], None).starts_with("error: "));
        assert!(resolved(&["INFORMATION_SCHEMA"], None).starts_with("error: "));
    }

    #[test]
    fn names_bigquery_would_read_differently_are_errors() {
        for parts in [
            &["shop", "a\\nb"][..],
            &["shop", "a\\`b"],
            &["shop", "a\nb"],
            &["shop", "a\u{0}b"],
            &["shop", " orders"],
            &["shop", "orders "],
            &["shop", "t$20240101"],
            &["shop", "a'b"],
            &["sh*p", "orders"],
            &["shop", "ev*nts"],
            &["p:q", "shop", "orders"],
        ] {
            let got = resolved(parts, None);
            assert!(got.starts_with("error: "), "{parts:?}: {got}");
        }
        assert!(resolved(&["shop", &"x".repeat(1025)], None).starts_with("error: "));
    }

    #[test]
    fn names_bigquery_allows_resolve() {
        assert_eq!(
            resolved(&["shop", "kundenbestände"], None),
            "home.shop.kundenbestände"
        );
        assert_eq!(resolved(&["shop", "my table"], None), "home.shop.my table");
        assert_eq!(resolved(&["shop", "events_*"], None), "home.shop.events_*");
        assert_eq!(
            resolved(&["other-proj", "shop", "orders-2024"], None),
            "other-proj.shop.orders-2024"
        );
    }

    #[test]
    fn plain_tables_are_not_information_schema_or_wildcards() {
        let name = TableName::new("p", "d", "information_schema_copy");
        assert!(!name.is_information_schema());
        assert!(!name.is_wildcard());
        assert!(TableName::new("p", "d", "events_*").is_wildcard());
    }
}
