//! SET and REMOVE of an UPDATE bound to DynamoDB's update expression
//! (`basalt_dynamodb_expr::ast::Update`), so that they apply through `Update::apply`.
//!
//! `SET a = set_add(a, <<...>>)` is DynamoDB's `ADD a :v` and `set_delete` its `DELETE a :v`
//! (ql-reference.update); `list_append` and `+`/`-` are the update expression's own.

use crate::condition::path;
use crate::error::PartiqlError;
use crate::literal::value_of;
use crate::syntax::{Assignment, BinOp, Expr, SynPath};
use basalt_dynamodb_expr::ast::{SetValue, Update, UpdateAction, UpdateOperand};
use basalt_dynamodb_expr::{AttributeValue, Path, PathElement};

pub(crate) fn update(
    assignments: &[Assignment],
    params: &[AttributeValue],
) -> Result<Update, PartiqlError> {
    let mut actions = Vec::with_capacity(assignments.len());
    for a in assignments {
        actions.push(match a {
            Assignment::Remove(p) => UpdateAction::Remove(path(p)),
            Assignment::Set(target, value) => set(target, value, params)?,
        });
    }
    check_overlaps(&actions)?;
    Ok(Update { actions })
}

fn set(
    target: &SynPath,
    value: &Expr,
    params: &[AttributeValue],
) -> Result<UpdateAction, PartiqlError> {
    let p = path(target);
    if let Expr::Call(name, args, pos) = value {
        let upper = name.to_ascii_uppercase();
        if upper == "SET_ADD" || upper == "SET_DELETE" {
            let op = &upper[4..];
            let [first, second] = args.as_slice() else {
                return Err(PartiqlError(format!(
                    "SET_{op} must have exactly two arguments at {}",
                    pos.at()
                )));
            };
            if !matches!(first, Expr::Path(f) if path(f) == p) {
                return Err(PartiqlError(format!(
                    "The first argument to SET_{op} must equal the assignment value at {}",
                    pos.at()
                )));
            }
            let not_a_set = || {
                PartiqlError(format!(
                    "The second argument to SET_{op} must be a value with type SET at {}",
                    first.pos().at()
                ))
            };
            if !matches!(second, Expr::Bag(..) | Expr::Param(..)) {
                return Err(not_a_set());
            }
            let v = value_of(second, params)?;
            if !matches!(
                v,
                AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
            ) {
                return Err(not_a_set());
            }
            return Ok(if op == "ADD" {
                UpdateAction::Add { path: p, value: v }
            } else {
                UpdateAction::Delete { path: p, value: v }
            });
        }
    }
    let value = match value {
        Expr::Binary(BinOp::Add, l, r, _) => {
            SetValue::Plus(operand(l, params)?, operand(r, params)?)
        }
        Expr::Binary(BinOp::Sub, l, r, _) => {
            SetValue::Minus(operand(l, params)?, operand(r, params)?)
        }
        other => SetValue::Operand(operand(other, params)?),
    };
    Ok(UpdateAction::Set { path: p, value })
}

/// A path, a literal or `list_append(a, b)`.
fn operand(e: &Expr, params: &[AttributeValue]) -> Result<UpdateOperand, PartiqlError> {
    match e {
        Expr::Path(p) => Ok(UpdateOperand::Path(path(p))),
        Expr::Call(name, args, pos) => {
            if !name.eq_ignore_ascii_case("list_append") {
                return Err(PartiqlError(format!(
                    "Unrecognized function: {} at {}",
                    name.to_ascii_lowercase(),
                    pos.at()
                )));
            }
            let [a, b] = args.as_slice() else {
                return Err(PartiqlError(format!(
                    "Incorrect number of operands for operator or function; operator or function: list_append, number of operands: {}",
                    args.len()
                )));
            };
            Ok(UpdateOperand::ListAppend(
                Box::new(operand(a, params)?),
                Box::new(operand(b, params)?),
            ))
        }
        Expr::Is { .. } => Err(PartiqlError::msg(
            "IS operator is not supported in update expressions",
        )),
        Expr::Binary(op, ..) => Err(PartiqlError(format!(
            "Unsupported operator in Update Expression. Operator: {}",
            op.symbol()
        ))),
        Expr::Not(..) => Err(PartiqlError::msg(
            "Unsupported operator in Update Expression. Operator: NOT",
        )),
        Expr::Between { .. } => Err(PartiqlError::msg(
            "Unsupported operator in Update Expression. Operator: BETWEEN",
        )),
        Expr::In { .. } => Err(PartiqlError::msg(
            "Unsupported operator in Update Expression. Operator: IN",
        )),
        literal => Ok(UpdateOperand::Value(value_of(literal, params)?)),
    }
}

/// Two actions on one path, on a path and its parent (overlap), or on a map key and a list
/// index at the same step (conflict) are refused as in an UpdateExpression
/// (Expressions.UpdateExpressions).
fn check_overlaps(actions: &[UpdateAction]) -> Result<(), PartiqlError> {
    let paths: Vec<&Path> = actions
        .iter()
        .map(|a| match a {
            UpdateAction::Set { path, .. }
            | UpdateAction::Remove(path)
            | UpdateAction::Add { path, .. }
            | UpdateAction::Delete { path, .. } => path,
        })
        .collect();
    let refuse = |what: &str, one: &Path, two: &Path| {
        PartiqlError(format!(
            "Two document paths {what} with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
            one.bracketed(),
            two.bracketed()
        ))
    };
    for (i, later) in paths.iter().enumerate() {
        for earlier in &paths[..i] {
            let mut diverged = false;
            for (a, b) in earlier.elements.iter().zip(&later.elements) {
                let same_kind = matches!(
                    (a, b),
                    (PathElement::Attr(_), PathElement::Attr(_))
                        | (PathElement::Index(_), PathElement::Index(_))
                );
                if !same_kind {
                    return Err(refuse("conflict", earlier, later));
                }
                if a != b {
                    diverged = true;
                    break;
                }
            }
            if !diverged {
                return Err(refuse("overlap", earlier, later));
            }
        }
    }
    Ok(())
}
