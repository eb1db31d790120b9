//! A real gateway on an ephemeral port over a small warehouse in a temp
//! folder, and a minimal HTTP/1.1 client. The client is deliberately raw:
//! these tests send what the official clients never would (malformed JSON,
//! oversized bodies, hostile paths).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use sluice_gateway::{Config, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Rows in the test table `proj.ds.people`.
pub const PEOPLE: usize = 2500;

pub struct TestGateway {
    pub addr: SocketAddr,
    /// A token for a member of `testers`, sent when a test sends none.
    pub token: String,
    issuer: Arc<sluice_identity::DevIssuer>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Writes `proj/ds/people.csv` with an exact schema file, and a small
/// `proj/public/notes.csv`.
pub fn write_warehouse(root: &Path) {
    let public = root.join("proj").join("public");
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(public.join("notes.csv"), "id,note\n1,hello\n2,world\n").unwrap();
    let dir = root.join("proj").join("ds");
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("id,name,born,seen,balance\n");
    for i in 1..=PEOPLE {
        let born = format!("19{:02}-{:02}-{:02}", 50 + i % 50, 1 + i % 12, 1 + i % 28);
        let seen = format!("2024-05-01T12:00:{:02}Z", i % 60);
        csv.push_str(&format!("{i},person \"{i}\",{born},{seen},{}.25\n", i * 10));
    }
    std::fs::write(dir.join("people.csv"), csv).unwrap();
    std::fs::write(
        dir.join("people.schema.json"),
        r#"[{"name":"id","type":"INTEGER","mode":"REQUIRED"},{"name":"name","type":"STRING"},
            {"name":"born","type":"DATE"},{"name":"seen","type":"TIMESTAMP"},{"name":"balance","type":"NUMERIC"}]"#,
    )
    .unwrap();
}

/// The tests' configuration: the development issuer on, group `testers`
/// may read all of project `proj`, and the demo's guardrails.
pub const TEST_CONFIG: &str = r#"
identity:
  development_issuer: { enabled: true }
policies:
  - name: testers-read
    who: { groups: [testers] }
    allow: { read: ["proj"], statements: [select] }
  - name: outsiders
    who: { groups: [outsiders] }
    allow: { read: ["proj.public"], statements: [select] }
    limits: { max_rows: 1 }
  - name: frugal
    who: { groups: [frugal] }
    allow: { read: ["proj"], statements: [select] }
    limits: { max_bytes_billed: 100 }
guardrails:
  deny: [drop, alter, truncate, grant, revoke, delete_without_where, dynamic_sql, external_query]
"#;

pub fn config(dir: &Path) -> Config {
    let mut config = Config::parse(TEST_CONFIG, "test configuration").unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.to_path_buf();
    config.store_path = dir.join("sluice.db");
    config.warehouse_dir = dir.join("warehouse");
    config.demo_data = false;
    config.page_max_rows = 1000;
    config.max_body_bytes = 64 * 1024;
    config.max_hold = std::time::Duration::from_secs(5);
    config
}

impl TestGateway {
    /// Starts a gateway on the data in `dir` (creating the test warehouse
    /// if it is not there yet).
    pub async fn start(dir: &Path) -> Self {
        Self::start_with(dir, |_| {}).await
    }

    /// Like [`start`](Self::start), with the configuration adjusted first.
    pub async fn start_with(dir: &Path, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = config(dir);
        adjust(&mut config);
        if !config.warehouse_dir.join("proj").exists() {
            write_warehouse(&config.warehouse_dir);
        }
        let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        config.base_url = format!("http://{addr}");
        let gateway = Gateway::open(config, &mut |_| {}).await.unwrap();
        let issuer = gateway.dev_issuer.clone().expect("the test issuer is on");
        let token = issuer.mint(
            "tester",
            &["testers".to_string()],
            std::time::Duration::from_secs(600),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            sluice_gateway::serve(listener, Arc::new(gateway), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            token,
            issuer,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// A token from the test issuer for `subject` in `groups`.
    pub fn token_for(&self, subject: &str, groups: &[&str]) -> String {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        self.issuer
            .mint(subject, &groups, std::time::Duration::from_secs(600))
    }

    /// A token for `subject` in `groups` with extra `claims` (a CI run's
    /// `run_id`, say).
    pub fn token_with(&self, subject: &str, groups: &[&str], claims: &[(&str, &str)]) -> String {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let claims: serde_json::Map<String, Value> = claims
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        self.issuer.mint_with(
            subject,
            &groups,
            &claims,
            std::time::Duration::from_secs(600),
        )
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        self.call("POST", path, Some(body.as_bytes()), &[]).await
    }

    /// Sends one request and returns the status and the JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let (status, bytes) = self.raw(method, path, body, headers).await;
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, value)
    }

    /// A call with `token` as the bearer and `body` as JSON.
    pub async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let bearer = format!("Bearer {token}");
        let body = body.map(|b| b.to_string());
        self.call(
            method,
            path,
            body.as_deref().map(str::as_bytes),
            &[("Authorization", &bearer)],
        )
        .await
    }

    /// The whole response (head and body) as text.
    pub async fn response_text(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> String {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n",
            self.addr
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<u8>) {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let body = body.unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        // Agents always send a bearer token; a test may send its own.
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        {
            request.push_str(&format!("Authorization: Bearer {}\r\n", self.token));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        // A server may refuse before reading the whole body.
        let _ = stream.write_all(body).await;
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        parse_response(&response)
    }
}

fn parse_response(response: &[u8]) -> (u16, Vec<u8>) {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = response[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

/// Runs a query job to completion and returns its id.
pub async fn run_query(gateway: &TestGateway, sql: &str) -> String {
    let body =
        serde_json::json!({"configuration": {"query": {"query": sql, "useLegacySql": false}}});
    let (status, job) = gateway
        .post("/bigquery/v2/projects/proj/jobs", &body.to_string())
        .await;
    assert_eq!(status, 200, "{job}");
    job["jobReference"]["jobId"].as_str().unwrap().to_string()
}

/// Sends jobs.insert with `body` as the holder of `token`; the status and
/// the job (or the error).
pub async fn insert_as(gateway: &TestGateway, token: &str, body: Value) -> (u16, Value) {
    gateway
        .call_as(token, "POST", "/bigquery/v2/projects/proj/jobs", Some(body))
        .await
}

/// Runs `sql` by jobs.query as the holder of `token`; the status and body.
pub async fn query_as(gateway: &TestGateway, token: &str, sql: &str) -> (u16, Value) {
    let body =
        serde_json::json!({"query": sql, "useLegacySql": false, "timeoutMs": 5000}).to_string();
    let bearer = format!("Bearer {token}");
    gateway
        .call(
            "POST",
            "/bigquery/v2/projects/proj/queries",
            Some(body.as_bytes()),
            &[("authorization", &bearer)],
        )
        .await
}

/// A finished query job `id` as a fake BigQuery upstream answers it.
pub fn done_job(id: &str) -> Value {
    serde_json::json!({
        "jobReference": {"projectId": "proj", "jobId": id, "location": "US"},
        "status": {"state": "DONE"},
        "statistics": {"query": {"totalBytesProcessed": "50", "statementType": "SELECT"}},
        "configuration": {"query": {}}
    })
}

/// The schema of the fake upstream's results: one INTEGER column, `id`.
pub fn id_schema() -> Value {
    serde_json::json!({"fields": [{"name": "id", "type": "INTEGER", "mode": "NULLABLE"}]})
}

/// A dry run's job as a fake upstream answers it: its query statistics
/// are `statistics` (what it reports the query reads), with [`id_schema`].
pub fn dry_run_job(statistics: Value) -> Value {
    let mut job = done_job("dry");
    job["statistics"]["query"] = statistics;
    job["statistics"]["query"]["schema"] = id_schema();
    job
}

/// The finished job a fake upstream answers to the jobs.insert `body`,
/// under the id it asked for.
pub fn inserted_job(body: &Value) -> Value {
    done_job(body["jobReference"]["jobId"].as_str().unwrap_or("x"))
}

/// BigQuery's error shape, with the expected code and reason.
pub fn assert_error(status: u16, body: &Value, code: u16, reason: &str) {
    assert_eq!(status, code, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["errors"][0]["reason"], reason, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
