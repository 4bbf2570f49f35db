//! A small inline SVG line chart (no script, no external resource): the consumer group page
//! draws its recent lag with it. Pure; numbers only, so nothing in it needs escaping but the
//! caption, which goes through [`escape`].

use std::fmt::Write as _;

use super::html::escape;

/// Chart width in SVG user units (pixels at 100 %).
const CHART_WIDTH: f64 = 600.0;
/// Chart height in SVG user units.
const CHART_HEIGHT: f64 = 120.0;
/// Room left of the plot for the y-axis labels.
const CHART_MARGIN_LEFT: f64 = 60.0;
/// Room under the plot for the x-axis labels.
const CHART_MARGIN_BOTTOM: f64 = 18.0;

/// A line through `points` (x: milliseconds, y: value), the y axis from 0 to the largest value,
/// the x axis labelled with how long ago its ends were relative to `now_ms`. With fewer than two
/// points it says that there is not enough history yet.
pub fn line_chart(caption: &str, unit: &str, points: &[(i64, f64)], now_ms: i64) -> String {
    let mut svg = format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" width=\"{CHART_WIDTH}\" height=\"{CHART_HEIGHT}\" \
         role=\"img\" aria-label=\"{}\">",
        escape(caption),
        escape(caption)
    );
    let plot_width = CHART_WIDTH - CHART_MARGIN_LEFT - 4.0;
    let plot_height = CHART_HEIGHT - CHART_MARGIN_BOTTOM - 6.0;
    let (left, top, bottom) = (CHART_MARGIN_LEFT, 6.0, 6.0 + plot_height);
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#888\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"#888\"/>",
        left + plot_width
    );
    if points.len() < 2 {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\">not enough samples yet (one per lag refresh)</text></svg></figure>",
            left + 10.0,
            top + plot_height / 2.0
        );
        return svg;
    }
    let (first, last) = (points[0].0, points[points.len() - 1].0);
    let span = (last - first).max(1) as f64;
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { plot_height / max } else { 0.0 };
    let mut path = String::new();
    for (at, value) in points {
        let x = left + (at - first) as f64 / span * plot_width;
        let y = bottom - value * scale;
        let _ = write!(path, "{x:.1},{y:.1} ");
    }
    let ago = |at: i64| format!("-{}s", ((now_ms - at).max(0) + 500) / 1000);
    let _ = write!(
        svg,
        "<polyline class=\"series\" fill=\"none\" stroke=\"#2a6fdb\" stroke-width=\"2\" points=\"{}\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{} {}</text>\
         <text x=\"{}\" y=\"{bottom}\" font-size=\"11\" text-anchor=\"end\">0</text>\
         <text x=\"{left}\" y=\"{}\" font-size=\"11\">{}</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text></svg></figure>",
        path.trim_end(),
        left - 4.0,
        top + 10.0,
        format_value(max),
        escape(unit),
        left - 4.0,
        CHART_HEIGHT - 3.0,
        ago(first),
        left + plot_width,
        CHART_HEIGHT - 3.0,
        ago(last),
    );
    svg
}

fn format_value(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_scales_its_points_into_the_plot() {
        let svg = line_chart("lag <g>", "records", &[(0, 0.0), (5_000, 50.0), (10_000, 100.0)], 10_000);
        assert!(svg.contains("points=\"60.0,102.0 328.0,54.0 596.0,6.0\""), "{svg}");
        assert!(svg.contains(">100 records<") && svg.contains(">-10s<") && svg.contains(">-0s<"), "{svg}");
        assert!(svg.contains("lag &lt;g&gt;") && !svg.contains("<g>"));
        assert!(line_chart("x", "s", &[(0, 1.0)], 0).contains("not enough samples"));
    }
}
