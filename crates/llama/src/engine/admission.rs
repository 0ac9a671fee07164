//! From jobs to running samples: checking and tokenizing jobs, giving requests a prefix
//! sequence (copying the longest cached prefix into it), starting samples while sequences
//! and KV cells allow, and ending requests whose callers left or that cannot run.

use super::{Engine, Job, Kind, Request, RequestStats, Sample};
use crate::sampling::validate;
use llama_cpp_2::token::LlamaToken;
use std::time::Instant;
use stepwise_model::{Completion, EngineError, FinishReason};

impl Engine<'_> {
    /// Takes a job: answers it at once (errors, embeddings, tokenization, nothing to
    /// generate) or queues it as a request.
    pub(super) fn accept(&mut self, job: Job) {
        match job {
            Job::Generate { req, opts, reply } => {
                if let Err(e) = validate(&req.params) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let tokens = match self.prompts.tokenize(&req.prompt, &req.assistant_prefix) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                let need = tokens.len() + req.params.max_tokens as usize;
                if need > self.n_ctx {
                    let _ = reply.send(Err(EngineError::ContextFull {
                        needed: need,
                        available: self.n_ctx,
                    }));
                    return;
                }
                if req.params.n == 0 || req.params.max_tokens == 0 {
                    let done = (0..req.params.n)
                        .map(|_| Completion {
                            text: String::new(),
                            token_ids: vec![],
                            logprobs: req.params.logprobs.then(Vec::new),
                            finish: FinishReason::Length,
                            prompt_tokens: tokens.len() as u64,
                            generated_tokens: 0,
                        })
                        .collect();
                    let stats = RequestStats {
                        prompt_tokens: tokens.len(),
                        ..Default::default()
                    };
                    let _ = reply.send(Ok((done, stats)));
                    return;
                }
                let n = req.params.n;
                self.enqueue(
                    Kind::Generate {
                        params: req.params,
                        opts,
                        reply,
                    },
                    tokens,
                    n,
                );
            }
            Job::Probe {
                prompt,
                prefix,
                candidates,
                reply,
            } => match self.prompts.tokenize(&prompt, &prefix) {
                Ok(tokens) => {
                    let candidates = self.prompts.first_tokens(&candidates);
                    self.enqueue(Kind::Probe { candidates, reply }, tokens, 1);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Job::FullLogprobs {
                prompt,
                prefix,
                reply,
            } => match self.prompts.tokenize(&prompt, &prefix) {
                Ok(tokens) => self.enqueue(Kind::Full { reply }, tokens, 1),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Job::Embed {
                prompt,
                prefix,
                reply,
            } => {
                let r = self
                    .prompts
                    .tokenize(&prompt, &prefix)
                    .and_then(|tokens| self.embeddings.embed(&tokens));
                let _ = reply.send(r);
            }
            Job::EmbedPieces {
                prompt,
                pieces,
                reply,
            } => {
                let r = self
                    .prompts
                    .tokenize_pieces(&prompt, &pieces)
                    .and_then(|(tokens, ends)| self.embeddings.embed_pieces(tokens, &ends));
                let _ = reply.send(r);
            }
            Job::Continuation {
                prompt,
                prefix,
                continuation,
                reply,
            } => {
                let r = self
                    .prompts
                    .tokenize(&prompt, &prefix)
                    .and_then(|tokens| self.reader.read(tokens, &continuation));
                let _ = reply.send(r);
            }
            Job::Tokenize { text, reply } => {
                let _ = reply.send(Ok(self.prompts.token_ids(&text)));
            }
        }
    }

    fn enqueue(&mut self, kind: Kind, tokens: Vec<LlamaToken>, n: usize) {
        self.next_id += 1;
        let stats = RequestStats {
            prompt_tokens: tokens.len(),
            ..Default::default()
        };
        self.pending.push_back(Request {
            id: self.next_id,
            kind,
            tokens,
            prefix_seq: None,
            prefilled: false,
            next_sample: 0,
            results: vec![None; n],
            live: 0,
            stats,
            submitted: Instant::now(),
            clock_at_prefill: self.timing,
        });
    }

    /// Moves pending requests into the active set: picks a cache sequence for the prompt prefix
    /// and copies the longest cached common prefix into it.
    ///
    /// In deterministic mode a request is admitted only when nothing else is active, and
    /// onto an emptied KV cache (see [`EmbeddedConfig::deterministic`]).
    ///
    /// [`EmbeddedConfig::deterministic`]: crate::EmbeddedConfig::deterministic
    pub(super) fn admit(&mut self) {
        while let Some(req) = self.pending.front() {
            if req.kind.closed() {
                self.pending.pop_front();
                continue;
            }
            if self.cfg.deterministic {
                if !self.requests.is_empty() || !self.samples.is_empty() {
                    break;
                }
                self.cache.clear(&mut self.ctx);
            }
            let target = &req.tokens[..req.tokens.len() - 1];
            let best = self.cache.longest_match(target);
            if self.prefilling_longer(target, best.map_or(0, |b| b.len)) {
                // A prompt that another request is still decoding: wait for it rather than
                // decode it twice.
                break;
            }
            let Some(mut req) = self.pending.pop_front() else {
                break;
            };
            let target_len = req.tokens.len() - 1;
            let now = self.cache.tick();
            match best {
                Some(b) if b.len == target_len && b.whole => {
                    // Exact prefix already cached.
                    self.cache.pin(b.seq, now);
                    req.prefix_seq = Some(b.seq);
                    req.stats.reused_prompt_tokens = b.len;
                    req.prefill_done(self.timing);
                }
                _ => {
                    let src = best.filter(|b| b.len > 0);
                    let l = src.map_or(0, |b| b.len);
                    // Pin the source while a sequence is taken, so that it is not the one evicted.
                    if let Some(b) = src {
                        self.cache.pin(b.seq, now);
                    }
                    let seq = self.cache.take_seq(&mut self.ctx);
                    if let Some(b) = src {
                        self.cache.unpin(b.seq);
                    }
                    let Some(seq) = seq else {
                        // No sequence slot: try again when samples finish.
                        self.pending.push_front(req);
                        break;
                    };
                    if let Some(b) = src {
                        self.copy_prefix(b.seq, seq, l);
                    }
                    self.cache.insert(seq, req.tokens[..l].to_vec(), 0, now, 1);
                    req.prefix_seq = Some(seq);
                    req.stats.reused_prompt_tokens = l;
                    if l == target_len {
                        req.prefill_done(self.timing);
                    }
                }
            }
            self.requests.push(req);
        }
    }

    /// Whether an admitted request is still decoding a prompt that shares more of `target`
    /// than its sequence holds so far and than the best cached match (`best_len`).
    fn prefilling_longer(&self, target: &[LlamaToken], best_len: usize) -> bool {
        self.requests.iter().any(|r| {
            !r.prefilled
                && r.prefix_seq.is_some_and(|s| {
                    let have = self.cache.len_of(s);
                    let would = crate::prefix_cache::lcp(&r.tokens[..r.tokens.len() - 1], target);
                    would > have && would > best_len
                })
        })
    }

    /// Copies the first `len` cached positions of sequence `src` into `dst`.
    fn copy_prefix(&mut self, src: i32, dst: i32, len: usize) {
        if self.cfg.kv_unified {
            let _ = self
                .ctx
                .kv_cache_seq_cp(src, dst, Some(0), Some(len as u32));
        } else {
            // Partial copies abort llama.cpp without unified KV: copy all, trim the tail.
            let _ = self.ctx.kv_cache_seq_cp(src, dst, None, None);
            let _ = self.ctx.kv_cache_seq_rm(dst, Some(len as u32), None);
        }
    }

    /// Starts samples of prefilled requests while sequence slots and KV budget allow.
    pub(super) fn start_samples(&mut self) {
        for ri in 0..self.requests.len() {
            loop {
                let r = &self.requests[ri];
                if !r.prefilled || r.next_sample >= r.results.len() {
                    break;
                }
                let need = r.kind.max_tokens() + 1;
                while self.kv_used() + need > self.n_ctx && self.cache.evict_lru(&mut self.ctx) {}
                let any_live = !self.samples.is_empty();
                if any_live && self.kv_used() + need > self.n_ctx {
                    return;
                }
                let Some(seq) = self.cache.take_seq(&mut self.ctx) else {
                    return;
                };
                let r = &mut self.requests[ri];
                let Some(src) = r.prefix_seq else {
                    self.cache.give_back(seq);
                    break;
                };
                let _ = self.ctx.kv_cache_seq_cp(src, seq, None, None);
                let index = r.next_sample;
                r.next_sample += 1;
                r.live += 1;
                let sample = Sample::start(r, index, seq);
                if r.next_sample >= r.results.len() {
                    // All samples started: the request no longer needs its prefix pinned.
                    self.cache.unpin(src);
                }
                self.samples.push(sample);
            }
        }
    }

    /// Ends requests whose callers stopped waiting.
    pub(super) fn drop_cancelled(&mut self) {
        let cancelled: Vec<u64> = self
            .requests
            .iter()
            .filter(|r| r.kind.closed())
            .map(|r| r.id)
            .collect();
        for id in cancelled {
            self.abort_request(id, None);
        }
    }

    /// Ends a request early: frees its samples and sends `err` (if the caller still listens).
    pub(super) fn abort_request(&mut self, id: u64, err: Option<EngineError>) {
        let seqs: Vec<i32> = self
            .samples
            .iter()
            .filter(|s| s.req == id)
            .map(|s| s.seq)
            .collect();
        self.samples.retain(|s| s.req != id);
        for s in seqs {
            self.cache.release(&mut self.ctx, s);
        }
        if let Some(pos) = self.requests.iter().position(|r| r.id == id) {
            let r = self.requests.swap_remove(pos);
            if let Some(ps) = r.prefix_seq {
                let still_pinned = r.next_sample < r.results.len();
                self.cache
                    .abandon(&mut self.ctx, ps, still_pinned, !r.prefilled);
            }
            if let Some(e) = err {
                r.kind.fail(e);
            }
        }
    }
}
