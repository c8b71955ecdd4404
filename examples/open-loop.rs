//! Open-loop load for `scripts/bench-http`: unique `POST /mint` requests at a
//! fixed rate, whatever the pace of the answers, each latency measured from
//! when its request was due. A closed loop such as wrk waits for an answer
//! before sending the next request, so a stall delays the requests it would
//! have hurt and hides from the percentiles; here it shows in every one.
//!
//! `open-loop ADDR COOKIE RATE SECONDS [CONNECTIONS]` prints one JSON line:
//! `{"sent": n, "rps": .., "p50": ms, "p99": ms, "p999": ms, "failed": n}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: open-loop ADDR COOKIE RATE SECONDS [CONNECTIONS]");
        std::process::exit(2);
    }
    let (addr, cookie) = (args[0].clone(), args[1].clone());
    let rate: f64 = args[2].parse().expect("RATE is requests per second");
    let seconds: f64 = args[3].parse().expect("SECONDS is a number");
    let connections: usize = args.get(4).map_or(16, |c| c.parse().expect("CONNECTIONS"));
    let total = (rate * seconds) as usize;

    // A plain thread keeps the schedule (sleeps to the microsecond, unlike
    // the runtime's millisecond timer) and hands out due times.
    let (due_tx, due_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let start = Instant::now() + Duration::from_millis(100);
    let scheduler = std::thread::spawn(move || {
        for i in 0..total {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if due_tx.send((i, due)).is_err() {
                break;
            }
        }
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (mut latencies, failed) =
        runtime.block_on(async move {
            let due_rx = Arc::new(Mutex::new(due_rx));
            let mut workers = Vec::new();
            for _ in 0..connections {
                let (due_rx, addr, cookie) = (due_rx.clone(), addr.clone(), cookie.clone());
                workers.push(tokio::spawn(async move {
                let stream = TcpStream::connect(&addr).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut stream = BufReader::new(stream);
                let (mut latencies, mut failed) = (Vec::new(), 0usize);
                loop {
                    let Some((i, due)) = due_rx.lock().await.recv().await else {
                        break;
                    };
                    let body = format!("{{\"path\": \"/users/listener-0/open-{i}/\"}}");
                    let request = format!(
                        "POST /mint HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                         Cookie: {cookie}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    stream.get_mut().write_all(request.as_bytes()).await.expect("send");
                    let (status, length) = read_head(&mut stream).await;
                    let mut content = vec![0; length];
                    stream.read_exact(&mut content).await.expect("body");
                    latencies.push(due.elapsed());
                    failed += usize::from(status != 200);
                }
                (latencies, failed)
            }));
            }
            let (mut all, mut failed) = (Vec::new(), 0);
            for worker in workers {
                let (latencies, failures) = worker.await.expect("a worker");
                all.extend(latencies);
                failed += failures;
            }
            (all, failed)
        });
    scheduler.join().expect("the scheduler");
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let pick = |q: f64| {
        let index = ((q * latencies.len() as f64) as usize).min(latencies.len() - 1);
        latencies[index].as_secs_f64() * 1000.0
    };
    println!(
        "{{\"sent\": {}, \"rps\": {:.1}, \"p50\": {:.3}, \"p99\": {:.3}, \"p999\": {:.3}, \"failed\": {failed}}}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pick(0.50),
        pick(0.99),
        pick(0.999),
    );
}

/// The status and `Content-Length` of one response head.
async fn read_head(stream: &mut BufReader<TcpStream>) -> (u16, usize) {
    let (mut status, mut length, mut line) = (0, 0, String::new());
    loop {
        line.clear();
        stream.read_line(&mut line).await.expect("a response line");
        let text = line.trim_end();
        if text.is_empty() {
            return (status, length);
        }
        if let Some(code) = text.strip_prefix("HTTP/1.1 ") {
            status = code[..3].parse().unwrap_or(0);
        } else if let Some((name, value)) = text.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
}
