//! What the run shows while it lasts: the progress bar, fed every 100 ms,
//! and the log lines written around it.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;

use crate::chaos::ChaosLive;
use crate::report::{self, Sample};
use crate::workload::Live;
use crate::Args;

/// The progress bar: hidden with `--json` or when stderr is not a terminal.
pub(crate) fn bar(args: &Args) -> ProgressBar {
    if args.json || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::with_draw_target(
        Some(args.seconds * 1000),
        ProgressDrawTarget::stderr_with_hz(8),
    )
}

/// A spinner with `message`, for a phase of unknown length (hidden like the bar).
pub(crate) fn spinner(args: &Args, message: &'static str) -> ProgressBar {
    if args.json || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner().with_message(message);
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}

/// Shows the run's length on the bar, which it fills as time passes.
pub(crate) fn start(bar: &ProgressBar, args: &Args) {
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner:.green} {elapsed:>3}/{prefix} [{wide_bar:.cyan/blue}] {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}s", args.seconds));
}

/// Logs go to stderr, around the progress bar; `RUST_LOG` picks what is
/// shown (default: warnings only, so the report stays clean).
pub(crate) fn init_tracing(bar: ProgressBar) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("warning: ignoring RUST_LOG={spec:?}: {e}");
            EnvFilter::new("warn")
        }),
        Err(_) => EnvFilter::new("warn"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(move || BarWriter(bar.clone()))
        .init();
}

/// Writes a log line with the progress bar lifted out of the way.
struct BarWriter(ProgressBar);

impl Write for BarWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.suspend(|| io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Samples throughput and failovers every 100 ms for the progress bar and
/// the plot, until the run's time is up.
pub(crate) fn watch(
    args: &Args,
    bar: &ProgressBar,
    started: Instant,
    live: &[CachePadded<Live>],
    chaos: &ChaosLive,
) -> Vec<Sample> {
    let deadline = started + Duration::from_secs(args.seconds);
    let mut series = Vec::new();
    let (mut last_t, mut last_routed) = (0.0, 0);
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(100)));
        let t = started.elapsed().as_secs_f64();
        let routed: u64 = live.iter().map(|l| l.routed.load(Ordering::Relaxed)).sum();
        let rejected: u64 = live
            .iter()
            .map(|l| l.rejected.load(Ordering::Relaxed))
            .sum();
        let rate = (routed - last_routed) as f64 / (t - last_t);
        let failovers = chaos.failovers.load(Ordering::Relaxed);
        series.push(Sample {
            t,
            events_per_sec: rate,
            failovers,
        });
        (last_t, last_routed) = (t, routed);
        bar.set_position((t * 1000.0) as u64);
        bar.set_message(format!(
            "{:>6} events/s · {} failovers · {}/{} nodes down · {} rejected",
            report::si(rate),
            failovers,
            chaos.nodes_down.load(Ordering::Relaxed),
            chaos.nodes.load(Ordering::Relaxed),
            rejected,
        ));
    }
    series
}
