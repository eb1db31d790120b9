//! BigQuery function calls whose DataFusion counterpart has another name,
//! argument order, result type or NULL behaviour. Calls not listed here
//! keep their name; DataFusion has them with BigQuery's meaning (`LOWER`,
//! `ROUND`, `COALESCE`, `STARTS_WITH`, …) or refuses them as unknown.

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CaseWhen, CastKind, DataType, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArgumentClause, FunctionArguments, Ident, ObjectName, Subscript,
    TimezoneInfo,
};

use super::build::{
    DATETIME_ARROW, TIMESTAMP_ARROW, arrow_cast, binary, call, case_when, cast, is_null, null,
    number, string,
};
use super::datetime::{check_format, interval, part_name};
use super::sql_types::cast_to;
use crate::functions;
use sluice_warehouse::WarehouseError;

/// Rewrites one call, or returns it unchanged.
pub fn rewrite(f: Function) -> Result<Expr, WarehouseError> {
    let parts: Vec<String> = f.name.0.iter().map(|p| p.to_string()).collect();
    let name = match parts.as_slice() {
        [name] => name.trim_matches('`').to_ascii_uppercase(),
        [prefix, _] if prefix.eq_ignore_ascii_case("SAFE") => {
            return Err(WarehouseError::unsupported(format!(
                "SAFE-prefixed function {}",
                f.name
            )));
        }
        _ => {
            return Err(WarehouseError::unsupported(format!(
                "User-defined function {}",
                f.name
            )));
        }
    };
    let n = name.as_str();
    Ok(match n {
        // Arithmetic.
        "SAFE_DIVIDE" => call(functions::SAFE_DIVIDE, args::<2>(&f, n)?.into()),
        "DIV" => call(functions::INT_DIVIDE, args::<2>(&f, n)?.into()),
        "MOD" => {
            let [a, b] = args::<2>(&f, n)?;
            binary(a, BinaryOperator::Modulo, b)
        }
        "GREATEST" | "LEAST" => {
            // BigQuery answers NULL if any argument is NULL; DataFusion skips NULLs.
            let all = list_args(&f, n)?;
            let any_null = all
                .iter()
                .cloned()
                .map(is_null)
                .reduce(|a, b| binary(a, BinaryOperator::Or, b))
                .ok_or_else(|| WarehouseError::invalid_query(format!("{n} needs arguments")))?;
            // A bare NULL takes the type of the ELSE branch.
            case_when(any_null, null(), Some(call(&n.to_ascii_lowercase(), all)))
        }
        // Conditionals.
        "IF" => {
            let [c, a, b] = args::<3>(&f, n)?;
            case_when(c, a, Some(b))
        }
        "IFNULL" => call("coalesce", args::<2>(&f, n)?.into()),
        // Aggregates (they may carry OVER, FILTER or DISTINCT: renamed in place).
        "COUNTIF" => {
            let mut f = f;
            map_single_arg(&mut f, n, |c| case_when(c, number(1), None))?;
            renamed(f, "count")
        }
        "LOGICAL_AND" => renamed(f, "bool_and"),
        "LOGICAL_OR" => renamed(f, "bool_or"),
        "ANY_VALUE" => renamed(f, "first_value"),
        "APPROX_COUNT_DISTINCT" => cast(renamed(f, "approx_distinct"), DataType::BigInt(None)),
        "ROW_NUMBER" | "RANK" | "DENSE_RANK" | "NTILE" => {
            cast(Expr::Function(f), DataType::BigInt(None))
        }
        "STRING_AGG" => string_agg(f)?,
        "ARRAY_AGG" => array_agg(f)?,
        // Arrays.
        "ARRAY_LENGTH" => cast(
            call("cardinality", args::<1>(&f, n)?.into()),
            DataType::BigInt(None),
        ),
        "GENERATE_ARRAY" => call("generate_series", list_args(&f, n)?),
        "SPLIT" => {
            let mut all = list_args(&f, n)?;
            if all.len() == 1 {
                all.push(string(","));
            }
            call("string_to_array", all)
        }
        // Strings.
        "CONCAT" => list_args(&f, n)?
            .into_iter()
            .reduce(|a, b| binary(a, BinaryOperator::StringConcat, b))
            .ok_or_else(|| WarehouseError::invalid_query("CONCAT needs arguments"))?,
        "LENGTH" | "CHAR_LENGTH" | "CHARACTER_LENGTH" => cast(
            call("character_length", args::<1>(&f, n)?.into()),
            DataType::BigInt(None),
        ),
        "BYTE_LENGTH" => cast(
            call("octet_length", args::<1>(&f, n)?.into()),
            DataType::BigInt(None),
        ),
        "SUBSTR" | "SUBSTRING" => substr(list_args(&f, n)?)?,
        "REGEXP_CONTAINS" => call("regexp_like", args::<2>(&f, n)?.into()),
        "REGEXP_REPLACE" => {
            let [s, re, replacement] = args::<3>(&f, n)?;
            call("regexp_replace", vec![s, re, replacement, string("g")])
        }
        "MD5" => call(
            "decode",
            vec![call("md5", args::<1>(&f, n)?.into()), string("hex")],
        ),
        "REGEXP_EXTRACT" => regexp_extract(&f)?,
        "TO_JSON_STRING" | "FORMAT" | "REGEXP_EXTRACT_ALL" | "JSON_EXTRACT" | "JSON_VALUE"
        | "JSON_QUERY" | "FARM_FINGERPRINT" | "NET.HOST" => {
            return Err(WarehouseError::unsupported(format!("The function {n}")));
        }
        // Dates and times.
        "CURRENT_TIMESTAMP" => arrow_cast(call("now", vec![]), TIMESTAMP_ARROW),
        "CURRENT_DATETIME" => arrow_cast(call("now", vec![]), DATETIME_ARROW),
        "DATE" => match list_args(&f, n)?.as_slice() {
            [x] => cast(x.clone(), DataType::Date),
            [y, m, d] => call("make_date", vec![y.clone(), m.clone(), d.clone()]),
            _ => {
                return Err(WarehouseError::unsupported(
                    "DATE with a time zone argument",
                ));
            }
        },
        "DATETIME" => {
            let [x] = args::<1>(&f, n)?;
            cast_to(x, &DataType::Datetime(None), CastKind::Cast)?
        }
        "TIMESTAMP" => {
            let [x] = args::<1>(&f, n)?;
            cast_to(
                x,
                &DataType::Timestamp(None, TimezoneInfo::None),
                CastKind::Cast,
            )?
        }
        "TIMESTAMP_SECONDS" | "TIMESTAMP_MILLIS" | "TIMESTAMP_MICROS" => {
            let [x] = args::<1>(&f, n)?;
            let factor = match n {
                "TIMESTAMP_SECONDS" => 1_000_000,
                "TIMESTAMP_MILLIS" => 1_000,
                _ => 1,
            };
            let micros = binary(
                cast(x, DataType::BigInt(None)),
                BinaryOperator::Multiply,
                number(factor),
            );
            arrow_cast(micros, TIMESTAMP_ARROW)
        }
        "DATE_TRUNC" | "DATETIME_TRUNC" | "TIMESTAMP_TRUNC" => {
            let [x, part] = args::<2>(&f, n).map_err(|_| {
                WarehouseError::unsupported(format!("{n} with a time zone argument"))
            })?;
            call(functions::DATE_TRUNC, vec![x, string(part_name(&part, n)?)])
        }
        "DATE_ADD" | "DATE_SUB" | "DATETIME_ADD" | "DATETIME_SUB" | "TIMESTAMP_ADD"
        | "TIMESTAMP_SUB" => {
            let [x, i] = args::<2>(&f, n)?;
            let (amount, part) = interval(i, n.ends_with("_SUB"), n)?;
            call(functions::DATE_ADD, vec![x, amount, string(part)])
        }
        "DATE_DIFF" | "DATETIME_DIFF" | "TIMESTAMP_DIFF" => {
            let [a, b, part] = args::<3>(&f, n)?;
            call(
                functions::DATE_DIFF,
                vec![a, b, string(part_name(&part, n)?)],
            )
        }
        "FORMAT_DATE" | "FORMAT_DATETIME" | "FORMAT_TIMESTAMP" | "FORMAT_TIME" => {
            let all = list_args(&f, n)?;
            let [format, x] = <[Expr; 2]>::try_from(all).map_err(|_| {
                WarehouseError::unsupported(format!("{n} with a time zone argument"))
            })?;
            check_format(&format, n)?;
            call("to_char", vec![x, format])
        }
        "PARSE_DATE" => {
            let [format, s] = args::<2>(&f, n)?;
            check_format(&format, n)?;
            call("to_date", vec![s, format])
        }
        "PARSE_DATETIME" | "PARSE_TIMESTAMP" => {
            let [format, s] = args::<2>(&f, n).map_err(|_| {
                WarehouseError::unsupported(format!("{n} with a time zone argument"))
            })?;
            check_format(&format, n)?;
            let parsed = call("to_timestamp_micros", vec![s, format]);
            if n == "PARSE_TIMESTAMP" {
                arrow_cast(parsed, TIMESTAMP_ARROW)
            } else {
                parsed
            }
        }
        _ => Expr::Function(f),
    })
}

fn renamed(mut f: Function, name: &str) -> Expr {
    f.name = ObjectName::from(vec![Ident::new(name)]);
    Expr::Function(f)
}

/// Plain positional arguments, refusing DISTINCT, ORDER BY and named forms.
fn list_args(f: &Function, name: &str) -> Result<Vec<Expr>, WarehouseError> {
    if f.over.is_some() || f.filter.is_some() {
        return Err(WarehouseError::unsupported(format!(
            "{name} as a window or filtered function"
        )));
    }
    match &f.args {
        FunctionArguments::None => Ok(Vec::new()),
        FunctionArguments::List(list)
            if list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
        {
            list.args
                .iter()
                .map(|arg| match arg {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                    _ => Err(WarehouseError::unsupported(format!(
                        "{name} with argument {arg}"
                    ))),
                })
                .collect()
        }
        _ => Err(WarehouseError::unsupported(format!(
            "{name} with these arguments ({})",
            f.args
        ))),
    }
}

/// Exactly `N` plain arguments.
fn args<const N: usize>(f: &Function, name: &str) -> Result<[Expr; N], WarehouseError> {
    let all = list_args(f, name)?;
    let count = all.len();
    <[Expr; N]>::try_from(all).map_err(|_| {
        WarehouseError::invalid_query(format!(
            "No matching signature for function {name}: it takes {N} arguments, {count} given"
        ))
    })
}

fn map_single_arg(
    f: &mut Function,
    name: &str,
    map: impl FnOnce(Expr) -> Expr,
) -> Result<(), WarehouseError> {
    if let FunctionArguments::List(list) = &mut f.args
        && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] = list.args.as_mut_slice()
    {
        let taken = std::mem::replace(e, null());
        *e = map(taken);
        return Ok(());
    }
    Err(WarehouseError::invalid_query(format!(
        "{name} takes exactly one argument"
    )))
}

fn refuse_limit_and_nulls(f: &Function, name: &str) -> Result<(), WarehouseError> {
    if f.null_treatment.is_some() {
        return Err(WarehouseError::unsupported(format!(
            "{name} with IGNORE/RESPECT NULLS"
        )));
    }
    if let FunctionArguments::List(list) = &f.args {
        for clause in &list.clauses {
            match clause {
                FunctionArgumentClause::OrderBy(_) => {}
                other => {
                    return Err(WarehouseError::unsupported(format!("{name} with {other}")));
                }
            }
        }
    }
    Ok(())
}

/// `STRING_AGG(x [, sep])`: BigQuery's separator defaults to ",".
fn string_agg(mut f: Function) -> Result<Expr, WarehouseError> {
    refuse_limit_and_nulls(&f, "STRING_AGG")?;
    if let FunctionArguments::List(list) = &mut f.args
        && list.args.len() == 1
    {
        list.args
            .push(FunctionArg::Unnamed(FunctionArgExpr::Expr(string(","))));
    }
    Ok(renamed(f, "string_agg"))
}

/// `ARRAY_AGG(x [ORDER BY …] [LIMIT n])`: the limit keeps the first `n`
/// elements in the aggregate's order.
fn array_agg(mut f: Function) -> Result<Expr, WarehouseError> {
    let mut limit = None;
    if let FunctionArguments::List(list) = &mut f.args {
        list.clauses.retain(|clause| match clause {
            FunctionArgumentClause::Limit(n) => {
                limit = Some(n.clone());
                false
            }
            _ => true,
        });
    }
    refuse_limit_and_nulls(&f, "ARRAY_AGG")?;
    let aggregate = renamed(f, "array_agg");
    Ok(match limit {
        None => aggregate,
        Some(n @ Expr::Value(_)) => call("array_slice", vec![aggregate, number(1), n]),
        Some(other) => {
            return Err(WarehouseError::invalid_query(format!(
                "ARRAY_AGG's LIMIT must be a literal integer, not {other}"
            )));
        }
    })
}

/// `REGEXP_EXTRACT(s, re)`: the first capture group, or the whole match
/// when the pattern has none; NULL when nothing matches.
fn regexp_extract(f: &Function) -> Result<Expr, WarehouseError> {
    let [s, re] = args::<2>(f, "REGEXP_EXTRACT")?;
    Ok(Expr::CompoundFieldAccess {
        root: Box::new(call("regexp_match", vec![s, re])),
        access_chain: vec![AccessExpr::Subscript(Subscript::Index { index: number(1) })],
    })
}

/// `SUBSTR(s, pos [, len])`: a negative `pos` counts from the end, and a
/// position before the start means the start (DataFusion would shorten
/// the result instead).
pub fn substr(all: Vec<Expr>) -> Result<Expr, WarehouseError> {
    let mut all = all.into_iter();
    let (Some(s), Some(pos)) = (all.next(), all.next()) else {
        return Err(WarehouseError::invalid_query(
            "SUBSTR takes 2 or 3 arguments",
        ));
    };
    let length = all.next();
    if all.next().is_some() {
        return Err(WarehouseError::invalid_query(
            "SUBSTR takes 2 or 3 arguments",
        ));
    }
    let len_s = || call("character_length", vec![s.clone()]);
    let start = Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![
            CaseWhen {
                condition: binary(pos.clone(), BinaryOperator::Gt, number(0)),
                result: pos.clone(),
            },
            CaseWhen {
                condition: binary(
                    binary(pos.clone(), BinaryOperator::Eq, number(0)),
                    BinaryOperator::Or,
                    binary(
                        binary(len_s(), BinaryOperator::Plus, pos.clone()),
                        BinaryOperator::Lt,
                        number(0),
                    ),
                ),
                result: number(1),
            },
        ],
        else_result: Some(Box::new(binary(
            binary(len_s(), BinaryOperator::Plus, pos),
            BinaryOperator::Plus,
            number(1),
        ))),
    };
    let mut call_args = vec![s, start];
    call_args.extend(length);
    Ok(call("substr", call_args))
}
