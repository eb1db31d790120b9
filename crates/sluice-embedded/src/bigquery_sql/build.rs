//! Small constructors for the sqlparser tree the rewrite produces, so the
//! rewrite rules read as the SQL they build.

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CaseWhen, CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, Ident, ObjectName, Value,
};

/// The Arrow type of BigQuery's TIMESTAMP: microseconds, UTC.
pub const TIMESTAMP_ARROW: &str = "Timestamp(Microsecond, Some(\"UTC\"))";
/// The Arrow type of BigQuery's DATETIME: microseconds, no zone.
pub const DATETIME_ARROW: &str = "Timestamp(Microsecond, None)";
/// The Arrow type of BigQuery's TIME: microseconds since midnight.
pub const TIME_ARROW: &str = "Time64(Microsecond)";

/// `name(args…)`, a plain call DataFusion resolves by (lower-case) name.
pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

pub fn string(s: impl Into<String>) -> Expr {
    Expr::value(Value::SingleQuotedString(s.into()))
}

pub fn number(n: impl std::fmt::Display) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

pub fn null() -> Expr {
    Expr::value(Value::Null)
}

pub fn boolean(b: bool) -> Expr {
    Expr::value(Value::Boolean(b))
}

pub fn cast(expr: Expr, data_type: DataType) -> Expr {
    cast_kind(expr, data_type, CastKind::Cast)
}

pub fn cast_kind(expr: Expr, data_type: DataType, kind: CastKind) -> Expr {
    Expr::Cast {
        kind,
        expr: Box::new(expr),
        data_type,
        array: false,
        format: None,
    }
}

/// DataFusion's `arrow_cast(expr, 'Type')`, for the Arrow types SQL type
/// names cannot spell (a UTC timestamp, microsecond times).
pub fn arrow_cast(expr: Expr, arrow_type: &str) -> Expr {
    call("arrow_cast", vec![expr, string(arrow_type)])
}

pub fn binary(left: Expr, op: BinaryOperator, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(nested(left)),
        op,
        right: Box::new(nested(right)),
    }
}

/// Parenthesizes, so a rewritten tree prints back as the same tree.
pub fn nested(expr: Expr) -> Expr {
    match expr {
        Expr::Nested(_)
        | Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Value(_)
        | Expr::Function(_)
        | Expr::Cast { .. } => expr,
        other => Expr::Nested(Box::new(other)),
    }
}

/// `CASE WHEN cond THEN then ELSE otherwise END`.
pub fn case_when(cond: Expr, then: Expr, otherwise: Option<Expr>) -> Expr {
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition: cond,
            result: then,
        }],
        else_result: otherwise.map(Box::new),
    }
}

pub fn is_null(expr: Expr) -> Expr {
    Expr::IsNull(Box::new(nested(expr)))
}
