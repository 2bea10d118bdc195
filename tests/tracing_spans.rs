//! Every writer change logs inside a span naming its group (issue 16): an
//! operator reading the logs sees which group a failover, a rescale or a
//! removal was about.

use std::io::Write;
use std::sync::{Arc, Mutex};

use replica_router::*;
use replica_router_testkit::support::*;

/// The log, shared with the subscriber's writer.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_group_change_is_logged_in_a_span_naming_the_group() {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter("replica_router=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let rt = runtime(4, 1);
    let group = ReplicaGroup::spawn(&rt, "echo", config(2, 77, Strategy::RoundRobin)).unwrap();
    group.scale_to(3).unwrap();
    rt.node_failed(group.replicas()[0].node_id).unwrap();
    group.remove().unwrap();
    rt.shutdown();
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let span = format!(
        "group_change{{group={:#010x} kind=\"echo\"}}",
        group.group_id()
    );
    for event in [
        "group spawned",
        "group scaled",
        "replica re-placed",
        "group failed over node",
        "group removed",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(event))
            .unwrap_or_else(|| panic!("no {event:?} in:\n{text}"));
        assert!(line.contains(&span), "{event:?} outside {span}: {line}");
    }
}
