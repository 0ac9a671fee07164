//! A trajectory-aware process reward after ReasonFlux-PRM (Zou et al., 2025,
//! "ReasonFlux-PRM: Trajectory-Aware PRMs for Long Chain-of-Thought Reasoning in LLMs",
//! arXiv:2506.18896).
//!
//! ReasonFlux-PRM reads a trajectory–response output — the thinking trajectory inside
//! `<think>…</think>`, then the final response — and scores it at two levels: a
//! step-level reward `r_t` for each step of the trajectory and a trajectory-level reward
//! `r_final` for the whole, combined as
//!
//! `r̂ = (1/T) Σ_{t=1..T} r_t + α · r_final`.
//!
//! In the paper both levels come from a trained PRM (step rewards distilled from
//! alignment, quality and coherence scores a judge gives; the trajectory reward from
//! template-guided rollouts); model-backed scorers are out of this crate's scope. Here
//! the arithmetic claim checker (`stepwise_verify::ArithChecker`, the `step_check`
//! component's scorer) stands in for both: `r_t` is its score of trajectory step `t`
//! and `r_final` its score of the final response, aggregated over the response's steps
//! (`min` by default: a response is as sound as its weakest step). `α = 1` by default
//! (the two levels weigh the same; set `alpha` to change it).
//!
//! For RL the paper mixes it with the outcome reward, `r = (1 − β) r_out + β r̂`: in
//! TOML that is an `accuracy` component of weight `1 − β` and this one of weight `β`.
//! A response without a thinking trajectory scores 0 and raises `no_thinking`.

/// `(1/T) Σ r_t + α · r_final`; `None` for an empty trajectory.
pub fn reasonflux_reward(step_rewards: &[f64], trajectory: f64, alpha: f64) -> Option<f64> {
    if step_rewards.is_empty() {
        return None;
    }
    let mean = step_rewards.iter().sum::<f64>() / step_rewards.len() as f64;
    Some(mean + alpha * trajectory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combines_by_hand() {
        // Steps 1, 0.5, 0 → mean 0.5; trajectory 1 at α = 1: 1.5; at α = 0.2: 0.7.
        assert_eq!(reasonflux_reward(&[1.0, 0.5, 0.0], 1.0, 1.0), Some(1.5));
        let r = reasonflux_reward(&[1.0, 0.5, 0.0], 1.0, 0.2).unwrap();
        assert!((r - 0.7).abs() < 1e-12);
        assert_eq!(reasonflux_reward(&[], 1.0, 1.0), None);
    }
}
