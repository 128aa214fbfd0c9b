//! "250 OK" means durable: the server is killed with SIGKILL while clients are sending;
//! after a restart every acknowledged message is there, byte for byte, and nothing else.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use mssante_testkit::engine_tests_sync;

const DR: &str = "dr.martin@ch-test.mssante.fr";
const SENDER: &str = "lab@labo.mssante.fr";

/// The message `smtp_client.py` sends as number `n` (`numbered_message(..., size=4000)`).
fn expected_message(n: u64) -> Vec<u8> {
    let mut m = format!(
        "From: <{SENDER}>\r\nTo: <{DR}>\r\nSubject: message {n}\r\nMessage-ID: <m{n}@client.test>\r\n\r\n"
    );
    for i in 0..(4000 / 30) {
        m.push_str(&format!("line {i} of message {n}\r\n"));
    }
    m.into_bytes()
}

fn message_number(stored: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(stored);
    text.split("Message-ID: <m")
        .nth(1)
        .and_then(|s| s.split('@').next())
        .unwrap()
        .parse()
        .unwrap()
}

engine_tests_sync!(acknowledged_messages_survive_sigkill, |engine| {
    let mut server = Server::start(engine, &[DR]);
    let ack_file = server.db.data_path().join("acked.txt");
    let inflight_file = server.db.data_path().join("inflight.txt");
    let mut client =
        spawn_durability_client(&server, (SENDER, DR), 100_000, 4, &ack_file, &inflight_file);

    // Let a batch be acknowledged, then kill the server without warning.
    let deadline = Instant::now() + Duration::from_secs(180);
    while acked_numbers(&ack_file).len() < 200 {
        assert!(
            Instant::now() < deadline,
            "clients got fewer than 200 acks: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    let status = client.wait().unwrap();
    assert!(status.success(), "client crashed");
    let acked = acked_numbers(&ack_file);
    let sent = acked_numbers(&inflight_file);

    // Restart on the same data: the server must come back.
    server.spawn();
    let stored = server.messages(DR, "INBOX");
    let mut stored_numbers = BTreeSet::new();
    for bytes in &stored {
        let n = message_number(bytes);
        assert!(stored_numbers.insert(n), "message {n} stored twice");
        assert_eq!(
            strip_trace_header(bytes),
            expected_message(n),
            "message {n} is not byte-identical"
        );
    }
    let lost: Vec<_> = acked.difference(&stored_numbers).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after SIGKILL: {lost:?}"
    );
    let unexpected: Vec<_> = stored_numbers.difference(&sent).collect();
    assert!(
        unexpected.is_empty(),
        "stored but never sent: {unexpected:?}"
    );
    // Only messages in flight at the kill (at most one per connection) may be stored
    // without their 250 having reached the client.
    assert!(
        stored_numbers.len() <= acked.len() + 4,
        "{} stored, {} acked",
        stored_numbers.len(),
        acked.len()
    );
    assert_eq!(
        server.message_count(),
        stored_numbers.len() as i64,
        "no orphan message rows"
    );
});
