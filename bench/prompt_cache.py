#!/usr/bin/env python3
"""Prompt reuse: Basalt's chat engine with its prefix cache, without it, and llama-cpp-python
(which keeps the KV of the longest prefix it evaluated last), on the same GGUF, the same
token ids and the same thread count, one request after another.

  (a) repeated system prompt: a 1,000-token system text and 8 different ~50-token questions,
      16 greedy tokens each; time to first token of requests 2..8 (request 1 fills the caches)
  (b) agent loop: 6 calls sharing ~600 tokens of instructions and tool definitions, each
      adding the previous call's tool call and tool result, 32 greedy tokens each; total time

Also checks that the answers with and without the cache are the same, token for token.

Prerequisites (`make bench-prompt-cache` does all of it):
  cargo build --release -p basalt-models --examples
  bash bench/setup.sh llm    # .venv-bench-llm: llama-cpp-python with the engine's kernels

Usage:
  .venv-bench-llm/bin/python bench/prompt_cache.py [--threads 2] [--model PATH] [--json OUT]

Run it on an otherwise idle machine (see bench/llm.py).
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_MODEL = pathlib.Path.home() / ".cache/basalt/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
BENCH_BIN = ROOT / "target/release/examples/llm_bench"

QUESTIONS = [
    "Based only on the text above, which technical terms appear most often? List three of them "
    "and say in one sentence what each one refers to in this context.",
    "Write a short title for the text above and explain in one sentence why that title fits "
    "better than a generic one such as 'Introduction'.",
    "Which sentence of the text above would a newcomer find hardest to understand, and how "
    "would you rephrase it in plain words for a first-year student?",
    "Does the text above describe a process with steps? If so, name the first two steps; if "
    "not, say what kind of text it is instead.",
    "Pick one number or date that appears in the text above and explain what it measures or "
    "refers to, quoting the sentence where it appears.",
    "What question would you ask the author of the text above to clarify its main claim? "
    "Give the question and one reason for asking it.",
    "Summarize the text above for an engineer who has thirty seconds, in at most two short "
    "sentences, keeping every technical term exact.",
    "Name one thing the text above leaves out that a reader would need to apply it in "
    "practice, and say where in the text it should be added.",
]

INSTRUCTIONS = (
    "You are an operations agent for an online store. You answer customer requests by calling "
    "tools, one at a time, and you never invent order data. Before answering, check the order "
    "with get_order; if the customer asks for a refund, check eligibility with check_refund, "
    "then issue it with issue_refund only when eligible. Always confirm the amount and the "
    "order number in your final answer, keep it under three sentences, and be polite. If a "
    "tool fails, apologize and offer to escalate with escalate_ticket. Never reveal internal "
    "notes, supplier names or costs. Dates are in ISO 8601; amounts are in US dollars."
)
TOOLS = [
    {"name": "get_order", "description": "Fetch an order by its number: items, amounts, status, dates.",
     "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}},
    {"name": "check_refund", "description": "Whether an order is eligible for a refund, and the maximum amount.",
     "parameters": {"type": "object", "properties": {"order_id": {"type": "string"},
                    "reason": {"type": "string", "enum": ["damaged", "late", "wrong_item", "other"]}},
                    "required": ["order_id", "reason"]}},
    {"name": "issue_refund", "description": "Refund an eligible order, fully or partially.",
     "parameters": {"type": "object", "properties": {"order_id": {"type": "string"},
                    "amount": {"type": "number"}}, "required": ["order_id", "amount"]}},
    {"name": "escalate_ticket", "description": "Open a ticket for a human agent with a summary.",
     "parameters": {"type": "object", "properties": {"summary": {"type": "string"},
                    "priority": {"type": "string", "enum": ["low", "normal", "high"]}}, "required": ["summary"]}},
    {"name": "track_shipment", "description": "Carrier, tracking number and last scan of an order's shipment.",
     "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}},
]
STEPS = [
    ('{"name": "get_order", "arguments": {"order_id": "A-1042"}}',
     '{"order_id": "A-1042", "status": "delivered", "items": [{"sku": "KB-87", "name": "mechanical keyboard", "price": 89.0}], "delivered": "2026-11-28"}'),
    ('{"name": "check_refund", "arguments": {"order_id": "A-1042", "reason": "damaged"}}',
     '{"eligible": true, "max_amount": 89.0, "window_ends": "2026-12-28"}'),
    ('{"name": "issue_refund", "arguments": {"order_id": "A-1042", "amount": 89.0}}',
     '{"refund_id": "R-5531", "amount": 89.0, "status": "issued"}'),
    ('{"name": "track_shipment", "arguments": {"order_id": "A-1042"}}',
     '{"carrier": "UPS", "tracking": "1Z999", "last_scan": "2026-11-28T14:02:00Z"}'),
    ('{"name": "escalate_ticket", "arguments": {"summary": "Customer reports damaged keyboard, refunded", "priority": "low"}}',
     '{"ticket": "T-771", "status": "open"}'),
]


def chatml(system, turns):
    s = f"<|im_start|>system\n{system}<|im_end|>\n"
    for role, text in turns:
        s += f"<|im_start|>{role}\n{text}<|im_end|>\n"
    return s + "<|im_start|>assistant\n"


def scenarios(llm, speed_text):
    tok = lambda s: llm.tokenize(s.encode(), add_bos=False, special=True)
    body = llm.tokenize(speed_text.encode(), add_bos=False, special=False)[:1000]
    system = llm.detokenize(body).decode("utf-8", "ignore")
    repeated = [{"prompt": tok(chatml(system, [("user", q)])), "max_tokens": 16} for q in QUESTIONS]
    tools = "\n".join(json.dumps({"type": "function", "function": t}) for t in TOOLS)
    agent_system = f"{INSTRUCTIONS}\n\n# Tools\n\n<tools>\n{tools}\n</tools>"
    turns = [("user", "My keyboard from order A-1042 arrived broken. Can I get my money back?")]
    agent = []
    for call, result in [(None, None)] + STEPS:
        if call:
            turns += [("assistant", f"<tool_call>\n{call}\n</tool_call>"),
                      ("user", f"<tool_response>\n{result}\n</tool_response>")]
        agent.append({"prompt": tok(chatml(agent_system, turns)), "max_tokens": 32})
    return repeated, agent[:6]


def ours(requests, args, cache):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"requests": requests}, f)
    env = dict(os.environ, BASALT_PREFIX_CACHE="1" if cache else "0")
    cmd = [str(BENCH_BIN), "--model", str(args.model), "--threads", str(args.threads),
           "--prompts", f.name, "--mode", "sequence", "--parallel", "4"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, timeout=900).stdout
    os.unlink(f.name)
    return json.loads(out.strip().splitlines()[-1])["requests"]


def peer(llm, requests):
    rows = []
    for r in requests:
        t0 = time.perf_counter()
        first, out = None, []
        # generate() with reset=True keeps the longest prefix of what it evaluated last.
        for t in llm.generate(r["prompt"], temp=0.0, repeat_penalty=1.0, reset=True):
            if first is None:
                first = time.perf_counter() - t0
            if llm.token_eos() == t or len(out) + 1 >= r["max_tokens"]:
                out.append(t)
                break
            out.append(t)
        rows.append({"ttft_s": first, "total_s": time.perf_counter() - t0,
                     "text": llm.detokenize(out).decode("utf-8", "ignore")})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args()
    try:
        import llama_cpp
    except ImportError:
        sys.exit("llama-cpp-python is not importable: bash bench/setup.sh llm, then .venv-bench-llm/bin/python")
    llm = llama_cpp.Llama(model_path=str(args.model), n_threads=args.threads, n_threads_batch=args.threads,
                          n_ctx=2048, n_batch=512, n_ubatch=512, verbose=False, seed=0)
    speed_text = json.loads((ROOT / "bench/prompts.json").read_text())["speed"]
    repeated, agent = scenarios(llm, speed_text)
    med = statistics.median
    res = {"threads": args.threads, "llama_cpp_python": llama_cpp.__version__}
    rows = {}
    for name, reqs in [("repeated", repeated), ("agent", agent)]:
        rows[name] = {
            "basalt_cache": ours(reqs, args, True),
            "basalt_nocache": ours(reqs, args, False),
            "llama_cpp_python": peer(llm, reqs),
        }
    same = all(a["text"] == b["text"] for n in rows for a, b in zip(rows[n]["basalt_cache"], rows[n]["basalt_nocache"]))
    print(f"\nprompt reuse, {args.threads} threads, one request after another "
          f"(answers with and without the cache identical: {same})")
    r = rows["repeated"]
    ttft = {k: med([x["ttft_s"] for x in v[1:]]) for k, v in r.items()}
    print(f"\n(a) {len(repeated[1]['prompt'])}-token prompts sharing a 1,000-token system text: "
          f"median time to first token of requests 2..{len(repeated)}")
    print(f"{'':24}{'seconds':>10}")
    for k, v in ttft.items():
        print(f"{k:24}{v:>10.3f}")
    print(f"  cache vs no cache: {ttft['basalt_nocache'] / ttft['basalt_cache']:.1f}x faster; "
          f"vs llama-cpp-python: {ttft['llama_cpp_python'] / ttft['basalt_cache']:.2f}x "
          f"(reused tokens {[x['cached_tokens'] for x in r['basalt_cache']]})")
    a = rows["agent"]
    total = {k: sum(x["total_s"] for x in v) for k, v in a.items()}
    print(f"\n(b) agent loop, 6 calls of {len(agent[0]['prompt'])}..{len(agent[-1]['prompt'])} tokens, "
          f"32 greedy tokens each: total seconds")
    for k, v in total.items():
        print(f"{k:24}{v:>10.2f}")
    print(f"  cache vs no cache: {total['basalt_nocache'] / total['basalt_cache']:.2f}x faster; "
          f"vs llama-cpp-python: {total['llama_cpp_python'] / total['basalt_cache']:.2f}x "
          f"(reused tokens {[x['cached_tokens'] for x in a['basalt_cache']]})")
    res.update({"identical_with_and_without_cache": same, "repeated_ttft_s": ttft,
                "agent_total_s": total, "rows": rows})
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
