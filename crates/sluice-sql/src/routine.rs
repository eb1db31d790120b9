//! Routines: what a called name is.
//!
//! A query that calls a persistent function, table function or procedure
//! runs code analysis cannot see (its body, its language, the connection
//! of a remote function), and some built-in functions are billed per row
//! or per call outside `maximumBytesBilled` (the `AI.…` and most `ML.…`
//! functions send rows to a model or an endpoint). Both are
//! [`RoutineName`]s, which policy allows by name only.
//!
//! A one-part name is a built-in or a temporary function of the same
//! request: BigQuery resolves a persistent routine only by its dataset.
//! A dotted name is a built-in only when its first part is one of the
//! namespaces BigQuery's own functions use; anything else dotted is a
//! persistent routine, so an unknown namespace fails closed.

use std::fmt;

use crate::facts::Defaults;
use crate::name::check_part;

/// Namespaces of BigQuery built-in functions written with a dot, whose
/// functions compute on their arguments and nothing else: `NET.HOST`,
/// `HLL_COUNT.MERGE`, `KLL_QUANTILES.EXTRACT_INT64`, `KEYS.NEW_KEYSET`,
/// `AEAD.ENCRYPT`, `D3A_COUNT.EXTRACT`. (Geography `ST_…`, `S2_…` and the
/// `DLP_…` encryption functions are one-part names, built-ins already.)
const BUILT_IN_NAMESPACES: &[&str] = &[
    "NET",
    "HLL_COUNT",
    "KLL_QUANTILES",
    "KEYS",
    "AEAD",
    "D3A_COUNT",
];

/// Namespaces of built-in functions that may call a model, a connection
/// or an endpoint and be billed for it apart from the bytes the query
/// scans (`AI.GENERATE`, `ML.GENERATE_TEXT`), or reach Cloud Storage
/// through a connection (`OBJ.GET_ACCESS_URL`). Their calls are
/// [`RoutineName::BuiltIn`]s, named `NAMESPACE.FUNCTION` in upper case.
pub const SPENDING_NAMESPACES: &[&str] = &["AI", "ML", "OBJ"];

/// `ML.…` functions that only compute on their arguments (feature
/// preprocessing and vector math); every other `ML.…` function is a
/// spending routine.
const ARGUMENT_ONLY_ML_FUNCTIONS: &[&str] = &[
    "BAG_OF_WORDS",
    "BUCKETIZE",
    "DISTANCE",
    "FEATURE_CROSS",
    "HASH_BUCKETIZE",
    "IMPUTER",
    "LABEL_ENCODER",
    "LP_NORM",
    "MAX_ABS_SCALER",
    "MIN_MAX_SCALER",
    "MULTI_HOT_ENCODER",
    "NGRAMS",
    "NORMALIZER",
    "ONE_HOT_ENCODER",
    "POLYNOMIAL_EXPAND",
    "QUANTILE_BUCKETIZE",
    "ROBUST_SCALER",
    "STANDARD_SCALER",
    "TF_IDF",
];

/// The prefix that makes any built-in return `NULL` instead of an error.
const SAFE: &str = "SAFE";

/// A routine a request calls, which policy allows by name only
/// (`allow.routines`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoutineName {
    /// A persistent function, table function or procedure, resolved
    /// against the request's default project; case kept as written.
    Persistent {
        /// Project id.
        project: String,
        /// Dataset id.
        dataset: String,
        /// Routine id.
        name: String,
    },
    /// A built-in function billed outside the query's byte limit,
    /// upper-cased: `ML.GENERATE_TEXT`, `AI.GENERATE`.
    BuiltIn(String),
}

impl RoutineName {
    /// A persistent routine from its three parts.
    pub fn persistent(
        project: impl Into<String>,
        dataset: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self::Persistent {
            project: project.into(),
            dataset: dataset.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for RoutineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Persistent {
                project,
                dataset,
                name,
            } => write!(f, "{project}.{dataset}.{name}"),
            Self::BuiltIn(name) => f.write_str(name),
        }
    }
}

/// What a called name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Callee {
    /// A built-in function, or a temporary function of the request.
    BuiltIn,
    /// `EXTERNAL_QUERY`: SQL run on a federated database.
    ExternalQuery,
    /// A routine policy must allow by name.
    Routine(RoutineName),
}

/// Classify a called name, given as its dot-separated parts (quoted parts
/// already split at their dots). Errors say why the name cannot be read.
pub(crate) fn callee(parts: &[&str], defaults: &Defaults) -> Result<Callee, String> {
    let written = parts.join(".");
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("function name `{written}` has an empty part"));
    }
    let parts = match parts {
        [safe, rest @ ..] if !rest.is_empty() && safe.eq_ignore_ascii_case(SAFE) => rest,
        _ => parts,
    };
    let is_in = |list: &[&str], part: &str| list.iter().any(|n| n.eq_ignore_ascii_case(part));
    match parts {
        [one] if one.eq_ignore_ascii_case("EXTERNAL_QUERY") => return Ok(Callee::ExternalQuery),
        [_] => return Ok(Callee::BuiltIn),
        [namespace, _] if is_in(BUILT_IN_NAMESPACES, namespace) => return Ok(Callee::BuiltIn),
        [namespace, function] if is_in(SPENDING_NAMESPACES, namespace) => {
            if namespace.eq_ignore_ascii_case("ML") && is_in(ARGUMENT_ONLY_ML_FUNCTIONS, function) {
                return Ok(Callee::BuiltIn);
            }
            let name = format!("{namespace}.{function}").to_ascii_uppercase();
            Ok(RoutineName::BuiltIn(name))
        }
        [dataset, name] => persistent(&defaults.project, dataset, name, &written),
        [project, dataset, name] => persistent(project, dataset, name, &written),
        _ => return Err(format!("function name `{written}` has too many parts")),
    }
    .map(Callee::Routine)
}

/// Resolve the name of a routine a statement creates, drops or calls
/// (`CREATE FUNCTION`, `CALL`): a one-part name takes the request's
/// default dataset, as a table name would.
pub(crate) fn persistent_routine(
    parts: &[&str],
    defaults: &Defaults,
) -> Result<RoutineName, String> {
    let written = parts.join(".");
    match parts {
        [name] => match &defaults.dataset {
            Some(dataset) => persistent(&defaults.project, dataset, name, &written),
            None => Err(format!(
                "routine `{written}` has no dataset and the request has no default dataset"
            )),
        },
        [dataset, name] => persistent(&defaults.project, dataset, name, &written),
        [project, dataset, name] => persistent(project, dataset, name, &written),
        _ => Err(format!("routine name `{written}` has too many parts")),
    }
}

fn persistent(
    project: &str,
    dataset: &str,
    name: &str,
    written: &str,
) -> Result<RoutineName, String> {
    for part in [project, dataset, name] {
        if part.is_empty() {
            return Err(format!("routine name `{written}` has an empty part"));
        }
        check_part(part, false, written)?;
    }
    Ok(RoutineName::persistent(project, dataset, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            project: "home".to_owned(),
            dataset: Some("shop".to_owned()),
        }
    }

    fn called(name: &str) -> String {
        let parts: Vec<&str> = name.split('.').collect();
        match callee(&parts, &defaults()) {
            Ok(Callee::BuiltIn) => "built-in".to_owned(),
            Ok(Callee::ExternalQuery) => "external query".to_owned(),
            Ok(Callee::Routine(routine)) => format!("routine {routine}"),
            Err(why) => format!("error: {why}"),
        }
    }

    #[test]
    fn one_part_names_and_built_in_namespaces_are_built_ins() {
        for name in [
            "UPPER",
            "my_temp_fn",
            "SAFE.PARSE_DATE",
            "safe.net.host",
            "NET.HOST",
            "net.ip_from_string",
            "HLL_COUNT.MERGE",
            "KLL_QUANTILES.EXTRACT_INT64",
            "KEYS.NEW_KEYSET",
            "AEAD.DECRYPT_STRING",
            "D3A_COUNT.EXTRACT",
            "ML.STANDARD_SCALER",
            "ml.bucketize",
            "DLP_DETERMINISTIC_ENCRYPT",
            "ST_GEOGPOINT",
        ] {
            assert_eq!(called(name), "built-in", "{name}");
        }
        assert_eq!(called("external_query"), "external query");
    }

    #[test]
    fn spending_built_ins_are_routines_by_their_upper_case_name() {
        assert_eq!(called("AI.GENERATE"), "routine AI.GENERATE");
        assert_eq!(called("ai.generate_bool"), "routine AI.GENERATE_BOOL");
        assert_eq!(called("ML.GENERATE_TEXT"), "routine ML.GENERATE_TEXT");
        assert_eq!(called("SAFE.ML.PREDICT"), "routine ML.PREDICT");
        assert_eq!(called("OBJ.GET_ACCESS_URL"), "routine OBJ.GET_ACCESS_URL");
    }

    #[test]
    fn other_dotted_names_are_persistent_routines() {
        assert_eq!(called("shop.my_udf"), "routine home.shop.my_udf");
        assert_eq!(called("p.d.Fn"), "routine p.d.Fn");
        assert_eq!(called("DLP.ENCRYPT"), "routine home.DLP.ENCRYPT");
        assert_eq!(called("SAFE.shop.f"), "routine home.shop.f");
        assert!(called("a.b.c.d").starts_with("error: "));
        assert!(called("shop.f\\x41").starts_with("error: "));
        assert!(called("shop..f").starts_with("error: "));
    }

    #[test]
    fn created_routines_resolve_one_part_names_against_the_default_dataset() {
        let resolved = persistent_routine(&["f"], &defaults()).map(|r| r.to_string());
        assert_eq!(resolved.as_deref(), Ok("home.shop.f"));
        let no_dataset = Defaults {
            project: "home".to_owned(),
            dataset: None,
        };
        assert!(persistent_routine(&["f"], &no_dataset).is_err());
        assert!(persistent_routine(&["a", "b", "c", "d"], &defaults()).is_err());
    }
}
