//! Charts for BENCHMARKS.md as plain SVG text: horizontal bars with a range whisker, and lines
//! over a few x values. No plotting dependency; every figure comes from the suite's own numbers.

use std::fmt::Write as _;

const FONT: &str = "font-family=\"sans-serif\" font-size=\"12\"";
const COLOURS: [&str; 6] = [
    "#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2",
];
const LABEL_W: f64 = 230.0;
const PLOT_W: f64 = 420.0;
const ROW_H: f64 = 22.0;

/// One bar: a value and, when known, the range it comes from (the per-round ratios).
pub struct Bar {
    /// Shown at the left.
    pub label: String,
    /// The bar's length.
    pub value: f64,
    /// The range drawn as a whisker.
    pub range: Option<(f64, f64)>,
}

/// Bars under one heading, drawn in one colour.
pub struct Group {
    /// The heading.
    pub title: String,
    /// The bars.
    pub bars: Vec<Bar>,
}

/// A vertical reference line across all groups, with its label.
pub struct Mark {
    /// Where, on the value axis.
    pub at: f64,
    /// What it is.
    pub label: String,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The start of a chart: its size, a white background and the title.
fn open(width: f64, height: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" {FONT}>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        esc(title)
    )
}

/// Round tick steps: 1, 2 or 5 times a power of ten, about five ticks over `span`.
fn step(span: f64) -> f64 {
    let raw = span / 5.0;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

fn number(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Horizontal bars, one group under another, on one value axis from `lo` to `hi` (`None`: from
/// the data); `unit` names the axis. Each bar is labelled with its value.
pub fn bars(title: &str, unit: &str, groups: &[Group], marks: &[Mark], lo: Option<f64>) -> String {
    let values = groups
        .iter()
        .flat_map(|g| g.bars.iter())
        .flat_map(|b| [Some(b.value), b.range.map(|r| r.0), b.range.map(|r| r.1)])
        .flatten()
        .chain(marks.iter().map(|m| m.at))
        .filter(|v| v.is_finite());
    let (mut min, mut max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !min.is_finite() {
        (min, max) = (0.0, 1.0);
    }
    let lo = lo.unwrap_or(min.min(0.0));
    let st = step((max - lo).max(1e-9));
    let lo = (lo / st).floor() * st;
    let hi = (max / st).ceil() * st + if max % st == 0.0 { st } else { 0.0 };
    let x = |v: f64| LABEL_W + (v - lo) / (hi - lo) * PLOT_W;
    let rows: usize = groups.iter().map(|g| g.bars.len() + 1).sum();
    let top = 40.0;
    let plot_h = rows as f64 * ROW_H + 6.0;
    let height = top + plot_h + 44.0 + 16.0 * marks.len().min(2) as f64;
    let width = LABEL_W + PLOT_W + 90.0;
    let mut s = open(width, height, title);
    // Grid and ticks.
    let mut t = lo;
    while t <= hi + st / 2.0 {
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\" fill=\"#555\">{3}</text>",
            x(t),
            top + plot_h,
            top + plot_h + 14.0,
            number(t)
        );
        t += st;
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
        LABEL_W + PLOT_W / 2.0,
        top + plot_h + 32.0,
        esc(unit)
    );
    let mut y = top;
    for (gi, g) in groups.iter().enumerate() {
        let colour = COLOURS[gi % COLOURS.len()];
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
            y + 15.0,
            esc(&g.title)
        );
        y += ROW_H;
        for b in &g.bars {
            let (x0, x1) = (x(lo.max(0.0).min(b.value)), x(b.value));
            let _ = writeln!(
                s,
                "<text x=\"20\" y=\"{:.1}\">{}</text>\n\
                 <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>",
                y + 15.0,
                esc(&b.label),
                x0.min(x1),
                y + 4.0,
                (x1 - x0).abs().max(1.0),
                ROW_H - 8.0
            );
            let mut right = x1;
            if let Some((a, c)) = b.range {
                let _ = writeln!(
                    s,
                    "<line x1=\"{0:.1}\" y1=\"{2:.1}\" x2=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#222\"/>\n\
                     <line x1=\"{0:.1}\" y1=\"{3:.1}\" x2=\"{0:.1}\" y2=\"{4:.1}\" stroke=\"#222\"/>\n\
                     <line x1=\"{1:.1}\" y1=\"{3:.1}\" x2=\"{1:.1}\" y2=\"{4:.1}\" stroke=\"#222\"/>",
                    x(a),
                    x(c),
                    y + ROW_H / 2.0,
                    y + 6.0,
                    y + ROW_H - 6.0
                );
                right = right.max(x(c));
            }
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#222\">{}</text>",
                right + 5.0,
                y + 15.0,
                number(b.value)
            );
            y += ROW_H;
        }
    }
    for (i, m) in marks.iter().enumerate() {
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/>\n\
             <text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"middle\" fill=\"#c00\">{4}</text>",
            x(m.at),
            top - 4.0,
            top + plot_h,
            top + plot_h + 50.0 + (i % 2) as f64 * 16.0,
            esc(&m.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One line of a [`lines`] chart: a name and a value per x (`None`: no point).
pub struct Series {
    /// Shown in the legend.
    pub name: String,
    /// One per x label.
    pub values: Vec<Option<f64>>,
}

/// Lines over the x labels `xs` (evenly spaced), on a logarithmic value axis: for values that
/// span orders of magnitude.
pub fn log_lines(
    title: &str,
    x_unit: &str,
    unit: &str,
    xs: &[String],
    series: &[Series],
) -> String {
    let all = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .filter(|v| *v > 0.0);
    let (min, max) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if min.is_finite() {
        (
            10f64.powf(min.log10().floor()),
            10f64.powf(max.log10().ceil()),
        )
    } else {
        (1.0, 10.0)
    };
    let (left, top, w, h) = (70.0, 40.0, 460.0, 240.0);
    let y = |v: f64| top + h - (v.log10() - lo.log10()) / (hi.log10() - lo.log10()) * h;
    let x = |i: usize| left + 30.0 + i as f64 * (w - 60.0) / (xs.len().max(2) - 1) as f64;
    let width = left + w + 170.0;
    let height = top + h + 50.0;
    let mut s = open(width, height, title);
    let mut d = lo;
    while d <= hi * 1.001 {
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\" fill=\"#555\">{4}</text>",
            y(d),
            left + w,
            left - 6.0,
            y(d) + 4.0,
            number(d)
        );
        d *= 10.0;
    }
    for (i, l) in xs.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            x(i),
            top + h + 16.0,
            esc(l)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n\
         <text x=\"14\" y=\"{:.1}\" fill=\"#555\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>",
        left + w / 2.0,
        top + h + 36.0,
        esc(x_unit),
        top + h / 2.0,
        top + h / 2.0,
        esc(unit)
    );
    for (si, se) in series.iter().enumerate() {
        let colour = COLOURS[si % COLOURS.len()];
        let pts: Vec<String> = se
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.filter(|v| *v > 0.0)
                    .map(|v| format!("{:.1},{:.1}", x(i), y(v)))
            })
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            pts.join(" ")
        );
        for p in &pts {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                s,
                "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{colour}\"/>"
            );
        }
        let ly = top + 10.0 + si as f64 * 18.0;
        let _ = writeln!(
            s,
            "<line x1=\"{0}\" y1=\"{1:.1}\" x2=\"{2}\" y2=\"{1:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/>\n\
             <text x=\"{3}\" y=\"{4:.1}\">{5}</text>",
            left + w + 15.0,
            ly,
            left + w + 35.0,
            left + w + 40.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_well_formed_and_show_their_values() {
        let g = [Group {
            title: "1 connection".into(),
            bars: vec![Bar {
                label: "a <b>".into(),
                value: 1.02,
                range: Some((0.97, 1.05)),
            }],
        }];
        let svg = bars(
            "t",
            "ratio",
            &g,
            &[Mark {
                at: 1.0,
                label: "floor".into(),
            }],
            None,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt;b&gt;") && svg.contains(">1.02<"));
        let l = log_lines(
            "t",
            "K",
            "ns",
            &["0".into(), "100".into()],
            &[Series {
                name: "epoll".into(),
                values: vec![Some(300.0), None],
            }],
        );
        assert!(l.contains("polyline") && l.contains(">1000<"));
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(step(100.0), 20.0);
        assert_eq!(step(0.3), 0.1);
        assert_eq!(step(7.0), 2.0);
    }
}
