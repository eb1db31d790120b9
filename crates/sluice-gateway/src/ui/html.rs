//! HTML for the UI's pages: escaping, the page frame, SQL highlighting.
//!
//! Everything that comes from a caller, a reviewer, a token or the SQL
//! goes through [`escape`] before it is written into a page; the
//! highlighter splits raw SQL into tokens and escapes each one before it
//! wraps it, so no character of the SQL ever reaches the page as markup.
//! Pages carry no script at all (and the Content-Security-Policy forbids
//! any), so a missed escape could not run code either.

use std::fmt::Write;

/// `text` safe in HTML text and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet of every page (inline: the UI serves no other file).
const STYLE: &str = r#"
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2b45;color:#fff;padding:.6rem 1.5rem;display:flex;gap:1.5rem;align-items:center}
header a{color:#dfe7f5;text-decoration:none}header a:hover{text-decoration:underline}
header .brand{font-weight:600;color:#fff;font-size:1.05rem}header .who{margin-left:auto;font-size:.9rem;color:#c9d3e6}
header form{display:inline}header button{background:none;border:1px solid #7e8ba5;color:#dfe7f5;border-radius:4px;padding:.15rem .55rem;cursor:pointer}
main{max-width:70rem;margin:1.5rem auto;padding:0 1.5rem}
h1{font-size:1.35rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e8}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e8ebf0;vertical-align:top}
th{background:#eef1f5;font-weight:600;font-size:.85rem;color:#4a5468}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.muted{color:#6b7486;font-size:.85rem}.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.88rem}
dl.facts{display:grid;grid-template-columns:11rem 1fr;gap:.35rem 1rem;background:#fff;border:1px solid #dde1e8;padding:.8rem 1rem;margin:0}
dl.facts dt{color:#4a5468;font-weight:600}dl.facts dd{margin:0}
pre.sql{background:#1e2230;color:#e6e9ef;padding:1rem;border-radius:6px;overflow:auto;white-space:pre-wrap;word-break:break-word;font-size:.9rem}
pre.sql .k{color:#82aaff;font-weight:600}pre.sql .s{color:#c3e88d}pre.sql .n{color:#f78c6c}pre.sql .c{color:#8a93a8;font-style:italic}pre.sql .q{color:#ffcb6b}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.78rem;font-weight:600;background:#e3e7ee;color:#3b4456}
.badge.PENDING{background:#fff1c2;color:#7a5a00}.badge.APPROVED{background:#d4f2dc;color:#1d6b34}.badge.DENIED,.badge.EXPIRED{background:#fadcdc;color:#8a1f1f}
.notice{background:#fff8e1;border:1px solid #f0d58a;padding:.6rem .9rem;border-radius:6px;margin:.8rem 0}
.error{background:#fdecec;border:1px solid #e7a3a3;color:#7d1a1a;padding:.6rem .9rem;border-radius:6px;margin:.8rem 0}
.ok{background:#e7f6ec;border:1px solid #9fd3b0;color:#1d5b31;padding:.6rem .9rem;border-radius:6px;margin:.8rem 0}
form.vote{background:#fff;border:1px solid #dde1e8;padding:1rem;border-radius:6px}
form.vote textarea{width:100%;min-height:4.5rem;box-sizing:border-box;font:inherit;padding:.4rem}
button.approve,button.deny,a.button,button.primary{font:inherit;font-weight:600;border:0;border-radius:5px;padding:.45rem 1.1rem;cursor:pointer;margin-right:.5rem;text-decoration:none;display:inline-block}
button.approve,button.primary,a.button{background:#1f7a3d;color:#fff}button.deny{background:#b42318;color:#fff}
section.event{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:.6rem .9rem;margin:.6rem 0}
section.event .what{margin:.3rem 0;word-break:break-word}section.event pre.sql{margin:.4rem 0}
table.rows{margin:.4rem 0;font-size:.85rem}table.rows td,table.rows th{padding:.25rem .5rem}
.dev{border:3px dashed #b42318;background:#fff;padding:1rem 1.4rem;border-radius:8px;max-width:34rem}
.dev h1{color:#b42318}.dev label{display:block;margin:.7rem 0 .2rem;font-weight:600}.dev input{font:inherit;padding:.35rem;width:100%;box-sizing:border-box}
"#;

/// Who the page is shown to, for its header.
pub struct Viewer<'a> {
    pub name: &'a str,
    pub groups: &'a [String],
    pub csrf: &'a str,
    /// May read the audit log: the header links to the sessions.
    pub auditor: bool,
}

/// A whole page: the header (with who is signed in and a sign-out
/// button), the title, and `body` (already HTML).
pub fn page(title: &str, viewer: Option<&Viewer<'_>>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + STYLE.len() + 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Sluice</title><style>{STYLE}</style></head><body><header>\
         <a class=\"brand\" href=\"/ui/\">Sluice approvals</a>",
        escape(title)
    );
    if let Some(viewer) = viewer {
        let _ = write!(
            out,
            "<a href=\"/ui/\">Pending</a><a href=\"/ui/history\">History</a><a href=\"/ui/grants\">Grants</a>{}\
             <span class=\"who\">Signed in as <strong>{}</strong>{}</span>\
             <form method=\"post\" action=\"/ui/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form>",
            if viewer.auditor {
                "<a href=\"/ui/sessions\">Sessions</a>"
            } else {
                ""
            },
            escape(viewer.name),
            if viewer.groups.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape(&viewer.groups.join(", ")))
            },
            escape(viewer.csrf),
        );
    }
    let _ = write!(out, "</header><main>{body}</main></body></html>");
    out
}

/// BigQuery keywords the highlighter marks (upper case).
const KEYWORDS: &[&str] = &[
    "ALL",
    "AND",
    "ANY",
    "ARRAY",
    "AS",
    "ASC",
    "BEGIN",
    "BETWEEN",
    "BY",
    "CALL",
    "CASE",
    "CAST",
    "CREATE",
    "CROSS",
    "CURRENT",
    "DECLARE",
    "DELETE",
    "DESC",
    "DISTINCT",
    "DROP",
    "ELSE",
    "END",
    "EXCEPT",
    "EXECUTE",
    "EXISTS",
    "FALSE",
    "FOR",
    "FROM",
    "FULL",
    "GRANT",
    "GROUP",
    "HAVING",
    "IF",
    "IMMEDIATE",
    "IN",
    "INNER",
    "INSERT",
    "INTERSECT",
    "INTERVAL",
    "INTO",
    "IS",
    "JOIN",
    "LEFT",
    "LIKE",
    "LIMIT",
    "MERGE",
    "NOT",
    "NULL",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "OVER",
    "PARTITION",
    "QUALIFY",
    "REPLACE",
    "RIGHT",
    "ROWS",
    "SAFE_CAST",
    "SELECT",
    "SET",
    "STRUCT",
    "TABLE",
    "THEN",
    "TRUE",
    "TRUNCATE",
    "UNION",
    "UNNEST",
    "UPDATE",
    "USING",
    "VALUES",
    "VIEW",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
];

/// The SQL as HTML: keywords, strings, numbers, comments and quoted
/// names each wrapped in a `<span>`, every piece escaped.
pub fn highlight_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() * 2);
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let text = |from: usize, to: usize| chars[from..to].iter().collect::<String>();
    let wrap = |out: &mut String, class: &str, piece: &str| {
        let _ = write!(out, "<span class=\"{class}\">{}</span>", escape(piece));
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start = i;
        if (c == '-' && next == Some('-')) || c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            wrap(&mut out, "c", &text(start, i));
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i = (i + 2).min(chars.len());
            wrap(&mut out, "c", &text(start, i));
        } else if c == '\'' || c == '"' || c == '`' {
            let triple = next == Some(c) && chars.get(i + 2) == Some(&c) && c != '`';
            let quote_len = if triple { 3 } else { 1 };
            i += quote_len;
            while i < chars.len() {
                if chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if chars[i] == c && (!triple || chars[i..].starts_with(&[c, c, c])) {
                    i += quote_len;
                    break;
                }
                i += 1;
            }
            i = i.min(chars.len());
            wrap(&mut out, if c == '`' { "q" } else { "s" }, &text(start, i));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            wrap(&mut out, "n", &text(start, i));
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word = text(start, i);
            if KEYWORDS.contains(&word.to_ascii_uppercase().as_str()) {
                wrap(&mut out, "k", &word);
            } else {
                out.push_str(&escape(&word));
            }
        } else {
            i += 1;
            out.push_str(&escape(&text(start, i)));
        }
    }
    out
}
