//! A training job's CheckpointConfig: the files the algorithm writes under its local
//! checkpoint directory (`/opt/ml/checkpoints`, or LocalPath under `/opt/ml`) are copied to
//! the S3 URI as they change, while the job runs and once more when it ends; a job that
//! starts (or starts again after a spot interruption or a lost node) finds there what the
//! URI holds, so that it can resume.

use crate::Core;
use crate::container::Layout;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) struct Checkpoints {
    account: String,
    bucket: String,
    /// The key prefix, ending in `/` unless empty.
    prefix: String,
    dir: PathBuf,
    /// What was last copied of each file (size, modification time), by relative path.
    copied: HashMap<String, (u64, std::time::SystemTime)>,
}

/// `rel` as an S3 key suffix and a safe relative path: no parent or absolute parts.
fn safe(rel: &str) -> Option<&str> {
    let ok = !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    ok.then_some(rel)
}

impl Checkpoints {
    /// The job's checkpoint configuration, or `None` without one. `Err`: why it is invalid.
    pub fn of(
        request: &serde_json::Map<String, Value>,
        account: &str,
        layout: &Layout,
    ) -> Result<Option<Checkpoints>, String> {
        let Some(config) = request.get("CheckpointConfig").filter(|c| c.is_object()) else {
            return Ok(None);
        };
        let uri = config["S3Uri"].as_str().unwrap_or_default();
        let (bucket, prefix) = basalt_core::objects::parse_s3_uri(uri)
            .ok_or_else(|| format!("ClientError: CheckpointConfig.S3Uri {uri} is not an S3 URI"))?;
        let local = config["LocalPath"]
            .as_str()
            .unwrap_or("/opt/ml/checkpoints");
        // A directory of its own: not the inputs, code, model or output the job also has.
        let rel = local
            .strip_prefix("/opt/ml/")
            .and_then(|r| safe(r.trim_end_matches('/')))
            .filter(|r| {
                let top = r.split('/').next().unwrap_or_default();
                !matches!(top, "input" | "code" | "model" | "output")
            })
            .ok_or_else(|| {
                format!(
                    "ClientError: CheckpointConfig.LocalPath {local} is not a directory of its own under /opt/ml"
                )
            })?;
        Ok(Some(Checkpoints {
            account: account.to_owned(),
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() || prefix.ends_with('/') {
                prefix.to_owned()
            } else {
                format!("{prefix}/")
            },
            dir: layout.host(rel),
            copied: HashMap::new(),
        }))
    }

    /// The local checkpoint directory, on this host.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Copies what the S3 URI holds into the local directory; the number of files.
    pub fn restore(&mut self, core: &Core) -> Result<usize, String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("InternalServerError: {e}"))?;
        let listed = core
            .objects
            .list_objects(&self.account, &self.bucket, &self.prefix)?
            .ok_or_else(|| {
                format!(
                    "ClientError: the checkpoint bucket {} does not exist",
                    self.bucket
                )
            })?;
        let mut n = 0;
        for o in listed {
            let Some(rel) = o.key.strip_prefix(&self.prefix).and_then(safe) else {
                continue;
            };
            let Some(body) = core.objects.read(&self.account, &self.bucket, &o.key)? else {
                continue;
            };
            let path = self.dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("InternalServerError: {e}"))?;
            }
            std::fs::write(&path, &body).map_err(|e| format!("InternalServerError: {e}"))?;
            if let Ok(meta) = std::fs::metadata(&path) {
                self.copied.insert(
                    rel.to_owned(),
                    (meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH)),
                );
            }
            n += 1;
        }
        Ok(n)
    }

    /// Copies the files that changed since the last copy to S3; the number copied.
    pub async fn sync(&mut self, core: &Arc<Core>) -> Result<usize, String> {
        let mut changed = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let Ok(meta) = e.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                if !meta.is_file() {
                    continue;
                }
                let Some(rel) = path
                    .strip_prefix(&self.dir)
                    .ok()
                    .and_then(|r| r.to_str())
                    .map(str::to_owned)
                else {
                    continue;
                };
                let stamp = (meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH));
                if self.copied.get(&rel) != Some(&stamp) {
                    changed.push((rel, path, stamp));
                }
            }
        }
        let mut n = 0;
        for (rel, path, stamp) in changed {
            // A file being written may change again: the next sync copies it then.
            let Ok(body) = std::fs::read(&path) else {
                continue;
            };
            let key = format!("{}{rel}", self.prefix);
            let written = core
                .objects
                .write(&self.account, &self.bucket, &key, body)
                .await?;
            if !written {
                return Err(format!(
                    "ClientError: the checkpoint bucket {} does not exist",
                    self.bucket
                ));
            }
            self.copied.insert(rel, stamp);
            n += 1;
        }
        Ok(n)
    }
}
