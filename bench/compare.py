#!/usr/bin/env python3
"""Join a `prism bench` JSON with a torch_baselines JSON: markdown table + joined JSON.

Usage:
  python3 bench/compare.py PRISM_BENCH.json TORCH.json [--out joined.json] [--only a,b]
      [--timing graph|call] > compare.md

PyTorch times (--timing): `graph` (default) uses each peer's CUDA-graph
replay time (`<peer>_graph_us`: the kernels' GPU time, no Python dispatch,
comparable with prism's native launches), falling back, marked ‡, to the
Python call's time where a peer has no graph time; `call` uses the Python
call's time (`<peer>_us`, do_bench(fn)).

Rows are joined on (workload, dims). For each point:
  roofline = max(bytes / max(copy_bytes_per_s of both files),
                 flops / max(prism mma_flops_per_s, torch fp16_flops_per_s))
  limit    = roofline + the prism file's launch_floor_us
with bytes and flops from the prism row (the torch row's where prism has
none; a disagreement is listed under notes). Speedups are peer µs / prism µs
(> 1: prism faster); "vs compile" uses the faster of compile and compile_at.
A peer that failed, or whose relative error against the f32 reference was
above tolerance (`<peer>_bad`), is shown marked and left out of speedups and
targets. Targets are the TARGETS table below; a point whose prism row exists
but failed misses its target, a point missing the data a target needs is
"not evaluated". Rows present in only one file are kept and listed under
"Missing".

Exit status: 0 when the report was written, targets met or not; 2 when an
input file is unreadable or not the expected kind of JSON.
"""
import argparse
import json
import math
import sys

PRISM_FIVE = ("rms_norm", "rmsnorm_mlp", "swiglu", "attention", "qk_norm_attention")
PEERS = ("eager", "compile", "compile_at", "sdpa")

# The targets. kind:
#   limit      prism_us <= ratio * limit_us
#   vs_sdpa    sdpa_us / prism_us >= ratio
#   vs_compile best(compile, compile_at)_us / prism_us >= ratio
#   vs_eager   eager_us / prism_us >= ratio   (0.9: prism_us <= eager_us / 0.9)
# `when`: (dim, op, value) conditions that all hold, or () for every point.
TARGETS = [
    {"workloads": PRISM_FIVE, "when": (), "kind": "limit", "ratio": 1.25,
     "text": "≤ 1.25× limit"},
    {"workloads": ("gqa_decode",), "when": (), "kind": "vs_sdpa", "ratio": 1.2,
     "text": "≥ 1.2× sdpa"},
    {"workloads": ("gated_mlp", "lora"), "when": (("n", "<=", 256),), "kind": "vs_compile", "ratio": 1.5,
     "text": "≥ 1.5× best compile"},
    {"workloads": ("gated_mlp", "lora"), "when": (("n", "==", 2048),), "kind": "vs_eager", "ratio": 0.9,
     "text": "≥ 0.9× eager"},
]
# A target ratio met within this relative slack counts as met (float noise).
EPS = 1e-9

DIM_ORDER = ("n", "d", "b", "h", "s", "kv", "dh")


class BadInput(Exception):
    pass


# --------------------------------------------------------------------------
# Reading


def load_json(path, what):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise BadInput(f"cannot read the {what} file {path}: {e.strerror or e}")
    except ValueError as e:
        raise BadInput(f"the {what} file {path} is not valid JSON: {e}")
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise BadInput(f"the {what} file {path} has no \"rows\" list: is it a {what} JSON?")
    return doc


def num(v):
    """A finite float, or None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) and v >= 0 else None


def dims_key(dims, path, i):
    if not isinstance(dims, dict) or not dims:
        raise BadInput(f"{path}: row {i} has no \"dims\" object")
    out = []
    for k, v in dims.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
            raise BadInput(f"{path}: row {i} dim {k}={v!r} is not an integer")
        out.append((str(k), int(v)))
    return tuple(sorted(out))


def row_key(row, path, i):
    if not isinstance(row, dict) or not isinstance(row.get("workload"), str):
        raise BadInput(f"{path}: row {i} has no \"workload\" name")
    return (row["workload"], dims_key(row.get("dims"), path, i))


def dims_text(key_dims):
    d = dict(key_dims)
    order = [k for k in DIM_ORDER if k in d] + sorted(k for k in d if k not in DIM_ORDER)
    return " ".join(f"{k}={d[k]}" for k in order)


def prism_time(row):
    """prism µs of a row, or None when the row failed."""
    if row.get("error") not in (None, "", False):
        return None
    return num(row.get("median_us"))


def us_of(row, key):
    """`<key>_us`, else `<key>_ms` x 1000, else None."""
    us = num(row.get(f"{key}_us"))
    if us is None:
        ms = num(row.get(f"{key}_ms"))
        us = ms * 1e3 if ms is not None else None
    return us


def peer_time(row, peer, timing="graph"):
    """(µs, state) of a peer under `timing` ('graph': the CUDA-graph replay
    time, 'call': the Python call's). state: 'ok'; 'call' (graph timing asked
    but only the call was timed: its time is used, marked); 'bad' (relative
    error above tolerance); 'error'; 'absent'."""
    if row.get(f"{peer}_error"):
        return None, "error"
    call = us_of(row, peer)
    if timing == "graph":
        g = us_of(row, f"{peer}_graph")
        if g is not None:
            return g, "bad" if row.get(f"{peer}_graph_bad") or row.get(f"{peer}_bad") else "ok"
        if call is None:
            return None, "absent"
        return call, "bad" if row.get(f"{peer}_bad") else "call"
    if call is None:
        return None, "absent"
    return call, "bad" if row.get(f"{peer}_bad") else "ok"


# --------------------------------------------------------------------------
# Joining


def target_for(workload, dims):
    for t in TARGETS:
        if workload not in t["workloads"]:
            continue
        ok = True
        for dim, op, val in t["when"]:
            v = dims.get(dim)
            if v is None or not {"<=": v <= val, "==": v == val, ">=": v >= val,
                                 "<": v < val, ">": v > val}[op]:
                ok = False
        if ok:
            return t
    return None


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def ceiling(prism, torch, pkey, tkey, what):
    vals = [v for v in (num(prism.get(pkey)), num(torch.get(tkey))) if v]
    if not vals:
        raise BadInput(f"neither file has a {what} ceiling ({pkey} / {tkey})")
    return max(vals)


def join(prism, torch, only=None, prism_path="prism", torch_path="torch", timing="graph"):
    if timing not in ("graph", "call"):
        raise ValueError(f"timing {timing!r}")
    notes = []
    if prism.get("tool") not in (None, "prism bench"):
        raise BadInput(f"{prism_path}: \"tool\" is {prism.get('tool')!r}, expected \"prism bench\" "
                       "(are the two files swapped?)")
    if torch.get("tool") not in (None, "torch_baselines"):
        raise BadInput(f"{torch_path}: \"tool\" is {torch.get('tool')!r}, expected \"torch_baselines\" "
                       "(are the two files swapped?)")
    bw = ceiling(prism, torch, "copy_bytes_per_s", "copy_bytes_per_s", "copy bandwidth")
    fl = ceiling(prism, torch, "mma_flops_per_s", "fp16_flops_per_s", "matmul flops")
    floor = num(prism.get("launch_floor_us"))
    if floor is None:
        floor = num(torch.get("launch_floor_us"))
        if floor is None:
            raise BadInput(f"{prism_path}: no launch_floor_us (and none in {torch_path})")
        notes.append("the prism file has no launch_floor_us: the torch file's is used")
    pdev, tdev = prism.get("device"), torch.get("device")
    if pdev and tdev and pdev != tdev:
        notes.append(f"different devices: prism on {pdev}, torch on {tdev}")

    def index(doc, path, what):
        idx, order = {}, []
        for i, row in enumerate(doc["rows"]):
            k = row_key(row, path, i)
            if only and k[0] not in only:
                continue
            idx.setdefault(k, []).append(row)
            if len(idx[k]) == 1:
                order.append(k)
        for k, rows in idx.items():
            if len(rows) > 1:
                notes.append(f"{what}: {len(rows)} rows for {k[0]} {dims_text(k[1])}"
                             + (": the fastest successful one is used" if what == "prism" else ": the first is used"))
        return idx, order

    pidx, porder = index(prism, prism_path, "prism")
    tidx, torder = index(torch, torch_path, "torch")

    def pick_prism(rows):
        good = [r for r in rows if prism_time(r) is not None]
        return min(good, key=prism_time) if good else rows[0]

    keys = merge_order(porder, torder)
    out_rows, missing = [], []
    for k in keys:
        w, kd = k
        dims = dict(kd)
        p = pick_prism(pidx[k]) if k in pidx else None
        t = tidx[k][0] if k in tidx else None
        r = {"workload": w, "dims": dims, "dims_text": dims_text(kd),
             "in_prism": p is not None, "in_torch": t is not None, "notes": []}
        if p is None:
            missing.append(f"{w} {r['dims_text']}: no prism row")
        if t is None:
            missing.append(f"{w} {r['dims_text']}: no torch row")
        # bytes / flops
        pb, pf = (num(p.get("bytes")), num(p.get("flops"))) if p else (None, None)
        tb, tf = (num(t.get("bytes")), num(t.get("flops"))) if t else (None, None)
        nbytes = pb if pb is not None else tb
        flops = pf if pf is not None else tf
        if pb is not None and tb is not None and pb != tb:
            r["notes"].append(f"bytes differ: prism {int(pb)}, torch {int(tb)}")
        if pf is not None and tf is not None and pf != tf:
            r["notes"].append(f"flops differ: prism {int(pf)}, torch {int(tf)}")
        r["bytes"], r["flops"] = nbytes, flops
        if nbytes is not None or flops is not None:
            r["roofline_us"] = max((nbytes or 0) / bw, (flops or 0) / fl) * 1e6
            r["limit_us"] = r["roofline_us"] + floor
        else:
            r["roofline_us"] = r["limit_us"] = None
        # prism
        r["prism_us"] = prism_time(p) if p else None
        if p is not None:
            r["prism_variant"] = p.get("variant")
            r["prism_kernels"] = p.get("kernels")
            r["prism_checked"] = p.get("checked")
            if r["prism_us"] is None:
                r["prism_error"] = p.get("error") or "no median_us"
            if p.get("source") not in (None, "measured"):
                r["notes"].append(f"prism row source: {p.get('source')}")
        # peers
        for peer in PEERS + ("sdpa_nocopy",):
            us, state = peer_time(t, peer, timing) if t else (None, "absent")
            r[f"{peer}_us"], r[f"{peer}_state"] = us, state
            r[f"{peer}_call_us"] = us_of(t, peer) if t else None
            r[f"{peer}_graph_us"] = us_of(t, f"{peer}_graph") if t else None
            if t is not None and state == "error":
                r[f"{peer}_error"] = t.get(f"{peer}_error")
            if t is not None and t.get(f"{peer}_graph_error"):
                r[f"{peer}_graph_error"] = t.get(f"{peer}_graph_error")
            if t is not None and t.get(f"{peer}_relerr") is not None:
                r[f"{peer}_relerr"] = t.get(f"{peer}_relerr")
        if t is not None and t.get("error"):
            r["notes"].append(f"torch: {t['error']}")
        if t is not None and t.get("program_mismatch"):
            r["notes"].append("torch: prism.toml's program differs from the script's")
        # speedups (valid peers only)
        valid = {peer: r[f"{peer}_us"] for peer in PEERS if r[f"{peer}_state"] in ("ok", "call")}
        comp = [valid[c] for c in ("compile", "compile_at") if c in valid]
        r["best_compile_us"] = min(comp) if comp else None
        if r["best_compile_us"] is not None:
            r["best_compile_mode"] = "compile" if valid.get("compile") == r["best_compile_us"] else "compile_at"
        pu = r["prism_us"]
        r["speedup_compile"] = r["best_compile_us"] / pu if pu and r["best_compile_us"] else None
        r["speedup_sdpa"] = valid["sdpa"] / pu if pu and "sdpa" in valid else None
        r["speedup_eager"] = valid["eager"] / pu if pu and "eager" in valid else None
        r["x_limit"] = pu / r["limit_us"] if pu and r["limit_us"] else None
        # prism bench's read floor: a bare read of the row's bytes under the same flush
        r["read_floor_us"] = num(p.get("read_floor_us")) if p else None
        r["x_read"] = pu / r["read_floor_us"] if pu and r["read_floor_us"] else None
        r["target"] = evaluate_target(r, p)
        out_rows.append(r)

    summary = summarize(out_rows)
    return {
        "tool": "prism compare",
        "prism": {k: prism.get(k) for k in ("device", "copy_bytes_per_s", "mma_flops_per_s", "launch_floor_us")},
        "torch": {k: torch.get(k) for k in ("device", "torch", "triton", "copy_bytes_per_s",
                                            "fp16_flops_per_s", "launch_floor_us", "autotune")},
        "copy_bytes_per_s": bw, "flops_per_s": fl, "launch_floor_us": floor, "timing": timing,
        "limit_definition": "roofline = max(bytes / max(copy B/s of both files), flops / max(prism mma, "
                            "torch fp16 flops/s)); limit = roofline + prism launch_floor_us",
        "targets": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in t.items()} for t in TARGETS],
        "notes": notes, "missing": missing, "rows": out_rows, "summary": summary,
    }


def merge_order(porder, torder):
    """The union of both files' keys: torch's order (prism.toml's), each
    prism-only key placed after the key it follows in the prism file."""
    keys = list(torder)
    have = set(keys)
    for i, k in enumerate(porder):
        if k in have:
            continue
        at = 0
        for prev in reversed(porder[:i]):
            if prev in have:
                at = keys.index(prev) + 1
                break
        keys.insert(at, k)
        have.add(k)
    return keys


def evaluate_target(r, prism_row):
    """{text, kind, ratio, value, met}: met is True, False or None (not evaluated)."""
    t = target_for(r["workload"], r["dims"])
    if t is None:
        return None
    res = {"text": t["text"], "kind": t["kind"], "ratio": t["ratio"], "value": None, "met": None, "why": None}
    if prism_row is None:
        res["why"] = "no prism row"
        return res
    pu = r["prism_us"]
    if pu is None:
        res["met"], res["why"] = False, "prism failed"
        return res
    kind = t["kind"]
    if kind == "limit":
        if r["limit_us"] is None:
            res["why"] = "no bytes/flops for the limit"
            return res
        res["value"] = pu / r["limit_us"]
        res["met"] = res["value"] <= t["ratio"] * (1 + EPS)
        return res
    peer_us = {"vs_sdpa": ("sdpa", r["speedup_sdpa"]), "vs_compile": ("torch.compile", r["speedup_compile"]),
               "vs_eager": ("eager", r["speedup_eager"])}[kind]
    if peer_us[1] is None:
        res["why"] = f"no valid {peer_us[0]} time"
        return res
    res["value"] = peer_us[1]
    res["met"] = res["value"] >= t["ratio"] * (1 - EPS)
    return res


def summarize(rows):
    five = [r for r in rows if r["workload"] in PRISM_FIVE]
    decode = [r for r in rows if r["workload"] in ("attention", "qk_norm_attention") and r["dims"].get("s") == 1]
    gqa = [r for r in rows if r["workload"] == "gqa_decode"]

    def gm(rs, key):
        vals = [r[key] for r in rs if r.get(key)]
        return {"geomean": geomean(vals), "n": len(vals), "of": len(rs)}

    with_target = [r for r in rows if r["target"] is not None]
    met = [r for r in with_target if r["target"]["met"] is True]
    missed = [r for r in with_target if r["target"]["met"] is False]
    unknown = [r for r in with_target if r["target"]["met"] is None]
    return {
        "vs_compile_prism_five": gm(five, "speedup_compile"),
        "vs_compile_all": gm(rows, "speedup_compile"),
        "vs_compile_decode_attention": gm(decode, "speedup_compile"),
        "vs_sdpa_decode_attention": gm(decode, "speedup_sdpa"),
        "vs_sdpa_gqa_decode": gm(gqa, "speedup_sdpa"),
        "targets_met": len(met), "targets_missed": len(missed), "targets_not_evaluated": len(unknown),
        "targets_total": len(with_target),
        "misses": [{"workload": r["workload"], "dims": r["dims"], "target": r["target"]["text"],
                    "kind": r["target"]["kind"],
                    "value": r["target"]["value"], "why": r["target"]["why"]} for r in missed],
        "not_evaluated": [{"workload": r["workload"], "dims": r["dims"], "target": r["target"]["text"],
                           "why": r["target"]["why"]} for r in unknown],
    }


# --------------------------------------------------------------------------
# Markdown


def fus(v):
    if v is None:
        return "—"
    if v < 10:
        return f"{v:.2f}"
    if v < 1000:
        return f"{v:.1f}"
    return f"{v:.0f}"


def fx(v):
    return "—" if v is None else f"{v:.2f}×"


def peer_cell(r, peer):
    state = r[f"{peer}_state"]
    if state == "ok":
        return fus(r[f"{peer}_us"])
    if state == "bad":
        return fus(r[f"{peer}_us"]) + " †"
    if state == "call":
        return fus(r[f"{peer}_us"]) + " ‡"
    if state == "error":
        return "fail"
    return "—"


def target_cell(t):
    """e.g. '✅ ≤ 1.25× limit: 1.02', '❌ ≥ 1.2× sdpa: 0.86', 'n/a ≥ 1.2× sdpa (no valid sdpa time)'."""
    if t is None:
        return ""
    mark = {True: "✅", False: "❌", None: "n/a"}[t["met"]]
    got = f": {t['value']:.2f}" if t["value"] is not None else f" ({t['why']})"
    return f"{mark} {t['text']}{got}"


def fg(g, what):
    if g["geomean"] is None:
        return f"{what}: — (no points)"
    return f"{what}: {g['geomean']:.3f}× over {g['n']} of {g['of']} points"


def markdown(j):
    L = []
    p, t = j["prism"], j["torch"]
    L.append("# prism vs PyTorch")
    L.append("")
    L.append(f"prism: {p.get('device')}; torch {t.get('torch')} (triton {t.get('triton')}) on {t.get('device')}.  ")
    L.append(f"Ceilings: copy {j['copy_bytes_per_s'] / 1e12:.2f} TB/s, matmul {j['flops_per_s'] / 1e12:.0f} TFLOP/s "
             f"(the larger of the two files'), launch floor {j['launch_floor_us']:.2f} µs (prism's).  ")
    L.append("**limit** = max(bytes / copy B/s, flops / matmul flop/s) + launch floor; **×limit** = prism µs / limit. "
             "Speedups are peer µs / prism µs (> 1: prism faster); **vs compile** against the faster of compile and "
             "compile-at. Times in µs, medians with L2 flushed. † = peer's error vs the f32 reference above "
             "tolerance (left out of speedups and targets); fail = the peer raised.  ")
    if j["timing"] == "graph":
        L.append("PyTorch times: **CUDA-graph replay** of one call (the kernels' GPU time, without Python "
                 "dispatch, as prism's native harness times its own launches); ‡ = no graph time, the "
                 "Python call's time used. `--timing call` compares the Python calls' times instead.")
    else:
        L.append("PyTorch times: the **Python call** under do_bench (dispatch overhead included whenever it "
                 "outlasts the L2 flush); `--timing graph` compares CUDA-graph replays instead.")
    L.append("")
    L.append("Targets: " + "; ".join(
        f"{'/'.join(tg['workloads']) if len(tg['workloads']) < 5 else 'Prism five'}"
        + (" at " + ", ".join(f"{d} {op} {v}" for d, op, v in tg["when"]) if tg["when"] else "")
        + f": {tg['text']}" for tg in j["targets"]) + ".")
    for n in j["notes"]:
        L.append(f"- note: {n}")
    L.append("")
    L.append("**read** = prism bench's read floor: a bare read of the row's bytes (L2 evict_first, every SM) right "
             "after the same flush, launch included; the flush leaves L2 full of dirty lines, so this is what moving "
             "the bytes costs under this harness. **×read** = prism µs / read.")
    L.append("")
    L.append("| workload | dims | prism | eager | compile | compile-at | sdpa | vs compile | vs sdpa | ×limit | read | ×read | target |")
    L.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for r in j["rows"]:
        if not r["in_prism"]:
            pc = "missing"
        elif r["prism_us"] is None:
            pc = "fail"
        else:
            pc = fus(r["prism_us"])
        cells = [r["workload"], r["dims_text"], pc]
        cells += [peer_cell(r, pe) if r["in_torch"] else "missing" if pe == "eager" else "—" for pe in PEERS]
        cells += [fx(r["speedup_compile"]), fx(r["speedup_sdpa"]),
                  "—" if r["x_limit"] is None else f"{r['x_limit']:.2f}",
                  "—" if r["read_floor_us"] is None else fus(r["read_floor_us"]),
                  "—" if r["x_read"] is None else f"{r['x_read']:.2f}", target_cell(r["target"])]
        L.append("| " + " | ".join(cells) + " |")
    s = j["summary"]
    L.append("")
    L.append("## Summary")
    L.append("")
    L.append("- " + fg(s["vs_compile_prism_five"], "geomean speedup vs best torch.compile, Prism's five"))
    L.append("- " + fg(s["vs_compile_all"], "geomean speedup vs best torch.compile, all points"))
    L.append("- " + fg(s["vs_compile_decode_attention"],
                       "geomean speedup vs best torch.compile, decode attention (attention, qk_norm_attention at s=1)"))
    L.append("- " + fg(s["vs_sdpa_decode_attention"], "geomean speedup vs sdpa, decode attention (s=1)"))
    L.append("- " + fg(s["vs_sdpa_gqa_decode"], "geomean speedup vs sdpa, gqa_decode"))
    L.append(f"- targets met: {s['targets_met']} / {s['targets_total']}"
             f" ({s['targets_missed']} missed, {s['targets_not_evaluated']} not evaluated)")
    if s["misses"]:
        L.append("")
        L.append("Misses:")
        for m in s["misses"]:
            if m["value"] is None:
                got = m["why"]
            elif m["kind"] == "limit":
                got = f"{m['value']:.3f}× limit"
            else:
                got = f"{m['value']:.3f}×"
            L.append(f"- {m['workload']} {dims_text(tuple(sorted(m['dims'].items())))}: wants {m['target']}, got {got}")
    if s["not_evaluated"]:
        L.append("")
        L.append("Not evaluated:")
        for m in s["not_evaluated"]:
            L.append(f"- {m['workload']} {dims_text(tuple(sorted(m['dims'].items())))}: {m['target']} ({m['why']})")
    if j["missing"]:
        L.append("")
        L.append("## Missing")
        L.append("")
        for m in j["missing"]:
            L.append(f"- {m}")
    errs = []
    for r in j["rows"]:
        if r.get("prism_error"):
            errs.append(f"- {r['workload']} {r['dims_text']}: prism: {str(r['prism_error'])[:200]}")
        for pe in PEERS + ("sdpa_nocopy",):
            if r.get(f"{pe}_error"):
                errs.append(f"- {r['workload']} {r['dims_text']}: {pe}: {str(r[pe + '_error'])[:200]}")
            if r.get(f"{pe}_graph_error"):
                errs.append(f"- {r['workload']} {r['dims_text']}: {pe}: CUDA graph: "
                            f"{str(r[pe + '_graph_error'])[:200]}")
            if r.get(f"{pe}_state") == "bad":
                errs.append(f"- {r['workload']} {r['dims_text']}: {pe}: relative error "
                            f"{r.get(pe + '_relerr')} above tolerance")
        for n in r["notes"]:
            errs.append(f"- {r['workload']} {r['dims_text']}: {n}")
    if errs:
        L.append("")
        L.append("## Failures and notes")
        L.append("")
        L.extend(errs)
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description="Join prism bench and torch_baselines JSON.")
    ap.add_argument("prism_json")
    ap.add_argument("torch_json")
    ap.add_argument("--out", help="write the joined JSON here")
    ap.add_argument("--only", default="", help="comma-separated workloads to keep")
    ap.add_argument("--timing", choices=("graph", "call"), default="graph",
                    help="PyTorch times to compare: CUDA-graph replays (default) or the Python calls")
    args = ap.parse_args(argv)
    only = {w.strip() for w in args.only.split(",") if w.strip()} or None
    try:
        prism = load_json(args.prism_json, "prism bench")
        torch = load_json(args.torch_json, "torch_baselines")
        j = join(prism, torch, only, args.prism_json, args.torch_json, args.timing)
    except BadInput as e:
        print(f"compare.py: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(markdown(j))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(j, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
