//! A minimal HTTP/1.1 receiver over a plain socket, so tests see exactly
//! what the gateway sends (witnesses, sinks, webhooks): it answers 503 to
//! the first `refuse` requests, then 200, and keeps what it accepted.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request the receiver accepted.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: String,
}

pub struct HttpReceiver {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub refused: Arc<AtomicUsize>,
}

impl HttpReceiver {
    /// Listens on `port` (0: any free port).
    pub fn start(port: u16, refuse: usize) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let (kept, count) = (received.clone(), refused.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (kept, count) = (kept.clone(), count.clone());
                std::thread::spawn(move || serve(stream, refuse, &kept, &count));
            }
        });
        Self {
            port,
            received,
            refused,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

fn serve(
    stream: std::net::TcpStream,
    refuse: usize,
    kept: &Mutex<Vec<Received>>,
    count: &AtomicUsize,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.insert(k.to_ascii_lowercase(), v.trim().to_string());
        }
        let length: usize = headers
            .get("content-length")
            .map_or(0, |l| l.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let answer: &[u8] = if count.load(Ordering::SeqCst) < refuse {
            count.fetch_add(1, Ordering::SeqCst);
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
        } else {
            kept.lock().unwrap().push(Received {
                path,
                headers,
                body: String::from_utf8(body).unwrap(),
            });
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        };
        reader.get_mut().write_all(answer).unwrap();
    }
}
