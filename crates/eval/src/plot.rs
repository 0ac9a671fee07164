//! Plots with plotters, as PNG files and SVG strings.
//!
//! Text is drawn with plotters' `ab_glyph` backend and DejaVu Sans embedded in
//! the binary (crate `dejavu`), so no system font libraries are needed and the
//! PNGs look the same everywhere. SVG text is emitted as `<text>` elements with
//! `font-family="sans-serif"` and rendered by the viewer.

use crate::EvalError;
use crate::calibration::Bin;
use crate::compute::CurvePoint;
use crate::processbench::SubsetMetrics;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// Pixel size of every plot.
pub const SIZE: (u32, u32) = (900, 560);

fn ensure_font() -> Result<(), EvalError> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font("sans-serif", style, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans font could not be loaded".to_string())?;
        }
        Ok(())
    })
    .clone()
    .map_err(EvalError::Plot)
}

/// The series legend every plot draws the same way (a white box with a black border), at `position`.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), EvalError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(perr)
}

fn perr<E: std::fmt::Debug>(e: E) -> EvalError {
    EvalError::Plot(format!("{e:?}"))
}

/// A plot that can be drawn on any plotters backend.
pub trait Plot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), EvalError>;
}

/// Renders a plot as an SVG document (a string).
pub fn to_svg<P: Plot>(p: &P) -> Result<String, EvalError> {
    ensure_font()?;
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, SIZE).into_drawing_area();
        p.draw(&root)?;
        root.present().map_err(perr)?;
    }
    Ok(s)
}

/// Writes a plot as a PNG file.
pub fn write_png<P: Plot>(p: &P, path: &Path) -> Result<(), EvalError> {
    ensure_font()?;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    p.draw(&root)?;
    root.present()
        .map_err(|e| EvalError::Plot(format!("{}: {e:?}", path.display())))
}

/// Writes `stem.png` and `stem.svg`.
pub fn write_both<P: Plot>(p: &P, stem: &Path) -> Result<(), EvalError> {
    write_png(p, &stem.with_extension("png"))?;
    let svg = to_svg(p)?;
    let path = stem.with_extension("svg");
    std::fs::write(&path, svg).map_err(|source| EvalError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn color(i: usize) -> RGBColor {
    // Okabe–Ito: distinguishable for colour-blind readers.
    const C: [(u8, u8, u8); 8] = [
        (0, 114, 178),
        (213, 94, 0),
        (0, 158, 115),
        (204, 121, 167),
        (230, 159, 0),
        (86, 180, 233),
        (0, 0, 0),
        (240, 228, 66),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

/// Whether a series is an oracle ceiling (`pass@k`, `pass@N`: some sample is right)
/// rather than a way of choosing an answer; such series are drawn dashed.
pub fn is_ceiling(series: &str) -> bool {
    series.starts_with("pass@")
}

/// Accuracy against mean generated tokens, one line per series, with the
/// bootstrap interval drawn as a shaded band and error bars. Ceiling series
/// ([`is_ceiling`]) are dashed and marked `(ceiling)` in the legend.
pub struct AccuracyVsTokens<'a> {
    pub title: String,
    pub points: &'a [CurvePoint],
}

impl Plot for AccuracyVsTokens<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), EvalError> {
        Curves {
            title: self.title.clone(),
            x_desc: "mean generated tokens per problem (policy + judge), log scale".into(),
            y_desc: "accuracy (%)".into(),
            points: self.points,
        }
        .draw(root)
    }
}

/// Any quality (a fraction in `0..=1`, drawn in %) against any cost on a log axis, one
/// line per series with bootstrap bands: [`AccuracyVsTokens`] with other axis names
/// (the cost is each point's `mean_tokens` field, whatever it counts).
pub struct Curves<'a> {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub points: &'a [CurvePoint],
}

impl Plot for Curves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), EvalError> {
        root.fill(&WHITE).map_err(perr)?;
        let mut series: Vec<&str> = Vec::new();
        for p in self.points {
            if !series.contains(&p.series.as_str()) {
                series.push(&p.series);
            }
        }
        // x is log2(cost) on a linear axis, labelled in its units: readable ticks on any
        // range (costs under 1, such as rollouts per labelled step, included).
        let lx = |t: f64| t.max(0.01).log2();
        let (mut lo, mut hi) = self
            .points
            .iter()
            .map(|p| lx(p.mean_tokens))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
                (a.min(t), b.max(t))
            });
        if !lo.is_finite() {
            (lo, hi) = (0.0, 4.0);
        }
        let pad = ((hi - lo) * 0.08).max(0.3);
        let (lo, hi) = (lo - pad, hi + pad);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(64)
            .build_cartesian_2d(lo..hi, 0.0..100.0)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 14))
            .x_labels(8)
            .x_label_formatter(&|x| {
                let v = 2f64.powf(*x);
                if v < 10.0 {
                    format!("{v:.1}")
                } else {
                    format!("{v:.0}")
                }
            })
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(perr)?;
        // overlapping bands add up: keep their sum light however many series there are
        let band_alpha = (0.3 / series.len().max(2) as f64).max(0.04);
        for (i, name) in series.iter().enumerate() {
            let c = color(i);
            let mut pts: Vec<&CurvePoint> =
                self.points.iter().filter(|p| p.series == *name).collect();
            pts.sort_by(|a, b| a.mean_tokens.total_cmp(&b.mean_tokens));
            let x = |p: &CurvePoint| lx(p.mean_tokens);
            if pts.len() > 1 {
                let mut band: Vec<(f64, f64)> =
                    pts.iter().map(|p| (x(p), p.accuracy.hi * 100.0)).collect();
                band.extend(pts.iter().rev().map(|p| (x(p), p.accuracy.lo * 100.0)));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        band,
                        c.mix(band_alpha).filled(),
                    )))
                    .map_err(perr)?;
            }
            for p in &pts {
                let (xx, l, h) = (x(p), p.accuracy.lo * 100.0, p.accuracy.hi * 100.0);
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(xx, l), (xx, h)],
                        c.stroke_width(1),
                    )))
                    .map_err(perr)?;
            }
            let line: Vec<(f64, f64)> = pts
                .iter()
                .map(|p| (x(p), p.accuracy.mean * 100.0))
                .collect();
            if is_ceiling(name) {
                // an oracle (some sample is right), not a selection rule: dashed
                chart
                    .draw_series(DashedLineSeries::new(line, 6, 4, c.stroke_width(2)))
                    .map_err(perr)?
                    .label(format!("{name} (ceiling)"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 8, y)], c.stroke_width(3))
                    });
            } else {
                chart
                    .draw_series(LineSeries::new(line, c.stroke_width(2)))
                    .map_err(perr)?
                    .label(name.to_string())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                    });
            }
            chart
                .draw_series(
                    pts.iter()
                        .map(|p| Circle::new((x(p), p.accuracy.mean * 100.0), 4, c.filled())),
                )
                .map_err(perr)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}

/// A reliability diagram: observed frequency per confidence bin against the diagonal.
pub struct Reliability<'a> {
    pub title: String,
    pub bins: &'a [Bin],
}

impl Plot for Reliability<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), EvalError> {
        root.fill(&WHITE).map_err(perr)?;
        let total: usize = self.bins.iter().map(|b| b.count).sum();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .x_desc(format!(
                "predicted probability (0–1); numbers: samples per bin, n = {total}"
            ))
            .y_desc("observed frequency of correct (0–1)")
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(perr)?;
        let bar = color(0);
        chart
            .draw_series(self.bins.iter().filter_map(|b| {
                let acc = b.accuracy?;
                Some(Rectangle::new(
                    [(b.lo + 0.004, 0.0), (b.hi - 0.004, acc)],
                    bar.mix(0.7).filled(),
                ))
            }))
            .map_err(perr)?
            .label("observed frequency per bin")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 20, y + 5)], bar.mix(0.7).filled())
            });
        let gap = color(1);
        chart
            .draw_series(self.bins.iter().filter_map(|b| {
                let (acc, conf) = (b.accuracy?, b.confidence?);
                Some(PathElement::new(
                    vec![(conf, acc), (conf, conf)],
                    gap.stroke_width(2),
                ))
            }))
            .map_err(perr)?
            .label("gap to mean confidence")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], gap.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(perr)?
            .label("perfect calibration")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        chart
            .draw_series(self.bins.iter().filter(|b| b.count > 0).map(|b| {
                Text::new(
                    format!("{}", b.count),
                    (
                        (b.lo + b.hi) / 2.0 - 0.015,
                        (b.accuracy.unwrap_or(0.0) + 0.04).min(0.97),
                    ),
                    ("sans-serif", 11),
                )
            }))
            .map_err(perr)?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}

type Getter = fn(&SubsetMetrics) -> Option<f64>;

/// ProcessBench per subset: accuracy on erroneous and correct samples and F1, as grouped bars.
pub struct ProcessBenchBars<'a> {
    pub title: String,
    pub subsets: &'a [SubsetMetrics],
}

impl Plot for ProcessBenchBars<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), EvalError> {
        root.fill(&WHITE).map_err(perr)?;
        let n = self.subsets.len().max(1);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..n as f64, 0.0..128.0)
            .map_err(perr)?;
        let names: Vec<String> = self.subsets.iter().map(|s| s.subset.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("ProcessBench subset")
            .y_desc("score (%)")
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 14))
            .x_labels(n * 2 + 1)
            .y_labels(14)
            .y_label_formatter(&|y| {
                if *y <= 100.0 {
                    format!("{y:.0}")
                } else {
                    String::new()
                }
            })
            .x_label_formatter(&|x| {
                let f = x - x.floor();
                let i = x.floor() as usize;
                if (f - 0.5).abs() < 1e-6 {
                    names.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(perr)?;
        let metrics: [(&str, Getter); 3] = [
            ("accuracy on erroneous samples", |s| s.acc_erroneous),
            ("accuracy on correct samples", |s| s.acc_correct),
            ("F1", |s| s.f1),
        ];
        for (j, (label, get)) in metrics.into_iter().enumerate() {
            let c = color(j);
            chart
                .draw_series(self.subsets.iter().enumerate().filter_map(|(i, s)| {
                    let v = get(s)? * 100.0;
                    let x0 = i as f64 + 0.15 + j as f64 * 0.23;
                    Some(Rectangle::new([(x0, 0.0), (x0 + 0.21, v)], c.filled()))
                }))
                .map_err(perr)?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], c.filled()));
            chart
                .draw_series(self.subsets.iter().enumerate().filter_map(|(i, s)| {
                    let v = get(s)? * 100.0;
                    let x0 = i as f64 + 0.15 + j as f64 * 0.23;
                    Some(Text::new(
                        format!("{v:.1}"),
                        (x0, v + 3.5),
                        ("sans-serif", 12),
                    ))
                }))
                .map_err(perr)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Estimate;

    fn pts() -> Vec<CurvePoint> {
        let mut v = Vec::new();
        for (s, base) in [("maj@k", 0.3), ("best-of-k (min)", 0.35)] {
            for (i, k) in [1, 2, 4, 8].into_iter().enumerate() {
                let m = base + 0.05 * i as f64;
                v.push(CurvePoint {
                    series: s.into(),
                    x_label: format!("k={k}"),
                    mean_tokens: 200.0 * k as f64,
                    accuracy: Estimate {
                        mean: m,
                        lo: m - 0.08,
                        hi: m + 0.08,
                    },
                    problems: 40,
                });
            }
        }
        v
    }

    #[test]
    fn svg_has_title_axes_and_legend() {
        let p = pts();
        let svg = to_svg(&AccuracyVsTokens {
            title: "Accuracy vs compute".into(),
            points: &p,
        })
        .unwrap();
        assert!(svg.starts_with("<svg"));
        for needle in [
            "Accuracy vs compute",
            "accuracy (%)",
            "log scale",
            "maj@k",
            "best-of-k (min)",
        ] {
            assert!(svg.contains(needle), "missing {needle}");
        }
        assert!(!svg.contains("(ceiling)"));
        let mut p = pts();
        p[0].series = "pass@N".into();
        let svg = to_svg(&AccuracyVsTokens {
            title: "t".into(),
            points: &p,
        })
        .unwrap();
        assert!(svg.contains("pass@N (ceiling)"));
    }

    #[test]
    fn png_files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = pts();
        write_both(
            &AccuracyVsTokens {
                title: "t".into(),
                points: &p,
            },
            &dir.path().join("acc"),
        )
        .unwrap();
        let png = std::fs::read(dir.path().join("acc.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(dir.path().join("acc.svg").exists());
        let pairs: Vec<(f64, bool)> = (0..100).map(|i| (i as f64 / 100.0, i % 3 != 0)).collect();
        let bins = crate::calibration::reliability_bins(&pairs, 15);
        write_both(
            &Reliability {
                title: "r".into(),
                bins: &bins,
            },
            &dir.path().join("rel"),
        )
        .unwrap();
        // empty inputs still draw (axes only), never panic
        to_svg(&AccuracyVsTokens {
            title: "empty".into(),
            points: &[],
        })
        .unwrap();
        to_svg(&ProcessBenchBars {
            title: "empty".into(),
            subsets: &[],
        })
        .unwrap();
    }
}
