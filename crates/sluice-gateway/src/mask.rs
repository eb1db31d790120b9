//! mask: which output columns of a query are masked, and how (DESIGN.md
//! §5, invariants 5–6).
//!
//! At decide time, [`Masking::plan`] follows every output column of the
//! query back to its source columns (`sluice_sql::lineage`), matches them
//! against the `masking.columns` rules and writes the [`MaskPlan`] the job
//! is recorded with. Every page of rows then leaves through
//! [`crate::exit`], which applies the plan with `sluice-mask`. The plan
//! fails closed: a query whose lineage cannot be followed is masked whole
//! or refused, a sensitive column in a filter or under an unkeyed hash is
//! refused, and a query that writes what it reads from a masked column
//! does not run.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sluice_mask::{Detectors, PseudonymKey, Strategy};
use sluice_sql::{Derivation, LineageOptions, Source, StatementKind, TableName};

use sluice_policy::Who;
use sluice_sql::QueryFacts;
use sluice_warehouse::QueryRequest;

use crate::error::GatewayError;

/// The `masking:` section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMasking {
    /// Sensitive columns.
    pub columns: Vec<RawColumnRule>,
    /// `all` (the default), `none`, or a list of detector names.
    pub detectors: Option<RawDetectors>,
    /// How detectors mask what they find (default `redact`).
    pub detect_strategy: Option<String>,
    /// `mask` (the default) or `refuse`: a query whose output columns
    /// cannot be followed to their sources.
    pub when_unknown: Option<String>,
    /// `refuse` (the default) or `allow`: sensitive columns in `WHERE`,
    /// `JOIN`, `GROUP BY`, `HAVING`, `QUALIFY`, `INTERSECT`/`EXCEPT`.
    pub sensitive_filters: Option<String>,
    /// Aggregates that may take a plain sensitive column and return the
    /// real result (`COUNT`).
    pub allow_aggregates: Vec<String>,
    /// Principals who see raw values.
    pub exempt: RawWho,
    /// Columns masked by their BigQuery policy tags (in the table's
    /// schema upstream), whatever table they are in.
    pub policy_tags: Vec<RawTagRule>,
}

/// Columns with a policy tag.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawTagRule {
    /// A glob over the tag's resource name
    /// (`projects/*/locations/*/taxonomies/*/policyTags/*`).
    pub tag: String,
    #[serde(deserialize_with = "strategy_name")]
    pub strategy: String,
    /// Default: the column's name.
    pub class: Option<String>,
    /// Overrides `masking.sensitive_filters` for these columns.
    pub filters: Option<String>,
}

#[derive(Debug, Clone)]
struct TagRule {
    tag: String,
    strategy: String,
    class: Option<String>,
    refuse_filters: bool,
}

/// A table's columns as lineage and the policy tags need them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableColumns {
    /// The top-level column names, in order.
    pub names: Vec<String>,
    /// Every column or nested field with policy tags: its path
    /// (lower-case) and the tags.
    pub tagged: Vec<(Vec<String>, Vec<String>)>,
}

impl TableColumns {
    /// Read from a table's schema.
    pub fn of(fields: &[sluice_warehouse::Field]) -> Self {
        fn walk(
            fields: &[sluice_warehouse::Field],
            prefix: &[String],
            out: &mut Vec<(Vec<String>, Vec<String>)>,
        ) {
            for field in fields {
                let mut path = prefix.to_vec();
                path.push(field.name.to_ascii_lowercase());
                if let Some(tags) = field.policy_tags.as_ref().filter(|t| !t.names.is_empty()) {
                    out.push((path.clone(), tags.names.clone()));
                }
                walk(&field.fields, &path, out);
            }
        }
        let mut tagged = Vec::new();
        walk(fields, &[], &mut tagged);
        Self {
            names: fields.iter().map(|f| f.name.clone()).collect(),
            tagged,
        }
    }
}

/// `detectors: all | none | [names]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawDetectors {
    Word(String),
    Names(Vec<String>),
}

/// One sensitive column.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawColumnRule {
    /// `project.dataset.table.column[.field…]`; each part a glob.
    pub column: String,
    #[serde(deserialize_with = "strategy_name")]
    pub strategy: String,
    /// The class named by redaction markers and counts, and the
    /// pseudonyms' context (default: the column's name).
    pub class: Option<String>,
    /// Overrides `masking.sensitive_filters` for this column.
    pub filters: Option<String>,
    /// Principals who see this column raw.
    pub exempt: RawWho,
}

/// A strategy's name; YAML reads a bare `null` as no value, which here
/// means the `null` strategy.
fn strategy_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_else(|| "null".to_owned()))
}

/// Principals by name or group glob.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawWho {
    pub principals: Vec<String>,
    pub groups: Vec<String>,
}

impl RawWho {
    fn matches(&self, who: &Who<'_>) -> bool {
        self.principals
            .iter()
            .any(|p| sluice_glob::glob_match(p, who.name))
            || self.groups.iter().any(|g| {
                who.groups
                    .iter()
                    .any(|have| sluice_glob::glob_match(g, have))
            })
    }
}

/// What happens to a query whose lineage cannot be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnknown {
    Mask,
    Refuse,
}

#[derive(Debug, Clone)]
struct ColumnRule {
    /// As written, for messages.
    text: String,
    table: [String; 3],
    path: Vec<String>,
    strategy: Strategy,
    class: String,
    refuse_filters: bool,
    exempt: RawWho,
}

impl ColumnRule {
    fn covers_table(&self, table: &TableName) -> bool {
        let [p, d, t] = &self.table;
        let table_matches = if table.is_wildcard() {
            // `events_*` may read any table the rule's pattern names.
            let prefix = table.table.trim_end_matches('*');
            t.starts_with(prefix) || t.contains('*') || sluice_glob::glob_match(t, prefix)
        } else {
            sluice_glob::glob_match(t, &table.table)
        };
        sluice_glob::glob_match(p, &table.project)
            && sluice_glob::glob_match(d, &table.dataset)
            && table_matches
    }

    /// How the rule touches a source: the whole of it is sensitive, or
    /// the part at a path below it.
    fn touches(&self, source: &Source) -> Option<Touch> {
        if !self.covers_table(&source.table) {
            return None;
        }
        let shared = self.path.len().min(source.path.len());
        let same = self.path[..shared]
            .iter()
            .zip(&source.path[..shared])
            .all(|(rule, have)| sluice_glob::glob_match_ignore_case(rule, have));
        if !same {
            return None;
        }
        if self.path.len() <= source.path.len() {
            Some(Touch::Whole)
        } else {
            Some(Touch::Part(self.path[shared..].to_vec()))
        }
    }
}

enum Touch {
    Whole,
    Part(Vec<String>),
}

/// The masking configuration, checked.
#[derive(Debug, Clone)]
pub struct MaskingConfig {
    rules: Vec<ColumnRule>,
    detector_names: Vec<String>,
    detect: Option<Strategy>,
    pub when_unknown: WhenUnknown,
    refuse_filters: bool,
    counting: Vec<String>,
    exempt: RawWho,
    tags: Vec<TagRule>,
}

impl Default for MaskingConfig {
    fn default() -> Self {
        Self::from_raw(&RawMasking::default()).expect("the default masking configuration is valid")
    }
}

impl MaskingConfig {
    /// Checks the section; every problem as `(key, reason)`.
    pub fn from_raw(raw: &RawMasking) -> Result<Self, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let choice = |key: &str,
                      value: &Option<String>,
                      yes: &str,
                      no: &str,
                      default: bool,
                      errors: &mut Vec<(String, String)>| {
            match value.as_deref() {
                None => default,
                Some(v) if v == yes => true,
                Some(v) if v == no => false,
                Some(v) => {
                    errors.push((key.to_owned(), format!("\"{v}\" is neither {yes} nor {no}")));
                    default
                }
            }
        };
        let refuse_filters = choice(
            "masking.sensitive_filters",
            &raw.sensitive_filters,
            "refuse",
            "allow",
            true,
            &mut errors,
        );
        let refuse_unknown = choice(
            "masking.when_unknown",
            &raw.when_unknown,
            "refuse",
            "mask",
            false,
            &mut errors,
        );
        let mut rules = Vec::new();
        for (i, rule) in raw.columns.iter().enumerate() {
            let key = format!("masking.columns[{i}]");
            let parts: Vec<&str> = rule.column.split('.').collect();
            if parts.len() < 4 || parts.iter().any(|p| p.is_empty()) {
                errors.push((
                    format!("{key}.column"),
                    format!(
                        "\"{}\" is not project.dataset.table.column (globs allowed in each part, nested fields by path)",
                        rule.column
                    ),
                ));
                continue;
            }
            let class = rule
                .class
                .clone()
                .unwrap_or_else(|| parts[parts.len() - 1].to_owned());
            let strategy = match Strategy::from_name(&rule.strategy, &class) {
                Ok(s) => s,
                Err(e) => {
                    errors.push((format!("{key}.strategy"), e.to_string()));
                    continue;
                }
            };
            let refuse = choice(
                &format!("{key}.filters"),
                &rule.filters,
                "refuse",
                "allow",
                refuse_filters,
                &mut errors,
            );
            rules.push(ColumnRule {
                text: rule.column.clone(),
                table: [
                    parts[0].to_owned(),
                    parts[1].to_owned(),
                    parts[2].to_owned(),
                ],
                path: parts[3..].iter().map(|p| p.to_ascii_lowercase()).collect(),
                strategy,
                class,
                refuse_filters: refuse,
                exempt: rule.exempt.clone(),
            });
        }
        let detector_names = match &raw.detectors {
            None => vec!["all".to_owned()],
            Some(RawDetectors::Word(w)) if w == "all" => vec!["all".to_owned()],
            Some(RawDetectors::Word(w)) if w == "none" => Vec::new(),
            Some(RawDetectors::Word(w)) => vec![w.clone()],
            Some(RawDetectors::Names(names)) => names.clone(),
        };
        if let Err(e) = detectors_named(&detector_names) {
            errors.push(("masking.detectors".into(), e));
        }
        let detect = match raw.detect_strategy.as_deref() {
            _ if detector_names.is_empty() => None,
            None => Some(Strategy::Redact),
            Some(name) => match Strategy::from_name(name, "") {
                Ok(s) => Some(s),
                Err(e) => {
                    errors.push(("masking.detect_strategy".into(), e.to_string()));
                    None
                }
            },
        };
        let mut tags = Vec::new();
        for (i, rule) in raw.policy_tags.iter().enumerate() {
            let key = format!("masking.policy_tags[{i}]");
            if rule.tag.trim().is_empty() {
                errors.push((
                    format!("{key}.tag"),
                    "name the tag (a glob over its resource name)".into(),
                ));
            }
            if let Err(e) = Strategy::from_name(&rule.strategy, "") {
                errors.push((format!("{key}.strategy"), e.to_string()));
            }
            let refuse = choice(
                &format!("{key}.filters"),
                &rule.filters,
                "refuse",
                "allow",
                refuse_filters,
                &mut errors,
            );
            tags.push(TagRule {
                tag: rule.tag.clone(),
                strategy: rule.strategy.clone(),
                class: rule.class.clone(),
                refuse_filters: refuse,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            tags,
            rules,
            detector_names,
            detect,
            when_unknown: if refuse_unknown {
                WhenUnknown::Refuse
            } else {
                WhenUnknown::Mask
            },
            refuse_filters,
            counting: raw
                .allow_aggregates
                .iter()
                .map(|a| a.to_ascii_uppercase())
                .collect(),
            exempt: raw.exempt.clone(),
        })
    }

    /// Whether any rule uses a pseudonym (the key is then needed).
    pub fn uses_pseudonyms(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.strategy, Strategy::Pseudonym { .. }))
            || self.tags.iter().any(|t| t.strategy == "pseudonym")
            || matches!(self.detect, Some(Strategy::Pseudonym { .. }))
    }

    /// The detectors configured.
    pub fn detectors(&self) -> Detectors {
        detectors_named(&self.detector_names).unwrap_or_else(|_| Detectors::all())
    }
}

fn detectors_named(names: &[String]) -> Result<Detectors, String> {
    if names.iter().any(|n| n == "all") {
        return Ok(Detectors::all());
    }
    Detectors::from_names(names).map_err(|e| e.to_string())
}

/// One output column's mask, by position: the plan is decided before the
/// result's schema exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputMask {
    /// The output column's position.
    pub index: usize,
    /// A field inside it (`["zip"]`), or empty for the whole column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

/// How a result's columns are masked: decided once, at decide time,
/// recorded with the job, and applied to every page by whichever replica
/// serves it ([`crate::exit`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskPlan {
    /// Output columns (or fields in them) masked by rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<OutputMask>,
    /// Every output column masked with this: the query's lineage could
    /// not be followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Strategy>,
    /// The output columns lineage expects, by name where the query fixes
    /// one: a result of another shape is refused, not masked by guess.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Vec<Option<String>>>,
    /// How detectors mask what they find in cells no rule covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect: Option<Strategy>,
    /// The query read a masked column: the warehouse's error text loses
    /// every quoted value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

impl MaskPlan {
    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty() && self.all.is_none() && self.detect.is_none()
    }
}

/// The masking state of a running gateway: the configuration, the
/// pseudonym key, and the table schemas lineage reads.
pub struct Masking {
    pub config: MaskingConfig,
    detectors: Detectors,
    key: Option<PseudonymKey>,
    schemas: Mutex<HashMap<TableName, CachedColumns>>,
}

impl std::fmt::Debug for Masking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masking")
            .field("config", &self.config)
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// A table's columns (when it has a schema) and when they were read.
type CachedColumns = (Instant, Option<TableColumns>);

/// How long a table's columns are reused for lineage.
const SCHEMA_TTL: Duration = Duration::from_secs(60);

/// The name of the stored pseudonym key.
pub const PSEUDONYM_KEY_SECRET: &str = "masking.pseudonym-key";

impl Masking {
    pub fn new(config: MaskingConfig, key: Option<PseudonymKey>) -> Self {
        Self {
            detectors: config.detectors(),
            config,
            key,
            schemas: Mutex::default(),
        }
    }

    pub fn detectors(&self) -> Detectors {
        self.detectors
    }

    pub fn key(&self) -> Option<&PseudonymKey> {
        self.key.as_ref()
    }

    /// Whether `who` sees every value raw.
    fn exempt(&self, who: &Who<'_>) -> bool {
        self.config.exempt.matches(who)
    }

    /// The rules that apply to `who`.
    fn rules_for(&self, who: &Who<'_>) -> Vec<&ColumnRule> {
        self.config
            .rules
            .iter()
            .filter(|r| !r.exempt.matches(who))
            .collect()
    }

    /// Rules for the columns of `table` whose policy tags a
    /// `masking.policy_tags` rule names.
    fn tag_rules(&self, table: &TableName, columns: &TableColumns) -> Vec<ColumnRule> {
        let mut rules = Vec::new();
        for (path, tags) in &columns.tagged {
            let Some(rule) = self
                .config
                .tags
                .iter()
                .find(|r| tags.iter().any(|t| sluice_glob::glob_match(&r.tag, t)))
            else {
                continue;
            };
            let class = rule
                .class
                .clone()
                .unwrap_or_else(|| path.last().cloned().unwrap_or_default());
            let Ok(strategy) = Strategy::from_name(&rule.strategy, &class) else {
                continue;
            };
            rules.push(ColumnRule {
                text: format!("{}.{} (policy tag {})", table, path.join("."), rule.tag),
                table: [
                    table.project.clone(),
                    table.dataset.clone(),
                    table.table.clone(),
                ],
                path: path.clone(),
                strategy,
                class,
                refuse_filters: rule.refuse_filters,
                exempt: RawWho::default(),
            });
        }
        rules
    }

    /// The mask plan of a table read whole (tabledata.list).
    pub fn table_plan(
        &self,
        principal: &Who<'_>,
        table: &TableName,
        columns: &TableColumns,
    ) -> Result<MaskPlan, GatewayError> {
        if self.exempt(principal) {
            return Ok(MaskPlan::default());
        }
        let tagged = self.tag_rules(table, columns);
        let columns = &columns.names;
        let mut plan = MaskPlan {
            detect: self.config.detect.clone(),
            expect: Some(columns.iter().map(|c| Some(c.clone())).collect()),
            ..MaskPlan::default()
        };
        let mut rules = self.rules_for(principal);
        rules.extend(tagged.iter());
        for (index, column) in columns.iter().enumerate() {
            let derivation = Derivation {
                sources: [Source {
                    table: table.clone(),
                    path: vec![column.to_ascii_lowercase()],
                }]
                .into(),
                identity: Some(Source {
                    table: table.clone(),
                    path: vec![column.to_ascii_lowercase()],
                }),
                unknown: false,
            };
            output_masks(index, &derivation, &rules, false, &mut plan)?;
        }
        plan.sensitive = !plan.columns.is_empty();
        Ok(plan)
    }

    /// decide: the mask plan of an admitted query, or the refusal of a
    /// query that would leak a masked column.
    pub fn plan(
        &self,
        principal: &Who<'_>,
        facts: &QueryFacts,
        request: &QueryRequest,
        schemas: &HashMap<TableName, TableColumns>,
    ) -> Result<MaskPlan, GatewayError> {
        if self.exempt(principal) {
            return Ok(MaskPlan::default());
        }
        let mut plan = MaskPlan {
            detect: self.config.detect.clone(),
            ..MaskPlan::default()
        };
        let tagged: Vec<ColumnRule> = schemas
            .iter()
            .flat_map(|(table, columns)| self.tag_rules(table, columns))
            .collect();
        let mut rules = self.rules_for(principal);
        rules.extend(tagged.iter());
        let masked_tables: Vec<&TableName> = facts
            .reads
            .iter()
            .filter(|t| rules.iter().any(|r| r.covers_table(t)))
            .collect();
        if masked_tables.is_empty() {
            return Ok(plan);
        }
        plan.sensitive = true;
        let single_query = matches!(
            facts.statements.as_slice(),
            [s] if s.kind == StatementKind::Query
        );
        if !single_query {
            return Err(refusal(
                "masking.write",
                &format!(
                    "the statement reads {}, which has masked columns, and is not a single query: \
                     Sluice cannot mask what a script or a statement that writes does with those values",
                    masked_tables[0]
                ),
                "Run a plain SELECT, or ask to be exempted from masking.",
            ));
        }
        let defaults = crate::analyze::defaults(request);
        let options = LineageOptions {
            counting_aggregates: self.config.counting.clone(),
        };
        let columns_of = |table: &TableName| schemas.get(table).map(|c| c.names.clone());
        let lineage = sluice_sql::lineage(&request.sql, &defaults, &columns_of, &options);
        // Unkeyed hashes of sensitive sources.
        for source in &lineage.hashed {
            if let Some(rule) = rules.iter().find(|r| r.touches(source).is_some()) {
                return Err(refusal(
                    "masking.unkeyed_hash",
                    &format!(
                        "the query hashes {} (masked by rule {}) with an unkeyed hash, which anyone can reverse by hashing every candidate value",
                        display(source),
                        rule.text
                    ),
                    "Select the column itself: Sluice masks it, and a keyed pseudonym keeps equal values equal.",
                ));
            }
        }
        // Filters, joins and grouping on sensitive sources.
        for source in &lineage.filtered.sources {
            if let Some(rule) = rules
                .iter()
                .find(|r| r.refuse_filters && r.touches(source).is_some())
            {
                return Err(refusal(
                    "masking.filters",
                    &format!(
                        "the query filters, joins, groups or compares on {} (masked by rule {}); \
                         answers to such queries tell the masked values one question at a time",
                        display(source),
                        rule.text
                    ),
                    "Filter on columns that are not masked, or ask to be exempted from masking.",
                ));
            }
        }
        if lineage.filtered.unknown
            && (self.config.refuse_filters || rules.iter().any(|r| r.refuse_filters))
        {
            return Err(refusal(
                "masking.filters",
                &format!(
                    "the query reads {}, which has masked columns, and Sluice could not tell which columns it filters on",
                    masked_tables[0]
                ),
                "Write the filter on plainly named columns.",
            ));
        }
        let Some(columns) = lineage.columns else {
            let why = lineage.reasons.join("; ");
            return match self.config.when_unknown {
                WhenUnknown::Refuse => Err(refusal(
                    "masking.lineage",
                    &format!(
                        "the query reads {}, which has masked columns, and Sluice could not follow its output columns to their sources ({why})",
                        masked_tables[0]
                    ),
                    "Name the columns you need instead of SELECT * over tables Sluice cannot see, or simplify the query.",
                )),
                WhenUnknown::Mask => {
                    plan.all = Some(Strategy::Redact);
                    tracing::debug!(reasons = %why, "lineage not followed: every output column is masked");
                    Ok(plan)
                }
            };
        };
        plan.expect = Some(columns.iter().map(|c| c.name.clone()).collect());
        for (index, column) in columns.iter().enumerate() {
            output_masks(index, &column.derivation, &rules, true, &mut plan)?;
        }
        Ok(plan)
    }

    /// The top-level column names of a table, for lineage, cached for a
    /// minute.
    pub fn cached_columns(&self, table: &TableName) -> Option<Option<TableColumns>> {
        let cache = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(table)
            .filter(|(at, _)| at.elapsed() < SCHEMA_TTL)
            .map(|(_, columns)| columns.clone())
    }

    pub fn remember_columns(&self, table: TableName, columns: Option<TableColumns>) {
        let mut cache = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(table, (Instant::now(), columns));
    }
}

fn display(source: &Source) -> String {
    if source.path.is_empty() {
        source.table.to_string()
    } else {
        format!("{}.{}", source.table, source.path.join("."))
    }
}

fn refusal(rule: &str, what: &str, next: &str) -> GatewayError {
    GatewayError::access_denied(format!(
        "Access Denied: rule {rule}: {what}. No rows were returned. {next}"
    ))
}

/// The masks one output column needs.
fn output_masks(
    index: usize,
    derivation: &Derivation,
    rules: &[&ColumnRule],
    unknown_is_sensitive: bool,
    plan: &mut MaskPlan,
) -> Result<(), GatewayError> {
    let mut whole: Vec<&ColumnRule> = Vec::new();
    let mut parts: Vec<(&ColumnRule, Vec<String>)> = Vec::new();
    for source in &derivation.sources {
        for rule in rules {
            match rule.touches(source) {
                Some(Touch::Whole) => whole.push(rule),
                Some(Touch::Part(path)) => parts.push((rule, path)),
                None => {}
            }
        }
    }
    if let Some(rule) = whole
        .iter()
        .chain(parts.iter().map(|(r, _)| r))
        .find(|r| r.strategy == Strategy::Deny)
    {
        return Err(refusal(
            "masking.deny",
            &format!("column {} may not appear in results", rule.text),
            "Leave it out of the select list.",
        ));
    }
    let identity =
        derivation.identity.is_some() && derivation.sources.len() == 1 && !derivation.unknown;
    if identity && whole.len() <= 1 {
        if let Some(rule) = whole.first() {
            plan.columns.push(OutputMask {
                index,
                path: Vec::new(),
                strategy: rule.strategy.clone(),
                class: Some(rule.class.clone()),
            });
            return Ok(());
        }
        // A record passed whole: its sensitive fields are masked in it.
        let mut seen: Vec<Vec<String>> = Vec::new();
        for (rule, path) in parts {
            if path.iter().any(|p| p.contains('*') || p.contains('?')) {
                // A glob below: mask the whole record.
                plan.columns.retain(|m| m.index != index);
                plan.columns.push(OutputMask {
                    index,
                    path: Vec::new(),
                    strategy: Strategy::Redact,
                    class: Some(rule.class.clone()),
                });
                return Ok(());
            }
            if seen.contains(&path) {
                continue;
            }
            seen.push(path.clone());
            plan.columns.push(OutputMask {
                index,
                path,
                strategy: rule.strategy.clone(),
                class: Some(rule.class.clone()),
            });
        }
        return Ok(());
    }
    let touched: Vec<&ColumnRule> = whole
        .iter()
        .copied()
        .chain(parts.iter().map(|(r, _)| *r))
        .collect();
    if touched.is_empty() && !(derivation.unknown && unknown_is_sensitive) {
        return Ok(());
    }
    // Derived from a sensitive source: masked whole. Only strategies that
    // keep nothing of the value's text survive a transformation.
    let strategy = match touched.first() {
        Some(first)
            if touched.iter().all(|r| r.strategy == first.strategy)
                && matches!(first.strategy, Strategy::Null | Strategy::Pseudonym { .. }) =>
        {
            first.strategy.clone()
        }
        _ => Strategy::Redact,
    };
    let class = match touched.first() {
        Some(first) if touched.iter().all(|r| r.class == first.class) => Some(first.class.clone()),
        _ => None,
    };
    plan.columns.push(OutputMask {
        index,
        path: Vec::new(),
        strategy,
        class,
    });
    Ok(())
}

/// What `sluice policy explain` shows of masking: the plan for `request`
/// by `who`, read with no table's columns (a `SELECT *` then counts as
/// not followed), in words; or the refusal's message.
pub fn explain(
    config: &MaskingConfig,
    who: &Who<'_>,
    facts: &QueryFacts,
    request: &QueryRequest,
) -> Result<Vec<String>, String> {
    let masking = Masking::new(config.clone(), None);
    let plan = masking
        .plan(who, facts, request, &HashMap::new())
        .map_err(|e| e.message)?;
    let mut lines = Vec::new();
    if let Some(strategy) = &plan.all {
        lines.push(format!(
            "every output column: {strategy} (the output could not be followed to its sources)"
        ));
    }
    for mask in &plan.columns {
        let name = plan
            .expect
            .as_ref()
            .and_then(|names| names.get(mask.index).cloned().flatten())
            .unwrap_or_else(|| format!("f{}_", mask.index));
        let mut column = format!("column {} ({name}", mask.index + 1);
        for part in &mask.path {
            column.push('.');
            column.push_str(part);
        }
        let class = mask
            .class
            .as_deref()
            .map(|c| format!(" [{c}]"))
            .unwrap_or_default();
        lines.push(format!("{column}): {}{class}", mask.strategy));
    }
    match &plan.detect {
        Some(strategy) => lines.push(format!(
            "detectors: {strategy} what they find in every other text cell"
        )),
        None if lines.is_empty() => lines.push("nothing (exempt, or no detectors)".into()),
        None => {}
    }
    Ok(lines)
}

/// Reads the pseudonym key from the secret store, making and storing one
/// the first time.
pub async fn pseudonym_key(secrets: &sluice_store::SecretStore) -> Result<PseudonymKey, String> {
    for _ in 0..3 {
        if let Some((_, bytes)) = secrets
            .latest(PSEUDONYM_KEY_SECRET)
            .await
            .map_err(|e| e.to_string())?
        {
            return PseudonymKey::new(&bytes).map_err(|e| e.to_string());
        }
        let mut fresh = zeroize::Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(fresh.as_mut_slice()).map_err(|_| "no randomness".to_owned())?;
        if secrets
            .put_version(PSEUDONYM_KEY_SECRET, 1, fresh.as_slice())
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return PseudonymKey::new(fresh.as_slice()).map_err(|e| e.to_string());
        }
    }
    Err("the pseudonym key changed under us three times".into())
}

/// Reads a table's top-level columns through the warehouse, for lineage.
pub async fn columns_of(
    gateway: &crate::Gateway,
    access: &sluice_warehouse::Access,
    table: &TableName,
) -> Option<TableColumns> {
    if let Some(known) = gateway.masking.cached_columns(table) {
        return known;
    }
    let reference = sluice_warehouse::TableRef::new(&table.project, &table.dataset, &table.table);
    let columns = match gateway.warehouse.get_table(access, &reference).await {
        Ok(info) => Some(TableColumns::of(&info.schema.fields)),
        Err(err) => {
            tracing::debug!(%table, err = %crate::exit::scrub(&err.to_string()), "no schema for lineage");
            None
        }
    };
    gateway
        .masking
        .remember_columns(table.clone(), columns.clone());
    columns
}

/// Whether any masking rule covers one of these tables for `principal`.
pub fn covers_any(masking: &Masking, principal: &Who<'_>, tables: &[TableName]) -> bool {
    // Policy tags are in the tables' schemas: read them all.
    !masking.exempt(principal)
        && (!masking.config.tags.is_empty() && !tables.is_empty()
            || masking
                .rules_for(principal)
                .iter()
                .any(|r| tables.iter().any(|t| r.covers_table(t))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authenticate::Principal;

    fn principal(groups: &[&str]) -> Principal {
        Principal::new(
            sluice_identity::Principal {
                name: "tess".into(),
                issuer: "https://issuer.test".into(),
                subject: "tess".into(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                run: None,
                session: None,
            },
            "caller.jwt.token",
        )
    }

    fn config(yaml: &str) -> Result<MaskingConfig, Vec<(String, String)>> {
        let raw: RawMasking = serde_saphyr::from_str(yaml).expect("yaml");
        MaskingConfig::from_raw(&raw)
    }

    fn names(columns: &[&str]) -> TableColumns {
        TableColumns {
            names: columns.iter().map(|c| (*c).to_owned()).collect(),
            tagged: Vec::new(),
        }
    }

    const DEMO: &str = "columns:
  - { column: demo.shop.customers.ssn, strategy: redact, class: us_ssn }
  - { column: demo.shop.customers.address.zip, strategy: first4 }
  - { column: demo.shop.customers.secret, strategy: deny }
exempt: { groups: [admins] }
";

    #[test]
    fn a_bare_null_strategy_is_the_null_strategy() {
        let config = config("columns:\n  - { column: p.d.t.c, strategy: null }\n").unwrap();
        assert_eq!(config.rules[0].strategy, Strategy::Null);
    }

    #[test]
    fn bad_configuration_names_every_key() {
        let errors = config(
            "columns:\n  - { column: shop.customers, strategy: redact }\n  - { column: p.d.t.c, strategy: scramble }\n\
             when_unknown: guess\nsensitive_filters: sometimes\ndetectors: [us_ssn, horoscope]\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        for key in [
            "masking.columns[0].column",
            "masking.columns[1].strategy",
            "masking.when_unknown",
            "masking.sensitive_filters",
            "masking.detectors",
        ] {
            assert!(keys.contains(&key), "{key} missing from {errors:?}");
        }
    }

    #[test]
    fn detectors_are_on_by_default_and_can_be_turned_off() {
        let on = Masking::new(config("{}").unwrap(), None);
        let plan = on
            .table_plan(
                &principal(&[]).who(),
                &TableName::new("p", "d", "t"),
                &names(&["note"]),
            )
            .unwrap();
        assert_eq!(plan.detect, Some(Strategy::Redact));
        assert!(plan.columns.is_empty() && !plan.sensitive);
        let off = Masking::new(config("detectors: none").unwrap(), None);
        let plan = off
            .table_plan(
                &principal(&[]).who(),
                &TableName::new("p", "d", "t"),
                &names(&["note"]),
            )
            .unwrap();
        assert!(plan.is_empty());
    }

    #[test]
    fn a_table_read_whole_masks_its_rules_columns_and_fields() {
        let masking = Masking::new(config(DEMO).unwrap(), None);
        let table = TableName::new("demo", "shop", "customers");
        let columns = TableColumns {
            names: ["customer_id", "SSN", "address"].map(String::from).into(),
            tagged: Vec::new(),
        };
        let plan = masking
            .table_plan(&principal(&["agents"]).who(), &table, &columns)
            .unwrap();
        assert!(plan.sensitive);
        assert_eq!(
            plan.columns,
            vec![
                OutputMask {
                    index: 1,
                    path: vec![],
                    strategy: Strategy::Redact,
                    class: Some("us_ssn".into())
                },
                OutputMask {
                    index: 2,
                    path: vec!["zip".into()],
                    strategy: Strategy::First4,
                    class: Some("zip".into())
                },
            ]
        );
        // Exempt principals see everything raw, detectors included.
        let exempt = masking
            .table_plan(&principal(&["admins"]).who(), &table, &columns)
            .unwrap();
        assert!(exempt.is_empty());
        // Another table of the same name elsewhere is not covered.
        let other = masking
            .table_plan(
                &principal(&[]).who(),
                &TableName::new("demo", "other", "customers"),
                &columns,
            )
            .unwrap();
        assert!(other.columns.is_empty());
    }

    #[test]
    fn a_deny_column_refuses_and_derived_values_are_redacted_whole() {
        let masking = Masking::new(config(DEMO).unwrap(), None);
        let table = TableName::new("demo", "shop", "customers");
        let err = masking
            .table_plan(&principal(&[]).who(), &table, &names(&["secret"]))
            .unwrap_err();
        assert!(err.message.contains("rule masking.deny"), "{}", err.message);
        let tess = principal(&[]);
        let rules = masking.rules_for(&tess.who());
        let mut plan = MaskPlan::default();
        let derived = Derivation {
            sources: [
                Source {
                    table: table.clone(),
                    path: vec!["ssn".into()],
                },
                Source {
                    table: table.clone(),
                    path: vec!["name".into()],
                },
            ]
            .into(),
            identity: None,
            unknown: false,
        };
        output_masks(0, &derived, &rules, true, &mut plan).unwrap();
        let unknown = Derivation {
            unknown: true,
            ..Derivation::default()
        };
        output_masks(1, &unknown, &rules, true, &mut plan).unwrap();
        output_masks(2, &Derivation::default(), &rules, true, &mut plan).unwrap();
        let masked: Vec<(usize, &Strategy)> = plan
            .columns
            .iter()
            .map(|m| (m.index, &m.strategy))
            .collect();
        assert_eq!(masked, vec![(0, &Strategy::Redact), (1, &Strategy::Redact)]);
    }

    #[test]
    fn wildcard_tables_are_covered_by_the_rules_of_tables_they_may_read() {
        let rule = &config(DEMO).unwrap().rules[0];
        assert!(rule.covers_table(&TableName::new("demo", "shop", "cust*")));
        assert!(rule.covers_table(&TableName::new("demo", "shop", "*")));
        assert!(!rule.covers_table(&TableName::new("demo", "shop", "orders*")));
    }
}
