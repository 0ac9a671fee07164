//! Knights and Knaves puzzles with a unique solution, and the verifier of answers.
//!
//! The task of *Warm Up Before You Train: Unlocking General Reasoning in
//! Resource-Constrained Settings* (Shrestha et al., 2025), built like the K&K dataset of
//! Xie et al., *On Memorization of Large Language Models in Logical Reasoning* (2024):
//! `N` inhabitants, each either a knight (always tells the truth) or a knave (always
//! lies); each says one statement built from AND / OR / NOT / IMPLIES over atoms
//! "X is a knight" / "X is a knave". An assignment is a solution when every knight's
//! statement is true and every knave's is false. Only puzzles with exactly one solution
//! (checked by [`solutions`], which tries all `2^N` assignments) are generated.
//!
//! Difficulty: `people` (N) and `depth` (how deep statements nest; depth 1 is an atom
//! or its negation, depth 2 joins two of those, …).
//!
//! [`parse_answer`] reads the assignment out of what models write ("A is a knight, B is
//! a knave", lists, tables, "Knights: A, C", "A and C are knights"), [`score`] checks it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use stepwise_core::Problem;

/// Names of inhabitants (distinct, no name a prefix of a word of the puzzle text).
pub const NAMES: [&str; 12] = [
    "Zoey", "Oliver", "Mia", "Ethan", "Aria", "Lucas", "Nora", "Henry", "Ruby", "Jack", "Ivy",
    "Samuel",
];

/// Most inhabitants of one puzzle (assignments are enumerated: `2^N`).
pub const MAX_PEOPLE: usize = 12;

/// A statement over inhabitants (indices into the puzzle's names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Statement {
    /// "X is a knight" (`knight: true`) or "X is a knave".
    Is {
        person: usize,
        knight: bool,
    },
    Not {
        inner: Box<Statement>,
    },
    And {
        left: Box<Statement>,
        right: Box<Statement>,
    },
    Or {
        left: Box<Statement>,
        right: Box<Statement>,
    },
    Implies {
        left: Box<Statement>,
        right: Box<Statement>,
    },
}

impl Statement {
    /// Its truth under an assignment (`knights[i]`: person i is a knight).
    pub fn eval(&self, knights: &[bool]) -> bool {
        match self {
            Self::Is { person, knight } => knights.get(*person).is_some_and(|k| k == knight),
            Self::Not { inner } => !inner.eval(knights),
            Self::And { left, right } => left.eval(knights) && right.eval(knights),
            Self::Or { left, right } => left.eval(knights) || right.eval(knights),
            Self::Implies { left, right } => !left.eval(knights) || right.eval(knights),
        }
    }

    /// The statement in English, with `names` for the people.
    pub fn render(&self, names: &[&str]) -> String {
        let name = |i: usize| names.get(i).copied().unwrap_or("someone");
        match self {
            Self::Is { person, knight } => {
                format!("{} is a {}", name(*person), role(*knight))
            }
            Self::Not { inner } => format!("it is not the case that {}", inner.render(names)),
            Self::And { left, right } => {
                format!("({} and {})", left.render(names), right.render(names))
            }
            Self::Or { left, right } => {
                format!("({} or {})", left.render(names), right.render(names))
            }
            Self::Implies { left, right } => {
                format!("(if {} then {})", left.render(names), right.render(names))
            }
        }
    }
}

fn role(knight: bool) -> &'static str {
    if knight { "knight" } else { "knave" }
}

/// Every solution of a puzzle: the assignments under which each person's statement is
/// true exactly when that person is a knight.
pub fn solutions(statements: &[Statement]) -> Vec<Vec<bool>> {
    let n = statements.len();
    (0u32..(1u32 << n))
        .map(|mask| (0..n).map(|i| mask & (1 << i) != 0).collect::<Vec<bool>>())
        .filter(|k| statements.iter().zip(k).all(|(s, &kn)| s.eval(k) == kn))
        .collect()
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnightsConfig {
    /// Inhabitants per puzzle (2..=12).
    pub people: usize,
    /// Nesting depth of statements (1..=4).
    pub depth: usize,
    pub n: usize,
    pub seed: u64,
}

impl Default for KnightsConfig {
    fn default() -> Self {
        Self {
            people: 3,
            depth: 2,
            n: 100,
            seed: 0,
        }
    }
}

impl KnightsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(2..=MAX_PEOPLE).contains(&self.people) {
            return Err(format!(
                "people must be 2..={MAX_PEOPLE}, not {}",
                self.people
            ));
        }
        if !(1..=4).contains(&self.depth) {
            return Err(format!("depth must be 1..=4, not {}", self.depth));
        }
        Ok(())
    }
}

/// One puzzle with its unique solution (stored in `metadata.knights`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Puzzle {
    pub names: Vec<String>,
    /// `statements[i]` is what person i says.
    pub statements: Vec<Statement>,
    /// `solution[i]`: person i is a knight.
    pub solution: Vec<bool>,
}

/// Metadata key of the [`Puzzle`].
pub const METADATA_KEY: &str = "knights";

fn random_statement(
    rng: &mut ChaCha8Rng,
    people: usize,
    depth: usize,
    speaker: usize,
) -> Statement {
    if depth <= 1 || rng.gen_bool(0.25) {
        // an atom about someone else more often than about oneself
        let person = if people > 1 && rng.gen_bool(0.85) {
            let mut p = rng.gen_range(0..people - 1);
            if p >= speaker {
                p += 1;
            }
            p
        } else {
            speaker
        };
        let atom = Statement::Is {
            person,
            knight: rng.gen_bool(0.5),
        };
        return if depth > 1 && rng.gen_bool(0.2) {
            Statement::Not {
                inner: Box::new(atom),
            }
        } else {
            atom
        };
    }
    let l = Box::new(random_statement(rng, people, depth - 1, speaker));
    let r = Box::new(random_statement(rng, people, depth - 1, speaker));
    match rng.gen_range(0..3) {
        0 => Statement::And { left: l, right: r },
        1 => Statement::Or { left: l, right: r },
        _ => Statement::Implies { left: l, right: r },
    }
}

/// Statement sets drawn before giving up on a config (with 2 people and atoms only a
/// unique solution can be impossible).
const MAX_DRAWS: usize = 20_000;

/// Draws puzzles from an RNG until one has exactly one solution.
fn draw(config: &KnightsConfig, rng: &mut ChaCha8Rng) -> Result<Puzzle, String> {
    let names: Vec<String> = {
        let mut pool: Vec<&str> = NAMES.to_vec();
        let mut out = Vec::with_capacity(config.people);
        for _ in 0..config.people {
            let i = rng.gen_range(0..pool.len());
            out.push(pool.remove(i).to_string());
        }
        out
    };
    for _ in 0..MAX_DRAWS {
        let statements: Vec<Statement> = (0..config.people)
            .map(|s| random_statement(rng, config.people, config.depth, s))
            .collect();
        let mut sols = solutions(&statements);
        if sols.len() == 1 {
            let solution = sols.remove(0);
            return Ok(Puzzle {
                names,
                statements,
                solution,
            });
        }
    }
    Err(format!(
        "no puzzle with a unique solution in {MAX_DRAWS} draws for {} people at depth {} (raise the depth)",
        config.people, config.depth
    ))
}

impl Puzzle {
    /// The question shown to the model.
    pub fn question(&self) -> String {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let mut q = format!(
            "A very special island is inhabited only by knights and knaves. Knights always tell the truth, and knaves always lie. You meet {} inhabitants: {}.",
            self.names.len(),
            list(&names)
        );
        for (i, s) in self.statements.iter().enumerate() {
            let text = s.render(&names);
            let text = text
                .strip_prefix('(')
                .and_then(|t| t.strip_suffix(')'))
                .unwrap_or(&text);
            q.push_str(&format!(" {} says: \"{}.\"", names[i], capitalize(text)));
        }
        q.push_str(
            " Who is a knight and who is a knave? End with: The answer is: <name> is a knight/knave, for every inhabitant.",
        );
        q
    }

    /// The gold answer: `A is a knight, B is a knave, …` in the order of the names.
    pub fn gold(&self) -> String {
        render_assignment(&self.names, &self.solution)
    }

    /// The puzzle as a problem.
    pub fn to_problem(&self, id: String) -> Problem {
        let mut p = Problem::new(id, self.question());
        p.gold = Some(self.gold());
        p.metadata.insert(
            crate::check::TASK_KEY.into(),
            crate::Task::KnightsKnaves.name().into(),
        );
        if let Ok(v) = serde_json::to_value(self) {
            p.metadata.insert(METADATA_KEY.into(), v);
        }
        p
    }
}

/// `A is a knight, B is a knave, …`.
pub fn render_assignment<S: AsRef<str>>(names: &[S], knights: &[bool]) -> String {
    names
        .iter()
        .zip(knights)
        .map(|(n, &k)| format!("{} is a {}", n.as_ref(), role(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The `index`-th puzzle of a config (its own RNG stream: any index is made alone).
pub fn generate_one(config: &KnightsConfig, index: usize) -> Result<Puzzle, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(
        config
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(index as u64),
    );
    draw(config, &mut rng)
}

/// The puzzles of a config as problems, one at a time (`data gen` streams them).
pub fn problems(config: &KnightsConfig) -> impl Iterator<Item = Result<Problem, String>> + '_ {
    (0..config.n).map(move |i| {
        Ok(generate_one(config, i)?.to_problem(format!(
            "knights:p={},d={},seed={}:{i}",
            config.people, config.depth, config.seed
        )))
    })
}

/// Where the final answer of a response starts: after the last answer marker
/// ("the answer is", "answer:", "conclusion", `\boxed{`, `<answer>`), else the last
/// paragraph holding a role word.
fn answer_region(text: &str) -> &str {
    let lower = text.to_ascii_lowercase();
    let markers = [
        "the answer is",
        "answer:",
        "final answer",
        "conclusion",
        "\\boxed{",
        "<answer>",
    ];
    let at = markers
        .iter()
        .filter_map(|m| lower.rfind(m).map(|i| i + m.len()))
        .max();
    if let Some(i) = at {
        // `lower` has the same byte layout as `text` (ASCII lowering)
        return &text[i..];
    }
    let paragraphs: Vec<&str> = text.split("\n\n").collect();
    paragraphs
        .iter()
        .rev()
        .find(|p| {
            let l = p.to_ascii_lowercase();
            l.contains("knight") || l.contains("knave")
        })
        .copied()
        .unwrap_or(text)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(usize),
    Role { knight: bool, plural: bool },
    Not,
    Colon,
    Break,
}

fn role_word(w: &str) -> Option<(bool, bool)> {
    match w {
        "knight" | "truth-teller" | "truthteller" => Some((true, false)),
        "knights" | "truth-tellers" | "truthtellers" => Some((true, true)),
        "knave" | "liar" => Some((false, false)),
        "knaves" | "liars" => Some((false, true)),
        _ => None,
    }
}

fn tokens(region: &str, names: &[&str]) -> Vec<Tok> {
    let lower_names: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Tok>| {
        if word.is_empty() {
            return;
        }
        let w = word.trim_matches('-').to_lowercase();
        let w = w.strip_suffix("'s").unwrap_or(&w).to_string();
        if let Some(i) = lower_names.iter().position(|n| *n == w) {
            out.push(Tok::Name(i));
        } else if let Some((knight, plural)) = role_word(&w) {
            out.push(Tok::Role { knight, plural });
        } else if matches!(
            w.as_str(),
            "not" | "isn't" | "isnt" | "never" | "neither" | "nor"
        ) {
            out.push(Tok::Not);
        }
        word.clear();
    };
    for c in region.chars() {
        if c.is_alphanumeric() || c == '-' || c == '\'' {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out);
        match c {
            ':' | '=' => out.push(Tok::Colon),
            '\n' | ';' | '.' | '}' => out.push(Tok::Break),
            _ => {}
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Reads an assignment for `names` out of a response; `None` unless every name gets a
/// role. Within the answer region (see above), clauses are split at line ends, `;`,
/// `.` and `}`; a name takes the next role word after it in its clause
/// ("A is a knight", "A and C are knights", "| A | knave |", "A: knight"), a `not`
/// between them flips it ("A is not a knight"), and a role word followed by `:` gives
/// its role to the names after it ("Knights: A, C"). The last role given to a name wins.
pub fn parse_answer(text: &str, names: &[&str]) -> Option<Vec<bool>> {
    let region = answer_region(text);
    let toks = tokens(region, names);
    let mut got: Vec<Option<bool>> = vec![None; names.len()];
    let mut pending: Vec<usize> = Vec::new();
    let mut negated = false;
    // a role that heads a list ("Knights: A, C") until the clause ends
    let mut heading: Option<bool> = None;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Break => {
                pending.clear();
                negated = false;
                heading = None;
            }
            Tok::Name(n) => {
                if let Some(h) = heading {
                    got[*n] = Some(h);
                } else {
                    pending.push(*n);
                }
            }
            Tok::Not => negated = !negated,
            Tok::Role { knight, .. } => {
                let k = *knight != negated;
                if pending.is_empty() && matches!(toks.get(i + 1), Some(Tok::Colon)) {
                    heading = Some(k);
                    i += 1;
                } else if pending.is_empty() {
                    // "knights are A and C": the role word heads the names after it
                    heading = Some(k);
                } else {
                    for n in pending.drain(..) {
                        got[n] = Some(k);
                    }
                    heading = None;
                }
                negated = false;
            }
            Tok::Colon => {}
        }
        i += 1;
    }
    got.into_iter().collect()
}

/// The names of a gold answer as [`Puzzle::gold`] writes it, with the assignment.
pub fn parse_gold(gold: &str) -> Option<(Vec<String>, Vec<bool>)> {
    let mut names = Vec::new();
    let mut roles = Vec::new();
    for part in gold.split(',') {
        let (name, r) = part.trim().split_once(" is a ")?;
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        names.push(name.to_string());
        roles.push(match r.trim() {
            "knight" => true,
            "knave" => false,
            _ => return None,
        });
    }
    (!names.is_empty()).then_some((names, roles))
}

/// 1 when the response assigns every inhabitant of `gold` (as [`Puzzle::gold`] writes
/// it) its role, else 0; `None` when the gold answer is not a Knights-and-Knaves answer.
pub fn score(response: &str, gold: &str) -> Option<f64> {
    let (names, truth) = parse_gold(gold)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Some(match parse_answer(response, &names) {
        Some(a) if a == truth => 1.0,
        _ => 0.0,
    })
}

/// The phrasings of an assignment that [`parse_answer`] reads (tests and the fuzz seeds).
pub fn phrasings(names: &[&str], knights: &[bool]) -> Vec<String> {
    let pairs: Vec<(&str, bool)> = names.iter().copied().zip(knights.iter().copied()).collect();
    let of = |k: bool| -> Vec<&str> { pairs.iter().filter(|p| p.1 == k).map(|p| p.0).collect() };
    let group = |k: bool| -> Option<String> {
        let who = of(k);
        match who.len() {
            0 => None,
            1 => Some(format!("{} is a {}", who[0], role(k))),
            _ => Some(format!("{} are {}s", list(&who), role(k))),
        }
    };
    let sentence = render_assignment(names, knights);
    let mut v = vec![
        format!("The answer is: {sentence}."),
        format!(
            "Let me think. If {} is a knight then ... \n\nThe answer is {sentence}",
            names[0]
        ),
        format!(
            "Answer:\n{}",
            pairs
                .iter()
                .map(|(n, k)| format!("- {n}: {}", role(*k)))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        format!(
            "Final answer:\n| Inhabitant | Role |\n|---|---|\n{}",
            pairs
                .iter()
                .map(|(n, k)| format!("| {n} | {} |", capitalize(role(*k))))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        format!(
            "The answer is: {}",
            [group(true), group(false)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", and ")
        ),
        format!(
            "\\boxed{{{}}}",
            pairs
                .iter()
                .map(|(n, k)| format!("{n} = {}", role(*k)))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        format!(
            "Conclusion: {}",
            pairs
                .iter()
                .map(|(n, k)| if *k {
                    format!("{n} is not a knave")
                } else {
                    format!("{n} is not a knight")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    let (kn, kv) = (of(true), of(false));
    let mut lists = Vec::new();
    if !kn.is_empty() {
        lists.push(format!("Knights: {}", kn.join(", ")));
    }
    if !kv.is_empty() {
        lists.push(format!("Knaves: {}", kv.join(", ")));
    }
    v.push(format!("The answer is:\n{}", lists.join("\n")));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is(person: usize, knight: bool) -> Box<Statement> {
        Box::new(Statement::Is { person, knight })
    }

    #[test]
    fn a_puzzle_solved_by_hand() {
        // A: "B is a knave." B: "A and I are both knights."
        // If A is a knight, B is a knave, so B's claim is false: consistent.
        // If A is a knave, B is a knight, B's claim (A knight) is false: contradiction.
        let s = vec![
            Statement::Is {
                person: 1,
                knight: false,
            },
            Statement::And {
                left: is(0, true),
                right: is(1, true),
            },
        ];
        assert_eq!(solutions(&s), vec![vec![true, false]]);
    }

    #[test]
    fn parses_the_usual_phrasings() {
        let names = ["Zoey", "Oliver", "Mia"];
        let want = vec![true, false, true];
        for text in phrasings(&names, &want) {
            assert_eq!(parse_answer(&text, &names), Some(want.clone()), "{text}");
        }
        assert_eq!(
            parse_answer("Zoey is a knight and Oliver is a knave", &names),
            None,
            "Mia has no role"
        );
        assert_eq!(
            parse_answer(
                "If Zoey is a knave, Oliver lies.\n\nThe answer is: Zoey is a knight, Oliver is a knave, Mia is a knave.",
                &names
            ),
            Some(vec![true, false, false])
        );
    }

    #[test]
    fn gold_round_trips_and_scores() {
        let p = generate_one(&KnightsConfig::default(), 3).unwrap();
        let (names, sol) = parse_gold(&p.gold()).unwrap();
        assert_eq!(names, p.names);
        assert_eq!(sol, p.solution);
        assert_eq!(
            score(&format!("The answer is {}", p.gold()), &p.gold()),
            Some(1.0)
        );
        let mut wrong = p.solution.clone();
        wrong[0] = !wrong[0];
        let w = render_assignment(&p.names, &wrong);
        assert_eq!(score(&format!("The answer is {w}"), &p.gold()), Some(0.0));
        assert_eq!(score("anything", "42"), None);
    }

    #[test]
    fn generation_is_seeded() {
        let c = KnightsConfig::default();
        assert_eq!(generate_one(&c, 5), generate_one(&c, 5));
        assert_ne!(generate_one(&c, 5), generate_one(&c, 6));
        let two = KnightsConfig {
            people: 2,
            depth: 1,
            n: 1,
            seed: 0,
        };
        let _ = generate_one(&two, 0); // ends, with a puzzle or an error
    }
}
