//! The walk over one row: records, repeated fields and scalar cells, in
//! the schema's order, masking as the plan says and checking the shape as
//! it goes.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Node, PageError, PageMasker, Reason, apply_rule, mask_detected};
use crate::detect::Match;
use crate::schema::FieldType;
use crate::strategy::{MaskedCell, Strategy, StrategyError};

/// Values masked, by node id and reason.
#[derive(Debug, Default)]
pub(super) struct Tally(pub BTreeMap<(usize, Reason), u64>);

impl Tally {
    fn add(&mut self, id: usize, reason: Reason, n: u64) {
        *self.0.entry((id, reason)).or_default() += n;
    }
}

/// The state of one row's walk.
pub(super) struct Walk<'t> {
    pub row: usize,
    pub tally: &'t mut Tally,
    /// Detector matches, reused from cell to cell.
    pub found: Vec<Match>,
}

impl Walk<'_> {
    fn malformed(&self, column: &str, expected: &'static str) -> PageError {
        PageError::Malformed {
            row: self.row,
            column: column.to_string(),
            expected,
        }
    }
}

impl PageMasker<'_> {
    /// A record `{"f": [...]}` with one cell per node; `inherited` is the
    /// mask of an enclosing record, if any.
    pub(super) fn record(
        &self,
        nodes: &[Node],
        value: &mut Value,
        walk: &mut Walk<'_>,
        inherited: Option<usize>,
        at: &str,
    ) -> Result<bool, PageError> {
        let Some(cells) = value
            .as_object_mut()
            .and_then(|o| o.get_mut("f"))
            .and_then(Value::as_array_mut)
        else {
            return Err(walk.malformed(at, "a record {\"f\": [...]}"));
        };
        if cells.len() != nodes.len() {
            return Err(walk.malformed(at, "one cell per schema field"));
        }
        let mut changed = false;
        for (cell, node) in cells.iter_mut().zip(nodes) {
            let Some(v) = cell.as_object_mut().and_then(|c| c.get_mut("v")) else {
                return Err(walk.malformed(&self.paths[node.id], "a cell {\"v\": …}"));
            };
            changed |= self.field(node, v, walk, node.rule.or(inherited))?;
        }
        Ok(changed)
    }

    fn field(
        &self,
        node: &Node,
        value: &mut Value,
        walk: &mut Walk<'_>,
        rule: Option<usize>,
    ) -> Result<bool, PageError> {
        if !node.repeated {
            return self.single(node, value, walk, rule);
        }
        let items = match value {
            // BigQuery sends an empty array as `[]`; tolerate `null`.
            Value::Null => return Ok(false),
            Value::Array(items) => items,
            _ => {
                return Err(walk.malformed(&self.paths[node.id], "an array [{\"v\": …}]"));
            }
        };
        if let Some(r) = rule
            && self.plan.columns[r].strategy == Strategy::Null
        {
            // An ARRAY cannot be NULL in BigQuery: it becomes empty.
            let n = items.len() as u64;
            items.clear();
            walk.tally.add(node.id, Reason::Rule(r), n);
            return Ok(n > 0);
        }
        let mut changed = false;
        for item in items.iter_mut() {
            let Some(v) = item.as_object_mut().and_then(|c| c.get_mut("v")) else {
                return Err(walk.malformed(&self.paths[node.id], "an array item {\"v\": …}"));
            };
            changed |= self.single(node, v, walk, rule)?;
        }
        if rule.is_some() {
            // An ARRAY cannot hold NULL in BigQuery, and client libraries
            // fail on one: elements a mask rendered NULL are dropped.
            items.retain(|item| !item["v"].is_null());
        }
        Ok(changed)
    }

    fn single(
        &self,
        node: &Node,
        value: &mut Value,
        walk: &mut Walk<'_>,
        rule: Option<usize>,
    ) -> Result<bool, PageError> {
        if value.is_null() {
            return Ok(false);
        }
        if node.ty == FieldType::Record {
            if let Some(r) = rule
                && self.plan.columns[r].strategy == Strategy::Null
            {
                *value = Value::Null;
                walk.tally.add(node.id, Reason::Rule(r), 1);
                return Ok(true);
            }
            return self.record(&node.children, value, walk, rule, &self.paths[node.id]);
        }
        let Value::String(text) = value else {
            return Err(walk.malformed(&self.paths[node.id], "a string or null"));
        };
        if let Some(r) = rule {
            let mask = &self.plan.columns[r];
            let masked = apply_rule(mask, text, node.ty, self.key)
                .map_err(|reason| self.refusal(walk, node, reason, mask.class.as_deref()))?;
            match masked {
                MaskedCell::Text(t) => *text = t,
                MaskedCell::Null => *value = Value::Null,
            }
            walk.tally.add(node.id, Reason::Rule(r), 1);
            return Ok(true);
        }
        if !node.scan {
            return Ok(false);
        }
        let Some(strategy) = &self.plan.detect else {
            return Ok(false);
        };
        self.detectors.scan_into(text, &mut walk.found);
        if walk.found.is_empty() {
            return Ok(false);
        }
        let masked = mask_detected(text, &walk.found, strategy, self.key).map_err(|reason| {
            let class = walk.found.first().map(|m| m.class.name());
            self.refusal(walk, node, reason, class)
        })?;
        *text = masked;
        for m in &walk.found {
            walk.tally.add(node.id, Reason::Detector(m.class), 1);
        }
        Ok(true)
    }

    fn refusal(
        &self,
        walk: &Walk<'_>,
        node: &Node,
        reason: StrategyError,
        class: Option<&str>,
    ) -> PageError {
        let column = self.paths[node.id].clone();
        match reason {
            StrategyError::Denied => PageError::Denied {
                row: walk.row,
                column,
                class: class.unwrap_or("sensitive").to_string(),
            },
            reason => PageError::Masking {
                row: walk.row,
                column,
                reason,
            },
        }
    }
}
