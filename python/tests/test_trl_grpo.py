"""TRL's real ``GRPOTrainer`` for two optimizer steps on CPU with stepwise's in-process rewards.

The model and tokenizer are built here (a 2-layer random Qwen2 and a word-level tokenizer
trained on the spot), so nothing is downloaded. ``scripts/setup`` installs TRL with its
dependencies (torch) into the venv.
"""

from __future__ import annotations

import os

import pytest

# Nothing may come from the hub: any attempt fails instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
from stepwise.rewards import trl_reward, trl_reward_async

QUESTIONS = [("What is 2 + 2 ?", "4"), ("What is 3 + 4 ?", "7"), ("What is 5 - 1 ?", "4")]
# A chat template of our own: the tokenizer trained here has none.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
SPECIAL = ["<pad>", "<eos>", "<unk>", "<|user|>", "<|assistant|>", "<|end|>"]


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [q for q, _ in QUESTIONS] + [
        "<think> 2 + 2 = 4 </think> The answer is \\boxed{4} .",
        "so 3 + 4 = 7 and 5 - 1 = 4 , answer 1 2 3 4 5 6 7 8 9 0",
    ]
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _model(tok):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(cfg)


def test_grpo_trainer_two_steps_with_stepwise_rewards(tmp_path):
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    tok = _tokenizer()
    data = Dataset.from_dict(
        {
            "prompt": [[{"role": "user", "content": q}] for q, _ in QUESTIONS] * 4,
            "solution": [a for _, a in QUESTIONS] * 4,
        }
    )
    calls: list[tuple[str, int, int, list]] = []
    sync_f, async_f = trl_reward(preset="deepseek-r1"), trl_reward_async(preset="deepseek-r1")

    def stepwise_sync(prompts, completions, **kw):
        out = sync_f(prompts=prompts, completions=completions, **kw)
        calls.append(("sync", len(completions), len(kw["solution"]), out))
        return out

    async def stepwise_async(prompts, completions, **kw):
        out = await async_f(prompts=prompts, completions=completions, **kw)
        calls.append(("async", len(completions), len(kw["solution"]), out))
        return out

    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=_model(tok),
        reward_funcs=[stepwise_sync, stepwise_async],
        args=args,
        train_dataset=data,
        processing_class=tok,
    )
    result = trainer.train()

    assert trainer.state.global_step == 2
    assert result.global_step == 2
    # One generation batch (4 completions) per optimizer step, each scored by both functions.
    assert [c[0] for c in calls].count("sync") == 2 and [c[0] for c in calls].count("async") == 2
    for kind, n, golds, out in calls:
        assert n == 4 and golds == 4, (kind, n, golds)
        assert len(out) == 4 and all(isinstance(r, float) for r in out), out
    logged = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logged) == 2
    assert any("stepwise/accuracy" in h for h in trainer.state.log_history), trainer.state.log_history


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
