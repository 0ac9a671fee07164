//! The explorer's in-memory index of the run store: every readable run read once
//! (through eval's typed readers), grouped by problem, and the pages built from it.
//!
//! A run is read again when the store reports a different unit count or status for it
//! (a job still writing), so the index follows live runs without re-reading finished ones.

use crate::ViewError;
use crate::api::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use stepwise_core::{Problem, Spent, TraceEvent};
use stepwise_data::{ArithSpec, ProcessBenchRecord};
use stepwise_eval::runs::{self, LoadedRun, RunContent};
use stepwise_jobs::kinds::annotate::QuestionResult;
use stepwise_jobs::kinds::scale::{ScaleRecord, ScaleStrategy, is_correct};
use stepwise_jobs::kinds::solve::{Outcome, Sample, Selection, select};
use stepwise_store::{RunId, RunInfo, RunStore};

/// Longest question text shown in lists (the problem page shows it whole).
const LIST_QUESTION_CHARS: usize = 200;

/// One run as indexed.
pub struct RunData {
    pub summary: RunSummary,
    /// The run's readable content (`None` for kinds without problem pages, or when it
    /// could not be read: `summary.read_error` says why).
    pub loaded: Option<LoadedRun>,
    /// Problem id → indices of its results in the content, in stored order.
    by_problem: HashMap<String, Vec<usize>>,
    /// Problem id → position among the run's problems.
    position: HashMap<String, usize>,
    pub rows: Vec<ProblemRow>,
    /// When the run was read: (units, status).
    seen: (usize, String),
}

/// The explorer's state: the store (opened read-only by the caller) and the runs read.
pub struct Index {
    store: Arc<dyn RunStore>,
    runs: std::sync::Mutex<BTreeMap<RunId, Arc<RunData>>>,
    verify: stepwise_verify::Options,
}

impl Index {
    pub fn new(store: Arc<dyn RunStore>) -> Self {
        Self {
            store,
            runs: std::sync::Mutex::new(BTreeMap::new()),
            verify: stepwise_verify::Options::default(),
        }
    }

    pub fn location(&self) -> String {
        self.store.location()
    }

    /// Every run, reading those that are new or changed since they were last read.
    pub fn refresh(&self) -> Result<Vec<Arc<RunData>>, ViewError> {
        let infos = self.store.list_runs()?;
        let mut out = Vec::with_capacity(infos.len());
        for info in infos {
            out.push(self.read(info)?);
        }
        Ok(out)
    }

    /// One run, read if new or changed.
    pub fn run(&self, id: RunId) -> Result<Arc<RunData>, ViewError> {
        let info = self.store.run(id)?;
        self.read(info)
    }

    fn read(&self, info: RunInfo) -> Result<Arc<RunData>, ViewError> {
        let seen = (info.units, info.status.to_string());
        if let Some(r) = self.lock().get(&info.id)
            && r.seen == seen
        {
            return Ok(r.clone());
        }
        let id = info.id;
        let data = Arc::new(self.build(info, seen));
        self.lock().insert(id, data.clone());
        Ok(data)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<RunId, Arc<RunData>>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn build(&self, info: RunInfo, seen: (usize, String)) -> RunData {
        let browsable = [runs::SOLVE, runs::SCALE, runs::ANNOTATE].contains(&info.kind.as_str());
        let mut summary = RunSummary {
            id: info.id,
            kind: info.kind.clone(),
            version: info.version,
            status: info.status.to_string(),
            error: info.error.clone(),
            created: info.created.clone(),
            updated: info.updated.clone(),
            problems: info.problems,
            units: info.units,
            expected_units: expected_units(&info),
            config: info.config.clone(),
            spent: Spent::default(),
            judged: 0,
            correct: 0,
            browsable,
            report: browsable.then(|| format!("/report/{}", info.id)),
            read_error: None,
        };
        let mut data = RunData {
            summary: summary.clone(),
            loaded: None,
            by_problem: HashMap::new(),
            position: HashMap::new(),
            rows: Vec::new(),
            seen,
        };
        if !browsable {
            return data;
        }
        let loaded = match runs::read_run(self.store.as_ref(), info) {
            Ok(l) => l,
            Err(e) => {
                summary.read_error = Some(stepwise_core::error_chain(&e));
                summary.browsable = false;
                summary.report = None;
                data.summary = summary;
                return data;
            }
        };
        let ids: Vec<&str> = match &loaded.content {
            RunContent::Solve(u) => u.iter().map(|u| u.outcome.problem_id.as_str()).collect(),
            RunContent::Scale { units, .. } => units.iter().map(|u| u.problem_id()).collect(),
            RunContent::Annotate(r) => r.iter().map(|r| r.problem_id.as_str()).collect(),
        };
        for (i, id) in ids.into_iter().enumerate() {
            data.by_problem.entry(id.to_string()).or_default().push(i);
        }
        let problems = problem_list(&loaded);
        for (i, p) in problems.iter().enumerate() {
            data.position.insert(p.id.clone(), i);
        }
        for p in problems.iter() {
            let idx = data.by_problem.get(&p.id).map_or(&[][..], |v| v.as_slice());
            let variants = self.variants(&loaded, p, idx);
            for v in &variants {
                if let Some(c) = v.correct {
                    summary.judged += 1;
                    summary.correct += usize::from(c);
                }
            }
            let disagreements = match &loaded.content {
                RunContent::Annotate(rs) => {
                    let results: Vec<&QuestionResult> = idx.iter().map(|&i| &rs[i]).collect();
                    labelled(p, &results).iter().map(|l| l.disagreements).sum()
                }
                _ => {
                    let verdicts: HashSet<bool> =
                        variants.iter().filter_map(|v| v.correct).collect();
                    usize::from(verdicts.len() > 1)
                }
            };
            data.rows.push(ProblemRow {
                id: p.id.clone(),
                question: truncate(&p.question, LIST_QUESTION_CHARS),
                gold: p.gold.clone(),
                variants,
                disagreements,
            });
        }
        summary.spent = run_spent(&loaded);
        data.summary = summary;
        data.loaded = Some(loaded);
        data
    }

    /// The results of problem `p` (at `idx` in the run's content), one line each.
    fn variants(&self, run: &LoadedRun, p: &Problem, idx: &[usize]) -> Vec<Variant> {
        idx.iter()
            .map(|&i| match &run.content {
                RunContent::Solve(u) => {
                    let u = &u[i];
                    Variant {
                        name: u.outcome.strategy.clone(),
                        answer: u.outcome.answer.clone(),
                        correct: u.correct,
                        tokens: u.outcome.spent.generated_tokens(),
                    }
                }
                RunContent::Scale { units, .. } => self.scale_variant(p, &units[i]),
                RunContent::Annotate(rs) => Variant {
                    name: rs[i].method.name().to_string(),
                    answer: None,
                    correct: None,
                    tokens: rs[i].spent.generated_tokens(),
                },
            })
            .collect()
    }

    fn scale_variant(&self, p: &Problem, r: &ScaleRecord) -> Variant {
        match r {
            ScaleRecord::Samples { samples, .. } => {
                let (answer, _) = select(Selection::Majority, samples, &self.verify);
                Variant {
                    name: format!("{} n={}", ScaleStrategy::Majority, samples.len()),
                    correct: p
                        .gold
                        .as_ref()
                        .map(|_| is_correct(p, answer.as_deref(), &self.verify)),
                    answer,
                    tokens: samples
                        .iter()
                        .map(|s| s.tokens + s.judge.generated_tokens())
                        .sum(),
                }
            }
            ScaleRecord::Tree {
                strategy,
                n,
                outcome,
            } => Variant {
                name: format!("{strategy} n={n}"),
                answer: outcome.answer.clone(),
                correct: p
                    .gold
                    .as_ref()
                    .map(|_| is_correct(p, outcome.answer.as_deref(), &self.verify)),
                tokens: outcome.spent.generated_tokens(),
            },
        }
    }

    /// The page of one problem of run `id`.
    pub fn problem_page(&self, id: RunId, pid: &str) -> Result<ProblemPage, ViewError> {
        let data = self.run(id)?;
        let Some(run) = &data.loaded else {
            return Err(ViewError::NotFound(format!(
                "run {id} ({}) has no problem pages{}",
                data.summary.kind,
                data.summary
                    .read_error
                    .as_ref()
                    .map_or(String::new(), |e| format!(": {e}"))
            )));
        };
        let problems = problem_list(run);
        let pos = *data
            .position
            .get(pid)
            .ok_or_else(|| ViewError::NotFound(format!("run {id} has no problem '{pid}'")))?;
        let p = &problems[pos];
        let idx = data.by_problem.get(pid).map_or(&[][..], |v| v.as_slice());
        let variants = self.variants(run, p, idx);
        let mut results = Vec::new();
        let mut labelled_views = Vec::new();
        match &run.content {
            RunContent::Solve(units) => {
                for (&i, v) in idx.iter().zip(variants) {
                    let u = &units[i];
                    let correct: Vec<Option<bool>> = u.sample_correct.clone();
                    results.push(result_view(v, &u.outcome, |k, _| {
                        correct.get(k).copied().flatten()
                    }));
                }
            }
            RunContent::Scale { units, .. } => {
                for (&i, v) in idx.iter().zip(variants) {
                    let judge = |_: usize, s: &Sample| {
                        p.gold
                            .as_ref()
                            .map(|_| is_correct(p, s.rationale.answer.as_deref(), &self.verify))
                    };
                    match &units[i] {
                        ScaleRecord::Samples { samples, .. } => {
                            let (_, chosen) = select(Selection::Majority, samples, &self.verify);
                            let spent = samples.iter().fold(Spent::default(), |mut a, s| {
                                a.policy_tokens += s.tokens;
                                a.policy_prompt_tokens += s.prompt_tokens;
                                a += s.judge;
                                a
                            });
                            results.push(ResultView {
                                variant: v,
                                spent,
                                samples: sample_views(samples, chosen, judge),
                                tree: None,
                                searched: false,
                            });
                        }
                        ScaleRecord::Tree { outcome, .. } => {
                            results.push(result_view(v, outcome, judge));
                        }
                    }
                }
            }
            RunContent::Annotate(rs) => {
                let results_of: Vec<&QuestionResult> = idx.iter().map(|&i| &rs[i]).collect();
                labelled_views = labelled(p, &results_of);
                for (&i, v) in idx.iter().zip(variants) {
                    results.push(ResultView {
                        variant: v,
                        spent: rs[i].spent,
                        samples: Vec::new(),
                        tree: None,
                        searched: false,
                    });
                }
            }
        }
        Ok(ProblemPage {
            api: API_VERSION,
            run: data.summary.clone(),
            id: p.id.clone(),
            question: p.question.clone(),
            gold: p.gold.clone(),
            results,
            labelled: labelled_views,
            prev: pos.checked_sub(1).map(|i| problems[i].id.clone()),
            next: problems.get(pos + 1).map(|q| q.id.clone()),
        })
    }

    /// Runs `a` and `b` side by side on the problems both have.
    pub fn compare(&self, a: RunId, b: RunId) -> Result<ComparePage, ViewError> {
        let (ra, rb) = (self.run(a)?, self.run(b)?);
        let key = |r: &RunData, row: &ProblemRow, v: &Variant| {
            // runs with one result per problem (solve) compare by problem alone
            if r.summary.kind == runs::SOLVE {
                (row.id.clone(), String::new())
            } else {
                (row.id.clone(), v.name.clone())
            }
        };
        let side = |v: &Variant| Side {
            answer: v.answer.clone(),
            correct: v.correct,
            tokens: v.tokens,
        };
        let mut in_b: HashMap<(String, String), (Side, String)> = HashMap::new();
        for row in &rb.rows {
            for v in &row.variants {
                in_b.insert(key(&rb, row, v), (side(v), v.name.clone()));
            }
        }
        let ids_a: HashSet<&str> = ra.rows.iter().map(|r| r.id.as_str()).collect();
        let ids_b: HashSet<&str> = rb.rows.iter().map(|r| r.id.as_str()).collect();
        let mut rows = Vec::new();
        for row in &ra.rows {
            for v in &row.variants {
                let k = key(&ra, row, v);
                let Some((sb, name_b)) = in_b.get(&k) else {
                    continue;
                };
                let sa = side(v);
                let differ = sa.correct != sb.correct
                    || match (&sa.answer, &sb.answer) {
                        (Some(x), Some(y)) => {
                            !stepwise_verify::verify(x, y, &self.verify).is_equal()
                        }
                        (x, y) => x != y,
                    };
                let variant = if k.1.is_empty() && v.name != *name_b {
                    format!("{} / {name_b}", v.name)
                } else {
                    v.name.clone()
                };
                rows.push(CompareRow {
                    id: row.id.clone(),
                    question: row.question.clone(),
                    variant,
                    a: sa,
                    b: sb.clone(),
                    differ,
                });
            }
        }
        Ok(ComparePage {
            api: API_VERSION,
            a: ra.summary.clone(),
            b: rb.summary.clone(),
            rows,
            only_a: ids_a.difference(&ids_b).count(),
            only_b: ids_b.difference(&ids_a).count(),
        })
    }
}

/// The run's problems: as registered with it, or (older runs) made from its results.
fn problem_list(run: &LoadedRun) -> std::borrow::Cow<'_, [Problem]> {
    if !run.problems.is_empty() {
        return std::borrow::Cow::Borrowed(&run.problems);
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut add = |id: &str, q: &str| {
        if seen.insert(id.to_string()) {
            out.push(Problem::new(id, q));
        }
    };
    match &run.content {
        RunContent::Solve(u) => u.iter().for_each(|u| add(&u.outcome.problem_id, "")),
        RunContent::Scale { units, .. } => units.iter().for_each(|u| add(u.problem_id(), "")),
        RunContent::Annotate(rs) => rs.iter().for_each(|r| {
            add(
                &r.problem_id,
                r.solutions.first().map_or("", |s| s.question.as_str()),
            )
        }),
    }
    std::borrow::Cow::Owned(out)
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Units a run's job has in all, from its stored config.
fn expected_units(info: &RunInfo) -> Option<usize> {
    let c = &info.config;
    let len = |v: &serde_json::Value| v.as_array().map(Vec::len);
    match info.kind.as_str() {
        runs::SOLVE => Some(info.problems),
        runs::SCALE => {
            let s = c.get("scale")?;
            let strategies: Vec<ScaleStrategy> =
                serde_json::from_value(s.get("strategies")?.clone()).ok()?;
            let ns = len(s.get("ns")?)?;
            let trees = strategies
                .iter()
                .filter(|x| x.selection().is_none())
                .count();
            let draw = usize::from(strategies.iter().any(|x| x.selection().is_some()));
            Some(info.problems * (draw + trees * ns))
        }
        runs::ANNOTATE => Some(info.problems * len(c.get("methods")?)?),
        _ => None,
    }
}

fn run_spent(run: &LoadedRun) -> Spent {
    let mut s = Spent::default();
    match &run.content {
        RunContent::Solve(u) => u.iter().for_each(|u| s += u.outcome.spent),
        RunContent::Scale { units, .. } => {
            for u in units {
                match u {
                    ScaleRecord::Samples {
                        samples,
                        policy_calls,
                        ..
                    } => {
                        s.policy_calls += policy_calls;
                        for x in samples {
                            s.policy_tokens += x.tokens;
                            s.policy_prompt_tokens += x.prompt_tokens;
                            s += x.judge;
                        }
                    }
                    ScaleRecord::Tree { outcome, .. } => s += outcome.spent,
                }
            }
        }
        RunContent::Annotate(rs) => rs.iter().for_each(|r| s += r.spent),
    }
    s
}

fn sample_views(
    samples: &[Sample],
    chosen: Option<usize>,
    correct: impl Fn(usize, &Sample) -> Option<bool>,
) -> Vec<SampleView> {
    samples
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let scores = runs::step_scores(s);
            SampleView {
                index: k,
                steps: s
                    .rationale
                    .steps
                    .iter()
                    .zip(scores)
                    .map(|(st, score)| StepView {
                        text: st.text.clone(),
                        score,
                    })
                    .collect(),
                answer: s.rationale.answer.clone(),
                correct: correct(k, s),
                score: s.score,
                tokens: s.tokens,
                chosen: chosen == Some(k),
            }
        })
        .collect()
}

fn result_view(
    variant: Variant,
    o: &Outcome,
    correct: impl Fn(usize, &Sample) -> Option<bool>,
) -> ResultView {
    let searched = matches!(
        o.strategy.split('(').next(),
        Some("beam" | "vbeam" | "dvts" | "mcts")
    );
    ResultView {
        variant,
        spent: o.spent,
        samples: sample_views(&o.samples, o.chosen, correct),
        tree: tree_view(o),
        searched,
    }
}

/// The stored tree with the trace's prunes and selection on its nodes.
pub fn tree_view(o: &Outcome) -> Option<TreeView> {
    let t = &o.trace;
    if t.tree.is_empty() {
        return None;
    }
    let mut pruned: HashMap<usize, String> = HashMap::new();
    let mut selected = None;
    for e in &t.events {
        match e {
            TraceEvent::Prune { node, reason } => {
                pruned.insert(*node, reason.clone());
            }
            TraceEvent::Select { node, .. } => selected = Some(*node),
            _ => {}
        }
    }
    // a search that chose nothing selects the root; mark no path then
    let selected = selected.filter(|_| o.chosen.is_some());
    let path: HashSet<usize> = selected
        .map(|s| t.path_to(s))
        .unwrap_or_default()
        .into_iter()
        .collect();
    Some(TreeView {
        nodes: t
            .tree
            .iter()
            .map(|n| NodeView {
                id: n.id,
                parent: n.parent,
                step: n.step.clone(),
                score: n.score,
                visits: n.visits,
                value: n.value,
                pruned: pruned.get(&n.id).cloned(),
                chosen: path.contains(&n.id),
            })
            .collect(),
        selected,
    })
}

/// The truth of a solution's steps: per step whether it is good, the first wrong step.
fn truth(p: &Problem, steps: &[String]) -> Option<(TruthSource, Vec<Option<bool>>, Option<usize>)> {
    let per_step = |first: Option<usize>| -> Vec<Option<bool>> {
        (0..steps.len())
            .map(|i| Some(first.is_none_or(|f| i < f)))
            .collect()
    };
    if let Ok(spec) = ArithSpec::from_problem(p) {
        let first = spec.ground_truth(steps).first_wrong;
        return Some((TruthSource::Arith, per_step(first), first));
    }
    if let Ok(rec) = ProcessBenchRecord::from_problem(p)
        && rec.steps == steps
    {
        let first = usize::try_from(rec.label).ok();
        return Some((TruthSource::ProcessBench, per_step(first), first));
    }
    None
}

/// The solutions of one problem's annotate results, each with every method that labelled
/// it side by side and the truth, disagreements marked.
pub fn labelled(p: &Problem, results: &[&QuestionResult]) -> Vec<LabelledView> {
    let mut order: Vec<Vec<String>> = Vec::new();
    let mut groups: HashMap<Vec<String>, LabelledView> = HashMap::new();
    for r in results {
        for s in &r.solutions {
            let g = groups.entry(s.steps.clone()).or_insert_with(|| {
                order.push(s.steps.clone());
                let (source, truth, first_wrong) = match truth(p, &s.steps) {
                    Some((src, t, f)) => (Some(src), t, f),
                    None => (None, vec![None; s.steps.len()], None),
                };
                LabelledView {
                    steps: s.steps.clone(),
                    answer_correct: s.answer_correct,
                    truth_source: source,
                    truth,
                    first_wrong,
                    methods: Vec::new(),
                    disagreements: 0,
                }
            });
            g.methods.push(MethodLabels {
                method: r.method.name().to_string(),
                sample: s.sample,
                labels: (0..s.steps.len())
                    .map(|i| {
                        s.labels.get(i).map(|l| LabelCell {
                            value: l.value,
                            good: l.good,
                            reason: l.reason.clone(),
                            disagrees: false,
                        })
                    })
                    .collect(),
            });
        }
    }
    let mut out = Vec::with_capacity(order.len());
    for key in order {
        let Some(mut g) = groups.remove(&key) else {
            continue;
        };
        let mut n = 0;
        for i in 0..g.steps.len() {
            let reference = g.truth[i].or_else(|| {
                // without truth: a label disagrees when another method says otherwise
                let goods: HashSet<bool> = g
                    .methods
                    .iter()
                    .filter_map(|m| m.labels[i].as_ref().map(|l| l.good))
                    .collect();
                (goods.len() > 1).then_some(true)
            });
            let Some(want) = reference else { continue };
            let mixed_without_truth = g.truth[i].is_none();
            for m in &mut g.methods {
                if let Some(l) = m.labels[i].as_mut()
                    && (mixed_without_truth || l.good != want)
                {
                    l.disagrees = true;
                    n += 1;
                }
            }
        }
        g.disagreements = n;
        out.push(g);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_core::{Trace, TreeNode};

    /// root 0 → 1 → 3 (selected), root 0 → 2 (pruned): the path 0, 1, 3 is chosen.
    fn outcome(chosen: Option<usize>) -> Outcome {
        let mut trace = Trace::new("beam");
        trace.tree = vec![
            TreeNode::new(0, None, ""),
            TreeNode::new(1, Some(0), "a"),
            TreeNode::new(2, Some(0), "b"),
            TreeNode::new(3, Some(1), "c"),
        ];
        trace.push(TraceEvent::Prune {
            node: 2,
            reason: "not in the top 1".into(),
        });
        trace.push(TraceEvent::Select {
            node: 3,
            answer: Some("7".into()),
        });
        Outcome {
            problem_id: "p".into(),
            strategy: "beam".into(),
            answer: Some("7".into()),
            chosen,
            samples: Vec::new(),
            spent: Spent::default(),
            trace,
        }
    }

    #[test]
    fn a_tree_marks_pruned_nodes_and_the_path_to_the_selected_one() {
        let t = tree_view(&outcome(Some(0))).unwrap();
        assert_eq!(t.selected, Some(3));
        let chosen: Vec<usize> = t.nodes.iter().filter(|n| n.chosen).map(|n| n.id).collect();
        assert_eq!(chosen, [0, 1, 3]);
        let pruned: Vec<(usize, &str)> = t
            .nodes
            .iter()
            .filter_map(|n| n.pruned.as_deref().map(|r| (n.id, r)))
            .collect();
        assert_eq!(pruned, [(2, "not in the top 1")]);
    }

    #[test]
    fn a_search_that_chose_nothing_marks_no_path_and_no_tree_is_none() {
        let t = tree_view(&outcome(None)).unwrap();
        assert_eq!(t.selected, None);
        assert!(t.nodes.iter().all(|n| !n.chosen));
        let mut bare = outcome(None);
        bare.trace.tree.clear();
        assert_eq!(tree_view(&bare), None);
    }
}
