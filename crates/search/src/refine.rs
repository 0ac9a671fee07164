//! Critique-and-refine: a critic reviews the policy's solution step by step and names the
//! first wrong step; the policy rewrites the solution from that step with the critique in
//! context; until the critic accepts or the budget ends.
//!
//! The method is the test-time loop of AutoMathCritique (Xi et al. 2024, "Enhancing LLM
//! Reasoning via Critique Models with Test-Time and Training-Time Supervision",
//! arXiv:2411.16579): a critique model writes step-level feedback ending in a judgment of
//! the solution, and the actor refines its answer with that feedback, sequentially, for a
//! number of rounds. Here, for a problem and at most `rounds` rounds:
//!
//! 1. the policy writes a solution `s_0` (policy prompt, `--max-tokens`);
//! 2. round `r = 1..=rounds`: the critic (the judge backend when one is given, else the
//!    policy itself) reads `s_{r-1}` with its steps numbered (`prompts/critic.txt`) and
//!    writes feedback ending in the fixed line `First wrong step: K` or
//!    `First wrong step: none`;
//!    - `none`: the critic accepts `s_{r-1}`; the loop ends;
//!    - `K` (1-based, a step the solution has): steps `1..K-1` are kept; the policy
//!      (`prompts/refine.txt`: the question, the reviewed solution, the critique) continues
//!      from the kept steps, which start its turn, giving `s_r`;
//!    - no such line, or a `K` the solution does not have: the critique is **unparsed**.
//!      It is counted (a `Critique` event with verdict `unparsed`, and a note), and it is
//!      *not* an acceptance: it is taken as a rejection that locates no step, so no step
//!      is kept and the policy rewrites the whole solution from step 1 with the critique
//!      in context;
//! 3. the answer is that of the last solution written (the accepted one, or the last
//!    revision when the rounds or the budget end); `samples` hold every solution in
//!    order, `chosen` is the last.
//!
//! Every call checks the budget first (policy and critic tokens together); when it is
//! spent the loop stops with a `stopped:` note and the last solution stands. Policy
//! tokens go in the policy columns; the critic's tokens go in the judge columns even when
//! the critic is the policy (as for `self-judge`), and each sample's `judge` holds what
//! critiquing it cost. Defaults: 3 rounds (`solve --rounds`; in `scale` and the gateway,
//! `n` is the number of rounds), the critic writes at most `--max-tokens` tokens unless
//! `--critic-max-tokens` says otherwise, at the policy's temperature.

use crate::{Context, Ledger, Outcome, Sample, SearchError, Strategy, sample_of as sample};
use async_trait::async_trait;
use std::sync::Arc;
use stepwise_core::{Budget, CritiqueVerdict, Problem, Rationale, Step, TraceEvent};
use stepwise_model::{Completion, GenerateRequest, Generator, Prompt, SamplingParams};
use stepwise_score::PromptTemplate;

const CRITIC_DEFAULT: &str = include_str!("../prompts/critic.txt");
const REFINE_DEFAULT: &str = include_str!("../prompts/refine.txt");

/// The critic's and the refiner's prompt templates, and how long a critique may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CritiquePrompts {
    critic: PromptTemplate,
    refine: PromptTemplate,
    /// Most tokens of one critique; `None` is the policy's `max_tokens`.
    pub max_tokens: Option<u32>,
}

impl CritiquePrompts {
    /// Placeholders of the critic template.
    pub const CRITIC_PLACEHOLDERS: [&'static str; 3] = ["question", "steps", "answer"];
    /// Placeholders of the refine template.
    pub const REFINE_PLACEHOLDERS: [&'static str; 4] =
        ["question", "steps", "critique", "step_number"];

    /// Templates from their texts (`None`: the built-in `prompts/critic.txt` and
    /// `prompts/refine.txt`); errors name the template.
    pub fn new(
        critic: Option<&str>,
        refine: Option<&str>,
        max_tokens: Option<u32>,
    ) -> Result<Self, SearchError> {
        let parse = |text: Option<&str>, default: &str, place: &str, allowed: &[&str]| {
            let (text, place) = match text {
                Some(t) => (t, place.to_string()),
                None => (default, format!("built-in prompts/{place}.txt")),
            };
            PromptTemplate::parse(text, &place, allowed)
                .map_err(|e| SearchError::Config(e.to_string()))
        };
        Ok(Self {
            critic: parse(critic, CRITIC_DEFAULT, "critic", &Self::CRITIC_PLACEHOLDERS)?,
            refine: parse(refine, REFINE_DEFAULT, "refine", &Self::REFINE_PLACEHOLDERS)?,
            max_tokens,
        })
    }

    /// The built-in critic template's text (to copy and edit).
    pub fn critic_text() -> &'static str {
        CRITIC_DEFAULT
    }

    /// The built-in refine template's text.
    pub fn refine_text() -> &'static str {
        REFINE_DEFAULT
    }

    /// The critic's prompt for `rationale`.
    pub fn critic_prompt(
        &self,
        problem: &Problem,
        rationale: &Rationale,
    ) -> Result<(Prompt, String), SearchError> {
        let steps = numbered(&rationale.steps);
        self.critic
            .render(&[
                ("question", &problem.question),
                ("steps", &steps),
                ("answer", rationale.answer.as_deref().unwrap_or("none")),
            ])
            .map_err(|e| SearchError::Config(e.to_string()))
    }

    /// The refiner's prompt for `rationale` reviewed by `critique`, rewriting from
    /// 0-based step `from`.
    pub fn refine_prompt(
        &self,
        problem: &Problem,
        rationale: &Rationale,
        critique: &str,
        from: usize,
    ) -> Result<(Prompt, String), SearchError> {
        let steps = numbered(&rationale.steps);
        let number = (from + 1).to_string();
        self.refine
            .render(&[
                ("question", &problem.question),
                ("steps", &steps),
                ("critique", critique.trim()),
                ("step_number", &number),
            ])
            .map_err(|e| SearchError::Config(e.to_string()))
    }
}

impl Default for CritiquePrompts {
    fn default() -> Self {
        Self::new(None, None, None)
            // The built-in files are tested below; failing here is a build defect.
            .unwrap_or_else(|e| panic!("built-in critique prompts are malformed: {e}"))
    }
}

/// Steps as numbered lines, `Step 1: ...`, or "(none)".
fn numbered(steps: &[Step]) -> String {
    if steps.is_empty() {
        return "(none)".into();
    }
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("Step {}: {}", i + 1, s.text))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads a critique's verdict: the first line of the form `First wrong step: K` or
/// `First wrong step: none` (case, surrounding `*`/`#` markup, a trailing period and a
/// leading "step" before K are allowed). `K` must be a step of a solution with `steps`
/// steps; the result's step is 0-based. Anything else is [`CritiqueVerdict::Unparsed`].
pub fn parse_critique(text: &str, steps: usize) -> (CritiqueVerdict, Option<usize>) {
    for line in text.lines() {
        let l = line
            .trim()
            .trim_matches(|c: char| c == '*' || c == '#' || c.is_whitespace())
            .to_ascii_lowercase();
        let Some(rest) = l.strip_prefix("first wrong step") else {
            continue;
        };
        let v = rest
            .trim_start_matches(|c: char| c == '*' || c.is_whitespace())
            .strip_prefix(':')
            .map(|v| {
                v.trim()
                    .trim_matches(|c: char| c == '*' || c == '.' || c.is_whitespace())
            });
        let Some(v) = v else {
            return (CritiqueVerdict::Unparsed, None);
        };
        if v == "none" {
            return (CritiqueVerdict::Accept, None);
        }
        let v = v.strip_prefix("step").map_or(v, str::trim);
        return match v.parse::<usize>() {
            Ok(k) if (1..=steps).contains(&k) => (CritiqueVerdict::Wrong, Some(k - 1)),
            _ => (CritiqueVerdict::Unparsed, None),
        };
    }
    (CritiqueVerdict::Unparsed, None)
}

/// Critique-and-refine with at most `rounds` critiques (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CritiqueRefine {
    pub rounds: usize,
}

impl CritiqueRefine {
    pub fn new(rounds: usize) -> Self {
        Self { rounds }
    }
}

impl Default for CritiqueRefine {
    /// 3 rounds.
    fn default() -> Self {
        Self::new(3)
    }
}

impl Ledger<'_> {
    /// One call of `generator` with an explicit prompt (not the problem's policy prompt):
    /// one sample, charged to the judge columns when `judge`, else to the policy's.
    async fn generate_prompted(
        &mut self,
        ctx: &Context,
        generator: &dyn Generator,
        (prompt, assistant_prefix): (Prompt, String),
        max_tokens: u32,
        stop: Vec<String>,
        judge: bool,
    ) -> Result<Completion, SearchError> {
        let req = GenerateRequest {
            prompt,
            assistant_prefix,
            params: SamplingParams {
                n: 1,
                max_tokens,
                stop,
                seed: self.next_seed(ctx.sampling.seed),
                ..ctx.sampling.clone()
            },
        };
        let fail = |source| {
            let problem = self.problem.id.clone();
            if judge {
                SearchError::Critic { problem, source }
            } else {
                SearchError::Policy { problem, source }
            }
        };
        let outs = generator.generate(&req).await.map_err(fail)?;
        let Some(c) = outs.into_iter().next() else {
            return Err(fail(stepwise_model::EngineError::Internal(
                "the backend returned no completion".into(),
            )));
        };
        if judge {
            self.spent.judge_calls += 1;
            self.spent.judge_tokens += c.generated_tokens;
            self.spent.judge_prompt_tokens += c.prompt_tokens;
        } else {
            self.spent.policy_calls += 1;
            self.spent.policy_tokens += c.generated_tokens;
            self.spent.policy_prompt_tokens += c.prompt_tokens;
        }
        self.sync_wall();
        Ok(c)
    }
}

#[async_trait]
impl Strategy for CritiqueRefine {
    fn name(&self) -> String {
        format!("critique-refine(rounds={})", self.rounds)
    }

    async fn solve(
        &self,
        problem: &Problem,
        budget: &Budget,
        ctx: &Context,
    ) -> Result<Outcome, SearchError> {
        if self.rounds == 0 {
            return Err(SearchError::Config(
                "critique-refine needs at least 1 round".into(),
            ));
        }
        let prompts = &ctx.critique;
        let critic: Arc<dyn Generator> = ctx.critic.clone().unwrap_or_else(|| ctx.policy.clone());
        let mut ledger = Ledger::new(problem, budget, &self.name());
        let mut samples: Vec<Sample> = Vec::new();
        let Some(max) = ledger.allowance(1, ctx.sampling.max_tokens) else {
            return Ok(ledger.finish(self.name(), None, None, samples));
        };
        let Some(first) = ledger
            .generate(ctx, "", 1, max, ctx.sampling.temperature, ctx.stop.clone())
            .await?
            .pop()
        else {
            return Err(SearchError::Policy {
                problem: problem.id.clone(),
                source: stepwise_model::EngineError::Internal(
                    "the backend returned no completion".into(),
                ),
            });
        };
        ledger.trace.push(TraceEvent::Expand {
            node: 0,
            children: vec![1],
            tokens: first.generated_tokens,
        });
        samples.push(sample(ctx, "", &first));
        let mut unparsed = 0usize;
        for round in 1..=self.rounds {
            let cur = samples.len() - 1;
            let critic_max = prompts.max_tokens.unwrap_or(ctx.sampling.max_tokens);
            let Some(max) = ledger.allowance(1, critic_max) else {
                break;
            };
            let before = ledger.spent;
            let prompt = prompts.critic_prompt(problem, &samples[cur].rationale)?;
            let c = ledger
                .generate_prompted(ctx, critic.as_ref(), prompt, max, Vec::new(), true)
                .await?;
            let mut cost = ledger.spent;
            cost.wall_ms = 0;
            samples[cur].judge = stepwise_core::Spent {
                judge_tokens: cost.judge_tokens - before.judge_tokens,
                judge_prompt_tokens: cost.judge_prompt_tokens - before.judge_prompt_tokens,
                judge_calls: cost.judge_calls - before.judge_calls,
                ..Default::default()
            };
            let critique = c.text.trim().to_string();
            let (verdict, first_wrong) = parse_critique(&critique, samples[cur].rationale.len());
            let mut event = TraceEvent::Critique {
                round,
                node: cur + 1,
                verdict,
                first_wrong,
                critique: critique.clone(),
                tokens: c.generated_tokens,
                revision: None,
            };
            let from = match verdict {
                CritiqueVerdict::Accept => {
                    ledger.trace.push(event);
                    ledger
                        .trace
                        .note(format!("round {round}: the critic accepted sample {cur}"));
                    break;
                }
                CritiqueVerdict::Wrong => first_wrong.unwrap_or(0),
                CritiqueVerdict::Unparsed => {
                    unparsed += 1;
                    ledger.trace.note(format!(
                        "round {round}: unparsed critique of sample {cur} ({unparsed} so far): no 'First wrong step:' line naming a step, so the whole solution is rewritten"
                    ));
                    0
                }
            };
            let Some(max) = ledger.allowance(1, ctx.sampling.max_tokens) else {
                ledger.trace.push(event);
                break;
            };
            let reviewed = &samples[cur].rationale;
            let kept_steps = &reviewed.steps[..from.min(reviewed.steps.len())];
            let kept = if kept_steps.is_empty() {
                String::new()
            } else {
                format!(
                    "{}{}",
                    ctx.splitter.join(kept_steps),
                    ctx.splitter.separator()
                )
            };
            let (prompt, start) = prompts.refine_prompt(problem, reviewed, &critique, from)?;
            let c = ledger
                .generate_prompted(
                    ctx,
                    ctx.policy.as_ref(),
                    (prompt, format!("{start}{kept}")),
                    max,
                    ctx.stop.clone(),
                    false,
                )
                .await?;
            let next = samples.len();
            ledger.trace.push(TraceEvent::Expand {
                node: cur + 1,
                children: vec![next + 1],
                tokens: c.generated_tokens,
            });
            if let TraceEvent::Critique { revision, .. } = &mut event {
                *revision = Some(next + 1);
            }
            ledger.trace.push(event);
            ledger.trace.note(format!(
                "round {round}: {} kept step(s) of sample {cur}, revised as sample {next}",
                kept_steps.len()
            ));
            samples.push(sample(ctx, &kept, &c));
        }
        let chosen = samples.len().checked_sub(1);
        let answer = chosen.and_then(|i| samples[i].rationale.answer.clone());
        ledger.trace.push(TraceEvent::Select {
            node: chosen.map_or(0, |c| c + 1),
            answer: answer.clone(),
        });
        Ok(ledger.finish(self.name(), answer, chosen, samples))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_core::Spent;
    use stepwise_model::scripted::ScriptedGenerator;

    fn user_text(p: &Prompt) -> String {
        match p {
            Prompt::Chat(m) => m.last().map(|m| m.content.clone()).unwrap_or_default(),
            Prompt::Text(t) => t.clone(),
        }
    }

    fn is_critic(r: &GenerateRequest) -> bool {
        user_text(&r.prompt).contains("Check the solution step by step")
    }

    fn is_refine(r: &GenerateRequest) -> bool {
        user_text(&r.prompt).contains("A reviewer's feedback")
    }

    fn problem() -> Problem {
        Problem::new("p", "What is (3 + 4) * 2?").with_gold("14")
    }

    /// A policy that first gets step 2 wrong, then fixes it when revising; a critic that
    /// names step 2 while the solution says 15 and accepts otherwise.
    fn scripted() -> Arc<ScriptedGenerator> {
        Arc::new(ScriptedGenerator::new(|r, _| {
            if is_critic(r) {
                if user_text(&r.prompt).contains("= 15") {
                    "Step 1: correct\nStep 2: wrong, because 7 * 2 = 14\nFirst wrong step: 2".into()
                } else {
                    "Step 1: correct\nStep 2: correct\nStep 3: correct\nFirst wrong step: none"
                        .into()
                }
            } else if is_refine(r) {
                "7 * 2 = 14\n\nThe answer is 14.".into()
            } else {
                "3 + 4 = 7\n\n7 * 2 = 15\n\nThe answer is 15.".into()
            }
        }))
    }

    #[test]
    fn parses_verdict_lines() {
        use CritiqueVerdict::*;
        assert_eq!(
            parse_critique("Step 1: ok\nFirst wrong step: 2", 3),
            (Wrong, Some(1))
        );
        assert_eq!(
            parse_critique("**First wrong step:** Step 3.", 3),
            (Wrong, Some(2))
        );
        assert_eq!(parse_critique("first wrong step: NONE", 3), (Accept, None));
        // the first verdict line counts; a step the solution does not have is unparsed
        assert_eq!(
            parse_critique("First wrong step: 1\nFirst wrong step: none", 2),
            (Wrong, Some(0))
        );
        assert_eq!(parse_critique("First wrong step: 4", 3), (Unparsed, None));
        assert_eq!(parse_critique("First wrong step: 0", 3), (Unparsed, None));
        assert_eq!(parse_critique("Looks fine to me.", 3), (Unparsed, None));
        assert_eq!(parse_critique("First wrong step is 2", 3), (Unparsed, None));
    }

    #[tokio::test]
    async fn refines_from_the_first_wrong_step_and_stops_on_accept() {
        let g = scripted();
        let ctx = Context::new(g.clone());
        let out = CritiqueRefine::new(3)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert_eq!(out.answer.as_deref(), Some("14"));
        assert_eq!(out.samples.len(), 2);
        assert_eq!(out.chosen, Some(1));
        assert_eq!(
            out.samples[1].text,
            "3 + 4 = 7\n\n7 * 2 = 14\n\nThe answer is 14."
        );
        let reqs = g.requests();
        // solution, critique, revision, critique (accepted): 4 calls, then it stops
        assert_eq!(reqs.len(), 4);
        assert!(is_critic(&reqs[1]) && is_refine(&reqs[2]) && is_critic(&reqs[3]));
        // the exact critic prompt
        let (want, start) = ctx
            .critique
            .critic_prompt(&problem(), &out.samples[0].rationale)
            .unwrap();
        assert_eq!(reqs[1].prompt, want);
        assert_eq!(reqs[1].assistant_prefix, start);
        assert_eq!(
            user_text(&reqs[1].prompt),
            "Problem: What is (3 + 4) * 2?\n\nSolution:\nStep 1: 3 + 4 = 7\nStep 2: 7 * 2 = 15\nStep 3: The answer is 15.\nFinal answer: 15\n\nCheck the solution step by step. For each step write one line, \"Step K: correct\" or \"Step K: wrong, because ...\". Then write the last line \"First wrong step: K\" with the number of the first wrong step, or \"First wrong step: none\" if every step is correct."
        );
        // the regeneration prompt: the critique in context, rewrite from step 2, step 1 kept
        let refine = user_text(&reqs[2].prompt);
        assert!(
            refine.contains("A reviewer's feedback on it:\nStep 1: correct\nStep 2: wrong, because 7 * 2 = 14\nFirst wrong step: 2\n\nRewrite the solution from step 2 on"),
            "{refine}"
        );
        assert!(refine.contains("An earlier attempt:\nStep 1: 3 + 4 = 7\nStep 2: 7 * 2 = 15"));
        assert_eq!(reqs[2].assistant_prefix, "3 + 4 = 7\n\n");
        // the trace: both rounds, with verdicts, first wrong step and revision
        let critiques: Vec<_> = out
            .trace
            .events
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Critique {
                    round,
                    node,
                    verdict,
                    first_wrong,
                    revision,
                    ..
                } => Some((*round, *node, *verdict, *first_wrong, *revision)),
                _ => None,
            })
            .collect();
        assert_eq!(
            critiques,
            [
                (1, 1, CritiqueVerdict::Wrong, Some(1), Some(2)),
                (2, 2, CritiqueVerdict::Accept, None, None)
            ]
        );
        // tokens: scripted counts words. Policy: 14 (solution) + 9 (revision, its own
        // words only); critic: 16 + 13, in the judge columns
        assert_eq!(out.spent.policy_tokens, 14 + 9);
        assert_eq!(out.spent.policy_calls, 2);
        assert_eq!(out.spent.judge_tokens, 16 + 13);
        assert_eq!(out.spent.judge_calls, 2);
        assert_eq!(out.samples[0].tokens, 14);
        assert_eq!(out.samples[1].tokens, 9);
        assert_eq!(out.samples[0].judge.judge_tokens, 16);
        assert_eq!(out.samples[1].judge.judge_tokens, 13);
        let prompts: u64 = reqs
            .iter()
            .map(|r| stepwise_model::scripted::prompt_tokens(&r.prompt, &r.assistant_prefix))
            .sum();
        assert_eq!(
            out.spent.policy_prompt_tokens + out.spent.judge_prompt_tokens,
            prompts
        );
        assert_eq!(out.trace.spent, out.spent);
    }

    #[tokio::test]
    async fn rounds_and_unparsed_critiques() {
        // a critic that never writes a verdict line: every round rewrites the whole
        // solution, and the rounds end it
        let g = Arc::new(ScriptedGenerator::new(|r, _| {
            if is_critic(r) {
                "I am not sure.".into()
            } else {
                "3 + 4 = 7\n\nThe answer is 7.".into()
            }
        }));
        let ctx = Context::new(g.clone());
        let out = CritiqueRefine::new(2)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap();
        assert_eq!(out.samples.len(), 3);
        assert_eq!(out.chosen, Some(2));
        let reqs = g.requests();
        assert_eq!(reqs.len(), 5); // solution + 2 x (critique, revision)
        assert_eq!(reqs[2].assistant_prefix, "");
        assert!(user_text(&reqs[2].prompt).contains("Rewrite the solution from step 1 on"));
        let unparsed = out
            .trace
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    TraceEvent::Critique {
                        verdict: CritiqueVerdict::Unparsed,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(unparsed, 2);
        assert!(
            out.trace
                .events
                .iter()
                .any(|e| matches!(e, TraceEvent::Note { message } if message.contains("2 so far")))
        );
        assert_eq!(out.spent.judge_calls, 2);
        assert_eq!(out.spent.judge_tokens, 2 * 4);
        assert_eq!(out.spent.policy_tokens, 3 * 9);
    }

    #[tokio::test]
    async fn budget_stops_the_loop_and_a_separate_critic_is_used() {
        let policy = scripted();
        // the separate critic always names step 1
        let critic = Arc::new(ScriptedGenerator::new(|_, _| "First wrong step: 1".into()));
        let mut ctx = Context::new(policy.clone());
        ctx.critic = Some(critic.clone());
        // 14 (solution) + 4 (critique) + 9 (revision) = 27 tokens; 30 leaves 3 for the
        // next critique, which is cut at 3 words, then nothing is left
        let out = CritiqueRefine::new(5)
            .solve(&problem(), &Budget::tokens(30), &ctx)
            .await
            .unwrap();
        assert_eq!(out.spent.generated_tokens(), 30);
        assert_eq!(out.spent.judge_tokens, 4 + 3);
        assert_eq!(critic.requests().len(), 2);
        assert_eq!(policy.requests().len(), 2);
        assert_eq!(out.samples.len(), 2);
        assert!(
            out.trace.events.iter().any(
                |e| matches!(e, TraceEvent::Note { message } if message.starts_with("stopped:"))
            )
        );
        // the last critique was cut before its verdict: unparsed, no revision
        assert!(matches!(
            out.trace
                .events
                .iter()
                .rev()
                .find(|e| matches!(e, TraceEvent::Critique { .. })),
            Some(TraceEvent::Critique {
                verdict: CritiqueVerdict::Unparsed,
                revision: None,
                ..
            })
        ));
        // the policy never judged: its columns hold only its own two calls
        assert_eq!(out.spent.policy_calls, 2);
        assert_eq!(
            out.samples[0].judge,
            Spent {
                judge_tokens: 4,
                judge_prompt_tokens: out.samples[0].judge.judge_prompt_tokens,
                judge_calls: 1,
                ..Spent::default()
            }
        );
        let e = CritiqueRefine::new(0)
            .solve(&problem(), &Budget::unlimited(), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(e, SearchError::Config(_)));
    }

    #[test]
    fn builtin_templates_parse_and_bad_ones_are_named() {
        let _ = CritiquePrompts::default();
        let e = CritiquePrompts::new(Some("### user\n{nope}"), None, None).unwrap_err();
        assert!(e.to_string().contains("critic"), "{e}");
        let e = CritiquePrompts::new(None, Some("no header"), None).unwrap_err();
        assert!(e.to_string().contains("refine"), "{e}");
    }
}
