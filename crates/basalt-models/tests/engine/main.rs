//! The engines against real models (skipped when a model is not installed): chat, embeddings,
//! the prefix cache and speculative decoding. One test binary, so that llama.cpp is linked once.

mod chat;
mod embed;
mod prefix_cache;
mod speculation;
