//! The decision engine: [`PolicySet::decide`] and
//! [`PolicySet::decide_read`], one function per step of the decision
//! order, each appending what it checked to the trace.

mod routines;

use sluice_sql::{ObjectKind, QueryFacts, StatementFacts, StatementKind, TableName};

use crate::approvals::{Applies, ApprovalRule};
use crate::budgets::Over;
use crate::bytes::human_bytes;
use crate::decision::{
    ActiveGrant, ApprovalNeed, Circumstances, Decision, Estimate, Limits, Rule, TraceStep, Verdict,
    Who,
};
use crate::names::{describe_flag, describe_statement};
use crate::policy_set::{DenyRule, Policy, PolicySet};

/// A decision under way: the matching policies, the circumstances, and
/// the trace so far.
struct Run<'s> {
    matching: Vec<&'s Policy>,
    at: &'s Circumstances,
    /// The principal's name, for messages.
    name: String,
    trace: Vec<TraceStep>,
}

/// Which grant a table needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

impl PolicySet {
    /// Decide a statement request (`jobs.insert`, `jobs.query`).
    ///
    /// The order, first deny wins:
    ///
    /// 1. **Guardrails**: the global `guardrails.deny` list, then the `deny`
    ///    lists of every policy matching `who`. A name hits when a statement
    ///    kind or an analysis flag has it (aliases expanded), so
    ///    `delete_without_where` hits through its flag. A hit denies with
    ///    rule `guardrails.deny.<name>`; no policy can allow it.
    /// 2. **Default deny**: no policy matches `who` ⇒ rule `default-deny`.
    /// 3. **Analysis**: incomplete facts ⇒ rule `analysis.incomplete`,
    ///    unless a matching policy has an approval rule with
    ///    `when.incomplete_analysis`: the remaining checks then run on what
    ///    was understood, and step 8 sends the query to review (or denies
    ///    it, if no such rule applies). Incomplete facts never lead to an
    ///    allow.
    /// 4. **Statements**: every statement kind must be in the union of the
    ///    matching policies' `allow.statements` ⇒ else rule
    ///    `policies.allow.statements`.
    /// 5. **Tables**: every table written must match an `allow.write`
    ///    pattern of a matching policy (rule `policies.allow.write`); every
    ///    other table read must match an `allow.read` or `allow.write`
    ///    pattern (rule `policies.allow.read`) — or be covered by a grant
    ///    rule of a matching policy and by one of the principal's active
    ///    grants under it (else rule `grants.<name>`, which says how to
    ///    request one). DML targets are both read
    ///    and written, so they need `allow.write`. Objects of DDL that are
    ///    not tables (datasets, functions, procedures, models) are writes
    ///    too: a dataset needs an `allow.write` pattern covering the whole
    ///    dataset (`proj` or `proj.ds`), a routine or model one matching
    ///    its `project.dataset.name`; an object name that cannot be read
    ///    as either is denied. A temporary function of the request writes
    ///    nothing.
    /// 6. **Routines**: every routine called (a persistent function, table
    ///    function or procedure, or a built-in billed outside the byte
    ///    limit such as `AI.GENERATE`) must match an `allow.routines`
    ///    entry of a matching policy ⇒ else rule `policies.allow.routines`.
    /// 7. **Limits**: each limit is the smallest any matching policy sets.
    ///    Only with `Some(estimate)` (after the dry run) are bytes checked:
    ///    an estimate above `max_bytes_billed` ⇒ rule
    ///    `limits.max_bytes_billed`.
    ///    Then **budgets**: a budget of a matching policy that is spent
    ///    (or would be, with the estimate) refuses the query (rule
    ///    `budgets.<name>`) or, with `over: review`, sends it to review.
    /// 8. **Approvals**: the matching policies' approval rules, in
    ///    configuration order; the first that applies makes the verdict
    ///    [`crate::Verdict::NeedsApproval`] (rule `approvals.<name>`), with
    ///    the effective limits the reviewers approve. A rule with
    ///    `bytes_over` applies only with `Some(estimate)`; one with
    ///    `days` or `hours` only in that window. Tables an active grant
    ///    covers do not meet `when.tables` or `when.datasets`.
    /// 9. **Allow** with the effective limits, rule `allow`.
    ///
    /// This reads the clock, and knows no grants and no spending: the
    /// gateway, which does, calls [`PolicySet::decide_in`].
    pub fn decide(
        &self,
        who: &Who<'_>,
        facts: &QueryFacts,
        estimate: Option<&Estimate>,
    ) -> Decision {
        self.decide_in(who, facts, estimate, &Circumstances::at(now_ms()))
    }

    /// [`PolicySet::decide`] in the given circumstances: the time, the
    /// principal's active grants and its budgets' spending.
    pub fn decide_in(
        &self,
        who: &Who<'_>,
        facts: &QueryFacts,
        estimate: Option<&Estimate>,
        at: &Circumstances,
    ) -> Decision {
        let mut run = self.start(who, at);
        if let Some(denied) = self.check_guardrails(&mut run, facts) {
            return denied;
        }
        if let Some(denied) = run.check_default(who) {
            return denied;
        }
        if let Some(denied) = run.check_analysis(facts) {
            return denied;
        }
        if let Some(denied) = run.check_statements(facts) {
            return denied;
        }
        for table in facts.reads.iter().filter(|t| !facts.writes.contains(t)) {
            if let Some(denied) = run.check_table(table, Access::Read) {
                return denied;
            }
        }
        for table in &facts.writes {
            if let Some(denied) = run.check_table(table, Access::Write) {
                return denied;
            }
        }
        for (index, statement) in facts.statements.iter().enumerate() {
            if let Some(denied) = run.check_object(index, statement, facts) {
                return denied;
            }
        }
        for routine in &facts.routines {
            if let Some(denied) = run.check_routine(routine) {
                return denied;
            }
        }
        let limits = match run.check_limits(estimate) {
            Ok(limits) => limits,
            Err(denied) => return *denied,
        };
        if let Some(decision) = run.check_budgets(estimate, &limits) {
            return decision;
        }
        if let Some(decision) = run.check_approvals(facts, estimate, &limits) {
            return decision;
        }
        let kinds = facts.kind_names().join(", ");
        let mut summary = format!(
            "{} ({kinds}), {} read, {} written",
            count(facts.statements.len(), "statement"),
            count(facts.reads.len(), "table"),
            count(facts.writes.len(), "table"),
        );
        if !facts.routines.is_empty() {
            summary.push_str(&format!(
                ", {} called",
                count(facts.routines.len(), "routine")
            ));
        }
        run.allow(limits, summary)
    }

    /// Decide whether `who` may read one `table` (`tables.get`,
    /// `tabledata.list`): steps 2 and 5 of [`PolicySet::decide`] (no
    /// guardrails, no statements), then the approval rules that name the
    /// table (`when.tables`, `when.datasets`): such a read needs review.
    /// An allow carries the effective limits (`max_rows` applies to listed
    /// rows).
    pub fn decide_read(&self, who: &Who<'_>, table: &TableName) -> Decision {
        self.decide_read_in(who, table, &Circumstances::at(now_ms()))
    }

    /// [`PolicySet::decide_read`] in the given circumstances (grants make
    /// a table readable; the time decides rules with `days` or `hours`).
    pub fn decide_read_in(&self, who: &Who<'_>, table: &TableName, at: &Circumstances) -> Decision {
        let mut run = self.start(who, at);
        if let Some(denied) = run.check_default(who) {
            return denied;
        }
        if let Some(denied) = run.check_table(table, Access::Read) {
            return denied;
        }
        let limits = match run.check_limits(None) {
            Ok(limits) => limits,
            Err(denied) => return *denied,
        };
        if let Some(review) = run.check_read_approvals(table, &limits) {
            return review;
        }
        run.allow(limits, format!("{table} may be read"))
    }

    /// Find the policies matching `who`, tracing each.
    fn start<'s>(&'s self, who: &Who<'_>, at: &'s Circumstances) -> Run<'s> {
        let mut run = Run {
            matching: Vec::new(),
            at,
            name: who.name.to_owned(),
            trace: Vec::new(),
        };
        for policy in &self.policies {
            let rule = format!("policies.{}.who", policy.name);
            match policy.matches(who) {
                Ok(why) => {
                    run.trace
                        .push(TraceStep::new(&policy.name, rule, "match", why));
                    run.matching.push(policy);
                }
                Err(why_not) => {
                    run.trace
                        .push(TraceStep::new(&policy.name, rule, "no match", why_not))
                }
            }
        }
        run
    }

    fn check_guardrails(&self, run: &mut Run<'_>, facts: &QueryFacts) -> Option<Decision> {
        let global = self.guardrails.iter().map(|rule| (None, rule));
        let own = run.matching.iter().flat_map(|policy| {
            policy
                .deny
                .iter()
                .map(move |rule| (Some(policy.name.as_str()), rule))
        });
        let rules: Vec<(Option<&str>, &DenyRule)> = global.chain(own).collect();
        for (owner, rule) in rules {
            let policy = owner.unwrap_or("guardrails");
            let rule_name = format!("guardrails.deny.{}", rule.name);
            let Some((member, what)) = guardrail_hit(rule, facts) else {
                run.trace.push(TraceStep::new(
                    policy,
                    &rule_name,
                    "no match",
                    format!("no {} in the request", rule.name),
                ));
                continue;
            };
            run.trace
                .push(TraceStep::new(policy, &rule_name, "deny", what.clone()));
            let covers = if member == rule.name {
                String::new()
            } else {
                format!(" (which covers `{member}`)")
            };
            let message = match owner {
                None => format!(
                    "Denied by guardrail `{}`{covers} (rule {rule_name}): {what}. Guardrails apply to everyone and no policy can allow this. Rewrite the request without it, or ask a data owner to make the change outside Sluice.",
                    rule.name
                ),
                Some(owner) => format!(
                    "Denied by the deny list of policy {owner}, entry `{}`{covers} (rule {rule_name}): {what}. The deny list applies to everyone the policy matches, whatever other policies allow. Rewrite the request without it, or ask an administrator.",
                    rule.name
                ),
            };
            return Some(run.deny(policy, Rule::Guardrail(rule.name.clone()), message));
        }
        None
    }
}

/// The first member of `rule` the request has: a statement kind (the first
/// such statement) or else a flag; with what to say about it.
fn guardrail_hit(rule: &DenyRule, facts: &QueryFacts) -> Option<(&'static str, String)> {
    for (index, statement) in facts.statements.iter().enumerate() {
        let kind = statement.kind.name();
        if rule.members.contains(&kind) {
            return Some((kind, describe_statement(index, statement)));
        }
    }
    facts
        .flags
        .iter()
        .map(|flag| flag.name())
        .find(|flag| rule.members.contains(flag))
        .map(|flag| (flag, describe_flag(flag, facts)))
}

impl Run<'_> {
    fn names(&self) -> String {
        self.matching
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `policy a` or `policies a, b`.
    fn phrase(&self) -> String {
        let noun = if self.matching.len() == 1 {
            "policy"
        } else {
            "policies"
        };
        format!("{noun} {}", self.names())
    }

    fn deny(&mut self, policy: &str, rule: Rule, message: String) -> Decision {
        Decision {
            verdict: Verdict::Deny,
            policy: policy.to_owned(),
            rule,
            message,
            limits: Limits::default(),
            approval: None,
            trace: std::mem::take(&mut self.trace),
        }
    }

    fn allow(mut self, limits: Limits, summary: String) -> Decision {
        let names = self.names();
        self.trace.push(TraceStep::new(
            &names,
            "allow",
            "allow",
            "every check passed",
        ));
        Decision {
            verdict: Verdict::Allow,
            message: format!("Allowed by {}: {summary}.", self.phrase()),
            policy: names,
            rule: Rule::Allow,
            limits,
            approval: None,
            trace: self.trace,
        }
    }

    /// A read of `table` by `tabledata.list`: the first approval rule of a
    /// matching policy that names the table (by `when.tables` or
    /// `when.datasets`) sends it to review. Listing rows bills no bytes,
    /// so a rule with `bytes_over` does not apply; nor does one for other
    /// statement kinds or for incomplete analysis.
    fn check_read_approvals(&mut self, table: &TableName, limits: &Limits) -> Option<Decision> {
        let matching = self.matching.clone();
        if grant_for(&self.matching, self.at, table).is_some() {
            return None;
        }
        for policy in matching {
            for rule in &policy.approvals {
                if let Some(why) = rule.applies_to_read(table, self.at.now_ms) {
                    return Some(self.review(policy, rule, why, limits));
                }
            }
        }
        None
    }

    /// The decision that `rule` of `policy` asks reviewers first.
    fn review(
        &mut self,
        policy: &Policy,
        rule: &ApprovalRule,
        why: String,
        limits: &Limits,
    ) -> Decision {
        let trace_rule = format!("policies.{}.approvals.{}", policy.name, rule.name);
        let need = rule.need(&policy.name, why.clone());
        self.trace.push(TraceStep::new(
            &policy.name,
            trace_rule,
            "review",
            format!(
                "{why}: {} approval(s) by {} within {}s",
                need.min_approvals,
                need.reviewers,
                need.timeout.as_secs()
            ),
        ));
        let message = format!(
            "Needs approval by {} (rule approvals.{} of policy {}): {why}. The query waits for {} approval(s) for up to {} minutes, then is refused.",
            need.reviewers,
            rule.name,
            policy.name,
            need.min_approvals,
            need.timeout.as_secs().div_ceil(60),
        );
        Decision {
            verdict: Verdict::NeedsApproval,
            policy: policy.name.clone(),
            rule: Rule::Approval(rule.name.clone()),
            message,
            limits: limits.clone(),
            approval: Some(need),
            trace: std::mem::take(&mut self.trace),
        }
    }

    /// Step 8: the first approval rule of a matching policy that applies.
    /// Incomplete facts that no rule sends to review are denied here.
    fn check_approvals(
        &mut self,
        facts: &QueryFacts,
        estimate: Option<&Estimate>,
        limits: &Limits,
    ) -> Option<Decision> {
        let matching = self.matching.clone();
        let at = self.at;
        let granted = |table: &TableName| grant_for(&matching, at, table).is_some();
        for policy in matching.iter().copied() {
            for rule in &policy.approvals {
                let trace_rule = format!("policies.{}.approvals.{}", policy.name, rule.name);
                let why = match rule.applies(facts, estimate, at.now_ms, &granted) {
                    Applies::Yes(why) => why,
                    Applies::No(why) => {
                        self.trace
                            .push(TraceStep::new(&policy.name, trace_rule, "no match", why));
                        continue;
                    }
                    Applies::AwaitsEstimate(why) => {
                        self.trace
                            .push(TraceStep::new(&policy.name, trace_rule, "skip", why));
                        continue;
                    }
                };
                return Some(self.review(policy, rule, why, limits));
            }
        }
        if !facts.incomplete.is_empty() {
            return Some(self.deny_incomplete(facts));
        }
        None
    }

    fn check_default(&mut self, who: &Who<'_>) -> Option<Decision> {
        if !self.matching.is_empty() {
            return None;
        }
        self.trace.push(TraceStep::new(
            "default",
            "default-deny",
            "deny",
            format!("no policy matches {}", principal(who)),
        ));
        let message = format!(
            "Denied (rule default-deny): no policy matches {}, and what no policy allows is denied. Ask an administrator to add a policy for one of your groups.",
            principal(who)
        );
        Some(self.deny("default", Rule::DefaultDeny, message))
    }

    fn check_analysis(&mut self, facts: &QueryFacts) -> Option<Decision> {
        let rule = "analysis.incomplete";
        let Some(first) = facts.incomplete.first() else {
            self.trace.push(TraceStep::new(
                "analysis",
                rule,
                "allow",
                "the SQL was fully analyzed",
            ));
            return None;
        };
        let reviewable = self
            .matching
            .iter()
            .flat_map(|p| &p.approvals)
            .any(|r| r.incomplete_analysis);
        if reviewable {
            self.trace.push(TraceStep::new(
                "analysis",
                rule,
                "review",
                format!(
                    "{first}; an approval rule with when.incomplete_analysis may send it to review"
                ),
            ));
            return None;
        }
        Some(self.deny_incomplete(facts))
    }

    fn deny_incomplete(&mut self, facts: &QueryFacts) -> Decision {
        let rule = "analysis.incomplete";
        let first = facts.incomplete.first().map_or("", String::as_str);
        let more = match facts.incomplete.len() {
            0 | 1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        self.trace.push(TraceStep::new(
            "analysis",
            rule,
            "deny",
            facts.incomplete.join("; "),
        ));
        let message = format!(
            "Denied (rule {rule}): Sluice could not fully analyze this SQL: {first}{more}. Only SQL that Sluice can fully analyze is run: no dynamic SQL or federated queries, and table names fully qualified or resolvable against the request's default dataset. Rewrite the query in that form."
        );
        self.deny("analysis", Rule::AnalysisIncomplete, message)
    }

    fn check_statements(&mut self, facts: &QueryFacts) -> Option<Decision> {
        for (index, statement) in facts.statements.iter().enumerate() {
            let kind = statement.kind.name();
            let grant = self.matching.iter().find_map(|policy| {
                policy
                    .statements
                    .iter()
                    .find(|entry| entry.members.contains(&kind))
                    .map(|entry| (policy, entry))
            });
            let described = describe_statement(index, statement);
            if let Some((policy, entry)) = grant {
                self.trace.push(TraceStep::new(
                    &policy.name,
                    format!("policies.{}.allow.statements", policy.name),
                    "allow",
                    format!("{described} ({kind}) is allowed by `{}`", entry.name),
                ));
                continue;
            }
            let mut allowed: Vec<&str> = Vec::new();
            for entry in self.matching.iter().flat_map(|p| &p.statements) {
                if !allowed.contains(&entry.name.as_str()) {
                    allowed.push(&entry.name);
                }
            }
            let allowed = if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            };
            let rule = "policies.allow.statements";
            let names = self.names();
            self.trace.push(TraceStep::new(
                &names,
                rule,
                "deny",
                format!("{described} ({kind}) is not in allow.statements ({allowed})"),
            ));
            let message = format!(
                "Denied by {} (rule {rule}): {described} is a `{kind}` statement, which {} does not allow (allowed: {allowed}). Ask a data owner to add `{kind}` to a policy's allow.statements, or send only statements you may run.",
                self.phrase(),
                self.phrase(),
            );
            return Some(self.deny(&names, Rule::Statements, message));
        }
        None
    }

    fn check_table(&mut self, table: &TableName, access: Access) -> Option<Decision> {
        let grant = self.matching.iter().find_map(|policy| {
            let (field, patterns) = match access {
                Access::Read => ("read", &policy.read),
                Access::Write => ("write", &policy.write),
            };
            let from_write = || {
                policy
                    .write
                    .iter()
                    .find(|p| p.matches_table(table))
                    .map(|p| ("write", p))
            };
            patterns
                .iter()
                .find(|p| p.matches_table(table))
                .map(|p| (field, p))
                .or_else(|| (access == Access::Read).then(from_write).flatten())
                .map(|(field, pattern)| (policy, field, pattern))
        });
        if let Some((policy, field, pattern)) = grant {
            self.trace.push(TraceStep::new(
                &policy.name,
                format!("policies.{}.allow.{field}", policy.name),
                "allow",
                format!("{table} matches {}", pattern.as_str()),
            ));
            return None;
        }
        if access == Access::Read
            && let Some(outcome) = self.check_grant(table)
        {
            return outcome;
        }
        let (field, adjective, verb) = match access {
            Access::Read => ("read", "readable", "query a table you may read"),
            Access::Write => ("write", "writable", "write to a table you may write"),
        };
        let rule = format!("policies.allow.{field}");
        let names = self.names();
        let why = format!("{table} is not {adjective} by policies {names}: not in allow.{field}");
        self.trace
            .push(TraceStep::new(&names, &rule, "deny", why.clone()));
        let message = format!(
            "Denied by {} (rule {rule}): {why}. Ask a data owner to add it to a policy's allow.{field}, or {verb}.",
            self.phrase()
        );
        let rule = match access {
            Access::Read => Rule::Read,
            Access::Write => Rule::Write,
        };
        Some(self.deny(&names, rule, message))
    }

    /// The object of a `CREATE`, `ALTER` or `DROP` that `facts.writes`
    /// does not already hold (a dataset, function, procedure or model).
    fn check_object(
        &mut self,
        index: usize,
        statement: &StatementFacts,
        facts: &QueryFacts,
    ) -> Option<Decision> {
        let (StatementKind::Create { object: kind, .. }
        | StatementKind::Alter { object: kind }
        | StatementKind::Drop { object: kind }) = &statement.kind
        else {
            return None;
        };
        if statement.temporary {
            // A temporary function lives only as long as the request.
            return None;
        }
        let object = statement.object.as_deref()?;
        let parts: Vec<&str> = object.split('.').collect();
        match (kind, parts.as_slice()) {
            (ObjectKind::Schema, [project, dataset]) => self.check_dataset(project, dataset),
            (ObjectKind::Schema, _) => self.deny_object(index, statement, object),
            (_, [project, dataset, name]) => {
                let table = TableName::new(*project, *dataset, *name);
                if facts.writes.contains(&table) {
                    None
                } else {
                    self.check_table(&table, Access::Write)
                }
            }
            _ => self.deny_object(index, statement, object),
        }
    }

    fn check_dataset(&mut self, project: &str, dataset: &str) -> Option<Decision> {
        let grant = self.matching.iter().find_map(|policy| {
            policy
                .write
                .iter()
                .find(|p| p.matches_whole_dataset(project, dataset))
                .map(|p| (policy, p))
        });
        if let Some((policy, pattern)) = grant {
            self.trace.push(TraceStep::new(
                &policy.name,
                format!("policies.{}.allow.write", policy.name),
                "allow",
                format!("dataset {project}.{dataset} matches {}", pattern.as_str()),
            ));
            return None;
        }
        let rule = "policies.allow.write";
        let names = self.names();
        let why = format!(
            "dataset {project}.{dataset} is not writable by policies {names}: no allow.write pattern covers the whole dataset"
        );
        self.trace
            .push(TraceStep::new(&names, rule, "deny", why.clone()));
        let message = format!(
            "Denied by {} (rule {rule}): {why}. Creating, altering or dropping a dataset needs a pattern such as `{project}.{dataset}` in allow.write; ask a data owner, or work in a dataset you may write.",
            self.phrase()
        );
        Some(self.deny(&names, Rule::Write, message))
    }

    fn deny_object(
        &mut self,
        index: usize,
        statement: &StatementFacts,
        object: &str,
    ) -> Option<Decision> {
        let rule = "policies.allow.write";
        let names = self.names();
        let described = describe_statement(index, statement);
        self.trace.push(TraceStep::new(
            &names,
            rule,
            "deny",
            format!("{described}: object name `{object}` is not project.dataset.name"),
        ));
        let message = format!(
            "Denied by {} (rule {rule}): {described} acts on `{object}`, which Sluice cannot match against allow.write. Name the object as project.dataset.name (or project.dataset for a dataset).",
            self.phrase()
        );
        Some(self.deny(&names, Rule::Write, message))
    }

    /// A table no allow pattern grants, read under a grant rule: allowed
    /// (`Some(None)`) while an active grant under the rule covers it,
    /// denied with how to ask for one otherwise; `None` when no grant rule
    /// of a matching policy covers it.
    fn check_grant(&mut self, table: &TableName) -> Option<Option<Decision>> {
        if let Some((policy, grant)) = grant_for(&self.matching, self.at, table) {
            let until = clock_text(grant.expire_ms);
            self.trace.push(TraceStep::new(
                &policy.name,
                format!("policies.{}.grants.{}", policy.name, grant.rule),
                "allow",
                format!("grant {} covers {table} until {until}", grant.id),
            ));
            return Some(None);
        }
        let (policy, rule) = self
            .matching
            .iter()
            .find_map(|p| p.grants.iter().find(|g| g.covers(table)).map(|g| (*p, g)))?;
        let dataset = format!("{}.{}", table.project, table.dataset);
        self.trace.push(TraceStep::new(
            &policy.name,
            format!("policies.{}.grants.{}", policy.name, rule.name),
            "deny",
            format!("{table} is readable only under a grant, and none is in force"),
        ));
        let message = format!(
            "Denied by policy {} (rule grants.{}): {table} may be read only under a just-in-time grant, and {} has none in force for it. Request one, for instance `sluice access request --dataset {dataset} --for 1h --why \"…\"` (or POST /sluice/v1/access-requests); {} must approve it, and it lasts at most {}.",
            policy.name,
            rule.name,
            self.name,
            rule.reviewers(),
            duration_text(rule.need(&policy.name).max_duration.as_secs()),
        );
        Some(Some(self.deny(
            &policy.name,
            Rule::Grant(rule.name.clone()),
            message,
        )))
    }

    /// The budgets of the matching policies: the first one spent refuses
    /// the query or sends it to review.
    fn check_budgets(&mut self, estimate: Option<&Estimate>, limits: &Limits) -> Option<Decision> {
        let matching = self.matching.clone();
        for policy in matching {
            for budget in &policy.budgets {
                let rule = format!("policies.{}.budgets.{}", policy.name, budget.name);
                let spent = self.at.spent(&budget.name);
                let Some(why) = budget.exceeded(&spent, estimate) else {
                    self.trace.push(TraceStep::new(
                        &policy.name,
                        rule,
                        "allow",
                        format!(
                            "spent {} and {} rows so far",
                            human_bytes(spent.bytes),
                            spent.rows
                        ),
                    ));
                    continue;
                };
                let resets = budget.resets(self.at.now_ms);
                match &budget.over {
                    Over::Refuse => {
                        self.trace
                            .push(TraceStep::new(&policy.name, rule, "deny", why.clone()));
                        let message = format!(
                            "Quota exceeded: budget {} of policy {} (rule budgets.{}) is spent: {why}. {resets}. Wait for it, send a smaller query, or ask an administrator for a larger budget.",
                            budget.name, policy.name, budget.name
                        );
                        let mut denied =
                            self.deny(&policy.name, Rule::Budget(budget.name.clone()), message);
                        denied.limits = limits.clone();
                        return Some(denied);
                    }
                    Over::Review { reviewers, timeout } => {
                        self.trace.push(TraceStep::new(
                            &policy.name,
                            rule,
                            "review",
                            format!(
                                "{why}: 1 approval by {reviewers} within {}s",
                                timeout.as_secs()
                            ),
                        ));
                        let need = ApprovalNeed {
                            rule: budget.name.clone(),
                            policy: policy.name.clone(),
                            reviewers: reviewers.clone(),
                            min_approvals: 1,
                            timeout: *timeout,
                            justification_required: false,
                            why: format!("over budget {}: {why}", budget.name),
                        };
                        let message = format!(
                            "Needs approval by {reviewers} (rule budgets.{} of policy {}): the budget is spent: {why}. The query waits for 1 approval for up to {} minutes, then is refused.",
                            budget.name,
                            policy.name,
                            timeout.as_secs().div_ceil(60),
                        );
                        return Some(Decision {
                            verdict: Verdict::NeedsApproval,
                            policy: policy.name.clone(),
                            rule: Rule::Budget(budget.name.clone()),
                            message,
                            limits: limits.clone(),
                            approval: Some(need),
                            trace: std::mem::take(&mut self.trace),
                        });
                    }
                }
            }
        }
        None
    }

    fn check_limits(&mut self, estimate: Option<&Estimate>) -> Result<Limits, Box<Decision>> {
        let bytes = smallest(&self.matching, |l| l.max_bytes_billed);
        let rows = smallest(&self.matching, |l| l.max_rows);
        let duration = smallest(&self.matching, |l| l.max_duration);
        let limits = Limits {
            max_bytes_billed: bytes.map(|(_, v)| v),
            max_rows: rows.map(|(_, v)| v),
            max_duration: duration.map(|(_, v)| v),
        };
        if let Some((policy, duration)) = duration {
            self.trace.push(TraceStep::new(
                policy,
                format!("policies.{policy}.limits.max_duration"),
                "allow",
                format!("jobs may run for at most {}s", duration.as_secs()),
            ));
        }
        if let Some((policy, rows)) = rows {
            self.trace.push(TraceStep::new(
                policy,
                format!("policies.{policy}.limits.max_rows"),
                "allow",
                format!("results are limited to {rows} rows"),
            ));
        }
        let Some((policy, limit)) = bytes else {
            self.trace.push(TraceStep::new(
                self.names(),
                "limits.max_bytes_billed",
                "skip",
                "no matching policy sets max_bytes_billed",
            ));
            return Ok(limits);
        };
        let trace_rule = format!("policies.{policy}.limits.max_bytes_billed");
        let limit_text = human_bytes(limit);
        let Some(estimate) = estimate else {
            self.trace.push(TraceStep::new(
                policy,
                trace_rule,
                "skip",
                format!("limit {limit_text}; checked once the dry run has estimated the query"),
            ));
            return Ok(limits);
        };
        let figures = format!(
            "estimated {}, limit {limit_text}",
            human_bytes(estimate.bytes_processed)
        );
        if estimate.bytes_processed <= limit {
            self.trace
                .push(TraceStep::new(policy, trace_rule, "allow", figures));
            return Ok(limits);
        }
        self.trace
            .push(TraceStep::new(policy, trace_rule, "deny", figures.clone()));
        let rule = "limits.max_bytes_billed";
        let message = format!(
            "Denied by policy {policy} (rule {rule}): the query would process more data than allowed: {figures}. Select fewer columns or filter on a partition, or ask for a higher limit."
        );
        let mut denied = self.deny(policy, Rule::MaxBytesBilled, message);
        denied.limits = limits;
        Err(Box::new(denied))
    }
}

/// The active grant that lets the principal read `table`: one under a
/// grant rule of a matching policy that still covers the table (a rule
/// removed or narrowed since ends its grants), naming the table or its
/// dataset, not yet expired.
fn grant_for<'a>(
    matching: &[&'a Policy],
    at: &'a Circumstances,
    table: &TableName,
) -> Option<(&'a Policy, &'a ActiveGrant)> {
    at.grants
        .iter()
        .filter(|grant| grant.expire_ms > at.now_ms && grant.names(table))
        .find_map(|grant| {
            matching
                .iter()
                .find(|p| {
                    p.grants
                        .iter()
                        .any(|g| g.name == grant.rule && g.covers(table))
                })
                .map(|p| (*p, grant))
        })
}

/// `10:42 UTC`.
fn clock_text(ms: i64) -> String {
    let of_day = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02} UTC", of_day / 3600, of_day % 3600 / 60)
}

/// `90 minutes`, `8 hours`, `45 seconds`.
fn duration_text(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 => count((s / 3600) as usize, "hour"),
        s if s % 60 == 0 => count((s / 60) as usize, "minute"),
        s => count(s as usize, "second"),
    }
}

/// Milliseconds since the Unix epoch, for [`PolicySet::decide`].
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The smallest value any policy sets for a limit, with the policy setting it.
fn smallest<'p, T: Ord>(
    policies: &[&'p Policy],
    field: impl Fn(&Limits) -> Option<T>,
) -> Option<(&'p str, T)> {
    policies
        .iter()
        .filter_map(|p| field(&p.limits).map(|v| (p.name.as_str(), v)))
        .min_by(|(_, a), (_, b)| a.cmp(b))
}

/// `principal etl-agent (groups: agents, ci)`, or with an issuer
/// `principal etl-agent (issuer https://idp.example, groups: agents)`.
pub(crate) fn principal(who: &Who<'_>) -> String {
    let groups = if who.groups.is_empty() {
        "none".to_owned()
    } else {
        who.groups.join(", ")
    };
    if who.issuer.is_empty() {
        format!("principal {} (groups: {groups})", who.name)
    } else {
        format!(
            "principal {} (issuer {}, groups: {groups})",
            who.name, who.issuer
        )
    }
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
