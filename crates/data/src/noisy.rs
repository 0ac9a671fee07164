//! Few-shot prompts whose demonstrations carry noisy rationales.
//!
//! The setting of NoRa, *Can Language Models Perform Robust Reasoning in Chain-of-thought
//! Prompting with Noisy Rationales?* (Zhou et al., NeurIPS 2024): the demonstrations'
//! rationales keep every correct thought and gain *noisy* thoughts inserted after some of
//! them, either **irrelevant** (a true but useless remark) or **inaccurate** (a wrong
//! calculation). The noise ratio is the chance that a clean thought is followed by a
//! noisy one (NoRa's easy / medium / hard: 0.3 / 0.5 / 0.8). The demonstrations are
//! `arith` problems, so the true value of every step is known and an inaccurate thought
//! is certainly wrong; where the noise went is stored with the problem.

use crate::arith::{ArithConfig, ArithSpec, generate_one};
use crate::error::{DataError, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use stepwise_core::Problem;

/// The kind of noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    Irrelevant,
    Inaccurate,
}

impl std::str::FromStr for NoiseKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "irrelevant" => Ok(Self::Irrelevant),
            "inaccurate" => Ok(Self::Inaccurate),
            _ => Err(format!(
                "unknown noise '{s}' (expected irrelevant or inaccurate)"
            )),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoisyConfig {
    /// The `arith` family of demonstrations and test questions.
    pub arith: ArithConfig,
    /// Demonstrations per prompt.
    pub shots: usize,
    pub noise: NoiseKind,
    /// Chance that a clean thought is followed by a noisy one (0..=1).
    pub ratio: f64,
}

/// One inserted noisy thought: demonstration `shot`, after its clean thought `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insertion {
    pub shot: usize,
    pub after: usize,
    pub text: String,
}

const FACTS: [&str; 6] = [
    "A week has 7 days",
    "A dozen is 12",
    "An hour has 60 minutes",
    "A year has 12 months",
    "A triangle has 3 sides",
    "A century is 100 years",
];

/// The noisy thought after a clean step of value `value` (inaccurate: `expr` computed
/// wrong by a nonzero offset).
fn noise(kind: NoiseKind, expr: &str, value: i64, rng: &mut ChaCha8Rng) -> String {
    match kind {
        NoiseKind::Irrelevant => {
            format!(
                "{}, and {value} is just a number here.",
                FACTS[rng.gen_range(0..FACTS.len())]
            )
        }
        NoiseKind::Inaccurate => {
            let off = [-2, -1, 1, 2, 10][rng.gen_range(0..5)];
            format!("Also, {expr} = {}.", value.saturating_add(off))
        }
    }
}

/// The demonstration rationale of `spec` with noise: clean steps `expr = value`, a noisy
/// thought after each with probability `ratio`, then the answer line.
fn demo(
    spec: &ArithSpec,
    cfg: &NoisyConfig,
    shot: usize,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Insertion>,
) -> String {
    let mut lines = Vec::new();
    for (i, s) in spec.steps.iter().enumerate() {
        lines.push(format!("{} = {}", s.expr, s.value));
        if rng.gen_bool(cfg.ratio.clamp(0.0, 1.0)) {
            let text = noise(cfg.noise, &s.expr, s.value, rng);
            lines.push(text.clone());
            out.push(Insertion {
                shot,
                after: i,
                text,
            });
        }
    }
    lines.push(format!("The answer is {}.", spec.answer));
    lines.join("\n\n")
}

/// Prompt `index`: `shots` noisy demonstrations (arith problems `index * (shots + 1) + j`)
/// then the test question (the next one), whose gold and `arith` truth it keeps.
pub fn generate_noisy(cfg: &NoisyConfig, index: usize) -> Result<Problem> {
    if !(0.0..=1.0).contains(&cfg.ratio) {
        return Err(DataError::BadSpec {
            spec: "noisy".into(),
            message: format!("noise ratio must be in 0..=1, not {}", cfg.ratio),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.arith.seed ^ 0x4e6f_5261);
    rng.set_stream(index as u64);
    let base = index * (cfg.shots + 1);
    let mut text = String::new();
    let mut inserted = Vec::new();
    for j in 0..cfg.shots {
        let p = generate_one(&cfg.arith, base + j)?;
        let spec = ArithSpec::from_problem(&p)?;
        text.push_str(&format!(
            "Question: {}\nAnswer:\n{}\n\n",
            p.question,
            demo(&spec, cfg, j, &mut rng, &mut inserted)
        ));
    }
    let test = generate_one(&cfg.arith, base + cfg.shots)?;
    text.push_str(&format!("Question: {}\nAnswer:", test.question));
    let mut p = test.clone();
    p.id = format!(
        "noisy/{:?}-r{}-k{}/{}",
        cfg.noise, cfg.ratio, cfg.shots, test.id
    )
    .to_lowercase();
    p.question = text;
    p.metadata.insert(
        "noise".into(),
        serde_json::json!({"kind": cfg.noise, "ratio": cfg.ratio, "shots": cfg.shots, "inserted": inserted}),
    );
    Ok(p)
}

/// One demonstration of a noisy demo pool: an `arith` problem with its rationale noised
/// as in [`generate_noisy`], and the clean rationale beside it (what CD-CoT's clean demo
/// and the clean-demos baseline show).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoisyDemo {
    pub id: String,
    pub question: String,
    /// The rationale with its noisy thoughts (`shot` of each insertion is 0).
    pub noisy: String,
    /// The same rationale without them (the `arith` reference solution).
    pub clean: String,
    pub answer: String,
    pub inserted: Vec<Insertion>,
}

/// The demo-pool spec `noise=irrelevant|inaccurate,ratio=R` plus `arith` options (`ops`,
/// `n` demos, `seed`, `digits`, `kind`, `opset`): what `--demo-source noisy:SPEC` takes.
/// Demos per prompt are the caller's (`--shots`), so `shots` is refused here by name.
pub fn parse_pool_spec(spec: &str) -> Result<NoisyConfig> {
    let bad = |message: String| DataError::BadSpec {
        spec: format!("noisy:{spec}"),
        message,
    };
    let mut noise = None;
    let mut ratio = None;
    let mut rest = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("noise", v)) => noise = Some(v.trim().parse::<NoiseKind>().map_err(bad)?),
            Some(("ratio", v)) => {
                let r: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("ratio must be a number in 0..=1, got '{v}'")))?;
                if !(0.0..=1.0).contains(&r) {
                    return Err(bad(format!("ratio must be in 0..=1, not {r}")));
                }
                ratio = Some(r);
            }
            Some(("shots", _)) => {
                return Err(bad(
                    "shots is not a pool option: demos per prompt are --shots".into(),
                ));
            }
            _ => rest.push(part),
        }
    }
    let arith = ArithConfig::parse(&rest.join(",")).map_err(bad)?;
    Ok(NoisyConfig {
        arith,
        shots: 0,
        noise: noise.ok_or_else(|| bad("noise=irrelevant|inaccurate is required".into()))?,
        ratio: ratio.ok_or_else(|| bad("ratio=R (0..=1) is required".into()))?,
    })
}

/// `arith.n` demos (arith problems `0..n`), demo `i` noised by its own seeded stream, so a
/// demo depends only on the config and `i`; its id names the noise
/// (`noisy/irrelevant-r0.5/arith/...`). The clean rationale is the problem's reference.
pub fn demo_pool(cfg: &NoisyConfig) -> Result<Vec<NoisyDemo>> {
    (0..cfg.arith.n).map(|i| noisy_demo(cfg, i)).collect()
}

/// Demo `index` of [`demo_pool`] (any index: CD-CoT's clean demo is index `n`, past the
/// pool).
pub fn noisy_demo(cfg: &NoisyConfig, index: usize) -> Result<NoisyDemo> {
    if !(0.0..=1.0).contains(&cfg.ratio) {
        return Err(DataError::BadSpec {
            spec: "noisy".into(),
            message: format!("noise ratio must be in 0..=1, not {}", cfg.ratio),
        });
    }
    let p = generate_one(&cfg.arith, index)?;
    let spec = ArithSpec::from_problem(&p)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.arith.seed ^ 0x4e6f_5261_4465_6d6f);
    rng.set_stream(index as u64);
    let mut inserted = Vec::new();
    let noisy = demo(&spec, cfg, 0, &mut rng, &mut inserted);
    Ok(NoisyDemo {
        id: format!("noisy/{:?}-r{}/{}", cfg.noise, cfg.ratio, p.id).to_lowercase(),
        question: p.question.clone(),
        noisy,
        clean: p.reference.clone().unwrap_or_default(),
        answer: spec.answer.to_string(),
        inserted,
    })
}

/// The `arith.n` prompts one at a time.
pub fn problems(cfg: &NoisyConfig) -> impl Iterator<Item = Result<Problem>> + '_ {
    (0..cfg.arith.n).map(move |i| generate_noisy(cfg, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(noise: NoiseKind, ratio: f64) -> NoisyConfig {
        NoisyConfig {
            arith: ArithConfig::parse("ops=3,n=4,seed=2").unwrap(),
            shots: 3,
            noise,
            ratio,
        }
    }

    #[test]
    fn noise_goes_where_it_says_and_is_wrong_when_inaccurate() {
        let c = cfg(NoiseKind::Inaccurate, 1.0);
        let p = generate_noisy(&c, 1).unwrap();
        let ins: Vec<Insertion> =
            serde_json::from_value(p.metadata["noise"]["inserted"].clone()).unwrap();
        assert_eq!(
            ins.len(),
            9,
            "ratio 1: a noisy thought after each of 3 steps of 3 shots"
        );
        for i in &ins {
            let demo = generate_one(&c.arith, 4 + i.shot).unwrap();
            let spec = ArithSpec::from_problem(&demo).unwrap();
            let step = &spec.steps[i.after];
            assert!(
                p.question
                    .contains(&format!("{} = {}\n\n{}", step.expr, step.value, i.text))
            );
            let claimed: i64 = i
                .text
                .rsplit("= ")
                .next()
                .unwrap()
                .trim_end_matches('.')
                .parse()
                .unwrap();
            assert_ne!(claimed, step.value);
        }
        // the test question and its gold are arith problem 4 * 1 + 3
        let test = generate_one(&c.arith, 7).unwrap();
        assert_eq!(p.gold, test.gold);
        assert!(
            p.question
                .ends_with(&format!("Question: {}\nAnswer:", test.question))
        );
        assert!(ArithSpec::from_problem(&p).is_ok());
    }

    /// The pool by hand at ratio 1: every clean step `expr = value` is followed by its
    /// inaccurate twin, the clean rationale is the arith reference, and the spec parser
    /// takes the arith keys and refuses `shots`.
    #[test]
    fn demo_pool_noises_each_demo_and_keeps_the_clean_one() {
        let c = parse_pool_spec("noise=inaccurate,ratio=1,ops=2,n=3,seed=5").unwrap();
        assert_eq!((c.arith.ops, c.arith.n, c.arith.seed), (2, 3, 5));
        let pool = demo_pool(&c).unwrap();
        assert_eq!(pool.len(), 3);
        for (i, d) in pool.iter().enumerate() {
            let p = generate_one(&c.arith, i).unwrap();
            let spec = ArithSpec::from_problem(&p).unwrap();
            assert_eq!(d.clean, p.reference.clone().unwrap());
            assert_eq!(d.question, p.question);
            assert_eq!(d.answer, spec.answer.to_string());
            assert_eq!(d.inserted.len(), 2);
            let clean: Vec<&str> = d.clean.split("\n\n").collect();
            let noisy: Vec<&str> = d.noisy.split("\n\n").collect();
            // step, noise, step, noise, answer
            assert_eq!(noisy.len(), 5);
            assert_eq!(
                (noisy[0], noisy[2], noisy[4]),
                (clean[0], clean[1], clean[2])
            );
            assert_eq!(noisy[1], d.inserted[0].text);
            assert!(noisy[1].starts_with(&format!("Also, {} = ", spec.steps[0].expr)));
            assert!(d.id.starts_with("noisy/inaccurate-r1/arith/"), "{}", d.id);
        }
        assert_eq!(demo_pool(&c).unwrap(), pool, "seeded: the same pool again");
        let clean =
            demo_pool(&parse_pool_spec("noise=irrelevant,ratio=0,ops=2,n=3,seed=5").unwrap())
                .unwrap();
        assert!(
            clean
                .iter()
                .all(|d| d.noisy == d.clean && d.inserted.is_empty())
        );
        for bad in [
            "noise=irrelevant,ratio=0.5,shots=3",
            "noise=irrelevant",
            "ratio=0.5",
            "noise=loud,ratio=0.5",
            "noise=irrelevant,ratio=2",
            "noise=irrelevant,ratio=0.5,colour=red",
        ] {
            assert!(parse_pool_spec(bad).is_err(), "{bad}");
        }
        let e = parse_pool_spec("noise=irrelevant,ratio=0.5,shots=3").unwrap_err();
        assert!(e.to_string().contains("--shots"), "{e}");
    }

    #[test]
    fn ratio_zero_is_clean() {
        let p = generate_noisy(&cfg(NoiseKind::Irrelevant, 0.0), 0).unwrap();
        assert_eq!(p.metadata["noise"]["inserted"], serde_json::json!([]));
        assert!(generate_noisy(&cfg(NoiseKind::Irrelevant, 1.5), 0).is_err());
    }
}
