//! Knowledge bases' host: the local embedding model (and its tokenizer, which chunk sizes
//! are counted in) and S3 read in-process.

use basalt_bedrock_agent::{Embedder, ObjectInfo, Objects};
use basalt_bedrock_runtime::Runtime;
use basalt_bedrock_runtime::accounting::Accounting;
use basalt_core::{AwsError, RequestContext};
use basalt_documents::{Tokens, WordTokens};
use basalt_models::embed::Wordpieces;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;

pub struct LocalEmbedder {
    pub runtime: Arc<Runtime>,
    pub accounting: Arc<Accounting>,
    /// Loaded on first use (the model may be pulled after the server started).
    pieces: parking_lot::Mutex<Option<Arc<Pieces>>>,
}

struct Pieces(Wordpieces);

impl Tokens for Pieces {
    fn spans(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        self.0.spans(text)
    }
}

impl LocalEmbedder {
    pub fn new(runtime: Arc<Runtime>, accounting: Arc<Accounting>) -> LocalEmbedder {
        LocalEmbedder {
            runtime,
            accounting,
            pieces: parking_lot::Mutex::new(None),
        }
    }

    fn pieces(&self) -> Option<Arc<Pieces>> {
        let mut p = self.pieces.lock();
        if p.is_none() {
            let dir = self
                .runtime
                .config
                .model_dir
                .join(basalt_models::pull::DEFAULT_EMBEDDING);
            *p = Wordpieces::load(&dir).ok().map(|w| Arc::new(Pieces(w)));
        }
        p.clone()
    }
}

impl Embedder for LocalEmbedder {
    fn embed<'a>(
        &'a self,
        ctx: &'a RequestContext,
        model_id: &'a str,
        texts: Vec<String>,
    ) -> BoxFuture<'a, Result<basalt_bedrock_agent::Embedded, AwsError>> {
        async move {
            let started = std::time::Instant::now();
            let model = self.runtime.embedding_for(model_id).await?;
            let (vectors, counts) = model
                .embed(texts)
                .await
                .map_err(basalt_bedrock_runtime::chat_error_public)?;
            let tokens: usize = counts.iter().sum();
            // Bedrock meters a knowledge base's embeddings as the model's invocations.
            self.accounting.record(
                ctx,
                model_id,
                &basalt_chat::Usage {
                    input_tokens: tokens as u32,
                    output_tokens: 0,
                    ..Default::default()
                },
                started.elapsed().as_millis() as u64,
            );
            Ok((vectors, tokens))
        }
        .boxed()
    }

    fn tokens(&self) -> Arc<dyn Tokens> {
        match self.pieces() {
            Some(p) => p,
            None => Arc::new(WordTokens),
        }
    }

    fn window(&self) -> usize {
        self.pieces().map_or(256, |p| p.0.window)
    }
}

pub struct S3Objects(pub basalt_s3::BasaltS3);

impl Objects for S3Objects {
    fn list(
        &self,
        account: &str,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<Option<Vec<ObjectInfo>>, String> {
        Ok(self
            .0
            .list_current(account, bucket, prefix, after, max)?
            .map(|objects| {
                objects
                    .into_iter()
                    .map(|o| ObjectInfo {
                        key: o.key,
                        etag: o.etag,
                        size: o.size,
                    })
                    .collect()
            }))
    }

    fn read(&self, account: &str, bucket: &str, key: &str) -> Result<Option<bytes::Bytes>, String> {
        self.0.read_object(account, bucket, key, None)
    }

    fn write(
        &self,
        account: &str,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> futures::future::BoxFuture<'_, Result<bool, String>> {
        basalt_core::objects::InProcessS3::write(self, account, bucket, key, body)
    }
}

impl basalt_core::objects::InProcessS3 for S3Objects {
    fn list_objects(
        &self,
        account: &str,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<Vec<basalt_core::objects::Listed>>, String> {
        let mut objects: Vec<basalt_core::objects::Listed> = Vec::new();
        loop {
            let after = objects.last().map(|o| o.key.clone());
            let Some(page) =
                self.0
                    .list_current(account, bucket, prefix, after.as_deref(), 1000)?
            else {
                return Ok(None);
            };
            let done = page.len() < 1000;
            objects.extend(page.into_iter().map(|o| basalt_core::objects::Listed {
                key: o.key,
                etag: o.etag,
                size: o.size,
                modified_ms: o.modified_ms,
            }));
            if done {
                return Ok(Some(objects));
            }
        }
    }

    fn read(&self, account: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .0
            .read_object(account, bucket, key, None)?
            .map(|b| b.to_vec()))
    }

    fn write(
        &self,
        account: &str,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> futures::future::BoxFuture<'_, Result<bool, String>> {
        let (account, bucket, key) = (account.to_owned(), bucket.to_owned(), key.to_owned());
        Box::pin(async move {
            Ok(self
                .0
                .write_object(
                    &account,
                    &bucket,
                    &key,
                    body.into(),
                    "application/octet-stream",
                )
                .await?
                .is_some())
        })
    }
}
