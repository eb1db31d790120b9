//! The raw, serde-shaped policy configuration: only syntax is checked here
//! (unknown keys are errors); [`crate::PolicySet::build`] validates the
//! meaning.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// One entry of the configuration's `policies` list.
///
/// ```yaml
/// - name: agents-read
///   description: Agents may read the shop and public datasets.
///   who:
///     issuers: [https://token.actions.githubusercontent.com]
///     groups: [agents]
///   allow:
///     read: ["proj.shop.*", "proj.public_*"]
///     statements: [select]
///     routines: ["proj.udfs.*", "AI.GENERATE"]
///   projects: [proj, "agents-*"]
///   deny: [wildcard_table]
///   limits: { max_bytes_billed: 50GiB, max_rows: 100000 }
///   approvals:
///     - name: large-scan
///       when: { bytes_over: 10GiB }
///       reviewers: { groups: [data-owners] }
///       timeout: 15m
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Unique, non-empty name; refusals and traces name the policy by it.
    pub name: String,
    /// Whom the policy applies to.
    #[serde(default)]
    pub who: RawWho,
    /// What the policy allows.
    #[serde(default)]
    pub allow: RawAllow,
    /// The projects this policy's principals may run jobs in (and so
    /// bill): project-id globs (`*` = any run of characters,
    /// case-sensitive). When absent, the projects named by the first part
    /// of each `allow.read` and `allow.write` pattern; `[]` allows none.
    #[serde(default)]
    pub projects: Option<Vec<String>>,
    /// Extra guardrails that apply only to principals this policy matches
    /// (names of [`crate::guardrail_names`]). They deny even what another
    /// matching policy allows.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Limits applied to every query of a principal this policy matches.
    #[serde(default)]
    pub limits: RawLimits,
    /// Free text for administrators.
    #[serde(default)]
    pub description: Option<String>,
    /// The upstream credential this policy's principals run with: a name
    /// under `warehouse.named_credentials` (checked by the gateway). None
    /// uses `warehouse.credentials`.
    #[serde(default)]
    pub credentials: Option<String>,
    /// Queries of this policy's principals that wait for a reviewer's
    /// approval before they run; the first rule that applies decides.
    #[serde(default)]
    pub approvals: Vec<RawApproval>,
    /// Tables this policy's principals may read only under a just-in-time
    /// grant that reviewers approved, for a limited time.
    #[serde(default)]
    pub grants: Vec<RawGrant>,
    /// Bytes and rows this policy's principals may spend per day or per
    /// CI run.
    #[serde(default)]
    pub budgets: Vec<RawBudget>,
}

/// A grant rule: what may be requested for a time, from whom.
///
/// ```yaml
/// grants:
///   - name: shop-access
///     datasets: [demo.shop]
///     reviewers: { groups: [reviewers] }
///     max_duration: 8h
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    /// Unique among all grant rules; refusals name it `grants.<name>`.
    pub name: String,
    /// Datasets (`project.dataset`, each segment a glob) a grant may cover.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Tables (the syntax of `allow.read`) a grant may cover.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Who may approve an access request.
    #[serde(default)]
    pub reviewers: RawWho,
    /// How many distinct reviewers must approve (default 1).
    #[serde(default)]
    pub min_approvals: Option<u32>,
    /// How long an access request waits for reviewers (default `15m`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// The longest grant that may be asked for (`90m`, `8h`; default
    /// `1h`, at most `168h`, a week).
    #[serde(default)]
    pub max_duration: Option<String>,
}

/// A budget: what a principal, or a CI run, may spend.
///
/// ```yaml
/// budgets:
///   - name: per-run
///     per: [repository, run_id]   # token claims; absent: per principal
///     bytes: 5GiB
///     rows: 1000000
///     period: none                # day (default) or none
///     over: refuse                # or review (with reviewers)
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// Unique among budgets and approval rules; refusals name it
    /// `budgets.<name>`.
    pub name: String,
    /// Token claims whose values key the budget (a CI run: `[repository,
    /// run_id]`). Absent or empty: one budget per principal.
    #[serde(default)]
    pub per: Vec<String>,
    /// Most bytes billed in a period (`5GiB`, or bytes).
    #[serde(default)]
    pub bytes: Option<RawByteSize>,
    /// Most result rows in a period.
    #[serde(default)]
    pub rows: Option<u64>,
    /// `day` (resets at 00:00 UTC; the default) or `none` (never resets:
    /// for budgets keyed by a run).
    #[serde(default)]
    pub period: Option<String>,
    /// What happens to a query over budget: `refuse` (the default,
    /// `quotaExceeded`) or `review` (it waits for `reviewers`).
    #[serde(default)]
    pub over: Option<String>,
    /// Who may approve a query over budget (with `over: review`).
    #[serde(default)]
    pub reviewers: RawWho,
    /// How long a query over budget waits for review (default `15m`).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// One approval rule: when it applies, who may approve, how many must,
/// and how long the query waits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApproval {
    /// Unique among all policies' approval rules; refusals, traces and
    /// reviewers name the rule `approvals.<name>`.
    pub name: String,
    /// When the rule applies: every condition given must hold; none given,
    /// every query of the policy's principals.
    #[serde(default)]
    pub when: RawWhen,
    /// Who may approve: groups, principal globs, optionally issuers (as in
    /// `who`). The requester never approves their own query.
    #[serde(default)]
    pub reviewers: RawWho,
    /// How many distinct reviewers must approve (default 1).
    #[serde(default)]
    pub min_approvals: Option<u32>,
    /// How long the query waits for the approvals before it is refused
    /// (`15m`, `2h`, `90s`; default `15m`, at most `24h`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Whether each approval must give a reason.
    #[serde(default)]
    pub justification_required: bool,
}

/// The conditions of an approval rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhen {
    /// The dry run estimates more bytes than this (`10GiB`, or bytes).
    #[serde(default)]
    pub bytes_over: Option<RawByteSize>,
    /// The query reads or writes a table matching one of these patterns
    /// (the syntax of `allow.read`).
    #[serde(default)]
    pub tables: Vec<String>,
    /// The query reads or writes a table in one of these datasets
    /// (`project.dataset`, each segment a glob).
    #[serde(default)]
    pub datasets: Vec<String>,
    /// The query has a statement of one of these kinds (the names of
    /// `allow.statements`).
    #[serde(default)]
    pub statements: Vec<String>,
    /// The SQL could not be fully analyzed (dynamic SQL, for instance):
    /// instead of being refused (rule `analysis.incomplete`), it waits
    /// for a reviewer. Guardrails still refuse it first.
    #[serde(default)]
    pub incomplete_analysis: bool,
    /// Days of the week the rule applies on (`mon` … `sun`), in the
    /// rule's `utc_offset`.
    #[serde(default)]
    pub days: Vec<String>,
    /// Time of day the rule applies in, `HH:MM-HH:MM` (end excluded; a
    /// range past midnight such as `18:00-08:00` wraps), in `utc_offset`.
    #[serde(default)]
    pub hours: Option<String>,
    /// The offset from UTC that `days` and `hours` are read in
    /// (`+02:00`, `-05:00`; default UTC).
    #[serde(default)]
    pub utc_offset: Option<String>,
}

/// Whom a policy applies to: a principal matches when it is in one of the
/// `groups`, or its name matches one of the `principals` globs — and, when
/// `issuers` is set, its token came from one of those issuers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWho {
    /// Group names, compared exactly.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Glob patterns (`*` = any run of characters, case-sensitive) on the
    /// principal's name.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Issuer identifiers (a token's `iss`, compared exactly). Empty: any
    /// trusted issuer. Set, the policy matches only principals whose token
    /// one of these issued, so equal group or principal names from another
    /// issuer do not match.
    #[serde(default)]
    pub issuers: Vec<String>,
}

/// What a policy allows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    /// Table patterns that may be read (see the crate docs for the syntax).
    #[serde(default)]
    pub read: Vec<String>,
    /// Table patterns that may be written (and read).
    #[serde(default)]
    pub write: Vec<String>,
    /// Statement names of [`crate::statement_names`]; empty allows nothing.
    #[serde(default)]
    pub statements: Vec<String>,
    /// Routines that may be called: persistent functions, table functions
    /// and procedures as `project.dataset.routine`, and built-ins billed
    /// outside the byte limit as `ML.FUNCTION`, `AI.FUNCTION` or
    /// `OBJ.FUNCTION`; each segment a glob. Empty allows none.
    #[serde(default)]
    pub routines: Vec<String>,
}

/// Limits of a policy; where several matching policies set one, the
/// smallest applies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Most bytes a query may bill: an integer (bytes) or a size such as
    /// `10GiB`, `500 MB`, `1TiB`.
    #[serde(default)]
    pub max_bytes_billed: Option<RawByteSize>,
    /// Most rows a query may return.
    #[serde(default)]
    pub max_rows: Option<u64>,
    /// Longest a job may run in the warehouse (`30m`, `2h`, `90s`), sent
    /// upstream as the job's `jobTimeoutMs`: under capacity pricing a
    /// query that scans few bytes can still burn slots for hours.
    #[serde(default)]
    pub max_duration: Option<String>,
}

/// The configuration's `guardrails` section: denials for everybody.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuardrails {
    /// Names of [`crate::guardrail_names`] denied to every principal.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// A byte size as written: a YAML integer, or a string such as `10GiB`
/// (parsed by [`crate::parse_byte_size`] when the set is built, so a bad
/// size is reported with its key like every other mistake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawByteSize {
    /// An integer number of bytes.
    Bytes(u64),
    /// Text still to be parsed.
    Text(String),
}

impl RawByteSize {
    /// The size in bytes, or why the text is not a size.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            Self::Bytes(bytes) => Ok(*bytes),
            Self::Text(text) => crate::bytes::parse_byte_size(text),
        }
    }
}

impl From<u64> for RawByteSize {
    fn from(bytes: u64) -> Self {
        Self::Bytes(bytes)
    }
}

impl From<&str> for RawByteSize {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl<'de> Deserialize<'de> for RawByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = RawByteSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte size: an integer, or a string such as \"10GiB\" or \"500 MB\"")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(RawByteSize::Bytes(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        u64::try_from(value)
            .map(RawByteSize::Bytes)
            .map_err(|_| E::custom(format!("a byte size cannot be negative ({value})")))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(RawByteSize::Text(value.to_owned()))
    }
}
