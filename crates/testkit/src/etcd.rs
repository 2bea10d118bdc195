//! A real etcd server on loopback, for tests, examples and local runs.
//!
//! The binary comes from the `etcd-bin-vendored` crate, so nothing is
//! installed by hand. The server listens on free 127.0.0.1 ports with a
//! temporary data directory, and is killed (and its directory removed) on
//! drop. Election settings are tuned for fast lease expiry (heartbeat 50 ms,
//! election timeout 250 ms), so a 1 s lease is allowed, and it skips fsync
//! (test data only), so long histories are quick to write.
//!
//! [`EtcdConfig`] turns on TLS (server certificate, and client certificates
//! checked against a CA: `--client-cert-auth`) and auto-compaction.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd server, killed on drop.
#[derive(Debug)]
pub struct LocalEtcd {
    child: Option<Child>,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    config: EtcdConfig,
}

/// TLS for the client port, PEM-encoded.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The server's certificate (valid for 127.0.0.1 / localhost).
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
    /// The CA client certificates must chain to (`--client-cert-auth`).
    pub client_ca_pem: String,
}

/// How to start etcd.
#[derive(Debug, Clone, Default)]
pub struct EtcdConfig {
    /// Serve clients over TLS and require client certificates.
    pub tls: Option<ServerTls>,
    /// `--auto-compaction-mode` and `--auto-compaction-retention`, e.g.
    /// `("revision", "1000")` or `("periodic", "1s")`.
    pub auto_compaction: Option<(String, String)>,
}

/// A port the OS says is free right now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalEtcd {
    /// Starts etcd and waits until it accepts connections (at most 15 s).
    pub fn start() -> io::Result<LocalEtcd> {
        Self::start_with(EtcdConfig::default())
    }

    /// Starts etcd as `config` says.
    pub fn start_with(config: EtcdConfig) -> io::Result<LocalEtcd> {
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("replica-router-etcd-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut etcd = LocalEtcd {
            child: None,
            dir,
            client_port: free_port()?,
            peer_port: free_port()?,
            config,
        };
        etcd.launch()?;
        Ok(etcd)
    }

    fn launch(&mut self) -> io::Result<()> {
        let binary = etcd_bin_vendored::etcd_bin_path()
            .map_err(|e| io::Error::new(io::ErrorKind::Unsupported, e.to_string()))?;
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(binary);
        if let Some(tls) = &self.config.tls {
            let file = |name: &str, pem: &str| -> io::Result<PathBuf> {
                let path = self.dir.join(name);
                std::fs::write(&path, pem)?;
                Ok(path)
            };
            command
                .arg("--cert-file")
                .arg(file("server.pem", &tls.cert_pem)?)
                .arg("--key-file")
                .arg(file("server-key.pem", &tls.key_pem)?)
                .arg("--trusted-ca-file")
                .arg(file("client-ca.pem", &tls.client_ca_pem)?)
                .arg("--client-cert-auth");
        }
        if let Some((mode, retention)) = &self.config.auto_compaction {
            command
                .args(["--auto-compaction-mode", mode])
                .args(["--auto-compaction-retention", retention]);
        }
        let child = command
            .args(["--name", "replica-router"])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("replica-router={peer}")])
            .args(["--heartbeat-interval", "50", "--election-timeout", "250"])
            .args(["--log-level", "error", "--unsafe-no-fsync"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.client_port));
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                self.kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("etcd did not listen on {addr} within 15 s"),
                ));
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(io::Error::other(format!("etcd exited at start: {status}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// The client URL, e.g. `http://127.0.0.1:40123` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// Kills the server at once (SIGKILL), keeping its data for [`restart`](Self::restart).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports and data, as after a crash.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.launch()
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
