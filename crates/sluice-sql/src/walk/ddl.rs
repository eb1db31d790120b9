//! DDL: what `CREATE`, `ALTER` and `DROP` statements create, change and
//! drop. Tables and views are writes; datasets and routines are objects
//! policy checks against `allow.write` by name. Called from
//! [`super::statements`], which names every field of each statement.

use sqlparser::ast::{
    AlterSchema, AlterSchemaOperation, AlterTable, AlterTableOperation, CreateFunction,
    CreateTable, CreateTableLikeKind, CreateTableOptions, CreateView, DropFunction, FunctionDesc,
    HiveDistributionStyle, ObjectName, ObjectType, SchemaName,
};

use super::{Walker, addr, parts};
use crate::facts::{Flag, ObjectKind, StatementKind as K};

impl Walker<'_> {
    pub(super) fn create_table(&mut self, create: &CreateTable) {
        let CreateTable {
            or_replace,
            temporary: _,
            external: _,
            dynamic,
            global,
            if_not_exists: _,
            transient,
            volatile,
            iceberg,
            snapshot: _,
            name,
            columns: _,
            constraints: _,
            hive_distribution,
            hive_formats,
            table_options,
            file_format,
            location,
            query: _,
            without_rowid,
            like,
            clone,
            version: _,
            comment: _,
            on_commit,
            on_cluster,
            primary_key,
            order_by,
            partition_by: _,
            cluster_by: _,
            clustered_by,
            inherits,
            partition_of,
            for_values,
            strict,
            copy_grants,
            enable_schema_evolution,
            change_tracking,
            data_retention_time_in_days,
            max_data_extension_time_in_days,
            default_ddl_collation: _,
            with_aggregation_policy,
            with_row_access_policy,
            with_storage_lifecycle_policy,
            with_tags,
            external_volume,
            base_location,
            catalog,
            catalog_sync,
            storage_serialization_policy,
            target_lag,
            warehouse,
            refresh_mode,
            initialize,
            require_user,
            diststyle,
            distkey,
            sortkey,
            backup,
        } = create;
        self.unsupported(
            *dynamic || *transient || *volatile || *iceberg || global.is_some(),
            "CREATE DYNAMIC/TRANSIENT/VOLATILE/ICEBERG/GLOBAL TABLE",
        );
        self.unsupported(
            !matches!(hive_distribution, HiveDistributionStyle::NONE)
                || hive_formats.is_some()
                || file_format.is_some()
                || location.is_some()
                || clustered_by.is_some(),
            "Hive table storage clauses",
        );
        self.unsupported(
            !matches!(
                table_options,
                CreateTableOptions::None | CreateTableOptions::Options(_)
            ),
            "table options other than OPTIONS (…)",
        );
        self.unsupported(
            inherits.is_some() || partition_of.is_some() || for_values.is_some(),
            "CREATE TABLE … INHERITS / PARTITION OF",
        );
        self.unsupported(
            *without_rowid
                || *strict
                || on_commit.is_some()
                || on_cluster.is_some()
                || primary_key.is_some()
                || order_by.is_some(),
            "CREATE TABLE clauses of other dialects",
        );
        self.unsupported(
            *copy_grants
                || enable_schema_evolution.is_some()
                || change_tracking.is_some()
                || data_retention_time_in_days.is_some()
                || max_data_extension_time_in_days.is_some()
                || with_aggregation_policy.is_some()
                || with_row_access_policy.is_some()
                || with_storage_lifecycle_policy.is_some()
                || with_tags.is_some()
                || external_volume.is_some()
                || base_location.is_some()
                || catalog.is_some()
                || catalog_sync.is_some()
                || storage_serialization_policy.is_some()
                || target_lag.is_some()
                || warehouse.is_some()
                || refresh_mode.is_some()
                || initialize.is_some()
                || *require_user,
            "Snowflake table clauses",
        );
        self.unsupported(
            diststyle.is_some() || distkey.is_some() || sortkey.is_some() || backup.is_some(),
            "Redshift table clauses",
        );
        let object = self.write(name);
        if let Some(like) = like {
            let (CreateTableLikeKind::Parenthesized(like) | CreateTableLikeKind::Plain(like)) =
                like;
            self.read(&like.name);
        }
        if let Some(clone) = clone {
            self.read(clone);
        }
        let kind = K::Create {
            object: ObjectKind::Table,
            or_replace: *or_replace,
        };
        self.push(kind, object);
    }

    pub(super) fn create_view(&mut self, view: &CreateView) {
        let CreateView {
            or_alter,
            or_replace,
            materialized,
            secure,
            name,
            name_before_not_exists: _,
            columns: _,
            query: _,
            options,
            cluster_by: _,
            comment: _,
            with_no_schema_binding,
            if_not_exists: _,
            temporary,
            copy_grants,
            to,
            params,
        } = view;
        self.unsupported(*or_alter, "CREATE OR ALTER VIEW");
        self.unsupported(*temporary, "CREATE TEMPORARY VIEW");
        // `TO t` makes a materialized view write into another table.
        self.unsupported(to.is_some(), "CREATE MATERIALIZED VIEW … TO");
        self.unsupported(
            *secure || *with_no_schema_binding || *copy_grants || params.is_some(),
            "view clauses of other dialects",
        );
        self.unsupported(
            !matches!(
                options,
                CreateTableOptions::None | CreateTableOptions::Options(_)
            ),
            "view options other than OPTIONS (…)",
        );
        let object = self.write(name);
        let kind = if *materialized {
            ObjectKind::MaterializedView
        } else {
            ObjectKind::View
        };
        let kind = K::Create {
            object: kind,
            or_replace: *or_replace,
        };
        self.push(kind, object);
    }

    /// `CREATE [TEMP] FUNCTION`. A temporary function has a one-part name
    /// and lives in the request's session only; any other function is a
    /// persistent routine, written like a table (a one-part name takes the
    /// default dataset).
    pub(super) fn create_function(&mut self, function: &CreateFunction) {
        let CreateFunction {
            or_alter,
            or_replace,
            temporary,
            if_not_exists: _,
            name,
            args: _,
            return_type: _,
            function_body: _,
            behavior,
            called_on_null,
            parallel,
            security,
            set_params,
            using,
            language,
            determinism_specifier: _,
            options: _,
            remote_connection: _,
        } = function;
        self.unsupported(*or_alter, "CREATE OR ALTER FUNCTION");
        self.unsupported(
            behavior.is_some()
                || called_on_null.is_some()
                || parallel.is_some()
                || security.is_some()
                || !set_params.is_empty()
                || using.is_some(),
            "function clauses of other dialects",
        );
        match language.as_ref().map(|l| l.value.to_ascii_lowercase()) {
            None => {}
            Some(language) if language == "sql" => {}
            Some(language) if language == "js" => {
                self.facts.flags.insert(Flag::JavascriptUdf);
            }
            Some(language) => {
                self.incomplete(format!("a function in LANGUAGE {language} is not analyzed"));
            }
        }
        let kind = K::Create {
            object: ObjectKind::Function,
            or_replace: *or_replace,
        };
        if !*temporary {
            let object = self.routine(name).map(|r| r.to_string());
            self.push(kind, object);
            return;
        }
        self.facts.flags.insert(Flag::TemporaryFunction);
        self.accounted.insert(addr(name));
        match parts(name).as_deref() {
            Some([one]) => {
                self.temporary_functions.insert(one.to_uppercase());
            }
            _ => self.incomplete(format!(
                "temporary function `{name}` has a qualified name, which BigQuery does not allow"
            )),
        }
        self.push_statement(kind, Some(name.to_string()), true);
    }

    pub(super) fn drop_function(&mut self, drop: &DropFunction) {
        let DropFunction {
            if_exists: _,
            func_desc,
            drop_behavior,
        } = drop;
        self.unsupported(drop_behavior.is_some(), "DROP FUNCTION … CASCADE/RESTRICT");
        let temporary = match func_desc.as_slice() {
            [FunctionDesc { name, args: _ }] => self.is_temporary_function(name),
            _ => false,
        };
        let kind = K::Drop {
            object: ObjectKind::Function,
        };
        if temporary {
            let object = func_desc.first().map(|desc| {
                self.accounted.insert(addr(&desc.name));
                desc.name.to_string()
            });
            self.push_statement(kind, object, true);
            return;
        }
        let object = self.dropped_routine(func_desc, true);
        self.push(kind, object);
    }

    /// A function created earlier in this request as temporary.
    fn is_temporary_function(&self, name: &ObjectName) -> bool {
        match parts(name).as_deref() {
            Some([one]) => self.temporary_functions.contains(&one.to_uppercase()),
            _ => false,
        }
    }

    /// The routine a `DROP FUNCTION`/`DROP PROCEDURE` drops: exactly one,
    /// so policy checks the one it names.
    fn dropped_routine(&mut self, descs: &[FunctionDesc], function: bool) -> Option<String> {
        let what = if function { "function" } else { "procedure" };
        match descs {
            [FunctionDesc { name, args: _ }] => self.routine(name).map(|r| r.to_string()),
            _ => {
                self.incomplete(format!("DROP of several routines at once ({what})"));
                None
            }
        }
    }

    pub(super) fn alter_table(&mut self, alter: &AlterTable) {
        let AlterTable {
            name,
            if_exists: _,
            only,
            operations,
            location,
            on_cluster,
            table_type,
            end_token: _,
        } = alter;
        self.unsupported(
            *only || location.is_some() || on_cluster.is_some() || table_type.is_some(),
            "ALTER TABLE clauses of other dialects",
        );
        for operation in operations {
            self.alter_table_operation(operation);
        }
        let object = self.write(name);
        let kind = K::Alter {
            object: ObjectKind::Table,
        };
        self.push(kind, object);
    }

    /// The operations BigQuery has change the altered table only; the
    /// rest (renames, swaps, partitions moved between tables, …) may
    /// touch other tables and are not analyzed.
    fn alter_table_operation(&mut self, operation: &AlterTableOperation) {
        use AlterTableOperation as Op;
        match operation {
            Op::AddColumn { .. }
            | Op::DropColumn { .. }
            | Op::RenameColumn { .. }
            | Op::AlterColumn { .. }
            | Op::AddConstraint { .. }
            | Op::DropConstraint { .. }
            | Op::DropPrimaryKey { .. }
            | Op::DropForeignKey { .. }
            | Op::SetOptionsParens { .. } => {}
            Op::RenameTable { .. } => self.incomplete("ALTER TABLE … RENAME TO is not analyzed"),
            _ => self.incomplete("this ALTER TABLE operation is not analyzed"),
        }
    }

    pub(super) fn alter_schema(&mut self, alter: &AlterSchema) {
        let AlterSchema {
            name,
            if_exists: _,
            operations,
        } = alter;
        for operation in operations {
            match operation {
                AlterSchemaOperation::SetDefaultCollate { .. }
                | AlterSchemaOperation::AddReplica { .. }
                | AlterSchemaOperation::DropReplica { .. }
                | AlterSchemaOperation::SetOptionsParens { .. } => {}
                AlterSchemaOperation::Rename { .. } | AlterSchemaOperation::OwnerTo { .. } => {
                    self.incomplete("ALTER SCHEMA … RENAME/OWNER TO is not analyzed");
                }
            }
        }
        let object = self.schema(name);
        let kind = K::Alter {
            object: ObjectKind::Schema,
        };
        self.push(kind, Some(object));
    }

    pub(super) fn drop(&mut self, object_type: ObjectType, names: &[ObjectName]) {
        let object = match object_type {
            ObjectType::Table => ObjectKind::Table,
            ObjectType::View => ObjectKind::View,
            ObjectType::MaterializedView => ObjectKind::MaterializedView,
            ObjectType::Schema | ObjectType::Database => ObjectKind::Schema,
            _ => ObjectKind::Other,
        };
        let mut shown = None;
        for name in names {
            shown = match object {
                ObjectKind::Table | ObjectKind::View | ObjectKind::MaterializedView => {
                    self.write(name)
                }
                ObjectKind::Schema => Some(self.schema(name)),
                _ => {
                    self.incomplete(format!("DROP {object_type} is not analyzed"));
                    self.accounted.insert(addr(name));
                    Some(name.to_string())
                }
            };
        }
        self.push(K::Drop { object }, shown);
    }

    pub(super) fn create_procedure(&mut self, or_alter: bool, name: &ObjectName, language: bool) {
        self.unsupported(or_alter, "CREATE OR ALTER PROCEDURE");
        self.unsupported(language, "a procedure in another language than SQL");
        let object = self.routine(name).map(|r| r.to_string());
        let kind = K::Create {
            object: ObjectKind::Procedure,
            or_replace: false,
        };
        self.push(kind, object);
    }

    pub(super) fn create_schema(&mut self, schema_name: &SchemaName) {
        let object = match schema_name {
            SchemaName::Simple(name) | SchemaName::NamedAuthorization(name, _) => {
                Some(self.schema(name))
            }
            SchemaName::UnnamedAuthorization(_) => {
                self.incomplete("CREATE SCHEMA without a name");
                None
            }
        };
        let kind = K::Create {
            object: ObjectKind::Schema,
            or_replace: false,
        };
        self.push(kind, object);
    }

    pub(super) fn alter_view(&mut self, name: &ObjectName) {
        let object = self.write(name);
        let kind = K::Alter {
            object: ObjectKind::View,
        };
        self.push(kind, object);
    }

    pub(super) fn drop_procedure(&mut self, descs: &[FunctionDesc]) {
        let object = self.dropped_routine(descs, false);
        let kind = K::Drop {
            object: ObjectKind::Procedure,
        };
        self.push(kind, object);
    }
}
