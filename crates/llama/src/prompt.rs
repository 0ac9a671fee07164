//! Prompts as the model reads them: chat templates (the model's own through llama.cpp, or
//! ChatML when it has none), default system prompts, and tokenization.

use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use stepwise_model::template::{render_chatml, role_name, with_default_system};
use stepwise_model::{EngineError, Prompt};

/// Finds the default system prompt a Jinja chat template inserts when the conversation has
/// none (SmolLM2: "You are a helpful AI assistant named SmolLM, trained by Hugging Face").
/// llama.cpp's built-in template engine does not run Jinja, so the embedded backend adds it.
pub fn default_system_prompt_of_template(template: &str) -> Option<String> {
    const OPEN: &str = "<|im_start|>system\n";
    let start = template.find(OPEN)? + OPEN.len();
    let rest = &template[start..];
    let end = rest.find("<|im_end|>")?;
    let text = &rest[..end];
    // A template that prints the user's system message has Jinja syntax here, not a literal.
    if text.is_empty() || text.contains("{{") || text.contains("{%") || text.contains('\'') {
        return None;
    }
    Some(text.to_string())
}

/// Renders and tokenizes prompts for one model.
pub(crate) struct Prompts<'m> {
    model: &'m LlamaModel,
    system_prompt: Option<String>,
    has_template: bool,
}

impl<'m> Prompts<'m> {
    /// The model's prompt format: its chat template (also returned) and the system prompt
    /// for chats without one (`configured`, else the template's default).
    pub fn of_model(model: &'m LlamaModel, configured: Option<String>) -> (Self, Option<String>) {
        let template = model
            .chat_template(None)
            .ok()
            .and_then(|t| t.to_string().ok());
        let system_prompt = configured.or_else(|| {
            template
                .as_deref()
                .and_then(default_system_prompt_of_template)
        });
        let prompts = Self {
            model,
            system_prompt,
            has_template: template.is_some(),
        };
        (prompts, template)
    }

    /// The system prompt added to chats without one.
    pub fn system_prompt(&self) -> Option<&str> {
        self.system_prompt.as_deref()
    }

    /// `prompt` as text (chat template applied, assistant turn opened), then `prefix`.
    fn render(&self, prompt: &Prompt, prefix: &str) -> Result<String, EngineError> {
        let mut text = match prompt {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(msgs) => {
                if msgs.is_empty() {
                    return Err(EngineError::InvalidRequest(
                        "chat prompt has no messages".into(),
                    ));
                }
                let msgs = with_default_system(msgs, self.system_prompt.as_deref());
                let tmpl = if self.has_template {
                    self.model.chat_template(None).ok()
                } else {
                    None
                };
                match tmpl {
                    Some(t) => {
                        let chat = msgs
                            .iter()
                            .map(|m| {
                                LlamaChatMessage::new(role_name(m.role).into(), m.content.clone())
                            })
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| {
                                EngineError::InvalidRequest(format!("chat message: {e}"))
                            })?;
                        self.model
                            .apply_chat_template(&t, &chat, true)
                            .map_err(|e| {
                                EngineError::InvalidRequest(format!("chat template: {e}"))
                            })?
                    }
                    None => render_chatml(&msgs),
                }
            }
        };
        text.push_str(prefix);
        Ok(text)
    }

    /// Tokens of `prompt` + `prefix` (BOS added, special tokens parsed); never empty.
    pub fn tokenize(&self, prompt: &Prompt, prefix: &str) -> Result<Vec<LlamaToken>, EngineError> {
        let text = self.render(prompt, prefix)?;
        let toks = self.model.vocab().tokenize(text.as_bytes(), true, true);
        if toks.is_empty() {
            return Err(EngineError::InvalidRequest("the prompt is empty".into()));
        }
        Ok(toks)
    }

    /// Tokens of `prompt` followed by each piece tokenized on its own (no BOS, no special
    /// tokens), and the position of the last token of each piece (an empty piece repeats the
    /// position before it).
    pub fn tokenize_pieces(
        &self,
        prompt: &Prompt,
        pieces: &[String],
    ) -> Result<(Vec<LlamaToken>, Vec<usize>), EngineError> {
        let mut tokens = self.tokenize(prompt, "")?;
        let mut ends = Vec::with_capacity(pieces.len());
        let vocab = self.model.vocab();
        for p in pieces {
            if !p.is_empty() {
                tokens.extend(vocab.tokenize(p.as_bytes(), false, false));
            }
            ends.push(tokens.len() - 1);
        }
        Ok((tokens, ends))
    }

    /// The first token of each candidate continuation, if it has one.
    pub fn first_tokens(&self, candidates: &[String]) -> Vec<Option<LlamaToken>> {
        let vocab = self.model.vocab();
        candidates
            .iter()
            .map(|c| vocab.tokenize(c.as_bytes(), false, false).first().copied())
            .collect()
    }

    /// Token ids of `text` (special tokens parsed, no BOS).
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, true)
            .iter()
            .map(|t| t.0 as u32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_smollm_default_system_prompt() {
        let t = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}";
        assert_eq!(
            default_system_prompt_of_template(t).as_deref(),
            Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        );
        assert_eq!(
            default_system_prompt_of_template(
                "{{ '<|im_start|>system\n' + message['content'] + '<|im_end|>' }}"
            ),
            None
        );
        assert_eq!(default_system_prompt_of_template("no chatml"), None);
    }
}
