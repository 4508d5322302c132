//! Projection expressions: comma-separated document paths.
//! Reference: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ProjectionExpressions.html>

use super::raw::{check_overlap, path, resolve_path};
use super::{Cat, Cursor, Errors};
use crate::ast::Projection;
use crate::error::{ExprError, ExprKind};
use crate::params::Params;

/// Parses a projection expression; the paths may not overlap.
pub fn parse_projection(expr: &str, params: &mut Params) -> Result<Projection, ExprError> {
    let kind = ExprKind::Projection;
    let mut c = Cursor::new(expr, kind)?;
    let mut raws = vec![path(&mut c, &[])?];
    while c.eat_punct(",") {
        raws.push(path(&mut c, &[])?);
    }
    if !c.at_eof() {
        return Err(c.error());
    }
    let mut errs = Errors::default();
    let mut paths = Vec::with_capacity(raws.len());
    for raw in &raws {
        if let Some(p) = resolve_path(raw, params, &mut errs, Cat::AttrName) {
            check_overlap(&paths, &p, &mut errs);
            paths.push(p);
        }
    }
    if let Some(msg) = errs.first(&[
        Cat::Reserved,
        Cat::AttrName,
        Cat::PathOverlap,
        Cat::PathConflict,
    ]) {
        return Err(kind.error(msg));
    }
    Ok(Projection { paths })
}
