//! `$formatNumber` with XPath F&O decimal-format pictures.

use super::Focus;
use crate::error::JsonataError;
use crate::value::Value;

pub(crate) fn format_number(_: &Focus, _args: Vec<Value>) -> Result<Value, JsonataError> {
    Err(JsonataError::custom("D3080", "$formatNumber is not implemented yet"))
}
