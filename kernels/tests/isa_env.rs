//! `NNKERN_ISA` forces the native path (read once per process, so this file holds one test).

use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::{gemm, Backend, Gemm};

#[test]
fn env_var_forces_the_path_and_with_isa_overrides_it() {
    // Set before the first kernel call of this process; the value is cached afterwards.
    std::env::set_var("NNKERN_ISA", "scalar");
    assert_eq!(Isa::active(), Isa::Scalar);
    std::env::set_var("NNKERN_ISA", "avx2");
    assert_eq!(Isa::active(), Isa::Scalar, "read once");
    let best = Isa::best();
    assert_eq!(with_isa(best, Isa::active), best);
    assert_eq!(Isa::active(), Isa::Scalar, "override restored");
    // Unknown names do not parse; every real path does.
    assert_eq!(Isa::parse("sse9"), None);
    for isa in Isa::ALL {
        assert_eq!(Isa::parse(isa.name()), Some(isa));
    }
    // The forced path computes correctly.
    let mut c = [0.0f32; 4];
    gemm(
        Backend::Native,
        &Gemm::new(2, 2, 1),
        &[1.0, 2.0],
        &[3.0, 4.0],
        &mut c,
    )
    .unwrap();
    assert_eq!(c, [3.0, 4.0, 6.0, 8.0]);
}
