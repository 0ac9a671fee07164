//! Selection rules (SFT) and pair rules (DPO) over one problem's candidates. Pure: the
//! build job calls them per problem; tests call them directly.

use crate::candidates::Candidate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use stepwise_verify::{Options, best_group, group_answers, verify};

/// Which samples of a problem become SFT examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum SftRule {
    /// Every sample whose answer verifies against the gold answer (rejection-sampling
    /// SFT, as in STILL-2's self-improvement and weak-to-strong supervision).
    Verified,
    /// Every sample giving the majority-voted answer (no gold needed; MC-CoT's voted
    /// rationales). At least `min_votes` samples must agree.
    Majority { min_votes: usize },
    /// The `k` samples with the highest stored scorer / PRM score.
    Top { k: usize },
    /// The shortest verified sample (fewest tokens, then fewest characters).
    Shortest,
    /// Every solution of an `annotate` run whose every step is labelled good (by the
    /// run's method: Monte-Carlo, OmegaPRM, reference, grounded).
    GoodSteps,
}

impl std::str::FromStr for SftRule {
    type Err = String;
    /// `verified`, `majority` / `majority:MIN_VOTES`, `top:K`, `shortest`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, arg) = s.split_once(':').map_or((s, None), |(a, b)| (a, Some(b)));
        let num = |d: usize| -> Result<usize, String> {
            arg.map_or(Ok(d), |a| {
                a.parse::<usize>()
                    .ok()
                    .filter(|&k| k > 0)
                    .ok_or_else(|| format!("rule '{s}': '{a}' is not a positive number"))
            })
        };
        match name {
            "verified" => Ok(Self::Verified),
            "majority" => Ok(Self::Majority { min_votes: num(2)? }),
            "top" => Ok(Self::Top { k: num(1)? }),
            "shortest" => Ok(Self::Shortest),
            "good-steps" | "labelled" => Ok(Self::GoodSteps),
            _ => Err(format!(
                "unknown selection rule '{s}' (expected verified, majority[:MIN_VOTES], top:K, shortest or good-steps)"
            )),
        }
    }
}

/// Which candidates may be used at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    pub min_tokens: Option<u64>,
    pub max_tokens: Option<u64>,
    pub min_steps: Option<usize>,
    pub max_steps: Option<usize>,
    /// Only samples that reached a final answer by themselves (format: an answer line).
    pub require_answer: bool,
}

impl Filters {
    pub fn admits(&self, c: &Candidate) -> bool {
        self.min_tokens.is_none_or(|m| c.tokens >= m)
            && self.max_tokens.is_none_or(|m| c.tokens <= m)
            && self.min_steps.is_none_or(|m| c.steps.len() >= m)
            && self.max_steps.is_none_or(|m| c.steps.len() <= m)
            && (!self.require_answer || (c.finished && c.answer.is_some()))
    }
}

/// How near-duplicates are removed from a selection (in its order, the first is kept).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dedup {
    None,
    /// One sample per distinct answer (answers compared by `verify`).
    Answer,
    /// No two samples whose texts are near-identical: the same words after lower-casing,
    /// or word-trigram Jaccard similarity at least `threshold`.
    Text {
        threshold: f64,
    },
}

/// Counts of what happened to candidates (summed into the manifest).
pub type Counts = BTreeMap<String, usize>;

fn bump(c: &mut Counts, k: &str, n: usize) {
    *c.entry(k.to_string()).or_default() += n;
}

fn words(t: &str) -> Vec<String> {
    t.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn trigrams(t: &str) -> HashSet<String> {
    let w = words(t);
    if w.len() < 3 {
        return std::iter::once(w.join(" ")).collect();
    }
    w.windows(3).map(|x| x.join(" ")).collect()
}

/// Word-trigram Jaccard similarity of two texts (1 for texts with the same words).
pub fn similarity(a: &str, b: &str) -> f64 {
    if words(a) == words(b) {
        return 1.0;
    }
    let (x, y) = (trigrams(a), trigrams(b));
    let inter = x.intersection(&y).count() as f64;
    let union = x.union(&y).count() as f64;
    if union == 0.0 { 1.0 } else { inter / union }
}

fn dedup<'a>(sel: Vec<&'a Candidate>, how: Dedup, counts: &mut Counts) -> Vec<&'a Candidate> {
    let opts = Options::default();
    let mut kept: Vec<&Candidate> = Vec::new();
    for c in sel {
        let dup = match how {
            Dedup::None => false,
            Dedup::Answer => kept.iter().any(|k| match (&k.answer, &c.answer) {
                (Some(a), Some(b)) => verify(a, b, &opts).is_equal(),
                (None, None) => true,
                _ => false,
            }),
            Dedup::Text { threshold } => kept
                .iter()
                .any(|k| similarity(&k.text, &c.text) >= threshold),
        };
        if dup {
            bump(counts, "duplicates", 1);
        } else {
            kept.push(c);
        }
    }
    kept
}

fn by_score_desc(v: &mut [&Candidate]) {
    // stable: ties keep stored order; unscored last
    v.sort_by(|a, b| {
        let s = |c: &Candidate| {
            c.score
                .filter(|x| x.is_finite())
                .unwrap_or(f64::NEG_INFINITY)
        };
        s(b).total_cmp(&s(a))
    });
}

/// The members of the majority-voted answer among `cands` (answers grouped by verify).
pub fn majority<'a>(cands: &[&'a Candidate]) -> Vec<&'a Candidate> {
    let answered: Vec<&Candidate> = cands
        .iter()
        .copied()
        .filter(|c| c.answer.is_some())
        .collect();
    let answers: Vec<Option<String>> = answered.iter().map(|c| c.answer.clone()).collect();
    let groups = group_answers(&answers, &vec![1.0; answers.len()], &Options::default());
    match best_group(&groups) {
        Some(g) => g.members.iter().map(|&i| answered[i]).collect(),
        None => Vec::new(),
    }
}

/// The SFT selection of one problem: filter, apply the rule, remove duplicates.
pub fn select<'a>(
    cands: &'a [Candidate],
    rule: &SftRule,
    filters: &Filters,
    how: Dedup,
    counts: &mut Counts,
) -> Vec<&'a Candidate> {
    bump(counts, "candidates", cands.len());
    let ok: Vec<&Candidate> = cands.iter().filter(|c| filters.admits(c)).collect();
    bump(counts, "filtered_out", cands.len() - ok.len());
    let (ranked, limit) = match rule {
        SftRule::Verified => (
            ok.iter()
                .copied()
                .filter(|c| c.correct == Some(true))
                .collect(),
            None,
        ),
        SftRule::Majority { min_votes } => {
            let m = majority(&ok);
            if m.len() < *min_votes {
                bump(counts, "no_majority", 1);
                (Vec::new(), None)
            } else {
                (m, None)
            }
        }
        SftRule::Top { k } => {
            let mut v: Vec<&Candidate> = ok.iter().copied().filter(|c| c.score.is_some()).collect();
            by_score_desc(&mut v);
            (v, Some(*k))
        }
        SftRule::Shortest => {
            let mut v: Vec<&Candidate> = ok
                .iter()
                .copied()
                .filter(|c| c.correct == Some(true))
                .collect();
            v.sort_by_key(|c| (c.tokens, c.text.chars().count()));
            (v, Some(1))
        }
        SftRule::GoodSteps => (
            ok.iter().copied().filter(|c| c.all_steps_good()).collect(),
            None,
        ),
    };
    bump(counts, "not_selected", ok.len() - ranked.len());
    let mut kept = dedup(ranked, how, counts);
    if let Some(k) = limit
        && kept.len() > k
    {
        bump(counts, "not_selected", kept.len() - k);
        kept.truncate(k);
    }
    bump(counts, "selected", kept.len());
    kept
}

/// How preference pairs are formed from a problem's stored samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum PairRule {
    /// Verified-correct (chosen) against verified-wrong (rejected) samples; with a
    /// `margin`, the chosen score must exceed the rejected one by at least it (both
    /// scored). Chosen in order of score, each rejected used once, hardest (highest
    /// scored) negatives first.
    Verified { margin: Option<f64> },
    /// QCRD (Wang et al., *Distilling Reasoning Ability from LLMs with Adaptive
    /// Thinking*, 2024): positives are the majority-voted rationales (at least
    /// `min_votes` agreeing), negatives the model's own rationales with other answers.
    Contrastive { min_votes: usize },
    /// Step intervention (IPO-style, safe-reasoning): at a rejected sample's first
    /// wrong step, the chosen side continues from the corrected prefix (regenerated by
    /// the policy), the rejected side is the sample from its wrong step on.
    Intervention { locate: Locate, tries: usize },
    /// Judgment pairs (self-rationalization, Trivedi et al. 2024): for each sample a
    /// Likert judge scored, its best- and worst-rated judgments (first of each on ties)
    /// become a pair whose prompt is the judge prompt; a sample whose judgments all
    /// rate alike (or with fewer than two rated) gives none.
    Judgments,
}

/// How the first wrong step of a sample is found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Locate {
    /// `arith` ground truth (`ArithSpec::ground_truth`); the corrected step is the true
    /// next intermediate step.
    Arith,
    /// The first step whose stored score is below `threshold`; the step is regenerated.
    Scorer { threshold: f64 },
    /// The first step an `annotate` run labelled bad (any sample with one, whatever its
    /// final answer); the step is regenerated.
    Labels,
}

impl std::str::FromStr for PairRule {
    type Err = String;
    /// `verified`, `verified:MARGIN`, `contrastive[:MIN_VOTES]`,
    /// `intervention:arith[:TRIES]`, `intervention:score<T[:TRIES]`,
    /// `intervention:labels[:TRIES]`.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || {
            format!(
                "unknown pair rule '{s}' (expected verified[:MARGIN], contrastive[:MIN_VOTES], intervention:arith[:TRIES], intervention:score<T[:TRIES], intervention:labels[:TRIES] or likert-judgments)"
            )
        };
        let count = |x: Option<&&str>, d: usize| -> Result<usize, String> {
            x.map_or(Ok(d), |a| {
                a.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(bad)
            })
        };
        match parts[0] {
            "judgments" | "likert-judgments" if parts.len() == 1 => Ok(Self::Judgments),
            "verified" => Ok(Self::Verified {
                margin: parts
                    .get(1)
                    .map(|m| {
                        m.parse::<f64>()
                            .ok()
                            .filter(|x| x.is_finite())
                            .ok_or_else(bad)
                    })
                    .transpose()?,
            }),
            "contrastive" | "qcrd" => Ok(Self::Contrastive {
                min_votes: count(parts.get(1), 2)?,
            }),
            "intervention" | "ipo" => {
                let locate = match parts.get(1).copied() {
                    Some("arith") | None => Locate::Arith,
                    Some("labels") => Locate::Labels,
                    Some(x) => match x.strip_prefix("score<") {
                        Some(t) => Locate::Scorer {
                            threshold: t
                                .parse()
                                .ok()
                                .filter(|v: &f64| v.is_finite())
                                .ok_or_else(bad)?,
                        },
                        None => return Err(bad()),
                    },
                };
                Ok(Self::Intervention {
                    locate,
                    tries: count(parts.get(2), 4)?,
                })
            }
            _ => Err(bad()),
        }
    }
}

/// A pair of samples of one problem.
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    pub chosen: &'a Candidate,
    pub rejected: &'a Candidate,
}

/// Pairs of stored samples for the rules that need no generation (`Verified`,
/// `Contrastive`); at most `max_pairs`, each sample in one pair at most.
pub fn pairs<'a>(
    cands: &'a [Candidate],
    rule: &PairRule,
    filters: &Filters,
    max_pairs: usize,
    counts: &mut Counts,
) -> Vec<Pair<'a>> {
    bump(counts, "candidates", cands.len());
    let ok: Vec<&Candidate> = cands.iter().filter(|c| filters.admits(c)).collect();
    bump(counts, "filtered_out", cands.len() - ok.len());
    let (mut pos, mut neg, margin): (Vec<&Candidate>, Vec<&Candidate>, Option<f64>) = match rule {
        PairRule::Verified { margin } => (
            ok.iter()
                .copied()
                .filter(|c| c.correct == Some(true))
                .collect(),
            ok.iter()
                .copied()
                .filter(|c| c.correct == Some(false))
                .collect(),
            *margin,
        ),
        PairRule::Contrastive { min_votes } => {
            let m = majority(&ok);
            if m.len() < *min_votes {
                bump(counts, "no_majority", 1);
                (Vec::new(), Vec::new(), None)
            } else {
                let neg = ok
                    .iter()
                    .copied()
                    .filter(|c| c.answer.is_some() && !m.iter().any(|x| std::ptr::eq(*x, *c)))
                    .collect();
                (m, neg, None)
            }
        }
        PairRule::Intervention { .. } | PairRule::Judgments => (Vec::new(), Vec::new(), None),
    };
    by_score_desc(&mut pos);
    by_score_desc(&mut neg);
    let mut used = vec![false; neg.len()];
    let mut out = Vec::new();
    for c in pos {
        if out.len() >= max_pairs {
            break;
        }
        let fits = |r: &Candidate| match margin {
            None => true,
            Some(m) => matches!((c.score, r.score), (Some(a), Some(b)) if a - b >= m),
        };
        if let Some(j) = (0..neg.len()).find(|&j| !used[j] && fits(neg[j])) {
            used[j] = true;
            out.push(Pair {
                chosen: c,
                rejected: neg[j],
            });
        } else if margin.is_some() && !neg.is_empty() {
            bump(counts, "below_margin", 1);
        }
    }
    bump(counts, "pairs", out.len());
    out
}

/// The best- and worst-rated judgments of one Likert record (indices into its
/// judgments): the highest score (first on ties) and the lowest (first on ties); `None`
/// with fewer than two rated judgments or when all rate alike.
pub fn judgment_pair(r: &stepwise_score::LikertRecord) -> Option<(usize, usize)> {
    let rated: Vec<(usize, u32)> = r
        .judgments
        .iter()
        .enumerate()
        .filter_map(|(i, j)| j.score.map(|k| (i, k)))
        .collect();
    let best = rated
        .iter()
        .copied()
        .reduce(|a, b| if b.1 > a.1 { b } else { a })?;
    let worst = rated
        .iter()
        .copied()
        .reduce(|a, b| if b.1 < a.1 { b } else { a })?;
    (best.1 > worst.1).then_some((best.0, worst.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judgment_pairs_take_the_best_and_worst_rated() {
        let rec = |scores: &[Option<u32>]| stepwise_score::LikertRecord {
            version: 1,
            scale: 5,
            prompt: stepwise_model::Prompt::Text("judge this".into()),
            start: String::new(),
            judgments: scores
                .iter()
                .map(|&score| stepwise_score::LikertJudgment {
                    text: format!("{score:?}"),
                    score,
                })
                .collect(),
            mean: None,
            abstained: 0,
        };
        // 3, 5, none, 1, 5: best the first 5 (1), worst the 1 (3)
        assert_eq!(
            judgment_pair(&rec(&[Some(3), Some(5), None, Some(1), Some(5)])),
            Some((1, 3))
        );
        assert_eq!(judgment_pair(&rec(&[Some(4), Some(4)])), None);
        assert_eq!(judgment_pair(&rec(&[Some(4), None])), None);
        assert_eq!(judgment_pair(&rec(&[])), None);
        assert_eq!("likert-judgments".parse(), Ok(PairRule::Judgments));
        assert!("judgments:2".parse::<PairRule>().is_err());
    }

    #[test]
    fn similarity_by_hand() {
        // trigrams of "a b c d": {abc, bcd}; of "a b c e": {abc, bce}: 1 / 3
        assert!((similarity("a b c d", "a b c e") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(similarity("The  answer, 7.", "the answer 7"), 1.0);
    }

    #[test]
    fn rules_parse() {
        assert_eq!("top:3".parse::<SftRule>(), Ok(SftRule::Top { k: 3 }));
        assert!("top:0".parse::<SftRule>().is_err());
        assert_eq!(
            "intervention:score<0.5:2".parse::<PairRule>(),
            Ok(PairRule::Intervention {
                locate: Locate::Scorer { threshold: 0.5 },
                tries: 2
            })
        );
        assert_eq!(
            "verified:0.2".parse::<PairRule>(),
            Ok(PairRule::Verified { margin: Some(0.2) })
        );
        assert!("nope".parse::<PairRule>().is_err());
    }
}
