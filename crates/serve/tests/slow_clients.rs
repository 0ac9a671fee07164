//! Slow and hostile connections against a real server on a loopback port: bodies that
//! trickle in hold no scoring slot, a declared body over the limit is refused before it
//! is sent, partial request heads and bodies are cut off by their timeouts, and
//! connections past `max_connections` are refused. Every wait here is bounded.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "s3cret";

/// Reads until the server closes the connection (at most `limit`): what it sent.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> String {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(limit, s.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for {limit:?}"
    );
    String::from_utf8_lossy(&buf).into_owned()
}

/// Sends the head of a POST whose body is `len` bytes (with the token) and `sent` bytes of it.
async fn slow_post(r: &Running, path: &str, len: usize, sent: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
        r.addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(sent).await.unwrap();
    s.flush().await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_slow_bodies_do_not_lock_out_other_clients() {
    // the defaults (64 scoring slots), with auth on
    let mut r = start(config(&format!("[server]\nauth_token = \"{TOKEN}\""))).await;
    let body = json!({"pairs": [{"gold": "1", "pred": "1"}]}).to_string();
    let mut slow = Vec::new();
    for _ in 0..64 {
        slow.push(slow_post(&r, "/v1/verify", body.len(), &body.as_bytes()[..3]).await);
    }
    wait_requests_received(&r, 64.0, Some(TOKEN)).await;
    // the slow senders trickle on while legitimate clients are served
    for s in &mut slow {
        s.write_all(b" ").await.unwrap();
    }
    for _ in 0..8 {
        let resp = tokio::time::timeout(
            Duration::from_secs(10),
            r.client
                .post(r.url("/v1/verify"))
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(body.clone())
                .send(),
        )
        .await
        .expect("a legitimate request was not answered within 10 s")
        .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(
        metric(&r, "stepwise_bodies_reading", Some(TOKEN)).await,
        Some(64.0)
    );
    r.shutdown();
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let mut r = start(config(&format!(
        "[server]\nauth_token = \"{TOKEN}\"\nbody_read_timeout_ms = 300"
    )))
    .await;
    let mut s = slow_post(&r, "/v1/rewards", 1000, b"{\"items\"").await;
    let reply = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("body_read_timeout_ms"), "{reply}");
    assert_eq!(
        metric(&r, "stepwise_body_read_timeouts_total", Some(TOKEN)).await,
        Some(1.0)
    );
    r.shutdown();
}

#[tokio::test]
async fn a_declared_body_over_the_limit_gets_413_before_it_is_sent() {
    let mut r = start(config(&format!(
        "[server]\nauth_token = \"{TOKEN}\"\nmax_body_bytes = 4096"
    )))
    .await;
    // only the head is sent; the answer cannot wait for 100 MB that never come
    let mut s = slow_post(&r, "/v1/step_rewards", 100 << 20, b"").await;
    let reply = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("max_body_bytes (4096)"), "{reply}");
    r.shutdown();
}

#[tokio::test]
async fn a_partial_request_head_is_closed_after_the_header_read_timeout() {
    let mut r = start(config("[server]\nheader_read_timeout_ms = 300")).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .unwrap();
    read_until_closed(&mut s, Duration::from_secs(10)).await;
    // an idle connection that never sends anything is closed too
    let mut idle = TcpStream::connect(r.addr).await.unwrap();
    read_until_closed(&mut idle, Duration::from_secs(10)).await;
    // and the server still serves
    assert_eq!(r.get("/health").await.status(), 200);
    r.shutdown();
}

#[tokio::test]
async fn connections_past_max_connections_get_503_and_are_closed() {
    let mut r = start(config("[server]\nmax_connections = 3\nmax_concurrency = 1")).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(TcpStream::connect(r.addr).await.unwrap());
    }
    let mut extra = TcpStream::connect(r.addr).await.unwrap();
    extra
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let reply = read_until_closed(&mut extra, Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("too_many_connections"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("retry-after: 1"),
        "{reply}"
    );
    // a connection that closes frees its place
    open.clear();
    let mut served = false;
    for _ in 0..500 {
        if let Ok(resp) = reqwest::get(r.url("/health")).await
            && resp.status() == 200
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served, "no place freed after the connections closed");
    r.shutdown();
}
