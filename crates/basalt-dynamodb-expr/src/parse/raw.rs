//! Pieces shared by the grammars: raw document paths, their resolution against the request's
//! names, the ranked error slots, and the overlap/conflict check between paths.

use super::Cursor;
use super::lexer::Tok;
use crate::ast::{Path, PathElement};
use crate::error::ExprError;
use crate::params::Params;
use crate::reserved::is_reserved;
use crate::value::AttributeValue;

/// One element of a path as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawElem {
    Ident(String),
    Name(String),
    Index(usize),
}

/// A path as written, before `#name` substitution.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawPath {
    pub elems: Vec<RawElem>,
}

/// Kinds of semantic error; each grammar ranks them in DynamoDB's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cat {
    Parens,
    UnknownFunction,
    MisusedFunction,
    Reserved,
    Section,
    /// Undefined `#name` (or, in conditions and projections, either undefined kind).
    AttrName,
    AttrVal,
    /// Wrong operand count (conditions), or ADD/DELETE operand type (updates).
    Operand,
    Distinct,
    Function,
    PathOverlap,
    PathConflict,
    /// The first condition-level error, fixed when the first leaf condition completes.
    Condition,
}

/// The first error of each kind, in the order found.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    slots: Vec<(Cat, String)>,
}

impl Errors {
    pub fn set(&mut self, cat: Cat, msg: impl Into<String>) {
        if !self.has(cat) {
            self.slots.push((cat, msg.into()));
        }
    }

    pub fn has(&self, cat: Cat) -> bool {
        self.slots.iter().any(|(c, _)| *c == cat)
    }

    pub fn get(&self, cat: Cat) -> Option<&str> {
        self.slots
            .iter()
            .find(|(c, _)| *c == cat)
            .map(|(_, m)| m.as_str())
    }

    /// The highest-ranked error present.
    pub fn first(&self, order: &[Cat]) -> Option<&str> {
        order.iter().find_map(|c| self.get(*c))
    }
}

/// An identifier: a word that starts with a letter or `_` and is not one of the grammar's
/// keywords.
pub(crate) fn is_ident(tok: &Tok, keywords: &[&str]) -> bool {
    match tok {
        Tok::Word(w) => {
            !w.as_bytes()[0].is_ascii_digit() && !keywords.iter().any(|k| w.eq_ignore_ascii_case(k))
        }
        _ => false,
    }
}

/// One path head or `.` member: an identifier or a `#name`.
pub(crate) fn path_member(c: &mut Cursor<'_>, keywords: &[&str]) -> Result<RawElem, ExprError> {
    if is_ident(c.peek(), keywords) {
        let Tok::Word(w) = c.bump() else {
            unreachable!()
        };
        return Ok(RawElem::Ident(w));
    }
    if let Tok::Name(n) = c.peek() {
        let n = n.clone();
        c.bump();
        return Ok(RawElem::Name(n));
    }
    Err(c.error())
}

/// `.member` and `[digits]` steps after a path head.
pub(crate) fn path_tail(
    c: &mut Cursor<'_>,
    elems: &mut Vec<RawElem>,
    keywords: &[&str],
) -> Result<(), ExprError> {
    loop {
        if c.eat_punct("[") {
            let Tok::Digits(d) = c.peek().clone() else {
                return Err(c.error());
            };
            c.bump();
            elems.push(RawElem::Index(d.parse().unwrap_or(usize::MAX)));
            c.expect_punct("]")?;
        } else if c.eat_punct(".") {
            elems.push(path_member(c, keywords)?);
        } else {
            return Ok(());
        }
    }
}

/// A whole path: a member then its steps.
pub(crate) fn path(c: &mut Cursor<'_>, keywords: &[&str]) -> Result<RawPath, ExprError> {
    let mut elems = vec![path_member(c, keywords)?];
    path_tail(c, &mut elems, keywords)?;
    Ok(RawPath { elems })
}

/// Substitutes names and checks reserved words. `None` when a name is undefined (the error
/// goes to the `name_cat` slot).
pub(crate) fn resolve_path(
    raw: &RawPath,
    params: &mut Params,
    errs: &mut Errors,
    name_cat: Cat,
) -> Option<Path> {
    let mut out = Vec::with_capacity(raw.elems.len());
    let mut ok = true;
    for e in &raw.elems {
        match e {
            RawElem::Ident(w) => {
                if is_reserved(w) {
                    errs.set(
                        Cat::Reserved,
                        format!("Attribute name is a reserved keyword; reserved keyword: {w}"),
                    );
                }
                out.push(PathElement::Attr(w.clone()));
            }
            RawElem::Name(n) => match params.name(n) {
                Some(v) => out.push(PathElement::Attr(v)),
                None => {
                    errs.set(
                        name_cat,
                        format!("An expression attribute name used in the document path is not defined; attribute name: {n}"),
                    );
                    ok = false;
                }
            },
            RawElem::Index(i) => out.push(PathElement::Index(*i)),
        }
    }
    ok.then_some(Path { elements: out })
}

/// Substitutes a `:value`. `None` when undefined (the error goes to `cat`).
pub(crate) fn resolve_value(
    token: &str,
    params: &mut Params,
    errs: &mut Errors,
    cat: Cat,
) -> Option<AttributeValue> {
    let v = params.value(token);
    if v.is_none() {
        errs.set(cat, format!("An expression attribute value used in expression is not defined; attribute value: {token}"));
    }
    v
}

/// DynamoDB's check that no two written paths overlap (one a prefix of the other) or conflict
/// (a map key and a list index at the same step). `earlier` are the paths already accepted.
pub(crate) fn check_overlap(earlier: &[Path], path: &Path, errs: &mut Errors) {
    if errs.has(Cat::PathOverlap) {
        return;
    }
    for p in earlier {
        let mut diverged = false;
        for (a, b) in p.elements.iter().zip(&path.elements) {
            let same_kind = matches!(
                (a, b),
                (PathElement::Attr(_), PathElement::Attr(_))
                    | (PathElement::Index(_), PathElement::Index(_))
            );
            if !same_kind {
                errs.set(
                    Cat::PathConflict,
                    format!(
                        "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
                        p.bracketed(),
                        path.bracketed()
                    ),
                );
                diverged = true;
                break;
            }
            if a != b {
                diverged = true;
                break;
            }
        }
        if !diverged {
            errs.set(
                Cat::PathOverlap,
                format!(
                    "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
                    p.bracketed(),
                    path.bracketed()
                ),
            );
            return;
        }
    }
}
