//! The `stepwise` Python extension (`stepwise._stepwise`): the verifier, reward functions
//! and step tools of the workspace, called in-process. Every call is bounded by the
//! verifier's caps and safe from any thread; batch calls release the GIL and run on a
//! rayon pool. No llama.cpp is linked here.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use stepwise_reward::RewardConfig;
use stepwise_verify::{Options, Targets, Verdict};

fn options(
    float_rounding: u32,
    numeric_precision: u32,
    strict: bool,
    allow_set_relation_comp: bool,
) -> Options {
    Options {
        float_rounding,
        strict,
        allow_set_relation_comp,
        numeric_precision,
    }
}

fn targets(latex: bool, expr: bool) -> Targets {
    Targets { latex, expr }
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Equal => "equal",
        Verdict::NotEqual => "not_equal",
        Verdict::Undecided => "undecided",
    }
}

/// A rayon pool per thread count (`None`: the global pool), built once.
fn pool(threads: Option<usize>) -> PyResult<Option<Arc<rayon::ThreadPool>>> {
    let Some(n) = threads else { return Ok(None) };
    if n == 0 {
        return Err(PyValueError::new_err("threads must be at least 1"));
    }
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| PyValueError::new_err("thread pool registry poisoned"))?;
    if let Some(p) = pools.get(&n) {
        return Ok(Some(p.clone()));
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| PyValueError::new_err(format!("thread pool of {n}: {e}")))?;
    let p = Arc::new(p);
    pools.insert(n, p.clone());
    Ok(Some(p))
}

fn run_on<T: Send>(p: Option<Arc<rayon::ThreadPool>>, f: impl FnOnce() -> T + Send) -> T {
    match p {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// Verdict of `pred` against any of `golds` (the first `equal` wins).
fn verdict_any(golds: &[String], pred: &str, o: &Options, gt: Targets, pt: Targets) -> Verdict {
    let mut best = Verdict::Undecided;
    for g in golds {
        let v = stepwise_verify::explain_targets(g, gt, pred, pt, o).verdict;
        if v == Verdict::Equal {
            return v;
        }
        if v == Verdict::NotEqual {
            best = v;
        }
    }
    if golds.is_empty() {
        Verdict::NotEqual
    } else {
        best
    }
}

#[pyfunction]
#[pyo3(signature = (golds, pred, float_rounding=6, numeric_precision=15, strict=true, allow_set_relation_comp=false, gold_latex=true, gold_expr=true, pred_latex=true, pred_expr=true))]
#[allow(clippy::too_many_arguments)]
fn verdict(
    py: Python<'_>,
    golds: Vec<String>,
    pred: String,
    float_rounding: u32,
    numeric_precision: u32,
    strict: bool,
    allow_set_relation_comp: bool,
    gold_latex: bool,
    gold_expr: bool,
    pred_latex: bool,
    pred_expr: bool,
) -> &'static str {
    let o = options(
        float_rounding,
        numeric_precision,
        strict,
        allow_set_relation_comp,
    );
    let (gt, pt) = (
        targets(gold_latex, gold_expr),
        targets(pred_latex, pred_expr),
    );
    verdict_name(py.detach(|| verdict_any(&golds, &pred, &o, gt, pt)))
}

#[pyfunction]
#[pyo3(signature = (gold, pred, float_rounding=6, numeric_precision=15, strict=true, allow_set_relation_comp=false))]
fn explain<'py>(
    py: Python<'py>,
    gold: String,
    pred: String,
    float_rounding: u32,
    numeric_precision: u32,
    strict: bool,
    allow_set_relation_comp: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let o = options(
        float_rounding,
        numeric_precision,
        strict,
        allow_set_relation_comp,
    );
    let ex = py.detach(|| stepwise_verify::explain(&gold, &pred, &o));
    let d = PyDict::new(py);
    d.set_item("verdict", verdict_name(ex.verdict))?;
    for (k, s) in [("gold", &ex.gold), ("pred", &ex.pred)] {
        let side = PyDict::new(py);
        side.set_item("extracted", &s.extracted)?;
        side.set_item("source", format!("{:?}", s.source).to_lowercase())?;
        side.set_item("parsed", &s.parsed)?;
        side.set_item("normalized", &s.normalized)?;
        side.set_item("error", &s.error)?;
        d.set_item(k, side)?;
    }
    Ok(d)
}

#[pyfunction]
#[pyo3(signature = (golds, preds, threads=None, float_rounding=6, numeric_precision=15, strict=true, allow_set_relation_comp=false))]
#[allow(clippy::too_many_arguments)]
fn verify_batch(
    py: Python<'_>,
    golds: Vec<Vec<String>>,
    preds: Vec<String>,
    threads: Option<usize>,
    float_rounding: u32,
    numeric_precision: u32,
    strict: bool,
    allow_set_relation_comp: bool,
) -> PyResult<Vec<bool>> {
    if golds.len() != preds.len() {
        return Err(PyValueError::new_err(format!(
            "golds and preds differ in length ({} and {})",
            golds.len(),
            preds.len()
        )));
    }
    let o = options(
        float_rounding,
        numeric_precision,
        strict,
        allow_set_relation_comp,
    );
    let p = pool(threads)?;
    let d = Targets::default();
    Ok(py.detach(|| {
        run_on(p, || {
            golds
                .par_iter()
                .zip(preds.par_iter())
                .map(|(g, pr)| verdict_any(g, pr, &o, d, d).is_equal())
                .collect()
        })
    }))
}

#[pyfunction]
#[pyo3(signature = (text, latex=true, expr=true))]
fn extract_answer(py: Python<'_>, text: String, latex: bool, expr: bool) -> Option<String> {
    py.detach(|| stepwise_verify::extract_answer(&text, targets(latex, expr)))
}

/// Reward functions of a `stepwise serve` configuration (TOML or a preset).
#[pyclass(frozen)]
struct Rewards {
    inner: stepwise_reward::Rewards,
}

fn score_dict<'py>(py: Python<'py>, s: &stepwise_reward::Scored) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("reward", s.result.reward)?;
    d.set_item("components", s.result.components.clone())?;
    d.set_item("answer", &s.result.answer)?;
    d.set_item("verdict", s.verdict.map(verdict_name))?;
    d.set_item("no_answer", s.no_answer)?;
    Ok(d)
}

#[pymethods]
impl Rewards {
    #[new]
    #[pyo3(signature = (preset=None, toml=None, path=None))]
    fn new(preset: Option<String>, toml: Option<String>, path: Option<String>) -> PyResult<Self> {
        let cfg = match (preset, toml, path) {
            (Some(p), None, None) => RewardConfig::with_preset(&p),
            (None, Some(t), None) => RewardConfig::from_toml(&t, "toml"),
            (None, None, Some(p)) => RewardConfig::from_file(std::path::Path::new(&p)),
            (None, None, None) => Ok(RewardConfig::default()),
            _ => return Err(PyValueError::new_err("give one of preset, toml or path")),
        }
        .map_err(|e| PyValueError::new_err(stepwise_core::error_chain(&e)))?;
        let inner = stepwise_reward::Rewards::new(&cfg)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Every component name any source can produce, in a stable order.
    #[getter]
    fn keys(&self) -> Vec<String> {
        self.inner.keys().to_vec()
    }

    #[pyo3(signature = (prompt, response, gold, source=None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        prompt: String,
        response: String,
        gold: String,
        source: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let s = py.detach(|| {
            self.inner
                .score(source.as_deref(), &prompt, &response, &gold)
        });
        score_dict(py, &s)
    }

    #[pyo3(signature = (prompts, responses, golds, sources, threads=None))]
    fn score_batch<'py>(
        &self,
        py: Python<'py>,
        prompts: Vec<String>,
        responses: Vec<String>,
        golds: Vec<String>,
        sources: Vec<Option<String>>,
        threads: Option<usize>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let n = responses.len();
        if prompts.len() != n || golds.len() != n || sources.len() != n {
            return Err(PyValueError::new_err(format!(
                "prompts, responses, golds and sources must have one entry each ({}, {n}, {}, {})",
                prompts.len(),
                golds.len(),
                sources.len()
            )));
        }
        let p = pool(threads)?;
        let scored: Vec<_> = py.detach(|| {
            run_on(p, || {
                (0..n)
                    .into_par_iter()
                    .map(|i| {
                        self.inner.score(
                            sources[i].as_deref(),
                            &prompts[i],
                            &responses[i],
                            &golds[i],
                        )
                    })
                    .collect()
            })
        });
        scored.iter().map(|s| score_dict(py, s)).collect()
    }
}

#[pyfunction]
#[pyo3(signature = (text, delimiter="blank-line"))]
fn split_steps(text: &str, delimiter: &str) -> PyResult<Vec<String>> {
    let splitter = stepwise_reward::parse_delimiter(delimiter).map_err(PyValueError::new_err)?;
    let r = stepwise_core::Rationale::parse(
        text,
        &splitter,
        &stepwise_core::AnswerExtractor::default(),
    );
    Ok(r.steps.into_iter().map(|s| s.text).collect())
}

#[pyfunction]
fn check_arithmetic<'py>(py: Python<'py>, text: &str) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let checked = py.detach(|| stepwise_verify::ArithChecker::default().check_text(text));
    checked
        .iter()
        .map(|c| {
            let d = PyDict::new(py);
            d.set_item("claim", c.claim.written(text))?;
            d.set_item("lhs", &c.claim.lhs)?;
            d.set_item("rhs", &c.claim.rhs)?;
            let (status, value) = match &c.check {
                stepwise_verify::ClaimCheck::Right => ("right", None),
                stepwise_verify::ClaimCheck::Wrong { lhs, .. } => ("wrong", Some(lhs.clone())),
                _ => ("unchecked", None),
            };
            d.set_item("status", status)?;
            d.set_item("value", value)?;
            Ok(d)
        })
        .collect()
}

#[pyfunction]
fn step_score(text: &str) -> (f64, String) {
    stepwise_verify::ArithChecker::default().score_text(text)
}

#[pyfunction]
fn processbench_f1<'py>(
    py: Python<'py>,
    labels: Vec<i64>,
    predictions: Vec<Option<i64>>,
) -> PyResult<Bound<'py, PyDict>> {
    use stepwise_core::metrics::{Prediction, subset_metrics};
    if labels.len() != predictions.len() {
        return Err(PyValueError::new_err(
            "labels and predictions differ in length",
        ));
    }
    let m = subset_metrics(
        "python",
        labels.into_iter().zip(
            predictions
                .into_iter()
                .map(|p| p.map_or(Prediction::Unparseable, Prediction::Index)),
        ),
    );
    let d = PyDict::new(py);
    d.set_item("f1", m.f1)?;
    d.set_item("acc_erroneous", m.acc_erroneous)?;
    d.set_item("acc_correct", m.acc_correct)?;
    d.set_item("n_erroneous", m.n_erroneous)?;
    d.set_item("n_correct", m.n_correct)?;
    Ok(d)
}

fn pairs(probs: Vec<f64>, outcomes: Vec<bool>) -> PyResult<Vec<(f64, bool)>> {
    if probs.len() != outcomes.len() {
        return Err(PyValueError::new_err(
            "probabilities and outcomes differ in length",
        ));
    }
    Ok(probs.into_iter().zip(outcomes).collect())
}

#[pyfunction]
fn ece(probs: Vec<f64>, outcomes: Vec<bool>) -> PyResult<f64> {
    Ok(stepwise_core::metrics::ece(&pairs(probs, outcomes)?))
}

#[pyfunction]
fn auroc(probs: Vec<f64>, outcomes: Vec<bool>) -> PyResult<Option<f64>> {
    Ok(stepwise_core::metrics::auroc(&pairs(probs, outcomes)?))
}

#[pyfunction]
fn brier(probs: Vec<f64>, outcomes: Vec<bool>) -> PyResult<f64> {
    Ok(stepwise_core::metrics::brier(&pairs(probs, outcomes)?))
}

#[pymodule(gil_used = false)]
fn _stepwise(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(verdict, m)?)?;
    m.add_function(wrap_pyfunction!(explain, m)?)?;
    m.add_function(wrap_pyfunction!(verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(extract_answer, m)?)?;
    m.add_function(wrap_pyfunction!(split_steps, m)?)?;
    m.add_function(wrap_pyfunction!(check_arithmetic, m)?)?;
    m.add_function(wrap_pyfunction!(step_score, m)?)?;
    m.add_function(wrap_pyfunction!(processbench_f1, m)?)?;
    m.add_function(wrap_pyfunction!(ece, m)?)?;
    m.add_function(wrap_pyfunction!(auroc, m)?)?;
    m.add_function(wrap_pyfunction!(brier, m)?)?;
    m.add_class::<Rewards>()?;
    Ok(())
}
