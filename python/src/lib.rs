//! The `stepwise` Python extension (`stepwise._stepwise`): the verifier, reward functions
//! and step tools of the workspace, called in-process. Every call is bounded by the
//! verifier's caps and safe from any thread; batch calls release the GIL and run on a
//! rayon pool. No llama.cpp is linked here.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
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

/// Extraction targets: which kinds of answer a side is read as, and whether each may
/// stand without an anchor (`(latex, expr)`).
fn anchored(latex: bool, expr: bool, anchorless: (bool, bool)) -> Targets {
    Targets {
        latex,
        expr,
        latex_anchorless: anchorless.0,
        expr_anchorless: anchorless.1,
    }
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

/// Text of a Python object: a `str` as it is, anything else through `str()`.
fn text(x: &Bound<'_, PyAny>) -> PyResult<String> {
    match x.cast::<PyString>() {
        Ok(s) => s.to_cow().map(|c| c.into_owned()),
        Err(_) => x.str()?.to_cow().map(|c| c.into_owned()),
    }
}

/// The acceptable answers of one gold label: none for `None`, the items of a list or tuple
/// (`None` items left out), else the label itself, each as text. Converted here rather than
/// in Python, where a batch of thousands of labels cost more than verifying them.
fn gold_list(x: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if x.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(s) = x.cast::<PyString>() {
        return Ok(vec![s.to_cow()?.into_owned()]);
    }
    let items = if let Ok(l) = x.cast::<PyList>() {
        l.iter().collect::<Vec<_>>()
    } else if let Ok(t) = x.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Ok(vec![text(x)?]);
    };
    items.iter().filter(|i| !i.is_none()).map(text).collect()
}

/// Verdict of `pred` against any of `golds` (the first `equal` wins).
fn verdict_any(golds: &[String], pred: &str, o: &Options, gt: Targets, pt: Targets) -> Verdict {
    let mut best = Verdict::Undecided;
    for g in golds {
        let v = stepwise_verify::verify_targets(g, gt, pred, pt, o);
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

/// [`verdict_any`] with golds read beforehand.
fn prepared_any(
    golds: &[stepwise_verify::PreparedGold],
    pred: &str,
    o: &Options,
    pt: Targets,
) -> Verdict {
    let mut best = Verdict::Undecided;
    for g in golds {
        let v = g.verify(pred, pt, o);
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
#[pyo3(signature = (golds, pred, float_rounding=6, numeric_precision=15, strict=true, allow_set_relation_comp=false, gold_latex=true, gold_expr=true, pred_latex=true, pred_expr=true, gold_anchorless=(true, true), pred_anchorless=(true, true)))]
#[allow(clippy::too_many_arguments)]
fn verdict(
    py: Python<'_>,
    golds: &Bound<'_, PyAny>,
    pred: &Bound<'_, PyAny>,
    float_rounding: u32,
    numeric_precision: u32,
    strict: bool,
    allow_set_relation_comp: bool,
    gold_latex: bool,
    gold_expr: bool,
    pred_latex: bool,
    pred_expr: bool,
    gold_anchorless: (bool, bool),
    pred_anchorless: (bool, bool),
) -> PyResult<&'static str> {
    let o = options(
        float_rounding,
        numeric_precision,
        strict,
        allow_set_relation_comp,
    );
    let (gt, pt) = (
        anchored(gold_latex, gold_expr, gold_anchorless),
        anchored(pred_latex, pred_expr, pred_anchorless),
    );
    let (golds, pred) = (gold_list(golds)?, text(pred)?);
    Ok(verdict_name(
        py.detach(|| verdict_any(&golds, &pred, &o, gt, pt)),
    ))
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
    golds: Vec<Bound<'_, PyAny>>,
    preds: Vec<Bound<'_, PyAny>>,
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
    let golds = golds.iter().map(gold_list).collect::<PyResult<Vec<_>>>()?;
    let preds = preds.iter().map(text).collect::<PyResult<Vec<_>>>()?;
    let p = pool(threads)?;
    let d = Targets::default();
    // Each distinct gold (list) is read once: a batch holds several samples per problem.
    Ok(py.detach(|| {
        run_on(p, || {
            stepwise_verify::by_gold(
                preds.len(),
                |i| &golds[i],
                |g: &Vec<String>| {
                    g.iter()
                        .map(|g| stepwise_verify::PreparedGold::new(g, d, &o))
                        .collect::<Vec<_>>()
                },
                |gs, i| prepared_any(gs, &preds[i], &o, d),
            )
            .into_iter()
            .map(Verdict::is_equal)
            .collect()
        })
    }))
}

#[pyfunction]
#[pyo3(signature = (text, latex=true, expr=true, anchorless=(true, true)))]
fn extract_answer(
    py: Python<'_>,
    text: String,
    latex: bool,
    expr: bool,
    anchorless: (bool, bool),
) -> Option<String> {
    py.detach(|| stepwise_verify::extract_answer(&text, anchored(latex, expr, anchorless)))
}

/// math-verify's `parse` over its extraction configs: `("math", answer, answer)` for a
/// mathematical answer, `("string", parsed, extracted)` for a literal one (`strings`:
/// `StringExtractionConfig`'s keys, `None` without one), `None` when nothing is found.
#[pyfunction]
#[pyo3(signature = (text, latex=true, expr=true, anchorless=(true, true), boxed_priority=55, strings=None, strings_anchorless=true, lowercase=true))]
#[allow(clippy::too_many_arguments)]
fn parse_answer(
    py: Python<'_>,
    text: String,
    latex: bool,
    expr: bool,
    anchorless: (bool, bool),
    boxed_priority: i64,
    strings: Option<Vec<String>>,
    strings_anchorless: bool,
    lowercase: bool,
) -> Option<(&'static str, String, String)> {
    use stepwise_verify::{Extracted, strings::StringTargets};
    let found = py.detach(|| {
        let lit = strings.as_ref().map(|s| StringTargets {
            strings: s,
            anchorless: strings_anchorless,
            lowercase,
        });
        stepwise_verify::extract_configured(
            &text,
            anchored(latex, expr, anchorless),
            boxed_priority,
            lit.as_ref(),
        )
    })?;
    Some(match found {
        Extracted::Math(m) => ("math", m.clone(), m),
        Extracted::Literal(l) => ("string", l.parsed, l.extracted),
    })
}

/// Reward functions of a `stepwise serve` configuration (TOML or a preset).
///
/// >>> import stepwise
/// >>> r = stepwise.Rewards(preset="deepseek-r1")
/// >>> s = r.score("", "<think>2+2=4</think> The answer is \\boxed{4}.", "4")
/// >>> s["reward"], s["components"]["accuracy"], s["components"]["format"]
/// (2.0, 1.0, 1.0)
/// >>> r.score("", "The answer is \\boxed{5}.", "4")["verdict"]
/// 'not_equal'
///
/// Give one of `preset` (a `stepwise serve --preset` name), `toml` (the text of a reward
/// TOML) or `path` (a TOML file); none gives the default configuration. `score_batch`
/// scores many items on a rayon pool with the GIL released.
// `module`: the class is documented (and its example run by `pytest --doctest-modules`)
// as `stepwise.Rewards`, where the package exports it.
#[pyclass(frozen, module = "stepwise")]
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
    // as `/v1/rewards` sends them: each flag the configuration can raise (the
    // self-certainty component's `no_logprobs`, …) and the components' diagnostics
    d.set_item("flags", s.result.flags.clone())?;
    d.set_item("logs", s.result.logs.clone())?;
    Ok(d)
}

/// Per generated token, the log-probabilities of its top-k alternatives, as
/// `/v1/rewards` items carry them (`logprobs`).
type TokenLogprobs = Vec<Vec<f64>>;

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

    /// `logprobs`: per generated token, its top-k log-probabilities (the `self_certainty`
    /// component's input; without them it gives 0 and raises `no_logprobs`).
    #[pyo3(signature = (prompt, response, gold, source=None, logprobs=None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        prompt: String,
        response: String,
        gold: String,
        source: Option<String>,
        logprobs: Option<TokenLogprobs>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let s = py.detach(|| {
            let extras = stepwise_reward::ItemExtras {
                logprobs: logprobs.as_deref(),
            };
            self.inner
                .score_with(source.as_deref(), &prompt, &response, &gold, &extras)
        });
        score_dict(py, &s)
    }

    /// `logprobs`: one entry per item (`None` for an item without them), as `score` takes.
    #[pyo3(signature = (prompts, responses, golds, sources, threads=None, logprobs=None))]
    #[allow(clippy::too_many_arguments)]
    fn score_batch<'py>(
        &self,
        py: Python<'py>,
        prompts: Vec<String>,
        responses: Vec<String>,
        golds: Vec<String>,
        sources: Vec<Option<String>>,
        threads: Option<usize>,
        logprobs: Option<Vec<Option<TokenLogprobs>>>,
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
        if let Some(lp) = &logprobs
            && lp.len() != n
        {
            return Err(PyValueError::new_err(format!(
                "logprobs must have one entry per item (None for an item without): {} for {n} items",
                lp.len()
            )));
        }
        let p = pool(threads)?;
        let scored: Vec<_> = py.detach(|| {
            run_on(p, || {
                (0..n)
                    .into_par_iter()
                    .map(|i| {
                        let extras = stepwise_reward::ItemExtras {
                            logprobs: logprobs.as_ref().and_then(|l| l[i].as_deref()),
                        };
                        self.inner.score_with(
                            sources[i].as_deref(),
                            &prompts[i],
                            &responses[i],
                            &golds[i],
                            &extras,
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
    m.add_function(wrap_pyfunction!(parse_answer, m)?)?;
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
