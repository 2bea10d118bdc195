//! The connection to etcd: a thread of this crate's own that owns the etcd
//! client and a small tokio runtime. Everything else talks to it over
//! channels, so the blocking API works from any thread (a tokio worker
//! included: no runtime is ever entered or dropped there), and the async
//! API works on any executor.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::error::ClusterError;
use super::options::ClusterOptions;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Job = Box<dyn FnOnce(Client) -> BoxFuture + Send>;

enum Message {
    Run(Job),
    /// Runs `last` (bounded by the timeout), then stops every task.
    Close(Option<Job>),
}

/// A handle to submit work to the connection thread; cheap to clone.
#[derive(Clone)]
pub(crate) struct Jobs {
    sender: mpsc::UnboundedSender<Message>,
    timeout: Duration,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

fn job<F, Fut>(f: F) -> Job
where
    F: FnOnce(Client) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Box::new(move |client| Box::pin(f(client)))
}

impl Jobs {
    /// Runs `f` as a task of the connection thread (e.g. a watch loop).
    pub(crate) fn spawn<F, Fut>(&self, f: F) -> Result<(), ClusterError>
    where
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.sender
            .send(Message::Run(job(f)))
            .map_err(|_| ClusterError::Closed)
    }

    /// Runs one request and blocks until it answers, at most `within`.
    pub(crate) fn call_within<T, F, Fut>(&self, within: Duration, f: F) -> Result<T, ClusterError>
    where
        T: Send + 'static,
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClusterError>> + Send + 'static,
    {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.spawn(move |client| async move {
            let _ = tx.send(bounded(within, f(client)).await);
        })?;
        rx.recv_timeout(within + Duration::from_secs(1))
            .unwrap_or(Err(ClusterError::Closed))
    }

    /// Runs one request and awaits its answer, at most `within`, on any
    /// executor.
    pub(crate) async fn call_within_async<T, F, Fut>(
        &self,
        within: Duration,
        f: F,
    ) -> Result<T, ClusterError>
    where
        T: Send + 'static,
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClusterError>> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.spawn(move |client| async move {
            let _ = tx.send(bounded(within, f(client)).await);
        })?;
        rx.await.unwrap_or(Err(ClusterError::Closed))
    }

    /// Runs one request within the options' timeout, blocking.
    pub(crate) fn call<T, F, Fut>(&self, f: F) -> Result<T, ClusterError>
    where
        T: Send + 'static,
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClusterError>> + Send + 'static,
    {
        self.call_within(self.timeout, f)
    }
}

async fn bounded<T>(
    within: Duration,
    f: impl Future<Output = Result<T, ClusterError>>,
) -> Result<T, ClusterError> {
    tokio::time::timeout(within, f)
        .await
        .unwrap_or_else(|_| Err(ClusterError::Etcd(format!("no answer within {within:?}"))))
}

/// The connection thread; closing it (or dropping it) stops its tasks.
pub(crate) struct Connection {
    jobs: Jobs,
    done: Mutex<Option<std_mpsc::Receiver<()>>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts the thread `name` and connects, within `options.timeout`.
    pub(crate) fn open(options: &ClusterOptions, name: &str) -> Result<Connection, ClusterError> {
        options.check()?;
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        let (done_tx, done_rx) = std_mpsc::sync_channel(1);
        let (sender, receiver) = mpsc::unbounded_channel();
        let thread_options = options.clone();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                serve(thread_options, receiver, ready_tx);
                let _ = done_tx.send(());
            })
            .map_err(|e| ClusterError::Etcd(format!("cannot start thread {name}: {e}")))?;
        let waited = options.timeout + Duration::from_secs(1);
        ready_rx
            .recv_timeout(waited)
            .unwrap_or_else(|_| Err(unreachable(options, "no answer".into())))?;
        Ok(Connection {
            jobs: Jobs {
                sender,
                timeout: options.timeout,
            },
            done: Mutex::new(Some(done_rx)),
        })
    }

    pub(crate) fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Runs `last` (if any), stops every task, and waits up to `wait` for
    /// the thread to end. Never panics, in a runtime or not.
    pub(crate) fn close<F, Fut>(&self, last: Option<F>, wait: Duration)
    where
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let _ = self.jobs.sender.send(Message::Close(last.map(job)));
        if let Some(done) = self.done.lock().take() {
            let _ = done.recv_timeout(wait);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close(
            None::<fn(Client) -> std::future::Ready<()>>,
            Duration::from_secs(1),
        );
    }
}

/// The connection thread's body.
fn serve(
    options: ClusterOptions,
    mut receiver: mpsc::UnboundedReceiver<Message>,
    ready: std_mpsc::SyncSender<Result<(), ClusterError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(ClusterError::Etcd(format!("no tokio runtime: {e}"))));
            return;
        }
    };
    runtime.block_on(async move {
        let client = match connect(&options).await {
            Ok(client) => {
                let _ = ready.send(Ok(()));
                client
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        while let Some(message) = receiver.recv().await {
            match message {
                Message::Run(job) => {
                    tokio::spawn(job(client.clone()));
                }
                Message::Close(last) => {
                    if let Some(job) = last {
                        let _ = tokio::time::timeout(options.timeout, job(client.clone())).await;
                    }
                    break;
                }
            }
        }
    });
    // Dropped here, on this thread: the remaining tasks are cancelled.
    drop(runtime);
}

fn unreachable(options: &ClusterOptions, reason: String) -> ClusterError {
    ClusterError::Unreachable {
        endpoint: options.endpoints.join(","),
        waited: options.timeout,
        reason,
    }
}

/// The full text of an etcd error, its causes included (TLS failures hide
/// in the sources of a transport error).
fn describe(e: &etcd_client::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Sorts an etcd error into the typed error it means.
pub(crate) fn classify(options: &ClusterOptions, e: &etcd_client::Error) -> ClusterError {
    let text = describe(e);
    let lower = text.to_lowercase();
    let auth = [
        "authentication failed",
        "invalid auth token",
        "permission denied",
        "user name",
    ];
    if auth.iter().any(|needle| lower.contains(needle)) {
        let user = options.credentials.as_ref().map(|c| c.user.clone());
        return ClusterError::AuthFailed {
            user: user.unwrap_or_default(),
            reason: text,
        };
    }
    let tls = [
        "certificate",
        "tls",
        "handshake",
        "alert",
        "unknownissuer",
        "unknownca",
        "unknown ca",
        "pem",
    ];
    if options.tls.is_some() && tls.iter().any(|needle| lower.contains(needle)) {
        return ClusterError::Tls {
            endpoint: options.endpoints.join(","),
            reason: text,
        };
    }
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
            unreachable(options, text)
        }
        // tonic reports a connection lost mid-request as status Unknown
        // with the message "transport error".
        etcd_client::Error::GRpcStatus(status)
            if format!("{:?}", status.code()) == "Unavailable"
                || status.message() == "transport error" =>
        {
            unreachable(options, text)
        }
        etcd_client::Error::InvalidArgs(_) | etcd_client::Error::InvalidUri(_) => {
            ClusterError::InvalidOptions(text)
        }
        _ => ClusterError::Etcd(text),
    }
}

/// Whether an error's text says the server closed the connection.
fn closed_by_peer(text: &str) -> bool {
    let lower = text.to_lowercase();
    ["connection closed", "broken pipe", "connection reset"]
        .iter()
        .any(|closed| lower.contains(closed))
}

fn connect_options(options: &ClusterOptions) -> ConnectOptions {
    let mut connect = ConnectOptions::new()
        .with_connect_timeout(options.timeout)
        .with_timeout(options.timeout)
        .with_auto_token_refresh(true);
    if let Some(credentials) = &options.credentials {
        connect = connect.with_user(credentials.user.clone(), credentials.password.clone());
    }
    if let Some(tls) = &options.tls {
        let mut config = TlsOptions::new();
        if let Some(ca) = &tls.ca_pem {
            config = config.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some((cert, key)) = &tls.identity_pem {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &tls.domain {
            config = config.domain_name(domain.clone());
        }
        connect = connect.with_tls(config);
    }
    connect
}

/// Connects and checks etcd answers (and lets this user read the prefix),
/// within `options.timeout`.
async fn connect(options: &ClusterOptions) -> Result<Client, ClusterError> {
    let attempt = async {
        let mut client =
            Client::connect(&options.endpoints, Some(connect_options(options))).await?;
        client.get(options.prefix.as_bytes(), None).await?;
        Ok::<_, etcd_client::Error>(client)
    };
    match tokio::time::timeout(options.timeout, attempt).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(match classify(options, &e) {
            // With TLS 1.3 etcd checks the client certificate after the
            // handshake, and refuses it by closing the connection: the
            // first request then finds it closed, or a broken pipe.
            ClusterError::Etcd(text) | ClusterError::Unreachable { reason: text, .. }
                if options.tls.is_some() && closed_by_peer(&text) =>
            {
                ClusterError::Tls {
                    endpoint: options.endpoints.join(","),
                    reason: format!("etcd closed the connection (is the client certificate one it trusts?): {text}"),
                }
            }
            other => other,
        }),
        Err(_) => Err(unreachable(options, "timed out".into())),
    }
}
