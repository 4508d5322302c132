//! The worker process: loads one engine, then serves calls from stdin until stdin closes (the
//! server went away or unloaded the model). Replies go to the original stdout; fd 1 itself is
//! pointed at stderr so that nothing a library prints can corrupt the frames.

use super::frame::{self, Frame};
use super::{Call, EngineInfo, EngineSpec, Reply};
use crate::chat::{ChatError, ChatModel};
use crate::embed::EmbeddingModel;
use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// One per worker process, behind an `Arc`: the size difference of the variants is moot.
#[allow(clippy::large_enum_variant)]
enum Engine {
    Chat(ChatModel),
    Embed(EmbeddingModel),
}

/// Runs the worker described by `spec` (JSON of [`EngineSpec`]); returns the exit code.
pub fn run(spec: &str) -> i32 {
    let spec: EngineSpec = match serde_json::from_str(spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("basalt worker: bad spec: {e}");
            return 2;
        }
    };
    // SAFETY: plain fd juggling before any other thread exists.
    let replies = unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            eprintln!("basalt worker: cannot set up stdout");
            return 2;
        }
        OwnedFd::from_raw_fd(fd)
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("basalt worker: {e}");
            return 2;
        }
    };
    rt.block_on(serve(spec, replies))
}

async fn serve(spec: EngineSpec, replies: OwnedFd) -> i32 {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Frame>();
    let mut out = match tokio::net::unix::pipe::Sender::from_owned_fd(replies) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("basalt worker: stdout must be a pipe: {e}");
            return 2;
        }
    };
    let writer = tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if frame::write(&mut out, &f).await.is_err() {
                // The server is gone: nothing left to serve.
                std::process::exit(0);
            }
        }
    });
    let send = move |reply: &Reply, payload: Vec<u8>| {
        let _ = out_tx.send(Frame::new(reply.id().unwrap_or(0), reply, payload));
    };

    let pid = std::process::id();
    let loaded = tokio::task::spawn_blocking(move || -> Result<(Engine, EngineInfo), String> {
        let cpu = crate::cpu::selection();
        match spec {
            EngineSpec::Chat { path, config } => {
                let model = ChatModel::load(&path, config).map_err(|e| e.to_string())?;
                let level = crate::level::chosen();
                let info = EngineInfo {
                    name: model.name.clone(),
                    cpu: level.map_or_else(|| cpu.describe(), |l| l.describe()),
                    llama_level: level.and_then(|l| l.level).map(str::to_owned),
                    context_window: Some(model.context_window()),
                    pid,
                    ..Default::default()
                };
                Ok((Engine::Chat(model), info))
            }
            EngineSpec::Embed { dir, config } => {
                let model = EmbeddingModel::load_with(&dir, config).map_err(|e| e.to_string())?;
                let info = EngineInfo {
                    name: model.name.clone(),
                    cpu: cpu.describe(),
                    kernel: Some(model.kernel().name().to_owned()),
                    dimensions: Some(model.dimensions),
                    max_tokens: Some(model.max_tokens),
                    pid,
                    ..Default::default()
                };
                Ok((Engine::Embed(model), info))
            }
        }
    })
    .await;
    let engine = match loaded {
        Ok(Ok((engine, info))) => {
            send(&Reply::Ready { info }, Vec::new());
            Arc::new(engine)
        }
        Ok(Err(error)) => {
            send(&Reply::LoadFailed { error }, Vec::new());
            drop(send);
            let _ = writer.await;
            return 3;
        }
        Err(e) => {
            send(
                &Reply::LoadFailed {
                    error: e.to_string(),
                },
                Vec::new(),
            );
            drop(send);
            let _ = writer.await;
            return 3;
        }
    };

    let mut input = match tokio::net::unix::pipe::Receiver::from_owned_fd(
        // SAFETY: fd 0 is ours for the life of the process.
        unsafe { OwnedFd::from_raw_fd(0) },
    ) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("basalt worker: stdin must be a pipe: {e}");
            return 2;
        }
    };
    let mut running: HashMap<u64, AbortHandle> = HashMap::new();
    loop {
        let frame = match frame::read(&mut input).await {
            Ok(Some(f)) => f,
            // The server closed our stdin: unload by exiting.
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("basalt worker: reading a call failed: {e}");
                return 2;
            }
        };
        running.retain(|_, h| !h.is_finished());
        let call: Call = match frame.decode() {
            Ok(c) => c,
            Err(e) => {
                // Answered, so that its caller does not wait forever.
                let error = ChatError::Invalid(format!(
                    "The request could not be passed to the model: {e}"
                ));
                send(
                    &Reply::Error {
                        id: frame.id,
                        error,
                    },
                    Vec::new(),
                );
                continue;
            }
        };
        let send = send.clone();
        match call {
            Call::Cancel { id } => {
                if let Some(h) = running.remove(&id) {
                    // Dropping the event receiver tells the engine to stop this sequence.
                    h.abort();
                }
            }
            Call::CountTokens { id, request } => {
                // Tokenizing a long prompt must not stall the replies of running streams.
                let engine = engine.clone();
                tokio::task::spawn_blocking(move || {
                    let reply = match engine.as_ref() {
                        Engine::Chat(m) => match m.count_tokens(&request) {
                            Ok(count) => Reply::Tokens { id, count },
                            Err(error) => Reply::Error { id, error },
                        },
                        Engine::Embed(_) => wrong_engine(id),
                    };
                    send(&reply, Vec::new());
                });
            }
            Call::Chat { id, request } => {
                let Engine::Chat(model) = engine.as_ref() else {
                    send(&wrong_engine(id), Vec::new());
                    continue;
                };
                match model.stream(&request) {
                    Err(error) => send(&Reply::Error { id, error }, Vec::new()),
                    Ok(mut events) => {
                        send(&Reply::Started { id }, Vec::new());
                        let task = tokio::spawn(async move {
                            while let Some(ev) = events.recv().await {
                                let reply = match ev {
                                    Ok(event) => Reply::Event { id, event },
                                    Err(error) => Reply::Error { id, error },
                                };
                                let last = reply.is_final();
                                send(&reply, Vec::new());
                                if last {
                                    return;
                                }
                            }
                            let error = ChatError::Engine("the inference worker stopped".into());
                            send(&Reply::Error { id, error }, Vec::new());
                        });
                        running.insert(id, task.abort_handle());
                    }
                }
            }
            Call::Embed { id, texts } => {
                let engine = engine.clone();
                tokio::spawn(async move {
                    let result = tokio::task::spawn_blocking(move || match engine.as_ref() {
                        Engine::Embed(m) => m.embed(&texts).map_err(|e| e.to_string()),
                        Engine::Chat(_) => Err("this worker serves a chat model".into()),
                    })
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                    match result {
                        Ok((vectors, counts)) => {
                            let dimensions = vectors.first().map_or(0, Vec::len);
                            send(
                                &Reply::Embedded {
                                    id,
                                    dimensions,
                                    counts,
                                },
                                frame::vectors_to_bytes(&vectors),
                            );
                        }
                        Err(m) => send(
                            &Reply::Error {
                                id,
                                error: ChatError::Engine(m),
                            },
                            Vec::new(),
                        ),
                    }
                });
            }
        }
    }
}

fn wrong_engine(id: u64) -> Reply {
    Reply::Error {
        id,
        error: ChatError::Engine("this call does not match the worker's engine".into()),
    }
}
