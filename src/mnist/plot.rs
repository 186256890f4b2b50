//! `--plot`: a PNG of the training loss and the test accuracy per epoch (plotters).
//!
//! Text needs a font: plotters is built without its system-font stack (`ttf` pulls in
//! fontconfig), so the first TrueType font found among a few usual system paths is loaded
//! through `ab_glyph`. Without one the plot is drawn without text, and the caller is told.

use super::report::EpochStats;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// Fonts tried in order (Debian/Ubuntu, Fedora, Arch, macOS, Windows).
const FONT_PATHS: [&str; 7] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers the first usable font as plotters' sans-serif, once; true if one was found.
fn font_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        FONT_PATHS.iter().any(|p| {
            let Ok(bytes) = std::fs::read(p) else {
                return false;
            };
            // Registered once per process; plotters needs the bytes for 'static.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
}

/// Draws loss and accuracy per epoch side by side into the PNG `path`. Returns whether text
/// (titles, tick labels) could be drawn, i.e. whether a font was found.
pub fn plot_history(path: &Path, history: &[EpochStats]) -> Result<bool, String> {
    let text = font_available();
    draw(path, history, text).map_err(|e| format!("cannot draw plot {}: {e}", path.display()))?;
    Ok(text)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The drawing, with or without text.
pub(crate) fn draw(path: &Path, history: &[EpochStats], text: bool) -> DrawResult {
    if history.is_empty() {
        return Err("no epochs to plot".into());
    }
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    let loss: Vec<f64> = history.iter().map(|s| s.train_loss).collect();
    let acc: Vec<f64> = history.iter().map(|s| s.test_acc).collect();
    let max_loss = loss.iter().cloned().fold(0.0, f64::max);
    let min_acc = acc.iter().cloned().fold(100.0, f64::min);
    panel(
        &left,
        "training loss",
        &loss,
        0.0..max_loss * 1.15 + 1e-6,
        &BLUE,
        text,
    )?;
    let lo = (min_acc - 0.5).floor().max(0.0);
    panel(&right, "test accuracy (%)", &acc, lo..100.0, &RED, text)?;
    root.present()?;
    Ok(())
}

/// One chart: `values[i]` at epoch `i + 1`, line and points.
fn panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    title: &str,
    values: &[f64],
    y: std::ops::Range<f64>,
    color: &RGBColor,
    text: bool,
) -> DrawResult {
    let n = values.len() as i32;
    let mut builder = ChartBuilder::on(area);
    builder.margin(16);
    if text {
        builder
            .caption(title, ("sans-serif", 20))
            .x_label_area_size(40)
            .y_label_area_size(56);
    }
    let mut chart = builder.build_cartesian_2d(0..n + 1, y)?;
    // Only the epochs get tick labels (the axis runs from 0 to n + 1 to leave margins).
    let epoch_label = |x: &i32| {
        if (1..=n).contains(x) {
            x.to_string()
        } else {
            String::new()
        }
    };
    if text {
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels((n + 2) as usize)
            .x_label_formatter(&epoch_label)
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()?;
    } else {
        // Without a font plotters cannot lay out tick labels: draw a frame only.
        let (xs, ys) = (chart.x_range(), chart.y_range());
        chart.draw_series(std::iter::once(Rectangle::new(
            [(xs.start, ys.start), (xs.end, ys.end)],
            BLACK.stroke_width(1),
        )))?;
    }
    let points = values.iter().enumerate().map(|(i, &v)| (i as i32 + 1, v));
    chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
    chart.draw_series(points.map(|p| Circle::new(p, 4, color.filled())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(epoch: usize, loss: f64, acc: f64) -> EpochStats {
        EpochStats {
            epoch,
            train_loss: loss,
            test_acc: acc,
            epoch_s: 1.0,
            images_per_s: 1.0,
        }
    }

    #[test]
    fn draws_a_png_with_and_without_text() {
        let dir = std::env::temp_dir().join(format!("nnkern-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let history = [stats(1, 0.15, 98.2), stats(2, 0.05, 98.8)];
        let with = dir.join("with.png");
        let found = plot_history(&with, &history).unwrap();
        let without = dir.join("without.png");
        draw(&without, &history[..1], false).unwrap();
        for p in [&with, &without] {
            let bytes = std::fs::read(p).unwrap();
            assert_eq!(&bytes[1..4], b"PNG", "{}", p.display());
        }
        if found {
            // Text adds pixels: the PNG with labels differs from one without.
            draw(&without, &history, false).unwrap();
            assert_ne!(
                std::fs::read(&with).unwrap(),
                std::fs::read(&without).unwrap()
            );
        }
        assert!(draw(&without, &[], true).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
