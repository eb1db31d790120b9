//! Table patterns of `allow.read` and `allow.write`.
//!
//! A pattern is 1 to 4 dot-separated segments, each a glob in which `*`
//! matches any run of characters *within* the segment (never a dot). A
//! pattern names a prefix of a table's path, so it grants everything under
//! it:
//!
//! | pattern          | grants                                             |
//! |------------------|----------------------------------------------------|
//! | `demo`           | the whole project, its `INFORMATION_SCHEMA` views included |
//! | `demo.shop`      | the whole dataset, its `INFORMATION_SCHEMA` included |
//! | `demo.shop.*`    | every table of the dataset (not its `INFORMATION_SCHEMA`) |
//! | `demo.public_*`  | every dataset whose name starts with `public_` (whole) |
//!
//! A table's path is `[project, dataset, table]`, or for an
//! `INFORMATION_SCHEMA` view `[project, dataset-or-region,
//! INFORMATION_SCHEMA, view]` or `[project, INFORMATION_SCHEMA, view]`.
//!
//! Metadata is never granted by accident: a segment containing `*` never
//! matches an `INFORMATION_SCHEMA` segment or a `region-…` segment; those
//! must be written literally (`demo.region-us.INFORMATION_SCHEMA.JOBS`),
//! so `demo.*` does not grant the project's job history. `INFORMATION_SCHEMA`,
//! `region-…` qualifiers and the view names after `INFORMATION_SCHEMA` are
//! matched case-insensitively, as BigQuery treats them; every other segment
//! is case-sensitive.
//!
//! A wildcard table read (`events_*`) is matched as its literal text, so
//! `demo.shop.*` and `demo.shop.events_*` grant it but
//! `demo.shop.events_2024` does not: a grant of some tables never widens to
//! every table sharing a prefix.

use std::fmt;

use sluice_sql::TableName;

use crate::glob::{glob_match, glob_match_ignore_case};

const INFORMATION_SCHEMA: &str = "INFORMATION_SCHEMA";
const MAX_SEGMENTS: usize = 4;

/// A validated table pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TablePattern {
    text: String,
    segments: Vec<String>,
}

impl TablePattern {
    /// Validate `text`; the error says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty table pattern".to_owned());
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.len() > MAX_SEGMENTS {
            return Err(format!(
                "`{text}` has {} segments; a table pattern has 1 to {MAX_SEGMENTS} (project.dataset.table, or project.dataset.INFORMATION_SCHEMA.view)",
                segments.len()
            ));
        }
        for (index, segment) in segments.iter().enumerate() {
            if segment.is_empty() {
                return Err(format!("`{text}` has an empty segment {}", index + 1));
            }
            if let Some(bad) = segment
                .chars()
                .find(|&c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '*' | '$')))
            {
                return Err(format!(
                    "`{text}` contains `{bad}`; segments may contain only letters, digits, `_`, `-`, `$` and the wildcard `*`"
                ));
            }
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// The pattern as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the pattern grants `table`.
    pub(crate) fn matches_table(&self, table: &TableName) -> bool {
        let mut path: Vec<&str> = Vec::with_capacity(4);
        path.push(&table.project);
        path.extend(table.dataset.split('.'));
        path.push(&table.table);
        self.matches_path(&path)
    }

    /// True when the pattern grants something in `project.dataset`
    /// (the pattern stops at the project, or its dataset segment matches).
    pub(crate) fn matches_dataset(&self, project: &str, dataset: &str) -> bool {
        match self.segments.as_slice() {
            [_] => self.matches_path(&[project]),
            _ => Self::new_prefix(&self.segments[..2]).matches_path(&[project, dataset]),
        }
    }

    /// True when the pattern grants the whole dataset `project.dataset`
    /// (it stops at the project or the dataset), as creating, altering or
    /// dropping the dataset needs.
    pub(crate) fn matches_whole_dataset(&self, project: &str, dataset: &str) -> bool {
        self.segments.len() <= 2 && self.matches_path(&[project, dataset])
    }

    /// True when the pattern grants something in `project`.
    pub(crate) fn matches_project(&self, project: &str) -> bool {
        Self::new_prefix(&self.segments[..1]).matches_path(&[project])
    }

    fn new_prefix(segments: &[String]) -> Self {
        Self {
            text: segments.join("."),
            segments: segments.to_vec(),
        }
    }

    /// Prefix matching: the pattern has no more segments than the path and
    /// each segment matches the path segment at the same position.
    fn matches_path(&self, path: &[&str]) -> bool {
        if self.segments.len() > path.len() {
            return false;
        }
        let mut inside_information_schema = false;
        for (pattern, segment) in self.segments.iter().zip(path) {
            let metadata = segment.eq_ignore_ascii_case(INFORMATION_SCHEMA) || is_region(segment);
            let matched = if pattern.contains('*') {
                if metadata {
                    false
                } else if inside_information_schema {
                    glob_match_ignore_case(pattern, segment)
                } else {
                    glob_match(pattern, segment)
                }
            } else if metadata || inside_information_schema {
                pattern.eq_ignore_ascii_case(segment)
            } else {
                pattern == segment
            };
            if !matched {
                return false;
            }
            inside_information_schema |= segment.eq_ignore_ascii_case(INFORMATION_SCHEMA);
        }
        true
    }
}

impl fmt::Display for TablePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A region qualifier of `INFORMATION_SCHEMA` (`region-us`, `region-europe-west1`).
fn is_region(segment: &str) -> bool {
    segment
        .get(..7)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("region-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> TablePattern {
        TablePattern::parse(text).expect("valid pattern")
    }

    fn table(text: &str) -> TableName {
        // Split like sluice-sql does: the last part is the table, the first
        // the project, anything between is the dataset (with its qualifier).
        let parts: Vec<&str> = text.split('.').collect();
        let (project, rest) = parts.split_first().expect("non-empty");
        let (table, dataset) = rest.split_last().expect("has a table");
        TableName::new(*project, dataset.join("."), *table)
    }

    fn grants(pattern_text: &str, table_text: &str) -> bool {
        pattern(pattern_text).matches_table(&table(table_text))
    }

    #[test]
    fn prefix_semantics() {
        assert!(grants("demo", "demo.shop.orders"));
        assert!(grants("demo.shop", "demo.shop.orders"));
        assert!(grants("demo.shop.*", "demo.shop.orders"));
        assert!(grants("demo.shop.orders", "demo.shop.orders"));
        assert!(!grants("demo.shop.orders", "demo.shop.orders_v2"));
        assert!(!grants("demo.shop", "demo.shopping.orders"));
        assert!(!grants("demo", "demo2.shop.orders"));
        assert!(grants("demo.public_*", "demo.public_weather.daily"));
        assert!(!grants("demo.public_*", "demo.private.daily"));
        assert!(grants("*", "anyproject.any.table"));
        assert!(grants("*.shop.*", "p1.shop.t"));
    }

    #[test]
    fn star_never_crosses_a_dot() {
        assert!(!grants("demo.*.orders", "demo.a.b.orders"));
        assert!(!grants("demo.sh*rders", "demo.shop.orders"));
        assert!(grants("demo.s*.o*", "demo.shop.orders"));
    }

    #[test]
    fn matching_is_case_sensitive_for_ordinary_names() {
        assert!(!grants("demo.Shop", "demo.shop.orders"));
        assert!(!grants("demo.shop.Orders", "demo.shop.orders"));
        assert!(!grants("Demo", "demo.shop.orders"));
    }

    #[test]
    fn more_segments_than_the_name_never_match() {
        assert!(!grants("demo.shop.orders.x", "demo.shop.orders"));
        assert!(grants(
            "demo.shop.INFORMATION_SCHEMA.TABLES",
            "demo.shop.INFORMATION_SCHEMA.TABLES"
        ));
    }

    #[test]
    fn dataset_information_schema() {
        // The whole dataset includes its INFORMATION_SCHEMA …
        assert!(grants("demo.shop", "demo.shop.INFORMATION_SCHEMA.TABLES"));
        assert!(grants("demo", "demo.shop.INFORMATION_SCHEMA.TABLES"));
        // … but "every table" does not.
        assert!(!grants(
            "demo.shop.*",
            "demo.shop.INFORMATION_SCHEMA.TABLES"
        ));
        assert!(!grants("demo.*.*", "demo.shop.INFORMATION_SCHEMA.TABLES"));
        assert!(grants(
            "demo.shop.INFORMATION_SCHEMA",
            "demo.shop.INFORMATION_SCHEMA.COLUMNS"
        ));
        assert!(grants(
            "demo.shop.information_schema.tables",
            "demo.shop.INFORMATION_SCHEMA.TABLES"
        ));
        assert!(grants(
            "demo.shop.INFORMATION_SCHEMA.COLUMN*",
            "demo.shop.information_schema.column_field_paths"
        ));
        assert!(!grants(
            "demo.shop.INFORMATION_SCHEMA.TABLES",
            "demo.shop.INFORMATION_SCHEMA.COLUMNS"
        ));
    }

    #[test]
    fn region_and_project_information_schema_must_be_written_literally() {
        let jobs = "demo.region-us.INFORMATION_SCHEMA.JOBS";
        assert!(!grants("demo.*", jobs));
        assert!(!grants("demo.reg*", jobs));
        assert!(!grants("*.*.*.*", jobs));
        assert!(!grants("demo.region-us.*", jobs));
        assert!(grants("demo.region-us.INFORMATION_SCHEMA.JOBS", jobs));
        assert!(grants("demo.REGION-US.information_schema", jobs));
        assert!(grants("demo.region-us", jobs));
        // The whole project is the whole project.
        assert!(grants("demo", jobs));
        let schemata = "demo.INFORMATION_SCHEMA.SCHEMATA";
        assert!(!grants("demo.*", schemata));
        assert!(!grants("demo.*.*", schemata));
        assert!(grants("demo.INFORMATION_SCHEMA", schemata));
        assert!(grants("demo.INFORMATION_SCHEMA.SCHEMATA", schemata));
        assert!(grants("demo", schemata));
    }

    #[test]
    fn wildcard_tables_are_matched_as_written() {
        assert!(grants("demo.shop.*", "demo.shop.events_*"));
        assert!(grants("demo.shop.events_*", "demo.shop.events_*"));
        assert!(grants("demo.shop.e*", "demo.shop.events_*"));
        assert!(!grants("demo.shop.events_2024", "demo.shop.events_*"));
        assert!(!grants("demo.shop.events_2*", "demo.shop.events_*"));
        assert!(!grants("demo.shop.*_public", "demo.shop.events_*"));
    }

    #[test]
    fn validation() {
        assert!(TablePattern::parse("").is_err());
        assert!(TablePattern::parse("demo..orders").is_err());
        assert!(TablePattern::parse("demo.shop.").is_err());
        assert!(TablePattern::parse("a.b.c.d.e").is_err());
        assert!(TablePattern::parse("demo.shop.orders;drop").is_err());
        assert!(TablePattern::parse("demo.shop.or ders").is_err());
        assert!(TablePattern::parse("`demo.shop`").is_err());
        assert!(TablePattern::parse("demo.shop?").is_err());
        for good in [
            "demo",
            "my-proj.ds_1.t$20240101",
            "a.b.c.d",
            "*",
            "dé.шоп.*",
        ] {
            assert!(TablePattern::parse(good).is_ok(), "{good}");
        }
        let message = TablePattern::parse("demo.sh op").unwrap_err();
        assert!(message.contains("` `"), "{message}");
    }

    #[test]
    fn datasets_and_projects() {
        let p = pattern("demo.shop.*");
        assert!(p.matches_dataset("demo", "shop"));
        assert!(!p.matches_dataset("demo", "other"));
        assert!(!p.matches_dataset("other", "shop"));
        assert!(p.matches_project("demo"));
        assert!(!p.matches_project("demo2"));
        assert!(pattern("demo").matches_dataset("demo", "anything"));
        assert!(pattern("demo.public_*").matches_dataset("demo", "public_x"));
        assert!(!pattern("demo.public_*").matches_dataset("demo", "private"));
        assert!(pattern("*").matches_project("x"));
        assert!(pattern("demo").matches_whole_dataset("demo", "new"));
        assert!(pattern("demo.scratch_*").matches_whole_dataset("demo", "scratch_1"));
        assert!(!pattern("demo.scratch.*").matches_whole_dataset("demo", "scratch"));
        assert!(!pattern("demo").matches_whole_dataset("other", "new"));
    }
}
