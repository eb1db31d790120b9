//! One exit for everything that leaves Sluice from the warehouse: every
//! page of rows (jobs.query, getQueryResults, tabledata.list) goes out
//! through [`rows_response`], and every piece of warehouse-originated text
//! (error messages, a job's stored `errorResult`, log lines) through
//! [`scrub`]. Masking plugs into these two functions and nowhere else:
//! each page carries the [`MaskPlan`] decided for its job.

use axum::response::Response;
use serde_json::Map;
use serde_json::value::{RawValue, Value};
use sluice_mask::{FieldSchema, MaskCounts, PageMasker};
use sluice_warehouse::TableSchema;

use crate::error::GatewayError;
use crate::facade::json_bytes;
use crate::facade::resources::RowsResponse;
pub use crate::mask::MaskPlan;
use crate::mask::Masking;
use crate::timestamps;

/// A page of rows on its way out: the response's other fields in `head`
/// (with the result's `schema`, when it has one), the rows as the
/// warehouse encoded them, the schema they follow, and the mask plan of
/// the job (or table) they come from.
pub struct RowsOut<'a> {
    pub head: Map<String, Value>,
    pub rows: Vec<Box<RawValue>>,
    pub schema: &'a TableSchema,
    pub mask: &'a MaskPlan,
    /// The deployment's detectors and pseudonym key.
    pub masking: &'a Masking,
    /// `formatOptions.useInt64Timestamp`: TIMESTAMP cells stay integer
    /// microseconds; otherwise they become float seconds, as BigQuery
    /// answers by default.
    pub use_int64_timestamp: bool,
}

/// A page of rows ready to leave.
#[derive(Debug)]
pub struct RowsSent {
    pub response: Response,
    /// What was masked in it.
    pub counts: MaskCounts,
    /// Its body, as the agent receives it (recorded by the audit log),
    /// when it holds rows.
    pub body: Option<axum::body::Bytes>,
}

/// The response for a page of rows, and what was masked in it. Every row
/// that leaves passes here.
pub fn rows_response(page: RowsOut<'_>) -> Result<RowsSent, GatewayError> {
    let RowsOut {
        mut head,
        rows,
        schema,
        mask,
        masking,
        use_int64_timestamp,
    } = page;
    let mut counts = MaskCounts::default();
    let rows = if mask.is_empty() {
        rows
    } else {
        let fields = mask_fields(schema)?;
        let plan = resolve(mask, schema)?;
        let masker = PageMasker::new(&fields, &plan, masking.detectors(), masking.key())
            .map_err(|e| masking_failed(&e.to_string()))?;
        let masked = masker
            .mask_page(rows)
            .map_err(|e| masking_failed(&e.to_string()))?;
        counts = masked.counts;
        if head.contains_key("schema") {
            // A masked REQUIRED field may now be NULL.
            let announced = sluice_mask::masked_schema(&fields, &plan);
            head.insert("schema".into(), serde_json::json!({ "fields": announced }));
        }
        masked.rows
    };
    let rows = if use_int64_timestamp {
        rows
    } else {
        timestamps::to_float_seconds(rows, schema)?
    };
    let any_rows = !rows.is_empty();
    let body = axum::body::Bytes::from(RowsResponse { head, rows }.to_json()?);
    Ok(RowsSent {
        response: json_bytes(body.clone()),
        counts,
        body: any_rows.then_some(body),
    })
}

/// A refusal of a page that could not be masked: nothing of it leaves.
fn masking_failed(why: &str) -> GatewayError {
    GatewayError::access_denied(format!(
        "Access Denied: check masking: {why}; no rows were returned, since Sluice returns no row it \
         cannot mask. Select fewer or plainer columns, or report it to the Sluice administrators."
    ))
}

/// The result's schema in the masking crate's terms.
fn mask_fields(schema: &TableSchema) -> Result<Vec<FieldSchema>, GatewayError> {
    serde_json::to_value(&schema.fields)
        .and_then(serde_json::from_value)
        .map_err(|e| masking_failed(&format!("the result's schema could not be read ({e})")))
}

/// The stored plan, by position, resolved to this result's column names;
/// a result of another shape than lineage expected is refused.
fn resolve(mask: &MaskPlan, schema: &TableSchema) -> Result<sluice_mask::MaskPlan, GatewayError> {
    let fields = &schema.fields;
    if let Some(expect) = &mask.expect {
        let same = expect.len() == fields.len()
            && expect.iter().zip(fields).all(|(want, have)| {
                want.as_deref()
                    .is_none_or(|want| want.eq_ignore_ascii_case(&have.name))
            });
        if !same {
            return Err(masking_failed(&format!(
                "the result has columns ({}) other than the analysis of the query expected ({})",
                fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                expect
                    .iter()
                    .map(|n| n.as_deref().unwrap_or("?"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut columns: Vec<sluice_mask::ColumnMask> = Vec::new();
    if let Some(strategy) = &mask.all {
        columns.extend(fields.iter().map(|f| sluice_mask::ColumnMask {
            column: f.name.clone(),
            strategy: strategy.clone(),
            class: None,
        }));
    } else {
        for output in &mask.columns {
            let field = fields.get(output.index).ok_or_else(|| {
                masking_failed(
                    "the result has fewer columns than the analysis of the query expected",
                )
            })?;
            let mut column = field.name.clone();
            for part in &output.path {
                column.push('.');
                column.push_str(part);
            }
            columns.push(sluice_mask::ColumnMask {
                column,
                strategy: output.strategy.clone(),
                class: output.class.clone(),
            });
        }
    }
    Ok(sluice_mask::MaskPlan {
        columns,
        detect: mask.detect.clone(),
    })
}

/// The longest warehouse text passed on.
const MAX_TEXT_CHARS: usize = 2000;

/// The text of a job's error, scrubbed: when the job read a masked column
/// (`plan.sensitive`), every quoted value in it is removed as well, since
/// a failed `CAST(ssn AS INT64)` quotes the value it could not cast.
pub fn scrub_for(text: &str, plan: &MaskPlan) -> String {
    if !plan.sensitive {
        return scrub(text);
    }
    scrub(&without_quoted_values(text))
}

/// Every `'…'`, `"…"` and `` `…` `` run replaced by `[value removed]`.
fn without_quoted_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<char> = None;
    for c in text.chars() {
        match open {
            Some(quote) if c == quote => {
                out.push_str("[value removed]");
                open = None;
            }
            Some(_) => {}
            None if matches!(c, '\'' | '"' | '`') => open = Some(c),
            None => out.push(c),
        }
    }
    if open.is_some() {
        out.push_str("[value removed]");
    }
    out
}

/// Warehouse-originated text made fit to return, store or log: control
/// characters (which could forge log lines) become spaces, anything shaped
/// like a credential (a bearer token, a Google access token, a JWT) is
/// replaced by `[redacted]`, whatever a content detector finds (an SSN, a
/// card number, an e-mail address, …) by its class's marker, and the text
/// is cut to 2,000 characters.
pub fn scrub(text: &str) -> String {
    let text = &*sluice_mask::Detectors::all()
        .mask_text(text, &sluice_mask::Strategy::Redact, None)
        .unwrap_or(std::borrow::Cow::Borrowed("[message withheld]"));
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
    fn sensitive_values_never_leave_in_error_text() {
        let plan = MaskPlan {
            sensitive: true,
            ..MaskPlan::default()
        };
        let text =
            "Cast error: Cannot cast string '976407741' to value of Int64 type; \"x\" in `t`";
        let scrubbed = scrub_for(text, &plan);
        assert!(!scrubbed.contains("976407741"), "{scrubbed}");
        assert_eq!(
            scrubbed,
            "Cast error: Cannot cast string [value removed] to value of Int64 type; [value removed] in [value removed]"
        );
        // Unclosed quotes lose the rest.
        assert_eq!(scrub_for("bad 'abc", &plan), "bad [value removed]");
        // Without a masked column read, names stay quoted; detectors still run.
        let plain = MaskPlan::default();
        assert_eq!(
            scrub_for("Unrecognized name: 'foo'", &plain),
            "Unrecognized name: 'foo'"
        );
        let found = scrub("value 976-40-7741 and jo.doe@example.com");
        assert!(
            !found.contains("976-40-7741") && !found.contains("jo.doe@"),
            "{found}"
        );
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
