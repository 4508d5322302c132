#!/usr/bin/env python3
"""Basalt's chat engine (llama.cpp through the llama-cpp-2 crate, continuous batching) side by
side with llama-cpp-python on the same GGUF, the same prompts and the same thread count.

  (a) speed: prompt processing and decode tokens/s for a 512-token prompt + 128 greedy tokens
  (c) greedy agreement: the first 32 greedy token ids of 20 raw ChatML prompts
  (d) concurrency: 1 / 4 / 16 simultaneous requests of 64 greedy tokens: time to first token
      (p50/p99) and aggregate output tokens/s; llama-cpp-python has one sequence per `Llama`
      object (its server serializes requests behind a lock), so its column runs the same
      requests one after another

Prerequisites (this script installs nothing; `make bench-llm` does all of it):
  cargo build --release -p basalt-models --examples
  bash bench/setup.sh llm    # .venv-bench-llm: llama-cpp-python compiled with the engine's kernels

Usage:
  .venv-bench-llm/bin/python bench/llm.py [--parts speed,greedy,concurrency] [--threads 2] [--model PATH]
                                [--parallel 4] [--json OUT.json]

The machine must be otherwise idle: on 2 cores a concurrent build or test run makes
llama.cpp's OpenMP threads spin against it and the numbers collapse (see
../shared/models.md). Each part is bounded (about 1-2 minutes).
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_MODEL = pathlib.Path.home() / ".cache/basalt/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
BENCH_BIN = pathlib.Path(os.environ["LLM_BENCH_BIN"]) if os.environ.get("LLM_BENCH_BIN") else ROOT / "target/release/examples/llm_bench"


def ours(mode, args, extra=()):
    cmd = [str(BENCH_BIN), "--model", str(args.model), "--threads", str(args.threads),
           "--prompts", str(args.prompts), "--mode", mode, "--parallel", str(args.parallel), *extra]
    print("$ " + " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


def load_peer(args):
    try:
        import llama_cpp
    except ImportError:
        sys.exit("llama-cpp-python is not importable: bash bench/setup.sh llm, then .venv-bench-llm/bin/python")
    llm = llama_cpp.Llama(model_path=str(args.model), n_threads=args.threads, n_threads_batch=args.threads,
                          n_ctx=2048, n_batch=512, n_ubatch=512, verbose=False, seed=0)
    eog = {llm.token_eos()}
    try:
        vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
        is_eog = lambda t: bool(llama_cpp.llama_vocab_is_eog(vocab, t))
    except Exception:  # older bindings
        is_eog = lambda t: t in eog
    return llama_cpp, llm, is_eog


def peer_generate(llm, is_eog, ids, n, stop_at_eog=True):
    """eval(prompt), then n x (greedy sample, eval one token). Returns (ids, prompt_s, decode_s, first_s)."""
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(ids)
    t1 = time.perf_counter()
    out = []
    first = None
    for _ in range(n):
        t = llm.sample(temp=0.0, repeat_penalty=1.0)
        if first is None:
            first = time.perf_counter() - t0
        if stop_at_eog and is_eog(t):
            break
        out.append(t)
        if len(out) == n:
            break
        llm.eval([t])
    t2 = time.perf_counter()
    return out, t1 - t0, t2 - t1, first


def part_speed(args, peer):
    """Rounds alternate the two engines (ours: a fresh process doing one warm-up and one rep;
    the peer: one rep on its warm model), so drift on a shared host hits both alike; the ratio
    reported is the median of the per-round ratios."""
    lcpp, llm, is_eog = peer
    pp_o, tg_o, pp_p, tg_p, generated = [], [], [], [], []
    ids = None
    for i in range(args.rounds):
        r = ours("speed", args, ("--reps", "1"))
        ids, ngen = r["prompt_ids"], r["gen_tokens"]
        pp_o += r["pp_tok_s"]
        tg_o += r["tg_tok_s"]
        generated += [x["generated"] for x in r["reps"]]
        if i == 0:
            peer_generate(llm, is_eog, ids[:64], 8)  # warm-up
        out, ps, ds, _ = peer_generate(llm, is_eog, ids, ngen, stop_at_eog=False)
        pp_p.append(len(ids) / ps)
        tg_p.append((len(out) - 1) / ds)  # n samples, n-1 single-token evals (as ours: n-1 passes)
    med = statistics.median
    res = {
        "prompt_tokens": len(ids), "gen_tokens": ngen, "rounds": args.rounds,
        "basalt": {"pp_tok_s": pp_o, "tg_tok_s": tg_o, "pp_median": round(med(pp_o), 1),
                   "tg_median": round(med(tg_o), 1), "generated": generated},
        "llama_cpp_python": {"version": lcpp.__version__, "pp_tok_s": [round(x, 1) for x in pp_p],
                             "tg_tok_s": [round(x, 1) for x in tg_p], "pp_median": round(med(pp_p), 1),
                             "tg_median": round(med(tg_p), 1)},
        "ratio_pp": round(med([o / p for o, p in zip(pp_o, pp_p)]), 3),
        "ratio_tg": round(med([o / p for o, p in zip(tg_o, tg_p)]), 3),
    }
    print(f"\n(a) speed, {len(ids)}-token prompt + {ngen} greedy tokens, {args.threads} threads, "
          f"{args.rounds} alternating rounds: medians, and the median of per-round ratios")
    print(f"{'':22}{'basalt':>10}{'llama-cpp-python':>18}{'ratio':>8}")
    print(f"{'prompt tok/s':22}{res['basalt']['pp_median']:>10}{res['llama_cpp_python']['pp_median']:>18}{res['ratio_pp']:>8}")
    print(f"{'decode tok/s':22}{res['basalt']['tg_median']:>10}{res['llama_cpp_python']['tg_median']:>18}{res['ratio_tg']:>8}")
    print(f"  rounds basalt pp {pp_o} tg {tg_o} (generated {generated}); "
          f"peer pp {res['llama_cpp_python']['pp_tok_s']} tg {res['llama_cpp_python']['tg_tok_s']}")
    return res


def agreement(a, b, n):
    """Positions (of n) that agree: all n when the sequences are identical (both stopped at the
    same end-of-generation token or both ran to n), else the common prefix (the rest of the
    prompt counts as mismatches)."""
    if a == b:
        return n
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


def part_greedy(args, peer):
    r = ours("greedy", args)
    lcpp, llm, is_eog = peer
    prompts = json.loads(pathlib.Path(args.prompts).read_text())["greedy"]
    n = r["gen_tokens"]
    rows, matched, matched_batched, exact, tok_agree, unresolved = [], 0, 0, 0, 0, 0
    for i, (p, mine, batched) in enumerate(zip(prompts, r["results"], r["concurrent"])):
        ids = llm.tokenize(p.encode(), add_bos=False, special=True)
        tok_agree += ids == mine["prompt_ids"]
        theirs, _, _, _ = peer_generate(llm, is_eog, ids, n)
        m = agreement(mine["tokens"], theirs, n)
        mb = agreement(batched["tokens"], theirs, n)
        matched += m
        matched_batched += mb
        exact += mine["tokens"] == theirs
        unresolved += mine["unresolved"]
        rows.append({"i": i, "match": m, "match_batched": mb, "ours": mine["tokens"], "theirs": theirs,
                     "ours_text": mine["text"],
                     "theirs_text": llm.detokenize(theirs).decode("utf-8", "replace")})
    total = n * len(prompts)
    res = {"prompts": len(prompts), "tokens_per_prompt": n, "tokenizer_identical": tok_agree,
           "agreement": round(matched / total, 4), "agreement_batched": round(matched_batched / total, 4),
           "identical_sequences": exact, "unresolved_ids": unresolved, "rows": rows}
    print(f"\n(c) greedy agreement, {len(prompts)} prompts x {n} tokens (stop at first divergence)")
    print(f"  prompt tokenization identical: {tok_agree}/{len(prompts)}")
    print(f"  sequential requests:  {matched}/{total} = {100 * matched / total:.1f}%  "
          f"(identical sequences {exact}/{len(prompts)}; ids not recoverable from text: {unresolved})")
    print(f"  20 concurrent (batched): {matched_batched}/{total} = {100 * matched_batched / total:.1f}%")
    for row in rows:
        if row["match"] < n:
            print(f"  prompt {row['i']}: diverges at {row['match']}: ours {row['ours_text'][:60]!r} | theirs {row['theirs_text'][:60]!r}")
    return res


def pct(v, p):
    s = sorted(v)
    import math
    return s[max(1, math.ceil(p / 100 * len(s))) - 1]


def part_concurrency(args, peer):
    res = {"basalt": {}}
    for par in args.parallel_list:
        a = argparse.Namespace(**{**vars(args), "parallel": par})
        r = ours("concurrency", a)
        res["basalt"][par] = r["levels"]
    lcpp, llm, is_eog = peer
    prompts = json.loads(pathlib.Path(args.prompts).read_text())["concurrency"]
    n = 64
    peer_rows = []
    if not args.no_peer_concurrency:
        for level in args.levels:
            # One Llama object = one sequence: requests run back to back; request k's time to
            # first token includes the k-1 requests before it.
            t0 = time.perf_counter()
            ttft, total = [], 0
            for k in range(level):
                ids = llm.tokenize(prompts[k % len(prompts)].encode(), add_bos=False, special=True)
                start = time.perf_counter() - t0
                out, _, _, first = peer_generate(llm, is_eog, ids, n)
                ttft.append((start + first) * 1000)
                total += len(out)
            wall = time.perf_counter() - t0
            peer_rows.append({"concurrent": level, "output_tokens": total, "wall_s": round(wall, 3),
                              "ttft_ms_p50": round(pct(ttft, 50), 1), "ttft_ms_p99": round(pct(ttft, 99), 1),
                              "output_tok_s": round(total / wall, 1)})
    res["llama_cpp_python_serial"] = peer_rows
    print(f"\n(d) concurrency: N simultaneous requests, {n} greedy output tokens each (fewer if the model ends)")
    print(f"{'engine':34}{'N':>4}{'out tok':>9}{'wall s':>8}{'TTFT p50 ms':>13}{'TTFT p99 ms':>13}{'out tok/s':>11}")
    for par, levels in res["basalt"].items():
        for L in levels:
            print(f"{'basalt parallel=' + str(par):34}{L['concurrent']:>4}{L['output_tokens']:>9}{L['wall_s']:>8}"
                  f"{L['ttft_ms_p50']:>13}{L['ttft_ms_p99']:>13}{L['output_tok_s']:>11}")
    for L in peer_rows:
        print(f"{'llama-cpp-python (serial)':34}{L['concurrent']:>4}{L['output_tokens']:>9}{L['wall_s']:>8}"
              f"{L['ttft_ms_p50']:>13}{L['ttft_ms_p99']:>13}{L['output_tok_s']:>11}")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    ap.add_argument("--prompts", type=pathlib.Path, default=ROOT / "bench/prompts.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=4, help="EngineConfig.parallel for speed/greedy")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds of the speed part")
    ap.add_argument("--concurrency-parallel", default="4,16", help="EngineConfig.parallel values for part (d)")
    ap.add_argument("--parts", default="speed,greedy,concurrency")
    ap.add_argument("--no-peer-concurrency", action="store_true")
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args()
    args.parallel_list = [int(x) for x in args.concurrency_parallel.split(",")]
    args.levels = [1, 4, 16]
    if not BENCH_BIN.exists():
        sys.exit(f"{BENCH_BIN} missing: cargo build --release -p basalt-models --examples")
    busy = subprocess.run(["pgrep", "-f", "rustc|cc1plus|cargo build"], capture_output=True, text=True).stdout.split()
    if busy:
        print(f"WARNING: build processes running ({len(busy)}); numbers will be unreliable", file=sys.stderr)
    peer = load_peer(args)
    out = {"threads": args.threads, "model": args.model.name, "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    parts = args.parts.split(",")
    for name, fn in (("speed", part_speed), ("greedy", part_greedy), ("concurrency", part_concurrency)):
        if name in parts:
            out[name] = fn(args, peer)
            if args.json:  # after each part, so a cut-off run keeps what it measured
                args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
