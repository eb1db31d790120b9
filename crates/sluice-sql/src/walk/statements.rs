//! What each statement does: its kind, what it writes, and every field
//! the walk does not follow (DDL in [`super::ddl`]).
//!
//! Each statement the walk accepts is destructured with all of its fields
//! named. Names and expressions are reached by the visitor anyway (a
//! relation name not written here is a read); a field of another SQL
//! dialect that is present makes the facts incomplete. Any statement not
//! listed here is incomplete.

use sqlparser::ast::{
    CaseStatement, Declare, Delete, ExportData, FromTable, IfStatement, Insert, Merge, ObjectName,
    ObjectType, RaiseStatement, ReturnStatement, Set, Statement, TableFactor, TableObject,
    TableWithJoins, Truncate, TruncateTableTarget, Update, WhileStatement,
};

use super::Walker;
use crate::facts::{Flag, ScriptKind, StatementKind as K};

impl Walker<'_> {
    /// Record what `statement` does.
    pub(super) fn classify(&mut self, statement: &Statement) {
        match statement {
            // Its clauses are checked per query and per SELECT.
            Statement::Query(_) => self.push(K::Query, None),
            Statement::Insert(insert) => self.insert(insert),
            Statement::Update(update) => self.update(update),
            Statement::Delete(delete) => self.delete(delete),
            Statement::Merge(merge) => self.merge(merge),
            Statement::Truncate(truncate) => self.truncate(truncate),
            Statement::CreateTable(create) => self.create_table(create),
            Statement::CreateView(view) => self.create_view(view),
            Statement::CreateFunction(function) => self.create_function(function),
            Statement::CreateProcedure {
                or_alter,
                name,
                params: _,
                language,
                body: _,
            } => self.create_procedure(*or_alter, name, language.is_some()),
            Statement::CreateSchema {
                schema_name,
                if_not_exists: _,
                with,
                options: _,
                default_collate_spec: _,
                clone,
            } => {
                self.unsupported(with.is_some(), "CREATE SCHEMA … WITH");
                self.unsupported(clone.is_some(), "CREATE SCHEMA … CLONE");
                self.create_schema(schema_name);
            }
            Statement::AlterTable(alter) => self.alter_table(alter),
            Statement::AlterView {
                name,
                columns: _,
                query: _,
                with_options,
            } => {
                self.unsupported(!with_options.is_empty(), "ALTER VIEW … WITH");
                self.alter_view(name);
            }
            Statement::AlterSchema(alter) => self.alter_schema(alter),
            Statement::Drop {
                object_type,
                if_exists: _,
                names,
                cascade,
                restrict: _,
                purge: _,
                temporary,
                table,
            } => {
                self.unsupported(table.is_some(), "DROP … ON a table");
                self.unsupported(*temporary, "DROP TEMPORARY");
                let dataset = matches!(object_type, ObjectType::Schema | ObjectType::Database);
                self.unsupported(*cascade && !dataset, "DROP … CASCADE");
                self.drop(*object_type, names);
            }
            Statement::DropFunction(drop) => self.drop_function(drop),
            Statement::DropProcedure {
                if_exists: _,
                proc_desc,
                drop_behavior,
            } => {
                self.unsupported(drop_behavior.is_some(), "DROP PROCEDURE … CASCADE/RESTRICT");
                self.drop_procedure(proc_desc);
            }
            Statement::Grant(_) => {
                self.incomplete("GRANT objects and grantees are not analyzed");
                self.push(K::Grant, None);
            }
            Statement::Revoke(_) => {
                self.incomplete("REVOKE objects and grantees are not analyzed");
                self.push(K::Revoke, None);
            }
            Statement::ExportData(ExportData {
                options: _,
                query: _,
                connection: _,
            }) => self.push(K::ExportData, None),
            Statement::LoadData { .. } => {
                self.incomplete("LOAD DATA is not analyzed");
                self.push(K::LoadData, None);
            }
            Statement::Call(function) => {
                let routine = self.routine(&function.name);
                let object = routine.as_ref().map(ToString::to_string);
                let shown = object.clone().unwrap_or_else(|| function.name.to_string());
                self.incomplete(format!(
                    "CALL {shown} runs a procedure whose body is not analyzed"
                ));
                if let Some(routine) = routine {
                    self.facts.routines.insert(routine);
                }
                self.push(K::Call, object);
            }
            Statement::Execute {
                name: None,
                parameters,
                has_parentheses: _,
                immediate: true,
                into: _,
                using: _,
                output: _,
                default: _,
            } => self.execute_immediate(parameters),
            Statement::StartTransaction {
                modes,
                begin,
                transaction,
                modifier,
                statements,
                exception,
                has_end_keyword: _,
            } => {
                self.unsupported(
                    !modes.is_empty() || modifier.is_some(),
                    "a transaction mode",
                );
                let block = *begin
                    && transaction.is_none()
                    && (!statements.is_empty() || exception.is_some());
                let kind = if block {
                    ScriptKind::Begin
                } else {
                    ScriptKind::Transaction
                };
                self.push(K::Script(kind), None);
            }
            Statement::Commit {
                chain,
                end: _,
                modifier,
            } => {
                self.unsupported(*chain || modifier.is_some(), "COMMIT AND CHAIN");
                self.push(K::Script(ScriptKind::Transaction), None);
            }
            Statement::Rollback { chain, savepoint } => {
                self.unsupported(*chain || savepoint.is_some(), "ROLLBACK TO/AND CHAIN");
                self.push(K::Script(ScriptKind::Transaction), None);
            }
            Statement::Declare { stmts } => {
                for declare in stmts {
                    self.declare(declare);
                }
                self.push(K::Script(ScriptKind::Declare), None);
            }
            Statement::Set(set) => self.set(set),
            Statement::If(IfStatement {
                if_block: _,
                elseif_blocks: _,
                else_block: _,
                end_token: _,
            }) => self.push(K::Script(ScriptKind::If), None),
            Statement::Case(CaseStatement {
                case_token: _,
                match_expr: _,
                when_blocks: _,
                else_block: _,
                end_case_token: _,
            }) => self.push(K::Script(ScriptKind::Case), None),
            Statement::While(WhileStatement { while_block: _ }) => {
                self.push(K::Script(ScriptKind::Loop), None);
            }
            Statement::Raise(RaiseStatement { value: _ }) => {
                self.push(K::Script(ScriptKind::Raise), None);
            }
            Statement::Return(ReturnStatement { value: _ }) => {
                self.push(K::Script(ScriptKind::Return), None);
            }
            Statement::Assert {
                condition: _,
                message: _,
            } => self.push(K::Script(ScriptKind::Assert), None),
            other => self.other(other),
        }
    }

    /// A statement the walk does not know: incomplete, named by its first
    /// keyword.
    fn other(&mut self, statement: &Statement) {
        let keyword = statement
            .to_string()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_lowercase();
        self.incomplete(format!(
            "`{}` statements are not analyzed",
            keyword.to_uppercase()
        ));
        self.push(K::Other(keyword), None);
    }

    fn insert(&mut self, insert: &Insert) {
        let Insert {
            insert_token: _,
            optimizer_hints,
            or,
            ignore,
            into: _,
            table,
            table_alias: _,
            columns: _,
            overwrite,
            source: _,
            assignments,
            partitioned,
            after_columns,
            has_table_keyword,
            on,
            returning,
            output,
            replace_into,
            priority,
            insert_alias,
            settings,
            format_clause,
            multi_table_insert_type,
            multi_table_into_clauses,
            multi_table_when_clauses,
            multi_table_else_clause,
        } = insert;
        self.unsupported(!optimizer_hints.is_empty(), "an optimizer hint");
        self.unsupported(or.is_some() || *replace_into, "INSERT OR REPLACE");
        self.unsupported(*ignore, "INSERT IGNORE");
        self.unsupported(*overwrite, "INSERT OVERWRITE");
        self.unsupported(!assignments.is_empty(), "INSERT … SET");
        self.unsupported(
            partitioned.is_some() || !after_columns.is_empty(),
            "INSERT … PARTITION",
        );
        self.unsupported(*has_table_keyword, "INSERT TABLE");
        self.unsupported(on.is_some(), "INSERT … ON CONFLICT / ON DUPLICATE KEY");
        self.unsupported(
            returning.is_some() || output.is_some(),
            "INSERT … RETURNING / OUTPUT",
        );
        self.unsupported(priority.is_some(), "an INSERT priority");
        self.unsupported(insert_alias.is_some(), "INSERT … AS an alias");
        self.unsupported(
            settings.is_some() || format_clause.is_some(),
            "INSERT … SETTINGS / FORMAT",
        );
        self.unsupported(
            multi_table_insert_type.is_some()
                || !multi_table_into_clauses.is_empty()
                || !multi_table_when_clauses.is_empty()
                || multi_table_else_clause.is_some(),
            "a multi-table INSERT",
        );
        let object = match table {
            TableObject::TableName(name) => self.write(name),
            TableObject::TableFunction(_) | TableObject::TableQuery(_) => {
                self.incomplete("INSERT into a table function is not analyzed");
                None
            }
        };
        self.push(K::Insert, object);
    }

    fn update(&mut self, update: &Update) {
        let Update {
            update_token: _,
            optimizer_hints,
            table: TableWithJoins { relation, joins },
            assignments: _,
            from: _,
            selection,
            returning,
            output,
            or,
            order_by,
            limit,
        } = update;
        self.unsupported(!optimizer_hints.is_empty(), "an optimizer hint");
        self.unsupported(!joins.is_empty(), "UPDATE of joined tables");
        self.unsupported(or.is_some(), "UPDATE OR …");
        self.unsupported(
            returning.is_some() || output.is_some(),
            "UPDATE … RETURNING / OUTPUT",
        );
        self.unsupported(
            !order_by.is_empty() || limit.is_some(),
            "UPDATE … ORDER BY / LIMIT",
        );
        let has_where = selection.is_some();
        if !has_where {
            self.facts.flags.insert(Flag::UpdateWithoutWhere);
        }
        let object = self.dml_target(relation);
        self.push(K::Update { has_where }, object);
    }

    fn delete(&mut self, delete: &Delete) {
        let Delete {
            delete_token: _,
            optimizer_hints,
            tables,
            from,
            using,
            selection,
            returning,
            output,
            order_by,
            limit,
        } = delete;
        self.unsupported(!optimizer_hints.is_empty(), "an optimizer hint");
        self.unsupported(using.is_some(), "DELETE … USING");
        self.unsupported(
            returning.is_some() || output.is_some(),
            "DELETE … RETURNING / OUTPUT",
        );
        self.unsupported(
            !order_by.is_empty() || limit.is_some(),
            "DELETE … ORDER BY / LIMIT",
        );
        let has_where = selection.is_some();
        if !has_where {
            self.facts.flags.insert(Flag::DeleteWithoutWhere);
        }
        let mut object = None;
        // `DELETE t1, t2 FROM …` names the targets apart from the source.
        self.unsupported(!tables.is_empty(), "a multi-table DELETE");
        for name in tables {
            object = self.write(name);
            self.read(name);
        }
        let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = from;
        self.unsupported(
            from.len() > 1 || from.iter().any(|f| !f.joins.is_empty()),
            "DELETE from several tables",
        );
        if let Some(first) = from.first() {
            object = object.or_else(|| self.dml_target(&first.relation));
        }
        self.push(K::Delete { has_where }, object);
    }

    fn merge(&mut self, merge: &Merge) {
        // The WHEN clauses insert into, update or delete from the target
        // only; their expressions are visited.
        let Merge {
            merge_token: _,
            optimizer_hints,
            into: _,
            table,
            source: _,
            on: _,
            clauses: _,
            output,
        } = merge;
        self.unsupported(!optimizer_hints.is_empty(), "an optimizer hint");
        self.unsupported(output.is_some(), "MERGE … OUTPUT");
        let object = self.dml_target(table);
        self.push(K::Merge, object);
    }

    fn truncate(&mut self, truncate: &Truncate) {
        let Truncate {
            table_names,
            partitions,
            table: _,
            if_exists: _,
            identity,
            cascade,
            on_cluster,
        } = truncate;
        self.unsupported(partitions.is_some(), "TRUNCATE … PARTITION");
        self.unsupported(identity.is_some(), "TRUNCATE … IDENTITY");
        self.unsupported(cascade.is_some(), "TRUNCATE … CASCADE");
        self.unsupported(on_cluster.is_some(), "TRUNCATE … ON CLUSTER");
        let mut object = None;
        for TruncateTableTarget {
            name,
            only,
            has_asterisk,
        } in table_names
        {
            self.unsupported(*only || *has_asterisk, "TRUNCATE ONLY");
            object = self.write(name);
        }
        self.push(K::Truncate, object);
    }

    /// The target of `UPDATE`, `DELETE` or `MERGE`: written, and read too
    /// (the visit of the table factor records the read).
    fn dml_target(&mut self, factor: &TableFactor) -> Option<String> {
        match factor {
            TableFactor::Table {
                name, args: None, ..
            } => self.write(name),
            _ => {
                self.incomplete("DML target is not a plain table");
                None
            }
        }
    }

    fn declare(&mut self, declare: &Declare) {
        let Declare {
            names: _,
            data_type: _,
            assignment: _,
            declare_type,
            binary,
            sensitive,
            scroll,
            hold,
            for_query,
        } = declare;
        self.unsupported(
            declare_type.is_some()
                || binary.is_some()
                || sensitive.is_some()
                || scroll.is_some()
                || hold.is_some()
                || for_query.is_some(),
            "a cursor declaration",
        );
    }

    /// `SET`: a script variable is fine; a system variable (`@@…`) is not
    /// followed: `@@dataset_project_id`, `@@dataset_id` and the like change
    /// how later unqualified names resolve upstream.
    fn set(&mut self, set: &Set) {
        match set {
            Set::SingleAssignment {
                scope,
                hivevar,
                variable,
                values: _,
            } => {
                self.unsupported(
                    scope.is_some() || *hivevar,
                    "SET of a session-scoped variable",
                );
                self.assigned(variable);
            }
            Set::ParenthesizedAssignments {
                variables,
                values: _,
            } => {
                for variable in variables {
                    self.assigned(variable);
                }
            }
            Set::MultipleAssignments { assignments } => {
                for assignment in assignments {
                    self.assigned(&assignment.name);
                }
                self.incomplete("SET of several variables separated by commas is not analyzed");
            }
            Set::SetSessionAuthorization(_)
            | Set::SetSessionParam(_)
            | Set::SetRole { .. }
            | Set::SetTimeZone { .. }
            | Set::SetNames { .. }
            | Set::SetNamesDefault {}
            | Set::SetTransaction { .. } => {
                self.incomplete("this kind of SET is not analyzed");
            }
        }
        self.push(K::Script(ScriptKind::Set), None);
    }

    fn assigned(&mut self, variable: &ObjectName) {
        let system = variable.0.iter().any(|part| {
            part.as_ident()
                .is_none_or(|ident| ident.value.starts_with('@'))
        });
        if system {
            self.incomplete(format!(
                "SET {variable} assigns a system variable, which changes how the rest of the request resolves upstream; analysis does not follow it"
            ));
        }
    }
}
