//! Real revocation endpoints on 127.0.0.1 for tests: OCSP answers made by
//! `openssl ocsp` for one issuing CA, and Python's `http.server` serving a
//! directory of CRL files over plain HTTP. Both are stopped on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Ports handed out by [`free_port`], each still bound by its listener until a
/// responder takes it: a port named in a certificate before its server starts
/// cannot be taken meanwhile by another test running in parallel.
static RESERVED: Mutex<BTreeMap<u16, TcpListener>> = Mutex::new(BTreeMap::new());

/// A free TCP port on 127.0.0.1, kept bound (reserved) until [`OcspResponder`]
/// or [`CrlServer`] starts on it.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    reserved().insert(port, listener);
    port
}

fn reserved() -> std::sync::MutexGuard<'static, BTreeMap<u16, TcpListener>> {
    RESERVED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The listener reserved on `port`, or a new one bound to it.
fn listener_on(port: u16) -> TcpListener {
    let reserved = reserved().remove(&port);
    reserved
        .unwrap_or_else(|| TcpListener::bind(("127.0.0.1", port)).expect("bind the OCSP responder"))
}

fn wait_listening(port: u16, child: &mut Child, what: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on {port}: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} is not listening on 127.0.0.1:{port} after 10 s");
}

/// An OCSP responder on 127.0.0.1 whose answers are made by the real `openssl
/// ocsp` (`-index … -reqin … -respout …`, one run per request) for the
/// certificates in `index` (an `openssl ca` database, read afresh each time)
/// issued by `ca`, signed with `signer`/`key` (the CA itself, or a delegated
/// responder certificate). `openssl ocsp -port` itself cannot be used: it binds
/// every interface, and servers in tests listen on 127.0.0.1 only.
pub struct OcspResponder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<TcpListener>>,
    pub port: u16,
}

impl OcspResponder {
    pub fn start(port: u16, index: &Path, ca: &Path, signer: &Path, key: &Path) -> OcspResponder {
        let listener = listener_on(port);
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let args: Vec<PathBuf> = [index, ca, signer, key]
            .iter()
            .map(|p| p.to_path_buf())
            .collect();
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = answer_ocsp(stream, &args);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
                listener
            })
        };
        OcspResponder {
            stop,
            thread: Some(thread),
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // The port stays reserved for a responder started again on it.
            if let Ok(listener) = thread.join() {
                reserved().insert(self.port, listener);
            }
        }
    }
}

/// One HTTP exchange: the request DER from a GET path (base64, URL-escaped) or a
/// POST body, answered with what `openssl ocsp` makes of it.
fn answer_ocsp(stream: TcpStream, args: &[PathBuf]) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let request = if method == "POST" {
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    } else {
        let encoded = percent_decode(path.trim_start_matches('/'));
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_default()
    };
    let dir = tempfile::tempdir()?;
    let (req, resp) = (dir.path().join("req.der"), dir.path().join("resp.der"));
    std::fs::write(&req, &request)?;
    let status = Command::new("openssl")
        .arg("ocsp")
        .arg("-index")
        .arg(&args[0])
        .arg("-CA")
        .arg(&args[1])
        .arg("-rsigner")
        .arg(&args[2])
        .arg("-rkey")
        .arg(&args[3])
        .args(["-nmin", "60", "-reqin"])
        .arg(&req)
        .arg("-respout")
        .arg(&resp)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let mut stream = stream;
    match std::fs::read(&resp) {
        Ok(body) if status.success() => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)
        }
        _ => stream.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Python's `http.server` serving `dir` on 127.0.0.1.
pub struct CrlServer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl CrlServer {
    pub fn start(port: u16, dir: &Path) -> CrlServer {
        std::fs::create_dir_all(dir).expect("CRL directory");
        // Python binds the port itself: released only now, just before it does.
        drop(reserved().remove(&port));
        let mut child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        wait_listening(port, &mut child, "python3 -m http.server");
        CrlServer {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    /// The URL of `name` in the served directory.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
