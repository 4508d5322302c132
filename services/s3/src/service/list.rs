//! ListObjects and ListObjectsV2.

use super::*;

/// An object as [`BasaltS3::list_current`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    /// Unquoted.
    pub etag: String,
    pub size: u64,
    pub modified_ms: i64,
}

impl BasaltS3 {
    pub(super) fn list(
        &self,
        sc: &Scope,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> S3Result<Page<ObjectMeta>> {
        self.bucket(sc, bucket)?;
        let base = sc.objects_prefix(bucket);
        let full_prefix = format!("{base}{prefix}");
        let mut page = list_page(prefix, delimiter, marker, max, |after, limit| {
            let after = after.map(|a| format!("{base}{a}"));
            let rows = self
                .state
                .scan(T_OBJECTS, &full_prefix, after.as_deref(), limit)
                .map_err(internal)?;
            Ok::<_, S3Error>(
                rows.into_iter()
                    .map(|(k, v)| (k[base.len()..].to_owned(), v))
                    .collect(),
            )
        })?;
        let objects = std::mem::take(&mut page.objects);
        let mut out = Page {
            objects: Vec::with_capacity(objects.len()),
            common_prefixes: page.common_prefixes,
            is_truncated: page.is_truncated,
            last: page.last,
        };
        for (k, raw) in objects {
            let Some((m, _)) = decode_object(raw) else {
                continue;
            };
            out.objects.push((k, m));
        }
        Ok(out)
    }

    /// Lists the current objects of a bucket under `prefix` in-process (a knowledge base's
    /// data source), a page of at most `max` after `after`: key, unquoted ETag, size and
    /// modification time. `Ok(None)` when the bucket does not exist.
    pub fn list_current(
        &self,
        account: &str,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<Option<Vec<ListedObject>>, String> {
        let sc = Scope {
            account: account.to_owned(),
            region: self.cfg.region.clone(),
        };
        match self.list(&sc, bucket, prefix, None, after, max) {
            Ok(page) => Ok(Some(
                page.objects
                    .into_iter()
                    .filter(|(_, m)| !m.delete_marker)
                    .map(|(key, m)| ListedObject {
                        key,
                        etag: m.etag,
                        size: m.size,
                        modified_ms: m.modified_ms,
                    })
                    .collect(),
            )),
            Err(e) if e.code() == &S3ErrorCode::NoSuchBucket => Ok(None),
            Err(e) => Err(format!(
                "{}: {}",
                e.code().as_str(),
                e.message().unwrap_or_default()
            )),
        }
    }

    pub(super) async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let sc = self.scope(&req);
        let i = req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = page_size(i.max_keys, "maxKeys")?;
        let page = self.list(
            &sc,
            &i.bucket,
            &prefix,
            i.delimiter.as_deref(),
            i.marker.as_deref().filter(|m| !m.is_empty()),
            max,
        )?;
        let url = is_url(&i.encoding_type);
        let has_delim = i.delimiter.as_deref().is_some_and(|d| !d.is_empty());
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: Some(enc(url, prefix)),
            marker: Some(enc(url, i.marker.unwrap_or_default())),
            max_keys: Some(max as i32),
            is_truncated: Some(page.is_truncated),
            next_marker: if page.is_truncated && has_delim {
                page.last.map(|l| enc(url, l))
            } else {
                None
            },
            contents: Some(
                page.objects
                    .into_iter()
                    .map(|(k, m)| {
                        let mut o = s3_object(k, &m, url);
                        o.owner = Some(self.owner_of(m.owner.as_deref()));
                        o
                    })
                    .collect(),
            ),
            common_prefixes: Some(
                page.common_prefixes
                    .into_iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc(url, p)),
                    })
                    .collect(),
            ),
            delimiter: i.delimiter.filter(|d| !d.is_empty()).map(|d| enc(url, d)),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    pub(super) async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let sc = self.scope(&req);
        let i = req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = page_size(i.max_keys, "maxKeys")?;
        let token = match i.continuation_token.as_deref() {
            Some(t) => Some(decode_token(t)?),
            None => None,
        };
        let start_after = i.start_after.as_deref().filter(|s| !s.is_empty());
        let marker = match (token.as_deref(), start_after) {
            (Some(t), Some(s)) => Some(if t > s { t } else { s }),
            (t, s) => t.or(s),
        };
        let page = self.list(&sc, &i.bucket, &prefix, i.delimiter.as_deref(), marker, max)?;
        let url = is_url(&i.encoding_type);
        let fetch_owner = i.fetch_owner.unwrap_or(false);
        let key_count = (page.objects.len() + page.common_prefixes.len()) as i32;
        use base64::Engine as _;
        let next = if page.is_truncated {
            page.last
                .map(|l| base64::engine::general_purpose::STANDARD.encode(l.as_bytes()))
        } else {
            None
        };
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: Some(enc(url, prefix)),
            max_keys: Some(max as i32),
            key_count: Some(key_count),
            continuation_token: i.continuation_token,
            next_continuation_token: next,
            start_after: i.start_after.map(|s| enc(url, s)),
            is_truncated: Some(page.is_truncated),
            contents: Some(
                page.objects
                    .into_iter()
                    .map(|(k, m)| {
                        let mut o = s3_object(k, &m, url);
                        if fetch_owner {
                            o.owner = Some(self.owner_of(m.owner.as_deref()));
                        }
                        o
                    })
                    .collect(),
            ),
            common_prefixes: Some(
                page.common_prefixes
                    .into_iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc(url, p)),
                    })
                    .collect(),
            ),
            delimiter: i.delimiter.filter(|d| !d.is_empty()).map(|d| enc(url, d)),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }
}
