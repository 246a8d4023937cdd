//! The kept inputs of the `server_request` fuzz target (`fuzz/regressions/server_request/`),
//! replayed through the entry it calls (`ondo_server::fuzz::request_body`): each body gives a
//! plan or a clean 4xx, without a panic or a hang.

use ondo_server::fuzz::request_body;
use ondo_server::ApiError;
use ondo_testdata::fuzz::replay;

/// `ApiError` is a response, not a `std::error::Error`: the replay reads its message.
fn entry(data: &[u8]) -> Result<usize, String> {
    request_body(data).map_err(|e: ApiError| {
        assert!(e.status.is_client_error(), "{} for {:?}", e.status, e.message);
        e.message
    })
}

#[test]
fn server_request_inputs() {
    let (ok, failed) = replay("server_request", entry);
    assert!(
        ok > 0 && failed > 0,
        "the slice has bodies that plan and bodies that are refused"
    );
}

/// The harness reaches the end for good bodies and names the field of a bad one.
#[test]
fn the_harness_plans_and_refuses() {
    let chat = br#"{"messages": [{"role": "user", "content": "hi"}], "n": 2, "temperature": 0.5}"#;
    assert_eq!(request_body(chat), Ok(1));
    assert_eq!(request_body(br#"{"prompt": ["a", [1, 2]], "logprobs": 2}"#), Ok(2));
    let err = request_body(br#"{"prompt": "a", "top_p": 2}"#).expect_err("top_p above 1");
    assert_eq!(err.param.as_deref(), Some("top_p"), "{err:?}");
}
