//! `sluice mcp`: a stdio bridge to the gateway's MCP server, for MCP
//! clients that only start local processes. Each JSON-RPC message read
//! from standard input (one per line) is posted to the gateway's `/mcp`
//! with the caller's bearer token; each message the gateway answers (JSON
//! or server-sent events) is written to standard output, one per line.
//!
//! The bridge forwards messages as they are, whatever the protocol
//! revision: it adds only the HTTP headers the streamable HTTP transport
//! asks for (`MCP-Protocol-Version`, `Mcp-Session-Id`, `Mcp-Method`,
//! `Mcp-Name`). The token is read again for every message, from the file
//! or environment variable, so a token refreshed there is used at once;
//! it is never written out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

/// `sluice mcp`'s flags.
#[derive(Debug, clap::Args)]
pub struct Bridge {
    /// The gateway's MCP endpoint.
    #[arg(
        long,
        value_name = "URL",
        env = "SLUICE_MCP_ENDPOINT",
        default_value = "http://127.0.0.1:9050/mcp"
    )]
    endpoint: String,
    /// Read the bearer token from PATH, again for every message (takes
    /// precedence over --token-env).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// The environment variable holding the bearer token.
    #[arg(long, value_name = "NAME", default_value = "SLUICE_TOKEN")]
    token_env: String,
}

/// What the gateway told the bridge to send back: the protocol revision
/// negotiated by `initialize`, and a session id if it gave one.
#[derive(Debug, Default)]
struct Negotiated {
    version: Option<String>,
    session: Option<String>,
}

pub async fn run(bridge: Bridge) -> anyhow::Result<()> {
    let bridge = Arc::new(bridge);
    // Fail at start, not at the first message, when there is no token.
    bridge.token()?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A held call (wait_for_approval) takes minutes at most.
        .timeout(Duration::from_secs(600))
        .build()
        .context("cannot build the HTTP client")?;
    let out = Arc::new(Mutex::new(tokio::io::stdout()));
    let negotiated = Arc::new(Mutex::new(Negotiated::default()));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut calls = tokio::task::JoinSet::new();
    while let Some(line) = lines.next_line().await.context("cannot read stdin")? {
        if line.trim().is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(&line) {
            Ok(message) => message,
            Err(e) => {
                let error = json!({"jsonrpc": "2.0", "id": null,
                    "error": {"code": -32700, "message": format!("not JSON: {e}")}});
                write(&out, &error).await?;
                continue;
            }
        };
        let (bridge, client, out, negotiated) = (
            bridge.clone(),
            client.clone(),
            out.clone(),
            negotiated.clone(),
        );
        // Each message on its own task: a call held for an approval does
        // not hold up a ping or a cancellation behind it.
        calls.spawn(async move {
            let answers = bridge.forward(&client, &message, &negotiated).await;
            for answer in answers {
                if write(&out, &answer).await.is_err() {
                    break;
                }
            }
        });
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
    Ok(())
}

impl Bridge {
    fn token(&self) -> anyhow::Result<String> {
        let token = match &self.token_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?,
            None => std::env::var(&self.token_env).with_context(|| {
                format!(
                    "no token: set {} or pass --token-file (a token from your identity provider)",
                    self.token_env
                )
            })?,
        };
        let token = token.trim().to_string();
        anyhow::ensure!(!token.is_empty(), "the token is empty");
        Ok(token)
    }

    /// Posts one message; returns what to write back (nothing for a
    /// notification the gateway accepted).
    async fn forward(
        &self,
        client: &reqwest::Client,
        message: &Value,
        negotiated: &Mutex<Negotiated>,
    ) -> Vec<Value> {
        let id = message.get("id").cloned();
        let method = message.get("method").and_then(Value::as_str);
        let fail = |text: String| match &id {
            Some(id) if method.is_some() => vec![json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32603, "message": text}})],
            _ => {
                eprintln!("sluice mcp: {text}");
                Vec::new()
            }
        };
        let token = match self.token() {
            Ok(token) => token,
            Err(e) => return fail(format!("{e:#}")),
        };
        let mut request = client
            .post(&self.endpoint)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(message.to_string());
        let version = message
            .pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        {
            let known = negotiated.lock().await;
            if let Some(version) = version.or_else(|| known.version.clone()) {
                request = request.header("mcp-protocol-version", version);
            }
            if let Some(session) = &known.session {
                request = request.header("mcp-session-id", session);
            }
        }
        if let Some(method) = method {
            request = request.header("mcp-method", method);
            if method == "tools/call"
                && let Some(name) = message.pointer("/params/name").and_then(Value::as_str)
            {
                request = request.header("mcp-name", name);
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return fail(format!("cannot reach {}: {e}", self.endpoint)),
        };
        let status = response.status();
        if let Some(session) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            negotiated.lock().await.session = Some(session.to_string());
        }
        let event_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) => return fail(format!("cannot read the gateway's answer: {e}")),
        };
        let answers: Vec<Value> = match event_stream {
            true => events(&text),
            false => serde_json::from_str::<Value>(&text)
                .ok()
                .into_iter()
                .collect(),
        };
        let answers: Vec<Value> = answers
            .into_iter()
            .filter(|a| a.get("jsonrpc").is_some())
            .collect();
        if method == Some("initialize")
            && let Some(version) = answers
                .iter()
                .find_map(|a| a.pointer("/result/protocolVersion"))
                .and_then(Value::as_str)
        {
            negotiated.lock().await.version = Some(version.to_string());
        }
        if answers.is_empty() && !status.is_success() {
            // Not a JSON-RPC answer: say what the gateway said.
            let said = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| text.chars().take(300).collect());
            return fail(format!("the gateway answered HTTP {status}: {said}"));
        }
        answers
    }
}

/// The JSON messages in a server-sent event stream (`data:` lines, an
/// event's several lines joined).
fn events(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut data = String::new();
    for line in text.lines().chain(std::iter::once("")) {
        if let Some(rest) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        } else if line.is_empty() && !data.is_empty() {
            if let Ok(value) = serde_json::from_str(&data) {
                out.push(value);
            }
            data.clear();
        }
    }
    out
}

async fn write(out: &Mutex<tokio::io::Stdout>, message: &Value) -> anyhow::Result<()> {
    let mut line = message.to_string();
    line.push('\n');
    let mut out = out.lock().await;
    out.write_all(line.as_bytes()).await?;
    out.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_streams_yield_each_data_message() {
        let text = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1}\n\n: ping\n\ndata: {\"jsonrpc\":\n data: \"2.0\",\"id\":2}\n";
        let got = events(text);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["id"], 1);
        let split = "data: {\"jsonrpc\":\ndata: \"2.0\",\"id\":2}\n\n";
        assert_eq!(events(split)[0]["id"], 2);
    }
}
