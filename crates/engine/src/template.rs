//! Prompt rendering shared by the backends: ChatML and default system prompts.

use crate::{ChatMessage, Role};

/// Renders messages as ChatML (`<|im_start|>role\ncontent<|im_end|>\n`) with an open
/// assistant turn, the format of SmolLM2, Qwen and many other instruct models.
pub fn render_chatml(messages: &[ChatMessage]) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str("<|im_start|>");
        out.push_str(role_name(m.role));
        out.push('\n');
        out.push_str(&m.content);
        out.push_str("<|im_end|>\n");
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

/// The role as chat templates and OpenAI APIs spell it.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

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

/// Prepends `system` when the conversation has no system message.
pub fn with_default_system(messages: &[ChatMessage], system: Option<&str>) -> Vec<ChatMessage> {
    let has_system = messages.iter().any(|m| m.role == Role::System);
    let mut out = Vec::with_capacity(messages.len() + 1);
    if let (false, Some(s)) = (has_system, system) {
        out.push(ChatMessage::system(s));
    }
    out.extend(messages.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_and_system_prompt() {
        let msgs = vec![ChatMessage::user("1+1?")];
        let with = with_default_system(&msgs, Some("Be brief."));
        assert_eq!(
            render_chatml(&with),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n"
        );
        let own = vec![ChatMessage::system("Mine"), ChatMessage::user("q")];
        assert_eq!(with_default_system(&own, Some("Be brief.")), own);
    }

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
