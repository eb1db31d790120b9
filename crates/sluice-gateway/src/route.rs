//! The route phase: which BigQuery API method an HTTP call is.
//!
//! One explicit table instead of a web framework's router, so an unknown
//! path is BigQuery's `notFound` and a known method Sluice does not serve
//! is `notImplemented`, both in BigQuery's error shape.

use axum::http::Method;

use crate::error::GatewayError;

/// A BigQuery REST v2 method with its path arguments, percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiCall {
    ProjectsList,
    DatasetsList {
        project: String,
    },
    DatasetsGet {
        project: String,
        dataset: String,
    },
    TablesList {
        project: String,
        dataset: String,
    },
    TablesGet {
        project: String,
        dataset: String,
        table: String,
    },
    TabledataList {
        project: String,
        dataset: String,
        table: String,
    },
    JobsInsert {
        project: String,
    },
    JobsList {
        project: String,
    },
    JobsGet {
        project: String,
        job: String,
    },
    JobsCancel {
        project: String,
        job: String,
    },
    JobsQuery {
        project: String,
    },
    JobsGetQueryResults {
        project: String,
        job: String,
    },
}

impl ApiCall {
    /// BigQuery's name for the method, as logs and metrics label it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ProjectsList => "projects.list",
            Self::DatasetsList { .. } => "datasets.list",
            Self::DatasetsGet { .. } => "datasets.get",
            Self::TablesList { .. } => "tables.list",
            Self::TablesGet { .. } => "tables.get",
            Self::TabledataList { .. } => "tabledata.list",
            Self::JobsInsert { .. } => "jobs.insert",
            Self::JobsList { .. } => "jobs.list",
            Self::JobsGet { .. } => "jobs.get",
            Self::JobsCancel { .. } => "jobs.cancel",
            Self::JobsQuery { .. } => "jobs.query",
            Self::JobsGetQueryResults { .. } => "jobs.getQueryResults",
        }
    }

    /// Whether the method carries a JSON request body.
    pub fn takes_body(&self) -> bool {
        matches!(self, Self::JobsInsert { .. } | Self::JobsQuery { .. })
    }

    /// Whether the method acts on jobs (`jobs.*`), as opposed to the
    /// catalog (projects, datasets, tables, rows).
    pub fn is_job_method(&self) -> bool {
        matches!(
            self,
            Self::JobsInsert { .. }
                | Self::JobsQuery { .. }
                | Self::JobsGet { .. }
                | Self::JobsList { .. }
                | Self::JobsCancel { .. }
                | Self::JobsGetQueryResults { .. }
        )
    }
}

/// The prefix every BigQuery REST v2 path has.
pub const PREFIX: &str = "/bigquery/v2";

/// Maps a method and path to an [`ApiCall`].
pub fn route(method: &Method, path: &str) -> Result<ApiCall, GatewayError> {
    if path.starts_with("/upload/bigquery/") {
        return Err(GatewayError::not_implemented(
            "Uploads (load jobs) are not supported by Sluice: it serves queries and reads, not writes.",
        ));
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Err(not_found(path));
    };
    let raw: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let mut parts = Vec::with_capacity(raw.len());
    for part in &raw {
        parts.push(percent_decode(part).ok_or_else(|| not_found(path))?);
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let get = method == Method::GET;
    let post = method == Method::POST;
    let call = match parts.as_slice() {
        ["projects"] if get => ApiCall::ProjectsList,
        ["projects", p, "datasets"] if get => ApiCall::DatasetsList { project: id(p)? },
        ["projects", p, "datasets", d] if get => ApiCall::DatasetsGet {
            project: id(p)?,
            dataset: id(d)?,
        },
        ["projects", p, "datasets", d, "tables"] if get => ApiCall::TablesList {
            project: id(p)?,
            dataset: id(d)?,
        },
        ["projects", p, "datasets", d, "tables", t] if get => ApiCall::TablesGet {
            project: id(p)?,
            dataset: id(d)?,
            table: id(t)?,
        },
        ["projects", p, "datasets", d, "tables", t, "data"] if get => ApiCall::TabledataList {
            project: id(p)?,
            dataset: id(d)?,
            table: id(t)?,
        },
        ["projects", p, "jobs"] if post => ApiCall::JobsInsert { project: id(p)? },
        ["projects", p, "jobs"] if get => ApiCall::JobsList { project: id(p)? },
        ["projects", p, "jobs", j] if get => ApiCall::JobsGet {
            project: id(p)?,
            job: id(j)?,
        },
        ["projects", p, "jobs", j, "cancel"] if post => ApiCall::JobsCancel {
            project: id(p)?,
            job: id(j)?,
        },
        ["projects", p, "queries"] if post => ApiCall::JobsQuery { project: id(p)? },
        ["projects", p, "queries", j] if get => ApiCall::JobsGetQueryResults {
            project: id(p)?,
            job: id(j)?,
        },
        ["projects", _, "datasets", _, "tables", _, "insertAll"] => {
            return Err(GatewayError::not_implemented(
                "tabledata.insertAll is a write; Sluice does not serve writes to tables.",
            ));
        }
        ["projects", _, "datasets", ..]
        | ["projects", _, "jobs", ..]
        | ["projects", _, "queries", ..]
        | ["projects", _, "routines", ..]
        | ["projects", _, "models", ..]
        | ["projects", _, "serviceAccount"]
        | ["projects"] => {
            return Err(GatewayError::not_implemented(format!(
                "{method} {path} is not supported by Sluice."
            )));
        }
        _ => return Err(not_found(path)),
    };
    Ok(call)
}

fn not_found(path: &str) -> GatewayError {
    let shown: String = path.chars().take(200).collect();
    GatewayError::not_found(format!(
        "Not found: no BigQuery method at {shown}. Sluice serves the BigQuery REST API under {PREFIX}/."
    ))
}

/// Project, dataset, table and job ids: letters, digits and `_-.:$`
/// (projects may be domain-scoped, `example.com:proj`; `$` marks a
/// partition decorator), at most 1024 characters.
fn id(part: &str) -> Result<String, GatewayError> {
    let ok = !part.is_empty()
        && part.len() <= 1024
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '$'));
    if ok {
        Ok(part.to_string())
    } else {
        let shown: String = part.chars().take(100).collect();
        Err(GatewayError::invalid(format!(
            "Invalid resource id \"{shown}\": ids may contain only letters, digits, '_', '-', '.', ':' and '$'."
        )))
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8.
fn percent_decode(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_method_routes() {
        let cases = [
            (Method::GET, "/bigquery/v2/projects", "projects.list"),
            (
                Method::GET,
                "/bigquery/v2/projects/p/datasets",
                "datasets.list",
            ),
            (
                Method::GET,
                "/bigquery/v2/projects/p/datasets/d",
                "datasets.get",
            ),
            (
                Method::GET,
                "/bigquery/v2/projects/p/datasets/d/tables",
                "tables.list",
            ),
            (
                Method::GET,
                "/bigquery/v2/projects/p/datasets/d/tables/t",
                "tables.get",
            ),
            (
                Method::GET,
                "/bigquery/v2/projects/p/datasets/d/tables/t/data",
                "tabledata.list",
            ),
            (Method::POST, "/bigquery/v2/projects/p/jobs", "jobs.insert"),
            (Method::GET, "/bigquery/v2/projects/p/jobs", "jobs.list"),
            (Method::GET, "/bigquery/v2/projects/p/jobs/j", "jobs.get"),
            (
                Method::POST,
                "/bigquery/v2/projects/p/jobs/j/cancel",
                "jobs.cancel",
            ),
            (
                Method::POST,
                "/bigquery/v2/projects/p/queries",
                "jobs.query",
            ),
            (
                Method::GET,
                "/bigquery/v2/projects/p/queries/j",
                "jobs.getQueryResults",
            ),
        ];
        for (method, path, name) in cases {
            assert_eq!(
                route(&method, path).unwrap().name(),
                name,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn path_arguments_are_percent_decoded() {
        let call = route(&Method::GET, "/bigquery/v2/projects/acme-prod/jobs/job%2D1").unwrap();
        assert_eq!(
            call,
            ApiCall::JobsGet {
                project: "acme-prod".into(),
                job: "job-1".into()
            }
        );
    }

    #[test]
    fn unknown_paths_are_not_found_and_known_unsupported_methods_not_implemented() {
        let err = route(&Method::GET, "/nope").unwrap_err();
        assert_eq!((err.status.as_u16(), err.reason), (404, "notFound"));
        let err = route(&Method::GET, "/bigquery/v2/projects/p/jobs/j/x/y").unwrap_err();
        assert_eq!((err.status.as_u16(), err.reason), (501, "notImplemented"));
        let err = route(&Method::DELETE, "/bigquery/v2/projects/p/datasets/d").unwrap_err();
        assert_eq!((err.status.as_u16(), err.reason), (501, "notImplemented"));
        let err = route(
            &Method::POST,
            "/bigquery/v2/projects/p/datasets/d/tables/t/insertAll",
        )
        .unwrap_err();
        assert_eq!(err.reason, "notImplemented");
    }

    #[test]
    fn hostile_ids_are_refused() {
        for path in [
            "/bigquery/v2/projects/p/jobs/%2e%2e%2fetc",
            "/bigquery/v2/projects/p/jobs/a%00b",
            "/bigquery/v2/projects/p/jobs/%zz",
            "/bigquery/v2/projects/p/jobs/a%20b",
        ] {
            let err = route(&Method::GET, path).unwrap_err();
            assert_eq!(err.status.as_u16() / 100, 4, "{path}: {err:?}");
        }
    }
}
