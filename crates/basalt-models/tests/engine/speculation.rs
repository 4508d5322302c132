//! Speculative decoding is exact: an engine that drafts tokens from the prompt and verifies
//! them in one pass answers, token for token, as an engine that decodes one token per pass.
//! Prompts are extractive (a passage of the knowledge-base bench corpus and a request to quote
//! or restate it), where drafts are accepted often, and open-ended ones, where most are
//! rejected: both paths of the verification are exercised.
//!
//! `make test` runs a small sample; `BASALT_SPEC_PROMPTS=200 cargo test --release -p
//! basalt-models --test engine speculation -- --nocapture` the full measurement. Skipped when
//! the default model has not been pulled.

use super::prefix_cache::{chatml, corpus, generate, run};
use basalt_models::engine::{ChatEngine, EngineConfig, Event};
use basalt_models::pull;

fn config(speculate: bool) -> EngineConfig {
    EngineConfig {
        threads: 2,
        parallel: 1,
        ctx_per_seq: 2048,
        max_queue: 16,
        batch: 512,
        prefix_cache: false,
        speculate,
        kv_cells: None,
    }
}

const ASKS: [&str; 8] = [
    "Copy the first two sentences of the text above exactly, word for word.",
    "Quote the sentence of the text above that contains the most numbers.",
    "List every proper name that appears in the text above, in order, one per line.",
    "What is the text above about? Answer in your own words.",
    "Repeat the last sentence of the text above exactly.",
    "Rewrite the first paragraph of the text above as a bulleted list, keeping its wording.",
    "Write a haiku inspired by the text above.",
    "Extract the key facts of the text above as short quotes.",
];

/// The text of one greedy generation, one piece per event, and its drafted and accepted
/// tokens.
async fn speculate(
    engine: &ChatEngine,
    prompt: Vec<u32>,
    max_tokens: u32,
) -> (Vec<String>, usize, usize) {
    match generate(engine, prompt, max_tokens).await {
        (
            pieces,
            Event::Done {
                drafted_tokens,
                accepted_tokens,
                ..
            },
        ) => (pieces, drafted_tokens, accepted_tokens),
        _ => unreachable!("generate returns the Done event"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speculative_answers_are_token_for_token_the_plain_ones() {
    let path = pull::model_dir().join(pull::DEFAULT_CHAT);
    if !path.exists() {
        eprintln!("skipped: {} not present", path.display());
        return;
    }
    let prompts: usize = std::env::var("BASALT_SPEC_PROMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let gen_tokens = if prompts > 4 { 64 } else { 32 };
    let spec = ChatEngine::load(&path, config(true)).unwrap();
    let plain = ChatEngine::load(&path, config(false)).unwrap();
    assert_eq!(
        plain.verify_width(),
        1,
        "speculation off: one token per pass"
    );
    let width = spec.verify_width();
    eprintln!("proven verification width: {width}");
    let docs = corpus();
    let (mut identical, mut drafted, mut accepted) = (0, 0, 0);
    let mut mismatches = Vec::new();
    for k in 0..prompts {
        let doc = &docs[k % docs.len()];
        let tokens = spec.tokenize(doc, false);
        // Passages of 120 to 900 tokens from varying places of the documents.
        let len = 120 + (k * 389) % 780;
        let from = (k * 131) % tokens.len().saturating_sub(len).max(1);
        let passage = spec.detokenize(&tokens[from..(from + len).min(tokens.len())]);
        let prompt = spec.tokenize(
            &chatml(
                "You are a careful assistant.",
                &format!("{passage}\n\n{}", ASKS[k % ASKS.len()]),
            ),
            true,
        );
        let (a, d, acc) = speculate(&spec, prompt.clone(), gen_tokens).await;
        let (b, _) = run(&plain, prompt.clone(), gen_tokens).await;
        drafted += d;
        accepted += acc;
        if a == b {
            identical += 1;
        } else {
            mismatches.push(format!(
                "prompt {k} ({} tokens): {:?} vs {:?}",
                prompt.len(),
                a.concat(),
                b.concat()
            ));
        }
    }
    eprintln!(
        "{identical} of {prompts} answers identical; {accepted} of {drafted} drafted tokens accepted"
    );
    assert!(
        mismatches.is_empty(),
        "answers differ with speculation: {mismatches:#?}"
    );
    if width > 1 {
        assert!(
            accepted > 0,
            "extractive answers must accept some drafted tokens"
        );
    }
}
