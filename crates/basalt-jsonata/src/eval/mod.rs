//! The evaluator: a port of jsonata-js's `evaluate` family. Paths map each step over the input
//! sequence and flatten; steps that bind `@`, `#` or `%` switch the path to a tuple stream
//! (objects holding `@` plus the bound names) until the path ends.

mod call;
pub(crate) mod env;
mod group;
mod ops;

pub(crate) use call::{Function, apply, arity, match_record};
pub(crate) use env::{Ctx, Env, Frame};
pub(crate) use ops::render;

use crate::ast::{Kind, Node, Stage};
use crate::error::JsonataError;
use crate::value::{Flags, Object, Value};
use std::rc::Rc;

pub(crate) type Result<T> = std::result::Result<T, JsonataError>;

fn seq_of(input: &Value) -> Value {
    Value::sequence(vec![input.clone()])
}

fn tuple_at(tuple: &Value) -> Value {
    match tuple {
        Value::Object(o) => o.get("@").cloned().unwrap_or_default(),
        _ => Value::Undefined,
    }
}

fn frame_from_tuple(env: &Env, tuple: &Value) -> Env {
    let frame = Frame::child(env);
    if let Value::Object(o) = tuple {
        for (k, v) in o.iter() {
            frame.bind(k, v.clone());
        }
    }
    frame
}

pub(crate) fn is_array_of_numbers(v: &Value) -> bool {
    matches!(v, Value::Array(items, _) if items.iter().all(|i| matches!(i, Value::Number(n) if !n.is_nan())))
}

pub(crate) fn evaluate(ctx: &Ctx, expr: &Node, input: &Value, env: &Env) -> Result<Value> {
    let depth = ctx.depth.get() + 1;
    if depth > ctx.max_depth {
        return Err(JsonataError::new("D1011", Some(expr.position)));
    }
    if let Some(deadline) = ctx.deadline {
        let t = ctx.ticks.get().wrapping_add(1);
        ctx.ticks.set(t);
        if t.is_multiple_of(256) && std::time::Instant::now() > deadline {
            return Err(JsonataError::new("D1012", Some(expr.position)));
        }
    }
    ctx.depth.set(depth);
    let result = evaluate_inner(ctx, expr, input, env);
    ctx.depth.set(depth - 1);
    result
}

fn evaluate_inner(ctx: &Ctx, expr: &Node, input: &Value, env: &Env) -> Result<Value> {
    let mut result = match &expr.kind {
        Kind::Path(steps) => evaluate_path(ctx, expr, steps, input, env)?,
        Kind::Binary(op, lhs, rhs) => ops::binary(ctx, expr, op, lhs, rhs, input, env)?,
        Kind::Negate(inner) => match evaluate(ctx, inner, input, env)? {
            Value::Undefined => Value::Undefined,
            Value::Number(n) => Value::Number(-n),
            other => {
                return Err(JsonataError::value(
                    "D1002",
                    Some(expr.position),
                    ops::render(&other),
                ));
            }
        },
        Kind::ArrayCons(items) => ops::array_constructor(ctx, expr, items, input, env)?,
        Kind::ObjectCons(pairs) => {
            group::group_expression(ctx, pairs, expr.position, input.clone(), env)?
        }
        Kind::Name(name) => crate::functions::object::lookup(input, name),
        Kind::Str(s) => Value::string(s),
        Kind::Number(n) => Value::Number(*n),
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Null => Value::Null,
        Kind::Wildcard => wildcard(input),
        Kind::Descendant => descendants(input),
        Kind::Parent(slot) => match slot {
            Some(slot) => env
                .lookup(&crate::ast::slot(slot).label)
                .unwrap_or_default(),
            None => Value::Undefined,
        },
        Kind::Condition(cond, then, otherwise) => {
            let c = evaluate(ctx, cond, input, env)?;
            if crate::functions::boolean::truthy(&c) == Some(true) {
                evaluate(ctx, then, input, env)?
            } else if let Some(e) = otherwise {
                evaluate(ctx, e, input, env)?
            } else {
                Value::Undefined
            }
        }
        Kind::Block(exprs) => {
            let frame = Frame::child(env);
            let mut result = Value::Undefined;
            for e in exprs {
                result = evaluate(ctx, e, input, &frame)?;
            }
            result
        }
        Kind::Bind(name, rhs) => {
            let value = evaluate(ctx, rhs, input, env)?;
            env.bind(name, value.clone());
            value
        }
        Kind::Regex(re) => Value::Function(Rc::new(Function::Regex(re.clone()))),
        Kind::Call { partial: false, .. } => call::evaluate_function(ctx, expr, input, env, None)?,
        Kind::Call { partial: true, .. } => call::evaluate_partial(ctx, expr, input, env)?,
        Kind::Variable(name) => {
            if name.is_empty() {
                match input {
                    Value::Array(items, f) if f.outer_wrapper => {
                        items.first().cloned().unwrap_or_default()
                    }
                    other => other.clone(),
                }
            } else {
                env.lookup(name).unwrap_or_default()
            }
        }
        Kind::Lambda {
            params,
            signature,
            body,
            thunk,
        } => Value::Function(Rc::new(Function::Lambda {
            params: params.clone(),
            signature: signature.clone(),
            body: body.clone(),
            env: env.clone(),
            input: input.clone(),
            thunk: *thunk,
        })),
        Kind::Apply(lhs, rhs) => call::evaluate_apply(ctx, expr, lhs, rhs, input, env)?,
        Kind::Transform {
            pattern,
            update,
            delete,
        } => Value::Function(Rc::new(Function::Transform {
            pattern: pattern.clone(),
            update: update.clone(),
            delete: delete.clone(),
            position: expr.position,
            env: env.clone(),
        })),
        Kind::Sort(_) => group::sort_expression(ctx, expr, input.clone(), env)?,
        Kind::Placeholder => Value::Undefined,
        _ => {
            return Err(JsonataError::token(
                "S0206",
                Some(expr.position),
                expr.kind_name(),
            ));
        }
    };
    for stage in &expr.predicate {
        if let Stage::Filter(p) = stage {
            result = filter(ctx, p, result, env)?;
        }
    }
    if !matches!(expr.kind, Kind::Path(_))
        && let Some(g) = &expr.group
    {
        result = group::group_expression(ctx, &g.pairs, g.position, result, env)?;
    }
    if let Value::Array(items, mut flags) = result {
        if flags.sequence && !flags.tuple_stream {
            if expr.keep_array {
                flags.keep_singleton = true;
            }
            return Ok(match items.len() {
                0 => Value::Undefined,
                1 if !flags.keep_singleton => items[0].clone(),
                _ => Value::Array(items, flags),
            });
        }
        return Ok(Value::Array(items, flags));
    }
    Ok(result)
}

fn evaluate_path(
    ctx: &Ctx,
    expr: &Node,
    steps: &[Node],
    input: &Value,
    env: &Env,
) -> Result<Value> {
    let mut input_seq = match input {
        Value::Array(..) if !matches!(steps[0].kind, Kind::Variable(_)) => input.clone(),
        _ => seq_of(input),
    };
    let mut result_seq = Value::Undefined;
    let mut is_tuple = false;
    let mut tuples: Option<Vec<Value>> = None;
    for (i, step) in steps.iter().enumerate() {
        if step.tuple {
            is_tuple = true;
        }
        if i == 0 && step.consarray {
            result_seq = evaluate(ctx, step, &input_seq, env)?;
        } else if is_tuple {
            tuples = Some(evaluate_tuple_step(ctx, step, &input_seq, tuples, env)?);
        } else {
            result_seq = evaluate_step(ctx, step, &input_seq, env, i == steps.len() - 1)?;
        }
        if !is_tuple
            && (result_seq.is_undefined() || result_seq.as_array().is_some_and(|a| a.is_empty()))
        {
            break;
        }
        if step.focus.is_none() {
            input_seq = result_seq.clone();
        }
    }
    let tuple_flags = Flags {
        sequence: true,
        tuple_stream: true,
        ..Flags::default()
    };
    let tuple_stream = if is_tuple {
        Some(Value::Array(
            Rc::new(tuples.unwrap_or_default()),
            tuple_flags,
        ))
    } else {
        None
    };
    if let Some(stream) = &tuple_stream {
        if expr.tuple {
            result_seq = stream.clone();
        } else {
            result_seq = Value::sequence(stream.members().iter().map(tuple_at).collect());
        }
    }
    if expr.keep_singleton_array {
        let f = result_seq.flags();
        if result_seq.is_array() && f.cons && !f.sequence {
            result_seq = seq_of(&result_seq);
        }
        result_seq = result_seq.with_flags(|f| f.keep_singleton = true);
    }
    if let Some(g) = &expr.group {
        let source = tuple_stream.unwrap_or_else(|| result_seq.clone());
        result_seq = group::group_expression(ctx, &g.pairs, g.position, source, env)?;
    }
    Ok(result_seq)
}

fn evaluate_step(ctx: &Ctx, expr: &Node, input: &Value, env: &Env, last: bool) -> Result<Value> {
    if matches!(expr.kind, Kind::Sort(_)) {
        let mut result = group::sort_expression(ctx, expr, input.clone(), env)?;
        result = evaluate_stages(ctx, &expr.stages, result, env)?;
        return Ok(result);
    }
    let mut results = Vec::new();
    for item in input.members_or_undefined() {
        let mut res = evaluate(ctx, expr, &item, env)?;
        for stage in &expr.stages {
            if let Stage::Filter(p) = stage {
                res = filter(ctx, p, res, env)?;
            }
        }
        if !res.is_undefined() {
            results.push(res);
        }
    }
    if last && results.len() == 1 && results[0].is_array() && !results[0].is_sequence() {
        return Ok(results.pop().unwrap_or_default());
    }
    let mut out = Vec::new();
    for res in results {
        match &res {
            Value::Array(items, f) if !f.cons => out.extend(items.iter().cloned()),
            _ => out.push(res),
        }
    }
    Ok(Value::sequence(out))
}

fn evaluate_stages(ctx: &Ctx, stages: &[Stage], input: Value, env: &Env) -> Result<Value> {
    let mut result = input;
    for stage in stages {
        match stage {
            Stage::Filter(p) => result = filter(ctx, p, result, env)?,
            Stage::Index(name) => {
                if let Value::Array(items, flags) = result {
                    let items = items
                        .iter()
                        .enumerate()
                        .map(|(i, t)| set_key(t, name, Value::Number(i as f64)))
                        .collect();
                    result = Value::Array(Rc::new(items), flags);
                }
            }
        }
    }
    Ok(result)
}

fn set_key(tuple: &Value, key: &str, value: Value) -> Value {
    let mut o = match tuple {
        Value::Object(o) => o.as_ref().clone(),
        _ => Object::new(),
    };
    o.insert(key.to_string(), value);
    Value::object(o)
}

fn evaluate_tuple_step(
    ctx: &Ctx,
    expr: &Node,
    input: &Value,
    tuples: Option<Vec<Value>>,
    env: &Env,
) -> Result<Vec<Value>> {
    let tuple_flags = Flags {
        sequence: true,
        tuple_stream: true,
        ..Flags::default()
    };
    if matches!(expr.kind, Kind::Sort(_)) {
        let result = match tuples {
            Some(t) => {
                group::sort_expression(ctx, expr, Value::Array(Rc::new(t), tuple_flags), env)?
            }
            None => {
                let sorted = group::sort_expression(ctx, expr, input.clone(), env)?;
                let items = sorted
                    .members()
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let mut o = Object::new();
                        o.insert("@".into(), v);
                        if let Some(index) = &expr.index {
                            o.insert(index.clone(), Value::Number(i as f64));
                        }
                        Value::object(o)
                    })
                    .collect();
                Value::Array(Rc::new(items), tuple_flags)
            }
        };
        let result = evaluate_stages(ctx, &expr.stages, result, env)?;
        return Ok(result.members());
    }
    let tuples = tuples.unwrap_or_else(|| {
        input
            .members_or_undefined()
            .into_iter()
            .map(|item| {
                let mut o = Object::new();
                o.insert("@".into(), item);
                Value::object(o)
            })
            .collect()
    });
    let mut result = Vec::new();
    for tuple in &tuples {
        let step_env = frame_from_tuple(env, tuple);
        let at = tuple_at(tuple);
        let res = evaluate(ctx, expr, &at, &step_env)?;
        if res.is_undefined() {
            continue;
        }
        let is_stream = res.flags().tuple_stream;
        let items = match &res {
            Value::Array(items, _) => items.as_ref().clone(),
            other => vec![other.clone()],
        };
        let base = match tuple {
            Value::Object(o) => o.as_ref().clone(),
            _ => Object::new(),
        };
        for (bb, item) in items.into_iter().enumerate() {
            let mut t = base.clone();
            if is_stream {
                if let Value::Object(o) = &item {
                    for (k, v) in o.iter() {
                        t.insert(k.clone(), v.clone());
                    }
                }
            } else {
                if let Some(focus) = &expr.focus {
                    t.insert(focus.clone(), item);
                    t.insert("@".into(), at.clone());
                } else {
                    t.insert("@".into(), item);
                }
                if let Some(index) = &expr.index {
                    t.insert(index.clone(), Value::Number(bb as f64));
                }
                if let Some(anc) = &expr.ancestor {
                    t.insert(crate::ast::slot(anc).label.clone(), at.clone());
                }
            }
            result.push(Value::object(t));
        }
    }
    let result = evaluate_stages(
        ctx,
        &expr.stages,
        Value::Array(Rc::new(result), tuple_flags),
        env,
    )?;
    Ok(result.members())
}

pub(crate) fn filter(ctx: &Ctx, predicate: &Node, input: Value, env: &Env) -> Result<Value> {
    let is_stream = input.flags().tuple_stream;
    let items: Vec<Value> = match &input {
        Value::Array(items, _) => items.as_ref().clone(),
        other => vec![other.clone()],
    };
    let mut flags = Flags {
        sequence: true,
        ..Flags::default()
    };
    flags.tuple_stream = is_stream;
    let mut results = Vec::new();
    if let Kind::Number(n) = predicate.kind {
        let mut index = n.floor();
        if index < 0.0 {
            index += items.len() as f64;
        }
        if index >= 0.0
            && let Some(item) = items.get(index as usize)
        {
            if item.is_array() {
                return Ok(item.clone());
            }
            results.push(item.clone());
        }
        return Ok(Value::Array(Rc::new(results), flags));
    }
    let len = items.len() as f64;
    for (index, item) in items.iter().enumerate() {
        let (context, penv) = if is_stream {
            (tuple_at(item), frame_from_tuple(env, item))
        } else {
            (item.clone(), env.clone())
        };
        let mut res = evaluate(ctx, predicate, &context, &penv)?;
        if let Value::Number(n) = res
            && !n.is_nan()
        {
            if n.is_infinite() {
                return Err(JsonataError::value(
                    "D1001",
                    Some(predicate.position),
                    ops::render(&res),
                ));
            }
            res = Value::array(vec![res]);
        }
        if is_array_of_numbers(&res) {
            for ires in res.as_array().unwrap_or(&[]) {
                let mut ii = ires.as_number().unwrap_or(0.0).floor();
                if ii < 0.0 {
                    ii += len;
                }
                if ii == index as f64 {
                    results.push(item.clone());
                }
            }
        } else if crate::functions::boolean::truthy(&res) == Some(true) {
            results.push(item.clone());
        }
    }
    Ok(Value::Array(Rc::new(results), flags))
}

fn wildcard(input: &Value) -> Value {
    let input = match input {
        Value::Array(items, f) if f.outer_wrapper && !items.is_empty() => items[0].clone(),
        other => other.clone(),
    };
    let mut results = Vec::new();
    let values: Vec<Value> = match &input {
        Value::Object(o) => o.values().cloned().collect(),
        Value::Array(items, _) => items.as_ref().clone(),
        _ => Vec::new(),
    };
    {
        for v in &values {
            match v {
                Value::Array(..) => {
                    let mut flat = Vec::new();
                    flatten(v, &mut flat);
                    results.extend(flat);
                }
                other => results.push(other.clone()),
            }
        }
    }
    Value::sequence(results)
}

fn flatten(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items, _) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other.clone()),
    }
}

fn descendants(input: &Value) -> Value {
    if input.is_undefined() {
        return Value::Undefined;
    }
    let mut out = Vec::new();
    recurse_descendants(input, &mut out);
    if out.len() == 1 {
        return out.pop().unwrap_or_default();
    }
    Value::sequence(out)
}

fn recurse_descendants(input: &Value, out: &mut Vec<Value>) {
    match input {
        Value::Array(items, _) => items.iter().for_each(|i| recurse_descendants(i, out)),
        Value::Object(o) => {
            out.push(input.clone());
            o.values().for_each(|v| recurse_descendants(v, out));
        }
        other => out.push(other.clone()),
    }
}

impl Value {
    /// Items to map a step over: an array's items, or the value itself (even undefined,
    /// as jsonata-js's one-item sequence holding `undefined`).
    pub(crate) fn members_or_undefined(&self) -> Vec<Value> {
        match self {
            Value::Array(items, _) => items.as_ref().clone(),
            other => vec![other.clone()],
        }
    }
}
