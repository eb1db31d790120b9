//! One exit for everything that leaves Sluice from the warehouse: every
//! page of rows (jobs.query, getQueryResults, tabledata.list) goes out
//! through [`rows_response`], and every piece of warehouse-originated text
//! (error messages, a job's stored `errorResult`, log lines) through
//! [`scrub`]. Masking plugs into these two functions and nowhere else:
//! each page carries the [`MaskPlan`] decided for its job.

use axum::response::Response;
use serde_json::Map;
use serde_json::value::{RawValue, Value};
use sluice_warehouse::TableSchema;

use crate::error::GatewayError;
use crate::facade::json_bytes;
use crate::facade::resources::RowsResponse;
use crate::timestamps;

/// How a result's columns are masked on the way out: decided once, at
/// decide time, recorded with the job, and applied to every page by
/// whichever replica serves it. No masking rules exist yet, so every plan
/// is empty; a plan this build cannot apply refuses the page rather than
/// let a row out unmasked.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaskPlan {
    /// The top-level output columns to mask, by position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<usize>,
}

impl MaskPlan {
    /// Whether the plan masks nothing.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

/// A page of rows on its way out: the response's other fields in `head`,
/// the rows as the warehouse encoded them, the schema they follow, and the
/// mask plan of the job (or table) they come from.
pub struct RowsOut<'a> {
    pub head: Map<String, Value>,
    pub rows: Vec<Box<RawValue>>,
    pub schema: &'a TableSchema,
    pub mask: &'a MaskPlan,
    /// `formatOptions.useInt64Timestamp`: TIMESTAMP cells stay integer
    /// microseconds; otherwise they become float seconds, as BigQuery
    /// answers by default.
    pub use_int64_timestamp: bool,
}

/// The response for a page of rows. Every row that leaves passes here.
pub fn rows_response(page: RowsOut<'_>) -> Result<Response, GatewayError> {
    if !page.mask.is_empty() {
        // Fail closed: nothing here can apply a mask yet.
        return Err(GatewayError::access_denied(
            "Access Denied: check masking: the result has masked columns and this Sluice cannot apply \
             the masks, so no rows were returned. Report it to the Sluice administrators.",
        ));
    }
    let rows = if page.use_int64_timestamp {
        page.rows
    } else {
        timestamps::to_float_seconds(page.rows, page.schema)?
    };
    Ok(json_bytes(
        RowsResponse {
            head: page.head,
            rows,
        }
        .to_json()?,
    ))
}

/// The longest warehouse text passed on.
const MAX_TEXT_CHARS: usize = 2000;

/// Warehouse-originated text made fit to return, store or log: control
/// characters (which could forge log lines) become spaces, anything shaped
/// like a credential (a bearer token, a Google access token, a JWT) is
/// replaced by `[redacted]`, and the text is cut to 2,000 characters.
pub fn scrub(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = String::with_capacity(spaced.len().min(MAX_TEXT_CHARS));
    for (i, word) in spaced.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let core = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-');
        if looks_like_credential(core) {
            out.push_str(&word.replacen(core, "[redacted]", 1));
        } else {
            out.push_str(word);
        }
        if out.chars().count() > MAX_TEXT_CHARS {
            let kept: String = out.chars().take(MAX_TEXT_CHARS).collect();
            return format!("{kept}…");
        }
    }
    out
}

fn looks_like_credential(word: &str) -> bool {
    let token_chars = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+/=".contains(c))
    };
    // Google OAuth access tokens.
    (word.starts_with("ya29.") && word.len() > 20 && token_chars(word))
        // JWTs: three base64url parts, the first a JSON header.
        || (word.starts_with("eyJ") && word.matches('.').count() == 2 && word.len() > 30 && token_chars(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_control_characters_never_leave() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
        let text = format!(
            "Access denied for token ya29.a0AfH6SMBx3kexampletoken: ({jwt})\nfake log line\r\x1b[31m"
        );
        let scrubbed = scrub(&text);
        assert!(!scrubbed.contains("ya29.a0"), "{scrubbed}");
        assert!(!scrubbed.contains("eyJhbGci"), "{scrubbed}");
        assert!(!scrubbed.chars().any(char::is_control), "{scrubbed:?}");
        assert!(
            scrubbed.starts_with("Access denied for token [redacted]"),
            "{scrubbed}"
        );
        assert_eq!(scrubbed.matches("[redacted]").count(), 2, "{scrubbed}");
    }

    #[test]
    fn ordinary_messages_pass_unchanged_and_long_ones_are_cut() {
        let plain = "Syntax error: Unexpected identifier \"FORM\" at [1:10]; ya29 is not a token";
        assert_eq!(scrub(plain), plain);
        let long = "x ".repeat(5000);
        let cut = scrub(&long);
        assert_eq!(cut.chars().count(), MAX_TEXT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
