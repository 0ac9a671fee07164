//! One engine step: a single `decode` over the next token of every live sample plus chunks
//! of pending prompts, then sampling, answering probes and retiring what finished.

use super::Engine;
use crate::sampling::log_softmax;
use llama_cpp_2::DecodeError;
use std::time::Instant;
use stepwise_model::{Completion, EngineError, FinishReason, NextTokenLogprobs};

/// Prompt tokens `from..to` of request `request` (an index into the active requests) went
/// into the batch, bound for its prefix sequence.
#[derive(Debug, Clone, Copy)]
struct PrefillChunk {
    request: usize,
    from: usize,
    to: usize,
}

/// A sample (index into the live samples) that is done, and why.
type Finished = (usize, FinishReason);

impl Engine<'_> {
    pub(super) fn step(&mut self) {
        self.drop_cancelled();
        self.admit();
        self.start_samples();
        if self.idle() {
            self.fail_stuck();
            return;
        }
        let Some(prefill) = self.decode() else {
            return;
        };
        self.record_prefill(&prefill);
        let t_sample = Instant::now();
        let (mut finished, probes) = self.sample_live();
        self.timing.sample += t_sample.elapsed();
        self.answer_probes(probes, &mut finished);
        self.retire(finished);
        self.complete_requests();
        self.cache.trim(&mut self.ctx);
    }

    /// Nothing to decode: no live sample and no prompt left to prefill.
    fn idle(&self) -> bool {
        self.samples.is_empty() && self.requests.iter().all(|r| r.prefilled)
    }

    /// When nothing can run although work is waiting (no sequence slots or KV for anything),
    /// fails the oldest request rather than spin.
    fn fail_stuck(&mut self) {
        if let Some(r) = self.requests.first().map(|r| r.id) {
            self.abort_request(
                r,
                Some(EngineError::ContextFull {
                    needed: 0,
                    available: self.n_ctx,
                }),
            );
        } else if let Some(r) = self.pending.pop_front() {
            r.kind.fail(EngineError::Internal(
                "no KV sequence slot available".into(),
            ));
        }
    }

    /// Builds the batch and decodes it, making room when the KV cache is full: evicting
    /// cached prefixes, then leaving the prompt chunks out, then preempting the newest
    /// request. Returns the prompt chunks that were decoded, or `None` when nothing was.
    fn decode(&mut self) -> Option<Vec<PrefillChunk>> {
        let mut with_prompts = true;
        loop {
            let plan = self.fill_batch(with_prompts)?;
            if self.batch.n_tokens() == 0 {
                return None;
            }
            let t0 = Instant::now();
            let decoded = self.ctx.decode(&mut self.batch);
            self.timing.decode += t0.elapsed();
            match decoded {
                Ok(()) => {
                    self.timing.steps += 1;
                    // sequences in this batch: every live sample, every prompt chunk
                    let chunks = plan.iter().filter(|c| c.to > c.from).count();
                    self.counters.record((self.samples.len() + chunks) as u64);
                    return Some(plan);
                }
                Err(DecodeError::NoKvCacheSlot) => {
                    tracing::debug!("KV cache full; evicting cached prefixes");
                    if self.cache.evict_lru(&mut self.ctx) {
                        with_prompts = true;
                    } else if with_prompts && !plan.is_empty() && !self.samples.is_empty() {
                        // Let the live samples advance without the prompt chunks.
                        with_prompts = false;
                    } else if self.preempt_newest() {
                        with_prompts = true;
                    } else {
                        return None;
                    }
                }
                Err(e) => {
                    tracing::error!("llama.cpp decode failed: {e}");
                    let ids: Vec<u64> = self.requests.iter().map(|r| r.id).collect();
                    for id in ids {
                        self.abort_request(id, Some(EngineError::Internal(format!("decode: {e}"))));
                    }
                    return None;
                }
            }
        }
    }

    /// Fills the batch: one token per live sample, then (with `with_prompts`) as many prompt
    /// tokens of prefilling requests as fit. `None` when the live samples alone overflow it.
    fn fill_batch(&mut self, with_prompts: bool) -> Option<Vec<PrefillChunk>> {
        self.batch.clear();
        let mut ok = true;
        for s in self.samples.iter_mut() {
            s.batch_idx = self.batch.n_tokens();
            if self.batch.add(s.pending, s.pos, &[s.seq], true).is_err() {
                ok = false;
            }
        }
        if !ok {
            tracing::error!("batch overflow with {} live samples", self.samples.len());
            return None;
        }
        let mut plan = Vec::new();
        if !with_prompts {
            return Some(plan);
        }
        let mut room = self.cfg.n_batch as usize - self.batch.n_tokens() as usize;
        for (ri, r) in self.requests.iter().enumerate() {
            if r.prefilled || room == 0 {
                continue;
            }
            let Some(ps) = r.prefix_seq else { continue };
            let have = self.cache.len_of(ps);
            let target = r.tokens.len() - 1;
            let to = target.min(have + room);
            for p in have..to {
                let _ = self.batch.add(r.tokens[p], p as i32, &[ps], false);
            }
            room -= to - have;
            plan.push(PrefillChunk {
                request: ri,
                from: have,
                to,
            });
        }
        Some(plan)
    }

    /// Fails the newest request to free its KV. False when there was none, or when nothing
    /// is left to decode after it.
    fn preempt_newest(&mut self) -> bool {
        let Some(id) = self.requests.iter().map(|r| r.id).max() else {
            return false;
        };
        let needed = self
            .requests
            .iter()
            .find(|r| r.id == id)
            .map_or(0, |r| r.tokens.len() + r.kind.max_tokens());
        self.abort_request(
            id,
            Some(EngineError::ContextFull {
                needed,
                available: self.n_ctx,
            }),
        );
        !self.idle()
    }

    /// The decoded prompt chunks are in their prefix sequences now.
    fn record_prefill(&mut self, plan: &[PrefillChunk]) {
        for c in plan {
            let Some(ps) = self.requests[c.request].prefix_seq else {
                continue;
            };
            let toks = &self.requests[c.request].tokens[c.from..c.to];
            self.cache.extend(ps, toks);
            let r = &mut self.requests[c.request];
            r.stats.decoded_prompt_tokens += c.to - c.from;
            if c.to == r.tokens.len() - 1 {
                r.prefill_done(self.timing);
            }
        }
    }

    /// Samples the next token of every generating sample. Returns the samples that finished
    /// and the ones that belong to probes (their logits are the answer).
    fn sample_live(&mut self) -> (Vec<Finished>, Vec<usize>) {
        let mut finished = Vec::new();
        let mut probes = Vec::new();
        for si in 0..self.samples.len() {
            let req_id = self.samples[si].req;
            let Some(r) = self.requests.iter().find(|r| r.id == req_id) else {
                continue;
            };
            if !matches!(r.kind, super::Kind::Generate { .. }) {
                probes.push(si);
                continue;
            }
            if let Some(reason) = self.samples[si].advance(&self.ctx, self.model, self.n_ctx) {
                finished.push((si, reason));
            }
        }
        (finished, probes)
    }

    /// Answers probe and full-distribution requests from their sample's logits.
    fn answer_probes(&mut self, probes: Vec<usize>, finished: &mut Vec<Finished>) {
        for si in probes {
            let idx = self.samples[si].batch_idx;
            let req_id = self.samples[si].req;
            let s = &mut self.samples[si];
            s.history.push(s.pending);
            s.own += 1;
            let lps = log_softmax(self.ctx.get_logits_ith(idx));
            if let Some(pos) = self.requests.iter().position(|r| r.id == req_id) {
                let r = self.requests.swap_remove(pos);
                let prompt_tokens = r.tokens.len() as u64;
                tracing::debug!(
                    prompt_tokens,
                    reused = r.stats.reused_prompt_tokens,
                    decoded = r.stats.decoded_prompt_tokens,
                    waited_ms = r.submitted.elapsed().as_millis() as u64,
                    "probe done"
                );
                match r.kind {
                    super::Kind::Probe { candidates, reply } => {
                        let logprobs = candidates
                            .iter()
                            .map(|c| c.and_then(|t| lps.get(t.0.max(0) as usize).copied()))
                            .collect();
                        let _ = reply.send(Ok(NextTokenLogprobs {
                            logprobs,
                            prompt_tokens,
                        }));
                    }
                    super::Kind::Full { reply } => {
                        let _ = reply.send(Ok(lps));
                    }
                    kind @ super::Kind::Generate { .. } => {
                        kind.fail(EngineError::Internal("request kind mix-up".into()));
                    }
                }
            }
            finished.push((si, FinishReason::Length));
        }
    }

    /// Retires finished samples: records their completions and keeps their sequences as
    /// prefixes for continuations (or frees them when the cache keeps nothing).
    fn retire(&mut self, mut finished: Vec<Finished>) {
        // Highest index first, so that swap_remove keeps the other indices valid.
        finished.sort_by_key(|f| std::cmp::Reverse(f.0));
        for (si, reason) in finished {
            let s = self.samples.swap_remove(si);
            if let Some(r) = self.requests.iter_mut().find(|r| r.id == s.req)
                && r.results[s.index].is_none()
            {
                r.results[s.index] = Some(Completion {
                    text: s.stop.text(),
                    token_ids: s.generated.clone(),
                    logprobs: s.logprobs.clone(),
                    finish: reason,
                    prompt_tokens: r.tokens.len() as u64,
                    generated_tokens: s.generated.len() as u64,
                });
                r.live = r.live.saturating_sub(1);
            }
            if self.cache.keeps_finished() && !s.history.is_empty() {
                let now = self.cache.tick();
                self.cache.insert(s.seq, s.history, s.own, now, 0);
            } else {
                self.cache.release(&mut self.ctx, s.seq);
            }
        }
    }

    /// Answers the requests whose samples are all done.
    fn complete_requests(&mut self) {
        let done: Vec<usize> = self
            .requests
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.next_sample >= r.results.len()
                    && r.live == 0
                    && r.results.iter().all(Option::is_some)
            })
            .map(|(i, _)| i)
            .rev()
            .collect();
        for i in done {
            let mut r = self.requests.swap_remove(i);
            r.stats.total = r.submitted.elapsed();
            r.stats.gen_steps = self.timing.steps - r.clock_at_prefill.steps;
            r.stats.gen_decode = self.timing.decode - r.clock_at_prefill.decode;
            r.stats.gen_sample = self.timing.sample - r.clock_at_prefill.sample;
            if let super::Kind::Generate { reply, .. } = r.kind {
                let out: Vec<Completion> = r.results.into_iter().flatten().collect();
                let _ = reply.send(Ok((out, r.stats)));
            }
        }
    }
}
