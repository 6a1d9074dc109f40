"""cuBLAS through torch on the GEMM probes' shapes (f16, L2 flushed, median
of triton's do_bench): the bar for bench/probes/wgmma_tma.cu's lines."""
import torch
from triton.testing import do_bench

for m in (2048, 128):
    x = torch.randn(m, 4096, device="cuda", dtype=torch.half)
    w1 = torch.randn(4096, 14336, device="cuda", dtype=torch.half) / 64
    w3 = torch.randn(4096, 14336, device="cuda", dtype=torch.half) / 64
    w = torch.randn(4096, 4096, device="cuda", dtype=torch.half) / 64
    cases = {
        "gated x@w1, x@w3 (two GEMMs)": (lambda: (x @ w1, x @ w3), 2 * 2 * m * 14336 * 4096),
        "gated silu(x@w1)*(x@w3) eager": (lambda: torch.nn.functional.silu(x @ w1) * (x @ w3), 2 * 2 * m * 14336 * 4096),
        "lora-shape x@w": (lambda: x @ w, 2 * m * 4096 * 4096),
    }
    for name, (fn, flops) in cases.items():
        us = do_bench(fn, warmup=25, rep=200, return_mode="median") * 1000
        print(f"cublas {name:34s} M={m:5d}  {us:9.1f} us  {flops / us * 1e-6:6.1f} TFLOP/s")
