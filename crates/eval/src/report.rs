//! Self-contained HTML reports: inline CSS, plots as inline SVG, tables, and a
//! per-problem drill-down with every step's score coloured. The page makes no
//! external request and opens from disk in any browser.

use crate::table::{Table, html_escape};
use serde::{Deserialize, Serialize};

/// One rationale in the drill-down.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RationaleView {
    /// Short heading, e.g. `sample 3` or `Qwen2-7B-Instruct`.
    pub title: String,
    pub steps: Vec<String>,
    /// One score in [0, 1] per step where known.
    pub scores: Vec<Option<f64>>,
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default)]
    pub correct: Option<bool>,
    /// Gold index of the first wrong step (ProcessBench `label`), if known.
    #[serde(default)]
    pub gold_first_error: Option<i64>,
    /// Predicted index of the first wrong step, if any.
    #[serde(default)]
    pub predicted_first_error: Option<i64>,
    /// Free text shown under the heading.
    #[serde(default)]
    pub note: Option<String>,
}

/// One problem in the drill-down.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProblemView {
    pub id: String,
    pub question: String,
    #[serde(default)]
    pub gold: Option<String>,
    /// One-line summary shown when folded (e.g. `label 2, predicted 2 ✓`).
    #[serde(default)]
    pub summary: String,
    pub rationales: Vec<RationaleView>,
}

/// A titled block of the report: text, tables and plots.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Section {
    pub heading: String,
    /// Plain-text paragraphs (escaped on output).
    pub paragraphs: Vec<String>,
    pub tables: Vec<Table>,
    /// SVG documents produced by [`crate::plot::to_svg`], embedded inline.
    pub svgs: Vec<String>,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub title: String,
    /// Key/value facts shown at the top (run id, command line, model, date…).
    pub meta: Vec<(String, String)>,
    pub sections: Vec<Section>,
    pub problems: Vec<ProblemView>,
}

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.7em;margin:0 0 12px} h2{margin-top:36px;border-bottom:2px solid #ddd;padding-bottom:4px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:#fff;border:1px solid #ddd;padding:12px;border-radius:6px}
dl.meta dt{font-weight:600} dl.meta dd{margin:0;font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word}
table{border-collapse:collapse;margin:12px 0;background:#fff;font-size:.92em}
th,td{border:1px solid #ccc;padding:4px 10px;text-align:right} th{background:#eef1f5}
td:first-child,th:first-child{text-align:left}
figure.plot{margin:12px 0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px;display:inline-block}
figure.plot svg{max-width:100%;height:auto;display:block}
details.problem{background:#fff;border:1px solid #ddd;border-radius:6px;margin:6px 0;padding:6px 10px}
details.problem>summary{cursor:pointer;font-weight:600}
.question{white-space:pre-wrap;background:#f4f4f4;padding:8px;border-radius:4px;margin:8px 0}
.rationale{border-left:3px solid #bbb;margin:10px 0;padding-left:10px}
.rationale h4{margin:6px 0}
.step{display:flex;gap:8px;align-items:flex-start;margin:3px 0;padding:4px 6px;border-radius:4px;white-space:pre-wrap;word-break:break-word}
.step .idx{font-family:ui-monospace,monospace;min-width:2.2em;color:#555}
.step .score{font-family:ui-monospace,monospace;min-width:3.4em;font-weight:600}
.step.gold{outline:2px solid #b00020} .step.pred{box-shadow:inset 4px 0 0 #0050b3}
.tag{display:inline-block;font-size:.8em;padding:1px 6px;border-radius:8px;margin-left:6px;background:#eee}
.ok{background:#d7f5dd}.bad{background:#fbdada}
.legend{font-size:.9em;color:#444}
.swatch{display:inline-block;width:14px;height:14px;vertical-align:middle;border:1px solid #999;margin:0 3px}
"#;

/// Background colour of a step with this score: red (0) through yellow (0.5) to green (1);
/// grey when unscored.
pub fn score_color(score: Option<f64>) -> String {
    match score {
        Some(s) if s.is_finite() => {
            let h = 120.0 * s.clamp(0.0, 1.0);
            format!("hsl({h:.0},70%,85%)")
        }
        _ => "#eeeeee".to_string(),
    }
}

impl Report {
    /// The complete HTML document.
    pub fn to_html(&self) -> String {
        let mut h = String::with_capacity(64 * 1024);
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        h.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n");
        h.push_str(&format!("<title>{}</title>\n", html_escape(&self.title)));
        h.push_str(&format!("<style>{CSS}</style>\n</head><body><main>\n"));
        h.push_str(&format!("<h1>{}</h1>\n", html_escape(&self.title)));
        if !self.meta.is_empty() {
            h.push_str("<dl class=\"meta\">\n");
            for (k, v) in &self.meta {
                h.push_str(&format!(
                    "<dt>{}</dt><dd>{}</dd>\n",
                    html_escape(k),
                    html_escape(v)
                ));
            }
            h.push_str("</dl>\n");
        }
        for (i, s) in self.sections.iter().enumerate() {
            h.push_str(&format!(
                "<section id=\"section-{i}\"><h2>{}</h2>\n",
                html_escape(&s.heading)
            ));
            for p in &s.paragraphs {
                h.push_str(&format!("<p>{}</p>\n", html_escape(p)));
            }
            for t in &s.tables {
                h.push_str(&t.to_html());
            }
            for svg in &s.svgs {
                h.push_str("<figure class=\"plot\">");
                h.push_str(strip_xml_prolog(svg));
                h.push_str("</figure>\n");
            }
            h.push_str("</section>\n");
        }
        if !self.problems.is_empty() {
            h.push_str(&format!(
                "<section id=\"problems\"><h2>Problems ({})</h2>\n",
                self.problems.len()
            ));
            h.push_str(
                "<p class=\"legend\">Step colour is the step score: \
                 <span class=\"swatch\" style=\"background:hsl(0,70%,85%)\"></span>0 \
                 <span class=\"swatch\" style=\"background:hsl(60,70%,85%)\"></span>0.5 \
                 <span class=\"swatch\" style=\"background:hsl(120,70%,85%)\"></span>1 \
                 <span class=\"swatch\" style=\"background:#eeeeee\"></span>not scored. \
                 A red outline marks the annotated first wrong step; a blue bar marks the predicted one.</p>\n",
            );
            for p in &self.problems {
                h.push_str(&problem_html(p));
            }
            h.push_str("</section>\n");
        }
        h.push_str("</main></body></html>\n");
        h
    }
}

fn strip_xml_prolog(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

fn problem_html(p: &ProblemView) -> String {
    let mut h = String::new();
    h.push_str(&format!(
        "<details class=\"problem\" id=\"p-{}\"><summary>{} <span class=\"tag\">{}</span></summary>\n",
        html_escape(&p.id),
        html_escape(&p.id),
        html_escape(&p.summary)
    ));
    h.push_str(&format!(
        "<div class=\"question\">{}</div>\n",
        html_escape(&p.question)
    ));
    if let Some(g) = &p.gold {
        h.push_str(&format!(
            "<p>Gold answer: <code>{}</code></p>\n",
            html_escape(g)
        ));
    }
    for r in &p.rationales {
        h.push_str("<div class=\"rationale\">");
        h.push_str(&format!("<h4>{}", html_escape(&r.title)));
        if let Some(c) = r.correct {
            h.push_str(if c {
                "<span class=\"tag ok\">correct</span>"
            } else {
                "<span class=\"tag bad\">wrong</span>"
            });
        }
        if let Some(a) = &r.answer {
            h.push_str(&format!(
                "<span class=\"tag\">answer: {}</span>",
                html_escape(a)
            ));
        }
        if let Some(g) = r.gold_first_error {
            h.push_str(&format!(
                "<span class=\"tag\">annotated first error: {g}</span>"
            ));
        }
        if let Some(pe) = r.predicted_first_error {
            h.push_str(&format!("<span class=\"tag\">predicted: {pe}</span>"));
        }
        h.push_str("</h4>\n");
        if let Some(n) = &r.note {
            h.push_str(&format!("<p>{}</p>\n", html_escape(n)));
        }
        for (i, s) in r.steps.iter().enumerate() {
            let score = r.scores.get(i).copied().flatten();
            let mut class = String::from("step");
            if r.gold_first_error == Some(i as i64) {
                class.push_str(" gold");
            }
            if r.predicted_first_error == Some(i as i64) {
                class.push_str(" pred");
            }
            h.push_str(&format!(
                "<div class=\"{class}\" style=\"background:{}\"><span class=\"idx\">{i}</span><span class=\"score\">{}</span><span class=\"text\">{}</span></div>\n",
                score_color(score),
                score.map_or_else(|| "–".to_string(), |s| format!("{s:.2}")),
                html_escape(s)
            ));
        }
        h.push_str("</div>\n");
    }
    h.push_str("</details>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained_and_escaped() {
        let mut t = Table::new(["subset", "F1 %"]);
        t.push(["gsm8k", "12.5"]);
        let r = Report {
            title: "Run <1>".into(),
            meta: vec![("command".into(), "stepwise eval \"x\"".into())],
            sections: vec![Section {
                heading: "ProcessBench".into(),
                paragraphs: vec!["a < b".into()],
                tables: vec![t],
                svgs: vec![
                    "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"></svg>"
                        .into(),
                ],
            }],
            problems: vec![ProblemView {
                id: "gsm8k-0".into(),
                question: "2+2?<script>".into(),
                gold: Some("4".into()),
                summary: "label 1".into(),
                rationales: vec![RationaleView {
                    title: "solution".into(),
                    steps: vec!["2+2=5".into(), "so 5".into()],
                    scores: vec![Some(0.0), None],
                    gold_first_error: Some(0),
                    predicted_first_error: Some(0),
                    ..RationaleView::default()
                }],
            }],
        };
        let h = r.to_html();
        assert!(h.starts_with("<!DOCTYPE html>"));
        assert!(h.contains("<title>Run &lt;1&gt;</title>"));
        assert!(h.contains("<td>gsm8k</td>"));
        assert!(h.contains("<figure class=\"plot\"><svg"));
        assert!(!h.contains("<?xml"));
        assert!(h.contains("2+2?&lt;script&gt;"));
        assert!(h.contains("class=\"step gold pred\" style=\"background:hsl(0,70%,85%)\""));
        assert!(h.contains("background:#eeeeee"));
        // nothing is fetched from elsewhere
        for bad in ["<script src", "<link", "@import", "url(http"] {
            assert!(!h.contains(bad), "{bad}");
        }
    }

    #[test]
    fn colours() {
        assert_eq!(score_color(Some(1.0)), "hsl(120,70%,85%)");
        assert_eq!(score_color(Some(0.5)), "hsl(60,70%,85%)");
        assert_eq!(score_color(Some(f64::NAN)), "#eeeeee");
        assert_eq!(score_color(None), "#eeeeee");
    }
}
