//! The HTTP backend does not trust its server: an answer past the size cap fails the
//! request as soon as the cap is passed (the rest is never read), and well-formed JSON
//! with fields of the wrong type fails it with an error naming the endpoint and the
//! field, never an empty sample.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use stepwise_http::{HttpConfig, HttpGenerator};
use stepwise_model::{ChatMessage, GenerateRequest, Generator, Prompt, SamplingParams};

/// Reads one HTTP request (headers and body) from `stream`.
fn read_request(stream: &std::net::TcpStream) -> Option<()> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()
}

/// A server that answers every request with `head` and then `body_len` bytes of a JSON
/// string that never closes (`{"choices": "aaaa…`), counting the bytes it got to send.
fn flooding_server(content_length: bool, body_len: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if read_request(&stream).is_none() {
                continue;
            }
            let length = if content_length {
                format!("Content-Length: {body_len}\r\n")
            } else {
                String::new()
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n{{\"choices\": \""
            );
            if stream.write_all(head.as_bytes()).is_err() {
                continue;
            }
            let chunk = vec![b'a'; 64 * 1024];
            let mut left = body_len;
            while left > 0 {
                let n = left.min(chunk.len());
                if stream.write_all(&chunk[..n]).is_err() {
                    break;
                }
                counter.fetch_add(n, Ordering::SeqCst);
                left -= n;
            }
        }
    });
    (url, sent)
}

/// A server that answers every request with `answer` (status 200).
fn json_server(answer: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if read_request(&stream).is_none() {
                continue;
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    url
}

fn generator(url: &str, cap: usize) -> HttpGenerator {
    let mut cfg = HttpConfig::new(vec![url.to_string()]);
    cfg.max_response_bytes = cap;
    cfg.max_retries = 0;
    HttpGenerator::new(cfg).unwrap()
}

fn chat_request() -> GenerateRequest {
    GenerateRequest {
        prompt: Prompt::Chat(vec![ChatMessage::user("What is 2 + 2?")]),
        assistant_prefix: String::new(),
        params: SamplingParams {
            n: 1,
            max_tokens: 8,
            ..Default::default()
        },
    }
}

const MIB: usize = 1 << 20;

#[tokio::test]
async fn a_streamed_answer_past_the_cap_is_refused_and_not_read_on() {
    // 256 MiB without a Content-Length: the client must stop near its 1 MiB cap
    let (url, sent) = flooding_server(false, 256 * MIB);
    let e = generator(&url, MIB)
        .generate(&chat_request())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("{url}/v1/chat/completions")), "{e}");
    assert!(e.contains("larger than the limit of 1048576 bytes"), "{e}");
    // the server was cut off: what it got out is the cap plus socket buffers, not the body
    let sent = sent.load(Ordering::SeqCst);
    assert!(sent < 64 * MIB, "the client read {sent} bytes");
}

#[tokio::test]
async fn an_announced_answer_past_the_cap_is_refused_before_reading() {
    let (url, _) = flooding_server(true, 8 * MIB);
    let e = generator(&url, MIB)
        .generate(&chat_request())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than the limit of 1048576 bytes"), "{e}");
}

#[tokio::test]
async fn wrong_types_are_errors_naming_endpoint_and_field() {
    for (answer, field) in [
        (
            r#"{"choices": [{"index": 0, "message": {"role": "assistant", "content": 123}, "finish_reason": "stop"}]}"#,
            "choices[0].message.content",
        ),
        (
            r#"{"choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": 7}]}"#,
            "choices[0].finish_reason",
        ),
    ] {
        let url = json_server(answer);
        let e = generator(&url, MIB)
            .generate(&chat_request())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{url}/v1/chat/completions")), "{e}");
        assert!(e.contains(&format!("`{field}`")), "{e}");
    }
    // the same answer with the right types is a sample
    let url = json_server(
        r#"{"choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}"#,
    );
    let cs = generator(&url, MIB)
        .generate(&chat_request())
        .await
        .unwrap();
    assert_eq!(cs[0].text, "4");
}

#[tokio::test]
async fn post_json_is_capped_too() {
    let (url, _) = flooding_server(false, 16 * MIB);
    let e = generator(&url, MIB)
        .post_json("/pooling", &serde_json::json!({"input": "x"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("{url}/pooling")), "{e}");
    assert!(e.contains("larger than the limit"), "{e}");
}

#[tokio::test]
async fn a_continuation_is_read_token_by_token_from_the_top_logprobs() {
    // every answer lists " 4" and " 5" as the next token's top candidates
    let url = json_server(
        r#"{"choices":[{"index":0,"text":" 4","finish_reason":"length","logprobs":{"tokens":[" 4"],"token_logprobs":[-0.25],"top_logprobs":[{" 4":-0.25," 5":-2.0}]}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
    );
    let g = generator(&url, MIB);
    let p = Prompt::Text("2 + 2 =".into());
    let c = g.continuation_logprobs(&p, "", " 4 5").await.unwrap();
    let got: Vec<(&str, f32)> = c
        .tokens
        .iter()
        .map(|t| (t.token.as_str(), t.logprob))
        .collect();
    assert_eq!(got, [(" 4", -0.25), (" 5", -2.0)]);
    // one request per token, each reading its prompt again
    assert_eq!(c.calls, 2);
    assert_eq!(c.prompt_tokens, 6);
    // a next token outside the listed ones is an error naming where
    let e = g
        .continuation_logprobs(&p, "", " 4 7")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("at byte 2 (\" 7\") is not among the server's top 2 log-probabilities"),
        "{e}"
    );
    assert!(e.contains(&url), "{e}");
}
