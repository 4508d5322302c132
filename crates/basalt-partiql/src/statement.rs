//! The statements the service runs, bound to their parameters and translated onto DynamoDB's
//! expression engine, with the key questions the service asks of each.

use crate::condition::{condition, path};
use crate::error::{INCOMPLETE_KEY, PartiqlError};
use crate::keys::{full_key, only_key_equalities, query_keys};
use crate::literal::{item as insert_item, value_of};
use crate::project::project;
use crate::syntax::{Expr, ReturningSyn, Source, SynStatement};
use crate::update::update;
use basalt_dynamodb_expr::ast::{Condition, Projection, Update};
use basalt_dynamodb_expr::{AttributeValue, Item, ResolvedKey};

/// One PartiQL statement, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select(Select),
    Insert(Insert),
    Update(UpdateStmt),
    Delete(Delete),
    /// `EXISTS(SELECT ...)`: a condition check, allowed only among ExecuteTransaction writes
    /// (ql-functions.exists). Elsewhere the service answers "EXISTS can only be used in
    /// ExecuteTransaction write requests.".
    Exists(Exists),
}

impl Statement {
    /// The table the statement reads or writes.
    pub fn table(&self) -> &str {
        match self {
            Statement::Select(s) => &s.table,
            Statement::Insert(i) => &i.table,
            Statement::Update(u) => &u.table,
            Statement::Delete(d) => &d.table,
            Statement::Exists(e) => &e.select.table,
        }
    }

    /// Whether the statement only reads (SELECT): a batch or transaction must be all reads or
    /// all writes (EXISTS counts as a write).
    pub fn is_read(&self) -> bool {
        matches!(self, Statement::Select(_))
    }
}

/// One key of ORDER BY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    pub attribute: String,
    pub descending: bool,
}

/// `SELECT ... FROM table[.index] [WHERE ...] [ORDER BY ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub table: String,
    /// `FROM "table"."index"`.
    pub index: Option<String>,
    /// The projected paths; `None` for `SELECT *`. Apply with [`Select::project`].
    pub projection: Option<Projection>,
    /// The whole WHERE clause; every item read must satisfy it.
    pub condition: Option<Condition>,
    /// ORDER BY keys as written (checked against the key schema by [`Select::check_order_by`]).
    pub order_by: Vec<OrderKey>,
    /// The direction of the first ORDER BY key: `Some(true)` for DESC.
    pub order_desc: Option<bool>,
}

impl Select {
    /// The partitions a Query can read instead of a Scan: an equality (or IN) on the
    /// partition key in every OR branch of WHERE, each with the first condition found on the
    /// sort key (`=`, `<`, `<=`, `>`, `>=`, BETWEEN, begins_with, IN). `None` means a full
    /// scan. The keys only narrow the read: filter what is read with `condition` all the same.
    pub fn key_condition(&self, hash: &str, range: Option<&str>) -> Option<Vec<ResolvedKey>> {
        query_keys(self.condition.as_ref(), hash, range)
    }

    /// The full primary key when WHERE consists of nothing but key equalities: what a SELECT
    /// inside ExecuteTransaction or BatchExecuteStatement must be (a GetItem). `None` is the
    /// service's "Select statements within ExecuteTransaction must specify the primary key in
    /// the where clause." (or "... within BatchExecuteStatement ...").
    pub fn get_key(&self, hash: &str, range: Option<&str>) -> Option<Item> {
        let c = self.condition.as_ref()?;
        if !only_key_equalities(c, hash, range) {
            return None;
        }
        full_key(Some(c), hash, range).ok()
    }

    /// DynamoDB's rules for ORDER BY: a WHERE clause with a partition key condition, and
    /// ordering keys from the primary key (of the table or of the index read).
    pub fn check_order_by(&self, hash: &str, range: Option<&str>) -> Result<(), PartiqlError> {
        if self.order_by.is_empty() {
            return Ok(());
        }
        if self.condition.is_none() {
            return Err(PartiqlError::msg(
                "Must have WHERE clause in the statement when using ORDER BY clause.",
            ));
        }
        for k in &self.order_by {
            if k.attribute != hash && Some(k.attribute.as_str()) != range {
                return Err(PartiqlError(format!(
                    "Variable reference {} in ORDER BY clause must be part of the primary key",
                    k.attribute
                )));
            }
        }
        if self.key_condition(hash, range).is_none() {
            return Err(PartiqlError::msg(
                "Must have at least one non-optional hash key condition in WHERE clause when using ORDER BY clause.",
            ));
        }
        Ok(())
    }

    /// What the SELECT returns for one matching item: the item itself for `SELECT *`, else
    /// each projected path as a top-level attribute named after its last key (`l[0]`,
    /// `DateWatched[0]`), as DynamoDB flattens them.
    pub fn project(&self, item: &Item) -> Item {
        match &self.projection {
            None => item.clone(),
            Some(p) => project(item, &p.paths),
        }
    }
}

/// `INSERT INTO table VALUE {...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    pub table: String,
    pub item: Item,
}

/// `RETURNING ...` of UPDATE (all four) and DELETE (ALL OLD only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returning {
    AllOld,
    ModifiedOld,
    AllNew,
    ModifiedNew,
}

impl Returning {
    fn from_syn(r: ReturningSyn) -> Returning {
        match (r.all, r.new) {
            (true, false) => Returning::AllOld,
            (false, false) => Returning::ModifiedOld,
            (true, true) => Returning::AllNew,
            (false, true) => Returning::ModifiedNew,
        }
    }

    /// The clause as DynamoDB quotes it back.
    pub fn as_str(self) -> &'static str {
        match self {
            Returning::AllOld => "ALL OLD *",
            Returning::ModifiedOld => "MODIFIED OLD *",
            Returning::AllNew => "ALL NEW *",
            Returning::ModifiedNew => "MODIFIED NEW *",
        }
    }

    /// The matching UpdateItem/DeleteItem ReturnValues.
    pub fn return_values(self) -> &'static str {
        match self {
            Returning::AllOld => "ALL_OLD",
            Returning::ModifiedOld => "UPDATED_OLD",
            Returning::AllNew => "ALL_NEW",
            Returning::ModifiedNew => "UPDATED_NEW",
        }
    }
}

/// `UPDATE table SET ... REMOVE ... WHERE ... [RETURNING ...]` (or FROM-first).
///
/// Run it as an UpdateItem of [`UpdateStmt::key`] whose ConditionExpression is `condition`,
/// evaluated on the stored item or, when there is none, on an empty item: the key equalities
/// in it then fail, which is DynamoDB's ConditionalCheckFailedException for an UPDATE of a
/// missing item (ql-reference.update).
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateStmt {
    pub table: String,
    pub update: Update,
    /// The whole WHERE clause, key equalities included.
    pub condition: Option<Condition>,
    pub returning: Option<Returning>,
}

impl UpdateStmt {
    /// The item's primary key: every key attribute with `=` among WHERE's conjuncts.
    pub fn key(&self, hash: &str, range: Option<&str>) -> Result<Item, PartiqlError> {
        full_key(self.condition.as_ref(), hash, range)
    }
}

/// `DELETE FROM table WHERE ... [RETURNING ALL OLD *]`.
///
/// Run it as a DeleteItem of [`Delete::key`]: a missing item is a success that deletes
/// nothing; an item that fails `condition` is ConditionalCheckFailedException
/// (ql-reference.delete).
#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    pub table: String,
    /// The whole WHERE clause, key equalities included.
    pub condition: Option<Condition>,
    pub returning: Option<Returning>,
}

impl Delete {
    /// The item's primary key: every key attribute with `=` among WHERE's conjuncts.
    pub fn key(&self, hash: &str, range: Option<&str>) -> Result<Item, PartiqlError> {
        full_key(self.condition.as_ref(), hash, range)
    }
}

/// `EXISTS(SELECT * FROM table WHERE <key> AND <condition>)` in ExecuteTransaction: a
/// ConditionCheck of the item (ql-functions.exists).
#[derive(Debug, Clone, PartialEq)]
pub struct Exists {
    pub select: Select,
}

impl Exists {
    /// The item checked and the condition it must meet (the whole WHERE clause). DynamoDB
    /// wants the full key and at least one more condition.
    pub fn check(
        &self,
        hash: &str,
        range: Option<&str>,
    ) -> Result<(Item, Condition), PartiqlError> {
        let refused = || {
            PartiqlError::msg("EXISTS() must contain a single item read with additional condition")
        };
        let c = self.select.condition.as_ref().ok_or_else(refused)?;
        let key = full_key(Some(c), hash, range).map_err(|_| refused())?;
        if only_key_equalities(c, hash, range) {
            return Err(refused());
        }
        Ok((key, c.clone()))
    }
}

/// Binds a parsed statement to its parameters (already counted).
pub(crate) fn bind(
    stmt: SynStatement,
    params: &[AttributeValue],
) -> Result<Statement, PartiqlError> {
    let where_cond = |w: &Option<Expr>| w.as_ref().map(|e| condition(e, params)).transpose();
    Ok(match stmt {
        SynStatement::Select {
            projection,
            source,
            where_,
            order_by,
        } => Statement::Select(select(projection, source, &where_, order_by, params)?),
        SynStatement::Insert { source, item } => {
            no_index(&source)?;
            let item = match &item {
                Expr::Map(entries, _) => insert_item(entries, params)?,
                Expr::Param(..) => match value_of(&item, params)? {
                    AttributeValue::M(m) => m,
                    _ => return Err(unsupported_item()),
                },
                _ => return Err(unsupported_item()),
            };
            Statement::Insert(Insert {
                table: source.table,
                item,
            })
        }
        SynStatement::Update {
            source,
            assignments,
            where_,
            returning,
        } => {
            no_index(&source)?;
            if where_.is_none() {
                return Err(PartiqlError::msg(INCOMPLETE_KEY));
            }
            let update = update(&assignments, params)?;
            Statement::Update(UpdateStmt {
                table: source.table,
                update,
                condition: where_cond(&where_)?,
                returning: returning.map(Returning::from_syn),
            })
        }
        SynStatement::Delete {
            source,
            where_,
            returning,
        } => {
            no_index(&source)?;
            let returning = returning.map(Returning::from_syn);
            if let Some(r) = returning
                && r != Returning::AllOld
            {
                return Err(PartiqlError(format!(
                    "Invalid returning clause: RETURNING {}. Only RETURNING ALL OLD * is allowed in DELETE statements.",
                    r.as_str()
                )));
            }
            if where_.is_none() {
                return Err(PartiqlError::msg(INCOMPLETE_KEY));
            }
            Statement::Delete(Delete {
                table: source.table,
                condition: where_cond(&where_)?,
                returning,
            })
        }
        SynStatement::Exists(inner) => {
            let SynStatement::Select {
                projection,
                source,
                where_,
                order_by,
            } = *inner
            else {
                return Err(PartiqlError::malformed("Unexpected term"));
            };
            if source.index.is_some() {
                return Err(PartiqlError::msg(
                    "Operations on indices are not supported in transactions",
                ));
            }
            Statement::Exists(Exists {
                select: select(projection, source, &where_, order_by, params)?,
            })
        }
    })
}

fn select(
    projection: Option<Vec<Expr>>,
    source: Source,
    where_: &Option<Expr>,
    order_by: Vec<(crate::syntax::SynPath, bool)>,
    params: &[AttributeValue],
) -> Result<Select, PartiqlError> {
    let projection = projection
        .map(|items| {
            items
                .iter()
                .map(|e| match e {
                    Expr::Path(p) => Ok(path(p)),
                    other => Err(PartiqlError(format!(
                        "Unexpected path component at {}",
                        other.pos().at()
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Projection::from_paths)
        })
        .transpose()?;
    let condition = where_.as_ref().map(|e| condition(e, params)).transpose()?;
    let order_by: Vec<OrderKey> = order_by
        .into_iter()
        .map(|(p, descending)| OrderKey {
            attribute: path(&p).to_string(),
            descending,
        })
        .collect();
    Ok(Select {
        table: source.table,
        index: source.index,
        projection,
        condition,
        order_desc: order_by.first().map(|k| k.descending),
        order_by,
    })
}

fn no_index(source: &Source) -> Result<(), PartiqlError> {
    if source.index.is_some() {
        return Err(PartiqlError::msg(
            "This operation is not supported on an index",
        ));
    }
    Ok(())
}

fn unsupported_item() -> PartiqlError {
    PartiqlError::msg(
        "Unsupported format in item expression. Please use struct format {...} to express item values for insert statement.",
    )
}
