//! The HTTP backend against a real OpenAI-compatible server: llama-cpp-python's, serving the
//! default GGUF on a loopback port.
//!
//! The harness (`stepwise_http::reference`) installs `llama-cpp-python[server]==0.3.36` into a
//! venv under the stepwise cache (it compiles llama.cpp, so the first run takes minutes and pip's
//! wheel cache makes later ones fast). If that fails the test fails, unless
//! `STEPWISE_SKIP_SERVER_TESTS=1`, in which case it prints a SKIPPED line.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use stepwise_http::reference::LlamaCppServer;
use stepwise_http::{ChatMode, HttpConfig, HttpGenerator};
use stepwise_llama::fetch;
use stepwise_model::{
    ChatMessage, FinishReason, GenerateRequest, Generator, Prompt, SamplingParams,
};

async fn start_server() -> Option<LlamaCppServer> {
    let model = fetch::ensure_default_model().unwrap();
    LlamaCppServer::start_or_skip(&model, 2, "HTTP server test")
        .await
        .unwrap()
}

fn params(n: usize, max_tokens: u32) -> SamplingParams {
    SamplingParams {
        n,
        max_tokens,
        temperature: 0.8,
        seed: 11,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_samples_logprobs_usage_and_survives_a_dying_server() {
    let Some(mut server) = start_server().await else {
        return;
    };
    let mut cfg = HttpConfig::new(vec![format!("{}/v1", server.url())]);
    cfg.chat_mode = ChatMode::ChatMl;
    cfg.max_concurrency = 1;
    cfg.max_retries = 2;
    cfg.backoff_base = Duration::from_millis(100);
    let g = HttpGenerator::new(cfg.clone()).unwrap();

    // n > 1 with logprobs and usage (one request per sample).
    let mut r = GenerateRequest {
        prompt: Prompt::Chat(vec![ChatMessage::user("Name a fruit.")]),
        assistant_prefix: String::new(),
        params: params(3, 8),
    };
    r.params.logprobs = true;
    let out = g.generate(&r).await.unwrap();
    assert_eq!(out.len(), 3);
    for c in &out {
        assert!(c.prompt_tokens > 5, "{c:?}");
        assert!(c.generated_tokens >= 1 && c.generated_tokens <= 8, "{c:?}");
        let l = c.logprobs.as_ref().unwrap();
        assert_eq!(l.len() as u64, c.generated_tokens, "{c:?}");
        assert!(
            l.iter().all(|t| t.logprob.is_finite() && t.logprob <= 1e-4),
            "{l:?}"
        );
    }

    // n > 1 in a single request, if the server supports it; otherwise a clear error.
    let mut multi = cfg.clone();
    multi.samples_per_request = 2;
    let gm = HttpGenerator::new(multi).unwrap();
    match gm
        .generate(&GenerateRequest {
            params: params(2, 6),
            ..r.clone()
        })
        .await
    {
        Ok(v) => assert_eq!(v.len(), 2),
        Err(e) => eprintln!("server refused n=2 in one request: {e}"),
    }

    // Stop strings and an assistant prefix (client-side ChatML + /v1/completions).
    let mut s = GenerateRequest {
        prompt: Prompt::Chat(vec![ChatMessage::user(
            "Count from 1 to 10, separated by commas.",
        )]),
        assistant_prefix: "1, 2,".into(),
        params: params(1, 30),
    };
    s.params.temperature = 0.0;
    s.params.stop = vec![" 5".into()];
    let c = g.generate(&s).await.unwrap().remove(0);
    assert!(!c.text.contains(" 5"), "{c:?}");
    assert_eq!(c.finish, FinishReason::Stop(" 5".into()), "{c:?}");

    // The server's own chat endpoint.
    let mut chat_cfg = cfg.clone();
    chat_cfg.chat_mode = ChatMode::Server;
    let gc = HttpGenerator::new(chat_cfg).unwrap();
    let cc = gc
        .generate(&GenerateRequest {
            params: params(1, 6),
            ..r.clone()
        })
        .await
        .unwrap();
    assert!(
        cc[0].prompt_tokens > 5 && cc[0].generated_tokens >= 1,
        "{cc:?}"
    );

    // Candidate next-token logprobs.
    let ntl = g
        .next_token_logprobs(
            &Prompt::Chat(vec![ChatMessage::user("Is 2+2=4? Answer Yes or No.")]),
            "",
            &["Yes".into(), "No".into()],
        )
        .await
        .unwrap();
    assert!(ntl.logprobs.iter().any(Option::is_some), "{ntl:?}");
    assert!(
        ntl.logprobs
            .iter()
            .flatten()
            .all(|l| l.is_finite() && *l <= 1e-4)
    );

    // A continuation read token by token: the greedy answer's own tokens come back with
    // the log-probabilities the server gave them while generating.
    let mut greedy = GenerateRequest {
        prompt: Prompt::Chat(vec![ChatMessage::user("What is 7 times 8?")]),
        assistant_prefix: String::new(),
        params: params(1, 5),
    };
    greedy.params.temperature = 0.0;
    greedy.params.logprobs = true;
    let c = g.generate(&greedy).await.unwrap().remove(0);
    let read = g
        .continuation_logprobs(&greedy.prompt, "", &c.text)
        .await
        .unwrap();
    let texts: String = read.tokens.iter().map(|t| t.token.as_str()).collect();
    assert_eq!(texts, c.text);
    assert_eq!(read.calls, read.tokens.len() as u64);
    let generated = c.logprobs.as_ref().unwrap();
    if generated.len() == read.tokens.len() {
        for (a, b) in generated.iter().zip(&read.tokens) {
            assert_eq!(a.token, b.token);
            assert!((a.logprob - b.logprob).abs() < 0.05, "{a:?} vs {b:?}");
        }
    }

    // Kill the server mid-run: finished samples are kept, the rest fail after retries.
    let stats = g.stats();
    let before = stats.requests_ok.load(Ordering::Relaxed);
    let long = GenerateRequest {
        params: params(8, 24),
        ..r.clone()
    };
    let g2 = std::sync::Arc::new(g);
    let task = {
        let g2 = g2.clone();
        tokio::spawn(async move { g2.generate_partial(&long).await })
    };
    let t0 = Instant::now();
    while stats.requests_ok.load(Ordering::Relaxed) < before + 2 {
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    let part = task.await.unwrap();
    let err = part
        .error
        .expect("a dead server must give an error")
        .to_string();
    assert!(
        part.completions.len() >= 2 && part.completions.len() < 8,
        "{}",
        part.completions.len()
    );
    assert_eq!(part.completions.len(), part.indices.len());
    assert!(err.contains("gave up after 3 attempts"), "{err}");
    assert!(stats.retries.load(Ordering::Relaxed) >= 2);
    drop(server);
}
