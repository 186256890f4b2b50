//! Table-driven bad input for every public function of `nnkern-kernels`: each row is one call
//! with one thing wrong (a wrong length, a zero or overflowing dimension, an out-of-range
//! label or index, a bad descriptor or hyperparameter) and the specific error it must return,
//! naming the argument. Kernels taking a backend run the table on `Native`, `Reference` and
//! (where it runs the native code) `OpenBlas`. A panic anywhere fails the test.

use nnkern_kernels::activation::*;
use nnkern_kernels::conv::*;
use nnkern_kernels::error::{check_len, check_min_len, checked_mul, checked_product};
use nnkern_kernels::loss::*;
use nnkern_kernels::optim::reference as optim_ref;
use nnkern_kernels::optim::*;
use nnkern_kernels::pool::*;
use nnkern_kernels::simd::math::{eval, MathFn};
use nnkern_kernels::simd::Isa;
use nnkern_kernels::KernelError::{self, *};
use nnkern_kernels::{gemm, gemm_reference, Backend, Gemm, Reduction, SoftmaxXent};

/// Collects the rows whose call did not fail with the expected error.
struct Table(Vec<String>);

impl Table {
    fn new() -> Table {
        Table(Vec::new())
    }
    fn row<T: std::fmt::Debug>(
        &mut self,
        name: &str,
        got: Result<T, KernelError>,
        want: impl Fn(&KernelError) -> bool,
    ) {
        match &got {
            Err(e) if want(e) => {
                // Every error has a message naming its argument.
                assert!(!e.to_string().is_empty());
            }
            _ => self.0.push(format!("{name}: got {got:?}")),
        }
    }
    fn check(self) {
        assert!(self.0.is_empty(), "rows failed:\n{}", self.0.join("\n"));
    }
}

/// `matches!` on one error pattern, as a closure.
macro_rules! is {
    ($p:pat) => {
        |e: &KernelError| matches!(e, $p)
    };
}

const BACKENDS: [Backend; 2] = [Backend::Native, Backend::Reference];

#[test]
fn gemm_table() {
    let mut t = Table::new();
    let (a, b, mut c) = (vec![0.0f32; 6], vec![0.0f32; 6], vec![0.0f32; 4]);
    let g = Gemm::<f32>::new(2, 2, 3);
    for be in BACKENDS {
        let n = format!("{be:?}");
        t.row(
            &n,
            gemm(be, &g, &a[..5], &b, &mut c),
            is!(BufferTooShort {
                arg: "a",
                expected: 6,
                got: 5
            }),
        );
        t.row(
            &n,
            gemm(be, &g, &a, &b[..5], &mut c),
            is!(BufferTooShort {
                arg: "b",
                expected: 6,
                got: 5
            }),
        );
        t.row(
            &n,
            gemm(be, &g, &a, &b, &mut c[..3]),
            is!(BufferTooShort {
                arg: "c",
                expected: 4,
                got: 3
            }),
        );
        t.row(
            &n,
            gemm(be, &g.lda(2), &a, &b, &mut c),
            is!(LeadingDimension {
                arg: "lda",
                min: 3,
                got: 2
            }),
        );
        t.row(
            &n,
            gemm(be, &g.ldb(1), &a, &b, &mut c),
            is!(LeadingDimension {
                arg: "ldb",
                min: 2,
                got: 1
            }),
        );
        t.row(
            &n,
            gemm(be, &g.ldc(0), &a, &b, &mut c),
            is!(LeadingDimension {
                arg: "ldc",
                min: 2,
                got: 0
            }),
        );
        // Transposed A is stored [k, m]: lda must be at least m.
        t.row(
            &n,
            gemm(be, &g.trans_a(true).lda(1), &a, &b, &mut c),
            is!(LeadingDimension {
                arg: "lda",
                min: 2,
                ..
            }),
        );
        // A padded lda makes A need (rows - 1) * lda + cols elements.
        t.row(
            &n,
            gemm(be, &g.lda(5), &a, &b, &mut c),
            is!(BufferTooShort {
                arg: "a",
                expected: 8,
                ..
            }),
        );
        let huge = Gemm::<f32>::new(usize::MAX, 2, 0);
        t.row(
            &n,
            gemm(be, &huge, &[], &[], &mut c),
            is!(Overflow { arg: "c" }),
        );
        let huge = Gemm::<f32>::new(2, 2, usize::MAX).ldb(usize::MAX);
        t.row(
            &n,
            gemm(be, &huge, &a, &b, &mut c),
            is!(BufferTooShort { arg: "a", .. } | Overflow { .. }),
        );
        let g64 = Gemm::<f64>::new(1, 1, 1);
        t.row(
            &n,
            gemm(be, &g64, &[], &[1.0], &mut [0.0]),
            is!(BufferTooShort { arg: "a", .. }),
        );
    }
    #[cfg(not(feature = "openblas"))]
    t.row(
        "openblas",
        gemm(Backend::OpenBlas, &g, &a, &b, &mut c),
        is!(BackendUnavailable {
            backend: "openblas"
        }),
    );
    t.row(
        "reference",
        gemm_reference(&g, &a, &b, &mut c[..1]),
        is!(BufferTooShort { arg: "c", .. }),
    );
    t.row(
        "validate",
        g.validate(6, 6, 3),
        is!(BufferTooShort { arg: "c", .. }),
    );
    t.check();
}

fn conv_params() -> Conv2dParams {
    // x [2, 4, 5, 5], w [6, 2, 3, 3] (groups 2), stride 1, pad 1: y [2, 6, 5, 5].
    Conv2dParams::builder(2, 4, 5, 5, 6, 3, 3)
        .pad(1, 1)
        .groups(2)
        .build()
        .unwrap()
}

#[test]
fn conv_descriptor_table() {
    let mut t = Table::new();
    let b = Conv2dParams::builder(1, 4, 5, 5, 6, 3, 3);
    for (name, bad) in [
        ("c", Conv2dParams::builder(1, 0, 5, 5, 6, 3, 3)),
        ("h", Conv2dParams::builder(1, 4, 0, 5, 6, 3, 3)),
        ("w", Conv2dParams::builder(1, 4, 5, 0, 6, 3, 3)),
        ("k", Conv2dParams::builder(1, 4, 5, 5, 0, 3, 3)),
        ("r", Conv2dParams::builder(1, 4, 5, 5, 6, 0, 3)),
        ("s", Conv2dParams::builder(1, 4, 5, 5, 6, 3, 0)),
        ("stride_h", b.stride(0, 1)),
        ("stride_w", b.stride(1, 0)),
        ("dilation_h", b.dilation(0, 1)),
        ("dilation_w", b.dilation(1, 0)),
        ("groups", b.groups(0)),
        ("c", b.groups(3)),
        ("k", Conv2dParams::builder(1, 4, 5, 5, 5, 3, 3).groups(2)),
        ("r", Conv2dParams::builder(1, 4, 2, 5, 6, 3, 3)),
        ("s", b.dilation(1, 3)),
    ] {
        t.row(
            name,
            bad.build(),
            |e| matches!(e, InvalidParam { arg, .. } if *arg == name),
        );
    }
    let over = [
        Conv2dParams::builder(usize::MAX, 4, 5, 5, 6, 3, 3),
        Conv2dParams::builder(1, 1 << 40, 1 << 20, 1 << 20, 1, 1, 1),
        // An empty batch of images too large to index (found by the conv fuzz target).
        Conv2dParams::builder(0, 1 << 40, 1 << 20, 1 << 20, 1, 1, 1),
        Conv2dParams::builder(0, 1, 1 << 32, 1 << 32, 1 << 8, 1, 1),
        b.pad(usize::MAX, 0),
        b.padding(0, 0, usize::MAX - 2, 3),
    ];
    for (i, bad) in over.into_iter().enumerate() {
        t.row(&format!("overflow {i}"), bad.build(), is!(Overflow { .. }));
    }
    // Strides and dilations above 2^31 - 1 are refused (the stencils step with signed
    // arithmetic; a stride of 2^63 wrapped negative, found by the conv fuzz target in CI).
    let steps = [
        ("dilation_h", b.dilation(usize::MAX, 1)),
        ("stride_h", b.stride(usize::MAX, 1).pad(usize::MAX / 2, 0)),
        ("stride_w", b.stride(1, 1 << 63)),
        ("dilation_w", b.dilation(1, (i32::MAX as usize) + 1)),
    ];
    for (name, bad) in steps {
        t.row(
            name,
            bad.build(),
            |e| matches!(e, InvalidParam { arg, .. } if *arg == name),
        );
    }
    // Transposed: PyTorch's arguments.
    let tnew = |input, c_out, kernel, stride, padding, dilation, opad, groups| {
        ConvTranspose2dParams::new(
            input, c_out, kernel, stride, padding, dilation, opad, groups,
        )
    };
    let one = (1, 1);
    let none = (0, 0, 0, 0);
    t.row(
        "t c_in",
        tnew([1, 0, 3, 3], 2, (2, 2), one, none, one, (0, 0), 1),
        is!(InvalidParam { arg: "c_in", .. }),
    );
    t.row(
        "t c_out",
        tnew([1, 2, 3, 3], 0, (2, 2), one, none, one, (0, 0), 1),
        is!(InvalidParam { arg: "c_out", .. }),
    );
    t.row(
        "t h",
        tnew([1, 2, 0, 3], 2, (2, 2), one, none, one, (0, 0), 1),
        is!(InvalidParam { arg: "h", .. }),
    );
    t.row(
        "t groups",
        tnew([1, 2, 3, 3], 2, (2, 2), one, none, one, (0, 0), 0),
        is!(InvalidParam { arg: "groups", .. }),
    );
    t.row(
        "t divisible",
        tnew([1, 3, 3, 3], 2, (2, 2), one, none, one, (0, 0), 2),
        is!(InvalidParam { arg: "c_in", .. }),
    );
    t.row(
        "t output_padding",
        tnew([1, 2, 3, 3], 2, (2, 2), (2, 2), none, one, (2, 0), 1),
        is!(InvalidParam {
            arg: "output_padding_h",
            ..
        }),
    );
    t.row(
        "t padding",
        tnew([1, 2, 1, 1], 2, (1, 1), one, (1, 1, 0, 0), one, (0, 0), 1),
        is!(InvalidParam { arg: "padding", .. }),
    );
    t.row(
        "t kernel",
        tnew([1, 2, 3, 3], 2, (0, 2), one, none, one, (0, 0), 1),
        is!(InvalidParam { arg: "r", .. }),
    );
    t.row(
        "t stride",
        tnew([1, 2, 3, 3], 2, (2, 2), (0, 1), none, one, (0, 0), 1),
        is!(InvalidParam { .. }),
    );
    t.row(
        "t overflow",
        tnew(
            [1, 2, usize::MAX, 3],
            2,
            (2, 2),
            (2, 1),
            none,
            one,
            (0, 0),
            1,
        ),
        is!(Overflow { .. }),
    );
    t.row(
        "t huge pad",
        tnew(
            [1, 2, 3, 3],
            2,
            (2, 2),
            one,
            (usize::MAX, usize::MAX, 0, 0),
            one,
            (0, 0),
            1,
        ),
        is!(Overflow { .. } | InvalidParam { .. }),
    );
    t.row(
        "t huge opad",
        tnew(
            [1, 2, 3, 3],
            2,
            (2, 2),
            (usize::MAX, 1),
            none,
            one,
            (usize::MAX - 1, 0),
            1,
        ),
        is!(Overflow { .. } | InvalidParam { .. }),
    );
    t.check();
}

#[test]
fn conv_pass_table() {
    let mut t = Table::new();
    let p = conv_params();
    let (xl, wl, yl, ws) = (
        p.input_len(),
        p.weight_len(),
        p.output_len(),
        p.workspace_len(),
    );
    let (x, w, y) = (vec![0.0f32; xl], vec![0.0f32; wl], vec![0.0f32; yl]);
    let mut ws_buf = vec![0.0f32; ws];
    let (mut out_x, mut out_w, mut out_y, mut db) =
        (x.clone(), w.clone(), y.clone(), vec![0.0f32; 6]);
    for be in BACKENDS {
        let n = format!("{be:?}");
        let wsb = &mut ws_buf;
        t.row(
            &n,
            conv2d_forward(be, &p, &x[1..], &w, None, &mut out_y, wsb),
            is!(BufferLength { arg: "x", .. }),
        );
        t.row(
            &n,
            conv2d_forward(be, &p, &x, &w[1..], None, &mut out_y, wsb),
            is!(BufferLength { arg: "w", .. }),
        );
        t.row(
            &n,
            conv2d_forward(be, &p, &x, &w, None, &mut out_y[1..], wsb),
            is!(BufferLength { arg: "y", .. }),
        );
        t.row(
            &n,
            conv2d_forward(be, &p, &x, &w, Some(&[0.0; 5]), &mut out_y, wsb),
            is!(BufferLength {
                arg: "bias",
                expected: 6,
                got: 5
            }),
        );
        if ws > 0 {
            t.row(
                &n,
                conv2d_forward(be, &p, &x, &w, None, &mut out_y, &mut wsb[1..]),
                is!(BufferTooShort { arg: "ws", .. }),
            );
        }
        t.row(
            &n,
            conv2d_backward_data(be, &p, &y[1..], &w, &mut out_x, wsb),
            is!(BufferLength { arg: "dy", .. }),
        );
        t.row(
            &n,
            conv2d_backward_data(be, &p, &y, &w[1..], &mut out_x, wsb),
            is!(BufferLength { arg: "w", .. }),
        );
        t.row(
            &n,
            conv2d_backward_data(be, &p, &y, &w, &mut out_x[1..], wsb),
            is!(BufferLength { arg: "dx", .. }),
        );
        t.row(
            &n,
            conv2d_backward_weight(be, &p, &x[1..], &y, &mut out_w, None, wsb),
            is!(BufferLength { arg: "x", .. }),
        );
        t.row(
            &n,
            conv2d_backward_weight(be, &p, &x, &y[1..], &mut out_w, None, wsb),
            is!(BufferLength { arg: "dy", .. }),
        );
        t.row(
            &n,
            conv2d_backward_weight(be, &p, &x, &y, &mut out_w[1..], None, wsb),
            is!(BufferLength { arg: "dw", .. }),
        );
        t.row(
            &n,
            conv2d_backward_weight(be, &p, &x, &y, &mut out_w, Some(&mut db[1..]), wsb),
            is!(BufferLength { arg: "dbias", .. }),
        );
        // Transposed convolution of the same descriptor: input is y-shaped, output x-shaped.
        let tp = ConvTranspose2dParams::from_conv(p);
        t.row(
            &n,
            conv_transpose2d_forward(be, &tp, &y[1..], &w, None, &mut out_x, wsb),
            is!(BufferLength { arg: "x", .. }),
        );
        t.row(
            &n,
            conv_transpose2d_forward(be, &tp, &y, &w, None, &mut out_x[1..], wsb),
            is!(BufferLength { arg: "y", .. }),
        );
        t.row(
            &n,
            conv_transpose2d_forward(be, &tp, &y, &w, Some(&[0.0; 6]), &mut out_x, wsb),
            is!(BufferLength {
                arg: "bias",
                expected: 4,
                ..
            }),
        );
        t.row(
            &n,
            conv_transpose2d_backward_data(be, &tp, &x, &w[1..], &mut out_y, wsb),
            is!(BufferLength { arg: "w", .. }),
        );
        t.row(
            &n,
            conv_transpose2d_backward_data(be, &tp, &x[1..], &w, &mut out_y, wsb),
            is!(BufferLength { arg: "dy", .. }),
        );
        t.row(
            &n,
            conv_transpose2d_backward_weight(be, &tp, &y, &x, &mut out_w[1..], None, wsb),
            is!(BufferLength { arg: "w", .. }),
        );
        t.row(
            &n,
            conv_transpose2d_backward_weight(be, &tp, &y, &x, &mut out_w, Some(&mut db), wsb),
            is!(BufferLength {
                arg: "dbias",
                expected: 4,
                ..
            }),
        );
    }
    #[cfg(not(feature = "openblas"))]
    t.row(
        "openblas",
        conv2d_forward(Backend::OpenBlas, &p, &x, &w, None, &mut out_y, &mut ws_buf),
        is!(BackendUnavailable { .. }),
    );
    let (x64, w64) = (vec![0.0f64; xl], vec![0.0f64; wl]);
    let mut y64 = vec![0.0f64; yl];
    t.row(
        "fwd ref",
        conv2d_forward_reference(&p, &x64[1..], &w64, None, &mut y64),
        is!(BufferLength { arg: "x", .. }),
    );
    t.row(
        "bwd data ref",
        conv2d_backward_data_reference(&p, &y64[1..], &w64, &mut x64.clone()),
        is!(BufferLength { arg: "dy", .. }),
    );
    t.row(
        "bwd weight ref",
        conv2d_backward_weight_reference(&p, &x64, &y64, &mut w64.clone(), Some(&mut [0.0; 2])),
        is!(BufferLength { arg: "dbias", .. }),
    );
    t.check();
}

#[test]
fn pool_table() {
    let mut t = Table::new();
    for (arg, input, kernel, stride, pad) in [
        ("h", [1, 1, 0, 4], [2, 2], [1, 1], [0, 0]),
        ("w", [1, 1, 4, 0], [2, 2], [1, 1], [0, 0]),
        ("kernel_h", [1, 1, 4, 4], [0, 2], [1, 1], [0, 0]),
        ("kernel_w", [1, 1, 4, 4], [2, 0], [1, 1], [0, 0]),
        ("stride_h", [1, 1, 4, 4], [2, 2], [0, 1], [0, 0]),
        ("stride_w", [1, 1, 4, 4], [2, 2], [1, 0], [0, 0]),
        ("pad_h", [1, 1, 4, 4], [2, 2], [1, 1], [2, 0]),
        ("pad_w", [1, 1, 4, 4], [2, 2], [1, 1], [0, 2]),
        ("kernel_h", [1, 1, 2, 4], [5, 2], [1, 1], [1, 0]),
        ("input", [1, 1, 1 << 17, 1 << 16], [1, 1], [1, 1], [0, 0]),
    ] {
        let got = Pool2dParams::new(input, kernel, stride, pad);
        t.row(
            arg,
            got,
            |e| matches!(e, InvalidParam { arg: a, .. } if *a == arg),
        );
    }
    let over = Pool2dParams::new([usize::MAX, 2, 4, 4], [2, 2], [2, 2], [0, 0]);
    t.row("overflow", over, is!(Overflow { arg: "input" }));
    let over = Pool2dParams::new([1, 1, 4, 4], [usize::MAX, 2], [2, 2], [usize::MAX - 1, 0]);
    t.row("pad overflow", over, is!(Overflow { arg: "pad_h" }));

    let p = Pool2dParams::new([1, 2, 4, 4], [2, 2], [2, 2], [0, 0]).unwrap();
    let (x, dy) = (vec![0.0f32; 32], vec![1.0f32; 8]);
    let (mut y, mut am, mut dx) = (vec![0.0f32; 8], vec![0u32; 8], vec![0.0f32; 32]);
    for be in [Backend::Native, Backend::Reference, Backend::OpenBlas] {
        let n = format!("{be:?}");
        t.row(
            &n,
            max_pool2d_forward(be, &p, &x[..31], &mut y, &mut am),
            is!(BufferTooShort {
                arg: "x",
                expected: 32,
                got: 31
            }),
        );
        t.row(
            &n,
            max_pool2d_forward(be, &p, &x, &mut y[..7], &mut am),
            is!(BufferTooShort { arg: "y", .. }),
        );
        t.row(
            &n,
            max_pool2d_forward(be, &p, &x, &mut y, &mut am[..7]),
            is!(BufferTooShort { arg: "argmax", .. }),
        );
        t.row(
            &n,
            max_pool2d_backward(be, &p, &dy[..7], &am, &mut dx),
            is!(BufferTooShort { arg: "dy", .. }),
        );
        t.row(
            &n,
            max_pool2d_backward(be, &p, &dy, &am[..7], &mut dx),
            is!(BufferTooShort { arg: "argmax", .. }),
        );
        t.row(
            &n,
            max_pool2d_backward(be, &p, &dy, &am, &mut dx[..31]),
            is!(BufferTooShort { arg: "dx", .. }),
        );
        // Argmax entries outside their window: offset 2 belongs to window 1, not window 0;
        // 16 is outside the 4x4 plane; u32::MAX anywhere.
        for bad in [2u32, 16, u32::MAX] {
            let mut a = vec![0u32, 2, 8, 10, 0, 2, 8, 10];
            a[0] = bad;
            t.row(
                &format!("{n} argmax {bad}"),
                max_pool2d_backward(be, &p, &dy, &a, &mut dx),
                is!(IndexOutOfRange { arg: "argmax", .. }),
            );
        }
        for cip in [false, true] {
            t.row(
                &n,
                avg_pool2d_forward(be, &p, cip, &x[..31], &mut y),
                is!(BufferTooShort { arg: "x", .. }),
            );
            t.row(
                &n,
                avg_pool2d_forward(be, &p, cip, &x, &mut y[..7]),
                is!(BufferTooShort { arg: "y", .. }),
            );
            t.row(
                &n,
                avg_pool2d_backward(be, &p, cip, &dy[..7], &mut dx),
                is!(BufferTooShort { arg: "dy", .. }),
            );
            t.row(
                &n,
                avg_pool2d_backward(be, &p, cip, &dy, &mut dx[..31]),
                is!(BufferTooShort { arg: "dx", .. }),
            );
        }
        let s = [1, 2, 4, 4];
        t.row(
            &n,
            global_avg_pool2d_forward(be, s, &x[..31], &mut y),
            is!(BufferTooShort { arg: "x", .. }),
        );
        t.row(
            &n,
            global_avg_pool2d_forward(be, s, &x, &mut y[..1]),
            is!(BufferTooShort { arg: "y", .. }),
        );
        t.row(
            &n,
            global_avg_pool2d_forward(be, [1, 2, 0, 4], &x, &mut y),
            is!(InvalidParam { arg: "shape", .. }),
        );
        t.row(
            &n,
            global_avg_pool2d_forward(be, [usize::MAX, 2, 4, 4], &x, &mut y),
            is!(Overflow { arg: "shape" }),
        );
        t.row(
            &n,
            global_avg_pool2d_backward(be, s, &dy[..1], &mut dx),
            is!(BufferTooShort { arg: "dy", .. }),
        );
        t.row(
            &n,
            global_avg_pool2d_backward(be, s, &dy, &mut dx[..31]),
            is!(BufferTooShort { arg: "dx", .. }),
        );
        t.row(
            &n,
            global_avg_pool2d_backward(be, [1, 1, 1 << 32, 1 << 32], &dy, &mut dx),
            is!(Overflow { .. }),
        );
    }
    let (x64, mut y64, mut d64) = (vec![0.0f64; 32], vec![0.0f64; 8], vec![0.0f64; 32]);
    t.row(
        "max ref",
        max_pool2d_forward_reference(&p, &x64[..1], &mut y64, &mut am),
        is!(BufferTooShort { arg: "x", .. }),
    );
    t.row(
        "max bwd ref",
        max_pool2d_backward_reference(&p, &y64, &[99u32; 8], &mut d64),
        is!(IndexOutOfRange { arg: "argmax", .. }),
    );
    t.row(
        "avg ref",
        avg_pool2d_forward_reference(&p, true, &x64, &mut y64[..1]),
        is!(BufferTooShort { arg: "y", .. }),
    );
    t.row(
        "avg bwd ref",
        avg_pool2d_backward_reference(&p, true, &y64, &mut d64[..1]),
        is!(BufferTooShort { arg: "dx", .. }),
    );
    t.row(
        "global ref",
        global_avg_pool2d_forward_reference([1, 2, 4, 0], &x64, &mut y64),
        is!(InvalidParam { .. }),
    );
    t.row(
        "global bwd ref",
        global_avg_pool2d_backward_reference([1, 2, 4, 4], &y64[..1], &mut d64),
        is!(BufferTooShort { arg: "dy", .. }),
    );
    t.check();
}

#[test]
fn activation_and_softmax_table() {
    let mut t = Table::new();
    let bad_acts = [
        (Activation::LeakyRelu(f32::NAN), "slope"),
        (Activation::LeakyRelu(f32::INFINITY), "slope"),
        (Activation::Elu(-1.0), "alpha"),
        (Activation::Elu(f32::NAN), "alpha"),
        (Activation::Elu(f32::NEG_INFINITY), "alpha"),
    ];
    let (x, dy) = ([0.5f32; 4], [1.0f32; 4]);
    let (mut y, mut dx) = ([0.0f32; 4], [0.0f32; 4]);
    for be in [Backend::Native, Backend::Reference, Backend::OpenBlas] {
        let n = format!("{be:?}");
        for (act, arg) in bad_acts {
            let want = |e: &KernelError| matches!(e, InvalidParam { arg: a, .. } if *a == arg);
            t.row(&n, act.validate(), want);
            t.row(&n, activation_forward(be, act, &x, &mut y), want);
            t.row(&n, activation_forward_inplace(be, act, &mut y), want);
            t.row(&n, activation_backward(be, act, &x, &x, &dy, &mut dx), want);
            t.row(
                &n,
                activation_backward_inplace(be, act, &x, &x, &mut dx),
                want,
            );
        }
        for act in [Activation::Relu, Activation::Gelu] {
            // ReLU reads y, GELU reads x: the one read must match dy.
            let saved = if act.backward_uses_output() { "y" } else { "x" };
            let want_saved =
                |e: &KernelError| matches!(e, BufferLength { arg, .. } if *arg == saved);
            t.row(
                &n,
                activation_forward(be, act, &x, &mut y[..3]),
                is!(BufferLength {
                    arg: "y",
                    expected: 4,
                    got: 3
                }),
            );
            t.row(
                &n,
                activation_backward(be, act, &x, &x, &dy, &mut dx[..3]),
                is!(BufferLength { arg: "dx", .. }),
            );
            t.row(
                &n,
                activation_backward(be, act, &x[..3], &x[..3], &dy, &mut dx),
                want_saved,
            );
            t.row(
                &n,
                activation_backward_inplace(be, act, &x[..3], &x[..3], &mut dx),
                want_saved,
            );
        }
        t.row(
            &n,
            softmax_forward(be, 2, 2, &x[..3], &mut y),
            is!(BufferLength { arg: "x", .. }),
        );
        t.row(
            &n,
            softmax_forward(be, 2, 2, &x, &mut y[..3]),
            is!(BufferLength { arg: "y", .. }),
        );
        t.row(
            &n,
            log_softmax_forward(be, usize::MAX, 2, &x, &mut y),
            is!(Overflow { arg: "rows * cols" }),
        );
        t.row(
            &n,
            softmax_backward(be, 2, 2, &x[..3], &dy, &mut dx),
            is!(BufferLength { arg: "y", .. }),
        );
        t.row(
            &n,
            softmax_backward(be, 2, 2, &x, &dy[..3], &mut dx),
            is!(BufferLength { arg: "dy", .. }),
        );
        t.row(
            &n,
            log_softmax_backward(be, 2, 2, &x, &dy, &mut dx[..3]),
            is!(BufferLength { arg: "dx", .. }),
        );
        t.row(
            &n,
            log_softmax_backward(be, 4, 2, &x, &dy, &mut dx),
            is!(BufferLength {
                arg: "y",
                expected: 8,
                ..
            }),
        );
    }
    let (x64, mut y64) = ([0.0f64; 4], [0.0f64; 4]);
    t.row(
        "fwd ref",
        activation_forward_reference(Activation::Elu(-2.0), &x64, &mut y64),
        is!(InvalidParam { arg: "alpha", .. }),
    );
    t.row(
        "fwd ref len",
        activation_forward_reference(Activation::Tanh, &x64[..3], &mut y64),
        is!(BufferLength { arg: "y", .. }),
    );
    t.row(
        "bwd ref len",
        activation_backward_reference(Activation::Silu, &x64[..3], &x64, &x64, &mut y64),
        is!(BufferLength { arg: "x", .. }),
    );
    t.row(
        "bwd ref dx",
        activation_backward_reference(Activation::Silu, &x64, &x64, &x64, &mut y64[..1]),
        is!(BufferLength { arg: "dx", .. }),
    );
    t.row(
        "softmax ref",
        softmax_forward_reference(3, 2, &x64, &mut y64),
        is!(BufferLength { arg: "x", .. }),
    );
    t.row(
        "log_softmax ref",
        log_softmax_forward_reference(usize::MAX, 3, &x64, &mut y64),
        is!(Overflow { .. }),
    );
    t.row(
        "softmax bwd ref",
        softmax_backward_reference(2, 2, &x64, &x64[..1], &mut y64),
        is!(BufferLength { arg: "dy", .. }),
    );
    t.row(
        "log_softmax bwd ref",
        log_softmax_backward_reference(2, 2, &x64, &x64, &mut y64[..1]),
        is!(BufferLength { arg: "dx", .. }),
    );
    t.row(
        "math eval",
        eval(MathFn::Exp, &[1.0; 3], &mut [0.0; 2]),
        is!(BufferLength { arg: "y", .. }),
    );
    t.check();
    assert_eq!(Activation::parse("relu6"), None);
    assert_eq!(Backend::parse("cuda"), None);
    assert_eq!(Isa::parse("avx1024"), None);
}

#[test]
fn loss_table() {
    let mut t = Table::new();
    let x = [0.0f32; 6];
    let mut g = [0.0f32; 6];
    let p = SoftmaxXent::new(2, 3);
    for be in [Backend::Native, Backend::Reference, Backend::OpenBlas] {
        let n = format!("{be:?}");
        let sx = |p: &SoftmaxXent, x: &[f32], l: &[i64], g: Option<&mut [f32]>| {
            softmax_cross_entropy(be, p, x, l, g)
        };
        t.row(
            &n,
            sx(&p, &x[..5], &[0, 1], None),
            is!(BufferLength {
                arg: "logits",
                expected: 6,
                got: 5
            }),
        );
        t.row(
            &n,
            sx(&p, &x, &[0], None),
            is!(BufferLength {
                arg: "labels",
                expected: 2,
                got: 1
            }),
        );
        t.row(
            &n,
            sx(&p, &x, &[0, 1], Some(&mut g[..5])),
            is!(BufferLength { arg: "dlogits", .. }),
        );
        t.row(
            &n,
            sx(&p, &x, &[0, 3], None),
            is!(IndexOutOfRange {
                arg: "labels",
                index: 3,
                bound: 3
            }),
        );
        t.row(
            &n,
            sx(&p, &x, &[-1, 0], None),
            is!(IndexOutOfRange {
                arg: "labels",
                index: -1,
                ..
            }),
        );
        t.row(
            &n,
            sx(&p, &x, &[i64::MIN, 0], None),
            is!(IndexOutOfRange { arg: "labels", .. }),
        );
        // -100 is only skipped when it is the ignore index.
        t.row(
            &n,
            sx(&p, &x, &[-100, 0], None),
            is!(IndexOutOfRange {
                arg: "labels",
                index: -100,
                ..
            }),
        );
        t.row(
            &n,
            sx(&p.ignore_index(Some(0)), &x, &[0, 5], None),
            is!(IndexOutOfRange { index: 5, .. }),
        );
        for eps in [-0.1, 1.5, f32::NAN, f32::INFINITY] {
            t.row(
                &n,
                sx(&p.label_smoothing(eps), &x, &[0, 1], None),
                is!(InvalidParam {
                    arg: "label_smoothing",
                    ..
                }),
            );
        }
        t.row(
            &n,
            sx(&SoftmaxXent::new(2, 0), &[], &[0, 0], None),
            is!(InvalidParam { arg: "classes", .. }),
        );
        t.row(
            &n,
            sx(&SoftmaxXent::new(usize::MAX, 2), &x, &[0], None),
            is!(Overflow { arg: "n * classes" }),
        );
        let big = softmax_cross_entropy(be, &p, &x, &[0usize, usize::MAX], None);
        t.row(
            &n,
            big,
            is!(IndexOutOfRange {
                arg: "labels",
                index: i64::MAX,
                ..
            }),
        );
        let u8l = softmax_cross_entropy(be, &p, &x, &[0u8, 200], None);
        t.row(
            &n,
            u8l,
            is!(IndexOutOfRange {
                arg: "labels",
                index: 200,
                ..
            }),
        );
        let losses: [(&str, LossFn); 3] = [
            ("mse", mse_loss),
            ("bce", bce_with_logits_loss),
            ("hinge", hinge_loss),
        ];
        for (name, f) in losses {
            let n = format!("{n} {name}");
            for red in [Reduction::Mean, Reduction::Sum] {
                t.row(
                    &n,
                    f(be, &x, &x[..5], red, None),
                    is!(BufferLength {
                        arg: "target",
                        expected: 6,
                        got: 5
                    }),
                );
                t.row(
                    &n,
                    f(be, &x, &x, red, Some(&mut g[..5])),
                    is!(BufferTooShort { arg: "grad", .. }),
                );
            }
        }
        for bad in [0.5f32, 2.0, -0.0 - 2.0, f32::NAN, f32::INFINITY] {
            t.row(
                &n,
                hinge_loss(be, &[1.0, 1.0], &[1.0, bad], Reduction::Mean, None),
                is!(InvalidParam { arg: "target", .. }),
            );
        }
    }
    let x64 = [0.0f64; 6];
    t.row(
        "xent ref",
        softmax_cross_entropy_reference(&p, &x64, &[0i64, 9], None),
        is!(IndexOutOfRange { index: 9, .. }),
    );
    t.row(
        "validate",
        p.validate(6, &[0i32, 1, 2], None),
        is!(BufferLength { arg: "labels", .. }),
    );
    t.row(
        "mse ref",
        mse_loss_reference(&x64, &x64[..1], Reduction::Sum, None),
        is!(BufferLength { arg: "target", .. }),
    );
    t.row(
        "bce ref",
        bce_with_logits_loss_reference(&x64, &x64, Reduction::Sum, Some(&mut [0.0; 1])),
        is!(BufferTooShort { arg: "grad", .. }),
    );
    t.row(
        "hinge ref",
        hinge_loss_reference(&[1.0f64], &[3.0], Reduction::Sum, None),
        is!(InvalidParam { arg: "target", .. }),
    );
    t.check();
}

type LossFn =
    fn(Backend, &[f32], &[f32], Reduction, Option<&mut [f32]>) -> Result<f32, KernelError>;

#[test]
fn optimizer_table() {
    let mut t = Table::new();
    let (mut p, g) = ([0.0f32; 4], [0.0f32; 4]);
    let (mut s1, mut s2, mut s3) = ([0.0f32; 4], [0.0f32; 4], [0.0f32; 4]);
    let sgd = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        dampening: 0.0,
        weight_decay: 0.0,
        nesterov: false,
    };
    let bad_sgd = [
        ("lr", SgdConfig { lr: -0.1, ..sgd }),
        (
            "lr",
            SgdConfig {
                lr: f32::NAN,
                ..sgd
            },
        ),
        (
            "lr",
            SgdConfig {
                lr: f32::INFINITY,
                ..sgd
            },
        ),
        (
            "momentum",
            SgdConfig {
                momentum: -0.5,
                ..sgd
            },
        ),
        (
            "dampening",
            SgdConfig {
                dampening: 1.5,
                ..sgd
            },
        ),
        (
            "weight_decay",
            SgdConfig {
                weight_decay: f32::NAN,
                ..sgd
            },
        ),
        (
            "nesterov",
            SgdConfig {
                nesterov: true,
                momentum: 0.0,
                ..sgd
            },
        ),
        (
            "nesterov",
            SgdConfig {
                nesterov: true,
                dampening: 0.1,
                ..sgd
            },
        ),
    ];
    for (arg, c) in bad_sgd {
        t.row(
            arg,
            sgd_step(&c, &mut p, &g, &mut s1, false),
            |e| matches!(e, InvalidParam { arg: a, .. } if *a == arg),
        );
        // The f32 reference runs the same checks.
        t.row(
            arg,
            optim_ref::sgd(&c, &mut p, &g, &mut s1, false),
            |e| matches!(e, InvalidParam { arg: a, .. } if *a == arg),
        );
    }
    t.row(
        "sgd grad",
        sgd_step(&sgd, &mut p, &g[..3], &mut s1, false),
        is!(BufferLength { arg: "grad", .. }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "sgd grad",
        optim_ref::sgd(&sgd, &mut p, &g[..3], &mut s1, false),
        is!(BufferLength { arg: "grad", .. }),
    );
    t.row(
        "sgd buf",
        sgd_step(&sgd, &mut p, &g, &mut s1[..3], false),
        is!(BufferLength {
            arg: "momentum_buf",
            ..
        }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "sgd buf",
        optim_ref::sgd(&sgd, &mut p, &g, &mut s1[..3], false),
        is!(BufferLength {
            arg: "momentum_buf",
            ..
        }),
    );

    let ada = AdaGradConfig {
        lr: 0.1,
        lr_decay: 0.0,
        weight_decay: 0.0,
        eps: 1e-10,
    };
    for (arg, c) in [
        (
            "lr",
            AdaGradConfig {
                lr: f32::NAN,
                ..ada
            },
        ),
        (
            "lr_decay",
            AdaGradConfig {
                lr_decay: -1.0,
                ..ada
            },
        ),
        (
            "weight_decay",
            AdaGradConfig {
                weight_decay: f32::INFINITY,
                ..ada
            },
        ),
        ("eps", AdaGradConfig { eps: -1e-8, ..ada }),
    ] {
        t.row(
            arg,
            adagrad_step(&c, 1, &mut p, &g, &mut s1),
            |e| matches!(e, InvalidParam { arg: a, .. } if *a == arg),
        );
        // The f32 reference runs the same checks.
        t.row(
            arg,
            optim_ref::adagrad(&c, 1, &mut p, &g, &mut s1),
            |e| matches!(e, InvalidParam { arg: a, .. } if *a == arg),
        );
    }
    t.row(
        "adagrad step",
        adagrad_step(&ada, 0, &mut p, &g, &mut s1),
        is!(InvalidParam { arg: "step", .. }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "adagrad step",
        optim_ref::adagrad(&ada, 0, &mut p, &g, &mut s1),
        is!(InvalidParam { arg: "step", .. }),
    );
    t.row(
        "adagrad grad",
        adagrad_step(&ada, 1, &mut p, &g[..1], &mut s1),
        is!(BufferLength { arg: "grad", .. }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "adagrad grad",
        optim_ref::adagrad(&ada, 1, &mut p, &g[..1], &mut s1),
        is!(BufferLength { arg: "grad", .. }),
    );
    t.row(
        "adagrad sum",
        adagrad_step(&ada, 1, &mut p, &g, &mut s1[..1]),
        is!(BufferLength { arg: "sum", .. }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "adagrad sum",
        optim_ref::adagrad(&ada, 1, &mut p, &g, &mut s1[..1]),
        is!(BufferLength { arg: "sum", .. }),
    );

    let rms = RmsPropConfig {
        lr: 0.01,
        alpha: 0.99,
        eps: 1e-8,
        weight_decay: 0.0,
        momentum: 0.9,
        centered: true,
    };
    for (arg, c) in [
        ("lr", RmsPropConfig { lr: -1.0, ..rms }),
        ("alpha", RmsPropConfig { alpha: 1.01, ..rms }),
        (
            "alpha",
            RmsPropConfig {
                alpha: f32::NAN,
                ..rms
            },
        ),
        (
            "eps",
            RmsPropConfig {
                eps: f32::NAN,
                ..rms
            },
        ),
        (
            "weight_decay",
            RmsPropConfig {
                weight_decay: -0.1,
                ..rms
            },
        ),
        (
            "momentum",
            RmsPropConfig {
                momentum: f32::INFINITY,
                ..rms
            },
        ),
    ] {
        t.row(
            arg,
            rmsprop_step(&c, &mut p, &g, &mut s1, &mut s2, &mut s3),
            |e| matches!(e, InvalidParam { arg: a, .. } if *a == arg),
        );
        // The f32 reference runs the same checks.
        t.row(
            arg,
            optim_ref::rmsprop(&c, &mut p, &g, &mut s1, &mut s2, &mut s3),
            |e| matches!(e, InvalidParam { arg: a, .. } if *a == arg),
        );
    }
    t.row(
        "rms grad",
        rmsprop_step(&rms, &mut p, &g[..3], &mut s1, &mut s2, &mut s3),
        is!(BufferLength { arg: "grad", .. }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "rms grad",
        optim_ref::rmsprop(&rms, &mut p, &g[..3], &mut s1, &mut s2, &mut s3),
        is!(BufferLength { arg: "grad", .. }),
    );
    t.row(
        "rms square_avg",
        rmsprop_step(&rms, &mut p, &g, &mut s1[..3], &mut s2, &mut s3),
        is!(BufferLength {
            arg: "square_avg",
            ..
        }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "rms square_avg",
        optim_ref::rmsprop(&rms, &mut p, &g, &mut s1[..3], &mut s2, &mut s3),
        is!(BufferLength {
            arg: "square_avg",
            ..
        }),
    );
    t.row(
        "rms momentum_buf",
        rmsprop_step(&rms, &mut p, &g, &mut s1, &mut [], &mut s3),
        is!(BufferLength {
            arg: "momentum_buf",
            ..
        }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "rms momentum_buf",
        optim_ref::rmsprop(&rms, &mut p, &g, &mut s1, &mut [], &mut s3),
        is!(BufferLength {
            arg: "momentum_buf",
            ..
        }),
    );
    t.row(
        "rms grad_avg",
        rmsprop_step(&rms, &mut p, &g, &mut s1, &mut s2, &mut []),
        is!(BufferLength {
            arg: "grad_avg",
            ..
        }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "rms grad_avg",
        optim_ref::rmsprop(&rms, &mut p, &g, &mut s1, &mut s2, &mut []),
        is!(BufferLength {
            arg: "grad_avg",
            ..
        }),
    );

    let adam = AdamConfig {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled: true,
    };
    for (arg, c) in [
        (
            "lr",
            AdamConfig {
                lr: f32::NAN,
                ..adam
            },
        ),
        ("beta1", AdamConfig { beta1: 1.0, ..adam }),
        (
            "beta1",
            AdamConfig {
                beta1: -0.1,
                ..adam
            },
        ),
        (
            "beta2",
            AdamConfig {
                beta2: f32::NAN,
                ..adam
            },
        ),
        ("beta2", AdamConfig { beta2: 1.0, ..adam }),
        (
            "eps",
            AdamConfig {
                eps: f32::INFINITY,
                ..adam
            },
        ),
        (
            "weight_decay",
            AdamConfig {
                weight_decay: -1.0,
                ..adam
            },
        ),
    ] {
        t.row(
            arg,
            adam_step(&c, 1, &mut p, &g, &mut s1, &mut s2),
            |e| matches!(e, InvalidParam { arg: a, .. } if *a == arg),
        );
        // The f32 reference runs the same checks.
        t.row(
            arg,
            optim_ref::adam(&c, 1, &mut p, &g, &mut s1, &mut s2),
            |e| matches!(e, InvalidParam { arg: a, .. } if *a == arg),
        );
    }
    t.row(
        "adam step",
        adam_step(&adam, 0, &mut p, &g, &mut s1, &mut s2),
        is!(InvalidParam { arg: "step", .. }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "adam step",
        optim_ref::adam(&adam, 0, &mut p, &g, &mut s1, &mut s2),
        is!(InvalidParam { arg: "step", .. }),
    );
    t.row(
        "adam grad",
        adam_step(&adam, 1, &mut p, &g[..3], &mut s1, &mut s2),
        is!(BufferLength { arg: "grad", .. }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "adam grad",
        optim_ref::adam(&adam, 1, &mut p, &g[..3], &mut s1, &mut s2),
        is!(BufferLength { arg: "grad", .. }),
    );
    t.row(
        "adam exp_avg",
        adam_step(&adam, 1, &mut p, &g, &mut s1[..3], &mut s2),
        is!(BufferLength { arg: "exp_avg", .. }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "adam exp_avg",
        optim_ref::adam(&adam, 1, &mut p, &g, &mut s1[..3], &mut s2),
        is!(BufferLength { arg: "exp_avg", .. }),
    );
    t.row(
        "adam exp_avg_sq",
        adam_step(&adam, 1, &mut p, &g, &mut s1, &mut s2[..3]),
        is!(BufferLength {
            arg: "exp_avg_sq",
            ..
        }),
    );
    // The f32 reference runs the same checks.
    t.row(
        "adam exp_avg_sq",
        optim_ref::adam(&adam, 1, &mut p, &g, &mut s1, &mut s2[..3]),
        is!(BufferLength {
            arg: "exp_avg_sq",
            ..
        }),
    );
    // A huge step count is valid (the bias corrections tend to 1).
    assert!(adam_step(&adam, u64::MAX, &mut p, &g, &mut s1, &mut s2).is_ok());
    t.check();
}

#[test]
fn error_helpers_table() {
    let mut t = Table::new();
    t.row(
        "checked_mul",
        checked_mul("m", usize::MAX, 2),
        is!(Overflow { arg: "m" }),
    );
    t.row(
        "checked_product",
        checked_product("shape", &[1 << 40, 1 << 40]),
        is!(Overflow { arg: "shape" }),
    );
    t.row(
        "check_min_len",
        check_min_len("x", 3, 2),
        is!(BufferTooShort {
            arg: "x",
            expected: 3,
            got: 2
        }),
    );
    t.row(
        "check_len",
        check_len("y", 3, 4),
        is!(BufferLength {
            arg: "y",
            expected: 3,
            got: 4
        }),
    );
    t.check();
}
