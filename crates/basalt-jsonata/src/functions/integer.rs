//! `$formatInteger` and `$parseInteger` (XPath F&O integer pictures).

use super::Focus;
use crate::error::JsonataError;
use crate::value::Value;

pub(crate) fn format_integer(_: &Focus, _args: Vec<Value>) -> Result<Value, JsonataError> {
    Err(JsonataError::custom("D3130", "$formatInteger is not implemented yet"))
}

pub(crate) fn parse_integer(_: &Focus, _args: Vec<Value>) -> Result<Value, JsonataError> {
    Err(JsonataError::custom("D3130", "$parseInteger is not implemented yet"))
}
