//! The row-page transformer: a page of BigQuery REST rows in, the same
//! page masked out, with counts of what was masked.
//!
//! Rows have BigQuery's `tabledata` shape: `{"f": [{"v": …}, …]}`, one
//! cell per schema field; a RECORD's value is itself `{"f": [...]}`, a
//! REPEATED field's value is `[{"v": …}, …]`, and every scalar is a JSON
//! string (or `null`).
//!
//! A [`MaskPlan`] names columns (dotted paths for nested fields) and a
//! strategy for each; a mask on a RECORD covers every field inside it,
//! and a mask on a nested field overrides its record's. Optionally the
//! content detectors run on every STRING or JSON cell that no column mask
//! covers. [`PageMasker::new`] resolves the plan against the schema once
//! per page; [`PageMasker::mask_page`] then transforms one page, so memory
//! is bounded by the page.
//!
//! Failing closed: a plan naming a column the result does not have, a
//! `deny` mask on a column that is in the result, a pseudonym without a
//! key, and any row that does not have the schema's shape are errors, and
//! the caller refuses the page. Errors name the row, column and class,
//! never a value.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::detect::{self, Class, Detectors, Match};
use crate::pseudonym::PseudonymKey;
use crate::schema::{FieldMode, FieldSchema, FieldType};
use crate::strategy::{self, MaskedCell, Strategy, StrategyError};

/// One output column, or nested field, to mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMask {
    /// The output column; a nested field by its dotted path
    /// (`address.zip`). Matched without regard to case, as BigQuery
    /// matches column names.
    pub column: String,
    pub strategy: Strategy,
    /// Why the column is sensitive (`us_ssn`, `customers.email`, …): it
    /// names the redaction marker and the counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

/// How one result is masked: decided once, recorded with the job, applied
/// to every page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskPlan {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnMask>,
    /// How the content detectors mask what they find in the STRING and
    /// JSON cells no column mask covers; `None` runs no detectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect: Option<Strategy>,
}

/// Why a plan cannot be applied to a result. Nothing is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the mask plan names column `{column}`, which the result does not have")]
    UnknownColumn { column: String },
    #[error("the mask plan names column `{column}` twice")]
    Duplicate { column: String },
    #[error("column `{column}` ({class}) may not be returned: its masking strategy is `deny`")]
    Denied { column: String, class: String },
    #[error("column `{column}` is masked with `pseudonym`, and no pseudonym key is configured")]
    MissingKey { column: String },
}

/// Why a page was refused. Nothing of it is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("row {row} is not valid JSON")]
    NotJson { row: usize },
    #[error("row {row}, column `{column}`: expected {expected}")]
    Malformed {
        row: usize,
        column: String,
        expected: &'static str,
    },
    #[error(
        "row {row}, column `{column}` holds a value of class {class}, whose strategy is `deny`"
    )]
    Denied {
        row: usize,
        column: String,
        class: String,
    },
    #[error("row {row}, column `{column}`: masking failed: {reason}")]
    Masking {
        row: usize,
        column: String,
        reason: StrategyError,
    },
}

/// How many values of one column were masked for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskCount {
    /// The column's dotted path.
    pub column: String,
    /// The plan's class for a column mask, the detector's for a match.
    pub class: String,
    pub strategy: String,
    /// Cells masked by a column mask; spans masked by a detector.
    pub values: u64,
}

/// What a page (or a sum of pages) had masked, for audit and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskCounts {
    pub entries: Vec<MaskCount>,
}

impl MaskCounts {
    /// Every value masked.
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|e| e.values).sum()
    }

    /// The values masked in `column` for `class`.
    pub fn get(&self, column: &str, class: &str) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.column == column && e.class == class)
            .map(|e| e.values)
            .sum()
    }

    /// Adds another page's counts.
    pub fn merge(&mut self, other: &MaskCounts) {
        for e in &other.entries {
            match self
                .entries
                .iter_mut()
                .find(|m| m.column == e.column && m.class == e.class && m.strategy == e.strategy)
            {
                Some(m) => m.values += e.values,
                None => self.entries.push(e.clone()),
            }
        }
    }
}

/// A masked page and what was masked in it.
#[derive(Debug)]
pub struct MaskedPage {
    pub rows: Vec<Box<RawValue>>,
    pub counts: MaskCounts,
}

/// One schema field with what the plan does to it.
#[derive(Debug)]
struct Node {
    id: usize,
    name: String,
    ty: FieldType,
    repeated: bool,
    /// The plan's column mask for this field, by index.
    rule: Option<usize>,
    /// Detectors read this field's cells when no mask covers them.
    scan: bool,
    children: Vec<Node>,
}

impl Node {
    fn name_is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// Why a value was masked, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reason {
    Rule(usize),
    Detector(Class),
}

/// A plan resolved against one result schema, ready for its pages.
#[derive(Debug)]
pub struct PageMasker<'a> {
    nodes: Vec<Node>,
    /// Dotted paths, by node id.
    paths: Vec<String>,
    plan: &'a MaskPlan,
    detectors: Detectors,
    key: Option<&'a PseudonymKey>,
    /// Nothing to mask, nothing to scan: pages pass untouched.
    idle: bool,
}

impl<'a> PageMasker<'a> {
    /// Resolves `plan` against `schema`, with the deployment's detectors
    /// and pseudonym key.
    pub fn new(
        schema: &[FieldSchema],
        plan: &'a MaskPlan,
        detectors: Detectors,
        key: Option<&'a PseudonymKey>,
    ) -> Result<Self, PlanError> {
        let scan = plan.detect.is_some() && !detectors.is_empty();
        let mut paths = Vec::new();
        let mut nodes = build(schema, "", scan, &mut paths);
        for (index, mask) in plan.columns.iter().enumerate() {
            let node = find(&mut nodes, &mask.column).ok_or_else(|| PlanError::UnknownColumn {
                column: mask.column.clone(),
            })?;
            if node.rule.replace(index).is_some() {
                return Err(PlanError::Duplicate {
                    column: mask.column.clone(),
                });
            }
            match &mask.strategy {
                Strategy::Deny => {
                    return Err(PlanError::Denied {
                        column: mask.column.clone(),
                        class: mask.class.clone().unwrap_or_else(|| "sensitive".into()),
                    });
                }
                Strategy::Pseudonym { .. } if key.is_none() => {
                    return Err(PlanError::MissingKey {
                        column: mask.column.clone(),
                    });
                }
                _ => {}
            }
        }
        if matches!(plan.detect, Some(Strategy::Pseudonym { .. })) && key.is_none() && scan {
            return Err(PlanError::MissingKey {
                column: "(detected values)".into(),
            });
        }
        Ok(Self {
            nodes,
            paths,
            plan,
            detectors,
            key,
            idle: plan.columns.is_empty() && !scan,
        })
    }

    /// Masks one page. Rows nothing was masked in are passed on as they
    /// came.
    pub fn mask_page(&self, rows: Vec<Box<RawValue>>) -> Result<MaskedPage, PageError> {
        let mut tally = Tally::default();
        if self.idle {
            return Ok(MaskedPage {
                rows,
                counts: MaskCounts::default(),
            });
        }
        let mut out = Vec::with_capacity(rows.len());
        for (index, raw) in rows.into_iter().enumerate() {
            let mut row: Value =
                serde_json::from_str(raw.get()).map_err(|_| PageError::NotJson { row: index })?;
            if self.mask_row_tally(&mut row, index, &mut tally)? {
                let masked = serde_json::value::to_raw_value(&row)
                    .map_err(|_| PageError::NotJson { row: index })?;
                out.push(masked);
            } else {
                out.push(raw);
            }
        }
        Ok(MaskedPage {
            rows: out,
            counts: self.counts(tally),
        })
    }

    /// Masks one parsed row in place; whether anything changed. `index`
    /// is the row's position in its page, for errors.
    pub fn mask_row(
        &self,
        row: &mut Value,
        index: usize,
        counts: &mut MaskCounts,
    ) -> Result<bool, PageError> {
        let mut tally = Tally::default();
        let changed = self.mask_row_tally(row, index, &mut tally)?;
        counts.merge(&self.counts(tally));
        Ok(changed)
    }

    fn mask_row_tally(
        &self,
        row: &mut Value,
        index: usize,
        tally: &mut Tally,
    ) -> Result<bool, PageError> {
        let mut walk = Walk {
            row: index,
            tally,
            found: Vec::new(),
        };
        self.record(&self.nodes, row, &mut walk, None, "(row)")
    }

    fn counts(&self, tally: Tally) -> MaskCounts {
        let entries = tally
            .0
            .into_iter()
            .map(|((id, reason), values)| {
                let (class, strategy) = match reason {
                    Reason::Rule(r) => {
                        let mask = &self.plan.columns[r];
                        (
                            mask.class.clone().unwrap_or_else(|| mask.column.clone()),
                            mask.strategy.name(),
                        )
                    }
                    Reason::Detector(class) => (
                        class.name().to_string(),
                        self.plan.detect.as_ref().map_or("redact", Strategy::name),
                    ),
                };
                MaskCount {
                    column: self.paths[id].clone(),
                    class,
                    strategy: strategy.to_string(),
                    values,
                }
            })
            .collect();
        MaskCounts { entries }
    }
}

mod walk;
use walk::{Tally, Walk};

/// The nodes for `fields`, their paths recorded by id.
fn build(fields: &[FieldSchema], prefix: &str, scan: bool, paths: &mut Vec<String>) -> Vec<Node> {
    fields
        .iter()
        .map(|f| {
            let path = if prefix.is_empty() {
                f.name.clone()
            } else {
                format!("{prefix}.{}", f.name)
            };
            let id = paths.len();
            paths.push(path.clone());
            Node {
                id,
                name: f.name.clone(),
                ty: f.field_type,
                repeated: f.mode == FieldMode::Repeated,
                rule: None,
                scan: scan && f.field_type.is_text(),
                children: build(&f.fields, &path, scan, paths),
            }
        })
        .collect()
}

/// The node at a dotted path, by case-insensitive names. Field names
/// cannot contain dots, so the split is unambiguous.
fn find<'n>(nodes: &'n mut [Node], column: &str) -> Option<&'n mut Node> {
    let mut parts = column.split('.');
    let first = parts.next()?;
    let mut node = nodes.iter_mut().find(|n| n.name_is(first))?;
    for part in parts {
        node = node.children.iter_mut().find(|n| n.name_is(part))?;
    }
    Some(node)
}

/// `schema` as it should be announced with masked pages: every masked
/// field (and everything inside it) `NULLABLE`, since masks may render
/// NULL and client libraries reject NULL in a `REQUIRED` field.
pub fn masked_schema(schema: &[FieldSchema], plan: &MaskPlan) -> Vec<FieldSchema> {
    fn relax(field: &mut FieldSchema) {
        if field.mode == FieldMode::Required {
            field.mode = FieldMode::Nullable;
        }
        field.fields.iter_mut().for_each(relax);
    }
    let mut out = schema.to_vec();
    for mask in &plan.columns {
        let mut fields = out.as_mut_slice();
        let mut parts = mask.column.split('.').peekable();
        while let Some(part) = parts.next() {
            let Some(field) = fields
                .iter_mut()
                .find(|f| f.name.eq_ignore_ascii_case(part))
            else {
                break;
            };
            if parts.peek().is_none() {
                relax(field);
                break;
            }
            fields = field.fields.as_mut_slice();
        }
    }
    out
}

fn apply_rule(
    mask: &ColumnMask,
    value: &str,
    ty: FieldType,
    key: Option<&PseudonymKey>,
) -> Result<MaskedCell, StrategyError> {
    strategy::apply(&mask.strategy, value, ty, mask.class.as_deref(), key)
}

fn mask_detected(
    text: &str,
    found: &[Match],
    strategy: &Strategy,
    key: Option<&PseudonymKey>,
) -> Result<String, StrategyError> {
    detect::replace_spans(text, found, strategy, key).map(|c| c.into_owned())
}

#[cfg(test)]
mod tests;
