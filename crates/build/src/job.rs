//! The build job: one unit per problem of the source runs, its rows stored in the run
//! store (kind `data-build`), the output file written from the stored records.

use crate::candidates::{Candidate, Pool};
use crate::rules::{self, Counts, Dedup, Filters, Locate, PairRule, SftRule};
use crate::{BuildError, Message, PairRow, SftRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use stepwise_core::Problem;
use stepwise_jobs::{Job, RunId, RunKind, UnitError};
use stepwise_model::{GenerateRequest, Generator, Prompt, Role};
use stepwise_search::Context;
use stepwise_search::jobs::Backends;

/// What to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "build", rename_all = "snake_case")]
pub enum BuildSpec {
    Sft {
        rule: SftRule,
        dedup: Dedup,
        /// `messages` (one conversation) or `prompt`/`completion`.
        format: SftFormat,
    },
    Pairs {
        rule: PairRule,
        max_pairs: usize,
        /// Each side gains its rationale (`chosen_rationale`, `rejected_rationale`).
        enrich: bool,
    },
}

/// TRL's SFT layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SftFormat {
    Messages,
    PromptCompletion,
}

/// Everything that decides a build's rows (stored with the run, compared on resume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildConfig {
    /// The runs read (solve or scale), in order.
    pub sources: Vec<RunId>,
    pub spec: BuildSpec,
    pub filters: Filters,
    /// The policy backend's name (interventions generate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl BuildConfig {
    /// Whether the build generates continuations (step intervention), so needs the
    /// policy model.
    pub fn needs_policy(&self) -> bool {
        matches!(
            self.spec,
            BuildSpec::Pairs {
                rule: PairRule::Intervention { .. },
                ..
            }
        )
    }
}

/// A stored unit: one problem's rows and what happened to its candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub problem_id: String,
    #[serde(default)]
    pub sft: Vec<SftRow>,
    #[serde(default)]
    pub pairs: Vec<PairRow>,
    pub counts: Counts,
}

/// `data-build` runs: one unit per problem, keyed by its id.
pub struct Build;

impl RunKind for Build {
    const KIND: &'static str = "data-build";
    const VERSION: u32 = 1;
    type Config = BuildConfig;
    type Record = BuildRecord;
}

/// The job (sources already read into a pool).
pub struct BuildJob {
    config: BuildConfig,
    pool: Pool,
    ctx: Context,
    policy: Option<Arc<dyn Generator>>,
}

impl BuildJob {
    /// A build over `pool` (read from `config.sources`); `policy` is needed by
    /// interventions only.
    pub fn new(
        config: BuildConfig,
        pool: Pool,
        policy: Option<Arc<dyn Generator>>,
    ) -> Result<Self, BuildError> {
        if config.needs_policy() && policy.is_none() {
            return Err(BuildError::Config(
                "step intervention regenerates continuations: it needs a policy model".into(),
            ));
        }
        let mut settings = pool.settings.clone();
        settings.scorer = None;
        let backends = Backends {
            policy: policy.clone().unwrap_or_else(|| Arc::new(NoModel)),
            judge: None,
            prm: Default::default(),
        };
        let ctx = Context::from_settings(&settings, &backends)
            .map_err(|e| BuildError::Config(format!("the source run's settings: {e}")))?;
        Ok(Self {
            config,
            pool,
            ctx,
            policy,
        })
    }

    fn prompt(&self, p: &Problem) -> Result<(Vec<Message>, String), UnitError> {
        let (prompt, start) = self.ctx.prompt.render(p)?;
        Ok((messages(&prompt), start))
    }

    fn sft_row(&self, p: &Problem, c: &Candidate, format: SftFormat) -> Result<SftRow, UnitError> {
        let (prompt, start) = self.prompt(p)?;
        let answer = vec![Message::assistant(format!("{start}{}", c.text))];
        let (messages, prompt, completion) = match format {
            SftFormat::Messages => (Some([prompt, answer].concat()), None, None),
            SftFormat::PromptCompletion => (None, Some(prompt), Some(answer)),
        };
        Ok(SftRow {
            messages,
            prompt,
            completion,
            id: p.id.clone(),
            answer: c.answer.clone(),
            correct: c.correct,
            score: c.score,
            source: format!("{}/{}#{}", c.run, c.unit, c.index),
        })
    }

    fn pair_row(
        &self,
        p: &Problem,
        chosen: &str,
        rejected: &str,
        rule: &str,
        scores: (Option<f64>, Option<f64>),
    ) -> Result<PairRow, UnitError> {
        let (prompt, start) = self.prompt(p)?;
        Ok(PairRow {
            prompt,
            chosen: vec![Message::assistant(format!("{start}{chosen}"))],
            rejected: vec![Message::assistant(format!("{start}{rejected}"))],
            id: p.id.clone(),
            rule: rule.to_string(),
            chosen_score: scores.0,
            rejected_score: scores.1,
            chosen_rationale: None,
            rejected_rationale: None,
            prefix_steps: None,
        })
    }

    /// IPO-style step intervention on one problem.
    async fn intervene(
        &self,
        p: &Problem,
        cands: &[Candidate],
        locate: Locate,
        tries: usize,
        max_pairs: usize,
        counts: &mut Counts,
    ) -> Result<Vec<PairRow>, UnitError> {
        let Some(policy) = &self.policy else {
            return Err("step intervention needs a policy model".into());
        };
        let sep = self.ctx.splitter.separator().to_string();
        let spec = match locate {
            Locate::Arith => Some(stepwise_data::arith::ArithSpec::from_problem(p)?),
            Locate::Scorer { .. } | Locate::Labels => None,
        };
        let mut out = Vec::new();
        for (k, c) in cands.iter().enumerate() {
            if out.len() >= max_pairs {
                break;
            }
            // by labels, a sample with a step labelled bad; otherwise a wrong sample
            let eligible = match locate {
                Locate::Labels => c.first_bad_label().is_some(),
                _ => c.correct == Some(false),
            };
            if !eligible || !self.config.filters.admits(c) {
                continue;
            }
            let seen = match locate {
                Locate::Labels => "labelled_bad_samples",
                _ => "wrong_samples",
            };
            *counts.entry(seen.into()).or_default() += 1;
            // the first wrong step and the corrected step, when the truth gives one
            let (wrong, corrected) = if let Some(spec) = &spec {
                let gt = spec.ground_truth(&c.steps);
                let Some(i) = gt.first_wrong else {
                    *counts.entry("no_wrong_step".into()).or_default() += 1;
                    continue;
                };
                // the intermediate after the last one reached before the wrong step
                let next = gt.steps[..i]
                    .iter()
                    .filter_map(|v| match v {
                        stepwise_data::StepVerdict::Reaches { intermediate } => {
                            Some(intermediate + 1)
                        }
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0);
                let fix = spec
                    .steps
                    .get(next)
                    .map(|s| format!("{} = {}", s.expr, s.value));
                (i, fix)
            } else {
                let found = match locate {
                    Locate::Scorer { threshold } => {
                        c.step_scores.iter().position(|&s| s < threshold)
                    }
                    Locate::Labels => c.first_bad_label(),
                    Locate::Arith => None,
                };
                match found {
                    Some(i) if i < c.steps.len() => (i, None),
                    _ => {
                        *counts.entry("no_wrong_step".into()).or_default() += 1;
                        continue;
                    }
                }
            };
            let mut prefix: String = c.steps[..wrong]
                .iter()
                .map(|s| format!("{s}{sep}"))
                .collect();
            if let Some(fix) = &corrected {
                prefix.push_str(fix);
                prefix.push_str(&sep);
            }
            let (prompt, start) = self.ctx.prompt.render(p)?;
            let mut params = self.ctx.sampling.clone();
            params.n = tries;
            params.seed = self.ctx.sampling.seed ^ (0x1b0 + k as u64);
            let completions = policy
                .generate(&GenerateRequest {
                    prompt,
                    assistant_prefix: format!("{start}{prefix}"),
                    params,
                })
                .await?;
            let opts = stepwise_verify::Options::default();
            let good = completions.iter().find_map(|comp| {
                let text = format!("{prefix}{}", self.ctx.cut_after_answer(&comp.text));
                let r = self.ctx.parse(&text);
                stepwise_jobs::answer_correct(p, r.answer.as_deref(), &opts)
                    .unwrap_or(false)
                    .then_some(text)
            });
            let Some(chosen) = good else {
                *counts.entry("no_correct_continuation".into()).or_default() += 1;
                continue;
            };
            let mut row = self.pair_row(p, &chosen, &c.text, "intervention", (None, c.score))?;
            row.prefix_steps = Some(wrong);
            out.push(row);
        }
        *counts.entry("pairs".into()).or_default() += out.len();
        Ok(out)
    }
}

/// A prompt as TRL's chat messages.
fn messages(prompt: &Prompt) -> Vec<Message> {
    match prompt {
        Prompt::Chat(m) => m
            .iter()
            .map(|m| Message {
                role: match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                }
                .into(),
                content: m.content.clone(),
            })
            .collect(),
        Prompt::Text(t) => vec![Message::user(t.clone())],
    }
}

/// Judgment pairs of one problem ([`PairRule::Judgments`]): per admitted sample with
/// stored Likert judgments, its best- and worst-rated ([`rules::judgment_pair`]) as a
/// TRL DPO row whose prompt is the judge prompt and whose sides are the judge's turns
/// (the text the turn starts with, then the judgment); at most `max_pairs`.
fn judgment_rows(
    p: &Problem,
    cands: &[Candidate],
    filters: &rules::Filters,
    max_pairs: usize,
    counts: &mut BTreeMap<String, usize>,
) -> Vec<PairRow> {
    let mut bump = |k: &str| *counts.entry(k.to_string()).or_default() += 1;
    let mut rows = Vec::new();
    for c in cands {
        bump("candidates");
        if !filters.admits(c) {
            bump("filtered_out");
            continue;
        }
        let Some(rec) = &c.likert else {
            bump("no_judgments");
            continue;
        };
        let Some((best, worst)) = rules::judgment_pair(rec) else {
            bump("tied_judgments");
            continue;
        };
        if rows.len() >= max_pairs {
            break;
        }
        let prompt = messages(&rec.prompt);
        let side = |i: usize| {
            vec![Message::assistant(format!(
                "{}{}",
                rec.start, rec.judgments[i].text
            ))]
        };
        rows.push(PairRow {
            prompt,
            chosen: side(best),
            rejected: side(worst),
            id: format!("{}/{}/{}", p.id, c.unit, c.index),
            rule: "likert-judgments".into(),
            chosen_score: rec.judgments[best].score.map(f64::from),
            rejected_score: rec.judgments[worst].score.map(f64::from),
            chosen_rationale: None,
            rejected_rationale: None,
            prefix_steps: None,
        });
        bump("pairs");
    }
    rows
}

/// The rationale of one side of a pair: its answer and verdict, its steps, its lowest
/// stored step score and, for `arith` problems, its true first wrong step.
pub fn rationale(p: &Problem, c: &Candidate) -> String {
    let verdict = match c.correct {
        Some(true) => "verified correct",
        Some(false) => "verified wrong",
        None => "not checked (no gold answer)",
    };
    let mut s = format!(
        "Final answer {}: {verdict}. {} step(s).",
        c.answer.as_deref().unwrap_or("(none)"),
        c.steps.len()
    );
    if let Some((i, v)) = c
        .step_scores
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
    {
        s.push_str(&format!(" Lowest step score {v:.3} at step {}.", i + 1));
    }
    if let Ok(spec) = stepwise_data::arith::ArithSpec::from_problem(p) {
        match spec.ground_truth(&c.steps).first_wrong {
            Some(i) => s.push_str(&format!(
                " First wrong step (arith truth): step {}: {}",
                i + 1,
                c.steps[i].trim()
            )),
            None => s.push_str(" No step is wrong (arith truth)."),
        }
    }
    s
}

/// Stands in for the policy when a build generates nothing.
struct NoModel;

#[async_trait::async_trait]
impl Generator for NoModel {
    fn name(&self) -> String {
        "none".into()
    }
    async fn generate(
        &self,
        _req: &GenerateRequest,
    ) -> Result<Vec<stepwise_model::Completion>, stepwise_model::EngineError> {
        Err(stepwise_model::EngineError::Unsupported(
            "generation (this build has no policy model)",
        ))
    }
    async fn next_token_logprobs(
        &self,
        _prompt: &Prompt,
        _prefix: &str,
        _candidates: &[String],
    ) -> Result<stepwise_model::NextTokenLogprobs, stepwise_model::EngineError> {
        Err(stepwise_model::EngineError::Unsupported(
            "log-probabilities (this build has no policy model)",
        ))
    }
}

#[derive(Default)]
pub struct BuildTally {
    rows: usize,
}

#[async_trait::async_trait]
impl Job for BuildJob {
    type Kind = Build;
    type Unit = String;
    type Tally = BuildTally;

    fn config(&self) -> &BuildConfig {
        &self.config
    }

    fn problems(&self) -> &[Problem] {
        &self.pool.problems
    }

    fn units(&self) -> Vec<(String, String)> {
        self.pool
            .problems
            .iter()
            .map(|p| (p.id.clone(), p.id.clone()))
            .collect()
    }

    async fn run_unit(&self, id: &String) -> Result<BuildRecord, UnitError> {
        let p = self
            .pool
            .problems
            .iter()
            .find(|p| &p.id == id)
            .ok_or_else(|| format!("problem '{id}' is not in the source runs"))?;
        let empty = Vec::new();
        let cands = self.pool.candidates.get(id).unwrap_or(&empty);
        let mut counts = BTreeMap::new();
        let mut rec = BuildRecord {
            problem_id: id.clone(),
            sft: Vec::new(),
            pairs: Vec::new(),
            counts: Counts::new(),
        };
        match &self.config.spec {
            BuildSpec::Sft {
                rule,
                dedup,
                format,
            } => {
                for c in rules::select(cands, rule, &self.config.filters, *dedup, &mut counts) {
                    rec.sft.push(self.sft_row(p, c, *format)?);
                }
            }
            BuildSpec::Pairs {
                rule,
                max_pairs,
                enrich,
            } => {
                let mut rows = Vec::new();
                if *rule == PairRule::Judgments {
                    rows = judgment_rows(p, cands, &self.config.filters, *max_pairs, &mut counts);
                } else if let PairRule::Intervention { locate, tries } = rule {
                    *counts.entry("candidates".into()).or_default() += cands.len();
                    rows = self
                        .intervene(p, cands, *locate, *tries, *max_pairs, &mut counts)
                        .await?;
                } else {
                    let name = match rule {
                        PairRule::Verified { .. } => "verified",
                        _ => "contrastive",
                    };
                    for pair in
                        rules::pairs(cands, rule, &self.config.filters, *max_pairs, &mut counts)
                    {
                        let mut row = self.pair_row(
                            p,
                            &pair.chosen.text,
                            &pair.rejected.text,
                            name,
                            (pair.chosen.score, pair.rejected.score),
                        )?;
                        if *enrich {
                            row.chosen_rationale = Some(rationale(p, pair.chosen));
                            row.rejected_rationale = Some(rationale(p, pair.rejected));
                        }
                        rows.push(row);
                    }
                }
                if *enrich && matches!(rule, PairRule::Intervention { .. }) {
                    for row in &mut rows {
                        row.chosen_rationale = Some(format!(
                            "Continues from the corrected prefix (first {} step(s) kept); final answer verified correct.",
                            row.prefix_steps.unwrap_or(0)
                        ));
                        row.rejected_rationale = Some(format!(
                            "Goes wrong at step {} and keeps the wrong value.",
                            row.prefix_steps.unwrap_or(0) + 1
                        ));
                    }
                }
                rec.pairs = rows;
            }
        }
        rec.counts = counts;
        Ok(rec)
    }

    fn tally(&self, t: &mut BuildTally, r: &BuildRecord) -> String {
        t.rows += r.sft.len() + r.pairs.len();
        format!("{} rows", t.rows)
    }
}
