//! Node processes as real OS processes, for cluster-mode tests and examples:
//! the parent starts a child (often its own executable, in a child role) and
//! reads the status lines it reports; the child reports until the parent
//! lets go of it.
//!
//! The protocol is one line per report, `STATUS` and then numbers separated
//! by spaces; what each number means is the caller's business.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A child process that reports `STATUS` lines; killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct ReportingProcess {
    child: Child,
    last: Arc<Mutex<Option<Vec<u64>>>>,
}

impl ReportingProcess {
    /// Starts `command` with its stdin and stdout piped, and reads its
    /// reports in the background.
    pub fn start(command: &mut Command) -> io::Result<ReportingProcess> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let last = Arc::new(Mutex::new(None));
        let (out, reports) = (child.stdout.take().expect("piped"), Arc::clone(&last));
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(numbers) = parse(&line) {
                    *reports.lock().expect("report lock") = Some(numbers);
                }
            }
        });
        Ok(ReportingProcess { child, last })
    }

    /// The numbers of the last report, if there was one since the start
    /// (or since [`kill`](Self::kill)).
    pub fn last_report(&self) -> Option<Vec<u64>> {
        self.last.lock().expect("report lock").clone()
    }

    /// The last report as exactly `N` numbers, if it has that many.
    pub fn last_array<const N: usize>(&self) -> Option<[u64; N]> {
        self.last_report()?.try_into().ok()
    }

    /// SIGKILL: no goodbye (a node's lease is left to expire). Forgets the
    /// last report.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        *self.last.lock().expect("report lock") = None;
    }
}

impl Drop for ReportingProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The numbers of a `STATUS` line; `None` for any other line.
fn parse(line: &str) -> Option<Vec<u64>> {
    let mut fields = line.split_whitespace();
    (fields.next()? == "STATUS").then_some(())?;
    fields.map(|f| f.parse().ok()).collect()
}

/// In the child: every `every`, prints `STATUS` and the numbers `report`
/// gives, until the parent closes the child's stdin (or its stdout).
pub fn report_status(every: Duration, mut report: impl FnMut() -> Vec<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    thread::spawn(move || {
        let _ = io::stdin().read_line(&mut String::new());
        s.store(true, Ordering::SeqCst);
    });
    let mut out = io::stdout();
    while !stop.load(Ordering::SeqCst) {
        let numbers: Vec<String> = report().iter().map(u64::to_string).collect();
        let line = format!("STATUS {}\n", numbers.join(" "));
        if out
            .write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
        thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn status_lines_parse_and_other_lines_do_not() {
        assert_eq!(
            parse("STATUS 7 18446744073709551615 0"),
            Some(vec![7, u64::MAX, 0])
        );
        assert_eq!(parse("STATUS"), Some(vec![]));
        assert_eq!(parse("STATUS 1 x"), None);
        assert_eq!(parse("running 1 test"), None);
    }
}
