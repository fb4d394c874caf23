//! The CRI clients pullgate has accepted, known by their peer credentials
//! (`SO_PEERCRED`: the pid and uid of the process that called `connect`).
//!
//! A kubelet whose endpoint is not pullgate's socket never shows up here, which is the
//! one sign of a bypassed gate that no configuration file can fake. pullgate keeps the
//! record in a small JSON state file beside its socket (`pullgate.sock` →
//! `pullgate.clients.json`, so `/run/pullgate/pullgate.clients.json` by default: the
//! socket's directory is one pullgate must be able to write to anyway, and
//! `pullgate doctor` finds it from the same config file without a new setting), and
//! counts the connections in metrics so an alert can fire on a node where the kubelet
//! never comes through.
//!
//! ```json
//! {"version":1,"socket":"/run/pullgate/pullgate.sock","clients":[
//!   {"pid":812,"uid":0,"comm":"kubelet","start_ticks":2711,
//!    "first_connect":1767225600,"last_connect":1767225600,"connections":2}]}
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// Client processes kept in the state file, most recent connection first. A node has
/// one kubelet and the odd `crictl`; 64 leaves room for many kubelet restarts and
/// tools before the oldest entries go, and keeps the file a few kilobytes.
pub const MAX_CLIENTS: usize = 64;

/// The state file format; a reader refuses other versions rather than guess.
pub const STATE_FILE_VERSION: u32 = 1;

/// Largest state file a reader accepts (64 records are about 10 KiB).
const MAX_STATE_FILE_BYTES: u64 = 1 << 20;

/// The process name the kubelet runs under (`/proc/<pid>/comm`).
pub const KUBELET_COMM: &str = "kubelet";

/// Why the state file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a pullgate client record: {source}")]
    Format {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path}: state file version {found}, this pullgate reads version {STATE_FILE_VERSION}"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("{path}: larger than {MAX_STATE_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
}

/// One client process, identified by pid and start time (so a restarted kubelet that
/// happens to get an old pid back is a new record, not the old one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub pid: u32,
    pub uid: u32,
    /// `/proc/<pid>/comm` when it connected (`None` if the process was already gone).
    pub comm: Option<String>,
    /// Field 22 of `/proc/<pid>/stat`: clock ticks after boot at which it started.
    pub start_ticks: Option<u64>,
    /// Unix seconds.
    pub first_connect: u64,
    /// Unix seconds.
    pub last_connect: u64,
    /// Connections accepted from this process (the kubelet opens one for the runtime
    /// service and one for the image service).
    pub connections: u64,
}

/// The state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientsFile {
    pub version: u32,
    /// The socket the clients connected to.
    pub socket: PathBuf,
    /// Most recent connection first, at most [`MAX_CLIENTS`].
    pub clients: Vec<ClientRecord>,
}

impl ClientsFile {
    /// Reads and checks a state file.
    pub fn read(path: &Path) -> Result<ClientsFile, ClientsError> {
        let io = |source| ClientsError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_STATE_FILE_BYTES {
            return Err(ClientsError::TooLarge {
                path: path.to_owned(),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let format = |source| ClientsError::Format {
            path: path.to_owned(),
            source,
        };
        let Version { version } = serde_json::from_slice(&bytes).map_err(format)?;
        if version != STATE_FILE_VERSION {
            return Err(ClientsError::Version {
                path: path.to_owned(),
                found: version,
            });
        }
        serde_json::from_slice(&bytes).map_err(format)
    }

    /// The record of the process `pid` that started at `start_ticks`.
    pub fn find(&self, pid: u32, start_ticks: Option<u64>) -> Option<&ClientRecord> {
        self.clients
            .iter()
            .find(|c| c.pid == pid && same_start(c.start_ticks, start_ticks))
    }
}

/// Where the state file for `socket` lives: beside it, named after it.
pub fn state_file_path(socket: &Path) -> PathBuf {
    let stem = socket
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pullgate".to_owned());
    socket.with_file_name(format!("{stem}.clients.json"))
}

/// A connecting process as the kernel and procfs describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub pid: u32,
    pub uid: u32,
    pub comm: Option<String>,
    pub start_ticks: Option<u64>,
}

impl Peer {
    /// Fills in the name and start time of `pid` from `proc_root` (normally `/proc`).
    pub fn identify(proc_root: &Path, pid: u32, uid: u32) -> Peer {
        let dir = proc_root.join(pid.to_string());
        Peer {
            pid,
            uid,
            comm: std::fs::read_to_string(dir.join("comm"))
                .ok()
                .map(|c| c.trim_end_matches('\n').to_owned()),
            start_ticks: std::fs::read_to_string(dir.join("stat"))
                .ok()
                .and_then(|stat| start_ticks(&stat)),
        }
    }

    pub fn is_kubelet(&self) -> bool {
        self.comm.as_deref() == Some(KUBELET_COMM)
    }
}

/// Field 22 (`starttime`) of a `/proc/<pid>/stat` line. The second field, the
/// command name in parentheses, may itself contain spaces and parentheses, so the
/// fields are counted from the last `)`.
pub fn start_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards; starttime is field 22.
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Start times compare equal when both are known and equal; an unknown one cannot
/// tell two processes apart, so it matches.
fn same_start(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// The clients seen so far, in memory; [`ClientLog::write`] persists them.
#[derive(Debug)]
pub struct ClientLog {
    path: PathBuf,
    socket: PathBuf,
    clients: Mutex<Vec<ClientRecord>>,
}

impl ClientLog {
    /// A log for `socket`, written to [`state_file_path`]`(socket)`.
    pub fn new(socket: &Path) -> ClientLog {
        ClientLog {
            path: state_file_path(socket),
            socket: socket.to_owned(),
            clients: Mutex::new(Vec::new()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one accepted connection from `peer` at `now` (unix seconds).
    pub fn connected(&self, peer: &Peer, now: u64) {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let record = match clients
            .iter()
            .position(|c| c.pid == peer.pid && same_start(c.start_ticks, peer.start_ticks))
        {
            Some(index) => {
                let mut record = clients.remove(index);
                record.last_connect = now;
                record.connections = record.connections.saturating_add(1);
                record
            }
            None => {
                // A different process with the same pid is gone: its record goes too.
                clients.retain(|c| c.pid != peer.pid);
                ClientRecord {
                    pid: peer.pid,
                    uid: peer.uid,
                    comm: peer.comm.clone(),
                    start_ticks: peer.start_ticks,
                    first_connect: now,
                    last_connect: now,
                    connections: 1,
                }
            }
        };
        clients.insert(0, record);
        clients.truncate(MAX_CLIENTS);
    }

    pub fn snapshot(&self) -> ClientsFile {
        ClientsFile {
            version: STATE_FILE_VERSION,
            socket: self.socket.clone(),
            clients: self
                .clients
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    /// Writes the state file atomically: a reader sees the old file or the new one,
    /// never a half-written one (temporary file in the same directory, then rename).
    pub fn write(&self) -> Result<(), ClientsError> {
        let io = |source| ClientsError::Io {
            path: self.path.clone(),
            source,
        };
        let json = serde_json::to_vec(&self.snapshot()).map_err(|source| ClientsError::Format {
            path: self.path.clone(),
            source,
        })?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, json).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

/// What the accept loop calls for each connection: records the peer, counts it in
/// the metrics and asks for the state file to be rewritten.
#[derive(Clone)]
pub struct ClientTracker {
    log: Arc<ClientLog>,
    metrics: Arc<Metrics>,
    changed: Arc<tokio::sync::watch::Sender<()>>,
}

/// Held for as long as a connection is open; lowers the open-connections gauge when
/// dropped, also when the connection task is cancelled at shutdown.
pub struct OpenConnection {
    metrics: Arc<Metrics>,
    kubelet: bool,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.cri_client_disconnected(self.kubelet);
    }
}

impl ClientTracker {
    /// A tracker for `socket` and the task that writes the state file whenever a new
    /// connection was recorded (bursts coalesce into one write). The task writes once
    /// at start, so a running pullgate always has a state file, even before any client.
    pub fn new(
        socket: &Path,
        metrics: Arc<Metrics>,
    ) -> (ClientTracker, impl std::future::Future<Output = ()>) {
        let log = Arc::new(ClientLog::new(socket));
        let (changed, mut receiver) = tokio::sync::watch::channel(());
        receiver.mark_changed();
        let writer_log = Arc::clone(&log);
        let writer = async move {
            while receiver.changed().await.is_ok() {
                let log = Arc::clone(&writer_log);
                match tokio::task::spawn_blocking(move || log.write()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "cannot write the CRI client record");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "writing the CRI client record failed");
                    }
                }
            }
        };
        (
            ClientTracker {
                log,
                metrics,
                changed: Arc::new(changed),
            },
            writer,
        )
    }

    /// Records a connection whose peer credentials are `credentials` (the accepted
    /// stream's `peer_cred()`); without a pid the connection is only counted.
    pub fn connected(
        &self,
        credentials: Option<tokio::net::unix::UCred>,
        now: SystemTime,
    ) -> OpenConnection {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let peer = credentials.and_then(|cred| {
            let pid = u32::try_from(cred.pid()?).ok()?;
            // procfs reads are served from memory, never wait on a disk.
            Some(Peer::identify(Path::new("/proc"), pid, cred.uid()))
        });
        let kubelet = peer.as_ref().is_some_and(Peer::is_kubelet);
        // Counted before the record is written, so a reader who sees the record also
        // sees the count.
        self.metrics.cri_client_connected(kubelet, now);
        match &peer {
            Some(peer) => {
                tracing::debug!(
                    pid = peer.pid,
                    uid = peer.uid,
                    comm = peer.comm.as_deref().unwrap_or("-"),
                    "CRI client connected"
                );
                self.log.connected(peer, now);
                self.changed.send_replace(());
            }
            None => tracing::debug!("CRI client connected; its pid is unknown"),
        }
        OpenConnection {
            metrics: Arc::clone(&self.metrics),
            kubelet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(pid: u32, start: u64) -> Peer {
        Peer {
            pid,
            uid: 0,
            comm: Some("kubelet".into()),
            start_ticks: Some(start),
        }
    }

    #[test]
    fn state_file_sits_beside_the_socket() {
        assert_eq!(
            state_file_path(Path::new("/run/pullgate/pullgate.sock")),
            Path::new("/run/pullgate/pullgate.clients.json")
        );
        assert_eq!(
            state_file_path(Path::new("/run/x/cri")),
            Path::new("/run/x/cri.clients.json")
        );
    }

    #[test]
    fn start_ticks_counts_fields_after_the_name() {
        // A real /proc/<pid>/stat line, with a name that has spaces and a ')'.
        let stat = "812 (kube let)) S 1 812 812 0 -1 4194560 55118 0 3 0 1563 1183 0 0 20 0 15 0 2711 2048311296 19000 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(start_ticks(stat), Some(2711));
        assert_eq!(start_ticks("812 (x) S 1"), None);
    }

    #[test]
    fn records_are_per_process_most_recent_first_and_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ClientLog::new(&dir.path().join("pullgate.sock"));
        log.connected(&peer(10, 1), 100);
        log.connected(&peer(11, 1), 101);
        log.connected(&peer(10, 1), 102);
        let file = log.snapshot();
        assert_eq!(file.clients.len(), 2);
        assert_eq!(file.clients[0].pid, 10);
        assert_eq!(
            (
                file.clients[0].first_connect,
                file.clients[0].last_connect,
                file.clients[0].connections
            ),
            (100, 102, 2)
        );
        // pid 10 reused by a new process: a fresh record replaces the old one.
        log.connected(&peer(10, 9), 103);
        let file = log.snapshot();
        assert_eq!(file.clients.len(), 2);
        assert_eq!(file.find(10, Some(9)).map(|c| c.connections), Some(1));
        assert!(file.find(10, Some(1)).is_none());

        for pid in 0..(MAX_CLIENTS as u32 + 10) {
            log.connected(&peer(1000 + pid, 1), 200 + u64::from(pid));
        }
        let file = log.snapshot();
        assert_eq!(file.clients.len(), MAX_CLIENTS);
        assert_eq!(file.clients[0].pid, 1000 + MAX_CLIENTS as u32 + 9);
    }

    #[test]
    fn written_file_reads_back_and_other_versions_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ClientLog::new(&dir.path().join("pullgate.sock"));
        log.connected(&peer(42, 7), 1_767_225_600);
        log.write().expect("write");
        let file = ClientsFile::read(log.path()).expect("read");
        assert_eq!(file, log.snapshot());
        assert!(!dir.path().join("pullgate.clients.json.tmp").exists());

        std::fs::write(log.path(), br#"{"version":2,"socket":"/x","clients":[]}"#).expect("w");
        match ClientsFile::read(log.path()) {
            Err(ClientsError::Version { found: 2, .. }) => {}
            other => panic!("expected a version error, got {other:?}"),
        }
    }
}
