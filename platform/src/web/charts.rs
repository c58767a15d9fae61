//! Report charts drawn on the server as SVG: bar, line, pie and funnel, readable without
//! JavaScript, each mark carrying a `<title>` (the browser's tooltip) with its exact figure.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::domain::reports::{Cell, ChartKind, Report};

/// Rows a chart draws at most; the table below it has them all.
const MAX_POINTS: usize = 40;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!(
            "{}…",
            s.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    }
}

/// A number shown on an axis: 1234567 → 1.2M.
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}B", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The series to draw: (label, values per row), and the row labels, plus a note when only
/// part of the table is drawn.
struct Data {
    labels: Vec<String>,
    series: Vec<(String, Vec<f64>)>,
    note: Option<String>,
}

fn data(r: &Report) -> Option<Data> {
    let t = &r.table;
    let label = t.index(&r.chart.label)?;
    let values: Vec<usize> = r.chart.values.iter().filter_map(|k| t.index(k)).collect();
    if values.is_empty() || t.rows.is_empty() {
        return None;
    }
    // why: amounts in different currencies are never drawn on one axis; the chart keeps
    // the most common currency's rows and says so.
    let mut rows: Vec<&Vec<Cell>> = t.rows.iter().collect();
    let mut note = None;
    if let Some(cur) = t.index("currency") {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for row in &rows {
            let c = row[cur].text();
            match counts.iter_mut().find(|x| x.0 == c) {
                Some(x) => x.1 += 1,
                None => counts.push((c, 1)),
            }
        }
        if counts.len() > 1 {
            counts.sort_by_key(|c| std::cmp::Reverse(c.1));
            let keep = counts[0].0.clone();
            rows.retain(|row| row[cur].text() == keep);
            note = Some(format!(
                "The chart shows the {keep} rows; the table has every currency."
            ));
        }
    }
    if rows.len() > MAX_POINTS {
        note = Some(format!(
            "The chart shows the first {MAX_POINTS} of {} rows; the table has them all.",
            rows.len()
        ));
        rows.truncate(MAX_POINTS);
    }
    let num = |c: &Cell| c.number().and_then(|d: Decimal| d.to_f64()).unwrap_or(0.0);
    Some(Data {
        labels: rows.iter().map(|row| row[label].text()).collect(),
        series: values
            .iter()
            .map(|&i| {
                (
                    t.columns[i].label.clone(),
                    rows.iter().map(|row| num(&row[i])).collect(),
                )
            })
            .collect(),
        note,
    })
}

const W: f64 = 720.0;
const H: f64 = 280.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 56.0;
const TOP: f64 = 16.0;

fn open(title: &str, h: f64) -> String {
    format!(
        r#"<svg class="chart report-chart" viewBox="0 0 {W} {h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    )
}

fn legend(series: &[(String, Vec<f64>)]) -> String {
    if series.len() < 2 {
        return String::new();
    }
    let mut s = String::from(r#"<p class="legend small">"#);
    for (i, (name, _)) in series.iter().enumerate() {
        s.push_str(&format!(
            r#"<span class="key s{}"></span> {} "#,
            i % 6,
            esc(name)
        ));
    }
    s.push_str("</p>");
    s
}

/// The chart of a report, with its legend and note, or nothing for a table-only report.
pub fn svg(r: &Report) -> String {
    if r.chart.kind == ChartKind::Table {
        return String::new();
    }
    let Some(d) = data(r) else {
        return r#"<p class="muted empty-chart">Nothing to draw for this period.</p>"#.into();
    };
    let body = match r.chart.kind {
        ChartKind::Pie => pie(&r.title, &d),
        ChartKind::Funnel => funnel(&r.title, &d),
        ChartKind::Line => line(&r.title, &d),
        _ => bars(&r.title, &d),
    };
    let mut out = body;
    if r.chart.kind != ChartKind::Pie {
        out.push_str(&legend(&d.series));
    }
    if let Some(n) = &d.note {
        out.push_str(&format!(r#"<p class="muted small">{}</p>"#, esc(n)));
    }
    out
}

/// The value range of the plot: from min(0, lowest) to the highest.
fn range(d: &Data) -> (f64, f64) {
    let all = d.series.iter().flat_map(|s| s.1.iter().copied());
    let (lo, hi) = all.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = (-nice(-lo), nice(hi));
    if hi - lo <= f64::EPSILON {
        (lo, lo + 4.0)
    } else {
        (lo, hi)
    }
}

/// The smallest "round" bound at or above `v` whose quarters are round too (1, 2, 2.5 or 5
/// times a power of ten, four steps), so axis labels read 0, 5, 10, 15, 20.
fn nice(v: f64) -> f64 {
    if v <= 0.0 {
        return if v == 0.0 { 0.0 } else { -nice(-v) };
    }
    let step = v / 4.0;
    let magnitude = 10f64.powf(step.log10().floor());
    let unit = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|u| u * magnitude >= step)
        .unwrap_or(10.0);
    let bound = unit * magnitude * 4.0;
    if bound < 4.0 && v >= 1.0 {
        4.0
    } else {
        bound
    }
}

fn grid(lo: f64, hi: f64) -> String {
    let plot = H - BOTTOM - TOP;
    let mut s = String::new();
    for i in 0..=4 {
        let v = lo + (hi - lo) * i as f64 / 4.0;
        let y = H - BOTTOM - plot * i as f64 / 4.0;
        s.push_str(&format!(
            r#"<line x1="{LEFT}" x2="{W}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            compact(v)
        ));
    }
    s
}

fn x_label(x: f64, label: &str, n: usize) -> String {
    let max = if n > 12 { 8 } else { 14 };
    let rotate = n > 8;
    let y = H - BOTTOM + 14.0;
    if rotate {
        format!(
            r#"<text x="{x:.1}" y="{y:.1}" class="axis" text-anchor="end" transform="rotate(-35 {x:.1} {y:.1})">{}</text>"#,
            esc(&short(label, max))
        )
    } else {
        format!(
            r#"<text x="{x:.1}" y="{y:.1}" class="axis" text-anchor="middle">{}</text>"#,
            esc(&short(label, max))
        )
    }
}

fn bars(title: &str, d: &Data) -> String {
    let (lo, hi) = range(d);
    let plot = H - BOTTOM - TOP;
    let y = |v: f64| H - BOTTOM - (v - lo) / (hi - lo) * plot;
    let n = d.labels.len();
    let slot = (W - LEFT - 8.0) / n.max(1) as f64;
    let k = d.series.len().max(1) as f64;
    let bw = (slot * 0.7 / k).max(2.0);
    let mut s = open(title, H);
    s.push_str(&grid(lo, hi));
    for (i, label) in d.labels.iter().enumerate() {
        let x0 = LEFT + slot * i as f64 + slot * 0.15;
        for (j, (name, values)) in d.series.iter().enumerate() {
            let v = values[i];
            let (top, bottom) = (y(v.max(0.0)), y(v.min(0.0)));
            s.push_str(&format!(
                r#"<rect x="{:.1}" y="{top:.1}" width="{bw:.1}" height="{:.1}" class="s{}"><title>{}: {} {}</title></rect>"#,
                x0 + bw * j as f64,
                (bottom - top).max(0.5),
                j % 6,
                esc(label),
                esc(name),
                format_value(v)
            ));
        }
        s.push_str(&x_label(LEFT + slot * i as f64 + slot / 2.0, label, n));
    }
    s.push_str("</svg>");
    s
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn line(title: &str, d: &Data) -> String {
    let (lo, hi) = range(d);
    let plot = H - BOTTOM - TOP;
    let y = |v: f64| H - BOTTOM - (v - lo) / (hi - lo) * plot;
    let n = d.labels.len();
    // why: the right margin leaves room for the last label's centred text.
    let step = if n > 1 {
        (W - LEFT - 60.0) / (n - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| LEFT + 24.0 + step * i as f64;
    let mut s = open(title, H);
    s.push_str(&grid(lo, hi));
    let every = n.div_ceil(12).max(1);
    for (i, label) in d.labels.iter().enumerate() {
        if i % every == 0 {
            s.push_str(&x_label(x(i), label, n.min(12)));
        }
    }
    for (j, (name, values)) in d.series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        s.push_str(&format!(
            r#"<polyline points="{}" class="line s{}"/>"#,
            points.join(" "),
            j % 6
        ));
        for (i, v) in values.iter().enumerate() {
            s.push_str(&format!(
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" class="s{}"><title>{}: {} {}</title></circle>"#,
                x(i),
                y(*v),
                j % 6,
                esc(&d.labels[i]),
                esc(name),
                format_value(*v)
            ));
        }
    }
    s.push_str("</svg>");
    s
}

fn pie(title: &str, d: &Data) -> String {
    let (name, values) = &d.series[0];
    let total: f64 = values.iter().filter(|v| **v > 0.0).sum();
    let h = 240.0;
    let mut s = open(title, h);
    let (cx, cy, r) = (130.0, 120.0, 100.0);
    if total <= 0.0 {
        s.push_str(&format!(
            r#"<circle cx="{cx}" cy="{cy}" r="{r}" class="grid-fill"/><text x="{cx}" y="{cy}" class="axis" text-anchor="middle">Nothing to show</text></svg>"#
        ));
        return s;
    }
    let mut angle = -std::f64::consts::FRAC_PI_2;
    let mut legend = String::new();
    for (i, v) in values.iter().enumerate() {
        if *v <= 0.0 {
            continue;
        }
        let share = v / total;
        let label = &d.labels[i];
        let tip = format!(
            "{}: {} {} ({:.1}%)",
            esc(label),
            esc(name),
            format_value(*v),
            share * 100.0
        );
        if share >= 0.9999 {
            s.push_str(&format!(
                r#"<circle cx="{cx}" cy="{cy}" r="{r}" class="s{}"><title>{tip}</title></circle>"#,
                i % 6
            ));
        } else {
            let end = angle + share * std::f64::consts::TAU;
            let (x1, y1) = (cx + r * angle.cos(), cy + r * angle.sin());
            let (x2, y2) = (cx + r * end.cos(), cy + r * end.sin());
            let large = if share > 0.5 { 1 } else { 0 };
            s.push_str(&format!(
                r#"<path d="M{cx},{cy} L{x1:.2},{y1:.2} A{r},{r} 0 {large} 1 {x2:.2},{y2:.2} Z" class="s{}"><title>{tip}</title></path>"#,
                i % 6
            ));
            angle = end;
        }
        let row = legend.matches("<rect").count() as f64;
        if row < 10.0 {
            let ly = 24.0 + row * 20.0;
            legend.push_str(&format!(
                r#"<rect x="270" y="{:.1}" width="12" height="12" class="s{}"/><text x="290" y="{:.1}" class="axis legend-text">{} — {:.0}%</text>"#,
                ly - 10.0,
                i % 6,
                ly,
                esc(&short(label, 40)),
                share * 100.0
            ));
        }
    }
    s.push_str(&legend);
    s.push_str("</svg>");
    s
}

fn funnel(title: &str, d: &Data) -> String {
    let values = &d.series[0].1;
    let max = values.iter().copied().fold(0.0f64, f64::max).max(1.0);
    let n = d.labels.len();
    let row_h = 34.0;
    let h = row_h * n as f64 + 8.0;
    let mut s = open(title, h);
    let (label_w, plot_w) = (170.0, W - 170.0 - 80.0);
    let first = values.first().copied().unwrap_or(0.0);
    for (i, label) in d.labels.iter().enumerate() {
        let v = values[i];
        let w = (v / max * plot_w).max(2.0);
        let x = label_w + (plot_w - w) / 2.0;
        let y = 4.0 + row_h * i as f64;
        let pct = if first > 0.0 {
            format!(" ({:.0}% of the first stage)", v / first * 100.0)
        } else {
            String::new()
        };
        s.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">{}</text><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" rx="3" class="s0"><title>{}: {}{pct}</title></rect><text x="{:.1}" y="{:.1}" class="axis">{}</text>"#,
            label_w - 8.0,
            y + row_h / 2.0 + 4.0,
            esc(&short(label, 24)),
            row_h - 6.0,
            esc(label),
            format_value(v),
            label_w + plot_w + 8.0,
            y + row_h / 2.0 + 4.0,
            format_value(v)
        ));
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reports::{Chart, ColKind, Column, Table};
    use chrono::NaiveDate;

    fn report(kind: ChartKind, rows: Vec<(&str, &str, i64)>) -> Report {
        Report {
            kind: "t".into(),
            title: "T <x>".into(),
            from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
            table: Table {
                columns: vec![
                    Column::new("label", "Label", ColKind::Text),
                    Column::new("currency", "Currency", ColKind::Text),
                    Column::new("n", "N", ColKind::Count),
                ],
                rows: rows
                    .into_iter()
                    .map(|(l, c, n)| vec![Cell::Text(l.into()), Cell::Text(c.into()), Cell::Int(n)])
                    .collect(),
            },
            chart: Chart {
                kind,
                label: "label".into(),
                values: vec!["n".into()],
            },
            note: String::new(),
        }
    }

    #[test]
    fn every_mark_has_a_tooltip_and_names_are_escaped() {
        let r = report(
            ChartKind::Bar,
            vec![("<b>Ann</b>", "EUR", 3), ("Bob", "EUR", 5)],
        );
        let s = svg(&r);
        assert_eq!(s.matches("<rect").count(), 2);
        assert!(s.contains("&lt;b&gt;Ann&lt;/b&gt;: N 3"), "{s}");
        assert!(!s.contains("<b>"));
        for kind in [ChartKind::Line, ChartKind::Pie] {
            let s = svg(&report(kind, vec![("A", "EUR", 3), ("B", "EUR", 5)]));
            assert!(s.contains("B: N 5"), "{kind:?}: {s}");
        }
        let s = svg(&report(
            ChartKind::Funnel,
            vec![("A", "EUR", 5), ("B", "EUR", 3)],
        ));
        assert!(s.contains("B: 3 (60% of the first stage)"), "{s}");
    }

    #[test]
    fn currencies_are_never_drawn_on_one_axis() {
        let r = report(
            ChartKind::Bar,
            vec![("A", "EUR", 3), ("B", "USD", 5), ("C", "EUR", 1)],
        );
        let s = svg(&r);
        assert_eq!(s.matches("<rect").count(), 2);
        assert!(s.contains("shows the EUR rows"));
    }
}
