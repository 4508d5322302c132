//! The model registry: model package groups (Create/Describe/List/DeleteModelPackageGroup)
//! and model packages (Create/Describe/List/Update/DeleteModelPackage), versioned in their
//! group (1, 2, ...) or unversioned by name, with an approval status; CreateModel takes a
//! package (`ModelPackageName`) and serves its inference containers.

use crate::records::{self, Listed, secs};
use crate::{Core, in_use};
use basalt_core::{AwsError, RequestContext};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

const GROUPS: &str = "sagemaker.model-package-groups";
const PACKAGES: &str = "sagemaker.model-packages";
/// Package keys: `{group}/{version:010}` for versions, `~/{name}` for unversioned packages.
const UNVERSIONED: &str = "~";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Group {
    name: String,
    arn: String,
    description: Option<String>,
    created_ms: i64,
}

impl Listed for Group {
    fn name(&self) -> &str {
        &self.name
    }
    fn created_ms(&self) -> i64 {
        self.created_ms
    }
    fn summary(&self) -> Value {
        let mut v = json!({
            "ModelPackageGroupName": self.name, "ModelPackageGroupArn": self.arn,
            "CreationTime": secs(self.created_ms), "ModelPackageGroupStatus": "Completed",
        });
        if let Some(d) = &self.description {
            v["ModelPackageGroupDescription"] = d.clone().into();
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Package {
    name: String,
    group: Option<String>,
    version: Option<u64>,
    arn: String,
    request: Map<String, Value>,
    approval: String,
    approval_description: Option<String>,
    created_ms: i64,
    modified_ms: i64,
}

impl Package {
    fn key(&self) -> String {
        match (&self.group, self.version) {
            (Some(g), Some(v)) => format!("{g}/{v:010}"),
            _ => format!("{UNVERSIONED}/{}", self.name),
        }
    }

    fn describe(&self) -> Value {
        let mut v = Value::Object(self.request.clone());
        v["ModelPackageName"] = self.name.clone().into();
        v["ModelPackageArn"] = self.arn.clone().into();
        v["CreationTime"] = secs(self.created_ms).into();
        v["LastModifiedTime"] = secs(self.modified_ms).into();
        v["ModelPackageStatus"] = "Completed".into();
        v["ModelPackageStatusDetails"] = json!({"ValidationStatuses": []});
        v["ModelApprovalStatus"] = self.approval.clone().into();
        if let (Some(g), Some(n)) = (&self.group, self.version) {
            v["ModelPackageGroupName"] = g.clone().into();
            v["ModelPackageVersion"] = n.into();
        }
        if let Some(d) = &self.approval_description {
            v["ApprovalDescription"] = d.clone().into();
        }
        v
    }

    /// The containers a model made from this package runs.
    pub fn containers(&self) -> Vec<Value> {
        self.request
            .get("InferenceSpecification")
            .unwrap_or(&Value::Null)["Containers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Listed for Package {
    fn name(&self) -> &str {
        &self.name
    }
    fn created_ms(&self) -> i64 {
        self.created_ms
    }
    fn status(&self) -> Option<&str> {
        Some(&self.approval)
    }
    fn summary(&self) -> Value {
        let mut v = json!({
            "ModelPackageName": self.name, "ModelPackageArn": self.arn,
            "CreationTime": secs(self.created_ms), "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": self.approval,
        });
        if let (Some(g), Some(n)) = (&self.group, self.version) {
            v["ModelPackageGroupName"] = g.clone().into();
            v["ModelPackageVersion"] = n.into();
        }
        if let Some(d) = self.request.get("ModelPackageDescription") {
            v["ModelPackageDescription"] = d.clone();
        }
        v
    }
}

/// `name` or an ARN's last segment.
fn name_of(name_or_arn: &str) -> &str {
    name_or_arn
        .strip_prefix("arn:")
        .and_then(|_| name_or_arn.rsplit_once('/'))
        .map_or(name_or_arn, |(_, n)| n)
}

fn load_group(core: &Core, ctx: &RequestContext, name: &str) -> Result<Group, AwsError> {
    records::load(core.state.as_ref(), GROUPS, ctx, name)?
        .ok_or_else(|| AwsError::validation(format!("ModelPackageGroup {name} does not exist.")))
}

pub(crate) fn create_group(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = input["ModelPackageGroupName"].as_str().unwrap_or_default();
    records::check_name("modelPackageGroupName", name)?;
    let arn = records::arn(ctx, "model-package-group", name);
    if records::load::<Group>(core.state.as_ref(), GROUPS, ctx, name)?.is_some() {
        return Err(AwsError::validation(format!(
            "Model Package Group already exists: {arn}"
        )));
    }
    let group = Group {
        name: name.to_owned(),
        arn: arn.clone(),
        description: input["ModelPackageGroupDescription"]
            .as_str()
            .map(str::to_owned),
        created_ms: core.now_ms(),
    };
    records::save(core.state.as_ref(), GROUPS, ctx, name, &group)?;
    crate::tags::put(core, &arn, &input["Tags"])?;
    Ok(json!({"ModelPackageGroupArn": arn}))
}

pub(crate) fn describe_group(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let group = load_group(
        core,
        ctx,
        name_of(input["ModelPackageGroupName"].as_str().unwrap_or_default()),
    )?;
    let mut v = group.summary();
    v["CreatedBy"] = json!({});
    Ok(v)
}

pub(crate) fn list_groups(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let all: Vec<Group> = records::all(core.state.as_ref(), GROUPS, ctx)?;
    records::list_page(all, input, "ModelPackageGroupSummaryList")
}

pub(crate) fn delete_group(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = name_of(input["ModelPackageGroupName"].as_str().unwrap_or_default());
    let group = load_group(core, ctx, name)?;
    if !packages_of(core, ctx, Some(name))?.is_empty() {
        return Err(AwsError::new(
            400,
            "ConflictException",
            format!("Model Package Group {name} still has model packages; delete them first."),
        ));
    }
    core.state.delete(GROUPS, &records::key(ctx, name))?;
    crate::tags::forget(core, &group.arn);
    Ok(json!({}))
}

fn packages_of(
    core: &Core,
    ctx: &RequestContext,
    group: Option<&str>,
) -> Result<Vec<Package>, AwsError> {
    let prefix = match group {
        Some(g) => records::key(ctx, &format!("{g}/")),
        None => records::key(ctx, ""),
    };
    core.state
        .scan(PACKAGES, &prefix, None, usize::MAX)?
        .into_iter()
        .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| AwsError::internal(e.to_string())))
        .collect()
}

/// A package by name (unversioned), `group/version`, or ARN.
pub(crate) fn load_package(
    core: &Core,
    ctx: &RequestContext,
    name_or_arn: &str,
) -> Result<Package, AwsError> {
    let rest = name_or_arn
        .strip_prefix("arn:")
        .and_then(|a| a.split_once(":model-package/"))
        .map_or(name_or_arn, |(_, r)| r);
    let key = match rest.rsplit_once('/') {
        Some((group, version)) if version.parse::<u64>().is_ok() => {
            // ARNs write the group in lower case: find it as it was created.
            let group = records::all::<Group>(core.state.as_ref(), GROUPS, ctx)?
                .into_iter()
                .find(|g| g.name.eq_ignore_ascii_case(group))
                .map_or_else(|| group.to_owned(), |g| g.name);
            format!("{group}/{:010}", version.parse::<u64>().unwrap_or(0))
        }
        _ => format!("{UNVERSIONED}/{rest}"),
    };
    core.state
        .get(PACKAGES, &records::key(ctx, &key))?
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .ok_or_else(|| AwsError::validation(format!("ModelPackage {name_or_arn} does not exist.")))
}

pub(crate) fn create_package(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let now = core.now_ms();
    let mut request = input.as_object().cloned().unwrap_or_default();
    for k in [
        "Tags",
        "ModelPackageName",
        "ModelPackageGroupName",
        "ModelApprovalStatus",
        "ClientToken",
    ] {
        request.remove(k);
    }
    let containers = input["InferenceSpecification"]["Containers"]
        .as_array()
        .map_or(0, Vec::len);
    if input["InferenceSpecification"].is_object() && containers == 0 {
        return Err(AwsError::validation(
            "InferenceSpecification needs at least one container.",
        ));
    }
    let approval = input["ModelApprovalStatus"].as_str();
    let package = match input["ModelPackageGroupName"].as_str() {
        Some(group) => {
            let group = load_group(core, ctx, name_of(group))?;
            let version = packages_of(core, ctx, Some(&group.name))?
                .iter()
                .filter_map(|p| p.version)
                .max()
                .unwrap_or(0)
                + 1;
            Package {
                name: group.name.clone(),
                arn: format!(
                    "{}/{version}",
                    records::arn(ctx, "model-package", &group.name)
                ),
                group: Some(group.name),
                version: Some(version),
                request,
                approval: approval.unwrap_or("PendingManualApproval").to_owned(),
                approval_description: None,
                created_ms: now,
                modified_ms: now,
            }
        }
        None => {
            let name = input["ModelPackageName"].as_str().ok_or_else(|| {
                AwsError::validation(
                    "Either ModelPackageName or ModelPackageGroupName is required.",
                )
            })?;
            records::check_name("modelPackageName", name)?;
            if load_package(core, ctx, name).is_ok() {
                return Err(in_use(format!("Model package {name} already exists.")));
            }
            Package {
                name: name.to_owned(),
                arn: records::arn(ctx, "model-package", name),
                group: None,
                version: None,
                request,
                approval: approval.unwrap_or("Approved").to_owned(),
                approval_description: None,
                created_ms: now,
                modified_ms: now,
            }
        }
    };
    if !["Approved", "Rejected", "PendingManualApproval"].contains(&package.approval.as_str()) {
        return Err(AwsError::validation(format!(
            "ModelApprovalStatus {} is not valid.",
            package.approval
        )));
    }
    let key = records::key(ctx, &package.key());
    // A version number is taken once: a second writer of the same version retries.
    core.state.batch(&[
        basalt_store::WriteOp::Check {
            table: PACKAGES.into(),
            key: key.clone(),
            expected: None,
        },
        basalt_store::WriteOp::Put {
            table: PACKAGES.into(),
            key,
            value: serde_json::to_vec(&package).map_err(|e| AwsError::internal(e.to_string()))?,
        },
    ])?;
    crate::tags::put(core, &package.arn, &input["Tags"])?;
    Ok(json!({"ModelPackageArn": package.arn}))
}

pub(crate) fn describe_package(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    Ok(load_package(
        core,
        ctx,
        input["ModelPackageName"].as_str().unwrap_or_default(),
    )?
    .describe())
}

pub(crate) fn list_packages(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let group = input["ModelPackageGroupName"].as_str().map(name_of);
    let mut all = packages_of(core, ctx, group)?;
    match input["ModelPackageType"].as_str().unwrap_or("Both") {
        "Versioned" => all.retain(|p| p.version.is_some()),
        "Unversioned" => all.retain(|p| p.version.is_none()),
        _ => {}
    }
    if let Some(status) = input["ModelApprovalStatus"].as_str() {
        all.retain(|p| p.approval == status);
    }
    let mut query = input.clone();
    if let Some(o) = query.as_object_mut() {
        o.remove("ModelApprovalStatus");
    }
    records::list_page(all, &query, "ModelPackageSummaryList")
}

pub(crate) fn update_package(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = input["ModelPackageArn"].as_str().unwrap_or_default();
    let mut package = load_package(core, ctx, arn)?;
    if let Some(status) = input["ModelApprovalStatus"].as_str() {
        if !["Approved", "Rejected", "PendingManualApproval"].contains(&status) {
            return Err(AwsError::validation(format!(
                "ModelApprovalStatus {status} is not valid."
            )));
        }
        package.approval = status.to_owned();
    }
    if let Some(d) = input["ApprovalDescription"].as_str() {
        package.approval_description = Some(d.to_owned());
    }
    if let Some(spec) = input
        .get("InferenceSpecification")
        .filter(|v| v.is_object())
    {
        package
            .request
            .insert("InferenceSpecification".into(), spec.clone());
    }
    package.modified_ms = core.now_ms();
    core.state.put(
        PACKAGES,
        &records::key(ctx, &package.key()),
        &serde_json::to_vec(&package).map_err(|e| AwsError::internal(e.to_string()))?,
    )?;
    Ok(json!({"ModelPackageArn": package.arn}))
}

pub(crate) fn delete_package(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let package = load_package(
        core,
        ctx,
        input["ModelPackageName"].as_str().unwrap_or_default(),
    )?;
    core.state
        .delete(PACKAGES, &records::key(ctx, &package.key()))?;
    crate::tags::forget(core, &package.arn);
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_out_of_arns() {
        assert_eq!(
            name_of("arn:aws:sagemaker:us-east-1:1:model-package-group/fraud"),
            "fraud"
        );
        assert_eq!(name_of("fraud"), "fraud");
    }
}
