//! Seams for observing: a request id on every response (the caller's own
//! when it is a plain token), and `/readyz` that says whether the store and
//! the warehouse answer.

use super::harness::TestGateway;

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.split("\r\n\r\n").next()?.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let bearer = format!("Bearer {}", gw.token_for("tess", &["testers"]));
    let auth = ("Authorization", bearer.as_str());

    // Answered and refused requests alike get a fresh id each.
    let ok = gw
        .response_text("GET", "/bigquery/v2/projects", &[auth])
        .await;
    let refused = gw.response_text("GET", "/bigquery/v2/projects", &[]).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let a = header(&ok, "x-request-id").expect("an id");
    let b = header(&refused, "x-request-id").expect("an id");
    assert_eq!(a.len(), 32, "{a}");
    assert_ne!(a, b);

    // A caller's own plain id is kept, so it can be followed through the
    // caller's logs; anything else is replaced.
    let mine = gw
        .response_text(
            "GET",
            "/bigquery/v2/projects",
            &[auth, ("x-request-id", "ci-run-42.step-3")],
        )
        .await;
    assert_eq!(header(&mine, "x-request-id"), Some("ci-run-42.step-3"));
    let hostile = gw
        .response_text(
            "GET",
            "/bigquery/v2/projects",
            &[auth, ("x-request-id", "a b\"}{<script>")],
        )
        .await;
    let replaced = header(&hostile, "x-request-id").expect("an id");
    assert_eq!(replaced.len(), 32, "{replaced}");
    gw.stop().await;
}

#[tokio::test]
async fn ready_once_the_store_and_warehouse_answer() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let ready = gw.response_text("GET", "/readyz", &[]).await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.ends_with("ready"), "{ready}");
    gw.stop().await;
}
