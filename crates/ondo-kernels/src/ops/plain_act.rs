//! Activations of a plain (non-gated) MLP, in place on f32 rows: `x = act(x)`. GPT-2's
//! `gelu_new` is the tanh approximation, GPT-NeoX's `gelu` the exact erf form. Both follow the
//! gated forms in `reference` (`act(x) · 1`), so one formula serves both MLP kinds.

use super::reference::erf;

/// `x = gelu_tanh(x)`: `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`.
pub fn gelu_tanh(x: &mut [f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for v in x.iter_mut() {
        let a = *v;
        *v = 0.5 * a * (1.0 + (SQRT_2_OVER_PI * (a + 0.044715 * a * a * a)).tanh());
    }
}

/// `x = gelu(x)` exactly: `x/2 · (1 + erf(x/√2))`.
pub fn gelu_erf(x: &mut [f32]) {
    for v in x.iter_mut() {
        let a = *v as f64;
        *v = (0.5 * a * (1.0 + erf(a * std::f64::consts::FRAC_1_SQRT_2))) as f32;
    }
}

/// `x = silu(x) = x · sigmoid(x)`.
pub fn silu(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v /= 1.0 + (-*v).exp();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Plain = fn(&mut [f32]);
    type Gated = fn(&mut [f32], &[f32]);

    /// Against the gated reference forms with `up = 1` and a few known values.
    #[test]
    fn plain_activations_match_gated_forms_and_known_values() {
        let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.17).collect();
        let ones = vec![1.0; xs.len()];
        let pairs: [(Plain, Gated); 3] = [
            (gelu_tanh, crate::ops::reference::gelu_tanh_mul),
            (gelu_erf, crate::ops::reference::gelu_erf_mul),
            (silu, crate::ops::reference::silu_mul),
        ];
        for (plain, gated) in pairs {
            let (mut a, mut b) = (xs.clone(), xs.clone());
            plain(&mut a);
            gated(&mut b, &ones);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{x} vs {y}");
            }
        }
        // gelu(1) = Φ(1) = 0.841345; gelu_tanh(1) = 0.841192; silu(1) = 0.731059
        let mut v = [1.0f32, 0.0];
        gelu_erf(&mut v);
        assert!((v[0] - 0.841_345).abs() < 1e-5 && v[1] == 0.0, "{v:?}");
        let mut v = [1.0f32];
        gelu_tanh(&mut v);
        assert!((v[0] - 0.841_192).abs() < 1e-5, "{v:?}");
        let mut v = [1.0f32];
        silu(&mut v);
        assert!((v[0] - 0.731_059).abs() < 1e-5, "{v:?}");
    }
}
