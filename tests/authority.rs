//! `:authority` as real gRPC clients send it on a unix socket, written as raw HTTP/2
//! frames (the Rust h2 client cannot send these): the socket path (grpc-go as the
//! kubelet ≤ 1.29 dials, grpc-java), its percent-encoding (gRPC C-core), `localhost`
//! (kubelet ≥ 1.30), an empty value, and none. Each request must get pullgate's
//! answer (a HEADERS frame ending the stream), never `RST_STREAM(PROTOCOL_ERROR)`:
//! this is what third_party/h2-authority.patch changes. A CONNECT with such an
//! authority stays refused. The real clients themselves run in tests/real_clients.rs.

use pullgate_testkit as support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use support::Pullgate;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
/// HTTP/2 error code PROTOCOL_ERROR (RFC 9113 §7).
const PROTOCOL_ERROR: u32 = 0x1;

/// An HPACK integer with an N-bit prefix (RFC 7541 §5.1).
fn hpack_int(out: &mut Vec<u8>, first: u8, prefix_bits: u32, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A header block of "literal header field without indexing, new name" entries
/// (RFC 7541 §6.2.2), no Huffman: the server's HPACK decoder must take it as is.
fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        block.push(0x00);
        hpack_int(&mut block, 0x00, 7, name.len());
        block.extend_from_slice(name.as_bytes());
        hpack_int(&mut block, 0x00, 7, value.len());
        block.extend_from_slice(value.as_bytes());
    }
    block
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// How the server answered stream 1.
#[derive(Debug, PartialEq)]
enum Answer {
    /// A HEADERS frame; `ends_stream` for a trailers-only gRPC answer.
    Headers {
        ends_stream: bool,
    },
    Reset {
        code: u32,
    },
}

/// Sends one request on stream 1 with `fields` (and, unless it is a CONNECT, an
/// empty gRPC message), then reads frames until the server answers stream 1.
fn exchange(socket: &std::path::Path, fields: &[(&str, &str)]) -> Answer {
    let mut stream = UnixStream::connect(socket).expect("connect to pullgate");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    let is_connect = fields.contains(&(":method", "CONNECT"));
    out.extend(frame(HEADERS, END_HEADERS, 1, &header_block(fields)));
    if !is_connect {
        out.extend(frame(DATA, END_STREAM, 1, &[0, 0, 0, 0, 0]));
    }
    stream.write_all(&out).expect("write request");
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).expect("read frame header");
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).expect("read frame payload");
        match (kind, id) {
            (SETTINGS, 0) if flags & ACK == 0 => {
                stream
                    .write_all(&frame(SETTINGS, ACK, 0, &[]))
                    .expect("ack settings");
            }
            (HEADERS, 1) => {
                return Answer::Headers {
                    ends_stream: flags & END_STREAM != 0,
                }
            }
            (RST_STREAM, 1) => {
                return Answer::Reset {
                    code: u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]),
                }
            }
            (GOAWAY, 0) => panic!("server sent GOAWAY: {payload:?}"),
            _ => {}
        }
    }
}

fn grpc_request<'a>(path: &'a str, authority: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![(":method", "POST"), (":scheme", "http"), (":path", path)];
    if let Some(authority) = authority {
        fields.push((":authority", authority));
    }
    fields.extend([("content-type", "application/grpc"), ("te", "trailers")]);
    fields
}

fn start() -> Pullgate {
    // No containerd is needed: the calls below are answered by pullgate itself
    // (a non-CRI service is Unimplemented, a CRI call with containerd absent is
    // Unavailable), each as a trailers-only HEADERS frame.
    Pullgate::start(std::path::Path::new("/nonexistent/containerd.sock"), "")
}

/// The socket path, as grpc-go and crictl send it as `:authority`.
fn socket_path(pullgate: &Pullgate) -> String {
    pullgate
        .socket
        .to_str()
        .expect("utf-8 socket path")
        .to_owned()
}

#[test]
fn every_authority_real_clients_send_is_accepted() {
    let pullgate = start();
    let path = socket_path(&pullgate);
    let percent = path.replace('/', "%2F");
    let long = format!("/{}", "d/".repeat(200));
    for authority in [
        Some(path.as_str()),
        Some(percent.as_str()),
        Some("localhost"),
        Some(""),
        Some(long.as_str()),
        None,
    ] {
        for method in [
            "/grpc.health.v1.Health/Check",
            "/runtime.v1.RuntimeService/Version",
        ] {
            let answer = exchange(&pullgate.socket, &grpc_request(method, authority));
            assert_eq!(
                answer,
                Answer::Headers { ends_stream: true },
                "{method} with :authority {authority:?}; log:\n{}",
                pullgate.log_text()
            );
        }
    }
}

#[test]
fn connect_with_a_path_authority_is_still_refused() {
    let pullgate = start();
    let path = socket_path(&pullgate);
    let answer = exchange(
        &pullgate.socket,
        &[(":method", "CONNECT"), (":authority", path.as_str())],
    );
    assert_eq!(
        answer,
        Answer::Reset {
            code: PROTOCOL_ERROR
        }
    );
}
