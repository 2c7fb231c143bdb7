//! A latency chart as a plain SVG: p50, p99 and p99.9 of the HIT, MISS and limit scenarios, on a
//! log scale, so the gap shows at a glance.

use std::fmt::Write;

use crate::harness::Report;

const SHOWN: [&str; 6] = [
    "limit: minimal axum",
    "limit: bare route",
    "1 ticket HIT",
    "2 ticket MISS",
    "4 kpi-90d HIT",
    "4 kpi-90d MISS",
];

pub fn latency_chart(report: &Report) -> String {
    let rows: Vec<_> = SHOWN
        .iter()
        .filter_map(|name| report.scenarios.iter().find(|s| s.name == *name))
        .collect();
    let (width, row_height, left, right) = (900.0, 54.0, 190.0, 40.0);
    let height = 70.0 + row_height * rows.len() as f64 + 40.0;
    let max = rows
        .iter()
        .map(|s| s.measured.p999_us)
        .fold(10.0_f64, f64::max);
    let (lo, hi) = (1.0_f64.log10(), max.log10().ceil());
    let x = |us: f64| left + (us.max(1.0).log10() - lo) / (hi - lo) * (width - left - right);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="24" font-size="15">qa-pms latency under load ({backend}, {c} connections): p50 / p99 / p99.9, µs, log scale</text>
"#,
        backend = report.backend,
        c = report.connections
    );
    for (i, (label, color)) in [("p50", "#2b8cbe"), ("p99", "#f39c12"), ("p99.9", "#c0392b")]
        .into_iter()
        .enumerate()
    {
        let lx = width - 230.0 + 70.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.1}" y="32" width="12" height="12" fill="{color}"/><text x="{tx:.1}" y="42">{label}</text>"#,
            tx = lx + 16.0
        );
    }
    let mut decade = 1.0;
    while decade <= 10f64.powf(hi) {
        let gx = x(decade);
        let _ = writeln!(
            svg,
            r##"<line x1="{gx:.1}" y1="40" x2="{gx:.1}" y2="{y2:.1}" stroke="#ddd"/><text x="{gx:.1}" y="{ty:.1}" text-anchor="middle" fill="#555">{decade}</text>"##,
            y2 = height - 35.0,
            ty = height - 18.0
        );
        decade *= 10.0;
    }
    for (i, s) in rows.iter().enumerate() {
        let y = 50.0 + row_height * i as f64;
        let _ = writeln!(svg, r#"<text x="10" y="{:.1}">{}</text>"#, y + 24.0, s.name);
        for (j, (value, color)) in [
            (s.measured.p50_us, "#2b8cbe"),
            (s.measured.p99_us, "#f39c12"),
            (s.measured.p999_us, "#c0392b"),
        ]
        .into_iter()
        .enumerate()
        {
            let by = y + 4.0 + 14.0 * j as f64;
            let _ = writeln!(
                svg,
                r#"<rect x="{left}" y="{by:.1}" width="{w:.1}" height="12" fill="{color}"/><text x="{tx:.1}" y="{ty:.1}" font-size="10">{value:.0}</text>"#,
                w = (x(value) - left).max(1.0),
                tx = x(value) + 4.0,
                ty = by + 10.0
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}
