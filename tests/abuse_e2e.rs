//! Abuse of the real binary (docs/limits.md): a flood of connections from one address,
//! password spraying, slowloris, a 4 GB literal announced, a 10 MB line. Each time a client
//! from another address (127.0.0.2) measures how long the server takes to greet it and
//! answer a command; the latencies and the server's memory (VmRSS, VmHWM) are printed, not
//! asserted as timings: what is asserted is that the other client is served, that the
//! limits said no to the abuser, and that the peak memory stays far below what buffering
//! the abuse would take.
//!
//! On SQLite only: every limit tested here lives in the listeners and sessions, above the
//! store, and is the same on both engines.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

const DR: &str = "dr.martin@ch-test.mssante.fr";
const OTHER: &str = "secretariat@ch-test.mssante.fr";
const PER_ADDRESS: usize = 50;
const FLOOD: usize = 10_000;

const LIMITS: &str = "[imap]\nmax_connections_per_address = 50\nline_timeout_secs = 3\n\
    [smtp]\nmax_connections_per_address = 50\ncommand_timeout_secs = 3\n\
    [login]\nslow_after = 2\nfirst_delay_ms = 300\nmax_delay_ms = 600\n\
    lock_account_after = 5\nlock_address_after = 12\n";

fn imap_addr(server: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.ports.imap))
}

fn smtp_addr(server: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.ports.smtp))
}

/// A connection from `source` (any 127/8 address is local on Linux).
async fn connect_from(source: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(to).await
}

/// The well-behaved client: connect from 127.0.0.2, greeting, CAPABILITY, LOGOUT. Returns
/// the milliseconds it took; panics if it was not served.
async fn probe_imap(server: &Server, during: &str) -> f64 {
    let started = Instant::now();
    let stream = tokio::time::timeout(
        Duration::from_secs(30),
        connect_from([127, 0, 0, 2], imap_addr(server)),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    let mut conn = BufReader::new(stream);
    let greeting = read_line(&mut conn).await;
    assert!(
        greeting.starts_with("* OK"),
        "{during}: greeting {greeting:?}"
    );
    conn.get_mut()
        .write_all(b"p1 CAPABILITY\r\n")
        .await
        .unwrap();
    let mut capability = String::new();
    while !capability.starts_with("p1 ") {
        capability = read_line(&mut conn).await;
    }
    assert!(capability.starts_with("p1 OK"), "{during}: {capability:?}");
    let _ = conn.get_mut().write_all(b"p2 LOGOUT\r\n").await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    println!("latency of another client during {during}: {ms:.1} ms");
    ms
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(conn: &mut R) -> String {
    let mut line = String::new();
    match tokio::time::timeout(Duration::from_secs(30), conn.read_line(&mut line)).await {
        Ok(Ok(_)) => line,
        Ok(Err(_)) => String::new(),
        Err(_) => panic!("no line within 30 s"),
    }
}

/// (VmRSS, VmHWM) of the server in MB.
fn memory(server: &Server) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

fn print_memory(server: &Server, after: &str) -> (f64, f64) {
    let (rss, hwm) = memory(server);
    println!("server memory after {after}: RSS {rss:.1} MB, peak {hwm:.1} MB");
    (rss, hwm)
}

/// FLOOD connections from 127.0.0.1 held open at once: PER_ADDRESS are served, the rest are
/// told the server is busy; the other address is served meanwhile.
async fn flood(server: &Server) {
    let mut held = Vec::with_capacity(FLOOD);
    let started = Instant::now();
    let mut refused_by_os = 0;
    for _ in 0..FLOOD {
        match connect_from([127, 0, 0, 1], imap_addr(server)).await {
            Ok(stream) => held.push(BufReader::new(stream)),
            Err(_) => refused_by_os += 1,
        }
    }
    println!(
        "flood: {} connections opened from 127.0.0.1 in {:.1} s ({refused_by_os} refused by the OS)",
        held.len(),
        started.elapsed().as_secs_f64()
    );
    probe_imap(server, "a flood of 10,000 connections from one address").await;
    let (mut greeted, mut busy, mut closed) = (0, 0, 0);
    for conn in &mut held {
        let line = read_line(conn).await;
        if line.starts_with("* OK") {
            greeted += 1;
        } else if line.starts_with("* BYE") {
            busy += 1;
        } else {
            closed += 1;
        }
    }
    println!("flood: {greeted} greeted, {busy} told BYE (busy), {closed} closed without a word");
    assert_eq!(greeted, PER_ADDRESS, "one address gets its share, no more");
    assert_eq!(greeted + busy + closed, held.len());
    assert!(busy > FLOOD / 2, "the rest are told the server is busy");
    drop(held);
}

/// Slow clients: a command line trickled a byte at a time on IMAP and SMTP is cut off after
/// the line timeout (3 s here), long before it is complete.
async fn slowloris(server: &Server) {
    let line = b"a1 NOOP and a very long slow line that never ends\r\n";
    let mut tasks = Vec::new();
    for i in 0..40 {
        let to = if i % 4 == 0 {
            smtp_addr(server)
        } else {
            imap_addr(server)
        };
        tasks.push(tokio::spawn(async move {
            let mut stream = connect_from([127, 0, 0, 1], to).await.unwrap();
            let mut greeting = [0u8; 256];
            let _ = stream.read(&mut greeting).await;
            let started = Instant::now();
            for &byte in line.iter() {
                if stream.write_all(&[byte]).await.is_err() {
                    return (started.elapsed(), false);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                // A closed connection reads as EOF (after a BYE / 421 line).
                let mut buf = [0u8; 512];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await
                    && (n == 0 || buf[..n].starts_with(b"* BYE") || buf[..n].starts_with(b"421"))
                {
                    return (started.elapsed(), false);
                }
            }
            (started.elapsed(), true)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    probe_imap(server, "40 slowloris connections").await;
    let mut longest = Duration::ZERO;
    for task in tasks {
        let (held_for, completed) = task.await.unwrap();
        assert!(
            !completed,
            "a line trickled over {held_for:?} was let through"
        );
        longest = longest.max(held_for);
    }
    println!(
        "slowloris: 40 slow clients cut off, the longest after {:.1} s",
        longest.as_secs_f64()
    );
}

/// A literal of 4 GB announced (synchronising, then non-synchronising) and a line of 10 MB,
/// on IMAP; a line of 10 MB on SMTP.
async fn oversized(server: &Server) {
    let mut conn = BufReader::new(
        connect_from([127, 0, 0, 1], imap_addr(server))
            .await
            .unwrap(),
    );
    read_line(&mut conn).await;
    conn.get_mut()
        .write_all(b"b1 APPEND INBOX {4294967296}\r\n")
        .await
        .unwrap();
    let answer = read_line(&mut conn).await;
    println!("4 GB synchronising literal: {}", answer.trim_end());
    assert!(
        answer.starts_with("b1 NO") || answer.starts_with("b1 BAD"),
        "{answer:?}"
    );
    assert!(!answer.starts_with("+"), "no continuation for 4 GB");

    let mut line = b"b2 NOOP ".to_vec();
    line.resize(10 * 1024 * 1024, b'x');
    line.extend_from_slice(b"\r\nb3 NOOP\r\n");
    let (mut reader, mut writer) = conn.into_inner().into_split();
    let sending = tokio::spawn(async move {
        writer.write_all(&line).await.unwrap();
        writer
    });
    let probe = probe_imap(server, "a 10 MB IMAP line").await;
    let mut answers = String::new();
    while !answers.contains("b3 OK") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(30), reader.read(&mut buf))
            .await
            .expect("answers in time")
            .unwrap();
        assert!(n > 0, "connection closed after a long line: {answers:?}");
        answers.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    println!(
        "10 MB IMAP line: {:?} (probe {probe:.1} ms)",
        answers.lines().next().unwrap_or("")
    );
    assert!(
        answers.starts_with("b2 BAD") || answers.starts_with("* BAD"),
        "{answers:?}"
    );
    let mut writer = sending.await.unwrap();

    writer
        .write_all(b"b4 APPEND INBOX {4294967296+}\r\n")
        .await
        .unwrap();
    // LITERAL+ over the limit: the client sends it anyway, so the server closes (RFC 7888 §4).
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut rest)).await;
    println!(
        "4 GB non-synchronising literal: {:?}",
        String::from_utf8_lossy(&rest).trim_end()
    );
    assert!(closed.is_ok(), "connection closed after a 4 GB LITERAL+");

    let mut smtp = BufReader::new(
        connect_from([127, 0, 0, 1], smtp_addr(server))
            .await
            .unwrap(),
    );
    read_line(&mut smtp).await;
    let mut line = b"NOOP ".to_vec();
    line.resize(10 * 1024 * 1024, b'y');
    line.extend_from_slice(b"\r\nNOOP\r\n");
    smtp.get_mut().write_all(&line).await.unwrap();
    let first = read_line(&mut smtp).await;
    let second = read_line(&mut smtp).await;
    println!(
        "10 MB SMTP line: {} / then {}",
        first.trim_end(),
        second.trim_end()
    );
    assert!(first.starts_with('5'), "{first:?}");
    assert!(second.starts_with("250"), "the session goes on: {second:?}");
}

fn spraying(server: &Server) {
    let filter = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pkg/fail2ban/mssante.conf");
    let out = std::process::Command::new("python3")
        .arg(clients_dir().join("abuse_client.py"))
        .arg("spray")
        .args(["--imaps", &server.ports.imaps.to_string()])
        .args(["--victim", DR, "--other", OTHER, "--password", PASSWORD])
        .args(["--account-failures", "5", "--spray", "10"])
        .args(["--filter", filter.to_str().unwrap()])
        .args(["--log", server.log_path.to_str().unwrap()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("spraying: {v}");
    let answers = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{} {}", a[0].as_str().unwrap(), a[1].as_str().unwrap()))
            .collect()
    };
    let victim = answers("victim_failures");
    assert!(
        victim.iter().all(|a| a.contains("AUTHENTICATIONFAILED")),
        "{victim:?}"
    );
    // Slowed: the third failure waits 300 ms, the fourth and fifth 600 ms, on top of the
    // password check itself.
    let delays: Vec<f64> = v["victim_failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a[2].as_f64().unwrap())
        .collect();
    println!("failure answer times for one account (s): {delays:?}");
    assert!(delays[4] >= 0.6, "the fifth failure is slowed: {delays:?}");
    let locked = &v["victim_right_password"];
    assert_eq!(
        locked[0], "NO",
        "the locked account refuses even its password: {locked}"
    );
    assert!(
        locked[1].as_str().unwrap().contains("UNAVAILABLE"),
        "{locked}"
    );
    // 5 failures for the victim + 7 sprayed = 12: the address is locked from then on.
    let spray = answers("spray");
    assert!(
        spray[..7]
            .iter()
            .all(|a| a.contains("AUTHENTICATIONFAILED")),
        "{spray:?}"
    );
    assert!(
        spray[7..].iter().all(|a| a.contains("UNAVAILABLE")),
        "{spray:?}"
    );
    let blocked = &v["other_from_sprayer"];
    assert!(
        blocked[1].as_str().unwrap().contains("UNAVAILABLE"),
        "{blocked}"
    );
    assert_eq!(
        v["other_from_elsewhere"][0], "OK",
        "another address logs in"
    );
    // The fail2ban filter finds the sprayer, and only it.
    let hosts = v["fail2ban"]["hosts"].as_object().unwrap();
    assert!(hosts["127.0.0.1"].as_u64().unwrap() >= 12, "{hosts:?}");
    assert!(
        !hosts.contains_key("127.0.0.2") || hosts["127.0.0.2"].as_u64() == Some(1),
        "{hosts:?}"
    );
}

#[test]
fn abuse_leaves_other_clients_served_and_memory_bounded() {
    let mut server = Server::configure(Engine::Sqlite, LIMITS);
    server.cli_ok(&["domain", "add", DOMAIN]);
    server.create_bal(DR, "10000000001");
    server.create_bal(OTHER, "10000000002");
    server.spawn();
    let (_, baseline) = print_memory(&server, "start");
    block_on(async {
        probe_imap(&server, "quiet time").await;
        flood(&server).await;
        print_memory(&server, "the flood");
        // The flood's sessions end when their connections close.
        tokio::time::sleep(Duration::from_secs(1)).await;
        slowloris(&server).await;
        print_memory(&server, "slowloris");
        oversized(&server).await;
        print_memory(&server, "the 4 GB literals and 10 MB lines");
    });
    spraying(&server);
    let (_, peak) = print_memory(&server, "password spraying");
    assert!(
        peak - baseline < 128.0,
        "peak memory grew by {:.1} MB (from {baseline:.1} MB)",
        peak - baseline
    );
    assert!(
        server
            .log()
            .contains("account locked after repeated failures")
    );
    assert!(
        server
            .log()
            .contains("address locked after repeated failures")
    );
}
