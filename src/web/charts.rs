//! Bar charts as geometry for the SVG the templates draw: no script, no external library, and
//! a `<title>` on every bar so that its numbers are one hover (or one screen-reader step) away.

/// Width and height of the drawing area, in SVG user units (the SVG scales to its box).
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 160.0;
/// Room under the bars for the axis labels.
const LABEL_ROOM: f64 = 18.0;

/// One series of a stacked bar chart: its CSS class and legend label.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    pub class: &'static str,
    pub label: &'static str,
}

/// Events by outcome: failures, successes, and the rest (notices, sessions…).
pub const OUTCOMES: [Series; 3] = [
    Series {
        class: "bad",
        label: "failures",
    },
    Series {
        class: "ok",
        label: "successes",
    },
    Series {
        class: "other",
        label: "other events",
    },
];

/// One column: a label and one value per series.
#[derive(Debug, Clone)]
pub struct Column {
    pub label: String,
    pub values: Vec<u64>,
}

/// A drawn rectangle.
#[derive(Debug, Clone, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub class: &'static str,
    /// Tooltip text: the column's label and the series' value.
    pub title: String,
}

/// An axis label.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub x: f64,
    pub text: String,
}

/// A stacked bar chart ready to draw.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub width: f64,
    pub height: f64,
    pub rects: Vec<Rect>,
    pub labels: Vec<Label>,
    pub series: Vec<Series>,
    /// The value at the top of the scale.
    pub max: u64,
    /// A sentence describing the chart, for screen readers.
    pub summary: String,
}

impl BarChart {
    /// Stacks each column's values (in `series` order) from the bottom; at most `max_labels`
    /// column labels are drawn, evenly spaced.
    #[must_use]
    pub fn stacked(
        series: &[Series],
        columns: &[Column],
        max_labels: usize,
        summary: String,
    ) -> Self {
        let max = columns
            .iter()
            .map(|c| c.values.iter().sum::<u64>())
            .max()
            .unwrap_or(0);
        let plot = HEIGHT - LABEL_ROOM;
        let slot = WIDTH / columns.len().max(1) as f64;
        let gap = if slot > 4.0 { slot * 0.15 } else { 0.0 };
        let mut rects = Vec::new();
        for (i, column) in columns.iter().enumerate() {
            let x = i as f64 * slot + gap / 2.0;
            let mut top = plot;
            for (value, kind) in column.values.iter().zip(series) {
                if *value == 0 || max == 0 {
                    continue;
                }
                let height = (*value as f64 / max as f64 * plot).max(1.0);
                top -= height;
                rects.push(Rect {
                    x: round(x),
                    y: round(top),
                    width: round(slot - gap),
                    height: round(height),
                    class: kind.class,
                    title: format!("{}: {} {}", column.label, value, kind.label),
                });
            }
        }
        let every = columns.len().div_ceil(max_labels.max(1)).max(1);
        let labels = columns
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
            .map(|(i, c)| Label {
                // Kept clear of the edges, where a centred label would be cut.
                x: round((i as f64 * slot + slot / 2.0).clamp(16.0, WIDTH - 16.0)),
                text: c.label.clone(),
            })
            .collect();
        Self {
            width: WIDTH,
            height: HEIGHT,
            rects,
            labels,
            series: series.to_vec(),
            max,
            summary,
        }
    }

    /// Where the labels' baseline is.
    #[must_use]
    pub fn label_y(&self) -> f64 {
        self.height - 4.0
    }

    /// Whether there is nothing to draw.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: [Series; 2] = [
        Series {
            class: "bad",
            label: "failures",
        },
        Series {
            class: "ok",
            label: "successes",
        },
    ];

    fn column(label: &str, values: &[u64]) -> Column {
        Column {
            label: label.into(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn bars_stack_and_scale_to_the_tallest_column() {
        let chart = BarChart::stacked(
            &TWO,
            &[
                column("a", &[2, 2]),
                column("b", &[0, 0]),
                column("c", &[1, 0]),
            ],
            10,
            "test".into(),
        );
        assert_eq!(chart.max, 4);
        // Column a: two rects filling the plot; column b: none; column c: a quarter.
        assert_eq!(chart.rects.len(), 3);
        let plot = HEIGHT - LABEL_ROOM;
        let (fail, ok) = (&chart.rects[0], &chart.rects[1]);
        let close = |a: f64, b: f64| (a - b).abs() < 0.11;
        assert!(close(fail.height + ok.height, plot));
        assert!(
            close(ok.y + ok.height, fail.y),
            "successes sit on the failures"
        );
        assert_eq!(fail.title, "a: 2 failures");
        assert!(close(chart.rects[2].height, plot / 4.0));
        assert!(chart.rects[2].x > ok.x);
        assert_eq!(chart.labels.len(), 3);
    }

    #[test]
    fn labels_are_thinned_and_an_empty_chart_draws_nothing() {
        let columns: Vec<Column> = (0..24).map(|h| column(&h.to_string(), &[0, 0])).collect();
        let chart = BarChart::stacked(&TWO, &columns, 6, "test".into());
        assert!(chart.is_empty());
        assert_eq!(chart.labels.len(), 6);
        assert_eq!(chart.labels[1].text, "4");
    }
}
