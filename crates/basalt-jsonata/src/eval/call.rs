//! Function values and their application: lambdas (with closures and tail-call trampolining),
//! built-ins, host functions, partial application, regex matchers, transforms and `~>` chains.

use super::{Ctx, Env, Frame, Result, evaluate};
use crate::ast::{Kind, Node};
use crate::error::JsonataError;
use crate::signature::Signature;
use crate::value::{Object, Value};
use std::rc::Rc;
use std::sync::Arc;

pub(crate) enum Function {
    Lambda {
        params: Vec<String>,
        signature: Option<Arc<Signature>>,
        body: Arc<Node>,
        env: Env,
        input: Value,
        thunk: bool,
    },
    Builtin(&'static crate::functions::Builtin),
    Host(crate::HostFn),
    /// Arguments bound so far; `None` marks a `?` placeholder.
    Partial {
        func: Value,
        args: Vec<Option<Value>>,
    },
    Regex(Arc<regex::Regex>),
    /// The `next` of a regex match object: the next match at or after `from`.
    RegexNext {
        re: Arc<regex::Regex>,
        text: Rc<str>,
        from: usize,
    },
    Transform {
        pattern: Arc<Node>,
        update: Arc<Node>,
        delete: Option<Arc<Node>>,
        position: usize,
        env: Env,
    },
    Chain(Value, Value),
}

/// How many arguments a function declares (higher-order functions pass index and array only
/// to functions that take them).
pub(crate) fn arity(f: &Value) -> usize {
    match f {
        Value::Function(func) => match func.as_ref() {
            Function::Lambda { params, .. } => params.len(),
            Function::Builtin(b) => b.arity,
            Function::Host(..) => 1,
            Function::Partial { args, .. } => args.iter().filter(|a| a.is_none()).count(),
            Function::Regex(_) => 1,
            Function::RegexNext { .. } => 0,
            Function::Transform { .. } => 1,
            Function::Chain(..) => 1,
        },
        _ => 0,
    }
}

fn proc_name(procedure: &Node) -> Option<String> {
    match &procedure.kind {
        Kind::Path(steps) => match steps.first().map(|s| &s.kind) {
            Some(Kind::Name(n)) => Some(n.clone()),
            _ => None,
        },
        Kind::Variable(v) => Some(v.clone()),
        _ => None,
    }
}

pub(crate) fn evaluate_function(
    ctx: &Ctx,
    expr: &Node,
    input: &Value,
    env: &Env,
    context: Option<Value>,
) -> Result<Value> {
    let Kind::Call {
        procedure, args, ..
    } = &expr.kind
    else {
        return Ok(Value::Undefined);
    };
    let proc = evaluate(ctx, procedure, input, env)?;
    if proc.is_undefined()
        && let Some(name) = proc_name(procedure)
        && matches!(procedure.kind, Kind::Path(_))
        && env.lookup(&name).is_some()
    {
        return Err(JsonataError::token("T1005", Some(expr.position), &name));
    }
    let mut evaluated = Vec::with_capacity(args.len() + 1);
    if let Some(c) = context {
        evaluated.push(c);
    }
    for arg in args {
        evaluated.push(evaluate(ctx, arg, input, env)?);
    }
    apply(ctx, &proc, evaluated, input, env).map_err(|e| e.at(expr.position))
}

pub(crate) fn evaluate_partial(ctx: &Ctx, expr: &Node, input: &Value, env: &Env) -> Result<Value> {
    let Kind::Call {
        procedure, args, ..
    } = &expr.kind
    else {
        return Ok(Value::Undefined);
    };
    let mut bound = Vec::with_capacity(args.len());
    for arg in args {
        if matches!(arg.kind, Kind::Placeholder) {
            bound.push(None);
        } else {
            bound.push(Some(evaluate(ctx, arg, input, env)?));
        }
    }
    let proc = evaluate(ctx, procedure, input, env)?;
    if proc.is_undefined()
        && let Some(name) = proc_name(procedure)
        && matches!(procedure.kind, Kind::Path(_))
        && env.lookup(&name).is_some()
    {
        return Err(JsonataError::token("T1007", Some(expr.position), &name));
    }
    if !proc.is_function() {
        let name = proc_name(procedure).unwrap_or_default();
        return Err(JsonataError::token("T1008", Some(expr.position), &name));
    }
    Ok(Value::Function(Rc::new(Function::Partial {
        func: proc,
        args: bound,
    })))
}

pub(crate) fn evaluate_apply(
    ctx: &Ctx,
    expr: &Node,
    lhs: &Node,
    rhs: &Node,
    input: &Value,
    env: &Env,
) -> Result<Value> {
    let l = evaluate(ctx, lhs, input, env)?;
    if matches!(rhs.kind, Kind::Call { partial: false, .. }) {
        return evaluate_function(ctx, rhs, input, env, Some(l));
    }
    let func = evaluate(ctx, rhs, input, env)?;
    if !func.is_function() {
        return Err(JsonataError::value(
            "T2006",
            Some(expr.position),
            super::ops::render(&func),
        ));
    }
    if l.is_function() {
        return Ok(Value::Function(Rc::new(Function::Chain(l, func))));
    }
    apply(ctx, &func, vec![l], input, env)
}

/// Applies `proc`, running tail-call thunks in a loop so tail recursion uses constant stack.
pub(crate) fn apply(
    ctx: &Ctx,
    proc: &Value,
    args: Vec<Value>,
    input: &Value,
    env: &Env,
) -> Result<Value> {
    let mut result = apply_inner(ctx, proc, args, input, env)?;
    while let Value::Function(f) = &result
        && let Function::Lambda {
            thunk: true,
            body,
            env: tenv,
            input: tinput,
            ..
        } = f.as_ref()
        && let Kind::Call {
            procedure,
            args: targs,
            ..
        } = &body.kind
    {
        let next = evaluate(ctx, procedure, tinput, tenv)?;
        let mut evaluated = Vec::with_capacity(targs.len());
        for a in targs {
            evaluated.push(evaluate(ctx, a, tinput, tenv)?);
        }
        let pos = body.position;
        result = apply_inner(ctx, &next, evaluated, input, env).map_err(|e| e.at(pos))?;
    }
    Ok(result)
}

fn apply_inner(
    ctx: &Ctx,
    proc: &Value,
    args: Vec<Value>,
    input: &Value,
    env: &Env,
) -> Result<Value> {
    let Value::Function(f) = proc else {
        return Err(JsonataError::new("T1006", None));
    };
    match f.as_ref() {
        Function::Lambda {
            params,
            signature,
            body,
            env: lenv,
            input: linput,
            ..
        } => {
            let args = match signature {
                Some(sig) => sig.validate(&args, input)?,
                None => args,
            };
            let frame = Frame::child(lenv);
            for (i, p) in params.iter().enumerate() {
                frame.bind(p, args.get(i).cloned().unwrap_or_default());
            }
            evaluate(ctx, body, linput, &frame)
        }
        Function::Builtin(b) => {
            let args = b.signature().validate(&args, input)?;
            (b.imp)(&crate::functions::Focus { ctx, env, input }, args)
        }
        Function::Host(host) => {
            let json: Vec<serde_json::Value> = args
                .iter()
                .map(|a| a.to_json().unwrap_or(serde_json::Value::Null))
                .collect();
            Ok(Value::from_json(&host(&json)?))
        }
        Function::Partial { func, args: bound } => {
            let mut supplied = args.into_iter();
            let mut full = Vec::with_capacity(bound.len());
            for b in bound {
                match b {
                    Some(v) => full.push(v.clone()),
                    None => full.push(supplied.next().unwrap_or_default()),
                }
            }
            apply(ctx, func, full, input, env)
        }
        Function::Regex(re) => {
            let text = match args.first() {
                Some(Value::String(s)) => s.clone(),
                _ => return Ok(Value::Undefined),
            };
            Ok(crate::functions::regex::match_object(re, &text, 0))
        }
        Function::RegexNext { re, text, from } => {
            if *from >= text.len() {
                return Ok(Value::Undefined);
            }
            let next = crate::functions::regex::match_object(re, text, *from);
            if let Value::Object(o) = &next
                && matches!(o.get("match"), Some(Value::String(s)) if s.is_empty())
            {
                return Err(JsonataError::value("D1004", None, re.as_str().to_string()));
            }
            Ok(next)
        }
        Function::Transform {
            pattern,
            update,
            delete,
            position,
            env: tenv,
        } => {
            let obj = args.into_iter().next().unwrap_or_default();
            super::group::transform(
                ctx,
                (pattern, update, delete.as_deref()),
                *position,
                tenv,
                &obj,
            )
        }
        Function::Chain(first, second) => {
            let x = args.into_iter().next().unwrap_or_default();
            let mid = apply(ctx, first, vec![x], input, env)?;
            apply(ctx, second, vec![mid], input, env)
        }
    }
}

/// A `{match, start, end, groups}` object as regex matchers return.
pub(crate) fn match_record(m: &str, start: usize, end: usize, groups: Vec<Value>) -> Object {
    let mut o = Object::new();
    o.insert("match".into(), Value::string(m));
    o.insert("start".into(), Value::Number(start as f64));
    o.insert("end".into(), Value::Number(end as f64));
    o.insert("groups".into(), Value::array(groups));
    o
}
