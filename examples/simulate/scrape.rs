//! `--metrics-addr HOST:PORT`: a Prometheus endpoint serving every replica's
//! statistics (`DaemonRuntime::record_metrics`), refreshed twice a second
//! while the run lasts.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use metrics_util::MetricKindMask;
use replica_router::DaemonRuntime;

/// Time between two recordings: a scrape sees figures at most this old.
const EVERY: Duration = Duration::from_millis(500);

/// Series not recorded for this long leave the scrape: those of a replica
/// that moved to another node (`node` is one of their labels) or was
/// removed by a rescale, which would otherwise keep their last values.
const IDLE: Duration = Duration::from_secs(5);

/// `--metrics-addr`'s parser: the first address `HOST:PORT` resolves to.
pub(crate) fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("{e} (expected HOST:PORT, e.g. 127.0.0.1:9000)"))?
        .next()
        .ok_or_else(|| format!("{text} resolves to no address"))
}

/// Installs the Prometheus exporter as the `metrics` recorder, serving
/// `http://addr/metrics` from a thread of its own until the process ends.
/// Recording needs the crate's `metrics` feature; without it this says how
/// to build with it.
pub(crate) fn serve(addr: SocketAddr) -> Result<(), String> {
    if cfg!(not(feature = "metrics")) {
        return Err(format!(
            "--metrics-addr needs the `metrics` feature: \
             cargo run --release --features metrics --example simulate -- --metrics-addr {addr}"
        ));
    }
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .idle_timeout(MetricKindMask::ALL, Some(IDLE))
        .install()
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
}

/// Records a runtime's statistics every [`EVERY`] on a thread of its own,
/// and once more when dropped, so the last scrape shows the final counts.
/// Drop it before the runtime shuts down.
#[derive(Debug)]
pub(crate) struct Recording {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Recording {
    pub(crate) fn start(runtime: &DaemonRuntime) -> Recording {
        let (stop, stopped) = mpsc::channel::<()>();
        let runtime = runtime.clone();
        let thread = thread::Builder::new()
            .name("metrics".into())
            .spawn(move || loop {
                record(&runtime);
                // A message or a hang-up: either way, the run is over.
                if stopped.recv_timeout(EVERY) != Err(RecvTimeoutError::Timeout) {
                    record(&runtime);
                    break;
                }
            })
            .map_err(|e| eprintln!("warning: no metrics recording: {e}"))
            .ok();
        Recording {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One recording of every replica's statistics. Without the `metrics`
/// feature [`serve`] fails first, so no recording is ever started.
fn record(runtime: &DaemonRuntime) {
    #[cfg(feature = "metrics")]
    runtime.record_metrics();
    #[cfg(not(feature = "metrics"))]
    let _ = runtime;
}
