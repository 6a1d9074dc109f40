#!/usr/bin/env python3
"""PyTorch peers for every declared point of prism.toml, measured on a GPU.

For each workload of prism.toml and each of its declared `points`, the same
program with the same input layouts (f16 inputs drawn from N(0, init²) as
prism draws them) is timed as:

  eager       the program written in PyTorch ops (cuBLAS for the matmuls)
  compile     torch.compile(fn, dynamic=False), default mode
  compile_at  torch.compile(fn, mode="max-autotune-no-cudagraphs", dynamic=False)
              (on by default; --no-autotune skips it, it is the slow one)
  sdpa        F.scaled_dot_product_attention in the equivalent layout
              (attention, qk_norm_attention, gqa_decode only)
  sdpa_nocopy attention / qk_norm_attention only, informational: as sdpa, but
              K is handed over already transposed to [b, h*kv, dh] (the
              transpose+contiguous copy that `sdpa` does inside its timed
              function is done once, outside the timing)

Each peer's output is compared with an f32 reference of the same program
(the f16 inputs upcast, TF32 off): `<peer>_relerr` is the relative Frobenius
error; a peer above 2e-2 (or non-finite) gets `<peer>_bad: true`. A peer
that raises records `<peer>_error` and the run goes on.

Times: triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median"),
which zeroes a 256 MB buffer before every call (cold L2), two ways per peer:
  `<peer>_ms`, `<peer>_us`              do_bench of the Python call itself
  `<peer>_graph_ms`, `<peer>_graph_us`  do_bench of a CUDA-graph replay of one
                                        call (same kernels; --no-graph skips)
The first includes PyTorch's CPU-side dispatch whenever it outlasts the L2
flush (~75 µs of GPU time): on the H200 device VM one call of a small
compiled program costs 40-140 µs of CPU, so e.g. rms_norm (8,1024) compile
reads 55-75 µs per call against 10.5 µs replayed (measured 2026-11). The
graph time is the kernels' time, as prism's native harness sees its own.
Measured in the same run: copy bandwidth (1 GiB y.copy_(x),
2*bytes/time), cuBLAS fp16 peak (8192³ matmul) and a single-launch floor
(do_bench of a one-element zero_()).

Per row: `bytes` = sizes of the inputs and the output; `flops` = 2·M·N·K per
matmul of the program as written (folded-head attention: q@kt is
[b, h*s, dh] x [b, dh, h*kv]); elementwise work is not counted (ntrans: 0).

Passes: first eager, sdpa and compile for every point, then compile_at for
every point, so a --max-seconds budget (or a kill) costs the autotuned
numbers first. With --out the JSON is rewritten (atomically) after every
point, so a run cut short still leaves a valid file.

Usage (on the GPU machine, repo root):
  python3 bench/torch_baselines.py [prism.toml] [--out torch.json]
      [--only rms_norm,attention] [--no-autotune] [--no-graph]
      [--max-seconds 480] [--seed 0]
A full run on the H200 device (44 points, graphs and autotune on) took 395 s
(compile_at alone ~280 s); --no-autotune about 110 s. A device command may
run 10 minutes: measure torch once, then reuse its JSON (scripts/bench-gpu.sh
SKIP_TORCH=1 TORCH_JSON=...).
JSON: {"tool": "torch_baselines", "device", "torch", "triton", "cuda",
       "copy_bytes_per_s", "fp16_flops_per_s", "launch_floor_us",
       "rows": [{"workload", "dims", "bytes", "flops", "roofline_us",
                 "eager_ms", "eager_us", "eager_relerr", "eager_graph_us",
                 "compile_us", "compile_graph_us", "compile_compile_s",
                 "compile_at_us", "sdpa_us", ..., "<peer>_error"}]}

The pure parts (reading the toml's points, shapes, bytes and flops) import
without torch: bench/test_compare.py tests them on a machine with no GPU.
"""
import argparse
import ast
import gc
import inspect
import json
import math
import os
import re
import sys
import time

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    tomllib = None

# Set by _import_torch(); the program functions below look them up at call time.
torch = None
F = None
triton = None

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TOML = os.path.join(REPO, "prism.toml")
RELERR_TOL = 2e-2
DTYPE_BYTES = {"f16": 2, "bf16": 2, "f32": 4}


# --------------------------------------------------------------------------
# Scalar expressions of the toml ("h*s", "1/sqrt(d)", "32")


def eval_expr(text, dims):
    """Evaluate a dim or init expression: numbers, dim names, + - * / ** and
    sqrt/rsqrt/min/max. Raises ValueError on anything else."""
    funcs = {"sqrt": math.sqrt, "rsqrt": lambda v: 1.0 / math.sqrt(v), "min": min, "max": max}

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in dims:
                raise ValueError(f"unknown dim {node.id!r} in {text!r}")
            return dims[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div):
                return a / b
            if isinstance(node.op, ast.Pow):
                return a ** b
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in funcs and not node.keywords):
            return funcs[node.func.id](*[ev(a) for a in node.args])
        raise ValueError(f"unsupported expression {text!r}")

    return ev(ast.parse(text.strip(), mode="eval"))


_TYPE_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)?\s*\[(.*)\]\s*$")


def parse_type(text, default_dtype="f16"):
    """'f16[b, h*s, dh]' -> ('f16', ['b', 'h*s', 'dh'])."""
    m = _TYPE_RE.match(text)
    if not m:
        raise ValueError(f"cannot read input type {text!r}")
    dtype = m.group(1) or default_dtype
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype {dtype!r} of {text!r} is not one of {sorted(DTYPE_BYTES)}")
    body = m.group(2).strip()
    return dtype, [d.strip() for d in body.split(",")] if body else []


def shape_at(exprs, dims):
    out = []
    for e in exprs:
        v = eval_expr(e, dims)
        if float(v) != int(v):
            raise ValueError(f"dim expression {e!r} is not an integer at {dims}: {v}")
        out.append(int(v))
    return out


def normalize_program(text):
    """Drop comments, collapse whitespace: for comparing a toml program with
    the one this script implements."""
    lines = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(" ".join(line.split()))
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The programs, in PyTorch (parameter names = the toml's input names)


def rms(x, eps=1e-6):
    """prism's rms_norm(x): x * rsqrt(mean(x², -1) + eps), no weight; in f32,
    cast back to x's dtype."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def p_rms_norm(x, w):
    return rms(x) @ w


def p_rmsnorm_mlp(x, w_up, w_gate):
    h = rms(x)
    return (h @ w_up) * (h @ w_gate)


def p_swiglu(x, w_gate, w_up):
    return F.silu(x @ w_gate) * (x @ w_up)


def p_attention(q, kt, v):
    return torch.softmax(q @ kt, -1) @ v


def p_qk_norm_attention(q, kt, v):
    return torch.softmax(rms(q) @ kt, -1) @ v


def p_gqa_decode(q, k, v):
    b = q.shape[0]
    qg = q.reshape(b, 8, 4, 128)
    p = torch.softmax(qg @ k.transpose(2, 3) / math.sqrt(128), -1)
    return (p @ v).reshape(b, 32, 128)


def p_gated_mlp(x, w1, w3):
    return F.silu(x @ w1) * (x @ w3)


def p_lora(x, w, a, b):
    return x @ w + (x @ a) @ b


def p_ntrans(h, x, alpha):
    return rms(x + alpha * (rms(h) + x))


# SDPA peers: same inputs, same result, the fused attention kernel.


def s_attention(q, kt, v):
    # heads folded into the sequence axes = one head of h*s queries over h*kv
    # keys; prism's program has no 1/sqrt(dh) (init pre-scales q and kt)
    k = kt.transpose(-1, -2).contiguous().unsqueeze(1)
    o = F.scaled_dot_product_attention(q.unsqueeze(1), k, v.unsqueeze(1), scale=1.0)
    return o.squeeze(1)


def s_qk_norm_attention(q, kt, v):
    k = kt.transpose(-1, -2).contiguous().unsqueeze(1)
    o = F.scaled_dot_product_attention(rms(q).unsqueeze(1), k, v.unsqueeze(1), scale=1.0)
    return o.squeeze(1)


def s_gqa_decode(q, k, v):
    b = q.shape[0]
    o = F.scaled_dot_product_attention(q.reshape(b, 32, 1, 128), k, v, enable_gqa=True)
    return o.reshape(b, 32, 128)


# sdpa_nocopy: K already in [b, h*kv, dh] (prepared outside the timing).


def n_attention(q, k, v):
    o = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=1.0)
    return o.squeeze(1)


def n_qk_norm_attention(q, k, v):
    o = F.scaled_dot_product_attention(rms(q).unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=1.0)
    return o.squeeze(1)


def _attn_flops(d):
    # q@kt: [b, h*s, dh] x [b, dh, h*kv]; p@v: [b, h*s, h*kv] x [b, h*kv, dh]
    return 2 * (2 * d["b"] * (d["h"] * d["s"]) * (d["h"] * d["kv"]) * d["dh"])


def _gqa_flops(d):
    # qg@kᵀ: [b,8,4,128] x [b,8,128,kv]; p@v: [b,8,4,kv] x [b,8,kv,128]
    return 2 * (2 * d["b"] * 8 * 4 * d["kv"] * 128)


# name -> program (as in prism.toml), torch function, output shape, flops,
# sdpa function, sdpa_nocopy function
WORKLOADS = {
    "rms_norm": dict(
        program="matmul(rms_norm(x), w)", fn=p_rms_norm,
        out=lambda d: [d["n"], d["d"]], flops=lambda d: 2 * d["n"] * d["d"] * d["d"]),
    "rmsnorm_mlp": dict(
        program="let h = rms_norm(x)\nout = matmul(h, w_up) * matmul(h, w_gate)", fn=p_rmsnorm_mlp,
        out=lambda d: [d["n"], d["d"]], flops=lambda d: 2 * (2 * d["n"] * d["d"] * d["d"])),
    "swiglu": dict(
        program="silu(x @ w_gate) * (x @ w_up)", fn=p_swiglu,
        out=lambda d: [d["n"], d["d"]], flops=lambda d: 2 * (2 * d["n"] * d["d"] * d["d"])),
    "attention": dict(
        program="softmax(q @ kt, -1) @ v", fn=p_attention,
        out=lambda d: [d["b"], d["h"] * d["s"], d["dh"]], flops=_attn_flops,
        sdpa=s_attention, sdpa_nocopy=n_attention),
    "qk_norm_attention": dict(
        program="softmax(rms_norm(q) @ kt, -1) @ v", fn=p_qk_norm_attention,
        out=lambda d: [d["b"], d["h"] * d["s"], d["dh"]], flops=_attn_flops,
        sdpa=s_qk_norm_attention, sdpa_nocopy=n_qk_norm_attention),
    "gqa_decode": dict(
        program="let qg = reshape(q, [b, 8, 4, 128])\n"
                "let p = softmax(qg @ transpose(k, 2, 3) / sqrt(128), -1)\n"
                "out = reshape(p @ v, [b, 32, 128])",
        fn=p_gqa_decode, out=lambda d: [d["b"], 32, 128], flops=_gqa_flops, sdpa=s_gqa_decode),
    "gated_mlp": dict(
        program="silu(x @ w1) * (x @ w3)", fn=p_gated_mlp,
        out=lambda d: [d["n"], 14336], flops=lambda d: 2 * (2 * d["n"] * 4096 * 14336)),
    "lora": dict(
        program="x @ w + (x @ a) @ b", fn=p_lora, out=lambda d: [d["n"], 4096],
        flops=lambda d: 2 * d["n"] * 4096 * 4096 + 2 * d["n"] * 4096 * 16 + 2 * d["n"] * 16 * 4096),
    "ntrans": dict(
        program="rms_norm(x + alpha * (rms_norm(h) + x))", fn=p_ntrans,
        out=lambda d: [d["n"], 4096], flops=lambda d: 0),
}


# --------------------------------------------------------------------------
# Reading prism.toml


def load_toml(path):
    if tomllib is None:
        raise SystemExit("torch_baselines: needs Python >= 3.11 (tomllib)")
    with open(path, "rb") as f:
        return tomllib.load(f)


def load_points(path_or_doc, only=None):
    """Every declared point of the toml, as a list of dicts:
    {workload, dims, inputs: [(name, dtype, shape, std)], program,
     program_ok, known, out_shape, out_dtype, bytes, flops}.
    `only`: a set of workload names, or None for all."""
    doc = load_toml(path_or_doc) if isinstance(path_or_doc, (str, os.PathLike)) else path_or_doc
    default_dtype = doc.get("target", {}).get("dtype", "f16")
    points = []
    for name, w in doc.get("workload", {}).items():
        if only is not None and name not in only:
            continue
        spec = WORKLOADS.get(name)
        program = w.get("program", "")
        inputs = w.get("inputs", {})
        init = w.get("init", {})
        for p in w.get("points", []):
            dims = {k: int(v) for k, v in p.items()}
            ins = []
            for iname, ty in inputs.items():
                dtype, exprs = parse_type(ty, default_dtype)
                std = float(eval_expr(str(init[iname]), dims)) if iname in init else 1.0
                ins.append((iname, dtype, shape_at(exprs, dims), std))
            pt = {"workload": name, "dims": dims, "inputs": ins, "program": program,
                  "known": spec is not None, "program_ok": False,
                  "out_shape": None, "out_dtype": default_dtype, "bytes": None, "flops": None}
            if spec is not None:
                pt["program_ok"] = normalize_program(program) == normalize_program(spec["program"])
                pt["out_shape"] = spec["out"](dims)
                pt["flops"] = int(spec["flops"](dims))
                pt["bytes"] = int(sum(DTYPE_BYTES[dt] * math.prod(sh) for _, dt, sh, _ in ins)
                                  + DTYPE_BYTES[default_dtype] * math.prod(pt["out_shape"]))
            points.append(pt)
    return points


def check_signatures():
    """Each program function's parameters are the toml's input names in order
    (checked against WORKLOADS only; load_points checks the toml)."""
    bad = []
    for name, spec in WORKLOADS.items():
        for key in ("fn", "sdpa", "sdpa_nocopy"):
            if key in spec:
                params = list(inspect.signature(spec[key]).parameters)
                base = list(inspect.signature(spec["fn"]).parameters)
                if key == "sdpa_nocopy":
                    base = [("k" if p == "kt" else p) for p in base]
                if params != base:
                    bad.append(f"{name}.{key}: {params} != {base}")
    return bad


# --------------------------------------------------------------------------
# GPU part


def _import_torch():
    global torch, F, triton
    import torch as _torch
    import torch.nn.functional as _F
    import triton as _triton
    import triton.testing  # noqa: F401  (do_bench)
    torch, F, triton = _torch, _F, _triton


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def do_bench(fn):
    return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")


def ceilings():
    """(copy bytes/s, fp16 matmul flops/s, launch floor µs)."""
    x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    t = triton.testing.do_bench(lambda: y.copy_(x), warmup=10, rep=100, return_mode="median")
    bw = 2 * x.numel() / (t * 1e-3)
    del x, y
    a = torch.randn(8192, 8192, dtype=torch.float16, device="cuda")
    b = torch.randn(8192, 8192, dtype=torch.float16, device="cuda")
    t = triton.testing.do_bench(lambda: a @ b, warmup=10, rep=100, return_mode="median")
    fl = 2 * 8192 ** 3 / (t * 1e-3)
    del a, b
    z = torch.zeros(1, dtype=torch.float32, device="cuda")
    floor_ms = do_bench(lambda: z.zero_())
    del z
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    return bw, fl, floor_ms * 1e3


def make_inputs(pt, seed):
    """f16 (the declared dtype) inputs ~ N(0, std²), drawn in f32 and rounded."""
    dts = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}
    out = []
    for i, (_, dtype, shape, std) in enumerate(pt["inputs"]):
        g = torch.Generator(device="cuda")
        g.manual_seed(seed * 1000003 + i)
        t = torch.randn(shape, generator=g, dtype=torch.float32, device="cuda")
        t.mul_(std)
        out.append(t.to(dts[dtype]))
        del t
    return out


def reference(fn, ins):
    """The program in f32 (inputs upcast; full-precision f32 matmuls)."""
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad():
            r = fn(*[t.float() for t in ins]).float()
        torch.cuda.synchronize()
        return r
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev


def relerr(got, ref):
    got = got.float()
    if got.shape != ref.shape:
        raise RuntimeError(f"output shape {list(got.shape)} != reference {list(ref.shape)}")
    den = ref.norm().item()
    num = (got - ref).norm().item()
    return num / den if den > 0 else num


def set_time(row, key, ms):
    row[f"{key}_ms"] = ms
    row[f"{key}_us"] = ms * 1e3


def record_err(row, key, err):
    """`<key>_relerr`, and `<key>_bad` above the tolerance (or non-finite)."""
    if math.isfinite(err):
        row[f"{key}_relerr"] = err
    else:
        row[f"{key}_relerr"] = None
        row[f"{key}_relerr_nonfinite"] = True
    if not (err <= RELERR_TOL):
        row[f"{key}_bad"] = True
        log(f"  !! {key}: relative error {err:.3g} > {RELERR_TOL}")


def capture(fn, args):
    """One call of fn captured in a CUDA graph (after warm-up calls on a side
    stream, as torch.cuda.graphs asks); returns (graph, its output)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn(*args)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = fn(*args)
    g.replay()
    torch.cuda.synchronize()
    return g, out


RESULT_SUFFIXES = ("ms", "us", "relerr", "relerr_nonfinite", "bad", "error", "compile_s",
                   "graph_ms", "graph_us", "graph_relerr", "graph_relerr_nonfinite", "graph_bad", "graph_error")


def measure(row, peer, fn, args, ref, compile_mode=None, graph=True):
    """Time one peer into row; errors are recorded, never raised.
    `<peer>_us`: do_bench of the call itself (Python dispatch included: on a
    slow host CPU that, not the GPU, can set the time of a small workload).
    `<peer>_graph_us`: do_bench of a CUDA-graph replay of one call (GPU time
    of the same kernels, L2 flushed all the same)."""
    for suffix in RESULT_SUFFIXES:
        row.pop(f"{peer}_{suffix}", None)
    try:
        with torch.no_grad():
            if compile_mode is not None:
                torch._dynamo.reset()
                t0 = time.time()
                fn = torch.compile(fn, mode=compile_mode, dynamic=False)
                got = fn(*args)
                torch.cuda.synchronize()
                row[f"{peer}_compile_s"] = round(time.time() - t0, 3)
            else:
                got = fn(*args)
                torch.cuda.synchronize()
            err = relerr(got, ref)
            del got
            record_err(row, peer, err)
            set_time(row, peer, do_bench(lambda: fn(*args)))
    except Exception as e:  # noqa: BLE001 - a failed peer is a result
        row[f"{peer}_error"] = f"{type(e).__name__}: {str(e).strip()[:400]}"
        row.pop(f"{peer}_ms", None)
        row.pop(f"{peer}_us", None)
        log(f"  !! {peer} failed: {row[f'{peer}_error'][:200]}")
        if isinstance(e, torch.cuda.OutOfMemoryError):
            gc.collect()
            torch.cuda.empty_cache()
        return
    if not graph:
        return
    g = out = None
    try:
        with torch.no_grad():
            g, out = capture(fn, args)
            record_err(row, f"{peer}_graph", relerr(out, ref))
            set_time(row, f"{peer}_graph", do_bench(lambda: g.replay()))
    except Exception as e:  # noqa: BLE001
        row[f"{peer}_graph_error"] = f"{type(e).__name__}: {str(e).strip()[:400]}"
        log(f"  !! {peer} CUDA graph failed: {row[f'{peer}_graph_error'][:200]}")
        if isinstance(e, torch.cuda.OutOfMemoryError):
            gc.collect()
            torch.cuda.empty_cache()
    finally:
        del g, out


def free():
    torch._dynamo.reset()
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def fmt_us(row, peer):
    v = row.get(f"{peer}_us")
    if v is None:
        return "fail" if f"{peer}_error" in row else "-"
    g = row.get(f"{peer}_graph_us")
    return f"{v:.2f}" + (f" (graph {g:.2f})" if g is not None else "")


def finite(v):
    """JSON has no NaN/Infinity: non-finite floats become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def write_out(out, path):
    text = json.dumps(finite(out), indent=1, allow_nan=False)
    if path is None:
        return text
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("toml", nargs="?", default=DEFAULT_TOML, help="prism.toml (default: the repo's)")
    ap.add_argument("--out", help="write the JSON here (rewritten after every point); default stdout at the end")
    ap.add_argument("--only", default="", help="comma-separated workloads")
    ap.add_argument("--autotune", dest="autotune", action="store_true", default=True,
                    help="also time compile_at (max-autotune-no-cudagraphs); the default")
    ap.add_argument("--no-autotune", dest="autotune", action="store_false")
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="stop starting new measurements after this many seconds (0: no limit)")
    ap.add_argument("--no-graph", dest="graph", action="store_false",
                    help="skip the CUDA-graph replay timings (<peer>_graph_us)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    start = time.time()
    doc = load_toml(args.toml)
    only = {w.strip() for w in args.only.split(",") if w.strip()} or None
    if only:
        unknown = sorted(only - set(doc.get("workload", {})))
        if unknown:
            log(f"torch_baselines: --only names workloads not in {args.toml}: {', '.join(unknown)}")
            return 2
    points = load_points(doc, only)
    bad_sigs = check_signatures()
    if bad_sigs:
        log("torch_baselines: internal error, program signatures: " + "; ".join(bad_sigs))
        return 2

    _import_torch()
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    bw, fl, floor_us = ceilings()
    out = {
        "tool": "torch_baselines", "device": torch.cuda.get_device_name(),
        "torch": torch.__version__, "triton": triton.__version__, "cuda": torch.version.cuda,
        "toml": os.path.abspath(args.toml), "autotune": args.autotune, "graph": args.graph, "seed": args.seed,
        "relerr_tol": RELERR_TOL,
        "copy_bytes_per_s": bw, "fp16_flops_per_s": fl, "launch_floor_us": floor_us,
        "rows": [],
    }
    log(f"# {out['device']}  torch {out['torch']}  triton {out['triton']}  copy {bw / 1e12:.2f} TB/s  "
        f"fp16 mm {fl / 1e12:.0f} TFLOP/s  launch floor {floor_us:.2f} µs  ({len(points)} points)")

    rows = []
    for pt in points:
        row = {"workload": pt["workload"], "dims": pt["dims"], "bytes": pt["bytes"], "flops": pt["flops"]}
        if not pt["known"]:
            row["error"] = "torch_baselines has no PyTorch program for this workload"
            log(f"  !! {pt['workload']}: no PyTorch program in torch_baselines.py; row left empty")
        else:
            row["roofline_us"] = max(pt["bytes"] / bw, pt["flops"] / fl) * 1e6
            if not pt["program_ok"]:
                row["program_mismatch"] = True
                log(f"  !! {pt['workload']}: prism.toml's program differs from the one torch_baselines.py "
                    f"implements:\n     toml:   {normalize_program(pt['program'])!r}\n"
                    f"     script: {normalize_program(WORKLOADS[pt['workload']]['program'])!r}")
        rows.append(row)
    out["rows"] = rows

    def over_budget():
        return args.max_seconds > 0 and time.time() - start > args.max_seconds

    def run_pass(peers_of, label):
        for pt, row in zip(points, rows):
            if not pt["known"]:
                continue
            peers = peers_of(pt)
            if not peers:
                continue
            if over_budget():
                for peer, _, _ in peers:
                    row[f"{peer}_error"] = f"skipped: --max-seconds {args.max_seconds:g} spent"
                continue
            ins = ref = None
            try:
                ins = make_inputs(pt, args.seed)
                ref = reference(WORKLOADS[pt["workload"]]["fn"], ins)
                for peer, fn, mode in peers:
                    if over_budget():
                        row[f"{peer}_error"] = f"skipped: --max-seconds {args.max_seconds:g} spent"
                        continue
                    fargs = ins
                    if peer == "sdpa_nocopy":  # K pre-transposed, outside the timing
                        fargs = [ins[0], ins[1].transpose(-1, -2).contiguous(), ins[2]]
                    measure(row, peer, fn, fargs, ref, mode, graph=args.graph)
                    del fargs
            except Exception as e:  # noqa: BLE001 - inputs or the reference failed
                for peer, _, _ in peers:
                    row.setdefault(f"{peer}_error", f"setup failed: {type(e).__name__}: {str(e).strip()[:300]}")
                log(f"  !! {pt['workload']} {pt['dims']}: setup failed: {type(e).__name__}: {str(e)[:200]}")
            finally:
                del ins, ref
                free()
            dims = " ".join(f"{k}={v}" for k, v in pt["dims"].items())
            cols = "  ".join(f"{p} {fmt_us(row, p)}" for p, _, _ in peers)
            log(f"[{label} {time.time() - start:6.0f}s] {pt['workload']:18s} {dims:28s} {cols}")
            if args.out:
                write_out(out, args.out)

    def pass1(pt):
        spec = WORKLOADS[pt["workload"]]
        peers = [("eager", spec["fn"], None)]
        if "sdpa" in spec:
            peers.append(("sdpa", spec["sdpa"], None))
        if "sdpa_nocopy" in spec:
            peers.append(("sdpa_nocopy", spec["sdpa_nocopy"], None))
        peers.append(("compile", spec["fn"], "default"))
        return peers

    def pass2(pt):
        return [("compile_at", WORKLOADS[pt["workload"]]["fn"], "max-autotune-no-cudagraphs")]

    run_pass(pass1, "eager/sdpa/compile")
    if args.autotune:
        run_pass(pass2, "compile_at")
    out["elapsed_s"] = round(time.time() - start, 1)
    text = write_out(out, args.out)
    if not args.out:
        print(text)
    log(f"# done in {out['elapsed_s']} s" + (f", wrote {args.out}" if args.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
