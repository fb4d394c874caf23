//! A TCP relay on 127.0.0.1 that adds a fixed one-way delay to every chunk in
//! each direction, for benches that need real round trips on a machine whose
//! kernel has no `netem` qdisc (issue 13 item 2).
//!
//! Each accepted connection gets its own connection to the target. Bytes read on
//! one side are written to the other `one_way` later, in order; a half close is
//! passed on after the bytes before it. A real TCP handshake costs one round trip
//! before the first byte can flow, but `connect()` to the relay returns at once on
//! loopback, so the first chunk a client sends on a new connection is held one
//! extra round trip: opening a connection costs what it costs on a network, and
//! keeping connections warm shows up in the numbers.
//!
//! The relay also counts connections and HTTP/1 requests (a client-to-target chunk
//! that starts with a request line): enough for clients that send a request and
//! wait for its answer (no pipelining, no request bodies split across reads), which
//! is what registry pulls do.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Bytes read per chunk; a chunk is delayed as a whole.
const CHUNK_BYTES: usize = 64 * 1024;

/// HTTP/1 methods a request line may start with.
const METHODS: &[&str] = &["GET ", "HEAD ", "POST ", "PUT ", "PATCH ", "DELETE "];

#[derive(Default)]
struct Counts {
    connections: usize,
    /// Request lines (`GET /v2/… HTTP/1.1`), in the order they reached the relay.
    requests: Vec<String>,
    /// When each request line reached the relay (same order).
    arrivals: Vec<Instant>,
    /// When the last chunk from the target was handed to a client.
    last_delivery: Option<Instant>,
}

/// A running relay; dropped → it stops accepting (open connections run on).
pub struct LatencyRelay {
    pub addr: SocketAddr,
    one_way: Duration,
    counts: Arc<Mutex<Counts>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LatencyRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(|p| p.into_inner())
}

impl LatencyRelay {
    /// Listens on an ephemeral port of 127.0.0.1 and relays to `target`, delaying
    /// each direction by `one_way` (so a round trip costs twice that).
    pub async fn start(target: SocketAddr, one_way: Duration) -> LatencyRelay {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let counts = Arc::new(Mutex::new(Counts::default()));
        let shared = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // On a network the handshake would end one round trip from now.
                let established = Instant::now() + 2 * one_way;
                lock(&shared).connections += 1;
                let counts = shared.clone();
                tokio::spawn(async move {
                    // The target is reached now; its own handshake is part of the
                    // one round trip the first chunk is held for.
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let up = direction(
                        (client_read, server_write),
                        established,
                        one_way,
                        (counts.clone(), Toward::Target),
                    );
                    let down = direction(
                        (server_read, client_write),
                        established,
                        one_way,
                        (counts, Toward::Client),
                    );
                    tokio::join!(up, down);
                });
            }
        });
        LatencyRelay {
            addr,
            one_way,
            counts,
            task,
        }
    }

    /// `127.0.0.1:<port>`, as an image name or hosts.toml names it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The delay each way.
    pub fn one_way(&self) -> Duration {
        self.one_way
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.counts).connections
    }

    /// HTTP/1 requests relayed to the target so far.
    pub fn requests(&self) -> usize {
        lock(&self.counts).requests.len()
    }

    /// When the last bytes from the target reached a client (`None`: never).
    pub fn last_delivery(&self) -> Option<std::time::Instant> {
        lock(&self.counts).last_delivery.map(Instant::into_std)
    }

    /// When each request line of [`LatencyRelay::request_lines`] reached the relay
    /// (it reaches the target `one_way` later).
    pub fn arrivals(&self) -> Vec<std::time::Instant> {
        lock(&self.counts)
            .arrivals
            .iter()
            .map(|i| i.into_std())
            .collect()
    }

    /// The request lines relayed so far, in order.
    pub fn request_lines(&self) -> Vec<String> {
        lock(&self.counts).requests.clone()
    }
}

/// Relays `from` → `to`, each chunk written `one_way` after it was read, or after
/// the handshake would have ended (`established`) if that is later. Reading never
/// waits for writing, so a burst is delayed once, not once per chunk.
async fn direction(
    (mut from, mut to): (OwnedReadHalf, OwnedWriteHalf),
    established: Instant,
    one_way: Duration,
    (counts, toward): (Arc<Mutex<Counts>>, Toward),
) {
    let delivered = counts.clone();
    // `None` = end of stream, passed on as a half close.
    let (send, mut receive) = mpsc::unbounded_channel::<(Instant, Option<Vec<u8>>)>();
    let reader = async move {
        loop {
            let mut buf = vec![0; CHUNK_BYTES];
            let n = from.read(&mut buf).await.unwrap_or(0);
            let due = Instant::now().max(established) + one_way;
            if n == 0 {
                let _ = send.send((due, None));
                return;
            }
            buf.truncate(n);
            if toward == Toward::Target {
                if let Some(line) = request_line(&buf) {
                    let mut counts = lock(&counts);
                    counts.requests.push(line);
                    counts.arrivals.push(Instant::now());
                }
            }
            if send.send((due, Some(buf))).is_err() {
                return;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = receive.recv().await {
            tokio::time::sleep_until(due).await;
            match chunk {
                Some(bytes) => {
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                    if toward == Toward::Client {
                        lock(&delivered).last_delivery = Some(Instant::now());
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    };
    tokio::join!(reader, writer);
}

/// Which way a [`direction`] carries bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Toward {
    Target,
    Client,
}

/// The request line a chunk starts with, if it starts with one.
fn request_line(chunk: &[u8]) -> Option<String> {
    if !METHODS.iter().any(|m| chunk.starts_with(m.as_bytes())) {
        return None;
    }
    let end = chunk
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(chunk.len());
    Some(String::from_utf8_lossy(&chunk[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Duration {
        let start = Instant::now();
        stream.write_all(message).await.expect("write");
        let mut back = vec![0; message.len()];
        stream.read_exact(&mut back).await.expect("read");
        assert_eq!(back, message);
        start.elapsed()
    }

    #[tokio::test]
    async fn an_echo_round_trip_takes_twice_the_delay() {
        let delay = Duration::from_millis(20);
        let relay = LatencyRelay::start(echo_server().await, delay).await;
        let mut stream = TcpStream::connect(relay.addr).await.expect("connect");
        // The first exchange also pays for the handshake: one more round trip.
        let first = round_trip(&mut stream, b"GET /v2/ HTTP/1.1\r\n\r\n").await;
        assert!(first >= 4 * delay, "first round trip took {first:?}");
        let second = round_trip(&mut stream, b"HEAD /v2/x HTTP/1.1\r\n\r\n").await;
        assert!(second >= 2 * delay, "round trip took {second:?}");
        assert_eq!(relay.connections(), 1);
        assert!(relay.last_delivery().is_some());
        assert_eq!(
            relay.request_lines(),
            vec!["GET /v2/ HTTP/1.1", "HEAD /v2/x HTTP/1.1"]
        );
    }

    #[tokio::test]
    async fn bytes_keep_their_order_and_a_close_follows_them() {
        let relay = LatencyRelay::start(echo_server().await, Duration::from_millis(5)).await;
        let mut stream = TcpStream::connect(relay.addr).await.expect("connect");
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for piece in sent.chunks(7_000) {
            stream.write_all(piece).await.expect("write");
        }
        stream.shutdown().await.expect("half close");
        let mut back = Vec::new();
        stream
            .read_to_end(&mut back)
            .await
            .expect("read to the end");
        assert_eq!(back, sent);
        assert_eq!(relay.requests(), 0);
    }
}
