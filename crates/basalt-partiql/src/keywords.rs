//! PartiQL's reserved words (SQL-92 plus PartiQL's own). A bare word in this list is never
//! an attribute name: DynamoDB refuses `m.inner` ("Invalid path dot component") until the
//! name is double-quoted. Function names among them (`size`, `exists`, `count`...) still call.

#[rustfmt::skip]
const KEYWORDS: &[&str] = &[
    // SQL-92
    "absolute", "action", "add", "all", "allocate", "alter", "and", "any", "are", "as", "asc",
    "assertion", "at", "authorization", "avg", "begin", "between", "bit", "bit_length", "by",
    "cascade", "cascaded", "case", "cast", "catalog", "char", "character", "character_length",
    "char_length", "check", "close", "coalesce", "collate", "collation", "column", "commit",
    "connect", "connection", "constraint", "constraints", "continue", "convert", "corresponding",
    "count", "create", "cross", "current", "current_date", "current_time", "current_timestamp",
    "current_user", "cursor", "date", "deallocate", "dec", "decimal", "declare", "default",
    "deferrable", "deferred", "delete", "desc", "describe", "descriptor", "diagnostics",
    "disconnect", "distinct", "domain", "double", "drop", "else", "end", "end-exec", "escape",
    "except", "exception", "exec", "execute", "exists", "external", "extract", "date_add",
    "date_diff", "false", "fetch", "first", "float", "for", "foreign", "found", "from", "full",
    "get", "global", "go", "goto", "grant", "group", "having", "identity", "immediate", "in",
    "indicator", "initially", "inner", "input", "insensitive", "insert", "int", "integer",
    "intersect", "interval", "into", "is", "isolation", "join", "key", "language", "last", "left",
    "level", "like", "local", "lower", "match", "max", "min", "module", "names", "national",
    "natural", "nchar", "next", "no", "not", "null", "nullif", "numeric", "octet_length", "of",
    "on", "only", "open", "option", "or", "order", "outer", "output", "overlaps", "pad", "partial",
    "position", "precision", "prepare", "preserve", "primary", "prior", "privileges", "procedure",
    "public", "read", "real", "references", "relative", "restrict", "revoke", "right", "rollback",
    "rows", "schema", "scroll", "section", "select", "session", "session_user", "set", "size",
    "smallint", "some", "space", "sql", "sqlcode", "sqlerror", "sqlstate", "substring", "sum",
    "system_user", "table", "temporary", "then", "time", "timestamp", "to", "transaction",
    "translate", "translation", "trim", "true", "union", "unique", "unknown", "update", "upper",
    "usage", "user", "using", "value", "values", "varchar", "varying", "view", "when", "whenever",
    "where", "with", "work", "write", "zone",
    // PartiQL
    "missing", "pivot", "unpivot", "limit", "tuple", "remove", "index", "conflict", "do", "nothing",
    "returning", "modified", "new", "old", "let", "bool", "boolean", "string", "symbol", "clob",
    "blob", "struct", "list", "sexp", "bag",
];

/// Whether a bare word is reserved (case-insensitive).
pub(crate) fn is_keyword(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    KEYWORDS.contains(&lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_words_are_case_insensitive_and_names_are_not_reserved() {
        assert!(is_keyword("INNER"));
        assert!(is_keyword("Value"));
        assert!(is_keyword("missing"));
        assert!(!is_keyword("Artist"));
        assert!(!is_keyword("begins_with"));
        assert!(!is_keyword("attribute_exists"));
    }
}
