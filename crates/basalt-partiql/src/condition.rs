//! A WHERE clause bound to DynamoDB's condition language (`basalt_dynamodb_expr::ast`), so
//! that it evaluates through `Condition::eval` like any ConditionExpression or FilterExpression.
//!
//! Functions: `attribute_exists`, `attribute_not_exists`, `attribute_type`, `begins_with`,
//! `contains`, `size` (ql-functions); `x IS [NOT] MISSING|NULL|<type>` (ql-functions.missing,
//! ql-operators).

use crate::error::PartiqlError;
use crate::literal::value_of;
use crate::syntax::{BinOp, Expr, Step, SynPath};
use basalt_dynamodb_expr::ast::{Comparator, Condition, Function, Operand};
use basalt_dynamodb_expr::{AttributeValue, Path};

/// The types DynamoDB's attribute_type accepts.
const TYPE_NAMES: &[&str] = &["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];

/// A syntax path as the expression library's path.
pub(crate) fn path(p: &SynPath) -> Path {
    let mut out = Path::attr(p.root.clone());
    for s in &p.steps {
        out = match s {
            Step::Attr(a) => out.child(a.clone()),
            Step::Index(i) => out.index(usize::try_from(*i).unwrap_or(usize::MAX)),
        };
    }
    out
}

/// A WHERE clause as a condition.
pub(crate) fn condition(e: &Expr, params: &[AttributeValue]) -> Result<Condition, PartiqlError> {
    match e {
        Expr::Binary(BinOp::And, l, r, _) => {
            Ok(Condition::and(condition(l, params)?, condition(r, params)?))
        }
        Expr::Binary(BinOp::Or, l, r, _) => {
            Ok(Condition::or(condition(l, params)?, condition(r, params)?))
        }
        Expr::Not(inner, _) => Ok(Condition::not(condition(inner, params)?)),
        Expr::Binary(op @ (BinOp::Add | BinOp::Sub), ..) => Err(PartiqlError(format!(
            "Unsupported operator in Condition Expression. Operator: {}",
            op.symbol()
        ))),
        Expr::Binary(op, l, r, _) => compare(*op, l, r, params),
        Expr::Between {
            subject,
            low,
            high,
            negated,
            ..
        } => {
            let value = operand(subject, params)?;
            let low = operand(low, params)?;
            let high = operand(high, params)?;
            for o in [&value, &low, &high] {
                orderable(o, "BETWEEN")?;
            }
            let c = Condition::between(value, low, high);
            Ok(if *negated { Condition::not(c) } else { c })
        }
        Expr::In {
            subject,
            list,
            negated,
            ..
        } => {
            let invalid = || {
                PartiqlError::msg(
                    "IN operator must have a left hand argument of type Variable Reference and right hand argument of type Seq with at least one member",
                )
            };
            let Expr::Path(p) = subject.as_ref() else {
                return Err(invalid());
            };
            if list.is_empty() {
                return Err(invalid());
            }
            let list = list
                .iter()
                .map(|x| operand(x, params))
                .collect::<Result<Vec<_>, _>>()?;
            let c = Condition::is_in(Operand::path(path(p)), list);
            Ok(if *negated { Condition::not(c) } else { c })
        }
        Expr::Is {
            subject,
            type_name,
            negated,
            ..
        } => is(subject, type_name, *negated),
        Expr::Call(name, args, pos) => function(name, args, params).unwrap_or_else(|| {
            Err(PartiqlError(format!(
                "Unrecognized function: {} at {}",
                name.to_ascii_lowercase(),
                pos.at()
            )))
        }),
        _ => Err(PartiqlError::msg(
            "WHERE clause must contain an expression that resolves to a boolean",
        )),
    }
}

/// `l <op> r`. A boolean function compared with TRUE or FALSE is the function or its negation
/// (DynamoDB runs `attribute_exists(a) = true`).
fn compare(
    op: BinOp,
    l: &Expr,
    r: &Expr,
    params: &[AttributeValue],
) -> Result<Condition, PartiqlError> {
    if matches!(l, Expr::Missing(_)) || matches!(r, Expr::Missing(_)) {
        return Err(PartiqlError::msg(
            "MISSING must be compared using IS operator",
        ));
    }
    for (f, b) in [(l, r), (r, l)] {
        if let (Expr::Call(name, args, _), Expr::Bool(truth, _)) = (f, b)
            && matches!(op, BinOp::Eq | BinOp::Ne)
            && let Some(c) = function(name, args, params)
        {
            let c = c?;
            return Ok(if *truth == (op == BinOp::Eq) {
                c
            } else {
                Condition::not(c)
            });
        }
    }
    let cmp = match op {
        BinOp::Eq => Comparator::Eq,
        BinOp::Ne => Comparator::Ne,
        BinOp::Lt => Comparator::Lt,
        BinOp::Le => Comparator::Le,
        BinOp::Gt => Comparator::Gt,
        _ => Comparator::Ge,
    };
    let left = operand(l, params)?;
    let right = operand(r, params)?;
    if !matches!(cmp, Comparator::Eq | Comparator::Ne) {
        orderable(&left, cmp.symbol())?;
        orderable(&right, cmp.symbol())?;
    }
    Ok(Condition::compare(left, cmp, right))
}

/// `<`, `<=`, `>`, `>=` and BETWEEN refuse a literal of a type with no order, whatever the
/// other side is (DynamoDB checks the operand alone).
fn orderable(o: &Operand, op: &str) -> Result<(), PartiqlError> {
    if let Operand::Value(v) = o
        && !matches!(
            v,
            AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_)
        )
    {
        return Err(PartiqlError(format!(
            "Incorrect operand type for operator or function; operator or function: {op}, operand type: {}",
            v.type_name()
        )));
    }
    Ok(())
}

/// A path, `size(path)` or a literal.
fn operand(e: &Expr, params: &[AttributeValue]) -> Result<Operand, PartiqlError> {
    match e {
        Expr::Path(p) => Ok(Operand::path(path(p))),
        Expr::Missing(_) => Err(PartiqlError::msg(
            "MISSING must be compared using IS operator",
        )),
        Expr::Call(name, args, pos) => {
            if name.eq_ignore_ascii_case("size") {
                let [arg] = args.as_slice() else {
                    return Err(operand_count("size", args.len()));
                };
                let Expr::Path(p) = arg else {
                    return Err(needs_path("size"));
                };
                return Ok(Operand::size(path(p)));
            }
            Err(PartiqlError(format!(
                "Unrecognized function: {} at {}",
                name.to_ascii_lowercase(),
                pos.at()
            )))
        }
        Expr::Binary(op, ..) => Err(PartiqlError(format!(
            "Unsupported operator in Condition Expression. Operator: {}",
            op.symbol()
        ))),
        Expr::Not(..) | Expr::Between { .. } | Expr::In { .. } | Expr::Is { .. } => Err(
            PartiqlError::msg("WHERE clause must contain an expression that resolves to a boolean"),
        ),
        literal => Ok(Operand::value(value_of(literal, params)?)),
    }
}

fn operand_count(name: &str, n: usize) -> PartiqlError {
    PartiqlError(format!(
        "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {n}"
    ))
}

fn needs_path(name: &str) -> PartiqlError {
    PartiqlError(format!(
        "Operator or function requires a document path; operator or function: {name}"
    ))
}

/// The boolean condition functions; `None` when `name` is not one of them.
fn function(
    name: &str,
    args: &[Expr],
    params: &[AttributeValue],
) -> Option<Result<Condition, PartiqlError>> {
    let lower = name.to_ascii_lowercase();
    let arity = match lower.as_str() {
        "attribute_exists" | "attribute_not_exists" => 1,
        "attribute_type" | "begins_with" | "contains" => 2,
        _ => return None,
    };
    Some((|| {
        if args.len() != arity {
            return Err(operand_count(&lower, args.len()));
        }
        let path_arg = |e: &Expr| match e {
            Expr::Path(p) => Ok(path(p)),
            _ => Err(needs_path(&lower)),
        };
        let f = match lower.as_str() {
            "attribute_exists" => Function::AttributeExists(path_arg(&args[0])?),
            "attribute_not_exists" => Function::AttributeNotExists(path_arg(&args[0])?),
            "attribute_type" => {
                let p = path_arg(&args[0])?;
                let ty = operand(&args[1], params)?;
                match &ty {
                    Operand::Value(AttributeValue::S(s)) if !TYPE_NAMES.contains(&s.as_str()) => {
                        return Err(PartiqlError(format!(
                            "Invalid attribute type name found; type: {s}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                        )));
                    }
                    Operand::Value(AttributeValue::S(_)) => {}
                    Operand::Value(v) => {
                        return Err(PartiqlError(format!(
                            "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: {}",
                            v.type_name()
                        )));
                    }
                    _ => {}
                }
                Function::AttributeType(Operand::path(p), ty)
            }
            "begins_with" => {
                Function::BeginsWith(operand(&args[0], params)?, operand(&args[1], params)?)
            }
            _ => Function::Contains(operand(&args[0], params)?, operand(&args[1], params)?),
        };
        Ok(Condition::function(f))
    })())
}

/// `x IS [NOT] <type>`: MISSING is attribute_not_exists, the rest are attribute_type.
fn is(subject: &Expr, type_name: &str, negated: bool) -> Result<Condition, PartiqlError> {
    let Expr::Path(p) = subject else {
        return Err(PartiqlError::msg(
            "The left hand side argument to IS must be a Variable Reference, Literal, or Path",
        ));
    };
    let p = path(p);
    let ty = match type_name {
        "MISSING" => {
            let f = if negated {
                Function::AttributeExists(p)
            } else {
                Function::AttributeNotExists(p)
            };
            return Ok(Condition::function(f));
        }
        "NULL" => "NULL",
        "BOOL" | "BOOLEAN" => "BOOL",
        "STRING" => "S",
        "NUMERIC" | "INT" | "INTEGER" | "DECIMAL" | "FLOAT" | "REAL" | "DOUBLE" | "SMALLINT" => "N",
        "BLOB" => "B",
        "STRUCT" | "TUPLE" => "M",
        "LIST" => "L",
        other => {
            return Err(PartiqlError(format!(
                "Unsupported data type for IS operator: {other}. Supported data types are [MISSING, NULL, BOOLEAN, BLOB, STRING, NUMERIC, STRUCT, TUPLE, LIST]"
            )));
        }
    };
    let c = Condition::function(Function::AttributeType(
        Operand::path(p),
        Operand::value(AttributeValue::S(ty.to_string())),
    ));
    Ok(if negated { Condition::not(c) } else { c })
}
