use super::html::{escape, highlight_sql};
use super::session::{SessionKey, secure_cookies};

#[test]
fn escaping_leaves_no_markup() {
    let hostile = "</script><img src=x onerror=alert(1)> \"' &amp;";
    let escaped = escape(hostile);
    assert!(
        !escaped.contains('<') && !escaped.contains('>'),
        "{escaped}"
    );
    assert!(
        !escaped.contains('"') && !escaped.contains('\''),
        "{escaped}"
    );
    assert_eq!(
        escaped,
        "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &quot;&#39; &amp;amp;"
    );
}

#[test]
fn highlighting_wraps_tokens_and_escapes_every_piece() {
    let sql =
        "SELECT 'a</b>' AS x, 42 -- <img onerror=1>\nFROM `p.d.t` /* </pre> */ WHERE y = \"<i>\"";
    let html = highlight_sql(sql);
    assert!(html.contains("<span class=\"k\">SELECT</span>"), "{html}");
    assert!(
        html.contains("<span class=\"s\">&#39;a&lt;/b&gt;&#39;</span>"),
        "{html}"
    );
    assert!(html.contains("<span class=\"n\">42</span>"), "{html}");
    assert!(
        html.contains("<span class=\"c\">-- &lt;img onerror=1&gt;</span>"),
        "{html}"
    );
    assert!(html.contains("<span class=\"q\">`p.d.t`</span>"), "{html}");
    assert!(
        html.contains("<span class=\"c\">/* &lt;/pre&gt; */</span>"),
        "{html}"
    );
    // Only the highlighter's own tags remain once its spans are removed.
    let bare = html.replace("</span>", "");
    let bare = ["k", "s", "n", "c", "q"]
        .iter()
        .fold(bare, |s, c| s.replace(&format!("<span class=\"{c}\">"), ""));
    assert!(!bare.contains('<') && !bare.contains('>'), "{bare}");
}

#[test]
fn unterminated_strings_and_comments_do_not_panic() {
    for sql in ["'abc", "/* open", "\"\"\"x", "`x", "a\\", "'\\", "é'ü"] {
        let html = highlight_sql(sql);
        assert!(!html.contains("<img"), "{html}");
    }
}

#[test]
fn a_cookie_is_accepted_only_under_its_key_and_purpose() {
    let key = SessionKey::from_bytes(b"one key");
    let other = SessionKey::from_bytes(b"another key");
    let sealed = key.seal("session", &serde_json::json!({"sub": "alice"}));
    let opened: serde_json::Value = key.open("session", &sealed).unwrap();
    assert_eq!(opened["sub"], "alice");
    assert!(
        other
            .open::<serde_json::Value>("session", &sealed)
            .is_none()
    );
    assert!(key.open::<serde_json::Value>("login", &sealed).is_none());
    // A changed payload with the old signature is refused.
    let (_, tag) = sealed.split_once('.').unwrap();
    let forged = format!(
        "{}.{tag}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"sub":"mallory"}"#
        )
    );
    assert!(key.open::<serde_json::Value>("session", &forged).is_none());
    assert!(format!("{key:?}").contains("redacted"));
}

#[test]
fn cookies_are_secure_except_on_plain_http_loopback() {
    assert!(!secure_cookies("http://127.0.0.1:9050"));
    assert!(!secure_cookies("http://localhost:9050"));
    assert!(!secure_cookies("http://[::1]:9050"));
    assert!(secure_cookies("https://127.0.0.1:9050"));
    assert!(secure_cookies("https://sluice.example.com"));
    assert!(secure_cookies("http://10.0.0.5:9050"));
    assert!(secure_cookies("http://0.0.0.0:9050"));
}
