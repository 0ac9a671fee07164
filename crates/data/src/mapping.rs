//! Field mapping: which fields of a record are the id, the question, the gold answer
//! and the reference solution. Everything else goes into [`Problem::metadata`].

use serde_json::{Map, Value};
use stepwise_core::{AnswerExtractor, ExtractRule, Problem};

/// Where one [`Problem`] field comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Field {
    /// Try the usual names (see [`FieldMap::auto`]).
    #[default]
    Auto,
    /// This field of the record.
    Named(String),
    /// Not taken from the record.
    Absent,
}

impl Field {
    /// `Named(name)`.
    pub fn named(name: impl Into<String>) -> Self {
        Self::Named(name.into())
    }
}

/// How the gold answer is obtained from its field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GoldRule {
    /// Use the field as it is (trimmed). Numbers are written as JSON writes them.
    Verbatim,
    /// Run these extraction rules on the field (e.g. `#### N` for GSM8K) and use the match.
    /// Numbers with thousands separators (`1,450,000`) lose the commas; the raw match is
    /// kept in `metadata.gold_raw`.
    Extract(Vec<ExtractRule>),
    /// `Extract([Gsm8k])` when the text has a `####` marker, else `Verbatim`.
    #[default]
    Auto,
}

/// How to turn a JSON record into a [`Problem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMap {
    pub id: Field,
    pub question: Field,
    pub gold: Field,
    pub gold_rule: GoldRule,
    pub reference: Field,
    /// Prefix of generated ids (`{prefix}{ordinal}`) when the record has no id field.
    pub id_prefix: String,
    /// A record whose gold answer is missing or cannot be extracted is a bad record.
    pub require_gold: bool,
}

/// Names tried, in order, by [`Field::Auto`].
pub const AUTO_ID: &[&str] = &["id", "unique_id", "problem_id", "idx"];
pub const AUTO_QUESTION: &[&str] = &["question", "problem", "prompt", "input"];
pub const AUTO_GOLD: &[&str] = &["gold", "answer", "final_answer", "target"];
pub const AUTO_REFERENCE: &[&str] = &["reference", "solution", "rationale"];

impl FieldMap {
    /// Detects the usual field names: id from `id`/`unique_id`/`problem_id`/`idx`, the
    /// question from `question`/`problem`/`prompt`/`input`, the gold answer from
    /// `gold`/`answer`/`final_answer`/`target`, the reference from
    /// `reference`/`solution`/`rationale`. A GSM8K-style `answer` with a `#### N` line
    /// gives gold `N` and, when there is no reference field, becomes the reference.
    pub fn auto(id_prefix: impl Into<String>) -> Self {
        Self {
            id: Field::Auto,
            question: Field::Auto,
            gold: Field::Auto,
            gold_rule: GoldRule::Auto,
            reference: Field::Auto,
            id_prefix: id_prefix.into(),
            require_gold: false,
        }
    }

    /// Converts one record. `ordinal` is the 0-based position of the record in its file,
    /// used for generated ids. The error is a message without the file:line prefix.
    pub fn to_problem(
        &self,
        mut record: Map<String, Value>,
        ordinal: usize,
    ) -> Result<Problem, String> {
        let id_key = resolve(&self.id, AUTO_ID, &record);
        let q_key = resolve(&self.question, AUTO_QUESTION, &record).ok_or_else(|| {
            match &self.question {
                Field::Named(n) => format!("missing question field '{n}'"),
                _ => format!(
                    "no question field (looked for {})",
                    AUTO_QUESTION.join(", ")
                ),
            }
        })?;
        let gold_key = resolve(&self.gold, AUTO_GOLD, &record);
        let ref_key = resolve(&self.reference, AUTO_REFERENCE, &record);

        let id = match &id_key {
            Some(k) => match record.remove(k) {
                None | Some(Value::Null) => return Err(format!("missing id field '{k}'")),
                Some(v) => scalar_text(v).map_err(|e| format!("id field '{k}' {e}"))?,
            },
            None => format!("{}{ordinal}", self.id_prefix),
        };
        let question = match record.remove(&q_key) {
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            Some(Value::String(_)) => return Err(format!("question field '{q_key}' is empty")),
            Some(other) => {
                return Err(format!(
                    "question field '{q_key}' is {}, expected a string",
                    crate::jsonl::json_kind(&other)
                ));
            }
            None => return Err(format!("missing question field '{q_key}'")),
        };

        let mut metadata = Map::new();
        let mut reference = None;
        if let Some(k) = &ref_key {
            match record.remove(k) {
                Some(Value::String(s)) => reference = Some(s),
                Some(Value::Null) | None => {}
                Some(other) => {
                    return Err(format!(
                        "reference field '{k}' is {}, expected a string",
                        crate::jsonl::json_kind(&other)
                    ));
                }
            }
        }

        let mut gold = None;
        if let Some(k) = &gold_key {
            // When gold and reference are the same field (GSM8K), the text was moved to
            // `reference` above; read it from there.
            let raw = if ref_key.as_deref() == Some(k.as_str()) {
                reference.clone().map(Value::String)
            } else {
                record.remove(k)
            };
            let raw_text = match raw {
                None | Some(Value::Null) => None,
                Some(v) => Some(scalar_text(v).map_err(|e| format!("gold field '{k}' {e}"))?),
            };
            if let Some(text) = raw_text {
                let rules = match &self.gold_rule {
                    GoldRule::Verbatim => None,
                    GoldRule::Extract(rules) => Some(rules.clone()),
                    GoldRule::Auto => has_gsm8k_marker(&text).then(|| vec![ExtractRule::Gsm8k]),
                };
                match rules {
                    None => gold = Some(text.trim().to_string()),
                    Some(rules) => {
                        let names: Vec<&str> = rules.iter().map(|r| r.name()).collect();
                        match AnswerExtractor::new(rules.clone()).extract(&text) {
                            Some(found) => {
                                let clean = strip_thousands(&found.text);
                                if clean != found.text {
                                    metadata.insert(
                                        "gold_raw".into(),
                                        Value::String(found.text.clone()),
                                    );
                                }
                                gold = Some(clean);
                                // An auto-detected GSM8K answer is also the reference solution.
                                if self.gold_rule == GoldRule::Auto && reference.is_none() {
                                    reference = Some(text);
                                }
                            }
                            None if self.require_gold => {
                                return Err(format!(
                                    "no gold answer found in field '{k}' with rule(s) {}",
                                    names.join(",")
                                ));
                            }
                            None => {}
                        }
                    }
                }
            }
        }
        if self.require_gold && gold.as_deref().is_none_or(str::is_empty) {
            return Err(match &gold_key {
                Some(k) => format!("no gold answer in field '{k}'"),
                None => "missing gold answer field".to_string(),
            });
        }

        // A nested `metadata` object (as written by `Problem`'s serializer) is merged, so
        // problems written as JSONL read back unchanged.
        if let Some(Value::Object(inner)) = record.get("metadata") {
            let inner = inner.clone();
            record.remove("metadata");
            for (k, v) in inner {
                metadata.entry(k).or_insert(v);
            }
        }
        for (k, v) in record {
            metadata.entry(k).or_insert(v);
        }
        Ok(Problem {
            id,
            question,
            gold,
            reference,
            metadata,
        })
    }
}

fn resolve(field: &Field, candidates: &[&str], record: &Map<String, Value>) -> Option<String> {
    match field {
        Field::Absent => None,
        Field::Named(n) => Some(n.clone()),
        Field::Auto => candidates
            .iter()
            .find(|c| record.get(**c).is_some_and(|v| !v.is_null()))
            .map(|c| c.to_string()),
    }
}

/// The text of a string, or of a number as written (`42`, `0.5`). Booleans, arrays,
/// objects are not answers or ids: `true` read as the text "true" would verify as a word.
fn scalar_text(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        // Integers are exact; a float past 2^53 has lost digits (JSON numbers are read
        // as f64), which would make a wrong gold answer without a word.
        Value::Number(n)
            if n.as_f64()
                .is_some_and(|f| f.abs() >= 9_007_199_254_740_992.0)
                && !n.is_i64()
                && !n.is_u64() =>
        {
            Err(format!(
                "is a number too large to read exactly ({n}); write it as a string"
            ))
        }
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!(
            "is {} ({other}), expected a string or number",
            crate::jsonl::json_kind(&other)
        )),
    }
}

fn has_gsm8k_marker(text: &str) -> bool {
    text.lines().any(|l| l.trim_start().starts_with("####"))
}

/// `1,450,000` → `1450000`; anything that is not a comma-grouped number is returned as is.
pub fn strip_thousands(s: &str) -> String {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let groups: Vec<&str> = int.split(',').collect();
    let grouped = groups.len() > 1
        && !groups[0].is_empty()
        && groups[0].len() <= 3
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3)
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    if grouped {
        s.replace(',', "")
    } else {
        s.to_string()
    }
}

/// Field options given for a file (`--question-field`, `--gold-field`,
/// `--reference-field`, `--id-field`, `--gold-rule`); `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldOverrides {
    pub question: Option<String>,
    pub gold: Option<String>,
    pub reference: Option<String>,
    pub id: Option<String>,
    /// `verbatim`, or answer-extraction rules (see `AnswerExtractor::parse_rules`).
    pub gold_rule: Option<String>,
}

impl FieldOverrides {
    /// The field mapping of `dataset` with these overrides: `None` when none is given; an
    /// error when some are given for a built-in dataset (they apply to files only) or a
    /// gold rule does not parse.
    pub fn apply(&self, dataset: &crate::Dataset) -> Result<Option<FieldMap>, String> {
        let given = [
            &self.question,
            &self.gold,
            &self.reference,
            &self.id,
            &self.gold_rule,
        ];
        if given.iter().all(|o| o.is_none()) {
            return Ok(None);
        }
        if !matches!(dataset, crate::Dataset::File(_)) {
            return Err(format!(
                "field options (--question-field, --gold-field, ...) apply to files, not to the built-in '{dataset}'"
            ));
        }
        let field = |n: &Option<String>| n.as_ref().map(|n| Field::named(n.clone()));
        let mut map = dataset.field_map();
        if let Some(f) = field(&self.question) {
            map.question = f;
        }
        if let Some(f) = field(&self.gold) {
            map.gold = f;
        }
        if let Some(f) = field(&self.reference) {
            map.reference = f;
        }
        if let Some(f) = field(&self.id) {
            map.id = f;
        }
        if let Some(rule) = &self.gold_rule {
            map.gold_rule = if rule.trim() == "verbatim" {
                GoldRule::Verbatim
            } else {
                GoldRule::Extract(stepwise_core::AnswerExtractor::parse_rules(rule)?.rules)
            };
        }
        Ok(Some(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn gsm8k_style_answer_gives_gold_and_reference() {
        let p = FieldMap::auto("t:")
            .to_problem(
                obj(json!({"question": "q?", "answer": "a = 1,000\n#### 1,000"})),
                3,
            )
            .unwrap();
        assert_eq!(p.id, "t:3");
        assert_eq!(p.gold.as_deref(), Some("1000"));
        assert_eq!(p.reference.as_deref(), Some("a = 1,000\n#### 1,000"));
        assert_eq!(p.metadata["gold_raw"], "1,000");
    }

    #[test]
    fn math_style_record_maps_answer_solution_and_keeps_the_rest() {
        let p = FieldMap::auto("m:")
            .to_problem(
                obj(json!({"problem": "p", "solution": "s \\boxed{2}", "answer": "2", "level": 3, "unique_id": "test/a/1.json"})),
                0,
            )
            .unwrap();
        assert_eq!(p.id, "test/a/1.json");
        assert_eq!(p.gold.as_deref(), Some("2"));
        assert_eq!(p.reference.as_deref(), Some("s \\boxed{2}"));
        assert_eq!(p.metadata.len(), 1);
        assert_eq!(p.metadata["level"], 3);
    }

    #[test]
    fn named_fields_and_numeric_gold() {
        let map = FieldMap {
            id: Field::named("key"),
            question: Field::named("q"),
            gold: Field::named("y"),
            gold_rule: GoldRule::Verbatim,
            reference: Field::Absent,
            id_prefix: String::new(),
            require_gold: true,
        };
        let p = map
            .to_problem(
                obj(json!({"key": 7, "q": "x", "y": 42, "solution": "kept"})),
                0,
            )
            .unwrap();
        assert_eq!((p.id.as_str(), p.gold.as_deref()), ("7", Some("42")));
        assert_eq!(p.metadata["solution"], "kept");
        let err = map.to_problem(obj(json!({"q": "x"})), 0).unwrap_err();
        assert_eq!(err, "missing id field 'key'");
        let err = map
            .to_problem(obj(json!({"key": 1, "q": "x"})), 0)
            .unwrap_err();
        assert_eq!(err, "no gold answer in field 'y'");
    }

    #[test]
    fn a_boolean_gold_is_an_error_and_numbers_are_their_text() {
        let map = FieldMap::auto("");
        let e = map
            .to_problem(obj(json!({"question": "q", "gold": true})), 0)
            .unwrap_err();
        assert_eq!(
            e,
            "gold field 'gold' is a boolean (true), expected a string or number"
        );
        let e = map
            .to_problem(obj(json!({"question": "q", "id": false, "gold": "1"})), 0)
            .unwrap_err();
        assert!(e.starts_with("id field 'id' is a boolean"), "{e}");
        let e = map
            .to_problem(obj(json!({"question": "q", "gold": [1]})), 0)
            .unwrap_err();
        assert!(e.contains("is an array"), "{e}");
        for (raw, text) in [
            (json!(42), "42"),
            (json!(-7), "-7"),
            (json!(0.5), "0.5"),
            (json!(18446744073709551615u64), "18446744073709551615"),
        ] {
            let p = map
                .to_problem(obj(json!({"question": "q", "gold": raw})), 0)
                .unwrap();
            assert_eq!(p.gold.as_deref(), Some(text));
        }
        let big: Value = serde_json::from_str("123456789012345678901234567890").unwrap();
        let e = map
            .to_problem(obj(json!({"question": "q", "gold": big})), 0)
            .unwrap_err();
        assert!(e.contains("too large to read exactly"), "{e}");
    }

    #[test]
    fn missing_or_wrong_question_is_an_error() {
        let e = FieldMap::auto("")
            .to_problem(obj(json!({"text": "x"})), 0)
            .unwrap_err();
        assert!(e.starts_with("no question field"), "{e}");
        let e = FieldMap::auto("")
            .to_problem(obj(json!({"question": 5})), 0)
            .unwrap_err();
        assert_eq!(
            e,
            "question field 'question' is a number, expected a string"
        );
    }

    #[test]
    fn serialized_problems_read_back_unchanged() {
        let mut p = Problem::new("a:1", "What is 2 + 3?")
            .with_gold("5")
            .with_reference("2 + 3 = 5");
        p.metadata.insert("k".into(), json!({"x": [1, 2]}));
        let v = serde_json::to_value(&p).unwrap();
        let back = FieldMap::auto("").to_problem(obj(v), 0).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn strip_thousands_only_touches_grouped_numbers() {
        assert_eq!(strip_thousands("1,450,000"), "1450000");
        assert_eq!(strip_thousands("-2,125.5"), "-2125.5");
        assert_eq!(strip_thousands("12,34"), "12,34");
        assert_eq!(strip_thousands("(1,2)"), "(1,2)");
        assert_eq!(strip_thousands("1234"), "1234");
    }
}
