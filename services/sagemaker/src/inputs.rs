//! What a job reads from S3: the objects an `S3DataSource` names (an `S3Prefix`, or a
//! `ManifestFile` listing keys under a common prefix), each with its path relative to the
//! source, which is where it lands in a channel and how its output is named.

use crate::Core;

/// Where an object under an `S3Prefix` lands, relative to its channel or input directory.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Below the prefix when it ends a path segment (training channels, processing inputs:
    /// `s3://b/data/train` puts `data/train/a.csv` at `a.csv`, as the SageMaker Python SDK's
    /// uploads expect).
    BelowPrefix,
    /// From the prefix's last segment on (batch transform: "the input data stored at
    /// `s3://bucket/input-name-prefix/dataset01/data.csv`" is transformed to
    /// `output-name-prefix/input-name-prefix/dataset01/data.csv.out`).
    LastSegment,
}

/// (key in the bucket, path relative to the source), in key order; `Err` is a FailureReason.
pub(crate) fn objects_of(
    core: &Core,
    account: &str,
    data_type: &str,
    uri: &str,
    placement: Placement,
) -> Result<(String, Vec<(String, String)>), String> {
    let (bucket, prefix) = basalt_core::objects::parse_s3_uri(uri)
        .ok_or_else(|| format!("ClientError: {uri} is not an S3 URI"))?;
    let objects: Vec<(String, String)> = match data_type {
        "ManifestFile" => {
            let raw = core
                .objects
                .read(account, bucket, prefix)?
                .ok_or_else(|| format!("ClientError: the manifest {uri} does not exist"))?;
            let manifest: serde_json::Value = serde_json::from_slice(&raw)
                .map_err(|e| format!("ClientError: the manifest {uri} is not JSON: {e}"))?;
            let items = manifest.as_array().cloned().unwrap_or_default();
            let base = items
                .first()
                .and_then(|p| p["prefix"].as_str())
                .unwrap_or_default();
            let (_, base_key) = basalt_core::objects::parse_s3_uri(base)
                .ok_or_else(|| format!("ClientError: the manifest {uri} has no prefix"))?;
            items
                .iter()
                .skip(1)
                .filter_map(serde_json::Value::as_str)
                .map(|rel| (format!("{base_key}{rel}"), rel.to_owned()))
                .collect()
        }
        "AugmentedManifestFile" => {
            return Err(
                "ClientError: Basalt reads AugmentedManifestFile data sources in training channels (Pipe mode) only."
                    .into(),
            );
        }
        _ => {
            let keys = core
                .objects
                .list(account, bucket, prefix)?
                .ok_or_else(|| format!("ClientError: the bucket {bucket} does not exist"))?;
            // A prefix that ends inside a name (`data/tr` for `data/train.csv`, or the
            // object's own key) keeps the name from its last segment on, whatever the
            // placement. Directory markers are skipped.
            let cut = prefix.rfind('/').map_or(0, |i| i + 1);
            keys.into_iter()
                .filter(|k| !k.ends_with('/'))
                .map(|k| {
                    let below = (placement == Placement::BelowPrefix)
                        .then(|| k.strip_prefix(prefix))
                        .flatten()
                        .and_then(|r| {
                            if prefix.ends_with('/') {
                                Some(r)
                            } else {
                                r.strip_prefix('/')
                            }
                        });
                    let rel = below.unwrap_or(&k[cut.min(k.len())..]).to_owned();
                    (k, rel)
                })
                .collect()
        }
    };
    if objects.is_empty() {
        return Err(format!(
            "ClientError: No S3 objects found under S3 URL \"{uri}\" given in input data source. Please ensure that the bucket exists in the selected region, that objects exist under that S3 prefix, and that the role has s3:ListBucket permissions."
        ));
    }
    Ok((bucket.to_owned(), objects))
}
