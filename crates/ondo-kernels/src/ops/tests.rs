//! The dispatched ops against the reference on random data, odd lengths included.

use super::*;
use crate::testutil::Rng;

fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
    }
}

const LENS: [usize; 5] = [1, 7, 8, 67, 576];

#[test]
fn exp_is_accurate() {
    for i in -2000..2000 {
        let x = i as f32 * 0.0437;
        if x < -87.0 {
            continue; // flushed to 0 below e^-87.3
        }
        let (got, want) = (exp(x), x.exp());
        assert!((got - want).abs() <= 4e-7 * want, "exp({x}) = {got}, want {want}");
    }
    assert_eq!(exp(-1000.0), 0.0);
    assert!(exp(-50.0) > 0.0);
    assert!(exp(f32::NAN).is_nan());
    assert_eq!(exp(f32::INFINITY), 88f32.exp());
}

/// A NaN activation stays NaN through the vectorized silu (the dispatched build, every lane
/// position), and its neighbours are unchanged.
#[test]
fn silu_keeps_nan_where_it_was() {
    let mut rng = Rng::new(12);
    let n = 67;
    for at in [0, 5, 8, 31, 66] {
        let (mut g, u) = (rng.normals(n), rng.normals(n));
        g[at] = f32::NAN;
        let (mut a, mut b) = (g.clone(), g.clone());
        silu_mul(&mut a, &u);
        reference::silu_mul(&mut b, &u);
        for i in 0..n {
            if i == at {
                assert!(a[i].is_nan(), "silu(NaN) at {i}: {}", a[i]);
            } else {
                assert!(
                    (a[i] - b[i]).abs() <= 1e-5 * (1.0 + b[i].abs()),
                    "[{i}]: {} vs {}",
                    a[i],
                    b[i]
                );
            }
        }
    }
}

#[test]
fn norms_softmax_silu_gelu_add_match_reference() {
    let mut rng = Rng::new(9);
    for n in LENS {
        let (x, w) = (rng.normals(n), rng.normals(n));
        let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
        rms_norm(&x, &w, 1e-6, &mut a);
        reference::rms_norm(&x, &w, 1e-6, &mut b);
        close(&a, &b, 1e-5, "rms_norm");
        let (mut a, mut b) = (x.clone(), x.clone());
        rms_norm_inplace(&mut a, &w, 1e-6);
        reference::rms_norm_inplace(&mut b, &w, 1e-6);
        close(&a, &b, 1e-5, "rms_norm_inplace");
        let big: Vec<f32> = x.iter().map(|v| v * 30.0).collect();
        let (mut a, mut b) = (big.clone(), big.clone());
        softmax(&mut a);
        reference::softmax(&mut b);
        close(&a, &b, 2e-6, "softmax");
        let (mut a, mut b) = (big.clone(), big.clone());
        silu_mul(&mut a, &w);
        reference::silu_mul(&mut b, &w);
        close(&a, &b, 2e-6, "silu_mul");
        // (the reference's 1 + tanh cancels for large negative inputs: compare against the scale
        // of x · up, not of the result)
        let wide: Vec<f32> = x.iter().map(|v| v * 6.0).collect();
        let (mut a, mut b) = (wide.clone(), wide.clone());
        gelu_tanh_mul(&mut a, &w);
        reference::gelu_tanh_mul(&mut b, &w);
        for (i, ((a, b), (x, w))) in a.iter().zip(&b).zip(wide.iter().zip(&w)).enumerate() {
            let tol = 1e-6 * (1.0 + (x * w).abs());
            assert!((a - b).abs() <= tol, "gelu_tanh_mul[{i}] of {x}: {a} vs {b}");
        }
        let (mut a, mut b) = (x.clone(), x.clone());
        add(&mut a, &w);
        reference::add(&mut b, &w);
        close(&a, &b, 0.0, "add");
    }
}

#[test]
fn softmax_handles_masked_positions() {
    let mut x = vec![f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    softmax(&mut x);
    assert_eq!(x[0], 0.0);
    assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

#[test]
fn attention_matches_reference() {
    let mut rng = Rng::new(4);
    for (n_heads, n_kv_heads, head_dim, len, window, softcap) in [
        (4, 2, 64, 37, None, None),
        (3, 1, 24, 5, Some(3), Some(50.0)),
        (2, 2, 7, 1, None, None),
    ] {
        let p = AttnParams {
            n_heads,
            n_kv_heads,
            head_dim,
            scale: 0.125,
            softcap,
            window,
        };
        let q = rng.normals(n_heads * head_dim);
        let keys = rng.normals(len * n_kv_heads * head_dim);
        let values = rng.normals(len * n_kv_heads * head_dim);
        let (mut s1, mut s2) = (vec![0f32; len], vec![0f32; len]);
        let (mut a, mut b) = (vec![0f32; n_heads * head_dim], vec![0f32; n_heads * head_dim]);
        attention(&q, &keys, &values, len, &p, &mut s1, &mut a);
        reference::attention(&q, &keys, &values, len, &p, &mut s2, &mut b);
        close(&a, &b, 1e-5, "attention");
    }
}

#[test]
fn f16_conversion_matches_half_for_every_value() {
    for bits in 0..=u16::MAX {
        let (got, want) = (f16_bits_to_f32(bits), half::f16::from_bits(bits).to_f32());
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "{bits:#06x}: {got} vs {want}"
        );
    }
}

#[test]
fn f16_attention_matches_reference() {
    let mut rng = Rng::new(8);
    let (n_heads, n_kv_heads, head_dim, len) = (4, 2, 40, 29);
    let p = AttnParams {
        n_heads,
        n_kv_heads,
        head_dim,
        scale: 0.15,
        softcap: None,
        window: Some(20),
    };
    let q = rng.normals(n_heads * head_dim);
    let to_f16 = |v: Vec<f32>| v.into_iter().map(half::f16::from_f32).collect::<Vec<_>>();
    let keys = to_f16(rng.normals(len * n_kv_heads * head_dim));
    let values = to_f16(rng.normals(len * n_kv_heads * head_dim));
    let (mut s1, mut s2) = (vec![0f32; len], vec![0f32; len]);
    let (mut a, mut b) = (vec![0f32; n_heads * head_dim], vec![0f32; n_heads * head_dim]);
    attention_f16(&q, &keys, &values, len, &p, &mut s1, &mut a);
    reference::attention_f16(&q, &keys, &values, len, &p, &mut s2, &mut b);
    close(&a, &b, 1e-5, "attention_f16");
}

#[test]
fn rope_matches_reference() {
    let mut rng = Rng::new(12);
    let inv_freq: Vec<f32> = (0..16).map(|i| 10000f32.powf(-(i as f32) / 16.0)).collect();
    for style in [RopeStyle::Neox, RopeStyle::Interleaved] {
        let x = rng.normals(3 * 40); // 3 heads of 40, 32 rotated dims
        let (mut a, mut b) = (x.clone(), x.clone());
        rope(&mut a, 40, 1234, &inv_freq, style);
        reference::rope(&mut b, 40, 1234, &inv_freq, style);
        assert_eq!(a, b, "{style:?}");
        assert_ne!(a, x);
    }
}

#[test]
fn attention_tokens_matches_one_token_at_a_time() {
    let mut rng = Rng::new(30);
    let (n_heads, n_kv_heads, head_dim) = (6, 2, 32);
    let (pos0, t) = (11, 9);
    let p = AttnParams {
        n_heads,
        n_kv_heads,
        head_dim,
        scale: 0.2,
        softcap: Some(30.0),
        window: Some(12),
    };
    let width = n_heads * head_dim;
    let q = rng.normals(t * width);
    let keys = rng.normals((pos0 + t) * n_kv_heads * head_dim);
    let values = rng.normals((pos0 + t) * n_kv_heads * head_dim);
    for threads in [1, 3] {
        let pool = ThreadPool::new(threads);
        let mut got = vec![f32::NAN; t * width];
        attention_tokens(&pool, &q, &keys, &values, pos0, &p, &mut got);
        let mut scores = vec![0f32; pos0 + t];
        for i in 0..t {
            let mut want = vec![0f32; width];
            reference::attention(
                &q[i * width..][..width],
                &keys,
                &values,
                pos0 + i + 1,
                &p,
                &mut scores,
                &mut want,
            );
            close(&got[i * width..][..width], &want, 1e-5, "attention_tokens");
        }
        let to_f16 = |v: &[f32]| v.iter().map(|x| half::f16::from_f32(*x)).collect::<Vec<_>>();
        let (k16, v16) = (to_f16(&keys), to_f16(&values));
        let mut got16 = vec![f32::NAN; t * width];
        attention_tokens_f16(&pool, &q, &k16, &v16, pos0, &p, &mut got16);
        for i in 0..t {
            let mut want = vec![0f32; width];
            reference::attention_f16(
                &q[i * width..][..width],
                &k16,
                &v16,
                pos0 + i + 1,
                &p,
                &mut scores,
                &mut want,
            );
            close(&got16[i * width..][..width], &want, 1e-5, "attention_tokens_f16");
        }
    }
}

#[test]
fn erf_and_exact_gelu_match_known_values() {
    // erf values from tables (Abramowitz & Stegun table 7.1)
    for (x, want) in [
        (0.0, 0.0),
        (0.5, 0.520_499_877_8),
        (1.0, 0.842_700_792_9),
        (-2.0, -0.995_322_265_0),
        (3.0, 0.999_977_909_5),
    ] {
        assert!((erf(x) - want).abs() < 3e-7, "erf({x}) = {} vs {want}", erf(x));
    }
    // gelu(x) = x · Φ(x): Φ(1) = 0.841344746, Φ(-1.5) = 0.066807201
    let mut g = [1.0f32, -1.5, 0.0];
    gelu_erf_mul(&mut g, &[2.0, 1.0, 5.0]);
    let want = [2.0 * 0.841_344_7, -1.5 * 0.066_807_2, 0.0];
    for (g, w) in g.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{g} vs {w}");
    }
}

#[test]
fn max_and_log_sum_exp_match_reference() {
    let mut rng = Rng::new(21);
    for n in [1, 7, 8, 67, 576, 151_936] {
        let mut x: Vec<f32> = rng.normals(n).iter().map(|v| v * 12.0).collect();
        assert_eq!(max(&x), reference::max(&x), "max, n={n}");
        let (a, b) = (log_sum_exp(&x), reference::log_sum_exp(&x));
        assert!((a - b).abs() <= 2e-6 * (1.0 + b.abs()), "log_sum_exp n={n}: {a} vs {b}");
        // masked (-inf) and NaN entries count for nothing, as in the reference
        for i in (0..n).step_by(3) {
            x[i] = if i % 2 == 0 { f32::NEG_INFINITY } else { f32::NAN };
        }
        assert_eq!(max(&x), reference::max(&x), "masked max, n={n}");
        let (a, b) = (log_sum_exp(&x), reference::log_sum_exp(&x));
        assert_eq!(a.is_finite(), b.is_finite(), "masked log_sum_exp n={n}");
        if b.is_finite() {
            assert!(
                (a - b).abs() <= 2e-6 * (1.0 + b.abs()),
                "masked log_sum_exp n={n}: {a} vs {b}"
            );
        }
        let (mut a, mut b) = (x.clone(), x.clone());
        log_softmax(&mut a);
        reference::log_softmax(&mut b);
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert!(
                a == b || (a - b).abs() <= 2e-6 * (1.0 + b.abs()) || (a.is_nan() && b.is_nan()),
                "log_softmax[{i}]: {a} vs {b}"
            );
        }
    }
    // rows with nothing finite: -inf when all are masked, +inf when one is +inf
    let none = [f32::NEG_INFINITY, f32::NAN, f32::NEG_INFINITY];
    assert_eq!(log_sum_exp(&none), f32::NEG_INFINITY);
    assert_eq!(log_sum_exp(&[]), f32::NEG_INFINITY);
    assert_eq!(log_sum_exp(&[1.0, f32::INFINITY, 2.0]), f32::INFINITY);
    assert_eq!(max(&[f32::NAN, -3.0, f32::NAN]), -3.0);
}

#[test]
fn exp_shifted_sum_matches_reference() {
    let mut rng = Rng::new(22);
    for n in LENS.into_iter().chain([4099]) {
        let mut x: Vec<f32> = rng.normals(n).iter().map(|v| v * 10.0).collect();
        for i in (0..n).step_by(5) {
            x[i] = if i % 2 == 0 { f32::NEG_INFINITY } else { f32::NAN };
        }
        let max = reference::max(&x).max(0.0);
        let (mut a, mut b) = (vec![9.0; n], vec![9.0; n]);
        let (sa, sb) = (
            exp_shifted_sum(&x, max, &mut a),
            reference::exp_shifted_sum(&x, max, &mut b),
        );
        close(&a, &b, 1e-6, "exp_shifted_sum");
        assert!((sa - sb).abs() <= 1e-6 * sb, "sum n={n}: {sa} vs {sb}");
    }
}

#[test]
fn gated_on_pool_gives_the_values_of_one_call() {
    let mut rng = Rng::new(24);
    let pool = ThreadPool::new(3);
    for n in [5, 16 * 1024 * 2 - 3, 200_001] {
        let (g, u) = (rng.normals(n), rng.normals(n));
        let (mut a, mut b) = (g.clone(), g.clone());
        gated_on_pool(&pool, silu_mul, &mut a, &u);
        silu_mul(&mut b, &u);
        assert_eq!(a, b, "n={n}");
    }
}
