//! Composed long-horizon problems from GSM8K.
//!
//! The construction of *h1: Bootstrapping LLMs to Reason over Longer Horizons via
//! Reinforcement Learning* (Koishekenov et al., 2025): short problems are chained so the
//! answer of one becomes a quantity of the next. A number of problem `k` is replaced by
//! "the answer of Problem k-1", and problem `k`'s answer is recomputed exactly by
//! replaying its reference solution's calculator annotations (`<<48/2=24>>`) with the new
//! value: each annotation's expression is evaluated in exact rationals
//! ([`stepwise_verify::exact_value`]) after replacing every number that was a replaced
//! quantity or an earlier changed result by its new value.
//!
//! A problem takes part only when replaying its annotations unchanged reproduces every
//! stated result and its gold answer, and the number replaced occurs once in the
//! question and in some annotation. Every answer along a chain is a positive integer.

use num_rational::BigRational;
use num_traits::{Signed, Zero};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use stepwise_core::Problem;

/// One calculator annotation: `expr` evaluated gives `result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub expr: String,
    pub result: String,
}

/// The `<<expr=result>>` annotations of a GSM8K reference solution, in order.
pub fn annotations(reference: &str) -> Vec<Annotation> {
    let mut out = Vec::new();
    let mut rest = reference;
    while let Some(i) = rest.find("<<") {
        let after = &rest[i + 2..];
        let Some(j) = after.find(">>") else { break };
        let inner = &after[..j];
        if let Some((e, r)) = inner.rsplit_once('=') {
            out.push(Annotation {
                expr: e.trim().to_string(),
                result: r.trim().to_string(),
            });
        }
        rest = &after[j + 2..];
    }
    out
}

/// A number literal (`48`, `0.5`) as an exact rational.
pub fn number(s: &str) -> Option<BigRational> {
    let s = s.trim().replace(',', "");
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    stepwise_verify::exact_value(&s)
}

/// Splits text into number literals and the rest: `(is_number, piece)`.
fn pieces(s: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || (b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit()))
            {
                i += 1;
            }
            if last < start {
                out.push((false, &s[last..start]));
            }
            out.push((true, &s[start..i]));
            last = i;
        } else {
            i += 1;
        }
    }
    if last < s.len() {
        out.push((false, &s[last..]));
    }
    out
}

/// Writes a rational for an expression (`7`, or `(7/2)`).
fn literal(v: &BigRational) -> String {
    if v.is_integer() {
        v.to_integer().to_string()
    } else {
        format!("({}/{})", v.numer(), v.denom())
    }
}

/// Replays annotations with some values changed (`(old, new)` pairs): every number of an
/// expression equal to a changed value is replaced by its new value, and a result that
/// changes is itself a changed value for later expressions. Returns the final value
/// (the last annotation's), `None` when an expression does not evaluate.
pub fn replay(anns: &[Annotation], changed: &[(BigRational, BigRational)]) -> Option<BigRational> {
    let mut map: Vec<(BigRational, BigRational)> = changed.to_vec();
    let mut last = None;
    for a in anns {
        let expr: String = pieces(&a.expr)
            .into_iter()
            .map(|(is_num, p)| {
                if is_num
                    && let Some(v) = number(p)
                    && let Some((_, new)) = map.iter().rev().find(|(old, _)| *old == v)
                {
                    return literal(new);
                }
                p.to_string()
            })
            .collect();
        let value = stepwise_verify::exact_value(&expr)?;
        let stated = number(&a.result)?;
        if stated != value {
            map.push((stated, value.clone()));
        }
        last = Some(value);
    }
    last
}

/// A GSM8K problem usable in chains: its annotations replay to its gold answer.
#[derive(Debug, Clone)]
pub struct Source {
    pub id: String,
    pub question: String,
    pub annotations: Vec<Annotation>,
    pub answer: BigRational,
}

impl Source {
    /// Checks a problem (question, `reference` with annotations, integer gold).
    pub fn from_problem(p: &Problem) -> Option<Self> {
        let anns = annotations(p.reference.as_deref()?);
        if anns.is_empty() {
            return None;
        }
        let gold = number(p.gold.as_deref()?)?;
        // unchanged, every stated result and the gold answer are reproduced
        for a in &anns {
            if stepwise_verify::exact_value(&a.expr)? != number(&a.result)? {
                return None;
            }
        }
        (replay(&anns, &[])? == gold).then(|| Self {
            id: p.id.clone(),
            question: p.question.clone(),
            annotations: anns,
            answer: gold,
        })
    }

    /// The integers of the question that may be replaced: occurring once in the question,
    /// in some annotation's expression, and as no annotation's result.
    pub fn slots(&self) -> Vec<BigRational> {
        let nums: Vec<BigRational> = pieces(&self.question)
            .into_iter()
            .filter(|(n, _)| *n)
            .filter_map(|(_, p)| number(p))
            .collect();
        let in_expr = |v: &BigRational| {
            self.annotations.iter().any(|a| {
                pieces(&a.expr)
                    .into_iter()
                    .any(|(n, p)| n && number(p).as_ref() == Some(v))
            })
        };
        let is_result = |v: &BigRational| {
            self.annotations
                .iter()
                .any(|a| number(&a.result).as_ref() == Some(v))
        };
        let mut out: Vec<BigRational> = Vec::new();
        for v in &nums {
            if v.is_integer()
                && nums.iter().filter(|x| *x == v).count() == 1
                && in_expr(v)
                && !is_result(v)
                && !out.contains(v)
            {
                out.push(v.clone());
            }
        }
        out
    }

    /// The question with the number `slot` written as `with`.
    pub fn rewrite(&self, slot: &BigRational, with: &str) -> String {
        pieces(&self.question)
            .into_iter()
            .map(|(n, p)| {
                if n && number(p).as_ref() == Some(slot) {
                    with.to_string()
                } else {
                    p.to_string()
                }
            })
            .collect()
    }
}

/// One problem of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub problem_id: String,
    /// The number of the original question replaced by the previous answer (none for
    /// the first link).
    pub replaced: Option<String>,
    /// The value it takes (the previous link's answer).
    pub input: Option<String>,
    /// This link's exact answer.
    pub answer: String,
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct H1Config {
    /// Chain lengths, each with `n` chains (the output is ordered by length: a curriculum).
    pub min_len: usize,
    pub max_len: usize,
    pub n: usize,
    pub seed: u64,
}

/// Builds one chain of `len` links from the pool, with `rng`; `None` after many tries.
pub fn chain(pool: &[Source], len: usize, rng: &mut impl Rng) -> Option<(Vec<Link>, String)> {
    if pool.is_empty() || len == 0 {
        return None;
    }
    'outer: for _ in 0..100 {
        let first = &pool[rng.gen_range(0..pool.len())];
        let mut links = vec![Link {
            problem_id: first.id.clone(),
            replaced: None,
            input: None,
            answer: first.answer.to_string(),
        }];
        let mut text = format!("Problem 1: {}", first.question);
        let mut prev = first.answer.clone();
        let mut used = vec![first.id.clone()];
        for k in 2..=len {
            let mut found = false;
            for _ in 0..200 {
                let s = &pool[rng.gen_range(0..pool.len())];
                if used.contains(&s.id) {
                    continue;
                }
                let slots = s.slots();
                if slots.is_empty() {
                    continue;
                }
                let slot = &slots[rng.gen_range(0..slots.len())];
                let Some(v) = replay(&s.annotations, &[(slot.clone(), prev.clone())]) else {
                    continue;
                };
                if !(v.is_integer() && v.is_positive()) || v.is_zero() {
                    continue;
                }
                text.push_str(&format!(
                    "\n\nProblem {k}: {}",
                    s.rewrite(slot, &format!("[the answer of Problem {}]", k - 1))
                ));
                links.push(Link {
                    problem_id: s.id.clone(),
                    replaced: Some(slot.to_string()),
                    input: Some(prev.to_string()),
                    answer: v.to_string(),
                });
                used.push(s.id.clone());
                prev = v;
                found = true;
                break;
            }
            if !found {
                continue 'outer;
            }
        }
        text.push_str(&format!(
            "\n\nSolve the problems in order; each uses the answer of the one before. What is the answer of Problem {len}? End with: The answer is <number>."
        ));
        return Some((links, text));
    }
    None
}

/// The chains of a config over `sources` (GSM8K problems with references), ordered by
/// length; problems that fail [`Source::from_problem`] are left out of the pool.
pub fn problems<'a>(
    config: &'a H1Config,
    sources: &[Problem],
) -> impl Iterator<Item = Problem> + 'a {
    let pool: Vec<Source> = sources.iter().filter_map(Source::from_problem).collect();
    (config.min_len..=config.max_len).flat_map(move |len| {
        let pool = pool.clone();
        (0..config.n).filter_map(move |i| {
            let mut rng = ChaCha8Rng::seed_from_u64(
                config.seed ^ ((len as u64) << 32) ^ (i as u64).wrapping_mul(0x9E37_79B9),
            );
            let (links, text) = chain(&pool, len, &mut rng)?;
            let mut p = Problem::new(format!("h1:len={len},seed={}:{i}", config.seed), text);
            p.gold = links.last().map(|l| l.answer.clone());
            p.metadata
                .insert(crate::check::TASK_KEY.into(), "h1".into());
            p.metadata
                .insert("h1_length".into(), serde_json::Value::from(len as u64));
            if let Ok(v) = serde_json::to_value(&links) {
                p.metadata.insert("h1_links".into(), v);
            }
            Some(p)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64) -> BigRational {
        BigRational::from_integer(n.into())
    }

    #[test]
    fn replays_a_gsm8k_solution_by_hand() {
        let reference = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72";
        let anns = annotations(reference);
        assert_eq!(anns.len(), 2);
        assert_eq!(replay(&anns, &[]), Some(q(72)));
        // 48 friends become 10: 10/2 = 5 in May, 10 + 5 = 15
        assert_eq!(replay(&anns, &[(q(48), q(10))]), Some(q(15)));
    }

    #[test]
    fn slots_and_rewrites() {
        let mut p = Problem::new(
            "g1",
            "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
        );
        p.reference = Some("Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10".into());
        p.gold = Some("10".into());
        let s = Source::from_problem(&p).unwrap();
        assert_eq!(s.slots(), vec![q(12), q(50)]);
        // $30 an hour for 50 minutes: 30/60 = 0.5 per minute, 0.5 * 50 = 25
        assert_eq!(replay(&s.annotations, &[(q(12), q(30))]), Some(q(25)));
        assert!(
            s.rewrite(&q(12), "[X]")
                .starts_with("Weng earns $[X] an hour")
        );
    }
}
