//! The reviewer web UI over HTTP, as a browser drives it: sign-in through
//! the development issuer (authorization code with PKCE), the pending
//! list, a request page, votes; and what it refuses (a wrong PKCE
//! verifier, a reused code, forged or expired cookies, forms without the
//! CSRF token or from another origin, the requester's own vote), with
//! hostile SQL and claims shown escaped.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sluice_gateway::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::{TestGateway, insert_as};

const REVIEWED: &str = r#"
identity:
  development_issuer: { enabled: true }
policies:
  - name: testers-read
    who: { groups: [testers] }
    allow: { read: ["proj"], statements: [select] }
    approvals:
      - name: people
        when: { tables: ["proj.ds.people"] }
        reviewers: { groups: [reviewers] }
  - name: contractors
    who: { groups: [contractors] }
    allow: { statements: [select] }
    projects: [proj]
    grants:
      - name: ds-access
        datasets: [proj.ds]
        reviewers: { groups: [reviewers] }
ui:
  enabled: true
"#;

/// The SQL an agent sends: every kind of token the highlighter knows,
/// each carrying markup.
const HOSTILE_SQL: &str = "SELECT name, 42 AS n -- </pre><script>alert(1)</script>\nFROM proj.ds.people /* <img src=x onerror=alert(2)> */ WHERE name != '</script><img src=x onerror=alert(3)>'";

async fn start(dir: &std::path::Path) -> TestGateway {
    TestGateway::start_with(dir, |config: &mut Config| {
        let reviewed = Config::parse(REVIEWED, "ui test").unwrap();
        config.policy = reviewed.policy;
        config.ui = reviewed.ui;
        config.approval_sweep = Duration::from_millis(200);
    })
    .await
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.headers(name).next()
    }

    fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.head.lines().filter_map(move |line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    /// The value `Set-Cookie` gives `name`, with its attributes.
    fn set_cookie<'a>(&'a self, name: &str) -> Option<&'a str> {
        self.headers("set-cookie")
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// A cookie as the browser sends it back.
    fn cookie(&self, name: &str) -> String {
        let set = self
            .set_cookie(name)
            .unwrap_or_else(|| panic!("no {name} cookie: {}", self.head));
        set.split(';').next().unwrap().to_owned()
    }

    /// Path and query of `Location` (the gateway's own URLs are absolute
    /// for the issuer, relative for the UI).
    fn location(&self) -> String {
        let location = self
            .header("location")
            .unwrap_or_else(|| panic!("no Location: {}", self.head));
        match location.split_once("://") {
            Some((_, rest)) => format!("/{}", rest.split_once('/').map_or("", |(_, p)| p)),
            None => location.to_owned(),
        }
    }
}

/// One HTTP/1.1 request, as a browser would send it.
async fn send(
    gw: &TestGateway,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        gw.addr,
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap()
}

fn query_of(path: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(path.split_once('?').map_or("", |(_, q)| q)).unwrap()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {pairs:?}"))
}

/// A sign-in up to the issuer's redirect back: the login cookie, the
/// code and the state.
async fn authorize(gw: &TestGateway, subject: &str, groups: &str) -> (String, String, String) {
    let start = send(gw, "GET", "/ui/login?next=/ui/history", &[], "").await;
    assert_eq!(start.status, 303, "{}", start.body);
    let login = start.set_cookie("sluice_login").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/ui"] {
        assert!(login.contains(attribute), "{login}");
    }
    assert!(
        !login.contains("Secure"),
        "plain-http loopback: not Secure: {login}"
    );
    let authorize = start.location();
    assert!(
        authorize.starts_with("/sluice-dev-issuer/authorize?"),
        "{authorize}"
    );
    let params = query_of(&authorize);
    assert_eq!(field(&params, "code_challenge_method"), "S256");
    let page = send(gw, "GET", &authorize, &[], "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Development issuer — demo users only"),
        "{}",
        page.body
    );
    let mut fields: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    fields.push(("subject", subject));
    fields.push(("groups", groups));
    let back = send(
        gw,
        "POST",
        "/sluice-dev-issuer/authorize",
        &[],
        &form(&fields),
    )
    .await;
    assert_eq!(back.status, 303, "{}", back.body);
    let callback = back.location();
    assert!(callback.starts_with("/ui/callback?"), "{callback}");
    let answer = query_of(&callback);
    assert_eq!(field(&answer, "state"), field(&params, "state"));
    (
        start.cookie("sluice_login"),
        field(&answer, "code").to_owned(),
        field(&answer, "state").to_owned(),
    )
}

fn callback_path(code: &str, state: &str) -> String {
    format!("/ui/callback?{}", form(&[("code", code), ("state", state)]))
}

/// Signs in as `subject` in `groups`; the session cookie.
async fn sign_in(gw: &TestGateway, subject: &str, groups: &str) -> String {
    let (login, code, state) = authorize(gw, subject, groups).await;
    let done = send(
        gw,
        "GET",
        &callback_path(&code, &state),
        &[("Cookie", &login)],
        "",
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/ui/history");
    let session = done.set_cookie("sluice_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/ui"] {
        assert!(session.contains(attribute), "{session}");
    }
    done.cookie("sluice_session")
}

/// The CSRF token in a page's forms.
fn csrf_of(page: &str) -> String {
    let start = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf field: {page}"))
        + 19;
    page[start..].split('"').next().unwrap().to_owned()
}

fn approval_id(job: &Value) -> String {
    let message = job["status"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{job}"));
    let start = message.find("apr_").unwrap();
    message[start..]
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap()
        .to_owned()
}

/// A token from the test issuer with CI claims (the development issuer's
/// own tokens carry none), signed with its key from the data folder.
fn token_with_claims(
    dir: &std::path::Path,
    subject: &str,
    groups: &[&str],
    extra: Value,
) -> String {
    let issuer = sluice_identity::DevIssuer::load_or_create(
        dir,
        "http://127.0.0.1/sluice-dev-issuer",
        "sluice",
    )
    .unwrap();
    let der = std::fs::read(dir.join("dev-issuer-key.p8")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({"iss": issuer.issuer(), "aud": issuer.audience(), "sub": subject, "groups": groups, "iat": now, "nbf": now, "exp": now + 600});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(issuer.key_id().to_owned());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(&der),
    )
    .unwrap()
}

/// Parks the hostile query as `tester` from a "CI run" whose claims carry
/// markup; the job id and the approval id.
async fn park_hostile(gw: &TestGateway, dir: &std::path::Path) -> (String, String) {
    let token = token_with_claims(
        dir,
        "tester",
        &["testers"],
        json!({"repository": "acme/<b>shop</b>", "workflow": "<script>alert(4)</script>", "run_id": "77\"><img src=x>"}),
    );
    let body = json!({"configuration": {"query": {"query": HOSTILE_SQL, "useLegacySql": false}}});
    let (status, job) = insert_as(gw, &token, body).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["status"]["state"], "PENDING", "{job}");
    (
        job["jobReference"]["jobId"].as_str().unwrap().to_owned(),
        approval_id(&job),
    )
}

/// No markup from the SQL or the claims reached the page as markup.
fn assert_no_injected_markup(page: &str) {
    for injected in ["<script", "<img", "<b>"] {
        assert!(!page.contains(injected), "{injected} in the page: {page}");
    }
}

async fn state_of(gw: &TestGateway, approval: &str) -> String {
    let alice = gw.token_for("alice", &["reviewers"]);
    let (_, body) = gw
        .call_as(
            &alice,
            "GET",
            &format!("/sluice/v1/approvals/{approval}"),
            None,
        )
        .await;
    body["state"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_signs_in_and_approves_through_the_ui_and_the_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path()).await;
    let (job, approval) = park_hostile(&gw, dir.path()).await;

    // Signed out: a sign-in page, nothing else.
    let page = send(&gw, "GET", "/ui/", &[], "").await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("/ui/login"), "{}", page.body);
    assert!(!page.body.contains(&approval));

    let alice = sign_in(&gw, "alice", "reviewers").await;
    let cookie = [("Cookie", alice.as_str())];
    let list = send(&gw, "GET", "/ui/", &cookie, "").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body.contains(&format!("/ui/approvals/{approval}")),
        "{}",
        list.body
    );
    assert!(
        list.body.contains("acme/&lt;b&gt;shop&lt;/b&gt;"),
        "{}",
        list.body
    );
    assert!(list.body.contains("people"), "the rule");
    assert!(
        list.body.contains("Signed in as <strong>alice</strong>"),
        "{}",
        list.body
    );
    assert_no_injected_markup(&list.body);
    let csp = list.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");

    let request = send(
        &gw,
        "GET",
        &format!("/ui/approvals/{approval}"),
        &cookie,
        "",
    )
    .await;
    assert_eq!(request.status, 200, "{}", request.body);
    let html = &request.body;
    assert_no_injected_markup(html);
    assert!(html.contains("<span class=\"k\">SELECT</span>"), "{html}");
    assert!(
        html.contains("&lt;/script&gt;&lt;img src=x onerror=alert(3)&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(4)&lt;/script&gt;"),
        "the workflow claim: {html}"
    );
    assert!(
        html.contains("77&quot;&gt;&lt;img src=x&gt;"),
        "the run_id claim: {html}"
    );
    assert!(html.contains("group:reviewers"), "{html}");
    let csrf = csrf_of(html);
    let path = format!("/ui/approvals/{approval}");
    let origin = format!("http://{}", gw.addr);

    // Forms without the session's CSRF token, or from another origin,
    // change nothing.
    for (token, from) in [
        ("", origin.as_str()),
        ("forged", origin.as_str()),
        (csrf.as_str(), "https://evil.example"),
    ] {
        let body = form(&[("csrf", token), ("verdict", "approve"), ("reason", "ok")]);
        let refused = send(
            &gw,
            "POST",
            &path,
            &[("Cookie", &alice), ("Origin", from)],
            &body,
        )
        .await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(refused.body.contains("CSRF"), "{}", refused.body);
    }
    let body = form(&[("csrf", &csrf), ("verdict", "approve"), ("reason", "ok")]);
    let no_origin = send(&gw, "POST", &path, &[("Cookie", &alice)], &body).await;
    assert_eq!(
        no_origin.status, 403,
        "neither Origin nor Referer: {}",
        no_origin.body
    );
    // A GET never votes.
    let _ = send(
        &gw,
        "GET",
        &format!("{path}?verdict=approve&csrf={csrf}"),
        &cookie,
        "",
    )
    .await;
    assert_eq!(state_of(&gw, &approval).await, "PENDING");

    // The requester, signed in as a reviewer too, is refused as over REST.
    let tester = sign_in(&gw, "tester", "testers,reviewers").await;
    let own = send(&gw, "GET", &path, &[("Cookie", &tester)], "").await;
    let own_csrf = csrf_of(&own.body);
    let body = form(&[
        ("csrf", &own_csrf),
        ("verdict", "approve"),
        ("reason", "mine"),
    ]);
    let refused = send(
        &gw,
        "POST",
        &path,
        &[("Cookie", &tester), ("Origin", &origin)],
        &body,
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("approvals.self"), "{}", refused.body);
    assert!(
        refused.body.contains("Your vote was not recorded"),
        "{}",
        refused.body
    );
    assert_eq!(state_of(&gw, &approval).await, "PENDING");

    // Alice's CSRF token is hers: it does not pass with another session.
    let body = form(&[("csrf", &csrf), ("verdict", "deny"), ("reason", "x")]);
    let crossed = send(
        &gw,
        "POST",
        &path,
        &[("Cookie", &tester), ("Origin", &origin)],
        &body,
    )
    .await;
    assert_eq!(crossed.status, 403);

    // A deny needs a reason: refused on the page, the request still open.
    let body = form(&[("csrf", &csrf), ("verdict", "deny"), ("reason", " ")]);
    let refused = send(
        &gw,
        "POST",
        &path,
        &[("Cookie", &alice), ("Referer", &format!("{origin}{path}"))],
        &body,
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("A reason is required"),
        "{}",
        refused.body
    );

    // Alice approves; the waiting job runs.
    let body = form(&[
        ("csrf", &csrf),
        ("verdict", "approve"),
        ("reason", "expected <report>"),
    ]);
    let voted = send(
        &gw,
        "POST",
        &path,
        &[("Cookie", &alice), ("Origin", &origin)],
        &body,
    )
    .await;
    assert_eq!(voted.status, 303, "{}", voted.body);
    assert_eq!(voted.location(), format!("{path}?voted=approve"));
    let after = send(&gw, "GET", &voted.location(), &cookie, "").await;
    assert!(
        after.body.contains("Your approval was recorded"),
        "{}",
        after.body
    );
    assert!(after.body.contains("badge APPROVED"), "{}", after.body);
    assert!(
        after.body.contains("expected &lt;report&gt;"),
        "{}",
        after.body
    );
    assert!(
        !after.body.contains("name=\"verdict\""),
        "no vote form on a closed request"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let (status, body) = gw
            .get(&format!(
                "/bigquery/v2/projects/proj/queries/{job}?timeoutMs=1000"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        if body["jobComplete"] == true || std::time::Instant::now() > deadline {
            break body;
        }
    };
    assert_eq!(rows["jobComplete"], true, "{rows}");
    assert_eq!(rows["totalRows"], "2500", "{rows}");

    let history = send(&gw, "GET", "/ui/history", &cookie, "").await;
    assert!(
        history.body.contains(&approval) && history.body.contains("APPROVED"),
        "{}",
        history.body
    );
    let pending = send(&gw, "GET", "/ui/", &cookie, "").await;
    assert!(!pending.body.contains(&approval));

    // Signing out clears the cookie.
    let out = send(
        &gw,
        "POST",
        "/ui/logout",
        &[("Cookie", &alice), ("Origin", &origin)],
        &form(&[("csrf", &csrf)]),
    )
    .await;
    assert_eq!(out.status, 303);
    assert!(
        out.set_cookie("sluice_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refuses_a_wrong_verifier_a_reused_code_and_a_foreign_state() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path()).await;
    let redirect = format!("http://{}/ui/callback", gw.addr);

    // The token endpoint wants the verifier of the code's challenge; a
    // wrong one burns the code.
    let (login, code, state) = authorize(&gw, "alice", "reviewers").await;
    let wrong = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", "sluice"),
        ("redirect_uri", &redirect),
        ("code_verifier", &"a".repeat(43)),
    ]);
    let refused = send(&gw, "POST", "/sluice-dev-issuer/token", &[], &wrong).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let error: Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(error["error"], "invalid_grant");
    assert!(!refused.body.contains(&code), "the code is never echoed");
    let late = send(
        &gw,
        "GET",
        &callback_path(&code, &state),
        &[("Cookie", &login)],
        "",
    )
    .await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert!(late.set_cookie("sluice_session").is_none());

    // A code works once.
    let (login, code, state) = authorize(&gw, "alice", "reviewers").await;
    let first = send(
        &gw,
        "GET",
        &callback_path(&code, &state),
        &[("Cookie", &login)],
        "",
    )
    .await;
    assert_eq!(first.status, 303, "{}", first.body);
    let again = send(
        &gw,
        "GET",
        &callback_path(&code, &state),
        &[("Cookie", &login)],
        "",
    )
    .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.set_cookie("sluice_session").is_none());

    // An answer for another browser's sign-in (its state is not in this
    // browser's cookie), or with no sign-in cookie at all.
    let (_, code, state) = authorize(&gw, "mallory", "reviewers").await;
    let (victim_login, _, _) = authorize(&gw, "alice", "reviewers").await;
    let planted = send(
        &gw,
        "GET",
        &callback_path(&code, &state),
        &[("Cookie", &victim_login)],
        "",
    )
    .await;
    assert_eq!(planted.status, 400, "{}", planted.body);
    let bare = send(&gw, "GET", &callback_path(&code, &state), &[], "").await;
    assert_eq!(bare.status, 400);
    assert!(bare.set_cookie("sluice_session").is_none());

    // The authorization page serves the UI's client and callback only.
    let challenge = "a".repeat(43);
    let asking = |redirect_uri: &str, method: &str| {
        form(&[
            ("response_type", "code"),
            ("client_id", "sluice"),
            ("redirect_uri", redirect_uri),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", method),
        ])
    };
    let evil = asking("https://evil.example/cb", "S256");
    let page = send(
        &gw,
        "GET",
        &format!("/sluice-dev-issuer/authorize?{evil}"),
        &[],
        "",
    )
    .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("redirect_uri"), "{}", page.body);
    let plain = asking(&redirect, "plain");
    let page = send(
        &gw,
        "GET",
        &format!("/sluice-dev-issuer/authorize?{plain}"),
        &[],
        "",
    )
    .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("S256"), "{}", page.body);

    // The discovery document names the sign-in's endpoints.
    let discovery = send(
        &gw,
        "GET",
        "/sluice-dev-issuer/.well-known/openid-configuration",
        &[],
        "",
    )
    .await;
    let discovery: Value = serde_json::from_str(&discovery.body).unwrap();
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert!(
        discovery["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/sluice-dev-issuer/token")
    );
    gw.stop().await;
}

/// A session value in the documented format, signed with `key`.
fn seal(key: &[u8], payload: &Value) -> String {
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        format!("session.{body}").as_bytes(),
    );
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_expired_session_cookies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path()).await;
    let alice = sign_in(&gw, "alice", "reviewers").await;
    let value = alice.strip_prefix("sluice_session=").unwrap();
    let (body, tag) = value.split_once('.').unwrap();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    assert_eq!(payload["principal"]["subject"], "alice");
    let ok = send(&gw, "GET", "/ui/", &[("Cookie", &alice)], "").await;
    assert_eq!(ok.status, 200);

    // Another subject under alice's signature.
    payload["principal"]["subject"] = json!("root");
    payload["principal"]["name"] = json!("root");
    let forged = format!(
        "sluice_session={}.{tag}",
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    // Signed with a key that is not the gateway's.
    let foreign = format!("sluice_session={}", seal(b"not the key", &payload));
    // The gateway's own key, but expired.
    let key = std::fs::read(dir.path().join("ui-session-key")).unwrap();
    payload["principal"]["subject"] = json!("alice");
    payload["exp"] = json!(1);
    let expired = format!("sluice_session={}", seal(&key, &payload));
    for cookie in [
        forged,
        foreign,
        expired,
        "sluice_session=garbage".to_owned(),
    ] {
        let page = send(&gw, "GET", "/ui/", &[("Cookie", &cookie)], "").await;
        assert_eq!(page.status, 401, "{cookie}: {}", page.body);
        assert!(page.body.contains("Sign in"), "{}", page.body);
    }
    // The same key with a current expiry is accepted: the refusal above
    // was the expiry's.
    payload["exp"] = json!(u64::MAX / 2);
    let current = format!("sluice_session={}", seal(&key, &payload));
    let page = send(&gw, "GET", "/ui/", &[("Cookie", &current)], "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_request_is_shown_and_granted_through_the_ui() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path()).await;
    let carol = gw.token_for("carol", &["contractors"]);
    let ask = json!({
        "datasets": ["proj.ds"],
        "duration": "45m",
        "justification": "incident </dd><script>alert(5)</script>",
    });
    let (status, request) = gw
        .call_as(&carol, "POST", "/sluice/v1/access-requests", Some(ask))
        .await;
    assert_eq!(status, 200, "{request}");
    let id = request["id"].as_str().unwrap().to_owned();

    let alice = sign_in(&gw, "alice", "reviewers").await;
    let cookie = [("Cookie", alice.as_str())];
    let list = send(&gw, "GET", "/ui/", &cookie, "").await;
    assert!(
        list.body.contains(&format!("/ui/approvals/{id}")),
        "{}",
        list.body
    );
    assert!(
        list.body.contains("access to proj.ds for 45 minutes"),
        "{}",
        list.body
    );
    assert_no_injected_markup(&list.body);
    let page = send(&gw, "GET", &format!("/ui/approvals/{id}"), &cookie, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Access asked for"), "{}", page.body);
    assert!(page.body.contains("proj.ds"), "{}", page.body);
    assert!(
        page.body
            .contains("incident &lt;/dd&gt;&lt;script&gt;alert(5)&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("<h2>SQL</h2>"),
        "no SQL section for an access request"
    );
    assert_no_injected_markup(&page.body);

    let origin = format!("http://{}", gw.addr);
    let body = form(&[
        ("csrf", &csrf_of(&page.body)),
        ("verdict", "approve"),
        ("reason", "ok"),
    ]);
    let voted = send(
        &gw,
        "POST",
        &format!("/ui/approvals/{id}"),
        &[("Cookie", &alice), ("Origin", &origin)],
        &body,
    )
    .await;
    assert!(voted.status < 400, "{}", voted.body);
    let (status, grants) = gw.call_as(&carol, "GET", "/sluice/v1/grants", None).await;
    assert_eq!(status, 200, "{grants}");
    assert_eq!(grants["grants"][0]["id"], id.as_str(), "{grants}");
    assert_eq!(grants["grants"][0]["approvedBy"], "alice");
    let (status, body) =
        super::harness::query_as(&gw, &carol, "SELECT COUNT(*) AS n FROM proj.ds.people").await;
    assert_eq!(status, 200, "{body}");

    // The reviewer sees the grant and revokes it from the UI (with the
    // session's CSRF token only): the holder is refused again.
    let grants = send(&gw, "GET", "/ui/grants", &cookie, "").await;
    assert_eq!(grants.status, 200, "{}", grants.body);
    assert!(grants.body.contains(&id), "{}", grants.body);
    assert!(grants.body.contains("ACTIVE"), "{}", grants.body);
    assert_no_injected_markup(&grants.body);
    let revoke_path = format!("/ui/grants/{id}");
    let forged = form(&[("csrf", "forged")]);
    let refused = send(
        &gw,
        "POST",
        &revoke_path,
        &[("Cookie", &alice), ("Origin", &origin)],
        &forged,
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let (status, _) =
        super::harness::query_as(&gw, &carol, "SELECT COUNT(*) AS n FROM proj.ds.people").await;
    assert_eq!(status, 200, "a forged form revokes nothing");
    let body = form(&[("csrf", &csrf_of(&grants.body))]);
    let revoked = send(
        &gw,
        "POST",
        &revoke_path,
        &[("Cookie", &alice), ("Origin", &origin)],
        &body,
    )
    .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let after = send(&gw, "GET", "/ui/grants", &cookie, "").await;
    assert!(after.body.contains("REVOKED"), "{}", after.body);
    let (status, body) =
        super::harness::query_as(&gw, &carol, "SELECT COUNT(*) AS n FROM proj.ds.people").await;
    assert_eq!(status, 403, "{body}");
    gw.stop().await;
}
