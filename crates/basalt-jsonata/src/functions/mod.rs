//! The built-in function library, one module per family, and the table that binds each
//! `$name` to its signature and implementation (signatures as jsonata-js declares them).

pub(crate) mod array;
pub(crate) mod boolean;
pub(crate) mod datetime;
mod datetime_parse;
mod format_number;
mod hof;
mod integer;
pub(crate) mod numeric;
pub(crate) mod object;
pub(crate) mod regex;
pub(crate) mod string;
mod url;

use crate::error::JsonataError;
use crate::eval::{Ctx, Env, Function};
use crate::signature::Signature;
use crate::value::Value;
use std::rc::Rc;
use std::sync::OnceLock;

/// What a built-in sees besides its arguments: the evaluation context, the calling scope
/// (for `$eval`) and the context value.
pub(crate) struct Focus<'a> {
    pub ctx: &'a Ctx,
    pub env: &'a Env,
    pub input: &'a Value,
}

pub(crate) type Imp = fn(&Focus, Vec<Value>) -> Result<Value, JsonataError>;

pub(crate) struct Builtin {
    pub name: &'static str,
    sig: &'static str,
    pub arity: usize,
    pub imp: Imp,
    parsed: OnceLock<Signature>,
}

impl Builtin {
    const fn new(name: &'static str, sig: &'static str, arity: usize, imp: Imp) -> Builtin {
        Builtin {
            name,
            sig,
            arity,
            imp,
            parsed: OnceLock::new(),
        }
    }

    pub fn signature(&self) -> &Signature {
        self.parsed
            .get_or_init(|| Signature::parse(self.sig).expect("built-in signatures are valid"))
    }
}

pub(crate) fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or_default()
}

static BUILTINS: [Builtin; 65] = [
    Builtin::new("sum", "<a<n>:n>", 1, numeric::sum),
    Builtin::new("count", "<a:n>", 1, array::count),
    Builtin::new("max", "<a<n>:n>", 1, numeric::max),
    Builtin::new("min", "<a<n>:n>", 1, numeric::min),
    Builtin::new("average", "<a<n>:n>", 1, numeric::average),
    Builtin::new("string", "<x-b?:s>", 1, string::string),
    Builtin::new("substring", "<s-nn?:s>", 3, string::substring),
    Builtin::new("substringBefore", "<s-s:s>", 2, string::substring_before),
    Builtin::new("substringAfter", "<s-s:s>", 2, string::substring_after),
    Builtin::new("lowercase", "<s-:s>", 1, string::lowercase),
    Builtin::new("uppercase", "<s-:s>", 1, string::uppercase),
    Builtin::new("length", "<s-:n>", 1, string::length),
    Builtin::new("trim", "<s-:s>", 1, string::trim),
    Builtin::new("pad", "<s-ns?:s>", 3, string::pad),
    Builtin::new("match", "<s-f<s:o>n?:a<o>>", 3, regex::match_fn),
    Builtin::new("contains", "<s-(sf):b>", 2, regex::contains),
    Builtin::new("replace", "<s-(sf)(sf)n?:s>", 4, regex::replace),
    Builtin::new("split", "<s-(sf)n?:a<s>>", 3, regex::split),
    Builtin::new("join", "<a<s>s?:s>", 2, string::join),
    Builtin::new("formatNumber", "<n-so?:s>", 3, format_number::format_number),
    Builtin::new("formatBase", "<n-n?:s>", 2, numeric::format_base),
    Builtin::new("formatInteger", "<n-s:s>", 2, integer::format_integer),
    Builtin::new("parseInteger", "<s-s:n>", 2, integer::parse_integer),
    Builtin::new("number", "<(nsb)-:n>", 1, numeric::number),
    Builtin::new("floor", "<n-:n>", 1, numeric::floor),
    Builtin::new("ceil", "<n-:n>", 1, numeric::ceil),
    Builtin::new("round", "<n-n?:n>", 2, numeric::round),
    Builtin::new("abs", "<n-:n>", 1, numeric::abs),
    Builtin::new("sqrt", "<n-:n>", 1, numeric::sqrt),
    Builtin::new("power", "<n-n:n>", 2, numeric::power),
    Builtin::new("random", "<:n>", 0, numeric::random),
    Builtin::new("boolean", "<x-:b>", 1, boolean::boolean),
    Builtin::new("not", "<x-:b>", 1, boolean::not),
    Builtin::new("map", "<af>", 2, hof::map),
    Builtin::new("zip", "<a+>", 0, array::zip),
    Builtin::new("filter", "<af>", 2, hof::filter),
    Builtin::new("single", "<af?>", 2, hof::single),
    Builtin::new("reduce", "<afj?:j>", 3, hof::reduce),
    Builtin::new("sift", "<o-f?:o>", 2, hof::sift),
    Builtin::new("keys", "<x-:a<s>>", 1, object::keys),
    Builtin::new("lookup", "<x-s:x>", 2, object::lookup_fn),
    Builtin::new("append", "<xx:a>", 2, array::append_fn),
    Builtin::new("exists", "<x:b>", 1, boolean::exists),
    Builtin::new("spread", "<x-:a<o>>", 1, object::spread),
    Builtin::new("merge", "<a<o>:o>", 1, object::merge),
    Builtin::new("reverse", "<a:a>", 1, array::reverse),
    Builtin::new("each", "<o-f:a>", 2, hof::each),
    Builtin::new("error", "<s?:x>", 1, object::error),
    Builtin::new("assert", "<bs?:x>", 2, object::assert),
    Builtin::new("type", "<x:s>", 1, object::type_of),
    Builtin::new("sort", "<af?:a>", 2, hof::sort),
    Builtin::new("shuffle", "<a:a>", 1, array::shuffle),
    Builtin::new("distinct", "<x:x>", 1, array::distinct),
    Builtin::new("base64encode", "<s-:s>", 1, url::base64_encode),
    Builtin::new("base64decode", "<s-:s>", 1, url::base64_decode),
    Builtin::new("encodeUrlComponent", "<s-:s>", 1, url::encode_url_component),
    Builtin::new("encodeUrl", "<s-:s>", 1, url::encode_url),
    Builtin::new("decodeUrlComponent", "<s-:s>", 1, url::decode_url_component),
    Builtin::new("decodeUrl", "<s-:s>", 1, url::decode_url),
    Builtin::new("eval", "<sx?:x>", 2, object::eval),
    Builtin::new("toMillis", "<s-s?:n>", 2, datetime_parse::to_millis),
    Builtin::new("fromMillis", "<n-s?s?:s>", 3, datetime::from_millis),
    Builtin::new("clone", "<(oa)-:o>", 1, object::clone),
    Builtin::new("now", "<s?s?:s>", 2, datetime::now),
    Builtin::new("millis", "<:n>", 0, datetime::millis),
];

/// The built-in bound to `$name`, if any.
pub(crate) fn builtin(name: &str) -> Option<Value> {
    BUILTINS
        .iter()
        .find(|b| b.name == name)
        .map(|b| Value::Function(Rc::new(Function::Builtin(b))))
}
