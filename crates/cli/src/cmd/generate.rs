//! `stepwise generate`: sample continuations of one prompt and print them.

use crate::Global;
use crate::cmd::backend::BackendArgs;
use crate::out::outln;
use anyhow::Context;
use std::time::Instant;
use stepwise_model::{ChatMessage, FinishReason, GenerateRequest, Prompt, SamplingParams};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The user message (or the raw text with --raw).
    #[arg(long)]
    pub prompt: String,
    /// System message (chat prompts). Default: the model's own default, if any.
    #[arg(long)]
    pub system: Option<String>,
    /// Send the prompt as raw text instead of a chat message.
    #[arg(long)]
    pub raw: bool,
    /// Text the assistant has already written; samples continue it.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Number of samples.
    #[arg(long, short = 'n', default_value_t = 4)]
    pub n: usize,
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// 0 disables top-k.
    #[arg(long, default_value_t = 40)]
    pub top_k: u32,
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop string (repeatable; escapes like \n are understood).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Print per-token log-probabilities.
    #[arg(long)]
    pub logprobs: bool,
    /// One JSON object per sample instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub backend: BackendArgs,
}

fn unescape(s: &str) -> String {
    s.replace("\\n", "\n").replace("\\t", "\t")
}

pub fn run(args: Args, _g: &Global) -> anyhow::Result<()> {
    let backend = args.backend.open()?;
    let prompt = if args.raw {
        Prompt::Text(unescape(&args.prompt))
    } else {
        let mut msgs = Vec::new();
        if let Some(s) = &args.system {
            msgs.push(ChatMessage::system(s.clone()));
        }
        msgs.push(ChatMessage::user(args.prompt.clone()));
        Prompt::Chat(msgs)
    };
    let req = GenerateRequest {
        prompt,
        assistant_prefix: unescape(&args.prefix),
        params: SamplingParams {
            n: args.n,
            temperature: args.temperature,
            top_p: args.top_p,
            top_k: args.top_k,
            max_tokens: args.max_tokens,
            stop: args.stop.iter().map(|s| unescape(s)).collect(),
            seed: args.seed,
            logprobs: args.logprobs,
        },
    };
    let rt = crate::cmd::runtime()?;
    let t0 = Instant::now();
    let part = rt.block_on(backend.generate_partial(&req));
    let secs = t0.elapsed().as_secs_f64();
    let mut total_gen = 0u64;
    for (c, i) in part.completions.iter().zip(&part.indices) {
        total_gen += c.generated_tokens;
        if args.json {
            let mut v = serde_json::to_value(c)?;
            v["index"] = serde_json::json!(i);
            outln!("{v}")?;
            continue;
        }
        let finish = match &c.finish {
            FinishReason::Eos => "end of turn".to_string(),
            FinishReason::Length => "max tokens".to_string(),
            FinishReason::Stop(s) => format!("stop {s:?}"),
        };
        outln!(
            "── sample {i} · {finish} · {} prompt + {} generated tokens ──",
            c.prompt_tokens,
            c.generated_tokens
        )?;
        outln!("{}{}", req.assistant_prefix, c.text)?;
        if let Some(lps) = &c.logprobs {
            let sum: f32 = lps.iter().map(|t| t.logprob).sum();
            let shown: Vec<String> = lps
                .iter()
                .map(|t| format!("{:?}:{:.2}", t.token, t.logprob))
                .collect();
            outln!("logprobs (sum {sum:.2}): {}", shown.join(" "))?;
        }
    }
    if !args.json {
        eprintln!(
            "{} samples, {total_gen} tokens in {secs:.2}s ({:.1} tok/s) from {}",
            part.completions.len(),
            total_gen as f64 / secs.max(1e-9),
            backend.name()
        );
    }
    if let Some(e) = part.error {
        return Err(e).context(format!(
            "{} of {} samples finished before the failure",
            part.completions.len(),
            args.n
        ));
    }
    Ok(())
}
