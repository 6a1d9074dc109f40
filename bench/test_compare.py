"""Tests of bench/compare.py and of torch_baselines.py's pure parts: stdlib
only, no torch, no GPU.

  python3 -m unittest discover -s bench -p 'test_*.py'
  python3 bench/test_compare.py
"""
import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare  # noqa: E402
import torch_baselines as tb  # noqa: E402

TOML = os.path.join(os.path.dirname(HERE), "prism.toml")

BW = 4e12        # bytes/s
FL = 5e14        # flop/s
FLOOR = 4.0      # µs


def prow(workload, dims, us, nbytes=0, flops=0, error=None):
    return {"workload": workload, "dims": dims, "variant": "v", "source": "measured", "kernels": 1,
            "median_us": us, "bytes": nbytes, "flops": flops, "roofline_us": 0.0, "limit_us": 0.0,
            "over_limit": 0.0, "checked": "cpu", "error": error}


def trow(workload, dims, nbytes=0, flops=0, **peers):
    """A torch_baselines row; a peer given a number gets that time both as
    its call time and its graph time, a string is its error."""
    r = {"workload": workload, "dims": dims, "bytes": nbytes, "flops": flops}
    for peer, us in peers.items():
        if isinstance(us, str):
            r[f"{peer}_error"] = us
        else:
            for key in (peer, f"{peer}_graph"):
                r[f"{key}_ms"] = us / 1e3
                r[f"{key}_us"] = us
                r[f"{key}_relerr"] = 1e-3
    return r


def docs(prows, trows, **over):
    p = {"tool": "prism bench", "device": "NVIDIA H200", "copy_bytes_per_s": BW, "mma_flops_per_s": FL,
         "launch_floor_us": FLOOR, "rows": prows}
    t = {"tool": "torch_baselines", "device": "NVIDIA H200", "torch": "2.11", "triton": "3.6",
         "copy_bytes_per_s": BW / 2, "fp16_flops_per_s": FL / 2, "launch_floor_us": 6.0, "rows": trows}
    p.update(over.get("prism", {}))
    t.update(over.get("torch", {}))
    return p, t


def find(j, workload, **dims):
    rows = [r for r in j["rows"] if r["workload"] == workload and r["dims"] == dims]
    assert len(rows) == 1, (workload, dims, rows)
    return rows[0]


class TorchBaselinesPure(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.points = tb.load_points(TOML)

    def pt(self, workload, **dims):
        ps = [p for p in self.points if p["workload"] == workload and p["dims"] == dims]
        self.assertEqual(len(ps), 1, (workload, dims))
        return ps[0]

    def test_every_declared_point(self):
        doc = tb.load_toml(TOML)
        want = [(w, p) for w, spec in doc["workload"].items() for p in spec["points"]]
        self.assertEqual([(p["workload"], p["dims"]) for p in self.points], want)
        self.assertEqual(len(self.points), 44)
        for p in self.points:
            self.assertTrue(p["known"], p["workload"])
            self.assertTrue(p["program_ok"], f"{p['workload']}: toml program differs from the script's")

    def test_only(self):
        ps = tb.load_points(TOML, {"lora", "ntrans"})
        self.assertEqual({p["workload"] for p in ps}, {"lora", "ntrans"})
        self.assertEqual(len(ps), 10)

    def test_rms_norm(self):
        p = self.pt("rms_norm", n=8, d=1024)
        self.assertEqual(p["bytes"], 2 * (8 * 1024 + 1024 * 1024 + 8 * 1024))
        self.assertEqual(p["flops"], 2 * 8 * 1024 * 1024)
        self.assertEqual([(n, s) for n, _, s, _ in p["inputs"]], [("x", [8, 1024]), ("w", [1024, 1024])])
        self.assertAlmostEqual(p["inputs"][1][3], 1 / math.sqrt(1024))
        self.assertEqual(p["inputs"][0][3], 1.0)

    def test_attention(self):
        p = self.pt("attention", b=2, h=8, s=1, kv=1024, dh=128)
        self.assertEqual(p["flops"], 2 * (2 * 8 * 1 * (8 * 1024) * 128) * 2)
        q, kt, v, out = 2 * 8 * 128, 2 * 128 * 8192, 2 * 8192 * 128, 2 * 8 * 128
        self.assertEqual(p["bytes"], 2 * (q + kt + v + out))
        self.assertEqual([s for _, _, s, _ in p["inputs"]], [[2, 8, 128], [2, 128, 8192], [2, 8192, 128]])
        p = self.pt("qk_norm_attention", b=2, h=8, s=128, kv=1024, dh=128)
        self.assertEqual(p["flops"], 2 * (2 * 2 * 1024 * 8192 * 128))
        self.assertEqual(p["out_shape"], [2, 1024, 128])
        self.assertEqual(p["inputs"][0][3], 1.0)   # qk_norm: q has no init
        self.assertAlmostEqual(p["inputs"][1][3], 1 / math.sqrt(128))

    def test_gqa_gated_lora_ntrans(self):
        p = self.pt("gqa_decode", b=7, kv=1000)
        self.assertEqual(p["flops"], 2 * (2 * 7 * 8 * 4 * 1000 * 128))
        self.assertEqual(p["bytes"], 2 * (7 * 32 * 128 * 2 + 2 * 7 * 8 * 1000 * 128))
        p = self.pt("gated_mlp", n=7)
        self.assertEqual(p["flops"], 2 * (2 * 7 * 4096 * 14336))
        self.assertEqual(p["bytes"], 2 * (7 * 4096 + 2 * 4096 * 14336 + 7 * 14336))
        p = self.pt("lora", n=16)
        self.assertEqual(p["flops"], 2 * 16 * 4096 * 4096 + 2 * 16 * 4096 * 16 + 2 * 16 * 16 * 4096)
        self.assertEqual(p["bytes"], 2 * (16 * 4096 + 4096 * 4096 + 4096 * 16 + 16 * 4096 + 16 * 4096))
        self.assertAlmostEqual(p["inputs"][3][3], 0.25)
        p = self.pt("ntrans", n=64)
        self.assertEqual(p["flops"], 0)
        self.assertEqual(p["bytes"], 2 * 4 * 64 * 4096)

    def test_expressions(self):
        self.assertEqual(tb.eval_expr("h*s", {"h": 8, "s": 128}), 1024)
        self.assertAlmostEqual(tb.eval_expr("1/sqrt(d)", {"d": 4096}), 1 / 64)
        self.assertEqual(tb.eval_expr("32", {}), 32)
        for bad in ("__import__('os')", "x.y", "d", "open(1)"):
            with self.assertRaises(ValueError):
                tb.eval_expr(bad, {})
        self.assertEqual(tb.parse_type("f16[b, h*s, dh]"), ("f16", ["b", "h*s", "dh"]))
        self.assertEqual(tb.parse_type("[n, d]", "f16"), ("f16", ["n", "d"]))
        with self.assertRaises(ValueError):
            tb.parse_type("i8[n]")
        with self.assertRaises(ValueError):
            tb.shape_at(["d/3"], {"d": 4})

    def test_program_check(self):
        self.assertEqual(tb.normalize_program("\nlet h = rms_norm(x)   # c\n  out = h\n"),
                         "let h = rms_norm(x)\nout = h")
        doc = tb.load_toml(TOML)
        doc["workload"]["lora"]["program"] = "x @ w"
        ps = tb.load_points(doc, {"lora"})
        self.assertFalse(any(p["program_ok"] for p in ps))

    def test_unknown_workload_kept(self):
        doc = {"target": {"dtype": "f16"}, "workload": {"new_thing": {
            "inputs": {"x": "f16[n]"}, "program": "x", "points": [{"n": 4}]}}}
        (p,) = tb.load_points(doc)
        self.assertFalse(p["known"])
        self.assertIsNone(p["bytes"])

    def test_signatures(self):
        self.assertEqual(tb.check_signatures(), [])
        doc = tb.load_toml(TOML)
        import inspect
        for name, w in doc["workload"].items():
            params = list(inspect.signature(tb.WORKLOADS[name]["fn"]).parameters)
            self.assertEqual(params, list(w["inputs"]), name)

    def test_finite(self):
        self.assertEqual(tb.finite({"a": [float("nan"), 1.0], "b": float("inf")}), {"a": [None, 1.0], "b": None})


class Join(unittest.TestCase):
    def test_limit_and_speedups(self):
        d = {"n": 8, "d": 1024}
        nbytes, flops = 8_000_000, 10_000_000_000
        p, t = docs([prow("rms_norm", d, 10.0, nbytes, flops)],
                    [trow("rms_norm", d, nbytes, flops, eager=30.0, compile=20.0, compile_at=15.0)])
        j = compare.join(p, t)
        r = find(j, "rms_norm", **d)
        roof = max(nbytes / BW, flops / FL) * 1e6            # the prism file's ceilings are the larger
        self.assertAlmostEqual(r["roofline_us"], roof)       # = 20 µs (flops)
        self.assertAlmostEqual(r["limit_us"], roof + FLOOR)  # prism's floor, not torch's 6.0
        self.assertAlmostEqual(r["x_limit"], 10.0 / 24.0)
        self.assertAlmostEqual(r["speedup_compile"], 1.5)    # compile_at is the faster mode
        self.assertEqual(r["best_compile_mode"], "compile_at")
        self.assertIsNone(r["speedup_sdpa"])
        self.assertTrue(r["target"]["met"])

    def test_read_floor(self):
        d = {"n": 8, "d": 1024}
        with_floor = prow("rms_norm", d, 10.0, 8_000_000)
        with_floor["read_floor_us"] = 8.0
        p, t = docs([with_floor, prow("rms_norm", {"n": 16, "d": 1024}, 10.0, 8_000_000)],
                    [trow("rms_norm", d, 8_000_000, eager=30.0)])
        j = compare.join(p, t)
        r = find(j, "rms_norm", **d)
        self.assertAlmostEqual(r["read_floor_us"], 8.0)
        self.assertAlmostEqual(r["x_read"], 1.25)
        old = find(j, "rms_norm", n=16, d=1024)          # a file from before the read floor
        self.assertIsNone(old["read_floor_us"])
        self.assertIsNone(old["x_read"])
        md = compare.markdown(j)
        self.assertIn("| 8.00 | 1.25 |", md)

    def test_ceilings_take_the_larger(self):
        d = {"n": 8, "d": 1024}
        p, t = docs([prow("rms_norm", d, 10.0, 8_000_000, 0)], [trow("rms_norm", d, 8_000_000, 0, eager=1.0)],
                    torch={"copy_bytes_per_s": 2 * BW})
        r = find(compare.join(p, t), "rms_norm", **d)
        self.assertAlmostEqual(r["roofline_us"], 8_000_000 / (2 * BW) * 1e6)

    def test_failed_and_bad_peers(self):
        d = {"b": 1, "kv": 1024}
        t = trow("gqa_decode", d, 1, 1, eager=50.0, compile="RuntimeError: boom", compile_at=40.0, sdpa=12.0)
        t["compile_at_bad"] = True        # fast but wrong: not a baseline
        p, t = docs([prow("gqa_decode", d, 10.0, 1, 1)], [t])
        j = compare.join(p, t)
        r = find(j, "gqa_decode", **d)
        self.assertEqual(r["compile_state"], "error")
        self.assertEqual(r["compile_at_state"], "bad")
        self.assertIsNone(r["speedup_compile"])
        self.assertAlmostEqual(r["speedup_sdpa"], 1.2)
        self.assertTrue(r["target"]["met"])               # exactly 1.2x sdpa
        md = compare.markdown(j)
        self.assertIn("| gqa_decode | b=1 kv=1024 | 10.0 | 50.0 | fail | 40.0 † | 12.0 | — | 1.20× |", md)
        self.assertIn("compile: RuntimeError: boom", md)
        self.assertIn("compile_at: relative error", md)

    def test_timing_graph_or_call(self):
        d = {"n": 16}
        t = trow("lora", d, compile=20.0, compile_at=30.0, eager=40.0)
        t["compile_us"] = 120.0             # the Python call, dispatch-bound
        t["compile_at_us"] = 90.0
        t["compile_at_graph_us"] = 15.0
        t["compile_at_graph_bad"] = True    # the replay's output was wrong
        for k in ("eager_graph_us", "eager_graph_ms"):
            del t[k]                        # no graph time: call time, marked
        t["eager_graph_error"] = "RuntimeError: capture failed"
        p, t = docs([prow("lora", d, 10.0)], [t])
        j = compare.join(p, t)
        r = find(j, "lora", **d)
        self.assertEqual((r["compile_us"], r["compile_state"]), (20.0, "ok"))
        self.assertEqual((r["compile_at_us"], r["compile_at_state"]), (15.0, "bad"))
        self.assertEqual((r["eager_us"], r["eager_state"]), (40.0, "call"))
        self.assertEqual((r["compile_call_us"], r["compile_graph_us"]), (120.0, 20.0))
        self.assertAlmostEqual(r["speedup_compile"], 2.0)
        self.assertAlmostEqual(r["speedup_eager"], 4.0)
        md = compare.markdown(j)
        self.assertIn("| lora | n=16 | 10.0 | 40.0 ‡ | 20.0 | 15.0 † |", md)
        self.assertIn("eager: CUDA graph: RuntimeError: capture failed", md)
        self.assertIn("CUDA-graph replay", md)
        j = compare.join(p, t, timing="call")
        r = find(j, "lora", **d)
        self.assertEqual((r["compile_us"], r["compile_at_us"], r["compile_at_state"]), (120.0, 90.0, "ok"))
        self.assertAlmostEqual(r["speedup_compile"], 9.0)
        self.assertIn("**Python call**", compare.markdown(j))

    def test_target_edges(self):
        rows_p, rows_t = [], []

        def add(w, dims, prism_us, nbytes=0, flops=0, **peers):
            rows_p.append(prow(w, dims, prism_us, nbytes, flops))
            rows_t.append(trow(w, dims, nbytes, flops, **peers))

        # limit: roofline 4 µs (16e6 bytes at 4e12 B/s) + 4 µs floor = 8 µs
        add("swiglu", {"n": 8, "d": 1024}, 10.0, 16_000_000, eager=1.0)        # 1.25 exactly: met
        add("swiglu", {"n": 8, "d": 2048}, 10.0001, 16_000_000, eager=1.0)     # just above: miss
        add("gqa_decode", {"b": 1, "kv": 1024}, 10.0, sdpa=11.9)               # 1.19x sdpa: miss
        add("gated_mlp", {"n": 256}, 10.0, compile=15.0, compile_at=16.0)      # 1.5x exactly: met
        add("gated_mlp", {"n": 128}, 10.0, compile=14.9)                       # no compile_at: best = compile
        add("lora", {"n": 2048}, 100.0, eager=90.0, compile=10.0)              # 0.9x eager exactly: met
        add("lora", {"n": 2047}, 100.0, eager=80.0)                            # no target
        add("lora", {"n": 512}, 100.0, eager=80.0)                             # no target
        add("ntrans", {"n": 1}, 5.0, eager=6.0)                                # no target
        j = compare.join(*docs(rows_p, rows_t))
        met = lambda w, **d: find(j, w, **d)["target"] and find(j, w, **d)["target"]["met"]  # noqa: E731
        self.assertIs(met("swiglu", n=8, d=1024), True)
        self.assertIs(met("swiglu", n=8, d=2048), False)
        self.assertIs(met("gqa_decode", b=1, kv=1024), False)
        self.assertIs(met("gated_mlp", n=256), True)
        self.assertIs(met("gated_mlp", n=128), False)
        self.assertAlmostEqual(find(j, "gated_mlp", n=128)["target"]["value"], 1.49)
        self.assertIs(met("lora", n=2048), True)
        self.assertEqual(find(j, "lora", n=2048)["target"]["kind"], "vs_eager")
        for w, d in (("lora", {"n": 2047}), ("lora", {"n": 512}), ("ntrans", {"n": 1})):
            self.assertIsNone(find(j, w, **d)["target"])
        s = j["summary"]
        self.assertEqual((s["targets_met"], s["targets_missed"], s["targets_total"]), (3, 3, 6))
        self.assertEqual([(m["workload"], m["dims"]) for m in s["misses"]],
                         [("swiglu", {"n": 8, "d": 2048}), ("gqa_decode", {"b": 1, "kv": 1024}),
                          ("gated_mlp", {"n": 128})])

    def test_missing_rows_and_failed_prism(self):
        a, b, c = {"n": 8, "d": 1024}, {"n": 8, "d": 2048}, {"n": 16, "d": 1024}
        # limit ≈ 4 µs (the floor): a and the prism-only row meet it
        prows = [prow("rms_norm", a, 4.5, 1, 1), prow("rms_norm", b, None, 1, 1, error="nvcc failed"),
                 prow("rms_norm", {"n": 99, "d": 1}, 4.0, 1, 1)]          # prism only
        trows = [trow("rms_norm", a, 1, 1, compile=20.0), trow("rms_norm", b, 1, 1, compile=20.0),
                 trow("rms_norm", c, 1, 1, compile=20.0)]                # c: torch only
        j = compare.join(*docs(prows, trows))
        self.assertEqual(len(j["rows"]), 4)
        self.assertEqual(sorted(j["missing"]), ["rms_norm n=16 d=1024: no prism row",
                                                 "rms_norm n=99 d=1: no torch row"])
        self.assertEqual([r["dims_text"] for r in j["rows"]],
                         ["n=8 d=1024", "n=8 d=2048", "n=99 d=1", "n=16 d=1024"])
        rb = find(j, "rms_norm", **b)
        self.assertIsNone(rb["prism_us"])
        self.assertEqual(rb["prism_error"], "nvcc failed")
        self.assertEqual((rb["target"]["met"], rb["target"]["why"]), (False, "prism failed"))
        rc = find(j, "rms_norm", **c)
        self.assertEqual((rc["target"]["met"], rc["target"]["why"]), (None, "no prism row"))
        s = j["summary"]
        self.assertEqual((s["targets_met"], s["targets_missed"], s["targets_not_evaluated"], s["targets_total"]),
                         (2, 1, 1, 4))
        self.assertEqual(s["vs_compile_prism_five"]["n"], 1)
        self.assertEqual(s["vs_compile_prism_five"]["of"], 4)
        md = compare.markdown(j)
        self.assertIn("| rms_norm | n=16 d=1024 | missing |", md)
        self.assertIn("| rms_norm | n=99 d=1 | 4.00 | missing |", md)
        self.assertIn("## Missing", md)
        self.assertIn("rms_norm n=8 d=2048: prism: nvcc failed", md)
        self.assertIn("targets met: 2 / 4 (1 missed, 1 not evaluated)", md)

    def test_geomeans(self):
        att = lambda s: {"b": 2, "h": 8, "s": s, "kv": 1024, "dh": 128}  # noqa: E731
        prows = [prow("attention", att(1), 10.0), prow("attention", att(128), 10.0),
                 prow("qk_norm_attention", att(1), 10.0), prow("ntrans", {"n": 1}, 10.0)]
        trows = [trow("attention", att(1), compile=20.0, sdpa=5.0), trow("attention", att(128), compile=80.0),
                 trow("qk_norm_attention", att(1), compile=5.0, compile_at=40.0, sdpa=20.0),
                 trow("ntrans", {"n": 1}, compile=10.0)]
        s = compare.join(*docs(prows, trows))["summary"]
        self.assertAlmostEqual(s["vs_compile_decode_attention"]["geomean"], math.sqrt(2.0 * 0.5))
        self.assertEqual(s["vs_compile_decode_attention"]["n"], 2)
        self.assertAlmostEqual(s["vs_compile_prism_five"]["geomean"], (2.0 * 8.0 * 0.5) ** (1 / 3))
        self.assertAlmostEqual(s["vs_compile_all"]["geomean"], (2.0 * 8.0 * 0.5 * 1.0) ** (1 / 4))
        self.assertAlmostEqual(s["vs_sdpa_decode_attention"]["geomean"], math.sqrt(0.5 * 2.0))

    def test_dims_keys(self):
        # key order and integral floats do not matter
        p, t = docs([prow("attention", {"dh": 128, "kv": 1024, "s": 1, "h": 8, "b": 2.0}, 10.0)],
                    [trow("attention", {"b": 2, "h": 8, "s": 1, "kv": 1024, "dh": 128}, eager=1.0)])
        j = compare.join(p, t)
        self.assertEqual(len(j["rows"]), 1)
        self.assertEqual(j["rows"][0]["dims_text"], "b=2 h=8 s=1 kv=1024 dh=128")
        self.assertEqual(j["missing"], [])

    def test_duplicate_prism_rows_take_fastest(self):
        d = {"n": 1}
        p, t = docs([prow("lora", d, 12.0), prow("lora", d, 9.0), prow("lora", d, None, error="x")],
                    [trow("lora", d, compile=18.0)])
        p["rows"][1]["source"] = "estimated"
        j = compare.join(p, t)
        self.assertEqual(find(j, "lora", **d)["prism_us"], 9.0)
        self.assertIn("prism row source: estimated", compare.markdown(j))
        self.assertTrue(any("3 rows" in n for n in j["notes"]))

    def test_only_and_ms_fallback(self):
        r = trow("lora", {"n": 1})
        r["compile_ms"] = 0.018      # no compile_us: derived from ms
        p, t = docs([prow("lora", {"n": 1}, 9.0), prow("ntrans", {"n": 1}, 1.0)], [r])
        j = compare.join(p, t, only={"lora"})
        self.assertEqual(len(j["rows"]), 1)
        self.assertAlmostEqual(j["rows"][0]["speedup_compile"], 2.0)

    def test_merge_order(self):
        self.assertEqual(compare.merge_order(["a", "x", "b"], ["a", "b", "c"]), ["a", "x", "b", "c"])
        self.assertEqual(compare.merge_order(["x", "a"], ["a"]), ["x", "a"])
        self.assertEqual(compare.merge_order([], ["a"]), ["a"])


class Cli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, name, obj):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return path

    def run_main(self, *args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = compare.main(list(args))
        return rc, out.getvalue(), err.getvalue()

    def test_report_with_misses_exits_0(self):
        d = {"n": 8, "d": 1024}
        p, t = docs([prow("rms_norm", d, 1000.0, 1, 1)], [trow("rms_norm", d, 1, 1, compile=1.0)])
        pp, tp = self.write("p.json", p), self.write("t.json", t)
        joined = os.path.join(self.dir.name, "j.json")
        rc, out, _ = self.run_main(pp, tp, "--out", joined)
        self.assertEqual(rc, 0)
        self.assertIn("❌", out)
        with open(joined) as f:
            j = json.load(f)
        self.assertEqual(j["summary"]["targets_missed"], 1)
        self.assertEqual(j["rows"][0]["prism_us"], 1000.0)

    def test_bad_inputs_exit_2(self):
        d = {"n": 8, "d": 1024}
        p, t = docs([prow("rms_norm", d, 1.0)], [trow("rms_norm", d, compile=1.0)])
        good_p, good_t = self.write("p.json", p), self.write("t.json", t)
        bad = {
            "not json": self.write("bad1.json", "{not json"),
            "no rows": self.write("bad2.json", {"tool": "prism bench"}),
            "no file": os.path.join(self.dir.name, "absent.json"),
            "bad dims": self.write("bad3.json", dict(p, rows=[{"workload": "x", "dims": {"n": "eight"}}])),
            "no ceilings": self.write("bad4.json", {"tool": "prism bench", "rows": []}),
        }
        for what, path in bad.items():
            rc, _, err = self.run_main(path, good_t) if what != "no ceilings" else \
                self.run_main(path, self.write("t0.json", {"tool": "torch_baselines", "rows": []}))
            self.assertEqual(rc, 2, what)
            self.assertIn("compare.py:", err, what)
        rc, _, err = self.run_main(good_t, good_p)   # swapped
        self.assertEqual(rc, 2)
        self.assertIn("swapped", err)

    def test_timing_flag(self):
        d = {"n": 8, "d": 1024}
        t = trow("rms_norm", d, compile=10.0)
        t["compile_us"] = 50.0
        p, t = docs([prow("rms_norm", d, 5.0)], [t])
        pp, tp = self.write("p.json", p), self.write("t.json", t)
        rc, out, _ = self.run_main(pp, tp)
        self.assertIn("| 2.00× |", out)
        rc, out, _ = self.run_main(pp, tp, "--timing", "call")
        self.assertEqual(rc, 0)
        self.assertIn("| 10.00× |", out)

    def test_subprocess(self):
        d = {"n": 8, "d": 1024}
        p, t = docs([prow("rms_norm", d, 1.0)], [trow("rms_norm", d, compile=1.0)])
        script = os.path.join(HERE, "compare.py")
        res = subprocess.run([sys.executable, script, self.write("p.json", p), self.write("t.json", t)],
                             capture_output=True, text=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("| rms_norm | n=8 d=1024 |", res.stdout)
        res = subprocess.run([sys.executable, script, self.write("p.json", p), "/nonexistent.json"],
                             capture_output=True, text=True)
        self.assertEqual(res.returncode, 2)

    def test_torch_baselines_only_check_without_torch(self):
        # an unknown --only name is refused before torch is imported
        res = subprocess.run([sys.executable, os.path.join(HERE, "torch_baselines.py"), TOML, "--only", "nope"],
                             capture_output=True, text=True)
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("nope", res.stderr)


if __name__ == "__main__":
    unittest.main()
