//! Table patterns of `allow.read` and `allow.write`.
//!
//! A pattern is 1 to 4 dot-separated segments, each a glob in which `*`
//! matches any run of characters *within* the segment (never a dot). A
//! pattern names a prefix of a table's path, so it grants everything under
//! it:
//!
//! | pattern          | grants                                             |
//! |------------------|----------------------------------------------------|
//! | `demo`           | the whole project, its `INFORMATION_SCHEMA` views included (not the guarded names below) |
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
//! must be written literally (`demo.region-us.INFORMATION_SCHEMA.TABLES`).
//! `INFORMATION_SCHEMA`, `region-…` qualifiers and the view names after
//! `INFORMATION_SCHEMA` are matched case-insensitively, as BigQuery treats
//! them; every other segment is case-sensitive.
//!
//! Two kinds of name are granted only by a pattern that writes them out,
//! not by a `*` and not by a shorter prefix, because under a credential
//! shared by several principals they hold what the others did:
//!
//! - a dataset whose name begins with `_`: BigQuery keeps query results
//!   in such hidden, anonymous datasets (`demo._a1b2c3.anon…`), so only
//!   `demo._a1b2c3` (or longer) grants it, never `demo`, `demo.*` or
//!   `demo._*`;
//! - the job views of `INFORMATION_SCHEMA` (`JOBS`, `JOBS_BY_USER`,
//!   `JOBS_BY_PROJECT`, `JOBS_BY_FOLDER`, `JOBS_BY_ORGANIZATION`,
//!   `JOBS_TIMELINE…`): every job's SQL and who ran it, so only
//!   `demo.region-us.INFORMATION_SCHEMA.JOBS` grants that view, never
//!   `demo`, `demo.region-us`, `demo.region-us.INFORMATION_SCHEMA` or
//!   `….INFORMATION_SCHEMA.JOBS*`.
//!
//! A wildcard table read (`events_*`) is matched as its literal text, so
//! `demo.shop.*` and `demo.shop.events_*` grant it but
//! `demo.shop.events_2024` does not: a grant of some tables never widens to
//! every table sharing a prefix.

use std::fmt;

use sluice_sql::TableName;

use sluice_glob::{glob_match, glob_match_ignore_case};

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

    /// The first part: the project (a glob).
    pub(crate) fn project(&self) -> &str {
        &self.segments[0]
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
            [_] => self.matches_path(&[project, dataset]),
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
        if self.segments.len() > path.len() || !self.writes_out_guarded(path) {
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

    /// True when every guarded segment of `path` (see the module docs)
    /// faces a pattern segment without `*`; the segment loop then
    /// compares the two literally.
    fn writes_out_guarded(&self, path: &[&str]) -> bool {
        guarded_positions(path).all(|at| {
            self.segments
                .get(at)
                .is_some_and(|segment| !segment.contains('*'))
        })
    }
}

/// The positions in `path` that only a literal pattern segment grants: a
/// dataset beginning with `_` (an anonymous dataset of query results) and
/// a `JOBS…` view after `INFORMATION_SCHEMA`.
fn guarded_positions<'p>(path: &'p [&str]) -> impl Iterator<Item = usize> + 'p {
    let anonymous_dataset = path.get(1).is_some_and(|d| d.starts_with('_'));
    let jobs_view = path
        .windows(2)
        .position(|pair| pair[0].eq_ignore_ascii_case(INFORMATION_SCHEMA) && is_jobs_view(pair[1]));
    anonymous_dataset
        .then_some(1)
        .into_iter()
        .chain(jobs_view.map(|at| at + 1))
}

/// An `INFORMATION_SCHEMA` view of job history: `JOBS`, `JOBS_BY_…`,
/// `JOBS_TIMELINE…` (case-insensitive, as BigQuery reads view names).
fn is_jobs_view(view: &str) -> bool {
    view.get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("JOBS"))
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
        let tables = "demo.region-us.INFORMATION_SCHEMA.TABLES";
        assert!(!grants("demo.*", tables));
        assert!(!grants("demo.reg*", tables));
        assert!(!grants("*.*.*.*", tables));
        assert!(!grants("demo.region-us.*", tables));
        assert!(grants("demo.region-us.INFORMATION_SCHEMA.TABLES", tables));
        assert!(grants("demo.REGION-US.information_schema", tables));
        assert!(grants("demo.region-us", tables));
        // The whole project is the whole project (job views aside, below).
        assert!(grants("demo", tables));
        let schemata = "demo.INFORMATION_SCHEMA.SCHEMATA";
        assert!(!grants("demo.*", schemata));
        assert!(!grants("demo.*.*", schemata));
        assert!(grants("demo.INFORMATION_SCHEMA", schemata));
        assert!(grants("demo.INFORMATION_SCHEMA.SCHEMATA", schemata));
        assert!(grants("demo", schemata));
    }

    /// Under a shared credential the job views hold every principal's SQL:
    /// neither a `*` nor a shorter prefix grants them, only the view's name.
    #[test]
    fn job_views_are_granted_only_by_their_literal_name() {
        for view in [
            "JOBS",
            "JOBS_BY_USER",
            "JOBS_BY_PROJECT",
            "JOBS_BY_FOLDER",
            "JOBS_BY_ORGANIZATION",
            "JOBS_TIMELINE",
            "JOBS_TIMELINE_BY_USER",
            "jobs_by_project",
        ] {
            for scope in ["region-us", "REGION-europe-west1", "shop"] {
                let table = format!("demo.{scope}.INFORMATION_SCHEMA.{view}");
                for wide in [
                    "*",
                    "demo",
                    &format!("demo.{scope}"),
                    &format!("demo.{scope}.INFORMATION_SCHEMA"),
                    &format!("demo.{scope}.INFORMATION_SCHEMA.*"),
                    &format!("demo.{scope}.INFORMATION_SCHEMA.JOBS*"),
                    &format!("demo.{scope}.INFORMATION_SCHEMA.J*"),
                ] {
                    assert!(!grants(wide, &table), "{wide} must not grant {table}");
                }
                let literal = format!("demo.{scope}.information_schema.{view}");
                assert!(grants(&literal, &table), "{literal} grants {table}");
            }
            let project_level = format!("demo.INFORMATION_SCHEMA.{view}");
            assert!(!grants("demo", &project_level));
            assert!(!grants("demo.INFORMATION_SCHEMA", &project_level));
            assert!(grants(&project_level, &project_level));
        }
        // A literal grant of one view is not a grant of another.
        assert!(!grants(
            "demo.region-us.INFORMATION_SCHEMA.JOBS",
            "demo.region-us.INFORMATION_SCHEMA.JOBS_BY_PROJECT"
        ));
        // Other views keep the prefix rule.
        assert!(grants(
            "demo.region-us.INFORMATION_SCHEMA",
            "demo.region-us.INFORMATION_SCHEMA.SCHEMATA"
        ));
    }

    /// BigQuery keeps query results in hidden datasets named `_…`: only a
    /// pattern naming the dataset grants them.
    #[test]
    fn anonymous_datasets_are_granted_only_by_their_literal_name() {
        let result = "proj._a1b2c3d4.anon_e5f6";
        for wide in [
            "*",
            "proj",
            "proj.*",
            "proj.*.*",
            "*.*.*",
            "proj._*",
            "proj._*.*",
        ] {
            assert!(!grants(wide, result), "{wide} must not grant {result}");
        }
        assert!(grants("proj._a1b2c3d4", result));
        assert!(grants("proj._a1b2c3d4.*", result));
        assert!(grants("proj._a1b2c3d4.anon_e5f6", result));
        assert!(!grants("proj._a1b2c3d4.*", "proj._a1b2c3d5.anon_e5f6"));
        assert!(!grants(
            "proj._a1b2c3d4",
            "proj._a1b2c3d4.INFORMATION_SCHEMA.JOBS"
        ));
        // Listing and whole-dataset grants follow the same rule.
        assert!(!pattern("proj").matches_dataset("proj", "_a1b2c3d4"));
        assert!(!pattern("proj.*").matches_dataset("proj", "_a1b2c3d4"));
        assert!(pattern("proj._a1b2c3d4.*").matches_dataset("proj", "_a1b2c3d4"));
        assert!(!pattern("proj").matches_whole_dataset("proj", "_x"));
        assert!(pattern("proj._x").matches_whole_dataset("proj", "_x"));
        // An underscore elsewhere is an ordinary name.
        assert!(grants("proj.*", "proj.shop._staging"));
        assert!(grants("proj.shop_*", "proj.shop_2024.t"));
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
