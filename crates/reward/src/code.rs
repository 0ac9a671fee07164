//! The `code` component: runs the response's program against the item's test cases in
//! [`stepwise_sandbox`], the way verl's sandbox-fusion reward does (extract the last
//! fenced Python block, run it once per case, compare what it prints with the expected
//! output; the value is the share of cases passed, or 1 only when all pass).
//!
//! The item's gold (its label) holds the cases as JSON, in any of these forms:
//!
//! - `[{"input": "1 2\n", "output": "3\n"}, …]` (stdin and expected stdout per case);
//! - `{"inputs": ["1 2\n", …], "outputs": ["3\n", …]}` (APPS / TACO `input_output`);
//! - `{"asserts": ["assert add(1, 2) == 3", …]}` or `["assert …", …]` (MBPP's
//!   `test_list`: each statement is appended to the program and passes when it exits 0).
//!
//! Outputs are compared line by line with trailing whitespace and trailing blank lines
//! removed (sandbox-fusion's default comparison is on stripped text).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use stepwise_sandbox::{Limits as SandboxLimits, Outcome, Sandbox};

/// How the share of passed cases becomes the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeMode {
    /// passed / cases.
    #[default]
    Fraction,
    /// 1 when every case passes, else 0 (stops at the first failure).
    All,
}

/// One test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Case {
    /// Feed `input` on stdin, expect `output` on stdout.
    Io { input: String, output: String },
    /// Append the statement to the program; passes when the program exits 0.
    Assert(String),
}

/// The cases an item's gold holds, or why they cannot be read (naming the place).
pub fn parse_cases(gold: &str) -> Result<Vec<Case>, String> {
    let v: serde_json::Value =
        serde_json::from_str(gold).map_err(|e| format!("code: test cases are not JSON: {e}"))?;
    let text = |v: &serde_json::Value, at: &str| -> Result<String, String> {
        match v {
            serde_json::Value::String(s) => Ok(s.clone()),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            _ => Err(format!("code: {at} must be a string")),
        }
    };
    let asserts = |list: &[serde_json::Value], at: &str| -> Result<Vec<Case>, String> {
        list.iter()
            .enumerate()
            .map(|(i, a)| text(a, &format!("{at}[{i}]")).map(Case::Assert))
            .collect()
    };
    match &v {
        serde_json::Value::Array(list) if list.iter().all(|c| c.is_string()) => {
            asserts(list, "cases")
        }
        serde_json::Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let input = c
                    .get("input")
                    .map_or(Ok(String::new()), |x| text(x, &format!("cases[{i}].input")))?;
                let output = c
                    .get("output")
                    .ok_or_else(|| format!("code: cases[{i}] has no `output`"))
                    .and_then(|x| text(x, &format!("cases[{i}].output")))?;
                Ok(Case::Io { input, output })
            })
            .collect(),
        serde_json::Value::Object(map) => {
            if let Some(list) = map.get("asserts") {
                let list = list
                    .as_array()
                    .ok_or("code: `asserts` must be a list of statements")?;
                return asserts(list, "asserts");
            }
            let inputs = map
                .get("inputs")
                .and_then(|x| x.as_array())
                .ok_or("code: expected `inputs` and `outputs` lists (or `asserts`)")?;
            let outputs = map
                .get("outputs")
                .and_then(|x| x.as_array())
                .ok_or("code: expected an `outputs` list beside `inputs`")?;
            if inputs.len() != outputs.len() {
                return Err(format!(
                    "code: {} inputs but {} outputs",
                    inputs.len(),
                    outputs.len()
                ));
            }
            inputs
                .iter()
                .zip(outputs)
                .enumerate()
                .map(|(i, (inp, out))| {
                    Ok(Case::Io {
                        input: text(inp, &format!("inputs[{i}]"))?,
                        output: text(out, &format!("outputs[{i}]"))?,
                    })
                })
                .collect()
        }
        _ => Err("code: test cases must be a list or an object".into()),
    }
}

/// The last fenced block whose info string is `python`, `py` or `python3`.
pub fn last_python_block(response: &str) -> Option<&str> {
    let mut found = None;
    let mut rest = response;
    let mut offset = 0;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let line_end = after.find('\n')?;
        let info = after[..line_end].trim().to_ascii_lowercase();
        let body = &after[line_end + 1..];
        let Some(close) = body.find("```") else { break };
        let start = offset + open + 3 + line_end + 1;
        if matches!(info.as_str(), "python" | "py" | "python3") {
            found = Some(&response[start..start + close]);
        }
        let consumed = open + 3 + line_end + 1 + close + 3;
        offset += consumed;
        rest = &rest[consumed..];
    }
    found
}

/// Text as compared: trailing whitespace off every line, trailing blank lines off.
fn normalize(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim_end).collect();
    let mut end = lines.len();
    while end > 0 && lines[end - 1].is_empty() {
        end -= 1;
    }
    lines[..end].join("\n")
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub passed: bool,
    /// The sandbox outcome's kind (`ok`, `timeout`, `memory_limit`, `output_limit`,
    /// `error`), or `sandbox_failed` when the run could not start.
    pub outcome: &'static str,
}

/// A scored response: the value and what each case did.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeScore {
    pub value: f64,
    /// Empty when the response has no Python block or the gold no readable cases.
    pub cases: Vec<CaseResult>,
    pub no_program: bool,
    pub bad_cases: Option<String>,
}

impl CodeScore {
    /// The diagnostics for `extra_logs`, keyed `<name>.passed`, `<name>.cases`,
    /// `<name>.case<i>` (1 passed, 0 failed), `<name>.<outcome>` counts,
    /// `<name>.no_program` and `<name>.bad_cases`.
    pub fn logs(&self, name: &str) -> BTreeMap<String, f64> {
        let mut logs = BTreeMap::new();
        let passed = self.cases.iter().filter(|c| c.passed).count();
        logs.insert(format!("{name}.passed"), passed as f64);
        logs.insert(format!("{name}.cases"), self.cases.len() as f64);
        for (i, c) in self.cases.iter().enumerate() {
            logs.insert(format!("{name}.case{i}"), f64::from(u8::from(c.passed)));
        }
        for kind in [
            "timeout",
            "memory_limit",
            "output_limit",
            "error",
            "sandbox_failed",
        ] {
            let n = self.cases.iter().filter(|c| c.outcome == kind).count();
            logs.insert(format!("{name}.{kind}"), n as f64);
        }
        logs.insert(
            format!("{name}.no_program"),
            f64::from(u8::from(self.no_program)),
        );
        logs.insert(
            format!("{name}.bad_cases"),
            f64::from(u8::from(self.bad_cases.is_some())),
        );
        logs
    }
}

/// The configured component.
#[derive(Debug, Clone)]
pub struct CodeCheck {
    pub sandbox: Sandbox,
    pub mode: CodeMode,
    pub max_cases: usize,
}

impl CodeCheck {
    pub fn new(limits: SandboxLimits, mode: CodeMode, max_cases: usize) -> Result<Self, String> {
        let sandbox = Sandbox::new(limits).map_err(|e| format!("code component: {e}"))?;
        Ok(Self {
            sandbox,
            mode,
            max_cases,
        })
    }

    /// Scores `response` against the cases in `gold`.
    pub fn score(&self, response: &str, gold: &str) -> CodeScore {
        let Some(program) = last_python_block(response) else {
            return CodeScore {
                value: 0.0,
                cases: vec![],
                no_program: true,
                bad_cases: None,
            };
        };
        let cases = match parse_cases(gold) {
            Ok(c) if c.is_empty() => Err("code: no test cases".to_string()),
            Ok(c) if c.len() > self.max_cases => Err(format!(
                "code: {} test cases, more than max_cases = {}",
                c.len(),
                self.max_cases
            )),
            other => other,
        };
        let cases = match cases {
            Ok(c) => c,
            Err(why) => {
                tracing::warn!("{why}");
                return CodeScore {
                    value: 0.0,
                    cases: vec![],
                    no_program: false,
                    bad_cases: Some(why),
                };
            }
        };
        let mut results = Vec::with_capacity(cases.len());
        for case in &cases {
            let r = match case {
                Case::Io { input, output } => self.sandbox.run(program, input).map(|r| {
                    let passed = matches!(&r.outcome, Outcome::Ok { stdout } if normalize(stdout) == normalize(output));
                    (passed, r.outcome.kind())
                }),
                Case::Assert(stmt) => self
                    .sandbox
                    .run(&format!("{program}\n\n{stmt}\n"), "")
                    .map(|r| (matches!(r.outcome, Outcome::Ok { .. }), r.outcome.kind())),
            };
            let result = match r {
                Ok((passed, outcome)) => CaseResult { passed, outcome },
                Err(e) => {
                    tracing::warn!("code component: {e}");
                    CaseResult {
                        passed: false,
                        outcome: "sandbox_failed",
                    }
                }
            };
            let failed = !result.passed;
            results.push(result);
            if failed && self.mode == CodeMode::All {
                break;
            }
        }
        let passed = results.iter().filter(|c| c.passed).count();
        let value = match self.mode {
            CodeMode::Fraction => passed as f64 / cases.len() as f64,
            CodeMode::All => f64::from(u8::from(passed == cases.len())),
        };
        CodeScore {
            value,
            cases: results,
            no_program: false,
            bad_cases: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mode: CodeMode) -> CodeCheck {
        CodeCheck::new(
            SandboxLimits {
                cpu_secs: 2,
                wall_ms: 2_000,
                ..SandboxLimits::default()
            },
            mode,
            16,
        )
        .unwrap()
    }

    const ADD: &str =
        "Read two numbers.\n```python\na, b = map(int, input().split())\nprint(a + b)\n```\n";

    #[test]
    fn finds_the_last_python_block() {
        let r = "```python\nprint(1)\n```\ntext\n```bash\nls\n```\n```py\nprint(2)\n```\nend";
        assert_eq!(last_python_block(r), Some("print(2)\n"));
        assert_eq!(last_python_block("```bash\nls\n```"), None);
        assert_eq!(last_python_block("```python\nprint(1)\n"), None);
        assert_eq!(last_python_block("no code"), None);
    }

    #[test]
    fn reads_the_three_case_forms_and_names_bad_ones() {
        let io = parse_cases(r#"[{"input": "1 2\n", "output": "3\n"}, {"output": 5}]"#).unwrap();
        assert_eq!(
            io,
            [
                Case::Io {
                    input: "1 2\n".into(),
                    output: "3\n".into()
                },
                Case::Io {
                    input: "".into(),
                    output: "5".into()
                }
            ]
        );
        let apps = parse_cases(r#"{"inputs": ["1\n"], "outputs": ["2\n"]}"#).unwrap();
        assert_eq!(apps.len(), 1);
        let asserts = parse_cases(r#"{"asserts": ["assert f(1) == 2"]}"#).unwrap();
        assert_eq!(asserts, [Case::Assert("assert f(1) == 2".into())]);
        assert_eq!(parse_cases(r#"["assert True"]"#).unwrap().len(), 1);
        for (bad, want) in [
            ("nope", "not JSON"),
            (r#"[{"input": "1"}]"#, "cases[0] has no `output`"),
            (
                r#"{"inputs": ["1"], "outputs": []}"#,
                "1 inputs but 0 outputs",
            ),
            (r#"[{"output": [1]}]"#, "cases[0].output must be a string"),
            ("3", "must be a list or an object"),
        ] {
            let err = parse_cases(bad).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn the_value_is_the_share_of_cases_passed() {
        // cases 1 and 3 pass, case 2 expects the wrong sum: 2 of 3
        let gold = r#"[{"input": "1 2\n", "output": "3"}, {"input": "2 2\n", "output": "5"}, {"input": "10 -4", "output": "6  \n\n"}]"#;
        let s = check(CodeMode::Fraction).score(ADD, gold);
        assert!((s.value - 2.0 / 3.0).abs() < 1e-12, "{s:?}");
        let passed: Vec<bool> = s.cases.iter().map(|c| c.passed).collect();
        assert_eq!(passed, [true, false, true]);
        let logs = s.logs("code");
        assert_eq!(logs["code.passed"], 2.0);
        assert_eq!(logs["code.cases"], 3.0);
        assert_eq!(logs["code.case1"], 0.0);
        // all-or-nothing: 0, and it stops at the first failure
        let s = check(CodeMode::All).score(ADD, gold);
        assert_eq!(s.value, 0.0);
        assert_eq!(s.cases.len(), 2);
        let all_right = r#"[{"input": "1 2", "output": "3"}, {"input": "0 0", "output": "0"}]"#;
        assert_eq!(check(CodeMode::All).score(ADD, all_right).value, 1.0);
    }

    #[test]
    fn asserts_run_after_the_program() {
        let r = "```python\ndef add(a, b):\n    return a + b\n```";
        let gold = r#"{"asserts": ["assert add(1, 2) == 3", "assert add(2, 2) == 5", "assert add(-1, 1) == 0"]}"#;
        let s = check(CodeMode::Fraction).score(r, gold);
        assert!((s.value - 2.0 / 3.0).abs() < 1e-12, "{s:?}");
        assert_eq!(s.cases[1].outcome, "error");
    }

    #[test]
    fn hostile_or_missing_programs_score_zero() {
        let gold = r#"[{"input": "", "output": "1"}]"#;
        let s = check(CodeMode::Fraction).score("```python\nwhile True: pass\n```", gold);
        assert_eq!(s.value, 0.0);
        assert_eq!(s.cases[0].outcome, "timeout");
        let s = check(CodeMode::Fraction).score("no code here", gold);
        assert!(s.no_program);
        assert_eq!(s.logs("code")["code.no_program"], 1.0);
        let s = check(CodeMode::Fraction).score(ADD, "not json");
        assert!(s.bad_cases.is_some());
        assert_eq!(s.value, 0.0);
    }
}
