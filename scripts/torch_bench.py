#!/usr/bin/env python3
"""PyTorch (CPU) counterpart of `nnkern-bench`: runs the same suite file cases through
PyTorch's CPU kernels and prints one JSON object per measured pass, in exactly
nnkern-bench's format (backend "pytorch"; pool2d forward also "pytorch_cl", the same
forward on a channels_last input), e.g.

  {"op":"conv2d","case":"mnist_c2","pass":"forward","backend":"pytorch","threads":2,
   "median_ms":1.9,"gflops":12.3,"gbps":null,"reps":500}

Usage (from /work/main):
  /work/torchenv/bin/python scripts/torch_bench.py --suite ../shared/bench/suite.json \
      [--op OP]... [--case NAME]... [--threads N] [--target-s S]

Timing mirrors src/bench/mod.rs `time_median`: a warm-up of at least 2 calls and at least
max(0.1 s, target_s / 10), then individual calls timed with time.perf_counter for about
`target_s` seconds (at least 5 calls); the median per-call time is reported, `reps` is the
number of timed calls. (NNKERN_BENCH_CLOCK=thread reads the calling thread's CPU clock
instead, as nnkern-bench does; only meaningful with --threads 1.) Rates are computed from
the unrounded median; median_ms is rounded to 5 significant digits and the rates to 3
decimals, as in nnkern-bench. Counting per family (same as nnkern-bench):
  gemm          forward                                   gflops = 2 m n k
  conv2d        forward (with bias), backward_data,       gflops = 2 n k (c/groups) r s oh ow
                backward_weight (weight + bias grads)
  pool2d        forward (max: with indices), backward     gbps = 4 (input + output elements)
  eltwise       forward (8 B/element), backward (12 B/element); op "copy": forward only
  softmax_xent  forward (4 N C bytes), forward_backward (8 N C bytes)
  train_step    step (the two models nnkern-bench knows)  gflops as in src/bench/train_step.rs
Unknown ops, cases or models are skipped with a line on stderr.
"""

import argparse
import json
import math
import os
import sys
import time


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="torch_bench.py",
        description="Run an nnkern benchmark suite on PyTorch CPU (JSON lines out)",
    )
    ap.add_argument("--suite", default="../shared/bench/suite.json",
                    help="suite file (schema of ../shared/bench/suite.json)")
    ap.add_argument("--op", dest="ops", action="append", default=[],
                    help="op family (suite section) to run; repeatable; default all")
    ap.add_argument("--case", dest="cases", action="append", default=[],
                    help="case name to run; repeatable; default all")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    ap.add_argument("--target-s", dest="target_s", type=float, default=1.0,
                    help="seconds of timed calls per case and pass (default 1.0)")
    return ap.parse_args(argv)


ARGS = parse_args(sys.argv[1:])
if ARGS.threads < 1:
    sys.exit("torch_bench: --threads must be at least 1")
if not (ARGS.target_s > 0 and math.isfinite(ARGS.target_s)):
    sys.exit("torch_bench: --target-s must be a positive number of seconds")

import torch  # noqa: E402  (after argument checks, before any torch work below)

torch.set_num_threads(ARGS.threads)
torch.set_num_interop_threads(1)

import torch.nn.functional as F  # noqa: E402

aten = torch.ops.aten


class Skip(Exception):
    """A case that cannot run: the message goes to stderr."""


# ---------------------------------------------------------------- timing and records

_THREAD_CLOCK = os.environ.get("NNKERN_BENCH_CLOCK") == "thread"


def _clock():
    if _THREAD_CLOCK:
        return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)
    return time.perf_counter()


def time_median(target_s, f):
    """Warm `f` up, call it for about `target_s` seconds (at least 5 times); return
    (median per-call ms, timed calls)."""
    warm_s = max(0.1, 0.1 * target_s)
    t0 = time.perf_counter()
    calls = 0
    while calls < 2 or time.perf_counter() - t0 < warm_s:
        f()
        calls += 1
    times = []
    start = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < target_s and len(times) < 10_000_000):
        t = _clock()
        f()
        times.append(_clock() - t)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 == 1 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return med * 1e3, n


def _rust_round(v):
    """f64::round: half away from zero."""
    t = math.trunc(v)
    if abs(v - t) >= 0.5:
        t += math.copysign(1.0, v)
    return float(t)


def _round3(x):
    return _rust_round(x * 1000.0) / 1000.0


def _round_sig(x):
    if x == 0.0 or not math.isfinite(x):
        return x
    digits = 5 - math.ceil(math.log10(abs(x)))
    p = 10.0 ** max(digits, 0)
    return _rust_round(x * p) / p


def _json_num(x):
    # serde_json writes non-finite floats as null.
    return x if x is None or math.isfinite(x) else None


def record(op, case, pas, timing, flops=None, nbytes=None, backend="pytorch"):
    median_ms, reps = timing
    secs = median_ms * 1e-3

    def rate(v):
        if v is None:
            return None
        r = v / secs * 1e-9 if secs > 0 else math.inf
        return _json_num(_round3(r))

    return {
        "op": op,
        "case": case,
        "pass": pas,
        "backend": backend,
        "threads": ARGS.threads,
        "median_ms": _json_num(_round_sig(median_ms)),
        "gflops": rate(flops),
        "gbps": rate(nbytes),
        "reps": reps,
    }


def emit(rec):
    sys.stdout.write(json.dumps(rec, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- case fields

def field(case, name):
    v = case.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise Skip(f"field `{name}` missing or not a non-negative integer")
    return v


def opt(case, name, default):
    return default if name not in case else field(case, name)


def text(case, name):
    v = case.get(name)
    if not isinstance(v, str):
        raise Skip(f"field `{name}` missing or not a string")
    return v


def flag(case, name):
    v = case.get(name)
    return v if isinstance(v, bool) else False


def _axes(case, name, default, n=2):
    """An int (every axis) or a list of `n` ints; missing means `default`."""
    if name not in case:
        return [default] * n
    v = case[name]
    if isinstance(v, list):
        if len(v) != n or any(isinstance(e, bool) or not isinstance(e, int) or e < 0 for e in v):
            raise Skip(f"field `{name}` must be a non-negative integer or a list of {n}")
        return list(v)
    return [field(case, name)] * n


def _uniform(shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) * 2.0 - 1.0) * scale


# ---------------------------------------------------------------- gemm

def run_gemm(case, name, target_s):
    m, n, k = field(case, "m"), field(case, "n"), field(case, "k")
    ta, tb = flag(case, "ta"), flag(case, "tb")
    a = _uniform((k, m) if ta else (m, k), 1)
    b = _uniform((n, k) if tb else (k, n), 2)
    a_op = a.t() if ta else a
    b_op = b.t() if tb else b
    c = torch.empty(m, n)
    torch.mm(a_op, b_op, out=c)
    t = time_median(target_s, lambda: torch.mm(a_op, b_op, out=c))
    return [record("gemm", name, "forward", t, flops=2.0 * m * n * k)]


# ---------------------------------------------------------------- conv2d

def conv_params(case):
    """Fields as src/bench/conv2d.rs reads them (plus per-axis lists): returns
    dims, stride (h, w), padding (top, bottom, left, right), dilation (h, w), groups."""
    dims = [field(case, f) for f in ("n", "c", "h", "w", "k", "r", "s")]
    sh, sw = _axes(case, "stride", 1)
    dh, dw = _axes(case, "dilation", 1)
    pad = case.get("pad", 0)
    if isinstance(pad, list) and len(pad) == 4:
        pt, pb, pl, pr = _axes(case, "pad", 0, 4)
    else:
        ph, pw = _axes(case, "pad", 0)
        ph, pw = opt(case, "pad_h", ph), opt(case, "pad_w", pw)
        pt, pb, pl, pr = ph, ph, pw, pw
    pt, pb = opt(case, "pad_top", pt), opt(case, "pad_bottom", pb)
    pl, pr = opt(case, "pad_left", pl), opt(case, "pad_right", pr)
    sh, sw = opt(case, "stride_h", sh), opt(case, "stride_w", sw)
    dh, dw = opt(case, "dilation_h", dh), opt(case, "dilation_w", dw)
    groups = opt(case, "groups", 1)
    return dims, (sh, sw), (pt, pb, pl, pr), (dh, dw), groups


def run_conv2d(case, name, target_s):
    (n, c, h, w, k, r, s), (sh, sw), (pt, pb, pl, pr), (dh, dw), g = conv_params(case)
    if min(n, c, h, w, k, r, s, sh, sw, dh, dw, g) == 0:
        raise Skip("zero size, stride, dilation or groups")
    if c % g or k % g:
        raise Skip(f"channels {c} -> {k} not divisible by groups {g}")

    def out_dim(length, lo, hi, ker, dil, st):
        span = dil * (ker - 1) + 1
        if span > length + lo + hi:
            raise Skip(f"dilated kernel extent {span} is larger than the padded input "
                       f"extent {length + lo + hi}")
        return (length + lo + hi - span) // st + 1

    oh = out_dim(h, pt, pb, r, dh, sh)
    ow = out_dim(w, pl, pr, s, dw, sw)
    flops = 2.0 * n * k * oh * ow * (c // g) * r * s

    x = _uniform((n, c, h, w), 1)
    wt = _uniform((k, c // g, r, s), 2)
    bias = _uniform((k,), 3)
    dy = _uniform((n, k, oh, ow), 4)

    # PyTorch pads symmetrically; asymmetric padding is a symmetric pad of the smaller side
    # plus an explicit F.pad of the rest (what PyTorch itself does for padding="same"). The
    # forward times the F.pad; backward_weight uses the padded input autograd would have
    # saved; backward_data computes the padded input's gradient and crops it (a copy).
    ph, pw = min(pt, pb), min(pl, pr)
    extra = (pl - pw, pr - pw, pt - ph, pb - ph)  # F.pad order: left, right, top, bottom
    asym = any(extra)
    xp = F.pad(x, extra) if asym else x
    hp, wp = xp.shape[2], xp.shape[3]
    stride, padding, dilation = [sh, sw], [ph, pw], [dh, dw]

    def fwd():
        with torch.no_grad():
            inp = F.pad(x, extra) if asym else x
            return F.conv2d(inp, wt, bias, stride, padding, dilation, g)

    def bwd_data():
        dxp = aten.convolution_backward(dy, xp, wt, [k], stride, padding, dilation,
                                        False, [0, 0], g, [True, False, False])[0]
        if asym:
            return dxp[:, :, pt - ph:hp - (pb - ph), pl - pw:wp - (pr - pw)].contiguous()
        return dxp

    def bwd_weight():
        return aten.convolution_backward(dy, xp, wt, [k], stride, padding, dilation,
                                         False, [0, 0], g, [False, True, True])

    y = fwd()
    if tuple(y.shape) != (n, k, oh, ow):
        raise Skip(f"PyTorch output shape {tuple(y.shape)} differs from {(n, k, oh, ow)}")
    if tuple(bwd_data().shape) != (n, c, h, w):
        raise Skip("PyTorch input-gradient shape differs from the input")
    bwd_weight()

    out = [record("conv2d", name, "forward", time_median(target_s, fwd), flops=flops)]
    out.append(record("conv2d", name, "backward_data", time_median(target_s, bwd_data),
                      flops=flops))
    out.append(record("conv2d", name, "backward_weight", time_median(target_s, bwd_weight),
                      flops=flops))
    return out


# ---------------------------------------------------------------- pool2d

def run_pool2d(case, name, target_s):
    n, c, h, w = (field(case, f) for f in ("n", "c", "h", "w"))
    r, s = field(case, "r"), field(case, "s")
    sth, stw = _axes(case, "stride", None) if "stride" in case else (None, None)
    ph, pw = _axes(case, "pad", None) if "pad" in case else (None, None)
    if sth is None or ph is None:  # nnkern-bench requires both
        raise Skip("field `stride` or `pad` missing")
    kind = text(case, "kind")
    if kind not in ("max", "avg"):
        raise Skip(f"unknown pooling kind `{kind}` (expected max or avg)")
    # nnkern-bench always counts padded cells (PyTorch's default); honoured here if given.
    cip = case.get("count_include_pad", True)
    cip = cip if isinstance(cip, bool) else True
    if min(n, c, h, w, r, s, sth, stw) == 0:
        raise Skip("zero size, kernel or stride")
    if ph >= r or pw >= s:
        raise Skip("padding must be smaller than the kernel")
    oh = (h + 2 * ph - r) // sth + 1
    ow = (w + 2 * pw - s) // stw + 1
    il, ol = n * c * h * w, n * c * oh * ow
    nbytes = 4.0 * (il + ol)
    ks, st, pd = [r, s], [sth, stw], [ph, pw]

    x = _uniform((n, c, h, w), 1)
    dy = _uniform((n, c, oh, ow), 2)
    x_cl = x.contiguous(memory_format=torch.channels_last)

    if kind == "max":
        def fwd_of(inp):
            def f():
                with torch.no_grad():
                    return F.max_pool2d(inp, ks, st, pd, 1, False, return_indices=True)
            return f
        _, idx = fwd_of(x)()

        def bwd():
            return aten.max_pool2d_with_indices_backward(dy, x, ks, st, pd, [1, 1], False, idx)
    else:
        def fwd_of(inp):
            def f():
                with torch.no_grad():
                    return F.avg_pool2d(inp, ks, st, pd, False, cip)
            return f

        def bwd():
            return aten.avg_pool2d_backward(dy, x, ks, st, pd, False, cip, None)

    y = fwd_of(x)()
    y = y[0] if isinstance(y, tuple) else y
    if tuple(y.shape) != (n, c, oh, ow):
        raise Skip(f"PyTorch output shape {tuple(y.shape)} differs from {(n, c, oh, ow)}")
    bwd()
    fwd_cl = fwd_of(x_cl)
    fwd_cl()
    return [
        record("pool2d", name, "forward", time_median(target_s, fwd_of(x)), nbytes=nbytes),
        record("pool2d", name, "backward", time_median(target_s, bwd), nbytes=nbytes),
        record("pool2d", name, "forward", time_median(target_s, fwd_cl), nbytes=nbytes,
               backend="pytorch_cl"),
    ]


# ---------------------------------------------------------------- eltwise

def _eltwise_fns(op, x, y, dy, dx):
    """(forward, backward) closures writing into y and dx, or None for an unknown op.
    relu's forward is clamp_min(x, 0): ATen's relu is exactly that kernel, and only
    clamp_min has an out= variant."""
    nn = torch._C._nn
    table = {
        "relu": (lambda: torch.clamp_min(x, 0, out=y),
                 lambda: aten.threshold_backward.grad_input(dy, x, 0, grad_input=dx),
                 lambda: torch.relu(x),
                 lambda: aten.threshold_backward(dy, x, 0)),
        "sigmoid": (lambda: torch.sigmoid(x, out=y),
                    lambda: aten.sigmoid_backward.grad_input(dy, y, grad_input=dx),
                    lambda: torch.sigmoid(x),
                    lambda: aten.sigmoid_backward(dy, y)),
        "tanh": (lambda: torch.tanh(x, out=y),
                 lambda: aten.tanh_backward.grad_input(dy, y, grad_input=dx),
                 lambda: torch.tanh(x),
                 lambda: aten.tanh_backward(dy, y)),
        "gelu": (lambda: nn.gelu(x, approximate="none", out=y),
                 lambda: aten.gelu_backward.grad_input(dy, x, approximate="none", grad_input=dx),
                 lambda: F.gelu(x, approximate="none"),
                 lambda: aten.gelu_backward(dy, x, approximate="none")),
        "gelu_tanh": (lambda: nn.gelu(x, approximate="tanh", out=y),
                      lambda: aten.gelu_backward.grad_input(dy, x, approximate="tanh",
                                                            grad_input=dx),
                      lambda: F.gelu(x, approximate="tanh"),
                      lambda: aten.gelu_backward(dy, x, approximate="tanh")),
        "leaky_relu": (lambda: nn.leaky_relu(x, 0.01, out=y),
                       lambda: aten.leaky_relu_backward.grad_input(dy, x, 0.01, False,
                                                                   grad_input=dx),
                       lambda: F.leaky_relu(x, 0.01),
                       lambda: aten.leaky_relu_backward(dy, x, 0.01, False)),
        "elu": (lambda: nn.elu(x, 1.0, 1, 1, out=y),
                lambda: aten.elu_backward.grad_input(dy, 1.0, 1, 1, False, x, grad_input=dx),
                lambda: F.elu(x, 1.0),
                lambda: aten.elu_backward(dy, 1.0, 1, 1, False, x)),
        "silu": (lambda: nn.silu(x, out=y),
                 lambda: aten.silu_backward.grad_input(dy, x, grad_input=dx),
                 lambda: F.silu(x),
                 lambda: aten.silu_backward(dy, x)),
        "softplus": (lambda: nn.softplus(x, 1, 20, out=y),
                     lambda: aten.softplus_backward.grad_input(dy, x, 1, 20, grad_input=dx),
                     lambda: F.softplus(x, 1, 20),
                     lambda: aten.softplus_backward(dy, x, 1, 20)),
    }
    table["swish"] = table["silu"]
    if op not in table:
        return None
    fwd_out, bwd_out, fwd_fn, bwd_fn = table[op]

    def pick(preferred, fallback):
        try:
            preferred()
            return preferred
        except (RuntimeError, TypeError, AttributeError):
            fallback()
            return fallback
    fwd = pick(fwd_out, fwd_fn)
    y.copy_(fwd_fn())  # backward ops that read y see the forward output
    return fwd, pick(bwd_out, bwd_fn)


def run_eltwise(case, name, target_s):
    length = field(case, "len")
    op = text(case, "op")
    x = _uniform((length,), 1, 4.0)  # [-4, 4) as nnkern-bench: every branch taken
    y = torch.empty(length)
    if op == "copy":
        def copy():
            y.copy_(x)
        return [record("eltwise", name, "forward", time_median(target_s, copy),
                       nbytes=8.0 * length)]
    dy = _uniform((length,), 2)
    dx = torch.empty(length)
    fns = _eltwise_fns(op, x, y, dy, dx)
    if fns is None:
        raise Skip(f"unknown activation `{op}`")
    fwd, bwd = fns

    def fwd_ng():
        with torch.no_grad():
            return fwd()
    return [
        record("eltwise", name, "forward", time_median(target_s, fwd_ng), nbytes=8.0 * length),
        record("eltwise", name, "backward", time_median(target_s, bwd), nbytes=12.0 * length),
    ]


# ---------------------------------------------------------------- softmax_xent

def run_softmax_xent(case, name, target_s):
    n, c = field(case, "n"), field(case, "classes")
    if n == 0 or c == 0:
        raise Skip("zero batch or classes")
    logits = _uniform((n, c), 1, 8.0)
    labels = torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(2),
                           dtype=torch.int64)
    lg = logits.clone().requires_grad_(True)

    def fwd():
        with torch.no_grad():
            return F.cross_entropy(logits, labels)

    def fwd_bwd():
        lg.grad = None
        loss = F.cross_entropy(lg, labels)
        loss.backward()
        return loss

    fwd()
    fwd_bwd()
    return [
        record("softmax_xent", name, "forward", time_median(target_s, fwd),
               nbytes=4.0 * n * c),
        record("softmax_xent", name, "forward_backward", time_median(target_s, fwd_bwd),
               nbytes=8.0 * n * c),
    ]


# ---------------------------------------------------------------- train_step

SEED_CNN = ("conv(1->32,3x3) relu maxpool2 conv(32->64,3x3) relu maxpool2 flatten "
            "dense(1600->128) relu dense(128->10); softmax cross-entropy; Adam lr=1e-3")
MLP = "dense(784->128) relu dense(128->10); softmax cross-entropy; SGD lr=0.1 momentum=0.9"


def _normalize(s):
    return " ".join(s.split()).lower()


def run_train_step(case, name, target_s):
    n = field(case, "batch")
    desc = _normalize(text(case, "model"))
    nn = torch.nn
    torch.manual_seed(1)
    if desc == _normalize(MLP):
        model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        opt_ = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sample, classes = (784,), 10
        flops_per_sample = 2.0 * (2.0 * 784.0 * 128.0 + 3.0 * 128.0 * 10.0)
    elif desc == _normalize(SEED_CNN):
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
        opt_ = torch.optim.Adam(model.parameters(), lr=1e-3)
        sample, classes = (1, 28, 28), 10
        conv1 = 26.0 * 26.0 * 32.0 * 9.0
        rest = 11.0 * 11.0 * 64.0 * 288.0 + 1600.0 * 128.0 + 128.0 * 10.0
        flops_per_sample = 2.0 * (2.0 * conv1 + 3.0 * rest)
    else:
        raise Skip(f"unknown model `{text(case, 'model')}` "
                   "(train_step knows the seed CNN and the MLP)")
    x = _uniform((n,) + sample, 5)
    labels = torch.arange(n, dtype=torch.int64) % classes

    def step():
        opt_.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt_.step()
        return loss

    first = step().item()
    for _ in range(4):
        last = step().item()
    if not (math.isfinite(first) and last < first):
        raise Skip(f"spot check: loss did not fall ({first} -> {last})")
    return [record("train_step", name, "step", time_median(target_s, step),
                   flops=flops_per_sample * n)]


# ---------------------------------------------------------------- driver

RUNNERS = {
    "gemm": run_gemm,
    "conv2d": run_conv2d,
    "pool2d": run_pool2d,
    "eltwise": run_eltwise,
    "softmax_xent": run_softmax_xent,
    "train_step": run_train_step,
}


def main():
    try:
        with open(ARGS.suite) as fh:
            suite = json.load(fh)
    except OSError as e:
        sys.exit(f"torch_bench: cannot read suite file {ARGS.suite}: {e}")
    except ValueError as e:
        sys.exit(f"torch_bench: suite file {ARGS.suite} is not valid JSON: {e}")
    if not isinstance(suite, dict):
        sys.exit("torch_bench: suite file must hold a JSON object of op sections")
    # Sections in sorted order, as nnkern-bench's serde_json map iterates them.
    for op in sorted(suite):
        if op == "about" or (ARGS.ops and op not in ARGS.ops):
            continue
        section = suite[op]
        if isinstance(section, list):
            cases = section
        elif isinstance(section, dict):
            cases = [section]
        else:
            continue
        for case in cases:
            cname = case.get("name") if isinstance(case, dict) else None
            cname = cname if isinstance(cname, str) else "unnamed"
            if ARGS.cases and cname not in ARGS.cases:
                continue
            try:
                if not isinstance(case, dict):
                    raise Skip("case is not a JSON object")
                runner = RUNNERS.get(op)
                if runner is None:
                    raise Skip(f"op `{op}` is not implemented")
                for rec in runner(case, cname, ARGS.target_s):
                    emit(rec)
            except Skip as e:
                print(f"skipped {op}/{cname}: {e}", file=sys.stderr)
            except Exception as e:  # a PyTorch error, out of memory, ...: skip, never crash
                print(f"skipped {op}/{cname}: {type(e).__name__}: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
