//! Post-parse pass (jsonata-js `processAST`): flattens `.` chains into path steps, attaches
//! predicates, grouping, sorting and `@`/`#` bindings to their steps, resolves which step each
//! `%` refers to, and marks tail calls in lambda bodies.

use crate::ast::{Group, Kind, Node, SlotData, Stage, slot as lock};
use crate::error::JsonataError;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub(crate) struct Processor {
    label: usize,
    ancestry: Vec<crate::ast::Slot>,
}

pub(crate) fn process(expr: Node) -> Result<Node, JsonataError> {
    let mut p = Processor::default();
    let out = p.process(expr)?;
    if matches!(out.kind, Kind::Parent(_)) || !out.seeking_parent.is_empty() {
        return Err(JsonataError::token(
            "S0217",
            Some(out.position),
            out.kind_name(),
        ));
    }
    Ok(out)
}

fn path_of(node: Node) -> Node {
    if matches!(node.kind, Kind::Path(_)) {
        node
    } else {
        let pos = node.position;
        Node::new(Kind::Path(vec![node]), pos)
    }
}

fn steps_mut(node: &mut Node) -> &mut Vec<Node> {
    match &mut node.kind {
        Kind::Path(steps) => steps,
        _ => unreachable!("path_of guarantees a path"),
    }
}

impl Processor {
    fn seek_parent(
        &mut self,
        node: &mut Node,
        slot: crate::ast::Slot,
    ) -> Result<crate::ast::Slot, JsonataError> {
        let mut slot = slot;
        match &mut node.kind {
            Kind::Name(_) | Kind::Wildcard => {
                let level = {
                    let mut s = lock(&slot);
                    s.level -= 1;
                    s.level
                };
                if level == 0 {
                    if let Some(existing) = &node.ancestor {
                        let label = lock(existing).label.clone();
                        let index = lock(&slot).index;
                        if let Some(anc) = self.ancestry.get(index) {
                            lock(anc).label = label;
                        }
                    }
                    node.ancestor = Some(slot.clone());
                    node.tuple = true;
                }
            }
            Kind::Parent(_) => lock(&slot).level += 1,
            Kind::Block(exprs) => {
                if let Some(last) = exprs.last_mut() {
                    node.tuple = true;
                    slot = self.seek_parent(last, slot)?;
                }
            }
            Kind::Path(steps) => {
                node.tuple = true;
                let mut index = steps.len() as isize - 1;
                slot = self.seek_parent(&mut steps[index as usize], slot)?;
                index -= 1;
                while lock(&slot).level > 0 && index >= 0 {
                    slot = self.seek_parent(&mut steps[index as usize], slot)?;
                    index -= 1;
                }
            }
            _ => {
                return Err(JsonataError::token(
                    "S0217",
                    Some(node.position),
                    node.kind_name(),
                ));
            }
        }
        Ok(slot)
    }

    fn push_ancestry(result: &mut Node, value: &Node) {
        let mut slots = value.seeking_parent.clone();
        if let Kind::Parent(Some(slot)) = &value.kind {
            slots.push(slot.clone());
        }
        result.seeking_parent.extend(slots);
    }

    fn resolve_ancestry(&mut self, path: &mut Node) -> Result<(), JsonataError> {
        let steps = steps_mut(path);
        let last = steps.len() - 1;
        let mut slots = steps[last].seeking_parent.clone();
        if let Kind::Parent(Some(slot)) = &steps[last].kind {
            slots.push(slot.clone());
        }
        let mut unresolved = Vec::new();
        for slot in slots {
            let mut slot = slot;
            let mut index = steps.len() as isize - 2;
            while lock(&slot).level > 0 {
                if index < 0 {
                    unresolved.push(slot.clone());
                    break;
                }
                let mut i = index as usize;
                index -= 1;
                // Contiguous steps that bind the focus count as one.
                while index >= 0
                    && steps[i].focus.is_some()
                    && steps[index as usize].focus.is_some()
                {
                    i = index as usize;
                    index -= 1;
                }
                slot = self.seek_parent(&mut steps[i], slot)?;
            }
        }
        path.seeking_parent.extend(unresolved);
        Ok(())
    }

    pub fn process(&mut self, expr: Node) -> Result<Node, JsonataError> {
        let position = expr.position;
        let keep_array = expr.keep_array;
        let mut result = match expr.kind {
            Kind::Binary(".", lhs, rhs) => {
                let lstep = self.process(*lhs)?;
                let parent_slot = match &lstep.kind {
                    Kind::Parent(Some(slot)) => Some(slot.clone()),
                    _ => None,
                };
                let mut result = path_of(lstep);
                if let Some(slot) = parent_slot {
                    result.seeking_parent = vec![slot];
                }
                let mut rest = self.process(*rhs)?;
                if let Kind::Path(rsteps) = rest.kind {
                    steps_mut(&mut result).extend(rsteps);
                } else {
                    if !rest.predicate.is_empty() {
                        rest.stages = std::mem::take(&mut rest.predicate);
                    }
                    steps_mut(&mut result).push(rest);
                }
                let steps = steps_mut(&mut result);
                for step in steps.iter_mut() {
                    match &step.kind {
                        Kind::Number(n) => {
                            return Err(JsonataError::value(
                                "S0213",
                                Some(step.position),
                                crate::value::js_number_string(*n),
                            ));
                        }
                        Kind::Bool(b) => {
                            return Err(JsonataError::value(
                                "S0213",
                                Some(step.position),
                                b.to_string(),
                            ));
                        }
                        Kind::Null => {
                            return Err(JsonataError::value(
                                "S0213",
                                Some(step.position),
                                "null".into(),
                            ));
                        }
                        Kind::Str(s) => step.kind = Kind::Name(s.clone()),
                        _ => {}
                    }
                }
                let keep = steps.iter().any(|s| s.keep_array);
                if let Some(first) = steps.first_mut()
                    && matches!(first.kind, Kind::ArrayCons(_))
                {
                    first.consarray = true;
                }
                if let Some(last) = steps.last_mut()
                    && matches!(last.kind, Kind::ArrayCons(_))
                {
                    last.consarray = true;
                }
                if keep {
                    result.keep_singleton_array = true;
                }
                self.resolve_ancestry(&mut result)?;
                result
            }
            Kind::Filter(lhs, rhs) => {
                let mut result = self.process(*lhs)?;
                let is_path = matches!(result.kind, Kind::Path(_));
                let mut predicate = self.process(*rhs)?;
                let pred_slots = std::mem::take(&mut predicate.seeking_parent);
                {
                    let step: &mut Node = if is_path {
                        steps_mut(&mut result).last_mut().expect("non-empty")
                    } else {
                        &mut result
                    };
                    if step.group.is_some() {
                        return Err(JsonataError::new("S0209", Some(position)));
                    }
                    if !pred_slots.is_empty() {
                        for slot in &pred_slots {
                            let level = lock(slot).level;
                            if level == 1 {
                                self.seek_parent(step, slot.clone())?;
                            } else {
                                lock(slot).level -= 1;
                            }
                        }
                        step.seeking_parent.extend(pred_slots.iter().cloned());
                    }
                    if is_path {
                        step.stages.push(Stage::Filter(predicate));
                    } else {
                        step.predicate.push(Stage::Filter(predicate));
                    }
                }
                result
            }
            Kind::GroupBy(lhs, pairs) => {
                let mut result = self.process(*lhs)?;
                if result.group.is_some() {
                    return Err(JsonataError::new("S0210", Some(position)));
                }
                let mut processed = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    processed.push((self.process(k)?, self.process(v)?));
                }
                result.group = Some(Arc::new(Group {
                    pairs: processed,
                    position,
                }));
                result
            }
            Kind::OrderBy(lhs, terms) => {
                let mut result = path_of(self.process(*lhs)?);
                let mut sort = Node::new(Kind::Null, position);
                let mut processed = Vec::with_capacity(terms.len());
                for term in terms {
                    let expression = self.process(term.expression)?;
                    Self::push_ancestry(&mut sort, &expression);
                    processed.push(crate::ast::SortTerm {
                        descending: term.descending,
                        expression,
                    });
                }
                sort.kind = Kind::Sort(processed);
                steps_mut(&mut result).push(sort);
                self.resolve_ancestry(&mut result)?;
                result
            }
            Kind::Bind(name, rhs) => {
                let rhs = self.process(*rhs)?;
                let mut node = Node::new(Kind::Null, position);
                Self::push_ancestry(&mut node, &rhs);
                node.kind = Kind::Bind(name, Box::new(rhs));
                node
            }
            Kind::Focus(lhs, var) => {
                let mut result = self.process(*lhs)?;
                let step: &mut Node = if matches!(result.kind, Kind::Path(_)) {
                    steps_mut(&mut result).last_mut().expect("non-empty")
                } else {
                    &mut result
                };
                if !step.stages.is_empty() || !step.predicate.is_empty() {
                    return Err(JsonataError::new("S0215", Some(position)));
                }
                if matches!(step.kind, Kind::Sort(_)) {
                    return Err(JsonataError::new("S0216", Some(position)));
                }
                if keep_array {
                    step.keep_array = true;
                }
                step.focus = Some(var);
                step.tuple = true;
                result
            }
            Kind::IndexBind(lhs, var) => {
                let result = self.process(*lhs)?;
                let mut result = if matches!(result.kind, Kind::Path(_)) {
                    result
                } else {
                    let mut step = result;
                    if !step.predicate.is_empty() {
                        step.stages = std::mem::take(&mut step.predicate);
                    }
                    path_of(step)
                };
                let step = steps_mut(&mut result).last_mut().expect("non-empty");
                if step.stages.is_empty() {
                    step.index = Some(var);
                } else {
                    step.stages.push(Stage::Index(var));
                }
                step.tuple = true;
                result
            }
            Kind::Apply(lhs, rhs) => {
                let lhs = self.process(*lhs)?;
                let rhs = self.process(*rhs)?;
                let keep = lhs.keep_array || rhs.keep_array;
                let mut node = Node::new(Kind::Apply(Box::new(lhs), Box::new(rhs)), position);
                node.keep_array = keep;
                node
            }
            Kind::Binary(op, lhs, rhs) => {
                let lhs = self.process(*lhs)?;
                let rhs = self.process(*rhs)?;
                let mut node = Node::new(Kind::Null, position);
                Self::push_ancestry(&mut node, &lhs);
                Self::push_ancestry(&mut node, &rhs);
                node.kind = Kind::Binary(op, Box::new(lhs), Box::new(rhs));
                node
            }
            Kind::ArrayCons(items) => {
                let mut node = Node::new(Kind::Null, position);
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let v = self.process(item)?;
                    Self::push_ancestry(&mut node, &v);
                    out.push(v);
                }
                node.kind = Kind::ArrayCons(out);
                node
            }
            Kind::ObjectCons(pairs) => {
                let mut node = Node::new(Kind::Null, position);
                let mut out = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let k = self.process(k)?;
                    Self::push_ancestry(&mut node, &k);
                    let v = self.process(v)?;
                    Self::push_ancestry(&mut node, &v);
                    out.push((k, v));
                }
                node.kind = Kind::ObjectCons(out);
                node
            }
            Kind::Negate(inner) => {
                let inner = self.process(*inner)?;
                if let Kind::Number(n) = inner.kind {
                    let mut lit = inner;
                    lit.kind = Kind::Number(-n);
                    lit
                } else {
                    let mut node = Node::new(Kind::Null, position);
                    Self::push_ancestry(&mut node, &inner);
                    node.kind = Kind::Negate(Box::new(inner));
                    node
                }
            }
            Kind::Call {
                procedure,
                args,
                partial,
            } => {
                let mut node = Node::new(Kind::Null, position);
                let mut out = Vec::with_capacity(args.len());
                for arg in args {
                    let a = self.process(arg)?;
                    Self::push_ancestry(&mut node, &a);
                    out.push(a);
                }
                let procedure = self.process(*procedure)?;
                node.kind = Kind::Call {
                    procedure: Box::new(procedure),
                    args: out,
                    partial,
                };
                node
            }
            Kind::Lambda {
                params,
                signature,
                body,
                ..
            } => {
                let body = Arc::try_unwrap(body).unwrap_or_else(|rc| (*rc).clone());
                let body = tail_call_optimize(self.process(body)?);
                Node::new(
                    Kind::Lambda {
                        params,
                        signature,
                        body: Arc::new(body),
                        thunk: false,
                    },
                    position,
                )
            }
            Kind::Condition(cond, then, otherwise) => {
                let mut node = Node::new(Kind::Null, position);
                let cond = self.process(*cond)?;
                Self::push_ancestry(&mut node, &cond);
                let then = self.process(*then)?;
                Self::push_ancestry(&mut node, &then);
                let otherwise = match otherwise {
                    Some(e) => {
                        let e = self.process(*e)?;
                        Self::push_ancestry(&mut node, &e);
                        Some(Box::new(e))
                    }
                    None => None,
                };
                node.kind = Kind::Condition(Box::new(cond), Box::new(then), otherwise);
                node
            }
            Kind::Transform {
                pattern,
                update,
                delete,
            } => {
                let unwrap = |n: Arc<Node>| Arc::try_unwrap(n).unwrap_or_else(|rc| (*rc).clone());
                let pattern = Arc::new(self.process(unwrap(pattern))?);
                let update = Arc::new(self.process(unwrap(update))?);
                let delete = match delete {
                    Some(d) => Some(Arc::new(self.process(unwrap(d))?)),
                    None => None,
                };
                Node::new(
                    Kind::Transform {
                        pattern,
                        update,
                        delete,
                    },
                    position,
                )
            }
            Kind::Block(exprs) => {
                let mut node = Node::new(Kind::Null, position);
                let mut out = Vec::with_capacity(exprs.len());
                for e in exprs {
                    let part = self.process(e)?;
                    Self::push_ancestry(&mut node, &part);
                    let cons = part.consarray
                        || matches!(&part.kind, Kind::Path(steps) if steps.first().is_some_and(|s| s.consarray));
                    if cons {
                        node.consarray = true;
                    }
                    out.push(part);
                }
                node.kind = Kind::Block(out);
                node
            }
            Kind::Name(n) => {
                let mut step = Node::new(Kind::Name(n), position);
                step.keep_array = keep_array;
                let mut path = Node::new(Kind::Path(vec![step]), position);
                if keep_array {
                    path.keep_singleton_array = true;
                }
                path
            }
            Kind::Parent(_) => {
                let slot = Arc::new(Mutex::new(SlotData {
                    label: format!("!{}", self.label),
                    level: 1,
                    index: self.ancestry.len(),
                }));
                self.label += 1;
                self.ancestry.push(slot.clone());
                Node::new(Kind::Parent(Some(slot)), position)
            }
            Kind::Placeholder => Node::new(Kind::Placeholder, position),
            other => Node::new(other, position),
        };
        if keep_array {
            result.keep_array = true;
        }
        Ok(result)
    }
}

/// A call in tail position becomes a thunk the caller's trampoline runs, so tail recursion
/// does not grow the stack.
fn tail_call_optimize(mut expr: Node) -> Node {
    match expr.kind {
        Kind::Call { partial: false, .. } if expr.predicate.is_empty() => {
            let pos = expr.position;
            Node::new(
                Kind::Lambda {
                    params: Vec::new(),
                    signature: None,
                    body: Arc::new(expr),
                    thunk: true,
                },
                pos,
            )
        }
        Kind::Condition(cond, then, otherwise) => {
            let then = Box::new(tail_call_optimize(*then));
            let otherwise = otherwise.map(|e| Box::new(tail_call_optimize(*e)));
            expr.kind = Kind::Condition(cond, then, otherwise);
            expr
        }
        Kind::Block(mut exprs) => {
            if let Some(last) = exprs.pop() {
                exprs.push(tail_call_optimize(last));
            }
            expr.kind = Kind::Block(exprs);
            expr
        }
        _ => expr,
    }
}
