//! Prompt rendering shared by the backends: ChatML, role names and default system prompts.

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
}
