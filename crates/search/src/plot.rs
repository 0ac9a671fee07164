//! The accuracy-versus-compute plot (PNG and SVG) of a scale run.

use crate::scale::ScaleRow;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// Errors of plotting.
#[derive(Debug, thiserror::Error)]
#[error("plot {path}: {reason}")]
pub struct PlotError {
    pub path: String,
    pub reason: String,
}

fn ensure_font() -> Result<(), String> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font("sans-serif", style, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans font could not be loaded".to_string())?;
        }
        Ok(())
    })
    .clone()
}

const COLORS: [(u8, u8, u8); 8] = [
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
    (0, 0, 0),
    (240, 228, 66),
];

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    rows: &[ScaleRow],
    title: &str,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| format!("{x:?}");
    root.fill(&WHITE).map_err(e)?;
    let mut series: Vec<&str> = Vec::new();
    for r in rows {
        if !series.contains(&r.strategy.as_str()) {
            series.push(&r.strategy);
        }
    }
    let xs: Vec<f64> = rows.iter().map(|r| r.mean_tokens.max(1.0)).collect();
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() {
        (lo / 1.3, hi * 1.3)
    } else {
        (1.0, 10.0)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..100.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("mean generated tokens per problem (policy + judge), log scale")
        .y_desc("accuracy (%)")
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(e)?;
    for (i, name) in series.iter().enumerate() {
        let (r, g, b) = COLORS[i % COLORS.len()];
        let color = RGBColor(r, g, b);
        let mut pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|x| x.strategy == *name)
            .map(|x| (x.mean_tokens.max(1.0), 100.0 * x.accuracy()))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let dashed = *name == "pass@N";
        let style = if dashed {
            color.stroke_width(1)
        } else {
            color.stroke_width(2)
        };
        if dashed {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))
                .map_err(e)?
                .label(format!("{name} (ceiling)"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(e)?
                .label(name.to_string())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Writes `stem.png` and `stem.svg`: accuracy against mean tokens per problem, one line
/// per strategy, `pass@N` dashed.
pub fn plot_rows(rows: &[ScaleRow], title: &str, stem: &Path) -> Result<(), PlotError> {
    let err = |path: &Path, reason: String| PlotError {
        path: path.display().to_string(),
        reason,
    };
    ensure_font().map_err(|r| err(stem, r))?;
    let png = stem.with_extension("png");
    draw(
        BitMapBackend::new(&png, (900, 560)).into_drawing_area(),
        rows,
        title,
    )
    .map_err(|r| err(&png, r))?;
    let svg = stem.with_extension("svg");
    draw(
        SVGBackend::new(&svg, (900, 560)).into_drawing_area(),
        rows,
        title,
    )
    .map_err(|r| err(&svg, r))?;
    Ok(())
}
