//! Prompt templates as data files.
//!
//! A template file has sections opened by a line `### system`, `### user` or
//! `### assistant` (the text the assistant turn starts with). Inside, `{name}`
//! placeholders are replaced; `{{` and `}}` stand for literal braces. Lines before the
//! first section header that start with `#` are comments.

use crate::ScoreError;
use std::collections::BTreeMap;
use std::path::Path;
use stepwise_core::Problem;
use stepwise_model::{ChatMessage, Prompt};

/// A parsed template: system, user and assistant-prefix sections. Other crates with
/// their own placeholders (e.g. annotate's reference judge) parse and fill through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub system: Option<String>,
    pub user: String,
    pub assistant: String,
    place: String,
}

impl Template {
    /// Parses template text; `place` names it in errors (a path or `built-in judge.txt`).
    /// `allowed` lists the placeholders the caller fills in.
    pub fn parse(text: &str, place: &str, allowed: &[&str]) -> Result<Self, ScoreError> {
        let err = |reason: String| ScoreError::Template {
            place: place.to_string(),
            reason,
        };
        let mut sections: BTreeMap<String, String> = BTreeMap::new();
        let mut cur: Option<String> = None;
        for (ln, line) in text.lines().enumerate() {
            if let Some(h) = line.strip_prefix("### ") {
                let name = h.trim().to_ascii_lowercase();
                if !["system", "user", "assistant"].contains(&name.as_str()) {
                    return Err(err(format!(
                        "line {}: unknown section '{name}' (expected system, user or assistant)",
                        ln + 1
                    )));
                }
                if sections.contains_key(&name) {
                    return Err(err(format!("line {}: section '{name}' repeated", ln + 1)));
                }
                sections.insert(name.clone(), String::new());
                cur = Some(name);
                continue;
            }
            match &cur {
                Some(name) => {
                    if let Some(s) = sections.get_mut(name) {
                        if !s.is_empty() {
                            s.push('\n');
                        }
                        s.push_str(line);
                    }
                }
                None if line.trim().is_empty() || line.starts_with('#') => {}
                None => {
                    return Err(err(format!(
                        "line {}: text before the first '### system' / '### user' header",
                        ln + 1
                    )));
                }
            }
        }
        // Trailing blank lines of a section are layout, not content.
        let tidy = |s: String| s.trim_end_matches(['\n', ' ']).to_string();
        let user = sections
            .remove("user")
            .map(tidy)
            .ok_or_else(|| err("no '### user' section".into()))?;
        let t = Template {
            system: sections
                .remove("system")
                .map(tidy)
                .filter(|s| !s.is_empty()),
            user,
            assistant: sections.remove("assistant").map(tidy).unwrap_or_default(),
            place: place.to_string(),
        };
        for part in [t.system.as_deref().unwrap_or(""), &t.user, &t.assistant] {
            for name in placeholders(part).map_err(&err)? {
                if !allowed.contains(&name.as_str()) {
                    return Err(err(format!(
                        "unknown placeholder {{{name}}} (allowed: {})",
                        allowed
                            .iter()
                            .map(|a| format!("{{{a}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Ok(t)
    }

    /// Reads and parses a template file.
    pub fn load(path: &Path, allowed: &[&str]) -> Result<Self, ScoreError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScoreError::Template {
            place: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string(), allowed)
    }

    /// Fills the placeholders and builds a chat prompt plus the assistant prefix.
    pub fn render(&self, vars: &[(&str, &str)]) -> Result<(Prompt, String), ScoreError> {
        let fill = |s: &str| fill(s, vars, &self.place);
        let mut msgs = Vec::new();
        if let Some(sys) = &self.system {
            msgs.push(ChatMessage::system(fill(sys)?));
        }
        msgs.push(ChatMessage::user(fill(&self.user)?));
        Ok((Prompt::Chat(msgs), fill(&self.assistant)?))
    }
}

/// Names of the `{name}` placeholders in `s`.
fn placeholders(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' if b.get(i + 1) == Some(&b'{') => i += 2,
            b'}' if b.get(i + 1) == Some(&b'}') => i += 2,
            b'{' => {
                let end = s[i..]
                    .find('}')
                    .ok_or_else(|| format!("unclosed '{{' at byte {i}"))?;
                let name = &s[i + 1..i + end];
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "bad placeholder '{{{name}}}' at byte {i} (write '{{{{' for a literal brace)"
                    ));
                }
                out.push(name.to_string());
                i += end + 1;
            }
            b'}' => {
                return Err(format!(
                    "stray '}}' at byte {i} (write '}}}}' for a literal brace)"
                ));
            }
            _ => i += 1,
        }
    }
    Ok(out)
}

/// Replaces each `{name}` in `s` by its value; `{{`/`}}` are literal braces. `place`
/// names the template in errors.
pub fn fill(s: &str, vars: &[(&str, &str)], place: &str) -> Result<String, ScoreError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find(['{', '}']) {
        out.push_str(&rest[..p]);
        let tail = &rest[p..];
        if let Some(r) = tail.strip_prefix("{{") {
            out.push('{');
            rest = r;
        } else if let Some(r) = tail.strip_prefix("}}") {
            out.push('}');
            rest = r;
        } else if tail.starts_with('{') {
            let end = tail.find('}').unwrap_or(tail.len());
            let name = &tail[1..end];
            let v = vars
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| ScoreError::Template {
                    place: place.to_string(),
                    reason: format!("placeholder {{{name}}} has no value"),
                })?;
            out.push_str(v);
            rest = tail.get(end + 1..).unwrap_or("");
        } else {
            out.push('}');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

const POLICY_DEFAULT: &str = include_str!("../prompts/policy.txt");

/// How the policy is asked to solve a problem: a template with `{question}`, and the
/// stop strings that end an answer.
///
/// The default (`prompts/policy.txt`) keeps SmolLM2's own system prompt (its chat
/// template leaves it out, and greedy accuracy on one-digit arithmetic drops from 70%
/// to 25% without it) and asks for a fixed final line, `The answer is N.`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPrompt {
    template: Template,
}

impl Default for PolicyPrompt {
    fn default() -> Self {
        Self {
            template: Template::parse(POLICY_DEFAULT, "built-in prompts/policy.txt", &["question"])
                // The built-in file is tested below; failing here is a build defect.
                .unwrap_or_else(|e| panic!("built-in policy prompt is malformed: {e}")),
        }
    }
}

impl PolicyPrompt {
    /// Placeholders a policy template may use.
    pub const PLACEHOLDERS: [&'static str; 1] = ["question"];

    /// The built-in template's text (to copy and edit).
    pub fn default_text() -> &'static str {
        POLICY_DEFAULT
    }

    /// Parses a template from text.
    pub fn parse(text: &str, place: &str) -> Result<Self, ScoreError> {
        Ok(Self {
            template: Template::parse(text, place, &Self::PLACEHOLDERS)?,
        })
    }

    /// Loads a template file.
    pub fn load(path: &Path) -> Result<Self, ScoreError> {
        Ok(Self {
            template: Template::load(path, &Self::PLACEHOLDERS)?,
        })
    }

    /// The prompt for a problem and the text the assistant turn starts with (usually empty).
    pub fn render(&self, problem: &Problem) -> Result<(Prompt, String), ScoreError> {
        self.template.render(&[("question", &problem.question)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_fills() {
        let t = Template::parse(
            "# comment\n### system\nBe {{brief}}.\n### user\nQ: {question}\n\n### assistant\nA:",
            "t",
            &["question"],
        )
        .unwrap();
        let (p, a) = t.render(&[("question", "2+2?")]).unwrap();
        let Prompt::Chat(m) = p else { panic!() };
        assert_eq!(m[0].content, "Be {brief}.");
        assert_eq!(m[1].content, "Q: 2+2?");
        assert_eq!(a, "A:");
    }

    #[test]
    fn rejects_bad_templates() {
        for bad in [
            "no header",
            "### system\nonly system",
            "### user\n{nope}",
            "### user\n{question",
            "### user\nx } y",
            "### user\na\n### user\nb",
            "### tool\nx",
        ] {
            let e = Template::parse(bad, "bad.txt", &["question"]).unwrap_err();
            assert!(e.to_string().contains("bad.txt"), "{e}");
        }
    }

    #[test]
    fn builtin_policy_prompt_is_valid() {
        let p = PolicyPrompt::default();
        let (prompt, _) = p.render(&Problem::new("1", "What is 2 + 3?")).unwrap();
        let Prompt::Chat(m) = prompt else { panic!() };
        assert!(m.iter().any(|m| m.content.contains("What is 2 + 3?")));
        assert!(m[0].content.contains("SmolLM"));
    }
}
