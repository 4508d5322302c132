//! PutDashboard (with the body checks CloudWatch makes), GetDashboard, ListDashboards,
//! DeleteDashboards. The body is stored and returned exactly as given.

use crate::CloudWatch;
use crate::error::{corrupt, dashboard_invalid, dashboard_not_found, invalid_value};
use crate::model::{DASHBOARDS, now_ms, str_of, strings_of, token, ts, untoken};
use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const WIDGET_TYPES: &[&str] = &["metric", "text", "log", "alarm", "explorer", "custom"];
const PAGE: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
struct DashboardRec {
    v: u32,
    name: String,
    body: String,
    last_modified_ms: i64,
}

fn key(ctx: &RequestContext, name: &str) -> String {
    format!("{}/{name}", ctx.scope())
}

fn arn(ctx: &RequestContext, name: &str) -> String {
    // Dashboards are global: their ARN has no region.
    format!("arn:aws:cloudwatch::{}:dashboard/{name}", ctx.account_id)
}

fn check_name(name: &str) -> Result<(), AwsError> {
    if name.is_empty() {
        return Err(crate::error::missing(
            "The parameter DashboardName is required.",
        ));
    }
    if name.len() > 255
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(AwsError::new(
            400,
            "DashboardInvalidInputError",
            "The value for field DashboardName contains invalid characters. It can only contain alphanumerics, dash (-) and underscore (_).",
        ));
    }
    Ok(())
}

fn message(path: &str, text: &str) -> Value {
    json!({"DataPath": path, "Message": text})
}

/// The validation errors of a dashboard body, as CloudWatch's JSON-schema check words them.
fn validate(body: &str) -> Vec<Value> {
    let doc: Value = match serde_json::from_str(body) {
        Ok(d) => d,
        Err(_) => return vec![message("", "Invalid JSON")],
    };
    let Some(obj) = doc.as_object() else {
        return vec![message("", "Should be object")];
    };
    let mut errs = Vec::new();
    if let Some(p) = obj.get("periodOverride")
        && !matches!(p.as_str(), Some("auto" | "inherit"))
    {
        errs.push(message(
            "/periodOverride",
            "Should be equal to one of the allowed values",
        ));
    }
    let Some(widgets) = obj.get("widgets") else {
        errs.push(message("", "Should have required property 'widgets'"));
        return errs;
    };
    let Some(widgets) = widgets.as_array() else {
        errs.push(message("/widgets", "Should be array"));
        return errs;
    };
    if widgets.len() > 500 {
        errs.push(message("/widgets", "Should NOT have more than 500 items"));
    }
    for (i, w) in widgets.iter().enumerate() {
        let at = format!("/widgets/{i}");
        let Some(w) = w.as_object() else {
            errs.push(message(&at, "Should be object"));
            continue;
        };
        match w.get("type").map(|t| t.as_str()) {
            None => errs.push(message(&at, "Should have required property 'type'")),
            Some(Some(t)) if WIDGET_TYPES.contains(&t) => {
                if t != "text" && !w.contains_key("properties") {
                    errs.push(message(&at, "Should have required property 'properties'"));
                }
                if t == "text"
                    && !w
                        .get("properties")
                        .and_then(|p| p.get("markdown"))
                        .is_some_and(Value::is_string)
                {
                    errs.push(message(
                        &format!("{at}/properties"),
                        "Should have required property 'markdown'",
                    ));
                }
                if t == "metric"
                    && let Some(m) = w.get("properties").and_then(|p| p.get("metrics"))
                    && !m.is_array()
                {
                    errs.push(message(
                        &format!("{at}/properties/metrics"),
                        "Should be array",
                    ));
                }
            }
            Some(_) => errs.push(message(
                &format!("{at}/type"),
                "Should be equal to one of the allowed values",
            )),
        }
        for (field, lo, hi) in [
            ("x", 0, 23),
            ("y", 0, i64::MAX),
            ("width", 1, 24),
            ("height", 1, 1000),
        ] {
            if let Some(v) = w.get(field) {
                match v.as_i64() {
                    Some(n) if n < lo => errs.push(message(
                        &format!("{at}/{field}"),
                        &format!("Should be >= {lo}"),
                    )),
                    Some(n) if n > hi => errs.push(message(
                        &format!("{at}/{field}"),
                        &format!("Should be <= {hi}"),
                    )),
                    Some(_) => {}
                    None => errs.push(message(&format!("{at}/{field}"), "Should be integer")),
                }
            }
        }
        if let Some(p) = w.get("properties")
            && !p.is_object()
        {
            errs.push(message(&format!("{at}/properties"), "Should be object"));
        }
    }
    errs
}

pub(crate) fn put(cw: &CloudWatch, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "DashboardName").unwrap_or_default();
    check_name(name)?;
    let body = str_of(input, "DashboardBody")
        .ok_or_else(|| crate::error::missing("The parameter DashboardBody is required."))?;
    let errs = validate(body);
    if !errs.is_empty() {
        return Err(dashboard_invalid(
            "The field DashboardBody is invalid. Refer to the DashboardValidationMessages for details.",
            errs,
        ));
    }
    let rec = DashboardRec {
        v: 1,
        name: name.to_owned(),
        body: body.to_owned(),
        last_modified_ms: now_ms(),
    };
    let value = serde_json::to_vec(&rec).map_err(|e| corrupt("dashboard", e))?;
    cw.state.put(DASHBOARDS, &key(ctx, name), &value)?;
    Ok(json!({"DashboardValidationMessages": []}))
}

fn load(
    cw: &CloudWatch,
    ctx: &RequestContext,
    name: &str,
) -> Result<Option<DashboardRec>, AwsError> {
    match cw.state.get(DASHBOARDS, &key(ctx, name))? {
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| corrupt("dashboard", e)),
        None => Ok(None),
    }
}

pub(crate) fn get(cw: &CloudWatch, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = str_of(input, "DashboardName").unwrap_or_default();
    if name.is_empty() {
        return Err(crate::error::missing(
            "The parameter DashboardName is required.",
        ));
    }
    let rec = load(cw, ctx, name)?
        .ok_or_else(|| dashboard_not_found(format!("Dashboard {name} does not exist")))?;
    Ok(json!({
        "DashboardArn": arn(ctx, name),
        "DashboardBody": rec.body,
        "DashboardName": rec.name,
    }))
}

pub(crate) fn list(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let prefix_name = str_of(input, "DashboardNamePrefix").unwrap_or_default();
    if !prefix_name.is_empty() {
        check_name(prefix_name).map_err(|_| {
            invalid_value(
                "The value for field DashboardNamePrefix contains invalid characters. It can only contain alphanumerics, dash (-) and underscore (_).",
            )
        })?;
    }
    let prefix = key(ctx, prefix_name);
    let after = match str_of(input, "NextToken") {
        Some(t) => Some(untoken(t)?),
        None => None,
    };
    let page = cw
        .state
        .scan(DASHBOARDS, &prefix, after.as_deref(), PAGE + 1)?;
    let mut entries = Vec::new();
    let mut next = None;
    for (i, (k, raw)) in page.iter().enumerate() {
        if i == PAGE {
            next = page.get(PAGE - 1).map(|(k, _)| token(k));
            break;
        }
        let rec: DashboardRec = serde_json::from_slice(raw).map_err(|e| corrupt("dashboard", e))?;
        let _ = k;
        entries.push(json!({
            "DashboardName": rec.name,
            "DashboardArn": arn(ctx, &rec.name),
            "LastModified": ts(rec.last_modified_ms),
            "Size": rec.body.len(),
        }));
    }
    let mut out = json!({"DashboardEntries": entries});
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

pub(crate) fn delete(
    cw: &CloudWatch,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let names = strings_of(input, "DashboardNames");
    if names.is_empty() {
        return Err(crate::error::missing(
            "The parameter DashboardNames is required.",
        ));
    }
    let mut ops = Vec::new();
    for name in &names {
        let k = key(ctx, name);
        let Some(raw) = cw.state.get(DASHBOARDS, &k)? else {
            return Err(dashboard_not_found(format!(
                "The specified dashboard does not exist. [{name}]"
            )));
        };
        ops.push(WriteOp::Check {
            table: DASHBOARDS.into(),
            key: k.clone(),
            expected: Some(raw),
        });
        ops.push(WriteOp::Delete {
            table: DASHBOARDS.into(),
            key: k,
        });
    }
    match cw.state.batch(&ops) {
        Ok(()) | Err(basalt_store::StoreError::Conflict) => Ok(json!({})),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn bodies_are_checked_like_cloudwatch() {
        assert!(validate(r#"{"widgets": []}"#).is_empty());
        assert_eq!(validate("nope")[0]["Message"], "Invalid JSON");
        assert_eq!(
            validate("{}")[0]["Message"],
            "Should have required property 'widgets'"
        );
        let errs = validate(r#"{"widgets": [{"type": "chart", "width": 30}]}"#);
        assert_eq!(errs[0]["DataPath"], "/widgets/0/type");
        assert_eq!(errs[1]["DataPath"], "/widgets/0/width");
        assert!(
            validate(r#"{"widgets": [{"type": "text", "properties": {"markdown": "hi"}}]}"#)
                .is_empty()
        );
    }
}
