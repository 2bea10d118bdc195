//! Daemons and builders the models share.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use bytes::Bytes;
use replica_router::*;

/// The panic message of [`Flaky`]'s `panic` payload.
pub const DAEMON_PANIC: &str = "daemon panicked on purpose";

/// Echoes its payload; payload `fail` fails, payload `panic` panics.
#[derive(Debug, Default)]
pub struct Flaky;

impl MeshDaemon for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }

    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        match &event.payload()[..] {
            b"fail" => Err(DaemonError::ProcessFailed("asked to fail".into())),
            b"panic" => std::panic::panic_any(DAEMON_PANIC),
            _ => Ok(vec![event.payload().clone()]),
        }
    }
}

/// Runs `f` under loom in every interleaving loom explores, and prints how
/// many that was. Preemptions are bounded by `LOOM_MAX_PREEMPTIONS`, 2 when
/// it is unset (unbounded exploration of these models does not finish).
pub fn model<F>(name: &str, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{name}: {} executions (preemption bound {:?})",
        executions.load(Ordering::Relaxed),
        builder.preemption_bound
    );
}

/// A started runtime over nodes `1..=nodes` with the `flaky` factory.
pub fn runtime(nodes: u64) -> DaemonRuntime {
    quiet_daemon_panics();
    let runtime = DaemonRuntime::new((1..=nodes).map(NodeInfo::new));
    runtime
        .register_factory("flaky", || Box::new(Flaky))
        .expect("register");
    runtime.start().expect("start");
    runtime
}

/// A group config: `count` replicas, seed `[seed; 32]`, `strategy`, `host`.
pub fn config(
    count: u8,
    seed: u8,
    strategy: Strategy,
    host: DaemonHostConfig,
) -> ReplicaGroupConfig {
    ReplicaGroupConfig {
        replica_count: count,
        group_seed: [seed; 32],
        lb_strategy: strategy,
        host_config: host,
    }
}

/// Keeps the daemon's deliberate panics out of the output (a model runs them
/// once per execution); every other panic is reported as usual.
fn quiet_daemon_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&DAEMON_PANIC) {
                default(info);
            }
        }));
    });
}
