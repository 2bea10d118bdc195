//! `--plot FILE.svg`: events/s over time, the failovers they rode through,
//! and a mark for every node failure, recovery, flap and join.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use crate::chaos::{Mark, MarkKind};
use crate::report::{si, Summary};

const THROUGHPUT: RGBColor = RGBColor(33, 102, 172);
const FAILURE: RGBColor = RGBColor(214, 39, 40);
const RECOVERY: RGBColor = RGBColor(44, 160, 44);
const FLAP: RGBColor = RGBColor(255, 127, 14);
const JOIN: RGBColor = RGBColor(148, 103, 189);

/// Draws the run to `path` (SVG).
pub(crate) fn draw(path: &Path, s: &Summary) -> Result<(), String> {
    draw_svg(path, s).map_err(|e| e.to_string())
}

fn draw_svg(path: &Path, s: &Summary) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (1200, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let seconds = s.seconds as f64;
    let peak = s
        .series
        .iter()
        .map(|p| p.events_per_sec / 1e6)
        .fold(0.0, f64::max)
        .max(0.001);
    // Headroom above the curve for four rows of marks.
    let top = peak * 1.5;
    let rows = [0.965, 0.9, 0.86, 0.82].map(|r| top * r);
    let failovers = s.series.last().map_or(0, |p| p.failovers).max(1) as f64;

    let caption = format!(
        "replica-router under chaos: {} events/s, {} failovers, {} lost ({} groups, {} nodes, seed {})",
        si(s.events_per_sec()),
        s.failovers(),
        s.lost(),
        s.groups,
        s.nodes,
        s.seed
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 24))
        .margin(18)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0.0..seconds, 0.0..top)?
        .set_secondary_coord(0.0..seconds, 0.0..failovers * 1.45);
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("million events / s (routed and delivered)")
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("failovers so far")
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .draw()?;

    // A faint line through the chart at each real node failure and join.
    for m in s.chaos.marks.iter() {
        let color = match m.kind {
            MarkKind::Failed => FAILURE.mix(0.18),
            MarkKind::Added => JOIN.mix(0.35),
            _ => continue,
        };
        chart.draw_series(LineSeries::new([(m.t, 0.0), (m.t, rows[3])], color))?;
    }

    chart
        .draw_series(
            AreaSeries::new(
                s.series.iter().map(|p| (p.t, p.events_per_sec / 1e6)),
                0.0,
                THROUGHPUT.mix(0.15),
            )
            .border_style(THROUGHPUT.stroke_width(2)),
        )?
        .label("events/s")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], THROUGHPUT.filled()));
    chart
        .draw_secondary_series(LineSeries::new(
            s.series.iter().map(|p| (p.t, p.failovers as f64)),
            FAILURE.stroke_width(2),
        ))?
        .label("failovers so far (right axis)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], FAILURE.stroke_width(2)));

    let marks = |kind: MarkKind| s.chaos.marks.iter().filter(move |m| m.kind == kind);
    let at = |m: &Mark, row: usize| (m.t, rows[row]);
    // Node ids beside the failure marks, alternating above and below when
    // failures come close together.
    let mut last = f64::NEG_INFINITY;
    let mut below = false;
    let failed: Vec<_> = marks(MarkKind::Failed)
        .map(|m| {
            below = m.t - last < seconds / 40.0 && !below;
            last = m.t;
            (m, if below { 12 } else { -6 })
        })
        .collect();
    chart
        .draw_series(failed.into_iter().map(|(m, dy)| {
            EmptyElement::at(at(m, 0))
                + TriangleMarker::new((0, 0), 6, FAILURE.filled())
                + Text::new(format!("{}", m.node), (6, dy), ("sans-serif", 11))
        }))?
        .label("node failed")
        .legend(|(x, y)| TriangleMarker::new((x + 9, y), 6, FAILURE.filled()));
    chart
        .draw_series(
            marks(MarkKind::Recovered).map(|m| Circle::new(at(m, 1), 4, RECOVERY.filled())),
        )?
        .label("node recovered")
        .legend(|(x, y)| Circle::new((x + 9, y), 4, RECOVERY.filled()));
    let flapper = s.flapper.map_or(String::new(), |n| format!(" {n}"));
    chart
        .draw_series(
            marks(MarkKind::FlapFailed).map(|m| TriangleMarker::new(at(m, 2), 4, FLAP.filled())),
        )?
        .label(format!("flapping node{flapper} failed"))
        .legend(|(x, y)| TriangleMarker::new((x + 9, y), 4, FLAP.filled()));
    chart
        .draw_series(
            marks(MarkKind::FlapRecovered)
                .map(|m| Circle::new(at(m, 2), 2, FLAP.mix(0.5).filled())),
        )?
        .label(format!("flapping node{flapper} recovered"))
        .legend(|(x, y)| Circle::new((x + 9, y), 2, FLAP.mix(0.5).filled()));
    chart
        .draw_series(marks(MarkKind::Added).map(|m| {
            EmptyElement::at(at(m, 3))
                + Rectangle::new([(-4, -4), (4, 4)], JOIN.filled())
                + Text::new(format!("+{}", m.node), (7, -5), ("sans-serif", 11))
        }))?
        .label("node joined")
        .legend(|(x, y)| Rectangle::new([(x + 5, y - 4), (x + 13, y + 4)], JOIN.filled()));

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}
